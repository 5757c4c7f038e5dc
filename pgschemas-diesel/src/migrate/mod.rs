//! Per-schema migrations: one schema ([`migrate_schema`], [`pending_migrations`]) or many
//! ([`Migrator`], [`Selection`]).
//!
//! Every schema keeps its own `__diesel_schema_migrations` ledger; migrations are Diesel's
//! (`embed_migrations!`, or any [`MigrationSource`](diesel::migration::MigrationSource)).

mod error;
mod executor;
mod ledger;
mod run;
mod selection;

pub use error::{MigrationError, MigrationErrorKind};
pub use executor::{MigrationReport, Migrator, MigratorBuilder, Progress, SchemaReport};
pub(crate) use ledger::{applied_versions, source_versions};
pub use run::{MIGRATION_LOCK_CLASS, migrate_schema, pending_migrations};
pub use selection::{MigrationSet, SchemaKind, Selection, Target};
