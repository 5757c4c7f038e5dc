//! Migrating one schema: the path, the lock, the ledger, one transaction per migration.

use std::collections::BTreeSet;

use diesel::connection::SimpleConnection;
use diesel::migration::{Migration, MigrationSource};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};

use super::ledger::ledger_unchanged_sql;
use super::ledger::{ledger_table, read_ledger};
use super::list::{read_migrations, versions};
use super::lock::{LedgerRead, LockFn, SchemaLock, lock_statement};
use crate::checkout::set_path_call;
use crate::config::Config;
use crate::error::{MigrationError, MigrationErrorKind};
use crate::name::SchemaName;
use crate::transaction;
use diesel::connection::{AnsiTransactionManager, TransactionManager};

/// Applies the pending migrations of `migrations` to `schema` and returns the versions it
/// applied, in order (empty when the schema was up to date).
///
/// - The search path is `<schema>, <shared>, <extras>` while the migrations run, then the
///   connection's previous path is put back. Inside a Diesel transaction the switch is
///   transaction-local (`SET LOCAL`): the transaction gets its own path back, and the
///   session's path is untouched, so it is the same after the transaction ends as before
///   it began. A schema that does not exist is an error
///   ([`MigrationErrorKind::SchemaNotFound`]) and nothing is written anywhere; a schema
///   PostgreSQL would not create objects in (`current_schema()` is another one, as when the
///   role lacks `USAGE` on it) is refused before anything runs.
/// - The ledger, `__diesel_schema_migrations`, lives in `schema` and is always addressed
///   schema-qualified, so it cannot land in the shared schema. It must be a table there:
///   a view, a foreign table or any other relation of that name, a ledger without a text
///   `version` column, or one the role may not read, is refused
///   ([`MigrationErrorKind::Ledger`]) before anything is applied, as `list`, `doctor` and
///   plans report it.
/// - Two processes never migrate one schema at once: the run holds an advisory lock keyed
///   by ([`MIGRATION_LOCK_CLASS`](crate::migrate::MIGRATION_LOCK_CLASS), `hashtext(schema)`). Outside a transaction it is the
///   session form, released when the run ends (even on error); inside a Diesel transaction
///   (as when provisioning a tenant atomically) it is `pg_advisory_xact_lock`, released with
///   that transaction.
/// - Each migration runs in its own transaction (a savepoint inside an outer transaction)
///   together with its ledger row, unless its metadata says `run_in_transaction = false`. A
///   failure rolls that migration back and leaves the schema at the last one that
///   succeeded.
///
/// Works with any [`MigrationSource`]: `diesel_migrations::EmbeddedMigrations` (from
/// `embed_migrations!`), `FileBasedMigrations`, your own.
///
/// Round trips: read and set the path (2), lock and check (1), read the ledger (1), create
/// it (1, first run only), four per migration, unlock and restore (2).
///
/// To migrate many schemas, use the [`Migrator`](crate::migrate::Migrator): it runs this on N
/// connections in parallel, in a stable order, and reports per schema.
///
/// # Errors
///
/// A [`MigrationError`] naming the schema (and the migration, when one failed):
/// [`SchemaNotFound`](MigrationErrorKind::SchemaNotFound),
/// [`NotCreationSchema`](MigrationErrorKind::NotCreationSchema),
/// [`Ledger`](MigrationErrorKind::Ledger), [`Failed`](MigrationErrorKind::Failed),
/// [`PathChanged`](MigrationErrorKind::PathChanged), [`Source`](MigrationErrorKind::Source),
/// [`Database`](MigrationErrorKind::Database). If
/// the previous path cannot be restored, the connection is marked broken (a pool discards
/// it) and the error says so.
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database().schemas(&["t1"]); let database_url = db.url();
/// use diesel::{Connection, PgConnection};
/// use diesel_migrations::{EmbeddedMigrations, embed_migrations};
/// use pgschemas_diesel::{Config, SchemaName};
/// use pgschemas_diesel::migrate::migrate_schema;
///
/// const TENANT: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
///
/// let mut conn = PgConnection::establish(database_url)?;
/// let t1 = SchemaName::new("t1")?;
/// let applied = migrate_schema(&mut conn, &Config::default(), &t1, &TENANT)?;
/// assert_eq!(applied[0], "20240101000001");
/// assert!(migrate_schema(&mut conn, &Config::default(), &t1, &TENANT)?.is_empty()); // up to date
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn migrate_schema<S>(
    conn: &mut PgConnection,
    config: &Config,
    schema: &SchemaName,
    migrations: &S,
) -> Result<Vec<String>, MigrationError>
where
    S: MigrationSource<Pg> + ?Sized,
{
    let mut list = read_migrations(schema, migrations)?;
    if config.citus() {
        list = crate::citus::statement_wise(list);
    }
    let path = config
        .search_path(schema)
        .map_err(|e| MigrationError::from_crate(schema, e))?;
    let in_transaction = transaction::is_open(conn).map_err(|e| MigrationError::db(schema, e))?;
    // Inside a transaction this is the transaction's value (perhaps a `SET LOCAL` of the
    // caller's); the session's own value is not touched below, so it is what comes back
    // when the caller's transaction ends.
    let previous: String = diesel::select(diesel::dsl::sql::<Text>(
        "pg_catalog.current_setting('search_path')",
    ))
    .get_result(conn)
    .map_err(|e| MigrationError::db(schema, e))?;
    if !switch_path(conn, path.as_sql_value(), Some(schema), in_transaction)
        .map_err(|e| MigrationError::db(schema, e))?
    {
        return Err(MigrationError::new(
            schema,
            MigrationErrorKind::SchemaNotFound,
        ));
    }

    let result = apply(conn, schema, &list, None);

    let Err(restore) = switch_path(conn, &previous, None, in_transaction) else {
        return result;
    };
    if !in_transaction {
        // The tenant path would outlive the call: never let this connection be reused as if
        // it had its old path. (Inside a transaction, the path is transaction-local.)
        transaction::mark_broken(conn);
    }
    Err(result
        .err()
        .unwrap_or_else(|| MigrationError::db(schema, restore)))
}

