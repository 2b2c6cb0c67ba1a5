//! The network scenarios: fan-out (on one node, and on two nodes sharing
//! rooms through Redis), request/ack and idle memory.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use crate::client::{self, Conn, NS, Probe};
use crate::codec;
use crate::redis::Redis;
use crate::servers::{Kind, Server, Setup};
use crate::sys;

/// The contract's `send_message` rate limit: at most this many per client
/// and window. Every scenario stays within it on every connection.
pub(crate) const RATE_LIMIT_MAX: usize = 20;

/// Time allowed for one setup request (join).
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);

/// How many handshakes run at once while connecting clients.
pub(crate) const CONNECT_PARALLEL: usize = 64;

/// Sizes of one benchmark invocation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Sizes {
    /// Rounds of A B C per scenario.
    pub(crate) rounds: usize,
    /// Fan-out: receivers in the thread (they also take turns sending; in
    /// the two-node scenario, those on the first node do).
    pub(crate) receivers: usize,
    /// Fan-out: acked `send_message` per run.
    pub(crate) messages: usize,
    /// Fan-out: the in-flight windows to run.
    pub(crate) windows: Vec<usize>,
    /// Request/ack: clients, each in its own thread.
    pub(crate) reqack_clients: usize,
    /// Request/ack: acked sends per client (one in flight per client).
    pub(crate) reqack_per_client: usize,
    /// Idle memory: connection counts to measure at.
    pub(crate) idle_levels: Vec<usize>,
    /// Scale: connections, threads, thread traffic.
    #[serde(default)]
    pub(crate) scale: ScaleSizes,
    /// Codegen: events of the synthetic contract.
    pub(crate) codegen_events: usize,
    /// Codegen: definitions (types) of the synthetic contract.
    pub(crate) codegen_types: usize,
    /// Longest time one measured run may take.
    #[serde(skip)]
    pub(crate) run_timeout: Duration,
}

impl Sizes {
    /// Refuses sizes that would hit the contract's rate limit.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.receivers == 0 || self.reqack_clients == 0 || self.rounds == 0 {
            return Err("receivers, clients and rounds must be at least 1".into());
        }
        for senders in [self.receivers, self.fanout2_senders()] {
            if self.messages.div_ceil(senders) > RATE_LIMIT_MAX {
                return Err(format!(
                    "{} messages over {senders} senders is more than {RATE_LIMIT_MAX} per sender",
                    self.messages
                ));
            }
        }
        if self.reqack_per_client > RATE_LIMIT_MAX {
            return Err(format!(
                "{} sends per client is more than {RATE_LIMIT_MAX}",
                self.reqack_per_client
            ));
        }
        Ok(())
    }

    /// Two-node fan-out: the senders, the receivers on the first node (the
    /// first half, rounded up, as [`client::connect_all`] splits them).
    pub(crate) fn fanout2_senders(&self) -> usize {
        self.receivers.div_ceil(2)
    }
}

/// An HS256 token for `user`, valid for a day.
pub(crate) fn token(secret: &str, user: &str) -> Result<String, String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = serde_json::json!({"sub": user, "iat": now, "exp": now + 86_400});
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| format!("signing a token: {e}"))
}

pub(crate) fn tokens(
    secret: &str,
    prefix: &str,
    range: std::ops::Range<usize>,
) -> Result<Vec<String>, String> {
    range
        .map(|i| token(secret, &format!("{prefix}{i}")))
        .collect()
}

/// Nearest-rank percentile of sorted nanoseconds, in milliseconds.
pub(crate) fn percentile_ms(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1e6
}

pub(crate) fn send_payload(thread: &str, seq: usize) -> String {
    format!("{{\"threadId\":\"{thread}\",\"content\":\"b{seq}\"}}")
}

async fn join(conn: &Conn, thread: &str) -> Result<(), String> {
    let payload = format!("{{\"threadId\":\"{thread}\"}}");
    let (body, _, _) = conn.request("join_thread", &payload, SETUP_TIMEOUT).await?;
    if codec::ack_is_success(&body) {
        Ok(())
    } else {
        Err(format!("join_thread failed: {body}"))
    }
}

/// Waits until `done()` or `limit` passes; returns whether it is done.
pub(crate) async fn wait_for(limit: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        sys::sleep(Duration::from_millis(2)).await;
    }
    true
}

