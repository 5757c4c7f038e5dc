//! Per-tenant database roles: PostgreSQL itself refuses what lies outside the tenant a
//! checkout serves. Every test runs the application as a `NOINHERIT` login that is a member of
//! every tenant role, and the DDL work as the DDL role, on a real server; which role and path
//! a connection has is read from the server.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use diesel::sql_types::Text;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use pgschemas_diesel::provision::Provisioner;
use pgschemas_diesel::roles::{LoginProblem, TenantRoles};
use pgschemas_diesel::testing::{TestDatabase, TestRoles};
use pgschemas_diesel::{Config, Error, TenantPool, test_database};

pub(crate) const TENANT: EmbeddedMigrations = embed_migrations!("../tests/migrations/roles_tenant");

/// `orders`, then a migration that fails.
pub(crate) const FAILING: EmbeddedMigrations =
    embed_migrations!("../tests/migrations/roles_failing");

/// A database with roles, two tenants `a` and `b` provisioned as the DDL role, each with one
/// row in `orders` naming it.
pub(crate) struct Setup {
    pub(crate) config: Config,
    pub(crate) roles: TestRoles,
    /// Dropped last: the roles go first.
    pub(crate) db: TestDatabase,
}

impl Setup {
    pub(crate) fn new(db: TestDatabase, tenants: &[&str]) -> Self {
        Self::with(db, tenants, "", |r| r)
    }

    /// [`new`](Self::new), with every checkout also proving the session's prepared
    /// statements (`verify_prepared_statements`).
    pub(crate) fn verifying(db: TestDatabase, tenants: &[&str]) -> Self {
        Self::build(db, tenants, "", |r| r, true)
    }

    /// [`new`](Self::new), with `shared_sql` run as the DDL role first and the roles mode
    /// changed by `roles`.
    pub(crate) fn with(
        db: TestDatabase,
        tenants: &[&str],
        shared_sql: &str,
        roles: impl FnOnce(TenantRoles) -> TenantRoles,
    ) -> Self {
        Self::build(db, tenants, shared_sql, roles, false)
    }

    fn build(
        db: TestDatabase,
        tenants: &[&str],
        shared_sql: &str,
        roles: impl FnOnce(TenantRoles) -> TenantRoles,
        verify_prepared: bool,
    ) -> Self {
        let fixture = TestRoles::new(&db);
        let config = Config::builder()
            .tenant_roles(roles(fixture.tenant_roles()))
            .verify_prepared_statements(verify_prepared)
            .build()
            .expect("config");
        let roles = fixture;
        if !shared_sql.is_empty() {
            PgConnection::establish(&roles.ddl_url())
                .expect("ddl login")
                .batch_execute(shared_sql)
                .expect("shared sql");
        }
        let me = Self { config, roles, db };
        let provisioner = me.provisioner();
        let mut ddl = me.ddl_connection();
        for t in tenants {
            provisioner
                .create_tenant(&mut ddl, t, |_| Ok(()))
                .unwrap_or_else(|e| panic!("provision {t}: {}", e.report()));
            ddl.batch_execute(&format!("insert into {t}.orders (owner) values ('{t}')"))
                .expect("seed");
        }
        me
    }

    pub(crate) fn provisioner(&self) -> Provisioner {
        Provisioner::builder(self.config.clone(), TENANT)
            .build()
            .expect("provisioner")
    }

    /// A superuser's connection to the database.
    pub(crate) fn admin(&self) -> PgConnection {
        self.db.connect()
    }

    pub(crate) fn ddl_connection(&self) -> PgConnection {
        PgConnection::establish(&self.roles.ddl_url()).expect("ddl login")
    }

    /// The application's pool, of `size` connections.
    pub(crate) fn app_pool(&self, size: u32) -> TenantPool {
        TenantPool::with_builder(
            self.roles.app_url(),
            self.config.clone(),
            r2d2::Pool::builder()
                .max_size(size)
                .connection_timeout(Duration::from_secs(10)),
        )
        .expect("app pool")
    }
}

