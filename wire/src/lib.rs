//! The wire conventions shared by every target (Rust server, Rust client,
//! TypeScript): the generator and `evcontract-runtime` (which re-exports
//! this crate as `evcontract_runtime::wire`) both depend on it.
//!
//! - An acked event answers `{"success": true, "data": <ack>}` or
//!   `{"success": false, "code": "<CODE>", "message": "<text>", "details": <optional>}`.
//! - A failed event that has no ack produces the server event `error`
//!   `{"event": "<name>", "code", "message", "details"?}` to that client.

#![forbid(unsafe_code)]

use std::borrow::Cow;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// Built-in error codes, shared by every contract.
pub mod codes {
    /// The event (or namespace) needs an authenticated connection.
    pub const AUTH_REQUIRED: &str = "AUTH_REQUIRED";
    /// The handshake token failed verification.
    pub const INVALID_TOKEN: &str = "INVALID_TOKEN";
    /// The caller is authenticated but may not do this.
    pub const ACCESS_DENIED: &str = "ACCESS_DENIED";
    /// The caller exceeded the event's rate limit; details `{retryAfterMs}`.
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    /// The payload does not match the contract; details `{path, reason}`.
    pub const INVALID_PAYLOAD: &str = "INVALID_PAYLOAD";
    /// The event is not part of the contract.
    pub const UNKNOWN_EVENT: &str = "UNKNOWN_EVENT";
    /// The server failed while handling the event.
    pub const INTERNAL: &str = "INTERNAL";
    /// The payload is larger than the event's `maxPayloadBytes`; details
    /// `{maxBytes, bytes}`.
    pub const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";
    /// The connection is in as many rooms as the server allows; details
    /// `{maxRooms}`.
    pub const TOO_MANY_ROOMS: &str = "TOO_MANY_ROOMS";
    /// Connect refused: the client was generated from another major version
    /// of the contract (the message names both versions).
    pub const CONTRACT_MISMATCH: &str = "CONTRACT_MISMATCH";
    /// Connect refused: the handshake's `auth` payload is malformed (not an
    /// object, or a `contract` that is not `{name, version}` of the bounded
    /// form); the message says what is wrong.
    pub const INVALID_AUTH: &str = "INVALID_AUTH";
    /// Connect refused: the user has as many connections to the namespace
    /// on this server as it allows.
    pub const TOO_MANY_USER_CONNECTIONS: &str = "TOO_MANY_USER_CONNECTIONS";
    /// The room has as many members as the contract allows; details
    /// `{maxMembers}`.
    pub const ROOM_FULL: &str = "ROOM_FULL";
    /// The server cannot do it now: what it needs is unreachable (the
    /// shared store of a room's history), or the same request (same
    /// idempotency key) is still running. Nothing was done; retrying is
    /// safe.
    pub const UNAVAILABLE: &str = "UNAVAILABLE";

