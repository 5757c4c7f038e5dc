//! The checks `doctor` adds with per-tenant roles on: each a few catalog queries over every
//! tenant schema at once, never one query per tenant.

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Text};

use super::Facts;
use super::report::{Check, CheckStatus, few};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::roles::{PathRole, TenantRoles};

/// The tenant schemas that exist, with the name of each one's role.
pub(super) struct Tenants {
    schemas: Vec<String>,
    roles: Vec<String>,
}

impl Tenants {
    /// The static and dynamic tenants whose schema exists and whose role can be named (a role
    /// name the template cannot give is left to the error a checkout reports).
    pub(super) fn of(config: &Config, facts: &Facts) -> Self {
        let mut pairs: Vec<(String, String)> = config
            .static_tenants()
            .iter()
            .map(|t| t.name().clone())
            .chain(facts.rows.tenants.iter().map(|t| t.schema.clone()))
            .filter(|s| facts.schemas.contains(s.as_str()))
            .filter_map(|s| match config.path_role(&s) {
                Ok(PathRole::Named(r)) => Some((s.to_string(), r.to_string())),
                _ => None,
            })
            .collect();
        pairs.sort();
        pairs.dedup();
        let (schemas, roles) = pairs.into_iter().unzip();
        Self { schemas, roles }
    }
}

#[derive(QueryableByName)]
struct RoleRow {
    #[diesel(sql_type = Text)]
    schema: String,
    #[diesel(sql_type = Bool)]
    found: bool,
    #[diesel(sql_type = Bool)]
    marked: bool,
    #[diesel(sql_type = Array<Text>)]
    not_members: Vec<String>,
    #[diesel(sql_type = BigInt)]
    foreign_owned: i64,
    #[diesel(sql_type = Bool)]
    defaults: bool,
    #[diesel(sql_type = BigInt)]
    definers: i64,
}

/// The marker comment of the role of the schema in SQL column `schema` (as
/// `roles::lifecycle` writes it).
const MARKER: &str = "pg_catalog.concat('pgschemas_diesel tenant role of schema \"', t.schema, '\" in database ', pg_catalog.quote_ident(pg_catalog.current_database()::pg_catalog.text))";

