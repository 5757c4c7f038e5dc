//! A pool whose connections always carry the right `search_path`.

use std::fmt;
use std::ops::{Deref, DerefMut};

use diesel::PgConnection;
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::r2d2::ConnectionManager;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::name::SchemaName;
use crate::path::SearchPath;
use crate::schema::{Schema, local_transaction, set_path};

/// Diesel's r2d2 connection manager for PostgreSQL.
pub type Manager = ConnectionManager<PgConnection>;

type Pooled = r2d2::PooledConnection<Manager>;

/// How many times a checkout retries after finding a connection it had to discard.
const CHECKOUT_ATTEMPTS: usize = 3;

/// The path a physical connection is known to have, kept in r2d2's per-connection extensions.
/// `None` (or no entry, for a new connection) means unknown: the next checkout sets it.
#[derive(Clone)]
struct KnownPath(Option<SearchPath>);

/// A pool of PostgreSQL connections over r2d2 that hands out connections with the right
/// `search_path` and never lets a tenant's path reach another checkout.
///
/// - [`get`](Self::get) gives a connection with the neutral path (the shared schema);
/// - [`scope`](Self::scope) gives a [`TenantScope`] with a tenant's path;
/// - [`transaction`](Self::transaction) runs a closure in a transaction with `SET LOCAL`,
///   the form to use behind PgBouncer in transaction pooling mode.
///
/// Each physical connection remembers the path it has, so a checkout that wants the path the
/// connection already has sends nothing, and one that wants another path costs one round
/// trip. A connection whose path cannot be set or restored is discarded, never reused.
///
/// ```no_run
/// use diesel::RunQueryDsl;
/// use pgschemas_diesel::{Config, TenantPool};
///
/// let pool = TenantPool::new("postgres://postgres@127.0.0.1/app", Config::default())?;
/// let mut conn = pool.scope(&"customer1")?; // search_path = "customer1", "public"
/// diesel::sql_query("insert into notes (body) values ('hello')").execute(&mut *conn)?;
/// drop(conn);
/// let mut plain = pool.get()?; // search_path = "public" again
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct TenantPool {
    inner: r2d2::Pool<Manager>,
    config: Config,
    /// Whether checkouts check the connection themselves (r2d2's own check is off): a
    /// checkout that changes the path needs no separate check, the switch is one.
    validate: bool,
}

