//! Tenant and domain models: the derives over the default models and a user-defined pair,
//! the catalog built from them, the domain rules, the tenant status enum across tenant
//! switches, and the route-change notifications.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_migrations::MigrationHarness;
use pgschemas_diesel::models::tables::{domains, tenants};
use pgschemas_diesel::models::{
    DefaultDomain, DefaultTenant, NewTenant, SHARED_MIGRATIONS, TenantStatus, default_catalog,
};
use pgschemas_diesel::{
    Config, Domain, Error, SchemaConnection, SchemaName, StaticTenant, Tenant, catalog::Catalog,
    catalog::DomainRecord, catalog::TenantRecord, models::DomainModel, models::ModelCatalog,
    models::NewDomain, models::NoDomains, models::ROUTES_CHANNEL, models::TableName,
    models::TenantModel, models::add_domain, models::install_route_triggers,
    models::primary_domain, models::set_primary_domain, routing::Resolution, routing::Routes,
    test_database,
};

fn migrated(conn: &mut PgConnection) {
    conn.run_pending_migrations(SHARED_MIGRATIONS)
        .expect("shared migrations");
}

fn new_tenant(conn: &mut PgConnection, schema: &str) -> DefaultTenant {
    DefaultTenant::insert(
        conn,
        NewTenant::new(&SchemaName::new(schema).unwrap(), schema),
    )
    .expect("insert tenant")
}

fn route(domain: &str, folder: Option<&str>) -> NewDomain {
    match folder {
        Some(f) => NewDomain::new(domain).folder(f),
        None => NewDomain::new(domain),
    }
}

#[test]
fn default_tenants_load_find_delete_and_report_records() {
    let db = test_database!();
    let mut conn = db.connect();
    migrated(&mut conn);

    let zeta = new_tenant(&mut conn, "zeta");
    let alpha = new_tenant(&mut conn, "alpha");
    let mid = DefaultTenant::insert(
        &mut conn,
        NewTenant::new(&SchemaName::new("mid").unwrap(), "Mid").status(TenantStatus::Suspended),
    )
    .unwrap();
    // A tuple of `column.eq(value)` is insertable too; the status takes its default.
    let tuple = DefaultTenant::insert(
        &mut conn,
        (tenants::schema_name.eq("beta"), tenants::name.eq("Beta")),
    )
    .unwrap();
    assert_eq!(tuple.status, TenantStatus::Active);

    let all = DefaultTenant::load_all(&mut conn).unwrap();
    let names: Vec<&str> = all.iter().map(|t| t.schema_name.as_str()).collect();
    assert_eq!(
        names,
        ["alpha", "beta", "mid", "zeta"],
        "ordered by schema name"
    );

    assert_eq!(
        DefaultTenant::find_by_schema_name(&mut conn, "zeta").unwrap(),
        Some(zeta.clone())
    );
    assert_eq!(
        DefaultTenant::find_by_schema_name(&mut conn, "nope").unwrap(),
        None
    );
    assert_eq!(
        DefaultTenant::find_by_id(&mut conn, &alpha.id).unwrap(),
        Some(alpha.clone())
    );
    assert_eq!(DefaultTenant::find_by_id(&mut conn, &-1).unwrap(), None);

    // Suspension: in the model, and in the record routing reads.
    assert!(!mid.is_active());
    let alpha = alpha
        .set_status(&mut conn, TenantStatus::Suspended)
        .unwrap();
    assert!(!alpha.is_active());
    let alpha = alpha.set_status(&mut conn, TenantStatus::Active).unwrap();

    let records = default_catalog().tenants(&mut conn).unwrap();
    assert_eq!(
        records,
        vec![
            TenantRecord {
                id: alpha.id.to_string(),
                schema: SchemaName::new("alpha").unwrap(),
                active: true
            },
            TenantRecord {
                id: tuple.id.to_string(),
                schema: SchemaName::new("beta").unwrap(),
                active: true
            },
            TenantRecord {
                id: mid.id.to_string(),
                schema: SchemaName::new("mid").unwrap(),
                active: false
            },
            TenantRecord {
                id: zeta.id.to_string(),
                schema: SchemaName::new("zeta").unwrap(),
                active: true
            },
        ]
    );
    assert_eq!(
        default_catalog().watched_tables(pgschemas_diesel::Config::default().shared_schema()),
        [
            ("public".to_owned(), "tenants".to_owned()),
            ("public".to_owned(), "domains".to_owned())
        ]
    );

    // Unique schema names, and only valid ones, even through raw inserts.
    let dup = DefaultTenant::insert(
        &mut conn,
        NewTenant::new(&SchemaName::new("zeta").unwrap(), "again"),
    );
    assert!(
        matches!(
            dup,
            Err(DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation,
                _
            ))
        ),
        "{dup:?}"
    );
    for bad in ["Zeta", "pg_x", "information_schema", "1abc", "a-b", ""] {
        let res = DefaultTenant::insert(
            &mut conn,
            (tenants::schema_name.eq(bad), tenants::name.eq("bad")),
        );
        assert!(
            matches!(
                res,
                Err(DieselError::DatabaseError(
                    DatabaseErrorKind::CheckViolation,
                    _
                ))
            ),
            "{bad:?} accepted: {res:?}"
        );
    }

    assert_eq!(zeta.delete(&mut conn).unwrap(), 1);
    assert_eq!(
        DefaultTenant::find_by_schema_name(&mut conn, "zeta").unwrap(),
        None
    );
    assert_eq!(zeta.delete(&mut conn).unwrap(), 0);
}

