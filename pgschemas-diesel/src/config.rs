//! Configuration: the shared schema, extra search paths, static tenants, the clone reference.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use crate::error::{Error, Result};
use crate::name::SchemaName;
use crate::path::SearchPath;
use crate::schema::Schema;

/// A static tenant: a schema fixed in configuration (such as `www` or `blog`), routed by its
/// own domains, fallback domains or header alias.
///
/// Built with [`StaticTenant::builder`] and validated by [`ConfigBuilder::build`].
///
/// ```
/// use pgschemas_diesel::{Config, StaticTenant};
///
/// let config = Config::builder()
///     .static_tenant(StaticTenant::builder("www").domain("mydomain.com").fallback_domain("tenants.mydomain.com"))
///     .build()?;
/// let www = config.static_tenant("www").unwrap();
/// assert_eq!(www.domains(), ["mydomain.com"]);
/// # Ok::<(), pgschemas_diesel::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticTenant {
    name: SchemaName,
    domains: Vec<String>,
    fallback_domains: Vec<String>,
    header: Option<String>,
    migrate: bool,
}

impl StaticTenant {
    /// Starts describing a static tenant whose schema is `name`.
    ///
    /// ```
    /// let blog = pgschemas_diesel::StaticTenant::builder("blog").domain("blog.mydomain.com");
    /// ```
    pub fn builder(name: impl Into<String>) -> StaticTenantBuilder {
        StaticTenantBuilder {
            name: name.into(),
            domains: Vec::new(),
            fallback_domains: Vec::new(),
            header: None,
            migrate: true,
        }
    }

    /// The tenant's schema.
    pub fn name(&self) -> &SchemaName {
        &self.name
    }

    /// Hosts that route to this tenant exactly (lower case, no port).
    pub fn domains(&self) -> &[String] {
        &self.domains
    }

    /// Hosts that route to this tenant only when no dynamic tenant matched.
    pub fn fallback_domains(&self) -> &[String] {
        &self.fallback_domains
    }

    /// The alias that selects this tenant in header routing, besides its name.
    pub fn header(&self) -> Option<&str> {
        self.header.as_deref()
    }

    /// Whether the tenant migrations run in this schema (default `true`).
    pub fn migrate(&self) -> bool {
        self.migrate
    }
}

impl Schema for StaticTenant {
    fn schema_name(&self) -> &str {
        self.name.as_str()
    }
}

/// Describes a [`StaticTenant`]; passed to [`ConfigBuilder::static_tenant`].
#[derive(Debug, Clone)]
#[must_use]
pub struct StaticTenantBuilder {
    name: String,
    domains: Vec<String>,
    fallback_domains: Vec<String>,
    header: Option<String>,
    migrate: bool,
}

impl StaticTenantBuilder {
    /// Adds a host that routes to this tenant (compared case-insensitively, without port).
    ///
    /// ```
    /// let www = pgschemas_diesel::StaticTenant::builder("www").domain("localhost").domain("mydomain.com");
    /// ```
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domains.push(domain.into());
        self
    }

    /// Adds a fallback host: used only when no dynamic tenant matches the request.
    ///
    /// ```
    /// let www = pgschemas_diesel::StaticTenant::builder("www").fallback_domain("tenants.localhost");
    /// ```
    pub fn fallback_domain(mut self, domain: impl Into<String>) -> Self {
        self.fallback_domains.push(domain.into());
        self
    }

    /// Sets the alias that selects this tenant in header routing.
    ///
    /// ```
    /// let www = pgschemas_diesel::StaticTenant::builder("www").header("main");
    /// ```
    pub fn header(mut self, alias: impl Into<String>) -> Self {
        self.header = Some(alias.into());
        self
    }

    /// Whether the tenant migrations run in this schema (default `true`).
    ///
    /// ```
    /// let blog = pgschemas_diesel::StaticTenant::builder("blog").migrate(false);
    /// ```
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }
}

