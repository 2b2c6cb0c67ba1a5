//! Socket.IO v5 client (feature `client`): what generated Rust clients call.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use evcontract_runtime::client::{Client, ClientOptions};
//! use serde_json::json;
//!
//! let client = Client::connect(
//!     ClientOptions::new("http://127.0.0.1:3000")
//!         .namespace("/chat")
//!         .token_provider(|| async { Some("jwt".to_owned()) }),
//! )
//! .await?; // the namespace accepted us (or a typed ConnectError says why not)
//!
//! // Re-join rooms after every reconnection: the server forgets them.
//! client.on_reconnect(|client| async move {
//!     let _ = client
//!         .emit_with_ack::<serde_json::Value, _>("join_thread", &json!({"threadId": "t1"}))
//!         .await;
//! });
//!
//! let mut events = client.subscribe();
//! let sent: u64 = client
//!     .emit_with_ack("send_message", &json!({"text": "hi"}))
//!     .await?; // `{"success":true,"data":…}` -> data; a failure -> ClientError::Server
//! while let Ok(event) = events.recv().await {
//!     println!("{} {}", event.name, event.payload);
//! }
//! client.disconnect().await;
//! # let _ = sent;
//! # Ok(()) }
//! ```
//!
//! # Why a client of our own
//!
//! `rust_socketio` 0.6 was tried against socketioxide and rejected: its
//! `connect()` returns before the namespace accepted the connection, a
//! refused connection is an `"error"` event while `connect()` returns `Ok`,
//! ack payloads come wrapped in an extra array, ack ids are random in
//! `0..999` (so two acks in flight can collide), it cannot answer acks the
//! server asks for, `disconnect()` does not stop its reconnection loop, and
//! it is unmaintained since 2024.
//!
//! This client speaks engine.io v4 over WebSocket only
//! (`?EIO=4&transport=websocket` directly, no HTTP long-polling and no
//! upgrade) on `tokio-tungstenite`, with a small codec of its own
//! (`protocol.rs`). The socketioxide crates' packet types were not reused:
//! `socketioxide-parser-common` decodes the packets a *server* receives and
//! rejects packet type `4` (`CONNECT_ERROR`), which is exactly what a client
//! must read; `engineioxide-core`'s open packet only accepts socketioxide's
//! own session-id format; and together they bring `http-body`,
//! `http-body-util`, `base64` and `smallvec` into a client for ~150 lines of
//! parsing. The `client` feature therefore depends on `tokio`,
//! `tokio-tungstenite` and `futures-util` only, never on socketioxide, axum
//! or hyper. Binary (attachment) packets are not supported: a binary ack
//! fails its emit with [`ClientError::Decode`], binary events are dropped.
//! TLS (`https`/`wss`) is not enabled in the WebSocket library either.
//!
//! # Behaviour
//!
//! - [`Client::connect`] makes one attempt and returns once the namespace
//!   answered: `Ok` after socket.io `CONNECT`, a typed [`ConnectError`] after
//!   `CONNECT_ERROR` (`AUTH_REQUIRED`, `INVALID_TOKEN`, other refusals), an
//!   unreachable server, or the connect timeout.
//! - Several gateway nodes ([`ClientOptions::fallback_urls`]): an attempt
//!   goes round the URLs, moving on at once from a node that is down
//!   (unreachable, refusing, silent until the connect timeout) but not from
//!   a refusal by the namespace, which every node would repeat. The first
//!   connection starts with the first URL; a reconnection starts with the
//!   URL after the node that was lost, so a dead node is tried last.
//!   [`Client::current_url`] says which node the client is on.
//! - Emits go through a bounded queue to the connection task, which alone
//!   reads and writes the socket. [`Client::emit`] returns once the task has
//!   the frame. Acked emits use a per-connection counter for ack ids
//!   (unique, never random) and fail with [`ClientError::Disconnected`] when
//!   the connection drops before the answer, [`ClientError::Timeout`] after
//!   the ack timeout. While not connected (including while reconnecting),
//!   emits fail at once with `Disconnected`: nothing is buffered.
//! - Server events go to a `tokio::sync::broadcast` channel
//!   ([`Client::subscribe`]); the connection task never waits for a
//!   consumer. **Lag policy**: each subscriber has a buffer of
//!   [`ClientOptions::event_buffer`] events; one that falls further behind
//!   loses its oldest events and its next `recv()` reports
//!   `RecvError::Lagged(n)`. Other subscribers, acks and pings are not
//!   affected. [`Client::on`] runs a handler in a task of its own fed by such
//!   a subscription (same policy; lost events are skipped).
//! - A dead server is detected by the engine.io heartbeat: no frame from the
//!   server within `pingInterval + pingTimeout` (values from the server's
//!   handshake) ends the connection with [`DisconnectReason::PingTimeout`].
//! - After an unexpected loss (transport closed or failed, ping timeout) the
//!   client reconnects with exponential backoff and jitter like
//!   socket.io-client (`reconnection_delay · 2^(attempt-1)`, ±50 %, capped at
//!   `reconnection_delay_max`; one round of the URLs is one attempt), calls
//!   the token provider again for every URL tried, then runs the
//!   [`Client::on_reconnect`] hooks (which may emit) before normal emits are
//!   accepted again. A refused reconnection (for example `INVALID_TOKEN`) is
//!   retried too, so that a provider can refresh the token. Like
//!   socket.io-client, a socket.io `DISCONNECT` sent by the server is final:
//!   no reconnection.
//! - [`Client::disconnect`] sends socket.io `DISCONNECT`, closes the socket and
//!   stops reconnection for good, also when called during a backoff delay.
//!   Dropping every handle to the client does the same (handlers and hooks
//!   that capture a `Client` keep it alive).

