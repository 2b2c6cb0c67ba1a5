//! `gateway_inbound`: the gateway's inbound path, in process.
//!
//! Once per process: a tokio runtime, and a real [`Gateway`] serving the
//! chat contract's generated glue (trivial handlers) on 127.0.0.1:0, with
//! WebSocket connections of an authenticated client on `/chat` and
//! `/health`: two the fuzzer writes to, one kept clean. Each input is sent
//! as one frame on the first fuzz connection (a text frame, or, when it is
//! not UTF-8, a binary frame or a text frame with invalid UTF-8), and as
//! the rest of an event (`42/chat,` + input) on the second. Then the clean
//! connection must get the ack of a well-formed acked event within
//! [`WAIT`]. The server may close a fuzz connection (it is opened again);
//! any panic anywhere in the process is a crash ([`crate::panics`]).

use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use chat_contract::chat::server::ChatHandler;
use chat_contract::health::server::HealthHandler;
use chat_contract::{
    Announce, Announcement, GetThread, GetThreadAck, HealthStatus, JoinThread, JoinThreadAck,
    LeaveThread, LeaveThreadAck, MarkRead, Message, RequestRefresh, SendMessage, Typing,
};
use evcontract_runtime::EventError;
use evcontract_runtime::server::{AuthConfig, Gateway, ServerConfig, SocketContext, sign_hs256};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio_tungstenite::tungstenite::Message as Frame;
use tokio_tungstenite::tungstenite::protocol::frame::Frame as RawFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::panics;

/// The HS256 secret of the fuzzed gateway.
const SECRET: &[u8] = b"evcontract-fuzz-secret";
/// How long the clean connection may wait for its ack, and any other step.
pub const WAIT: Duration = Duration::from_secs(5);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// `/chat`: every event succeeds with a fixed, valid answer.
struct Chat;

fn to_internal(e: impl std::fmt::Display) -> EventError {
    EventError::internal(e.to_string())
}

impl ChatHandler for Chat {
    async fn join_thread(
        &self,
        ctx: &SocketContext,
        p: JoinThread,
    ) -> Result<JoinThreadAck, EventError> {
        ctx.join(format!("thread:{}", *p.thread_id))?;
        Ok(JoinThreadAck {
            thread_id: p.thread_id.to_string(),
            members: Vec::new(),
        })
    }

    async fn leave_thread(
        &self,
        ctx: &SocketContext,
        p: LeaveThread,
    ) -> Result<LeaveThreadAck, EventError> {
        ctx.leave(format!("thread:{}", *p.thread_id));
        Ok(LeaveThreadAck {
            thread_id: p.thread_id.to_string(),
        })
    }

    async fn get_thread(
        &self,
        _ctx: &SocketContext,
        p: GetThread,
    ) -> Result<GetThreadAck, EventError> {
        Ok(GetThreadAck {
            thread_id: p.thread_id.to_string(),
            messages: Vec::new(),
        })
    }

    async fn send_message(
        &self,
        ctx: &SocketContext,
        p: SendMessage,
    ) -> Result<Message, EventError> {
        serde_json::from_value(json!({
            "id": "00000000-0000-4000-8000-000000000000",
            "threadId": *p.thread_id,
            "userId": ctx.user_id().unwrap_or_default(),
            "content": *p.content,
            "createdAt": "2024-01-01T00:00:00Z",
        }))
        .map_err(to_internal)
    }

    async fn typing(&self, _: &SocketContext, _: Typing) -> Result<(), EventError> {
        Ok(())
    }

    async fn mark_read(&self, _: &SocketContext, _: MarkRead) -> Result<(), EventError> {
        Ok(())
    }

    async fn announce(&self, ctx: &SocketContext, p: Announce) -> Result<Announcement, EventError> {
        serde_json::from_value(json!({
            "id": "00000000-0000-4000-8000-000000000000",
            "text": *p.text,
            "from": ctx.user_id().unwrap_or_default(),
            "sentAt": "2024-01-01T00:00:00Z",
        }))
        .map_err(to_internal)
    }
}

/// `/health`: a fixed status.
struct Health;

impl HealthHandler for Health {
    async fn request_refresh(
        &self,
        _: &SocketContext,
        _: RequestRefresh,
    ) -> Result<HealthStatus, EventError> {
        serde_json::from_value(json!({
            "status": "ok",
            "uptimeSeconds": 1,
            "connectedClients": 1,
            "checkedAt": "2024-01-01T00:00:00Z",
        }))
        .map_err(to_internal)
    }
}

/// The gateway and the connections to it.
struct Harness {
    runtime: Runtime,
    addr: SocketAddr,
    token: String,
    connections: Mutex<Connections>,
}

struct Connections {
    /// What the fuzzer writes to; `None` once the server closed it.
    fuzz: [Option<Ws>; 2],
    /// The well-behaved client.
    clean: Ws,
    /// The next ack id of the clean connection.
    next_ack: u64,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(Harness::start)
}

impl Harness {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("gateway")
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let token =
            sign_hs256(SECRET, "fuzzer", Duration::from_secs(30 * 24 * 3600)).expect("a token");
        let addr = runtime.block_on(async {
            let config = ServerConfig::new().auth(AuthConfig::hs256(SECRET));
            let (gateway, _layer) = Gateway::new(config).expect("a gateway");
            chat_contract::chat::server::register(&gateway, Chat)
                .await
                .expect("/chat mounts");
            chat_contract::health::server::register(&gateway, Health)
                .await
                .expect("/health mounts");
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
            let addr = listener.local_addr().expect("its address");
            tokio::spawn(async move {
                if let Err(e) = gateway
                    .serve_listener(listener, std::future::pending())
                    .await
                {
                    panic!("the gateway stopped serving: {e}");
                }
            });
            addr
        });
        let connections = runtime.block_on(async {
            Connections {
                fuzz: [
                    Some(open(addr, &token).await),
                    Some(open(addr, &token).await),
                ],
                clean: open(addr, &token).await,
                next_ack: 1,
            }
        });
        Self {
            runtime,
            addr,
            token,
            connections: Mutex::new(connections),
        }
    }
}

