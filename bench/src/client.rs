//! Load-generator connections: raw WebSocket (tokio-tungstenite) speaking
//! socket.io v5 to namespace `/chat`, and the [`Probe`] their readers report
//! deliveries and acks to.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Mutex as AsyncMutex, Semaphore, oneshot};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::codec::{self, Frame};

/// The namespace every scenario uses.
pub(crate) const NS: &str = "/chat";

/// Ack ids from here on are the connection's own requests (setup steps and
/// request/ack sends); below, they are the probe's sequence numbers + 1.
const REQUEST_ID_BASE: u64 = 1 << 40;

/// Time allowed for one connection's TCP + WebSocket + namespace handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

type Ws = WebSocketStream<TcpStream>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Nanoseconds since `base`, never 0 (0 means "not recorded").
fn ns_since(base: Instant, at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(base).as_nanos())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// What the readers of one run's connections record: `new_message`
/// deliveries (by the sequence number in their content, per receiving
/// connection, duplicates told apart) with their send-to-receive latency,
/// and the acks of sequence-numbered sends, which also release the sender's
/// in-flight window.
pub(crate) struct Probe {
    base: Instant,
    messages: usize,
    connections: usize,
    send_ns: Vec<AtomicU64>,
    seen: Vec<AtomicU64>,
    /// Released by every sequence-numbered ack: the sender's in-flight window.
    pub(crate) window: Semaphore,
    pub(crate) deliveries: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) other_events: AtomicU64,
    pub(crate) acks_ok: AtomicU64,
    pub(crate) acks_failed: AtomicU64,
    pub(crate) disconnects: AtomicU64,
    first_failure: Mutex<Option<String>>,
    last_delivery_ns: AtomicU64,
    last_ack_ns: AtomicU64,
    delivery_latency_ns: Mutex<Vec<u64>>,
    ack_latency_ns: Mutex<Vec<u64>>,
    /// Per receiver: when its first `announcement` arrived (ns since the
    /// base, 0: not yet).
    announced_ns: Vec<AtomicU64>,
    /// Receivers that got an `announcement`.
    pub(crate) announced: AtomicU64,
}

