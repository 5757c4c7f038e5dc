// #[pgschemas_diesel::test] compiles in each of its forms (the tests are not run here; the
// crate's integration tests run them).

use pgschemas_diesel::TenantPool;
use pgschemas_diesel::testing::TestDatabase;

#[pgschemas_diesel::test(migrations = pgschemas_diesel::models::SHARED_MIGRATIONS, tenants = ["acme"])]
fn with_a_pool(pool: TenantPool) {
    let _ = pool.scope(&"acme");
}

#[pgschemas_diesel::test]
fn with_the_database(db: &TestDatabase) -> Result<(), String> {
    let _ = db.url();
    Ok(())
}

#[pgschemas_diesel::test]
fn with_a_connection(conn: &mut diesel::PgConnection) {
    let _ = conn;
}

fn main() {}
