//! `max_tenants_per_connection`: a pooled connection is closed once it has served that many
//! distinct tenant schemas, in every form that sets a tenant's path (session, transaction,
//! nested switches; sync and async, on each async backend), and never without the setting.
//! Which physical connection a checkout got is read from the server (`pg_backend_pid()`), on
//! pools of size 1.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer};
use pgschemas_diesel::testing::TestDatabase;
use pgschemas_diesel::{Config, Error, TenantPool, test_database};

use crate::pool::backend_pid;

/// `n` tenants `t1` ... `tn`, each with a one-row `notes` table.
fn tenants(conn: &mut PgConnection, n: usize) {
    let sql: String = (1..=n)
        .map(|i| {
            format!(
                "create schema t{i}; create table t{i}.notes (id serial primary key, body text not null);
                 insert into t{i}.notes (body) values ('t{i}');"
            )
        })
        .collect();
    conn.batch_execute(&sql).expect("create tenants");
}

/// The configuration with `max_tenants_per_connection(limit)`.
fn config(limit: usize) -> Config {
    Config::builder()
        .max_tenants_per_connection(limit)
        .build()
        .unwrap()
}

/// A pool of one connection with `config`.
fn pool(db: &TestDatabase, config: Config) -> TenantPool {
    TenantPool::with_builder(
        db.url(),
        config,
        r2d2::Pool::builder()
            .max_size(1)
            .connection_timeout(Duration::from_secs(10)),
    )
    .expect("pool")
}

/// The only row of the path's `notes` table: which tenant the checkout was given.
fn body(conn: &mut PgConnection) -> String {
    diesel::sql_query("select body from notes")
        .load::<Body>(conn)
        .expect("select notes")
        .into_iter()
        .map(|b| b.body)
        .collect::<Vec<_>>()
        .join(",")
}

#[derive(QueryableByName)]
struct Body {
    #[diesel(sql_type = diesel::sql_types::Text)]
    body: String,
}

/// The pid a session-form checkout of `tenant` runs on, after checking it got the tenant.
fn scope_pid(pool: &TenantPool, tenant: &str) -> i32 {
    let mut scope = pool.scope(&tenant).unwrap();
    assert_eq!(body(&mut scope), tenant);
    backend_pid(&mut scope)
}

/// The pid a transaction-form checkout of `tenant` runs on, after checking it got the tenant.
fn transaction_pid(pool: &TenantPool, tenant: &str) -> i32 {
    pool.transaction(&tenant, |conn| {
        assert_eq!(body(conn), tenant);
        Ok::<_, Error>(backend_pid(conn))
    })
    .unwrap()
}

/// Whether the backend `pid` is still there, asked on `admin`.
fn alive(admin: &mut PgConnection, pid: i32) -> bool {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    diesel::sql_query("select count(*) as n from pg_stat_activity where pid = $1")
        .bind::<Integer, _>(pid)
        .get_result::<Count>(admin)
        .unwrap()
        .n
        > 0
}

/// How long a closed connection's backend may take to exit.
const EXIT_DEADLINE: Duration = Duration::from_secs(10);

