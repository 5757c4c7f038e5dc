//! The hidden setup of this crate's doctests, as diesel's `doctest_setup.rs`: a fresh
//! database per example, with what the example needs, in one hidden line.
//!
//! ```
//! # use diesel::prelude::*;
//! # let db = pgschemas_diesel::doctest_setup::database().notes(&["customer1"]); let database_url = db.url();
//! let mut conn = PgConnection::establish(database_url)?;
//! let rows = diesel::sql_query("insert into customer1.notes (body) values ('hi')").execute(&mut conn)?;
//! assert_eq!(rows, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Every call to [`database`] creates its own database (a [`TestDatabase`]), dropped when
//! the example ends, kept and named on stderr when it panics (rustdoc names the example).
//! The name holds the process id and a counter, so it is unique whether the doctests run
//! merged (edition 2024: one binary) or standalone (every one's function path is
//! `rust_out::main`, so [`test_database!`](crate::test_database) would give them all one
//! name), and while other `cargo test` runs use the same server.
//!
//! Not part of the API: enabled by the `testing` feature, for this crate's doctests only.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use diesel::PgConnection;
use diesel::connection::{BoxableConnection, SimpleConnection};
use diesel::migration::{
    Migration, MigrationMetadata, MigrationName, MigrationSource, MigrationVersion,
};
use diesel::pg::Pg;
use diesel_migrations::MigrationHarness;

use crate::migrate::{Migrator, MigratorBuilder};
use crate::models::{DefaultDomain, DefaultTenant, NewTenant, SHARED_MIGRATIONS, default_catalog};
use crate::models::{NewDomain, TenantModel, add_domain};
use crate::name::SchemaName;
use crate::testing::TestDatabase;
use crate::{Config, TenantPool};

/// Numbers the databases this process creates.
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A fresh, empty database for the calling example, named `test_doctest_<pid>_<n>`.
///
/// # Panics
///
/// As [`TestDatabase::new`].
pub fn database() -> DoctestDatabase {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    DoctestDatabase {
        db: TestDatabase::new(&format!("doctest_{}_{n}", std::process::id())),
    }
}

/// Runs `future` to its end on a tokio runtime of the calling thread: the async examples'
/// hidden `main`.
///
/// # Panics
///
/// When the runtime cannot be built.
#[cfg(feature = "async")]
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("doctest setup: runtime: {e}"))
        .block_on(future)
}

/// The database of one example; its methods add what the example needs and return it.
///
/// Each method panics when its SQL fails: a doctest's setup either works or the doctest
/// fails saying why.
#[derive(Debug)]
pub struct DoctestDatabase {
    db: TestDatabase,
}

impl DoctestDatabase {
    /// The database's connection URL.
    pub fn url(&self) -> &str {
        self.db.url()
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        self.db.name()
    }

    /// A new connection to the database.
    ///
    /// # Panics
    ///
    /// When the connection fails.
    pub fn connect(&self) -> PgConnection {
        self.db.connect()
    }

