//! `Citus`: W1 (create tenants) and W3 (switch and query) on a throwaway Citus cluster (a
//! coordinator and two workers on this machine, `testing::CitusCluster`) beside the single
//! server, in one run, with the cluster's figures as ratios to the single server's.
//!
//! Each W1 tenant is distributed (schema-based sharding) by the provisioner; each W3 tenant
//! schema is a distributed schema whose `customers` table is a single-shard table on one
//! worker, queried through the coordinator. Smaller than the plain workloads (a Citus
//! tenant takes longer to create): `CITUS_TENANTS` tenants for W1 (default 50), `CITUS_M`
//! queries for W3 (default 5,000), both forms interleaved in rounds.

use std::time::Instant;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use pgschemas_diesel::provision::Provisioner;
use pgschemas_diesel::testing::CitusCluster;
use pgschemas_diesel::{Config, Error, TenantPool};

use crate::common::{Bench, report};
use crate::w1::{SHARED, create_one, median_ms};
use crate::w3::{CUSTOMERS, CUSTOMERS_DDL, Customer, TENANTS, customers, tenant};

const TENANT: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub fn all(bench: &Bench) {
    let started = Instant::now();
    let cluster = CitusCluster::start();
    eprintln!(
        "Citus cluster (coordinator + 2 workers) started in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let single = bench.fresh_database("pgschemas_bench_citus");
    let coordinator = cluster.coordinator_url();
    w1(&single, &coordinator);
    w3(&single, &coordinator);
}

/// W1 on both, alternating tenant by tenant so that a busy machine disturbs both alike.
fn w1(single: &str, coordinator: &str) {
    let n = env_or("CITUS_TENANTS", 50);
    let mut conns = [single, coordinator].map(|url| {
        let mut conn = PgConnection::establish(url).expect("connect");
        conn.batch_execute(SHARED).expect("shared tables");
        conn
    });
    let provisioners = [false, true].map(|citus| {
        let config = Config::builder().citus(citus).build().expect("config");
        Provisioner::builder(config, TENANT)
            .build()
            .expect("provisioner")
    });
    let mut each = [Vec::new(), Vec::new()];
    for i in 0..n {
        for side in 0..2 {
            let seconds = create_one(&provisioners[side], &mut conns[side], &format!("w{i:04}"));
            each[side].push(seconds);
        }
    }
    let totals = each.clone().map(|v| v.iter().sum::<f64>());
    let [single_ms, citus_ms] = each.map(|mut v| median_ms(&mut v));
    report(
        "Citus-W1-single",
        n,
        totals[0],
        "tenants/s",
        &[("median_ms", format!("{single_ms:.2}"))],
    );
    report(
        "Citus-W1",
        n,
        totals[1],
        "tenants/s",
        &[
            ("median_ms", format!("{citus_ms:.2}")),
            ("ratio_to_single", format!("{:.3}", single_ms / citus_ms)),
        ],
    );
}

/// W3's tenants (100 with 1,000 customers each) on `url`; distributed schemas when
/// `citus`. Statement by statement: Citus refuses some multi-statement DDL on tenant tables.
fn w3_setup(url: &str, citus: bool) -> TenantPool {
    let mut conn = PgConnection::establish(url).expect("connect");
    if citus {
        conn.batch_execute("set citus.enable_schema_based_sharding to on")
            .expect("sharding on");
    }
    for i in 0..TENANTS {
        conn.batch_execute(&format!("create schema w3_t{i}"))
            .expect("schema");
        conn.batch_execute(&format!("set search_path to w3_t{i}"))
            .expect("path");
        for statement in CUSTOMERS_DDL.split(';').filter(|s| !s.trim().is_empty()) {
            conn.batch_execute(statement).expect("customers");
        }
    }
    TenantPool::with_builder(
        url.to_owned(),
        Config::builder().citus(citus).build().expect("config"),
        r2d2::Pool::builder().max_size(1),
    )
    .expect("pool")
}

/// One W3 query in `tenant`, session form (`scope`) or transaction form.
fn query(pool: &TenantPool, i: u64, transaction: bool) {
    let k = (i as i64 * 7919) % CUSTOMERS + 1;
    let schema = format!("w3_{}", tenant(i));
    let c: Customer = if transaction {
        pool.transaction(&schema, |conn| {
            customers::table
                .filter(customers::id.eq(k))
                .first(conn)
                .map_err(Error::from)
        })
        .expect("transaction")
    } else {
        let mut conn = pool.scope(&schema).expect("scope");
        customers::table
            .filter(customers::id.eq(k))
            .first(&mut *conn)
            .expect("customer")
    };
    assert_eq!(c.id, k);
}

/// W3 on both, in interleaved rounds: session and transaction forms, a tenant change every
/// query.
fn w3(single: &str, coordinator: &str) {
    let m = env_or("CITUS_M", 5_000);
    let pools = [w3_setup(single, false), w3_setup(coordinator, true)];
    for pool in &pools {
        for i in 0..2 * TENANTS as u64 {
            query(pool, i, false);
        }
    }
    const ROUNDS: u64 = 20;
    let per_round = (m / ROUNDS).max(1);
    let mut seconds = [[0.0; 2]; 2]; // [side][form]
    for _ in 0..ROUNDS {
        for (side, pool) in pools.iter().enumerate() {
            for (form, transaction) in [false, true].into_iter().enumerate() {
                let started = Instant::now();
                for i in 0..per_round {
                    query(pool, i, transaction);
                }
                seconds[side][form] += started.elapsed().as_secs_f64();
            }
        }
    }
    let n = per_round * ROUNDS;
    for (form, name) in [(0, "W3"), (1, "W3-tx")] {
        let [single_s, citus_s] = [seconds[0][form], seconds[1][form]];
        report(
            &format!("Citus-{name}-single"),
            n,
            single_s,
            "queries/s",
            &[],
        );
        report(
            &format!("Citus-{name}"),
            n,
            citus_s,
            "queries/s",
            &[("ratio_to_single", format!("{:.3}", single_s / citus_s))],
        );
    }
}
