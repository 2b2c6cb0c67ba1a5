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
///
/// Several gateway nodes: give the others with
/// [`fallback_urls`](Self::fallback_urls); the client fails over between
/// them.
#[derive(Clone)]
pub struct ClientOptions {
    pub(crate) url: String,
    pub(crate) fallback_urls: Vec<String>,
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
    pub(crate) tls_roots: TlsRoots,
    pub(crate) root_ca_pems: Vec<Vec<u8>>,
    pub(crate) contract: Option<(&'static str, &'static str)>,
    pub(crate) recovery: bool,
    pub(crate) gap_wait: Duration,
    pub(crate) retry_for: Duration,
    pub(crate) send_queue: usize,
    pub(crate) max_held_events: usize,
}

/// Default [`ClientOptions::retry_for`]: 30 s.
pub const DEFAULT_RETRY_FOR: Duration = Duration::from_secs(30);

/// Default [`ClientOptions::send_queue`]: 256 sends.
pub const DEFAULT_SEND_QUEUE: usize = 256;

/// Default [`ClientOptions::max_held_events`]: 1,024.
pub const DEFAULT_MAX_HELD_EVENTS: usize = 1024;

/// Default [`ClientOptions::gap_wait`]: 1 s.
pub const DEFAULT_GAP_WAIT: Duration = Duration::from_secs(1);

/// Which certificate authorities a `wss://` (or `https://`) server's
/// certificate is checked against (feature `tls`), before the ones added with
/// [`ClientOptions::add_root_certificate_pem`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TlsRoots {
    /// The operating system's trusted roots (read with
    /// `rustls-native-certs`); when it has none (a minimal container
    /// without a CA bundle), Mozilla's roots instead. The default.
    #[default]
    Platform,
    /// Mozilla's roots, compiled into the program (`webpki-roots`): the same
    /// answer on every machine.
    WebPki,
    /// None: only the certificates added with
    /// [`add_root_certificate_pem`](ClientOptions::add_root_certificate_pem)
    /// (a private deployment with its own CA).
    None,
}

