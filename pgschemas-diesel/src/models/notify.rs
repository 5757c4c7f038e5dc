//! Route-change notifications: triggers that `NOTIFY` when tenants or domains change, so
//! that route caches can reload.

use diesel::PgConnection;
use diesel::connection::SimpleConnection;

use crate::catalog::Catalog;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::name::quote_ident;

/// The channel on which tenant and domain changes are announced; the payload is the changed
/// table's name. [`SHARED_MIGRATIONS`](super::SHARED_MIGRATIONS) installs the triggers for
/// the default models; [`install_route_triggers`] does it for your own.
///
/// ```
/// assert_eq!(pgschemas_diesel::models::ROUTES_CHANNEL, "pgschemas_routes");
/// ```
pub const ROUTES_CHANNEL: &str = "pgschemas_routes";

/// The SQL that makes changes to `schema.table` notify [`ROUTES_CHANNEL`]: a
/// `pgschemas_notify_routes()` trigger function in `schema` and a statement-level
/// `AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE` trigger on the table. Idempotent
/// (`CREATE OR REPLACE`); put it in one of your shared migrations.
///
/// ```
/// let sql = pgschemas_diesel::models::route_trigger_sql("public", "orgs");
/// assert!(sql.contains(r#"ON "public"."orgs""#));
/// assert!(sql.contains("pg_notify('pgschemas_routes', TG_TABLE_NAME)"));
/// ```
pub fn route_trigger_sql(schema: &str, table: &str) -> String {
    let schema = quote_ident(schema);
    let table = quote_ident(table);
    format!(
        "CREATE OR REPLACE FUNCTION {schema}.pgschemas_notify_routes() RETURNS trigger \
         LANGUAGE plpgsql AS $pgschemas$ \
         BEGIN PERFORM pg_catalog.pg_notify('{ROUTES_CHANNEL}', TG_TABLE_NAME); RETURN NULL; END \
         $pgschemas$;\n\
         CREATE OR REPLACE TRIGGER pgschemas_notify_routes \
         AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {schema}.{table} \
         FOR EACH STATEMENT EXECUTE FUNCTION {schema}.pgschemas_notify_routes();\n"
    )
}

/// Installs the [`route_trigger_sql`] of every table the catalog
/// [watches](Catalog::watched_tables) (unqualified tables in `config`'s shared schema), in one
/// round trip.
///
/// # Errors
///
/// [`Error::Database`] (a missing table, or no right to create triggers on it).
///
/// ```
/// # let db = pgschemas_diesel::doctest_setup::database().models(); let database_url = db.url();
/// use diesel::{Connection, PgConnection, RunQueryDsl};
/// use pgschemas_diesel::models::install_route_triggers;
///
/// let mut conn = PgConnection::establish(database_url)?;
/// let config = pgschemas_diesel::Config::default();
/// install_route_triggers(&mut conn, &config, &pgschemas_diesel::models::default_catalog())?;
///
/// diesel::sql_query("LISTEN pgschemas_routes").execute(&mut conn)?;
/// diesel::sql_query("DELETE FROM public.domains").execute(&mut conn)?;
/// let changed = conn.notifications_iter().next().ok_or("no notification")??;
/// assert_eq!((changed.channel.as_str(), changed.payload.as_str()), ("pgschemas_routes", "domains"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn install_route_triggers(
    conn: &mut PgConnection,
    config: &Config,
    catalog: &dyn Catalog,
) -> Result<()> {
    let tables = catalog.watched_tables(config.shared_schema());
    let sql: String = tables
        .iter()
        .map(|(schema, table)| route_trigger_sql(schema, table))
        .collect();
    conn.batch_execute(&sql).map_err(|e| Error::Database {
        schema: tables.first().map(|(s, _)| s.clone()),
        source: e,
    })
}
