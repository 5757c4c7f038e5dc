use pgschemas_diesel::{Domain, Tenant};

diesel::table! {
    tenants (id) { id -> Int8, schema_name -> Text, slug -> Text, status -> Int4 }
}

#[derive(Tenant)]
#[tenant(table = tenants, schema = slug)]
struct T {
    id: i64,
    slug: String,
}

#[derive(Domain)]
#[domain(table = tenants, host = domain)]
struct D {
    id: i64,
}

fn main() {}
