//! Request routing: (host, path) or a header value -> the tenant whose schema serves it.
//!
//! Framework-free. [`Routes`] is an immutable, indexed snapshot of every route;
//! [`RouteTable`] holds the current snapshot, answers from memory and swaps in a new one when
//! PostgreSQL notifies a change ([`RouteTableStatus`] says how fresh it is; [`RouteOptions`]
//! and [`ErrorHook`] tune it). A lookup gives a [`Resolution`]: a [`Route`] (reached
//! [`Via`] a domain, folder or header), a [`Redirect`] or a [`Suspended`] tenant. The `axum`
//! feature adds a tower layer and extractors on top, in `layer`. See the guide's "Routing
//! and the axum layer" section.

mod listener;
mod live;
mod options;
mod origin;
mod route;
mod segment;
mod snapshot;
mod state;
mod table;

#[cfg(feature = "axum")]
pub mod layer;

#[cfg(test)]
mod tests;

pub use live::RouteTable;
pub use options::{ErrorHook, RouteOptions};
pub use route::{Redirect, Resolution, Route, Suspended, Via};
pub use snapshot::Routes;
pub use state::RouteTableStatus;

pub(crate) use crate::models::ROUTES_CHANNEL;
