//! End-to-end tests of the server runtime: a real gateway on 127.0.0.1:0
//! driven by a raw Socket.IO v5 / engine.io v4 client over WebSocket.
#![cfg(feature = "server")]
#![allow(missing_docs)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use evcontract_runtime::server::{
    AuthConfig, AuthMode, BoxFuture, ClientMetadata, Dispatch, Emitter, EventSpec, Gateway,
    HistorySpec, NamespaceSpec, RateLimit, RateScope, RoomSpec, ServerConfig, SocketContext,
    Target, TrustedProxies, sign_hs256,
};
use evcontract_runtime::wire::{AckData, EventError, encode_ack};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const SECRET: &[u8] = b"integration-secret";
const STEP: Duration = Duration::from_secs(5);

const ANY: &str = "{}";
const ECHO_SCHEMA: &str = r#"{
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "required": ["text"],
  "properties": { "text": { "type": "string", "maxLength": 50 } },
  "additionalProperties": false
}"#;
const NESTED_SCHEMA: &str = r##"{
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "required": ["items"],
  "properties": { "items": { "type": "array", "items": { "$ref": "#/definitions/Item" } } },
  "definitions": {
    "Item": { "type": "object", "required": ["n"], "properties": { "n": { "type": "integer" } } }
  }
}"##;
const ROOM_SCHEMA: &str = r#"{
  "type": "object",
  "required": ["room"],
  "properties": { "room": { "type": "string" }, "text": { "type": "string" } }
}"#;

const fn ev(name: &'static str, acked: bool, schema: &'static str) -> EventSpec {
    EventSpec {
        name,
        auth: AuthMode::Optional,
        rate_limit: None,
        max_payload_bytes: None,
        acked,
        idempotent: acked,
        schema,
    }
}

static CHAT_EVENTS: [EventSpec; 15] = [
    ev("echo", true, ECHO_SCHEMA),
    ev("nested", true, NESTED_SCHEMA),
    ev("notify", false, ECHO_SCHEMA),
    EventSpec {
        auth: AuthMode::Required,
        ..ev("whoami", true, ANY)
    },
    EventSpec {
        auth: AuthMode::Required,
        ..ev("whoami_noack", false, ANY)
    },
    EventSpec {
        rate_limit: Some(RateLimit {
            max: 2,
            window_ms: 60_000,
            per: RateScope::Connection,
        }),
        ..ev("limited", true, ANY)
    },
    ev("boom", true, ANY),
    ev("boom_noack", false, ANY),
    ev("join", true, ROOM_SCHEMA),
    ev("leave", true, ROOM_SCHEMA),
    ev("shout", true, ROOM_SCHEMA),
    ev("say", true, ROOM_SCHEMA),
    ev("flood", true, ANY),
    EventSpec {
        rate_limit: Some(RateLimit {
            max: 3,
            window_ms: 60_000,
            per: RateScope::User,
        }),
        ..ev("limited_user", true, ANY)
    },
    EventSpec {
        max_payload_bytes: Some(64),
        ..ev("small", true, ANY)
    },
];

static CHAT: NamespaceSpec = NamespaceSpec {
    path: "/chat",
    auth: AuthMode::Optional,
    client_events: &CHAT_EVENTS,
    server_events: &["said", "notice", "welcome"],
    contract: None,
    rooms: &[
        RoomSpec {
            name: "capped",
            pattern: "capped:{id}",
            max_members: Some(2),
            history: None,
        },
        RoomSpec {
            name: "kept",
            pattern: "kept:{id}",
            max_members: None,
            history: Some(HistorySpec {
                size: 300,
                ttl_seconds: 60,
            }),
        },
        RoomSpec {
            name: "short",
            pattern: "short:{id}",
            max_members: None,
            history: Some(HistorySpec {
                size: 5,
                ttl_seconds: 60,
            }),
        },
    ],
};

static PRIVATE: NamespaceSpec = NamespaceSpec {
    path: "/private",
    auth: AuthMode::Required,
    client_events: &[ev("echo", true, ECHO_SCHEMA)],
    server_events: &[],
    contract: None,
    rooms: &[],
};

/// A contract namespace at `/`: it takes the place of the runtime's empty one.
static ROOT_ECHO: NamespaceSpec = NamespaceSpec {
    path: "/",
    auth: AuthMode::Optional,
    client_events: &[ev("echo", true, ECHO_SCHEMA)],
    server_events: &[],
    contract: None,
    rooms: &[],
};

/// What the test dispatcher observed.
#[derive(Default)]
struct Log {
    after_init: Vec<String>,
    connects: Vec<String>,
    /// (socket id, metadata still available during on_disconnect)
    disconnects: Vec<(String, bool)>,
}

#[derive(Clone, Default)]
struct TestDispatch {
    log: Arc<Mutex<Log>>,
}

impl Dispatch for TestDispatch {
    fn dispatch(
        &self,
        ctx: SocketContext,
        event: &'static EventSpec,
        payload: &str,
    ) -> BoxFuture<'static, Result<AckData, EventError>> {
        let payload: Value = match evcontract_runtime::wire::decode_text(payload) {
            Ok(v) => v,
            Err(err) => return Box::pin(async move { Err(err) }),
        };
        Box::pin(async move {
            let ack: Value = match event.name {
                "echo" | "nested" => Ok(payload),
                "whoami" => Ok(json!(ctx.require_auth()?)),
                "limited" | "limited_user" | "small" | "notify" | "whoami_noack" => Ok(Value::Null),
                "boom" | "boom_noack" => panic!("handler exploded"),
                "join" => {
                    let room = payload["room"].as_str().unwrap_or_default().to_owned();
                    ctx.join(room)?;
                    let mut rooms = ctx.rooms();
                    rooms.sort();
                    Ok(json!(rooms))
                }
                "leave" => {
                    ctx.leave(payload["room"].as_str().unwrap_or_default());
                    Ok(json!(null))
                }
                "shout" => {
                    // The whole room, the sender included: kept when the
                    // room has history.
                    let room = payload["room"].as_str().unwrap_or_default();
                    ctx.emitter()
                        .emit(
                            Target::room(room),
                            "said",
                            &json!({"text": payload["text"]}),
                        )
                        .await
                        .map_err(|e| EventError::internal(e.to_string()))?;
                    Ok(json!(null))
                }
                "say" => {
                    let room = payload["room"].as_str().unwrap_or_default();
                    ctx.emitter()
                        .emit(
                            Target::room_except(room, ctx.socket_id()),
                            "said",
                            &json!({"from": ctx.socket_id(), "text": payload["text"]}),
                        )
                        .await
                        .map_err(|e| EventError::internal(e.to_string()))?;
                    let mut members: Vec<String> = ctx
                        .emitter()
                        .room_members(room)
                        .into_iter()
                        .map(|m| m.socket_id)
                        .collect();
                    members.sort();
                    Ok(json!(members))
                }
                "flood" => {
                    // `count` messages of `size` bytes to `room`, as fast
                    // as the emitter takes them.
                    let room = payload["room"].as_str().unwrap_or_default();
                    let filler = "x".repeat(payload["size"].as_u64().unwrap_or(0) as usize);
                    let mut failed = 0;
                    for seq in 0..payload["count"].as_u64().unwrap_or(0) {
                        let msg = json!({"seq": seq, "filler": filler});
                        if ctx
                            .emitter()
                            .emit(Target::room(room), "said", &msg)
                            .await
                            .is_err()
                        {
                            failed += 1;
                        }
                    }
                    Ok(json!(failed))
                }
                other => Err(EventError::internal(format!("unexpected {other}"))),
            }?;
            encode_ack(&ack)
        })
    }

    fn on_connect(&self, ctx: SocketContext) -> BoxFuture<'static, ()> {
        let log = self.log.clone();
        Box::pin(async move {
            log.lock()
                .unwrap()
                .connects
                .push(ctx.socket_id().to_owned());
            let _ = ctx.emit_to_self("welcome", &json!({"user": ctx.user_id()}));
        })
    }

    fn on_disconnect(&self, ctx: SocketContext) -> BoxFuture<'static, ()> {
        let log = self.log.clone();
        Box::pin(async move {
            let still = ctx.emitter().client_metadata(ctx.socket_id()).is_some();
            log.lock()
                .unwrap()
                .disconnects
                .push((ctx.socket_id().to_owned(), still));
        })
    }

    fn after_init(&self, emitter: Emitter) -> BoxFuture<'static, ()> {
        let log = self.log.clone();
        Box::pin(async move {
            log.lock()
                .unwrap()
                .after_init
                .push(emitter.namespace().to_owned());
        })
    }
}

