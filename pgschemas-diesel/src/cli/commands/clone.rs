//! `clone`: a schema copied into a new one, or with `--dry-run` copied and rolled back.

use std::io::{self, Write};

use diesel::prelude::*;

use super::{CliError, CliResult, Ctx};
use crate::cli::Outcome;
use crate::cli::args::CloneArgs;
use crate::cli::output::Table;
use crate::config::Config;
use crate::error::Error;
use crate::name::SchemaName;
use crate::provision::{CloneReport, clone_schema};

pub(super) fn clone(ctx: &mut Ctx<'_>, args: &CloneArgs) -> CliResult {
    let config = &ctx.app.config;
    let source = SchemaName::new(&args.source)?;
    let destination = SchemaName::new(&args.destination)?;
    let with_data = !args.no_data;
    let mut conn = ctx.connect()?;
    let report = if args.dry_run {
        dry_run(&mut conn, config, &source, &destination, with_data)?
    } else {
        clone_schema(&mut conn, config, &source, &destination, with_data)
            .map_err(|e| clone_error(e, &source))?
    };
    let out = &mut *ctx.out;
    if args.dry_run {
        writeln!(
            out,
            "dry run: cloning schema {:?} into {:?} would copy (rolled back, nothing was kept):",
            source.as_str(),
            destination.as_str()
        )?;
    } else {
        writeln!(
            out,
            "cloned schema {:?} into {:?}:",
            source.as_str(),
            destination.as_str()
        )?;
    }
    write_report(out, &report)?;
    Ok(Outcome::Success)
}

/// The error of a dry-run clone's transaction, which always rolls back.
enum DryRun {
    Cloned(Box<CloneReport>),
    Failed(Error),
}

impl From<diesel::result::Error> for DryRun {
    fn from(e: diesel::result::Error) -> Self {
        Self::Failed(e.into())
    }
}

/// Clones inside a transaction that is then rolled back, and reports what it copied.
fn dry_run(
    conn: &mut PgConnection,
    config: &Config,
    source: &SchemaName,
    destination: &SchemaName,
    with_data: bool,
) -> CliResult<CloneReport> {
    let result = conn.transaction::<(), DryRun, _>(|conn| {
        let report =
            clone_schema(conn, config, source, destination, with_data).map_err(DryRun::Failed)?;
        Err(DryRun::Cloned(Box::new(report)))
    });
    match result {
        Err(DryRun::Cloned(report)) => Ok(*report),
        Err(DryRun::Failed(e)) => Err(clone_error(e, source)),
        Ok(()) => Err(CliError::Failed(
            "the dry run ended without a report".to_owned(),
        )),
    }
}

/// The objects copied, by kind, whether rows were, and the warnings.
fn write_report(out: &mut dyn Write, r: &CloneReport) -> io::Result<()> {
    let mut table = Table::new(&["object", ">count"]);
    for (what, n) in object_counts(r) {
        table.row(vec![what.to_owned(), n.to_string()]);
    }
    table.write(out, "  ")?;
    writeln!(
        out,
        "  rows {}",
        if r.with_data { "copied" } else { "not copied" }
    )?;
    for w in &r.warnings {
        writeln!(out, "  warning: {w}")?;
    }
    Ok(())
}

/// Each kind of object with how many were copied, in the order the table shows them.
fn object_counts(r: &CloneReport) -> [(&'static str, usize); 14] {
    [
        ("tables", r.tables),
        ("sequences", r.sequences),
        ("views", r.views),
        ("materialized views", r.materialized_views),
        ("functions", r.functions),
        ("triggers", r.triggers),
        ("indexes", r.indexes),
        ("constraints", r.constraints),
        ("types", r.types),
        ("policies", r.policies),
        ("rules", r.rules),
        ("statistics", r.statistics),
        ("comments", r.comments),
        ("applied migrations", r.migrations.len()),
    ]
}

/// Says "source schema" when the missing schema is the source.
fn clone_error(e: Error, source: &SchemaName) -> CliError {
    match e {
        Error::SchemaNotFound { schema } if schema == source.as_str() => CliError::Failed(format!(
            "source schema {schema:?} does not exist; nothing was cloned"
        )),
        e => e.into(),
    }
}
