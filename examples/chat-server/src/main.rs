//! Example server for `schemas/chat.contract.json`: both namespaces on the
//! generated traits, in-memory state.
//!
//! ```text
//! chat-server                 # serve on 127.0.0.1:3000 (HOST, PORT)
//! chat-server token <user>    # print a valid HS256 token for <user>
//! ```
//!
//! Environment: `JWT_SECRET` (default `dev-secret`, with a loud warning; the
//! `GET /dev/token?user=…` route exists only then), `HEALTH_INTERVAL_MS`
//! (default 5000), `WEB_DIR` (a built web app to serve at `/`; by default
//! `examples/chat-web/dist` when built, else a page on how to build it), `RUST_LOG`,
//! `REDIS_URL` (`redis://host:port`: run as one node of several sharing
//! rooms and broadcasts through Redis; unset, one node in memory),
//! `REDIS_PREFIX` (the Redis channel prefix, default `evcontract`), and the
//! HTTP limits `MAX_CONNECTIONS` (default 100000), `MAX_CONNECTIONS_PER_IP`
//! (1000), `HEADER_READ_TIMEOUT_MS` (10000), `SLOW_CONSUMER_TIMEOUT_MS`
//! (5000), `BODY_READ_TIMEOUT_MS` (15000), `MAX_ROOMS_PER_SOCKET` (100) and
//! `MAX_SOCKETS_PER_USER` (32); `TRUSTED_PROXIES` (comma-separated addresses
//! or CIDR networks of the reverse proxies whose `X-Forwarded-For` names the
//! client; none by default); `JWT_ISSUER` / `JWT_AUDIENCE` (required `iss` /
//! `aud`, comma-separated to accept several; unchecked by default);
//! `HISTORY` (`on`: threads keep their last events for clients that
//! reconnect; `off`: live only); `PRESENCE_INTERVAL_MS` (1000: a user is announced in a thread at most
//! once per interval); `REDIS_STALL_TIMEOUT_MS` (50: the longest a handler's
//! emit waits for Redis); `REDIS_REQUEST_TIMEOUT_MS` (5000: the longest a
//! Redis command may take); `IDEMPOTENCY_LEASE_MS` (10000: how long a
//! send's idempotency key stays "running" in Redis unless renewed). `TLS_CERT` and `TLS_KEY` (PEM
//! files: the certificate chain and its private key) serve HTTPS/WSS
//! instead of plain HTTP. Prometheus metrics are served at `GET /metrics`
//! (`METRICS_PATH`) on their own listener, `METRICS_ADDR` (default
//! `127.0.0.1:9464`, loopback only; `main` serves them on the public port,
//! where `METRICS_TOKEN` should guard them with a bearer token);
//! `METRICS=off` turns them off. A client generated from
//! another major version of the contract is refused with `CONTRACT_MISMATCH`
//! (`CONTRACT_MISMATCH=allow` lets it in and logs it); a client that names
//! no version is let in (`UNVERSIONED_CLIENTS=refuse` refuses it).
//! `ADMIN_USERS` lists the user ids (comma-separated) who may send
//! `announce` to everyone on `/chat`; by default nobody may (the others get
//! `ACCESS_DENIED`).

#![forbid(unsafe_code)]

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use chat_contract::chat::rooms;
use chat_contract::chat::server::{ChatEmitter, ChatHandler};
use chat_contract::health::server::{HealthEmitter, HealthHandler};
use chat_contract::runtime::EventError;
use chat_contract::runtime::server::{
    AuthConfig, ContractMismatch, EmitError, Gateway, RedisConfig, ServerConfig, SocketContext,
    Target, TlsConfig, TrustedProxies, sign_hs256,
};
use chat_contract::{
    Announce, Announcement, ErrorCode, GetThread, GetThreadAck, HealthStatus, HealthStatusStatus,
    JoinThread, JoinThreadAck, LeaveThread, LeaveThreadAck, MarkRead, Message, MessageRead,
    NewMessage, RequestRefresh, SendMessage, Typing, TypingIndicator, VpsData,
};
use presence::Presence;

mod presence;

const DEV_SECRET: &str = "dev-secret";
/// Longest user name `/dev/token` signs, in bytes.
const MAX_DEV_USER_BYTES: usize = 64;
const TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

