//! The live route table against a real server, over the default models and their shared
//! migrations: it follows changes made from another connection (through the NOTIFY
//! triggers), recovers when its listening backend is killed, reloads fully as a safety net,
//! and answers misses without touching the database.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Integer, Nullable, Text};
use diesel_migrations::MigrationHarness;
use pgschemas_diesel::models::{SHARED_MIGRATIONS, default_catalog};
use pgschemas_diesel::{
    Config, Error, StaticTenant, routing::Resolution, routing::RouteOptions, routing::RouteTable,
    routing::Via, test_database,
};

/// How long a test waits for the table to follow a change before failing.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The default models' shared tables (with their NOTIFY triggers).
pub fn migrated(conn: &mut PgConnection) {
    conn.run_pending_migrations(SHARED_MIGRATIONS)
        .expect("shared migrations");
}

/// `www` (localhost, fallback tenants.localhost, header alias `main`) and `blog`.
pub fn sandbox_config() -> Config {
    Config::builder()
        .static_tenant(
            StaticTenant::builder("www")
                .domain("localhost")
                .fallback_domain("tenants.localhost")
                .header("main"),
        )
        .static_tenant(StaticTenant::builder("blog").domain("blog.localhost"))
        .build()
        .unwrap()
}

/// Waits (on the table's version, no sleeping) until `condition` holds.
pub fn eventually(table: &RouteTable, what: &str, mut condition: impl FnMut(&RouteTable) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let version = table.version();
        if condition(table) {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "the route table never got to: {what} (status {:?})",
            table.status()
        );
        table.wait_for_version(version + 1, left);
    }
}

fn schema_of(table: &RouteTable, host: &str, path: &str) -> Option<String> {
    table
        .resolve(host, path)
        .route()
        .map(|r| r.schema().to_string())
}

fn start(url: &str, options: RouteOptions) -> RouteTable {
    RouteTable::start(url, sandbox_config(), Arc::new(default_catalog()), options).unwrap()
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
}

fn add_tenant(conn: &mut PgConnection, schema: &str) -> i64 {
    diesel::sql_query("INSERT INTO tenants (schema_name, name) VALUES ($1, $1) RETURNING id")
        .bind::<Text, _>(schema)
        .get_result::<Id>(conn)
        .unwrap()
        .id
}

fn add_domain(
    conn: &mut PgConnection,
    tenant: i64,
    domain: &str,
    folder: Option<&str>,
    primary: bool,
) {
    diesel::sql_query(
        "INSERT INTO domains (tenant_id, domain, folder, is_primary) VALUES ($1, $2, $3, $4)",
    )
    .bind::<diesel::sql_types::BigInt, _>(tenant)
    .bind::<Text, _>(domain)
    .bind::<Nullable<Text>, _>(folder)
    .bind::<Bool, _>(primary)
    .execute(conn)
    .unwrap();
}

