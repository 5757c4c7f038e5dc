//! A throwaway cluster whose server writes its messages in another language.

use std::collections::HashMap;
use std::path::Path;
use std::process::ChildStdin;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};

use super::cluster::{PgBinaries, spawn_watchdog};
use super::process;
use super::server::first_line;

/// How long a reloaded `lc_messages` may take to reach new connections.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// A running localized cluster: its URL, and the pipe whose end stops it.
struct Localized {
    url: String,
    /// Never written to: when this process exits the pipe closes and the watchdog on the
    /// other end stops the server and removes its directory.
    _watchdog: ChildStdin,
}

/// Returns the admin URL of a throwaway PostgreSQL cluster whose server writes its
/// messages in `language` (a gettext language code such as `de`, `fr`, `pt_BR`), for
/// tests that must not depend on the text of PostgreSQL's messages.
///
/// The first call for a language runs `initdb` into a fresh directory under the temp dir
/// and starts the server with `pg_ctl` on a free loopback port, with trust authentication,
/// `LANGUAGE=<language>` in its environment and `lc_messages` set to an installed UTF-8
/// locale (gettext ignores `LANGUAGE` under the `C` locale). It checks that the server really
/// translates (`SELECT 1/0` reads differently than under `lc_messages = 'C'`). Later calls in
/// the process return the same URL. When the process exits, however it exits, the server
/// is stopped and its directory removed. The binaries are found as for [`server_url`];
/// when this process is root, they run as the `postgres` OS user.
///
/// Create databases on it with [`test_database!(server: url)`](crate::test_database).
///
/// On Debian the translations come with the `postgresql-NN` package; `C.UTF-8` is built
/// into glibc.
///
/// [`server_url`]: crate::testing::server_url
///
/// # Panics
///
/// Panics when `language` is not a plain language code, when PostgreSQL's binaries are not
/// installed, when the cluster cannot be created or started, or when its server does not
/// translate its messages into `language` (the translations or a UTF-8 locale are missing).
///
/// # Examples
///
/// ```
/// use diesel::prelude::*;
///
/// let german = pgschemas_diesel::testing::localized_server_url("de");
/// let db = pgschemas_diesel::test_database!(server: german);
/// let mut conn = db.connect();
/// let err = diesel::sql_query("SELECT 1/0").execute(&mut conn).unwrap_err();
/// assert_eq!(err.to_string(), "Division durch Null");
/// ```
pub fn localized_server_url(language: &str) -> String {
    // a failure is kept too: the next test is told at once instead of trying again
    static CLUSTERS: OnceLock<Mutex<HashMap<String, Result<Localized, String>>>> = OnceLock::new();
    let valid = !language.is_empty()
        && language
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'@');
    assert!(
        valid,
        "invalid language code {language:?}: expected a gettext language such as `de` or `pt_BR`"
    );
    let mut clusters = CLUSTERS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let cluster = clusters
        .entry(language.to_owned())
        .or_insert_with(|| start(language));
    match cluster {
        Ok(cluster) => cluster.url.clone(),
        Err(e) => panic!("cannot start a PostgreSQL cluster answering in {language:?}: {e}"),
    }
}

fn start(language: &str) -> Result<Localized, String> {
    let binaries = PgBinaries::find().ok_or(
        "PostgreSQL's binaries (initdb, pg_ctl) are not installed (`apt-get install postgresql`)",
    )?;
    let base = process::unique_temp_dir(&format!("pgschemas-diesel-{language}"))?;
    // From here on the watchdog owns the directory: it removes it when this process exits,
    // also when starting fails below.
    process::give_to_postgres(&base)?;
    let watchdog = spawn_watchdog(&binaries, &base)?
        .stdin
        .take()
        .ok_or_else(|| "the cleanup watchdog has no stdin".to_owned())?;
    let data = base.join("data");
    binaries.init(
        &base,
        &data,
        "pgschemas-diesel localized throwaway cluster",
        "",
    )?;
    let url = start_server(&binaries, &data, &base.join("server.log"), language)?;
    speak(&url, language)?;
    Ok(Localized {
        url,
        _watchdog: watchdog,
    })
}

