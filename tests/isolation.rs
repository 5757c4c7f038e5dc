//! The attack matrix: every way a caller's code, another session or the server can change a
//! connection's state, run inside a scope or a transaction of tenant `ta` on a pool of size 1;
//! then the next checkouts of `ta`, `tb` and the neutral path each read exactly their own rows
//! and find nothing the attack left behind. `docs/isolation.md` maps each threat to its test.

use std::time::{SystemTime, UNIX_EPOCH};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text};
use pgschemas_diesel::testing::TestDatabase;
use pgschemas_diesel::{Config, Error, SchemaConnection, TenantPool, test_database};

/// Two tenants and the shared schema, each with an `orders` table holding one row that names
/// its schema, so that any read from the wrong place shows.
pub fn three_orders(conn: &mut PgConnection) {
    conn.batch_execute(
        "create table public.orders (tenant text not null); insert into public.orders values ('public');
         create schema ta; create table ta.orders (tenant text not null); insert into ta.orders values ('ta');
         create schema tb; create table tb.orders (tenant text not null); insert into tb.orders values ('tb');
         create sequence public.ids;",
    )
    .expect("create tenants");
}

/// Roles made for one test (roles are server-wide), dropped however the test ends.
pub struct Roles {
    admin: PgConnection,
    names: Vec<String>,
}

impl Roles {
    pub fn new(db: &TestDatabase) -> Self {
        Self {
            admin: db.connect(),
            names: Vec::new(),
        }
    }

    /// Creates a role named `<prefix>_<unique>` with `attributes` and returns its name.
    pub fn create(&mut self, prefix: &str, attributes: &str) -> String {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("{prefix}_{}_{nanos}", std::process::id());
        self.admin
            .batch_execute(&format!("create role {name} {attributes}"))
            .unwrap();
        self.names.push(name.clone());
        name
    }
}

impl Drop for Roles {
    fn drop(&mut self) {
        for r in self.names.iter().rev() {
            let _ = self
                .admin
                .batch_execute(&format!("drop owned by {r}; drop role {r}"));
        }
    }
}

/// `url` with its user replaced by `role` (no password: the test server trusts local roles).
pub fn url_as(url: &str, role: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let host = rest.split_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{role}@{host}")
}

/// A login role that is not a superuser, with what an application role needs on `ta`, `tb`
/// and `public`, and a pool of size 1 connecting as it.
pub fn app_pool(db: &TestDatabase, roles: &mut Roles) -> (TenantPool, String) {
    let login = roles.create("iso_app", "login");
    db.connect()
        .batch_execute(&format!(
            "grant usage on schema ta, tb to {login};
             grant select, insert on ta.orders, tb.orders, public.orders to {login};
             grant usage on sequence public.ids to {login};"
        ))
        .unwrap();
    let pool = TenantPool::with_builder(
        url_as(db.url(), &login),
        Config::default(),
        r2d2::Pool::builder()
            .max_size(1)
            .connection_timeout(std::time::Duration::from_secs(10)),
    )
    .expect("pool");
    (pool, login)
}

diesel::table! {
    orders (tenant) {
        tenant -> Text,
    }
}

/// A pool of size 1 connecting as the test server's (superuser) role.
fn superuser_pool(url: &str) -> TenantPool {
    TenantPool::with_builder(url, Config::default(), r2d2::Pool::builder().max_size(1)).unwrap()
}

/// The backend serving `conn`.
fn pid(conn: &mut PgConnection) -> i32 {
    diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>(
        "pg_backend_pid()",
    ))
    .get_result(conn)
    .unwrap()
}

/// What a checkout sees: its rows and everything an earlier user could have left behind
/// (shared with the async pool's tests).
#[derive(QueryableByName, Debug, PartialEq)]
pub(crate) struct Seen {
    #[diesel(sql_type = Text)]
    pub(crate) path: String,
    #[diesel(sql_type = Text)]
    pub(crate) role: String,
    #[diesel(sql_type = Text)]
    pub(crate) session_role: String,
    #[diesel(sql_type = Text)]
    pub(crate) app_tenant: String,
    #[diesel(sql_type = BigInt)]
    pub(crate) cursors: i64,
    #[diesel(sql_type = BigInt)]
    pub(crate) listening: i64,
    #[diesel(sql_type = BigInt)]
    pub(crate) advisory_locks: i64,
    #[diesel(sql_type = Bool)]
    pub(crate) temp_orders: bool,
    #[diesel(sql_type = Text)]
    pub(crate) read_only: String,
    #[diesel(sql_type = Text)]
    pub(crate) statement_timeout: String,
    #[diesel(sql_type = Text)]
    pub(crate) time_zone: String,
    /// Whether a transaction block is open: [`SAVEPOINT_PROBE`] succeeds only inside one.
    #[diesel(sql_type = Bool)]
    pub(crate) in_transaction: bool,
    #[diesel(sql_type = Nullable<Array<Text>>)]
    pub(crate) rows: Option<Vec<String>>,
}

