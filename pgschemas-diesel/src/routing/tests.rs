//! Table-driven routing tests, no database: django-pgschemas' `test_middleware.py` and
//! `test_models.py` tables, then edge cases and properties.

use proptest::prelude::*;

use super::*;
use crate::catalog::{DomainRecord, TenantRecord};
use crate::config::{Config, StaticTenant};
use crate::name::SchemaName;

fn tenant(id: &str, schema: &str) -> TenantRecord {
    TenantRecord {
        id: id.into(),
        schema: SchemaName::new(schema).expect("valid"),
        active: true,
    }
}

fn domain(tenant_id: &str, domain: &str, folder: Option<&str>, primary: bool) -> DomainRecord {
    DomainRecord {
        tenant_id: tenant_id.into(),
        domain: domain.into(),
        folder: folder.map(Into::into),
        is_primary: primary,
        redirect_to_primary: false,
    }
}

fn redirecting(tenant_id: &str, d: &str, folder: Option<&str>) -> DomainRecord {
    DomainRecord {
        redirect_to_primary: true,
        ..domain(tenant_id, d, folder, false)
    }
}

/// The sandbox configuration: `www` (localhost, fallback tenants.localhost, alias `main`)
/// and `blog` (blog.localhost).
fn sandbox() -> Config {
    Config::builder()
        .static_tenant(
            StaticTenant::builder("www")
                .domain("localhost")
                .fallback_domain("tenants.localhost")
                .header("main"),
        )
        .static_tenant(StaticTenant::builder("blog").domain("blog.localhost"))
        .build()
        .expect("valid configuration")
}

fn tenants() -> Vec<TenantRecord> {
    vec![
        tenant("1", "tenant1"),
        tenant("2", "tenant2"),
        tenant("3", "tenant3"),
    ]
}

/// `TestDomainRoutingMiddleware._setup`.
fn matching_routes() -> Routes {
    let domains = [
        domain("1", "tenant1.localhost", None, true),
        domain("1", "tenants.localhost", Some("tenant1"), false),
        domain("2", "tenant2.localhost", None, true),
        domain("2", "tenants.localhost", Some("tenant2"), false),
    ];
    let routes = Routes::build(&sandbox(), &tenants(), &domains);
    assert_eq!(routes.warnings(), &[] as &[String]);
    routes
}

/// `TestDomainRoutingMiddlewareRedirection._setup`.
fn redirect_routes() -> Routes {
    let domains = [
        domain("1", "tenant1.localhost", None, true),
        redirecting("1", "tenant1redirect.localhost", None),
        redirecting("1", "everyone.localhost", Some("tenant1redirect")),
        domain("2", "everyone.localhost", Some("tenant2"), true),
        redirecting("2", "tenant2redirect.localhost", None),
        redirecting("2", "everyone.localhost", Some("tenant2redirect")),
    ];
    let routes = Routes::build(&sandbox(), &tenants(), &domains);
    assert_eq!(routes.warnings(), &[] as &[String]);
    routes
}

fn route(routes: &Routes, host: &str, path: &str) -> Option<Route> {
    match routes.resolve(host, path) {
        Resolution::Route(r) => Some(r),
        Resolution::NotFound => None,
        other => panic!("{host}{path}: expected a route or not found, got {other:?}"),
    }
}

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

// test_middleware.py::TestHeadersRoutingMiddleware (and the session table, same lookups).
#[test]
fn header_matching() {
    let routes = matching_routes();
    let table = [
        ("www", Some("www")),
        ("main", Some("www")),
        ("blog", Some("blog")),
        ("tenant1", Some("tenant1")),
        ("tenant3", Some("tenant3")),
        ("2", Some("tenant2")),
        ("public", None),
        ("WWW", None),
        ("Tenant1", None),
        ("", None),
        ("tenant1 ", None),
        ("nobody", None),
    ];
    for (value, schema) in table {
        match (routes.resolve_header(value), schema) {
            (Resolution::Route(r), Some(schema)) => {
                assert_eq!(r.schema().as_str(), schema, "{value:?}");
                assert_eq!(r.via(), Via::Header);
                assert_eq!(r.domain(), None);
                assert_eq!(r.prefix(), "");
            }
            (Resolution::NotFound, None) => {}
            (other, _) => panic!("{value:?}: unexpected {other:?}"),
        }
    }
}

