//! The ledger of applied migrations each schema keeps ([`LEDGER_TABLE`]): where it is, its
//! DDL, and reading it for one schema or many at once (for `doctor` and the CLI's `list`).

use std::collections::{BTreeSet, HashMap, HashSet};

use diesel::prelude::*;
use diesel::sql_types::{Array, Bool, Nullable, Text};

use super::LEDGER_TABLE;
use crate::error::MigrationError;
use crate::error::{Error, Result};
use crate::name::SchemaName;

/// `schema`'s ledger, schema-qualified, so that it can never land in another schema.
pub(crate) fn ledger_table(schema: &SchemaName) -> String {
    format!("{}.{LEDGER_TABLE}", schema.quoted())
}

/// Creates `schema`'s ledger, diesel_migrations' own table, when it is missing.
pub(crate) fn create_ledger_sql(schema: &SchemaName) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (\
         version VARCHAR(50) PRIMARY KEY NOT NULL, \
         run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)",
        ledger_table(schema)
    )
}

/// The versions in `schema`'s ledger, which must exist.
pub(crate) fn applied_in(
    conn: &mut PgConnection,
    schema: &SchemaName,
) -> Result<HashSet<String>, MigrationError> {
    let versions: Vec<String> = diesel::select(diesel::dsl::sql::<Array<Text>>(&format!(
        "ARRAY(SELECT version::text FROM {})",
        ledger_table(schema)
    )))
    .get_result(conn)
    .map_err(|e| MigrationError::db(schema, e))?;
    Ok(versions.into_iter().collect())
}

#[derive(QueryableByName)]
struct SchemaState {
    #[diesel(sql_type = Text)]
    schema: String,
    #[diesel(sql_type = Bool)]
    has_ledger: bool,
    #[diesel(sql_type = Nullable<Text>)]
    versions: Option<String>,
}

/// Reads which of the schemas bound as `$1` exist and each one's ledger; operators are
/// qualified, so that nothing on the caller's path can capture them. The ledger is looked up
/// per schema by the catalog's (name, namespace) index, whatever the catalog's statistics
/// say (after thousands of `CREATE TABLE`s they are stale, and a join would be planned as a
/// nested loop over every ledger for every schema).
fn states_sql() -> String {
    format!(
        "SELECT s.nspname AS schema, s.ledger IS NOT NULL AS has_ledger, \
           CASE WHEN s.ledger IS NOT NULL THEN (pg_catalog.xpath('/row/v/text()', \
             pg_catalog.query_to_xml(pg_catalog.format( \
               'SELECT pg_catalog.string_agg(version, '','') AS v FROM %I.{LEDGER_TABLE}', \
               s.nspname), false, true, '')))[1]::text END AS versions \
         FROM (SELECT n.nspname::text AS nspname, \
                 (SELECT c.oid FROM pg_catalog.pg_class c \
                  WHERE c.relname OPERATOR(pg_catalog.=) '{LEDGER_TABLE}' \
                    AND c.relnamespace OPERATOR(pg_catalog.=) n.oid \
                    AND c.relkind OPERATOR(pg_catalog.=) ANY ('{{r,p}}'::pg_catalog.\"char\"[])) AS ledger \
               FROM pg_catalog.pg_namespace n \
               WHERE n.nspname OPERATOR(pg_catalog.=) ANY($1)) s"
    )
}

/// How many schemas' ledgers one statement reads. Reading a ledger takes two locks (its
/// table and its index) until the statement ends; PostgreSQL's lock table holds
/// `max_locks_per_transaction` × `max_connections` of them (6,400 by default) for every
/// session together, so no statement may need locks in proportion to the number of tenants.
pub(crate) const LEDGER_BATCH: usize = 500;

/// Which of `schemas` exist, and the versions in each one's ledger (`None`: no ledger yet),
/// read [`LEDGER_BATCH`] schemas per statement (each its own transaction, unless the caller
/// holds one): the ledgers are read server-side with `query_to_xml`. A schema missing from
/// the map does not exist.
pub(crate) fn read_ledgers(
    conn: &mut PgConnection,
    schemas: &[&str],
) -> Result<HashMap<String, Option<BTreeSet<String>>>> {
    let mut states = HashMap::with_capacity(schemas.len());
    for batch in schemas.chunks(LEDGER_BATCH) {
        let rows: Vec<SchemaState> = diesel::sql_query(states_sql())
            .bind::<Array<Text>, _>(batch)
            .load(conn)
            .map_err(Error::from)?;
        states.extend(rows.into_iter().map(|r| {
            let versions = r.has_ledger.then(|| {
                r.versions
                    .as_deref()
                    .unwrap_or("")
                    .split(',')
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned)
                    .collect()
            });
            (r.schema, versions)
        }));
    }
    Ok(states)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ledger_is_always_schema_qualified() {
        let t1 = SchemaName::new("t1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ledger_table(&t1), r#""t1".__diesel_schema_migrations"#);
        assert!(create_ledger_sql(&t1).starts_with(
            r#"CREATE TABLE IF NOT EXISTS "t1".__diesel_schema_migrations (version VARCHAR(50)"#
        ));
    }

    #[test]
    fn the_ledger_query_qualifies_its_operators() {
        let sql = states_sql();
        assert!(!sql.contains(" = "), "no unqualified operator: {sql}");
        assert!(!sql.contains(" IN "), "no unqualified operator: {sql}");
        assert!(sql.contains("%I.__diesel_schema_migrations'"));
    }
}
