//! A throwaway Citus cluster: a coordinator and two workers on loopback ports.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};

use super::cluster::{PgBinaries, spawn_watchdog};
use super::process;
use super::server::first_line;
use crate::citus::Node;

/// The script that builds and installs Citus for this machine's PostgreSQL.
const INSTALL_SCRIPT: &str = ".ci/install-citus";

/// How many workers the cluster has.
const WORKERS: usize = 2;

/// The settings every node starts with: Citus preloaded, logical replication for moves
/// under writes, no statistics reports sent out.
const SETTINGS: &str = "shared_preload_libraries = 'citus'\n\
                        wal_level = logical\n\
                        max_replication_slots = 16\n\
                        max_wal_senders = 16\n\
                        max_worker_processes = 24\n\
                        shared_buffers = 32MB\n\
                        citus.enable_statistics_collection = off\n";

/// A running Citus cluster of its own: a coordinator and two workers, each a PostgreSQL
/// server with `shared_preload_libraries = 'citus'` on a free loopback port, with data in a
/// fresh directory under the temp dir, trust authentication, user `postgres`.
///
/// [`CitusCluster::start`] creates the `citus` extension in each node's `postgres` database,
/// names the coordinator (`citus_set_coordinator_host`) and registers the workers
/// (`citus_add_node`), so the coordinator's URL is ready for schema-based sharding.
/// Dropping it stops the three servers and removes the directory; so does the exit of the
/// process, however it exits. When the thread is panicking, the tail of each node's log is
/// printed to stderr first.
///
/// Citus must be installed for the PostgreSQL whose `initdb` is found (as for
/// [`server_url`](crate::testing::server_url)); `.ci/install-citus` in this repository
/// builds and installs it.
///
/// # Examples
///
/// ```no_run
/// use diesel::{Connection, PgConnection};
/// use pgschemas_diesel::citus;
/// use pgschemas_diesel::testing::CitusCluster;
///
/// let cluster = CitusCluster::start();
/// let mut conn = PgConnection::establish(&cluster.coordinator_url())?;
/// assert_eq!(citus::workers(&mut conn)?, cluster.workers());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct CitusCluster {
    base: PathBuf,
    coordinator: Node,
    workers: Vec<Node>,
    /// Stops the servers and removes `base` once its stdin closes.
    watchdog: Option<Child>,
}

impl CitusCluster {
    /// Starts a coordinator and two workers and registers the workers.
    ///
    /// # Panics
    ///
    /// Panics when PostgreSQL's binaries are not installed, when Citus is not installed for
    /// them and cannot be (the message names `.ci/install-citus`; in this crate's repository
    /// the script runs first when Citus is missing, unless `PGSCHEMAS_DIESEL_NO_INSTALL` is
    /// set), or when a node cannot be created, started or registered (the message holds the
    /// end of its log).
    pub fn start() -> CitusCluster {
        match Self::try_start() {
            Ok(cluster) => cluster,
            Err(e) => panic!("cannot start a Citus cluster: {e}"),
        }
    }

    fn try_start() -> Result<CitusCluster, String> {
        let binaries = PgBinaries::find().ok_or(
            "PostgreSQL's binaries (initdb, pg_ctl) are not installed (`apt-get install postgresql`)",
        )?;
        require_citus(&binaries)?;
        let base = process::unique_temp_dir("pgschemas-diesel-citus")?;
        // from here on the watchdog owns the directory, also when starting fails below
        process::give_to_postgres(&base)?;
        let mut cluster = CitusCluster {
            watchdog: Some(spawn_watchdog(&binaries, &base)?),
            base,
            coordinator: Node::new("127.0.0.1", 0),
            workers: Vec::new(),
        };
        let names: Vec<String> = std::iter::once("coordinator".to_owned())
            .chain((1..=WORKERS).map(|i| format!("worker{i}")))
            .collect();
        // the nodes are independent until registered: create and start them in parallel
        let ports: Vec<Result<u16, String>> = std::thread::scope(|scope| {
            let started: Vec<_> = names
                .iter()
                .map(|name| {
                    let (binaries, base) = (&binaries, &cluster.base);
                    scope.spawn(move || start_node(binaries, base, name))
                })
                .collect();
            started
                .into_iter()
                .map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|_| Err("a node's start panicked".to_owned()))
                })
                .collect()
        });
        let mut ports = ports.into_iter();
        cluster.coordinator.port = ports.next().unwrap_or(Ok(0))?;
        for port in ports {
            cluster.workers.push(Node::new("127.0.0.1", port?));
        }
        cluster.register()?;
        Ok(cluster)
    }

    /// Names the coordinator and adds the workers, from the coordinator.
    fn register(&self) -> Result<(), String> {
        let mut sql = format!(
            "SELECT pg_catalog.citus_set_coordinator_host('{}', {});",
            self.coordinator.host, self.coordinator.port
        );
        for worker in &self.workers {
            sql.push_str(&format!(
                "SELECT pg_catalog.citus_add_node('{}', {});",
                worker.host, worker.port
            ));
        }
        let url = self.coordinator_url();
        let mut conn = PgConnection::establish(&url)
            .map_err(|e| format!("cannot connect to the coordinator at {url}: {e}"))?;
        conn.batch_execute(&sql)
            .map_err(|e| format!("cannot register the workers: {e}"))
    }

    /// The coordinator's admin URL (database `postgres`): connect the application here.
    ///
    /// ```no_run
    /// let cluster = pgschemas_diesel::testing::CitusCluster::start();
    /// assert!(cluster.coordinator_url().starts_with("postgres://postgres@127.0.0.1:"));
    /// ```
    pub fn coordinator_url(&self) -> String {
        node_url(&self.coordinator)
    }

    /// The coordinator.
    ///
    /// ```no_run
    /// let cluster = pgschemas_diesel::testing::CitusCluster::start();
    /// assert_eq!(cluster.coordinator().host, "127.0.0.1");
    /// ```
    pub fn coordinator(&self) -> &Node {
        &self.coordinator
    }

    /// The two workers, in the order they were registered.
    ///
    /// ```no_run
    /// let cluster = pgschemas_diesel::testing::CitusCluster::start();
    /// assert_eq!(cluster.workers().len(), 2);
    /// ```
    pub fn workers(&self) -> &[Node] {
        &self.workers
    }

    /// The admin URL (database `postgres`) of `node`, a worker or the coordinator: to look
    /// at what a worker holds.
    ///
    /// ```no_run
    /// let cluster = pgschemas_diesel::testing::CitusCluster::start();
    /// let url = cluster.url_of(&cluster.workers()[0]);
    /// ```
    pub fn url_of(&self, node: &Node) -> String {
        node_url(node)
    }

    /// The directory the nodes' data and logs are in (removed when the cluster is dropped).
    pub fn directory(&self) -> &Path {
        &self.base
    }
}

