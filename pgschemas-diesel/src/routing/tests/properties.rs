//! Properties: arbitrary requests never panic nor escape the configured tenants.

use proptest::prelude::*;

use super::*;

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
