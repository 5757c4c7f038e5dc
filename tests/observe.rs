//! What the crate tells `tracing` (and, with the `metrics` feature, the `metrics` facade),
//! captured by a subscriber (a recorder) installed for the whole test binary: the tenant is
//! on every checkout's span and on every migration's, a discard says why, and the counters
//! move. The schemas here are named `obs_*`, so that only this module's records are kept.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use pgschemas_diesel::{Config, TenantPool, test_database};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record as SpanValues};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use crate::pool::backend_pid;

/// A span or an event: its level, fields (each value recorded, in order, in `history`), and
/// the spans it ran in (innermost first).
#[derive(Clone, Debug, Default)]
struct Seen {
    span: bool,
    name: String,
    level: String,
    message: String,
    fields: BTreeMap<String, String>,
    history: Vec<(String, String)>,
    within: Vec<String>,
}

/// A layer keeping the spans and events `keep` accepts.
#[derive(Clone)]
struct Capture {
    seen: Arc<Mutex<Vec<Seen>>>,
    open: Arc<Mutex<BTreeMap<u64, usize>>>,
    keep: fn(&Seen) -> bool,
}

impl Capture {
    fn new(keep: fn(&Seen) -> bool) -> Self {
        Self {
            seen: Arc::default(),
            open: Arc::default(),
            keep,
        }
    }
}

struct Fields<'a>(&'a mut Seen);

impl Fields<'_> {
    fn put(&mut self, field: &Field, text: String) {
        self.0.history.push((field.name().to_owned(), text.clone()));
        self.0.fields.insert(field.name().to_owned(), text);
    }
}

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}").trim_matches('"').to_owned();
        if field.name() == "message" {
            self.0.message = text;
        } else {
            self.put(field, text);
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_owned());
    }
}

/// Only records that mention this module's schemas are kept by the global capture.
fn ours(seen: &Seen) -> bool {
    seen.fields.values().any(|v| v.contains("obs_"))
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _ctx: Context<'_, S>) {
        let mut seen = Seen {
            span: true,
            name: attrs.metadata().name().to_owned(),
            level: attrs.metadata().level().to_string(),
            ..Seen::default()
        };
        attrs.record(&mut Fields(&mut seen));
        if (self.keep)(&seen) {
            let mut all = self.seen.lock().unwrap();
            all.push(seen);
            self.open
                .lock()
                .unwrap()
                .insert(id.into_u64(), all.len() - 1);
        }
    }

    fn on_record(&self, id: &Id, values: &SpanValues<'_>, _ctx: Context<'_, S>) {
        if let Some(&i) = self.open.lock().unwrap().get(&id.into_u64()) {
            values.record(&mut Fields(&mut self.seen.lock().unwrap()[i]));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut seen = Seen {
            name: event.metadata().name().to_owned(),
            level: event.metadata().level().to_string(),
            ..Seen::default()
        };
        event.record(&mut Fields(&mut seen));
        if let Some(scope) = ctx.event_scope(event) {
            seen.within = scope.map(|s| s.name().to_owned()).collect();
        }
        if (self.keep)(&seen) {
            self.seen.lock().unwrap().push(seen);
        }
    }

    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        self.open.lock().unwrap().remove(&id.into_u64());
    }
}

/// The capture, installed as the global subscriber the first time it is asked for.
fn capture() -> &'static Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture = Capture::new(ours);
        let subscriber = tracing_subscriber::registry().with(capture.clone());
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other test installs a global subscriber");
        capture
    })
}

/// The records whose `tenant.schema` is `schema`.
fn about(schema: &str) -> Vec<Seen> {
    capture()
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.fields.get("tenant.schema").map(String::as_str) == Some(schema))
        .cloned()
        .collect()
}

/// A pool of one connection on `db`, the default configuration.
fn pool_of_one(db: &pgschemas_diesel::testing::TestDatabase) -> TenantPool {
    TenantPool::with_builder(
        db.url(),
        Config::default(),
        r2d2::Pool::builder().max_size(1),
    )
    .expect("pool")
}

fn tenants(conn: &mut PgConnection, names: &[&str]) {
    for n in names {
        conn.batch_execute(&format!(
            "create schema {n}; create table {n}.notes (id serial primary key, body text not null)"
        ))
        .expect("tenant");
    }
}