/// `tenant-roles`, `tenant-ownership`, `tenant-default-privileges`, `security-definer`: every
/// tenant has its marked role, of which the DDL role and every login are members; the DDL
/// role owns the schema and everything in it; its default privileges there give the tenant
/// role DML on tables and the use of sequences; no `SECURITY DEFINER` function in a tenant
/// schema.
pub(super) fn per_tenant(
    conn: &mut PgConnection,
    roles: &TenantRoles,
    tenants: &Tenants,
) -> Result<Vec<Check>> {
    let mut members: Vec<String> = vec![roles.ddl_role().to_string()];
    members.extend(roles.login_roles().iter().map(ToString::to_string));
    let rows: Vec<RoleRow> = diesel::sql_query(format!(
        "WITH t AS (SELECT * FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[])) AS t(schema, role)), \
         k AS (SELECT t.schema, t.role, n.oid AS ns, r.oid AS roid FROM t \
           JOIN pg_catalog.pg_namespace n ON n.nspname OPERATOR(pg_catalog.=) t.schema \
           LEFT JOIN pg_catalog.pg_roles r ON r.rolname OPERATOR(pg_catalog.=) t.role), \
         d AS (SELECT oid FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) $4) \
         SELECT t.schema, t.roid IS NOT NULL AS found, \
           COALESCE(pg_catalog.shobj_description(t.roid, 'pg_authid') OPERATOR(pg_catalog.=) {MARKER}, false) AS marked, \
           ARRAY(SELECT m FROM pg_catalog.unnest($3::text[]) m WHERE t.roid IS NULL OR NOT EXISTS ( \
             SELECT FROM pg_catalog.pg_auth_members a JOIN pg_catalog.pg_roles mr ON mr.oid OPERATOR(pg_catalog.=) a.member \
             WHERE a.roleid OPERATOR(pg_catalog.=) t.roid AND mr.rolname OPERATOR(pg_catalog.=) m)) AS not_members, \
           (SELECT pg_catalog.count(*) FROM pg_catalog.pg_class c WHERE c.relnamespace OPERATOR(pg_catalog.=) t.ns \
              AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND c.relowner OPERATOR(pg_catalog.<>) (SELECT oid FROM d)) \
           + (SELECT pg_catalog.count(*) FROM pg_catalog.pg_proc p WHERE p.pronamespace OPERATOR(pg_catalog.=) t.ns \
              AND p.proowner OPERATOR(pg_catalog.<>) (SELECT oid FROM d)) \
           + (SELECT pg_catalog.count(*) FROM pg_catalog.pg_namespace n WHERE n.oid OPERATOR(pg_catalog.=) t.ns \
              AND n.nspowner OPERATOR(pg_catalog.<>) (SELECT oid FROM d)) AS foreign_owned, \
           ({tables} AND {sequences}) AS defaults, \
           (SELECT pg_catalog.count(*) FROM pg_catalog.pg_proc p WHERE p.pronamespace OPERATOR(pg_catalog.=) t.ns AND p.prosecdef) AS definers \
         FROM k t ORDER BY t.schema",
        tables = default_acl("r", &["SELECT", "INSERT", "UPDATE", "DELETE"]),
        sequences = default_acl("S", &["USAGE", "SELECT", "UPDATE"]),
    ))
    .bind::<Array<Text>, _>(&tenants.schemas)
    .bind::<Array<Text>, _>(&tenants.roles)
    .bind::<Array<Text>, _>(&members)
    .bind::<Text, _>(roles.ddl_role().as_str())
    .load(conn)
    .map_err(Error::from)?;
    let n = rows.len();
    let missing: Vec<&str> = rows
        .iter()
        .filter(|r| !r.found)
        .map(|r| r.schema.as_str())
        .collect();
    let unmarked: Vec<&str> = rows
        .iter()
        .filter(|r| r.found && !r.marked)
        .map(|r| r.schema.as_str())
        .collect();
    let unjoined: Vec<String> = rows
        .iter()
        .filter(|r| r.found && !r.not_members.is_empty())
        .map(|r| format!("{} (not {})", r.schema, r.not_members.join(", ")))
        .collect();
    let owned: Vec<String> = rows
        .iter()
        .filter(|r| r.foreign_owned > 0)
        .map(|r| format!("{} ({})", r.schema, r.foreign_owned))
        .collect();
    let no_defaults: Vec<&str> = rows
        .iter()
        .filter(|r| r.found && !r.defaults)
        .map(|r| r.schema.as_str())
        .collect();
    let definers: Vec<String> = rows
        .iter()
        .filter(|r| r.definers > 0)
        .map(|r| format!("{} ({})", r.schema, r.definers))
        .collect();

    let roles_check = if missing.is_empty() && unmarked.is_empty() && unjoined.is_empty() {
        Check::pass(
            "tenant-roles",
            format!(
                "all {n} tenant schema(s) have their role, with the DDL role and every login as members"
            ),
        )
    } else {
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!("without a role: {}", few(&missing, ", ")));
        }
        if !unmarked.is_empty() {
            parts.push(format!(
                "a role of the tenant role's name not marked as theirs: {}",
                few(&unmarked, ", ")
            ));
        }
        if !unjoined.is_empty() {
            parts.push(format!("roles missing members: {}", few(&unjoined, "; ")));
        }
        Check::found(
            "tenant-roles",
            CheckStatus::Fail,
            format!("tenant schema(s) {}", parts.join("; ")),
            "run adopt-roles (pgschemas_diesel::roles::adopt_roles); drop or rename a role that is not the tenant's",
        )
    };
    let ownership = if owned.is_empty() {
        Check::pass(
            "tenant-ownership",
            format!("the DDL role owns all {n} tenant schema(s) and everything in them"),
        )
    } else {
        Check::found(
            "tenant-ownership",
            CheckStatus::Fail,
            format!(
                "objects owned by another role than the DDL role {} in tenant schema(s) {}",
                roles.ddl_role(),
                few(&owned, ", ")
            ),
            "run adopt-roles, and run migrations as the DDL role (TenantPool::ddl): the tenant role's default privileges only cover what the DDL role creates",
        )
    };
    let defaults = if no_defaults.is_empty() {
        Check::pass(
            "tenant-default-privileges",
            format!(
                "the DDL role's default privileges give each of the {n} tenant role(s) its tables and sequences"
            ),
        )
    } else {
        Check::found(
            "tenant-default-privileges",
            CheckStatus::Fail,
            format!(
                "no default privileges for the tenant role in schema(s) {}: a table a migration adds is out of its tenant's reach",
                few(&no_defaults, ", ")
            ),
            "run adopt-roles",
        )
    };
    let definer = if definers.is_empty() {
        Check::pass(
            "security-definer",
            "no SECURITY DEFINER function in a tenant schema".to_owned(),
        )
    } else {
        Check::found(
            "security-definer",
            CheckStatus::Warn,
            format!(
                "SECURITY DEFINER functions in tenant schema(s) {}: they run as their owner, the DDL role, which reaches every tenant",
                few(&definers, ", ")
            ),
            "make them SECURITY INVOKER (ALTER FUNCTION .. SECURITY INVOKER)",
        )
    };
    Ok(vec![roles_check, ownership, defaults, definer])
}

