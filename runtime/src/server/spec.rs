//! The static description of a contract that generated code hands to the
//! runtime (plain data: the [`Dispatch`](super::Dispatch) trait that
//! generated glue implements is in `dispatch.rs`).

use std::future::Future;
use std::pin::Pin;

/// A boxed, `Send` future: what [`Dispatch`](super::Dispatch) methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Whether a namespace or an event needs an authenticated connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AuthMode {
    /// Anonymous connections are accepted; handlers can still check
    /// [`SocketContext::is_authenticated`](super::SocketContext::is_authenticated).
    #[default]
    Optional,
    /// Anonymous connections are refused (`AUTH_REQUIRED`).
    Required,
}

/// A contract rate limit: at most `max` events in any sliding window of
/// `window_ms` milliseconds, per event and per [`RateScope`], on the node
/// that holds the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimit {
    /// Events allowed in one window.
    pub max: u32,
    /// Window length in milliseconds.
    pub window_ms: u64,
    /// Who the limit counts.
    pub per: RateScope,
}

/// Who a [`RateLimit`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RateScope {
    /// Every connection of one authenticated user together; an anonymous
    /// connection counts with the other anonymous connections of its IP
    /// address. Reconnecting never resets it. The default.
    #[default]
    User,
    /// Each connection on its own (reset by reconnecting).
    Connection,
    /// Every connection from one IP address together.
    Ip,
}

/// One client-to-server event of a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSpec {
    /// Event name on the wire.
    pub name: &'static str,
    /// Whether this event needs an authenticated connection.
    pub auth: AuthMode,
    /// Optional rate limit.
    pub rate_limit: Option<RateLimit>,
    /// Largest payload accepted, in bytes of JSON text, checked before it is
    /// parsed (`PAYLOAD_TOO_LARGE`).
    pub max_payload_bytes: Option<usize>,
    /// Whether the event answers through an ack callback.
    pub acked: bool,
    /// Whether a client may send it with an idempotency key (acked events,
    /// unless the contract says `"idempotent": false`): its handler then
    /// runs at most once per key and a retry gets the first answer.
    pub idempotent: bool,
    /// Self-contained JSON Schema (draft-07, with its own "definitions") of the payload.
    pub schema: &'static str,
}

/// One namespace of a contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamespaceSpec {
    /// Namespace path, starting with `/` (for example `/chat`).
    pub path: &'static str,
    /// Whether connecting to this namespace needs an authenticated connection.
    pub auth: AuthMode,
    /// Events the client may send.
    pub client_events: &'static [EventSpec],
    /// Events the server may send (informational; not enforced on emit).
    pub server_events: &'static [&'static str],
    /// The contract this namespace comes from, checked against the one
    /// generated clients name in the handshake (see
    /// [`ServerConfig::contract_mismatch`](super::ServerConfig::contract_mismatch));
    /// `None`: no check.
    pub contract: Option<ContractId>,
    /// The contract's room patterns (those with a member cap are enforced
    /// by [`SocketContext::join`](super::SocketContext::join)).
    pub rooms: &'static [RoomSpec],
}

/// A room pattern of the contract, such as `thread:{threadId}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomSpec {
    /// The room's name in the contract (`thread`).
    pub name: &'static str,
    /// The pattern: literal text with `{param}` placeholders, each standing
    /// for one or more characters.
    pub pattern: &'static str,
    /// Most sockets one room of this pattern may hold on one node; a join
    /// past it is refused with `ROOM_FULL`.
    pub max_members: Option<usize>,
    /// The room's history, kept so that reconnecting clients get what they
    /// missed (see [`HistorySpec`]).
    pub history: Option<HistorySpec>,
}

/// How much of a room's events the server keeps for clients that
/// reconnect: the contract's `history`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistorySpec {
    /// Events kept per room (the oldest go first).
    pub size: u32,
    /// How long an event is kept, in seconds.
    pub ttl_seconds: u32,
}

impl RoomSpec {
    /// Whether room name `room` is an instance of this pattern.
    pub fn matches(&self, room: &str) -> bool {
        matches_pattern(self.pattern, room)
    }
}

/// Whether `text` matches `pattern`, whose `{param}` placeholders each stand
/// for one or more characters (tried shortest first, backtracking).
fn matches_pattern(pattern: &str, text: &str) -> bool {
    match pattern.find('{') {
        None => pattern == text,
        Some(open) => {
            let Some(rest) = text.strip_prefix(&pattern[..open]) else {
                return false;
            };
            let Some(close) = pattern[open..].find('}') else {
                return false;
            };
            let after = &pattern[open + close + 1..];
            rest.char_indices()
                .skip(1)
                .map(|(i, _)| i)
                .chain(std::iter::once(rest.len()))
                .filter(|&i| i > 0)
                .any(|i| matches_pattern(after, &rest[i..]))
        }
    }
}

/// A contract's name and version, as generated code carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContractId {
    /// The contract's name.
    pub name: &'static str,
    /// Its version (semver).
    pub version: &'static str,
}

impl ContractId {
    /// Whether a client of contract `name` at `version` can talk to this
    /// one: the same name and major version (the same minor below 1.0,
    /// where a minor announces breaking changes). An unreadable version is
    /// not compatible.
    pub fn accepts(&self, name: &str, version: &str) -> bool {
        let (Some(ours), Some(theirs)) = (major_minor(self.version), major_minor(version)) else {
            return false;
        };
        name == self.name && ours.0 == theirs.0 && (ours.0 > 0 || ours.1 == theirs.1)
    }
}

/// The major and minor numbers of a `MAJOR.MINOR.PATCH[-pre][+build]`
/// version.
fn major_minor(version: &str) -> Option<(u64, u64)> {
    let core = version.split(['-', '+']).next()?;
    let mut parts = core.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let _patch: u64 = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((major, minor))
}

impl NamespaceSpec {
    /// The client event named `name`, if the contract has it.
    pub fn client_event(&self, name: &str) -> Option<&'static EventSpec> {
        self.client_events.iter().find(|e| e.name == name)
    }
}

#[cfg(test)]
mod room_tests {
    use super::*;

    #[test]
    fn room_patterns_match_their_instances_only() {
        let thread = RoomSpec {
            name: "thread",
            pattern: "thread:{threadId}",
            max_members: Some(2),
            history: None,
        };
        assert!(thread.matches("thread:t1"));
        assert!(thread.matches("thread:a:b"));
        assert!(!thread.matches("thread:"));
        assert!(!thread.matches("threads:t1"));
        assert!(!thread.matches("user:t1"));
        let two = RoomSpec {
            name: "pair",
            pattern: "org:{org}:team:{team}",
            max_members: None,
            history: None,
        };
        assert!(two.matches("org:a:team:b"));
        assert!(two.matches("org:a:team:x:team:b"));
        assert!(!two.matches("org:a:team:"));
        assert!(!two.matches("org::team:b"));
        assert!(two.matches("org:é:team:ü"));
    }
}
