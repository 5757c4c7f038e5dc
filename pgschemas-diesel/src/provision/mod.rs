//! Creating and dropping dynamic tenants atomically; the clone reference; schema cloning.

mod clone;
mod migrate;
mod txn;

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use diesel::PgConnection;
use diesel::migration::MigrationSource;
use diesel::pg::Pg;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::lifecycle::{OnDependents, drop_in_transaction, refuse_protected, schema_exists};
use crate::name::SchemaName;

pub use clone::{CloneReport, clone_schema};

use clone::Template;
use txn::{
    atomic, create_schema_sql, in_schema, lock_sql, map_create_error, map_db_error,
    set_local_path_sql, shared_lock_sql,
};

/// The error a provisioning hook returns to veto the operation; anything that converts
/// (`?` on a Diesel error, a [`crate::Error`], a `String`) will do.
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

type Hook = Box<dyn Fn(&mut PgConnection, &SchemaName) -> Result<(), HookError> + Send + Sync>;

/// What [`Provisioner::drop_tenant`] did.
///
/// ```no_run
/// # fn demo(p: &pgschemas_diesel::Provisioner, conn: &mut diesel::PgConnection) -> pgschemas_diesel::Result<()> {
/// let dropped = p.drop_tenant(conn, "customer1", true, |_conn| Ok(()))?;
/// assert!(dropped.schema_dropped);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Dropped<T> {
    /// What the row-deleting closure returned.
    pub value: T,
    /// Whether the schema was dropped (it is kept unless forced or `auto_drop_schema` is on,
    /// and there is nothing to drop when it does not exist).
    pub schema_dropped: bool,
}

/// Creates the configured clone reference schema and applies every tenant migration to it,
/// in one transaction (so it exists fully migrated, or not at all).
///
/// # Errors
///
/// [`Error::Config`] when no clone reference is configured; [`Error::SchemaExists`];
/// [`Error::Migration`] (naming the migration); [`Error::Database`].
///
/// ```no_run
/// # use diesel::{Connection, PgConnection};
/// use diesel_migrations::{embed_migrations, EmbeddedMigrations};
/// use pgschemas_diesel::{create_reference, Config};
///
/// // In your crate: embed_migrations!("migrations/tenant")
/// const TENANT_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
///
/// let config = Config::builder().clone_reference("sample").build()?;
/// let mut conn = PgConnection::establish("postgres://postgres@127.0.0.1/app")?;
/// create_reference(&mut conn, &config, TENANT_MIGRATIONS)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn create_reference<M: MigrationSource<Pg>>(
    conn: &mut PgConnection,
    config: &Config,
    migrations: M,
) -> Result<()> {
    create_migrated(conn, config, reference_name(config)?, &migrations, false)
}

/// Drops the configured clone reference (if it exists) and creates it again from the tenant
/// migrations, in one transaction: if anything fails, the old reference is still there.
///
/// # Errors
///
/// [`Error::Config`] when no clone reference is configured; [`Error::Migration`];
/// [`Error::Database`].
///
/// ```no_run
/// # use diesel::{Connection, PgConnection};
/// # use diesel_migrations::{embed_migrations, EmbeddedMigrations};
/// # const TENANT_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
/// let config = pgschemas_diesel::Config::builder().clone_reference("sample").build()?;
/// let mut conn = PgConnection::establish("postgres://postgres@127.0.0.1/app")?;
/// pgschemas_diesel::recreate_reference(&mut conn, &config, TENANT_MIGRATIONS)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn recreate_reference<M: MigrationSource<Pg>>(
    conn: &mut PgConnection,
    config: &Config,
    migrations: M,
) -> Result<()> {
    create_migrated(conn, config, reference_name(config)?, &migrations, true)
}

fn reference_name(config: &Config) -> Result<&SchemaName> {
    config.clone_reference().ok_or_else(|| {
        Error::Config(
            "no clone reference is configured; set one with ConfigBuilder::clone_reference".into(),
        )
    })
}

