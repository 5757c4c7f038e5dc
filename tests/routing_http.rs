//! HTTP end to end: the web example's service on a real socket, real HTTP/1.1 requests with
//! Host headers. django-pgschemas' `test_tenant_views.py` status table, the routing and
//! redirect tables of `test_middleware.py`, and `bugs/test_url_cache.py`, adapted.

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use axum::Router;
use axum::extract::{OriginalUri, Request};
use axum::http::Uri;
use axum::response::Response;
use axum::routing::get as on_get;
use diesel::connection::SimpleConnection;
use http::HeaderName;
use pgschemas_diesel::routing::layer::TenancyLayer;
use pgschemas_diesel::{routing::Route, test_database};
use tower::{Layer, Service};

use crate::routing::eventually;

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/web.rs"]
mod web;

/// A service served on 127.0.0.1 (any port) until dropped.
pub(crate) struct Server {
    addr: SocketAddr,
    _runtime: tokio::runtime::Runtime,
}

pub(crate) fn serve<S>(service: S) -> Server
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(async move {
        let make = axum::ServiceExt::<Request>::into_make_service(service);
        axum::serve(listener, make).await.unwrap();
    });
    Server {
        addr,
        _runtime: runtime,
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `GET path` with `Host: host` (and `extra` headers) on a new connection.
fn get_with(server: &Server, host: &str, path: &str, extra: &[(&str, &str)]) -> Reply {
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in extra {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete response");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

pub(crate) fn get(server: &Server, host: &str, path: &str) -> Reply {
    get_with(server, host, path, &[])
}

fn example(db_url: &str) -> (web::App, Server) {
    let app = web::setup(db_url).unwrap();
    let server = serve(web::service(&app));
    (app, server)
}

// test_tenant_views.py: statuses per tenant kind, by subdomain and by subfolder.
#[test]
fn tenant_views() {
    let db = test_database!();
    let (_app, server) = example(db.url());
    let www = [
        ("/", 200),
        ("/register/", 200),
        ("/admin/", 302),
        ("/non-existing/", 404),
    ];
    let blog = [
        ("/", 200),
        ("/entries/", 200),
        ("/admin/", 302),
        ("/register/", 404),
        ("/non-existing/", 404),
    ];
    let customers = [
        ("/", 200),
        ("/profile/", 200),
        ("/login/", 200),
        ("/profile/advanced/", 302),
        ("/admin/", 302),
        ("/register/", 404),
        ("/non-existing/", 404),
    ];
    type Site<'a> = (&'a str, &'a str, &'a str, &'a [(&'a str, u16)]);
    let sites: [Site<'_>; 4] = [
        ("localhost", "", "www", &www),
        ("blog.localhost", "", "blog", &blog),
        ("tenant1.localhost", "", "tenant1", &customers),
        ("tenants.localhost", "/tenant2", "tenant2", &customers),
    ];
    for (host, prefix, schema, pages) in sites {
        for &(page, status) in pages {
            let path = format!("{prefix}{page}");
            let reply = get(&server, host, &path);
            assert_eq!(reply.status, status, "{host}{path}: {reply:?}");
            if page == "/" {
                assert!(
                    reply.body.starts_with(&format!("schema: {schema}\n")),
                    "{reply:?}"
                );
                // Rows from that schema's own table, and only those.
                assert!(
                    reply.body.contains(&format!("- welcome to {schema}\n")),
                    "{reply:?}"
                );
                assert_eq!(reply.body.matches("welcome to").count(), 1, "{reply:?}");
            }
            if page == "/admin/" {
                let want = format!("{prefix}/admin/login/");
                assert_eq!(
                    reply.header("location"),
                    Some(want.as_str()),
                    "{host}{path}"
                );
            }
        }
    }
}

