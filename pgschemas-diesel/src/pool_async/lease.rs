//! What the async pool hands out: a [`Lease`] (a connection that goes back to the pool only
//! when the operation holding it says so, and is discarded otherwise, cancellation
//! included), and the session form's [`AsyncTenantScope`].

use std::fmt;
use std::ops::{Deref, DerefMut};

use diesel_async::AsyncPgConnection;

use super::backend::Held;
use super::manager::AsyncPooledConnection;
use super::prove;
use crate::name::SchemaName;
use crate::path::SearchPath;
use crate::take;

/// A connection taken from the pool for one operation. Unless [`release`](Self::release)d,
/// it is taken out of the pool for good ([`Held::discard`]) and closed when it ends: a future dropped at any await point while it holds the connection (the checkout,
/// `BEGIN`, the caller's body, `COMMIT`) thus never returns a connection in an unknown
/// state. The server then ends whatever the connection had open.
pub(super) struct Lease {
    /// `Some` until the lease ends (its `Drop` or [`release`](Self::release)).
    object: Option<Held>,
    /// Why its discard was reported already, if it was ([`crate::observe`]).
    reported: bool,
}

impl Lease {
    /// The lease of `object`, discarded unless released.
    pub(super) fn new(object: Held) -> Self {
        Self {
            object: Some(object),
            reported: false,
        }
    }

    /// Discards the connection, whose failure the checkout reported already.
    pub(super) fn discard_reported(mut self) {
        self.reported = true;
    }

    fn object(&self) -> &AsyncPooledConnection {
        match &self.object {
            Some(object) => object.pooled(),
            None => unreachable!("a lease holds its connection until it ends"),
        }
    }

    fn object_mut(&mut self) -> &mut AsyncPooledConnection {
        match &mut self.object {
            Some(object) => object.pooled_mut(),
            None => unreachable!("a lease holds its connection until it ends"),
        }
    }

    /// The pooled connection, with the pool's record of it.
    pub(super) fn pooled(&mut self) -> &mut AsyncPooledConnection {
        self.object_mut()
    }

    /// The connection.
    ///
    /// Must not be called after the lease ended ([`release`](Self::release),
    /// [`finish`](Self::finish)).
    pub(super) fn connection(&mut self) -> &mut AsyncPgConnection {
        &mut self.object_mut().conn
    }

    /// Ends the lease, the connection going back to the pool.
    pub(super) fn release(&mut self) {
        self.object.take();
    }

    /// Ends the lease: the connection goes back to the pool when the operation is over,
    /// diesel-async knows no transaction is open on it (no panic under way, no transaction
    /// statement cancelled half-way) and it has not served its number of tenants
    /// ([`Served::spent`](crate::take::Served::spent)); otherwise it is discarded.
    pub(super) fn finish(&mut self) {
        if std::thread::panicking() {
            crate::observe::discarded(None, "panic", None);
        } else if self.object().served.spent() {
            crate::observe::retired();
        } else if take::may_return(prove::transaction_open(self.connection())) {
            self.release();
            return;
        } else {
            crate::observe::discarded(None, "transaction_left_open", None);
        }
        self.reported = true;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(object) = self.object.take() {
            if !self.reported {
                // Dropped before its operation ended: a panic unwinding, or a cancelled future.
                let reason = if std::thread::panicking() {
                    "panic"
                } else {
                    "cancelled"
                };
                crate::observe::discarded(None, reason, None);
            }
            object.discard();
        }
    }
}

/// A pooled async connection with a schema's `search_path`, from
/// [`AsyncTenantPool::scope`](super::AsyncTenantPool::scope) (or the neutral path, from
/// [`AsyncTenantPool::get`](super::AsyncTenantPool::get)). Derefs to diesel-async's
/// [`AsyncPgConnection`].
///
/// When it ends, the connection goes back to the pool, and whatever was done on it (a `SET`,
/// a `SET ROLE`, a temporary table, a query cancelled half-way) is reset or refused by the
/// next checkout before anyone else uses it. A scope dropped while its thread unwinds a
/// panic, with a diesel-async transaction open or cancelled half-way, or whose connection
/// has served its
/// [`max_tenants_per_connection`](crate::ConfigBuilder::max_tenants_per_connection), is
/// discarded instead. (A panicking tokio task's scope held across an await is dropped after
/// tokio caught the panic: it can go back, and the next checkout resets it.)
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database().notes(&["customer1"]);
/// # pgschemas_diesel::doctest_setup::block_on(async {
/// # let pool = db.async_pool();
/// use diesel_async::RunQueryDsl;
///
/// let mut conn = pool.scope(&"customer1").await?;
/// assert_eq!(conn.schema().as_str(), "customer1");
/// diesel::sql_query("insert into notes (body) values ('hello')").execute(&mut *conn).await?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct AsyncTenantScope {
    lease: Lease,
    path: SearchPath,
    /// Open for the scope's life ([`crate::observe::scope_span`]).
    _span: tracing::Span,
}

impl AsyncTenantScope {
    /// The scope of `lease`, which the checkout set to `path`.
    pub(super) fn new(mut lease: Lease, path: SearchPath) -> Self {
        let span =
            crate::observe::scope_span(path.schema().as_str(), &lease.pooled().login.database);
        Self {
            lease,
            path,
            _span: span,
        }
    }

    /// The active schema.
    pub fn schema(&self) -> &SchemaName {
        self.path.schema()
    }

    /// The scope's search path (what the checkout set and proved).
    pub fn path(&self) -> &SearchPath {
        &self.path
    }
}

impl Drop for AsyncTenantScope {
    fn drop(&mut self) {
        self.lease.finish();
    }
}

impl Deref for AsyncTenantScope {
    type Target = AsyncPgConnection;

    fn deref(&self) -> &AsyncPgConnection {
        &self.lease.object().conn
    }
}

impl DerefMut for AsyncTenantScope {
    fn deref_mut(&mut self) -> &mut AsyncPgConnection {
        self.lease.connection()
    }
}

impl fmt::Debug for AsyncTenantScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncTenantScope")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}
