//! Adopting roles for tenants that exist already (provisioned before the mode was on).

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use super::lifecycle::{RoleState, create_role_sql, grant_sql, shared_sql};
use super::{PathRole, Phase, RoleName, TenantRoles};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::lifecycle::schema_exists;
use crate::migrate::{LockFn, lock_statement};
use crate::name::{SchemaName, quote_literal};
use crate::transaction;

/// What adopting did for one schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Adopted {
    /// The role was created, and the schema given to it.
    Created,
    /// The role existed (marked as this schema's): ownership, grants and memberships were
    /// checked and completed.
    Existing,
}

/// Gives every schema of `schemas` its tenant role, as provisioning would have: the role
/// (created unless it exists, marked as this database's role of the schema), the DDL role as
/// owner of the schema and of every table, view, sequence, function and type in it, the
/// tenant role's `USAGE` and DML on what exists and, through default privileges, on what the
/// DDL role creates later, and the login roles' membership.
///
/// Each schema is adopted in a transaction of its own, under its migration lock, so that a
/// failure leaves the schemas before it adopted and the rest untouched: run it again to go on.
/// A second run changes nothing. `conn`'s login must be allowed to change the owner of every
/// object (a superuser, or a member of their owners and of the DDL role) and to create roles.
/// Schemas that are not tenant schemas (the shared schema, the clone reference, an extra
/// search path) are refused.
///
/// Returns one result per schema, in order; a role of the tenant role's name that is not
/// marked as this schema's is [`Error::RoleExists`] and is never taken over.
///
/// # Errors
///
/// [`Error::Config`] when tenant roles are off. Errors of one schema are in its result.
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database().notes(&["acme"]);
/// # let fixture = db.roles();
/// use pgschemas_diesel::{Config, SchemaName};
/// use pgschemas_diesel::roles::{Adopted, adopt_roles};
///
/// let config = Config::builder().tenant_roles(fixture.tenant_roles()).build()?;
/// let mut conn = db.connect(); // a superuser
/// let acme = SchemaName::new("acme")?;
/// let first = adopt_roles(&mut conn, &config, std::slice::from_ref(&acme))?;
/// assert!(matches!(first[0], (_, Ok(Adopted::Created))));
/// let again = adopt_roles(&mut conn, &config, &[acme])?;
/// assert!(matches!(again[0], (_, Ok(Adopted::Existing))));
/// # drop(fixture);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn adopt_roles(
    conn: &mut PgConnection,
    config: &Config,
    schemas: &[SchemaName],
) -> Result<Vec<(SchemaName, Result<Adopted>)>> {
    let Some(roles) = config.tenant_roles() else {
        return Err(Error::Config(
            "adopting roles needs the per-tenant roles mode: set Config::builder().tenant_roles(..)"
                .to_owned(),
        ));
    };
    Ok(schemas
        .iter()
        .map(|s| (s.clone(), adopt_one(conn, config, roles, s)))
        .collect())
}

/// Adopts one schema in a transaction of its own.
fn adopt_one(
    conn: &mut PgConnection,
    config: &Config,
    roles: &TenantRoles,
    schema: &SchemaName,
) -> Result<Adopted> {
    let PathRole::Named(role) = config.path_role(schema)? else {
        return Err(Error::Config(format!(
            "schema {schema:?} is not a tenant schema (the shared schema, the clone reference or an extra search path): it gets no tenant role"
        )));
    };
    let begin = format!("BEGIN; {}", lock_statement(schema, LockFn::Transaction));
    transaction::run(conn, &begin, |conn| {
        if !schema_exists(conn, schema)? {
            return Err(Error::SchemaNotFound {
                schema: schema.to_string(),
            });
        }
        let adopted = match RoleState::read(conn, &role, schema)? {
            RoleState::Foreign => {
                return Err(Error::RoleExists {
                    schema: schema.to_string(),
                    role: role.to_string(),
                });
            }
            RoleState::Missing => {
                conn.batch_execute(&create_role_sql(roles, &role, schema))
                    .map_err(|e| Error::db(schema.as_str(), e))?;
                Adopted::Created
            }
            RoleState::Ours => {
                conn.batch_execute(&membership_sql(roles, &role))
                    .map_err(|e| Error::db(schema.as_str(), e))?;
                Adopted::Existing
            }
        };
        let mut sql = format!(
            "{}; {}",
            ownership_sql(roles, schema),
            grant_sql(roles, &role, schema)
        );
        for grant in shared_sql(roles, config.shared_schema(), schema, &role, Phase::Adopt) {
            sql.push_str("; ");
            sql.push_str(&grant);
        }
        conn.batch_execute(&sql)
            .map_err(|e| Error::db(schema.as_str(), e))?;
        Ok(adopted)
    })
    .map_err(|ended| match ended {
        transaction::Ended::BeginFailed(e) => {
            let _ = conn.batch_execute("ROLLBACK");
            Error::db(schema.as_str(), e)
        }
        transaction::Ended::Failed { error, .. } => error,
        transaction::Ended::CommitFailed(e) => Error::db(schema.as_str(), e),
    })
}

