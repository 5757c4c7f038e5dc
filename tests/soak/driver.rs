//! The fault soak behind a real PgBouncer in transaction mode, shared by the integration test
//! (`tests/soak.rs`, bounded) and the benchmark runner (`bench -- soak`, long).
//!
//! Tenants `t0`, `t1`, ... each have `items(tenant, n)` whose `tenant` column defaults to the
//! schema's own name, so a row's tag says which table it landed in; `public.items` has the
//! same shape, tagged `public`, so a fall-through to the shared schema reads or writes rows
//! tagged `public`. Client threads share one `TenantPool` pointing at PgBouncer and run only
//! the transaction form: reads, committed writes, closures that write then fail, closures
//! that write then panic. A chaos thread kills PgBouncer's server backends through a direct
//! connection. Each thread knows exactly which rows it committed (`n` carries its number), so
//! every read checks the tags and its own rows' count, and a final direct look checks every
//! tenant's rows one by one.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{BigInt, Text};
use pgschemas_diesel::testing::{PgBouncer, PoolMode, url_with_database};
use pgschemas_diesel::{Config, DisableStatementCache, Error, TenantPool};
use rand::Rng;

#[path = "chaos.rs"]
mod chaos;
#[path = "oracle.rs"]
mod oracle;

pub use self::oracle::{Outcome, Tally};

use self::chaos::chaos;
use self::oracle::Oracle;

/// Rows each tenant (and `public`) starts with, `n` = 1..=SEED.
const SEED: i64 = 5;
/// A thread's rows have `n` in `[(thread + 1) << THREAD_SHIFT, (thread + 2) << THREAD_SHIFT)`.
const THREAD_SHIFT: u32 = 32;
/// The direct connections of the soak itself, which the chaos thread spares.
const ORACLE_APP: &str = "pgschemas_soak_oracle";
/// How long a thread may take to finish after the time budget ran out.
const JOIN_GRACE: Duration = Duration::from_secs(20);

/// The size of a soak run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Tenant schemas.
    pub tenants: usize,
    /// Client threads sharing the pool (one PgBouncer client connection each).
    pub threads: usize,
    /// PgBouncer's `default_pool_size`: the server connections all clients share.
    pub server_connections: u32,
    /// Transactions to run, all threads together.
    pub transactions: u64,
    /// No transaction starts after this much time.
    pub time_budget: Duration,
    /// The chaos thread kills a server backend after every this many transactions.
    pub kill_every: u64,
}

impl Settings {
    /// 8 tenants, 16 threads over 2 server connections, a kill every 50 transactions.
    pub fn new(transactions: u64, time_budget: Duration) -> Self {
        Self {
            tenants: 8,
            threads: 16,
            server_connections: 2,
            transactions,
            time_budget,
            kill_every: 50,
        }
    }
}

