//! Attacks on the checkout itself: replacing the crate's own prepared sentinel, shadowing the
//! operators its proof uses through a role's default path, and notifications libpq already
//! holds for the previous user. Each recipe is in its test's comment.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use pgschemas_diesel::{Error, TenantPool, test_database};

use crate::isolation::{Roles, app_pool, three_orders};

diesel::table! {
    orders (tenant) {
        tenant -> Text,
    }
}

/// The rows `orders` resolves to on the connection's current path.
fn rows(conn: &mut PgConnection) -> QueryResult<Vec<String>> {
    diesel::sql_query("select tenant from orders order by tenant")
        .load::<Tenant>(conn)
        .map(|v| v.into_iter().map(|r| r.tenant).collect())
}

#[derive(QueryableByName)]
struct Tenant {
    #[diesel(sql_type = Text)]
    tenant: String,
}

/// Prepared statements survive every checkout (the reset keeps them on purpose, Diesel's cache
/// lives there), so a caller may replace the crate's sentinel with a statement of its own.
/// The sentinel runs first in the checkout message, so whatever the replacement sets is reset
/// after it: the next checkout of `tb` still reads `tb`'s rows, and a missing schema is still
/// refused.
#[test]
fn a_user_statement_named_like_the_sentinel_changes_nothing() {
    let db = test_database!();
    three_orders(&mut db.connect());
    let mut roles = Roles::new(&db);
    let (pool, _login) = app_pool(&db, &mut roles);
    {
        let mut scope = pool.scope(&"ta").unwrap();
        scope
            .batch_execute(
                r#"deallocate pgschemas_diesel_sentinel;
                   prepare pgschemas_diesel_sentinel as
                     select pg_catalog.set_config('search_path', '"ta", "public", pg_temp', false),
                            pg_catalog.set_config('app.tenant', 'ta', false)"#,
            )
            .unwrap();
    }
    // The next user asks for tb, and for a schema that does not exist.
    let missing = pool.scope(&"no_such_tenant").map(|_| ());
    let mut scope = pool.scope(&"tb").unwrap();
    assert_eq!(
        (rows(&mut scope).unwrap(), missing.is_err()),
        (vec!["tb".to_owned()], true),
        "a checkout of tb must read tb's rows, and a missing schema must be refused"
    );
}

/// The guard's comparisons use unqualified `=` operators
/// (`transaction_timestamp() = statement_timestamp()`, `current_user = session_user`), and
/// the checkout runs them under the session's *default* path (right after `RESET ALL`). An
/// ordinary role may `ALTER ROLE CURRENT_USER SET search_path` for itself; with a schema it
/// can create in listed before `pg_catalog`, its own `=` for `timestamptz` wins and always
/// says true. From the next physical connection on, a transaction left open is no longer
/// refused: the next tenant's checkout runs inside it, and a routine failed Diesel
/// transaction of that tenant (`BEGIN` is a no-op warning, `ROLLBACK` is real) rolls back the
/// checkout's own `set_config`, putting the connection back on the previous tenant's path.
#[test]
fn a_shadowed_equality_operator_lets_an_open_transaction_through() {
    let db = test_database!();
    three_orders(&mut db.connect());
    let mut roles = Roles::new(&db);
    let (pool, login) = app_pool(&db, &mut roles);
    shadow_timestamp_equality(&db, &pool, &login);
    // Tenant ta's code leaves a transaction open (a bug, which the guard exists to catch).
    {
        let mut scope = pool.scope(&"ta").unwrap();
        scope.batch_execute("begin").unwrap();
    }
    let mut scope = pool.scope(&"tb").unwrap();
    // `SAVEPOINT` succeeds only inside a transaction block.
    let in_open_transaction = scope.batch_execute("savepoint probe").is_ok();
    if in_open_transaction {
        scope.batch_execute("release savepoint probe").unwrap();
    }
    // A routine Diesel transaction of tb that fails.
    let _ = scope.transaction::<(), diesel::result::Error, _>(|_| {
        Err(diesel::result::Error::RollbackTransaction)
    });
    assert_eq!(
        (in_open_transaction, rows(&mut scope).unwrap()),
        (false, vec!["tb".to_owned()]),
        "tb's checkout was handed out inside ta's open transaction, and then reads ta's rows"
    );
}

/// The setup of the operator attack, run by the application role itself from a checkout of `ta`: its own
/// `=` for `timestamptz` (always true) in a schema it creates, its default path putting that
/// schema before `pg_catalog`, and its own backend ended so that the pool connects again.
fn shadow_timestamp_equality(
    db: &pgschemas_diesel::testing::TestDatabase,
    pool: &TenantPool,
    login: &str,
) {
    // An application role that provisions tenants can create schemas.
    db.connect()
        .batch_execute(&format!(
            "grant create on database \"{}\" to {login}",
            db.name()
        ))
        .unwrap();
    {
        let mut scope = pool.scope(&"ta").unwrap();
        scope
            .batch_execute(
                "create schema evil;
                 create function evil.yes(timestamptz, timestamptz) returns bool
                   language sql immutable as 'select true';
                 create operator evil.= (leftarg = timestamptz, rightarg = timestamptz,
                   function = evil.yes);
                 alter role current_user set search_path = evil, pg_catalog;",
            )
            .unwrap();
        // The role may end its own backend; the pool replaces it with one that has the new
        // default path.
        let _ = scope.batch_execute("select pg_terminate_backend(pg_backend_pid())");
    }
}