#[test]
fn catalog_reports_an_invalid_stored_schema_name() {
    let db = test_database!();
    let mut conn = db.connect();
    migrated(&mut conn);
    new_tenant(&mut conn, "fine");
    conn.batch_execute(
        "alter table public.tenants drop constraint tenants_schema_name_valid;
         insert into public.tenants (schema_name, name) values ('Bad', 'bad');",
    )
    .unwrap();
    let err = default_catalog().tenants(&mut conn).unwrap_err();
    assert!(
        matches!(err, Error::InvalidSchemaName { ref name, .. } if name == "Bad"),
        "{err}"
    );
}

/// The enum trap (reference/diesel.md §5): Diesel caches a custom type's OID per connection,
/// resolved through the search_path at first use. Each tenant schema here has a decoy
/// `tenant_status` type and a decoy `tenants` table; the default models must keep using
/// `public`'s on one connection across tenant switches.
#[test]
fn tenant_status_survives_search_path_switches_on_one_connection() {
    let db = test_database!();
    let mut setup = db.connect();
    migrated(&mut setup);
    for schema in ["tenant_a", "tenant_b"] {
        setup
            .batch_execute(&format!(
                "create schema {schema};
                 create type {schema}.tenant_status as enum ('active', 'suspended');
                 create table {schema}.tenants (id bigserial primary key, schema_name text not null,
                     name text not null, status {schema}.tenant_status not null default 'active',
                     created_at timestamptz not null default now());
                 insert into {schema}.tenants (schema_name, name, status) values ('decoy', 'decoy', 'suspended');"
            ))
            .unwrap();
    }
    drop(setup);

    let config = Config::default();
    // A fresh connection whose first use of the enum happens under tenant_a's path.
    let mut conn = db.connect();
    let suspended = |conn: &mut PgConnection| -> Vec<String> {
        tenants::table
            .filter(tenants::status.eq(TenantStatus::Suspended))
            .select(tenants::schema_name)
            .order(tenants::schema_name)
            .load(conn)
            .unwrap()
    };

    config.activate(&mut conn, &"tenant_a").unwrap();
    DefaultTenant::insert(
        &mut conn,
        NewTenant::new(&SchemaName::new("s_one").unwrap(), "one").status(TenantStatus::Suspended),
    )
    .unwrap();
    assert_eq!(suspended(&mut conn), ["s_one"]);

    config.activate(&mut conn, &"tenant_b").unwrap();
    let two = DefaultTenant::insert(
        &mut conn,
        NewTenant::new(&SchemaName::new("s_two").unwrap(), "two").status(TenantStatus::Suspended),
    )
    .unwrap();
    assert_eq!(two.status, TenantStatus::Suspended);
    assert_eq!(suspended(&mut conn), ["s_one", "s_two"]);
    two.set_status(&mut conn, TenantStatus::Active).unwrap();

    config.activate(&mut conn, &"tenant_a").unwrap();
    assert_eq!(suspended(&mut conn), ["s_one"]);
    let all = DefaultTenant::load_all(&mut conn).unwrap();
    assert_eq!(
        all.len(),
        2,
        "public.tenants, never a tenant's decoy table: {all:?}"
    );

    config.deactivate(&mut conn).unwrap();
    assert_eq!(suspended(&mut conn), ["s_one"]);
    for schema in ["tenant_a", "tenant_b"] {
        let decoys: Vec<String> = diesel::dsl::sql::<diesel::sql_types::Text>(&format!(
            "select schema_name || ':' || status::text from {schema}.tenants"
        ))
        .load(&mut conn)
        .unwrap();
        assert_eq!(
            decoys,
            ["decoy:suspended"],
            "{schema}'s decoy table untouched"
        );
    }
}

