//! The [`Gateway`]: socketioxide setup, namespace registration and the
//! serve helpers (the per-event pipeline is `namespace.rs`, the event
//! extractor `incoming.rs`).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use axum::Router;
use socketioxide::adapter::LocalAdapter;
use socketioxide::layer::SocketIoLayer;
use socketioxide::{ParserConfig, SocketIo, SocketIoBuilder};
use tokio::net::TcpListener;
use tower_http::cors::CorsLayer;

use super::ServerError;
use super::adapter::{RawIo, with_adapter};
use super::auth::AuthConfig;
use super::cluster::Cluster;
use super::config::{ContractMismatch, ServerConfig};
use super::context::SocketContext;
use super::dispatch::Dispatch;
use super::emitter::{ClusterError, EmitStats, Emitter, StatsInner};
use super::history::HistoryStore;
use super::http::{HttpCounters, HttpLimits, HttpStats};
use super::idempotency::Keys;
use super::log_throttle::LogThrottle;
use super::metrics::Metrics;
use super::namespace::{CompiledEvent, NamespaceRuntime, compile_schema, guarded, mount};
use super::proxy::TrustedProxies;
use super::rate_limit::SharedLimits;
use super::room_caps::RoomCaps;
use super::socket_state::ClientMetadata;
use super::spec::{AuthMode, BoxFuture, EventSpec, NamespaceSpec};
use crate::wire::{AckData, EventError};

