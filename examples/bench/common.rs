//! What every workload shares: the server, a fresh database per workload, the output format.

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};

/// The server the benchmark runs against.
pub struct Bench {
    /// The admin URL (`DATABASE_URL`).
    pub server_url: String,
}

impl Bench {
    pub fn new() -> Self {
        Self {
            server_url: std::env::var("DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned()),
        }
    }

    /// Creates (or recreates) the database `name` and returns its URL.
    pub fn fresh_database(&self, name: &str) -> String {
        let mut admin = PgConnection::establish(&self.server_url)
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.server_url));
        admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE); CREATE DATABASE {name}"
            ))
            .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        with_database(&self.server_url, name)
    }
}

/// `url` with its database (path) replaced by `db`, query parameters kept.
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_end = base
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| base[start..].find('/').map(|j| start + j))
        .unwrap_or(base.len());
    let mut out = format!("{}/{db}", &base[..authority_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Prints one result line.
pub fn report(workload: &str, n: u64, seconds: f64, unit: &str, extra: &[(&str, String)]) {
    let rate = if seconds > 0.0 {
        n as f64 / seconds
    } else {
        0.0
    };
    let mut line = format!(
        "{{\"workload\": \"{workload}\", \"n\": {n}, \"seconds\": {seconds:.4}, \"rate\": {rate:.1}, \"unit\": \"{unit}\""
    );
    for (k, v) in extra {
        line.push_str(&format!(", \"{k}\": {v}"));
    }
    line.push('}');
    println!("{line}");
}
