//! Generic structs: a lifetime, and a type parameter bounded by the struct itself.
use std::borrow::Cow;

use diesel::deserialize::FromSql;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::Text;
use pgschemas_diesel::{Domain, models::DomainModel, Schema, Tenant, models::TenantModel};

diesel::table! {
    tenants (id) { id -> Int8, schema_name -> Text, note -> Text }
}

diesel::table! {
    domains (id) {
        id -> Int8, tenant_id -> Int8, domain -> Text, folder -> Nullable<Text>,
        is_primary -> Bool, redirect_to_primary -> Bool,
    }
}

#[derive(Queryable, Selectable, Tenant)]
#[diesel(table_name = tenants)]
struct Borrowed<'a> {
    id: i64,
    schema_name: Cow<'a, str>,
    note: Cow<'a, str>,
}

#[derive(Queryable, Selectable, Tenant)]
#[diesel(table_name = tenants)]
struct WithNote<N>
where
    N: FromSql<Text, Pg>,
{
    id: i64,
    schema_name: String,
    note: N,
}

#[derive(Queryable, Selectable, Domain)]
#[diesel(table_name = domains)]
struct Route<'a> {
    id: i64,
    tenant_id: i64,
    domain: Cow<'a, str>,
    folder: Option<Cow<'a, str>>,
    is_primary: bool,
    redirect_to_primary: bool,
}

fn main() {
    let t = Borrowed { id: 1, schema_name: Cow::Borrowed("acme"), note: Cow::Borrowed("") };
    assert_eq!(t.schema_name(), "acme");
    assert_eq!(t.id_string(), "1");
    let w = WithNote { id: 2, schema_name: "beta".to_string(), note: String::new() };
    assert_eq!(w.schema_name(), "beta");
    let r = Route {
        id: 3, tenant_id: 1, domain: Cow::Borrowed("a.test"), folder: None,
        is_primary: true, redirect_to_primary: false,
    };
    assert_eq!(r.absolute_url("x"), "//a.test/x");
    // Diesel loads owned rows: the models are usable with `'static` lifetimes.
    let _ = <Borrowed<'static> as TenantModel>::load_all;
    let _ = <WithNote<String> as TenantModel>::find_by_id;
    let _ = <Route<'static> as DomainModel>::find_primary;
}
