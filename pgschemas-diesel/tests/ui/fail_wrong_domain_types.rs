use diesel::prelude::*;
use pgschemas_diesel::Domain;

diesel::table! {
    domains (id) {
        id -> Int8, tenant_id -> Int8, domain -> Text, folder -> Int4,
        is_primary -> Int4, redirect_to_primary -> Bool,
    }
}

diesel::table! {
    hosts (id) {
        id -> Int8, tenant_id -> Int8, domain -> Int8, folder -> Nullable<Text>,
        is_primary -> Bool, redirect_to_primary -> Bool,
    }
}

#[derive(Queryable, Selectable, Domain)]
#[diesel(table_name = domains)]
struct Route {
    id: i64,
    tenant_id: i64,
    domain: String,
    folder: i32,
    is_primary: i32,
    redirect_to_primary: bool,
}

#[derive(Queryable, Selectable, Domain)]
#[diesel(table_name = hosts)]
struct NumericHost {
    id: i64,
    tenant_id: i64,
    domain: i64,
    folder: Option<String>,
    is_primary: bool,
    redirect_to_primary: bool,
}

fn main() {}
