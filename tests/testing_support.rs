//! The test support itself: per-test databases and the PgBouncer harness.

use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use diesel::connection::CacheSize;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text};
use pgschemas_diesel::testing::{PgBouncer, PoolMode, TestDatabase, server_url};

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

fn database_exists(name: &str) -> bool {
    let mut admin = PgConnection::establish(&server_url()).expect("connect to the server");
    let row: Count =
        diesel::sql_query("SELECT count(*) AS count FROM pg_database WHERE datname = $1")
            .bind::<Text, _>(name)
            .get_result(&mut admin)
            .expect("query pg_database");
    row.count == 1
}

fn current_database(conn: &mut PgConnection) -> String {
    let row: Name = diesel::sql_query("SELECT current_database()::text AS name")
        .get_result(conn)
        .expect("query current_database()");
    row.name
}

/// Lets two threads wait for each other, with a timeout so a failing thread cannot hang the
/// other.
struct Rendezvous {
    arrived: Mutex<u32>,
    all_here: Condvar,
    parties: u32,
}

impl Rendezvous {
    fn new(parties: u32) -> Rendezvous {
        Rendezvous {
            arrived: Mutex::new(0),
            all_here: Condvar::new(),
            parties,
        }
    }

    fn wait(&self) {
        let mut arrived = self.arrived.lock().expect("rendezvous lock");
        *arrived += 1;
        self.all_here.notify_all();
        let (arrived, timeout) = self
            .all_here
            .wait_timeout_while(arrived, Duration::from_secs(60), |n| *n < self.parties)
            .expect("rendezvous lock");
        assert!(
            !timeout.timed_out(),
            "only {} of {} threads arrived",
            *arrived,
            self.parties
        );
    }
}

/// Writes the database's own name into it, waits until the other test holds its database
/// too, then reads back what it wrote.
fn write_then_read_own_database(db: TestDatabase, here: &Rendezvous) -> TestDatabase {
    let mut conn = db.connect();
    assert_eq!(current_database(&mut conn), db.name());
    diesel::sql_query("CREATE TABLE owner (name text NOT NULL)")
        .execute(&mut conn)
        .expect("create table");
    diesel::sql_query("INSERT INTO owner VALUES ($1)")
        .bind::<Text, _>(db.name())
        .execute(&mut conn)
        .expect("insert");
    here.wait();
    let rows: Vec<Name> = diesel::sql_query("SELECT name FROM owner")
        .load(&mut conn)
        .expect("select");
    let names: Vec<String> = rows.into_iter().map(|row| row.name).collect();
    assert_eq!(names, [db.name()]);
    db
}

// Two "tests": each calls `test_database!` from its own function, as real tests do.
fn first_parallel_test(here: &Rendezvous) -> TestDatabase {
    write_then_read_own_database(pgschemas_diesel::test_database!(), here)
}

fn second_parallel_test(here: &Rendezvous) -> TestDatabase {
    write_then_read_own_database(pgschemas_diesel::test_database!(), here)
}

#[test]
fn parallel_tests_get_distinct_databases() {
    let here = Arc::new(Rendezvous::new(2));
    let tests: [fn(&Rendezvous) -> TestDatabase; 2] = [first_parallel_test, second_parallel_test];
    let threads = tests.map(|test| {
        let here = Arc::clone(&here);
        thread::spawn(move || test(&here))
    });
    let [first, second] = threads.map(|thread| thread.join().expect("test thread"));
    assert_ne!(first.name(), second.name());
    assert!(
        first.name().contains("first_parallel_test"),
        "{}",
        first.name()
    );
    assert!(
        second.name().contains("second_parallel_test"),
        "{}",
        second.name()
    );
    assert!(database_exists(first.name()) && database_exists(second.name()));
}

