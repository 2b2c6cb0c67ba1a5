//! One WebSocket connection: the handshake, then a task that owns the socket.
//!
//! The connection task is the only reader and writer of the WebSocket. It
//! answers pings, resolves pending acks, hands server events to a
//! `broadcast` channel (never awaiting a consumer) and writes what emits put
//! in its queue. It ends on a lost connection, a ping timeout, a socket.io
//! `DISCONNECT` from the server, or the client's shutdown signal; then every
//! pending ack fails with [`ClientError::Disconnected`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::Connector;

use super::error::{ClientError, ConnectError, DisconnectReason, TransportError};
use super::event::{AckResponder, AckSink, BoxedSend, ServerEvent};
use super::options::Node;
use super::protocol::{self, EnginePacket, OpenInfo, SocketPacket};
use super::recovery::Inbox;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What an acked emit gets back: the ack's arguments.
pub(crate) type AckResult = Result<Vec<Value>, ClientError>;

/// Outgoing frames queued for the connection task.
const OUT_QUEUE: usize = 1024;
/// Frames written before one flush.
const MAX_BATCH: usize = 256;
/// How long a clean close (socket.io DISCONNECT, WebSocket close) may take.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// A WebSocket whose namespace accepted the connection.
pub(crate) struct Established {
    ws: Ws,
    open: OpenInfo,
    /// The socket.io session id the namespace gave.
    sid: Option<String>,
}

fn unreachable(err: tungstenite::Error) -> ConnectError {
    ConnectError::Unreachable(TransportError::new(err))
}

/// Why the WebSocket could not be opened: TLS (the certificate) apart from
/// the rest (down, refused, not a WebSocket endpoint).
fn connect_failure(err: tungstenite::Error) -> ConnectError {
    #[cfg(feature = "tls")]
    if let Some(tls) = super::tls::tls_failure(&err) {
        return tls;
    }
    unreachable(err)
}

fn closed_during_handshake() -> ConnectError {
    ConnectError::Unreachable(TransportError::msg(
        "the connection closed before the namespace answered",
    ))
}

/// Opens the WebSocket to `node`, reads the engine.io handshake, asks to
/// join `namespace` and waits for its answer. No timeout here: the caller
/// bounds it.
pub(crate) async fn establish(
    node: &Node,
    namespace: &str,
    auth: Option<Value>,
    connector: Option<Connector>,
) -> Result<Established, ConnectError> {
    #[cfg(feature = "tls")]
    let connected = tokio_tungstenite::connect_async_tls_with_config(
        node.ws_url.as_str(),
        None,
        false,
        connector,
    )
    .await;
    #[cfg(not(feature = "tls"))]
    let connected = {
        // Only `ws://` nodes get here without the feature (see `connector`).
        let _: Option<Connector> = connector;
        tokio_tungstenite::connect_async(node.ws_url.as_str()).await
    };
    let (mut ws, _response) = connected.map_err(connect_failure)?;

    let text = next_handshake_text(&mut ws).await?;
    let open = match protocol::decode_engine(&text) {
        Ok(EnginePacket::Open(open)) => open,
        Ok(EnginePacket::Close) => return Err(closed_during_handshake()),
        Ok(other) => {
            return Err(ConnectError::Protocol(format!(
                "expected the engine.io open packet, got {other:?}"
            )));
        }
        Err(err) => return Err(ConnectError::Protocol(err.to_string())),
    };

    let connect = protocol::encode_connect(namespace, auth.as_ref());
    ws.send(Message::text(connect)).await.map_err(unreachable)?;

    loop {
        let text = next_handshake_text(&mut ws).await?;
        match protocol::decode_engine(&text) {
            Ok(EnginePacket::Ping(data)) => {
                ws.send(Message::text(protocol::encode_pong(data)))
                    .await
                    .map_err(unreachable)?;
            }
            Ok(EnginePacket::Close) => return Err(closed_during_handshake()),
            Ok(EnginePacket::Message(inner)) => match protocol::decode_socket(inner) {
                Ok(SocketPacket::Connect { ns, data }) if ns == namespace => {
                    let sid = data
                        .as_ref()
                        .and_then(|d| d.get("sid"))
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    return Ok(Established { ws, open, sid });
                }
                Ok(SocketPacket::ConnectError { ns, data }) if ns == namespace => {
                    // The server keeps the engine.io session open after a
                    // refusal; close it like socket.io-client does.
                    let _ = tokio::time::timeout(CLOSE_GRACE, ws.close(None)).await;
                    return Err(ConnectError::from_connect_error(data));
                }
                // Other namespaces, or malformed packets: not ours to judge.
                _ => {}
            },
            _ => {}
        }
    }
}

