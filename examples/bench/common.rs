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

/// The positive number in the environment variable `name`, or `default`.
pub fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
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

/// CPU time used by this process's threads named `name`, in seconds.
#[cfg(feature = "axum")]
pub fn threads_cpu(name: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map(|ns| ns as f64 / 1e9)
        .sum()
}

/// A minimal HTTP/1.1 keep-alive client: one request at a time, `Content-Length` bodies,
/// anything but a `200` a panic.
#[cfg(feature = "axum")]
pub struct Client {
    reader: std::io::BufReader<std::net::TcpStream>,
    writer: std::net::TcpStream,
    body: Vec<u8>,
}

#[cfg(feature = "axum")]
impl Client {
    /// Opens a keep-alive connection to `addr`.
    pub fn connect(addr: std::net::SocketAddr) -> Self {
        let stream = std::net::TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Self {
            reader: std::io::BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
            body: Vec::new(),
        }
    }

    /// Sends `request` (a whole HTTP/1.1 request) and returns the body of the answer.
    pub fn get(&mut self, request: &[u8]) -> &[u8] {
        use std::io::{BufRead, Read, Write};
        self.writer.write_all(request).expect("send");
        let mut line = String::new();
        let mut length = None;
        let mut first = true;
        loop {
            line.clear();
            let read = self.reader.read_line(&mut line).expect("read");
            assert!(read > 0, "the server closed the connection");
            if first {
                assert!(line.starts_with("HTTP/1.1 200"), "{line}");
                first = false;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = Some(value.trim().parse().expect("content-length"));
            }
        }
        self.body
            .resize(length.expect("an answer without Content-Length"), 0);
        self.reader.read_exact(&mut self.body).expect("body");
        &self.body
    }
}
