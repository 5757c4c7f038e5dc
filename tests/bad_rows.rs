//! One bad row of a user's tenant or domain table never stops the others: with a custom
//! `#[derive(Tenant)]` model holding `acme`, `globex` and a row named `Bad Name` (and a
//! domain of each, plus a domain no host can match), the route table starts and keeps
//! following changes, the migrator migrates the others, `doctor` and the CLI carry on; each
//! reports the bad rows by key and value.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use pgschemas_diesel::testing::TestDatabase;
use pgschemas_diesel::{
    Config, Domain, Error, SchemaName, Tenant, TenantPool, catalog::InvalidRow, catalog::RowKind,
    doctor::CheckStatus, doctor::doctor, migrate::Migrator, migrate::SchemaKind,
    migrate::Selection, models::ModelCatalog, models::install_route_triggers, routing::Resolution,
    routing::RouteOptions, routing::RouteTable, test_database,
};

use crate::routing::eventually;

const TENANT: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");

diesel::table! {
    orgs (id) {
        id -> Int8,
        slug -> Text,
        active -> Bool,
    }
}

diesel::table! {
    hosts (id) {
        id -> Int8,
        org_id -> Int8,
        host -> Text,
        folder -> Nullable<Text>,
        is_primary -> Bool,
        redirect_to_primary -> Bool,
    }
}

#[derive(Debug, Queryable, Selectable, Tenant)]
#[diesel(table_name = orgs, check_for_backend(diesel::pg::Pg))]
#[tenant(schema_name = slug, status = active)]
struct Org {
    id: i64,
    slug: String,
    active: bool,
}

#[derive(Debug, Queryable, Selectable, Domain)]
#[diesel(table_name = hosts, check_for_backend(diesel::pg::Pg))]
#[domain(tenant = org_id, domain = host)]
struct Host {
    id: i64,
    org_id: i64,
    host: String,
    folder: Option<String>,
    is_primary: bool,
    redirect_to_primary: bool,
}

fn catalog() -> ModelCatalog<Org, Host> {
    ModelCatalog::new().with_shared_schema(SchemaName::new("public").unwrap())
}

/// The user's tables with their route triggers; `acme` (1) and `globex` (2) with their
/// schemas and domains.
fn good_rows(conn: &mut PgConnection) {
    conn.batch_execute(
        "create table orgs (id bigserial primary key, slug text not null unique,
             active bool not null default true);
         create table hosts (id bigserial primary key,
             org_id bigint not null references orgs on delete cascade, host text not null,
             folder text, is_primary bool not null default false,
             redirect_to_primary bool not null default false);
         insert into orgs (id, slug) values (1, 'acme'), (2, 'globex');
         insert into hosts (org_id, host, is_primary) values
             (1, 'acme.test', true), (2, 'globex.test', true);
         create schema acme; create schema globex;",
    )
    .unwrap();
    install_route_triggers(conn, &pgschemas_diesel::Config::default(), &catalog()).unwrap();
}

/// The row `Bad Name` (3) and its domain `bad.test`.
fn bad_tenant(conn: &mut PgConnection) {
    conn.batch_execute(
        "insert into orgs (id, slug) values (3, 'Bad Name');
         insert into hosts (org_id, host, is_primary) values (3, 'bad.test', true);",
    )
    .unwrap();
}

/// Every bad row: `Bad Name` and its domain, and a domain of `acme` no host can match.
fn all_rows(conn: &mut PgConnection) {
    good_rows(conn);
    bad_tenant(conn);
    conn.batch_execute("insert into hosts (org_id, host) values (1, 'bad host.test')")
        .unwrap();
}

fn bad_tenant_row() -> InvalidRow {
    InvalidRow::tenant(
        "3",
        "Bad Name",
        r#"invalid schema name "Bad Name": it has upper-case letters; schema names are lower case so that quoted and unquoted spellings agree"#,
    )
}

fn schema_of(table: &RouteTable, host: &str) -> Option<String> {
    table
        .resolve(host, "/")
        .route()
        .map(|r| r.schema().to_string())
}

/// A route table that records what its error callback receives.
fn start(db: &TestDatabase) -> (RouteTable, Arc<Mutex<Vec<String>>>) {
    let reported = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&reported);
    let table = RouteTable::start(
        db.url(),
        Config::default(),
        Arc::new(catalog()),
        RouteOptions::default().on_error(move |e| {
            let what = match e {
                Error::InvalidRow(_) => format!("row: {e}"),
                other => format!("error: {other}"),
            };
            sink.lock().unwrap().push(what);
        }),
    )
    .expect("the route table starts despite the bad rows");
    (table, reported)
}

