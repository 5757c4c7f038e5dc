//! W5: scale. `W5_TENANTS` (default 10,000) tenants of the default models, each with a
//! primary domain `<schema>.example.com` and a folder route `customers.example.com/<schema>`,
//! provisioned at migrations 1-5 in two databases: by migrating each new schema (`A`), and by
//! cloning a migrated reference (`B`). Then, in the same run:
//!
//! - migration 6 to every tenant with 4 workers, against the floor: `psql` sending the same
//!   DDL and ledger insert in 4 sessions (one transaction per schema); the library on `A` and
//!   the floor on `B`, then, migration 6 taken out again, the other way round;
//! - a migrate of `A` with nothing pending (every ledger read, nothing opened);
//! - a cold route-table load of `A` (20,000 routes) and the memory it holds per route;
//! - `doctor` on `A`;
//! - one connection serving 1,000 distinct tenants in turn (W3's query), its backend's memory
//!   (`pg_backend_memory_contexts`) with and without `max_tenants_per_connection`.
//!
//! Every step checks that the library sees all the tenants. Both databases are left behind
//! for inspection and dropped by the next run; `W5_REUSE=1` runs the steps after the
//! provisioning again on them. `W5_ROUNDS` sets how many times the library and the floor
//! migrate each set (default 2).

use std::sync::Arc;
use std::time::Instant;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use pgschemas_diesel::catalog::Catalog;
use pgschemas_diesel::models::{
    DefaultDomain, DefaultTenant, NewDomain, NewTenant, SHARED_MIGRATIONS, TenantModel, add_domain,
    default_catalog,
};
use pgschemas_diesel::provision::Provisioner;
use pgschemas_diesel::routing::{RouteOptions, RouteTable};
use pgschemas_diesel::{Config, SchemaName, TenantPool, migrate::Migrator, migrate::Selection};
use stats_alloc::Region;

use crate::common::{Bench, env_count, report};
use crate::w3::{Customer, customers};

const TENANT: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
const RELEASE: EmbeddedMigrations = embed_migrations!("../examples/migrations/release");
const MIGRATION_6: &str =
    include_str!("../migrations/release/2024-06-01-000006_customer_phone/up.sql");
const VERSION_6: &str = "20240601000006";
/// Migrate-all's workers, and the floor's `psql` sessions.
const WORKERS: usize = 4;
/// The tenants the rates of the first and the last are taken over.
const WINDOW: usize = 1_000;
/// The distinct tenants one connection serves in the backend-memory step.
const SERVED: usize = 1_000;
/// The recycling limit of the backend-memory step.
const RECYCLE_AFTER: usize = 100;

fn schema(i: usize) -> String {
    format!("t{i:05}")
}

#[derive(QueryableByName)]
struct Bytes {
    #[diesel(sql_type = BigInt)]
    bytes: i64,
}

/// This backend's memory, from the server.
fn backend_bytes(conn: &mut PgConnection) -> i64 {
    diesel::sql_query(
        "select sum(total_bytes)::int8 as bytes from pg_catalog.pg_backend_memory_contexts",
    )
    .get_result::<Bytes>(conn)
    .expect("pg_backend_memory_contexts")
    .bytes
}

fn mb(bytes: f64) -> String {
    format!("{:.1}", bytes / 1_048_576.0)
}

/// A fresh database with the default models' shared tables.
fn database(bench: &Bench, name: &str) -> (String, PgConnection) {
    let url = bench.fresh_database(name);
    let mut conn = PgConnection::establish(&url).expect("connect");
    conn.run_pending_migrations(SHARED_MIGRATIONS)
        .expect("shared migrations");
    (url, conn)
}