#[test]
fn domain_rules_on_the_default_model() {
    let db = test_database!();
    let mut conn = db.connect();
    migrated(&mut conn);
    let t1 = new_tenant(&mut conn, "tenant1");
    let t2 = new_tenant(&mut conn, "tenant2");

    // No routes: no primary.
    assert_eq!(
        primary_domain::<DefaultDomain>(&mut conn, &t1.id).unwrap(),
        None
    );

    // The first route becomes primary even when not asked, and a primary never redirects.
    let first: DefaultDomain = add_domain(
        &mut conn,
        &t1.id,
        NewDomain::new("Tenants.LOCALHOST").redirect_to_primary(true),
    )
    .unwrap();
    assert_eq!(first.domain, "tenants.localhost", "stored in lower case");
    assert!(first.is_primary);
    assert!(!first.redirect_to_primary);

    // A second, non-primary route keeps its redirect and leaves the primary alone.
    let second: DefaultDomain = add_domain(
        &mut conn,
        &t1.id,
        route("tenants.localhost", Some("tenant1")).redirect_to_primary(true),
    )
    .unwrap();
    assert!(!second.is_primary);
    assert!(second.redirect_to_primary);
    assert_eq!(
        primary_domain::<DefaultDomain>(&mut conn, &t1.id)
            .unwrap()
            .map(|d| d.id),
        Some(first.id)
    );

    // A new primary demotes the others, in the same transaction.
    let third: DefaultDomain = add_domain(
        &mut conn,
        &t1.id,
        NewDomain::new("tenant1.example.com")
            .primary(true)
            .redirect_to_primary(true),
    )
    .unwrap();
    assert!(third.is_primary && !third.redirect_to_primary);
    let routes = DefaultDomain::load_for_tenant(&mut conn, &t1.id).unwrap();
    assert_eq!(routes.len(), 3);
    assert_eq!(routes.iter().filter(|d| d.is_primary).count(), 1);
    assert_eq!(routes[0].id, third.id, "primary first");
    assert_eq!(
        primary_domain::<DefaultDomain>(&mut conn, &t1.id)
            .unwrap()
            .map(|d| d.id),
        Some(third.id)
    );

    // Routes are unique across tenants, bare domains (NULL folder) included, whatever the case.
    for (domain, folder) in [
        ("tenants.localhost", None),
        ("TENANTS.localhost", None),
        ("tenants.localhost", Some("tenant1")),
    ] {
        let err =
            add_domain::<DefaultDomain>(&mut conn, &t2.id, route(domain, folder)).unwrap_err();
        match &err {
            Error::DomainTaken {
                domain: d,
                folder: f,
                tenant_id,
            } => {
                assert_eq!(d, "tenants.localhost");
                assert_eq!(f.as_deref(), folder);
                assert_eq!(tenant_id, &t1.id.to_string());
            }
            other => panic!("expected DomainTaken, got {other:?}"),
        }
        let message = err.to_string();
        assert!(message.contains("tenants.localhost"), "{message}");
        assert!(message.contains(&t1.id.to_string()), "{message}");
    }
    // The failed attempts changed nothing: t2 has no routes, t1 still its three.
    assert!(
        DefaultDomain::load_for_tenant(&mut conn, &t2.id)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        DefaultDomain::load_for_tenant(&mut conn, &t1.id)
            .unwrap()
            .len(),
        3
    );

    // The database enforces uniqueness for raw inserts too (the NULL-folder trap).
    let raw = DefaultDomain::insert(
        &mut conn,
        (
            domains::tenant_id.eq(t2.id),
            domains::domain.eq("tenants.localhost"),
        ),
    );
    assert!(
        matches!(
            raw,
            Err(DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation,
                _
            ))
        ),
        "{raw:?}"
    );

    // Another folder on the same domain is a different route; it is t2's first, so primary.
    let t2_route: DefaultDomain = add_domain(
        &mut conn,
        &t2.id,
        route("tenants.localhost", Some("tenant2")),
    )
    .unwrap();
    assert!(t2_route.is_primary);
    assert_eq!(
        t2_route.absolute_url("/some/path/"),
        "//tenants.localhost/tenant2/some/path/"
    );
    assert_eq!(third.absolute_url(""), "//tenant1.example.com/");

    // Bad input is refused before any SQL.
    let err = add_domain::<DefaultDomain>(&mut conn, &t2.id, NewDomain::new("www.tenant2.com"))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidDomain { .. }), "{err}");

    // Making an existing route primary demotes the others and clears its redirect.
    let promoted = set_primary_domain(&mut conn, &second).unwrap();
    assert!(promoted.is_primary && !promoted.redirect_to_primary);
    let routes = DefaultDomain::load_for_tenant(&mut conn, &t1.id).unwrap();
    assert_eq!(
        routes
            .iter()
            .filter(|d| d.is_primary)
            .map(|d| d.id)
            .collect::<Vec<_>>(),
        [second.id]
    );

    // The catalog's view: every route, lower case, ordered by domain then folder.
    let records = default_catalog().domains(&mut conn).unwrap();
    let shown: Vec<(String, Option<String>, String, bool)> = records
        .iter()
        .map(|r| {
            (
                r.domain.clone(),
                r.folder.clone(),
                r.tenant_id.clone(),
                r.is_primary,
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("tenant1.example.com".into(), None, t1.id.to_string(), false),
            ("tenants.localhost".into(), None, t1.id.to_string(), false),
            (
                "tenants.localhost".into(),
                Some("tenant1".into()),
                t1.id.to_string(),
                true
            ),
            (
                "tenants.localhost".into(),
                Some("tenant2".into()),
                t2.id.to_string(),
                true
            ),
        ]
    );
    assert!(
        records
            .iter()
            .all(|r| !(r.is_primary && r.redirect_to_primary))
    );

    // Deleting a tenant deletes its routes.
    t1.delete(&mut conn).unwrap();
    assert!(
        DefaultDomain::load_for_tenant(&mut conn, &t1.id)
            .unwrap()
            .is_empty()
    );
    assert_eq!(DefaultDomain::load_all(&mut conn).unwrap().len(), 1);
    assert_eq!(t2_route.delete(&mut conn).unwrap(), 1);
    assert_eq!(
        primary_domain::<DefaultDomain>(&mut conn, &t2.id).unwrap(),
        None
    );
}