#[test]
fn follows_changes_made_from_another_connection() {
    let db = test_database!();
    let mut conn = db.connect();
    migrated(&mut conn);
    let t1 = add_tenant(&mut conn, "tenant1");
    add_domain(&mut conn, t1, "tenant1.localhost", None, true);

    let table = start(db.url(), RouteOptions::default());
    assert_eq!(table.version(), 1);
    assert!(table.status().connected);
    assert_eq!(
        schema_of(&table, "tenant1.localhost", "/").as_deref(),
        Some("tenant1")
    );
    assert_eq!(schema_of(&table, "localhost", "/").as_deref(), Some("www"));

    // Add a tenant and its domains.
    let t2 = add_tenant(&mut conn, "tenant2");
    add_domain(&mut conn, t2, "tenants.localhost", Some("tenant2"), true);
    eventually(&table, "tenant2 by folder", |t| {
        schema_of(t, "tenants.localhost", "/tenant2/x").as_deref() == Some("tenant2")
    });
    let route = table.resolve("tenants.localhost", "/tenant2/x");
    assert_eq!(route.route().unwrap().via(), Via::DynamicFolder);
    assert_eq!(
        schema_of(&table, "tenants.localhost", "/other/").as_deref(),
        Some("www")
    );

    // Change a domain.
    conn.batch_execute(
        "UPDATE domains SET domain = 'renamed.localhost' WHERE domain = 'tenant1.localhost'",
    )
    .unwrap();
    eventually(&table, "tenant1 renamed", |t| {
        schema_of(t, "renamed.localhost", "/").as_deref() == Some("tenant1")
    });
    assert!(matches!(
        table.resolve("tenant1.localhost", "/"),
        Resolution::NotFound
    ));

    // A redirecting domain, then suspend the tenant.
    conn.batch_execute(&format!(
        "INSERT INTO domains (tenant_id, domain, redirect_to_primary) VALUES ({t1}, 'old.localhost', true)"
    ))
    .unwrap();
    eventually(
        &table,
        "redirect",
        |t| matches!(t.resolve("old.localhost:3000", "/a?b"), Resolution::Redirect(r) if r.location() == "//renamed.localhost:3000/a?b"),
    );
    conn.batch_execute(&format!(
        "UPDATE tenants SET status = 'suspended' WHERE id = {t1}"
    ))
    .unwrap();
    eventually(&table, "tenant1 suspended", |t| {
        matches!(
            t.resolve("renamed.localhost", "/"),
            Resolution::Suspended(_)
        ) && matches!(t.resolve_header("tenant1"), Resolution::Suspended(_))
    });

    // Delete a domain, then a tenant (its domains go with it).
    conn.batch_execute("DELETE FROM domains WHERE domain = 'renamed.localhost'")
        .unwrap();
    eventually(&table, "renamed.localhost gone", |t| {
        matches!(t.resolve("renamed.localhost", "/"), Resolution::NotFound)
    });
    assert_eq!(
        table
            .resolve_header(t2.to_string())
            .route()
            .map(|r| r.schema().to_string())
            .as_deref(),
        Some("tenant2")
    );
    conn.batch_execute(&format!("DELETE FROM tenants WHERE id = {t2}"))
        .unwrap();
    eventually(&table, "tenant2 gone", |t| {
        matches!(t.resolve_header("tenant2"), Resolution::NotFound)
            && schema_of(t, "tenants.localhost", "/tenant2/x").as_deref() == Some("www")
    });
    assert!(table.status().notifications >= 1);
    assert!(
        table.routes().warnings().is_empty(),
        "{:?}",
        table.routes().warnings()
    );
}

#[test]
fn a_transaction_is_seen_whole() {
    let db = test_database!();
    let mut conn = db.connect();
    migrated(&mut conn);
    let table = start(db.url(), RouteOptions::default());
    conn.transaction(|c| {
        for i in 0..50 {
            let t = add_tenant(c, &format!("bulk{i}"));
            add_domain(c, t, &format!("bulk{i}.localhost"), None, true);
        }
        QueryResult::Ok(())
    })
    .unwrap();
    eventually(&table, "50 tenants", |t| t.routes().tenant_count() == 52);
    for i in 0..50 {
        let host = format!("bulk{i}.localhost");
        assert_eq!(schema_of(&table, &host, "/"), Some(format!("bulk{i}")));
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn backend_alive(conn: &mut PgConnection, pid: i32) -> bool {
    diesel::sql_query("SELECT count(*) AS n FROM pg_stat_activity WHERE pid = $1")
        .bind::<Integer, _>(pid)
        .get_result::<Count>(conn)
        .unwrap()
        .n
        > 0
}

#[test]
fn recovers_when_its_backend_is_killed() {
    let db = test_database!();
    let mut conn = db.connect();
    migrated(&mut conn);
    let errors = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&errors);
    let options = RouteOptions::default()
        .heartbeat(Duration::from_millis(200))
        .on_error(move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
        });
    let table = start(db.url(), options);
    let pid = table.status().listener_pid.unwrap();
    assert!(backend_alive(&mut conn, pid));

    diesel::sql_query("SELECT pg_terminate_backend($1) AS exists")
        .bind::<Integer, _>(pid)
        .execute(&mut conn)
        .unwrap();
    assert!(
        table.wait_until(PATIENCE, |s| s.reconnects >= 1 && s.connected),
        "never reconnected: {:?}",
        table.status()
    );
    let status = table.status();
    assert_ne!(status.listener_pid, Some(pid));
    assert!(
        errors.load(Ordering::SeqCst) >= 1,
        "the error hook was not called"
    );
    assert!(backend_alive(&mut conn, status.listener_pid.unwrap()));

    // Listening again: a change made now is followed.
    let t = add_tenant(&mut conn, "after_kill");
    add_domain(&mut conn, t, "after.localhost", None, true);
    eventually(&table, "after.localhost", |t| {
        schema_of(t, "after.localhost", "/").as_deref() == Some("after_kill")
    });
}

