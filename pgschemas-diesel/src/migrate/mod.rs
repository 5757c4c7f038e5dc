//! Per-schema migrations: one schema ([`migrate_schema`], [`pending_migrations`]) or many
//! ([`Migrator`], [`Selection`]).
//!
//! In it: the [`Migrator`] and its [`MigratorBuilder`], which schemas to run on
//! ([`Selection`], [`Target`], [`SchemaKind`], [`MigrationSet`]), what a run reports
//! ([`MigrationReport`], [`SchemaReport`], [`Progress`]), its errors ([`MigrationError`],
//! [`MigrationErrorKind`]) and the advisory lock class ([`MIGRATION_LOCK_CLASS`]). See the
//! guide's "Migrations" section.
//!
//! Every schema keeps its own `__diesel_schema_migrations` ledger; migrations are Diesel's
//! (`embed_migrations!`, or any [`MigrationSource`](diesel::migration::MigrationSource)).
//!
//! Each step is written once, here, and used by `provision` too: the ledger's name and DDL
//! (`ledger`), reading a source (`list`), the migration lock (`lock`).

mod builder;
mod executor;
mod ledger;
mod list;
mod lock;
mod report;
mod run;
mod selection;

pub use crate::error::{LedgerProblem, MigrationError, MigrationErrorKind};
pub use builder::{Migrator, MigratorBuilder};
pub(crate) use ledger::{LedgerState, create_ledger_sql, ledger_table, read_ledgers};
pub(crate) use list::{read_migrations, source_versions, versions};
pub use lock::MIGRATION_LOCK_CLASS;
pub(crate) use lock::{LockFn, lock_statement};
pub use report::{MigrationReport, Progress, SchemaReport};
pub use run::{migrate_schema, pending_migrations};
pub use selection::{MigrationSet, SchemaKind, Selection, Target};

/// The table diesel_migrations keeps applied versions in, one in every migrated schema.
pub(crate) const LEDGER_TABLE: &str = "__diesel_schema_migrations";