    /// Runs `sql` (one or more statements).
    ///
    /// # Panics
    ///
    /// When it fails.
    pub fn sql(self, sql: &str) -> Self {
        self.connect()
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("doctest setup: {sql}: {e}"));
        self
    }

    /// Creates each schema, empty.
    ///
    /// # Panics
    ///
    /// When a name is not valid or the schema exists.
    pub fn schemas(self, schemas: &[&str]) -> Self {
        let sql: String = schemas
            .iter()
            .map(|s| format!("CREATE SCHEMA {};", quoted(s)))
            .collect();
        self.sql(&sql)
    }

    /// Creates each schema with a `notes (id serial primary key, body text not null)` table.
    ///
    /// # Panics
    ///
    /// When a name is not valid or the schema exists.
    pub fn notes(self, schemas: &[&str]) -> Self {
        let sql: String = schemas.iter().map(|s| notes_sql(&quoted(s))).collect();
        self.sql(&sql)
    }

    /// Runs the default models' [`SHARED_MIGRATIONS`] on `public`: `public.tenants`,
    /// `public.domains` and their route triggers.
    ///
    /// # Panics
    ///
    /// When a migration fails.
    pub fn models(self) -> Self {
        self.connect()
            .run_pending_migrations(SHARED_MIGRATIONS)
            .unwrap_or_else(|e| panic!("doctest setup: shared migrations: {e}"));
        self
    }

    /// A dynamic tenant of the default models (call [`models`](Self::models) first): its
    /// row in `public.tenants` (active, named after the schema), its schema with a `notes`
    /// table, and a route per entry of `routes` (`"acme.example.com"` or
    /// `"example.com/acme"` for a folder), added with [`add_domain`] (the first is primary).
    ///
    /// # Panics
    ///
    /// When the schema name is not valid, or a row or the schema cannot be created.
    pub fn tenant(self, schema: &str, routes: &[&str]) -> Self {
        let name = SchemaName::new(schema)
            .unwrap_or_else(|e| panic!("doctest setup: tenant {schema}: {e}"));
        let mut conn = self.connect();
        let tenant = DefaultTenant::insert(&mut conn, NewTenant::new(&name, schema))
            .unwrap_or_else(|e| panic!("doctest setup: tenant {schema}: {e}"));
        for route in routes {
            let new = match route.split_once('/') {
                Some((domain, folder)) => NewDomain::new(domain).folder(folder),
                None => NewDomain::new(*route),
            };
            add_domain::<DefaultDomain>(&mut conn, &tenant.id, new)
                .unwrap_or_else(|e| panic!("doctest setup: route {route} of {schema}: {e}"));
        }
        self.notes(&[schema])
    }

    /// The roles of the per-tenant roles mode for this database
    /// ([`TestRoles`](crate::testing::TestRoles)); drop them before the database.
    pub fn roles(&self) -> crate::testing::TestRoles {
        crate::testing::TestRoles::new(&self.db)
    }

    /// A [`TenantPool`] of up to 2 connections to the database, with the default
    /// configuration.
    ///
    /// # Panics
    ///
    /// When no connection can be made.
    pub fn pool(&self) -> TenantPool {
        self.pool_with(Config::default())
    }

    /// An [`AsyncTenantPool`](crate::AsyncTenantPool) of two connections to the database,
    /// with the default configuration; call it inside [`block_on`].
    ///
    /// # Panics
    ///
    /// When deadpool refuses the pool's settings.
    #[cfg(feature = "deadpool")]
    pub fn async_pool(&self) -> crate::AsyncTenantPool {
        let pool = crate::AsyncTenantPool::builder(self.url())
            .max_size(2)
            .build()
            .unwrap_or_else(|e| panic!("doctest setup: async pool: {e}"));
        crate::AsyncTenantPool::from_deadpool(pool, Config::default())
    }

    fn pool_with(&self, config: Config) -> TenantPool {
        let builder = r2d2::Pool::builder().max_size(2);
        TenantPool::with_builder(self.url(), config, builder)
            .unwrap_or_else(|e| panic!("doctest setup: pool: {e}"))
    }

    /// The body of `GET /` answered by `handler` behind a
    /// [`TenancyLayer`](crate::routing::layer::TenancyLayer), for a request routed to the static tenant
    /// `schema` (make the schema first, with [`notes`](Self::notes)); the router's state is a
    /// [`TenantPool`] of the database.
    ///
    /// # Panics
    ///
    /// When the configuration or the pool cannot be built, or the response is not a success
    /// (the panic shows its status and body).
    #[cfg(feature = "axum")]
    pub fn get<H, T>(&self, handler: H, schema: &str) -> String
    where
        H: axum::handler::Handler<T, TenantPool>,
        T: 'static,
    {
        let config = static_tenant(schema);
        let router = axum::Router::new()
            .route("/", axum::routing::get(handler))
            .with_state(self.pool_with(config.clone()));
        get_root(&config, router)
    }

    /// As [`get`](Self::get), with an [`AsyncTenantPool`](crate::AsyncTenantPool) of two
    /// connections to the database as the router's state: for handlers that take the async
    /// extractors.
    ///
    /// # Panics
    ///
    /// As [`get`](Self::get).
    #[cfg(all(feature = "axum", feature = "async"))]
    pub fn get_async<H, T>(&self, handler: H, schema: &str) -> String
    where
        H: axum::handler::Handler<T, crate::AsyncTenantPool>,
        T: 'static,
    {
        let config = static_tenant(schema);
        let pool = crate::AsyncTenantPool::builder(self.url())
            .max_size(2)
            .build()
            .unwrap_or_else(|e| panic!("doctest setup: async pool: {e}"));
        let router = axum::Router::new()
            .route("/", axum::routing::get(handler))
            .with_state(crate::AsyncTenantPool::from_deadpool(pool, config.clone()));
        get_root(&config, router)
    }
}

/// The host [`DoctestDatabase::get`] routes to its static tenant.
#[cfg(feature = "axum")]
const HOST: &str = "tenant.example.com";

