//! `migrate`: the selected schemas through the [`Migrator`], a line per schema as it
//! finishes, then a summary table (or, with `--plan`, what each schema would apply).

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use diesel::migration::MigrationSource;

use super::common::{left_out_note, success_if, write_failed, write_left_out, write_not_started};
use super::{CliResult, Ctx};
use crate::catalog::InvalidRow;
use crate::cli::app::{App, SharedMigrations};
use crate::cli::args::MigrateArgs;
use crate::cli::output::{Reporter, Table, duration, plural};
use crate::migrate::{MigrationError, Migrator, Progress, SchemaKind, SchemaReport};
use crate::parallel::Workers;
use crate::pool::TenantPool;

pub(super) fn migrate(ctx: &mut Ctx<'_>, args: MigrateArgs) -> CliResult {
    let workers = Workers::from(args.workers);
    let pool = ctx.pool(workers.count)?;
    let (tx, rx) = mpsc::channel::<Event>();
    let migrator = migrator(ctx.app, pool, workers, tx)?;
    let selection = args.select.selection();
    let plan = args.plan;
    let reporter = Reporter::new(ctx.progress, if plan { "planning" } else { "migrating" });
    let out = &mut *ctx.out;
    let result = std::thread::scope(|scope| -> CliResult<_> {
        let run = scope.spawn(move || {
            let report = if plan {
                migrator.plan(&selection)
            } else {
                migrator.run(&selection)
            };
            // The last sender goes with it: the events end.
            drop(migrator);
            report
        });
        follow(&reporter, out, rx, plan)?;
        match run.join() {
            Ok(report) => Ok(report?),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })?;

    if plan {
        print_plan(ctx, &result.schemas, &result.invalid_rows, result.duration)?;
    } else {
        print_summary(
            ctx.out,
            &result.schemas,
            &result.invalid_rows,
            result.duration,
        )?;
    }
    Ok(success_if(result.is_success()))
}

/// The migrator of the app's migrations, sending its progress to `events`.
fn migrator(
    app: &App,
    pool: TenantPool,
    workers: Workers,
    events: mpsc::Sender<Event>,
) -> CliResult<Migrator> {
    let mut builder = Migrator::builder(pool, Arc::clone(&app.catalog))
        .tenant_migrations(app.tenant_migrations.clone())
        .workers(workers.count)
        .keep_going(workers.keep_going)
        .on_progress(move |p| {
            // The receiver lives until the run ends.
            let _ = events.send(Event::from(p));
        });
    if let Some(shared) = &app.shared_migrations {
        builder = builder.shared_migrations(shared.clone());
    }
    Ok(builder.build()?)
}

/// A migrator event, owned, sent from the workers to the thread that writes.
enum Event {
    Started { total: usize },
    Finished(Finished),
}

struct Finished {
    schema: String,
    applied: usize,
    duration: Duration,
    error: Option<String>,
}

impl From<&Progress<'_>> for Event {
    fn from(p: &Progress<'_>) -> Self {
        match p {
            Progress::Started { total, .. } => Self::Started { total: *total },
            Progress::Finished { report, .. } => Self::Finished(Finished {
                schema: report.schema.to_string(),
                applied: report.applied.len(),
                duration: report.duration,
                error: report.error.as_ref().map(|e| e.report().to_string()),
            }),
        }
    }
}

impl Finished {
    /// `t1 ... ok (3 applied, 41 ms)`.
    fn line(&self) -> String {
        let took = duration(self.duration);
        match &self.error {
            None if self.applied == 0 => format!("{} ... ok (up to date, {took})", self.schema),
            None => format!("{} ... ok ({} applied, {took})", self.schema, self.applied),
            Some(e) => format!("{} ... FAILED ({took}): {e}", self.schema),
        }
    }
}

/// Writes each schema's line as it finishes (for a plan, a tick of the bar) until the run
/// ends; then the first write error, if any.
fn follow(
    reporter: &Reporter,
    out: &mut dyn Write,
    events: mpsc::Receiver<Event>,
    plan: bool,
) -> io::Result<()> {
    let mut write_error = None;
    for event in events {
        let written = match event {
            Event::Started { total } => {
                reporter.set_total(total);
                Ok(())
            }
            Event::Finished(_) if plan => {
                reporter.tick();
                Ok(())
            }
            Event::Finished(f) => reporter.done(out, &f.line(), f.error.is_some()),
        };
        if let Err(e) = written {
            write_error.get_or_insert(e);
        }
    }
    reporter.finish();
    write_error.map_or(Ok(()), Err)
}

/// Version -> full migration name, for both sets.
fn migration_names(app: &App) -> HashMap<(bool, String), String> {
    let mut names = HashMap::new();
    let sets: [(bool, Option<&SharedMigrations>); 2] = [
        (true, app.shared_migrations.as_ref()),
        (false, Some(&app.tenant_migrations)),
    ];
    for (shared, source) in sets {
        if let Some(Ok(list)) = source.map(|s| s.migrations()) {
            for m in list {
                names.insert(
                    (shared, m.name().version().to_string()),
                    m.name().to_string(),
                );
            }
        }
    }
    names
}