/// A process whose CPU a run counts: its pid and a label for errors.
type Proc<'a> = (u32, &'a str);

/// The one process of a single server.
pub(crate) fn server_proc(server: &Server) -> Proc<'static> {
    (server.pid, server.kind.label())
}

/// CPU seconds of the counted processes (`/proc` stat ticks and schedstat
/// run time, each) and of the generator itself, and the time.
pub(crate) struct CpuMark {
    procs: Vec<(f64, Option<f64>)>,
    generator: f64,
    at: Instant,
}

impl CpuMark {
    pub(crate) fn take(procs: &[Proc<'_>]) -> Result<Self, String> {
        let procs = procs
            .iter()
            .map(|&(pid, label)| {
                let stat = sys::cpu_seconds(pid).map_err(|e| format!("{label} cpu: {e}"))?;
                Ok((stat, sys::run_time_seconds(pid)))
            })
            .collect::<Result<_, String>>()?;
        Ok(Self {
            procs,
            generator: sys::self_cpu_seconds(),
            at: Instant::now(),
        })
    }

    /// Each process's CPU seconds since `start`: (stat, the figure per-item
    /// costs use: schedstat where there is one).
    fn since(&self, start: &CpuMark) -> Vec<(f64, f64)> {
        self.procs
            .iter()
            .zip(&start.procs)
            .map(|(&(stat1, run1), &(stat0, run0))| {
                let stat = stat1 - stat0;
                let precise = match (run0, run1) {
                    (Some(a), Some(b)) if b >= a => b - a,
                    _ => stat,
                };
                (stat, precise)
            })
            .collect()
    }

    /// All processes' CPU seconds since `start`: (stat, precise).
    pub(crate) fn total_since(&self, start: &CpuMark) -> (f64, f64) {
        self.since(start)
            .into_iter()
            .fold((0.0, 0.0), |(s, p), (stat, precise)| {
                (s + stat, p + precise)
            })
    }
}

/// One fan-out run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FanoutRun {
    /// Which server.
    pub(crate) server: Kind,
    /// Round number (from 1).
    pub(crate) round: usize,
    /// Sends in flight.
    pub(crate) window: usize,
    /// Receivers in the thread.
    pub(crate) receivers: usize,
    /// Acked sends.
    pub(crate) messages: usize,
    /// `new_message` received by the receivers.
    pub(crate) deliveries: u64,
    /// Expected deliveries minus received ones.
    pub(crate) lost: u64,
    /// Deliveries received twice.
    pub(crate) duplicates: u64,
    /// Acks that were not `success: true`.
    pub(crate) ack_failures: u64,
    /// The first failed ack or error, if any.
    pub(crate) first_failure: Option<String>,
    /// From the first send to the last delivery or ack.
    pub(crate) seconds: f64,
    /// Deliveries per second.
    pub(crate) deliveries_per_s: f64,
    /// Send-to-receive latency, median (ms).
    pub(crate) p50_ms: f64,
    /// Send-to-receive latency, 99th percentile (ms).
    pub(crate) p99_ms: f64,
    /// Send-to-ack latency, median (ms).
    pub(crate) ack_p50_ms: f64,
    /// Send-to-ack latency, 99th percentile (ms).
    pub(crate) ack_p99_ms: f64,
    /// Server CPU seconds during the run (utime+stime of `/proc/<pid>/stat`;
    /// two-node scenario: of every node and redis-server together).
    pub(crate) server_cpu_s: f64,
    /// The same from schedstat run time (ns resolution; = `server_cpu_s` without schedstat).
    pub(crate) server_cpu_precise_s: f64,
    /// Server CPU microseconds per delivery (from `server_cpu_precise_s`).
    pub(crate) cpu_us_per_delivery: f64,
    /// Server CPU use over the run (1.0 = one core busy).
    pub(crate) server_cpu_share: f64,
    /// Load-generator CPU use over the run (1.0 = one core busy).
    pub(crate) generator_cpu_share: f64,
}

/// Where a fan-out run connects, who sends, and whose CPU it counts.
struct Fleet<'a> {
    /// The server program of every node.
    kind: Kind,
    /// The nodes: the receivers are split evenly over them, in order.
    nodes: &'a [SocketAddr],
    /// Receivers `0..senders` take turns sending.
    senders: usize,
    /// Processes whose CPU counts.
    procs: &'a [Proc<'a>],
    /// The thread (room) every receiver joins.
    thread: &'a str,
}