/// Creates `name` (dropping it first when `recreate`) and applies every migration, in one
/// transaction, under the migration lock of `name`.
fn create_migrated(
    conn: &mut PgConnection,
    config: &Config,
    name: &SchemaName,
    source: &dyn MigrationSource<Pg>,
    recreate: bool,
) -> Result<()> {
    let path = config.search_path(name)?;
    let drop = if recreate {
        format!("DROP SCHEMA IF EXISTS {} CASCADE; ", name.quoted())
    } else {
        String::new()
    };
    let first = format!("{}; {drop}{}", lock_sql(name), create_schema_sql(name));
    let apply = |conn: &mut PgConnection| migrate::apply_all_fresh(conn, &path, source).map(|_| ());
    if recreate {
        // the schema may well exist: a failed drop is no "already exists"
        atomic(conn, &first, map_db_error(name), apply)
    } else {
        atomic(conn, &first, map_create_error(name), apply)
    }
}

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
/// ```no_run
/// use diesel::prelude::*;
/// use diesel_migrations::{embed_migrations, EmbeddedMigrations};
/// use pgschemas_diesel::models::{DefaultDomain, DefaultTenant, NewTenant};
/// use pgschemas_diesel::{add_domain, Config, NewDomain, Provisioner, TenantModel, TenantPool};
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
/// let pool = TenantPool::new("postgres://postgres@127.0.0.1/app", config.clone())?;
/// let mut conn = pool.get()?;
/// let schema = config.check_tenant_name("customer1")?;
/// let tenant = provisioner.create_tenant(&mut conn, schema.as_str(), |conn| {
///     let tenant = DefaultTenant::insert(conn, NewTenant::new(&schema, "Customer 1"))?;
///     let _: DefaultDomain = add_domain(conn, &tenant.id, NewDomain::new("customer1.example.com"))?;
///     Ok(tenant)
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Provisioner(Arc<Inner>);

struct Inner {
    config: Config,
    migrations: Box<dyn MigrationSource<Pg> + Send + Sync>,
    auto_create_schema: bool,
    auto_drop_schema: bool,
    clone_from_reference: bool,
    clone_data: bool,
    after_sync: Option<Hook>,
    needs_sync: Option<Hook>,
    before_drop: Option<Hook>,
    /// The reference's clone script, read once and replayed while the reference's state
    /// (its OID and migration ledger) is unchanged.
    template: Mutex<Option<Arc<Template>>>,
}

impl fmt::Debug for Provisioner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.0;
        f.debug_struct("Provisioner")
            .field("config", &i.config)
            .field("auto_create_schema", &i.auto_create_schema)
            .field("auto_drop_schema", &i.auto_drop_schema)
            .field("clone_from_reference", &i.clone_from_reference)
            .field("clone_data", &i.clone_data)
            .field("after_sync", &i.after_sync.is_some())
            .field("needs_sync", &i.needs_sync.is_some())
            .field("before_drop", &i.before_drop.is_some())
            .finish_non_exhaustive()
    }
}

/// Builds a [`Provisioner`]; see [`Provisioner::builder`].
#[must_use]
pub struct ProvisionerBuilder {
    config: Config,
    migrations: Box<dyn MigrationSource<Pg> + Send + Sync>,
    auto_create_schema: bool,
    auto_drop_schema: bool,
    clone_from_reference: Option<bool>,
    clone_data: bool,
    after_sync: Option<Hook>,
    needs_sync: Option<Hook>,
    before_drop: Option<Hook>,
}

impl fmt::Debug for ProvisionerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProvisionerBuilder")
            .field("config", &self.config)
            .field("auto_create_schema", &self.auto_create_schema)
            .field("auto_drop_schema", &self.auto_drop_schema)
            .field("clone_from_reference", &self.clone_from_reference)
            .field("clone_data", &self.clone_data)
            .finish_non_exhaustive()
    }
}

impl ProvisionerBuilder {
    /// Whether creating a tenant creates its schema (default `true`). When off, only the
    /// rows are written and the [`needs_sync`](Self::needs_sync) hook runs; provision the
    /// schema later with [`Provisioner::provision_existing`].
    ///
    /// ```no_run
    /// # use diesel_migrations::{embed_migrations, EmbeddedMigrations};
    /// # const M: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
    /// let p = pgschemas_diesel::Provisioner::builder(pgschemas_diesel::Config::default(), M)
    ///     .auto_create_schema(false)
    ///     .build()?;
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn auto_create_schema(mut self, on: bool) -> Self {
        self.auto_create_schema = on;
        self
    }

