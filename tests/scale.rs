//! Every management command at 50,000 tenants, with the server's default settings
//! (`max_locks_per_transaction = 64`: about 6,400 locks for all sessions together). The
//! tenants are built cheaply, with SQL: a tenant row, a domain, and a schema holding only its
//! ledger, which says the tenant migrations are applied. No statement or transaction of a
//! command may need locks in proportion to the number of tenants.

use diesel::connection::SimpleConnection as _;
use pgschemas_diesel::test_database;
use pgschemas_diesel::testing::TestDatabase;

use crate::cli::{TENANT, count, run};

const TENANTS: usize = 50_000;
/// Schemas one statement creates: its transaction holds a lock on each new relation.
const PER_STATEMENT: usize = 500;

/// The tenant migrations' versions, as the ledger of a migrated schema holds them.
fn versions() -> Vec<String> {
    use diesel::migration::MigrationSource;
    let mut list: Vec<String> = MigrationSource::<diesel::pg::Pg>::migrations(&TENANT)
        .unwrap()
        .iter()
        .map(|m| m.name().version().to_string())
        .collect();
    list.sort();
    list
}

/// `TENANTS` tenants `s00000`.. with a domain each, their schemas holding a ledger at the
/// latest tenant migration.
fn build(db: &TestDatabase) {
    run(db, &["migrate", "--schema", "public"]).ok();
    let mut conn = db.connect();
    conn.batch_execute(&format!(
        "insert into public.tenants (schema_name, name) \
         select 's' || lpad(g::text, 5, '0'), 'tenant ' || g from generate_series(0, {last}) g;
         insert into public.domains (tenant_id, domain, is_primary) \
         select id, schema_name || '.example.com', true from public.tenants;",
        last = TENANTS - 1
    ))
    .unwrap();
    let values = versions()
        .iter()
        .map(|v| format!("(''{v}'')"))
        .collect::<Vec<_>>()
        .join(", ");
    for first in (0..TENANTS).step_by(PER_STATEMENT) {
        conn.batch_execute(&format!(
            "do $$ begin for i in {first}..{last} loop execute pg_catalog.format(
               'create schema %1$I; create table %1$I.__diesel_schema_migrations \
                (version varchar(50) not null, run_on timestamp not null default now()); \
                insert into %1$I.__diesel_schema_migrations (version) values {values}',
               's' || lpad(i::text, 5, '0')); end loop; end $$",
            last = first + PER_STATEMENT - 1,
        ))
        .unwrap();
    }
    assert_eq!(
        count(
            &mut conn,
            "select count(*) as n from pg_catalog.pg_namespace where nspname ~ '^s[0-9]{5}$'"
        ),
        TENANTS as i64
    );
}

#[test]
fn every_command_works_at_fifty_thousand_tenants() {
    let db = test_database!();
    let started = std::time::Instant::now();
    build(&db);
    println!(
        "built {TENANTS} tenants in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let step = std::cell::Cell::new(std::time::Instant::now());
    let lap = |what: &str| {
        println!("{what}: {:.1} s", step.get().elapsed().as_secs_f64());
        step.set(std::time::Instant::now());
    };
    let out = run(&db, &["list"]).ok();
    let lines = out.lines();
    let tenants: Vec<&&str> = lines
        .iter()
        .filter(|l| l.starts_with('s') && l.as_bytes().get(1).is_some_and(u8::is_ascii_digit))
        .collect();
    assert_eq!(tenants.len(), TENANTS, "{}", lines.len());
    assert!(
        tenants.iter().all(|l| l.contains(" dynamic ")
            && l.ends_with(&format!("up to date ({})", versions().len()))),
        "{:?}",
        tenants.iter().find(|l| !l.contains("up to date"))
    );

    // Nothing is pending in any tenant: a plan and a run say so, and touch nothing.
    lap("list");
    let out = run(&db, &["migrate", "--plan", "--dynamic"]).ok();
    assert!(!out.stdout.contains("would apply"), "{out}");
    lap("migrate --plan");
    let out = run(&db, &["migrate", "--dynamic"]).ok();
    assert!(
        out.stdout.ends_with(&format!(
            "{TENANTS} ok, 0 failed, 0 skipped, 0 migrations applied\n"
        )),
        "{}",
        &out.stdout[out.stdout.len().saturating_sub(500)..]
    );
    lap("migrate");

    // doctor: every check runs; its lines name a few schemas, not 50,000.
    let out = run(&db, &["doctor"]);
    assert!(
        out.stdout
            .contains(&format!("{TENANTS} tenant schema(s) at the latest")),
        "{out}"
    );
    assert!(out.stdout.lines().all(|l| l.len() < 1_000), "{out}");
    lap("doctor");

    // whowill reads the routes of every selected tenant.
    let out = run(&db, &["whowill", "--dynamic"]).ok();
    assert_eq!(
        out.stdout
            .lines()
            .filter(|l| l.contains(".example.com"))
            .count(),
        TENANTS,
        "{}",
        out.stdout.lines().take(5).collect::<Vec<_>>().join("\n")
    );
    lap("whowill");
}