/// Sets the `search_path` to `value`: for the transaction only (`SET LOCAL`) when `local`,
/// so that the session's value is what the transaction ends with, else for the session.
/// With `schema`, only when that schema exists; returns whether the path was set.
fn switch_path(
    conn: &mut PgConnection,
    value: &str,
    schema: Option<&SchemaName>,
    local: bool,
) -> QueryResult<bool> {
    let row: Switched = diesel::sql_query(format!(
        "SELECT (SELECT {} WHERE $2::text IS NULL \
         OR pg_catalog.to_regnamespace($2) IS NOT NULL) AS set",
        set_path_call("$1", local)
    ))
    .bind::<Text, _>(value)
    .bind::<Nullable<Text>, _>(schema.map(SchemaName::quoted))
    .get_result(conn)?;
    Ok(row.set.is_some())
}

/// What [`switch_path`] reads back: the path now set, if it was.
#[derive(QueryableByName)]
struct Switched {
    #[diesel(sql_type = Nullable<Text>)]
    set: Option<String>,
}

/// The migrations of `migrations` not yet applied to `schema`, by version, in order; nothing
/// is applied, nothing is created (a schema without a ledger has them all pending), and
/// the connection's path is not touched. One statement reads the schema and its ledger.
///
/// # Errors
///
/// [`SchemaNotFound`](MigrationErrorKind::SchemaNotFound),
/// [`Ledger`](MigrationErrorKind::Ledger) (a ledger [`migrate_schema`] would refuse too),
/// [`Source`](MigrationErrorKind::Source), [`Database`](MigrationErrorKind::Database).
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database().schemas(&["t1"]); let database_url = db.url();
/// use diesel::{Connection, PgConnection};
/// use pgschemas_diesel::SchemaName;
/// use pgschemas_diesel::migrate::pending_migrations;
///
/// const TENANT: diesel_migrations::EmbeddedMigrations =
///     diesel_migrations::embed_migrations!("../examples/migrations/tenant");
///
/// let mut conn = PgConnection::establish(database_url)?;
/// let mut lines = Vec::new();
/// for version in pending_migrations(&mut conn, &SchemaName::new("t1")?, &TENANT)? {
///     lines.push(format!("t1 would apply {version}"));
/// }
/// assert_eq!(lines.len(), 5);
/// assert_eq!(lines[0], "t1 would apply 20240101000001");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn pending_migrations<S: MigrationSource<Pg> + ?Sized>(
    conn: &mut PgConnection,
    schema: &SchemaName,
    migrations: &S,
) -> Result<Vec<String>, MigrationError> {
    pending_in(conn, schema, &read_migrations(schema, migrations)?)
}