mod backoff;
mod connection;
mod error;
mod event;
mod options;
mod protocol;
mod recovery;
#[cfg(feature = "tls")]
mod tls;
mod typed;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use futures_util::FutureExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinHandle};

pub use error::{ClientError, ConnectError, ConnectionError, DisconnectReason, TransportError};
pub use event::{AckResponder, ServerEvent};
pub use options::{
    ClientOptions, DEFAULT_GAP_WAIT, DEFAULT_MAX_HELD_EVENTS, DEFAULT_RETRY_FOR,
    DEFAULT_SEND_QUEUE, TlsRoots,
};
pub use typed::{DecodeEvent, Events};

/// tokio's channels, re-exported: [`Client::subscribe`] and [`Client::state`]
/// return them, and generated clients name their types.
pub use tokio::sync::{broadcast, watch};

use crate::wire::{AckResponse, FILL_EVENT, FillRequest, RoomPosition};
use connection::{ConnShared, stop_requested};
use options::{BoxFuture, Endpoints};
use recovery::Inbox;

/// How `wss://` nodes are reached (feature `tls`).
#[cfg(feature = "tls")]
type Connector = tokio_tungstenite::Connector;
/// Without the `tls` feature there is no TLS connector.
#[cfg(not(feature = "tls"))]
#[derive(Clone)]
enum Connector {}

/// The connection state, observable through [`Client::state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// The first connection attempt is running.
    Connecting,
    /// The namespace accepted the connection; emits are accepted.
    Connected,
    /// The connection was lost; reconnection attempt `attempt` (from 1) is
    /// waiting for its backoff delay, connecting, or running the
    /// [`on_reconnect`](Client::on_reconnect) hooks.
    Reconnecting {
        /// The attempt number, from 1.
        attempt: u32,
    },
    /// Not connected and not trying any more: after
    /// [`disconnect`](Client::disconnect), a failed first connection, a
    /// server-side disconnect, exhausted reconnection attempts, or a loss
    /// with reconnection turned off.
    Disconnected,
}

type Handler = Arc<dyn Fn(ServerEvent) -> BoxFuture<()> + Send + Sync>;
type ReconnectHook = Arc<dyn Fn(Client) -> BoxFuture<()> + Send + Sync>;

fn boxed_handler<F, Fut>(f: F) -> Handler
where
    F: Fn(ServerEvent) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Arc::new(move |ev| Box::pin(f(ev)))
}

fn boxed_hook<F, Fut>(f: F) -> ReconnectHook
where
    F: Fn(Client) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Arc::new(move |c| Box::pin(f(c)))
}

/// The channels that exist before the first connection, so that nothing the
/// server sends right after accepting the connection is missed.
struct Channels {
    state: watch::Sender<ConnectionState>,
    last_error: watch::Sender<Option<ConnectionError>>,
    /// The server events, and where the client stands in rooms with history.
    inbox: Arc<Inbox>,
    /// The rooms where an event arrived ahead of a missing one (taken by
    /// the task that asks for the missing ones).
    gaps: Mutex<Option<mpsc::UnboundedReceiver<String>>>,
    hooks: Mutex<Vec<ReconnectHook>>,
}

/// Sets up subscriptions and hooks before connecting.
///
/// Events the server emits as soon as it accepts the connection (a welcome
/// message, the current state) arrive before [`Client::connect`] returns;
/// subscribe here to see them.
pub struct ClientBuilder {
    options: ClientOptions,
    channels: Channels,
    handlers: Vec<(String, broadcast::Receiver<ServerEvent>, Handler)>,
}

