//! Building a [`Provisioner`]: what it does on creation and drop, and its hooks.

use std::fmt;
use std::sync::{Arc, Mutex};

use diesel::PgConnection;
use diesel::migration::MigrationSource;
use diesel::pg::Pg;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::name::SchemaName;

use super::hooks::HookError;
#[cfg(doc)]
use super::{CloneReport, clone_schema};
use super::{Inner, Options, Provisioner};

/// The builder's setters, each after its docs: `flag name` sets an option on or off, `hook
/// name` stores a closure that runs at one point of a tenant's life, inside the operation's
/// transaction.
macro_rules! setters {
    ($($(#[$doc:meta])* $kind:ident $name:ident;)*) => {$(
        setters!(@$kind $(#[$doc])* $name);
    )*};
    (@flag $(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub fn $name(mut self, on: bool) -> Self {
            self.options.$name = on;
            self
        }
    };
    (@hook $(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub fn $name<F>(mut self, hook: F) -> Self
        where
            F: Fn(&mut PgConnection, &SchemaName) -> Result<(), HookError> + Send + Sync + 'static,
        {
            self.options.hooks.$name = Some(Box::new(hook));
            self
        }
    };
}

/// Builds a [`Provisioner`]; see [`Provisioner::builder`].
#[must_use]
pub struct ProvisionerBuilder {
    options: Options,
    /// Unset: on when the configuration names a reference.
    clone_from_reference: Option<bool>,
}

impl fmt::Debug for ProvisionerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.options
            .debug_fields(
                &mut f.debug_struct("ProvisionerBuilder"),
                &self.clone_from_reference,
            )
            .finish_non_exhaustive()
    }
}

impl ProvisionerBuilder {
    setters! {
        /// Whether creating a tenant creates its schema (default `true`). When off, only the
        /// rows are written and the [`needs_sync`](Self::needs_sync) hook runs; provision the
        /// schema later with [`Provisioner::provision_existing`].
        ///
        /// ```
        /// # let db = pgschemas_diesel::doctest_setup::database().models(); let mut conn = db.connect();
        /// # use diesel_migrations::{embed_migrations, EmbeddedMigrations};
        /// # const M: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
        /// use pgschemas_diesel::models::{DefaultTenant, NewTenant};
        /// use pgschemas_diesel::SchemaName;
        /// use pgschemas_diesel::models::TenantModel;
        /// use pgschemas_diesel::lifecycle::schema_exists;
        ///
        /// let p = pgschemas_diesel::provision::Provisioner::builder(pgschemas_diesel::Config::default(), M)
        ///     .auto_create_schema(false)
        ///     .build()?;
        /// let acme = SchemaName::new("acme")?;
        /// p.create_tenant(&mut conn, "acme", |conn| {
        ///     Ok(DefaultTenant::insert(conn, NewTenant::new(&acme, "Acme"))?)
        /// })?;
        /// assert!(!schema_exists(&mut conn, &acme)?); // the row only
        /// p.provision_existing(&mut conn, "acme")?;
        /// assert!(schema_exists(&mut conn, &acme)?);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        flag auto_create_schema;

        /// Whether [`Provisioner::drop_tenant`] drops the schema without being forced (default
        /// `false`, as in django-pgschemas: deleting a tenant keeps its data unless asked).
        ///
        /// ```
        /// # let db = pgschemas_diesel::doctest_setup::database().models().tenant("acme", &[]); let mut conn = db.connect();
        /// # use diesel_migrations::{embed_migrations, EmbeddedMigrations};
        /// # const M: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
        /// let p = pgschemas_diesel::provision::Provisioner::builder(pgschemas_diesel::Config::default(), M)
        ///     .auto_drop_schema(true)
        ///     .build()?;
        /// let dropped = p.drop_tenant(&mut conn, "acme", false, |_conn| Ok(()))?; // not forced
        /// assert!(dropped.schema_dropped);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        flag auto_drop_schema;
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
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database().models(); let mut conn = db.connect();
    /// # use diesel_migrations::{embed_migrations, EmbeddedMigrations};
    /// # const M: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
    /// use diesel::RunQueryDsl;
    /// use pgschemas_diesel::{Config, Error};
    /// use pgschemas_diesel::provision::Provisioner;
    ///
    /// let config = Config::builder().clone_reference("sample").build()?;
    /// let p = Provisioner::builder(config, M).clone_from_reference(true).build()?;
    /// p.create_reference(&mut conn)?;
    /// diesel::sql_query("insert into sample.products (sku, name, price_cents) values ('gift', 'Gift card', 0)")
    ///     .execute(&mut conn)?;
    /// p.create_tenant(&mut conn, "acme", |_conn| Ok(()))?;
    /// let copied = diesel::sql_query("select * from acme.products where sku = 'gift'").execute(&mut conn)?;
    /// assert_eq!(copied, 1); // a clone, with the reference's rows
    ///
    /// let no_reference = Provisioner::builder(Config::default(), M).clone_from_reference(true).build();
    /// assert!(matches!(no_reference, Err(Error::NoCloneReference { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clone_from_reference(mut self, on: bool) -> Self {
        self.clone_from_reference = Some(on);
        self
    }

    setters! {
        /// Whether a clone copies the reference's rows (default `true`, as django-pgschemas:
        /// the reference's seed data is every new tenant's). The migration ledger is copied
        /// either way.
        ///
        /// ```
        /// # let db = pgschemas_diesel::doctest_setup::database().models(); let mut conn = db.connect();
        /// # use diesel_migrations::{embed_migrations, EmbeddedMigrations};
        /// # const M: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
        /// # use diesel::RunQueryDsl;
        /// let config = pgschemas_diesel::Config::builder().clone_reference("sample").build()?;
        /// let p = pgschemas_diesel::provision::Provisioner::builder(config, M).clone_data(false).build()?;
        /// p.create_reference(&mut conn)?;
        /// diesel::sql_query("insert into sample.products (sku, name, price_cents) values ('gift', 'Gift card', 0)")
        ///     .execute(&mut conn)?;
        /// p.create_tenant(&mut conn, "acme", |_conn| Ok(()))?;
        /// assert_eq!(diesel::sql_query("select * from acme.products").execute(&mut conn)?, 0);
        /// let ledger = diesel::sql_query("select * from acme.__diesel_schema_migrations").execute(&mut conn)?;
        /// assert_eq!(ledger, 5); // migrated all the same
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        flag clone_data;

        /// Runs after a tenant's schema is migrated or cloned, inside the transaction, with the
        /// tenant's path (`<tenant>, <shared>, ...`) active. An error rolls back everything: no
        /// row, no domain, no schema ([`Error::Hook`]).
        ///
        /// ```
        /// # let db = pgschemas_diesel::doctest_setup::database().models(); let mut conn = db.connect();
        /// # use diesel_migrations::{embed_migrations, EmbeddedMigrations};
        /// # const M: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
        /// use pgschemas_diesel::{Error, SchemaName};
        /// use pgschemas_diesel::lifecycle::schema_exists;
        ///
        /// let p = pgschemas_diesel::provision::Provisioner::builder(pgschemas_diesel::Config::default(), M)
        ///     .after_sync(|_conn, schema| {
        ///         if schema.as_str().starts_with("test_") {
        ///             return Err("test tenants are not allowed here".into());
        ///         }
        ///         Ok(())
        ///     })
        ///     .build()?;
        /// let vetoed = p.create_tenant(&mut conn, "test_acme", |_conn| Ok(()));
        /// assert!(matches!(vetoed, Err(Error::Hook { .. })));
        /// assert!(!schema_exists(&mut conn, &SchemaName::new("test_acme")?)?); // rolled back
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        hook after_sync;

        /// Runs when a tenant is created without a schema (`auto_create_schema` off), inside the
        /// transaction, after the rows are written: a place to queue the schema's creation. An
        /// error rolls the rows back.
        ///
        /// ```
        /// # let db = pgschemas_diesel::doctest_setup::database().models(); let mut conn = db.connect();
        /// # use diesel_migrations::{embed_migrations, EmbeddedMigrations};
        /// # const M: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
        /// use std::sync::{Arc, Mutex};
        ///
        /// let later = Arc::new(Mutex::new(Vec::new()));
        /// let queue = Arc::clone(&later);
        /// let p = pgschemas_diesel::provision::Provisioner::builder(pgschemas_diesel::Config::default(), M)
        ///     .auto_create_schema(false)
        ///     .needs_sync(move |_conn, schema| {
        ///         queue.lock().unwrap().push(schema.to_string()); // provision it later
        ///         Ok(())
        ///     })
        ///     .build()?;
        /// p.create_tenant(&mut conn, "acme", |_conn| Ok(()))?;
        /// assert_eq!(*later.lock().unwrap(), ["acme"]);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        hook needs_sync;

        /// Runs just before a tenant's schema is dropped, inside the transaction; an error keeps
        /// the schema and the rows.
        ///
        /// ```
        /// # let db = pgschemas_diesel::doctest_setup::database().models().tenant("acme", &[]); let mut conn = db.connect();
        /// # use diesel_migrations::{embed_migrations, EmbeddedMigrations};
        /// # const M: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
        /// use pgschemas_diesel::{Error, SchemaName};
        /// use pgschemas_diesel::lifecycle::schema_exists;
        ///
        /// let p = pgschemas_diesel::provision::Provisioner::builder(pgschemas_diesel::Config::default(), M)
        ///     .before_drop(|_conn, schema| {
        ///         if schema.as_str() == "acme" {
        ///             return Err("acme's data is kept".into());
        ///         }
        ///         Ok(())
        ///     })
        ///     .build()?;
        /// let vetoed = p.drop_tenant(&mut conn, "acme", true, |_conn| Ok(()));
        /// assert!(matches!(vetoed, Err(Error::Hook { .. })));
        /// assert!(schema_exists(&mut conn, &SchemaName::new("acme")?)?);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        hook before_drop;
    }

    /// Finishes the provisioner.
    ///
    /// # Errors
    ///
    /// [`Error::NoCloneReference`] when cloning is asked for but the configuration names no
    /// clone reference.
    pub fn build(self) -> Result<Provisioner> {
        let has_reference = self.options.config.clone_reference().is_some();
        let clone_from_reference = match self.clone_from_reference {
            Some(true) if !has_reference => {
                return Err(Error::NoCloneReference {
                    wanted_by: "clone_from_reference",
                });
            }
            Some(on) => on,
            None => has_reference,
        };
        let mut options = self.options;
        if options.config.citus() {
            options.migrations = Box::new(crate::citus::ByStatement(options.migrations));
        }
        Ok(Provisioner(Arc::new(Inner {
            options,
            clone_from_reference,
            template: Mutex::new(None),
        })))
    }
}

impl Provisioner {
    /// Starts a provisioner for `config` whose tenants get `migrations` (typically
    /// `embed_migrations!("migrations/tenant")`).
    ///
    /// ```
    /// use diesel_migrations::{embed_migrations, EmbeddedMigrations};
    /// use pgschemas_diesel::Config;
    /// use pgschemas_diesel::provision::Provisioner;
    ///
    /// // In your crate: embed_migrations!("migrations/tenant")
    /// const TENANT_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
    ///
    /// let provisioner = Provisioner::builder(Config::default(), TENANT_MIGRATIONS).build()?;
    /// assert!(provisioner.config().clone_reference().is_none()); // tenants are migrated
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn builder<M>(config: Config, migrations: M) -> ProvisionerBuilder
    where
        M: MigrationSource<Pg> + Send + Sync + 'static,
    {
        ProvisionerBuilder {
            options: Options::new(config, Box::new(migrations)),
            clone_from_reference: None,
        }
    }
}