#[test]
fn route_table_starts_with_the_valid_tenants_and_reports_each_bad_row() {
    let db = test_database!();
    let mut conn = db.connect();
    all_rows(&mut conn);
    let (table, reported) = start(&db);

    assert_eq!(schema_of(&table, "acme.test").as_deref(), Some("acme"));
    assert_eq!(schema_of(&table, "globex.test").as_deref(), Some("globex"));
    assert!(matches!(
        table.resolve("bad.test", "/"),
        Resolution::NotFound
    ));
    assert!(matches!(table.resolve_header("3"), Resolution::NotFound));
    // Reported before start returned: each bad row once, by key and value.
    assert_eq!(
        *reported.lock().unwrap(),
        [
            format!("row: {}", bad_tenant_row()),
            r#"row: domain "bad.test" of tenant "3" left out: its tenant's row is left out (schema name "Bad Name")"#.to_owned(),
            r#"row: domain "bad host.test" of tenant "1" left out: not a valid host name"#.to_owned(),
        ]
    );
    let routes = table.routes();
    let kinds: Vec<(RowKind, &str)> = routes
        .invalid_rows()
        .iter()
        .map(|r| (r.kind, r.value.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            (RowKind::Tenant, "Bad Name"),
            (RowKind::Domain, "bad.test"),
            (RowKind::Domain, "bad host.test")
        ]
    );
    assert_eq!(table.status().last_error, None);
}

#[test]
fn a_running_route_table_follows_changes_after_a_bad_row_appears() {
    let db = test_database!();
    let mut conn = db.connect();
    good_rows(&mut conn);
    let (table, reported) = start(&db);
    assert_eq!(schema_of(&table, "globex.test").as_deref(), Some("globex"));
    assert!(reported.lock().unwrap().is_empty());

    bad_tenant(&mut conn);
    eventually(&table, "report the bad row", |_| {
        reported
            .lock()
            .unwrap()
            .contains(&format!("row: {}", bad_tenant_row()))
    });

    // The table still follows: a suspended tenant is no longer served, a removed one is gone.
    conn.batch_execute("update orgs set active = false where slug = 'globex'")
        .unwrap();
    eventually(&table, "globex suspended", |t| {
        matches!(t.resolve("globex.test", "/"), Resolution::Suspended(_))
    });
    conn.batch_execute("delete from orgs where slug = 'acme'")
        .unwrap();
    eventually(&table, "acme removed", |t| {
        matches!(t.resolve("acme.test", "/"), Resolution::NotFound)
    });

    // Reloads that still leave the same rows out do not report them again.
    table.refresh().unwrap();
    let reported = reported.lock().unwrap();
    assert_eq!(reported.len(), 2, "{reported:#?}");
    assert!(
        reported.iter().all(|r| r.starts_with("row: ")),
        "{reported:#?}"
    );
    assert_eq!(table.status().last_error, None);
}

fn migrator(db: &TestDatabase) -> Migrator {
    let pool = TenantPool::with_builder(
        db.url(),
        Config::default(),
        r2d2::Pool::builder()
            .max_size(2)
            .connection_timeout(Duration::from_secs(30)),
    )
    .unwrap();
    Migrator::builder(pool, Arc::new(catalog()))
        .tenant_migrations(TENANT)
        .workers(2)
        .build()
        .unwrap()
}