/// [`pending_migrations`] with the migrations loaded already.
pub(crate) fn pending_in(
    conn: &mut PgConnection,
    schema: &SchemaName,
    list: &[Box<dyn Migration<Pg>>],
) -> Result<Vec<String>, MigrationError> {
    let state = read_ledger(conn, schema)?
        .ok_or_else(|| MigrationError::new(schema, MigrationErrorKind::SchemaNotFound))?;
    let applied = state.applied(schema)?.unwrap_or_default();
    let mut pending = versions(list);
    pending.retain(|v| !applied.contains(v));
    Ok(pending)
}

/// Runs the pending migrations; the path must already be `schema`'s. `known` is what a
/// batched read found in the ledger just before, when it found a readable table: the
/// versions it holds.
pub(crate) fn apply(
    conn: &mut PgConnection,
    schema: &SchemaName,
    list: &[Box<dyn Migration<Pg>>],
    known: Option<&BTreeSet<String>>,
) -> Result<Vec<String>, MigrationError> {
    let in_transaction = transaction::is_open(conn).map_err(|e| MigrationError::db(schema, e))?;
    let mut applied_now = Vec::new();
    if let Some(applied) = known
        && !in_transaction
    {
        match first_in_one_transaction(conn, schema, list, applied)? {
            First::Done(applied) => return Ok(applied),
            First::More(applied) => applied_now = applied,
            First::Other => {}
        }
    }
    let read = if known.is_some() {
        LedgerRead::KnownTable
    } else {
        LedgerRead::Unknown
    };
    let mut lock = SchemaLock::take(conn, schema, in_transaction, read)?;

    for migration in list {
        let version = migration.name().version().to_string();
        if lock.applied.contains(&version) {
            continue;
        }
        run_one(lock.conn(), schema, migration.as_ref()).map_err(|kind| {
            MigrationError::new(schema, kind)
                .in_migration(migration.name().to_string(), version.clone())
        })?;
        applied_now.push(version);
    }
    lock.release()?;
    Ok(applied_now)
}

/// What [`first_in_one_transaction`] did.
enum First {
    /// Everything pending is applied: these versions.
    Done(Vec<String>),
    /// The first pending migration is applied (this version), others remain.
    More(Vec<String>),
    /// Nothing: the first pending migration runs outside a transaction, or the ledger is
    /// not what the batched read found (the caller takes the general path, which reads it
    /// again under the lock and says what is wrong).
    Other,
}

