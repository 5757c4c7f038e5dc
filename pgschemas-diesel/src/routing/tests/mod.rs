//! Table-driven routing tests, no database: django-pgschemas' `test_middleware.py` and
//! `test_models.py` tables, then edge cases and properties.

mod catalog;
mod domains;
mod headers;
mod primary;
mod properties;
mod resolution;
mod urls;

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