/// An internationalised domain is stored, configured and routed in its A-label form, the form
/// browsers send: its Unicode form is refused by `add_domain` and by the configuration, and a
/// row that holds it anyway (written with plain SQL) is left out of routing and reported.
#[test]
fn a_unicode_domain_is_refused_everywhere_and_never_routed() {
    let db = test_database!();
    let mut conn = db.connect();
    migrated(&mut conn);
    let t1 = new_tenant(&mut conn, "tenant1");

    let err = add_domain::<DefaultDomain>(&mut conn, &t1.id, NewDomain::new("Bücher.example"))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidDomain { .. }), "{err}");
    assert!(err.to_string().contains("xn--"), "{err}");
    let err = Config::builder()
        .static_tenant(StaticTenant::builder("www").domain("bücher.example"))
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
    assert!(err.to_string().contains("xn--"), "{err}");

    // Its A-label is stored and routed, from whatever case the request has.
    let stored: DefaultDomain =
        add_domain(&mut conn, &t1.id, NewDomain::new("XN--Bcher-KVA.example")).unwrap();
    assert_eq!(stored.domain, "xn--bcher-kva.example");
    let t2 = new_tenant(&mut conn, "tenant2");
    diesel::sql_query("insert into domains (tenant_id, domain, is_primary) values ($1, $2, true)")
        .bind::<diesel::sql_types::BigInt, _>(t2.id)
        .bind::<diesel::sql_types::Text, _>("bücher.test")
        .execute(&mut conn)
        .unwrap();

    let catalog = default_catalog();
    let routes = Routes::build(
        &Config::default(),
        &catalog.tenants(&mut conn).unwrap(),
        &catalog.domains(&mut conn).unwrap(),
    );
    let schema = |host: &str| match routes.resolve(host, "/") {
        Resolution::Route(r) => Some(r.schema().to_string()),
        _ => None,
    };
    assert_eq!(schema("xn--bcher-kva.example").as_deref(), Some("tenant1"));
    assert_eq!(
        schema("XN--BCHER-KVA.example:8000").as_deref(),
        Some("tenant1")
    );
    assert_eq!(schema("bücher.example"), None);
    assert_eq!(schema("bücher.test"), None);
    let left_out: Vec<String> = routes
        .invalid_rows()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(left_out.len(), 1, "{left_out:?}");
    assert!(
        left_out[0].starts_with(r#"domain "bücher.test" of tenant"#)
            && left_out[0].contains("xn--"),
        "{left_out:?}"
    );
}

