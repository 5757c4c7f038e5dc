//! Header routing: django-pgschemas' `TestHeadersRoutingMiddleware` table.

use super::*;

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
