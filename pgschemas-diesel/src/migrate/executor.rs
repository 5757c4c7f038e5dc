//! Migrating many schemas: selection, order, parallel workers, fail-fast, plan, reports.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use diesel::migration::MigrationSource;
use diesel::pg::Pg;

use super::error::{MigrationError, MigrationErrorKind};
use super::list::{Migrations, load, versions};
use super::run::{apply, pending_in};
use super::selection::{MigrationSet, SchemaKind, Selection, Target};
use crate::catalog::{Catalog, CatalogRows, InvalidRow};
use crate::error::{Error, Result};
use crate::lifecycle::{create_schema, schema_exists};
use crate::name::SchemaName;
use crate::pool::{TenantPool, TenantScope};
use crate::transaction;

type Source = Arc<dyn MigrationSource<Pg> + Send + Sync>;
type ProgressFn = Arc<dyn Fn(&Progress<'_>) + Send + Sync>;

/// Migrates many schemas: the shared schema with the shared migrations, then the static
/// tenants, the clone reference and every dynamic tenant with the tenant migrations, on N
/// connections in parallel.
///
/// - **Selection**: a [`Selection`] (all, static, dynamic, tenant-like, references,
///   exclusions) resolved against the configuration and the [`Catalog`]'s tenants. A
///   tenant row that cannot be migrated (its schema name is not valid) is left out and
///   listed in the report's [`invalid_rows`](MigrationReport::invalid_rows); the others
///   are migrated.
/// - **Order**: the shared schema first, alone; then static tenants (declared order), the
///   clone reference, dynamic tenants by name, handed out in that order to the workers.
/// - **Each schema** is migrated by [`migrate_schema`](crate::migrate_schema)'s rules: its
///   own ledger, an advisory lock per (database, schema) so that two processes never
///   migrate it at once, one transaction per migration, never all tenants in one.
/// - **Failures**: by default the run stops handing out schemas after the first failure
///   (the ones already running finish); [`keep_going`](MigratorBuilder::keep_going) runs
///   them all. A failure in the shared schema always stops the run: tenant migrations may
///   depend on it. Running again after a fix finishes the job.
/// - **Plan**: [`plan`](Self::plan) lists what each schema would apply; nothing runs.
///
/// Dynamic tenants are migrated whether active or not. Static tenants declared with
/// `.migrate(false)` are not migrated. The clone reference is
/// migrated when it exists. The shared schema and static tenant schemas that do not exist
/// are created first (turn off with
/// [`create_missing_schemas`](MigratorBuilder::create_missing_schemas)); a dynamic tenant
/// whose schema is missing is reported as failed.
///
/// ```no_run
/// use std::sync::Arc;
/// use diesel_migrations::{EmbeddedMigrations, embed_migrations};
/// use pgschemas_diesel::{Config, Migrator, NoTenants, Selection, TenantPool};
///
/// const TENANT: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
///
/// let pool = TenantPool::with_builder(
///     "postgres://postgres@127.0.0.1/app",
///     Config::default(),
///     r2d2::Pool::builder().max_size(4),
/// )?;
/// let migrator = Migrator::builder(pool, Arc::new(NoTenants))
///     .tenant_migrations(TENANT)
///     .workers(4)
///     .on_progress(|p| eprintln!("{}/{}", p.done(), p.total()))
///     .build()?;
/// let report = migrator.run(&Selection::all())?;
/// println!("{report}");
/// for failed in report.failed() {
///     eprintln!("{}", failed.error.as_ref().unwrap());
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Migrator {
    pool: TenantPool,
    catalog: Arc<dyn Catalog>,
    shared: Option<Source>,
    tenant: Option<Source>,
    workers: usize,
    keep_going: bool,
    create_missing: bool,
    progress: Option<ProgressFn>,
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
    /// ```no_run
    /// # use std::sync::Arc;
    /// # fn demo(pool: pgschemas_diesel::TenantPool) -> Result<(), Box<dyn std::error::Error>> {
    /// const SHARED: diesel_migrations::EmbeddedMigrations =
    ///     diesel_migrations::embed_migrations!("../examples/migrations/tenant");
    /// let builder = pgschemas_diesel::Migrator::builder(pool, Arc::new(pgschemas_diesel::NoTenants))
    ///     .shared_migrations(SHARED);
    /// # Ok(()) }
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
    /// ```no_run
    /// # use std::sync::Arc;
    /// # fn demo(pool: pgschemas_diesel::TenantPool) -> Result<(), Box<dyn std::error::Error>> {
    /// const TENANT: diesel_migrations::EmbeddedMigrations =
    ///     diesel_migrations::embed_migrations!("../examples/migrations/tenant");
    /// let builder = pgschemas_diesel::Migrator::builder(pool, Arc::new(pgschemas_diesel::NoTenants))
    ///     .tenant_migrations(TENANT);
    /// # Ok(()) }
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
    /// ```no_run
    /// # use std::sync::Arc;
    /// # fn demo(pool: pgschemas_diesel::TenantPool) -> Result<(), Box<dyn std::error::Error>> {
    /// let builder = pgschemas_diesel::Migrator::builder(pool, Arc::new(pgschemas_diesel::NoTenants))
    ///     .workers(4);
    /// # Ok(()) }
    /// ```
    pub fn workers(mut self, workers: usize) -> Self {
        self.inner.workers = workers;
        self
    }

    /// Whether to go on with the other schemas after one fails (default `false`: stop
    /// handing out schemas after the first failure; those already running finish).
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # fn demo(pool: pgschemas_diesel::TenantPool) -> Result<(), Box<dyn std::error::Error>> {
    /// let builder = pgschemas_diesel::Migrator::builder(pool, Arc::new(pgschemas_diesel::NoTenants))
    ///     .keep_going(true);
    /// # Ok(()) }
    /// ```
    pub fn keep_going(mut self, keep_going: bool) -> Self {
        self.inner.keep_going = keep_going;
        self
    }

    /// Whether to create the shared schema and the static tenants' schemas when they do not
    /// exist (default `true`, as django-pgschemas does; dynamic tenants' schemas are never
    /// created here: provision the tenant instead).
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # fn demo(pool: pgschemas_diesel::TenantPool) -> Result<(), Box<dyn std::error::Error>> {
    /// let builder = pgschemas_diesel::Migrator::builder(pool, Arc::new(pgschemas_diesel::NoTenants))
    ///     .create_missing_schemas(false);
    /// # Ok(()) }
    /// ```
    pub fn create_missing_schemas(mut self, create: bool) -> Self {
        self.inner.create_missing = create;
        self
    }

    /// Called when a schema starts and when it finishes, from the worker threads; turn it
    /// into a progress bar or a log line.
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # fn demo(pool: pgschemas_diesel::TenantPool) -> Result<(), Box<dyn std::error::Error>> {
    /// use pgschemas_diesel::Progress;
    /// let builder = pgschemas_diesel::Migrator::builder(pool, Arc::new(pgschemas_diesel::NoTenants))
    ///     .on_progress(|p| {
    ///         if let Progress::Finished { report, done, total } = p {
    ///             eprintln!("[{done}/{total}] {} {}", report.schema, if report.error.is_some() { "FAILED" } else { "ok" });
    ///         }
    ///     });
    /// # Ok(()) }
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
    /// [`Error::Config`] when `workers` is 0 or larger than the pool.
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # fn demo(pool: pgschemas_diesel::TenantPool) -> Result<(), Box<dyn std::error::Error>> {
    /// let migrator = pgschemas_diesel::Migrator::builder(pool, Arc::new(pgschemas_diesel::NoTenants)).build()?;
    /// # Ok(()) }
    /// ```
    pub fn build(self) -> Result<Migrator> {
        let m = self.inner;
        if m.workers == 0 {
            return Err(Error::Config(
                "the migrator needs at least one worker".into(),
            ));
        }
        let size = m.pool.max_size() as usize;
        if m.workers > size {
            return Err(Error::Config(format!(
                "the migrator has {} workers but the pool only {size} connections; each worker holds one: build the pool with max_size({})",
                m.workers, m.workers
            )));
        }
        Ok(m)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Run,
    Plan,
}

impl Migrator {
    /// Starts a migrator over `pool` (whose configuration names the shared schema, the
    /// static tenants and the clone reference) and `catalog` (the dynamic tenants).
    ///
    /// ```no_run
    /// # use std::sync::Arc;
    /// # fn demo(pool: pgschemas_diesel::TenantPool) -> Result<(), Box<dyn std::error::Error>> {
    /// let migrator = pgschemas_diesel::Migrator::builder(pool, Arc::new(pgschemas_diesel::NoTenants)).build()?;
    /// # Ok(()) }
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

    /// The schemas `selection` names, in run order, with the catalog's current tenants
    /// (what `whowill` prints). Static tenants that do not migrate are included; tenant
    /// rows whose schema name is not valid are not.
    ///
    /// # Errors
    ///
    /// [`Error::Catalog`] when the tenants cannot be listed; the selection's errors
    /// ([`Error::UnknownReference`], [`Error::AmbiguousReference`]); [`Error::Pool`].
    ///
    /// ```no_run
    /// # fn demo(migrator: pgschemas_diesel::Migrator) -> Result<(), Box<dyn std::error::Error>> {
    /// for target in migrator.targets(&pgschemas_diesel::Selection::all())? {
    ///     println!("{} ({})", target.schema, target.kind);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn targets(&self, selection: &Selection) -> Result<Vec<Target>> {
        let rows = self.load_catalog()?;
        selection.resolve(self.pool.config(), &rows.tenants, &rows.domains)
    }

    /// Migrates the selected schemas and reports on each.
    ///
    /// The returned report says which schemas failed (and why), which were skipped after a
    /// failure, what each applied, and which tenant rows were left out because they cannot
    /// be migrated; an `Err` means the run could not start.
    ///
    /// # Errors
    ///
    /// Before anything runs: [`Error::UnknownReference`] / [`Error::AmbiguousReference`]
    /// for a bad selection, [`Error::Catalog`] when the tenants cannot be listed (if the
    /// shared schema is selected and the tenant tables are missing, the shared schema is
    /// migrated first and the catalog read again), [`Error::Pool`], [`Error::Database`].
    ///
    /// ```no_run
    /// # fn demo(migrator: pgschemas_diesel::Migrator) -> Result<(), Box<dyn std::error::Error>> {
    /// let report = migrator.run(&pgschemas_diesel::Selection::all())?;
    /// assert!(report.is_success(), "{report}");
    /// # Ok(()) }
    /// ```
    pub fn run(&self, selection: &Selection) -> Result<MigrationReport> {
        self.execute(selection, Mode::Run)
    }

    /// What [`run`](Self::run) would apply to each selected schema; nothing is applied or
    /// created (a schema without a ledger has every migration pending).
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run). When the tenants cannot be listed but the shared schema is
    /// selected, the plan shows the shared schema and no dynamic tenants.
    ///
    /// ```no_run
    /// # fn demo(migrator: pgschemas_diesel::Migrator) -> Result<(), Box<dyn std::error::Error>> {
    /// let plan = migrator.plan(&pgschemas_diesel::Selection::all())?;
    /// for s in &plan.schemas {
    ///     println!("{}: {} pending", s.schema, s.pending.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn plan(&self, selection: &Selection) -> Result<MigrationReport> {
        self.execute(selection, Mode::Plan)
    }

    fn load_catalog(&self) -> Result<CatalogRows> {
        let mut conn = self.pool.get()?;
        CatalogRows::read(&*self.catalog, &mut conn).map_err(|e| Error::Catalog(Box::new(e)))
    }

    fn source(&self, set: MigrationSet) -> Option<&Source> {
        match set {
            MigrationSet::Shared => self.shared.as_ref(),
            MigrationSet::Tenant => self.tenant.as_ref(),
            MigrationSet::None => None,
        }
    }

    fn execute(&self, selection: &Selection, mode: Mode) -> Result<MigrationReport> {
        let started = Instant::now();
        let config = self.pool.config();
        let shared_selected =
            self.shared.is_some() && selects_shared(selection, config.shared_schema());

        // The tenants live in tables the shared migrations may create: when they cannot be
        // listed and the shared schema is selected, migrate it first and look again (a plan
        // shows no dynamic tenants then).
        let mut early: Option<SchemaReport> = None;
        let rows = match self.load_catalog() {
            Ok(catalog) => catalog,
            Err(_) if shared_selected && mode == Mode::Plan => CatalogRows::default(),
            Err(_) if shared_selected => {
                let shared = Target {
                    schema: config.shared_schema().clone(),
                    kind: SchemaKind::Shared,
                    migrations: MigrationSet::Shared,
                };
                let report = self.run_alone(&shared, mode, 1);
                if report.error.is_some() {
                    return Ok(MigrationReport::new(
                        vec![report],
                        Vec::new(),
                        started,
                        mode,
                    ));
                }
                early = Some(report);
                self.load_catalog()?
            }
            Err(e) => return Err(e),
        };

        let invalid: Vec<InvalidRow> = if selection.takes_every_dynamic() {
            rows.invalid_tenants().cloned().collect()
        } else {
            Vec::new()
        };
        let mut targets: Vec<Target> = selection
            .resolve(config, &rows.tenants, &rows.domains)?
            .into_iter()
            .filter(|t| self.source(t.migrations).is_some())
            .collect();
        if let Some(pos) = targets.iter().position(|t| t.kind == SchemaKind::Reference) {
            let mut conn = self.pool.get()?;
            if !schema_exists(&mut conn, &targets[pos].schema)? {
                targets.remove(pos);
            }
        }

        let total = targets.len();
        let mut reports: Vec<SchemaReport> = Vec::with_capacity(total);
        let mut rest: &[Target] = &targets;
        if let Some(first) = targets.first().filter(|t| t.kind == SchemaKind::Shared) {
            rest = &targets[1..];
            let report = match early {
                Some(report) => report,
                None => self.run_alone(first, mode, total),
            };
            let failed = report.error.is_some();
            reports.push(report);
            if failed {
                reports.extend(rest.iter().map(SchemaReport::skipped));
                return Ok(MigrationReport::new(reports, invalid, started, mode));
            }
        }
        reports.extend(self.run_parallel(rest, mode, reports.len(), total));
        Ok(MigrationReport::new(reports, invalid, started, mode))
    }

    /// Runs one target on its own connection (the shared schema, before the others).
    fn run_alone(&self, target: &Target, mode: Mode, total: usize) -> SchemaReport {
        self.notify(&Progress::Started {
            target,
            done: 0,
            total,
        });
        let mut conn = None;
        let mut lists = Lists::default();
        let report = self.one(&mut conn, &mut lists, target, mode);
        self.notify(&Progress::Finished {
            report: &report,
            done: 1,
            total,
        });
        report
    }

    fn run_parallel(
        &self,
        targets: &[Target],
        mode: Mode,
        done_before: usize,
        total: usize,
    ) -> Vec<SchemaReport> {
        let next = AtomicUsize::new(0);
        let done = AtomicUsize::new(done_before);
        let stop = AtomicBool::new(false);
        let slots: Mutex<Vec<Option<SchemaReport>>> =
            Mutex::new((0..targets.len()).map(|_| None).collect());
        let workers = self.workers.min(targets.len());

        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    let mut conn = None;
                    let mut lists = Lists::default();
                    loop {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(target) = targets.get(i) else { break };
                        self.notify(&Progress::Started {
                            target,
                            done: done.load(Ordering::SeqCst),
                            total,
                        });
                        let report = self.one(&mut conn, &mut lists, target, mode);
                        if report.error.is_some() && !self.keep_going {
                            stop.store(true, Ordering::SeqCst);
                        }
                        let finished = done.fetch_add(1, Ordering::SeqCst) + 1;
                        self.notify(&Progress::Finished {
                            report: &report,
                            done: finished,
                            total,
                        });
                        slots.lock().unwrap_or_else(PoisonError::into_inner)[i] = Some(report);
                    }
                });
            }
        });

        let slots = slots.into_inner().unwrap_or_else(PoisonError::into_inner);
        slots
            .into_iter()
            .zip(targets)
            .map(|(slot, target)| slot.unwrap_or_else(|| SchemaReport::skipped(target)))
            .collect()
    }

    fn notify(&self, progress: &Progress<'_>) {
        if let Some(f) = &self.progress {
            f(progress);
        }
    }

    /// Migrates (or plans) one schema; `conn` is the worker's connection for plans.
    fn one(
        &self,
        conn: &mut Option<TenantScope>,
        lists: &mut Lists,
        target: &Target,
        mode: Mode,
    ) -> SchemaReport {
        let started = Instant::now();
        let mut report = SchemaReport {
            schema: target.schema.clone(),
            kind: target.kind,
            applied: Vec::new(),
            pending: Vec::new(),
            duration: Duration::ZERO,
            error: None,
            skipped: false,
        };
        match self.one_inner(conn, lists, target, mode) {
            Ok(versions) => match mode {
                Mode::Run => report.applied = versions,
                Mode::Plan => report.pending = versions,
            },
            Err(e) => {
                // The connection itself may be at fault: hand it back, the pool checks it at
                // the next checkout.
                *conn = None;
                report.error = Some(e);
            }
        }
        report.duration = started.elapsed();
        report
    }

    fn one_inner(
        &self,
        slot: &mut Option<TenantScope>,
        lists: &mut Lists,
        target: &Target,
        mode: Mode,
    ) -> Result<Vec<String>, MigrationError> {
        let schema = &target.schema;
        let list = lists.get(self, target)?;
        match mode {
            Mode::Plan => {
                // Plans read qualified names and never switch: one connection per worker.
                if slot.as_mut().is_none_or(TenantScope::is_poisoned) {
                    *slot = None;
                    *slot = Some(self.checkout(schema, None)?);
                }
                let pending = match slot.as_mut() {
                    Some(conn) => pending_in(conn, schema, list),
                    None => unreachable!("the slot was just filled"),
                };
                match pending {
                    // A run would create it and apply everything.
                    Err(e)
                        if self.create_missing
                            && matches!(target.kind, SchemaKind::Shared | SchemaKind::Static)
                            && matches!(e.kind(), MigrationErrorKind::SchemaNotFound) =>
                    {
                        Ok(versions(list))
                    }
                    other => other,
                }
            }
            Mode::Run => {
                if self.create_missing
                    && matches!(target.kind, SchemaKind::Shared | SchemaKind::Static)
                {
                    ensure_schema(&mut self.checkout(schema, None)?, schema)?;
                }
                // A checkout per schema: the pool switches the connection straight from the
                // previous tenant's path to this one (one round trip, which also checks the
                // connection) and keeps track of it.
                let mut conn = self.checkout(schema, Some(schema))?;
                let result = apply(&mut conn, schema, list);
                if result.is_err() {
                    // Whatever failed, the session may not be as the pool believes (a
                    // migration outside a transaction may have changed the path, or ended the
                    // session): discard the connection rather than reuse it.
                    transaction::mark_broken(&mut conn);
                }
                result
            }
        }
    }

    /// A pooled connection with `schema`'s path (or the neutral path).
    fn checkout(
        &self,
        about: &SchemaName,
        schema: Option<&SchemaName>,
    ) -> Result<TenantScope, MigrationError> {
        match schema {
            Some(s) => self.pool.scope(s),
            None => self.pool.get(),
        }
        .map_err(|e| MigrationError::from_crate(about, e))
    }
}

