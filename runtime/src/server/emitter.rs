//! Server-to-client emits of one namespace, with every failure logged and counted.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::FutureExt;
use serde::Serialize;
use serde_json::value::RawValue;
use socketioxide::extract::SocketRef;
use socketioxide::operators::BroadcastOperators;
use socketioxide::socket::Sid;
use socketioxide::{BroadcastError, SendError, SocketIo};

use super::adapter::{GatewayAdapter, RawIo, RawSocket, socket_room, with_adapter};
use super::cluster::Cluster;
use super::history::{self, HistoryStore, RoomLog, delivery_room};
use super::log_throttle::LogThrottle;
use super::socket_state::{ClientMetadata, ClientState};

/// Room every authenticated socket joins (for [`Target::Authenticated`]).
pub const AUTHENTICATED_ROOM: &str = "evcontract:authenticated";

/// Name of the room of one user: every socket authenticated as `user_id` joins it.
pub fn user_room(user_id: &str) -> String {
    format!("{USER_ROOM_PREFIX}{user_id}")
}

/// What [`user_room`] puts before the user id.
const USER_ROOM_PREFIX: &str = "user:";

/// Who receives an emit (always within the emitter's namespace).
///
/// On several nodes (the Redis adapter) every target reaches the matching
/// sockets of every node; [`Target::local`] narrows any target to this
/// node's sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One socket, by id (on any node).
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
    /// The inner target's sockets on this node only (socket.io's `local`):
    /// for pushes that every node makes on its own, such as a periodic
    /// status, which would otherwise reach each client once per node.
    Local(Box<Target>),
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

    /// This target's sockets on this node only ([`Target::Local`]).
    #[must_use]
    pub fn local(self) -> Self {
        match self {
            local @ Self::Local(_) => local,
            other => Self::Local(Box::new(other)),
        }
    }

    /// The target without its [`Target::Local`] wrappers, and whether there was one.
    fn split_local(self) -> (Self, bool) {
        match self {
            Self::Local(inner) => (inner.split_local().0, true),
            other => (other, false),
        }
    }
}

/// Why an emit failed. Every failure is also counted in [`EmitStats`] and
/// logged (`tracing`, aggregated: one line per kind and interval).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmitError {
    /// The namespace is not registered on this gateway.
    #[error("namespace `{0}` is not registered")]
    UnknownNamespace(String),
    /// The target socket is not connected to the namespace (on this node;
    /// with the Redis adapter, a socket on another node is reached through
    /// Redis and never reported missing).
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
    /// The emit reached this node's sockets, but not the other nodes: the
    /// cluster adapter (Redis) could not be reached. Pub/sub keeps nothing,
    /// so the other nodes' sockets missed it for good.
    #[error("delivered on this node only: the other nodes could not be reached ({reason})")]
    NodeOnly {
        /// Why the other nodes were not reached.
        reason: String,
    },
    /// An emit to a room with history was not delivered: its history (in
    /// Redis, shared by the nodes) could not keep it, and an event is
    /// delivered only once it is kept. Nobody received it; the handler can
    /// tell its client to retry (`UNAVAILABLE`).
    #[error("not delivered: the room's history could not keep it ({reason})")]
    NotKept {
        /// Why the history could not keep it.
        reason: String,
    },
}

/// Why a cluster-wide query ([`Emitter::room_users`],
/// [`Emitter::room_sockets`], [`Emitter::cluster_connected_count`]) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// The namespace is not registered on this gateway.
    #[error("namespace `{0}` is not registered")]
    UnknownNamespace(String),
    /// The other nodes could not be asked (Redis unreachable, or the request
    /// failed); nothing partial is returned.
    #[error("cluster request failed: {0}")]
    Unavailable(String),
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
    /// Broadcasts that reached this node's sockets only because the cluster
    /// adapter was unreachable (also counted in `failed_emits`).
    pub node_only_emits: u64,
    /// Acks that could not be queued at once (the socket's buffer was full)
    /// and were retried.
    pub acks_retried: u64,
    /// Broadcasts queued because Redis did not take their publish within
    /// `RedisConfig::stall_timeout` (delivered late, in order; those whose
    /// publish then failed count in `node_only_emits` too).
    pub deferred_emits: u64,
}