#[derive(Debug)]
struct Inner {
    shared: SchemaName,
    extra: Vec<SchemaName>,
    statics: Vec<StaticTenant>,
    clone_reference: Option<SchemaName>,
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
        ConfigBuilder {
            shared: "public".to_owned(),
            extra: Vec::new(),
            statics: Vec::new(),
            clone_reference: None,
        }
    }

    /// Makes this the process-wide configuration used by [`Schema::activate`] and the
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
        self.0.statics.iter().find(|t| t.name.as_str() == name)
    }

    /// The reference schema that new tenants may be cloned from, if configured.
    pub fn clone_reference(&self) -> Option<&SchemaName> {
        self.0.clone_reference.as_ref()
    }

    /// The search path for `schema`: `<schema>, <shared>, <extras...>`, deduplicated.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSchemaName`] when the schema's name is not valid.
    ///
    /// ```
    /// let config = pgschemas_diesel::Config::default();
    /// assert_eq!(config.search_path(&"tenant1")?.as_sql_value(), r#""tenant1", "public", pg_temp"#);
    /// assert_eq!(config.search_path(&"public")?.as_sql_value(), r#""public", pg_temp"#);
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn search_path<S: Schema + ?Sized>(&self, schema: &S) -> Result<SearchPath> {
        let name = SchemaName::new(schema.schema_name())?;
        if name == self.0.shared {
            return Ok(self.0.neutral.clone());
        }
        Ok(SearchPath::new(
            name,
            std::iter::once(&self.0.shared).chain(&self.0.extra),
        ))
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
        if let Some(with) = self.reserved_as(name) {
            return Err(Error::NameClash {
                schema: name.to_owned(),
                with,
            });
        }
        SchemaName::new(name)
    }

    /// What `name` clashes with among the configuration's reserved names, if anything.
    fn reserved_as(&self, name: &str) -> Option<String> {
        let inner = &self.0;
        if inner.shared.eq_ignore_case(name) {
            return Some(format!("the shared schema {:?}", inner.shared.as_str()));
        }
        if let Some(t) = inner.statics.iter().find(|t| t.name.eq_ignore_case(name)) {
            return Some(format!("the static tenant {:?}", t.name.as_str()));
        }
        if let Some(r) = inner
            .clone_reference
            .as_ref()
            .filter(|r| r.eq_ignore_case(name))
        {
            return Some(format!("the clone reference {:?}", r.as_str()));
        }
        if let Some(e) = inner.extra.iter().find(|e| e.eq_ignore_case(name)) {
            return Some(format!("the extra search path {:?}", e.as_str()));
        }
        None
    }
}

/// Builds a [`Config`]; everything is validated in [`ConfigBuilder::build`].
#[derive(Debug, Clone)]
#[must_use]
pub struct ConfigBuilder {
    shared: String,
    extra: Vec<String>,
    statics: Vec<StaticTenantBuilder>,
    clone_reference: Option<String>,
}

impl ConfigBuilder {
    /// Sets the shared schema (default `public`).
    ///
    /// ```
    /// let config = pgschemas_diesel::Config::builder().shared_schema("shared").build()?;
    /// assert_eq!(config.shared_schema().as_str(), "shared");
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn shared_schema(mut self, name: impl Into<String>) -> Self {
        self.shared = name.into();
        self
    }

    /// Appends a schema to every search path, after the shared schema (for extensions such
    /// as PostGIS installed in their own schema).
    ///
    /// ```
    /// let config = pgschemas_diesel::Config::builder().extra_search_path("extensions").build()?;
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn extra_search_path(mut self, name: impl Into<String>) -> Self {
        self.extra.push(name.into());
        self
    }

    /// Declares a static tenant.
    ///
    /// ```
    /// use pgschemas_diesel::{Config, StaticTenant};
    /// let config = Config::builder().static_tenant(StaticTenant::builder("blog").domain("blog.localhost")).build()?;
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn static_tenant(mut self, tenant: StaticTenantBuilder) -> Self {
        self.statics.push(tenant);
        self
    }