/// Creates a configured schema that does not exist yet.
fn ensure_schema(conn: &mut TenantScope, schema: &SchemaName) -> Result<(), MigrationError> {
    let exists = schema_exists(conn, schema).map_err(|e| MigrationError::from_crate(schema, e))?;
    if exists {
        return Ok(());
    }
    match create_schema(conn, schema) {
        Ok(()) | Err(Error::SchemaExists { .. }) => Ok(()),
        Err(e) => Err(MigrationError::from_crate(schema, e)),
    }
}

/// Whether `selection` names the shared schema, judged without the tenants: a wildcard that
/// includes it, or its name, and not excluded by name.
fn selects_shared(selection: &Selection, shared: &SchemaName) -> bool {
    let named = |refs: &[String]| refs.iter().any(|r| r == shared.as_str());
    (selection.include_all
        || selection.include_static
        || selection.is_empty()
        || named(&selection.schemas))
        && !named(&selection.exclude)
}

/// A worker's migration lists, loaded on first use (migrations are not `Send`).
#[derive(Default)]
struct Lists {
    shared: Option<Migrations>,
    tenant: Option<Migrations>,
}

impl Lists {
    fn get(&mut self, migrator: &Migrator, target: &Target) -> Result<&Migrations, MigrationError> {
        let (slot, source) = match target.migrations {
            MigrationSet::Shared => (&mut self.shared, &migrator.shared),
            MigrationSet::Tenant => (&mut self.tenant, &migrator.tenant),
            MigrationSet::None => (&mut self.tenant, &None),
        };
        if slot.is_none() {
            let list = match source {
                Some(source) => load(&target.schema, source.as_ref())?,
                None => Vec::new(),
            };
            *slot = Some(list);
        }
        match slot {
            Some(list) => Ok(list),
            None => unreachable!("the list was just loaded"),
        }
    }
}

