//! Running a [`Migrator`]: selection, order, parallel workers, fail-fast, plan.

use std::collections::{BTreeSet, HashMap};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use super::builder::{DynMigrations, Migrator};
use super::ledger::{LEDGER_BATCH, LedgerState, read_ledgers};
use super::list::{Migrations, read_migrations, versions};
use super::report::{MigrationReport, Mode, Progress, SchemaReport};
use super::run::{apply, pending_in};
use super::selection::{MigrationSet, SchemaKind, Selection, Target};
use crate::catalog::{CatalogRows, InvalidRow};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::error::{MigrationError, MigrationErrorKind};
use crate::lifecycle::schema_exists;
use crate::name::SchemaName;
use crate::parallel::Workers;
use crate::pool::TenantScope;
use crate::transaction;

impl Migrator {
    /// The schemas `selection` names, in run order, with the catalog's current tenants
    /// (what `whowill` prints). Static tenants that do not migrate are included; tenant
    /// rows whose schema name is not valid are not.
    ///
    /// # Errors
    ///
    /// [`Error::Catalog`] when the tenants cannot be listed; the selection's errors
    /// ([`Error::UnknownReference`], [`Error::AmbiguousReference`]); [`Error::Pool`].
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database().models().tenant("t1", &[]); let migrator = db.migrator(pgschemas_diesel::doctest_setup::TENANT_MIGRATIONS).build()?;
    /// let mut lines = Vec::new();
    /// for target in migrator.targets(&pgschemas_diesel::migrate::Selection::all())? {
    ///     println!("{} ({})", target.schema, target.kind);
    ///     lines.push(format!("{} ({})", target.schema, target.kind));
    /// }
    /// assert_eq!(lines, ["public (shared)", "t1 (dynamic)"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
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
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database().models().tenant("t1", &[]).tenant("t2", &[]); let migrator = db.migrator(pgschemas_diesel::doctest_setup::TENANT_MIGRATIONS).build()?;
    /// let report = migrator.run(&pgschemas_diesel::migrate::Selection::all())?;
    /// assert!(report.is_success(), "{report}");
    /// assert_eq!(report.migration_count(), 4); // two in t1, two in t2
    /// assert_eq!(migrator.run(&pgschemas_diesel::migrate::Selection::all())?.migration_count(), 0); // up to date
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run(&self, selection: &Selection) -> Result<MigrationReport> {
        self.execute(selection, Mode::Run)
    }

    /// What [`run`](Self::run) would apply to each selected schema; nothing is applied or
    /// created (a schema without a ledger has every migration pending). A schema that
    /// cannot be planned (it is missing, its ledger cannot be read) is that schema's
    /// failure, and every other schema is still planned, whatever
    /// [`keep_going`](super::MigratorBuilder::keep_going) says; only a failure in the shared
    /// schema leaves the others unplanned (reported skipped), as in a run.
    ///
    /// # Errors
    ///
    /// As [`run`](Self::run). When the tenants cannot be listed but the shared schema is
    /// selected, the plan shows the shared schema and no dynamic tenants.
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database().models().tenant("t1", &[]); let migrator = db.migrator(pgschemas_diesel::doctest_setup::TENANT_MIGRATIONS).build()?;
    /// let plan = migrator.plan(&pgschemas_diesel::migrate::Selection::all())?;
    /// for s in &plan.schemas {
    ///     println!("{}: {} pending", s.schema, s.pending.len());
    /// }
    /// assert_eq!(plan.schemas[0].pending, ["20240101000001", "20240101000002"]);
    /// assert_eq!(migrator.plan(&pgschemas_diesel::migrate::Selection::all())?.migration_count(), 2); // nothing applied
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn plan(&self, selection: &Selection) -> Result<MigrationReport> {
        self.execute(selection, Mode::Plan)
    }

    fn load_catalog(&self) -> Result<CatalogRows> {
        let mut conn = self.pool.get()?;
        CatalogRows::read(&*self.catalog, &mut conn).map_err(|e| Error::Catalog(Box::new(e)))
    }

    fn source(&self, set: MigrationSet) -> Option<&DynMigrations> {
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
        // One batched read of the ledgers settles every schema with nothing to apply (and
        // plans every existing schema) without a checkout of its own; the rest run one by
        // one, each re-reading its ledger under the schema's lock.
        let (settled, tables) = self.settle(rest, mode);
        let mut done = reports.len();
        for report in settled.iter().flatten() {
            done += 1;
            self.notify(&Progress::Finished {
                report,
                done,
                total,
            });
        }
        let unsettled: Vec<Target> = rest
            .iter()
            .zip(&settled)
            .filter(|(_, report)| report.is_none())
            .map(|(target, _)| target.clone())
            .collect();
        let mut ran = self
            .run_parallel(&unsettled, mode, done, total, &tables)
            .into_iter();
        for (target, report) in rest.iter().zip(settled) {
            reports.push(
                report
                    .or_else(|| ran.next())
                    .unwrap_or_else(|| SchemaReport::skipped(target)),
            );
        }
        Ok(MigrationReport::new(reports, invalid, started, mode))
    }