/// The `/chat` namespace: threads kept in memory, bounded: the newest
/// [`HISTORY_PER_THREAD`] messages of the newest [`MAX_THREADS`] threads.
struct Chat {
    threads: Mutex<History>,
    /// The user ids who may `announce` (`ADMIN_USERS`).
    admins: HashSet<String>,
    /// Who is in which thread, and the `joined` / `left` announcements.
    presence: Presence,
}

/// Messages kept per thread (older ones are dropped first).
const HISTORY_PER_THREAD: usize = 200;
/// Threads kept (the thread written to least recently is dropped first).
const MAX_THREADS: usize = 10_000;

/// The recent messages of the recently active threads.
///
/// Recording is O(1) whatever the number of threads: each thread keeps the
/// number of its last write, and `order` lists writes oldest first; a write
/// that is not its thread's last is stale and skipped when the oldest
/// thread is dropped (and swept out when stale entries outnumber the
/// threads).
#[derive(Default)]
struct History {
    /// Messages per thread id, oldest first, and the number of the
    /// thread's last write.
    threads: HashMap<Arc<str>, (VecDeque<Message>, u64)>,
    /// (thread id, write number) of each write, oldest first.
    order: VecDeque<(Arc<str>, u64)>,
    /// Writes so far.
    writes: u64,
}

