//! W1 and W1c: create tenants. Each tenant is one transaction: insert the tenant and its
//! primary domain into the shared tables, create the schema, apply migrations 1-5 (W1) or
//! clone a migrated reference schema (W1c). The floor (`W1-floor-psql`) sends the same SQL
//! through `psql -f` on one connection, one transaction per tenant.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use pgschemas_diesel::{Config, provision::Provisioner};

use crate::common::{Bench, report};

const N: u64 = 200;

const TENANT: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");

/// The migrations' SQL, for the floor.
const UP: [(&str, &str); 5] = [
    (
        "20240101000001",
        include_str!("../migrations/tenant/2024-01-01-000001_customers/up.sql"),
    ),
    (
        "20240101000002",
        include_str!("../migrations/tenant/2024-01-01-000002_products/up.sql"),
    ),
    (
        "20240101000003",
        include_str!("../migrations/tenant/2024-01-01-000003_orders/up.sql"),
    ),
    (
        "20240101000004",
        include_str!("../migrations/tenant/2024-01-01-000004_order_items/up.sql"),
    ),
    (
        "20240101000005",
        include_str!("../migrations/tenant/2024-01-01-000005_audit_log/up.sql"),
    ),
];

/// The shared tables of the workload.
pub(crate) const SHARED: &str = "
    create table tenants (id bigserial primary key, schema_name text not null unique,
                          name text not null, created_at timestamptz not null default now());
    create table domains (id bigserial primary key, tenant_id bigint not null references tenants(id),
                          domain text not null, folder text, is_primary bool not null default false,
                          redirect_to_primary bool not null default false, unique (domain, folder));";

/// Rates measured in this run, so later workloads can report ratios.
static RATES: Mutex<Option<HashMap<&'static str, f64>>> = Mutex::new(None);

fn remember(name: &'static str, rate: f64) {
    RATES
        .lock()
        .expect("the rates lock")
        .get_or_insert_with(HashMap::new)
        .insert(name, rate);
}

fn ratio_to(name: &str, rate: f64) -> Option<f64> {
    RATES
        .lock()
        .expect("the rates lock")
        .as_ref()
        .and_then(|m| m.get(name))
        .map(|base| rate / base)
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

fn setup(bench: &Bench, db: &str) -> (String, PgConnection) {
    let url = bench.fresh_database(db);
    let mut conn = PgConnection::establish(&url).expect("connect");
    conn.batch_execute(SHARED).expect("shared tables");
    (url, conn)
}

/// Creates tenant `schema` with its row and primary domain; returns the seconds taken.
pub(crate) fn create_one(provisioner: &Provisioner, conn: &mut PgConnection, schema: &str) -> f64 {
    let started = Instant::now();
    provisioner
        .create_tenant(conn, schema, |conn| {
            let id: Id = diesel::sql_query(
                "insert into tenants (schema_name, name) values ($1, $1) returning id",
            )
            .bind::<Text, _>(schema)
            .get_result(conn)?;
            diesel::sql_query(
                "insert into domains (tenant_id, domain, is_primary) values ($1, $2, true)",
            )
            .bind::<BigInt, _>(id.id)
            .bind::<Text, _>(format!("{schema}.example.com"))
            .execute(conn)?;
            Ok(())
        })
        .unwrap_or_else(|e| panic!("create {schema}: {e}"));
    started.elapsed().as_secs_f64()
}

/// Creates N tenants through `provisioner`; returns the total seconds and each tenant's.
fn create_tenants(
    provisioner: &Provisioner,
    conn: &mut PgConnection,
    before_each: impl Fn(&Provisioner),
) -> (f64, Vec<f64>) {
    let started = Instant::now();
    let mut each = Vec::with_capacity(N as usize);
    for i in 0..N {
        before_each(provisioner);
        each.push(create_one(provisioner, conn, &format!("t{i:04}")));
    }
    (started.elapsed().as_secs_f64(), each)
}

/// The median of `v`, in milliseconds.
pub(crate) fn median_ms(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0) * 1000.0
}