    /// A built-in code and what it means (the sentence the generated
    /// docs, error enums and AsyncAPI documents carry).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Builtin {
        /// The code on the wire.
        pub code: &'static str,
        /// What it means, one sentence for users of an API.
        pub doc: &'static str,
    }

    /// Every built-in code with its meaning, in the order of [`ALL`]: the
    /// one table the generator and the runtime read.
    pub const BUILTIN: [Builtin; 14] = [
        Builtin {
            code: AUTH_REQUIRED,
            doc: "The event (or namespace) needs an authenticated connection.",
        },
        Builtin {
            code: INVALID_TOKEN,
            doc: "The handshake token failed verification.",
        },
        Builtin {
            code: ACCESS_DENIED,
            doc: "The caller is authenticated but may not do this.",
        },
        Builtin {
            code: RATE_LIMITED,
            doc: "The caller exceeded the event's rate limit; details `{retryAfterMs}`.",
        },
        Builtin {
            code: INVALID_PAYLOAD,
            doc: "The payload does not match the contract; details `{path, reason}`.",
        },
        Builtin {
            code: UNKNOWN_EVENT,
            doc: "The event is not part of the contract.",
        },
        Builtin {
            code: INTERNAL,
            doc: "The server failed while handling the event.",
        },
        Builtin {
            code: PAYLOAD_TOO_LARGE,
            doc: "The payload is larger than the event's `maxPayloadBytes`; details `{maxBytes, bytes}`.",
        },
        Builtin {
            code: TOO_MANY_ROOMS,
            doc: "The connection is in as many rooms as the server allows; details `{maxRooms}`.",
        },
        Builtin {
            code: CONTRACT_MISMATCH,
            doc: "Connect refused: the client was generated from another major version of the contract (the message names both).",
        },
        Builtin {
            code: INVALID_AUTH,
            doc: "Connect refused: the handshake's `auth` payload is malformed (the message says what is wrong).",
        },
        Builtin {
            code: TOO_MANY_USER_CONNECTIONS,
            doc: "Connect refused: the user has as many connections to the namespace on this server as it allows.",
        },
        Builtin {
            code: ROOM_FULL,
            doc: "The room has as many members as the contract allows; details `{maxMembers}`.",
        },
        Builtin {
            code: UNAVAILABLE,
            doc: "The server cannot do it now (a store it needs is unreachable, or the same request is still running); nothing was done and retrying is safe.",
        },
    ];

    /// Every built-in code, in a stable order.
    pub const ALL: [&str; 14] = [
        AUTH_REQUIRED,
        INVALID_TOKEN,
        ACCESS_DENIED,
        RATE_LIMITED,
        INVALID_PAYLOAD,
        UNKNOWN_EVENT,
        INTERNAL,
        PAYLOAD_TOO_LARGE,
        TOO_MANY_ROOMS,
        CONTRACT_MISMATCH,
        INVALID_AUTH,
        TOO_MANY_USER_CONNECTIONS,
        ROOM_FULL,
        UNAVAILABLE,
    ];
}

/// What kind of JSON value `v` is, for messages: `null`, `a boolean`,
/// `a number`, `a string`, `an array` or `an object`.
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Name of the server event that carries failures of events without an ack.
pub const ERROR_EVENT: &str = "error";

/// Name of the server event that tells a client where it stands in a room
/// with history ([`RoomPosition`]): once when it joins the room, and once
/// per room it asked to resume after a reconnection.
pub const RECOVERY_EVENT: &str = "evcontract:recovery";

/// Name of the client event (with an ack) that asks for the events of a
/// room after an offset, on a live connection ([`FillRequest`]): the
/// server sends them again, in order with their offsets, then acks with a
/// [`RoomPosition`]. A client sends it when an event arrives ahead of one
/// it has not had (two nodes' events of a room are not ordered by Redis,
/// and a publish can be lost after its event was kept).
pub const FILL_EVENT: &str = "evcontract:fill";

/// The payload of [`FILL_EVENT`]: the last offset the client has in `room`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FillRequest {
    /// The room (the socket must be in it).
    pub room: String,
    /// The epoch of `offset`.
    pub epoch: String,
    /// The last offset the client has.
    pub offset: u64,
}

/// A new random epoch for a room's history: 16 lowercase hex digits. A
/// room log gets one when it starts, so that an offset of an earlier log
/// (before a restart, or after the log expired) is never taken for one of
/// this log.
pub fn new_epoch() -> String {
    use std::hash::BuildHasher;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = (
        std::time::SystemTime::now(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
    );
    format!(
        "{:016x}",
        std::collections::hash_map::RandomState::new().hash_one(seed)
    )
}

/// Where an event stands in its room's history: the extra last argument of
/// every event sent to a room with history, for clients that asked for it
/// in their handshake (`auth.recovery`), as socket.io's own connection-state
/// recovery sends its offset. Clients that did not ask get the event as
/// before, without it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offset {
    /// The room.
    pub room: String,
    /// The history's epoch: a new one means the earlier offsets are gone
    /// (a restarted node, a lost store).
    pub epoch: String,
    /// The event's offset in the room, from 1, one more per event.
    pub offset: u64,
}

