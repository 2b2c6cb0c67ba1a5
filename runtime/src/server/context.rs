//! Per-connection state: [`ClientMetadata`] and the [`SocketContext`] handed to handlers.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use socketioxide::extract::SocketRef;

use super::adapter::{GatewayAdapter, RawSocket, with_adapter};
use super::emitter::{EmitError, Emitter, resend_while_full};
use super::handshake::ResumeAt;
use super::history::{self, HistoryStore, delivery_room};
use super::rate_limit::ClientLimits;
use super::room_caps::RoomCaps;
use super::user_sockets::UserSlot;
use crate::wire::{EventError, RECOVERY_EVENT};

/// A snapshot of what the runtime knows about one connection (one socket in
/// one namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMetadata {
    /// Socket id (per namespace connection).
    pub socket_id: String,
    /// Namespace path.
    pub namespace: String,
    /// When the socket joined the namespace.
    pub connected_at: SystemTime,
    /// When the last client event arrived (or `connected_at`).
    pub last_activity: SystemTime,
    /// The verified user id, if authenticated.
    pub user_id: Option<String>,
    /// Whether a token was verified for this connection.
    pub authenticated: bool,
    /// Rooms the socket is in (including the runtime's own rooms).
    pub rooms: Vec<String>,
    /// Address of the client, when the server was started with connect
    /// info (the serve helpers do): the TCP peer, or behind a trusted proxy
    /// (`ServerConfig::trusted_proxies`) the client its forwarded headers
    /// name, with port 0.
    pub remote_addr: Option<SocketAddr>,
    /// `User-Agent` of the handshake request.
    pub user_agent: Option<String>,
    /// The contract version the client named in its handshake (generated
    /// clients do; a plain `socket.io-client` does not).
    pub contract_version: Option<String>,
}

/// The runtime's state of one socket, stored in the socket's extensions (so
/// it lives exactly as long as socketioxide keeps the socket).
#[derive(Debug)]
pub(crate) struct ClientState {
    pub(crate) namespace: &'static str,
    /// Shared with the contract rate limits counted per user (no copy per
    /// event).
    pub(crate) user_id: Option<Arc<str>>,
    pub(crate) connected_at: SystemTime,
    last_activity_ms: AtomicU64,
    pub(crate) remote_addr: Option<SocketAddr>,
    pub(crate) user_agent: Option<String>,
    pub(crate) limits: ClientLimits,
    /// The rooms this socket is in, as the runtime and [`SocketContext`]
    /// joined them: membership tests are one hash lookup, with no copy of
    /// socketioxide's room set.
    rooms: Mutex<HashSet<String>>,
    /// How many of `rooms` the runtime joined itself (not counted against
    /// `max_rooms`).
    runtime_rooms: usize,
    /// Most rooms a handler may join for this socket.
    max_rooms: usize,
    /// The contract version the client named in its handshake (bounded
    /// and well-formed: see `handshake::client_contract`).
    pub(crate) contract_version: Option<String>,
    /// Whether `contract_version` may be a metric label (a version the
    /// namespace's contract accepts).
    pub(crate) version_is_label: bool,
    /// This socket's place in its user's socket cap, given back on drop.
    _user_slot: Option<UserSlot>,
    /// The namespace's room member caps, when a room has one.
    room_caps: Option<Arc<RoomCaps>>,
    /// The namespace's room history, when a room has one.
    pub(crate) history: Option<Arc<HistoryStore>>,
    /// Whether the client asked for offsets (`auth.recovery`), and the
    /// rooms it asked to resume (taken once, when it has connected).
    pub(crate) offsets: bool,
    pub(crate) resume: Mutex<Vec<ResumeAt>>,
}

impl Drop for ClientState {
    /// socketioxide drops the state with the socket, which leaves every
    /// room: its places in the capped rooms are given back.
    fn drop(&mut self) {
        if let Some(caps) = &self.room_caps {
            for room in self.rooms().iter() {
                caps.leave(room);
            }
        }
    }
}

