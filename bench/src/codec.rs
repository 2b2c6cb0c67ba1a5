//! The load generator's minimal engine.io v4 / socket.io v5 text codec
//! (modelled on `evcontract_runtime`'s client codec, trimmed to what the
//! benchmark reads): frames are classified without building JSON values, so
//! the generator spends its time on the wire, not on parsing.

use std::fmt::Write as _;

/// One WebSocket text frame, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Frame<'a> {
    /// `0{…}`: the engine.io handshake.
    Open,
    /// `1`: the server closes the session.
    Close,
    /// `2…`: a heartbeat to answer with `3…`.
    Ping(&'a str),
    /// `40/ns,…`: the namespace accepted the connection.
    Connect { ns: &'a str },
    /// `44/ns,{…}`: the namespace refused the connection.
    ConnectError { ns: &'a str, body: &'a str },
    /// `41/ns,`: the server disconnected the socket from the namespace.
    Disconnect { ns: &'a str },
    /// `42/ns,[id]["name",…]`: a server event (`body` is the JSON array).
    Event {
        ns: &'a str,
        name: &'a str,
        body: &'a str,
    },
    /// `43/ns,id[…]`: the answer to one of our acked events.
    Ack { ns: &'a str, id: u64, body: &'a str },
    /// Anything else (pong, noop, binary packets, malformed text).
    Other,
}

/// Splits `[/ns,]rest` into the namespace (`/` when absent) and the rest.
fn split_ns(text: &str) -> (&str, &str) {
    if text.starts_with('/') {
        match text.find(',') {
            Some(comma) => (&text[..comma], &text[comma + 1..]),
            None => (text, ""),
        }
    } else {
        ("/", text)
    }
}

/// Splits leading ASCII digits off `text`.
fn split_id(text: &str) -> (Option<u64>, &str) {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return (None, text);
    }
    (text[..digits].parse().ok(), &text[digits..])
}

/// Classifies one text frame.
pub(crate) fn classify(text: &str) -> Frame<'_> {
    let bytes = text.as_bytes();
    match bytes.first() {
        Some(b'0') => return Frame::Open,
        Some(b'1') => return Frame::Close,
        Some(b'2') => return Frame::Ping(&text[1..]),
        Some(b'4') => {}
        _ => return Frame::Other,
    }
    let Some(&kind) = bytes.get(1) else {
        return Frame::Other;
    };
    // Both bytes are ASCII: index 2 is a char boundary.
    let (ns, rest) = split_ns(&text[2..]);
    match kind {
        b'0' => Frame::Connect { ns },
        b'1' => Frame::Disconnect { ns },
        b'4' => Frame::ConnectError { ns, body: rest },
        b'2' => {
            let (_, body) = split_id(rest);
            match event_name(body) {
                Some(name) => Frame::Event { ns, name, body },
                None => Frame::Other,
            }
        }
        b'3' => match split_id(rest) {
            (Some(id), body) => Frame::Ack { ns, id, body },
            (None, _) => Frame::Other,
        },
        _ => Frame::Other,
    }
}

/// The event name of `["name",…]` (names are plain identifiers here).
fn event_name(body: &str) -> Option<&str> {
    let rest = body.strip_prefix("[\"")?;
    let end = rest.find('"')?;
    Some(&rest[..end])
}

/// `3<data>`: the engine.io pong answering a ping that carried `data`.
pub(crate) fn pong_packet(data: &str) -> String {
    format!("3{data}")
}

/// `40/ns,{"token":"…"}`: joins namespace `ns` with a token.
pub(crate) fn connect_packet(ns: &str, token: &str) -> String {
    // Tokens are base64url and dots: nothing to escape. `recovery` asks for
    // room offsets, as generated clients do (other servers ignore it).
    format!("40{ns},{{\"token\":\"{token}\",\"recovery\":{{}}}}")
}

/// `42/ns,id["name",payload]` with `payload` already JSON.
pub(crate) fn event_packet(ns: &str, id: u64, name: &str, payload_json: &str) -> String {
    let mut out = String::with_capacity(16 + ns.len() + name.len() + payload_json.len());
    let _ = write!(out, "42{ns},{id}[\"{name}\",{payload_json}]");
    out
}

/// Whether an ack body is the success envelope (`{"success":true,…}`); the
/// key order differs between servers, so the key is searched, not the prefix.
pub(crate) fn ack_is_success(body: &str) -> bool {
    body.contains("\"success\":true")
}

/// The marker the benchmark puts in front of a message's sequence number in
/// its `content`.
pub(crate) const CONTENT_MARK: &str = "\"content\":\"b";

/// The sequence number a `new_message` carries in its content (`"b<seq>"`).
pub(crate) fn content_seq(body: &str) -> Option<u64> {
    let at = body.find(CONTENT_MARK)? + CONTENT_MARK.len();
    split_id(&body[at..]).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_what_the_servers_send() {
        assert_eq!(
            classify(r#"0{"sid":"x","pingInterval":25000}"#),
            Frame::Open
        );
        assert_eq!(classify("2"), Frame::Ping(""));
        assert_eq!(classify("2probe"), Frame::Ping("probe"));
        assert_eq!(classify("1"), Frame::Close);
        assert_eq!(
            classify(r#"40/chat,{"sid":"abc"}"#),
            Frame::Connect { ns: "/chat" }
        );
        assert_eq!(
            classify(r#"44/chat,{"message":"INVALID_TOKEN"}"#),
            Frame::ConnectError {
                ns: "/chat",
                body: r#"{"message":"INVALID_TOKEN"}"#
            }
        );
        assert_eq!(classify("41/chat,"), Frame::Disconnect { ns: "/chat" });
        let ev = r#"42/chat,["new_message",{"threadId":"t","message":{"content":"b17","id":"x"}}]"#;
        let Frame::Event { ns, name, body } = classify(ev) else {
            panic!("not an event");
        };
        assert_eq!((ns, name), ("/chat", "new_message"));
        assert_eq!(content_seq(body), Some(17));
        assert_eq!(
            classify(r#"43/chat,12[{"success":true,"data":{}}]"#),
            Frame::Ack {
                ns: "/chat",
                id: 12,
                body: r#"[{"success":true,"data":{}}]"#
            }
        );
        assert!(ack_is_success(r#"[{"data":{},"success":true}]"#));
        assert!(!ack_is_success(
            r#"[{"success":false,"code":"RATE_LIMITED"}]"#
        ));
        assert_eq!(classify(r#"42["e",1]"#), {
            Frame::Event {
                ns: "/",
                name: "e",
                body: r#"["e",1]"#,
            }
        });
        for other in ["", "3", "6", "4", "43/chat,[1]", "42/chat,{}", "9x"] {
            assert_eq!(classify(other), Frame::Other, "{other:?}");
        }
        assert_eq!(content_seq(r#"{"content":"hello"}"#), None);
    }

    #[test]
    fn encodes() {
        assert_eq!(
            connect_packet("/chat", "a.b.c"),
            r#"40/chat,{"token":"a.b.c","recovery":{}}"#
        );
        assert_eq!(
            event_packet("/chat", 7, "send_message", r#"{"a":1}"#),
            r#"42/chat,7["send_message",{"a":1}]"#
        );
    }
}