/// Where a client stands in a room with history ([`RECOVERY_EVENT`]).
///
/// On a join: `recovered: true`, `replayed: 0`, and the room's current
/// offset (the client has everything up to it); on a leave: `left: true`. After a reconnection, per
/// room the client asked to resume: `recovered: true` when every event it
/// missed was sent again, in order, before this signal (`replayed` of them),
/// or `recovered: false` with the `reason` when some are gone; the client
/// is back in the room either way, from `offset` on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomPosition {
    /// The room.
    pub room: String,
    /// The history's epoch.
    pub epoch: String,
    /// The room's last offset: the client has, or was told it missed,
    /// everything up to it.
    pub offset: u64,
    /// Whether nothing was missed.
    pub recovered: bool,
    /// Events sent again.
    #[serde(default)]
    pub replayed: u64,
    /// Why events were missed (when `recovered` is false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RecoveryGap>,
    /// The client left the room: it stops tracking it (and does not ask
    /// to resume it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub left: bool,
}

/// Why a room could not be recovered after a reconnection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryGap {
    /// Events the client missed were dropped to keep the history's size.
    Trimmed,
    /// Events the client missed outlived the history's `ttlSeconds`.
    Expired,
    /// The history was lost since (a restarted node, a new store): its
    /// epoch changed.
    Epoch,
    /// The room has no history in the contract.
    NoHistory,
    /// The server did not let the client back into the room (the room is
    /// full, or the handler refused it).
    Refused,
    /// The events could not all be sent again: the client's queue on the
    /// server was full (`ServerConfig::buffer_size`).
    Dropped,
    /// The shared history (Redis) could not be read: the client rejoined
    /// the room, from now on.
    Unavailable,
}

/// A failed event: a code, a human-readable message and optional details.
///
/// Handlers return it; the server maps it to the ack envelope (acked events)
/// or to the `error` event (events without ack). Clients get it back from the
/// same envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventError {
    /// Machine-readable code: a built-in one ([`codes`]) or one of the contract's `errors`.
    pub code: Cow<'static, str>,
    /// Human-readable explanation.
    pub message: String,
    /// Optional structured details (for example `{retryAfterMs}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