impl Drop for CitusCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for name in std::iter::once("coordinator".to_owned())
                .chain((1..=WORKERS).map(|i| format!("worker{i}")))
            {
                let log = process::read_lossy(&self.base.join(format!("{name}.log")));
                eprintln!(
                    "pgschemas-diesel: Citus {name} log (last lines):\n{}",
                    process::tail(&log, 15)
                );
            }
        }
        if let Some(mut watchdog) = self.watchdog.take() {
            // closing its stdin makes it stop the servers and remove the directory
            drop(watchdog.stdin.take());
            let _ = watchdog.wait();
        }
    }
}

fn node_url(node: &Node) -> String {
    format!("postgres://postgres@{}:{}/postgres", node.host, node.port)
}

/// Creates the node `name` under `base`, starts it and creates the extension; its port.
fn start_node(binaries: &PgBinaries, base: &Path, name: &str) -> Result<u16, String> {
    let data = base.join(name);
    let log = base.join(format!("{name}.log"));
    binaries.init(
        base,
        &data,
        &format!("pgschemas-diesel throwaway Citus {name}"),
        SETTINGS,
    )?;
    let port = binaries.start_on_free_port(&data, &log, |_| {})?;
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let mut conn = PgConnection::establish(&url).map_err(|e| {
        format!(
            "cannot connect to {name} at {url}: {}",
            first_line(&e.to_string())
        )
    })?;
    conn.batch_execute("CREATE EXTENSION citus").map_err(|e| {
        format!(
            "CREATE EXTENSION citus failed on {name}: {e}\nserver log ({}):\n{}",
            log.display(),
            process::tail(&process::read_lossy(&log), 10)
        )
    })?;
    Ok(port)
}

/// An error naming the install script unless `citus.so` is in the library directory of
/// the PostgreSQL `binaries` belong to. When it is missing and this crate's repository is
/// there (its own tests), the repository's install script runs first, once (other test
/// processes wait on a lock file), unless `PGSCHEMAS_DIESEL_NO_INSTALL` is set.
fn require_citus(binaries: &PgBinaries) -> Result<(), String> {
    let missing = match citus_library(binaries) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(INSTALL_SCRIPT);
    if !script.is_file() || !process::may_install() {
        return Err(missing);
    }
    let _lock = process::install_lock("citus").map_err(|e| format!("{missing}\n{e}"))?;
    if citus_library(binaries).is_ok() {
        return Ok(());
    }
    eprintln!(
        "pgschemas-diesel: Citus is not installed; running {} (a build of a few minutes), \
         needed by this test",
        script.display()
    );
    let out = Command::new(&script)
        .output()
        .map_err(|e| format!("{missing}\ncannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{missing}\n{} failed:\n{}{}",
            script.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    citus_library(binaries)
}

/// An error naming the install script unless `citus.so` is in the library directory of
/// the PostgreSQL `binaries` belong to.
fn citus_library(binaries: &PgBinaries) -> Result<(), String> {
    // initdb may be a link into the installation (/usr/local/bin/initdb)
    let initdb = binaries
        .initdb
        .canonicalize()
        .unwrap_or_else(|_| binaries.initdb.clone());
    let bin = initdb.parent().unwrap_or(Path::new("."));
    let pg_config = bin.join("pg_config");
    let libdir = process::run(
        Command::new(&pg_config).arg(OsStr::new("--pkglibdir")),
        "pg_config --pkglibdir",
    )
    .ok()
    .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    .filter(|dir| dir.is_dir())
    .unwrap_or_else(|| bin.with_file_name("lib"));
    if libdir.join("citus.so").is_file() {
        Ok(())
    } else {
        Err(format!(
            "Citus is not installed for the PostgreSQL in {} (no citus.so in {}); \
             run `{INSTALL_SCRIPT}` in the pgschemas-diesel repository, which builds and \
             installs it (or install Citus for that PostgreSQL another way)",
            bin.display(),
            libdir.display()
        ))
    }
}
