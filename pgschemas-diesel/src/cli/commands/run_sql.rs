//! `run-sql`: the SQL on each selected schema, each in its own transaction with that
//! schema's search path, on N workers; a line per schema in run order, then a summary.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use diesel::PgConnection;

use super::common::{
    left_out_note, missed, require_selection, success_if, write_failed, write_left_out,
    write_not_started,
};
use super::{CliError, CliResult, Ctx};
use crate::catalog::InvalidRow;
use crate::cli::args::RunSqlArgs;
use crate::cli::output::{Reporter, Table, duration, plural};
use crate::cli::sql::{self, SqlResult};
use crate::error::Error;
use crate::lifecycle::list_schemas;
use crate::migrate::{Selection, Target};
use crate::parallel::Workers;
use crate::pool::TenantPool;
use crate::statements as script;

pub(super) fn run_sql(ctx: &mut Ctx<'_>, args: RunSqlArgs) -> CliResult {
    let selection = require_selection(&args.select)?;
    let text = read_sql(args.sql)?;
    refuse_script(&text)?;
    let workers = Workers::from(args.workers);
    let pool = ctx.pool(workers.count)?;
    let (targets, missed) = resolve(ctx, &pool, &selection)?;
    let started = Instant::now();
    let tally = run_all(ctx, &pool, workers, &targets, &text)?;
    write_summary(ctx.out, &targets, &tally, &missed, started)?;
    Ok(success_if(
        tally.failures.is_empty() && tally.not_started(&targets).is_empty() && missed.is_empty(),
    ))
}

/// The SQL given, or standard input's for `-`.
fn read_sql(sql: String) -> CliResult<String> {
    if sql != "-" {
        return Ok(sql);
    }
    let mut text = String::new();
    io::stdin().read_to_string(&mut text).map_err(|e| {
        CliError::Failed(format!("could not read the SQL from standard input: {e}"))
    })?;
    Ok(text)
}

/// The schemas to run on, checked to exist, and the catalog's rows the selection missed.
fn resolve(
    ctx: &Ctx<'_>,
    pool: &TenantPool,
    selection: &Selection,
) -> CliResult<(Vec<Target>, Vec<InvalidRow>)> {
    let mut conn = pool.get()?;
    let rows = ctx.catalog(&mut conn)?;
    let targets = selection.resolve(&ctx.app.config, &rows.tenants, &rows.domains)?;
    refuse_targets(&mut conn, &targets)?;
    Ok((targets, missed(selection, &rows).to_vec()))
}

/// A schema's run: what the SQL gave or why it failed, and how long it took.
type Ran = (Result<SqlResult, String>, Duration);

/// Which schemas succeeded (`None`: never started) and the failures, by schema.
struct Tally {
    ran: Vec<Option<bool>>,
    failures: Vec<(String, String)>,
}

impl Tally {
    fn not_started<'a>(&self, targets: &'a [Target]) -> Vec<&'a str> {
        targets
            .iter()
            .zip(&self.ran)
            .filter(|(_, r)| r.is_none())
            .map(|(t, _)| t.schema.as_str())
            .collect()
    }
}

/// Runs the SQL on every target through the workers, printing each schema's line in run
/// order: a result waits for those before it.
fn run_all(
    ctx: &mut Ctx<'_>,
    pool: &TenantPool,
    workers: Workers,
    targets: &[Target],
    text: &str,
) -> CliResult<Tally> {
    let reporter = Reporter::new(ctx.progress, "running");
    reporter.set_total(targets.len());
    let mut lines = Lines {
        reporter: &reporter,
        out: &mut *ctx.out,
        targets,
        tally: Tally {
            ran: vec![None; targets.len()],
            failures: Vec::new(),
        },
    };
    let mut held: BTreeMap<usize, Ran> = BTreeMap::new();
    let mut next = 0;
    workers.run(
        targets,
        || (),
        |(), target, fail_fast| {
            let began = Instant::now();
            let result = run_one(pool, target, text);
            if result.is_err() {
                fail_fast.failed();
            }
            (result, began.elapsed())
        },
        |i, ran| -> io::Result<()> {
            held.insert(i, ran);
            while let Some(ran) = held.remove(&next) {
                lines.write(next, ran)?;
                next += 1;
            }
            Ok(())
        },
    )?;
    // Those after a schema that never ran (stopped by a failure), in order.
    for (i, ran) in held {
        lines.write(i, ran)?;
    }
    reporter.finish();
    Ok(lines.tally)
}

