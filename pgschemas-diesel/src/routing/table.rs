//! The immutable route snapshot and the resolution algorithm.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

/// The route table's maps: foldhash, seeded per process (fast on short host strings, and
/// not predictable from outside).
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
use std::fmt;
use std::sync::Arc;

use crate::catalog::{CatalogRows, DomainRecord, InvalidRow, TenantRecord};
use crate::config::Config;
use crate::domain::{is_valid_folder, normalize_host, route_host, route_label};
use crate::name::SchemaName;

use super::target::{first_segment, push_encoded, strip_folder};

/// The longest header value header routing looks at.
const MAX_HEADER_LEN: usize = 255;

/// A tenant as the route table knows it; shared by all its routes.
#[derive(Debug)]
struct Tenant {
    schema: SchemaName,
    /// The catalog id of a dynamic tenant; `None` for a static tenant.
    id: Option<Box<str>>,
    active: bool,
    /// Where its redirecting routes lead: its primary route. Only kept for tenants that
    /// have a redirecting route.
    redirect_to: Option<Box<Target>>,
}

/// A route's place: a host and, for a folder route, `/folder`.
#[derive(Debug)]
struct Target {
    host: Arc<str>,
    folder: Option<Arc<str>>,
}

/// A route to a dynamic tenant.
#[derive(Debug, Clone)]
struct DynRoute {
    tenant: Arc<Tenant>,
    redirect: bool,
}

/// No folder routes on a host.
const NO_FOLDERS: u32 = u32::MAX;

/// Everything one host routes to, in resolution order.
#[derive(Debug)]
struct HostSlot {
    /// A static tenant's domain.
    exact: Option<Arc<Tenant>>,
    /// The index of the host's folder routes in [`Routes::folders`], or [`NO_FOLDERS`].
    folders: u32,
    /// Whether the bare domain redirects to the tenant's primary route.
    bare_redirect: bool,
    /// A dynamic tenant's bare domain.
    bare: Option<Arc<Tenant>>,
    /// A static tenant's fallback domain.
    fallback: Option<Arc<Tenant>>,
}

impl Default for HostSlot {
    fn default() -> Self {
        Self {
            exact: None,
            folders: NO_FOLDERS,
            bare_redirect: false,
            bare: None,
            fallback: None,
        }
    }
}

/// How a request reached its tenant.
///
/// ```
/// use pgschemas_diesel::{Config, Resolution, Routes, StaticTenant, Via};
///
/// let config = Config::builder().static_tenant(StaticTenant::builder("www").domain("localhost")).build()?;
/// let routes = Routes::build(&config, &[], &[]);
/// let Resolution::Route(route) = routes.resolve("localhost:8000", "/") else { panic!() };
/// assert_eq!(route.via(), Via::StaticDomain);
/// # Ok::<(), pgschemas_diesel::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Via {
    /// A static tenant's domain (exact host).
    StaticDomain,
    /// A dynamic tenant's domain with no folder.
    DynamicDomain,
    /// A dynamic tenant's domain and folder (the first path segment, stripped before the
    /// tenant's handlers see the path).
    DynamicFolder,
    /// A static tenant's fallback domain: no dynamic tenant matched the host.
    FallbackDomain,
    /// The tenant header (see [`Routes::resolve_header`]).
    Header,
}

/// The tenant a request resolved to, and how.
///
/// Cheap to clone (reference counts only); it owns what it needs, so it can travel in request
/// extensions. Each request carries its own route: URLs built with [`url`](Self::url) always
/// carry *this* request's folder prefix.
///
/// ```
/// use pgschemas_diesel::{DomainRecord, Resolution, Routes, SchemaName, TenantRecord, Via, Config};
///
/// let tenants = [TenantRecord { id: "1".into(), schema: SchemaName::new("tenant1")?, active: true }];
/// let domains = [DomainRecord {
///     tenant_id: "1".into(), domain: "tenants.localhost".into(), folder: Some("tenant1".into()),
///     is_primary: true, redirect_to_primary: false,
/// }];
/// let routes = Routes::build(&Config::default(), &tenants, &domains);
/// let Resolution::Route(route) = routes.resolve("tenants.localhost", "/tenant1/profile/") else { panic!() };
/// assert_eq!(route.schema().as_str(), "tenant1");
/// assert_eq!(route.via(), Via::DynamicFolder);
/// assert_eq!(route.domain(), Some("tenants.localhost"));
/// assert_eq!(route.folder(), Some("tenant1"));
/// assert_eq!(route.url("/login/"), "/tenant1/login/");
/// # Ok::<(), pgschemas_diesel::Error>(())
/// ```
#[derive(Clone)]
pub struct Route {
    tenant: Arc<Tenant>,
    /// The matched host; `None` for the header.
    host: Option<Arc<str>>,
    /// The matched `/folder`, for a folder route.
    folder: Option<Arc<str>>,
    via: Via,
}

