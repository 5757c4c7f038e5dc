//! The chaos thread: kills PgBouncer's server backends through a direct connection.

use std::sync::atomic::Ordering;
use std::thread;
use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use rand::Rng;

use super::{ORACLE_APP, Shared};

/// Kills one of PgBouncer's server backends (sometimes all of them) after every `every`
/// transactions, until the clients are finished; returns how many it killed.
pub(super) fn chaos(shared: &Shared, admin_url: &str, database: &str, every: u64) -> u64 {
    let mut rng = rand::rng();
    let mut conn = None;
    let mut kills = 0;
    let mut next = every;
    while !shared.finished.load(Ordering::Relaxed) {
        if shared.done.load(Ordering::Relaxed) < next {
            thread::sleep(Duration::from_millis(1));
            continue;
        }
        let c = match &mut conn {
            Some(c) => c,
            None => conn.insert(
                PgConnection::establish(admin_url)
                    .unwrap_or_else(|e| panic!("chaos cannot connect: {e}")),
            ),
        };
        let limit: i64 = if rng.random_ratio(1, 4) { 1_000 } else { 1 };
        match kill(c, database, limit) {
            Ok(0) => thread::sleep(Duration::from_millis(1)),
            Ok(k) => {
                kills += k;
                next += every;
            }
            Err(e) => panic!("chaos cannot kill backends: {e}"),
        }
    }
    kills
}

/// Terminates up to `limit` randomly chosen backends of `database` other than the soak's own.
fn kill(conn: &mut PgConnection, database: &str, limit: i64) -> QueryResult<u64> {
    #[derive(QueryableByName)]
    struct Killed {
        #[diesel(sql_type = BigInt)]
        killed: i64,
    }
    let k = diesel::sql_query(
        "select count(*) filter (where pg_terminate_backend(pid)) as killed from ( \
           select pid from pg_stat_activity \
           where datname = $1 and backend_type = 'client backend' and state is not null \
             and application_name <> $2 and pid <> pg_backend_pid() \
           order by random() limit $3) s",
    )
    .bind::<Text, _>(database)
    .bind::<Text, _>(ORACLE_APP)
    .bind::<BigInt, _>(limit)
    .get_result::<Killed>(conn)?;
    Ok(k.killed as u64)
}