/// A schema started or finished; passed to [`MigratorBuilder::on_progress`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Progress<'a> {
    /// A worker started on a schema.
    Started {
        /// The schema.
        target: &'a Target,
        /// Schemas finished so far.
        done: usize,
        /// Schemas in the run.
        total: usize,
    },
    /// A schema is done (migrated, planned or failed).
    Finished {
        /// What happened.
        report: &'a SchemaReport,
        /// Schemas finished so far, this one included.
        done: usize,
        /// Schemas in the run.
        total: usize,
    },
}

impl Progress<'_> {
    /// Schemas finished so far.
    ///
    /// ```no_run
    /// # fn demo(p: pgschemas_diesel::Progress<'_>) -> Result<(), Box<dyn std::error::Error>> {
    /// let fraction = p.done() as f64 / p.total() as f64;
    /// # Ok(()) }
    /// ```
    pub fn done(&self) -> usize {
        match self {
            Self::Started { done, .. } | Self::Finished { done, .. } => *done,
        }
    }

    /// Schemas in the run.
    pub fn total(&self) -> usize {
        match self {
            Self::Started { total, .. } | Self::Finished { total, .. } => *total,
        }
    }

    /// The schema this is about.
    pub fn schema(&self) -> &SchemaName {
        match self {
            Self::Started { target, .. } => &target.schema,
            Self::Finished { report, .. } => &report.schema,
        }
    }
}

