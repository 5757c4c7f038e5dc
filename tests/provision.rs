//! Provisioning: atomic tenant creation and drop, the clone reference, schema cloning.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use pgschemas_diesel::{
    Config, Error, HookName, SchemaConnection, SchemaName, StaticTenant, lifecycle::schema_exists,
    provision::Provisioner, provision::clone_schema, provision::create_reference,
    provision::recreate_reference, test_database,
};

const TENANT: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
const RELEASE: EmbeddedMigrations = embed_migrations!("../examples/migrations/release");
const FAILING: EmbeddedMigrations = embed_migrations!("../tests/migrations/failing");
const SETS_PATH: EmbeddedMigrations = embed_migrations!("../tests/migrations/sets_path");

/// The shared tables of the workload: tenants and their domains.
const SHARED: &str = "
    create table tenants (id bigserial primary key, schema_name text not null unique, name text not null);
    create table domains (id bigserial primary key,
                          tenant_id bigint not null references tenants(id) on delete cascade,
                          domain text not null, folder text, is_primary bool not null default false,
                          unique (domain, folder));";

fn config() -> Config {
    Config::builder()
        .static_tenant(StaticTenant::builder("www").domain("localhost"))
        .clone_reference("sample")
        .build()
        .unwrap()
}

/// A config without a clone reference: tenants are migrated.
fn plain_config() -> Config {
    Config::builder()
        .static_tenant(StaticTenant::builder("www").domain("localhost"))
        .build()
        .unwrap()
}

fn setup(conn: &mut PgConnection) {
    conn.batch_execute(SHARED).unwrap();
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = Text)]
    line: String,
}

/// The row-writing closure of a tenant: its row and its primary domain.
fn rows(schema: &str) -> impl FnOnce(&mut PgConnection) -> pgschemas_diesel::Result<i64> + '_ {
    move |conn| {
        let id: Id = diesel::sql_query(
            "insert into tenants (schema_name, name) values ($1, $1) returning id",
        )
        .bind::<Text, _>(schema)
        .get_result(conn)?;
        diesel::sql_query(
            "insert into domains (tenant_id, domain, is_primary) values ($1, $2 || '.example.com', true)",
        )
        .bind::<BigInt, _>(id.id)
        .bind::<Text, _>(schema)
        .execute(conn)?;
        Ok(id.id)
    }
}

fn count(conn: &mut PgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .n
}

fn lines(conn: &mut PgConnection, sql: &str) -> Vec<String> {
    diesel::sql_query(sql)
        .load::<Line>(conn)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .map(|l| l.line)
        .collect()
}

fn exists(conn: &mut PgConnection, schema: &str) -> bool {
    schema_exists(conn, &SchemaName::new(schema).unwrap()).unwrap()
}

/// Asserts that nothing of tenant `schema` exists: no row, no domain, no schema.
fn assert_nothing_left(conn: &mut PgConnection, schema: &str) {
    let tenants = diesel::sql_query("select count(*) as n from tenants where schema_name = $1")
        .bind::<Text, _>(schema)
        .get_result::<Count>(conn)
        .unwrap()
        .n;
    assert_eq!(tenants, 0, "a tenant row of {schema} was left behind");
    assert_eq!(
        count(conn, "select count(*) as n from domains"),
        0,
        "a domain was left behind"
    );
    assert!(!exists(conn, schema), "schema {schema} was left behind");
}

fn ledger(conn: &mut PgConnection, schema: &str) -> Vec<String> {
    lines(
        conn,
        &format!(
            "select version::text as line from {schema}.__diesel_schema_migrations order by 1"
        ),
    )
}

fn columns(conn: &mut PgConnection, schema: &str, table: &str) -> Vec<String> {
    lines(
        conn,
        &format!(
            "select column_name::text as line from information_schema.columns \
             where table_schema = '{schema}' and table_name = '{table}' order by ordinal_position"
        ),
    )
}

// ---------------------------------------------------------------------------------------
// Atomic provisioning
// ---------------------------------------------------------------------------------------

#[test]
fn create_tenant_writes_rows_schema_and_every_migration() {
    let db = test_database!();
    let mut conn = db.connect();
    setup(&mut conn);
    let p = Provisioner::builder(plain_config(), TENANT)
        .build()
        .unwrap();

    let id = p.create_tenant(&mut conn, "t1", rows("t1")).unwrap();
    assert!(id > 0);
    assert_eq!(count(&mut conn, "select count(*) as n from tenants"), 1);
    assert_eq!(count(&mut conn, "select count(*) as n from domains"), 1);
    assert!(exists(&mut conn, "t1"));
    assert_eq!(ledger(&mut conn, "t1").len(), 5);
    assert_eq!(
        columns(&mut conn, "t1", "customers"),
        ["id", "name", "email", "created_at"]
    );
    // Nothing of the workload went to the shared schema, and the tenant's path did not
    // outlive the transaction.
    assert!(columns(&mut conn, "public", "customers").is_empty());
    assert_eq!(conn.search_path().unwrap(), "\"$user\", public");
    // The tenant works.
    plain_config().activate(&mut conn, &"t1").unwrap();
    conn.batch_execute("insert into customers (name, email) values ('a', 'a@x')")
        .unwrap();
}

#[test]
fn a_bad_name_or_a_clash_is_refused_before_anything_is_sent() {
    let db = test_database!();
    let mut conn = db.connect();
    setup(&mut conn);
    let p = Provisioner::builder(config(), TENANT).build().unwrap();
    let called = AtomicUsize::new(0);
    for (name, clash) in [
        ("Bad", false),
        ("pg_x", false),
        ("a-b", false),
        ("", false),
        ("www", true),
        ("WWW", true),
        ("public", true),
        ("sample", true),
    ] {
        let err = p
            .create_tenant(&mut conn, name, |c| {
                called.fetch_add(1, Ordering::SeqCst);
                rows(name)(c)
            })
            .unwrap_err();
        if clash {
            assert!(matches!(err, Error::NameClash { .. }), "{name}: {err}");
            assert!(err.to_string().contains("clashes"), "{err}");
        } else {
            assert!(
                matches!(err, Error::InvalidSchemaName { .. }),
                "{name}: {err}"
            );
        }
        assert_eq!(err.schema(), Some(name));
    }
    assert_eq!(
        called.load(Ordering::SeqCst),
        0,
        "rows ran for a refused name"
    );
    assert_eq!(count(&mut conn, "select count(*) as n from tenants"), 0);
}

