//! `TenantPool` and `TenantScope`: no leak between checkouts (invariant 1) and no redundant
//! round trips (invariant 6), against a real server, with a pool of size 1 so that every
//! checkout reuses the same physical connection unless it was discarded.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use diesel::connection::{Instrumentation, InstrumentationEvent, SimpleConnection};
use diesel::prelude::*;
use diesel::sql_types::Integer;
use pgschemas_diesel::testing::TestDatabase;
use pgschemas_diesel::{Config, Error, SchemaConnection, TenantPool, test_database};

use crate::activation::two_tenants;

diesel::table! {
    notes (id) {
        id -> Integer,
        body -> Text,
    }
}

fn pool(db: &TestDatabase, size: u32) -> TenantPool {
    let mut conn = db.connect();
    two_tenants(&mut conn);
    TenantPool::with_builder(
        db.url(),
        Config::default(),
        r2d2::Pool::builder()
            .max_size(size)
            .connection_timeout(Duration::from_secs(10)),
    )
    .expect("pool")
}

pub(crate) fn backend_pid(conn: &mut PgConnection) -> i32 {
    #[derive(QueryableByName)]
    struct Pid {
        #[diesel(sql_type = Integer)]
        pid: i32,
    }
    diesel::sql_query("select pg_backend_pid() as pid")
        .get_result::<Pid>(conn)
        .expect("pid")
        .pid
}

fn bodies(conn: &mut PgConnection) -> Vec<String> {
    notes::table
        .select(notes::body)
        .order(notes::body)
        .load(conn)
        .expect("select notes")
}

/// Counts statements sent on a connection: all of them, and those that set the path.
#[derive(Clone, Default)]
struct Counter {
    all: Arc<AtomicUsize>,
    path: Arc<AtomicUsize>,
}

