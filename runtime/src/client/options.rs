//! [`ClientOptions`]: where to connect, how to authenticate, how to reconnect.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio_tungstenite::tungstenite::http::Uri;

use super::error::ConnectError;

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
type TokenFn = dyn Fn() -> BoxFuture<Option<String>> + Send + Sync;

/// How to connect, authenticate and reconnect.
///
/// Built with [`ClientOptions::new`] and chained setters; every setting but
/// the URL has a default matching socket.io-client's.
///
/// ```
/// # use std::time::Duration;
/// # use evcontract_runtime::client::ClientOptions;
/// let options = ClientOptions::new("http://127.0.0.1:3000")
///     .namespace("/chat")
///     .token_provider(|| async { Some("fresh-jwt".to_owned()) })
///     .reconnection_delay_max(Duration::from_secs(10));
/// ```
#[derive(Clone)]
pub struct ClientOptions {
    pub(crate) url: String,
    pub(crate) path: String,
    pub(crate) namespace: String,
    pub(crate) token: Option<Arc<TokenFn>>,
    pub(crate) reconnection: bool,
    pub(crate) reconnection_attempts: Option<u32>,
    pub(crate) reconnection_delay: Duration,
    pub(crate) reconnection_delay_max: Duration,
    pub(crate) randomization_factor: f64,
    pub(crate) ack_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) event_buffer: usize,
}

