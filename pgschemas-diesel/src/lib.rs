//! Schema-per-tenant multi-tenancy for [Diesel](https://diesel.rs) and PostgreSQL.
//!
//! One database, one schema per tenant, plus a shared schema (`public`) for what all tenants
//! share: the *semi-isolated* approach of django-pgschemas and django-tenants. This crate
//! switches the PostgreSQL `search_path` safely — on a plain connection, through a pool that
//! never leaks a tenant's path to another checkout, and in transaction-scoped form that is
//! correct behind PgBouncer's transaction pooling.
//!
//! ```
//! # let db = pgschemas_diesel::doctest_setup::database().notes(&["customer1", "customer2"]); let database_url = db.url();
//! use diesel::RunQueryDsl;
//! use pgschemas_diesel::{Config, StaticTenant, TenantPool};
//!
//! let config = Config::builder()
//!     .static_tenant(StaticTenant::builder("www").domain("localhost"))
//!     .build()?;
//! let pool = TenantPool::new(database_url, config)?;
//!
//! // Session form: a pooled connection whose search_path is "customer1", "public".
//! let mut conn = pool.scope(&"customer1")?;
//! diesel::sql_query("insert into notes (body) values ('hello')").execute(&mut *conn)?;
//! drop(conn);
//!
//! // Transaction form: BEGIN + SET LOCAL in one round trip; safe behind PgBouncer.
//! let updated = pool.transaction(&"customer2", |conn| {
//!     diesel::sql_query("update notes set body = 'hi'").execute(conn)
//!         .map_err(pgschemas_diesel::Error::from)
//! })?;
//! assert_eq!(updated, 0); // customer1's note is not in customer2's table
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Where to find things
//!
//! | You want to | Look at |
//! |---|---|
//! | describe the shared schema, static tenants, the clone reference | [`Config`], [`StaticTenant`] |
//! | name a schema, build its search path | [`SchemaName`], [`Schema`], [`SearchPath`] |
//! | run queries with a tenant's path (pool, session or transaction form) | [`TenantPool`], [`TenantScope`], [`NestedScope`], [`SchemaConnection`] |
//! | the same from async code (diesel-async) | `AsyncTenantPool`, `AsyncTenantScope` (feature `async`) |
//! | say where your tenants and domains are stored | [`catalog`] ([`Catalog`](catalog::Catalog)), [`models`] (derives [`Tenant`], [`Domain`]) |
//! | migrate one schema or all of them | [`migrate`] ([`Migrator`](migrate::Migrator)) |
//! | create, drop or clone tenants | [`provision`] ([`Provisioner`](provision::Provisioner)), [`lifecycle`] (schema DDL) |
//! | route a request to its tenant | [`routing`] ([`RouteTable`](routing::RouteTable)); `routing::layer` with `axum` |
//! | run async work, spawned tasks and background jobs in a tenant | `tenant` (feature `async`) |
//! | key cache entries and stored files by tenant | [`keys`] ([`TenantKey`](keys::TenantKey), [`cache_key`](keys::cache_key), [`storage_path`](keys::storage_path)) |
//! | shard tenants across Citus workers, see and move their placement | [`citus`] (setting [`ConfigBuilder::citus`]) |
//! | check a deployment before going live | [`doctor`] |
//! | a management command line in your binary | `cli` (feature `cli`) |
//! | a database per test, a throwaway cluster | `testing` (feature `testing`) |
//! | understand a failure | [`Error`], [`migrate::MigrationError`] |
//!
//! The guide (`docs/guide.md`) walks through each of these in order.
//!
//! # Layers
//!
//! Modules depend downwards only, from low to high:
//!
//! 1. names and paths (`name`, `path`, `domain`), the lexing of SQL text (`sql_lex`)
//!    and its statements (`statements`), and
//!    [`Error`] with what it carries ([`migrate::MigrationError`], [`catalog::InvalidRow`]:
//!    defined beside it, shown in their modules);
//! 2. [`Config`] (`config`), then [`Schema`] and activation on a connection (`activate`,
//!    `transaction`, `checkout`), the current tenant of async work (`tenant`), and tenant
//!    keys for what lives outside the database ([`keys`]);
//! 3. the pool and its scopes (`pool`), schema DDL ([`lifecycle`]), the [`catalog`] trait,
//!    Citus placements ([`citus`]);
//! 4. [`models`] (a [`catalog`] over your tables), then [`migrate`] (with `parallel`),
//!    [`provision`] (uses [`migrate`]), [`routing`] (uses the [`models`]' notification
//!    channel) and [`doctor`] (uses [`migrate`] and [`routing`]);
//! 5. `cli` and `testing`, which use everything below.
//!
//! # Feature flags
//!
//! - `testing`: `pgschemas_diesel::testing` — a database per test, a throwaway PostgreSQL
//!   cluster when none is running, and a PgBouncer harness.
//! - `axum`: `pgschemas_diesel::routing::layer` — a tower layer that routes each request to
//!   its tenant with a [`RouteTable`](routing::RouteTable), and the `Route` / `TenantDb`
//!   extractors; with `async` too, the `TenantConn` / `TenantTx` extractors over an
//!   `AsyncTenantPool`.
//! - `async`: `AsyncTenantPool` — the pool over diesel-async's `AsyncPgConnection`, with the
//!   same checkout and rules as [`TenantPool`]; a future dropped at any await point never
//!   leaves a connection in an unknown state in the pool. Turns on `deadpool`, its backend.
//!   Also `pgschemas_diesel::tenant`: a current tenant that follows async work (a
//!   task-local scope, tasks spawned in it, background jobs that carry their tenant).
//! - `deadpool`: the async pool's deadpool backend (on with `async`).
//! - `serde`: `Serialize` and `Deserialize` for `tenant::TenantJob` (with `async`).
//! - `metrics`: checkouts, switches, discards, refusals, migration durations and the route
//!   table's size and load time through the `metrics` facade (the `tracing` spans and events
//!   need no feature; the guide's "Observability" section lists both).
//! - `cli`: `pgschemas_diesel::cli` — the management command line (`migrate`, `whowill`,
//!   `create-tenant`, `run-sql`, `doctor`, ...) for your own binary.