/// The SQL on one schema, in a transaction with its search path.
fn run_one(pool: &TenantPool, target: &Target, text: &str) -> Result<SqlResult, String> {
    let schema = target.schema.as_str();
    pool.transaction(&target.schema, |conn| sql::run_guarded(conn, text))
        .map_err(|e| match e {
            sql::RunError::Database(e) => cause_of(&Error::db(schema, e), schema),
            sql::RunError::Crate(e) => cause_of(&e, schema),
            e @ sql::RunError::Escaped(_) => e.to_string(),
        })
}

/// Writes each schema's line (and a query's rows) and keeps the tally.
struct Lines<'a> {
    reporter: &'a Reporter,
    out: &'a mut dyn Write,
    targets: &'a [Target],
    tally: Tally,
}

impl Lines<'_> {
    fn write(&mut self, i: usize, (result, took): Ran) -> io::Result<()> {
        let schema = &self.targets[i].schema;
        self.tally.ran[i] = Some(result.is_ok());
        match result {
            Ok(r) => {
                let line = format!("{schema} ... ok ({}, {})", r.summary(), duration(took));
                self.reporter.done(self.out, &line, false)?;
                let rendered = r.render();
                if !rendered.is_empty() {
                    self.reporter.print(self.out, &rendered)?;
                }
            }
            Err(e) => {
                let line = format!("{schema} ... FAILED ({}): {e}", duration(took));
                self.reporter.done(self.out, &line, true)?;
                self.tally.failures.push((schema.to_string(), e));
            }
        }
        Ok(())
    }
}

/// The failures, the schemas never started, the rows left out, and the summary line.
fn write_summary(
    out: &mut dyn Write,
    targets: &[Target],
    tally: &Tally,
    missed: &[InvalidRow],
    started: Instant,
) -> io::Result<()> {
    let ok = tally.ran.iter().filter(|r| **r == Some(true)).count();
    let skipped = tally.not_started(targets);
    let mut failures = Table::new(&["schema", "error"]);
    for (schema, error) in &tally.failures {
        failures.row(vec![schema.clone(), error.clone()]);
    }
    write_failed(out, &failures)?;
    write_not_started(out, &skipped)?;
    write_left_out(out, missed)?;
    writeln!(
        out,
        "\nran on {} in {}: {} ok, {} failed, {} not started{}",
        plural(targets.len(), "schema"),
        duration(started.elapsed()),
        ok,
        tally.failures.len(),
        skipped.len(),
        left_out_note(missed)
    )
}

/// Refuses an empty script, and one with a statement that would escape the transaction and
/// search path each schema runs with ([`Statement::refusal`](script::Statement::refusal)),
/// before anything runs.
fn refuse_script(text: &str) -> CliResult<()> {
    let statements = script::statements(text);
    if statements.is_empty() {
        return Err(CliError::Usage("the SQL is empty".to_owned()));
    }
    for (n, statement) in statements.iter().enumerate() {
        if let Some(reason) = statement.refusal() {
            return Err(CliError::Usage(format!(
                "refusing to run the SQL: statement {} ({:?}) {reason}; run-sql runs the SQL \
                 in one transaction per schema, with that schema's search path, and ends the \
                 transaction itself: leave transaction control and search path or role \
                 changes out of the script. Nothing was run",
                n + 1,
                excerpt(statement.text)
            )));
        }
    }
    Ok(())
}

/// The first line of a statement, at most 60 characters.
fn excerpt(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    match line.char_indices().nth(60) {
        Some((at, _)) => format!("{}...", &line[..at]),
        None if line.len() < text.len() => format!("{line}..."),
        None => line.to_owned(),
    }
}

/// Refuses a selection that names no schema, or schemas that do not exist, before anything
/// runs.
fn refuse_targets(conn: &mut PgConnection, targets: &[Target]) -> CliResult<()> {
    if targets.is_empty() {
        return Err(CliError::Usage(
            "the selection names no schema (after exclusions); nothing was run".to_owned(),
        ));
    }
    let existing: BTreeSet<String> = list_schemas(conn)?.into_iter().collect();
    let missing: Vec<&str> = targets
        .iter()
        .map(|t| t.schema.as_str())
        .filter(|s| !existing.contains(*s))
        .collect();
    if !missing.is_empty() {
        return Err(CliError::Usage(format!(
            "selected schema(s) that do not exist: {}; nothing was run (provision them, or \
             exclude them with -x)",
            missing.join(", ")
        )));
    }
    Ok(())
}

/// An error's message without the "database error in schema ..." prefix the line already
/// shows.
fn cause_of(e: &Error, schema: &str) -> String {
    let text = e.report().to_string();
    text.strip_prefix(&format!("database error in schema {schema:?}: "))
        .map_or(text.clone(), str::to_owned)
}
