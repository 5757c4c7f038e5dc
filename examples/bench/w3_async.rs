//! W3 on the async pool (feature `async`): the W3 loop (100 tenants of 1,000 customers, one
//! query per checkout, one connection) with `AsyncTenantPool`, interleaved in rounds with the
//! sync pool's session form so that the two are compared in one run.
//!
//! - `W3-async-baseline`: `pool.get()` (the shared schema, no switching), session form.
//! - `W3-async`: a tenant change every iteration, session form.
//! - `W3-async-tx-baseline`: the transaction form on one schema every iteration.
//! - `W3-async-tx`: the transaction form with a tenant change every iteration.
//! - `W3-sync`: the sync pool's `W3` loop in the same rounds, for the async/sync ratio.
//!
//! Both pools connect without TLS ([`without_tls`]), so that the ratio compares the pools and
//! not the transports.

use std::time::Instant;

use diesel::{ExpressionMethods, QueryDsl};
use diesel_async::RunQueryDsl;
use pgschemas_diesel::{AsyncTenantPool, AsyncTenantScope, Config, Error, TenantPool};

use crate::common::{Bench, report};
use crate::w3::{
    CUSTOMERS, Customer, M, ROUNDS, customers, database, one_connection_pool, sync_round, tenant,
};

/// `url` with TLS turned off. The async pool connects without TLS (`tokio_postgres::NoTls`),
/// while libpq's default (`sslmode=prefer`) puts the sync pool behind TLS on a server that
/// offers it: the two pools are compared on the same plaintext transport.
fn without_tls(url: &str) -> String {
    if url.contains("://") {
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}sslmode=disable")
    } else {
        format!("{url} sslmode=disable")
    }
}

async fn session_round<F, Fut>(n: u64, checkout: F) -> f64
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = pgschemas_diesel::Result<AsyncTenantScope>>,
{
    let started = Instant::now();
    for i in 0..n {
        let mut conn = checkout(i).await.expect("async checkout");
        let k = (i as i64 * 7919) % CUSTOMERS + 1;
        let c: Customer = customers::table
            .filter(customers::id.eq(k))
            .first(&mut *conn)
            .await
            .expect("customer");
        assert_eq!(c.id, k);
    }
    started.elapsed().as_secs_f64()
}

async fn tx_round(pool: &AsyncTenantPool, n: u64, switching: bool) -> f64 {
    let started = Instant::now();
    for i in 0..n {
        let k = (i as i64 * 7919) % CUSTOMERS + 1;
        let schema = if switching {
            tenant(i)
        } else {
            "t0".to_owned()
        };
        let c: Customer = pool
            .transaction(&schema, async |conn| {
                customers::table
                    .filter(customers::id.eq(k))
                    .first(conn)
                    .await
                    .map_err(Error::from)
            })
            .await
            .expect("async transaction");
        assert_eq!(c.id, k);
    }
    started.elapsed().as_secs_f64()
}

/// Runs the async W3 workloads and the sync W3 loop, interleaved in rounds.
pub fn all(bench: &Bench) {
    let url = without_tls(&database(bench));
    let sync_pool: TenantPool = one_connection_pool(&url);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let deadpool = AsyncTenantPool::builder(url)
            .max_size(1)
            .build()
            .expect("async pool");
        let pool = AsyncTenantPool::from_deadpool(deadpool, Config::default());
        // Warm up every tenant's plan cache on both pools.
        session_round(2 * crate::w3::TENANTS as u64, |i| {
            let t = tenant(i);
            let pool = &pool;
            async move { pool.scope(&t).await }
        })
        .await;
        tx_round(&pool, 2 * crate::w3::TENANTS as u64, true).await;
        sync_round(&sync_pool, 2 * crate::w3::TENANTS as u64);

        let per_round = M / ROUNDS;
        let (mut base, mut switching, mut tx_base, mut tx, mut sync) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for _ in 0..ROUNDS {
            base += session_round(per_round, |_| pool.get()).await;
            switching += session_round(per_round, |i| {
                let t = tenant(i);
                let pool = &pool;
                async move { pool.scope(&t).await }
            })
            .await;
            tx_base += tx_round(&pool, per_round, false).await;
            tx += tx_round(&pool, per_round, true).await;
            sync += sync_round(&sync_pool, per_round);
        }
        let rate = |secs: f64| M as f64 / secs;
        let ratio = |secs: f64, to: f64| format!("{:.3}", rate(secs) / rate(to));
        report("W3-async-baseline", M, base, "queries/s", &[]);
        report(
            "W3-async",
            M,
            switching,
            "queries/s",
            &[
                ("ratio_to_baseline", ratio(switching, base)),
                ("ratio_to_sync_W3", ratio(switching, sync)),
            ],
        );
        report("W3-async-tx-baseline", M, tx_base, "queries/s", &[]);
        report(
            "W3-async-tx",
            M,
            tx,
            "queries/s",
            &[("ratio_to_tx_baseline", ratio(tx, tx_base))],
        );
        report("W3-sync", M, sync, "queries/s", &[]);
    });
}
