//! Per-tenant roles through a tenant's life: provisioned by migrating or by cloning, created by
//! the migrator, dropped, adopted for an existing install; and under injected faults, never a
//! role without its schema or a schema without its role (read from `pg_roles` and
//! `pg_namespace`).

use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text};
use pgschemas_diesel::catalog::NoTenants;
use pgschemas_diesel::migrate::{Migrator, Selection};
use pgschemas_diesel::provision::{Provisioner, create_reference};
use pgschemas_diesel::roles::{Adopted, adopt_roles};
use pgschemas_diesel::testing::TestRoles;
use pgschemas_diesel::{Config, Error, SchemaName, StaticTenant, TenantPool, test_database};

use crate::roles::{Setup, TENANT, is_denied, owners, who};

/// One `bigint` column named `n`.
#[derive(QueryableByName)]
pub(crate) struct N {
    #[diesel(sql_type = BigInt)]
    pub(crate) n: i64,
}

/// The `n` of `sql`'s one row.
pub(crate) fn count(conn: &mut PgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<N>(conn)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .n
}

/// Whether the schema exists, and whether the role of it exists (read as a superuser).
fn state(admin: &mut PgConnection, roles: &TestRoles, schema: &str) -> (bool, bool) {
    let s = count(
        admin,
        &format!("select count(*) as n from pg_namespace where nspname = '{schema}'"),
    );
    let r = count(
        admin,
        &format!(
            "select count(*) as n from pg_roles where rolname = '{}{schema}'",
            roles.prefix()
        ),
    );
    (s == 1, r == 1)
}

#[test]
fn a_cloned_tenant_reaches_its_own_tables_only() {
    let s = Setup::new(test_database!(), &["a"]);
    let config = Config::builder()
        .tenant_roles(s.roles.tenant_roles())
        .clone_reference("sample")
        .build()
        .unwrap();
    let mut ddl = s.ddl_connection();
    create_reference(&mut ddl, &config, TENANT).unwrap();
    let p = Provisioner::builder(config.clone(), TENANT)
        .clone_from_reference(true)
        .build()
        .unwrap();
    p.create_tenant(&mut ddl, "c", |_| Ok(())).unwrap();
    ddl.batch_execute("insert into c.orders (owner) values ('c')")
        .unwrap();
    let mut admin = s.admin();
    assert_eq!(state(&mut admin, &s.roles, "c"), (true, true));
    assert_eq!(
        state(&mut admin, &s.roles, "sample"),
        (true, false),
        "no role for the reference"
    );
    let pool = TenantPool::new(s.roles.app_url(), config).unwrap();
    let mut conn = pool.scope(&"c").unwrap();
    assert_eq!(
        owners(&mut conn, "select owner from orders").unwrap(),
        ["c"]
    );
    diesel::sql_query("insert into orders (owner) values ('c2')")
        .execute(&mut *conn)
        .expect("the cloned sequence is usable");
    assert!(is_denied(&mut conn, "select owner from a.orders"));
    assert!(is_denied(&mut conn, "select owner from sample.orders"));
    drop(conn);
    let mut conn = pool.scope(&"a").unwrap();
    assert!(is_denied(&mut conn, "select owner from c.orders"));
    // The reference is not a tenant: the application cannot use it.
    drop(conn);
    assert!(pool.scope(&"sample").is_err());
}

#[test]
fn the_migrator_creates_a_static_tenant_with_its_role() {
    let s = Setup::new(test_database!(), &[]);
    let config = Config::builder()
        .tenant_roles(s.roles.tenant_roles())
        .static_tenant(StaticTenant::builder("www"))
        .build()
        .unwrap();
    let ddl = TenantPool::ddl_with_builder(
        s.roles.ddl_url(),
        config.clone(),
        r2d2::Pool::builder().max_size(1),
    )
    .unwrap();
    let migrator = Migrator::builder(ddl, Arc::new(NoTenants))
        .tenant_migrations(TENANT)
        .build()
        .unwrap();
    let report = migrator.run(&Selection::all()).unwrap();
    assert!(report.is_success(), "{report:?}");
    assert_eq!(state(&mut s.admin(), &s.roles, "www"), (true, true));
    let pool = TenantPool::new(s.roles.app_url(), config).unwrap();
    let mut conn = pool.scope(&"www").unwrap();
    assert_eq!(who(&mut conn).0, format!("{}www", s.roles.prefix()));
    assert_eq!(
        owners(&mut conn, "select owner from orders").unwrap().len(),
        0
    );
}

