//! Per-tenant database roles: the isolation mode in which PostgreSQL itself refuses every
//! table outside the tenant a connection serves.
//!
//! With [`ConfigBuilder::tenant_roles`](crate::ConfigBuilder::tenant_roles) on, every tenant
//! schema has a role of its own, named by a [`RoleTemplate`]; a checkout sets that role in the
//! statement that sets the path (`SET LOCAL ROLE` in the transaction form), so a
//! schema-qualified name (`select * from other_tenant.orders`) or a path changed by the
//! caller's SQL meets `permission denied`, not another tenant's rows. A DDL role owns every
//! tenant schema and object and runs migrations, provisioning and drops; the login role(s)
//! the application connects as are members of every tenant role, `NOINHERIT`, and hold only
//! the shared schema's privileges themselves. `docs/isolation-modes.md` is the guide's page.

mod adopt;
mod check;
pub(crate) mod lifecycle;
mod policy;
mod template;

use std::fmt;

pub use adopt::{Adopted, adopt_roles};
pub use check::LoginProblem;
pub(crate) use check::{Acting, LoginFacts};
pub use policy::{
    Phase, PolicyContext, Privilege, SharedGrants, SharedPolicy, shared_row_security,
};
pub use template::RoleTemplate;

use crate::error::{Error, Result};
use crate::name::{SchemaName, quote_ident};

/// PostgreSQL's limit on a role name, in bytes (`NAMEDATALEN - 1`).
pub const MAX_ROLE_NAME_LEN: usize = 63;

/// A role name the crate sends to the server: 1 to 63 bytes, no control character, not
/// starting with `pg_` (PostgreSQL reserves those). Always quoted where it reaches SQL.
///
/// ```
/// use pgschemas_diesel::roles::RoleName;
///
/// let role = RoleName::new("app_ddl")?;
/// assert_eq!(role.as_str(), "app_ddl");
/// assert!(RoleName::new("pg_monitor").is_err());
/// assert!(RoleName::new("").is_err());
/// # Ok::<(), pgschemas_diesel::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoleName(Box<str>);

impl RoleName {
    /// Validates `name` as a role name.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the role and what is wrong with it.
    pub fn new(name: impl AsRef<str>) -> Result<Self> {
        let name = name.as_ref();
        let problem = if name.is_empty() {
            Some("is empty")
        } else if name.len() > MAX_ROLE_NAME_LEN {
            Some("is longer than 63 bytes")
        } else if name.chars().any(char::is_control) {
            Some("holds a control character")
        } else if name.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("pg_")) {
            Some("starts with pg_, which PostgreSQL reserves")
        } else {
            None
        };
        match problem {
            Some(p) => Err(Error::Config(format!("role name {name:?} {p}"))),
            None => Ok(Self(name.into())),
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as a quoted identifier.
    pub(crate) fn quoted(&self) -> String {
        quote_ident(&self.0)
    }

    /// The name as a quoted SQL string literal (what `set_config('role', ..)` and the
    /// privilege functions read).
    pub(crate) fn literal(&self) -> String {
        crate::name::text_literal(&self.0)
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoleName({:?})", &*self.0)
    }
}

/// The per-tenant roles mode: how tenant roles are named, the DDL role, the login roles.
///
/// ```
/// use pgschemas_diesel::Config;
/// use pgschemas_diesel::roles::TenantRoles;
///
/// let roles = TenantRoles::new("app_ddl")?
///     .template("app-{schema}")?
///     .login_role("app")?;
/// let config = Config::builder().tenant_roles(roles).build()?;
/// let roles = config.tenant_roles().expect("on");
/// assert_eq!(roles.role_of(&"customer1".parse()?)?.as_str(), "app-customer1");
/// assert_eq!(roles.ddl_role().as_str(), "app_ddl");
/// # Ok::<(), pgschemas_diesel::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantRoles {
    template: RoleTemplate,
    ddl: RoleName,
    logins: Vec<RoleName>,
    policy: SharedPolicy,
}

impl TenantRoles {
    /// Roles named `tenant-{schema}` (see [`RoleTemplate`]), owned and administered by the
    /// DDL role `ddl_role`, with no login role yet (add one with
    /// [`login_role`](Self::login_role)).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an invalid role name.
    pub fn new(ddl_role: impl AsRef<str>) -> Result<Self> {
        Ok(Self {
            template: RoleTemplate::default(),
            ddl: RoleName::new(ddl_role)?,
            logins: Vec::new(),
            policy: SharedPolicy::default(),
        })
    }

    /// Names tenant roles by `template` (see [`RoleTemplate::new`]). Roles are shared by every
    /// database of the server: give each database its own prefix.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an invalid template.
    pub fn template(mut self, template: &str) -> Result<Self> {
        self.template = RoleTemplate::new(template)?;
        Ok(self)
    }

    /// Adds a login role the application connects as: provisioning makes it a member of
    /// every new tenant role.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an invalid role name, or the DDL role's name.
    pub fn login_role(mut self, login: impl AsRef<str>) -> Result<Self> {
        let login = RoleName::new(login)?;
        if login == self.ddl {
            return Err(Error::Config(format!(
                "role {login:?} cannot be both the DDL role and a login role: the application's login must not own the tenants' objects"
            )));
        }
        if !self.logins.contains(&login) {
            self.logins.push(login);
        }
        Ok(self)
    }

