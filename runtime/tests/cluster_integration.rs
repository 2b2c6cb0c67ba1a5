//! Several gateways on one real redis-server (socketioxide's Redis adapter):
//! every [`Target`] reaches the right sockets on every node, the cluster-wide
//! queries count every node, and an unreachable Redis is a clear error.
//!
//! Redis: `EVCONTRACT_REDIS_URL` (the README's test command starts one), or a
//! `redis-server` this test starts itself (`REDIS_SERVER_BIN`, default
//! `redis-server` on PATH). Each gateway pair gets its own channel prefix.
#![cfg(all(feature = "redis", feature = "client"))]
#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use evcontract_runtime::client::{Client, ClientOptions, ServerEvent};
use evcontract_runtime::server::{
    AuthConfig, AuthMode, BoxFuture, ClusterError, Dispatch, EventSpec, Gateway, HistorySpec,
    NamespaceSpec, RedisConfig, RoomSpec, ServerConfig, ServerError, SocketContext, Target,
    sign_hs256,
};
use evcontract_runtime::wire::{AckData, EventError, encode_ack};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::time::timeout;

const SECRET: &[u8] = b"cluster-secret";
const STEP: Duration = Duration::from_secs(5);

const fn ev(name: &'static str) -> EventSpec {
    EventSpec {
        name,
        auth: AuthMode::Optional,
        rate_limit: None,
        max_payload_bytes: None,
        acked: true,
        idempotent: false,
        schema: "{}",
    }
}

static EVENTS: [EventSpec; 3] = [ev("join"), ev("emit"), ev("query")];

static NS: NamespaceSpec = NamespaceSpec {
    path: "/c",
    auth: AuthMode::Optional,
    client_events: &EVENTS,
    server_events: &["hit", "mark"],
    contract: None,
    rooms: &[],
};

/// `join {room}`; `emit {target, arg?, tag}` emits `hit {tag}` to the target
/// and answers the emit's outcome; `query {room}` answers the cluster-wide
/// and local views.
struct TestDispatch;

fn target_of(ctx: &SocketContext, p: &Value) -> Target {
    let arg = p["arg"].as_str().unwrap_or_default().to_owned();
    match p["target"].as_str().unwrap_or_default() {
        "socket" => Target::socket(arg),
        "room" => Target::room(arg),
        "room_except_me" => Target::room_except(arg, ctx.socket_id()),
        "room_except" => Target::room_except("r", arg),
        "user" => Target::user(arg),
        "authenticated" => Target::Authenticated,
        "all" => Target::All,
        "local_all" => Target::All.local(),
        other => panic!("unknown target {other}"),
    }
}

impl Dispatch for TestDispatch {
    fn dispatch(
        &self,
        ctx: SocketContext,
        event: &'static EventSpec,
        p: &str,
    ) -> BoxFuture<'static, Result<AckData, EventError>> {
        let p: Value = match evcontract_runtime::wire::decode_text(p) {
            Ok(v) => v,
            Err(err) => return Box::pin(async move { Err(err) }),
        };
        Box::pin(async move {
            let emitter = ctx.emitter();
            let ack = match event.name {
                "join" => {
                    ctx.join(p["room"].as_str().unwrap_or_default())?;
                    json!(null)
                }
                "emit" => {
                    let event = if p["tag"] == "mark" { "mark" } else { "hit" };
                    let res = emitter
                        .emit(target_of(&ctx, &p), event, &json!({"tag": p["tag"]}))
                        .await;
                    json!(res.err().map(|e| e.to_string()))
                }
                "query" => {
                    let room = p["room"].as_str().unwrap_or_default();
                    let users = emitter.room_users(room).await.map_err(internal)?;
                    let sockets = emitter.room_sockets(room).await.map_err(internal)?;
                    let here = sockets.iter().filter(|s| s.on_this_node).count();
                    json!({
                        "users": users,
                        "sockets": sockets.len(),
                        "socketsHere": here,
                        "localMembers": emitter.room_members(room).len(),
                        "cluster": emitter.cluster_connected_count().await.map_err(internal)?,
                        "local": emitter.connected_count(),
                    })
                }
                other => return Err(EventError::internal(format!("unexpected {other}"))),
            };
            encode_ack(&ack)
        })
    }
}

fn internal(e: ClusterError) -> EventError {
    EventError::internal(e.to_string())
}

