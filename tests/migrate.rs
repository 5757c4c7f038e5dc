//! Per-schema migrations: ledger placement (invariant 3), the per-schema advisory lock across
//! processes (invariant 5), failures, plan mode, the multi-schema executor and its order
//! (invariant 7), selection, and 1,000 tenants in one run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use diesel_migrations::{EmbeddedMigrations, FileBasedMigrations, embed_migrations};
use pgschemas_diesel::testing::TestDatabase;
use pgschemas_diesel::{
    Config, Error, SchemaConnection, SchemaName, StaticTenant, TenantPool, catalog::Catalog,
    catalog::DomainRecord, catalog::TenantRecord, migrate::LedgerProblem,
    migrate::MIGRATION_LOCK_CLASS, migrate::MigrationErrorKind, migrate::MigrationSet,
    migrate::Migrator, migrate::Progress, migrate::SchemaKind, migrate::Selection,
    migrate::migrate_schema, migrate::pending_migrations, test_database,
};

const TENANT: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
const RELEASE: EmbeddedMigrations = embed_migrations!("../examples/migrations/release");
const TENANT_VERSIONS: [&str; 5] = [
    "20240101000001",
    "20240101000002",
    "20240101000003",
    "20240101000004",
    "20240101000005",
];
const TENANT_TABLES: [&str; 5] = [
    "audit_log",
    "customers",
    "order_items",
    "orders",
    "products",
];

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn name(s: &str) -> SchemaName {
    SchemaName::new(s).unwrap()
}

/// A catalog over two test tables in the shared schema: `tenants (id, schema_name)` and
/// `domains (tenant_id, domain, folder)`.
pub(crate) struct TableCatalog;

#[derive(QueryableByName)]
struct TenantRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    schema_name: String,
}

#[derive(QueryableByName)]
struct DomainRow {
    #[diesel(sql_type = Text)]
    tenant_id: String,
    #[diesel(sql_type = Text)]
    domain: String,
    #[diesel(sql_type = Nullable<Text>)]
    folder: Option<String>,
}

impl Catalog for TableCatalog {
    fn tenants(&self, conn: &mut PgConnection) -> pgschemas_diesel::Result<Vec<TenantRecord>> {
        let rows: Vec<TenantRow> =
            diesel::sql_query("select id::text as id, schema_name from public.tenants")
                .load(conn)?;
        rows.into_iter()
            .map(|r| {
                Ok(TenantRecord {
                    id: r.id,
                    schema: SchemaName::new(r.schema_name)?,
                    active: true,
                })
            })
            .collect()
    }

    fn domains(&self, conn: &mut PgConnection) -> pgschemas_diesel::Result<Vec<DomainRecord>> {
        let rows: Vec<DomainRow> = diesel::sql_query(
            "select tenant_id::text as tenant_id, domain, folder from public.domains",
        )
        .load(conn)?;
        Ok(rows
            .into_iter()
            .map(|r| DomainRecord {
                tenant_id: r.tenant_id,
                domain: r.domain,
                folder: r.folder,
                is_primary: true,
                redirect_to_primary: false,
            })
            .collect())
    }

    fn watched_tables(&self, _shared: &pgschemas_diesel::SchemaName) -> Vec<(String, String)> {
        vec![("public".into(), "tenants".into())]
    }
}

const CATALOG_TABLES: &str = "create table public.tenants (id serial primary key, schema_name text not null unique);
     create table public.domains (tenant_id int not null references public.tenants, domain text not null, folder text);";

/// Creates the catalog tables and `schemas` as dynamic tenants (rows and empty schemas).
pub(crate) fn tenants(conn: &mut PgConnection, schemas: &[String]) {
    let mut sql = String::from(CATALOG_TABLES);
    for s in schemas {
        sql.push_str(&format!(
            "create schema {s}; insert into public.tenants (schema_name) values ('{s}');"
        ));
    }
    conn.batch_execute(&sql).unwrap();
}

/// A migrator over `TableCatalog` with one worker on a pool of one connection.
fn one_worker(db: &TestDatabase) -> pgschemas_diesel::migrate::MigratorBuilder {
    Migrator::builder(pool(db, Config::default(), 1), Arc::new(TableCatalog)).workers(1)
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:04}")).collect()
}

fn pool(db: &TestDatabase, config: Config, size: u32) -> TenantPool {
    TenantPool::with_builder(
        db.url(),
        config,
        r2d2::Pool::builder()
            .max_size(size)
            .connection_timeout(Duration::from_secs(30)),
    )
    .unwrap()
}

#[derive(QueryableByName)]
struct Rel {
    #[diesel(sql_type = Text)]
    relname: String,
}

/// The tables (`relkind = 'r'`) of a schema, sorted.
fn tables(conn: &mut PgConnection, schema: &str) -> Vec<String> {
    diesel::sql_query(
        "select c.relname::text as relname from pg_class c join pg_namespace n on n.oid = c.relnamespace \
         where n.nspname = $1 and c.relkind = 'r' order by 1",
    )
    .bind::<Text, _>(schema)
    .load::<Rel>(conn)
    .unwrap()
    .into_iter()
    .map(|r| r.relname)
    .collect()
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = Text)]
    version: String,
}

/// The versions in a schema's ledger, sorted; `None` when it has no ledger.
fn ledger(conn: &mut PgConnection, schema: &str) -> Option<Vec<String>> {
    if !tables(conn, schema)
        .iter()
        .any(|t| t == "__diesel_schema_migrations")
    {
        return None;
    }
    Some(
        diesel::sql_query(format!(
            "select version::text as version from \"{schema}\".__diesel_schema_migrations order by 1"
        ))
        .load::<Version>(conn)
        .unwrap()
        .into_iter()
        .map(|v| v.version)
        .collect(),
    )
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Advisory locks of the migration class in this database held (or awaited, when `granted`
/// is false) by any backend.
fn migration_locks(conn: &mut PgConnection, granted: bool) -> i64 {
    diesel::sql_query(
        "select count(*) as n from pg_locks where locktype = 'advisory' and classid = $1::oid and granted = $2 \
         and database = (select oid from pg_database where datname = current_database())",
    )
    .bind::<BigInt, _>(i64::from(MIGRATION_LOCK_CLASS))
    .bind::<Bool, _>(granted)
    .get_result::<Count>(conn)
    .unwrap()
    .n
}

/// Advisory locks held by this connection's backend.
fn my_advisory_locks(conn: &mut PgConnection) -> i64 {
    diesel::sql_query(
        "select count(*) as n from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()",
    )
    .get_result::<Count>(conn)
    .unwrap()
    .n
}

/// Writes a Diesel migrations directory: `(folder name, up.sql)` pairs.
fn migrations_dir(tag: &str, migrations: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "pgschemas-migrate-{tag}-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    for (folder, up) in migrations {
        let d = dir.join(folder);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("up.sql"), up).unwrap();
        std::fs::write(d.join("down.sql"), "select 1;").unwrap();
    }
    dir
}

fn file_migrations(dir: &Path) -> FileBasedMigrations {
    FileBasedMigrations::from_path(dir).unwrap()
}

// ---------------------------------------------------------------------------------------
// One schema: ledger placement (invariant 3)
// ---------------------------------------------------------------------------------------

#[test]
fn ledger_and_tables_land_in_the_schema_only() {
    let db = test_database!();
    let mut conn = db.connect();
    conn.batch_execute("create schema t1; create schema t2")
        .unwrap();
    let config = Config::default();
    let before = conn.search_path().unwrap();

    let applied = migrate_schema(&mut conn, &config, &name("t1"), &TENANT).unwrap();
    assert_eq!(applied, TENANT_VERSIONS);

    let mut expected: Vec<String> = TENANT_TABLES.iter().map(|s| s.to_string()).collect();
    expected.push("__diesel_schema_migrations".into());
    expected.sort();
    assert_eq!(tables(&mut conn, "t1"), expected);
    assert_eq!(ledger(&mut conn, "t1").unwrap(), TENANT_VERSIONS);
    assert!(
        tables(&mut conn, "public").is_empty(),
        "public gained tables"
    );
    assert!(tables(&mut conn, "t2").is_empty());
    // The serial defaults point at the schema's own sequences.
    #[derive(QueryableByName)]
    struct Default {
        #[diesel(sql_type = Text)]
        d: String,
    }
    let d: Default = diesel::sql_query(
        "select column_default::text as d from information_schema.columns \
         where table_schema = 't1' and table_name = 'customers' and column_name = 'id'",
    )
    .get_result(&mut conn)
    .unwrap();
    assert!(d.d.contains("t1.customers_id_seq"), "{}", d.d);

    // The path is back, and no lock is left behind.
    assert_eq!(conn.search_path().unwrap(), before);
    assert_eq!(my_advisory_locks(&mut conn), 0);

    // A second run applies nothing; a later release applies only the new migration.
    assert!(
        migrate_schema(&mut conn, &config, &name("t1"), &TENANT)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        migrate_schema(&mut conn, &config, &name("t1"), &RELEASE).unwrap(),
        ["20240601000006"]
    );

    // With the shared schema holding the same tables and its own ledger, t2 still gets
    // everything of its own.
    migrate_schema(&mut conn, &config, &name("public"), &TENANT).unwrap();
    assert_eq!(
        migrate_schema(&mut conn, &config, &name("t2"), &TENANT).unwrap(),
        TENANT_VERSIONS
    );
    assert_eq!(ledger(&mut conn, "t2").unwrap(), TENANT_VERSIONS);
    assert_eq!(tables(&mut conn, "t2"), expected);
}