#[derive(QueryableByName, Debug)]
struct Who {
    #[diesel(sql_type = Text)]
    role: String,
    #[diesel(sql_type = Text)]
    path: String,
}

/// The role and path the server reports for the session.
pub(crate) fn who(conn: &mut PgConnection) -> (String, String) {
    let w: Who = diesel::sql_query(
        "select current_user::text as role, current_setting('search_path') as path",
    )
    .get_result(conn)
    .expect("who");
    (w.role, w.path)
}

#[derive(QueryableByName)]
struct Owner {
    #[diesel(sql_type = Text)]
    owner: String,
}

/// The owners of the rows `sql` selects.
pub(crate) fn owners(conn: &mut PgConnection, sql: &str) -> Result<Vec<String>, DieselError> {
    diesel::sql_query(sql)
        .load::<Owner>(conn)
        .map(|v| v.into_iter().map(|o| o.owner).collect())
}

#[test]
fn a_tenant_checkout_runs_as_its_role_and_names_of_another_tenant_are_refused() {
    let s = Setup::new(test_database!(), &["a", "b"]);
    let pool = s.app_pool(1);
    let mut conn = pool.scope(&"a").expect("scope a");
    let prefix = s.roles.prefix();
    assert_eq!(
        who(&mut conn),
        (format!("{prefix}a"), r#""a", "public", pg_temp"#.to_owned())
    );
    assert_eq!(
        owners(&mut conn, "select owner from orders").unwrap(),
        ["a"]
    );
    assert!(owners(&mut conn, "select owner from b.orders").is_err());
    assert!(is_denied(&mut conn, "select owner from b.orders"));
    assert!(is_denied(
        &mut conn,
        "insert into b.orders (owner) values ('a')"
    ));
    // The path set to b by the caller's own SQL: PostgreSQL skips a schema the role may not
    // use, so `orders` names no table at all (undefined_table), and b.orders is refused.
    conn.batch_execute("set search_path to b, public").unwrap();
    assert!(owners(&mut conn, "select owner from orders").is_err());
    assert_eq!(sql_state(&mut conn, "select owner from orders"), "42P01");
    assert!(is_denied(&mut conn, "select owner from b.orders"));
    drop(conn);
    // The next checkout has the right role and path again.
    let mut conn = pool.scope(&"b").expect("scope b");
    assert_eq!(
        owners(&mut conn, "select owner from orders").unwrap(),
        ["b"]
    );
    assert!(is_denied(&mut conn, "select owner from a.orders"));
}

/// Whether `sql` fails with `insufficient_privilege` (42501).
pub(crate) fn is_denied(conn: &mut PgConnection, sql: &str) -> bool {
    sql_state(conn, sql) == "42501"
}

/// The SQLSTATE `sql` ends with (`00000` when it succeeds), as the server gives it (`GET
/// STACKED DIAGNOSTICS` in a `DO` block run as the same role), never read from a message.
pub(crate) fn sql_state(conn: &mut PgConnection, sql: &str) -> String {
    #[derive(QueryableByName)]
    struct State {
        #[diesel(sql_type = Text)]
        state: String,
    }
    let block = format!(
        "DO $t$ DECLARE s text; BEGIN BEGIN EXECUTE {q}; s := '00000'; \
         EXCEPTION WHEN OTHERS THEN GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE; END; \
         PERFORM pg_catalog.set_config('pgschemas_test.state', s, false); END $t$",
        q = quote(sql)
    );
    conn.batch_execute(&block).expect("run the probe");
    let st: State = diesel::sql_query("select current_setting('pgschemas_test.state') as state")
        .get_result(conn)
        .expect("read state");
    st.state
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[test]
fn the_neutral_path_runs_as_the_login_and_reads_no_tenant_table() {
    let s = Setup::new(test_database!(), &["a", "b"]);
    let pool = s.app_pool(1);
    let mut conn = pool.get().expect("neutral");
    assert_eq!(who(&mut conn).0, s.roles.app());
    for t in ["a", "b"] {
        assert!(
            is_denied(&mut conn, &format!("select owner from {t}.orders")),
            "{t}"
        );
    }
}

#[test]
fn a_reset_role_or_set_role_by_the_caller_is_undone_at_the_next_checkout() {
    let s = Setup::new(test_database!(), &["a", "b"]);
    let pool = s.app_pool(1);
    let prefix = s.roles.prefix();
    {
        let mut conn = pool.scope(&"a").unwrap();
        conn.batch_execute("reset role").unwrap();
        assert_eq!(who(&mut conn).0, s.roles.app());
        // As the login: no tenant's table.
        assert!(is_denied(&mut conn, "select owner from a.orders"));
    }
    {
        let mut conn = pool.scope(&"a").unwrap();
        assert_eq!(who(&mut conn).0, format!("{prefix}a"));
        // The login is a member of every tenant role: a caller can switch to b's role inside
        // its checkout (PostgreSQL 15 has no per-grant SET option; see docs/isolation.md).
        conn.batch_execute(&format!("set role \"{prefix}b\""))
            .unwrap();
        assert_eq!(
            owners(&mut conn, "select owner from b.orders").unwrap(),
            ["b"]
        );
    }
    let mut conn = pool.scope(&"a").unwrap();
    assert_eq!(who(&mut conn).0, format!("{prefix}a"));
    assert!(is_denied(&mut conn, "select owner from b.orders"));
    drop(conn);
    let mut conn = pool.get().unwrap();
    assert_eq!(who(&mut conn).0, s.roles.app());
}

#[test]
fn the_transaction_form_sets_the_role_for_the_transaction_only() {
    let s = Setup::new(test_database!(), &["a", "b"]);
    let pool = s.app_pool(1);
    let prefix = s.roles.prefix().to_owned();
    pool.transaction(&"a", |conn| {
        assert_eq!(who(conn).0, format!("{prefix}a"));
        assert_eq!(owners(conn, "select owner from orders").unwrap(), ["a"]);
        assert!(is_denied(conn, "select owner from b.orders"));
        Ok::<_, Error>(())
    })
    .unwrap();
    // A raw COMMIT inside the transaction ends the role with it: the login, empty path (and
    // the form reports that its transaction ended early).
    let ended = pool.transaction(&"a", |conn| {
        conn.batch_execute("commit").unwrap();
        assert_eq!(who(conn), (s.roles.app().to_owned(), String::new()));
        assert!(is_denied(conn, "select owner from a.orders"));
        Ok::<_, Error>(())
    });
    assert!(ended.is_err());
    pool.transaction(&"b", |conn| {
        assert_eq!(owners(conn, "select owner from orders").unwrap(), ["b"]);
        Ok::<_, Error>(())
    })
    .unwrap();
}

#[test]
fn nested_scopes_switch_the_role_and_restore_it() {
    let s = Setup::new(test_database!(), &["a", "b"]);
    let pool = s.app_pool(1);
    let prefix = s.roles.prefix();
    let mut outer = pool.scope(&"a").unwrap();
    {
        let mut inner = outer.nested(&"b").unwrap();
        assert_eq!(who(&mut inner).0, format!("{prefix}b"));
        assert_eq!(
            owners(&mut inner, "select owner from orders").unwrap(),
            ["b"]
        );
        inner.finish().unwrap();
    }
    assert_eq!(who(&mut outer).0, format!("{prefix}a"));
    drop(outer);
    let mut neutral = pool.get().unwrap();
    {
        let mut inner = neutral.nested(&"b").unwrap();
        assert_eq!(who(&mut inner).0, format!("{prefix}b"));
    }
    assert_eq!(who(&mut neutral).0, s.roles.app());
}

#[test]
fn a_tenant_without_its_role_is_refused_and_nothing_falls_through() {
    let s = Setup::new(test_database!(), &["a"]);
    s.ddl_connection()
        .batch_execute("create schema c; create table c.orders (owner text)")
        .unwrap();
    let pool = s.app_pool(1);
    let e = pool.scope(&"c").unwrap_err();
    assert!(
        matches!(e, Error::TenantRoleMissing { ref schema, .. } if schema == "c"),
        "{e}"
    );
    let e = pool.transaction(&"c", |_| Ok::<_, Error>(())).unwrap_err();
    assert!(matches!(e, Error::TenantRoleMissing { .. }), "{e}");
    // The connection is fine for the next caller.
    let mut conn = pool.scope(&"a").unwrap();
    assert_eq!(
        owners(&mut conn, "select owner from orders").unwrap(),
        ["a"]
    );
}

#[test]
fn the_application_login_is_checked_when_the_pool_starts() {
    let db = test_database!();
    let roles = TestRoles::new(&db);
    let config = Config::builder()
        .tenant_roles(roles.tenant_roles())
        .build()
        .unwrap();
    let mut admin = db.connect();
    let app = format!("\"{}\"", roles.app());
    let cases = [
        (
            format!("alter role {app} inherit"),
            LoginProblem::Inherits,
            format!("alter role {app} noinherit"),
        ),
        (
            format!("alter role {app} bypassrls"),
            LoginProblem::BypassRls,
            format!("alter role {app} nobypassrls"),
        ),
        (
            format!("alter role {app} superuser"),
            LoginProblem::Superuser,
            format!("alter role {app} nosuperuser"),
        ),
        (
            format!("grant \"{}\" to {app}", roles.ddl()),
            LoginProblem::MemberOfDdl,
            format!("revoke \"{}\" from {app}", roles.ddl()),
        ),
    ];
    for (break_it, problem, mend) in cases {
        admin.batch_execute(&break_it).unwrap();
        let e = TenantPool::new(roles.app_url(), config.clone()).unwrap_err();
        assert!(
            matches!(e, Error::Login { problem: p, .. } if p == problem),
            "{break_it}: {e}"
        );
        admin.batch_execute(&mend).unwrap();
    }
    TenantPool::new(roles.app_url(), config.clone()).expect("a sound login");
    // The DDL pool's login must be able to act as the DDL role; the app's cannot.
    let e = TenantPool::ddl(roles.app_url(), config.clone()).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Login {
                problem: LoginProblem::CannotActAsDdl,
                ..
            }
        ),
        "{e}"
    );
    TenantPool::ddl(roles.ddl_url(), config).expect("ddl pool");
}