// test_middleware.py::TestDomainRoutingMiddleware::test_tenant_matching, over HTTP.
#[test]
fn domain_routing() {
    let db = test_database!();
    let (_app, server) = example(db.url());
    let table = [
        ("tenant1.localhost", "", Some(("tenant1", "DynamicDomain"))),
        (
            "tenants.localhost",
            "tenant1",
            Some(("tenant1", "DynamicFolder")),
        ),
        (
            "tenants.localhost",
            "tenant2",
            Some(("tenant2", "DynamicFolder")),
        ),
        ("tenant9.localhost", "", None),
        ("localhost", "", Some(("www", "StaticDomain"))),
        ("blog.localhost", "", Some(("blog", "StaticDomain"))),
        ("tenants.localhost", "", Some(("www", "FallbackDomain"))),
        (
            "www.tenant1.localhost:3000",
            "",
            Some(("tenant1", "DynamicDomain")),
        ),
        ("TENANT1.LOCALHOST.", "", Some(("tenant1", "DynamicDomain"))),
    ];
    for (host, folder, want) in table {
        // django's table requests /<folder>/some/path/; the example's page is /hello.
        let path = if folder.is_empty() {
            "/hello".to_owned()
        } else {
            format!("/{folder}/hello")
        };
        let reply = get(&server, host, &path);
        match want {
            None => {
                assert_eq!(reply.status, 404, "{host}{path}: {reply:?}");
                assert!(reply.body.contains("no tenant for host"), "{reply:?}");
            }
            Some((schema, _)) => {
                assert_eq!(reply.status, 200, "{host}{path}: {reply:?}");
                assert_eq!(reply.body, format!("hello from {schema}\n"), "{host}{path}");
            }
        }
        if let Some((schema, via)) = want {
            let reply = get(&server, host, &path.replace("hello", ""));
            assert_eq!(reply.status, 200, "{host}{path}: {reply:?}");
            assert!(
                reply
                    .body
                    .starts_with(&format!("schema: {schema}\nvia: {via}\n")),
                "{host}{path}: {reply:?}"
            );
        }
    }
}

// test_middleware.py::TestDomainRoutingMiddlewareRedirection, over HTTP.
#[test]
fn redirects_to_primary() {
    let db = test_database!();
    let (_app, server) = example(db.url());
    let table = [
        (
            "tenant1redirect.localhost",
            "/some/random/url/",
            "//tenant1.localhost/some/random/url/",
        ),
        (
            "tenants.localhost",
            "/tenant1redirect/some/random/url/",
            "//tenant1.localhost/some/random/url/",
        ),
        (
            "tenant2redirect.localhost",
            "/some/random/url/",
            "//tenants.localhost/tenant2/some/random/url/",
        ),
        (
            "tenants.localhost",
            "/tenant2redirect/some/random/url/",
            "//tenants.localhost/tenant2/some/random/url/",
        ),
        // Beyond django: the port and the query are kept.
        (
            "tenant1redirect.localhost:3000",
            "/a/?b=1",
            "//tenant1.localhost:3000/a/?b=1",
        ),
    ];
    for (host, path, location) in table {
        let reply = get(&server, host, path);
        assert_eq!(reply.status, 301, "{host}{path}: {reply:?}");
        assert_eq!(reply.header("location"), Some(location), "{host}{path}");
    }
}

// bugs/test_url_cache.py: URLs built for one tenant never carry another's prefix.
#[test]
fn each_request_builds_its_own_urls() {
    let db = test_database!();
    let (_app, server) = example(db.url());
    for order in [["tenant2", "tenant1"], ["tenant1", "tenant2"]] {
        for tenant in order {
            let reply = get(
                &server,
                "tenants.localhost",
                &format!("/{tenant}/profile/advanced/"),
            );
            assert_eq!(reply.status, 302);
            let want = format!("/{tenant}/login/?next=/{tenant}/profile/advanced/");
            assert_eq!(reply.header("location"), Some(want.as_str()));
        }
        let reply = get(&server, "tenant1.localhost", "/profile/advanced/");
        assert_eq!(
            reply.header("location"),
            Some("/login/?next=/profile/advanced/")
        );
    }
}

#[test]
fn suspended_unknown_and_malformed_hosts() {
    let db = test_database!();
    let (_app, server) = example(db.url());
    let reply = get(&server, "tenant3.localhost", "/");
    assert_eq!(reply.status, 403, "{reply:?}");
    assert!(!reply.body.contains("tenant3"), "{reply:?}");
    for host in [
        "nobody.localhost",
        "a..b",
        "localhost:99999",
        "[::1]",
        "user@localhost",
    ] {
        let reply = get(&server, host, "/");
        assert_eq!(reply.status, 404, "{host}: {reply:?}");
    }
}

// test_middleware.py::TestHeadersRoutingMiddleware, over HTTP, with header routing on.
#[test]
fn header_routing() {
    let db = test_database!();
    let app = web::setup(db.url()).unwrap();
    let service = TenancyLayer::new(app.table.clone())
        .header_routing(HeaderName::from_static("tenant"))
        .layer(web::per_tenant(app.pool.clone()));
    let server = serve(service);
    let id1 = app
        .table
        .resolve("tenant1.localhost", "/")
        .route()
        .and_then(|r| r.tenant_id().map(str::to_owned))
        .unwrap();
    for (value, schema) in [
        ("www", "www"),
        ("main", "www"),
        ("blog", "blog"),
        ("tenant1", "tenant1"),
        (id1.as_str(), "tenant1"),
    ] {
        // The header wins over the host.
        let reply = get_with(&server, "blog.localhost", "/", &[("tenant", value)]);
        assert_eq!(reply.status, 200, "{value}: {reply:?}");
        assert!(
            reply
                .body
                .starts_with(&format!("schema: {schema}\nvia: Header\n")),
            "{value}: {reply:?}"
        );
    }
    let reply = get_with(&server, "localhost", "/", &[("tenant", "tenant3")]);
    assert_eq!(reply.status, 403);
    let reply = get_with(&server, "localhost", "/", &[("tenant", "public")]);
    assert_eq!(reply.status, 404);
    assert!(
        reply.body.contains("no tenant for header value"),
        "{reply:?}"
    );
    // Without the header, the host decides.
    let reply = get(&server, "blog.localhost", "/");
    assert!(reply.body.starts_with("schema: blog\n"), "{reply:?}");
}

