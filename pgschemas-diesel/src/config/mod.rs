//! Configuration: the shared schema, extra search paths, static tenants, the clone reference,
//! how many tenants a pooled connection serves.
//!
//! [`Config`] is the built, immutable configuration; [`ConfigBuilder`] (in `builder`) checks
//! every rule when it builds one; [`StaticTenant`] (in `static_tenant`) describes a schema
//! fixed in configuration and checks its domains and header alias.

mod builder;
mod static_tenant;

use std::num::NonZeroUsize;
use std::sync::{Arc, OnceLock};

use crate::error::ConfiguredSchema;
use crate::error::{Error, Result};
use crate::name::SchemaName;
use crate::path::SearchPath;
use crate::roles::{PathRole, TenantRoles};

pub use builder::ConfigBuilder;
pub use static_tenant::{StaticTenant, StaticTenantBuilder};

#[derive(Debug)]
struct Inner {
    shared: SchemaName,
    extra: Vec<SchemaName>,
    statics: Vec<StaticTenant>,
    clone_reference: Option<SchemaName>,
    citus: bool,
    max_tenants_per_connection: Option<NonZeroUsize>,
    tenant_roles: Option<TenantRoles>,
    verify_prepared_statements: bool,
    neutral: SearchPath,
}

/// The tenancy configuration: cheap to clone, immutable once built.
///
/// ```
/// use pgschemas_diesel::{Config, StaticTenant};
///
/// let config = Config::builder()
///     .extra_search_path("extensions")
///     .static_tenant(StaticTenant::builder("www").domain("localhost"))
///     .clone_reference("sample")
///     .build()?;
/// assert_eq!(config.shared_schema().as_str(), "public");
/// assert_eq!(config.neutral_path().as_sql_value(), r#""public", "extensions", pg_temp"#);
/// # Ok::<(), pgschemas_diesel::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Config(Arc<Inner>);

static GLOBAL: OnceLock<Config> = OnceLock::new();

impl Default for Config {
    /// The shared schema `public`, no extra search paths, no static tenants, no clone reference.
    fn default() -> Self {
        Self::builder()
            .build()
            .unwrap_or_else(|_| unreachable!("the default configuration is valid"))
    }
}

