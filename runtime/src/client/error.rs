//! Error types of the client.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::wire::{EventError, codes};

/// A transport failure (TCP, WebSocket handshake, I/O), cheap to clone.
///
/// Opaque so that the public API does not expose the WebSocket library's
/// error type; [`Display`](fmt::Display) shows the underlying error.
#[derive(Clone)]
pub struct TransportError(Arc<dyn std::error::Error + Send + Sync>);

impl TransportError {
    pub(crate) fn new(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Arc::new(err))
    }

    pub(crate) fn msg(msg: impl Into<String>) -> Self {
        Self(Arc::new(Message(msg.into())))
    }

    /// The same error, saying which node it happened on (with several URLs,
    /// "connection refused" alone does not say which node is down).
    pub(crate) fn at_url(self, url: &str) -> Self {
        Self(Arc::new(AtUrl {
            url: url.to_owned(),
            inner: self,
        }))
    }
}

/// A transport error on the node at `url`.
#[derive(Debug)]
struct AtUrl {
    url: String,
    inner: TransportError,
}

impl fmt::Display for AtUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.url, self.inner)
    }
}

impl std::error::Error for AtUrl {
    // Like `TransportError`: the inner error's text is already in ours, so
    // the chain goes on with its source.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.inner)
    }
}

#[derive(Debug)]
struct Message(String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Message {}

impl fmt::Debug for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Why [`Client::connect`](super::Client::connect) (or a reconnection
/// attempt) failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The namespace refused the connection with `AUTH_REQUIRED`: no token
    /// was sent, and the namespace needs one.
    #[error("connection refused: authentication required ({message})")]
    AuthRequired {
        /// The server's `connect_error` message.
        message: String,
    },
    /// The namespace refused the connection with `INVALID_TOKEN`.
    #[error("connection refused: invalid token ({message})")]
    InvalidToken {
        /// The server's `connect_error` message.
        message: String,
    },
    /// The namespace refused the connection with `CONTRACT_MISMATCH`: this
    /// client was generated from another major version of the contract than
    /// the server's (the message names both). Regenerate, or upgrade.
    #[error("connection refused: contract version mismatch ({message})")]
    ContractMismatch {
        /// The server's `connect_error` message.
        message: String,
    },
    /// The namespace refused the connection for another reason (a
    /// middleware error, or `Invalid namespace` for an unknown namespace).
    #[error("connection refused by the server: {message}")]
    Refused {
        /// The server's `connect_error` message.
        message: String,
        /// The `data` the server attached to the refusal, if any (Node.js
        /// servers set it from `err.data`; socketioxide never does).
        data: Option<Value>,
    },
    /// The server could not be reached, the WebSocket handshake failed, or
    /// the connection closed before the namespace answered.
    #[error("server unreachable: {0}")]
    Unreachable(TransportError),
    /// The TLS handshake with an `https`/`wss` node failed: its certificate
    /// is not trusted (unknown issuer: add the CA with
    /// [`ClientOptions::add_root_certificate_pem`](super::ClientOptions::add_root_certificate_pem)),
    /// has expired, or names another host; the message says which.
    #[error("TLS failed: {0}")]
    Tls(TransportError),
    /// The namespace did not answer within the connect timeout.
    #[error("connect timed out")]
    Timeout,
    /// The server does not speak engine.io v4 / socket.io v5 as expected.
    #[error("protocol error during connect: {0}")]
    Protocol(String),
    /// The options are invalid (bad URL, …) or no Tokio runtime is running.
    #[error("invalid client configuration: {0}")]
    Config(String),
}

impl ConnectError {
    /// Whether the failure is the node's (down, silent, not speaking
    /// socket.io), so that another node of the deployment may do better. A
    /// refusal is the application's answer, the same on every node.
    pub(crate) fn is_node_failure(&self) -> bool {
        matches!(
            self,
            Self::Unreachable(_) | Self::Tls(_) | Self::Timeout | Self::Protocol(_)
        )
    }

    /// The same error, naming the node (`url`) where that helps: transport
    /// and protocol failures.
    pub(crate) fn at_url(self, url: &str) -> Self {
        match self {
            Self::Unreachable(err) => Self::Unreachable(err.at_url(url)),
            Self::Tls(err) => Self::Tls(err.at_url(url)),
            Self::Protocol(message) => Self::Protocol(format!("`{url}`: {message}")),
            other => other,
        }
    }

    /// Maps the data of a socket.io `CONNECT_ERROR` packet.
    ///
    /// socket.io v5 sends `{"message": …, "data"?: …}`; a bare string (v4
    /// servers) is taken as the message. The built-in codes are recognised
    /// when the message is the code itself (`AUTH_REQUIRED`), starts with
    /// `CODE:` (an [`EventError`]'s `Display`), or when `data.code` is one.
    pub(crate) fn from_connect_error(data: Option<Value>) -> Self {
        let (message, extra) = match data {
            Some(Value::Object(mut obj)) => {
                let message = match obj.remove("message") {
                    Some(Value::String(s)) => s,
                    Some(other) => other.to_string(),
                    None => String::new(),
                };
                (message, obj.remove("data"))
            }
            Some(Value::String(s)) => (s, None),
            Some(other) => (other.to_string(), None),
            None => (String::new(), None),
        };
        let data_code = extra
            .as_ref()
            .and_then(|d| d.get("code"))
            .and_then(Value::as_str);
        let is = |code: &str| {
            let m = message.trim();
            m == code
                || m.strip_prefix(code)
                    .is_some_and(|rest| rest.starts_with(':'))
                || data_code == Some(code)
        };
        if is(codes::AUTH_REQUIRED) {
            Self::AuthRequired { message }
        } else if is(codes::INVALID_TOKEN) {
            Self::InvalidToken { message }
        } else if is(codes::CONTRACT_MISMATCH) {
            Self::ContractMismatch { message }
        } else {
            Self::Refused {
                message,
                data: extra,
            }
        }
    }
}

/// Why an emit failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No answer within the ack timeout.
    #[error("no ack within the timeout")]
    Timeout,
    /// Not connected when emitting (including while reconnecting), or the
    /// connection was lost before the answer arrived.
    #[error("not connected, or the connection was lost before the answer")]
    Disconnected,
    /// The server answered with a failure envelope
    /// `{"success": false, "code", "message", "details"?}`.
    #[error("server error {0}")]
    Server(EventError),
    /// The answer is not what was expected (not an ack envelope, wrong data
    /// type, binary attachments, no argument).
    #[error("malformed answer: {0}")]
    Decode(String),
    /// The payload could not be serialized to JSON.
    #[error("cannot encode the payload: {0}")]
    Encode(String),
    /// This server ack was already answered.
    #[error("this ack was already answered")]
    AlreadyAnswered,
    /// As many sends as [`ClientOptions::send_queue`](super::ClientOptions::send_queue)
    /// allows are waiting for a connection already.
    #[error("{0} sends are waiting already (ClientOptions::send_queue)")]
    QueueFull(usize),
}

