//! Renamed fields, `#[diesel(column_name)]`, a `bool` status and a `String` folder.
use diesel::prelude::*;
use pgschemas_diesel::{Domain, models::DomainModel, Tenant, models::TenantModel};

diesel::table! {
    orgs (org_pk) { org_pk -> Int4, slug -> Text, enabled -> Bool }
}

diesel::table! {
    hosts (host_pk) {
        host_pk -> Int4, org -> Int4, hostname -> Text, prefix -> Text, main -> Bool, forward -> Bool,
    }
}

#[derive(Queryable, Selectable, Tenant)]
#[diesel(table_name = orgs)]
#[tenant(id = key, schema_name = "slug", status = enabled)]
struct Org {
    #[diesel(column_name = org_pk)]
    key: i32,
    slug: String,
    enabled: bool,
}

#[derive(Queryable, Selectable, Domain)]
#[domain(
    table = hosts,
    id = host_pk,
    tenant = org_id,
    domain = hostname,
    folder = prefix,
    is_primary = main,
    redirect_to_primary = forward,
)]
#[diesel(table_name = hosts)]
struct Host {
    host_pk: i32,
    #[diesel(column_name = org)]
    org_id: i32,
    hostname: String,
    prefix: String,
    main: bool,
    forward: bool,
}

fn main() {
    let org = Org { key: 4, slug: "acme".into(), enabled: false };
    assert!(!org.is_active());
    let host = Host {
        host_pk: 1, org_id: 4, hostname: "a.test".into(), prefix: String::new(),
        main: true, forward: false,
    };
    assert_eq!(host.folder(), None);
    assert_eq!(host.tenant_id_string(), "4");
}
