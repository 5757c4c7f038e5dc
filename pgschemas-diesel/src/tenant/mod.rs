//! The current tenant of async work (feature `async`): a task-local tenant that follows the
//! work into the tasks, blocking closures and background jobs it starts.
//!
//! A request handler knows its tenant; the work it starts must know it too, without passing
//! it by hand through every call. [`scope`] runs a future with a tenant as the *current
//! tenant*; [`current`] reads it ([`require`] fails closed when there is none); [`spawn`] and
//! [`spawn_blocking`] start a task that runs in the current tenant; a [`TenantJob`] carries
//! the tenant that enqueued it through a queue and runs inside it.
//!
//! ```
//! use diesel::RunQueryDsl;
//! use pgschemas_diesel::SchemaName;
//! use pgschemas_diesel::tenant::{self, TenantJob};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let db = pgschemas_diesel::doctest_setup::database().notes(&["customer1"]); let pool = db.pool();
//! let customer1 = SchemaName::new("customer1")?;
//! let stored = tenant::scope(customer1, async {
//!     // Sync database work on the blocking pool, in the current tenant.
//!     let pool = pool.clone();
//!     tenant::spawn_blocking(move || -> pgschemas_diesel::Result<usize> {
//!         let mut conn = pool.scope(&tenant::require()?)?;
//!         Ok(diesel::sql_query("insert into notes (body) values ('hi')").execute(&mut *conn)?)
//!     })?
//!     .await??;
//!     // A background job remembers who enqueued it.
//!     Ok::<_, Box<dyn std::error::Error>>(TenantJob::new(7)?.to_string())
//! })
//! .await?;
//! assert_eq!(stored, "customer1:7");
//!
//! // Later, on a worker with no tenant of its own:
//! assert_eq!(tenant::current(), None);
//! let job: TenantJob<u32> = stored.parse()?;
//! let seen = job.run(async |n| (tenant::current(), n)).await;
//! assert_eq!(seen, (Some(SchemaName::new("customer1")?), 7));
//! # Ok(()) }
//! ```
//!
//! # What does not follow
//!
//! A tenant is task-local: a task started with plain `tokio::spawn` (or
//! `tokio::task::spawn_blocking`, or a `std::thread`) does not inherit it and runs with no
//! current tenant, so [`require`] fails there. Start such work with [`spawn`] or
//! [`spawn_blocking`], or carry the tenant in a [`TenantJob`].
//!
//! ```
//! use pgschemas_diesel::SchemaName;
//! use pgschemas_diesel::tenant;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! tenant::scope(SchemaName::new("customer1")?, async {
//!     let plain = tokio::spawn(async { tenant::current() }).await?;
//!     assert_eq!(plain, None);
//!     let carried = tenant::spawn(async { tenant::current() })?.await?;
//!     assert_eq!(carried.as_ref().map(SchemaName::as_str), Some("customer1"));
//!     Ok(())
//! })
//! .await
//! # }
//! ```

use std::cell::RefCell;
use std::future::Future;

use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::name::SchemaName;

mod job;

pub use job::TenantJob;

tokio::task_local! {
    /// The current tenant of the task polling a [`scope`]'s future.
    static TASK_TENANT: SchemaName;
}

thread_local! {
    /// The current tenant of a [`spawn_blocking`] closure, for its duration.
    static THREAD_TENANT: RefCell<Option<SchemaName>> = const { RefCell::new(None) };
}

/// Runs `future` with `tenant` as the current tenant.
///
/// Scopes nest: inside an inner scope its tenant is current, and the outer one is current
/// again once the inner future completes (or is dropped). The tenant is visible to the code
/// the future runs, sync calls included, but not to tasks it starts with plain
/// `tokio::spawn`: use [`spawn`] for those.
///
/// ```
/// use pgschemas_diesel::{SchemaName, tenant};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (a, b) = (SchemaName::new("a")?, SchemaName::new("b")?);
/// tenant::scope(a.clone(), async {
///     assert_eq!(tenant::current(), Some(a.clone()));
///     tenant::scope(b.clone(), async { assert_eq!(tenant::current(), Some(b)) }).await;
///     assert_eq!(tenant::current(), Some(a));
/// })
/// .await;
/// assert_eq!(tenant::current(), None);
/// # Ok(()) }
/// ```
pub fn scope<F: Future>(tenant: SchemaName, future: F) -> impl Future<Output = F::Output> {
    TASK_TENANT.scope(tenant, future)
}

/// The current tenant: that of the innermost [`scope`] around the running code, or of the
/// [`spawn_blocking`] closure running it; `None` outside both.
///
/// ```
/// assert_eq!(pgschemas_diesel::tenant::current(), None);
/// ```
pub fn current() -> Option<SchemaName> {
    TASK_TENANT
        .try_with(SchemaName::clone)
        .ok()
        .or_else(|| THREAD_TENANT.with_borrow(Clone::clone))
}

