// What a #[pgschemas_diesel::test] function may take.

#[pgschemas_diesel::test]
fn two_arguments(pool: pgschemas_diesel::TenantPool, other: u32) {}

#[pgschemas_diesel::test]
fn an_unsupported_type(name: String) {}

#[pgschemas_diesel::test]
fn an_async_pool_in_a_sync_test(pool: pgschemas_diesel::AsyncTenantPool) {}

#[pgschemas_diesel::test]
#[test]
fn marked_a_test_twice() {}

fn main() {}