/// The Socket.IO server of a contract. Cheap to clone (an `Arc` inside).
///
/// ```no_run
/// # use evcontract_runtime::server::{Gateway, ServerConfig};
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let (gateway, _layer) = Gateway::new(ServerConfig::new())?;
/// // gateway.register(&generated::CHAT_NAMESPACE, generated::ChatGlue::new(handler)).await?;
/// // Serve until the shutdown future resolves (here: never).
/// gateway
///     .serve("127.0.0.1:3000".parse()?, std::future::pending())
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    io: RawIo,
    layer: RawLayer,
    cluster: Cluster,
    cors: Option<CorsLayer>,
    auth: Option<Arc<AuthConfig>>,
    stats: Arc<StatsInner>,
    /// Paths of the registered namespaces (socketioxide's handlers keep each
    /// namespace's runtime alive).
    namespaces: RwLock<HashSet<&'static str>>,
    /// Where Socket.IO requests arrive (`ServerConfig::req_path`).
    req_path: Arc<str>,
    http_limits: HttpLimits,
    http: Arc<HttpCounters>,
    /// `ServerConfig::metrics`: the registry, and where it is served.
    metrics: Option<(Arc<Metrics>, String)>,
    /// `ServerConfig::tls`: how the serve helpers accept TLS.
    tls: Option<super::http::Acceptor>,
    /// `ServerConfig::max_rooms_per_socket`.
    max_rooms: usize,
    /// `ServerConfig::contract_mismatch` and `allow_unversioned_clients`.
    contract_check: (ContractMismatch, bool),
    /// `ServerConfig::max_sockets_per_user`.
    max_sockets_per_user: usize,
    /// Whether `attach` mounts the metrics route (`ServerConfig::metrics`,
    /// not `metrics_private`).
    metrics_public: bool,
    /// `ServerConfig::metrics_token`.
    metrics_token: Option<Arc<str>>,
    /// `ServerConfig::trusted_proxies`.
    trusted_proxies: Arc<TrustedProxies>,
    /// The room history of each registered namespace that has one.
    histories: RwLock<HashMap<&'static str, Arc<HistoryStore>>>,
    /// `ServerConfig::room_history`.
    room_history: bool,
    /// `ServerConfig::idempotency_window`, `idempotency_lease` and
    /// `idempotency_keys_per_user`.
    idempotency: (Duration, Duration, usize),
    /// `ServerConfig::root_namespace`.
    root_namespace: bool,
    /// `ServerConfig::fill_per_minute`.
    fill_per_minute: u32,
    /// Whether `/` is the runtime's own empty namespace (replaced when the
    /// contract's `/` is registered).
    root_placeholder: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("namespaces", &self.namespace_paths())
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Builds a one-node gateway (socketioxide's in-process adapter). Mount
    /// the returned layer in your own axum `Router` (with
    /// [`Gateway::cors_layer`] if CORS is configured), or use
    /// [`Gateway::attach`] / [`Gateway::router`] / the serve helpers, which do
    /// both.
    ///
    /// A configuration with a Redis adapter is refused here: it needs a
    /// connection, made by [`Gateway::build`].
    pub fn new(config: ServerConfig) -> Result<(Self, SocketIoLayer), ServerError> {
        #[cfg(feature = "redis")]
        if config.redis.is_some() {
            return Err(ServerError::Config(
                "a Redis adapter is configured: build the gateway with `Gateway::build(config).await`, which connects to Redis".to_owned(),
            ));
        }
        let cors = config.cors.as_ref().map(|c| c.build()).transpose()?;
        let (layer, io) = socketio_builder(&config).build_layer();
        let gateway = Self::from_parts(
            &config,
            cors,
            RawIo::Local(io),
            RawLayer::Local(layer.clone()),
            Cluster::default(),
        );
        Ok((gateway, layer))
    }

    /// Builds the gateway on the adapter `config` names: with
    /// [`ServerConfig::redis`] (feature `redis`) it connects to Redis first
    /// and fails with [`ServerError::Cluster`] (the URL and the reason) when
    /// Redis cannot be reached; without, it is [`Gateway::new`]. Mount it
    /// with [`Gateway::attach`] or the serve helpers.
    pub async fn build(config: ServerConfig) -> Result<Self, ServerError> {
        #[cfg(feature = "redis")]
        if let Some(redis) = &config.redis {
            let cors = config.cors.as_ref().map(|c| c.build()).transpose()?;
            let (link, state) = super::redis::ClusterLink::connect(redis).await?;
            let (layer, io) = socketio_builder(&config)
                .with_adapter::<super::adapter::RedisAdapter>(state)
                .build_layer();
            return Ok(Self::from_parts(
                &config,
                cors,
                RawIo::Redis(io),
                RawLayer::Redis(layer),
                Cluster::redis(link),
            ));
        }
        Self::new(config).map(|(gateway, _layer)| gateway)
    }

    fn from_parts(
        config: &ServerConfig,
        cors: Option<CorsLayer>,
        io: RawIo,
        layer: RawLayer,
        cluster: Cluster,
    ) -> Self {
        let stats = Arc::new(StatsInner::default());
        let http = Arc::new(HttpCounters::default());
        Self {
            inner: Arc::new(Inner {
                io,
                layer,
                cluster,
                cors,
                auth: config.auth.clone().map(Arc::new),
                stats: stats.clone(),
                namespaces: RwLock::new(HashSet::new()),
                req_path: Arc::from(config.req_path.as_str()),
                http_limits: config.http,
                max_rooms: config.max_rooms_per_socket,
                contract_check: (config.contract_mismatch, config.allow_unversioned_clients),
                max_sockets_per_user: config.max_sockets_per_user,
                metrics_public: config.metrics_public,
                metrics_token: config.metrics_token.as_deref().map(Arc::from),
                trusted_proxies: Arc::new(config.trusted_proxies.clone()),
                histories: RwLock::new(HashMap::new()),
                room_history: config.room_history,
                idempotency: (
                    config.idempotency_window,
                    config.idempotency_lease,
                    config.idempotency_keys_per_user,
                ),
                root_namespace: config.root_namespace,
                fill_per_minute: config.fill_per_minute,
                root_placeholder: std::sync::atomic::AtomicBool::new(false),
                http: http.clone(),
                metrics: config
                    .metrics_path
                    .clone()
                    .map(|path| (Arc::new(Metrics::new(stats.clone(), http)), path)),
                #[cfg(feature = "tls")]
                tls: config.tls.as_ref().map(|tls| tls.acceptor.clone()),
                #[cfg(not(feature = "tls"))]
                tls: None,
            }),
        }
    }

    /// Mounts a contract namespace: compiles every event schema once, wires
    /// auth, rate limits, validation and `dispatch`, then awaits
    /// [`Dispatch::after_init`]. Returns the namespace's emitter.
    pub async fn register<D: Dispatch>(
        &self,
        spec: &'static NamespaceSpec,
        dispatch: D,
    ) -> Result<Emitter, ServerError> {
        if !spec.path.starts_with('/') {
            return Err(ServerError::Namespace(format!(
                "namespace path `{}` must start with `/`",
                spec.path
            )));
        }
        if spec.path == "/"
            && self
                .inner
                .root_placeholder
                .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            // The contract's own `/` takes the place of the empty one.
            self.inner
                .namespaces
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .remove("/");
            with_adapter!(RawIo, &self.inner.io, io => io.delete_ns("/"));
        }
        let mut events = HashMap::with_capacity(spec.client_events.len());
        for event in spec.client_events {
            let validator = compile_schema(spec.path, event)?;
            if events
                .insert(
                    event.name,
                    CompiledEvent {
                        spec: event,
                        validator,
                        metrics: None,
                    },
                )
                .is_some()
            {
                return Err(ServerError::Namespace(format!(
                    "event `{}` is declared twice in namespace `{}`",
                    event.name, spec.path
                )));
            }
        }
        let metrics = self.inner.metrics.as_ref().map(|(metrics, _)| {
            let ns = metrics.namespace(spec.path, spec.client_events.iter().map(|e| e.name));
            for compiled in events.values_mut() {
                compiled.metrics = Some(ns.event(compiled.spec.name));
            }
            ns
        });
        let history = HistoryStore::of(spec).filter(|_| self.inner.room_history);
        #[cfg(feature = "redis")]
        let history =
            history.map(|h| h.shared_by_nodes(self.inner.cluster.shared_history(spec.path)));
        let history = history.map(Arc::new);
        let (window, lease, per_user) = self.inner.idempotency;
        let keys = Keys::new(window, lease, per_user);
        #[cfg(feature = "redis")]
        let keys = keys.shared_by_nodes(self.inner.cluster.shared_keys(spec.path));
        if let Some(history) = &history {
            self.inner
                .histories
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(spec.path, history.clone());
        }
        let rt = Arc::new(NamespaceRuntime {
            spec,
            history,
            keys,
            fill_per_minute: self.inner.fill_per_minute,
            events,
            metrics,
            dispatch: Box::new(dispatch),
            auth: self.inner.auth.clone(),
            emitter: self.emitter(spec.path),
            own_socket_room: self.inner.cluster.is_remote(),
            shared_limits: SharedLimits::default(),
            max_rooms: self.inner.max_rooms,
            contract_check: self.inner.contract_check,
            user_sockets: Arc::default(),
            max_sockets_per_user: self.inner.max_sockets_per_user,
            user_cap_log: LogThrottle::default(),
            room_caps: RoomCaps::of(spec).map(Arc::new),
        });
        {
            let mut map = self
                .inner
                .namespaces
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            if !map.insert(spec.path) {
                return Err(ServerError::Namespace(format!(
                    "namespace `{}` is already registered",
                    spec.path
                )));
            }
        }
        match &self.inner.io {
            RawIo::Local(io) => mount(io, rt.clone()),
            #[cfg(feature = "redis")]
            RawIo::Redis(io) => {
                // The adapter subscribes to the namespace's Redis channels.
                if let Err(err) = mount(io, rt.clone()).await {
                    self.inner
                        .namespaces
                        .write()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(spec.path);
                    io.delete_ns(spec.path);
                    return Err(ServerError::Cluster(format!(
                        "namespace `{}`: cannot subscribe through {}: {err}",
                        spec.path,
                        self.inner.cluster.describe()
                    )));
                }
            }
        }
        let emitter = rt.emitter.clone();
        let init = emitter.clone();
        if let Err(panic) = guarded(|| rt.dispatch.after_init(init)).await {
            tracing::error!(namespace = spec.path, panic, "after_init panicked");
        }
        self.open_root().await;
        Ok(emitter)
    }

    /// Opens the empty root namespace (`ServerConfig::root_namespace`) once
    /// a contract namespace is registered, unless `/` is taken.
    async fn open_root(&self) {
        let taken = self
            .inner
            .namespaces
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains("/");
        if !self.inner.root_namespace || taken {
            return;
        }
        match Box::pin(self.register(&ROOT, NoEvents)).await {
            Ok(_) => self
                .inner
                .root_placeholder
                .store(true, std::sync::atomic::Ordering::SeqCst),
            Err(err) => tracing::warn!(error = %err, "cannot open the root namespace `/`"),
        }
    }

    /// The emitter of namespace `ns` (emits fail with `UnknownNamespace`
    /// while it is not registered).
    pub fn emitter(&self, ns: &str) -> Emitter {
        let history = self
            .inner
            .histories
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(ns)
            .cloned();
        Emitter::new(
            self.inner.io.clone(),
            Arc::from(ns),
            self.inner.stats.clone(),
            self.inner.cluster.clone(),
            history,
        )
    }

    /// Sockets connected to namespace `ns` on this node.
    pub fn connected_count(&self, ns: &str) -> usize {
        self.emitter(ns).connected_count()
    }

    /// Sockets connected to this node over every registered namespace (one
    /// client joined to two namespaces counts twice).
    pub fn total_connected(&self) -> usize {
        self.namespace_paths()
            .into_iter()
            .map(|ns| self.connected_count(ns))
            .sum()
    }

    /// Sockets connected to every node over every registered namespace: one
    /// cluster request per namespace (see [`Emitter::cluster_connected_count`]);
    /// on one node, [`Gateway::total_connected`].
    pub async fn cluster_total_connected(&self) -> Result<usize, ClusterError> {
        let mut total = 0;
        for ns in self.namespace_paths() {
            total += self.emitter(ns).cluster_connected_count().await?;
        }
        Ok(total)
    }

    /// Whether this gateway shares its rooms with other nodes (the Redis
    /// adapter).
    pub fn is_clustered(&self) -> bool {
        self.inner.cluster.is_remote()
    }

    /// Metadata of socket `socket_id` in namespace `ns`, while it is
    /// connected to this node (metadata stays on the node that holds the
    /// socket).
    pub fn client_metadata(&self, ns: &str, socket_id: &str) -> Option<ClientMetadata> {
        self.emitter(ns).client_metadata(socket_id)
    }

    /// Metadata of every socket connected to namespace `ns` on this node.
    pub fn clients(&self, ns: &str) -> Vec<ClientMetadata> {
        self.emitter(ns).clients()
    }

    /// Paths of the registered namespaces.
    pub fn namespace_paths(&self) -> Vec<&'static str> {
        self.inner
            .namespaces
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .copied()
            .collect()
    }

    /// Emit counters (every failed emit is also logged with `tracing`).
    pub fn emit_stats(&self) -> EmitStats {
        self.inner.stats.snapshot()
    }

    /// The socketioxide server, on the gateway's adapter, for escape hatches.
    pub fn io(&self) -> &RawIo {
        &self.inner.io
    }

    /// The socketioxide layer, on the gateway's adapter (the one
    /// [`Gateway::new`] returned, for a one-node gateway).
    pub fn layer(&self) -> RawLayer {
        self.inner.layer.clone()
    }

    /// The CORS layer, when CORS is configured.
    pub fn cors_layer(&self) -> Option<CorsLayer> {
        self.inner.cors.clone()
    }

    /// Adds the Socket.IO endpoint (and CORS, when configured) to `router`,
    /// and the metrics route when [`ServerConfig::metrics`] is set (not
    /// with [`ServerConfig::metrics_private`], whose route only
    /// [`Gateway::metrics_router`] serves).
    pub fn attach(&self, router: Router) -> Router {
        let router = match (&self.inner.metrics, self.inner.metrics_public) {
            (Some((metrics, path)), true) => router.route(
                path,
                metrics_route(metrics.clone(), self.inner.metrics_token.clone()),
            ),
            _ => router,
        };
        let req_path = self.inner.req_path.clone();
        let router = match self.layer() {
            RawLayer::Local(layer) => router.layer(layer),
            #[cfg(feature = "redis")]
            RawLayer::Redis(layer) => router.layer(layer),
        };
        let router = router.layer(axum::middleware::map_request(
            move |req: axum::extract::Request| {
                // Only Socket.IO requests: the application's own routes
                // keep their request head as hyper parsed it.
                let ours = req.uri().path().starts_with(&*req_path);
                async move { if ours { detach_request(req) } else { req } }
            },
        ));
        match self.cors_layer() {
            Some(cors) => router.layer(cors),
            None => router,
        }
    }

    /// A router with only the metrics route (`GET <path>`, behind the
    /// bearer token when [`ServerConfig::metrics_token`] is set), to serve
    /// on a listener of its own, typically on loopback or an internal
    /// network: see [`Gateway::serve_metrics`]. `None` when metrics are off.
    pub fn metrics_router(&self) -> Option<Router> {
        let (metrics, path) = self.inner.metrics.as_ref()?;
        Some(Router::new().route(
            path,
            metrics_route(metrics.clone(), self.inner.metrics_token.clone()),
        ))
    }

    /// Serves [`Gateway::metrics_router`] on `listener` until `shutdown`
    /// resolves (an error when metrics are off).
    pub async fn serve_metrics(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let router = self.metrics_router().ok_or_else(|| {
            ServerError::Config("metrics are off: set ServerConfig::metrics first".to_owned())
        })?;
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await?;
        Ok(())
    }

    /// A router with only the Socket.IO endpoint.
    pub fn router(&self) -> Router {
        self.attach(Router::new())
    }

    /// Binds `addr` and serves [`Gateway::router`] until `shutdown` resolves.
    pub async fn serve(
        &self,
        addr: SocketAddr,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let listener = TcpListener::bind(addr).await?;
        self.serve_listener(listener, shutdown).await
    }

    /// Serves [`Gateway::router`] on an already bound listener (bind port 0
    /// in tests) until `shutdown` resolves.
    pub async fn serve_listener(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        self.serve_with(listener, self.router(), shutdown).await
    }

    /// Serves a router of your own (built with [`Gateway::attach`], so it has
    /// your routes too) with TCP_NODELAY, peer addresses recorded and the
    /// configured HTTP limits (connections per node and per IP, header-read
    /// timeout, slow-consumer timeout: see [`ServerConfig`]). When
    /// `shutdown` resolves, every socket is closed and the server drains.
    ///
    /// Mounting the gateway in a server of your own
    /// ([`Gateway::attach`]) gives none of these limits: apply your own.
    pub async fn serve_with(
        &self,
        listener: TcpListener,
        router: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let gateway = self.clone();
        // Upgraded WebSocket connections are not tracked by the HTTP
        // server's graceful shutdown: close them explicitly.
        let close = async move { gateway.close().await };
        let front = super::http::Front {
            limits: self.inner.http_limits,
            trusted: self.inner.trusted_proxies.clone(),
            tls: self.inner.tls.clone(),
            counters: self.inner.http.clone(),
        };
        super::http::serve(listener, router, front, shutdown, close).await?;
        Ok(())
    }

    /// Every metric in the OpenMetrics text format (what the metrics route
    /// answers), or `None` when [`ServerConfig::metrics`] is not set.
    pub fn metrics_text(&self) -> Option<String> {
        self.inner
            .metrics
            .as_ref()
            .map(|(metrics, _)| metrics.encode())
    }

    /// Connection counters of the serve helpers' HTTP server (open,
    /// accepted, refused by each limit, closed by each timeout).
    pub fn http_stats(&self) -> HttpStats {
        self.inner.http.snapshot()
    }

    /// Disconnects every socket of every namespace.
    pub async fn close(&self) {
        with_adapter!(RawIo, &self.inner.io, io => io.close().await);
    }
}