/// A redis-server started by this test, stopped on drop.
struct OwnRedis(Child);

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The Redis to use, and the process to keep alive while it is used.
async fn redis() -> (String, Option<OwnRedis>) {
    if let Ok(url) = std::env::var("EVCONTRACT_REDIS_URL") {
        return (url, None);
    }
    let bin = std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".to_owned());
    let port = free_port();
    let child = Command::new(&bin)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin} (apt-get install redis-server): {e}"));
    let guard = OwnRedis(child);
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return (format!("redis://127.0.0.1:{port}"), Some(guard));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("redis-server did not listen on {port}");
}

static PREFIX: AtomicU32 = AtomicU32::new(0);

/// A gateway node on `redis` with channel prefix `prefix`, serving on a
/// free port; returns its URL.
async fn node(redis: &str, prefix: &str) -> (Gateway, String) {
    let config = ServerConfig::new()
        .auth(AuthConfig::hs256(SECRET))
        .redis(RedisConfig::new(redis).prefix(prefix));
    let gateway = Gateway::build(config).await.expect("gateway on Redis");
    gateway.register(&NS, TestDispatch).await.expect("register");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let g = gateway.clone();
    tokio::spawn(async move { g.serve_listener(listener, std::future::pending()).await });
    (gateway, url)
}

/// A connected client of namespace `/c`, with its event stream.
struct Peer {
    name: &'static str,
    client: Client,
    events: broadcast::Receiver<ServerEvent>,
}

async fn peer(name: &'static str, url: &str, user: Option<&str>) -> Peer {
    let mut options = ClientOptions::new(url).namespace("/c");
    if let Some(user) = user {
        options = options.token(sign_hs256(SECRET, user, Duration::from_secs(600)).expect("token"));
    }
    let builder = Client::builder(options);
    let events = builder.subscribe();
    let client = timeout(STEP, builder.connect())
        .await
        .expect("connect in time")
        .expect("connect");
    Peer {
        name,
        client,
        events,
    }
}

/// The ack of `event`, which must come.
async fn call(client: &Client, event: &str, payload: Value) -> Value {
    timeout(STEP, client.emit_with_ack::<Value, _>(event, &payload))
        .await
        .expect("ack in time")
        .expect("ack")
}

impl Peer {
    async fn call(&self, event: &str, payload: Value) -> Value {
        call(&self.client, event, payload).await
    }

    fn id(&self) -> String {
        self.client.sid().expect("connected")
    }

    /// The `hit` tags this peer got before the next `mark`.
    async fn hits_until_mark(&mut self) -> Vec<String> {
        let mut tags = Vec::new();
        loop {
            let ev = timeout(STEP, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("{}: no mark in time", self.name))
                .expect("event stream");
            match ev.name.as_str() {
                "mark" => return tags,
                "hit" => tags.push(ev.payload["tag"].as_str().unwrap_or_default().to_owned()),
                _ => {}
            }
        }
    }
}

