//! Integration tests against a real PostgreSQL: one binary, one module per concept.

#![allow(clippy::unwrap_used)]

mod activation;
#[cfg(feature = "cli")]
mod cli;
mod derive_ui;
mod doctor;
mod locale;
mod migrate;
mod migrate_path;
mod models;
mod pgbouncer;
mod pool;
mod provision;
mod routing;
#[cfg(feature = "axum")]
mod routing_http;
mod testing_support;
