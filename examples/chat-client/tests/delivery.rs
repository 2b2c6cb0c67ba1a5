//! Delivery across nodes: `chat-server` nodes sharing a real redis-server
//! (each test starts its own), threads keeping their history in Redis
//! Streams. A receiver whose node dies (SIGKILL) comes back on another
//! node and has every message of its thread, in order, once.

use std::time::Duration;

use chat_contract::SendMessage;
use chat_contract::chat::client::ChatClient;
use chat_contract::runtime::client::{ClientOptions, ConnectionState, ServerEvent, broadcast};
use chat_contract::runtime::wire::{Offset, RECOVERY_EVENT, RoomPosition};

mod support;
use support::{Redis, Server, Spec, join, token_signed_with, wait_for, within};

const SECRET: &str = "chat-client-delivery-secret";
const WAIT: Duration = Duration::from_secs(15);

fn options(urls: &[String], token: String) -> ClientOptions {
    ClientOptions::new(urls[0].clone())
        .fallback_urls(urls[1..].to_vec())
        .token(token)
        .connect_timeout(WAIT)
        .ack_timeout(WAIT)
        .gap_wait(Duration::from_millis(300))
        .retry_for(RETRY_FOR)
        .reconnection_delay(Duration::from_millis(50))
        .reconnection_delay_max(Duration::from_millis(300))
}

async fn client(urls: &[String], user: &str) -> ChatClient {
    let token = token_signed_with(user, SECRET).await;
    within(WAIT, "connect", ChatClient::connect(options(urls, token)))
        .await
        .unwrap_or_else(|e| panic!("{user} cannot connect: {e}"))
}

/// How long the clients retry an idempotent send (`retry_for`).
const RETRY_FOR: Duration = Duration::from_secs(30);