/// Emits to `target` from `from`, then a `mark` to everyone from the same
/// node (Redis keeps one publisher's messages in order), and returns which
/// peers got the `hit`.
async fn who_gets(from: &Client, all: &mut [Peer], target: &str, arg: &str) -> Vec<&'static str> {
    let res = call(
        from,
        "emit",
        json!({"target": target, "arg": arg, "tag": target}),
    )
    .await;
    assert_eq!(res, Value::Null, "emit to {target} failed: {res}");
    call(from, "emit", json!({"target": "all", "tag": "mark"})).await;
    let mut got = Vec::new();
    for p in all.iter_mut() {
        let hits = p.hits_until_mark().await;
        assert!(
            hits.len() <= 1,
            "{} got {target} {} times",
            p.name,
            hits.len()
        );
        if !hits.is_empty() {
            got.push(p.name);
        }
    }
    got.sort_unstable();
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_target_reaches_the_right_sockets_on_every_node() {
    let (url, _redis) = redis().await;
    let prefix = format!(
        "it-{}-{}",
        std::process::id(),
        PREFIX.fetch_add(1, Ordering::Relaxed)
    );
    let (g1, n1) = node(&url, &prefix).await;
    let (g2, n2) = node(&url, &prefix).await;

    // alice has a socket on each node; bob on node 2; two anonymous sockets.
    let mut peers = vec![
        peer("alice1", &n1, Some("alice")).await,
        peer("alice2", &n2, Some("alice")).await,
        peer("bob", &n2, Some("bob")).await,
        peer("anon1", &n1, None).await,
        peer("anon2", &n2, None).await,
    ];
    for p in &peers[..4] {
        p.call("join", json!({"room": "r"})).await;
    }
    let bob_id = peers[2].id();
    let ids: BTreeMap<&str, String> = peers.iter().map(|p| (p.name, p.id())).collect();
    assert_eq!(ids.len(), 5);

    // Each case sends from node 1 (alice1) or node 2 (bob): an emit must
    // reach the matching sockets of both nodes, once.
    let sender1 = peers[0].client.clone();
    let sender2 = peers[2].client.clone();
    let cases: [(&Client, &str, &str, &[&str]); 9] = [
        (&sender1, "room", "r", &["alice1", "alice2", "anon1", "bob"]),
        (&sender1, "room_except_me", "r", &["alice2", "anon1", "bob"]),
        // A socket of the other node left out of a room broadcast.
        (
            &sender1,
            "room_except",
            &bob_id,
            &["alice1", "alice2", "anon1"],
        ),
        // A user with sockets on both nodes gets it on both.
        (&sender2, "user", "alice", &["alice1", "alice2"]),
        (&sender1, "authenticated", "", &["alice1", "alice2", "bob"]),
        (
            &sender1,
            "all",
            "",
            &["alice1", "alice2", "anon1", "anon2", "bob"],
        ),
        // One socket of the other node, by id.
        (&sender1, "socket", &bob_id, &["bob"]),
        (&sender2, "socket", &ids["anon1"], &["anon1"]),
        // This node's sockets only.
        (&sender1, "local_all", "", &["alice1", "anon1"]),
    ];
    for (from, target, arg, want) in cases {
        assert_eq!(
            who_gets(from, &mut peers, target, arg).await,
            want,
            "target {target} {arg} from {:?}",
            from.sid()
        );
    }

    // Cluster-wide queries from either node; local ones stay local.
    for from in [&peers[0], &peers[2]] {
        let q = from.call("query", json!({"room": "r"})).await;
        assert_eq!(q["users"], json!(["alice", "bob"]), "{q}");
        assert_eq!(q["sockets"], json!(4), "{q}");
        assert_eq!(q["cluster"], json!(5), "{q}");
    }
    let q1 = peers[0].call("query", json!({"room": "r"})).await;
    assert_eq!(
        (&q1["local"], &q1["localMembers"], &q1["socketsHere"]),
        (&json!(2), &json!(2), &json!(2))
    );
    assert_eq!(g1.cluster_total_connected().await, Ok(5));
    assert_eq!(g2.total_connected(), 3);
    assert!(g1.is_clustered());

    // A disconnect on node 2 is seen from node 1.
    peers[4].client.disconnect().await;
    let deadline = tokio::time::Instant::now() + STEP;
    while g1.cluster_total_connected().await != Ok(4) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "count never settled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn unreachable_redis_is_a_clear_error_and_new_refuses_redis() {
    let port = free_port();
    let url = format!("redis://:secret@127.0.0.1:{port}");
    let config = ServerConfig::new().redis(RedisConfig::new(&url));
    let err = Gateway::build(config.clone())
        .await
        .expect_err("nothing listens there");
    let msg = err.to_string();
    assert!(matches!(err, ServerError::Cluster(_)), "{msg}");
    assert!(
        msg.contains(&format!(
            "cannot reach Redis at redis://:***@127.0.0.1:{port}"
        )),
        "{msg}"
    );
    assert!(!msg.contains("secret"), "the password leaked: {msg}");
    assert!(matches!(Gateway::new(config), Err(ServerError::Config(_))));
}

static KEEP_EVENTS: [EventSpec; 2] = [
    ev("join"),
    EventSpec {
        idempotent: true,
        ..ev("keep")
    },
];

static KEEP_ROOMS: [RoomSpec; 1] = [RoomSpec {
    name: "kept",
    pattern: "kept:{id}",
    max_members: None,
    history: Some(HistorySpec {
        size: 100,
        ttl_seconds: 600,
    }),
}];

static KEEP_NS: NamespaceSpec = NamespaceSpec {
    path: "/k",
    auth: AuthMode::Optional,
    client_events: &KEEP_EVENTS,
    server_events: &["kept"],
    contract: None,
    rooms: &KEEP_ROOMS,
};

