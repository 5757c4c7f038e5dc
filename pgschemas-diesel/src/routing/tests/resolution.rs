//! Which route wins, host spellings, suspended tenants.

use super::*;

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