/// The condition that the DDL role's default privileges in `t.ns` for objects of `objtype`
/// give `t.roid` every privilege of `privileges`.
fn default_acl(objtype: &str, privileges: &[&str]) -> String {
    let list = privileges
        .iter()
        .map(|p| format!("'{p}'"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "(SELECT pg_catalog.count(DISTINCT a.privilege_type) FROM pg_catalog.pg_default_acl x, \
           pg_catalog.aclexplode(x.defaclacl) a WHERE x.defaclrole OPERATOR(pg_catalog.=) (SELECT oid FROM d) \
           AND x.defaclnamespace OPERATOR(pg_catalog.=) t.ns AND x.defaclobjtype OPERATOR(pg_catalog.=) '{objtype}' \
           AND a.grantee OPERATOR(pg_catalog.=) t.roid AND a.privilege_type IN ({list})) OPERATOR(pg_catalog.=) {}",
        privileges.len()
    )
}

#[derive(QueryableByName)]
struct Pair {
    #[diesel(sql_type = Text)]
    role: String,
    #[diesel(sql_type = Text)]
    what: String,
}

/// `cross-tenant-privileges`: no tenant role holds a privilege on another tenant's schema or
/// on anything in it, or is a member of another tenant's role.
pub(super) fn cross_tenant(conn: &mut PgConnection, tenants: &Tenants) -> Result<Check> {
    const NAME: &str = "cross-tenant-privileges";
    let rows: Vec<Pair> = diesel::sql_query(
        "WITH t AS (SELECT t.schema, r.oid AS roid, n.oid AS ns \
           FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[])) AS t(schema, role) \
           JOIN pg_catalog.pg_roles r ON r.rolname OPERATOR(pg_catalog.=) t.role \
           JOIN pg_catalog.pg_namespace n ON n.nspname OPERATOR(pg_catalog.=) t.schema), \
         grants AS ( \
           SELECT a.grantee, n.oid AS ns, 'schema ' || pg_catalog.quote_ident(n.nspname) AS what \
             FROM pg_catalog.pg_namespace n, pg_catalog.aclexplode(n.nspacl) a \
             WHERE n.oid IN (SELECT ns FROM t) \
           UNION ALL SELECT a.grantee, c.relnamespace, c.oid::pg_catalog.regclass::text \
             FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a \
             WHERE c.relnamespace IN (SELECT ns FROM t) AND c.relacl IS NOT NULL \
           UNION ALL SELECT a.grantee, p.pronamespace, p.oid::pg_catalog.regprocedure::text \
             FROM pg_catalog.pg_proc p, pg_catalog.aclexplode(p.proacl) a \
             WHERE p.pronamespace IN (SELECT ns FROM t) AND p.proacl IS NOT NULL \
           UNION ALL SELECT a.grantee, x.defaclnamespace, 'default privileges in ' || x.defaclnamespace::pg_catalog.regnamespace::text \
             FROM pg_catalog.pg_default_acl x, pg_catalog.aclexplode(x.defaclacl) a \
             WHERE x.defaclnamespace IN (SELECT ns FROM t) \
           UNION ALL SELECT m.member, o.ns, 'membership of role ' || pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(m.roleid)) \
             FROM pg_catalog.pg_auth_members m JOIN t o ON o.roid OPERATOR(pg_catalog.=) m.roleid) \
         SELECT DISTINCT pg_catalog.pg_get_userbyid(g.grantee)::text AS role, g.what FROM grants g \
           JOIN t mine ON mine.roid OPERATOR(pg_catalog.=) g.grantee \
           WHERE g.ns OPERATOR(pg_catalog.<>) mine.ns ORDER BY 1, 2",
    )
    .bind::<Array<Text>, _>(&tenants.schemas)
    .bind::<Array<Text>, _>(&tenants.roles)
    .load(conn)
    .map_err(Error::from)?;
    if rows.is_empty() {
        return Ok(Check::pass(
            NAME,
            "no tenant role holds a privilege in another tenant's schema".to_owned(),
        ));
    }
    let found: Vec<String> = rows
        .iter()
        .map(|p| format!("{} on {}", p.role, p.what))
        .collect();
    Ok(Check::found(
        NAME,
        CheckStatus::Fail,
        format!(
            "tenant roles holding privileges in another tenant's schema: {}",
            few(&found, "; ")
        ),
        "revoke them (REVOKE .. FROM <role>); a tenant role reaches its own schema only",
    ))
}

#[derive(QueryableByName)]
struct Orphan {
    #[diesel(sql_type = Text)]
    role: String,
    #[diesel(sql_type = Text)]
    marker: String,
    #[diesel(sql_type = Text)]
    database: String,
}

/// `orphan-roles`: no role marked as this database's tenant role of a schema that does not
/// exist (left by a schema dropped outside the crate).
pub(super) fn orphan_roles(
    conn: &mut PgConnection,
    roles: &TenantRoles,
    facts: &Facts,
) -> Result<Check> {
    const NAME: &str = "orphan-roles";
    let template = roles.role_template();
    let rows: Vec<Orphan> = diesel::sql_query(
        "SELECT r.rolname::text AS role, COALESCE(pg_catalog.shobj_description(r.oid, 'pg_authid'), '') AS marker, \
         pg_catalog.quote_ident(pg_catalog.current_database()::pg_catalog.text) AS database \
         FROM pg_catalog.pg_roles r WHERE pg_catalog.starts_with(r.rolname::text, $1) ORDER BY 1",
    )
    .bind::<Text, _>(template.prefix())
    .load(conn)
    .map_err(Error::from)?;
    let orphans: Vec<&str> = rows
        .iter()
        .filter_map(|o| {
            let schema = template.schema_of(&o.role)?;
            let marker = format!(
                "pgschemas_diesel tenant role of schema {} in database {}",
                schema.quoted(),
                o.database
            );
            (o.marker == marker && !facts.schemas.contains(schema.as_str()))
                .then_some(o.role.as_str())
        })
        .collect();
    if orphans.is_empty() {
        return Ok(Check::pass(
            NAME,
            "no tenant role without its schema".to_owned(),
        ));
    }
    Ok(Check::found(
        NAME,
        CheckStatus::Warn,
        format!("tenant roles whose schema is gone: {}", few(&orphans, ", ")),
        "drop them: DROP OWNED BY <role>; DROP ROLE <role> (drop_tenant does it with the schema)",
    ))
}
