//! Primary routes and their redirect flags.

use super::*;

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
