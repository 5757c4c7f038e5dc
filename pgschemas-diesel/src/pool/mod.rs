//! A pool whose connections always carry the right `search_path`.

use std::fmt;

use diesel::PgConnection;
use diesel::connection::SimpleConnection;
use diesel::r2d2::ConnectionManager;

use crate::activate::{Schema, run_in_transaction};
use crate::checkout::{self, Leftover, Login, LoginRow, Refusal};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::observe;
use crate::path::SearchPath;
use crate::roles::{Acting, LoginFacts, PathRole};
use crate::take::{self, Attempts, Served, Verdict};
use crate::transaction;

mod scope;

pub use scope::{NestedScope, TenantScope};

/// Diesel's r2d2 connection manager for PostgreSQL.
pub type Manager = ConnectionManager<PgConnection>;

type Pooled = r2d2::PooledConnection<Manager>;

/// The one thing the pool records of a physical connection (in r2d2's per-connection
/// extensions) for its safety, because the server cannot tell it: that the connection must
/// never be handed out again. What the session's state is, every checkout proves instead
/// (`checkout`). (Beside it, [`Served`] counts the tenants it served, for the
/// `max_tenants_per_connection` policy.)
#[derive(Clone, Copy)]
struct Discard;

/// The login `conn` was made as: recorded in r2d2's extensions, read from the server the
/// first time (a failure is the connection's own). With per-tenant roles, the same statement
/// reads what the mode requires of the login, checked for what the pool is `acting` as (a
/// login that fails it is the caller's error: every connection of the pool has it).
fn login_of(
    conn: &mut Pooled,
    path: &SearchPath,
    config: &Config,
    acting: Acting,
) -> Result<Login, Refusal> {
    if let Some(login) = r2d2::PooledConnection::extensions(conn).get::<Login>() {
        let checked = r2d2::PooledConnection::extensions(conn).get::<Checked>();
        if config.tenant_roles().is_none() || checked == Some(&Checked(acting)) {
            return Ok(login.clone());
        }
    }
    let db = |e| Refusal::Connection(Error::db(path.schema().as_str(), e));
    let login = match config.tenant_roles() {
        None => {
            let row: LoginRow =
                diesel::RunQueryDsl::get_result(diesel::sql_query(Login::QUERY), &mut **conn)
                    .map_err(db)?;
            Login::from_row(row)
        }
        Some(roles) => {
            let facts: LoginFacts =
                diesel::RunQueryDsl::get_result(LoginFacts::query(roles), &mut **conn)
                    .map_err(db)?;
            facts.check(acting, roles).map_err(Refusal::Schema)?;
            r2d2::PooledConnection::extensions_mut(conn).insert(Checked(acting));
            Login {
                name: facts.login,
                database: facts.database,
            }
        }
    };
    r2d2::PooledConnection::extensions_mut(conn).insert(login.clone());
    Ok(login)
}

/// Recorded once a connection's login passed the per-tenant roles checks for a pool acting
/// as given.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Checked(Acting);

/// Recorded once the connection has the session form's sentinel statement prepared; the
/// record only picks the message, the server proves it (a missing sentinel fails the
/// checkout, and the connection is discarded).
#[derive(Clone, Copy)]
struct Prepared;

