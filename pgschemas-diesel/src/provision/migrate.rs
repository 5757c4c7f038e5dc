//! Running tenant migrations inside the provisioning transaction.

use diesel::connection::SimpleConnection;
use diesel::migration::{CREATE_MIGRATIONS_TABLE, MigrationSource};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Array, Text};
use diesel_migrations::MigrationHarness;

use crate::error::{Error, Result};
use crate::migrate::{MigrationError, MigrationErrorKind};
use crate::name::SchemaName;
use crate::path::SearchPath;

use super::txn::set_local_path_sql;

/// A borrowed migration source, so one boxed source serves many runs.
pub(crate) struct SourceRef<'a>(pub(crate) &'a dyn MigrationSource<Pg>);

impl MigrationSource<Pg> for SourceRef<'_> {
    fn migrations(
        &self,
    ) -> diesel::migration::Result<Vec<Box<dyn diesel::migration::Migration<Pg>>>> {
        self.0.migrations()
    }
}

fn migration_error(
    schema: &SchemaName,
) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> Error + '_ {
    move |source| {
        Error::Migration(MigrationError::new(
            schema,
            MigrationErrorKind::Failed(source),
        ))
    }
}

fn source_error(
    schema: &SchemaName,
) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> Error + '_ {
    move |source| {
        Error::Migration(MigrationError::new(
            schema,
            MigrationErrorKind::Source(source),
        ))
    }
}

/// The versions of `source`, sorted.
pub(crate) fn versions(
    schema: &SchemaName,
    source: &dyn MigrationSource<Pg>,
) -> Result<Vec<String>> {
    let mut v: Vec<String> = source
        .migrations()
        .map_err(source_error(schema))?
        .iter()
        .map(|m| m.name().version().to_string())
        .collect();
    v.sort_unstable();
    Ok(v)
}

/// Applies every migration of `source` to `schema`, which this transaction has just created
/// (so none is applied yet): the path and the ledger table in one round trip, one round trip
/// per migration, one for the ledger rows. No savepoints: the enclosing transaction is the
/// unit that succeeds or leaves nothing.
///
/// Leaves the transaction's path set to `path`. Returns the number of migrations applied.
pub(crate) fn apply_all_fresh(
    conn: &mut PgConnection,
    path: &SearchPath,
    source: &dyn MigrationSource<Pg>,
) -> Result<usize> {
    let schema = path.schema();
    let mut migrations = source.migrations().map_err(source_error(schema))?;
    migrations.sort_unstable_by(|a, b| a.name().version().cmp(&b.name().version()));
    conn.batch_execute(&format!(
        "{}; {CREATE_MIGRATIONS_TABLE}",
        set_local_path_sql(path.as_sql_value())
    ))
    .map_err(|e| Error::db(schema.as_str(), e))?;
    for m in &migrations {
        m.run(conn).map_err(|source| {
            Error::Migration(
                MigrationError::new(schema, MigrationErrorKind::Failed(source))
                    .in_migration(m.name().to_string(), m.name().version().to_string()),
            )
        })?;
    }
    if !migrations.is_empty() {
        let versions: Vec<String> = migrations
            .iter()
            .map(|m| m.name().version().to_string())
            .collect();
        diesel::sql_query(
            "INSERT INTO __diesel_schema_migrations (version) SELECT pg_catalog.unnest($1::text[])",
        )
        .bind::<Array<Text>, _>(versions)
        .execute(conn)
        .map_err(|e| Error::db(schema.as_str(), e))?;
    }
    Ok(migrations.len())
}

/// Applies the pending migrations of `source` to `schema` with diesel_migrations' harness
/// (each migration a savepoint of the enclosing transaction). Sets the transaction's path to
/// `path` first and leaves it there.
pub(crate) fn run_pending(
    conn: &mut PgConnection,
    path: &SearchPath,
    source: &dyn MigrationSource<Pg>,
) -> Result<usize> {
    let schema = path.schema();
    conn.batch_execute(&set_local_path_sql(path.as_sql_value()))
        .map_err(|e| Error::db(schema.as_str(), e))?;
    let applied = conn
        .run_pending_migrations(SourceRef(source))
        .map_err(migration_error(schema))?;
    Ok(applied.len())
}
