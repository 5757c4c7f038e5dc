//! Request routing from memory: the default tenant and domain models, a tenant served under a
//! folder, and how each answer is handled.
use std::sync::Arc;

use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use pgschemas_diesel::migrate::{Migrator, Selection};
use pgschemas_diesel::models::{
    DefaultDomain, DefaultTenant, NewDomain, NewTenant, SHARED_MIGRATIONS, TenantModel, add_domain,
    default_catalog,
};
use pgschemas_diesel::provision::Provisioner;
use pgschemas_diesel::routing::{Resolution, RouteOptions, RouteTable};
use pgschemas_diesel::{Config, StaticTenant, TenantPool};

/// Every tenant schema's migrations.
const TENANT_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let database_url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let config = Config::builder()
        .static_tenant(
            StaticTenant::builder("www")
                .domain("localhost")
                .fallback_domain("tenants.localhost"),
        )
        .build()?;
    let pool = TenantPool::new(&database_url, config.clone())?;
    let catalog = Arc::new(default_catalog());

    // The shared schema: the default models' `tenants` and `domains` tables (and their
    // route-change trigger).
    let migrator = Migrator::builder(pool.clone(), catalog.clone())
        .shared_migrations(SHARED_MIGRATIONS)
        .build()?;
    let report = migrator.run(&Selection::of([config.shared_schema().as_str()]))?;
    assert!(report.is_success(), "{report}");

    // A dynamic tenant served at tenants.localhost/tenant2: its row, its route and its
    // migrated schema in one transaction.
    let mut conn = pool.get()?;
    if DefaultTenant::find_by_schema_name(&mut conn, "tenant2")?.is_none() {
        let provisioner = Provisioner::builder(config.clone(), TENANT_MIGRATIONS).build()?;
        provisioner.create_tenant(&mut conn, "tenant2", |conn| {
            let name = config.check_tenant_name("tenant2")?;
            let tenant = DefaultTenant::insert(conn, NewTenant::new(&name, "Tenant 2"))?;
            let route = NewDomain::new("tenants.localhost").folder("tenant2");
            add_domain::<DefaultDomain>(conn, &tenant.id, route)?;
            Ok(())
        })?;
    }
    drop(conn);

    // Loads every route, then follows changes to the tenants and domains tables.
    let table = RouteTable::start(&database_url, config, catalog, RouteOptions::default())?;
    let resolution = table.resolve("tenants.localhost:3000", "/tenant2/profile/");
    assert!(matches!(&resolution, Resolution::Route(r) if r.schema().as_str() == "tenant2"));
    match resolution {
        Resolution::Route(route) => {
            println!(
                "{} via {:?}, prefix {}",
                route.schema(),
                route.via(),
                route.prefix()
            )
        }
        Resolution::Redirect(r) => println!("301 {}", r.location()),
        Resolution::Suspended(_) => println!("403"),
        Resolution::NotFound => println!("404"),
        _ => {}
    }
    Ok(())
}
