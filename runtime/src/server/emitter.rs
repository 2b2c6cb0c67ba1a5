//! Server-to-client emits of one namespace, with every failure logged and counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use socketioxide::extract::SocketRef;
use socketioxide::operators::BroadcastOperators;
use socketioxide::socket::Sid;
use socketioxide::{BroadcastError, SendError, SocketIo};

use super::context::{ClientMetadata, ClientState};

/// Room every authenticated socket joins (for [`Target::Authenticated`]).
pub const AUTHENTICATED_ROOM: &str = "evcontract:authenticated";

/// Name of the room of one user: every socket authenticated as `user_id` joins it.
pub fn user_room(user_id: &str) -> String {
    format!("user:{user_id}")
}

/// Who receives an emit (always within the emitter's namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One socket, by id.
    Socket(String),
    /// Every socket in a room, optionally except one socket (typically the
    /// sender, for "not back to the sender").
    Room {
        /// Room name.
        room: String,
        /// Socket id to leave out.
        except: Option<String>,
    },
    /// Every socket of the namespace.
    All,
    /// Every authenticated socket of the namespace.
    Authenticated,
    /// Every socket of one user (room `user:{id}`).
    User(String),
}

impl Target {
    /// [`Target::Socket`].
    pub fn socket(id: impl Into<String>) -> Self {
        Self::Socket(id.into())
    }

    /// [`Target::Room`] without exception.
    pub fn room(room: impl Into<String>) -> Self {
        Self::Room {
            room: room.into(),
            except: None,
        }
    }

    /// [`Target::Room`] leaving out socket `except`.
    pub fn room_except(room: impl Into<String>, except: impl Into<String>) -> Self {
        Self::Room {
            room: room.into(),
            except: Some(except.into()),
        }
    }

    /// [`Target::User`].
    pub fn user(id: impl Into<String>) -> Self {
        Self::User(id.into())
    }
}

/// Why an emit failed. Every failure is also logged (`tracing`) and counted
/// in [`EmitStats`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmitError {
    /// The namespace is not registered on this gateway.
    #[error("namespace `{0}` is not registered")]
    UnknownNamespace(String),
    /// The target socket is not connected to the namespace.
    #[error("socket `{0}` is not connected")]
    SocketNotFound(String),
    /// The payload could not be serialized.
    #[error("cannot serialize payload: {0}")]
    Serialize(String),
    /// Some recipients could not be sent the packet (closed connection or full
    /// buffer, see `ServerConfig::buffer_size`).
    #[error("{failed} recipient(s) could not be sent the packet: {message}")]
    Send {
        /// Number of sockets that missed the packet.
        failed: usize,
        /// First underlying error.
        message: String,
    },
}

/// Emit counters of a gateway.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmitStats {
    /// Emits attempted (one per call, whatever the number of recipients),
    /// including the runtime's own acks and `error` events.
    pub emits: u64,
    /// Emits that returned an error.
    pub failed_emits: u64,
    /// Recipients that missed a packet (a broadcast may miss several).
    pub failed_deliveries: u64,
}

#[derive(Debug, Default)]
pub(crate) struct StatsInner {
    emits: AtomicU64,
    failed_emits: AtomicU64,
    failed_deliveries: AtomicU64,
}

impl StatsInner {
    pub(crate) fn snapshot(&self) -> EmitStats {
        EmitStats {
            emits: self.emits.load(Ordering::Relaxed),
            failed_emits: self.failed_emits.load(Ordering::Relaxed),
            failed_deliveries: self.failed_deliveries.load(Ordering::Relaxed),
        }
    }

    fn attempt(&self) {
        self.emits.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts and logs a failure; returns it for chaining.
    pub(crate) fn fail(&self, ns: &str, event: &str, err: EmitError) -> EmitError {
        let deliveries = match &err {
            EmitError::Send { failed, .. } => *failed as u64,
            EmitError::SocketNotFound(_) => 1,
            _ => 0,
        };
        self.failed_emits.fetch_add(1, Ordering::Relaxed);
        self.failed_deliveries
            .fetch_add(deliveries, Ordering::Relaxed);
        tracing::warn!(namespace = ns, event, error = %err, "emit failed");
        err
    }
}

fn from_send_error(err: SendError) -> EmitError {
    match err {
        SendError::Serialize(e) => EmitError::Serialize(e.to_string()),
        SendError::Socket(e) => EmitError::Send {
            failed: 1,
            message: e.to_string(),
        },
    }
}

fn from_broadcast_error(err: BroadcastError) -> EmitError {
    match err {
        BroadcastError::Serialize(e) => EmitError::Serialize(e.to_string()),
        BroadcastError::Socket(errs) => EmitError::Send {
            failed: errs.len(),
            message: errs.first().map(ToString::to_string).unwrap_or_default(),
        },
        BroadcastError::Adapter(e) => EmitError::Send {
            failed: 0,
            message: e.to_string(),
        },
    }
}

/// Emits to the clients of one namespace. Cheap to clone.
#[derive(Clone)]
pub struct Emitter {
    io: SocketIo,
    ns: Arc<str>,
    stats: Arc<StatsInner>,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("namespace", &self.ns)
            .finish_non_exhaustive()
    }
}