/// Runs a soak in the empty database `database` of the server at `server_url`.
///
/// # Panics
///
/// When the setup fails (PgBouncer, schemas, the pool); problems found while soaking are in
/// [`Outcome::failures`] instead.
pub fn run(server_url: &str, database: &str, settings: &Settings) -> Outcome {
    quiet_soak_panics();
    let direct_url = with_application_name(&url_with_database(server_url, database));
    let tenants: Vec<String> = (0..settings.tenants).map(|i| format!("t{i}")).collect();
    let mut oracle = Oracle::connect(&direct_url);
    create_schemas(oracle.conn(), &tenants);

    let bouncer = PgBouncer::start(
        server_url,
        database,
        PoolMode::Transaction,
        settings.server_connections,
    );
    // PgBouncer before 1.21 does not carry named prepared statements across transactions;
    // unnamed statements work with every version.
    let pool = TenantPool::with_builder(
        bouncer.url(),
        Config::default(),
        r2d2::Pool::builder()
            .max_size(settings.threads as u32)
            .connection_timeout(Duration::from_secs(10))
            .connection_customizer(Box::new(DisableStatementCache)),
    )
    .unwrap_or_else(|e| panic!("cannot build a pool through PgBouncer: {e}"));

    let shared = Arc::new(Shared {
        pool,
        tenants,
        oracle: Mutex::new(Oracle::connect(&direct_url)),
        remaining: AtomicU64::new(settings.transactions),
        done: AtomicU64::new(0),
        stop_at: Instant::now() + settings.time_budget,
        finished: AtomicBool::new(false),
        doing: (0..settings.threads).map(|_| Mutex::new(None)).collect(),
    });
    let started = Instant::now();
    let chaos = {
        let shared = shared.clone();
        let admin_url = server_url.to_owned();
        let (database, every) = (database.to_owned(), settings.kill_every);
        thread::spawn(move || chaos(&shared, &admin_url, &database, every))
    };
    let workers: Vec<_> = (0..settings.threads)
        .map(|id| {
            let shared = shared.clone();
            thread::spawn(move || worker(&shared, id))
        })
        .collect();

    let deadline = shared.stop_at + JOIN_GRACE;
    let mut tally = Tally::new(settings.tenants);
    let mut hung = Vec::new();
    for (id, result) in join_by(workers, deadline).into_iter().enumerate() {
        match result {
            Joined::Done(t) => tally.merge(t),
            Joined::Panicked(message) => tally.fail(format!("thread {id} panicked: {message}")),
            Joined::Hung => hung.push(format!(
                "thread {id} still running {}",
                match *lock(&shared.doing[id]) {
                    Some((action, t)) => format!("{action:?} of {}", shared.tenants[t]),
                    None => "between transactions".to_owned(),
                }
            )),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    shared.finished.store(true, Ordering::Relaxed);
    let kills = match join_by(vec![chaos], Instant::now() + JOIN_GRACE).pop() {
        Some(Joined::Done(kills)) => kills,
        Some(Joined::Panicked(message)) => {
            tally.fail(format!("chaos thread panicked: {message}"));
            0
        }
        Some(Joined::Hung) | None => {
            hung.push("chaos thread".to_owned());
            0
        }
    };
    if hung.is_empty() {
        // every thread's record is complete: the rows on disk must be exactly those
        oracle.check_all(&shared.tenants, &mut tally);
    }
    Outcome {
        settings: settings.clone(),
        seconds,
        tally,
        kills,
        hung,
    }
}

/// What the threads share.
struct Shared {
    pool: TenantPool,
    tenants: Vec<String>,
    /// A direct connection to settle commits whose outcome the client did not learn.
    oracle: Mutex<Oracle>,
    remaining: AtomicU64,
    done: AtomicU64,
    stop_at: Instant,
    finished: AtomicBool,
    /// What each client thread is doing, and for which tenant, to name a hung one.
    doing: Vec<Mutex<Option<(Action, usize)>>>,
}

impl Shared {
    /// Takes one transaction to run, unless the count or the time budget is used up.
    fn claim(&self) -> bool {
        Instant::now() < self.stop_at
            && self
                .remaining
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| r.checked_sub(1))
                .is_ok()
    }
}

/// What a transaction does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Reads the tenant's rows.
    Read,
    /// Writes a row and commits.
    Write,
    /// Writes a row, then the closure returns `Err`.
    WriteThenErr,
    /// Writes a row, then the closure panics.
    WriteThenPanic,
}

/// The payload of the panics the soak raises on purpose.
struct SoakPanic;

/// A client closure's error.
enum Failure {
    /// From the pool or the database.
    Lib(Error),
    /// The closure's own error, raised on purpose after writing.
    Intended,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Lib(e)
    }
}

impl From<DieselError> for Failure {
    fn from(e: DieselError) -> Self {
        Failure::Lib(e.into())
    }
}

#[derive(QueryableByName)]
struct Group {
    #[diesel(sql_type = Text)]
    tenant: String,
    #[diesel(sql_type = BigInt)]
    rows: i64,
    #[diesel(sql_type = BigInt)]
    own: i64,
}

#[derive(QueryableByName)]
struct Tag {
    #[diesel(sql_type = Text)]
    tenant: String,
}

