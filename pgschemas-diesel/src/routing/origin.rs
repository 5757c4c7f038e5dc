//! Reading snapshots from the database: the connection, one consistent read of the
//! catalog, the listening connection and the trigger check.

use std::sync::Arc;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Integer, Text};

use crate::activate::set_path;
use crate::catalog::{Catalog, CatalogRows};
use crate::config::Config;
use crate::error::{Error, Result};

use super::ROUTES_CHANNEL;
use super::options::RouteOptions;
use super::snapshot::Routes;

/// Where snapshots come from.
pub(super) struct Origin {
    pub(super) url: String,
    pub(super) config: Config,
    pub(super) catalog: Arc<dyn Catalog>,
    pub(super) options: RouteOptions,
}

/// A connection with the neutral search path.
pub(super) fn connect(source: &Origin) -> Result<PgConnection> {
    let mut conn = PgConnection::establish(&source.url)?;
    set_path(&mut conn, source.config.neutral_path())?;
    Ok(conn)
}

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

/// A connection listening on the routes channel, and its backend pid.
pub(super) fn listen(source: &Origin) -> Result<(PgConnection, i32)> {
    let mut conn = connect(source)?;
    conn.batch_execute(&format!("LISTEN {ROUTES_CHANNEL}"))?;
    let pid = diesel::sql_query("SELECT pg_backend_pid() AS pid").get_result::<Pid>(&mut conn)?;
    Ok((conn, pid.pid))
}

/// One consistent read of the catalog (one repeatable-read snapshot), built into routes; a
/// bad row is left out, never a reason to fail.
pub(super) fn read_routes(conn: &mut PgConnection, source: &Origin) -> Result<Routes> {
    let rows = conn
        .build_transaction()
        .read_only()
        .repeatable_read()
        .run(|c| CatalogRows::read(&*source.catalog, c))?;
    Ok(Routes::from_rows(&source.config, &rows))
}

#[derive(QueryableByName)]
struct TriggerState {
    #[diesel(sql_type = Bool)]
    exists: bool,
    #[diesel(sql_type = Bool)]
    notifies: bool,
}

/// Every watched table exists and has an enabled trigger that notifies the routes channel.
pub(super) fn check_triggers(
    conn: &mut PgConnection,
    config: &Config,
    catalog: &dyn Catalog,
) -> Result<()> {
    for (schema, table) in catalog.watched_tables(config.shared_schema()) {
        let qualified = format!(
            "{}.{}",
            crate::name::quote_ident(&schema),
            crate::name::quote_ident(&table)
        );
        let check = diesel::sql_query(
            "SELECT to_regclass($1) IS NOT NULL AS exists, EXISTS (
                 SELECT 1 FROM pg_catalog.pg_trigger t
                 JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
                 WHERE t.tgrelid = to_regclass($1) AND NOT t.tgisinternal
                   AND t.tgenabled <> 'D' AND p.prosrc LIKE '%' || $2 || '%'
             ) AS notifies",
        )
        .bind::<Text, _>(&qualified)
        .bind::<Text, _>(ROUTES_CHANNEL)
        .get_result::<TriggerState>(conn)?;
        if !check.exists {
            return Err(Error::WatchedTableMissing { table: qualified });
        }
        if !check.notifies {
            return Err(Error::RouteTriggerMissing {
                table: qualified,
                channel: ROUTES_CHANNEL,
            });
        }
    }
    Ok(())
}
