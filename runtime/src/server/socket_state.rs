//! The runtime's state of one socket ([`ClientState`], kept in the
//! socket's extensions) and the snapshot of it handlers and emitters read
//! ([`ClientMetadata`]).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use socketioxide::extract::SocketRef;

use super::adapter::GatewayAdapter;
use super::handshake::ResumeAt;
use super::history::HistoryStore;
use super::rate_limit::ClientLimits;
use super::room_caps::RoomCaps;
use super::user_sockets::UserSlot;

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
    pub(super) rooms: Mutex<HashSet<String>>,
    /// How many of `rooms` the runtime joined itself (not counted against
    /// `max_rooms`).
    pub(super) runtime_rooms: usize,
    /// Most rooms a handler may join for this socket.
    pub(super) max_rooms: usize,
    /// The contract version the client named in its handshake (bounded
    /// and well-formed: see `handshake::client_contract`).
    pub(crate) contract_version: Option<String>,
    /// Whether `contract_version` may be a metric label (a version the
    /// namespace's contract accepts).
    pub(crate) version_is_label: bool,
    /// This socket's place in its user's socket cap, given back on drop.
    _user_slot: Option<UserSlot>,
    /// The namespace's room member caps, when a room has one.
    pub(super) room_caps: Option<Arc<RoomCaps>>,
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
pub(super) fn owned_rooms<A: GatewayAdapter>(socket: &SocketRef<A>) -> Vec<String> {
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

    pub(super) fn rooms(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
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
