//! What went wrong while migrating one schema.

use std::error::Error as StdError;
use std::fmt;

use crate::name::SchemaName;

/// A migration run that failed in one schema: which schema, which migration (when one was
/// running) and why.
///
/// A separate type from [`Error`](crate::Error) because callers branch on it: the
/// [`Migrator`](crate::migrate::Migrator) keeps one per failed schema in its
/// [`MigrationReport`](crate::migrate::MigrationReport) and carries on (or stops) as configured. It
/// converts into [`Error::Migration`](crate::Error::Migration) for `?`.
///
/// The message names the schema and the migration; the cause, when there is one, is its
/// [`source()`](StdError::source) (the crate's rule, see [`Error`](crate::Error)), and
/// [`report`](MigrationError::report) shows both:
/// `migration 2024-01-01-000002_boom failed in schema "t1": division by zero`.
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database().schemas(&["t2"]); let database_url = db.url();
/// # use diesel::{Connection, PgConnection};
/// use pgschemas_diesel::{Config, SchemaName};
/// use pgschemas_diesel::migrate::{MigrationErrorKind, migrate_schema};
///
/// const TENANT: diesel_migrations::EmbeddedMigrations =
///     diesel_migrations::embed_migrations!("../examples/migrations/tenant");
///
/// let mut conn = PgConnection::establish(database_url)?;
/// let t1 = SchemaName::new("t1")?; // never created
/// match migrate_schema(&mut conn, &Config::default(), &t1, &TENANT) {
///     Ok(applied) => panic!("{t1}: {} applied", applied.len()),
///     Err(e) if matches!(e.kind(), MigrationErrorKind::SchemaNotFound) => {
///         eprintln!("{e}"); // schema "t1" does not exist; ...
///         assert_eq!(e.schema(), &t1);
///         assert_eq!(e.migration(), None); // nothing ran
///     }
///     Err(e) => return Err(e.into()),
/// }
///
/// // A migration's own SQL fails: the error names it, its report ends with the cause.
/// const FAILING: diesel_migrations::EmbeddedMigrations =
///     diesel_migrations::embed_migrations!("../tests/migrations/failing");
/// let t2 = SchemaName::new("t2")?;
/// let e = migrate_schema(&mut conn, &Config::default(), &t2, &FAILING).unwrap_err();
/// assert!(matches!(e.kind(), MigrationErrorKind::Failed(_)));
/// assert_eq!(e.migration(), Some("2024-01-01-000002_boom"));
/// assert_eq!(e.to_string(), r#"migration 2024-01-01-000002_boom failed in schema "t2""#);
/// assert!(e.report().to_string().starts_with(r#"migration 2024-01-01-000002_boom failed in schema "t2": "#));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct MigrationError {
    schema: SchemaName,
    migration: Option<String>,
    version: Option<String>,
    kind: MigrationErrorKind,
}

/// Why a schema's migration run failed; see [`MigrationError::kind`].
#[derive(Debug)]
#[non_exhaustive]
pub enum MigrationErrorKind {
    /// The schema does not exist. Nothing ran, nothing was written anywhere.
    SchemaNotFound,
    /// The schema exists but PostgreSQL would not create objects in it: `current_schema()`
    /// was another schema (or none), typically because the role lacks `USAGE` on it, which
    /// makes PostgreSQL skip it in the search path. Nothing ran.
    NotCreationSchema {
        /// What `current_schema()` was instead.
        current: Option<String>,
    },
    /// A migration's own SQL failed; its transaction was rolled back, so the schema stays at
    /// the last migration that succeeded. The cause carries PostgreSQL's words.
    Failed(Box<dyn StdError + Send + Sync>),
    /// A migration changed the session's `search_path` (`SET search_path` in `up.sql`); its
    /// transaction was rolled back and its version not recorded. Schema-qualify names
    /// instead. (A migration with `run_in_transaction = false` cannot be rolled back: what it
    /// created after changing the path stays where it went.)
    PathChanged,
    /// Listing the migrations of the source failed (for example an unreadable directory).
    Source(Box<dyn StdError + Send + Sync>),
    /// The schema's ledger exists but cannot be read exactly (it is not a table, its
    /// `version` column is missing or not text, the role may not read it, ...). Nothing ran:
    /// without the ledger there is no knowing what is applied.
    Ledger(LedgerProblem),
    /// A statement of the run itself failed: the lock, the ledger, the path switch or its
    /// restore.
    Database(diesel::result::Error),
    /// No connection could be had (the pool timed out, or the server is gone).
    Connection(Box<crate::Error>),
}

impl MigrationError {
    pub(crate) fn new(schema: &SchemaName, kind: MigrationErrorKind) -> Self {
        Self {
            schema: schema.clone(),
            migration: None,
            version: None,
            kind,
        }
    }

    pub(crate) fn in_migration(mut self, name: String, version: String) -> Self {
        self.migration = Some(name);
        self.version = Some(version);
        self
    }