    /// Whether [`Provisioner::drop_tenant`] drops the schema without being forced (default
    /// `false`, as in django-pgschemas: deleting a tenant keeps its data unless asked).
    ///
    /// ```no_run
    /// # use diesel_migrations::{embed_migrations, EmbeddedMigrations};
    /// # const M: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
    /// let p = pgschemas_diesel::Provisioner::builder(pgschemas_diesel::Config::default(), M)
    ///     .auto_drop_schema(true)
    ///     .build()?;
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn auto_drop_schema(mut self, on: bool) -> Self {
        self.auto_drop_schema = on;
        self
    }

    /// Whether new schemas are cloned from the configured clone reference instead of
    /// migrated (default: on when the configuration names a reference). When the reference
    /// does not exist, tenants are migrated; when it lags behind the migrations, the clone is
    /// migrated the rest of the way.
    ///
    /// A clone is what [`clone_schema`] makes: functions whose `search_path` setting names the
    /// reference get the tenant's path. Nobody reads a provisioned tenant's
    /// [`CloneReport`], so what it would list as warnings (something in the reference that
    /// may still name the reference, such as a string with its name in a function body) is
    /// an error here, [`Error::CloneNamesSource`], and the tenant is not created: remove the
    /// reference's name from those definitions, or turn cloning off to migrate tenants.
    ///
    /// ```no_run
    /// # use diesel_migrations::{embed_migrations, EmbeddedMigrations};
    /// # const M: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
    /// let config = pgschemas_diesel::Config::builder().clone_reference("sample").build()?;
    /// let p = pgschemas_diesel::Provisioner::builder(config, M)
    ///     .clone_from_reference(true)
    ///     .build()?;
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn clone_from_reference(mut self, on: bool) -> Self {
        self.clone_from_reference = Some(on);
        self
    }

    /// Whether a clone copies the reference's rows (default `true`, as django-pgschemas:
    /// the reference's seed data is every new tenant's). The migration ledger is copied
    /// either way.
    ///
    /// ```no_run
    /// # use diesel_migrations::{embed_migrations, EmbeddedMigrations};
    /// # const M: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
    /// let config = pgschemas_diesel::Config::builder().clone_reference("sample").build()?;
    /// let p = pgschemas_diesel::Provisioner::builder(config, M).clone_data(false).build()?;
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn clone_data(mut self, on: bool) -> Self {
        self.clone_data = on;
        self
    }

    /// Runs after a tenant's schema is migrated or cloned, inside the transaction, with the
    /// tenant's path (`<tenant>, <shared>, ...`) active. An error rolls back everything: no
    /// row, no domain, no schema ([`Error::Hook`]).
    ///
    /// ```no_run
    /// # use diesel_migrations::{embed_migrations, EmbeddedMigrations};
    /// # const M: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
    /// let p = pgschemas_diesel::Provisioner::builder(pgschemas_diesel::Config::default(), M)
    ///     .after_sync(|_conn, schema| {
    ///         if schema.as_str().starts_with("test_") {
    ///             return Err("test tenants are not allowed here".into());
    ///         }
    ///         Ok(())
    ///     })
    ///     .build()?;
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn after_sync<F>(mut self, hook: F) -> Self
    where
        F: Fn(&mut PgConnection, &SchemaName) -> Result<(), HookError> + Send + Sync + 'static,
    {
        self.after_sync = Some(Box::new(hook));
        self
    }

    /// Runs when a tenant is created without a schema (`auto_create_schema` off), inside the
    /// transaction, after the rows are written: a place to queue the schema's creation. An
    /// error rolls the rows back.
    ///
    /// ```no_run
    /// # use diesel_migrations::{embed_migrations, EmbeddedMigrations};
    /// # const M: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
    /// let p = pgschemas_diesel::Provisioner::builder(pgschemas_diesel::Config::default(), M)
    ///     .auto_create_schema(false)
    ///     .needs_sync(|_conn, schema| {
    ///         println!("provision {schema} later");
    ///         Ok(())
    ///     })
    ///     .build()?;
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn needs_sync<F>(mut self, hook: F) -> Self
    where
        F: Fn(&mut PgConnection, &SchemaName) -> Result<(), HookError> + Send + Sync + 'static,
    {
        self.needs_sync = Some(Box::new(hook));
        self
    }

