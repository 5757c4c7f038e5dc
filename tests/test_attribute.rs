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

/// Run by `a_should_panic_test_whose_preparation_fails_fails`, not by the harness: `Bad` is
/// not a valid schema name.
#[ignore = "run by a_should_panic_test_whose_preparation_fails_fails"]
#[should_panic]
#[pgschemas_diesel::test(tenants = ["Bad"])]
fn should_panic_with_a_failing_preparation() {
    SHOULD_PANIC_DATABASES
        .lock()
        .unwrap()
        .push("the body ran".to_owned());
    panic!("the body's own panic");
}

/// A `#[should_panic]` test whose preparation fails returns without running its body (so the
/// harness fails it for not panicking), never passing for the panic it expects; its database
/// is kept.
#[test]
fn a_should_panic_test_whose_preparation_fails_fails() {
    let before = SHOULD_PANIC_DATABASES.lock().unwrap().len();
    let kept = kept_by(
        should_panic_with_a_failing_preparation,
        "should_panic_with_a_failing",
    );
    assert_eq!(
        SHOULD_PANIC_DATABASES.lock().unwrap().len(),
        before,
        "the body did not run"
    );
    assert_eq!(kept, Ok(1), "its database is kept");
}

/// Runs `test` and returns how it ended (`Err` for a panic) with the number of databases
/// named with `hint` it left on the server, which it then drops. The names differ between
/// test executables, so the databases are told from others by being new.
fn kept_by(test: fn(), hint: &str) -> Result<usize, String> {
    let mut admin = PgConnection::establish(&pgschemas_diesel::testing::server_url()).unwrap();
    #[derive(QueryableByName, PartialEq)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let names = |admin: &mut PgConnection| -> Vec<Name> {
        diesel::sql_query(format!(
            "select datname::text as name from pg_catalog.pg_database where datname like 'test%{hint}%'"
        ))
        .load(admin)
        .unwrap()
    };
    let before = names(&mut admin);
    let ended = std::panic::catch_unwind(test)
        .map_err(|panic| panic.downcast_ref::<String>().cloned().unwrap_or_default());
    let new: Vec<Name> = names(&mut admin)
        .into_iter()
        .filter(|n| !before.contains(n))
        .collect();
    for n in &new {
        admin
            .batch_execute(&format!("drop database \"{}\" with (force)", n.name))
            .unwrap();
    }
    ended.map(|()| new.len())
}

#[pgschemas_diesel::test(
    migrations = pgschemas_diesel::models::SHARED_MIGRATIONS,
    config = pgschemas_diesel::Config::builder().shared_schema("app").build().unwrap(),
    tenants = ["t1"],
)]
fn shared_migrations_go_to_the_configured_shared_schema(conn: &mut PgConnection) {
    // The default models name `public` themselves; the ledger follows the path.
    let ledger_in = |conn: &mut PgConnection, schema: &str| {
        count(
            conn,
            &format!(
                "select count(*) as n from pg_catalog.pg_tables \
                 where schemaname = '{schema}' and tablename = '__diesel_schema_migrations'"
            ),
        )
    };
    assert_eq!(ledger_in(conn, "app"), 1);
    assert_eq!(ledger_in(conn, "public"), 0);
}

/// Run by `a_config_with_tenant_roles_is_refused_with_the_way_to_test_them`.
#[ignore = "run by a_config_with_tenant_roles_is_refused_with_the_way_to_test_them"]
#[pgschemas_diesel::test(
    config = pgschemas_diesel::Config::builder()
        .tenant_roles(pgschemas_diesel::roles::TenantRoles::new("postgres").unwrap())
        .build()
        .unwrap(),
    tenants = ["t1"],
)]
fn with_tenant_roles() {}

/// Per-tenant roles are server-wide, so the attribute does not make them: a `config` with
/// them is refused before any tenant is made, naming `TestRoles`.
#[test]
fn a_config_with_tenant_roles_is_refused_with_the_way_to_test_them() {
    let message = kept_by(with_tenant_roles, "with_tenant_roles").expect_err("refused");
    assert!(
        message.contains("per-tenant roles") && message.contains("TestRoles"),
        "{message}"
    );
}

/// A `#[should_panic]` test's database that cannot be made (no server there) is a failed
/// preparation: `None`, never the panic the test expects.
#[test]
fn a_database_that_cannot_be_made_is_a_failed_preparation() {
    use pgschemas_diesel::testing::attribute::prepare_should_panic;
    let prepared = prepare_should_panic(|| {
        TestDatabase::on("postgres://nobody@127.0.0.1:1/none", "unreachable")
    });
    assert!(prepared.is_none());
}
