//! The client against a real socketioxide server (and a few fake servers for
//! failure modes) on 127.0.0.1. Every test is bounded in time.
#![cfg(feature = "client")]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use evcontract_runtime::client::{
    Client, ClientError, ClientOptions, ConnectError, ConnectionError, ConnectionState,
    DisconnectReason, ServerEvent,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::handler::ConnectHandler;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// Fails the test instead of hanging it.
async fn bounded<F: std::future::Future>(secs: u64, fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .expect("test took too long")
}

#[derive(Debug)]
struct Refusal(&'static str);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

async fn auth(Data(auth): Data<Value>) -> Result<(), Refusal> {
    match auth.get("token").and_then(Value::as_str) {
        None => Err(Refusal("AUTH_REQUIRED")),
        Some("good") => Ok(()),
        Some(_) => Err(Refusal("INVALID_TOKEN")),
    }
}

/// Why the server saw each socket go, by socket.io sid.
static GONE: Mutex<Vec<(String, socketioxide::socket::DisconnectReason)>> = Mutex::new(Vec::new());

fn gone_reason(sid: &str) -> Option<socketioxide::socket::DisconnectReason> {
    GONE.lock()
        .unwrap()
        .iter()
        .find(|(s, _)| s == sid)
        .map(|(_, r)| *r)
}

/// Greets a socket once connected, and records why it leaves.
async fn on_connect(s: SocketRef) {
    let _ = s.emit("welcome", &json!({"sid": s.id.to_string()}));
    s.on_disconnect(
        async |s: SocketRef, reason: socketioxide::socket::DisconnectReason| {
            GONE.lock().unwrap().push((s.id.to_string(), reason));
        },
    );
}

// The client must be cheap to clone and usable from any task.
const _: fn() = || {
    fn check<T: Send + Sync + Clone + 'static>() {}
    check::<Client>();
    check::<ServerEvent>();
    check::<ClientOptions>();
};

/// Registers the event handlers. A middleware, not the connect handler:
/// socketioxide sends CONNECT and only then spawns the connect handler, so an
/// event the client emits right away (as a reconnect hook does) could arrive
/// before handlers registered there exist, and be dropped.
async fn register(s: SocketRef) -> Result<(), Refusal> {
    s.on("echo", async |Data(v): Data<Value>, ack: AckSender| {
        let _ = ack.send(&json!({"success": true, "data": v}));
    });
    s.on("fail", async |ack: AckSender| {
        let _ = ack.send(&json!({
            "success": false, "code": "ACCESS_DENIED", "message": "not yours",
            "details": {"threadId": "t1"}
        }));
    });
    s.on("plain", async |ack: AckSender| {
        let _ = ack.send("hello");
    });
    s.on("silent", async || {});
    s.on("slow_echo", async |Data(v): Data<Value>, ack: AckSender| {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let _ = ack.send(&json!({"success": true, "data": v}));
    });
    s.on(
        "burst",
        async |s: SocketRef, Data(n): Data<u32>, ack: AckSender| {
            for i in 0..n {
                let _ = s.emit("tick", &i);
            }
            let _ = ack.send(&json!({"success": true, "data": n}));
        },
    );
    s.on(
        "join",
        async |s: SocketRef, Data(room): Data<String>, ack: AckSender| {
            s.join(room);
            let _ = ack.send(&json!({"success": true, "data": null}));
        },
    );
    s.on(
        "ask",
        async |s: SocketRef, Data(n): Data<i64>, ack: AckSender| {
            let answer = match s.emit_with_ack::<_, i64>("question", &n) {
                Ok(stream) => stream.await.ok(),
                Err(_) => None,
            };
            let _ = ack.send(&json!({"success": true, "data": answer}));
        },
    );
    Ok(())
}

struct Server {
    addr: SocketAddr,
    io: SocketIo,
    task: JoinHandle<()>,
}

impl Server {
    /// Stops accepting connections and closes every open one (engine.io
    /// close): the clients see the transport close.
    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
        self.io.close().await;
    }
}

