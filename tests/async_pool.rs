//! The async pool against the sync pool's attack matrix (`isolation`), in the session and the
//! transaction forms on a pool of size 1; cancellation at every await point; and many tasks
//! over a small pool. What each checkout sees is read from the server.

use std::time::Duration;

use diesel::connection::SimpleConnection as _;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use pgschemas_diesel::{AsyncTenantPool, Config, Error, test_database};
use rand::Rng;

use crate::isolation::{
    self, Roles, SAVEPOINT_PROBE, SEEN_SQL, Seen, attacks, three_orders, url_as,
};

pub(crate) async fn seen(conn: &mut AsyncPgConnection) -> QueryResult<Seen> {
    let seen = diesel::sql_query(SEEN_SQL).get_result::<Seen>(conn).await?;
    let in_transaction = conn.batch_execute(SAVEPOINT_PROBE).await.is_ok();
    Ok(Seen {
        in_transaction,
        ..seen
    })
}

/// The session state every checkout of `tenant` must report, logged in as `login`.
pub(crate) fn clean(
    pool: &AsyncTenantPool,
    login: &str,
    tenant: &str,
    in_transaction: bool,
) -> Seen {
    let path = pool.config().search_path(&tenant).unwrap();
    isolation::clean(path.as_sql_value(), login, tenant, in_transaction)
}

/// The next checkouts of `ta`, `tb` and the neutral path, in both forms, each see exactly
/// their own rows and a clean session.
pub(crate) async fn assert_clean(pool: &AsyncTenantPool, login: &str, after: &str) {
    for tenant in ["ta", "tb", "public"] {
        let mut scope = pool
            .scope(&tenant)
            .await
            .unwrap_or_else(|e| panic!("after `{after}`: scope of {tenant}: {e}"));
        let got = seen(&mut scope).await.unwrap();
        assert_eq!(
            got,
            clean(pool, login, tenant, false),
            "after `{after}`: session form"
        );
        drop(scope);
        let got = pool
            .transaction(&tenant, async |conn| seen(conn).await.map_err(Error::from))
            .await
            .unwrap_or_else(|e| panic!("after `{after}`: transaction of {tenant}: {e}"));
        // The transaction form's statement runs inside the pool's own `BEGIN`.
        assert_eq!(
            got,
            clean(pool, login, tenant, true),
            "after `{after}`: transaction form"
        );
    }
}

/// A non-superuser login with what an application needs on `ta`, `tb` and `public`, allowed
/// to `SET ROLE` to a second role, and an async pool of size 1 connecting as it.
pub(crate) fn app_pool(
    db: &pgschemas_diesel::testing::TestDatabase,
    roles: &mut Roles,
    backend: Backend,
) -> (AsyncTenantPool, String, String) {
    let login = roles.create("async_app", "login");
    let other = roles.create("async_other", "");
    db.connect()
        .batch_execute(&format!(
            "grant usage on schema ta, tb to {login};
             grant select, insert on ta.orders, tb.orders, public.orders to {login};
             grant usage on sequence public.ids to {login};
             grant {other} to {login}; grant usage on schema tb to {other}; grant select on tb.orders to {other};"
        ))
        .unwrap();
    (pool_of(&url_as(db.url(), &login), 1, backend), login, other)
}

/// The pools an `AsyncTenantPool` sits on: every test here runs on each.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Deadpool,
    #[cfg(feature = "bb8")]
    Bb8,
}

impl Backend {
    pub const ALL: &[Self] = &[
        Self::Deadpool,
        #[cfg(feature = "bb8")]
        Self::Bb8,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Deadpool => "deadpool",
            #[cfg(feature = "bb8")]
            Self::Bb8 => "bb8",
        }
    }
}

pub fn pool_of(url: &str, size: usize, backend: Backend) -> AsyncTenantPool {
    pool_with(url, size, backend, Config::default())
}