impl Probe {
    /// A probe for `connections` receivers of `messages` sequence numbers,
    /// with an in-flight window of `window` sends.
    pub(crate) fn new(connections: usize, messages: usize, window: usize) -> Arc<Self> {
        let bits = connections * messages;
        Arc::new(Self {
            base: Instant::now(),
            messages,
            connections,
            send_ns: (0..messages).map(|_| AtomicU64::new(0)).collect(),
            seen: (0..bits.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
            window: Semaphore::new(window),
            deliveries: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            other_events: AtomicU64::new(0),
            acks_ok: AtomicU64::new(0),
            acks_failed: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            first_failure: Mutex::new(None),
            last_delivery_ns: AtomicU64::new(0),
            last_ack_ns: AtomicU64::new(0),
            delivery_latency_ns: Mutex::new(Vec::with_capacity(bits.min(1 << 22))),
            ack_latency_ns: Mutex::new(Vec::with_capacity(messages)),
            announced_ns: Vec::new(),
            announced: AtomicU64::new(0),
        })
    }

    /// A probe that also records when each of `connections` receivers got
    /// an `announcement` (the scale scenario's broadcast to all).
    pub(crate) fn with_announcements(
        connections: usize,
        messages: usize,
        window: usize,
    ) -> Arc<Self> {
        let mut probe = Self::new(connections, messages, window);
        if let Some(p) = Arc::get_mut(&mut probe) {
            p.announced_ns = (0..connections).map(|_| AtomicU64::new(0)).collect();
        }
        probe
    }

    /// An idle probe: no sequence numbers, only counters.
    pub(crate) fn idle() -> Arc<Self> {
        Self::new(0, 0, 0)
    }

    /// Records that `seq` is being sent now; returns its ack id.
    pub(crate) fn mark_sent(&self, seq: usize) -> u64 {
        self.send_ns[seq].store(ns_since(self.base, Instant::now()), Ordering::Relaxed);
        seq as u64 + 1
    }

    /// Nanoseconds since the probe's base.
    pub(crate) fn now_ns(&self) -> u64 {
        ns_since(self.base, Instant::now())
    }

    fn on_event(&self, conn: usize, name: &str, body: &str, at: Instant) {
        if name == "announcement"
            && let Some(slot) = self.announced_ns.get(conn)
        {
            let now = ns_since(self.base, at).max(1);
            if slot
                .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                self.announced.fetch_add(1, Ordering::Relaxed);
            } else {
                self.duplicates.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        if name != "new_message" {
            self.other_events.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let seq = match codec::content_seq(body) {
            Some(seq) if (seq as usize) < self.messages && conn < self.connections => seq as usize,
            _ => {
                self.other_events.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let bit = conn * self.messages + seq;
        let mask = 1u64 << (bit % 64);
        if self.seen[bit / 64].fetch_or(mask, Ordering::Relaxed) & mask != 0 {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let now = ns_since(self.base, at);
        let sent = self.send_ns[seq].load(Ordering::Relaxed);
        lock(&self.delivery_latency_ns).push(now.saturating_sub(sent));
        self.last_delivery_ns.fetch_max(now, Ordering::Relaxed);
        self.deliveries.fetch_add(1, Ordering::Relaxed);
    }

    fn on_ack(&self, id: u64, body: &str, at: Instant) {
        let now = ns_since(self.base, at);
        match usize::try_from(id).ok().and_then(|id| id.checked_sub(1)) {
            Some(seq) if seq < self.messages => {
                let sent = self.send_ns[seq].load(Ordering::Relaxed);
                lock(&self.ack_latency_ns).push(now.saturating_sub(sent));
            }
            _ => {}
        }
        self.record_ack(body, now);
        self.window.add_permits(1);
    }

    /// Counts an ack (success or the first failure's text).
    pub(crate) fn record_ack(&self, body: &str, now_ns: u64) {
        if codec::ack_is_success(body) {
            self.acks_ok.fetch_add(1, Ordering::Relaxed);
        } else {
            self.acks_failed.fetch_add(1, Ordering::Relaxed);
            lock(&self.first_failure).get_or_insert_with(|| body.chars().take(300).collect());
        }
        self.last_ack_ns.fetch_max(now_ns, Ordering::Relaxed);
    }

    /// Records an ack latency measured by the caller.
    pub(crate) fn push_ack_latency(&self, ns: u64) {
        lock(&self.ack_latency_ns).push(ns);
    }

    /// The first failed ack, if any.
    pub(crate) fn first_failure(&self) -> Option<String> {
        lock(&self.first_failure).clone()
    }

    /// When the last delivery arrived (ns since the probe's base).
    pub(crate) fn last_delivery_ns(&self) -> u64 {
        self.last_delivery_ns.load(Ordering::Relaxed)
    }

    /// When the last ack arrived (ns since the probe's base).
    pub(crate) fn last_ack_ns(&self) -> u64 {
        self.last_ack_ns.load(Ordering::Relaxed)
    }

    /// Per receiver, when its `announcement` arrived (ns since the base; 0:
    /// it did not).
    pub(crate) fn announced_at(&self) -> Vec<u64> {
        self.announced_ns
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .collect()
    }

    /// Takes the recorded latencies: (deliveries, acks).
    pub(crate) fn take_latencies(&self) -> (Vec<u64>, Vec<u64>) {
        (
            std::mem::take(&mut *lock(&self.delivery_latency_ns)),
            std::mem::take(&mut *lock(&self.ack_latency_ns)),
        )
    }
}

type Pending = Mutex<HashMap<u64, oneshot::Sender<(String, Instant)>>>;

/// One socket.io connection to `/chat`, authenticated.
pub(crate) struct Conn {
    sink: Arc<AsyncMutex<SplitSink<Ws, Message>>>,
    pending: Arc<Pending>,
    alive: Arc<AtomicBool>,
    reader: tokio::task::JoinHandle<()>,
    next_request: AtomicU64,
}

async fn next_text(ws: &mut Ws) -> Result<String, String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Ok(t.as_str().to_owned()),
            Some(Ok(Message::Close(_))) | None => return Err("closed during handshake".into()),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("websocket: {e}")),
        }
    }
}

/// Clients per loopback source address: the ephemeral port range (32768–
/// 60999 by default) holds about 28,000 connections per source address and
/// destination, so client `i` connects from `127.0.0.{1 + i / 20,000}`.
const CLIENTS_PER_SOURCE: usize = 20_000;

/// Source addresses skipped before client 0's: a run after another large
/// one starts on fresh addresses, since the ports of the closed
/// connections stay in TIME_WAIT for a minute ([`fresh_sources`]).
static SOURCE_SKIP: AtomicUsize = AtomicUsize::new(0);

/// Moves the following connections past every source address that
/// `connections` clients use, so that a run of that size starts on fresh
/// addresses.
pub(crate) fn fresh_sources(connections: usize) {
    SOURCE_SKIP.fetch_add(connections / CLIENTS_PER_SOURCE + 1, Ordering::Relaxed);
}

/// The source address of client number `i`.
fn source_of(i: usize) -> IpAddr {
    let k = (SOURCE_SKIP.load(Ordering::Relaxed) + i / CLIENTS_PER_SOURCE) % 250;
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + k as u8))
}