/// A pool of PostgreSQL connections over r2d2 that hands out connections with the right
/// `search_path` and never lets a tenant's path reach another checkout.
///
/// - [`get`](Self::get) gives a connection with the neutral path (the shared schema);
/// - [`scope`](Self::scope) gives a [`TenantScope`] with a tenant's path;
/// - [`transaction`](Self::transaction) runs a closure in a transaction with `SET LOCAL`,
///   the form to use behind PgBouncer in transaction pooling mode.
///
/// Every checkout sends one statement, in the round trip r2d2's own liveness check would
/// cost: it returns the session to its state at connection (role, settings, cursors,
/// listeners, temporary objects, advisory locks), sets the path and proves, from what the
/// server reports, that the schema exists and is usable and that no transaction was left
/// open. A connection that fails the proof for a reason of its own is discarded and another
/// one tried; one marked for discard is never handed out again. `docs/isolation.md` lists
/// every threat and the test that covers it.
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database().notes(&["customer1"]); let database_url = db.url();
/// use diesel::RunQueryDsl;
/// use pgschemas_diesel::{Config, SchemaConnection, TenantPool};
///
/// let pool = TenantPool::new(database_url, Config::default())?;
/// let mut conn = pool.scope(&"customer1")?; // search_path = "customer1", "public"
/// diesel::sql_query("insert into notes (body) values ('hello')").execute(&mut *conn)?;
/// drop(conn);
/// let mut plain = pool.get()?; // search_path = "public" again
/// assert_eq!(plain.current_schema()?.as_deref(), Some("public"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct TenantPool {
    inner: r2d2::Pool<Manager>,
    config: Config,
    acting: Acting,
}

impl fmt::Debug for TenantPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantPool")
            .field("state", &self.inner.state())
            .field("config", &self.config)
            .field("acting", &self.acting)
            .finish()
    }
}

impl TenantPool {
    /// A pool of up to 10 connections to `database_url` (r2d2's defaults).
    ///
    /// # Errors
    ///
    /// [`Error::Pool`] when no connection can be made within r2d2's timeout.
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database(); let database_url = db.url();
    /// let pool = pgschemas_diesel::TenantPool::new(database_url, pgschemas_diesel::Config::default())?;
    /// assert_eq!(pool.max_size(), 10);
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn new(database_url: impl Into<String>, config: Config) -> Result<Self> {
        Self::with_builder(database_url, config, r2d2::Pool::builder())
    }

    /// A pool built with your own r2d2 settings (size, timeouts, `max_lifetime`).
    ///
    /// The pool checks connections at checkout itself, with the statement that sets the path,
    /// so r2d2's `test_on_check_out` is turned off. Keep `max_lifetime` on (r2d2's default):
    /// each backend's catalog cache grows with every tenant it touches.
    ///
    /// # Errors
    ///
    /// [`Error::Pool`] when no connection can be made within the builder's timeout.
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database(); let database_url = db.url();
    /// use pgschemas_diesel::{Config, TenantPool};
    ///
    /// let pool = TenantPool::with_builder(
    ///     database_url,
    ///     Config::default(),
    ///     r2d2::Pool::builder().max_size(4),
    /// )?;
    /// assert_eq!(pool.max_size(), 4);
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn with_builder(
        database_url: impl Into<String>,
        config: Config,
        builder: r2d2::Builder<Manager>,
    ) -> Result<Self> {
        Self::build(database_url, config, builder, Acting::App)
    }

    /// A pool for migrations, provisioning and drops in the per-tenant roles mode: every
    /// checkout, tenant or neutral, runs as the DDL role. Its login must be the DDL role or a
    /// member of it; the application's login may not be (see
    /// [`ConfigBuilder::tenant_roles`](crate::ConfigBuilder::tenant_roles)), so this pool
    /// connects with a URL of its own. Without tenant roles it is a pool like
    /// [`new`](Self::new)'s.
    ///
    /// # Errors
    ///
    /// [`Error::Login`] when the login cannot act as the DDL role; [`Error::Pool`].
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database(); let database_url = db.url();
    /// let pool = pgschemas_diesel::TenantPool::ddl(database_url, pgschemas_diesel::Config::default())?;
    /// assert!(pool.is_ddl());
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn ddl(database_url: impl Into<String>, config: Config) -> Result<Self> {
        Self::ddl_with_builder(database_url, config, r2d2::Pool::builder())
    }

    /// [`ddl`](Self::ddl) with your own r2d2 settings.
    ///
    /// # Errors
    ///
    /// As [`ddl`](Self::ddl).
    pub fn ddl_with_builder(
        database_url: impl Into<String>,
        config: Config,
        builder: r2d2::Builder<Manager>,
    ) -> Result<Self> {
        Self::build(database_url, config, builder, Acting::Ddl)
    }

