//! The async extractors (features `axum` and `async`), over an
//! [`AsyncTenantPool`](crate::AsyncTenantPool) in the router's state: [`TenantConn`], a
//! session-form connection checked out before the handler runs, and [`TenantTx`], the
//! transaction form for deployments behind a transaction pooler.

use std::fmt;
use std::ops::{Deref, DerefMut};

use axum::extract::{FromRef, FromRequestParts};
use axum::response::{IntoResponse, Response};
use diesel_async::AsyncPgConnection;
use http::StatusCode;
use http::request::Parts;

use super::extract::{MissingTenancy, route_and_pool};
use crate::error::{Error, Result};
use crate::pool_async::{AsyncTenantPool, AsyncTenantScope};
use crate::routing::route::Route;

/// An extractor for async database work in the request's tenant, in the session form: an
/// [`AsyncTenantScope`] checked out (path set and proven) before the handler runs, and
/// returned to the pool when the handler drops it. Derefs to the scope, so `&mut **conn` is
/// diesel-async's [`AsyncPgConnection`].
///
/// Takes its connection from the router's state: any state `S` with
/// `AsyncTenantPool: FromRef<S>` (the pool itself, or your own state with an
/// `impl FromRef<AppState> for AsyncTenantPool`).
///
/// The session form keeps the path on the server connection for the handler's whole run;
/// behind PgBouncer in transaction pooling mode, use [`TenantTx`] instead.
///
/// When the checkout fails (the tenant's schema does not exist or is not usable, the pool
/// timed out, the database is unreachable), the handler does not run and the request is
/// answered by the [`TenantConnRejection`]: `500 Internal Server Error` with the error's
/// report, as the web example answers the sync [`TenantDb`](super::TenantDb)'s errors. To
/// answer otherwise, take `Result<TenantConn, TenantConnRejection>`.
///
/// ```
/// use diesel_async::RunQueryDsl;
/// use pgschemas_diesel::routing::layer::TenantConn;
///
/// async fn count(mut conn: TenantConn) -> String {
///     let rows = diesel::sql_query("select 1 from notes").execute(&mut **conn).await;
///     format!("{} has {rows:?} notes", conn.schema())
/// }
/// # let setup = pgschemas_diesel::doctest_setup::database().notes(&["customer1"]);
/// # assert_eq!(setup.get_async(count, "customer1"), "customer1 has Ok(0) notes");
/// ```
#[derive(Debug)]
pub struct TenantConn {
    route: Route,
    scope: AsyncTenantScope,
}

impl TenantConn {
    /// The request's route.
    ///
    /// ```
    /// use pgschemas_diesel::routing::layer::TenantConn;
    ///
    /// async fn home(conn: TenantConn) -> String {
    ///     format!("{} at {}", conn.route().schema(), conn.route().url("/profile/"))
    /// }
    /// # let setup = pgschemas_diesel::doctest_setup::database().notes(&["customer1"]);
    /// # assert_eq!(setup.get_async(home, "customer1"), "customer1 at /profile/");
    /// ```
    pub fn route(&self) -> &Route {
        &self.route
    }

    /// The scope, to keep beyond the handler's arguments (moved into a task, say).
    ///
    /// ```
    /// use pgschemas_diesel::routing::layer::TenantConn;
    ///
    /// async fn home(conn: TenantConn) -> String {
    ///     let scope = conn.into_scope();
    ///     tokio::spawn(async move { scope.schema().to_string() }).await.unwrap_or_default()
    /// }
    /// # let setup = pgschemas_diesel::doctest_setup::database().notes(&["customer1"]);
    /// # assert_eq!(setup.get_async(home, "customer1"), "customer1");
    /// ```
    pub fn into_scope(self) -> AsyncTenantScope {
        self.scope
    }
}

impl Deref for TenantConn {
    type Target = AsyncTenantScope;

    fn deref(&self) -> &AsyncTenantScope {
        &self.scope
    }
}

impl DerefMut for TenantConn {
    fn deref_mut(&mut self) -> &mut AsyncTenantScope {
        &mut self.scope
    }
}

impl<S> FromRequestParts<S> for TenantConn
where
    S: Send + Sync,
    AsyncTenantPool: FromRef<S>,
{
    type Rejection = TenantConnRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let (route, pool): (_, AsyncTenantPool) = route_and_pool(parts, state)?;
        let scope = pool
            .scope(route.schema())
            .await
            .map_err(TenantConnRejection::Checkout)?;
        Ok(Self { route, scope })
    }
}

/// The rejection of the [`TenantConn`] extractor.
///
/// Both answer `500 Internal Server Error`: [`MissingTenancy`]'s explanation, or the
/// checkout error's [`report`](Error::report) (the same body the web example gives for the
/// sync [`TenantDb`](super::TenantDb)'s errors).
///
/// ```
/// use pgschemas_diesel::routing::layer::{TenantConn, TenantConnRejection};
///
/// async fn home(conn: Result<TenantConn, TenantConnRejection>) -> String {
///     match conn {
///         Ok(conn) => conn.schema().to_string(),
///         Err(TenantConnRejection::Checkout(e)) => format!("sorry: {:?}", e.schema()),
///         Err(e) => e.to_string(),
///     }
/// }
/// # let setup = pgschemas_diesel::doctest_setup::database(); // no schema customer1
/// # assert_eq!(setup.get_async(home, "customer1"), r#"sorry: Some("customer1")"#);
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum TenantConnRejection {
    /// [`TenancyLayer`](super::TenancyLayer) did not run: the request has no tenant.
    MissingTenancy(MissingTenancy),
    /// The checkout failed: [`Error::SchemaNotFound`], [`Error::SchemaNotUsable`],
    /// [`Error::AsyncPool`], ...
    Checkout(Error),
}

