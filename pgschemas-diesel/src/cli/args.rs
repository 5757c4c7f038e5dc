//! The command line, as clap parses it.

use clap::{Args, Parser, Subcommand};

use crate::migrate::Selection;
use crate::parallel::Workers;

/// Manage the schemas and tenants of a schema-per-tenant PostgreSQL database.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "The database is --database-url, else the DATABASE_URL environment variable.\n\
                  Exit status: 0 success, 1 a schema or check failed, 2 bad usage or selection."
)]
pub(crate) struct Cli {
    /// The database to connect to (default: $DATABASE_URL).
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) database_url: Option<String>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Migrate the selected schemas (all when none is selected): the shared schema first, with
    /// the shared migrations, then the static tenants, the clone reference and the dynamic
    /// tenants with the tenant migrations, each schema in its own transactions.
    Migrate(MigrateArgs),
    /// Print the route of each selected schema (its primary domain, `domain/folder`, or its
    /// name), one per line, in run order.
    Whowill(SelectArgs),
    /// List the selected schemas (all when none is selected): kind, tenant, state, migrations.
    List(SelectArgs),
    /// Create the clone reference schema and apply every tenant migration to it.
    CreateReference(CreateReferenceArgs),
    /// Copy schema <SOURCE> (tables, data, sequences, indexes, constraints, views, functions,
    /// triggers, types, the migration ledger) into a new schema <DESTINATION>.
    ///
    /// Only the schema is created: no tenant row. With --dry-run the clone runs inside a
    /// transaction that is then rolled back, so every statement is checked and nothing is
    /// left behind.
    Clone(CloneArgs),
    /// Create a dynamic tenant: its rows, its schema and every tenant migration (or a clone of
    /// the reference), in one transaction.
    CreateTenant(CreateTenantArgs),
    /// Delete a dynamic tenant's rows; with --force also drop its schema, in one transaction.
    DropTenant(DropTenantArgs),
    /// Move a tenant's schema, all its tables together, to another Citus worker
    /// (`citus_schema_move`); the tenant keeps serving through the coordinator meanwhile.
    MoveTenant(MoveTenantArgs),
    /// Run SQL on each selected schema, each in its own transaction with that schema's
    /// search_path; prints the rows of a query, or the rows affected.
    RunSql(RunSqlArgs),
    /// Check the database before going live: grants, search path, name clashes, orphan
    /// schemas, missing schemas, pending migrations, enum types, lock table size.
    Doctor,
    /// Give every tenant schema its role, for an install from before the per-tenant roles
    /// mode: the role, the DDL role as owner of the schema and its objects, the grants. One
    /// transaction per schema: run it again after a failure; a second run changes nothing.
    AdoptRoles,
}

/// Which schemas a command runs on.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct SelectArgs {
    /// A schema: its name, a static tenant, a domain, a `domain/folder` route, or the start of
    /// one (must name exactly one schema). Repeatable: `-s www blog`.
    #[arg(short = 's', long = "schema", value_name = "REF", num_args = 1.., action = clap::ArgAction::Append)]
    pub(crate) schemas: Vec<String>,
    /// Leave out a schema, named like --schema. Exclusion wins. Repeatable.
    #[arg(short = 'x', long = "exclude", value_name = "REF", num_args = 1.., action = clap::ArgAction::Append)]
    pub(crate) exclude: Vec<String>,
    /// Every schema: shared, static, reference, dynamic.
    #[arg(long)]
    pub(crate) all: bool,
    /// The shared schema, the static tenants and the clone reference.
    #[arg(long = "static")]
    pub(crate) static_: bool,
    /// Every dynamic tenant.
    #[arg(long)]
    pub(crate) dynamic: bool,
    /// Every dynamic tenant and the clone reference.
    #[arg(long)]
    pub(crate) tenants: bool,
}

impl SelectArgs {
    pub(crate) fn selection(&self) -> Selection {
        Selection {
            include_all: self.all,
            include_static: self.static_,
            include_dynamic: self.dynamic,
            include_tenant_like: self.tenants,
            schemas: self.schemas.clone(),
            exclude: self.exclude.clone(),
        }
    }
}

/// How a command that runs on many schemas works through them.
#[derive(Debug, Clone, Copy, Default, Args)]
pub(crate) struct WorkersArgs {
    /// Work on N schemas at once (`--parallel` alone: one per CPU). Default 1.
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "0")]
    pub(crate) parallel: Option<usize>,
    /// Go on with the other schemas after one fails (default: stop at the first failure).
    #[arg(long)]
    pub(crate) keep_going: bool,
}

impl From<WorkersArgs> for Workers {
    /// One thread without `--parallel`, one per CPU with `--parallel` alone.
    fn from(args: WorkersArgs) -> Self {
        let count = match args.parallel {
            None => 1,
            Some(0) => std::thread::available_parallelism().map_or(1, |n| n.get()),
            Some(n) => n,
        };
        Self {
            count,
            keep_going: args.keep_going,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    #[command(flatten)]
    pub(crate) select: SelectArgs,
    #[command(flatten)]
    pub(crate) workers: WorkersArgs,
    /// Show the pending migrations of each schema; apply nothing, create nothing.
    #[arg(long)]
    pub(crate) plan: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CreateReferenceArgs {
    /// Drop the reference schema first if it exists, and create it again.
    #[arg(long)]
    pub(crate) recreate: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CloneArgs {
    /// The schema to copy.
    pub(crate) source: String,
    /// The new schema; must not exist.
    pub(crate) destination: String,
    /// Clone inside a transaction that is rolled back: report what would be copied, keep
    /// nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Copy the structure only, not the tables' rows (the migration ledger is copied anyway).
    #[arg(long)]
    pub(crate) no_data: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CreateTenantArgs {
    /// The tenant's schema name.
    pub(crate) schema: String,
    /// A route to the tenant: `host` or `host/folder`. Repeatable; the first is primary.
    #[arg(long = "domain", value_name = "DOMAIN")]
    pub(crate) domains: Vec<String>,
    /// The folder (first path segment) of the first --domain, for subfolder routing.
    #[arg(long, value_name = "FOLDER", requires = "domains")]
    pub(crate) folder: Option<String>,
    /// A display name (default: the schema name).
    #[arg(long)]
    pub(crate) name: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct DropTenantArgs {
    /// The tenant's schema name.
    pub(crate) schema: String,
    /// Also drop the schema and everything in it (default: keep it).
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct MoveTenantArgs {
    /// The tenant's schema name (a Citus distributed schema).
    pub(crate) schema: String,
    /// The worker to move it to, as `host:port` (see `list`'s node column).
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) to: String,
    /// How the rows are copied: `auto` (logical replication, writes go on), `force-logical`,
    /// `block-writes` (writes wait until the move is over).
    #[arg(long, value_enum, default_value_t = TransferModeArg::Auto)]
    pub(crate) mode: TransferModeArg,
}

/// Citus' `shard_transfer_mode`, as `move-tenant --mode` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum TransferModeArg {
    Auto,
    ForceLogical,
    BlockWrites,
}

#[derive(Debug, Args)]
pub(crate) struct RunSqlArgs {
    /// The SQL to run (one statement or several; `-` reads it from standard input). Give it
    /// before -s/-x, which take several values.
    pub(crate) sql: String,
    #[command(flatten)]
    pub(crate) select: SelectArgs,
    #[command(flatten)]
    pub(crate) workers: WorkersArgs,
}