#[test]
fn follows_a_new_tenant_while_serving() {
    let db = test_database!();
    let (app, server) = example(db.url());
    assert_eq!(get(&server, "tenant4.localhost", "/").status, 404);
    let mut conn = db.connect();
    conn.batch_execute(
        "CREATE SCHEMA tenant4;
         CREATE TABLE tenant4.notes (id serial PRIMARY KEY, body text NOT NULL);
         INSERT INTO tenant4.notes (body) VALUES ('welcome to tenant4');
         WITH t AS (INSERT INTO tenants (schema_name, name) VALUES ('tenant4', 'Four') RETURNING id)
         INSERT INTO domains (tenant_id, domain, is_primary) SELECT id, 'tenant4.localhost', true FROM t;",
    )
    .unwrap();
    eventually(&app.table, "tenant4 routed", |t| {
        t.resolve("tenant4.localhost", "/").route().is_some()
    });
    let reply = get(&server, "tenant4.localhost", "/");
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(reply.body.contains("welcome to tenant4"), "{reply:?}");

    conn.batch_execute("UPDATE tenants SET status = 'suspended' WHERE schema_name = 'tenant4'")
        .unwrap();
    eventually(&app.table, "tenant4 suspended", |t| {
        t.resolve("tenant4.localhost", "/").route().is_none()
    });
    assert_eq!(get(&server, "tenant4.localhost", "/").status, 403);
}

/// The layer's mechanics, on a router of its own: the folder is stripped before routing,
/// the query kept, the original URI available.
#[test]
fn folder_prefix_is_stripped_before_routing() {
    let db = test_database!();
    let app = web::setup(db.url()).unwrap();
    async fn echo(route: Route, uri: Uri, OriginalUri(original): OriginalUri) -> String {
        format!("{} {uri} {original} {}", route.schema(), route.url("/x"))
    }
    let router = Router::new()
        .route("/", on_get(echo))
        .route("/a/b", on_get(echo));
    let server = serve(TenancyLayer::new(app.table.clone()).layer(router));
    for (path, want) in [
        (
            "/tenant2/a/b?q=1",
            "tenant2 /a/b?q=1 /tenant2/a/b?q=1 /tenant2/x",
        ),
        ("/tenant2", "tenant2 / /tenant2 /tenant2/x"),
        ("/tenant2?q", "tenant2 /?q /tenant2?q /tenant2/x"),
        ("/tenant2/", "tenant2 / /tenant2/ /tenant2/x"),
        ("/a/b", "www /a/b /a/b /x"),
    ] {
        let reply = get(&server, "tenants.localhost", path);
        assert_eq!(reply.status, 200, "{path}: {reply:?}");
        assert_eq!(reply.body, want, "{path}");
    }
    // Absolute form: the URI's authority decides, not the Host header.
    let reply = get(
        &server,
        "localhost",
        "http://tenants.localhost/tenant2/a/b?q=1",
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.body,
        "tenant2 http://tenants.localhost/a/b?q=1 http://tenants.localhost/tenant2/a/b?q=1 /tenant2/x"
    );
}

#[test]
fn extractors_without_the_layer_explain_themselves() {
    let db = test_database!();
    let app = web::setup(db.url()).unwrap();
    async fn needs_route(route: Route) -> String {
        route.schema().to_string()
    }
    async fn needs_db(db: pgschemas_diesel::routing::layer::TenantDb) -> String {
        db.route().schema().to_string()
    }
    let router = Router::new()
        .route("/", on_get(needs_route))
        .route("/db", on_get(needs_db))
        .with_state(app.pool.clone());
    let server = serve(router.clone());
    for path in ["/", "/db"] {
        let reply = get(&server, "localhost", path);
        assert_eq!(reply.status, 500, "{path}");
        assert!(reply.body.contains("TenancyLayer"), "{reply:?}");
    }
    let server = serve(TenancyLayer::new(app.table.clone()).layer(router));
    assert_eq!(get(&server, "localhost", "/").body, "www");
    assert_eq!(get(&server, "localhost", "/db").body, "www");
}
