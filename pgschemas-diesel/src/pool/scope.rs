//! The scopes a [`TenantPool`](super::TenantPool) hands out: [`TenantScope`] (a pooled
//! connection with a schema's path) and [`NestedScope`] (another schema for a while).

use std::fmt;
use std::ops::{Deref, DerefMut};

use diesel::PgConnection;

use super::{Pooled, check_in, discard, is_marked, record_served};
use crate::activate::{Schema, set_path};
use crate::config::Config;
use crate::error::Result;
use crate::name::SchemaName;
use crate::path::SearchPath;

/// A pooled connection with a schema's `search_path`, from [`TenantPool::scope`](crate::TenantPool::scope) (or the
/// neutral path, from [`TenantPool::get`](crate::TenantPool::get)). Derefs to [`PgConnection`].
///
/// When it ends, the connection goes back to the pool; whatever was done on it (a `SET`, a
/// `SET ROLE`, a temporary table, a `BEGIN` left open) is reset or refused by the next
/// checkout before anyone else uses it. A scope that ends in a panic, on a connection that
/// broke, or after a failed [`nested`](Self::nested) restore is discarded by the pool; so is
/// one whose connection has served the configured number of tenants
/// ([`max_tenants_per_connection`](crate::ConfigBuilder::max_tenants_per_connection)).
///
/// To work in another schema for a while, use [`nested`](Self::nested), which restores this
/// scope's path when it ends.
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database().notes(&["customer1", "customer2"]); let pool = db.pool();
/// use diesel::RunQueryDsl;
/// use pgschemas_diesel::SchemaConnection;
///
/// let mut scope = pool.scope(&"customer1")?;
/// diesel::sql_query("insert into notes (body) values ('hello')").execute(&mut *scope)?;
/// {
///     let mut inner = scope.nested(&"customer2")?;
///     let rows = diesel::sql_query("select 1 from notes").execute(&mut *inner)?;
///     assert_eq!(rows, 0); // customer2's notes
/// } // back to customer1
/// assert_eq!(scope.current_schema()?.as_deref(), Some("customer1"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct TenantScope {
    conn: Pooled,
    path: SearchPath,
    config: Config,
    /// Open for the scope's life ([`crate::observe::scope_span`]).
    _span: tracing::Span,
}

impl TenantScope {
    /// The scope of `conn`, which the checkout set to `path`.
    pub(super) fn new(conn: Pooled, path: SearchPath, config: Config) -> Self {
        let span = crate::observe::scope_span(path.schema().as_str(), super::database_of(&conn));
        Self {
            conn,
            path,
            config,
            _span: span,
        }
    }

    /// The active schema.
    pub fn schema(&self) -> &SchemaName {
        self.path.schema()
    }

    /// The scope's search path (what the checkout set and proved; `search_path()` through
    /// [`SchemaConnection`](crate::SchemaConnection) asks the server).
    pub fn path(&self) -> &SearchPath {
        &self.path
    }

    /// Switches this connection to `schema` until the returned guard ends, then restores
    /// this scope's path. Costs one round trip each way.
    ///
    /// # Errors
    ///
    /// As [`TenantPool::scope`](crate::TenantPool::scope); the path is unchanged on error.
    pub fn nested<S: Schema + ?Sized>(&mut self, schema: &S) -> Result<NestedScope<'_>> {
        NestedScope::enter(&mut self.conn, &self.config, &self.path, schema)
    }

    /// Whether the connection was marked to be discarded (a path could not be restored); the
    /// mark sticks whatever runs on the connection afterwards. A connection that has served
    /// its [`max_tenants_per_connection`](crate::ConfigBuilder::max_tenants_per_connection)
    /// is not poisoned: it serves this scope as usual and is closed when the scope ends.
    pub fn is_poisoned(&mut self) -> bool {
        is_marked(&self.conn)
    }
}

impl Drop for TenantScope {
    fn drop(&mut self) {
        check_in(&mut self.conn);
    }
}

impl Deref for TenantScope {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        &self.conn
    }
}

impl DerefMut for TenantScope {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}

impl fmt::Debug for TenantScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantScope")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A schema switch inside a [`TenantScope`] (or another nested scope); restores the outer
/// path when it ends. Derefs to [`PgConnection`].
///
/// If the outer path cannot be restored, the connection is marked for discard (for good) and
/// the pool destroys it when the outer scope ends; [`finish`](Self::finish) reports that
/// error.
pub struct NestedScope<'a> {
    conn: &'a mut Pooled,
    config: Config,
    outer: SearchPath,
    path: SearchPath,
    done: bool,
}

impl<'a> NestedScope<'a> {
    fn enter<S: Schema + ?Sized>(
        conn: &'a mut Pooled,
        config: &Config,
        outer: &SearchPath,
        schema: &S,
    ) -> Result<Self> {
        let path = config.search_path(schema)?;
        // A scope of a pool acting as the DDL role nests as the DDL role.
        let ddl = config.tenant_roles().map(|r| r.ddl_role());
        let path = if ddl.is_some() && outer.role() == ddl {
            config.ddl_path(path.schema())?
        } else {
            path
        };
        set_path(conn, &path)?;
        record_served(conn, &path, config);
        Ok(Self {
            conn,
            config: config.clone(),
            outer: outer.clone(),
            path,
            done: false,
        })
    }

    /// The active schema.
    pub fn schema(&self) -> &SchemaName {
        self.path.schema()
    }

    /// A further switch inside this one.
    ///
    /// # Errors
    ///
    /// As [`TenantScope::nested`].
    pub fn nested<S: Schema + ?Sized>(&mut self, schema: &S) -> Result<NestedScope<'_>> {
        NestedScope::enter(self.conn, &self.config, &self.path, schema)
    }

    /// Ends the switch and reports whether the outer path was restored.
    ///
    /// # Errors
    ///
    /// The restore's error; the connection is then marked broken and will be discarded.
    pub fn finish(mut self) -> Result<()> {
        self.restore()
    }

    fn restore(&mut self) -> Result<()> {
        self.done = true;
        if std::thread::panicking() {
            crate::observe::discarded(Some(self.outer.schema().as_str()), "panic", None);
            discard(self.conn);
            return Ok(());
        }
        let restored = set_path(self.conn, &self.outer);
        if restored.is_ok() {
            // The session is the outer scope's again: the next checkout's switch is judged
            // from it.
            super::switched(self.conn, &self.outer);
        }
        if let Err(e) = &restored {
            crate::observe::discarded(
                Some(self.outer.schema().as_str()),
                "restore_failed",
                Some(e),
            );
            discard(self.conn);
        }
        restored
    }
}

impl Drop for NestedScope<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.restore();
        }
    }
}

impl Deref for NestedScope<'_> {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        self.conn
    }
}

impl DerefMut for NestedScope<'_> {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.conn
    }
}

impl fmt::Debug for NestedScope<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NestedScope")
            .field("path", &self.path)
            .field("outer", &self.outer)
            .finish_non_exhaustive()
    }
}
