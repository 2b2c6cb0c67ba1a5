//! The client half of the engine.io v4 / socket.io v5 text codec.
//!
//! Over the WebSocket transport every WebSocket text frame carries exactly one
//! engine.io packet: a one-digit type followed by its data. A socket.io packet
//! travels inside an engine.io `4` (message) packet:
//!
//! ```text
//! <sio type>[<attachments>-][/<namespace>,][<ack id>][<JSON>]
//! ```
//!
//! Nothing here panics on input: every malformed packet is an `Err`.

use std::fmt;
use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A packet that does not follow the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProtocolError(pub(crate) String);

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err(msg: impl Into<String>) -> ProtocolError {
    ProtocolError(msg.into())
}

/// The engine.io handshake (`0` packet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpenInfo {
    /// engine.io session id (not the socket.io one).
    pub(crate) sid: String,
    /// How often the server pings.
    pub(crate) ping_interval: Duration,
    /// How long the server waits for a pong.
    pub(crate) ping_timeout: Duration,
    /// Largest payload the server accepts (a polling limit; informative here).
    pub(crate) max_payload: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawOpen {
    sid: String,
    ping_interval: u64,
    ping_timeout: u64,
    #[serde(default)]
    max_payload: u64,
}

/// An engine.io packet, borrowed from the frame text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EnginePacket<'a> {
    /// `0`: handshake.
    Open(OpenInfo),
    /// `1`: the server closes the session.
    Close,
    /// `2`: heartbeat; answer `3` with the same data.
    Ping(&'a str),
    /// `3`: answer to a ping (servers do not send it in v4).
    Pong,
    /// `4`: a socket.io packet.
    Message(&'a str),
    /// `5`: transport upgrade (unused over WebSocket).
    Upgrade,
    /// `6`: no-op.
    Noop,
}

/// Decodes one engine.io text packet.
pub(crate) fn decode_engine(text: &str) -> Result<EnginePacket<'_>, ProtocolError> {
    let mut chars = text.chars();
    let Some(kind) = chars.next() else {
        return Err(err("empty engine.io packet"));
    };
    let data = chars.as_str();
    Ok(match kind {
        '0' => {
            let raw: RawOpen = serde_json::from_str(data)
                .map_err(|e| err(format!("invalid engine.io open packet: {e}")))?;
            EnginePacket::Open(OpenInfo {
                sid: raw.sid,
                ping_interval: Duration::from_millis(raw.ping_interval),
                ping_timeout: Duration::from_millis(raw.ping_timeout),
                max_payload: raw.max_payload,
            })
        }
        '1' => EnginePacket::Close,
        '2' => EnginePacket::Ping(data),
        '3' => EnginePacket::Pong,
        '4' => EnginePacket::Message(data),
        '5' => EnginePacket::Upgrade,
        '6' => EnginePacket::Noop,
        other => return Err(err(format!("unknown engine.io packet type {other:?}"))),
    })
}

/// The engine.io pong answering a ping with `data`.
pub(crate) fn encode_pong(data: &str) -> String {
    format!("3{data}")
}

