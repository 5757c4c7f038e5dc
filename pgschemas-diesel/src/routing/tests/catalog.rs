//! Building routes from catalog rows: normalisation, rows left out, counts.

use super::*;

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