#[test]
fn a_migrator_on_the_application_login_is_refused() {
    let s = Setup::new(test_database!(), &[]);
    let app = TenantPool::new(s.roles.app_url(), s.config.clone()).unwrap();
    let e = Migrator::builder(app, Arc::new(NoTenants))
        .build()
        .unwrap_err();
    assert!(matches!(e, Error::Login { .. }), "{e}");
}

#[test]
fn dropping_a_tenant_drops_its_role_and_leaves_a_foreign_one() {
    let s = Setup::new(test_database!(), &["a", "b"]);
    let p = s.provisioner();
    let mut ddl = s.ddl_connection();
    let dropped = p.drop_tenant(&mut ddl, "a", true, |_| Ok(())).unwrap();
    assert!(dropped.schema_dropped);
    let mut admin = s.admin();
    assert_eq!(state(&mut admin, &s.roles, "a"), (false, false));
    // A role of b's role's name that is not marked as b's (its marker removed) stays.
    admin
        .batch_execute(&format!(
            "comment on role \"{}b\" is null",
            s.roles.prefix()
        ))
        .unwrap();
    p.drop_tenant(&mut ddl, "b", true, |_| Ok(())).unwrap();
    assert_eq!(state(&mut admin, &s.roles, "b"), (false, true));
    admin
        .batch_execute(&format!("drop role \"{}b\"", s.roles.prefix()))
        .unwrap();
}

#[test]
fn a_role_of_the_same_name_is_never_taken_over() {
    let s = Setup::new(test_database!(), &[]);
    let mut admin = s.admin();
    admin
        .batch_execute(&format!("create role \"{}x\"", s.roles.prefix()))
        .unwrap();
    let e = s
        .provisioner()
        .create_tenant(&mut s.ddl_connection(), "x", |_| Ok(()))
        .unwrap_err();
    assert!(
        matches!(e, Error::RoleExists { ref schema, .. } if schema == "x"),
        "{e}"
    );
    assert_eq!(state(&mut admin, &s.roles, "x"), (false, true));
    let members = count(
        &mut admin,
        &format!(
            "select count(*) as n from pg_auth_members where roleid = '\"{}x\"'::regrole",
            s.roles.prefix()
        ),
    );
    assert_eq!(members, 0, "nobody was made a member of the foreign role");
}