#[test]
fn missing_schema_is_an_error_and_public_gains_nothing() {
    let db = test_database!();
    let mut conn = db.connect();
    let config = Config::default();
    let before = conn.search_path().unwrap();

    let err = migrate_schema(&mut conn, &config, &name("nope"), &TENANT).unwrap_err();
    assert!(
        matches!(err.kind(), MigrationErrorKind::SchemaNotFound),
        "{err:?}"
    );
    assert_eq!(err.schema().as_str(), "nope");
    assert!(err.to_string().contains("\"nope\" does not exist"), "{err}");
    assert!(
        tables(&mut conn, "public").is_empty(),
        "public gained tables"
    );
    assert_eq!(conn.search_path().unwrap(), before);
    assert_eq!(my_advisory_locks(&mut conn), 0);

    let err = pending_migrations(&mut conn, &name("nope"), &TENANT).unwrap_err();
    assert!(matches!(err.kind(), MigrationErrorKind::SchemaNotFound));

    // Converts into the crate's error for `?`.
    let err: Error = err.into();
    assert!(matches!(err, Error::Migration(_)));
    assert_eq!(err.schema(), Some("nope"));
}

/// A role without `USAGE` on the tenant schema: PostgreSQL skips the schema in the search
/// path and would create everything in `public`. The run refuses before anything is written.
#[test]
fn schema_the_role_cannot_use_is_refused_and_public_gains_nothing() {
    let db = test_database!();
    let mut conn = db.connect();
    let role = format!(
        "migrate_nousage_{}_{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    conn.batch_execute(&format!(
        "create schema t1; create role {role}; grant create on schema public to {role};"
    ))
    .unwrap();
    // Roles are server-wide: drop it however the test ends.
    struct DropRole(PgConnection, String);
    impl Drop for DropRole {
        fn drop(&mut self) {
            let r = &self.1;
            let _ = self
                .0
                .batch_execute(&format!("drop owned by {r}; drop role {r}"));
        }
    }
    let _role = DropRole(db.connect(), role.clone());
    conn.batch_execute(&format!("set role {role}")).unwrap();

    // The hazard is real: unqualified DDL by this role lands in public.
    assert_eq!(conn.current_schema().unwrap().as_deref(), Some("public"));

    let err = migrate_schema(&mut conn, &Config::default(), &name("t1"), &TENANT).unwrap_err();
    assert!(
        matches!(&err.kind(), MigrationErrorKind::NotCreationSchema { current } if current.as_deref() == Some("public")),
        "{err:?}"
    );
    assert!(err.to_string().contains("USAGE"), "{err}");
    conn.batch_execute("reset role").unwrap();
    assert!(
        tables(&mut conn, "public").is_empty(),
        "public gained tables"
    );
    assert!(tables(&mut conn, "t1").is_empty());
    assert_eq!(my_advisory_locks(&mut conn), 0);
}

#[test]
fn a_migration_that_changes_the_search_path_is_rolled_back() {
    let db = test_database!();
    let mut conn = db.connect();
    conn.batch_execute("create schema t1").unwrap();
    let dir = migrations_dir(
        "setpath",
        &[
            ("2024-01-01-000001_ok", "create table ok_tbl (id int);"),
            (
                "2024-01-01-000002_sneaky",
                "set search_path to public; create table sneaky (id int);",
            ),
        ],
    );
    let before = conn.search_path().unwrap();
    let err = migrate_schema(
        &mut conn,
        &Config::default(),
        &name("t1"),
        &file_migrations(&dir),
    )
    .unwrap_err();
    assert!(
        matches!(err.kind(), MigrationErrorKind::PathChanged),
        "{err:?}"
    );
    assert_eq!(err.migration(), Some("2024-01-01-000002_sneaky"));
    assert_eq!(err.version(), Some("20240101000002"));
    assert!(
        tables(&mut conn, "public").is_empty(),
        "public gained tables"
    );
    assert_eq!(ledger(&mut conn, "t1").unwrap(), ["20240101000001"]);
    assert_eq!(conn.search_path().unwrap(), before);
    std::fs::remove_dir_all(dir).unwrap();
}

// ---------------------------------------------------------------------------------------
// The lock (invariant 5)
// ---------------------------------------------------------------------------------------

#[test]
fn a_run_waits_for_the_schema_lock_held_elsewhere() {
    let db = test_database!();
    let mut holder = db.connect();
    holder.batch_execute("create schema t1").unwrap();
    holder
        .batch_execute(&format!(
            "select pg_advisory_lock({MIGRATION_LOCK_CLASS}, hashtext('t1'))"
        ))
        .unwrap();

    let url = db.url().to_owned();
    let runner = std::thread::spawn(move || {
        let mut conn = PgConnection::establish(&url).unwrap();
        migrate_schema(&mut conn, &Config::default(), &name("t1"), &TENANT)
    });

    // The run blocks on the lock (keyed by the class and the schema), having done nothing.
    let deadline = Instant::now() + Duration::from_secs(60);
    while migration_locks(&mut holder, false) == 0 {
        assert!(
            Instant::now() < deadline,
            "the run never waited for the lock"
        );
        assert!(!runner.is_finished(), "the run did not wait for the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(ledger(&mut holder, "t1").is_none());

    holder
        .batch_execute(&format!(
            "select pg_advisory_unlock({MIGRATION_LOCK_CLASS}, hashtext('t1'))"
        ))
        .unwrap();
    let applied = runner.join().unwrap().unwrap();
    assert_eq!(applied, TENANT_VERSIONS);
    assert_eq!(
        migration_locks(&mut holder, true),
        0,
        "the session lock was not released"
    );
}

#[test]
fn inside_a_transaction_the_lock_and_the_migrations_follow_it() {
    let db = test_database!();
    let mut conn = db.connect();
    let config = Config::default();
    let before = conn.search_path().unwrap();

    // Rolled back: the schema, its tables and its ledger all go; the lock ends with it.
    let result: Result<(), Error> = conn.transaction(|c| {
        c.batch_execute("create schema t1")?;
        let applied = migrate_schema(c, &config, &name("t1"), &TENANT)?;
        assert_eq!(applied, TENANT_VERSIONS);
        // A transaction-level lock, still held until the end of the transaction.
        assert_eq!(my_advisory_locks(c), 1);
        assert_eq!(c.search_path().unwrap(), before);
        Err(Error::Config("roll back".into()))
    });
    assert!(result.is_err());
    assert_eq!(my_advisory_locks(&mut conn), 0);
    assert!(!pgschemas_diesel::lifecycle::schema_exists(&mut conn, &name("t1")).unwrap());
    assert!(tables(&mut conn, "public").is_empty());

    // Committed: one atomic unit.
    conn.transaction(|c| {
        c.batch_execute("create schema t1")?;
        migrate_schema(c, &config, &name("t1"), &TENANT)?;
        Ok::<_, Error>(())
    })
    .unwrap();
    assert_eq!(my_advisory_locks(&mut conn), 0);
    assert_eq!(ledger(&mut conn, "t1").unwrap(), TENANT_VERSIONS);

    // A failing migration inside the transaction rolls back to its savepoint only.
    let dir = migrations_dir(
        "txfail",
        &[(
            "2025-01-01-000001_boom",
            "create table boom (id int); select 1/0;",
        )],
    );
    conn.transaction(|c| {
        let err = migrate_schema(c, &config, &name("t1"), &file_migrations(&dir)).unwrap_err();
        assert!(
            err.report().to_string().contains("division by zero"),
            "{err}"
        );
        c.batch_execute("create table t1.after_failure (id int)")?;
        Ok::<_, Error>(())
    })
    .unwrap();
    assert!(tables(&mut conn, "t1").contains(&"after_failure".to_owned()));
    assert!(!tables(&mut conn, "t1").contains(&"boom".to_owned()));
    std::fs::remove_dir_all(dir).unwrap();
}

/// The environment variable that turns [`child_process_helper`] into a migrating process.
const CHILD_URL: &str = "PGSCHEMAS_MIGRATE_CHILD_URL";
const CHILD_START: &str = "PGSCHEMAS_MIGRATE_CHILD_START_MS";

/// Not a test of its own: when [`two_processes_migrate_the_same_schemas`] runs this test
/// binary again with `PGSCHEMAS_MIGRATE_CHILD_URL` set, this is the child process. It waits
/// for the agreed start time, migrates every tenant with 2 workers and prints what it
/// applied per schema. Without the variable it returns at once.
#[test]
fn child_process_helper() {
    let Ok(url) = std::env::var(CHILD_URL) else {
        return;
    };
    let start: u128 = std::env::var(CHILD_START).unwrap().parse().unwrap();
    let pool = TenantPool::with_builder(url, Config::default(), r2d2::Pool::builder().max_size(2))
        .unwrap();
    let migrator = Migrator::builder(pool, Arc::new(TableCatalog))
        .tenant_migrations(TENANT)
        .workers(2)
        .keep_going(true)
        .build()
        .unwrap();
    while SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        < start
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    let report = migrator.run(&Selection::all()).unwrap();
    for s in &report.schemas {
        println!("applied {} {}", s.schema, s.applied.len());
    }
    assert!(report.is_success(), "{report}");
}

#[test]
fn two_processes_migrate_the_same_schemas() {
    let db = test_database!();
    let mut conn = db.connect();
    let schemas = names("p", 40);
    tenants(&mut conn, &schemas);

    let start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 1500;
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "migrate::child_process_helper",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_URL, db.url())
                .env(CHILD_START, start.to_string())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();

    let mut applied: BTreeMap<String, usize> = BTreeMap::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "child failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut lines = 0;
        // The harness may print "test ... " on the same line as the first report.
        for line in stdout
            .lines()
            .filter_map(|l| l.split_once("applied ").map(|(_, r)| r))
        {
            let (schema, n) = line.split_once(' ').unwrap();
            *applied.entry(schema.to_owned()).or_default() += n.parse::<usize>().unwrap();
            lines += 1;
        }
        assert_eq!(lines, schemas.len(), "the child did not run:\n{stdout}");
    }

    // Every migration ran exactly once per schema, whichever process ran it.
    for s in &schemas {
        assert_eq!(applied[s], 5, "schema {s}");
        assert_eq!(ledger(&mut conn, s).unwrap(), TENANT_VERSIONS, "schema {s}");
    }
    assert!(
        tables(&mut conn, "public")
            .iter()
            .all(|t| t == "tenants" || t == "domains")
    );
    assert_eq!(migration_locks(&mut conn, true), 0);
}

