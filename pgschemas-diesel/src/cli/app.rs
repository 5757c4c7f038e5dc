//! What the CLI knows about the user's application: the bundle its binary hands over.

use std::fmt;
use std::sync::Arc;

use diesel::PgConnection;
use diesel::migration::{Migration, MigrationSource};
use diesel::pg::Pg;

use crate::catalog::{Catalog, NoTenants};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::models::{DefaultDomain, DefaultTenant, NewDomain, NewTenant, TenantModel};
use crate::name::SchemaName;
use crate::provision::Provisioner;

/// A migration source shared between the migrator, the provisioner and `doctor`: an
/// [`Arc`]'d source that is itself a [`MigrationSource`], so that one embedded set serves
/// every command.
#[derive(Clone)]
pub(crate) struct SharedMigrations(Arc<dyn MigrationSource<Pg> + Send + Sync>);

impl SharedMigrations {
    fn new<M>(migrations: M) -> Self
    where
        M: MigrationSource<Pg> + Send + Sync + 'static,
    {
        Self(Arc::new(migrations))
    }
}

impl MigrationSource<Pg> for SharedMigrations {
    fn migrations(&self) -> diesel::migration::Result<Vec<Box<dyn Migration<Pg>>>> {
        self.0.migrations()
    }
}

/// Everything the management CLI needs to know about an application: where the database
/// is, the [`Config`] (shared schema, static tenants, clone reference), the [`Catalog`] of
/// dynamic tenants, the shared and tenant migrations, and how to write and delete a tenant's
/// rows (for `create-tenant` and `drop-tenant`).
///
/// Build it in your own binary and hand it to [`run`](super::run):
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database(); let database_url = db.url();
/// use diesel_migrations::{EmbeddedMigrations, embed_migrations};
/// use pgschemas_diesel::cli::{self, App, Outcome};
/// use pgschemas_diesel::{Config, StaticTenant};
///
/// // In your crate: embed_migrations!("migrations/tenant")
/// const TENANT_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
///
/// fn app() -> App {
///     let config = Config::builder()
///         .static_tenant(StaticTenant::builder("www").domain("localhost"))
///         .clone_reference("sample")
///         .build()
///         .expect("a valid configuration");
///     // The ready-made models: catalog, shared migrations and tenant rows.
///     App::builder(config, TENANT_MIGRATIONS).default_models().build()
/// }
///
/// // Your binary: fn main() -> std::process::ExitCode { cli::run(app()) }
/// // Here, `manage migrate` with the command line given:
/// let (mut out, mut err) = (Vec::new(), Vec::new());
/// let args = ["manage", "migrate", "--database-url", database_url];
/// let outcome = cli::run_from(&app(), args, &mut out, &mut err);
/// assert_eq!(outcome, Outcome::Success, "{}", String::from_utf8_lossy(&err));
/// ```
#[derive(Clone)]
pub struct App {
    pub(crate) database_url: Option<String>,
    pub(crate) config: Config,
    pub(crate) catalog: Arc<dyn Catalog>,
    pub(crate) shared_migrations: Option<SharedMigrations>,
    pub(crate) tenant_migrations: SharedMigrations,
    pub(crate) rows: Option<Arc<dyn TenantRows>>,
    pub(crate) provisioner: Option<Provisioner>,
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("database_url", &self.database_url.as_ref().map(|_| "<set>"))
            .field("config", &self.config)
            .field("shared_migrations", &self.shared_migrations.is_some())
            .field("rows", &self.rows.is_some())
            .field("provisioner", &self.provisioner)
            .finish_non_exhaustive()
    }
}

impl App {
    /// Starts a bundle for `config` whose tenant schemas (static tenants that migrate, the
    /// clone reference, dynamic tenants) take `tenant_migrations`. Without more, there are no
    /// dynamic tenants ([`NoTenants`]) and the shared schema is not migrated.
    ///
    /// ```
    /// use diesel_migrations::{EmbeddedMigrations, embed_migrations};
    /// use pgschemas_diesel::Config;
    /// use pgschemas_diesel::cli::App;
    ///
    /// const TENANT_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
    /// let app = App::builder(Config::default(), TENANT_MIGRATIONS).build();
    /// assert_eq!(app.config().shared_schema().as_str(), "public");
    /// ```
    pub fn builder<M>(config: Config, tenant_migrations: M) -> AppBuilder
    where
        M: MigrationSource<Pg> + Send + Sync + 'static,
    {
        AppBuilder {
            inner: App {
                database_url: None,
                config,
                catalog: Arc::new(NoTenants),
                shared_migrations: None,
                tenant_migrations: SharedMigrations::new(tenant_migrations),
                rows: None,
                provisioner: None,
            },
        }
    }