    /// Decides what each tenant role may do in the shared schema, when its role is created
    /// (in the provisioning transaction) or adopted: [`SharedPolicy::read_only`], or your own
    /// function of the [`PolicyContext`] (default: nothing beyond what `PUBLIC` has).
    ///
    /// ```
    /// use pgschemas_diesel::roles::{Privilege, SharedGrants, SharedPolicy, TenantRoles};
    ///
    /// let roles = TenantRoles::new("app_ddl")?.shared_policy(SharedPolicy::new(|ctx| {
    ///     let grants = SharedGrants::none().table("plans", &[Privilege::Select]);
    ///     grants.unwrap_or_default()
    /// }));
    /// # let _ = roles;
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    #[must_use]
    pub fn shared_policy(mut self, policy: SharedPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The shared-schema policy.
    pub fn policy(&self) -> &SharedPolicy {
        &self.policy
    }

    /// The template tenant roles are named by.
    pub fn role_template(&self) -> &RoleTemplate {
        &self.template
    }

    /// The DDL role: owns tenant schemas and their objects, runs migrations, provisioning
    /// and drops.
    pub fn ddl_role(&self) -> &RoleName {
        &self.ddl
    }

    /// The login roles made members of every tenant role.
    pub fn login_roles(&self) -> &[RoleName] {
        &self.logins
    }

    /// Refuses a DDL or login role named as the template names a tenant's role: a tenant of
    /// that schema would be given it.
    pub(crate) fn check_names(&self) -> Result<()> {
        for role in std::iter::once(&self.ddl).chain(&self.logins) {
            if let Some(schema) = self.template.schema_of(role.as_str()) {
                return Err(Error::Config(format!(
                    "role {role:?} is named as the template {} names the role of a tenant {schema:?}; rename the role or change the template",
                    self.template
                )));
            }
        }
        Ok(())
    }

    /// The role of tenant schema `schema`.
    ///
    /// # Errors
    ///
    /// [`Error::RoleName`] when the name would be longer than 63 bytes.
    pub fn role_of(&self, schema: &SchemaName) -> Result<RoleName> {
        self.template.render(schema)
    }
}

/// The role a path runs as.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub(crate) enum PathRole {
    /// Tenant roles are off: the crate leaves the role to the login (every checkout still
    /// proves no other role is in effect).
    Unmanaged,
    /// Tenant roles are on and no tenant is active: the login role itself.
    Login,
    /// This role.
    Named(RoleName),
}

impl PathRole {
    /// The role set with the path, if any.
    pub(crate) fn named(&self) -> Option<&RoleName> {
        match self {
            Self::Named(r) => Some(r),
            Self::Unmanaged | Self::Login => None,
        }
    }

    /// The call that makes this role current (for the transaction only when `local`), or
    /// `None` when the role is left as it is.
    pub(crate) fn set_call(&self, local: bool) -> Option<String> {
        let value = match self {
            Self::Unmanaged => return None,
            Self::Login => "'none'".to_owned(),
            Self::Named(r) => r.literal(),
        };
        Some(format!("pg_catalog.set_config('role', {value}, {local})"))
    }

    /// The condition that this role is in effect now.
    pub(crate) fn in_effect(&self) -> String {
        match self {
            Self::Unmanaged | Self::Login => {
                "current_user OPERATOR(pg_catalog.=) session_user".to_owned()
            }
            Self::Named(r) => format!(
                "current_user OPERATOR(pg_catalog.=) {}::pg_catalog.name",
                r.literal()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names() {
        assert!(RoleName::new("App").is_ok());
        assert!(RoleName::new("a\u{0}b").is_err());
        assert!(RoleName::new("PG_x").is_err());
        assert!(RoleName::new("x".repeat(64)).is_err());
        assert_eq!(
            RoleName::new("a\"b").map(|r| r.quoted()).ok().as_deref(),
            Some("\"a\"\"b\"")
        );
    }

    #[test]
    fn logins_are_distinct_from_the_ddl_role() -> Result<()> {
        assert!(TenantRoles::new("ddl")?.login_role("ddl").is_err());
        let r = TenantRoles::new("ddl")?
            .login_role("app")?
            .login_role("app")?;
        assert_eq!(r.login_roles().len(), 1);
        Ok(())
    }

    #[test]
    fn the_ddl_and_login_roles_are_never_named_like_a_tenant_role() -> Result<()> {
        let roles = TenantRoles::new("tenant-admin")?;
        assert!(roles.check_names().is_err());
        let roles = TenantRoles::new("ddl")?
            .template("app-{schema}")?
            .login_role("app-web")?;
        assert!(roles.check_names().is_err());
        let roles = TenantRoles::new("app_ddl")?
            .template("app-{schema}")?
            .login_role("app")?;
        assert!(roles.check_names().is_ok());
        Ok(())
    }

    #[test]
    fn calls() -> Result<()> {
        let r = PathRole::Named(RoleName::new("t-a")?);
        assert_eq!(
            r.set_call(true).as_deref(),
            Some("pg_catalog.set_config('role', $pgschemas$t-a$pgschemas$, true)")
        );
        assert_eq!(PathRole::Unmanaged.set_call(false), None);
        assert_eq!(
            PathRole::Login.set_call(false).as_deref(),
            Some("pg_catalog.set_config('role', 'none', false)")
        );
        Ok(())
    }
}
