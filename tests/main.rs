//! Integration tests against a real PostgreSQL: one binary, one module per concept.

#![allow(clippy::unwrap_used)]

mod activation;
#[cfg(feature = "async")]
mod async_attack;
#[cfg(feature = "async")]
mod async_pgbouncer;
#[cfg(feature = "async")]
mod async_pipeline;
#[cfg(feature = "async")]
mod async_pool;
mod attack;
mod bad_rows;
mod citus;
#[cfg(feature = "cli")]
mod cli;
mod clone_paths;
mod derive_ui;
mod doctor;
mod drop;
mod examples;
mod isolation;
mod isolation_random;
mod locale;
mod max_tenants;
mod migrate;
mod migrate_path;
mod models;
mod observe;
mod pgbouncer;
mod pool;
mod provision;
mod roles;
mod roles_attack;
mod roles_doctor;
mod roles_forms;
mod roles_lifecycle;
mod roles_shared;
mod routing;
#[cfg(feature = "axum")]
mod routing_http;
#[cfg(all(feature = "axum", feature = "async"))]
mod routing_http_async;
#[cfg(feature = "cli")]
mod run_sql;
#[cfg(feature = "cli")]
mod scale;
mod soak;
#[cfg(feature = "async")]
mod tenant_context;
mod test_attribute;
mod testing_support;
#[cfg(feature = "async")]
mod verify_prepared;