impl Counter {
    fn install(&self, conn: &mut PgConnection) {
        let c = self.clone();
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::StartQuery { query, .. } = event {
                let sql = query.to_string();
                // r2d2's checkout ping is not ours.
                if !sql.starts_with("SELECT 1 ") && sql != "SELECT 1" {
                    c.all.fetch_add(1, Ordering::SeqCst);
                }
                if sql.contains("search_path") {
                    c.path.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
    }

    fn take(&self) -> (usize, usize) {
        (
            self.all.swap(0, Ordering::SeqCst),
            self.path.swap(0, Ordering::SeqCst),
        )
    }
}

// Make sure a closure counter is an `Instrumentation` (compile-time check).
fn _assert_instrumentation<T: Instrumentation>(_: T) {}

#[test]
fn plain_checkout_after_a_scope_has_the_neutral_path() {
    let db = test_database!();
    let pool = pool(&db, 1);
    let mut scope = pool.scope(&"t1").unwrap();
    let pid = backend_pid(&mut scope);
    assert_eq!(bodies(&mut scope), ["t1"]);
    drop(scope);

    let mut conn = pool.get().unwrap();
    assert_eq!(backend_pid(&mut conn), pid, "same physical connection");
    assert_eq!(conn.search_path().unwrap(), "\"public\", pg_temp");
    assert!(
        notes::table.count().get_result::<i64>(&mut *conn).is_err(),
        "public has no notes table: the tenant's path must not survive"
    );
}

#[test]
fn a_panic_inside_a_scope_discards_the_connection() {
    let db = test_database!();
    let pool = pool(&db, 1);
    let pid = backend_pid(&mut pool.get().unwrap());

    let p = pool.clone();
    let result = std::thread::spawn(move || {
        let mut scope = p.scope(&"t1").unwrap();
        assert_eq!(bodies(&mut scope), ["t1"]);
        panic!("boom inside the scope");
    })
    .join();
    assert!(result.is_err());

    let mut conn = pool.get().unwrap();
    assert_ne!(backend_pid(&mut conn), pid, "the connection was discarded");
    assert_eq!(conn.search_path().unwrap(), "\"public\", pg_temp");
}

#[test]
fn a_backend_killed_during_a_scope_is_replaced() {
    let db = test_database!();
    let pool = pool(&db, 1);
    let mut admin = db.connect();

    let mut scope = pool.scope(&"t2").unwrap();
    let pid = backend_pid(&mut scope);
    diesel::sql_query(format!("select pg_terminate_backend({pid})"))
        .execute(&mut admin)
        .unwrap();
    assert!(notes::table.count().get_result::<i64>(&mut *scope).is_err());
    drop(scope);

    let mut conn = pool.get().unwrap();
    assert_ne!(backend_pid(&mut conn), pid);
    assert_eq!(conn.search_path().unwrap(), "\"public\", pg_temp");
    drop(conn);
    let mut again = pool.scope(&"t2").unwrap();
    assert_eq!(bodies(&mut again), ["t2"]);
}

#[test]
fn a_failed_restore_discards_the_connection() {
    let db = test_database!();
    let pool = pool(&db, 1);

    let mut scope = pool.scope(&"t1").unwrap();
    let pid = backend_pid(&mut scope);
    let mut inner = scope.nested(&"t2").unwrap();
    assert_eq!(bodies(&mut inner), ["t2"]);
    // A raw transaction behind Diesel's back, left aborted: the restore must fail.
    assert!(inner.batch_execute("BEGIN; SELECT 1/0").is_err());
    let err = inner.finish().unwrap_err();
    assert!(err.to_string().contains("t1"), "{err}");
    assert!(scope.is_poisoned());
    drop(scope);

    let mut conn = pool.get().unwrap();
    assert_ne!(backend_pid(&mut conn), pid, "never reused");
    assert_eq!(conn.search_path().unwrap(), "\"public\", pg_temp");
}

#[test]
fn nested_scopes_restore_the_outer_path() {
    let db = test_database!();
    let pool = pool(&db, 1);
    let mut scope = pool.scope(&"t1").unwrap();
    {
        let mut inner = scope.nested(&"t2").unwrap();
        assert_eq!(inner.schema().as_str(), "t2");
        assert_eq!(bodies(&mut inner), ["t2"]);
        {
            let mut neutral = inner.nested(&"public").unwrap();
            assert_eq!(neutral.search_path().unwrap(), "\"public\", pg_temp");
        }
        assert_eq!(bodies(&mut inner), ["t2"]);
    }
    assert_eq!(bodies(&mut scope), ["t1"]);
    assert_eq!(scope.search_path().unwrap(), "\"t1\", \"public\", pg_temp");
    // A failed nested switch leaves the outer path in place.
    assert!(matches!(
        scope.nested(&"missing"),
        Err(Error::SchemaNotFound { .. })
    ));
    assert_eq!(bodies(&mut scope), ["t1"]);
    drop(scope);
    assert_eq!(
        pool.get().unwrap().search_path().unwrap(),
        "\"public\", pg_temp"
    );
}

#[test]
fn every_checkout_sends_exactly_one_statement() {
    let db = test_database!();
    let pool = pool(&db, 1);
    let counter = Counter::default();
    {
        let mut conn = pool.get().unwrap();
        counter.install(&mut conn);
    }
    counter.take();

    let expect = |what: &str, (all, path): (usize, usize), want: usize| {
        assert_eq!(path, want, "{what}: path statements");
        assert_eq!(all, want, "{what}: statements of any kind");
    };

    drop(pool.scope(&"t1").unwrap());
    expect("first switch to t1", counter.take(), 1);
    // The same tenant again: the proof is never skipped, and it is the only statement.
    for _ in 0..5 {
        drop(pool.scope(&"t1").unwrap());
    }
    expect("t1 again", counter.take(), 5);
    drop(pool.scope(&"t2").unwrap());
    expect("switch to t2", counter.take(), 1);
    drop(pool.get().unwrap());
    expect("back to neutral", counter.take(), 1);

    // A transaction-scoped checkout: reset, proof, BEGIN and SET LOCAL in one message, then
    // COMMIT.
    pool.transaction(&"t1", |_| Ok::<_, Error>(())).unwrap();
    let (all, path) = counter.take();
    assert_eq!(
        (all, path),
        (2, 1),
        "checkout with BEGIN + SET LOCAL, COMMIT"
    );
}

#[test]
fn a_rolled_back_set_is_not_trusted() {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    let db = test_database!();
    let pool = pool(&db, 1);

    let mut scope = pool.scope(&"t1").unwrap();
    AnsiTransactionManager::begin_transaction(&mut *scope).unwrap();
    let inner = scope.nested(&"t2").unwrap();
    // Leave the nested scope without restoring: the path is t2 inside the transaction...
    std::mem::forget(inner);
    assert_eq!(bodies(&mut scope), ["t2"]);
    // ...and the rollback undoes that SET: the session is back on t1.
    AnsiTransactionManager::rollback_transaction(&mut *scope).unwrap();
    assert_eq!(scope.search_path().unwrap(), "\"t1\", \"public\", pg_temp");
    drop(scope);

    // A pool that believed the connection was on t2 would send nothing and serve t1's rows.
    let mut again = pool.scope(&"t2").unwrap();
    assert_eq!(bodies(&mut again), ["t2"]);
}

#[test]
fn a_cached_prepared_statement_follows_tenant_switches() {
    let db = test_database!();
    let pool = pool(&db, 1);
    for round in 0..3 {
        for tenant in ["t1", "t2"] {
            let mut scope = pool.scope(&tenant).unwrap();
            // The same DSL query is prepared once and cached per connection.
            let got: Vec<String> = notes::table
                .filter(notes::id.eq(1))
                .select(notes::body)
                .load(&mut *scope)
                .unwrap();
            assert_eq!(got, [tenant], "round {round}");
        }
    }
}

#[test]
fn a_missing_schema_is_an_error_and_the_pool_stays_usable() {
    let db = test_database!();
    let pool = pool(&db, 1);
    let pid = backend_pid(&mut pool.get().unwrap());
    let err = pool.scope(&"missing").unwrap_err();
    assert!(matches!(&err, Error::SchemaNotFound { schema } if schema == "missing"));
    let err = pool
        .transaction(&"missing", |_| Ok::<_, Error>(()))
        .unwrap_err();
    assert!(matches!(&err, Error::SchemaNotFound { schema } if schema == "missing"));
    let mut conn = pool.scope(&"t1").unwrap();
    assert_eq!(backend_pid(&mut conn), pid, "the connection was kept");
    assert_eq!(bodies(&mut conn), ["t1"]);
}

#[test]
fn transaction_form_commits_rolls_back_and_leaves_nothing() {
    let db = test_database!();
    let pool = pool(&db, 1);
    let n = pool
        .transaction(&"t1", |conn| {
            diesel::insert_into(notes::table)
                .values(notes::body.eq("t1-b"))
                .execute(conn)
                .map_err(Error::from)
        })
        .unwrap();
    assert_eq!(n, 1);
    let err = pool
        .transaction(&"t1", |conn| {
            diesel::insert_into(notes::table)
                .values(notes::body.eq("lost"))
                .execute(conn)?;
            Err::<(), Error>(Error::Config("veto".into()))
        })
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)));
    assert_eq!(bodies(&mut pool.scope(&"t1").unwrap()), ["t1", "t1-b"]);
    assert_eq!(
        pool.get().unwrap().search_path().unwrap(),
        "\"public\", pg_temp"
    );

    // A panic inside the closure rolls back and the connection is discarded.
    let p = pool.clone();
    let r = std::thread::spawn(move || {
        p.transaction(&"t1", |conn| {
            diesel::insert_into(notes::table)
                .values(notes::body.eq("panic"))
                .execute(conn)
                .unwrap();
            panic!("boom");
            #[allow(unreachable_code)]
            Ok::<(), Error>(())
        })
    })
    .join();
    assert!(r.is_err());
    assert_eq!(bodies(&mut pool.scope(&"t1").unwrap()), ["t1", "t1-b"]);
}

