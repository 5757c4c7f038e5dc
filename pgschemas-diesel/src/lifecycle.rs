//! Creating, dropping and listing schemas: the DDL under tenants, without rows or
//! migrations.
//!
//! [`create_schema`], [`drop_schema`] (refuses the shared schema and schemas others depend
//! on), [`dangerous_drop_schema`], [`list_schemas`] and [`schema_exists`]. To create or drop a
//! tenant with its rows, migrations and hooks in one transaction, use
//! [`provision::Provisioner`](crate::provision::Provisioner). See the guide's "Provisioning
//! and cloning" section.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{Bool, Text};

use crate::config::Config;
use crate::dependents::{lock_relations, outside_dependents};
use crate::error::ConfiguredSchema;
use crate::error::{Error, Result};
use crate::name::SchemaName;

/// Whether the schema exists (exact, case-sensitive match in `pg_namespace`).
///
/// # Errors
///
/// [`Error::Database`].
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database(); let database_url = db.url();
/// # use diesel::{Connection, PgConnection};
/// let mut conn = PgConnection::establish(database_url)?;
/// let name = pgschemas_diesel::SchemaName::new("public")?;
/// assert!(pgschemas_diesel::lifecycle::schema_exists(&mut conn, &name)?);
/// assert!(!pgschemas_diesel::lifecycle::schema_exists(&mut conn, &pgschemas_diesel::SchemaName::new("customer1")?)?);
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
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database().schemas(&["customer1"]); let database_url = db.url();
/// # use diesel::{Connection, PgConnection};
/// let mut conn = PgConnection::establish(database_url)?;
/// let schemas = pgschemas_diesel::lifecycle::list_schemas(&mut conn)?;
/// assert_eq!(schemas, ["customer1", "public"]);
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
/// [`Error::SchemaExists`] when it exists already (also when another session created it at
/// the same time); [`Error::Database`].
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database(); let database_url = db.url();
/// # use diesel::{Connection, PgConnection};
/// use pgschemas_diesel::{Error, SchemaName};
/// use pgschemas_diesel::lifecycle::create_schema;
///
/// let mut conn = PgConnection::establish(database_url)?;
/// let customer1 = SchemaName::new("customer1")?;
/// create_schema(&mut conn, &customer1)?;
/// assert!(matches!(create_schema(&mut conn, &customer1), Err(Error::SchemaExists { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn create_schema(conn: &mut PgConnection, name: &SchemaName) -> Result<()> {
    let sql = format!("CREATE SCHEMA {}", name.quoted());
    // In a transaction (a savepoint inside the caller's) so that the catalog can be read
    // again after a failure.
    let Err(e) = conn.transaction(|conn| conn.batch_execute(&sql)) else {
        return Ok(());
    };
    // A concurrent creator's unique violation, or the schema is there after the failure.
    let concurrent = matches!(
        &e,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)
            if info.constraint_name() == Some("pg_namespace_nspname_index")
    );
    if concurrent || matches!(schema_exists(conn, name), Ok(true)) {
        return Err(Error::SchemaExists {
            schema: name.to_string(),
        });
    }
    Err(Error::db(name.as_str(), e))
}

/// Drops the schema and everything in it, refusing the schemas `config` reserves (the shared
/// schema, the static tenants, the clone reference, the extra search paths) and refusing a
/// schema that objects outside it depend on.
///
/// `DROP SCHEMA ... CASCADE` drops more than the schema: a view of another schema over one
/// of its tables, a foreign key into it, a column or function using one of its types, an
/// extension owning one of its objects. This reads `pg_depend` first and refuses with
/// [`Error::Dependents`], naming those objects; nothing is dropped. The schema's tables and
/// views are locked before the check (in one transaction with the drop), so no view or
/// foreign key over them can appear in between.
///
/// Any other schema may be dropped: a dynamic tenant's, or one that belongs to nothing.
/// [`dangerous_drop_schema`] drops a protected schema and the outside objects too.
///
/// # Errors
///
/// [`Error::Protected`] for a reserved schema (compared case-insensitively);
/// [`Error::Dependents`]; [`Error::SchemaNotFound`] when it does not exist;
/// [`Error::Database`].
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database().notes(&["customer1"]); let mut conn = db.connect();
/// use pgschemas_diesel::{Config, Error, SchemaName};
/// use pgschemas_diesel::lifecycle::{drop_schema, schema_exists};
///
/// let config = Config::default();
/// let public = SchemaName::new("public")?;
/// assert!(matches!(drop_schema(&mut conn, &config, &public), Err(Error::Protected { .. })));
///
/// let customer1 = SchemaName::new("customer1")?;
/// drop_schema(&mut conn, &config, &customer1)?; // a tenant's schema, and its tables
/// assert!(!schema_exists(&mut conn, &customer1)?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn drop_schema(conn: &mut PgConnection, config: &Config, name: &SchemaName) -> Result<()> {
    refuse_protected(config, name)?;
    drop_alone(conn, name, OnDependents::Refuse)
}

