//! The crate's error type.
//!
//! One rule for causes: an error that has a cause (a Diesel error, a hook's error, the pool's)
//! returns it from [`source()`](std::error::Error::source) and does not repeat it in its
//! message, so a reporter that walks the chain prints each cause once. To show an error with
//! its causes, as the command line does, use [`Error::report`]:
//! `database error in schema "t1": relation "orders" does not exist`.

use std::error::Error as StdError;
use std::fmt;

use crate::name::InvalidReason;

mod fields;
mod migration;
mod row;

pub use fields::{
    CloneRefusal, ConfiguredSchema, Dependent, DomainFault, FolderFault, HookName, JobFault,
    RouteFault, SessionProblem,
};
pub use migration::{LedgerProblem, MigrationError, MigrationErrorKind};
pub use row::{InvalidRow, RowKind};

/// `Result` with [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every error the crate reports.
///
/// Each variant names the schema (or host, tenant, migration) involved; the message says what
/// happened and, where PostgreSQL's own words are cryptic, what to do.
///
/// ```
/// use pgschemas_diesel::{Error, SchemaName};
///
/// let err = SchemaName::new("pg_temp").unwrap_err();
/// assert!(err.to_string().contains("pg_temp"));
/// assert!(matches!(err, Error::InvalidSchemaName { .. }));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A string was refused as a schema name.
    #[error("invalid schema name {name:?}: {reason}")]
    InvalidSchemaName {
        /// The refused input, as given.
        name: String,
        /// Why it was refused.
        reason: InvalidReason,
    },

    /// A schema name clashes with one the configuration reserves (the shared schema, a static
    /// tenant, the clone reference or an extra search path). Compared case-insensitively.
    #[error("schema name {schema:?} clashes with {with} {other:?}")]
    NameClash {
        /// The schema name that was refused.
        schema: String,
        /// What the configuration uses the other name for.
        with: ConfiguredSchema,
        /// The configured name it clashes with, as configured.
        other: String,
    },

    /// The configuration is inconsistent; the message says which setting and why.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// An operation needs the clone reference, but the configuration names none.
    #[error(
        "{wanted_by} needs a clone reference, but none is configured; set one with ConfigBuilder::clone_reference"
    )]
    NoCloneReference {
        /// What needed it, e.g. `create_reference` or `clone_from_reference`.
        wanted_by: &'static str,
    },

    /// Work that runs in the current tenant (`tenant::require`, `tenant::spawn`,
    /// `TenantJob::new`, feature `async`) was started outside any tenant scope: it fails
    /// closed instead of running with no tenant.
    #[error(
        "{wanted_by} needs a current tenant, but none is set; run it inside tenant::scope or a task started with tenant::spawn"
    )]
    NoCurrentTenant {
        /// What asked for it, e.g. `tenant::spawn`.
        wanted_by: &'static str,
    },

    /// A storage path was refused: it would leave the tenant's folder, or cannot be read the
    /// same way on every store ([`keys::storage_path`](crate::keys::storage_path)).
    #[error("storage path {path:?} of tenant {tenant:?} refused: {reason}")]
    InvalidStoragePath {
        /// The tenant whose folder the path was for.
        tenant: String,
        /// The refused path, as given.
        path: String,
        /// Why it was refused.
        reason: &'static str,
    },

    /// The stored form of a background job (`tenant::TenantJob`, feature `async`) was
    /// refused: it names no tenant, its tenant is not a valid schema name, or its payload does
    /// not parse. Nothing ran.
    #[error("refusing a job{}: {reason}", of_tenant(tenant))]
    InvalidJob {
        /// The tenant as stored, when the stored form names one.
        tenant: Option<String>,
        /// What is wrong with it.
        reason: JobFault,
        /// The payload's parse error, for [`JobFault::Payload`].
        #[source]
        source: Option<Box<dyn StdError + Send + Sync>>,
    },

    /// A [`Migrator`](crate::migrate::Migrator) was built with 0 workers, or with more workers than
    /// its pool has connections (each worker holds one).
    #[error("{}", workers_message(*workers, *pool_size))]
    Workers {
        /// The workers asked for.
        workers: usize,
        /// The pool's `max_size`.
        pool_size: usize,
    },

    /// The routing table watches a table that does not exist.
    #[error("routing watches table {table}, which does not exist; run the shared migrations first")]
    WatchedTableMissing {
        /// The table, schema-qualified and quoted.
        table: String,
    },

    /// A table routing watches has no trigger notifying it of changes.
    #[error(
        "table {table} has no trigger notifying channel {channel:?}, so route changes would wait for the next full reload; install it with pgschemas_diesel::models::install_route_triggers (or the SQL of pgschemas_diesel::models::route_trigger_sql in a shared migration), or turn this check off with RouteOptions::check_triggers(false)"
    )]
    RouteTriggerMissing {
        /// The table, schema-qualified and quoted.
        table: String,
        /// The channel the trigger should notify.
        channel: &'static str,
    },

    /// The migrations of a source could not be listed (for example an unreadable directory).
    #[error("could not list the migrations")]
    MigrationSource(#[source] Box<dyn StdError + Send + Sync>),

    /// A thread the crate needs could not be started.
    #[error("could not start the {thread} thread")]
    Spawn {
        /// Which thread, e.g. `route listener`.
        thread: &'static str,
        /// Why the operating system refused.
        #[source]
        source: std::io::Error,
    },

    /// The blocking task running a tenant's database work was cancelled before it finished
    /// (the runtime is shutting down).
    #[error("the blocking task running the database work of schema {schema:?} was cancelled")]
    Cancelled {
        /// The tenant's schema.
        schema: String,
        /// The runtime's error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },

    /// A tenant role's name, rendered from the [`RoleTemplate`](crate::roles::RoleTemplate),
    /// would be longer than PostgreSQL's 63 bytes.
    #[error(
        "the role of schema {schema:?} would be named {role:?}, longer than 63 bytes; use a shorter role template"
    )]
    RoleName {
        /// The tenant's schema.
        schema: String,
        /// The name the template gives.
        role: String,
    },

    /// A connection's login cannot be used in the per-tenant roles mode; the message says
    /// what to change.
    #[error("login role {login:?} {detail}")]
    Login {
        /// The login (`session_user`).
        login: String,
        /// What is wrong.
        problem: crate::roles::LoginProblem,
        /// What is wrong and the fix, in words.
        detail: String,
    },

    /// The tenant's role does not exist (the tenant was provisioned before roles were on, or
    /// the role was dropped): the schema is refused.
    #[error(
        "the role {role:?} of schema {schema:?} does not exist; adopt roles for existing tenants (pgschemas-diesel adopt-roles) or provision the tenant again"
    )]
    TenantRoleMissing {
        /// The tenant's schema.
        schema: String,
        /// Its role.
        role: String,
    },

    /// The connection's login is not a member of the tenant's role, so it cannot switch to it.
    #[error(
        "login role {login:?} is not a member of role {role:?} of schema {schema:?}; add it to TenantRoles::login_role and adopt roles again, or GRANT {role:?} TO {login:?}"
    )]
    NotMemberOfRole {
        /// The tenant's schema.
        schema: String,
        /// Its role.
        role: String,
        /// The login.
        login: String,
    },

    /// A role with the tenant role's name exists already and is not this database's role of
    /// that schema: it is never taken over.
    #[error(
        "role {role:?} for schema {schema:?} exists already and is not marked as its tenant role; drop or rename it, or change the role template"
    )]
    RoleExists {
        /// The tenant's schema.
        schema: String,
        /// The role.
        role: String,
    },

    /// The schema does not exist in the database.
    #[error(
        "schema {schema:?} does not exist; create it (or provision the tenant) before activating or migrating it"
    )]
    SchemaNotFound {
        /// The missing schema.
        schema: String,
    },

    /// The schema exists, but the role the connection runs as has no `USAGE` on it: its
    /// tables are out of reach, so the schema is refused instead of letting names fall
    /// through to the shared schema.
    #[error(
        "role {role:?} may not use schema {schema:?}; grant it (GRANT USAGE ON SCHEMA {schema} TO {role}) or connect as a role that may"
    )]
    SchemaNotUsable {
        /// The schema asked for.
        schema: String,
        /// The role that lacks the privilege.
        role: String,
    },

    /// The connection's session is not in a state the crate can hand out for this schema
    /// (for example a transaction left open on a plain connection); the reason says which.
    #[error("the connection cannot serve schema {schema:?}: {reason}")]
    SessionState {
        /// The schema asked for.
        schema: String,
        /// What is wrong with the session.
        reason: SessionProblem,
    },

    /// No dynamic tenant has this schema (the tenant model has no row for it).
    #[error("no dynamic tenant has schema {schema:?}")]
    TenantNotFound {
        /// The schema asked for.
        schema: String,
    },

    /// The schema already exists.
    #[error("schema {schema:?} already exists")]
    SchemaExists {
        /// The existing schema.
        schema: String,
    },

    /// An operation that would destroy a protected schema (the shared schema, a static
    /// tenant, the clone reference or an extra search path) was refused; the `dangerous_` variant of the call does it anyway.
    #[error(
        "refusing to {action} schema {schema:?}: it is {}; use the dangerous_ variant if you really mean it",
        what.indefinite()
    )]
    Protected {
        /// The protected schema.
        schema: String,
        /// What was attempted, e.g. `drop`.
        action: &'static str,
        /// Why it is protected: what the configuration uses it for.
        what: ConfiguredSchema,
    },

    /// Dropping a schema was refused because objects outside it depend on objects inside it
    /// (a view or foreign key of another schema, a column or function using one of its
    /// types, an extension owning one of its objects): `DROP SCHEMA ... CASCADE` would drop
    /// them too. Nothing was dropped.
    #[error(
        "refusing to drop schema {schema:?}: objects outside it would be dropped with it: {}; drop or change them first, or use the dangerous_ cascading variant to drop them too",
        fields::join(objects)
    )]
    Dependents {
        /// The schema that was not dropped.
        schema: String,
        /// The outside objects, each with its kind, schema-qualified name and what it depends
        /// on; displayed as `view public.report (depends on table t1.orders)`.
        objects: Vec<Dependent>,
    },

    /// A Citus operation was asked of a database without the `citus` extension (or of a
    /// configuration with [`citus`](crate::ConfigBuilder::citus) on, against one).
    #[error(
        "the citus extension is not installed in this database; connect to the Citus coordinator, or run `CREATE EXTENSION citus` there and on every worker"
    )]
    CitusMissing,

    /// The schema is not a Citus distributed schema.
    #[error(
        "schema {schema:?} is not a distributed schema; distribute it first (citus::distribute_schema, or SELECT citus_schema_distribute('{schema}'))"
    )]
    NotDistributed {
        /// The schema.
        schema: String,
    },

    /// The node is not an active Citus worker that may hold shards.
    #[error(
        "{node} is not an active Citus worker; pick one of citus::workers (pg_dist_node), or add it with citus_add_node"
    )]
    UnknownNode {
        /// The node, as `host:port`.
        node: String,
    },

    /// A database error, with the schema it concerns when one is known.
    #[error("database error{}", in_schema(schema))]
    Database {
        /// The schema the statement ran for, when known.
        schema: Option<String>,
        /// Diesel's error.
        #[source]
        source: diesel::result::Error,
    },

    /// Cloning a schema was refused before anything was sent, because the source holds an
    /// object the clone cannot reproduce faithfully.
    #[error(
        "cannot clone schema {source_schema:?} into {schema:?}: {reason}; move such objects to the shared schema or create them with a migration"
    )]
    Clone {
        /// The schema being cloned from.
        source_schema: String,
        /// The schema that would have been created.
        schema: String,
        /// What the source holds that cannot be cloned.
        reason: CloneRefusal,
    },

    /// Cloning a schema was refused before anything was created, because definitions in the
    /// source name the source schema where the clone cannot rewrite the name (a qualified name
    /// in a function body, a string naming it, a `search_path` setting it cannot read): their
    /// copies would still read or write the source. [`Provisioner`](crate::provision::Provisioner) also
    /// refuses, with this error, what [`CloneReport::warnings`](crate::provision::CloneReport::warnings)
    /// would list.
    #[error(
        "cannot clone schema {source_schema:?} into {schema:?}: {}; the copies would still reach {source_schema:?}: refer to the schema's own objects without its name (a clone's path finds its own)",
        found.join("; ")
    )]
    CloneNamesSource {
        /// The schema being cloned from.
        source_schema: String,
        /// The schema that would have been created.
        schema: String,
        /// Each definition that names the source, and how.
        found: Vec<String>,
    },

    /// A provisioning hook returned an error: the whole operation was rolled back.
    #[error("the {hook} hook failed for schema {schema:?}, so nothing was committed")]
    Hook {
        /// The tenant's schema.
        schema: String,
        /// Which hook.
        hook: HookName,
        /// The hook's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A route (domain and folder) already belongs to a tenant; routes are unique across
    /// all tenants.
    #[error(
        "route {:?} is taken by tenant {tenant_id}; remove it there first, or choose another domain or folder",
        crate::domain::route_label(domain, folder.as_deref())
    )]
    DomainTaken {
        /// The domain, lower case.
        domain: String,
        /// The folder, if any.
        folder: Option<String>,
        /// The key of the tenant that has it.
        tenant_id: String,
    },

    /// A domain or folder that routing could never match was refused.
    #[error("invalid route {domain:?}: {reason}")]
    InvalidDomain {
        /// The route as given (`domain` or `domain/folder`).
        domain: String,
        /// Why it was refused.
        reason: RouteFault,
    },

    /// Taking a connection from the pool failed (timeout, or the server is unreachable).
    #[error("could not get a connection from the pool")]
    Pool(#[from] r2d2::Error),

    /// Taking a connection from the async pool failed (the server is unreachable, or the
    /// pool was closed).
    #[cfg(feature = "deadpool")]
    #[error("could not get a connection from the async pool")]
    AsyncPool(#[from] deadpool::managed::PoolError<diesel::ConnectionError>),

    /// Taking a connection from the async pool's bb8 backend failed (bb8's connection timeout
    /// passed, or the server is unreachable).
    #[cfg(feature = "bb8")]
    #[error("could not get a connection from the async pool (bb8)")]
    Bb8Pool(#[from] bb8::RunError<diesel::ConnectionError>),

    /// Deadpool refused the async pool's settings.
    #[cfg(feature = "deadpool")]
    #[error("could not build the async pool")]
    AsyncPoolBuild(#[from] deadpool::managed::BuildError),

    /// Connecting to PostgreSQL failed.
    #[error("could not connect to PostgreSQL")]
    Connection(#[from] diesel::ConnectionError),

    /// Migrating a schema failed; the [`MigrationError`](crate::migrate::MigrationError) names the
    /// schema and the migration.
    #[error(transparent)]
    Migration(#[from] MigrationError),

    /// A schema reference (`-s`/`-x` of a multi-schema command) names no schema.
    #[error(
        "no schema found for {reference:?}{}; give a schema name, a static tenant, a domain or a domain/folder route (or the start of one)",
        excluded_note(*excluded)
    )]
    UnknownReference {
        /// The reference, as given.
        reference: String,
        /// Whether it was an exclusion.
        excluded: bool,
    },

    /// A schema reference matches the domains or routes of several schemas.
    #[error(
        "more than one schema found for {reference:?}{} by domain ({}); narrow the reference down",
        excluded_note(*excluded),
        matches.join(", ")
    )]
    AmbiguousReference {
        /// The reference, as given.
        reference: String,
        /// Whether it was an exclusion.
        excluded: bool,
        /// The schemas it matches, in run order.
        matches: Vec<String>,
    },

    /// The dynamic tenants could not be listed from the catalog.
    #[error(
        "could not list the dynamic tenants; if the tenant tables do not exist yet, migrate the shared schema first"
    )]
    Catalog(#[source] Box<Error>),

    /// A row of the tenant or domain table was left out because it cannot be used; the
    /// others are served and migrated. Reported, never returned by a read of the catalog.
    #[error("{0}")]
    InvalidRow(InvalidRow),
}

