//! Socket.IO server runtime on socketioxide (feature `server`).
//!
//! Generated code describes each contract namespace with a static
//! [`NamespaceSpec`] and implements [`Dispatch`] (decode the payload, call the
//! user's handler); this module owns everything else:
//!
//! - **Connection**: the handshake token (`auth: {token}` or an
//!   `Authorization: Bearer` header) is verified with [`AuthConfig`]; a bad
//!   token is refused on every namespace (`connect_error` message
//!   `INVALID_TOKEN`), no token is an anonymous connection, refused by
//!   [`AuthMode::Required`] namespaces (`AUTH_REQUIRED`). Authenticated
//!   sockets join `user:{userId}` ([`user_room`]) and [`AUTHENTICATED_ROOM`].
//! - **Per event**, in order: `last_activity` update; `UNKNOWN_EVENT` for
//!   events not in the contract; `AUTH_REQUIRED` for [`AuthMode::Required`]
//!   events on anonymous sockets; the contract [`RateLimit`] (`RATE_LIMITED`
//!   with `{retryAfterMs}`); JSON Schema validation of the payload's text
//!   ([`validator`]: no value tree for a valid payload; `INVALID_PAYLOAD`
//!   with `{path, reason}`); [`Dispatch::dispatch`], a
//!   panic becoming `INTERNAL`; then the ack envelope (acked event whose
//!   client sent an ack callback) or, on failure, the `error` event. The
//!   connection stays up in every case.
//! - **Emits** go through [`Emitter`]: every failure is logged with `tracing`
//!   and counted ([`EmitStats`]).
//!
//! # socketioxide behaviour to know
//!
//! - Each incoming event is handled in its own task: events of one socket may
//!   be dispatched concurrently and complete out of order.
//! - The client sent an ack callback iff the packet carried an ack id
//!   (`42/ns,<id>[…]`); the runtime reads it itself. Events the contract
//!   declares without ack never answer through an ack, even if the client
//!   sent an ack id (their failures go to the `error` event); unknown events
//!   are answered through the ack when there is one.
//! - The payload is the first argument after the event name; a missing one is
//!   `null`, further arguments are ignored.
//! - Every event goes through one socketioxide fallback handler installed by
//!   the runtime. A handler added with `ctx.socket().on(…)` (escape hatch)
//!   takes precedence for its event and bypasses auth, rate limits and
//!   validation; do not replace the fallback handler.
//! - Single-socket emits to a socket of this node are synchronous; room /
//!   broadcast emits are async ([`Emitter::emit`] is async for all targets).
//! - The runtime's per-socket state lives in the socket's extensions, so it
//!   goes away exactly when socketioxide drops the socket (after
//!   [`Dispatch::on_disconnect`] returns).
//!
//! # Several nodes
//!
//! With feature `redis` and [`ServerConfig::redis`], [`Gateway::build`]
//! connects to Redis (or Valkey) 7+ and runs on socketioxide's Redis adapter
//! (`socketioxide-redis`, fred driver): several gateway nodes behind a load
//! balancer share rooms and broadcasts. Generated glue, generated emitters
//! and user handlers are the same code on one node and on many.
//!
//! - Every [`Target`] reaches the matching sockets of every node (each
//!   socket joins its own room so that other nodes can address it by id);
//!   [`Target::local`] narrows a target to this node's sockets, for pushes
//!   that every node makes on its own (periodic status).
//! - Cluster-wide queries are async and fallible ([`ClusterError`]):
//!   [`Emitter::room_users`], [`Emitter::room_sockets`],
//!   [`Emitter::cluster_connected_count`], [`Gateway::cluster_total_connected`];
//!   each is one request answered by every node, bounded by the adapter's
//!   request timeout. [`Emitter::connected_count`], [`Emitter::clients`],
//!   [`Emitter::room_members`] and [`Emitter::client_metadata`] stay local:
//!   client metadata never leaves the node that holds the socket.
//! - [`SocketContext::join`] and [`SocketContext::leave`] act on the socket's
//!   own node and are immediate.
//! - Rate limits are kept and enforced on the node that holds the socket.
//! - Redis lost while running: no socket is disconnected, broadcasts are
//!   delivered to this node's sockets at once and return
//!   [`EmitError::NodeOnly`], cluster-wide queries fail fast, and one warning
//!   is logged per outage (and one line when Redis is back). The adapter's
//!   channels are subscribed again on reconnection, so cross-node delivery
//!   resumes by itself. Pub/sub is at most once: what was published across
//!   nodes during the outage is lost.
//! - Redis unreachable at start: [`Gateway::build`] fails with
//!   [`ServerError::Cluster`] naming the URL (without its password).
//! - socketioxide has no connection-state recovery; the runtime's own
//!   (rooms with history, see `history` and the README's "Delivery
//!   guarantees") keeps each room's history in the memory of the node that
//!   sent its events: a client that comes back to another node is re-joined
//!   and told `recovered: false` for those rooms.
//! - HTTP long-polling needs sticky sessions at the load balancer (every
//!   request of one engine.io session must reach the same node); clients
//!   that cannot have them connect with WebSocket only.

