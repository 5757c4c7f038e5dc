//! Finding a PostgreSQL server for tests, or starting a throwaway one.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use diesel::{Connection, ConnectionError, PgConnection};

use super::cluster::PgBinaries;
use super::process::{self, LockFile};
use super::url::{ServerAddress, redact_password};

/// The server used when `DATABASE_URL` is not set.
const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// How long probing a server's address may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The port a throwaway cluster prefers; another free port is used when it is taken.
const PREFERRED_PORT: u16 = 54329;

/// Returns the admin URL of a PostgreSQL server that answers, for tests.
///
/// The URL comes from `DATABASE_URL`, or is `postgres://postgres@127.0.0.1:5432/postgres` when
/// that is unset. Its role must be allowed to create databases.
///
/// When nothing answers there (connection refused, no socket) and PostgreSQL's binaries
/// (`initdb`, `pg_ctl`) are installed, in `PATH` or in `/usr/lib/postgresql/*/bin`, it starts a
/// throwaway cluster instead: trust authentication on a loopback port (54329 when free), data
/// in `<temp dir>/pgschemas-diesel-cluster`, run as the `postgres` OS user when this process is
/// root. Later calls, in this process and in later test runs, reuse that cluster while it
/// runs; a lock file serialises test processes that start at the same time. It prints one
/// line to stderr saying which cluster is used and how to stop it.
///
/// The answer is computed once per process.
///
/// # Panics
///
/// Panics with a message saying what to do when no server answers and none can be started,
/// when the server at `DATABASE_URL` refuses the connection for another reason (a wrong
/// password, a missing database), or when starting the throwaway cluster fails.
///
/// # Examples
///
/// ```
/// use diesel::prelude::*;
/// use diesel::sql_types::Text;
///
/// #[derive(QueryableByName)]
/// struct Version {
///     #[diesel(sql_type = Text)]
///     version: String,
/// }
///
/// let url = pgschemas_diesel::testing::server_url();
/// let mut conn = PgConnection::establish(&url)?;
/// let row: Version = diesel::sql_query("SELECT version()").get_result(&mut conn)?;
/// println!("testing against {}", row.version);
/// assert!(row.version.starts_with("PostgreSQL "));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn server_url() -> String {
    static SERVER_URL: OnceLock<String> = OnceLock::new();
    SERVER_URL.get_or_init(find_server).clone()
}

fn find_server() -> String {
    let url = std::env::var("DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_URL.to_owned());
    let error = match PgConnection::establish(&url) {
        Ok(_) => return url,
        Err(error) => error,
    };
    let shown = redact_password(&url);
    if !is_unreachable(&url, &error) {
        panic!(
            "cannot use the PostgreSQL server at {shown} for tests: {}\nhint: set DATABASE_URL \
             to a server and role that can create databases",
            error.to_string().trim()
        );
    }
    let Some(binaries) = PgBinaries::find() else {
        panic!(
            "no PostgreSQL server answers at {shown} ({}) and PostgreSQL's binaries (initdb, \
             pg_ctl) are not installed\nhint: set DATABASE_URL to a server whose role can create \
             databases, or install and start PostgreSQL (`apt-get install postgresql`, then \
             `service postgresql start`)",
            first_line(&error.to_string())
        );
    };
    match throwaway_cluster(&binaries) {
        Ok(cluster) => {
            // straight to stderr: the test harness captures `eprintln!`, and this line is
            // for the person running the tests
            let _ = writeln!(
                std::io::stderr(),
                "pgschemas-diesel: no PostgreSQL server answers at {shown}; using a throwaway \
                 cluster at {} (data in {}); stop it with `{}`",
                cluster.url,
                cluster.data_dir.display(),
                cluster.stop_command
            );
            cluster.url
        }
        Err(e) => panic!(
            "no PostgreSQL server answers at {shown} and starting a throwaway cluster failed: \
             {e}\nhint: set DATABASE_URL to a server whose role can create databases, or start \
             PostgreSQL (`service postgresql start`)"
        ),
    }
}

/// Whether `error` means that no server listens at `url`, as opposed to a server that said
/// no. libpq's messages are translated (with the client's locale), so the address is probed
/// instead: nothing accepts a connection there (refused, or no socket file).
fn is_unreachable(url: &str, error: &ConnectionError) -> bool {
    if !matches!(error, ConnectionError::BadConnection(_)) {
        return false;
    }
    let Ok(address) = ServerAddress::parse(url) else {
        return false;
    };
    nothing_listens(&address)
}

/// Whether every address `address` names refuses connections or has no socket file.
fn nothing_listens(address: &ServerAddress) -> bool {
    let refused = |e: &io::Error| {
        matches!(
            e.kind(),
            io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound
        )
    };
    if address.host.is_empty() || address.host.starts_with('/') {
        #[cfg(unix)]
        {
            // libpq's default socket directory: Debian's, then upstream's
            let dirs: Vec<&str> = if address.host.is_empty() {
                vec!["/var/run/postgresql", "/tmp"]
            } else {
                vec![address.host.as_str()]
            };
            return dirs.iter().all(|dir| {
                let socket = Path::new(dir).join(format!(".s.PGSQL.{}", address.port));
                std::os::unix::net::UnixStream::connect(socket).is_err_and(|e| refused(&e))
            });
        }
        #[cfg(not(unix))]
        return false;
    }
    let Ok(targets) = (address.host.as_str(), address.port).to_socket_addrs() else {
        return false;
    };
    let targets: Vec<_> = targets.collect();
    !targets.is_empty()
        && targets.iter().all(|target| {
            TcpStream::connect_timeout(target, PROBE_TIMEOUT).is_err_and(|e| refused(&e))
        })
}

pub(crate) fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("").trim()
}

