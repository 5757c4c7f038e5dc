//! `doctor`: a healthy setup passes every check; each kind of breakage is found.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use pgschemas_diesel::{
    Config, SchemaConnection, SchemaName, StaticTenant, catalog::Catalog, catalog::DomainRecord,
    catalog::TenantRecord, doctor::CheckStatus, doctor::doctor, test_database,
};

const TENANT: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
const RELEASE: EmbeddedMigrations = embed_migrations!("../examples/migrations/release");

/// Tenants from a fixed list, as a user's models would give them.
struct Fixed(Vec<&'static str>);

impl Catalog for Fixed {
    fn tenants(&self, _: &mut PgConnection) -> pgschemas_diesel::Result<Vec<TenantRecord>> {
        self.0
            .iter()
            .enumerate()
            .map(|(i, s)| {
                Ok(TenantRecord {
                    id: (i + 1).to_string(),
                    schema: SchemaName::new(s)?,
                    active: true,
                })
            })
            .collect()
    }
    fn domains(&self, _: &mut PgConnection) -> pgschemas_diesel::Result<Vec<DomainRecord>> {
        Ok(Vec::new())
    }
    fn watched_tables(&self, _shared: &pgschemas_diesel::SchemaName) -> Vec<(String, String)> {
        Vec::new()
    }
}

fn config() -> Config {
    Config::builder()
        .static_tenant(StaticTenant::builder("www").domain("localhost"))
        .build()
        .unwrap()
}

fn migrate(conn: &mut PgConnection, schema: &str) {
    let config = config();
    conn.batch_execute(&format!("create schema if not exists {schema}"))
        .unwrap();
    config.activate(conn, &schema).unwrap();
    conn.run_pending_migrations(TENANT).unwrap();
    conn.deactivate().unwrap();
}

#[test]
fn a_healthy_setup_passes() {
    let db = test_database!();
    let mut conn = db.connect();
    for s in ["www", "t1", "t2"] {
        migrate(&mut conn, s);
    }
    let report = doctor(&mut conn, &config(), &Fixed(vec!["t1", "t2"]), &TENANT).unwrap();
    assert_eq!(report.worst(), CheckStatus::Pass, "{report}");
    assert_eq!(report.checks.len(), 9);
    assert!(
        report
            .get("migrations")
            .unwrap()
            .summary
            .contains("3 tenant schema(s) at the latest of 5")
    );
}

#[test]
fn a_broken_setup_is_diagnosed() {
    let db = test_database!();
    let mut conn = db.connect();
    for s in ["www", "t1", "www2"] {
        migrate(&mut conn, s);
    }
    conn.batch_execute(&format!(
        "grant create on schema public to public;
         create schema stray;
         create type t1.mood as enum ('a');
         alter database {} set search_path = t1, public;",
        db.name()
    ))
    .unwrap();
    // t2 has no schema; "www" is a dynamic tenant named like the static one.
    let catalog = Fixed(vec!["t1", "t2", "www"]);
    let mut fresh = PgConnection::establish(db.url()).unwrap();
    // The new release has a migration t1 does not have yet.
    let report = doctor(&mut fresh, &config(), &catalog, &RELEASE).unwrap();
    let status = |name: &str| report.get(name).unwrap().status;
    assert_eq!(
        status("shared-schema-create"),
        CheckStatus::Warn,
        "{report}"
    );
    assert_eq!(status("default-search-path"), CheckStatus::Fail, "{report}");
    assert_eq!(status("name-clashes"), CheckStatus::Fail, "{report}");
    assert_eq!(status("tenant-schemas"), CheckStatus::Fail, "{report}");
    assert_eq!(status("orphan-schemas"), CheckStatus::Warn, "{report}");
    assert_eq!(status("migrations"), CheckStatus::Fail, "{report}");
    assert_eq!(status("enum-types"), CheckStatus::Warn, "{report}");
    let text = report.to_string();
    for needle in [
        "REVOKE CREATE ON SCHEMA \"public\" FROM PUBLIC",
        "tenant(s) without a schema: t2\n",
        "schema(s) with no tenant: stray, www2\n",
        "t1 (1 pending)",
        "clashes with the static tenant",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    assert_eq!(report.worst(), CheckStatus::Fail);
}

/// The path check reads the path a connection starts with, whatever the connection it is
/// given has set since (a pool's connection, the CLI's).
#[test]
fn the_default_path_is_read_whatever_the_connection_set() {
    let db = test_database!();
    let mut conn = db.connect();
    for s in ["www", "t1"] {
        migrate(&mut conn, s);
    }
    conn.batch_execute(&format!(
        "alter database {} set search_path = t1, public",
        db.name()
    ))
    .unwrap();
    let mut fresh = PgConnection::establish(db.url()).unwrap();
    fresh.deactivate().unwrap();
    let report = doctor(&mut fresh, &config(), &Fixed(vec!["t1"]), &TENANT).unwrap();
    let check = report.get("default-search-path").unwrap();
    assert_eq!(check.status, CheckStatus::Fail, "{report}");
    assert!(check.summary.contains("(t1, public)"), "{report}");
}

/// `manage doctor` fails a database whose default path puts a tenant first.
#[cfg(feature = "cli")]
#[test]
fn the_cli_doctor_fails_a_tenant_on_the_default_path() {
    use pgschemas_diesel::cli::{self, App, Outcome};

    let db = test_database!();
    let app = App::builder(config(), TENANT).default_models().build();
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
        let text = format!(
            "{}{}",
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap()
        );
        (outcome, text)
    };
    assert_eq!(run(&["migrate"]).0, Outcome::Success);
    let (outcome, text) = run(&["create-tenant", "t1", "--domain", "t1.localhost"]);
    assert_eq!(outcome, Outcome::Success, "{text}");
    let (outcome, text) = run(&["doctor"]);
    assert_eq!(outcome, Outcome::Success, "{text}");
    assert!(text.contains("[pass] default-search-path: "), "{text}");

    let mut conn = db.connect();
    conn.batch_execute(&format!(
        "alter database {} set search_path = t1, public",
        db.name()
    ))
    .unwrap();
    let (outcome, text) = run(&["doctor"]);
    assert_eq!(outcome, Outcome::Failed, "{text}");
    assert!(
        text.contains(
            "[fail] default-search-path: a fresh connection's path (t1, public) names tenant schema(s) t1\n"
        ),
        "{text}"
    );
}

/// Migrates `schemas` with the migrations of [`crate::migrate::odd_migrations`], whose
/// versions hold every character a comma join or XML would mangle.
fn migrate_odd(conn: &mut PgConnection, dir: &std::path::Path, schemas: &[&str]) {
    let odd = diesel_migrations::FileBasedMigrations::from_path(dir).unwrap();
    for s in schemas {
        conn.batch_execute(&format!("create schema {s}")).unwrap();
        pgschemas_diesel::migrate::migrate_schema(
            conn,
            &Config::default(),
            &SchemaName::new(*s).unwrap(),
            &odd,
        )
        .unwrap();
    }
}

#[test]
fn versions_of_any_characters_are_read_exactly() {
    let db = test_database!();
    let mut conn = db.connect();
    let dir = crate::migrate::odd_migrations("doctor-odd");
    migrate_odd(&mut conn, &dir, &["t1", "t2"]);
    let odd = diesel_migrations::FileBasedMigrations::from_path(&dir).unwrap();
    let report = doctor(
        &mut conn,
        &Config::default(),
        &Fixed(vec!["t1", "t2"]),
        &odd,
    )
    .unwrap();
    let check = report.get("migrations").unwrap();
    assert_eq!(check.status, CheckStatus::Pass, "{report}");
    assert_eq!(
        check.summary,
        format!(
            "2 tenant schema(s) at the latest of {} migration(s)",
            crate::migrate::ODD_VERSIONS.len()
        )
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// Ledgers the role cannot read, one of each kind, beside readable ones: the check names
/// each with what is wrong, and still compares the others.
#[test]
fn each_unreadable_ledger_is_named_and_the_others_are_checked() {
    let db = test_database!();
    let mut conn = db.connect();
    let tenants = vec!["t1", "t2", "t3", "t4", "t5", "t6", "t7"];
    for s in &tenants {
        migrate(&mut conn, s);
    }
    let mut roles = crate::isolation::Roles::new(&db);
    let role = roles.create("doctor_reader", "");
    conn.batch_execute(&format!(
        "grant usage on schema {all} to {role};
         grant select on {ledgers} to {role};
         delete from t1.__diesel_schema_migrations where version = '20240101000005';
         alter table t2.__diesel_schema_migrations rename to kept;
         create view t2.__diesel_schema_migrations as select * from t2.kept;
         grant select on t2.__diesel_schema_migrations to {role};
         alter table t3.__diesel_schema_migrations alter column version type bigint using version::bigint;
         alter table t4.__diesel_schema_migrations rename column version to v;
         revoke select on t5.__diesel_schema_migrations from {role};
         alter table t6.__diesel_schema_migrations enable row level security;
         set role {role};",
        all = tenants.join(", "),
        ledgers = tenants
            .iter()
            .map(|s| format!("{s}.__diesel_schema_migrations"))
            .collect::<Vec<_>>()
            .join(", "),
    ))
    .unwrap();
    let report = doctor(&mut conn, &Config::default(), &Fixed(tenants), &TENANT).unwrap();
    let check = report.get("migrations").unwrap();
    assert_eq!(check.status, CheckStatus::Fail, "{report}");
    assert_eq!(
        check.summary,
        "ledgers that cannot be read: \
         t2 (it is a view, not a table of the schema), \
         t3 (its version column is of type bigint, not text or character varying), \
         t4 (it has no version column), \
         t5 (the role lacks SELECT on its version column), \
         t6 (row-level security applies to it for this role and could hide versions); \
         behind: t1 (1 pending)",
        "{report}"
    );
    assert!(
        check
            .fix
            .as_deref()
            .is_some_and(|f| f.contains("a text or varchar version column")
                && f.ends_with("run the migrate command for the tenant schemas")),
        "{report}"
    );
}

/// The ledgers are read one statement per 500 schemas (each statement locks at most one
/// batch of ledgers; a statement per schema would cost a round trip each).
#[test]
fn ledgers_are_read_one_statement_per_batch() {
    use std::sync::{Arc, Mutex};

    let db = test_database!();
    let mut conn = db.connect();
    conn.batch_execute(
        "do $$ begin for i in 0..500 loop execute pg_catalog.format(
           'create schema %1$I; create table %1$I.__diesel_schema_migrations \
            (version varchar(50) primary key, run_on timestamp not null default now())',
           's' || lpad(i::text, 3, '0')); end loop; end $$",
    )
    .unwrap();
    let tenants: Vec<&'static str> = (0..=500).map(|i| &*format!("s{i:03}").leak()).collect();
    let statements = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&statements);
    conn.set_instrumentation(move |event: diesel::connection::InstrumentationEvent<'_>| {
        if let diesel::connection::InstrumentationEvent::StartQuery { query, .. } = event {
            seen.lock().unwrap().push(query.to_string());
        }
    });
    let report = doctor(&mut conn, &Config::default(), &Fixed(tenants), &TENANT).unwrap();
    let check = report.get("migrations").unwrap();
    assert!(
        check
            .summary
            .starts_with("behind: 501, first 5: s000 (5 pending)"),
        "{report}"
    );
    let reads = statements
        .lock()
        .unwrap()
        .iter()
        .filter(|q| q.contains("query_to_xml"))
        .count();
    assert_eq!(reads, 2, "501 schemas, 500 per statement");
}
