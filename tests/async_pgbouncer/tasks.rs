//! The tasks of the async soak: what each transaction does, when it is cancelled, and what
//! a task counts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use pgschemas_diesel::AsyncTenantPool;
use rand::Rng;
use tokio::sync::Notify;

use super::{TASKS, TENANTS};
use crate::soak::driver::oracle::{
    self, Failure, Group, INSERT_SQL, Oracle, READ_BACK_SQL, READ_SQL, Tag, Tally, Written,
};

/// How long a task may take to finish after the time budget ran out.
const JOIN_GRACE: Duration = Duration::from_secs(10);
/// One transaction in this many is cancelled.
const CANCEL_ONE_IN: u32 = 16;
/// The timeouts, from the checkout's first message to past a typical end (a transaction
/// waits for one of 2 server connections behind up to 63 others; tokio's timer counts
/// milliseconds).
const TIMEOUTS_MILLIS: [u64; 8] = [1, 2, 5, 10, 20, 50, 100, 200];
/// The most scheduler turns a cancellation after the closure waits.
const MAX_TURNS: u32 = 4;

/// What the tasks share.
pub(super) struct Shared {
    pub(super) pool: AsyncTenantPool,
    pub(super) tenants: Vec<String>,
    pub(super) remaining: AtomicU64,
    pub(super) stop_at: Instant,
    /// What each task is doing, and for which tenant, to name a hung one.
    pub(super) doing: Vec<Mutex<Option<(Action, usize)>>>,
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

    fn set_doing(&self, task: usize, doing: Option<(Action, usize)>) {
        *self.doing[task]
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = doing;
    }
}

/// What a transaction does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// Reads the tenant's rows.
    Read,
    /// Writes a row and commits.
    Write,
    /// Writes a row, then the closure returns `Err`.
    WriteThenErr,
}

/// What one task (or all of them, merged) did and must find on disk.
pub(super) struct Work {
    pub(super) tally: Tally,
    /// Reads cancelled.
    pub(super) cancelled_reads: u64,
    /// Writes cancelled before their closure returned `Ok`, or after it returned `Err`:
    /// never committed.
    pub(super) uncommitted_writes: u64,
    /// Per tenant, the rows whose `COMMIT` was cancelled or failed: committed or not.
    in_doubt: Vec<Vec<i64>>,
}

impl Work {
    fn new() -> Self {
        Self {
            tally: Tally::new(TENANTS),
            cancelled_reads: 0,
            uncommitted_writes: 0,
            in_doubt: vec![Vec::new(); TENANTS],
        }
    }

    fn merge(&mut self, other: Work) {
        self.tally.merge(other.tally);
        self.cancelled_reads += other.cancelled_reads;
        self.uncommitted_writes += other.uncommitted_writes;
        for (mine, theirs) in self.in_doubt.iter_mut().zip(other.in_doubt) {
            mine.extend(theirs);
        }
    }

    /// Row `n` of tenant `t` may or may not have committed.
    fn doubt(&mut self, t: usize, n: i64) {
        self.tally.in_doubt += 1;
        self.in_doubt[t].push(n);
    }

    /// Counts the in-doubt rows that are on disk as committed.
    pub(super) fn settle_in_doubt(&mut self, oracle: &mut Oracle, tenants: &[String]) {
        for (t, rows) in self.in_doubt.iter().enumerate() {
            for &n in rows {
                match oracle.row_exists(&tenants[t], n) {
                    Ok(true) => {
                        self.tally.in_doubt_committed += 1;
                        self.tally.committed[t].push(n);
                    }
                    Ok(false) => {}
                    Err(e) => self.tally.fail(format!(
                        "cannot look up row {n} of {} directly: {e}",
                        tenants[t]
                    )),
                }
            }
        }
    }
}

/// Runs the tasks; returns what they did, merged, and what the hung ones were doing.
pub(super) async fn run_tasks(shared: &Arc<Shared>) -> (Work, Vec<String>) {
    let mut handles: Vec<_> = (0..TASKS)
        .map(|id| tokio::spawn(task(shared.clone(), id)))
        .collect();
    let deadline = tokio::time::Instant::from_std(shared.stop_at + JOIN_GRACE);
    let mut work = Work::new();
    let mut hung = Vec::new();
    for (id, handle) in handles.iter_mut().enumerate() {
        match tokio::time::timeout_at(deadline, &mut *handle).await {
            Ok(Ok(w)) => work.merge(w),
            Ok(Err(e)) => work.tally.fail(format!("task {id} failed: {e}")),
            Err(_) => {
                let doing = *shared.doing[id]
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                hung.push(format!("task {id} still running {doing:?}"));
                handle.abort();
            }
        }
    }
    (work, hung)
}

async fn task(shared: Arc<Shared>, id: usize) -> Work {
    let mut work = Work::new();
    let own = oracle::own_rows(id);
    let mut next_n = own.0;
    while shared.claim() {
        let (t, action, cancel) = pick();
        shared.set_doing(id, Some((action, t)));
        work.tally.transactions += 1;
        let who = format!(
            "task {id}, {action:?} of {}, cancelled {cancel:?}",
            shared.tenants[t]
        );
        if action == Action::Read {
            read(&shared, &mut work, &who, t, own, cancel).await;
        } else {
            write(&shared, &mut work, &who, t, next_n, action, cancel).await;
            next_n += 1;
        }
        shared.set_doing(id, None);
    }
    work
}