/// The next text frame of the handshake (other frames are skipped); the end
/// of the stream or a Close frame means the server closed during it.
async fn next_handshake_text(ws: &mut Ws) -> Result<tungstenite::Utf8Bytes, ConnectError> {
    loop {
        match ws.next().await {
            None | Some(Ok(Message::Close(_))) => return Err(closed_during_handshake()),
            Some(Err(err)) => return Err(unreachable(err)),
            Some(Ok(Message::Text(text))) => return Ok(text),
            Some(Ok(_)) => {}
        }
    }
}

/// The pending acks of one connection.
#[derive(Default)]
struct Pending {
    closed: bool,
    waiting: HashMap<u64, oneshot::Sender<AckResult>>,
}

/// What emitters share with a connection task.
pub(crate) struct ConnShared {
    generation: u64,
    namespace: Arc<str>,
    sid: Option<String>,
    out: mpsc::Sender<Message>,
    pending: Mutex<Pending>,
    next_ack: AtomicU64,
    ready: AtomicBool,
}

impl AckSink for ConnShared {
    fn namespace(&self) -> &str {
        ConnShared::namespace(self)
    }

    fn send_text(&self, text: String) -> BoxedSend<'_> {
        Box::pin(ConnShared::send_text(self, text))
    }
}

impl ConnShared {
    /// Which connection this is (increments with every reconnection).
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    pub(crate) fn namespace(&self) -> &str {
        &self.namespace
    }

    pub(crate) fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }

    /// Whether normal traffic may use this connection (false while the
    /// reconnect hooks run).
    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub(crate) fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// The next ack id: a per-connection counter, never reused.
    pub(crate) fn next_ack_id(&self) -> u64 {
        self.next_ack.fetch_add(1, Ordering::Relaxed)
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        // The lock is never held across a panic-prone call; recover anyway.
        super::lock(&self.pending)
    }

    /// Waits for the ack `id`. Fails if the connection already ended.
    pub(crate) fn register(&self, id: u64) -> Result<oneshot::Receiver<AckResult>, ClientError> {
        let mut pending = self.pending();
        if pending.closed {
            return Err(ClientError::Disconnected);
        }
        let (tx, rx) = oneshot::channel();
        pending.waiting.insert(id, tx);
        Ok(rx)
    }

    /// Stops waiting for `id` (timeout or cancelled emit).
    pub(crate) fn forget(&self, id: u64) {
        self.pending().waiting.remove(&id);
    }

    fn resolve(&self, id: u64, result: AckResult) {
        // An unknown id (late answer after a timeout, or a confused server)
        // is dropped.
        if let Some(tx) = self.pending().waiting.remove(&id) {
            let _ = tx.send(result);
        }
    }

    /// Fails every pending ack with `Disconnected` (by dropping its sender).
    fn close(&self) {
        let waiting = {
            let mut pending = self.pending();
            pending.closed = true;
            std::mem::take(&mut pending.waiting)
        };
        drop(waiting);
    }

    /// Queues one engine.io text frame; returns once the connection task
    /// has it.
    pub(crate) async fn send_text(&self, text: String) -> Result<(), ClientError> {
        self.out
            .send(Message::text(text))
            .await
            .map_err(|_| ClientError::Disconnected)
    }
}

/// Starts the task that owns an established connection.
pub(crate) fn spawn(
    runtime: &tokio::runtime::Handle,
    established: Established,
    namespace: Arc<str>,
    generation: u64,
    ready: bool,
    inbox: Arc<Inbox>,
    shutdown: watch::Receiver<bool>,
) -> (Arc<ConnShared>, JoinHandle<DisconnectReason>) {
    let Established { ws, open, sid } = established;
    let (out, out_rx) = mpsc::channel(OUT_QUEUE);
    let shared = Arc::new(ConnShared {
        generation,
        namespace,
        sid,
        out,
        pending: Mutex::new(Pending::default()),
        next_ack: AtomicU64::new(0),
        ready: AtomicBool::new(ready),
    });
    let liveness = liveness(&open);
    let task = runtime.spawn(drive(ws, out_rx, shared.clone(), inbox, shutdown, liveness));
    (shared, task)
}

/// A server silent for this long is dead: `pingInterval + pingTimeout`
/// (engine.io-client's rule), capped so that absurd server values cannot
/// overflow a deadline. Any frame counts as a sign of life.
fn liveness(open: &OpenInfo) -> Duration {
    const CAP: Duration = Duration::from_secs(24 * 60 * 60);
    open.ping_interval
        .saturating_add(open.ping_timeout)
        .min(CAP)
}

pub(super) async fn stop_requested(shutdown: &mut watch::Receiver<bool>) {
    // An error means the client is gone: stop as well.
    let _ = shutdown.wait_for(|stop| *stop).await;
}

