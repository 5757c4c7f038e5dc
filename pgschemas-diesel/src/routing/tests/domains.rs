//! Domain routing: django-pgschemas' `TestDomainRoutingMiddleware` tables and redirects.

use super::*;

// test_middleware.py::TestDomainRoutingMiddleware::test_tenant_matching
#[test]
fn tenant_matching() {
    let routes = matching_routes();
    let table: &[(&str, &str, Option<&str>, Via)] = &[
        ("tenant1.localhost", "", Some("tenant1"), Via::DynamicDomain),
        (
            "tenants.localhost",
            "tenant1",
            Some("tenant1"),
            Via::DynamicFolder,
        ),
        ("tenant2.localhost", "", Some("tenant2"), Via::DynamicDomain),
        (
            "tenants.localhost",
            "tenant2",
            Some("tenant2"),
            Via::DynamicFolder,
        ),
        ("tenant3.localhost", "", None, Via::Header),
        ("localhost", "", Some("www"), Via::StaticDomain),
        ("blog.localhost", "", Some("blog"), Via::StaticDomain),
        ("tenants.localhost", "", Some("www"), Via::FallbackDomain),
    ];
    for &(host, folder, schema, via) in table {
        let path = format!("/{folder}/some/path/");
        let got = route(&routes, host, &path);
        match schema {
            None => assert!(got.is_none(), "{host}{path}: {got:?}"),
            Some(schema) => {
                let r = got.unwrap_or_else(|| panic!("{host}{path}: not found"));
                assert_eq!(r.schema().as_str(), schema, "{host}{path}");
                assert_eq!(r.via(), via, "{host}{path}");
                assert_eq!(r.domain(), Some(host), "{host}{path}");
                let want_folder = (!folder.is_empty()).then_some(folder);
                assert_eq!(r.folder(), want_folder, "{host}{path}");
                assert_eq!(r.is_static(), schema == "www" || schema == "blog");
            }
        }
    }
}

// test_middleware.py::TestDomainRoutingMiddlewareRedirection::test_redirection
#[test]
fn redirection() {
    let routes = redirect_routes();
    let table = [
        (
            "tenant1redirect.localhost",
            "/some/random/url/",
            "//tenant1.localhost/some/random/url/",
        ),
        (
            "everyone.localhost",
            "/tenant1redirect/some/random/url/",
            "//tenant1.localhost/some/random/url/",
        ),
        (
            "tenant2redirect.localhost",
            "/some/random/url/",
            "//everyone.localhost/tenant2/some/random/url/",
        ),
        (
            "everyone.localhost",
            "/tenant2redirect/some/random/url/",
            "//everyone.localhost/tenant2/some/random/url/",
        ),
    ];
    for (host, path, location) in table {
        match routes.resolve(host, path) {
            Resolution::Redirect(r) => assert_eq!(r.location(), location, "{host}{path}"),
            other => panic!("{host}{path}: expected a redirect, got {other:?}"),
        }
    }
    // The primaries themselves are served.
    let r = route(&routes, "tenant1.localhost", "/some/random/url/").expect("served");
    assert_eq!(r.schema().as_str(), "tenant1");
    let r = route(&routes, "everyone.localhost", "/tenant2/x").expect("served");
    assert_eq!(r.schema().as_str(), "tenant2");
}

// Beyond django: the request's port and query survive the redirect; odd paths stay on the
// primary host.
#[test]
fn redirect_details() {
    let routes = redirect_routes();
    let table = [
        (
            "tenant1redirect.localhost:3000",
            "/a?b=1",
            "//tenant1.localhost:3000/a?b=1",
        ),
        (
            "everyone.localhost",
            "/tenant1redirect",
            "//tenant1.localhost/",
        ),
        (
            "everyone.localhost",
            "/tenant1redirect?x=1",
            "//tenant1.localhost/?x=1",
        ),
        (
            "tenant2redirect.localhost",
            "",
            "//everyone.localhost/tenant2/",
        ),
        (
            "tenant1redirect.localhost",
            "//evil.example.com/",
            "//tenant1.localhost//evil.example.com/",
        ),
        (
            "tenant1redirect.localhost",
            "/a b/\u{e9}",
            "//tenant1.localhost/a%20b/%C3%A9",
        ),
        (
            "WWW.Tenant1Redirect.LOCALHOST.",
            "/",
            "//tenant1.localhost/",
        ),
    ];
    for (host, path, location) in table {
        match routes.resolve(host, path) {
            Resolution::Redirect(r) => {
                assert_eq!(r.location(), location, "{host}{path}");
                let schema = if location.contains("tenant2") {
                    "tenant2"
                } else {
                    "tenant1"
                };
                assert_eq!(r.schema().as_str(), schema);
            }
            other => panic!("{host}{path}: expected a redirect, got {other:?}"),
        }
    }
}