/// A socket.io packet received by the client.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SocketPacket<'a> {
    /// `0`: the namespace accepted the connection (`{"sid": …}` in v5).
    Connect { ns: &'a str, data: Option<Value> },
    /// `1`: the server removed this client from the namespace.
    Disconnect { ns: &'a str },
    /// `2`: a server event, with an ack id when the server waits for an answer.
    Event {
        ns: &'a str,
        id: Option<u64>,
        name: String,
        args: Vec<Value>,
    },
    /// `3`: the answer to one of our acked emits.
    Ack {
        ns: &'a str,
        id: u64,
        args: Vec<Value>,
    },
    /// `4`: the namespace refused the connection (`{"message": …, "data"?: …}`).
    ConnectError { ns: &'a str, data: Option<Value> },
    /// `5`: an event with binary attachments (not supported).
    BinaryEvent { ns: &'a str, id: Option<u64> },
    /// `6`: an ack with binary attachments (not supported).
    BinaryAck { ns: &'a str, id: Option<u64> },
}

/// Decodes the socket.io packet carried by an engine.io message.
pub(crate) fn decode_socket(text: &str) -> Result<SocketPacket<'_>, ProtocolError> {
    let bytes = text.as_bytes();
    let Some(&kind) = bytes.first() else {
        return Err(err("empty socket.io packet"));
    };
    if !(b'0'..=b'6').contains(&kind) {
        return Err(err(format!(
            "unknown socket.io packet type {:?}",
            char::from(kind)
        )));
    }
    let mut pos = 1;

    if kind == b'5' || kind == b'6' {
        let digits = count_digits(&bytes[pos..]);
        if digits == 0 || bytes.get(pos + digits) != Some(&b'-') {
            return Err(err("binary packet without attachment count"));
        }
        pos += digits + 1;
    }

    // Every byte compared below is ASCII, so each `pos` is a char boundary.
    let ns = if bytes.get(pos) == Some(&b'/') {
        match text[pos..].find(',') {
            Some(comma) => {
                let ns = &text[pos..pos + comma];
                pos += comma + 1;
                ns
            }
            None => {
                let ns = &text[pos..];
                pos = text.len();
                ns
            }
        }
    } else {
        "/"
    };

    let digits = count_digits(&bytes[pos..]);
    let id = if digits > 0 {
        let id = text[pos..pos + digits]
            .parse::<u64>()
            .map_err(|_| err("ack id out of range"))?;
        pos += digits;
        Some(id)
    } else {
        None
    };

    let rest = &text[pos..];
    let data = if rest.is_empty() {
        None
    } else {
        Some(
            serde_json::from_str::<Value>(rest)
                .map_err(|e| err(format!("invalid socket.io packet data: {e}")))?,
        )
    };

    Ok(match kind {
        b'0' => SocketPacket::Connect { ns, data },
        b'1' => SocketPacket::Disconnect { ns },
        b'2' => {
            let mut args = into_array(data, "event")?;
            if args.is_empty() {
                return Err(err("event packet without event name"));
            }
            let Value::String(name) = args.remove(0) else {
                return Err(err("event name is not a string"));
            };
            SocketPacket::Event { ns, id, name, args }
        }
        b'3' => {
            let id = id.ok_or_else(|| err("ack packet without ack id"))?;
            SocketPacket::Ack {
                ns,
                id,
                args: into_array(data, "ack")?,
            }
        }
        b'4' => SocketPacket::ConnectError { ns, data },
        b'5' => SocketPacket::BinaryEvent { ns, id },
        _ => SocketPacket::BinaryAck { ns, id },
    })
}

fn count_digits(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|b| b.is_ascii_digit()).count()
}

fn into_array(data: Option<Value>, what: &str) -> Result<Vec<Value>, ProtocolError> {
    match data {
        Some(Value::Array(args)) => Ok(args),
        Some(_) => Err(err(format!("{what} data is not an array"))),
        None => Err(err(format!("{what} packet without data"))),
    }
}

/// Appends the namespace part (`/chat,`), empty for the main namespace.
fn push_ns(out: &mut String, ns: &str) {
    if ns != "/" {
        out.push_str(ns);
        out.push(',');
    }
}

/// `40[/ns,][{auth}]`: asks to join a namespace.
pub(crate) fn encode_connect(ns: &str, auth: Option<&Value>) -> String {
    let mut out = String::from("40");
    push_ns(&mut out, ns);
    if let Some(auth) = auth {
        out.push_str(&auth.to_string());
    }
    out
}

/// `41[/ns,]`: leaves a namespace.
pub(crate) fn encode_disconnect(ns: &str) -> String {
    let mut out = String::from("41");
    push_ns(&mut out, ns);
    out
}

/// `42[/ns,][id]["event",payload]`: an event with one argument.
pub(crate) fn encode_event<T: Serialize + ?Sized>(
    ns: &str,
    id: Option<u64>,
    event: &str,
    payload: &T,
) -> Result<String, serde_json::Error> {
    let mut out = String::from("42");
    push_ns(&mut out, ns);
    if let Some(id) = id {
        let _ = write!(out, "{id}");
    }
    out.push_str(&serde_json::to_string(&(event, payload))?);
    Ok(out)
}

/// `42[/ns,]id["event",payload,{"idempotencyKey":key}]`: an event with an
/// idempotency key as its extra last argument.
pub(crate) fn encode_keyed_event<T: Serialize + ?Sized>(
    ns: &str,
    id: u64,
    event: &str,
    payload: &T,
    key: &str,
) -> Result<String, serde_json::Error> {
    let mut out = String::from("42");
    push_ns(&mut out, ns);
    let _ = write!(out, "{id}");
    let keyed = serde_json::json!({ "idempotencyKey": key });
    out.push_str(&serde_json::to_string(&(event, payload, keyed))?);
    Ok(out)
}

/// `43[/ns,]id[payload]`: answers a server event that waits for an ack.
pub(crate) fn encode_ack<T: Serialize + ?Sized>(
    ns: &str,
    id: u64,
    payload: &T,
) -> Result<String, serde_json::Error> {
    let mut out = String::from("43");
    push_ns(&mut out, ns);
    let _ = write!(out, "{id}");
    out.push_str(&serde_json::to_string(&[payload])?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn engine_packets() {
        let open = decode_engine(
            r#"0{"sid":"abc","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#,
        )
        .unwrap();
        assert_eq!(
            open,
            EnginePacket::Open(OpenInfo {
                sid: "abc".into(),
                ping_interval: Duration::from_secs(25),
                ping_timeout: Duration::from_secs(20),
                max_payload: 1_000_000,
            })
        );
        assert_eq!(decode_engine("2").unwrap(), EnginePacket::Ping(""));
        assert_eq!(
            decode_engine("2probe").unwrap(),
            EnginePacket::Ping("probe")
        );
        assert_eq!(decode_engine("1").unwrap(), EnginePacket::Close);
        assert_eq!(decode_engine("6").unwrap(), EnginePacket::Noop);
        assert_eq!(
            decode_engine("42[\"a\"]").unwrap(),
            EnginePacket::Message("2[\"a\"]")
        );
        assert!(decode_engine("").is_err());
        assert!(decode_engine("9").is_err());
        assert!(decode_engine("é").is_err());
        assert!(decode_engine("0{}").is_err());
        assert!(decode_engine("0not json").is_err());
        assert_eq!(encode_pong(""), "3");
        assert_eq!(encode_pong("probe"), "3probe");
    }

    #[test]
    fn socket_connect_and_errors() {
        assert_eq!(
            decode_socket(r#"0{"sid":"x"}"#).unwrap(),
            SocketPacket::Connect {
                ns: "/",
                data: Some(json!({"sid": "x"}))
            }
        );
        assert_eq!(
            decode_socket(r#"0/chat,{"sid":"x"}"#).unwrap(),
            SocketPacket::Connect {
                ns: "/chat",
                data: Some(json!({"sid": "x"}))
            }
        );
        assert_eq!(
            decode_socket("0/chat").unwrap(),
            SocketPacket::Connect {
                ns: "/chat",
                data: None
            }
        );
        assert_eq!(
            decode_socket(r#"4/chat,{"message":"AUTH_REQUIRED"}"#).unwrap(),
            SocketPacket::ConnectError {
                ns: "/chat",
                data: Some(json!({"message": "AUTH_REQUIRED"}))
            }
        );
        assert_eq!(
            decode_socket("1/chat,").unwrap(),
            SocketPacket::Disconnect { ns: "/chat" }
        );
        assert_eq!(
            decode_socket("1").unwrap(),
            SocketPacket::Disconnect { ns: "/" }
        );
    }

    #[test]
    fn socket_events_and_acks() {
        assert_eq!(
            decode_socket(r#"2["hello",{"a":1},2]"#).unwrap(),
            SocketPacket::Event {
                ns: "/",
                id: None,
                name: "hello".into(),
                args: vec![json!({"a": 1}), json!(2)],
            }
        );
        assert_eq!(
            decode_socket(r#"2/chat,17["hello"]"#).unwrap(),
            SocketPacket::Event {
                ns: "/chat",
                id: Some(17),
                name: "hello".into(),
                args: vec![],
            }
        );
        assert_eq!(
            decode_socket(r#"3/chat,12[{"success":true,"data":1}]"#).unwrap(),
            SocketPacket::Ack {
                ns: "/chat",
                id: 12,
                args: vec![json!({"success": true, "data": 1})],
            }
        );
        assert_eq!(
            decode_socket(r#"51-/chat,3["up",{"_placeholder":true,"num":0}]"#).unwrap(),
            SocketPacket::BinaryEvent {
                ns: "/chat",
                id: Some(3)
            }
        );
        assert_eq!(
            decode_socket(r#"61-4[{"_placeholder":true,"num":0}]"#).unwrap(),
            SocketPacket::BinaryAck {
                ns: "/",
                id: Some(4)
            }
        );
    }

    #[test]
    fn malformed_socket_packets_are_errors() {
        for bad in [
            "",
            "7",
            "é",
            "2",
            "2{}",
            "2[]",
            "2[1]",
            "3[]",
            "3/chat,[1]",
            "2/é,[\"é\"]x",
            "299999999999999999999999[\"a\"]",
            "5[\"a\"]",
            "5x-[\"a\"]",
            "2[\"a\"",
        ] {
            assert!(decode_socket(bad).is_err(), "{bad:?} should be rejected");
        }
        // Multi-byte namespaces must not split a char.
        assert!(decode_socket("2/é,[\"é\"]").is_ok());
        assert!(decode_socket("2/é").is_err());
    }

    #[test]
    fn encoding() {
        assert_eq!(encode_connect("/", None), "40");
        assert_eq!(
            encode_connect("/chat", Some(&json!({"token": "t"}))),
            r#"40/chat,{"token":"t"}"#
        );
        assert_eq!(encode_disconnect("/"), "41");
        assert_eq!(encode_disconnect("/chat"), "41/chat,");
        assert_eq!(
            encode_event("/", None, "msg", &json!({"a": 1})).unwrap(),
            r#"42["msg",{"a":1}]"#
        );
        assert_eq!(
            encode_event("/chat", Some(7), "msg", "x").unwrap(),
            r#"42/chat,7["msg","x"]"#
        );
        assert_eq!(
            encode_ack("/chat", 3, &json!({"ok": true})).unwrap(),
            r#"43/chat,3[{"ok":true}]"#
        );
        // Round trip through the decoder.
        let text = encode_event("/chat", Some(9), "e", &json!([1, 2])).unwrap();
        let EnginePacket::Message(inner) = decode_engine(&text).unwrap() else {
            panic!("not a message");
        };
        assert_eq!(
            decode_socket(inner).unwrap(),
            SocketPacket::Event {
                ns: "/chat",
                id: Some(9),
                name: "e".into(),
                args: vec![json!([1, 2])],
            }
        );
    }
}
