//! Server configuration.

use std::time::Duration;

use axum::http::{HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::ServerError;
use super::auth::AuthConfig;
use super::http::HttpLimits;

/// Default maximum size of one incoming message / payload: 1 MiB.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1 << 20;

/// Default maximum of rooms one socket may join through
/// `SocketContext::join`: 100.
pub const DEFAULT_MAX_ROOMS_PER_SOCKET: usize = 100;

/// Default number of outgoing packets buffered per connection.
pub const DEFAULT_BUFFER_SIZE: usize = 1024;

/// Default initial WebSocket read buffer per connection, in bytes.
pub const DEFAULT_WS_READ_BUFFER_SIZE: usize = 1024;

/// What the gateway does with a client generated from another major version
/// of the namespace's contract (generated clients name theirs in the
/// handshake).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContractMismatch {
    /// Refuse the connection with `CONTRACT_MISMATCH` (the default): its
    /// message names both versions.
    #[default]
    Refuse,
    /// Let it connect, and log one `info` line naming both versions.
    AllowAndLog,
}

/// Configuration of a [`Gateway`](super::Gateway), builder style.
///
/// ```
/// # use evcontract_runtime::server::{ServerConfig, AuthConfig, CorsConfig};
/// let config = ServerConfig::new()
///     .auth(AuthConfig::hs256("secret"))
///     .cors(CorsConfig::origins(["https://app.example"]).allow_credentials(true))
///     .max_payload_bytes(256 * 1024);
/// ```
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub(crate) auth: Option<AuthConfig>,
    pub(crate) cors: Option<CorsConfig>,
    pub(crate) max_payload_bytes: usize,
    pub(crate) buffer_size: usize,
    pub(crate) ws_read_buffer_size: usize,
    pub(crate) ping_interval: Duration,
    pub(crate) ping_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) ack_timeout: Duration,
    pub(crate) req_path: String,
    #[cfg(feature = "redis")]
    pub(crate) redis: Option<super::RedisConfig>,
    pub(crate) http: HttpLimits,
    pub(crate) max_rooms_per_socket: usize,
    pub(crate) contract_mismatch: ContractMismatch,
    pub(crate) allow_unversioned_clients: bool,
    pub(crate) metrics_path: Option<String>,
    pub(crate) max_sockets_per_user: usize,
    pub(crate) idempotency_window: std::time::Duration,
    pub(crate) idempotency_keys_per_user: usize,
    pub(crate) idempotency_lease: std::time::Duration,
    pub(crate) metrics_public: bool,
    pub(crate) metrics_token: Option<String>,
    pub(crate) trusted_proxies: super::TrustedProxies,
    pub(crate) room_history: bool,
    pub(crate) root_namespace: bool,
    pub(crate) fill_per_minute: u32,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<super::TlsConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            auth: None,
            cors: None,
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            buffer_size: DEFAULT_BUFFER_SIZE,
            ws_read_buffer_size: DEFAULT_WS_READ_BUFFER_SIZE,
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(45),
            ack_timeout: Duration::from_secs(5),
            req_path: "/socket.io".to_owned(),
            #[cfg(feature = "redis")]
            redis: None,
            http: HttpLimits::default(),
            max_rooms_per_socket: DEFAULT_MAX_ROOMS_PER_SOCKET,
            contract_mismatch: ContractMismatch::default(),
            allow_unversioned_clients: true,
            metrics_path: None,
            max_sockets_per_user: super::DEFAULT_MAX_SOCKETS_PER_USER,
            idempotency_window: super::DEFAULT_IDEMPOTENCY_WINDOW,
            idempotency_keys_per_user: super::DEFAULT_IDEMPOTENCY_KEYS_PER_USER,
            idempotency_lease: super::DEFAULT_IDEMPOTENCY_LEASE,
            metrics_public: true,
            metrics_token: None,
            trusted_proxies: super::TrustedProxies::default(),
            room_history: true,
            root_namespace: true,
            fill_per_minute: super::DEFAULT_FILL_PER_MINUTE,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl ServerConfig {
    /// The defaults: no auth (every connection anonymous), no CORS, 1 MiB
    /// payloads, 1024-packet buffers, ping 25 s / 20 s, connect timeout 45 s.
    pub fn new() -> Self {
        Self::default()
    }

    /// Verifies handshake tokens with this configuration. Without it every
    /// connection is anonymous (and `AuthMode::Required` namespaces refuse all).
    #[must_use]
    pub fn auth(mut self, auth: AuthConfig) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Enables CORS (off by default) for the HTTP long-polling transport.
    #[must_use]
    pub fn cors(mut self, cors: CorsConfig) -> Self {
        self.cors = Some(cors);
        self
    }

    /// Maximum size in bytes of one incoming message (WebSocket message,
    /// long-polling body or binary attachments). Default 1 MiB.
    #[must_use]
    pub fn max_payload_bytes(mut self, bytes: usize) -> Self {
        self.max_payload_bytes = bytes.max(1);
        self
    }

    /// Number of outgoing packets socketioxide buffers per connection before
    /// emits to it fail (`InternalChannelFull`). socketioxide's own default of
    /// 128 overflows under fan-out bursts (and the overflowing emits are
    /// lost); the default here is 1024. Memory: the buffer is tokio's bounded
    /// channel, which allocates slots lazily in blocks of 32, so an idle
    /// connection costs about one block; the bound is what one slow client
    /// may pin, e.g. 1024 queued packets of 1 KiB is 1 MiB per stalled client.
    #[must_use]
    pub fn buffer_size(mut self, packets: usize) -> Self {
        self.buffer_size = packets.max(1);
        self
    }

    /// Initial size of each connection's WebSocket read buffer (default
    /// 1 KiB; socketioxide's is 4 KiB). Every connection holds one for its
    /// whole life, so it is a large share of an idle connection's memory;
    /// larger frames still arrive whole, the buffer grows for them.
    #[must_use]
    pub fn ws_read_buffer_size(mut self, bytes: usize) -> Self {
        self.ws_read_buffer_size = bytes.max(64);
        self
    }

    /// Interval between server pings (default 25 s).
    #[must_use]
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = interval;
        self
    }

    /// How long to wait for a pong before closing (default 20 s).
    #[must_use]
    pub fn ping_timeout(mut self, timeout: Duration) -> Self {
        self.ping_timeout = timeout;
        self
    }

    /// How long an engine.io connection may stay without joining any
    /// namespace (default 45 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long server-to-client acks are awaited (default 5 s).
    #[must_use]
    pub fn ack_timeout(mut self, timeout: Duration) -> Self {
        self.ack_timeout = timeout;
        self
    }

    /// How long a connection may take to send a complete HTTP request head
    /// (default 10 s, [`DEFAULT_HEADER_READ_TIMEOUT`](super::DEFAULT_HEADER_READ_TIMEOUT)).
    /// The timer runs whenever the server waits for a request head, so it
    /// also closes silent connections and idle keep-alive connections.
    /// Applies to the serve helpers ([`Gateway::serve_with`](super::Gateway::serve_with)).
    #[must_use]
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.http.header_read_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How long a request body may take to arrive whole once the server
    /// waits for it (default 15 s, [`DEFAULT_BODY_READ_TIMEOUT`](super::DEFAULT_BODY_READ_TIMEOUT)):
    /// a long-polling POST trickled a byte at a time fails after it and its
    /// connection is closed (counted in `HttpStats::body_timeouts`). Applies
    /// to the serve helpers.
    #[must_use]
    pub fn body_read_timeout(mut self, timeout: Duration) -> Self {
        self.http.body_read_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How long a write to a client may stay blocked before the connection
    /// is closed (default 5 s, [`DEFAULT_SLOW_CONSUMER_TIMEOUT`](super::DEFAULT_SLOW_CONSUMER_TIMEOUT)):
    /// a client that stops reading is disconnected (rooms left, metadata
    /// removed, `on_disconnect` run) instead of pinning its buffers
    /// forever. Applies to the serve helpers.
    #[must_use]
    pub fn slow_consumer_timeout(mut self, timeout: Duration) -> Self {
        self.http.slow_consumer_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Most TCP connections open at once on this node (default 100,000,
    /// [`DEFAULT_MAX_CONNECTIONS`](super::DEFAULT_MAX_CONNECTIONS)); one more
    /// is answered `503` with body `TOO_MANY_CONNECTIONS` and closed before
    /// any Socket.IO work. Applies to the serve helpers.
    #[must_use]
    pub fn max_connections(mut self, max: usize) -> Self {
        self.http.max_connections = max.max(1);
        self
    }

    /// Most TCP connections open at once from one IP address (default
    /// 1,000, [`DEFAULT_MAX_CONNECTIONS_PER_IP`](super::DEFAULT_MAX_CONNECTIONS_PER_IP));
    /// one more is answered `429` with body `TOO_MANY_CONNECTIONS_PER_IP`
    /// and closed. Behind a proxy every client has the proxy's address:
    /// raise it there. Applies to the serve helpers.
    #[must_use]
    pub fn max_connections_per_ip(mut self, max: usize) -> Self {
        self.http.max_connections_per_ip = max.max(1);
        self
    }

    /// The reverse proxies (load balancers) in front of this server, by
    /// address or CIDR network (none by default). A request whose TCP peer
    /// is one of them is counted as coming from the client its `Forwarded`
    /// or `X-Forwarded-For` header names (the right-most address that is
    /// not itself a trusted proxy): the per-IP connection limit, the
    /// per-IP and anonymous rate limits and `ClientMetadata::remote_addr`
    /// then use the client's address. From any other peer the headers are
    /// ignored, so a client cannot choose its own address. Applies to the
    /// serve helpers.
    #[must_use]
    pub fn trusted_proxies(mut self, proxies: super::TrustedProxies) -> Self {
        self.trusted_proxies = proxies;
        self
    }

    /// Whether rooms whose contract pattern declares `history` keep their
    /// events for clients that reconnect (default `true`). Off, every room
    /// is live only, as if no pattern had history (clients are told
    /// `no_history` when they ask to resume).
    #[must_use]
    pub fn room_history(mut self, on: bool) -> Self {
        self.room_history = on;
        self
    }

    /// How many `evcontract:fill` requests one connection may send a
    /// minute (default 120,
    /// [`DEFAULT_FILL_PER_MINUTE`](super::DEFAULT_FILL_PER_MINUTE)); past
    /// it they are answered `RATE_LIMITED` and the client tells the app of
    /// the gap. Each reads up to a room's `size` kept events.
    #[must_use]
    pub fn fill_per_minute(mut self, max: u32) -> Self {
        self.fill_per_minute = max.max(1);
        self
    }

    /// Whether the root namespace `/` accepts connections when the
    /// contract has no namespace `/` (default `true`). Socket.IO tools
    /// (Artillery's socketio engine, some test clients) connect to `/`
    /// first; there every event is answered `UNKNOWN_EVENT`. Off, they get
    /// socket.io's `Invalid namespace`.
    #[must_use]
    pub fn root_namespace(mut self, on: bool) -> Self {
        self.root_namespace = on;
        self
    }

    /// What to do with a client generated from another major version of a
    /// namespace's contract (another minor below 1.0): refuse it with
    /// `CONTRACT_MISMATCH` (the default) or let it in and log it.
    #[must_use]
    pub fn contract_mismatch(mut self, policy: ContractMismatch) -> Self {
        self.contract_mismatch = policy;
        self
    }

    /// Whether a client that names no contract version (a plain
    /// `socket.io-client`, say) may connect; default `true`. When `false`,
    /// it is refused with `CONTRACT_MISMATCH`.
    #[must_use]
    pub fn allow_unversioned_clients(mut self, allow: bool) -> Self {
        self.allow_unversioned_clients = allow;
        self
    }

    /// Most rooms one socket may join through
    /// [`SocketContext::join`](super::SocketContext::join) (default 100,
    /// [`DEFAULT_MAX_ROOMS_PER_SOCKET`]); one more is refused with
    /// `TOO_MANY_ROOMS`. The runtime's own rooms (user, authenticated) do
    /// not count.
    #[must_use]
    pub fn max_rooms_per_socket(mut self, max: usize) -> Self {
        self.max_rooms_per_socket = max;
        self
    }

    /// Most sockets one authenticated user may have in one namespace on
    /// this node (default 32,
    /// [`DEFAULT_MAX_SOCKETS_PER_USER`](super::DEFAULT_MAX_SOCKETS_PER_USER));
    /// one more is refused with `TOO_MANY_USER_CONNECTIONS`. Every socket
    /// may join rooms, so without this bound one account could make the
    /// work of room announcements grow with the square of its sockets.
    #[must_use]
    pub fn max_sockets_per_user(mut self, max: usize) -> Self {
        self.max_sockets_per_user = max.max(1);
        self
    }

    /// How long the answer to an event sent with an idempotency key is
    /// kept (default 10 minutes,
    /// [`DEFAULT_IDEMPOTENCY_WINDOW`](super::DEFAULT_IDEMPOTENCY_WINDOW)):
    /// a retry with the same key within it gets that answer and the
    /// handler does not run again. Only events the contract leaves
    /// idempotent (acked, without `"idempotent": false`) take a key.
    #[must_use]
    pub fn idempotency_window(mut self, window: std::time::Duration) -> Self {
        self.idempotency_window = window;
        self
    }

    /// With Redis, how long a claimed idempotency key stays "running"
    /// unless the node renews it (default 10 s,
    /// [`DEFAULT_IDEMPOTENCY_LEASE`](super::DEFAULT_IDEMPOTENCY_LEASE)):
    /// the node renews it every third of the lease while the handler runs,
    /// so it lapses only when the node died or never started the handler
    /// (a claim Redis carried out after the node gave up waiting). Retries
    /// get `UNAVAILABLE` until then, and run the handler once it lapsed;
    /// keep it well below the clients' retry time (`retry_for`, 30 s).
    #[must_use]
    pub fn idempotency_lease(mut self, lease: std::time::Duration) -> Self {
        self.idempotency_lease = lease;
        self
    }

    /// Most idempotency keys kept per user (or per address, for anonymous
    /// clients) on one node (default 1,000,
    /// [`DEFAULT_IDEMPOTENCY_KEYS_PER_USER`](super::DEFAULT_IDEMPOTENCY_KEYS_PER_USER));
    /// past it the oldest key is forgotten first, so a retry of it would
    /// run again. With Redis the keys expire with the window instead.
    #[must_use]
    pub fn idempotency_keys_per_user(mut self, max: usize) -> Self {
        self.idempotency_keys_per_user = max.max(1);
        self
    }

    /// HTTP path of the Socket.IO endpoint (default `/socket.io`).
    #[must_use]
    pub fn req_path(mut self, path: impl Into<String>) -> Self {
        self.req_path = path.into();
        self
    }

    /// Prometheus metrics (off by default): the gateway counts connections,
    /// refusals, events, error answers by code, handler latency, emits and
    /// HTTP connections, and [`Gateway::attach`](super::Gateway::attach)
    /// (so the serve helpers too) answers `GET <path>` (for example
    /// `/metrics`) with them in the OpenMetrics text format;
    /// [`Gateway::metrics_text`](super::Gateway::metrics_text) returns the
    /// same text. Counting costs a few atomic increments per event.
    ///
    /// The route is then public on the gateway's own port: anyone who can
    /// connect can read it. Prefer [`metrics_private`](Self::metrics_private)
    /// (served on a listener of its own) or add
    /// [`metrics_token`](Self::metrics_token).
    #[must_use]
    pub fn metrics(mut self, path: impl Into<String>) -> Self {
        self.metrics_path = Some(path.into());
        self.metrics_public = true;
        self
    }

    /// Metrics as with [`metrics`](Self::metrics), but `attach` does not
    /// mount the route: serve it on a listener of its own (loopback or an
    /// internal network) with
    /// [`Gateway::serve_metrics`](super::Gateway::serve_metrics) or mount
    /// [`Gateway::metrics_router`](super::Gateway::metrics_router) yourself.
    #[must_use]
    pub fn metrics_private(mut self, path: impl Into<String>) -> Self {
        self.metrics_path = Some(path.into());
        self.metrics_public = false;
        self
    }

    /// Requires `Authorization: Bearer <token>` on the metrics route
    /// (answered `401` without it), wherever it is served.
    #[must_use]
    pub fn metrics_token(mut self, token: impl Into<String>) -> Self {
        self.metrics_token = Some(token.into());
        self
    }

    /// Serves HTTPS/WSS instead of plain HTTP from the serve helpers
    /// (`serve`, `serve_listener`, `serve_with`; feature `tls`). A gateway
    /// mounted in a server of your own with `attach` uses that server's TLS.
    #[cfg(feature = "tls")]
    #[must_use]
    pub fn tls(mut self, tls: super::TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Runs the gateway as one node of several, sharing rooms and
    /// broadcasts through Redis (feature `redis`; build the gateway with
    /// [`Gateway::build`](super::Gateway::build), which connects). Without
    /// it, the gateway is one node with its rooms in memory.
    #[cfg(feature = "redis")]
    #[must_use]
    pub fn redis(mut self, redis: super::RedisConfig) -> Self {
        self.redis = Some(redis);
        self
    }
}

/// Which origins may use the long-polling transport from a browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsConfig {
    origins: Option<Vec<String>>,
    credentials: bool,
}

impl CorsConfig {
    /// Allows exactly these origins (for example `https://app.example`).
    pub fn origins<I, S>(origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            origins: Some(origins.into_iter().map(Into::into).collect()),
            credentials: false,
        }
    }

    /// Allows any origin (`*`). Cannot be combined with credentials.
    pub fn any_origin() -> Self {
        Self {
            origins: None,
            credentials: false,
        }
    }

    /// Allows cookies / credentials (`Access-Control-Allow-Credentials: true`).
    #[must_use]
    pub fn allow_credentials(mut self, allow: bool) -> Self {
        self.credentials = allow;
        self
    }

    /// Builds the tower-http layer, refusing `*` together with credentials.
    pub fn build(&self) -> Result<CorsLayer, ServerError> {
        let any = match &self.origins {
            None => true,
            Some(list) => list.iter().any(|o| o.trim() == "*"),
        };
        if any && self.credentials {
            return Err(ServerError::Config(
                "CORS: the wildcard origin `*` cannot be combined with credentials; list the allowed origins".to_owned(),
            ));
        }
        let allow_origin = if any {
            AllowOrigin::any()
        } else {
            let mut values = Vec::new();
            for origin in self.origins.iter().flatten() {
                let value = HeaderValue::from_str(origin.trim())
                    .map_err(|_| ServerError::Config(format!("CORS: invalid origin `{origin}`")))?;
                values.push(value);
            }
            if values.is_empty() {
                return Err(ServerError::Config("CORS: no origin listed".to_owned()));
            }
            AllowOrigin::list(values)
        };
        Ok(CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .allow_credentials(self.credentials))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_with_credentials_is_an_error() {
        assert!(matches!(
            CorsConfig::any_origin().allow_credentials(true).build(),
            Err(ServerError::Config(_))
        ));
        assert!(matches!(
            CorsConfig::origins(["https://a.example", "*"])
                .allow_credentials(true)
                .build(),
            Err(ServerError::Config(_))
        ));
        assert!(CorsConfig::any_origin().build().is_ok());
        assert!(
            CorsConfig::origins(["https://a.example"])
                .allow_credentials(true)
                .build()
                .is_ok()
        );
        assert!(CorsConfig::origins(["bad\norigin"]).build().is_err());
        assert!(CorsConfig::origins(Vec::<String>::new()).build().is_err());
    }
}
