//! What a tenant role may do in the shared schema: a policy the application sets, applied
//! when a tenant's role is created or adopted; and row-level security on a shared table with a
//! tenant column.

use std::fmt;
use std::sync::Arc;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use super::{RoleName, RoleTemplate};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::name::{SchemaName, quote_literal};

/// When a shared-schema policy is asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// A tenant is provisioned (migrated or cloned), in its transaction.
    Provision,
    /// An existing tenant is given its role ([`adopt_roles`](super::adopt_roles)).
    Adopt,
}

/// What a [`SharedPolicy`] is told.
#[derive(Debug)]
#[non_exhaustive]
pub struct PolicyContext<'a> {
    /// The tenant's schema.
    pub tenant: &'a SchemaName,
    /// The tenant's role.
    pub role: &'a RoleName,
    /// Why the policy is asked.
    pub phase: Phase,
    /// The role the grants are made as (the DDL role when provisioning).
    pub executing: &'a str,
    /// The shared schema.
    pub shared: &'a SchemaName,
}

/// A privilege on a shared table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Privilege {
    /// `SELECT`.
    Select,
    /// `INSERT`.
    Insert,
    /// `UPDATE`.
    Update,
    /// `DELETE`.
    Delete,
}

impl Privilege {
    fn sql(self) -> &'static str {
        match self {
            Self::Select => "SELECT",
            Self::Insert => "INSERT",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
        }
    }
}

/// What a tenant role is granted in the shared schema: nothing, `SELECT` on every table, or
/// privileges on named tables. Names are validated; the crate writes the statements.
///
/// ```
/// use pgschemas_diesel::roles::{Privilege, SharedGrants};
///
/// let grants = SharedGrants::none()
///     .table("plans", &[Privilege::Select])?
///     .table("audit", &[Privilege::Insert])?;
/// assert!(SharedGrants::none().table("Bad Name", &[Privilege::Select]).is_err());
/// # let _ = (grants, SharedGrants::read_all());
/// # Ok::<(), pgschemas_diesel::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SharedGrants {
    read_all: bool,
    tables: Vec<(SchemaName, Vec<Privilege>)>,
}

impl SharedGrants {
    /// Nothing in the shared schema (beyond what `PUBLIC` has).
    pub fn none() -> Self {
        Self::default()
    }

    /// `USAGE` on the shared schema and `SELECT` on every table in it at the time (tables the
    /// shared migrations add later need the policy applied again: adopt roles again).
    pub fn read_all() -> Self {
        Self {
            read_all: true,
            tables: Vec::new(),
        }
    }

    /// Adds `privileges` on the shared table `table` (a lower-case name, validated as schema
    /// names are).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSchemaName`] for a name that is not acceptable.
    pub fn table(mut self, table: &str, privileges: &[Privilege]) -> Result<Self> {
        let name = SchemaName::new(table)?;
        self.tables.push((name, privileges.to_vec()));
        Ok(self)
    }

    /// The statements granting these to `role` in `shared`.
    fn sql(&self, shared: &SchemaName, role: &RoleName) -> Vec<String> {
        let (s, r) = (shared.quoted(), role.quoted());
        let mut out = Vec::new();
        if self.read_all || !self.tables.is_empty() {
            out.push(format!("GRANT USAGE ON SCHEMA {s} TO {r}"));
        }
        if self.read_all {
            out.push(format!("GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {r}"));
        }
        for (table, privileges) in &self.tables {
            if privileges.is_empty() {
                continue;
            }
            let list = privileges
                .iter()
                .map(|p| p.sql())
                .collect::<Vec<_>>()
                .join(", ");
            out.push(format!("GRANT {list} ON {s}.{} TO {r}", table.quoted()));
        }
        out
    }
}

/// The function deciding a tenant role's shared-schema grants.
type PolicyFn = dyn Fn(&PolicyContext<'_>) -> SharedGrants + Send + Sync;

/// A shared-schema policy ([`TenantRoles::shared_policy`](super::TenantRoles::shared_policy)):
/// compared by identity.
#[derive(Clone, Default)]
pub struct SharedPolicy(Option<Arc<PolicyFn>>);

impl SharedPolicy {
    /// A policy calling `f`.
    pub fn new<F>(f: F) -> Self
    where
        F: Fn(&PolicyContext<'_>) -> SharedGrants + Send + Sync + 'static,
    {
        Self(Some(Arc::new(f)))
    }

    /// The ready policy: `SELECT` on every shared table ([`SharedGrants::read_all`]).
    pub fn read_only() -> Self {
        Self::new(|_| SharedGrants::read_all())
    }

    /// The statements the policy asks for `ctx`.
    pub(crate) fn sql(&self, ctx: &PolicyContext<'_>) -> Vec<String> {
        match &self.0 {
            Some(f) => f(ctx).sql(ctx.shared, ctx.role),
            None => Vec::new(),
        }
    }
}

impl PartialEq for SharedPolicy {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for SharedPolicy {}

impl fmt::Debug for SharedPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "SharedPolicy(..)"
        } else {
            "SharedPolicy(none)"
        })
    }
}

