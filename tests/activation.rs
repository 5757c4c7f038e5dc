//! Schema switching on a plain connection, and schema lifecycle helpers.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use pgschemas_diesel::{
    Config, ConfiguredSchema, Error, Schema, SchemaConnection, SchemaName, StaticTenant,
    lifecycle::create_schema, lifecycle::dangerous_drop_schema, lifecycle::drop_schema,
    lifecycle::list_schemas, lifecycle::schema_exists, test_database,
};

#[derive(QueryableByName)]
struct Body {
    #[diesel(sql_type = Text)]
    body: String,
}

fn bodies(conn: &mut PgConnection) -> Vec<String> {
    diesel::sql_query("select body from notes order by body")
        .load::<Body>(conn)
        .expect("select notes")
        .into_iter()
        .map(|b| b.body)
        .collect()
}

/// Two tenant schemas, each with its own `notes` table and one row naming the schema.
pub fn two_tenants(conn: &mut PgConnection) {
    conn.batch_execute(
        "create schema t1; create table t1.notes (id serial primary key, body text not null);
         insert into t1.notes (body) values ('t1');
         create schema t2; create table t2.notes (id serial primary key, body text not null);
         insert into t2.notes (body) values ('t2');",
    )
    .expect("create tenants");
}

#[test]
fn activate_switches_and_deactivate_returns_to_neutral() {
    let db = test_database!();
    let mut conn = db.connect();
    two_tenants(&mut conn);
    let config = Config::default();

    config.activate(&mut conn, &"t1").unwrap();
    assert_eq!(conn.search_path().unwrap(), "\"t1\", \"public\", pg_temp");
    assert_eq!(conn.current_schema().unwrap().as_deref(), Some("t1"));
    assert_eq!(bodies(&mut conn), ["t1"]);

    config
        .activate(&mut conn, &SchemaName::new("t2").unwrap())
        .unwrap();
    assert_eq!(bodies(&mut conn), ["t2"]);

    config.deactivate(&mut conn).unwrap();
    assert_eq!(conn.search_path().unwrap(), "\"public\", pg_temp");
    assert_eq!(conn.current_schema().unwrap().as_deref(), Some("public"));
}

#[test]
fn schema_trait_and_extension_trait_use_the_global_config() {
    let db = test_database!();
    let mut conn = db.connect();
    two_tenants(&mut conn);
    // No configuration installed in this test binary: the default one applies.
    let t1 = SchemaName::new("t1").unwrap();
    t1.activate(&mut conn).unwrap();
    assert_eq!(bodies(&mut conn), ["t1"]);
    conn.activate(&"t2").unwrap();
    assert_eq!(bodies(&mut conn), ["t2"]);
    conn.deactivate().unwrap();
    assert_eq!(conn.current_schema().unwrap().as_deref(), Some("public"));
}

#[test]
fn activating_a_missing_schema_is_an_error_and_keeps_the_path() {
    let db = test_database!();
    let mut conn = db.connect();
    two_tenants(&mut conn);
    let config = Config::default();
    config.activate(&mut conn, &"t1").unwrap();

    let err = config.activate(&mut conn, &"missing").unwrap_err();
    assert!(
        matches!(&err, Error::SchemaNotFound { schema } if schema == "missing"),
        "{err:?}"
    );
    assert!(err.to_string().contains("\"missing\""));
    // Not a silent fall-through to public: the path is unchanged.
    assert_eq!(conn.search_path().unwrap(), "\"t1\", \"public\", pg_temp");
    assert_eq!(bodies(&mut conn), ["t1"]);

    // Invalid names never reach the server.
    let err = config
        .activate(&mut conn, &"T1; drop schema t1")
        .unwrap_err();
    assert!(matches!(err, Error::InvalidSchemaName { .. }), "{err:?}");
    assert!(schema_exists(&mut conn, &SchemaName::new("t1").unwrap()).unwrap());
}