    /// Names the reference schema that new tenants can be cloned from.
    ///
    /// ```
    /// let config = pgschemas_diesel::Config::builder().clone_reference("sample").build()?;
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn clone_reference(mut self, name: impl Into<String>) -> Self {
        self.clone_reference = Some(name.into());
        self
    }

    /// Validates everything and builds the configuration.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidSchemaName`] for an invalid shared schema, static tenant, clone
    ///   reference or extra search path name;
    /// - [`Error::NameClash`] when a static tenant, the clone reference or an extra search path
    ///   is named like the shared schema or like one another (case-insensitively);
    /// - [`Error::Config`] for an empty or malformed domain, a domain or header alias used twice.
    ///
    /// ```
    /// use pgschemas_diesel::{Config, Error, StaticTenant};
    ///
    /// let err = Config::builder().static_tenant(StaticTenant::builder("public")).build().unwrap_err();
    /// assert!(matches!(err, Error::NameClash { .. }));
    /// assert!(err.to_string().contains("shared schema"));
    /// ```
    pub fn build(self) -> Result<Config> {
        let shared = SchemaName::new(&self.shared)?;
        let mut seen: Vec<(SchemaName, String)> = vec![(
            shared.clone(),
            format!("the shared schema {:?}", shared.as_str()),
        )];
        let mut claim = |name: &str, what: String| -> Result<SchemaName> {
            let name = SchemaName::new(name)?;
            if let Some((_, with)) = seen.iter().find(|(n, _)| n.eq_ignore_case(name.as_str())) {
                return Err(Error::NameClash {
                    schema: name.to_string(),
                    with: with.clone(),
                });
            }
            seen.push((name.clone(), what));
            Ok(name)
        };

        let mut statics = Vec::with_capacity(self.statics.len());
        let mut hosts: HashSet<String> = HashSet::new();
        let mut headers: HashSet<String> = HashSet::new();
        for t in self.statics {
            let name = claim(&t.name, format!("the static tenant {:?}", t.name))?;
            let domains = normalize_domains(&name, t.domains, &mut hosts)?;
            let fallback_domains = normalize_domains(&name, t.fallback_domains, &mut hosts)?;
            if let Some(h) = &t.header {
                if h.trim().is_empty() {
                    return Err(Error::Config(format!(
                        "static tenant {:?}: the header alias is empty",
                        name.as_str()
                    )));
                }
                if !headers.insert(h.clone()) {
                    return Err(Error::Config(format!(
                        "static tenant {:?}: header alias {h:?} is used twice",
                        name.as_str()
                    )));
                }
            }
            statics.push(StaticTenant {
                name,
                domains,
                fallback_domains,
                header: t.header,
                migrate: t.migrate,
            });
        }
        for t in &statics {
            if let Some(h) = &t.header
                && statics
                    .iter()
                    .any(|o| o.name.as_str() == h && o.name != t.name)
            {
                return Err(Error::Config(format!(
                    "static tenant {:?}: header alias {h:?} is the name of another static tenant",
                    t.name.as_str()
                )));
            }
        }
        let clone_reference = match &self.clone_reference {
            Some(r) => Some(claim(r, format!("the clone reference {r:?}"))?),
            None => None,
        };
        let mut extra = Vec::with_capacity(self.extra.len());
        for e in &self.extra {
            extra.push(claim(e, format!("the extra search path {e:?}"))?);
        }
        let neutral = SearchPath::neutral(shared.clone(), extra.iter());
        Ok(Config(Arc::new(Inner {
            shared,
            extra,
            statics,
            clone_reference,
            neutral,
        })))
    }
}

