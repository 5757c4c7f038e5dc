//! Checks worth running before going live: `doctor`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};

use crate::catalog::{Catalog, CatalogRows, InvalidRow, RowKind};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::lifecycle::list_schemas;
use crate::migrate::{applied_versions, source_versions};
use crate::routing::Routes;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CheckStatus {
    /// Nothing to do.
    Pass,
    /// Works, but is worth a look.
    Warn,
    /// Will break something.
    Fail,
}

impl fmt::Display for CheckStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "fail",
        })
    }
}

/// One check's finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// A short stable name, such as `shared-schema-create`.
    pub name: &'static str,
    /// The outcome.
    pub status: CheckStatus,
    /// What was found, with the figures.
    pub summary: String,
    /// What to do about it, when there is something to do.
    pub fix: Option<String>,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}: {}", self.status, self.name, self.summary)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n       fix: {fix}")?;
        }
        Ok(())
    }
}

/// Every check's finding, in a stable order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoctorReport {
    /// The findings.
    pub checks: Vec<Check>,
}

impl DoctorReport {
    /// The worst status found.
    pub fn worst(&self) -> CheckStatus {
        self.checks
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(CheckStatus::Pass)
    }

    /// The check named `name`, if it ran.
    pub fn get(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }
}

impl fmt::Display for DoctorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.checks {
            writeln!(f, "{c}")?;
        }
        Ok(())
    }
}

