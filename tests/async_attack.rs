//! Attacks on the async pool's pipelined transaction form and on what goes back to the pool:
//! bodies that end the checkout's transaction themselves when the checkout's first part
//! (the reset) failed, a login role's defaults the reset cannot undo, PgBouncer routing a
//! body's statements after its own `COMMIT`, a body that swaps the connection it was lent,
//! transaction control statements as a body's first statement, prepared statements left by
//! another tenant, and cancellation or a killed backend between the checkout's queueing and
//! the body's first statement. What each body sees is read from the server.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use diesel::connection::SimpleConnection as _;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{
    AnsiTransactionManager, AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection,
    TransactionManager,
};
use pgschemas_diesel::testing::{PgBouncer, PoolMode, server_url};
use pgschemas_diesel::{Error, test_database};
use tokio::sync::Notify;

use crate::async_pool::{Backend, app_pool, assert_clean, clean, pool_of, seen};
use crate::isolation::{Roles, Seen, three_orders};

/// What a body sees after running `opener` (whose error it drops), when it can read at all.
async fn read_after(conn: &mut AsyncPgConnection, opener: &str) -> QueryResult<Seen> {
    let _ = conn.batch_execute(opener).await;
    seen(conn).await
}

/// Describes what a body of `tenant` read when it is anything but its own rows as `login`.
fn leak(tenant: &str, login: &str, saw: &Seen, what: &str) -> Option<String> {
    (saw.rows != Some(vec![tenant.to_owned()]) || saw.role != login).then(|| {
        format!(
            "{what}: the body of {tenant} read {:?} as {} with path {} and app.tenant '{}'",
            saw.rows, saw.role, saw.path, saw.app_tenant
        )
    })
}