    fn build(
        database_url: impl Into<String>,
        config: Config,
        builder: r2d2::Builder<Manager>,
        acting: Acting,
    ) -> Result<Self> {
        let inner = builder
            .test_on_check_out(false)
            .build(ConnectionManager::new(database_url))?;
        let pool = Self {
            inner,
            config,
            acting,
        };
        pool.check_login()?;
        Ok(pool)
    }

    /// With per-tenant roles on, checks one connection's login for what this pool acts as,
    /// at once ([`Error::Login`] says what to change); nothing otherwise.
    fn check_login(&self) -> Result<()> {
        if self.config.tenant_roles().is_none() {
            return Ok(());
        }
        let path = self.config.neutral_path();
        let mut conn = self.unmarked()?;
        login_of(&mut conn, path, &self.config, self.acting)
            .map(drop)
            .map_err(Refusal::into_error)
    }

    /// This pool's connections acting as the DDL role (see [`ddl`](Self::ddl)), for a pool
    /// made with [`from_r2d2`](Self::from_r2d2) or [`new`](Self::new). Without tenant roles
    /// this changes nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Login`] when the login cannot act as the DDL role; [`Error::Pool`].
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database(); let pool = db.pool();
    /// let ddl = pool.clone().for_ddl()?;
    /// assert_eq!(ddl.max_size(), pool.max_size());
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn for_ddl(mut self) -> Result<Self> {
        self.acting = Acting::Ddl;
        self.check_login()?;
        Ok(self)
    }

    /// Whether this pool acts as the DDL role ([`for_ddl`](Self::for_ddl)).
    pub fn is_ddl(&self) -> bool {
        self.acting == Acting::Ddl
    }

    /// `path` as this pool runs it: as the DDL role when it acts as that role with tenant
    /// roles on.
    fn acting_path(&self, path: SearchPath) -> SearchPath {
        match (self.acting, self.config.tenant_roles()) {
            (Acting::Ddl, Some(roles)) => path.with_role(PathRole::Named(roles.ddl_role().clone())),
            _ => path,
        }
    }