#[derive(Debug, Default)]
pub(crate) struct StatsInner {
    emits: AtomicU64,
    failed_emits: AtomicU64,
    failed_deliveries: AtomicU64,
    node_only_emits: AtomicU64,
    acks_retried: AtomicU64,
    deferred: AtomicU64,
    /// Failed emits are logged once per interval, with their count.
    failure_log: LogThrottle,
    /// Likewise for broadcasts that stayed on this node.
    node_only_log: LogThrottle,
}

impl StatsInner {
    pub(crate) fn snapshot(&self) -> EmitStats {
        EmitStats {
            emits: self.emits.load(Ordering::Relaxed),
            failed_emits: self.failed_emits.load(Ordering::Relaxed),
            failed_deliveries: self.failed_deliveries.load(Ordering::Relaxed),
            node_only_emits: self.node_only_emits.load(Ordering::Relaxed),
            acks_retried: self.acks_retried.load(Ordering::Relaxed),
            deferred_emits: self.deferred.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn ack_retried(&self) {
        self.acks_retried.fetch_add(1, Ordering::Relaxed);
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
        let throttle = if matches!(err, EmitError::NodeOnly { .. }) {
            self.node_only_emits.fetch_add(1, Ordering::Relaxed);
            &self.node_only_log
        } else {
            &self.failure_log
        };
        match throttle.hit() {
            Some(count) => tracing::warn!(
                namespace = ns,
                event,
                error = %err,
                count,
                "emit failed ({count} like it since the last line)"
            ),
            None => tracing::debug!(namespace = ns, event, error = %err, "emit failed"),
        }
        err
    }
}

/// Sends with `send` again every millisecond while the socket's queue on
/// the server is full and `connected` holds, for at most `patience`; the
/// last outcome. For the runtime's own answers that a client waits for
/// (acks, recovery positions), which are retried rather than dropped.
pub(crate) async fn resend_while_full(
    patience: std::time::Duration,
    connected: impl Fn() -> bool,
    mut send: impl FnMut() -> Result<(), SendError>,
) -> Result<(), SendError> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        match send() {
            Err(SendError::Socket(socketioxide::SocketError::InternalChannelFull))
                if connected() && tokio::time::Instant::now() < deadline => {}
            other => return other,
        }
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
        BroadcastError::Adapter(e) => EmitError::NodeOnly {
            reason: e.to_string(),
        },
    }
}

/// A payload as JSON text the emit owns, keeping what socketioxide reads
/// from its type: a tuple is several arguments (the extra last argument
/// of an event with an offset), anything else is one.
enum OwnedArgs {
    One(Box<RawValue>),
    Several(Vec<Box<RawValue>>),
}

impl OwnedArgs {
    fn of<T: Serialize + ?Sized>(payload: &T) -> serde_json::Result<Self> {
        let raw = serde_json::value::to_raw_value(payload)?;
        if socketioxide_core::parser::is_ser_tuple(payload) {
            return serde_json::from_str(raw.get()).map(Self::Several);
        }
        Ok(Self::One(raw))
    }
}

impl Serialize for OwnedArgs {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        match self {
            Self::One(raw) => raw.serialize(serializer),
            Self::Several(args) => {
                let mut tuple = serializer.serialize_tuple(args.len())?;
                for arg in args {
                    tuple.serialize_element(arg)?;
                }
                tuple.end()
            }
        }
    }
}

/// One socket in a room, from a cluster-wide listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSocket {
    /// Socket id.
    pub socket_id: String,
    /// Whether the socket is connected to this node (its metadata can then
    /// be read with [`Emitter::client_metadata`]; the metadata of sockets on
    /// other nodes stays on their node).
    pub on_this_node: bool,
}