#[test]
fn a_checkout_span_names_the_tenant_and_the_database_namespace() {
    capture();
    let db = test_database!();
    tenants(&mut db.connect(), &["obs_a", "obs_b"]);
    let pool = pool_of_one(&db);
    drop(pool.scope(&"obs_a").expect("scope"));
    pool.transaction(&"obs_b", |conn| {
        diesel::sql_query("insert into notes (body) values ('x')")
            .execute(conn)
            .map_err(pgschemas_diesel::Error::from)
    })
    .expect("transaction");

    let a = about("obs_a");
    let span = a
        .iter()
        .find(|s| s.span && s.name == "pgschemas.checkout")
        .unwrap_or_else(|| panic!("no checkout span for obs_a: {a:?}"));
    assert_eq!(
        span.fields.get("pgschemas.form").map(String::as_str),
        Some("session")
    );
    assert_eq!(
        span.fields.get("db.namespace"),
        Some(&format!("{}|obs_a", db.name())),
        "OpenTelemetry's db.namespace, <database>|<schema>"
    );
    let scope = a
        .iter()
        .find(|s| s.span && s.name == "pgschemas.scope")
        .unwrap_or_else(|| panic!("no scope span for obs_a: {a:?}"));
    assert_eq!(
        scope.fields.get("db.namespace"),
        Some(&format!("{}|obs_a", db.name()))
    );
    let b = about("obs_b");
    assert!(
        b.iter().any(|s| s.span
            && s.name == "pgschemas.checkout"
            && s.fields.get("pgschemas.form").map(String::as_str) == Some("transaction")),
        "{b:?}"
    );
    assert!(
        b.iter()
            .any(|s| s.span && s.name == "pgschemas.transaction"),
        "the closure's span: {b:?}"
    );
}

#[test]
fn a_discarded_connection_says_why_and_a_refused_schema_is_seen() {
    capture();
    let db = test_database!();
    tenants(&mut db.connect(), &["obs_c"]);
    let pool = pool_of_one(&db);
    let pid = backend_pid(&mut pool.scope(&"obs_c").expect("scope"));
    db.connect()
        .batch_execute(&format!("select pg_terminate_backend({pid})"))
        .expect("kill");
    std::thread::sleep(std::time::Duration::from_millis(200));
    drop(pool.scope(&"obs_c").expect("a new connection"));
    let c = about("obs_c");
    let discard = c
        .iter()
        .find(|s| !s.span && s.message == "connection discarded")
        .unwrap_or_else(|| panic!("no discard event: {c:?}"));
    assert_eq!(
        discard.fields.get("reason").map(String::as_str),
        Some("checkout_failed")
    );
    assert!(
        discard.within.iter().any(|n| n == "pgschemas.checkout"),
        "{discard:?}"
    );

    assert!(pool.scope(&"obs_missing").is_err());
    let missing = about("obs_missing");
    assert!(
        missing
            .iter()
            .any(|s| !s.span && s.message == "checkout refused"),
        "{missing:?}"
    );
}

#[test]
fn each_schema_migrated_is_an_event_in_its_span() {
    use diesel_migrations::{EmbeddedMigrations, embed_migrations};
    use pgschemas_diesel::migrate::{Migrator, Selection};

    const TENANT: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
    capture();
    let db = test_database!();
    crate::migrate::tenants(
        &mut db.connect(),
        &["obs_m1".to_owned(), "obs_m2".to_owned()],
    );
    let pool = TenantPool::with_builder(
        db.url(),
        Config::default(),
        r2d2::Pool::builder().max_size(2),
    )
    .expect("pool");
    let migrator = Migrator::builder(pool, Arc::new(crate::migrate::TableCatalog))
        .tenant_migrations(TENANT)
        .workers(2)
        .build()
        .expect("migrator");
    let report = migrator.run(&Selection::all()).expect("run");
    assert!(report.is_success(), "{report}");
    for schema in ["obs_m1", "obs_m2"] {
        let seen = about(schema);
        let done = seen
            .iter()
            .find(|s| !s.span && s.message == "schema migrated")
            .unwrap_or_else(|| panic!("no migration event for {schema}: {seen:?}"));
        assert_eq!(
            done.fields.get("outcome").map(String::as_str),
            Some("applied")
        );
        assert!(done.fields.contains_key("duration_ms"));
        assert!(
            done.fields["applied"].contains("20240101000001"),
            "{done:?}"
        );
        assert!(
            done.within.iter().any(|n| n == "pgschemas.migrate"),
            "{done:?}"
        );
    }
}

