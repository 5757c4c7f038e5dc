//! The listener thread: `LISTEN`s for route changes, reloads, reconnects with back-off.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use crate::error::{Error, Result};

use super::origin::{Origin, listen};
use super::state::Shared;

/// The listener thread; stops it when the last [`RouteTable`](crate::routing::RouteTable) clone goes.
pub(super) struct Listener {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    /// Starts the listener thread on `conn`, a connection that already listens.
    ///
    /// # Errors
    ///
    /// [`Error::Spawn`] when the thread cannot be spawned.
    pub(super) fn spawn(shared: &Arc<Shared>, conn: PgConnection) -> Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let shared = Arc::clone(shared);
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("pgschemas-routes".into())
                .spawn(move || run(&shared, &stop, conn))
                .map_err(|source| Error::Spawn {
                    thread: "route listener",
                    source,
                })?
        };
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

/// The listener thread: serve on a connection until it fails, reconnect, repeat.
fn run(shared: &Shared, stop: &AtomicBool, conn: PgConnection) {
    let Some(source) = &shared.source else {
        return;
    };
    let options = &source.options;
    let mut conn = Some(conn);
    let mut backoff = Duration::from_millis(50);
    while !stop.load(Ordering::SeqCst) {
        let c = match conn.take() {
            Some(c) => c,
            None => match reconnect(shared, source) {
                Ok(c) => {
                    backoff = Duration::from_millis(50);
                    c
                }
                Err(e) => {
                    shared.report(&e);
                    std::thread::park_timeout(backoff);
                    backoff = (backoff * 2).min(options.reconnect_max);
                    continue;
                }
            },
        };
        if let Err(e) = serve(shared, stop, source, c) {
            shared.update(|s| {
                s.connected = false;
                s.listener_pid = None;
            });
            shared.report(&e);
        }
    }
}

/// A new listening connection and a full reload on it (changes made while disconnected
/// were not notified).
fn reconnect(shared: &Shared, source: &Origin) -> Result<PgConnection> {
    let (mut conn, pid) = listen(source)?;
    shared.reload(&mut conn)?;
    let mut reconnects = 0;
    shared.update(|s| {
        s.connected = true;
        s.listener_pid = Some(pid);
        s.reconnects += 1;
        reconnects = s.reconnects;
    });
    crate::observe::listener_reconnected(reconnects);
    Ok(conn)
}

/// Waits for notifications on `conn` and reloads; returns when stopped (`Ok`) or when the
/// connection fails (`Err`).
fn serve(
    shared: &Shared,
    stop: &AtomicBool,
    source: &Origin,
    mut conn: PgConnection,
) -> Result<()> {
    let options = &source.options;
    let mut last_load = Instant::now();
    let mut last_traffic = Instant::now();
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let mut received = drain(&mut conn)?;
        if received > 0 {
            if !options.debounce.is_zero() {
                std::thread::sleep(options.debounce);
                received += drain(&mut conn)?;
            }
            shared.update(|s| s.notifications += received);
            shared.reload(&mut conn)?;
            last_load = Instant::now();
            last_traffic = last_load;
        } else if last_load.elapsed() >= options.full_reload {
            shared.reload(&mut conn)?;
            last_load = Instant::now();
            last_traffic = last_load;
        } else if last_traffic.elapsed() >= options.heartbeat {
            conn.batch_execute("SELECT 1")?;
            last_traffic = Instant::now();
        }
        std::thread::park_timeout(options.poll_interval);
    }
}

/// Reads the notifications that arrived (no round trip); fails when the connection is gone.
fn drain(conn: &mut PgConnection) -> Result<u64> {
    let mut n = 0;
    for notification in conn.notifications_iter() {
        notification?;
        n += 1;
    }
    Ok(n)
}
