//! Clones never keep pointing at their source: functions' `search_path` settings are
//! rewritten to the clone's, and what names the source where the clone cannot rewrite it is
//! refused before anything is created (or, when it only may, reported, and refused by the
//! provisioner).

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use pgschemas_diesel::{
    Config, Error, SchemaName, lifecycle::schema_exists, provision::Provisioner,
    provision::clone_schema, provision::create_reference, test_database,
};

/// A table, an audit table, a trigger function and a procedure declared `SET search_path FROM
/// CURRENT`, and a view.
const AUDITED: EmbeddedMigrations = embed_migrations!("../tests/migrations/clone_paths");

fn config() -> Config {
    Config::builder().clone_reference("sample").build().unwrap()
}

fn name(s: &str) -> SchemaName {
    SchemaName::new(s).unwrap()
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = Text)]
    line: String,
}

fn count(conn: &mut PgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .n
}

/// A routine's `proconfig`, entries joined with `;`.
fn settings(conn: &mut PgConnection, routine: &str) -> String {
    diesel::sql_query(
        "select array_to_string(proconfig, ';') as line from pg_proc where oid = $1::regprocedure",
    )
    .bind::<Text, _>(routine)
    .get_result::<Line>(conn)
    .unwrap_or_else(|e| panic!("{routine}: {e}"))
    .line
}

fn exists(conn: &mut PgConnection, schema: &str) -> bool {
    schema_exists(conn, &name(schema)).unwrap()
}

/// The reference, migrated, with one seed item (audited in the reference itself).
fn audited_reference(conn: &mut PgConnection) {
    create_reference(conn, &config(), AUDITED).unwrap();
    conn.batch_execute("insert into sample.items (name) values ('seed')")
        .unwrap();
    assert_eq!(
        settings(conn, "sample.audit_item()"),
        r#"search_path="sample", "public", pg_temp;work_mem=1MB"#,
        "the reference's function stores the path it was migrated with"
    );
}

/// Writes through `schema`'s trigger and procedure (from a neutral path, and from the
/// tenant's own), then checks that every audit row landed in `schema` and none in the
/// reference, and that its routines name `schema` in their settings.
fn assert_writes_stay_in(conn: &mut PgConnection, schema: &str) {
    conn.batch_execute(&format!(
        "set search_path = public;
         insert into {schema}.items (name) values ('from public');
         call {schema}.add_item('called');
         set search_path = {schema}, public;
         insert into items (name) values ('from the tenant');
         reset search_path;"
    ))
    .unwrap();
    assert_eq!(
        count(
            conn,
            &format!("select count(*) as n from {schema}.audit where note <> 'created seed'")
        ),
        3,
        "the tenant's audit rows are in the tenant"
    );
    assert_eq!(
        count(conn, &format!("select count(*) as n from {schema}.audited")),
        4,
        "the tenant's view reads the tenant's tables (the seed and three new items)"
    );
    assert_eq!(
        count(conn, "select count(*) as n from sample.audit"),
        1,
        "only the reference's own seed is audited in the reference"
    );
    assert_eq!(count(conn, "select count(*) as n from sample.items"), 1);
    assert_eq!(
        settings(conn, &format!("{schema}.audit_item()")),
        format!("search_path={schema}, public, pg_temp;work_mem=1MB")
    );
    assert_eq!(
        settings(conn, &format!("{schema}.add_item(text)")),
        format!("search_path={schema}, public, pg_temp")
    );
}

#[test]
fn clone_schema_gives_functions_the_clones_path() {
    let db = test_database!();
    let mut conn = db.connect();
    audited_reference(&mut conn);

    let report = clone_schema(&mut conn, &config(), &name("sample"), &name("t1"), true).unwrap();
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(report.functions, 2);
    assert_eq!(
        count(
            &mut conn,
            "select count(*) as n from t1.items where name = 'seed'"
        ),
        1
    );
    assert_writes_stay_in(&mut conn, "t1");
}

#[test]
fn provisioned_tenants_get_their_own_path_each() {
    let db = test_database!();
    let mut conn = db.connect();
    let p = provisioner(&mut conn);
    audited_reference(&mut conn);
    // The second tenant replays the script read for the first.
    for t in ["t1", "t2"] {
        create_tenant(&p, &mut conn, t).unwrap();
        assert_eq!(
            count(
                &mut conn,
                &format!("select count(*) as n from {t}.items where name = 'seed'")
            ),
            1,
            "{t} was cloned, not migrated"
        );
        assert_writes_stay_in(&mut conn, t);
    }
}

