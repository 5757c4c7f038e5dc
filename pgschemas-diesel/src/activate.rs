//! Activating a schema: the [`Schema`] trait, the search path a schema gets from a
//! [`Config`], and setting it on a plain connection (session or transaction form).

use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel::sql_types::{Nullable, Text};

use crate::checkout::{self, Leftover};
use crate::config::{Config, StaticTenant};
use crate::error::SessionProblem;
use crate::error::{Error, Result};
use crate::name::SchemaName;
use crate::path::SearchPath;
use crate::transaction::{self, Ended};

/// Anything that names a schema: a [`SchemaName`], a [`StaticTenant`](crate::StaticTenant),
/// a string, or the user's own tenant model (through `#[derive(Tenant)]`).
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database().notes(&["customer1"]); let database_url = db.url();
/// use diesel::{Connection, PgConnection};
/// use pgschemas_diesel::{Schema, SchemaConnection, SchemaName};
///
/// let mut conn = PgConnection::establish(database_url)?;
/// let tenant = SchemaName::new("customer1")?;
/// tenant.activate(&mut conn)?; // search_path = "customer1", "public"
/// assert_eq!(conn.current_schema()?.as_deref(), Some("customer1"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Schema {
    /// The schema's name, as stored (validated when it is used).
    fn schema_name(&self) -> &str;

    /// Sets the session's `search_path` to this schema (then the shared schema and the extra
    /// paths of the [installed](Config::install) configuration) in one round trip.
    ///
    /// The session keeps this path until it is changed: on a pooled connection, use
    /// [`TenantPool::scope`](crate::TenantPool::scope) instead, which never lets it leak.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSchemaName`]; [`Error::SchemaNotFound`] when the schema does not exist
    /// (the path is then left unchanged); [`Error::Database`] when the statement fails.
    fn activate(&self, conn: &mut PgConnection) -> Result<()> {
        Config::global().activate(conn, self)
    }
}

impl Schema for SchemaName {
    fn schema_name(&self) -> &str {
        self.as_str()
    }
}

impl Schema for str {
    fn schema_name(&self) -> &str {
        self
    }
}

impl Schema for String {
    fn schema_name(&self) -> &str {
        self
    }
}

impl Schema for StaticTenant {
    fn schema_name(&self) -> &str {
        self.name().as_str()
    }
}

impl<T: Schema + ?Sized> Schema for &T {
    fn schema_name(&self) -> &str {
        (**self).schema_name()
    }
}

impl Config {
    /// The search path for `schema`: `<schema>, <shared>, <extras...>`, deduplicated.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSchemaName`] when the schema's name is not valid.
    ///
    /// ```
    /// let config = pgschemas_diesel::Config::default();
    /// assert_eq!(config.search_path(&"tenant1")?.as_sql_value(), r#""tenant1", "public", pg_temp"#);
    /// assert_eq!(config.search_path(&"public")?.as_sql_value(), r#""public", pg_temp"#);
    /// # Ok::<(), pgschemas_diesel::Error>(())
    /// ```
    pub fn search_path<S: Schema + ?Sized>(&self, schema: &S) -> Result<SearchPath> {
        let name = SchemaName::new(schema.schema_name())?;
        if name == *self.shared_schema() {
            return Ok(self.neutral_path().clone());
        }
        let role = self.path_role(&name)?;
        Ok(SearchPath::new(
            name,
            std::iter::once(self.shared_schema()).chain(self.extra_search_paths()),
        )
        .with_role(role))
    }

    /// Sets `conn`'s session `search_path` to `schema`'s path under this configuration: one
    /// round trip, which also checks that the schema exists.
    ///
    /// # Errors
    ///
    /// As [`Schema::activate`].
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database().notes(&["customer1"]); let database_url = db.url();
    /// # use diesel::{Connection, PgConnection};
    /// use pgschemas_diesel::{Error, SchemaConnection};
    ///
    /// let config = pgschemas_diesel::Config::default();
    /// let mut conn = PgConnection::establish(database_url)?;
    /// config.activate(&mut conn, &"customer1")?;
    /// assert!(matches!(config.activate(&mut conn, &"nobody"), Err(Error::SchemaNotFound { .. })));
    /// assert_eq!(conn.current_schema()?.as_deref(), Some("customer1")); // unchanged
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn activate<S: Schema + ?Sized>(&self, conn: &mut PgConnection, schema: &S) -> Result<()> {
        set_path(conn, &self.search_path(schema)?)
    }