/// What happened to one schema in a [`Migrator`] run or plan.
#[derive(Debug)]
pub struct SchemaReport {
    /// The schema.
    pub schema: SchemaName,
    /// What it is.
    pub kind: SchemaKind,
    /// The versions applied, in order (run).
    pub applied: Vec<String>,
    /// The versions pending, in order (plan).
    pub pending: Vec<String>,
    /// How long the schema took.
    pub duration: Duration,
    /// Why it failed, when it did. Migrations applied before the failure stay applied.
    pub error: Option<MigrationError>,
    /// Not started because an earlier schema failed (fail-fast).
    pub skipped: bool,
}

impl SchemaReport {
    fn skipped(target: &Target) -> Self {
        Self {
            schema: target.schema.clone(),
            kind: target.kind,
            applied: Vec::new(),
            pending: Vec::new(),
            duration: Duration::ZERO,
            error: None,
            skipped: true,
        }
    }

    /// Whether the schema was migrated (or planned) without error.
    ///
    /// ```no_run
    /// # fn demo(report: pgschemas_diesel::MigrationReport) -> Result<(), Box<dyn std::error::Error>> {
    /// assert!(report.schemas.iter().all(|s| s.is_success()));
    /// # Ok(()) }
    /// ```
    pub fn is_success(&self) -> bool {
        self.error.is_none() && !self.skipped
    }
}