impl Config {
    /// Starts a configuration with the defaults (shared schema `public`).
    ///
    /// ```
    /// let config = pgschemas_diesel::Config::builder().build()?;
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::new()
    }

    /// Makes this the process-wide configuration used by [`Schema::activate`](crate::Schema::activate) and the
    /// [`SchemaConnection`](crate::SchemaConnection) methods on a plain connection.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when a different configuration was installed already.
    ///
    /// ```
    /// let config = pgschemas_diesel::Config::builder().build()?;
    /// config.clone().install()?;
    /// config.install()?; // the same configuration again is fine
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn install(self) -> Result<&'static Config> {
        let installed = GLOBAL.get_or_init(|| self.clone());
        if Arc::ptr_eq(&installed.0, &self.0) || installed.same_as(&self) {
            Ok(installed)
        } else {
            Err(Error::Config(
                "a different configuration was installed already; install it once, at start-up"
                    .to_owned(),
            ))
        }
    }

    /// The installed configuration, or the default one when none was installed.
    ///
    /// ```
    /// assert_eq!(pgschemas_diesel::Config::global().shared_schema().as_str(), "public");
    /// ```
    pub fn global() -> &'static Config {
        static DEFAULT: OnceLock<Config> = OnceLock::new();
        GLOBAL
            .get()
            .unwrap_or_else(|| DEFAULT.get_or_init(Config::default))
    }

    fn same_as(&self, other: &Config) -> bool {
        let (a, b) = (&self.0, &other.0);
        a.shared == b.shared
            && a.extra == b.extra
            && a.statics == b.statics
            && a.clone_reference == b.clone_reference
            && a.citus == b.citus
            && a.max_tenants_per_connection == b.max_tenants_per_connection
            && a.tenant_roles == b.tenant_roles
            && a.verify_prepared_statements == b.verify_prepared_statements
    }

    /// The shared schema (default `public`): shared tables live there.
    pub fn shared_schema(&self) -> &SchemaName {
        &self.0.shared
    }

    /// Schemas appended to every search path, after the shared schema.
    pub fn extra_search_paths(&self) -> &[SchemaName] {
        &self.0.extra
    }

    /// The static tenants, in the order they were declared.
    pub fn static_tenants(&self) -> &[StaticTenant] {
        &self.0.statics
    }

    /// The static tenant named `name`, if any.
    ///
    /// ```
    /// use pgschemas_diesel::{Config, StaticTenant};
    /// let config = Config::builder().static_tenant(StaticTenant::builder("www")).build()?;
    /// assert!(config.static_tenant("www").is_some());
    /// assert!(config.static_tenant("blog").is_none());
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn static_tenant(&self, name: &str) -> Option<&StaticTenant> {
        self.0.statics.iter().find(|t| t.name().as_str() == name)
    }

    /// The reference schema that new tenants may be cloned from, if configured.
    pub fn clone_reference(&self) -> Option<&SchemaName> {
        self.0.clone_reference.as_ref()
    }

    /// Whether tenant schemas are Citus distributed schemas (see
    /// [`ConfigBuilder::citus`]).
    ///
    /// ```
    /// let config = pgschemas_diesel::Config::builder().citus(true).build()?;
    /// assert!(config.citus());
    /// assert!(!pgschemas_diesel::Config::default().citus());
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn citus(&self) -> bool {
        self.0.citus
    }

    /// How many distinct tenant schemas a pooled connection serves before the pool closes it
    /// (see [`ConfigBuilder::max_tenants_per_connection`]); `None`, the default, for no
    /// limit.
    ///
    /// ```
    /// use pgschemas_diesel::Config;
    ///
    /// let config = Config::builder().max_tenants_per_connection(1000).build()?;
    /// assert_eq!(config.max_tenants_per_connection(), Some(1000));
    /// assert_eq!(Config::default().max_tenants_per_connection(), None);
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn max_tenants_per_connection(&self) -> Option<usize> {
        self.0.max_tenants_per_connection.map(NonZeroUsize::get)
    }

    /// Whether every pool checkout proves that the session holds no statement prepared with
    /// SQL but the crate's own (see [`ConfigBuilder::verify_prepared_statements`]).
    pub fn verify_prepared_statements(&self) -> bool {
        self.0.verify_prepared_statements
    }

    /// The per-tenant roles mode, when on (see [`ConfigBuilder::tenant_roles`]).
    ///
    /// ```
    /// assert!(pgschemas_diesel::Config::default().tenant_roles().is_none());
    /// ```
    pub fn tenant_roles(&self) -> Option<&TenantRoles> {
        self.0.tenant_roles.as_ref()
    }

    /// What a path for `schema` runs as: with tenant roles on, the tenant's role for a tenant
    /// schema (not the shared schema, an extra search path or the clone reference, which run
    /// as the login role).
    pub(crate) fn path_role(&self, schema: &SchemaName) -> Result<PathRole> {
        let Some(roles) = &self.0.tenant_roles else {
            return Ok(PathRole::Unmanaged);
        };
        let inner = &self.0;
        if *schema == inner.shared
            || inner.extra.contains(schema)
            || inner.clone_reference.as_ref() == Some(schema)
        {
            return Ok(PathRole::Login);
        }
        Ok(PathRole::Named(roles.role_of(schema)?))
    }

    /// `schema`'s path as migrations, provisioning and drops use it: run as the DDL role when
    /// tenant roles are on.
    pub(crate) fn ddl_path(&self, schema: &SchemaName) -> Result<SearchPath> {
        let path = self.search_path(schema)?;
        Ok(match &self.0.tenant_roles {
            Some(roles) => path.with_role(PathRole::Named(roles.ddl_role().clone())),
            None => path,
        })
    }

    /// The neutral search path, used when no tenant is active: `<shared>, <extras...>`.
    pub fn neutral_path(&self) -> &SearchPath {
        &self.0.neutral
    }

    /// Validates `name` as the schema of a new dynamic tenant: a valid name that does not
    /// clash (case-insensitively) with the shared schema, a static tenant, the clone
    /// reference or an extra search path.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSchemaName`] or [`Error::NameClash`].
    ///
    /// ```
    /// use pgschemas_diesel::{Config, Error, StaticTenant};
    ///
    /// let config = Config::builder().static_tenant(StaticTenant::builder("www")).build()?;
    /// assert!(config.check_tenant_name("customer1").is_ok());
    /// assert!(matches!(config.check_tenant_name("www"), Err(Error::NameClash { .. })));
    /// assert!(matches!(config.check_tenant_name("public"), Err(Error::NameClash { .. })));
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn check_tenant_name(&self, name: &str) -> Result<SchemaName> {
        if let Some((with, other)) = self.reserved_as(name) {
            return Err(Error::NameClash {
                schema: name.to_owned(),
                with,
                other: other.to_string(),
            });
        }
        SchemaName::new(name)
    }

    /// What `name` clashes with among the configuration's reserved names, if anything.
    fn reserved_as(&self, name: &str) -> Option<(ConfiguredSchema, &SchemaName)> {
        let inner = &self.0;
        if inner.shared.eq_ignore_case(name) {
            return Some((ConfiguredSchema::SharedSchema, &inner.shared));
        }
        if let Some(t) = inner.statics.iter().find(|t| t.name().eq_ignore_case(name)) {
            return Some((ConfiguredSchema::StaticTenant, t.name()));
        }
        if let Some(r) = inner
            .clone_reference
            .as_ref()
            .filter(|r| r.eq_ignore_case(name))
        {
            return Some((ConfiguredSchema::CloneReference, r));
        }
        if let Some(e) = inner.extra.iter().find(|e| e.eq_ignore_case(name)) {
            return Some((ConfiguredSchema::ExtraSearchPath, e));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = Config::default();
        assert_eq!(c.shared_schema().as_str(), "public");
        assert!(c.extra_search_paths().is_empty());
        assert!(c.static_tenants().is_empty());
        assert!(c.clone_reference().is_none());
        assert_eq!(c.neutral_path().as_sql_value(), "\"public\", pg_temp");
    }

    #[test]
    fn tenant_name_checks_are_case_insensitive() -> Result<()> {
        let c = Config::builder()
            .static_tenant(StaticTenant::builder("www"))
            .clone_reference("sample")
            .extra_search_path("ext")
            .build()?;
        for (name, with) in [
            ("www", "static tenant"),
            ("WWW", "static tenant"),
            ("Public", "shared schema"),
            ("SAMPLE", "clone reference"),
            ("ext", "extra search path"),
        ] {
            let m = c.check_tenant_name(name).unwrap_err().to_string();
            assert!(m.contains(with), "{name}: {m}");
        }
        assert!(matches!(
            c.check_tenant_name("Tenant1"),
            Err(Error::InvalidSchemaName { .. })
        ));
        assert_eq!(c.check_tenant_name("tenant1")?.as_str(), "tenant1");
        Ok(())
    }

    #[test]
    fn search_path_order_and_dedup() -> Result<()> {
        let c = Config::builder()
            .extra_search_path("ext1")
            .extra_search_path("ext2")
            .build()?;
        assert_eq!(
            c.search_path(&"t1")?.as_sql_value(),
            r#""t1", "public", "ext1", "ext2", pg_temp"#
        );
        assert_eq!(
            c.search_path(&"public")?.as_sql_value(),
            r#""public", "ext1", "ext2", pg_temp"#
        );
        assert!(c.search_path(&"Bad").is_err());
        Ok(())
    }
}