impl Route {
    /// The schema to activate.
    pub fn schema(&self) -> &SchemaName {
        &self.tenant.schema
    }

    /// The catalog id of a dynamic tenant ([`TenantRecord::id`]); `None` for a static tenant.
    pub fn tenant_id(&self) -> Option<&str> {
        self.tenant.id.as_deref()
    }

    /// Whether this is a static tenant (from the configuration).
    pub fn is_static(&self) -> bool {
        self.tenant.id.is_none()
    }

    /// How the request reached the tenant.
    pub fn via(&self) -> Via {
        self.via
    }

    /// The matched domain (normalised: lower case, no port, no leading `www.`); `None` for
    /// header routing.
    pub fn domain(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// The folder, for [`Via::DynamicFolder`].
    pub fn folder(&self) -> Option<&str> {
        self.folder.as_deref().map(|f| &f[1..])
    }

    /// The path prefix the tenant lives under: `/folder` for a folder route, `""` otherwise.
    ///
    /// ```
    /// # use pgschemas_diesel::{Config, Resolution, Routes, StaticTenant};
    /// # let config = Config::builder().static_tenant(StaticTenant::builder("www").domain("localhost")).build()?;
    /// # let Resolution::Route(route) = Routes::build(&config, &[], &[]).resolve("localhost", "/a") else { panic!() };
    /// assert_eq!(route.prefix(), "");
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn prefix(&self) -> &str {
        self.folder.as_deref().unwrap_or("")
    }

    /// The request target (`/path?query`) as the tenant's own router should see it: this
    /// route's folder prefix removed (`/tenant1/a?b` gives `/a?b`, `/tenant1` gives `/`).
    /// Unchanged for other routes. Frameworks other than axum use this to rewrite the path.
    ///
    /// ```
    /// use pgschemas_diesel::{Config, DomainRecord, Resolution, Routes, SchemaName, TenantRecord};
    ///
    /// let tenants = [TenantRecord { id: "1".into(), schema: SchemaName::new("tenant1")?, active: true }];
    /// let domains = [DomainRecord {
    ///     tenant_id: "1".into(), domain: "tenants.localhost".into(), folder: Some("tenant1".into()),
    ///     is_primary: true, redirect_to_primary: false,
    /// }];
    /// let routes = Routes::build(&Config::default(), &tenants, &domains);
    /// let target = "/tenant1/profile/?tab=2";
    /// let Resolution::Route(route) = routes.resolve("tenants.localhost", target) else { panic!() };
    /// assert_eq!(route.strip_prefix(target), "/profile/?tab=2");
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn strip_prefix<'a>(&self, target: &'a str) -> Cow<'a, str> {
        match self.folder() {
            Some(folder) => strip_folder(target, folder),
            None => Cow::Borrowed(target),
        }
    }

    /// `path` as seen from outside: with this request's folder prefix, if any. The
    /// reverse of the prefix stripping done for folder routes; `path` should start with `/`.
    ///
    /// ```
    /// # use pgschemas_diesel::{Config, Resolution, Routes, StaticTenant};
    /// # let config = Config::builder().static_tenant(StaticTenant::builder("www").domain("localhost")).build()?;
    /// # let Resolution::Route(route) = Routes::build(&config, &[], &[]).resolve("localhost", "/") else { panic!() };
    /// assert_eq!(route.url("/register/"), "/register/");
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn url(&self, path: &str) -> String {
        let prefix = self.prefix();
        let mut out = String::with_capacity(prefix.len() + path.len() + 1);
        out.push_str(prefix);
        if !path.starts_with('/') {
            out.push('/');
        }
        out.push_str(path);
        out
    }

    /// `path` as a protocol-relative absolute URL on the matched domain and folder:
    /// `//domain/folder/path` (django-pgschemas' `absolute_url`). For header routing, the
    /// same as [`url`](Self::url).
    ///
    /// ```
    /// # use pgschemas_diesel::{Config, Resolution, Routes, StaticTenant};
    /// # let config = Config::builder().static_tenant(StaticTenant::builder("www").domain("localhost")).build()?;
    /// # let Resolution::Route(route) = Routes::build(&config, &[], &[]).resolve("localhost", "/") else { panic!() };
    /// assert_eq!(route.absolute_url("/a"), "//localhost/a");
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn absolute_url(&self, path: &str) -> String {
        match &self.host {
            Some(host) => format!("//{host}{}", self.url(path)),
            None => self.url(path),
        }
    }
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Route")
            .field("schema", &self.tenant.schema.as_str())
            .field("tenant_id", &self.tenant_id())
            .field("via", &self.via)
            .field("domain", &self.domain())
            .field("folder", &self.folder())
            .finish()
    }
}