/// [`pool_of`] with `config`.
pub fn pool_with(url: &str, size: usize, backend: Backend, config: Config) -> AsyncTenantPool {
    match backend {
        Backend::Deadpool => {
            let deadpool = AsyncTenantPool::builder(url)
                .max_size(size)
                .build()
                .unwrap();
            AsyncTenantPool::from_deadpool(deadpool, config)
        }
        #[cfg(feature = "bb8")]
        Backend::Bb8 => {
            let bb8 = bb8::Pool::builder()
                .max_size(u32::try_from(size).unwrap())
                .connection_timeout(Duration::from_secs(10))
                .build_unchecked(pgschemas_diesel::AsyncManager::new(url));
            AsyncTenantPool::from_bb8(bb8, config)
        }
    }
}

#[tokio::test]
async fn no_attack_inside_a_scope_reaches_the_next_checkout() {
    for &backend in Backend::ALL {
        let db = test_database!(backend.name());
        three_orders(&mut db.connect());
        let mut roles = Roles::new(&db);
        let (pool, login, other) = app_pool(&db, &mut roles, backend);
        for (attack, sql) in attacks(&other) {
            let mut scope = pool.scope(&"ta").await.unwrap();
            let _ = scope.batch_execute(&sql).await;
            drop(scope);
            assert_clean(&pool, &login, &attack).await;
        }
    }
}

#[tokio::test]
async fn no_attack_inside_a_transaction_reaches_the_next_checkout() {
    for &backend in Backend::ALL {
        let db = test_database!(backend.name());
        three_orders(&mut db.connect());
        let mut roles = Roles::new(&db);
        let (pool, login, other) = app_pool(&db, &mut roles, backend);
        for (attack, sql) in attacks(&other) {
            for commit in [true, false] {
                let _ = pool
                    .transaction(&"ta", async |conn| {
                        conn.batch_execute(&sql).await?;
                        if commit {
                            Ok(())
                        } else {
                            Err(Error::Config("the closure fails".into()))
                        }
                    })
                    .await;
                assert_clean(&pool, &login, &format!("{attack}, commit {commit}")).await;
            }
        }
    }
}

#[tokio::test]
async fn set_session_authorization_does_not_survive_as_superuser() {
    for &backend in Backend::ALL {
        let db = test_database!(backend.name());
        three_orders(&mut db.connect());
        let mut roles = Roles::new(&db);
        let other = roles.create("async_other", "");
        let pool = pool_of(db.url(), 1, backend);
        let mut scope = pool.scope(&"ta").await.unwrap();
        let login = seen(&mut scope).await.unwrap().role;
        scope
            .batch_execute(&format!("set session authorization {other}"))
            .await
            .unwrap();
        drop(scope);
        assert_clean(&pool, &login, "SET SESSION AUTHORIZATION as superuser").await;
    }
}

#[tokio::test]
async fn dropped_and_unusable_schemas_are_refused_in_both_forms() {
    for &backend in Backend::ALL {
        let db = test_database!(backend.name());
        three_orders(&mut db.connect());
        let mut roles = Roles::new(&db);
        let (pool, login, other) = app_pool(&db, &mut roles, backend);
        assert_clean(&pool, &login, "warming up").await;
        db.connect()
            .batch_execute(&format!(
                "revoke usage on schema tb from {login}, {other}; drop schema ta cascade"
            ))
            .unwrap();
        assert!(matches!(
            pool.scope(&"ta").await,
            Err(Error::SchemaNotFound { .. })
        ));
        assert!(matches!(
            pool.scope(&"tb").await,
            Err(Error::SchemaNotUsable { .. })
        ));
        let tx = pool.transaction(&"ta", async |_| Ok::<_, Error>(())).await;
        assert!(matches!(tx, Err(Error::SchemaNotFound { .. })));
        let tx = pool.transaction(&"tb", async |_| Ok::<_, Error>(())).await;
        assert!(matches!(tx, Err(Error::SchemaNotUsable { .. })));
        // The refusals kept the connection, sound.
        let mut scope = pool.get().await.unwrap();
        assert_eq!(
            seen(&mut scope).await.unwrap(),
            clean(&pool, &login, "public", false)
        );
    }
}