/// A send: the client retries it for `RETRY_FOR` and then gives up
/// itself (`Err`); the test's own bound only catches a send that hangs.
async fn send(sender: &ChatClient, thread: &str, content: &str) -> Result<(), String> {
    within(
        RETRY_FOR + WAIT,
        "send_message",
        sender.send_message(SendMessage {
            thread_id: thread.try_into().unwrap(),
            content: content.try_into().unwrap(),
        }),
    )
    .await
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// What a receiver saw of its threads: per thread, the messages' contents
/// with their offsets, and the positions that say events are gone.
#[derive(Debug, Default, Clone)]
struct Seen {
    messages: Vec<(String, u64)>,
    gaps: Vec<RoomPosition>,
    positions: Vec<RoomPosition>,
}

fn note(seen: &mut std::collections::BTreeMap<String, Seen>, event: &ServerEvent) {
    if event.name == "new_message" {
        let offset: Offset = event
            .extra
            .last()
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_else(|| panic!("an offset: the generated client asks for them: {event:?}"));
        let content = event.payload["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        seen.entry(offset.room)
            .or_default()
            .messages
            .push((content, offset.offset));
    } else if event.name == RECOVERY_EVENT {
        let position: RoomPosition =
            serde_json::from_value(event.payload.clone()).expect("a RoomPosition");
        let entry = seen.entry(position.room.clone()).or_default();
        if !position.recovered {
            entry.gaps.push(position.clone());
        }
        entry.positions.push(position);
    }
}

async fn collect_until(
    events: &mut broadcast::Receiver<ServerEvent>,
    seen: &mut std::collections::BTreeMap<String, Seen>,
    done: impl Fn(&std::collections::BTreeMap<String, Seen>) -> bool,
) {
    within(WAIT, "events", async {
        while !done(seen) {
            let event = events.recv().await.expect("no lost event");
            note(seen, &event);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_whose_node_is_killed_gets_every_message_from_another_node() {
    let redis = Redis::start().await;
    let spec = Spec::new(SECRET).env("REDIS_URL", &redis.url);
    let (a, b) = (Server::start(&spec).await, Server::start(&spec).await);
    let receiver = client(&[a.url(), b.url()], "receiver").await;
    let mut events = receiver.raw().subscribe();
    join(&receiver, "failover", WAIT).await;
    // send_message allows 20 per 10 s per user: 6 senders for 110.
    let mut senders = Vec::new();
    for i in 0..6 {
        let sender = client(&[b.url()], &format!("sender-{i}")).await;
        join(&sender, "failover", WAIT).await;
        senders.push(sender);
    }
    let mut seen = Default::default();
    for i in 0..10 {
        send(&senders[i % 6], "failover", &format!("m{i}"))
            .await
            .expect("sent");
    }
    collect_until(&mut events, &mut seen, |s| {
        s.get("thread:failover")
            .is_some_and(|t| t.messages.len() >= 10)
    })
    .await;

    let mut state = receiver.raw().state();
    a.kill().await;
    wait_for(&mut state, "the loss of node A", WAIT, |s| {
        *s != ConnectionState::Connected
    })
    .await;
    for i in 10..110 {
        send(&senders[i % 6], "failover", &format!("m{i}"))
            .await
            .expect("sent");
    }
    collect_until(&mut events, &mut seen, |s| {
        s.get("thread:failover")
            .is_some_and(|t| t.messages.len() >= 110)
    })
    .await;
    assert_eq!(receiver.raw().current_url(), Some(b.url().as_str()));
    let thread = &seen["thread:failover"];
    let contents: Vec<&str> = thread.messages.iter().map(|(c, _)| c.as_str()).collect();
    let expected: Vec<String> = (0..110).map(|i| format!("m{i}")).collect();
    assert_eq!(contents, expected, "every message, in order, once");
    let offsets: Vec<u64> = thread.messages.iter().map(|m| m.1).collect();
    assert!(
        offsets.windows(2).all(|w| w[1] == w[0] + 1),
        "contiguous offsets: {offsets:?}"
    );
    assert!(
        thread.gaps.is_empty(),
        "nothing reported gone: {:?}",
        thread.gaps
    );
    let resumed = thread.positions.last().expect("the resume's position");
    assert!(resumed.recovered && resumed.replayed > 0, "{resumed:?}");
    // And nothing more comes (no duplicate after the replay).
    tokio::time::sleep(Duration::from_millis(500)).await;
    while let Ok(event) = events.try_recv() {
        assert_ne!(event.name, "new_message", "a message came twice: {event:?}");
    }
}

/// A small deterministic generator (the seed is printed, to replay a run).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What one receiver saw, with the gaps it was told of as ranges of
/// offsets: (its last offset when told, the offset the notice names].
#[derive(Debug, Default)]
struct Story {
    /// Thread room → (content, offset) of its messages, in arrival order.
    messages: std::collections::BTreeMap<String, Vec<(String, u64)>>,
    /// Thread room → the offsets of every event of it (presence too), in
    /// arrival order.
    offsets: std::collections::BTreeMap<String, Vec<u64>>,
    /// Thread room → where the receiver started (its join's position).
    base: std::collections::BTreeMap<String, u64>,
    /// Thread room → offsets told gone.
    told: std::collections::BTreeMap<String, Vec<(u64, u64)>>,
}

impl Story {
    fn note(&mut self, event: &ServerEvent) {
        if event.name == RECOVERY_EVENT {
            let Ok(position) = serde_json::from_value::<RoomPosition>(event.payload.clone()) else {
                panic!("a bad position: {event:?}");
            };
            if !position.recovered {
                let last = self
                    .offsets
                    .get(&position.room)
                    .and_then(|m| m.last().copied())
                    .unwrap_or(0);
                self.told
                    .entry(position.room.clone())
                    .or_default()
                    .push((last, position.offset));
            }
            self.base.entry(position.room).or_insert(position.offset);
            return;
        }
        let Some(offset) = event
            .extra
            .last()
            .and_then(|v| serde_json::from_value::<Offset>(v.clone()).ok())
        else {
            return;
        };
        self.offsets
            .entry(offset.room.clone())
            .or_default()
            .push(offset.offset);
        if event.name == "new_message" {
            let content = event.payload["message"]["content"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            self.messages
                .entry(offset.room)
                .or_default()
                .push((content, offset.offset));
        }
    }
}

/// The chaos run: three nodes, 50 receivers (each in two of five threads,
/// each reaching the nodes through relays the test cuts at random) and 10
/// senders for 60 s; one node is killed and started again, Redis is
/// stopped (SIGSTOP) for 5 s. At the end every receiver has, per thread,
/// every acked message once and in offset order, or was told of exactly
/// the offsets it is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_every_acked_message_arrives_once_in_order_or_its_gap_is_told() {
    use std::sync::{Arc, Mutex};
    const RECEIVERS: usize = 50;
    const SENDERS: usize = 10;
    const THREADS: u64 = 5;
    let run = Duration::from_secs(
        std::env::var("CHAOS_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
    );
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    eprintln!("chaos seed {seed}, {run:?}");
    let rng = Arc::new(Mutex::new(Rng(seed)));
    let pick = |n: u64| rng.lock().unwrap().below(n);

    let redis = Redis::start().await;
    let spec = Spec::new(SECRET)
        .env("REDIS_URL", &redis.url)
        .env("REDIS_STALL_TIMEOUT_MS", "50");
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(Some(Server::start(&spec).await));
    }
    let ports: Vec<u16> = nodes.iter().flatten().map(|n| n.port).collect();
    let url = |port: u16| format!("http://127.0.0.1:{port}");

    // Receivers, each through its own relay to every node.
    let mut receivers = Vec::new();
    for r in 0..RECEIVERS {
        let mut relays = Vec::new();
        for k in 0..3 {
            relays.push(support::CutProxy::start(ports[(r + k) % 3]).await);
        }
        let urls: Vec<String> = relays.iter().map(|p| url(p.port)).collect();
        let client = client(&urls, &format!("receiver-{r}")).await;
        let story = Arc::new(Mutex::new(Story::default()));
        let mut events = client.raw().subscribe();
        let noted = story.clone();
        let listener = tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(event) => noted.lock().unwrap().note(&event),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        panic!("the test's receiver lagged by {n} events")
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        let first = pick(THREADS);
        let threads = [first, (first + 1 + pick(THREADS - 1)) % THREADS];
        for t in threads {
            join(&client, &format!("t{t}"), WAIT).await;
        }
        receivers.push((client, relays, story, threads, listener));
    }

    // Senders straight to the nodes; every acked message is noted.
    let acked = Arc::new(Mutex::new(Vec::<(u64, String)>::new()));
    // Refused sends, by what the client said.
    let refused = Arc::new(Mutex::new(std::collections::BTreeMap::<String, u64>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut sender_tasks = Vec::new();
    let origin = tokio::time::Instant::now();
    // The slowest send, and when it ended.
    let slowest = Arc::new(Mutex::new((Duration::ZERO, Duration::ZERO)));
    for s in 0..SENDERS {
        let urls: Vec<String> = (0..3).map(|k| url(ports[(s + k) % 3])).collect();
        let sender = client(&urls, &format!("sender-{s}")).await;
        for t in 0..THREADS {
            join(&sender, &format!("t{t}"), WAIT).await;
        }
        let (acked, refused, stop, slowest) = (
            acked.clone(),
            refused.clone(),
            stop.clone(),
            slowest.clone(),
        );
        let mut rng = Rng(seed ^ (s as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        sender_tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let thread = rng.below(THREADS);
                let content = format!("s{s}-{n}");
                n += 1;
                // send_message allows 20 per 10 s per user.
                tokio::time::sleep(Duration::from_millis(520)).await;
                let began = tokio::time::Instant::now();
                let sent = send(&sender, &format!("t{thread}"), &content).await;
                let took = began.elapsed();
                let mut slowest = slowest.lock().unwrap();
                if took > slowest.0 {
                    *slowest = (took, origin.elapsed());
                }
                drop(slowest);
                match sent {
                    Ok(()) => acked.lock().unwrap().push((thread, content)),
                    Err(why) => {
                        *refused.lock().unwrap().entry(why).or_default() += 1;
                    }
                }
            }
        }));
    }

    // Chaos.
    let started = tokio::time::Instant::now();
    let (kill_at, restart_at, redis_at) = (run * 25 / 100, run * 45 / 100, run * 65 / 100);
    let (mut killed, mut restarted, mut redis_stopped) = (false, false, false);
    let mut cuts = 0;
    while started.elapsed() < run {
        let at = started.elapsed();
        if !killed && at >= kill_at {
            let victim = nodes[2].take().expect("node 3");
            victim.kill().await;
            killed = true;
            eprintln!("chaos: node 3 killed at {at:?}");
        }
        if killed && !restarted && at >= restart_at {
            nodes[2] = Some(
                Server::start_on(ports[2], &spec)
                    .await
                    .expect("node 3 starts again on its port"),
            );
            restarted = true;
            eprintln!("chaos: node 3 restarted at {:?}", started.elapsed());
        }
        if !redis_stopped && at >= redis_at {
            redis.pause();
            eprintln!("chaos: Redis stopped at {at:?}");
            tokio::time::sleep(Duration::from_secs(5)).await;
            redis.resume();
            redis_stopped = true;
            eprintln!("chaos: Redis back at {:?}", started.elapsed());
        }
        let victim = pick(RECEIVERS as u64) as usize;
        let down_for = Duration::from_millis(100 + pick(1400));
        for relay in &receivers[victim].1 {
            relay.down();
        }
        cuts += 1;
        tokio::time::sleep(down_for.min(Duration::from_millis(300))).await;
        let relays: Vec<_> = receivers[victim].1.iter().map(|r| r.up_handle()).collect();
        tokio::spawn(async move {
            tokio::time::sleep(down_for.saturating_sub(Duration::from_millis(300))).await;
            for up in relays {
                up.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        });
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for task in sender_tasks {
        within(RETRY_FOR + WAIT * 2, "a sender stops", task)
            .await
            .expect("sender task");
    }
    for (_, relays, ..) in &receivers {
        for relay in relays {
            relay.up();
        }
    }

    // Every receiver connected, and sure of its tail.
    for (client, ..) in &receivers {
        let mut state = client.raw().state();
        wait_for(&mut state, "a receiver reconnects", WAIT, |s| {
            *s == ConnectionState::Connected
        })
        .await;
        within(WAIT, "sync_rooms", client.raw().sync_rooms())
            .await
            .expect("sync_rooms");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    let acked = acked.lock().unwrap().clone();
    let refused = refused.lock().unwrap().clone();
    let refused_total: u64 = refused.values().sum();
    let mut told_total = 0;
    let mut delivered_total = 0;
    for (r, (_, _, story, threads, _)) in receivers.iter().enumerate() {
        let story = story.lock().unwrap();
        for t in threads {
            let room = format!("thread:t{t}");
            let messages = story.messages.get(&room).cloned().unwrap_or_default();
            let told = story.told.get(&room).cloned().unwrap_or_default();
            told_total += told.len();
            delivered_total += messages.len();
            // In offset order, each once.
            let offsets = story.offsets.get(&room).cloned().unwrap_or_default();
            assert!(
                offsets.windows(2).all(|w| w[1] > w[0]),
                "receiver {r}, {room}: offsets out of order or twice: {offsets:?}"
            );
            let mut contents: Vec<&str> = messages.iter().map(|m| m.0.as_str()).collect();
            contents.sort_unstable();
            let len = contents.len();
            contents.dedup();
            assert_eq!(contents.len(), len, "receiver {r}, {room}: a message twice");
            // Every offset after its start not received was told gone.
            let covered = |o: u64| told.iter().any(|&(from, to)| o > from && o <= to);
            let base = story.base.get(&room).copied().unwrap_or(0);
            let mut expect = offsets.first().map_or(base, |&o| base.min(o - 1)) + 1;
            for &o in &offsets {
                for missing in expect..o {
                    assert!(
                        covered(missing),
                        "receiver {r}, {room}: offset {missing} missing and never told (told {told:?})"
                    );
                }
                expect = o + 1;
            }
            // Every acked message of the thread arrived, or a gap was told.
            let have: std::collections::BTreeSet<&str> =
                messages.iter().map(|m| m.0.as_str()).collect();
            let missing: Vec<&String> = acked
                .iter()
                .filter(|(thread, content)| thread == t && !have.contains(content.as_str()))
                .map(|(_, c)| c)
                .collect();
            assert!(
                missing.is_empty() || !told.is_empty(),
                "receiver {r}, {room}: acked messages missing with no gap told: {missing:?}"
            );
        }
    }
    let (took, ended) = *slowest.lock().unwrap();
    eprintln!(
        "chaos: {} acked, {refused_total} refused {refused:?}, {cuts} cuts, {delivered_total} deliveries, {told_total} gaps told; \
         slowest send {took:?}, ended {ended:?} after the senders started",
        acked.len()
    );
    assert!(
        acked.len() > 100,
        "the senders got through: {}",
        acked.len()
    );
    drop(nodes);
}

/// A send whose ack is lost: the sender's connection drops the answer
/// (the message reached the thread), then is cut; the client sends it
/// again with the same idempotency key after reconnecting (to the same
/// node, or with `two_nodes` to the other one, through Redis), the
/// handler does not run again, and the retry gets the first answer.
async fn a_retried_send_runs_once(two_nodes: bool) {
    let redis = Redis::start().await;
    let mut spec = Spec::new(SECRET);
    if two_nodes {
        spec = spec.env("REDIS_URL", &redis.url);
    }
    let a = Server::start(&spec).await;
    let b = if two_nodes {
        Some(Server::start(&spec).await)
    } else {
        None
    };
    let proxy = support::CutProxy::start(a.port).await;
    let mut urls = vec![format!("http://127.0.0.1:{}", proxy.port)];
    urls.extend(b.iter().map(Server::url));
    let sender = client(&urls, "retrier").await;
    join(&sender, "retry", WAIT).await;
    let receiver = client(&[b.as_ref().unwrap_or(&a).url()], "witness").await;
    let mut events = receiver.raw().subscribe();
    join(&receiver, "retry", WAIT).await;

    proxy.mute();
    let send = tokio::spawn(async move {
        let answer = sender
            .send_message(SendMessage {
                thread_id: "retry".try_into().unwrap(),
                content: "once".try_into().unwrap(),
            })
            .await;
        (answer, sender)
    });
    // The handler ran: the thread has the message.
    let delivered = within(WAIT, "the message", async {
        loop {
            let event = events.recv().await.expect("events");
            if event.name == "new_message" {
                break event.payload["message"]["id"].clone();
            }
        }
    })
    .await;
    // The answer never came; the connection goes.
    proxy.down();
    if !two_nodes {
        tokio::time::sleep(Duration::from_millis(200)).await;
        proxy.up();
    }
    let (answer, sender) = within(WAIT * 2, "the retried send's answer", send)
        .await
        .expect("send task");
    let message = answer.expect("the retry is answered");
    assert_eq!(
        serde_json::to_value(message.id).unwrap(),
        delivered,
        "the first answer: the message that was sent"
    );
    if two_nodes {
        assert_eq!(sender.raw().current_url(), Some(urls[1].as_str()));
    }
    // Once: nothing more arrives.
    tokio::time::sleep(Duration::from_millis(700)).await;
    while let Ok(event) = events.try_recv() {
        assert_ne!(
            event.name, "new_message",
            "the handler ran again: {event:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_retried_after_a_lost_ack_runs_once_on_one_node() {
    a_retried_send_runs_once(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_retried_on_another_node_after_a_lost_ack_runs_once() {
    a_retried_send_runs_once(true).await;
}

/// A send whose idempotency claim Redis carried out only after the node
/// had given up on it (Redis stalled past the node's request timeout, then
/// ran the commands it had queued) is not refused for the whole window:
/// the stray claim lapses with its lease, and the client's retry runs the
/// handler once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_whose_claim_redis_ran_late_goes_through_after_the_lease() {
    let redis = Redis::start().await;
    // Before leases the stray claim held the key for the whole window
    // (IDEMPOTENCY_LEASE_MS=600000 here makes the send time out).
    let spec = Spec::new(SECRET)
        .env("REDIS_URL", &redis.url)
        .env("REDIS_REQUEST_TIMEOUT_MS", "300")
        .env("IDEMPOTENCY_LEASE_MS", "1000");
    let node = Server::start(&spec).await;
    let urls = [node.url()];
    let sender = client(&urls, "stalled").await;
    join(&sender, "late", WAIT).await;
    let receiver = client(&urls, "witness").await;
    let mut events = receiver.raw().subscribe();
    join(&receiver, "late", WAIT).await;

    redis.pause();
    let send = tokio::spawn(async move {
        sender
            .send_message(SendMessage {
                thread_id: "late".try_into().unwrap(),
                content: "once".try_into().unwrap(),
            })
            .await
    });
    // Several attempts time out meanwhile; their claims wait in Redis.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    redis.resume();
    let answer = within(WAIT, "the send, once Redis is back", send)
        .await
        .expect("send task");
    let message = answer.expect("the send goes through once its stray claim lapsed");
    // Once: the message, and nothing more.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut ids = Vec::new();
    while let Ok(event) = events.try_recv() {
        if event.name == "new_message" {
            ids.push(event.payload["message"]["id"].clone());
        }
    }
    assert_eq!(ids, [serde_json::to_value(message.id).unwrap()]);
}
