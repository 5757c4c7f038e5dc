//! The domain rules of django-pgschemas, for any [`DomainModel`].

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::{Connection, PgConnection};

use super::DomainModel;
use crate::domain::{route_label, stored_domain, stored_folder};
use crate::error::RouteFault;
use crate::error::{Error, Result};

/// A route to add to a tenant with [`add_domain`].
///
/// The domain is stored in lower case; it is an ASCII host name, so an internationalised
/// domain is given in its A-label form (`xn--...`, what browsers send). An empty folder means
/// none. `is_primary` defaults to `false` (django-pgschemas defaults to `true`); the tenant's
/// first domain becomes primary anyway.
///
/// ```
/// use pgschemas_diesel::models::NewDomain;
///
/// let route = NewDomain::new("Customers.Example.com").folder("acme").redirect_to_primary(true);
/// assert_eq!(route.domain, "Customers.Example.com");
/// assert_eq!(route.folder.as_deref(), Some("acme"));
/// assert!(!route.is_primary && route.redirect_to_primary);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewDomain {
    /// The host, without port or scheme.
    pub domain: String,
    /// The first path segment for subfolder routing; `None` for the bare domain.
    pub folder: Option<String>,
    /// Make this the tenant's primary route (demoting the current one).
    pub is_primary: bool,
    /// Redirect requests to this route to the primary route; ignored (forced `false`) for a
    /// primary route.
    pub redirect_to_primary: bool,
}

impl NewDomain {
    /// A bare-domain route, not primary, not redirecting.
    ///
    /// ```
    /// let route = pgschemas_diesel::models::NewDomain::new("acme.example.com");
    /// assert!(route.folder.is_none());
    /// ```
    pub fn new(domain: impl Into<String>) -> Self {
        Self {
            domain: domain.into(),
            folder: None,
            is_primary: false,
            redirect_to_primary: false,
        }
    }

    /// Routes the first path segment `folder` on the domain (an empty folder means none).
    ///
    /// ```
    /// let route = pgschemas_diesel::models::NewDomain::new("example.com").folder("acme");
    /// assert_eq!(route.folder.as_deref(), Some("acme"));
    /// ```
    pub fn folder(mut self, folder: impl Into<String>) -> Self {
        let folder = folder.into();
        self.folder = (!folder.is_empty()).then_some(folder);
        self
    }

    /// Makes the route the tenant's primary route.
    ///
    /// ```
    /// assert!(pgschemas_diesel::models::NewDomain::new("example.com").primary(true).is_primary);
    /// ```
    pub fn primary(mut self, is_primary: bool) -> Self {
        self.is_primary = is_primary;
        self
    }

    /// Redirects requests to this route to the primary route.
    ///
    /// ```
    /// let route = pgschemas_diesel::models::NewDomain::new("old.example.com").redirect_to_primary(true);
    /// assert!(route.redirect_to_primary);
    /// ```
    pub fn redirect_to_primary(mut self, redirect: bool) -> Self {
        self.redirect_to_primary = redirect;
        self
    }

    /// The route as stored: the domain trimmed, in ASCII lower case and without a trailing
    /// dot, an empty folder as `None`; an error for a domain or folder routing could never
    /// match (the rules of `crate::domain`, shared with the configuration and routing).
    fn normalized(&self) -> Result<Self> {
        let invalid = |reason: RouteFault| Error::InvalidDomain {
            domain: route_label(&self.domain, self.folder.as_deref()),
            reason,
        };
        let domain = stored_domain(&self.domain).map_err(|f| invalid(RouteFault::Domain(f)))?;
        let folder =
            stored_folder(self.folder.as_deref()).map_err(|f| invalid(RouteFault::Folder(f)))?;
        Ok(Self {
            domain,
            folder,
            is_primary: self.is_primary,
            redirect_to_primary: self.redirect_to_primary,
        })
    }
}