    pub(crate) fn db(schema: &SchemaName, e: diesel::result::Error) -> Self {
        Self::new(schema, MigrationErrorKind::Database(e))
    }

    /// Maps the crate's error for `schema` (from switching or checking out) onto a migration
    /// error.
    pub(crate) fn from_crate(schema: &SchemaName, e: crate::Error) -> Self {
        match e {
            crate::Error::SchemaNotFound { .. } => {
                Self::new(schema, MigrationErrorKind::SchemaNotFound)
            }
            crate::Error::Database { source, .. } => Self::db(schema, source),
            other => Self::new(schema, MigrationErrorKind::Connection(Box::new(other))),
        }
    }

    /// The schema being migrated.
    pub fn schema(&self) -> &SchemaName {
        &self.schema
    }

    /// The migration that was running (its full name, e.g. `2024-01-01-000002_boom`), when
    /// the failure happened in one.
    pub fn migration(&self) -> Option<&str> {
        self.migration.as_deref()
    }

    /// The version of the migration that was running (as recorded in the ledger, e.g.
    /// `20240101000002`), when the failure happened in one.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// Why it failed.
    pub fn kind(&self) -> &MigrationErrorKind {
        &self.kind
    }
}

impl MigrationError {
    /// Shows this error followed by its causes, each after `: `, as
    /// [`Error::report`](crate::Error::report) does.
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database().sql("create schema t1; create table t1.customers (id int)"); let database_url = db.url();
    /// use diesel::{Connection, PgConnection};
    /// use pgschemas_diesel::{Config, SchemaName};
    /// use pgschemas_diesel::migrate::migrate_schema;
    ///
    /// const TENANT: diesel_migrations::EmbeddedMigrations =
    ///     diesel_migrations::embed_migrations!("../examples/migrations/tenant");
    ///
    /// let mut conn = PgConnection::establish(database_url)?;
    /// let err = migrate_schema(&mut conn, &Config::default(), &SchemaName::new("t1")?, &TENANT)
    ///     .unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     r#"migration 2024-01-01-000001_customers failed in schema "t1""#
    /// );
    /// assert_eq!(
    ///     err.report().to_string(),
    ///     r#"migration 2024-01-01-000001_customers failed in schema "t1": relation "customers" already exists"#
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn report(&self) -> impl fmt::Display + '_ {
        crate::error::Report(self)
    }
}

impl fmt::Display for MigrationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let schema = self.schema.as_str();
        if let Some(name) = &self.migration {
            write!(f, "migration {name} failed in schema {schema:?}")?;
            return match &self.kind {
                MigrationErrorKind::PathChanged => write!(f, ": {}", PATH_CHANGED),
                _ => Ok(()),
            };
        }
        match &self.kind {
            MigrationErrorKind::SchemaNotFound => write!(
                f,
                "schema {schema:?} does not exist; nothing was migrated (create the schema or provision the tenant first)"
            ),
            MigrationErrorKind::NotCreationSchema { current } => write!(
                f,
                "PostgreSQL would create new objects in {} instead of schema {schema:?} (does the role lack USAGE on it?); nothing was migrated",
                match current {
                    Some(c) => format!("schema {c:?}"),
                    None => "no schema".to_owned(),
                }
            ),
            MigrationErrorKind::PathChanged => {
                write!(f, "migrating schema {schema:?} failed: {PATH_CHANGED}")
            }
            MigrationErrorKind::Source(_) => write!(
                f,
                "migrating schema {schema:?} failed: could not list the migrations"
            ),
            MigrationErrorKind::Ledger(problem) => write!(
                f,
                "cannot read the ledger of schema {schema:?}: {problem}; nothing was migrated"
            ),
            MigrationErrorKind::Failed(_)
            | MigrationErrorKind::Database(_)
            | MigrationErrorKind::Connection(_) => {
                write!(f, "migrating schema {schema:?} failed")
            }
        }
    }
}

