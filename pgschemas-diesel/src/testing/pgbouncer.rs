//! A PgBouncer of its own for a test.

use std::fmt;
use std::fs::{self, File};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::process;
use super::url::{ServerAddress, redact_password};

/// How long PgBouncer may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// How often to try again when another process takes the chosen port first.
const START_ATTEMPTS: u32 = 3;

/// PgBouncer's `pool_mode`: when a server connection goes back to the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PoolMode {
    /// After the client disconnects.
    Session,
    /// After each transaction: session state (`SET`, named prepared statements) is not kept.
    Transaction,
    /// After each statement: multi-statement transactions are refused.
    Statement,
}

impl PoolMode {
    /// The value PgBouncer's ini file uses for this mode.
    ///
    /// # Examples
    ///
    /// ```
    /// use pgschemas_diesel::testing::PoolMode;
    ///
    /// assert_eq!(PoolMode::Transaction.as_str(), "transaction");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            PoolMode::Session => "session",
            PoolMode::Transaction => "transaction",
            PoolMode::Statement => "statement",
        }
    }
}

impl fmt::Display for PoolMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A private PgBouncer in front of one database, for tests; stopped when dropped.
///
/// It listens on a free loopback port with `auth_type = trust` and pools connections to one
/// database of a PostgreSQL server, logging in as the server URL's user (and password). It
/// runs as a child process with its configuration in a temporary directory; dropping the
/// value kills it and removes the directory. When this process is root, PgBouncer (which
/// refuses to run as root) runs as the `postgres` OS user.
///
/// # Prepared statements
///
/// PgBouncer before 1.21 (Debian bookworm ships 1.18) does not support named prepared
/// statements in transaction mode: the next transaction may land on a server connection that
/// never saw the `PREPARE`. Diesel caches prepared statements by default, so a Diesel
/// connection through such a PgBouncer must disable its statement cache, which makes Diesel
/// send every query as an unnamed statement in one round trip:
///
/// ```
/// use diesel::connection::CacheSize;
/// use diesel::prelude::*;
///
/// # use pgschemas_diesel::testing::{PgBouncer, PoolMode, server_url};
/// # let db = pgschemas_diesel::doctest_setup::database();
/// # let bouncer = PgBouncer::start(&server_url(), db.name(), PoolMode::Transaction, 2); let url = bouncer.url();
/// let mut conn = PgConnection::establish(url)?;
/// conn.set_prepared_statement_cache_size(CacheSize::Disabled);
/// # let one: i32 = diesel::select(1.into_sql::<diesel::sql_types::Integer>()).get_result(&mut conn)?;
/// # assert_eq!(one, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// `diesel::sql_query` is never cached, so it works either way.
///
/// # Examples
///
/// ```
/// use diesel::connection::CacheSize;
/// use diesel::prelude::*;
/// use pgschemas_diesel::testing::{PgBouncer, PoolMode, TestDatabase, server_url};
///
/// # let db = pgschemas_diesel::doctest_setup::database();
/// # /*
/// let db = TestDatabase::new("pgbouncer_example");
/// # */
/// // 10 clients may share 2 server connections
/// let bouncer = PgBouncer::start(&server_url(), db.name(), PoolMode::Transaction, 2);
///
/// let mut conn = PgConnection::establish(bouncer.url())?;
/// conn.set_prepared_statement_cache_size(CacheSize::Disabled);
/// let one: i32 = diesel::select(1.into_sql::<diesel::sql_types::Integer>()).get_result(&mut conn)?;
/// assert_eq!(one, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct PgBouncer {
    child: Child,
    dir: PathBuf,
    port: u16,
    url: String,
}