/// Runs the checks a deployment wants to pass before going live, on the database `conn` is
/// connected to:
///
/// - `shared-schema-create`: `CREATE` on the shared schema is not granted to `PUBLIC` (any
///   role could otherwise plant objects that every tenant's path resolves);
/// - `default-search-path`: a fresh connection's path (the `search_path` a connection starts
///   with, from the server's, database's, role's and connection's settings; read as such on
///   any connection, whatever path `conn` has set since) names no tenant schema, so nothing
///   outside the crate's pool sees a tenant's tables;
/// - `invalid-rows`: every row of the tenant and domain tables can be used: no tenant whose
///   stored schema name is not valid (it is neither served nor migrated: a failure), no
///   domain whose host or folder cannot be routed, whose tenant is left out or unknown, or
///   whose route another tenant has (it is not routed: a warning); the finding names each
///   row;
/// - `name-clashes`: no dynamic tenant is named like the shared schema, a static tenant, the
///   clone reference or an extra search path (case-insensitively);
/// - `tenant-schemas`: every tenant has its schema;
/// - `orphan-schemas`: every schema belongs to a tenant, a static tenant, the shared schema,
///   the clone reference or an extra search path;
/// - `migrations`: no tenant schema is behind (or ahead of) the tenant migrations;
/// - `enum-types`: no enum type is defined inside a tenant schema (Diesel caches type OIDs per
///   connection: keep enums in the shared schema);
/// - `max-locks`: `max_locks_per_transaction` against the largest tenant's relations, and
///   the shared lock table against all tenants' relations.
///
/// # Errors
///
/// [`Error::Database`] when a catalog query fails; problems found (a bad row included) are
/// findings, not errors.
///
/// ```no_run
/// use diesel::{Connection, PgConnection};
/// use pgschemas_diesel::{Config, NoTenants};
///
/// const MIGRATIONS: diesel_migrations::EmbeddedMigrations =
///     diesel_migrations::embed_migrations!("../examples/migrations/tenant");
/// let mut conn = PgConnection::establish("postgres://postgres@127.0.0.1/app")?;
/// let report = pgschemas_diesel::doctor(&mut conn, &Config::default(), &NoTenants, &MIGRATIONS)?;
/// print!("{report}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn doctor(
    conn: &mut PgConnection,
    config: &Config,
    catalog: &dyn Catalog,
    tenant_migrations: &dyn MigrationSource<Pg>,
) -> Result<DoctorReport> {
    let rows = CatalogRows::read(catalog, conn)?;
    let tenants = &rows.tenants;
    let schemas: BTreeSet<String> = list_schemas(conn)?.into_iter().collect();
    let shared = config.shared_schema().as_str();
    let mut tenant_like: Vec<String> = config
        .static_tenants()
        .iter()
        .filter(|t| t.migrate())
        .map(|t| t.name().to_string())
        .collect();
    tenant_like.extend(config.clone_reference().map(|r| r.to_string()));
    tenant_like.extend(tenants.iter().map(|t| t.schema.to_string()));
    let mut checks = Vec::new();

    // CREATE on the shared schema for PUBLIC.
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
    checks.push(if public_create {
        Check {
            name: "shared-schema-create",
            status: CheckStatus::Warn,
            summary: format!("CREATE on the shared schema {shared:?} is granted to PUBLIC"),
            fix: Some(format!(
                "REVOKE CREATE ON SCHEMA {} FROM PUBLIC",
                config.shared_schema().quoted()
            )),
        }
    } else {
        pass(
            "shared-schema-create",
            format!("CREATE on {shared:?} is not granted to PUBLIC"),
        )
    });

    // The path a connection gets before the crate sets one: the value `RESET` goes back to
    // (server, database, role and connection settings), whatever `conn` has set since.
    let default_path: String = diesel::select(diesel::dsl::sql::<Text>(
        "(SELECT reset_val FROM pg_catalog.pg_settings WHERE name = 'search_path')",
    ))
    .get_result(conn)
    .map_err(Error::from)?;
    let on_default: Vec<&String> = tenant_like
        .iter()
        .filter(|t| {
            default_path
                .split(',')
                .any(|p| p.trim().trim_matches('"') == t.as_str())
        })
        .collect();
    checks.push(if on_default.is_empty() {
        pass(
            "default-search-path",
            format!("a fresh connection's path ({default_path}) names no tenant"),
        )
    } else {
        Check {
            name: "default-search-path",
            status: CheckStatus::Fail,
            summary: format!(
                "a fresh connection's path ({default_path}) names tenant schema(s) {on_default:?}"
            ),
            fix: Some(
                "ALTER DATABASE/ROLE ... RESET search_path (the crate sets the path itself)"
                    .to_owned(),
            ),
        }
    });

    checks.push(invalid_rows_check(config, &rows));

    // Dynamic names against the configuration's reserved names.
    let clashes: Vec<String> = tenants
        .iter()
        .filter_map(|t| match config.check_tenant_name(t.schema.as_str()) {
            Err(e) => Some(format!("tenant {}: {e}", t.id)),
            Ok(_) => None,
        })
        .collect();
    checks.push(if clashes.is_empty() {
        pass(
            "name-clashes",
            format!("{} dynamic tenant name(s), no clash", tenants.len()),
        )
    } else {
        Check {
            name: "name-clashes",
            status: CheckStatus::Fail,
            summary: clashes.join("; "),
            fix: Some("rename the tenant(s) or the static tenant / reference / extra path".into()),
        }
    });

    // Tenants without a schema.
    let missing: Vec<&str> = tenants
        .iter()
        .map(|t| t.schema.as_str())
        .filter(|s| !schemas.contains(*s))
        .collect();
    checks.push(if missing.is_empty() {
        pass(
            "tenant-schemas",
            format!("all {} tenant(s) have their schema", tenants.len()),
        )
    } else {
        Check {
            name: "tenant-schemas",
            status: CheckStatus::Fail,
            summary: format!("tenant(s) without a schema: {missing:?}"),
            fix: Some("provision them (create the schema and migrate), or delete the rows".into()),
        }
    });

    // Schemas that belong to nothing the configuration or the catalog knows.
    let known: BTreeSet<&str> = std::iter::once(shared)
        .chain(config.extra_search_paths().iter().map(|s| s.as_str()))
        .chain(config.static_tenants().iter().map(|t| t.name().as_str()))
        .chain(config.clone_reference().map(|r| r.as_str()))
        .chain(tenants.iter().map(|t| t.schema.as_str()))
        .collect();
    let orphans: Vec<&String> = schemas
        .iter()
        .filter(|s| !known.contains(s.as_str()))
        .collect();
    checks.push(if orphans.is_empty() {
        pass(
            "orphan-schemas",
            "every schema belongs to a tenant or the configuration".to_owned(),
        )
    } else {
        Check {
            name: "orphan-schemas",
            status: CheckStatus::Warn,
            summary: format!("schema(s) with no tenant: {orphans:?}"),
            fix: Some("drop them, or add the tenant rows they belong to".into()),
        }
    });

    checks.push(migrations_check(
        conn,
        &tenant_like,
        &schemas,
        tenant_migrations,
    )?);
    checks.push(enum_check(conn, &tenant_like)?);
    checks.push(locks_check(conn, &tenant_like)?);
    Ok(DoctorReport { checks })
}

