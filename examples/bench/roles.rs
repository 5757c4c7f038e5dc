//! W1-roles and W3-roles: W1 and W3 with per-tenant roles on, each interleaved with the same
//! workload without roles in one run (tenant by tenant for W1, in rounds for W3), so that the
//! ratio compares like with like on a busy machine.
//!
//! The roles are made here (a DDL role, a `NOINHERIT` application login, tenant roles named
//! `bench-<tag>-{schema}`) and dropped at the end.

use std::time::Instant;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use pgschemas_diesel::provision::Provisioner;
use pgschemas_diesel::roles::{TenantRoles, adopt_roles};
use pgschemas_diesel::{Config, SchemaName, TenantPool};

use crate::common::{Bench, report};
use crate::w1::{SHARED, create_one, median_ms};
use crate::w3::{self, M, ROUNDS, TENANTS, tenant};

const TENANT: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");

/// The roles of one workload's database, dropped with it.
struct Roles {
    tag: String,
    db_url: String,
}

impl Roles {
    /// Creates `bench_<tag>_ddl` (owner of `public` in the database at `db_url`) and
    /// `bench_<tag>_app` (`NOINHERIT`), after dropping leftovers of an earlier run.
    fn new(db_url: &str, tag: &str) -> Self {
        let me = Self {
            tag: tag.to_owned(),
            db_url: db_url.to_owned(),
        };
        me.drop_all(false);
        let db: String = db_url.rsplit('/').next().unwrap_or_default().to_owned();
        PgConnection::establish(db_url)
            .expect("connect")
            .batch_execute(&format!(
                "CREATE ROLE {d} LOGIN CREATEROLE; CREATE ROLE {a} LOGIN NOINHERIT; \
                 GRANT CREATE, CONNECT ON DATABASE \"{db}\" TO {d}; ALTER SCHEMA public OWNER TO {d}",
                d = me.ddl(),
                a = me.app(),
            ))
            .expect("create the roles");
        me
    }

    fn ddl(&self) -> String {
        format!("bench_{}_ddl", self.tag)
    }

    fn app(&self) -> String {
        format!("bench_{}_app", self.tag)
    }

    fn tenant_roles(&self) -> TenantRoles {
        TenantRoles::new(self.ddl())
            .and_then(|r| r.template(&format!("bench-{}-{{schema}}", self.tag)))
            .and_then(|r| r.login_role(self.app()))
            .expect("tenant roles")
    }

    fn url_as(&self, user: &str) -> String {
        let (scheme, rest) = self.db_url.split_once("://").expect("a URL");
        let host = rest.split_once('@').map_or(rest, |(_, h)| h);
        format!("{scheme}://{user}@{host}")
    }

