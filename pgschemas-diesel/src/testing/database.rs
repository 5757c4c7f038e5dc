//! A fresh database per test.

use std::time::Duration;

use diesel::result::DatabaseErrorKind;
use diesel::sql_types::Bool;
use diesel::{Connection, PgConnection, RunQueryDsl};

use super::naming::database_name_in;
use super::server::server_url;
use super::url::{redact_password, url_with_database};

/// How often creating the database is tried before giving up.
const CREATE_ATTEMPTS: u32 = 5;

/// A database of its own for one test: created fresh, dropped when the test passes, kept for
/// inspection when it fails.
///
/// The name is derived from a hint, normally the test's path (see [`test_database!`]): it
/// starts with `test_`, uses only `[a-z0-9_]` and fits PostgreSQL's 63-byte limit. A hint that
/// is already such a short name is kept verbatim (`"quickstart"` gives `test_quickstart`);
/// any other hint gives its readable tail plus a hash of the whole hint and of the test
/// executable's path, so distinct paths get distinct names, and so does one path in two test
/// executables (a package's library and binary share a crate name, hence module paths; two
/// checkouts of one suite). Each test therefore owns its database, and tests can run in
/// parallel threads or processes (`cargo test`, `cargo nextest`) against one server.
///
/// Creating a `TestDatabase` drops a leftover database of the same name (from an earlier
/// failed run) and creates an empty one on the server of [`server_url`]. Dropping it drops
/// the database `WITH (FORCE)`, closing connections still open to it, unless the thread is
/// panicking: then the database is kept and its name and URL are printed to stderr.
///
/// Requires PostgreSQL 13 or newer (`DROP DATABASE ... WITH (FORCE)`).
///
/// [`test_database!`]: crate::test_database
///
/// # Examples
///
/// ```
/// use diesel::prelude::*;
/// use pgschemas_diesel::testing::TestDatabase;
///
/// // in a test: `let db = pgschemas_diesel::test_database!();`
/// // (here a name of this process's own, as other runs may use the server)
/// let hint = format!("docs_example_{}", std::process::id());
/// let db = TestDatabase::new(&hint);
/// assert_eq!(db.name(), format!("test_{hint}"));
///
/// let mut conn = db.connect();
/// diesel::sql_query("CREATE SCHEMA tenant_a").execute(&mut conn)?;
/// // `db` is dropped at the end of the test, and the database with it
/// let name = db.name().to_owned();
/// drop(db);
/// let mut admin = PgConnection::establish(&pgschemas_diesel::testing::server_url())?;
/// let left = diesel::sql_query(format!("SELECT 1 FROM pg_database WHERE datname = '{name}'"))
///     .execute(&mut admin)?;
/// assert_eq!(left, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    server_url: String,
    /// Kept when dropped, as after a panic ([`keep`](Self::keep)).
    keep: std::sync::atomic::AtomicBool,
}

impl TestDatabase {
    /// Creates an empty database named after `name_hint`, dropping a leftover of the same
    /// name first.
    ///
    /// Tests normally call [`test_database!`](crate::test_database), which passes the test's
    /// path as the hint.
    ///
    /// # Panics
    ///
    /// Panics when no server is available (see [`server_url`]), or when the database cannot
    /// be created, for example because the role lacks `CREATEDB`.
    ///
    /// # Examples
    ///
    /// ```
    /// use pgschemas_diesel::testing::TestDatabase;
    ///
    /// // a test's path, made this process's own: other runs may use the server
    /// let pid = std::process::id();
    /// let db = TestDatabase::new(&format!("my_crate::tests::signup_creates_a_schema_{pid}"));
    /// assert!(db.name().starts_with(&format!("test_my_crate_tests_signup_creates_a_schema_{pid}_")));
    /// ```
    pub fn new(name_hint: &str) -> TestDatabase {
        TestDatabase::on(&server_url(), name_hint)
    }