#[test]
fn an_existing_schema_leaves_no_row() {
    let db = test_database!();
    let mut conn = db.connect();
    setup(&mut conn);
    conn.batch_execute("create schema t1").unwrap();
    let p = Provisioner::builder(plain_config(), TENANT)
        .build()
        .unwrap();
    let err = p.create_tenant(&mut conn, "t1", rows("t1")).unwrap_err();
    assert!(
        matches!(err, Error::SchemaExists { ref schema } if schema == "t1"),
        "{err}"
    );
    assert_eq!(count(&mut conn, "select count(*) as n from tenants"), 0);
    // The pre-existing schema is untouched and empty.
    assert_eq!(
        count(
            &mut conn,
            "select count(*) as n from pg_class where relnamespace = 't1'::regnamespace"
        ),
        0
    );
}

#[test]
fn a_failing_migration_leaves_nothing() {
    let db = test_database!();
    let mut conn = db.connect();
    setup(&mut conn);
    let p = Provisioner::builder(plain_config(), FAILING)
        .build()
        .unwrap();
    let err = p.create_tenant(&mut conn, "t1", rows("t1")).unwrap_err();
    match &err {
        Error::Migration(e) => {
            assert_eq!(e.schema().as_str(), "t1");
            assert_eq!(e.migration(), Some("2024-01-01-000002_boom"));
        }
        other => panic!("expected a migration error, got {other}"),
    }
    let msg = err.report().to_string();
    assert!(
        msg.contains("boom") && msg.contains("division by zero"),
        "{msg}"
    );
    assert_nothing_left(&mut conn, "t1");
    // Nothing landed in the shared schema either.
    assert!(columns(&mut conn, "public", "ok_tbl").is_empty());
    assert!(columns(&mut conn, "public", "__diesel_schema_migrations").is_empty());
    // The connection is usable afterwards.
    assert_eq!(count(&mut conn, "select 1::int8 as n"), 1);
}

#[test]
fn a_migration_that_changes_the_path_leaves_nothing_anywhere() {
    let db = test_database!();
    let mut conn = db.connect();
    setup(&mut conn);
    let p = Provisioner::builder(plain_config(), SETS_PATH)
        .build()
        .unwrap();
    let err = p.create_tenant(&mut conn, "t1", rows("t1")).unwrap_err();
    match &err {
        Error::Migration(e) => {
            assert!(
                matches!(
                    e.kind(),
                    pgschemas_diesel::migrate::MigrationErrorKind::PathChanged
                ),
                "{e}"
            );
        }
        other => panic!("expected a migration error, got {other}"),
    }
    assert_nothing_left(&mut conn, "t1");
    assert!(
        columns(&mut conn, "public", "leaked").is_empty(),
        "a table leaked into public"
    );
    assert_eq!(conn.search_path().unwrap(), "\"$user\", public");
}