struct Server {
    addr: SocketAddr,
    gateway: Gateway,
    log: Arc<Mutex<Log>>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn start() -> Server {
    start_with(ServerConfig::new()).await
}

async fn start_with(config: ServerConfig) -> Server {
    let config = config.auth(AuthConfig::hs256(SECRET));
    let (gateway, _layer) = Gateway::new(config).unwrap();
    let dispatch = TestDispatch::default();
    let log = dispatch.log.clone();
    gateway.register(&CHAT, dispatch.clone()).await.unwrap();
    gateway.register(&PRIVATE, dispatch).await.unwrap();
    assert!(
        gateway
            .register(&CHAT, TestDispatch::default())
            .await
            .is_err()
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let g = gateway.clone();
    let task = tokio::spawn(async move {
        g.serve_listener(listener, async move {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    Server {
        addr,
        gateway,
        log,
        stop,
        task,
    }
}

fn token(user: &str) -> String {
    sign_hs256(SECRET, user, Duration::from_secs(600)).unwrap()
}

/// One decoded Socket.IO packet.
#[derive(Debug, Clone, PartialEq)]
struct Packet {
    kind: u8,
    ns: String,
    id: Option<u64>,
    data: Option<Value>,
}

impl Packet {
    /// Whether this is the server event `name` on `ns`.
    fn is_event(&self, ns: &str, name: &str) -> bool {
        self.kind == 2 && self.ns == ns && self.data.as_ref().map(|d| &d[0]) == Some(&json!(name))
    }
}

fn parse_packet(text: &str) -> Option<Packet> {
    let rest = text.strip_prefix('4')?;
    let mut chars = rest.chars();
    let kind = chars.next()?.to_digit(10)? as u8;
    let mut rest = chars.as_str();
    let mut ns = "/".to_owned();
    if rest.starts_with('/') {
        let end = rest.find(',').unwrap_or(rest.len());
        ns = rest[..end].to_owned();
        rest = rest.get(end + 1..).unwrap_or("");
    }
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    let id = if digits > 0 {
        rest[..digits].parse().ok()
    } else {
        None
    };
    rest = &rest[digits..];
    let data = if rest.is_empty() {
        None
    } else {
        Some(serde_json::from_str(rest).ok()?)
    };
    Some(Packet { kind, ns, id, data })
}

fn prefix(ns: &str) -> String {
    if ns == "/" {
        String::new()
    } else {
        format!("{ns},")
    }
}

struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pending: Vec<Packet>,
}

impl Client {
    async fn open(addr: SocketAddr) -> Self {
        Self::open_with_header(addr, None).await
    }

    /// A client whose socket has a small receive buffer (so that a client
    /// that stops reading fills it quickly).
    async fn open_small_buffer(addr: SocketAddr) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        Self::handshake(addr, None, MaybeTlsStream::Plain(stream)).await
    }

    async fn open_with_header(addr: SocketAddr, bearer: Option<&str>) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        Self::handshake(addr, bearer, MaybeTlsStream::Plain(stream)).await
    }

    /// The WebSocket handshake on `stream`, then engine.io's open packet.
    async fn handshake(
        addr: SocketAddr,
        bearer: Option<&str>,
        stream: MaybeTlsStream<TcpStream>,
    ) -> Self {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("user-agent", "evcontract-test/1".parse().unwrap());
        if let Some(token) = bearer {
            request
                .headers_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        let (ws, _) = timeout(STEP, tokio_tungstenite::client_async(request, stream))
            .await
            .expect("ws connect timed out")
            .expect("ws connect failed");
        let mut client = Self {
            ws,
            pending: Vec::new(),
        };
        let open = client.next_text().await;
        assert!(
            open.starts_with("0{"),
            "expected engine.io open, got {open}"
        );
        client
    }

    async fn send(&mut self, text: String) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    async fn next_text(&mut self) -> String {
        loop {
            let msg = timeout(STEP, self.ws.next())
                .await
                .expect("timed out waiting for a packet")
                .expect("connection closed")
                .expect("ws error");
            match msg {
                Message::Text(t) if t.as_str() == "2" => self.send("3".to_owned()).await,
                Message::Text(t) => return t.as_str().to_owned(),
                Message::Close(_) => panic!("server closed the connection"),
                _ => {}
            }
        }
    }

    /// Next packet matching `pred` (others are kept for later).
    async fn wait_for(&mut self, pred: impl Fn(&Packet) -> bool) -> Packet {
        if let Some(pos) = self.pending.iter().position(&pred) {
            return self.pending.remove(pos);
        }
        loop {
            let text = self.next_text().await;
            let packet = parse_packet(&text).unwrap_or_else(|| panic!("bad packet {text}"));
            if pred(&packet) {
                return packet;
            }
            self.pending.push(packet);
        }
    }

    /// Joins `ns`; `Ok(sid)` or `Err(connect_error message)`.
    async fn connect(&mut self, ns: &str, token: Option<&str>) -> Result<String, String> {
        let auth = match token {
            Some(t) => json!({ "token": t }),
            None => json!({}),
        };
        self.connect_with(ns, &auth.to_string()).await
    }

    /// Joins `ns` with `auth` as the CONNECT packet's data (raw JSON text).
    async fn connect_with(&mut self, ns: &str, auth: &str) -> Result<String, String> {
        self.send(format!("40{}{}", prefix(ns), auth)).await;
        let p = self
            .wait_for(|p| p.ns == ns && (p.kind == 0 || p.kind == 4))
            .await;
        let data = p.data.unwrap_or(Value::Null);
        if p.kind == 0 {
            Ok(data["sid"].as_str().unwrap().to_owned())
        } else {
            Err(data["message"].as_str().unwrap_or_default().to_owned())
        }
    }

    async fn emit(&mut self, ns: &str, event: &str, payload: Option<Value>, ack: Option<u64>) {
        let mut array = vec![json!(event)];
        array.extend(payload);
        let id = ack.map(|i| i.to_string()).unwrap_or_default();
        self.send(format!("42{}{}{}", prefix(ns), id, Value::Array(array)))
            .await;
    }

    /// Emits with ack id `id` and returns the ack envelope.
    async fn call(&mut self, ns: &str, id: u64, event: &str, payload: Option<Value>) -> Value {
        self.emit(ns, event, payload, Some(id)).await;
        let p = self
            .wait_for(|p| p.kind == 3 && p.ns == ns && p.id == Some(id))
            .await;
        p.data.unwrap()[0].clone()
    }

    /// The payload of the next server event `name` on `ns`.
    async fn event(&mut self, ns: &str, name: &str) -> Value {
        let p = self.wait_for(|p| p.is_event(ns, name)).await;
        p.data.unwrap()[1].clone()
    }

    /// Asserts that no event named `name` arrives within `wait`.
    async fn no_event(&mut self, ns: &str, name: &str, wait: Duration) {
        let matches = |p: &Packet| p.is_event(ns, name);
        assert!(!self.pending.iter().any(matches), "unexpected {name}");
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, self.ws.next()).await {
            if let Message::Text(t) = msg {
                if t.as_str() == "2" {
                    self.send("3".to_owned()).await;
                    continue;
                }
                let p = parse_packet(t.as_str()).unwrap();
                assert!(!matches(&p), "unexpected {name}: {p:?}");
                self.pending.push(p);
            }
        }
    }

    async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + STEP;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn connect_rules() {
    let srv = start().await;
    assert_eq!(srv.log.lock().unwrap().after_init, ["/chat", "/private"]);

    // Anonymous: accepted on an optional namespace, refused on a required one.
    let mut c = Client::open(srv.addr).await;
    assert!(c.connect("/chat", None).await.is_ok());
    assert_eq!(
        c.connect("/private", None).await.unwrap_err(),
        "AUTH_REQUIRED"
    );
    assert_eq!(c.event("/chat", "welcome").await, json!({"user": null}));

    // Bad token: refused everywhere.
    let mut c = Client::open(srv.addr).await;
    assert_eq!(
        c.connect("/chat", Some("garbage")).await.unwrap_err(),
        "INVALID_TOKEN"
    );
    assert_eq!(
        c.connect("/private", Some("garbage")).await.unwrap_err(),
        "INVALID_TOKEN"
    );
    let expired = evcontract_runtime::server::sign_hs256_claims(
        SECRET,
        &json!({"sub": "a", "exp": 1_000_000}),
    )
    .unwrap();
    assert_eq!(
        c.connect("/chat", Some(&expired)).await.unwrap_err(),
        "INVALID_TOKEN"
    );
    let other_key = sign_hs256(b"other", "a", Duration::from_secs(60)).unwrap();
    assert_eq!(
        c.connect("/private", Some(&other_key)).await.unwrap_err(),
        "INVALID_TOKEN"
    );

    // Valid token in the handshake auth.
    let mut c = Client::open(srv.addr).await;
    let sid = c.connect("/private", Some(&token("alice"))).await.unwrap();
    assert_eq!(
        c.event("/private", "welcome").await,
        json!({"user": "alice"})
    );
    let meta = srv.gateway.client_metadata("/private", &sid).unwrap();
    assert_eq!(meta.user_id.as_deref(), Some("alice"));
    assert!(meta.authenticated);

    // Valid token in the Authorization header.
    let mut c = Client::open_with_header(srv.addr, Some(&token("bob"))).await;
    let sid = c.connect("/private", None).await.unwrap();
    assert_eq!(
        srv.gateway
            .client_metadata("/private", &sid)
            .unwrap()
            .user_id
            .as_deref(),
        Some("bob")
    );

    // Unknown namespace.
    assert!(c.connect("/nope", None).await.is_err());
}

#[tokio::test]
async fn event_pipeline() {
    let srv = start().await;
    let mut c = Client::open(srv.addr).await;
    c.connect("/chat", None).await.unwrap();
    let ns = "/chat";

    // Acked success.
    let ack = c.call(ns, 1, "echo", Some(json!({"text": "hi"}))).await;
    assert_eq!(ack, json!({"success": true, "data": {"text": "hi"}}));

    // Invalid payload, with the JSON pointer of the instance; socket still works.
    let ack = c.call(ns, 2, "echo", Some(json!({"text": 5}))).await;
    assert_eq!(ack["success"], false);
    assert_eq!(ack["code"], "INVALID_PAYLOAD");
    assert_eq!(ack["details"]["path"], "/text");
    assert!(
        ack["details"]["reason"]
            .as_str()
            .unwrap()
            .contains("string")
    );
    let ack = c
        .call(
            ns,
            3,
            "nested",
            Some(json!({"items": [{"n": 1}, {"n": "x"}]})),
        )
        .await;
    assert_eq!(ack["code"], "INVALID_PAYLOAD");
    assert_eq!(ack["details"]["path"], "/items/1/n");
    // Missing payload is `null`, which the schema refuses at the root.
    let ack = c.call(ns, 4, "echo", None).await;
    assert_eq!(ack["code"], "INVALID_PAYLOAD");
    assert_eq!(ack["details"]["path"], "");
    let ack = c
        .call(ns, 5, "echo", Some(json!({"text": "still here"})))
        .await;
    assert_eq!(ack["success"], true);

    // Unknown event: answered through the ack, or the `error` event without one.
    let ack = c.call(ns, 6, "nope", Some(json!(1))).await;
    assert_eq!(ack["code"], "UNKNOWN_EVENT");
    c.emit(ns, "nope2", None, None).await;
    let err = c.event(ns, "error").await;
    assert_eq!(err["event"], "nope2");
    assert_eq!(err["code"], "UNKNOWN_EVENT");

    // Event-level auth on an anonymous socket.
    let ack = c.call(ns, 7, "whoami", None).await;
    assert_eq!(ack["code"], "AUTH_REQUIRED");
    c.emit(ns, "whoami_noack", None, None).await;
    let err = c.event(ns, "error").await;
    assert_eq!(
        (err["event"].as_str(), err["code"].as_str()),
        (Some("whoami_noack"), Some("AUTH_REQUIRED"))
    );

    // Rate limit: 2 per minute.
    assert_eq!(c.call(ns, 8, "limited", None).await["success"], true);
    assert_eq!(c.call(ns, 9, "limited", None).await["success"], true);
    let ack = c.call(ns, 10, "limited", None).await;
    assert_eq!(ack["code"], "RATE_LIMITED");
    let retry = ack["details"]["retryAfterMs"].as_u64().unwrap();
    assert!(retry > 50_000 && retry <= 60_000, "retryAfterMs {retry}");

    // Panicking handler: INTERNAL, connection kept.
    let ack = c.call(ns, 11, "boom", None).await;
    assert_eq!(ack["code"], "INTERNAL");
    c.emit(ns, "boom_noack", None, None).await;
    let err = c.event(ns, "error").await;
    assert_eq!(
        (err["event"].as_str(), err["code"].as_str()),
        (Some("boom_noack"), Some("INTERNAL"))
    );

    // Event without ack failing validation: `error` event with details.
    c.emit(ns, "notify", Some(json!({"text": 1})), None).await;
    let err = c.event(ns, "error").await;
    assert_eq!(err["code"], "INVALID_PAYLOAD");
    assert_eq!(err["details"]["path"], "/text");
    // An acked event whose client sent no ack callback: `error` event too.
    c.emit(ns, "echo", Some(json!({})), None).await;
    let err = c.event(ns, "error").await;
    assert_eq!(
        (err["event"].as_str(), err["code"].as_str()),
        (Some("echo"), Some("INVALID_PAYLOAD"))
    );

    // A valid event without ack produces nothing.
    c.emit(ns, "notify", Some(json!({"text": "ok"})), None)
        .await;
    c.no_event(ns, "error", Duration::from_millis(200)).await;

    let ack = c.call(ns, 12, "echo", Some(json!({"text": "alive"}))).await;
    assert_eq!(ack, json!({"success": true, "data": {"text": "alive"}}));

    // Authenticated socket passes event-level auth.
    let mut a = Client::open(srv.addr).await;
    a.connect(ns, Some(&token("carol"))).await.unwrap();
    assert_eq!(
        a.call(ns, 1, "whoami", None).await,
        json!({"success": true, "data": "carol"})
    );
    // Rate limits are per client.
    assert_eq!(a.call(ns, 2, "limited", None).await["success"], true);
}

#[tokio::test]
async fn rooms_and_targets() {
    let srv = start().await;
    let ns = "/chat";
    let mut alice = Client::open(srv.addr).await;
    let alice_id = alice.connect(ns, Some(&token("alice"))).await.unwrap();
    let mut alice2 = Client::open(srv.addr).await;
    let alice2_id = alice2.connect(ns, Some(&token("alice"))).await.unwrap();
    let mut bob = Client::open(srv.addr).await;
    let bob_id = bob.connect(ns, Some(&token("bob"))).await.unwrap();
    let mut anon = Client::open(srv.addr).await;
    let anon_id = anon.connect(ns, None).await.unwrap();

    // Runtime rooms.
    let meta = srv.gateway.client_metadata(ns, &alice_id).unwrap();
    assert!(meta.rooms.contains(&"user:alice".to_owned()));
    assert!(
        meta.rooms
            .contains(&evcontract_runtime::server::AUTHENTICATED_ROOM.to_owned())
    );
    assert!(
        srv.gateway
            .client_metadata(ns, &anon_id)
            .unwrap()
            .rooms
            .is_empty()
    );

    // alice, bob and anon join "lobby"; alice2 does not.
    for (c, id) in [(&mut alice, 1), (&mut bob, 1), (&mut anon, 1)] {
        let ack = c.call(ns, id, "join", Some(json!({"room": "lobby"}))).await;
        assert!(ack["data"].as_array().unwrap().contains(&json!("lobby")));
    }
    // Room broadcast except the sender.
    let ack = alice
        .call(
            ns,
            2,
            "say",
            Some(json!({"room": "lobby", "text": "hello"})),
        )
        .await;
    let mut members = vec![alice_id.clone(), bob_id.clone(), anon_id.clone()];
    members.sort();
    assert_eq!(ack["data"], json!(members));
    assert_eq!(
        bob.event(ns, "said").await,
        json!({"from": alice_id, "text": "hello"})
    );
    assert_eq!(anon.event(ns, "said").await["text"], "hello");
    alice.no_event(ns, "said", Duration::from_millis(200)).await;
    alice2.no_event(ns, "said", Duration::from_millis(50)).await;

    let emitter = srv.gateway.emitter(ns);
    // Plain room emit from the server reaches every member, including alice.
    emitter
        .emit(Target::room("lobby"), "notice", &json!(1))
        .await
        .unwrap();
    for c in [&mut alice, &mut bob, &mut anon] {
        assert_eq!(c.event(ns, "notice").await, json!(1));
    }
    alice2
        .no_event(ns, "notice", Duration::from_millis(100))
        .await;

    // User target: both alice sockets, nobody else.
    emitter
        .emit(Target::user("alice"), "notice", &json!(2))
        .await
        .unwrap();
    assert_eq!(alice.event(ns, "notice").await, json!(2));
    assert_eq!(alice2.event(ns, "notice").await, json!(2));
    bob.no_event(ns, "notice", Duration::from_millis(100)).await;
    anon.no_event(ns, "notice", Duration::from_millis(10)).await;

    // Authenticated only.
    emitter
        .emit(Target::Authenticated, "notice", &json!(3))
        .await
        .unwrap();
    for c in [&mut alice, &mut alice2, &mut bob] {
        assert_eq!(c.event(ns, "notice").await, json!(3));
    }
    anon.no_event(ns, "notice", Duration::from_millis(100))
        .await;

    // One socket, and all.
    emitter
        .emit(Target::socket(&bob_id), "notice", &json!(4))
        .await
        .unwrap();
    assert_eq!(bob.event(ns, "notice").await, json!(4));
    alice
        .no_event(ns, "notice", Duration::from_millis(100))
        .await;
    emitter
        .emit(Target::All, "notice", &json!(5))
        .await
        .unwrap();
    for c in [&mut alice, &mut alice2, &mut bob, &mut anon] {
        assert_eq!(c.event(ns, "notice").await, json!(5));
    }
    // Server-side room_except.
    emitter
        .emit(Target::room_except("lobby", &bob_id), "notice", &json!(6))
        .await
        .unwrap();
    assert_eq!(alice.event(ns, "notice").await, json!(6));
    assert_eq!(anon.event(ns, "notice").await, json!(6));
    bob.no_event(ns, "notice", Duration::from_millis(100)).await;

    // Emitting to a socket that is not there is an error, counted.
    let before = srv.gateway.emit_stats().failed_emits;
    assert!(
        emitter
            .emit(Target::socket("nope"), "notice", &json!(0))
            .await
            .is_err()
    );
    assert!(
        srv.gateway
            .emitter("/unknown")
            .emit(Target::All, "x", &json!(0))
            .await
            .is_err()
    );
    assert_eq!(srv.gateway.emit_stats().failed_emits, before + 2);

    let mut in_lobby: Vec<String> = emitter
        .room_members("lobby")
        .into_iter()
        .map(|m| m.socket_id)
        .collect();
    in_lobby.sort();
    assert_eq!(in_lobby, members);
    let _ = alice2_id;
}

#[tokio::test]
async fn metadata_lifecycle_and_counts() {
    let srv = start().await;
    let ns = "/chat";
    let mut c = Client::open(srv.addr).await;
    let sid = c.connect(ns, Some(&token("dave"))).await.unwrap();
    let meta: ClientMetadata = srv.gateway.client_metadata(ns, &sid).unwrap();
    assert_eq!(meta.socket_id, sid);
    assert_eq!(meta.namespace, ns);
    assert_eq!(meta.user_agent.as_deref(), Some("evcontract-test/1"));
    assert_eq!(
        meta.remote_addr.map(|a| a.ip()),
        Some("127.0.0.1".parse().unwrap())
    );
    let first_activity = meta.last_activity;
    tokio::time::sleep(Duration::from_millis(20)).await;
    c.call(ns, 1, "echo", Some(json!({"text": "x"}))).await;
    let meta = srv.gateway.client_metadata(ns, &sid).unwrap();
    assert!(meta.last_activity > first_activity);
    assert!(meta.last_activity >= meta.connected_at);
    assert_eq!(srv.gateway.clients(ns).len(), 1);

    // Namespace disconnect packet: metadata gone, on_disconnect saw it first.
    c.send(format!("41{}", prefix(ns))).await;
    let gw = srv.gateway.clone();
    let s = sid.clone();
    eventually("metadata removed", || gw.client_metadata(ns, &s).is_none()).await;
    assert!(
        srv.log
            .lock()
            .unwrap()
            .disconnects
            .contains(&(sid.clone(), true))
    );
    assert!(srv.log.lock().unwrap().connects.contains(&sid));
    c.close().await;

    // Many connects and disconnects (clean and abrupt).
    let mut clients = Vec::new();
    for i in 0..30 {
        let mut c = Client::open(srv.addr).await;
        let tok = (i % 2 == 0).then(|| token(&format!("u{i}")));
        c.connect(ns, tok.as_deref()).await.unwrap();
        clients.push(c);
    }
    let gw = srv.gateway.clone();
    eventually("30 connected", || gw.connected_count(ns) == 30).await;
    assert_eq!(srv.gateway.total_connected(), 30);
    for (i, c) in clients.drain(..20).enumerate() {
        if i % 2 == 0 {
            c.close().await;
        } else {
            drop(c);
        }
    }
    eventually("10 left", || gw.connected_count(ns) == 10).await;
    eventually("metadata of 10", || gw.clients(ns).len() == 10).await;
    assert_eq!(srv.gateway.total_connected(), 10);
    drop(clients);
    eventually("none left", || {
        gw.connected_count(ns) == 0 && gw.clients(ns).is_empty()
    })
    .await;
    let log = srv.log.lock().unwrap();
    assert_eq!(log.disconnects.len(), 31);
    assert_eq!(log.connects.len(), 31);
}

/// Sends a raw HTTP/1.1 request and returns the whole response (lowercased head).
async fn http(addr: SocketAddr, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = timeout(STEP, TcpStream::connect(addr))
        .await
        .unwrap()
        .unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    // Read until the headers and the announced body are in.
    loop {
        let n = timeout(STEP, tcp.read(&mut chunk)).await.unwrap().unwrap();
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = text[..end].to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len || n == 0 {
                return format!("{head}\r\n\r\n{}", &text[end + 4..]);
            }
        }
        if n == 0 {
            return text;
        }
    }
}

#[tokio::test]
async fn cors_and_polling_through_the_router() {
    let srv = start_with(
        ServerConfig::new().cors(
            evcontract_runtime::server::CorsConfig::origins(["https://app.example"])
                .allow_credentials(true),
        ),
    )
    .await;
    let preflight = |origin: &str| {
        format!(
            "OPTIONS /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: localhost\r\n\
             Origin: {origin}\r\nAccess-Control-Request-Method: POST\r\nConnection: close\r\n\r\n"
        )
    };
    let ok = http(srv.addr, &preflight("https://app.example")).await;
    assert!(
        ok.contains("access-control-allow-origin: https://app.example"),
        "{ok}"
    );
    assert!(
        ok.contains("access-control-allow-credentials: true"),
        "{ok}"
    );
    let refused = http(srv.addr, &preflight("https://evil.example")).await;
    assert!(
        !refused.contains("access-control-allow-origin"),
        "{refused}"
    );

    // Long-polling handshake through the same router.
    let open = http(
        srv.addr,
        "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: localhost\r\n\
         Origin: https://app.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(open.starts_with("http/1.1 200"), "{open}");
    assert!(
        open.contains("access-control-allow-origin: https://app.example"),
        "{open}"
    );
    let body = open.split("\r\n\r\n").nth(1).unwrap_or_default();
    assert!(body.starts_with("0{"), "{body}");
    let handshake: Value = serde_json::from_str(&body[1..]).unwrap();
    assert_eq!(handshake["maxPayload"], json!(1 << 20));
}

#[tokio::test]
async fn graceful_shutdown_closes_sockets() {
    let srv = start().await;
    let mut c = Client::open(srv.addr).await;
    c.connect("/chat", None).await.unwrap();
    srv.stop.send(()).unwrap();
    timeout(STEP, srv.task)
        .await
        .expect("server did not stop")
        .unwrap();
    // The client sees its connection end.
    let end = timeout(STEP, async {
        loop {
            match c.ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(end.is_ok(), "client connection still open");
    assert_eq!(srv.gateway.connected_count("/chat"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_disconnected_and_healthy_ones_lose_nothing() {
    const COUNT: u64 = 300;
    let timeout_after = Duration::from_secs(1);
    let srv = start_with(ServerConfig::new().slow_consumer_timeout(timeout_after)).await;
    let mut slow = Client::open_small_buffer(srv.addr).await;
    let slow_id = slow.connect("/chat", None).await.unwrap();
    assert_eq!(
        slow.call("/chat", 1, "join", Some(json!({"room": "big"})))
            .await["success"],
        json!(true)
    );
    let mut healthy = Client::open(srv.addr).await;
    healthy.connect("/chat", None).await.unwrap();
    healthy
        .call("/chat", 1, "join", Some(json!({"room": "big"})))
        .await;
    let mut sender = Client::open(srv.addr).await;
    sender.connect("/chat", None).await.unwrap();

    // 300 messages of 64 KiB (19 MiB): far more than the slow client's
    // kernel buffers. It reads nothing from here on.
    let started = tokio::time::Instant::now();
    sender
        .emit(
            "/chat",
            "flood",
            Some(json!({"room": "big", "count": COUNT, "size": 65_536})),
            Some(7),
        )
        .await;
    // The healthy receiver gets every message, in order.
    for seq in 0..COUNT {
        let said = healthy.event("/chat", "said").await;
        assert_eq!(said["seq"], json!(seq));
    }
    // The slow one is disconnected for real: gone from the namespace, its
    // disconnect hook ran, its rooms and metadata are gone.
    let gw = srv.gateway.clone();
    let id = slow_id.clone();
    let deadline = tokio::time::Instant::now() + timeout_after + STEP;
    while gw.client_metadata("/chat", &id).is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slow client is still connected: {:?}",
            gw.http_stats()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = started.elapsed();
    assert!(
        srv.log
            .lock()
            .unwrap()
            .disconnects
            .iter()
            .any(|(d, _)| *d == slow_id),
        "on_disconnect did not run"
    );
    assert!(gw.http_stats().slow_consumers >= 1, "{:?}", gw.http_stats());
    assert!(
        !gw.emitter("/chat")
            .room_members("big")
            .iter()
            .any(|m| m.socket_id == slow_id)
    );
    println!(
        "slow consumer disconnected {} ms after the flood started",
        took.as_millis()
    );
    drop(slow);
}

/// Opens a TCP connection from `source` (any 127.0.0.0/8 address reaches
/// the loopback listener) to `addr`.
async fn tcp_from(source: &str, addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Everything the server sends on `stream` until it closes it (`STEP` at most).
async fn read_to_close(stream: &mut TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    timeout(STEP, stream.read_to_end(&mut out))
        .await
        .expect("the server did not close the connection")
        .unwrap_or_default();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn connections_over_the_limits_are_refused_with_an_http_status() {
    let srv = start_with(
        ServerConfig::new()
            .max_connections(5)
            .max_connections_per_ip(3),
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(tcp_from("127.0.0.1", srv.addr).await);
    }
    // A fourth from the same IP: 429 before any Socket.IO work.
    let mut over_ip = tcp_from("127.0.0.1", srv.addr).await;
    let answer = read_to_close(&mut over_ip).await;
    assert!(answer.starts_with("HTTP/1.1 429 "), "{answer}");
    assert!(answer.ends_with("TOO_MANY_CONNECTIONS_PER_IP"), "{answer}");
    // Two more from another IP fill the node; the next one gets 503.
    for _ in 0..2 {
        held.push(tcp_from("127.0.0.2", srv.addr).await);
    }
    let gw = srv.gateway.clone();
    eventually("5 open", || gw.http_stats().open_connections == 5).await;
    let mut over_node = tcp_from("127.0.0.3", srv.addr).await;
    let answer = read_to_close(&mut over_node).await;
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(answer.ends_with("TOO_MANY_CONNECTIONS"), "{answer}");
    let stats = gw.http_stats();
    assert_eq!((stats.refused_ip_limit, stats.refused_node_limit), (1, 1));
    // Slots come back when connections close.
    held.clear();
    eventually("0 open", || gw.http_stats().open_connections == 0).await;
    let mut c = Client::open(srv.addr).await;
    assert!(c.connect("/chat", None).await.is_ok());
}

#[tokio::test]
async fn silent_half_sent_and_idle_connections_are_closed_after_the_header_timeout() {
    use tokio::io::AsyncWriteExt;
    let srv = start_with(ServerConfig::new().header_read_timeout(Duration::from_millis(300))).await;
    let started = tokio::time::Instant::now();
    // Sends nothing.
    let mut silent = tcp_from("127.0.0.1", srv.addr).await;
    // Half a request line.
    let mut half = tcp_from("127.0.0.1", srv.addr).await;
    half.write_all(b"GET /socket.io/?EIO=4&tra").await.unwrap();
    // A complete request on a keep-alive connection, then nothing.
    let mut idle = tcp_from("127.0.0.1", srv.addr).await;
    idle.write_all(b"GET /nothing-here HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    read_to_close(&mut silent).await;
    read_to_close(&mut half).await;
    let answer = read_to_close(&mut idle).await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "closed after {took:?}");
    let gw = srv.gateway.clone();
    eventually("descriptors released", || {
        gw.http_stats().open_connections == 0
    })
    .await;
    assert!(
        gw.http_stats().header_timeouts >= 2,
        "{:?}",
        gw.http_stats()
    );
}

/// The `code` of an ack envelope.
fn code(ack: &Value) -> &str {
    ack["code"].as_str().unwrap_or("<success>")
}

#[tokio::test]
async fn user_limits_hold_across_connections_and_reconnects_anonymous_ones_per_ip() {
    let srv = start().await;
    let ns = "/chat";
    let alice = token("alice");
    let mut a1 = Client::open(srv.addr).await;
    a1.connect(ns, Some(&alice)).await.unwrap();
    let mut a2 = Client::open(srv.addr).await;
    a2.connect(ns, Some(&alice)).await.unwrap();
    // Three per user: two on one connection, one on the other.
    assert_eq!(
        a1.call(ns, 1, "limited_user", None).await["success"],
        json!(true)
    );
    assert_eq!(
        a1.call(ns, 2, "limited_user", None).await["success"],
        json!(true)
    );
    assert_eq!(
        a2.call(ns, 1, "limited_user", None).await["success"],
        json!(true)
    );
    assert_eq!(
        code(&a2.call(ns, 2, "limited_user", None).await),
        "RATE_LIMITED"
    );
    // Reconnecting does not reset it.
    a1.close().await;
    let mut a3 = Client::open(srv.addr).await;
    a3.connect(ns, Some(&alice)).await.unwrap();
    assert_eq!(
        code(&a3.call(ns, 1, "limited_user", None).await),
        "RATE_LIMITED"
    );
    // Another user has a budget of its own.
    let mut b = Client::open(srv.addr).await;
    b.connect(ns, Some(&token("bob"))).await.unwrap();
    assert_eq!(
        b.call(ns, 1, "limited_user", None).await["success"],
        json!(true)
    );
    // Anonymous connections share the budget of their IP address.
    let mut anon = Vec::new();
    for _ in 0..4 {
        let mut c = Client::open(srv.addr).await;
        c.connect(ns, None).await.unwrap();
        anon.push(c);
    }
    for c in anon.iter_mut().take(3) {
        assert_eq!(
            c.call(ns, 1, "limited_user", None).await["success"],
            json!(true)
        );
    }
    assert_eq!(
        code(&anon[3].call(ns, 1, "limited_user", None).await),
        "RATE_LIMITED"
    );
    // `per: connection` limits stay per connection.
    assert_eq!(
        anon[3].call(ns, 2, "limited", None).await["success"],
        json!(true)
    );
}

#[tokio::test]
async fn payload_budgets_unparsable_numbers_and_long_unknown_names() {
    let srv = start().await;
    let ns = "/chat";
    let mut c = Client::open(srv.addr).await;
    c.connect(ns, None).await.unwrap();
    // Over the event's budget: refused before parsing, with the sizes.
    let big = json!({"text": "x".repeat(100)});
    let ack = c.call(ns, 1, "small", Some(big)).await;
    assert_eq!(code(&ack), "PAYLOAD_TOO_LARGE", "{ack}");
    assert_eq!(ack["details"]["maxBytes"], json!(64));
    assert!(ack["details"]["bytes"].as_u64().unwrap() > 64);
    assert_eq!(
        c.call(ns, 2, "small", Some(json!({}))).await["success"],
        json!(true)
    );
    // A number JSON can write but f64 cannot hold: INVALID_PAYLOAD of that
    // event (it was UNKNOWN_EVENT with an empty name).
    c.send(format!("42{ns},3[\"echo\",{{\"text\":1e999}}]"))
        .await;
    let p = c.wait_for(|p| p.kind == 3 && p.id == Some(3)).await;
    let ack = &p.data.unwrap()[0];
    assert_eq!(code(ack), "INVALID_PAYLOAD", "{ack}");
    // Without ack, the `error` event names the event.
    c.send(format!("42{ns},[\"notify\",{{\"text\":-1e999}}]"))
        .await;
    let err = c.event(ns, "error").await;
    assert_eq!(
        (err["event"].as_str(), code(&err)),
        (Some("notify"), "INVALID_PAYLOAD")
    );
    // A 100 kB event name is answered with a bounded echo.
    let name = "n".repeat(100_000);
    c.send(format!("42{ns},4[\"{name}\"]")).await;
    let p = c.wait_for(|p| p.kind == 3 && p.id == Some(4)).await;
    let ack = p.data.unwrap()[0].clone();
    assert_eq!(code(&ack), "UNKNOWN_EVENT");
    assert!(
        ack.to_string().len() < 300,
        "{} bytes echoed",
        ack.to_string().len()
    );
    c.send(format!("42{ns},[\"{name}\"]")).await;
    let err = c.event(ns, "error").await;
    assert!(
        err.to_string().len() < 400,
        "{} bytes echoed",
        err.to_string().len()
    );
    // The connection is still up.
    assert_eq!(
        c.call(ns, 5, "echo", Some(json!({"text": "ok"}))).await["success"],
        json!(true)
    );
}

/// A handshake `auth` that is not an object, or whose `contract` is not
/// `{name, version}` of the bounded form, is refused with `INVALID_AUTH`
/// (it used to connect anonymously); the connection stays usable.
#[tokio::test]
async fn malformed_auth_is_refused_with_invalid_auth() {
    let srv = start().await;
    let mut c = Client::open(srv.addr).await;
    for auth in [
        r#""a-token""#,
        "[1,2]",
        "true",
        r#"{"contract": "chat@1.0.0"}"#,
        r#"{"contract": {"name": "chat"}}"#,
        r#"{"contract": {"name": "chat", "version": "1.0"}}"#,
    ] {
        let err = c.connect_with("/chat", auth).await.unwrap_err();
        assert!(err.starts_with("INVALID_AUTH: "), "{auth}: {err}");
    }
    let long = format!(
        r#"{{"contract": {{"name": "chat", "version": "1.0.0-{}"}}}}"#,
        "x".repeat(100_000)
    );
    let err = c.connect_with("/chat", &long).await.unwrap_err();
    assert!(
        err.starts_with("INVALID_AUTH: ") && err.len() < 200,
        "{err}"
    );
    // No auth at all, `null`, or an object are fine.
    assert!(c.connect_with("/chat", "").await.is_ok());
    let mut c = Client::open(srv.addr).await;
    assert!(c.connect_with("/chat", "null").await.is_ok());
}

/// `evcontract:fill` answers with the room's position (here: the socket is
/// not in the room, so it is refused), at most `fill_per_minute` a minute.
#[tokio::test]
async fn fill_requests_are_answered_and_limited_per_connection() {
    let srv = start_with(ServerConfig::new().fill_per_minute(2)).await;
    let mut c = Client::open(srv.addr).await;
    c.connect("/chat", Some(&token("filler"))).await.unwrap();
    let ask = json!({"room": "kept:1", "epoch": "e", "offset": 0});
    for id in 1..=2 {
        let ack = c
            .call("/chat", id, "evcontract:fill", Some(ask.clone()))
            .await;
        assert_eq!(ack["success"], json!(true), "{ack}");
        assert_eq!(ack["data"]["recovered"], json!(false), "{ack}");
    }
    let ack = c.call("/chat", 3, "evcontract:fill", Some(ask)).await;
    assert_eq!(code(&ack), "RATE_LIMITED", "{ack}");
    // Another connection has its own budget; a malformed request is refused.
    let mut c = Client::open(srv.addr).await;
    c.connect("/chat", Some(&token("filler"))).await.unwrap();
    let ack = c
        .call("/chat", 1, "evcontract:fill", Some(json!("not a request")))
        .await;
    assert_eq!(code(&ack), "INVALID_PAYLOAD", "{ack}");
}

/// Socket.IO tools open `/` first: the gateway accepts it (every event
/// there is `UNKNOWN_EVENT`) unless `root_namespace(false)`, and a contract
/// namespace `/` registered later replaces it.
#[tokio::test]
async fn the_root_namespace_is_open_and_empty_unless_the_contract_has_one() {
    let srv = start().await;
    let mut c = Client::open(srv.addr).await;
    assert!(c.connect("/", None).await.is_ok());
    let ack = c.call("/", 1, "echo", Some(json!({"text": "hi"}))).await;
    assert_eq!(code(&ack), "UNKNOWN_EVENT", "{ack}");
    // The same connection goes on to the contract's namespace.
    assert!(c.connect("/chat", Some(&token("root-user"))).await.is_ok());

    let srv = start_with(ServerConfig::new().root_namespace(false)).await;
    let mut c = Client::open(srv.addr).await;
    let err = c.connect("/", None).await.unwrap_err();
    assert!(err.contains("Invalid namespace"), "{err}");

    let srv = start().await;
    srv.gateway
        .register(&ROOT_ECHO, TestDispatch::default())
        .await
        .expect("the contract's `/` replaces the empty one");
    let mut c = Client::open(srv.addr).await;
    assert!(c.connect("/", None).await.is_ok());
    let ack = c.call("/", 1, "echo", Some(json!({"text": "hi"}))).await;
    assert_eq!(ack["success"], json!(true), "{ack}");
}

/// One user holds at most `max_sockets_per_user` sockets of a namespace on
/// a node; a socket that goes away gives its place back.
#[tokio::test]
async fn a_user_has_at_most_max_sockets_per_user_sockets() {
    let srv = start_with(ServerConfig::new().max_sockets_per_user(2)).await;
    let alice = token("alice");
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = Client::open(srv.addr).await;
        c.connect("/chat", Some(&alice)).await.unwrap();
        held.push(c);
    }
    let mut third = Client::open(srv.addr).await;
    let err = third.connect("/chat", Some(&alice)).await.unwrap_err();
    assert!(err.starts_with("TOO_MANY_USER_CONNECTIONS: "), "{err}");
    // Another user, and anonymous connections, are not affected.
    assert!(third.connect("/chat", Some(&token("bob"))).await.is_ok());
    let mut anon = Client::open(srv.addr).await;
    assert!(anon.connect("/chat", None).await.is_ok());
    // A closed socket gives its place back.
    held.pop().unwrap().close().await;
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let mut again = Client::open(srv.addr).await;
        if again.connect("/chat", Some(&alice)).await.is_ok() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the place was not given back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A room pattern with `maxMembers` refuses one member more with
/// `ROOM_FULL`; leaving or disconnecting makes room. Other rooms are not
/// counted.
#[tokio::test]
async fn capped_rooms_refuse_one_member_more_with_room_full() {
    let srv = start().await;
    let ns = "/chat";
    let join = |room: &str| Some(json!({ "room": room }));
    let mut members = Vec::new();
    for _ in 0..2 {
        let mut c = Client::open(srv.addr).await;
        c.connect(ns, None).await.unwrap();
        assert_eq!(
            c.call(ns, 1, "join", join("capped:a")).await["success"],
            json!(true)
        );
        members.push(c);
    }
    let mut late = Client::open(srv.addr).await;
    late.connect(ns, None).await.unwrap();
    let ack = late.call(ns, 1, "join", join("capped:a")).await;
    assert_eq!(code(&ack), "ROOM_FULL", "{ack}");
    assert_eq!(ack["details"]["maxMembers"], 2);
    // Another room of the pattern, and an uncapped room, are open.
    assert_eq!(
        late.call(ns, 2, "join", join("capped:b")).await["success"],
        json!(true)
    );
    assert_eq!(
        late.call(ns, 3, "join", join("free")).await["success"],
        json!(true)
    );
    // Rejoining a room one is in is not counted again.
    assert_eq!(
        members[0].call(ns, 2, "join", join("capped:a")).await["success"],
        json!(true)
    );
    // A leave makes room.
    assert_eq!(
        members[0].call(ns, 3, "leave", join("capped:a")).await["success"],
        json!(true)
    );
    assert_eq!(
        late.call(ns, 4, "join", join("capped:a")).await["success"],
        json!(true)
    );
    let mut later = Client::open(srv.addr).await;
    later.connect(ns, None).await.unwrap();
    assert_eq!(
        code(&later.call(ns, 1, "join", join("capped:a")).await),
        "ROOM_FULL"
    );
    // So does a disconnect.
    members.pop().unwrap().close().await;
    let deadline = tokio::time::Instant::now() + STEP;
    let mut id = 2;
    loop {
        let ack = later.call(ns, id, "join", join("capped:a")).await;
        if ack["success"] == json!(true) {
            break;
        }
        assert_eq!(code(&ack), "ROOM_FULL");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the disconnect did not make room"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        id += 1;
    }
}

/// The engine.io session id of a new long-polling session.
async fn polling_session(addr: SocketAddr) -> String {
    let open = http(
        addr,
        "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    let body = &open[open.find("0{").expect("an engine.io open packet")..];
    let open: Value = serde_json::from_str(&body[1..]).unwrap();
    open["sid"].as_str().unwrap().to_owned()
}

/// A long-polling POST whose body trickles in a byte at a time fails after
/// the body-read timeout and its connection is closed; one sent whole is
/// served.
#[tokio::test]
async fn slow_request_bodies_are_cut_at_the_body_read_timeout() {
    use tokio::io::AsyncWriteExt;
    let srv = start_with(ServerConfig::new().body_read_timeout(Duration::from_millis(400))).await;
    let sid = polling_session(srv.addr).await;
    let started = tokio::time::Instant::now();
    let mut slow = Vec::new();
    for _ in 0..20 {
        let mut tcp = tcp_from("127.0.0.1", srv.addr).await;
        tcp.write_all(
            format!(
                "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\ncontent-length: 100\r\n\r\n4"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        slow.push(tcp);
    }
    // A byte every 150 ms: never idle for long, never finished.
    let trickle = async {
        loop {
            for tcp in &mut slow {
                let _ = tcp.write_all(b"0").await;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    };
    let gw = srv.gateway.clone();
    tokio::select! {
        () = trickle => {}
        () = eventually("20 slow bodies cut", || gw.http_stats().body_timeouts >= 20) => {}
    }
    for tcp in &mut slow {
        read_to_close(tcp).await;
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "closed after {took:?}");
    eventually("descriptors released", || {
        gw.http_stats().open_connections == 0
    })
    .await;
    // A body sent whole is served as before.
    let sid = polling_session(srv.addr).await;
    let answer = http(
        srv.addr,
        &format!(
            "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\ncontent-length: 1\r\nconnection: close\r\n\r\n3"
        ),
    )
    .await;
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
}

/// Behind a trusted proxy the per-IP limit counts the client its
/// `X-Forwarded-For` names; from any other peer the header changes nothing.
#[tokio::test]
async fn per_ip_limits_count_the_client_behind_a_trusted_proxy_only() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let srv = start_with(
        ServerConfig::new()
            .max_connections_per_ip(2)
            .trusted_proxies(TrustedProxies::parse(["127.0.0.2"]).unwrap()),
    )
    .await;
    // A request on a kept-alive connection from `source`, claiming `client`.
    let request = |source: &'static str, client: &'static str| async move {
        let mut tcp = tcp_from(source, srv.addr).await;
        tcp.write_all(
            format!("GET /nothing HTTP/1.1\r\nhost: x\r\nx-forwarded-for: {client}\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
        let mut head = [0u8; 12];
        timeout(STEP, tcp.read_exact(&mut head))
            .await
            .unwrap()
            .unwrap();
        (tcp, String::from_utf8_lossy(&head).into_owned())
    };
    let mut held = Vec::new();
    // Through the proxy: two clients, two places each.
    for client in ["203.0.113.1", "203.0.113.1", "203.0.113.2", "203.0.113.2"] {
        let (tcp, status) = request("127.0.0.2", client).await;
        assert_eq!(status, "HTTP/1.1 404", "{client}");
        held.push(tcp);
    }
    // The refusal answers the request; the proxy's connection stays open.
    let (refused, status) = request("127.0.0.2", "203.0.113.1").await;
    assert_eq!(
        status, "HTTP/1.1 429",
        "the third of one client behind the proxy"
    );
    held.push(refused);
    // A client that names itself through the proxy still counts as itself:
    // what the proxy appends stands right of what the client sent.
    let (refused, status) = request("127.0.0.2", "10.9.9.9, 203.0.113.2").await;
    assert_eq!(status, "HTTP/1.1 429", "a spoofed address behind the proxy");
    held.push(refused);
    // Not a trusted proxy: the header is ignored, the peer is counted.
    for client in ["198.51.100.1", "198.51.100.2"] {
        let (tcp, status) = request("127.0.0.3", client).await;
        assert_eq!(status, "HTTP/1.1 404");
        held.push(tcp);
    }
    let mut spoofer = tcp_from("127.0.0.3", srv.addr).await;
    let answer = read_to_close(&mut spoofer).await;
    assert!(answer.starts_with("HTTP/1.1 429 "), "{answer}");

    // Places come back when the connections close.
    held.clear();
    let gw = srv.gateway.clone();
    eventually("0 open", || gw.http_stats().open_connections == 0).await;
    let (_tcp, status) = request("127.0.0.2", "203.0.113.1").await;
    assert_eq!(status, "HTTP/1.1 404");
}

/// The `said` events on `ns` with their offset argument, until `n` arrived.
async fn said_with_offsets(c: &mut Client, ns: &str, n: usize) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    while out.len() < n {
        let p = c.wait_for(|p| p.is_event(ns, "said")).await;
        let data = p.data.unwrap();
        out.push((
            data[1]["text"].as_str().unwrap_or_default().to_owned(),
            data[2].clone(),
        ));
    }
    out
}

/// The next `evcontract:recovery` on `ns`.
async fn position(c: &mut Client, ns: &str) -> Value {
    c.event(ns, "evcontract:recovery").await
}

/// A room with history: a client that asked for offsets gets each event's
/// offset as the extra last argument, a plain client the event as before;
/// a client whose connection was cut (no goodbye) comes back naming its
/// last offset and gets the 200 events it missed in order, once, then live
/// events, with nothing between; a trimmed history, another epoch and a
/// room without history are each reported with their reason.
#[tokio::test]
async fn a_client_cut_off_gets_what_it_missed_in_order_once() {
    let srv = start().await;
    let ns = "/chat";
    let room = |r: &str| Some(json!({ "room": r }));
    let mut sender = Client::open(srv.addr).await;
    sender.connect(ns, None).await.unwrap();
    sender.call(ns, 1, "join", room("kept:1")).await;
    let mut plain = Client::open(srv.addr).await;
    plain.connect(ns, None).await.unwrap();
    plain.call(ns, 1, "join", room("kept:1")).await;
    let mut reader = Client::open(srv.addr).await;
    reader
        .connect_with(ns, r#"{"recovery": {}}"#)
        .await
        .unwrap();
    reader.call(ns, 1, "join", room("kept:1")).await;
    let joined = position(&mut reader, ns).await;
    assert_eq!(
        (joined["recovered"].clone(), joined["offset"].clone()),
        (json!(true), json!(0))
    );
    let epoch = joined["epoch"].as_str().unwrap().to_owned();

    sender
        .call(
            ns,
            2,
            "shout",
            Some(json!({"room": "kept:1", "text": "first"})),
        )
        .await;
    let first = said_with_offsets(&mut reader, ns, 1).await;
    assert_eq!(first[0].0, "first");
    assert_eq!(
        first[0].1,
        json!({"room": "kept:1", "epoch": epoch, "offset": 1})
    );
    let p = plain.wait_for(|p| p.is_event(ns, "said")).await;
    assert_eq!(
        p.data.unwrap().as_array().unwrap().len(),
        2,
        "a plain client gets no offset"
    );

    // Cut: the TCP connection goes without a close frame.
    drop(reader);
    for i in 0..200 {
        sender
            .call(
                ns,
                100 + i,
                "shout",
                Some(json!({"room": "kept:1", "text": format!("m{i}")})),
            )
            .await;
    }
    let mut back = Client::open(srv.addr).await;
    let auth = json!({"recovery": {"kept:1": {"epoch": epoch, "offset": 1}, "free": {"epoch": "x", "offset": 0}}});
    back.connect_with(ns, &auth.to_string()).await.unwrap();
    let replayed = said_with_offsets(&mut back, ns, 200).await;
    for (i, (text, offset)) in replayed.iter().enumerate() {
        assert_eq!(text, &format!("m{i}"));
        assert_eq!(offset["offset"], json!(i as u64 + 2));
    }
    // The positions come in room order: `free` has no history, `kept:1`
    // was recovered whole.
    let free = position(&mut back, ns).await;
    assert_eq!(
        (
            free["room"].clone(),
            free["recovered"].clone(),
            free["reason"].clone()
        ),
        (json!("free"), json!(false), json!("no_history"))
    );
    let kept = position(&mut back, ns).await;
    assert_eq!(
        kept,
        json!({"room": "kept:1", "epoch": epoch, "offset": 201, "recovered": true, "replayed": 200})
    );
    // Back in the room: the next event is live, numbered 202, and nothing
    // arrives twice.
    sender
        .call(
            ns,
            400,
            "shout",
            Some(json!({"room": "kept:1", "text": "live"})),
        )
        .await;
    let live = said_with_offsets(&mut back, ns, 1).await;
    assert_eq!(
        (live[0].0.as_str(), live[0].1["offset"].clone()),
        ("live", json!(202))
    );
    back.no_event(ns, "said", Duration::from_millis(200)).await;

    // A history that kept 5 events: 10 missed is a gap, reported; the
    // client is back in the room all the same.
    let mut short = Client::open(srv.addr).await;
    short.connect_with(ns, r#"{"recovery": {}}"#).await.unwrap();
    short.call(ns, 1, "join", room("short:1")).await;
    let start = position(&mut short, ns).await;
    drop(short);
    sender.call(ns, 500, "join", room("short:1")).await;
    for i in 0..10 {
        sender
            .call(
                ns,
                501 + i,
                "shout",
                Some(json!({"room": "short:1", "text": format!("s{i}")})),
            )
            .await;
    }
    let mut again = Client::open(srv.addr).await;
    let auth = json!({"recovery": {"short:1": {"epoch": start["epoch"], "offset": 0}}});
    again.connect_with(ns, &auth.to_string()).await.unwrap();
    let gap = position(&mut again, ns).await;
    assert_eq!(
        (
            gap["recovered"].clone(),
            gap["reason"].clone(),
            gap["offset"].clone()
        ),
        (json!(false), json!("trimmed"), json!(10))
    );
    again.no_event(ns, "said", Duration::from_millis(100)).await;
    sender
        .call(
            ns,
            600,
            "shout",
            Some(json!({"room": "short:1", "text": "after"})),
        )
        .await;
    assert_eq!(
        said_with_offsets(&mut again, ns, 1).await[0].1["offset"],
        json!(11)
    );
    // Another epoch: the history the client saw is gone.
    let mut stale = Client::open(srv.addr).await;
    stale
        .connect_with(
            ns,
            r#"{"recovery": {"kept:1": {"epoch": "0000000000000000", "offset": 3}}}"#,
        )
        .await
        .unwrap();
    assert_eq!(position(&mut stale, ns).await["reason"], json!("epoch"));
}

/// A replay larger than the socket's queue on the server is cut where the
/// queue is full, and the position says so (`dropped`) instead of claiming
/// a recovery.
#[tokio::test]
async fn a_replay_that_does_not_fit_the_queue_is_reported_dropped() {
    let srv = start_with(ServerConfig::new().buffer_size(16)).await;
    let ns = "/chat";
    let mut sender = Client::open(srv.addr).await;
    sender.connect(ns, None).await.unwrap();
    sender
        .call(ns, 1, "join", Some(json!({"room": "kept:q"})))
        .await;
    let mut reader = Client::open(srv.addr).await;
    reader
        .connect_with(ns, r#"{"recovery": {}}"#)
        .await
        .unwrap();
    reader
        .call(ns, 1, "join", Some(json!({"room": "kept:q"})))
        .await;
    let start = position(&mut reader, ns).await;
    drop(reader);
    for i in 0..100 {
        sender
            .call(
                ns,
                10 + i,
                "shout",
                Some(json!({"room": "kept:q", "text": format!("q{i}")})),
            )
            .await;
    }
    let mut back = Client::open(srv.addr).await;
    let auth =
        json!({"recovery": {"kept:q": {"epoch": start["epoch"], "offset": start["offset"]}}});
    back.connect_with(ns, &auth.to_string()).await.unwrap();
    let at = position(&mut back, ns).await;
    assert_eq!(
        (at["recovered"].clone(), at["reason"].clone()),
        (json!(false), json!("dropped")),
        "{at}"
    );
    assert!(at["replayed"].as_u64().unwrap() < 100, "{at}");
}