/// Transaction form: the inline guard has the same unqualified `=`. A transaction
/// a session-form user of `ta` left open (with an uncommitted write) is not refused by the
/// next transaction-form checkout of `tb`: its `BEGIN` is a no-op, the guard passes, and its
/// `COMMIT` commits `ta`'s abandoned write, even though `tb`'s closure fails and rolls back.
#[test]
fn a_shadowed_equality_operator_makes_the_transaction_form_commit_the_previous_users_work() {
    let db = test_database!();
    three_orders(&mut db.connect());
    let mut roles = Roles::new(&db);
    let (pool, login) = app_pool(&db, &mut roles);
    shadow_timestamp_equality(&db, &pool, &login);
    {
        let mut scope = pool.scope(&"ta").unwrap();
        scope
            .batch_execute("begin; insert into orders values ('abandoned by ta')")
            .unwrap();
    }
    let _ = pool.transaction(&"tb", |_| Err::<(), _>(Error::Config("tb fails".into())));
    assert_eq!(
        rows_of(&mut db.connect(), "ta"),
        ["ta"],
        "tb's checkout committed the write ta had left uncommitted"
    );
}

fn rows_of(conn: &mut PgConnection, schema: &str) -> Vec<String> {
    diesel::sql_query(format!(
        "select tenant from {schema}.orders order by tenant"
    ))
    .load::<Tenant>(conn)
    .unwrap()
    .into_iter()
    .map(|r| r.tenant)
    .collect()
}

/// `UNLISTEN *` stops new notifications, but one the server already sent to the
/// previous checkout sits in libpq's buffer on the client side, and the next checkout of
/// another tenant reads it from `notifications_iter()`.
#[test]
fn a_notification_for_the_previous_tenant_reaches_the_next_checkout() {
    let db = test_database!();
    three_orders(&mut db.connect());
    let mut roles = Roles::new(&db);
    let (pool, _login) = app_pool(&db, &mut roles);
    {
        let mut scope = pool.scope(&"ta").unwrap();
        scope.batch_execute("listen ta_events").unwrap();
        db.connect()
            .batch_execute("notify ta_events, 'order 17 of ta'")
            .unwrap();
        // Any statement of ta after the notification: libpq receives and buffers it.
        scope.batch_execute("select 1").unwrap();
    }
    let mut scope = pool.scope(&"tb").unwrap();
    let leaked: Vec<String> = scope
        .notifications_iter()
        .filter_map(|n| n.ok())
        .map(|n| format!("{}: {}", n.channel, n.payload))
        .collect();
    assert!(
        leaked.is_empty(),
        "tb received ta's notifications: {leaked:?}"
    );
}

/// A caller lent a pooled connection can replace it (`*scope = ..`) with one of the same login
/// to another database, holding the crate's sentinel so that the checkout's first statement
/// runs: the next checkout refuses it (another connection is made, to the pool's database),
/// and nothing is read from or written to the other database.
#[test]
fn a_connection_to_another_database_put_into_the_pool_is_refused() {
    let db = test_database!();
    three_orders(&mut db.connect());
    let other = test_database!("other");
    three_orders(&mut other.connect());
    other
        .connect()
        .batch_execute("insert into tb.orders values ('the other database')")
        .unwrap();
    let pool = TenantPool::with_builder(
        db.url(),
        pgschemas_diesel::Config::default(),
        r2d2::Pool::builder().max_size(1),
    )
    .unwrap();
    {
        let mut scope = pool.scope(&"tb").unwrap();
        let mut foreign = PgConnection::establish(other.url()).unwrap();
        foreign
            .batch_execute("PREPARE pgschemas_diesel_sentinel AS SELECT")
            .unwrap();
        *scope = foreign;
    }
    let mut scope = pool.scope(&"tb").expect("served, by a new connection");
    assert_eq!(rows(&mut scope).unwrap(), ["tb"]);
    #[derive(QueryableByName)]
    struct Database {
        #[diesel(sql_type = Text)]
        name: String,
    }
    let served: Database = diesel::sql_query("select current_database()::text as name")
        .get_result(&mut *scope)
        .unwrap();
    assert_eq!(served.name, db.name());
    drop(scope);
    pool.transaction(&"tb", |conn| {
        diesel::sql_query("insert into orders values ('written')")
            .execute(conn)
            .map_err(Error::from)
    })
    .unwrap();
    assert_eq!(
        rows(&mut {
            let mut c = other.connect();
            c.batch_execute("set search_path to tb").unwrap();
            c
        })
        .unwrap(),
        ["tb", "the other database"]
    );
}