/// [`Error::Protected`] when `config` protects `name` from being dropped (compared
/// case-insensitively).
pub(crate) fn refuse_protected(config: &Config, name: &SchemaName) -> Result<()> {
    match protected_as(config, name) {
        Some(what) => Err(Error::Protected {
            schema: name.to_string(),
            action: "drop",
            what,
        }),
        None => Ok(()),
    }
}

/// Why `config` protects `name` from being dropped, if it does (compared case-insensitively).
fn protected_as(config: &Config, name: &SchemaName) -> Option<ConfiguredSchema> {
    let is = |other: &SchemaName| other.eq_ignore_case(name.as_str());
    if is(config.shared_schema()) {
        Some(ConfiguredSchema::SharedSchema)
    } else if config.static_tenants().iter().any(|t| is(t.name())) {
        Some(ConfiguredSchema::StaticTenant)
    } else if config.clone_reference().is_some_and(is) {
        Some(ConfiguredSchema::CloneReference)
    } else if config.extra_search_paths().iter().any(is) {
        Some(ConfiguredSchema::ExtraSearchPath)
    } else {
        None
    }
}

/// Drops any schema and everything in it, with no protection: the shared schema, static
/// tenants and extra search paths included, and the objects outside it that depend on its
/// objects (`DROP SCHEMA ... CASCADE`).
///
/// # Errors
///
/// [`Error::SchemaNotFound`] when it does not exist; [`Error::Database`].
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database().notes(&["www"]); let mut conn = db.connect();
/// use pgschemas_diesel::SchemaName;
/// use pgschemas_diesel::lifecycle::{dangerous_drop_schema, schema_exists};
///
/// let www = SchemaName::new("www")?; // a static tenant's schema, say: drop_schema refuses it
/// dangerous_drop_schema(&mut conn, &www)?;
/// assert!(!schema_exists(&mut conn, &www)?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn dangerous_drop_schema(conn: &mut PgConnection, name: &SchemaName) -> Result<()> {
    drop_alone(conn, name, OnDependents::Cascade)
}

/// What a drop does about objects outside the schema that depend on objects inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnDependents {
    /// Refuse with [`Error::Dependents`].
    Refuse,
    /// Drop them too.
    Cascade,
}

/// [`drop_in_transaction`] in a transaction of its own (a savepoint inside the caller's);
/// a database error for a schema that is gone afterwards is [`Error::SchemaNotFound`].
fn drop_alone(conn: &mut PgConnection, name: &SchemaName, on: OnDependents) -> Result<()> {
    match conn.transaction(|conn| drop_in_transaction(conn, name, on)) {
        Err(e @ Error::Database { .. }) => match schema_exists(conn, name) {
            Ok(false) => Err(Error::SchemaNotFound {
                schema: name.to_string(),
            }),
            _ => Err(e),
        },
        other => other,
    }
}

/// Drops `name` with `CASCADE`, inside the caller's transaction; with
/// [`OnDependents::Refuse`], after locking its relations and checking that nothing outside
/// depends on it.
///
/// # Errors
///
/// [`Error::SchemaNotFound`] (read from the catalog, not from the drop's error);
/// [`Error::Dependents`]; [`Error::Database`].
pub(crate) fn drop_in_transaction(
    conn: &mut PgConnection,
    name: &SchemaName,
    on: OnDependents,
) -> Result<()> {
    let exists = match on {
        OnDependents::Refuse => lock_relations(conn, name)?,
        OnDependents::Cascade => schema_exists(conn, name)?,
    };
    if !exists {
        return Err(Error::SchemaNotFound {
            schema: name.to_string(),
        });
    }
    if on == OnDependents::Refuse {
        let objects = outside_dependents(conn, name)?;
        if !objects.is_empty() {
            return Err(Error::Dependents {
                schema: name.to_string(),
                objects,
            });
        }
    }
    conn.batch_execute(&format!("DROP SCHEMA {} CASCADE", name.quoted()))
        .map_err(|e| Error::db(name.as_str(), e))
}
