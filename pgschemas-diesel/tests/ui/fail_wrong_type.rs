use diesel::prelude::*;
use pgschemas_diesel::Tenant;

diesel::table! {
    numeric_names (id) { id -> Int8, schema_name -> Int8 }
}

diesel::table! {
    numeric_statuses (id) { id -> Int8, schema_name -> Text, status -> Int4 }
}

#[derive(Queryable, Selectable, Tenant)]
#[diesel(table_name = numeric_names)]
struct NumericName {
    id: i64,
    schema_name: i64,
}

#[derive(Queryable, Selectable, Tenant)]
#[diesel(table_name = numeric_statuses)]
#[tenant(status = status)]
struct NumericStatus {
    id: i64,
    schema_name: String,
    status: i32,
}

fn main() {}