#[test]
fn extra_search_paths_come_after_the_shared_schema() {
    let db = test_database!();
    let mut conn = db.connect();
    two_tenants(&mut conn);
    conn.batch_execute(
        "create schema ext; create function ext.hello() returns text language sql as $$ select 'hi' $$;",
    )
    .unwrap();
    let config = Config::builder().extra_search_path("ext").build().unwrap();
    config.activate(&mut conn, &"t1").unwrap();
    assert_eq!(
        conn.search_path().unwrap(),
        "\"t1\", \"public\", \"ext\", pg_temp"
    );
    #[derive(QueryableByName)]
    struct Hello {
        #[diesel(sql_type = Text)]
        hello: String,
    }
    let h: Hello = diesel::sql_query("select hello()")
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(h.hello, "hi");
}

#[test]
fn transaction_form_scopes_the_path_to_the_transaction() {
    let db = test_database!();
    let mut conn = db.connect();
    two_tenants(&mut conn);
    let config = Config::default();
    config.deactivate(&mut conn).unwrap();

    let seen = config
        .transaction(&mut conn, &"t2", |c| {
            diesel::sql_query("insert into notes (body) values ('t2-b')").execute(c)?;
            Ok::<_, Error>(bodies(c))
        })
        .unwrap();
    assert_eq!(seen, ["t2", "t2-b"]);
    // SET LOCAL ended with the transaction.
    assert_eq!(conn.search_path().unwrap(), "\"public\", pg_temp");

    // An error rolls back and the path still ends.
    let err = config
        .transaction(&mut conn, &"t2", |c| {
            diesel::sql_query("insert into notes (body) values ('lost')").execute(c)?;
            Err::<(), _>(Error::Config("veto".into()))
        })
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)));
    conn.tenant_transaction(&"t2", |c| {
        assert_eq!(bodies(c), ["t2", "t2-b"]);
        Ok::<_, Error>(())
    })
    .unwrap();

    // A missing schema: the closure never runs, the connection stays usable.
    let mut ran = false;
    let err = config
        .transaction(&mut conn, &"nope", |_| {
            ran = true;
            Ok::<_, Error>(())
        })
        .unwrap_err();
    assert!(matches!(err, Error::SchemaNotFound { .. }), "{err:?}");
    assert!(!ran);
    assert_eq!(conn.search_path().unwrap(), "\"public\", pg_temp");
    conn.transaction(|c| diesel::sql_query("select 1").execute(c))
        .unwrap();
}

#[test]
fn lifecycle_helpers() {
    let db = test_database!();
    let mut conn = db.connect();
    let config = Config::builder()
        .static_tenant(StaticTenant::builder("www"))
        .clone_reference("sample")
        .build()
        .unwrap();
    let name = |s: &str| SchemaName::new(s).unwrap();

    assert!(!schema_exists(&mut conn, &name("c1")).unwrap());
    create_schema(&mut conn, &name("c1")).unwrap();
    assert!(schema_exists(&mut conn, &name("c1")).unwrap());
    let err = create_schema(&mut conn, &name("c1")).unwrap_err();
    assert!(matches!(err, Error::SchemaExists { .. }), "{err:?}");
    assert!(list_schemas(&mut conn).unwrap().contains(&"c1".to_owned()));

    // Case-sensitive existence check.
    conn.batch_execute("create schema \"C2\"").unwrap();
    assert!(!schema_exists(&mut conn, &name("c2")).unwrap());

    for (protected, what) in [
        ("public", ConfiguredSchema::SharedSchema),
        ("www", ConfiguredSchema::StaticTenant),
        ("sample", ConfiguredSchema::CloneReference),
    ] {
        create_schema(&mut conn, &name(protected)).ok();
        let err = drop_schema(&mut conn, &config, &name(protected)).unwrap_err();
        assert!(
            matches!(&err, Error::Protected { what: w, .. } if *w == what),
            "{err:?}"
        );
        assert!(schema_exists(&mut conn, &name(protected)).unwrap());
    }
    dangerous_drop_schema(&mut conn, &name("www")).unwrap();
    assert!(!schema_exists(&mut conn, &name("www")).unwrap());

    drop_schema(&mut conn, &config, &name("c1")).unwrap();
    assert!(!schema_exists(&mut conn, &name("c1")).unwrap());
    let err = drop_schema(&mut conn, &config, &name("c1")).unwrap_err();
    assert!(matches!(err, Error::SchemaNotFound { .. }), "{err:?}");

    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let n: N = diesel::sql_query("select count(*) as n from pg_namespace where nspname = 'public'")
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(n.n, 1);
}