/// Provisions tenants `0..n` through `provisioner`, each in one transaction with its tenant
/// row and two routes; reports the rates over the first and the last `WINDOW`.
fn provision(name: &str, provisioner: &Provisioner, conn: &mut PgConnection, n: usize) {
    let started = Instant::now();
    let mut each = Vec::with_capacity(n);
    for i in 0..n {
        let schema = schema(i);
        let one = Instant::now();
        provisioner
            .create_tenant(conn, &schema, |conn| {
                let name = SchemaName::new(schema.as_str())?;
                let tenant = DefaultTenant::insert(conn, NewTenant::new(&name, schema.as_str()))?;
                add_domain::<DefaultDomain>(
                    conn,
                    &tenant.id,
                    NewDomain::new(format!("{schema}.example.com")),
                )?;
                add_domain::<DefaultDomain>(
                    conn,
                    &tenant.id,
                    NewDomain::new("customers.example.com").folder(schema.as_str()),
                )?;
                Ok(())
            })
            .unwrap_or_else(|e| panic!("create {schema}: {}", e.report()));
        each.push(one.elapsed().as_secs_f64());
        if (i + 1) % WINDOW == 0 {
            eprintln!(
                "{name}: {} tenants in {:.0} s",
                i + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let window = WINDOW.min(n);
    let first = window as f64 / each[..window].iter().sum::<f64>();
    let last = window as f64 / each[n - window..].iter().sum::<f64>();
    report(
        name,
        n as u64,
        seconds,
        "tenants/s",
        &[
            ("first_1000_per_s", format!("{first:.1}")),
            ("last_1000_per_s", format!("{last:.1}")),
            ("last_to_first", format!("{:.2}", last / first)),
        ],
    );
}

/// The library sees `n` tenants in `url`'s catalog.
fn check_catalog(conn: &mut PgConnection, n: usize) {
    let tenants = default_catalog().tenants(conn).expect("the catalog");
    assert_eq!(tenants.len(), n, "the catalog's tenants");
    let domains = default_catalog().domains(conn).expect("the catalog");
    assert_eq!(domains.len(), 2 * n, "the catalog's routes");
}

fn migrator(url: &str, migrations: EmbeddedMigrations) -> Migrator {
    let pool = TenantPool::with_builder(
        url,
        Config::default(),
        r2d2::Pool::builder().max_size(WORKERS as u32),
    )
    .expect("pool");
    Migrator::builder(pool, Arc::new(default_catalog()))
        .tenant_migrations(migrations)
        .workers(WORKERS)
        .build()
        .expect("migrator")
}

/// Migration 6 to every tenant of `url` by the library; seconds.
fn migrate_all(url: &str, n: usize) -> f64 {
    let migrator = migrator(url, RELEASE);
    let started = Instant::now();
    let result = migrator.run(&Selection::all()).expect("migrate to 6");
    let seconds = started.elapsed().as_secs_f64();
    assert!(result.is_success(), "{result}");
    assert_eq!(result.schemas.len(), n, "every tenant migrated");
    assert!(
        result.schemas.iter().all(|s| s.applied == [VERSION_6]),
        "every schema applies migration 6 once"
    );
    seconds
}

/// Takes migration 6 back out of every tenant of `conn`'s database (not timed), 500 schemas
/// per statement.
fn revert_6(conn: &mut PgConnection, n: usize) {
    for first in (0..n).step_by(500) {
        conn.batch_execute(&format!(
            "do $$ begin for i in {first}..{last} loop execute pg_catalog.format(
               'alter table %1$I.customers drop column phone; drop index %1$I.customers_lower_idx; \
                delete from %1$I.__diesel_schema_migrations where version = ''{VERSION_6}''',
               't' || lpad(i::text, 5, '0')); end loop; end $$",
            last = (first + 500).min(n) - 1,
        ))
        .expect("revert migration 6");
    }
    conn.batch_execute("checkpoint").expect("checkpoint");
}

/// The floor: `psql` in `WORKERS` sessions over `url`'s tenants, one transaction per schema
/// with the same DDL and ledger insert; seconds.
fn migrate_all_floor(url: &str, n: usize) -> f64 {
    let mut files = Vec::new();
    for session in 0..WORKERS {
        let mut script = String::from("\\set ON_ERROR_STOP on\n");
        for i in (session..n).step_by(WORKERS) {
            script.push_str(&format!(
                "BEGIN;\nSET LOCAL search_path TO \"{}\", \"public\";\n{}\nINSERT INTO __diesel_schema_migrations (version) VALUES ('{VERSION_6}');\nCOMMIT;\n",
                schema(i),
                MIGRATION_6.trim()
            ));
        }
        let file = std::env::temp_dir().join(format!(
            "pgschemas_w5_floor_{}_{session}.sql",
            std::process::id()
        ));
        std::fs::write(&file, script).expect("write the floor script");
        files.push(file);
    }
    let started = Instant::now();
    let children: Vec<_> = files
        .iter()
        .map(|file| {
            std::process::Command::new("psql")
                .args(["-X", "-q", "-d", url, "-f"])
                .arg(file)
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("run psql (is it installed?)")
        })
        .collect();
    for mut child in children {
        let status = child.wait().expect("psql");
        assert!(status.success(), "psql failed: {status}");
    }
    let seconds = started.elapsed().as_secs_f64();
    for file in files {
        let _ = std::fs::remove_file(file);
    }
    seconds
}

/// A migrate with nothing pending; seconds.
fn migrate_noop(url: &str, n: usize) -> f64 {
    let migrator = migrator(url, RELEASE);
    let started = Instant::now();
    let result = migrator.run(&Selection::all()).expect("migrate");
    let seconds = started.elapsed().as_secs_f64();
    assert!(result.is_success(), "{result}");
    assert_eq!(result.schemas.len(), n, "every tenant checked");
    assert!(
        result.schemas.iter().all(|s| s.applied.is_empty()),
        "nothing applied"
    );
    seconds
}

/// A cold route-table load; seconds and the bytes it holds per route.
fn route_table(url: &str, n: usize) -> (f64, f64) {
    let region = Region::new(crate::w4::GLOBAL);
    let started = Instant::now();
    let table = RouteTable::start(
        url,
        Config::default(),
        Arc::new(default_catalog()),
        RouteOptions::default(),
    )
    .expect("the route table");
    let seconds = started.elapsed().as_secs_f64();
    let held = region.change();
    let routes = table.routes();
    assert_eq!(routes.route_count(), 2 * n, "every route loaded");
    assert!(routes.warnings().is_empty(), "{:?}", routes.warnings());
    (
        seconds,
        crate::w4::held_bytes(&held) as f64 / routes.route_count() as f64,
    )
}

/// `doctor`; seconds.
fn doctor(conn: &mut PgConnection, n: usize) -> f64 {
    let started = Instant::now();
    let result =
        pgschemas_diesel::doctor::doctor(conn, &Config::default(), &default_catalog(), &RELEASE)
            .expect("doctor");
    let seconds = started.elapsed().as_secs_f64();
    let text = result.to_string();
    assert!(
        text.contains(&format!("{n} tenant schema(s) at the latest")),
        "{text}"
    );
    assert!(text.lines().all(|l| l.len() < 1_000), "a summarised report");
    seconds
}

/// One pool connection serving `SERVED` distinct tenants in turn with W3's query; its
/// backend's memory at the start, at its largest and at the end, and how many backends served.
fn backend_memory(url: &str, recycle: Option<usize>) -> (i64, i64, i64, usize) {
    let mut config = Config::builder();
    if let Some(n) = recycle {
        config = config.max_tenants_per_connection(n);
    }
    let pool = TenantPool::with_builder(
        url,
        config.build().expect("config"),
        r2d2::Pool::builder().max_size(1),
    )
    .expect("pool");
    let start = backend_bytes(&mut pool.get().expect("checkout"));
    let (mut largest, mut end) = (start, start);
    let mut backends = std::collections::HashSet::new();
    for i in 0..SERVED {
        let mut conn = pool.scope(&schema(i)).expect("checkout");
        let found = customers::table
            .find(1 + i as i64)
            .first::<Customer>(&mut *conn)
            .optional()
            .expect("W3's query");
        assert!(found.is_none(), "a new tenant has no customers");
        if (i + 1) % 50 == 0 || i + 1 == SERVED {
            end = backend_bytes(&mut conn);
            largest = largest.max(end);
            backends.insert(
                diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>(
                    "pg_catalog.pg_backend_pid()",
                ))
                .get_result::<i32>(&mut *conn)
                .expect("pid"),
            );
        }
    }
    (start, largest, end, backends.len())
}

pub fn all(bench: &Bench) {
    let n = env_count("W5_TENANTS", 10_000);
    assert!(n >= SERVED, "W5_TENANTS must be at least {SERVED}");

    // Provisioning, by migrating (A) and by cloning (B); with `W5_REUSE`, the databases an
    // earlier run left (migration 6 taken out again).
    let reuse = std::env::var_os("W5_REUSE").is_some();
    let (url_a, mut a, url_b, mut b) = if reuse {
        let url_a =
            pgschemas_diesel::testing::url_with_database(&bench.server_url, "pgschemas_bench_w5");
        let url_b = pgschemas_diesel::testing::url_with_database(
            &bench.server_url,
            "pgschemas_bench_w5_clone",
        );
        let mut a = PgConnection::establish(&url_a).expect("W5_REUSE: the earlier run's database");
        let mut b = PgConnection::establish(&url_b).expect("W5_REUSE: the earlier run's database");
        for conn in [&mut a, &mut b] {
            check_catalog(conn, n);
            revert_6(conn, n);
        }
        (url_a, a, url_b, b)
    } else {
        let (url_a, mut a) = database(bench, "pgschemas_bench_w5");
        let migrating = Provisioner::builder(Config::default(), TENANT)
            .build()
            .expect("provisioner");
        provision("W5-provision-migrate", &migrating, &mut a, n);
        check_catalog(&mut a, n);

        let (url_b, mut b) = database(bench, "pgschemas_bench_w5_clone");
        let reference = Config::builder()
            .clone_reference("sample")
            .build()
            .expect("config");
        let cloning = Provisioner::builder(reference, TENANT)
            .build()
            .expect("provisioner");
        cloning
            .create_reference(&mut b)
            .expect("create the reference");
        provision("W5-provision-clone", &cloning, &mut b, n);
        check_catalog(&mut b, n);
        (url_a, a, url_b, b)
    };
    // The catalogs after 2 × N tenants' DDL: vacuumed and analysed now, so that autovacuum
    // does not pick one of the timed steps to do it in.
    for conn in [&mut a, &mut b] {
        conn.batch_execute(
            "vacuum analyze pg_catalog.pg_class, pg_catalog.pg_attribute, pg_catalog.pg_index, \
             pg_catalog.pg_depend, pg_catalog.pg_type, pg_catalog.pg_constraint, \
             pg_catalog.pg_attrdef, pg_catalog.pg_namespace, pg_catalog.pg_sequence, \
             public.tenants, public.domains",
        )
        .expect("vacuum the catalogs");
        conn.batch_execute("checkpoint").expect("checkpoint");
    }

    // Migration 6 to all, the library and the floor each on one set, then (migration 6
    // taken out again) each on the other; `W5_ROUNDS` such pairs (default 2).
    let (mut library, mut floor) = (Vec::new(), Vec::new());
    for round in 0..env_count("W5_ROUNDS", 2) {
        if round > 0 {
            revert_6(&mut a, n);
            revert_6(&mut b, n);
        }
        library.push(migrate_all(&url_a, n));
        floor.push(migrate_all_floor(&url_b, n));
        revert_6(&mut a, n);
        revert_6(&mut b, n);
        floor.push(migrate_all_floor(&url_a, n));
        library.push(migrate_all(&url_b, n));
    }
    let rate = |runs: &[f64]| (runs.len() * n) as f64 / runs.iter().sum::<f64>();
    let listed = |runs: &[f64]| {
        format!(
            "[{}]",
            runs.iter()
                .map(|s| format!("{s:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    report(
        "W5-migrate-all",
        (library.len() * n) as u64,
        library.iter().sum(),
        "schemas/s",
        &[
            ("workers", WORKERS.to_string()),
            ("runs_seconds", listed(&library)),
            ("floor_psql_per_s", format!("{:.1}", rate(&floor))),
            ("floor_runs_seconds", listed(&floor)),
            (
                "ratio_to_floor",
                format!("{:.2}", rate(&library) / rate(&floor)),
            ),
        ],
    );

    let seconds = migrate_noop(&url_a, n);
    report("W5-migrate-noop", n as u64, seconds, "schemas/s", &[]);

    let (seconds, bytes_per_route) = route_table(&url_a, n);
    report(
        "W5-route-load",
        2 * n as u64,
        seconds,
        "routes/s",
        &[("bytes_per_route", format!("{bytes_per_route:.1}"))],
    );

    let seconds = doctor(&mut a, n);
    report("W5-doctor", n as u64, seconds, "schemas/s", &[]);

    for (name, recycle) in [
        ("W5-backend-memory", None),
        ("W5-backend-memory-recycled", Some(RECYCLE_AFTER)),
    ] {
        let started = Instant::now();
        let (start, largest, end, backends) = backend_memory(&url_a, recycle);
        let seconds = started.elapsed().as_secs_f64();
        let growth = (largest - start) as f64 * 1_000.0 / SERVED as f64;
        report(
            name,
            SERVED as u64,
            seconds,
            "tenants/s",
            &[
                (
                    "max_tenants_per_connection",
                    recycle.map_or("null".into(), |n| n.to_string()),
                ),
                ("start_mb", mb(start as f64)),
                ("largest_mb", mb(largest as f64)),
                ("end_mb", mb(end as f64)),
                ("growth_mb_per_1000_tenants", mb(growth)),
                ("backends", backends.to_string()),
            ],
        );
    }
}
