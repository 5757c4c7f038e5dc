//! What the crate needs to know about dynamic tenants and their routes.
//!
//! The [`Catalog`] trait is read by routing, the migrator, `doctor` and the CLI; its rows are
//! [`TenantRecord`]s and [`DomainRecord`]s, a row that cannot be used is an [`InvalidRow`]
//! (of a [`RowKind`]), and [`NoTenants`] is the catalog of an application with static tenants
//! only. [`models::ModelCatalog`](crate::models::ModelCatalog) builds one from your Diesel
//! models. See the guide's "Models and derives" section.

use std::collections::HashMap;
use std::fmt;

use diesel::PgConnection;

use crate::domain::route_label;
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

/// Which table a [`InvalidRow`] is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum RowKind {
    /// A row of the tenant model.
    Tenant,
    /// A row of the domain model.
    Domain,
}

impl fmt::Display for RowKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tenant => "tenant",
            Self::Domain => "domain",
        })
    }
}

/// A row of the tenant or domain table that cannot be used: a tenant whose stored schema
/// name is not valid, a domain whose host or folder routing could never match, a domain of
/// such a tenant (or of no tenant), a row that clashes with the configuration or another row.
///
/// One bad row never stops the others: routing, the [`Migrator`](crate::migrate::Migrator), the CLI
/// and [`doctor`](crate::doctor::doctor) leave it out and report it (the
/// [`RouteOptions::on_error`](crate::routing::RouteOptions::on_error) callback receives it as
/// [`Error::InvalidRow`](crate::Error::InvalidRow), a [`MigrationReport`](crate::migrate::MigrationReport)
/// lists it in `invalid_rows`, `doctor` has an `invalid-rows` finding). `Display` is one line
/// that names the row and says why it was left out.
///
/// ```
/// use pgschemas_diesel::catalog::{InvalidRow, RowKind};
///
/// let row = InvalidRow::tenant("3", "Bad Name", r#"invalid schema name "Bad Name": it has a space"#);
/// assert_eq!(row.kind, RowKind::Tenant);
/// assert_eq!(
///     row.to_string(),
///     r#"tenant "3" left out: invalid schema name "Bad Name": it has a space"#,
/// );
/// let route = InvalidRow::domain("3", "bad.example.com", "its tenant is left out");
/// assert_eq!(route.to_string(), r#"domain "bad.example.com" of tenant "3" left out: its tenant is left out"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct InvalidRow {
    /// The table the row is in.
    pub kind: RowKind,
    /// The tenant's key as text ([`TenantRecord::id`]); for a domain row, its tenant's key.
    pub tenant_id: String,
    /// What names the row, as stored: a tenant's schema name, a domain's route (`domain` or
    /// `domain/folder`).
    pub value: String,
    /// Why it was left out, in lower case; it names the offending value.
    pub reason: String,
}

impl InvalidRow {
    /// A tenant row, by its key, its schema name as stored and why it is left out.
    ///
    /// ```
    /// let row = pgschemas_diesel::catalog::InvalidRow::tenant("3", "Bad Name", "it has a space");
    /// assert_eq!(row.value, "Bad Name");
    /// ```
    pub fn tenant(
        id: impl Into<String>,
        schema: impl Into<String>,
        why: impl Into<String>,
    ) -> Self {
        Self::new(RowKind::Tenant, id.into(), schema.into(), why.into())
    }

    /// A domain row, by its tenant's key, its route (`domain` or `domain/folder`) and why it
    /// is left out.
    ///
    /// ```
    /// let row = pgschemas_diesel::catalog::InvalidRow::domain("3", "example.com/a b", "bad folder");
    /// assert_eq!(row.tenant_id, "3");
    /// ```
    pub fn domain(id: impl Into<String>, route: impl Into<String>, why: impl Into<String>) -> Self {
        Self::new(RowKind::Domain, id.into(), route.into(), why.into())
    }

    fn new(kind: RowKind, tenant_id: String, value: String, reason: String) -> Self {
        Self {
            kind,
            tenant_id,
            value,
            reason,
        }
    }
}

impl fmt::Display for InvalidRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (id, value, reason) = (&self.tenant_id, &self.value, &self.reason);
        // A tenant's reason names its schema name already.
        match self.kind {
            RowKind::Tenant => write!(f, "tenant {id:?} left out: {reason}"),
            RowKind::Domain => write!(f, "domain {value:?} of tenant {id:?} left out: {reason}"),
        }
    }
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
