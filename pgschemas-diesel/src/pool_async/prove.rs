//! The checkout statements of `checkout`, sent on an async connection, and the reading of
//! the server's state when they fail: the same statements and the same judgement as the
//! sync pool's.

use diesel::connection::TransactionDepthChange;
use diesel::result::{Error as DieselError, QueryResult};
use diesel_async::TransactionManager;
use diesel_async::{AnsiTransactionManager, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use futures_util::{FutureExt, StreamExt};

use super::manager::AsyncPooledConnection;
use crate::checkout::{self, Leftover, Refusal};
use crate::error::{Error, SessionProblem};
use crate::path::SearchPath;

/// Sends the session form's checkout for `path` (`sql`, [`checkout::session_sql`]) on
/// `conn`, in one message, after the sentinel's `PREPARE` on a new connection.
///
/// # Errors
///
/// Why the checkout failed, read from the server ([`Refusal`]).
pub(super) async fn session(
    conn: &mut AsyncPooledConnection,
    path: &SearchPath,
    sql: &str,
) -> Result<(), Refusal> {
    if !conn.prepared {
        conn.conn
            .batch_execute(&checkout::prepare_sql())
            .await
            .map_err(|e| Refusal::Connection(Error::db(path.schema().as_str(), e)))?;
        conn.prepared = true;
    }
    if let Err(e) = conn.conn.batch_execute(sql).await {
        return Err(explain(&mut conn.conn, path, e, Leftover::Session).await);
    }
    drain_notifications(&mut conn.conn);
    Ok(())
}

/// Queues the transaction form's checkout (`sql`, [`checkout::transaction_sql`]) on `conn`
/// without waiting for its answer, and records the transaction it opens in diesel-async's
/// transaction manager: the caller's first statement then travels right behind it.
///
/// The message is handed to the connection's driver when its future is first polled;
/// dropping the future then leaves the request queued, and the driver reads and drops its
/// answer. Whether the checkout passed is known from what follows it: when it failed, the
/// transaction is aborted, every later statement fails until the `ROLLBACK`, and
/// [`commit`] fails too.
///
/// # Errors
///
/// The connection's error when it is closed (the request could not be queued), or
/// diesel-async's when its record of transactions is lost or one is already open.
pub(super) fn queue_transaction(conn: &mut AsyncPgConnection, sql: &str) -> QueryResult<()> {
    if transaction_open(conn)? {
        return Err(DieselError::AlreadyInTransaction);
    }
    let mut shared: &AsyncPgConnection = conn;
    if let Some(Err(e)) = SimpleAsyncConnection::batch_execute(&mut shared, sql).now_or_never() {
        return Err(e);
    }
    drain_notifications(conn);
    AnsiTransactionManager::transaction_manager_status_mut(conn)
        .transaction_state()?
        .change_transaction_depth(TransactionDepthChange::IncreaseDepth)
}

/// Commits the transaction [`queue_transaction`] opened, with [`checkout::commit_sql`]: an
/// aborted transaction (a failed checkout, a statement whose error the caller dropped), or
/// one the caller ended itself, fails here, where `COMMIT` alone would report success.
///
/// # Errors
///
/// The server's error; diesel-async's `BrokenTransactionManager` when a transaction of the
/// caller's own (a savepoint) is still open.
pub(super) async fn commit(conn: &mut AsyncPgConnection, verify_prepared: bool) -> QueryResult<()> {
    let depth = AnsiTransactionManager::transaction_manager_status_mut(conn).transaction_depth()?;
    if depth.map(|d| d.get()) != Some(1) {
        return Err(DieselError::BrokenTransactionManager);
    }
    conn.batch_execute(checkout::commit_sql(verify_prepared))
        .await?;
    AnsiTransactionManager::transaction_manager_status_mut(conn)
        .transaction_state()?
        .change_transaction_depth(TransactionDepthChange::DecreaseDepth)
}

/// Ends a transaction form's transaction that did not commit, and reads why when it was
/// aborted or its commit failed (`probe`): returns the rollback's outcome and the schema's
/// refusal, when the server reports one (a checkout that failed on a missing or unusable
/// schema).
///
/// An empty `SELECT` travels with the `ROLLBACK`: when it passes, the transaction was not
/// aborted, so the checkout had passed, and one round trip ends it. When it fails, the
/// `ROLLBACK` is sent on its own, then the session is reset and the schema probed as after a
/// failed session checkout. Nothing is pipelined past the transaction's end: behind a pooler
/// in transaction mode, what follows the end may reach another server connection.
///
/// With `verify_prepared`
/// ([`Config::verify_prepared_statements`](crate::Config::verify_prepared_statements)), a
/// transaction that did not commit may have failed its checkout's proof on a statement
/// prepared with SQL before it: the session's statements are read
/// ([`checkout::SQL_PREPARED_HELD`]); one prepared before the checkout is the refusal, and the
/// connection is not to serve again ([`RolledBack::discard`]), nor is it when that read fails.
/// One the body prepared itself leaves the body's own error as the answer; the connection is
/// closed too.
pub(super) async fn roll_back(
    conn: &mut AsyncPgConnection,
    path: &SearchPath,
    probe: bool,
    verify_prepared: bool,
) -> RolledBack {
    let failed = |e| RolledBack {
        rollback: Err(e),
        refusal: None,
        discard: None,
    };
    let aborted = match conn.batch_execute("SELECT; ROLLBACK").await {
        Ok(()) => false,
        Err(_) => match conn.batch_execute("ROLLBACK").await {
            Ok(()) => true,
            Err(e) => return failed(e),
        },
    };
    let ended = AnsiTransactionManager::transaction_manager_status_mut(conn)
        .transaction_state()
        .and_then(|state| state.change_transaction_depth(TransactionDepthChange::DecreaseDepth));
    if let Err(e) = ended {
        return failed(e);
    }
    let checked = aborted || probe;
    // Read before the schema's probe, whose reset clears the checkout's stamp; after any
    // failure, even one that looks like the body's own (a body may have ended the refused
    // transaction itself).
    let held = if verify_prepared {
        Some(
            diesel::sql_query(checkout::SQL_PREPARED_HELD)
                .get_result::<Held>(conn)
                .await,
        )
    } else {
        None
    };
    let refusal = if checked {
        schema_refusal(conn, path).await
    } else {
        None
    };
    let (refusal, discard) = match held {
        None | Some(Ok(Held { held: false, .. })) => (refusal, None),
        // The body's own: its answer stands, and the connection goes now rather than at the
        // next user's checkout.
        Some(Ok(Held { before: false, .. })) => (refusal, Some("sql_prepared_statement")),
        Some(Ok(Held { before: true, .. })) => (
            refusal.or_else(|| {
                Some(Error::SessionState {
                    schema: path.schema().to_string(),
                    reason: SessionProblem::StatementPreparedWithSql,
                })
            }),
            Some("sql_prepared_statement"),
        ),
        // Whether the proof failed on one is unknown: the connection goes (fail closed), the
        // answer stays the body's or the commit's.
        Some(Err(_)) => (refusal, Some("checkout_failed")),
    };
    RolledBack {
        rollback: Ok(()),
        refusal,
        discard,
    }
}

/// What [`roll_back`] found.
pub(super) struct RolledBack {
    /// The rollback's outcome.
    pub(super) rollback: QueryResult<()>,
    /// The checkout's refusal, when the server reports one.
    pub(super) refusal: Option<Error>,
    /// Why the connection is to be closed rather than go back to the pool, when it is: it
    /// holds a statement prepared with SQL that the checkout refused, or whether it does could
    /// not be read.
    pub(super) discard: Option<&'static str>,
}

/// The answer of [`checkout::SQL_PREPARED_HELD`].
#[derive(diesel::QueryableByName)]
struct Held {
    /// Any statement prepared with SQL.
    #[diesel(sql_type = diesel::sql_types::Bool)]
    held: bool,
    /// One prepared before the checkout.
    #[diesel(sql_type = diesel::sql_types::Bool)]
    before: bool,
}

/// The refusal of `path`'s schema the server reports, after the session's reset (outside any
/// transaction); `None` when it is fine or the server could not tell.
async fn schema_refusal(conn: &mut AsyncPgConnection, path: &SearchPath) -> Option<Error> {
    probe_after_cleanup(conn, path, Leftover::Session)
        .await?
        .refusal(path)
}

/// Explains a failed statement for `path`: the [`checkout::cleanup_sql`] steps, then the
/// probe, judged as the sync pool judges them.
async fn explain(
    conn: &mut AsyncPgConnection,
    path: &SearchPath,
    failure: DieselError,
    leftover: Leftover,
) -> Refusal {
    let probe = probe_after_cleanup(conn, path, leftover).await;
    checkout::judge(path, failure, leftover, probe)
}

/// Ends what a failed statement left (`leftover`, [`checkout::cleanup_sql`]), then asks the
/// server about `path`'s schema; `None` when a step or the probe failed.
async fn probe_after_cleanup(
    conn: &mut AsyncPgConnection,
    path: &SearchPath,
    leftover: Leftover,
) -> Option<checkout::Probe> {
    for sql in checkout::cleanup_sql(leftover) {
        conn.batch_execute(&sql).await.ok()?;
    }
    checkout::probe_query(path, false)
        .get_result(conn)
        .await
        .ok()
}

/// Drops the notifications the connection holds for an earlier user's `LISTEN` (the
/// checkout's `UNLISTEN *` stops new ones): reads only what has arrived, no round trip.
fn drain_notifications(conn: &mut AsyncPgConnection) {
    let mut notifications = std::pin::pin!(conn.notifications_stream());
    while let Some(Some(Ok(_))) = notifications.next().now_or_never() {}
}

/// Whether diesel-async has a transaction open on `conn`; an error when its record is lost
/// or a transaction statement was cancelled half-way.
pub(super) fn transaction_open(conn: &mut AsyncPgConnection) -> QueryResult<bool> {
    if AnsiTransactionManager::is_broken_transaction_manager(conn) {
        return Err(DieselError::BrokenTransactionManager);
    }
    AnsiTransactionManager::transaction_manager_status_mut(conn)
        .transaction_depth()
        .map(|depth| depth.is_some())
}
