//! What a route table and its listener share: the current snapshot, the listener's
//! status, and the lock that orders loads.

use std::collections::HashSet;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use diesel::PgConnection;

use crate::catalog::InvalidRow;
use crate::error::{Error, Result};

use super::options::ErrorHook;
use super::origin::{Origin, connect, read_routes};
use super::snapshot::Routes;

/// What a [`RouteTable`](crate::routing::RouteTable)'s listener is doing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RouteTableStatus {
    /// The version of the current snapshot ([`Routes::version`]).
    pub version: u64,
    /// Whether the listener holds a working connection.
    pub connected: bool,
    /// The listening connection's backend process id, while connected.
    pub listener_pid: Option<i32>,
    /// How many snapshots were loaded from the database.
    pub reloads: u64,
    /// How many times the listener replaced its connection after losing it.
    pub reconnects: u64,
    /// How many notifications the listener received.
    pub notifications: u64,
    /// The listener's last error with its causes (as [`Error::report`](crate::Error::report)
    /// shows it), if any since it last loaded successfully.
    pub last_error: Option<String>,
}

/// The state a [`RouteTable`](crate::routing::RouteTable)'s clones and its listener thread share.
pub(super) struct Shared {
    pub(super) current: ArcSwap<Routes>,
    status: Mutex<RouteTableStatus>,
    changed: Condvar,
    /// Held while a snapshot is read from the database and stored, so that stores happen in
    /// the order of the reads; holds the connection [`refresh`](Self::refresh) reuses.
    load: Mutex<Option<PgConnection>>,
    /// Where snapshots come from; `None` for a fixed table.
    pub(super) source: Option<Origin>,
}

impl Shared {
    /// Serves `routes` with `status`; reloads from `source`, if any.
    pub(super) fn new(routes: Routes, status: RouteTableStatus, source: Option<Origin>) -> Self {
        Self {
            current: ArcSwap::from_pointee(routes),
            status: Mutex::new(status),
            changed: Condvar::new(),
            load: Mutex::new(None),
            source,
        }
    }

    pub(super) fn status(&self) -> MutexGuard<'_, RouteTableStatus> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the status and wakes whoever waits for a change.
    pub(super) fn update(&self, f: impl FnOnce(&mut RouteTableStatus)) {
        f(&mut self.status());
        self.changed.notify_all();
    }

    /// Publishes a freshly loaded snapshot; returns its version. The rows it leaves out that
    /// the current snapshot did not are reported first.
    pub(super) fn store(&self, mut routes: Routes) -> u64 {
        {
            let current = self.current.load();
            let known: HashSet<&InvalidRow> = current.invalid_rows().iter().collect();
            let hook = self.hook();
            for row in routes.invalid_rows() {
                if !known.contains(row) {
                    crate::observe::bad_row(row);
                    if let Some(hook) = hook {
                        hook(&Error::InvalidRow(row.clone()));
                    }
                }
            }
        }
        let mut status = self.status();
        status.version += 1;
        status.reloads += 1;
        status.last_error = None;
        routes.version = status.version;
        crate::observe::route_table_loaded(
            status.version,
            routes.route_count(),
            routes.invalid_rows().len(),
        );
        self.current.store(Arc::new(routes));
        let version = status.version;
        drop(status);
        self.changed.notify_all();
        version
    }

    /// Tells the error callback and the status about `error`.
    pub(super) fn report(&self, error: &Error) {
        crate::observe::listener_failed(error);
        // The hook first: whoever sees the status change sees the hook's effects.
        if let Some(hook) = self.hook() {
            hook(error);
        }
        self.update(|s| s.last_error = Some(error.report().to_string()));
    }

    fn hook(&self) -> Option<&ErrorHook> {
        self.source.as_ref().and_then(|s| s.options.on_error.hook())
    }

    /// Reads a snapshot on `conn` and publishes it.
    pub(super) fn reload(&self, conn: &mut PgConnection) -> Result<u64> {
        let Some(source) = &self.source else {
            return Ok(self.status().version);
        };
        let _order = self.load.lock().unwrap_or_else(PoisonError::into_inner);
        let routes = read_routes(conn, source)?;
        Ok(self.store(routes))
    }

    /// Reads a snapshot on the connection kept for this (made when there is none) and
    /// publishes it.
    pub(super) fn refresh(&self) -> Result<u64> {
        let Some(source) = &self.source else {
            return Ok(self.status().version);
        };
        let mut slot = self.load.lock().unwrap_or_else(PoisonError::into_inner);
        let mut conn = match slot.take() {
            Some(c) => c,
            None => connect(source)?,
        };
        let routes = read_routes(&mut conn, source)?;
        *slot = Some(conn);
        Ok(self.store(routes))
    }

    /// Waits until `condition` holds for the status (checked at every change); `false` when
    /// `timeout` passed first.
    pub(super) fn wait_until(
        &self,
        timeout: Duration,
        mut condition: impl FnMut(&RouteTableStatus) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        let mut status = self.status();
        loop {
            if condition(&status) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            status = self
                .changed
                .wait_timeout(status, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}
