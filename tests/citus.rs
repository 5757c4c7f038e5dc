//! Citus schema-based sharding on a real cluster (`testing::CitusCluster`: a coordinator and
//! two workers of each test's own): provisioning distributes tenants over the workers,
//! queries through the coordinator see only the tenant's rows, migrations run on
//! distributed schemas, a tenant moves to another worker while it is written to, and the
//! CLI and `doctor` show and check placements.
//!
//! Citus must be installed (`.ci/install-citus`); without it each test fails saying so.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use pgschemas_diesel::citus::{self, Node, TransferMode};
use pgschemas_diesel::doctor::{CheckStatus, doctor};
use pgschemas_diesel::migrate::{Migrator, Selection};
use pgschemas_diesel::models::{
    DefaultTenant, NewTenant, SHARED_MIGRATIONS, TenantModel, default_catalog,
};
use pgschemas_diesel::provision::Provisioner;
use pgschemas_diesel::testing::CitusCluster;
use pgschemas_diesel::{Config, Error, TenantPool};

const TENANT: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");
const RELEASE: EmbeddedMigrations = embed_migrations!("../examples/migrations/release");

/// A cluster whose coordinator holds the default models' shared tables, a configuration
/// with Citus on, and a provisioner of the tenant migrations.
struct Setup {
    cluster: CitusCluster,
    config: Config,
    provisioner: Provisioner,
}

impl Setup {
    fn new() -> Self {
        let cluster = CitusCluster::start();
        let mut conn = PgConnection::establish(&cluster.coordinator_url()).unwrap();
        conn.run_pending_migrations(SHARED_MIGRATIONS).unwrap();
        let config = Config::builder().citus(true).build().unwrap();
        let provisioner = Provisioner::builder(config.clone(), TENANT)
            .build()
            .unwrap();
        Self {
            cluster,
            config,
            provisioner,
        }
    }

    fn connect(&self) -> PgConnection {
        PgConnection::establish(&self.cluster.coordinator_url()).unwrap()
    }

    fn pool(&self, size: u32) -> TenantPool {
        TenantPool::with_builder(
            self.cluster.coordinator_url(),
            self.config.clone(),
            r2d2::Pool::builder().max_size(size),
        )
        .unwrap()
    }

    /// Creates the tenants `names` (row, distributed schema, migrations, in one transaction).
    fn create_tenants(&self, names: &[&str]) {
        let mut conn = self.connect();
        for name in names {
            let schema = self.config.check_tenant_name(name).unwrap();
            self.provisioner
                .create_tenant(&mut conn, name, |conn| {
                    DefaultTenant::insert(conn, NewTenant::new(&schema, *name)).map_err(Error::from)
                })
                .unwrap();
        }
    }
}

