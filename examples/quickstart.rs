//! Quickstart: schema-per-tenant multi-tenancy from an empty database.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! Uses the database at `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`);
//! when no server answers and PostgreSQL's binaries are installed, it starts a throwaway local
//! cluster. It migrates the shared schema (the default tenant and domain models), declares
//! static tenants, provisions dynamic tenants with subdomain and subfolder routes (each in one
//! transaction), migrates every schema, writes and reads per tenant, resolves a few URLs, and
//! prints what it did. Re-runnable on the same database.

use std::sync::Arc;
use std::time::Instant;

use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use pgschemas_diesel::models::{
    DefaultDomain, DefaultTenant, NewTenant, SHARED_MIGRATIONS, default_catalog,
};
use pgschemas_diesel::{
    Config, Error, StaticTenant, TenantPool, catalog::Catalog, migrate::Migrator,
    migrate::Selection, models::NewDomain, models::TenantModel, models::add_domain,
    provision::Provisioner, routing::Resolution, routing::Routes,
};

/// Every tenant schema's migrations (customers, products, orders, order items, audit log).
const TENANT_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");

diesel::table! {
    /// The `customers` table every tenant schema has.
    customers (id) {
        /// Primary key.
        id -> BigInt,
        /// Name.
        name -> Text,
        /// E-mail, unique per tenant.
        email -> Text,
    }
}

/// The dynamic tenants: schema, display name, route (`host` or `host/folder`).
const TENANTS: [(&str, &str, &str); 3] = [
    ("acme", "Acme Inc.", "acme.localhost"),
    ("globex", "Globex", "tenants.localhost/globex"),
    ("initech", "Initech", "initech.localhost"),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let url = pgschemas_diesel::testing::server_url();
    println!("database: {url}");

    // Static tenants are fixed in configuration; dynamic ones are rows of the tenant model.
    let config = Config::builder()
        .static_tenant(
            StaticTenant::builder("www")
                .domain("localhost")
                .fallback_domain("tenants.localhost"),
        )
        .static_tenant(StaticTenant::builder("blog").domain("blog.localhost"))
        .build()?;
    let pool = TenantPool::with_builder(
        url.as_str(),
        config.clone(),
        r2d2::Pool::builder().max_size(4),
    )?;
    let catalog: Arc<dyn Catalog> = Arc::new(default_catalog());
    let migrator = Migrator::builder(pool.clone(), catalog.clone())
        .shared_migrations(SHARED_MIGRATIONS)
        .tenant_migrations(TENANT_MIGRATIONS)
        .workers(2)
        .build()?;

    // 1. The shared schema: the `tenants` and `domains` tables of the default models.
    let shared = migrator.run(&Selection::of([config.shared_schema().as_str()]))?;
    println!("1. shared schema: {shared}");
    check(&shared)?;

    // 2. Dynamic tenants, each provisioned atomically: its row, its route, its schema and
    //    every tenant migration commit together or not at all.
    let provisioner = Provisioner::builder(config.clone(), TENANT_MIGRATIONS).build()?;
    let mut conn = pool.get()?;
    let mut created = Vec::new();
    for (schema, name, route) in TENANTS {
        if DefaultTenant::find_by_schema_name(&mut conn, schema)?.is_some() {
            continue;
        }
        let (domain, folder) = match route.split_once('/') {
            Some((d, f)) => (d, Some(f)),
            None => (route, None),
        };
        provisioner.create_tenant(&mut conn, schema, |conn| {
            let tenant = DefaultTenant::insert(
                conn,
                NewTenant::new(&config.check_tenant_name(schema)?, name),
            )?;
            let mut new_domain = NewDomain::new(domain);
            if let Some(folder) = folder {
                new_domain = new_domain.folder(folder);
            }
            add_domain::<DefaultDomain>(conn, &tenant.id, new_domain)?;
            Ok(())
        })?;
        created.push(schema);
    }
    println!(
        "2. provisioned {} tenant(s) {:?} ({} already there)",
        created.len(),
        created,
        TENANTS.len() - created.len()
    );

    // 3. Every schema, in a stable order: shared, static, dynamic.
    let all = migrator.run(&Selection::all())?;
    println!("3. migrate all: {all}");
    check(&all)?;

    // 4. Each tenant writes and reads its own `customers` table.
    for (schema, name, _) in TENANTS {
        let mut scope = pool.scope(&schema)?;
        diesel::insert_into(customers::table)
            .values((
                customers::name.eq(format!("first customer of {name}")),
                customers::email.eq(format!("hello@{schema}.example")),
            ))
            .on_conflict_do_nothing()
            .execute(&mut *scope)?;
    }
    pool.transaction(&"www", |conn| {
        diesel::insert_into(customers::table)
            .values((
                customers::name.eq("a www visitor"),
                customers::email.eq("visitor@www.example"),
            ))
            .on_conflict_do_nothing()
            .execute(conn)?;
        Ok::<_, Error>(())
    })?;
    println!("4. isolation:");
    for schema in ["www", "acme", "globex", "initech"] {
        let mut scope = pool.scope(&schema)?;
        let emails: Vec<String> = customers::table
            .select(customers::email)
            .order(customers::id)
            .load(&mut *scope)?;
        let own = emails
            .iter()
            .all(|e| e.ends_with(&format!("@{schema}.example")));
        println!(
            "   {schema:<8} sees {emails:?}{}",
            if own { "" } else { "  <- LEAK" }
        );
        if !own {
            return Err(format!("schema {schema} sees another tenant's rows").into());
        }
    }
    let mut plain = pool.get()?;
    if customers::table
        .count()
        .get_result::<i64>(&mut *plain)
        .is_ok()
    {
        return Err("a plain checkout sees a tenant table".into());
    }
    println!("   a plain checkout (shared schema) sees no tenant table");

    // 5. Routing: answered from memory, in django-pgschemas' order.
    let routes = Routes::build(
        &config,
        &catalog.tenants(&mut plain)?,
        &catalog.domains(&mut plain)?,
    );
    println!("5. routing ({} routes):", routes.route_count());
    for (host, path) in [
        ("localhost", "/"),
        ("www.localhost:8000", "/about"),
        ("blog.localhost", "/"),
        ("acme.localhost", "/orders/7"),
        ("tenants.localhost", "/globex/orders"),
        ("tenants.localhost", "/unknown"),
        ("nobody.example", "/"),
    ] {
        let answer = match routes.resolve(host, path) {
            Resolution::Route(route) => format!(
                "schema {:<8} via {:?}, the tenant sees {:?}",
                route.schema().as_str(),
                route.via(),
                route.strip_prefix(path)
            ),
            Resolution::Redirect(r) => format!("redirect to {}", r.location()),
            Resolution::Suspended(_) => "suspended (403)".to_owned(),
            _ => "not found (404)".to_owned(),
        };
        println!("   {:<36} -> {answer}", format!("{host}{path}"));
    }

    println!("done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn check(
    report: &pgschemas_diesel::migrate::MigrationReport,
) -> Result<(), Box<dyn std::error::Error>> {
    if report.is_success() {
        Ok(())
    } else {
        Err(format!("migrations failed: {report}").into())
    }
}
