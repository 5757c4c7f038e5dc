//! One transaction per provisioning step, opened together with its first statements.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::checkout::set_path_call;
use crate::error::{Error, Result};
use crate::lifecycle::schema_exists;
use crate::migrate::{LockFn, lock_statement};
use crate::name::{SchemaName, quote_literal};
use crate::transaction::{self, Ended, copy_setting_sql};

/// A transaction-local setting holding the caller's path while a nested operation runs.
const SAVED_PATH: &str = "pgschemas.saved_path";

/// A transaction-local setting holding the caller's role while a nested operation runs (a
/// provisioning step acts as the DDL role with tenant roles on).
const SAVED_ROLE: &str = "pgschemas.saved_role";

/// Takes the transaction-scoped exclusive lock on `schema`: the migration lock
/// ([`MIGRATION_LOCK_CLASS`](crate::migrate::MIGRATION_LOCK_CLASS), `hashtext(schema)`), so
/// provisioning, dropping and migrating one schema serialize (and
/// [`migrate_schema`](crate::migrate::migrate_schema) inside the same transaction takes it again
/// without waiting).
pub(crate) fn lock_sql(schema: &SchemaName) -> String {
    lock_statement(schema, LockFn::Transaction)
}

/// Takes the migration lock of `schema` in shared mode (cloning from a reference schema
/// waits for a migration of it to finish, and the other way round).
pub(crate) fn shared_lock_sql(schema: &SchemaName) -> String {
    lock_statement(schema, LockFn::SharedTransaction)
}

/// `CREATE SCHEMA`.
pub(crate) fn create_schema_sql(schema: &SchemaName) -> String {
    format!("CREATE SCHEMA {}", schema.quoted())
}

/// Sets the transaction's `search_path` to exactly `value` (already rendered and quoted).
pub(crate) fn set_local_path_sql(value: &str) -> String {
    format!("SELECT {}", set_path_call(&quote_literal(value), true))
}

/// Runs `f` in a transaction whose first statements are `first`, sent with `BEGIN` in one
/// round trip. Inside an open transaction it uses a savepoint instead, so the caller's
/// transaction decides. Commits when `f` returns `Ok`; rolls back on `Err` or panic.
///
/// Errors of `first` go through `map_first`, once the transaction (or savepoint) is rolled
/// back, so that it can read the catalog on the same connection.
pub(crate) fn atomic<T>(
    conn: &mut PgConnection,
    first: &str,
    map_first: impl FnOnce(&mut PgConnection, DieselError) -> Error,
    f: impl FnOnce(&mut PgConnection) -> Result<T>,
) -> Result<T> {
    if transaction::is_open(conn).map_err(Error::from)? {
        return savepoint(conn, first, map_first, f);
    }
    let begin = if first.is_empty() {
        "BEGIN".to_owned()
    } else {
        format!("BEGIN; {first}")
    };
    transaction::run(conn, &begin, f).map_err(|ended| match ended {
        Ended::BeginFailed(e) => {
            // `BEGIN` ran but a later statement failed: the server-side transaction is
            // aborted and Diesel does not know about it. End it before reporting.
            if !matches!(e, DieselError::AlreadyInTransaction) {
                let _ = conn.batch_execute("ROLLBACK");
            }
            map_first(conn, e)
        }
        // A failed rollback (the backend is gone) changes nothing for the caller: the
        // server never committed. Report the first error.
        Ended::Failed { error, .. } => error,
        Ended::CommitFailed(e) => Error::from(e),
    })
}

/// [`atomic`] inside an open transaction: a savepoint, so that the caller's transaction
/// decides. A savepoint keeps `SET LOCAL` settings when it is released: the caller's path is
/// put back afterwards, and so is the caller's role.
fn savepoint<T>(
    conn: &mut PgConnection,
    first: &str,
    map_first: impl FnOnce(&mut PgConnection, DieselError) -> Error,
    f: impl FnOnce(&mut PgConnection) -> Result<T>,
) -> Result<T> {
    let result = conn.transaction(|conn| {
        let save = format!(
            "{}; {}",
            copy_setting_sql(SAVED_PATH, "search_path"),
            copy_setting_sql(SAVED_ROLE, "role")
        );
        let first = if first.is_empty() {
            save
        } else {
            format!("{save}; {first}")
        };
        conn.batch_execute(&first).map_err(Nested::First)?;
        let value = f(conn).map_err(Nested::Other)?;
        let saved = format!("pg_catalog.current_setting('{SAVED_PATH}')");
        conn.batch_execute(&format!(
            "SELECT {}, pg_catalog.set_config('role', pg_catalog.current_setting('{SAVED_ROLE}'), true)",
            set_path_call(&saved, true)
        ))?;
        Ok(value)
    });
    result.map_err(|e| match e {
        Nested::First(e) => map_first(conn, e),
        Nested::Other(e) => e,
    })
}

/// How a savepoint of [`atomic`] failed: in its first statements, or later.
enum Nested {
    First(DieselError),
    Other(Error),
}

impl From<DieselError> for Nested {
    fn from(e: DieselError) -> Self {
        Self::Other(Error::from(e))
    }
}

/// Maps the errors of `CREATE SCHEMA` (and of the statements sent with it) for `schema`,
/// after the transaction has been rolled back: [`Error::SchemaExists`] when the schema is
/// there, else [`Error::Database`].
///
/// PostgreSQL reports an existing schema as `duplicate_schema` (42P06), which Diesel does
/// not name, and a concurrent creator as a unique violation of `pg_namespace_nspname_index`;
/// the message is translated, so the catalog, read again, decides.
pub(crate) fn map_create_error(
    schema: &SchemaName,
) -> impl FnOnce(&mut PgConnection, DieselError) -> Error + '_ {
    move |conn, e| {
        let exists = match &e {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)
                if info.constraint_name() == Some("pg_namespace_nspname_index") =>
            {
                true
            }
            DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                _,
            ) => false,
            DieselError::DatabaseError(..) => schema_exists(conn, schema).unwrap_or(false),
            _ => false,
        };
        if exists {
            Error::SchemaExists {
                schema: schema.to_string(),
            }
        } else {
            Error::db(schema.as_str(), e)
        }
    }
}

/// Maps the errors of a transaction's first statements for `schema` to
/// [`Error::Database`].
pub(crate) fn map_db_error(
    schema: &SchemaName,
) -> impl FnOnce(&mut PgConnection, DieselError) -> Error + '_ {
    move |_, e| Error::db(schema.as_str(), e)
}

/// Attaches `schema` to a database error that names none.
pub(crate) fn in_schema(schema: &SchemaName) -> impl FnOnce(Error) -> Error + '_ {
    move |e| match e {
        Error::Database {
            schema: None,
            source,
        } => Error::db(schema.as_str(), source),
        other => other,
    }
}
