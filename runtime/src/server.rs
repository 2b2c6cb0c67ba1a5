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
//!   with `{retryAfterMs}`); JSON Schema validation of the raw payload
//!   (`INVALID_PAYLOAD` with `{path, reason}`); [`Dispatch::dispatch`], a
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
//! - Single-socket emits are synchronous; room / broadcast emits are async
//!   ([`Emitter::emit`] is async for all targets).
//! - The runtime's per-socket state lives in the socket's extensions, so it
//!   goes away exactly when socketioxide drops the socket (after
//!   [`Dispatch::on_disconnect`] returns).
//!
//! # Several nodes
//!
//! Only socketioxide's in-process `LocalAdapter` is used today. Multi-node
//! fan-out would plug in socketioxide's Redis adapter
//! (`socketioxide-redis`): build the `SocketIo` with
//! `.with_adapter::<RedisAdapter<_>>(…)` in [`Gateway::new`] and make the
//! gateway generic over the adapter; room and user emits already go through
//! the adapter's async broadcast. Metadata queries ([`Gateway::clients`],
//! [`Emitter::room_members`]) would stay node-local.

mod auth;
mod config;
mod context;
mod emitter;
mod gateway;
mod rate_limit;
mod spec;

pub use auth::{AuthConfig, AuthError, DEFAULT_USER_ID_CLAIM, sign_hs256, sign_hs256_claims};
pub use config::{
    CorsConfig, DEFAULT_BUFFER_SIZE, DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_WS_READ_BUFFER_SIZE,
    ServerConfig,
};
pub use context::{ClientMetadata, SocketContext};
pub use emitter::{AUTHENTICATED_ROOM, EmitError, EmitStats, Emitter, Target, user_room};
pub use gateway::Gateway;
pub use spec::{AuthMode, BoxFuture, Dispatch, EventSpec, NamespaceSpec, RateLimit};

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
    /// Binding or serving failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}