#[test]
fn changes_made_while_disconnected_are_not_lost() {
    let db = test_database!();
    let mut conn = db.connect();
    migrated(&mut conn);
    let table = start(
        db.url(),
        RouteOptions::default().heartbeat(Duration::from_millis(100)),
    );
    let pid = table.status().listener_pid.unwrap();
    // Kill the listener and change the routes in the same transaction: the notification
    // goes out at commit, when the listener is gone; its reconnection reloads everything.
    conn.transaction(|c| {
        diesel::sql_query("SELECT pg_terminate_backend($1) AS exists")
            .bind::<Integer, _>(pid)
            .execute(c)?;
        let t = add_tenant(c, "while_down");
        add_domain(c, t, "down.localhost", None, true);
        QueryResult::Ok(())
    })
    .unwrap();
    eventually(&table, "down.localhost", |t| {
        schema_of(t, "down.localhost", "/").as_deref() == Some("while_down")
    });
}

#[test]
fn refresh_applies_a_change_at_once() {
    let db = test_database!();
    let mut conn = db.connect();
    migrated(&mut conn);
    // No notifications at all, and no periodic reload within the test.
    conn.batch_execute("ALTER TABLE tenants DISABLE TRIGGER pgschemas_notify_routes; ALTER TABLE domains DISABLE TRIGGER pgschemas_notify_routes")
        .unwrap();
    let table = RouteTable::start(
        db.url(),
        sandbox_config(),
        Arc::new(default_catalog()),
        RouteOptions::default().check_triggers(false),
    )
    .unwrap();
    let t = add_tenant(&mut conn, "fresh");
    add_domain(&mut conn, t, "fresh.localhost", None, true);
    let before = table.version();
    let version = table.refresh().unwrap();
    assert_eq!(version, before + 1);
    assert_eq!(
        schema_of(&table, "fresh.localhost", "/").as_deref(),
        Some("fresh")
    );
    // Again, reusing its connection.
    assert_eq!(table.refresh().unwrap(), version + 1);
}

#[test]
fn full_reload_is_the_safety_net() {
    let db = test_database!();
    let mut conn = db.connect();
    migrated(&mut conn);
    conn.batch_execute("ALTER TABLE domains DISABLE TRIGGER pgschemas_notify_routes; ALTER TABLE tenants DISABLE TRIGGER pgschemas_notify_routes")
        .unwrap();
    let table = RouteTable::start(
        db.url(),
        sandbox_config(),
        Arc::new(default_catalog()),
        RouteOptions::default()
            .check_triggers(false)
            .full_reload_every(Duration::from_millis(100)),
    )
    .unwrap();
    let t = add_tenant(&mut conn, "unnotified");
    add_domain(&mut conn, t, "quiet.localhost", None, true);
    eventually(&table, "quiet.localhost", |t| {
        schema_of(t, "quiet.localhost", "/").as_deref() == Some("unnotified")
    });
    assert_eq!(table.status().notifications, 0);
}