#[test]
fn faults_in_provisioning_leave_neither_schema_nor_role() {
    let s = Setup::new(test_database!(), &[]);
    let mut admin = s.admin();
    // A failing migration.
    let failing = Provisioner::builder(s.config.clone(), crate::roles::FAILING)
        .build()
        .unwrap();
    assert!(
        failing
            .create_tenant(&mut s.ddl_connection(), "f1", |_| Ok(()))
            .is_err()
    );
    assert_eq!(state(&mut admin, &s.roles, "f1"), (false, false));
    // A vetoing hook.
    let veto = Provisioner::builder(s.config.clone(), TENANT)
        .after_sync(|_, _| Err("no".into()))
        .build()
        .unwrap();
    assert!(
        veto.create_tenant(&mut s.ddl_connection(), "f2", |_| Ok(()))
            .is_err()
    );
    assert_eq!(state(&mut admin, &s.roles, "f2"), (false, false));
    // A backend killed before the commit.
    let url = s.roles.ddl_url();
    let kill = Provisioner::builder(s.config.clone(), TENANT)
        .after_sync(move |conn, _| {
            #[derive(QueryableByName)]
            struct Pid {
                #[diesel(sql_type = Integer)]
                pid: i32,
            }
            let pid: Pid = diesel::sql_query("select pg_backend_pid() as pid").get_result(conn)?;
            let mut other = PgConnection::establish(&url)?;
            diesel::sql_query("select pg_terminate_backend($1)")
                .bind::<Integer, _>(pid.pid)
                .execute(&mut other)?;
            Ok(())
        })
        .build()
        .unwrap();
    assert!(
        kill.create_tenant(&mut s.ddl_connection(), "f3", |_| Ok(()))
            .is_err()
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(state(&mut admin, &s.roles, "f3"), (false, false));
    // And a clean one still works.
    s.provisioner()
        .create_tenant(&mut s.ddl_connection(), "ok", |_| Ok(()))
        .unwrap();
    assert_eq!(state(&mut admin, &s.roles, "ok"), (true, true));
}

#[test]
fn a_drop_that_fails_keeps_both_schema_and_role() {
    let s = Setup::new(test_database!(), &["a"]);
    let mut admin = s.admin();
    // A privilege of a's role in another database: DROP ROLE fails there.
    let other = pgschemas_diesel::testing::TestDatabase::new(&format!(
        "roles_lifecycle_a_drop_that_fails_other_{}",
        std::process::id()
    ));
    other
        .connect()
        .batch_execute(&format!(
            "create table t (x int); grant select on t to \"{}a\"",
            s.roles.prefix()
        ))
        .unwrap();
    let e = s
        .provisioner()
        .drop_tenant(&mut s.ddl_connection(), "a", true, |_| Ok(()))
        .unwrap_err();
    assert_eq!(e.schema(), Some("a"), "{e}");
    assert_eq!(state(&mut admin, &s.roles, "a"), (true, true));
    other
        .connect()
        .batch_execute(&format!(
            "revoke select on t from \"{}a\"",
            s.roles.prefix()
        ))
        .unwrap();
    s.provisioner()
        .drop_tenant(&mut s.ddl_connection(), "a", true, |_| Ok(()))
        .unwrap();
    assert_eq!(state(&mut admin, &s.roles, "a"), (false, false));
}

#[derive(QueryableByName, PartialEq, Eq, Debug)]
struct Snapshot {
    #[diesel(sql_type = Text)]
    line: String,
}

/// Owners and privileges of everything in the tenant schemas, and the roles' memberships.
/// This database's schemas, objects and default privileges, and the memberships of the roles
/// named with `prefix` (roles are the cluster's: other tests make and drop theirs meanwhile).
fn snapshot(admin: &mut PgConnection, prefix: &str) -> Vec<Snapshot> {
    diesel::sql_query(
        "select n.nspname || ' ' || pg_get_userbyid(n.nspowner) || ' ' || coalesce(n.nspacl::text, '') as line
           from pg_namespace n where n.nspname in ('t1', 't2', 't3')
         union all
         select c.oid::regclass::text || ' ' || pg_get_userbyid(c.relowner) || ' ' || coalesce(c.relacl::text, '')
           from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname in ('t1', 't2', 't3')
         union all
         select p.oid::regprocedure::text || ' ' || pg_get_userbyid(p.proowner)
           from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname in ('t1', 't2', 't3')
         union all
         select d.defaclnamespace::regnamespace::text || ' ' || d.defaclacl::text from pg_default_acl d
         union all
         select pg_get_userbyid(m.roleid) || ' > ' || pg_get_userbyid(m.member) from pg_auth_members m
           where starts_with(pg_get_userbyid(m.roleid), $1)
         order by 1",
    )
    .bind::<diesel::sql_types::Text, _>(prefix)
    .load(admin)
    .unwrap()
}

#[test]
fn adopting_roles_is_resumable_and_idempotent() {
    let s = Setup::new(test_database!(), &[]);
    let mut admin = s.admin();
    // An install from before the mode: schemas owned by the superuser, with a table, a view,
    // a sequence, a function and a type each.
    for t in ["t1", "t2", "t3"] {
        admin
            .batch_execute(&format!(
                "create schema {t}; create table {t}.orders (id serial primary key, owner text not null);
                 insert into {t}.orders (owner) values ('{t}');
                 create view {t}.v as select owner from {t}.orders;
                 create sequence {t}.s; create type {t}.mood as enum ('ok');
                 create function {t}.f() returns int language sql as 'select 1';"
            ))
            .unwrap();
    }
    // t2's role name is taken by a role that is not its own.
    admin
        .batch_execute(&format!("create role \"{}t2\"", s.roles.prefix()))
        .unwrap();
    let schemas: Vec<SchemaName> = ["t1", "t2", "t3"]
        .iter()
        .map(|t| SchemaName::new(t).unwrap())
        .collect();
    let first = adopt_roles(&mut admin, &s.config, &schemas).unwrap();
    assert!(matches!(first[0].1, Ok(Adopted::Created)), "{:?}", first[0]);
    assert!(
        matches!(first[1].1, Err(Error::RoleExists { .. })),
        "{:?}",
        first[1]
    );
    assert!(matches!(first[2].1, Ok(Adopted::Created)), "{:?}", first[2]);
    // t2 is untouched: still the superuser's.
    assert_eq!(
        count(
            &mut admin,
            "select count(*) as n from pg_class c join pg_namespace n on n.oid = c.relnamespace \
             where n.nspname = 't2' and pg_get_userbyid(c.relowner) = current_user"
        ),
        5,
        "the table, its sequence and index, the view, the sequence"
    );
    // Resume once the foreign role is gone.
    admin
        .batch_execute(&format!("drop role \"{}t2\"", s.roles.prefix()))
        .unwrap();
    let second = adopt_roles(&mut admin, &s.config, &schemas).unwrap();
    let outcomes: Vec<_> = second
        .iter()
        .map(|(_, r)| r.as_ref().ok().copied())
        .collect();
    assert_eq!(
        outcomes,
        [
            Some(Adopted::Existing),
            Some(Adopted::Created),
            Some(Adopted::Existing)
        ]
    );
    let before = snapshot(&mut admin, s.roles.prefix());
    let third = adopt_roles(&mut admin, &s.config, &schemas).unwrap();
    assert!(
        third
            .iter()
            .all(|(_, r)| matches!(r, Ok(Adopted::Existing)))
    );
    assert_eq!(
        snapshot(&mut admin, s.roles.prefix()),
        before,
        "a second run changes nothing"
    );
    // Every object is the DDL role's now, and each tenant reaches its own rows only.
    assert_eq!(
        count(
            &mut admin,
            &format!(
                "select count(*) as n from pg_class c join pg_namespace n on n.oid = c.relnamespace \
                 where n.nspname in ('t1', 't2', 't3') and pg_get_userbyid(c.relowner) <> '{}'",
                s.roles.ddl()
            )
        ),
        0
    );
    let pool = s.app_pool(1);
    for t in ["t1", "t2", "t3"] {
        let mut conn = pool.scope(&t).unwrap();
        assert_eq!(owners(&mut conn, "select owner from orders").unwrap(), [t]);
        assert_eq!(owners(&mut conn, "select owner from v").unwrap(), [t]);
        diesel::sql_query("insert into orders (owner) values ('x')")
            .execute(&mut *conn)
            .unwrap();
        let other = if t == "t1" { "t2" } else { "t1" };
        assert!(is_denied(
            &mut conn,
            &format!("select owner from {other}.orders")
        ));
    }
    // A table a later migration adds, as the DDL role, is reachable too.
    s.ddl_connection()
        .batch_execute("create table t1.later (owner text); insert into t1.later values ('t1')")
        .unwrap();
    let mut conn = pool.scope(&"t1").unwrap();
    assert_eq!(
        owners(&mut conn, "select owner from later").unwrap(),
        ["t1"]
    );
}

#[test]
fn adopting_needs_the_mode_and_a_tenant_schema() {
    let db = test_database!();
    let mut conn = db.connect();
    let s = SchemaName::new("public").unwrap();
    assert!(matches!(
        adopt_roles(&mut conn, &Config::default(), std::slice::from_ref(&s)),
        Err(Error::Config(_))
    ));
    let roles = TestRoles::new(&db);
    let config = Config::builder()
        .tenant_roles(roles.tenant_roles())
        .build()
        .unwrap();
    let out = adopt_roles(&mut conn, &config, &[s]).unwrap();
    assert!(matches!(out[0].1, Err(Error::Config(_))));
    let missing = SchemaName::new("nobody").unwrap();
    let out = adopt_roles(&mut conn, &config, &[missing]).unwrap();
    assert!(matches!(out[0].1, Err(Error::SchemaNotFound { .. })));
    assert_eq!(
        count(
            &mut conn,
            &format!(
                "select count(*) as n from pg_roles where rolname like '{}%'",
                roles.prefix()
            )
        ),
        0
    );
}

/// Runs the embedded CLI; its output, and whether it succeeded.
fn cli(
    app: &pgschemas_diesel::cli::App,
    args: &[&str],
) -> (pgschemas_diesel::cli::Outcome, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let args = std::iter::once("manage").chain(args.iter().copied());
    let outcome = pgschemas_diesel::cli::run_from(app, args, &mut out, &mut err);
    (
        outcome,
        format!(
            "{}{}",
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&err)
        ),
    )
}

