//! Reading many schemas' ledgers at once (for `doctor` and the CLI's `list`).

use std::collections::{BTreeSet, HashMap};

use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Array, Bool, Nullable, Text};

use crate::error::{Error, Result};

#[derive(QueryableByName)]
struct SchemaState {
    #[diesel(sql_type = Text)]
    schema: String,
    #[diesel(sql_type = Bool)]
    has_ledger: bool,
    #[diesel(sql_type = Nullable<Text>)]
    versions: Option<String>,
}

/// Which of `schemas` exist, and the versions in each one's ledger (`None`: no ledger yet),
/// in one query: the ledgers are read server-side with `query_to_xml`. A schema missing from
/// the map does not exist.
pub(crate) fn applied_versions(
    conn: &mut PgConnection,
    schemas: &[&str],
) -> Result<HashMap<String, Option<BTreeSet<String>>>> {
    let rows: Vec<SchemaState> = diesel::sql_query(
        "SELECT n.nspname::text AS schema, c.oid IS NOT NULL AS has_ledger, \
           CASE WHEN c.oid IS NOT NULL THEN (pg_catalog.xpath('/row/v/text()', \
             pg_catalog.query_to_xml(pg_catalog.format( \
               'SELECT pg_catalog.string_agg(version, '','') AS v FROM %I.__diesel_schema_migrations', \
               n.nspname), false, true, '')))[1]::text END AS versions \
         FROM pg_catalog.pg_namespace n \
         LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid \
           AND c.relname = '__diesel_schema_migrations' AND c.relkind IN ('r', 'p') \
         WHERE n.nspname = ANY($1)",
    )
    .bind::<Array<Text>, _>(schemas)
    .load(conn)
    .map_err(Error::from)?;
    Ok(rows
        .into_iter()
        .map(|r| {
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
        })
        .collect())
}

/// The versions a migration source holds.
pub(crate) fn source_versions<S: MigrationSource<Pg> + ?Sized>(
    source: &S,
) -> Result<BTreeSet<String>> {
    Ok(source
        .migrations()
        .map_err(|e| Error::Config(format!("cannot read the migrations: {e}")))?
        .iter()
        .map(|m| m.name().version().to_string())
        .collect())
}
