//! The live route table: a snapshot swapped atomically, kept fresh by `LISTEN/NOTIFY`.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Integer, Text};

use crate::catalog::{Catalog, CatalogRows, InvalidRow};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::schema::set_path;

use super::ROUTES_CHANNEL;
use super::route::Resolution;
use super::snapshot::Routes;

/// A callback that receives the listener's errors and the catalog rows left out of the
/// table (for logging).
pub type ErrorHook = Arc<dyn Fn(&Error) + Send + Sync>;

/// How a [`RouteTable`] keeps itself fresh.
///
/// ```
/// use std::time::Duration;
/// use pgschemas_diesel::RouteOptions;
///
/// let options = RouteOptions::default()
///     .full_reload_every(Duration::from_secs(300))
///     .on_error(|e| eprintln!("routing: {e}"));
/// ```
#[derive(Clone)]
#[must_use]
pub struct RouteOptions {
    full_reload: Duration,
    poll_interval: Duration,
    debounce: Duration,
    heartbeat: Duration,
    reconnect_max: Duration,
    check_triggers: bool,
    on_error: Option<ErrorHook>,
}

impl Default for RouteOptions {
    /// Full reload every 60 s; notifications polled every 25 ms and applied after a 5 ms
    /// debounce; a `SELECT 1` heartbeat after 10 s of silence; reconnect back-off up to 5 s;
    /// triggers checked at start.
    fn default() -> Self {
        Self {
            full_reload: Duration::from_secs(60),
            poll_interval: Duration::from_millis(25),
            debounce: Duration::from_millis(5),
            heartbeat: Duration::from_secs(10),
            reconnect_max: Duration::from_secs(5),
            check_triggers: true,
            on_error: None,
        }
    }
}

impl fmt::Debug for RouteOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteOptions")
            .field("full_reload", &self.full_reload)
            .field("poll_interval", &self.poll_interval)
            .field("debounce", &self.debounce)
            .field("heartbeat", &self.heartbeat)
            .field("reconnect_max", &self.reconnect_max)
            .field("check_triggers", &self.check_triggers)
            .field("on_error", &self.on_error.is_some())
            .finish()
    }
}

impl RouteOptions {
    /// How often the whole table is reloaded whatever the notifications say: the safety net
    /// for a missed notification (default 60 s).
    ///
    /// ```
    /// let o = pgschemas_diesel::RouteOptions::default().full_reload_every(std::time::Duration::from_secs(30));
    /// ```
    pub fn full_reload_every(mut self, every: Duration) -> Self {
        self.full_reload = every.max(Duration::from_millis(10));
        self
    }