    /// Creates an empty database named after `name_hint` on the server of `server_url` (an
    /// admin URL whose role can create databases), dropping a leftover of the same name
    /// first.
    ///
    /// Tests normally call [`test_database!(server: url)`](crate::test_database), which
    /// passes the test's path as the hint; use it with a server of your own, such as
    /// [`localized_server_url`](crate::testing::localized_server_url).
    ///
    /// # Panics
    ///
    /// Panics when the server does not accept the connection, or when the database cannot
    /// be created, for example because the role lacks `CREATEDB`.
    ///
    /// # Examples
    ///
    /// ```
    /// use diesel::RunQueryDsl;
    /// use pgschemas_diesel::testing::{TestDatabase, localized_server_url};
    ///
    /// let db = TestDatabase::on(&localized_server_url("de"), "answers_in_german");
    /// assert_eq!(db.name(), "test_answers_in_german");
    /// let err = diesel::sql_query("SELECT 1/0").execute(&mut db.connect()).unwrap_err();
    /// assert_eq!(err.to_string(), "Division durch Null");
    /// ```
    pub fn on(server_url: &str, name_hint: &str) -> TestDatabase {
        let executable = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let name = database_name_in(name_hint, &executable);
        let mut admin = PgConnection::establish(server_url).unwrap_or_else(|e| {
            panic!(
                "cannot connect to {} to create test database {name}: {e}",
                redact_password(server_url)
            )
        });
        create_database(&mut admin, &name);
        TestDatabase {
            url: url_with_database(server_url, &name),
            name,
            server_url: server_url.to_owned(),
            keep: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Keeps the database when this value is dropped, and says so on stderr, as after a
    /// failed test: for a test that fails without panicking (`#[pgschemas_diesel::test]` calls
    /// it when the test returns an `Err`).
    ///
    /// ```
    /// # let db = pgschemas_diesel::test_database!();
    /// db.keep();
    /// # let (server, name) = (db.server_url().to_owned(), db.name().to_owned());
    /// # drop(db);
    /// # use diesel::{Connection, RunQueryDsl};
    /// # let mut admin = diesel::PgConnection::establish(&server)?;
    /// # diesel::sql_query(format!("DROP DATABASE \"{name}\"")).execute(&mut admin)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn keep(&self) {
        self.keep.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// The database's name.
    ///
    /// # Examples
    ///
    /// ```
    /// let pid = std::process::id(); // a name of this process's own: other runs may use the server
    /// let db = pgschemas_diesel::testing::TestDatabase::new(&format!("name_example_{pid}"));
    /// assert_eq!(db.name(), format!("test_name_example_{pid}"));
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL of the server the database was created on (the admin URL).
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// A connection URL for the database: the server's URL with the database replaced.
    ///
    /// # Examples
    ///
    /// ```
    /// use diesel::prelude::*;
    ///
    /// let db = pgschemas_diesel::testing::TestDatabase::new(&format!("url_example_{}", std::process::id()));
    /// assert!(db.url().ends_with(&format!("/{}", db.name())));
    /// let pool = diesel::r2d2::Pool::builder()
    ///     .max_size(2)
    ///     .build(diesel::r2d2::ConnectionManager::<PgConnection>::new(db.url()))?;
    /// diesel::sql_query("SELECT 1").execute(&mut pool.get()?)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Opens a new connection to the database.
    ///
    /// # Panics
    ///
    /// Panics when the connection fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use diesel::prelude::*;
    /// use diesel::sql_types::Text;
    ///
    /// let db = pgschemas_diesel::testing::TestDatabase::new(&format!("connect_example_{}", std::process::id()));
    /// let mut conn = db.connect();
    /// let current: String = diesel::select(diesel::dsl::sql::<Text>("current_database()")).get_result(&mut conn)?;
    /// assert_eq!(current, db.name());
    /// # Ok::<(), diesel::result::Error>(())
    /// ```
    pub fn connect(&self) -> PgConnection {
        PgConnection::establish(&self.url).unwrap_or_else(|e| {
            panic!(
                "cannot connect to test database {} at {}: {e}",
                self.name,
                redact_password(&self.url)
            )
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if std::thread::panicking() || self.keep.load(std::sync::atomic::Ordering::Relaxed) {
            eprintln!(
                "pgschemas-diesel: the test failed; kept database {} for inspection: {} \
                 (drop it with `DROP DATABASE {}`)",
                self.name,
                redact_password(&self.url),
                self.name
            );
            return;
        }
        let dropped = PgConnection::establish(&self.server_url)
            .map_err(|e| e.to_string())
            .and_then(|mut admin| drop_database(&mut admin, &self.name).map_err(|e| e.to_string()));
        if let Err(e) = dropped {
            eprintln!(
                "pgschemas-diesel: cannot drop test database {}: {}",
                self.name,
                e.trim()
            );
        }
    }
}

fn drop_database(admin: &mut PgConnection, name: &str) -> diesel::QueryResult<usize> {
    diesel::sql_query(format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        quote_identifier(name)
    ))
    .execute(admin)
}

/// Drops a leftover of `name`, then creates it; retries when a concurrent run of the same
/// test races for the name, or when the template is briefly busy.
///
/// PostgreSQL's messages are translated, so failures are told apart by what the server
/// reports otherwise: a role that cannot create databases (read from `pg_roles`) is told so
/// at once; a lost connection is not retried; any other database error is retried a few
/// times before it is reported.
fn create_database(admin: &mut PgConnection, name: &str) {
    let create = format!("CREATE DATABASE {}", quote_identifier(name));
    for attempt in 1..=CREATE_ATTEMPTS {
        let result =
            drop_database(admin, name).and_then(|_| diesel::sql_query(&create).execute(admin));
        let error = match result {
            Ok(_) => return,
            Err(error) => error,
        };
        if may_create_databases(admin) == Some(false) {
            panic!(
                "cannot create test database {name}: {error}
hint: the role in DATABASE_URL                  needs CREATEDB (`ALTER ROLE ... CREATEDB`)"
            );
        }
        if !is_retryable(&error) || attempt == CREATE_ATTEMPTS {
            panic!("cannot create test database {name}: {error}");
        }
        std::thread::sleep(Duration::from_millis(50 * u64::from(attempt)));
    }
}

/// Whether creating a database may succeed when tried again: any error the server sent
/// (a concurrent creator or dropper of the same name, a template in use), not a lost
/// connection or a client-side failure.
fn is_retryable(error: &diesel::result::Error) -> bool {
    match error {
        diesel::result::Error::DatabaseError(kind, _) => !matches!(
            kind,
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand
        ),
        _ => false,
    }
}

/// Whether the connected role may create databases, as `pg_roles` says; `None` when that
/// cannot be read.
fn may_create_databases(admin: &mut PgConnection) -> Option<bool> {
    diesel::select(diesel::dsl::sql::<Bool>(
        "(SELECT rolcreatedb OR rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)",
    ))
    .get_result(admin)
    .ok()
}

fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Creates a [`TestDatabase`](crate::testing::TestDatabase) named after the calling test.
///
/// The name hint is the path of the enclosing function, for example
/// `integration::tenants::creates_a_schema`, so each test gets its own database and a kept
/// database tells which test failed. Pass a suffix to create more than one database in the
/// same test: `test_database!("replica")`. The database is on the server of
/// [`server_url`](crate::testing::server_url), or on another one given as
/// `test_database!(server: url)` (and `test_database!(server: url, "replica")`).
///
/// # Panics
///
/// As [`TestDatabase::new`](crate::testing::TestDatabase::new).
///
/// # Examples
///
/// ```
/// // #[test]: in your crate's tests
/// fn creates_tenant_schemas() {
///     let db = pgschemas_diesel::test_database!(); // named after this function
///     assert!(db.name().starts_with("test_"), "{}", db.name());
///     let mut conn = db.connect();
///     // ... exercise the code under test against `conn` or `db.url()`
/// }
///
/// // #[test]
/// fn copies_between_databases() {
///     let source = pgschemas_diesel::test_database!("source");
///     let target = pgschemas_diesel::test_database!("target");
///     assert_ne!(source.name(), target.name());
/// }
///
/// // #[test]
/// fn works_on_a_server_answering_in_german() {
///     let german = pgschemas_diesel::testing::localized_server_url("de");
///     let db = pgschemas_diesel::test_database!(server: german);
///     let mut conn = db.connect();
///     # use diesel::RunQueryDsl;
///     # let err = diesel::sql_query("SELECT 1/0").execute(&mut conn).unwrap_err();
///     # assert_eq!(err.to_string(), "Division durch Null");
/// }
/// # creates_tenant_schemas();
/// # copies_between_databases();
/// # works_on_a_server_answering_in_german();
/// ```
#[macro_export]
macro_rules! test_database {
    () => {
        $crate::testing::TestDatabase::new($crate::__test_function_path!())
    };
    (server: $server_url:expr) => {
        $crate::testing::TestDatabase::on(
            ::std::convert::AsRef::<str>::as_ref(&$server_url),
            $crate::__test_function_path!(),
        )
    };
    (server: $server_url:expr, $suffix:expr) => {
        $crate::testing::TestDatabase::on(
            ::std::convert::AsRef::<str>::as_ref(&$server_url),
            &::std::format!("{}::{}", $crate::__test_function_path!(), $suffix),
        )
    };
    ($suffix:expr) => {
        $crate::testing::TestDatabase::new(&::std::format!(
            "{}::{}",
            $crate::__test_function_path!(),
            $suffix
        ))
    };
}

/// The path of the enclosing function, such as `my_crate::tests::my_test`.
#[doc(hidden)]
#[macro_export]
macro_rules! __test_function_path {
    () => {{
        fn __here() {}
        let path = ::std::any::type_name_of_val(&__here);
        path.strip_suffix("::__here").unwrap_or(path)
    }};
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_macro_path_names_the_enclosing_function() {
        let path = crate::__test_function_path!();
        assert_eq!(
            path,
            "pgschemas_diesel::testing::database::tests::the_macro_path_names_the_enclosing_function"
        );
    }
}