impl History {
    /// The kept messages of `thread_id`, oldest first.
    fn recent(&self, thread_id: &str) -> Vec<Message> {
        self.threads
            .get(thread_id)
            .map(|(messages, _)| messages.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn record(&mut self, thread_id: &str, message: Message) {
        self.writes += 1;
        let write = self.writes;
        let id = match self.threads.get_key_value(thread_id) {
            Some((id, _)) => id.clone(),
            None => {
                while self.threads.len() >= MAX_THREADS {
                    let Some((oldest, at)) = self.order.pop_front() else {
                        break;
                    };
                    if self
                        .threads
                        .get(&oldest)
                        .is_some_and(|(_, last)| *last == at)
                    {
                        self.threads.remove(&oldest);
                    }
                }
                let id: Arc<str> = thread_id.into();
                self.threads.insert(id.clone(), (VecDeque::new(), write));
                id
            }
        };
        if let Some((messages, last)) = self.threads.get_mut(thread_id) {
            *last = write;
            if messages.len() >= HISTORY_PER_THREAD {
                messages.pop_front();
            }
            messages.push_back(message);
        }
        self.order.push_back((id, write));
        if self.order.len() > 2 * MAX_THREADS.max(self.threads.len()) {
            let threads = &self.threads;
            self.order
                .retain(|(t, at)| threads.get(t).is_some_and(|(_, last)| last == at));
        }
    }
}

/// Internal errors (a poisoned lock, an id that fails its own schema) are
/// answered as `INTERNAL` rather than crashing the server.
fn internal(e: impl std::fmt::Display) -> EventError {
    EventError::internal(e.to_string())
}

/// A broadcast that did not reach every recipient (a disconnected socket, a
/// full per-socket buffer) does not fail the sender's event: the runtime has
/// already logged and counted each failed delivery.
fn delivered_partly(err: EmitError) {
    tracing::debug!(%err, "broadcast not delivered to every recipient");
}

impl Chat {
    /// The user ids in `ADMIN_USERS` (comma-separated; blanks around ids and
    /// empty entries are ignored); nobody when it is unset.
    fn admins_from_env() -> HashSet<String> {
        std::env::var("ADMIN_USERS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn require_member(ctx: &SocketContext, thread_id: &str) -> Result<String, EventError> {
        let room = rooms::thread(thread_id);
        if ctx.in_room(&room) {
            Ok(room)
        } else {
            Err(ErrorCode::AccessDenied.error(format!("join thread `{thread_id}` first")))
        }
    }
}

impl ChatHandler for Chat {
    async fn join_thread(
        &self,
        ctx: &SocketContext,
        p: JoinThread,
    ) -> Result<JoinThreadAck, EventError> {
        let user = ctx.require_auth()?.to_owned();
        let thread_id = p.thread_id.to_string();
        let room = rooms::thread(&thread_id);
        ctx.join(room.clone())?;
        // The runtime's `event` span adds the namespace, event, socket and
        // user to this line.
        tracing::debug!(thread = %thread_id, "joined the thread");
        let emitter = ChatEmitter::of(ctx);
        self.presence
            .entered(&emitter, ctx.socket_id(), &user, &thread_id)
            .await;
        // Members on every node; while the other nodes cannot be asked
        // (Redis down), this node's members, rather than no answer.
        let members = match emitter.raw().room_users(&room).await {
            Ok(users) => users,
            Err(err) => {
                tracing::debug!(%err, "members of this node only");
                let local: BTreeSet<String> = emitter
                    .raw()
                    .room_members(&room)
                    .into_iter()
                    .filter_map(|m| m.user_id)
                    .collect();
                local.into_iter().collect()
            }
        };
        Ok(JoinThreadAck { thread_id, members })
    }

    async fn leave_thread(
        &self,
        ctx: &SocketContext,
        p: LeaveThread,
    ) -> Result<LeaveThreadAck, EventError> {
        let user = ctx.require_auth()?.to_owned();
        let thread_id = p.thread_id.to_string();
        let room = rooms::thread(&thread_id);
        ctx.leave(room);
        self.presence
            .exited(&ChatEmitter::of(ctx), ctx.socket_id(), &user, &thread_id)
            .await;
        Ok(LeaveThreadAck { thread_id })
    }

    async fn get_thread(
        &self,
        ctx: &SocketContext,
        p: GetThread,
    ) -> Result<GetThreadAck, EventError> {
        ctx.require_auth()?;
        let thread_id = p.thread_id.to_string();
        Self::require_member(ctx, &thread_id)?;
        let messages = self.threads.lock().map_err(internal)?.recent(&thread_id);
        Ok(GetThreadAck {
            thread_id,
            messages,
        })
    }

    async fn send_message(
        &self,
        ctx: &SocketContext,
        p: SendMessage,
    ) -> Result<Message, EventError> {
        let user = ctx.require_auth()?.to_owned();
        let thread_id = p.thread_id.to_string();
        let room = Self::require_member(ctx, &thread_id)?;
        let message = Message {
            id: uuid::Uuid::new_v4(),
            thread_id: thread_id.clone().try_into().map_err(internal)?,
            user_id: user,
            content: p.content.into(),
            created_at: chrono::Utc::now(),
        };
        let event = NewMessage {
            thread_id: thread_id.clone(),
            message,
        };
        match ChatEmitter::of(ctx)
            .new_message(Target::room(room), &event)
            .await
        {
            // Threads keep their history in Redis on several nodes: a
            // message that could not be kept reached nobody, and the
            // sender may send it again.
            Err(EmitError::NotKept { reason }) => {
                return Err(EventError::unavailable(format!(
                    "the message was not sent: {reason}"
                )));
            }
            other => other.unwrap_or_else(delivered_partly),
        }
        self.threads
            .lock()
            .map_err(internal)?
            .record(&thread_id, event.message.clone());
        // The ack carries the same message the room received.
        Ok(event.message)
    }

    async fn typing(&self, ctx: &SocketContext, p: Typing) -> Result<(), EventError> {
        let user = ctx.require_auth()?.to_owned();
        let thread_id = p.thread_id.to_string();
        let room = Self::require_member(ctx, &thread_id)?;
        let event = TypingIndicator {
            thread_id,
            user_id: user,
            is_typing: p.is_typing,
        };
        ChatEmitter::of(ctx)
            .typing_indicator(Target::room_except(room, ctx.socket_id()), &event)
            .await
            .unwrap_or_else(delivered_partly);
        Ok(())
    }

    async fn mark_read(&self, ctx: &SocketContext, p: MarkRead) -> Result<(), EventError> {
        let user = ctx.require_auth()?.to_owned();
        let thread_id = p.thread_id.to_string();
        let room = Self::require_member(ctx, &thread_id)?;
        let event = MessageRead {
            thread_id,
            user_id: user,
            message_ids: p.message_ids.into_iter().map(|id| id.to_string()).collect(),
        };
        ChatEmitter::of(ctx)
            .message_read(Target::room_except(room, ctx.socket_id()), &event)
            .await
            .unwrap_or_else(delivered_partly);
        Ok(())
    }

    async fn on_disconnect(&self, ctx: &SocketContext) {
        if let Some(user) = ctx.user_id() {
            self.presence
                .disconnected(&ChatEmitter::of(ctx), ctx.socket_id(), user)
                .await;
        }
    }

    async fn announce(&self, ctx: &SocketContext, p: Announce) -> Result<Announcement, EventError> {
        let user = ctx.require_auth()?.to_owned();
        if !self.admins.contains(&user) {
            return Err(ErrorCode::AccessDenied.error("only administrators may announce"));
        }
        let announcement = Announcement {
            id: uuid::Uuid::new_v4(),
            text: String::from(p.text).try_into().map_err(internal)?,
            from: user,
            sent_at: chrono::Utc::now(),
        };
        tracing::info!(id = %announcement.id, "announcement to everyone");
        // Every socket of the namespace, on every node, joined to a thread
        // or not; the sender's too.
        ChatEmitter::of(ctx)
            .announcement(Target::All, &announcement)
            .await
            .unwrap_or_else(delivered_partly);
        // The ack carries the same announcement everyone received.
        Ok(announcement)
    }
}

/// The `/health` namespace (cheap to clone: the periodic task keeps a copy).
#[derive(Clone)]
struct Health(Arc<HealthState>);

struct HealthState {
    gateway: Gateway,
    started: Instant,
    interval: Duration,
}

impl HealthState {
    async fn status(&self) -> HealthStatus {
        // The whole cluster's clients (one request to every node); this
        // node's while the others cannot be asked.
        let connected = match self.gateway.cluster_total_connected().await {
            Ok(n) => n,
            Err(err) => {
                tracing::debug!(%err, "connected clients of this node only");
                self.gateway.total_connected()
            }
        };
        HealthStatus {
            status: HealthStatusStatus::Ok,
            uptime_seconds: self.started.elapsed().as_secs(),
            connected_clients: connected as u64,
            checked_at: chrono::Utc::now(),
        }
    }
}

/// Host usage from `/proc` (Linux); `None` elsewhere.
fn vps_data() -> Option<VpsData> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<f64> {
        meminfo
            .lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let memory = 100.0 * (1.0 - field("MemAvailable:")? / field("MemTotal:")?);
    let load: f64 = std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    Some(VpsData {
        host: std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()?
            .trim()
            .to_owned(),
        cpu_percent: (100.0 * load / cpus).min(100.0),
        memory_percent: memory.clamp(0.0, 100.0),
        disk_percent: 0.0,
    })
}

impl HealthHandler for Health {
    async fn request_refresh(
        &self,
        _ctx: &SocketContext,
        _p: RequestRefresh,
    ) -> Result<HealthStatus, EventError> {
        Ok(self.0.status().await)
    }

    async fn after_init(&self, emitter: HealthEmitter) {
        let this = Arc::clone(&self.0);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(this.interval);
            tick.tick().await; // the first tick is immediate; on-connect covers that
            loop {
                tick.tick().await;
                // Every node runs this loop: each one pushes to its own
                // sockets only, so no client gets a push once per node.
                if let Err(e) = emitter
                    .health_status(Target::Authenticated.local(), &this.status().await)
                    .await
                {
                    tracing::warn!(%e, "health_status broadcast failed");
                }
                if let Some(vps) = vps_data()
                    && let Err(e) = emitter.vps_update(Target::All.local(), &vps).await
                {
                    tracing::warn!(%e, "vps_update broadcast failed");
                }
            }
        });
    }

    async fn on_connect(&self, ctx: &SocketContext) {
        if ctx.is_authenticated() {
            let emitter = HealthEmitter::of(ctx);
            if let Err(e) = emitter
                .health_status(Target::socket(ctx.socket_id()), &self.0.status().await)
                .await
            {
                tracing::warn!(%e, "initial health_status failed");
            }
        }
    }
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    user: String,
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// The number in environment variable `name`, if set.
fn env_number<T: std::str::FromStr>(name: &str) -> Result<Option<T>, String>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map(Some)
            .map_err(|e| format!("bad {name} `{v}`: {e}")),
        Err(_) => Ok(None),
    }
}

