use pgschemas_diesel::Tenant;

diesel::table! {
    tenants (id) { id -> Int8, schema_name -> Text, slug -> Text, status -> Int4 }
}

#[derive(Tenant)]
#[tenant(table)]
struct NoValue {
    id: i64,
    schema_name: String,
}

#[derive(Tenant)]
#[tenant(table = tenants, schema_name = "not a field")]
struct StringField {
    id: i64,
    slug: String,
}

#[derive(Tenant)]
#[tenant(table = tenants, crate = "not a path")]
struct BadCrate {
    id: i64,
    schema_name: String,
}

fn main() {}
