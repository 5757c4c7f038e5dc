//! A [`Catalog`] over the user's tenant and domain models.

use std::fmt;
use std::marker::PhantomData;

use diesel::PgConnection;

use super::{DomainModel, TableName, TenantModel};
use crate::catalog::{Catalog, DomainRecord, InvalidRow, TenantRecord};
use crate::error::Result;
use crate::name::SchemaName;

/// The domain table of a [`ModelCatalog`], where it reads its routes: a [`DomainModel`], or
/// [`NoDomains`] for none.
///
/// Implemented for every [`DomainModel`] and for [`NoDomains`]; there is no need to implement
/// it yourself.
///
/// ```
/// use pgschemas_diesel::models::{DomainTable, NoDomains};
///
/// assert!(NoDomains::domain_table().is_none());
/// ```
pub trait DomainTable: 'static {
    /// Every route as routing sees it.
    ///
    /// # Errors
    ///
    /// [`Error::Database`](crate::Error::Database).
    fn domain_records(conn: &mut PgConnection) -> Result<Vec<DomainRecord>>;

    /// The routes' table, if any.
    fn domain_table() -> Option<TableName>;
}

impl<D: DomainModel + 'static> DomainTable for D {
    fn domain_records(conn: &mut PgConnection) -> Result<Vec<DomainRecord>> {
        Ok(D::load_all(conn)?.iter().map(D::to_record).collect())
    }

    fn domain_table() -> Option<TableName> {
        Some(D::table_name())
    }
}

/// No domain model: tenants are reached by header (or by static routes) only.
///
/// ```
/// use pgschemas_diesel::models::{ModelCatalog, NoDomains};
/// use pgschemas_diesel::models::DefaultTenant;
///
/// let catalog = ModelCatalog::<DefaultTenant, NoDomains>::new();
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct NoDomains;

impl DomainTable for NoDomains {
    fn domain_records(_conn: &mut PgConnection) -> Result<Vec<DomainRecord>> {
        Ok(Vec::new())
    }

    fn domain_table() -> Option<TableName> {
        None
    }
}

/// The [`Catalog`] of a tenant model `T` and a domain model `D` (or [`NoDomains`]): what
/// routing, the migration executor and the CLI read.
///
/// Tables that `table!` declares without a schema are reported by
/// [`watched_tables`](Catalog::watched_tables) in the shared schema: the one given with
/// [`with_shared_schema`](Self::with_shared_schema), else the one the caller passes (its
/// configuration's).
///
/// ```
/// use std::sync::Arc;
/// use pgschemas_diesel::Config;
/// use pgschemas_diesel::catalog::Catalog;
/// use pgschemas_diesel::models::{DefaultDomain, DefaultTenant, ModelCatalog};
///
/// let catalog: Arc<dyn Catalog> = Arc::new(ModelCatalog::<DefaultTenant, DefaultDomain>::new());
/// assert_eq!(
///     catalog.watched_tables(Config::default().shared_schema()),
///     [("public".to_string(), "tenants".to_string()), ("public".to_string(), "domains".to_string())],
/// );
/// ```
pub struct ModelCatalog<T, D = NoDomains> {
    shared_schema: Option<SchemaName>,
    models: PhantomData<fn() -> (T, D)>,
}

impl<T, D> ModelCatalog<T, D> {
    /// A catalog over `T` and `D`.
    ///
    /// ```
    /// use pgschemas_diesel::models::ModelCatalog;
    /// use pgschemas_diesel::models::DefaultTenant;
    ///
    /// let tenants_only = ModelCatalog::<DefaultTenant>::new();
    /// ```
    pub fn new() -> Self {
        Self {
            shared_schema: None,
            models: PhantomData,
        }
    }

    /// Reports unqualified tables in `schema` rather than the shared schema the caller passes
    /// to [`watched_tables`](Catalog::watched_tables).
    ///
    /// ```
    /// use pgschemas_diesel::SchemaName;
    /// use pgschemas_diesel::catalog::Catalog;
    /// use pgschemas_diesel::models::{DefaultTenant, ModelCatalog};
    ///
    /// let shared = SchemaName::new("shared")?;
    /// let catalog = ModelCatalog::<DefaultTenant>::new().with_shared_schema(shared.clone());
    /// // DefaultTenant's table is declared as `public.tenants`, so it stays in public.
    /// assert_eq!(catalog.watched_tables(&shared)[0].0, "public");
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn with_shared_schema(mut self, schema: SchemaName) -> Self {
        self.shared_schema = Some(schema);
        self
    }
}

impl<T, D> Default for ModelCatalog<T, D> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, D> Clone for ModelCatalog<T, D> {
    fn clone(&self) -> Self {
        Self {
            shared_schema: self.shared_schema.clone(),
            models: PhantomData,
        }
    }
}

impl<T, D> fmt::Debug for ModelCatalog<T, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelCatalog")
            .field("tenants", &std::any::type_name::<T>())
            .field("domains", &std::any::type_name::<D>())
            .field("shared_schema", &self.shared_schema)
            .finish()
    }
}

impl<T, D> Catalog for ModelCatalog<T, D>
where
    T: TenantModel + 'static,
    D: DomainTable,
{
    fn tenants(&self, conn: &mut PgConnection) -> Result<Vec<TenantRecord>> {
        T::load_all(conn)?.iter().map(T::to_record).collect()
    }

    /// Each row whose schema name is not valid is an [`InvalidRow`] naming its key and the
    /// stored name.
    fn tenant_rows(
        &self,
        conn: &mut PgConnection,
    ) -> Result<Vec<std::result::Result<TenantRecord, InvalidRow>>> {
        Ok(T::load_all(conn)?
            .iter()
            .map(|t| {
                t.to_record().map_err(|e| {
                    InvalidRow::tenant(t.id_string(), t.schema_name(), e.report().to_string())
                })
            })
            .collect())
    }

    fn domains(&self, conn: &mut PgConnection) -> Result<Vec<DomainRecord>> {
        D::domain_records(conn)
    }

    fn watched_tables(&self, shared: &SchemaName) -> Vec<(String, String)> {
        let shared = self.shared_schema.as_ref().unwrap_or(shared);
        std::iter::once(T::table_name())
            .chain(D::domain_table())
            .map(|t| t.qualified(shared.as_str()))
            .collect()
    }
}