#[test]
fn add_domain_inside_an_outer_transaction_rolls_back_with_it() {
    let db = test_database!();
    let mut conn = db.connect();
    migrated(&mut conn);
    let t = new_tenant(&mut conn, "tenant1");
    let first: DefaultDomain =
        add_domain(&mut conn, &t.id, NewDomain::new("a.example.com")).unwrap();

    let res: Result<(), Error> = conn.transaction(|conn| {
        let _new: DefaultDomain =
            add_domain(conn, &t.id, NewDomain::new("b.example.com").primary(true))?;
        // The duplicate fails inside the savepoint; the outer transaction stays usable.
        let err =
            add_domain::<DefaultDomain>(conn, &t.id, NewDomain::new("b.example.com")).unwrap_err();
        assert!(matches!(err, Error::DomainTaken { .. }), "{err}");
        assert_eq!(DefaultDomain::load_for_tenant(conn, &t.id)?.len(), 2);
        Err(Error::Config("abandon".into()))
    });
    assert!(res.is_err());
    let routes = DefaultDomain::load_for_tenant(&mut conn, &t.id).unwrap();
    assert_eq!(
        routes,
        [first],
        "the demotion was rolled back with the insert"
    );
}

// A user-defined pair: their own tables, renamed columns, a `bool` status, a `String` folder.

diesel::table! {
    orgs (org_pk) {
        org_pk -> Int8,
        slug -> Text,
        title -> Text,
        enabled -> Bool,
    }
}

diesel::table! {
    hosts (host_pk) {
        host_pk -> Int8,
        org -> Int8,
        hostname -> Text,
        path_prefix -> Text,
        main -> Bool,
        forward -> Bool,
    }
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Tenant)]
#[diesel(table_name = orgs, check_for_backend(diesel::pg::Pg))]
#[tenant(id = key, schema_name = slug, status = enabled)]
struct Org {
    #[diesel(column_name = org_pk)]
    key: i64,
    slug: String,
    title: String,
    enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Domain)]
#[diesel(check_for_backend(diesel::pg::Pg))]
#[domain(
    table = hosts,
    id = host_pk,
    tenant = org_id,
    domain = hostname,
    folder = path_prefix,
    is_primary = main,
    redirect_to_primary = forward
)]
struct Host {
    host_pk: i64,
    #[diesel(column_name = org)]
    org_id: i64,
    hostname: String,
    path_prefix: String,
    main: bool,
    forward: bool,
}

fn user_tables(conn: &mut PgConnection) {
    conn.batch_execute(
        "create table orgs (org_pk bigserial primary key, slug text not null unique,
             title text not null, enabled bool not null default true);
         create table hosts (host_pk bigserial primary key,
             org bigint not null references orgs on delete cascade, hostname text not null,
             path_prefix text not null default '', main bool not null default false,
             forward bool not null default false, unique (hostname, path_prefix));",
    )
    .unwrap();
}

