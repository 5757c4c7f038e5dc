//! Transactions the crate opens itself: with a `BEGIN` message of its own (so that its first
//! statements share the round trip), ended by a commit or a rollback even when the body
//! panics, with Diesel's transaction manager kept in step.
//!
//! Only Diesel and the standard library below: the modules that open transactions (`schema`,
//! `pool`, `provision`, `migrate`) build on this one.

use diesel::PgConnection;
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::result::{Error as DieselError, QueryResult};

/// Whether Diesel has a transaction open on `conn`.
///
/// # Errors
///
/// Diesel's `BrokenTransactionManager` when its record of the transaction is lost.
pub(crate) fn is_open(conn: &mut PgConnection) -> QueryResult<bool> {
    AnsiTransactionManager::transaction_manager_status_mut(conn)
        .transaction_depth()
        .map(|depth| depth.is_some())
}

/// Marks Diesel's transaction manager broken: a pool then destroys the connection instead of
/// handing it out again.
pub(crate) fn mark_broken(conn: &mut PgConnection) {
    AnsiTransactionManager::transaction_manager_status_mut(conn).set_in_error();
}

/// How a transaction of [`run`] or [`finish`] failed to commit.
pub(crate) enum Ended<E> {
    /// The `BEGIN` message failed and the body did not run ([`run`] only). Unless Diesel
    /// refused to begin (`AlreadyInTransaction`: nothing was sent), the message's `BEGIN`
    /// ran: the server's transaction is still open, aborted, and Diesel does not know of it.
    BeginFailed(DieselError),
    /// The body returned `error`; the transaction was rolled back, `rollback` says how that
    /// went.
    Failed {
        /// The body's error.
        error: E,
        /// The rollback's outcome.
        rollback: QueryResult<()>,
    },
    /// The body succeeded and `COMMIT` failed.
    CommitFailed(DieselError),
}

/// Opens Diesel's transaction with `sql`, a message that starts with `BEGIN`, so that the
/// transaction's first statements share its round trip.
///
/// # Errors
///
/// As [`Ended::BeginFailed`].
pub(crate) fn begin(conn: &mut PgConnection, sql: &str) -> QueryResult<()> {
    AnsiTransactionManager::begin_transaction_sql(conn, sql)
}

/// Opens a transaction with `begin` (see [`begin`](fn@begin)), runs `f` in it and ends it as
/// [`finish`] does.
///
/// # Errors
///
/// [`Ended`]: why nothing was committed.
pub(crate) fn run<T, E>(
    conn: &mut PgConnection,
    begin: &str,
    f: impl FnOnce(&mut PgConnection) -> Result<T, E>,
) -> Result<T, Ended<E>> {
    self::begin(conn, begin).map_err(Ended::BeginFailed)?;
    finish(conn, f)
}

/// Runs `f` in the transaction Diesel has open on `conn`, then commits when it returns `Ok`
/// and rolls back when it returns `Err`, as `TransactionManager::transaction` does once the
/// transaction is open.
///
/// # Errors
///
/// [`Ended::Failed`] or [`Ended::CommitFailed`].
///
/// # Panics
///
/// When `f` panics: the transaction is rolled back (whatever the outcome), then the panic
/// resumes.
pub(crate) fn finish<T, E>(
    conn: &mut PgConnection,
    f: impl FnOnce(&mut PgConnection) -> Result<T, E>,
) -> Result<T, Ended<E>> {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut *conn)));
    match result {
        Ok(Ok(value)) => {
            AnsiTransactionManager::commit_transaction(conn).map_err(Ended::CommitFailed)?;
            Ok(value)
        }
        Ok(Err(error)) => Err(Ended::Failed {
            error,
            rollback: AnsiTransactionManager::rollback_transaction(conn),
        }),
        Err(panic) => {
            let _ = AnsiTransactionManager::rollback_transaction(conn);
            std::panic::resume_unwind(panic)
        }
    }
}

/// `SELECT` setting the transaction-local setting `to` to the current value of `from` (both
/// names written by the crate, never by a caller).
pub(crate) fn copy_setting_sql(to: &str, from: &str) -> String {
    format!("SELECT pg_catalog.set_config('{to}', pg_catalog.current_setting('{from}'), true)")
}
