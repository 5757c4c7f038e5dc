//! What `#[pgschemas_diesel::test]` expands to calls: the database's preparation, and the
//! values a test function asks for. Not an API of its own: use the attribute.

use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel_migrations::MigrationHarness;

use super::TestDatabase;
use crate::provision::Provisioner;
use crate::{Config, TenantPool};

/// Applies `shared` to `config`'s shared schema of `db` (created when it is not there), then
/// creates each of `tenants` with `config` (migrated with `tenant` when given, else empty).
/// Panics, naming the database, on any failure, and on a `config` with per-tenant roles
/// (which the attribute does not make): the test has not started, and the database is kept
/// for inspection.
pub fn prepare<S, T>(
    db: &TestDatabase,
    config: &Config,
    shared: Option<S>,
    tenant: Option<T>,
    tenants: &[&str],
) where
    S: MigrationSource<Pg>,
    T: MigrationSource<Pg> + Send + Sync + 'static,
{
    if config.tenant_roles().is_some() {
        panic!(
            "#[pgschemas_diesel::test]: `config` turns on per-tenant roles, which the attribute \
             does not make: roles belong to the whole server, so tests running in parallel (or \
             again) would share them. Take `db: &TestDatabase` and make them with \
             `testing::TestRoles::new(db)` (named after the database, dropped with it) \
             (database {})",
            db.name()
        );
    }
    let mut conn = db.connect();
    if let Some(shared) = shared {
        // The shared schema of `config`, created when it is not `public`.
        let schema = config.shared_schema();
        let setup = format!(
            "CREATE SCHEMA IF NOT EXISTS {0}; SET search_path TO {0}",
            schema.quoted()
        );
        diesel::connection::SimpleConnection::batch_execute(&mut conn, &setup)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                conn.run_pending_migrations(shared)
                    .map(drop)
                    .map_err(|e| e.to_string())
            })
            .and_then(|()| {
                diesel::connection::SimpleConnection::batch_execute(&mut conn, "RESET search_path")
                    .map_err(|e| e.to_string())
            })
            .unwrap_or_else(|e| {
                panic!(
                    "#[pgschemas_diesel::test]: the shared migrations failed in schema {} of \
                     database {}: {e}",
                    schema,
                    db.name()
                )
            });
    }
    if tenants.is_empty() {
        return;
    }
    let fail = |schema: &str, e: crate::Error| -> ! {
        panic!(
            "#[pgschemas_diesel::test]: tenant {schema} could not be created in database {}: {}",
            db.name(),
            e.report()
        )
    };
    match tenant {
        Some(migrations) => {
            let provisioner = Provisioner::builder(config.clone(), migrations)
                .build()
                .unwrap_or_else(|e| {
                    panic!(
                        "#[pgschemas_diesel::test]: the tenant migrations were refused (database {}): {}",
                        db.name(),
                        e.report()
                    )
                });
            for schema in tenants {
                provisioner
                    .provision_existing(&mut conn, schema)
                    .unwrap_or_else(|e| fail(schema, e));
            }
        }
        None => {
            for schema in tenants {
                let name = config
                    .check_tenant_name(schema)
                    .unwrap_or_else(|e| fail(schema, e));
                crate::lifecycle::create_schema(&mut conn, &name)
                    .unwrap_or_else(|e| fail(schema, e));
            }
        }
    }
}

/// A pool on `db` with `config`.
pub fn pool(db: &TestDatabase, config: &Config) -> TenantPool {
    TenantPool::new(db.url(), config.clone()).unwrap_or_else(|e| {
        panic!(
            "#[pgschemas_diesel::test]: no pool on database {}: {}",
            db.name(),
            e.report()
        )
    })
}

/// An async pool on `db` with `config` (feature `async`).
#[cfg(feature = "async")]
pub fn async_pool(db: &TestDatabase, config: &Config) -> crate::AsyncTenantPool {
    let deadpool = crate::AsyncTenantPool::builder(db.url())
        .build()
        .unwrap_or_else(|e| {
            panic!(
                "#[pgschemas_diesel::test]: no async pool on database {}: {e}",
                db.name()
            )
        });
    crate::AsyncTenantPool::from_deadpool(deadpool, config.clone())
}

/// The runtime an `async fn` test runs on: tokio's current-thread runtime with I/O and time.
#[cfg(feature = "async")]
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("#[pgschemas_diesel::test]: no tokio runtime: {e}"))
}

/// What a test function returned: whether it failed without panicking (an `Err`), so that
/// its database is kept.
pub trait Outcome {
    /// Whether the test failed.
    fn failed(&self) -> bool;
}

impl Outcome for () {
    fn failed(&self) -> bool {
        false
    }
}

impl<T, E> Outcome for Result<T, E> {
    fn failed(&self) -> bool {
        self.is_err()
    }
}

/// Keeps `db` when `outcome` is a failure; returns `outcome`.
pub fn finish<O: Outcome>(db: &TestDatabase, outcome: O) -> O {
    if outcome.failed() {
        db.keep();
    }
    outcome
}

/// The preparation of a `#[should_panic]` test (its database, [`prepare`]): `None` when it
/// failed, which it said on stderr (the database, when it was made, is kept); the test then
/// returns without running, and fails for not panicking. A failed preparation never passes
/// for the panic the test expects.
pub fn prepare_should_panic<T>(prepare: impl FnOnce() -> T) -> Option<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(prepare)) {
        Ok(prepared) => Some(prepared),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            eprintln!(
                "#[pgschemas_diesel::test]: the test's preparation failed, so it did not run \
                 (a `#[should_panic]` test then fails): {message}"
            );
            None
        }
    }
}

/// The end of a `#[should_panic]` test: a panic (the test passing) drops `db` and goes on
/// unwinding; a return (the test failing for not panicking) keeps it.
pub fn finish_should_panic<O>(db: TestDatabase, outcome: std::thread::Result<O>) -> O {
    match outcome {
        Ok(outcome) => {
            db.keep();
            outcome
        }
        Err(panic) => {
            drop(db);
            std::panic::resume_unwind(panic)
        }
    }
}