    /// How often the listening connection is checked for notifications (default 25 ms).
    /// The check reads the socket without a round trip; with the debounce, it bounds how
    /// long a change takes to reach the table.
    ///
    /// ```
    /// let o = pgschemas_diesel::RouteOptions::default().poll_interval(std::time::Duration::from_millis(10));
    /// ```
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = every.max(Duration::from_millis(1));
        self
    }

    /// How long to wait after a notification for more before reloading, so a burst of
    /// changes costs one reload (default 5 ms).
    ///
    /// ```
    /// let o = pgschemas_diesel::RouteOptions::default().debounce(std::time::Duration::ZERO);
    /// ```
    pub fn debounce(mut self, wait: Duration) -> Self {
        self.debounce = wait;
        self
    }

    /// After how long without traffic the listening connection is checked with `SELECT 1`
    /// (default 10 s); a dead connection is then replaced.
    ///
    /// ```
    /// let o = pgschemas_diesel::RouteOptions::default().heartbeat(std::time::Duration::from_secs(5));
    /// ```
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = every.max(Duration::from_millis(10));
        self
    }

    /// The longest wait between two reconnection attempts (default 5 s; the wait starts at
    /// 50 ms and doubles).
    ///
    /// ```
    /// let o = pgschemas_diesel::RouteOptions::default().reconnect_max(std::time::Duration::from_secs(1));
    /// ```
    pub fn reconnect_max(mut self, max: Duration) -> Self {
        self.reconnect_max = max.max(Duration::from_millis(50));
        self
    }

    /// Whether [`RouteTable::start`] checks that every table of
    /// [`Catalog::watched_tables`] has an enabled trigger notifying the
    /// [`ROUTES_CHANNEL`](crate::ROUTES_CHANNEL) (default `true`). Without one, changes reach
    /// the table only at the next full reload.
    ///
    /// ```
    /// let o = pgschemas_diesel::RouteOptions::default().check_triggers(false);
    /// ```
    pub fn check_triggers(mut self, check: bool) -> Self {
        self.check_triggers = check;
        self
    }

    /// A callback for the listener's errors (a lost connection, a failed reload). The table
    /// keeps answering from its last snapshot meanwhile.
    ///
    /// It also receives [`Error::InvalidRow`] for each catalog row a snapshot leaves out (a
    /// tenant whose schema name is not valid, a domain that cannot be routed, ...; see
    /// [`Routes::invalid_rows`]), once, when a snapshot first leaves it out: the other rows
    /// are served, and the table keeps following changes. Called from the thread that
    /// loaded the snapshot ([`RouteTable::start`] itself for the first), before the
    /// snapshot's version is published; so the callback must not call
    /// [`RouteTable::refresh`], which would wait for the load in progress.
    ///
    /// ```
    /// let o = pgschemas_diesel::RouteOptions::default().on_error(|e| eprintln!("routing: {e}"));
    /// ```
    pub fn on_error(mut self, hook: impl Fn(&Error) + Send + Sync + 'static) -> Self {
        self.on_error = Some(Arc::new(hook));
        self
    }
}

/// What a [`RouteTable`]'s listener is doing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RouteTableStatus {
    /// The version of the current snapshot ([`Routes::version`]).
    pub version: u64,
    /// Whether the listener holds a working connection.
    pub connected: bool,
    /// The listening connection's backend process id, while connected.
    pub listener_pid: Option<i32>,
    /// How many snapshots were loaded from the database.
    pub reloads: u64,
    /// How many times the listener replaced its connection after losing it.
    pub reconnects: u64,
    /// How many notifications the listener received.
    pub notifications: u64,
    /// The listener's last error, if any since it last loaded successfully.
    pub last_error: Option<String>,
}

/// Where snapshots come from.
struct Source {
    url: String,
    config: Config,
    catalog: Arc<dyn Catalog>,
    options: RouteOptions,
}

struct Shared {
    current: ArcSwap<Routes>,
    status: Mutex<RouteTableStatus>,
    changed: Condvar,
    /// Held while a snapshot is read from the database and stored, so that stores happen in
    /// the order of the reads; holds the connection [`RouteTable::refresh`] reuses.
    load: Mutex<Option<PgConnection>>,
    source: Option<Source>,
}

impl Shared {
    fn status(&self) -> MutexGuard<'_, RouteTableStatus> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update(&self, f: impl FnOnce(&mut RouteTableStatus)) {
        f(&mut self.status());
        self.changed.notify_all();
    }

    /// Publishes a freshly loaded snapshot; returns its version. The rows it leaves out that
    /// the current snapshot did not are reported first.
    fn store(&self, mut routes: Routes) -> u64 {
        if let Some(hook) = self
            .source
            .as_ref()
            .and_then(|s| s.options.on_error.as_ref())
        {
            let current = self.current.load();
            let known: HashSet<&InvalidRow> = current.invalid_rows().iter().collect();
            for row in routes.invalid_rows() {
                if !known.contains(row) {
                    hook(&Error::InvalidRow(row.clone()));
                }
            }
        }
        let mut status = self.status();
        status.version += 1;
        status.reloads += 1;
        status.last_error = None;
        routes.version = status.version;
        self.current.store(Arc::new(routes));
        let version = status.version;
        drop(status);
        self.changed.notify_all();
        version
    }

    fn report(&self, error: &Error) {
        // The hook first: whoever sees the status change sees the hook's effects.
        if let Some(hook) = self
            .source
            .as_ref()
            .and_then(|s| s.options.on_error.as_ref())
        {
            hook(error);
        }
        self.update(|s| s.last_error = Some(error.to_string()));
    }

    /// Reads a snapshot on `conn` and publishes it.
    fn reload(&self, conn: &mut PgConnection) -> Result<u64> {
        let Some(source) = &self.source else {
            return Ok(self.status().version);
        };
        let _order = self.load.lock().unwrap_or_else(PoisonError::into_inner);
        let routes = load(conn, source)?;
        Ok(self.store(routes))
    }
}