/// What the handshake settled for a new socket ([`ClientState::new`]).
pub(crate) struct NewClient {
    pub(crate) user_id: Option<Arc<str>>,
    pub(crate) user_slot: Option<UserSlot>,
    pub(crate) remote_addr: Option<SocketAddr>,
    pub(crate) user_agent: Option<String>,
    pub(crate) runtime_rooms: Vec<String>,
    pub(crate) max_rooms: usize,
    pub(crate) contract_version: Option<String>,
    pub(crate) version_is_label: bool,
    pub(crate) room_caps: Option<Arc<RoomCaps>>,
    pub(crate) history: Option<Arc<HistoryStore>>,
    /// `Some` when the client asked for offsets: the rooms to resume.
    pub(crate) recovery: Option<Vec<ResumeAt>>,
}

/// The rooms `socket` is in, as owned names.
fn owned_rooms<A: GatewayAdapter>(socket: &SocketRef<A>) -> Vec<String> {
    socket.rooms().into_iter().map(|r| r.into_owned()).collect()
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl ClientState {
    pub(crate) fn new(namespace: &'static str, new: NewClient) -> Self {
        let now = SystemTime::now();
        let runtime_count = new.runtime_rooms.len();
        Self {
            namespace,
            user_id: new.user_id,
            connected_at: now,
            last_activity_ms: AtomicU64::new(unix_ms(now)),
            remote_addr: new.remote_addr,
            user_agent: new.user_agent,
            limits: ClientLimits::default(),
            rooms: Mutex::new(new.runtime_rooms.into_iter().collect()),
            runtime_rooms: runtime_count,
            max_rooms: new.max_rooms,
            contract_version: new.contract_version,
            version_is_label: new.version_is_label,
            _user_slot: new.user_slot,
            room_caps: new.room_caps,
            history: new.history,
            offsets: new.recovery.is_some(),
            resume: Mutex::new(new.recovery.unwrap_or_default()),
        }
    }

    /// The contract version as its metric label: `None` (no version),
    /// `Some(version)` for a version the contract accepts, `Some("other")`
    /// for one let in despite a mismatch, so that only accepted versions
    /// become labels.
    pub(crate) fn labelled_version(&self) -> Option<&str> {
        match (&self.contract_version, self.version_is_label) {
            (None, _) => None,
            (Some(v), true) => Some(v),
            (Some(_), false) => Some("other"),
        }
    }

    fn rooms(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn touch(&self) {
        self.last_activity_ms
            .store(unix_ms(SystemTime::now()), Ordering::Relaxed);
    }

    pub(crate) fn last_activity(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.last_activity_ms.load(Ordering::Relaxed))
    }

    pub(crate) fn metadata<A: GatewayAdapter>(&self, socket: &SocketRef<A>) -> ClientMetadata {
        ClientMetadata {
            socket_id: socket.id.to_string(),
            namespace: self.namespace.to_owned(),
            connected_at: self.connected_at,
            last_activity: self.last_activity(),
            user_id: self.user_id.as_deref().map(str::to_owned),
            authenticated: self.user_id.is_some(),
            rooms: owned_rooms(socket),
            remote_addr: self.remote_addr,
            user_agent: self.user_agent.clone(),
            contract_version: self.contract_version.clone(),
        }
    }
}

/// The connection an event came from, handed to [`Dispatch`](super::Dispatch)
/// methods. Cheap to clone.
#[derive(Clone)]
pub struct SocketContext {
    socket: RawSocket,
    state: Arc<ClientState>,
    emitter: Emitter,
}

impl std::fmt::Debug for SocketContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketContext")
            .field("socket_id", &self.socket_id())
            .field("namespace", &self.state.namespace)
            .field("user_id", &self.state.user_id)
            .finish_non_exhaustive()
    }
}

impl SocketContext {
    pub(crate) fn new(socket: RawSocket, state: Arc<ClientState>, emitter: Emitter) -> Self {
        Self {
            socket,
            state,
            emitter,
        }
    }

    /// Socket id of this connection.
    pub fn socket_id(&self) -> &str {
        with_adapter!(RawSocket, &self.socket, socket => socket.id.as_str())
    }