/// The runtime's limits, with what the environment overrides.
fn with_limits(mut config: ServerConfig) -> Result<ServerConfig, String> {
    if let Some(n) = env_number("MAX_CONNECTIONS")? {
        config = config.max_connections(n);
    }
    if let Some(n) = env_number("MAX_CONNECTIONS_PER_IP")? {
        config = config.max_connections_per_ip(n);
    }
    if let Some(ms) = env_number("HEADER_READ_TIMEOUT_MS")? {
        config = config.header_read_timeout(Duration::from_millis(ms));
    }
    match env_or("CONTRACT_MISMATCH", "refuse").as_str() {
        "refuse" => {}
        "allow" => config = config.contract_mismatch(ContractMismatch::AllowAndLog),
        other => {
            return Err(format!(
                "bad CONTRACT_MISMATCH `{other}`: use refuse or allow"
            ));
        }
    }
    match env_or("UNVERSIONED_CLIENTS", "allow").as_str() {
        "allow" => {}
        "refuse" => config = config.allow_unversioned_clients(false),
        other => {
            return Err(format!(
                "bad UNVERSIONED_CLIENTS `{other}`: use allow or refuse"
            ));
        }
    }
    if let Some(n) = env_number("MAX_ROOMS_PER_SOCKET")? {
        config = config.max_rooms_per_socket(n);
    }
    if let Some(ms) = env_number("SLOW_CONSUMER_TIMEOUT_MS")? {
        config = config.slow_consumer_timeout(Duration::from_millis(ms));
    }
    if let Some(ms) = env_number("BODY_READ_TIMEOUT_MS")? {
        config = config.body_read_timeout(Duration::from_millis(ms));
    }
    if let Some(n) = env_number("MAX_SOCKETS_PER_USER")? {
        config = config.max_sockets_per_user(n);
    }
    match env_or("HISTORY", "on").as_str() {
        "on" => {}
        "off" => config = config.room_history(false),
        other => return Err(format!("bad HISTORY `{other}`: use on or off")),
    }
    if let Ok(list) = std::env::var("TRUSTED_PROXIES") {
        let proxies = TrustedProxies::parse(list.split(',')).map_err(|e| e.to_string())?;
        config = config.trusted_proxies(proxies);
    }
    Ok(config)
}

