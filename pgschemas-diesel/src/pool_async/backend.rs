//! The pools an [`AsyncTenantPool`](super::AsyncTenantPool) can sit on (deadpool; bb8 with
//! the feature `bb8`), behind one interface: take a connection, give it back, or take it out
//! of the pool for good. Everything else, the checkout and its rules, is the same for both.

use deadpool::managed::Object;

use super::manager::{AsyncManager, AsyncPooledConnection};
use crate::error::Result;

/// A pool of [`AsyncManager`] connections.
#[derive(Clone)]
pub(super) enum Backend {
    Deadpool(deadpool::managed::Pool<AsyncManager>),
    #[cfg(feature = "bb8")]
    Bb8 {
        pool: bb8::Pool<AsyncManager>,
        max_size: usize,
    },
}

/// A connection taken from a [`Backend`].
pub(super) enum Held {
    Deadpool(Object<AsyncManager>),
    #[cfg(feature = "bb8")]
    Bb8(bb8::PooledConnection<'static, AsyncManager>),
}

/// The state of an async pool's connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AsyncPoolStatus {
    /// The most connections the pool makes.
    pub max_size: usize,
    /// The connections it holds now, in use or idle.
    pub size: usize,
    /// The idle ones.
    pub idle: usize,
}

impl Backend {
    /// A connection, waiting for one as the pool's settings say.
    pub(super) async fn get(&self) -> Result<Held> {
        match self {
            Self::Deadpool(pool) => Ok(Held::Deadpool(pool.get().await?)),
            #[cfg(feature = "bb8")]
            Self::Bb8 { pool, .. } => Ok(Held::Bb8(pool.get_owned().await?)),
        }
    }

    pub(super) fn status(&self) -> AsyncPoolStatus {
        match self {
            Self::Deadpool(pool) => {
                let status = pool.status();
                AsyncPoolStatus {
                    max_size: status.max_size,
                    size: status.size,
                    idle: status.available,
                }
            }
            #[cfg(feature = "bb8")]
            Self::Bb8 { pool, max_size } => {
                let state = pool.state();
                AsyncPoolStatus {
                    max_size: *max_size,
                    size: state.connections as usize,
                    idle: state.idle_connections as usize,
                }
            }
        }
    }
}

impl Held {
    pub(super) fn pooled(&self) -> &AsyncPooledConnection {
        match self {
            Self::Deadpool(object) => object,
            #[cfg(feature = "bb8")]
            Self::Bb8(conn) => conn,
        }
    }

    pub(super) fn pooled_mut(&mut self) -> &mut AsyncPooledConnection {
        match self {
            Self::Deadpool(object) => object,
            #[cfg(feature = "bb8")]
            Self::Bb8(conn) => conn,
        }
    }

    /// Takes the connection out of its pool for good and closes it (deadpool's
    /// `Object::take`; for bb8, the connection reports itself broken when bb8 takes it back).
    pub(super) fn discard(self) {
        match self {
            Self::Deadpool(object) => drop(Object::take(object)),
            #[cfg(feature = "bb8")]
            Self::Bb8(mut conn) => {
                conn.discard = true;
                drop(conn);
            }
        }
    }
}