#[test]
fn a_table_a_later_migration_adds_is_reachable_by_its_tenant_only() {
    const MORE: EmbeddedMigrations = embed_migrations!("../tests/migrations/roles_tenant_more");
    let s = Setup::new(test_database!(), &["a", "b"]);
    let mut ddl = s.ddl_connection();
    for t in ["a", "b"] {
        let schema = pgschemas_diesel::SchemaName::new(t).unwrap();
        let applied =
            pgschemas_diesel::migrate::migrate_schema(&mut ddl, &s.config, &schema, &MORE).unwrap();
        assert_eq!(applied.len(), 1);
    }
    let pool = s.app_pool(1);
    let mut conn = pool.scope(&"a").unwrap();
    assert_eq!(
        owners(&mut conn, "select owner from invoices").unwrap(),
        ["a"]
    );
    diesel::sql_query("insert into invoices default values")
        .execute(&mut *conn)
        .expect("its sequence is usable too");
    assert!(is_denied(&mut conn, "select owner from b.invoices"));
    drop(conn);
    let mut conn = pool.scope(&"b").unwrap();
    assert_eq!(
        owners(&mut conn, "select owner from invoices").unwrap(),
        ["b"]
    );
    assert!(is_denied(&mut conn, "select owner from a.invoices"));
}