/// Stops the listener thread when the last [`RouteTable`] clone goes.
struct Listener {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

/// The live route table: answers [`resolve`](Self::resolve) from memory, without a query,
/// and follows changes to the tenant and domain tables.
///
/// [`start`](Self::start) loads the table and spawns a listener thread with its own
/// connection, which `LISTEN`s on the `pgschemas_routes` channel, reloads the table when
/// a notification arrives on [`ROUTES_CHANNEL`](crate::ROUTES_CHANNEL) (the triggers of the
/// default models' [shared migrations](crate::models::SHARED_MIGRATIONS), or those
/// [`install_route_triggers`](crate::install_route_triggers) puts on your own tables, send one
/// on every change), reloads it fully every minute as a safety net, and reconnects
/// with back-off when its connection drops. Readers never wait: each reload builds a new
/// [`Routes`] snapshot and swaps it in atomically. A miss is answered from memory too (the
/// table is complete), so unknown hosts cannot make the service query the database.
///
/// Cheap to clone; the listener stops when the last clone is dropped.
///
/// ```no_run
/// use std::sync::Arc;
/// use pgschemas_diesel::{Config, NoTenants, Resolution, RouteOptions, RouteTable, StaticTenant};
///
/// let config = Config::builder()
///     .static_tenant(StaticTenant::builder("www").domain("localhost"))
///     .build()?;
/// let table = RouteTable::start(
///     "postgres://postgres@127.0.0.1/app",
///     config,
///     Arc::new(NoTenants),
///     RouteOptions::default(),
/// )?;
/// match table.resolve("localhost:3000", "/") {
///     Resolution::Route(route) => println!("serve from {}", route.schema()),
///     other => println!("{other:?}"),
/// }
/// # Ok::<(), pgschemas_diesel::Error>(())
/// ```
#[derive(Clone)]
pub struct RouteTable {
    shared: Arc<Shared>,
    _listener: Option<Arc<Listener>>,
}

impl fmt::Debug for RouteTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouteTable")
            .field("routes", &**self.shared.current.load())
            .field("status", &*self.shared.status())
            .finish()
    }
}

impl RouteTable {
    /// A table that never changes: for tests, benchmarks, or a fixed set of tenants.
    ///
    /// ```
    /// use pgschemas_diesel::{Config, Resolution, Routes, RouteTable, StaticTenant};
    ///
    /// let config = Config::builder().static_tenant(StaticTenant::builder("www").domain("localhost")).build()?;
    /// let table = RouteTable::fixed(Routes::build(&config, &[], &[]));
    /// assert!(matches!(table.resolve("localhost", "/"), Resolution::Route(_)));
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn fixed(routes: Routes) -> Self {
        let status = RouteTableStatus {
            version: routes.version,
            ..RouteTableStatus::default()
        };
        Self {
            shared: Arc::new(Shared {
                current: ArcSwap::from_pointee(routes),
                status: Mutex::new(status),
                changed: Condvar::new(),
                load: Mutex::new(None),
                source: None,
            }),
            _listener: None,
        }
    }

