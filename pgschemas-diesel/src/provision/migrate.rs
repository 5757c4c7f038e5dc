//! Running tenant migrations inside the provisioning transaction.

use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Array, Text};

use crate::config::Config;
use crate::error::Result;
use crate::migrate::{
    self, MigrationError, MigrationErrorKind, create_ledger_sql, ledger_table, migrate_schema,
    read_migrations,
};
use crate::name::SchemaName;
use crate::path::SearchPath;

use super::txn::set_local_path_sql;

/// The versions of `source`, sorted.
pub(crate) fn versions(
    schema: &SchemaName,
    source: &dyn MigrationSource<Pg>,
) -> Result<Vec<String>> {
    Ok(migrate::versions(&read_migrations(schema, source)?))
}

/// Applies every migration of `source` to `schema`, which this transaction has just created
/// (so none is applied yet, and the transaction holds the schema's migration lock): the path
/// and the ledger table in one round trip, one round trip per migration, one for the ledger
/// rows. No savepoints: the enclosing transaction is the unit that succeeds or leaves
/// nothing. The ledger rows are written only if the path is still the schema's after the
/// last migration (a migration that ran `SET search_path` fails the whole transaction, so
/// nothing it created elsewhere survives).
///
/// Leaves the transaction's path set to `path`. Returns the number of migrations applied.
pub(crate) fn apply_all_fresh(
    conn: &mut PgConnection,
    path: &SearchPath,
    source: &dyn MigrationSource<Pg>,
) -> Result<usize> {
    let schema = path.schema();
    let migrations = read_migrations(schema, source)?;
    conn.batch_execute(&format!(
        "{}; {}",
        set_local_path_sql(path.as_sql_value()),
        create_ledger_sql(schema)
    ))
    .map_err(|e| MigrationError::db(schema, e))?;
    for m in &migrations {
        m.run(conn).map_err(|e| {
            MigrationError::new(schema, MigrationErrorKind::Failed(e))
                .in_migration(m.name().to_string(), m.name().version().to_string())
        })?;
    }
    if !migrations.is_empty() {
        let versions = migrate::versions(&migrations);
        let written = diesel::sql_query(format!(
            "INSERT INTO {} (version) SELECT pg_catalog.unnest($1::text[]) \
             WHERE pg_catalog.current_schema() OPERATOR(pg_catalog.=) $2",
            ledger_table(schema)
        ))
        .bind::<Array<Text>, _>(&versions)
        .bind::<Text, _>(schema.as_str())
        .execute(conn)
        .map_err(|e| MigrationError::db(schema, e))?;
        if written != versions.len() {
            return Err(MigrationError::new(schema, MigrationErrorKind::PathChanged).into());
        }
    }
    Ok(migrations.len())
}

/// Applies the pending migrations of `source` to `schema` with the migration executor's
/// [`migrate_schema`] (each migration a savepoint of the enclosing transaction), then sets
/// the transaction's path to `path`.
pub(crate) fn run_pending(
    conn: &mut PgConnection,
    config: &Config,
    path: &SearchPath,
    source: &dyn MigrationSource<Pg>,
) -> Result<usize> {
    let schema = path.schema();
    let applied = migrate_schema(conn, config, schema, source)?;
    conn.batch_execute(&set_local_path_sql(path.as_sql_value()))
        .map_err(|e| MigrationError::db(schema, e))?;
    Ok(applied.len())
}
