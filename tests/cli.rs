//! The management CLI, run as a real process: `examples/manage.rs` (the default models, static
//! tenants `www` and `blog`, clone reference `sample`) against a database of each test's own.
//!
//! The binary is built as `crate::examples` builds every example.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use pgschemas_diesel::cli::{self, App, Outcome};
use pgschemas_diesel::testing::TestDatabase;
use pgschemas_diesel::{Config, StaticTenant, test_database};

pub(crate) const TENANT: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");

/// The `manage` example's executable, built once per test run.
fn manage() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| crate::examples::example("manage"))
}

/// What a run of `manage` gave.
#[derive(Debug)]
pub(crate) struct Run {
    code: i32,
    pub(crate) stdout: String,
    stderr: String,
}

impl Run {
    pub(crate) fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    #[track_caller]
    pub(crate) fn ok(self) -> Self {
        assert_eq!(self.code, 0, "expected success:\n{self}");
        self
    }

    #[track_caller]
    fn failed(self) -> Self {
        assert_eq!(self.code, 1, "expected exit status 1:\n{self}");
        self
    }

    #[track_caller]
    fn usage(self) -> Self {
        assert_eq!(self.code, 2, "expected exit status 2:\n{self}");
        self
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit status {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `manage --database-url <db> <args>` (with `DATABASE_URL` unset).
pub(crate) fn run(db: &TestDatabase, args: &[&str]) -> Run {
    let output = Command::new(manage())
        .arg("--database-url")
        .arg(db.url())
        .args(args)
        .env_remove("DATABASE_URL")
        // Plain TCP: with TLS, libpq's teardown at process exit can race a connection r2d2
        // closes on its own thread, and the process then ends with a signal after its
        // output is complete (a known crash, noted for the CLI's exit path).
        .env("PGSSLMODE", "disable")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// The django-pgschemas sandbox: shared and static schemas migrated, the reference created,
/// dynamic tenants `tenant1` (`tenant1.localhost`, `everyone.localhost/tenant1`), `tenant2`
/// (`tenant2.localhost`, `everyone.localhost/tenant2`) and `tenant3` (`tenant3.localhost`).
fn sandbox(db: &TestDatabase) {
    run(db, &["migrate"]).ok();
    run(db, &["create-reference"]).ok();
    for (schema, routes) in [
        (
            "tenant1",
            &["tenant1.localhost", "everyone.localhost/tenant1"][..],
        ),
        (
            "tenant2",
            &["tenant2.localhost", "everyone.localhost/tenant2"],
        ),
        ("tenant3", &["tenant3.localhost"]),
    ] {
        let mut args = vec!["create-tenant", schema];
        for r in routes {
            args.extend(["--domain", r]);
        }
        run(db, &args).ok();
    }
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

fn schemas(conn: &mut PgConnection) -> BTreeSet<String> {
    diesel::sql_query(
        "select nspname::text as name from pg_namespace \
         where nspname !~ '^pg_' and nspname <> 'information_schema'",
    )
    .load::<Name>(conn)
    .unwrap()
    .into_iter()
    .map(|n| n.name)
    .collect()
}

fn applied(conn: &mut PgConnection, schema: &str) -> Vec<String> {
    diesel::sql_query(format!(
        "select version::text as name from {schema}.__diesel_schema_migrations order by 1"
    ))
    .load::<Name>(conn)
    .unwrap()
    .into_iter()
    .map(|n| n.name)
    .collect()
}

pub(crate) fn count(conn: &mut PgConnection, sql: &str) -> i64 {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    diesel::sql_query(sql).get_result::<N>(conn).unwrap().n
}

// ---------------------------------------------------------------------------------------
// Selection (django-pgschemas' test_tenant_related.py and test_whowill.py)
// ---------------------------------------------------------------------------------------

#[test]
fn whowill_prints_the_routes_of_each_selection() {
    let db = test_database!();
    sandbox(&db);
    let dynamic = [
        "tenant1.localhost",
        "tenant2.localhost",
        "tenant3.localhost",
    ];
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (
            "--all",
            [
                &["public", "localhost", "blog.localhost", "sample"][..],
                &dynamic,
            ]
            .concat(),
        ),
        (
            "--static",
            vec!["public", "localhost", "blog.localhost", "sample"],
        ),
        ("--tenants", [&["sample"][..], &dynamic].concat()),
        ("--dynamic", dynamic.to_vec()),
        (
            "-s www blog tenant1",
            vec!["localhost", "blog.localhost", "tenant1.localhost"],
        ),
        ("-s public sample", vec!["public", "sample"]),
        // Wildcards combine; each schema once.
        (
            "--static --dynamic --tenants",
            [
                &["public", "localhost", "blog.localhost", "sample"][..],
                &dynamic,
            ]
            .concat(),
        ),
        // Exclusions, by name, domain, route, or the start of one.
        (
            "--all -x blog",
            [&["public", "localhost", "sample"][..], &dynamic].concat(),
        ),
        (
            "--all -x sample",
            [&["public", "localhost", "blog.localhost"][..], &dynamic].concat(),
        ),
        (
            "--all -x tenant1",
            vec![
                "public",
                "localhost",
                "blog.localhost",
                "sample",
                "tenant2.localhost",
                "tenant3.localhost",
            ],
        ),
        (
            "--all -x public",
            [&["localhost", "blog.localhost", "sample"][..], &dynamic].concat(),
        ),
        ("--dynamic -x public", dynamic.to_vec()),
        (
            "--static -x www",
            vec!["public", "blog.localhost", "sample"],
        ),
        (
            "--dynamic -x everyone.localhost/tenant1",
            vec!["tenant2.localhost", "tenant3.localhost"],
        ),
        (
            "--dynamic -x tenant2.localhost tenant3",
            vec!["tenant1.localhost"],
        ),
        ("-s www -x localhost", vec![]),
        // References: a domain, a route, the start of a unique domain or route.
        ("-s blog.localhost", vec!["blog.localhost"]),
        ("-s localhost", vec!["localhost"]),
        ("-s everyone.localhost/tenant2", vec!["tenant2.localhost"]),
        ("-s everyone.localhost/tenant1", vec!["tenant1.localhost"]),
        ("-s tenant3.loc", vec!["tenant3.localhost"]),
        (
            "-s everyone.localhost/tenant2 tenant2",
            vec!["tenant2.localhost"],
        ),
        ("-s blo", vec!["blog.localhost"]),
    ];
    for (args, expected) in cases {
        let argv: Vec<&str> = std::iter::once("whowill")
            .chain(args.split_whitespace())
            .collect();
        let out = run(&db, &argv).ok();
        assert_eq!(out.lines(), expected, "whowill {args}");
    }
}

#[test]
fn whowill_selection_errors() {
    let db = test_database!();
    sandbox(&db);
    let cases: &[(&str, &str)] = &[
        (
            "",
            "error: no schema given: select schemas with -s/--schema, --all, --static, --dynamic or --tenants",
        ),
        ("-x tenant1", "error: no schema given"),
        ("-s unknown", "error: no schema found for \"unknown\";"),
        (
            "--all -x unknown",
            "error: no schema found for \"unknown\" (excluded);",
        ),
        (
            "-s tenant",
            "error: more than one schema found for \"tenant\" by domain (tenant1, tenant2, tenant3); narrow the reference down",
        ),
        (
            "-s everyone.localhost",
            "error: more than one schema found for \"everyone.localhost\" by domain (tenant1, tenant2)",
        ),
        (
            "--all -x tenant",
            "error: more than one schema found for \"tenant\" (excluded) by domain",
        ),
        (
            "-s www -x nope",
            "error: no schema found for \"nope\" (excluded)",
        ),
    ];
    for (args, message) in cases {
        let argv: Vec<&str> = std::iter::once("whowill")
            .chain(args.split_whitespace())
            .collect();
        let out = run(&db, &argv).usage();
        assert!(out.stderr.starts_with(message), "whowill {args}:\n{out}");
        assert_eq!(out.stdout, "", "whowill {args}");
    }
}

// ---------------------------------------------------------------------------------------
// migrate
// ---------------------------------------------------------------------------------------

#[test]
fn migrate_starts_from_an_empty_database() {
    let db = test_database!();
    let mut conn = db.connect();
    let out = run(&db, &["migrate", "--parallel", "2"]).ok();
    let lines = out.lines();
    assert!(
        lines[0].starts_with("public ... ok (2 applied, "),
        "the shared schema comes first:\n{out}"
    );
    assert!(
        lines[1..3]
            .iter()
            .all(|l| l.contains(" ... ok (5 applied, ")),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("\nkind    schemas  ok  failed  skipped  applied\n"),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("\ntotal         3   3       0        0       12\n"),
        "{out}"
    );
    assert!(out.stdout.contains("migrated 3 schemas in "), "{out}");
    assert_eq!(applied(&mut conn, "www").len(), 5);
    assert_eq!(applied(&mut conn, "blog").len(), 5);
    // The reference is migrated only once it exists.
    assert!(!schemas(&mut conn).contains("sample"));

    let out = run(&db, &["migrate"]).ok();
    assert!(out.stdout.contains("www ... ok (up to date, "), "{out}");
    let out = run(&db, &["migrate", "-s", "nope"]).usage();
    assert!(
        out.stderr
            .starts_with("error: no schema found for \"nope\";"),
        "{out}"
    );

    // Tenants created later are migrated too.
    run(
        &db,
        &["create-tenant", "acme", "--domain", "acme.localhost"],
    )
    .ok();
    conn.batch_execute("delete from acme.__diesel_schema_migrations where version = '20240101000005'; drop table acme.audit_log")
        .unwrap();
    let out = run(&db, &["migrate", "--dynamic"]).ok();
    assert!(out.stdout.starts_with("acme ... ok (1 applied, "), "{out}");
    assert_eq!(applied(&mut conn, "acme").len(), 5);
}

/// Makes `tenant1` and `tenant3` lack migration 5 (which then succeeds), and `tenant2` lack it
/// with its table still there (so it fails: "already exists").
fn break_migration_5(conn: &mut PgConnection) {
    for t in ["tenant1", "tenant2", "tenant3"] {
        conn.batch_execute(&format!(
            "delete from {t}.__diesel_schema_migrations where version = '20240101000005'"
        ))
        .unwrap();
    }
    conn.batch_execute("drop table tenant1.audit_log; drop table tenant3.audit_log")
        .unwrap();
}

#[test]
fn migrate_stops_at_the_first_failure_unless_keep_going() {
    let db = test_database!();
    sandbox(&db);
    let mut conn = db.connect();
    break_migration_5(&mut conn);

    // Default: stop at the first failure; tenant3 is never started.
    let out = run(&db, &["migrate", "--dynamic"]).failed();
    let lines = out.lines();
    assert!(lines[0].starts_with("tenant1 ... ok (1 applied, "), "{out}");
    assert!(
        lines[1].starts_with("tenant2 ... FAILED (")
            && lines[1].ends_with(
                "): migration 2024-01-01-000005_audit_log failed in schema \"tenant2\": relation \"audit_log\" already exists"
            ),
        "{out}"
    );
    assert!(!out.stdout.contains("tenant3 ..."), "{out}");
    assert!(out.stdout.contains("\nfailed:\n  schema   migration                    error\n  tenant2  2024-01-01-000005_audit_log  relation \"audit_log\" already exists\n"), "{out}");
    assert!(
        out.stdout.contains(
            "not started after the first failure (pass --keep-going to run them): tenant3"
        ),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("dynamic        3   1       1        1        1"),
        "{out}"
    );
    assert_eq!(applied(&mut conn, "tenant1").len(), 5);
    assert_eq!(applied(&mut conn, "tenant2").len(), 4);
    assert_eq!(applied(&mut conn, "tenant3").len(), 4);

    // --keep-going: every schema runs; still a failure.
    let out = run(
        &db,
        &["migrate", "--dynamic", "--keep-going", "--parallel", "2"],
    )
    .failed();
    assert!(out.stdout.contains("tenant2 ... FAILED ("), "{out}");
    assert!(out.stdout.contains("tenant3 ... ok (1 applied, "), "{out}");
    assert!(
        out.stdout.contains(
            "\n  tenant2  2024-01-01-000005_audit_log  relation \"audit_log\" already exists\n"
        ),
        "{out}"
    );
    assert!(!out.stdout.contains("not started"), "{out}");
    assert_eq!(applied(&mut conn, "tenant2").len(), 4);
    assert_eq!(applied(&mut conn, "tenant3").len(), 5);

    // Fixed, everything migrates.
    conn.batch_execute("drop table tenant2.audit_log").unwrap();
    let out = run(&db, &["migrate"]).ok();
    assert!(out.stdout.contains("tenant2 ... ok (1 applied, "), "{out}");
    assert_eq!(applied(&mut conn, "tenant2").len(), 5);
}

#[test]
fn migrate_plan_shows_pending_migrations_and_applies_nothing() {
    let db = test_database!();
    let mut conn = db.connect();

    // An empty database: the shared schema and the static tenants would get everything.
    let out = run(&db, &["migrate", "--plan"]).ok();
    assert_eq!(
        out.lines()[..4],
        [
            "public (shared): 2 pending",
            "  00000000000100_pgschemas_default_models",
            "  00000000000101_pgschemas_route_notifications",
            "www (static): 5 pending",
        ],
        "{out}"
    );
    assert!(
        out.stdout
            .contains("blog (static): 5 pending\n  2024-01-01-000001_customers\n"),
        "{out}"
    );
    assert!(out.stdout.ends_with("nothing was applied\n"), "{out}");
    let found = schemas(&mut conn);
    assert!(
        !found.contains("www") && !found.contains("blog"),
        "{found:?}"
    );
    assert_eq!(
        count(
            &mut conn,
            "select count(*) as n from pg_tables where schemaname = 'public'"
        ),
        0
    );

    sandbox(&db);
    break_migration_5(&mut conn);
    let out = run(&db, &["migrate", "--plan", "--tenants", "-x", "tenant3"]).ok();
    assert_eq!(
        out.lines()[..5],
        [
            "sample (reference): up to date",
            "tenant1 (dynamic): 1 pending",
            "  2024-01-01-000005_audit_log",
            "tenant2 (dynamic): 1 pending",
            "  2024-01-01-000005_audit_log",
        ],
        "{out}"
    );
    assert!(
        out.stdout
            .contains("plan: 3 schemas, 2 migrations pending, 0 failed"),
        "{out}"
    );
    assert_eq!(applied(&mut conn, "tenant1").len(), 4);
}

/// `list`, `migrate --plan` and `migrate` read a ledger alike: a version with a comma is one
/// version, and a ledger that is a view or lacks its `version` column is named with what is
/// wrong while every other schema is listed, planned and migrated.
#[test]
fn list_plan_and_migrate_agree_on_every_ledger() {
    let db = test_database!();
    sandbox(&db);
    let mut conn = db.connect();
    conn.batch_execute(
        "delete from tenant1.__diesel_schema_migrations where version = '20240101000005';
         insert into tenant1.__diesel_schema_migrations (version) values ('20240101000005,later');
         drop table tenant1.audit_log;
         alter table tenant2.__diesel_schema_migrations rename to kept;
         create view tenant2.__diesel_schema_migrations as select * from tenant2.kept;
         alter table tenant3.__diesel_schema_migrations rename column version to v;",
    )
    .unwrap();

    let out = run(&db, &["list", "--dynamic"]).failed();
    assert_eq!(
        out.lines(),
        [
            "schema   kind     tenant  state   route              migrations",
            "tenant1  dynamic  1       active  tenant1.localhost  1 pending, 1 unknown to this build",
            "tenant2  dynamic  2       active  tenant2.localhost  ledger unreadable",
            "tenant3  dynamic  3       active  tenant3.localhost  ledger unreadable",
            "",
            "ledgers that cannot be read (a migrate refuses these schemas):",
            "  tenant2: it is a view, not a table of the schema",
            "  tenant3: it has no version column",
            "3 schemas",
        ],
        "{out}"
    );

    // A plan goes on past the schemas it cannot plan.
    let out = run(&db, &["migrate", "--plan", "--dynamic"]).failed();
    assert_eq!(
        out.lines()[..4],
        [
            "tenant1 (dynamic): 1 pending",
            "  2024-01-01-000005_audit_log",
            "tenant2 (dynamic): FAILED: cannot read the ledger of schema \"tenant2\": it is a view, not a table of the schema; nothing was migrated",
            "tenant3 (dynamic): FAILED: cannot read the ledger of schema \"tenant3\": it has no version column; nothing was migrated",
        ],
        "{out}"
    );
    assert!(
        out.stdout
            .contains("plan: 3 schemas, 1 migration pending, 2 failed"),
        "{out}"
    );

    let out = run(&db, &["migrate", "--dynamic", "--keep-going"]).failed();
    assert!(out.stdout.contains("tenant1 ... ok (1 applied, "), "{out}");
    for t in ["tenant2", "tenant3"] {
        assert!(
            out.stdout
                .contains(&format!("): cannot read the ledger of schema \"{t}\": ")),
            "{out}"
        );
    }
    assert_eq!(
        count(&mut conn, "select count(*) as n from tenant2.kept"),
        5
    );
    assert_eq!(
        count(
            &mut conn,
            "select count(*) as n from tenant3.__diesel_schema_migrations"
        ),
        5
    );
    assert_eq!(applied(&mut conn, "tenant1").len(), 6);

    // The shared schema's ledger unreadable: a plan stops there, as a run does.
    conn.batch_execute("alter table public.__diesel_schema_migrations rename column version to v")
        .unwrap();
    let out = run(&db, &["migrate", "--plan"]).failed();
    assert_eq!(
        out.lines()[..3],
        [
            "public (shared): FAILED: cannot read the ledger of schema \"public\": it has no version column; nothing was migrated",
            "www (static): not planned (the shared schema failed)",
            "blog (static): not planned (the shared schema failed)",
        ],
        "{out}"
    );
}

// ---------------------------------------------------------------------------------------
// Schemas and tenants
// ---------------------------------------------------------------------------------------

#[test]
fn clone_copies_a_schema_and_dry_run_keeps_nothing() {
    let db = test_database!();
    sandbox(&db);
    let mut conn = db.connect();
    conn.batch_execute(
        "insert into sample.customers (name, email) values ('seed', 'seed@example.com')",
    )
    .unwrap();

    let out = run(&db, &["clone", "sample", "cloned", "--dry-run"]).ok();
    assert!(out.stdout.starts_with(
        "dry run: cloning schema \"sample\" into \"cloned\" would copy (rolled back, nothing was kept):\n"
    ), "{out}");
    assert!(
        out.stdout.contains("\n  tables                  6\n"),
        "{out}"
    );
    assert!(
        out.stdout.contains("\n  applied migrations      5\n"),
        "{out}"
    );
    assert!(
        !schemas(&mut conn).contains("cloned"),
        "the dry run left the schema behind"
    );

    let out = run(&db, &["clone", "sample", "cloned"]).ok();
    assert!(
        out.stdout
            .starts_with("cloned schema \"sample\" into \"cloned\":\n"),
        "{out}"
    );
    assert_eq!(
        count(&mut conn, "select count(*) as n from cloned.customers"),
        1
    );
    assert_eq!(applied(&mut conn, "cloned").len(), 5);

    let out = run(&db, &["clone", "sample", "bare", "--no-data"]).ok();
    assert!(out.stdout.contains("rows not copied"), "{out}");
    assert_eq!(
        count(&mut conn, "select count(*) as n from bare.customers"),
        0
    );

    let out = run(&db, &["clone", "sample", "cloned"]).failed();
    assert_eq!(out.stderr, "error: schema \"cloned\" already exists\n");
    let out = run(&db, &["clone", "nope", "other", "--dry-run"]).failed();
    assert_eq!(
        out.stderr,
        "error: source schema \"nope\" does not exist; nothing was cloned\n"
    );
    let out = run(&db, &["clone", "sample", "www"]).failed();
    assert!(
        out.stderr
            .contains("clashes with the static tenant \"www\""),
        "{out}"
    );
    assert!(!schemas(&mut conn).contains("other"));
}

#[test]
fn create_reference_and_recreate() {
    let db = test_database!();
    let mut conn = db.connect();
    // On an empty database the shared migrations are applied first.
    let out = run(&db, &["create-reference"]).ok();
    assert_eq!(
        out.stdout,
        "shared schema \"public\": 2 migrations applied first\nreference schema \"sample\" created with 5 migrations\n"
    );
    assert_eq!(applied(&mut conn, "sample").len(), 5);
    conn.batch_execute(
        "insert into sample.customers (name, email) values ('seed', 'seed@example.com')",
    )
    .unwrap();

    let out = run(&db, &["create-reference"]).ok();
    assert_eq!(
        out.stdout,
        "reference schema \"sample\" already exists; pass --recreate to drop it and create it again\n"
    );
    assert_eq!(
        count(&mut conn, "select count(*) as n from sample.customers"),
        1
    );

    for _ in 0..2 {
        let out = run(&db, &["create-reference", "--recreate"]).ok();
        assert_eq!(
            out.stdout,
            "reference schema \"sample\" recreated with 5 migrations\n"
        );
    }
    assert_eq!(
        count(&mut conn, "select count(*) as n from sample.customers"),
        0
    );
    assert_eq!(applied(&mut conn, "sample").len(), 5);
}

#[test]
fn create_list_and_drop_tenants() {
    let db = test_database!();
    let mut conn = db.connect();
    // Shared migrations first, on an empty database.
    let out = run(
        &db,
        &[
            "create-tenant",
            "acme",
            "--domain",
            "acme.localhost",
            "--domain",
            "tenants.localhost/acme",
            "--name",
            "Acme Inc.",
        ],
    )
    .ok();
    assert_eq!(
        out.stdout,
        "shared schema \"public\": 2 migrations applied first\ncreated tenant \"Acme Inc.\" (id 1) in schema \"acme\", routes: acme.localhost, tenants.localhost/acme\n"
    );
    run(
        &db,
        &[
            "create-tenant",
            "globex",
            "--domain",
            "shared.localhost",
            "--folder",
            "globex",
        ],
    )
    .ok();
    assert_eq!(applied(&mut conn, "acme").len(), 5);
    conn.batch_execute(
        "update public.tenants set status = 'suspended' where schema_name = 'globex'",
    )
    .unwrap();

    let out = run(&db, &["list"]).ok();
    assert_eq!(
        out.lines(),
        [
            "schema  kind       tenant  state      route                    migrations",
            "public  shared     -       -          -                        up to date (2)",
            "www     static     -       -          localhost                schema missing",
            "blog    static     -       -          blog.localhost           schema missing",
            "sample  reference  -       -          -                        schema missing",
            "acme    dynamic    1       active     acme.localhost           up to date (5)",
            "globex  dynamic    2       suspended  shared.localhost/globex  up to date (5)",
            "6 schemas",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>(),
        "{out}"
    );

    // Refused: a clashing name, a taken route, an invalid name. Nothing is left behind.
    let out = run(&db, &["create-tenant", "www"]).failed();
    assert_eq!(
        out.stderr,
        "error: schema name \"www\" clashes with the static tenant \"www\"\n"
    );
    let out = run(
        &db,
        &["create-tenant", "initech", "--domain", "acme.localhost"],
    )
    .failed();
    assert_eq!(
        out.stderr,
        "error: route \"acme.localhost\" is taken by tenant 1; remove it there first, or choose another domain or folder\n"
    );
    let out = run(&db, &["create-tenant", "Bad-Name"]).failed();
    assert!(
        out.stderr
            .starts_with("error: invalid schema name \"Bad-Name\""),
        "{out}"
    );
    assert!(!schemas(&mut conn).contains("initech"));
    assert_eq!(
        count(&mut conn, "select count(*) as n from public.tenants"),
        2
    );

    // Dropping keeps the schema unless forced.
    let out = run(&db, &["drop-tenant", "acme"]).ok();
    assert_eq!(
        out.stdout,
        "deleted tenant 1 (schema \"acme\"); schema kept (pass --force to drop it)\n"
    );
    assert!(schemas(&mut conn).contains("acme"));
    assert_eq!(
        count(&mut conn, "select count(*) as n from public.domains"),
        1
    );
    let out = run(&db, &["drop-tenant", "globex", "--force"]).ok();
    assert_eq!(
        out.stdout,
        "deleted tenant 2 (schema \"globex\"); schema dropped\n"
    );
    assert!(!schemas(&mut conn).contains("globex"));

    let out = run(&db, &["drop-tenant", "acme"]).failed();
    assert_eq!(out.stderr, "error: no dynamic tenant has schema \"acme\"\n");
    let out = run(&db, &["drop-tenant", "www", "--force"]).failed();
    assert!(
        out.stderr
            .starts_with("error: refusing to drop schema \"www\""),
        "{out}"
    );
}

// ---------------------------------------------------------------------------------------
// run-sql
// ---------------------------------------------------------------------------------------

#[test]
fn run_sql_runs_on_each_selected_schema() {
    let db = test_database!();
    sandbox(&db);
    let mut conn = db.connect();

    let out = run(
        &db,
        &[
            "run-sql",
            "insert into customers (name, email) values (current_schema(), 'x@example.com')",
            "--dynamic",
        ],
    )
    .ok();
    assert!(
        out.lines()[0].starts_with("tenant1 ... ok (1 row affected, "),
        "{out}"
    );
    assert!(out.stdout.contains("ran on 3 schemas in "), "{out}");
    assert_eq!(
        count(
            &mut conn,
            "select count(*) as n from tenant2.customers where name = 'tenant2'"
        ),
        1
    );

    let out = run(
        &db,
        &[
            "run-sql",
            "select name, email, null as nothing from customers order by id",
            "-s",
            "tenant1",
            "tenant3",
            "--parallel",
            "2",
        ],
    )
    .ok();
    let lines = out.lines();
    assert!(lines[0].starts_with("tenant1 ... ok (1 row, "), "{out}");
    assert_eq!(lines[1], "    name     email          nothing", "{out}");
    assert_eq!(lines[2], "    tenant1  x@example.com  NULL", "{out}");
    assert!(lines[3].starts_with("tenant3 ... ok (1 row, "), "{out}");

    // Each schema runs with its own path.
    let out = run(
        &db,
        &["run-sql", "show search_path", "-s", "www", "tenant2"],
    )
    .ok();
    let lines = out.lines();
    assert_eq!(
        lines[1..3],
        ["    search_path", "    \"www\", \"public\", pg_temp"],
        "{out}"
    );
    assert_eq!(
        lines[4..6],
        ["    search_path", "    \"tenant2\", \"public\", pg_temp"],
        "{out}"
    );

    // Several statements run as one script, in each schema's own transaction.
    run(
        &db,
        &[
            "run-sql",
            "create table notes (body text); insert into notes values ('hi');",
            "-s",
            "tenant1",
        ],
    )
    .ok();
    assert_eq!(
        count(&mut conn, "select count(*) as n from tenant1.notes"),
        1
    );

    // A failing schema rolls back alone; the run stops unless --keep-going.
    let sql = "insert into customers (name, email) values ('again', 'x@example.com')";
    conn.batch_execute("delete from tenant1.customers").unwrap();
    let out = run(&db, &["run-sql", sql, "--dynamic"]).failed();
    assert!(out.stdout.contains("tenant2 ... FAILED ("), "{out}");
    assert!(
        out.stdout
            .contains("duplicate key value violates unique constraint"),
        "{out}"
    );
    assert!(
        out.stdout.contains(
            "not started after the first failure (pass --keep-going to run them): tenant3"
        ),
        "{out}"
    );
    assert_eq!(
        count(&mut conn, "select count(*) as n from tenant1.customers"),
        1
    );
    let out = run(
        &db,
        &["run-sql", sql, "--dynamic", "-x", "tenant1", "--keep-going"],
    )
    .failed();
    assert!(out.stdout.contains("tenant3 ... FAILED ("), "{out}");
    assert!(out.stdout.contains("ran on 2 schemas in "), "{out}");
    assert!(
        out.stdout.contains(": 0 ok, 2 failed, 0 not started"),
        "{out}"
    );

    let out = run(&db, &["run-sql", "select 1"]).usage();
    assert!(out.stderr.starts_with("error: no schema given"), "{out}");
    let out = run(&db, &["run-sql", " ; ", "--all"]).usage();
    assert_eq!(out.stderr, "error: the SQL is empty\n");
}

// ---------------------------------------------------------------------------------------
// doctor
// ---------------------------------------------------------------------------------------

#[test]
fn doctor_passes_a_healthy_setup_and_fails_a_broken_one() {
    let db = test_database!();
    sandbox(&db);
    let out = run(&db, &["doctor"]).ok();
    assert!(!out.stdout.contains("[fail]"), "{out}");
    assert!(out.stdout.contains("[pass] migrations: "), "{out}");
    assert!(
        out.stdout.contains("\n9 passed, 0 warned, 0 failed\n"),
        "{out}"
    );

    let mut conn = db.connect();
    conn.batch_execute(
        "create schema stray; \
         insert into public.tenants (schema_name, name) values ('ghost', 'Ghost'); \
         delete from tenant2.__diesel_schema_migrations where version = '20240101000005'; \
         grant create on schema public to public;",
    )
    .unwrap();
    let out = run(&db, &["doctor"]).failed();
    for expected in [
        "[warn] shared-schema-create: CREATE on the shared schema \"public\" is granted to PUBLIC\n       fix: REVOKE CREATE ON SCHEMA \"public\" FROM PUBLIC\n",
        "[fail] tenant-schemas: tenant(s) without a schema: ghost\n       fix: ",
        "[warn] orphan-schemas: schema(s) with no tenant: stray\n       fix: ",
        "[fail] migrations: behind: tenant2 (1 pending)\n       fix: ",
        "\n5 passed, 2 warned, 2 failed\n",
    ] {
        assert!(
            out.stdout.contains(expected),
            "missing {expected:?}:\n{out}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// The command line itself
// ---------------------------------------------------------------------------------------

#[test]
fn usage_errors_and_help() {
    let db = test_database!();
    let out = run(&db, &["--help"]).ok();
    assert!(
        out.stdout.contains("Usage: manage [OPTIONS] <COMMAND>"),
        "{out}"
    );
    for command in [
        "migrate",
        "whowill",
        "list",
        "create-reference",
        "clone",
        "create-tenant",
        "drop-tenant",
        "run-sql",
        "doctor",
    ] {
        assert!(
            out.stdout.contains(&format!("\n  {command} ")),
            "{command} missing:\n{out}"
        );
    }
    let out = run(&db, &["frobnicate"]).usage();
    assert!(
        out.stderr.contains("unrecognized subcommand 'frobnicate'"),
        "{out}"
    );
    let out = run(&db, &["migrate", "--parallel", "many"]).usage();
    assert!(
        out.stderr
            .contains("invalid value 'many' for '--parallel [<N>]'"),
        "{out}"
    );

    // No database: neither --database-url nor DATABASE_URL.
    let output = Command::new(manage())
        .arg("list")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "error: no database given: pass --database-url or set DATABASE_URL\n"
    );
    // DATABASE_URL is used when the flag is absent.
    let output = Command::new(manage())
        .args(["whowill", "--static"])
        .env("DATABASE_URL", db.url())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    // The shared schema has no tenant tables yet: the error says what to do.
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("if the tenant tables do not exist yet, migrate the shared schema first"),
    );
    let output = Command::new(manage())
        .args([
            "--database-url",
            "postgres://nobody@127.0.0.1:1/none",
            "list",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .starts_with("error: could not connect to PostgreSQL: "),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The same CLI embedded in a program: `cli::run_from` with captured output.
#[test]
fn run_from_embeds_the_cli() {
    let db = test_database!();
    let config = Config::builder()
        .static_tenant(StaticTenant::builder("www").domain("localhost"))
        .build()
        .unwrap();
    let app = App::builder(config, TENANT)
        .default_models()
        .database_url(db.url())
        .build();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let outcome = cli::run_from(&app, ["manage", "migrate"], &mut out, &mut err);
    assert_eq!(
        outcome,
        Outcome::Success,
        "{}",
        String::from_utf8_lossy(&err)
    );
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let outcome = cli::run_from(&app, ["manage", "whowill", "--all"], &mut out, &mut err);
    assert_eq!(
        outcome,
        Outcome::Success,
        "{}",
        String::from_utf8_lossy(&err)
    );
    assert_eq!(String::from_utf8(out).unwrap(), "public\nlocalhost\n");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let outcome = cli::run_from(
        &app,
        ["manage", "whowill", "-s", "nope"],
        &mut out,
        &mut err,
    );
    assert_eq!(outcome, Outcome::Usage);
    assert!(
        String::from_utf8(err)
            .unwrap()
            .starts_with("error: no schema found for \"nope\"")
    );
}
