//! The example programs, run as real processes against a database of each test's own: the
//! quickstart (the README's main job) and the README's two examples, which are these files
//! verbatim.
//!
//! How a binary is found: the first test to need an example runs
//! `cargo build --example <name> -p pgschemas-diesel` with the features and profile this test
//! binary was built with, into the same target directory, and takes the executable's path from
//! cargo's JSON messages. Under `cargo test` the examples are already built (cargo builds
//! examples with the tests), so this is a no-op check; it only compiles when the tests were
//! built alone (`--test integration`). Cargo holds the target directory's lock only while it
//! builds, not while the tests run, so the nested build does not wait on the outer one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

use pgschemas_diesel::test_database;
use pgschemas_diesel::testing::TestDatabase;

/// The features this test binary was built with that the examples know.
fn features() -> Vec<&'static str> {
    [
        ("testing", cfg!(feature = "testing")),
        ("axum", cfg!(feature = "axum")),
        ("cli", cfg!(feature = "cli")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect()
}

/// The executable of example `name`, built once per test run.
pub(crate) fn example(name: &str) -> PathBuf {
    static BINS: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut bins = BINS.get_or_init(Default::default).lock().unwrap();
    if let Some(bin) = bins.get(name) {
        return bin.clone();
    }
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--example", name, "-p", "pgschemas-diesel"])
        .args(["--message-format=json-render-diagnostics", "--features"])
        .arg(features().join(","))
        .stderr(Stdio::inherit());
    if !cfg!(debug_assertions) {
        cargo.arg("--release");
    }
    let output = cargo.output().unwrap();
    assert!(
        output.status.success(),
        "building the {name} example failed"
    );
    let bin = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .and_then(|m| m["executable"].as_str().map(PathBuf::from))
        .unwrap_or_else(|| panic!("cargo reported no executable for the {name} example"));
    bins.insert(name.to_owned(), bin.clone());
    bin
}

/// Runs `bin` with `DATABASE_URL` set to `db`'s; returns its standard output, after checking
/// it succeeded.
#[track_caller]
fn run(bin: &Path, db: &TestDatabase) -> String {
    let output = Command::new(bin)
        .env("DATABASE_URL", db.url())
        // Plain TCP: with TLS, libpq's teardown at process exit can race a connection r2d2
        // closes on its own thread (see the CLI tests).
        .env("PGSSLMODE", "disable")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{} failed ({}):\n--- stdout\n{stdout}--- stderr\n{}",
        bin.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The README's `rust` code blocks, in order.
fn readme_rust_blocks() -> Vec<String> {
    let readme = include_str!("../README.md");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match &mut current {
            None if line.trim_start().starts_with("```rust") => current = Some(String::new()),
            Some(block) if line.trim_start() == "```" => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    assert!(current.is_none(), "the README ends inside a code block");
    blocks
}

#[test]
fn the_readme_s_rust_examples_are_the_example_programs_verbatim() {
    let programs = [
        ("examples/notes.rs", include_str!("../examples/notes.rs")),
        (
            "examples/routing.rs",
            include_str!("../examples/routing.rs"),
        ),
    ];
    let blocks = readme_rust_blocks();
    assert_eq!(
        blocks.len(),
        programs.len(),
        "the README's rust blocks are these programs, and only these"
    );
    for (block, (path, program)) in blocks.iter().zip(programs) {
        assert!(
            block == program,
            "the README's block differs from {path}: copy the file into the README"
        );
        // Nothing hidden: what the reader sees is the whole program.
        assert!(!block.lines().any(|l| l.trim_start().starts_with("# ")));
        assert!(!block.contains("doctest_setup"));
    }
}

#[test]
fn the_notes_example_runs_and_runs_again_on_the_same_database() {
    let db = test_database!();
    let bin = example("notes");
    for _ in 0..2 {
        let out = run(&bin, &db);
        assert_eq!(out, "customer2 sees 0 of customer1's notes\n");
    }
    let mut conn = db.connect();
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut count = |sql: &str| {
        diesel::sql_query(sql)
            .get_result::<Count>(&mut conn)
            .unwrap()
            .n
    };
    assert_eq!(count("select count(*) as n from customer1.notes"), 2);
    assert_eq!(count("select count(*) as n from customer2.notes"), 0);
}

#[test]
fn the_routing_example_runs_and_runs_again_on_the_same_database() {
    let db = test_database!();
    let bin = example("routing");
    for _ in 0..2 {
        let out = run(&bin, &db);
        assert_eq!(out, "tenant2 via DynamicFolder, prefix /tenant2\n");
    }
}

#[test]
fn the_quickstart_runs_and_runs_again_on_the_same_database() {
    let db = test_database!();
    let bin = example("quickstart");
    let first = run(&bin, &db);
    assert!(first.contains("2. provisioned 3 tenant(s)"), "{first}");
    let second = run(&bin, &db);
    assert!(second.contains("2. provisioned 0 tenant(s)"), "{second}");
    assert!(!second.contains("LEAK"), "{second}");
}

/// The examples share the default database when run by hand: each runs after the others
/// there, in any order, twice.
#[test]
fn the_examples_run_after_one_another_on_one_database() {
    let db = test_database!();
    let (quickstart, notes, routing) =
        (example("quickstart"), example("notes"), example("routing"));
    for bin in [&routing, &quickstart, &notes, &quickstart, &routing, &notes] {
        run(bin, &db);
    }
}