    /// The configuration.
    ///
    /// ```
    /// # use pgschemas_diesel::{Config, cli::App};
    /// # const M: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("../examples/migrations/tenant");
    /// let app = App::builder(Config::default(), M).build();
    /// assert!(app.config().static_tenants().is_empty());
    /// ```
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The provisioner `create-tenant`, `drop-tenant` and `create-reference` use: the one
    /// given to [`AppBuilder::provisioner`], else one with the defaults.
    pub(crate) fn provisioner(&self) -> Result<Provisioner> {
        match &self.provisioner {
            Some(p) => Ok(p.clone()),
            None => {
                Provisioner::builder(self.config.clone(), self.tenant_migrations.clone()).build()
            }
        }
    }
}

/// Builds a [`App`]; see [`App::builder`].
///
/// ```
/// use pgschemas_diesel::{Config, cli::App};
/// # const M: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("../examples/migrations/tenant");
/// let builder = App::builder(Config::default(), M).default_models();
/// let app = builder.database_url("postgres://postgres@127.0.0.1/app").build();
/// ```
#[must_use]
pub struct AppBuilder {
    inner: App,
}

impl fmt::Debug for AppBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AppBuilder").field(&self.inner).finish()
    }
}

impl AppBuilder {
    /// Uses the ready-made models of [`crate::models`]: their catalog
    /// ([`default_catalog`](crate::models::default_catalog)), their shared migrations
    /// ([`SHARED_MIGRATIONS`](crate::models::SHARED_MIGRATIONS)) and [`DefaultModelRows`] to
    /// write and delete tenants.
    ///
    /// ```
    /// # use pgschemas_diesel::{Config, cli::App};
    /// # const M: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("../examples/migrations/tenant");
    /// let app = App::builder(Config::default(), M).default_models().build();
    /// ```
    pub fn default_models(self) -> Self {
        self.catalog(crate::models::default_catalog())
            .shared_migrations(crate::models::SHARED_MIGRATIONS)
            .tenant_rows(DefaultModelRows)
    }

    /// The catalog of dynamic tenants: your models through
    /// [`ModelCatalog`](crate::models::ModelCatalog), or your own [`Catalog`].
    ///
    /// ```
    /// use pgschemas_diesel::{Config, cli::App};
    /// use pgschemas_diesel::models::ModelCatalog;
    /// use pgschemas_diesel::models::{DefaultDomain, DefaultTenant};
    /// # const M: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("../examples/migrations/tenant");
    /// let app = App::builder(Config::default(), M)
    ///     .catalog(ModelCatalog::<DefaultTenant, DefaultDomain>::new())
    ///     .build();
    /// ```
    pub fn catalog<C: Catalog>(mut self, catalog: C) -> Self {
        self.inner.catalog = Arc::new(catalog);
        self
    }

    /// The catalog, already shared.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use pgschemas_diesel::{Config, cli::App};
    /// use pgschemas_diesel::catalog::{Catalog, NoTenants};
    /// # const M: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("../examples/migrations/tenant");
    /// let catalog: Arc<dyn Catalog> = Arc::new(NoTenants);
    /// let app = App::builder(Config::default(), M).shared_catalog(catalog).build();
    /// ```
    pub fn shared_catalog(mut self, catalog: Arc<dyn Catalog>) -> Self {
        self.inner.catalog = catalog;
        self
    }

    /// The migrations of the shared schema (your shared tables, and the tenant tables when
    /// they are yours). `migrate` runs them first; `create-tenant` and `create-reference`
    /// apply them first when some are pending.
    ///
    /// ```
    /// # use pgschemas_diesel::{Config, cli::App};
    /// # const M: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("../examples/migrations/tenant");
    /// let app = App::builder(Config::default(), M)
    ///     .shared_migrations(pgschemas_diesel::models::SHARED_MIGRATIONS)
    ///     .build();
    /// ```
    pub fn shared_migrations<M>(mut self, migrations: M) -> Self
    where
        M: MigrationSource<Pg> + Send + Sync + 'static,
    {
        self.inner.shared_migrations = Some(SharedMigrations::new(migrations));
        self
    }