/// The outcome of a [`Migrator`] run or plan: one [`SchemaReport`] per selected schema, in
/// run order, and one [`InvalidRow`] per tenant row left out. `Display` prints a one-line
/// summary, then the failures and the rows left out.
#[derive(Debug)]
pub struct MigrationReport {
    /// One entry per schema, in run order.
    pub schemas: Vec<SchemaReport>,
    /// The tenant rows the selection takes (it takes every dynamic tenant) that cannot be
    /// migrated: their schema name is not valid, so they have no schema to migrate. Each
    /// names the row (its key and stored name); the other tenants were migrated.
    pub invalid_rows: Vec<InvalidRow>,
    /// The whole run's wall time.
    pub duration: Duration,
    /// Whether this is a plan (nothing applied).
    pub plan: bool,
}

impl MigrationReport {
    fn new(
        schemas: Vec<SchemaReport>,
        invalid_rows: Vec<InvalidRow>,
        started: Instant,
        mode: Mode,
    ) -> Self {
        Self {
            schemas,
            invalid_rows,
            duration: started.elapsed(),
            plan: mode == Mode::Plan,
        }
    }

    /// The schemas that failed, in run order.
    ///
    /// ```no_run
    /// # fn demo(report: pgschemas_diesel::MigrationReport) -> Result<(), Box<dyn std::error::Error>> {
    /// for s in report.failed() {
    ///     eprintln!("{}", s.error.as_ref().unwrap());
    /// }
    /// # Ok(()) }
    /// ```
    pub fn failed(&self) -> impl Iterator<Item = &SchemaReport> {
        self.schemas.iter().filter(|s| s.error.is_some())
    }