#[test]
fn user_defined_models_with_renamed_columns() {
    let db = test_database!();
    let mut conn = db.connect();
    user_tables(&mut conn);

    let acme = Org::insert(&mut conn, (orgs::slug.eq("acme"), orgs::title.eq("Acme"))).unwrap();
    let gone = Org::insert(
        &mut conn,
        (
            orgs::slug.eq("gone"),
            orgs::title.eq("Gone"),
            orgs::enabled.eq(false),
        ),
    )
    .unwrap();
    assert_eq!(
        Org::find_by_schema_name(&mut conn, "acme").unwrap(),
        Some(acme.clone())
    );
    assert_eq!(
        Org::find_by_id(&mut conn, &gone.key).unwrap(),
        Some(gone.clone())
    );
    assert_eq!(
        Org::load_all(&mut conn)
            .unwrap()
            .iter()
            .map(|o| o.slug.as_str())
            .collect::<Vec<_>>(),
        ["acme", "gone"]
    );
    assert_eq!(
        Org::table_name(),
        TableName {
            schema: None,
            name: "orgs".into()
        }
    );
    assert_eq!(
        Host::table_name(),
        TableName {
            schema: None,
            name: "hosts".into()
        }
    );

    // The derive's `Schema` impl activates the tenant's schema.
    conn.batch_execute("create schema acme").unwrap();
    Config::default().activate(&mut conn, &acme).unwrap();
    assert_eq!(conn.current_schema().unwrap().as_deref(), Some("acme"));
    Config::default().deactivate(&mut conn).unwrap();

    // The domain rules, generic over the user's model ("" is "no folder").
    let bare: Host = add_domain(&mut conn, &acme.key, NewDomain::new("ACME.test")).unwrap();
    assert!(bare.main && bare.path_prefix.is_empty() && bare.folder().is_none());
    let folder: Host = add_domain(
        &mut conn,
        &acme.key,
        route("shared.test", Some("acme")).primary(true),
    )
    .unwrap();
    assert!(folder.main);
    assert_eq!(folder.folder(), Some("acme"));
    let hosts = Host::load_for_tenant(&mut conn, &acme.key).unwrap();
    assert_eq!(
        hosts
            .iter()
            .filter(|h| h.main)
            .map(|h| h.host_pk)
            .collect::<Vec<_>>(),
        [folder.host_pk]
    );
    let err = add_domain::<Host>(&mut conn, &gone.key, NewDomain::new("acme.test")).unwrap_err();
    assert!(
        matches!(&err, Error::DomainTaken { domain, folder: None, tenant_id } if domain == "acme.test" && *tenant_id == acme.key.to_string()),
        "{err}"
    );
    assert_eq!(
        Host::find_route(&mut conn, "shared.test", Some("acme"))
            .unwrap()
            .map(|h| h.host_pk),
        Some(folder.host_pk)
    );
    assert_eq!(
        Host::find_route(&mut conn, "shared.test", None).unwrap(),
        None
    );
    assert_eq!(primary_domain::<Host>(&mut conn, &gone.key).unwrap(), None);

    let catalog =
        ModelCatalog::<Org, Host>::new().with_shared_schema(SchemaName::new("public").unwrap());
    assert_eq!(
        catalog.tenants(&mut conn).unwrap(),
        [
            TenantRecord {
                id: acme.key.to_string(),
                schema: SchemaName::new("acme").unwrap(),
                active: true
            },
            TenantRecord {
                id: gone.key.to_string(),
                schema: SchemaName::new("gone").unwrap(),
                active: false
            },
        ]
    );
    assert_eq!(
        catalog.domains(&mut conn).unwrap(),
        [
            DomainRecord {
                tenant_id: acme.key.to_string(),
                domain: "acme.test".into(),
                folder: None,
                is_primary: false,
                redirect_to_primary: false,
            },
            DomainRecord {
                tenant_id: acme.key.to_string(),
                domain: "shared.test".into(),
                folder: Some("acme".into()),
                is_primary: true,
                redirect_to_primary: false,
            },
        ]
    );
    assert_eq!(
        catalog.watched_tables(pgschemas_diesel::Config::default().shared_schema()),
        [
            ("public".to_owned(), "orgs".to_owned()),
            ("public".to_owned(), "hosts".to_owned())
        ]
    );

    // Without a domain model.
    let tenants_only = ModelCatalog::<Org, NoDomains>::new();
    assert_eq!(tenants_only.tenants(&mut conn).unwrap().len(), 2);
    assert!(tenants_only.domains(&mut conn).unwrap().is_empty());
    assert_eq!(
        tenants_only
            .watched_tables(pgschemas_diesel::Config::default().shared_schema())
            .len(),
        1
    );

    assert_eq!(acme.delete(&mut conn).unwrap(), 1);
    assert!(Host::load_all(&mut conn).unwrap().is_empty());
}

