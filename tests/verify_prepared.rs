//! `verify_prepared_statements` on the async transaction form, without per-tenant roles: the
//! body travels with the checkout, so the proof's answer is known only after it. A connection
//! holding a statement prepared with SQL before the checkout is refused and closed, nothing of
//! the body commits, and the next transaction is served; a body failing on its own keeps its
//! error (and, unless it prepared with SQL itself, its connection); a connection killed while
//! the failure is read is closed, with the body's error.

use diesel::connection::SimpleConnection as _;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use pgschemas_diesel::testing::TestDatabase;
use pgschemas_diesel::{AsyncTenantPool, Config, Error, SessionProblem, test_database};

use crate::async_pool::{Backend, pool_with};

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn tenants(conn: &mut PgConnection) {
    conn.batch_execute(
        "create schema a; create table a.notes (id int primary key, body text not null);
         create schema b; create table b.notes (id int primary key, body text not null);
         insert into b.notes values (1, 'existing');",
    )
    .unwrap();
}

fn count(url: &str, sql: &str) -> i64 {
    let mut c = PgConnection::establish(url).unwrap();
    diesel::RunQueryDsl::get_result::<N>(diesel::sql_query(sql), &mut c)
        .unwrap()
        .n
}

async fn pid(conn: &mut AsyncPgConnection) -> Result<i32, Error> {
    Ok(diesel::sql_query("select pg_backend_pid() as pid")
        .get_result::<Pid>(conn)
        .await?
        .pid)
}

fn verifying() -> Config {
    Config::builder()
        .verify_prepared_statements(true)
        .build()
        .unwrap()
}

async fn pid_of(pool: &AsyncTenantPool, t: &str) -> i32 {
    pool.transaction(&t, async |c| pid(c).await).await.unwrap()
}

/// A verifying pool of one connection on `db` (its tenants made first), and that
/// connection's backend pid.
async fn verifying_pool(db: &TestDatabase, backend: Backend) -> (AsyncTenantPool, i32) {
    tenants(&mut db.connect());
    let pool = pool_with(db.url(), 1, backend, verifying());
    let pid = pid_of(&pool, "a").await;
    (pool, pid)
}

/// `sql` (one statement, extended protocol) in a transaction of tenant b.
async fn run_in_b(pool: &AsyncTenantPool, sql: &'static str) -> Result<(), Error> {
    pool.transaction(&"b", async |c| {
        diesel::sql_query(sql).execute(c).await?;
        Ok::<_, Error>(())
    })
    .await
}

/// a's body prepares a statement with SQL and commits: it stays on the connection, for the
/// next user's checkout.
async fn plant(pool: &AsyncTenantPool) {
    pool.transaction(&"a", async |c| {
        c.batch_execute("PREPARE evil AS SELECT 1").await?;
        Ok::<_, Error>(())
    })
    .await
    .expect("a's own PREPARE commits");
}

fn is_prepared_refusal(r: &Result<(), Error>) -> bool {
    matches!(
        r,
        Err(Error::SessionState {
            reason: SessionProblem::StatementPreparedWithSql,
            ..
        })
    )
}

/// a's body PREPAREs with SQL and commits; b's next transaction on the connection is refused
/// (closed, nothing committed), and b's one after that is served on a new connection.
#[tokio::test]
async fn a_statement_prepared_before_the_checkout_refuses_it_and_closes_the_connection() {
    for &backend in Backend::ALL {
        let db = test_database!(backend.name());
        let (pool, p0) = verifying_pool(&db, backend).await;
        plant(&pool).await;
        let r = run_in_b(&pool, "insert into notes values (2, 'b2')").await;
        assert!(is_prepared_refusal(&r), "{}: {r:?}", backend.name());
        let n = count(db.url(), "select count(*) as n from b.notes where id = 2");
        assert_eq!(
            n,
            0,
            "{}: nothing of the refused body committed",
            backend.name()
        );
        let p1 = pid_of(&pool, "b").await;
        assert_ne!(p0, p1, "{}: the connection was closed", backend.name());
    }
}

/// A body that fails on its own (a unique violation, or an error of its own making): its
/// error, and the connection is kept.
#[tokio::test]
async fn a_body_failing_on_its_own_keeps_its_error_and_its_connection() {
    for &backend in Backend::ALL {
        let db = test_database!(backend.name());
        let (pool, p0) = verifying_pool(&db, backend).await;
        let r = run_in_b(&pool, "insert into notes values (1, 'dup')").await;
        assert!(is_unique_violation(&r), "{}: {r:?}", backend.name());
        let r = pool
            .transaction(&"b", async |_c| {
                Err::<(), _>(Error::NoCurrentTenant { wanted_by: "app" })
            })
            .await;
        assert!(matches!(r, Err(Error::NoCurrentTenant { .. })), "{r:?}");
        assert_eq!(p0, pid_of(&pool, "b").await, "{}", backend.name());
    }
}