impl ClientBuilder {
    /// A receiver of every server event from the first connection on. See
    /// [`Client::subscribe`] for the lag policy.
    pub fn subscribe(&self) -> broadcast::Receiver<ServerEvent> {
        self.channels.inbox.events.subscribe()
    }

    /// Runs `handler` for every server event named `event`, from the first
    /// connection on. See [`Client::on`].
    #[must_use]
    pub fn on<F, Fut>(mut self, event: impl Into<String>, handler: F) -> Self
    where
        F: Fn(ServerEvent) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let rx = self.channels.inbox.events.subscribe();
        self.handlers
            .push((event.into(), rx, boxed_handler(handler)));
        self
    }

    /// Adds a hook run after every successful reconnection. See
    /// [`Client::on_reconnect`].
    #[must_use]
    pub fn on_reconnect<F, Fut>(self, hook: F) -> Self
    where
        F: Fn(Client) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        lock(&self.channels.hooks).push(boxed_hook(hook));
        self
    }

    /// The connection state, [`ConnectionState::Connecting`] until
    /// [`connect`](Self::connect) settles.
    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.channels.state.subscribe()
    }

    /// Connects; see [`Client::connect`].
    pub async fn connect(self) -> Result<Client, ConnectError> {
        let Self {
            options,
            channels,
            handlers,
        } = self;
        let fail = |err: ConnectError| {
            channels.state.send_replace(ConnectionState::Disconnected);
            err
        };
        let endpoints = match options.endpoints() {
            Ok(endpoints) => endpoints,
            Err(err) => return Err(fail(err)),
        };
        let connector = match connector(&options, &endpoints) {
            Ok(connector) => connector,
            Err(err) => return Err(fail(err)),
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Err(fail(ConnectError::Config(
                "the client needs a Tokio runtime".to_owned(),
            )));
        };
        let (shutdown, _) = watch::channel(false);
        let core = Arc::new(Core {
            options,
            endpoints,
            connector,
            runtime,
            channels,
            conn: Mutex::new(None),
            shutdown,
            generation: AtomicU64::new(0),
            queued: std::sync::atomic::AtomicUsize::new(0),
        });
        let first = match core.attempt(0, true).await {
            Ok(first) => first,
            Err(err) => {
                core.set_state(ConnectionState::Disconnected);
                return Err(err);
            }
        };
        core.set_state(ConnectionState::Connected);
        for (event, rx, handler) in handlers {
            spawn_handler(&core.runtime, event, rx, handler);
        }
        let handle = Arc::new(Handle { core: core.clone() });
        core.runtime
            .spawn(supervise(core.clone(), Arc::downgrade(&handle), first));
        if let Some(gaps) = lock(&core.channels.gaps).take() {
            core.runtime.spawn(fill_gaps(
                core.runtime.clone(),
                Arc::downgrade(&handle),
                gaps,
                core.options.gap_wait,
            ));
        }
        Ok(Client {
            handle,
            restore_generation: None,
        })
    }
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("options", &self.options)
            .field("handlers", &self.handlers.len())
            .finish_non_exhaustive()
    }
}

/// The TLS connector for the `wss://` nodes, built once per client (so a bad
/// CA PEM is reported by `connect`, before any network work).
#[cfg(feature = "tls")]
fn connector(
    options: &ClientOptions,
    endpoints: &Endpoints,
) -> Result<Option<Connector>, ConnectError> {
    if !ClientOptions::uses_tls(endpoints) {
        return Ok(None);
    }
    tls::connector(options.tls_roots, &options.root_ca_pems).map(Some)
}