#[test]
fn header_ids_are_case_insensitive() {
    let tenants = [tenant("A1B2-UUID", "acme")];
    let routes = Routes::build(&sandbox(), &tenants, &[]);
    for value in ["A1B2-UUID", "a1b2-uuid", "a1B2-Uuid", "acme"] {
        let r = routes.resolve_header(value);
        assert_eq!(
            r.route().map(|r| r.schema().as_str()),
            Some("acme"),
            "{value}"
        );
    }
    assert!(matches!(
        routes.resolve_header("ACME"),
        Resolution::NotFound
    ));
}

// test_models.py::test_absolute_url, through the route of a folder domain.
#[test]
fn absolute_urls() {
    let tenants = [tenant("1", "tenant1")];
    let bare = Routes::build(
        &Config::default(),
        &tenants,
        &[domain("1", "tenants.localhost", None, true)],
    );
    let r = route(&bare, "tenants.localhost", "/").expect("routed");
    assert_eq!(r.absolute_url(""), "//tenants.localhost/");

    let folder = Routes::build(
        &Config::default(),
        &tenants,
        &[domain("1", "tenants.localhost", Some("tenant1"), true)],
    );
    let r = route(&folder, "tenants.localhost", "/tenant1/").expect("routed");
    for (path, want) in [
        ("", "//tenants.localhost/tenant1/"),
        ("some/path", "//tenants.localhost/tenant1/some/path"),
        ("/some/path", "//tenants.localhost/tenant1/some/path"),
        ("/some/path/", "//tenants.localhost/tenant1/some/path/"),
    ] {
        assert_eq!(r.absolute_url(path), want, "{path:?}");
    }
    assert_eq!(r.url("/profile/"), "/tenant1/profile/");
    assert_eq!(r.url("profile/"), "/tenant1/profile/");
    assert_eq!(r.prefix(), "/tenant1");
}

// test_models.py: a primary never redirects; without a primary there is nowhere to
// redirect to, so the route is served.
#[test]
fn primary_and_redirect_flags() {
    let tenants = [tenant("1", "tenant1"), tenant("2", "tenant2")];
    let mut primary_redirecting = redirecting("1", "tenant1.localhost", None);
    primary_redirecting.is_primary = true;
    let domains = [
        primary_redirecting,
        redirecting("2", "tenant2.localhost", None),
    ];
    let routes = Routes::build(&Config::default(), &tenants, &domains);
    for (host, schema) in [
        ("tenant1.localhost", "tenant1"),
        ("tenant2.localhost", "tenant2"),
    ] {
        let r = route(&routes, host, "/x").expect("served");
        assert_eq!(r.schema().as_str(), schema);
    }
}

// Two primaries (the model prevents it; a custom catalog may not): the redirect still goes
// to one of them, the same one whatever the catalog's order.
#[test]
fn two_primaries_are_deterministic() {
    let tenants = [tenant("1", "tenant1")];
    let a = domain("1", "a.localhost", None, true);
    let b = domain("1", "b.localhost", None, true);
    let r = redirecting("1", "r.localhost", None);
    let one = Routes::build(
        &Config::default(),
        &tenants,
        &[a.clone(), b.clone(), r.clone()],
    );
    let two = Routes::build(&Config::default(), &tenants, &[r, b, a]);
    let loc = |routes: &Routes| match routes.resolve("r.localhost", "/") {
        Resolution::Redirect(r) => r.location().to_owned(),
        other => panic!("{other:?}"),
    };
    assert_eq!(loc(&one), loc(&two));
    assert_eq!(loc(&one), "//a.localhost/");
}

