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
//! what it needs (idempotently): the shared `tenants` and `domains` tables, and the schemas
//! `www`, `blog`, `tenant1`, `tenant2`, `tenant3` with a `notes` table each.
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
use pgschemas_diesel::axum::{Tenancy, TenancyLayer, TenantDb};
use pgschemas_diesel::{
    Catalog, Config, DomainRecord, Route, RouteOptions, RouteTable, SchemaName, StaticTenant,
    TenantPool, TenantRecord,
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

/// The shared tables of the default models, with their NOTIFY triggers.
const SHARED_TABLES: &str = r#"
CREATE TYPE public.tenant_status AS ENUM ('active', 'suspended');
CREATE TABLE public.tenants (
    id bigserial PRIMARY KEY,
    schema_name text NOT NULL UNIQUE,
    name text NOT NULL,
    status public.tenant_status NOT NULL DEFAULT 'active',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE public.domains (
    id bigserial PRIMARY KEY,
    tenant_id bigint NOT NULL REFERENCES public.tenants (id) ON DELETE CASCADE,
    domain text NOT NULL,
    folder text,
    is_primary boolean NOT NULL DEFAULT false,
    redirect_to_primary boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX domains_domain_folder_key ON public.domains (domain, coalesce(folder, ''));
CREATE FUNCTION public.pgschemas_notify_routes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.pg_notify('pgschemas_routes', TG_TABLE_NAME);
    RETURN NULL;
END
$$;
CREATE TRIGGER pgschemas_notify_routes AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON public.tenants FOR EACH STATEMENT EXECUTE FUNCTION public.pgschemas_notify_routes();
CREATE TRIGGER pgschemas_notify_routes AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON public.domains FOR EACH STATEMENT EXECUTE FUNCTION public.pgschemas_notify_routes();
"#;

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

/// The catalog over the shared tables.
pub struct ExampleCatalog;

#[derive(QueryableByName)]
struct TenantRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    schema_name: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    active: bool,
}

#[derive(QueryableByName)]
struct DomainRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    tenant_id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    domain: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    folder: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    is_primary: bool,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    redirect_to_primary: bool,
}

impl Catalog for ExampleCatalog {
    fn tenants(&self, conn: &mut PgConnection) -> pgschemas_diesel::Result<Vec<TenantRecord>> {
        let rows: Vec<TenantRow> = diesel::sql_query(
            "SELECT id::text AS id, schema_name, status = 'active' AS active FROM public.tenants",
        )
        .load(conn)?;
        rows.into_iter()
            .map(|r| {
                Ok(TenantRecord {
                    id: r.id,
                    schema: SchemaName::new(r.schema_name)?,
                    active: r.active,
                })
            })
            .collect()
    }

    fn domains(&self, conn: &mut PgConnection) -> pgschemas_diesel::Result<Vec<DomainRecord>> {
        let rows: Vec<DomainRow> = diesel::sql_query(
            "SELECT tenant_id::text AS tenant_id, domain, folder, is_primary, redirect_to_primary
             FROM public.domains",
        )
        .load(conn)?;
        Ok(rows
            .into_iter()
            .map(|r| DomainRecord {
                tenant_id: r.tenant_id,
                domain: r.domain,
                folder: r.folder,
                is_primary: r.is_primary,
                redirect_to_primary: r.redirect_to_primary,
            })
            .collect())
    }

    fn watched_tables(&self) -> Vec<(String, String)> {
        vec![
            ("public".into(), "tenants".into()),
            ("public".into(), "domains".into()),
        ]
    }
}

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

/// Creates the shared tables, the schemas and the tenants if they are missing, then starts
/// the route table and the pool.
pub fn setup(database_url: &str) -> Result<App, Box<dyn std::error::Error + Send + Sync>> {
    let config = config()?;
    let mut conn = PgConnection::establish(database_url)?;
    conn.transaction(|conn| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        // One set-up at a time, even with several copies starting together.
        conn.batch_execute("SELECT pg_advisory_xact_lock(7031)")?;
        #[derive(QueryableByName)]
        struct Exists {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            exists: bool,
        }
        let done = diesel::sql_query("SELECT to_regclass('public.domains') IS NOT NULL AS exists")
            .get_result::<Exists>(conn)?;
        if done.exists {
            return Ok(());
        }
        conn.batch_execute(SHARED_TABLES)?;
        let statics = config.static_tenants().iter().map(|t| (t.name().as_str(), true));
        let dynamics = DYNAMIC.iter().map(|(schema, active, _)| (*schema, *active));
        for (schema, _) in statics.chain(dynamics) {
            let s = SchemaName::new(schema)?.quoted();
            conn.batch_execute(&format!(
                "CREATE SCHEMA {s};
                 CREATE TABLE {s}.notes (id serial PRIMARY KEY, body text NOT NULL);
                 INSERT INTO {s}.notes (body) VALUES ('welcome to {schema}'), ('second note of {schema}');"
            ))?;
        }
        for (schema, active, routes) in DYNAMIC {
            #[derive(QueryableByName)]
            struct Id {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                id: i64,
            }
            let id = diesel::sql_query(
                "INSERT INTO public.tenants (schema_name, name, status)
                 VALUES ($1, $1, CASE WHEN $2 THEN 'active' ELSE 'suspended' END::public.tenant_status)
                 RETURNING id",
            )
            .bind::<diesel::sql_types::Text, _>(schema)
            .bind::<diesel::sql_types::Bool, _>(active)
            .get_result::<Id>(conn)?
            .id;
            for (domain, folder, primary, redirect) in routes.iter() {
                diesel::sql_query(
                    "INSERT INTO public.domains (tenant_id, domain, folder, is_primary, redirect_to_primary)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind::<diesel::sql_types::BigInt, _>(id)
                .bind::<diesel::sql_types::Text, _>(domain)
                .bind::<diesel::sql_types::Nullable<diesel::sql_types::Text>, _>(folder)
                .bind::<diesel::sql_types::Bool, _>(primary)
                .bind::<diesel::sql_types::Bool, _>(redirect)
                .execute(conn)?;
            }
        }
        Ok(())
    })?;
    let table = RouteTable::start(
        database_url,
        config.clone(),
        Arc::new(ExampleCatalog),
        RouteOptions::default().on_error(|e| eprintln!("routing: {e}")),
    )?;
    let pool = TenantPool::new(database_url, config.clone())?;
    Ok(App {
        config,
        table,
        pool,
    })
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
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
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
    let common = || {
        Router::new()
            .route("/", get(home))
            .route("/hello", get(hello))
            .route("/admin/", get(admin))
            .fallback(not_found)
    };
    PerTenant {
        main: common()
            .route("/register/", get(page))
            .with_state(pool.clone()),
        blog: common()
            .route("/entries/", get(page))
            .with_state(pool.clone()),
        customers: common()
            .route("/profile/", get(page))
            .route("/login/", get(page))
            .route("/profile/advanced/", get(advanced))
            .with_state(pool),
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

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let addr = std::env::var("PGSCHEMAS_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let app = setup(&url)?;
    let routes = app.table.routes();
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
        let service = axum::ServiceExt::<Request>::into_make_service(service(&app));
        axum::serve(listener, service).await?;
        Ok(())
    })
}
