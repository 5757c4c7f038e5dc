//! Creating, dropping and listing schemas.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel::sql_types::{Bool, Text};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::name::SchemaName;

/// Whether the schema exists (exact, case-sensitive match in `pg_namespace`).
///
/// # Errors
///
/// [`Error::Database`].
///
/// ```no_run
/// # use diesel::{Connection, PgConnection};
/// let mut conn = PgConnection::establish("postgres://postgres@127.0.0.1/postgres")?;
/// let name = pgschemas_diesel::SchemaName::new("public")?;
/// assert!(pgschemas_diesel::schema_exists(&mut conn, &name)?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn schema_exists(conn: &mut PgConnection, name: &SchemaName) -> Result<bool> {
    diesel::select(
        diesel::dsl::sql::<Bool>("EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = ")
            .bind::<Text, _>(name.as_str())
            .sql(")"),
    )
    .get_result(conn)
    .map_err(|e| Error::db(name.as_str(), e))
}

/// Every schema that is not PostgreSQL's own (`pg_*`, `information_schema`), sorted by name.
///
/// # Errors
///
/// [`Error::Database`].
///
/// ```no_run
/// # use diesel::{Connection, PgConnection};
/// let mut conn = PgConnection::establish("postgres://postgres@127.0.0.1/postgres")?;
/// let schemas = pgschemas_diesel::list_schemas(&mut conn)?;
/// assert!(schemas.iter().any(|s| s == "public"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn list_schemas(conn: &mut PgConnection) -> Result<Vec<String>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        nspname: String,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT nspname::text AS nspname FROM pg_catalog.pg_namespace \
         WHERE nspname !~ '^pg_' AND nspname <> 'information_schema' ORDER BY nspname",
    )
    .load(conn)
    .map_err(Error::from)?;
    Ok(rows.into_iter().map(|r| r.nspname).collect())
}

/// Creates the schema.
///
/// # Errors
///
/// [`Error::SchemaExists`] when it exists already; [`Error::Database`].
///
/// ```no_run
/// # use diesel::{Connection, PgConnection};
/// let mut conn = PgConnection::establish("postgres://postgres@127.0.0.1/postgres")?;
/// pgschemas_diesel::create_schema(&mut conn, &pgschemas_diesel::SchemaName::new("customer1")?)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn create_schema(conn: &mut PgConnection, name: &SchemaName) -> Result<()> {
    conn.batch_execute(&format!("CREATE SCHEMA {}", name.quoted()))
        .map_err(|e| {
            if message_is(&e, &format!("schema \"{}\" already exists", name.as_str())) {
                Error::SchemaExists {
                    schema: name.to_string(),
                }
            } else {
                Error::db(name.as_str(), e)
            }
        })
}

/// Drops the schema and everything in it (`DROP SCHEMA ... CASCADE`), refusing the shared
/// schema, the static tenants and the clone reference of `config`.
///
/// # Errors
///
/// [`Error::Protected`] for a protected schema (compared case-insensitively);
/// [`Error::SchemaNotFound`] when it does not exist; [`Error::Database`].
///
/// ```no_run
/// # use diesel::{Connection, PgConnection};
/// # let mut conn = PgConnection::establish("postgres://postgres@127.0.0.1/postgres")?;
/// use pgschemas_diesel::{drop_schema, Config, Error, SchemaName};
///
/// let config = Config::default();
/// let public = SchemaName::new("public")?;
/// assert!(matches!(drop_schema(&mut conn, &config, &public), Err(Error::Protected { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn drop_schema(conn: &mut PgConnection, config: &Config, name: &SchemaName) -> Result<()> {
    if let Some(what) = protected_as(config, name) {
        return Err(Error::Protected {
            schema: name.to_string(),
            action: "drop",
            what,
        });
    }
    dangerous_drop_schema(conn, name)
}

/// Why `config` protects `name` from being dropped, if it does (compared case-insensitively).
pub(crate) fn protected_as(config: &Config, name: &SchemaName) -> Option<&'static str> {
    if config.shared_schema().eq_ignore_case(name.as_str()) {
        Some("the shared schema")
    } else if config
        .static_tenants()
        .iter()
        .any(|t| t.name().eq_ignore_case(name.as_str()))
    {
        Some("a static tenant")
    } else if config
        .clone_reference()
        .is_some_and(|r| r.eq_ignore_case(name.as_str()))
    {
        Some("the clone reference")
    } else {
        None
    }
}

/// Drops any schema and everything in it, with no protection: the shared schema and static
/// tenants included.
///
/// # Errors
///
/// [`Error::SchemaNotFound`] when it does not exist; [`Error::Database`].
///
/// ```no_run
/// # use diesel::{Connection, PgConnection};
/// # let mut conn = PgConnection::establish("postgres://postgres@127.0.0.1/postgres")?;
/// pgschemas_diesel::dangerous_drop_schema(&mut conn, &pgschemas_diesel::SchemaName::new("www")?)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn dangerous_drop_schema(conn: &mut PgConnection, name: &SchemaName) -> Result<()> {
    conn.batch_execute(&format!("DROP SCHEMA {} CASCADE", name.quoted()))
        .map_err(|e| {
            if message_is(&e, &format!("schema \"{}\" does not exist", name.as_str())) {
                Error::SchemaNotFound {
                    schema: name.to_string(),
                }
            } else {
                Error::db(name.as_str(), e)
            }
        })
}

fn message_is(e: &DieselError, message: &str) -> bool {
    matches!(e, DieselError::DatabaseError(_, info) if info.message() == message)
}
