use pgschemas_diesel::Tenant;

diesel::table! {
    tenants (id) { id -> Int8, schema_name -> Text, slug -> Text, status -> Int4 }
}

#[derive(Tenant)]
#[tenant(table = tenants, schema_name = slug, status = state)]
struct Named {
    id: i64,
    schema_name: String,
}

#[derive(Tenant)]
#[tenant(table = tenants)]
struct Default {
    key: i64,
    schema_name: String,
}

fn main() {}