mod activate;
pub mod catalog;
mod checkout;
pub mod citus;
#[cfg(feature = "cli")]
pub mod cli;
mod config;
mod dependents;
pub mod doctor;
mod domain;
mod error;
pub mod keys;
pub mod lifecycle;
pub mod migrate;
pub mod models;
mod name;
mod observe;
mod parallel;
mod path;
mod pool;
#[cfg(feature = "deadpool")]
mod pool_async;
pub mod provision;
pub mod roles;
pub mod routing;
mod sql_lex;
mod statements;
mod take;
#[cfg(feature = "async")]
pub mod tenant;
mod transaction;

pub use activate::{Schema, SchemaConnection};
pub use config::{Config, ConfigBuilder, StaticTenant, StaticTenantBuilder};
pub use error::{
    CloneRefusal, ConfiguredSchema, Dependent, DomainFault, Error, FolderFault, HookName, JobFault,
    Result, RouteFault, SessionProblem,
};
pub use name::{InvalidReason, MAX_SCHEMA_NAME_LEN, SchemaName};
pub use path::SearchPath;
pub use pool::{DisableStatementCache, Manager, NestedScope, TenantPool, TenantScope};
#[cfg(feature = "deadpool")]
pub use pool_async::{
    AsyncDeadpool, AsyncDeadpoolBuilder, AsyncManager, AsyncPoolStatus, AsyncPooledConnection,
    AsyncTenantPool, AsyncTenantScope,
};

#[cfg(feature = "testing")]
pub mod testing;

#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod doctest_setup;

/// Derives [`TenantModel`](models::TenantModel) (and [`Schema`]) for a struct mapping a row of your tenants table.
///
/// See [`models`] for a complete example, and [`TenantModel`](models::TenantModel) for what it provides. The
/// struct must also derive Diesel's `Queryable` and `Selectable`.
///
/// ```
/// use diesel::prelude::*;
/// use pgschemas_diesel::{Schema, Tenant};
/// use pgschemas_diesel::models::TenantModel;
///
/// diesel::table! {
///     orgs (id) { id -> Int8, slug -> Text, active -> Bool }
/// }
///
/// #[derive(Queryable, Selectable, Tenant)]
/// #[diesel(table_name = orgs)]
/// #[tenant(schema_name = slug, status = active)]
/// struct Org { id: i64, slug: String, active: bool }
///
/// let org = Org { id: 7, slug: "acme".into(), active: false };
/// assert_eq!(org.schema_name(), "acme");
/// assert_eq!(org.id_string(), "7");
/// assert!(!org.is_active());
/// assert_eq!(Org::table_name().name, "orgs");
/// ```
#[doc(inline)]
pub use pgschemas_derive::Tenant;