    /// Runs just before a tenant's schema is dropped, inside the transaction; an error keeps
    /// the schema and the rows.
    ///
    /// ```no_run
    /// # use diesel_migrations::{embed_migrations, EmbeddedMigrations};
    /// # const M: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
    /// let p = pgschemas_diesel::Provisioner::builder(pgschemas_diesel::Config::default(), M)
    ///     .before_drop(|_conn, schema| {
    ///         println!("dropping {schema}");
    ///         Ok(())
    ///     })
    ///     .build()?;
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn before_drop<F>(mut self, hook: F) -> Self
    where
        F: Fn(&mut PgConnection, &SchemaName) -> Result<(), HookError> + Send + Sync + 'static,
    {
        self.before_drop = Some(Box::new(hook));
        self
    }

    /// Finishes the provisioner.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when cloning is asked for but the configuration names no clone
    /// reference.
    pub fn build(self) -> Result<Provisioner> {
        let has_reference = self.config.clone_reference().is_some();
        let clone_from_reference = match self.clone_from_reference {
            Some(true) if !has_reference => {
                return Err(Error::Config(
                    "clone_from_reference is on but no clone reference is configured; set one with ConfigBuilder::clone_reference".into(),
                ));
            }
            Some(on) => on,
            None => has_reference,
        };
        Ok(Provisioner(Arc::new(Inner {
            config: self.config,
            migrations: self.migrations,
            auto_create_schema: self.auto_create_schema,
            auto_drop_schema: self.auto_drop_schema,
            clone_from_reference,
            clone_data: self.clone_data,
            after_sync: self.after_sync,
            needs_sync: self.needs_sync,
            before_drop: self.before_drop,
            template: Mutex::new(None),
        })))
    }
}