#[test]
fn a_missing_trigger_is_reported_at_start() {
    let db = test_database!();
    let mut conn = db.connect();
    migrated(&mut conn);
    conn.batch_execute("DROP TRIGGER pgschemas_notify_routes ON domains")
        .unwrap();
    let err = RouteTable::start(
        db.url(),
        sandbox_config(),
        Arc::new(default_catalog()),
        RouteOptions::default(),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::RouteTriggerMissing { .. }), "{err:?}");
    assert!(msg.contains(r#""public"."domains""#), "{msg}");
    assert!(msg.contains("pgschemas_routes"), "{msg}");
    // A disabled trigger counts as missing.
    conn.batch_execute("ALTER TABLE tenants DISABLE TRIGGER pgschemas_notify_routes")
        .unwrap();
    let msg = RouteTable::start(
        db.url(),
        sandbox_config(),
        Arc::new(default_catalog()),
        RouteOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(msg.contains(r#""public"."tenants""#), "{msg}");

    conn.batch_execute(
        "ALTER TABLE tenants ENABLE TRIGGER pgschemas_notify_routes; DROP TABLE domains",
    )
    .unwrap();
    let msg = RouteTable::start(
        db.url(),
        sandbox_config(),
        Arc::new(default_catalog()),
        RouteOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(msg.contains("does not exist"), "{msg}");
}

#[test]
fn a_failed_reload_keeps_the_last_table() {
    let db = test_database!();
    let mut conn = db.connect();
    migrated(&mut conn);
    let t = add_tenant(&mut conn, "kept");
    add_domain(&mut conn, t, "kept.localhost", None, true);
    let errors = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&errors);
    let table = start(
        db.url(),
        RouteOptions::default().on_error(move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
        }),
    );
    let version = table.version();
    // The catalog's query now fails (its column is gone); the rename itself notifies.
    conn.batch_execute("ALTER TABLE domains RENAME COLUMN is_primary TO primary_flag")
        .unwrap();
    assert!(table.refresh().is_err());
    conn.batch_execute("UPDATE domains SET domain = domain")
        .unwrap();
    assert!(
        table.wait_until(PATIENCE, |s| s.last_error.is_some()),
        "{:?}",
        table.status()
    );
    assert_eq!(table.version(), version);
    assert_eq!(
        schema_of(&table, "kept.localhost", "/").as_deref(),
        Some("kept")
    );
    assert!(errors.load(Ordering::SeqCst) >= 1);

    // Fixed: the listener (reconnected) picks the table up again.
    conn.batch_execute("ALTER TABLE domains RENAME COLUMN primary_flag TO is_primary")
        .unwrap();
    table.refresh().unwrap();
    assert!(table.status().last_error.is_none());
}

#[test]
fn the_listeners_last_error_names_its_cause() {
    let db = test_database!();
    let mut conn = db.connect();
    migrated(&mut conn);
    let table = start(db.url(), RouteOptions::default());
    // The catalog's query now fails (its column is gone); the rename itself notifies.
    conn.batch_execute("ALTER TABLE domains RENAME COLUMN is_primary TO primary_flag")
        .unwrap();
    conn.batch_execute("UPDATE domains SET domain = domain")
        .unwrap();
    assert!(
        table.wait_until(PATIENCE, |s| s.last_error.is_some()),
        "{:?}",
        table.status()
    );
    // What PostgreSQL said, not only that a database error happened.
    let last = table.status().last_error.unwrap_or_default();
    assert!(last.contains("is_primary"), "{last}");
}

#[test]
fn misses_never_reach_the_database() {
    let db = test_database!();
    let mut conn = db.connect();
    migrated(&mut conn);
    let t = add_tenant(&mut conn, "tenant1");
    add_domain(&mut conn, t, "tenant1.localhost", None, true);
    let table = start(db.url(), RouteOptions::default());
    let before = table.status();
    for i in 0..20_000 {
        let host = format!("random{i}.example.com");
        assert!(matches!(table.resolve(&host, "/"), Resolution::NotFound));
        assert!(matches!(table.resolve_header(&host), Resolution::NotFound));
    }
    let after = table.status();
    assert_eq!(after.reloads, before.reloads);
    assert_eq!(after.version, before.version);
}

#[test]
fn the_listener_stops_with_the_last_handle() {
    let db = test_database!();
    let mut conn = db.connect();
    migrated(&mut conn);
    let table = start(db.url(), RouteOptions::default());
    let clone = table.clone();
    let pid = table.status().listener_pid.unwrap();
    drop(table);
    assert!(backend_alive(&mut conn, pid), "a clone still holds it");
    assert_eq!(schema_of(&clone, "localhost", "/").as_deref(), Some("www"));
    drop(clone);
    // The thread was joined and its connection closed; the server notices at once or soon.
    let deadline = Instant::now() + PATIENCE;
    while backend_alive(&mut conn, pid) {
        assert!(
            Instant::now() < deadline,
            "listener backend {pid} still alive"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn start_reports_an_unreachable_database() {
    let err = RouteTable::start(
        "postgres://postgres@127.0.0.1:1/nowhere",
        sandbox_config(),
        Arc::new(default_catalog()),
        RouteOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Connection(_)), "{err:?}");
}
