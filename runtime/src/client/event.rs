//! Events the server sends, and answers to the ones that wait for an ack.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use serde::Serialize;
use serde_json::Value;

use super::error::ClientError;
use super::protocol;

/// An event the server sent on the client's namespace.
#[derive(Debug, Clone)]
pub struct ServerEvent {
    /// The event name.
    pub name: String,
    /// The event's (first) argument; `null` when the server sent none.
    pub payload: Value,
    /// Further arguments (plain Socket.IO servers may send several;
    /// evcontract servers never do).
    pub extra: Vec<Value>,
    /// Present when the server emitted with an ack and waits for an answer.
    pub ack: Option<AckResponder>,
}

impl ServerEvent {
    pub(crate) fn new(name: String, args: Vec<Value>, ack: Option<AckResponder>) -> Self {
        let mut args = args.into_iter();
        let payload = args.next().unwrap_or(Value::Null);
        Self {
            name,
            payload,
            extra: args.collect(),
            ack,
        }
    }

    /// Deserializes the payload into its contract type; a mismatch is an
    /// `INVALID_PAYLOAD` [`EventError`](crate::wire::EventError) with the JSON
    /// pointer of the offending value.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, crate::wire::EventError> {
        crate::wire::decode_payload(&self.payload)
    }
}

/// Answers a server event that waits for an ack.
///
/// Clones share one answer: the first [`send`](Self::send) wins, later ones
/// fail with [`ClientError::AlreadyAnswered`]. If nobody answers, the
/// server's own ack timeout applies; the connection is not affected.
#[derive(Clone)]
pub struct AckResponder {
    inner: Arc<AckInner>,
}

/// Where the answer to a server event goes: the connection it came on
/// (implemented by the connection; this module does not know it).
pub(crate) trait AckSink: Send + Sync {
    /// The namespace of the connection.
    fn namespace(&self) -> &str;
    /// Hands a text frame to the connection.
    fn send_text(&self, text: String) -> BoxedSend<'_>;
}

/// The future of [`AckSink::send_text`].
pub(crate) type BoxedSend<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), ClientError>> + Send + 'a>>;

struct AckInner {
    id: u64,
    conn: Weak<dyn AckSink>,
    answered: AtomicBool,
}

impl AckResponder {
    pub(crate) fn new<S: AckSink + 'static>(conn: &Arc<S>, id: u64) -> Self {
        let conn: Weak<dyn AckSink> = Arc::downgrade(conn) as Weak<dyn AckSink>;
        Self {
            inner: Arc::new(AckInner {
                id,
                conn,
                answered: AtomicBool::new(false),
            }),
        }
    }

    /// The ack id the server chose.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// Whether an answer was already sent.
    pub fn is_answered(&self) -> bool {
        self.inner.answered.load(Ordering::Acquire)
    }

    /// Sends `payload` as the ack's single argument. Fails with
    /// [`ClientError::Disconnected`] if the connection the event came on is
    /// gone (the answer cannot go to another connection).
    pub async fn send<T: Serialize + ?Sized>(&self, payload: &T) -> Result<(), ClientError> {
        let conn = self.inner.conn.upgrade().ok_or(ClientError::Disconnected)?;
        let text = protocol::encode_ack(conn.namespace(), self.inner.id, payload)
            .map_err(|e| ClientError::Encode(e.to_string()))?;
        if self.inner.answered.swap(true, Ordering::AcqRel) {
            return Err(ClientError::AlreadyAnswered);
        }
        conn.send_text(text).await
    }
}

impl fmt::Debug for AckResponder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AckResponder")
            .field("id", &self.inner.id)
            .field("answered", &self.is_answered())
            .finish()
    }
}
