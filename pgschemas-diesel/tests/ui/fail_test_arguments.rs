// The arguments of #[pgschemas_diesel::test]: an unknown key, tenants that are not an array
// of string literals.

#[pgschemas_diesel::test(migration = "migrations")]
fn unknown_key() {}

#[pgschemas_diesel::test(tenants = "acme")]
fn tenants_not_an_array() {}

#[pgschemas_diesel::test(tenants = ["acme", 7])]
fn a_tenant_not_a_string() {}

#[pgschemas_diesel::test(tenants = ["a"], tenants = ["b"])]
fn tenants_twice() {}

#[pgschemas_diesel::test(tenants = [], tenants = ["b"])]
fn tenants_twice_the_first_empty() {}

fn main() {}