mod adapter;
mod auth;
mod cluster;
mod config;
mod context;
mod dispatch;
mod emitter;
mod formats;
mod gateway;
mod handshake;
mod history;
#[cfg(feature = "redis")]
mod history_redis;
mod http;
mod idempotency;
mod incoming;
mod log_throttle;
mod metrics;
mod namespace;
mod proxy;
mod rate_limit;
#[cfg(feature = "redis")]
mod redis;
mod room_caps;
mod socket_state;
mod spec;
#[cfg(feature = "tls")]
mod tls;
mod user_sockets;
pub mod validator;

pub use adapter::{RawIo, RawSocket};
pub use auth::{
    AuthConfig, AuthError, DEFAULT_MAX_USER_ID_BYTES, DEFAULT_USER_ID_CLAIM, sign_hs256,
    sign_hs256_claims,
};
pub use config::{
    ContractMismatch, CorsConfig, DEFAULT_BUFFER_SIZE, DEFAULT_MAX_PAYLOAD_BYTES,
    DEFAULT_MAX_ROOMS_PER_SOCKET, DEFAULT_WS_READ_BUFFER_SIZE, ServerConfig,
};
pub use context::SocketContext;
pub use dispatch::Dispatch;
pub use emitter::{
    AUTHENTICATED_ROOM, ClusterError, EmitError, EmitStats, Emitter, RoomSocket, Target, user_room,
};
pub use gateway::{Gateway, RawLayer};
pub use handshake::{MAX_CONTRACT_FIELD_BYTES, MAX_RESUME_ROOMS};
pub use http::{
    DEFAULT_BODY_READ_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_IP, DEFAULT_SLOW_CONSUMER_TIMEOUT, HttpStats,
};
pub use idempotency::{
    DEFAULT_IDEMPOTENCY_KEYS_PER_USER, DEFAULT_IDEMPOTENCY_LEASE, DEFAULT_IDEMPOTENCY_WINDOW,
    MAX_IDEMPOTENCY_KEY_BYTES,
};
pub use namespace::DEFAULT_FILL_PER_MINUTE;
pub use proxy::TrustedProxies;
#[cfg(feature = "redis")]
pub use redis::{
    DEFAULT_REDIS_BUFFER, DEFAULT_REDIS_PREFIX, DEFAULT_REDIS_REQUEST_TIMEOUT,
    DEFAULT_REDIS_STALL_QUEUE, DEFAULT_REDIS_STALL_TIMEOUT, RedisConfig,
};
pub use socket_state::ClientMetadata;
pub use spec::{
    AuthMode, BoxFuture, ContractId, EventSpec, HistorySpec, NamespaceSpec, RateLimit, RateScope,
    RoomSpec,
};
#[cfg(feature = "tls")]
pub use tls::TlsConfig;
pub use user_sockets::DEFAULT_MAX_SOCKETS_PER_USER;

/// socketioxide, re-exported for escape hatches.
pub use socketioxide;

/// axum, re-exported to mount the gateway in your own router.
pub use axum;

/// Why the gateway could not be built, a namespace registered or the server run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Invalid configuration (for example CORS `*` with credentials).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Invalid auth key, or a token could not be signed.
    #[error("auth: {0}")]
    Auth(String),
    /// An event schema is not valid JSON / JSON Schema.
    #[error("schema of event `{event}` in namespace `{namespace}`: {message}")]
    Schema {
        /// Namespace path.
        namespace: String,
        /// Event name.
        event: String,
        /// What is wrong.
        message: String,
    },
    /// Invalid or duplicate namespace / event.
    #[error("namespace: {0}")]
    Namespace(String),
    /// The cluster adapter could not be set up: Redis unreachable or
    /// refusing (the message names the URL, without its password, and the
    /// reason).
    #[error("cluster: {0}")]
    Cluster(String),
    /// Binding or serving failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}