/// Starts the server with `LANGUAGE=<language>` on a free port; returns its admin URL.
fn start_server(
    binaries: &PgBinaries,
    data: &Path,
    log: &Path,
    language: &str,
) -> Result<String, String> {
    let port = binaries.start_on_free_port(data, log, |command| {
        command.env("LANGUAGE", language);
    })?;
    Ok(format!("postgres://postgres@127.0.0.1:{port}/postgres"))
}

/// Sets `lc_messages` to the first candidate locale under which the server translates, and
/// waits until new connections get it.
fn speak(url: &str, language: &str) -> Result<(), String> {
    let mut admin = PgConnection::establish(url)
        .map_err(|e| format!("cannot connect to {url}: {}", first_line(&e.to_string())))?;
    let untranslated = division_by_zero(&mut admin, Some("C"))?;
    let locale = translating_locale(&mut admin, language, &untranslated)?;
    // two statements: ALTER SYSTEM cannot run in the implicit transaction of a batch
    admin
        .batch_execute(&format!("ALTER SYSTEM SET lc_messages = '{locale}'"))
        .and_then(|()| admin.batch_execute("SELECT pg_catalog.pg_reload_conf()"))
        .map_err(|e| format!("cannot set lc_messages = '{locale}': {e}"))?;
    await_translation(url, &locale, &untranslated)
}

/// The first candidate locale under which the server's messages differ from
/// `untranslated`.
fn translating_locale(
    admin: &mut PgConnection,
    language: &str,
    untranslated: &str,
) -> Result<String, String> {
    // gettext honours LANGUAGE under any locale but C/POSIX; the language's own locale
    // works too where it is generated
    let own = language.split(['_', '@']).next().unwrap_or(language);
    let region = language
        .split_once('_')
        .map(|(_, region)| region.split('@').next().unwrap_or(region).to_owned())
        .unwrap_or_else(|| own.to_ascii_uppercase());
    let candidates = [
        "C.UTF-8".to_owned(),
        "C.utf8".to_owned(),
        format!("{own}_{region}.UTF-8"),
        format!("{own}_{region}.utf8"),
    ];
    let chosen = candidates.iter().find(|locale| {
        division_by_zero(admin, Some(locale)).is_ok_and(|message| message != untranslated)
    });
    chosen.cloned().ok_or_else(|| {
        format!(
            "the server does not translate its messages into {language:?} under any of the \
             locales {candidates:?}; install PostgreSQL's translations (on Debian they come \
             with the postgresql-NN package) or generate one of those locales"
        )
    })
}

/// Waits until a new connection's messages differ from `untranslated`, after the reload
/// that set `lc_messages = locale`.
fn await_translation(url: &str, locale: &str, untranslated: &str) -> Result<(), String> {
    let deadline = Instant::now() + RELOAD_TIMEOUT;
    loop {
        let mut fresh = PgConnection::establish(url)
            .map_err(|e| format!("cannot connect to {url}: {}", first_line(&e.to_string())))?;
        if division_by_zero(&mut fresh, None)? != untranslated {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "new connections still get untranslated messages {}s after lc_messages was \
                 set to '{locale}'",
                RELOAD_TIMEOUT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The message `SELECT 1/0` fails with, under `lc_messages = locale` when given.
fn division_by_zero(conn: &mut PgConnection, locale: Option<&str>) -> Result<String, String> {
    if let Some(locale) = locale {
        conn.batch_execute(&format!("SET lc_messages = '{locale}'"))
            .map_err(|e| format!("lc_messages = '{locale}' is refused: {e}"))?;
    }
    let message = match conn.batch_execute("SELECT 1/0") {
        Ok(()) => return Err("SELECT 1/0 succeeded".to_owned()),
        Err(e) => e.to_string(),
    };
    if locale.is_some() {
        conn.batch_execute("RESET lc_messages")
            .map_err(|e| format!("cannot reset lc_messages: {e}"))?;
    }
    Ok(message)
}