impl EventError {
    /// An error with a code and message, without details.
    pub fn new(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            details: None,
        }
    }

    /// Attaches structured details.
    #[must_use]
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// `AUTH_REQUIRED`.
    pub fn auth_required() -> Self {
        Self::new(codes::AUTH_REQUIRED, "authentication required")
    }

    /// `INVALID_TOKEN` with the reason verification failed.
    pub fn invalid_token(reason: impl Into<String>) -> Self {
        Self::new(codes::INVALID_TOKEN, reason)
    }

    /// `ACCESS_DENIED`.
    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(codes::ACCESS_DENIED, message)
    }

    /// `RATE_LIMITED`, with `{retryAfterMs}` in the details.
    pub fn rate_limited(retry_after_ms: u64) -> Self {
        Self::new(
            codes::RATE_LIMITED,
            format!("rate limited, retry in {retry_after_ms} ms"),
        )
        .with_details(serde_json::json!({ "retryAfterMs": retry_after_ms }))
    }

    /// `INVALID_PAYLOAD`, with `{path, reason}` in the details. `path` is a
    /// JSON pointer into the payload (`""` for the payload itself); the
    /// message quotes it exactly as `details.path` holds it.
    pub fn invalid_payload(path: impl Into<String>, reason: impl Into<String>) -> Self {
        let path = path.into();
        let reason = reason.into();
        let at = serde_json::Value::String(path.clone());
        let what = if path.is_empty() {
            " (the payload itself)"
        } else {
            ""
        };
        Self::new(
            codes::INVALID_PAYLOAD,
            format!("invalid payload at {at}{what}: {reason}"),
        )
        .with_details(serde_json::json!({ "path": path, "reason": reason }))
    }

    /// `UNKNOWN_EVENT`. The name is quoted in the message cut to
    /// [`ECHOED_NAME_CHARS`] characters: a client can send any name, and the
    /// answer must not grow with it.
    pub fn unknown_event(event: &str) -> Self {
        Self::new(
            codes::UNKNOWN_EVENT,
            format!("unknown event `{}`", truncate_name(event)),
        )
    }

    /// `PAYLOAD_TOO_LARGE`, with `{maxBytes, bytes}` in the details.
    pub fn payload_too_large(max_bytes: usize, bytes: usize) -> Self {
        Self::new(
            codes::PAYLOAD_TOO_LARGE,
            format!("payload of {bytes} bytes; this event takes at most {max_bytes}"),
        )
        .with_details(serde_json::json!({ "maxBytes": max_bytes, "bytes": bytes }))
    }

    /// `TOO_MANY_ROOMS`, with `{maxRooms}` in the details.
    pub fn too_many_rooms(max_rooms: usize) -> Self {
        Self::new(
            codes::TOO_MANY_ROOMS,
            format!("this connection is already in {max_rooms} rooms, the most allowed"),
        )
        .with_details(serde_json::json!({ "maxRooms": max_rooms }))
    }

    /// `UNAVAILABLE`: nothing was done, retrying is safe.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(codes::UNAVAILABLE, message)
    }

    /// `ROOM_FULL`, with `{maxMembers}` in the details.
    pub fn room_full(room: &str, max_members: usize) -> Self {
        Self::new(
            codes::ROOM_FULL,
            format!(
                "room `{}` already has {max_members} members, the most allowed",
                truncate_name(room)
            ),
        )
        .with_details(serde_json::json!({ "maxMembers": max_members }))
    }

    /// `INTERNAL`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(codes::INTERNAL, message)
    }
}

/// How many characters of a client-chosen event name an answer echoes.
pub const ECHOED_NAME_CHARS: usize = 64;

/// `name` cut to [`ECHOED_NAME_CHARS`] characters (with `…` when cut).
pub fn truncate_name(name: &str) -> std::borrow::Cow<'_, str> {
    match name.char_indices().nth(ECHOED_NAME_CHARS) {
        None => std::borrow::Cow::Borrowed(name),
        Some((end, _)) => std::borrow::Cow::Owned(format!("{}…", &name[..end])),
    }
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for EventError {}

/// The ack envelope of an acked event.
#[derive(Debug, Clone, PartialEq)]
pub enum AckResponse<T> {
    /// `{"success": true, "data": …}`
    Success(T),
    /// `{"success": false, "code", "message", "details"?}`
    Failure(EventError),
}

impl<T> AckResponse<T> {
    /// Converts into a `Result`.
    pub fn into_result(self) -> Result<T, EventError> {
        match self {
            Self::Success(data) => Ok(data),
            Self::Failure(err) => Err(err),
        }
    }
}

impl<T> From<Result<T, EventError>> for AckResponse<T> {
    fn from(value: Result<T, EventError>) -> Self {
        match value {
            Ok(data) => Self::Success(data),
            Err(err) => Self::Failure(err),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    success: bool,
    #[serde(default = "Option::default", skip_serializing_if = "Option::is_none")]
    data: Option<T>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code: Option<Cow<'static, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    details: Option<Value>,
}

impl<T: Serialize> Serialize for AckResponse<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Self::Success(data) => {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("success", &true)?;
                map.serialize_entry("data", data)?;
                map.end()
            }
            Self::Failure(err) => {
                let mut map =
                    serializer.serialize_map(Some(3 + usize::from(err.details.is_some())))?;
                map.serialize_entry("success", &false)?;
                map.serialize_entry("code", &err.code)?;
                map.serialize_entry("message", &err.message)?;
                if let Some(details) = &err.details {
                    map.serialize_entry("details", details)?;
                }
                map.end()
            }
        }
    }
}