    /// Sets `conn`'s session `search_path` back to the neutral path (the shared schema and
    /// the extras).
    ///
    /// # Errors
    ///
    /// [`Error::SchemaNotFound`] when the shared schema is missing; [`Error::Database`].
    pub fn deactivate(&self, conn: &mut PgConnection) -> Result<()> {
        set_path(conn, self.neutral_path())
    }

    /// Runs `f` in a transaction whose `search_path` is `schema`'s, set with `SET LOCAL`:
    /// `BEGIN` and the path go in one round trip, and the path ends with the transaction.
    /// This form stays correct behind PgBouncer in transaction pooling mode.
    ///
    /// Commits when `f` returns `Ok`, rolls back when it returns `Err` or panics.
    ///
    /// # Errors
    ///
    /// `f`'s error; [`Error::SchemaNotFound`] (nothing runs), [`Error::Database`] when
    /// `BEGIN` or `COMMIT` fails, converted into `E`.
    ///
    /// ```
    /// # let db = pgschemas_diesel::doctest_setup::database().notes(&["customer1"]); let database_url = db.url();
    /// # use diesel::{Connection, PgConnection, RunQueryDsl};
    /// let config = pgschemas_diesel::Config::default();
    /// let mut conn = PgConnection::establish(database_url)?;
    /// let n = config.transaction(&mut conn, &"customer1", |conn| {
    ///     diesel::sql_query("insert into notes (body) values ('hi')").execute(conn)
    ///         .map_err(pgschemas_diesel::Error::from)
    /// })?;
    /// assert_eq!(n, 1);
    /// // the path ended with the transaction: no `notes` outside it
    /// assert!(diesel::sql_query("select 1 from notes").execute(&mut conn).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn transaction<S, T, E, F>(&self, conn: &mut PgConnection, schema: &S, f: F) -> Result<T, E>
    where
        S: Schema + ?Sized,
        F: FnOnce(&mut PgConnection) -> Result<T, E>,
        E: From<Error>,
    {
        let path = self.search_path(schema)?;
        let begin = checkout::plain_transaction_sql(&path);
        transaction::run(conn, &begin, f).map_err(|ended| ended_error(conn, &path, ended))
    }
}

/// Schema switching on a plain [`PgConnection`], with the [installed](Config::install)
/// configuration (or the default one).
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database().notes(&["customer1"]); let database_url = db.url();
/// use diesel::{Connection, PgConnection};
/// use pgschemas_diesel::SchemaConnection;
///
/// let mut conn = PgConnection::establish(database_url)?;
/// conn.activate(&"customer1")?;
/// assert_eq!(conn.current_schema()?.as_deref(), Some("customer1"));
/// conn.deactivate()?;
/// assert_eq!(conn.search_path()?, "\"public\", pg_temp");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait SchemaConnection {
    /// Sets the session path to `schema`'s. See [`Schema::activate`].
    ///
    /// # Errors
    ///
    /// As [`Schema::activate`].
    fn activate<S: Schema + ?Sized>(&mut self, schema: &S) -> Result<()>;

    /// Sets the session path back to the neutral path.
    ///
    /// # Errors
    ///
    /// As [`Config::deactivate`].
    fn deactivate(&mut self) -> Result<()>;

    /// Sets an already-built search path, in one round trip.
    ///
    /// # Errors
    ///
    /// [`Error::SchemaNotFound`] when its first schema is missing; [`Error::Database`].
    fn set_search_path(&mut self, path: &SearchPath) -> Result<()>;

    /// The session's `search_path`, as PostgreSQL reports it.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn search_path(&mut self) -> Result<String>;

    /// `current_schema()`: the first schema on the path that exists, if any.
    ///
    /// # Errors
    ///
    /// [`Error::Database`].
    fn current_schema(&mut self) -> Result<Option<String>>;

    /// Runs `f` in a transaction scoped to `schema`. See [`Config::transaction`].
    ///
    /// # Errors
    ///
    /// As [`Config::transaction`].
    fn tenant_transaction<S, T, E, F>(&mut self, schema: &S, f: F) -> Result<T, E>
    where
        S: Schema + ?Sized,
        F: FnOnce(&mut PgConnection) -> Result<T, E>,
        E: From<Error>;
}