/// Why a schema's ledger (`__diesel_schema_migrations`) cannot be read; see
/// [`MigrationErrorKind::Ledger`]. Each is decided from the catalog before the ledger is
/// read, never from an error's text. `Display`s as the words the error's message uses.
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database().sql("create schema t1; create table t1.__diesel_schema_migrations (version int)"); let database_url = db.url();
/// use diesel::{Connection, PgConnection};
/// use pgschemas_diesel::SchemaName;
/// use pgschemas_diesel::migrate::{LedgerProblem, MigrationErrorKind, pending_migrations};
///
/// const TENANT: diesel_migrations::EmbeddedMigrations =
///     diesel_migrations::embed_migrations!("../examples/migrations/tenant");
///
/// let mut conn = PgConnection::establish(database_url)?;
/// let err = pending_migrations(&mut conn, &SchemaName::new("t1")?, &TENANT).unwrap_err();
/// let MigrationErrorKind::Ledger(problem) = err.kind() else { panic!("{err}") };
/// assert_eq!(problem, &LedgerProblem::VersionType { found: "integer".into() });
/// assert_eq!(
///     err.to_string(),
///     r#"cannot read the ledger of schema "t1": its version column is of type integer, not text or character varying; nothing was migrated"#
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LedgerProblem {
    /// The relation named `__diesel_schema_migrations` is not a table (nor a partitioned
    /// table): a view, a foreign table, a materialized view, a sequence, an index or a
    /// composite type. Reading or writing it could reach rows outside the schema (a view of
    /// another schema's table, another server), so it is never taken for the ledger.
    NotATable {
        /// Its `pg_class.relkind` (`v` for a view, `f` a foreign table, ...).
        relkind: char,
    },
    /// The role lacks `USAGE` on the schema, so it cannot read anything in it.
    NoSchemaUsage,
    /// The table has no `version` column.
    NoVersionColumn,
    /// The `version` column is neither `text` nor `character varying`.
    VersionType {
        /// Its type, as PostgreSQL names it (`integer`).
        found: String,
    },
    /// The role may not `SELECT` the `version` column.
    NoSelect,
    /// Row-level security applies to the table for this role: some versions could be
    /// hidden from the read.
    RowSecurity,
}

impl LedgerProblem {
    /// What a relation of `relkind` is, with its article.
    fn kind_words(relkind: char) -> String {
        match relkind {
            'v' => "a view".to_owned(),
            'f' => "a foreign table".to_owned(),
            'm' => "a materialized view".to_owned(),
            'S' => "a sequence".to_owned(),
            'i' | 'I' => "an index".to_owned(),
            'c' => "a composite type".to_owned(),
            't' => "a TOAST table".to_owned(),
            other => format!("a relation of kind {other:?}"),
        }
    }
}

impl fmt::Display for LedgerProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotATable { relkind } => write!(
                f,
                "it is {}, not a table of the schema",
                Self::kind_words(*relkind)
            ),
            Self::NoSchemaUsage => f.write_str("the role lacks USAGE on the schema"),
            Self::NoVersionColumn => f.write_str("it has no version column"),
            Self::VersionType { found } => write!(
                f,
                "its version column is of type {found}, not text or character varying"
            ),
            Self::NoSelect => f.write_str("the role lacks SELECT on its version column"),
            Self::RowSecurity => f.write_str(
                "row-level security applies to it for this role and could hide versions",
            ),
        }
    }
}

const PATH_CHANGED: &str = "the migration changed search_path, which would send the next statements to another schema; it was rolled back (schema-qualify names instead of SET search_path)";

/// The cause is the `source()`, not part of the message (the crate's rule).
impl StdError for MigrationError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match &self.kind {
            MigrationErrorKind::Failed(e) | MigrationErrorKind::Source(e) => Some(e.as_ref()),
            MigrationErrorKind::Database(e) => Some(e),
            MigrationErrorKind::Connection(e) => Some(e.as_ref()),
            MigrationErrorKind::SchemaNotFound
            | MigrationErrorKind::NotCreationSchema { .. }
            | MigrationErrorKind::PathChanged
            | MigrationErrorKind::Ledger(_) => None,
        }
    }
}

/// The text of a failed migration's cause without the name: diesel_migrations words it
/// `Failed to run <name> with: <cause>`, and the name is already in the message. The cause
/// itself stays diesel_migrations' error, as `source()` returns it.
pub(super) fn failed_cause_text(e: &MigrationError) -> Option<String> {
    let (MigrationErrorKind::Failed(cause), Some(name)) = (&e.kind, &e.migration) else {
        return None;
    };
    let text = cause.to_string();
    Some(
        match text.strip_prefix(&format!("Failed to run {name} with: ")) {
            Some(rest) => rest.to_owned(),
            None => text,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t1() -> SchemaName {
        SchemaName::new("t1").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn messages_name_the_schema_and_the_migration() {
        let e = MigrationError::new(
            &t1(),
            MigrationErrorKind::Failed(
                "Failed to run 2024-01-01-000002_boom with: division by zero".into(),
            ),
        )
        .in_migration("2024-01-01-000002_boom".into(), "20240101000002".into());
        assert_eq!(
            e.to_string(),
            r#"migration 2024-01-01-000002_boom failed in schema "t1""#
        );
        assert_eq!(
            e.report().to_string(),
            r#"migration 2024-01-01-000002_boom failed in schema "t1": division by zero"#
        );
        // The cause stays the error diesel_migrations gave, for callers that inspect it.
        let cause = e.source().map(ToString::to_string);
        assert_eq!(
            cause.as_deref(),
            Some("Failed to run 2024-01-01-000002_boom with: division by zero")
        );
        let wrapped = crate::Error::from(e);
        assert_eq!(
            wrapped.report().to_string(),
            r#"migration 2024-01-01-000002_boom failed in schema "t1": division by zero"#
        );
        let e = MigrationError::new(&t1(), MigrationErrorKind::SchemaNotFound);
        assert!(e.to_string().starts_with(r#"schema "t1" does not exist"#));
    }
}
