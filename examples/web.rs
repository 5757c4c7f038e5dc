//! A multi-tenant web service: static tenants, dynamic tenants by subdomain and by
//! subfolder, a redirecting domain and a suspended tenant, each served from its own schema.
//!
//! ```text
//! cargo run --example web --features axum
//! curl -H 'Host: localhost'               http://127.0.0.1:3000/          # www (static)
//! curl -H 'Host: blog.localhost'          http://127.0.0.1:3000/          # blog (static)
//! curl -H 'Host: tenant1.localhost'       http://127.0.0.1:3000/          # tenant1 (subdomain)
//! curl -H 'Host: tenants.localhost'       http://127.0.0.1:3000/tenant2/  # tenant2 (subfolder)
//! curl -H 'Host: tenants.localhost'       http://127.0.0.1:3000/other/    # www (fallback domain)
//! curl -H 'Host: tenant1redirect.localhost' -i http://127.0.0.1:3000/x/   # 301 to tenant1
//! curl -H 'Host: tenants.localhost' -i http://127.0.0.1:3000/tenant2redirect/x/  # 301 to tenant2
//! curl -H 'Host: tenant3.localhost'       -i http://127.0.0.1:3000/       # 403 (suspended)
//! curl -H 'Host: nobody.localhost'        -i http://127.0.0.1:3000/       # 404
//! ```
//!
//! Listens on `PGSCHEMAS_ADDR` (default `127.0.0.1:3000`) and uses the database at
//! `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`), where it creates
//! what it needs (idempotently): the default models' shared tables (`tenants`, `domains`,
//! with the triggers that notify the route table of every change), and the schemas `www`,
//! `blog`, `tenant1`, `tenant2`, `tenant3` with a `notes` table each.
//!
//! Each kind of tenant gets its own router (django-pgschemas' per-tenant `URLCONF`): `www`
//! the main site, `blog` the blog, dynamic tenants the customer app. `GET /` names the
//! active schema and lists the rows of that schema's own `notes` table.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::future::RouteFuture;
use axum::routing::get;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use pgschemas_diesel::models::{
    DefaultDomain, DefaultTenant, NewTenant, SHARED_MIGRATIONS, TenantStatus, default_catalog,
};
use pgschemas_diesel::routing::layer::{Tenancy, TenancyLayer, TenantDb};
use pgschemas_diesel::{
    Config, SchemaName, StaticTenant, TenantPool, lifecycle::create_schema,
    lifecycle::schema_exists, migrate::migrate_schema, models::NewDomain, models::TenantModel,
    models::add_domain, provision::Provisioner, routing::Route, routing::RouteOptions,
    routing::RouteTable,
};
use tower::{Layer, Service};

diesel::table! {
    /// Every tenant's own table, in its schema.
    notes (id) {
        /// Primary key.
        id -> Integer,
        /// The note.
        body -> Text,
    }
}

/// Every tenant schema's migrations: its `notes` table.
const WEB_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../examples/migrations/web");

/// Writes a tenant's two notes into the `notes` table of the active path.
fn seed_notes(conn: &mut PgConnection, schema: &SchemaName) -> QueryResult<usize> {
    diesel::insert_into(notes::table)
        .values(&[
            notes::body.eq(format!("welcome to {schema}")),
            notes::body.eq(format!("second note of {schema}")),
        ])
        .execute(conn)
}

/// The dynamic tenants and their routes: (schema, active, [(domain, folder, primary, redirect)]).
type Seed = (
    &'static str,
    bool,
    &'static [(&'static str, Option<&'static str>, bool, bool)],
);
const DYNAMIC: &[Seed] = &[
    (
        "tenant1",
        true,
        &[
            ("tenant1.localhost", None, true, false),
            ("tenants.localhost", Some("tenant1"), false, false),
            ("tenant1redirect.localhost", None, false, true),
            ("tenants.localhost", Some("tenant1redirect"), false, true),
        ],
    ),
    (
        "tenant2",
        true,
        &[
            ("tenants.localhost", Some("tenant2"), true, false),
            ("tenant2redirect.localhost", None, false, true),
            ("tenants.localhost", Some("tenant2redirect"), false, true),
        ],
    ),
    (
        "tenant3",
        false,
        &[("tenant3.localhost", None, true, false)],
    ),
];