/// Without the `tls` feature, a `wss://` node is a configuration error.
#[cfg(not(feature = "tls"))]
fn connector(
    _options: &ClientOptions,
    endpoints: &Endpoints,
) -> Result<Option<Connector>, ConnectError> {
    if ClientOptions::uses_tls(endpoints) {
        return Err(ConnectError::Config(
            "`https`/`wss` URLs need the `tls` feature of evcontract-runtime".to_owned(),
        ));
    }
    Ok(None)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// State shared by every handle, the supervisor and the connection tasks.
struct Core {
    options: ClientOptions,
    endpoints: Endpoints,
    /// How `wss://` nodes are reached; `None` when every node is `ws://`.
    connector: Option<Connector>,
    runtime: tokio::runtime::Handle,
    channels: Channels,
    /// The current connection, `None` while there is none.
    conn: Mutex<Option<Current>>,
    /// `true` once the client must stop for good.
    shutdown: watch::Sender<bool>,
    generation: AtomicU64,
    /// Idempotent sends waiting (`ClientOptions::send_queue`).
    queued: std::sync::atomic::AtomicUsize,
}

/// The current connection, and which node it is on.
struct Current {
    shared: Arc<ConnShared>,
    /// The index of the node in [`Endpoints::nodes`].
    node: usize,
}

/// A running connection: what emitters use, its task, and its node.
struct Running {
    shared: Arc<ConnShared>,
    task: JoinHandle<DisconnectReason>,
    /// The index of the node in [`Endpoints::nodes`].
    node: usize,
}

impl Core {
    /// One connection attempt: the nodes in order from `start` (wrapping
    /// around), each tried once, moving on when a node is down; a refusal
    /// by the namespace ends the round. Returns the first connection made,
    /// or the error of the last node tried.
    async fn attempt(self: &Arc<Self>, start: usize, ready: bool) -> Result<Running, ConnectError> {
        let nodes = self.endpoints.nodes.len().max(1);
        let mut tried = 0;
        loop {
            let node = (start % nodes + tried) % nodes;
            tried += 1;
            match self.attempt_node(node, ready).await {
                Ok(running) => return Ok(running),
                Err(err) if err.is_node_failure() && tried < nodes => {}
                Err(err) => return Err(err),
            }
        }
    }

    /// One try of node `node`, bounded by the connect timeout: token,
    /// WebSocket, engine.io handshake, namespace. On success the connection
    /// task runs and the connection is current.
    async fn attempt_node(
        self: &Arc<Self>,
        node: usize,
        ready: bool,
    ) -> Result<Running, ConnectError> {
        let Some(target) = self.endpoints.nodes.get(node) else {
            return Err(ConnectError::Config(format!("no URL number {}", node + 1)));
        };
        let namespace = &self.endpoints.namespace;
        let attempt = async {
            let token = match &self.options.token {
                Some(provider) => provider().await,
                None => None,
            };
            let recovery = self
                .options
                .recovery
                .then(|| self.channels.inbox.resume_request());
            let auth = handshake_auth(token, self.options.contract, recovery);
            connection::establish(target, namespace, auth, self.connector.clone()).await
        };
        let established = tokio::time::timeout(self.options.connect_timeout, attempt)
            .await
            .map_err(|_| ConnectError::Timeout)?
            .map_err(|err| err.at_url(&target.url))?;
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let (shared, task) = connection::spawn(
            &self.runtime,
            established,
            namespace.clone(),
            generation,
            ready,
            self.channels.inbox.clone(),
            self.shutdown.subscribe(),
        );
        *lock(&self.conn) = Some(Current {
            shared: shared.clone(),
            node,
        });
        Ok(Running { shared, task, node })
    }

    fn clear_conn(&self, generation: u64) {
        let mut conn = lock(&self.conn);
        if conn
            .as_ref()
            .is_some_and(|c| c.shared.generation() == generation)
        {
            *conn = None;
        }
    }

    fn set_state(&self, state: ConnectionState) {
        self.channels.state.send_replace(state);
    }

    fn stopping(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// Watches the current connection and reconnects after a loss, until the
/// client stops.
async fn supervise(core: Arc<Core>, handle: Weak<Handle>, mut running: Running) {
    let mut shutdown = core.shutdown.subscribe();
    loop {
        let generation = running.shared.generation();
        let lost_node = running.node;
        drop(running.shared);
        let reason = running.task.await.unwrap_or_else(|_| {
            DisconnectReason::TransportError(TransportError::msg("the connection task failed"))
        });
        core.clear_conn(generation);
        if core.stopping() || matches!(reason, DisconnectReason::ClientDisconnect) {
            break;
        }
        let final_loss =
            !core.options.reconnection || matches!(reason, DisconnectReason::ServerDisconnect);
        core.channels
            .last_error
            .send_replace(Some(ConnectionError::Lost(reason)));
        if final_loss {
            break;
        }
        // Round robin: the node just lost is likely down, try it last.
        let Some(next) = reconnect(&core, &mut shutdown, lost_node + 1).await else {
            break;
        };
        running = next;

        // Reconnected: run the hooks (they alone may emit for now), then
        // open the connection to normal traffic.
        // They run in a task of their own, so that a panicking hook cannot
        // take the supervisor down.
        let hooks = lock(&core.channels.hooks).clone();
        if let Some(handle) = handle.upgrade() {
            let client = Client {
                handle,
                restore_generation: Some(running.shared.generation()),
            };
            let hooks_task = core.runtime.spawn(async move {
                for hook in hooks {
                    hook(client.clone()).await;
                }
            });
            let abort = hooks_task.abort_handle();
            tokio::select! {
                _ = hooks_task => {}
                () = stop_requested(&mut shutdown) => abort.abort(),
            }
        }
        if !core.stopping() && !running.task.is_finished() {
            running.shared.set_ready();
            core.channels.last_error.send_replace(None);
            core.set_state(ConnectionState::Connected);
        }
    }
    core.set_state(ConnectionState::Disconnected);
}

/// Reconnection attempts with backoff, each a round of the nodes from node
/// `start`; `None` when giving up or stopping.
async fn reconnect(
    core: &Arc<Core>,
    shutdown: &mut watch::Receiver<bool>,
    start: usize,
) -> Option<Running> {
    let opts = &core.options;
    let mut attempt: u32 = 0;
    loop {
        attempt = attempt.saturating_add(1);
        if opts.reconnection_attempts.is_some_and(|max| attempt > max) {
            return None;
        }
        core.set_state(ConnectionState::Reconnecting { attempt });
        let delay = backoff::delay(
            attempt,
            opts.reconnection_delay,
            opts.reconnection_delay_max,
            opts.randomization_factor,
            backoff::random_unit(),
        );
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stop_requested(shutdown) => return None,
        }
        let result = tokio::select! {
            result = core.attempt(start, false) => result,
            () = stop_requested(shutdown) => return None,
        };
        match result {
            Ok(running) => return Some(running),
            Err(err) => {
                core.channels
                    .last_error
                    .send_replace(Some(ConnectionError::Connect(err)));
            }
        }
    }
}

/// Asks the server for the events missing in a room (`FILL_EVENT`) when
/// they did not arrive within `wait` of a later one, until the client
/// stops.
async fn fill_gaps(
    runtime: tokio::runtime::Handle,
    handle: Weak<Handle>,
    mut gaps: mpsc::UnboundedReceiver<String>,
    wait: Duration,
) {
    while let Some(room) = gaps.recv().await {
        let handle = handle.clone();
        runtime.spawn(async move {
            tokio::time::sleep(wait).await;
            let Some(handle) = handle.upgrade() else {
                return;
            };
            let client = Client {
                handle,
                restore_generation: None,
            };
            client.fill(room).await;
        });
    }
}

fn spawn_handler(
    runtime: &tokio::runtime::Handle,
    event: String,
    mut rx: broadcast::Receiver<ServerEvent>,
    handler: Handler,
) -> AbortHandle {
    runtime
        .spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(ev) if ev.name == event => {
                        // A panicking invocation must not end the handler.
                        let _ = AssertUnwindSafe(handler(ev)).catch_unwind().await;
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        })
        .abort_handle()
}

/// Stops the client when the last user handle is dropped.
struct Handle {
    core: Arc<Core>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.core.shutdown.send_replace(true);
    }
}