/// A permanent redirect to a tenant's primary domain (and folder), for a route marked
/// `redirect_to_primary`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    location: String,
    schema: SchemaName,
}

impl Redirect {
    /// The `Location`: protocol-relative, `//primary-domain[:port]/[folder/]path[?query]`,
    /// with the request's own folder prefix stripped from the path. Only visible ASCII: other
    /// bytes are percent-encoded.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The schema of the tenant the redirect leads to (for logs).
    pub fn schema(&self) -> &SchemaName {
        &self.schema
    }
}

/// A request for a suspended tenant: answered with 403, never served from its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspended {
    tenant_id: Box<str>,
}

impl Suspended {
    /// The suspended tenant's catalog id.
    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }
}

/// The answer for one request.
///
/// ```
/// use pgschemas_diesel::{Config, Resolution, Routes};
///
/// let routes = Routes::build(&Config::default(), &[], &[]);
/// assert!(matches!(routes.resolve("example.com", "/"), Resolution::NotFound));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Resolution {
    /// Serve the request from this tenant's schema.
    Route(Route),
    /// Answer with a permanent redirect (301).
    Redirect(Redirect),
    /// The tenant exists but is suspended: answer 403.
    Suspended(Suspended),
    /// No tenant for this host (or header value): answer 404.
    NotFound,
}

impl Resolution {
    /// The route, when the request is to be served.
    ///
    /// ```
    /// # use pgschemas_diesel::{Config, Routes};
    /// assert!(Routes::build(&Config::default(), &[], &[]).resolve("x", "/").route().is_none());
    /// ```
    pub fn route(&self) -> Option<&Route> {
        match self {
            Self::Route(r) => Some(r),
            _ => None,
        }
    }
}

/// An immutable route table: every static tenant from the [`Config`], every dynamic tenant
/// and domain from the catalog, indexed for allocation-free lookups.
///
/// Usually held by a [`RouteTable`](crate::RouteTable), which swaps in a new one when the
/// catalog changes; build one directly for tests or for a fixed set of tenants.
///
/// Rows that cannot be routed (an invalid host or folder, a domain of an unknown tenant, a
/// schema that clashes with the configuration, two rows claiming one route) are left out,
/// listed in [`invalid_rows`](Self::invalid_rows) and described in
/// [`warnings`](Self::warnings); they never make the build fail.
///
/// ```
/// use pgschemas_diesel::{Config, DomainRecord, Resolution, Routes, SchemaName, StaticTenant, TenantRecord};
///
/// let config = Config::builder()
///     .static_tenant(StaticTenant::builder("www").domain("localhost").fallback_domain("tenants.localhost"))
///     .build()?;
/// let tenants = [TenantRecord { id: "1".into(), schema: SchemaName::new("tenant1")?, active: true }];
/// let domains = [DomainRecord {
///     tenant_id: "1".into(), domain: "tenant1.localhost".into(), folder: None,
///     is_primary: true, redirect_to_primary: false,
/// }];
/// let routes = Routes::build(&config, &tenants, &domains);
/// let schema = |host, path| routes.resolve(host, path).route().map(|r| r.schema().to_string());
/// assert_eq!(schema("www.tenant1.localhost", "/").as_deref(), Some("tenant1"));
/// assert_eq!(schema("tenants.localhost", "/other/").as_deref(), Some("www"));
/// assert_eq!(schema("unknown.localhost", "/"), None);
/// # Ok::<(), pgschemas_diesel::Error>(())
/// ```
pub struct Routes {
    hosts: Map<Arc<str>, HostSlot>,
    /// Per host with folder routes: `/folder` -> route.
    folders: Vec<Map<Arc<str>, DynRoute>>,
    /// Static tenants' names and header aliases: exact.
    statics: Map<Box<str>, Arc<Tenant>>,
    /// Dynamic tenants, sorted by schema name (header routing by schema name).
    by_schema: Vec<Arc<Tenant>>,
    /// Indexes into `by_schema`, sorted by lower-cased id (header routing by id).
    by_id: Vec<u32>,
    tenants: usize,
    routes: usize,
    warnings: Vec<String>,
    invalid: Vec<InvalidRow>,
    pub(crate) version: u64,
}