/// Everything the service needs.
#[derive(Clone)]
pub struct App {
    /// The tenancy configuration.
    pub config: Config,
    /// The live route table.
    pub table: RouteTable,
    /// Connections for the handlers.
    pub pool: TenantPool,
}

/// The static tenants: `www` (localhost, fallback tenants.localhost, header alias `main`)
/// and `blog` (blog.localhost).
pub fn config() -> pgschemas_diesel::Result<Config> {
    Config::builder()
        .static_tenant(
            StaticTenant::builder("www")
                .domain("localhost")
                .fallback_domain("tenants.localhost")
                .header("main"),
        )
        .static_tenant(StaticTenant::builder("blog").domain("blog.localhost"))
        .build()
}

/// What [`setup`] and its errors return.
pub type SetupResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Creates the shared tables, the schemas and the tenants if they are missing (see
/// [`prepare`]), then starts the route table and the pool.
pub fn setup(database_url: &str) -> SetupResult<App> {
    let (config, table) = prepare(database_url)?;
    let pool = TenantPool::new(database_url, config.clone())?;
    Ok(App {
        config,
        table,
        pool,
    })
}

/// Creates the shared tables (the default models' migrations), the schemas and the tenants
/// if they are missing, then starts the route table; returns the configuration and the
/// table, for the caller to add its pool.
pub fn prepare(database_url: &str) -> SetupResult<(Config, RouteTable)> {
    let config = config()?;
    // Every tenant gets two notes, written by the provisioning hook with its path active.
    let provisioner = Provisioner::builder(config.clone(), WEB_MIGRATIONS)
        .after_sync(|conn, schema| {
            seed_notes(conn, schema)?;
            Ok(())
        })
        .build()?;
    let mut conn = PgConnection::establish(database_url)?;
    conn.transaction(
        |conn| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            // One set-up at a time, even with several copies starting together.
            conn.batch_execute("SELECT pg_advisory_xact_lock(7031)")?;
            conn.run_pending_migrations(SHARED_MIGRATIONS)?;
            if DefaultTenant::find_by_schema_name(conn, "tenant1")?.is_some() {
                return Ok(());
            }
            // Static tenants: their schemas, migrated like any tenant.
            for st in config.static_tenants() {
                if !schema_exists(conn, st.name())? {
                    create_schema(conn, st.name())?;
                }
                migrate_schema(conn, &config, st.name(), &WEB_MIGRATIONS)?;
                config.activate(conn, st.name())?;
                seed_notes(conn, st.name())?;
                config.deactivate(conn)?;
            }
            // Dynamic tenants: row, routes, schema, migrations and notes, atomically each.
            for (schema, active, routes) in DYNAMIC {
                let status = if *active {
                    TenantStatus::Active
                } else {
                    TenantStatus::Suspended
                };
                provisioner.create_tenant(conn, schema, |conn| {
                    let name = SchemaName::new(schema)?;
                    let tenant =
                        DefaultTenant::insert(conn, NewTenant::new(&name, *schema).status(status))?;
                    for (domain, folder, primary, redirect) in routes.iter() {
                        let mut new = NewDomain::new(*domain)
                            .primary(*primary)
                            .redirect_to_primary(*redirect);
                        if let Some(folder) = folder {
                            new = new.folder(*folder);
                        }
                        add_domain::<DefaultDomain>(conn, &tenant.id, new)?;
                    }
                    Ok(())
                })?;
            }
            Ok(())
        },
    )?;
    let table = RouteTable::start(
        database_url,
        config.clone(),
        Arc::new(default_catalog()),
        RouteOptions::default().on_error(|e| eprintln!("routing: {}", e.report())),
    )?;
    Ok((config, table))
}

/// `GET /`: the active schema and the rows of its own `notes` table.
async fn home(route: Route, db: TenantDb) -> Response {
    let rows = db
        .run(|conn| {
            let rows = notes::table
                .select(notes::body)
                .order(notes::id)
                .load::<String>(&mut **conn)?;
            Ok(rows)
        })
        .await;
    notes_page(&route, rows)
}

/// The page of `GET /`: the route's schema and how it was routed, then the `rows` of its
/// `notes` table; or a `500` with the error's report.
pub fn notes_page(route: &Route, rows: pgschemas_diesel::Result<Vec<String>>) -> Response {
    match rows {
        Ok(rows) => {
            let mut body = format!(
                "schema: {}\nvia: {:?}\nnotes:\n",
                route.schema(),
                route.via()
            );
            for row in rows {
                body.push_str(&format!("- {row}\n"));
            }
            body.into_response()
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{}\n", e.report()),
        )
            .into_response(),
    }
}