/// Adds a route to a tenant, applying django-pgschemas' rules in one transaction:
///
/// - the tenant's first route (more exactly: a route added while it has no primary) becomes
///   its primary route;
/// - a new primary route demotes the tenant's other routes;
/// - a primary route never redirects: `redirect_to_primary` is forced to `false`, as
///   django-pgschemas does;
/// - `(domain, folder)` is unique across all tenants: a taken route is
///   [`Error::DomainTaken`], naming the route and its tenant.
///
/// The domain is stored in lower case, without a trailing dot.
///
/// # Errors
///
/// [`Error::InvalidDomain`] for a domain or folder routing could never match (a Unicode
/// domain among them: give its `xn--` form),
/// [`Error::DomainTaken`], [`Error::Database`].
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database().models().tenant("acme", &[]); let database_url = db.url();
/// use diesel::{Connection, PgConnection};
/// use pgschemas_diesel::models::{DomainModel, NewDomain, TenantModel, add_domain};
/// use pgschemas_diesel::models::{DefaultDomain, DefaultTenant};
///
/// let mut conn = PgConnection::establish(database_url)?;
/// let tenant_id = DefaultTenant::find_by_schema_name(&mut conn, "acme")?.ok_or("no tenant acme")?.id;
/// let first: DefaultDomain = add_domain(&mut conn, &tenant_id, NewDomain::new("acme.example.com"))?;
/// assert!(first.is_primary);
/// let folder: DefaultDomain =
///     add_domain(&mut conn, &tenant_id, NewDomain::new("example.com").folder("acme").primary(true))?;
/// assert!(folder.is_primary);
/// let primary = DefaultDomain::find_primary(&mut conn, &tenant_id)?.ok_or("no primary")?;
/// assert_eq!(primary.id, folder.id); // acme.example.com is no longer primary
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn add_domain<D: DomainModel>(
    conn: &mut PgConnection,
    tenant_id: &D::TenantId,
    new: NewDomain,
) -> Result<D> {
    let new = new.normalized()?;
    conn.transaction(|conn| {
        let has_primary = D::find_primary(conn, tenant_id)?.is_some();
        let is_primary = new.is_primary || !has_primary;
        let row = NewDomain {
            is_primary,
            redirect_to_primary: new.redirect_to_primary && !is_primary,
            ..new.clone()
        };
        if is_primary && has_primary {
            D::demote_primaries(conn, tenant_id)?;
        }
        // A savepoint, so that the route can be looked up after a unique violation.
        match conn.transaction(|conn| D::insert_new(conn, tenant_id, &row)) {
            Ok(route) => Ok(route),
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)) => {
                match D::find_route(conn, &row.domain, row.folder.as_deref())? {
                    Some(existing) => Err(Error::DomainTaken {
                        domain: row.domain.clone(),
                        folder: row.folder.clone(),
                        tenant_id: existing.tenant_id_string(),
                    }),
                    None => Err(Error::from(DieselError::DatabaseError(
                        DatabaseErrorKind::UniqueViolation,
                        info,
                    ))),
                }
            }
            Err(e) => Err(Error::from(e)),
        }
    })
}

/// Makes `route` its tenant's primary route: demotes the others and clears its
/// `redirect_to_primary`, in one transaction. Returns the updated route.
///
/// # Errors
///
/// [`Error::Database`].
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database().models().tenant("acme", &["acme.example.com", "example.com/acme"]); let database_url = db.url();
/// use diesel::{Connection, PgConnection};
/// use pgschemas_diesel::models::{DomainModel, TenantModel, set_primary_domain};
/// use pgschemas_diesel::models::{DefaultDomain, DefaultTenant};
///
/// let mut conn = PgConnection::establish(database_url)?;
/// let acme = DefaultTenant::find_by_schema_name(&mut conn, "acme")?.ok_or("no tenant acme")?;
/// let routes = DefaultDomain::load_for_tenant(&mut conn, &acme.id)?; // the primary first
/// let last = routes.last().ok_or("no routes")?;
/// let primary = set_primary_domain(&mut conn, last)?;
/// assert!(primary.is_primary && !primary.redirect_to_primary);
/// assert_eq!(primary.folder.as_deref(), Some("acme"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn set_primary_domain<D: DomainModel>(conn: &mut PgConnection, route: &D) -> Result<D> {
    conn.transaction(|conn| {
        D::demote_primaries(conn, route.tenant_id())?;
        Ok(route.set_flags(conn, true, false)?)
    })
}

