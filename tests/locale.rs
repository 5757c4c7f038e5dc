//! Errors are told apart by SQLSTATE or by what a statement returns, never by the text of
//! PostgreSQL's messages (invariant 8): everything here runs on a server answering in German.

use std::panic::{self, AssertUnwindSafe};
use std::thread;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer};
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use pgschemas_diesel::testing::{TestDatabase, localized_server_url};
use pgschemas_diesel::{
    Config, Error, SchemaConnection, SchemaName, TenantPool, lifecycle::create_schema,
    lifecycle::dangerous_drop_schema, lifecycle::drop_schema, lifecycle::schema_exists,
    migrate::MigrationErrorKind, migrate::migrate_schema, provision::Provisioner,
    provision::clone_schema, provision::create_reference, test_database,
};

const TENANT: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");

fn german() -> String {
    localized_server_url("de")
}

fn name(s: &str) -> SchemaName {
    SchemaName::new(s).unwrap()
}

fn config() -> Config {
    Config::builder().clone_reference("sample").build().unwrap()
}

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

fn backend_pid(conn: &mut PgConnection) -> i32 {
    diesel::sql_query("select pg_backend_pid() as pid")
        .get_result::<Pid>(conn)
        .unwrap()
        .pid
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, Error>, missing: &str) {
    match result {
        Err(Error::SchemaNotFound { schema }) if schema == missing => {}
        other => panic!("expected SchemaNotFound for {missing:?}, got {other:?}"),
    }
}

fn assert_exists<T: std::fmt::Debug>(result: Result<T, Error>, existing: &str) {
    match result {
        Err(Error::SchemaExists { schema }) if schema == existing => {}
        other => panic!("expected SchemaExists for {existing:?}, got {other:?}"),
    }
}

#[test]
fn the_server_answers_in_german() {
    let db = test_database!(server: german());
    let mut conn = db.connect();
    let err = conn.batch_execute("select 1/0").unwrap_err();
    assert_eq!(err.to_string(), "Division durch Null");
    let err = conn.batch_execute("create schema public").unwrap_err();
    assert_eq!(err.to_string(), "Schema »public« existiert bereits");
    // one cluster per process
    assert_eq!(german(), german());
}

#[test]
fn activating_a_missing_schema_is_schema_not_found() {
    let db = test_database!(server: german());
    let mut conn = db.connect();
    conn.batch_execute("create schema t1").unwrap();
    let config = Config::default();
    config.activate(&mut conn, &"t1").unwrap();

    assert_not_found(config.activate(&mut conn, &"missing"), "missing");
    assert_not_found(conn.activate(&"missing"), "missing");
    assert_not_found(
        config.transaction(&mut conn, &"missing", |_| Ok::<_, Error>(())),
        "missing",
    );
    assert_eq!(conn.search_path().unwrap(), "\"t1\", \"public\", pg_temp");
}

#[test]
fn a_missing_schema_keeps_the_pooled_connection() {
    let db = test_database!(server: german());
    let pool = TenantPool::with_builder(
        db.url(),
        Config::default(),
        r2d2::Pool::builder().max_size(1),
    )
    .unwrap();
    let pid = backend_pid(&mut pool.get().unwrap());

    assert_not_found(pool.scope(&"missing").map(drop), "missing");
    assert_not_found(
        pool.transaction(&"missing", |_| Ok::<_, Error>(())),
        "missing",
    );
    // the healthy connection was neither discarded nor replaced
    assert_eq!(backend_pid(&mut pool.get().unwrap()), pid);
}

#[test]
fn lifecycle_helpers_classify_without_the_message() {
    let db = test_database!(server: german());
    let mut conn = db.connect();
    let config = Config::default();
    create_schema(&mut conn, &name("t1")).unwrap();

    assert_exists(create_schema(&mut conn, &name("t1")), "t1");
    assert_not_found(drop_schema(&mut conn, &config, &name("missing")), "missing");
    assert_not_found(
        dangerous_drop_schema(&mut conn, &name("missing")),
        "missing",
    );
    assert!(schema_exists(&mut conn, &name("t1")).unwrap());
}

#[test]
fn provisioning_an_existing_schema_is_schema_exists() {
    let db = test_database!(server: german());
    let mut conn = db.connect();
    conn.batch_execute("create table tenants (schema_name text primary key); create schema t1")
        .unwrap();
    let rows = |conn: &mut PgConnection| -> pgschemas_diesel::Result<()> {
        diesel::sql_query("insert into tenants values ('t1')").execute(conn)?;
        Ok(())
    };

    // migrated from scratch, then cloned from the reference
    let migrating = Provisioner::builder(config(), TENANT)
        .clone_from_reference(false)
        .build()
        .unwrap();
    assert_exists(migrating.create_tenant(&mut conn, "t1", rows), "t1");
    create_reference(&mut conn, &config(), TENANT).unwrap();
    let cloning = Provisioner::builder(config(), TENANT).build().unwrap();
    assert_exists(cloning.create_tenant(&mut conn, "t1", rows), "t1");
    assert_exists(cloning.provision_existing(&mut conn, "t1"), "t1");
    assert_exists(create_reference(&mut conn, &config(), TENANT), "sample");
    assert_exists(
        clone_schema(&mut conn, &config(), &name("sample"), &name("t1"), false),
        "t1",
    );

    // in a savepoint of the caller's transaction, which stays usable
    conn.transaction::<_, Error, _>(|conn| {
        assert_exists(cloning.create_tenant(conn, "t1", rows), "t1");
        diesel::sql_query("select 1").execute(conn)?;
        Ok(())
    })
    .unwrap();

    // nothing was written, and the connection is fine
    let written: i64 = diesel::select(diesel::dsl::sql::<BigInt>("(select count(*) from tenants)"))
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(written, 0);
}

#[test]
fn migrating_a_missing_schema_is_schema_not_found() {
    let db = test_database!(server: german());
    let mut conn = db.connect();
    let err = migrate_schema(&mut conn, &Config::default(), &name("missing"), &TENANT).unwrap_err();
    assert!(
        matches!(err.kind(), MigrationErrorKind::SchemaNotFound),
        "{err:?}"
    );
    assert_eq!(conn.search_path().unwrap(), "\"$user\", public");
}

#[test]
fn test_databases_are_created_once_a_busy_template_is_free() {
    let server = german();
    let template = pgschemas_diesel::testing::url_with_database(&server, "template1");
    let busy = PgConnection::establish(&template).unwrap();
    // CREATE DATABASE waits 5 s for other sessions to leave its template, then fails; the
    // failure is retried
    let release = thread::spawn(move || {
        thread::sleep(Duration::from_millis(5500));
        drop(busy);
    });
    let db = TestDatabase::on(&server, "locale_template_busy");
    release.join().unwrap();
    db.connect().batch_execute("select 1").unwrap();
}

#[test]
fn a_role_without_createdb_is_told_what_it_needs() {
    let server = german();
    let mut admin = PgConnection::establish(&server).unwrap();
    admin
        .batch_execute(
            "drop role if exists locale_no_createdb; create role locale_no_createdb login",
        )
        .unwrap();
    let url = server.replacen("postgres@", "locale_no_createdb@", 1);

    let panicked = panic::catch_unwind(AssertUnwindSafe(|| {
        TestDatabase::on(&url, "locale_no_createdb")
    }))
    .unwrap_err();
    let message = panicked
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(message.contains("needs CREATEDB"), "{message}");
    diesel::sql_query("drop role locale_no_createdb")
        .execute(&mut admin)
        .unwrap();
}