    /// The reports of `targets` that their ledgers, read in batches on one connection, settle
    /// (`None` for the others): in a run, the schemas with nothing pending; in a plan, every
    /// schema that exists and whose ledger can be read. A missing schema, one whose ledger
    /// cannot be read, and every schema of a batch whose statement failed take the
    /// schema-by-schema path, which reports why (and in a run applies nothing to a ledger it
    /// cannot read either). Beside them, what the read found in each ledger that is a
    /// readable table: a run checks under the lock, in a cheaper statement, that it is still
    /// so.
    fn settle(
        &self,
        targets: &[Target],
        mode: Mode,
    ) -> (Vec<Option<SchemaReport>>, HashMap<String, BTreeSet<String>>) {
        let unsettled = || (targets.iter().map(|_| None).collect(), HashMap::new());
        let names: Vec<&str> = targets.iter().map(|t| t.schema.as_str()).collect();
        // The batches are read on the run's workers, each on a connection of its own; together
        // they hold no more ledger locks at once than one batch of `LEDGER_BATCH` would.
        let per_worker = (LEDGER_BATCH / self.workers.max(1)).max(1);
        let batches: Vec<&[&str]> = names.chunks(per_worker).collect();
        let workers = Workers {
            count: self.workers,
            keep_going: false,
        };
        let mut ledgers = HashMap::with_capacity(names.len());
        let read = workers.run(
            &batches,
            || None,
            |conn: &mut Option<TenantScope>, batch, fail_fast| {
                if conn.is_none() {
                    *conn = self.pool.get().ok();
                }
                let read = match conn.as_mut() {
                    Some(conn) => read_ledgers(conn, batch).ok(),
                    None => None,
                };
                if read.is_none() {
                    fail_fast.failed();
                }
                read
            },
            |_, read| match read {
                Some(read) => {
                    ledgers.extend(read);
                    Ok(())
                }
                None => Err(()),
            },
        );
        if read.is_err() {
            return unsettled();
        }
        let mut lists = Lists::default();
        let reports = targets
            .iter()
            .map(|target| {
                let ledger = match ledgers.get(target.schema.as_str())? {
                    LedgerState::Missing => None,
                    LedgerState::Read(applied) => Some(applied),
                    LedgerState::Unreadable(_) => return None,
                };
                let list = lists.get(self, target).ok()?;
                let mut pending = versions(list);
                if let Some(applied) = ledger {
                    pending.retain(|v| !applied.contains(v));
                }
                let mut report = SchemaReport::new(target);
                match mode {
                    Mode::Run if pending.is_empty() && ledger.is_some() => {}
                    Mode::Run => return None,
                    Mode::Plan => report.pending = pending,
                }
                Some(report)
            })
            .collect();
        // The ledgers of the schemas a run still opens, moved out: each is checked under its
        // lock against what was read here.
        let tables = ledgers
            .into_iter()
            .filter_map(|(schema, state)| match state {
                LedgerState::Read(applied) => Some((schema, applied)),
                _ => None,
            })
            .collect();
        (reports, tables)
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
        let report = self.one(&mut conn, &mut lists, target, mode, None);
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
        tables: &HashMap<String, BTreeSet<String>>,
    ) -> Vec<SchemaReport> {
        let done = AtomicUsize::new(done_before);
        let mut slots: Vec<Option<SchemaReport>> = (0..targets.len()).map(|_| None).collect();
        // A plan applies nothing, so nothing is gained by stopping it: every schema is planned.
        let workers = Workers {
            count: self.workers,
            keep_going: self.keep_going || mode == Mode::Plan,
        };
        let collected: Result<(), Infallible> = workers.run(
            targets,
            || (None, Lists::default()),
            |(conn, lists), target, fail_fast| {
                self.notify(&Progress::Started {
                    target,
                    done: done.load(Ordering::SeqCst),
                    total,
                });
                let known = tables.get(target.schema.as_str());
                let report = self.one(conn, lists, target, mode, known);
                if report.error.is_some() {
                    fail_fast.failed();
                }
                let finished = done.fetch_add(1, Ordering::SeqCst) + 1;
                self.notify(&Progress::Finished {
                    report: &report,
                    done: finished,
                    total,
                });
                report
            },
            |i, report| {
                slots[i] = Some(report);
                Ok(())
            },
        );
        let Ok(()) = collected;
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
        known: Option<&BTreeSet<String>>,
    ) -> SchemaReport {
        let started = Instant::now();
        let mut report = SchemaReport::new(target);
        let span = crate::observe::migrate_span(target.schema.as_str());
        let _entered = span.enter();
        match self.one_inner(conn, lists, target, mode, known) {
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
        if mode == Mode::Run {
            crate::observe::migrated(
                target.schema.as_str(),
                &report.applied,
                report.duration,
                report.error.as_ref().map(|e| e as &dyn std::fmt::Display),
            );
        }
        report
    }

    fn one_inner(
        &self,
        slot: &mut Option<TenantScope>,
        lists: &mut Lists,
        target: &Target,
        mode: Mode,
        known: Option<&BTreeSet<String>>,
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
                    ensure_schema(
                        &mut self.checkout(schema, None)?,
                        self.pool.config(),
                        schema,
                    )?;
                }
                // A checkout per schema: the pool switches the connection straight from the
                // previous tenant's path to this one (one round trip, which also checks the
                // connection) and keeps track of it.
                let mut conn = self.checkout(schema, Some(schema))?;
                let result = apply(&mut conn, schema, list, known);
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
///
/// With tenant roles on, a tenant schema is created with its role and grants, in one
/// transaction (the migrator's connections act as the DDL role).
fn ensure_schema(
    conn: &mut TenantScope,
    config: &Config,
    schema: &SchemaName,
) -> Result<(), MigrationError> {
    let exists = schema_exists(conn, schema).map_err(|e| MigrationError::from_crate(schema, e))?;
    if exists {
        return Ok(());
    }
    match crate::roles::lifecycle::create_schema(conn, config, schema) {
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
                Some(source) => read_migrations(&target.schema, source.as_ref())?,
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