/// The SQL condition that the current role is a tenant role and the value of column `column`
/// is its schema's name; false for every other role.
fn own_rows(template: &RoleTemplate, column: &SchemaName) -> String {
    let (p, s) = (template.prefix(), template.suffix());
    let (lp, ls) = (p.len(), s.len());
    format!(
        "CASE WHEN pg_catalog.starts_with(current_user::pg_catalog.text, {pl}) \
         AND pg_catalog.right(current_user::pg_catalog.text, {ls}) OPERATOR(pg_catalog.=) {sl} \
         AND pg_catalog.length(current_user::pg_catalog.text) OPERATOR(pg_catalog.>) {both} \
         THEN {c}::pg_catalog.text OPERATOR(pg_catalog.=) pg_catalog.substr(current_user::pg_catalog.text, {start}, \
           pg_catalog.length(current_user::pg_catalog.text) OPERATOR(pg_catalog.-) {both}) \
         ELSE false END",
        pl = quote_literal(p),
        sl = quote_literal(s),
        both = lp + ls,
        start = lp + 1,
        c = column.quoted(),
    )
}

/// Puts row-level security on the shared table `table` whose column `tenant_column` holds a
/// tenant's schema name: a tenant role sees, inserts and updates only rows of its own schema;
/// every other role but the table's owner (the login role on the neutral path included) sees
/// none. The owner, the DDL role, is not subject to it (read across tenants as that role).
/// Running it again replaces the policy. Grant the tenant roles the table itself with the
/// [`SharedPolicy`].
///
/// # Errors
///
/// [`Error::Config`] when tenant roles are off; [`Error::InvalidSchemaName`] for a table or
/// column name that is not acceptable; [`Error::Database`] (for example when `conn`'s role
/// does not own the table).
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database().sql("create table invoices (tenant text not null, total int)");
/// # let fixture = db.roles();
/// let config = pgschemas_diesel::Config::builder().tenant_roles(fixture.tenant_roles()).build()?;
/// pgschemas_diesel::roles::shared_row_security(&mut db.connect(), &config, "invoices", "tenant")?;
/// # drop(fixture);
/// # Ok::<(), pgschemas_diesel::Error>(())
/// ```
pub fn shared_row_security(
    conn: &mut PgConnection,
    config: &Config,
    table: &str,
    tenant_column: &str,
) -> Result<()> {
    let Some(roles) = config.tenant_roles() else {
        return Err(Error::Config(
            "row-level security keyed to tenant roles needs Config::builder().tenant_roles(..)"
                .to_owned(),
        ));
    };
    let (table, column) = (SchemaName::new(table)?, SchemaName::new(tenant_column)?);
    let qualified = format!("{}.{}", config.shared_schema().quoted(), table.quoted());
    let cond = own_rows(roles.role_template(), &column);
    let sql = format!(
        "ALTER TABLE {qualified} ENABLE ROW LEVEL SECURITY; \
         DROP POLICY IF EXISTS pgschemas_tenant ON {qualified}; \
         CREATE POLICY pgschemas_tenant ON {qualified} USING ({cond}) WITH CHECK ({cond})"
    );
    conn.transaction(|conn| conn.batch_execute(&sql))
        .map_err(|e| Error::db(table.as_str(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants() -> Result<()> {
        let shared = SchemaName::new("public")?;
        let role = RoleName::new("t-a")?;
        let g = SharedGrants::none().table("plans", &[Privilege::Select, Privilege::Insert])?;
        assert_eq!(
            g.sql(&shared, &role),
            [
                "GRANT USAGE ON SCHEMA \"public\" TO \"t-a\"",
                "GRANT SELECT, INSERT ON \"public\".\"plans\" TO \"t-a\""
            ]
        );
        assert!(SharedGrants::none().sql(&shared, &role).is_empty());
        assert_eq!(SharedGrants::read_all().sql(&shared, &role).len(), 2);
        assert_eq!(SharedPolicy::default(), SharedPolicy::default());
        let p = SharedPolicy::read_only();
        assert_eq!(p.clone(), p);
        assert_ne!(p, SharedPolicy::read_only());
        Ok(())
    }
}