impl fmt::Debug for TenantPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantPool")
            .field("state", &self.inner.state())
            .field("config", &self.config)
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
    /// ```no_run
    /// let pool = pgschemas_diesel::TenantPool::new(
    ///     "postgres://postgres@127.0.0.1/app",
    ///     pgschemas_diesel::Config::default(),
    /// )?;
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn new(database_url: impl Into<String>, config: Config) -> Result<Self> {
        Self::with_builder(database_url, config, r2d2::Pool::builder())
    }

    /// A pool built with your own r2d2 settings (size, timeouts, `max_lifetime`).
    ///
    /// The pool checks connections at checkout itself, so r2d2's `test_on_check_out` is
    /// turned off: a checkout that changes the path checks the connection with the same round
    /// trip, and one that keeps it sends r2d2's usual `SELECT 1`. Keep `max_lifetime` on
    /// (r2d2's default): each backend's catalog cache grows with every tenant it touches.
    ///
    /// # Errors
    ///
    /// [`Error::Pool`] when no connection can be made within the builder's timeout.
    ///
    /// ```no_run
    /// use pgschemas_diesel::{Config, TenantPool};
    ///
    /// let pool = TenantPool::with_builder(
    ///     "postgres://postgres@127.0.0.1/app",
    ///     Config::default(),
    ///     r2d2::Pool::builder().max_size(4),
    /// )?;
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn with_builder(
        database_url: impl Into<String>,
        config: Config,
        builder: r2d2::Builder<Manager>,
    ) -> Result<Self> {
        let inner = builder
            .test_on_check_out(false)
            .build(ConnectionManager::new(database_url))?;
        Ok(Self {
            inner,
            config,
            validate: true,
        })
    }

    /// Wraps an existing r2d2 pool. Connections taken from `pool` directly (not through this
    /// wrapper) do not get their path managed: use the wrapper everywhere. The pool's own
    /// `test_on_check_out` setting is kept (build it with `test_on_check_out(false)` and use
    /// [`with_builder`](Self::with_builder) to save a round trip on switching checkouts).
    ///
    /// ```no_run
    /// use diesel::r2d2::ConnectionManager;
    /// use pgschemas_diesel::{Config, TenantPool};
    ///
    /// let r2d2 = r2d2::Pool::builder().build(ConnectionManager::new("postgres://postgres@127.0.0.1/app"))?;
    /// let pool = TenantPool::from_r2d2(r2d2, Config::default());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_r2d2(pool: r2d2::Pool<Manager>, config: Config) -> Self {
        Self {
            inner: pool,
            config,
            validate: false,
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
    /// [`Error::Pool`]; [`Error::SchemaNotFound`] when the shared schema is missing;
    /// [`Error::Database`] when the path cannot be set on any connection.
    ///
    /// ```no_run
    /// # fn demo(pool: pgschemas_diesel::TenantPool) -> Result<(), Box<dyn std::error::Error>> {
    /// let mut conn = pool.get()?;
    /// # Ok(()) }
    /// ```
    pub fn get(&self) -> Result<TenantScope> {
        let path = self.config.neutral_path().clone();
        let conn = self.checkout(&path)?;
        Ok(TenantScope {
            conn,
            path,
            config: self.config.clone(),
        })
    }

    /// A connection whose path is `schema`'s: `<schema>, <shared>, <extras>`.
    ///
    /// Sends nothing when the connection already has that path, one round trip otherwise.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSchemaName`]; [`Error::SchemaNotFound`] when the schema does not
    /// exist; [`Error::Pool`]; [`Error::Database`].
    ///
    /// ```no_run
    /// # fn demo(pool: pgschemas_diesel::TenantPool) -> Result<(), Box<dyn std::error::Error>> {
    /// let mut conn = pool.scope(&"customer1")?;
    /// assert_eq!(conn.schema().as_str(), "customer1");
    /// # Ok(()) }
    /// ```
    pub fn scope<S: Schema + ?Sized>(&self, schema: &S) -> Result<TenantScope> {
        let path = self.config.search_path(schema)?;
        let conn = self.checkout(&path)?;
        Ok(TenantScope {
            conn,
            path,
            config: self.config.clone(),
        })
    }

    /// Runs `f` in a transaction scoped to `schema` (`BEGIN` and `SET LOCAL search_path` in
    /// one round trip), committing on `Ok` and rolling back on `Err` or panic. The path ends
    /// with the transaction, so this form is correct behind PgBouncer in transaction pooling
    /// mode, where the session form ([`scope`](Self::scope)) is not.
    ///
    /// # Errors
    ///
    /// `f`'s error, or [`Error`] converted into `E`: [`Error::SchemaNotFound`] (then `f` does
    /// not run), [`Error::Pool`], [`Error::Database`].
    ///
    /// ```no_run
    /// use diesel::RunQueryDsl;
    /// # fn demo(pool: pgschemas_diesel::TenantPool) -> Result<(), Box<dyn std::error::Error>> {
    /// let rows = pool.transaction(&"customer1", |conn| {
    ///     diesel::sql_query("update notes set body = upper(body)").execute(conn)
    ///         .map_err(pgschemas_diesel::Error::from)
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn transaction<S, T, E, F>(&self, schema: &S, f: F) -> Result<T, E>
    where
        S: Schema + ?Sized,
        F: FnOnce(&mut PgConnection) -> Result<T, E>,
        E: From<Error>,
    {
        let path = self.config.search_path(schema)?;
        let mut f = Some(f);
        let mut last = None;
        for _ in 0..CHECKOUT_ATTEMPTS {
            let mut conn = self.inner.get().map_err(Error::from)?;
            // `BEGIN` + `SET LOCAL` checks the connection: a dead one fails before `f` runs.
            let result = local_transaction(&mut conn, &path, |c| match f.take() {
                Some(f) => f(c).map_err(Began::User),
                None => Err(Began::User(
                    Error::Config("transaction closure already used".into()).into(),
                )),
            });
            if in_transaction(&mut conn) != Some(false) {
                poison(&mut conn);
            }
            match result {
                Ok(value) => return Ok(value),
                Err(Began::User(e)) => return Err(e),
                Err(Began::Ours(
                    e @ (Error::SchemaNotFound { .. } | Error::InvalidSchemaName { .. }),
                )) => {
                    return Err(e.into());
                }
                Err(Began::Ours(e)) if f.is_some() => {
                    // `f` never ran: the connection failed at `BEGIN`. Try another.
                    poison(&mut conn);
                    last = Some(e);
                }
                Err(Began::Ours(e)) => return Err(e.into()),
            }
        }
        Err(last
            .unwrap_or_else(|| Error::Config("the pool could not begin a transaction".into()))
            .into())
    }

    /// Takes a connection and gives it `path`, discarding connections that cannot be set.
    fn checkout(&self, path: &SearchPath) -> Result<Pooled> {
        let mut last = None;
        for _ in 0..CHECKOUT_ATTEMPTS {
            let mut conn = self.inner.get()?;
            match ensure_path(&mut conn, path, self.validate) {
                Ok(()) => return Ok(conn),
                Err(e @ (Error::SchemaNotFound { .. } | Error::InvalidSchemaName { .. })) => {
                    return Err(e);
                }
                Err(e) => {
                    // The path could not be set: this connection is not to be trusted.
                    poison(&mut conn);
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| Error::Config("the pool could not set the path".into())))
    }
}

/// Gives the pooled connection `path` unless it is known to have it already; then, when
/// `validate`, checks the connection with r2d2's ping instead.
fn ensure_path(conn: &mut Pooled, path: &SearchPath, validate: bool) -> Result<()> {
    if known(conn).is_some_and(|k| k.as_sql_value() == path.as_sql_value()) {
        if validate {
            diesel::r2d2::R2D2Connection::ping(&mut **conn)
                .map_err(|e| Error::db(path.schema().as_str(), e))?;
        }
        return Ok(());
    }
    switch(conn, path)
}

/// Who failed inside [`TenantPool::transaction`]: the caller's closure, or the pool.
enum Began<E> {
    User(E),
    Ours(Error),
}

impl<E> From<Error> for Began<E> {
    fn from(e: Error) -> Self {
        Began::Ours(e)
    }
}

/// Sets `path` and records it (or records "unknown" when inside a transaction, whose
/// rollback would undo the `SET`).
fn switch(conn: &mut Pooled, path: &SearchPath) -> Result<()> {
    record(conn, None);
    set_path(conn, path)?;
    if in_transaction(conn) == Some(false) {
        record(conn, Some(path.clone()));
    }
    Ok(())
}

fn known(conn: &Pooled) -> Option<&SearchPath> {
    r2d2::PooledConnection::extensions(conn)
        .get::<KnownPath>()
        .and_then(|k| k.0.as_ref())
}

fn record(conn: &mut Pooled, path: Option<SearchPath>) {
    r2d2::PooledConnection::extensions_mut(conn).insert(KnownPath(path));
}

/// Whether Diesel has a transaction open; `None` when its transaction manager is broken.
fn in_transaction(conn: &mut PgConnection) -> Option<bool> {
    AnsiTransactionManager::transaction_manager_status_mut(conn)
        .transaction_depth()
        .ok()
        .map(|d| d.is_some())
}

/// Marks the connection broken, so that r2d2 discards it when it is returned.
fn poison(conn: &mut Pooled) {
    record(conn, None);
    AnsiTransactionManager::transaction_manager_status_mut(&mut **conn).set_in_error();
}

/// An r2d2 customizer that turns Diesel's prepared-statement cache off on every new
/// connection.
///
/// Needed behind PgBouncer in transaction pooling mode before version 1.21, which does not
/// support named prepared statements: Diesel then sends every query as an unnamed statement.
///
/// ```no_run
/// use pgschemas_diesel::{Config, DisableStatementCache, TenantPool};
///
/// let pool = TenantPool::with_builder(
///     "postgres://postgres@127.0.0.1:6432/app",
///     Config::default(),
///     r2d2::Pool::builder().connection_customizer(Box::new(DisableStatementCache)),
/// )?;
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

/// A pooled connection with a schema's `search_path`, from [`TenantPool::scope`] (or the
/// neutral path, from [`TenantPool::get`]). Derefs to [`PgConnection`].
///
/// When it ends, the connection goes back to the pool remembering its path; the next
/// checkout sets the path it wants before handing the connection out (nothing when it is
/// the same). A scope that ends in a panic, or on a connection that broke, is discarded by
/// the pool.
///
/// Do not change the path yourself on this connection (`SET search_path`): use
/// [`nested`](Self::nested), which keeps the pool's record of the path right.
///
/// ```no_run
/// use diesel::RunQueryDsl;
/// # fn demo(pool: pgschemas_diesel::TenantPool) -> Result<(), Box<dyn std::error::Error>> {
/// let mut scope = pool.scope(&"customer1")?;
/// diesel::sql_query("select 1").execute(&mut *scope)?;
/// {
///     let mut inner = scope.nested(&"customer2")?;
///     diesel::sql_query("select 1").execute(&mut *inner)?;
/// } // back to customer1
/// # Ok(()) }
/// ```
pub struct TenantScope {
    conn: Pooled,
    path: SearchPath,
    config: Config,
}

impl TenantScope {
    /// The active schema.
    pub fn schema(&self) -> &SchemaName {
        self.path.schema()
    }

    /// The scope's search path (what the pool set; `search_path()` through
    /// [`SchemaConnection`](crate::SchemaConnection) asks the server).
    pub fn path(&self) -> &SearchPath {
        &self.path
    }

    /// Switches this connection to `schema` until the returned guard ends, then restores
    /// this scope's path. Costs one round trip each way.
    ///
    /// # Errors
    ///
    /// As [`TenantPool::scope`]; the path is unchanged on error.
    pub fn nested<S: Schema + ?Sized>(&mut self, schema: &S) -> Result<NestedScope<'_>> {
        NestedScope::enter(&mut self.conn, &self.config, &self.path, schema)
    }

    /// Whether the connection was marked to be discarded (a path could not be restored).
    pub fn is_poisoned(&mut self) -> bool {
        in_transaction(&mut self.conn).is_none()
    }
}