/// The async pool's checkouts and transactions carry the same spans.
#[cfg(feature = "async")]
#[tokio::test]
async fn the_async_pool_s_checkout_and_transaction_spans_name_the_tenant() {
    use crate::async_pool::{Backend, pool_of};

    capture();
    for &backend in Backend::ALL {
        let db = test_database!(backend.name());
        let (a, b) = (
            format!("obs_async_a_{}", backend.name()),
            format!("obs_async_b_{}", backend.name()),
        );
        tenants(&mut db.connect(), &[a.as_str(), b.as_str()]);
        let pool = pool_of(db.url(), 1, backend);
        drop(pool.scope(&a.as_str()).await.expect("scope"));
        pool.transaction(&b.as_str(), async |_conn| {
            Ok::<_, pgschemas_diesel::Error>(())
        })
        .await
        .expect("transaction");
        let seen = about(&a);
        let span = seen
            .iter()
            .find(|s| s.span && s.name == "pgschemas.checkout")
            .unwrap_or_else(|| panic!("{}: no checkout span: {seen:?}", backend.name()));
        assert_eq!(
            span.fields.get("db.namespace"),
            Some(&format!("{}|{a}", db.name()))
        );
        assert!(
            seen.iter().any(|s| s.span && s.name == "pgschemas.scope"),
            "{}: no scope span: {seen:?}",
            backend.name()
        );
        let seen = about(&b);
        let tx = seen
            .iter()
            .find(|s| s.span && s.name == "pgschemas.transaction")
            .unwrap_or_else(|| panic!("{}: no transaction span: {seen:?}", backend.name()));
        assert_eq!(
            tx.fields.get("db.namespace"),
            Some(&format!("{}|{b}", db.name()))
        );
    }
}

/// With the `metrics` feature, checkouts, switches and discards are counted through the
/// `metrics` facade: a recorder for this thread only (the sync pool counts on the calling
/// thread), so the counts are this test's, exactly.
#[cfg(feature = "metrics")]
#[test]
fn checkouts_switches_and_discards_are_counted() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    // a snapshot drains the counters: read them all from one, taken at the end
    let counter = |snapshot: &[(
        metrics_util::CompositeKey,
        Option<metrics::Unit>,
        Option<metrics::SharedString>,
        DebugValue,
    )],
                   name: &str,
                   label: Option<(&str, &str)>|
     -> u64 {
        snapshot
            .iter()
            .filter(|(key, ..)| key.key().name() == name)
            .filter(|(key, ..)| {
                label
                    .is_none_or(|(k, v)| key.key().labels().any(|l| l.key() == k && l.value() == v))
            })
            .map(|(.., value)| match value {
                DebugValue::Counter(n) => *n,
                _ => 0,
            })
            .sum()
    };
    let db = test_database!();
    tenants(&mut db.connect(), &["obs_n1", "obs_n2"]);
    metrics::with_local_recorder(&recorder, || {
        let pool = pool_of_one(&db);
        for _ in 0..3 {
            drop(pool.scope(&"obs_n1").expect("scope"));
            drop(pool.scope(&"obs_n2").expect("scope"));
        }
        let pid = backend_pid(&mut pool.scope(&"obs_n1").expect("scope"));
        db.connect()
            .batch_execute(&format!("select pg_terminate_backend({pid})"))
            .expect("kill");
        std::thread::sleep(std::time::Duration::from_millis(200));
        drop(pool.scope(&"obs_n2").expect("a new connection"));
    });
    let snapshot = snapshotter.snapshot().into_vec();
    let checkouts = counter(
        &snapshot,
        "pgschemas_checkouts_total",
        Some(("form", "session")),
    );
    let switches = counter(&snapshot, "pgschemas_switches_total", None);
    let discards = counter(
        &snapshot,
        "pgschemas_discards_total",
        Some(("reason", "checkout_failed")),
    );
    assert!(checkouts >= 8, "{checkouts}");
    assert!(switches >= 6, "{switches}");
    assert!(discards >= 1, "{discards}");
    // 7 checkouts alternating on one connection (6 switches), the killed one discarded, a
    // new connection's first checkout (no switch)
    assert_eq!((checkouts, switches, discards), (8, 6, 1));
}