/// A database whose name ends in the crate's dollar-quote tag (`$pgschemas`): the checkout's
/// proof names it, and must still read it whole: every form serves its tenant, and an async
/// transaction's write lands in the tenant's table, never in the shared one.
#[test]
fn a_database_named_with_the_quote_tag_is_served_in_every_form() {
    in_database_named(&format!("pgsd_{}$pgschemas", std::process::id()), |url| {
        three_orders(&mut PgConnection::establish(url).unwrap());
        let pool = TenantPool::new(url, pgschemas_diesel::Config::default()).unwrap();
        assert_eq!(rows(&mut pool.scope(&"ta").unwrap()).unwrap(), ["ta"]);
        assert!(rows(&mut pool.get().unwrap()).is_ok());
        let read = pool.transaction(&"tb", |conn| rows(conn).map_err(Error::from));
        assert_eq!(read.unwrap(), ["tb"]);
        #[cfg(feature = "async")]
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                use crate::async_pool::{Backend, pool_of};
                for &backend in Backend::ALL {
                    let pool = pool_of(url, 1, backend);
                    pool.transaction(&"ta", async |conn| {
                        diesel_async::RunQueryDsl::execute(
                            diesel::sql_query("insert into orders values ('async')"),
                            conn,
                        )
                        .await
                        .map_err(Error::from)
                    })
                    .await
                    .unwrap_or_else(|e| panic!("{}: {e}", backend.name()));
                }
            });
        let mut conn = PgConnection::establish(url).unwrap();
        conn.batch_execute("set search_path to public").unwrap();
        assert_eq!(
            rows(&mut conn).unwrap(),
            ["public"],
            "nothing in the shared table"
        );
    });
}

/// A database whose name is not ASCII, and a session-form user who leaves a
/// `client_encoding` in which that name is not valid: the server converts a whole message
/// before it parses any of it, so a checkout naming the database in the clear would be
/// rejected whole, and the async transaction form's pipelined body would then run in
/// autocommit on that user's path. The checkout writes names in ASCII: tb's write lands in
/// tb's table, on both async backends.
#[cfg(feature = "async")]
#[test]
fn a_client_encoding_left_by_a_session_user_does_not_unparse_the_next_checkout() {
    in_database_named(&format!("pgsd_{}_日本", std::process::id()), |url| {
        three_orders(&mut PgConnection::establish(url).unwrap());
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                use crate::async_pool::{Backend, pool_of};
                for &backend in Backend::ALL {
                    let pool = pool_of(url, 1, backend);
                    let mut scope = pool.scope(&"ta").await.unwrap();
                    diesel_async::SimpleAsyncConnection::batch_execute(
                        &mut *scope,
                        "set client_encoding = 'EUC_JP'",
                    )
                    .await
                    .unwrap();
                    drop(scope);
                    let written = pool
                        .transaction(&"tb", async |conn| {
                            diesel_async::RunQueryDsl::execute(
                                diesel::sql_query("insert into orders values ('from tb')"),
                                conn,
                            )
                            .await
                            .map_err(Error::from)
                        })
                        .await;
                    assert!(written.is_ok(), "{}: {written:?}", backend.name());
                }
            });
        let mut conn = PgConnection::establish(url).unwrap();
        for (schema, want) in [
            ("ta", vec!["ta"]),
            ("tb", vec!["from tb", "from tb", "tb"]),
            ("public", vec!["public"]),
        ] {
            conn.batch_execute(&format!("set search_path to {schema}"))
                .unwrap();
            let want: Vec<String> = want
                .into_iter()
                .take(if schema == "tb" {
                    1 + crate::async_pool::Backend::ALL.len()
                } else {
                    1
                })
                .map(str::to_owned)
                .collect();
            assert_eq!(rows(&mut conn).unwrap(), want, "{schema}");
        }
    });
}

/// Runs `test` with the URL of a fresh database named `name` exactly (not a test database's
/// sanitised name), percent-encoded in the URL, then drops it however `test` ended.
fn in_database_named(name: &str, test: impl FnOnce(&str) + std::panic::UnwindSafe) {
    let server = pgschemas_diesel::testing::server_url();
    let mut admin = PgConnection::establish(&server).unwrap();
    for sql in [
        format!("drop database if exists \"{name}\" with (force)"),
        format!("create database \"{name}\""),
    ] {
        admin.batch_execute(&sql).unwrap();
    }
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let url = format!("{}/{encoded}", server.rsplit_once('/').unwrap().0);
    let outcome = std::panic::catch_unwind(|| test(&url));
    admin
        .batch_execute(&format!("drop database \"{name}\" with (force)"))
        .unwrap();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
