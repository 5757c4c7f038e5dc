//! The async transaction form behind a real PgBouncer in transaction pooling mode: 64 tokio
//! tasks share one `AsyncTenantPool` whose connections all go through 2 server connections,
//! and run 11,000 transactions in 8 tenants (reads, committed writes, closures that write
//! then return `Err`), one in 16 cancelled: by a short `timeout` from its start, or a few
//! scheduler turns after its closure ended (during `COMMIT` or `ROLLBACK`). Every read sees
//! only its tenant's rows and exactly the rows its task committed there; a final direct look
//! finds every tenant's committed rows and no other.
//!
//! A write cancelled after its closure finished may or may not have committed (the `COMMIT`
//! may have gone out): it is in doubt until every server connection is gone, then settled by
//! the direct look. The schemas, statements and checks are the sync soak's
//! (`soak::driver::oracle`).

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;
use pgschemas_diesel::testing::{PgBouncer, PoolMode, TestDatabase, server_url};
use pgschemas_diesel::{AsyncTenantPool, Config, test_database};

use crate::soak::driver::oracle::{self, Failure, ORACLE_APP, Oracle, READ_BACK_SQL, Tag};

mod tasks;

use self::tasks::{Shared, run_tasks};

const TASKS: usize = 64;
const SERVER_CONNECTIONS: u32 = 2;
const TENANTS: usize = 8;
/// Transactions started, all tasks together; the cancelled ones are on top of the 10,000
/// that must run to the end.
const TRANSACTIONS: u64 = 11_000;
const COMPLETED_AT_LEAST: u64 = 10_000;
/// No transaction starts after this much time.
const TIME_BUDGET: Duration = Duration::from_secs(50);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_form_behind_pgbouncer_leaves_no_wrong_row_under_cancellation() {
    let db = test_database!();
    let (mut oracle, tenants, bouncer, pool) = setup(&db);
    let shared = Arc::new(Shared {
        pool,
        tenants: tenants.clone(),
        remaining: AtomicU64::new(TRANSACTIONS),
        stop_at: Instant::now() + TIME_BUDGET,
        doing: (0..TASKS).map(|_| Mutex::new(None)).collect(),
    });

    let started = Instant::now();
    let (mut work, hung) = run_tasks(&shared).await;
    let seconds = started.elapsed().as_secs_f64();
    assert!(hung.is_empty(), "hung tasks: {hung:?}");

    // Once PgBouncer and its server connections are gone, no cancelled `COMMIT` can still
    // land: the in-doubt writes are settled for good.
    drop(shared);
    drop(bouncer);
    wait_until_only_the_oracle_is_connected(&db);
    work.settle_in_doubt(&mut oracle, &tenants);
    oracle.check_all(&tenants, &mut work.tally);

    let t = &work.tally;
    let report = format!(
        "async soak: {} transactions in {seconds:.1} s ({TASKS} tasks, {SERVER_CONNECTIONS} \
         server connections, {TENANTS} tenants): {} reads, {} writes committed, {} rolled back \
         by Err; cancelled: {} reads, {} writes before their `COMMIT`, {} during it (in \
         doubt, {} had committed); errors {:?}; {} wrong rows, {} count mismatches, {} \
         unexpected",
        t.transactions,
        t.reads,
        t.writes,
        t.rolled_back_err,
        work.cancelled_reads,
        work.uncommitted_writes,
        t.in_doubt,
        t.in_doubt_committed,
        t.errors,
        t.wrong_rows,
        t.count_mismatches,
        t.unexpected,
    );
    println!("{report}");
    let failures = t.failures();
    assert!(failures.is_empty(), "{report}\n{}", failures.join("\n"));
    // no backend is killed here: every error is the pool's or PgBouncer's fault
    assert!(t.errors.is_empty(), "{report}");
    let completed = t.reads + t.writes + t.rolled_back_err;
    assert!(
        completed >= COMPLETED_AT_LEAST,
        "too few ran to the end: {report}"
    );
    // the run did what it is for: every kind of transaction ran, and cancellations hit
    assert!(
        t.reads > 0 && t.writes > 0 && t.rolled_back_err > 0,
        "{report}"
    );
    assert!(
        work.cancelled_reads > 0 && work.uncommitted_writes > 0 && t.in_doubt > 0,
        "{report}"
    );
}

/// Connections made all at once through PgBouncer each come up and run a transaction: the
/// settings diesel-async makes on a new connection are prepared statements, whose parse and
/// execution PgBouncer may send to different server connections unless they share a
/// transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_made_at_once_behind_pgbouncer_all_come_up() {
    let db = test_database!();
    let (_oracle, tenants, _bouncer, pool) = setup(&db);
    let handles: Vec<_> = (0..TASKS)
        .map(|task| {
            let (pool, tenant) = (pool.clone(), tenants[task % TENANTS].clone());
            tokio::spawn(async move {
                pool.transaction(&tenant, async |conn| {
                    diesel::sql_query(READ_BACK_SQL)
                        .bind::<BigInt, _>(1)
                        .load::<Tag>(conn)
                        .await
                        .map_err(Failure::from)
                })
                .await
                .map(|tags| {
                    (
                        tenant,
                        tags.into_iter().map(|t| t.tenant).collect::<Vec<_>>(),
                    )
                })
            })
        })
        .collect();
    let mut failed = Vec::new();
    for handle in handles {
        match handle.await.unwrap() {
            Ok((tenant, tags)) => assert_eq!(tags, [tenant]),
            Err(Failure::Lib(e)) => failed.push(format!("{e:?}")),
            Err(Failure::Intended) => unreachable!("the closure raises no error of its own"),
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {TASKS} first checkouts failed, e.g. {}",
        failed.len(),
        failed[0]
    );
}

/// The soak's schemas in `db`, a PgBouncer in front of it, and an empty pool through it.
fn setup(db: &TestDatabase) -> (Oracle, Vec<String>, PgBouncer, AsyncTenantPool) {
    let tenants: Vec<String> = (0..TENANTS).map(|i| format!("t{i}")).collect();
    let mut oracle = Oracle::connect(&oracle::direct_url(&server_url(), db.name()));
    oracle.create_schemas(&tenants);
    let bouncer = PgBouncer::start(
        &server_url(),
        db.name(),
        PoolMode::Transaction,
        SERVER_CONNECTIONS,
    );
    let deadpool = AsyncTenantPool::builder(bouncer.url())
        .max_size(TASKS)
        .build()
        .unwrap();
    let pool = AsyncTenantPool::from_deadpool(deadpool, Config::default());
    (oracle, tenants, bouncer, pool)
}

/// Waits until the only connections to `db` left are the soak's own (PgBouncer's server
/// connections end when it does).
fn wait_until_only_the_oracle_is_connected(db: &TestDatabase) {
    #[derive(QueryableByName)]
    struct Others {
        #[diesel(sql_type = BigInt)]
        others: i64,
    }
    let mut conn = db.connect();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let query = diesel::sql_query(
            "select count(*) as others from pg_stat_activity \
             where datname = $1 and backend_type = 'client backend' \
               and application_name <> $2 and pid <> pg_backend_pid()",
        )
        .bind::<Text, _>(db.name())
        .bind::<Text, _>(ORACLE_APP);
        // a sync diesel connection
        let others = diesel::RunQueryDsl::get_result::<Others>(query, &mut conn)
            .unwrap()
            .others;
        if others == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{others} server connections outlived PgBouncer"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
