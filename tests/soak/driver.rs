//! The fault soak behind a real PgBouncer in transaction mode, shared by the integration test
//! (`tests/soak.rs`, bounded) and the benchmark runner (`bench -- soak`, long).
//!
//! The schemas, statements and checks are the `oracle`'s (shared with the async soak,
//! `tests/async_pgbouncer.rs`). Client threads share one `TenantPool` pointing at PgBouncer and run only
//! the transaction form: reads, committed writes, closures that write then fail, closures
//! that write then panic. A chaos thread kills PgBouncer's server backends through a direct
//! connection. Each thread knows exactly which rows it committed (`n` carries its number), so
//! every read checks the tags and its own rows' count, and a final direct look checks every
//! tenant's rows one by one.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use pgschemas_diesel::testing::{PgBouncer, PoolMode};
use pgschemas_diesel::{Config, DisableStatementCache, TenantPool};
use rand::Rng;

#[path = "chaos.rs"]
mod chaos;
#[path = "oracle.rs"]
pub mod oracle;

pub use self::oracle::Tally;

use self::chaos::chaos;
use self::oracle::{
    Failure, Group, INSERT_SQL, ORACLE_APP, Oracle, READ_BACK_SQL, READ_SQL, Tag, Written,
};
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
    let direct_url = oracle::direct_url(server_url, database);
    let tenants: Vec<String> = (0..settings.tenants).map(|i| format!("t{i}")).collect();
    let mut oracle = Oracle::connect(&direct_url);
    oracle.create_schemas(&tenants);

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

/// What a soak run did and found.
#[derive(Debug)]
pub struct Outcome {
    /// The run's size.
    pub settings: Settings,
    /// Wall time of the client threads.
    pub seconds: f64,
    /// Everything the client threads counted, merged.
    pub tally: Tally,
    /// Backends the chaos thread terminated.
    pub kills: u64,
    /// Threads that did not finish by the deadline, with what they were doing.
    pub hung: Vec<String>,
}

impl Outcome {
    /// Every reason this run failed: wrong rows, count mismatches, errors a killed backend
    /// cannot explain, stray panics, hung threads.
    pub fn failures(&self) -> Vec<String> {
        let mut out = self.tally.failures();
        out.extend(self.hung.iter().map(|h| format!("hung: {h}")));
        out
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        let t = &self.tally;
        write!(
            f,
            "soak: {} transactions in {:.1} s ({} threads, {} server connections, {} tenants): \
             {} reads, {} writes committed, {} rolled back by Err, {} by panic; errors {:?}; \
             {} in doubt ({} had committed); {} backends killed; {} wrong rows, {} count \
             mismatches, {} unexpected, {} hung threads",
            t.transactions,
            self.seconds,
            s.threads,
            s.server_connections,
            s.tenants,
            t.reads,
            t.writes,
            t.rolled_back_err,
            t.rolled_back_panic,
            t.errors,
            t.in_doubt,
            t.in_doubt_committed,
            self.kills,
            t.wrong_rows,
            t.count_mismatches,
            t.unexpected,
            self.hung.len(),
        )
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

fn worker(shared: &Shared, id: usize) -> Tally {
    let mut rng = rand::rng();
    let mut tally = Tally::new(shared.tenants.len());
    let range = oracle::own_rows(id);
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
        diesel::sql_query(READ_SQL)
            .bind::<BigInt, _>(lo)
            .bind::<BigInt, _>(hi)
            .load::<Group>(conn)
            .map_err(Failure::from)
    });
    match result {
        Ok(groups) => {
            let expected = tally.committed[t].len() as i64;
            tally.check_read(who, tenant, &groups, (expected, expected));
        }
        Err(e) => tally.error(who, &e),
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
        && !tally.check_written(who, tenant, n, w)
    {
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
    let tag = diesel::sql_query(INSERT_SQL)
        .bind::<BigInt, _>(n)
        .get_result::<Tag>(conn)?
        .tenant;
    let read_back = diesel::sql_query(READ_BACK_SQL)
        .bind::<BigInt, _>(n)
        .load::<Tag>(conn)?
        .into_iter()
        .map(|r| r.tenant)
        .collect();
    Ok(Written { tag, read_back })
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
