//! The clone reference: the schema new tenants are cloned from, created from the tenant
//! migrations.

use std::sync::PoisonError;

use diesel::PgConnection;
use diesel::migration::MigrationSource;
use diesel::pg::Pg;

use crate::config::Config;
use crate::error::{Error, Result};

use super::txn::{atomic, create_schema_sql, lock_sql, map_create_error, map_db_error};
use super::{Provisioner, migrate};

/// Creates the configured clone reference schema and applies every tenant migration to it,
/// in one transaction (so it exists fully migrated, or not at all).
///
/// # Errors
///
/// [`Error::NoCloneReference`] when no clone reference is configured; [`Error::SchemaExists`];
/// [`Error::Migration`] (naming the migration); [`Error::Database`].
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database(); let database_url = db.url();
/// # use diesel::{Connection, PgConnection};
/// use diesel_migrations::{embed_migrations, EmbeddedMigrations};
/// use pgschemas_diesel::{Config, Error, SchemaName};
/// use pgschemas_diesel::provision::create_reference;
/// use pgschemas_diesel::lifecycle::schema_exists;
///
/// // In your crate: embed_migrations!("migrations/tenant")
/// const TENANT_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
///
/// let config = Config::builder().clone_reference("sample").build()?;
/// let mut conn = PgConnection::establish(database_url)?;
/// create_reference(&mut conn, &config, TENANT_MIGRATIONS)?;
/// assert!(schema_exists(&mut conn, &SchemaName::new("sample")?)?);
/// let again = create_reference(&mut conn, &config, TENANT_MIGRATIONS);
/// assert!(matches!(again, Err(Error::SchemaExists { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn create_reference<M: MigrationSource<Pg>>(
    conn: &mut PgConnection,
    config: &Config,
    migrations: M,
) -> Result<()> {
    migrate_reference(conn, config, &migrations, false)
}

/// Drops the configured clone reference (if it exists) and creates it again from the tenant
/// migrations, in one transaction: if anything fails, the old reference is still there.
///
/// # Errors
///
/// [`Error::NoCloneReference`] when no clone reference is configured; [`Error::Migration`];
/// [`Error::Database`].
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database(); let database_url = db.url();
/// # use diesel::{Connection, PgConnection, RunQueryDsl};
/// # use diesel_migrations::{embed_migrations, EmbeddedMigrations};
/// # const TENANT_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
/// let config = pgschemas_diesel::Config::builder().clone_reference("sample").build()?;
/// let mut conn = PgConnection::establish(database_url)?;
/// pgschemas_diesel::provision::create_reference(&mut conn, &config, TENANT_MIGRATIONS)?;
/// diesel::sql_query("insert into sample.products (sku, name, price_cents) values ('old', 'Old', 1)")
///     .execute(&mut conn)?;
/// pgschemas_diesel::provision::recreate_reference(&mut conn, &config, TENANT_MIGRATIONS)?;
/// assert_eq!(diesel::sql_query("select * from sample.products").execute(&mut conn)?, 0); // fresh
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn recreate_reference<M: MigrationSource<Pg>>(
    conn: &mut PgConnection,
    config: &Config,
    migrations: M,
) -> Result<()> {
    migrate_reference(conn, config, &migrations, true)
}

/// Creates the configured clone reference (dropping it first when `recreate`) and applies
/// every migration of `source`, in one transaction, under the reference's migration lock.
fn migrate_reference(
    conn: &mut PgConnection,
    config: &Config,
    source: &dyn MigrationSource<Pg>,
    recreate: bool,
) -> Result<()> {
    let name = config.clone_reference().ok_or(Error::NoCloneReference {
        wanted_by: if recreate {
            "recreate_reference"
        } else {
            "create_reference"
        },
    })?;
    let path = config.search_path(name)?;
    let drop = if recreate {
        format!("DROP SCHEMA IF EXISTS {} CASCADE; ", name.quoted())
    } else {
        String::new()
    };
    // With tenant roles, the reference is owned by the DDL role (clones run as it) and has
    // no role of its own.
    let act = config.tenant_roles().map_or(String::new(), |r| {
        format!("{}; ", crate::roles::lifecycle::act_as_ddl_sql(r))
    });
    let first = format!("{act}{}; {drop}{}", lock_sql(name), create_schema_sql(name));
    let apply = |conn: &mut PgConnection| migrate::apply_all_fresh(conn, &path, source).map(|_| ());
    if recreate {
        // the schema may well exist: a failed drop is no "already exists"
        atomic(conn, &first, map_db_error(name), apply)
    } else {
        atomic(conn, &first, map_create_error(name), apply)
    }
}

impl Provisioner {
    /// [`create_reference`] with this provisioner's configuration and migrations.
    ///
    /// # Errors
    ///
    /// As [`create_reference`].
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database(); let conn = &mut db.connect();
    /// # const M: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("../examples/migrations/tenant");
    /// # let config = pgschemas_diesel::Config::builder().clone_reference("sample").build()?;
    /// # let provisioner = pgschemas_diesel::provision::Provisioner::builder(config, M).build()?;
    /// provisioner.create_reference(conn)?;
    /// assert!(pgschemas_diesel::lifecycle::schema_exists(conn, &pgschemas_diesel::SchemaName::new("sample")?)?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create_reference(&self, conn: &mut PgConnection) -> Result<()> {
        self.migrate_reference(conn, false)
    }

    /// [`recreate_reference`] with this provisioner's configuration and migrations.
    ///
    /// # Errors
    ///
    /// As [`recreate_reference`].
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database().schemas(&["sample"]); let conn = &mut db.connect();
    /// # const M: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("../examples/migrations/tenant");
    /// # let config = pgschemas_diesel::Config::builder().clone_reference("sample").build()?;
    /// # let provisioner = pgschemas_diesel::provision::Provisioner::builder(config, M).build()?;
    /// # use diesel::RunQueryDsl;
    /// // "sample" exists, empty
    /// provisioner.recreate_reference(conn)?;
    /// assert_eq!(diesel::sql_query("select * from sample.__diesel_schema_migrations").execute(conn)?, 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recreate_reference(&self, conn: &mut PgConnection) -> Result<()> {
        self.migrate_reference(conn, true)
    }

    /// Forgets the cached clone script of the reference schema, so the next clone reads the
    /// catalogs again. The cache already notices a recreated reference and any change to
    /// its migration ledger; call this after changing the reference by other means.
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database().models(); let conn = &mut db.connect();
    /// # const M: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("../examples/migrations/tenant");
    /// # let config = pgschemas_diesel::Config::builder().clone_reference("sample").build()?;
    /// # let provisioner = pgschemas_diesel::provision::Provisioner::builder(config, M).build()?;
    /// use diesel::RunQueryDsl;
    ///
    /// provisioner.create_reference(conn)?;
    /// provisioner.create_tenant(conn, "t1", |_conn| Ok(()))?; // reads and caches the clone script
    /// diesel::sql_query("alter table sample.products add column note text").execute(conn)?;
    /// provisioner.clear_clone_cache();
    /// provisioner.create_tenant(conn, "t2", |_conn| Ok(()))?;
    /// diesel::sql_query("select note from t2.products").execute(conn)?; // cloned with the change
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clear_clone_cache(&self) {
        *self
            .0
            .template
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// [`migrate_reference`] with this provisioner's configuration and migrations, after
    /// forgetting the cached clone script.
    fn migrate_reference(&self, conn: &mut PgConnection, recreate: bool) -> Result<()> {
        self.clear_clone_cache();
        migrate_reference(
            conn,
            &self.0.options.config,
            &*self.0.options.migrations,
            recreate,
        )
    }
}