#[test]
fn migrator_migrates_the_others_and_reports_the_bad_row() {
    let db = test_database!();
    let mut conn = db.connect();
    all_rows(&mut conn);
    let migrator = migrator(&db);

    let plan = migrator.plan(&Selection::all()).unwrap();
    assert_eq!(plan.invalid_rows, [bad_tenant_row()]);

    let report = migrator
        .run(&Selection::all())
        .expect("the run starts despite the bad row");
    let migrated: Vec<(&str, SchemaKind, usize)> = report
        .schemas
        .iter()
        .map(|s| (s.schema.as_str(), s.kind, s.applied.len()))
        .collect();
    assert_eq!(
        migrated,
        [
            ("acme", SchemaKind::Dynamic, 5),
            ("globex", SchemaKind::Dynamic, 5)
        ]
    );
    assert!(report.schemas.iter().all(|s| s.is_success()));
    // The bad row is an entry of its own, without a schema, naming the row.
    assert_eq!(report.invalid_rows, [bad_tenant_row()]);
    assert!(!report.is_success(), "a row was left out: {report}");
    let text = report.to_string();
    assert!(text.contains("1 tenant row left out"), "{text}");
    assert!(
        text.contains(r#"tenant "3" left out: invalid schema name "Bad Name""#),
        "{text}"
    );

    // A selection that names schemas does not miss the bad row.
    let named = migrator.run(&Selection::of(["acme"])).unwrap();
    assert!(named.invalid_rows.is_empty());
    assert!(named.is_success(), "{named}");
}

#[test]
fn doctor_finds_the_bad_rows_and_says_how_to_fix_them() {
    let db = test_database!();
    let mut conn = db.connect();
    all_rows(&mut conn);
    let report = doctor(&mut conn, &Config::default(), &catalog(), &TENANT)
        .expect("the checks run despite the bad rows");
    let check = report.get("invalid-rows").expect("an invalid-rows finding");
    assert_eq!(check.status, CheckStatus::Fail, "{check}");
    for needle in [
        r#"tenant "3" left out: invalid schema name "Bad Name""#,
        r#"domain "bad.test" of tenant "3" left out"#,
        r#"domain "bad host.test" of tenant "1" left out: not a valid host name"#,
    ] {
        assert!(check.summary.contains(needle), "{needle:?} not in {check}");
    }
    assert!(
        check
            .fix
            .as_deref()
            .is_some_and(|f| f.contains("schema name"))
    );
    // The other checks see the valid tenants.
    let schemas = report.get("tenant-schemas").unwrap();
    assert_eq!(schemas.status, CheckStatus::Pass, "{schemas}");
    assert!(schemas.summary.contains("all 2 tenant(s)"), "{schemas}");

    // A bad domain alone is one route less: a warning.
    conn.batch_execute("delete from orgs where id = 3").unwrap();
    let report = doctor(&mut conn, &Config::default(), &catalog(), &TENANT).unwrap();
    let check = report.get("invalid-rows").unwrap();
    assert_eq!(check.status, CheckStatus::Warn, "{check}");
    assert!(!check.summary.contains("Bad Name"), "{check}");
    assert!(
        check.summary.contains(r#"domain "bad host.test""#),
        "{check}"
    );
}

#[cfg(feature = "cli")]
#[test]
fn cli_list_migrate_and_doctor_go_on_and_show_the_bad_rows() {
    use pgschemas_diesel::cli::{self, App, Outcome};

    let db = test_database!();
    let mut conn = db.connect();
    all_rows(&mut conn);
    let app = App::builder(Config::default(), TENANT)
        .catalog(catalog())
        .build();
    let run = |args: &[&str]| {
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
        let (out, err) = (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        );
        (outcome, format!("{out}--- stderr\n{err}"))
    };
    let bad = r#"tenant "3" left out: invalid schema name "Bad Name""#;

    let (outcome, text) = run(&["migrate"]);
    assert_eq!(outcome, Outcome::Failed, "{text}");
    assert!(text.contains("acme ... ok (5 applied"), "{text}");
    assert!(text.contains("globex ... ok (5 applied"), "{text}");
    assert!(text.contains(bad), "{text}");
    assert!(
        text.contains("2 ok, 0 failed, 0 skipped, 10 migrations applied, 1 row left out"),
        "{text}"
    );

    let (outcome, text) = run(&["list"]);
    assert_eq!(outcome, Outcome::Failed, "{text}");
    for needle in [
        "acme",
        "globex",
        "up to date (5)",
        bad,
        r#"domain "bad.test" of tenant "3" left out"#,
        "3 schemas, 2 rows left out",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
    // A selection that names schemas does not miss the bad row.
    let (outcome, text) = run(&["list", "-s", "acme"]);
    assert_eq!(outcome, Outcome::Success, "{text}");

    let (outcome, text) = run(&["whowill", "--all"]);
    assert_eq!(outcome, Outcome::Failed, "{text}");
    let (out, err) = text.split_once("--- stderr\n").unwrap();
    assert_eq!(out, "public\nacme.test\nglobex.test\n");
    assert!(err.contains(bad), "{text}");

    let (outcome, text) = run(&["doctor"]);
    assert_eq!(outcome, Outcome::Failed, "{text}");
    assert!(text.contains("[fail] invalid-rows: "), "{text}");
    assert!(text.contains(bad), "{text}");
    assert!(text.contains("fix: correct or delete the rows"), "{text}");
}
