//! Delivery across nodes: `chat-server` nodes sharing a real redis-server
//! (each test starts its own), threads keeping their history in Redis
//! Streams. A receiver whose node dies (SIGKILL) comes back on another
//! node and has every message of its thread, in order, once.

use std::time::Duration;

use chat_contract::chat::client::ChatClient;
use chat_contract::runtime::client::{
    ClientOptions, ConnectionState, ServerEvent, broadcast, watch,
};
use chat_contract::runtime::wire::{Offset, RECOVERY_EVENT, RoomPosition};
use chat_contract::{JoinThread, SendMessage};

mod support;
use support::{Redis, Server, Spec, token_signed_with, within};

const SECRET: &str = "chat-client-delivery-secret";
const WAIT: Duration = Duration::from_secs(15);

fn options(urls: &[String], token: String) -> ClientOptions {
    ClientOptions::new(urls[0].clone())
        .fallback_urls(urls[1..].to_vec())
        .token(token)
        .connect_timeout(WAIT)
        .ack_timeout(WAIT)
        .gap_wait(Duration::from_millis(300))
        .reconnection_delay(Duration::from_millis(50))
        .reconnection_delay_max(Duration::from_millis(300))
}

async fn client(urls: &[String], user: &str) -> ChatClient {
    let token = token_signed_with(user, SECRET).await;
    within(WAIT, "connect", ChatClient::connect(options(urls, token)))
        .await
        .unwrap_or_else(|e| panic!("{user} cannot connect: {e}"))
}

async fn join(client: &ChatClient, thread: &str) {
    within(
        WAIT,
        "join_thread",
        client.join_thread(JoinThread {
            thread_id: thread.try_into().unwrap(),
        }),
    )
    .await
    .expect("join_thread succeeds");
}

async fn send(sender: &ChatClient, thread: &str, content: &str) -> Result<(), String> {
    within(
        WAIT,
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

async fn wait_for(
    state: &mut watch::Receiver<ConnectionState>,
    what: &str,
    f: impl Fn(&ConnectionState) -> bool,
) {
    within(WAIT, what, state.wait_for(|s| f(s)))
        .await
        .expect("state");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_whose_node_is_killed_gets_every_message_from_another_node() {
    let redis = Redis::start().await;
    let spec = Spec::new(SECRET).env("REDIS_URL", &redis.url);
    let (a, b) = (Server::start(&spec).await, Server::start(&spec).await);
    let receiver = client(&[a.url(), b.url()], "receiver").await;
    let mut events = receiver.raw().subscribe();
    join(&receiver, "failover").await;
    // send_message allows 20 per 10 s per user: 6 senders for 110.
    let mut senders = Vec::new();
    for i in 0..6 {
        let sender = client(&[b.url()], &format!("sender-{i}")).await;
        join(&sender, "failover").await;
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
    wait_for(&mut state, "the loss of node A", |s| {
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
    assert!(thread.gaps.is_empty(), "nothing reported gone: {:?}", thread.gaps);
    let resumed = thread.positions.last().expect("the resume's position");
    assert!(resumed.recovered && resumed.replayed > 0, "{resumed:?}");
    // And nothing more comes (no duplicate after the replay).
    tokio::time::sleep(Duration::from_millis(500)).await;
    while let Ok(event) = events.try_recv() {
        assert_ne!(event.name, "new_message", "a message came twice: {event:?}");
    }
}