impl PgBouncer {
    /// Starts PgBouncer in front of `database` on the server of `server_url`, and waits until
    /// it accepts connections.
    ///
    /// `default_pool_size` is the number of server connections per user and database;
    /// `max_client_conn` is 200, and the startup parameters `extra_float_digits` and `options`
    /// that libpq or Diesel may send are ignored.
    ///
    /// # Panics
    ///
    /// Panics when `pgbouncer` is not installed (in `PATH` or `/usr/sbin`) and cannot be (see
    /// below), when `server_url` is not a `postgres://` URL, or when PgBouncer does not
    /// start; the message includes PgBouncer's log.
    ///
    /// When `pgbouncer` is missing, this process is root and `apt-get` is there (a fresh
    /// Debian or Ubuntu machine), it installs Debian's `pgbouncer` package first, once
    /// (other test processes wait on a lock file meanwhile), and says so on stderr; set
    /// `PGSCHEMAS_DIESEL_NO_INSTALL=1` to have the panic with the hint instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use pgschemas_diesel::testing::{PgBouncer, PoolMode, server_url};
    ///
    /// let bouncer = PgBouncer::start(&server_url(), "postgres", PoolMode::Session, 5);
    /// println!("PgBouncer listens at {}", bouncer.url());
    /// assert!(bouncer.url().ends_with("/postgres"));
    /// ```
    pub fn start(
        server_url: &str,
        database: &str,
        pool_mode: PoolMode,
        default_pool_size: u32,
    ) -> PgBouncer {
        let binary = installed_binary().unwrap_or_else(|e| panic!("{e}"));
        let server = ServerAddress::parse(server_url).unwrap_or_else(|e| {
            panic!("cannot start PgBouncer: {e}");
        });
        let dir = process::unique_temp_dir("pgschemas-diesel-pgbouncer")
            .unwrap_or_else(|e| panic!("cannot start PgBouncer: {e}"));
        let config = Config {
            server: &server,
            database,
            pool_mode,
            default_pool_size,
        };
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            match start_once(&binary, &dir, &config) {
                Ok((child, port)) => {
                    let user = server.user.as_deref().unwrap_or("postgres");
                    return PgBouncer {
                        child,
                        port,
                        url: super::url_with_database(
                            &format!("postgres://{user}@127.0.0.1:{port}"),
                            database,
                        ),
                        dir,
                    };
                }
                Err(StartError::PortTaken(log)) => last_error = log,
                Err(StartError::Failed(e)) => {
                    let _ = fs::remove_dir_all(&dir);
                    panic!(
                        "cannot start PgBouncer for {database} on {}: {e}",
                        redact_password(server_url)
                    );
                }
            }
        }
        let _ = fs::remove_dir_all(&dir);
        panic!(
            "cannot start PgBouncer for {database}: another process kept taking its port\n\
             {last_error}"
        );
    }

    /// The URL clients connect to: `postgres://<user>@127.0.0.1:<port>/<database>`.
    ///
    /// # Examples
    ///
    /// ```
    /// use diesel::prelude::*;
    /// use pgschemas_diesel::testing::{PgBouncer, PoolMode, server_url};
    ///
    /// let bouncer = PgBouncer::start(&server_url(), "postgres", PoolMode::Session, 5);
    /// let mut conn = PgConnection::establish(bouncer.url())?;
    /// diesel::sql_query("SELECT 1").execute(&mut conn)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The loopback port PgBouncer listens on.
    ///
    /// # Examples
    ///
    /// ```
    /// use pgschemas_diesel::testing::{PgBouncer, PoolMode, server_url};
    ///
    /// let bouncer = PgBouncer::start(&server_url(), "postgres", PoolMode::Session, 5);
    /// assert!(bouncer.url().contains(&format!(":{}/", bouncer.port())));
    /// ```
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

struct Config<'a> {
    server: &'a ServerAddress,
    database: &'a str,
    pool_mode: PoolMode,
    default_pool_size: u32,
}

impl Config<'_> {
    fn ini(&self, port: u16, auth_file: &Path) -> String {
        let server = self.server;
        let user = server.user.as_deref().unwrap_or("postgres");
        let host = if server.host.is_empty() {
            "localhost"
        } else {
            &server.host
        };
        let mut target = format!(
            "host={} port={} dbname={} user={}",
            connstr_value(host),
            server.port,
            connstr_value(self.database),
            connstr_value(user)
        );
        if let Some(password) = &server.password {
            target.push_str(&format!(" password={}", connstr_value(password)));
        }
        format!(
            "[databases]\n\
             {name} = {target}\n\
             \n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = trust\n\
             auth_file = {auth_file}\n\
             pool_mode = {pool_mode}\n\
             default_pool_size = {pool_size}\n\
             max_client_conn = 200\n\
             ignore_startup_parameters = extra_float_digits,options\n",
            name = ini_database_name(self.database),
            auth_file = auth_file.display(),
            pool_mode = self.pool_mode,
            pool_size = self.default_pool_size,
        )
    }

    fn auth_file(&self) -> String {
        let user = self.server.user.as_deref().unwrap_or("postgres");
        format!("\"{}\" \"\"\n", user.replace('"', "\"\""))
    }
}

enum StartError {
    PortTaken(String),
    Failed(String),
}

