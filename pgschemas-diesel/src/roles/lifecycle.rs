//! The statements that give a tenant its role, with its schema and in the same transaction,
//! and take it away with the schema.
//!
//! A tenant role is `NOLOGIN`, marked as this database's role of its schema by a comment
//! ([`marker_sql`]), granted to the DDL role (so that the DDL role may drop what was granted
//! to it) and to every login role. The DDL role owns the schema; its default privileges in
//! the schema give the tenant role DML on every table and the use of every sequence a
//! migration or a clone creates there.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};

use super::{PathRole, Phase, PolicyContext, RoleName, TenantRoles};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::name::{SchemaName, quote_literal};

/// The privileges a tenant role gets on its schema's tables.
pub(crate) const TABLE_PRIVILEGES: &str = "SELECT, INSERT, UPDATE, DELETE";

/// The privileges a tenant role gets on its schema's sequences.
pub(crate) const SEQUENCE_PRIVILEGES: &str = "USAGE, SELECT, UPDATE";

/// The statement that makes the DDL role current for the transaction.
pub(crate) fn act_as_ddl_sql(roles: &TenantRoles) -> String {
    format!(
        "SELECT pg_catalog.set_config('role', {}, true)",
        roles.ddl_role().literal()
    )
}

/// The comment that marks `role` as this database's role of `schema`: an expression of the
/// current database's name, compared by [`RoleState`] and set by [`marker_sql`].
fn marker_expr(schema: &SchemaName) -> String {
    format!(
        "pg_catalog.concat('pgschemas_diesel tenant role of schema ', {}, ' in database ', pg_catalog.quote_ident(pg_catalog.current_database()::pg_catalog.text))",
        quote_literal(&schema.quoted())
    )
}

/// Sets the marker comment on `role` (`COMMENT` takes no expression: a `DO` block runs it).
fn marker_sql(role: &RoleName, schema: &SchemaName) -> String {
    let mut tag = String::from("pgschemas");
    let body = format!(
        "BEGIN EXECUTE pg_catalog.format('COMMENT ON ROLE %I IS %L', {}::pg_catalog.text, {}); END",
        role.literal(),
        marker_expr(schema)
    );
    while body.contains(&format!("${tag}$")) {
        tag.push('_');
    }
    format!("DO ${tag}${body}${tag}$")
}

/// Creates `role` for `schema`, marks it and grants it to the DDL role and the login roles.
pub(crate) fn create_role_sql(roles: &TenantRoles, role: &RoleName, schema: &SchemaName) -> String {
    let mut members = vec![roles.ddl_role().quoted()];
    members.extend(roles.login_roles().iter().map(RoleName::quoted));
    format!(
        "CREATE ROLE {r} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS; {}; GRANT {r} TO {}",
        marker_sql(role, schema),
        members.join(", "),
        r = role.quoted(),
    )
}

/// Grants `role` the use of `schema` and DML on what the DDL role creates there from now on
/// (default privileges).
fn default_grant_sql(roles: &TenantRoles, role: &RoleName, schema: &SchemaName) -> String {
    let (s, r, d) = (schema.quoted(), role.quoted(), roles.ddl_role().quoted());
    format!(
        "GRANT USAGE ON SCHEMA {s} TO {r}; \
         ALTER DEFAULT PRIVILEGES FOR ROLE {d} IN SCHEMA {s} GRANT {TABLE_PRIVILEGES} ON TABLES TO {r}; \
         ALTER DEFAULT PRIVILEGES FOR ROLE {d} IN SCHEMA {s} GRANT {SEQUENCE_PRIVILEGES} ON SEQUENCES TO {r}"
    )
}

/// [`default_grant_sql`], and DML on what exists in `schema` already (an adopted schema; a
/// schema just created is empty, and each `ALL ... IN SCHEMA` reads all of `pg_class`).
pub(crate) fn grant_sql(roles: &TenantRoles, role: &RoleName, schema: &SchemaName) -> String {
    let (s, r) = (schema.quoted(), role.quoted());
    format!(
        "{}; \
         GRANT {TABLE_PRIVILEGES} ON ALL TABLES IN SCHEMA {s} TO {r}; \
         GRANT {SEQUENCE_PRIVILEGES} ON ALL SEQUENCES IN SCHEMA {s} TO {r}",
        default_grant_sql(roles, role, schema)
    )
}

/// The statements that follow `CREATE SCHEMA` when a tenant is provisioned, run as the DDL
/// role: the role, its membership, its privileges (on what the schema, still empty, will
/// hold), its shared-schema grants.
pub(crate) fn provision_sql(
    roles: &TenantRoles,
    shared: &SchemaName,
    schema: &SchemaName,
) -> Result<String> {
    let role = roles.role_of(schema)?;
    let mut sql = format!(
        "{}; {}",
        create_role_sql(roles, &role, schema),
        default_grant_sql(roles, &role, schema)
    );
    for grant in shared_sql(roles, shared, schema, &role, Phase::Provision) {
        sql.push_str("; ");
        sql.push_str(&grant);
    }
    Ok(sql)
}

