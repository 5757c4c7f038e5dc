//! Ready-made tenant and domain models for users who do not want their own.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};

use super::IsActive;
use super::catalog::ModelCatalog;
use super::tables::{domains, tenants};
use crate::name::SchemaName;
use crate::{Domain, Tenant};

/// The shared migrations of the default models: the `public.tenant_status` type, the
/// `public.tenants` and `public.domains` tables (route `(domain, folder)` unique, one
/// primary route per tenant, a primary never redirects), and statement-level triggers that
/// `NOTIFY pgschemas_routes` when either table changes (see [`ROUTES_CHANNEL`](super::ROUTES_CHANNEL)).
///
/// Run them on the shared schema before anything else. The default models assume the
/// shared schema is `public`: their tables and type are created and queried as `public.*`.
/// With another shared schema, declare your own models with `#[derive(Tenant)]` and
/// `#[derive(Domain)]`.
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database(); let database_url = db.url();
/// use diesel::{Connection, PgConnection};
/// use diesel_migrations::MigrationHarness;
/// use pgschemas_diesel::models::TenantModel;
/// use pgschemas_diesel::models::{DefaultTenant, SHARED_MIGRATIONS};
///
/// let mut conn = PgConnection::establish(database_url)?;
/// conn.run_pending_migrations(SHARED_MIGRATIONS)?;
/// assert!(!conn.has_pending_migration(SHARED_MIGRATIONS)?);
/// assert!(DefaultTenant::load_all(&mut conn)?.is_empty());
/// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
/// ```
pub const SHARED_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/shared");

/// Whether a default tenant is served: `public.tenant_status`.
///
/// A suspended tenant's [`TenantRecord::active`](crate::catalog::TenantRecord::active) is `false`.
///
/// ```
/// use pgschemas_diesel::models::IsActive;
/// use pgschemas_diesel::models::TenantStatus;
///
/// assert!(TenantStatus::Active.is_active());
/// assert!(!TenantStatus::Suspended.is_active());
/// assert_eq!(TenantStatus::default(), TenantStatus::Active);
/// ```
#[derive(diesel_derive_enum::DbEnum, Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[db_enum(existing_type_path = "crate::models::tables::sql_types::TenantStatus")]
pub enum TenantStatus {
    /// Served normally.
    #[default]
    Active,
    /// Kept, but not served.
    Suspended,
}

impl IsActive for TenantStatus {
    fn is_active(&self) -> bool {
        matches!(self, Self::Active)
    }
}

/// A row of `public.tenants`, the default tenant model.
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database().models(); let database_url = db.url();
/// use diesel::{Connection, PgConnection};
/// use pgschemas_diesel::SchemaName;
/// use pgschemas_diesel::models::TenantModel;
/// use pgschemas_diesel::models::{DefaultTenant, NewTenant};
///
/// let mut conn = PgConnection::establish(database_url)?;
/// let acme = DefaultTenant::insert(&mut conn, &NewTenant::new(&SchemaName::new("acme")?, "Acme"))?;
/// assert_eq!(acme.schema_name, "acme");
/// assert!(acme.is_active());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable, Tenant)]
#[diesel(table_name = tenants, check_for_backend(diesel::pg::Pg))]
#[tenant(status = status)]
pub struct DefaultTenant {
    /// The key.
    pub id: i64,
    /// The tenant's schema.
    pub schema_name: String,
    /// A display name.
    pub name: String,
    /// Whether the tenant is served.
    pub status: TenantStatus,
    /// When the row was created.
    pub created_at: DateTime<Utc>,
}

impl DefaultTenant {
    /// Sets the tenant's status (suspends or reactivates it) and returns the updated row.
    ///
    /// # Errors
    ///
    /// Diesel's error.
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database().models().tenant("acme", &[]); let database_url = db.url();
    /// use diesel::{Connection, PgConnection};
    /// use pgschemas_diesel::models::TenantModel;
    /// use pgschemas_diesel::models::{DefaultTenant, TenantStatus};
    ///
    /// let mut conn = PgConnection::establish(database_url)?;
    /// let acme = DefaultTenant::find_by_schema_name(&mut conn, "acme")?.ok_or("no tenant acme")?;
    /// let acme = acme.set_status(&mut conn, TenantStatus::Suspended)?;
    /// assert!(!acme.is_active());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_status(&self, conn: &mut PgConnection, status: TenantStatus) -> QueryResult<Self> {
        diesel::update(self)
            .set(tenants::status.eq(status))
            .returning(Self::as_returning())
            .get_result(conn)
    }
}

