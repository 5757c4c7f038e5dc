//! Schema-per-tenant multi-tenancy for Diesel and PostgreSQL.

#[cfg(feature = "testing")]
pub mod testing;