impl SchemaConnection for PgConnection {
    fn activate<S: Schema + ?Sized>(&mut self, schema: &S) -> Result<()> {
        Config::global().activate(self, schema)
    }

    fn deactivate(&mut self) -> Result<()> {
        Config::global().deactivate(self)
    }

    fn set_search_path(&mut self, path: &SearchPath) -> Result<()> {
        set_path(self, path)
    }

    fn search_path(&mut self) -> Result<String> {
        diesel::select(diesel::dsl::sql::<Text>(
            "pg_catalog.current_setting('search_path')",
        ))
        .get_result(self)
        .map_err(Error::from)
    }

    fn current_schema(&mut self) -> Result<Option<String>> {
        diesel::select(diesel::dsl::sql::<Nullable<Text>>(
            "pg_catalog.current_schema()",
        ))
        .get_result(self)
        .map_err(Error::from)
    }

    fn tenant_transaction<S, T, E, F>(&mut self, schema: &S, f: F) -> Result<T, E>
    where
        S: Schema + ?Sized,
        F: FnOnce(&mut PgConnection) -> Result<T, E>,
        E: From<Error>,
    {
        Config::global().transaction(self, schema, f)
    }
}

/// Sets the session path in one round trip, proven by the value the statement returns; a
/// missing or unusable schema leaves the path unchanged.
pub(crate) fn set_path(conn: &mut PgConnection, path: &SearchPath) -> Result<()> {
    let probe =
        checkout::probe(conn, path, true).map_err(|e| Error::db(path.schema().as_str(), e))?;
    if let Some(refusal) = probe.refusal(path) {
        return Err(refusal);
    }
    if probe.set.as_deref() == Some(path.as_sql_value()) {
        Ok(())
    } else {
        Err(Error::SessionState {
            schema: path.schema().to_string(),
            reason: SessionProblem::PathNotReported,
        })
    }
}

/// Mirrors `TransactionManager::transaction` once the transaction for `path` is open: `f`,
/// then commit on `Ok`, roll back on `Err` or panic.
pub(crate) fn run_in_transaction<T, E, F>(
    conn: &mut PgConnection,
    path: &SearchPath,
    f: F,
) -> Result<T, E>
where
    F: FnOnce(&mut PgConnection) -> Result<T, E>,
    E: From<Error>,
{
    transaction::finish(conn, f).map_err(|ended| ended_error(conn, path, ended))
}

/// The caller's error for a transaction on `path` that did not commit: `f`'s own, unless
/// the rollback after it failed. A failed `BEGIN` message is explained from the server's
/// state, never from the error's text: the schema's state, or an open transaction (then
/// reported as [`Error::SessionState`]).
fn ended_error<E: From<Error>>(conn: &mut PgConnection, path: &SearchPath, ended: Ended<E>) -> E {
    match ended {
        Ended::BeginFailed(e) => begin_failed(conn, path, e).into(),
        ended => unfinished_error(path, ended),
    }
}

/// The caller's error for a transaction on `path` whose body ran and that did not commit
/// (sync or async): `f`'s own, unless the rollback after it failed, or the commit's.
pub(crate) fn unfinished_error<E: From<Error>>(path: &SearchPath, ended: Ended<E>) -> E {
    let schema = path.schema().as_str();
    match ended {
        Ended::Failed {
            error,
            rollback: Ok(()) | Err(DieselError::BrokenTransactionManager),
        } => error,
        Ended::Failed {
            rollback: Err(e), ..
        }
        | Ended::CommitFailed(e)
        | Ended::BeginFailed(e) => Error::db(schema, e).into(),
    }
}

/// What a failed `BEGIN` message means: Diesel's own "already in a transaction", or, after
/// rolling back what the message opened, the schema's state as the server reports it.
fn begin_failed(conn: &mut PgConnection, path: &SearchPath, e: DieselError) -> Error {
    if matches!(e, DieselError::AlreadyInTransaction) {
        return Error::SessionState {
            schema: path.schema().to_string(),
            reason: SessionProblem::DieselTransactionOpen,
        };
    }
    checkout::explain(conn, path, e, Leftover::PlainTransaction).into_error()
}