/// Derives [`DomainModel`](models::DomainModel) for a struct mapping a row of your domains (routes) table.
///
/// See [`models`] for a complete example, and [`DomainModel`](models::DomainModel) for what it provides. The
/// struct must also derive Diesel's `Queryable` and `Selectable`.
///
/// ```
/// use diesel::prelude::*;
/// use pgschemas_diesel::Domain;
/// use pgschemas_diesel::models::DomainModel;
///
/// diesel::table! {
///     hosts (id) {
///         id -> Int8, org_id -> Int8, host -> Text, path_prefix -> Text,
///         is_primary -> Bool, redirect_to_primary -> Bool,
///     }
/// }
///
/// #[derive(Queryable, Selectable, Domain)]
/// #[diesel(table_name = hosts)]
/// #[domain(tenant = org_id, domain = host, folder = path_prefix)]
/// struct Host {
///     id: i64, org_id: i64, host: String, path_prefix: String, // "" = no folder
///     is_primary: bool, redirect_to_primary: bool,
/// }
///
/// let host = Host {
///     id: 1, org_id: 7, host: "Example.com".into(), path_prefix: "acme".into(),
///     is_primary: true, redirect_to_primary: false,
/// };
/// assert_eq!(host.to_record().domain, "example.com");
/// assert_eq!(host.absolute_url("login"), "//Example.com/acme/login");
/// ```
#[doc(inline)]
pub use pgschemas_derive::Domain;

/// A test given a fresh database (feature `testing`): the shared migrations applied, tenants
/// created (and migrated), and a [`TenantPool`], a connection, the
/// [`TestDatabase`](testing::TestDatabase) or, for an `async fn` (feature `async`), an
/// [`AsyncTenantPool`]. The database is dropped when the test passes and kept, named on
/// stderr, when it fails.
///
/// ```
/// use diesel::RunQueryDsl;
/// use pgschemas_diesel::TenantPool;
///
/// #[pgschemas_diesel::test(tenant_migrations = "../examples/migrations/tenant", tenants = ["acme", "globex"])]
/// fn each_tenant_has_its_own_customers(pool: TenantPool) {
///     let mut acme = pool.scope(&"acme").unwrap();
///     diesel::sql_query("insert into customers (name, email) values ('a', 'a@acme')")
///         .execute(&mut *acme)
///         .unwrap();
///     drop(acme);
///     let mut globex = pool.scope(&"globex").unwrap();
///     assert_eq!(diesel::sql_query("select * from customers").execute(&mut *globex).unwrap(), 0);
/// }
/// # fn main() {} // a test function: the tests in tests/test_attribute.rs run it
/// ```
///
/// Arguments: `migrations = "dir"` or `= CONSTANT` (the shared schema's, applied first),
/// `tenant_migrations` (likewise, for each tenant), `tenants = ["a", "b"]`, `config = expr`
/// (the [`Config`] tenants are created with, whose shared schema the shared migrations go to,
/// and the pool uses; default `Config::default()`; one with per-tenant roles is refused: use
/// [`testing::TestRoles`] with `&TestDatabase`). A mistake in them is a compile error naming
/// it. Write no `#[test]` on the function. A directory is embedded with
/// `diesel_migrations::embed_migrations!`, relative to your crate's root: your crate needs
/// `diesel_migrations` among its (dev-)dependencies, as for any embedded migrations. A test
/// that returns an `Err` keeps its database too. A `#[should_panic]` test (the attribute
/// after this one or before it) drops its database when it panics, as expected, and keeps it
/// when it returns; one whose preparation fails does not run, and fails.
#[cfg(feature = "testing")]
#[doc(inline)]
pub use pgschemas_derive::tenant_test as test;

#[doc(hidden)]
pub mod __private {
    pub use crate::models::private::*;
    pub use diesel;
    pub use diesel_migrations::{EmbeddedMigrations, embed_migrations};
}

// Lets the derives' `::pgschemas_diesel::...` paths resolve inside this crate too.
extern crate self as pgschemas_diesel;

/// The guide's examples, compiled as doctests so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../docs/guide.md")]
pub struct GuideDoctests;

/// The scale page's examples, compiled as doctests so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../docs/scale.md")]
pub struct ScaleDoctests;

/// The isolation modes page's examples, compiled as doctests so that it stays true.
#[cfg(all(doctest, feature = "testing"))]
#[doc = include_str!("../../docs/isolation-modes.md")]
pub struct IsolationModesDoctests;

/// The Citus page's examples, compiled as doctests so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../docs/citus.md")]
pub struct CitusDoctests;