/// A WebSocket connection with the engine.io handshake done and `/chat` and
/// `/health` joined with a valid token; panics if the server refuses.
async fn open(addr: SocketAddr, token: &str) -> Ws {
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .unwrap_or_else(|_| panic!("the gateway did not accept a WebSocket within {WAIT:?}"))
        .unwrap_or_else(|e| panic!("the gateway refused a WebSocket: {e}"));
    let open = next_text(&mut ws).await;
    assert!(
        open.starts_with("0{"),
        "expected engine.io open, got {open:?}"
    );
    for ns in ["/chat", "/health"] {
        send(
            &mut ws,
            Frame::text(format!("40{ns},{}", json!({ "token": token }))),
        )
        .await;
        let prefix = format!("40{ns},");
        loop {
            let text = next_text(&mut ws).await;
            if text.starts_with(&prefix) {
                break;
            }
            assert!(
                !text.starts_with(&format!("44{ns},")),
                "the gateway refused a valid token on {ns}: {text}"
            );
        }
    }
    ws
}

async fn send(ws: &mut Ws, frame: Frame) {
    tokio::time::timeout(WAIT, ws.send(frame))
        .await
        .unwrap_or_else(|_| panic!("a send to the gateway blocked for {WAIT:?}"))
        .unwrap_or_else(|e| panic!("the gateway closed a clean connection: {e}"));
}

/// The next text frame, answering engine.io pings on the way.
async fn next_text(ws: &mut Ws) -> String {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no answer from the gateway within {WAIT:?}"))
            .unwrap_or_else(|| panic!("the gateway closed a clean connection"))
            .unwrap_or_else(|e| panic!("the gateway broke a clean connection: {e}"));
        match frame {
            Frame::Text(t) if t.as_str() == "2" => send(ws, Frame::text("3")).await,
            Frame::Text(t) => return t.as_str().to_owned(),
            Frame::Close(c) => panic!("the gateway closed a clean connection: {c:?}"),
            _ => {}
        }
    }
}

/// Reads what a fuzz connection has ready without waiting; `false` once
/// the server closed it.
async fn drain(ws: &mut Ws) -> bool {
    loop {
        match tokio::time::timeout(Duration::ZERO, ws.next()).await {
            Err(_) => return true,
            Ok(None | Some(Err(_)) | Some(Ok(Frame::Close(_)))) => return false,
            Ok(Some(Ok(Frame::Text(t)))) if t.as_str() == "2" => {
                if ws.send(Frame::text("3")).await.is_err() {
                    return false;
                }
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// The frames `data` becomes on each fuzz connection.
fn frames(data: &[u8]) -> [Frame; 2] {
    let first = match std::str::from_utf8(data) {
        Ok(text) => Frame::text(text),
        Err(_) if data.first().is_some_and(|b| b & 1 == 1) => Frame::binary(data.to_vec()),
        // A text frame whose payload is not UTF-8 (a WebSocket protocol error).
        Err(_) => Frame::Frame(RawFrame::message(
            data.to_vec(),
            OpCode::Data(Data::Text),
            true,
        )),
    };
    let event = format!("42/chat,{}", String::from_utf8_lossy(data));
    [first, Frame::text(event)]
}

/// The fuzz target.
pub fn gateway_inbound(data: &[u8]) {
    panics::init();
    panics::remember(data);
    let h = harness();
    let mut conns = h.connections.lock().unwrap_or_else(PoisonError::into_inner);
    h.runtime.block_on(one_input(h, &mut conns, data));
    panics::assert_none("gateway_inbound");
}

async fn one_input(h: &Harness, conns: &mut Connections, data: &[u8]) {
    for (slot, frame) in conns.fuzz.iter_mut().zip(frames(data)) {
        if let Some(ws) = slot.as_mut()
            && !drain(ws).await
        {
            *slot = None;
        }
        let ws = match slot {
            Some(ws) => ws,
            None => slot.insert(open(h.addr, &h.token).await),
        };
        // The server may close the connection for what it got: fine.
        match tokio::time::timeout(WAIT, ws.send(frame)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => *slot = None,
            Err(_) => panic!("a fuzz frame could not be written within {WAIT:?}"),
        }
    }
    check_clean(conns).await;
}

/// The clean connection's acked event must be answered in time.
async fn check_clean(conns: &mut Connections) {
    let id = conns.next_ack;
    conns.next_ack += 1;
    let ws = &mut conns.clean;
    send(
        ws,
        Frame::text(format!(
            r#"42/chat,{id}["join_thread",{{"threadId":"clean"}}]"#
        )),
    )
    .await;
    let prefix = format!("43/chat,{id}[");
    loop {
        let text = next_text(ws).await;
        if let Some(rest) = text.strip_prefix(&prefix) {
            let ack: Value = serde_json::from_str(&format!("[{rest}"))
                .unwrap_or_else(|e| panic!("a malformed ack {text:?}: {e}"));
            // The contract allows 120 joins a minute: past them the answer
            // is RATE_LIMITED, a timely answer all the same.
            let joined = json!({ "success": true, "data": { "threadId": "clean", "members": [] } });
            assert!(
                ack[0] == joined || ack[0]["code"] == "RATE_LIMITED",
                "the clean connection's ack: {}",
                ack[0]
            );
            return;
        }
    }
}