    /// Connects to `database_url`, loads the table (static tenants from `config`, dynamic
    /// tenants and domains from `catalog`) and starts the listener.
    ///
    /// # Errors
    ///
    /// - [`Error::Connection`] when the database cannot be reached;
    /// - [`Error::Config`] when a watched table has no notify trigger (see
    ///   [`RouteOptions::check_triggers`]) or the listener thread cannot be spawned;
    /// - the catalog's errors ([`Error::Database`], ...) when the first load fails.
    ///
    /// A bad row of the catalog is no error: it is left out, and reported to
    /// [`RouteOptions::on_error`]; the other tenants are served.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use pgschemas_diesel::{Config, NoTenants, RouteOptions, RouteTable};
    ///
    /// let table = RouteTable::start("postgres://postgres@127.0.0.1/app", Config::default(),
    ///     Arc::new(NoTenants), RouteOptions::default())?;
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn start(
        database_url: impl Into<String>,
        config: Config,
        catalog: Arc<dyn Catalog>,
        options: RouteOptions,
    ) -> Result<Self> {
        let source = Source {
            url: database_url.into(),
            config,
            catalog,
            options,
        };
        let (mut conn, pid) = listen(&source)?;
        if source.options.check_triggers {
            check_triggers(&mut conn, &*source.catalog)?;
        }
        let routes = load(&mut conn, &source)?;
        let shared = Arc::new(Shared {
            current: ArcSwap::from_pointee(Routes::build(&source.config, &[], &[])),
            status: Mutex::new(RouteTableStatus {
                connected: true,
                listener_pid: Some(pid),
                ..RouteTableStatus::default()
            }),
            changed: Condvar::new(),
            load: Mutex::new(None),
            source: Some(source),
        });
        shared.store(routes);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let shared = Arc::clone(&shared);
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("pgschemas-routes".into())
                .spawn(move || run(&shared, &stop, conn))
                .map_err(|e| {
                    Error::Config(format!("could not start the route listener thread: {e}"))
                })?
        };
        Ok(Self {
            shared,
            _listener: Some(Arc::new(Listener {
                stop,
                thread: Some(thread),
            })),
        })
    }

    /// Resolves a request by host and target; see [`Routes::resolve`]. No query, no lock.
    ///
    /// ```
    /// # use pgschemas_diesel::{Config, Resolution, Routes, RouteTable};
    /// let table = RouteTable::fixed(Routes::build(&Config::default(), &[], &[]));
    /// assert!(matches!(table.resolve("unknown.example.com", "/"), Resolution::NotFound));
    /// ```
    pub fn resolve(&self, host: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Resolution {
        self.shared.current.load().resolve(host, target)
    }

    /// Resolves a tenant header value; see [`Routes::resolve_header`] (an unauthenticated
    /// switch: only behind a trusted gateway).
    ///
    /// ```
    /// # use pgschemas_diesel::{Config, Resolution, Routes, RouteTable};
    /// let table = RouteTable::fixed(Routes::build(&Config::default(), &[], &[]));
    /// assert!(matches!(table.resolve_header("tenant1"), Resolution::NotFound));
    /// ```
    pub fn resolve_header(&self, value: impl AsRef<[u8]>) -> Resolution {
        self.shared.current.load().resolve_header(value)
    }

    /// The current snapshot.
    ///
    /// ```
    /// # use pgschemas_diesel::{Config, Routes, RouteTable};
    /// let table = RouteTable::fixed(Routes::build(&Config::default(), &[], &[]));
    /// assert_eq!(table.routes().route_count(), 0);
    /// ```
    pub fn routes(&self) -> Arc<Routes> {
        self.shared.current.load_full()
    }

    /// The current snapshot's version; it grows by one with every reload.
    ///
    /// ```
    /// # use pgschemas_diesel::{Config, Routes, RouteTable};
    /// assert_eq!(RouteTable::fixed(Routes::build(&Config::default(), &[], &[])).version(), 0);
    /// ```
    pub fn version(&self) -> u64 {
        self.shared.status().version
    }

    /// The listener's state.
    ///
    /// ```
    /// # use pgschemas_diesel::{Config, Routes, RouteTable};
    /// let status = RouteTable::fixed(Routes::build(&Config::default(), &[], &[])).status();
    /// assert!(!status.connected);
    /// ```
    pub fn status(&self) -> RouteTableStatus {
        self.shared.status().clone()
    }

    /// Reloads the table now, on this thread, and returns the new version. Use it right
    /// after changing tenants or domains when the next request must see the change.
    ///
    /// # Errors
    ///
    /// [`Error::Connection`] or the catalog's errors; the table keeps its current snapshot.
    /// A [`fixed`](Self::fixed) table has nothing to reload: its version is returned.
    ///
    /// ```no_run
    /// # fn demo(table: pgschemas_diesel::RouteTable) -> Result<(), Box<dyn std::error::Error>> {
    /// let version = table.refresh()?;
    /// assert!(table.version() >= version);
    /// # Ok(()) }
    /// ```
    pub fn refresh(&self) -> Result<u64> {
        let Some(source) = &self.shared.source else {
            return Ok(self.version());
        };
        let mut slot = self
            .shared
            .load
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut conn = match slot.take() {
            Some(c) => c,
            None => connect(source)?,
        };
        let routes = load(&mut conn, source)?;
        *slot = Some(conn);
        Ok(self.shared.store(routes))
    }

    /// Waits until the table's version is at least `version`; `false` when `timeout`
    /// passed first.
    ///
    /// ```
    /// # use pgschemas_diesel::{Config, Routes, RouteTable};
    /// # use std::time::Duration;
    /// let table = RouteTable::fixed(Routes::build(&Config::default(), &[], &[]));
    /// assert!(table.wait_for_version(0, Duration::ZERO));
    /// assert!(!table.wait_for_version(1, Duration::from_millis(1)));
    /// ```
    pub fn wait_for_version(&self, version: u64, timeout: Duration) -> bool {
        self.wait_until(timeout, |s| s.version >= version)
    }

    /// Waits until `condition` holds for the listener's status (checked at every change);
    /// `false` when `timeout` passed first.
    ///
    /// ```
    /// # use pgschemas_diesel::{Config, Routes, RouteTable};
    /// # use std::time::Duration;
    /// let table = RouteTable::fixed(Routes::build(&Config::default(), &[], &[]));
    /// assert!(!table.wait_until(Duration::from_millis(1), |s| s.connected));
    /// ```
    pub fn wait_until(
        &self,
        timeout: Duration,
        mut condition: impl FnMut(&RouteTableStatus) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        let mut status = self.shared.status();
        loop {
            if condition(&status) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            status = self
                .shared
                .changed
                .wait_timeout(status, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// A connection with the neutral search path.
fn connect(source: &Source) -> Result<PgConnection> {
    let mut conn = PgConnection::establish(&source.url)?;
    set_path(&mut conn, source.config.neutral_path())?;
    Ok(conn)
}

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

/// A connection listening on the routes channel, and its backend pid.
fn listen(source: &Source) -> Result<(PgConnection, i32)> {
    let mut conn = connect(source)?;
    conn.batch_execute(&format!("LISTEN {ROUTES_CHANNEL}"))?;
    let pid = diesel::sql_query("SELECT pg_backend_pid() AS pid").get_result::<Pid>(&mut conn)?;
    Ok((conn, pid.pid))
}

/// One consistent read of the catalog (one repeatable-read snapshot), built into routes; a
/// bad row is left out, never a reason to fail.
fn load(conn: &mut PgConnection, source: &Source) -> Result<Routes> {
    let rows = conn
        .build_transaction()
        .read_only()
        .repeatable_read()
        .run(|c| CatalogRows::read(&*source.catalog, c))?;
    Ok(Routes::from_rows(&source.config, &rows))
}

#[derive(QueryableByName)]
struct Check {
    #[diesel(sql_type = Bool)]
    exists: bool,
    #[diesel(sql_type = Bool)]
    notifies: bool,
}

/// Every watched table exists and has an enabled trigger that notifies the routes channel.
fn check_triggers(conn: &mut PgConnection, catalog: &dyn Catalog) -> Result<()> {
    for (schema, table) in catalog.watched_tables() {
        let qualified = format!(
            "{}.{}",
            crate::name::quote_ident(&schema),
            crate::name::quote_ident(&table)
        );
        let check = diesel::sql_query(
            "SELECT to_regclass($1) IS NOT NULL AS exists, EXISTS (
                 SELECT 1 FROM pg_catalog.pg_trigger t
                 JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
                 WHERE t.tgrelid = to_regclass($1) AND NOT t.tgisinternal
                   AND t.tgenabled <> 'D' AND p.prosrc LIKE '%' || $2 || '%'
             ) AS notifies",
        )
        .bind::<Text, _>(&qualified)
        .bind::<Text, _>(ROUTES_CHANNEL)
        .get_result::<Check>(conn)?;
        if !check.exists {
            return Err(Error::Config(format!(
                "routing watches table {qualified}, which does not exist; run the shared migrations first"
            )));
        }
        if !check.notifies {
            return Err(Error::Config(format!(
                "table {qualified} has no trigger notifying channel {ROUTES_CHANNEL:?}, so route changes would wait for the next full reload; install it with pgschemas_diesel::install_route_triggers (or the SQL of pgschemas_diesel::route_trigger_sql in a shared migration), or turn this check off with RouteOptions::check_triggers(false)"
            )));
        }
    }
    Ok(())
}

/// The listener thread: serve on a connection until it fails, reconnect, repeat.
fn run(shared: &Shared, stop: &AtomicBool, conn: PgConnection) {
    let Some(source) = &shared.source else {
        return;
    };
    let options = &source.options;
    let mut conn = Some(conn);
    let mut backoff = Duration::from_millis(50);
    while !stop.load(Ordering::SeqCst) {
        let c = match conn.take() {
            Some(c) => c,
            None => match reconnect(shared, source) {
                Ok(c) => {
                    backoff = Duration::from_millis(50);
                    c
                }
                Err(e) => {
                    shared.report(&e);
                    std::thread::park_timeout(backoff);
                    backoff = (backoff * 2).min(options.reconnect_max);
                    continue;
                }
            },
        };
        if let Err(e) = serve(shared, stop, source, c) {
            shared.update(|s| {
                s.connected = false;
                s.listener_pid = None;
            });
            shared.report(&e);
        }
    }
}

/// A new listening connection and a full reload on it (changes made while disconnected
/// were not notified).
fn reconnect(shared: &Shared, source: &Source) -> Result<PgConnection> {
    let (mut conn, pid) = listen(source)?;
    shared.reload(&mut conn)?;
    shared.update(|s| {
        s.connected = true;
        s.listener_pid = Some(pid);
        s.reconnects += 1;
    });
    Ok(conn)
}

/// Waits for notifications on `conn` and reloads; returns when stopped (`Ok`) or when the
/// connection fails (`Err`).
fn serve(
    shared: &Shared,
    stop: &AtomicBool,
    source: &Source,
    mut conn: PgConnection,
) -> Result<()> {
    let options = &source.options;
    let mut last_load = Instant::now();
    let mut last_traffic = Instant::now();
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let mut received = drain(&mut conn)?;
        if received > 0 {
            if !options.debounce.is_zero() {
                std::thread::sleep(options.debounce);
                received += drain(&mut conn)?;
            }
            shared.update(|s| s.notifications += received);
            shared.reload(&mut conn)?;
            last_load = Instant::now();
            last_traffic = last_load;
        } else if last_load.elapsed() >= options.full_reload {
            shared.reload(&mut conn)?;
            last_load = Instant::now();
            last_traffic = last_load;
        } else if last_traffic.elapsed() >= options.heartbeat {
            conn.batch_execute("SELECT 1")?;
            last_traffic = Instant::now();
        }
        std::thread::park_timeout(options.poll_interval);
    }
}

/// Reads the notifications that arrived (no round trip); fails when the connection is gone.
fn drain(conn: &mut PgConnection) -> Result<u64> {
    let mut n = 0;
    for notification in conn.notifications_iter() {
        notification?;
        n += 1;
    }
    Ok(n)
}