async fn serve_on(listener: TcpListener, ping: Option<Duration>) -> Server {
    let addr = listener.local_addr().unwrap();
    let mut builder = SocketIo::builder().max_buffer_size(4096);
    if let Some(ping) = ping {
        builder = builder.ping_interval(ping).ping_timeout(ping);
    }
    let (layer, io) = builder.build_layer();
    io.ns("/", on_connect.with(register));
    io.ns("/secure", on_connect.with(register).with(auth));
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "ok" }))
        .layer(layer);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Server { addr, io, task }
}

async fn serve() -> Server {
    serve_on(TcpListener::bind("127.0.0.1:0").await.unwrap(), None).await
}

fn options(addr: SocketAddr) -> ClientOptions {
    ClientOptions::new(format!("http://{addr}"))
        .connect_timeout(Duration::from_secs(5))
        .ack_timeout(Duration::from_secs(5))
}

async fn wait_state(
    state: &mut watch::Receiver<ConnectionState>,
    pred: impl FnMut(&ConnectionState) -> bool,
) -> ConnectionState {
    *bounded(10, state.wait_for(pred))
        .await
        .expect("client state channel closed")
}

async fn next_named(rx: &mut broadcast::Receiver<ServerEvent>, name: &str) -> Value {
    loop {
        match rx.recv().await {
            Ok(ev) if ev.name == name => return ev.payload,
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => panic!("event channel closed"),
        }
    }
}

