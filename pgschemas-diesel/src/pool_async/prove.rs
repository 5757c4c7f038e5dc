//! The checkout statements of `checkout`, sent on an async connection, and the reading of
//! the server's state when they fail: the same statements and the same judgement as the
//! sync pool's.

use diesel::result::{Error as DieselError, QueryResult};
use diesel_async::TransactionManager;
use diesel_async::{AnsiTransactionManager, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use futures_util::{FutureExt, StreamExt};

use super::manager::AsyncPooledConnection;
use crate::checkout::{self, Leftover, Refusal};
use crate::error::Error;
use crate::path::SearchPath;

/// What a checkout opens on the connection it proves.
#[derive(Clone, Copy)]
pub(super) enum Form<'a> {
    /// The session form: the sentinel (prepared first when the connection has none), then
    /// [`checkout::session_sql`].
    Session(&'a str),
    /// The transaction form: [`checkout::transaction_sql`], opening diesel-async's
    /// transaction.
    Transaction(&'a str),
}

/// Sends `form`'s checkout for `path` on `conn`, in one message (after the sentinel's
/// `PREPARE` on a new connection).
///
/// # Errors
///
/// Why the checkout failed, read from the server ([`Refusal`]).
pub(super) async fn checkout(
    conn: &mut AsyncPooledConnection,
    path: &SearchPath,
    form: Form<'_>,
) -> Result<(), Refusal> {
    match form {
        Form::Session(sql) => {
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
        }
        Form::Transaction(sql) => {
            if let Err(e) = AnsiTransactionManager::begin_transaction_sql(&mut conn.conn, sql).await
            {
                return Err(explain(&mut conn.conn, path, e, Leftover::Transaction).await);
            }
        }
    }
    drain_notifications(&mut conn.conn);
    Ok(())
}

/// Explains a failed statement for `path`: the [`checkout::cleanup_sql`] steps, then the
/// probe, judged as the sync pool judges them.
async fn explain(
    conn: &mut AsyncPgConnection,
    path: &SearchPath,
    failure: DieselError,
    leftover: Leftover,
) -> Refusal {
    for sql in checkout::cleanup_sql(leftover) {
        if conn.batch_execute(&sql).await.is_err() {
            return checkout::judge(path, failure, leftover, None);
        }
    }
    let probe = checkout::probe_query(path, false)
        .get_result(conn)
        .await
        .ok();
    checkout::judge(path, failure, leftover, probe)
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
