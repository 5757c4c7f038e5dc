//! What a resolution answers: the route a request is served from, a redirect, a suspended
//! tenant, or nothing; and the tenant records routes share.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::name::SchemaName;

use super::segment::strip_folder;

/// A tenant as the route table knows it; shared by all its routes.
#[derive(Debug)]
pub(super) struct Tenant {
    pub(super) schema: SchemaName,
    /// The catalog id of a dynamic tenant; `None` for a static tenant.
    pub(super) id: Option<Box<str>>,
    pub(super) active: bool,
    /// Where its redirecting routes lead: its primary route. Only kept for tenants that
    /// have a redirecting route.
    pub(super) redirect_to: Option<Box<Place>>,
}

/// A route's place: a host and, for a folder route, `/folder`.
#[derive(Debug)]
pub(super) struct Place {
    pub(super) host: Arc<str>,
    pub(super) folder: Option<Arc<str>>,
}

/// How a request reached its tenant.
///
/// ```
/// use pgschemas_diesel::{Config, StaticTenant};
/// use pgschemas_diesel::routing::{Resolution, Routes, Via};
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
    /// The tenant header (see [`Routes::resolve_header`](crate::routing::Routes::resolve_header)).
    Header,
}

/// The tenant a request resolved to, and how.
///
/// Cheap to clone (reference counts only); it owns what it needs, so it can travel in request
/// extensions. Each request carries its own route: URLs built with [`url`](Self::url) always
/// carry *this* request's folder prefix.
///
/// ```
/// use pgschemas_diesel::{SchemaName, Config};
/// use pgschemas_diesel::catalog::{DomainRecord, TenantRecord};
/// use pgschemas_diesel::routing::{Resolution, Routes, Via};
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

    /// The catalog id of a dynamic tenant ([`TenantRecord::id`](crate::catalog::TenantRecord::id)); `None`
    /// for a static tenant.
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
    /// # use pgschemas_diesel::{Config, StaticTenant};
    /// # use pgschemas_diesel::routing::{Resolution, Routes};
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
    /// use pgschemas_diesel::{Config, SchemaName};
    /// use pgschemas_diesel::catalog::{DomainRecord, TenantRecord};
    /// use pgschemas_diesel::routing::{Resolution, Routes};
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
    /// # use pgschemas_diesel::{Config, StaticTenant};
    /// # use pgschemas_diesel::routing::{Resolution, Routes};
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
    /// # use pgschemas_diesel::{Config, StaticTenant};
    /// # use pgschemas_diesel::routing::{Resolution, Routes};
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
/// use pgschemas_diesel::Config;
/// use pgschemas_diesel::routing::{Resolution, Routes};
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
    /// # use pgschemas_diesel::Config;
    /// # use pgschemas_diesel::routing::Routes;
    /// assert!(Routes::build(&Config::default(), &[], &[]).resolve("x", "/").route().is_none());
    /// ```
    pub fn route(&self) -> Option<&Route> {
        match self {
            Self::Route(r) => Some(r),
            _ => None,
        }
    }

    /// Served from `tenant`'s schema, reached at `host` and `folder` (`/folder`) by `via`.
    pub(super) fn served(
        tenant: &Arc<Tenant>,
        host: Option<&Arc<str>>,
        folder: Option<&Arc<str>>,
        via: Via,
    ) -> Self {
        Self::Route(Route {
            tenant: Arc::clone(tenant),
            host: host.map(Arc::clone),
            folder: folder.map(Arc::clone),
            via,
        })
    }

    /// A permanent redirect to `location`, where `tenant` is served.
    pub(super) fn redirect(location: String, tenant: &Tenant) -> Self {
        Self::Redirect(Redirect {
            location,
            schema: tenant.schema.clone(),
        })
    }

    /// `tenant` is suspended.
    pub(super) fn suspended(tenant: &Tenant) -> Self {
        Self::Suspended(Suspended {
            tenant_id: tenant.id.clone().unwrap_or_default(),
        })
    }
}