// ---------------------------------------------------------------------------------------
// The executor
// ---------------------------------------------------------------------------------------

/// Migrations whose second one fails in any schema holding a table `boom` already.
fn flaky_migrations(tag: &str) -> PathBuf {
    migrations_dir(
        tag,
        &[
            ("2024-01-01-000001_first", "create table first (id int);"),
            ("2024-01-01-000002_boom", "create table boom (id int);"),
            ("2024-01-01-000003_third", "create table third (id int);"),
        ],
    )
}

#[test]
fn a_failure_stops_the_run_or_not_and_a_rerun_finishes() {
    let db = test_database!();
    let mut conn = db.connect();
    let schemas = names("f", 6);
    tenants(&mut conn, &schemas);
    conn.batch_execute("create table f0002.boom (id int)")
        .unwrap();
    let dir = flaky_migrations("flaky");
    let all = ["20240101000001", "20240101000002", "20240101000003"];

    let migrator = |workers: usize, keep_going: bool| {
        Migrator::builder(pool(&db, Config::default(), 2), Arc::new(TableCatalog))
            .tenant_migrations(file_migrations(&dir))
            .workers(workers)
            .keep_going(keep_going)
            .build()
            .unwrap()
    };

    // Fail-fast, one worker: f0000 and f0001 done, f0002 fails, the rest never start.
    let report = migrator(1, false).run(&Selection::all()).unwrap();
    assert!(!report.is_success());
    let failed: Vec<_> = report.failed().map(|s| s.schema.as_str()).collect();
    assert_eq!(failed, ["f0002"]);
    let skipped: Vec<_> = report.skipped().map(|s| s.schema.as_str()).collect();
    assert_eq!(skipped, ["f0003", "f0004", "f0005"]);
    let err = report.schemas[2].error.as_ref().unwrap();
    assert_eq!(
        err.report().to_string(),
        r#"migration 2024-01-01-000002_boom failed in schema "f0002": relation "boom" already exists"#
    );
    assert_eq!(err.version(), Some("20240101000002"));
    assert!(
        report.to_string().contains("1 failed, 3 skipped"),
        "{report}"
    );
    assert_eq!(ledger(&mut conn, "f0000").unwrap(), all);
    assert_eq!(ledger(&mut conn, "f0001").unwrap(), all);
    assert_eq!(ledger(&mut conn, "f0002").unwrap(), ["20240101000001"]);
    assert!(!tables(&mut conn, "f0002").contains(&"third".to_owned()));
    for s in ["f0003", "f0004", "f0005"] {
        assert!(ledger(&mut conn, s).is_none(), "{s} was touched");
    }

    // Keep-going: every other schema is done; f0002 stays at its last good version.
    let report = migrator(2, true).run(&Selection::all()).unwrap();
    let failed: Vec<_> = report.failed().map(|s| s.schema.as_str()).collect();
    assert_eq!(failed, ["f0002"]);
    assert_eq!(report.skipped().count(), 0);
    for s in ["f0003", "f0004", "f0005"] {
        assert_eq!(ledger(&mut conn, s).unwrap(), all, "{s}");
    }
    assert_eq!(ledger(&mut conn, "f0002").unwrap(), ["20240101000001"]);

    // Fixed, a rerun finishes the job and touches nothing else.
    conn.batch_execute("drop table f0002.boom").unwrap();
    let report = migrator(2, false).run(&Selection::all()).unwrap();
    assert!(report.is_success(), "{report}");
    for s in &report.schemas {
        let expected: &[&str] = if s.schema.as_str() == "f0002" {
            &all[1..]
        } else {
            &[]
        };
        assert_eq!(s.applied, expected, "{}", s.schema);
    }
    for s in &schemas {
        assert_eq!(ledger(&mut conn, s).unwrap(), all, "{s}");
    }
    assert!(
        tables(&mut conn, "public")
            .iter()
            .all(|t| t == "tenants" || t == "domains")
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn fail_fast_with_two_workers_never_leaves_a_schema_half_done() {
    let db = test_database!();
    let mut conn = db.connect();
    let schemas = names("g", 12);
    tenants(&mut conn, &schemas);
    conn.batch_execute("create table g0001.boom (id int)")
        .unwrap();
    let dir = flaky_migrations("flaky2");
    let migrator = Migrator::builder(pool(&db, Config::default(), 2), Arc::new(TableCatalog))
        .tenant_migrations(file_migrations(&dir))
        .workers(2)
        .build()
        .unwrap();
    let report = migrator.run(&Selection::all()).unwrap();
    assert_eq!(report.failed().count(), 1);
    assert!(
        report.skipped().count() >= 1,
        "fail-fast did not stop: {report}"
    );
    for s in &report.schemas {
        let on_disk = ledger(&mut conn, s.schema.as_str());
        if s.skipped {
            assert!(on_disk.is_none(), "{} was skipped but touched", s.schema);
        } else if s.error.is_some() {
            assert_eq!(on_disk.unwrap(), ["20240101000001"]);
        } else {
            assert_eq!(on_disk.unwrap().len(), 3, "{}", s.schema);
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_migration_that_kills_its_connection_fails_only_its_schema() {
    let db = test_database!();
    let mut conn = db.connect();
    let schemas = names("x", 3);
    tenants(&mut conn, &schemas);
    let dir = migrations_dir(
        "kill",
        &[(
            "2024-01-01-000001_kill",
            "create table a (id int);
             do $$ begin if current_schema() = 'x0001' then
               perform pg_terminate_backend(pg_backend_pid()); end if; end $$;",
        )],
    );
    // Outside a transaction, so no failed rollback marks the connection broken: the run
    // itself must notice the dead session.
    std::fs::write(
        dir.join("2024-01-01-000001_kill/metadata.toml"),
        "run_in_transaction = false\n",
    )
    .unwrap();
    let migrator = Migrator::builder(pool(&db, Config::default(), 1), Arc::new(TableCatalog))
        .tenant_migrations(file_migrations(&dir))
        .keep_going(true)
        .build()
        .unwrap();
    let report = migrator.run(&Selection::all()).unwrap();
    let failed: Vec<_> = report.failed().map(|s| s.schema.as_str()).collect();
    assert_eq!(failed, ["x0001"], "{report}");
    assert_eq!(ledger(&mut conn, "x0002").unwrap(), ["20240101000001"]);
    assert!(ledger(&mut conn, "x0001").unwrap().is_empty());
    std::fs::remove_dir_all(dir).unwrap();
}

/// A migration outside a transaction that changes the path cannot be rolled back; the run
/// reports it, and the pool must not hand out that connection as if it had the tenant's path.
#[test]
fn a_path_change_outside_a_transaction_does_not_leak_through_the_pool() {
    let db = test_database!();
    let mut conn = db.connect();
    let schemas = names("y", 2);
    tenants(&mut conn, &schemas);
    let dir = migrations_dir(
        "nontx",
        &[(
            "2024-01-01-000001_setpath",
            "do $$ begin if current_schema() = 'y0000' then
               perform set_config('search_path', 'public', false); end if; end $$;",
        )],
    );
    std::fs::write(
        dir.join("2024-01-01-000001_setpath/metadata.toml"),
        "run_in_transaction = false\n",
    )
    .unwrap();
    let pool = pool(&db, Config::default(), 1);
    let migrator = Migrator::builder(pool.clone(), Arc::new(TableCatalog))
        .tenant_migrations(file_migrations(&dir))
        .keep_going(true)
        .build()
        .unwrap();
    let report = migrator.run(&Selection::of(["y0000"])).unwrap();
    let err = report.failed().next().unwrap().error.as_ref().unwrap();
    assert!(
        matches!(err.kind(), MigrationErrorKind::PathChanged),
        "{err}"
    );

    let mut scope = pool.scope(&"y0000").unwrap();
    assert_eq!(scope.current_schema().unwrap().as_deref(), Some("y0000"));
    drop(scope);
    let report = migrator.run(&Selection::of(["y0001"])).unwrap();
    assert!(report.is_success(), "{report}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn plan_lists_pending_migrations_and_changes_nothing() {
    let db = test_database!();
    let mut conn = db.connect();
    let schemas = names("q", 3);
    tenants(&mut conn, &schemas);
    let config = Config::default();
    migrate_schema(&mut conn, &config, &name("q0001"), &TENANT).unwrap();

    // The single-schema form: no ledger yet means everything is pending, and none is made.
    assert_eq!(
        pending_migrations(&mut conn, &name("q0000"), &TENANT).unwrap(),
        TENANT_VERSIONS
    );
    assert!(ledger(&mut conn, "q0000").is_none());
    assert!(
        pending_migrations(&mut conn, &name("q0001"), &TENANT)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        pending_migrations(&mut conn, &name("q0001"), &RELEASE).unwrap(),
        ["20240601000006"]
    );

    let migrator = Migrator::builder(pool(&db, config, 2), Arc::new(TableCatalog))
        .tenant_migrations(RELEASE)
        .workers(2)
        .build()
        .unwrap();
    let plan = migrator.plan(&Selection::all()).unwrap();
    assert!(plan.plan && plan.is_success(), "{plan}");
    let pending: Vec<(&str, usize)> = plan
        .schemas
        .iter()
        .map(|s| (s.schema.as_str(), s.pending.len()))
        .collect();
    assert_eq!(pending, [("q0000", 6), ("q0001", 1), ("q0002", 6)]);
    assert!(plan.schemas.iter().all(|s| s.applied.is_empty()));
    assert!(ledger(&mut conn, "q0000").is_none());
    assert!(ledger(&mut conn, "q0002").is_none());
    assert_eq!(ledger(&mut conn, "q0001").unwrap(), TENANT_VERSIONS);
    assert!(tables(&mut conn, "q0000").is_empty());

    // A dynamic tenant whose schema is gone is reported, in plan and run alike.
    conn.batch_execute("drop schema q0002 cascade").unwrap();
    let plan = migrator.plan(&Selection::all()).unwrap();
    let failed: Vec<_> = plan.failed().map(|s| s.schema.as_str()).collect();
    assert_eq!(failed, ["q0002"]);
    let report = migrator
        .run(&Selection::all().excluding(["q0000"]))
        .unwrap();
    let err = report.failed().next().unwrap().error.as_ref().unwrap();
    assert!(
        matches!(err.kind(), MigrationErrorKind::SchemaNotFound),
        "{err}"
    );
    assert!(
        tables(&mut conn, "public")
            .iter()
            .all(|t| t == "tenants" || t == "domains")
    );
}

/// A plan applies nothing, so it does not stop at a schema it cannot plan, even when a run
/// would fail fast: every other schema is planned, none is reported skipped.
#[test]
fn a_plan_goes_on_past_a_schema_it_cannot_plan() {
    let db = test_database!();
    let mut conn = db.connect();
    tenants(&mut conn, &names("g", 3));
    conn.batch_execute("drop schema g0000; drop schema g0001")
        .unwrap();
    let migrator = Migrator::builder(pool(&db, Config::default(), 1), Arc::new(TableCatalog))
        .tenant_migrations(TENANT)
        .build()
        .unwrap();
    let plan = migrator.plan(&Selection::all()).unwrap();
    let failed: Vec<&str> = plan.failed().map(|s| s.schema.as_str()).collect();
    assert_eq!(failed, ["g0000", "g0001"], "{plan}");
    assert_eq!(plan.skipped().count(), 0, "{plan}");
    assert_eq!(plan.migration_count(), 5, "{plan}");
    let report = migrator.run(&Selection::all()).unwrap();
    assert_eq!(
        report.skipped().count(),
        2,
        "a run still fails fast: {report}"
    );
}

#[test]
fn shared_schema_first_then_static_reference_and_dynamic_in_order() {
    let db = test_database!();
    let mut conn = db.connect();
    // The shared migrations create the catalog tables: the migrator must migrate the
    // shared schema before it can list the tenants.
    let shared_dir = migrations_dir("shared", &[("2024-01-01-000001_catalog", CATALOG_TABLES)]);
    conn.batch_execute("create schema sample").unwrap();

    let config = Config::builder()
        .static_tenant(StaticTenant::builder("www").domain("localhost"))
        .static_tenant(
            StaticTenant::builder("blog")
                .domain("blog.localhost")
                .migrate(false),
        )
        .static_tenant(StaticTenant::builder("api"))
        .clone_reference("sample")
        .build()
        .unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let migrator = Migrator::builder(pool(&db, config, 1), Arc::new(TableCatalog))
        .shared_migrations(file_migrations(&shared_dir))
        .tenant_migrations(TENANT)
        .on_progress(move |p| {
            let line = match p {
                Progress::Started { target, .. } => format!("start {}", target.schema),
                Progress::Finished {
                    report,
                    done,
                    total,
                    ..
                } => {
                    format!("done {} {done}/{total}", report.schema)
                }
                _ => String::new(),
            };
            sink.lock().unwrap().push(line);
        })
        .build()
        .unwrap();

    // First run: only the shared schema and the static schemas (no tenants yet).
    let report = migrator.run(&Selection::all()).unwrap();
    assert!(report.is_success(), "{report}");
    let order: Vec<(&str, SchemaKind)> = report
        .schemas
        .iter()
        .map(|s| (s.schema.as_str(), s.kind))
        .collect();
    assert_eq!(
        order,
        [
            ("public", SchemaKind::Shared),
            ("www", SchemaKind::Static),
            ("api", SchemaKind::Static),
            ("sample", SchemaKind::Reference)
        ]
    );
    assert_eq!(ledger(&mut conn, "public").unwrap(), ["20240101000001"]);
    // Static schemas were created; `blog` does not migrate and was left alone.
    assert_eq!(ledger(&mut conn, "www").unwrap(), TENANT_VERSIONS);
    assert_eq!(ledger(&mut conn, "api").unwrap(), TENANT_VERSIONS);
    assert_eq!(ledger(&mut conn, "sample").unwrap(), TENANT_VERSIONS);
    assert!(!pgschemas_diesel::lifecycle::schema_exists(&mut conn, &name("blog")).unwrap());

    // Tenants arrive, inserted out of order; they run after the others, sorted by name.
    let mut sql = String::new();
    for s in ["d3", "d1", "d2"] {
        sql.push_str(&format!(
            "create schema {s}; insert into public.tenants (schema_name) values ('{s}');"
        ));
    }
    conn.batch_execute(&sql).unwrap();
    events.lock().unwrap().clear();
    let report = migrator.run(&Selection::all()).unwrap();
    assert!(report.is_success(), "{report}");
    let order: Vec<&str> = report.schemas.iter().map(|s| s.schema.as_str()).collect();
    assert_eq!(order, ["public", "www", "api", "sample", "d1", "d2", "d3"]);
    let applied: Vec<usize> = report.schemas.iter().map(|s| s.applied.len()).collect();
    assert_eq!(applied, [0, 0, 0, 0, 5, 5, 5]);
    let events = events.lock().unwrap().clone();
    assert_eq!(events.first().map(String::as_str), Some("start public"));
    assert_eq!(events[1], "done public 1/7");
    assert_eq!(events.last().map(String::as_str), Some("done d3 7/7"));

    // Selections: a dropped clone reference is skipped, not an error.
    conn.batch_execute("drop schema sample cascade").unwrap();
    let report = migrator
        .run(&Selection {
            include_tenant_like: true,
            ..Selection::default()
        })
        .unwrap();
    let order: Vec<&str> = report.schemas.iter().map(|s| s.schema.as_str()).collect();
    assert_eq!(order, ["d1", "d2", "d3"]);
    let targets = migrator.targets(&Selection::all()).unwrap();
    let blog = targets
        .iter()
        .find(|t| t.schema.as_str() == "blog")
        .unwrap();
    assert_eq!(blog.migrations, MigrationSet::None);
    assert!(matches!(
        migrator.run(&Selection::of(["nope"])),
        Err(Error::UnknownReference { .. })
    ));
    std::fs::remove_dir_all(shared_dir).unwrap();
}

#[test]
fn the_migrator_needs_a_pool_as_large_as_its_workers() {
    let db = test_database!();
    let err = Migrator::builder(pool(&db, Config::default(), 2), Arc::new(TableCatalog))
        .workers(3)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("max_size(3)"), "{err}");
}

/// 1,000 tenant schemas × 5 migrations in one run with 2 workers; every ledger is checked.
#[test]
fn a_thousand_tenants_migrate_in_one_run() {
    let db = test_database!();
    let mut conn = db.connect();
    let schemas = names("k", 1000);
    let started = Instant::now();
    tenants(&mut conn, &schemas);
    eprintln!(
        "1,000 tenants: setup {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let migrator = Migrator::builder(pool(&db, Config::default(), 2), Arc::new(TableCatalog))
        .tenant_migrations(TENANT)
        .workers(2)
        .build()
        .unwrap();

    let started = Instant::now();
    let report = migrator.run(&Selection::all()).unwrap();
    eprintln!(
        "1,000 tenants x 5 migrations, 2 workers: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(report.is_success(), "{report}");
    assert_eq!(report.schemas.len(), 1000);
    assert_eq!(report.migration_count(), 5000);
    let order: Vec<&str> = report.schemas.iter().map(|s| s.schema.as_str()).collect();
    assert_eq!(order, schemas);

    // Every ledger, read 100 schemas per statement (one statement for all would take a
    // lock per ledger in one transaction).
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        s: String,
        #[diesel(sql_type = Text)]
        version: String,
    }
    let mut ledgers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for chunk in schemas.chunks(100) {
        let sql = chunk
            .iter()
            .map(|s| format!("select '{s}' as s, version::text as version from {s}.__diesel_schema_migrations"))
            .collect::<Vec<_>>()
            .join(" union all ");
        for row in diesel::sql_query(sql).load::<Row>(&mut conn).unwrap() {
            ledgers.entry(row.s).or_default().push(row.version);
        }
    }
    assert_eq!(ledgers.len(), 1000);
    for (s, mut versions) in ledgers {
        versions.sort();
        assert_eq!(versions, TENANT_VERSIONS, "schema {s}");
    }
    #[derive(QueryableByName)]
    struct PerSchema {
        #[diesel(sql_type = Text)]
        nspname: String,
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let counts: Vec<PerSchema> = diesel::sql_query(
        "select n.nspname::text as nspname, count(*) as n from pg_class c \
         join pg_namespace n on n.oid = c.relnamespace \
         where c.relkind = 'r' and n.nspname like 'k%' group by 1 order by 1",
    )
    .load(&mut conn)
    .unwrap();
    assert_eq!(counts.len(), 1000);
    assert!(
        counts.iter().all(|c| c.n == 6),
        "a schema has the wrong tables"
    );
    let with_tables: BTreeSet<&str> = counts.iter().map(|c| c.nspname.as_str()).collect();
    assert!(schemas.iter().all(|s| with_tables.contains(s.as_str())));
    eprintln!(
        "1,000 tenants: checked at {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        tables(&mut conn, "public")
            .iter()
            .all(|t| t == "tenants" || t == "domains")
    );
}

// ---------------------------------------------------------------------------------------
// Reading ledgers: exact versions, relations that are not tables, ledgers that cannot be read
// ---------------------------------------------------------------------------------------

/// Versions that Diesel takes from folder names (the name up to its first `_`, without `-`):
/// the empty string, and every character a comma join, XML or SQL quoting could mangle.
pub(crate) const ODD_VERSIONS: [&str; 9] = [
    "",
    "1,2",
    "a&b",
    "<c>",
    "q'\"\\",
    "é€😀",
    "tab\tcr\r",
    "x&amp;",
    "]]>",
];

/// A migrations directory with one empty migration per version of [`ODD_VERSIONS`].
pub(crate) fn odd_migrations(tag: &str) -> PathBuf {
    let folders: Vec<(String, &str)> = ODD_VERSIONS
        .iter()
        .map(|v| (format!("{v}_odd"), "select 1;"))
        .collect();
    let folders: Vec<(&str, &str)> = folders.iter().map(|(f, up)| (f.as_str(), *up)).collect();
    migrations_dir(tag, &folders)
}

fn odd_set() -> BTreeSet<String> {
    ODD_VERSIONS.iter().map(|v| (*v).to_owned()).collect()
}

/// Versions are arbitrary strings: the batched reads of a plan (and of `list` and `doctor`)
/// see exactly what a run wrote, whatever their characters.
#[test]
fn versions_of_any_characters_are_read_exactly() {
    let db = test_database!();
    let mut conn = db.connect();
    tenants(&mut conn, &names("o", 2));
    let dir = odd_migrations("odd");
    let odd = file_migrations(&dir);
    let applied = migrate_schema(&mut conn, &Config::default(), &name("o0000"), &odd).unwrap();
    assert_eq!(applied.into_iter().collect::<BTreeSet<_>>(), odd_set());
    let stored: BTreeSet<String> = ledger(&mut conn, "o0000").unwrap().into_iter().collect();
    assert_eq!(stored, odd_set());
    assert_eq!(
        pending_migrations(&mut conn, &name("o0000"), &odd).unwrap(),
        Vec::<String>::new()
    );

    let migrator = Migrator::builder(pool(&db, Config::default(), 2), Arc::new(TableCatalog))
        .tenant_migrations(file_migrations(&dir))
        .workers(2)
        .build()
        .unwrap();
    let pending = |migrator: &Migrator| -> Vec<(String, BTreeSet<String>)> {
        let plan = migrator.plan(&Selection::all()).unwrap();
        assert!(plan.is_success(), "{plan}");
        plan.schemas
            .iter()
            .map(|s| (s.schema.to_string(), s.pending.iter().cloned().collect()))
            .collect()
    };
    assert_eq!(
        pending(&migrator),
        [
            ("o0000".to_owned(), BTreeSet::new()),
            ("o0001".to_owned(), odd_set())
        ]
    );
    let report = migrator.run(&Selection::all()).unwrap();
    assert!(report.is_success(), "{report}");
    assert_eq!(report.migration_count(), ODD_VERSIONS.len());
    assert_eq!(
        pending(&migrator),
        [
            ("o0000".to_owned(), BTreeSet::new()),
            ("o0001".to_owned(), BTreeSet::new())
        ]
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// A `__diesel_schema_migrations` that is a view (here of a table in `public`), a foreign
/// table or a materialized view is not the schema's ledger: the single-schema calls, the
/// plan and the run refuse that schema alike, naming it, and write nothing anywhere; the
/// other schemas go on.
#[test]
fn a_ledger_that_is_not_a_table_is_refused_by_plan_and_run_alike() {
    let db = test_database!();
    let mut conn = db.connect();
    let schemas = names("v", 4);
    tenants(&mut conn, &schemas);
    conn.batch_execute(
        "create table public.elsewhere (version varchar(50) primary key, run_on timestamp not null default now());
         create view v0000.__diesel_schema_migrations as select * from public.elsewhere;
         create foreign data wrapper ledger_fdw;
         create server ledger_server foreign data wrapper ledger_fdw;
         create foreign table v0002.__diesel_schema_migrations (version varchar(50)) server ledger_server;
         create materialized view v0003.__diesel_schema_migrations as select '20240101000001'::text as version;",
    )
    .unwrap();
    let refused = [("v0000", 'v'), ("v0002", 'f'), ("v0003", 'm')];
    let kind_of = |e: &pgschemas_diesel::migrate::MigrationError| match e.kind() {
        MigrationErrorKind::Ledger(LedgerProblem::NotATable { relkind }) => Some(*relkind),
        _ => None,
    };

    for (schema, relkind) in refused {
        let err = pending_migrations(&mut conn, &name(schema), &TENANT).unwrap_err();
        assert_eq!(kind_of(&err), Some(relkind), "{err}");
        let err =
            migrate_schema(&mut conn, &Config::default(), &name(schema), &TENANT).unwrap_err();
        assert_eq!(kind_of(&err), Some(relkind), "{err}");
        assert_eq!(err.schema().as_str(), schema);
        assert_eq!(my_advisory_locks(&mut conn), 0);
    }
    let err = pending_migrations(&mut conn, &name("v0000"), &TENANT).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"cannot read the ledger of schema "v0000": it is a view, not a table of the schema; nothing was migrated"#
    );

    let migrator = Migrator::builder(pool(&db, Config::default(), 2), Arc::new(TableCatalog))
        .tenant_migrations(TENANT)
        .workers(2)
        .keep_going(true)
        .build()
        .unwrap();
    let check = |report: &pgschemas_diesel::migrate::MigrationReport| {
        let failed: Vec<(&str, Option<char>)> = report
            .failed()
            .map(|s| (s.schema.as_str(), s.error.as_ref().and_then(kind_of)))
            .collect();
        let want: Vec<(&str, Option<char>)> = refused.iter().map(|(s, k)| (*s, Some(*k))).collect();
        assert_eq!(failed, want, "{report}");
    };
    let plan = migrator.plan(&Selection::all()).unwrap();
    check(&plan);
    assert_eq!(plan.schemas[1].pending, TENANT_VERSIONS);
    let report = migrator.run(&Selection::all()).unwrap();
    check(&report);
    assert_eq!(report.schemas[1].applied, TENANT_VERSIONS);
    for (schema, _) in refused {
        assert!(
            tables(&mut conn, schema).is_empty(),
            "{schema} gained tables"
        );
    }
    let rows = diesel::sql_query("select count(*) as n from public.elsewhere")
        .get_result::<Count>(&mut conn)
        .unwrap()
        .n;
    assert_eq!(rows, 0, "the view's table gained ledger rows");
    assert_eq!(
        tables(&mut conn, "public"),
        ["domains", "elsewhere", "tenants"]
    );
}

/// Ledgers the login role cannot read, one of each kind, among readable ones in one batch:
/// each is its schema's error (named, with what is wrong, decided from the catalog), the
/// others are planned and migrated, and nothing is applied to a schema whose ledger could
/// not be read.
#[test]
fn one_unreadable_ledger_fails_only_its_schema() {
    let db = test_database!();
    let mut conn = db.connect();
    let schemas = names("u", 7);
    tenants(&mut conn, &schemas);
    for s in ["u0000", "u0001", "u0002", "u0003", "u0004"] {
        migrate_schema(&mut conn, &Config::default(), &name(s), &TENANT).unwrap();
    }
    let mut roles = crate::isolation::Roles::new(&db);
    let login = roles.create("ledger_reader", "login");
    conn.batch_execute(&format!(
        "grant select on public.tenants, public.domains to {login};
         grant usage, create on schema {all} to {login};
         grant select, insert on {ledgers} to {login};
         revoke select on u0001.__diesel_schema_migrations from {login};
         alter table u0002.__diesel_schema_migrations enable row level security;
         alter table u0003.__diesel_schema_migrations rename column version to v;
         alter table u0004.__diesel_schema_migrations alter column version type bytea using version::bytea;
         create table u0005.__diesel_schema_migrations (version int);
         grant select on u0005.__diesel_schema_migrations to {login};",
        all = schemas.join(", "),
        ledgers = ["u0000", "u0001", "u0002", "u0003", "u0004"]
            .map(|s| format!("{s}.__diesel_schema_migrations"))
            .join(", "),
    ))
    .unwrap();
    let want = [
        ("u0001", LedgerProblem::NoSelect),
        ("u0002", LedgerProblem::RowSecurity),
        ("u0003", LedgerProblem::NoVersionColumn),
        (
            "u0004",
            LedgerProblem::VersionType {
                found: "bytea".to_owned(),
            },
        ),
        (
            "u0005",
            LedgerProblem::VersionType {
                found: "integer".to_owned(),
            },
        ),
    ];
    let tables_before: Vec<Vec<String>> = schemas.iter().map(|s| tables(&mut conn, s)).collect();

    let pool = TenantPool::with_builder(
        crate::isolation::url_as(db.url(), &login),
        Config::default(),
        r2d2::Pool::builder()
            .max_size(2)
            .connection_timeout(Duration::from_secs(30)),
    )
    .unwrap();
    let migrator = Migrator::builder(pool, Arc::new(TableCatalog))
        .tenant_migrations(TENANT)
        .workers(2)
        .keep_going(true)
        .build()
        .unwrap();
    let problems =
        |report: &pgschemas_diesel::migrate::MigrationReport| -> Vec<(String, LedgerProblem)> {
            report
                .failed()
                .map(|s| match s.error.as_ref().map(|e| e.kind()) {
                    Some(MigrationErrorKind::Ledger(p)) => (s.schema.to_string(), p.clone()),
                    other => panic!("{}: {other:?}", s.schema),
                })
                .collect()
        };
    let want: Vec<(String, LedgerProblem)> = want
        .iter()
        .map(|(s, p)| ((*s).to_owned(), p.clone()))
        .collect();

    let plan = migrator.plan(&Selection::all()).unwrap();
    assert_eq!(problems(&plan), want, "{plan}");
    let pending: Vec<(&str, usize)> = plan
        .schemas
        .iter()
        .filter(|s| s.error.is_none())
        .map(|s| (s.schema.as_str(), s.pending.len()))
        .collect();
    assert_eq!(pending, [("u0000", 0), ("u0006", 5)], "{plan}");
    let text = plan
        .failed()
        .nth(2)
        .unwrap()
        .error
        .as_ref()
        .unwrap()
        .to_string();
    assert_eq!(
        text,
        r#"cannot read the ledger of schema "u0003": it has no version column; nothing was migrated"#
    );

    let report = migrator.run(&Selection::all()).unwrap();
    assert_eq!(problems(&report), want, "{report}");
    assert_eq!(report.migration_count(), 5, "{report}");
    assert_eq!(ledger(&mut conn, "u0006").unwrap(), TENANT_VERSIONS);
    for (i, s) in schemas.iter().enumerate().take(6) {
        assert_eq!(tables(&mut conn, s), tables_before[i], "{s} changed");
    }
    assert_eq!(migration_locks(&mut conn, true), 0);
}

// ---------------------------------------------------------------------------------------
// Selection (pure; django-pgschemas' whowill / tenant_related tables)
// ---------------------------------------------------------------------------------------

/// django-pgschemas' sandbox: `www` (localhost, fallback tenants.localhost), `blog`
/// (blog.localhost), clone reference `sample`, and tenant1-3 routed by subdomain and by
/// folder on everyone.localhost.
fn sandbox() -> (Config, Vec<TenantRecord>, Vec<DomainRecord>) {
    let config = Config::builder()
        .static_tenant(
            StaticTenant::builder("www")
                .domain("localhost")
                .fallback_domain("tenants.localhost")
                .header("main"),
        )
        .static_tenant(StaticTenant::builder("blog").domain("blog.localhost"))
        .clone_reference("sample")
        .build()
        .unwrap();
    let mut tenants = Vec::new();
    let mut domains = Vec::new();
    for i in [3, 1, 2] {
        tenants.push(TenantRecord {
            id: i.to_string(),
            schema: name(&format!("tenant{i}")),
            active: true,
        });
        domains.push(DomainRecord {
            tenant_id: i.to_string(),
            domain: format!("tenant{i}.localhost"),
            folder: None,
            is_primary: true,
            redirect_to_primary: false,
        });
        domains.push(DomainRecord {
            tenant_id: i.to_string(),
            domain: "everyone.localhost".into(),
            folder: Some(format!("tenant{i}")),
            is_primary: false,
            redirect_to_primary: false,
        });
    }
    (config, tenants, domains)
}

fn resolve(selection: &Selection) -> pgschemas_diesel::Result<Vec<String>> {
    let (config, tenants, domains) = sandbox();
    Ok(selection
        .resolve(&config, &tenants, &domains)?
        .into_iter()
        .map(|t| t.schema.to_string())
        .collect())
}

fn sel(all: bool, stat: bool, dynamic: bool, tenant_like: bool) -> Selection {
    Selection {
        include_all: all,
        include_static: stat,
        include_dynamic: dynamic,
        include_tenant_like: tenant_like,
        ..Selection::default()
    }
}

#[test]
fn selection_wildcards() {
    let all = [
        "public", "www", "blog", "sample", "tenant1", "tenant2", "tenant3",
    ];
    assert_eq!(resolve(&sel(true, false, false, false)).unwrap(), all);
    assert_eq!(
        resolve(&Selection::default()).unwrap(),
        all,
        "empty selects all"
    );
    assert_eq!(resolve(&sel(true, true, true, true)).unwrap(), all);
    assert_eq!(
        resolve(&sel(false, true, false, false)).unwrap(),
        ["public", "www", "blog", "sample"]
    );
    assert_eq!(
        resolve(&sel(false, false, true, false)).unwrap(),
        ["tenant1", "tenant2", "tenant3"]
    );
    assert_eq!(
        resolve(&sel(false, false, false, true)).unwrap(),
        ["sample", "tenant1", "tenant2", "tenant3"]
    );
}

#[test]
fn selection_wildcards_with_exclusions() {
    let cases: &[(Selection, &[&str])] = &[
        (
            sel(true, false, false, false).excluding(["blog"]),
            &["public", "www", "sample", "tenant1", "tenant2", "tenant3"],
        ),
        (
            sel(true, false, false, false).excluding(["sample", "tenant1"]),
            &["public", "www", "blog", "tenant2", "tenant3"],
        ),
        (
            sel(false, true, false, false).excluding(["public"]),
            &["www", "blog", "sample"],
        ),
        (
            sel(false, true, false, false).excluding(["www"]),
            &["public", "blog", "sample"],
        ),
        // Excluding public from the dynamic schemas is a no-op.
        (
            sel(false, false, true, false).excluding(["public"]),
            &["tenant1", "tenant2", "tenant3"],
        ),
        (
            sel(false, false, false, true).excluding(["sample"]),
            &["tenant1", "tenant2", "tenant3"],
        ),
        (
            sel(false, false, true, false).excluding(["tenant1"]),
            &["tenant2", "tenant3"],
        ),
        // By route and by domain.
        (
            sel(false, false, true, false).excluding(["everyone.localhost/tenant1"]),
            &["tenant2", "tenant3"],
        ),
        (
            sel(false, false, true, false).excluding(["tenant2.localhost"]),
            &["tenant1", "tenant3"],
        ),
        (
            Selection::default().excluding(["tenant3"]),
            &["public", "www", "blog", "sample", "tenant1", "tenant2"],
        ),
        // Exclusion wins over inclusion.
        (
            Selection::of(["www", "blog"]).excluding(["localhost"]),
            &["blog"],
        ),
    ];
    for (selection, expected) in cases {
        assert_eq!(resolve(selection).unwrap(), *expected, "{selection:?}");
    }
}

#[test]
fn selection_references() {
    let cases: &[(&[&str], &[&str])] = &[
        (&["www", "blog", "tenant1"], &["www", "blog", "tenant1"]),
        (&["public", "sample"], &["public", "sample"]),
        // Given in any order, run in the stable order.
        (
            &["tenant3", "tenant1", "blog", "public"],
            &["public", "blog", "tenant1", "tenant3"],
        ),
        (&["localhost"], &["www"]),
        (&["blog.localhost"], &["blog"]),
        (&["blog.local"], &["blog"]),
        (&["tenant1.localhost"], &["tenant1"]),
        (&["tenant2.local"], &["tenant2"]),
        (&["everyone.localhost/tenant3"], &["tenant3"]),
        (&["Tenant1.LOCALHOST"], &["tenant1"]),
        (&["tenant1", "tenant1.localhost"], &["tenant1"]),
    ];
    for (refs, expected) in cases {
        assert_eq!(
            resolve(&Selection::of(refs.iter().copied())).unwrap(),
            *expected,
            "{refs:?}"
        );
    }
}

#[test]
fn selection_errors_name_the_reference() {
    let err = resolve(&Selection::of(["unknown"])).unwrap_err();
    assert!(
        matches!(&err, Error::UnknownReference { reference, excluded: false } if reference == "unknown")
    );
    assert!(
        err.to_string()
            .starts_with("no schema found for \"unknown\";"),
        "{err}"
    );

    let err = resolve(&Selection::all().excluding(["unknown"])).unwrap_err();
    assert!(matches!(
        &err,
        Error::UnknownReference { excluded: true, .. }
    ));
    assert!(err.to_string().contains("\"unknown\" (excluded)"), "{err}");

    // "tenant" starts three domains; "everyone.localhost" routes three tenants.
    for reference in ["tenant", "everyone.localhost", "everyone.localhost/tenant"] {
        let err = resolve(&Selection::of([reference])).unwrap_err();
        match &err {
            Error::AmbiguousReference {
                reference: r,
                excluded: false,
                matches,
            } => {
                assert_eq!(r, reference);
                assert_eq!(matches, &["tenant1", "tenant2", "tenant3"]);
            }
            other => panic!("{reference}: {other:?}"),
        }
        assert!(
            err.to_string().contains("more than one schema found"),
            "{err}"
        );
    }
    let err = resolve(&Selection::all().excluding(["tenant"])).unwrap_err();
    assert!(matches!(
        err,
        Error::AmbiguousReference { excluded: true, .. }
    ));
    assert!(err.to_string().contains("(excluded)"));

    // Fallback domains and header aliases are routing, not references.
    assert!(resolve(&Selection::of(["tenants.localhost"])).is_err());
    assert!(resolve(&Selection::of(["main"])).is_err());
}

#[test]
fn selection_prefers_an_exact_route_to_a_prefix() {
    let (config, mut tenants, mut domains) = sandbox();
    tenants.push(TenantRecord {
        id: "10".into(),
        schema: name("tenant10"),
        active: true,
    });
    domains.push(DomainRecord {
        tenant_id: "10".into(),
        domain: "everyone.localhost".into(),
        folder: Some("tenant10".into()),
        is_primary: false,
        redirect_to_primary: false,
    });
    domains.push(DomainRecord {
        tenant_id: "10".into(),
        domain: "tenant1.localhost.example".into(),
        folder: None,
        is_primary: true,
        redirect_to_primary: false,
    });
    let resolve = |r: &str| -> Vec<String> {
        Selection::of([r])
            .resolve(&config, &tenants, &domains)
            .unwrap()
            .into_iter()
            .map(|t| t.schema.to_string())
            .collect()
    };
    assert_eq!(resolve("everyone.localhost/tenant1"), ["tenant1"]);
    assert_eq!(resolve("everyone.localhost/tenant10"), ["tenant10"]);
    assert_eq!(resolve("tenant1.localhost"), ["tenant1"]);
    assert_eq!(resolve("tenant1.localhost.ex"), ["tenant10"]);
}

#[test]
fn selection_targets_carry_kind_and_migration_set() {
    let config = Config::builder()
        .static_tenant(StaticTenant::builder("www"))
        .static_tenant(StaticTenant::builder("blog").migrate(false))
        .clone_reference("sample")
        .build()
        .unwrap();
    let tenants = [TenantRecord {
        id: "1".into(),
        schema: name("t1"),
        active: false,
    }];
    let targets = Selection::all().resolve(&config, &tenants, &[]).unwrap();
    let got: Vec<(&str, SchemaKind, MigrationSet)> = targets
        .iter()
        .map(|t| (t.schema.as_str(), t.kind, t.migrations))
        .collect();
    assert_eq!(
        got,
        [
            ("public", SchemaKind::Shared, MigrationSet::Shared),
            ("www", SchemaKind::Static, MigrationSet::Tenant),
            ("blog", SchemaKind::Static, MigrationSet::None),
            ("sample", SchemaKind::Reference, MigrationSet::Tenant),
            ("t1", SchemaKind::Dynamic, MigrationSet::Tenant),
        ]
    );
    // A custom shared schema is selected by its name.
    let config = Config::builder().shared_schema("shared").build().unwrap();
    let targets = Selection::of(["shared"])
        .resolve(&config, &[], &[])
        .unwrap();
    assert_eq!(targets[0].kind, SchemaKind::Shared);
    assert!(
        Selection::of(["public"])
            .resolve(&config, &[], &[])
            .is_err()
    );
}

/// A run reads each ledger twice: in the batched read before it opens any schema, and again
/// under the schema's lock (a cheaper statement when the batched read found a readable
/// table). A ledger replaced, retyped or dropped between the two reads is refused under the
/// lock: nothing is applied to its schema, nothing is written elsewhere, the others migrate.
#[test]
fn a_ledger_changed_after_the_batched_read_is_refused_under_the_lock() {
    let db = test_database!();
    let mut conn = db.connect();
    let schemas = names("w", 5);
    tenants(&mut conn, &schemas);
    for s in &schemas {
        migrate_schema(&mut conn, &Config::default(), &name(s), &TENANT).unwrap();
    }
    conn.batch_execute(
        "create table public.elsewhere (version varchar(50) primary key, run_on timestamp not null default now());
         insert into public.elsewhere (version) select version from w0001.__diesel_schema_migrations;",
    )
    .unwrap();
    let url = db.url().to_owned();
    let migrator = one_worker(&db)
        .tenant_migrations(RELEASE)
        .keep_going(true)
        .on_progress(move |p| {
            let Progress::Started { target, .. } = p else {
                return;
            };
            let change = match target.schema.as_str() {
                "w0001" => {
                    "drop table w0001.__diesel_schema_migrations; \
                     create view w0001.__diesel_schema_migrations as select * from public.elsewhere"
                }
                "w0002" => "drop table w0002.__diesel_schema_migrations",
                "w0003" => {
                    "alter table w0003.__diesel_schema_migrations \
                     alter column version type bigint using version::bigint"
                }
                "w0004" => {
                    // Another process applies the pending migration first.
                    let mut other = PgConnection::establish(&url).unwrap();
                    migrate_schema(&mut other, &Config::default(), &name("w0004"), &RELEASE)
                        .unwrap();
                    return;
                }
                _ => return,
            };
            let mut other = PgConnection::establish(&url).unwrap();
            other.batch_execute(change).unwrap();
        })
        .build()
        .unwrap();
    let report = migrator.run(&Selection::all()).unwrap();
    let by_schema: BTreeMap<&str, _> = report
        .schemas
        .iter()
        .map(|s| (s.schema.as_str(), s))
        .collect();
    assert_eq!(by_schema["w0000"].applied, ["20240601000006"], "{report}");
    // Applied once, by the other process; this run found it done under the lock.
    assert!(by_schema["w0004"].error.is_none(), "{report}");
    assert!(by_schema["w0004"].applied.is_empty(), "{report}");
    assert_eq!(ledger(&mut conn, "w0004").unwrap().len(), 6);
    let kind = |s: &str| by_schema[s].error.as_ref().map(|e| e.kind());
    assert!(
        matches!(
            kind("w0001"),
            Some(MigrationErrorKind::Ledger(LedgerProblem::NotATable {
                relkind: 'v'
            }))
        ),
        "{report}"
    );
    assert!(by_schema["w0002"].error.is_some(), "{report}");
    assert!(
        matches!(
            kind("w0003"),
            Some(MigrationErrorKind::Ledger(
                LedgerProblem::VersionType { .. }
            ))
        ),
        "{report}"
    );
    for s in ["w0001", "w0002", "w0003"] {
        assert!(by_schema[s].applied.is_empty(), "{report}");
        assert_eq!(by_schema[s].error.as_ref().unwrap().schema().as_str(), s);
        let phone: Vec<Rel> = diesel::sql_query(
            "select attname::text as relname from pg_catalog.pg_attribute \
             where attrelid = pg_catalog.to_regclass($1) and attname = 'phone'",
        )
        .bind::<Text, _>(format!("{s}.customers"))
        .load(&mut conn)
        .unwrap();
        assert!(phone.is_empty(), "{s} was migrated: {report}");
    }
    let elsewhere: i64 = diesel::select(diesel::dsl::sql::<BigInt>(
        "(select count(*) from public.elsewhere)",
    ))
    .get_result(&mut conn)
    .unwrap();
    assert_eq!(elsewhere, 5, "nothing written through the view");
    assert_eq!(my_advisory_locks(&mut conn), 0);
}

/// With `default_transaction_isolation = 'repeatable read'` (a database or role setting), a
/// run that waits for the lock while another process migrates the same schema reads the
/// ledger as it is once the lock is granted, not as it was when the wait began: it applies
/// nothing a second time and reports no error.
#[test]
fn under_repeatable_read_a_run_that_waited_for_the_lock_reads_the_ledger_after_it() {
    let db = test_database!();
    let mut conn = db.connect();
    conn.batch_execute(
        "do $$ begin execute format('alter database %I set default_transaction_isolation = %L', \
         current_database(), 'repeatable read'); end $$",
    )
    .unwrap();
    let schemas = names("r", 1);
    tenants(&mut conn, &schemas);
    migrate_schema(&mut conn, &Config::default(), &name("r0000"), &TENANT).unwrap();

    let url = db.url().to_owned();
    let other = Arc::new(Mutex::new(None));
    let other_in_hook = Arc::clone(&other);
    let migrator = one_worker(&db)
        .tenant_migrations(RELEASE)
        .on_progress(move |p| {
            let Progress::Started { target, .. } = p else {
                return;
            };
            if target.schema.as_str() != "r0000" {
                return;
            }
            // Another process holds the schema's lock; once the run waits for it, that
            // process migrates the schema itself and lets go.
            let mut holder = PgConnection::establish(&url).unwrap();
            holder
                .batch_execute(&format!(
                    "select pg_advisory_lock({MIGRATION_LOCK_CLASS}, hashtext('r0000'))"
                ))
                .unwrap();
            let mut watcher = PgConnection::establish(&url).unwrap();
            *other_in_hook.lock().unwrap() = Some(std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(60);
                while migration_locks(&mut watcher, false) == 0 {
                    assert!(Instant::now() < deadline, "the run never waited");
                    std::thread::sleep(Duration::from_millis(20));
                }
                let applied =
                    migrate_schema(&mut holder, &Config::default(), &name("r0000"), &RELEASE)
                        .unwrap();
                holder
                    .batch_execute(&format!(
                        "select pg_advisory_unlock({MIGRATION_LOCK_CLASS}, hashtext('r0000'))"
                    ))
                    .unwrap();
                applied
            }));
        })
        .build()
        .unwrap();
    let report = migrator.run(&Selection::all()).unwrap();
    let by_other = other.lock().unwrap().take().unwrap().join().unwrap();
    assert_eq!(by_other, ["20240601000006"]);
    let r = report
        .schemas
        .iter()
        .find(|s| s.schema.as_str() == "r0000")
        .unwrap();
    assert!(r.error.is_none(), "{report}");
    assert!(r.applied.is_empty(), "applied twice: {report}");
    let mut versions: Vec<String> = TENANT_VERSIONS.iter().map(|v| v.to_string()).collect();
    versions.push("20240601000006".into());
    assert_eq!(ledger(&mut conn, "r0000").unwrap(), versions);
    assert_eq!(migration_locks(&mut conn, true), 0);
}

/// The tenant migrations and one more, `(folder, up.sql, run_in_transaction)` each.
fn tenant_and(tag: &str, more: &[(&str, &str, bool)]) -> PathBuf {
    let tenant = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/migrations/tenant");
    let mut all: Vec<(String, String)> = std::fs::read_dir(&tenant)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let up = std::fs::read_to_string(e.path().join("up.sql")).unwrap();
            (e.file_name().to_string_lossy().into_owned(), up)
        })
        .collect();
    all.extend(
        more.iter()
            .map(|(f, up, _)| (f.to_string(), up.to_string())),
    );
    let pairs: Vec<(&str, &str)> = all.iter().map(|(f, u)| (f.as_str(), u.as_str())).collect();
    let dir = migrations_dir(tag, &pairs);
    for (folder, _, in_transaction) in more {
        if !in_transaction {
            std::fs::write(
                dir.join(folder).join("metadata.toml"),
                "run_in_transaction = false\n",
            )
            .unwrap();
        }
    }
    dir
}

/// A schema whose ledger the batched read found: a first pending migration that cannot run
/// in a transaction (`CREATE INDEX CONCURRENTLY`) runs outside one, and the next after it;
/// a later failure leaves the earlier ones applied and no lock held.
#[test]
fn after_the_batched_read_a_first_migration_outside_a_transaction_and_more_run() {
    let db = test_database!();
    let mut conn = db.connect();
    let schemas = names("n", 2);
    tenants(&mut conn, &schemas);
    for s in &schemas {
        migrate_schema(&mut conn, &Config::default(), &name(s), &TENANT).unwrap();
    }
    conn.batch_execute("create table n0001.boom (id int)")
        .unwrap();
    let dir = tenant_and(
        "notx",
        &[
            (
                "2024-06-01-000006_concurrently",
                "create index concurrently customers_name on customers (name);",
                false,
            ),
            (
                "2024-06-01-000007_phone",
                "alter table customers add column phone text;",
                true,
            ),
            (
                "2024-06-01-000008_boom",
                "create table boom (id int);",
                true,
            ),
        ],
    );
    let migrator = one_worker(&db)
        .tenant_migrations(file_migrations(&dir))
        .keep_going(true)
        .build()
        .unwrap();
    let report = migrator.run(&Selection::all()).unwrap();
    let mut applied: Vec<String> = TENANT_VERSIONS.iter().map(|v| v.to_string()).collect();
    applied.extend(["20240601000006".to_owned(), "20240601000007".to_owned()]);
    let n0 = &report.schemas[0];
    let n1 = &report.schemas[1];
    assert!(n0.error.is_none(), "{report}");
    assert_eq!(
        n0.applied,
        ["20240601000006", "20240601000007", "20240601000008"],
        "{report}"
    );
    assert_eq!(
        n1.error.as_ref().unwrap().version(),
        Some("20240601000008"),
        "{report}"
    );
    assert_eq!(ledger(&mut conn, "n0001").unwrap(), applied);
    assert_eq!(my_advisory_locks(&mut conn), 0);
    assert_eq!(migration_locks(&mut conn, true), 0);
    std::fs::remove_dir_all(dir).unwrap();
}

/// The one pending migration of a schema whose ledger the batched read found, failing only
/// at `COMMIT` (a deferred constraint): the error names the migration, nothing of it stays,
/// and no lock is held.
#[test]
fn after_the_batched_read_a_migration_failing_at_commit_is_named() {
    let db = test_database!();
    let mut conn = db.connect();
    let schemas = names("c", 1);
    tenants(&mut conn, &schemas);
    migrate_schema(&mut conn, &Config::default(), &name("c0000"), &TENANT).unwrap();
    let dir = tenant_and(
        "atcommit",
        &[(
            "2024-06-01-000006_deferred",
            "create table tree (id int primary key, \
               parent int references tree deferrable initially deferred); \
             insert into tree values (1, 2);",
            true,
        )],
    );
    let migrator = one_worker(&db)
        .tenant_migrations(file_migrations(&dir))
        .build()
        .unwrap();
    let report = migrator.run(&Selection::all()).unwrap();
    let err = report.schemas[0].error.as_ref().expect("the commit failed");
    assert_eq!(err.version(), Some("20240601000006"), "{report}");
    assert!(report.schemas[0].applied.is_empty(), "{report}");
    assert_eq!(ledger(&mut conn, "c0000").unwrap(), TENANT_VERSIONS);
    assert!(!tables(&mut conn, "c0000").contains(&"tree".to_owned()));
    assert_eq!(migration_locks(&mut conn, true), 0);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A first pending migration that changes the path, on a schema whose ledger the batched
/// read found: rolled back in the lock's transaction, named, nothing lands in `public`, and
/// the next schema on the same pooled connection migrates into itself only.
#[test]
fn after_the_batched_read_a_migration_that_changes_the_path_is_rolled_back() {
    let db = test_database!();
    let mut conn = db.connect();
    let schemas = names("s", 2);
    tenants(&mut conn, &schemas);
    for s in &schemas {
        migrate_schema(&mut conn, &Config::default(), &name(s), &TENANT).unwrap();
    }
    // Only s0000 meets the sneaky migration: s0001 has it already, and gets the next one.
    conn.batch_execute(
        "insert into s0001.__diesel_schema_migrations (version) values ('20240601000006')",
    )
    .unwrap();
    let dir = tenant_and(
        "setpath_known",
        &[
            (
                "2024-06-01-000006_sneaky",
                "set search_path to public; create table sneaky (id int);",
                true,
            ),
            (
                "2024-06-01-000007_after",
                "create table after_tbl (id int);",
                true,
            ),
        ],
    );
    let migrator = one_worker(&db)
        .tenant_migrations(file_migrations(&dir))
        .keep_going(true)
        .build()
        .unwrap();
    let report = migrator.run(&Selection::all()).unwrap();
    let err = report.schemas[0].error.as_ref().expect("refused");
    assert!(
        matches!(err.kind(), MigrationErrorKind::PathChanged),
        "{report}"
    );
    assert_eq!(err.version(), Some("20240601000006"));
    assert_eq!(report.schemas[1].applied, ["20240601000007"], "{report}");
    assert!(
        tables(&mut conn, "public")
            .iter()
            .all(|t| t == "tenants" || t == "domains"),
        "public gained tables"
    );
    assert_eq!(ledger(&mut conn, "s0000").unwrap(), TENANT_VERSIONS);
    assert!(tables(&mut conn, "s0001").contains(&"after_tbl".to_owned()));
    assert_eq!(migration_locks(&mut conn, true), 0);
    std::fs::remove_dir_all(dir).unwrap();
}

/// With a `lock_timeout` (a database or role setting), a run that cannot get a schema's lock
/// in time reports that schema's error, applies nothing to it, holds no lock afterwards and
/// leaves no transaction open; the other schemas migrate, and a later run applies the
/// pending migration once.
#[test]
fn a_lock_timeout_on_the_schema_lock_is_that_schema_s_error_and_nothing_else() {
    let db = test_database!();
    let mut conn = db.connect();
    conn.batch_execute(
        "do $$ begin execute format('alter database %I set lock_timeout = %L', \
         current_database(), '200ms'); end $$",
    )
    .unwrap();
    let schemas = names("k", 2);
    tenants(&mut conn, &schemas);
    for s in &schemas {
        migrate_schema(&mut conn, &Config::default(), &name(s), &TENANT).unwrap();
    }
    let mut holder = PgConnection::establish(db.url()).unwrap();
    holder
        .batch_execute(&format!(
            "select pg_advisory_lock({MIGRATION_LOCK_CLASS}, hashtext('k0000'))"
        ))
        .unwrap();
    let migrator = one_worker(&db)
        .tenant_migrations(RELEASE)
        .keep_going(true)
        .build()
        .unwrap();
    let report = migrator.run(&Selection::all()).unwrap();
    let by_schema: BTreeMap<&str, _> = report
        .schemas
        .iter()
        .map(|s| (s.schema.as_str(), s))
        .collect();
    let k0 = by_schema["k0000"];
    assert!(k0.applied.is_empty(), "{report}");
    let e = k0.error.as_ref().expect("k0000 must fail");
    assert_eq!(e.schema().as_str(), "k0000");
    assert_eq!(by_schema["k0001"].applied, ["20240601000006"], "{report}");
    assert_eq!(ledger(&mut conn, "k0000").unwrap().len(), 5);
    holder
        .batch_execute(&format!(
            "select pg_advisory_unlock({MIGRATION_LOCK_CLASS}, hashtext('k0000'))"
        ))
        .unwrap();
    assert_eq!(migration_locks(&mut conn, true), 0);
    let idle_in_tx: i64 = diesel::select(diesel::dsl::sql::<BigInt>(
        "(select count(*) from pg_catalog.pg_stat_activity \
          where datname = current_database() and state like 'idle in transaction%')",
    ))
    .get_result(&mut conn)
    .unwrap();
    assert_eq!(idle_in_tx, 0, "a connection was left in a transaction");
    let again = migrator.run(&Selection::all()).unwrap();
    let k0 = again
        .schemas
        .iter()
        .find(|s| s.schema.as_str() == "k0000")
        .unwrap();
    assert_eq!(k0.applied, ["20240601000006"], "{again}");
    assert_eq!(ledger(&mut conn, "k0000").unwrap().len(), 6);
    assert_eq!(migration_locks(&mut conn, true), 0);
}