/// A page with no database work: the tenant's name only (`nobody` without the layer).
async fn hello(route: Option<Route>) -> String {
    let schema = route.as_ref().map_or("nobody", |r| r.schema().as_str());
    format!("hello from {schema}\n")
}

async fn page(route: Route) -> String {
    format!("a page of {}\n", route.schema())
}

/// A `302 Found` to `location`.
fn found(location: String) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

/// `/admin/` sends to the admin login, with the tenant's prefix.
async fn admin(route: Route) -> Response {
    found(route.url("/admin/login/"))
}

/// `/profile/advanced/` needs a login: sends to the login page, both URLs with this
/// request's prefix (never another tenant's: django-pgschemas' issue #8).
async fn advanced(route: Route) -> Response {
    found(format!(
        "{}?next={}",
        route.url("/login/"),
        route.url("/profile/advanced/")
    ))
}

async fn not_found() -> (
    StatusCode,
    [(header::HeaderName, &'static str); 1],
    &'static str,
) {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain")],
        "no such page\n",
    )
}

/// One router per kind of tenant: django-pgschemas' per-tenant `URLCONF`.
#[derive(Clone)]
pub struct PerTenant {
    main: Router,
    blog: Router,
    customers: Router,
}

/// The routers of `www`, `blog` and the dynamic tenants; their handlers take database
/// connections from `pool`.
pub fn per_tenant(pool: TenantPool) -> PerTenant {
    routers(Router::new().route("/", get(home)), pool)
}

/// The routers of `www`, `blog` and the dynamic tenants around `pages`, the pages with
/// database work (`/`), whose handlers take their connections from `state`; the other
/// pages are the same for every state.
pub fn routers<S: Clone + Send + Sync + 'static>(pages: Router<S>, state: S) -> PerTenant {
    let common = || {
        pages
            .clone()
            .route("/hello", get(hello))
            .route("/admin/", get(admin))
            .fallback(not_found)
    };
    PerTenant {
        main: common()
            .route("/register/", get(page))
            .with_state(state.clone()),
        blog: common()
            .route("/entries/", get(page))
            .with_state(state.clone()),
        customers: common()
            .route("/profile/", get(page))
            .route("/login/", get(page))
            .route("/profile/advanced/", get(advanced))
            .with_state(state),
    }
}

impl Service<Request> for PerTenant {
    type Response = Response;
    type Error = Infallible;
    type Future = RouteFuture<Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let router = match req.extensions().get::<Route>() {
            Some(r) if r.is_static() && r.schema().as_str() == "www" => &mut self.main,
            Some(r) if r.is_static() && r.schema().as_str() == "blog" => &mut self.blog,
            _ => &mut self.customers,
        };
        router.call(req)
    }
}

/// The whole service: the tenancy layer around the per-tenant routers.
pub fn service(app: &App) -> Tenancy<PerTenant> {
    TenancyLayer::new(app.table.clone()).layer(per_tenant(app.pool.clone()))
}

/// The same routers without the tenancy layer (the benchmark's baseline: only pages
/// without database work, such as `/hello`, answer there).
pub fn bare(app: &App) -> PerTenant {
    per_tenant(app.pool.clone())
}

fn main() -> SetupResult<()> {
    let app = setup(&database_url())?;
    listen(&app.table, service(&app))
}

/// `DATABASE_URL`, by default `postgres://postgres@127.0.0.1:5432/postgres`.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Says what `table` routes, then serves `service` on `PGSCHEMAS_ADDR` (by default
/// `127.0.0.1:3000`) until the process ends.
pub fn listen<S>(table: &RouteTable, service: S) -> SetupResult<()>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    let addr = std::env::var("PGSCHEMAS_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let routes = table.routes();
    println!(
        "{} tenants, {} routes; listening on http://{addr}",
        routes.tenant_count(),
        routes.route_count()
    );
    for warning in routes.warnings() {
        eprintln!("routing: {warning}");
    }
    tokio::runtime::Runtime::new()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        let service = axum::ServiceExt::<Request>::into_make_service(service);
        axum::serve(listener, service).await?;
        Ok(())
    })
}