impl Deref for TenantScope {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        &self.conn
    }
}

impl DerefMut for TenantScope {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}

impl fmt::Debug for TenantScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantScope")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A schema switch inside a [`TenantScope`] (or another nested scope); restores the outer
/// path when it ends. Derefs to [`PgConnection`].
///
/// If the outer path cannot be restored, the connection is marked broken and the pool
/// discards it when the outer scope ends; [`finish`](Self::finish) reports that error.
pub struct NestedScope<'a> {
    conn: &'a mut Pooled,
    config: Config,
    outer: SearchPath,
    path: SearchPath,
    done: bool,
}

impl<'a> NestedScope<'a> {
    fn enter<S: Schema + ?Sized>(
        conn: &'a mut Pooled,
        config: &Config,
        outer: &SearchPath,
        schema: &S,
    ) -> Result<Self> {
        let path = config.search_path(schema)?;
        switch(conn, &path)?;
        Ok(Self {
            conn,
            config: config.clone(),
            outer: outer.clone(),
            path,
            done: false,
        })
    }

    /// The active schema.
    pub fn schema(&self) -> &SchemaName {
        self.path.schema()
    }

    /// A further switch inside this one.
    ///
    /// # Errors
    ///
    /// As [`TenantScope::nested`].
    pub fn nested<S: Schema + ?Sized>(&mut self, schema: &S) -> Result<NestedScope<'_>> {
        NestedScope::enter(self.conn, &self.config, &self.path, schema)
    }

    /// Ends the switch and reports whether the outer path was restored.
    ///
    /// # Errors
    ///
    /// The restore's error; the connection is then marked broken and will be discarded.
    pub fn finish(mut self) -> Result<()> {
        self.restore()
    }

    fn restore(&mut self) -> Result<()> {
        self.done = true;
        if std::thread::panicking() {
            poison(self.conn);
            return Ok(());
        }
        let restored = switch(self.conn, &self.outer);
        if restored.is_err() {
            poison(self.conn);
        }
        restored
    }
}

impl Drop for NestedScope<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.restore();
        }
    }
}

impl Deref for NestedScope<'_> {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        self.conn
    }
}

impl DerefMut for NestedScope<'_> {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.conn
    }
}

impl fmt::Debug for NestedScope<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NestedScope")
            .field("path", &self.path)
            .field("outer", &self.outer)
            .finish_non_exhaustive()
    }
}