fn print_plan(
    ctx: &mut Ctx<'_>,
    schemas: &[SchemaReport],
    invalid: &[InvalidRow],
    took: Duration,
) -> CliResult<()> {
    let names = migration_names(ctx.app);
    let out = &mut *ctx.out;
    for s in schemas {
        write_schema_plan(out, s, &names)?;
    }
    let pending_total: usize = schemas
        .iter()
        .filter(|s| s.error.is_none())
        .map(|s| s.pending.len())
        .sum();
    let failed = schemas.iter().filter(|s| s.error.is_some()).count();
    write_left_out(out, invalid)?;
    writeln!(
        out,
        "plan: {}, {} pending, {} failed{}, in {}; nothing was applied",
        plural(schemas.len(), "schema"),
        plural(pending_total, "migration"),
        failed,
        left_out_note(invalid),
        duration(took)
    )?;
    Ok(())
}

/// One schema of a plan: failed, skipped, up to date, or its pending migrations by name.
fn write_schema_plan(
    out: &mut dyn Write,
    s: &SchemaReport,
    names: &HashMap<(bool, String), String>,
) -> io::Result<()> {
    let head = format!("{} ({})", s.schema, s.kind);
    if let Some(e) = &s.error {
        return writeln!(out, "{head}: FAILED: {}", e.report());
    }
    if s.skipped {
        return writeln!(out, "{head}: not planned (the shared schema failed)");
    }
    if s.pending.is_empty() {
        return writeln!(out, "{head}: up to date");
    }
    writeln!(out, "{head}: {} pending", s.pending.len())?;
    let shared = s.kind == SchemaKind::Shared;
    for v in &s.pending {
        let name = names.get(&(shared, v.clone())).unwrap_or(v);
        writeln!(out, "  {name}")?;
    }
    Ok(())
}

/// Per kind, and in total: schemas, ok, failed, skipped, migrations applied.
type Counts = [usize; 5];

fn print_summary(
    out: &mut dyn Write,
    schemas: &[SchemaReport],
    invalid: &[InvalidRow],
    took: Duration,
) -> CliResult<()> {
    let (table, total) = counts_table(schemas);
    writeln!(out)?;
    table.write(out, "")?;
    write_failed(out, &failures_table(schemas))?;
    let skipped: Vec<&str> = schemas
        .iter()
        .filter(|s| s.skipped)
        .map(|s| s.schema.as_str())
        .collect();
    write_not_started(out, &skipped)?;
    write_left_out(out, invalid)?;
    writeln!(
        out,
        "\nmigrated {} in {}: {} ok, {} failed, {} skipped, {} applied{}",
        plural(total[0], "schema"),
        duration(took),
        total[1],
        total[2],
        total[3],
        plural(total[4], "migration"),
        left_out_note(invalid)
    )?;
    Ok(())
}

/// The table of [`Counts`] by kind, with a total row, and the total.
fn counts_table(schemas: &[SchemaReport]) -> (Table, Counts) {
    let mut by_kind: BTreeMap<SchemaKind, Counts> = BTreeMap::new();
    for s in schemas {
        let row = by_kind.entry(s.kind).or_default();
        row[0] += 1;
        if s.skipped {
            row[3] += 1;
        } else if s.error.is_some() {
            row[2] += 1;
        } else {
            row[1] += 1;
        }
        row[4] += s.applied.len();
    }
    let mut total = Counts::default();
    let mut table = Table::new(&["kind", ">schemas", ">ok", ">failed", ">skipped", ">applied"]);
    let mut add = |label: String, row: &Counts| {
        table.row(
            std::iter::once(label)
                .chain(row.iter().map(ToString::to_string))
                .collect(),
        );
    };
    for (kind, row) in &by_kind {
        for (t, v) in total.iter_mut().zip(row) {
            *t += v;
        }
        add(kind.to_string(), row);
    }
    add("total".to_owned(), &total);
    (table, total)
}

/// Schema, migration and error of each schema that failed.
fn failures_table(schemas: &[SchemaReport]) -> Table {
    let mut failures = Table::new(&["schema", "migration", "error"]);
    for s in schemas {
        if let Some(e) = &s.error {
            failures.row(vec![
                s.schema.to_string(),
                e.migration().unwrap_or("-").to_owned(),
                cause(e),
            ]);
        }
    }
    failures
}

/// A migration error's message without the schema and migration the table already shows.
fn cause(e: &MigrationError) -> String {
    let text = e.report().to_string();
    let schema = e.schema().as_str();
    let prefixes = [
        e.migration()
            .map(|m| format!("migration {m} failed in schema {schema:?}: ")),
        Some(format!("migrating schema {schema:?} failed: ")),
    ];
    for prefix in prefixes.into_iter().flatten() {
        if let Some(rest) = text.strip_prefix(&prefix) {
            return rest.to_owned();
        }
    }
    text
}
