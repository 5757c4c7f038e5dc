//! One function per check `doctor` runs, in the order it runs them.

use std::collections::{BTreeMap, BTreeSet};

use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Oid, Text};

use super::Facts;
use super::report::few;
use super::report::{Check, CheckStatus};
use crate::catalog::{CatalogRows, InvalidRow, RowKind};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::migrate::{LEDGER_TABLE, LedgerState, read_ledgers, source_versions};
use crate::routing::Routes;

/// `shared-schema-create`: `CREATE` on the shared schema is not granted to `PUBLIC`.
pub(super) fn shared_schema_create(conn: &mut PgConnection, config: &Config) -> Result<Check> {
    const NAME: &str = "shared-schema-create";
    let shared = config.shared_schema().as_str();
    let public_create: bool = diesel::select(
        diesel::dsl::sql::<Bool>(
            "EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n, \
             pg_catalog.aclexplode(coalesce(n.nspacl, pg_catalog.acldefault('n', n.nspowner))) a \
             WHERE n.nspname = ",
        )
        .bind::<Text, _>(shared)
        .sql(" AND a.grantee = 0 AND a.privilege_type = 'CREATE')"),
    )
    .get_result(conn)
    .map_err(|e| Error::db(shared, e))?;
    Ok(if public_create {
        Check::found(
            NAME,
            CheckStatus::Warn,
            format!("CREATE on the shared schema {shared:?} is granted to PUBLIC"),
            format!(
                "REVOKE CREATE ON SCHEMA {} FROM PUBLIC",
                config.shared_schema().quoted()
            ),
        )
    } else {
        Check::pass(
            NAME,
            format!("CREATE on {shared:?} is not granted to PUBLIC"),
        )
    })
}

/// `default-search-path`: the path a connection gets before the crate sets one (the value
/// `RESET` goes back to: server, database, role and connection settings), whatever `conn` has
/// set since, names no tenant schema.
pub(super) fn default_search_path(conn: &mut PgConnection, facts: &Facts) -> Result<Check> {
    const NAME: &str = "default-search-path";
    let default_path: String = diesel::select(diesel::dsl::sql::<Text>(
        "(SELECT reset_val FROM pg_catalog.pg_settings WHERE name = 'search_path')",
    ))
    .get_result(conn)
    .map_err(Error::from)?;
    let on_default: Vec<&String> = facts
        .tenant_like
        .iter()
        .filter(|t| {
            default_path
                .split(',')
                .any(|p| p.trim().trim_matches('"') == t.as_str())
        })
        .collect();
    Ok(if on_default.is_empty() {
        Check::pass(
            NAME,
            format!("a fresh connection's path ({default_path}) names no tenant"),
        )
    } else {
        Check::found(
            NAME,
            CheckStatus::Fail,
            format!(
                "a fresh connection's path ({default_path}) names tenant schema(s) {}",
                few(&on_default, ", ")
            ),
            "ALTER DATABASE/ROLE ... RESET search_path (the crate sets the path itself)",
        )
    })
}

/// `invalid-rows`: the rows the catalog read left out, and the domains routing leaves out
/// (the tenants it leaves out clash with the configuration: `name-clashes` reports them).
pub(super) fn invalid_rows(config: &Config, rows: &CatalogRows) -> Check {
    const NAME: &str = "invalid-rows";
    let routes = Routes::build(config, &rows.tenants, &rows.domains);
    let invalid: Vec<&InvalidRow> = rows
        .invalid
        .iter()
        .chain(
            routes
                .invalid_rows()
                .iter()
                .filter(|r| r.kind == RowKind::Domain),
        )
        .collect();
    if invalid.is_empty() {
        return Check::pass(
            NAME,
            format!(
                "all {} tenant row(s) and {} domain row(s) can be used",
                rows.tenants.len(),
                rows.domains.len()
            ),
        );
    }
    let summary: Vec<String> = invalid.iter().map(ToString::to_string).collect();
    // A tenant left out is neither served nor migrated; a domain left out is one route less.
    let status = if invalid.iter().any(|r| r.kind == RowKind::Tenant) {
        CheckStatus::Fail
    } else {
        CheckStatus::Warn
    };
    Check::found(
        NAME,
        status,
        format!("row(s) that cannot be used: {}", few(&summary, "; ")),
        "correct or delete the rows: a schema name matches ^[a-z_][a-z0-9_]{0,62}$ (no pg_ \
         prefix), a domain is an ASCII host name of letters, digits, '-' and '.' without \
         scheme, port or path (an internationalised domain in its xn-- form), a folder is one \
         path segment, a domain belongs to an existing tenant",
    )
}