/// Emits to the clients of one namespace, and answers who is connected.
/// Cheap to clone.
///
/// What is local and what is cluster-wide: emits reach every node;
/// [`connected_count`](Self::connected_count), [`clients`](Self::clients),
/// [`room_members`](Self::room_members) and
/// [`client_metadata`](Self::client_metadata) read this node's sockets
/// (metadata never leaves the node that holds the socket);
/// [`room_users`](Self::room_users), [`room_sockets`](Self::room_sockets) and
/// [`cluster_connected_count`](Self::cluster_connected_count) ask every
/// node (one request through Redis, answered by each node, at most the
/// adapter's request timeout). On one node both kinds give the same answer.
#[derive(Clone)]
pub struct Emitter {
    io: RawIo,
    ns: Arc<str>,
    stats: Arc<StatsInner>,
    cluster: Cluster,
    /// The namespace's room history, when a room has one.
    history: Option<Arc<HistoryStore>>,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("namespace", &self.ns)
            .finish_non_exhaustive()
    }
}

/// The socket `id` of the namespace behind `op`, on this node.
fn find_socket<A: GatewayAdapter>(op: &BroadcastOperators<A>, id: &str) -> Option<SocketRef<A>> {
    op.get_socket(id.parse::<Sid>().ok()?)
}

pub(crate) fn client_state<A: GatewayAdapter>(socket: &SocketRef<A>) -> Option<Arc<ClientState>> {
    socket.extensions.get::<Arc<ClientState>>()
}

impl Emitter {
    pub(crate) fn new(
        io: RawIo,
        ns: Arc<str>,
        stats: Arc<StatsInner>,
        cluster: Cluster,
        history: Option<Arc<HistoryStore>>,
    ) -> Self {
        Self {
            io,
            ns,
            stats,
            cluster,
            history,
        }
    }

    /// Namespace path.
    pub fn namespace(&self) -> &str {
        &self.ns
    }

    /// Sends `event` with `payload` to `target`.
    ///
    /// Room / user / broadcast emits are async in socketioxide 0.18 (the
    /// adapter may be remote); a single-socket emit to a socket of this node
    /// completes immediately. A target with no member is a success. Errors
    /// are counted and logged.
    ///
    /// With the Redis adapter, a broadcast is published to the other nodes
    /// and delivered to this node's sockets; while Redis is unreachable it
    /// is delivered to this node's sockets at once and returns
    /// [`EmitError::NodeOnly`] (what the other nodes missed is lost). When
    /// Redis is connected but does not take the publish within
    /// `RedisConfig::stall_timeout`, the emit returns `Ok` and is queued:
    /// delivered everywhere, in order, once Redis answers (counted in
    /// [`EmitStats::deferred_emits`]).
    pub async fn emit<T: Serialize + ?Sized>(
        &self,
        target: Target,
        event: &str,
        payload: &T,
    ) -> Result<(), EmitError> {
        self.stats.attempt();
        with_adapter!(RawIo, &self.io, io => self.emit_on(io, target, event, payload).await)
    }

    async fn emit_on<A: GatewayAdapter, T: Serialize + ?Sized>(
        &self,
        io: &SocketIo<A>,
        target: Target,
        event: &str,
        payload: &T,
    ) -> Result<(), EmitError> {
        let Some(op) = io.of(&*self.ns) else {
            return Err(self.fail(event, EmitError::UnknownNamespace(self.ns.to_string())));
        };
        let (target, local) = target.split_local();
        if let Target::Socket(id) = &target {
            if let Some(socket) = find_socket(&op, id) {
                return self.send_to(&socket, event, payload);
            }
            if local || !self.cluster.is_remote() {
                return Err(self.fail(event, EmitError::SocketNotFound(id.clone())));
            }
        }
        if let (Target::Room { room, except: None }, Some(history)) = (&target, &self.history)
            && !self.cluster.is_remote()
            && let Some(log) = history.log(room)
        {
            return self.emit_kept(&op, room.as_str(), &log, event, payload);
        }
        #[cfg(feature = "redis")]
        if let (Target::Room { room, except: None }, Some(history), false) =
            (&target, &self.history, local)
            && let Some((shared, spec)) = history.shared(room)
        {
            return self
                .emit_shared(&op, shared, spec, room, event, payload)
                .await;
        }
        self.broadcast(&op, &target, local, event, payload).await
    }

