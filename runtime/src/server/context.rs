//! The [`SocketContext`] handed to handlers: one connection's view of its
//! rooms and itself, including putting a returning client back in its
//! rooms with history (`resume`, `fill`).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::value::RawValue;

use super::adapter::{RawSocket, with_adapter};
use super::emitter::{EmitError, Emitter, resend_while_full};
use super::handshake::ResumeAt;
#[cfg(feature = "redis")]
use super::history::SharedHistory;
use super::history::{self, HistoryStore, delivery_room, lock};
use super::socket_state::{ClientMetadata, ClientState, owned_rooms};
#[cfg(feature = "redis")]
use super::spec::HistorySpec;
use crate::wire::{EventError, Offset, RECOVERY_EVENT, RecoveryGap, RoomPosition};

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
                        let position = catch_up(&shared, spec, &ctx, &room, "", 0).await;
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

/// Puts a returning client back in room `at.room` and says where it
/// stands: under the room's lock, the events after its offset are sent
/// again in order with their offsets and it re-joins, so later events
/// reach it after them. A room this node has no log of is not the history
/// the client knew (`epoch`): it re-joins, from now on.
pub(crate) fn resume(
    history: Option<&HistoryStore>,
    ctx: &SocketContext,
    at: &ResumeAt,
) -> RoomPosition {
    let Some(history) = history.filter(|h| h.spec_for(&at.room).is_some()) else {
        return gap(at.room.clone(), String::new(), 0, RecoveryGap::NoHistory);
    };
    let Some(log) = history.existing(&at.room) else {
        if ctx.join(at.room.clone()).is_err() {
            return gap(at.room.clone(), String::new(), 0, RecoveryGap::Refused);
        }
        let (epoch, offset) = history.log(&at.room).map_or_else(
            || (String::new(), 0),
            |log| {
                let now = lock(&log).position(&at.room, true);
                (now.epoch, now.offset)
            },
        );
        return gap(at.room.clone(), epoch, offset, RecoveryGap::Epoch);
    };
    let mut log = lock(&log);
    let mut position = log.position(&at.room, true);
    let replay = log.since(&at.epoch, at.offset);
    if ctx.join_now(at.room.clone()).is_err() {
        return gap(at.room.clone(), String::new(), 0, RecoveryGap::Refused);
    }
    ctx.join_delivery(&at.room);
    send_again(ctx, &mut position, replay);
    position
}

/// Sends `events` of `position.room` (event, payload, offset) to the
/// socket again, in order with their offsets, counting them in
/// `position`; when the store says they are gone, `position` says why. A
/// full socket queue drops the packet: what is missing is then a gap like
/// any other (`dropped`).
fn send_again<'a>(
    ctx: &SocketContext,
    position: &mut RoomPosition,
    events: Result<impl IntoIterator<Item = (&'a str, &'a RawValue, u64)>, RecoveryGap>,
) {
    let events = match events {
        Ok(events) => events,
        Err(why) => {
            position.recovered = false;
            position.reason = Some(why);
            return;
        }
    };
    for (event, payload, offset) in events {
        let offset = Offset {
            room: position.room.clone(),
            epoch: position.epoch.clone(),
            offset,
        };
        if ctx.emit_to_self(event, &(payload, &offset)).is_err() {
            position.recovered = false;
            position.reason = Some(RecoveryGap::Dropped);
            return;
        }
        position.replayed += 1;
    }
}

/// Answers a client's [`FILL_EVENT`](crate::wire::FILL_EVENT): the events
/// of `room` after its offset are sent again, and the position says
/// where the room stands (or why they are gone). A room the socket is
/// not in is refused.
pub(crate) async fn fill(
    history: Option<&HistoryStore>,
    ctx: &SocketContext,
    room: &str,
    epoch: &str,
    offset: u64,
) -> RoomPosition {
    let Some(history) = history.filter(|h| h.spec_for(room).is_some()) else {
        return gap(room.to_owned(), String::new(), 0, RecoveryGap::NoHistory);
    };
    if !ctx.in_room(room) {
        return gap(room.to_owned(), String::new(), 0, RecoveryGap::Refused);
    }
    #[cfg(feature = "redis")]
    if let Some((shared, spec)) = history.shared(room) {
        return catch_up(shared, spec, ctx, room, epoch, offset).await;
    }
    let Some(log) = history.existing(room) else {
        return gap(room.to_owned(), String::new(), 0, RecoveryGap::Epoch);
    };
    let mut log = lock(&log);
    let mut position = log.position(room, true);
    send_again(ctx, &mut position, log.since(epoch, offset));
    position
}

/// [`resume`] on the store every node shares: the socket re-joins first,
/// then the events after its offset are read and sent again. An event
/// kept meanwhile may reach it live before its replay, or twice: the
/// client orders them by offset and drops what it has.
#[cfg(feature = "redis")]
pub(crate) async fn resume_shared(
    shared: &SharedHistory,
    spec: HistorySpec,
    ctx: &SocketContext,
    at: &ResumeAt,
) -> RoomPosition {
    if ctx.join_now(at.room.clone()).is_err() {
        return gap(at.room.clone(), String::new(), 0, RecoveryGap::Refused);
    }
    ctx.join_delivery(&at.room);
    catch_up(shared, spec, ctx, &at.room, &at.epoch, at.offset).await
}

/// Reads the events of `room` after `offset` of `epoch` from the shared
/// store and sends them again (`epoch` empty: none, the position only).
#[cfg(feature = "redis")]
pub(crate) async fn catch_up(
    shared: &SharedHistory,
    spec: HistorySpec,
    ctx: &SocketContext,
    room: &str,
    epoch: &str,
    offset: u64,
) -> RoomPosition {
    match shared.read(room, spec, epoch, offset).await {
        Err(err) => {
            tracing::warn!(room, error = %err, "cannot read the room's history from Redis");
            gap(
                room.to_owned(),
                epoch.to_owned(),
                offset,
                RecoveryGap::Unavailable,
            )
        }
        Ok(read) => {
            let mut position = RoomPosition {
                room: room.to_owned(),
                epoch: read.epoch,
                offset: read.last,
                recovered: true,
                replayed: 0,
                reason: None,
                left: false,
            };
            let events = read.events.as_ref().map_err(|why| *why).map(|events| {
                events
                    .iter()
                    .map(|e| (e.event.as_str(), &*e.payload, e.offset))
            });
            send_again(ctx, &mut position, events);
            position
        }
    }
}

/// A position that says events of `room` are gone, and why.
fn gap(room: String, epoch: String, offset: u64, reason: RecoveryGap) -> RoomPosition {
    RoomPosition {
        room,
        epoch,
        offset,
        recovered: false,
        replayed: 0,
        reason: Some(reason),
        left: false,
    }
}
