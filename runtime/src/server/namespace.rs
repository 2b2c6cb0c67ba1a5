//! A registered namespace at run time ([`NamespaceRuntime`]): admitting a
//! socket, and the pipeline every event goes through (known event, auth,
//! rate limit, size, payload schema, idempotency) before the generated
//! glue dispatches it, then its ack.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::http::header::USER_AGENT;
use futures_util::FutureExt;
use serde_json::Value;
use serde_json::value::RawValue;
use socketioxide::SocketIo;
use socketioxide::extract::{SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::{SendError, SocketError};
use socketioxide_core::adapter::DefinedAdapter;
use tracing::Instrument;

use super::ServerError;
use super::adapter::{GatewayAdapter, socket_room};
use super::auth::{AuthConfig, extract_token};
use super::config::ContractMismatch;
use super::context::{self, SocketContext};
use super::dispatch::Dispatch;
use super::emitter::{AUTHENTICATED_ROOM, Emitter, client_state, resend_while_full, user_room};
use super::handshake::{
    ClientContract, MalformedAuth, client_contract, recovery, truncate_on_char,
};
use super::history::HistoryStore;
use super::idempotency::{Claim, Keys};
use super::incoming::{IncomingEvent, RawPayload};
use super::log_throttle::LogThrottle;
use super::metrics::{EventMetrics, NsMetrics, UNKNOWN_EVENT_LABEL};
use super::rate_limit::{Holder, SharedLimits, ceil_millis};
use super::room_caps::RoomCaps;
use super::socket_state::{ClientState, NewClient};
use super::spec::{AuthMode, BoxFuture, EventSpec, NamespaceSpec, RateLimit, RateScope};
use super::user_sockets::UserSockets;
use super::validator::PayloadValidator;
use crate::wire::{
    AckData, AckResponse, ERROR_EVENT, ErrorEvent, EventError, FILL_EVENT, FillRequest,
    RECOVERY_EVENT, codes, encode_ack, truncate_name,
};

pub(super) fn compile_schema(ns: &str, event: &EventSpec) -> Result<PayloadValidator, ServerError> {
    PayloadValidator::compile(event.schema).map_err(|message| ServerError::Schema {
        namespace: ns.to_owned(),
        event: event.name.to_owned(),
        message,
    })
}

pub(super) struct CompiledEvent {
    pub(super) spec: &'static EventSpec,
    pub(super) validator: PayloadValidator,
    /// Its counters, when metrics are on.
    pub(super) metrics: Option<EventMetrics>,
}

pub(super) struct NamespaceRuntime {
    pub(super) spec: &'static NamespaceSpec,
    pub(super) events: HashMap<&'static str, CompiledEvent>,
    /// Its metric handles, when metrics are on.
    pub(super) metrics: Option<NsMetrics>,
    pub(super) dispatch: Box<dyn Dispatch>,
    pub(super) auth: Option<Arc<AuthConfig>>,
    pub(super) emitter: Emitter,
    /// Whether each socket joins its own room ([`socket_room`]), so that
    /// other nodes can address it by id (the Redis adapter only).
    pub(super) own_socket_room: bool,
    /// Contract limits counted per user or per IP address.
    pub(super) shared_limits: SharedLimits,
    /// `ServerConfig::max_rooms_per_socket`.
    pub(super) max_rooms: usize,
    /// `ServerConfig::contract_mismatch` and `allow_unversioned_clients`.
    pub(super) contract_check: (ContractMismatch, bool),
    /// Sockets per user in this namespace on this node.
    pub(super) user_sockets: Arc<UserSockets>,
    /// `ServerConfig::max_sockets_per_user`.
    pub(super) max_sockets_per_user: usize,
    /// Refusals by the per-user cap are logged once per interval.
    pub(super) user_cap_log: LogThrottle,
    /// Member caps of the contract's rooms, when one has a cap.
    pub(super) room_caps: Option<Arc<RoomCaps>>,
    /// The history of the contract's rooms, when one has history.
    pub(super) history: Option<Arc<HistoryStore>>,
    /// The idempotency keys of the namespace's events.
    pub(super) keys: Keys,
    /// `ServerConfig::fill_per_minute`.
    pub(super) fill_per_minute: u32,
}

/// Most bytes of a handshake's `User-Agent` kept in a socket's metadata.
const MAX_USER_AGENT_BYTES: usize = 256;

pub(super) fn mount<A: GatewayAdapter + DefinedAdapter>(
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
                Some((shared, spec)) => context::resume_shared(shared, spec, ctx, &at).await,
                None => context::resume(self.history.as_deref(), ctx, &at),
            };
            #[cfg(not(feature = "redis"))]
            let position = context::resume(self.history.as_deref(), ctx, &at);
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
                                let run = self
                                    .run(&socket, &state, compiled, payload)
                                    .instrument(span);
                                let result = self.keys.run_claimed(&scope, name, key, run).await;
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
        Ok(context::fill(
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

/// Calls `make` and awaits its future, turning a panic in either into `Err`
/// with the panic message.
pub(super) async fn guarded<T>(make: impl FnOnce() -> BoxFuture<'static, T>) -> Result<T, String> {
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

/// Default [`ServerConfig::fill_per_minute`](super::ServerConfig::fill_per_minute):
/// 120 (a client sends one per gap it sees, after waiting for the missing
/// event).
pub const DEFAULT_FILL_PER_MINUTE: u32 = 120;

/// Largest [`FILL_EVENT`] payload: a room name, an epoch and an offset.
const MAX_FILL_REQUEST_BYTES: usize = 1024;

/// How long a refused ack is retried while the socket's buffer is full.
const ACK_RETRY_FOR: Duration = Duration::from_secs(5);

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

#[cfg(test)]
mod tests {
    use super::*;

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