/// What a write saw inside its transaction: the tag its row got, and the tags read back.
struct Written {
    tag: String,
    read_back: Vec<String>,
}

fn worker(shared: &Shared, id: usize) -> Tally {
    let mut rng = rand::rng();
    let mut tally = Tally::new(shared.tenants.len());
    let range = (
        (id as i64 + 1) << THREAD_SHIFT,
        (id as i64 + 2) << THREAD_SHIFT,
    );
    let mut next_n = range.0;
    while shared.claim() {
        let t = rng.random_range(0..shared.tenants.len());
        let action = match rng.random_range(0..20) {
            0..9 => Action::Read,
            9..15 => Action::Write,
            15..18 => Action::WriteThenErr,
            _ => Action::WriteThenPanic,
        };
        *lock(&shared.doing[id]) = Some((action, t));
        tally.transactions += 1;
        let who = format!("thread {id}, {action:?} of {}", shared.tenants[t]);
        if action == Action::Read {
            read(shared, &mut tally, &who, t, range);
        } else {
            write(shared, &mut tally, &who, t, next_n, action);
            next_n += 1;
        }
        *lock(&shared.doing[id]) = None;
        shared.done.fetch_add(1, Ordering::Relaxed);
    }
    tally
}

/// Reads the tenant's rows grouped by tag: one group, the tenant's, holding this thread's
/// committed rows exactly.
fn read(shared: &Shared, tally: &mut Tally, who: &str, t: usize, (lo, hi): (i64, i64)) {
    let tenant = shared.tenants[t].as_str();
    let result = shared.pool.transaction(tenant, |conn| {
        diesel::sql_query(
            "select tenant, count(*) as rows, count(*) filter (where n >= $1 and n < $2) as own \
             from items group by tenant order by tenant",
        )
        .bind::<BigInt, _>(lo)
        .bind::<BigInt, _>(hi)
        .load::<Group>(conn)
        .map_err(Failure::from)
    });
    let groups = match result {
        Ok(groups) => groups,
        Err(e) => return tally.error(who, &e),
    };
    tally.reads += 1;
    let expected = tally.committed[t].len() as i64;
    let mut seen_own = false;
    for g in &groups {
        if g.tenant != tenant {
            tally.wrong(
                g.rows as u64,
                format!("{who}: {} rows tagged {:?}", g.rows, g.tenant),
            );
        } else {
            seen_own = true;
            if g.own != expected || g.rows < SEED + expected {
                tally.mismatch(format!(
                    "{who}: {} rows, {} of them this thread's; expected {expected} of this \
                     thread's and at least {}",
                    g.rows,
                    g.own,
                    SEED + expected
                ));
            }
        }
    }
    if !seen_own {
        tally.mismatch(format!("{who}: no row tagged {tenant:?}"));
    }
}

/// Inserts row `n` and reads it back in one transaction that commits, returns `Err`, or
/// panics, as `action` says.
fn write(shared: &Shared, tally: &mut Tally, who: &str, t: usize, n: i64, action: Action) {
    let tenant = shared.tenants[t].as_str();
    let mut written = None;
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        shared.pool.transaction(tenant, |conn| {
            written = Some(insert_and_read_back(conn, n)?);
            match action {
                Action::WriteThenErr => Err(Failure::Intended),
                Action::WriteThenPanic => panic::panic_any(SoakPanic),
                Action::Read | Action::Write => Ok(()),
            }
        })
    }));
    if let Some(w) = &written
        && (w.tag != tenant || w.read_back != [tenant])
    {
        tally.wrong(
            1,
            format!(
                "{who}: row {n} was tagged {:?} and read back as {:?}",
                w.tag, w.read_back
            ),
        );
        // the row is not the tenant's: the final look reports where it landed
        return;
    }
    match (action, result) {
        (Action::Write, Ok(Ok(()))) => {
            tally.writes += 1;
            tally.committed[t].push(n);
        }
        (Action::Write, Ok(Err(e))) if written.is_some() => {
            // the closure finished: the error came at `COMMIT`, which may have landed
            tally.error(who, &e);
            tally.in_doubt += 1;
            match lock(&shared.oracle).row_exists(tenant, n) {
                Ok(true) => {
                    tally.in_doubt_committed += 1;
                    tally.committed[t].push(n);
                }
                Ok(false) => {}
                Err(e) => tally.fail(format!("{who}: cannot look up row {n} directly: {e}")),
            }
        }
        (Action::WriteThenErr, Ok(Err(Failure::Intended))) => tally.rolled_back_err += 1,
        (_, Ok(Err(e))) => tally.error(who, &e),
        (Action::WriteThenPanic, Err(payload)) if payload.is::<SoakPanic>() => {
            tally.rolled_back_panic += 1;
        }
        (_, Err(payload)) => tally.fail(format!("{who}: panicked: {}", panic_message(&*payload))),
        (_, Ok(Ok(()))) => tally.fail(format!("{who}: the closure's failure was not returned")),
    }
}