impl Error {
    /// Wraps a Diesel error with the schema it concerns.
    pub(crate) fn db(schema: impl Into<String>, source: diesel::result::Error) -> Self {
        Self::Database {
            schema: Some(schema.into()),
            source,
        }
    }

    /// Shows this error followed by its causes (the [`source()`](StdError::source) chain),
    /// each after `: `, as anyhow's `{:#}` does: what the command line prints.
    ///
    /// ```
    /// use pgschemas_diesel::Error;
    ///
    /// let err = Error::Catalog(Box::new(Error::from(diesel::result::Error::NotFound)));
    /// assert_eq!(
    ///     err.report().to_string(),
    ///     "could not list the dynamic tenants; if the tenant tables do not exist yet, \
    ///      migrate the shared schema first: database error: Record not found"
    /// );
    /// ```
    pub fn report(&self) -> impl fmt::Display + '_ {
        Report(self)
    }

    /// The schema this error is about, when it names one.
    ///
    /// ```
    /// use pgschemas_diesel::SchemaName;
    ///
    /// let err = SchemaName::new("Bad").unwrap_err();
    /// assert_eq!(err.schema(), Some("Bad"));
    /// ```
    pub fn schema(&self) -> Option<&str> {
        match self {
            Self::InvalidSchemaName { name, .. } => Some(name),
            Self::NameClash { schema, .. }
            | Self::SchemaNotFound { schema }
            | Self::SchemaNotUsable { schema, .. }
            | Self::SessionState { schema, .. }
            | Self::TenantNotFound { schema }
            | Self::SchemaExists { schema }
            | Self::Protected { schema, .. }
            | Self::Dependents { schema, .. }
            | Self::Clone { schema, .. }
            | Self::CloneNamesSource { schema, .. }
            | Self::Hook { schema, .. }
            | Self::Cancelled { schema, .. }
            | Self::NotDistributed { schema }
            | Self::RoleName { schema, .. }
            | Self::TenantRoleMissing { schema, .. }
            | Self::NotMemberOfRole { schema, .. }
            | Self::RoleExists { schema, .. }
            | Self::InvalidStoragePath { tenant: schema, .. } => Some(schema),
            Self::Database { schema, .. } | Self::InvalidJob { tenant: schema, .. } => {
                schema.as_deref()
            }
            Self::Migration(e) => Some(e.schema().as_str()),
            Self::Catalog(e) => e.schema(),
            Self::Config(_)
            | Self::NoCloneReference { .. }
            | Self::NoCurrentTenant { .. }
            | Self::Workers { .. }
            | Self::WatchedTableMissing { .. }
            | Self::RouteTriggerMissing { .. }
            | Self::MigrationSource(_)
            | Self::Spawn { .. }
            | Self::DomainTaken { .. }
            | Self::InvalidDomain { .. }
            | Self::Pool(_)
            | Self::Connection(_)
            | Self::UnknownReference { .. }
            | Self::AmbiguousReference { .. }
            | Self::InvalidRow(_)
            | Self::CitusMissing
            | Self::UnknownNode { .. }
            | Self::Login { .. } => None,
            #[cfg(feature = "deadpool")]
            Self::AsyncPool(_) | Self::AsyncPoolBuild(_) => None,
            #[cfg(feature = "bb8")]
            Self::Bb8Pool(_) => None,
        }
    }
}

