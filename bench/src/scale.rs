//! The scale scenario: many authenticated `/chat` connections on one
//! server, joined into threads, then one broadcast to every socket and
//! thread traffic over all of them.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::client::{self, Conn, Probe};
use crate::codec;
use crate::scenarios::{
    CONNECT_PARALLEL, CpuMark, ScaleSizes, percentile_ms, send_acked, send_payload, server_proc,
    settled_rss, token, tokens, wait_for,
};
use crate::servers::{ADMIN, Kind, Server};

/// Join requests in flight at a time.
const JOIN_PARALLEL: usize = 256;

/// Time allowed for one join's ack (each join is announced to its thread).
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Time allowed for the broadcast to reach every socket before the run
/// counts the rest as lost.
const BROADCAST_LIMIT: Duration = Duration::from_secs(30);

/// One scale run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ScaleRun {
    /// Which server.
    pub(crate) server: Kind,
    /// Round number (from 1).
    pub(crate) round: usize,
    /// Connections asked for.
    pub(crate) requested: usize,
    /// Connections opened (fewer than asked when the open-file limit is
    /// lower; see `limited_by`).
    pub(crate) connections: usize,
    /// Why fewer connections than asked, if so.
    pub(crate) limited_by: Option<String>,
    /// Threads.
    pub(crate) threads: usize,
    /// Seconds to connect them all (handshake and namespace connect).
    pub(crate) connect_seconds: f64,
    /// Connections per second.
    pub(crate) connects_per_s: f64,
    /// RSS of the fresh server (bytes).
    pub(crate) baseline_rss_bytes: u64,
    /// RSS with every client connected, before joining (bytes).
    #[serde(default)]
    pub(crate) connected_rss_bytes: u64,
    /// RSS with every client connected and joined (bytes).
    pub(crate) rss_bytes: u64,
    /// (RSS - baseline) / connections.
    pub(crate) bytes_per_connection: f64,
    /// Sockets that received the broadcast to all.
    pub(crate) broadcast_received: u64,
    /// From the admin's send to each socket's receipt: p50, p99, max (ms).
    pub(crate) broadcast_p50_ms: f64,
    /// 99th percentile.
    pub(crate) broadcast_p99_ms: f64,
    /// The last socket.
    pub(crate) broadcast_max_ms: f64,
    /// A new connection's handshake, started with the broadcast (ms).
    pub(crate) connect_during_broadcast_ms: f64,
    /// Thread traffic: messages sent.
    pub(crate) messages: usize,
    /// Thread traffic: `new_message` deliveries expected (every member of
    /// the sender's thread, the sender included).
    pub(crate) expected_deliveries: u64,
    /// Thread traffic: deliveries received.
    pub(crate) deliveries: u64,
    /// Missing deliveries: broadcast and thread traffic together.
    pub(crate) lost: u64,
    /// Deliveries seen twice.
    pub(crate) duplicates: u64,
    /// Thread traffic: deliveries per second.
    pub(crate) deliveries_per_s: f64,
    /// Thread traffic: server CPU (schedstat) per delivery, µs.
    pub(crate) cpu_us_per_delivery: f64,
    /// Clients still connected at the end.
    pub(crate) alive: usize,
    /// The first failed ack or send, if any.
    pub(crate) first_failure: Option<String>,
}

/// The thread of client `i`.
fn thread_of(round: usize, pid: u32, i: usize, threads: usize) -> String {
    format!("scale-{round}-{pid}-{}", i % threads)
}

