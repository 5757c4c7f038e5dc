//! `tenant`: the current tenant follows async work into scopes, spawned tasks, blocking
//! closures and background jobs, and fails closed where there is none.

use diesel::prelude::*;
use pgschemas_diesel::tenant::{self, TenantJob};
use pgschemas_diesel::{Error, JobFault, SchemaName, TenantPool, test_database};

use crate::activation::two_tenants;

diesel::table! {
    notes (id) {
        id -> Integer,
        body -> Text,
    }
}

fn name(s: &str) -> SchemaName {
    SchemaName::new(s).unwrap()
}

/// The bodies of the current tenant's notes, read through `pool` on the blocking pool.
async fn current_bodies(pool: TenantPool) -> pgschemas_diesel::Result<Vec<String>> {
    tenant::spawn_blocking(move || {
        let mut conn = pool.scope(&tenant::require()?)?;
        Ok(notes::table.select(notes::body).load(&mut *conn)?)
    })?
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_in_the_tenant_that_enqueued_it() {
    let db = test_database!();
    two_tenants(&mut db.connect());
    let pool = TenantPool::new(db.url(), Default::default()).unwrap();

    let stored = tenant::scope(name("t1"), async { TenantJob::new(7_u32).unwrap() })
        .await
        .to_string();

    // A worker task outside any scope reads the job back and runs it.
    let worker = tokio::spawn(async move {
        assert_eq!(tenant::current(), None);
        let job: TenantJob<u32> = stored.parse().unwrap();
        job.run(|n| async move { (n, tenant::current(), current_bodies(pool).await) })
            .await
    });
    let (payload, current, bodies) = worker.await.unwrap();
    assert_eq!(payload, 7);
    assert_eq!(current, Some(name("t1")));
    assert_eq!(bodies.unwrap(), ["t1"]);
}

#[tokio::test]
async fn work_outside_any_scope_fails_closed() {
    assert!(matches!(
        TenantJob::new(7),
        Err(Error::NoCurrentTenant {
            wanted_by: "TenantJob::new"
        })
    ));
    assert!(matches!(
        tenant::spawn(async {}),
        Err(Error::NoCurrentTenant {
            wanted_by: "tenant::spawn"
        })
    ));
    assert!(matches!(
        tenant::spawn_blocking(|| {}),
        Err(Error::NoCurrentTenant {
            wanted_by: "tenant::spawn_blocking"
        })
    ));
    let err = tenant::require().unwrap_err();
    assert!(matches!(
        err,
        Error::NoCurrentTenant {
            wanted_by: "tenant::require"
        }
    ));
    assert!(err.to_string().contains("needs a current tenant"));
}

#[tokio::test]
async fn nested_scopes_restore_the_outer() {
    tenant::scope(name("a"), async {
        assert_eq!(tenant::current(), Some(name("a")));
        tenant::scope(name("b"), async {
            assert_eq!(tenant::current(), Some(name("b")));
            tokio::task::yield_now().await;
            assert_eq!(tenant::current(), Some(name("b")));
        })
        .await;
        assert_eq!(tenant::current(), Some(name("a")));
    })
    .await;
    assert_eq!(tenant::current(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_carries_the_tenant() {
    let seen = tenant::scope(name("a"), async {
        tenant::spawn(async {
            tokio::task::yield_now().await;
            let nested = tenant::spawn(async { tenant::current() }).unwrap();
            (tenant::current(), nested.await.unwrap())
        })
    })
    .await
    .unwrap()
    .await
    .unwrap();
    assert_eq!(seen, (Some(name("a")), Some(name("a"))));
}

#[test]
fn spawn_blocking_sees_the_tenant_and_leaves_its_thread_clean() {
    // One blocking thread, so that the later closures run on the same thread as the first.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(1)
        .build()
        .unwrap();
    runtime.block_on(async {
        let seen =
            tenant::scope(name("a"), async { tenant::spawn_blocking(tenant::current) }).await;
        assert_eq!(seen.unwrap().await.unwrap(), Some(name("a")));

        let panicked = tenant::scope(name("b"), async {
            tenant::spawn_blocking(|| panic!("job failed"))
        })
        .await;
        assert!(panicked.unwrap().await.unwrap_err().is_panic());

        let plain = tokio::task::spawn_blocking(tenant::current).await.unwrap();
        assert_eq!(plain, None);
    });
}

#[tokio::test]
async fn spawn_blocking_reads_the_tenants_rows() {
    let db = test_database!();
    two_tenants(&mut db.connect());
    let pool = TenantPool::new(db.url(), Default::default()).unwrap();
    for tenant in ["t1", "t2"] {
        let bodies = tenant::scope(name(tenant), current_bodies(pool.clone())).await;
        assert_eq!(bodies.unwrap(), [tenant]);
    }
}

#[tokio::test]
async fn a_tampered_job_is_refused() {
    for stored in [
        "Bad:7",
        "pg_catalog:7",
        "t1;drop schema t2:7",
        "\"t1\":7",
        ":7",
    ] {
        match stored.parse::<TenantJob<u32>>() {
            Err(Error::InvalidJob {
                reason: JobFault::InvalidTenant(_),
                ..
            }) => {}
            other => panic!("{stored}: unexpected {other:?}"),
        }
    }
    assert!(matches!(
        "7".parse::<TenantJob<u32>>(),
        Err(Error::InvalidJob {
            reason: JobFault::NoTenant,
            ..
        })
    ));
}

#[tokio::test]
async fn a_scope_does_not_follow_plain_tokio_spawn() {
    let plain = tenant::scope(name("a"), async {
        let task = tokio::spawn(async { tenant::current() }).await.unwrap();
        let blocking = tokio::task::spawn_blocking(tenant::current).await.unwrap();
        (task, blocking)
    })
    .await;
    assert_eq!(plain, (None, None));
}

#[cfg(feature = "serde")]
#[tokio::test]
async fn the_serde_form_carries_the_tenant_and_refuses_a_bad_one() {
    let job = tenant::scope(name("t1"), async { TenantJob::new(vec![1, 2]).unwrap() }).await;
    let json = serde_json::to_string(&job).unwrap();
    assert_eq!(json, r#"{"tenant":"t1","payload":[1,2]}"#);

    let back: TenantJob<Vec<i32>> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, job);
    let tenant = back.run(|_| async { tenant::require() }).await.unwrap();
    assert_eq!(tenant, "t1");

    let tampered = json.replace("t1", "pg_toast");
    let err = serde_json::from_str::<TenantJob<Vec<i32>>>(&tampered).unwrap_err();
    assert!(err.to_string().contains("refusing a job"), "{err}");
}
