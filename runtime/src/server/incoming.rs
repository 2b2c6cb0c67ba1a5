//! [`IncomingEvent`]: an event as it comes off the wire (name, payload as
//! raw JSON text, idempotency key, ack), extracted without decoding the
//! payload, so that an event whose payload does not decode still gets an
//! answer.

use std::convert::Infallible;
use std::sync::Arc;

use serde::de::{self, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;
use socketioxide::extract::AckSender;
use socketioxide::handler::{FromMessageParts, Value as SioValue};
use socketioxide::socket::Socket;

use super::adapter::GatewayAdapter;
use super::idempotency::MAX_IDEMPOTENCY_KEY_BYTES;
use crate::wire::EventError;
use socketioxide_core::Str;
use std::ops::Range;

/// The raw incoming event: name, first argument as raw JSON (a missing
/// argument is `null`; further arguments are ignored) and the ack.
///
/// Deliberately not socketioxide's `Data<T>`, which drops events whose payload
/// fails to deserialize without answering.
pub(super) struct IncomingEvent<A: GatewayAdapter> {
    pub(super) name: String,
    pub(super) payload: RawPayload,
    /// The idempotency key of the extra last argument
    /// (`{"idempotencyKey": "…"}`), or why it is refused.
    pub(super) key: Option<Result<String, String>>,
    /// Kept to build an [`AckSender`] per send attempt (it is consumed by a
    /// send, also a failed one).
    pub(super) socket: Arc<Socket<A>>,
    pub(super) ack_id: Option<i64>,
}

impl<A: GatewayAdapter> IncomingEvent<A> {
    pub(super) fn ack_sender(&self) -> AckSender<A> {
        // The value argument is not read by `AckSender`'s extractor.
        let mut unused = SioValue::Str("".into(), None);
        match AckSender::from_message_parts(&self.socket, &mut unused, &self.ack_id) {
            Ok(ack) => ack,
            Err(never) => match never {},
        }
    }
}

impl<A: GatewayAdapter> FromMessageParts<A> for IncomingEvent<A> {
    type Error = Infallible;

    fn from_message_parts(
        socket: &Arc<Socket<A>>,
        value: &mut SioValue,
        ack_id: &Option<i64>,
    ) -> Result<Self, Infallible> {
        let (name, payload, key) = match value {
            SioValue::Str(data, _) => match serde_json::from_str::<EventHead<'_>>(data) {
                Ok(EventHead(name, None, _)) => (name, RawPayload::Missing, None),
                Ok(EventHead(name, Some(raw), last)) => {
                    // `raw` is a slice of `data`: keep its place, not a copy.
                    let start = raw.get().as_ptr() as usize - data.as_ptr() as usize;
                    let range = start..start + raw.get().len();
                    let text = data.clone();
                    let key = last.and_then(idempotency_key);
                    (name, RawPayload::Text { text, range }, key)
                }
                Err(err) => (String::new(), RawPayload::Unreadable(err.to_string()), None),
            },
            SioValue::Bytes(_) => (
                String::new(),
                RawPayload::Unreadable("binary packets are not supported".to_owned()),
                None,
            ),
        };
        Ok(Self {
            name,
            payload,
            key,
            socket: socket.clone(),
            ack_id: *ack_id,
        })
    }
}

/// The payload of an incoming event, still as text.
pub(super) enum RawPayload {
    /// No payload argument: `null`.
    Missing,
    /// The payload's JSON text, `text[range]` (the frame is shared, not copied).
    Text { text: Str, range: Range<usize> },
    /// The frame is not an event array.
    Unreadable(String),
}

impl RawPayload {
    /// Size of the payload's JSON text in bytes.
    pub(super) fn len(&self) -> usize {
        match self {
            Self::Text { range, .. } => range.len(),
            Self::Missing | Self::Unreadable(_) => 0,
        }
    }

    /// The payload's JSON text (`null` when there is none), borrowed from
    /// the frame.
    pub(super) fn text(&self) -> Result<&str, EventError> {
        match self {
            Self::Missing => Ok("null"),
            Self::Text { text, range } => Ok(&text[range.clone()]),
            Self::Unreadable(reason) => Err(EventError::invalid_payload("", reason.clone())),
        }
    }
}

/// `["event", payload?, ...ignored]`, the payload left as raw JSON text
/// (borrowed from the frame): its size is checked against the event's
/// budget before it is parsed, and a payload that fails to parse is an
/// `INVALID_PAYLOAD` of that event, not an unreadable frame.
pub(super) struct EventHead<'a>(String, Option<&'a RawValue>, Option<&'a RawValue>);

impl<'de> de::Deserialize<'de> for EventHead<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EventHead<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an event array [name, payload?]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<EventHead<'de>, A::Error> {
                let name: String = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("missing event name"))?;
                let payload: Option<&'de RawValue> = seq.next_element()?;
                let mut last = None;
                while let Some(arg) = seq.next_element::<&'de RawValue>()? {
                    last = Some(arg);
                }
                Ok(EventHead(name, payload, last))
            }
        }
        deserializer.deserialize_seq(V)
    }
}

/// The key of an `{"idempotencyKey": "…"}` argument: `None` when the
/// argument is something else (plain Socket.IO clients may send more
/// arguments; they are ignored as before).
fn idempotency_key(arg: &RawValue) -> Option<Result<String, String>> {
    #[derive(serde::Deserialize)]
    struct Keyed {
        #[serde(rename = "idempotencyKey")]
        key: Value,
    }
    let Keyed { key } = serde_json::from_str(arg.get()).ok()?;
    Some(match key.as_str() {
        Some(k) if !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY_BYTES => Ok(k.to_owned()),
        _ => Err(format!(
            "the idempotency key must be a string of 1 to {MAX_IDEMPOTENCY_KEY_BYTES} bytes"
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_head_parsing() {
        let EventHead(name, payload, _) = serde_json::from_str(r#"["ev"]"#).unwrap();
        assert_eq!((name.as_str(), payload.map(RawValue::get)), ("ev", None));
        let EventHead(name, payload, last) =
            serde_json::from_str(r#"["ev", {"a": 1}, 2, [3]]"#).unwrap();
        assert_eq!(last.map(RawValue::get), Some("[3]"));
        assert_eq!(
            (name.as_str(), payload.map(RawValue::get)),
            ("ev", Some(r#"{"a": 1}"#))
        );
        // A number out of f64's range is still read as text: the event is
        // known, its payload is the one that is invalid.
        let EventHead(name, payload, _) =
            serde_json::from_str(r#"["send", {"threadId": 1e999}]"#).unwrap();
        assert_eq!(name, "send");
        assert!(serde_json::from_str::<Value>(payload.unwrap().get()).is_err());
        assert!(serde_json::from_str::<EventHead<'_>>("[]").is_err());
        assert!(serde_json::from_str::<EventHead<'_>>("[1]").is_err());
    }
}
