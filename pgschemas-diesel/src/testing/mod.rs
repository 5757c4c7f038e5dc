//! Test support: a database per test, a PostgreSQL server to run it on, and a PgBouncer.
//!
//! Enabled by the `testing` feature. Tests of this crate use it, and so can yours:
//!
//! - [`server_url`] finds the server from `DATABASE_URL` (default
//!   `postgres://postgres@127.0.0.1:5432/postgres`), or starts a throwaway cluster when none
//!   answers and PostgreSQL's binaries are installed.
//! - [`TestDatabase`], usually made by [`test_database!`](crate::test_database), is a fresh
//!   database named after the test: dropped when the test passes, kept (and named on stderr)
//!   when it fails. Tests never share a database, so they can run in parallel.
//! - [`localized_server_url`] starts a throwaway cluster whose server writes its messages in
//!   another language (`"de"`), to prove that errors are not told apart by their text.
//! - [`PgBouncer`] starts a private PgBouncer in front of a database, to test behaviour behind
//!   a pooler in transaction mode.
//! - [`CitusCluster`] starts a Citus coordinator and two workers of its own, for tests of
//!   schema-based sharding (Citus must be installed: `.ci/install-citus`).
//!
//! Enable it for tests only:
//!
//! ```toml
//! [dev-dependencies]
//! pgschemas-diesel = { version = "0.1", features = ["testing"] }
//! ```
//!
//! # Examples
//!
//! ```
//! use diesel::prelude::*;
//!
//! // #[test]: in your crate's tests
//! fn tenants_get_their_own_schema() -> Result<(), Box<dyn std::error::Error>> {
//!     let db = pgschemas_diesel::test_database!(); // named after this function
//!     let mut conn = db.connect();
//!     diesel::sql_query("CREATE SCHEMA tenant_a").execute(&mut conn)?;
//!     assert_eq!(pgschemas_diesel::lifecycle::list_schemas(&mut conn)?, ["public", "tenant_a"]);
//!     Ok(())
//! }
//! # tenants_get_their_own_schema()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[doc(hidden)]
pub mod attribute;
mod citus;
mod cluster;
mod database;
mod localized;
mod naming;
mod pgbouncer;
mod process;
mod roles;
mod server;
mod url;

pub use self::citus::CitusCluster;
pub use self::database::TestDatabase;
pub use self::localized::localized_server_url;
pub use self::pgbouncer::{PgBouncer, PoolMode};
pub use self::roles::TestRoles;
pub use self::server::server_url;
pub use self::url::url_with_database;