async fn handshake(addr: SocketAddr, source: IpAddr, token: &str) -> Result<Ws, String> {
    let socket = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
    socket
        .bind(SocketAddr::new(source, 0))
        .map_err(|e| format!("bind {source}: {e}"))?;
    let tcp = socket
        .connect(addr)
        .await
        .map_err(|e| format!("connect {addr} from {source}: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    // Small read buffers: 10,000 idle clients must not cost the generator gigabytes.
    let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(url, tcp, Some(config))
        .await
        .map_err(|e| format!("websocket handshake: {e}"))?;
    let open = next_text(&mut ws).await?;
    if codec::classify(&open) != Frame::Open {
        return Err(format!("expected the engine.io open packet, got {open:?}"));
    }
    ws.send(Message::text(codec::connect_packet(NS, token)))
        .await
        .map_err(|e| e.to_string())?;
    loop {
        let text = next_text(&mut ws).await?;
        match codec::classify(&text) {
            Frame::Connect { ns } if ns == NS => return Ok(ws),
            Frame::ConnectError { body, .. } => return Err(format!("connect refused: {body}")),
            Frame::Ping(data) => ws
                .send(Message::text(codec::pong_packet(data)))
                .await
                .map_err(|e| e.to_string())?,
            _ => {}
        }
    }
}

impl Conn {
    /// Connects from `source`, joins `/chat` with `token`, and starts the reader that
    /// answers pings and reports to `probe` as receiver number `index`.
    pub(crate) async fn connect(
        addr: SocketAddr,
        source: IpAddr,
        token: &str,
        index: usize,
        probe: Arc<Probe>,
    ) -> Result<Self, String> {
        let ws = tokio::time::timeout(CONNECT_TIMEOUT, handshake(addr, source, token))
            .await
            .map_err(|_| format!("handshake with {addr} timed out"))??;
        let (sink, mut stream) = ws.split();
        let sink = Arc::new(AsyncMutex::new(sink));
        let pending: Arc<Pending> = Arc::default();
        let alive = Arc::new(AtomicBool::new(true));
        let reader = {
            let sink = sink.clone();
            let pending = pending.clone();
            let alive = alive.clone();
            tokio::spawn(async move {
                while let Some(Ok(msg)) = stream.next().await {
                    let at = Instant::now();
                    let Message::Text(text) = msg else {
                        if matches!(msg, Message::Close(_)) {
                            break;
                        }
                        continue;
                    };
                    match codec::classify(text.as_str()) {
                        Frame::Event { name, body, .. } => probe.on_event(index, name, body, at),
                        Frame::Ack { id, body, .. } if id >= REQUEST_ID_BASE => {
                            let waiter = lock(&pending).remove(&id);
                            if let Some(tx) = waiter {
                                let _ = tx.send((body.to_owned(), at));
                            }
                        }
                        Frame::Ack { id, body, .. } => probe.on_ack(id, body, at),
                        Frame::Ping(data) => {
                            let pong = Message::text(codec::pong_packet(data));
                            if sink.lock().await.send(pong).await.is_err() {
                                break;
                            }
                        }
                        Frame::Close | Frame::Disconnect { .. } => break,
                        _ => {}
                    }
                }
                alive.store(false, Ordering::Relaxed);
                probe.disconnects.fetch_add(1, Ordering::Relaxed);
            })
        };
        Ok(Self {
            sink,
            pending,
            alive,
            reader,
            next_request: AtomicU64::new(REQUEST_ID_BASE),
        })
    }

    /// Sends one text frame.
    pub(crate) async fn send(&self, text: String) -> Result<(), String> {
        self.sink
            .lock()
            .await
            .send(Message::text(text))
            .await
            .map_err(|e| format!("send: {e}"))
    }

    /// Sends event `name` with an ack id of the connection's own and waits
    /// for the ack: returns its body, when it was sent and when it arrived.
    pub(crate) async fn request(
        &self,
        name: &str,
        payload_json: &str,
        timeout: Duration,
    ) -> Result<(String, Instant, Instant), String> {
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, tx);
        let sent = Instant::now();
        self.send(codec::event_packet(NS, id, name, payload_json))
            .await?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok((body, at))) => Ok((body, sent, at)),
            Ok(Err(_)) => Err(format!("{name}: connection closed before the ack")),
            Err(_) => {
                lock(&self.pending).remove(&id);
                Err(format!("{name}: no ack within {timeout:?}"))
            }
        }
    }

    /// Whether the reader still runs (the server has not closed the socket).
    pub(crate) fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Relaxed)
    }

    /// Drops the connection: stops the reader and closes the TCP stream
    /// without a close handshake (the server sees the transport close).
    pub(crate) fn close(self) {
        self.reader.abort();
    }
}