/// The socket `id` of the namespace behind `op`.
fn find_socket(op: &BroadcastOperators, id: &str) -> Option<SocketRef> {
    op.get_socket(id.parse::<Sid>().ok()?)
}

pub(crate) fn client_state(socket: &SocketRef) -> Option<Arc<ClientState>> {
    socket.extensions.get::<Arc<ClientState>>()
}

impl Emitter {
    pub(crate) fn new(io: SocketIo, ns: Arc<str>, stats: Arc<StatsInner>) -> Self {
        Self { io, ns, stats }
    }

    /// Namespace path.
    pub fn namespace(&self) -> &str {
        &self.ns
    }

    /// Sends `event` with `payload` to `target`.
    ///
    /// Room / user / broadcast emits are async in socketioxide 0.18 (the
    /// adapter may be remote); a single-socket emit completes immediately.
    /// A target with no member is a success. Errors are logged and counted.
    pub async fn emit<T: Serialize + ?Sized>(
        &self,
        target: Target,
        event: &str,
        payload: &T,
    ) -> Result<(), EmitError> {
        self.stats.attempt();
        let Some(op) = self.io.of(&*self.ns) else {
            return Err(self.fail(event, EmitError::UnknownNamespace(self.ns.to_string())));
        };
        let res = match target {
            Target::Socket(id) => {
                return match find_socket(&op, &id) {
                    Some(socket) => self.send_to(&socket, event, payload),
                    None => Err(self.fail(event, EmitError::SocketNotFound(id))),
                };
            }
            Target::Room { room, except } => {
                let sender = except.as_deref().and_then(|id| find_socket(&op, id));
                match sender {
                    // `socket.to(room)` broadcasts to the room without the socket itself.
                    Some(sender) => sender.to(room).emit(event, payload).await,
                    None => op.to(room).emit(event, payload).await,
                }
            }
            Target::All => op.emit(event, payload).await,
            Target::Authenticated => op.to(AUTHENTICATED_ROOM).emit(event, payload).await,
            Target::User(id) => op.to(user_room(&id)).emit(event, payload).await,
        };
        res.map_err(|e| self.fail(event, from_broadcast_error(e)))
    }

    /// Emits to one socket we already hold (sync in socketioxide).
    pub(crate) fn emit_socket_ref<T: Serialize + ?Sized>(
        &self,
        socket: &SocketRef,
        event: &str,
        payload: &T,
    ) -> Result<(), EmitError> {
        self.stats.attempt();
        self.send_to(socket, event, payload)
    }

    fn send_to<T: Serialize + ?Sized>(
        &self,
        socket: &SocketRef,
        event: &str,
        payload: &T,
    ) -> Result<(), EmitError> {
        socket
            .emit(event, payload)
            .map_err(|e| self.fail(event, from_send_error(e)))
    }

    /// Records and logs a failure of the runtime's own sends (acks).
    pub(crate) fn record_send_failure(&self, event: &str, err: SendError) {
        self.stats.attempt();
        self.fail(event, from_send_error(err));
    }

    pub(crate) fn record_send_success(&self) {
        self.stats.attempt();
    }

    fn fail(&self, event: &str, err: EmitError) -> EmitError {
        self.stats.fail(&self.ns, event, err)
    }

    /// Number of sockets connected to the namespace (sockets being
    /// disconnected are not counted).
    pub fn connected_count(&self) -> usize {
        self.io.of(&*self.ns).map_or(0, |op| {
            op.sockets().iter().filter(|s| s.connected()).count()
        })
    }

    /// Metadata of every connected socket of the namespace.
    pub fn clients(&self) -> Vec<ClientMetadata> {
        self.io
            .of(&*self.ns)
            .map(|op| Self::metadata_of(op.sockets()))
            .unwrap_or_default()
    }

    /// Metadata of the connected sockets in `room`.
    pub fn room_members(&self, room: &str) -> Vec<ClientMetadata> {
        self.io
            .of(&*self.ns)
            .map(|op| Self::metadata_of(op.within(room.to_owned()).sockets()))
            .unwrap_or_default()
    }

    /// Metadata of one socket, while it is connected (and during its
    /// `on_disconnect`).
    pub fn client_metadata(&self, socket_id: &str) -> Option<ClientMetadata> {
        let socket = find_socket(&self.io.of(&*self.ns)?, socket_id)?;
        client_state(&socket).map(|state| state.metadata(&socket))
    }

    fn metadata_of(sockets: Vec<SocketRef>) -> Vec<ClientMetadata> {
        sockets
            .into_iter()
            .filter(|s| s.connected())
            .filter_map(|s| client_state(&s).map(|state| state.metadata(&s)))
            .collect()
    }

    /// Emit counters of the whole gateway.
    pub fn stats(&self) -> EmitStats {
        self.stats.snapshot()
    }

    /// The socketioxide handle, for escape hatches.
    pub fn io(&self) -> &SocketIo {
        &self.io
    }
}
