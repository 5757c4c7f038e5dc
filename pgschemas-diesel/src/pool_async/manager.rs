//! The deadpool manager of [`AsyncTenantPool`](super::AsyncTenantPool): makes diesel-async
//! connections and keeps, beside each, what the pool records of it.

use std::fmt;

use deadpool::managed::{Manager, Metrics, RecycleError, RecycleResult};
use diesel::ConnectionError;
use diesel_async::pooled_connection::PoolableConnection;
use diesel_async::{AsyncConnection, AsyncPgConnection};

/// A deadpool [`Manager`] of [`AsyncPgConnection`]s for
/// [`AsyncTenantPool`](super::AsyncTenantPool); build a pool of your own with it and hand it
/// to [`from_deadpool`](super::AsyncTenantPool::from_deadpool).
///
/// It sends nothing when a connection is reused (deadpool's recycle): every checkout proves
/// the connection with the statement that sets the path. A connection whose transaction
/// manager is broken, or whose server connection is closed (a killed backend, a restarted
/// server), is never reused: deadpool makes a new one instead of the checkout spending its
/// attempts on dead ones.
pub struct AsyncManager {
    url: String,
}

impl AsyncManager {
    /// A manager of connections to `database_url`.
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            url: database_url.into(),
        }
    }
}

impl fmt::Debug for AsyncManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncManager").finish_non_exhaustive()
    }
}

/// A connection of the async pool, with the one thing the pool records of it: whether the
/// session form's sentinel statement was prepared on it. The record only saves a round
/// trip; the server proves it at every checkout (a missing sentinel fails the checkout, and
/// the connection is discarded).
pub struct AsyncPooledConnection {
    pub(super) conn: AsyncPgConnection,
    pub(super) prepared: bool,
}

impl fmt::Debug for AsyncPooledConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncPooledConnection")
            .field("prepared", &self.prepared)
            .finish_non_exhaustive()
    }
}

impl Manager for AsyncManager {
    type Type = AsyncPooledConnection;
    type Error = ConnectionError;

    async fn create(&self) -> Result<AsyncPooledConnection, ConnectionError> {
        Ok(AsyncPooledConnection {
            conn: AsyncPgConnection::establish(&self.url).await?,
            prepared: false,
        })
    }

    async fn recycle(
        &self,
        obj: &mut AsyncPooledConnection,
        _: &Metrics,
    ) -> RecycleResult<ConnectionError> {
        if std::thread::panicking() || obj.conn.is_broken() {
            return Err(RecycleError::message("broken connection"));
        }
        Ok(())
    }
}
