//! Attacks on the per-tenant roles mode: what a previous user of a physical connection can
//! leave behind for the next checkout. Every test asserts the invariant; a failing test is a
//! break.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use pgschemas_diesel::{Error, test_database};

use crate::roles::{Setup, owners, who};

mod schema {
    diesel::table! {
        orders (id) {
            id -> Int4,
            owner -> Text,
        }
    }
    diesel::table! {
        plans (id) {
            id -> Int4,
            name -> Text,
        }
    }
}
use schema::{orders, plans};

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

/// The name of the statement Diesel cached on this session whose text mentions `needle`.
fn cached_statement(conn: &mut PgConnection, needle: &str) -> String {
    let rows: Vec<Name> = diesel::sql_query(
        "select name::text as name from pg_prepared_statements \
         where name like '\\_\\_diesel\\_stmt\\_%' and strpos(statement, $1) > 0",
    )
    .bind::<Text, _>(needle)
    .load(conn)
    .expect("pg_prepared_statements");
    assert_eq!(rows.len(), 1, "one cached statement mentions {needle}");
    rows.into_iter().next().unwrap().name
}

/// Rows of `table` (a qualified name), read by the superuser.
/// Replaces the statement Diesel cached on `conn` whose text mentions `needle` with `body`
/// (`DEALLOCATE`, then `PREPARE` under its name), as a tenant's own code could.
fn plant(conn: &mut PgConnection, needle: &str, body: &str) {
    let name = cached_statement(conn, needle);
    conn.batch_execute(&format!("DEALLOCATE {name}; PREPARE {name} AS {body}"))
        .expect("plant a statement");
}

/// A planted body that switches the session (for the transaction only when `local`) to
/// tenant a's role (`prefix` + `a`) and path, returning one text column `column`.
fn switch_to_a(prefix: &str, local: bool, column: &str) -> String {
    format!(
        "SELECT pg_catalog.set_config('role', '{prefix}a', {local}) || \
         pg_catalog.set_config('search_path', '\"a\", \"public\"', {local}) AS {column}"
    )
}

fn count(s: &Setup, sql: &str) -> i64 {
    crate::roles_lifecycle::count(&mut s.admin(), sql)
}

/// B's ordinary code: a cached DSL read of its orders, then an insert of a secret.
fn tenant_b_request(conn: &mut PgConnection) -> Vec<String> {
    let seen = orders::table
        .select(orders::owner)
        .order(orders::id)
        .load::<String>(conn)
        .unwrap_or_default();
    diesel::sql_query("insert into orders (owner) values ('b-secret')")
        .execute(conn)
        .ok();
    seen
}

