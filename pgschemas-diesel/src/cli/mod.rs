//! The management command line (feature `cli`): `migrate`, `whowill`, `list`,
//! `create-reference`, `clone`, `create-tenant`, `drop-tenant`, `move-tenant`, `run-sql`,
//! `doctor`.
//!
//! Your own binary builds a [`App`] (configuration, models, embedded migrations) and calls
//! [`run`], so that the commands know your tenants:
//!
//! ```no_run
//! // `no_run`: `cli::run` reads this process's command line; `run_from` runs in tests
//! use diesel_migrations::{EmbeddedMigrations, embed_migrations};
//! use pgschemas_diesel::cli::{self, App};
//! use pgschemas_diesel::{Config, StaticTenant};
//!
//! // In your crate: embed_migrations!("migrations/tenant")
//! const TENANT_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
//!
//! fn main() -> std::process::ExitCode {
//!     let config = match Config::builder()
//!         .static_tenant(StaticTenant::builder("www").domain("localhost"))
//!         .clone_reference("sample")
//!         .build()
//!     {
//!         Ok(config) => config,
//!         Err(e) => {
//!             eprintln!("error: {e}");
//!             return std::process::ExitCode::from(2);
//!         }
//!     };
//!     cli::run(App::builder(config, TENANT_MIGRATIONS).default_models().build())
//! }
//! ```
//!
//! ```text
//! $ manage migrate --parallel 4          # shared schema first, then every tenant
//! $ manage migrate --plan -s acme        # what would run, nothing applied
//! $ manage whowill --dynamic -x acme     # the routes of the selected schemas
//! $ manage create-tenant acme --domain acme.example.com
//! $ manage run-sql "select count(*) from orders" --dynamic
//! $ manage doctor
//! ```
//!
//! **Selecting schemas** (`migrate`, `whowill`, `list`, `run-sql`), as django-pgschemas'
//! commands do: `-s/--schema REF...` and `-x/--exclude REF...`, where a reference is a schema
//! name, a static tenant, a domain, a `domain/folder` route or the start of one (it must name
//! exactly one schema); `--all`; `--static` (shared, static tenants, clone reference);
//! `--dynamic`; `--tenants` (dynamic tenants and the clone reference). Exclusion wins.
//! Schemas run in a stable order: shared, static (declared order), reference, dynamic by name.
//! `migrate` and `list` take every schema when none is selected; `whowill` and `run-sql`
//! refuse.
//!
//! **`run-sql`** runs the SQL in one transaction per schema, with that schema's search path,
//! and commits it when the SQL succeeded. Before any schema runs, it refuses a selection that
//! names no schema or a schema that does not exist, and a script with a statement that would
//! leave that transaction or path: transaction control (`BEGIN`, `COMMIT`, `END`, `ROLLBACK`,
//! `SAVEPOINT`, `PREPARE TRANSACTION`, ...), `SET`/`RESET` of the search path or the role,
//! `DISCARD`, `DEALLOCATE` (words inside literals, dollar quotes, quoted identifiers and
//! comments do not count). A path change it cannot see (`set_config('search_path', ...)`)
//! fails that schema and rolls it back.
//!
//! **Output**: when standard error is a terminal, long work shows a progress bar; otherwise
//! each schema gets a plain line (`t1 ... ok (3 applied, 41 ms)`). A summary table ends the
//! run, failures listed with schema, migration and error.
//!
//! **Bad rows**: a row of the tenant or domain table that cannot be used (a schema name
//! that is not valid, a domain of such a tenant) never stops a command: the others are
//! migrated, listed or run on, and the rows left out are listed at the end (`whowill`: on
//! standard error); `doctor` reports them in its `invalid-rows` check.
//!
//! **Exit status**: 0 on success, 1 when a schema, a check or the command failed or a
//! selection that takes every dynamic tenant had to leave a bad row out, 2 for bad usage or a
//! bad selection (no schema given, unknown or ambiguous reference, for `run-sql` also a
//! selection of no existing schema, or a refused script): then nothing was run.
//!
//! **Database**: `--database-url`, else the `DATABASE_URL` environment variable, else
//! [`AppBuilder::database_url`].