impl fmt::Debug for Routes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Routes")
            .field("version", &self.version)
            .field("tenants", &self.tenants)
            .field("routes", &self.routes)
            .field("warnings", &self.warnings.len())
            .field("invalid_rows", &self.invalid.len())
            .finish()
    }
}

impl Routes {
    /// Builds the table from the configuration's static tenants and the catalog's records.
    ///
    /// Resolution order (django-pgschemas' `route_domain`): a static tenant's domain; a
    /// dynamic domain with the request's first path segment as folder; a dynamic domain
    /// without folder; a static tenant's fallback domain; else not found.
    ///
    /// ```
    /// use pgschemas_diesel::{Config, Routes};
    /// let routes = Routes::build(&Config::default(), &[], &[]);
    /// assert_eq!(routes.route_count(), 0);
    /// ```
    pub fn build(config: &Config, tenants: &[TenantRecord], domains: &[DomainRecord]) -> Self {
        let mut b = Builder::default();
        b.statics(config);
        b.dynamics(config, tenants, domains);
        b.finish()
    }

    /// Builds the table from one read of the catalog: the rows the read left out come
    /// first in [`invalid_rows`](Self::invalid_rows) and [`warnings`](Self::warnings).
    pub(crate) fn from_rows(config: &Config, rows: &CatalogRows) -> Self {
        let mut b = Builder::default();
        for row in &rows.invalid {
            b.leave_out(row.clone());
        }
        b.statics(config);
        b.dynamics(config, &rows.tenants, &rows.domains);
        b.finish()
    }

