//! Integration tests against a real PostgreSQL: one binary, one module per concept.

#![allow(clippy::unwrap_used)]

mod activation;
mod derive_ui;
mod doctor;
mod migrate;
mod models;
mod pgbouncer;
mod pool;
mod provision;
mod testing_support;
