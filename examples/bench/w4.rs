//! W4: resolve. 10,000 tenants, each with domain `t<i>.example.com` and folder route
//! `customers.example.com/t<i>`; resolve 100,000 (host, path) pairs, 90% hits, 10% misses,
//! from the in-memory table on one thread. Memory per route is measured with a counting
//! allocator (bytes requested and still held after building the table, over the routes).
//!
//! With `--features axum`, also the HTTP cost of the tenancy layer: the web example's
//! `GET /hello` (no database work) through the layer against the same handler without it,
//! under the same load generator, alternating rounds (`W4-http-layer`, `W4-http-layer-folder`,
//! `W4-http-bare`, and the ratios).

use std::alloc::System;
use std::hint::black_box;
use std::time::Instant;

use pgschemas_diesel::{
    Config, SchemaName, catalog::DomainRecord, catalog::TenantRecord, routing::Resolution,
    routing::RouteTable, routing::Routes,
};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

use crate::common::{Bench, report};
#[cfg(feature = "axum")]
use crate::common::{Client, threads_cpu};

#[global_allocator]
pub(crate) static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const TENANTS: usize = 10_000;
const PAIRS: usize = 100_000;
/// Passes over the 100,000 pairs, so the measurement lasts long enough to be stable.
const PASSES: usize = 20;

/// CPU time this thread has used, in seconds (`/proc/thread-self/schedstat`).
fn thread_cpu() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0.0, |ns| ns as f64 / 1e9)
}

/// The bytes a region's allocations still hold. (stats_alloc counts a `realloc`'s growth or
/// shrinking in `bytes_allocated` / `bytes_deallocated` already; `bytes_reallocated` is the
/// same change again.)
pub(crate) fn held_bytes(stats: &stats_alloc::Stats) -> i64 {
    stats.bytes_allocated as i64 - stats.bytes_deallocated as i64
}

fn records() -> (Vec<TenantRecord>, Vec<DomainRecord>) {
    let mut tenants = Vec::with_capacity(TENANTS);
    let mut domains = Vec::with_capacity(2 * TENANTS);
    for i in 0..TENANTS {
        tenants.push(TenantRecord {
            id: i.to_string(),
            schema: SchemaName::new(format!("t{i}")).expect("valid"),
            active: true,
        });
        domains.push(DomainRecord {
            tenant_id: i.to_string(),
            domain: format!("t{i}.example.com"),
            folder: None,
            is_primary: true,
            redirect_to_primary: false,
        });
        domains.push(DomainRecord {
            tenant_id: i.to_string(),
            domain: "customers.example.com".to_owned(),
            folder: Some(format!("t{i}")),
            is_primary: false,
            redirect_to_primary: false,
        });
    }
    (tenants, domains)
}

/// 90% hits (half by domain, half by folder), 10% misses (unknown hosts and folders).
fn pairs() -> Vec<(String, String)> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..PAIRS)
        .map(|_| {
            let r = next();
            let t = (r >> 8) as usize % TENANTS;
            match r % 20 {
                0 => (format!("x{t}.example.com"), "/".to_owned()),
                1 => ("customers.example.com".to_owned(), format!("/u{t}/orders")),
                n if n % 2 == 0 => (format!("t{t}.example.com"), "/orders/42".to_owned()),
                _ => (
                    "customers.example.com".to_owned(),
                    format!("/t{t}/orders/42"),
                ),
            }
        })
        .collect()
}

pub fn all(bench: &Bench) {
    resolve();
    http(bench);
}

