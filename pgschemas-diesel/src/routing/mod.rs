//! Request routing: (host, path) or a header value -> the tenant whose schema serves it.
//!
//! Framework-free. [`Routes`] is an immutable, indexed snapshot of every route;
//! [`RouteTable`] holds the current snapshot, answers from memory and swaps in a new one when
//! PostgreSQL notifies a change. The `axum` feature adds a tower layer on top.

mod host;
mod live;
mod table;

#[cfg(feature = "axum")]
pub mod layer;

#[cfg(test)]
mod tests;

use diesel::PgConnection;
use diesel::connection::SimpleConnection;

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::name::{SchemaName, quote_ident};

pub use live::{ErrorHook, RouteOptions, RouteTable, RouteTableStatus};
pub use table::{Redirect, Resolution, Route, Routes, Suspended, Via};

/// The channel route changes are announced on (`NOTIFY pgschemas_routes, '<table>'`).
pub const ROUTES_CHANNEL: &str = "pgschemas_routes";

/// The SQL that makes changes to `schema.table` notify [`ROUTES_CHANNEL`]: a trigger
/// function `pgschemas_notify_routes()` in `schema` (created or replaced) and a
/// statement-level trigger on the table for `INSERT`, `UPDATE`, `DELETE` and `TRUNCATE`.
/// Idempotent: run it in a shared migration for each table your
/// [`Catalog::watched_tables`] lists.
///
/// # Errors
///
/// [`Error::InvalidSchemaName`] for a bad schema name; [`Error::Config`] for a table name
/// that is empty, longer than 63 bytes or contains a NUL.
///
/// ```
/// let sql = pgschemas_diesel::route_trigger_sql("public", "customer_domains")?;
/// assert!(sql.contains(r#"ON "public"."customer_domains""#));
/// assert!(sql.contains("pg_notify('pgschemas_routes', TG_TABLE_NAME)"));
/// # Ok::<(), pgschemas_diesel::Error>(())
/// ```
pub fn route_trigger_sql(schema: &str, table: &str) -> Result<String> {
    let schema = SchemaName::new(schema)?;
    if table.is_empty() || table.len() > crate::name::MAX_SCHEMA_NAME_LEN || table.contains('\0') {
        return Err(Error::Config(format!(
            "{table:?} is not a table name (1 to 63 bytes, no NUL)"
        )));
    }
    let s = schema.quoted();
    let t = quote_ident(table);
    Ok(format!(
        "CREATE OR REPLACE FUNCTION {s}.pgschemas_notify_routes() RETURNS trigger LANGUAGE plpgsql AS $pgschemas$
BEGIN
    PERFORM pg_notify('{ROUTES_CHANNEL}', TG_TABLE_NAME);
    RETURN NULL;
END
$pgschemas$;
DROP TRIGGER IF EXISTS pgschemas_notify_routes ON {s}.{t};
CREATE TRIGGER pgschemas_notify_routes AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {s}.{t}
    FOR EACH STATEMENT EXECUTE FUNCTION {s}.pgschemas_notify_routes();
"
    ))
}

/// Installs the notify trigger of [`route_trigger_sql`] on every table of
/// `catalog.watched_tables()`.
///
/// # Errors
///
/// As [`route_trigger_sql`], and [`Error::Database`] (e.g. a missing table).
///
/// ```no_run
/// use diesel::{Connection, PgConnection};
/// use pgschemas_diesel::{NoTenants, install_route_triggers};
///
/// let mut conn = PgConnection::establish("postgres://postgres@127.0.0.1/app")?;
/// install_route_triggers(&mut conn, &NoTenants)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn install_route_triggers(conn: &mut PgConnection, catalog: &dyn Catalog) -> Result<()> {
    for (schema, table) in catalog.watched_tables() {
        let sql = route_trigger_sql(&schema, &table)?;
        conn.batch_execute(&sql)
            .map_err(|e| Error::db(schema.as_str(), e))?;
    }
    Ok(())
}
