//! What the crate needs to know about dynamic tenants and their routes.

use diesel::PgConnection;

use crate::error::Result;
use crate::name::SchemaName;

/// A dynamic tenant as routing, migrations and the CLI see it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantRecord {
    /// The tenant's primary key, as text (header routing accepts it; messages show it).
    pub id: String,
    /// The tenant's schema.
    pub schema: SchemaName,
    /// Whether the tenant is served; a suspended tenant resolves to "suspended", never to
    /// its schema.
    pub active: bool,
}

/// A route to a dynamic tenant: a domain, optionally with a folder (the first path segment).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DomainRecord {
    /// The owning tenant's [`TenantRecord::id`].
    pub tenant_id: String,
    /// The host, lower case, without port.
    pub domain: String,
    /// The folder (first path segment) for subfolder routing; `None` for a bare domain.
    pub folder: Option<String>,
    /// Whether this is the tenant's primary route.
    pub is_primary: bool,
    /// Whether requests to this route are redirected to the tenant's primary route.
    pub redirect_to_primary: bool,
}

/// The source of dynamic tenants and their domains: the user's own tables, through
/// `#[derive(Tenant)]` / `#[derive(Domain)]`, or the ready-made default models.
///
/// Object safe: routing, the migration executor and the CLI hold an `Arc<dyn Catalog>`.
pub trait Catalog: Send + Sync + 'static {
    /// Every dynamic tenant, in any order.
    ///
    /// # Errors
    ///
    /// [`Error::Database`](crate::Error::Database), or
    /// [`Error::InvalidSchemaName`](crate::Error::InvalidSchemaName) for a stored name that
    /// is not valid.
    fn tenants(&self, conn: &mut PgConnection) -> Result<Vec<TenantRecord>>;

    /// Every domain route, in any order; empty when there is no domain model.
    ///
    /// # Errors
    ///
    /// [`Error::Database`](crate::Error::Database).
    fn domains(&self, conn: &mut PgConnection) -> Result<Vec<DomainRecord>>;

    /// The tables (`schema`, `table`) whose changes alter tenants or routes.
    fn watched_tables(&self) -> Vec<(String, String)>;
}

/// A catalog with no dynamic tenants: static tenants only.
///
/// ```
/// use pgschemas_diesel::{Catalog, NoTenants};
/// assert!(NoTenants.watched_tables().is_empty());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTenants;

impl Catalog for NoTenants {
    fn tenants(&self, _conn: &mut PgConnection) -> Result<Vec<TenantRecord>> {
        Ok(Vec::new())
    }

    fn domains(&self, _conn: &mut PgConnection) -> Result<Vec<DomainRecord>> {
        Ok(Vec::new())
    }

    fn watched_tables(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}