/// The query behind [`Seen`]; `in_transaction` is filled in by [`SAVEPOINT_PROBE`].
pub(crate) const SEEN_SQL: &str = "select current_setting('search_path') as path, current_user::text as role,
        session_user::text as session_role,
        coalesce(current_setting('app.tenant', true), '') as app_tenant,
        (select count(*) from pg_cursors where name <> '') as cursors,
        (select count(*) from pg_listening_channels()) as listening,
        (select count(*) from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()) as advisory_locks,
        to_regclass('pg_temp.orders') is not null as temp_orders,
        current_setting('default_transaction_read_only') as read_only,
        current_setting('statement_timeout') as statement_timeout,
        current_setting('TimeZone') as time_zone,
        false as in_transaction,
        (select array_agg(tenant order by tenant) from orders) as rows";

/// Succeeds only inside a transaction block.
pub(crate) const SAVEPOINT_PROBE: &str = "savepoint seen; release savepoint seen";

/// The session every checkout of `tenant` (whose path is `path`) must report, logged in as
/// `login`.
pub(crate) fn clean(path: &str, login: &str, tenant: &str, in_transaction: bool) -> Seen {
    Seen {
        path: path.to_owned(),
        role: login.to_owned(),
        session_role: login.to_owned(),
        app_tenant: String::new(),
        cursors: 0,
        listening: 0,
        advisory_locks: 0,
        temp_orders: false,
        read_only: "off".into(),
        statement_timeout: "0".into(),
        time_zone: "UTC".into(),
        in_transaction,
        rows: Some(vec![tenant.to_owned()]),
    }
}

fn seen(conn: &mut PgConnection) -> QueryResult<Seen> {
    let seen = diesel::sql_query(SEEN_SQL).get_result::<Seen>(conn)?;
    let in_transaction = conn.batch_execute(SAVEPOINT_PROBE).is_ok();
    Ok(Seen {
        in_transaction,
        ..seen
    })
}

/// Checks the next checkouts after an attack: `ta` and `tb` in both forms, and the neutral
/// path, each see exactly their own rows and a clean session.
fn assert_clean(pool: &TenantPool, login: &str, attack: &str) {
    let expect = |tenant: &str, got: Seen, form: &str| {
        let path = pool.config().search_path(&tenant).unwrap();
        let want = clean(
            path.as_sql_value(),
            login,
            tenant,
            form == "transaction form",
        );
        assert_eq!(got, want, "after `{attack}`: the {form} of {tenant}");
    };
    for tenant in ["ta", "tb", "public"] {
        let mut scope = pool
            .scope(&tenant)
            .unwrap_or_else(|e| panic!("after `{attack}`: scope of {tenant}: {e}"));
        expect(tenant, seen(&mut scope).unwrap(), "session form");
        // A query from Diesel's statement cache (prepared once per connection) still works:
        // a `DISCARD ALL` or `DEALLOCATE ALL` costs the connection, not the next caller.
        let cached: Vec<String> = orders::table
            .select(orders::tenant)
            .load(&mut *scope)
            .unwrap_or_else(|e| panic!("after `{attack}`: cached query in {tenant}: {e}"));
        assert_eq!(cached, [tenant], "after `{attack}`");
        assert!(
            diesel::sql_query("select lastval()")
                .execute(&mut *scope)
                .is_err(),
            "after `{attack}`: no sequence value survives the checkout"
        );
        drop(scope);
        let got = pool
            .transaction(&tenant, |conn| seen(conn).map_err(Error::from))
            .unwrap_or_else(|e| panic!("after `{attack}`: transaction of {tenant}: {e}"));
        expect(tenant, got, "transaction form");
    }
}

