//! The commands.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use diesel::prelude::*;

use super::Outcome;
use super::args::{
    CloneArgs, Command, CreateReferenceArgs, CreateTenantArgs, DropTenantArgs, ListArgs,
    MigrateArgs, RunSqlArgs, SelectArgs,
};
use super::output::{Reporter, Table, duration, plural};
use super::script;
use super::sql::{self, SqlResult};
use super::tenancy::{NewTenantRows, SharedSource, Source, Tenancy};
use crate::catalog::{CatalogRows, DomainRecord, InvalidRow, TenantRecord};
use crate::doctor::CheckStatus;
use crate::error::Error;
use crate::lifecycle::{create_schema, list_schemas};
use crate::migrate::{
    MigrationError, MigrationErrorKind, MigrationSet, Migrator, Progress, SchemaKind, SchemaReport,
    Selection, Target, applied_versions, migrate_schema, pending_migrations, source_versions,
};
use crate::models::NewDomain;
use crate::name::SchemaName;
use crate::pool::TenantPool;
use crate::provision::{CloneReport, clone_schema};

/// What a command runs with.
pub(crate) struct Ctx<'a> {
    pub(crate) tenancy: &'a Tenancy,
    pub(crate) database_url: Option<String>,
    pub(crate) out: &'a mut dyn Write,
    pub(crate) err: &'a mut dyn Write,
    pub(crate) progress: bool,
}

/// Why a command stopped.
#[derive(Debug)]
pub(crate) enum CliError {
    /// Bad usage or selection: exit status 2.
    Usage(String),
    /// Anything else: exit status 1.
    Failed(String),
}

impl CliError {
    pub(crate) fn message(&self) -> &str {
        match self {
            Self::Usage(m) | Self::Failed(m) => m,
        }
    }

    pub(crate) fn outcome(&self) -> Outcome {
        match self {
            Self::Usage(_) => Outcome::Usage,
            Self::Failed(_) => Outcome::Failed,
        }
    }
}

impl From<Error> for CliError {
    fn from(e: Error) -> Self {
        match e {
            Error::UnknownReference { .. } | Error::AmbiguousReference { .. } => {
                Self::Usage(e.to_string())
            }
            e => Self::Failed(e.to_string()),
        }
    }
}

impl From<MigrationError> for CliError {
    fn from(e: MigrationError) -> Self {
        Self::Failed(e.to_string())
    }
}

impl From<io::Error> for CliError {
    fn from(e: io::Error) -> Self {
        Self::Failed(format!("could not write the output: {e}"))
    }
}

type CliResult<T = Outcome> = Result<T, CliError>;

pub(crate) fn dispatch(ctx: &mut Ctx<'_>, command: Command) -> CliResult {
    match command {
        Command::Migrate(args) => migrate(ctx, args),
        Command::Whowill(args) => whowill(ctx, &args),
        Command::List(args) => list(ctx, &args),
        Command::CreateReference(args) => create_reference(ctx, &args),
        Command::Clone(args) => clone(ctx, &args),
        Command::CreateTenant(args) => create_tenant(ctx, &args),
        Command::DropTenant(args) => drop_tenant(ctx, &args),
        Command::RunSql(args) => run_sql(ctx, args),
        Command::Doctor => doctor(ctx),
    }
}

// ---------------------------------------------------------------------------------------
// Connections, the catalog, routes
// ---------------------------------------------------------------------------------------

