//! Dropping schemas and tenants never reaches outside the schema: objects of other schemas
//! that depend on it (views, foreign keys, columns and functions using its types, extensions
//! owning its objects) make the drop refuse, naming them, unless the `dangerous_` form is
//! asked for; reserved schemas (shared, static, reference, extra search paths) are refused.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use pgschemas_diesel::{
    Config, ConfiguredSchema, Error, SchemaName, StaticTenant, lifecycle::create_schema,
    lifecycle::dangerous_drop_schema, lifecycle::drop_schema, lifecycle::schema_exists,
    provision::Provisioner, test_database,
};

const TENANT: EmbeddedMigrations = embed_migrations!("../examples/migrations/tenant");

fn config() -> Config {
    Config::builder()
        .static_tenant(StaticTenant::builder("www").domain("localhost"))
        .clone_reference("sample")
        .extra_search_path("extensions")
        .build()
        .unwrap()
}

fn name(s: &str) -> SchemaName {
    SchemaName::new(s).unwrap()
}

fn count(conn: &mut PgConnection, sql: &str) -> i64 {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    diesel::sql_query(sql).get_result::<N>(conn).unwrap().n
}

/// Whether a relation, function or type of this qualified name exists.
fn exists(conn: &mut PgConnection, object: &str) -> bool {
    #[derive(QueryableByName)]
    struct B {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        b: bool,
    }
    diesel::sql_query(
        "select coalesce(to_regclass($1) is not null or to_regproc($1) is not null \
         or to_regtype($1) is not null, false) as b",
    )
    .bind::<Text, _>(object)
    .get_result::<B>(conn)
    .unwrap()
    .b
}

/// A migrated tenant `t1` that only points at shared objects (a foreign key into
/// `public.tenants`, a column of a type in `extensions`), plus `t2`.
fn tenants(conn: &mut PgConnection) -> Provisioner {
    conn.batch_execute(
        "create table public.tenants (id bigserial primary key, schema_name text unique);
         create schema extensions;
         create type extensions.rating as enum ('low', 'high');",
    )
    .unwrap();
    let p = Provisioner::builder(config(), TENANT).build().unwrap();
    for t in ["t1", "t2"] {
        p.create_tenant(conn, t, |conn| {
            diesel::sql_query("insert into public.tenants (schema_name) values ($1)")
                .bind::<Text, _>(t)
                .execute(conn)?;
            Ok(())
        })
        .unwrap();
    }
    conn.batch_execute(
        "alter table t1.customers add column tenant_id bigint references public.tenants(id),
                                  add column rating extensions.rating;",
    )
    .unwrap();
    p
}

/// Objects of other schemas over `t1`'s: what `DROP SCHEMA t1 CASCADE` would also drop.
const OUTSIDE: &str = "
    create view public.order_report as select customer_id, count(*) from t1.orders group by 1;
    create table public.invoices (id int, customer_id bigint references t1.customers(id));
    create type t1.mood as enum ('ok');
    create function public.cheer(m t1.mood) returns int language sql as 'select 1';
    create view t2.t1_products as select * from t1.products;";

