//! HTTP end to end for the async extractors: the async web example's service on a real
//! socket, real HTTP/1.1 requests with Host headers, as `routing_http` does for the sync one.

use axum::Router;
use axum::routing::get as on_get;
use diesel::connection::SimpleConnection;
use pgschemas_diesel::routing::layer::{TenancyLayer, TenantConn, TenantTx};
use pgschemas_diesel::{AsyncTenantPool, TenantPool, test_database};
use tower::Layer;

use crate::routing_http::{Reply, Server, get, serve};

// The async example includes the sync one (`web_async::web`), which `routing_http` includes
// too: two copies of `examples/web.rs`, as in the two example binaries.
#[allow(dead_code, unreachable_pub, clippy::duplicate_mod)]
#[path = "../examples/web_async.rs"]
mod web_async;

use web_async::web;

/// The async example on `db_url`, with an async pool of `size` connections.
fn example(db_url: &str, size: usize) -> (web_async::AsyncApp, Server) {
    let mut app = web_async::setup(db_url).unwrap();
    let deadpool = AsyncTenantPool::builder(db_url)
        .max_size(size)
        .build()
        .unwrap();
    app.pool = AsyncTenantPool::from_deadpool(deadpool, app.config.clone());
    let server = serve(web_async::service(&app));
    (app, server)
}

/// The sites of the example with a database page: (host, folder prefix, schema, via).
const SITES: [(&str, &str, &str, &str); 4] = [
    ("localhost", "", "www", "StaticDomain"),
    ("blog.localhost", "", "blog", "StaticDomain"),
    ("tenant1.localhost", "", "tenant1", "DynamicDomain"),
    ("tenants.localhost", "/tenant2", "tenant2", "DynamicFolder"),
];

/// The database pages: `/` (the session form, `TenantConn`), `/tx` (the transaction form,
/// `TenantTx`).
const PAGES: [&str; 2] = ["/", "/tx"];

/// Asserts `reply` is the page of `schema`, routed `via`, with that schema's rows only.
fn assert_own_rows(reply: &Reply, schema: &str, via: &str) {
    assert_eq!(reply.status, 200, "{schema}: {reply:?}");
    assert!(
        reply
            .body
            .starts_with(&format!("schema: {schema}\nvia: {via}\nnotes:\n")),
        "{reply:?}"
    );
    assert!(
        reply.body.contains(&format!("- welcome to {schema}\n")),
        "{reply:?}"
    );
    assert!(
        reply.body.contains(&format!("- second note of {schema}\n")),
        "{reply:?}"
    );
    assert_eq!(reply.body.matches("welcome to").count(), 1, "{reply:?}");
}

// Each tenant's host (and the folder route) reads its own rows, in both forms; the pages
// without database work answer as in the sync example.
#[test]
fn each_tenant_reads_its_own_rows() {
    let db = test_database!();
    let (_app, server) = example(db.url(), 2);
    for (host, prefix, schema, via) in SITES {
        for page in PAGES {
            let path = format!("{prefix}{page}");
            assert_own_rows(&get(&server, host, &path), schema, via);
        }
        let reply = get(&server, host, &format!("{prefix}/hello"));
        assert_eq!(reply.body, format!("hello from {schema}\n"), "{host}");
        let reply = get(&server, host, &format!("{prefix}/non-existing/"));
        assert_eq!(reply.status, 404, "{host}: {reply:?}");
    }
    assert_eq!(get(&server, "tenant3.localhost", "/").status, 403);
    assert_eq!(get(&server, "nobody.localhost", "/").status, 404);
}

// A routed tenant whose schema is gone: both forms answer what the sync example answers
// (500, the error's report), and the pool goes on serving the other tenants.
#[test]
fn a_missing_schema_answers_as_the_sync_example() {
    let db = test_database!();
    let (app, server) = example(db.url(), 1);
    db.connect()
        .batch_execute("DROP SCHEMA tenant2 CASCADE")
        .unwrap();
    let sync = serve(web::service(&web::App {
        config: app.config.clone(),
        table: app.table.clone(),
        pool: TenantPool::new(db.url(), app.config.clone()).unwrap(),
    }));
    let want = get(&sync, "tenants.localhost", "/tenant2/");
    assert_eq!(want.status, 500, "{want:?}");
    assert!(
        want.body.contains("schema \"tenant2\" does not exist"),
        "{want:?}"
    );
    for page in PAGES {
        let reply = get(&server, "tenants.localhost", &format!("/tenant2{page}"));
        assert_eq!(reply.status, want.status, "{page}: {reply:?}");
        assert_eq!(reply.body, want.body, "{page}");
    }
    for page in PAGES {
        let reply = get(&server, "tenant1.localhost", page);
        assert_own_rows(&reply, "tenant1", "DynamicDomain");
    }
}

// Concurrent requests to different tenants over a pool of 2: every answer is its own
// tenant's, in both forms.
#[test]
fn concurrent_requests_never_mix() {
    const CLIENTS: usize = 8;
    const REQUESTS: usize = 40;
    let db = test_database!();
    let (_app, server) = example(db.url(), 2);
    std::thread::scope(|threads| {
        for client in 0..CLIENTS {
            let server = &server;
            threads.spawn(move || {
                for i in 0..REQUESTS {
                    let (host, prefix, schema, via) = SITES[(client + i) % SITES.len()];
                    let page = PAGES[(client / SITES.len() + i) % PAGES.len()];
                    let reply = get(server, host, &format!("{prefix}{page}"));
                    assert_own_rows(&reply, schema, via);
                }
            });
        }
    });
}

#[test]
fn async_extractors_without_the_layer_explain_themselves() {
    let db = test_database!();
    let app = web_async::setup(db.url()).unwrap();
    async fn needs_conn(conn: TenantConn) -> String {
        conn.schema().to_string()
    }
    async fn needs_tx(tx: TenantTx) -> String {
        tx.route().schema().to_string()
    }
    let router = Router::new()
        .route("/conn", on_get(needs_conn))
        .route("/tx", on_get(needs_tx))
        .with_state(app.pool.clone());
    let server = serve(router.clone());
    for path in ["/conn", "/tx"] {
        let reply = get(&server, "localhost", path);
        assert_eq!(reply.status, 500, "{path}");
        assert!(reply.body.contains("TenancyLayer"), "{reply:?}");
    }
    let server = serve(TenancyLayer::new(app.table.clone()).layer(router));
    assert_eq!(get(&server, "localhost", "/conn").body, "www");
    assert_eq!(get(&server, "localhost", "/tx").body, "www");
}