/// A body that PREPAREs with SQL itself and then fails on its own: the body's error (the
/// proof had passed), and the connection, which holds the body's statement, is closed now
/// rather than refused at the next user's checkout.
#[tokio::test]
async fn a_body_that_prepares_and_fails_keeps_its_error_and_loses_the_connection() {
    for &backend in Backend::ALL {
        let db = test_database!(backend.name());
        let (pool, p0) = verifying_pool(&db, backend).await;
        let r = pool
            .transaction(&"b", async |c| {
                c.batch_execute("PREPARE mine AS SELECT 1").await?;
                diesel::sql_query("insert into notes values (1, 'dup')")
                    .execute(c)
                    .await?;
                Ok::<_, Error>(())
            })
            .await;
        assert!(is_unique_violation(&r), "{}: {r:?}", backend.name());
        let p1 = pid_of(&pool, "b").await;
        assert_ne!(p0, p1, "{}: closed", backend.name());
    }
}

/// A planted statement, and a body that ends the aborted transaction itself (`ROLLBACK`) and
/// returns `Ok`: the refusal, and the connection is closed; the next transaction is served.
#[tokio::test]
async fn a_body_ending_a_refused_transaction_itself_still_loses_the_connection() {
    for &backend in Backend::ALL {
        let db = test_database!(backend.name());
        let (pool, p0) = verifying_pool(&db, backend).await;
        plant(&pool).await;
        let r = pool
            .transaction(&"b", async |c| {
                let _ = c.batch_execute("ROLLBACK").await;
                Ok::<_, Error>(())
            })
            .await;
        assert!(is_prepared_refusal(&r), "{}: {r:?}", backend.name());
        let r = run_in_b(&pool, "select 1").await;
        assert!(r.is_ok(), "{}: the next transaction: {r:?}", backend.name());
        assert_ne!(p0, pid_of(&pool, "b").await, "{}", backend.name());
    }
}

/// A body that fails on its own, and its backend killed before the rollback: never the
/// prepared-statement refusal; the connection is closed and the next transaction served.
/// (Killed from another connection while the body waits, so no lock of a shared catalog holds
/// up the server's other sessions.)
#[tokio::test]
async fn a_backend_killed_after_a_body_s_failure_is_no_prepared_statement_refusal() {
    for &backend in Backend::ALL {
        let db = test_database!(backend.name());
        let (pool, p0) = verifying_pool(&db, backend).await;
        let mut killer = db.connect();
        let r = pool
            .transaction(&"b", async |c| {
                let e = diesel::sql_query("insert into notes values (1, 'dup')")
                    .execute(c)
                    .await;
                diesel::RunQueryDsl::execute(
                    diesel::sql_query(format!("select pg_terminate_backend({p0}, 5000)")),
                    &mut killer,
                )
                .expect("kill");
                e?;
                Ok::<_, Error>(())
            })
            .await;
        assert!(r.is_err(), "{}", backend.name());
        assert!(!is_prepared_refusal(&r), "{}: {r:?}", backend.name());
        assert_ne!(p0, pid_of(&pool, "b").await, "{}", backend.name());
    }
}

/// A planted statement, and bodies that end the refused transaction themselves and go on:
/// one that begins a transaction of its own and writes commits nothing (the refusal); one
/// that also forges the checkout's stamp and fails gets its own error; either way the
/// connection is closed and the next transaction served.
#[tokio::test]
async fn a_body_beginning_its_own_transaction_after_a_refusal_commits_nothing() {
    for &backend in Backend::ALL {
        for body in [
            "ROLLBACK; BEGIN; insert into b.notes values (3, 'own transaction')",
            "ROLLBACK; SET pgschemas_diesel.checkout_at = '0'; insert into b.notes values (1, 'dup')",
        ] {
            let db = test_database!(backend.name());
            let (pool, p0) = verifying_pool(&db, backend).await;
            plant(&pool).await;
            let r = pool
                .transaction(&"b", async |c| {
                    c.batch_execute(body).await?;
                    Ok::<_, Error>(())
                })
                .await;
            assert!(r.is_err(), "{}, `{body}`", backend.name());
            let n = count(db.url(), "select count(*) as n from b.notes where id = 3");
            assert_eq!(n, 0, "{}, `{body}`: committed", backend.name());
            let next = run_in_b(&pool, "select 1").await;
            assert!(next.is_ok(), "{}, `{body}`: next {next:?}", backend.name());
            assert_ne!(p0, pid_of(&pool, "b").await, "{}, `{body}`", backend.name());
        }
    }
}

/// A body that prepares with SQL and resets its session (`RESET ALL`, which clears the
/// checkout's stamp) commits: the commit's proof reads the server's clock, not a setting.
#[tokio::test]
async fn a_body_that_prepares_and_resets_its_session_commits() {
    for &backend in Backend::ALL {
        let db = test_database!(backend.name());
        let (pool, _) = verifying_pool(&db, backend).await;
        let r = pool
            .transaction(&"b", async |c| {
                c.batch_execute("PREPARE mine AS SELECT 1; RESET ALL")
                    .await?;
                diesel::sql_query("insert into b.notes values (4, 'legit')")
                    .execute(c)
                    .await?;
                Ok::<_, Error>(())
            })
            .await;
        assert!(r.is_ok(), "{}: {r:?}", backend.name());
        let n = count(db.url(), "select count(*) as n from b.notes where id = 4");
        assert_eq!(n, 1, "{}", backend.name());
    }
}

fn is_unique_violation(r: &Result<(), Error>) -> bool {
    matches!(
        r,
        Err(Error::Database {
            source: diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ),
            ..
        })
    )
}