/// Fan-out: `receivers` clients join one thread; `messages` acked
/// `send_message` with `window` in flight, sent in turn by the receivers
/// (message `i` by receiver `i % receivers`, so no connection exceeds the
/// contract's rate limit and the room holds exactly the receivers); every
/// message reaches every receiver, its sender included.
pub(crate) async fn fanout(
    server: &mut Server,
    secret: &str,
    sizes: &Sizes,
    window: usize,
    round: usize,
) -> Result<FanoutRun, String> {
    let fleet = Fleet {
        kind: server.kind,
        nodes: &[server.addr],
        senders: sizes.receivers,
        procs: &[server_proc(server)],
        thread: &format!("fan-{round}-{window}-{}", server.pid),
    };
    let (run, _) = fanout_on(&fleet, secret, sizes, window, round).await?;
    server.check_alive()?;
    Ok(run)
}

/// One run of the two-node fan-out scenario.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Fanout2Run {
    /// Which configuration.
    pub(crate) setup: Setup,
    /// Server processes.
    pub(crate) nodes: usize,
    /// Senders (the receivers on the first node).
    pub(crate) senders: usize,
    /// CPU seconds (schedstat) of the server processes alone.
    pub(crate) nodes_cpu_s: f64,
    /// CPU seconds (schedstat) of redis-server (0 where the nodes do not use it).
    pub(crate) redis_cpu_s: f64,
    /// The fan-out figures; its server CPU counts every node and redis-server.
    #[serde(flatten)]
    pub(crate) run: FanoutRun,
}

/// Two-node fan-out: the fan-out flow with the receivers split evenly over
/// `nodes` (in order) and the receivers on the first node taking turns
/// sending, so half the deliveries (with two nodes) cross Redis. The
/// one-node configuration runs the same senders with every receiver on its
/// one node. CPU counts every node, and `redis` where the setup uses it.
pub(crate) async fn fanout2(
    setup: Setup,
    nodes: &mut [Server],
    redis: &mut Redis,
    secret: &str,
    sizes: &Sizes,
    window: usize,
    round: usize,
) -> Result<Fanout2Run, String> {
    let first = nodes.first().ok_or("no node")?;
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.addr).collect();
    let mut procs: Vec<Proc<'_>> = nodes.iter().map(server_proc).collect();
    if setup.uses_redis() {
        procs.push((redis.pid, "redis-server"));
    }
    let fleet = Fleet {
        kind: first.kind,
        nodes: &addrs,
        senders: sizes.fanout2_senders(),
        procs: &procs,
        thread: &format!("fan2-{round}-{window}-{}", first.pid),
    };
    let (run, cpu) = fanout_on(&fleet, secret, sizes, window, round).await?;
    for node in nodes.iter_mut() {
        node.check_alive()?;
    }
    redis.check_alive()?;
    // (A float sum of nothing is -0.0: start from 0.0.)
    let (node_cpu, redis_cpu) = cpu.split_at(nodes.len());
    let sum = |s: &[f64]| s.iter().fold(0.0, |a, b| a + b);
    Ok(Fanout2Run {
        setup,
        nodes: nodes.len(),
        senders: fleet.senders,
        nodes_cpu_s: sum(node_cpu),
        redis_cpu_s: sum(redis_cpu),
        run,
    })
}

