//! `run-sql` runs the SQL in one transaction per schema, with that schema's path: a script
//! that would leave either (transaction control, search path or role changes) is refused
//! before any schema runs; what slips past is caught and rolled back; a selection naming no
//! existing schema is bad usage (exit status 2) and runs nothing.

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use pgschemas_diesel::cli::{self, App, Outcome};
use pgschemas_diesel::testing::TestDatabase;
use pgschemas_diesel::{Config, StaticTenant, test_database};

const TENANT: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");

/// What a run of the CLI gave.
struct Run {
    outcome: Outcome,
    out: String,
    err: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?}\n--- stdout\n{}--- stderr\n{}",
            self.outcome, self.out, self.err
        )
    }
}

/// The `manage` example's setup (static tenants `www` and `blog`, clone reference `sample`,
/// the default models), run in process.
fn manage(db: &TestDatabase, args: &[&str]) -> Run {
    let config = Config::builder()
        .static_tenant(StaticTenant::builder("www").domain("localhost"))
        .static_tenant(StaticTenant::builder("blog").domain("blog.localhost"))
        .clone_reference("sample")
        .build()
        .unwrap();
    let app = App::builder(config, TENANT).default_models().build();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let outcome = cli::run_from(
        &app,
        // the flag, not the builder: a DATABASE_URL in the environment would win over it
        ["manage", "--database-url", db.url()]
            .into_iter()
            .chain(args.iter().copied()),
        &mut out,
        &mut err,
    );
    Run {
        outcome,
        out: String::from_utf8(out).unwrap(),
        err: String::from_utf8(err).unwrap(),
    }
}

#[track_caller]
fn expect(run: Run, outcome: Outcome) -> Run {
    assert_eq!(run.outcome, outcome, "{run}");
    run
}

/// Shared and static schemas migrated, dynamic tenants `tenant1`..`tenant3`; no reference.
fn sandbox(db: &TestDatabase) {
    expect(manage(db, &["migrate"]), Outcome::Success);
    for t in ["tenant1", "tenant2", "tenant3"] {
        let domain = format!("{t}.localhost");
        expect(
            manage(db, &["create-tenant", t, "--domain", &domain]),
            Outcome::Success,
        );
    }
}

fn count(conn: &mut PgConnection, sql: &str) -> i64 {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    diesel::sql_query(sql).get_result::<N>(conn).unwrap().n
}

fn customers(conn: &mut PgConnection) -> [i64; 3] {
    ["tenant1", "tenant2", "tenant3"]
        .map(|t| count(conn, &format!("select count(*) as n from {t}.customers")))
}

fn relation_exists(conn: &mut PgConnection, name: &str) -> bool {
    count(
        conn,
        &format!("select count(*) as n from pg_class where oid = to_regclass('{name}')"),
    ) == 1
}