#[test]
fn the_cli_creates_migrates_drops_and_adopts_as_the_ddl_role() {
    use pgschemas_diesel::cli::{App, Outcome};
    let s = Setup::new(test_database!(), &[]);
    let app = App::builder(s.config.clone(), TENANT)
        .default_models()
        .database_url(s.roles.ddl_url())
        .build();
    let ok = |args: &[&str]| {
        let (outcome, text) = cli(&app, args);
        assert_eq!(outcome, Outcome::Success, "{args:?}: {text}");
        text
    };
    ok(&["migrate"]);
    ok(&["create-tenant", "acme", "--domain", "acme.localhost"]);
    ok(&["create-tenant", "globex", "--domain", "globex.localhost"]);
    let mut admin = s.admin();
    assert_eq!(state(&mut admin, &s.roles, "acme"), (true, true));
    let pool = s.app_pool(1);
    let mut conn = pool.scope(&"acme").unwrap();
    assert_eq!(who(&mut conn).0, format!("{}acme", s.roles.prefix()));
    assert!(is_denied(&mut conn, "select owner from globex.orders"));
    drop(conn);
    ok(&["migrate"]);
    ok(&["drop-tenant", "globex", "--force"]);
    assert_eq!(state(&mut admin, &s.roles, "globex"), (false, false));
    // A tenant whose schema was made without its role (as before the mode), adopted.
    admin
        .batch_execute(
            "create schema legacy; create table legacy.orders (id serial primary key, owner text not null);
             insert into legacy.orders (owner) values ('legacy');
             insert into tenants (schema_name, name) values ('legacy', 'Legacy')",
        )
        .unwrap();
    assert!(matches!(
        pool.scope(&"legacy"),
        Err(Error::TenantRoleMissing { .. })
    ));
    let admin_app = App::builder(s.config.clone(), TENANT)
        .default_models()
        .database_url(s.db.url())
        .build();
    let (outcome, text) = cli(&admin_app, &["adopt-roles"]);
    assert_eq!(outcome, Outcome::Success, "{text}");
    assert!(
        text.contains("1 created, 1 already there, 0 failed"),
        "{text}"
    );
    let mut conn = pool.scope(&"legacy").unwrap();
    assert_eq!(
        owners(&mut conn, "select owner from orders").unwrap(),
        ["legacy"]
    );
    drop(conn);
    let (outcome, text) = cli(&admin_app, &["adopt-roles"]);
    assert_eq!(outcome, Outcome::Success, "{text}");
    assert!(text.contains("0 created, 2 already there"), "{text}");
}

