//! HTTP (features `axum` and `async`): requests per second of the web examples' tenant page,
//! the sync handlers against the async ones, in one run.
//!
//! - `HTTP-sync`: `examples/web.rs`'s `GET /`: `TenantDb`, Diesel on tokio's blocking pool
//!   over the sync `TenantPool`.
//! - `HTTP-async`: `examples/web_async.rs`'s `GET /`: `TenantConn`, diesel-async over
//!   `AsyncTenantPool`, session form.
//! - `HTTP-async-tx`: `examples/web_async.rs`'s `GET /tx`: `TenantTx`, transaction form.
//!
//! The examples' own set-up and routers (with the tenancy layer) are served in-process on
//! `127.0.0.1:0` by one tokio multi-thread runtime (a worker per core), each app with a pool
//! of [`POOL`] connections. [`CLIENTS`] client threads per app, one keep-alive connection
//! each, send [`N`] requests per app spread over four tenants (`www` and `blog` by domain,
//! `tenant1` by subdomain, `tenant2` by folder); every answer must be a `200` whose body
//! names the tenant asked for and lists that tenant's own notes, anything else panics. The
//! apps take turns in [`ROUNDS`] rounds, the order reversed every other round, so that a
//! change in the machine's load hits all of them alike.
//!
//! The machine has 2 cores, shared by the server's threads, the client threads and
//! PostgreSQL: a rate is the whole loop's on this machine, not the server's alone; read the
//! ratios. `server_cpu_us_per_request` is the CPU time of the server's threads (the
//! runtime's workers and its blocking pool) per request, PostgreSQL's backends not counted.

use std::net::SocketAddr;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use axum::extract::Request;
use pgschemas_diesel::{AsyncTenantPool, TenantPool};

use crate::common::{Bench, Client, report, threads_cpu};
use crate::{web, web_async};

/// Requests per app.
const N: u64 = 20_000;
/// Rounds the requests are split into; each round runs every app once.
const ROUNDS: u64 = 10;
/// Concurrent clients per app, one keep-alive connection each.
const CLIENTS: u64 = 16;
/// Connections in each app's pool (deadpool's default on 2 cores).
const POOL: u32 = 8;
/// The server runtime's thread name, for its CPU time.
const SERVER: &str = "http-server";

/// The tenants the requests go to: (host, path prefix, schema).
const TARGETS: [(&str, &str, &str); 4] = [
    ("localhost", "", "www"),
    ("blog.localhost", "", "blog"),
    ("tenant1.localhost", "", "tenant1"),
    ("tenants.localhost", "/tenant2", "tenant2"),
];

/// One app under load: its name, address, page, and its clients' connections.
struct App {
    name: &'static str,
    addr: SocketAddr,
    /// The request for each of [`TARGETS`], and the start and end its answer must have.
    requests: Vec<(Vec<u8>, String, String)>,
    clients: Vec<Client>,
}

/// What one app measured over the rounds.
#[derive(Default)]
struct Measured {
    seconds: f64,
    server_cpu: f64,
    /// Every request's latency, in microseconds.
    latencies: Vec<f64>,
}

impl App {
    fn new(name: &'static str, addr: SocketAddr, page: &str) -> Self {
        let requests = TARGETS
            .iter()
            .map(|(host, prefix, schema)| {
                let request = format!("GET {prefix}{page} HTTP/1.1\r\nHost: {host}\r\n\r\n");
                (
                    request.into_bytes(),
                    format!("schema: {schema}\n"),
                    format!("notes:\n- welcome to {schema}\n- second note of {schema}\n"),
                )
            })
            .collect();
        let clients = (0..CLIENTS).map(|_| Client::connect(addr)).collect();
        Self {
            name,
            addr,
            requests,
            clients,
        }
    }