impl ClientOptions {
    /// Options for the server at `url`: `http://host:port`, `https://…`,
    /// `ws://…` or `wss://…`, without a path (the namespace goes in
    /// [`namespace`](Self::namespace), the engine.io path in
    /// [`path`](Self::path)). A query string is kept and sent on every
    /// connection.
    ///
    /// `https`/`wss` use TLS (rustls; feature `tls`, on by default): the
    /// server's certificate is checked against [`tls_roots`](Self::tls_roots)
    /// and the CAs added with
    /// [`add_root_certificate_pem`](Self::add_root_certificate_pem), and a
    /// certificate the client does not trust fails with
    /// [`ConnectError::Tls`]. Without the feature they fail with
    /// [`ConnectError::Config`].
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            fallback_urls: Vec::new(),
            path: "/socket.io/".to_owned(),
            namespace: "/".to_owned(),
            token: None,
            contract: None,
            recovery: true,
            gap_wait: DEFAULT_GAP_WAIT,
            retry_for: DEFAULT_RETRY_FOR,
            send_queue: DEFAULT_SEND_QUEUE,
            max_held_events: DEFAULT_MAX_HELD_EVENTS,
            reconnection: true,
            reconnection_attempts: None,
            reconnection_delay: Duration::from_secs(1),
            reconnection_delay_max: Duration::from_secs(5),
            randomization_factor: 0.5,
            ack_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(20),
            event_buffer: 1024,
            tls_roots: TlsRoots::default(),
            root_ca_pems: Vec::new(),
        }
    }

    /// Which roots a TLS server's certificate is checked against (default
    /// [`TlsRoots::Platform`]).
    #[must_use]
    pub fn tls_roots(mut self, roots: TlsRoots) -> Self {
        self.tls_roots = roots;
        self
    }

    /// Trusts the certificate authorities in `pem` (one or more `CERTIFICATE`
    /// blocks) for `https`/`wss` URLs, besides [`tls_roots`](Self::tls_roots):
    /// a private deployment's own CA. May be called several times. A PEM
    /// that holds no valid certificate makes
    /// [`Client::connect`](super::Client::connect) fail with
    /// [`ConnectError::Config`].
    ///
    /// ```no_run
    /// # use evcontract_runtime::client::{ClientOptions, TlsRoots};
    /// let ca = std::fs::read("internal-ca.pem").unwrap();
    /// let options = ClientOptions::new("https://gw.internal:3000")
    ///     .tls_roots(TlsRoots::None)
    ///     .add_root_certificate_pem(ca);
    /// ```
    #[must_use]
    pub fn add_root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_ca_pems.push(pem.into());
        self
    }

    /// Whether any node is reached over TLS.
    pub(crate) fn uses_tls(endpoints: &Endpoints) -> bool {
        endpoints
            .nodes
            .iter()
            .any(|n| n.ws_url.starts_with("wss://"))
    }

    /// Other nodes of the same deployment, tried after the URL given to
    /// [`new`](Self::new), in this order (replaces any list set before).
    /// Each is written and validated like that URL; they share the
    /// namespace, the engine.io path and every other option.
    ///
    /// - [`Client::connect`](super::Client::connect) tries the URLs in
    ///   order and moves on to the next one at once when a node is down:
    ///   unreachable, refusing TCP or the WebSocket handshake, closing during
    ///   the handshake, not speaking engine.io, or silent for
    ///   [`connect_timeout`](Self::connect_timeout) (which bounds each URL's
    ///   try). The error of the last URL is returned when none answered.
    /// - A refusal by the namespace (`AUTH_REQUIRED`, `INVALID_TOKEN`, a
    ///   middleware error) is the application's answer, the same on every
    ///   node: it is not a reason to try another one.
    /// - After a lost connection, each reconnection attempt goes round the
    ///   URLs once, starting with the one *after* the node that was lost, so
    ///   that a dead node is tried last. One round counts as one attempt for
    ///   the backoff and [`reconnection_attempts`](Self::reconnection_attempts).
    ///
    /// [`Client::current_url`](super::Client::current_url) tells which node
    /// the client is on.
    ///
    /// ```
    /// # use evcontract_runtime::client::ClientOptions;
    /// let options = ClientOptions::new("http://gw-1.internal:3000")
    ///     .fallback_urls(["http://gw-2.internal:3000", "http://gw-3.internal:3000"])
    ///     .namespace("/chat");
    /// ```
    #[must_use]
    pub fn fallback_urls<I>(mut self, urls: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.fallback_urls = urls.into_iter().map(Into::into).collect();
        self
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

    /// Whether the client asks for room offsets and resumes its rooms
    /// after a reconnection (default `true`): it names in every handshake
    /// the last offset it has of each room with history
    /// (`auth.recovery`), and the server sends what it missed (see
    /// [`Client::room_positions`](super::Client::room_positions)). Servers
    /// without history ignore it.
    #[must_use]
    pub fn recovery(mut self, on: bool) -> Self {
        self.recovery = on;
        self
    }

    /// How long a send of an idempotent event (see
    /// [`Client::emit_idempotent`](super::Client::emit_idempotent)) is
    /// retried, waiting for a connection when there is none, before it
    /// fails with [`ClientError::Timeout`](super::ClientError::Timeout)
    /// (default 30 s, [`DEFAULT_RETRY_FOR`]).
    #[must_use]
    pub fn retry_for(mut self, retry_for: Duration) -> Self {
        self.retry_for = retry_for;
        self
    }

    /// Most idempotent sends waiting at once for a connection while the
    /// client reconnects (default 256, [`DEFAULT_SEND_QUEUE`]); one more
    /// fails at once with
    /// [`ClientError::QueueFull`](super::ClientError::QueueFull).
    #[must_use]
    pub fn send_queue(mut self, sends: usize) -> Self {
        self.send_queue = sends.max(1);
        self
    }

    /// Most events of one room held while an earlier one is missing
    /// (default 1,024, [`DEFAULT_MAX_HELD_EVENTS`]); one more and the client
    /// stops waiting: the app is told of the gap (a position with
    /// `recovered: false`, reason `dropped`) and gets the held events.
    #[must_use]
    pub fn max_held_events(mut self, events: usize) -> Self {
        self.max_held_events = events.max(1);
        self
    }

    /// How long an event of a room waits for an earlier one that has not
    /// arrived before the client asks the server for it (default 1 s, see
    /// [`DEFAULT_GAP_WAIT`]). On several nodes, events of one room sent
    /// from two nodes can arrive out of order, and a node can die after
    /// keeping an event but before sending it; the client holds the later
    /// events (at most [`max_held_events`](Self::max_held_events) per room) meanwhile, so the app sees every
    /// room in order.
    #[must_use]
    pub fn gap_wait(mut self, wait: Duration) -> Self {
        self.gap_wait = wait;
        self
    }

    /// Names the contract this client was generated from in the handshake
    /// (`auth: {"contract": {"name", "version"}}`); the server refuses
    /// another major version with `CONTRACT_MISMATCH`
    /// ([`ConnectError::ContractMismatch`](super::ConnectError::ContractMismatch)).
    /// Generated clients set it themselves.
    #[must_use]
    pub fn contract(mut self, name: &'static str, version: &'static str) -> Self {
        self.contract = Some((name, version));
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
    /// `None`: never give up). One attempt tries every URL once (see
    /// [`fallback_urls`](Self::fallback_urls)).
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

    /// How long one connection attempt to one URL may take, from calling the
    /// token provider to the namespace's answer (default 20 s). With
    /// [`fallback_urls`](Self::fallback_urls), a node that times out is
    /// followed by the next URL, each with this timeout of its own.
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

    /// The WebSocket URL of every node, in order, and the normalized
    /// namespace; the first invalid URL is a [`ConnectError::Config`] naming
    /// it.
    pub(crate) fn endpoints(&self) -> Result<Endpoints, ConnectError> {
        let nodes = std::iter::once(&self.url)
            .chain(&self.fallback_urls)
            .map(|url| self.node(url))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Endpoints {
            namespace: Arc::from(with_leading_slash(&self.namespace)),
            nodes,
        })
    }

    /// One node's WebSocket URL.
    fn node(&self, url: &str) -> Result<Node, ConnectError> {
        let bad = |why: &str| ConnectError::Config(format!("URL `{url}`: {why}"));
        let uri: Uri = url.parse().map_err(|_| bad("not a valid URL"))?;
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
        Ok(Node {
            url: url.to_owned(),
            ws_url: format!("{scheme}://{authority}{path}?{query}"),
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
            .field("fallback_urls", &self.fallback_urls)
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
            .field("tls_roots", &self.tls_roots)
            .field("root_ca_pems", &self.root_ca_pems.len())
            .finish()
    }
}

/// Where to connect, computed from the options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoints {
    pub(crate) namespace: Arc<str>,
    /// The URL given to [`ClientOptions::new`], then the fallbacks; never
    /// empty.
    pub(crate) nodes: Vec<Node>,
}

/// One gateway node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    /// As the user wrote it: what errors and
    /// [`Client::current_url`](super::Client::current_url) show.
    pub(crate) url: String,
    /// The WebSocket URL, with engine.io's query.
    pub(crate) ws_url: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = ClientOptions::new("http://127.0.0.1:3000")
            .namespace("chat")
            .endpoints()
            .unwrap();
        assert_eq!(e.nodes.len(), 1);
        assert_eq!(e.nodes[0].url, "http://127.0.0.1:3000");
        assert_eq!(
            e.nodes[0].ws_url,
            "ws://127.0.0.1:3000/socket.io/?EIO=4&transport=websocket"
        );
        assert_eq!(&*e.namespace, "/chat");
        let e = ClientOptions::new("wss://example.com/?v=2")
            .path("/io")
            .endpoints()
            .unwrap();
        assert_eq!(
            e.nodes[0].ws_url,
            "wss://example.com/io?v=2&EIO=4&transport=websocket"
        );
        assert_eq!(&*e.namespace, "/");
        for bad in ["ftp://x", "http://x/chat", "not a url", "/relative"] {
            assert!(matches!(
                ClientOptions::new(bad).endpoints(),
                Err(ConnectError::Config(_))
            ));
        }
    }

    #[test]
    fn fallback_urls_keep_their_order_and_the_options() {
        let e = ClientOptions::new("http://a:1")
            .fallback_urls(["ws://b:2", "https://c"])
            .path("io")
            .endpoints()
            .unwrap();
        let urls: Vec<_> = e.nodes.iter().map(|n| n.url.as_str()).collect();
        assert_eq!(urls, ["http://a:1", "ws://b:2", "https://c"]);
        let ws: Vec<_> = e.nodes.iter().map(|n| n.ws_url.as_str()).collect();
        assert_eq!(
            ws,
            [
                "ws://a:1/io?EIO=4&transport=websocket",
                "ws://b:2/io?EIO=4&transport=websocket",
                "wss://c/io?EIO=4&transport=websocket",
            ]
        );
        // A second call replaces the list.
        let e = ClientOptions::new("http://a:1")
            .fallback_urls(["http://b:2"])
            .fallback_urls(Vec::<String>::new())
            .endpoints()
            .unwrap();
        assert_eq!(e.nodes.len(), 1);
    }

    #[test]
    fn a_bad_fallback_url_is_a_config_error_naming_it() {
        for bad in ["ftp://b", "http://b:2/chat", "not a url", ""] {
            let err = ClientOptions::new("http://a:1")
                .fallback_urls(["http://ok:2", bad])
                .endpoints()
                .unwrap_err();
            let ConnectError::Config(message) = &err else {
                panic!("expected a Config error for {bad:?}, got {err:?}");
            };
            assert!(message.contains(&format!("`{bad}`")), "{message}");
        }
    }

    #[test]
    fn debug_hides_token() {
        let o = ClientOptions::new("http://x")
            .fallback_urls(["http://y"])
            .token("secret");
        let debug = format!("{o:?}");
        assert!(!debug.contains("secret"));
        assert!(debug.contains("http://y"), "{debug}");
    }
}