#[test]
fn database_is_named_after_the_test_and_dropped_when_it_passes() {
    let db = pgschemas_diesel::test_database!();
    let name = db.name().to_owned();
    assert!(name.starts_with("test_"), "{name}");
    assert!(
        name.contains("dropped_when_it_passes"),
        "{name} should name the test"
    );
    assert!(name.len() <= 63, "{name}");
    assert!(db.url().ends_with(&format!("/{name}")), "{}", db.url());
    assert!(database_exists(&name));

    // a connection still open does not stop the drop
    let mut conn = db.connect();
    assert_eq!(current_database(&mut conn), name);
    drop(db);
    assert!(!database_exists(&name), "{name} should be dropped");
}

#[test]
fn a_leftover_database_is_replaced() {
    let first = pgschemas_diesel::test_database!();
    let mut conn = first.connect();
    diesel::sql_query("CREATE TABLE leftover (id int)")
        .execute(&mut conn)
        .expect("create table");
    // a rerun of the same test while the old database is still there
    let second = pgschemas_diesel::test_database!();
    assert_eq!(first.name(), second.name());
    let mut conn = second.connect();
    let row: Count =
        diesel::sql_query("SELECT count(*) AS count FROM pg_tables WHERE tablename = 'leftover'")
            .get_result(&mut conn)
            .expect("query pg_tables");
    assert_eq!(row.count, 0, "the new database should be empty");
    drop(conn);
    let name = second.name().to_owned();
    drop(second);
    // dropping the stale handle too is harmless
    drop(first);
    assert!(!database_exists(&name));
}

#[test]
fn database_is_kept_when_the_test_panics() {
    let created: Mutex<Option<(String, String)>> = Mutex::new(None);
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        let db = pgschemas_diesel::test_database!("failing");
        let mut conn = db.connect();
        diesel::sql_query("CREATE TABLE evidence (id int)")
            .execute(&mut conn)
            .expect("create table");
        *created.lock().expect("lock") = Some((db.name().to_owned(), db.url().to_owned()));
        panic!("simulated test failure");
    }));
    assert!(outcome.is_err(), "the closure should have panicked");
    let (name, url) = created
        .into_inner()
        .expect("lock")
        .expect("the closure should have created a database");

    let kept = database_exists(&name);
    let evidence = kept
        && PgConnection::establish(&url)
            .ok()
            .and_then(|mut conn| {
                diesel::sql_query(
                    "SELECT count(*) AS count FROM pg_tables WHERE tablename = 'evidence'",
                )
                .get_result::<Count>(&mut conn)
                .ok()
            })
            .is_some_and(|row| row.count == 1);

    let mut admin = PgConnection::establish(&server_url()).expect("connect to the server");
    diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .expect("drop the kept database");

    assert!(kept, "{name} should be kept after a panic");
    assert!(evidence, "{name} should keep what the test wrote");
}

#[test]
fn pgbouncer_answers_in_transaction_mode() {
    let db = pgschemas_diesel::test_database!();
    let bouncer = PgBouncer::start(&server_url(), db.name(), PoolMode::Transaction, 1);
    assert!(bouncer.url().contains(&format!(":{}/", bouncer.port())));

    let connect = || {
        let mut conn = PgConnection::establish(bouncer.url()).expect("connect through PgBouncer");
        conn.set_prepared_statement_cache_size(CacheSize::Disabled);
        conn
    };
    let mut first = connect();
    let mut second = connect();

    let one: i32 = diesel::select(1.into_sql::<Integer>())
        .get_result(&mut first)
        .expect("SELECT 1 through PgBouncer");
    assert_eq!(one, 1);
    let one: i32 = diesel::select(1.into_sql::<Integer>())
        .get_result(&mut second)
        .expect("SELECT 1 through PgBouncer");
    assert_eq!(one, 1);
    assert_eq!(current_database(&mut first), db.name());

    // transaction pooling: two clients share the one server connection
    let pid = |conn: &mut PgConnection| {
        diesel::sql_query("SELECT pg_backend_pid() AS pid")
            .get_result::<Pid>(conn)
            .expect("pg_backend_pid()")
            .pid
    };
    assert_eq!(pid(&mut first), pid(&mut second));

    let port = bouncer.port();
    drop((first, second));
    drop(bouncer);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "PgBouncer should stop when dropped"
    );
}