impl Ctx<'_> {
    fn url(&self) -> CliResult<String> {
        self.database_url
            .clone()
            .or_else(|| std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()))
            .or_else(|| self.tenancy.database_url.clone())
            .ok_or_else(|| {
                CliError::Usage(
                    "no database given: pass --database-url or set DATABASE_URL".to_owned(),
                )
            })
    }

    /// A plain connection with the neutral path.
    fn connect(&self) -> CliResult<PgConnection> {
        let url = self.url()?;
        let mut conn = PgConnection::establish(&url).map_err(Error::from)?;
        self.tenancy.config.deactivate(&mut conn)?;
        Ok(conn)
    }

    /// A pool of `size` connections (after checking with one plain connection that the
    /// database answers, so that a bad URL fails at once rather than after the pool's
    /// timeout).
    fn pool(&self, size: usize) -> CliResult<TenantPool> {
        drop(self.connect()?);
        let size = u32::try_from(size).unwrap_or(u32::MAX);
        Ok(TenantPool::with_builder(
            self.url()?,
            self.tenancy.config.clone(),
            // Every connection is made before the pool is handed out (r2d2's default
            // `min_idle`): a connection still being made on r2d2's thread when the command
            // ends and the process exits can crash libpq's TLS teardown.
            r2d2::Pool::builder()
                .max_size(size)
                .connection_timeout(Duration::from_secs(30)),
        )?)
    }

    /// The catalog's usable tenants and domains, and the rows left out.
    fn catalog(&self, conn: &mut PgConnection) -> CliResult<CatalogRows> {
        Ok(CatalogRows::read(&*self.tenancy.catalog, conn)
            .map_err(|e| Error::Catalog(Box::new(e)))?)
    }

    /// Applies the pending shared migrations (creating the shared schema if needed), saying
    /// so; nothing when there are none or no shared migrations are configured.
    fn ensure_shared_migrated(&mut self, conn: &mut PgConnection) -> CliResult<()> {
        let Some(shared) = &self.tenancy.shared_migrations else {
            return Ok(());
        };
        let source = SharedSource(Arc::clone(shared));
        let schema = self.tenancy.config.shared_schema();
        match pending_migrations(conn, schema, &source) {
            Ok(pending) if pending.is_empty() => return Ok(()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), MigrationErrorKind::SchemaNotFound) => {
                create_schema(conn, schema)?;
            }
            Err(e) => return Err(e.into()),
        }
        let applied = migrate_schema(conn, &self.tenancy.config, schema, &source)?;
        writeln!(
            self.out,
            "shared schema {:?}: {} applied first",
            schema.as_str(),
            plural(applied.len(), "migration")
        )?;
        Ok(())
    }
}

fn workers(parallel: Option<usize>) -> usize {
    match parallel {
        None => 1,
        Some(0) => std::thread::available_parallelism().map_or(1, |n| n.get()),
        Some(n) => n,
    }
}

/// The route `whowill` prints for a schema: a static tenant's first domain, a dynamic
/// tenant's primary route (`domain` or `domain/folder`), else the schema's name.
struct RouteNames {
    statics: HashMap<String, String>,
    dynamics: HashMap<String, String>,
}

impl RouteNames {
    fn new(tenancy: &Tenancy, tenants: &[TenantRecord], domains: &[DomainRecord]) -> Self {
        let statics = tenancy
            .config
            .static_tenants()
            .iter()
            .filter_map(|t| Some((t.name().to_string(), t.domains().first()?.clone())))
            .collect();
        let schema_of: HashMap<&str, &str> = tenants
            .iter()
            .map(|t| (t.id.as_str(), t.schema.as_str()))
            .collect();
        let dynamics = domains
            .iter()
            .filter(|d| d.is_primary)
            .filter_map(|d| {
                let schema = schema_of.get(d.tenant_id.as_str())?;
                let route = match d.folder.as_deref().filter(|f| !f.is_empty()) {
                    Some(folder) => format!("{}/{folder}", d.domain),
                    None => d.domain.clone(),
                };
                Some(((*schema).to_owned(), route))
            })
            .collect();
        Self { statics, dynamics }
    }

    fn route(&self, target: &Target) -> Option<&str> {
        match target.kind {
            SchemaKind::Static => self.statics.get(target.schema.as_str()),
            SchemaKind::Dynamic => self.dynamics.get(target.schema.as_str()),
            SchemaKind::Shared | SchemaKind::Reference => None,
        }
        .map(String::as_str)
    }

    fn label<'a>(&'a self, target: &'a Target) -> &'a str {
        self.route(target).unwrap_or(target.schema.as_str())
    }
}

/// The rows left out of the catalog that `selection` misses: all of them when it takes every
/// dynamic tenant, none when it names schemas.
fn missed<'a>(selection: &Selection, rows: &'a CatalogRows) -> &'a [InvalidRow] {
    if selection.takes_every_dynamic() {
        &rows.invalid
    } else {
        &[]
    }
}

/// Lists the rows left out, after the command's other output; a command that left rows out
/// ends with exit status 1.
fn write_left_out(out: &mut dyn Write, rows: &[InvalidRow]) -> io::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(out, "\nleft out (correct or delete these rows):")?;
    for row in rows {
        writeln!(out, "  {row}")?;
    }
    Ok(())
}