/// Token verification: `JWT_SECRET`, and the issuer and audience a token
/// must name when `JWT_ISSUER` / `JWT_AUDIENCE` are set (comma-separated
/// to accept several).
fn auth_config(secret: &str) -> AuthConfig {
    let mut auth = AuthConfig::hs256(secret.as_bytes());
    let list = |name: &str| -> Vec<String> {
        std::env::var(name)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect()
    };
    for issuer in list("JWT_ISSUER") {
        auth = auth.issuer(issuer);
    }
    for audience in list("JWT_AUDIENCE") {
        auth = auth.audience(audience);
    }
    auth
}

/// Where the metrics are served: `METRICS_ADDR` (default
/// [`DEFAULT_METRICS_ADDR`], loopback only), or `main` for the public port,
/// where `METRICS_TOKEN` should then guard them.
enum MetricsAt {
    Own(SocketAddr),
    Main,
}

/// The metrics listener's default address: loopback, so that only the
/// machine (a Prometheus agent beside the server) can read them.
const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9464";

fn metrics_at() -> Result<MetricsAt, String> {
    match env_or("METRICS_ADDR", DEFAULT_METRICS_ADDR).as_str() {
        "main" => Ok(MetricsAt::Main),
        addr => addr
            .parse()
            .map(MetricsAt::Own)
            .map_err(|e| format!("bad METRICS_ADDR `{addr}` (host:port or main): {e}")),
    }
}