/// The socketioxide layer of a gateway, on its adapter.
#[derive(Clone)]
#[non_exhaustive]
pub enum RawLayer {
    /// One node.
    Local(SocketIoLayer<LocalAdapter>),
    /// The Redis adapter.
    #[cfg(feature = "redis")]
    Redis(SocketIoLayer<super::adapter::RedisAdapter>),
}

impl std::fmt::Debug for RawLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local(_) => f.write_str("RawLayer::Local"),
            #[cfg(feature = "redis")]
            Self::Redis(_) => f.write_str("RawLayer::Redis"),
        }
    }
}

/// socketioxide's builder with the gateway's settings (before the adapter
/// is chosen).
fn socketio_builder(config: &ServerConfig) -> SocketIoBuilder {
    let max = config.max_payload_bytes;
    let parser = ParserConfig::common()
        .max_incoming_binary_buf_size(max)
        .max_incoming_binaries(64);
    SocketIo::builder()
        .req_path(config.req_path.clone())
        .ping_interval(config.ping_interval)
        .ping_timeout(config.ping_timeout)
        .connect_timeout(config.connect_timeout)
        .ack_timeout(config.ack_timeout)
        .max_buffer_size(config.buffer_size)
        .ws_read_buffer_size(config.ws_read_buffer_size)
        .max_payload(u64::try_from(max).unwrap_or(u64::MAX))
        .ws_max_message_size(max)
        .ws_max_frame_size(max)
        .with_parser(parser)
}

