//! How a route table keeps itself fresh: [`RouteOptions`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;

/// A callback that receives the listener's errors and the catalog rows left out of the
/// table (for logging).
pub type ErrorHook = Arc<dyn Fn(&Error) + Send + Sync>;

/// How a [`RouteTable`](crate::routing::RouteTable) keeps itself fresh.
///
/// ```
/// use std::time::Duration;
/// use pgschemas_diesel::routing::RouteOptions;
///
/// let options = RouteOptions::default()
///     .full_reload_every(Duration::from_secs(300))
///     .on_error(|e| eprintln!("routing: {}", e.report()));
/// ```
#[derive(Clone, Debug)]
#[must_use]
pub struct RouteOptions {
    pub(super) full_reload: Duration,
    pub(super) poll_interval: Duration,
    pub(super) debounce: Duration,
    pub(super) heartbeat: Duration,
    pub(super) reconnect_max: Duration,
    pub(super) check_triggers: bool,
    pub(super) on_error: OnError,
}

/// The [`RouteOptions::on_error`] callback, if any; `Debug` tells only whether one is set.
#[derive(Clone, Default)]
pub(super) struct OnError(Option<ErrorHook>);

impl OnError {
    /// The callback, when one is set.
    pub(super) fn hook(&self) -> Option<&ErrorHook> {
        self.0.as_ref()
    }
}

impl fmt::Debug for OnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0.is_some(), f)
    }
}

impl Default for RouteOptions {
    /// Full reload every 60 s; notifications polled every 25 ms and applied after a 5 ms
    /// debounce; a `SELECT 1` heartbeat after 10 s of silence; reconnect back-off up to 5 s;
    /// triggers checked at start.
    fn default() -> Self {
        Self {
            full_reload: Duration::from_secs(60),
            poll_interval: Duration::from_millis(25),
            debounce: Duration::from_millis(5),
            heartbeat: Duration::from_secs(10),
            reconnect_max: Duration::from_secs(5),
            check_triggers: true,
            on_error: OnError::default(),
        }
    }
}

/// Writes the builder methods of [`RouteOptions`], one a line after its docs:
/// `method(argument: Type) => field = stored value;`.
macro_rules! setters {
    ($($(#[$attr:meta])* $name:ident($arg:ident: $ty:ty) => $field:ident = $value:expr;)*) => {
        $(
            $(#[$attr])*
            pub fn $name(mut self, $arg: $ty) -> Self {
                self.$field = $value;
                self
            }
        )*
    };
}

impl RouteOptions {
    setters! {
        /// How often the whole table is reloaded whatever the notifications say: the safety net
        /// for a missed notification (default 60 s).
        ///
        /// ```
        /// let o = pgschemas_diesel::routing::RouteOptions::default().full_reload_every(std::time::Duration::from_secs(30));
        /// ```
        full_reload_every(every: Duration) => full_reload = every.max(Duration::from_millis(10));

        /// How often the listening connection is checked for notifications (default 25 ms).
        /// The check reads the socket without a round trip; with the debounce, it bounds how
        /// long a change takes to reach the table.
        ///
        /// ```
        /// let o = pgschemas_diesel::routing::RouteOptions::default().poll_interval(std::time::Duration::from_millis(10));
        /// ```
        poll_interval(every: Duration) => poll_interval = every.max(Duration::from_millis(1));

        /// How long to wait after a notification for more before reloading, so a burst of
        /// changes costs one reload (default 5 ms).
        ///
        /// ```
        /// let o = pgschemas_diesel::routing::RouteOptions::default().debounce(std::time::Duration::ZERO);
        /// ```
        debounce(wait: Duration) => debounce = wait;

        /// After how long without traffic the listening connection is checked with `SELECT 1`
        /// (default 10 s); a dead connection is then replaced.
        ///
        /// ```
        /// let o = pgschemas_diesel::routing::RouteOptions::default().heartbeat(std::time::Duration::from_secs(5));
        /// ```
        heartbeat(every: Duration) => heartbeat = every.max(Duration::from_millis(10));

        /// The longest wait between two reconnection attempts (default 5 s; the wait starts at
        /// 50 ms and doubles).
        ///
        /// ```
        /// let o = pgschemas_diesel::routing::RouteOptions::default().reconnect_max(std::time::Duration::from_secs(1));
        /// ```
        reconnect_max(max: Duration) => reconnect_max = max.max(Duration::from_millis(50));

        /// Whether [`RouteTable::start`](crate::routing::RouteTable::start) checks that every table of
        /// [`Catalog::watched_tables`](crate::catalog::Catalog::watched_tables) has an enabled trigger
        /// notifying the [`ROUTES_CHANNEL`](crate::models::ROUTES_CHANNEL) (default `true`). Without one,
        /// changes reach the table only at the next full reload.
        ///
        /// ```
        /// let o = pgschemas_diesel::routing::RouteOptions::default().check_triggers(false);
        /// ```
        check_triggers(check: bool) => check_triggers = check;
    }

    /// A callback for the listener's errors (a lost connection, a failed reload). The table
    /// keeps answering from its last snapshot meanwhile.
    ///
    /// It also receives [`Error::InvalidRow`] for each catalog row a snapshot leaves out (a tenant
    /// whose schema name is not valid, a domain that cannot be routed, ...; see
    /// [`Routes::invalid_rows`](crate::routing::Routes::invalid_rows)), once, when a snapshot first leaves
    /// it out: the other rows are served, and the table keeps following changes. Called from the
    /// thread that loaded the snapshot ([`RouteTable::start`](crate::routing::RouteTable::start) itself for
    /// the first), before the snapshot's version is published; so the callback must not call
    /// [`RouteTable::refresh`](crate::routing::RouteTable::refresh), which would wait for the load in
    /// progress.
    ///
    /// ```
    /// let o = pgschemas_diesel::routing::RouteOptions::default().on_error(|e| eprintln!("routing: {}", e.report()));
    /// ```
    pub fn on_error(mut self, hook: impl Fn(&Error) + Send + Sync + 'static) -> Self {
        self.on_error = OnError(Some(Arc::new(hook)));
        self
    }
}