/// A configuration whose one static tenant, `schema`, is served at [`HOST`].
#[cfg(feature = "axum")]
fn static_tenant(schema: &str) -> Config {
    Config::builder()
        .static_tenant(crate::StaticTenant::builder(schema).domain(HOST))
        .build()
        .unwrap_or_else(|e| panic!("doctest setup: config: {e}"))
}

/// The body of `GET http://HOST/` answered by `router` behind a layer routing `config`'s
/// static tenants, on a runtime of the calling thread; panics unless it is a success.
#[cfg(feature = "axum")]
fn get_root(config: &Config, router: axum::Router) -> String {
    use crate::routing::{RouteTable, Routes};
    use tower::{Layer, ServiceExt};

    let table = RouteTable::fixed(Routes::build(config, &[], &[]));
    let app = crate::routing::layer::TenancyLayer::new(table).layer(router);
    let request = http::Request::get("/")
        .header(http::header::HOST, HOST)
        .body(axum::body::Body::empty())
        .unwrap_or_else(|e| panic!("doctest setup: request: {e}"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("doctest setup: runtime: {e}"));
    runtime.block_on(async {
        let Ok(response) = app.oneshot(request).await;
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap_or_else(|e| panic!("doctest setup: body: {e}"));
        let body = String::from_utf8_lossy(&body).into_owned();
        assert!(status.is_success(), "GET / answered {status}: {body}");
        body
    })
}

fn quoted(schema: &str) -> String {
    SchemaName::new(schema)
        .unwrap_or_else(|e| panic!("doctest setup: schema {schema}: {e}"))
        .quoted()
}

fn notes_sql(schema: &str) -> String {
    format!(
        "CREATE SCHEMA {schema}; \
         CREATE TABLE {schema}.notes (id serial PRIMARY KEY, body text NOT NULL);"
    )
}

/// Two tenant migrations, in memory: `20240101000001` creates `customers`,
/// `20240101000002` creates `orders`.
pub const TENANT_MIGRATIONS: &[(&str, &str)] = &[
    (
        "20240101000001",
        "CREATE TABLE customers (id bigserial PRIMARY KEY, name text NOT NULL)",
    ),
    (
        "20240101000002",
        "CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers)",
    ),
];

/// Two tenant migrations, in memory: `20240101000001` creates `ok_tbl`, `20240101000002`
/// fails (division by zero).
pub const FAILING_MIGRATIONS: &[(&str, &str)] = &[
    ("20240101000001", "CREATE TABLE ok_tbl (id int)"),
    ("20240101000002", "SELECT 1/0"),
];

impl DoctestDatabase {
    /// A [`MigratorBuilder`] over [`pool`](Self::pool) and the default models'
    /// [`default_catalog`] (call [`models`](Self::models) and add the
    /// [`tenant`](Self::tenant)s first), whose tenant migrations are `migrations`
    /// (`(version, SQL)` pairs such as [`TENANT_MIGRATIONS`]); no shared migrations.
    pub fn migrator(&self, migrations: &'static [(&'static str, &'static str)]) -> MigratorBuilder {
        Migrator::builder(self.pool(), Arc::new(default_catalog()))
            .tenant_migrations(SqlMigrations(migrations))
    }
}

/// Migrations held in memory as `(version, SQL)` pairs, each run in its own transaction.
#[derive(Debug, Clone, Copy)]
pub struct SqlMigrations(pub &'static [(&'static str, &'static str)]);

impl MigrationSource<Pg> for SqlMigrations {
    fn migrations(&self) -> diesel::migration::Result<Vec<Box<dyn Migration<Pg>>>> {
        Ok(self
            .0
            .iter()
            .map(|&(version, sql)| {
                Box::new(SqlMigration { version, sql }) as Box<dyn Migration<Pg>>
            })
            .collect())
    }
}

/// One migration of [`SqlMigrations`]; its name is its version.
struct SqlMigration {
    version: &'static str,
    sql: &'static str,
}

impl fmt::Display for SqlMigration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.version)
    }
}

impl MigrationName for SqlMigration {
    fn version(&self) -> MigrationVersion<'_> {
        self.version.into()
    }
}

impl MigrationMetadata for SqlMigration {}

impl Migration<Pg> for SqlMigration {
    fn run(&self, conn: &mut dyn BoxableConnection<Pg>) -> diesel::migration::Result<()> {
        Ok(conn.batch_execute(self.sql)?)
    }

    fn revert(&self, _conn: &mut dyn BoxableConnection<Pg>) -> diesel::migration::Result<()> {
        Ok(())
    }

    fn metadata(&self) -> &dyn MigrationMetadata {
        self
    }

    fn name(&self) -> &dyn MigrationName {
        self
    }
}