impl fmt::Display for TenantConnRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingTenancy(missing) => missing.fmt(f),
            Self::Checkout(_) => f.write_str("no connection in the request's tenant"),
        }
    }
}

impl std::error::Error for TenantConnRejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::MissingTenancy(_) => None,
            Self::Checkout(e) => Some(e),
        }
    }
}

impl From<MissingTenancy> for TenantConnRejection {
    fn from(missing: MissingTenancy) -> Self {
        Self::MissingTenancy(missing)
    }
}

impl IntoResponse for TenantConnRejection {
    fn into_response(self) -> Response {
        match self {
            Self::MissingTenancy(missing) => missing.into_response(),
            Self::Checkout(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("{}\n", e.report()),
            )
                .into_response(),
        }
    }
}

/// An extractor for async database work in the request's tenant, in the transaction form:
/// each [`transaction`](Self::transaction) checks a connection out, runs the closure inside
/// `BEGIN` + `SET LOCAL search_path` and ends with the transaction, so the path never
/// outlives it (the form that is safe behind PgBouncer's transaction pooling).
///
/// Nothing is checked out before the handler runs: a missing schema is the error of
/// [`transaction`](Self::transaction), for the handler to answer, as with the sync
/// [`TenantDb`](super::TenantDb). Takes connections from the router's state as
/// [`TenantConn`] does.
///
/// ```
/// use diesel_async::RunQueryDsl;
/// use pgschemas_diesel::routing::layer::TenantTx;
///
/// async fn add_note(tx: TenantTx) -> String {
///     let rows = tx
///         .transaction(async |conn| {
///             diesel::sql_query("insert into notes (body) values ('hi')").execute(conn).await?;
///             diesel::sql_query("select 1 from notes").execute(conn).await
///                 .map_err(pgschemas_diesel::Error::from)
///         })
///         .await;
///     format!("{} has {rows:?} notes", tx.route().schema())
/// }
/// # let setup = pgschemas_diesel::doctest_setup::database().notes(&["customer1"]);
/// # assert_eq!(setup.get_async(add_note, "customer1"), "customer1 has Ok(1) notes");
/// ```
#[derive(Clone, Debug)]
pub struct TenantTx {
    route: Route,
    pool: AsyncTenantPool,
}

impl TenantTx {
    /// The request's route.
    ///
    /// ```
    /// use pgschemas_diesel::routing::layer::TenantTx;
    ///
    /// async fn home(tx: TenantTx) -> String {
    ///     tx.route().schema().to_string()
    /// }
    /// # let setup = pgschemas_diesel::doctest_setup::database(); // nothing checked out
    /// # assert_eq!(setup.get_async(home, "customer1"), "customer1");
    /// ```
    pub fn route(&self) -> &Route {
        &self.route
    }

    /// Runs `f` in a transaction scoped to the request's tenant, committing on `Ok` and
    /// rolling back on `Err`: [`AsyncTenantPool::transaction`] for the route's schema.
    ///
    /// # Errors
    ///
    /// `f`'s error, or [`Error`] converted into `E`: [`Error::SchemaNotFound`] /
    /// [`Error::SchemaNotUsable`] (then `f` does not run), [`Error::AsyncPool`],
    /// [`Error::Database`].
    ///
    /// ```
    /// use diesel_async::RunQueryDsl;
    /// use pgschemas_diesel::routing::layer::TenantTx;
    ///
    /// async fn home(tx: TenantTx) -> String {
    ///     let rows = tx
    ///         .transaction(async |conn| {
    ///             diesel::sql_query("select 1 from notes").execute(conn).await
    ///                 .map_err(pgschemas_diesel::Error::from)
    ///         })
    ///         .await;
    ///     match rows {
    ///         Ok(n) => format!("{n} notes"),
    ///         Err(e) => format!("{:?}", e.schema()),
    ///     }
    /// }
    /// # let setup = pgschemas_diesel::doctest_setup::database(); // no schema customer1
    /// # assert_eq!(setup.get_async(home, "customer1"), r#"Some("customer1")"#);
    /// ```
    pub async fn transaction<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: AsyncFnOnce(&mut AsyncPgConnection) -> Result<T, E>,
        E: From<Error>,
    {
        self.pool.transaction(self.route.schema(), f).await
    }
}

impl<S> FromRequestParts<S> for TenantTx
where
    S: Send + Sync,
    AsyncTenantPool: FromRef<S>,
{
    type Rejection = MissingTenancy;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let (route, pool) = route_and_pool(parts, state)?;
        Ok(Self { route, pool })
    }
}