impl ClientError {
    /// The error code if the server answered with a failure envelope.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Server(err) => Some(&err.code),
            _ => None,
        }
    }
}

/// Why an established connection ended.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// No ping from the server within `pingInterval + pingTimeout`: the
    /// server or the network is dead.
    #[error("ping timeout: no ping from the server within pingInterval + pingTimeout")]
    PingTimeout,
    /// The server closed the transport (engine.io close, WebSocket close, EOF).
    #[error("the server closed the connection")]
    TransportClosed,
    /// Reading or writing the WebSocket failed.
    #[error("transport error: {0}")]
    TransportError(TransportError),
    /// The server removed this client from the namespace (socket.io
    /// `DISCONNECT`). Like socket.io-client, this does not reconnect.
    #[error("the server disconnected this client from the namespace")]
    ServerDisconnect,
    /// [`Client::disconnect`](super::Client::disconnect) was called, or every
    /// handle to the client was dropped.
    #[error("disconnected by the client")]
    ClientDisconnect,
}

/// The last connection problem, see [`Client::last_error`](super::Client::last_error).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// A reconnection attempt failed.
    #[error("reconnection attempt failed: {0}")]
    Connect(ConnectError),
    /// The established connection was lost.
    #[error("connection lost: {0}")]
    Lost(DisconnectReason),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn connect_error_classification() {
        let e = ConnectError::from_connect_error(Some(json!({"message": "AUTH_REQUIRED"})));
        assert!(matches!(e, ConnectError::AuthRequired { .. }));
        let e = ConnectError::from_connect_error(Some(
            json!({"message": "INVALID_TOKEN: token expired"}),
        ));
        assert!(
            matches!(e, ConnectError::InvalidToken { ref message } if message == "INVALID_TOKEN: token expired")
        );
        let e = ConnectError::from_connect_error(Some(
            json!({"message": "nope", "data": {"code": "INVALID_TOKEN"}}),
        ));
        assert!(matches!(e, ConnectError::InvalidToken { .. }));
        let e = ConnectError::from_connect_error(Some(json!("AUTH_REQUIRED")));
        assert!(matches!(e, ConnectError::AuthRequired { .. }));
        let e = ConnectError::from_connect_error(Some(json!({
            "message": "CONTRACT_MISMATCH: the client speaks contract chat 1.2.0, this server chat 2.0.0"
        })));
        assert!(
            matches!(e, ConnectError::ContractMismatch { ref message } if message.contains("chat 2.0.0"))
        );
        let e = ConnectError::from_connect_error(Some(json!({"message": "INVALID_TOKENS"})));
        assert!(matches!(e, ConnectError::Refused { .. }));
        let e = ConnectError::from_connect_error(Some(
            json!({"message": "Invalid namespace", "data": {"x": 1}}),
        ));
        assert!(
            matches!(e, ConnectError::Refused { ref message, data: Some(_) } if message == "Invalid namespace")
        );
        let e = ConnectError::from_connect_error(None);
        assert!(matches!(e, ConnectError::Refused { .. }));
    }

    #[test]
    fn node_failures_name_the_node() {
        let e = ConnectError::Unreachable(TransportError::msg("refused")).at_url("http://a:1");
        assert!(e.is_node_failure());
        assert_eq!(e.to_string(), "server unreachable: `http://a:1`: refused");
        let e = ConnectError::Protocol("garbage".to_owned()).at_url("http://a:1");
        assert_eq!(
            e.to_string(),
            "protocol error during connect: `http://a:1`: garbage"
        );
        assert!(ConnectError::Timeout.is_node_failure());
        let refusal = ConnectError::InvalidToken {
            message: "INVALID_TOKEN".to_owned(),
        };
        assert!(!refusal.is_node_failure());
        assert!(
            !refusal
                .at_url("http://a:1")
                .to_string()
                .contains("http://a:1")
        );
    }
}
