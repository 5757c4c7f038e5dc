//! `doctor` with per-tenant roles: a healthy install passes every role check, and each way of
//! breaking one (with SQL, as a superuser) is named by its check.

use diesel::connection::SimpleConnection;
use pgschemas_diesel::catalog::NoTenants;
use pgschemas_diesel::doctor::{CheckStatus, DoctorReport, doctor};
use pgschemas_diesel::{Config, StaticTenant, test_database};

use crate::roles::{Setup, TENANT};

/// The configuration with `a`, `b` and `c` as static tenants, so that `doctor` knows them.
fn config(s: &Setup) -> Config {
    Config::builder()
        .tenant_roles(s.roles.tenant_roles())
        .static_tenant(StaticTenant::builder("a"))
        .static_tenant(StaticTenant::builder("b"))
        .static_tenant(StaticTenant::builder("c"))
        .build()
        .unwrap()
}

fn report(s: &Setup) -> DoctorReport {
    doctor(&mut s.ddl_connection(), &config(s), &NoTenants, &TENANT).unwrap()
}

const ROLE_CHECKS: [&str; 6] = [
    "tenant-roles",
    "tenant-ownership",
    "tenant-default-privileges",
    "security-definer",
    "cross-tenant-privileges",
    "orphan-roles",
];

#[track_caller]
fn status(r: &DoctorReport, name: &str) -> (CheckStatus, String) {
    let c = r.get(name).unwrap_or_else(|| panic!("{name} ran:\n{r}"));
    (c.status, c.summary.clone())
}

#[test]
fn a_healthy_install_passes_every_role_check() {
    let s = Setup::new(test_database!(), &["a", "b", "c"]);
    let r = report(&s);
    for name in ROLE_CHECKS {
        assert_eq!(status(&r, name).0, CheckStatus::Pass, "{name}:\n{r}");
    }
}

#[test]
fn each_broken_thing_is_named_by_its_check() {
    let s = Setup::new(test_database!(), &["a", "b", "c"]);
    let p = s.roles.prefix().to_owned();
    let (ddl, app) = (s.roles.ddl().to_owned(), s.roles.app().to_owned());
    let mut admin = s.admin();
    let breakage = [
        (
            format!("revoke \"{p}b\" from \"{app}\""),
            "tenant-roles",
            CheckStatus::Fail,
            "b (not",
            format!("grant \"{p}b\" to \"{app}\""),
        ),
        (
            "create table a.stray (x int)".to_owned(),
            "tenant-ownership",
            CheckStatus::Fail,
            "a (1)",
            "drop table a.stray".to_owned(),
        ),
        (
            format!(
                "alter default privileges for role \"{ddl}\" in schema a revoke insert on tables from \"{p}a\""
            ),
            "tenant-default-privileges",
            CheckStatus::Fail,
            "schema(s) a",
            format!(
                "alter default privileges for role \"{ddl}\" in schema a grant insert on tables to \"{p}a\""
            ),
        ),
        (
            "grant select on b.orders to \"PFX-a\"".replace("PFX-", &p),
            "cross-tenant-privileges",
            CheckStatus::Fail,
            "b.orders",
            "revoke select on b.orders from \"PFX-a\"".replace("PFX-", &p),
        ),
        (
            format!("grant \"{p}b\" to \"{p}a\""),
            "cross-tenant-privileges",
            CheckStatus::Fail,
            "membership of role",
            format!("revoke \"{p}b\" from \"{p}a\""),
        ),
        (
            format!(
                "create function a.f() returns int language sql security definer as 'select 1'; alter function a.f() owner to \"{ddl}\""
            ),
            "security-definer",
            CheckStatus::Warn,
            "a (1)",
            "drop function a.f()".to_owned(),
        ),
        (
            format!("comment on role \"{p}c\" is null"),
            "tenant-roles",
            CheckStatus::Fail,
            "not marked",
            String::new(),
        ),
    ];
    for (break_it, check, expected, names, mend) in breakage {
        admin.batch_execute(&break_it).unwrap();
        let r = report(&s);
        let (got, summary) = status(&r, check);
        assert_eq!(got, expected, "{break_it}: {check}:\n{r}");
        assert!(summary.contains(names), "{break_it}: {summary}");
        if !mend.is_empty() {
            admin.batch_execute(&mend).unwrap();
            assert_eq!(
                status(&report(&s), check).0,
                CheckStatus::Pass,
                "after {mend}"
            );
        }
    }
}

#[test]
fn a_role_without_its_schema_and_a_schema_without_its_role_are_found() {
    let s = Setup::new(test_database!(), &["a", "b", "c"]);
    let mut admin = s.admin();
    // c's schema dropped outside the crate: its role is left.
    admin.batch_execute("drop schema c cascade").unwrap();
    let r = report(&s);
    let (got, summary) = status(&r, "orphan-roles");
    assert_eq!(got, CheckStatus::Warn, "{r}");
    assert!(
        summary.contains(&format!("{}c", s.roles.prefix())),
        "{summary}"
    );
    // b's role dropped outside the crate: its schema is left without one.
    let p = s.roles.prefix();
    admin
        .batch_execute(&format!("drop owned by \"{p}b\"; drop role \"{p}b\""))
        .unwrap();
    let (got, summary) = status(&report(&s), "tenant-roles");
    assert_eq!(got, CheckStatus::Fail);
    assert!(summary.contains("without a role: b"), "{summary}");
}
