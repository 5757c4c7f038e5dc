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
            server_url: pgschemas_diesel::testing::server_url(),
        }
    }

    /// Creates (or recreates) the database `name` and returns its URL.
    pub fn fresh_database(&self, name: &str) -> String {
        let mut admin = PgConnection::establish(&self.server_url)
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.server_url));
        for sql in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            admin
                .batch_execute(&sql)
                .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        }
        pgschemas_diesel::testing::url_with_database(&self.server_url, name)
    }
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