/// The current tenant, or an error when there is none: for work that must not run without
/// one.
///
/// # Errors
///
/// [`Error::NoCurrentTenant`] outside any tenant scope.
///
/// ```
/// use pgschemas_diesel::{Error, SchemaName, tenant};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// assert!(matches!(tenant::require(), Err(Error::NoCurrentTenant { .. })));
/// let inside = tenant::scope(SchemaName::new("a")?, async { tenant::require() }).await?;
/// assert_eq!(inside, "a");
/// # Ok(()) }
/// ```
pub fn require() -> Result<SchemaName> {
    required("tenant::require")
}

/// The current tenant, or [`Error::NoCurrentTenant`] naming `wanted_by`.
pub(crate) fn required(wanted_by: &'static str) -> Result<SchemaName> {
    current().ok_or(Error::NoCurrentTenant { wanted_by })
}

/// Spawns a tokio task that runs `future` in the current tenant.
///
/// # Errors
///
/// [`Error::NoCurrentTenant`] outside any tenant scope: nothing is spawned, rather than a
/// task with no tenant.
///
/// # Panics
///
/// As `tokio::spawn`: when called outside a tokio runtime.
///
/// ```
/// use pgschemas_diesel::{Error, SchemaName, tenant};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let task = tenant::scope(SchemaName::new("a")?, async { tenant::spawn(async { tenant::require() }) });
/// assert_eq!(task.await?.await??, "a");
///
/// assert!(matches!(tenant::spawn(async {}), Err(Error::NoCurrentTenant { .. })));
/// # Ok(()) }
/// ```
pub fn spawn<F>(future: F) -> Result<JoinHandle<F::Output>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let tenant = required("tenant::spawn")?;
    Ok(tokio::spawn(scope(tenant, future)))
}

/// Runs the sync closure `f` on tokio's blocking pool in the current tenant: [`current`] and
/// [`require`] return it inside `f` (a thread-local set for the closure's duration, restored
/// when it returns or panics). The way to run sync Diesel work, such as a
/// [`TenantPool`](crate::TenantPool) scope, from async code.
///
/// # Errors
///
/// [`Error::NoCurrentTenant`] outside any tenant scope: nothing is spawned.
///
/// # Panics
///
/// As `tokio::task::spawn_blocking`: when called outside a tokio runtime.
///
/// ```
/// use pgschemas_diesel::{SchemaName, tenant};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let task = tenant::scope(SchemaName::new("a")?, async { tenant::spawn_blocking(tenant::current) });
/// assert_eq!(task.await?.await?, Some(SchemaName::new("a")?));
/// # Ok(()) }
/// ```
pub fn spawn_blocking<F, R>(f: F) -> Result<JoinHandle<R>>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let tenant = required("tenant::spawn_blocking")?;
    Ok(tokio::task::spawn_blocking(move || in_thread(tenant, f)))
}

/// Runs `f` with `tenant` as the current tenant of this thread.
fn in_thread<R>(tenant: SchemaName, f: impl FnOnce() -> R) -> R {
    let _restore = ThreadTenant::set(tenant);
    f()
}

/// Sets the thread's current tenant; puts the previous one back when dropped.
struct ThreadTenant {
    previous: Option<SchemaName>,
}

impl ThreadTenant {
    fn set(tenant: SchemaName) -> Self {
        Self {
            previous: THREAD_TENANT.replace(Some(tenant)),
        }
    }
}

impl Drop for ThreadTenant {
    fn drop(&mut self) {
        THREAD_TENANT.set(self.previous.take());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn name(s: &str) -> SchemaName {
        SchemaName::new(s).unwrap()
    }

    #[test]
    fn a_thread_tenant_nests_and_is_restored_after_a_panic() {
        assert_eq!(current(), None);
        in_thread(name("a"), || {
            assert_eq!(current(), Some(name("a")));
            in_thread(name("b"), || assert_eq!(current(), Some(name("b"))));
            assert_eq!(current(), Some(name("a")));
            let panicked = std::panic::catch_unwind(|| in_thread(name("c"), || panic!("boom")));
            assert!(panicked.is_err());
            assert_eq!(current(), Some(name("a")));
        });
        assert_eq!(current(), None);
    }

    #[test]
    fn a_task_scope_wins_over_the_thread_tenant() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        in_thread(name("a"), || {
            let inner = runtime.block_on(scope(name("b"), async { current() }));
            assert_eq!(inner, Some(name("b")));
            assert_eq!(current(), Some(name("a")));
        });
    }

    #[test]
    fn require_names_what_asked() {
        let err = required("TenantJob::new").unwrap_err();
        assert!(matches!(
            err,
            Error::NoCurrentTenant {
                wanted_by: "TenantJob::new"
            }
        ));
        assert!(
            err.to_string()
                .starts_with("TenantJob::new needs a current tenant")
        );
    }
}