fn normalize_domains(
    tenant: &SchemaName,
    domains: Vec<String>,
    seen: &mut HashSet<String>,
) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(domains.len());
    for d in domains {
        let n = d.trim().trim_end_matches('.').to_ascii_lowercase();
        let bad = n.is_empty()
            || n.bytes()
                .any(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
        if bad {
            return Err(Error::Config(format!(
                "static tenant {:?}: {d:?} is not a domain (expected a host name such as \"mydomain.com\", without scheme, port or path)",
                tenant.as_str()
            )));
        }
        if !seen.insert(n.clone()) {
            return Err(Error::Config(format!(
                "static tenant {:?}: domain {n:?} is declared twice; a host can route to one static tenant only",
                tenant.as_str()
            )));
        }
        out.push(n);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(b: ConfigBuilder) -> String {
        b.build().unwrap_err().to_string()
    }

    #[test]
    fn defaults() {
        let c = Config::default();
        assert_eq!(c.shared_schema().as_str(), "public");
        assert!(c.extra_search_paths().is_empty());
        assert!(c.static_tenants().is_empty());
        assert!(c.clone_reference().is_none());
        assert_eq!(c.neutral_path().as_sql_value(), "\"public\", pg_temp");
    }

    // django-pgschemas' start-up checks (checks.py), as configuration errors.
    #[test]
    fn startup_errors() {
        let m = err(Config::builder().shared_schema("Public"));
        assert!(m.contains("invalid schema name \"Public\""), "{m}");
        let m = err(Config::builder().static_tenant(StaticTenant::builder("public")));
        assert!(m.contains("clashes with the shared schema"), "{m}");
        let m = err(Config::builder().static_tenant(StaticTenant::builder("pg_www")));
        assert!(m.contains("invalid schema name \"pg_www\""), "{m}");
        let m = err(Config::builder()
            .static_tenant(StaticTenant::builder("www"))
            .clone_reference("www"));
        assert!(m.contains("clashes with the static tenant \"www\""), "{m}");
        let m = err(Config::builder().clone_reference("public"));
        assert!(m.contains("clashes with the shared schema"), "{m}");
        let m = err(Config::builder()
            .static_tenant(StaticTenant::builder("www"))
            .extra_search_path("www"));
        assert!(m.contains("\"www\" clashes with the static tenant"), "{m}");
        let m = err(Config::builder()
            .clone_reference("sample")
            .extra_search_path("sample"));
        assert!(m.contains("clashes with the clone reference"), "{m}");
        let m = err(Config::builder().extra_search_path("public"));
        assert!(m.contains("clashes with the shared schema"), "{m}");
        let m = err(Config::builder()
            .static_tenant(StaticTenant::builder("www"))
            .static_tenant(StaticTenant::builder("www")));
        assert!(m.contains("clashes with the static tenant"), "{m}");
    }

    #[test]
    fn domain_errors() {
        let m = err(Config::builder().static_tenant(StaticTenant::builder("www").domain("")));
        assert!(m.contains("is not a domain"), "{m}");
        let m =
            err(Config::builder()
                .static_tenant(StaticTenant::builder("www").domain("http://x.com/a")));
        assert!(m.contains("is not a domain"), "{m}");
        let m = err(Config::builder()
            .static_tenant(StaticTenant::builder("www").domain("a.com"))
            .static_tenant(StaticTenant::builder("blog").domain("A.com")));
        assert!(m.contains("declared twice"), "{m}");
        let m = err(Config::builder()
            .static_tenant(StaticTenant::builder("www").header("x"))
            .static_tenant(StaticTenant::builder("blog").header("x")));
        assert!(m.contains("used twice"), "{m}");
    }

    #[test]
    fn domains_are_normalized() -> Result<()> {
        let c = Config::builder()
            .static_tenant(
                StaticTenant::builder("www")
                    .domain(" LocalHost. ")
                    .fallback_domain("Tenants.LOCALHOST"),
            )
            .build()?;
        let www = c.static_tenant("www").expect("declared");
        assert_eq!(www.domains(), ["localhost"]);
        assert_eq!(www.fallback_domains(), ["tenants.localhost"]);
        Ok(())
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
