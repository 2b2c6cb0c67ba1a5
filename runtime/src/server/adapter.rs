//! Which socketioxide adapter a gateway runs on: the in-process
//! `LocalAdapter` (one node), or socketioxide's Redis adapter
//! (`socketioxide-redis` on the fred driver, feature `redis`) shared by
//! several nodes.
//!
//! socketioxide types its server, sockets and operators by adapter
//! (`SocketIo<A>`, `SocketRef<A>`). The runtime keeps one public API for
//! both: [`RawIo`] and [`RawSocket`] hold either kind, and the code that
//! touches socketioxide is written once, generic over the adapter, and
//! entered through [`with_adapter!`].

use std::fmt;

use socketioxide::SocketIo;
use socketioxide::adapter::{Adapter, LocalAdapter};
use socketioxide::extract::SocketRef;

/// The Redis adapter on the fred driver, as the gateway uses it.
#[cfg(feature = "redis")]
pub(crate) type RedisAdapter = socketioxide_redis::FredAdapter<socketioxide::adapter::Emitter>;

/// An emit queued until Redis takes its publish (`Cluster::defer`): the
/// publish, then the delivery on this node.
pub(crate) type DeferredEmit = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Runs `$body` with `$bind` bound to the socketioxide value inside a
/// [`RawIo`] or [`RawSocket`], whichever adapter it is on.
macro_rules! with_adapter {
    ($kind:ident, $value:expr, $bind:ident => $body:expr) => {
        match $value {
            $crate::server::$kind::Local($bind) => $body,
            #[cfg(feature = "redis")]
            $crate::server::$kind::Redis($bind) => $body,
        }
    };
}
pub(crate) use with_adapter;

/// The socketioxide server behind a gateway, on the adapter it was built
/// with (escape hatch: most code never needs it).
#[derive(Clone)]
#[non_exhaustive]
pub enum RawIo {
    /// One node, rooms in memory.
    Local(SocketIo<LocalAdapter>),
    /// Several nodes sharing rooms and broadcasts through Redis.
    #[cfg(feature = "redis")]
    Redis(SocketIo<RedisAdapter>),
}

impl fmt::Debug for RawIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        with_adapter!(RawIo, self, io => io.fmt(f))
    }
}

/// One socketioxide socket, on the adapter of its gateway (escape hatch).
#[derive(Clone)]
#[non_exhaustive]
pub enum RawSocket {
    /// A socket of a one-node gateway.
    Local(SocketRef<LocalAdapter>),
    /// A socket of a gateway on the Redis adapter.
    #[cfg(feature = "redis")]
    Redis(SocketRef<RedisAdapter>),
}

impl fmt::Debug for RawSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        with_adapter!(RawSocket, self, socket => socket.fmt(f))
    }
}

/// An adapter the gateway can run on.
pub(crate) trait GatewayAdapter: Adapter {
    /// Wraps a socket of this adapter for the adapter-independent API.
    fn raw_socket(socket: SocketRef<Self>) -> RawSocket;
}

impl GatewayAdapter for LocalAdapter {
    fn raw_socket(socket: SocketRef<Self>) -> RawSocket {
        RawSocket::Local(socket)
    }
}

#[cfg(feature = "redis")]
impl GatewayAdapter for RedisAdapter {
    fn raw_socket(socket: SocketRef<Self>) -> RawSocket {
        RawSocket::Redis(socket)
    }
}

/// Name of the room of one socket. On the Redis adapter every socket joins
/// it (as in socket.io), so that a socket on another node can be addressed
/// by id; a one-node gateway finds its sockets directly and does not.
pub(crate) fn socket_room(socket_id: &str) -> String {
    format!("evcontract:socket:{socket_id}")
}
