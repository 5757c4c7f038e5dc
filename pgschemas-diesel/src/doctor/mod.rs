//! Checks worth running before going live: [`doctor`] runs them, one function per check
//! (in `checks`), and returns a [`DoctorReport`] of [`Check`]s, each with a [`CheckStatus`]
//! (in `report`). The CLI's `doctor` command prints the same report.

mod checks;
mod citus_checks;
mod report;
mod role_checks;

use std::collections::BTreeSet;

use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel::prelude::*;

use crate::catalog::{Catalog, CatalogRows};
use crate::config::Config;
use crate::error::Result;
use crate::lifecycle::list_schemas;

pub use report::{Check, CheckStatus, DoctorReport};

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
/// - `migrations`: no tenant schema is behind (or ahead of) the tenant migrations, and every
///   tenant schema's ledger can be read (each one that cannot is named with what is wrong:
///   not a table, no text `version` column, no privilege to read it);
/// - `enum-types`: no enum type is defined inside a tenant schema (Diesel caches type OIDs per
///   connection: keep enums in the shared schema);
/// - `max-locks`: `max_locks_per_transaction` against the largest tenant's relations, and
///   the shared lock table against all tenants' relations;
///
/// with [`Config::tenant_roles`] on:
///
/// - `tenant-roles`: every tenant schema has its role, marked as this database's, with the DDL
///   role and every login role as members;
/// - `tenant-ownership`: the DDL role owns every tenant schema and everything in it;
/// - `tenant-default-privileges`: the DDL role's default privileges in each tenant schema give
///   the tenant role DML on tables and the use of sequences;
/// - `security-definer`: no `SECURITY DEFINER` function in a tenant schema (it would run as
///   the DDL role);
/// - `cross-tenant-privileges`: no tenant role holds any privilege on another tenant's schema
///   or its objects, or is a member of another tenant's role;
/// - `orphan-roles`: no tenant role marked for this database whose schema is gone;
///
/// and with [`Config::citus`] on:
///
/// - `citus-distributed`: every dynamic tenant's schema is a Citus distributed schema (the
///   `citus` extension is installed);
/// - `citus-foreign-keys`: no foreign key links a tenant schema with another schema (but to
///   a Citus reference table): Citus refuses them.
///
/// # Errors
///
/// [`Error::Database`](crate::Error::Database) when a catalog query fails; problems found (a
/// bad row included) are findings, not errors.
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database().schemas(&["leftover"]); let database_url = db.url();
/// use diesel::{Connection, PgConnection};
/// use pgschemas_diesel::Config;
/// use pgschemas_diesel::doctor::CheckStatus;
/// use pgschemas_diesel::catalog::NoTenants;
///
/// const MIGRATIONS: diesel_migrations::EmbeddedMigrations =
///     diesel_migrations::embed_migrations!("../examples/migrations/tenant");
/// let mut conn = PgConnection::establish(database_url)?;
/// let report = pgschemas_diesel::doctor::doctor(&mut conn, &Config::default(), &NoTenants, &MIGRATIONS)?;
/// print!("{report}");
/// // the schema "leftover" belongs to no tenant
/// let orphans = report.get("orphan-schemas").expect("the check ran");
/// assert_eq!(orphans.status, CheckStatus::Warn);
/// assert!(orphans.summary.contains("leftover"));
/// assert_eq!(report.worst(), CheckStatus::Warn);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn doctor(
    conn: &mut PgConnection,
    config: &Config,
    catalog: &dyn Catalog,
    tenant_migrations: &dyn MigrationSource<Pg>,
) -> Result<DoctorReport> {
    let facts = Facts::read(conn, config, catalog)?;
    let mut checks = vec![
        checks::shared_schema_create(conn, config)?,
        checks::default_search_path(conn, &facts)?,
        checks::invalid_rows(config, &facts.rows),
        checks::name_clashes(config, &facts.rows),
        checks::tenant_schemas(&facts),
        checks::orphan_schemas(config, &facts),
        checks::migrations(conn, &facts, tenant_migrations)?,
        checks::enum_types(conn, &facts)?,
        checks::max_locks(conn, &facts)?,
    ];
    if let Some(roles) = config.tenant_roles() {
        let tenants = role_checks::Tenants::of(config, &facts);
        checks.extend(role_checks::per_tenant(conn, roles, &tenants)?);
        checks.push(role_checks::cross_tenant(conn, &tenants)?);
        checks.push(role_checks::orphan_roles(conn, roles, &facts)?);
    }
    if config.citus() {
        checks.push(citus_checks::distributed(conn, &facts)?);
        checks.push(citus_checks::foreign_keys(conn, &facts)?);
    }
    Ok(DoctorReport { checks })
}

/// What the checks look at, read once: the catalog's rows and the database's schemas.
struct Facts {
    /// The catalog's usable tenants and domains, and the rows left out.
    rows: CatalogRows,
    /// Every schema in the database.
    schemas: BTreeSet<String>,
    /// The schemas that hold the tenant migrations: the static tenants that migrate, the
    /// clone reference, the dynamic tenants.
    tenant_like: Vec<String>,
}

impl Facts {
    fn read(conn: &mut PgConnection, config: &Config, catalog: &dyn Catalog) -> Result<Self> {
        let rows = CatalogRows::read(catalog, conn)?;
        let schemas: BTreeSet<String> = list_schemas(conn)?.into_iter().collect();
        let mut tenant_like: Vec<String> = config
            .static_tenants()
            .iter()
            .filter(|t| t.migrate())
            .map(|t| t.name().to_string())
            .collect();
        tenant_like.extend(config.clone_reference().map(|r| r.to_string()));
        tenant_like.extend(rows.tenants.iter().map(|t| t.schema.to_string()));
        Ok(Self {
            rows,
            schemas,
            tenant_like,
        })
    }
}