    /// Resolves a request by its host (a `Host` header value or URI authority, with or
    /// without port) and its target (`/path` or `/path?query`).
    ///
    /// Any bytes are accepted: a malformed host is [`Resolution::NotFound`]. A hit does not
    /// allocate; a redirect does (its `Location`).
    ///
    /// ```
    /// use pgschemas_diesel::{Config, Resolution, Routes, StaticTenant};
    ///
    /// let config = Config::builder().static_tenant(StaticTenant::builder("blog").domain("blog.localhost")).build()?;
    /// let routes = Routes::build(&config, &[], &[]);
    /// assert!(matches!(routes.resolve("Blog.LocalHost.:8000", "/entries/"), Resolution::Route(_)));
    /// assert!(matches!(routes.resolve("blog.localhost\0", "/"), Resolution::NotFound));
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn resolve(&self, host: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Resolution {
        self.resolve_bytes(host.as_ref(), target.as_ref())
    }

    fn resolve_bytes(&self, host: &[u8], target: &[u8]) -> Resolution {
        let mut storage = None;
        let Ok((normal, port)) = normalize_host(host, &mut storage) else {
            return Resolution::NotFound;
        };
        let Some((host, slot)) = self.hosts.get_key_value(normal) else {
            return Resolution::NotFound;
        };
        if let Some(tenant) = &slot.exact {
            return served(tenant, Some(host), None, Via::StaticDomain);
        }
        if let Some(folders) = self.folders.get(slot.folders as usize) {
            let (segment, rest) = first_segment(target);
            if let Some((folder, dynamic)) = std::str::from_utf8(segment)
                .ok()
                .and_then(|s| folders.get_key_value(s))
            {
                let tenant = &dynamic.tenant;
                return dynamic_route(tenant, dynamic.redirect, host, Some(folder), port, rest);
            }
        }
        if let Some(tenant) = &slot.bare {
            return dynamic_route(tenant, slot.bare_redirect, host, None, port, target);
        }
        if let Some(tenant) = &slot.fallback {
            return served(tenant, Some(host), None, Via::FallbackDomain);
        }
        Resolution::NotFound
    }

    /// Resolves a tenant header value (django-pgschemas' header routing): a static tenant's
    /// name or header alias, else a dynamic tenant's schema name or id (the id compared
    /// case-insensitively).
    ///
    /// This is an **unauthenticated** tenant switch: whoever sends the header picks the
    /// tenant. Use it only behind a trusted gateway that sets (or strips) the header.
    ///
    /// ```
    /// use pgschemas_diesel::{Config, Resolution, Routes, StaticTenant, Via};
    ///
    /// let config = Config::builder().static_tenant(StaticTenant::builder("www").header("main")).build()?;
    /// let routes = Routes::build(&config, &[], &[]);
    /// let Resolution::Route(route) = routes.resolve_header("main") else { panic!() };
    /// assert_eq!((route.schema().as_str(), route.via()), ("www", Via::Header));
    /// assert!(matches!(routes.resolve_header("nobody"), Resolution::NotFound));
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn resolve_header(&self, value: impl AsRef<[u8]>) -> Resolution {
        let value = value.as_ref();
        if value.is_empty() || value.len() > MAX_HEADER_LEN {
            return Resolution::NotFound;
        }
        let Ok(value) = std::str::from_utf8(value) else {
            return Resolution::NotFound;
        };
        let tenant = if let Some(t) = self.statics.get(value) {
            t
        } else if let Ok(i) = self
            .by_schema
            .binary_search_by(|t| t.schema.as_str().cmp(value))
        {
            &self.by_schema[i]
        } else {
            let key = |i: &u32| {
                self.by_schema
                    .get(*i as usize)
                    .and_then(|t| t.id.as_deref())
                    .unwrap_or("")
            };
            let at = self
                .by_id
                .partition_point(|i| lower(key(i)).lt(lower(value)));
            match self.by_id.get(at) {
                Some(i) if lower(key(i)).eq(lower(value)) => &self.by_schema[*i as usize],
                _ => return Resolution::NotFound,
            }
        };
        if !tenant.active {
            return suspended(tenant);
        }
        served(tenant, None, None, Via::Header)
    }

    /// The number of routes: static domains and fallback domains, dynamic domain rows.
    pub fn route_count(&self) -> usize {
        self.routes
    }

    /// The number of tenants, static and dynamic.
    pub fn tenant_count(&self) -> usize {
        self.tenants
    }

    /// The rows left out of the table, and why (one line each): the catalog rows of
    /// [`invalid_rows`](Self::invalid_rows), and static tenants' domains that cannot be
    /// routed.
    ///
    /// ```
    /// use pgschemas_diesel::{Config, DomainRecord, Routes};
    /// let orphan = DomainRecord {
    ///     tenant_id: "9".into(), domain: "x.com".into(), folder: None,
    ///     is_primary: true, redirect_to_primary: false,
    /// };
    /// let routes = Routes::build(&Config::default(), &[], &[orphan]);
    /// assert!(routes.warnings()[0].contains("no tenant has this id"));
    /// ```
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The catalog rows left out of the table: tenants whose schema name is not valid or
    /// clashes with the configuration or another tenant, domains whose host or folder
    /// cannot be routed, whose tenant is left out or unknown, or whose route another
    /// tenant has.
    ///
    /// ```
    /// use pgschemas_diesel::{Config, DomainRecord, RowKind, Routes};
    /// let bad = DomainRecord {
    ///     tenant_id: "9".into(), domain: "bad host.com".into(), folder: None,
    ///     is_primary: true, redirect_to_primary: false,
    /// };
    /// let routes = Routes::build(&Config::default(), &[], &[bad]);
    /// assert_eq!(routes.invalid_rows()[0].kind, RowKind::Domain);
    /// assert_eq!(routes.invalid_rows()[0].value, "bad host.com");
    /// ```
    pub fn invalid_rows(&self) -> &[InvalidRow] {
        &self.invalid
    }

    /// The generation of this snapshot in its [`RouteTable`](crate::RouteTable): 0 for a
    /// table built directly, then 1, 2, ... for each reload.
    pub fn version(&self) -> u64 {
        self.version
    }
}

fn served(
    tenant: &Arc<Tenant>,
    host: Option<&Arc<str>>,
    folder: Option<&Arc<str>>,
    via: Via,
) -> Resolution {
    Resolution::Route(Route {
        tenant: Arc::clone(tenant),
        host: host.map(Arc::clone),
        folder: folder.map(Arc::clone),
        via,
    })
}

fn suspended(tenant: &Tenant) -> Resolution {
    Resolution::Suspended(Suspended {
        tenant_id: tenant.id.clone().unwrap_or_default(),
    })
}

/// A dynamic route: suspended, redirected to the primary route, or served. `rest` is the
/// request target with this route's folder (if any) stripped.
fn dynamic_route(
    tenant: &Arc<Tenant>,
    redirect: bool,
    host: &Arc<str>,
    folder: Option<&Arc<str>>,
    port: Option<&str>,
    rest: &[u8],
) -> Resolution {
    if !tenant.active {
        return suspended(tenant);
    }
    if redirect && let Some(to) = &tenant.redirect_to {
        let to_folder = to.folder.as_deref().unwrap_or("");
        let mut location = String::with_capacity(to.host.len() + to_folder.len() + rest.len() + 10);
        location.push_str("//");
        location.push_str(&to.host);
        if let Some(port) = port {
            location.push(':');
            location.push_str(port);
        }
        location.push_str(to_folder);
        if !rest.starts_with(b"/") {
            location.push('/');
        }
        push_encoded(&mut location, rest);
        return Resolution::Redirect(Redirect {
            location,
            schema: tenant.schema.clone(),
        });
    }
    let via = if folder.is_some() {
        Via::DynamicFolder
    } else {
        Via::DynamicDomain
    };
    served(tenant, Some(host), folder, via)
}

/// `s` lower-cased (ASCII), without allocating.
fn lower(s: &str) -> impl Iterator<Item = u8> + '_ {
    s.bytes().map(|b| b.to_ascii_lowercase())
}