/// When a transaction is cancelled (its future dropped).
#[derive(Debug, Clone, Copy)]
enum Cancel {
    Never,
    /// This long after it started.
    After(Duration),
    /// After its closure ended and this many more scheduler turns (0: as soon as the
    /// transaction's future waits for `COMMIT` or `ROLLBACK`).
    AfterClosure(u32),
}

/// The next transaction's tenant, action and cancellation.
fn pick() -> (usize, Action, Cancel) {
    let mut rng = rand::rng();
    let t = rng.random_range(0..TENANTS);
    let action = match rng.random_range(0..20) {
        0..10 => Action::Read,
        10..17 => Action::Write,
        _ => Action::WriteThenErr,
    };
    let cancel = if !rng.random_ratio(1, CANCEL_ONE_IN) {
        Cancel::Never
    } else if rng.random() {
        let millis = TIMEOUTS_MILLIS[rng.random_range(0..TIMEOUTS_MILLIS.len())];
        Cancel::After(Duration::from_millis(millis))
    } else {
        Cancel::AfterClosure(rng.random_range(0..=MAX_TURNS))
    };
    (t, action, cancel)
}

/// `transaction`'s output, or `None` when `cancel` dropped it first; `closure_ended` is
/// notified by the transaction's closure.
async fn cancellable<F: Future>(
    cancel: Cancel,
    closure_ended: &Notify,
    transaction: F,
) -> Option<F::Output> {
    match cancel {
        Cancel::Never => Some(transaction.await),
        Cancel::After(budget) => tokio::time::timeout(budget, transaction).await.ok(),
        Cancel::AfterClosure(turns) => {
            let cancelled = async {
                closure_ended.notified().await;
                for _ in 0..turns {
                    tokio::task::yield_now().await;
                }
            };
            tokio::select! {
                biased;
                out = transaction => Some(out),
                () = cancelled => None,
            }
        }
    }
}

/// Reads the tenant's rows grouped by tag: one group, the tenant's, holding this task's
/// committed rows (and perhaps its in-doubt ones).
async fn read(
    shared: &Shared,
    work: &mut Work,
    who: &str,
    t: usize,
    (lo, hi): (i64, i64),
    cancel: Cancel,
) {
    let tenant = shared.tenants[t].as_str();
    let closure_ended = Notify::new();
    let transaction = shared.pool.transaction(tenant, async |conn| {
        let groups = diesel::sql_query(READ_SQL)
            .bind::<BigInt, _>(lo)
            .bind::<BigInt, _>(hi)
            .load::<Group>(conn)
            .await;
        closure_ended.notify_one();
        groups.map_err(Failure::from)
    });
    match cancellable(cancel, &closure_ended, transaction).await {
        None => work.cancelled_reads += 1,
        Some(Ok(groups)) => {
            let committed = work.tally.committed[t].len() as i64;
            let doubt = work.in_doubt[t].len() as i64;
            work.tally
                .check_read(who, tenant, &groups, (committed, committed + doubt));
        }
        Some(Err(e)) => work.tally.error(who, &e),
    }
}

/// Inserts row `n` and reads it back in one transaction that commits or returns `Err`, as
/// `action` says, unless `cancel` drops it first.
async fn write(
    shared: &Shared,
    work: &mut Work,
    who: &str,
    t: usize,
    n: i64,
    action: Action,
    cancel: Cancel,
) {
    let tenant = shared.tenants[t].as_str();
    let mut written = None;
    let mut closure_done = false;
    let closure_ended = Notify::new();
    let transaction = shared.pool.transaction(tenant, async |conn| {
        let outcome = match insert_and_read_back(conn, n).await {
            Ok(w) if action == Action::WriteThenErr => {
                written = Some(w);
                Err(Failure::Intended)
            }
            Ok(w) => {
                written = Some(w);
                closure_done = true;
                Ok(())
            }
            Err(e) => Err(e),
        };
        closure_ended.notify_one();
        outcome
    });
    let result = cancellable(cancel, &closure_ended, transaction).await;
    if let Some(w) = &written
        && !work.tally.check_written(who, tenant, n, w)
    {
        return;
    }
    match (action, result) {
        (Action::Write, Some(Ok(()))) => {
            work.tally.writes += 1;
            work.tally.committed[t].push(n);
        }
        // the closure finished: the `COMMIT` may have gone out, and landed
        (Action::Write, None) if closure_done => work.doubt(t, n),
        (Action::Write, Some(Err(e))) if closure_done => {
            work.tally.error(who, &e);
            work.doubt(t, n);
        }
        (_, None) => work.uncommitted_writes += 1,
        (Action::WriteThenErr, Some(Err(Failure::Intended))) => work.tally.rolled_back_err += 1,
        (_, Some(Err(e))) => work.tally.error(who, &e),
        (_, Some(Ok(()))) => work
            .tally
            .fail(format!("{who}: the closure's failure was not returned")),
    }
}

async fn insert_and_read_back(conn: &mut AsyncPgConnection, n: i64) -> Result<Written, Failure> {
    let tag = diesel::sql_query(INSERT_SQL)
        .bind::<BigInt, _>(n)
        .get_result::<Tag>(conn)
        .await?
        .tenant;
    let read_back = diesel::sql_query(READ_BACK_SQL)
        .bind::<BigInt, _>(n)
        .load::<Tag>(conn)
        .await?
        .into_iter()
        .map(|r| r.tenant)
        .collect();
    Ok(Written { tag, read_back })
}