#[test]
fn provisioning_waits_for_a_migration_of_the_schema_and_of_the_reference() {
    let db = test_database!();
    let mut conn = db.connect();
    setup(&mut conn);
    let p = Provisioner::builder(config(), TENANT).build().unwrap();
    p.create_reference(&mut conn).unwrap();
    for locked in ["sample", "t1"] {
        // Another session migrates `locked`: it holds the schema's migration lock.
        let mut migrator = db.connect();
        diesel::sql_query("select pg_advisory_lock($1, hashtext($2))")
            .bind::<diesel::sql_types::Integer, _>(pgschemas_diesel::migrate::MIGRATION_LOCK_CLASS)
            .bind::<Text, _>(locked)
            .execute(&mut migrator)
            .unwrap();
        let tenant = if locked == "t1" { "t1" } else { "t0" };
        let creator = {
            let p = p.clone();
            let mut c = db.connect();
            std::thread::spawn(move || p.create_tenant(&mut c, tenant, rows(tenant)))
        };
        // The creation waits on the advisory lock (polled, without a deadline of its own:
        // the test harness's timeout applies).
        while count(
            &mut conn,
            "select count(*) as n from pg_locks where locktype = 'advisory' and not granted",
        ) == 0
        {
            assert!(
                !creator.is_finished(),
                "creating {tenant} did not wait for {locked}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(!exists(&mut conn, tenant));
        diesel::sql_query("select pg_advisory_unlock_all()")
            .execute(&mut migrator)
            .unwrap();
        creator.join().unwrap().unwrap();
        assert_eq!(ledger(&mut conn, tenant).len(), 5);
    }
}

#[test]
fn a_failing_row_insert_leaves_nothing() {
    let db = test_database!();
    let mut conn = db.connect();
    setup(&mut conn);
    let p = Provisioner::builder(plain_config(), TENANT)
        .build()
        .unwrap();
    let err = p
        .create_tenant(&mut conn, "t1", |c| {
            rows("t1")(c)?;
            // The same tenant again: a unique violation.
            c.batch_execute("insert into tenants (schema_name, name) values ('t1', 'again')")?;
            Ok(())
        })
        .unwrap_err();
    // The database error names the tenant's schema.
    assert_eq!(err.schema(), Some("t1"), "{err}");
    assert_nothing_left(&mut conn, "t1");
}

#[test]
fn a_vetoing_after_sync_hook_leaves_nothing() {
    let db = test_database!();
    let mut conn = db.connect();
    setup(&mut conn);
    let seen = Arc::new(std::sync::Mutex::new(None));
    let seen2 = Arc::clone(&seen);
    let p = Provisioner::builder(plain_config(), TENANT)
        .after_sync(move |conn, schema| {
            // The hook runs with the tenant's path, after the migrations.
            let current = conn.current_schema()?;
            let tables = count(conn, "select count(*) as n from customers");
            *seen2.lock().unwrap() = Some((schema.to_string(), current, tables));
            Err("no new tenants today".into())
        })
        .build()
        .unwrap();
    let err = p.create_tenant(&mut conn, "t1", rows("t1")).unwrap_err();
    assert!(
        matches!(&err, Error::Hook { schema, hook: HookName::AfterSync, .. } if schema == "t1"),
        "{err}"
    );
    assert!(
        err.report().to_string().contains("no new tenants today"),
        "{err}"
    );
    assert_eq!(
        seen.lock().unwrap().clone(),
        Some(("t1".to_owned(), Some("t1".to_owned()), 0))
    );
    assert_nothing_left(&mut conn, "t1");
}

#[test]
fn a_killed_backend_leaves_nothing() {
    let db = test_database!();
    let mut conn = db.connect();
    setup(&mut conn);
    let url = db.url().to_owned();
    let p = Provisioner::builder(plain_config(), TENANT)
        .after_sync(move |conn, _schema| {
            #[derive(QueryableByName)]
            struct Pid {
                #[diesel(sql_type = diesel::sql_types::Integer)]
                pid: i32,
            }
            let pid: Pid = diesel::sql_query("select pg_backend_pid() as pid").get_result(conn)?;
            let mut other = PgConnection::establish(&url)?;
            diesel::sql_query("select pg_terminate_backend($1)")
                .bind::<diesel::sql_types::Integer, _>(pid.pid)
                .execute(&mut other)?;
            Ok(())
        })
        .build()
        .unwrap();
    let err = p.create_tenant(&mut conn, "t1", rows("t1")).unwrap_err();
    assert!(matches!(err, Error::Database { .. }), "{err}");
    let mut fresh = db.connect();
    assert_nothing_left(&mut fresh, "t1");
}

#[test]
fn a_caller_transaction_decides() {
    let db = test_database!();
    let mut conn = db.connect();
    setup(&mut conn);
    let p = Provisioner::builder(plain_config(), TENANT)
        .build()
        .unwrap();
    let result: Result<(), Error> = conn.transaction(|c| {
        p.create_tenant(c, "t1", rows("t1"))?;
        assert!(exists(c, "t1"));
        // The caller's path is back after the nested provisioning.
        assert_eq!(c.search_path()?, "\"$user\", public");
        Err(Error::Config("changed my mind".into()))
    });
    assert!(result.is_err());
    assert_nothing_left(&mut conn, "t1");

    conn.transaction(|c| p.create_tenant(c, "t2", rows("t2")).map(|_| ()))
        .unwrap();
    assert!(exists(&mut conn, "t2"));
}

#[test]
fn auto_create_off_writes_rows_only_and_provisions_later() {
    let db = test_database!();
    let mut conn = db.connect();
    setup(&mut conn);
    let needs = Arc::new(AtomicUsize::new(0));
    let synced = Arc::new(AtomicUsize::new(0));
    let (n2, s2) = (Arc::clone(&needs), Arc::clone(&synced));
    let p = Provisioner::builder(plain_config(), TENANT)
        .auto_create_schema(false)
        .needs_sync(move |_, schema| {
            assert_eq!(schema.as_str(), "t1");
            n2.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .after_sync(move |_, _| {
            s2.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .build()
        .unwrap();

    p.create_tenant(&mut conn, "t1", rows("t1")).unwrap();
    assert_eq!(count(&mut conn, "select count(*) as n from tenants"), 1);
    assert!(!exists(&mut conn, "t1"));
    assert_eq!(needs.load(Ordering::SeqCst), 1);
    assert_eq!(synced.load(Ordering::SeqCst), 0);

    p.provision_existing(&mut conn, "t1").unwrap();
    assert!(exists(&mut conn, "t1"));
    assert_eq!(ledger(&mut conn, "t1").len(), 5);
    assert_eq!(synced.load(Ordering::SeqCst), 1);

    let err = p.provision_existing(&mut conn, "t1").unwrap_err();
    assert!(matches!(err, Error::SchemaExists { .. }), "{err}");

    // A needs_sync veto rolls the rows back.
    let p = Provisioner::builder(plain_config(), TENANT)
        .auto_create_schema(false)
        .needs_sync(|_, _| Err("queue is down".into()))
        .build()
        .unwrap();
    let err = p.create_tenant(&mut conn, "t2", rows("t2")).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Hook {
                hook: HookName::NeedsSync,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(count(&mut conn, "select count(*) as n from tenants"), 1);
}

#[test]
fn provisioning_an_existing_tenant_that_fails_keeps_the_row_and_no_schema() {
    let db = test_database!();
    let mut conn = db.connect();
    setup(&mut conn);
    rows("t1")(&mut conn).unwrap();
    let p = Provisioner::builder(plain_config(), TENANT)
        .after_sync(|_, _| Err("veto".into()))
        .build()
        .unwrap();
    assert!(p.provision_existing(&mut conn, "t1").is_err());
    assert_eq!(count(&mut conn, "select count(*) as n from tenants"), 1);
    assert!(!exists(&mut conn, "t1"));
}

#[test]
fn drop_keeps_the_schema_unless_forced_or_auto_drop() {
    let db = test_database!();
    let mut conn = db.connect();
    setup(&mut conn);
    let dropped_hook = Arc::new(AtomicUsize::new(0));
    let d2 = Arc::clone(&dropped_hook);
    let p = Provisioner::builder(plain_config(), TENANT)
        .before_drop(move |conn, schema| {
            // The schema still exists when the hook runs.
            assert!(exists(conn, schema.as_str()));
            d2.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .build()
        .unwrap();
    let delete = |schema: &'static str| {
        move |c: &mut PgConnection| -> pgschemas_diesel::Result<usize> {
            Ok(
                diesel::sql_query("delete from tenants where schema_name = $1")
                    .bind::<Text, _>(schema)
                    .execute(c)?,
            )
        }
    };
    for t in ["t1", "t2"] {
        p.create_tenant(&mut conn, t, rows(t)).unwrap();
    }

    // auto_drop_schema is off: the row goes, the schema stays.
    let d = p.drop_tenant(&mut conn, "t1", false, delete("t1")).unwrap();
    assert_eq!(d.value, 1);
    assert!(!d.schema_dropped);
    assert!(exists(&mut conn, "t1"));
    assert_eq!(dropped_hook.load(Ordering::SeqCst), 0);

    // Forced: both go, the hook runs once.
    let d = p.drop_tenant(&mut conn, "t2", true, delete("t2")).unwrap();
    assert!(d.schema_dropped);
    assert!(!exists(&mut conn, "t2"));
    assert_eq!(dropped_hook.load(Ordering::SeqCst), 1);
    assert_eq!(count(&mut conn, "select count(*) as n from tenants"), 0);
    assert_eq!(count(&mut conn, "select count(*) as n from domains"), 0);

    // auto_drop_schema on: dropped without force.
    let p = Provisioner::builder(plain_config(), TENANT)
        .auto_drop_schema(true)
        .build()
        .unwrap();
    p.create_tenant(&mut conn, "t3", rows("t3")).unwrap();
    let d = p.drop_tenant(&mut conn, "t3", false, delete("t3")).unwrap();
    assert!(d.schema_dropped);
    assert!(!exists(&mut conn, "t3"));

    // A vetoing before_drop hook keeps schema and row.
    let p = Provisioner::builder(plain_config(), TENANT)
        .before_drop(|_, _| Err("legal hold".into()))
        .build()
        .unwrap();
    p.create_tenant(&mut conn, "t4", rows("t4")).unwrap();
    let err = p
        .drop_tenant(&mut conn, "t4", true, delete("t4"))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Hook {
                hook: HookName::BeforeDrop,
                ..
            }
        ),
        "{err}"
    );
    assert!(exists(&mut conn, "t4"));
    assert_eq!(count(&mut conn, "select count(*) as n from tenants"), 1);

    // Protected schemas are refused, and the row deletion is rolled back with it.
    conn.batch_execute(
        "create schema www; insert into tenants (schema_name, name) values ('www', 'www')",
    )
    .unwrap();
    let err = p
        .drop_tenant(&mut conn, "www", true, delete("www"))
        .unwrap_err();
    assert!(matches!(err, Error::Protected { .. }), "{err}");
    assert!(exists(&mut conn, "www"));
    assert_eq!(count(&mut conn, "select count(*) as n from tenants"), 2);
}

#[test]
fn concurrent_creation_of_one_tenant_has_one_winner() {
    let db = test_database!();
    let mut conn = db.connect();
    setup(&mut conn);
    let p = Provisioner::builder(plain_config(), TENANT)
        .after_sync(|_, _| {
            // Widen the window in which the other thread waits.
            std::thread::sleep(std::time::Duration::from_millis(200));
            Ok(())
        })
        .build()
        .unwrap();
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let p = p.clone();
            let barrier = Arc::clone(&barrier);
            let mut c = db.connect();
            std::thread::spawn(move || {
                barrier.wait();
                p.create_tenant(&mut c, "t1", rows("t1"))
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "{results:?}");
    let err = results.into_iter().find_map(Result::err).unwrap();
    assert!(
        matches!(&err, Error::SchemaExists { schema } if schema == "t1"),
        "{err}"
    );
    assert_eq!(count(&mut conn, "select count(*) as n from tenants"), 1);
    assert_eq!(count(&mut conn, "select count(*) as n from domains"), 1);
    assert_eq!(ledger(&mut conn, "t1").len(), 5);
}

#[test]
fn the_default_models_provision_atomically() {
    use pgschemas_diesel::models::{DefaultDomain, DefaultTenant, NewTenant, SHARED_MIGRATIONS};
    use pgschemas_diesel::{models::NewDomain, models::TenantModel, models::add_domain};

    let db = test_database!();
    let mut conn = db.connect();
    conn.run_pending_migrations(SHARED_MIGRATIONS).unwrap();
    let config = plain_config();
    let create = |p: &Provisioner, conn: &mut PgConnection, name: &str| {
        let schema = config.check_tenant_name(name)?;
        p.create_tenant(conn, name, |conn| {
            let tenant = DefaultTenant::insert(conn, NewTenant::new(&schema, name))?;
            let _: DefaultDomain = add_domain(
                conn,
                &tenant.id,
                NewDomain::new(format!("{name}.example.com")),
            )?;
            Ok(tenant)
        })
    };
    let p = Provisioner::builder(config.clone(), TENANT)
        .build()
        .unwrap();
    let tenant = create(&p, &mut conn, "acme").unwrap();
    assert_eq!(tenant.schema_name, "acme");
    assert!(exists(&mut conn, "acme"));
    assert_eq!(count(&mut conn, "select count(*) as n from domains"), 1);

    let vetoing = Provisioner::builder(config.clone(), TENANT)
        .after_sync(|_, _| Err("no".into()))
        .build()
        .unwrap();
    assert!(create(&vetoing, &mut conn, "globex").is_err());
    assert!(
        DefaultTenant::find_by_schema_name(&mut conn, "globex")
            .unwrap()
            .is_none()
    );
    assert_eq!(count(&mut conn, "select count(*) as n from domains"), 1);
    assert!(!exists(&mut conn, "globex"));

    // A domain taken by another tenant fails the creation as a whole.
    let err = p
        .create_tenant(&mut conn, "initech", |conn| {
            let schema = SchemaName::new("initech")?;
            let tenant = DefaultTenant::insert(conn, NewTenant::new(&schema, "Initech"))?;
            let d: DefaultDomain =
                add_domain(conn, &tenant.id, NewDomain::new("acme.example.com"))?;
            Ok(d)
        })
        .unwrap_err();
    assert!(matches!(err, Error::DomainTaken { .. }), "{err}");
    assert!(!exists(&mut conn, "initech"));
    assert!(
        DefaultTenant::find_by_schema_name(&mut conn, "initech")
            .unwrap()
            .is_none()
    );
}

// ---------------------------------------------------------------------------------------
// Reference schema and provisioning by cloning
// ---------------------------------------------------------------------------------------

#[test]
fn reference_is_created_migrated_and_recreated() {
    let db = test_database!();
    let mut conn = db.connect();
    let config = config();
    create_reference(&mut conn, &config, TENANT).unwrap();
    assert_eq!(ledger(&mut conn, "sample").len(), 5);
    let err = create_reference(&mut conn, &config, TENANT).unwrap_err();
    assert!(matches!(err, Error::SchemaExists { .. }), "{err}");

    conn.batch_execute("insert into sample.products (sku, name, price_cents) values ('x', 'x', 1)")
        .unwrap();
    recreate_reference(&mut conn, &config, TENANT).unwrap();
    recreate_reference(&mut conn, &config, TENANT).unwrap();
    assert_eq!(
        count(&mut conn, "select count(*) as n from sample.products"),
        0
    );
    assert_eq!(ledger(&mut conn, "sample").len(), 5);

    // A failing recreation keeps the old reference.
    let err = recreate_reference(&mut conn, &config, FAILING).unwrap_err();
    assert!(matches!(err, Error::Migration(_)), "{err}");
    assert_eq!(ledger(&mut conn, "sample").len(), 5);

    let err = create_reference(&mut conn, &plain_config(), TENANT).unwrap_err();
    assert!(matches!(err, Error::NoCloneReference { .. }), "{err}");
    assert!(
        Provisioner::builder(plain_config(), TENANT)
            .clone_from_reference(true)
            .build()
            .is_err()
    );
}

#[test]
fn tenants_are_cloned_from_the_reference_with_its_seed_rows() {
    let db = test_database!();
    let mut conn = db.connect();
    setup(&mut conn);
    let p = Provisioner::builder(config(), TENANT).build().unwrap();
    p.create_reference(&mut conn).unwrap();
    conn.batch_execute(
        "insert into sample.products (sku, name, price_cents) values ('seed', 'Seed product', 100)",
    )
    .unwrap();

    for t in ["t1", "t2"] {
        p.create_tenant(&mut conn, t, rows(t)).unwrap();
        // The seed row came with the clone: the tenant was cloned, not migrated.
        assert_eq!(
            count(
                &mut conn,
                &format!("select count(*) as n from {t}.products where sku = 'seed'")
            ),
            1
        );
        assert_eq!(ledger(&mut conn, t).len(), 5);
        // Sequences belong to the tenant and continue after the reference's.
        config().activate(&mut conn, &t).unwrap();
        let id: Id = diesel::sql_query(
            "insert into products (sku, name, price_cents) values ('new', 'n', 1) returning id",
        )
        .get_result(&mut conn)
        .unwrap();
        assert_eq!(id.id, 2);
        conn.deactivate().unwrap();
    }

    // The reference moves on (release migration 6): the cached script notices.
    config().activate(&mut conn, &"sample").unwrap();
    conn.run_pending_migrations(RELEASE).unwrap();
    conn.deactivate().unwrap();
    p.create_tenant(&mut conn, "t3", rows("t3")).unwrap();
    assert!(columns(&mut conn, "t3", "customers").contains(&"phone".to_owned()));
    assert_eq!(ledger(&mut conn, "t3").len(), 6);

    // A failing hook after a clone leaves nothing either.
    let p2 = Provisioner::builder(config(), TENANT)
        .after_sync(|_, _| Err("veto".into()))
        .build()
        .unwrap();
    assert!(p2.create_tenant(&mut conn, "t4", rows("t4")).is_err());
    assert!(!exists(&mut conn, "t4"));
    assert_eq!(count(&mut conn, "select count(*) as n from tenants"), 3);
}

#[test]
fn a_lagging_reference_is_cloned_then_migrated_the_rest_of_the_way() {
    let db = test_database!();
    let mut conn = db.connect();
    setup(&mut conn);
    create_reference(&mut conn, &config(), TENANT).unwrap();
    let p = Provisioner::builder(config(), RELEASE)
        .clone_data(false)
        .build()
        .unwrap();
    p.create_tenant(&mut conn, "t1", rows("t1")).unwrap();
    assert_eq!(ledger(&mut conn, "t1").len(), 6);
    assert!(columns(&mut conn, "t1", "customers").contains(&"phone".to_owned()));
    // The reference itself is untouched.
    assert_eq!(ledger(&mut conn, "sample").len(), 5);
}

#[test]
fn a_missing_reference_falls_back_to_migrations() {
    let db = test_database!();
    let mut conn = db.connect();
    setup(&mut conn);
    let p = Provisioner::builder(config(), TENANT).build().unwrap();
    p.create_tenant(&mut conn, "t1", rows("t1")).unwrap();
    assert_eq!(ledger(&mut conn, "t1").len(), 5);
}

// ---------------------------------------------------------------------------------------
// clone_schema
// ---------------------------------------------------------------------------------------

/// A schema with one of everything the clone handles, on top of the workload migrations.
const RICH: &str = r#"
create table public.catalog (id serial primary key, name text not null);
insert into public.catalog (name) values ('shared');
set search_path = src;
create type mood as enum ('sad', 'ok', 'it''s fine');
create domain positive_int as integer check (value > 0);
create type pair as (a integer, b text);
create table things (
  id bigint generated always as identity (start with 100) primary key,
  serial_no serial unique,
  name text not null default 'unnamed',
  mood mood not null default 'ok',
  qty positive_int,
  price numeric(10,2) check (price >= 0),
  total numeric generated always as (price * 2) stored,
  area box,
  catalog_id int references public.catalog(id),
  customer_id bigint references customers(id),
  tags text[] default '{}',
  p pair,
  "Odd Name" text collate "C",
  constraint things_area_excl exclude using gist (area with &&)
);
create function thing_count() returns bigint language sql stable as $$ select count(*) from things $$;
create index things_name_lower on things (lower(name)) where mood <> 'sad';
create table things_log (id bigserial primary key, thing_id bigint not null references things(id) on delete cascade,
                         note text not null, seen bigint default thing_count());
create function log_thing() returns trigger language plpgsql as $$
begin
  insert into things_log (thing_id, note) values (new.id, 'created ' || new.name);
  return new;
end $$;
create trigger things_log_insert after insert on things for each row execute function log_thing();
create function things_named(n text) returns setof things language sql stable as $$ select * from things where name = n $$;
create view happy_things as select id, name from things where mood = 'ok';
create view happy_names as select name from happy_things;
create view named_x as select id from things_named('x');
create function happy_count() returns bigint language sql stable begin atomic select count(*) from happy_things; end;
alter table things_log add column happy bigint default happy_count();
create materialized view thing_stats as select mood, count(*) as n from things group by mood;
create unique index thing_stats_mood on thing_stats (mood);
create statistics things_stats (ndistinct) on name, mood from things;
create policy things_all on things using (true);
alter table things enable row level security;
create sequence standalone_seq increment by 5 start with 10;
create table a_cycle (id int primary key, b_id int);
create table b_cycle (id int primary key, a_id int references a_cycle(id));
alter table a_cycle add constraint a_cycle_b_fk foreign key (b_id) references b_cycle(id);
create table node (id int primary key, parent int references node(id));
create table keyed (k int not null);
create unique index keyed_k on keyed (k);
create table refs_keyed (k int references keyed (k));
create table odd (id bigserial primary key);
alter sequence odd_id_seq increment by 3;
create rule things_log_no_delete as on delete to things_log do instead nothing;
comment on table things is 'Things, with an ''apostrophe'' and a \backslash';
comment on column things.name is 'The name';
comment on function thing_count() is 'How many';
comment on view happy_things is 'Happy ones';
comment on type mood is 'Moods';
comment on constraint things_area_excl on things is 'No overlaps';
comment on trigger things_log_insert on things is 'Logs';
comment on index things_name_lower is 'Lower names';
insert into customers (name, email) values ('c', 'c@x');
insert into things (name, mood, qty, price, area, catalog_id, customer_id)
  values ('x', 'ok', 1, 1.5, box(point(0,0), point(1,1)), 1, 1),
         ('y', 'sad', 2, 2.5, box(point(2,2), point(3,3)), null, null);
select setval('standalone_seq', 42);
insert into a_cycle values (1, null); insert into b_cycle values (1, 1); update a_cycle set b_id = 1;
insert into node values (4, 5), (5, null), (6, 4);
insert into keyed values (7); insert into refs_keyed values (7);
insert into odd default values; insert into odd default values;
alter table things_log add constraint things_log_not_y check (note <> 'created y') not valid;
refresh materialized view thing_stats;
reset search_path;
"#;

fn build_rich_source(conn: &mut PgConnection) {
    conn.batch_execute("create schema src").unwrap();
    plain_config().activate(conn, &"src").unwrap();
    conn.run_pending_migrations(TENANT).unwrap();
    conn.deactivate().unwrap();
    conn.batch_execute(RICH).unwrap();
}

/// Every definition of `schema`, read with the path set to it alone (so its own objects are
/// unqualified) and with its name removed where PostgreSQL qualifies anyway.
fn describe(conn: &mut PgConnection, schema: &str) -> Vec<String> {
    conn.batch_execute(&format!("set search_path = {schema}"))
        .unwrap();
    let q = format!("'{schema}'::regnamespace");
    let strip = format!("replace(replace(x, '{schema}.', ''), '\"{schema}\".', '')");
    let sql = format!(
        "select {strip} as line from (
           select 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                  || ' notnull=' || a.attnotnull || ' identity=' || a.attidentity::text || ' generated=' || a.attgenerated::text
                  || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-')
                  || ' collation=' || coalesce((select collname from pg_collation where oid = a.attcollation), '-') as x
             from pg_attribute a join pg_class c on c.oid = a.attrelid
             left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
             where c.relnamespace = {q} and c.relkind in ('r', 'v', 'm', 'c') and a.attnum > 0 and not a.attisdropped
           union all select 'class ' || c.relname || ' ' || c.relkind::text || ' rls=' || c.relrowsecurity
             from pg_class c where c.relnamespace = {q}
           union all select 'constraint ' || conname || ' ' || pg_get_constraintdef(oid)
             from pg_constraint where connamespace = {q}
           union all select 'index ' || pg_get_indexdef(i.indexrelid)
             from pg_index i join pg_class c on c.oid = i.indexrelid where c.relnamespace = {q}
           union all select 'trigger ' || pg_get_triggerdef(t.oid, true) || ' enabled=' || t.tgenabled::text
             from pg_trigger t join pg_class c on c.oid = t.tgrelid where c.relnamespace = {q} and not t.tgisinternal
           union all select 'view ' || c.relname || ' ' || pg_get_viewdef(c.oid)
             from pg_class c where c.relnamespace = {q} and c.relkind in ('v', 'm')
           union all select 'function ' || pg_get_functiondef(p.oid)
             from pg_proc p where p.pronamespace = {q}
           union all select 'type ' || t.typname || ' ' || t.typtype::text || ' '
                  || coalesce((select string_agg(enumlabel, ',' order by enumsortorder) from pg_enum where enumtypid = t.oid), '')
             from pg_type t where t.typnamespace = {q}
           union all select 'sequence ' || c.relname || ' ' || s.seqincrement || ' ' || s.seqstart || ' ' || s.seqmax
             from pg_sequence s join pg_class c on c.oid = s.seqrelid where c.relnamespace = {q}
           union all select 'policy ' || policyname || ' ' || coalesce(qual, '') from pg_policies where schemaname = '{schema}'
           union all select 'rule ' || pg_get_ruledef(r.oid, true)
             from pg_rewrite r join pg_class c on c.oid = r.ev_class where c.relnamespace = {q} and r.rulename <> '_RETURN'
           union all select 'statistics ' || pg_get_statisticsobjdef(s.oid) from pg_statistic_ext s where s.stxnamespace = {q}
           union all select 'comment ' || d.classoid::regclass || ' ' || d.objsubid || ' ' || d.description
             || ' on ' || coalesce((select relname from pg_class where oid = d.objoid), (select proname from pg_proc where oid = d.objoid),
                                  (select typname from pg_type where oid = d.objoid), (select conname from pg_constraint where oid = d.objoid),
                                  (select tgname from pg_trigger where oid = d.objoid), '?')
             from pg_description d
             where d.objoid in (select oid from pg_class where relnamespace = {q}
                                union all select oid from pg_proc where pronamespace = {q}
                                union all select oid from pg_type where typnamespace = {q}
                                union all select oid from pg_constraint where connamespace = {q}
                                union all select t.oid from pg_trigger t join pg_class c on c.oid = t.tgrelid where c.relnamespace = {q})
         ) s order by 1"
    );
    let out = lines(conn, &sql);
    conn.batch_execute("reset search_path").unwrap();
    out
}

/// How many dependencies of objects outside `schema` point at objects inside it.
fn outside_dependencies(conn: &mut PgConnection, schema: &str) -> Vec<String> {
    let q = format!("'{schema}'::regnamespace");
    lines(
        conn,
        &format!(
            "with inside as (
               select 'pg_class'::regclass as cls, oid from pg_class where relnamespace = {q}
               union all select 'pg_type'::regclass, oid from pg_type where typnamespace = {q}
               union all select 'pg_proc'::regclass, oid from pg_proc where pronamespace = {q}
               union all select 'pg_constraint'::regclass, oid from pg_constraint where connamespace = {q}
               union all select 'pg_attrdef'::regclass, d.oid from pg_attrdef d join pg_class c on c.oid = d.adrelid where c.relnamespace = {q}
               union all select 'pg_rewrite'::regclass, r.oid from pg_rewrite r join pg_class c on c.oid = r.ev_class where c.relnamespace = {q}
               union all select 'pg_trigger'::regclass, t.oid from pg_trigger t join pg_class c on c.oid = t.tgrelid where c.relnamespace = {q}
               union all select 'pg_policy'::regclass, p.oid from pg_policy p join pg_class c on c.oid = p.polrelid where c.relnamespace = {q}
               union all select 'pg_statistic_ext'::regclass, oid from pg_statistic_ext where stxnamespace = {q}
             )
             select pg_describe_object(d.classid, d.objid, d.objsubid) || ' -> '
                    || pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid) as line
             from pg_depend d
             where (d.refclassid, d.refobjid) in (select cls, oid from inside)
               and (d.classid, d.objid) not in (select cls, oid from inside)
               and d.deptype <> 'i'"
        ),
    )
}

#[test]
fn a_clone_has_the_same_definitions_and_no_tie_to_its_source() {
    let db = test_database!();
    let mut conn = db.connect();
    build_rich_source(&mut conn);
    let before = outside_dependencies(&mut conn, "src");
    assert!(before.is_empty(), "{before:#?}");
    let src = SchemaName::new("src").unwrap();
    let dst = SchemaName::new("dst").unwrap();

    let report = clone_schema(&mut conn, &plain_config(), &src, &dst, false).unwrap();
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(report.migrations.len(), 5);
    // 5 workload tables, the ledger, things, things_log, a_cycle, b_cycle, node, keyed,
    // refs_keyed, odd.
    assert_eq!(report.tables, 14, "{report:?}");
    assert_eq!(report.views, 3);
    assert_eq!(report.materialized_views, 1);
    assert_eq!(report.functions, 4);
    assert_eq!(report.triggers, 1);
    assert_eq!(report.types, 3);
    assert_eq!(report.policies, 1);
    assert_eq!(report.rules, 1);
    assert_eq!(report.statistics, 1);
    assert_eq!(report.comments, 8);

    // Same definitions, modulo the schema's name.
    let a = describe(&mut conn, "src");
    let b = describe(&mut conn, "dst");
    let only_a: Vec<_> = a.iter().filter(|l| !b.contains(l)).collect();
    let only_b: Vec<_> = b.iter().filter(|l| !a.contains(l)).collect();
    assert!(
        only_a.is_empty() && only_b.is_empty(),
        "source only: {only_a:#?}\nclone only: {only_b:#?}"
    );
    assert!(a.len() > 100, "{}", a.len());

    // Nothing of the clone depends on the source.
    let deps = outside_dependencies(&mut conn, "src");
    assert!(deps.is_empty(), "{deps:#?}");
    assert_eq!(
        count(
            &mut conn,
            "select count(*) as n from pg_constraint where connamespace = 'dst'::regnamespace \
             and confrelid <> 0 and confrelid::regclass::text like 'src.%'"
        ),
        0
    );
    // Even fully qualified, no default names the source.
    conn.batch_execute("set search_path = ''").unwrap();
    let defaults = lines(
        &mut conn,
        "select pg_get_expr(d.adbin, d.adrelid) as line from pg_attrdef d join pg_class c on c.oid = d.adrelid \
         where c.relnamespace = 'dst'::regnamespace",
    );
    conn.batch_execute("reset search_path").unwrap();
    assert!(defaults.iter().any(|d| d.contains("dst.")), "{defaults:?}");
    assert!(!defaults.iter().any(|d| d.contains("src.")), "{defaults:?}");
    // The FK to the shared schema is kept as it is.
    assert_eq!(
        count(
            &mut conn,
            "select count(*) as n from pg_constraint where connamespace = 'dst'::regnamespace \
             and confrelid = 'public.catalog'::regclass"
        ),
        1
    );

    // No rows were copied, but the ledger was and the sequences kept their positions.
    assert_eq!(count(&mut conn, "select count(*) as n from dst.things"), 0);
    assert_eq!(ledger(&mut conn, "dst"), ledger(&mut conn, "src"));
    assert_eq!(
        count(&mut conn, "select last_value as n from dst.standalone_seq"),
        42
    );

    // The source goes away; the clone keeps working.
    conn.batch_execute("drop schema src cascade").unwrap();
    plain_config().activate(&mut conn, &"dst").unwrap();
    conn.batch_execute(
        "insert into customers (name, email) values ('d', 'd@x');
         insert into things (name, area, catalog_id, customer_id)
           select 'x', box(point(0,0), point(1,1)), 1, max(id) from customers;",
    )
    .unwrap();
    // Identity and serial continue after the source's values.
    assert_eq!(count(&mut conn, "select id as n from things"), 102);
    assert_eq!(
        count(&mut conn, "select serial_no::int8 as n from things"),
        3
    );
    assert_eq!(count(&mut conn, "select id as n from customers"), 2);
    // Defaults, the enum, the generated column, the trigger, the views.
    assert_eq!(
        lines(
            &mut conn,
            "select mood::text || ' ' || name || ' ' || coalesce(total::text, 'null') as line from things"
        ),
        ["ok x null"]
    );
    assert_eq!(count(&mut conn, "select count(*) as n from things_log"), 1);
    assert_eq!(count(&mut conn, "select count(*) as n from happy_names"), 1);
    assert_eq!(count(&mut conn, "select count(*) as n from named_x"), 1);
    assert_eq!(count(&mut conn, "select happy_count() as n"), 1);
    assert_eq!(count(&mut conn, "select thing_count() as n"), 1);
    conn.batch_execute("refresh materialized view thing_stats")
        .unwrap();
    assert_eq!(
        count(&mut conn, "select sum(n)::int8 as n from thing_stats"),
        1
    );
    // Constraints hold inside the clone.
    for bad in [
        "insert into things (name, customer_id) values ('fk', 999)",
        "insert into things (name, catalog_id) values ('fk', 999)",
        "insert into things (name, price) values ('neg', -1)",
        "insert into things (name, qty) values ('dom', 0)",
        "insert into things (name, area) values ('excl', box(point(0,0), point(2,2)))",
        "insert into things (name, mood) values ('enum', 'angry')",
        "insert into things (id, name) values (1, 'identity always')",
    ] {
        assert!(
            conn.batch_execute(bad).is_err(),
            "{bad} should fail in the clone"
        );
    }
    // The rule came along.
    conn.batch_execute("delete from things_log").unwrap();
    assert_eq!(count(&mut conn, "select count(*) as n from things_log"), 1);
    conn.deactivate().unwrap();

    // A later migration applies only what is newer.
    plain_config().activate(&mut conn, &"dst").unwrap();
    let applied = conn.run_pending_migrations(RELEASE).unwrap();
    assert_eq!(applied.len(), 1);
    conn.deactivate().unwrap();
}

#[test]
fn a_clone_with_data_copies_the_rows() {
    let db = test_database!();
    let mut conn = db.connect();
    build_rich_source(&mut conn);
    let src = SchemaName::new("src").unwrap();
    let dst = SchemaName::new("dst").unwrap();
    let report = clone_schema(&mut conn, &plain_config(), &src, &dst, true).unwrap();
    assert!(report.with_data);
    assert_eq!(describe(&mut conn, "src"), describe(&mut conn, "dst"));
    let digests = table_digests(&mut conn, "src");
    assert_eq!(digests.len(), 14);
    assert_eq!(digests, table_digests(&mut conn, "dst"));
    assert!(outside_dependencies(&mut conn, "src").is_empty());
    let rows = "select id || ' ' || serial_no || ' ' || name || ' ' || mood || ' ' || coalesce(total::text, '-') as line from {}.things order by id";
    assert_eq!(
        lines(&mut conn, &rows.replace("{}", "src")),
        lines(&mut conn, &rows.replace("{}", "dst"))
    );
    assert_eq!(count(&mut conn, "select count(*) as n from dst.things"), 2);
    // The trigger did not fire again for the copied rows.
    assert_eq!(
        count(&mut conn, "select count(*) as n from dst.things_log"),
        count(&mut conn, "select count(*) as n from src.things_log"),
    );
    assert_eq!(
        count(&mut conn, "select count(*) as n from dst.customers"),
        1
    );
    assert_eq!(
        count(&mut conn, "select sum(n)::int8 as n from dst.thing_stats"),
        2
    );
    plain_config().activate(&mut conn, &"dst").unwrap();
    let id: Id = diesel::sql_query("insert into things (name) values ('z') returning id")
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(id.id, 102);
    // A sequence with options of its own continues with them.
    assert_eq!(count(&mut conn, "select nextval('odd_id_seq') as n"), 7);
}

/// One line per table of `schema`: its name and a digest of its rows.
fn table_digests(conn: &mut PgConnection, schema: &str) -> Vec<String> {
    let tables = lines(
        conn,
        &format!(
            "select relname::text as line from pg_class where relnamespace = '{schema}'::regnamespace \
             and relkind = 'r' order by 1"
        ),
    );
    tables
        .into_iter()
        .map(|t| {
            let digest = lines(
                conn,
                &format!(
                    "select '{t} ' || count(*) || ' ' || coalesce(md5(string_agg(x::text, ',' order by x::text)), '-') as line \
                     from {schema}.{t} x"
                ),
            );
            digest.concat()
        })
        .collect()
}

#[test]
fn clone_refuses_bad_arguments_and_leaves_nothing() {
    let db = test_database!();
    let mut conn = db.connect();
    build_rich_source(&mut conn);
    let config = config();
    let n = |s: &str| SchemaName::new(s).unwrap();

    let err = clone_schema(&mut conn, &config, &n("missing"), &n("dst"), false).unwrap_err();
    assert!(
        matches!(&err, Error::SchemaNotFound { schema } if schema == "missing"),
        "{err}"
    );
    assert!(!exists(&mut conn, "dst"));

    let err = clone_schema(&mut conn, &config, &n("src"), &n("public"), false).unwrap_err();
    assert!(matches!(err, Error::NameClash { .. }), "{err}");
    let err = clone_schema(&mut conn, &config, &n("src"), &n("www"), false).unwrap_err();
    assert!(matches!(err, Error::NameClash { .. }), "{err}");
    let err = clone_schema(&mut conn, &config, &n("src"), &n("src"), false).unwrap_err();
    assert!(matches!(err, Error::SchemaExists { .. }), "{err}");

    clone_schema(&mut conn, &config, &n("src"), &n("dst"), false).unwrap();
    let err = clone_schema(&mut conn, &config, &n("src"), &n("dst"), false).unwrap_err();
    assert!(matches!(err, Error::SchemaExists { .. }), "{err}");

    // The clone reference is a valid destination.
    clone_schema(&mut conn, &config, &n("src"), &n("sample"), false).unwrap();

    // Objects the clone cannot reproduce are refused up front.
    conn.batch_execute("create table src.parts (id int) partition by range (id)")
        .unwrap();
    let err = clone_schema(&mut conn, &config, &n("src"), &n("dst2"), false).unwrap_err();
    assert!(matches!(err, Error::Clone { .. }), "{err}");
    assert!(err.to_string().contains("partitioned table parts"), "{err}");
    assert!(!exists(&mut conn, "dst2"));
}

#[test]
fn a_clone_names_its_doubts_and_fails_whole() {
    let db = test_database!();
    let mut conn = db.connect();
    conn.batch_execute(
        "create schema src;
         create table src.t1 (id int primary key);
         create table src.t2 (id int primary key references src.t1);
         create function src.f() returns bigint language plpgsql
           as $$ declare n bigint;
           begin execute format('select count(*) from %I.t1', 'src') into n; return n; end $$;",
    )
    .unwrap();
    let src = SchemaName::new("src").unwrap();
    let report = clone_schema(
        &mut conn,
        &plain_config(),
        &src,
        &SchemaName::new("dst").unwrap(),
        false,
    )
    .unwrap();
    // The function body has its source schema's name in a string: the report says so.
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(report.warnings[0].contains("f()"), "{:?}", report.warnings);

    // A clone inside the caller's transaction that fails afterwards leaves nothing.
    let result: Result<(), Error> = conn.transaction(|c| {
        clone_schema(
            c,
            &plain_config(),
            &src,
            &SchemaName::new("dst2").unwrap(),
            false,
        )?;
        assert!(exists(c, "dst2"));
        Err(Error::Config("abort".into()))
    });
    assert!(result.is_err());
    assert!(!exists(&mut conn, "dst2"));

    // A clone failing half-way (an event trigger refuses the second table) leaves nothing.
    conn.batch_execute(
        "create function public.refuse_t2() returns event_trigger language plpgsql as $$
         begin
           if exists (select 1 from pg_event_trigger_ddl_commands() where object_identity = 'dst3.t2') then
             raise exception 'no t2 in dst3';
           end if;
         end $$;
         create event trigger refuse_t2 on ddl_command_end execute function public.refuse_t2();",
    )
    .unwrap();
    let err = clone_schema(
        &mut conn,
        &plain_config(),
        &src,
        &SchemaName::new("dst3").unwrap(),
        false,
    )
    .unwrap_err();
    assert!(err.report().to_string().contains("no t2 in dst3"), "{err}");
    assert_eq!(err.schema(), Some("dst3"));
    assert!(!exists(&mut conn, "dst3"));
    assert_eq!(
        count(
            &mut conn,
            "select count(*) as n from pg_class where relname = 't1'"
        ),
        2,
        "only src and dst hold a t1, no half-made clone"
    );
    conn.batch_execute("drop event trigger refuse_t2").unwrap();
}

/// A clone reports the source's ledger exactly, whatever the characters of its versions.
#[test]
fn a_clone_reports_the_ledger_versions_exactly() {
    let db = test_database!();
    let mut conn = db.connect();
    let dir = crate::migrate::odd_migrations("clone-odd");
    let odd = diesel_migrations::FileBasedMigrations::from_path(&dir).unwrap();
    conn.batch_execute("create schema src").unwrap();
    let src = SchemaName::new("src").unwrap();
    let dst = SchemaName::new("dst").unwrap();
    pgschemas_diesel::migrate::migrate_schema(&mut conn, &plain_config(), &src, &odd).unwrap();

    let report = clone_schema(&mut conn, &plain_config(), &src, &dst, false).unwrap();
    let mut want: Vec<String> = crate::migrate::ODD_VERSIONS
        .iter()
        .map(|v| (*v).to_owned())
        .collect();
    want.sort();
    let mut got = report.migrations.clone();
    got.sort();
    assert_eq!(got, want);
    assert!(
        pgschemas_diesel::migrate::pending_migrations(&mut conn, &dst, &odd)
            .unwrap()
            .is_empty()
    );
    std::fs::remove_dir_all(dir).unwrap();
}