/// Waits (up to a generous bound, never asserted as a timing) for notifications on `conn`.
fn notifications(conn: &mut PgConnection, want: usize) -> Vec<(String, String)> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < want && Instant::now() < deadline {
        for n in conn.notifications_iter() {
            let n = n.unwrap();
            got.push((n.channel, n.payload));
        }
        if got.len() < want {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    got
}

#[test]
fn route_changes_notify_the_routes_channel() {
    let db = test_database!();
    let mut conn = db.connect();
    migrated(&mut conn);
    let mut listener = db.connect();
    diesel::sql_query(format!("LISTEN {ROUTES_CHANNEL}"))
        .execute(&mut listener)
        .unwrap();

    let t = new_tenant(&mut conn, "tenant1");
    assert_eq!(
        notifications(&mut listener, 1),
        [(ROUTES_CHANNEL.to_owned(), "tenants".to_owned())]
    );

    let d: DefaultDomain = add_domain(&mut conn, &t.id, NewDomain::new("a.example.com")).unwrap();
    let got = notifications(&mut listener, 1);
    assert_eq!(got, [(ROUTES_CHANNEL.to_owned(), "domains".to_owned())]);

    d.set_flags(&mut conn, false, true).unwrap();
    assert_eq!(notifications(&mut listener, 1)[0].1, "domains");
    t.set_status(&mut conn, TenantStatus::Suspended).unwrap();
    assert_eq!(notifications(&mut listener, 1)[0].1, "tenants");

    // Nothing is announced for a rolled-back change: the next notification is the domain's.
    let _ = conn.transaction(|conn| {
        new_tenant(conn, "tenant2");
        Err::<(), _>(DieselError::RollbackTransaction)
    });
    d.set_flags(&mut conn, false, false).unwrap();
    assert_eq!(
        notifications(&mut listener, 1),
        [(ROUTES_CHANNEL.to_owned(), "domains".to_owned())]
    );

    // TRUNCATE is announced too.
    conn.batch_execute("truncate public.tenants cascade")
        .unwrap();
    let got = notifications(&mut listener, 2);
    let mut payloads: Vec<&str> = got.iter().map(|(_, p)| p.as_str()).collect();
    payloads.sort_unstable();
    assert_eq!(payloads, ["domains", "tenants"], "{got:?}");
}

#[test]
fn installed_triggers_notify_for_user_tables() {
    let db = test_database!();
    let mut conn = db.connect();
    user_tables(&mut conn);
    let catalog =
        ModelCatalog::<Org, Host>::new().with_shared_schema(SchemaName::new("public").unwrap());
    install_route_triggers(&mut conn, &pgschemas_diesel::Config::default(), &catalog).unwrap();
    install_route_triggers(&mut conn, &pgschemas_diesel::Config::default(), &catalog).unwrap(); // idempotent

    let mut listener = db.connect();
    diesel::sql_query(format!("LISTEN {ROUTES_CHANNEL}"))
        .execute(&mut listener)
        .unwrap();
    let org = Org::insert(&mut conn, (orgs::slug.eq("acme"), orgs::title.eq("Acme"))).unwrap();
    assert_eq!(notifications(&mut listener, 1)[0].1, "orgs");
    let _: Host = add_domain(&mut conn, &org.key, NewDomain::new("acme.test")).unwrap();
    assert_eq!(notifications(&mut listener, 1)[0].1, "hosts");
}