/// `join {room}`; `keep {room, tag}` emits `kept {tag}` to the room, whose
/// history is in Redis, and answers how many times it ran for the tag. A
/// tag starting with `lost-` fails its first run with `UNAVAILABLE` after
/// the emit, as a handler does when Redis kept its event but the answer
/// was lost on the way back (a timeout): the client sends it again.
#[derive(Default)]
struct KeepDispatch {
    runs: std::sync::Arc<std::sync::Mutex<BTreeMap<String, u32>>>,
}

impl Dispatch for KeepDispatch {
    fn dispatch(
        &self,
        ctx: SocketContext,
        event: &'static EventSpec,
        p: &str,
    ) -> BoxFuture<'static, Result<AckData, EventError>> {
        let p: Value = match evcontract_runtime::wire::decode_text(p) {
            Ok(v) => v,
            Err(err) => return Box::pin(async move { Err(err) }),
        };
        let runs = self.runs.clone();
        Box::pin(async move {
            let room = p["room"].as_str().unwrap_or_default().to_owned();
            if event.name == "join" {
                ctx.join(&room)?;
                return encode_ack(&json!(null));
            }
            let tag = p["tag"].as_str().unwrap_or_default().to_owned();
            ctx.emitter()
                .emit(Target::room(room), "kept", &json!({ "tag": tag }))
                .await
                .map_err(|e| EventError::unavailable(e.to_string()))?;
            let run = {
                let mut runs = runs.lock().expect("runs");
                let run = runs.entry(tag.clone()).or_insert(0);
                *run += 1;
                *run
            };
            if run == 1 && tag.starts_with("lost-") {
                return Err(EventError::unavailable("the answer was lost"));
            }
            encode_ack(&json!({ "runs": run }))
        })
    }
}

/// A keyed handler that runs again (its first answer was `UNAVAILABLE`
/// after its event was kept) does not keep the event twice: the room's
/// members get it once, and the next event has the next offset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyed_handler_that_runs_again_keeps_its_event_once() {
    let (redis, _guard) = redis().await;
    // Unique per run: the offsets asserted start at 1 in a fresh history,
    // also on a Redis that earlier runs used.
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let prefix = format!("keep-{}-{since_epoch}", std::process::id());
    let config = ServerConfig::new()
        .auth(AuthConfig::hs256(SECRET))
        .redis(RedisConfig::new(&redis).prefix(prefix));
    let gateway = Gateway::build(config).await.expect("gateway on Redis");
    gateway
        .register(&KEEP_NS, KeepDispatch::default())
        .await
        .expect("register");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let g = gateway.clone();
    tokio::spawn(async move { g.serve_listener(listener, std::future::pending()).await });

    let connect = |recovery: bool| {
        let builder = Client::builder(
            ClientOptions::new(url.clone())
                .namespace("/k")
                .recovery(recovery),
        );
        let events = builder.subscribe();
        async move {
            let client = timeout(STEP, builder.connect())
                .await
                .expect("connect in time")
                .expect("connect");
            (client, events)
        }
    };
    let (receiver, mut events) = connect(true).await;
    let (sender, _) = connect(false).await;
    call(&receiver, "join", json!({"room": "kept:1"})).await;

    let first: Value = timeout(
        STEP,
        sender.emit_idempotent("keep", &json!({"room": "kept:1", "tag": "lost-1"})),
    )
    .await
    .expect("answered in time")
    .expect("answered");
    assert_eq!(first, json!({"runs": 2}), "the handler ran again");
    let next: Value = timeout(
        STEP,
        sender.emit_idempotent("keep", &json!({"room": "kept:1", "tag": "next"})),
    )
    .await
    .expect("answered in time")
    .expect("answered");
    assert_eq!(next, json!({"runs": 1}));

    let mut seen = Vec::new();
    while seen.last().is_none_or(|(tag, _)| tag != "next") {
        let ev = timeout(STEP, events.recv())
            .await
            .unwrap_or_else(|_| panic!("no `next` in time; seen {seen:?}"))
            .expect("event stream");
        if ev.name != "kept" {
            continue;
        }
        let offset = ev
            .extra
            .last()
            .and_then(|o| o["offset"].as_u64())
            .unwrap_or_else(|| panic!("an offset: {ev:?}"));
        seen.push((
            ev.payload["tag"].as_str().unwrap_or_default().to_owned(),
            offset,
        ));
    }
    assert_eq!(
        seen,
        [("lost-1".to_owned(), 1), ("next".to_owned(), 2)],
        "each event kept once"
    );
}