/// The shared-schema grants the policy gives `role`, the role of `schema`.
pub(crate) fn shared_sql(
    roles: &TenantRoles,
    shared: &SchemaName,
    schema: &SchemaName,
    role: &RoleName,
    phase: Phase,
) -> Vec<String> {
    roles.policy().sql(&PolicyContext {
        tenant: schema,
        role,
        phase,
        executing: roles.ddl_role().as_str(),
        shared,
    })
}

/// Creates `name` ([`crate::lifecycle::create_schema`]); with tenant roles on and `name` a
/// tenant schema, with its role and grants in the same transaction, as the DDL role.
///
/// # Errors
///
/// As [`crate::lifecycle::create_schema`]; [`Error::RoleExists`] when a role of the tenant
/// role's name exists already.
pub(crate) fn create_schema(
    conn: &mut PgConnection,
    config: &Config,
    name: &SchemaName,
) -> Result<()> {
    let (Some(roles), PathRole::Named(role)) = (config.tenant_roles(), config.path_role(name)?)
    else {
        return crate::lifecycle::create_schema(conn, name);
    };
    let sql = format!(
        "{}; CREATE SCHEMA {}; {}",
        act_as_ddl_sql(roles),
        name.quoted(),
        provision_sql(roles, config.shared_schema(), name)?
    );
    let Err(e) = conn.transaction(|conn| conn.batch_execute(&sql)) else {
        return Ok(());
    };
    if matches!(crate::lifecycle::schema_exists(conn, name), Ok(true)) {
        return Err(Error::SchemaExists {
            schema: name.to_string(),
        });
    }
    if RoleState::read(conn, &role, name).is_ok_and(|s| s != RoleState::Missing) {
        return Err(Error::RoleExists {
            schema: name.to_string(),
            role: role.to_string(),
        });
    }
    Err(Error::db(name.as_str(), e))
}

/// What the server holds under a tenant role's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RoleState {
    /// No role of that name.
    Missing,
    /// The role, marked as this database's role of the schema.
    Ours,
    /// A role of that name that is not marked so: never used, changed or dropped.
    Foreign,
}

#[derive(QueryableByName)]
struct StateRow {
    #[diesel(sql_type = Bool)]
    found: bool,
    #[diesel(sql_type = Bool)]
    ours: bool,
}

impl RoleState {
    /// Reads the state of `role`, the role of `schema`.
    pub(crate) fn read(
        conn: &mut PgConnection,
        role: &RoleName,
        schema: &SchemaName,
    ) -> Result<Self> {
        let row: StateRow = diesel::sql_query(format!(
            "SELECT r.oid IS NOT NULL AS found, \
             COALESCE(pg_catalog.shobj_description(r.oid, 'pg_authid') OPERATOR(pg_catalog.=) {}, false) AS ours \
             FROM (SELECT (SELECT oid FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) $1) AS oid) r",
            marker_expr(schema)
        ))
        .bind::<Text, _>(role.as_str())
        .get_result(conn)
        .map_err(|e| Error::db(schema.as_str(), e))?;
        Ok(match (row.found, row.ours) {
            (false, _) => Self::Missing,
            (true, true) => Self::Ours,
            (true, false) => Self::Foreign,
        })
    }
}

/// The statements that remove `role` (this database's role of a schema being dropped, in the
/// same transaction): what was granted to it here, then the role. A role still holding
/// privileges in another database makes `DROP ROLE` fail, and the whole drop with it.
pub(crate) fn drop_role_sql(role: &RoleName) -> String {
    format!("DROP OWNED BY {r}; DROP ROLE {r}", r = role.quoted())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements() -> Result<()> {
        let roles = TenantRoles::new("ddl")?
            .template("db-{schema}")?
            .login_role("app")?;
        let s = SchemaName::new("acme")?;
        let sql = provision_sql(&roles, &SchemaName::new("public")?, &s)?;
        assert!(sql.starts_with("CREATE ROLE \"db-acme\" NOLOGIN"));
        assert!(sql.contains("GRANT \"db-acme\" TO \"ddl\", \"app\""));
        assert!(sql.contains(
            "ALTER DEFAULT PRIVILEGES FOR ROLE \"ddl\" IN SCHEMA \"acme\" GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO \"db-acme\""
        ));
        assert!(sql.contains("DO $pgschemas_$BEGIN EXECUTE pg_catalog.format('COMMENT ON ROLE %I IS %L', $pgschemas$db-acme$pgschemas$::pg_catalog.text"));
        assert_eq!(
            drop_role_sql(&RoleName::new("db-acme")?),
            "DROP OWNED BY \"db-acme\"; DROP ROLE \"db-acme\""
        );
        Ok(())
    }
}
