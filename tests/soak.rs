//! Invariant 2 under faults: behind a real PgBouncer in transaction pooling mode, 16 client
//! threads over 2 server connections run tenant transactions (reads, writes, closures that
//! fail or panic after writing) while backends are killed; no thread reads or leaves a row of
//! another tenant or of `public`, every committed write is there and no rolled-back one is,
//! and no thread hangs. The benchmark runner runs the same soak longer (`bench -- soak`).

use std::time::Duration;

use pgschemas_diesel::test_database;
use pgschemas_diesel::testing::server_url;

pub(crate) mod driver;

#[test]
fn killed_backends_errors_and_panics_leave_no_wrong_row_behind_pgbouncer() {
    let db = test_database!();
    let settings = driver::Settings::new(3_000, Duration::from_secs(25));
    let outcome = driver::run(&server_url(), db.name(), &settings);
    println!("{outcome}");
    let failures = outcome.failures();
    assert!(failures.is_empty(), "{outcome}\n{}", failures.join("\n"));
    // the soak did what it is for: every kind of transaction ran, and backends died under it
    let t = &outcome.tally;
    assert!(
        t.reads > 0 && t.writes > 0 && t.rolled_back_err > 0 && t.rolled_back_panic > 0,
        "{outcome}"
    );
    assert!(outcome.kills > 0, "no backend was killed: {outcome}");
}