fn resolve() {
    let (tenants, domains) = records();
    let config = Config::default();

    let region = Region::new(GLOBAL);
    let routes = Routes::build(&config, &tenants, &domains);
    let held = region.change();
    let bytes = held_bytes(&held);
    assert_eq!(routes.route_count(), 2 * TENANTS);
    assert!(routes.warnings().is_empty());
    let bytes_per_route = bytes as f64 / routes.route_count() as f64;
    drop((tenants, domains));

    let table = RouteTable::fixed(routes);
    let pairs = pairs();
    let expect_hits = pairs
        .iter()
        .filter(|(h, p)| matches!(table.resolve(h, p), Resolution::Route(_)))
        .count();

    // Warm up, then measure.
    for (host, path) in &pairs {
        black_box(table.resolve(black_box(host), black_box(path)));
    }
    let region = Region::new(GLOBAL);
    let cpu = thread_cpu();
    let started = Instant::now();
    let mut hits = 0usize;
    for _ in 0..PASSES {
        for (host, path) in &pairs {
            if let Resolution::Route(route) = table.resolve(black_box(host), black_box(path)) {
                hits += 1;
                black_box(route);
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = thread_cpu() - cpu;
    let allocs = region.change();
    assert_eq!(hits, expect_hits * PASSES);
    let n = (PAIRS * PASSES) as u64;
    report(
        "W4",
        n,
        seconds,
        "resolutions/s",
        &[
            ("tenants", TENANTS.to_string()),
            ("routes", (2 * TENANTS).to_string()),
            (
                "hit_ratio",
                format!("{:.3}", expect_hits as f64 / PAIRS as f64),
            ),
            ("bytes_per_route", format!("{bytes_per_route:.1}")),
            ("table_bytes", bytes.to_string()),
            (
                "allocations_per_resolution",
                format!("{:.4}", allocs.allocations as f64 / n as f64),
            ),
            ("threads", "1".to_owned()),
            ("cpu_seconds", format!("{cpu:.4}")),
            ("rate_per_cpu_second", format!("{:.1}", n as f64 / cpu)),
        ],
    );
}

#[cfg(not(feature = "axum"))]
fn http(_bench: &Bench) {
    eprintln!("W4-http: skipped; run with `--features axum` for the HTTP figures");
}

#[cfg(feature = "axum")]
use crate::web;

#[cfg(feature = "axum")]
fn http(bench: &Bench) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    use axum::extract::Request;

    /// Keep-alive connections of the load generator (one thread each).
    const CONNECTIONS: usize = 2;
    /// One measurement round of one variant; rounds alternate between the variants.
    const ROUND: std::time::Duration = std::time::Duration::from_millis(500);
    const ROUNDS: usize = 20;
    const SERVER: &str = "w4-server";

    let url = bench.fresh_database("pgschemas_bench_w4");
    let app = web::setup(&url).expect("web example set-up");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(SERVER)
        .enable_all()
        .build()
        .expect("runtime");
    let bind = || {
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        (listener, addr)
    };
    let (listener, layered) = bind();
    let service = axum::ServiceExt::<Request>::into_make_service(web::service(&app));
    runtime.spawn(async move { axum::serve(listener, service).await });
    let (listener, bare) = bind();
    let service = axum::ServiceExt::<Request>::into_make_service(web::bare(&app));
    runtime.spawn(async move { axum::serve(listener, service).await });

    /// One round: requests done, wall seconds, server CPU seconds.
    fn load(addr: std::net::SocketAddr, host: &str, path: &str, expect: &str) -> (u64, f64, f64) {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes();
        let threads: Vec<_> = (0..CONNECTIONS)
            .map(|_| {
                let (stop, done, request) = (stop.clone(), done.clone(), request.clone());
                let expect = expect.to_owned();
                std::thread::spawn(move || {
                    let mut client = Client::connect(addr);
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let body = client.get(&request);
                        assert_eq!(body, expect.as_bytes(), "unexpected response body");
                        n += 1;
                    }
                    done.fetch_add(n, Ordering::Relaxed);
                })
            })
            .collect();
        let cpu = threads_cpu(SERVER);
        let started = Instant::now();
        std::thread::sleep(ROUND);
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().expect("client thread");
        }
        let seconds = started.elapsed().as_secs_f64();
        (
            done.load(Ordering::Relaxed),
            seconds,
            threads_cpu(SERVER) - cpu,
        )
    }

    type Variant = (
        &'static str,
        std::net::SocketAddr,
        &'static str,
        &'static str,
        &'static str,
    );
    let variants: [Variant; 3] = [
        (
            "W4-http-layer",
            layered,
            "tenant1.localhost",
            "/hello",
            "hello from tenant1\n",
        ),
        (
            "W4-http-layer-folder",
            layered,
            "tenants.localhost",
            "/tenant2/hello",
            "hello from tenant2\n",
        ),
        (
            "W4-http-bare",
            bare,
            "tenant1.localhost",
            "/hello",
            "hello from nobody\n",
        ),
    ];
    for (_, addr, host, path, body) in &variants {
        let _ = load(*addr, host, path, body);
    }
    // Alternate the order every round so drifts in the machine's load hit all alike.
    let mut results: Vec<Vec<(u64, f64, f64)>> = vec![Vec::new(); variants.len()];
    for round in 0..ROUNDS {
        for k in 0..variants.len() {
            let i = if round % 2 == 0 {
                k
            } else {
                variants.len() - 1 - k
            };
            let (_, addr, host, path, body) = &variants[i];
            results[i].push(load(*addr, host, path, body));
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let rate = |runs: &[(u64, f64, f64)]| median(runs.iter().map(|r| r.0 as f64 / r.1).collect());
    let cpu_per_request =
        |runs: &[(u64, f64, f64)]| median(runs.iter().map(|r| r.2 / r.0 as f64).collect());
    let bare_rate = rate(&results[2]);
    let bare_cpu = cpu_per_request(&results[2]);
    for (i, (name, ..)) in variants.iter().enumerate() {
        let n: u64 = results[i].iter().map(|r| r.0).sum();
        let seconds: f64 = results[i].iter().map(|r| r.1).sum();
        let cpu = cpu_per_request(&results[i]);
        report(
            name,
            n,
            seconds,
            "requests/s",
            &[
                ("median_rate", format!("{:.1}", rate(&results[i]))),
                (
                    "ratio_to_bare",
                    format!("{:.4}", rate(&results[i]) / bare_rate),
                ),
                ("server_cpu_us_per_request", format!("{:.3}", cpu * 1e6)),
                ("cpu_ratio_to_bare", format!("{:.4}", bare_cpu / cpu)),
                ("connections", CONNECTIONS.to_string()),
                ("server_threads", "1".to_owned()),
                ("rounds", ROUNDS.to_string()),
            ],
        );
    }
    layer_in_process(&app);
}

/// The layer alone, without sockets: the same handler called through the layer and
/// directly, on one thread (a no-op waker; the handler is ready at once).
#[cfg(feature = "axum")]
fn layer_in_process(app: &web::App) {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    use axum::body::Body;
    use axum::extract::Request;
    use tower::{Layer, Service};

    const CALLS: u64 = 400_000;

    fn call<S>(service: &mut S, host: &str, path: &str) -> u16
    where
        S: Service<Request, Response = axum::response::Response>,
        S::Error: std::fmt::Debug,
    {
        let req = Request::builder()
            .uri(path)
            .header("host", host)
            .body(Body::empty())
            .expect("request");
        let mut cx = Context::from_waker(Waker::noop());
        let mut future = std::pin::pin!(service.call(req));
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(response)) => response.status().as_u16(),
            other => panic!("the handler did not answer at once: {:?}", other.is_ready()),
        }
    }

    let router = || axum::Router::new().route("/hello", axum::routing::get(|| async { "hello" }));
    let mut layered =
        pgschemas_diesel::routing::layer::TenancyLayer::new(app.table.clone()).layer(router());
    let mut bare = router();
    /// One batch of `CALLS / ROUNDS` calls: wall and CPU seconds.
    fn batch(f: &mut dyn FnMut() -> u16) -> (f64, f64) {
        let cpu = thread_cpu();
        let started = Instant::now();
        for _ in 0..CALLS / ROUNDS as u64 {
            black_box(f());
        }
        (started.elapsed().as_secs_f64(), thread_cpu() - cpu)
    }
    const ROUNDS: usize = 10;
    let names = [
        "W4-layer-inproc-bare",
        "W4-layer-inproc-domain",
        "W4-layer-inproc-folder",
    ];
    let mut calls: [Box<dyn FnMut() -> u16>; 3] = [
        Box::new(move || call(&mut bare, "tenant1.localhost", "/hello")),
        Box::new({
            let mut layered = layered.clone();
            move || call(&mut layered, "tenant1.localhost", "/hello")
        }),
        Box::new(move || call(&mut layered, "tenants.localhost", "/tenant2/hello")),
    ];
    for (f, name) in calls.iter_mut().zip(names) {
        for _ in 0..10_000 {
            assert_eq!(f(), 200, "{name}");
        }
    }
    // Alternate the variants in small batches; keep each one's median batch.
    let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new(); calls.len()];
    for round in 0..ROUNDS {
        for k in 0..calls.len() {
            let i = if round % 2 == 0 {
                k
            } else {
                calls.len() - 1 - k
            };
            runs[i].push(batch(&mut *calls[i]));
        }
    }
    let per_call = CALLS as f64 / ROUNDS as f64;
    let median_cpu_ns = |v: &[(f64, f64)]| {
        let mut ns: Vec<f64> = v.iter().map(|r| r.1 * 1e9 / per_call).collect();
        ns.sort_by(f64::total_cmp);
        ns[ns.len() / 2]
    };
    let bare_ns = median_cpu_ns(&runs[0]);
    for (name, v) in names.iter().zip(&runs) {
        let seconds: f64 = v.iter().map(|r| r.0).sum();
        let ns = median_cpu_ns(v);
        report(
            name,
            CALLS,
            seconds,
            "calls/s",
            &[
                ("cpu_ns_per_call", format!("{ns:.1}")),
                ("layer_ns_per_call", format!("{:.1}", ns - bare_ns)),
            ],
        );
    }
}
