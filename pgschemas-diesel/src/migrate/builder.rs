//! The [`Migrator`] and its settings.

use std::fmt;
use std::sync::Arc;

use diesel::migration::MigrationSource;
use diesel::pg::Pg;

use super::report::Progress;
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::pool::TenantPool;

/// A migration source the workers share.
pub(super) type DynMigrations = Arc<dyn MigrationSource<Pg> + Send + Sync>;
type ProgressFn = Arc<dyn Fn(&Progress<'_>) + Send + Sync>;

/// Migrates many schemas: the shared schema with the shared migrations, then the static
/// tenants, the clone reference and every dynamic tenant with the tenant migrations, on N
/// connections in parallel.
///
/// - **Selection**: a [`Selection`](super::Selection) (all, static, dynamic, tenant-like, references,
///   exclusions) resolved against the configuration and the [`Catalog`]'s tenants. A
///   tenant row that cannot be migrated (its schema name is not valid) is left out and
///   listed in the report's [`invalid_rows`](super::MigrationReport::invalid_rows); the others
///   are migrated.
/// - **Order**: the shared schema first, alone; then static tenants (declared order), the
///   clone reference, dynamic tenants by name, handed out in that order to the workers.
/// - **Each schema** is migrated by [`migrate_schema`](crate::migrate::migrate_schema)'s rules: its
///   own ledger, an advisory lock per (database, schema) so that two processes never
///   migrate it at once, one transaction per migration, never all tenants in one.
/// - **Failures**: by default the run stops handing out schemas after the first failure
///   (the ones already running finish); [`keep_going`](MigratorBuilder::keep_going) runs
///   them all. A failure in the shared schema always stops the run: tenant migrations may
///   depend on it. Running again after a fix finishes the job.
/// - **Plan**: [`plan`](Self::plan) lists what each schema would apply; nothing runs, and a
///   schema that cannot be planned does not stop the others.
///
/// Dynamic tenants are migrated whether active or not. Static tenants declared with
/// `.migrate(false)` are not migrated. The clone reference is
/// migrated when it exists. The shared schema and static tenant schemas that do not exist
/// are created first (turn off with
/// [`create_missing_schemas`](MigratorBuilder::create_missing_schemas)); a dynamic tenant
/// whose schema is missing is reported as failed.
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database().models().tenant("t1", &[]).tenant("t2", &[]); let database_url = db.url();
/// use std::sync::Arc;
/// use diesel_migrations::{EmbeddedMigrations, embed_migrations};
/// use pgschemas_diesel::models::default_catalog;
/// use pgschemas_diesel::{Config, TenantPool};
/// use pgschemas_diesel::migrate::{Migrator, Selection};
///
/// const TENANT: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
///
/// let pool = TenantPool::with_builder(
///     database_url,
///     Config::default(),
///     r2d2::Pool::builder().max_size(4),
/// )?;
/// let migrator = Migrator::builder(pool, Arc::new(default_catalog()))
///     .tenant_migrations(TENANT)
///     .workers(4)
///     .on_progress(|p| eprintln!("{}/{}", p.done(), p.total()))
///     .build()?;
/// let report = migrator.run(&Selection::all())?;
/// println!("{report}");
/// for failed in report.failed() {
///     eprintln!("{}", failed.error.as_ref().unwrap());
/// }
/// assert!(report.is_success(), "{report}");
/// assert_eq!(report.migration_count(), 10); // five in t1, five in t2
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Migrator {
    pub(super) pool: TenantPool,
    pub(super) catalog: Arc<dyn Catalog>,
    pub(super) shared: Option<DynMigrations>,
    pub(super) tenant: Option<DynMigrations>,
    pub(super) workers: usize,
    pub(super) keep_going: bool,
    pub(super) create_missing: bool,
    pub(super) progress: Option<ProgressFn>,
}

impl fmt::Debug for Migrator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Migrator")
            .field("pool", &self.pool)
            .field("shared", &self.shared.is_some())
            .field("tenant", &self.tenant.is_some())
            .field("workers", &self.workers)
            .field("keep_going", &self.keep_going)
            .field("create_missing", &self.create_missing)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Migrator`]; see [`Migrator::builder`].
#[must_use]
pub struct MigratorBuilder {
    inner: Migrator,
}

impl fmt::Debug for MigratorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MigratorBuilder").field(&self.inner).finish()
    }
}

impl MigratorBuilder {
    /// The migrations of the shared schema. Without them, the shared schema is not migrated.
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database(); let pool = db.pool();
    /// # use std::sync::Arc;
    /// const SHARED: diesel_migrations::EmbeddedMigrations =
    ///     diesel_migrations::embed_migrations!("../examples/migrations/tenant");
    /// let builder = pgschemas_diesel::migrate::Migrator::builder(pool, Arc::new(pgschemas_diesel::catalog::NoTenants))
    ///     .shared_migrations(SHARED);
    /// let report = builder.build()?.run(&pgschemas_diesel::migrate::Selection::all())?;
    /// assert_eq!(report.schemas[0].schema.as_str(), "public");
    /// assert_eq!(report.schemas[0].applied.len(), 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shared_migrations<S>(mut self, migrations: S) -> Self
    where
        S: MigrationSource<Pg> + Send + Sync + 'static,
    {
        self.inner.shared = Some(Arc::new(migrations));
        self
    }

    /// The migrations of every tenant schema (static tenants that migrate, the clone
    /// reference, dynamic tenants). Without them, only the shared schema is migrated.
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database().models().tenant("t1", &[]); let pool = db.pool();
    /// # use std::sync::Arc;
    /// use pgschemas_diesel::models::default_catalog;
    ///
    /// const TENANT: diesel_migrations::EmbeddedMigrations =
    ///     diesel_migrations::embed_migrations!("../examples/migrations/tenant");
    /// let builder = pgschemas_diesel::migrate::Migrator::builder(pool, Arc::new(default_catalog()))
    ///     .tenant_migrations(TENANT);
    /// let report = builder.build()?.run(&pgschemas_diesel::migrate::Selection::all())?;
    /// assert_eq!(report.schemas.len(), 1); // the shared schema has no migrations here
    /// assert_eq!(report.schemas[0].schema.as_str(), "t1");
    /// assert_eq!(report.schemas[0].applied.len(), 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tenant_migrations<S>(mut self, migrations: S) -> Self
    where
        S: MigrationSource<Pg> + Send + Sync + 'static,
    {
        self.inner.tenant = Some(Arc::new(migrations));
        self
    }

    /// How many schemas are migrated at once, each on its own pooled connection (default 1).
    /// The pool must have at least this many connections.
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database(); let pool = db.pool();
    /// # use std::sync::Arc;
    /// use pgschemas_diesel::migrate::Migrator;
    /// use pgschemas_diesel::catalog::NoTenants;
    ///
    /// assert_eq!(pool.max_size(), 2);
    /// let builder = Migrator::builder(pool.clone(), Arc::new(NoTenants)).workers(2);
    /// assert!(builder.build().is_ok());
    /// let too_many = Migrator::builder(pool, Arc::new(NoTenants)).workers(4);
    /// assert!(too_many.build().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn workers(mut self, workers: usize) -> Self {
        self.inner.workers = workers;
        self
    }

    /// Whether a run goes on with the other schemas after one fails (default `false`: stop
    /// handing out schemas after the first failure; those already running finish). A
    /// [`plan`](Migrator::plan) always goes on.
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database().models().tenant("t1", &[]).tenant("t2", &[]); let pool = db.pool();
    /// # let failing = pgschemas_diesel::doctest_setup::SqlMigrations(pgschemas_diesel::doctest_setup::FAILING_MIGRATIONS);
    /// # use std::sync::Arc;
    /// // `failing`: two migrations, the second fails in every tenant (t1 and t2)
    /// let builder = pgschemas_diesel::migrate::Migrator::builder(pool, Arc::new(pgschemas_diesel::models::default_catalog()))
    ///     .tenant_migrations(failing)
    ///     .keep_going(true);
    /// let report = builder.build()?.run(&pgschemas_diesel::migrate::Selection::all())?;
    /// assert_eq!(report.failed().count(), 2); // t2 was tried after t1 failed
    /// assert_eq!(report.skipped().count(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn keep_going(mut self, keep_going: bool) -> Self {
        self.inner.keep_going = keep_going;
        self
    }

    /// Whether to create the shared schema and the static tenants' schemas when they do not
    /// exist (default `true`, as django-pgschemas does; dynamic tenants' schemas are never
    /// created here: provision the tenant instead).
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database(); let database_url = db.url();
    /// # use std::sync::Arc;
    /// use pgschemas_diesel::{Config, StaticTenant, TenantPool};
    /// use pgschemas_diesel::migrate::{MigrationErrorKind, Migrator, Selection};
    /// use pgschemas_diesel::catalog::NoTenants;
    ///
    /// const TENANT: diesel_migrations::EmbeddedMigrations =
    ///     diesel_migrations::embed_migrations!("../examples/migrations/tenant");
    /// let config = Config::builder().static_tenant(StaticTenant::builder("www")).build()?;
    /// let pool = TenantPool::new(database_url, config)?;
    /// let builder = Migrator::builder(pool, Arc::new(NoTenants))
    ///     .tenant_migrations(TENANT)
    ///     .create_missing_schemas(false);
    /// let report = builder.build()?.run(&Selection::all())?;
    /// let www = &report.schemas[0];
    /// assert_eq!(www.schema.as_str(), "www");
    /// assert!(matches!(www.error.as_ref().map(|e| e.kind()), Some(MigrationErrorKind::SchemaNotFound)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create_missing_schemas(mut self, create: bool) -> Self {
        self.inner.create_missing = create;
        self
    }

    /// Called when a schema starts and when it finishes, from the worker threads; turn it
    /// into a progress bar or a log line.
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database().models().tenant("t1", &[]).tenant("t2", &[]); let pool = db.pool();
    /// # use std::sync::{Arc, Mutex};
    /// use pgschemas_diesel::migrate::Progress;
    ///
    /// const TENANT: diesel_migrations::EmbeddedMigrations =
    ///     diesel_migrations::embed_migrations!("../examples/migrations/tenant");
    /// let lines = Arc::new(Mutex::new(Vec::new()));
    /// let log = Arc::clone(&lines);
    /// let builder = pgschemas_diesel::migrate::Migrator::builder(pool, Arc::new(pgschemas_diesel::models::default_catalog()))
    ///     .tenant_migrations(TENANT)
    ///     .on_progress(move |p| {
    ///         if let Progress::Finished { report, done, total } = p {
    ///             let line = format!("[{done}/{total}] {} {}", report.schema, if report.error.is_some() { "FAILED" } else { "ok" });
    ///             eprintln!("{line}");
    ///             log.lock().unwrap().push(line);
    ///         }
    ///     });
    /// builder.build()?.run(&pgschemas_diesel::migrate::Selection::all())?;
    /// assert_eq!(*lines.lock().unwrap(), ["[1/2] t1 ok", "[2/2] t2 ok"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_progress<F>(mut self, f: F) -> Self
    where
        F: Fn(&Progress<'_>) + Send + Sync + 'static,
    {
        self.inner.progress = Some(Arc::new(f));
        self
    }

    /// Checks the settings and builds the migrator.
    ///
    /// # Errors
    ///
    /// [`Error::Workers`] when `workers` is 0 or larger than the pool; with tenant roles on,
    /// [`Error::Login`] when the pool's login cannot act as the DDL role (see
    /// [`TenantPool::ddl`](crate::TenantPool::ddl)).
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database(); let pool = db.pool();
    /// # use std::sync::Arc;
    /// use pgschemas_diesel::Error;
    /// use pgschemas_diesel::migrate::Migrator;
    /// use pgschemas_diesel::catalog::NoTenants;
    ///
    /// let migrator = Migrator::builder(pool.clone(), Arc::new(NoTenants)).build()?;
    /// let none = Migrator::builder(pool, Arc::new(NoTenants)).workers(0).build();
    /// assert!(matches!(none, Err(Error::Workers { workers: 0, .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn build(self) -> Result<Migrator> {
        let mut m = self.inner;
        if m.pool.config().tenant_roles().is_some() && !m.pool.is_ddl() {
            m.pool = m.pool.for_ddl()?;
        }
        if m.pool.config().citus() {
            let by_statement =
                |s: DynMigrations| Arc::new(crate::citus::ByStatement(s)) as DynMigrations;
            m.shared = m.shared.map(by_statement);
            m.tenant = m.tenant.map(by_statement);
        }
        let size = m.pool.max_size() as usize;
        if m.workers == 0 || m.workers > size {
            return Err(Error::Workers {
                workers: m.workers,
                pool_size: size,
            });
        }
        Ok(m)
    }
}

impl Migrator {
    /// Starts a migrator over `pool` (whose configuration names the shared schema, the
    /// static tenants and the clone reference) and `catalog` (the dynamic tenants).
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database(); let pool = db.pool();
    /// # use std::sync::Arc;
    /// let migrator = pgschemas_diesel::migrate::Migrator::builder(pool, Arc::new(pgschemas_diesel::catalog::NoTenants)).build()?;
    /// let targets = migrator.targets(&pgschemas_diesel::migrate::Selection::all())?;
    /// assert_eq!(targets.len(), 1); // no tenants: the shared schema only
    /// assert_eq!(targets[0].schema.as_str(), "public");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(pool: TenantPool, catalog: Arc<dyn Catalog>) -> MigratorBuilder {
        MigratorBuilder {
            inner: Migrator {
                pool,
                catalog,
                shared: None,
                tenant: None,
                workers: 1,
                keep_going: false,
                create_missing: true,
                progress: None,
            },
        }
    }
}
