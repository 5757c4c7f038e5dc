//! soak: the fault soak of `tests/soak.rs`, long. 16 client threads over 2 PgBouncer server
//! connections (transaction mode) run `SOAK_TRANSACTIONS` (default 100,000) tenant
//! transactions while a chaos thread kills backends; the run fails on any wrong row, count
//! mismatch, unexplained error or hung thread.

use std::time::Duration;

use crate::common::{Bench, report};

#[path = "../../tests/soak/driver.rs"]
mod driver;

const DATABASE: &str = "pgschemas_bench_soak";
const TRANSACTIONS: u64 = 100_000;

pub fn soak(bench: &Bench) {
    let transactions = match std::env::var("SOAK_TRANSACTIONS") {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("SOAK_TRANSACTIONS={v:?} is not a number")),
        Err(_) => TRANSACTIONS,
    };
    bench.fresh_database(DATABASE);
    let settings = driver::Settings::new(transactions, Duration::from_secs(3_600));
    let outcome = driver::run(&bench.server_url, DATABASE, &settings);
    eprintln!("{outcome}");
    report(
        "soak",
        outcome.tally.transactions,
        outcome.seconds,
        "transactions/s",
        &figures(&outcome),
    );
    let failures = outcome.failures();
    assert!(failures.is_empty(), "soak failed:\n{}", failures.join("\n"));
}

/// The outcome's counts as report fields (JSON values).
fn figures(outcome: &driver::Outcome) -> Vec<(&'static str, String)> {
    let (s, t) = (&outcome.settings, &outcome.tally);
    let errors = t
        .errors
        .iter()
        .map(|(kind, n)| format!("\"{kind}\": {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    vec![
        ("threads", s.threads.to_string()),
        ("server_connections", s.server_connections.to_string()),
        ("tenants", s.tenants.to_string()),
        ("reads", t.reads.to_string()),
        ("writes_committed", t.writes.to_string()),
        ("rolled_back_err", t.rolled_back_err.to_string()),
        ("rolled_back_panic", t.rolled_back_panic.to_string()),
        ("errors", format!("{{{errors}}}")),
        ("in_doubt", t.in_doubt.to_string()),
        ("in_doubt_committed", t.in_doubt_committed.to_string()),
        ("kills", outcome.kills.to_string()),
        ("wrong_rows", t.wrong_rows.to_string()),
        ("count_mismatches", t.count_mismatches.to_string()),
        ("unexpected", t.unexpected.to_string()),
        ("hung_threads", outcome.hung.len().to_string()),
    ]
}
