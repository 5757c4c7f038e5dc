//! Schema-per-tenant multi-tenancy for [Diesel](https://diesel.rs) and PostgreSQL.
//!
//! One database, one schema per tenant, plus a shared schema (`public`) for what all tenants
//! share: the *semi-isolated* approach of django-pgschemas and django-tenants. This crate
//! switches the PostgreSQL `search_path` safely — on a plain connection, through a pool that
//! never leaks a tenant's path to another checkout, and in transaction-scoped form that is
//! correct behind PgBouncer's transaction pooling.
//!
//! ```no_run
//! use diesel::RunQueryDsl;
//! use pgschemas_diesel::{Config, StaticTenant, TenantPool};
//!
//! let config = Config::builder()
//!     .static_tenant(StaticTenant::builder("www").domain("localhost"))
//!     .build()?;
//! let pool = TenantPool::new("postgres://postgres@127.0.0.1/app", config)?;
//!
//! // Session form: a pooled connection whose search_path is "customer1", "public".
//! let mut conn = pool.scope(&"customer1")?;
//! diesel::sql_query("insert into notes (body) values ('hello')").execute(&mut *conn)?;
//! drop(conn);
//!
//! // Transaction form: BEGIN + SET LOCAL in one round trip; safe behind PgBouncer.
//! pool.transaction(&"customer2", |conn| {
//!     diesel::sql_query("insert into notes (body) values ('hi')").execute(conn)?;
//!     Ok::<_, pgschemas_diesel::Error>(())
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Feature flags
//!
//! - `testing`: `pgschemas_diesel::testing` — a database per test, a throwaway PostgreSQL
//!   cluster when none is running, and a PgBouncer harness.

mod catalog;
mod config;
mod doctor;
mod error;
mod lifecycle;
mod name;
mod path;
mod pool;
mod routing;
mod schema;

pub use catalog::{Catalog, DomainRecord, NoTenants, TenantRecord};
pub use config::{Config, ConfigBuilder, StaticTenant, StaticTenantBuilder};
pub use doctor::{Check, CheckStatus, DoctorReport, doctor};
pub use error::{Error, InvalidReason, Result};
pub use lifecycle::{
    create_schema, dangerous_drop_schema, drop_schema, list_schemas, schema_exists,
};
pub use name::{MAX_SCHEMA_NAME_LEN, SchemaName};
pub use path::SearchPath;
pub use pool::{DisableStatementCache, Manager, NestedScope, TenantPool, TenantScope};
pub use routing::{
    ErrorHook, Redirect, Resolution, Route, RouteOptions, RouteTable, RouteTableStatus, Routes,
    Suspended, Via,
};
pub use schema::{Schema, SchemaConnection};

#[cfg(feature = "testing")]
pub mod testing;

#[cfg(feature = "axum")]
pub use routing::layer as axum;

/// The README's examples, compiled as doctests so that it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
