//! The async transaction form's pipelined switch: the checkout travels with the body's first
//! statement, counted in round trips on the wire by a TCP relay between the pool and the
//! server; and when the switch fails, nothing the body does takes effect, whatever it does
//! with the errors it gets.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use diesel::connection::SimpleConnection as _;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use pgschemas_diesel::{AsyncTenantPool, Config, Error, test_database};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::isolation::three_orders;

/// A TCP relay to the server that counts round trips: a client send that follows an answer
/// of the server (or opens the connection) starts one. Sends the client makes before the
/// server answered anything, as pipelined requests are, belong to the same round trip.
struct Relay {
    port: u16,
    round_trips: Arc<AtomicU64>,
}

impl Relay {
    async fn start(server: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let round_trips = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&round_trips);
        let server = server.to_owned();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = TcpStream::connect(&server).await.unwrap();
                tokio::spawn(relay(client, upstream, Arc::clone(&counter)));
            }
        });
        Self { port, round_trips }
    }

    fn count(&self) -> u64 {
        AtomicU64::load(&self.round_trips, Ordering::SeqCst)
    }
}

async fn relay(client: TcpStream, server: TcpStream, round_trips: Arc<AtomicU64>) {
    client.set_nodelay(true).unwrap();
    server.set_nodelay(true).unwrap();
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    // true when the server spoke last: the client's next bytes start a round trip
    let answered = Arc::new(AtomicBool::new(true));
    let heard = Arc::clone(&answered);
    let up = async move {
        let mut buf = vec![0; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if answered.swap(false, Ordering::SeqCst) {
                round_trips.fetch_add(1, Ordering::SeqCst);
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    let down = async move {
        let mut buf = vec![0; 64 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            // marked before the client can read it and answer
            heard.store(true, Ordering::SeqCst);
            if client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    tokio::join!(up, down);
}

/// `url` with its host and port replaced by the relay's.
fn through(url: &str, port: u16) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (user, rest) = rest.split_once('@').unwrap();
    let (_, database) = rest.split_once('/').unwrap();
    format!("{scheme}://{user}@127.0.0.1:{port}/{database}")
}

/// The server's `host:port` from `url`.
fn server_of(url: &str) -> String {
    let rest = url.split_once('@').unwrap().1;
    rest.split_once('/').unwrap().0.to_owned()
}

fn pool_of(url: &str) -> AsyncTenantPool {
    let deadpool = AsyncTenantPool::builder(url).max_size(1).build().unwrap();
    AsyncTenantPool::from_deadpool(deadpool, Config::default())
}

#[derive(QueryableByName, Debug, PartialEq)]
struct Tenant {
    #[diesel(sql_type = Text)]
    tenant: String,
}

diesel::table! {
    orders (tenant) {
        tenant -> Text,
    }
}

/// The body of a one-statement transaction: the tenant of the rows it reads (Diesel's
/// statement cache keeps the statement prepared after its first use).
async fn read_one(conn: &mut AsyncPgConnection) -> Result<String, Error> {
    Ok(orders::table.select(orders::tenant).first(conn).await?)
}

#[tokio::test(flavor = "current_thread")]
async fn the_switch_travels_with_the_first_statement() {
    let db = test_database!();
    three_orders(&mut db.connect());
    let relay = Relay::start(&server_of(db.url())).await;
    let pool = pool_of(&through(db.url(), relay.port));
    // the connection and its statement cache, made once
    for tenant in ["ta", "tb"] {
        pool.transaction(&tenant, read_one).await.unwrap();
        drop(pool.scope(&tenant).await.unwrap());
    }

    for (i, tenant) in ["ta", "tb", "public", "tb", "ta"].into_iter().enumerate() {
        let before = relay.count();
        let got = pool.transaction(&tenant, read_one).await.unwrap();
        assert_eq!(got, tenant);
        assert_eq!(
            relay.count() - before,
            2,
            "transaction {i} in {tenant}: the statement with the switch, then the commit"
        );
    }

    let before = relay.count();
    let got = pool
        .transaction(&"tb", async |conn| {
            let first = read_one(conn).await?;
            let second = read_one(conn).await?;
            Ok::<_, Error>(format!("{first} {second}"))
        })
        .await
        .unwrap();
    assert_eq!(got, "tb tb");
    assert_eq!(relay.count() - before, 3, "two statements and the commit");

    let before = relay.count();
    pool.transaction(&"ta", async |_| Ok::<_, Error>(()))
        .await
        .unwrap();
    assert_eq!(
        relay.count() - before,
        1,
        "an empty body: the switch and the commit"
    );

    // The session form: the checkout, then the statement.
    let before = relay.count();
    let mut scope = pool.scope(&"tb").await.unwrap();
    assert_eq!(read_one(&mut scope).await.unwrap(), "tb");
    drop(scope);
    assert_eq!(
        relay.count() - before,
        2,
        "session form: checkout and statement"
    );
}

/// Rows of `public.log`, which every body below writes to by its qualified name (so that a
/// body run with any path would reach it) and which nothing may commit.
fn logged(db: &pgschemas_diesel::testing::TestDatabase) -> i64 {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    diesel::RunQueryDsl::get_result::<Count>(
        diesel::sql_query("select count(*) as n from public.log"),
        &mut db.connect(),
    )
    .unwrap()
    .n
}

#[tokio::test(flavor = "current_thread")]
async fn a_failed_switch_fails_the_body_and_commits_nothing() {
    let db = test_database!();
    three_orders(&mut db.connect());
    db.connect()
        .batch_execute("create table public.log (body text); create schema gone;")
        .unwrap();
    let pool = pool_of(db.url());
    // The connection's session path is left at ta's by a session-form use first.
    let leave_ta = async || {
        let mut scope = pool.scope(&"ta").await.unwrap();
        scope.batch_execute("select 1").await.unwrap();
    };
    for missing in ["nobody", "gone"] {
        if missing == "gone" {
            // a schema dropped between the route's lookup and the checkout
            db.connect().batch_execute("drop schema gone").unwrap();
        }
        leave_ta().await;
        let body_errors = std::cell::RefCell::new(Vec::new());
        let result = pool
            .transaction(&missing, async |conn| {
                // every statement fails: the transaction was aborted before it
                if let Err(e) = conn
                    .batch_execute("insert into public.log values ('first')")
                    .await
                {
                    body_errors.borrow_mut().push(e.to_string());
                }
                // a body that drops its errors and returns Ok still commits nothing
                let _ = conn
                    .batch_execute("insert into public.log values ('second')")
                    .await;
                Ok::<_, Error>("the body says it worked")
            })
            .await;
        assert!(
            matches!(&result, Err(Error::SchemaNotFound { schema }) if schema == missing),
            "{missing}: {result:?}"
        );
        assert_eq!(body_errors.borrow().len(), 1, "{missing}");

        // A body that returns its error gets the schema's error back, not its own.
        leave_ta().await;
        let result = pool
            .transaction(&missing, async |conn| {
                conn.batch_execute("insert into public.log values ('third')")
                    .await?;
                Ok::<_, Error>(())
            })
            .await;
        assert!(
            matches!(&result, Err(Error::SchemaNotFound { .. })),
            "{missing}: {result:?}"
        );

        // A body that ends the aborted transaction itself finds no table at all: the
        // session's path is the empty one the checkout committed, not ta's; and the
        // transaction form, whose transaction is gone at its commit, fails.
        leave_ta().await;
        let read_after_rollback = std::cell::RefCell::new(None);
        let seen = pool
            .transaction(&missing, async |conn| {
                let _ = conn.batch_execute("select 1").await;
                conn.batch_execute("rollback").await?;
                let read = diesel::sql_query("select tenant from orders")
                    .load::<Tenant>(conn)
                    .await;
                *read_after_rollback.borrow_mut() = Some(read);
                Ok::<_, Error>(())
            })
            .await;
        assert!(
            matches!(&seen, Err(Error::SchemaNotFound { .. })),
            "{missing}: {seen:?}"
        );
        assert!(
            read_after_rollback
                .borrow()
                .as_ref()
                .is_some_and(Result::is_err),
            "{missing}: read {:?} after a raw rollback",
            read_after_rollback.borrow()
        );
    }

    // The pool still serves each tenant its own rows.
    for tenant in ["ta", "tb", "public"] {
        assert_eq!(pool.transaction(&tenant, read_one).await.unwrap(), tenant);
    }
    assert_eq!(
        logged(&db),
        0,
        "nothing any failed switch's body wrote was committed"
    );
}