    /// How `create-tenant` writes a tenant's rows and `drop-tenant` deletes them. Without
    /// it, both commands refuse with a message saying so.
    ///
    /// ```
    /// # use pgschemas_diesel::{Config, cli::{DefaultModelRows, App}};
    /// # const M: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("../examples/migrations/tenant");
    /// let app = App::builder(Config::default(), M).tenant_rows(DefaultModelRows).build();
    /// ```
    pub fn tenant_rows<R: TenantRows>(mut self, rows: R) -> Self {
        self.inner.rows = Some(Arc::new(rows));
        self
    }

    /// The provisioner to create and drop tenants with, for its hooks and settings
    /// (`after_sync`, cloning, ...). Build it with the same configuration and tenant
    /// migrations. Without it, the CLI uses [`Provisioner::builder`]'s defaults.
    ///
    /// ```
    /// use pgschemas_diesel::{Config, cli::App};
    /// use pgschemas_diesel::provision::Provisioner;
    /// # const M: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("../examples/migrations/tenant");
    /// let config = Config::default();
    /// let provisioner = Provisioner::builder(config.clone(), M)
    ///     .after_sync(|_conn, schema| { println!("{schema} is ready"); Ok(()) })
    ///     .build()?;
    /// let app = App::builder(config, M).provisioner(provisioner).build();
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn provisioner(mut self, provisioner: Provisioner) -> Self {
        self.inner.provisioner = Some(provisioner);
        self
    }

    /// The database to use when neither `--database-url` nor the `DATABASE_URL` environment
    /// variable gives one.
    ///
    /// ```
    /// # use pgschemas_diesel::{Config, cli::App};
    /// # const M: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("../examples/migrations/tenant");
    /// let app = App::builder(Config::default(), M)
    ///     .database_url("postgres://postgres@127.0.0.1/app")
    ///     .build();
    /// ```
    pub fn database_url(mut self, url: impl Into<String>) -> Self {
        self.inner.database_url = Some(url.into());
        self
    }

    /// Finishes the bundle.
    ///
    /// ```
    /// # use pgschemas_diesel::{Config, cli::App};
    /// # const M: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("../examples/migrations/tenant");
    /// let app = App::builder(Config::default(), M).build();
    /// ```
    pub fn build(self) -> App {
        self.inner
    }
}

/// A tenant `create-tenant` is about to create: its schema, display name and routes.
///
/// ```
/// use pgschemas_diesel::SchemaName;
/// use pgschemas_diesel::models::NewDomain;
/// use pgschemas_diesel::cli::NewTenantRows;
///
/// let new = NewTenantRows::new(SchemaName::new("acme")?)
///     .name("Acme Inc.")
///     .domain(NewDomain::new("acme.localhost"));
/// assert_eq!(new.display_name(), "Acme Inc.");
/// # Ok::<(), pgschemas_diesel::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewTenantRows {
    /// The tenant's schema, already checked against the configuration.
    pub schema: SchemaName,
    /// The display name given with `--name`, if any.
    pub name: Option<String>,
    /// The routes given with `--domain` (and `--folder`), the first one primary.
    pub domains: Vec<NewDomain>,
}

impl NewTenantRows {
    /// A tenant in `schema` with no name and no routes.
    ///
    /// ```
    /// let new = pgschemas_diesel::cli::NewTenantRows::new(pgschemas_diesel::SchemaName::new("acme")?);
    /// assert!(new.domains.is_empty());
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn new(schema: SchemaName) -> Self {
        Self {
            schema,
            name: None,
            domains: Vec::new(),
        }
    }

    /// Sets the display name.
    ///
    /// ```
    /// let new = pgschemas_diesel::cli::NewTenantRows::new(pgschemas_diesel::SchemaName::new("acme")?).name("Acme");
    /// assert_eq!(new.name.as_deref(), Some("Acme"));
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Adds a route.
    ///
    /// ```
    /// use pgschemas_diesel::models::NewDomain;
    /// let new = pgschemas_diesel::cli::NewTenantRows::new(pgschemas_diesel::SchemaName::new("acme")?)
    ///     .domain(NewDomain::new("example.com").folder("acme"));
    /// assert_eq!(new.domains.len(), 1);
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn domain(mut self, domain: NewDomain) -> Self {
        self.domains.push(domain);
        self
    }

    /// The display name, or the schema name when none was given.
    ///
    /// ```
    /// let new = pgschemas_diesel::cli::NewTenantRows::new(pgschemas_diesel::SchemaName::new("acme")?);
    /// assert_eq!(new.display_name(), "acme");
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(self.schema.as_str())
    }
}