/// Domain rows: normalised host, folder, the record.
type Rows<'a> = Vec<(String, Option<String>, &'a DomainRecord)>;

#[derive(Default)]
struct Builder {
    hosts: Map<Arc<str>, HostSlot>,
    folders: Vec<Map<Arc<str>, DynRoute>>,
    statics: Map<Box<str>, Arc<Tenant>>,
    by_schema: Vec<Arc<Tenant>>,
    tenants: usize,
    routes: usize,
    warnings: Vec<String>,
    invalid: Vec<InvalidRow>,
}

/// A route being built: host, `/folder`, primary, redirecting.
type Claim = (Arc<str>, Option<Arc<str>>, bool, bool);

impl Builder {
    /// The host's shared string (one per host, however many routes use it) and slot.
    fn host_slot(&mut self, host: String) -> (Arc<str>, &mut HostSlot) {
        let key = match self.hosts.get_key_value(host.as_str()) {
            Some((k, _)) => Arc::clone(k),
            None => Arc::from(host),
        };
        let slot = self.hosts.entry(Arc::clone(&key)).or_default();
        (key, slot)
    }

    fn statics(&mut self, config: &Config) {
        for st in config.static_tenants() {
            let tenant = Arc::new(Tenant {
                schema: st.name().clone(),
                id: None,
                active: true,
                redirect_to: None,
            });
            self.tenants += 1;
            self.statics
                .entry(st.name().as_str().into())
                .or_insert_with(|| Arc::clone(&tenant));
            if let Some(alias) = st.header() {
                self.statics
                    .entry(alias.into())
                    .or_insert_with(|| Arc::clone(&tenant));
            }
            for (domains, fallback) in [(st.domains(), false), (st.fallback_domains(), true)] {
                for domain in domains {
                    let what = if fallback {
                        "fallback domain"
                    } else {
                        "domain"
                    };
                    let host = match route_host(domain) {
                        Ok(h) => h,
                        Err(why) => {
                            self.warn(format!(
                                "static tenant {:?}: {what} {domain:?} left out: {why}",
                                st.name().as_str()
                            ));
                            continue;
                        }
                    };
                    let (_, slot) = self.host_slot(host);
                    let place = if fallback {
                        &mut slot.fallback
                    } else {
                        &mut slot.exact
                    };
                    if let Some(other) = place {
                        let other = other.schema.to_string();
                        self.warn(format!(
                            "static tenant {:?}: {what} {domain:?} left out: the host is already a {what} of static tenant {other:?}",
                            st.name().as_str()
                        ));
                        continue;
                    }
                    *place = Some(Arc::clone(&tenant));
                    self.routes += 1;
                }
            }
        }
    }

