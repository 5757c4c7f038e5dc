//! The immutable route snapshot, [`Routes`], and the resolution algorithm.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::catalog::InvalidRow;

use super::route::{Place, Resolution, Tenant, Via};
use super::segment::{first_segment, push_encoded};
use crate::domain::normalize_host;

/// The route table's maps: foldhash, seeded per process (fast on short host strings, and
/// not predictable from outside).
pub(super) type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The longest header value header routing looks at.
const MAX_HEADER_LEN: usize = 255;

/// A route to a dynamic tenant.
#[derive(Debug, Clone)]
pub(super) struct DynRoute {
    pub(super) tenant: Arc<Tenant>,
    pub(super) redirect: bool,
}

/// No folder routes on a host.
pub(super) const NO_FOLDERS: u32 = u32::MAX;

/// Everything one host routes to, in resolution order.
#[derive(Debug)]
pub(super) struct HostSlot {
    /// A static tenant's domain.
    pub(super) exact: Option<Arc<Tenant>>,
    /// The index of the host's folder routes in [`Routes::folders`], or [`NO_FOLDERS`].
    pub(super) folders: u32,
    /// Whether the bare domain redirects to the tenant's primary route.
    pub(super) bare_redirect: bool,
    /// A dynamic tenant's bare domain.
    pub(super) bare: Option<Arc<Tenant>>,
    /// A static tenant's fallback domain.
    pub(super) fallback: Option<Arc<Tenant>>,
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

/// An immutable route table: every static tenant from the [`Config`](crate::Config), every dynamic
/// tenant and domain from the catalog, indexed for allocation-free lookups.
///
/// Usually held by a [`RouteTable`](crate::routing::RouteTable), which swaps in a new one when the
/// catalog changes; build one directly for tests or for a fixed set of tenants.
///
/// Rows that cannot be routed (an invalid host or folder, a domain of an unknown tenant, a
/// schema that clashes with the configuration, two rows claiming one route) are left out,
/// listed in [`invalid_rows`](Self::invalid_rows) and described in
/// [`warnings`](Self::warnings); they never make the build fail.
///
/// ```
/// use pgschemas_diesel::{Config, SchemaName, StaticTenant};
/// use pgschemas_diesel::catalog::{DomainRecord, TenantRecord};
/// use pgschemas_diesel::routing::{Resolution, Routes};
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
    pub(super) hosts: Map<Arc<str>, HostSlot>,
    /// Per host with folder routes: `/folder` -> route.
    pub(super) folders: Vec<Map<Arc<str>, DynRoute>>,
    /// Static tenants' names and header aliases: exact.
    pub(super) statics: Map<Box<str>, Arc<Tenant>>,
    /// Dynamic tenants, sorted by schema name (header routing by schema name).
    pub(super) by_schema: Vec<Arc<Tenant>>,
    /// Indexes into `by_schema`, sorted by lower-cased id (header routing by id).
    pub(super) by_id: Vec<u32>,
    pub(super) tenants: usize,
    pub(super) routes: usize,
    pub(super) warnings: Vec<String>,
    pub(super) invalid: Vec<InvalidRow>,
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
    /// Resolves a request by its host (a `Host` header value or URI authority, with or
    /// without port) and its target (`/path` or `/path?query`).
    ///
    /// Any bytes are accepted: a malformed host is [`Resolution::NotFound`]. A hit does not
    /// allocate; a redirect does (its `Location`).
    ///
    /// ```
    /// use pgschemas_diesel::{Config, StaticTenant};
    /// use pgschemas_diesel::routing::{Resolution, Routes};
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
            return Resolution::served(tenant, Some(host), None, Via::StaticDomain);
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
            return Resolution::served(tenant, Some(host), None, Via::FallbackDomain);
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
    /// use pgschemas_diesel::{Config, StaticTenant};
    /// use pgschemas_diesel::routing::{Resolution, Routes, Via};
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
            return Resolution::suspended(tenant);
        }
        Resolution::served(tenant, None, None, Via::Header)
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
    /// use pgschemas_diesel::Config;
    /// use pgschemas_diesel::catalog::DomainRecord;
    /// use pgschemas_diesel::routing::Routes;
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
    /// use pgschemas_diesel::Config;
    /// use pgschemas_diesel::catalog::{DomainRecord, RowKind};
    /// use pgschemas_diesel::routing::Routes;
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

    /// The generation of this snapshot in its [`RouteTable`](crate::routing::RouteTable): 0 for a
    /// table built directly, then 1, 2, ... for each reload.
    pub fn version(&self) -> u64 {
        self.version
    }
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
        return Resolution::suspended(tenant);
    }
    if redirect && let Some(to) = &tenant.redirect_to {
        return Resolution::redirect(location(to, port, rest), tenant);
    }
    let via = if folder.is_some() {
        Via::DynamicFolder
    } else {
        Via::DynamicDomain
    };
    Resolution::served(tenant, Some(host), folder, via)
}

/// The `Location` of a redirect to `to`: `//host[:port]/[folder/]rest`, `rest` percent-encoded.
fn location(to: &Place, port: Option<&str>, rest: &[u8]) -> String {
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
    location
}

/// `s` lower-cased (ASCII), without allocating.
fn lower(s: &str) -> impl Iterator<Item = u8> + '_ {
    s.bytes().map(|b| b.to_ascii_lowercase())
}