#[test]
fn transaction_control_is_refused_before_any_schema_runs() {
    let db = test_database!();
    sandbox(&db);
    let mut conn = db.connect();

    let script = "insert into customers (name, email) values ('a', 'a@example.com');
                  commit;
                  insert into customers (name, email) values ('b', 'b@example.com')";
    let run = expect(
        manage(&db, &["run-sql", script, "--dynamic"]),
        Outcome::Usage,
    );
    assert!(
        run.err.starts_with(
            "error: refusing to run the SQL: statement 2 (\"commit\") it controls the transaction; "
        ),
        "{run}"
    );
    assert!(run.err.contains("Nothing was run"), "{run}");
    assert_eq!(run.out, "", "{run}");
    assert_eq!(customers(&mut conn), [0, 0, 0]);

    for (script, statement, reason) in [
        (
            "begin; insert into customers (name, email) values ('a', 'a@example.com')",
            "statement 1 (\"begin\")",
            "it controls the transaction",
        ),
        (
            "insert into customers (name, email) values ('a', 'a@example.com'); rollback",
            "statement 2 (\"rollback\")",
            "it controls the transaction",
        ),
        (
            "set search_path = public; insert into customers (name, email) values ('a', 'a@example.com')",
            "statement 1 (\"set search_path = public\")",
            "it changes the search path",
        ),
        (
            "insert into customers (name, email) values ('a', 'a@example.com'); set role postgres",
            "statement 2 (\"set role postgres\")",
            "it changes the role",
        ),
        (
            "discard all",
            "statement 1 (\"discard all\")",
            "it discards",
        ),
    ] {
        let run = expect(manage(&db, &["run-sql", script, "--all"]), Outcome::Usage);
        assert!(
            run.err.starts_with(&format!(
                "error: refusing to run the SQL: {statement} {reason}"
            )),
            "{run}"
        );
        assert_eq!(run.out, "", "{run}");
    }
    assert_eq!(customers(&mut conn), [0, 0, 0]);

    // The same words in literals, dollar quotes, identifiers and comments run.
    let script = "/* commit at the end */ create procedure touch() language plpgsql as $body$ begin commit; end $body$;
        insert into customers (name, email) values ('commit; rollback', 'c@example.com');
        select 'begin' as \"commit\"";
    let run = expect(
        manage(&db, &["run-sql", script, "--dynamic"]),
        Outcome::Success,
    );
    assert!(run.out.contains("ran on 3 schemas in "), "{run}");
    assert_eq!(customers(&mut conn), [1, 1, 1]);
    assert_eq!(
        count(
            &mut conn,
            "select count(*) as n from pg_proc where proname = 'touch'"
        ),
        3
    );
}

#[test]
fn a_path_change_the_check_cannot_see_is_rolled_back() {
    let db = test_database!();
    sandbox(&db);
    let mut conn = db.connect();
    let script = "select pg_catalog.set_config('search_path', 'public', true);
                  create table leaked (x int)";
    let run = expect(
        manage(&db, &["run-sql", script, "-s", "tenant1", "tenant2"]),
        Outcome::Failed,
    );
    assert!(
        run.out.contains("tenant1 ... FAILED (") && run.out.contains(
            "the SQL changed the search path from \"tenant1\", \"public\", pg_temp to public; everything it did in this schema was rolled back"
        ),
        "{run}"
    );
    assert!(
        run.out.contains(
            "not started after the first failure (pass --keep-going to run them): tenant2"
        ),
        "{run}"
    );
    assert!(!relation_exists(&mut conn, "public.leaked"));
    assert!(!relation_exists(&mut conn, "tenant1.leaked"));
}

#[test]
fn a_selection_naming_no_existing_schema_is_usage_and_runs_nothing() {
    let db = test_database!();
    sandbox(&db);
    let mut conn = db.connect();
    let insert = "insert into customers (name, email) values ('a', 'a@example.com')";

    let run = expect(
        manage(&db, &["run-sql", insert, "-s", "tenant1", "-x", "tenant1"]),
        Outcome::Usage,
    );
    assert_eq!(
        run.err, "error: the selection names no schema (after exclusions); nothing was run\n",
        "{run}"
    );

    let run = expect(
        manage(&db, &["run-sql", insert, "-s", "nope"]),
        Outcome::Usage,
    );
    assert!(
        run.err.starts_with("error: no schema found for \"nope\""),
        "{run}"
    );

    // The clone reference is configured but was never created.
    let run = expect(
        manage(&db, &["run-sql", insert, "-s", "tenant1", "sample"]),
        Outcome::Usage,
    );
    assert!(
        run.err
            .starts_with("error: selected schema(s) that do not exist: sample; nothing was run"),
        "{run}"
    );
    assert_eq!(run.out, "", "{run}");
    assert_eq!(customers(&mut conn), [0, 0, 0]);

    let run = expect(manage(&db, &["run-sql", "select 1"]), Outcome::Usage);
    assert!(run.err.starts_with("error: no schema given"), "{run}");
}