/// Connects `tokens.len()` clients, at most `parallel` handshakes at a time,
/// in index order (client `i` is receiver `i` of `probe`), split evenly and
/// in order over `nodes` (the first `tokens.len() / nodes.len()`, rounded
/// up, to `nodes[0]`, …; see [`node_of`]). `first` is the number of clients
/// connected before these: client `i` of `tokens` is receiver `first + i`,
/// and its source address is [`source_of`]`(first + i)`.
pub(crate) async fn connect_all(
    nodes: &[SocketAddr],
    tokens: &[String],
    probe: &Arc<Probe>,
    parallel: usize,
    first: usize,
) -> Result<Vec<Conn>, String> {
    let results: Vec<Result<Conn, String>> =
        futures_util::stream::iter(tokens.iter().enumerate().map(|(i, token)| {
            let probe = probe.clone();
            let addr = nodes[node_of(i, tokens.len(), nodes.len())];
            let source = source_of(first + i);
            async move { Conn::connect(addr, source, token, first + i, probe).await }
        }))
        .buffered(parallel.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

/// The node (index into `nodes` of [`connect_all`]) of client `i` of `clients`.
pub(crate) fn node_of(i: usize, clients: usize, nodes: usize) -> usize {
    i * nodes.max(1) / clients.max(1)
}

/// Closes every connection.
pub(crate) fn close_all(conns: Vec<Conn>) {
    for conn in conns {
        conn.close();
    }
}

#[cfg(test)]
mod tests {
    use super::node_of;

    #[test]
    fn clients_split_in_order_first_node_rounded_up() {
        let split = |clients, nodes| -> Vec<usize> {
            (0..clients).map(|i| node_of(i, clients, nodes)).collect()
        };
        assert_eq!(split(4, 1), [0, 0, 0, 0]);
        assert_eq!(split(4, 2), [0, 0, 1, 1]);
        assert_eq!(split(5, 2), [0, 0, 0, 1, 1]);
        assert_eq!(split(200, 2).iter().filter(|&&n| n == 0).count(), 100);
    }
}