/// An error and its causes, each after `: `; see [`Error::report`].
pub(crate) struct Report<'a>(pub(crate) &'a (dyn StdError + 'static));

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut top = self.0;
        if let Some(Error::Migration(e)) = top.downcast_ref::<Error>() {
            top = e;
        }
        write!(f, "{top}")?;
        let mut cause = top.source();
        if let Some(text) = top
            .downcast_ref::<MigrationError>()
            .and_then(migration::failed_cause_text)
        {
            write!(f, ": {text}")?;
            cause = cause.and_then(StdError::source);
        }
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

fn workers_message(workers: usize, pool_size: usize) -> String {
    if workers == 0 {
        "the migrator needs at least one worker".to_owned()
    } else {
        format!(
            "the migrator has {workers} workers but the pool only {pool_size} connections; each worker holds one: build the pool with max_size({workers})"
        )
    }
}

fn excluded_note(excluded: bool) -> &'static str {
    if excluded { " (excluded)" } else { "" }
}

fn of_tenant(tenant: &Option<String>) -> String {
    match tenant {
        Some(t) => format!(" of tenant {t:?}"),
        None => String::new(),
    }
}

fn in_schema(schema: &Option<String>) -> String {
    match schema {
        Some(s) => format!(" in schema {s:?}"),
        None => String::new(),
    }
}

impl From<diesel::result::Error> for Error {
    /// Wraps a Diesel error that concerns no particular schema, so that `?` works on Diesel
    /// calls inside closures returning [`Result`].
    fn from(source: diesel::result::Error) -> Self {
        Self::Database {
            schema: None,
            source,
        }
    }
}
