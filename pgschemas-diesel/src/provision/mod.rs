//! Creating and dropping dynamic tenants atomically; the clone reference; schema cloning.
//!
//! In it: the [`Provisioner`] and its [`ProvisionerBuilder`] (hooks fail with a
//! [`HookError`]; a drop reports what it [`Dropped`]), the clone reference
//! ([`create_reference`], [`recreate_reference`]) and [`clone_schema`] with its
//! [`CloneReport`]. See the guide's "Provisioning and cloning" section.
//!
//! A [`Provisioner`] is built in `builder`, creates tenants in `create`, drops them in `drop`
//! and runs the `hooks`; `reference` makes the clone reference that `clone` copies.

mod builder;
mod clone;
mod create;
mod drop;
mod hooks;
mod migrate;
mod reference;
mod txn;

use std::fmt;
use std::sync::{Arc, Mutex};

use diesel::migration::MigrationSource;
use diesel::pg::Pg;

use crate::config::Config;

pub use builder::ProvisionerBuilder;
pub use clone::{CloneReport, clone_schema};
pub use drop::Dropped;
pub use hooks::HookError;
pub use reference::{create_reference, recreate_reference};

use clone::Template;
use hooks::Hooks;

/// Creates and drops dynamic tenants so that each operation commits whole or leaves nothing:
/// the caller's rows (tenant, domains), the schema, every tenant migration (or a clone of the
/// reference schema) and the hooks run in one transaction.
///
/// Built once per application with [`Provisioner::builder`]; cheap to clone and shareable
/// between threads. The hooks mirror django-pgschemas' signals:
///
/// | django-pgschemas | here | when |
/// |---|---|---|
/// | `dynamic_tenant_post_sync` | [`after_sync`](ProvisionerBuilder::after_sync) | the schema is migrated or cloned; an error rolls everything back |
/// | `dynamic_tenant_needs_sync` | [`needs_sync`](ProvisionerBuilder::needs_sync) | a tenant is created with `auto_create_schema` off |
/// | `dynamic_tenant_pre_drop` | [`before_drop`](ProvisionerBuilder::before_drop) | just before the schema is dropped; an error keeps everything |
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database().models(); let database_url = db.url();
/// use diesel::prelude::*;
/// use diesel::sql_types::BigInt;
/// use diesel_migrations::{embed_migrations, EmbeddedMigrations};
/// use pgschemas_diesel::models::{DefaultDomain, DefaultTenant, NewTenant};
/// use pgschemas_diesel::{Config, TenantPool};
/// use pgschemas_diesel::models::{NewDomain, TenantModel, add_domain};
/// use pgschemas_diesel::provision::Provisioner;
///
/// // In your crate: embed_migrations!("migrations/tenant")
/// const TENANT_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
///
/// let config = Config::default();
/// let provisioner = Provisioner::builder(config.clone(), TENANT_MIGRATIONS)
///     .after_sync(|conn, _schema| {
///         // Runs with the new tenant's path, inside the transaction: seed data here.
///         diesel::sql_query("insert into products (sku, name, price_cents) values ('gift', 'Gift card', 0)")
///             .execute(conn)?;
///         Ok(())
///     })
///     .build()?;
///
/// let pool = TenantPool::new(database_url, config.clone())?;
/// let mut conn = pool.get()?;
/// let schema = config.check_tenant_name("customer1")?;
/// let tenant = provisioner.create_tenant(&mut conn, schema.as_str(), |conn| {
///     let tenant = DefaultTenant::insert(conn, NewTenant::new(&schema, "Customer 1"))?;
///     let _: DefaultDomain = add_domain(conn, &tenant.id, NewDomain::new("customer1.example.com"))?;
///     Ok(tenant)
/// })?;
/// assert_eq!(tenant.schema_name, "customer1");
///
/// let mut conn = pool.scope(&schema)?; // migrated and seeded
/// let products: i64 = diesel::select(diesel::dsl::sql::<BigInt>("(select count(*) from products)"))
///     .get_result(&mut *conn)?;
/// assert_eq!(products, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Provisioner(Arc<Inner>);

/// What a provisioner is built with, but for whether it clones from the reference (which
/// the builder may leave to the configuration).
struct Options {
    config: Config,
    migrations: Box<dyn MigrationSource<Pg> + Send + Sync>,
    auto_create_schema: bool,
    auto_drop_schema: bool,
    clone_data: bool,
    hooks: Hooks,
}

impl Options {
    /// The defaults: schemas created with their tenants and kept when they are dropped,
    /// clones with the reference's rows, no hooks.
    fn new(config: Config, migrations: Box<dyn MigrationSource<Pg> + Send + Sync>) -> Self {
        Self {
            config,
            migrations,
            auto_create_schema: true,
            auto_drop_schema: false,
            clone_data: true,
            hooks: Hooks::default(),
        }
    }

    /// Adds the options to `d` (not the hooks), with `clone_from_reference` in its place
    /// among them.
    fn debug_fields<'d, 'a, 'b>(
        &self,
        d: &'d mut fmt::DebugStruct<'a, 'b>,
        clone_from_reference: &dyn fmt::Debug,
    ) -> &'d mut fmt::DebugStruct<'a, 'b> {
        d.field("config", &self.config)
            .field("auto_create_schema", &self.auto_create_schema)
            .field("auto_drop_schema", &self.auto_drop_schema)
            .field("clone_from_reference", clone_from_reference)
            .field("clone_data", &self.clone_data)
    }
}

struct Inner {
    options: Options,
    clone_from_reference: bool,
    /// The reference's clone script, read once and replayed while the reference's state
    /// (its OID and migration ledger) is unchanged.
    template: Mutex<Option<Arc<Template>>>,
}

impl fmt::Debug for Provisioner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.0;
        let hooks = &i.options.hooks;
        i.options
            .debug_fields(&mut f.debug_struct("Provisioner"), &i.clone_from_reference)
            .field("after_sync", &hooks.after_sync.is_some())
            .field("needs_sync", &hooks.needs_sync.is_some())
            .field("before_drop", &hooks.before_drop.is_some())
            .finish_non_exhaustive()
    }
}

impl Provisioner {
    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.0.options.config
    }
}