/// `name-clashes`: no dynamic tenant is named like one of the configuration's reserved names.
pub(super) fn name_clashes(config: &Config, rows: &CatalogRows) -> Check {
    const NAME: &str = "name-clashes";
    let clashes: Vec<String> = rows
        .tenants
        .iter()
        .filter_map(|t| match config.check_tenant_name(t.schema.as_str()) {
            Err(e) => Some(format!("tenant {}: {}", t.id, e.report())),
            Ok(_) => None,
        })
        .collect();
    if clashes.is_empty() {
        let n = rows.tenants.len();
        return Check::pass(NAME, format!("{n} dynamic tenant name(s), no clash"));
    }
    Check::found(
        NAME,
        CheckStatus::Fail,
        few(&clashes, "; "),
        "rename the tenant(s) or the static tenant / reference / extra path",
    )
}

/// `tenant-schemas`: every tenant has its schema.
pub(super) fn tenant_schemas(facts: &Facts) -> Check {
    const NAME: &str = "tenant-schemas";
    let tenants = &facts.rows.tenants;
    let missing: Vec<&str> = tenants
        .iter()
        .map(|t| t.schema.as_str())
        .filter(|s| !facts.schemas.contains(*s))
        .collect();
    if missing.is_empty() {
        let n = tenants.len();
        return Check::pass(NAME, format!("all {n} tenant(s) have their schema"));
    }
    Check::found(
        NAME,
        CheckStatus::Fail,
        format!("tenant(s) without a schema: {}", few(&missing, ", ")),
        "provision them (create the schema and migrate), or delete the rows",
    )
}

/// `orphan-schemas`: every schema belongs to something the configuration or the catalog
/// knows.
pub(super) fn orphan_schemas(config: &Config, facts: &Facts) -> Check {
    const NAME: &str = "orphan-schemas";
    let known: BTreeSet<&str> = std::iter::once(config.shared_schema().as_str())
        .chain(config.extra_search_paths().iter().map(|s| s.as_str()))
        .chain(config.static_tenants().iter().map(|t| t.name().as_str()))
        .chain(config.clone_reference().map(|r| r.as_str()))
        .chain(facts.rows.tenants.iter().map(|t| t.schema.as_str()))
        .collect();
    let orphans: Vec<&String> = facts
        .schemas
        .iter()
        .filter(|s| !known.contains(s.as_str()))
        .collect();
    if orphans.is_empty() {
        let summary = "every schema belongs to a tenant or the configuration";
        return Check::pass(NAME, summary.to_owned());
    }
    Check::found(
        NAME,
        CheckStatus::Warn,
        format!("schema(s) with no tenant: {}", few(&orphans, ", ")),
        "drop them, or add the tenant rows they belong to",
    )
}

/// `migrations`: no tenant schema is behind (or ahead of) the tenant migrations, and every
/// tenant schema's ledger can be read (one that cannot is named with what is wrong; the
/// others are still compared).
pub(super) fn migrations(
    conn: &mut PgConnection,
    facts: &Facts,
    tenant_migrations: &dyn MigrationSource<Pg>,
) -> Result<Check> {
    const NAME: &str = "migrations";
    let expected = source_versions(tenant_migrations)?;
    let present: Vec<&str> = facts
        .tenant_like
        .iter()
        .map(String::as_str)
        .filter(|s| facts.schemas.contains(*s))
        .collect();
    // One statement per batch of ledgers; a schema without a ledger yet has nothing applied.
    let states: BTreeMap<String, LedgerState> = read_ledgers(conn, &present)?.into_iter().collect();
    let mut behind = Vec::new();
    let mut ahead = Vec::new();
    let mut unreadable = Vec::new();
    let none = BTreeSet::new();
    for (schema, state) in &states {
        let versions = match state {
            LedgerState::Missing => &none,
            LedgerState::Read(versions) => versions,
            LedgerState::Unreadable(problem) => {
                unreadable.push(format!("{schema} ({problem})"));
                continue;
            }
        };
        let missing = expected.difference(versions).count();
        let unknown = versions.difference(&expected).count();
        if missing > 0 {
            behind.push(format!("{schema} ({missing} pending)"));
        }
        if unknown > 0 {
            ahead.push(format!("{schema} ({unknown} unknown)"));
        }
    }
    if behind.is_empty() && ahead.is_empty() && unreadable.is_empty() {
        let (n, m) = (states.len(), expected.len());
        let summary = format!("{n} tenant schema(s) at the latest of {m} migration(s)");
        return Ok(Check::pass(NAME, summary));
    }
    let mut summary = Vec::new();
    if !unreadable.is_empty() {
        summary.push(format!(
            "ledgers that cannot be read: {}",
            few(&unreadable, ", ")
        ));
    }
    if !behind.is_empty() {
        summary.push(format!("behind: {}", few(&behind, ", ")));
    }
    if !ahead.is_empty() {
        summary.push(format!(
            "with migrations this build does not know: {}",
            few(&ahead, ", ")
        ));
    }
    let mut fix = Vec::new();
    if !unreadable.is_empty() {
        fix.push(format!(
            "make each {LEDGER_TABLE} a table of its schema with a text or varchar version \
             column the role can read (migrate refuses the schema until then)"
        ));
    }
    if !behind.is_empty() || !ahead.is_empty() {
        fix.push("run the migrate command for the tenant schemas".to_owned());
    }
    Ok(Check::found(
        NAME,
        CheckStatus::Fail,
        summary.join("; "),
        fix.join("; "),
    ))
}