#[test]
fn resolution_order() {
    // One host claimed by a static domain and dynamic routes: the static tenant wins.
    let config = Config::builder()
        .static_tenant(StaticTenant::builder("www").domain("shared.localhost"))
        .build()
        .expect("valid");
    let domains = [
        domain("1", "shared.localhost", Some("tenant1"), true),
        domain("2", "shared.localhost", None, true),
    ];
    let routes = Routes::build(&config, &tenants(), &domains);
    let r = route(&routes, "shared.localhost", "/tenant1/").expect("routed");
    assert_eq!((r.schema().as_str(), r.via()), ("www", Via::StaticDomain));
    assert_eq!(r.folder(), None, "static tenants never match by folder");

    // Without the static domain: folder, then bare domain, and the fallback is never used.
    let config = Config::builder()
        .static_tenant(StaticTenant::builder("blog").fallback_domain("shared.localhost"))
        .build()
        .expect("valid");
    let routes = Routes::build(&config, &tenants(), &domains);
    let cases = [
        ("/tenant1/", "tenant1", Via::DynamicFolder),
        ("/tenant1", "tenant1", Via::DynamicFolder),
        ("/tenant1?x", "tenant1", Via::DynamicFolder),
        ("/tenant10/", "tenant2", Via::DynamicDomain),
        ("/Tenant1/", "tenant2", Via::DynamicDomain),
        ("/", "tenant2", Via::DynamicDomain),
        ("", "tenant2", Via::DynamicDomain),
        ("//tenant1/", "tenant2", Via::DynamicDomain),
        ("/other/tenant1/", "tenant2", Via::DynamicDomain),
    ];
    for (path, schema, via) in cases {
        let r = route(&routes, "shared.localhost", path).expect("routed");
        assert_eq!((r.schema().as_str(), r.via()), (schema, via), "{path:?}");
    }

    // Only a folder and a fallback: other paths fall back to the static tenant.
    let routes = Routes::build(&config, &tenants(), &domains[..1]);
    let r = route(&routes, "shared.localhost", "/other/").expect("fallback");
    assert_eq!(
        (r.schema().as_str(), r.via()),
        ("blog", Via::FallbackDomain)
    );
    let r = route(&routes, "shared.localhost", "/tenant1/x").expect("folder");
    assert_eq!(r.schema().as_str(), "tenant1");

    // A folder route alone: any other path on that host is not found.
    let routes = Routes::build(&Config::default(), &tenants(), &domains[..1]);
    assert!(route(&routes, "shared.localhost", "/other/").is_none());
    assert!(route(&routes, "shared.localhost", "/").is_none());
}

#[test]
fn host_variants() {
    let routes = matching_routes();
    let hits = [
        "localhost",
        "LOCALHOST",
        "localhost:8000",
        "localhost.",
        "localhost.:8000",
        "www.localhost",
        "WWW.localhost:80",
        "[::1]",
    ];
    for host in hits.iter().take(7) {
        let r = route(&routes, host, "/").unwrap_or_else(|| panic!("{host}"));
        assert_eq!(r.schema().as_str(), "www", "{host}");
        assert_eq!(r.domain(), Some("localhost"));
    }
    let misses = [
        hits[7],
        "",
        "www.www.localhost",
        "localhost..",
        "local host",
        "localhost:abc",
        "localhost:1:2",
        "localhost\0",
        "xlocalhost",
        "localhost.x",
        "tenants.localhost/tenant1",
    ];
    for host in misses {
        assert!(route(&routes, host, "/").is_none(), "{host:?}");
    }
    assert!(matches!(
        routes.resolve(b"local\xffhost".as_slice(), "/"),
        Resolution::NotFound
    ));
    assert!(matches!(
        routes.resolve("tenants.localhost", b"/tenant1\xff/".as_slice()),
        Resolution::Route(_)
    ));
}

#[test]
fn suspended_tenants() {
    let mut tenants = tenants();
    tenants[0].active = false;
    let domains = [
        domain("1", "tenant1.localhost", None, true),
        domain("1", "tenants.localhost", Some("tenant1"), false),
        redirecting("1", "old.localhost", None),
    ];
    let routes = Routes::build(&sandbox(), &tenants, &domains);
    for (host, path) in [
        ("tenant1.localhost", "/"),
        ("tenants.localhost", "/tenant1/x"),
        ("old.localhost", "/"),
    ] {
        match routes.resolve(host, path) {
            Resolution::Suspended(s) => assert_eq!(s.tenant_id(), "1"),
            other => panic!("{host}{path}: {other:?}"),
        }
    }
    for value in ["tenant1", "1"] {
        assert!(matches!(
            routes.resolve_header(value),
            Resolution::Suspended(_)
        ));
    }
    // The static fallback is not used for a suspended tenant's folder.
    assert!(matches!(
        routes.resolve("tenants.localhost", "/tenant1/"),
        Resolution::Suspended(_)
    ));
}

#[test]
fn catalog_domains_are_normalised() {
    let domains = [
        domain("1", "Tenant1.LocalHost.", None, true),
        domain("2", "www.tenant2.localhost", None, true),
        domain("3", "tenants3.localhost", Some(""), true),
    ];
    let routes = Routes::build(&sandbox(), &tenants(), &domains);
    assert_eq!(routes.warnings(), &[] as &[String]);
    for (host, schema) in [
        ("tenant1.localhost", "tenant1"),
        ("tenant2.localhost", "tenant2"),
        ("www.tenant2.localhost", "tenant2"),
        ("tenants3.localhost", "tenant3"),
    ] {
        let r = route(&routes, host, "/").unwrap_or_else(|| panic!("{host}"));
        assert_eq!(r.schema().as_str(), schema);
        assert_eq!(r.via(), Via::DynamicDomain);
    }
}