struct Cluster {
    url: String,
    data_dir: PathBuf,
    stop_command: String,
}

/// Starts, or finds running, the throwaway cluster under the temp dir.
fn throwaway_cluster(binaries: &PgBinaries) -> Result<Cluster, String> {
    let temp = std::env::temp_dir();
    let base = temp.join("pgschemas-diesel-cluster");
    let data = base.join("data");
    let initialized = base.join("initialized");
    let log = base.join("server.log");

    let _lock = LockFile::acquire(
        temp.join("pgschemas-diesel-cluster.lock"),
        Duration::from_secs(180),
        Duration::from_secs(300),
    )?;

    if !initialized.exists() {
        init_cluster(binaries, &base, &data)?;
        fs::write(&initialized, b"")
            .map_err(|e| format!("cannot write {}: {e}", initialized.display()))?;
    }

    let port = match running_port(binaries, &data) {
        Some(port) => port,
        None => start_cluster(binaries, &data, &log)?,
    };
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    PgConnection::establish(&url).map_err(|e| {
        format!(
            "the throwaway cluster in {} runs on port {port} but does not accept connections: \
             {}; see {}, or stop it and remove {} to start over",
            data.display(),
            first_line(&e.to_string()),
            log.display(),
            base.display()
        )
    })?;
    let stop_command = process::postgres_command_line(
        &binaries.pg_ctl,
        &[OsStr::new("-D"), data.as_os_str(), OsStr::new("stop")],
    );
    Ok(Cluster {
        url,
        data_dir: data,
        stop_command,
    })
}

fn init_cluster(binaries: &PgBinaries, base: &Path, data: &Path) -> Result<(), String> {
    // a directory without the marker is a leftover of an interrupted initdb
    if base.exists() {
        fs::remove_dir_all(base).map_err(|e| format!("cannot remove {}: {e}", base.display()))?;
    }
    fs::create_dir_all(base).map_err(|e| format!("cannot create {}: {e}", base.display()))?;
    process::give_to_postgres(base)?;
    binaries.init(
        base,
        data,
        "pgschemas-diesel throwaway cluster",
        "max_connections = 200\n",
    )
}

/// The port of the cluster in `data` if it runs.
fn running_port(binaries: &PgBinaries, data: &Path) -> Option<u16> {
    let status = process::postgres_command(
        &binaries.pg_ctl,
        [OsStr::new("status"), OsStr::new("-D"), data.as_os_str()],
    )
    .current_dir(data.parent().unwrap_or(data))
    .output()
    .ok()?;
    if !status.status.success() {
        return None;
    }
    // line 4 of postmaster.pid is the port
    fs::read_to_string(data.join("postmaster.pid"))
        .ok()?
        .lines()
        .nth(3)?
        .trim()
        .parse()
        .ok()
}

fn start_cluster(binaries: &PgBinaries, data: &Path, log: &Path) -> Result<u16, String> {
    let port = if process::port_is_free(PREFERRED_PORT) {
        PREFERRED_PORT
    } else {
        process::free_port()?
    };
    process::run(&mut binaries.start_command(data, log, port), "pg_ctl start").map_err(|e| {
        format!(
            "{e}\nserver log ({}):\n{}\nhint: remove {} to start over",
            log.display(),
            process::tail(&process::read_lossy(log), 10),
            data.parent().unwrap_or(data).display()
        )
    })?;
    Ok(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_refused_connections_from_refusing_servers() {
        // libpq's message is translated: only the address decides
        let refused = || ConnectionError::BadConnection("Verbindung verweigert\n".to_owned());
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let listening = listener.local_addr().unwrap().port();
        let free = process::free_port().unwrap();
        let url = |port: u16| format!("postgres://postgres@127.0.0.1:{port}/postgres");
        assert!(is_unreachable(&url(free), &refused()));
        assert!(!is_unreachable(&url(listening), &refused()));
        // a server that answered with an error is never unreachable
        let bad_url = ConnectionError::InvalidConnectionUrl("x".to_owned());
        assert!(!is_unreachable(&url(free), &bad_url));

        let socket_dir = process::unique_temp_dir("pgschemas-diesel-probe").unwrap();
        let socket_url = format!(
            "postgres://postgres@/postgres?host={}&port={free}",
            socket_dir.display()
        );
        assert!(is_unreachable(&socket_url, &refused()));
        #[cfg(unix)]
        {
            let socket = socket_dir.join(format!(".s.PGSQL.{free}"));
            let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
            assert!(!is_unreachable(&socket_url, &refused()));
        }
        fs::remove_dir_all(&socket_dir).unwrap();
    }
}