    /// Drops the roles; at the end of a run the workload's database first (the DDL role owns
    /// every tenant there, too much for one `DROP OWNED`); at the start the database was just
    /// made afresh, so nothing there depends on leftovers.
    fn drop_all(&self, with_database: bool) {
        let (server, db) = self.db_url.rsplit_once('/').expect("a URL with a database");
        let Ok(mut conn) = PgConnection::establish(&format!("{server}/postgres")) else {
            return;
        };
        if with_database
            && let Err(e) =
                conn.batch_execute(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
        {
            eprintln!("bench: cannot drop database {db}: {e}");
            return;
        }
        #[derive(QueryableByName)]
        struct Name {
            #[diesel(sql_type = diesel::sql_types::Text)]
            name: String,
        }
        let names: Vec<String> = diesel::sql_query(format!(
            "SELECT quote_ident(rolname) AS name FROM pg_roles WHERE starts_with(rolname, 'bench-{t}-') \
             OR rolname IN ('bench_{t}_ddl', 'bench_{t}_app') ORDER BY rolname = 'bench_{t}_ddl'",
            t = self.tag
        ))
        .load::<Name>(&mut conn)
        .map(|v| v.into_iter().map(|n| n.name).collect())
        .unwrap_or_default();
        for n in &names {
            if let Err(e) = conn.batch_execute(&format!("DROP ROLE {n}")) {
                eprintln!("bench: cannot drop role {n}: {e}");
            }
        }
    }
}

impl Drop for Roles {
    fn drop(&mut self) {
        self.drop_all(true);
    }
}

/// W1-roles: tenants created alternately without roles (as the superuser) and with roles (as
/// the DDL role), in one database; the ratio of their median per-tenant times.
pub fn w1(bench: &Bench) {
    const N: usize = 200;
    let url = bench.fresh_database("pgschemas_bench_w1_roles");
    let roles = Roles::new(&url, "w1r");
    let mut ddl = PgConnection::establish(&roles.url_as(&roles.ddl())).expect("ddl login");
    ddl.batch_execute(SHARED).expect("shared tables");
    let mut plain_conn = PgConnection::establish(&url).expect("connect");
    let plain = Provisioner::builder(Config::default(), TENANT)
        .build()
        .expect("provisioner");
    let config = Config::builder()
        .tenant_roles(roles.tenant_roles())
        .build()
        .expect("config");
    let with_roles = Provisioner::builder(config, TENANT)
        .build()
        .expect("provisioner");
    let started = Instant::now();
    let (mut p, mut r) = (Vec::new(), Vec::new());
    for i in 0..N {
        p.push(create_one(&plain, &mut plain_conn, &format!("p{i:04}")));
        r.push(create_one(&with_roles, &mut ddl, &format!("r{i:04}")));
    }
    let seconds = started.elapsed().as_secs_f64();
    let (pm, rm) = (median_ms(&mut p), median_ms(&mut r));
    report(
        "W1-roles",
        N as u64,
        seconds,
        "tenants/s",
        &[
            ("median_ms", format!("{rm:.2}")),
            ("without_roles_median_ms", format!("{pm:.2}")),
            ("ratio_to_W1", format!("{:.3}", pm / rm)),
        ],
    );
    drop((ddl, plain_conn));
    drop(roles);
}

/// W3-roles: W3's loop (a tenant change every iteration) and its transaction form with
/// roles on (the application's `NOINHERIT` login, the tenants adopted), interleaved in
/// rounds with the same loops without roles on the same database.
pub fn w3(bench: &Bench) {
    let url = w3::database(bench);
    let roles = Roles::new(&url, "w3r");
    let config = Config::builder()
        .tenant_roles(roles.tenant_roles())
        .build()
        .expect("config");
    let schemas: Vec<SchemaName> = (0..TENANTS as u64)
        .map(|i| SchemaName::new(tenant(i)).expect("name"))
        .collect();
    let mut admin = PgConnection::establish(&url).expect("connect");
    for (schema, result) in adopt_roles(&mut admin, &config, &schemas).expect("adopt") {
        result.unwrap_or_else(|e| panic!("adopt {schema}: {e}"));
    }
    let plain = w3::one_connection_pool(&url);
    let with_roles = TenantPool::with_builder(
        roles.url_as(&roles.app()),
        config,
        r2d2::Pool::builder().max_size(1),
    )
    .expect("app pool");
    let scope = |p: &TenantPool, i: u64| p.scope(&tenant(i)).expect("scope");
    w3::run(&plain, 2 * TENANTS as u64, scope);
    w3::run(&with_roles, 2 * TENANTS as u64, scope);
    let per_round = M / ROUNDS;
    let (mut session, mut tx) = (Timings::default(), Timings::default());
    for round in 0..ROUNDS {
        // Which goes first alternates, so that neither always follows the other's backend.
        let first_plain = round % 2 == 0;
        let s = ordered(
            first_plain,
            || w3::run(&plain, per_round, scope),
            || w3::run(&with_roles, per_round, scope),
        );
        session.push(s);
        let t = ordered(
            first_plain,
            || w3::run_tx(&plain, per_round),
            || w3::run_tx(&with_roles, per_round),
        );
        tx.push(t);
    }
    session.report("W3-roles", "W3");
    tx.report("W3-roles-tx", "W3-tx");
    drop((plain, with_roles, admin));
    drop(roles);
}

/// Runs `plain` and `roles` in the order `first_plain` says; their seconds, plain first.
fn ordered(
    first_plain: bool,
    plain: impl FnOnce() -> f64,
    roles: impl FnOnce() -> f64,
) -> (f64, f64) {
    if first_plain {
        let p = plain();
        (p, roles())
    } else {
        let r = roles();
        (plain(), r)
    }
}

/// The seconds of each round, without roles and with them.
#[derive(Default)]
struct Timings(Vec<(f64, f64)>);

impl Timings {
    fn push(&mut self, round: (f64, f64)) {
        self.0.push(round);
    }

    /// One result line: the rate with roles and its ratio to the rate without them.
    fn report(&self, name: &str, baseline: &str) {
        let plain: f64 = self.0.iter().map(|r| r.0).sum();
        let roles: f64 = self.0.iter().map(|r| r.1).sum();
        report(
            name,
            M,
            roles,
            "queries/s",
            &[
                (
                    &format!("ratio_to_{baseline}"),
                    format!("{:.3}", plain / roles),
                ),
                (
                    &format!("{baseline}_rate"),
                    format!("{:.0}", M as f64 / plain),
                ),
            ],
        );
    }
}