    /// The schemas not started because of an earlier failure.
    pub fn skipped(&self) -> impl Iterator<Item = &SchemaReport> {
        self.schemas.iter().filter(|s| s.skipped)
    }

    /// Whether every selected schema was migrated (or planned) and no tenant row was left
    /// out.
    ///
    /// ```no_run
    /// # fn demo(report: pgschemas_diesel::MigrationReport) -> Result<(), Box<dyn std::error::Error>> {
    /// if !report.is_success() {
    ///     std::process::exit(1);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn is_success(&self) -> bool {
        self.schemas.iter().all(SchemaReport::is_success) && self.invalid_rows.is_empty()
    }

    /// Migrations applied (run) or pending (plan), over all schemas.
    pub fn migration_count(&self) -> usize {
        self.schemas
            .iter()
            .map(|s| s.applied.len() + s.pending.len())
            .sum()
    }
}

impl fmt::Display for MigrationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failed = self.failed().count();
        let skipped = self.skipped().count();
        let verb = if self.plan { "pending" } else { "applied" };
        write!(
            f,
            "{} schemas, {} migrations {verb}, {failed} failed, {skipped} skipped",
            self.schemas.len(),
            self.migration_count(),
        )?;
        if !self.invalid_rows.is_empty() {
            let n = self.invalid_rows.len();
            let rows = if n == 1 { "row" } else { "rows" };
            write!(f, ", {n} tenant {rows} left out")?;
        }
        write!(f, ", in {:.1} s", self.duration.as_secs_f64())?;
        for s in self.failed() {
            if let Some(e) = &s.error {
                write!(f, "\n  {e}")?;
            }
        }
        for row in &self.invalid_rows {
            write!(f, "\n  {row}")?;
        }
        Ok(())
    }
}