/// A nested scope's restore leaves the connection on the outer scope's schema: a checkout of
/// the nested one's schema next is a switch (from the outer's), counted.
#[cfg(feature = "metrics")]
#[test]
fn a_nested_scope_s_restore_counts_the_next_switch_from_the_outer_schema() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let db = test_database!();
    tenants(&mut db.connect(), &["obs_o1", "obs_o2"]);
    metrics::with_local_recorder(&recorder, || {
        let pool = pool_of_one(&db);
        let mut outer = pool.scope(&"obs_o1").expect("scope");
        drop(outer.nested(&"obs_o2").expect("nested"));
        drop(outer);
        drop(pool.scope(&"obs_o2").expect("scope"));
    });
    let switches: u64 = snapshotter
        .snapshot()
        .into_vec()
        .iter()
        .filter(|(key, ..)| key.key().name() == "pgschemas_switches_total")
        .map(|(.., value)| match value {
            DebugValue::Counter(n) => *n,
            _ => 0,
        })
        .sum();
    assert_eq!(switches, 1);
}

/// Findings of an attack on the observability, each a test: a discard reported once, a spent
/// connection's retirement not a warning, the async pool's spans and discards as the sync pool's.
mod regressions {
    use super::*;
    use tracing::Level;

    type Rec = Seen;
    type All = Capture;