#[test]
fn bad_rows_are_left_out_with_a_warning() {
    let tenants = vec![
        tenant("1", "tenant1"),
        tenant("2", "www"),
        tenant("3", "public"),
        tenant("1", "tenant1_again"),
        tenant("4", "tenant1"),
        tenant("5", "tenant5"),
    ];
    let domains = [
        domain("1", "tenant1.localhost", None, true),
        domain("2", "www-dyn.localhost", None, true),
        domain("3", "public.localhost", None, true),
        domain("9", "orphan.localhost", None, true),
        domain("5", "tenant1.localhost", None, true),
        domain("5", "TENANT1.localhost", None, false),
        domain("5", "bad host.localhost", None, false),
        domain("5", "port.localhost:8000", None, false),
        domain("5", "x.localhost", Some("a/b"), false),
        domain("5", "x.localhost", Some(".."), false),
        domain("5", "tenant5.localhost", None, false),
    ];
    let routes = Routes::build(&sandbox(), &tenants, &domains);
    let w = routes.warnings().join("\n");
    for needle in [
        "tenant \"2\" left out: schema name \"www\" clashes with the static tenant",
        "tenant \"3\" left out: schema name \"public\" clashes with the shared schema",
        "tenant \"1\" left out: the id is used twice",
        "tenant \"4\" left out: schema \"tenant1\" already belongs to tenant \"1\"",
        "domain \"orphan.localhost\" of tenant \"9\" left out: no tenant has this id",
        "already belongs to tenant \"1\"",
        "\"bad host.localhost\" of tenant \"5\" left out: not a valid host name",
        "\"port.localhost:8000\" of tenant \"5\" left out: a stored domain must not have a port",
        "\"x.localhost/a/b\" of tenant \"5\" left out: the folder must be one URL path segment",
        "\"x.localhost/..\" of tenant \"5\"",
    ] {
        assert!(w.contains(needle), "missing {needle:?} in:\n{w}");
    }
    // Nothing clashing was routed; the good rows were.
    assert_eq!(
        route(&routes, "tenant1.localhost", "/").map(|r| r.schema().to_string()),
        Some("tenant1".into())
    );
    assert!(route(&routes, "www-dyn.localhost", "/").is_none());
    assert!(route(&routes, "public.localhost", "/").is_none());
    assert!(matches!(
        routes.resolve_header("public"),
        Resolution::NotFound
    ));
    assert_eq!(
        route(&routes, "tenant5.localhost", "/").map(|r| r.schema().to_string()),
        Some("tenant5".into())
    );

    // Each row left out is listed once, its warning its description.
    let invalid = routes.invalid_rows();
    assert_eq!(invalid.len(), 13, "{invalid:#?}");
    let described: Vec<String> = invalid.iter().map(ToString::to_string).collect();
    assert_eq!(described, routes.warnings());
    // A domain of a tenant left out says so.
    assert!(invalid.contains(&crate::catalog::InvalidRow::domain(
        "2",
        "www-dyn.localhost",
        "its tenant is left out"
    )));
}

#[test]
fn rows_left_out_by_the_catalog_read_come_first() {
    let rows = crate::catalog::CatalogRows {
        tenants: vec![tenant("1", "tenant1")],
        domains: vec![domain("1", "tenant1.localhost", None, true)],
        invalid: vec![crate::catalog::InvalidRow::tenant(
            "2",
            "Bad",
            "invalid schema name",
        )],
    };
    let routes = Routes::from_rows(&sandbox(), &rows);
    assert_eq!(routes.invalid_rows(), rows.invalid.as_slice());
    assert_eq!(
        routes.warnings(),
        ["tenant \"2\" left out: invalid schema name"]
    );
    assert_eq!(
        route(&routes, "tenant1.localhost", "/").map(|r| r.schema().to_string()),
        Some("tenant1".into())
    );
}

#[test]
fn counts() {
    let routes = matching_routes();
    // www: 1 domain + 1 fallback; blog: 1 domain; 4 dynamic rows.
    assert_eq!(routes.route_count(), 7);
    assert_eq!(routes.tenant_count(), 5);
    assert_eq!(routes.version(), 0);
}