    /// Wraps an existing r2d2 pool. Connections taken from `pool` directly (not through this
    /// wrapper) do not get their path managed: use the wrapper everywhere. The pool's own
    /// `test_on_check_out` setting is kept (build it with `test_on_check_out(false)`, or use
    /// [`with_builder`](Self::with_builder), to save r2d2's extra `SELECT 1` per checkout).
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database(); let database_url = db.url();
    /// use diesel::r2d2::ConnectionManager;
    /// use pgschemas_diesel::{Config, TenantPool};
    ///
    /// let r2d2 = r2d2::Pool::builder().max_size(3).build(ConnectionManager::new(database_url))?;
    /// let pool = TenantPool::from_r2d2(r2d2, Config::default());
    /// assert_eq!(pool.max_size(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_r2d2(pool: r2d2::Pool<Manager>, config: Config) -> Self {
        Self {
            inner: pool,
            config,
            acting: Acting::App,
        }
    }

    /// The configuration paths are built from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The underlying r2d2 pool's state (connections, idle connections).
    pub fn state(&self) -> r2d2::State {
        self.inner.state()
    }

    /// The pool's maximum size.
    pub fn max_size(&self) -> u32 {
        self.inner.max_size()
    }

    /// A connection with the neutral path (the shared schema, then the extras).
    ///
    /// # Errors
    ///
    /// [`Error::Pool`]; [`Error::SchemaNotFound`] / [`Error::SchemaNotUsable`] for the shared
    /// schema; [`Error::Database`] when no connection passes the checkout's proof.
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database(); let pool = db.pool();
    /// let mut conn = pool.get()?;
    /// assert_eq!(conn.schema().as_str(), "public");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get(&self) -> Result<TenantScope> {
        let path = self.acting_path(self.config.neutral_path().clone());
        let conn = self.checkout(&path, "neutral")?;
        Ok(TenantScope::new(conn, path, self.config.clone()))
    }

    /// A connection whose path is `schema`'s: `<schema>, <shared>, <extras>`.
    ///
    /// One round trip, which also proves the connection (see the type's documentation).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSchemaName`]; [`Error::SchemaNotFound`] when the schema does not
    /// exist; [`Error::SchemaNotUsable`] when the login role has no `USAGE` on it;
    /// [`Error::Pool`]; [`Error::Database`] when no connection passes the proof.
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database().notes(&["customer1"]); let pool = db.pool();
    /// let mut conn = pool.scope(&"customer1")?;
    /// assert_eq!(conn.schema().as_str(), "customer1");
    /// assert!(matches!(pool.scope(&"nobody"), Err(pgschemas_diesel::Error::SchemaNotFound { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn scope<S: Schema + ?Sized>(&self, schema: &S) -> Result<TenantScope> {
        let path = self.acting_path(self.config.search_path(schema)?);
        let conn = self.checkout(&path, "session")?;
        Ok(TenantScope::new(conn, path, self.config.clone()))
    }

    /// Runs `f` in a transaction scoped to `schema`, committing on `Ok` and rolling back on
    /// `Err` or panic. The path ends with the transaction, so this form is correct behind
    /// PgBouncer in transaction pooling mode, where the session form ([`scope`](Self::scope))
    /// is not.
    ///
    /// One round trip opens it: the checkout's reset and proof, committed on their own, then
    /// `BEGIN` and `SET LOCAL search_path`. The session's own path is left empty, so a
    /// statement `f` runs after ending the transaction itself (a raw `COMMIT`) finds no
    /// tenant's table instead of the shared schema's.
    ///
    /// # Errors
    ///
    /// `f`'s error, or [`Error`] converted into `E`: [`Error::SchemaNotFound`] /
    /// [`Error::SchemaNotUsable`] (then `f` does not run), [`Error::Pool`],
    /// [`Error::Database`].
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database().notes(&["customer1"]); let pool = db.pool();
    /// use diesel::RunQueryDsl;
    ///
    /// let rows = pool.transaction(&"customer1", |conn| {
    ///     diesel::sql_query("insert into notes (body) values ('hello')").execute(conn)?;
    ///     diesel::sql_query("update notes set body = upper(body)").execute(conn)
    ///         .map_err(pgschemas_diesel::Error::from)
    /// })?;
    /// assert_eq!(rows, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn transaction<S, T, E, F>(&self, schema: &S, f: F) -> Result<T, E>
    where
        S: Schema + ?Sized,
        F: FnOnce(&mut PgConnection) -> Result<T, E>,
        E: From<Error>,
    {
        let path = self.acting_path(self.config.search_path(schema)?);
        let mut conn = self.take(&path, "transaction", |conn| {
            let login = login_of(conn, &path, &self.config, self.acting)?;
            let begin =
                checkout::transaction_sql(&path, &login, self.config.verify_prepared_statements());
            transaction::begin(conn, &begin)
                .map_err(|e| checkout::explain(conn, &path, e, Leftover::Transaction))?;
            drain_notifications(conn);
            Ok(())
        })?;
        let span = observe::transaction_span(path.schema().as_str());
        observe::record_namespace(&span, database_of(&conn), path.schema().as_str());
        let result = {
            // A panic in `f` unwinds past the check-in below; r2d2 then closes the connection.
            let _reported = observe::PanicReport(path.schema().as_str());
            span.in_scope(|| run_in_transaction(&mut conn, &path, f))
        };
        // Still open, or unknown (Diesel's record is broken): never hand it out again.
        if !take::may_return(transaction::is_open(&mut conn)) {
            observe::discarded(Some(path.schema().as_str()), "transaction_left_open", None);
            discard(&mut conn);
        }
        check_in(&mut conn);
        result
    }

    /// Takes a connection that passes the checkout statement for `path`.
    fn checkout(&self, path: &SearchPath, form: &'static str) -> Result<Pooled> {
        self.take(path, form, |conn| {
            let sql = checkout::session_sql(
                path,
                &login_of(conn, path, &self.config, self.acting)?,
                self.config.verify_prepared_statements(),
            );
            if r2d2::PooledConnection::extensions(conn)
                .get::<Prepared>()
                .is_none()
            {
                conn.batch_execute(&checkout::prepare_sql())
                    .map_err(|e| Refusal::Connection(Error::db(path.schema().as_str(), e)))?;
                r2d2::PooledConnection::extensions_mut(conn).insert(Prepared);
            }
            conn.batch_execute(&sql)
                .map_err(|e| checkout::explain(conn, path, e, Leftover::Session))?;
            drain_notifications(conn);
            Ok(())
        })
    }

    /// Takes connections from r2d2 until one passes `prove`: a connection marked for discard
    /// is destroyed unused; one that fails for a reason of its own is marked and destroyed,
    /// and the next one tried; a refusal of the schema is the caller's error at once.
    fn take(
        &self,
        path: &SearchPath,
        form: &'static str,
        mut prove: impl FnMut(&mut Pooled) -> Result<(), Refusal>,
    ) -> Result<Pooled> {
        let schema = path.schema().as_str();
        let span = observe::checkout_span(form, schema);
        let _entered = span.enter();
        let mut attempts = Attempts::new(self.inner.max_size() as usize);
        while attempts.another() {
            let mut conn = self.unmarked()?;
            match prove(&mut conn) {
                Ok(()) => {
                    observe::record_namespace(&span, database_of(&conn), schema);
                    let switched = record_served(&mut conn, path, &self.config);
                    observe::served(form, schema, switched);
                    return Ok(conn);
                }
                Err(refusal) => match attempts.failed(refusal) {
                    Verdict::Refused(e) => return Err(e),
                    Verdict::Discard => discard(&mut conn),
                },
            }
        }
        Err(attempts.exhausted(path))
    }

    /// Takes a connection from r2d2 that may be handed out ([`is_retired`]); a retired one
    /// is destroyed unused.
    fn unmarked(&self) -> Result<Pooled> {
        loop {
            let mut conn = self.inner.get()?;
            if !is_retired(&conn) {
                return Ok(conn);
            }
            discard(&mut conn);
        }
    }
}