#[test]
fn drop_schema_refuses_objects_outside_that_depend_on_it() {
    let db = test_database!();
    let mut conn = db.connect();
    let config = config();
    tenants(&mut conn);

    // t2 points at the shared schema only: it drops alone, nothing shared goes with it.
    drop_schema(&mut conn, &config, &name("t2")).unwrap();
    assert!(!schema_exists(&mut conn, &name("t2")).unwrap());
    assert_eq!(
        count(&mut conn, "select count(*) as n from public.tenants"),
        2
    );

    conn.batch_execute("create schema t2").unwrap();
    conn.batch_execute(OUTSIDE).unwrap();
    let err = drop_schema(&mut conn, &config, &name("t1")).unwrap_err();
    let Error::Dependents { schema, objects } = &err else {
        panic!("expected Error::Dependents, got {err:?}");
    };
    assert_eq!(schema, "t1");
    let objects = strings(objects);
    assert_eq!(
        objects,
        [
            "function public.cheer(t1.mood) (depends on type t1.mood)",
            "table constraint invoices_customer_id_fkey on public.invoices (depends on index t1.customers_pkey)",
            "view public.order_report (depends on table t1.orders)",
            "view t2.t1_products (depends on table t1.products)",
        ],
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.starts_with("refusing to drop schema \"t1\": objects outside it would be dropped with it: function public.cheer(t1.mood)"),
        "{message}"
    );
    assert!(message.contains("dangerous_"), "{message}");
    // Nothing was dropped, inside or outside.
    assert!(schema_exists(&mut conn, &name("t1")).unwrap());
    for object in [
        "t1.orders",
        "public.order_report",
        "public.invoices",
        "public.cheer",
        "t2.t1_products",
    ] {
        assert!(exists(&mut conn, object), "{object} was dropped");
    }
    assert_eq!(
        count(
            &mut conn,
            "select count(*) as n from pg_constraint where conname = 'invoices_customer_id_fkey'"
        ),
        1
    );

    // The dangerous form cascades: the outside objects go too.
    dangerous_drop_schema(&mut conn, &name("t1")).unwrap();
    assert!(!schema_exists(&mut conn, &name("t1")).unwrap());
    assert!(!exists(&mut conn, "public.order_report"));
    assert!(!exists(&mut conn, "t2.t1_products"));
    assert!(exists(&mut conn, "public.invoices"));

    // Gone: "not found", read from the catalog.
    let err = drop_schema(&mut conn, &config, &name("t1")).unwrap_err();
    assert!(
        matches!(&err, Error::SchemaNotFound { schema } if schema == "t1"),
        "{err:?}"
    );
    let err = dangerous_drop_schema(&mut conn, &name("t1")).unwrap_err();
    assert!(matches!(&err, Error::SchemaNotFound { .. }), "{err:?}");
}

#[test]
fn an_extension_owning_an_object_of_the_schema_is_a_dependent() {
    let db = test_database!();
    let mut conn = db.connect();
    conn.batch_execute(
        "create schema t1;
         create function t1.helper() returns int language sql as 'select 1';
         create extension tcn schema public;
         alter extension tcn add function t1.helper();",
    )
    .unwrap();
    let err = drop_schema(&mut conn, &config(), &name("t1")).unwrap_err();
    assert!(
        matches!(&err, Error::Dependents { objects, .. }
            if strings(objects) == ["extension tcn (owns function t1.helper())"]),
        "{err:?}"
    );
    assert_eq!(
        count(
            &mut conn,
            "select count(*) as n from pg_extension where extname = 'tcn'"
        ),
        1
    );
}

#[test]
fn drop_tenant_refuses_dependents_unless_dangerous() {
    let db = test_database!();
    let mut conn = db.connect();
    let p = tenants(&mut conn);
    conn.batch_execute(OUTSIDE).unwrap();
    let calls = AtomicUsize::new(0);
    let delete = |schema: &'static str| {
        let calls = &calls;
        move |conn: &mut PgConnection| {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok(
                diesel::sql_query("delete from public.tenants where schema_name = $1")
                    .bind::<Text, _>(schema)
                    .execute(conn)?,
            )
        }
    };

    let err = p
        .drop_tenant(&mut conn, "t1", true, delete("t1"))
        .unwrap_err();
    assert!(
        matches!(&err, Error::Dependents { schema, objects } if schema == "t1" && objects.len() == 4),
        "{err:?}"
    );
    // The row, the schema and the outside objects are all still there.
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(
        count(&mut conn, "select count(*) as n from public.tenants"),
        2
    );
    assert!(schema_exists(&mut conn, &name("t1")).unwrap());
    assert!(exists(&mut conn, "public.order_report"));
    assert!(exists(&mut conn, "t2.t1_products"));

    // Not forced: the schema is kept, nothing to refuse.
    let kept = p.drop_tenant(&mut conn, "t2", false, delete("t2")).unwrap();
    assert!(!kept.schema_dropped);
    assert!(exists(&mut conn, "t2.t1_products"));

    let dropped = p
        .dangerous_drop_tenant_cascade(&mut conn, "t1", delete("t1"))
        .unwrap();
    assert!(dropped.schema_dropped);
    assert_eq!(dropped.value, 1);
    assert!(!schema_exists(&mut conn, &name("t1")).unwrap());
    assert!(!exists(&mut conn, "public.order_report"));
    assert!(!exists(&mut conn, "t2.t1_products"));
    assert!(exists(&mut conn, "public.tenants"));
}

