//! What the crate needs to know about dynamic tenants and their routes.
//!
//! The [`Catalog`] trait is read by routing, the migrator, `doctor` and the CLI; its rows are
//! [`TenantRecord`]s and [`DomainRecord`]s, a row that cannot be used is an [`InvalidRow`]
//! (of a [`RowKind`]), and [`NoTenants`] is the catalog of an application with static tenants
//! only. [`models::ModelCatalog`](crate::models::ModelCatalog) builds one from your Diesel
//! models. See the guide's "Models and derives" section.

use std::collections::HashMap;

use diesel::PgConnection;

use crate::domain::route_label;
use crate::error::Result;
pub use crate::error::{InvalidRow, RowKind};
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
/// They read [`tenant_rows`](Self::tenant_rows), so that one bad row is left out and
/// reported rather than a reason to stop.
pub trait Catalog: Send + Sync + 'static {
    /// Every dynamic tenant, in any order.
    ///
    /// # Errors
    ///
    /// [`Error::Database`](crate::Error::Database), or
    /// [`Error::InvalidSchemaName`](crate::Error::InvalidSchemaName) for a stored name that
    /// is not valid (use [`tenant_rows`](Self::tenant_rows) to have the others anyway).
    fn tenants(&self, conn: &mut PgConnection) -> Result<Vec<TenantRecord>>;

    /// Every dynamic tenant row, in any order: a record, or the [`InvalidRow`] a row that
    /// cannot be used becomes. What routing, migrations, the CLI and `doctor` read.
    ///
    /// The default wraps [`tenants`](Self::tenants) (so one bad row fails the whole read);
    /// [`ModelCatalog`](crate::models::ModelCatalog) returns each bad row as an [`InvalidRow`].
    ///
    /// # Errors
    ///
    /// [`Error::Database`](crate::Error::Database): the rows could not be read at all.
    ///
    /// ```
    /// use pgschemas_diesel::catalog::{Catalog, NoTenants};
    /// # fn demo(conn: &mut diesel::PgConnection) -> pgschemas_diesel::Result<()> {
    /// for row in NoTenants.tenant_rows(conn)? {
    ///     match row {
    ///         Ok(tenant) => println!("{}", tenant.schema),
    ///         Err(bad) => eprintln!("{bad}"),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    fn tenant_rows(
        &self,
        conn: &mut PgConnection,
    ) -> Result<Vec<std::result::Result<TenantRecord, InvalidRow>>> {
        Ok(self.tenants(conn)?.into_iter().map(Ok).collect())
    }

    /// Every domain route, in any order; empty when there is no domain model.
    ///
    /// # Errors
    ///
    /// [`Error::Database`](crate::Error::Database).
    fn domains(&self, conn: &mut PgConnection) -> Result<Vec<DomainRecord>>;

    /// The tables (`schema`, `table`) whose changes alter tenants or routes; a table declared
    /// without a schema is reported in `shared`, the caller's shared schema.
    fn watched_tables(&self, shared: &SchemaName) -> Vec<(String, String)>;
}

/// A catalog with no dynamic tenants: static tenants only.
///
/// ```
/// use pgschemas_diesel::catalog::{Catalog, NoTenants};
/// use pgschemas_diesel::SchemaName;
///
/// let shared = SchemaName::new("public")?;
/// assert!(NoTenants.watched_tables(&shared).is_empty());
/// # Ok::<(), pgschemas_diesel::Error>(())
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

    fn watched_tables(&self, _shared: &SchemaName) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// One read of a catalog: the usable tenants and the domains of those tenants, and the rows
/// left out (tenant rows that are not valid, and the domains of those tenants), in the
/// catalog's order.
#[derive(Debug, Default)]
pub(crate) struct CatalogRows {
    pub(crate) tenants: Vec<TenantRecord>,
    pub(crate) domains: Vec<DomainRecord>,
    pub(crate) invalid: Vec<InvalidRow>,
}

impl CatalogRows {
    /// Reads `catalog`'s tenants and domains on `conn`; a bad row is left out and listed in
    /// `invalid`, never an error.
    ///
    /// # Errors
    ///
    /// The catalog's error when its rows cannot be read at all.
    pub(crate) fn read(catalog: &dyn Catalog, conn: &mut PgConnection) -> Result<Self> {
        let mut rows = Self::default();
        let mut left_out: HashMap<String, String> = HashMap::new();
        for row in catalog.tenant_rows(conn)? {
            match row {
                Ok(tenant) => rows.tenants.push(tenant),
                Err(bad) => {
                    left_out.insert(bad.tenant_id.clone(), bad.value.clone());
                    rows.invalid.push(bad);
                }
            }
        }
        for domain in catalog.domains(conn)? {
            match left_out.get(&domain.tenant_id) {
                Some(schema_name) => rows.invalid.push(InvalidRow::domain(
                    domain.tenant_id.clone(),
                    route_label(&domain.domain, domain.folder.as_deref()),
                    format!("its tenant's row is left out (schema name {schema_name:?})"),
                )),
                None => rows.domains.push(domain),
            }
        }
        Ok(rows)
    }

    /// The tenant rows left out.
    pub(crate) fn invalid_tenants(&self) -> impl Iterator<Item = &InvalidRow> {
        self.invalid.iter().filter(|r| r.kind == RowKind::Tenant)
    }
}