/// Drops the notifications libpq holds for this connection: they were sent for an earlier
/// user's `LISTEN` (the checkout's `UNLISTEN *` stops new ones). Reads only what has
/// arrived; no round trip. Diesel's iterator yields an error for ever once the socket is
/// gone, so the first error ends the drain (the caller's first statement then fails).
fn drain_notifications(conn: &mut PgConnection) {
    let mut notifications = conn.notifications_iter();
    while let Some(Ok(_)) = notifications.next() {}
}

/// Whether the connection was marked for discard.
fn is_marked(conn: &Pooled) -> bool {
    r2d2::PooledConnection::extensions(conn)
        .get::<Discard>()
        .is_some()
}

/// Records in the connection's extensions that it was given `path` ([`Served`]); nothing is
/// kept when the configuration sets no limit. Returns whether the connection's previous
/// checkout was for another schema (tracked with the `metrics` feature only; `false`
/// without).
fn record_served(conn: &mut Pooled, path: &SearchPath, config: &Config) -> bool {
    let switched = switched(conn, path);
    if config.max_tenants_per_connection().is_none() {
        return switched;
    }
    let extensions = r2d2::PooledConnection::extensions_mut(conn);
    if let Some(served) = extensions.get_mut::<Served>() {
        served.record(path, config);
    } else {
        let mut served = Served::default();
        served.record(path, config);
        extensions.insert(served);
    }
    switched
}

/// The schema of a connection's previous checkout (feature `metrics`).
#[cfg(feature = "metrics")]
struct LastSchema(crate::name::SchemaName);