async fn drive(
    mut ws: Ws,
    mut out_rx: mpsc::Receiver<Message>,
    conn: Arc<ConnShared>,
    inbox: Arc<Inbox>,
    mut shutdown: watch::Receiver<bool>,
    liveness: Duration,
) -> DisconnectReason {
    let ping_deadline = tokio::time::sleep(liveness);
    tokio::pin!(ping_deadline);
    let reason = loop {
        tokio::select! {
            () = stop_requested(&mut shutdown) => {
                let goodbye = Message::text(protocol::encode_disconnect(&conn.namespace));
                let _ = tokio::time::timeout(CLOSE_GRACE, async {
                    ws.send(goodbye).await?;
                    ws.close(None).await
                })
                .await;
                break DisconnectReason::ClientDisconnect;
            }
            () = &mut ping_deadline => break DisconnectReason::PingTimeout,
            frame = ws.next() => {
                ping_deadline.as_mut().reset(Instant::now() + liveness);
                match frame {
                    None | Some(Ok(Message::Close(_))) => break DisconnectReason::TransportClosed,
                    Some(Err(err)) => {
                        break DisconnectReason::TransportError(TransportError::new(err));
                    }
                    Some(Ok(Message::Text(text))) => {
                        if let Some(reason) = on_text(&text, &mut ws, &conn, &inbox).await {
                            break reason;
                        }
                    }
                    // Binary attachments (unsupported, see `on_text`) and
                    // WebSocket-level pings (answered by tungstenite).
                    Some(Ok(_)) => {}
                }
            }
            msg = out_rx.recv() => {
                // `conn` holds a sender, so the queue never closes while we run.
                let Some(msg) = msg else { break DisconnectReason::ClientDisconnect };
                if let Err(err) = write_batch(&mut ws, msg, &mut out_rx).await {
                    break DisconnectReason::TransportError(TransportError::new(err));
                }
            }
        }
    };
    conn.close();
    reason
}

/// Writes `first` and whatever else is already queued, then flushes once.
async fn write_batch(
    ws: &mut Ws,
    first: Message,
    out_rx: &mut mpsc::Receiver<Message>,
) -> Result<(), tungstenite::Error> {
    ws.feed(first).await?;
    for _ in 1..MAX_BATCH {
        match out_rx.try_recv() {
            Ok(msg) => ws.feed(msg).await?,
            Err(_) => break,
        }
    }
    ws.flush().await
}

/// Handles one text frame; `Some` ends the connection.
async fn on_text(
    text: &str,
    ws: &mut Ws,
    conn: &Arc<ConnShared>,
    inbox: &Inbox,
) -> Option<DisconnectReason> {
    match protocol::decode_engine(text) {
        Ok(EnginePacket::Ping(data)) => {
            if let Err(err) = ws.send(Message::text(protocol::encode_pong(data))).await {
                return Some(DisconnectReason::TransportError(TransportError::new(err)));
            }
        }
        Ok(EnginePacket::Close) => return Some(DisconnectReason::TransportClosed),
        Ok(EnginePacket::Message(inner)) => {
            let ours = |ns: &str| ns == conn.namespace();
            match protocol::decode_socket(inner) {
                Ok(SocketPacket::Event { ns, id, name, args }) if ours(ns) => {
                    let ack = id.map(|id| AckResponder::new(conn, id));
                    inbox.deliver(ServerEvent::new(name, args, ack));
                }
                Ok(SocketPacket::Ack { ns, id, args }) if ours(ns) => conn.resolve(id, Ok(args)),
                Ok(SocketPacket::BinaryAck { ns, id: Some(id) }) if ours(ns) => conn.resolve(
                    id,
                    Err(ClientError::Decode(
                        "the server answered with binary attachments, which this client does not support"
                            .to_owned(),
                    )),
                ),
                Ok(SocketPacket::Disconnect { ns }) if ours(ns) => {
                    return Some(DisconnectReason::ServerDisconnect);
                }
                // Binary events (unsupported: their attachments arrive as
                // binary frames, which are skipped), other namespaces,
                // malformed packets: dropped without closing the connection.
                _ => {}
            }
        }
        // Pong, upgrade, noop, a second open, garbage: nothing to do.
        _ => {}
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness_never_overflows() {
        let open = |interval, timeout| OpenInfo {
            sid: String::new(),
            ping_interval: Duration::from_millis(interval),
            ping_timeout: Duration::from_millis(timeout),
            max_payload: 0,
        };
        assert_eq!(liveness(&open(300, 200)), Duration::from_millis(500));
        let huge = liveness(&open(u64::MAX, u64::MAX));
        assert_eq!(huge, Duration::from_secs(24 * 60 * 60));
        let _ = Instant::now() + huge;
    }
}