impl Provisioner {
    /// Starts a provisioner for `config` whose tenants get `migrations` (typically
    /// `embed_migrations!("migrations/tenant")`).
    ///
    /// ```no_run
    /// use diesel_migrations::{embed_migrations, EmbeddedMigrations};
    /// use pgschemas_diesel::{Config, Provisioner};
    ///
    /// // In your crate: embed_migrations!("migrations/tenant")
    /// const TENANT_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
    ///
    /// let provisioner = Provisioner::builder(Config::default(), TENANT_MIGRATIONS).build()?;
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn builder<M>(config: Config, migrations: M) -> ProvisionerBuilder
    where
        M: MigrationSource<Pg> + Send + Sync + 'static,
    {
        ProvisionerBuilder {
            config,
            migrations: Box::new(migrations),
            auto_create_schema: true,
            auto_drop_schema: false,
            clone_from_reference: None,
            clone_data: true,
            after_sync: None,
            needs_sync: None,
            before_drop: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// Creates a dynamic tenant in one transaction: `rows` writes the tenant's rows (its
    /// tenant row, its domains: any model), then the schema is created, migrated (or cloned
    /// from the reference) and the [`after_sync`](ProvisionerBuilder::after_sync) hook runs.
    /// Everything commits together or nothing does: a bad name, a clash, a failing
    /// migration, a vetoing hook or a lost connection leaves no row, no domain and no schema.
    ///
    /// The name is checked with [`Config::check_tenant_name`] before anything is sent.
    /// `rows` runs with the neutral path (the shared schema first). Two concurrent
    /// creations of the same schema serialize on its lock: the second gets
    /// [`Error::SchemaExists`]. Inside a transaction of the caller, this runs in a savepoint
    /// and the caller's transaction decides.
    ///
    /// With `auto_create_schema` off, only `rows` and the
    /// [`needs_sync`](ProvisionerBuilder::needs_sync) hook run.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSchemaName`], [`Error::NameClash`], [`Error::SchemaExists`],
    /// [`Error::Migration`], [`Error::Clone`], [`Error::CloneNamesSource`] (the reference
    /// names itself where a clone would keep the name, or may: see
    /// [`clone_from_reference`](ProvisionerBuilder::clone_from_reference)), [`Error::Hook`],
    /// `rows`' error (a database error is given the schema's name), [`Error::Database`].
    ///
    /// ```no_run
    /// # fn demo(provisioner: &pgschemas_diesel::Provisioner, conn: &mut diesel::PgConnection) -> pgschemas_diesel::Result<()> {
    /// use diesel::RunQueryDsl;
    ///
    /// let id: i64 = provisioner.create_tenant(conn, "customer1", |conn| {
    ///     #[derive(diesel::QueryableByName)]
    ///     struct Id { #[diesel(sql_type = diesel::sql_types::BigInt)] id: i64 }
    ///     let row: Id = diesel::sql_query(
    ///         "insert into tenants (schema_name) values ('customer1') returning id",
    ///     )
    ///     .get_result(conn)?;
    ///     Ok(row.id)
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn create_tenant<T, F>(&self, conn: &mut PgConnection, schema: &str, rows: F) -> Result<T>
    where
        F: FnOnce(&mut PgConnection) -> Result<T>,
    {
        let inner = &*self.0;
        let name = inner.config.check_tenant_name(schema)?;
        let neutral = set_local_path_sql(inner.config.neutral_path().as_sql_value());
        if !inner.auto_create_schema {
            return atomic(conn, &neutral, map_db_error(&name), |conn| {
                let value = rows(conn).map_err(in_schema(&name))?;
                run_hook(&inner.needs_sync, "needs_sync", conn, &name)?;
                Ok(value)
            });
        }
        let first = format!("{}; {neutral}", self.create_sql(&name));
        atomic(conn, &first, map_create_error(&name), |conn| {
            let value = rows(conn).map_err(in_schema(&name))?;
            self.sync(conn, &name)?;
            Ok(value)
        })
    }

    /// Creates, migrates (or clones) and hooks the schema of a tenant whose rows already
    /// exist (created with `auto_create_schema` off, or whose schema was lost), in one
    /// transaction. On failure the schema is not created; the rows are untouched either way.
    ///
    /// # Errors
    ///
    /// As [`create_tenant`](Self::create_tenant), without `rows`.
    ///
    /// ```no_run
    /// # fn demo(provisioner: &pgschemas_diesel::Provisioner, conn: &mut diesel::PgConnection) -> pgschemas_diesel::Result<()> {
    /// provisioner.provision_existing(conn, "customer1")?;
    /// # Ok(()) }
    /// ```
    pub fn provision_existing(&self, conn: &mut PgConnection, schema: &str) -> Result<()> {
        let name = self.0.config.check_tenant_name(schema)?;
        atomic(
            conn,
            &self.create_sql(&name),
            map_create_error(&name),
            |conn| self.sync(conn, &name),
        )
    }

    /// Deletes a dynamic tenant in one transaction: when `force` or `auto_drop_schema` is
    /// on and the schema exists, the [`before_drop`](ProvisionerBuilder::before_drop) hook
    /// runs and the schema is dropped; then `rows` deletes the tenant's rows. Otherwise only
    /// `rows` runs and the schema is kept (django-pgschemas' rule: data is not dropped
    /// unless asked).
    ///
    /// Only a dynamic tenant's schema is dropped: never one the configuration reserves (the
    /// shared schema, a static tenant, the clone reference, an extra search path: the names
    /// [`Config::check_tenant_name`] refuses to a new tenant), and never together with
    /// objects outside it. When a view, foreign key, column, function or extension of
    /// another schema depends on the tenant's objects, the drop is refused with
    /// [`Error::Dependents`] naming them ([`dangerous_drop_tenant_cascade`](Self::dangerous_drop_tenant_cascade)
    /// drops them too). Whether the schema belongs to a tenant row is `rows`' to say: it
    /// runs in the same transaction, so an error from it (the CLI's: no tenant has this
    /// schema) keeps the schema.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSchemaName`]; [`Error::Protected`] for a reserved schema;
    /// [`Error::Dependents`]; [`Error::Hook`]; `rows`' error; [`Error::Database`]. Nothing
    /// is changed on error.
    ///
    /// ```no_run
    /// # fn demo(provisioner: &pgschemas_diesel::Provisioner, conn: &mut diesel::PgConnection) -> pgschemas_diesel::Result<()> {
    /// use diesel::RunQueryDsl;
    ///
    /// let dropped = provisioner.drop_tenant(conn, "customer1", true, |conn| {
    ///     diesel::sql_query("delete from tenants where schema_name = 'customer1'").execute(conn)?;
    ///     Ok(())
    /// })?;
    /// assert!(dropped.schema_dropped);
    /// # Ok(()) }
    /// ```
    pub fn drop_tenant<T, F>(
        &self,
        conn: &mut PgConnection,
        schema: &str,
        force: bool,
        rows: F,
    ) -> Result<Dropped<T>>
    where
        F: FnOnce(&mut PgConnection) -> Result<T>,
    {
        let drop = force || self.0.auto_drop_schema;
        self.drop_tenant_with(conn, schema, drop, OnDependents::Refuse, rows)
    }

    /// [`drop_tenant`](Self::drop_tenant), always dropping the schema, and with it every
    /// object outside it that depends on its objects (`DROP SCHEMA ... CASCADE`): a view of
    /// the shared schema over a tenant table, a foreign key into it, another tenant's view,
    /// an extension owning one of its objects. The reserved schemas are still refused.
    ///
    /// # Errors
    ///
    /// As [`drop_tenant`](Self::drop_tenant), without [`Error::Dependents`].
    ///
    /// ```no_run
    /// # fn demo(provisioner: &pgschemas_diesel::Provisioner, conn: &mut diesel::PgConnection) -> pgschemas_diesel::Result<()> {
    /// use diesel::RunQueryDsl;
    ///
    /// provisioner.dangerous_drop_tenant_cascade(conn, "customer1", |conn| {
    ///     diesel::sql_query("delete from tenants where schema_name = 'customer1'").execute(conn)?;
    ///     Ok(())
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn dangerous_drop_tenant_cascade<T, F>(
        &self,
        conn: &mut PgConnection,
        schema: &str,
        rows: F,
    ) -> Result<Dropped<T>>
    where
        F: FnOnce(&mut PgConnection) -> Result<T>,
    {
        self.drop_tenant_with(conn, schema, true, OnDependents::Cascade, rows)
    }

    fn drop_tenant_with<T, F>(
        &self,
        conn: &mut PgConnection,
        schema: &str,
        drop: bool,
        on: OnDependents,
        rows: F,
    ) -> Result<Dropped<T>>
    where
        F: FnOnce(&mut PgConnection) -> Result<T>,
    {
        let inner = &*self.0;
        let name = SchemaName::new(schema)?;
        if drop {
            refuse_protected(&inner.config, &name)?;
        }
        let first = format!(
            "{}; {}",
            lock_sql(&name),
            set_local_path_sql(inner.config.neutral_path().as_sql_value())
        );
        atomic(conn, &first, map_db_error(&name), |conn| {
            let mut schema_dropped = false;
            if drop && schema_exists(conn, &name)? {
                run_hook(&inner.before_drop, "before_drop", conn, &name)?;
                drop_in_transaction(conn, &name, on)?;
                schema_dropped = true;
            }
            let value = rows(conn).map_err(in_schema(&name))?;
            Ok(Dropped {
                value,
                schema_dropped,
            })
        })
    }

    /// [`create_reference`] with this provisioner's configuration and migrations.
    ///
    /// # Errors
    ///
    /// As [`create_reference`].
    ///
    /// ```no_run
    /// # fn demo(provisioner: &pgschemas_diesel::Provisioner, conn: &mut diesel::PgConnection) -> pgschemas_diesel::Result<()> {
    /// provisioner.create_reference(conn)?;
    /// # Ok(()) }
    /// ```
    pub fn create_reference(&self, conn: &mut PgConnection) -> Result<()> {
        let inner = &*self.0;
        self.clear_clone_cache();
        create_migrated(
            conn,
            &inner.config,
            reference_name(&inner.config)?,
            &*inner.migrations,
            false,
        )
    }

    /// [`recreate_reference`] with this provisioner's configuration and migrations.
    ///
    /// # Errors
    ///
    /// As [`recreate_reference`].
    ///
    /// ```no_run
    /// # fn demo(provisioner: &pgschemas_diesel::Provisioner, conn: &mut diesel::PgConnection) -> pgschemas_diesel::Result<()> {
    /// provisioner.recreate_reference(conn)?;
    /// # Ok(()) }
    /// ```
    pub fn recreate_reference(&self, conn: &mut PgConnection) -> Result<()> {
        let inner = &*self.0;
        self.clear_clone_cache();
        create_migrated(
            conn,
            &inner.config,
            reference_name(&inner.config)?,
            &*inner.migrations,
            true,
        )
    }

    /// Forgets the cached clone script of the reference schema, so the next clone reads the
    /// catalogs again. The cache already notices a recreated reference and any change to
    /// its migration ledger; call this after changing the reference by other means.
    ///
    /// ```no_run
    /// # fn demo(provisioner: &pgschemas_diesel::Provisioner) {
    /// provisioner.clear_clone_cache();
    /// # }
    /// ```
    pub fn clear_clone_cache(&self) {
        *self
            .0
            .template
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// The statements that open a schema's creation: its lock, the reference's shared lock
    /// when cloning, `CREATE SCHEMA`.
    fn create_sql(&self, name: &SchemaName) -> String {
        let mut sql = lock_sql(name);
        if let Some(reference) = self.reference() {
            sql.push_str("; ");
            sql.push_str(&shared_lock_sql(reference));
        }
        sql.push_str("; ");
        sql.push_str(&create_schema_sql(name));
        sql
    }

    /// The reference to clone from, when cloning is on.
    fn reference(&self) -> Option<&SchemaName> {
        let inner = &*self.0;
        inner
            .clone_from_reference
            .then(|| inner.config.clone_reference())
            .flatten()
    }

    /// Fills the freshly created `name`: clone or migrate, then the `after_sync` hook, which
    /// runs with the tenant's path.
    fn sync(&self, conn: &mut PgConnection, name: &SchemaName) -> Result<()> {
        let inner = &*self.0;
        let path = inner.config.search_path(name)?;
        match self.template(conn, name)? {
            Some(template) => {
                template.refuse_warnings(name)?;
                template.apply(conn, name, Some(&path))?;
                let versions = migrate::versions(name, &*inner.migrations)?;
                let applied = &template.report.migrations;
                if versions.iter().any(|v| !applied.contains(v)) {
                    migrate::run_pending(conn, &inner.config, &path, &*inner.migrations)?;
                }
            }
            None => {
                migrate::apply_all_fresh(conn, &path, &*inner.migrations)?;
            }
        }
        run_hook(&inner.after_sync, "after_sync", conn, name)
    }

    /// The reference's clone script when cloning is on and the reference exists: the cached
    /// one if the reference has not changed, else read again.
    fn template(&self, conn: &mut PgConnection, dst: &SchemaName) -> Result<Option<Arc<Template>>> {
        let inner = &*self.0;
        let Some(reference) = self.reference() else {
            return Ok(None);
        };
        let cached = inner
            .template
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(t) = cached {
            match t.is_current(conn)? {
                Some(true) => return Ok(Some(t)),
                Some(false) => {}
                None => {
                    self.clear_clone_cache();
                    return Ok(None);
                }
            }
        }
        let Some(t) = Template::read(conn, reference, dst, inner.clone_data)? else {
            return Ok(None);
        };
        let t = Arc::new(t);
        *inner
            .template
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&t));
        Ok(Some(t))
    }
}

fn run_hook(
    hook: &Option<Hook>,
    which: &'static str,
    conn: &mut PgConnection,
    name: &SchemaName,
) -> Result<()> {
    match hook {
        Some(h) => h(conn, name).map_err(|source| Error::Hook {
            schema: name.to_string(),
            hook: which,
            source,
        }),
        None => Ok(()),
    }
}