#[test]
fn concurrent_scopes_see_only_their_tenant() {
    let db = test_database!();
    let pool = pool(&db, 3);
    let threads: Vec<_> = (0..6)
        .map(|i| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                for j in 0..200 {
                    let tenant = if (i + j) % 2 == 0 { "t1" } else { "t2" };
                    if j % 3 == 0 {
                        let got = pool
                            .transaction(&tenant, |c| Ok::<_, Error>(bodies(c)))
                            .unwrap();
                        assert_eq!(got, [tenant]);
                    } else if j % 7 == 0 {
                        let mut conn = pool.get().unwrap();
                        assert_eq!(conn.search_path().unwrap(), "\"public\", pg_temp");
                    } else {
                        let mut scope = pool.scope(&tenant).unwrap();
                        assert_eq!(bodies(&mut scope), [tenant]);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("worker");
    }
}

/// A PostgreSQL enum that lives in the shared schema, declared with its schema so that
/// Diesel's per-connection type cache is right whatever the path (the enum trap).
#[derive(diesel::sql_types::SqlType, diesel::query_builder::QueryId)]
#[diesel(postgres_type(name = "mood", schema = "public"))]
pub struct MoodType;

#[derive(diesel_derive_enum::DbEnum, Debug, Clone, Copy, PartialEq)]
#[db_enum(existing_type_path = "crate::pool::MoodType")]
pub enum Mood {
    Happy,
    Sad,
}

diesel::table! {
    use diesel::sql_types::*;
    use super::MoodType;
    feelings (id) {
        id -> Integer,
        mood -> MoodType,
    }
}

#[test]
fn an_enum_in_the_shared_schema_works_across_switches() {
    let db = test_database!();
    let mut admin = db.connect();
    admin
        .batch_execute(
            "create type public.mood as enum ('happy', 'sad');
             create schema a; create table a.feelings (id serial primary key, mood public.mood not null);
             create schema b; create table b.feelings (id serial primary key, mood public.mood not null);",
        )
        .unwrap();
    let pool = TenantPool::with_builder(
        db.url(),
        Config::default(),
        r2d2::Pool::builder().max_size(1),
    )
    .unwrap();
    for round in 0..2 {
        for (tenant, mood) in [("a", Mood::Happy), ("b", Mood::Sad)] {
            let mut scope = pool.scope(&tenant).unwrap();
            diesel::insert_into(feelings::table)
                .values(feelings::mood.eq(mood))
                .execute(&mut *scope)
                .unwrap_or_else(|e| panic!("insert in {tenant}, round {round}: {e}"));
            let n: i64 = feelings::table
                .filter(feelings::mood.eq(mood))
                .count()
                .get_result(&mut *scope)
                .unwrap_or_else(|e| panic!("filter in {tenant}, round {round}: {e}"));
            assert_eq!(n, round + 1);
        }
    }
}

diesel::table! {
    shadowed (v) {
        v -> Text,
    }
}

/// Setting the same path again at every checkout does not invalidate Diesel's cached plans:
/// PostgreSQL re-plans a cached statement only when the path's schemas differ from the ones
/// it was planned under. Observable here because a plan made before `s1.shadowed` existed
/// keeps reading `public.shadowed` until the path really changes.
#[test]
fn setting_the_same_path_again_keeps_cached_plans() {
    let db = test_database!();
    let mut admin = db.connect();
    admin
        .batch_execute(
            "create schema s1; create schema s2;
             create table public.shadowed (v text); insert into public.shadowed values ('public');",
        )
        .unwrap();
    let pool = TenantPool::with_builder(
        db.url(),
        Config::default(),
        r2d2::Pool::builder().max_size(1),
    )
    .unwrap();
    let read = |tenant: &str| -> Vec<String> {
        let mut scope = pool.scope(&tenant).unwrap();
        shadowed::table
            .select(shadowed::v)
            .load(&mut *scope)
            .unwrap()
    };
    assert_eq!(read("s1"), ["public"]);
    admin
        .batch_execute("create table s1.shadowed (v text); insert into s1.shadowed values ('s1');")
        .unwrap();
    // Same path at the next checkout: the cached plan is kept (it still reads public's).
    assert_eq!(read("s1"), ["public"], "the plan was not invalidated");
    // Another path in between: the plan is made again, and finds s1's table.
    assert_eq!(read("s2"), ["public"]);
    assert_eq!(read("s1"), ["s1"]);
}
