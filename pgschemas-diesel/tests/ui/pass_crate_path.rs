//! The library reached through a re-export, named with `crate = "..."`.
mod reexport {
    pub use pgschemas_diesel as tenancy;
}

use diesel::prelude::*;
use reexport::tenancy::{Domain, Tenant, models::TenantModel};

diesel::table! {
    tenants (id) { id -> Int8, schema_name -> Text }
}

diesel::table! {
    domains (id) {
        id -> Int8, tenant_id -> Int8, domain -> Text, folder -> Nullable<Text>,
        is_primary -> Bool, redirect_to_primary -> Bool,
    }
}

#[derive(Queryable, Selectable, Tenant)]
#[diesel(table_name = tenants)]
#[tenant(crate = "crate::reexport::tenancy")]
struct T {
    id: i64,
    schema_name: String,
}

#[derive(Queryable, Selectable, Domain)]
#[diesel(table_name = domains)]
#[domain(crate = crate::reexport::tenancy)]
struct D {
    id: i64,
    tenant_id: i64,
    domain: String,
    folder: Option<String>,
    is_primary: bool,
    redirect_to_primary: bool,
}

fn main() {
    assert_eq!(T::table_name().name, "tenants");
    let _ = reexport::tenancy::models::ModelCatalog::<T, D>::new();
}