#[tokio::test]
async fn connect_is_accepted_and_acks_work() {
    bounded(20, async {
        let server = serve().await;
        let builder = Client::builder(options(server.addr));
        let mut events = builder.subscribe();
        let client = builder.connect().await.expect("connect");
        assert!(client.is_connected());
        assert!(client.sid().is_some());
        // Emitted by the server's connect handler, before connect() returned.
        let welcome = next_named(&mut events, "welcome").await;
        assert_eq!(welcome["sid"].as_str(), client.sid().as_deref());

        let echoed: Value = client
            .emit_with_ack("echo", &json!({"text": "hi"}))
            .await
            .unwrap();
        assert_eq!(echoed, json!({"text": "hi"}));

        let err = client
            .emit_with_ack::<Value, _>("fail", &json!({}))
            .await
            .unwrap_err();
        let ClientError::Server(err) = err else {
            panic!("expected a server error, got {err:?}");
        };
        assert_eq!(err.code, "ACCESS_DENIED");
        assert_eq!(err.message, "not yours");
        assert_eq!(err.details, Some(json!({"threadId": "t1"})));

        // A non-envelope answer: Decode for the typed call, as-is for raw.
        let err = client
            .emit_with_ack::<Value, _>("plain", &())
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Decode(_)), "{err:?}");
        let raw = client.emit_with_ack_raw("plain", &()).await.unwrap();
        assert_eq!(raw, vec![json!("hello")]);

        // Wrong data type inside a success envelope.
        let err = client
            .emit_with_ack::<u32, _>("echo", &"not a number")
            .await
            .unwrap_err();
        assert!(matches!(err, ClientError::Decode(_)), "{err:?}");

        client.emit("silent", &json!(1)).await.unwrap();
        let sid = client.sid().unwrap();
        client.disconnect().await;
        assert_eq!(*client.state().borrow(), ConnectionState::Disconnected);
        // The server got a socket.io DISCONNECT, not just a dropped socket.
        bounded(5, async {
            while gone_reason(&sid).is_none() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert_eq!(
            gone_reason(&sid),
            Some(socketioxide::socket::DisconnectReason::ClientNSDisconnect)
        );
        assert_eq!(
            client.emit("echo", &1).await,
            Err(ClientError::Disconnected)
        );
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn refused_connections_are_typed() {
    bounded(20, async {
        let server = serve().await;
        let secure = || options(server.addr).namespace("/secure");

        let err = Client::connect(secure()).await.unwrap_err();
        assert!(matches!(err, ConnectError::AuthRequired { .. }), "{err:?}");

        let err = Client::connect(secure().token("bad")).await.unwrap_err();
        assert!(matches!(err, ConnectError::InvalidToken { .. }), "{err:?}");

        let err = Client::connect(options(server.addr).namespace("/nope"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ConnectError::Refused { ref message, .. } if message == "Invalid namespace"),
            "{err:?}"
        );

        let client = Client::connect(secure().token("good")).await.unwrap();
        let n: u32 = client.emit_with_ack("echo", &7).await.unwrap();
        assert_eq!(n, 7);
        client.disconnect().await;
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn unreachable_and_silent_servers() {
    bounded(20, async {
        // Nobody listens on a port we just released.
        let addr = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let err = Client::connect(options(addr)).await.unwrap_err();
        assert!(matches!(err, ConnectError::Unreachable(_)), "{err:?}");

        // A server that accepts TCP and never answers.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let started = Instant::now();
        let err = Client::connect(options(addr).connect_timeout(Duration::from_millis(300)))
            .await
            .unwrap_err();
        assert!(matches!(err, ConnectError::Timeout), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
        hold.abort();

        let err = Client::connect(ClientOptions::new("http://127.0.0.1:1/chat"))
            .await
            .unwrap_err();
        assert!(matches!(err, ConnectError::Config(_)), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn ack_timeout_and_late_answers() {
    bounded(20, async {
        let server = serve().await;
        let client = Client::connect(options(server.addr)).await.unwrap();
        let err = client
            .emit_with_ack_timeout::<Value, _>("silent", &1, Duration::from_millis(200))
            .await
            .unwrap_err();
        assert_eq!(err, ClientError::Timeout);

        // The answer comes after the timeout; it must not be mistaken for
        // the answer of the next emit.
        let err = client
            .emit_with_ack_timeout::<Value, _>("slow_echo", &"late", Duration::from_millis(100))
            .await
            .unwrap_err();
        assert_eq!(err, ClientError::Timeout);
        for i in 0..5 {
            let v: i32 = client.emit_with_ack("slow_echo", &i).await.unwrap();
            assert_eq!(v, i);
        }
        client.disconnect().await;
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_acks_on_one_connection() {
    bounded(60, async {
        let server = serve().await;
        let client = Client::connect(options(server.addr).ack_timeout(Duration::from_secs(30)))
            .await
            .unwrap();
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..1000u32 {
            let client = client.clone();
            tasks.spawn(async move {
                let echoed: Value = client
                    .emit_with_ack(
                        "echo",
                        &json!({"i": i, "pad": "x".repeat((i % 50) as usize)}),
                    )
                    .await?;
                Ok::<_, ClientError>((i, echoed))
            });
        }
        let mut seen = vec![false; 1000];
        while let Some(done) = tasks.join_next().await {
            let (i, echoed) = done.unwrap().expect("ack");
            assert_eq!(echoed["i"], json!(i), "mismatched ack");
            assert!(!seen[i as usize]);
            seen[i as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
        eprintln!("1000 concurrent acks in {:?}", started.elapsed());
        client.disconnect().await;
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumers_do_not_block_the_connection() {
    bounded(20, async {
        let server = serve().await;
        let client = Client::connect(options(server.addr).event_buffer(8))
            .await
            .unwrap();
        // A subscriber that never reads, and a handler that sleeps.
        let mut stalled = client.subscribe();
        let handled = Arc::new(AtomicUsize::new(0));
        let counter = handled.clone();
        let _listener = client.on("tick", move |_ev| {
            let counter = counter.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });

        let started = Instant::now();
        let n: u32 = client.emit_with_ack("burst", &100u32).await.unwrap();
        assert_eq!(n, 100);
        let v: String = client.emit_with_ack("echo", &"still here").await.unwrap();
        assert_eq!(v, "still here");
        // 100 events x 200 ms would be 20 s if anything waited for them.
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );

        // The stalled subscriber lost the oldest events, and is told so.
        match stalled.recv().await {
            Err(broadcast::error::RecvError::Lagged(n)) => assert!(n > 0),
            other => panic!("expected Lagged, got {other:?}"),
        }
        // The handler runs in its own task, one event after the other.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let done = handled.load(Ordering::SeqCst);
        assert!((1..100).contains(&done), "{done}");
        client.disconnect().await;
        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn server_acks_are_answered() {
    bounded(20, async {
        let server = serve().await;
        let client = Client::connect(options(server.addr)).await.unwrap();
        let _listener = client.on("question", |ev| async move {
            let n = ev.payload.as_i64().unwrap_or_default();
            if let Some(ack) = ev.ack {
                ack.send(&(n + 1)).await.unwrap();
                assert_eq!(ack.send(&0).await, Err(ClientError::AlreadyAnswered));
            }
        });
        let answer: Option<i64> = client.emit_with_ack("ask", &41).await.unwrap();
        assert_eq!(answer, Some(42));
        client.disconnect().await;
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_are_answered() {
    bounded(20, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = serve_on(listener, Some(Duration::from_millis(100))).await;
        let client = Client::connect(options(server.addr)).await.unwrap();
        // Ten ping rounds: the server would drop a client that does not pong.
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert!(client.is_connected());
        let v: u8 = client.emit_with_ack("echo", &1).await.unwrap();
        assert_eq!(v, 1);
        client.disconnect().await;
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_server_restarts() {
    bounded(30, async {
        let server = serve().await;
        let addr = server.addr;
        let token_calls = Arc::new(AtomicUsize::new(0));
        let hook_runs = Arc::new(AtomicUsize::new(0));
        let calls = token_calls.clone();
        let builder = Client::builder(
            options(addr)
                .namespace("/secure")
                .token_fn(move || {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Some("good".to_owned())
                })
                .reconnection_delay(Duration::from_millis(100))
                .reconnection_delay_max(Duration::from_millis(300)),
        );
        let runs = hook_runs.clone();
        let builder = builder.on_reconnect(move |client| {
            let runs = runs.clone();
            async move {
                // Normal emits wait for the hooks; the hook's client may emit.
                let joined: Result<Value, _> = client.emit_with_ack("join", &"room1").await;
                assert_eq!(joined, Ok(Value::Null));
                runs.fetch_add(1, Ordering::SeqCst);
            }
        });
        let client = builder.connect().await.unwrap();
        let mut state = client.state();
        let first_sid = client.sid();
        assert_eq!(token_calls.load(Ordering::SeqCst), 1);

        // An ack in flight when the connection drops fails with Disconnected.
        let pending = {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .emit_with_ack_timeout::<Value, _>("silent", &1, Duration::from_secs(20))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        server.stop().await;
        assert_eq!(
            bounded(5, pending).await.unwrap(),
            Err(ClientError::Disconnected)
        );
        wait_state(&mut state, |s| {
            matches!(s, ConnectionState::Reconnecting { .. })
        })
        .await;
        assert!(matches!(
            *client.last_error().borrow(),
            Some(ConnectionError::Lost(DisconnectReason::TransportClosed))
                | Some(ConnectionError::Connect(_))
        ));
        assert_eq!(
            client.emit("echo", &1).await,
            Err(ClientError::Disconnected)
        );

        // Let a few attempts fail, then come back on the same port.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let failed_attempts = token_calls.load(Ordering::SeqCst) - 1;
        assert!(failed_attempts >= 1, "no attempt while the server was down");
        let server = serve_on(TcpListener::bind(addr).await.unwrap(), None).await;
        wait_state(&mut state, |s| *s == ConnectionState::Connected).await;

        assert_eq!(hook_runs.load(Ordering::SeqCst), 1);
        // Called again for every attempt: first connect, failures, success.
        assert!(token_calls.load(Ordering::SeqCst) >= failed_attempts + 2);
        assert!(client.last_error().borrow().is_none());
        assert_ne!(client.sid(), first_sid);
        let v: String = client.emit_with_ack("echo", &"back").await.unwrap();
        assert_eq!(v, "back");

        // The hook re-joined the room on the new server.
        let mut events = client.subscribe();
        server
            .io
            .of("/secure")
            .expect("namespace")
            .to("room1")
            .emit("room_msg", &"hello room")
            .await
            .unwrap();
        assert_eq!(
            next_named(&mut events, "room_msg").await,
            json!("hello room")
        );

        client.disconnect().await;
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_during_backoff_stops_reconnecting() {
    bounded(20, async {
        let server = serve().await;
        let addr = server.addr;
        let client = Client::connect(
            options(addr)
                .reconnection_delay(Duration::from_millis(400))
                .randomization_factor(0.0),
        )
        .await
        .unwrap();
        let mut state = client.state();
        server.stop().await;
        wait_state(&mut state, |s| {
            *s == ConnectionState::Reconnecting { attempt: 1 }
        })
        .await;
        // Still in the 400 ms backoff before the first attempt.
        bounded(2, client.disconnect()).await;
        assert_eq!(*client.state().borrow(), ConnectionState::Disconnected);

        // Listen again on the port: no attempt may arrive.
        let listener = TcpListener::bind(addr).await.unwrap();
        let accepted = tokio::time::timeout(Duration::from_millis(1500), listener.accept()).await;
        assert!(
            accepted.is_err(),
            "a connection attempt arrived after disconnect()"
        );
        assert_eq!(*client.state().borrow(), ConnectionState::Disconnected);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gives_up_after_the_configured_attempts() {
    bounded(20, async {
        let server = serve().await;
        let attempts = Arc::new(AtomicUsize::new(0));
        let counter = attempts.clone();
        let client = Client::connect(
            options(server.addr)
                .token_fn(move || {
                    counter.fetch_add(1, Ordering::SeqCst);
                    None
                })
                .reconnection_attempts(Some(3))
                .reconnection_delay(Duration::from_millis(50))
                .reconnection_delay_max(Duration::from_millis(100)),
        )
        .await
        .unwrap();
        let mut state = client.state();
        server.stop().await;
        wait_state(&mut state, |s| *s == ConnectionState::Disconnected).await;
        // The first connection, then three failed attempts.
        assert_eq!(attempts.load(Ordering::SeqCst), 4);
        assert!(matches!(
            *client.last_error().borrow(),
            Some(ConnectionError::Connect(ConnectError::Unreachable(_)))
        ));
    })
    .await;
}

/// A WebSocket server that completes the engine.io and socket.io handshakes
/// with a short heartbeat, then goes silent without closing anything.
async fn silent_server() -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                continue;
            };
            let open = r#"0{"sid":"fake","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}"#;
            if ws.send(Message::text(open)).await.is_err() {
                continue;
            }
            // Wait for the namespace CONNECT, accept it, then say nothing.
            while let Some(Ok(msg)) = ws.next().await {
                if msg.to_text().is_ok_and(|t| t.starts_with("40")) {
                    let _ = ws.send(Message::text(r#"40{"sid":"s1"}"#)).await;
                    break;
                }
            }
            held.push(ws);
        }
    });
    (addr, task)
}

#[tokio::test]
async fn dead_server_is_detected_by_ping_timeout() {
    bounded(20, async {
        let (addr, task) = silent_server().await;
        let client = Client::connect(options(addr).reconnection(false))
            .await
            .unwrap();
        let started = Instant::now();
        let mut state = client.state();
        wait_state(&mut state, |s| *s == ConnectionState::Disconnected).await;
        // pingInterval + pingTimeout = 500 ms.
        let elapsed = started.elapsed();
        assert!(elapsed >= Duration::from_millis(350), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
        assert!(matches!(
            *client.last_error().borrow(),
            Some(ConnectionError::Lost(DisconnectReason::PingTimeout))
        ));
        task.abort();
    })
    .await;
}

// ------------------------------------------------------ several nodes

/// A port nobody listens on (bound, then released).
async fn dead_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
}

fn url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// Waits until the client is connected again on a new connection (another
/// sid than `before`); does not depend on seeing `Reconnecting` go by.
async fn wait_reconnected(client: &Client, before: Option<String>) {
    let mut state = client.state();
    wait_state(&mut state, |s| {
        *s == ConnectionState::Connected && client.sid() != before
    })
    .await;
}

/// What a reconnect hook saw: the node it ran against, and its join.
type HookRuns = Arc<Mutex<Vec<(Option<String>, Result<Value, ClientError>)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_over_to_the_next_node_when_its_node_dies() {
    bounded(30, async {
        let a = serve().await;
        let b = serve().await;
        let hook_runs: HookRuns = Arc::default();
        let runs = hook_runs.clone();
        let client = Client::builder(
            options(a.addr)
                .fallback_urls([url(b.addr)])
                .namespace("/secure")
                .token("good")
                .reconnection_delay(Duration::from_millis(50))
                .reconnection_delay_max(Duration::from_millis(100)),
        )
        .on_reconnect(move |client| {
            let runs = runs.clone();
            async move {
                let joined = client.emit_with_ack::<Value, _>("join", &"room1").await;
                let node = client.current_url().map(str::to_owned);
                runs.lock().unwrap().push((node, joined));
            }
        })
        .connect()
        .await
        .expect("connect to A");
        assert_eq!(client.current_url(), Some(url(a.addr).as_str()));

        // Node A dies: listener and every socket closed.
        let before = client.sid();
        a.stop().await;
        wait_reconnected(&client, before).await;

        assert_eq!(client.current_url(), Some(url(b.addr).as_str()));
        assert_eq!(
            *hook_runs.lock().unwrap(),
            [(Some(url(b.addr)), Ok(Value::Null))],
            "the hook runs once, against B"
        );
        // B knows this socket, and acks round-trip on it.
        let sid = client.sid().expect("a sid on B");
        let on_b = b.io.of("/secure").expect("namespace").sockets();
        assert!(
            on_b.iter().any(|s| s.id.to_string() == sid),
            "B has no socket {sid}"
        );
        let v: String = bounded(5, client.emit_with_ack("echo", &"on b"))
            .await
            .unwrap();
        assert_eq!(v, "on b");
        // The hook's join happened on B: B's room reaches the client.
        let mut events = client.subscribe();
        b.io.of("/secure")
            .expect("namespace")
            .to("room1")
            .emit("room_msg", &"from b")
            .await
            .unwrap();
        assert_eq!(
            bounded(5, next_named(&mut events, "room_msg")).await,
            json!("from b")
        );

        client.disconnect().await;
        assert_eq!(client.current_url(), None);
        b.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnection_starts_after_the_lost_node() {
    bounded(40, async {
        let a = serve().await;
        let b = serve().await;
        let c = serve().await;
        let a_addr = a.addr;
        let client = Client::connect(
            options(a.addr)
                .fallback_urls([url(b.addr), url(c.addr)])
                .reconnection_delay(Duration::from_millis(50))
                .reconnection_delay_max(Duration::from_millis(100)),
        )
        .await
        .expect("connect to A");
        assert_eq!(client.current_url(), Some(url(a_addr).as_str()));

        let before = client.sid();
        a.stop().await;
        wait_reconnected(&client, before).await;
        assert_eq!(client.current_url(), Some(url(b.addr).as_str()));

        // A is back up before B dies: starting over from the first URL would
        // pick A; round robin picks C, the node after B.
        let a = serve_on(TcpListener::bind(a_addr).await.unwrap(), None).await;
        let before = client.sid();
        b.stop().await;
        wait_reconnected(&client, before).await;
        assert_eq!(client.current_url(), Some(url(c.addr).as_str()));

        // After the last node, round robin wraps around to the first.
        let before = client.sid();
        c.stop().await;
        wait_reconnected(&client, before).await;
        assert_eq!(client.current_url(), Some(url(a_addr).as_str()));
        let v: u32 = bounded(5, client.emit_with_ack("echo", &3)).await.unwrap();
        assert_eq!(v, 3);

        client.disconnect().await;
        a.stop().await;
    })
    .await;
}

#[tokio::test]
async fn first_connect_skips_nodes_that_are_down() {
    bounded(20, async {
        let server = serve().await;

        // The first URL refuses TCP connections: the second one is tried at
        // once, not after a backoff.
        let dead = dead_port().await;
        let started = Instant::now();
        let client = Client::connect(options(dead).fallback_urls([url(server.addr)]))
            .await
            .expect("connect to the second URL");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(client.current_url(), Some(url(server.addr).as_str()));
        let v: String = client.emit_with_ack("echo", &"second").await.unwrap();
        assert_eq!(v, "second");
        client.disconnect().await;

        // The first URL accepts TCP and never answers: after its connect
        // timeout, the next URL.
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_addr = silent.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = silent.accept().await {
                held.push(socket);
            }
        });
        let client = Client::connect(
            options(silent_addr)
                .fallback_urls([url(server.addr)])
                .connect_timeout(Duration::from_millis(300)),
        )
        .await
        .expect("connect after the silent node timed out");
        assert_eq!(client.current_url(), Some(url(server.addr).as_str()));
        client.disconnect().await;
        hold.abort();

        // Every node down: one error, naming the last node tried.
        let (dead1, dead2) = (dead_port().await, dead_port().await);
        let err = Client::connect(options(dead1).fallback_urls([url(dead2)]))
            .await
            .unwrap_err();
        assert!(matches!(err, ConnectError::Unreachable(_)), "{err:?}");
        assert!(err.to_string().contains(&url(dead2)), "{err}");

        server.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_refusal_does_not_fail_over() {
    bounded(20, async {
        let server = serve().await;
        // A second node that records any connection attempt.
        let other = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let other_addr = other.local_addr().unwrap();

        let err = Client::connect(
            options(server.addr)
                .fallback_urls([url(other_addr)])
                .namespace("/secure")
                .token("bad"),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ConnectError::InvalidToken { .. }), "{err:?}");
        // connect() has returned: an attempt on the other node would already
        // be in its accept queue.
        let attempt = tokio::time::timeout(Duration::from_millis(200), other.accept()).await;
        assert!(attempt.is_err(), "the other node was tried after a refusal");
        server.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_of_the_nodes_is_one_reconnection_attempt() {
    bounded(20, async {
        let a = serve().await;
        let b = serve().await;
        let tries = Arc::new(AtomicUsize::new(0));
        let counter = tries.clone();
        let client = Client::connect(
            options(a.addr)
                .fallback_urls([url(b.addr)])
                // Called once per URL tried.
                .token_fn(move || {
                    counter.fetch_add(1, Ordering::SeqCst);
                    None
                })
                .reconnection_attempts(Some(2))
                .reconnection_delay(Duration::from_millis(50))
                .reconnection_delay_max(Duration::from_millis(100)),
        )
        .await
        .unwrap();
        let mut state = client.state();
        b.stop().await;
        a.stop().await;
        wait_state(&mut state, |s| *s == ConnectionState::Disconnected).await;
        // The first connection, then two attempts of both nodes each (were
        // each URL an attempt, it would give up after 1 + 2 tries).
        assert_eq!(tries.load(Ordering::SeqCst), 1 + 2 * 2);
        assert!(matches!(
            *client.last_error().borrow(),
            Some(ConnectionError::Connect(ConnectError::Unreachable(_)))
        ));
        assert_eq!(client.current_url(), None);
    })
    .await;
}

#[tokio::test]
async fn a_bad_fallback_url_is_a_config_error() {
    let err = Client::connect(
        ClientOptions::new("http://127.0.0.1:1")
            .fallback_urls(["http://127.0.0.1:2", "ftp://gw-3"]),
    )
    .await
    .unwrap_err();
    let ConnectError::Config(message) = &err else {
        panic!("expected a Config error, got {err:?}");
    };
    assert!(message.contains("`ftp://gw-3`"), "{message}");
}
