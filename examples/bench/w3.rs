//! W3: switch and query. 100 tenants with 1,000 customers each; loop M times: take a tenant,
//! activate it, `select * from customers where id = $k`, release.

use std::time::Instant;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use pgschemas_diesel::{Config, Error, TenantPool};

use crate::common::{Bench, report};

pub(crate) const TENANTS: usize = 100;
pub(crate) const CUSTOMERS: i64 = 1_000;
pub(crate) const M: u64 = 20_000;

diesel::table! {
    customers (id) {
        id -> BigInt,
        name -> Text,
        email -> Text,
        created_at -> Timestamptz,
    }
}

#[derive(Queryable)]
#[allow(dead_code)]
pub(crate) struct Customer {
    pub(crate) id: i64,
    name: String,
    email: String,
    created_at: chrono::DateTime<chrono::Utc>,
}

pub(crate) const CUSTOMERS_DDL: &str = "create table customers (id bigserial primary key, name text not null, \
     email text not null unique, created_at timestamptz not null default now()); \
     insert into customers (name, email) select 'c' || g, 'c' || g || '@example.com' \
     from generate_series(1, 1000) g; analyze customers;";

/// Creates W3's database (the shared schema and `TENANTS` tenant schemas, each with its
/// customers) and returns its URL.
pub(crate) fn database(bench: &Bench) -> String {
    let url = bench.fresh_database("pgschemas_bench_w3");
    let mut conn = PgConnection::establish(&url).expect("connect");
    let mut script = format!("set search_path to public; {CUSTOMERS_DDL}");
    for i in 0..TENANTS {
        script.push_str(&format!(
            "create schema t{i}; set search_path to t{i}; {CUSTOMERS_DDL}"
        ));
    }
    conn.batch_execute(&script).expect("create tenants");
    url
}

/// The sync pool of one connection W3 measures, on `url`.
pub(crate) fn one_connection_pool(url: &str) -> TenantPool {
    TenantPool::with_builder(
        url.to_owned(),
        Config::default(),
        r2d2::Pool::builder().max_size(1),
    )
    .expect("pool")
}

fn setup(bench: &Bench) -> (TenantPool, String) {
    let url = database(bench);
    (one_connection_pool(&url), url)
}

pub(crate) fn run(
    pool: &TenantPool,
    n: u64,
    checkout: impl Fn(&TenantPool, u64) -> pgschemas_diesel::TenantScope,
) -> f64 {
    let started = Instant::now();
    for i in 0..n {
        let mut conn = checkout(pool, i);
        let k = (i as i64 * 7919) % CUSTOMERS + 1;
        let c: Customer = customers::table
            .filter(customers::id.eq(k))
            .first(&mut *conn)
            .expect("customer");
        assert_eq!(c.id, k);
    }
    started.elapsed().as_secs_f64()
}

/// W3's loop in the transaction form (`pool.transaction` every iteration, a tenant change
/// each time); its seconds.
pub(crate) fn run_tx(pool: &TenantPool, n: u64) -> f64 {
    let started = Instant::now();
    for i in 0..n {
        let k = (i as i64 * 7919) % CUSTOMERS + 1;
        let c: Customer = pool
            .transaction(&tenant(i), |conn| {
                customers::table
                    .filter(customers::id.eq(k))
                    .first(conn)
                    .map_err(Error::from)
            })
            .expect("transaction");
        assert_eq!(c.id, k);
    }
    started.elapsed().as_secs_f64()
}

/// The same loop on a plain r2d2 pool of Diesel connections (r2d2's `SELECT 1` at each
/// checkout, the server's default path): what the loop costs without this crate.
fn run_plain(pool: &r2d2::Pool<diesel::r2d2::ConnectionManager<PgConnection>>, n: u64) -> f64 {
    let started = Instant::now();
    for i in 0..n {
        let mut conn = pool.get().expect("plain checkout");
        let k = (i as i64 * 7919) % CUSTOMERS + 1;
        let c: Customer = customers::table
            .filter(customers::id.eq(k))
            .first(&mut *conn)
            .expect("customer");
        assert_eq!(c.id, k);
    }
    started.elapsed().as_secs_f64()
}

pub(crate) fn tenant(i: u64) -> String {
    format!("t{}", i % TENANTS as u64)
}

pub(crate) const ROUNDS: u64 = 100;

/// Runs W3, W3-same, W3-baseline, W3-tx and W3-plain in one go, interleaved in rounds so that a noisy
/// machine disturbs them alike; the ratios come from one run.
pub fn all(bench: &Bench) {
    let (pool, url) = setup(bench);
    // Warm up every tenant's plan cache and the connection.
    run(&pool, 2 * TENANTS as u64, |p, i| {
        p.scope(&tenant(i)).expect("scope")
    });

    let plain_pool = r2d2::Pool::builder()
        .max_size(1)
        .build(diesel::r2d2::ConnectionManager::<PgConnection>::new(url))
        .expect("plain pool");
    run_plain(&plain_pool, 2 * TENANTS as u64);

    let per_round = M / ROUNDS;
    let (mut base, mut same, mut switching, mut tx, mut plain) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for _ in 0..ROUNDS {
        plain += run_plain(&plain_pool, per_round);
        base += run(&pool, per_round, |p, _| p.get().expect("get"));
        same += run(&pool, per_round, |p, _| p.scope(&"t0").expect("scope"));
        switching += run(&pool, per_round, |p, i| p.scope(&tenant(i)).expect("scope"));
        tx += run_tx(&pool, per_round);
    }

    let base_rate = M as f64 / base;
    let ratio = |secs: f64| format!("{:.3}", (M as f64 / secs) / base_rate);
    report("W3-baseline", M, base, "queries/s", &[]);
    report(
        "W3-same",
        M,
        same,
        "queries/s",
        &[("ratio_to_baseline", ratio(same))],
    );
    report(
        "W3",
        M,
        switching,
        "queries/s",
        &[("ratio_to_baseline", ratio(switching))],
    );
    report(
        "W3-tx",
        M,
        tx,
        "queries/s",
        &[("ratio_to_baseline", ratio(tx))],
    );
    report(
        "W3-plain",
        M,
        plain,
        "queries/s",
        &[("ratio_to_baseline", ratio(plain))],
    );
}

/// One round of the sync pool's W3 loop (a tenant change every iteration), for comparisons
/// made in other runs' rounds.
#[cfg_attr(not(feature = "async"), allow(dead_code))]
pub(crate) fn sync_round(pool: &TenantPool, n: u64) -> f64 {
    run(pool, n, |p, i| p.scope(&tenant(i)).expect("scope"))
}
