//! The extractors a handler behind [`TenancyLayer`](super::TenancyLayer) takes: the request's [`Route`](crate::routing::Route) and a
//! [`TenantDb`] that runs Diesel in the request's tenant on tokio's blocking pool.

use std::convert::Infallible;
use std::fmt;

use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use diesel::PgConnection;
use http::StatusCode;
use http::request::Parts;

use crate::error::{Error, Result};
use crate::name::SchemaName;
use crate::pool::{TenantPool, TenantScope};
use crate::routing::route::Route;

/// The rejection of the [`Route`] and [`TenantDb`] extractors (and of the async ones) when
/// [`TenancyLayer`](super::TenancyLayer) did not run: a 500 that says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissingTenancy(&'static str);

impl fmt::Display for MissingTenancy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for MissingTenancy {}

impl IntoResponse for MissingTenancy {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, format!("{}\n", self.0)).into_response()
    }
}

const NO_ROUTE: MissingTenancy = MissingTenancy(
    "no tenant route on this request: wrap the router in pgschemas_diesel::routing::layer::TenancyLayer",
);

/// The route [`TenancyLayer`](super::TenancyLayer) put on the request, for every extractor
/// that needs one.
pub(super) fn request_route(parts: &Parts) -> Result<Route, MissingTenancy> {
    parts.extensions.get::<Route>().cloned().ok_or(NO_ROUTE)
}

/// The request's route and the pool `P` of the router's state: what the database
/// extractors are made of.
pub(super) fn route_and_pool<P: FromRef<S>, S>(
    parts: &Parts,
    state: &S,
) -> Result<(Route, P), MissingTenancy> {
    Ok((request_route(parts)?, P::from_ref(state)))
}

impl<S: Send + Sync> FromRequestParts<S> for Route {
    type Rejection = MissingTenancy;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        request_route(parts)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Route {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Route>().cloned())
    }
}

/// An extractor for database work in the request's tenant: Diesel is synchronous, so
/// [`run`](Self::run) and [`transaction`](Self::transaction) take a closure and run it on
/// tokio's blocking pool with a connection set to the tenant's schema.
///
/// Takes connections from the router's state: any state `S` with `TenantPool: FromRef<S>`
/// (the pool itself, or your own state with an `impl FromRef<AppState> for TenantPool`).
///
/// ```
/// use diesel::RunQueryDsl;
/// use pgschemas_diesel::routing::layer::TenantDb;
///
/// async fn count(db: TenantDb) -> String {
///     let n = db
///         .run(|conn| {
///             let rows = diesel::sql_query("select 1 from notes").execute(&mut **conn)?;
///             Ok(rows)
///         })
///         .await;
///     format!("{n:?}")
/// }
/// # let setup = pgschemas_diesel::doctest_setup::database().notes(&["customer1"]);
/// # assert_eq!(setup.get(count, "customer1"), "Ok(0)");
/// ```
#[derive(Clone)]
pub struct TenantDb {
    route: Route,
    pool: TenantPool,
}

impl fmt::Debug for TenantDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantDb")
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

impl TenantDb {
    /// The request's route.
    pub fn route(&self) -> &Route {
        &self.route
    }

    /// Runs `f` on the blocking pool with a [`TenantScope`] of the tenant (session form:
    /// the path is set on checkout, restored when the scope ends).
    ///
    /// # Errors
    ///
    /// `f`'s error, or the checkout's ([`Error::Pool`], [`Error::SchemaNotFound`], ...).
    ///
    /// # Panics
    ///
    /// Resumes `f`'s panic in the calling task.
    ///
    /// ```
    /// # use pgschemas_diesel::routing::layer::TenantDb;
    /// # async fn schema_of(db: TenantDb) -> pgschemas_diesel::Result<String> {
    /// let schema = db.run(|conn| Ok(conn.schema().to_string())).await?;
    /// # Ok(schema) }
    /// # async fn handler(db: TenantDb) -> String { schema_of(db).await.unwrap_or_else(|e| e.to_string()) }
    /// # let setup = pgschemas_diesel::doctest_setup::database().notes(&["customer1"]);
    /// # assert_eq!(setup.get(handler, "customer1"), "customer1");
    /// ```
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&mut TenantScope) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.blocking(move |pool, schema| {
            let mut scope = pool.scope(schema)?;
            f(&mut scope)
        })
        .await
    }

    /// Runs `f` on the blocking pool in a transaction scoped to the tenant (`BEGIN` +
    /// `SET LOCAL search_path`: the form that is safe behind PgBouncer's transaction
    /// pooling). Commits on `Ok`, rolls back on `Err` or panic.
    ///
    /// # Errors
    ///
    /// `f`'s error, or the pool's and the transaction's.
    ///
    /// # Panics
    ///
    /// Resumes `f`'s panic in the calling task.
    ///
    /// ```
    /// use diesel::RunQueryDsl;
    /// # use pgschemas_diesel::routing::layer::TenantDb;
    /// # async fn add_note(db: TenantDb) -> pgschemas_diesel::Result<usize> {
    /// db.transaction(|conn| {
    ///     diesel::sql_query("insert into notes (body) values ('hi')").execute(conn)?;
    ///     Ok(())
    /// }).await?;
    /// # db.run(|conn| Ok(diesel::sql_query("select 1 from notes").execute(&mut **conn)?)).await }
    /// # async fn handler(db: TenantDb) -> String { format!("{:?}", add_note(db).await) }
    /// # let setup = pgschemas_diesel::doctest_setup::database().notes(&["customer1"]);
    /// # assert_eq!(setup.get(handler, "customer1"), "Ok(1)"); // committed
    /// ```
    pub async fn transaction<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&mut PgConnection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.blocking(move |pool, schema| pool.transaction(schema, f))
            .await
    }

    /// Runs `job` with the pool and the tenant's schema on tokio's blocking pool.
    async fn blocking<T, J>(&self, job: J) -> Result<T>
    where
        J: FnOnce(&TenantPool, &SchemaName) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        let schema = self.route.schema().clone();
        let name = schema.to_string();
        match tokio::task::spawn_blocking(move || job(&pool, &schema)).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(Error::Cancelled {
                schema: name,
                source: Box::new(e),
            }),
        }
    }
}

impl<S> FromRequestParts<S> for TenantDb
where
    S: Send + Sync,
    TenantPool: FromRef<S>,
{
    type Rejection = MissingTenancy;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let (route, pool) = route_and_pool(parts, state)?;
        Ok(Self { route, pool })
    }
}