/// The rows the catalog read left out, and the domains routing leaves out (the tenants it
/// leaves out clash with the configuration: `name-clashes` reports them).
fn invalid_rows_check(config: &Config, rows: &CatalogRows) -> Check {
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
        return pass(
            "invalid-rows",
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
    Check {
        name: "invalid-rows",
        status,
        summary: format!("row(s) that cannot be used: {}", summary.join("; ")),
        fix: Some(
            "correct or delete the rows: a schema name matches ^[a-z_][a-z0-9_]{0,62}$ (no pg_ \
             prefix), a domain is a host name without scheme, port or path, a folder is one \
             path segment, a domain belongs to an existing tenant"
                .into(),
        ),
    }
}

fn pass(name: &'static str, summary: String) -> Check {
    Check {
        name,
        status: CheckStatus::Pass,
        summary,
        fix: None,
    }
}

fn migrations_check(
    conn: &mut PgConnection,
    tenant_like: &[String],
    schemas: &BTreeSet<String>,
    tenant_migrations: &dyn MigrationSource<Pg>,
) -> Result<Check> {
    let expected = source_versions(tenant_migrations)?;
    let present: Vec<&str> = tenant_like
        .iter()
        .map(String::as_str)
        .filter(|s| schemas.contains(*s))
        .collect();
    // One query for every ledger; a schema without a ledger yet has nothing applied.
    let applied: BTreeMap<String, BTreeSet<String>> = applied_versions(conn, &present)?
        .into_iter()
        .map(|(schema, versions)| (schema, versions.unwrap_or_default()))
        .collect();
    let mut behind = Vec::new();
    let mut ahead = Vec::new();
    for (schema, versions) in &applied {
        let missing = expected.difference(versions).count();
        let unknown = versions.difference(&expected).count();
        if missing > 0 {
            behind.push(format!("{schema} ({missing} pending)"));
        }
        if unknown > 0 {
            ahead.push(format!("{schema} ({unknown} unknown)"));
        }
    }
    Ok(if behind.is_empty() && ahead.is_empty() {
        pass(
            "migrations",
            format!(
                "{} tenant schema(s) at the latest of {} migration(s)",
                applied.len(),
                expected.len()
            ),
        )
    } else {
        let mut summary = Vec::new();
        if !behind.is_empty() {
            summary.push(format!("behind: {}", behind.join(", ")));
        }
        if !ahead.is_empty() {
            summary.push(format!(
                "with migrations this build does not know: {}",
                ahead.join(", ")
            ));
        }
        Check {
            name: "migrations",
            status: CheckStatus::Fail,
            summary: summary.join("; "),
            fix: Some("run the migrate command for the tenant schemas".into()),
        }
    })
}

#[derive(QueryableByName)]
struct Nsp {
    #[diesel(sql_type = Text)]
    nspname: String,
}

fn enum_check(conn: &mut PgConnection, tenant_like: &[String]) -> Result<Check> {
    let rows: Vec<Nsp> = diesel::sql_query(
        "SELECT DISTINCT n.nspname::text AS nspname FROM pg_catalog.pg_type t \
         JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
         WHERE t.typtype = 'e' AND n.nspname = ANY($1) ORDER BY 1",
    )
    .bind::<diesel::sql_types::Array<Text>, _>(tenant_like)
    .load(conn)
    .map_err(Error::from)?;
    Ok(if rows.is_empty() {
        pass(
            "enum-types",
            "no enum type inside a tenant schema".to_owned(),
        )
    } else {
        let names: Vec<String> = rows.into_iter().map(|r| r.nspname).collect();
        Check {
            name: "enum-types",
            status: CheckStatus::Warn,
            summary: format!("enum types defined inside tenant schema(s) {names:?}"),
            fix: Some(
                "create enum types once in the shared schema and declare them with \
                 #[diesel(postgres_type(name = \"..\", schema = \"public\"))]: Diesel caches \
                 type OIDs per connection"
                    .into(),
            ),
        }
    })
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

fn locks_check(conn: &mut PgConnection, tenant_like: &[String]) -> Result<Check> {
    let l: Locks = diesel::sql_query(
        "SELECT current_setting('max_locks_per_transaction')::bigint AS max_locks, \
         current_setting('max_locks_per_transaction')::bigint * \
           (current_setting('max_connections')::bigint + current_setting('max_prepared_transactions')::bigint) AS slots, \
         coalesce(max(n), 0)::bigint AS largest, coalesce(sum(n), 0)::bigint AS total \
         FROM (SELECT count(*) AS n FROM pg_catalog.pg_class c \
               JOIN pg_catalog.pg_namespace ns ON ns.oid = c.relnamespace \
               WHERE ns.nspname = ANY($1) GROUP BY ns.nspname) per_schema",
    )
    .bind::<diesel::sql_types::Array<Text>, _>(tenant_like)
    .get_result(conn)
    .map_err(Error::from)?;
    let summary = format!(
        "max_locks_per_transaction = {}, lock table ≈ {} slots; largest tenant has {} relations, all tenants {}",
        l.max_locks, l.slots, l.largest, l.total
    );
    Ok(if l.largest > l.slots / 2 {
        Check {
            name: "max-locks",
            status: CheckStatus::Fail,
            summary,
            fix: Some(
                "raise max_locks_per_transaction: one tenant's migration locks all its relations"
                    .into(),
            ),
        }
    } else if l.total > l.slots {
        Check {
            name: "max-locks",
            status: CheckStatus::Warn,
            summary: format!(
                "{summary}: one transaction that touches every tenant (a cross-tenant report, \
                 dropping all tenants at once) would run out of lock slots"
            ),
            fix: Some(
                "work per tenant per transaction (as the migrate command does), or raise \
                 max_locks_per_transaction"
                    .into(),
            ),
        }
    } else {
        pass("max-locks", summary)
    })
}