    /// Sends `n` requests, spread over the clients and the tenants; returns the wall and
    /// server CPU seconds and each request's latency in microseconds.
    fn round(&mut self, n: u64) -> (f64, f64, Vec<f64>) {
        let per_client = n / CLIENTS;
        let start = Barrier::new(self.clients.len() + 1);
        let (name, addr, requests) = (self.name, self.addr, &self.requests);
        std::thread::scope(|s| {
            let threads: Vec<_> = self
                .clients
                .iter_mut()
                .enumerate()
                .map(|(c, client)| {
                    let start = &start;
                    s.spawn(move || {
                        let mut latencies = Vec::with_capacity(per_client as usize);
                        start.wait();
                        for j in 0..per_client as usize {
                            let (request, head, tail) = &requests[(c + j) % requests.len()];
                            let sent = Instant::now();
                            let body = client.get(request);
                            latencies.push(sent.elapsed().as_secs_f64() * 1e6);
                            assert!(
                                body.starts_with(head.as_bytes()) && body.ends_with(tail.as_bytes()),
                                "{name} at {addr}: {:?} answered {:?}, expected {head:?} … {tail:?}",
                                String::from_utf8_lossy(request),
                                String::from_utf8_lossy(body),
                            );
                        }
                        latencies
                    })
                })
                .collect();
            let cpu = threads_cpu(SERVER);
            start.wait();
            let started = Instant::now();
            let latencies: Vec<f64> = threads
                .into_iter()
                .flat_map(|t| t.join().expect("client thread"))
                .collect();
            let seconds = started.elapsed().as_secs_f64();
            (seconds, threads_cpu(SERVER) - cpu, latencies)
        })
    }
}

/// Serves `service` on a free loopback port of `runtime`.
fn serve<S>(runtime: &tokio::runtime::Runtime, service: S) -> SocketAddr
where
    S: tower::Service<
            Request,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let service = axum::ServiceExt::<Request>::into_make_service(service);
    runtime.spawn(async move { axum::serve(listener, service).await });
    addr
}

/// Runs the three apps' pages, interleaved in rounds, and reports each.
pub fn all(bench: &Bench) {
    let url = bench.fresh_database("pgschemas_bench_http");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name(SERVER)
        // Blocking threads stay for the whole run, so that their CPU time stays counted.
        .thread_keep_alive(Duration::from_secs(3600))
        .enable_all()
        .build()
        .expect("runtime");
    let (config, table) = web::prepare(&url).expect("web example set-up");
    let sync = web::App {
        config: config.clone(),
        table: table.clone(),
        pool: TenantPool::with_builder(
            url.clone(),
            config.clone(),
            r2d2::Pool::builder().max_size(POOL),
        )
        .expect("sync pool"),
    };
    let deadpool = AsyncTenantPool::builder(url)
        .max_size(POOL as usize)
        .build()
        .expect("async pool");
    let async_app = web_async::AsyncApp {
        pool: AsyncTenantPool::from_deadpool(deadpool, config.clone()),
        config,
        table,
    };
    let sync_addr = serve(&runtime, web::service(&sync));
    let async_addr = serve(&runtime, web_async::service(&async_app));
    let mut apps = [
        App::new("HTTP-sync", sync_addr, "/"),
        App::new("HTTP-async", async_addr, "/"),
        App::new("HTTP-async-tx", async_addr, "/tx"),
    ];
    // Warm up: every pool connection made, every tenant's statements prepared.
    for app in &mut apps {
        app.round(N / ROUNDS);
    }
    let mut measured: Vec<Measured> = apps.iter().map(|_| Measured::default()).collect();
    for round in 0..ROUNDS {
        for k in 0..apps.len() {
            let i = if round % 2 == 0 {
                k
            } else {
                apps.len() - 1 - k
            };
            let (seconds, cpu, latencies) = apps[i].round(N / ROUNDS);
            measured[i].seconds += seconds;
            measured[i].server_cpu += cpu;
            measured[i].latencies.extend(latencies);
        }
    }
    let n = N / ROUNDS / CLIENTS * CLIENTS * ROUNDS;
    let sync_rate = n as f64 / measured[0].seconds;
    for (app, m) in apps.iter().zip(&mut measured) {
        m.latencies.sort_by(f64::total_cmp);
        let percentile = |p: usize| m.latencies[m.latencies.len() * p / 100] / 1e3;
        report(
            app.name,
            n,
            m.seconds,
            "requests/s",
            &[
                (
                    "ratio_to_sync",
                    format!("{:.3}", n as f64 / m.seconds / sync_rate),
                ),
                ("p50_ms", format!("{:.3}", percentile(50))),
                ("p99_ms", format!("{:.3}", percentile(99))),
                (
                    "server_cpu_us_per_request",
                    format!("{:.1}", m.server_cpu * 1e6 / n as f64),
                ),
                ("clients", CLIENTS.to_string()),
                ("pool", POOL.to_string()),
                ("rounds", ROUNDS.to_string()),
                ("tenants", TARGETS.len().to_string()),
            ],
        );
    }
}