/// The fan-out flow on `fleet`: returns the run and each counted process's
/// CPU seconds (schedstat where there is one).
async fn fanout_on(
    fleet: &Fleet<'_>,
    secret: &str,
    sizes: &Sizes,
    window: usize,
    round: usize,
) -> Result<(FanoutRun, Vec<f64>), String> {
    let (r, n) = (sizes.receivers, sizes.messages);
    let senders = fleet.senders.clamp(1, r);
    let thread = fleet.thread;
    let probe = Probe::new(r, n, window);
    // Users of their own per run: rate limits count per user across
    // connections and reconnects, so two windows of one round must not
    // share a user's budget.
    let tokens = tokens(secret, &format!("{thread}-u"), 0..r)?;
    let conns = client::connect_all(fleet.nodes, &tokens, &probe, CONNECT_PARALLEL, 0).await?;
    for conn in &conns {
        join(conn, thread).await?;
    }
    // Join i is announced to the i members present: wait for all of them.
    let joined = (r * (r + 1) / 2) as u64;
    wait_for(Duration::from_secs(10), || {
        probe.other_events.load(Ordering::Relaxed) >= joined
    })
    .await;
    sys::sleep(Duration::from_millis(200)).await;

    let start = CpuMark::take(fleet.procs)?;
    let t0 = probe.now_ns();
    let deadline = tokio::time::Instant::now() + sizes.run_timeout;
    let expected = (n * r) as u64;
    let error = send_acked(&probe, &conns, n, expected, deadline, |seq| {
        (seq % senders, send_payload(thread, seq))
    })
    .await;
    let end = CpuMark::take(fleet.procs)?;
    let wall = end.at.duration_since(start.at).as_secs_f64();
    client::close_all(conns);

    let deliveries = probe.deliveries.load(Ordering::Relaxed);
    let acks = probe.acks_ok.load(Ordering::Relaxed);
    let ack_failures = probe.acks_failed.load(Ordering::Relaxed) + (n as u64).saturating_sub(acks);
    let seconds =
        (probe.last_delivery_ns().max(probe.last_ack_ns())).saturating_sub(t0) as f64 / 1e9;
    let (mut lat, mut ack_lat) = probe.take_latencies();
    lat.sort_unstable();
    ack_lat.sort_unstable();
    let (server_cpu_s, precise) = end.total_since(&start);
    let per_proc = end.since(&start).into_iter().map(|(_, p)| p).collect();
    let run = FanoutRun {
        server: fleet.kind,
        round,
        window,
        receivers: r,
        messages: n,
        deliveries,
        lost: expected.saturating_sub(deliveries),
        duplicates: probe.duplicates.load(Ordering::Relaxed),
        ack_failures,
        first_failure: error.or_else(|| probe.first_failure()),
        seconds,
        deliveries_per_s: deliveries as f64 / seconds.max(1e-9),
        p50_ms: percentile_ms(&lat, 50.0),
        p99_ms: percentile_ms(&lat, 99.0),
        ack_p50_ms: percentile_ms(&ack_lat, 50.0),
        ack_p99_ms: percentile_ms(&ack_lat, 99.0),
        server_cpu_s,
        server_cpu_precise_s: precise,
        cpu_us_per_delivery: precise * 1e6 / (deliveries.max(1) as f64),
        server_cpu_share: precise / wall.max(1e-9),
        generator_cpu_share: (end.generator - start.generator) / wall.max(1e-9),
    };
    Ok((run, per_proc))
}

/// Sends `n` acked `send_message`s, message `seq` on connection and with the
/// payload `message(seq)` names, never more in flight than the probe's
/// window; then waits until every ack and `expected` deliveries arrived or
/// `deadline` passed. Returns the first sending error, if any.
pub(crate) async fn send_acked(
    probe: &Probe,
    conns: &[Conn],
    n: usize,
    expected: u64,
    deadline: tokio::time::Instant,
    mut message: impl FnMut(usize) -> (usize, String),
) -> Option<String> {
    let mut error = None;
    for seq in 0..n {
        match tokio::time::timeout_at(deadline, probe.window.acquire()).await {
            Ok(Ok(permit)) => permit.forget(),
            _ => {
                error = Some(format!("timed out after {seq} sends waiting for acks"));
                break;
            }
        }
        let (conn, payload) = message(seq);
        let id = probe.mark_sent(seq);
        let packet = codec::event_packet(NS, id, "send_message", &payload);
        if let Err(e) = conns[conn].send(packet).await {
            error = Some(e);
            break;
        }
    }
    wait_for(
        deadline.saturating_duration_since(tokio::time::Instant::now()),
        || {
            probe.acks_ok.load(Ordering::Relaxed) + probe.acks_failed.load(Ordering::Relaxed)
                >= n as u64
                && probe.deliveries.load(Ordering::Relaxed) >= expected
        },
    )
    .await;
    error
}

