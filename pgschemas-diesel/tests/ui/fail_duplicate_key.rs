use pgschemas_diesel::Tenant;

diesel::table! {
    tenants (id) { id -> Int8, schema_name -> Text, slug -> Text, status -> Int4 }
}

#[derive(Tenant)]
#[tenant(table = tenants, schema_name = slug)]
#[tenant(schema_name = schema_name)]
struct T {
    id: i64,
    slug: String,
    schema_name: String,
}

fn main() {}