#[derive(QueryableByName)]
struct Nsp {
    #[diesel(sql_type = Text)]
    nspname: String,
}

/// `enum-types`: no enum type is defined inside a tenant schema (Diesel caches type OIDs per
/// connection).
pub(super) fn enum_types(conn: &mut PgConnection, facts: &Facts) -> Result<Check> {
    const NAME: &str = "enum-types";
    let rows: Vec<Nsp> = diesel::sql_query(
        "SELECT DISTINCT n.nspname::text AS nspname FROM pg_catalog.pg_type t \
         JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
         WHERE t.typtype = 'e' AND n.nspname = ANY($1) ORDER BY 1",
    )
    .bind::<Array<Text>, _>(&facts.tenant_like)
    .load(conn)
    .map_err(Error::from)?;
    if rows.is_empty() {
        let summary = "no enum type inside a tenant schema";
        return Ok(Check::pass(NAME, summary.to_owned()));
    }
    let names: Vec<String> = rows.into_iter().map(|r| r.nspname).collect();
    Ok(Check::found(
        NAME,
        CheckStatus::Warn,
        format!(
            "enum types defined inside tenant schema(s) {}",
            few(&names, ", ")
        ),
        "create enum types once in the shared schema and declare them with \
         #[diesel(postgres_type(name = \"..\", schema = \"public\"))]: Diesel caches \
         type OIDs per connection",
    ))
}

#[derive(QueryableByName)]
struct Oids {
    #[diesel(sql_type = Nullable<Array<Oid>>)]
    oids: Option<Vec<u32>>,
}

#[derive(QueryableByName)]
struct Locks {
    #[diesel(sql_type = BigInt)]
    max_locks: i64,
    #[diesel(sql_type = BigInt)]
    slots: i64,
    #[diesel(sql_type = BigInt)]
    largest: i64,
    #[diesel(sql_type = BigInt)]
    total: i64,
}

/// `max-locks`: `max_locks_per_transaction` against the largest tenant's relations, and the
/// shared lock table against all tenants' relations.
pub(super) fn max_locks(conn: &mut PgConnection, facts: &Facts) -> Result<Check> {
    const NAME: &str = "max-locks";
    // The tenants' namespaces first, then one scan of pg_class against their OIDs bound as a
    // constant (hashed by the server): no join for the planner to misjudge on the stale
    // catalog statistics thousands of tenants leave.
    let namespaces: Vec<u32> = diesel::sql_query(
        "SELECT pg_catalog.array_agg(oid) AS oids FROM pg_catalog.pg_namespace \
         WHERE nspname OPERATOR(pg_catalog.=) ANY($1)",
    )
    .bind::<Array<Text>, _>(&facts.tenant_like)
    .get_result::<Oids>(conn)
    .map_err(Error::from)?
    .oids
    .unwrap_or_default();
    let l: Locks = diesel::sql_query(
        "SELECT pg_catalog.current_setting('max_locks_per_transaction')::pg_catalog.int8 AS max_locks, \
         pg_catalog.current_setting('max_locks_per_transaction')::pg_catalog.int8 OPERATOR(pg_catalog.*) \
           (pg_catalog.current_setting('max_connections')::pg_catalog.int8 OPERATOR(pg_catalog.+) \
            pg_catalog.current_setting('max_prepared_transactions')::pg_catalog.int8) AS slots, \
         COALESCE(pg_catalog.max(n), 0)::pg_catalog.int8 AS largest, \
         COALESCE(pg_catalog.sum(n), 0)::pg_catalog.int8 AS total \
         FROM (SELECT pg_catalog.count(*) AS n FROM pg_catalog.pg_class c \
               WHERE c.relnamespace OPERATOR(pg_catalog.=) ANY($1) GROUP BY c.relnamespace) per_schema",
    )
    .bind::<Array<Oid>, _>(&namespaces)
    .get_result(conn)
    .map_err(Error::from)?;
    let summary = format!(
        "max_locks_per_transaction = {}, lock table ≈ {} slots; largest tenant has {} relations, all tenants {}",
        l.max_locks, l.slots, l.largest, l.total
    );
    Ok(if l.largest > l.slots / 2 {
        Check::found(
            NAME,
            CheckStatus::Fail,
            summary,
            "raise max_locks_per_transaction: one tenant's migration locks all its relations",
        )
    } else if l.total > l.slots {
        Check::found(
            NAME,
            CheckStatus::Warn,
            format!(
                "{summary}: one transaction that touches every tenant (a cross-tenant report, \
                 dropping all tenants at once) would run out of lock slots"
            ),
            "work per tenant per transaction (as the migrate command does), or raise \
             max_locks_per_transaction",
        )
    } else {
        Check::pass(NAME, summary)
    })
}
