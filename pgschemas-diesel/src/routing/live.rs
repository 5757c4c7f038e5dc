//! The live route table: a snapshot swapped atomically, kept fresh by `LISTEN/NOTIFY`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::catalog::Catalog;
use crate::config::Config;
use crate::error::Result;

use super::listener::Listener;
use super::options::RouteOptions;
use super::origin::{Origin, check_triggers, listen, read_routes};
use super::route::Resolution;
use super::snapshot::Routes;
use super::state::{RouteTableStatus, Shared};

/// The live route table: answers [`resolve`](Self::resolve) from memory, without a query,
/// and follows changes to the tenant and domain tables.
///
/// [`start`](Self::start) loads the table and spawns a listener thread with its own
/// connection, which `LISTEN`s on the `pgschemas_routes` channel, reloads the table when
/// a notification arrives on [`ROUTES_CHANNEL`](crate::models::ROUTES_CHANNEL) (the triggers of the
/// default models' [shared migrations](crate::models::SHARED_MIGRATIONS), or those
/// [`install_route_triggers`](crate::models::install_route_triggers) puts on your own tables, send one
/// on every change), reloads it fully every minute as a safety net, and reconnects
/// with back-off when its connection drops. Readers never wait: each reload builds a new
/// [`Routes`] snapshot and swaps it in atomically. A miss is answered from memory too (the
/// table is complete), so unknown hosts cannot make the service query the database.
///
/// Cheap to clone; the listener stops when the last clone is dropped.
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database(); let database_url = db.url();
/// use std::sync::Arc;
/// use pgschemas_diesel::{Config, StaticTenant};
/// use pgschemas_diesel::catalog::NoTenants;
/// use pgschemas_diesel::routing::{Resolution, RouteOptions, RouteTable};
///
/// let config = Config::builder()
///     .static_tenant(StaticTenant::builder("www").domain("localhost"))
///     .build()?;
/// let table = RouteTable::start(
///     database_url,
///     config,
///     Arc::new(NoTenants),
///     RouteOptions::default(),
/// )?;
/// match table.resolve("localhost:3000", "/") {
///     Resolution::Route(route) => assert_eq!(route.schema().as_str(), "www"), // serve from www
///     other => panic!("localhost is www's: {other:?}"),
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
    /// use pgschemas_diesel::{Config, StaticTenant};
    /// use pgschemas_diesel::routing::{Resolution, RouteTable, Routes};
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
            shared: Arc::new(Shared::new(routes, status, None)),
            _listener: None,
        }
    }

    /// Connects to `database_url`, loads the table (static tenants from `config`, dynamic
    /// tenants and domains from `catalog`) and starts the listener.
    ///
    /// # Errors
    ///
    /// - [`Error::Connection`](crate::Error::Connection) when the database cannot be
    ///   reached;
    /// - [`Error::WatchedTableMissing`](crate::Error::WatchedTableMissing) or
    ///   [`Error::RouteTriggerMissing`](crate::Error::RouteTriggerMissing) when a watched table
    ///   is missing or has no notify trigger (see [`RouteOptions::check_triggers`]);
    ///   [`Error::Spawn`](crate::Error::Spawn) when the listener thread cannot be spawned;
    /// - the catalog's errors ([`Error::Database`](crate::Error::Database), ...) when the first
    ///   load fails.
    ///
    /// A bad row of the catalog is no error: it is left out, and reported to
    /// [`RouteOptions::on_error`]; the other tenants are served.
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database(); let database_url = db.url();
    /// use std::sync::Arc;
    /// use pgschemas_diesel::Config;
    /// use pgschemas_diesel::catalog::NoTenants;
    /// use pgschemas_diesel::routing::{RouteOptions, RouteTable};
    ///
    /// let table = RouteTable::start(database_url, Config::default(),
    ///     Arc::new(NoTenants), RouteOptions::default())?;
    /// assert!(table.status().connected);
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn start(
        database_url: impl Into<String>,
        config: Config,
        catalog: Arc<dyn Catalog>,
        options: RouteOptions,
    ) -> Result<Self> {
        let source = Origin {
            url: database_url.into(),
            config,
            catalog,
            options,
        };
        let (mut conn, pid) = listen(&source)?;
        if source.options.check_triggers {
            check_triggers(&mut conn, &source.config, &*source.catalog)?;
        }
        let routes = read_routes(&mut conn, &source)?;
        let status = RouteTableStatus {
            connected: true,
            listener_pid: Some(pid),
            ..RouteTableStatus::default()
        };
        let empty = Routes::build(&source.config, &[], &[]);
        let shared = Arc::new(Shared::new(empty, status, Some(source)));
        shared.store(routes);
        let listener = Listener::spawn(&shared, conn)?;
        Ok(Self {
            shared,
            _listener: Some(Arc::new(listener)),
        })
    }

    /// Resolves a request by host and target; see [`Routes::resolve`]. No query, no lock.
    ///
    /// ```
    /// # use pgschemas_diesel::Config;
    /// # use pgschemas_diesel::routing::{Resolution, RouteTable, Routes};
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
    /// # use pgschemas_diesel::Config;
    /// # use pgschemas_diesel::routing::{Resolution, RouteTable, Routes};
    /// let table = RouteTable::fixed(Routes::build(&Config::default(), &[], &[]));
    /// assert!(matches!(table.resolve_header("tenant1"), Resolution::NotFound));
    /// ```
    pub fn resolve_header(&self, value: impl AsRef<[u8]>) -> Resolution {
        self.shared.current.load().resolve_header(value)
    }

    /// The current snapshot.
    ///
    /// ```
    /// # use pgschemas_diesel::Config;
    /// # use pgschemas_diesel::routing::{RouteTable, Routes};
    /// let table = RouteTable::fixed(Routes::build(&Config::default(), &[], &[]));
    /// assert_eq!(table.routes().route_count(), 0);
    /// ```
    pub fn routes(&self) -> Arc<Routes> {
        self.shared.current.load_full()
    }

    /// The current snapshot's version; it grows by one with every reload.
    ///
    /// ```
    /// # use pgschemas_diesel::Config;
    /// # use pgschemas_diesel::routing::{RouteTable, Routes};
    /// assert_eq!(RouteTable::fixed(Routes::build(&Config::default(), &[], &[])).version(), 0);
    /// ```
    pub fn version(&self) -> u64 {
        self.shared.status().version
    }

    /// The listener's state.
    ///
    /// ```
    /// # use pgschemas_diesel::Config;
    /// # use pgschemas_diesel::routing::{RouteTable, Routes};
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
    /// [`Error::Connection`](crate::Error::Connection) or the catalog's errors; the table keeps
    /// its current snapshot.
    /// A [`fixed`](Self::fixed) table has nothing to reload: its version is returned.
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database().models().tenant("acme", &["acme.example.com"]);
    /// # let catalog = std::sync::Arc::new(pgschemas_diesel::models::default_catalog());
    /// # let table = pgschemas_diesel::routing::RouteTable::start(db.url(), pgschemas_diesel::Config::default(), catalog, Default::default())?;
    /// # let mut conn = db.connect();
    /// use diesel::RunQueryDsl;
    /// use pgschemas_diesel::routing::Resolution;
    ///
    /// diesel::sql_query("update domains set domain = 'acme.example.org'").execute(&mut conn)?;
    /// let version = table.refresh()?; // the next request must see the change
    /// assert!(table.version() >= version);
    /// assert!(matches!(table.resolve("acme.example.org", "/"), Resolution::Route(_)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn refresh(&self) -> Result<u64> {
        self.shared.refresh()
    }

    /// Waits until the table's version is at least `version`; `false` when `timeout`
    /// passed first.
    ///
    /// ```
    /// # use pgschemas_diesel::Config;
    /// # use pgschemas_diesel::routing::{RouteTable, Routes};
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
    /// # use pgschemas_diesel::Config;
    /// # use pgschemas_diesel::routing::{RouteTable, Routes};
    /// # use std::time::Duration;
    /// let table = RouteTable::fixed(Routes::build(&Config::default(), &[], &[]));
    /// assert!(!table.wait_until(Duration::from_millis(1), |s| s.connected));
    /// ```
    pub fn wait_until(
        &self,
        timeout: Duration,
        condition: impl FnMut(&RouteTableStatus) -> bool,
    ) -> bool {
        self.shared.wait_until(timeout, condition)
    }
}