/// A DDL role whose name has upper case (quoted, kept as written): adopting an existing
/// schema makes that role the owner of its objects, not a role of the folded name.
#[test]
fn adopting_with_a_ddl_role_named_in_upper_case_gives_it_the_objects() {
    struct Dropped(PgConnection, Vec<String>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            for r in self.1.iter().rev() {
                let _ = self
                    .0
                    .batch_execute(&format!("drop owned by \"{r}\"; drop role \"{r}\""));
            }
        }
    }
    let db = test_database!();
    let pid = std::process::id();
    let (ddl, app, prefix) = (
        format!("Ddl{pid}"),
        format!("app{pid}_u"),
        format!("ru{pid}-"),
    );
    let mut admin = db.connect();
    admin
        .batch_execute(&format!(
            "create role \"{ddl}\" login createrole; create role \"{app}\" login noinherit;
             create schema t1; create table t1.orders (id serial primary key);"
        ))
        .unwrap();
    let mut guard = Dropped(db.connect(), vec![ddl.clone(), app.clone()]);
    let roles = pgschemas_diesel::roles::TenantRoles::new(&ddl)
        .and_then(|r| r.template(&format!("{prefix}{{schema}}")))
        .and_then(|r| r.login_role(&app))
        .unwrap();
    let config = Config::builder().tenant_roles(roles).build().unwrap();
    guard.1.insert(0, format!("{prefix}t1"));
    let adopted = adopt_roles(&mut admin, &config, &[SchemaName::new("t1").unwrap()]).unwrap();
    assert!(matches!(adopted[0].1, Ok(Adopted::Created)), "{adopted:?}");
    #[derive(QueryableByName)]
    struct Owner {
        #[diesel(sql_type = Text)]
        owner: String,
    }
    let owner: Owner = diesel::sql_query(
        "select pg_get_userbyid(relowner)::text as owner from pg_class where oid = 't1.orders'::regclass",
    )
    .get_result(&mut admin)
    .unwrap();
    assert_eq!(owner.owner, ddl);
}