/// One request/ack run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ReqAckRun {
    /// Which server.
    pub(crate) server: Kind,
    /// Round number (from 1).
    pub(crate) round: usize,
    /// Clients, each in its own thread.
    pub(crate) clients: usize,
    /// Acked sends per client.
    pub(crate) per_client: usize,
    /// Successful acks.
    pub(crate) acks: u64,
    /// Failed or missing acks.
    pub(crate) ack_failures: u64,
    /// `new_message` echoes not received (each sender is its thread's only member).
    pub(crate) lost: u64,
    /// The first failed ack or error, if any.
    pub(crate) first_failure: Option<String>,
    /// From the first send to the last ack.
    pub(crate) seconds: f64,
    /// Acks per second.
    pub(crate) acks_per_s: f64,
    /// Send-to-ack latency, median (ms).
    pub(crate) p50_ms: f64,
    /// Send-to-ack latency, 99th percentile (ms).
    pub(crate) p99_ms: f64,
    /// Server CPU seconds during the burst (utime+stime of `/proc/<pid>/stat`).
    pub(crate) server_cpu_s: f64,
    /// The same from schedstat run time (ns resolution; = `server_cpu_s` without schedstat).
    pub(crate) server_cpu_precise_s: f64,
    /// Server CPU microseconds per ack (from `server_cpu_precise_s`).
    pub(crate) cpu_us_per_ack: f64,
    /// Load-generator CPU use over the burst (1.0 = one core busy).
    pub(crate) generator_cpu_share: f64,
}

/// Request/ack: `clients` clients each join their own thread, then all send
/// their `per_client` acked `send_message` at once, one in flight per client
/// (the burst stays within the contract's 20 per 10 s per client).
pub(crate) async fn reqack(
    server: &mut Server,
    secret: &str,
    sizes: &Sizes,
    round: usize,
) -> Result<ReqAckRun, String> {
    let (c, k) = (sizes.reqack_clients, sizes.reqack_per_client);
    let total = c * k;
    let probe = Probe::new(c, total, 0);
    // Users of their own per run (rate limits count per user).
    let tokens = tokens(secret, &format!("ra-{round}-{}-u", server.pid), 0..c)?;
    let conns = client::connect_all(&[server.addr], &tokens, &probe, CONNECT_PARALLEL, 0).await?;
    let threads: Vec<String> = (0..c)
        .map(|i| format!("ra-{round}-{}-{i}", server.pid))
        .collect();
    for (conn, thread) in conns.iter().zip(&threads) {
        join(conn, thread).await?;
    }
    sys::sleep(Duration::from_millis(200)).await;

    let procs = [server_proc(server)];
    let start = CpuMark::take(&procs)?;
    let t0 = probe.now_ns();
    let timeout = sizes.run_timeout;
    let bursts = conns
        .iter()
        .zip(&threads)
        .enumerate()
        .map(|(i, (conn, thread))| {
            let probe = &probe;
            async move {
                for j in 0..k {
                    let seq = i * k + j;
                    probe.mark_sent(seq);
                    let (body, sent, at) = conn
                        .request("send_message", &send_payload(thread, seq), timeout)
                        .await?;
                    probe.record_ack(&body, probe.now_ns());
                    probe.push_ack_latency(
                        u64::try_from(at.duration_since(sent).as_nanos()).unwrap_or(u64::MAX),
                    );
                }
                Ok::<(), String>(())
            }
        });
    let results = futures_util::future::join_all(bursts).await;
    let acked_at = probe.last_ack_ns();
    wait_for(Duration::from_secs(5), || {
        probe.deliveries.load(Ordering::Relaxed) >= total as u64
    })
    .await;
    let end = CpuMark::take(&procs)?;
    let wall = end.at.duration_since(start.at).as_secs_f64();
    client::close_all(conns);
    server.check_alive()?;

    let error = results.into_iter().find_map(Result::err);
    let acks = probe.acks_ok.load(Ordering::Relaxed);
    let seconds = acked_at.saturating_sub(t0) as f64 / 1e9;
    let (_, mut lat) = probe.take_latencies();
    lat.sort_unstable();
    let (server_cpu_s, precise) = end.total_since(&start);
    Ok(ReqAckRun {
        server: server.kind,
        round,
        clients: c,
        per_client: k,
        acks,
        ack_failures: (total as u64).saturating_sub(acks),
        lost: (total as u64).saturating_sub(probe.deliveries.load(Ordering::Relaxed)),
        first_failure: error.or_else(|| probe.first_failure()),
        seconds,
        acks_per_s: acks as f64 / seconds.max(1e-9),
        p50_ms: percentile_ms(&lat, 50.0),
        p99_ms: percentile_ms(&lat, 99.0),
        server_cpu_s,
        server_cpu_precise_s: precise,
        cpu_us_per_ack: precise * 1e6 / (acks.max(1) as f64),
        generator_cpu_share: (end.generator - start.generator) / wall.max(1e-9),
    })
}