/// A Socket.IO client connected to one namespace.
///
/// Cheap to clone (an `Arc`), `Send + Sync`; every clone drives the same
/// connection. See the [module docs](self) for the behaviour.
#[derive(Clone)]
pub struct Client {
    handle: Arc<Handle>,
    /// Set on the handle given to reconnect hooks: it may emit on that
    /// connection before normal traffic resumes.
    restore_generation: Option<u64>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.current_url())
            .field("namespace", &self.namespace())
            .field("state", &*self.core().channels.state.borrow())
            .finish()
    }
}

/// Removes a handler registered with [`Client::on`].
#[derive(Debug)]
pub struct EventListener {
    abort: AbortHandle,
}

impl EventListener {
    /// Stops the handler (a running invocation is cancelled).
    pub fn remove(self) {
        self.abort.abort();
    }
}

/// One of the `ClientOptions::send_queue` places, given back when the send
/// ends.
struct QueueSlot<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> QueueSlot<'a> {
    fn take(queued: &'a std::sync::atomic::AtomicUsize, max: usize) -> Result<Self, ClientError> {
        queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .map(|_| Self(queued))
            .map_err(|_| ClientError::QueueFull(max))
    }
}

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Forgets a pending ack when its emit ends (answer, timeout or cancel).
struct PendingAck<'a> {
    conn: &'a ConnShared,
    id: u64,
}

impl Drop for PendingAck<'_> {
    fn drop(&mut self) {
        self.conn.forget(self.id);
    }
}

impl Client {
    /// Connects to the namespace and returns once it accepted the
    /// connection. One attempt: each URL in order until one accepts (see
    /// [`ClientOptions::fallback_urls`]), each bounded by the connect
    /// timeout; reconnection only applies to a connection that was
    /// established.
    pub async fn connect(options: ClientOptions) -> Result<Self, ConnectError> {
        Self::builder(options).connect().await
    }

    /// A builder, to subscribe or add handlers and hooks before the first
    /// connection.
    pub fn builder(options: ClientOptions) -> ClientBuilder {
        let (inbox, gaps) = Inbox::new(options.event_buffer, options.max_held_events);
        let inbox = Arc::new(inbox);
        let (state, _) = watch::channel(ConnectionState::Connecting);
        let (last_error, _) = watch::channel(None);
        ClientBuilder {
            options,
            channels: Channels {
                state,
                last_error,
                inbox,
                gaps: Mutex::new(Some(gaps)),
                hooks: Mutex::new(Vec::new()),
            },
            handlers: Vec::new(),
        }
    }

