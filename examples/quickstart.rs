//! Quickstart: two tenants in one database, each in its own schema, isolated.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! Uses the PostgreSQL server at `DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); when none answers and PostgreSQL's binaries
//! are installed, it starts a throwaway local cluster. Re-runnable on the same database.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use pgschemas_diesel::{
    Config, Error, SchemaName, StaticTenant, TenantPool, create_schema, schema_exists,
};

diesel::table! {
    /// A table every tenant has in its own schema.
    notes (id) {
        /// Primary key.
        id -> Integer,
        /// The note.
        body -> Text,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = pgschemas_diesel::testing::server_url();
    println!("PostgreSQL: {url}");

    let config = Config::builder()
        .static_tenant(StaticTenant::builder("www").domain("localhost"))
        .build()?;

    // Two tenant schemas, each with its own `notes` table.
    let mut admin = PgConnection::establish(&url)?;
    for name in ["quickstart_acme", "quickstart_globex"] {
        let schema = config.check_tenant_name(name)?;
        if !schema_exists(&mut admin, &schema)? {
            create_schema(&mut admin, &schema)?;
            println!("created schema {schema}");
        }
        admin.batch_execute(&format!(
            "create table if not exists {}.notes (id serial primary key, body text not null);
             truncate {}.notes;",
            schema.quoted(),
            schema.quoted()
        ))?;
    }

    let pool = TenantPool::new(url.as_str(), config)?;
    let acme = SchemaName::new("quickstart_acme")?;
    let globex = SchemaName::new("quickstart_globex")?;

    // Session form: a pooled connection whose search_path is the tenant's.
    {
        let mut conn = pool.scope(&acme)?;
        diesel::insert_into(notes::table)
            .values(&[
                notes::body.eq("acme: first note"),
                notes::body.eq("acme: second note"),
            ])
            .execute(&mut *conn)?;
    }
    // Transaction form: BEGIN + SET LOCAL in one round trip (safe behind PgBouncer).
    pool.transaction(&globex, |conn| {
        diesel::insert_into(notes::table)
            .values(notes::body.eq("globex: hello"))
            .execute(conn)?;
        Ok::<_, Error>(())
    })?;

    for tenant in [&acme, &globex] {
        let mut conn = pool.scope(tenant)?;
        let bodies: Vec<String> = notes::table
            .select(notes::body)
            .order(notes::id)
            .load(&mut *conn)?;
        println!("{tenant} sees {} note(s): {bodies:?}", bodies.len());
        assert!(
            bodies
                .iter()
                .all(|b| b.starts_with(&format!("{}:", &tenant.as_str()[11..]))),
            "{tenant} sees another tenant's rows"
        );
    }

    // A plain checkout has the neutral path: no tenant table is visible.
    let mut plain = pool.get()?;
    let leaked = notes::table.count().get_result::<i64>(&mut *plain).is_ok();
    println!(
        "a plain checkout sees tenant tables: {}",
        if leaked { "yes (leak!)" } else { "no" }
    );
    assert!(!leaked);
    println!("each tenant sees only its own rows");
    Ok(())
}
