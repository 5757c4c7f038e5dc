//! The checks `doctor` adds with [`Config::citus`](crate::Config::citus) on.

use diesel::prelude::*;
use diesel::sql_types::{Array, Text};

use super::Facts;
use super::report::{Check, CheckStatus};
use crate::citus;
use crate::error::{Error, Result};

/// The dynamic tenants' schemas that exist.
fn tenant_schemas(facts: &Facts) -> Vec<&str> {
    facts
        .rows
        .tenants
        .iter()
        .map(|t| t.schema.as_str())
        .filter(|s| facts.schemas.contains(*s))
        .collect()
}

/// `citus-distributed`: every dynamic tenant's schema is a Citus distributed schema (a
/// schema that is not stays on the coordinator, with all its rows).
pub(super) fn distributed(conn: &mut PgConnection, facts: &Facts) -> Result<Check> {
    const NAME: &str = "citus-distributed";
    if !citus::is_installed(conn)? {
        return Ok(Check::found(
            NAME,
            CheckStatus::Fail,
            "the citus extension is not installed in this database".to_owned(),
            "connect to the Citus coordinator, or CREATE EXTENSION citus there and on every \
             worker",
        ));
    }
    let tenants = tenant_schemas(facts);
    let plain: Vec<String> = diesel::select(
        diesel::dsl::sql::<Array<Text>>("ARRAY(SELECT s FROM pg_catalog.unnest(")
            .bind::<Array<Text>, _>(&tenants)
            .sql(
                ") s WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_schema d \
         JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) d.schemaid \
         WHERE n.nspname OPERATOR(pg_catalog.=) s) ORDER BY s)",
            ),
    )
    .get_result(conn)
    .map_err(Error::from)?;
    if plain.is_empty() {
        return Ok(Check::pass(
            NAME,
            format!(
                "all {} tenant schema(s) are distributed schemas",
                tenants.len()
            ),
        ));
    }
    Ok(Check::found(
        NAME,
        CheckStatus::Fail,
        format!("tenant schema(s) not distributed (their rows stay on the coordinator): {plain:?}"),
        "SELECT citus_schema_distribute('<schema>') for each (citus::distribute_schema); new \
         tenants are distributed when provisioned",
    ))
}

/// `citus-foreign-keys`: no foreign key links a dynamic tenant's schema to another schema,
/// but for references to Citus reference tables: Citus refuses to distribute such a schema
/// (and to create such a key in a distributed one).
pub(super) fn foreign_keys(conn: &mut PgConnection, facts: &Facts) -> Result<Check> {
    const NAME: &str = "citus-foreign-keys";
    let tenants = tenant_schemas(facts);
    // reference tables are told by pg_dist_partition (partmethod 'n', repmodel 't'), read
    // only where the extension is
    let reference = if citus::is_installed(conn)? {
        "EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p \
         WHERE p.logicalrelid OPERATOR(pg_catalog.=) c.confrelid \
         AND p.partmethod OPERATOR(pg_catalog.=) 'n' AND p.repmodel OPERATOR(pg_catalog.=) 't')"
    } else {
        "false"
    };
    let keys: Vec<String> = diesel::select(
        diesel::dsl::sql::<Array<Text>>(
            "ARRAY(SELECT pg_catalog.format('%I.%I -> %I.%I (%I)', sn.nspname, sc.relname, \
               tn.nspname, tc.relname, c.conname) \
             FROM pg_catalog.pg_constraint c \
             JOIN pg_catalog.pg_class sc ON sc.oid OPERATOR(pg_catalog.=) c.conrelid \
             JOIN pg_catalog.pg_namespace sn ON sn.oid OPERATOR(pg_catalog.=) sc.relnamespace \
             JOIN pg_catalog.pg_class tc ON tc.oid OPERATOR(pg_catalog.=) c.confrelid \
             JOIN pg_catalog.pg_namespace tn ON tn.oid OPERATOR(pg_catalog.=) tc.relnamespace \
             WHERE c.contype OPERATOR(pg_catalog.=) 'f' \
               AND sn.oid OPERATOR(pg_catalog.<>) tn.oid \
               AND (sn.nspname OPERATOR(pg_catalog.=) ANY(",
        )
        .bind::<Array<Text>, _>(&tenants)
        .sql(") OR tn.nspname OPERATOR(pg_catalog.=) ANY(")
        .bind::<Array<Text>, _>(&tenants)
        .sql(&format!(")) AND NOT {reference} ORDER BY 1)")),
    )
    .get_result(conn)
    .map_err(Error::from)?;
    if keys.is_empty() {
        return Ok(Check::pass(
            NAME,
            "no foreign key between a tenant schema and another schema".to_owned(),
        ));
    }
    Ok(Check::found(
        NAME,
        CheckStatus::Fail,
        format!(
            "foreign key(s) between a tenant schema and another schema, which Citus refuses: {}",
            keys.join(", ")
        ),
        "drop them: a tenant's keys may point only into its own schema or to reference tables \
         (SELECT create_reference_table('<shared table>'))",
    ))
}