/// Runs the scenario on `server` with `connections` clients (already
/// capped to what the open-file limit allows; `limited_by` says why when
/// fewer than `sizes.connections`).
pub(crate) async fn scale(
    server: &mut Server,
    secret: &str,
    sizes: ScaleSizes,
    connections: usize,
    limited_by: Option<String>,
    round: usize,
) -> Result<ScaleRun, String> {
    let n = connections.max(sizes.threads);
    let threads = sizes.threads.max(1);
    let baseline = settled_rss(server).await?;
    let probe = Probe::with_announcements(n, sizes.messages, sizes.window);
    // Fresh source addresses for each run (the last run's ports linger in
    // TIME_WAIT).
    client::fresh_sources(n);

    // Connect, 1,000 at a time.
    let started = Instant::now();
    let mut conns: Vec<Conn> = Vec::with_capacity(n);
    let all_tokens = tokens(secret, &format!("scale{round}-"), 0..n)?;
    for chunk in all_tokens.chunks(1000) {
        let first = conns.len();
        match client::connect_all(&[server.addr], chunk, &probe, CONNECT_PARALLEL, first).await {
            Ok(more) => conns.extend(more),
            Err(e) => {
                client::close_all(conns);
                return Err(format!("after {first} connections: {e}"));
            }
        }
    }
    let connect_seconds = started.elapsed().as_secs_f64();
    let connected_rss = settled_rss(server).await?;

    // Join: client i to thread i % threads; join k of a thread is
    // announced to the k members present.
    let pid = server.pid;
    let joins = futures_util::stream::iter(conns.iter().enumerate().map(|(i, conn)| {
        let payload = format!("{{\"threadId\":\"{}\"}}", thread_of(round, pid, i, threads));
        async move { conn.request("join_thread", &payload, JOIN_TIMEOUT).await }
    }))
    .buffer_unordered(JOIN_PARALLEL)
    .collect::<Vec<_>>()
    .await;
    for j in joins {
        let (body, _, _) = j?;
        if !codec::ack_is_success(&body) {
            client::close_all(conns);
            return Err(format!("join_thread failed: {body}"));
        }
    }
    let joined: u64 = (0..threads)
        .map(|t| {
            let members = (n - t).div_ceil(threads) as u64;
            members * (members + 1) / 2
        })
        .sum();
    wait_for(Duration::from_secs(60), || {
        probe.other_events.load(Ordering::Relaxed) >= joined
    })
    .await;
    let rss = settled_rss(server).await?;

    // The broadcast to all, sent by an admin connection of its own, and a
    // new connection started at the same moment.
    let admin_token = token(secret, ADMIN)?;
    let mut admin = client::connect_all(&[server.addr], &[admin_token], &probe, 1, n).await?;
    let late_token = token(secret, "scale-late")?;
    let t0 = probe.now_ns();
    let sent = Instant::now();
    let announce = admin[0].request(
        "announce",
        "{\"text\":\"Maintenance tonight at 22:00 UTC\"}",
        BROADCAST_LIMIT,
    );
    let late = async {
        let begun = Instant::now();
        let conn = client::connect_all(&[server.addr], &[late_token], &probe, 1, n + 1).await;
        (conn, begun.elapsed())
    };
    let ((ack, _, _), (late_conn, late_took)) = match tokio::join!(announce, late) {
        (Ok(a), l) => (a, l),
        (Err(e), (l, _)) => {
            client::close_all(conns);
            client::close_all(admin);
            client::close_all(l.unwrap_or_default());
            return Err(format!("announce: {e}"));
        }
    };
    let mut first_failure = (!codec::ack_is_success(&ack)).then(|| format!("announce: {ack}"));
    wait_for(BROADCAST_LIMIT.saturating_sub(sent.elapsed()), || {
        probe.announced.load(Ordering::Relaxed) >= n as u64
    })
    .await;
    let mut arrivals: Vec<u64> = probe
        .announced_at()
        .into_iter()
        .filter(|&at| at > 0)
        .map(|at| at.saturating_sub(t0))
        .collect();
    arrivals.sort_unstable();
    let broadcast_received = arrivals.len() as u64;
    admin.extend(late_conn.unwrap_or_default());

    // Thread traffic: message k from member k / threads of thread k % threads.
    let start = CpuMark::take(&[server_proc(server)])?;
    let t1 = probe.now_ns();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    // Thread t has (n - t).div_ceil(threads) members; message seq goes to
    // thread seq % threads, from its members in turn.
    let members = |t: usize| (n - t).div_ceil(threads);
    let expected = (0..sizes.messages)
        .map(|seq| members(seq % threads) as u64)
        .sum();
    let failure = send_acked(&probe, &conns, sizes.messages, expected, deadline, |seq| {
        let t = seq % threads;
        let sender = t + threads * ((seq / threads) % members(t));
        (
            sender,
            send_payload(&thread_of(round, pid, t, threads), seq),
        )
    })
    .await;
    if let Some(e) = failure {
        first_failure.get_or_insert(e);
    }
    let end = CpuMark::take(&[server_proc(server)])?;
    let deliveries = probe.deliveries.load(Ordering::Relaxed);
    let seconds = probe.last_delivery_ns().saturating_sub(t1) as f64 / 1e9;
    let (_, precise) = end.total_since(&start);
    let alive = conns.iter().filter(|c| c.is_alive()).count();
    client::close_all(conns);
    client::close_all(admin);
    server.check_alive()?;
    Ok(ScaleRun {
        server: server.kind,
        round,
        requested: sizes.connections,
        connections: n,
        limited_by,
        threads,
        connect_seconds,
        connects_per_s: n as f64 / connect_seconds.max(1e-9),
        baseline_rss_bytes: baseline,
        connected_rss_bytes: connected_rss,
        rss_bytes: rss,
        bytes_per_connection: (rss as f64 - baseline as f64) / n.max(1) as f64,
        broadcast_received,
        broadcast_p50_ms: percentile_ms(&arrivals, 50.0),
        broadcast_p99_ms: percentile_ms(&arrivals, 99.0),
        broadcast_max_ms: arrivals.last().map_or(f64::NAN, |&ns| ns as f64 / 1e6),
        connect_during_broadcast_ms: late_took.as_secs_f64() * 1e3,
        messages: sizes.messages,
        expected_deliveries: expected,
        deliveries,
        lost: expected.saturating_sub(deliveries) + (n as u64).saturating_sub(broadcast_received),
        duplicates: probe.duplicates.load(Ordering::Relaxed),
        deliveries_per_s: deliveries as f64 / seconds.max(1e-9),
        cpu_us_per_delivery: precise * 1e6 / deliveries.max(1) as f64,
        alive,
        first_failure: first_failure.or_else(|| probe.first_failure()),
    })
}
