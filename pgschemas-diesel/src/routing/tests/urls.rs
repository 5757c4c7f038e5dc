//! The URLs a route builds: absolute URLs and folder prefixes.

use super::*;

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