#[test]
fn reserved_schemas_are_never_dropped() {
    let db = test_database!();
    let mut conn = db.connect();
    let config = config();
    let p = tenants(&mut conn);
    for (schema, what) in [
        ("extensions", ConfiguredSchema::ExtraSearchPath),
        ("public", ConfiguredSchema::SharedSchema),
        ("www", ConfiguredSchema::StaticTenant),
        ("sample", ConfiguredSchema::CloneReference),
    ] {
        create_schema(&mut conn, &name(schema)).ok();
        let err = drop_schema(&mut conn, &config, &name(schema)).unwrap_err();
        assert!(
            matches!(&err, Error::Protected { what: w, .. } if *w == what),
            "{schema}: {err:?}"
        );
        let err = p
            .drop_tenant(&mut conn, schema, true, |_| Ok(()))
            .unwrap_err();
        assert!(
            matches!(&err, Error::Protected { what: w, .. } if *w == what),
            "{schema}: {err:?}"
        );
        let err = p
            .dangerous_drop_tenant_cascade(&mut conn, schema, |_| Ok(()))
            .unwrap_err();
        assert!(matches!(&err, Error::Protected { .. }), "{schema}: {err:?}");
        assert!(schema_exists(&mut conn, &name(schema)).unwrap());
    }
    assert!(exists(&mut conn, "extensions.rating"));
    assert!(exists(&mut conn, "t1.customers"));
}

/// Waits until another backend of this database waits for a lock.
fn wait_for_lock_waiter(conn: &mut PgConnection) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(
        conn,
        "select count(*) as n from pg_stat_activity \
         where datname = current_database() and wait_event_type = 'Lock'",
    ) == 0
    {
        assert!(Instant::now() < deadline, "no backend started waiting");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_view_created_during_the_drop_is_seen_before_dropping() {
    let db = test_database!();
    let mut conn = db.connect();
    tenants(&mut conn);
    // Another session creates a view over a tenant table and has not committed yet.
    let mut other = db.connect();
    other
        .batch_execute("begin; create view public.late as select * from t1.orders")
        .unwrap();
    let url = db.url().to_owned();
    let dropping = std::thread::spawn(move || {
        let mut conn = PgConnection::establish(&url).unwrap();
        drop_schema(&mut conn, &config(), &name("t1"))
    });
    wait_for_lock_waiter(&mut conn);
    other.batch_execute("commit").unwrap();
    let err = dropping.join().unwrap().unwrap_err();
    assert!(
        matches!(&err, Error::Dependents { objects, .. }
            if strings(objects) == ["view public.late (depends on table t1.orders)"]),
        "{err:?}"
    );
    assert!(exists(&mut conn, "public.late"));
    assert!(schema_exists(&mut conn, &name("t1")).unwrap());
}

#[test]
fn a_schema_created_concurrently_is_schema_exists() {
    let db = test_database!();
    let mut conn = db.connect();
    conn.batch_execute("begin; create schema racing").unwrap();
    let url = db.url().to_owned();
    let creating = std::thread::spawn(move || {
        let mut conn = PgConnection::establish(&url).unwrap();
        create_schema(&mut conn, &name("racing"))
    });
    let mut watcher = db.connect();
    wait_for_lock_waiter(&mut watcher);
    conn.batch_execute("commit").unwrap();
    let err = creating.join().unwrap().unwrap_err();
    assert!(
        matches!(&err, Error::SchemaExists { schema } if schema == "racing"),
        "{err:?}"
    );
    // Inside a caller's transaction, which stays usable.
    conn.transaction::<_, Error, _>(|conn| {
        let err = create_schema(conn, &name("racing")).unwrap_err();
        assert!(matches!(&err, Error::SchemaExists { .. }), "{err:?}");
        assert_eq!(count(conn, "select 1::bigint as n"), 1);
        Ok(())
    })
    .unwrap();
}

/// The objects of an [`Error::Dependents`] as their messages show them.
fn strings(objects: &[pgschemas_diesel::Dependent]) -> Vec<String> {
    objects.iter().map(ToString::to_string).collect()
}
