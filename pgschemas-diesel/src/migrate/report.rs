//! What a [`Migrator`](crate::migrate::Migrator) run reports: per schema, as it goes and at the end.

use std::fmt;
use std::time::{Duration, Instant};

use super::selection::{SchemaKind, Target};
use crate::catalog::InvalidRow;
use crate::error::MigrationError;
use crate::name::SchemaName;

/// Whether a run applies the migrations or only lists them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Run,
    Plan,
}

/// A schema started or finished; passed to
/// [`MigratorBuilder::on_progress`](crate::migrate::MigratorBuilder::on_progress).
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
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database().models().tenant("t1", &[]).tenant("t2", &[]); let builder = db.migrator(pgschemas_diesel::doctest_setup::TENANT_MIGRATIONS);
    /// # use std::sync::{Arc, Mutex};
    /// use pgschemas_diesel::migrate::Progress;
    ///
    /// let fractions = Arc::new(Mutex::new(Vec::new()));
    /// let seen = Arc::clone(&fractions);
    /// let migrator = builder
    ///     .on_progress(move |p| {
    ///         if let Progress::Finished { .. } = p {
    ///             let fraction = p.done() as f64 / p.total() as f64;
    ///             seen.lock().unwrap().push(fraction);
    ///         }
    ///     })
    ///     .build()?;
    /// migrator.run(&pgschemas_diesel::migrate::Selection::all())?;
    /// assert_eq!(*fractions.lock().unwrap(), [0.5, 1.0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
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

/// What happened to one schema in a [`Migrator`](crate::migrate::Migrator) run or plan.
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
    /// A report on `target`, nothing done yet.
    pub(super) fn new(target: &Target) -> Self {
        Self {
            schema: target.schema.clone(),
            kind: target.kind,
            applied: Vec::new(),
            pending: Vec::new(),
            duration: Duration::ZERO,
            error: None,
            skipped: false,
        }
    }

    /// A report on `target`, not started because an earlier schema failed.
    pub(super) fn skipped(target: &Target) -> Self {
        Self {
            skipped: true,
            ..Self::new(target)
        }
    }

    /// Whether the schema was migrated (or planned) without error.
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database().models().tenant("t1", &[]).tenant("t2", &[]); let report = db.migrator(pgschemas_diesel::doctest_setup::TENANT_MIGRATIONS).build()?.run(&pgschemas_diesel::migrate::Selection::all())?;
    /// assert!(report.schemas.iter().all(|s| s.is_success()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_success(&self) -> bool {
        self.error.is_none() && !self.skipped
    }
}

/// The outcome of a [`Migrator`](crate::migrate::Migrator) run or plan: one [`SchemaReport`] per selected schema, in
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
    pub(super) fn new(
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
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database().models().tenant("t1", &[]).tenant("t2", &[]); let report = db.migrator(pgschemas_diesel::doctest_setup::FAILING_MIGRATIONS).build()?.run(&pgschemas_diesel::migrate::Selection::all())?;
    /// // `report`: a run over t1 and t2 whose second migration fails
    /// for s in report.failed() {
    ///     eprintln!("{}", s.error.as_ref().unwrap());
    /// }
    /// let failed: Vec<&str> = report.failed().map(|s| s.schema.as_str()).collect();
    /// assert_eq!(failed, ["t1"]); // then the run stopped: t2 was skipped
    /// assert_eq!(report.skipped().count(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
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
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database().models().tenant("t1", &[]); let report = db.migrator(pgschemas_diesel::doctest_setup::FAILING_MIGRATIONS).build()?.run(&pgschemas_diesel::migrate::Selection::all())?;
    /// use std::process::ExitCode;
    ///
    /// // `report`: a run whose second migration failed in t1
    /// let code = if report.is_success() { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    /// assert_eq!(code, ExitCode::FAILURE);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
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
                write!(f, "\n  {}", e.report())?;
            }
        }
        for row in &self.invalid_rows {
            write!(f, "\n  {row}")?;
        }
        Ok(())
    }
}
