//! Two tenants, one `notes` table each: provisioning, the session form and the transaction form.
use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use pgschemas_diesel::lifecycle::schema_exists;
use pgschemas_diesel::provision::Provisioner;
use pgschemas_diesel::{Config, Error, StaticTenant, TenantPool};

/// Every tenant schema's migrations (here one: `create table notes (..)`).
const TENANT_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../examples/migrations/web");

diesel::table! {
    /// Each tenant's notes.
    notes (id) {
        /// Primary key.
        id -> Integer,
        /// The note.
        body -> Text,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let database_url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let config = Config::builder()
        .static_tenant(StaticTenant::builder("www").domain("localhost"))
        .build()?;
    let pool = TenantPool::new(&database_url, config.clone())?;

    // Each tenant's schema and its migrations in one transaction (here no rows of a tenants table).
    let provisioner = Provisioner::builder(config.clone(), TENANT_MIGRATIONS).build()?;
    let mut conn = pool.get()?;
    for schema in ["customer1", "customer2"] {
        if !schema_exists(&mut conn, &config.check_tenant_name(schema)?)? {
            provisioner.create_tenant(&mut conn, schema, |_| Ok(()))?;
        }
    }
    drop(conn);

    // Session form: a pooled connection with search_path = "customer1", "public", pg_temp.
    let mut conn = pool.scope(&"customer1")?;
    diesel::insert_into(notes::table)
        .values(notes::body.eq("hello"))
        .execute(&mut *conn)?;
    drop(conn); // the next checkout resets the session and sets the path it needs

    // Transaction form: reset, BEGIN + SET LOCAL in one round trip; the form behind PgBouncer.
    let seen: i64 = pool.transaction(&"customer2", |conn| {
        let hello = notes::table.filter(notes::body.eq("hello"));
        hello.count().get_result(conn).map_err(Error::from)
    })?;
    assert_eq!(seen, 0, "customer1's note is in customer1's table only");
    println!("customer2 sees {seen} of customer1's notes");
    Ok(())
}