#[test]
fn routes_do_not_share_prefixes() {
    // The reverse-with-prefix bug of django-pgschemas (#8) cannot exist: each route carries
    // its own prefix, whatever was resolved before.
    let routes = matching_routes();
    let r2 = route(&routes, "tenants.localhost", "/tenant2/profile/advanced/").expect("t2");
    let r1 = route(&routes, "tenants.localhost", "/tenant1/profile/advanced/").expect("t1");
    let bare = route(&routes, "tenant1.localhost", "/profile/advanced/").expect("bare");
    assert_eq!(r1.url("/login/"), "/tenant1/login/");
    assert_eq!(r2.url("/login/"), "/tenant2/login/");
    assert_eq!(bare.url("/login/"), "/login/");
}

fn allowed(routes: &Routes, schema: &str) -> bool {
    let _ = routes;
    ["www", "blog", "tenant1", "tenant2"].contains(&schema)
}

/// Tenant3 is suspended, so it must never come back as a route.
fn property_routes() -> Routes {
    let mut tenants = tenants();
    tenants[2].active = false;
    let domains = [
        domain("1", "tenant1.localhost", None, true),
        domain("1", "tenants.localhost", Some("tenant1"), false),
        domain("2", "tenants.localhost", Some("tenant2"), true),
        redirecting("2", "tenant2.localhost", None),
        domain("3", "tenant3.localhost", None, true),
    ];
    Routes::build(&sandbox(), &tenants, &domains)
}

fn check(routes: &Routes, resolution: Resolution) -> std::result::Result<(), TestCaseError> {
    match resolution {
        Resolution::Route(r) => {
            prop_assert!(allowed(routes, r.schema().as_str()), "{r:?}");
            prop_assert!(r.schema().as_str() != "tenant3");
        }
        Resolution::Redirect(r) => {
            prop_assert!(r.location().starts_with("//"));
            prop_assert!(
                r.location().bytes().all(|b| (0x21..=0x7e).contains(&b)),
                "{}",
                r.location()
            );
            prop_assert!(
                r.location().starts_with("//tenants.localhost/tenant2/")
                    || r.location().starts_with("//tenants.localhost:"),
                "{}",
                r.location()
            );
        }
        Resolution::Suspended(s) => prop_assert_eq!(s.tenant_id(), "3"),
        Resolution::NotFound => {}
    }
    Ok(())
}

fn hostish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("www.".to_owned()),
        Just("tenant1".to_owned()),
        Just("tenant2".to_owned()),
        Just("tenant3".to_owned()),
        Just("tenants".to_owned()),
        Just("localhost".to_owned()),
        Just(".".to_owned()),
        Just(":".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        "[0-9]{0,6}",
        "[A-Za-z]{0,3}",
        ".{0,2}",
    ];
    prop::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

fn pathish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("/".to_owned()),
        Just("tenant1".to_owned()),
        Just("tenant2".to_owned()),
        Just("tenant3".to_owned()),
        Just("?".to_owned()),
        Just("#".to_owned()),
        ".{0,3}",
    ];
    prop::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic_nor_escape(
        host in prop::collection::vec(any::<u8>(), 0..300),
        path in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let routes = property_routes();
        check(&routes, routes.resolve(&host, &path))?;
        check(&routes, routes.resolve_header(&host))?;
    }

    #[test]
    fn near_misses_never_panic_nor_escape(host in hostish(), path in pathish()) {
        let routes = property_routes();
        check(&routes, routes.resolve(&host, &path))?;
        check(&routes, routes.resolve_header(&host))?;
    }

    #[test]
    fn host_spelling_does_not_matter(
        upper in prop::collection::vec(any::<bool>(), 17),
        www in any::<bool>(),
        dot in any::<bool>(),
        port in prop::option::of(0u32..65536),
        path in pathish(),
    ) {
        let routes = property_routes();
        let mut host: String = "tenant1.localhost"
            .chars()
            .zip(&upper)
            .map(|(c, &u)| if u { c.to_ascii_uppercase() } else { c })
            .collect();
        if www { host.insert_str(0, "wWw."); }
        if dot { host.push('.'); }
        if let Some(p) = port { host.push_str(&format!(":{p}")); }
        let r = routes.resolve(&host, &path);
        prop_assert_eq!(r.route().map(|r| r.schema().as_str()), Some("tenant1"), "{}", host);
    }
}