    /// An emit to a whole room with history on the Redis adapter: kept in
    /// the shared history first (numbered by Redis), then broadcast to the
    /// room's two delivery rooms, with and without the offset. Not kept,
    /// not delivered ([`EmitError::NotKept`]).
    #[cfg(feature = "redis")]
    async fn emit_shared<A: GatewayAdapter, T: Serialize + ?Sized>(
        &self,
        op: &BroadcastOperators<A>,
        shared: &history::SharedHistory,
        spec: super::spec::HistorySpec,
        room: &str,
        event: &str,
        payload: &T,
    ) -> Result<(), EmitError> {
        let raw = serde_json::value::to_raw_value(payload)
            .map_err(|e| self.fail(event, EmitError::Serialize(e.to_string())))?;
        if !self.cluster.available() {
            let reason = format!("{} is unreachable", self.cluster.describe());
            return Err(self.fail(event, EmitError::NotKept { reason }));
        }
        let offset = shared
            .push(
                room,
                spec,
                event,
                &raw,
                super::idempotency::KeyedRun::push_token(room),
            )
            .await
            .map_err(|reason| self.fail(event, EmitError::NotKept { reason }))?;
        let with_offset = (&*raw, &offset);
        let to_offsets = Target::room(delivery_room(room, true));
        let to_plain = Target::room(delivery_room(room, false));
        let first = self
            .broadcast(op, &to_offsets, false, event, &with_offset)
            .await;
        let second = self.broadcast(op, &to_plain, false, event, &*raw).await;
        first.and(second)
    }

    /// A broadcast to `target` through the adapter (this node's sockets
    /// only when `local`), handling an unreachable or stalled Redis.
    async fn broadcast<A: GatewayAdapter, T: Serialize + ?Sized>(
        &self,
        op: &BroadcastOperators<A>,
        target: &Target,
        local: bool,
        event: &str,
        payload: &T,
    ) -> Result<(), EmitError> {
        // While Redis is known to be down, do not wait for a publish that
        // cannot succeed: this node's sockets get the packet now.
        let degraded = !local && !self.cluster.available();
        if !local
            && !degraded
            && let Some(stall) = self.cluster.stall_timeout()
        {
            return self.emit_cluster(op, target, event, payload, stall).await;
        }
        let res = self
            .operator(op, target, local || degraded)
            .emit(event, payload)
            .await;
        match res {
            Ok(()) if degraded => {
                Err(self.node_only(event, format!("{} is unreachable", self.cluster.describe())))
            }
            Ok(()) => Ok(()),
            Err(err) => Err(self.fail(event, from_broadcast_error(err))),
        }
    }