/// Invariant 1 (session form). Tenant a's code, never running SET ROLE itself, replaces
/// Diesel's cached statement (visible in pg_prepared_statements) with one that switches
/// role and path to a. Tenant b's next checkout passes its proof, then b's first cached
/// query switches the session to a's role: b's secret lands in a's table.
#[test]
fn a_replaced_diesel_statement_switches_a_later_tenant_checkout_to_another_tenant() {
    let s = Setup::verifying(test_database!(), &["a", "b"]);
    let pool = s.app_pool(1);
    let p = s.roles.prefix().to_owned();
    {
        let mut b = pool.scope(&"b").unwrap();
        assert_eq!(tenant_b_request(&mut b), ["b"]);
    }
    {
        // Tenant a: its own checkout, no SET ROLE, no name of b anywhere.
        let mut a = pool.scope(&"a").unwrap();
        plant(&mut a, "\"orders\"", &switch_to_a(&p, false, "owner"));
    }
    let mut b = pool.scope(&"b").unwrap();
    assert_eq!(who(&mut b).0, format!("{p}b"), "b's checkout starts as b");
    tenant_b_request(&mut b);
    let (role, path) = who(&mut b);
    drop(b);
    let in_a = count(
        &s,
        "select count(*) as n from a.orders where owner = 'b-secret'",
    );
    assert_eq!(
        (role.as_str(), path.as_str(), in_a),
        (format!("{p}b").as_str(), r#""b", "public", pg_temp"#, 0),
        "b's checkout ran as another tenant's role and wrote into a's table"
    );
}

/// Invariant 1 (transaction form): the same replacement, planted inside a's transaction.
#[test]
fn a_replaced_diesel_statement_switches_a_later_transaction_to_another_tenant() {
    let s = Setup::verifying(test_database!(), &["a", "b"]);
    let pool = s.app_pool(1);
    let p = s.roles.prefix().to_owned();
    pool.transaction(&"b", |conn| Ok::<_, Error>(tenant_b_request(conn)))
        .unwrap();
    pool.transaction(&"a", |conn| {
        plant(conn, "\"orders\"", &switch_to_a(&p, true, "owner"));
        Ok::<_, Error>(())
    })
    .unwrap();
    let (role, _) = pool
        .transaction(&"b", |conn| {
            tenant_b_request(conn);
            Ok::<_, Error>(who(conn))
        })
        .unwrap();
    let in_a = count(
        &s,
        "select count(*) as n from a.orders where owner = 'b-secret'",
    );
    assert_eq!(
        (role, in_a),
        (format!("{p}b"), 0),
        "b's transaction ran as a's role and committed b's secret into a's table"
    );
}

/// Invariant 1, without any role switch at all: a's code plants a DELETE under the name of
/// b's cached read. b's next checkout runs it as b's role: b's rows are gone, and b's read
/// still returns them (from RETURNING), so b notices nothing.
#[test]
fn a_replaced_diesel_statement_lets_one_tenant_delete_another_tenants_rows() {
    let s = Setup::verifying(test_database!(), &["a", "b"]);
    let pool = s.app_pool(1);
    {
        let mut b = pool.scope(&"b").unwrap();
        assert_eq!(tenant_b_request(&mut b), ["b"]);
    }
    {
        let mut a = pool.scope(&"a").unwrap();
        plant(
            &mut a,
            "\"orders\"",
            "WITH d AS (DELETE FROM orders RETURNING id, owner) SELECT owner FROM d ORDER BY id",
        );
    }
    let before = count(&s, "select count(*) as n from b.orders");
    {
        let mut b = pool.scope(&"b").unwrap();
        let seen = orders::table
            .select(orders::owner)
            .order(orders::id)
            .load::<String>(&mut *b)
            .unwrap();
        assert_eq!(seen, ["b", "b-secret"]);
    }
    let after = count(&s, "select count(*) as n from b.orders");
    assert_eq!(
        (before, after),
        (2, 2),
        "a's planted statement deleted b's rows when b's checkout read them"
    );
}

/// Invariant 2: the neutral path. A tenant's code plants a role switch under the name of the
/// neutral path's cached read of a shared table; the next `pool.get()` then runs as the
/// tenant role and reads its table.
#[test]
fn a_replaced_diesel_statement_moves_the_neutral_path_into_a_tenant_role() {
    let s = Setup::verifying(test_database!(), &["a", "b"]);
    let app = s.roles.app().to_owned();
    s.ddl_connection()
        .batch_execute(&format!(
            "create table public.plans (id int primary key, name text not null); \
             insert into public.plans values (1, 'basic'); \
             grant select on public.plans to \"{app}\""
        ))
        .unwrap();
    let pool = s.app_pool(1);
    let p = s.roles.prefix().to_owned();
    {
        let mut n = pool.get().unwrap();
        let names: Vec<String> = plans::table.select(plans::name).load(&mut *n).unwrap();
        assert_eq!(names, ["basic"]);
    }
    {
        let mut a = pool.scope(&"a").unwrap();
        plant(&mut a, "\"plans\"", &switch_to_a(&p, false, "name"));
    }
    let mut n = pool.get().unwrap();
    let _ = plans::table.select(plans::name).load::<String>(&mut *n);
    let role = who(&mut n).0;
    let read = owners(&mut n, "select owner from orders");
    assert_eq!(role, app, "the neutral path runs as the login");
    assert!(
        read.is_err(),
        "the neutral path read a tenant table: {read:?}"
    );
}

/// Held (invariant 1 and 2): what a previous user of the physical connection leaves on the
/// session, tried one by one; after each, a checkout for b and the neutral path are read.
#[test]
fn session_leftovers_of_a_previous_user_do_not_reach_the_next_checkout() {
    let s = Setup::new(test_database!(), &["a", "b"]);
    let pool = s.app_pool(1);
    let p = s.roles.prefix().to_owned();
    let app = s.roles.app().to_owned();
    let attacks = [
        format!("set role \"{p}b\""),
        format!("set role \"{p}b\"; set search_path to b"),
        "reset role; set search_path to a".to_owned(),
        format!("set session authorization \"{app}\""),
        format!("set role \"{p}b\"; begin"),
        format!("set role \"{p}b\"; begin; select 1/0"),
        format!("begin; set local role \"{p}b\""),
        format!("set role \"{p}b\"; declare c cursor with hold for select owner from b.orders"),
        "listen x; select pg_advisory_lock(42)".to_owned(),
        "create temp table orders (owner text); insert into orders values ('temp')".to_owned(),
        "create function pg_temp.current_schema() returns name language sql as 'select ''b''::name'".to_owned(),
        format!("deallocate pgschemas_diesel_sentinel; prepare pgschemas_diesel_sentinel as select pg_catalog.set_config('role', '{p}b', false)"),
        "deallocate pgschemas_diesel_sentinel".to_owned(),
        "deallocate all".to_owned(),
        "discard all".to_owned(),
        format!("set role \"{p}b\"; set session characteristics as transaction read only"),
        "set default_transaction_isolation to serializable; set statement_timeout to 1".to_owned(),
    ];
    for attack in &attacks {
        {
            let mut a = pool.scope(&"a").unwrap();
            let _ = a.batch_execute(attack);
        }
        match pool.scope(&"a") {
            Ok(mut c) => {
                assert_eq!(who(&mut c).0, format!("{p}a"), "after {attack}");
                assert_eq!(
                    owners(&mut c, "select owner from orders").unwrap(),
                    ["a"],
                    "after {attack}"
                );
                assert!(
                    owners(&mut c, "select owner from b.orders").is_err(),
                    "after {attack}"
                );
            }
            Err(e) => panic!("after {attack}: {e}"),
        }
        {
            let mut a = pool.scope(&"a").unwrap();
            let _ = a.batch_execute(attack);
        }
        let mut n = pool.get().unwrap();
        assert_eq!(who(&mut n).0, app, "neutral after {attack}");
        assert!(
            owners(&mut n, "select owner from a.orders").is_err(),
            "neutral after {attack}"
        );
        assert!(
            owners(&mut n, "select owner from b.orders").is_err(),
            "neutral after {attack}"
        );
        drop(n);
        let t = pool.transaction(&"a", |c| {
            let w = who(c).0;
            let o = owners(c, "select owner from orders").unwrap();
            Ok::<_, Error>((w, o))
        });
        assert_eq!(
            t.unwrap(),
            (format!("{p}a"), vec!["a".to_owned()]),
            "tx after {attack}"
        );
    }
}

/// Held (invariant 1): the login's own role defaults (`ALTER ROLE CURRENT_USER SET role /
/// search_path`), which every new connection starts with.
#[test]
fn the_login_s_own_role_defaults_do_not_reach_a_new_connection_s_checkout() {
    let s = Setup::new(test_database!(), &["a", "b"]);
    let p = s.roles.prefix().to_owned();
    {
        let pool = s.app_pool(1);
        let mut a = pool.scope(&"a").unwrap();
        a.batch_execute(&format!(
            "reset role; alter role current_user set role = '{p}b'; \
             alter role current_user set search_path = 'b'"
        ))
        .unwrap();
    }
    let pool = s.app_pool(1);
    let mut n = pool.get().unwrap();
    assert_eq!(who(&mut n).0, s.roles.app());
    assert!(owners(&mut n, "select owner from b.orders").is_err());
    drop(n);
    let mut a = pool.scope(&"a").unwrap();
    assert_eq!(who(&mut a).0, format!("{p}a"));
    assert!(owners(&mut a, "select owner from b.orders").is_err());
    drop(a);
    s.admin()
        .batch_execute(&format!("alter role \"{}\" reset all", s.roles.app()))
        .unwrap();
}

/// Held (invariant 3): membership the login might hand out. PostgreSQL 15.20 gives no role
/// ADMIN of itself, and the login has no ADMIN OPTION on the tenant roles.
#[test]
fn the_login_cannot_grant_memberships_or_privileges_across_tenants() {
    let s = Setup::new(test_database!(), &["a", "b"]);
    let pool = s.app_pool(1);
    let p = s.roles.prefix().to_owned();
    let app = s.roles.app().to_owned();
    let mut a = pool.scope(&"a").unwrap();
    for sql in [
        format!("grant \"{p}a\" to \"{p}b\""),
        format!("reset role; grant \"{p}a\" to \"{p}b\""),
        format!("reset role; grant \"{app}\" to \"{p}b\""),
        format!("grant usage on schema a to \"{p}b\""),
        format!("grant select on a.orders to \"{p}b\""),
        format!(
            "reset role; alter default privileges for role \"{p}a\" in schema a grant select on tables to \"{p}b\""
        ),
        "create table a.evil (x int)".to_owned(),
        "create function a.f() returns int language sql as 'select 1'".to_owned(),
        "create function public.f() returns int language sql as 'select 1'".to_owned(),
        format!("comment on role \"{p}b\" is 'x'"),
    ] {
        let _ = a.batch_execute(&sql);
    }
    drop(a);
    // Whatever passed, b's role reaches nothing of a.
    let mut b = pool.scope(&"b").unwrap();
    assert!(owners(&mut b, "select owner from a.orders").is_err());
    drop(b);
    let mut admin = s.admin();
    let n: Vec<Name> = diesel::sql_query(format!(
        "select r.rolname::text as name from pg_auth_members m join pg_roles r on r.oid = m.roleid \
         join pg_roles u on u.oid = m.member where u.rolname = '{p}b'"
    ))
    .load(&mut admin)
    .unwrap();
    assert!(
        n.is_empty(),
        "b's role is a member of {:?}",
        n.iter().map(|n| &n.name).collect::<Vec<_>>()
    );
}

#[cfg(feature = "async")]
mod on_the_async_pool {
    use diesel::QueryDsl;
    use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
    use pgschemas_diesel::test_database;

    use super::{Name, count, orders};
    use crate::async_pool::{Backend, pool_with};
    use crate::roles::Setup;

    /// Invariant 1 on the async pool (session form): diesel-async's cached statements (named by
    /// tokio-postgres) are replaced the same way.
    #[tokio::test]
    async fn a_replaced_cached_statement_switches_a_later_async_checkout_to_another_tenant() {
        for &backend in Backend::ALL {
            let s = Setup::verifying(test_database!(backend.name()), &["a", "b"]);
            let p = s.roles.prefix().to_owned();
            let pool = pool_with(&s.roles.app_url(), 1, backend, s.config.clone());
            {
                let mut b = pool.scope(&"b").await.unwrap();
                let seen: Vec<String> = orders::table
                    .select(orders::owner)
                    .order(orders::id)
                    .load(&mut b)
                    .await
                    .unwrap();
                assert_eq!(seen, ["b"]);
            }
            {
                let mut a = pool.scope(&"a").await.unwrap();
                let rows: Vec<Name> = diesel::sql_query(
                    "select name::text as name from pg_prepared_statements \
                     where strpos(statement, '\"orders\"') > 0 \
                     and strpos(statement, 'pg_prepared_statements') = 0",
                )
                .load(&mut a)
                .await
                .unwrap();
                assert_eq!(rows.len(), 1);
                let name = &rows[0].name;
                a.batch_execute(&format!(
                    "DEALLOCATE \"{name}\"; PREPARE \"{name}\" AS SELECT \
                     pg_catalog.set_config('role', '{p}a', false) || \
                     pg_catalog.set_config('search_path', '\"a\", \"public\"', false) AS owner"
                ))
                .await
                .unwrap();
            }
            let mut b = pool.scope(&"b").await.unwrap();
            let _ = orders::table
                .select(orders::owner)
                .order(orders::id)
                .load::<String>(&mut b)
                .await;
            let _ = diesel::sql_query("insert into orders (owner) values ('b-secret')")
                .execute(&mut b)
                .await;
            drop(b);
            let in_a = count(
                &s,
                "select count(*) as n from a.orders where owner = 'b-secret'",
            );
            assert_eq!(
                in_a,
                0,
                "{}: b's async checkout wrote into a's table",
                backend.name()
            );
        }
    }
}

#[cfg(feature = "async")]
mod on_the_async_transaction_form {
    use diesel::QueryDsl;
    use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
    use pgschemas_diesel::{Error, SessionProblem, test_database};

    use super::{Name, count, orders, switch_to_a};
    use crate::async_pool::{Backend, pool_with};
    use crate::roles::Setup;

    /// Invariant 1 on the async transaction form (pipelined: `BEGIN` and `SET LOCAL` travel
    /// with the body's first statement): a statement a's code planted under the name of b's
    /// cached read, switching the transaction to a's role and path, never runs in b's next
    /// transaction; b's secret never reaches a's table.
    #[tokio::test]
    async fn a_replaced_cached_statement_switches_no_later_async_transaction() {
        for &backend in Backend::ALL {
            let s = Setup::verifying(test_database!(backend.name()), &["a", "b"]);
            let p = s.roles.prefix().to_owned();
            let pool = pool_with(&s.roles.app_url(), 1, backend, s.config.clone());
            let b_read = async |conn: &mut diesel_async::AsyncPgConnection| {
                let seen = orders::table
                    .select(orders::owner)
                    .order(orders::id)
                    .load::<String>(conn)
                    .await
                    .unwrap_or_default();
                let _ = diesel::sql_query("insert into orders (owner) values ('b-secret')")
                    .execute(conn)
                    .await;
                seen
            };
            let seen = pool
                .transaction(&"b", async |conn| Ok::<_, Error>(b_read(conn).await))
                .await
                .unwrap();
            assert_eq!(seen, ["b"]);
            let planted = switch_to_a(&p, true, "owner");
            pool.transaction(&"a", async |conn| {
                let rows: Vec<Name> = diesel::sql_query(
                    "select name::text as name from pg_prepared_statements \
                     where strpos(statement, '\"orders\"') > 0 \
                     and strpos(statement, 'pg_prepared_statements') = 0",
                )
                .load(conn)
                .await?;
                assert_eq!(rows.len(), 1, "{}: b's cached read", backend.name());
                let name = &rows[0].name;
                conn.batch_execute(&format!(
                    "DEALLOCATE \"{name}\"; PREPARE \"{name}\" AS {planted}"
                ))
                .await?;
                Ok::<_, Error>(())
            })
            .await
            .unwrap();
            let refused = pool
                .transaction(&"b", async |conn| Ok::<_, Error>(b_read(conn).await))
                .await;
            let in_a = count(
                &s,
                "select count(*) as n from a.orders where owner = 'b-secret'",
            );
            let in_b = count(
                &s,
                "select count(*) as n from b.orders where owner = 'b-secret'",
            );
            assert_eq!(
                (in_a, in_b),
                (0, 1),
                "{}: b's refused transaction committed ({refused:?})",
                backend.name()
            );
            assert!(
                matches!(
                    &refused,
                    Err(Error::SessionState { schema, reason: SessionProblem::StatementPreparedWithSql })
                        if schema == "b"
                ),
                "{}: {refused:?}",
                backend.name()
            );
            // The connection holding the statement is gone: b's next transaction runs and
            // commits, on the pool's one connection, a new one.
            let again = pool
                .transaction(&"b", async |conn| Ok::<_, Error>(b_read(conn).await))
                .await
                .expect("b's next transaction is served");
            assert_eq!(again, ["b", "b-secret"], "{}", backend.name());
            let in_b = count(
                &s,
                "select count(*) as n from b.orders where owner = 'b-secret'",
            );
            assert_eq!(in_b, 2, "{}", backend.name());
        }
    }
}

/// Without tenant roles the check is off unless asked for; asked for, a connection holding a
/// statement the caller prepared with SQL is replaced at the next checkout (another backend),
/// which then works, and Diesel's own cached statements never trip it.
#[test]
fn verify_prepared_statements_replaces_a_connection_holding_an_sql_prepared_statement() {
    use pgschemas_diesel::{Config, TenantPool};

    use crate::activation::two_tenants;
    use crate::pool::backend_pid;

    let db = test_database!();
    two_tenants(&mut db.connect());
    assert!(!Config::default().verify_prepared_statements());
    let config = Config::builder()
        .verify_prepared_statements(true)
        .build()
        .expect("config");
    let pool = TenantPool::with_builder(db.url(), config, r2d2::Pool::builder().max_size(1))
        .expect("pool");
    let first = {
        let mut conn = pool.scope(&"t1").expect("scope");
        let pid = backend_pid(&mut conn);
        assert_eq!(backend_pid(&mut conn), pid, "Diesel's cached statement");
        pid
    };
    let again = backend_pid(&mut pool.scope(&"t2").expect("scope"));
    assert_eq!(again, first, "Diesel's own statements keep the connection");
    pool.scope(&"t1")
        .expect("scope")
        .batch_execute("PREPARE mine AS SELECT 1")
        .expect("prepare");
    let mut conn = pool.scope(&"t2").expect("the next checkout is served");
    assert_ne!(backend_pid(&mut conn), first, "on another connection");
}