/// `, N rows left out` for a summary line, or nothing.
fn left_out_note(rows: &[InvalidRow]) -> String {
    if rows.is_empty() {
        String::new()
    } else {
        format!(", {} left out", plural(rows.len(), "row"))
    }
}

fn require_selection(args: &SelectArgs) -> CliResult<Selection> {
    let selection = args.selection();
    if selection.is_empty() {
        return Err(CliError::Usage(
            "no schema given: select schemas with -s/--schema, --all, --static, --dynamic or --tenants"
                .to_owned(),
        ));
    }
    Ok(selection)
}

// ---------------------------------------------------------------------------------------
// migrate
// ---------------------------------------------------------------------------------------

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

fn migrate(ctx: &mut Ctx<'_>, args: MigrateArgs) -> CliResult {
    let tenancy = ctx.tenancy;
    let workers = workers(args.parallel);
    let pool = ctx.pool(workers)?;
    let selection = args.select.selection();
    let (tx, rx) = mpsc::channel::<Event>();
    let mut builder = Migrator::builder(pool, Arc::clone(&tenancy.catalog))
        .tenant_migrations(SharedSource(Arc::clone(&tenancy.tenant_migrations)))
        .workers(workers)
        .keep_going(args.keep_going)
        .on_progress(move |p| {
            let event = match p {
                Progress::Started { total, .. } => Event::Started { total: *total },
                Progress::Finished { report, .. } => Event::Finished(Finished {
                    schema: report.schema.to_string(),
                    applied: report.applied.len(),
                    duration: report.duration,
                    error: report.error.as_ref().map(ToString::to_string),
                }),
            };
            // The receiver lives until the run ends.
            let _ = tx.send(event);
        });
    if let Some(shared) = &tenancy.shared_migrations {
        builder = builder.shared_migrations(SharedSource(Arc::clone(shared)));
    }
    let migrator = builder.build()?;

    let reporter = Reporter::new(
        ctx.progress,
        if args.plan { "planning" } else { "migrating" },
    );
    let plan = args.plan;
    let out = &mut *ctx.out;
    let result = std::thread::scope(|scope| -> CliResult<_> {
        let run = scope.spawn(move || {
            let report = if plan {
                migrator.plan(&selection)
            } else {
                migrator.run(&selection)
            };
            drop(migrator);
            report
        });
        let mut write_error = None;
        for event in rx {
            let written = match event {
                Event::Started { total } => {
                    reporter.set_total(total);
                    Ok(())
                }
                Event::Finished(_) if plan => {
                    reporter.tick();
                    Ok(())
                }
                Event::Finished(f) => {
                    let line = match &f.error {
                        None if f.applied == 0 => {
                            format!("{} ... ok (up to date, {})", f.schema, duration(f.duration))
                        }
                        None => format!(
                            "{} ... ok ({} applied, {})",
                            f.schema,
                            f.applied,
                            duration(f.duration)
                        ),
                        Some(e) => {
                            format!("{} ... FAILED ({}): {e}", f.schema, duration(f.duration))
                        }
                    };
                    reporter.done(out, &line, f.error.is_some())
                }
            };
            if let Err(e) = written {
                write_error.get_or_insert(e);
            }
        }
        reporter.finish();
        if let Some(e) = write_error {
            return Err(e.into());
        }
        match run.join() {
            Ok(report) => Ok(report?),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })?;

    if plan {
        print_plan(ctx, &result.schemas, &result.invalid_rows, result.duration)?;
    } else {
        print_summary(ctx, &result.schemas, &result.invalid_rows, result.duration)?;
    }
    Ok(if result.is_success() {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}

/// Version -> full migration name, for both sets.
fn migration_names(tenancy: &Tenancy) -> HashMap<(bool, String), String> {
    let mut names = HashMap::new();
    let sets: [(bool, Option<&Source>); 2] = [
        (true, tenancy.shared_migrations.as_ref()),
        (false, Some(&tenancy.tenant_migrations)),
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
    let names = migration_names(ctx.tenancy);
    let out = &mut *ctx.out;
    let mut pending_total = 0;
    for s in schemas {
        let head = format!("{} ({})", s.schema, s.kind);
        if let Some(e) = &s.error {
            writeln!(out, "{head}: FAILED: {e}")?;
        } else if s.pending.is_empty() {
            writeln!(out, "{head}: up to date")?;
        } else {
            pending_total += s.pending.len();
            writeln!(out, "{head}: {} pending", s.pending.len())?;
            let shared = s.kind == SchemaKind::Shared;
            for v in &s.pending {
                let name = names.get(&(shared, v.clone())).unwrap_or(v);
                writeln!(out, "  {name}")?;
            }
        }
    }
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

fn print_summary(
    ctx: &mut Ctx<'_>,
    schemas: &[SchemaReport],
    invalid: &[InvalidRow],
    took: Duration,
) -> CliResult<()> {
    let out = &mut *ctx.out;
    // kind -> [schemas, ok, failed, skipped, applied]
    let mut by_kind: BTreeMap<SchemaKind, [usize; 5]> = BTreeMap::new();
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
    let mut total = [0usize; 5];
    let mut table = Table::new(&["kind", ">schemas", ">ok", ">failed", ">skipped", ">applied"]);
    for (kind, row) in &by_kind {
        for (t, v) in total.iter_mut().zip(row) {
            *t += v;
        }
        table.row(
            std::iter::once(kind.to_string())
                .chain(row.iter().map(ToString::to_string))
                .collect(),
        );
    }
    table.row(
        std::iter::once("total".to_owned())
            .chain(total.iter().map(ToString::to_string))
            .collect(),
    );
    writeln!(out)?;
    table.write(out, "")?;

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
    if !failures.is_empty() {
        writeln!(out, "\nfailed:")?;
        failures.write(out, "  ")?;
    }
    let skipped: Vec<&str> = schemas
        .iter()
        .filter(|s| s.skipped)
        .map(|s| s.schema.as_str())
        .collect();
    if !skipped.is_empty() {
        writeln!(
            out,
            "\nnot started after the first failure (pass --keep-going to run them): {}",
            skipped.join(", ")
        )?;
    }
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

/// A migration error's message without the schema and migration the table already shows.
fn cause(e: &MigrationError) -> String {
    let text = e.to_string();
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

// ---------------------------------------------------------------------------------------
// whowill, list
// ---------------------------------------------------------------------------------------

fn whowill(ctx: &mut Ctx<'_>, args: &SelectArgs) -> CliResult {
    let selection = require_selection(args)?;
    let mut conn = ctx.connect()?;
    let rows = ctx.catalog(&mut conn)?;
    let targets = selection.resolve(&ctx.tenancy.config, &rows.tenants, &rows.domains)?;
    let routes = RouteNames::new(ctx.tenancy, &rows.tenants, &rows.domains);
    for t in &targets {
        writeln!(ctx.out, "{}", routes.label(t))?;
    }
    // Standard output is the list of routes alone.
    let missed = missed(&selection, &rows);
    write_left_out(ctx.err, missed)?;
    Ok(if missed.is_empty() {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}

fn versions(source: Option<&Source>) -> Option<BTreeSet<String>> {
    source_versions(&**source?).ok()
}

fn list(ctx: &mut Ctx<'_>, args: &ListArgs) -> CliResult {
    let tenancy = ctx.tenancy;
    let mut conn = ctx.connect()?;
    let rows = ctx.catalog(&mut conn)?;
    let (tenants, domains) = (&rows.tenants, &rows.domains);
    let selection = args.select.selection();
    let targets = selection.resolve(&tenancy.config, tenants, domains)?;
    let names: Vec<&str> = targets.iter().map(|t| t.schema.as_str()).collect();
    let states = applied_versions(&mut conn, &names)?;
    let shared_versions = versions(tenancy.shared_migrations.as_ref());
    let tenant_versions = versions(Some(&tenancy.tenant_migrations));
    let by_schema: HashMap<&str, &TenantRecord> =
        tenants.iter().map(|t| (t.schema.as_str(), t)).collect();
    let routes = RouteNames::new(tenancy, tenants, domains);

    let mut table = Table::new(&["schema", "kind", "tenant", "state", "route", "migrations"]);
    for t in &targets {
        let tenant = by_schema
            .get(t.schema.as_str())
            .filter(|_| t.kind == SchemaKind::Dynamic);
        let expected = match t.migrations {
            MigrationSet::Shared => shared_versions.as_ref(),
            MigrationSet::Tenant => tenant_versions.as_ref(),
            MigrationSet::None => None,
        };
        let migrations = match (states.get(t.schema.as_str()), expected) {
            (None, _) => "schema missing".to_owned(),
            (Some(_), None) => "-".to_owned(),
            (Some(None), Some(expected)) => {
                format!("not migrated ({} pending)", expected.len())
            }
            (Some(Some(applied)), Some(expected)) => {
                let pending = expected.difference(applied).count();
                let unknown = applied.difference(expected).count();
                match (pending, unknown) {
                    (0, 0) => format!("up to date ({})", expected.len()),
                    (p, 0) => format!("{p} pending"),
                    (0, u) => format!("{u} unknown to this build"),
                    (p, u) => format!("{p} pending, {u} unknown to this build"),
                }
            }
        };
        table.row(vec![
            t.schema.to_string(),
            t.kind.to_string(),
            tenant.map_or("-".to_owned(), |r| r.id.clone()),
            tenant
                .map_or("-", |r| if r.active { "active" } else { "suspended" })
                .to_owned(),
            routes.route(t).unwrap_or("-").to_owned(),
            migrations,
        ]);
    }
    table.write(ctx.out, "")?;
    let missed = missed(&selection, &rows);
    write_left_out(ctx.out, missed)?;
    writeln!(
        ctx.out,
        "{}{}",
        plural(targets.len(), "schema"),
        left_out_note(missed)
    )?;
    Ok(if missed.is_empty() {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}

// ---------------------------------------------------------------------------------------
// create-reference, clone, create-tenant, drop-tenant
// ---------------------------------------------------------------------------------------

fn create_reference(ctx: &mut Ctx<'_>, args: &CreateReferenceArgs) -> CliResult {
    let tenancy = ctx.tenancy;
    let Some(reference) = tenancy.config.clone_reference() else {
        return Err(CliError::Failed(
            "there is no reference schema configured: set one with ConfigBuilder::clone_reference"
                .to_owned(),
        ));
    };
    let mut conn = ctx.connect()?;
    ctx.ensure_shared_migrated(&mut conn)?;
    let provisioner = tenancy.provisioner()?;
    let count = versions(Some(&tenancy.tenant_migrations)).map_or(0, |v| v.len());
    if args.recreate {
        provisioner.recreate_reference(&mut conn)?;
        writeln!(
            ctx.out,
            "reference schema {:?} recreated with {}",
            reference.as_str(),
            plural(count, "migration")
        )?;
        return Ok(Outcome::Success);
    }
    match provisioner.create_reference(&mut conn) {
        Ok(()) => writeln!(
            ctx.out,
            "reference schema {:?} created with {}",
            reference.as_str(),
            plural(count, "migration")
        )?,
        Err(Error::SchemaExists { .. }) => writeln!(
            ctx.out,
            "reference schema {:?} already exists; pass --recreate to drop it and create it again",
            reference.as_str()
        )?,
        Err(e) => return Err(e.into()),
    }
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

fn clone(ctx: &mut Ctx<'_>, args: &CloneArgs) -> CliResult {
    let config = &ctx.tenancy.config;
    let source = SchemaName::new(&args.source)?;
    let destination = SchemaName::new(&args.destination)?;
    let with_data = !args.no_data;
    let mut conn = ctx.connect()?;
    let report = if args.dry_run {
        let result = conn.transaction::<(), DryRun, _>(|conn| {
            let report = clone_schema(conn, config, &source, &destination, with_data)
                .map_err(DryRun::Failed)?;
            Err(DryRun::Cloned(Box::new(report)))
        });
        match result {
            Err(DryRun::Cloned(report)) => *report,
            Err(DryRun::Failed(e)) => return Err(clone_error(e, &source)),
            Ok(()) => {
                return Err(CliError::Failed(
                    "the dry run ended without a report".to_owned(),
                ));
            }
        }
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
    let r = &report;
    let mut table = Table::new(&["object", ">count"]);
    for (what, n) in [
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
    ] {
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
    Ok(Outcome::Success)
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

/// `host` or `host/folder`.
fn parse_route(value: &str) -> NewDomain {
    match value.split_once('/') {
        Some((host, folder)) => NewDomain::new(host).folder(folder.trim_matches('/')),
        None => NewDomain::new(value),
    }
}

fn create_tenant(ctx: &mut Ctx<'_>, args: &CreateTenantArgs) -> CliResult {
    let tenancy = ctx.tenancy;
    let rows = tenancy.rows.as_ref().ok_or_else(no_rows)?;
    let schema = tenancy.config.check_tenant_name(&args.schema)?;
    let mut new = NewTenantRows::new(schema.clone());
    new.name.clone_from(&args.name);
    for (i, value) in args.domains.iter().enumerate() {
        let mut route = parse_route(value);
        if i == 0 {
            route = route.primary(true);
            if let Some(folder) = &args.folder {
                if route.folder.is_some() {
                    return Err(CliError::Usage(format!(
                        "--folder {folder:?} given for --domain {value:?}, which has a folder already"
                    )));
                }
                route = route.folder(folder.as_str());
            }
        }
        new.domains.push(route);
    }
    let mut conn = ctx.connect()?;
    ctx.ensure_shared_migrated(&mut conn)?;
    let provisioner = tenancy.provisioner()?;
    let id =
        provisioner.create_tenant(&mut conn, schema.as_str(), |conn| rows.create(conn, &new))?;
    let routes: Vec<String> = new
        .domains
        .iter()
        .map(|d| match &d.folder {
            Some(f) => format!("{}/{f}", d.domain.to_lowercase()),
            None => d.domain.to_lowercase(),
        })
        .collect();
    writeln!(
        ctx.out,
        "created tenant {:?} (id {id}) in schema {:?}{}",
        new.display_name(),
        schema.as_str(),
        if routes.is_empty() {
            ", with no route".to_owned()
        } else {
            format!(", routes: {}", routes.join(", "))
        }
    )?;
    Ok(Outcome::Success)
}

fn no_rows() -> CliError {
    CliError::Failed(
        "this program cannot write tenant rows: build its Tenancy with .tenant_rows(..) or .default_models()"
            .to_owned(),
    )
}

fn drop_tenant(ctx: &mut Ctx<'_>, args: &DropTenantArgs) -> CliResult {
    let tenancy = ctx.tenancy;
    let rows = tenancy.rows.as_ref().ok_or_else(no_rows)?;
    let schema = SchemaName::new(&args.schema)?;
    let mut conn = ctx.connect()?;
    let provisioner = tenancy.provisioner()?;
    let dropped = provisioner.drop_tenant(&mut conn, schema.as_str(), args.force, |conn| {
        rows.delete(conn, &schema)?
            .ok_or_else(|| Error::TenantNotFound {
                schema: schema.to_string(),
            })
    })?;
    writeln!(
        ctx.out,
        "deleted tenant {} (schema {:?}); {}",
        dropped.value,
        schema.as_str(),
        if dropped.schema_dropped {
            "schema dropped".to_owned()
        } else {
            "schema kept (pass --force to drop it)".to_owned()
        }
    )?;
    Ok(Outcome::Success)
}

// ---------------------------------------------------------------------------------------
// run-sql
// ---------------------------------------------------------------------------------------

fn run_sql(ctx: &mut Ctx<'_>, args: RunSqlArgs) -> CliResult {
    let selection = require_selection(&args.select)?;
    let text = if args.sql == "-" {
        let mut text = String::new();
        io::stdin().read_to_string(&mut text).map_err(|e| {
            CliError::Failed(format!("could not read the SQL from standard input: {e}"))
        })?;
        text
    } else {
        args.sql
    };
    refuse_script(&text)?;
    let workers = workers(args.parallel);
    let pool = ctx.pool(workers)?;
    let (targets, missed) = {
        let mut conn = pool.get()?;
        let rows = ctx.catalog(&mut conn)?;
        let targets = selection.resolve(&ctx.tenancy.config, &rows.tenants, &rows.domains)?;
        refuse_targets(&mut conn, &targets)?;
        (targets, missed(&selection, &rows).to_vec())
    };

    let reporter = Reporter::new(ctx.progress, "running");
    reporter.set_total(targets.len());
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<(usize, Result<SqlResult, String>, Duration)>();
    let out = &mut *ctx.out;
    let mut results: Vec<Option<bool>> = vec![None; targets.len()];
    let mut failures: Vec<(String, String)> = Vec::new();
    let mut print =
        |i: usize, result: Result<SqlResult, String>, took: Duration| -> io::Result<()> {
            let schema = &targets[i].schema;
            results[i] = Some(result.is_ok());
            match result {
                Ok(r) => {
                    let line = format!("{schema} ... ok ({}, {})", r.summary(), duration(took));
                    reporter.done(out, &line, false)?;
                    let rendered = r.render();
                    if !rendered.is_empty() {
                        reporter.print(out, &rendered)?;
                    }
                }
                Err(e) => {
                    let line = format!("{schema} ... FAILED ({}): {e}", duration(took));
                    reporter.done(out, &line, true)?;
                    failures.push((schema.to_string(), e));
                }
            }
            Ok(())
        };
    let keep_going = args.keep_going;
    let written = std::thread::scope(|scope| -> io::Result<()> {
        for _ in 0..workers.min(targets.len()) {
            let tx = tx.clone();
            let (pool, targets, next, stop, text) = (&pool, &targets, &next, &stop, &text);
            scope.spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(target) = targets.get(i) else { break };
                    let began = Instant::now();
                    let schema = target.schema.as_str();
                    let result = pool
                        .transaction(&target.schema, |conn| sql::run_guarded(conn, text))
                        .map_err(|e| match e {
                            sql::RunError::Database(e) => cause_of(&Error::db(schema, e), schema),
                            sql::RunError::Crate(e) => cause_of(&e, schema),
                            e @ sql::RunError::Escaped(_) => e.to_string(),
                        });
                    if result.is_err() && !keep_going {
                        stop.store(true, Ordering::SeqCst);
                    }
                    if tx.send((i, result, began.elapsed())).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        // Printed in run order: a result waits for those before it.
        let mut held: BTreeMap<usize, (Result<SqlResult, String>, Duration)> = BTreeMap::new();
        let mut next_print = 0;
        for (i, result, took) in rx {
            held.insert(i, (result, took));
            while let Some((result, took)) = held.remove(&next_print) {
                print(next_print, result, took)?;
                next_print += 1;
            }
        }
        // Those after a schema that never ran (stopped by a failure), in order.
        for (i, (result, took)) in held {
            print(i, result, took)?;
        }
        reporter.finish();
        Ok(())
    });
    written?;

    let ok = results.iter().filter(|r| **r == Some(true)).count();
    let skipped: Vec<&str> = targets
        .iter()
        .zip(&results)
        .filter(|(_, r)| r.is_none())
        .map(|(t, _)| t.schema.as_str())
        .collect();
    if !failures.is_empty() {
        let mut table = Table::new(&["schema", "error"]);
        for (schema, error) in &failures {
            table.row(vec![schema.clone(), error.clone()]);
        }
        writeln!(out, "\nfailed:")?;
        table.write(out, "  ")?;
    }
    if !skipped.is_empty() {
        writeln!(
            out,
            "\nnot started after the first failure (pass --keep-going to run them): {}",
            skipped.join(", ")
        )?;
    }
    write_left_out(out, &missed)?;
    writeln!(
        out,
        "\nran on {} in {}: {} ok, {} failed, {} not started{}",
        plural(targets.len(), "schema"),
        duration(started.elapsed()),
        ok,
        failures.len(),
        skipped.len(),
        left_out_note(&missed)
    )?;
    Ok(
        if failures.is_empty() && skipped.is_empty() && missed.is_empty() {
            Outcome::Success
        } else {
            Outcome::Failed
        },
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
    let text = e.to_string();
    text.strip_prefix(&format!("database error in schema {schema:?}: "))
        .map_or(text.clone(), str::to_owned)
}

// ---------------------------------------------------------------------------------------
// doctor
// ---------------------------------------------------------------------------------------

fn doctor(ctx: &mut Ctx<'_>) -> CliResult {
    let tenancy = ctx.tenancy;
    let mut conn = ctx.connect()?;
    let report = crate::doctor::doctor(
        &mut conn,
        &tenancy.config,
        &*tenancy.catalog,
        &SharedSource(Arc::clone(&tenancy.tenant_migrations)),
    )
    .map_err(|e| CliError::Failed(format!("the checks could not run: {e}")))?;
    let mut counts = [0usize; 3];
    for check in &report.checks {
        writeln!(ctx.out, "{check}")?;
        counts[match check.status {
            CheckStatus::Pass => 0,
            CheckStatus::Warn => 1,
            CheckStatus::Fail => 2,
        }] += 1;
    }
    writeln!(
        ctx.out,
        "\n{} passed, {} warned, {} failed",
        counts[0], counts[1], counts[2]
    )?;
    Ok(if counts[2] > 0 {
        Outcome::Failed
    } else {
        Outcome::Success
    })
}