mod app;
mod args;
mod commands;
mod output;
mod sql;

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;

pub use app::{App, AppBuilder, DefaultModelRows, NewTenantRows, TenantRows};

use args::Cli;

/// How a CLI run ended; converts into the process's [`ExitCode`].
///
/// ```
/// use pgschemas_diesel::cli::Outcome;
///
/// assert_eq!(Outcome::Success.code(), 0);
/// assert_eq!(Outcome::Failed.code(), 1);
/// assert_eq!(Outcome::Usage.code(), 2);
/// let code: std::process::ExitCode = Outcome::Failed.into();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Everything asked for was done (or, for `doctor`, no check failed).
    Success,
    /// A schema, a check or the command failed, or a bad catalog row was left out; the
    /// output says what.
    Failed,
    /// The command line or the selection was wrong: nothing was done.
    Usage,
}

impl Outcome {
    /// The process exit status: 0, 1 or 2.
    ///
    /// ```
    /// assert_eq!(pgschemas_diesel::cli::Outcome::Usage.code(), 2);
    /// ```
    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Failed => 1,
            Self::Usage => 2,
        }
    }
}

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> Self {
        ExitCode::from(outcome.code())
    }
}

/// Runs the command line of this process (`std::env::args_os`) against `app`, printing to
/// standard output and standard error, and returns the exit status to end `main` with.
///
/// A progress bar is shown for long work when standard error is a terminal.
///
/// ```no_run
/// // `no_run`: it reads this process's command line ([`run_from`] runs in tests)
/// # use pgschemas_diesel::{Config, cli::{self, App}};
/// # const M: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("../examples/migrations/tenant");
/// fn main() -> std::process::ExitCode {
///     cli::run(App::builder(Config::default(), M).default_models().build())
/// }
/// ```
pub fn run(app: App) -> ExitCode {
    let progress = std::io::stderr().is_terminal();
    let outcome = run_with(
        &app,
        std::env::args_os(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
        progress,
    );
    outcome.into()
}

/// Runs the command line `args` (the program name first, as in `std::env::args_os`) against
/// `app`, writing results to `out` and errors to `err`: for embedding the CLI in a larger
/// program, or testing it. Never shows a progress bar.
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database().models().tenant("acme", &["acme.example.com"]); let database_url = db.url();
/// use pgschemas_diesel::cli::{self, Outcome, App};
/// # use pgschemas_diesel::Config;
/// # const M: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!("../examples/migrations/tenant");
/// let app = App::builder(Config::default(), M).default_models().build();
/// let (mut out, mut err) = (Vec::new(), Vec::new());
/// let args = ["manage", "whowill", "--all", "--database-url", database_url];
/// let outcome = cli::run_from(&app, args, &mut out, &mut err);
/// assert_eq!(outcome, Outcome::Success, "{}", String::from_utf8_lossy(&err));
/// assert!(String::from_utf8_lossy(&out).contains("acme.example.com"));
/// ```
pub fn run_from<I, T>(app: &App, args: I, out: &mut dyn Write, err: &mut dyn Write) -> Outcome
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    run_with(app, args, out, err, false)
}

fn run_with<I, T>(
    app: &App,
    args: I,
    out: &mut dyn Write,
    err: &mut dyn Write,
    progress: bool,
) -> Outcome
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let text = if progress {
                e.render().ansi().to_string()
            } else {
                e.render().to_string()
            };
            // Nothing better to do when the output itself is gone.
            if e.use_stderr() {
                let _ = err.write_all(text.as_bytes());
                return Outcome::Usage;
            }
            let _ = out.write_all(text.as_bytes());
            return Outcome::Success;
        }
    };
    let mut ctx = commands::Ctx {
        app,
        database_url: cli.database_url,
        out,
        err,
        progress,
    };
    let result = commands::dispatch(&mut ctx, cli.command);
    let _ = ctx.out.flush();
    match result {
        Ok(outcome) => outcome,
        Err(e) => {
            let _ = writeln!(ctx.err, "error: {}", e.message());
            e.outcome()
        }
    }
}