    /// Every span and event, until the guard goes: the thread's own subscriber.
    fn local() -> (All, tracing::subscriber::DefaultGuard) {
        let all = Capture::new(|_| true);
        let guard =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(all.clone()));
        (all, guard)
    }

    fn discards(all: &All) -> Vec<Rec> {
        all.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| !r.span && r.message == "connection discarded")
            .cloned()
            .collect()
    }

    /// One connection discarded once (a panic inside a nested scope) is reported once.
    #[test]
    fn a_single_discard_is_reported_once() {
        let db = test_database!();
        tenants(&mut db.connect(), &["att_a", "att_b"]);
        let pool = pool_of_one(&db);
        let (all, _g) = local();
        let mut scope = pool.scope(&"att_a").expect("scope");
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _nested = scope.nested(&"att_b").expect("nested");
            panic!("boom");
        }));
        assert!(scope.is_poisoned());
        drop(scope);
        let d = discards(&all);
        assert_eq!(
            d.len(),
            1,
            "one connection, one discard; got {:#?}",
            d.iter().map(|r| (&r.level, &r.fields)).collect::<Vec<_>>()
        );
    }

    /// A connection that served its max_tenants_per_connection is retired by design, in
    /// steady state: that is not a warning (and an async pool does the same silently).
    #[test]
    fn retiring_a_spent_connection_is_not_a_warning() {
        let db = test_database!();
        tenants(&mut db.connect(), &["att_c", "att_d"]);
        let config = Config::builder()
            .max_tenants_per_connection(1)
            .build()
            .expect("config");
        let pool = TenantPool::with_builder(db.url(), config, r2d2::Pool::builder().max_size(1))
            .expect("pool");
        let (all, _g) = local();
        for _ in 0..3 {
            drop(pool.scope(&"att_c").expect("scope"));
            drop(pool.scope(&"att_d").expect("scope"));
        }
        let warned: Vec<_> = all
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| {
                !r.span
                    && (r.level == Level::WARN.to_string() || r.level == Level::INFO.to_string())
            })
            .map(|r| format!("{} {} {:?}", r.level, r.message, r.fields))
            .collect();
        assert!(
            warned.is_empty(),
            "steady state, at warn/info:\n{}",
            warned.join("\n")
        );
    }

    /// The sync transaction form has a `pgschemas.checkout` span (form = transaction) with
    /// its db.namespace; the async transaction form must too.
    #[cfg(feature = "async")]
    #[tokio::test]
    async fn the_async_transaction_form_has_a_checkout_span() {
        use crate::async_pool::{Backend, pool_of};
        let db = test_database!();
        tenants(&mut db.connect(), &["att_e"]);
        let pool = pool_of(db.url(), 1, Backend::Deadpool);
        let (all, _g) = local();
        pool.transaction(&"att_e", async |_c| Ok::<_, pgschemas_diesel::Error>(()))
            .await
            .expect("tx");
        let seen = all.seen.lock().unwrap().clone();
        let spans: Vec<_> = seen
            .iter()
            .filter(|r| r.span)
            .map(|r| (r.name.clone(), r.history.clone()))
            .collect();
        assert!(
            seen.iter().any(|r| r.span
                && r.name == "pgschemas.checkout"
                && r.fields.get("pgschemas.form").map(String::as_str) == Some("transaction")),
            "spans: {spans:#?}"
        );
    }

    /// The async transaction span's db.namespace is recorded once, with the database (not
    /// first as `|<schema>`, which subscribers that append recorded values keep), and is
    /// never `|<schema>` when the checkout is refused.
    #[cfg(feature = "async")]
    #[tokio::test]
    async fn the_async_transaction_span_never_says_an_empty_database() {
        use crate::async_pool::{Backend, pool_of};
        let db = test_database!();
        tenants(&mut db.connect(), &["att_f"]);
        let pool = pool_of(db.url(), 1, Backend::Deadpool);
        let (all, _g) = local();
        pool.transaction(&"att_f", async |_c| Ok::<_, pgschemas_diesel::Error>(()))
            .await
            .expect("tx");
        let _ = pool
            .transaction(&"att_missing", async |_c| {
                Ok::<_, pgschemas_diesel::Error>(())
            })
            .await;
        let seen = all.seen.lock().unwrap().clone();
        let ns: Vec<_> = seen
            .iter()
            .filter(|r| r.span && r.name == "pgschemas.transaction")
            .map(|r| {
                r.history
                    .iter()
                    .filter(|(k, _)| k == "db.namespace")
                    .map(|(_, v)| v.clone())
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(
            ns.iter().flatten().all(|v| !v.starts_with('|')),
            "db.namespace values recorded per transaction span: {ns:?}"
        );
    }

    /// No span stays entered after a checkout returns to user code (sync and async).
    #[test]
    fn no_span_is_left_entered_sync() {
        let db = test_database!();
        tenants(&mut db.connect(), &["att_g"]);
        let pool = TenantPool::new(db.url(), Config::default()).expect("pool");
        let (_all, _g) = local();
        let s = pool.scope(&"att_g").expect("scope");
        assert!(
            tracing::Span::current().is_none(),
            "{:?}",
            tracing::Span::current()
        );
        drop(s);
        let _ = pool.scope(&"att_nope");
        assert!(tracing::Span::current().is_none());
        let _ = pool.transaction(&"att_g", |_c| {
            Err::<(), _>(pgschemas_diesel::Error::NoCurrentTenant { wanted_by: "x" })
        });
        assert!(tracing::Span::current().is_none());
        let g = pool.get().expect("get");
        assert!(tracing::Span::current().is_none());
        drop(g);
    }

    #[cfg(feature = "async")]
    #[tokio::test]
    async fn no_span_is_left_entered_async() {
        use crate::async_pool::{Backend, pool_of};
        let db = test_database!();
        tenants(&mut db.connect(), &["att_h"]);
        let pool = pool_of(db.url(), 1, Backend::Deadpool);
        let (_all, _g) = local();
        let s = pool.scope(&"att_h").await.expect("scope");
        assert!(tracing::Span::current().is_none());
        drop(s);
        let _ = pool.scope(&"att_nope").await;
        assert!(tracing::Span::current().is_none());
        // a checkout future dropped mid-way
        let fut = pool.scope(&"att_h");
        let _ = tokio::time::timeout(std::time::Duration::from_micros(1), fut).await;
        assert!(tracing::Span::current().is_none());
    }

    /// Nothing with a password in it is logged: a login that fails.
    #[test]
    fn no_password_is_logged() {
        let db = test_database!();
        let mut admin = db.connect();
        admin
            .batch_execute("do $$ begin if not exists (select from pg_roles where rolname = 'att_pw') then create role att_pw login password 'S3cretPw'; end if; end $$")
            .expect("role");
        tenants(&mut admin, &["att_i"]);
        let url = db
            .url()
            .replacen("postgres://postgres@", "postgres://att_pw:S3cretPw@", 1);
        let (all, _g) = local();
        if let Ok(pool) = TenantPool::with_builder(
            &url,
            Config::default(),
            r2d2::Pool::builder()
                .max_size(1)
                .min_idle(Some(0))
                .connection_timeout(std::time::Duration::from_secs(2)),
        ) {
            let _ = pool.scope(&"att_i");
            let _ = pool.transaction(&"att_i", |_c| Ok::<_, pgschemas_diesel::Error>(()));
        }
        let text = format!("{:?}", all.seen.lock().unwrap());
        assert!(!text.contains("S3cretPw"), "{text}");
        admin
            .batch_execute("drop owned by att_pw; drop role att_pw")
            .ok();
    }

    /// A discard is reported by both pools: an async connection retired after its
    /// max_tenants_per_connection, and one whose transaction future was dropped mid-way.
    #[cfg(feature = "async")]
    #[tokio::test]
    async fn the_async_pool_reports_its_discards() {
        use crate::async_pool::{Backend, pool_with};
        let db = test_database!();
        tenants(&mut db.connect(), &["att_j", "att_k"]);
        let config = Config::builder()
            .max_tenants_per_connection(1)
            .build()
            .expect("config");
        let pool = pool_with(db.url(), 1, Backend::Deadpool, config);
        let (all, _g) = local();
        for _ in 0..3 {
            drop(pool.scope(&"att_j").await.expect("scope"));
            drop(pool.scope(&"att_k").await.expect("scope"));
        }
        // a spent connection is retired at debug, not reported as a discard
        let spent = all
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| !r.span && r.message == "connection retired after serving its tenants")
            .count();
        assert!(discards(&all).is_empty(), "{:?}", discards(&all));
        let fut = pool.transaction(&"att_j", async |c| {
            diesel_async::RunQueryDsl::execute(diesel::sql_query("select pg_sleep(5)"), c)
                .await
                .map_err(pgschemas_diesel::Error::from)
        });
        let _ = tokio::time::timeout(std::time::Duration::from_millis(300), fut).await;
        let cancelled = discards(&all)
            .iter()
            .filter(|r| r.fields.get("reason").map(String::as_str) == Some("cancelled"))
            .count();
        assert!(
            spent >= 5 && cancelled >= 1,
            "discard events: spent {spent}, cancelled {cancelled}"
        );
    }

    /// The reasons of the discards `all` saw.
    fn reasons(all: &All) -> Vec<String> {
        discards(all)
            .iter()
            .map(|r| r.fields.get("reason").cloned().unwrap_or_default())
            .collect()
    }

    /// A panic in a session-form scope and one in a transaction-form closure: r2d2 closes
    /// each connection (a new backend serves next), and each is reported once, as a panic.
    #[test]
    fn a_panic_in_either_sync_form_is_one_discard_for_a_panic() {
        let db = test_database!();
        tenants(&mut db.connect(), &["att_p"]);
        let pool = pool_of_one(&db);
        let (all, _g) = local();
        let first = backend_pid(&mut pool.scope(&"att_p").expect("scope"));
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _scope = pool.scope(&"att_p").expect("scope");
            panic!("boom in a scope");
        }));
        let second = backend_pid(&mut pool.scope(&"att_p").expect("scope"));
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _: Result<(), pgschemas_diesel::Error> =
                pool.transaction(&"att_p", |_conn| panic!("boom in a transaction"));
        }));
        let third = backend_pid(&mut pool.scope(&"att_p").expect("scope"));
        assert!(
            first != second && second != third,
            "{first} {second} {third}"
        );
        assert_eq!(reasons(&all), ["panic", "panic"]);
    }

    /// A backend killed while a scope holds its connection: the scope's query fails, r2d2
    /// closes the connection when it comes back, and that is reported once.
    #[test]
    fn a_connection_killed_in_use_is_one_discard() {
        let db = test_database!();
        tenants(&mut db.connect(), &["att_k"]);
        let pool = pool_of_one(&db);
        let (all, _g) = local();
        let mut scope = pool.scope(&"att_k").expect("scope");
        let pid = backend_pid(&mut scope);
        db.connect()
            .batch_execute(&format!("select pg_terminate_backend({pid})"))
            .expect("kill");
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(scope.batch_execute("select 1").is_err());
        drop(scope);
        let next = backend_pid(&mut pool.scope(&"att_k").expect("a new connection"));
        assert_ne!(next, pid);
        assert_eq!(reasons(&all).len(), 1, "{:?}", reasons(&all));
    }

    /// A refused async transaction-form checkout (its answer read after the body) is a
    /// refusal, as the sync pool's is, on both backends.
    #[cfg(feature = "async")]
    #[tokio::test]
    async fn a_refused_async_transaction_is_a_refusal() {
        use crate::async_pool::{Backend, pool_of};
        for &backend in Backend::ALL {
            let db = test_database!(backend.name());
            let pool = pool_of(db.url(), 1, backend);
            let (all, _g) = local();
            let r = pool
                .transaction(&"att_missing", async |_c| {
                    Ok::<_, pgschemas_diesel::Error>(())
                })
                .await;
            assert!(
                matches!(r, Err(pgschemas_diesel::Error::SchemaNotFound { .. })),
                "{r:?}"
            );
            let refused = all
                .seen
                .lock()
                .unwrap()
                .iter()
                .filter(|r| !r.span && r.message == "checkout refused")
                .filter(|r| {
                    r.fields.get("tenant.schema").map(String::as_str) == Some("att_missing")
                })
                .count();
            assert_eq!(refused, 1, "{}", backend.name());
        }
    }

    /// A panic in an async transaction's body is reported as a panic, not a cancellation, on
    /// both backends; a backend killed under an async scope is reported once.
    #[cfg(feature = "async")]
    #[tokio::test]
    async fn async_panics_and_killed_connections_are_reported_as_such() {
        use futures_util::FutureExt;

        use crate::async_pool::{Backend, pool_of};
        for &backend in Backend::ALL {
            let db = test_database!(backend.name());
            tenants(&mut db.connect(), &["att_q"]);
            let pool = pool_of(db.url(), 1, backend);
            let (all, _g) = local();
            let panicked = std::panic::AssertUnwindSafe(pool.transaction(
                &"att_q",
                async |_c| -> Result<(), pgschemas_diesel::Error> { panic!("boom") },
            ))
            .catch_unwind()
            .await;
            assert!(panicked.is_err());
            assert_eq!(reasons(&all), ["panic"], "{}", backend.name());

            let mut scope = pool.scope(&"att_q").await.expect("scope");
            let pid = crate::async_pool::backend_pid(&mut scope).await;
            db.connect()
                .batch_execute(&format!("select pg_terminate_backend({pid})"))
                .expect("kill");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            assert!(
                diesel_async::SimpleAsyncConnection::batch_execute(&mut *scope, "select 1")
                    .await
                    .is_err()
            );
            drop(scope);
            let mut next = pool.scope(&"att_q").await.expect("a new connection");
            assert_ne!(crate::async_pool::backend_pid(&mut next).await, pid);
            assert_eq!(
                reasons(&all).len(),
                2,
                "{}: {:?}",
                backend.name(),
                reasons(&all)
            );
        }
    }
}