/// A new row of `public.tenants`, for [`TenantModel::insert`](crate::models::TenantModel::insert).
///
/// ```
/// use pgschemas_diesel::SchemaName;
/// use pgschemas_diesel::models::{NewTenant, TenantStatus};
///
/// let new = NewTenant::new(&SchemaName::new("acme")?, "Acme").status(TenantStatus::Suspended);
/// assert_eq!(new.schema_name, "acme");
/// # Ok::<(), pgschemas_diesel::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Insertable)]
#[diesel(table_name = tenants, check_for_backend(diesel::pg::Pg))]
pub struct NewTenant {
    /// The tenant's schema; [`Config::check_tenant_name`](crate::Config::check_tenant_name)
    /// validates a name and checks it against the configuration.
    pub schema_name: String,
    /// A display name.
    pub name: String,
    /// Whether the tenant is served.
    pub status: TenantStatus,
}

impl NewTenant {
    /// An active tenant in schema `schema`.
    ///
    /// ```
    /// let new = pgschemas_diesel::models::NewTenant::new(&pgschemas_diesel::SchemaName::new("acme")?, "Acme");
    /// assert_eq!(new.name, "Acme");
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn new(schema: &SchemaName, name: impl Into<String>) -> Self {
        Self {
            schema_name: schema.as_str().to_owned(),
            name: name.into(),
            status: TenantStatus::Active,
        }
    }

    /// Sets the status.
    ///
    /// ```
    /// use pgschemas_diesel::models::{NewTenant, TenantStatus};
    /// let new = NewTenant::new(&pgschemas_diesel::SchemaName::new("acme")?, "Acme").status(TenantStatus::Suspended);
    /// assert_eq!(new.status, TenantStatus::Suspended);
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn status(mut self, status: TenantStatus) -> Self {
        self.status = status;
        self
    }
}

/// A row of `public.domains`, the default domain model. Add routes with
/// [`add_domain`](crate::models::add_domain), which applies the domain rules.
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database().models().tenant("acme", &[]); let database_url = db.url();
/// use diesel::{Connection, PgConnection};
/// use pgschemas_diesel::models::{DomainModel, NewDomain, TenantModel, add_domain};
/// use pgschemas_diesel::models::{DefaultDomain, DefaultTenant};
///
/// let mut conn = PgConnection::establish(database_url)?;
/// let acme = DefaultTenant::find_by_schema_name(&mut conn, "acme")?.ok_or("no tenant acme")?;
/// let route: DefaultDomain = add_domain(&mut conn, &acme.id, NewDomain::new("acme.example.com"))?;
/// assert_eq!(route.absolute_url("/login"), "//acme.example.com/login");
/// assert!(route.is_primary); // its first route
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(
    Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable, Associations, Domain,
)]
#[diesel(table_name = domains, belongs_to(DefaultTenant, foreign_key = tenant_id), check_for_backend(diesel::pg::Pg))]
pub struct DefaultDomain {
    /// The key.
    pub id: i64,
    /// The owning tenant.
    pub tenant_id: i64,
    /// The host, lower case.
    pub domain: String,
    /// The first path segment for subfolder routing, `None` for the bare domain.
    pub folder: Option<String>,
    /// Whether this is the tenant's primary route.
    pub is_primary: bool,
    /// Whether requests are redirected to the primary route.
    pub redirect_to_primary: bool,
}

/// The catalog of the default models, for routing, migrations and the CLI.
///
/// ```
/// use std::sync::Arc;
/// use pgschemas_diesel::Config;
/// use pgschemas_diesel::catalog::Catalog;
///
/// let catalog: Arc<dyn Catalog> = Arc::new(pgschemas_diesel::models::default_catalog());
/// assert_eq!(catalog.watched_tables(Config::default().shared_schema()).len(), 2);
/// ```
pub fn default_catalog() -> ModelCatalog<DefaultTenant, DefaultDomain> {
    ModelCatalog::new()
}
