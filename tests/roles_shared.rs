//! Per-tenant roles and the shared schema: the policy deciding what a tenant role may do
//! there, and row-level security keyed to the current tenant role on a shared table.

use std::sync::{Arc, Mutex};

use diesel::connection::SimpleConnection;
use pgschemas_diesel::roles::{Phase, Privilege, SharedGrants, SharedPolicy, shared_row_security};
use pgschemas_diesel::test_database;

use crate::roles::{Setup, is_denied, owners, sql_state};

const SHARED: &str =
    "create table public.plans (owner text not null); insert into public.plans values ('shared');
    create table public.notes (owner text not null);
    create table public.invoices (owner text not null, total int not null default 0)";

#[test]
fn without_a_policy_a_tenant_role_reaches_no_shared_table() {
    let s = Setup::with(test_database!(), &["a"], SHARED, |r| r);
    let mut conn = s.app_pool(1).scope(&"a").unwrap();
    assert!(is_denied(&mut conn, "select owner from plans"));
}

#[test]
fn the_policy_is_asked_with_its_context_and_its_grants_are_made() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let s = Setup::with(test_database!(), &["a", "b"], SHARED, move |r| {
        r.shared_policy(SharedPolicy::new(move |ctx| {
            record.lock().unwrap().push((
                ctx.tenant.to_string(),
                ctx.role.to_string(),
                ctx.phase,
                ctx.executing.to_owned(),
            ));
            SharedGrants::none()
                .table("plans", &[Privilege::Select])
                .and_then(|g| g.table("notes", &[Privilege::Insert]))
                .unwrap()
        }))
    });
    let p = s.roles.prefix();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            (
                "a".to_owned(),
                format!("{p}a"),
                Phase::Provision,
                s.roles.ddl().to_owned()
            ),
            (
                "b".to_owned(),
                format!("{p}b"),
                Phase::Provision,
                s.roles.ddl().to_owned()
            ),
        ]
    );
    let mut conn = s.app_pool(1).scope(&"a").unwrap();
    assert_eq!(
        owners(&mut conn, "select owner from plans").unwrap(),
        ["shared"]
    );
    assert!(is_denied(&mut conn, "insert into plans values ('a')"));
    assert_eq!(
        sql_state(&mut conn, "insert into notes values ('a')"),
        "00000"
    );
    assert!(is_denied(&mut conn, "select owner from notes"));
    assert!(is_denied(&mut conn, "select owner from invoices"));
}

#[test]
fn the_ready_policy_reads_every_shared_table() {
    let s = Setup::with(test_database!(), &["a"], SHARED, |r| {
        r.shared_policy(SharedPolicy::read_only())
    });
    let mut conn = s.app_pool(1).scope(&"a").unwrap();
    for t in ["plans", "notes", "invoices"] {
        assert_eq!(
            sql_state(&mut conn, &format!("select owner from {t}")),
            "00000",
            "{t}"
        );
        assert!(is_denied(&mut conn, &format!("delete from {t}")), "{t}");
    }
}

#[test]
fn row_level_security_keys_a_shared_table_to_the_current_tenant_role() {
    let s = Setup::with(test_database!(), &["a", "b"], SHARED, |r| {
        r.shared_policy(SharedPolicy::new(|_| {
            SharedGrants::none()
                .table(
                    "invoices",
                    &[Privilege::Select, Privilege::Insert, Privilege::Update],
                )
                .unwrap()
        }))
    });
    let mut ddl = s.ddl_connection();
    shared_row_security(&mut ddl, &s.config, "invoices", "owner").unwrap();
    shared_row_security(&mut ddl, &s.config, "invoices", "owner").expect("again: replaced");
    ddl.batch_execute(&format!(
        "insert into invoices (owner) values ('a'), ('b'), ('b'); grant select on invoices to \"{}\"",
        s.roles.app()
    ))
    .unwrap();
    let pool = s.app_pool(1);
    let mut conn = pool.scope(&"a").unwrap();
    assert_eq!(
        owners(&mut conn, "select owner from invoices").unwrap(),
        ["a"]
    );
    assert_eq!(
        sql_state(&mut conn, "insert into invoices (owner) values ('a')"),
        "00000"
    );
    // Another tenant's row is refused by the policy's check.
    assert!(is_denied(
        &mut conn,
        "insert into invoices (owner) values ('b')"
    ));
    assert!(is_denied(&mut conn, "update invoices set owner = 'b'"));
    // Back to the login inside the checkout: no row at all.
    conn.batch_execute("reset role").unwrap();
    assert!(
        owners(&mut conn, "select owner from invoices")
            .unwrap()
            .is_empty()
    );
    drop(conn);
    let mut conn = pool.scope(&"b").unwrap();
    assert_eq!(
        owners(&mut conn, "select owner from invoices").unwrap(),
        ["b", "b"]
    );
    drop(conn);
    // The neutral path (the login) sees none; the owner, the DDL role, sees all.
    let mut conn = pool.get().unwrap();
    assert!(
        owners(&mut conn, "select owner from invoices")
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        owners(&mut ddl, "select owner from invoices")
            .unwrap()
            .len(),
        4
    );
    // Without the mode, or with a bad name, nothing is changed.
    assert!(
        shared_row_security(
            &mut ddl,
            &pgschemas_diesel::Config::default(),
            "invoices",
            "owner"
        )
        .is_err()
    );
    assert!(shared_row_security(&mut ddl, &s.config, "invoices; drop", "owner").is_err());
}
