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

/// A span or an event, with its fields, and the spans it ran in (innermost first).
#[derive(Clone, Debug, Default)]
struct Seen {
    span: bool,
    name: String,
    message: String,
    fields: BTreeMap<String, String>,
    within: Vec<String>,
}

#[derive(Clone, Default)]
struct Capture {
    seen: Arc<Mutex<Vec<Seen>>>,
    open: Arc<Mutex<BTreeMap<u64, usize>>>,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>, &'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            *self.1 = text;
        } else {
            self.0
                .insert(field.name().to_owned(), text.trim_matches('"').to_owned());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

/// Only records that mention this module's schemas are kept.
fn ours(seen: &Seen) -> bool {
    seen.fields.values().any(|v| v.contains("obs_"))
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _ctx: Context<'_, S>) {
        let mut seen = Seen {
            span: true,
            name: attrs.metadata().name().to_owned(),
            ..Seen::default()
        };
        attrs.record(&mut Fields(&mut seen.fields, &mut seen.message));
        if ours(&seen) {
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
            let mut all = self.seen.lock().unwrap();
            let seen = &mut all[i];
            values.record(&mut Fields(&mut seen.fields, &mut seen.message));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut seen = Seen {
            name: event.metadata().name().to_owned(),
            ..Seen::default()
        };
        event.record(&mut Fields(&mut seen.fields, &mut seen.message));
        if let Some(scope) = ctx.event_scope(event) {
            seen.within = scope.map(|s| s.name().to_owned()).collect();
        }
        if ours(&seen) {
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
        let capture = Capture::default();
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
    let pool = TenantPool::with_builder(
        db.url(),
        Config::default(),
        r2d2::Pool::builder().max_size(1),
    )
    .expect("pool");
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
    let pool = TenantPool::with_builder(
        db.url(),
        Config::default(),
        r2d2::Pool::builder().max_size(1),
    )
    .expect("pool");
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

/// With the `metrics` feature, checkouts, switches, discards and migrations are counted
/// through the `metrics` facade (a recorder installed for the whole test binary, so the
/// counters only grow; the migration histogram is per schema).
#[cfg(feature = "metrics")]
#[test]
fn checkouts_switches_and_discards_are_counted() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    let snapshotter = SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("no other test installs a recorder");
        snapshotter
    });
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
    let _ = snapshotter.snapshot();
    let db = test_database!();
    tenants(&mut db.connect(), &["obs_n1", "obs_n2"]);
    let pool = TenantPool::with_builder(
        db.url(),
        Config::default(),
        r2d2::Pool::builder().max_size(1),
    )
    .expect("pool");
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
}