impl ClientOptions {
    /// Options for the server at `url`: `http://host:port`, `https://…`,
    /// `ws://…` or `wss://…`, without a path (the namespace goes in
    /// [`namespace`](Self::namespace), the engine.io path in
    /// [`path`](Self::path)). A query string is kept and sent on every
    /// connection.
    ///
    /// `https`/`wss` need TLS support in the WebSocket library, which this
    /// crate does not enable: they fail with [`ConnectError::Unreachable`].
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            path: "/socket.io/".to_owned(),
            namespace: "/".to_owned(),
            token: None,
            reconnection: true,
            reconnection_attempts: None,
            reconnection_delay: Duration::from_secs(1),
            reconnection_delay_max: Duration::from_secs(5),
            randomization_factor: 0.5,
            ack_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(20),
            event_buffer: 1024,
        }
    }

    /// The engine.io path on the server (default `/socket.io/`).
    #[must_use]
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// The socket.io namespace to join (default `/`); a missing leading `/`
    /// is added.
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Sends this token in the handshake as `auth: {"token": …}` on every
    /// connection attempt.
    #[must_use]
    pub fn token(self, token: impl Into<String>) -> Self {
        let token = token.into();
        self.token_fn(move || Some(token.clone()))
    }

    /// Calls `provider` on every connection attempt (the first one and each
    /// reconnection) and sends its token as `auth: {"token": …}`; `None`
    /// sends no auth payload. Use it to refresh expired tokens.
    #[must_use]
    pub fn token_fn<F>(self, provider: F) -> Self
    where
        F: Fn() -> Option<String> + Send + Sync + 'static,
    {
        self.token_provider(move || std::future::ready(provider()))
    }

    /// Like [`token_fn`](Self::token_fn) with an async provider (for example
    /// one that calls a token refresh endpoint). Its time counts in the
    /// connect timeout.
    #[must_use]
    pub fn token_provider<F, Fut>(mut self, provider: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Option<String>> + Send + 'static,
    {
        self.token = Some(Arc::new(move || Box::pin(provider())));
        self
    }

    /// Whether to reconnect after the connection is lost (default `true`).
    #[must_use]
    pub fn reconnection(mut self, enabled: bool) -> Self {
        self.reconnection = enabled;
        self
    }

    /// How many reconnection attempts in a row before giving up (default
    /// `None`: never give up).
    #[must_use]
    pub fn reconnection_attempts(mut self, attempts: Option<u32>) -> Self {
        self.reconnection_attempts = attempts;
        self
    }

    /// The delay before the first reconnection attempt (default 1 s); it
    /// doubles with every failed attempt, with jitter.
    #[must_use]
    pub fn reconnection_delay(mut self, delay: Duration) -> Self {
        self.reconnection_delay = delay;
        self
    }

    /// The longest delay between two reconnection attempts (default 5 s).
    #[must_use]
    pub fn reconnection_delay_max(mut self, delay: Duration) -> Self {
        self.reconnection_delay_max = delay;
        self
    }

    /// The jitter of the reconnection delay, between 0 and 1 (default 0.5:
    /// each delay is moved by up to ±50 %).
    #[must_use]
    pub fn randomization_factor(mut self, factor: f64) -> Self {
        self.randomization_factor = if factor.is_finite() {
            factor.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// How long [`Client::emit_with_ack`](super::Client::emit_with_ack)
    /// waits for the answer (default 10 s).
    #[must_use]
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.ack_timeout = timeout;
        self
    }

    /// How long one connection attempt may take, from calling the token
    /// provider to the namespace's answer (default 20 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How many server events are kept for a slow subscriber before it starts
    /// missing the oldest ones (default 1024, between 1 and 65 536). See
    /// [`Client::subscribe`](super::Client::subscribe).
    #[must_use]
    pub fn event_buffer(mut self, capacity: usize) -> Self {
        self.event_buffer = capacity.clamp(1, 1 << 16);
        self
    }

    /// The WebSocket URL and the normalized namespace.
    pub(crate) fn endpoint(&self) -> Result<Endpoint, ConnectError> {
        let bad = |why: &str| ConnectError::Config(format!("URL `{}`: {why}", self.url));
        let uri: Uri = self.url.parse().map_err(|_| bad("not a valid URL"))?;
        let scheme = match uri.scheme_str() {
            Some("http" | "ws") => "ws",
            Some("https" | "wss") => "wss",
            _ => return Err(bad("the scheme must be http, https, ws or wss")),
        };
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        if !matches!(uri.path(), "" | "/") {
            return Err(bad(
                "has a path; set the namespace with `namespace` and the engine.io path with `path`",
            ));
        }
        let path = with_leading_slash(&self.path);
        let mut query = String::new();
        if let Some(q) = uri.query().filter(|q| !q.is_empty()) {
            query.push_str(q);
            query.push('&');
        }
        query.push_str("EIO=4&transport=websocket");
        Ok(Endpoint {
            url: format!("{scheme}://{authority}{path}?{query}"),
            namespace: Arc::from(with_leading_slash(&self.namespace)),
        })
    }
}

/// `s` with a leading `/` (added when missing).
fn with_leading_slash(s: &str) -> String {
    if s.starts_with('/') {
        s.to_owned()
    } else {
        format!("/{s}")
    }
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("url", &self.url)
            .field("path", &self.path)
            .field("namespace", &self.namespace)
            // Never print a token.
            .field("token", &self.token.as_ref().map(|_| "<provider>"))
            .field("reconnection", &self.reconnection)
            .field("reconnection_attempts", &self.reconnection_attempts)
            .field("reconnection_delay", &self.reconnection_delay)
            .field("reconnection_delay_max", &self.reconnection_delay_max)
            .field("randomization_factor", &self.randomization_factor)
            .field("ack_timeout", &self.ack_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("event_buffer", &self.event_buffer)
            .finish()
    }
}

/// Where to connect, computed from the options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) url: String,
    pub(crate) namespace: Arc<str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = ClientOptions::new("http://127.0.0.1:3000")
            .namespace("chat")
            .endpoint()
            .unwrap();
        assert_eq!(
            e.url,
            "ws://127.0.0.1:3000/socket.io/?EIO=4&transport=websocket"
        );
        assert_eq!(&*e.namespace, "/chat");
        let e = ClientOptions::new("wss://example.com/?v=2")
            .path("/io")
            .endpoint()
            .unwrap();
        assert_eq!(e.url, "wss://example.com/io?v=2&EIO=4&transport=websocket");
        assert_eq!(&*e.namespace, "/");
        for bad in ["ftp://x", "http://x/chat", "not a url", "/relative"] {
            assert!(matches!(
                ClientOptions::new(bad).endpoint(),
                Err(ConnectError::Config(_))
            ));
        }
    }

    #[test]
    fn debug_hides_token() {
        let o = ClientOptions::new("http://x").token("secret");
        assert!(!format!("{o:?}").contains("secret"));
    }
}