    fn dynamics(&mut self, config: &Config, tenants: &[TenantRecord], domains: &[DomainRecord]) {
        // Deterministic whatever the catalog's order: tenants are taken by id and a route
        // claimed twice goes to the tenant with the smaller id.
        let mut tenants: Vec<&TenantRecord> = tenants.iter().collect();
        tenants.sort_by(|a, b| a.id.cmp(&b.id));
        let mut by_id: HashMap<&str, (&TenantRecord, Rows<'_>)> =
            HashMap::with_capacity(tenants.len());
        let mut schemas: HashMap<&str, &str> = HashMap::with_capacity(tenants.len());
        let mut left_out: HashSet<&str> = HashSet::new();
        for t in tenants {
            let schema = t.schema.as_str();
            let reason = if let Err(e) = config.check_tenant_name(schema) {
                e.to_string()
            } else if by_id.contains_key(t.id.as_str()) {
                "the id is used twice".to_owned()
            } else if let Some(other) = schemas.insert(schema, t.id.as_str()) {
                schemas.insert(schema, other);
                format!("schema {schema:?} already belongs to tenant {other:?}")
            } else {
                by_id.insert(t.id.as_str(), (t, Vec::new()));
                continue;
            };
            left_out.insert(t.id.as_str());
            self.leave_out(InvalidRow::tenant(t.id.as_str(), schema, reason));
        }

        let mut rows: Rows<'_> = Vec::with_capacity(domains.len());
        for d in domains {
            let leave_out = |reason: &str| {
                InvalidRow::domain(
                    d.tenant_id.as_str(),
                    route_label(&d.domain, d.folder.as_deref()),
                    reason,
                )
            };
            if !by_id.contains_key(d.tenant_id.as_str()) {
                let reason = if left_out.contains(d.tenant_id.as_str()) {
                    "its tenant is left out"
                } else {
                    "no tenant has this id"
                };
                self.leave_out(leave_out(reason));
                continue;
            }
            let host = match route_host(&d.domain) {
                Ok(h) => h,
                Err(why) => {
                    self.leave_out(leave_out(why));
                    continue;
                }
            };
            let folder = match d.folder.as_deref() {
                None | Some("") => None,
                Some(f) if is_valid_folder(f) => Some(format!("/{f}")),
                Some(_) => {
                    self.leave_out(leave_out(
                        "the folder must be one URL path segment of letters, digits, '-', '_', '.' or '~'",
                    ));
                    continue;
                }
            };
            rows.push((host, folder, d));
        }
        rows.sort_by(|a, b| {
            (&a.0, &a.1, a.2.domain != a.0, &a.2.tenant_id).cmp(&(
                &b.0,
                &b.1,
                b.2.domain != b.0,
                &b.2.tenant_id,
            ))
        });
        for (host, folder, d) in rows {
            if let Some((_, list)) = by_id.get_mut(d.tenant_id.as_str()) {
                list.push((host, folder, d));
            }
        }

        let mut ids: Vec<&str> = by_id.keys().copied().collect();
        ids.sort_unstable();
        let mut taken: HashMap<(Arc<str>, Option<Arc<str>>), String> = HashMap::new();
        for id in ids {
            let Some((t, rows)) = by_id.remove(id) else {
                continue;
            };
            self.tenant(t, rows, &mut taken);
        }
        self.by_schema
            .sort_by(|a, b| a.schema.as_str().cmp(b.schema.as_str()));
    }

    fn tenant(
        &mut self,
        t: &TenantRecord,
        rows: Rows<'_>,
        taken: &mut HashMap<(Arc<str>, Option<Arc<str>>), String>,
    ) {
        let mut claims: Vec<Claim> = Vec::with_capacity(rows.len());
        for (host, folder, d) in rows {
            let (host, _) = self.host_slot(host);
            let folder: Option<Arc<str>> = folder.map(Arc::from);
            let route = (Arc::clone(&host), folder.clone());
            if let Some(owner) = taken.get(&route) {
                self.leave_out(InvalidRow::domain(
                    t.id.as_str(),
                    route_label(&d.domain, d.folder.as_deref()),
                    format!(
                        "the route {}{} already belongs to tenant {owner:?}",
                        host,
                        folder.as_deref().unwrap_or("")
                    ),
                ));
                continue;
            }
            taken.insert(route, t.id.clone());
            claims.push((host, folder, d.is_primary, d.redirect_to_primary));
        }
        // A primary never redirects (it would redirect to itself); the redirect target is
        // kept only when some route redirects.
        let primary = claims.iter().find(|c| c.2);
        let redirects = claims.iter().any(|c| c.3 && !c.2);
        let redirect_to = match (primary, redirects) {
            (Some((host, folder, ..)), true) => Some(Box::new(Target {
                host: Arc::clone(host),
                folder: folder.clone(),
            })),
            _ => None,
        };
        let tenant = Arc::new(Tenant {
            schema: t.schema.clone(),
            id: Some(t.id.as_str().into()),
            active: t.active,
            redirect_to,
        });
        self.tenants += 1;
        if let Some(other) = self.statics.get(t.schema.as_str()) {
            let other = other.schema.to_string();
            self.warn(format!(
                "tenant {:?}: header routing by schema name {:?} left out: it is the header alias of static tenant {other:?}",
                t.id,
                t.schema.as_str()
            ));
        }
        self.by_schema.push(Arc::clone(&tenant));
        for (host, folder, is_primary, redirect) in claims {
            let redirect = redirect && !is_primary;
            self.routes += 1;
            let Some(slot) = self.hosts.get_mut(&host) else {
                continue;
            };
            match folder {
                Some(folder) => {
                    if slot.folders == NO_FOLDERS {
                        slot.folders = u32::try_from(self.folders.len()).unwrap_or(NO_FOLDERS);
                        self.folders.push(Map::default());
                    }
                    if let Some(map) = self.folders.get_mut(slot.folders as usize) {
                        map.insert(
                            folder,
                            DynRoute {
                                tenant: Arc::clone(&tenant),
                                redirect,
                            },
                        );
                    }
                }
                None => {
                    slot.bare = Some(Arc::clone(&tenant));
                    slot.bare_redirect = redirect;
                }
            }
        }
    }

    fn warn(&mut self, message: String) {
        self.warnings.push(message);
    }

    /// A catalog row left out: listed, and described in the warnings.
    fn leave_out(&mut self, row: InvalidRow) {
        self.warnings.push(row.to_string());
        self.invalid.push(row);
    }

    fn finish(mut self) -> Routes {
        self.hosts.shrink_to_fit();
        for map in &mut self.folders {
            map.shrink_to_fit();
        }
        self.folders.shrink_to_fit();
        self.statics.shrink_to_fit();
        self.by_schema.shrink_to_fit();
        let mut by_id: Vec<u32> = (0..self.by_schema.len())
            .filter_map(|i| u32::try_from(i).ok())
            .collect();
        let id = |i: &u32| {
            self.by_schema
                .get(*i as usize)
                .and_then(|t| t.id.as_deref())
                .unwrap_or("")
                .to_ascii_lowercase()
        };
        by_id.sort_by_cached_key(id);
        Routes {
            hosts: self.hosts,
            folders: self.folders,
            statics: self.statics,
            by_schema: self.by_schema,
            by_id,
            tenants: self.tenants,
            routes: self.routes,
            warnings: self.warnings,
            invalid: self.invalid,
            version: 0,
        }
    }
}
