//! An async pool whose connections always carry the right `search_path`: diesel-async's
//! [`AsyncPgConnection`] on deadpool, with the sync pool's checkout statements, proof and
//! rules (`checkout`, `take`).
//!
//! Cancellation is covered twice. What the pool itself was doing when its future was
//! dropped (the checkout, the transaction form's `BEGIN`, the caller's body, `COMMIT`) is
//! covered by the [`Lease`](lease::Lease): the connection is taken out of the pool and
//! closed unless the operation completed. What a caller's own statement left half-done on a
//! session-form connection that did go back (a `SET` sent and then cancelled, a query whose
//! answer nobody read) is covered by the next checkout, which resets the session and proves
//! its state in the same message, as for the sync pool.

use std::fmt;

use diesel_async::AsyncPgConnection;
use tracing::Instrument;

use crate::activate::{Schema, unfinished_error};
use crate::checkout::{self, Refusal};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::observe;
use crate::path::SearchPath;
use crate::roles::{Acting, LoginFacts};
use crate::take::{Attempts, Verdict};
use crate::transaction::Ended;

mod backend;
mod lease;
mod manager;
mod prove;

pub use backend::AsyncPoolStatus;
use backend::Backend;
pub use lease::AsyncTenantScope;
use lease::Lease;
pub use manager::{AsyncManager, AsyncPooledConnection};

/// The deadpool pool an [`AsyncTenantPool`] wraps.
pub type AsyncDeadpool = deadpool::managed::Pool<AsyncManager>;

/// The builder of an [`AsyncDeadpool`] (size, hooks), from [`AsyncTenantPool::builder`].
pub type AsyncDeadpoolBuilder = deadpool::managed::PoolBuilder<AsyncManager>;

/// The async form of [`TenantPool`](crate::TenantPool): diesel-async connections on
/// deadpool, with the same guarantees.
///
/// - [`get`](Self::get) gives a connection with the neutral path (the shared schema);
/// - [`scope`](Self::scope) gives an [`AsyncTenantScope`] with a tenant's path;
/// - [`transaction`](Self::transaction) runs an async closure in a transaction with `SET
///   LOCAL`.
///
/// Every checkout sends exactly the statement the sync pool sends (reset, restore, path and
/// proof, in one message): a connection that fails it for a reason of its own is discarded
/// and another one tried, up to the sync pool's attempt count. A future dropped at any await
/// point never leaves a connection with another tenant's path, an open transaction or a
/// half-applied `SET` in the pool: the operation's connection is discarded unless it
/// completed, and the next checkout proves the rest. `docs/isolation.md` lists the threats
/// and the tests.
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database().notes(&["customer1"]); let database_url = db.url();
/// # pgschemas_diesel::doctest_setup::block_on(async {
/// use diesel_async::RunQueryDsl;
/// use pgschemas_diesel::{AsyncTenantPool, Config};
///
/// let pool = AsyncTenantPool::new(database_url, Config::default())?;
/// let mut conn = pool.scope(&"customer1").await?; // search_path = "customer1", "public"
/// diesel::sql_query("insert into notes (body) values ('hello')").execute(&mut *conn).await?;
/// drop(conn);
/// let plain = pool.get().await?; // search_path = "public" again
/// assert_eq!(plain.schema().as_str(), "public");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct AsyncTenantPool {
    inner: Backend,
    config: Config,
}

impl fmt::Debug for AsyncTenantPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncTenantPool")
            .field("status", &self.inner.status())
            .field("config", &self.config)
            .finish()
    }
}

impl AsyncTenantPool {
    /// A pool of connections to `database_url`, of deadpool's default size (four per CPU).
    /// No connection is made until the first checkout.
    ///
    /// # Errors
    ///
    /// [`Error::AsyncPoolBuild`] (deadpool refuses its own settings).
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database(); let database_url = db.url();
    /// let pool = pgschemas_diesel::AsyncTenantPool::new(database_url, pgschemas_diesel::Config::default())?;
    /// assert!(pool.max_size() > 0);
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn new(database_url: impl Into<String>, config: Config) -> Result<Self> {
        Ok(Self::from_deadpool(
            Self::builder(database_url).build()?,
            config,
        ))
    }