/// Waits until the backend `pid` has exited: the connection was closed, not only left out of
/// the pool.
fn assert_closed(db: &TestDatabase, pid: i32) {
    let mut admin = db.connect();
    let deadline = Instant::now() + EXIT_DEADLINE;
    while alive(&mut admin, pid) {
        assert!(Instant::now() < deadline, "backend {pid} is still there");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_connection_is_closed_after_its_nth_distinct_tenant() {
    let db = test_database!();
    tenants(&mut db.connect(), 4);
    let pool = pool(&db, config(3));

    let first = backend_pid(&mut pool.get().unwrap());
    // t1, t2, t1 again, the neutral path: two distinct tenants.
    for tenant in ["t1", "t2", "t1"] {
        assert_eq!(scope_pid(&pool, tenant), first, "{tenant}");
        assert_eq!(backend_pid(&mut pool.get().unwrap()), first, "neutral");
    }
    // The third is served on the same connection, which is closed when it goes back.
    assert_eq!(scope_pid(&pool, "t3"), first, "the third tenant");
    let second = backend_pid(&mut pool.get().unwrap());
    assert_ne!(second, first, "a new connection after the third tenant");
    assert_closed(&db, first);

    // The new connection counts from zero.
    assert_eq!(scope_pid(&pool, "t4"), second);
    assert_eq!(scope_pid(&pool, "t1"), second);
    assert_eq!(scope_pid(&pool, "t4"), second);
    assert_eq!(scope_pid(&pool, "t2"), second);
    assert_ne!(backend_pid(&mut pool.get().unwrap()), second);
}

#[test]
fn nested_switches_count() {
    let db = test_database!();
    tenants(&mut db.connect(), 3);
    let pool = pool(&db, config(3));

    let mut scope = pool.scope(&"t1").unwrap();
    let first = backend_pid(&mut scope);
    {
        let mut inner = scope.nested(&"t2").unwrap();
        assert_eq!(body(&mut inner), "t2");
        let mut innermost = inner.nested(&"t1").unwrap(); // served already
        assert_eq!(body(&mut innermost), "t1");
    }
    drop(scope);
    assert_eq!(backend_pid(&mut pool.get().unwrap()), first, "two tenants");

    let mut scope = pool.get().unwrap();
    {
        let mut inner = scope.nested(&"t3").unwrap();
        assert_eq!(body(&mut inner), "t3", "the third tenant is served");
    }
    assert_eq!(backend_pid(&mut scope), first);
    assert!(!scope.is_poisoned(), "a spent connection is not poisoned");
    drop(scope);
    assert_ne!(backend_pid(&mut pool.get().unwrap()), first);
    assert_closed(&db, first);
}

#[test]
fn the_transaction_form_counts() {
    let db = test_database!();
    tenants(&mut db.connect(), 3);
    let pool = pool(&db, config(3));

    let first = transaction_pid(&pool, "t1");
    assert_eq!(transaction_pid(&pool, "t1"), first);
    assert_eq!(scope_pid(&pool, "t2"), first, "both forms count together");
    assert_eq!(transaction_pid(&pool, "t2"), first);
    assert_eq!(transaction_pid(&pool, "t3"), first, "the third tenant");
    let second = transaction_pid(&pool, "t1");
    assert_ne!(second, first);
    assert_closed(&db, first);

    // A failing closure's connection is counted and closed too.
    assert_eq!(transaction_pid(&pool, "t2"), second);
    let failed = pool.transaction(&"t3", |_| Err::<(), _>(Error::Config("fails".into())));
    assert!(failed.is_err());
    assert_ne!(scope_pid(&pool, "t1"), second);
}

#[test]
fn without_the_setting_the_connection_serves_every_tenant() {
    let db = test_database!();
    tenants(&mut db.connect(), 20);
    for config in [Config::default(), config(0)] {
        assert_eq!(config.max_tenants_per_connection(), None);
        let pool = pool(&db, config);
        let first = backend_pid(&mut pool.get().unwrap());
        for i in 1..=20 {
            let tenant = format!("t{i}");
            assert_eq!(scope_pid(&pool, &tenant), first);
            assert_eq!(transaction_pid(&pool, &tenant), first);
            let mut scope = pool.get().unwrap();
            let mut nested = scope.nested(&tenant).unwrap();
            assert_eq!(body(&mut nested), tenant);
        }
        assert_eq!(backend_pid(&mut pool.get().unwrap()), first);
    }
}

/// The server memory of the backend `conn` runs on, in bytes.
fn backend_memory(conn: &mut PgConnection) -> i64 {
    #[derive(QueryableByName)]
    struct Bytes {
        #[diesel(sql_type = BigInt)]
        bytes: i64,
    }
    diesel::sql_query("select sum(total_bytes)::bigint as bytes from pg_backend_memory_contexts")
        .get_result::<Bytes>(conn)
        .unwrap()
        .bytes
}

/// One connection serving 300 tenants' tables in turn, measured at the last one: with a
/// limit of 100 the backend serving it has seen 100 tenants, without a limit 300; its memory
/// (the catalog and relation caches) shows it.
#[test]
fn the_limit_bounds_a_backends_memory() {
    const TENANTS: usize = 300;
    let db = test_database!();
    tenants(&mut db.connect(), TENANTS);
    let mut seen = Vec::new();
    for limit in [0, 100] {
        let pool = pool(&db, config(limit));
        let mut pids = HashSet::new();
        let mut peak = 0;
        for i in 1..=TENANTS {
            let tenant = format!("t{i}");
            let mut scope = pool.scope(&tenant).unwrap();
            assert_eq!(body(&mut scope), tenant);
            pids.insert(backend_pid(&mut scope));
            peak = peak.max(backend_memory(&mut scope));
        }
        eprintln!(
            "limit {limit}: {} connections, peak backend memory {peak} bytes",
            pids.len()
        );
        let connections = TENANTS.checked_div(limit).unwrap_or(1);
        assert_eq!(pids.len(), connections, "limit {limit}");
        seen.push(peak);
    }
    let (unlimited, limited) = (seen[0], seen[1]);
    assert!(
        limited < unlimited,
        "with the limit {limited} bytes, without {unlimited}"
    );
}

#[cfg(feature = "async")]
mod async_pool {
    use diesel_async::AsyncPgConnection;
    use pgschemas_diesel::{AsyncTenantPool, Error, test_database};

    use std::time::Instant;

    use pgschemas_diesel::testing::TestDatabase;

    use super::{EXIT_DEADLINE, alive, config, tenants};
    use crate::async_pool::{Backend, backend_pid, pool_with};

    async fn body(conn: &mut AsyncPgConnection) -> String {
        use diesel_async::RunQueryDsl;
        diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>(
            "(select string_agg(body, ',') from notes)",
        ))
        .get_result(conn)
        .await
        .unwrap()
    }

    async fn scope_pid(pool: &AsyncTenantPool, tenant: &str) -> i32 {
        let mut scope = pool.scope(&tenant).await.unwrap();
        assert_eq!(body(&mut scope).await, tenant);
        backend_pid(&mut scope).await
    }

    async fn transaction_pid(pool: &AsyncTenantPool, tenant: &str) -> i32 {
        pool.transaction(&tenant, async |conn| {
            assert_eq!(body(conn).await, tenant);
            Ok::<_, Error>(backend_pid(conn).await)
        })
        .await
        .unwrap()
    }

    /// [`super::assert_closed`], letting the runtime drive the connection's shutdown.
    async fn assert_closed(db: &TestDatabase, pid: i32) {
        let mut admin = db.connect();
        let deadline = Instant::now() + EXIT_DEADLINE;
        while alive(&mut admin, pid) {
            assert!(Instant::now() < deadline, "backend {pid} is still there");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    async fn neutral_pid(pool: &AsyncTenantPool) -> i32 {
        backend_pid(&mut pool.get().await.unwrap()).await
    }

    #[tokio::test]
    async fn the_session_form_closes_the_connection_after_its_nth_distinct_tenant() {
        for &backend in Backend::ALL {
            let db = test_database!(backend.name());
            tenants(&mut db.connect(), 4);
            let pool = pool_with(db.url(), 1, backend, config(3));
            let first = neutral_pid(&pool).await;
            for tenant in ["t1", "t2", "t1"] {
                assert_eq!(
                    scope_pid(&pool, tenant).await,
                    first,
                    "{backend:?} {tenant}"
                );
                assert_eq!(neutral_pid(&pool).await, first, "{backend:?} neutral");
            }
            assert_eq!(scope_pid(&pool, "t3").await, first, "{backend:?} third");
            let second = neutral_pid(&pool).await;
            assert_ne!(second, first, "{backend:?}: a new connection");
            assert_closed(&db, first).await;
            for tenant in ["t4", "t1", "t4", "t2"] {
                assert_eq!(
                    scope_pid(&pool, tenant).await,
                    second,
                    "{backend:?} {tenant}"
                );
            }
            assert_ne!(neutral_pid(&pool).await, second, "{backend:?}");
        }
    }

    #[tokio::test]
    async fn the_transaction_form_counts() {
        for &backend in Backend::ALL {
            let db = test_database!(backend.name());
            tenants(&mut db.connect(), 3);
            let pool = pool_with(db.url(), 1, backend, config(3));
            let first = transaction_pid(&pool, "t1").await;
            assert_eq!(transaction_pid(&pool, "t1").await, first, "{backend:?}");
            assert_eq!(scope_pid(&pool, "t2").await, first, "{backend:?}");
            assert_eq!(neutral_pid(&pool).await, first, "{backend:?}");
            assert_eq!(transaction_pid(&pool, "t2").await, first, "{backend:?}");
            assert_eq!(transaction_pid(&pool, "t3").await, first, "{backend:?}");
            let second = transaction_pid(&pool, "t1").await;
            assert_ne!(second, first, "{backend:?}: a new connection");
            assert_closed(&db, first).await;

            // A failing closure's connection is counted and closed too.
            assert_eq!(transaction_pid(&pool, "t2").await, second, "{backend:?}");
            let failed = pool
                .transaction(&"t3", async |_| Err::<(), _>(Error::Config("fails".into())))
                .await;
            assert!(failed.is_err());
            assert_ne!(neutral_pid(&pool).await, second, "{backend:?}");
        }
    }

    #[tokio::test]
    async fn without_the_setting_the_connection_serves_every_tenant() {
        for &backend in Backend::ALL {
            let db = test_database!(backend.name());
            tenants(&mut db.connect(), 20);
            let pool = pool_with(db.url(), 1, backend, pgschemas_diesel::Config::default());
            let first = neutral_pid(&pool).await;
            for i in 1..=20 {
                let tenant = format!("t{i}");
                assert_eq!(scope_pid(&pool, &tenant).await, first, "{backend:?}");
                assert_eq!(transaction_pid(&pool, &tenant).await, first, "{backend:?}");
            }
            assert_eq!(neutral_pid(&pool).await, first, "{backend:?}");
        }
    }
}