    fn core(&self) -> &Core {
        &self.handle.core
    }

    /// The connection emits may use now.
    fn live_conn(&self) -> Result<Arc<ConnShared>, ClientError> {
        let conn = lock(&self.core().conn)
            .as_ref()
            .map(|c| c.shared.clone())
            .ok_or(ClientError::Disconnected)?;
        if conn.is_ready() || self.restore_generation == Some(conn.generation()) {
            Ok(conn)
        } else {
            Err(ClientError::Disconnected)
        }
    }

    /// The namespace this client joined.
    pub fn namespace(&self) -> &str {
        &self.core().endpoints.namespace
    }

    /// The socket.io session id of the current connection (it changes with
    /// every reconnection), if connected.
    pub fn sid(&self) -> Option<String> {
        lock(&self.core().conn)
            .as_ref()
            .and_then(|c| c.shared.sid().map(str::to_owned))
    }

    /// The URL of the node the current connection is on, as given to
    /// [`ClientOptions::new`] or [`ClientOptions::fallback_urls`]; `None`
    /// while there is no connection. [`on_reconnect`](Self::on_reconnect)
    /// hooks already see the new node.
    pub fn current_url(&self) -> Option<&str> {
        let node = lock(&self.core().conn).as_ref().map(|c| c.node)?;
        self.core()
            .endpoints
            .nodes
            .get(node)
            .map(|n| n.url.as_str())
    }