/// A session-form user leaves a raw `BEGIN` open after `SET ROLE` and a custom setting; the
/// next transaction-form checkout's first part (reset, empty path) fails on it and rolls
/// back, so a body that ends the aborted transaction itself is back in that user's session:
/// its path, its role, its settings.
#[tokio::test]
async fn a_transaction_left_open_in_a_scope_never_gives_a_later_body_the_scopes_session() {
    let mut leaks = Vec::new();
    for &backend in Backend::ALL {
        let db = test_database!(backend.name());
        three_orders(&mut db.connect());
        let mut roles = Roles::new(&db);
        let (pool, login, other) = app_pool(&db, &mut roles, backend);
        for opener in [
            "rollback",
            "commit",
            "rollback; begin",
            "rollback and chain",
        ] {
            let mut scope = pool.scope(&"tb").await.unwrap();
            // the settings in a message of their own: with `begin` in one message they
            // would be part of the transaction
            scope
                .batch_execute(&format!("set role {other}; set app.tenant = 'tb'"))
                .await
                .unwrap();
            scope.batch_execute("begin").await.unwrap();
            drop(scope);
            let body_saw = RefCell::new(None);
            let result = pool
                .transaction(&"ta", async |conn| {
                    *body_saw.borrow_mut() = Some(read_after(conn, opener).await);
                    Ok::<_, Error>(())
                })
                .await;
            if let Some(Ok(saw)) = body_saw.take() {
                let what = format!(
                    "{}, `{opener}` (the transaction returned {result:?})",
                    backend.name()
                );
                leaks.extend(leak("ta", &login, &saw, &what));
            }
            assert_clean(&pool, &login, opener).await;
        }
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
}

/// The login role's own defaults put another role and another tenant's path in effect at
/// every reset (`ALTER ROLE ... SET role`, `SET search_path`): every checkout must refuse,
/// and no body may read with them.
#[tokio::test]
async fn a_role_default_the_reset_cannot_undo_never_reaches_a_body() {
    let mut leaks = Vec::new();
    for &backend in Backend::ALL {
        let db = test_database!(backend.name());
        three_orders(&mut db.connect());
        let mut roles = Roles::new(&db);
        let (pool, login, other) = app_pool(&db, &mut roles, backend);
        db.connect()
            .batch_execute(&format!(
                "alter role {login} set role = {other}; alter role {login} set search_path = tb"
            ))
            .unwrap();
        assert!(pool.scope(&"ta").await.is_err(), "the session form refuses");
        for opener in ["rollback", "rollback; begin"] {
            let body_saw = RefCell::new(None);
            let result = pool
                .transaction(&"ta", async |conn| {
                    *body_saw.borrow_mut() = Some(read_after(conn, opener).await);
                    Ok::<_, Error>(())
                })
                .await;
            if let Some(Ok(saw)) = body_saw.take() {
                let what = format!(
                    "{}, `{opener}` (the transaction returned {result:?})",
                    backend.name()
                );
                leaks.extend(leak("ta", &login, &saw, &what));
            }
        }
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
}

#[derive(QueryableByName, Debug)]
struct Row {
    #[diesel(sql_type = Text)]
    tenant: String,
    #[diesel(sql_type = Text)]
    path: String,
}

/// Behind PgBouncer in transaction mode, a body's statements after its own `COMMIT` go to
/// whichever server connection is idle: one whose session path another body of the same
/// pool set (and committed) serves them, so they read that tenant's rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_pgbouncer_a_body_after_its_own_commit_never_reaches_the_path_another_body_left() {
    let db = test_database!();
    three_orders(&mut db.connect());
    let bouncer = PgBouncer::start(&server_url(), db.name(), PoolMode::Transaction, 2);
    let pool = pool_of(bouncer.url(), 2, Backend::Deadpool);
    let (holding, committed, done) = (
        Arc::new(Notify::new()),
        Arc::new(Notify::new()),
        Arc::new(Notify::new()),
    );
    // tb's body sets its session path, holding server connection X until ta's body committed
    let tb = {
        let (pool, holding, committed, done) = (
            pool.clone(),
            Arc::clone(&holding),
            Arc::clone(&committed),
            Arc::clone(&done),
        );
        tokio::spawn(async move {
            let result = pool
                .transaction(&"tb", async |conn| {
                    conn.batch_execute("set search_path = tb").await?;
                    holding.notify_one();
                    committed.notified().await;
                    Ok::<_, Error>(())
                })
                .await;
            done.notify_one();
            result
        })
    };
    holding.notified().await;
    // ta's checkout and `COMMIT` run on server connection Y; its read, after tb committed,
    // goes to the connection PgBouncer released last, X
    let read = RefCell::new(None);
    let result = pool
        .transaction(&"ta", async |conn| {
            conn.batch_execute("commit").await?;
            committed.notify_one();
            done.notified().await;
            *read.borrow_mut() = Some(
                diesel::sql_query(
                    "select tenant, current_setting('search_path') as path from orders",
                )
                .load::<Row>(conn)
                .await,
            );
            Ok::<_, Error>(())
        })
        .await;
    tb.await.unwrap().unwrap();
    if let Some(Ok(rows)) = read.take() {
        let wrong: Vec<_> = rows
            .iter()
            .filter(|r| r.tenant != "ta")
            .map(|r| format!("{} (path {})", r.tenant, r.path))
            .collect();
        assert!(
            wrong.is_empty(),
            "after its own COMMIT, ta's body read {wrong:?} (the transaction returned {result:?})"
        );
    }
}

/// A body is lent `&mut AsyncPgConnection` and can `mem::replace` it: the pool then holds a
/// connection of the body's making (another login, or the pool's login connected to another
/// database whose `tb` holds a row of its own; with a diesel-async transaction open so that
/// the commit passes), and the body keeps the pool's own.
#[tokio::test]
async fn a_body_cannot_put_a_connection_of_its_own_into_the_pool() {
    let mut wrong = Vec::new();
    for (&backend, other_database) in Backend::ALL.iter().flat_map(|b| [(b, false), (b, true)]) {
        let db = test_database!(backend.name());
        three_orders(&mut db.connect());
        let mut roles = Roles::new(&db);
        let (pool, login, _) = app_pool(&db, &mut roles, backend);
        let other = test_database!(format!("{}_other", backend.name()));
        let foreign_url = if other_database {
            let mut conn = other.connect();
            three_orders(&mut conn);
            conn.batch_execute(&format!(
                "insert into tb.orders values ('the other database');
                 grant usage on schema ta, tb to {login};
                 grant select, insert on ta.orders, tb.orders, public.orders to {login};"
            ))
            .unwrap();
            crate::isolation::url_as(other.url(), &login)
        } else {
            db.url().to_owned()
        };
        let taken = pool
            .transaction(&"ta", async |conn| {
                let mut foreign = AsyncPgConnection::establish(&foreign_url)
                    .await
                    .map_err(|e| Error::Config(e.to_string()))?;
                AnsiTransactionManager::begin_transaction(&mut foreign).await?;
                Ok::<_, Error>(std::mem::replace(conn, foreign))
            })
            .await;
        let got = pool
            .transaction(&"tb", async |conn| seen(conn).await.map_err(Error::from))
            .await;
        drop(taken);
        let want = clean(&pool, &login, "tb", true);
        if !(got.is_err() || got.as_ref().is_ok_and(|got| *got == want)) {
            wrong.push(format!(
                "{} (other database: {other_database}): the next checkout got {got:?}",
                backend.name()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A body whose first statement ends the checkout's transaction (any transaction control
/// statement), then reads unqualified names: it finds no tenant's and no shared table, and
/// the next checkouts are clean.
#[tokio::test]
async fn a_transaction_control_statement_first_in_a_body_reaches_no_table() {
    let mut leaks = Vec::new();
    for &backend in Backend::ALL {
        let db = test_database!(backend.name());
        three_orders(&mut db.connect());
        let mut roles = Roles::new(&db);
        let (pool, login, _) = app_pool(&db, &mut roles, backend);
        assert_clean(&pool, &login, "warming up").await;
        for opener in [
            "commit",
            "rollback",
            "end",
            "abort",
            "commit and chain",
            "rollback and chain",
            "prepare transaction 'pgschemas_attack'",
            "set transaction isolation level serializable; commit",
            "release savepoint nothing; rollback",
        ] {
            let body_saw = RefCell::new(None);
            let result = pool
                .transaction(&"tb", async |conn| {
                    *body_saw.borrow_mut() = Some(read_after(conn, opener).await);
                    Ok::<_, Error>(())
                })
                .await;
            if let Some(Ok(saw)) = body_saw.take() {
                leaks.push(format!(
                    "{}, `{opener}`: read {:?} with path {} (returned {result:?})",
                    backend.name(),
                    saw.rows,
                    saw.path
                ));
            }
            assert_clean(&pool, &login, opener).await;
        }
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
}

/// A statement one tenant's body prepared (and ran often enough for a generic plan) reads
/// the next tenant's rows when the next tenant runs it, in both forms.
#[tokio::test]
async fn a_statement_another_tenant_prepared_reads_the_current_tenant() {
    #[derive(QueryableByName)]
    struct Tenant {
        #[diesel(sql_type = Text)]
        tenant: String,
    }
    async fn run(conn: &mut AsyncPgConnection) -> Result<Vec<String>, Error> {
        let rows = diesel::sql_query("execute leftover")
            .load::<Tenant>(conn)
            .await?;
        Ok(rows.into_iter().map(|r| r.tenant).collect())
    }
    for &backend in Backend::ALL {
        let db = test_database!(backend.name());
        three_orders(&mut db.connect());
        let mut roles = Roles::new(&db);
        let (pool, _, _) = app_pool(&db, &mut roles, backend);
        pool.transaction(&"tb", async |conn| {
            conn.batch_execute(
                "set plan_cache_mode = force_generic_plan; \
                 prepare leftover as select tenant from orders",
            )
            .await?;
            for _ in 0..6 {
                assert_eq!(run(conn).await?, ["tb"]);
            }
            Ok::<_, Error>(())
        })
        .await
        .unwrap();
        assert_eq!(pool.transaction(&"ta", run).await.unwrap(), ["ta"]);
        let mut scope = pool.get().await.unwrap();
        assert_eq!(run(&mut scope).await.unwrap(), ["public"]);
        drop(scope);
        let mut scope = pool.scope(&"ta").await.unwrap();
        assert_eq!(run(&mut scope).await.unwrap(), ["ta"]);
    }
}

/// Backends of `login` with a transaction open (idle in one, or aborted).
fn open_transactions_of(db: &pgschemas_diesel::testing::TestDatabase, login: &str) -> i64 {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let query = diesel::sql_query(
        "select count(*) as n from pg_stat_activity \
         where usename = $1 and state like 'idle in transaction%'",
    )
    .bind::<Text, _>(login);
    diesel::RunQueryDsl::get_result::<Count>(query, &mut db.connect())
        .unwrap()
        .n
}

/// The transaction form's future dropped exactly after the checkout was queued and the body
/// started, before its first statement; and the backend killed at that point. Nothing is
/// written, no transaction stays open on the server, the next checkouts are clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_or_killed_between_the_queued_checkout_and_the_first_statement() {
    for &backend in Backend::ALL {
        let db = test_database!(backend.name());
        three_orders(&mut db.connect());
        let mut roles = Roles::new(&db);
        let (pool, login, _) = app_pool(&db, &mut roles, backend);
        db.connect()
            .batch_execute(&format!(
                "create table ta.writes (n int); grant insert on ta.writes to {login}"
            ))
            .unwrap();
        assert_clean(&pool, &login, "warming up").await;

        let entered = AtomicBool::new(false);
        for _ in 0..3 {
            entered.store(false, Ordering::SeqCst);
            tokio::select! {
                biased;
                () = tokio::task::yield_now() => {}
                r = pool.transaction(&"ta", async |conn| {
                    entered.store(true, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    conn.batch_execute("insert into ta.writes values (1)").await?;
                    Ok::<_, Error>(())
                }) => panic!("the transaction was not cancelled: {r:?}"),
            }
            assert!(
                AtomicBool::load(&entered, Ordering::SeqCst),
                "{}: cancelled before the body started",
                backend.name()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert_eq!(open_transactions_of(&db, &login), 0, "{}", backend.name());
            assert_clean(&pool, &login, "cancelled before the first statement").await;
        }

        let killed = pool
            .transaction(&"ta", async |conn| {
                db.connect()
                    .batch_execute(&format!(
                        "select pg_terminate_backend(pid, 5000) from pg_stat_activity \
                         where usename = '{login}'"
                    ))
                    .unwrap();
                conn.batch_execute("insert into ta.writes values (2)")
                    .await?;
                Ok::<_, Error>(())
            })
            .await;
        assert!(killed.is_err(), "{}: {killed:?}", backend.name());
        assert_clean(&pool, &login, "killed before the first statement").await;

        let rows: i64 = diesel::RunQueryDsl::get_result(
            diesel::select(diesel::dsl::sql::<BigInt>(
                "(select count(*) from ta.writes)",
            )),
            &mut db.connect(),
        )
        .unwrap();
        assert_eq!(rows, 0, "{}", backend.name());
    }
}
