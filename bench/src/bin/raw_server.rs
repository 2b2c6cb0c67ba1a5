//! The benchmark's floor: the `/chat` behaviour the benchmark exercises,
//! written by hand on socketioxide 0.18, with no evcontract layer.
//!
//! - Auth: the handshake `auth: {token}` is verified as HS256 with
//!   `jsonwebtoken` (the `sub` claim is the user id, `exp` required); a bad
//!   token is refused with `INVALID_TOKEN`, no token is an anonymous socket.
//! - `join_thread {threadId}`: joins `thread:{threadId}`, emits `joined` to
//!   the room (the joiner too), acks `{success: true, data: {threadId, members}}`
//!   with the sorted user ids of the room.
//! - `send_message {threadId, content}`: the sender must be in the room
//!   (`ACCESS_DENIED` otherwise); builds the same `Message` as the example
//!   server (v4 uuid, chrono time), keeps it in memory, emits `new_message`
//!   to the room (the sender too) and acks `{success: true, data: message}`.
//!
//! Unlike the generated gateway there is no JSON Schema validation, no rate
//! limit, no per-user rooms and no activity tracking: this is the least a
//! hand-written server does for these scenarios. The socketioxide settings
//! are the ones `evcontract_runtime::server::Gateway::new` uses by default.
//!
//! Environment: `PORT` (default 3000), `HOST` (default 127.0.0.1),
//! `JWT_SECRET` (default `dev-secret`). For experiments only (the benchmark
//! sets none of these): `RAW_WS_READ_BUFFER` (socketioxide's
//! `ws_read_buffer_size`, default 1024 like the runtime), `RAW_BUFFER_SIZE`
//! (socketioxide's per-socket `max_buffer_size`, default 1024 like the
//! runtime), `RAW_COPY_HEADERS=1` (copy the handshake's URI and header values
//! before socketioxide keeps them, so they no longer point into hyper's
//! connection read buffer: the runtime does that, a plain socketioxide server
//! does not) and `RAW_EXTRA_WORK_NS` (busy-wait this long in every
//! `send_message`: what a given amount of per-message work costs a fan-out).

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::serve::ListenerExt;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use socketioxide::extract::{AckSender, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::{ParserConfig, SocketIo};

/// Mirrors `evcontract_runtime::server::DEFAULT_MAX_PAYLOAD_BYTES`.
const MAX_PAYLOAD: usize = 1 << 20;
/// Mirrors `evcontract_runtime::server::DEFAULT_BUFFER_SIZE`.
const BUFFER_SIZE: &str = "1024";
/// Mirrors `evcontract_runtime::server::DEFAULT_WS_READ_BUFFER_SIZE`
/// (socketioxide's own default is 4096).
const WS_READ_BUFFER: &str = "1024";

/// The verified user id, kept in the socket's extensions.
#[derive(Clone)]
struct User(Arc<str>);

#[derive(Deserialize)]
struct Claims {
    sub: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JoinThread {
    thread_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendMessage {
    thread_id: String,
    content: String,
}

/// The same fields, names and order as the generated `chat_contract::Message`.
#[derive(Serialize, Clone)]
struct Message {
    content: String,
    #[serde(rename = "createdAt")]
    created_at: chrono::DateTime<chrono::Utc>,
    id: uuid::Uuid,
    #[serde(rename = "threadId")]
    thread_id: String,
    #[serde(rename = "userId")]
    user_id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NewMessage<'a> {
    thread_id: &'a str,
    message: &'a Message,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Joined<'a> {
    thread_id: &'a str,
    user_id: &'a str,
}

struct State {
    key: DecodingKey,
    validation: Validation,
    threads: Mutex<HashMap<String, Vec<Message>>>,
    /// `RAW_EXTRA_WORK_NS`: busy work per `send_message` (zero by default).
    extra_work: Duration,
}

fn failure(code: &str, message: &str) -> Value {
    json!({"success": false, "code": code, "message": message})
}

fn success<T: Serialize>(data: T) -> Value {
    json!({"success": true, "data": data})
}

fn reply(ack: AckSender, body: &Value) {
    if let Err(e) = ack.send(body) {
        eprintln!("ack failed: {e}");
    }
}

fn user_of(socket: &SocketRef) -> Option<User> {
    socket.extensions.get::<User>()
}

fn admit(state: &State, socket: &SocketRef, auth: Option<Value>) -> Result<(), &'static str> {
    let token = auth
        .as_ref()
        .and_then(|a| a.get("token"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty());
    if let Some(token) = token {
        let data = jsonwebtoken::decode::<Claims>(token, &state.key, &state.validation)
            .map_err(|_| "INVALID_TOKEN")?;
        if data.claims.sub.is_empty() {
            return Err("INVALID_TOKEN");
        }
        socket.extensions.insert(User(Arc::from(data.claims.sub)));
    }
    Ok(())
}

async fn join_thread(socket: SocketRef, payload: Result<JoinThread, String>, ack: AckSender) {
    let Some(User(user)) = user_of(&socket) else {
        return reply(ack, &failure("AUTH_REQUIRED", "authentication required"));
    };
    let p = match payload {
        Ok(p) => p,
        Err(e) => return reply(ack, &failure("INVALID_PAYLOAD", &e)),
    };
    let room = format!("thread:{}", p.thread_id);
    socket.join(room.clone());
    let joined = Joined {
        thread_id: &p.thread_id,
        user_id: &user,
    };
    if let Err(e) = socket.within(room.clone()).emit("joined", &joined).await {
        eprintln!("joined broadcast failed: {e}");
    }
    let members: BTreeSet<Arc<str>> = socket
        .within(room)
        .sockets()
        .iter()
        .filter_map(|s| user_of(s).map(|u| u.0))
        .collect();
    let members: Vec<&str> = members.iter().map(|m| &**m).collect();
    reply(
        ack,
        &success(json!({"threadId": p.thread_id, "members": members})),
    );
}

async fn send_message(
    state: Arc<State>,
    socket: SocketRef,
    payload: Result<SendMessage, String>,
    ack: AckSender,
) {
    if !state.extra_work.is_zero() {
        let start = std::time::Instant::now();
        while start.elapsed() < state.extra_work {
            std::hint::spin_loop();
        }
    }
    let Some(User(user)) = user_of(&socket) else {
        return reply(ack, &failure("AUTH_REQUIRED", "authentication required"));
    };
    let p = match payload {
        Ok(p) => p,
        Err(e) => return reply(ack, &failure("INVALID_PAYLOAD", &e)),
    };
    let room = format!("thread:{}", p.thread_id);
    if !socket.rooms().iter().any(|r| *r == room) {
        let text = format!("join thread `{}` first", p.thread_id);
        return reply(ack, &failure("ACCESS_DENIED", &text));
    }
    let message = Message {
        content: p.content,
        created_at: chrono::Utc::now(),
        id: uuid::Uuid::new_v4(),
        thread_id: p.thread_id,
        user_id: user.to_string(),
    };
    state
        .threads
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(message.thread_id.clone())
        .or_default()
        .push(message.clone());
    let event = NewMessage {
        thread_id: &message.thread_id,
        message: &message,
    };
    if let Err(e) = socket.within(room).emit("new_message", &event).await {
        eprintln!("new_message broadcast failed: {e}");
    }
    reply(ack, &success(&message));
}

fn register_events(state: Arc<State>, socket: SocketRef) {
    socket.on(
        "join_thread",
        async |socket: SocketRef, TryData(p): TryData<JoinThread>, ack: AckSender| {
            join_thread(socket, p.map_err(|e| e.to_string()), ack).await
        },
    );
    socket.on(
        "send_message",
        move |socket: SocketRef, TryData(p): TryData<SendMessage>, ack: AckSender| {
            send_message(state.clone(), socket, p.map_err(|e| e.to_string()), ack)
        },
    );
}

/// Rebuilds the URI and header values as fresh allocations: hyper parses
/// them as slices of the connection's read buffer, which socketioxide would
/// otherwise keep alive for the socket's lifetime (in its request `Parts`).
async fn copy_headers(mut req: axum::extract::Request) -> axum::extract::Request {
    for value in req.headers_mut().values_mut() {
        if let Ok(copy) = axum::http::HeaderValue::from_bytes(value.as_bytes()) {
            *value = copy;
        }
    }
    if let Ok(uri) = axum::http::Uri::try_from(req.uri().to_string()) {
        *req.uri_mut() = uri;
    }
    req
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// `name` parsed, `default` when unset.
fn env_parse<T: std::str::FromStr>(name: &str, default: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    env_or(name, default)
        .parse()
        .map_err(|e| format!("bad {name}: {e}"))
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let secret = env_or("JWT_SECRET", "dev-secret");
    let addr: SocketAddr = format!("{}:{}", env_or("HOST", "127.0.0.1"), env_or("PORT", "3000"))
        .parse()
        .map_err(|e| format!("bad HOST/PORT: {e}"))?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.algorithms = vec![Algorithm::HS256];
    validation.leeway = 60;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp"]);
    let state = Arc::new(State {
        key: DecodingKey::from_secret(secret.as_bytes()),
        validation,
        threads: Mutex::default(),
        extra_work: Duration::from_nanos(env_parse("RAW_EXTRA_WORK_NS", "0")?),
    });

    let parser = ParserConfig::common()
        .max_incoming_binary_buf_size(MAX_PAYLOAD)
        .max_incoming_binaries(64);
    let ws_read_buffer: usize = env_parse("RAW_WS_READ_BUFFER", WS_READ_BUFFER)?;
    let buffer_size: usize = env_parse("RAW_BUFFER_SIZE", BUFFER_SIZE)?;
    let (layer, io) = SocketIo::builder()
        .ping_interval(Duration::from_secs(25))
        .ping_timeout(Duration::from_secs(20))
        .connect_timeout(Duration::from_secs(45))
        .ack_timeout(Duration::from_secs(5))
        .max_buffer_size(buffer_size)
        .max_payload(MAX_PAYLOAD as u64)
        .ws_max_message_size(MAX_PAYLOAD)
        .ws_max_frame_size(MAX_PAYLOAD)
        .ws_read_buffer_size(ws_read_buffer)
        .with_parser(parser)
        .build_layer();

    let on_connect = {
        let state = state.clone();
        move |socket: SocketRef| {
            let state = state.clone();
            async move { register_events(state, socket) }
        }
    };
    let admit = move |socket: SocketRef, TryData(auth): TryData<Value>| {
        let state = state.clone();
        async move { admit(&state, &socket, auth.ok()) }
    };
    io.ns("/chat", on_connect.with(admit));

    let mut router = axum::Router::new().layer(layer);
    if env_or("RAW_COPY_HEADERS", "0") == "1" {
        router = router.layer(axum::middleware::map_request(copy_headers));
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    eprintln!("bench-raw-server listening on http://{addr}");
    axum::serve(listener, router)
        .await
        .map_err(|e| e.to_string())
}