/// The attacks: each runs on a connection of tenant `ta`; what it returns does not matter.
pub fn attacks(other_role: &str) -> Vec<(String, String)> {
    let sql = |s: &str| s.to_owned();
    vec![
        (sql("raw SET search_path"), sql("set search_path = tb")),
        (
            sql("set_config inside a SELECT"),
            sql("select set_config('search_path', 'tb', false)"),
        ),
        (sql("RESET ALL"), sql("reset all")),
        (sql("DISCARD ALL"), sql("discard all")),
        (sql("DEALLOCATE ALL"), sql("deallocate all")),
        (sql("BEGIN left open"), sql("begin")),
        (
            sql("BEGIN left open after a path change"),
            sql("set search_path = tb; begin; set search_path = public"),
        ),
        (sql("a transaction left aborted"), sql("begin; select 1/0")),
        (
            sql("a temporary table shadowing the tenant's"),
            sql("create temp table orders as select * from orders"),
        ),
        (
            sql("a temporary table in pg_temp on the path"),
            sql(
                "create temp table orders (tenant text); insert into pg_temp.orders values ('temp'); set search_path = pg_temp, tb",
            ),
        ),
        (sql("SET ROLE"), format!("set role {other_role}")),
        (
            sql("SET SESSION AUTHORIZATION"),
            format!("set session authorization {other_role}"),
        ),
        (sql("a custom app.* setting"), sql("set app.tenant = 'ta'")),
        (
            sql("a cursor WITH HOLD"),
            sql("declare c cursor with hold for select * from orders"),
        ),
        (sql("LISTEN"), sql("listen tenant_events")),
        (
            sql("a session advisory lock"),
            sql("select pg_advisory_lock(42)"),
        ),
        (
            sql("read-only by default"),
            sql("set default_transaction_read_only = on"),
        ),
        (sql("a statement timeout"), sql("set statement_timeout = 1")),
        (
            sql("another time zone"),
            sql("set time zone 'Europe/Berlin'"),
        ),
        (sql("a sequence value"), sql("select nextval('public.ids')")),
        (
            sql("SET SESSION CHARACTERISTICS"),
            sql("set session characteristics as transaction read only"),
        ),
    ]
}

/// Every attack inside a scope of `ta`, then the next checkouts.
#[test]
fn no_attack_inside_a_scope_reaches_the_next_checkout() {
    let db = test_database!();
    three_orders(&mut db.connect());
    let mut roles = Roles::new(&db);
    let (pool, login) = app_pool(&db, &mut roles);
    let other = roles.create("iso_other", "");
    db.connect()
        .batch_execute(&format!(
            "grant {other} to {login}; grant usage on schema tb to {other}; grant select on tb.orders to {other};"
        ))
        .unwrap();
    for (attack, sql) in attacks(&other) {
        let mut scope = pool.scope(&"ta").unwrap();
        let _ = scope.batch_execute(&sql);
        drop(scope);
        assert_clean(&pool, &login, &attack);
    }
}

/// The same attacks inside the transaction form (some fail there, such as `DISCARD ALL`; the
/// closure then fails and rolls back), and then the same checks.
#[test]
fn no_attack_inside_a_transaction_reaches_the_next_checkout() {
    let db = test_database!();
    three_orders(&mut db.connect());
    let mut roles = Roles::new(&db);
    let (pool, login) = app_pool(&db, &mut roles);
    let other = roles.create("iso_other", "");
    db.connect()
        .batch_execute(&format!(
            "grant {other} to {login}; grant usage on schema tb to {other}; grant select on tb.orders to {other};"
        ))
        .unwrap();
    for (attack, sql) in attacks(&other) {
        for commit in [true, false] {
            let _ = pool.transaction(&"ta", |conn| {
                conn.batch_execute(&sql)?;
                if commit {
                    Ok(())
                } else {
                    Err(Error::Config("the closure fails".into()))
                }
            });
            assert_clean(&pool, &login, &format!("{attack}, commit {commit}"));
        }
    }
}

/// Superuser-only attacks (`SET SESSION AUTHORIZATION` to any role) on a pool that connects
/// as a superuser: the next checkout runs as the login role again.
#[test]
fn set_session_authorization_does_not_survive_as_superuser() {
    let db = test_database!();
    three_orders(&mut db.connect());
    let mut roles = Roles::new(&db);
    let other = roles.create("iso_other", "");
    let pool = superuser_pool(db.url());
    let mut scope = pool.scope(&"ta").unwrap();
    let login: String = diesel::select(diesel::dsl::sql::<Text>("current_user::text"))
        .get_result(&mut *scope)
        .unwrap();
    scope
        .batch_execute(&format!("set session authorization {other}"))
        .unwrap();
    drop(scope);
    for tenant in ["ta", "tb"] {
        let mut scope = pool.scope(&tenant).unwrap();
        let got = seen(&mut scope).unwrap();
        assert_eq!((got.role, got.session_role), (login.clone(), login.clone()));
        assert_eq!(got.rows, Some(vec![tenant.to_owned()]));
    }
}

