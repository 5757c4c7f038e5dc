use pgschemas_diesel::Tenant;

#[derive(Tenant)]
struct AppTenant {
    id: i64,
    schema_name: String,
}

fn main() {}