/// How the CLI writes and deletes a dynamic tenant's rows (the tenant row and its routes in
/// your models). Both methods run inside the provisioning transaction, with the neutral
/// path, so a failure anywhere leaves nothing behind.
///
/// [`DefaultModelRows`] implements it for the ready-made models; implement it for your own:
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database()
/// #     .sql("create table orgs (id bigserial primary key, slug text not null unique, title text not null)");
/// # let mut conn = db.connect();
/// use diesel::prelude::*;
/// use pgschemas_diesel::cli::{NewTenantRows, TenantRows};
/// use pgschemas_diesel::{Result, SchemaName};
///
/// diesel::table! { orgs (id) { id -> Int8, slug -> Text, title -> Text } }
///
/// struct OrgRows;
///
/// impl TenantRows for OrgRows {
///     fn create(&self, conn: &mut PgConnection, new: &NewTenantRows) -> Result<String> {
///         let id: i64 = diesel::insert_into(orgs::table)
///             .values((orgs::slug.eq(new.schema.as_str()), orgs::title.eq(new.display_name())))
///             .returning(orgs::id)
///             .get_result(conn)?;
///         Ok(id.to_string())
///     }
///
///     fn delete(&self, conn: &mut PgConnection, schema: &SchemaName) -> Result<Option<String>> {
///         let id: Option<i64> = diesel::delete(orgs::table.filter(orgs::slug.eq(schema.as_str())))
///             .returning(orgs::id)
///             .get_result(conn)
///             .optional()?;
///         Ok(id.map(|id| id.to_string()))
///     }
/// }
///
/// // what `create-tenant acme --name "Acme Inc"` and `drop-tenant acme` do with the rows
/// let acme = SchemaName::new("acme")?;
/// assert_eq!(OrgRows.create(&mut conn, &NewTenantRows::new(acme.clone()).name("Acme Inc"))?, "1");
/// assert_eq!(OrgRows.delete(&mut conn, &acme)?.as_deref(), Some("1"));
/// assert_eq!(OrgRows.delete(&mut conn, &acme)?, None); // no tenant has it any more
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait TenantRows: Send + Sync + 'static {
    /// Writes the tenant's rows and returns its key as text.
    ///
    /// # Errors
    ///
    /// Whatever refuses the rows ([`Error::Database`], [`Error::DomainTaken`], ...); the
    /// whole creation is rolled back.
    fn create(&self, conn: &mut PgConnection, new: &NewTenantRows) -> Result<String>;

    /// Deletes the rows of the tenant whose schema is `schema` (its routes included) and
    /// returns its key as text, or `None` when no tenant has that schema.
    ///
    /// # Errors
    ///
    /// [`Error::Database`]; the drop is rolled back.
    fn delete(&self, conn: &mut PgConnection, schema: &SchemaName) -> Result<Option<String>>;
}

/// [`TenantRows`] for the ready-made models ([`DefaultTenant`], [`DefaultDomain`]): inserts
/// the tenant (named after its schema unless `--name` is given) and adds its routes with
/// [`add_domain`](crate::models::add_domain) (the first one becomes primary); deleting the tenant
/// deletes its routes (`ON DELETE CASCADE`).
///
/// ```
/// use pgschemas_diesel::{Config, cli::{DefaultModelRows, App}};
/// # const M: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("../examples/migrations/tenant");
/// let app = App::builder(Config::default(), M).tenant_rows(DefaultModelRows).build();
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultModelRows;

impl TenantRows for DefaultModelRows {
    fn create(&self, conn: &mut PgConnection, new: &NewTenantRows) -> Result<String> {
        let tenant = DefaultTenant::insert(conn, NewTenant::new(&new.schema, new.display_name()))
            .map_err(|e| Error::db(new.schema.as_str(), e))?;
        for domain in &new.domains {
            crate::models::add_domain::<DefaultDomain>(conn, &tenant.id, domain.clone())?;
        }
        Ok(tenant.id.to_string())
    }

    fn delete(&self, conn: &mut PgConnection, schema: &SchemaName) -> Result<Option<String>> {
        let Some(tenant) = DefaultTenant::find_by_schema_name(conn, schema.as_str())
            .map_err(|e| Error::db(schema.as_str(), e))?
        else {
            return Ok(None);
        };
        tenant
            .delete(conn)
            .map_err(|e| Error::db(schema.as_str(), e))?;
        Ok(Some(tenant.id.to_string()))
    }
}