    /// Namespace path.
    pub fn namespace(&self) -> &str {
        self.state.namespace
    }

    /// The verified user id, or `None` for an anonymous connection.
    pub fn user_id(&self) -> Option<&str> {
        self.state.user_id.as_deref()
    }

    /// Whether the connection carried a verified token.
    pub fn is_authenticated(&self) -> bool {
        self.state.user_id.is_some()
    }

    /// The user id, or `AUTH_REQUIRED`.
    pub fn require_auth(&self) -> Result<&str, EventError> {
        self.user_id().ok_or_else(EventError::auth_required)
    }

    /// A snapshot of this connection's metadata.
    pub fn metadata(&self) -> ClientMetadata {
        with_adapter!(RawSocket, &self.socket, socket => self.state.metadata(socket))
    }

    /// Joins a room of this namespace; joining a room the socket is in is a
    /// success. Refused with `TOO_MANY_ROOMS` when the socket is in
    /// `ServerConfig::max_rooms_per_socket` rooms (the runtime's own rooms
    /// not counted), and with `ROOM_FULL` when the room's contract pattern
    /// has `maxMembers` and this node's sockets fill it. The socket's own membership lives on the node that
    /// holds it, so this is immediate on any adapter; with the Redis
    /// adapter, broadcasts from every node reach the room's members.
    pub fn join(&self, room: impl Into<String>) -> Result<(), EventError> {
        let room = room.into();
        // A room with history is joined under the room's lock, with its
        // delivery room; a socket that asked for offsets is told where it
        // starts: no event is numbered between its position and its
        // membership.
        #[cfg(feature = "redis")]
        if let Some((shared, spec)) = self.state.history.as_ref().and_then(|h| h.shared(&room)) {
            // The position is read from Redis after the socket joined:
            // what is kept from then on reaches it, and the client keeps
            // only the events after the position it is given.
            if self.join_now(room.clone())? {
                self.join_delivery(&room);
                if self.state.offsets {
                    let (shared, ctx) = (shared.clone(), self.clone());
                    tokio::spawn(async move {
                        let position = history::catch_up(&shared, spec, &ctx, &room, "", 0).await;
                        let _ = ctx.emit_to_self(RECOVERY_EVENT, &position);
                    });
                }
            }
            return Ok(());
        }
        let Some(log) = self.state.history.as_ref().and_then(|h| h.log(&room)) else {
            return self.join_now(room).map(|_| ());
        };
        let log = history::lock(&log);
        if self.join_now(room.clone())? {
            self.join_delivery(&room);
            if self.state.offsets {
                let _ = self.emit_to_self(RECOVERY_EVENT, &log.position(&room, true));
            }
        }
        Ok(())
    }

    /// The runtime's state of this socket.
    pub(crate) fn state(&self) -> &ClientState {
        &self.state
    }

    /// Joins the delivery room of `room` that fits this socket (see
    /// `history::delivery_room`).
    pub(crate) fn join_delivery(&self, room: &str) {
        let delivery = delivery_room(room, self.state.offsets);
        with_adapter!(RawSocket, &self.socket, socket => socket.join(delivery));
    }

    /// Joins `room` now; `Ok(false)` when the socket was in it already.
    pub(crate) fn join_now(&self, room: String) -> Result<bool, EventError> {
        {
            let mut rooms = self.state.rooms();
            if rooms.contains(&room) {
                return Ok(false);
            }
            if rooms.len() - self.state.runtime_rooms >= self.state.max_rooms {
                return Err(EventError::too_many_rooms(self.state.max_rooms));
            }
            if let Some(caps) = &self.state.room_caps {
                caps.enter(&room)
                    .map_err(|max| EventError::room_full(&room, max))?;
            }
            rooms.insert(room.clone());
        }
        with_adapter!(RawSocket, &self.socket, socket => socket.join(room));
        Ok(true)
    }