impl<T: DeserializeOwned> AckResponse<T> {
    /// Reads an ack envelope from an already parsed JSON value (what a
    /// client holds after reading the packet), without parsing it again.
    pub fn from_value(mut value: Value) -> Result<Self, serde_json::Error> {
        use serde::de::Error;
        // Through `Value`: the `data` of a success may legitimately be
        // `null` (a nullable ack), which `Option<T>` alone cannot tell apart
        // from a missing field.
        let obj = value
            .as_object_mut()
            .ok_or_else(|| serde_json::Error::custom("ack envelope is not an object"))?;
        match obj.get("success").and_then(Value::as_bool) {
            Some(true) => {
                let data = obj.remove("data").unwrap_or(Value::Null);
                serde_json::from_value(data).map(Self::Success)
            }
            Some(false) => {
                let env: Envelope<Value> = serde_json::from_value(value)?;
                Ok(Self::Failure(EventError {
                    code: env.code.unwrap_or(Cow::Borrowed(codes::INTERNAL)),
                    message: env.message.unwrap_or_default(),
                    details: env.details,
                }))
            }
            None => Err(serde_json::Error::custom(
                "ack envelope has no boolean `success` field",
            )),
        }
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for AckResponse<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        Self::from_value(Value::deserialize(deserializer)?).map_err(D::Error::custom)
    }
}

/// The payload of the server event `error`, sent when an event without ack fails.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorEvent {
    /// The client event that failed.
    pub event: String,
    /// The error code.
    pub code: Cow<'static, str>,
    /// Human-readable explanation.
    pub message: String,
    /// Optional structured details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

impl ErrorEvent {
    /// The `error` event for a failure of `event`.
    pub fn new(event: impl Into<String>, err: EventError) -> Self {
        Self {
            event: event.into(),
            code: err.code,
            message: err.message,
            details: err.details,
        }
    }
}

/// Deserializes a payload into its contract type, mapping a failure to
/// `INVALID_PAYLOAD` with the JSON pointer of the offending value.
///
/// Borrows the value: the server validated this same tree against the
/// event's schema just before, and a client's event keeps its payload. The
/// path is only tracked when the fast decode fails, so a valid payload costs
/// one pass.
pub fn decode_payload<T: DeserializeOwned>(value: &Value) -> Result<T, EventError> {
    T::deserialize(value).map_err(|_| {
        match serde_path_to_error::deserialize::<_, T>(value) {
            Err(err) => {
                let path = json_pointer(err.path());
                EventError::invalid_payload(path, err.into_inner().to_string())
            }
            // Deserialization is deterministic; this arm is unreachable for
            // derived types, and answers without a path otherwise.
            Ok(_) => EventError::invalid_payload("", "the payload could not be decoded"),
        }
    })
}

/// Deserializes a payload from its JSON text straight into its contract
/// type (no intermediate `Value`), mapping a failure to `INVALID_PAYLOAD`
/// with the JSON pointer of the offending value.
///
/// The server runs this on payloads its validator accepted, so a failure
/// is rare (a number the type cannot hold, such as `1.0` for an integer
/// field, or a repeated key); only then is the text parsed into a tree and
/// decoded again with path tracking, as [`decode_payload`] does.
pub fn decode_text<T: DeserializeOwned>(text: &str) -> Result<T, EventError> {
    serde_json::from_str(text).or_else(|_| match serde_json::from_str::<Value>(text) {
        Ok(value) => decode_payload(&value),
        Err(err) => Err(EventError::invalid_payload("", err.to_string())),
    })
}

/// The serialized data of a successful ack: JSON text, written once by
/// generated glue and embedded as is in the ack packet (`None` for events
/// without ack data, sent as `null`).
pub type AckData = Option<Box<RawValue>>;

