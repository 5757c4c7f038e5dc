//! Migrating inside a caller's transaction leaves the session's `search_path` as it was: what
//! the server reports after the outer transaction ends, not only what the pool records.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use pgschemas_diesel::{
    Config, Error, SchemaName, TenantPool, migrate::migrate_schema, provision::Provisioner,
    provision::create_reference, test_database,
};

/// Migrations 1 to 5.
const TENANT: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
/// Migrations 1 to 6: a reference migrated with `TENANT` lags one behind.
const RELEASE: EmbeddedMigrations = embed_migrations!("../examples/migrations/release");

/// A session path that is neither PostgreSQL's default nor the crate's neutral path, so a
/// restore to either is told apart from a restore to exactly this.
const CALLER_PATH: &str = "public, extra";

fn config() -> Config {
    Config::builder().clone_reference("sample").build().unwrap()
}

fn name(s: &str) -> SchemaName {
    SchemaName::new(s).unwrap()
}

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Text)]
    value: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The `search_path` the server reports now.
fn search_path(conn: &mut PgConnection) -> String {
    diesel::sql_query("select pg_catalog.current_setting('search_path') as value")
        .get_result::<Setting>(conn)
        .unwrap()
        .value
}

/// The shared tenants table, the reference migrated with `TENANT`, and the caller's own
/// session path.
fn setup(conn: &mut PgConnection) {
    conn.batch_execute(
        "create table tenants (id bigserial primary key, schema_name text not null unique);
         create schema extra;",
    )
    .unwrap();
    create_reference(conn, &config(), TENANT).unwrap();
    conn.batch_execute(&format!("set search_path = {CALLER_PATH}"))
        .unwrap();
    assert_eq!(search_path(conn), CALLER_PATH);
}

fn insert_tenant(schema: &str) -> impl FnOnce(&mut PgConnection) -> pgschemas_diesel::Result<()> {
    move |conn| {
        diesel::sql_query("insert into tenants (schema_name) values ($1)")
            .bind::<Text, _>(schema)
            .execute(conn)?;
        Ok(())
    }
}

fn lagging_provisioner() -> Provisioner {
    Provisioner::builder(config(), RELEASE)
        .clone_data(false)
        .build()
        .unwrap()
}

fn ledger_len(conn: &mut PgConnection, schema: &str) -> i64 {
    diesel::sql_query(format!(
        "select count(*) as n from \"{schema}\".__diesel_schema_migrations"
    ))
    .get_result::<Count>(conn)
    .unwrap()
    .n
}

#[test]
fn provisioning_a_lagging_clone_keeps_the_session_path() {
    let db = test_database!();
    let mut conn = db.connect();
    setup(&mut conn);
    let provisioner = lagging_provisioner();

    // create_tenant's own transaction: clone, then migration 6 through migrate_schema
    provisioner
        .create_tenant(&mut conn, "t1", insert_tenant("t1"))
        .unwrap();
    assert_eq!(ledger_len(&mut conn, "t1"), 6);
    assert_eq!(search_path(&mut conn), CALLER_PATH);

    // inside the caller's transaction (a savepoint), once it commits
    conn.transaction(|conn| provisioner.create_tenant(conn, "t2", insert_tenant("t2")))
        .unwrap();
    assert_eq!(ledger_len(&mut conn, "t2"), 6);
    assert_eq!(search_path(&mut conn), CALLER_PATH);
}

#[test]
fn migrating_in_a_tenant_transaction_keeps_the_session_path() {
    let db = test_database!();
    let mut conn = db.connect();
    setup(&mut conn);
    let config = config();
    conn.batch_execute("create schema a").unwrap();

    let applied = config
        .transaction(&mut conn, &"a", |conn| {
            let applied = migrate_schema(conn, &config, &name("a"), &TENANT)?;
            // the transaction's own path is back too
            assert_eq!(search_path(conn), "\"a\", \"public\", pg_temp");
            Ok::<_, Error>(applied)
        })
        .unwrap();
    assert_eq!(applied.len(), 5);
    assert_eq!(search_path(&mut conn), CALLER_PATH);

    // a plain Diesel transaction that sets no path of its own
    conn.batch_execute("create schema b").unwrap();
    conn.transaction::<_, Error, _>(|conn| Ok(migrate_schema(conn, &config, &name("b"), &TENANT)?))
        .unwrap();
    assert_eq!(ledger_len(&mut conn, "b"), 5);
    assert_eq!(search_path(&mut conn), CALLER_PATH);

    // a session SET the caller makes inside the transaction is what the session keeps
    conn.batch_execute("create schema c").unwrap();
    conn.transaction::<_, Error, _>(|conn| {
        conn.batch_execute("set search_path = extra")?;
        Ok(migrate_schema(conn, &config, &name("c"), &TENANT)?)
    })
    .unwrap();
    assert_eq!(search_path(&mut conn), "extra");

    // outside any transaction the session value is put back
    conn.batch_execute(&format!("set search_path = {CALLER_PATH}; create schema d"))
        .unwrap();
    migrate_schema(&mut conn, &config, &name("d"), &TENANT).unwrap();
    assert_eq!(search_path(&mut conn), CALLER_PATH);
}

#[test]
fn pool_checkouts_after_provisioning_and_migrating_have_the_neutral_path() {
    let db = test_database!();
    let config = config();
    let pool =
        TenantPool::with_builder(db.url(), config.clone(), r2d2::Pool::builder().max_size(1))
            .unwrap();
    {
        let mut conn = pool.get().unwrap();
        conn.batch_execute(
            "create table tenants (id bigserial primary key, schema_name text not null unique);
             create schema a;",
        )
        .unwrap();
        create_reference(&mut conn, &config, TENANT).unwrap();
    }
    let neutral = config.neutral_path().as_sql_value().to_owned();

    lagging_provisioner()
        .create_tenant(&mut pool.get().unwrap(), "t1", insert_tenant("t1"))
        .unwrap();
    assert_eq!(search_path(&mut pool.get().unwrap()), neutral);

    pool.transaction(&"a", |conn| {
        Ok::<_, Error>(migrate_schema(conn, &config, &name("a"), &TENANT)?)
    })
    .unwrap();
    assert_eq!(search_path(&mut pool.get().unwrap()), neutral);
}