pub(crate) async fn backend_pid(conn: &mut AsyncPgConnection) -> i32 {
    diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>(
        "pg_backend_pid()",
    ))
    .get_result(conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_killed_backend_is_replaced_in_both_forms() {
    for &backend in Backend::ALL {
        let db = test_database!(backend.name());
        three_orders(&mut db.connect());
        let mut roles = Roles::new(&db);
        let (pool, login, _) = app_pool(&db, &mut roles, backend);
        for form in ["idle", "in use"] {
            let mut scope = pool.scope(&"ta").await.unwrap();
            let pid = backend_pid(&mut scope).await;
            if form == "idle" {
                drop(scope);
                db.connect()
                    .batch_execute(&format!("select pg_terminate_backend({pid})"))
                    .unwrap();
            } else {
                db.connect()
                    .batch_execute(&format!("select pg_terminate_backend({pid})"))
                    .unwrap();
                assert!(seen(&mut scope).await.is_err());
                drop(scope);
            }
            assert_clean(&pool, &login, &format!("a backend killed {form}")).await;
        }
        let pid = pool
            .transaction(&"ta", async |conn| Ok::<_, Error>(backend_pid(conn).await))
            .await
            .unwrap();
        db.connect()
            .batch_execute(&format!("select pg_terminate_backend({pid})"))
            .unwrap();
        assert_clean(&pool, &login, "a backend killed after a transaction").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_a_task_discards_its_connection() {
    for &backend in Backend::ALL {
        let db = test_database!(backend.name());
        three_orders(&mut db.connect());
        let mut roles = Roles::new(&db);
        let (pool, login, _) = app_pool(&db, &mut roles, backend);
        let p = pool.clone();
        let task = tokio::spawn(async move {
            let mut scope = p.scope(&"ta").await.unwrap();
            scope
                .batch_execute("set search_path = tb; begin")
                .await
                .unwrap();
            panic!("the handler panics inside a scope");
        });
        assert!(task.await.unwrap_err().is_panic());
        assert_clean(&pool, &login, "a panic inside a scope").await;
        let p = pool.clone();
        let task = tokio::spawn(async move {
            p.transaction(&"ta", async |conn| {
                conn.batch_execute("set search_path = tb").await?;
                if conn.batch_execute("select 1").await.is_ok() {
                    panic!("the handler panics inside a transaction");
                }
                Ok::<_, Error>(())
            })
            .await
        });
        assert!(task.await.unwrap_err().is_panic());
        assert_clean(&pool, &login, "a panic inside a transaction").await;
    }
}

/// A transaction that changes the session's path, writes, and takes a while in between:
/// every await point of the pool and of the body is a place to be cancelled.
async fn busy_transaction(pool: &AsyncTenantPool) -> Result<(), Error> {
    pool.transaction(&"ta", async |conn| {
        conn.batch_execute("set search_path = tb; set app.tenant = 'tb'")
            .await?;
        tokio::time::sleep(Duration::from_millis(1)).await;
        conn.batch_execute("insert into ta.writes values (1)")
            .await?;
        conn.batch_execute("select pg_advisory_lock(7); set search_path = public")
            .await?;
        Ok(())
    })
    .await
}

/// A session-form use that changes the path half-way, in several statements.
async fn busy_scope(pool: &AsyncTenantPool) -> Result<(), Error> {
    let mut scope = pool.scope(&"ta").await?;
    scope.batch_execute("set search_path = tb").await?;
    tokio::time::sleep(Duration::from_millis(1)).await;
    scope
        .batch_execute("begin; set local search_path = public")
        .await?;
    scope.batch_execute("commit; set app.tenant = 'tb'").await?;
    Ok(())
}

/// Cancels `op` with growing budgets until it completes; after each cancellation the same
/// pool of 1 hands out exactly each tenant's own session.
async fn cancel_at_every_point<F, Fut>(
    pool: &AsyncTenantPool,
    login: &str,
    name: &str,
    op: F,
) -> usize
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), Error>>,
{
    let mut cancelled = 0;
    let mut budget = 0u64;
    loop {
        match tokio::time::timeout(Duration::from_micros(budget), op()).await {
            Ok(done) => {
                done.unwrap();
                break;
            }
            Err(_) => cancelled += 1,
        }
        assert_clean(pool, login, &format!("{name} cancelled after {budget}µs")).await;
        budget = budget * 3 / 2 + 50;
    }
    assert_clean(pool, login, &format!("{name} completed")).await;
    cancelled
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_at_every_await_point_leaves_nothing_in_the_pool() {
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
        let n = cancel_at_every_point(&pool, &login, "transaction form", || {
            busy_transaction(&pool)
        })
        .await;
        assert!(n > 0, "the transaction form was never cancelled");
        // A run cancelled before its `COMMIT` was sent wrote nothing (one cancelled while the
        // `COMMIT` was on its way may have committed): never more rows than runs.
        let rows = diesel::select(diesel::dsl::sql::<BigInt>(
            "(select count(*) from ta.writes)",
        ));
        let rows: i64 = diesel::RunQueryDsl::get_result(rows, &mut db.connect()).unwrap();
        assert!(
            (1..=n as i64 + 1).contains(&rows),
            "{rows} rows from {n} cancelled runs"
        );
        let n = cancel_at_every_point(&pool, &login, "session form", || busy_scope(&pool)).await;
        assert!(n > 0, "the session form was never cancelled");
        // `select!` against a ready branch: the checkout and the body are dropped before they run.
        for _ in 0..3 {
            tokio::select! {
                biased;
                () = std::future::ready(()) => {}
                r = busy_transaction(&pool) => r.unwrap(),
            }
            tokio::select! {
                biased;
                () = std::future::ready(()) => {}
                r = busy_scope(&pool) => r.unwrap(),
            }
            assert_clean(&pool, &login, "select! against a ready branch").await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_over_a_small_pool_each_read_their_own_tenant() {
    for &backend in Backend::ALL {
        let db = test_database!(backend.name());
        let mut conn = db.connect();
        let tenants: Vec<String> = (0..8).map(|i| format!("t{i}")).collect();
        for t in &tenants {
            conn.batch_execute(&format!("create schema {t}; create table {t}.orders (tenant text); insert into {t}.orders values ('{t}')"))
                .unwrap();
        }
        let pool = pool_of(db.url(), 4, backend);
        let mut tasks = Vec::new();
        for task in 0..64 {
            let pool = pool.clone();
            let tenants = tenants.clone();
            tasks.push(tokio::spawn(async move {
                for step in 0..10 {
                    let tenant = &tenants[rand::rng().random_range(0..tenants.len())];
                    let rows: Vec<String> = if (task + step) % 2 == 0 {
                        let mut scope = pool.scope(tenant).await.unwrap();
                        diesel::sql_query("select tenant from orders")
                            .load::<Tenant>(&mut *scope)
                            .await
                            .unwrap()
                            .into_iter()
                            .map(|r| r.tenant)
                            .collect()
                    } else {
                        pool.transaction(tenant, async |conn| {
                            diesel::sql_query("select tenant from orders")
                                .load::<Tenant>(conn)
                                .await
                                .map_err(Error::from)
                        })
                        .await
                        .unwrap()
                        .into_iter()
                        .map(|r| r.tenant)
                        .collect()
                    };
                    assert!(rows.iter().all(|r| r == tenant), "{tenant} read {rows:?}");
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    }
}

#[derive(QueryableByName)]
struct Tenant {
    #[diesel(sql_type = Text)]
    tenant: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_whose_idle_backends_were_all_killed_still_hands_out_connections() {
    for &backend in Backend::ALL {
        let db = test_database!(backend.name());
        three_orders(&mut db.connect());
        let mut roles = Roles::new(&db);
        let (one, login, _) = app_pool(&db, &mut roles, backend);
        drop(one);
        let pool = pool_of(&url_as(db.url(), &login), 4, backend);
        let mut scopes = Vec::new();
        for _ in 0..4 {
            scopes.push(pool.scope(&"ta").await.unwrap());
        }
        let mut pids = Vec::new();
        for scope in &mut scopes {
            pids.push(backend_pid(scope).await);
        }
        drop(scopes);
        for pid in pids {
            db.connect()
                .batch_execute(&format!("select pg_terminate_backend({pid}, 5000)"))
                .unwrap();
        }
        // Let the connections' driver tasks read the end of their sockets.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut scope = pool
            .scope(&"tb")
            .await
            .unwrap_or_else(|e| panic!("the killed idle connections were not replaced: {e}"));
        assert_eq!(
            seen(&mut scope).await.unwrap(),
            clean(&pool, &login, "tb", false)
        );
    }
}
