//! `#[pgschemas_diesel::test]`: each form of the attribute, run. The compile errors of its
//! arguments are UI cases (`pgschemas-diesel/tests/ui/fail_test_*.rs`).

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use pgschemas_diesel::TenantPool;
use pgschemas_diesel::testing::TestDatabase;

use crate::roles_lifecycle::{N, count};

const TENANT: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");

#[pgschemas_diesel::test(tenant_migrations = "../examples/migrations/tenant", tenants = ["acme", "globex"])]
fn tenants_are_migrated_and_the_pool_switches_between_them(pool: TenantPool) {
    let mut acme = pool.scope(&"acme").expect("acme");
    diesel::sql_query("insert into customers (name, email) values ('a', 'a@acme.test')")
        .execute(&mut *acme)
        .expect("insert");
    drop(acme);
    let mut globex = pool.scope(&"globex").expect("globex");
    assert_eq!(count(&mut globex, "select count(*) as n from customers"), 0);
}

#[pgschemas_diesel::test(migrations = pgschemas_diesel::models::SHARED_MIGRATIONS, tenants = ["empty"])]
fn shared_migrations_from_a_constant_and_an_empty_tenant(conn: &mut PgConnection) {
    assert_eq!(count(conn, "select count(*) as n from public.tenants"), 0);
    assert_eq!(
        count(
            conn,
            "select count(*) as n from pg_catalog.pg_tables where schemaname = 'empty'"
        ),
        0
    );
    assert_eq!(
        count(
            conn,
            "select count(*) as n from pg_catalog.pg_namespace where nspname = 'empty'"
        ),
        1
    );
}

#[pgschemas_diesel::test(tenant_migrations = TENANT, tenants = ["t1"])]
fn the_database_itself_and_a_result(db: &TestDatabase) -> Result<(), Box<dyn std::error::Error>> {
    let mut conn = db.connect();
    conn.batch_execute("set search_path to t1")?;
    assert_eq!(count(&mut conn, "select count(*) as n from customers"), 0);
    Ok(())
}

#[pgschemas_diesel::test]
fn nothing_but_a_database(mut conn: PgConnection) {
    assert_eq!(count(&mut conn, "select 1::int8 as n"), 1);
}

#[cfg(feature = "async")]
#[pgschemas_diesel::test(tenant_migrations = "../examples/migrations/tenant", tenants = ["acme"])]
async fn an_async_test_gets_an_async_pool(pool: pgschemas_diesel::AsyncTenantPool) {
    let mut conn = pool.scope(&"acme").await.expect("scope");
    let n: N = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query("select count(*) as n from customers"),
        &mut conn,
    )
    .await
    .expect("count");
    assert_eq!(n.n, 0);
}

#[pgschemas_diesel::test(
    config = pgschemas_diesel::Config::builder().max_tenants_per_connection(1).build().unwrap(),
    tenants = ["a", "b"],
)]
fn the_pool_has_the_configuration_given(pool: TenantPool) {
    assert_eq!(pool.config().max_tenants_per_connection(), Some(1));
    drop(pool.scope(&"a").expect("a"));
    drop(pool.scope(&"b").expect("b"));
}

/// A test that fails by returning an `Err` keeps its database, as a panicking one does.
#[test]
fn an_err_outcome_keeps_the_database() {
    use pgschemas_diesel::testing::attribute::finish;

    let db = pgschemas_diesel::test_database!();
    let (server, name) = (db.server_url().to_owned(), db.name().to_owned());
    let exists = |admin: &mut PgConnection| {
        count(
            admin,
            &format!("select count(*) as n from pg_catalog.pg_database where datname = '{name}'"),
        )
    };
    let outcome: Result<(), &str> = finish(&db, Err("failed"));
    assert!(outcome.is_err());
    drop(db);
    let mut admin = PgConnection::establish(&server).expect("admin");
    assert_eq!(exists(&mut admin), 1, "kept");
    admin
        .batch_execute(&format!("drop database \"{name}\""))
        .expect("drop");
    let ok = pgschemas_diesel::test_database!("ok");
    let (ok_name, _) = (ok.name().to_owned(), finish(&ok, Ok::<(), ()>(())));
    drop(ok);
    assert_eq!(
        count(
            &mut admin,
            &format!(
                "select count(*) as n from pg_catalog.pg_database where datname = '{ok_name}'"
            ),
        ),
        0,
        "dropped after a pass"
    );
}

/// The database names the two `#[should_panic]` tests below were given.
static SHOULD_PANIC_DATABASES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Run by `a_should_panic_test_drops_its_database_when_it_panics`, not by the harness.
#[ignore = "run by a_should_panic_test_drops_its_database_when_it_panics"]
#[should_panic(expected = "as expected")]
#[pgschemas_diesel::test(tenant_migrations = TENANT, tenants = ["acme"])]
fn should_panic_before_the_attribute(db: &TestDatabase) {
    SHOULD_PANIC_DATABASES
        .lock()
        .unwrap()
        .push(db.name().to_owned());
    panic!("as expected");
}

/// Run by `a_should_panic_test_drops_its_database_when_it_panics`, not by the harness.
#[pgschemas_diesel::test(tenants = ["acme"])]
#[ignore = "run by a_should_panic_test_drops_its_database_when_it_panics"]
#[should_panic]
fn should_panic_after_the_attribute_that_returns(db: &TestDatabase) {
    SHOULD_PANIC_DATABASES
        .lock()
        .unwrap()
        .push(db.name().to_owned());
}

/// A `#[should_panic]` test passes by panicking: its database is dropped then, whichever side
/// of the attribute `#[should_panic]` is; one that returns (and so fails) keeps it.
#[test]
fn a_should_panic_test_drops_its_database_when_it_panics() {
    let server = pgschemas_diesel::testing::server_url();
    let mut admin = PgConnection::establish(&server).expect("admin");
    let exists = |admin: &mut PgConnection, name: &str| {
        count(
            admin,
            &format!("select count(*) as n from pg_catalog.pg_database where datname = '{name}'"),
        )
    };

    let panic = std::panic::catch_unwind(should_panic_before_the_attribute).expect_err("panics");
    assert_eq!(panic.downcast_ref::<&str>(), Some(&"as expected"));
    let name = SHOULD_PANIC_DATABASES.lock().unwrap().pop().expect("ran");
    assert_eq!(
        exists(&mut admin, &name),
        0,
        "dropped after the expected panic"
    );

    should_panic_after_the_attribute_that_returns();
    let name = SHOULD_PANIC_DATABASES.lock().unwrap().pop().expect("ran");
    assert_eq!(
        exists(&mut admin, &name),
        1,
        "kept: the test fails for not panicking"
    );
    admin
        .batch_execute(&format!("drop database \"{name}\" with (force)"))
        .expect("drop");
}