    /// Emits `event` with `payload` as its single argument, without ack.
    /// Returns once the connection task has the frame.
    pub async fn emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        payload: &T,
    ) -> Result<(), ClientError> {
        let conn = self.live_conn()?;
        let text = protocol::encode_event(conn.namespace(), None, event, payload)
            .map_err(|e| ClientError::Encode(e.to_string()))?;
        conn.send_text(text).await
    }

    /// Emits with an ack and decodes the answer as the evcontract envelope
    /// ([`AckResponse<A>`]): `data` on success, [`ClientError::Server`] on a
    /// failure envelope. Waits at most [`ClientOptions::ack_timeout`].
    pub async fn emit_with_ack<A, T>(&self, event: &str, payload: &T) -> Result<A, ClientError>
    where
        A: DeserializeOwned,
        T: Serialize + ?Sized,
    {
        self.emit_with_ack_timeout(event, payload, self.core().options.ack_timeout)
            .await
    }

    /// [`emit_with_ack`](Self::emit_with_ack) with its own timeout.
    pub async fn emit_with_ack_timeout<A, T>(
        &self,
        event: &str,
        payload: &T,
        timeout: Duration,
    ) -> Result<A, ClientError>
    where
        A: DeserializeOwned,
        T: Serialize + ?Sized,
    {
        let args = self
            .emit_with_ack_raw_timeout(event, payload, timeout)
            .await?;
        let Some(envelope) = args.into_iter().next() else {
            return Err(ClientError::Decode("the ack has no argument".to_owned()));
        };
        let response = AckResponse::<A>::from_value(envelope)
            .map_err(|e| ClientError::Decode(format!("ack envelope: {e}")))?;
        response.into_result().map_err(ClientError::Server)
    }

    /// Emits an event whose handler runs at most once per send (the
    /// contract leaves acked events idempotent unless it says
    /// `"idempotent": false`), with an idempotency key as its extra last
    /// argument, and decodes the answer like
    /// [`emit_with_ack`](Self::emit_with_ack).
    ///
    /// Made while disconnected, the send waits for the connection; when
    /// the answer does not come (lost connection, ack timeout) or the
    /// server answers `UNAVAILABLE`, it is sent again with the same key,
    /// and the server answers a retry with the first answer instead of
    /// running the handler again. It gives up after
    /// [`ClientOptions::retry_for`] ([`ClientError::Timeout`]); at most
    /// [`ClientOptions::send_queue`] sends wait at once
    /// ([`ClientError::QueueFull`]).
    pub async fn emit_idempotent<A, T>(&self, event: &str, payload: &T) -> Result<A, ClientError>
    where
        A: DeserializeOwned,
        T: Serialize + ?Sized,
    {
        let core = self.core();
        let key = recovery::new_key();
        let deadline = tokio::time::Instant::now() + core.options.retry_for;
        let mut pause = Duration::from_millis(50);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(ClientError::Timeout);
            }
            if self.live_conn().is_err() {
                // Stopped, or lost for good: nothing to wait for.
                if core.stopping() || *core.channels.state.borrow() == ConnectionState::Disconnected
                {
                    return Err(ClientError::Disconnected);
                }
                // Queued (bounded) while the client reconnects.
                let _slot = QueueSlot::take(&core.queued, core.options.send_queue)?;
                let mut state = core.channels.state.subscribe();
                let settled = state.wait_for(|s| {
                    matches!(
                        s,
                        ConnectionState::Connected | ConnectionState::Disconnected
                    )
                });
                if tokio::time::timeout(left, settled).await.is_err() {
                    return Err(ClientError::Timeout);
                }
                // Connected, and open to traffic once the reconnect hooks ran.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            let wait = core.options.ack_timeout.min(left);
            let answer = async {
                let conn = self.live_conn()?;
                let id = conn.next_ack_id();
                let text = protocol::encode_keyed_event(conn.namespace(), id, event, payload, &key)
                    .map_err(|e| ClientError::Encode(e.to_string()))?;
                let answer = conn.register(id)?;
                let _pending = PendingAck { conn: &conn, id };
                conn.send_text(text).await?;
                answer.await.map_err(|_| ClientError::Disconnected)?
            };
            let args = match tokio::time::timeout(wait, answer).await {
                Ok(Ok(args)) => args,
                // Lost on the way, or the answer was: send it again (after
                // a breath, so that a closing connection is seen as gone).
                Ok(Err(ClientError::Disconnected)) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                Err(_) => continue,
                Ok(Err(err)) => return Err(err),
            };
            let Some(envelope) = args.into_iter().next() else {
                return Err(ClientError::Decode("the ack has no argument".to_owned()));
            };
            let response = AckResponse::<A>::from_value(envelope)
                .map_err(|e| ClientError::Decode(format!("ack envelope: {e}")))?;
            match response.into_result() {
                Err(err) if err.code == crate::wire::codes::UNAVAILABLE => {
                    tokio::time::sleep(pause.min(left)).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                other => return other.map_err(ClientError::Server),
            }
        }
    }

    /// Emits with an ack and returns the ack's arguments as they are, for
    /// plain Socket.IO servers that do not use the evcontract envelope.
    /// Waits at most [`ClientOptions::ack_timeout`].
    pub async fn emit_with_ack_raw<T: Serialize + ?Sized>(
        &self,
        event: &str,
        payload: &T,
    ) -> Result<Vec<Value>, ClientError> {
        self.emit_with_ack_raw_timeout(event, payload, self.core().options.ack_timeout)
            .await
    }

    /// [`emit_with_ack_raw`](Self::emit_with_ack_raw) with its own timeout.
    pub async fn emit_with_ack_raw_timeout<T: Serialize + ?Sized>(
        &self,
        event: &str,
        payload: &T,
        timeout: Duration,
    ) -> Result<Vec<Value>, ClientError> {
        let exchange = async {
            let conn = self.live_conn()?;
            let id = conn.next_ack_id();
            let text = protocol::encode_event(conn.namespace(), Some(id), event, payload)
                .map_err(|e| ClientError::Encode(e.to_string()))?;
            let answer = conn.register(id)?;
            let _pending = PendingAck { conn: &conn, id };
            conn.send_text(text).await?;
            // A dropped sender means the connection ended first.
            answer.await.map_err(|_| ClientError::Disconnected)?
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    /// Asks the server for the events of `room` after this client's last
    /// one, when it still misses some: they arrive as events, in order,
    /// and the answer says whether any are gone for good (then told to the
    /// app like a failed resume).
    async fn fill(&self, room: String) -> Option<RoomPosition> {
        let inbox = &self.core().channels.inbox;
        let (epoch, offset) = inbox.gap(&room)?;
        match self.ask_fill(room.clone(), epoch.clone(), offset).await {
            Ok(position) => {
                if position.recovered && inbox.gap(&room).is_some() {
                    inbox.still_missing(room);
                }
                Some(position)
            }
            Err(ClientError::Server(_)) => {
                // The server cannot fill it (rate limited, no history):
                // the app is told, and gets what is held.
                inbox.deliver(recovery::gap_event(
                    &room,
                    &epoch,
                    offset,
                    crate::wire::RecoveryGap::Unavailable,
                ));
                None
            }
            // No connection: the next one resumes the room from `offset`.
            Err(_) => None,
        }
    }

    /// Asks the server, for every room with history this client is in,
    /// for the events after its last one, and returns where each room
    /// stands. An app calls it when it wants to be sure it has everything
    /// (events are otherwise asked for only when a later one shows that
    /// one is missing: an event lost after the last one is noticed with
    /// the next one). What arrives is delivered as usual; rooms where
    /// events are gone are also told with a [`RECOVERY_EVENT`](crate::wire::RECOVERY_EVENT).
    pub async fn sync_rooms(&self) -> Result<Vec<RoomPosition>, ClientError> {
        let mut positions = Vec::new();
        for (room, (epoch, offset)) in self.core().channels.inbox.snapshot() {
            positions.push(self.ask_fill(room, epoch, offset).await?);
        }
        Ok(positions)
    }

    /// One `FILL_EVENT`: the missing events arrive as events (before the
    /// answer); a position that says some are gone is told to the app,
    /// and the held events follow it.
    async fn ask_fill(
        &self,
        room: String,
        epoch: String,
        offset: u64,
    ) -> Result<RoomPosition, ClientError> {
        let request = FillRequest {
            room,
            epoch,
            offset,
        };
        let position: RoomPosition = self.emit_with_ack(FILL_EVENT, &request).await?;
        if !position.recovered {
            self.core()
                .channels
                .inbox
                .deliver(recovery::position_event(&position));
        }
        Ok(position)
    }

    /// A receiver of every server event on this namespace from now on.
    ///
    /// Lag policy: the channel keeps [`ClientOptions::event_buffer`] events
    /// per receiver; a receiver that falls further behind loses the oldest
    /// ones and its next `recv()` returns `RecvError::Lagged(n)` (then goes
    /// on with the oldest event still kept). The connection never waits for a
    /// receiver. `recv()` returns `RecvError::Closed` once the client stopped
    /// and every handle is gone.
    pub fn subscribe(&self) -> broadcast::Receiver<ServerEvent> {
        self.core().channels.inbox.events.subscribe()
    }

    /// Runs `handler` for every server event named `event`, in a task of its
    /// own: invocations for this handler run one after the other, in order,
    /// and never block the connection or other handlers. A handler slower
    /// than the events skips the oldest ones (see [`subscribe`](Self::subscribe)).
    pub fn on<F, Fut>(&self, event: impl Into<String>, handler: F) -> EventListener
    where
        F: Fn(ServerEvent) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let rx = self.subscribe();
        EventListener {
            abort: spawn_handler(
                &self.core().runtime,
                event.into(),
                rx,
                boxed_handler(handler),
            ),
        }
    }

    /// Adds a hook run after every successful *re*connection (not the first
    /// connection), in order of registration, before normal emits are
    /// accepted again. The hook gets a client that may already emit on the
    /// new connection: re-join rooms there, since the server forgets room
    /// membership with the old connection. The state stays
    /// [`ConnectionState::Reconnecting`] until every hook has returned.
    pub fn on_reconnect<F, Fut>(&self, hook: F)
    where
        F: Fn(Client) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        lock(&self.core().channels.hooks).push(boxed_hook(hook));
    }

    /// The connection state; `borrow()` reads it, `changed()` waits for the
    /// next change.
    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.core().channels.state.subscribe()
    }

    /// Whether the client is connected and accepts emits.
    pub fn room_positions(&self) -> std::collections::BTreeMap<String, (String, u64)> {
        self.core().channels.inbox.snapshot()
    }

    /// Whether the client is connected now.
    pub fn is_connected(&self) -> bool {
        *self.core().channels.state.borrow() == ConnectionState::Connected
    }

    /// The last connection problem: a lost connection or a failed
    /// reconnection attempt. Cleared when a reconnection succeeds.
    pub fn last_error(&self) -> watch::Receiver<Option<ConnectionError>> {
        self.core().channels.last_error.subscribe()
    }

    /// Sends socket.io `DISCONNECT`, closes the connection and stops
    /// reconnecting for good (also during a backoff delay). Returns once the
    /// state is [`ConnectionState::Disconnected`].
    pub async fn disconnect(&self) {
        self.core().shutdown.send_replace(true);
        let mut state = self.state();
        let _ = state
            .wait_for(|s| *s == ConnectionState::Disconnected)
            .await;
    }
}

/// The handshake's `auth` payload: `{"token"?, "contract"?: {name, version},
/// "recovery"?: {room: {epoch, offset}}}`, or none when there is nothing.
fn handshake_auth(
    token: Option<String>,
    contract: Option<(&'static str, &'static str)>,
    recovery: Option<Value>,
) -> Option<Value> {
    let mut auth = serde_json::Map::new();
    if let Some(token) = token {
        auth.insert("token".to_owned(), Value::String(token));
    }
    if let Some((name, version)) = contract {
        auth.insert(
            "contract".to_owned(),
            serde_json::json!({ "name": name, "version": version }),
        );
    }
    if let Some(recovery) = recovery {
        auth.insert("recovery".to_owned(), recovery);
    }
    (!auth.is_empty()).then_some(Value::Object(auth))
}