    /// A broadcast through the cluster adapter that keeps the handler
    /// waiting at most `stall`: past it (or at once while earlier emits
    /// wait) the emit is queued behind the others and delivered, in order,
    /// when Redis takes it (see `RedisConfig::stall_timeout`).
    async fn emit_cluster<A: GatewayAdapter, T: Serialize + ?Sized>(
        &self,
        op: &BroadcastOperators<A>,
        target: &Target,
        event: &str,
        payload: &T,
        stall: std::time::Duration,
    ) -> Result<(), EmitError> {
        // The attempt may outlive this call (finished in the queue), so it
        // owns the event name and the payload's JSON text.
        let raw = OwnedArgs::of(payload)
            .map_err(|e| self.fail(event, EmitError::Serialize(e.to_string())))?;
        let (everywhere, here) = (
            self.operator(op, target, false),
            self.operator(op, target, true),
        );
        let name = event.to_owned();
        let mut attempt = Box::pin(async move {
            match everywhere.emit(&name, &raw).await {
                Ok(()) => (name, Ok(())),
                // The publish failed before anything was delivered here.
                Err(BroadcastError::Adapter(err)) => match here.emit(&name, &raw).await {
                    Ok(()) => (name, Err(Err(err.to_string()))),
                    Err(e) => (name, Err(Ok(from_broadcast_error(e)))),
                },
                Err(err) => (name, Err(Ok(from_broadcast_error(err)))),
            }
        });
        if !self.cluster.stalled()
            && let Ok((_, outcome)) = tokio::time::timeout(stall, &mut attempt).await
        {
            return self.settle(event, outcome);
        }
        // When Redis is known lost while the emit waits (fred keeps the
        // command while it reconnects), this node's sockets get it at once.
        let raw = OwnedArgs::of(payload)
            .map_err(|e| self.fail(event, EmitError::Serialize(e.to_string())))?;
        let (here, name) = (self.operator(op, target, true), event.to_owned());
        let down = self.cluster.down_signal();
        let this = self.clone();
        let job = Box::pin(async move {
            tokio::select! {
                (name, outcome) = attempt => {
                    let _ = this.settle(&name, outcome);
                }
                () = down => {
                    if let Err(e) = here.emit(&name, &raw).await {
                        this.fail(&name, from_broadcast_error(e));
                    }
                    this.node_only(&name, "Redis was lost while the emit waited for it".to_owned());
                }
            }
        });
        match self.cluster.defer(job) {
            Ok(()) => {
                self.stats.deferred.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(_full) => {
                self.operator(op, target, true)
                    .emit(event, payload)
                    .await
                    .map_err(|e| self.fail(event, from_broadcast_error(e)))?;
                Err(self.node_only(
                    event,
                    "too many emits are waiting for Redis (RedisConfig::stall_queue)".to_owned(),
                ))
            }
        }
    }

    /// Counts the outcome of a cluster broadcast: `Err(Err(reason))` when it
    /// reached this node only, `Err(Ok(error))` when it failed.
    fn settle(
        &self,
        event: &str,
        outcome: Result<(), Result<EmitError, String>>,
    ) -> Result<(), EmitError> {
        match outcome {
            Ok(()) => Ok(()),
            Err(Err(reason)) => Err(self.node_only(event, reason)),
            Err(Ok(err)) => Err(self.fail(event, err)),
        }
    }

    /// An emit to a whole room with history (one node): numbered, kept, and
    /// handed to the members' queues under the room's lock, so that a
    /// returning socket's replay (taken under the same lock) and this event
    /// never overlap. Members that asked for offsets get it as the extra
    /// last argument.
    fn emit_kept<A: GatewayAdapter, T: Serialize + ?Sized>(
        &self,
        op: &BroadcastOperators<A>,
        room: &str,
        log: &std::sync::Mutex<RoomLog>,
        event: &str,
        payload: &T,
    ) -> Result<(), EmitError> {
        let raw = serde_json::value::to_raw_value(payload)
            .map_err(|e| self.fail(event, EmitError::Serialize(e.to_string())))?;
        let mut log = history::lock(log);
        let offset = log.push(room, event, raw.clone());
        // The local adapter delivers synchronously: its futures are ready
        // at the first poll, which happens here, under the lock.
        let with_offset = (&*raw, &offset);
        let sent = [
            op.clone()
                .to(delivery_room(room, false))
                .emit(event, &*raw)
                .now_or_never(),
            op.clone()
                .to(delivery_room(room, true))
                .emit(event, &with_offset)
                .now_or_never(),
        ];
        drop(log);
        for res in sent {
            match res {
                Some(Ok(())) => {}
                Some(Err(err)) => return Err(self.fail(event, from_broadcast_error(err))),
                None => {
                    return Err(self.fail(
                        event,
                        EmitError::Send {
                            failed: 0,
                            message: "the adapter did not deliver at once".to_owned(),
                        },
                    ));
                }
            }
        }
        Ok(())
    }

    /// Counts and logs a broadcast that reached this node's sockets only.
    fn node_only(&self, event: &str, reason: String) -> EmitError {
        self.cluster.record_node_only();
        self.fail(event, EmitError::NodeOnly { reason })
    }

    /// The broadcast operator for `target` (never [`Target::Local`]).
    fn operator<A: GatewayAdapter>(
        &self,
        op: &BroadcastOperators<A>,
        target: &Target,
        local: bool,
    ) -> BroadcastOperators<A> {
        let op = op.clone();
        let op = match target {
            // Only sockets of other nodes get here (see `emit_on`).
            Target::Socket(id) => op.to(socket_room(id)),
            Target::Room { room, except } => match except {
                None => op.to(room.clone()),
                Some(id) => match find_socket(&op, id) {
                    // `socket.to(room)` broadcasts to the room without the socket itself.
                    Some(sender) => sender.to(room.clone()),
                    None if self.cluster.is_remote() => op.to(room.clone()).except(socket_room(id)),
                    None => op.to(room.clone()),
                },
            },
            Target::All | Target::Local(_) => op,
            Target::Authenticated => op.to(AUTHENTICATED_ROOM),
            Target::User(id) => op.to(user_room(id)),
        };
        if local { op.local() } else { op }
    }

    /// Emits to one socket we already hold (sync in socketioxide).
    pub(crate) fn emit_socket_ref<T: Serialize + ?Sized>(
        &self,
        socket: &RawSocket,
        event: &str,
        payload: &T,
    ) -> Result<(), EmitError> {
        self.stats.attempt();
        with_adapter!(RawSocket, socket, socket => self.send_to(socket, event, payload))
    }

    fn send_to<A: GatewayAdapter, T: Serialize + ?Sized>(
        &self,
        socket: &SocketRef<A>,
        event: &str,
        payload: &T,
    ) -> Result<(), EmitError> {
        socket
            .emit(event, payload)
            .map_err(|e| self.fail(event, from_send_error(e)))
    }

    /// Records and logs a failure of the runtime's own sends (acks).
    pub(crate) fn record_send_failure(&self, event: &str, err: SendError) -> EmitError {
        self.stats.attempt();
        self.fail(event, from_send_error(err))
    }

    pub(crate) fn record_ack_retry(&self) {
        self.stats.ack_retried();
    }

    pub(crate) fn record_send_success(&self) {
        self.stats.attempt();
    }

    fn fail(&self, event: &str, err: EmitError) -> EmitError {
        self.stats.fail(&self.ns, event, err)
    }

    /// Number of sockets connected to the namespace on this node (sockets
    /// being disconnected are not counted). For the whole cluster, see
    /// [`cluster_connected_count`](Self::cluster_connected_count).
    pub fn connected_count(&self) -> usize {
        with_adapter!(RawIo, &self.io, io => io.of(&*self.ns).map_or(0, |op| {
            op.sockets().iter().filter(|s| s.connected()).count()
        }))
    }

    /// Metadata of every connected socket of the namespace on this node.
    pub fn clients(&self) -> Vec<ClientMetadata> {
        with_adapter!(RawIo, &self.io, io => io
            .of(&*self.ns)
            .map(|op| metadata_of(op.sockets()))
            .unwrap_or_default())
    }

    /// Metadata of the connected sockets in `room` on this node. For the
    /// whole cluster, see [`room_users`](Self::room_users) and
    /// [`room_sockets`](Self::room_sockets).
    pub fn room_members(&self, room: &str) -> Vec<ClientMetadata> {
        with_adapter!(RawIo, &self.io, io => io
            .of(&*self.ns)
            .map(|op| metadata_of(op.within(room.to_owned()).sockets()))
            .unwrap_or_default())
    }

    /// Metadata of one socket of this node, while it is connected (and
    /// during its `on_disconnect`).
    pub fn client_metadata(&self, socket_id: &str) -> Option<ClientMetadata> {
        with_adapter!(RawIo, &self.io, io => {
            let socket = find_socket(&io.of(&*self.ns)?, socket_id)?;
            client_state(&socket).map(|state| state.metadata(&socket))
        })
    }

    /// The distinct user ids of the authenticated sockets in `room`, on every
    /// node, sorted. One request to every node (see [`Emitter`]).
    pub async fn room_users(&self, room: &str) -> Result<Vec<String>, ClusterError> {
        let rooms = with_adapter!(RawIo, &self.io, io => {
            let op = self.cluster_op(io)?;
            op.within(room.to_owned()).rooms().await.map_err(|e| self.cluster_failed(e))?
        });
        // The rooms of the room's sockets: each authenticated one is in its
        // user's room, so those name the users.
        let users: BTreeSet<String> = rooms
            .iter()
            .filter_map(|r| r.strip_prefix(USER_ROOM_PREFIX))
            .map(str::to_owned)
            .collect();
        Ok(users.into_iter().collect())
    }

    /// The sockets in `room`, on every node. One request to every node (see
    /// [`Emitter`]).
    pub async fn room_sockets(&self, room: &str) -> Result<Vec<RoomSocket>, ClusterError> {
        with_adapter!(RawIo, &self.io, io => {
            let op = self.cluster_op(io)?;
            let here = io.config().server_id;
            let sockets = op
                .within(room.to_owned())
                .fetch_sockets()
                .await
                .map_err(|e| self.cluster_failed(e))?;
            Ok(sockets
                .into_iter()
                .map(|s| RoomSocket {
                    socket_id: s.data().id.to_string(),
                    on_this_node: s.data().server_id == here,
                })
                .collect())
        })
    }

    /// Number of sockets connected to the namespace on every node. One
    /// request to every node, each answering with its socket list: meant for
    /// periodic reports, not for every event.
    pub async fn cluster_connected_count(&self) -> Result<usize, ClusterError> {
        if !self.cluster.is_remote() {
            return Ok(self.connected_count());
        }
        with_adapter!(RawIo, &self.io, io => {
            let op = self.cluster_op(io)?;
            let sockets = op.fetch_sockets().await.map_err(|e| self.cluster_failed(e))?;
            Ok(sockets.len())
        })
    }

    /// The namespace's operator for a cluster-wide query, or why it cannot
    /// be made now.
    fn cluster_op<A: GatewayAdapter>(
        &self,
        io: &SocketIo<A>,
    ) -> Result<BroadcastOperators<A>, ClusterError> {
        let op = io
            .of(&*self.ns)
            .ok_or_else(|| ClusterError::UnknownNamespace(self.ns.to_string()))?;
        if !self.cluster.available() {
            self.cluster.record_refused_request();
            return Err(ClusterError::Unavailable(format!(
                "{} is unreachable",
                self.cluster.describe()
            )));
        }
        if self.cluster.stalled() {
            // Emits are queued behind a publish Redis has not taken: a
            // request would wait as long.
            self.cluster.record_refused_request();
            return Err(ClusterError::Unavailable(format!(
                "{} does not answer in time",
                self.cluster.describe()
            )));
        }
        Ok(op)
    }

    fn cluster_failed(&self, err: impl std::fmt::Display) -> ClusterError {
        self.cluster.record_refused_request();
        ClusterError::Unavailable(err.to_string())
    }

    /// Emit counters of the whole gateway.
    pub fn stats(&self) -> EmitStats {
        self.stats.snapshot()
    }

    /// The socketioxide server, for escape hatches.
    pub fn io(&self) -> &RawIo {
        &self.io
    }
}

fn metadata_of<A: GatewayAdapter>(sockets: Vec<SocketRef<A>>) -> Vec<ClientMetadata> {
    sockets
        .into_iter()
        .filter(|s| s.connected())
        .filter_map(|s| client_state(&s).map(|state| state.metadata(&s)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_wraps_once_and_unwraps() {
        let t = Target::room("r").local().local();
        assert_eq!(t, Target::Local(Box::new(Target::room("r"))));
        assert_eq!(t.split_local(), (Target::room("r"), true));
        assert_eq!(Target::All.split_local(), (Target::All, false));
    }
}