/// The first pending migration of `schema`, whose ledger a batched read has just found a
/// readable table holding `applied`, in one transaction with its lock and its checks: one
/// message sends `BEGIN`, takes the transaction form of the schema's lock and then, in a
/// statement of its own (whose snapshot sees what committed before the lock was granted),
/// checks that the ledger is still exactly what the batched read found and that the path is
/// the schema's ([`ledger_unchanged_sql`]); then the migration, its ledger row, `COMMIT`.
/// Five round trips with the checkout for one pending migration, and no unlock (the lock
/// ends with the transaction). When the check fails, the transaction is rolled back and
/// nothing was done.
fn first_in_one_transaction(
    conn: &mut PgConnection,
    schema: &SchemaName,
    list: &[Box<dyn Migration<Pg>>],
    applied: &BTreeSet<String>,
) -> Result<First, MigrationError> {
    let mut pending = list
        .iter()
        .filter(|m| !applied.contains(&m.name().version().to_string()));
    let Some(first) = pending.next() else {
        return Ok(First::Other);
    };
    if !first.metadata().run_in_transaction() {
        return Ok(First::Other);
    }
    let begin = format!(
        "BEGIN; {}; {}",
        lock_statement(schema, LockFn::Transaction),
        ledger_unchanged_sql(schema, applied)
    );
    if transaction::begin(conn, &begin).is_err() {
        // The message's `BEGIN` ran and its transaction is aborted (Diesel does not count
        // it): end it, and let the general path read the ledger again.
        conn.batch_execute("ROLLBACK")
            .map_err(|e| MigrationError::db(schema, e))?;
        return Ok(First::Other);
    }
    let version = first.name().version().to_string();
    let result = record(conn, schema, first.as_ref(), &version).map_err(|e| {
        MigrationError::new(schema, step_kind(e))
            .in_migration(first.name().to_string(), version.clone())
    });
    let end = match &result {
        Ok(()) => AnsiTransactionManager::commit_transaction(conn),
        Err(_) => AnsiTransactionManager::rollback_transaction(conn),
    };
    match (result, end) {
        (Ok(()), Ok(())) if pending.next().is_none() => Ok(First::Done(vec![version])),
        (Ok(()), Ok(())) => Ok(First::More(vec![version])),
        // A deferred constraint, say: the migration's own failure.
        (Ok(()), Err(e)) => Err(MigrationError::new(schema, MigrationErrorKind::Database(e))
            .in_migration(first.name().to_string(), version)),
        (Err(e), _) => Err(e),
    }
}

/// Runs `migration` and writes its ledger row, on `conn` as it is (in a transaction or not).
fn record(
    conn: &mut PgConnection,
    schema: &SchemaName,
    migration: &dyn Migration<Pg>,
    version: &str,
) -> Result<(), Step> {
    migration.run(conn).map_err(Step::Failed)?;
    // Schema-qualified, and only while the path is still the schema's: a migration that
    // ran `SET search_path` is caught here and rolled back.
    let rows = diesel::sql_query(format!(
        "INSERT INTO {} (version) SELECT $1 \
         WHERE pg_catalog.current_schema() OPERATOR(pg_catalog.=) $2",
        ledger_table(schema)
    ))
    .bind::<Text, _>(version)
    .bind::<Text, _>(schema.as_str())
    .execute(conn)?;
    if rows == 1 {
        Ok(())
    } else {
        Err(Step::PathChanged)
    }
}

/// What a failed [`Step`] says about the migration.
fn step_kind(e: Step) -> MigrationErrorKind {
    match e {
        Step::Failed(e) => MigrationErrorKind::Failed(e),
        Step::PathChanged => MigrationErrorKind::PathChanged,
        Step::Db(e) => MigrationErrorKind::Database(e),
    }
}

/// One migration and its ledger row, in a transaction unless the migration opts out.
fn run_one(
    conn: &mut PgConnection,
    schema: &SchemaName,
    migration: &dyn Migration<Pg>,
) -> Result<(), MigrationErrorKind> {
    let version = migration.name().version().to_string();
    let result = if migration.metadata().run_in_transaction() {
        conn.transaction(|conn| record(conn, schema, migration, &version))
    } else {
        record(conn, schema, migration, &version)
    };
    result.map_err(step_kind)
}

/// How one migration step failed; `From<diesel::result::Error>` for `Connection::transaction`.
enum Step {
    Failed(Box<dyn std::error::Error + Send + Sync>),
    PathChanged,
    Db(diesel::result::Error),
}

impl From<diesel::result::Error> for Step {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(e)
    }
}
