//! Invariant 2: behind a real PgBouncer in transaction pooling mode, with more clients than
//! server connections, the transaction-scoped form isolates tenants and the session form
//! does not (which the docs say).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use pgschemas_diesel::testing::{PgBouncer, PoolMode, server_url};
use pgschemas_diesel::{Config, DisableStatementCache, Error, TenantPool, test_database};
use rand::Rng;

diesel::table! {
    notes (id) {
        id -> Integer,
        tenant -> Text,
    }
}

const TENANTS: [&str; 4] = ["ta", "tb", "tc", "td"];
const CLIENTS: usize = 8;
const SERVER_CONNECTIONS: u32 = 2;

fn setup(db: &pgschemas_diesel::testing::TestDatabase) {
    let mut conn = db.connect();
    for t in TENANTS {
        conn.batch_execute(&format!(
            "create schema {t}; create table {t}.notes (id serial primary key, tenant text not null);
             insert into {t}.notes (tenant) select '{t}' from generate_series(1, 5);"
        ))
        .unwrap();
    }
}

fn bouncer_pool(bouncer: &PgBouncer) -> TenantPool {
    TenantPool::with_builder(
        bouncer.url(),
        Config::default(),
        r2d2::Pool::builder()
            .max_size(CLIENTS as u32)
            .connection_timeout(Duration::from_secs(20))
            .connection_customizer(Box::new(DisableStatementCache)),
    )
    .expect("pool through PgBouncer")
}

/// Runs `iterations` per client thread; returns how many rows came from the wrong tenant.
fn hammer(
    pool: &TenantPool,
    iterations: usize,
    stop_at_first_leak: bool,
    read: fn(&TenantPool, &str) -> Vec<String>,
) -> usize {
    let wrong = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let pool = pool.clone();
            let wrong = wrong.clone();
            std::thread::spawn(move || {
                let mut rng = rand::rng();
                for _ in 0..iterations {
                    if stop_at_first_leak && wrong.load(Ordering::Relaxed) > 0 {
                        return;
                    }
                    let tenant = TENANTS[rng.random_range(0..TENANTS.len())];
                    let rows = read(&pool, tenant);
                    assert!(!rows.is_empty());
                    let bad = rows.iter().filter(|r| r.as_str() != tenant).count();
                    wrong.fetch_add(bad, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    wrong.load(Ordering::Relaxed)
}

#[test]
fn transaction_form_isolates_tenants_behind_transaction_pooling() {
    let db = test_database!();
    setup(&db);
    let bouncer = PgBouncer::start(
        &server_url(),
        db.name(),
        PoolMode::Transaction,
        SERVER_CONNECTIONS,
    );
    let pool = bouncer_pool(&bouncer);
    let wrong = hammer(&pool, 500, false, |pool, tenant| {
        pool.transaction(&tenant, |conn| {
            notes::table
                .select(notes::tenant)
                .load::<String>(conn)
                .map_err(Error::from)
        })
        .expect("tenant transaction")
    });
    assert_eq!(
        wrong,
        0,
        "{} transactions behind PgBouncer read rows of another tenant",
        CLIENTS * 500
    );
}

#[test]
fn session_form_leaks_behind_transaction_pooling() {
    let db = test_database!();
    setup(&db);
    let bouncer = PgBouncer::start(
        &server_url(),
        db.name(),
        PoolMode::Transaction,
        SERVER_CONNECTIONS,
    );
    let pool = bouncer_pool(&bouncer);
    // The session form sets the path on whichever server connection PgBouncer lent for that
    // one statement; the next statement may run on another one. This is why the docs say to
    // use `TenantPool::transaction` behind transaction pooling.
    let wrong = hammer(&pool, 2_500, true, |pool, tenant| {
        // A statement that lands on a server connection with no tenant path fails: that is a
        // leak too, counted as a wrong row.
        let Ok(mut scope) = pool.scope(&tenant) else {
            return vec!["<no such schema on this server connection>".to_owned()];
        };
        notes::table
            .select(notes::tenant)
            .load::<String>(&mut *scope)
            .unwrap_or_else(|e| vec![format!("<error: {e}>")])
    });
    assert!(
        wrong > 0,
        "expected the session form to read another tenant's rows behind transaction pooling"
    );
}