    /// A deadpool builder for connections to `database_url`, to set the pool's size (and
    /// deadpool's other settings) before [`from_deadpool`](Self::from_deadpool).
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database(); let database_url = db.url();
    /// use pgschemas_diesel::{AsyncTenantPool, Config};
    ///
    /// let deadpool = AsyncTenantPool::builder(database_url).max_size(4).build()?;
    /// let pool = AsyncTenantPool::from_deadpool(deadpool, Config::default());
    /// assert_eq!(pool.max_size(), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(database_url: impl Into<String>) -> AsyncDeadpoolBuilder {
        deadpool::managed::Pool::builder(AsyncManager::new(database_url))
    }

    /// Wraps a deadpool pool of [`AsyncManager`] connections. Connections taken from `pool`
    /// directly (not through this wrapper) do not get their path managed: use the wrapper
    /// everywhere.
    pub fn from_deadpool(pool: AsyncDeadpool, config: Config) -> Self {
        Self {
            inner: Backend::Deadpool(pool),
            config,
        }
    }

    /// Wraps a bb8 pool of [`AsyncManager`] connections (feature `bb8`): the same checkout,
    /// rules and guarantees as on deadpool. bb8's test on checkout sends nothing (the
    /// checkout proves the connection); a connection the pool discards is never taken back.
    /// As for deadpool, connections taken from `pool` directly do not get their path managed.
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database().notes(&["customer1"]); let database_url = db.url();
    /// # pgschemas_diesel::doctest_setup::block_on(async {
    /// use pgschemas_diesel::{AsyncManager, AsyncTenantPool, Config};
    ///
    /// let bb8 = bb8::Pool::builder().max_size(4).build_unchecked(AsyncManager::new(database_url));
    /// let pool = AsyncTenantPool::from_bb8(bb8, Config::default());
    /// let conn = pool.scope(&"customer1").await?;
    /// assert_eq!(conn.schema().as_str(), "customer1");
    /// assert_eq!(pool.max_size(), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "bb8")]
    pub fn from_bb8(pool: bb8::Pool<AsyncManager>, config: Config) -> Self {
        let max_size = pool.config().max_size as usize;
        Self {
            inner: Backend::Bb8 { pool, max_size },
            config,
        }
    }

    /// The configuration paths are built from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The pool's connections: its maximum size, how many it holds, how many are idle.
    pub fn status(&self) -> AsyncPoolStatus {
        self.inner.status()
    }

    /// The pool's maximum size.
    pub fn max_size(&self) -> usize {
        self.inner.status().max_size
    }

    /// A connection with the neutral path (the shared schema, then the extras).
    ///
    /// # Errors
    ///
    /// As [`scope`](Self::scope), for the shared schema.
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database();
    /// # pgschemas_diesel::doctest_setup::block_on(async {
    /// # let pool = db.async_pool();
    /// let conn = pool.get().await?;
    /// assert_eq!(conn.schema().as_str(), "public");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn get(&self) -> Result<AsyncTenantScope> {
        self.session(self.config.neutral_path().clone(), "neutral")
            .await
    }

    /// A connection whose path is `schema`'s: `<schema>, <shared>, <extras>`, proven at
    /// checkout in one round trip (the sentinel's `PREPARE` first, once per connection).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSchemaName`]; [`Error::SchemaNotFound`] when the schema does not
    /// exist; [`Error::SchemaNotUsable`] when the login role has no `USAGE` on it;
    /// [`Error::AsyncPool`]; [`Error::Database`] or [`Error::SessionState`] when no
    /// connection passes the proof.
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database().notes(&["customer1"]);
    /// # pgschemas_diesel::doctest_setup::block_on(async {
    /// # let pool = db.async_pool();
    /// let conn = pool.scope(&"customer1").await?;
    /// assert_eq!(conn.schema().as_str(), "customer1");
    /// assert!(matches!(pool.scope(&"nobody").await, Err(pgschemas_diesel::Error::SchemaNotFound { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn scope<S: Schema + ?Sized>(&self, schema: &S) -> Result<AsyncTenantScope> {
        self.session(self.config.search_path(schema)?, "session")
            .await
    }

    /// Runs `f` in a transaction scoped to `schema`, committing on `Ok` and rolling back on
    /// `Err`; the path ends with the transaction (the form for PgBouncer in transaction
    /// pooling mode). The sync pool's message opens it (the reset and proof of the session
    /// committed on their own, then `BEGIN`, the schema's proof and `SET LOCAL
    /// search_path`), pipelined: it is sent without waiting for its answer, and `f`'s first
    /// statement travels right behind it, so that switching costs no round trip of its own. A
    /// one-statement transaction takes two round trips, the statement's and the commit's.
    ///
    /// `f` therefore starts before the server has answered the checkout. When the checkout
    /// fails (the schema is missing or not usable), the transaction is aborted before `f`'s
    /// first statement: every statement of `f` fails, nothing is committed, the session's
    /// path after a `ROLLBACK` is empty, and this returns the schema's error rather than
    /// `f`'s. The commit is proven too, in the same message: a transaction aborted by a
    /// statement whose error `f` dropped, or ended by `f`'s own `ROLLBACK`, is an error, never
    /// a `COMMIT` that silently committed nothing.
    ///
    /// A connection left with a transaction open, or whose state is unknown (a panic in
    /// `f`, this future dropped before the transaction ended), is discarded, never
    /// returned; the server rolls its transaction back.
    ///
    /// # Errors
    ///
    /// `f`'s error, or [`Error`] converted into `E`: [`Error::SchemaNotFound`] /
    /// [`Error::SchemaNotUsable`] (and nothing `f` did took effect), [`Error::AsyncPool`],
    /// [`Error::Database`] (the commit's error included).
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database().notes(&["customer1"]);
    /// # pgschemas_diesel::doctest_setup::block_on(async {
    /// # let pool = db.async_pool();
    /// use diesel_async::RunQueryDsl;
    /// use pgschemas_diesel::Error;
    ///
    /// let rows = pool
    ///     .transaction(&"customer1", async |conn| {
    ///         diesel::sql_query("insert into notes (body) values ('hello')").execute(conn).await?;
    ///         diesel::sql_query("update notes set body = upper(body)").execute(conn).await
    ///             .map_err(Error::from)
    ///     })
    ///     .await?;
    /// assert_eq!(rows, 1);
    ///
    /// // A schema that is gone: the body's statements fail, and the error says why.
    /// let gone = pool
    ///     .transaction(&"nobody", async |conn| {
    ///         diesel::sql_query("insert into notes (body) values ('lost')").execute(conn).await
    ///             .map_err(Error::from)
    ///     })
    ///     .await;
    /// assert!(matches!(gone, Err(Error::SchemaNotFound { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn transaction<S, T, E, F>(&self, schema: &S, f: F) -> Result<T, E>
    where
        S: Schema + ?Sized,
        F: AsyncFnOnce(&mut AsyncPgConnection) -> Result<T, E>,
        E: From<Error>,
    {
        let path = self.config.search_path(schema)?;
        let span = observe::transaction_span(path.schema().as_str());
        self.transaction_in(path, f).instrument(span).await
    }

    /// [`transaction`](Self::transaction), in its span.
    async fn transaction_in<T, E, F>(&self, path: SearchPath, f: F) -> Result<T, E>
    where
        F: AsyncFnOnce(&mut AsyncPgConnection) -> Result<T, E>,
        E: From<Error>,
    {
        let checkout = observe::checkout_span("transaction", path.schema().as_str());
        let mut lease = self.take_queued(&path).instrument(checkout.clone()).await?;
        let schema = path.schema().as_str();
        observe::record_namespace(&checkout, &lease.pooled().login.database, schema);
        observe::record_namespace(
            &tracing::Span::current(),
            &lease.pooled().login.database,
            schema,
        );
        let verify = self.config.verify_prepared_statements();
        // What did not commit: the body's error (`Ok`), or the commit's (`Err`).
        let failed = match f(lease.connection()).await {
            Ok(value) => match prove::commit(lease.connection(), verify).await {
                Ok(()) => {
                    lease.finish();
                    return Ok(value);
                }
                Err(commit) => Err(commit),
            },
            Err(error) => Ok(error),
        };
        let prove::RolledBack {
            rollback,
            refusal,
            discard,
        } = prove::roll_back(lease.connection(), &path, failed.is_err(), verify).await;
        if let Some(refused) = &refusal {
            observe::refused(schema, refused);
        }
        if let Some(reason) = discard {
            observe::discarded(Some(schema), reason, refusal.as_ref());
            lease.discard_reported();
        } else {
            lease.finish();
        }
        let ended = match (refusal, failed) {
            (Some(refused), _) => Ended::Failed {
                error: E::from(refused),
                rollback,
            },
            (None, Ok(error)) => Ended::Failed { error, rollback },
            (None, Err(commit)) => Ended::CommitFailed(commit),
        };
        Err(unfinished_error(&path, ended))
    }

    /// The session form's checkout for `path` (`form`: `session` or `neutral`).
    async fn session(&self, path: SearchPath, form: &'static str) -> Result<AsyncTenantScope> {
        let span = observe::checkout_span(form, path.schema().as_str());
        self.session_in(path, form, &span)
            .instrument(span.clone())
            .await
    }

    /// [`session`](Self::session), in its span.
    async fn session_in(
        &self,
        path: SearchPath,
        form: &'static str,
        span: &tracing::Span,
    ) -> Result<AsyncTenantScope> {
        let mut attempts = Attempts::new(self.max_size());
        while attempts.another() {
            let mut lease = Lease::new(self.inner.get().await?);
            let sql = checkout::session_sql(
                &path,
                &lease.pooled().login,
                self.config.verify_prepared_statements(),
            );
            let proven = match check_roles(lease.pooled(), &self.config, &path).await {
                Ok(()) => prove::session(lease.pooled(), &path, &sql).await,
                Err(refusal) => Err(refusal),
            };
            match proven {
                Ok(()) => {
                    let schema = path.schema().as_str();
                    observe::record_namespace(span, &lease.pooled().login.database, schema);
                    lease.pooled().served.record(&path, &self.config);
                    observe::served(form, schema, lease.pooled().switched_to(&path));
                    return Ok(AsyncTenantScope::new(lease, path));
                }
                Err(refusal) => match attempts.failed(refusal) {
                    Verdict::Refused(e) => {
                        lease.release();
                        return Err(e);
                    }
                    Verdict::Discard => lease.discard_reported(),
                },
            }
        }
        Err(attempts.exhausted(&path))
    }

    /// The transaction form's checkout for `path`: a connection with the checkout queued on
    /// it ([`prove::queue_transaction`]), by the rules of [`take`](crate::take). Only a
    /// connection that cannot take the request (closed) is known to fail here: it is
    /// discarded and the next one tried.
    async fn take_queued(&self, path: &SearchPath) -> Result<Lease> {
        let mut attempts = Attempts::new(self.max_size());
        while attempts.another() {
            let mut lease = Lease::new(self.inner.get().await?);
            if let Err(refusal) = check_roles(lease.pooled(), &self.config, path).await {
                match attempts.failed(refusal) {
                    Verdict::Refused(e) => {
                        lease.release();
                        return Err(e);
                    }
                    Verdict::Discard => {
                        lease.discard_reported();
                        continue;
                    }
                }
            }
            let sql = checkout::transaction_sql(
                path,
                &lease.pooled().login,
                self.config.verify_prepared_statements(),
            );
            match prove::queue_transaction(lease.connection(), &sql) {
                Ok(()) => {
                    lease.pooled().served.record(path, &self.config);
                    let switched = lease.pooled().switched_to(path);
                    observe::served("transaction", path.schema().as_str(), switched);
                    return Ok(lease);
                }
                Err(e) => {
                    let refusal = Refusal::Connection(Error::db(path.schema().as_str(), e));
                    let verdict = attempts.failed(refusal);
                    lease.discard_reported();
                    if let Verdict::Refused(e) = verdict {
                        return Err(e);
                    }
                }
            }
        }
        Err(attempts.exhausted(path))
    }
}

/// With per-tenant roles on, checks the login of a connection the first time it is handed
/// out (one round trip, once per connection): what the mode requires of the application's
/// login. A failure of the query is the connection's own; a login that fails the checks is
/// the caller's error.
async fn check_roles(
    pooled: &mut AsyncPooledConnection,
    config: &Config,
    path: &SearchPath,
) -> Result<(), Refusal> {
    let Some(roles) = config.tenant_roles() else {
        return Ok(());
    };
    if pooled.roles_checked {
        return Ok(());
    }
    let facts: LoginFacts =
        diesel_async::RunQueryDsl::get_result(LoginFacts::query(roles), &mut pooled.conn)
            .await
            .map_err(|e| Refusal::Connection(Error::db(path.schema().as_str(), e)))?;
    facts.check(Acting::App, roles).map_err(Refusal::Schema)?;
    pooled.roles_checked = true;
    Ok(())
}
