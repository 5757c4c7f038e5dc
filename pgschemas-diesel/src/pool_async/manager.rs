//! The deadpool manager of [`AsyncTenantPool`](super::AsyncTenantPool): makes diesel-async
//! connections and keeps, beside each, what the pool records of it.

use std::fmt;
use std::pin::pin;

use deadpool::managed::{Manager, Metrics, RecycleError, RecycleResult};
use diesel::ConnectionError;
use diesel_async::RunQueryDsl;
use diesel_async::pooled_connection::PoolableConnection;
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use futures_util::future::{self, Either};
use tokio_postgres::NoTls;

use crate::checkout::{Login, LoginRow};
use crate::path::SearchPath;
use crate::take::Served;

/// The deadpool [`Manager`] (and, with the feature `bb8`, the bb8 `ManageConnection`) of
/// [`AsyncPgConnection`]s for [`AsyncTenantPool`](super::AsyncTenantPool); build a pool of
/// your own with it and hand it to [`from_deadpool`](super::AsyncTenantPool::from_deadpool)
/// (or `from_bb8`).
///
/// It sends nothing when a connection is reused (deadpool's recycle): every checkout proves
/// the connection with the statement that sets the path. A connection whose transaction
/// manager is broken, whose server connection is closed (a killed backend, a restarted
/// server), or that has served its
/// [`max_tenants_per_connection`](crate::ConfigBuilder::max_tenants_per_connection), is never
/// reused: deadpool makes a new one instead of the checkout spending its attempts on dead
/// ones.
///
/// A new connection is made as `AsyncPgConnection::establish` makes it, except that the
/// settings diesel-async then makes (`SET TIME ZONE`, `SET CLIENT_ENCODING`, prepared
/// statements) are sent inside one transaction: behind PgBouncer in transaction pooling mode
/// (before 1.21) a prepared statement outside a transaction may be parsed on one server
/// connection and run on another, which fails the connection.
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

/// A connection of the async pool, with what the pool records of it: the login it was made
/// as, whether the session form's sentinel statement was prepared on it, and the tenants it
/// served. The sentinel's record only saves a round trip; the server proves it at every
/// checkout (a missing sentinel fails the checkout, and the connection is discarded).
pub struct AsyncPooledConnection {
    pub(super) conn: AsyncPgConnection,
    /// The login it was made as, which every checkout proves.
    pub(super) login: Login,
    pub(super) prepared: bool,
    /// Set once the login passed the per-tenant roles checks.
    pub(super) roles_checked: bool,
    /// Set when the connection must not be reused: bb8 asks when it takes it back.
    pub(super) discard: bool,
    /// The tenants it served, for
    /// [`Config::max_tenants_per_connection`](crate::Config::max_tenants_per_connection): a
    /// spent connection is never reused.
    pub(super) served: Served,
    /// The schema of its previous checkout (feature `metrics`).
    #[cfg(feature = "metrics")]
    pub(super) last_schema: Option<crate::name::SchemaName>,
}

impl AsyncPooledConnection {
    /// Whether its previous checkout was for another schema than `path`'s, remembering
    /// `path`'s (feature `metrics`; always `false` without it).
    pub(super) fn switched_to(&mut self, path: &SearchPath) -> bool {
        #[cfg(feature = "metrics")]
        {
            let switched = self
                .last_schema
                .as_ref()
                .is_some_and(|s| s != path.schema());
            self.last_schema = Some(path.schema().clone());
            switched
        }
        #[cfg(not(feature = "metrics"))]
        {
            let _ = path;
            false
        }
    }
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
        let (conn, login) = establish(&self.url).await?;
        Ok(AsyncPooledConnection {
            conn,
            login,
            prepared: false,
            roles_checked: false,
            discard: false,
            served: Served::default(),
            #[cfg(feature = "metrics")]
            last_schema: None,
        })
    }

    async fn recycle(
        &self,
        obj: &mut AsyncPooledConnection,
        _: &Metrics,
    ) -> RecycleResult<ConnectionError> {
        if not_to_be_taken_back(obj) {
            return Err(RecycleError::message("broken connection"));
        }
        Ok(())
    }
}

/// The same manager for bb8 (feature `bb8`): connections are made as for deadpool; bb8's test
/// on checkout sends nothing (the checkout proves the connection) and refuses a connection
/// whose server connection is closed; one the pool discarded, or whose transaction manager is
/// broken, is never taken back.
#[cfg(feature = "bb8")]
impl bb8::ManageConnection for AsyncManager {
    type Connection = AsyncPooledConnection;
    type Error = ConnectionError;

    async fn connect(&self) -> Result<AsyncPooledConnection, ConnectionError> {
        Manager::create(self).await
    }

    async fn is_valid(&self, conn: &mut AsyncPooledConnection) -> Result<(), ConnectionError> {
        if conn.conn.is_broken() {
            return Err(ConnectionError::BadConnection(
                "broken connection".to_owned(),
            ));
        }
        Ok(())
    }

    fn has_broken(&self, conn: &mut AsyncPooledConnection) -> bool {
        not_to_be_taken_back(conn)
    }
}

/// Whether a connection coming back must be closed: discarded (and reported) already, spent,
/// or, reported here, returned while its thread unwinds a panic or with its server
/// connection closed (a killed backend).
fn not_to_be_taken_back(conn: &mut AsyncPooledConnection) -> bool {
    if conn.discard || conn.served.spent() {
        return true;
    }
    let reason = if std::thread::panicking() {
        "panic"
    } else if conn.conn.is_broken() {
        "broken"
    } else {
        return false;
    };
    crate::observe::discarded(None, reason, None);
    true
}

/// Connects to `url` and sets the connection up as `AsyncPgConnection::establish` does, the
/// setup inside `BEGIN` ... `COMMIT` (see [`AsyncManager`]).
async fn establish(url: &str) -> Result<(AsyncPgConnection, Login), ConnectionError> {
    let bad = |e: tokio_postgres::Error| ConnectionError::BadConnection(e.to_string());
    let (client, mut connection) = tokio_postgres::connect(url, NoTls).await.map_err(bad)?;
    // The connection is driven here until `BEGIN` is answered, then by diesel-async.
    match future::select(pin!(client.batch_execute("BEGIN")), &mut connection).await {
        Either::Left((begun, _)) => begun.map_err(bad)?,
        Either::Right((Err(e), _)) => return Err(bad(e)),
        Either::Right((Ok(()), _)) => {
            return Err(ConnectionError::BadConnection(
                "the server closed the connection during setup".to_owned(),
            ));
        }
    }
    let mut conn = AsyncPgConnection::try_from_client_and_connection(client, connection).await?;
    let login = diesel::sql_query(Login::QUERY)
        .get_result::<LoginRow>(&mut conn)
        .await
        .map_err(ConnectionError::CouldntSetupConfiguration)?;
    conn.batch_execute("COMMIT")
        .await
        .map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok((conn, Login::from_row(login)))
}