/// The shared table of tenant rows, and a provisioner cloning from `sample`.
fn provisioner(conn: &mut PgConnection) -> Provisioner {
    conn.batch_execute(
        "create table tenants (id bigserial primary key, schema_name text not null unique)",
    )
    .unwrap();
    Provisioner::builder(config(), AUDITED).build().unwrap()
}

fn create_tenant(
    p: &Provisioner,
    conn: &mut PgConnection,
    t: &str,
) -> pgschemas_diesel::Result<()> {
    p.create_tenant(conn, t, |conn| {
        diesel::sql_query("insert into tenants (schema_name) values ($1)")
            .bind::<Text, _>(t)
            .execute(conn)?;
        Ok(())
    })
}

/// Asserts `err` is the refusal to clone `sample` into `dst` naming `object`, and that
/// nothing of `dst` exists: no schema, no tenant row.
#[track_caller]
fn assert_refused(conn: &mut PgConnection, err: &Error, dst: &str, object: &str) {
    match err {
        Error::CloneNamesSource {
            source_schema,
            schema,
            found,
        } => {
            assert_eq!(source_schema, "sample");
            assert_eq!(schema, dst);
            assert!(found.iter().any(|f| f.contains(object)), "{err}");
        }
        other => panic!("expected CloneNamesSource, got {other}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(r#""sample""#) && text.contains(object),
        "{text}"
    );
    assert!(!exists(conn, dst), "schema {dst} was created");
    assert_eq!(
        count(conn, "select count(*) as n from tenants"),
        0,
        "a tenant row was left behind"
    );
}

/// A reference built by hand whose trigger function writes into `sample.audit` by name.
const NAMES_ITSELF: &str = "
create schema sample;
create table sample.items (id bigserial primary key, name text not null);
create table sample.audit (id bigserial primary key, item_id bigint not null, note text not null);
create function sample.audit_item() returns trigger language plpgsql
  as $$ begin insert into sample.audit (item_id, note) values (new.id, 'created'); return new; end $$;
create trigger items_audit after insert on sample.items for each row execute function sample.audit_item();";

#[test]
fn a_body_naming_the_source_is_refused_and_nothing_is_created() {
    let db = test_database!();
    let mut conn = db.connect();
    let p = provisioner(&mut conn);
    conn.batch_execute(NAMES_ITSELF).unwrap();
    for body in [
        "insert into sample.audit (item_id, note) values (new.id, 'created')",
        r#"insert into "sample".audit (item_id, note) values (new.id, 'created')"#,
        "insert into Sample . audit (item_id, note) values (new.id, 'created')",
        "execute 'insert into sample.audit (item_id, note) values ($1, $2)' using new.id, 'created'",
    ] {
        conn.batch_execute(&format!(
            "create or replace function sample.audit_item() returns trigger language plpgsql
               as $$ begin {body}; return new; end $$"
        ))
        .unwrap();
        let err =
            clone_schema(&mut conn, &config(), &name("sample"), &name("t1"), true).expect_err(body);
        assert_refused(&mut conn, &err, "t1", "function audit_item()");

        let err = create_tenant(&p, &mut conn, "t1").expect_err(body);
        assert_refused(&mut conn, &err, "t1", "function audit_item()");
    }
}

#[test]
fn a_search_path_setting_the_clone_cannot_read_is_refused() {
    let db = test_database!();
    let mut conn = db.connect();
    let p = provisioner(&mut conn);
    // PostgreSQL stores the over-long name (given as a string, so the parser keeps it whole)
    // and truncates it when the path is used; the clone cannot tell for sure which schema
    // that is.
    conn.batch_execute(&format!(
        "create schema sample;
         create function sample.f() returns int language sql
           set search_path = sample, '{}' as $$ select 1 $$;",
        "x".repeat(70)
    ))
    .unwrap();
    let err = clone_schema(&mut conn, &config(), &name("sample"), &name("t1"), false).unwrap_err();
    assert_refused(&mut conn, &err, "t1", "function f()");
    assert!(err.to_string().contains("search_path"), "{err}");
    let err = create_tenant(&p, &mut conn, "t1").unwrap_err();
    assert_refused(&mut conn, &err, "t1", "function f()");
}

#[test]
fn definitions_that_still_name_the_source_are_refused() {
    let db = test_database!();
    let mut conn = db.connect();
    let base = "create schema sample;
                create table sample.t (id int primary key, a text);
                create table sample.audit (id int, note text);";
    for (case, object) in [
        // A function of the source shadowed by a built-in one is printed qualified.
        (
            "create function sample.lower(text) returns text language sql immutable as $$ select 'x' $$;
             alter table sample.t alter column a set default sample.lower('A');",
            "column t.a",
        ),
        // Strings that become names when they run.
        (
            "alter table sample.t add constraint t_exists check (to_regclass('sample.t') is not null);",
            "constraint t_exists on t",
        ),
        (
            "create view sample.v as select ('sample.t'::text)::regclass as r;",
            "view v",
        ),
        (
            "create policy p on sample.t using (to_regclass('sample.audit') is not null);",
            "policy p on t",
        ),
        (
            "create function sample.log() returns trigger language plpgsql
               as $$ begin execute format('insert into %s values (1)', tg_argv[0]); return new; end $$;
             create trigger t_log after insert on sample.t for each row execute function sample.log('sample.audit');",
            "trigger t_log on t",
        ),
    ] {
        conn.batch_execute(&format!("{base}\n{case}")).unwrap();
        let err = clone_schema(&mut conn, &config(), &name("sample"), &name("t1"), false)
            .expect_err(case);
        match &err {
            Error::CloneNamesSource { found, .. } => {
                assert!(found.iter().any(|f| f.starts_with(object)), "{case}: {err}");
            }
            other => panic!("{case}: expected CloneNamesSource, got {other}"),
        }
        assert!(!exists(&mut conn, "t1"), "{case}");
        conn.batch_execute("drop schema sample cascade").unwrap();
    }
}

#[test]
fn explicitly_qualified_definitions_point_at_the_clone() {
    let db = test_database!();
    let mut conn = db.connect();
    // Every name written with its schema, and a path set by hand rather than FROM CURRENT.
    conn.batch_execute(
        "create schema sample;
         create sequence sample.ids;
         create table sample.items (id bigint primary key default nextval('sample.ids'), name text not null);
         create table sample.audit (id bigserial primary key, item_id bigint not null, note text not null);
         create function sample.audit_item() returns trigger language plpgsql
           set search_path = sample, public
           as $$ begin insert into audit (item_id, note) values (new.id, 'trigger'); return new; end $$;
         create trigger items_audit after insert on sample.items for each row execute function sample.audit_item();
         create rule items_rule as on insert to sample.items do also
           insert into sample.audit (item_id, note) values (new.id, 'rule');
         create view sample.audited as select i.name, a.note from sample.items i join sample.audit a on a.item_id = i.id;
         create policy seen on sample.items using (id in (select item_id from sample.audit));",
    )
    .unwrap();
    let report = clone_schema(&mut conn, &config(), &name("sample"), &name("t1"), false).unwrap();
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);

    // With an id of its own: the rule would draw another one from the sequence.
    conn.batch_execute("insert into t1.items (id, name) values (10, 'x')")
        .unwrap();
    assert_eq!(count(&mut conn, "select count(*) as n from t1.audit"), 2);
    assert_eq!(count(&mut conn, "select count(*) as n from t1.audited"), 2);
    assert_eq!(
        count(&mut conn, "select count(*) as n from sample.audit"),
        0
    );
    assert_eq!(
        count(&mut conn, "select count(*) as n from sample.items"),
        0
    );
    assert_eq!(
        settings(&mut conn, "t1.audit_item()"),
        "search_path=t1, public"
    );
    // No object of the clone depends on one of the source.
    assert_eq!(
        count(
            &mut conn,
            "select count(*) as n from pg_depend d
             where pg_describe_object(d.classid, d.objid, d.objsubid) like '%t1.%'
               and pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid) like '%sample.%'"
        ),
        0
    );
}

#[test]
fn what_may_name_the_source_is_reported_by_a_clone_and_refused_by_the_provisioner() {
    let db = test_database!();
    let mut conn = db.connect();
    let p = provisioner(&mut conn);
    conn.batch_execute(
        "create schema sample;
         create table sample.audit (id bigserial primary key, note text not null);
         create function sample.note(n text) returns void language plpgsql
           as $$ begin execute format('insert into %I.audit (note) values ($1)', 'sample') using n; end $$;",
    )
    .unwrap();
    let report = clone_schema(&mut conn, &config(), &name("sample"), &name("t1"), false).unwrap();
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(
        report.warnings[0].contains("function note(n text)")
            && report.warnings[0].contains(r#""sample""#),
        "{:?}",
        report.warnings
    );

    let err = create_tenant(&p, &mut conn, "t2").unwrap_err();
    assert_refused(&mut conn, &err, "t2", "function note(n text)");
}