/// The floor: the same statements through `psql -f`, one transaction per tenant.
pub fn floor(bench: &Bench) {
    let (url, _conn) = setup(bench, "pgschemas_bench_w1_floor");
    let mut script = String::from("\\set ON_ERROR_STOP on\n\\timing on\n");
    for i in 0..N {
        let s = format!("f{i:04}");
        script.push_str(&format!(
            "BEGIN;\n\
             INSERT INTO tenants (schema_name, name) VALUES ('{s}', '{s}');\n\
             INSERT INTO domains (tenant_id, domain, is_primary) VALUES (currval('tenants_id_seq'), '{s}.example.com', true);\n\
             CREATE SCHEMA \"{s}\";\n\
             SET LOCAL search_path = \"{s}\", public;\n\
             CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);\n"
        ));
        for (_, up) in UP {
            script.push_str(up);
            script.push('\n');
        }
        let versions = UP
            .iter()
            .map(|(v, _)| format!("('{v}')"))
            .collect::<Vec<_>>()
            .join(", ");
        script.push_str(&format!(
            "INSERT INTO __diesel_schema_migrations (version) VALUES {versions};\nCOMMIT;\n"
        ));
    }
    let path = std::env::temp_dir().join(format!("pgschemas_bench_w1_{}.sql", std::process::id()));
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(script.as_bytes()))
        .expect("write the floor script");
    let started = Instant::now();
    let output = std::process::Command::new("psql")
        .args(["-X", "-q", "-d", &url, "-f"])
        .arg(&path)
        .output()
        .expect("run psql (is it installed?)");
    let seconds = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&path);
    assert!(output.status.success(), "psql failed: {}", output.status);
    // `\timing` prints one line per statement: sum them per tenant.
    let times: Vec<f64> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("Time: "))
        .filter_map(|l| l.split(' ').next()?.parse::<f64>().ok())
        .collect();
    let per_tenant = times.len() / N as usize;
    let mut each: Vec<f64> = times
        .chunks(per_tenant.max(1))
        .map(|c| c.iter().sum::<f64>() / 1000.0)
        .collect();
    let median = median_ms(&mut each);
    remember("W1-floor-psql", 1000.0 / median);
    report(
        "W1-floor-psql",
        N,
        seconds,
        "tenants/s",
        &[("median_ms", format!("{median:.2}"))],
    );
}

/// Adds the median per-tenant time and its ratios to the `base` workloads measured earlier
/// in this run (rates by median: robust to a busy machine).
fn finish(name: &'static str, seconds: f64, each: &mut [f64], bases: &[&str]) {
    let median = median_ms(each);
    let rate = 1000.0 / median;
    remember(name, rate);
    let mut extra = vec![("median_ms".to_owned(), format!("{median:.2}"))];
    for base in bases {
        if let Some(r) = ratio_to(base, rate) {
            extra.push((format!("vs_{base}"), format!("{r:.2}")));
        }
    }
    let extra: Vec<(&str, String)> = extra.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    report(name, N, seconds, "tenants/s", &extra);
}

/// W1: migrate each new schema.
pub fn migrate(bench: &Bench) {
    let (_url, mut conn) = setup(bench, "pgschemas_bench_w1");
    let provisioner = Provisioner::builder(Config::default(), TENANT)
        .build()
        .expect("provisioner");
    let (seconds, mut each) = create_tenants(&provisioner, &mut conn, |_| {});
    finish("W1", seconds, &mut each, &["W1-floor-psql"]);
}

fn reference_config() -> Config {
    Config::builder()
        .clone_reference("sample")
        .build()
        .expect("config")
}

fn clone_run(bench: &Bench, name: &'static str, db: &str, cached: bool) {
    let (_url, mut conn) = setup(bench, db);
    let provisioner = Provisioner::builder(reference_config(), TENANT)
        .build()
        .expect("provisioner");
    provisioner
        .create_reference(&mut conn)
        .expect("create the reference");
    let (seconds, mut each) = create_tenants(&provisioner, &mut conn, |p| {
        if !cached {
            p.clear_clone_cache();
        }
    });
    finish(name, seconds, &mut each, &["W1", "W1-floor-psql"]);
}

/// W1c: clone each new schema from a migrated reference (the clone script is read from the
/// catalogs once and replayed).
pub fn clone(bench: &Bench) {
    clone_run(bench, "W1c", "pgschemas_bench_w1c", true);
}

/// W1c with the catalogs read again for every tenant (no cached script), for comparison.
pub fn clone_uncached(bench: &Bench) {
    clone_run(bench, "W1c-uncached", "pgschemas_bench_w1c_uncached", false);
}

/// W1c against W1 in one database, alternating tenant by tenant so both see the same load:
/// the ratio of their median per-tenant times (above 1: cloning is faster).
pub fn clone_vs_migrate(bench: &Bench) {
    let (_url, mut conn) = setup(bench, "pgschemas_bench_w1c_ab");
    let cloning = Provisioner::builder(reference_config(), TENANT)
        .build()
        .expect("provisioner");
    let migrating = Provisioner::builder(reference_config(), TENANT)
        .clone_from_reference(false)
        .build()
        .expect("provisioner");
    cloning
        .create_reference(&mut conn)
        .expect("create the reference");
    let started = Instant::now();
    let (mut c, mut m) = (Vec::new(), Vec::new());
    for i in 0..N {
        c.push(create_one(&cloning, &mut conn, &format!("c{i:04}")));
        m.push(create_one(&migrating, &mut conn, &format!("m{i:04}")));
    }
    let seconds = started.elapsed().as_secs_f64();
    let (cm, mm) = (median_ms(&mut c), median_ms(&mut m));
    report(
        "W1c-vs-W1",
        2 * N,
        seconds,
        "tenants/s",
        &[
            ("clone_median_ms", format!("{cm:.2}")),
            ("migrate_median_ms", format!("{mm:.2}")),
            ("clone_speedup", format!("{:.2}", mm / cm)),
        ],
    );
}
