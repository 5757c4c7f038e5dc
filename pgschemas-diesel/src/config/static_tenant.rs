//! A static tenant: a schema fixed in configuration, and the checks of its domains and
//! header alias.

use std::collections::HashSet;
use std::fmt;

use crate::domain::stored_domain;
use crate::error::{Error, Result};
use crate::name::SchemaName;

/// A static tenant: a schema fixed in configuration (such as `www` or `blog`), routed by its
/// own domains, fallback domains or header alias.
///
/// Built with [`StaticTenant::builder`] and validated by
/// [`ConfigBuilder::build`](super::ConfigBuilder::build).
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

/// Describes a [`StaticTenant`]; passed to
/// [`ConfigBuilder::static_tenant`](super::ConfigBuilder::static_tenant).
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
    /// It must be a host name, as a domain route's: ASCII (an internationalised domain in its
    /// A-label form, `xn--...`), without scheme, port, path or leading `www.`; checked by
    /// [`ConfigBuilder::build`](super::ConfigBuilder::build).
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

/// The hosts and header aliases the static tenants checked so far have taken.
#[derive(Debug, Default)]
pub(super) struct Taken {
    hosts: HashSet<String>,
    headers: HashSet<String>,
}

impl StaticTenantBuilder {
    /// The schema name, as given.
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// The tenant, its domains normalised and its header alias checked, against what the
    /// tenants before it have `taken`; `name` is its schema name, already checked.
    pub(super) fn check(self, name: SchemaName, taken: &mut Taken) -> Result<StaticTenant> {
        let domains = taken.domains(&name, self.domains)?;
        let fallback_domains = taken.domains(&name, self.fallback_domains)?;
        if let Some(alias) = &self.header {
            taken.header(&name, alias)?;
        }
        Ok(StaticTenant {
            name,
            domains,
            fallback_domains,
            header: self.header,
            migrate: self.migrate,
        })
    }
}

impl Taken {
    /// `domains` as stored, each claimed for `tenant`.
    fn domains(&mut self, tenant: &SchemaName, domains: Vec<String>) -> Result<Vec<String>> {
        let mut out = Vec::with_capacity(domains.len());
        for d in domains {
            let n = stored_domain(&d)
                .map_err(|fault| invalid(tenant, format_args!("{d:?} is not a domain: {fault}")))?;
            if !self.hosts.insert(n.clone()) {
                return Err(invalid(
                    tenant,
                    format_args!(
                        "domain {n:?} is declared twice; a host can route to one static tenant only"
                    ),
                ));
            }
            out.push(n);
        }
        Ok(out)
    }

    /// Claims the header alias `alias` for `tenant`.
    fn header(&mut self, tenant: &SchemaName, alias: &str) -> Result<()> {
        if alias.trim().is_empty() {
            return Err(invalid(tenant, "the header alias is empty"));
        }
        if !self.headers.insert(alias.to_owned()) {
            return Err(invalid(
                tenant,
                format_args!("header alias {alias:?} is used twice"),
            ));
        }
        Ok(())
    }
}

/// Refuses a header alias that is the name of another static tenant.
pub(super) fn check_aliases(statics: &[StaticTenant]) -> Result<()> {
    for t in statics {
        if let Some(h) = &t.header
            && statics
                .iter()
                .any(|o| o.name.as_str() == h && o.name != t.name)
        {
            return Err(invalid(
                &t.name,
                format_args!("header alias {h:?} is the name of another static tenant"),
            ));
        }
    }
    Ok(())
}

/// A configuration error about static tenant `tenant`.
fn invalid(tenant: &SchemaName, what: impl fmt::Display) -> Error {
    Error::Config(format!("static tenant {:?}: {what}", tenant.as_str()))
}