async fn run() -> Result<(), String> {
    let secret = std::env::var("JWT_SECRET").ok();
    let dev_mode = secret.is_none();
    let secret = secret.unwrap_or_else(|| DEV_SECRET.to_owned());

    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("token") {
        let user = args.get(1).ok_or("usage: chat-server token <user>")?;
        let token = sign_hs256(&secret, user, TOKEN_TTL).map_err(|e| e.to_string())?;
        println!("{token}");
        return Ok(());
    }
    if let Some(other) = args.first() {
        return Err(format!(
            "unknown argument `{other}`; usage: chat-server [token <user>]"
        ));
    }

    if dev_mode {
        tracing::warn!(
            "JWT_SECRET is not set: verifying tokens with the public development secret `{DEV_SECRET}` \
             and serving GET /dev/token. Never run like this in production."
        );
    }
    let host = env_or("HOST", "127.0.0.1");
    let port = env_or("PORT", "3000");
    let addr: SocketAddr = format!("{host}:{port}")
        .parse()
        .map_err(|e| format!("bad HOST/PORT `{host}:{port}`: {e}"))?;
    let interval_ms: u64 = env_or("HEALTH_INTERVAL_MS", "5000")
        .parse()
        .map_err(|e| format!("bad HEALTH_INTERVAL_MS: {e}"))?;

    let mut config = with_limits(ServerConfig::new().auth(auth_config(&secret)))?;
    if let Some(url) = std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty()) {
        let mut redis = RedisConfig::new(url);
        if let Ok(prefix) = std::env::var("REDIS_PREFIX") {
            redis = redis.prefix(prefix);
        }
        if let Some(ms) = env_number("REDIS_STALL_TIMEOUT_MS")? {
            redis = redis.stall_timeout(Duration::from_millis(ms));
        }
        if let Some(ms) = env_number("REDIS_REQUEST_TIMEOUT_MS")? {
            redis = redis.request_timeout(Duration::from_millis(ms));
        }
        if let Some(ms) = env_number("IDEMPOTENCY_LEASE_MS")? {
            config = config.idempotency_lease(Duration::from_millis(ms));
        }
        config = config.redis(redis);
    }
    let presence_interval = match env_number("PRESENCE_INTERVAL_MS")? {
        Some(ms) => Duration::from_millis(ms),
        None => presence::DEFAULT_INTERVAL,
    };
    let metrics_listener = match env_or("METRICS", "on").as_str() {
        "on" => {
            let path = env_or("METRICS_PATH", "/metrics");
            if let Ok(token) = std::env::var("METRICS_TOKEN") {
                config = config.metrics_token(token);
            }
            match metrics_at()? {
                MetricsAt::Main => {
                    config = config.metrics(path);
                    None
                }
                MetricsAt::Own(addr) => {
                    config = config.metrics_private(path);
                    Some(addr)
                }
            }
        }
        "off" => None,
        other => return Err(format!("bad METRICS `{other}`: use on or off")),
    };
    let scheme = match (std::env::var_os("TLS_CERT"), std::env::var_os("TLS_KEY")) {
        (Some(cert), Some(key)) => {
            let tls = TlsConfig::from_pem_files(cert.as_ref(), key.as_ref())
                .map_err(|e| e.to_string())?;
            config = config.tls(tls);
            "https"
        }
        (None, None) => "http",
        _ => return Err("set both TLS_CERT and TLS_KEY (PEM files), or neither".to_owned()),
    };
    let gateway = Gateway::build(config).await.map_err(|e| e.to_string())?;
    if gateway.is_clustered() {
        tracing::info!("one node of several: rooms and broadcasts shared through Redis");
    }
    chat_contract::chat::server::register(
        &gateway,
        Chat {
            threads: Mutex::default(),
            admins: Chat::admins_from_env(),
            presence: Presence::new(presence_interval),
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    let health = Health(Arc::new(HealthState {
        gateway: gateway.clone(),
        started: Instant::now(),
        interval: Duration::from_millis(interval_ms.max(1)),
    }));
    chat_contract::health::server::register(&gateway, health)
        .await
        .map_err(|e| e.to_string())?;

    let mut router = Router::new().route("/healthz", get(|| async { "ok" }));
    if dev_mode {
        let secret = secret.clone();
        router = router.route(
            "/dev/token",
            get(move |Query(q): Query<TokenQuery>| async move {
                // The server refuses longer ids and control characters in a
                // token: refuse to sign them too.
                if q.user.is_empty()
                    || q.user.len() > MAX_DEV_USER_BYTES
                    || q.user.chars().any(char::is_control)
                {
                    return Err((
                        axum::http::StatusCode::BAD_REQUEST,
                        format!(
                            "user must be 1 to {MAX_DEV_USER_BYTES} bytes without control characters"
                        ),
                    ));
                }
                sign_hs256(&secret, &q.user, TOKEN_TTL)
                    .map_err(|e| (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
            }),
        );
    }
    match web_dir() {
        Ok(dir) => {
            tracing::info!("serving the web app from {}", dir.display());
            router = router.fallback_service(tower_http::services::ServeDir::new(dir));
        }
        Err(why) => {
            tracing::info!("{why}: GET / explains how to build it");
            let page = help_page(dev_mode);
            router = router.route("/", get(move || async move { axum::response::Html(page) }));
        }
    }
    let router = gateway.attach(router);
    if let Some(addr) = metrics_listener {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on METRICS_ADDR {addr}: {e}"))?;
        if let Ok(at) = listener.local_addr() {
            tracing::info!(
                "metrics on http://{at}{}",
                env_or("METRICS_PATH", "/metrics")
            );
        }
        let gateway = gateway.clone();
        tokio::spawn(async move {
            if let Err(err) = gateway
                .serve_metrics(listener, std::future::pending())
                .await
            {
                tracing::error!(%err, "the metrics listener stopped");
            }
        });
    }

    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    tracing::info!("chat-server listening on {scheme}://{addr}");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    };
    gateway
        .serve_with(listener, router, shutdown)
        .await
        .map_err(|e| e.to_string())
}

/// The built web app (`npm run build:chat-web`) to serve at `/`: `WEB_DIR`
/// when set, otherwise `examples/chat-web/dist` from the current folder or
/// beside this example's sources. A folder without `index.html` does not
/// count; the error says which one was tried.
fn web_dir() -> Result<std::path::PathBuf, String> {
    use std::path::PathBuf;
    let has_index = |dir: &PathBuf| dir.join("index.html").is_file();
    if let Some(dir) = std::env::var_os("WEB_DIR") {
        let dir = PathBuf::from(dir);
        return if has_index(&dir) {
            Ok(dir)
        } else {
            Err(format!("WEB_DIR {} holds no index.html", dir.display()))
        };
    }
    [
        PathBuf::from("examples/chat-web/dist"),
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../chat-web/dist")),
    ]
    .into_iter()
    .find(has_index)
    .ok_or_else(|| "the web app is not built (examples/chat-web/dist)".to_owned())
}

/// The page at `/` while the web app is not built: how to build it, and
/// where the server's other routes are.
fn help_page(dev_mode: bool) -> String {
    let token = if dev_mode {
        "<li><a href=\"/dev/token?user=alice\">/dev/token?user=alice</a>: a token for \
         <code>alice</code> (development secret only)</li>"
    } else {
        "<li><code>chat-server token &lt;user&gt;</code> prints a token for a user</li>"
    };
    format!(
        r#"<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>chat-server</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:3rem auto;padding:0 1rem}}code,pre{{background:#f3f3f3;padding:.1rem .3rem}}pre{{padding:.6rem}}</style>
<h1>chat-server is running</h1>
<p>The chat web app is not built yet. From the repository root:</p>
<pre>npm ci &amp;&amp; npm run build:chat-web
cargo run --release -p chat-server</pre>
<p>then reload this page. To serve an app built elsewhere, set <code>WEB_DIR</code> to its folder.</p>
<p>What this server offers meanwhile:</p>
<ul>
<li>Socket.IO namespaces <code>/chat</code> (authenticated) and <code>/health</code> on this address</li>
{token}
<li><a href="/healthz">/healthz</a>: liveness</li>
</ul>
</html>
"#
    )
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(thread: &str, n: usize) -> Message {
        Message {
            content: format!("m{n}"),
            created_at: chrono::Utc::now(),
            id: uuid::Uuid::new_v4(),
            thread_id: thread.to_owned().try_into().expect("a valid thread id"),
            user_id: "u".to_owned(),
        }
    }

    #[test]
    fn history_drops_the_thread_written_least_recently_and_stays_bounded() {
        let mut h = History::default();
        for t in 0..MAX_THREADS {
            h.record(&format!("t{t}"), message("t", t));
        }
        // t0 written again: t1 is now the least recently written.
        h.record("t0", message("t0", 0));
        h.record("new", message("new", 0));
        assert_eq!(h.threads.len(), MAX_THREADS);
        assert!(h.threads.contains_key("t0"));
        assert!(!h.threads.contains_key("t1"));
        assert!(h.threads.contains_key("new"));
        // Many writes to one thread: its messages and the write log stay bounded.
        for n in 0..5 * MAX_THREADS {
            h.record("t0", message("t0", n));
        }
        assert_eq!(h.threads["t0"].0.len(), HISTORY_PER_THREAD);
        assert!(h.order.len() <= 2 * MAX_THREADS + 1, "{}", h.order.len());
        // The oldest entries are now stale: t2 goes next, not t0.
        h.record("newer", message("newer", 0));
        assert!(!h.threads.contains_key("t2"));
        assert!(h.threads.contains_key("t0"));
    }
}
