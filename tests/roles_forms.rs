//! Per-tenant roles in the forms `tests/roles.rs` does not cover: the async pool (session and
//! transaction forms, on each backend) and the transaction form behind a real PgBouncer in
//! transaction mode, with more clients than server connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::Text;
use pgschemas_diesel::testing::{PgBouncer, PoolMode};
use pgschemas_diesel::{Error, TenantPool, test_database};

use crate::roles::Setup;

#[derive(QueryableByName)]
struct Seen {
    #[diesel(sql_type = Text)]
    role: String,
    #[diesel(sql_type = Text)]
    owners: String,
}

const SEEN: &str = "select current_user::text as role, \
     coalesce((select string_agg(distinct owner, ',') from orders), '') as owners";

#[test]
fn the_transaction_form_behind_pgbouncer_serves_each_tenant_as_its_role() {
    const TENANTS: usize = 8;
    const CLIENTS: usize = 8;
    const EACH: usize = 150;
    let names: Vec<String> = (0..TENANTS).map(|i| format!("t{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let s = Setup::new(test_database!(), &refs);
    // PgBouncer logs in to the server as the application's login.
    let bouncer = PgBouncer::start(&s.roles.app_url(), s.db.name(), PoolMode::Transaction, 2);
    let pool = TenantPool::with_builder(
        bouncer.url(),
        s.config.clone(),
        r2d2::Pool::builder()
            .max_size(u32::try_from(CLIENTS).unwrap())
            .connection_timeout(Duration::from_secs(30))
            .connection_customizer(Box::new(pgschemas_diesel::DisableStatementCache)),
    )
    .unwrap();
    let (wrong, errors) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let prefix = s.roles.prefix().to_owned();
    std::thread::scope(|scope| {
        for c in 0..CLIENTS {
            let (pool, names, prefix) = (pool.clone(), names.clone(), prefix.clone());
            let (wrong, errors) = (Arc::clone(&wrong), Arc::clone(&errors));
            scope.spawn(move || {
                for i in 0..EACH {
                    let tenant = &names[(c * 7 + i * 3) % TENANTS];
                    let result = pool.transaction(tenant, |conn| {
                        let seen: Seen = diesel::sql_query(SEEN).get_result(conn)?;
                        diesel::sql_query("insert into orders (owner) values (current_schema())")
                            .execute(conn)?;
                        Ok::<_, Error>(seen)
                    });
                    match result {
                        Ok(seen) => {
                            if seen.role != format!("{prefix}{tenant}") || seen.owners != *tenant {
                                wrong.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        Err(e) => {
                            eprintln!("{tenant}: {}", e.report());
                            errors.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            });
        }
    });
    assert_eq!(
        wrong.load(Ordering::SeqCst),
        0,
        "transactions that saw another role or rows"
    );
    assert_eq!(
        errors.load(Ordering::SeqCst),
        0,
        "legitimate transactions refused"
    );
    // Every insert landed in its own tenant.
    let mut ddl = s.ddl_connection();
    for t in &names {
        let seen: Seen = diesel::sql_query(format!(
            "select '' as role, string_agg(distinct owner, ',') as owners from {t}.orders"
        ))
        .get_result(&mut ddl)
        .unwrap();
        assert_eq!(seen.owners, *t);
    }
}

#[cfg(feature = "async")]
mod on_the_async_pool {
    use diesel::connection::SimpleConnection as _;
    use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
    use pgschemas_diesel::roles::LoginProblem;
    use pgschemas_diesel::{AsyncTenantPool, Error, test_database};

    use super::{SEEN, Seen};
    use crate::async_pool::{Backend, pool_with};
    use crate::roles::Setup;

    async fn seen(conn: &mut AsyncPgConnection) -> (String, String) {
        let s: Seen = diesel::sql_query(SEEN).get_result(conn).await.unwrap();
        (s.role, s.owners)
    }

    /// Whether `sql` fails with `insufficient_privilege` (42501), read from the server.
    async fn denied(conn: &mut AsyncPgConnection, sql: &str) -> bool {
        #[derive(diesel::QueryableByName)]
        struct State {
            #[diesel(sql_type = diesel::sql_types::Text)]
            state: String,
        }
        conn.batch_execute(&format!(
            "DO $t$ DECLARE s text; BEGIN BEGIN EXECUTE '{}'; s := '00000'; \
             EXCEPTION WHEN OTHERS THEN GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE; END; \
             PERFORM pg_catalog.set_config('pgschemas_test.state', s, false); END $t$",
            sql.replace('\'', "''")
        ))
        .await
        .unwrap();
        let st: State =
            diesel::sql_query("select current_setting('pgschemas_test.state') as state")
                .get_result(conn)
                .await
                .unwrap();
        st.state == "42501"
    }

    fn pool(s: &Setup, backend: Backend) -> AsyncTenantPool {
        pool_with(&s.roles.app_url(), 1, backend, s.config.clone())
    }

    #[tokio::test]
    async fn both_forms_run_as_the_tenant_role_and_a_caller_s_role_change_is_undone() {
        for &backend in Backend::ALL {
            let s = Setup::new(test_database!(backend.name()), &["a", "b"]);
            let p = s.roles.prefix().to_owned();
            let pool = pool(&s, backend);
            {
                let mut scope = pool.scope(&"a").await.unwrap();
                assert_eq!(seen(&mut scope).await, (format!("{p}a"), "a".to_owned()));
                assert!(denied(&mut scope, "select owner from b.orders").await);
                scope
                    .batch_execute(&format!("set role \"{p}b\""))
                    .await
                    .unwrap();
            }
            {
                let mut scope = pool.scope(&"a").await.unwrap();
                assert_eq!(
                    seen(&mut scope).await.0,
                    format!("{p}a"),
                    "{}",
                    backend.name()
                );
                scope.batch_execute("reset role").await.unwrap();
                assert!(denied(&mut scope, "select owner from a.orders").await);
            }
            let inside = pool
                .transaction(&"b", async |conn| {
                    let s = seen(conn).await;
                    let refused = denied(conn, "select owner from a.orders").await;
                    Ok::<_, Error>((s, refused))
                })
                .await
                .unwrap();
            assert_eq!(inside, ((format!("{p}b"), "b".to_owned()), true));
            let mut neutral = pool.get().await.unwrap();
            assert_eq!(seen_role(&mut neutral).await, s.roles.app());
            assert!(denied(&mut neutral, "select owner from a.orders").await);
        }
    }

    async fn seen_role(conn: &mut AsyncPgConnection) -> String {
        #[derive(diesel::QueryableByName)]
        struct R {
            #[diesel(sql_type = diesel::sql_types::Text)]
            role: String,
        }
        diesel::sql_query("select current_user::text as role")
            .get_result::<R>(conn)
            .await
            .unwrap()
            .role
    }

    #[tokio::test]
    async fn a_tenant_without_its_role_and_an_inheriting_login_are_refused() {
        for &backend in Backend::ALL {
            let s = Setup::new(test_database!(backend.name()), &["a"]);
            s.ddl_connection()
                .batch_execute("create schema c; create table c.orders (owner text)")
                .unwrap();
            let pool = pool(&s, backend);
            let e = pool.scope(&"c").await.unwrap_err();
            assert!(matches!(e, Error::TenantRoleMissing { .. }), "{e}");
            let e = pool
                .transaction(&"c", async |_| Ok::<_, Error>(()))
                .await
                .unwrap_err();
            assert!(matches!(e, Error::TenantRoleMissing { .. }), "{e}");
            let mut scope = pool.scope(&"a").await.unwrap();
            assert_eq!(seen(&mut scope).await.1, "a");
            drop(scope);
            s.admin()
                .batch_execute(&format!("alter role \"{}\" inherit", s.roles.app()))
                .unwrap();
            // A new pool: its first connection is checked at its first checkout.
            let fresh = pool_with(&s.roles.app_url(), 1, backend, s.config.clone());
            let e = fresh.scope(&"a").await.unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::Login {
                        problem: LoginProblem::Inherits,
                        ..
                    }
                ),
                "{e}"
            );
            drop(fresh);
            s.admin()
                .batch_execute(&format!("alter role \"{}\" noinherit", s.roles.app()))
                .unwrap();
        }
    }
}
