//! The web example (`examples/web.rs`) with async handlers: the same tenants, routes and
//! pages, the database pages served by diesel-async connections from an `AsyncTenantPool`
//! instead of Diesel on the blocking pool.
//!
//! ```text
//! cargo run --example web_async --features axum,async
//! curl -H 'Host: tenant1.localhost'       http://127.0.0.1:3000/            # tenant1, session form
//! curl -H 'Host: tenants.localhost'       http://127.0.0.1:3000/tenant2/tx  # tenant2, transaction form
//! ```
//!
//! `GET /` takes a `TenantConn` (the session form: a connection in the request's tenant,
//! checked out before the handler runs); `GET /tx` takes a `TenantTx` and reads the same
//! rows in the transaction form (`BEGIN` + `SET LOCAL`, the form for PgBouncer's
//! transaction pooling). Both answer what the sync example's `GET /` answers. Every other
//! page, and `PGSCHEMAS_ADDR` and `DATABASE_URL`, are the sync example's.

use axum::Router;
use axum::response::Response;
use axum::routing::get;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use pgschemas_diesel::routing::RouteTable;
use pgschemas_diesel::routing::layer::{Tenancy, TenancyLayer, TenantConn, TenantTx};
use pgschemas_diesel::{AsyncTenantPool, Config};
use tower::Layer;

/// The sync example, whose set-up, tenants and pages this one shares.
#[allow(dead_code, unreachable_pub)]
#[path = "web.rs"]
pub mod web;

use web::notes;

/// Everything the async service needs.
#[derive(Clone)]
pub struct AsyncApp {
    /// The tenancy configuration.
    pub config: Config,
    /// The live route table.
    pub table: RouteTable,
    /// Async connections for the handlers.
    pub pool: AsyncTenantPool,
}

/// The sync example's set-up (shared tables, schemas, tenants, the route table), with an
/// async pool of deadpool's default size.
pub fn setup(database_url: &str) -> web::SetupResult<AsyncApp> {
    let (config, table) = web::prepare(database_url)?;
    let pool = AsyncTenantPool::new(database_url, config.clone())?;
    Ok(AsyncApp {
        config,
        table,
        pool,
    })
}

/// `GET /`: the active schema and the rows of its own `notes` table, in the session form.
async fn home(mut conn: TenantConn) -> Response {
    let rows = notes::table
        .select(notes::body)
        .order(notes::id)
        .load::<String>(&mut **conn)
        .await
        .map_err(Into::into);
    web::notes_page(conn.route(), rows)
}

/// `GET /tx`: what `GET /` answers, read in the transaction form.
async fn home_tx(tx: TenantTx) -> Response {
    let rows = tx
        .transaction(async |conn| {
            notes::table
                .select(notes::body)
                .order(notes::id)
                .load::<String>(conn)
                .await
                .map_err(pgschemas_diesel::Error::from)
        })
        .await;
    web::notes_page(tx.route(), rows)
}

/// The sync example's routers, with the async database pages; their handlers take
/// connections from `pool`.
pub fn per_tenant(pool: AsyncTenantPool) -> web::PerTenant {
    let pages = Router::new()
        .route("/", get(home))
        .route("/tx", get(home_tx));
    web::routers(pages, pool)
}

/// The whole service: the tenancy layer around the per-tenant routers.
pub fn service(app: &AsyncApp) -> Tenancy<web::PerTenant> {
    TenancyLayer::new(app.table.clone()).layer(per_tenant(app.pool.clone()))
}

fn main() -> web::SetupResult<()> {
    let app = setup(&web::database_url())?;
    web::listen(&app.table, service(&app))
}