/// The crate's own switches used on a scope through `DerefMut`: the pool does not believe
/// it still has the path it set.
#[test]
fn the_crates_own_activate_inside_a_scope_does_not_survive() {
    let db = test_database!();
    three_orders(&mut db.connect());
    let pool = superuser_pool(db.url());
    let mut scope = pool.scope(&"ta").unwrap();
    scope.activate(&"tb").unwrap();
    drop(scope);
    let mut scope = pool.scope(&"ta").unwrap();
    assert_eq!(seen(&mut scope).unwrap().rows, Some(vec!["ta".to_owned()]));
    let path = pool.config().search_path(&"tb").unwrap();
    scope.set_search_path(&path).unwrap();
    drop(scope);
    let mut scope = pool.scope(&"ta").unwrap();
    assert_eq!(seen(&mut scope).unwrap().rows, Some(vec!["ta".to_owned()]));
}

/// A temporary table never shadows a tenant's table, even within one checkout: `pg_temp` is
/// last on every path.
#[test]
fn a_temporary_table_never_shadows_a_tenant_table() {
    let db = test_database!();
    three_orders(&mut db.connect());
    let pool = superuser_pool(db.url());
    let mut scope = pool.scope(&"ta").unwrap();
    scope
        .batch_execute("create temp table orders as select * from orders")
        .unwrap();
    {
        let mut inner = scope.nested(&"tb").unwrap();
        assert_eq!(seen(&mut inner).unwrap().rows, Some(vec!["tb".to_owned()]));
    }
    drop(scope);
    let mut scope = pool.scope(&"tb").unwrap();
    let got = seen(&mut scope).unwrap();
    assert!(!got.temp_orders, "the temporary table is gone");
    assert_eq!(got.rows, Some(vec!["tb".to_owned()]));
}

/// A schema dropped from elsewhere while a pooled connection is warm on it: the next scope of
/// it is an error, and nothing falls through to `public`.
#[test]
fn a_schema_dropped_under_a_warm_connection_is_not_found() {
    let db = test_database!();
    three_orders(&mut db.connect());
    let pool = superuser_pool(db.url());
    let warm = {
        let mut scope = pool.scope(&"ta").unwrap();
        assert_eq!(seen(&mut scope).unwrap().rows, Some(vec!["ta".to_owned()]));
        pid(&mut scope)
    };
    db.connect()
        .batch_execute("drop schema ta cascade")
        .unwrap();
    let err = pool.scope(&"ta").unwrap_err();
    assert!(
        matches!(&err, Error::SchemaNotFound { schema } if schema == "ta"),
        "{err}"
    );
    let err = pool
        .transaction(&"ta", |conn| {
            diesel::sql_query("insert into orders values ('lost')")
                .execute(conn)
                .map_err(Error::from)
        })
        .unwrap_err();
    assert!(matches!(&err, Error::SchemaNotFound { .. }), "{err}");
    let mut conn = pool.get().unwrap();
    assert_eq!(
        pid(&mut conn),
        warm,
        "a missing schema does not cost the connection"
    );
    assert_eq!(
        seen(&mut conn).unwrap().rows,
        Some(vec!["public".to_owned()])
    );
}

/// A schema the login role may not use is refused, not skipped (PostgreSQL would skip it on
/// the path and serve `public`'s tables).
#[test]
fn a_schema_without_usage_is_refused() {
    let db = test_database!();
    three_orders(&mut db.connect());
    let mut roles = Roles::new(&db);
    let (pool, login) = app_pool(&db, &mut roles);
    assert_eq!(
        seen(&mut pool.scope(&"ta").unwrap()).unwrap().rows,
        Some(vec!["ta".to_owned()])
    );
    db.connect()
        .batch_execute(&format!("revoke usage on schema ta from {login}"))
        .unwrap();
    let err = pool.scope(&"ta").unwrap_err();
    assert!(
        matches!(&err, Error::SchemaNotUsable { schema, role } if schema == "ta" && *role == login),
        "{err}"
    );
    let err = pool.transaction(&"ta", |_| Ok::<_, Error>(())).unwrap_err();
    assert!(matches!(&err, Error::SchemaNotUsable { .. }), "{err}");
    assert_eq!(
        seen(&mut pool.scope(&"tb").unwrap()).unwrap().rows,
        Some(vec!["tb".to_owned()])
    );
}

