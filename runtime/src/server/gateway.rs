//! The [`Gateway`]: socketioxide setup, namespace registration, the per-event
//! pipeline and the serve helpers.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::header::USER_AGENT;
use futures_util::FutureExt;
use serde::de::{self, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;
use socketioxide::adapter::LocalAdapter;
use socketioxide::extract::{AckSender, SocketRef, TryData};
use socketioxide::handler::{ConnectHandler, FromMessageParts, Value as SioValue};
use socketioxide::layer::SocketIoLayer;
use socketioxide::socket::Socket;
use socketioxide::{ParserConfig, SocketIo, SocketIoBuilder};
use socketioxide::{SendError, SocketError};
use socketioxide_core::adapter::DefinedAdapter;
use tokio::net::TcpListener;
use tower_http::cors::CorsLayer;
use tracing::Instrument;

use super::ServerError;
use super::adapter::{Cluster, GatewayAdapter, RawIo, socket_room, with_adapter};
use super::auth::{AuthConfig, extract_token};
use super::config::{ContractMismatch, ServerConfig};
use super::context::{ClientMetadata, ClientState, NewClient, SocketContext};
use super::emitter::{
    AUTHENTICATED_ROOM, ClusterError, EmitStats, Emitter, StatsInner, client_state,
    resend_while_full, user_room,
};
use super::handshake::{
    ClientContract, MalformedAuth, client_contract, recovery, truncate_on_char,
};
use super::history::{self, HistoryStore};
use super::http::{HttpCounters, HttpLimits, HttpStats};
use super::idempotency::{Claim, Keys, MAX_IDEMPOTENCY_KEY_BYTES};
use super::log_throttle::LogThrottle;
use super::metrics::{EventMetrics, Metrics, NsMetrics, UNKNOWN_EVENT_LABEL};
use super::proxy::TrustedProxies;
use super::rate_limit::{Holder, SharedLimits, ceil_millis};
use super::room_caps::RoomCaps;
use super::spec::{AuthMode, BoxFuture, Dispatch, EventSpec, NamespaceSpec, RateLimit, RateScope};
use super::user_sockets::UserSockets;
use super::validate::PayloadSchema;
use crate::wire::{
    AckData, AckResponse, ERROR_EVENT, ErrorEvent, EventError, FILL_EVENT, FillRequest,
    RECOVERY_EVENT, codes, encode_ack, truncate_name,
};
use socketioxide_core::Str;
use std::ops::Range;

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
    /// `ServerConfig::idempotency_window` and `idempotency_keys_per_user`.
    idempotency: (Duration, usize),
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
            let (link, state) = super::adapter::ClusterLink::connect(redis).await?;
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
                idempotency: (config.idempotency_window, config.idempotency_keys_per_user),
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
        let (window, per_user) = self.inner.idempotency;
        let keys = Keys::new(window, per_user);
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

fn compile_schema(ns: &str, event: &EventSpec) -> Result<PayloadSchema, ServerError> {
    PayloadSchema::compile(event.schema).map_err(|message| ServerError::Schema {
        namespace: ns.to_owned(),
        event: event.name.to_owned(),
        message,
    })
}

struct CompiledEvent {
    spec: &'static EventSpec,
    validator: PayloadSchema,
    /// Its counters, when metrics are on.
    metrics: Option<EventMetrics>,
}

struct NamespaceRuntime {
    spec: &'static NamespaceSpec,
    events: HashMap<&'static str, CompiledEvent>,
    /// Its metric handles, when metrics are on.
    metrics: Option<NsMetrics>,
    dispatch: Box<dyn Dispatch>,
    auth: Option<Arc<AuthConfig>>,
    emitter: Emitter,
    /// Whether each socket joins its own room ([`socket_room`]), so that
    /// other nodes can address it by id (the Redis adapter only).
    own_socket_room: bool,
    /// Contract limits counted per user or per IP address.
    shared_limits: SharedLimits,
    /// `ServerConfig::max_rooms_per_socket`.
    max_rooms: usize,
    /// `ServerConfig::contract_mismatch` and `allow_unversioned_clients`.
    contract_check: (ContractMismatch, bool),
    /// Sockets per user in this namespace on this node.
    user_sockets: Arc<UserSockets>,
    /// `ServerConfig::max_sockets_per_user`.
    max_sockets_per_user: usize,
    /// Refusals by the per-user cap are logged once per interval.
    user_cap_log: LogThrottle,
    /// Member caps of the contract's rooms, when one has a cap.
    room_caps: Option<Arc<RoomCaps>>,
    /// The history of the contract's rooms, when one has history.
    history: Option<Arc<HistoryStore>>,
    /// The idempotency keys of the namespace's events.
    keys: Keys,
    /// `ServerConfig::fill_per_minute`.
    fill_per_minute: u32,
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

/// Most bytes of a handshake's `User-Agent` kept in a socket's metadata.
const MAX_USER_AGENT_BYTES: usize = 256;

fn mount<A: GatewayAdapter + DefinedAdapter>(
    io: &SocketIo<A>,
    rt: Arc<NamespaceRuntime>,
) -> A::InitRes {
    let path = rt.spec.path;
    let on_connect = {
        let rt = rt.clone();
        move |socket: SocketRef<A>| {
            let rt = rt.clone();
            async move { rt.connected(socket).await }
        }
    };
    let admit = move |socket: SocketRef<A>, TryData(auth): TryData<Value>| {
        let rt = rt.clone();
        async move { rt.admit(socket, auth.ok()) }
    };
    io.ns(path, on_connect.with(admit))
}

impl NamespaceRuntime {
    /// Connect middleware: runs before the socket is connected, so a refusal
    /// becomes a `connect_error` and the event handlers are in place before
    /// the client can send anything.
    fn admit<A: GatewayAdapter>(
        self: &Arc<Self>,
        socket: SocketRef<A>,
        auth: Option<Value>,
    ) -> Result<(), Cow<'static, str>> {
        let read = client_contract(auth.as_ref())
            .and_then(|contract| Ok((contract, recovery(auth.as_ref())?)));
        let (client_contract, recovery) = match read {
            Ok(read) => read,
            Err(MalformedAuth(why)) => {
                tracing::debug!(
                    namespace = self.spec.path,
                    "connection refused: INVALID_AUTH ({why})"
                );
                let code = self.refuse(codes::INVALID_AUTH);
                return Err(format!("{code}: {why}").into());
            }
        };
        let compatible = self.check_contract(client_contract.as_ref())?;
        let parts = socket.req_parts();
        let user_id = match extract_token(auth.as_ref(), &parts.headers) {
            None => None,
            Some(token) => match &self.auth {
                Some(cfg) => match cfg.verify(&token) {
                    Ok(user_id) => Some(user_id),
                    Err(err) => {
                        tracing::debug!(namespace = self.spec.path, %err, "connection refused: INVALID_TOKEN");
                        return Err(self.refuse(codes::INVALID_TOKEN).into());
                    }
                },
                None => {
                    tracing::debug!(
                        namespace = self.spec.path,
                        "token ignored: the gateway has no AuthConfig"
                    );
                    None
                }
            },
        };
        if user_id.is_none() && self.spec.auth == AuthMode::Required {
            tracing::debug!(
                namespace = self.spec.path,
                "connection refused: AUTH_REQUIRED (no token, and the namespace requires one)"
            );
            return Err(self.refuse(codes::AUTH_REQUIRED).into());
        }
        let user_id: Option<Arc<str>> = user_id.map(Arc::from);
        let user_slot = match &user_id {
            None => None,
            Some(user) => match self.user_sockets.take(user, self.max_sockets_per_user) {
                Some(slot) => Some(slot),
                None => {
                    if let Some(count) = self.user_cap_log.hit() {
                        tracing::warn!(
                            namespace = self.spec.path,
                            max = self.max_sockets_per_user,
                            count,
                            "connection refused: TOO_MANY_USER_CONNECTIONS ({count} since the last line)"
                        );
                    }
                    let code = self.refuse(codes::TOO_MANY_USER_CONNECTIONS);
                    return Err(format!(
                        "{code}: this user has {} connections to {} on this server, the most allowed",
                        self.max_sockets_per_user, self.spec.path
                    )
                    .into());
                }
            },
        };
        let remote_addr = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0);
        // Kept for the socket's life: bounded like the handshake's fields.
        let user_agent = parts
            .headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| truncate_on_char(ua, MAX_USER_AGENT_BYTES).to_owned());
        let mut runtime_rooms = Vec::new();
        if let Some(user_id) = &user_id {
            // The shared room's name is borrowed: every socket's room set
            // (cloned by socketioxide on each `rooms()` call) then holds one
            // owned string fewer.
            let own = user_room(user_id);
            socket.join(vec![
                Cow::Owned(own.clone()),
                Cow::Borrowed(AUTHENTICATED_ROOM),
            ]);
            runtime_rooms.push(own);
            runtime_rooms.push(AUTHENTICATED_ROOM.to_owned());
        }
        if self.own_socket_room {
            let own = socket_room(socket.id.as_str());
            socket.join(own.clone());
            runtime_rooms.push(own);
        }
        let state = Arc::new(ClientState::new(
            self.spec.path,
            NewClient {
                user_id,
                user_slot,
                remote_addr,
                user_agent,
                runtime_rooms,
                max_rooms: self.max_rooms,
                contract_version: client_contract.map(|c| c.version),
                version_is_label: compatible,
                room_caps: self.room_caps.clone(),
                history: self.history.clone(),
                recovery,
            },
        ));
        // In the extensions for metadata queries; the socket's own handlers
        // hold it directly, so no event has to look it up.
        socket.extensions.insert(state.clone());

        let (rt, st) = (self.clone(), state.clone());
        socket.on_fallback(move |socket: SocketRef<A>, event: IncomingEvent<A>| {
            let (rt, st) = (rt.clone(), st.clone());
            async move { rt.handle_event(socket, st, event).await }
        });
        let rt = self.clone();
        socket.on_disconnect(move |socket: SocketRef<A>| {
            let (rt, st) = (rt.clone(), state.clone());
            async move { rt.disconnected(socket, st).await }
        });
        Ok(())
    }

    /// The contract check of the handshake: a client that names another
    /// major version of this namespace's contract (or none, when
    /// unversioned clients are not allowed) is refused, or let in and
    /// logged, as configured.
    ///
    /// `Ok(true)` when the client names a compatible version (only those
    /// become metric labels), `Ok(false)` when it names none or is let in
    /// despite a mismatch. The name and version were bounded by
    /// [`client_contract`], so the messages here are too.
    fn check_contract(&self, client: Option<&ClientContract>) -> Result<bool, Cow<'static, str>> {
        let Some(ours) = self.spec.contract else {
            return Ok(client.is_some());
        };
        let (policy, allow_unversioned) = self.contract_check;
        let why = match client {
            Some(c) if ours.accepts(&c.name, &c.version) => return Ok(true),
            Some(c) => format!(
                "the client speaks contract {} {}, this server {} {}",
                c.name, c.version, ours.name, ours.version
            ),
            None if allow_unversioned => return Ok(false),
            None => format!(
                "the client names no contract version, this server speaks {} {}",
                ours.name, ours.version
            ),
        };
        if client.is_some() && policy == ContractMismatch::AllowAndLog {
            tracing::info!(
                namespace = self.spec.path,
                "contract mismatch allowed: {why}"
            );
            return Ok(false);
        }
        tracing::debug!(
            namespace = self.spec.path,
            "connection refused: CONTRACT_MISMATCH ({why})"
        );
        let code = self.refuse(codes::CONTRACT_MISMATCH);
        Err(format!("{code}: {why}").into())
    }

    /// Counts a refused connection; returns its code.
    fn refuse(&self, code: &'static str) -> &'static str {
        if let Some(m) = &self.metrics {
            m.refused(code);
        }
        code
    }

    fn context<A: GatewayAdapter>(
        &self,
        socket: &SocketRef<A>,
        state: Arc<ClientState>,
    ) -> SocketContext {
        SocketContext::new(A::raw_socket(socket.clone()), state, self.emitter.clone())
    }

    async fn connected<A: GatewayAdapter>(&self, socket: SocketRef<A>) {
        // The connect handler is the namespace's: the state comes from the
        // socket's extensions, where `admit` put it.
        let Some(state) = client_state(&socket) else {
            return;
        };
        if let Some(m) = &self.metrics {
            m.connects.inc();
            m.connected.inc();
            m.by_version(state.labelled_version()).inc();
        }
        let ctx = self.context(&socket, state);
        self.resume(&ctx).await;
        if let Err(panic) = guarded(|| self.dispatch.on_connect(ctx)).await {
            tracing::error!(namespace = self.spec.path, panic, "on_connect panicked");
        }
    }

    /// Puts a reconnecting client back in the rooms it asked to resume
    /// (`auth.recovery`): per room, under the room's lock, the events it
    /// missed are sent again in order, with their offsets, it re-joins, and
    /// a [`RoomPosition`](crate::wire::RoomPosition) says whether anything
    /// is gone. Later events of the room reach it after its replay.
    async fn resume(&self, ctx: &SocketContext) {
        let asked = std::mem::take(
            &mut *ctx
                .state()
                .resume
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for at in asked {
            #[cfg(feature = "redis")]
            let shared = self.history.as_ref().and_then(|h| h.shared(&at.room));
            #[cfg(feature = "redis")]
            let position = match shared {
                Some((shared, spec)) => history::resume_shared(shared, spec, ctx, &at).await,
                None => history::resume(self.history.as_deref(), ctx, &at),
            };
            #[cfg(not(feature = "redis"))]
            let position = history::resume(self.history.as_deref(), ctx, &at);
            // The client waits for this answer, after a replay that may
            // have filled its queue: wait for room, as for an ack.
            let _ = ctx
                .emit_to_self_patiently(RECOVERY_EVENT, &position, ACK_RETRY_FOR)
                .await;
        }
    }

    async fn disconnected<A: GatewayAdapter>(&self, socket: SocketRef<A>, state: Arc<ClientState>) {
        if let Some(m) = &self.metrics {
            m.connected.dec();
            m.by_version(state.labelled_version()).dec();
        }
        let ctx = self.context(&socket, state);
        if let Err(panic) = guarded(|| self.dispatch.on_disconnect(ctx)).await {
            tracing::error!(namespace = self.spec.path, panic, "on_disconnect panicked");
        }
        // socketioxide drops the socket (and with it the metadata kept in
        // its extensions) right after this handler returns.
    }

    async fn handle_event<A: GatewayAdapter>(
        &self,
        socket: SocketRef<A>,
        state: Arc<ClientState>,
        mut event: IncomingEvent<A>,
    ) {
        state.touch();
        let compiled = self.events.get(event.name.as_str());
        if compiled.is_none() && event.name == FILL_EVENT && event.ack_id.is_some() {
            let answer = self.fill(&socket, &state, &event.payload).await;
            let response = match answer {
                Ok(position) => {
                    encode_ack(&position).map_or_else(AckResponse::Failure, AckResponse::Success)
                }
                Err(err) => AckResponse::Failure(err),
            };
            self.send_ack(&event, &response).await;
            return;
        }
        let label = compiled.map_or(UNKNOWN_EVENT_LABEL, |c| c.spec.name);
        match (&self.metrics, compiled) {
            (None, _) => {}
            (Some(_), Some(c)) => {
                if let Some(m) = &c.metrics {
                    m.received.inc();
                }
            }
            (Some(m), None) => {
                m.unknown.received.inc();
            }
        }
        // Unknown events: answer through the ack when the client asked for one.
        let via_ack = event.ack_id.is_some() && compiled.is_none_or(|c| c.spec.acked);
        let result = match (compiled, &event.payload) {
            (_, RawPayload::Unreadable(reason)) => {
                Err(EventError::invalid_payload("", reason.clone()))
            }
            (None, _) => {
                // The name is the client's: the answer echoes a bounded part.
                event.name = truncate_name(&event.name).into_owned();
                Err(EventError::unknown_event(&event.name))
            }
            (Some(compiled), payload) => {
                // Handler logs carry the event's context without the handler
                // adding it (an `info` span: free when that level is off).
                let span = tracing::info_span!(
                    "event",
                    namespace = self.spec.path,
                    event = compiled.spec.name,
                    socket = %socket.id,
                    user = state.user_id.as_deref(),
                );
                match (compiled.spec.idempotent && via_ack, &event.key) {
                    (true, Some(Ok(key))) => {
                        let scope = key_scope(&state);
                        let name = compiled.spec.name;
                        match self.keys.claim(&scope, name, key).await {
                            Claim::Answer(answer) => {
                                // A retry: the first answer, the handler
                                // does not run again.
                                self.send_ack(&event, &*answer).await;
                                return;
                            }
                            Claim::Busy(why) => Err(EventError::unavailable(why)),
                            Claim::Run => {
                                let result = self
                                    .run(&socket, &state, compiled, payload)
                                    .instrument(span)
                                    .await;
                                let answer = kept_answer(&result);
                                self.keys.settle(&scope, name, key, answer).await;
                                result
                            }
                        }
                    }
                    (true, Some(Err(reason))) => {
                        Err(EventError::invalid_payload("", reason.clone()))
                    }
                    _ => {
                        self.run(&socket, &state, compiled, payload)
                            .instrument(span)
                            .await
                    }
                }
            }
        };
        if let Err(err) = &result {
            if let Some(m) = &self.metrics {
                m.error(label, err.code.clone());
            }
            tracing::debug!(
                namespace = self.spec.path,
                event = %event.name,
                socket = %socket.id,
                user = state.user_id.as_deref(),
                code = %err.code,
                reason = %err.message,
                "event refused"
            );
        }
        match (result, via_ack) {
            (Ok(data), true) => {
                self.send_ack(&event, &AckResponse::Success(data)).await;
            }
            (Ok(_), false) => {}
            (Err(err), true) => {
                self.send_ack(&event, &AckResponse::<AckData>::Failure(err))
                    .await;
            }
            (Err(err), false) => {
                let payload = ErrorEvent::new(event.name, err);
                // Failures are logged and counted by the emitter.
                let _ = self
                    .emitter
                    .emit_socket_ref(&A::raw_socket(socket), ERROR_EVENT, &payload);
            }
        }
    }

    /// A client's [`FILL_EVENT`]: the events of a room it is in, after its
    /// offset, sent again (see `history::fill`). At most
    /// `ServerConfig::fill_per_minute` per connection: each is a read of up
    /// to the room's `size` events.
    async fn fill<A: GatewayAdapter>(
        &self,
        socket: &SocketRef<A>,
        state: &Arc<ClientState>,
        payload: &RawPayload,
    ) -> Result<crate::wire::RoomPosition, EventError> {
        let limit = RateLimit {
            max: self.fill_per_minute,
            window_ms: 60_000,
            per: RateScope::Connection,
        };
        self.check_rate(state, FILL_EVENT, limit)
            .map_err(|wait| EventError::rate_limited(ceil_millis(wait)))?;
        let text = payload.text()?;
        if text.len() > MAX_FILL_REQUEST_BYTES {
            return Err(EventError::payload_too_large(
                MAX_FILL_REQUEST_BYTES,
                text.len(),
            ));
        }
        let request: FillRequest = serde_json::from_str(text)
            .map_err(|e| EventError::invalid_payload("", e.to_string()))?;
        let ctx = self.context(socket, state.clone());
        Ok(history::fill(
            self.history.as_deref(),
            &ctx,
            &request.room,
            &request.epoch,
            request.offset,
        )
        .await)
    }

    async fn run<A: GatewayAdapter>(
        &self,
        socket: &SocketRef<A>,
        state: &Arc<ClientState>,
        compiled: &CompiledEvent,
        payload: &RawPayload,
    ) -> Result<AckData, EventError> {
        let spec = compiled.spec;
        if spec.auth == AuthMode::Required && state.user_id.is_none() {
            return Err(EventError::auth_required());
        }
        if let Some(limit) = spec.rate_limit {
            self.check_rate(state, spec.name, limit)
                .map_err(|wait| EventError::rate_limited(ceil_millis(wait)))?;
        }
        if let Some(max) = spec.max_payload_bytes
            && payload.len() > max
        {
            return Err(EventError::payload_too_large(max, payload.len()));
        }
        let text = payload.text()?;
        compiled
            .validator
            .check(text)
            .map_err(|refusal| EventError::invalid_payload(refusal.path, refusal.reason))?;
        let ctx = self.context(socket, state.clone());
        let started = compiled.metrics.as_ref().map(|_| Instant::now());
        let handled = guarded(|| self.dispatch.dispatch(ctx, spec, text)).await;
        if let (Some(m), Some(started)) = (&compiled.metrics, started) {
            m.handler.observe(started.elapsed());
        }
        match handled {
            Ok(result) => result,
            Err(panic) => {
                tracing::error!(
                    namespace = self.spec.path,
                    event = spec.name,
                    panic,
                    "event handler panicked"
                );
                Err(EventError::internal("internal error"))
            }
        }
    }

    /// The contract limit of `event` for this connection, counted per its
    /// [`RateScope`]: `Err(wait)` when refused.
    fn check_rate(
        &self,
        state: &ClientState,
        event: &'static str,
        limit: RateLimit,
    ) -> Result<(), Duration> {
        let window = Duration::from_millis(limit.window_ms);
        let holder = match (limit.per, &state.user_id, state.remote_addr) {
            (RateScope::Connection, _, _) => None,
            (RateScope::User, Some(user), _) => Some(Holder::User(user.clone())),
            (RateScope::User | RateScope::Ip, _, Some(addr)) => Some(Holder::Ip(addr.ip())),
            // No peer address (a server of the application's own without
            // connect info): the connection is all that can be counted.
            (RateScope::User | RateScope::Ip, _, None) => None,
        };
        match holder {
            Some(holder) => self.shared_limits.check(holder, event, limit.max, window),
            None => state.limits.check_event(event, limit.max, window),
        }
    }

    /// Sends the ack. socketioxide refuses a packet when the socket's
    /// buffer is full (`InternalChannelFull`), which a burst of events that
    /// each also broadcast to the sender can cause; an ack is the one answer
    /// a client waits for, so it is retried while the socket is connected
    /// (for at most [`ACK_RETRY_FOR`]) instead of being dropped.
    ///
    /// The first attempt is synchronous; the retry loop (with its timer) is
    /// a separate boxed future, so the per-event task stays small.
    async fn send_ack<A: GatewayAdapter, R: serde::Serialize + ?Sized>(
        &self,
        event: &IncomingEvent<A>,
        response: &R,
    ) {
        match event.ack_sender().send(response) {
            Ok(()) => self.emitter.record_send_success(),
            Err(SendError::Socket(SocketError::InternalChannelFull))
                if event.socket.connected() =>
            {
                self.emitter.record_ack_retry();
                Box::pin(self.retry_ack(event, response)).await;
            }
            Err(err) => {
                self.emitter.record_send_failure(&event.name, err);
            }
        }
    }

    async fn retry_ack<A: GatewayAdapter, R: serde::Serialize + ?Sized>(
        &self,
        event: &IncomingEvent<A>,
        response: &R,
    ) {
        let sent = resend_while_full(
            ACK_RETRY_FOR,
            || event.socket.connected(),
            || event.ack_sender().send(response),
        )
        .await;
        match sent {
            Ok(()) => self.emitter.record_send_success(),
            Err(err) => {
                self.emitter.record_send_failure(&event.name, err);
            }
        }
    }
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

/// Calls `make` and awaits its future, turning a panic in either into `Err`
/// with the panic message.
async fn guarded<T>(make: impl FnOnce() -> BoxFuture<'static, T>) -> Result<T, String> {
    let fut = catch_unwind(AssertUnwindSafe(make)).map_err(|p| panic_message(p.as_ref()))?;
    AssertUnwindSafe(fut)
        .catch_unwind()
        .await
        .map_err(|p| panic_message(p.as_ref()))
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// The raw incoming event: name, first argument as raw JSON (a missing
/// argument is `null`; further arguments are ignored) and the ack.
///
/// Deliberately not socketioxide's `Data<T>`, which drops events whose payload
/// fails to deserialize without answering.
struct IncomingEvent<A: GatewayAdapter> {
    name: String,
    payload: RawPayload,
    /// The idempotency key of the extra last argument
    /// (`{"idempotencyKey": "…"}`), or why it is refused.
    key: Option<Result<String, String>>,
    /// Kept to build an [`AckSender`] per send attempt (it is consumed by a
    /// send, also a failed one).
    socket: Arc<Socket<A>>,
    ack_id: Option<i64>,
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

/// Default [`ServerConfig::fill_per_minute`](super::ServerConfig::fill_per_minute):
/// 120 (a client sends one per gap it sees, after waiting for the missing
/// event).
pub const DEFAULT_FILL_PER_MINUTE: u32 = 120;

/// Largest [`FILL_EVENT`] payload: a room name, an epoch and an offset.
const MAX_FILL_REQUEST_BYTES: usize = 1024;

/// How long a refused ack is retried while the socket's buffer is full.
const ACK_RETRY_FOR: Duration = Duration::from_secs(5);

impl<A: GatewayAdapter> IncomingEvent<A> {
    fn ack_sender(&self) -> AckSender<A> {
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
enum RawPayload {
    /// No payload argument: `null`.
    Missing,
    /// The payload's JSON text, `text[range]` (the frame is shared, not copied).
    Text { text: Str, range: Range<usize> },
    /// The frame is not an event array.
    Unreadable(String),
}

impl RawPayload {
    /// Size of the payload's JSON text in bytes.
    fn len(&self) -> usize {
        match self {
            Self::Text { range, .. } => range.len(),
            Self::Missing | Self::Unreadable(_) => 0,
        }
    }

    /// The payload's JSON text (`null` when there is none), borrowed from
    /// the frame.
    fn text(&self) -> Result<&str, EventError> {
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
struct EventHead<'a>(String, Option<&'a RawValue>, Option<&'a RawValue>);

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

/// Who an idempotency key belongs to: the user, or an anonymous client's
/// address.
fn key_scope(state: &ClientState) -> String {
    match (&state.user_id, state.remote_addr) {
        (Some(user), _) => format!("u:{user}"),
        (None, Some(addr)) => format!("ip:{}", addr.ip()),
        (None, None) => "anonymous".to_owned(),
    }
}

/// The answer a retry of the same key gets: the handler's result, unless
/// nothing was done that a retry must not repeat (refused before the
/// handler ran, or it failed for want of a store: then `None`, and a
/// retry runs).
fn kept_answer(result: &Result<AckData, EventError>) -> Option<Box<RawValue>> {
    let response = match result {
        Ok(data) => AckResponse::Success(data.clone()),
        Err(err)
            if matches!(
                &*err.code,
                codes::RATE_LIMITED
                    | codes::UNAVAILABLE
                    | codes::INTERNAL
                    | codes::AUTH_REQUIRED
                    | codes::INVALID_PAYLOAD
                    | codes::PAYLOAD_TOO_LARGE
            ) =>
        {
            return None;
        }
        Err(err) => AckResponse::Failure(err.clone()),
    };
    serde_json::value::to_raw_value(&response).ok()
}

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

    #[tokio::test]
    async fn guarded_catches_panics() {
        let ok = guarded(|| Box::pin(async { 5 })).await;
        assert_eq!(ok, Ok(5));
        let in_future: Result<(), String> =
            guarded(|| Box::pin(async { panic!("boom in future") })).await;
        assert_eq!(in_future.unwrap_err(), "boom in future");
        let in_call: Result<(), String> = guarded(|| panic!("boom {}", 1)).await;
        assert_eq!(in_call.unwrap_err(), "boom 1");
    }

    #[test]
    fn bad_schema_is_an_error() {
        static BAD: EventSpec = EventSpec {
            name: "x",
            auth: AuthMode::Optional,
            rate_limit: None,
            max_payload_bytes: None,
            acked: false,
            idempotent: false,
            schema: r#"{"type": 5}"#,
        };
        static NOT_JSON: EventSpec = EventSpec { schema: "{", ..BAD };
        assert!(matches!(
            compile_schema("/", &BAD),
            Err(ServerError::Schema { .. })
        ));
        assert!(matches!(
            compile_schema("/", &NOT_JSON),
            Err(ServerError::Schema { .. })
        ));
    }
}
