//! The benchmark runner: `cargo run --release --example bench -- <workload|all>`.
//!
//! Runs the workloads of the project's benchmark definition (W1, W1c, W2, W3, W4, W5 with `W5_TENANTS`;
//! W1-roles and W3-roles with per-tenant roles), the web
//! examples' tenant page over HTTP (`HTTP`, sync against async), the fault soak behind
//! PgBouncer (`soak`, `SOAK_TRANSACTIONS` for a quick run), and W1 and W3 on a throwaway
//! Citus cluster beside the single server (`Citus`), against the PostgreSQL server at
//! `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`), each in a fresh
//! database, and prints one JSON object per line:
//! `{"workload": .., "n": .., "seconds": .., "rate": .., "unit": ..}` plus workload-specific fields.

use std::time::Instant;

mod citus;
mod common;
#[cfg(all(feature = "axum", feature = "async"))]
mod http;
mod roles;
mod soak;
mod w1;
mod w2;
mod w3;
#[cfg(feature = "async")]
mod w3_async;
mod w4;
mod w5;

// The web examples, for the HTTP workloads, loaded once: the async example includes the sync
// one (`web_async::web`); without `async`, the sync one alone.
#[cfg(all(feature = "axum", feature = "async"))]
#[allow(dead_code, unreachable_pub)]
#[path = "../web_async.rs"]
mod web_async;
#[cfg(all(feature = "axum", feature = "async"))]
use web_async::web;
#[cfg(all(feature = "axum", not(feature = "async")))]
#[allow(dead_code, unreachable_pub)]
#[path = "../web.rs"]
mod web;

/// One workload: its runner name and the function that runs it.
type Workload = (&'static str, fn(&common::Bench));

fn workloads() -> Vec<Workload> {
    #[allow(unused_mut)]
    let mut all: Vec<Workload> = vec![
        // Each module registers its workloads here.
        ("W1-floor-psql", w1::floor),
        ("W1", w1::migrate),
        ("W1c", w1::clone),
        ("W1c-uncached", w1::clone_uncached),
        ("W1c-vs-W1", w1::clone_vs_migrate),
        ("W2-floor-psql", w2::floor),
        ("W2-seq", w2::seq),
        ("W2-par2", w2::par2),
        ("W2-par4", w2::par4),
        ("W3", w3::all),
        ("W1-roles", roles::w1),
        ("W3-roles", roles::w3),
        ("W4", w4::all),
        ("W5", w5::all),
        ("soak", soak::soak),
        ("Citus", citus::all),
    ];
    // The async pool's W3 (`--features async`).
    #[cfg(feature = "async")]
    all.insert(all.len() - 1, ("W3-async", w3_async::all));
    // The web examples' tenant page over HTTP, sync against async (`--features axum,async`).
    #[cfg(all(feature = "axum", feature = "async"))]
    all.insert(all.len() - 1, ("HTTP", http::all));
    all
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let all = workloads();
    if args.is_empty() {
        eprintln!(
            "usage: cargo run --release --example bench -- <all|{}>",
            all.iter().map(|(n, _)| *n).collect::<Vec<_>>().join("|")
        );
        std::process::exit(2);
    }
    let bench = common::Bench::new();
    let started = Instant::now();
    for arg in &args {
        let selected: Vec<&Workload> = all
            .iter()
            .filter(|(name, _)| {
                arg == "all"
                    || name.eq_ignore_ascii_case(arg)
                    || name.starts_with(&format!("{arg}-"))
            })
            .collect();
        if selected.is_empty() {
            eprintln!("unknown workload {arg:?}");
            std::process::exit(2);
        }
        for (_, run) in selected {
            run(&bench);
        }
    }
    eprintln!("bench finished in {:.1} s", started.elapsed().as_secs_f64());
}