/// A connection marked for discard is never handed out again, whatever succeeds on it after
/// the mark (Diesel clears its own error flag after any successful statement).
#[test]
fn a_discard_mark_sticks() {
    let db = test_database!();
    three_orders(&mut db.connect());
    let pool = superuser_pool(db.url());
    let mut scope = pool.scope(&"ta").unwrap();
    let marked = pid(&mut scope);
    {
        let mut inner = scope.nested(&"tb").unwrap();
        // Leave an aborted transaction behind Diesel's back: the restore fails.
        let _ = inner.batch_execute("begin; select 1/0");
        assert!(inner.finish().is_err());
    }
    assert!(scope.is_poisoned());
    // The caller goes on: statements succeed again on the connection...
    scope.batch_execute("rollback").unwrap();
    assert_eq!(seen(&mut scope).unwrap().rows, Some(vec!["tb".to_owned()]));
    assert!(
        scope.is_poisoned(),
        "the mark survives successful statements"
    );
    drop(scope);
    // ...and still, the connection never comes back.
    let mut conn = pool.scope(&"ta").unwrap();
    assert_ne!(pid(&mut conn), marked);
    assert_eq!(seen(&mut conn).unwrap().rows, Some(vec!["ta".to_owned()]));
}

/// A statement run after the caller ends the transaction form's transaction itself finds
/// no tenant's table, and no shared one: the session's own path is empty.
#[test]
fn statements_after_a_raw_commit_in_the_transaction_form_find_nothing() {
    let db = test_database!();
    three_orders(&mut db.connect());
    let pool = superuser_pool(db.url());
    // A previous checkout on tb leaves tb's session path behind.
    drop(pool.scope(&"tb").unwrap());
    let result = pool.transaction(&"ta", |conn| {
        diesel::sql_query("insert into orders values ('ta-1')").execute(conn)?;
        conn.batch_execute("commit")?;
        diesel::sql_query("insert into orders values ('after commit')")
            .execute(conn)
            .map_err(Error::from)
    });
    assert!(result.is_err(), "the insert after COMMIT must fail");
    let mut admin = db.connect();
    let all: Vec<String> = diesel::sql_query(
        "select tenant || ':' || t from (select 'ta' as tenant, tenant as t from ta.orders
         union all select 'tb', tenant from tb.orders union all select 'public', tenant from public.orders) x
         order by 1",
    )
    .load::<Row>(&mut admin)
    .unwrap()
    .into_iter()
    .map(|r| r.v)
    .collect();
    assert_eq!(all, ["public:public", "ta:ta", "ta:ta-1", "tb:tb"]);
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Text, column_name = "?column?")]
    v: String,
}

/// Every idle connection of a pool of 4 killed from another session: the next checkout is
/// served by a new connection, with a clean session, not refused for the dead ones.
#[test]
fn a_pool_whose_idle_backends_were_all_killed_still_hands_out_connections() {
    let db = test_database!();
    three_orders(&mut db.connect());
    let mut roles = Roles::new(&db);
    let (one, login) = app_pool(&db, &mut roles);
    drop(one);
    let pool = TenantPool::with_builder(
        url_as(db.url(), &login),
        Config::default(),
        r2d2::Pool::builder().max_size(4).min_idle(Some(0)),
    )
    .expect("pool");
    let mut scopes: Vec<_> = (0..4).map(|_| pool.scope(&"ta").unwrap()).collect();
    let pids: Vec<i32> = scopes.iter_mut().map(|s| pid(s)).collect();
    drop(scopes);
    for pid in pids {
        db.connect()
            .batch_execute(&format!("select pg_terminate_backend({pid}, 5000)"))
            .unwrap();
    }
    let mut scope = pool
        .scope(&"tb")
        .unwrap_or_else(|e| panic!("the killed idle connections were not replaced: {e}"));
    let path = pool.config().search_path(&"tb").unwrap();
    assert_eq!(
        seen(&mut scope).unwrap(),
        clean(path.as_sql_value(), &login, "tb", false)
    );
}