/// Resident memory at one connection count.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IdleLevel {
    /// Connected, authenticated clients.
    pub(crate) connections: usize,
    /// Of them, still connected when measured.
    pub(crate) alive: usize,
    /// Server RSS (bytes).
    pub(crate) rss_bytes: u64,
    /// (RSS - RSS with no client) / connections, bytes.
    pub(crate) bytes_per_connection: f64,
    /// Seconds it took to connect the clients added at this level (from
    /// the previous level), handshake and namespace connect included.
    #[serde(default)]
    pub(crate) connect_seconds: f64,
    /// Clients added at this level.
    #[serde(default)]
    pub(crate) added: usize,
}

/// One idle-memory run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IdleRun {
    /// Which server.
    pub(crate) server: Kind,
    /// Round number (from 1).
    pub(crate) round: usize,
    /// RSS of the fresh server before any client (bytes).
    pub(crate) baseline_rss_bytes: u64,
    /// One entry per level.
    pub(crate) levels: Vec<IdleLevel>,
    /// How long connecting and measuring took.
    pub(crate) seconds: f64,
}

/// RSS once it settles: sampled every 250 ms until two samples are within
/// 0.5% (at most 5 s).
pub(crate) async fn settled_rss(server: &Server) -> Result<u64, String> {
    sys::sleep(Duration::from_millis(500)).await;
    let mut last = server.rss_bytes()?;
    for _ in 0..20 {
        sys::sleep(Duration::from_millis(250)).await;
        let now = server.rss_bytes()?;
        if now.abs_diff(last) * 200 <= last {
            return Ok(now);
        }
        last = now;
    }
    Ok(last)
}

/// Idle memory: a fresh server, then `levels` connected, authenticated,
/// idle clients (no room joined); RSS at each level.
pub(crate) async fn idle(
    server: &mut Server,
    secret: &str,
    sizes: &Sizes,
    round: usize,
) -> Result<IdleRun, String> {
    let baseline = settled_rss(server).await?;
    // Fresh source addresses: the previous round's ports sit in TIME_WAIT
    // for a minute, and three servers' rounds of 10,000 clients would run
    // out of one address's ephemeral ports.
    client::fresh_sources(sizes.idle_levels.iter().copied().max().unwrap_or(0));
    let probe = Probe::idle();
    let mut conns: Vec<Conn> = Vec::new();
    let mut levels = Vec::new();
    let started = Instant::now();
    let deadline = started + sizes.run_timeout;
    for &level in &sizes.idle_levels {
        let have = conns.len();
        let connecting = Instant::now();
        if level > have {
            let tokens = tokens(secret, "idle", have..level)?;
            for chunk in tokens.chunks(1000) {
                if Instant::now() > deadline {
                    client::close_all(conns);
                    return Err(format!("connecting {level} clients took too long"));
                }
                let first = conns.len();
                let more =
                    client::connect_all(&[server.addr], chunk, &probe, CONNECT_PARALLEL, first)
                        .await;
                match more {
                    Ok(more) => conns.extend(more),
                    Err(e) => {
                        let n = conns.len();
                        client::close_all(conns);
                        return Err(format!("after {n} connections: {e}"));
                    }
                }
            }
        }
        let connect_seconds = connecting.elapsed().as_secs_f64();
        let rss = settled_rss(server).await?;
        levels.push(IdleLevel {
            connections: level,
            alive: conns.iter().filter(|c| c.is_alive()).count(),
            rss_bytes: rss,
            bytes_per_connection: (rss as f64 - baseline as f64) / level.max(1) as f64,
            connect_seconds,
            added: level.saturating_sub(have),
        });
    }
    let seconds = started.elapsed().as_secs_f64();
    client::close_all(conns);
    server.check_alive()?;
    Ok(IdleRun {
        server: server.kind,
        round,
        baseline_rss_bytes: baseline,
        levels,
        seconds,
    })
}

/// Sizes of the scale scenario.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub(crate) struct ScaleSizes {
    /// Connections asked for.
    pub(crate) connections: usize,
    /// Threads they are spread over (client `i` joins thread `i % threads`).
    pub(crate) threads: usize,
    /// Acked `send_message` spread over the threads.
    pub(crate) messages: usize,
    /// Of them in flight at a time.
    pub(crate) window: usize,
}
