//! Derive macros for [`pgschemas-diesel`](https://docs.rs/pgschemas-diesel).
//!
//! Use them through the library's re-exports (`pgschemas_diesel::Tenant`,
//! `pgschemas_diesel::Domain`), not from this crate directly.