    /// Leaves a room of this namespace (immediate, like [`join`](Self::join)).
    pub fn leave(&self, room: impl Into<String>) {
        let room = room.into();
        let was_in = self.state.rooms().remove(&room);
        if let (true, Some(caps)) = (was_in, &self.state.room_caps) {
            caps.leave(&room);
        }
        if let Some(history) = &self.state.history
            && history.spec_for(&room).is_some()
        {
            let delivery = delivery_room(&room, self.state.offsets);
            with_adapter!(RawSocket, &self.socket, socket => socket.leave(delivery));
            #[cfg(feature = "redis")]
            if was_in && self.state.offsets && history.shared(&room).is_some() {
                // The client forgets the room: where it stood is not needed.
                let left = crate::wire::RoomPosition {
                    room: room.clone(),
                    epoch: String::new(),
                    offset: 0,
                    recovered: true,
                    replayed: 0,
                    reason: None,
                    left: true,
                };
                let _ = self.emit_to_self(RECOVERY_EVENT, &left);
            }
            if was_in
                && self.state.offsets
                && let Some(log) = history.existing(&room)
            {
                let mut position = history::lock(&log).position(&room, true);
                position.left = true;
                let _ = self.emit_to_self(RECOVERY_EVENT, &position);
            }
        }
        with_adapter!(RawSocket, &self.socket, socket => socket.leave(room));
    }

    /// Rooms this socket is in.
    pub fn rooms(&self) -> Vec<String> {
        with_adapter!(RawSocket, &self.socket, socket => owned_rooms(socket))
    }

    /// Whether this socket is in `room` (one hash lookup). Rooms joined
    /// through the raw socketioxide socket instead of
    /// [`join`](Self::join) are not seen here.
    pub fn in_room(&self, room: &str) -> bool {
        self.state.rooms().contains(room)
    }

    /// The emitter of this namespace.
    pub fn emitter(&self) -> Emitter {
        self.emitter.clone()
    }

    /// Sends `event` to this socket only. Failures are logged, counted and returned.
    pub fn emit_to_self<T: Serialize + ?Sized>(
        &self,
        event: &str,
        payload: &T,
    ) -> Result<(), EmitError> {
        self.emitter.emit_socket_ref(&self.socket, event, payload)
    }

    /// Sends `event` to this socket, waiting (at most `patience`) while its
    /// queue on the server is full, as acks are retried: for the runtime's
    /// own answers that the client waits for. Counted once, as one emit.
    pub(crate) async fn emit_to_self_patiently<T: Serialize + ?Sized>(
        &self,
        event: &str,
        payload: &T,
        patience: Duration,
    ) -> Result<(), EmitError> {
        let send = || with_adapter!(RawSocket, &self.socket, socket => socket.emit(event, payload));
        let connected = || with_adapter!(RawSocket, &self.socket, socket => socket.connected());
        let sent = match send() {
            Err(socketioxide::SendError::Socket(
                socketioxide::SocketError::InternalChannelFull,
            )) => resend_while_full(patience, connected, send).await,
            first => first,
        };
        match sent {
            Ok(()) => {
                self.emitter.record_send_success();
                Ok(())
            }
            Err(err) => Err(self.emitter.record_send_failure(event, err)),
        }
    }

    /// Records an action under `key` for this client and returns whether it is
    /// within `max` actions per sliding `window` (a refused action is not recorded).
    pub fn should_allow_action(&self, key: &str, max: u32, window: Duration) -> bool {
        self.state.limits.allow_action(key, max, window)
    }

    /// How long until the action under `key` is allowed again (zero if now).
    pub fn time_until_allowed(&self, key: &str) -> Duration {
        self.state.limits.action_wait(key)
    }

    /// The raw socketioxide socket, on the gateway's adapter, for escape
    /// hatches.
    pub fn socket(&self) -> &RawSocket {
        &self.socket
    }

    /// Closes this socket's namespace connection.
    pub fn disconnect(&self) {
        let res = with_adapter!(RawSocket, &self.socket, socket => socket.clone().disconnect());
        if let Err(err) = res {
            tracing::debug!(socket = self.socket_id(), %err, "disconnect failed");
        }
    }
}
