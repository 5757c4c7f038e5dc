//! W2: migrate all. N tenants at migration 5, then migration 6 applied to every tenant schema,
//! sequentially and with 2 and 4 workers; and the floor: the same DDL plus the ledger insert
//! sent by `psql -f` on one connection, one transaction per schema, on an identical set.
//! Each figure is the median of `W2_REPEAT` runs (default 3), each on a fresh set.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use diesel::PgConnection;
use diesel::connection::{Connection, SimpleConnection};
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use pgschemas_diesel::{
    Config, SchemaName, TenantPool, catalog::Catalog, catalog::DomainRecord, catalog::TenantRecord,
    migrate::Migrator, migrate::Selection,
};

use crate::common::{Bench, report};

const N: usize = 200;
const TENANT: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
const RELEASE: EmbeddedMigrations = embed_migrations!("../examples/migrations/release");
const MIGRATION_6: &str =
    include_str!("../migrations/release/2024-06-01-000006_customer_phone/up.sql");
const VERSION_6: &str = "20240601000006";

/// Rates measured so far in this run, to print ratios.
fn rates() -> &'static Mutex<HashMap<&'static str, f64>> {
    static RATES: OnceLock<Mutex<HashMap<&'static str, f64>>> = OnceLock::new();
    RATES.get_or_init(Default::default)
}

fn rate(name: &str) -> Option<f64> {
    rates().lock().ok()?.get(name).copied()
}

fn record(name: &'static str, rate: f64) {
    if let Ok(mut r) = rates().lock() {
        r.insert(name, rate);
    }
}

/// The bench's tenants: a fixed list.
struct Fixed(Vec<TenantRecord>);

impl Catalog for Fixed {
    fn tenants(&self, _: &mut PgConnection) -> pgschemas_diesel::Result<Vec<TenantRecord>> {
        Ok(self.0.clone())
    }

    fn domains(&self, _: &mut PgConnection) -> pgschemas_diesel::Result<Vec<DomainRecord>> {
        Ok(Vec::new())
    }

    fn watched_tables(&self, _shared: &pgschemas_diesel::SchemaName) -> Vec<(String, String)> {
        Vec::new()
    }
}

fn schemas() -> Vec<SchemaName> {
    (0..N)
        .map(|i| SchemaName::new(format!("t{i:04}")).expect("valid name"))
        .collect()
}

fn catalog() -> Arc<Fixed> {
    Arc::new(Fixed(
        schemas()
            .into_iter()
            .enumerate()
            .map(|(i, schema)| TenantRecord {
                id: i.to_string(),
                schema,
                active: true,
            })
            .collect(),
    ))
}

/// A fresh database with N tenant schemas at migration 5 (not timed).
fn setup(bench: &Bench, db: &str) -> String {
    let url = bench.fresh_database(db);
    let mut conn = PgConnection::establish(&url).expect("connect");
    let script: String = schemas()
        .iter()
        .map(|s| format!("create schema {};", s.quoted()))
        .collect();
    conn.batch_execute(&script).expect("create schemas");
    let report = migrator(&url, TENANT, 2)
        .run(&Selection::all())
        .expect("migrate to 5");
    assert!(report.is_success(), "{report}");
    conn.batch_execute("checkpoint").expect("checkpoint");
    url
}

fn migrator(url: &str, migrations: EmbeddedMigrations, workers: usize) -> Migrator {
    let pool = TenantPool::with_builder(
        url,
        Config::default(),
        r2d2::Pool::builder().max_size(workers as u32),
    )
    .expect("pool");
    Migrator::builder(pool, catalog())
        .tenant_migrations(migrations)
        .workers(workers)
        .build()
        .expect("migrator")
}

/// How many times each workload runs (on a fresh set each time); the median is reported.
fn repeats() -> usize {
    crate::common::env_count("W2_REPEAT", 3)
}

/// Runs `once` (which returns seconds) `repeats()` times; the median and every run.
fn measure(mut once: impl FnMut() -> f64) -> (f64, String) {
    let mut runs: Vec<f64> = (0..repeats()).map(|_| once()).collect();
    let listed = format!(
        "[{}]",
        runs.iter()
            .map(|s| format!("{s:.4}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    runs.sort_by(f64::total_cmp);
    (runs[runs.len() / 2], listed)
}

fn library(bench: &Bench, name: &'static str, workers: usize) {
    let (seconds, runs) = measure(|| {
        let url = setup(bench, &format!("pgschemas_bench_w2_{workers}"));
        let migrator = migrator(&url, RELEASE, workers);
        let started = Instant::now();
        let result = migrator.run(&Selection::all()).expect("migrate to 6");
        let seconds = started.elapsed().as_secs_f64();
        assert!(result.is_success(), "{result}");
        assert!(
            result.schemas.iter().all(|s| s.applied == [VERSION_6]),
            "every schema applies migration 6 once"
        );
        seconds
    });
    let r = N as f64 / seconds;
    record(name, r);
    let mut extra = vec![("workers", workers.to_string()), ("runs_seconds", runs)];
    if let Some(floor) = rate("W2-floor-psql") {
        extra.push(("ratio_to_floor", format!("{:.2}", r / floor)));
    }
    if workers > 1
        && let Some(seq) = rate("W2-seq")
    {
        extra.push(("speedup_vs_seq", format!("{:.2}", r / seq)));
    }
    report(name, N as u64, seconds, "schemas/s", &extra);
}

pub fn floor(bench: &Bench) {
    let (seconds, runs) = measure(|| floor_once(bench));
    record("W2-floor-psql", N as f64 / seconds);
    report(
        "W2-floor-psql",
        N as u64,
        seconds,
        "schemas/s",
        &[
            ("statements_per_schema", "6".into()),
            ("runs_seconds", runs),
        ],
    );
}

fn floor_once(bench: &Bench) -> f64 {
    let url = setup(bench, "pgschemas_bench_w2_floor");
    let mut script = String::new();
    for s in schemas() {
        script.push_str(&format!(
            "BEGIN;\nSET LOCAL search_path TO {}, \"public\";\n{}\nINSERT INTO __diesel_schema_migrations (version) VALUES ('{VERSION_6}');\nCOMMIT;\n",
            s.quoted(),
            MIGRATION_6.trim()
        ));
    }
    let file = std::env::temp_dir().join(format!("pgschemas_w2_floor_{}.sql", std::process::id()));
    std::fs::write(&file, script).expect("write the floor script");
    let started = Instant::now();
    let status = std::process::Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &url, "-f"])
        .arg(&file)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run psql");
    let seconds = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&file);
    assert!(status.success(), "psql failed: {status}");
    seconds
}

pub fn seq(bench: &Bench) {
    library(bench, "W2-seq", 1);
}

pub fn par2(bench: &Bench) {
    library(bench, "W2-par2", 2);
}

pub fn par4(bench: &Bench) {
    library(bench, "W2-par4", 4);
}