/// The `pgbouncer` binary, installed first when it is missing and can be
/// ([`PgBouncer::start`]).
fn installed_binary() -> Result<PathBuf, String> {
    let find = || {
        process::find_binary(
            "pgbouncer",
            &[PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")],
        )
    };
    if let Some(binary) = find() {
        return Ok(binary);
    }
    let hint = "pgbouncer is not installed (looked in PATH, /usr/sbin and /usr/local/sbin)\n\
                hint: install it with `apt-get install pgbouncer`";
    let apt = process::find_binary("apt-get", &[PathBuf::from("/usr/bin")]);
    let Some(apt) = apt.filter(|_| process::running_as_root() && process::may_install()) else {
        return Err(hint.to_owned());
    };
    // One process installs; the others wait on the lock, then find the binary.
    let lock = process::install_lock("pgbouncer").map_err(|e| format!("{hint}\n{e}"))?;
    if let Some(binary) = find() {
        return Ok(binary);
    }
    eprintln!(
        "pgschemas-diesel: installing Debian's pgbouncer package (apt-get), needed by this test"
    );
    for args in [
        &["update", "-qq"][..],
        &["install", "-y", "-qq", "pgbouncer"][..],
    ] {
        let out = std::process::Command::new(&apt)
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .map_err(|e| format!("{hint}\napt-get {}: {e}", args.join(" ")))?;
        if !out.status.success() {
            return Err(format!(
                "{hint}\napt-get {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    // The package starts its own service on the default port; the tests start their own.
    let _ = std::process::Command::new("service")
        .args(["pgbouncer", "stop"])
        .output();
    drop(lock);
    find().ok_or_else(|| format!("{hint}\napt-get installed pgbouncer, but no binary was found"))
}

fn start_once(binary: &Path, dir: &Path, config: &Config<'_>) -> Result<(Child, u16), StartError> {
    let port = process::free_port().map_err(StartError::Failed)?;
    let ini_path = dir.join("pgbouncer.ini");
    let auth_path = dir.join("userlist.txt");
    let log_path = dir.join("pgbouncer.log");
    let write = |path: &Path, text: String| {
        fs::write(path, text)
            .map_err(|e| StartError::Failed(format!("cannot write {}: {e}", path.display())))
    };
    write(&ini_path, config.ini(port, &auth_path))?;
    write(&auth_path, config.auth_file())?;
    let log = File::create(&log_path)
        .map_err(|e| StartError::Failed(format!("cannot create {}: {e}", log_path.display())))?;
    let log_err = log
        .try_clone()
        .map_err(|e| StartError::Failed(format!("cannot open {}: {e}", log_path.display())))?;
    process::give_to_postgres(dir).map_err(StartError::Failed)?;

    let mut command = std::process::Command::new(binary);
    if process::running_as_root() {
        // PgBouncer refuses to run as root; `-u` makes it drop to that user itself, so the
        // child is PgBouncer and killing it stops it
        command.args(["-u", process::POSTGRES_USER]);
    }
    let mut child = command
        .arg(&ini_path)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| StartError::Failed(format!("cannot run {}: {e}", binary.display())))?;

    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = process::tail(&process::read_lossy(&log_path), 10);
            return Err(if log.contains("Address already in use") {
                StartError::PortTaken(log)
            } else {
                StartError::Failed(format!("pgbouncer exited ({status}):\n{log}"))
            });
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok((child, port));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let log = process::tail(&process::read_lossy(&log_path), 10);
            return Err(StartError::Failed(format!(
                "pgbouncer did not accept connections on port {port} within {}s:\n{log}",
                START_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A database name as an ini key: bare when PgBouncer allows it, else double-quoted.
fn ini_database_name(name: &str) -> String {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// A value in PgBouncer's connection string: bare when simple, else single-quoted.
fn connstr_value(value: &str) -> String {
    if !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./:".contains(&b))
    {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_ini() {
        let server = ServerAddress::parse("postgres://postgres@127.0.0.1:5433/postgres")
            .unwrap_or_else(|e| panic!("{e}"));
        let config = Config {
            server: &server,
            database: "test_db",
            pool_mode: PoolMode::Transaction,
            default_pool_size: 2,
        };
        let ini = config.ini(6001, Path::new("/tmp/x/userlist.txt"));
        for line in [
            "test_db = host=127.0.0.1 port=5433 dbname=test_db user=postgres",
            "listen_addr = 127.0.0.1",
            "listen_port = 6001",
            "auth_type = trust",
            "auth_file = /tmp/x/userlist.txt",
            "pool_mode = transaction",
            "default_pool_size = 2",
            "max_client_conn = 200",
            "ignore_startup_parameters = extra_float_digits,options",
        ] {
            assert!(ini.lines().any(|l| l == line), "missing `{line}` in\n{ini}");
        }
        assert_eq!(config.auth_file(), "\"postgres\" \"\"\n");
    }

    #[test]
    fn quotes_unusual_names() {
        assert_eq!(ini_database_name("my-db"), "\"my-db\"");
        assert_eq!(ini_database_name("app_1"), "app_1");
        assert_eq!(connstr_value("it's"), "'it\\'s'");
        assert_eq!(connstr_value("/var/run/postgresql"), "/var/run/postgresql");
    }
}