/// The metrics route: the OpenMetrics text, or `401` without the bearer
/// token when one is configured.
fn metrics_route(metrics: Arc<Metrics>, token: Option<Arc<str>>) -> axum::routing::MethodRouter {
    axum::routing::get(move |headers: axum::http::HeaderMap| {
        let allowed = token.as_deref().is_none_or(|token| {
            headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .is_some_and(|given| same_secret(given.as_bytes(), token.as_bytes()))
        });
        let response = if allowed {
            (
                axum::http::StatusCode::OK,
                [(
                    axum::http::header::CONTENT_TYPE,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )],
                metrics.encode(),
            )
        } else {
            (
                axum::http::StatusCode::UNAUTHORIZED,
                [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
                "the metrics need a bearer token\n".to_owned(),
            )
        };
        async move { response }
    })
}

/// Compares two secrets in time that depends on their lengths only.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Copies the request's URI and headers out of the connection's read buffer.
///
/// hyper parses them as slices of that buffer (several KiB), and socketioxide
/// keeps the request head for the socket's whole life (`req_parts`), which
/// pins the buffer: about 7 KB per idle connection, against a few hundred
/// bytes for the copies.
fn detach_request(mut req: axum::extract::Request) -> axum::extract::Request {
    if let Ok(uri) = axum::http::Uri::try_from(req.uri().to_string()) {
        *req.uri_mut() = uri;
    }
    let mut headers = axum::http::HeaderMap::with_capacity(req.headers().len());
    for (name, value) in req.headers() {
        let name = axum::http::HeaderName::from_bytes(name.as_str().as_bytes())
            .unwrap_or_else(|_| name.clone());
        let value =
            axum::http::HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
        headers.append(name, value);
    }
    *req.headers_mut() = headers;
    req
}

/// The root namespace when the contract has none: no events (each is
/// answered `UNKNOWN_EVENT`), anyone may connect.
static ROOT: NamespaceSpec = NamespaceSpec {
    path: "/",
    auth: AuthMode::Optional,
    client_events: &[],
    server_events: &[],
    contract: None,
    rooms: &[],
};

/// The handlers of [`ROOT`]: it has no event to dispatch.
struct NoEvents;

impl Dispatch for NoEvents {
    fn dispatch(
        &self,
        _ctx: SocketContext,
        event: &'static EventSpec,
        _payload: &str,
    ) -> BoxFuture<'static, Result<AckData, EventError>> {
        let name = event.name;
        Box::pin(async move { Err(EventError::unknown_event(name)) })
    }
}