fn insert_and_read_back(conn: &mut PgConnection, n: i64) -> Result<Written, Failure> {
    let tag = diesel::sql_query("insert into items (n) values ($1) returning tenant")
        .bind::<BigInt, _>(n)
        .get_result::<Tag>(conn)?
        .tenant;
    let read_back = diesel::sql_query("select tenant from items where n = $1")
        .bind::<BigInt, _>(n)
        .load::<Tag>(conn)?
        .into_iter()
        .map(|r| r.tenant)
        .collect();
    Ok(Written { tag, read_back })
}

/// Whether an error is one a killed backend explains, and its name in the counts.
fn classify(e: &Failure) -> (String, bool) {
    let Failure::Lib(e) = e else {
        return ("intended error where none was due".to_owned(), false);
    };
    match e {
        Error::Pool(_) => ("pool".to_owned(), true),
        Error::Connection(_) => ("connect".to_owned(), true),
        Error::Database { source, .. } => match source {
            DieselError::DatabaseError(
                kind @ (DatabaseErrorKind::ClosedConnection
                | DatabaseErrorKind::UnableToSendCommand),
                _,
            ) => (format!("{kind:?}"), true),
            DieselError::DatabaseError(kind, _) => (format!("database {kind:?}"), false),
            other => (format!("diesel {other:?}"), false),
        },
        other => (format!("{other:?}"), false),
    }
}

fn create_schemas(conn: &mut PgConnection, tenants: &[String]) {
    let mut sql = String::new();
    for schema in tenants.iter().map(String::as_str).chain(["public"]) {
        // names are the soak's own (`t<i>`, `public`): plain identifiers
        sql.push_str(&format!(
            "create schema if not exists {schema};
             create table {schema}.items (tenant text not null default '{schema}', n bigint not null);
             create unique index on {schema}.items (n);
             insert into {schema}.items (n) select generate_series(1, {SEED});"
        ));
    }
    conn.batch_execute(&sql)
        .unwrap_or_else(|e| panic!("cannot create the soak's schemas: {e}"));
}

enum Joined<T> {
    Done(T),
    Panicked(String),
    Hung,
}

/// Joins every thread that finishes by `deadline`; the others are left running.
fn join_by<T>(handles: Vec<JoinHandle<T>>, deadline: Instant) -> Vec<Joined<T>> {
    while Instant::now() < deadline && !handles.iter().all(JoinHandle::is_finished) {
        thread::sleep(Duration::from_millis(10));
    }
    handles
        .into_iter()
        .map(|h| {
            if !h.is_finished() {
                return Joined::Hung;
            }
            match h.join() {
                Ok(v) => Joined::Done(v),
                Err(payload) => Joined::Panicked(panic_message(&*payload)),
            }
        })
        .collect()
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-text payload".to_owned()
    }
}

/// Keeps the soak's own panics off stderr; every other panic is reported as before.
fn quiet_soak_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !info.payload().is::<SoakPanic>() {
                previous(info);
            }
        }));
    });
}

fn with_application_name(url: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}application_name={ORACLE_APP}")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