/// The tenant's primary route, or `None` when it has no routes or none is primary.
///
/// # Errors
///
/// [`Error::Database`].
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database().models().tenant("acme", &["acme.example.com"]); let database_url = db.url();
/// use diesel::{Connection, PgConnection};
/// use pgschemas_diesel::models::{DomainModel, TenantModel, primary_domain};
/// use pgschemas_diesel::models::{DefaultDomain, DefaultTenant};
///
/// let mut conn = PgConnection::establish(database_url)?;
/// let acme = DefaultTenant::find_by_schema_name(&mut conn, "acme")?.ok_or("no tenant acme")?;
/// let primary = primary_domain::<DefaultDomain>(&mut conn, &acme.id)?.ok_or("no primary route")?;
/// assert_eq!(primary.absolute_url("/login"), "//acme.example.com/login");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn primary_domain<D: DomainModel>(
    conn: &mut PgConnection,
    tenant_id: &D::TenantId,
) -> Result<Option<D>> {
    Ok(D::find_primary(conn, tenant_id)?)
}

/// The protocol-relative URL of `path` on a route, exactly as django-pgschemas builds it:
/// `"//" + "/".join([domain, folder?, path]).replace("//", "/")`.
///
/// ```
/// use pgschemas_diesel::models::absolute_url;
///
/// assert_eq!(absolute_url("tenants.localhost", None, ""), "//tenants.localhost/");
/// assert_eq!(absolute_url("tenants.localhost", Some("tenant1"), "/some/path/"), "//tenants.localhost/tenant1/some/path/");
/// ```
pub fn absolute_url(domain: &str, folder: Option<&str>, path: &str) -> String {
    let mut parts = vec![domain];
    if let Some(folder) = folder.filter(|f| !f.is_empty()) {
        parts.push(folder);
    }
    parts.push(path);
    format!("//{}", parts.join("/").replace("//", "/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// django-pgschemas `sandbox/tests/routing/test_models.py`, `test_absolute_url`.
    #[test]
    fn absolute_url_table() {
        let domain = "tenants.localhost";
        for (folder, path, expected) in [
            (None, "", "//tenants.localhost/"),
            (Some(""), "", "//tenants.localhost/"),
            (Some("tenant1"), "", "//tenants.localhost/tenant1/"),
            (
                Some("tenant1"),
                "some/path",
                "//tenants.localhost/tenant1/some/path",
            ),
            (
                Some("tenant1"),
                "/some/path",
                "//tenants.localhost/tenant1/some/path",
            ),
            (
                Some("tenant1"),
                "/some/path/",
                "//tenants.localhost/tenant1/some/path/",
            ),
            (None, "/some/path", "//tenants.localhost/some/path"),
        ] {
            assert_eq!(
                absolute_url(domain, folder, path),
                expected,
                "{folder:?} {path:?}"
            );
        }
    }

    #[test]
    fn routes_are_normalized_or_refused() {
        let n = NewDomain::new("  Tenants.LOCALHOST ")
            .folder("")
            .normalized()
            .unwrap();
        assert_eq!(n.domain, "tenants.localhost");
        assert_eq!(n.folder, None);
        let n = NewDomain {
            folder: Some(String::new()),
            ..NewDomain::new("a.b")
        }
        .normalized()
        .unwrap();
        assert_eq!(n.folder, None);
        let n = NewDomain::new("XN--Bcher-KVA.example.")
            .folder("a.b~c")
            .normalized()
            .unwrap();
        assert_eq!(n.domain, "xn--bcher-kva.example");
        assert_eq!(n.folder.as_deref(), Some("a.b~c"));

        for (route, needle) in [
            (NewDomain::new(""), "empty"),
            (NewDomain::new("a".repeat(254)), "longer than 253"),
            (NewDomain::new("https://a.com"), "':'"),
            (NewDomain::new("a.com:8000"), "':'"),
            (NewDomain::new("a.com/x"), "'/'"),
            (NewDomain::new("www.a.com"), "www."),
            (NewDomain::new("a.com").folder("x/y"), "'/'"),
            (NewDomain::new("bücher.example"), "xn--"),
            (NewDomain::new("ws_tenant3.localhost"), "'_'"),
            (NewDomain::new("a.com").folder("acmé"), "'é'"),
            (NewDomain::new("a.com").folder(".."), "`..`"),
        ] {
            let err = route.normalized().unwrap_err();
            assert!(matches!(err, Error::InvalidDomain { .. }), "{err}");
            assert!(err.to_string().contains(needle), "{err}");
        }
    }
}