/// Serializes an ack's data for the envelope, straight to JSON text (no
/// intermediate `Value` tree); a failure (which only a hand-written
/// `Serialize` can cause) is `INTERNAL`.
pub fn encode_ack<T: Serialize>(ack: &T) -> Result<AckData, EventError> {
    serde_json::value::to_raw_value(ack)
        .map(Some)
        .map_err(|err| EventError::internal(format!("could not serialize the ack: {err}")))
}

fn json_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => {
                out.push('/');
                out.push_str(&index.to_string());
            }
            Segment::Map { key } => {
                out.push('/');
                out.push_str(&key.replace('~', "~0").replace('/', "~1"));
            }
            Segment::Enum { variant } => {
                out.push('/');
                out.push_str(variant);
            }
            Segment::Unknown => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_code_table_lists_every_code_once_in_the_stable_order() {
        let table: Vec<&str> = codes::BUILTIN.iter().map(|b| b.code).collect();
        assert_eq!(table, codes::ALL);
        for b in codes::BUILTIN {
            assert!(
                b.doc.ends_with('.') && !b.doc.is_empty(),
                "{}: {}",
                b.code,
                b.doc
            );
        }
    }

    #[test]
    fn ack_envelope_round_trips() {
        let ok: AckResponse<u32> = AckResponse::Success(7);
        assert_eq!(
            serde_json::to_value(&ok).unwrap(),
            json!({"success": true, "data": 7})
        );
        let err: AckResponse<u32> = AckResponse::Failure(EventError::rate_limited(1500));
        let v = serde_json::to_value(&err).unwrap();
        assert_eq!(
            v,
            json!({"success": false, "code": "RATE_LIMITED", "message": "rate limited, retry in 1500 ms", "details": {"retryAfterMs": 1500}})
        );
        let back: AckResponse<u32> = serde_json::from_value(v).unwrap();
        assert_eq!(back, err);
        let null_ok: AckResponse<Option<u32>> =
            serde_json::from_value(json!({"success": true, "data": null})).unwrap();
        assert_eq!(null_ok, AckResponse::Success(None));
        assert!(serde_json::from_value::<AckResponse<u32>>(json!({"data": 1})).is_err());
    }

    #[test]
    fn decode_reports_json_pointer() {
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct Inner {
            n: u8,
        }
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct Outer {
            items: Vec<Inner>,
        }
        let err = decode_payload::<Outer>(&json!({"items": [{"n": 1}, {"n": "x"}]})).unwrap_err();
        assert_eq!(err.code, codes::INVALID_PAYLOAD);
        assert_eq!(err.details.as_ref().unwrap()["path"], "/items/1/n");
        assert!(
            err.message
                .starts_with("invalid payload at \"/items/1/n\": "),
            "{}",
            err.message
        );
        let root = decode_payload::<Outer>(&json!("x")).unwrap_err();
        assert_eq!(root.details.as_ref().unwrap()["path"], "");
        assert!(
            root.message
                .starts_with("invalid payload at \"\" (the payload itself): "),
            "{}",
            root.message
        );
        let ok = decode_payload::<Outer>(&json!({"items": [{"n": 1}]})).unwrap();
        assert_eq!(ok.items.len(), 1);
    }

    #[test]
    fn encoded_ack_is_embedded_as_json() {
        let data = encode_ack(&json!({"id": "m1", "n": [1, 2]})).unwrap();
        let text = serde_json::to_string(&AckResponse::Success(data)).unwrap();
        assert_eq!(text, r#"{"success":true,"data":{"id":"m1","n":[1,2]}}"#);
        let none: AckResponse<AckData> = AckResponse::Success(None);
        assert_eq!(
            serde_json::to_string(&none).unwrap(),
            r#"{"success":true,"data":null}"#
        );
    }
}