/// Whether `conn`'s previous checkout was for another schema than `path`'s, remembering
/// `path`'s (feature `metrics`; always `false` without it).
fn switched(conn: &mut Pooled, path: &SearchPath) -> bool {
    #[cfg(feature = "metrics")]
    {
        let extensions = r2d2::PooledConnection::extensions_mut(conn);
        let switched = extensions
            .get::<LastSchema>()
            .is_some_and(|last| last.0 != *path.schema());
        extensions.insert(LastSchema(path.schema().clone()));
        switched
    }
    #[cfg(not(feature = "metrics"))]
    {
        let _ = (conn, path);
        false
    }
}

/// Whether the connection must not be handed out again: marked for discard, or it has
/// served the configured number of tenants.
fn is_retired(conn: &Pooled) -> bool {
    is_marked(conn)
        || r2d2::PooledConnection::extensions(conn)
            .get::<Served>()
            .is_some_and(Served::spent)
}

/// Readies the connection to go back to r2d2: a retired one is discarded ([`is_retired`]);
/// one that r2d2 will close (the thread unwinds a panic, or the server connection is closed)
/// is reported here, as r2d2 closes it silently.
fn check_in(conn: &mut Pooled) {
    if !is_marked(conn) {
        let reason = if std::thread::panicking() {
            Some("panic")
        } else if !take::may_return(transaction::is_open(conn)) {
            Some("transaction_left_open")
        } else if diesel::r2d2::R2D2Connection::is_broken(&mut **conn) {
            Some("broken")
        } else {
            None
        };
        if let Some(reason) = reason {
            observe::discarded(None, reason, None);
            discard(conn);
            return;
        }
    }
    if is_retired(conn) {
        // A marked connection was reported when it was marked; a spent one is routine.
        if !is_marked(conn) {
            observe::retired();
        }
        discard(conn);
    }
}

/// The database of a connection the checkout proved (read with its login), or `""`.
fn database_of(conn: &Pooled) -> &str {
    r2d2::PooledConnection::extensions(conn)
        .get::<Login>()
        .map_or("", |l| l.database.as_str())
}

/// Marks the connection for discard, for good, and tells r2d2 to destroy it when it returns.
///
/// Diesel clears its own "broken" flag after any statement that succeeds, so the mark lives
/// in the connection's extensions, and the flag is raised again each time the connection goes
/// back ([`TenantScope`]'s `Drop`) and whenever a checkout meets it.
fn discard(conn: &mut Pooled) {
    r2d2::PooledConnection::extensions_mut(conn).insert(Discard);
    transaction::mark_broken(conn);
}

/// An r2d2 customizer that turns Diesel's prepared-statement cache off on every new
/// connection.
///
/// Needed behind PgBouncer in transaction pooling mode before version 1.21, which does not
/// support named prepared statements: Diesel then sends every query as an unnamed statement.
///
/// ```
/// # use pgschemas_diesel::testing::{PgBouncer, PoolMode, server_url};
/// # let db = pgschemas_diesel::doctest_setup::database().notes(&["customer1"]);
/// # let bouncer = PgBouncer::start(&server_url(), db.name(), PoolMode::Transaction, 2); let pgbouncer_url = bouncer.url();
/// use diesel::RunQueryDsl;
/// use pgschemas_diesel::{Config, DisableStatementCache, TenantPool};
///
/// let pool = TenantPool::with_builder(
///     pgbouncer_url, // PgBouncer in transaction pooling mode
///     Config::default(),
///     r2d2::Pool::builder().connection_customizer(Box::new(DisableStatementCache)),
/// )?;
/// let rows = pool.transaction(&"customer1", |conn| {
///     diesel::sql_query("insert into notes (body) values ('hello')").execute(conn)
///         .map_err(pgschemas_diesel::Error::from)
/// })?;
/// assert_eq!(rows, 1);
/// # Ok::<(), pgschemas_diesel::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct DisableStatementCache;

impl r2d2::CustomizeConnection<PgConnection, diesel::r2d2::Error> for DisableStatementCache {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        use diesel::Connection;
        conn.set_prepared_statement_cache_size(diesel::connection::CacheSize::Disabled);
        Ok(())
    }
}