/// The memberships an existing tenant role must have (granting one it has is a no-op).
fn membership_sql(roles: &TenantRoles, role: &RoleName) -> String {
    let mut members = vec![roles.ddl_role().quoted()];
    members.extend(roles.login_roles().iter().map(RoleName::quoted));
    format!("GRANT {} TO {}", role.quoted(), members.join(", "))
}

/// Makes the DDL role the owner of `schema` and of every object in it that someone else owns
/// (sequences owned by a column follow their table; indexes follow theirs).
fn ownership_sql(roles: &TenantRoles, schema: &SchemaName) -> String {
    let ddl = roles.ddl_role();
    let s = quote_literal(&schema.quoted());
    let d = ddl.literal();
    // `regrole` reads an identifier (an unquoted one folds to lower case): the quoted name.
    let d_ident = crate::name::text_literal(&ddl.quoted());
    let body = format!(
        "DECLARE o record; ns oid := {s}::pg_catalog.regnamespace::oid; ddl oid := {d_ident}::pg_catalog.regrole::oid; BEGIN \
         FOR o IN SELECT c.oid::pg_catalog.regclass::text AS n, c.relkind FROM pg_catalog.pg_class c \
           WHERE c.relnamespace OPERATOR(pg_catalog.=) ns AND c.relowner OPERATOR(pg_catalog.<>) ddl \
           AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') \
           AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass \
             AND d.objid OPERATOR(pg_catalog.=) c.oid AND c.relkind OPERATOR(pg_catalog.=) 'S' AND d.deptype IN ('a', 'i')) LOOP \
           EXECUTE pg_catalog.format('ALTER %s %s OWNER TO %I', CASE o.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' \
             WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, o.n, {d}::pg_catalog.text); \
         END LOOP; \
         FOR o IN SELECT p.oid::pg_catalog.regprocedure::text AS n, p.prokind FROM pg_catalog.pg_proc p \
           WHERE p.pronamespace OPERATOR(pg_catalog.=) ns AND p.proowner OPERATOR(pg_catalog.<>) ddl LOOP \
           EXECUTE pg_catalog.format('ALTER %s %s OWNER TO %I', CASE o.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' \
             ELSE 'FUNCTION' END, o.n, {d}::pg_catalog.text); \
         END LOOP; \
         FOR o IN SELECT t.oid::pg_catalog.regtype::text AS n, t.typtype FROM pg_catalog.pg_type t \
           WHERE t.typnamespace OPERATOR(pg_catalog.=) ns AND t.typowner OPERATOR(pg_catalog.<>) ddl \
           AND t.typtype IN ('e', 'd', 'r', 'm', 'c') AND t.typelem OPERATOR(pg_catalog.=) 0 \
           AND (t.typrelid OPERATOR(pg_catalog.=) 0 OR EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) t.typrelid \
             AND c.relkind OPERATOR(pg_catalog.=) 'c')) LOOP \
           EXECUTE pg_catalog.format('ALTER %s %s OWNER TO %I', CASE o.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, o.n, {d}::pg_catalog.text); \
         END LOOP; END"
    );
    let mut tag = String::from("pgschemas");
    while body.contains(&format!("${tag}$")) {
        tag.push('_');
    }
    format!(
        "ALTER SCHEMA {} OWNER TO {}; DO ${tag}${body}${tag}$",
        schema.quoted(),
        ddl.quoted()
    )
}