/// The axum layer records the resolved tenant on the request's span (which declares the
/// field, as tower-http's `TraceLayer::make_span_with` lets it).
#[cfg(feature = "axum")]
#[test]
fn the_axum_layer_records_the_tenant_on_the_request_span() {
    use pgschemas_diesel::StaticTenant;
    use pgschemas_diesel::routing::layer::TenancyLayer;
    use pgschemas_diesel::routing::{RouteTable, Routes};
    use tower::{Layer as _, Service as _};

    capture();
    let config = Config::builder()
        .static_tenant(StaticTenant::builder("obs_layer").domain("obs-layer.localhost"))
        .build()
        .expect("config");
    let table = RouteTable::fixed(Routes::build(&config, &[], &[]));
    let mut service = TenancyLayer::new(table).layer(tower::service_fn(
        |_req: http::Request<axum::body::Body>| async {
            Ok::<_, std::convert::Infallible>(axum::response::Response::new(
                axum::body::Body::empty(),
            ))
        },
    ));
    let span = tracing::info_span!(
        "request",
        marker = "obs_layer_request",
        "tenant.schema" = tracing::field::Empty
    );
    let request = http::Request::builder()
        .uri("/")
        .header(http::header::HOST, "obs-layer.localhost")
        .body(axum::body::Body::empty())
        .expect("request");
    let future = span.in_scope(|| service.call(request));
    let response = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(future)
        .expect("response");
    assert_eq!(response.status(), http::StatusCode::OK);
    let seen = capture().seen.lock().unwrap().clone();
    let request_span = seen
        .iter()
        .find(|s| s.span && s.fields.get("marker").map(String::as_str) == Some("obs_layer_request"))
        .unwrap_or_else(|| panic!("no request span: {seen:?}"));
    assert_eq!(
        request_span.fields.get("tenant.schema").map(String::as_str),
        Some("obs_layer"),
        "{request_span:?}"
    );
}