#[derive(QueryableByName)]
struct Body {
    #[diesel(sql_type = Text)]
    body: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Provisioning makes every tenant a distributed schema with all its tables on one worker;
/// the tenants land on both workers; nothing of a tenant is left on the coordinator.
#[test]
fn provisioning_distributes_tenants_over_both_workers() {
    let setup = Setup::new();
    let names = ["t1", "t2", "t3", "t4"];
    setup.create_tenants(&names);
    let mut conn = setup.connect();

    let placements = citus::placements(&mut conn).unwrap();
    let schemas: Vec<&str> = placements.iter().map(|p| p.schema.as_str()).collect();
    assert_eq!(schemas, names);
    let workers: BTreeSet<Node> = setup.cluster.workers().iter().cloned().collect();
    let used: BTreeSet<Node> = placements
        .iter()
        .map(|p| p.node.clone().expect("placed"))
        .collect();
    assert_eq!(used, workers, "the tenants use both workers");
    for p in &placements {
        // five tables and the migration ledger, together
        assert_eq!(p.tables, 6, "{p:?}");
    }
    // each tenant's tables are shards on its worker
    for p in &placements {
        let node = p.node.as_ref().unwrap();
        let mut worker = PgConnection::establish(&setup.cluster.url_of(node)).unwrap();
        // Citus hides shards from catalog queries on workers unless told otherwise
        worker
            .batch_execute("SET citus.show_shards_for_app_name_prefixes TO '*'")
            .unwrap();
        let shards: i64 = diesel::sql_query(format!(
            "SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = '{}' AND c.relkind = 'r' AND c.relname ~ '_[0-9]+$'",
            p.schema
        ))
        .get_result::<Count>(&mut worker)
        .unwrap()
        .n;
        assert_eq!(shards, 6, "{} has its shards on {node}", p.schema);
    }
    assert_eq!(
        citus::placement(&mut conn, &"t1").unwrap().unwrap(),
        placements[0]
    );
    assert_eq!(citus::placement(&mut conn, &"public").unwrap(), None);
    #[cfg(feature = "cli")]
    cli_lists_nodes_and_moves_a_tenant(&setup, &placements[0]);
}

/// The CLI's `list` shows each tenant's node; `move-tenant` moves one and says so.
#[cfg(feature = "cli")]
fn cli_lists_nodes_and_moves_a_tenant(setup: &Setup, t1: &citus::Placement) {
    use pgschemas_diesel::cli::{self, App, Outcome};

    let app = App::builder(setup.config.clone(), TENANT)
        .default_models()
        .build();
    let url = setup.cluster.coordinator_url();
    let run = |args: &[&str]| {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let mut argv = vec!["manage", "--database-url", url.as_str()];
        argv.extend_from_slice(args);
        let outcome = cli::run_from(&app, argv, &mut out, &mut err);
        let (out, err) = (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        );
        (outcome, out, err)
    };
    let from = t1.node.clone().unwrap();
    let (outcome, out, err) = run(&["list", "--dynamic"]);
    assert_eq!(outcome, Outcome::Success, "{out}{err}");
    let header = out.lines().next().unwrap();
    assert!(header.trim_end().ends_with("node"), "{out}");
    let row = out.lines().find(|l| l.starts_with("t1 ")).unwrap();
    assert!(row.trim_end().ends_with(&from.to_string()), "{out}");

    let to = setup
        .cluster
        .workers()
        .iter()
        .find(|w| **w != from)
        .unwrap();
    let to_arg = to.to_string();
    let (outcome, out, err) = run(&["move-tenant", "t1", "--to", &to_arg]);
    assert_eq!(outcome, Outcome::Success, "{out}{err}");
    assert!(out.contains(&format!("from {from} to {to}")), "{out}");
    let (_, out, _) = run(&["list", "-s", "t1"]);
    let row = out.lines().find(|l| l.starts_with("t1 ")).unwrap();
    assert!(row.trim_end().ends_with(&to_arg), "{out}");
    // moving it where it is does nothing; a bad node is a usage error
    let (outcome, out, _) = run(&["move-tenant", "t1", "--to", &to_arg]);
    assert_eq!(outcome, Outcome::Success);
    assert!(out.contains("already"), "{out}");
    let (outcome, _, err) = run(&["move-tenant", "t1", "--to", "nowhere"]);
    assert_eq!(outcome, Outcome::Usage, "{err}");
    let (outcome, _, err) = run(&["move-tenant", "t1", "--to", "127.0.0.1:1"]);
    assert_eq!(outcome, Outcome::Failed);
    assert!(err.contains("not an active Citus worker"), "{err}");
}

/// Through the coordinator, a tenant reads and writes only its own rows, in the session
/// form and in the transaction form, whichever worker holds it.
#[test]
fn each_tenant_reads_only_its_own_rows_through_the_coordinator() {
    let setup = Setup::new();
    let names = ["t1", "t2", "t3", "t4"];
    setup.create_tenants(&names);
    let pool = setup.pool(2);
    for name in names {
        pool.transaction(&name, |conn| {
            diesel::sql_query(format!(
                "insert into audit_log (payload) values ('{{\"tenant\": \"{name}\"}}')"
            ))
            .execute(conn)
            .map_err(Error::from)
        })
        .unwrap();
    }
    for round in 0..3 {
        for name in names {
            // session form
            let mut scope = pool.scope(&name).unwrap();
            let rows: Vec<Body> =
                diesel::sql_query("select payload->>'tenant' as body from audit_log")
                    .load(&mut *scope)
                    .unwrap();
            drop(scope);
            let bodies: Vec<String> = rows.into_iter().map(|r| r.body).collect();
            assert_eq!(bodies, [name], "session form, round {round}");
            // transaction form
            let rows: Vec<Body> = pool
                .transaction(&name, |conn| {
                    diesel::sql_query("select payload->>'tenant' as body from audit_log")
                        .load(conn)
                        .map_err(Error::from)
                })
                .unwrap();
            let bodies: Vec<String> = rows.into_iter().map(|r| r.body).collect();
            assert_eq!(bodies, [name], "transaction form, round {round}");
        }
    }
}

/// Migrating every tenant through the coordinator applies the new migration to each
/// distributed schema; the new table is a tenant table beside the others.
#[test]
fn migrate_all_over_distributed_schemas() {
    let setup = Setup::new();
    let names = ["t1", "t2", "t3"];
    setup.create_tenants(&names);
    let migrator = Migrator::builder(setup.pool(3), Arc::new(default_catalog()))
        .tenant_migrations(RELEASE)
        .workers(3)
        .build()
        .unwrap();
    let report = migrator.run(&Selection::all()).unwrap();
    assert!(report.is_success(), "{report}");
    assert_eq!(report.migration_count(), 3, "{report}");
    // nothing left to do
    let again = migrator.run(&Selection::all()).unwrap();
    assert_eq!(again.migration_count(), 0, "{again}");
    let mut conn = setup.connect();
    for p in citus::placements(&mut conn).unwrap() {
        assert_eq!(p.tables, 6, "{p:?}");
        let phone: i64 = diesel::sql_query(format!(
            "SELECT count(*) AS n FROM information_schema.columns \
             WHERE table_schema = '{}' AND table_name = 'customers' AND column_name = 'phone'",
            p.schema
        ))
        .get_result::<Count>(&mut conn)
        .unwrap()
        .n;
        assert_eq!(phone, 1, "{} has the new column", p.schema);
    }
    let pool = setup.pool(1);
    pool.transaction(&"t2", |conn| {
        diesel::sql_query("insert into customers (name, email, phone) values ('a', 'a@x', '1')")
            .execute(conn)
            .map_err(Error::from)
    })
    .unwrap();
}

/// While a writer inserts into a tenant in a loop, the tenant moves to the other worker:
/// every acknowledged write is there afterwards, and no read ever returned another
/// tenant's row.
#[test]
fn moving_a_tenant_under_a_writer_loses_no_write() {
    let setup = Setup::new();
    setup.create_tenants(&["mover", "other"]);
    let pool = setup.pool(3);
    for name in ["mover", "other"] {
        pool.transaction(&name, |conn| {
            diesel::sql_query(format!(
                "insert into audit_log (payload) values ('{{\"tenant\": \"{name}\"}}')"
            ))
            .execute(conn)
            .map_err(Error::from)
        })
        .unwrap();
    }
    let mut conn = setup.connect();
    let from = citus::placement(&mut conn, &"mover")
        .unwrap()
        .unwrap()
        .node
        .unwrap();
    let to = setup
        .cluster
        .workers()
        .iter()
        .find(|w| **w != from)
        .unwrap()
        .clone();

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (pool, stop) = (pool.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut acknowledged = Vec::new();
            let mut wrong = Vec::new();
            let mut failures = 0;
            let mut n = 0_i64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                // one write and one read per transaction: the write is acknowledged by the
                // commit, the read shows what the tenant's path reaches
                let result = pool.transaction(&"mover", |conn| {
                    diesel::sql_query(format!(
                        "insert into audit_log (payload) values ('{{\"tenant\": \"mover\", \"n\": {n}}}')"
                    ))
                    .execute(conn)?;
                    diesel::sql_query(
                        "select payload->>'tenant' as body from audit_log \
                         where payload->>'tenant' <> 'mover'",
                    )
                    .load::<Body>(conn)
                    .map_err(Error::from)
                });
                match result {
                    Ok(rows) => {
                        acknowledged.push(n);
                        wrong.extend(rows.into_iter().map(|r| r.body));
                    }
                    // a write may fail during the switch-over; it was not acknowledged
                    Err(_) => failures += 1,
                }
            }
            (acknowledged, wrong, failures)
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    citus::move_tenant(&mut conn, &"mover", &to, TransferMode::Auto).unwrap();
    let took = started.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let (acknowledged, wrong, failures) = writer.join().unwrap();

    assert_eq!(
        citus::placement(&mut conn, &"mover").unwrap().unwrap().node,
        Some(to.clone())
    );
    assert!(
        wrong.is_empty(),
        "rows of another tenant were read: {wrong:?}"
    );
    assert!(
        acknowledged.len() > 10,
        "the writer wrote during the move ({} writes, {failures} failed, move took {took:?})",
        acknowledged.len()
    );
    let stored: BTreeSet<i64> = pool
        .transaction(&"mover", |conn| {
            diesel::sql_query(
                "select (payload->>'n')::bigint as n from audit_log where payload ? 'n'",
            )
            .load::<Count>(conn)
            .map_err(Error::from)
        })
        .unwrap()
        .into_iter()
        .map(|c| c.n)
        .collect();
    let lost: Vec<&i64> = acknowledged
        .iter()
        .filter(|n| !stored.contains(n))
        .collect();
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    // the other tenant is untouched
    let others: i64 = pool
        .transaction(&"other", |conn| {
            diesel::sql_query("select count(*) as n from audit_log")
                .get_result::<Count>(conn)
                .map_err(Error::from)
        })
        .unwrap()
        .n;
    assert_eq!(others, 1);
    eprintln!(
        "moved a tenant in {took:?} under {} acknowledged writes ({failures} failed)",
        acknowledged.len()
    );
}

/// `doctor` flags a tenant schema that is not distributed and a foreign key between tenant
/// schemas (which Citus refuses to distribute); `distribute_schema` fixes the first.
#[test]
fn doctor_flags_undistributed_tenants_and_cross_tenant_foreign_keys() {
    let setup = Setup::new();
    setup.create_tenants(&["t1"]);
    let mut conn = setup.connect();
    // two tenants whose schemas were made without Citus' sharding, one referencing the other
    conn.batch_execute(
        "INSERT INTO tenants (schema_name, name) VALUES ('legacy', 'legacy'), ('linked', 'linked');
         CREATE SCHEMA legacy; CREATE TABLE legacy.items (id int PRIMARY KEY);
         CREATE SCHEMA linked; CREATE TABLE linked.refs (id int PRIMARY KEY, \
           item int REFERENCES legacy.items (id));",
    )
    .unwrap();
    let catalog = default_catalog();
    let report = doctor(&mut conn, &setup.config, &catalog, &TENANT).unwrap();
    let distributed = report.get("citus-distributed").expect("the check ran");
    assert_eq!(distributed.status, CheckStatus::Fail, "{report}");
    assert!(
        distributed.summary.contains("legacy") && distributed.summary.contains("linked"),
        "{report}"
    );
    assert!(!distributed.summary.contains("t1"), "{report}");
    let fks = report.get("citus-foreign-keys").expect("the check ran");
    assert_eq!(fks.status, CheckStatus::Fail, "{report}");
    assert!(fks.summary.contains("linked.refs"), "{report}");

    // Citus refuses to distribute the referencing schema; the error names it
    let err = citus::distribute_schema(&mut conn, &"linked").unwrap_err();
    assert_eq!(err.schema(), Some("linked"), "{err}");
    conn.batch_execute("ALTER TABLE linked.refs DROP CONSTRAINT refs_item_fkey")
        .unwrap();
    citus::distribute_schema(&mut conn, &"legacy").unwrap();
    citus::distribute_schema(&mut conn, &"linked").unwrap();
    let report = doctor(&mut conn, &setup.config, &catalog, &TENANT).unwrap();
    assert_eq!(
        report.get("citus-distributed").unwrap().status,
        CheckStatus::Pass,
        "{report}"
    );
    assert_eq!(
        report.get("citus-foreign-keys").unwrap().status,
        CheckStatus::Pass,
        "{report}"
    );
}

/// With Citus on, provisioning against a database without the extension fails and leaves
/// nothing behind; the placement functions say what is missing.
#[test]
fn citus_setting_without_the_extension_is_refused() {
    let db = pgschemas_diesel::test_database!();
    let mut conn = db.connect();
    conn.run_pending_migrations(SHARED_MIGRATIONS).unwrap();
    let config = Config::builder().citus(true).build().unwrap();
    let provisioner = Provisioner::builder(config, TENANT).build().unwrap();
    let err = provisioner
        .create_tenant(&mut conn, "t1", |conn| {
            DefaultTenant::insert(
                conn,
                NewTenant::new(&pgschemas_diesel::SchemaName::new("t1").unwrap(), "t1"),
            )
            .map_err(Error::from)
        })
        .unwrap_err();
    assert!(matches!(err, Error::CitusMissing), "{err}");
    let left: i64 = diesel::sql_query("select count(*) as n from tenants")
        .get_result::<Count>(&mut conn)
        .unwrap()
        .n;
    assert_eq!(left, 0);
    assert!(matches!(
        citus::placements(&mut conn),
        Err(Error::CitusMissing)
    ));
}

/// Provisioning by cloning the reference schema into a distributed schema.
#[test]
fn cloned_tenants_are_distributed() {
    let cluster = CitusCluster::start();
    let mut conn = PgConnection::establish(&cluster.coordinator_url()).unwrap();
    conn.run_pending_migrations(SHARED_MIGRATIONS).unwrap();
    let config = Config::builder()
        .citus(true)
        .clone_reference("sample")
        .build()
        .unwrap();
    pgschemas_diesel::provision::create_reference(&mut conn, &config, TENANT).unwrap();
    let provisioner = Provisioner::builder(config.clone(), TENANT)
        .build()
        .unwrap();
    for name in ["c1", "c2"] {
        let schema = config.check_tenant_name(name).unwrap();
        provisioner
            .create_tenant(&mut conn, name, |conn| {
                DefaultTenant::insert(conn, NewTenant::new(&schema, name)).map_err(Error::from)
            })
            .unwrap();
    }
    // `clone_schema` (the CLI's `clone`) distributes its copy too; the reference stays local.
    let sample = pgschemas_diesel::SchemaName::new("sample").unwrap();
    let c3 = pgschemas_diesel::SchemaName::new("c3").unwrap();
    pgschemas_diesel::provision::clone_schema(&mut conn, &config, &sample, &c3, false).unwrap();
    let placements = citus::placements(&mut conn).unwrap();
    assert_eq!(placements.len(), 3, "{placements:?}");
    for p in &placements {
        assert_eq!(p.tables, 6, "{p:?}");
    }
    assert_eq!(citus::placement(&mut conn, &"sample").unwrap(), None);
}
