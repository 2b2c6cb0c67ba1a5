//! Connection-state recovery against `chat-server` (threads keep their
//! last 500 events for 10 minutes): a receiver whose TCP connection is cut
//! while 200 messages are sent to its thread comes back and has all 200, in
//! order, once, then live messages; a receiver that missed more than the
//! history keeps is told so, with the reason, and is back in its thread.

use std::time::Duration;

use chat_contract::SendMessage;
use chat_contract::chat::client::ChatClient;
use chat_contract::runtime::client::{ClientOptions, ConnectionState, ServerEvent, broadcast};
use chat_contract::runtime::wire::{RECOVERY_EVENT, RecoveryGap, RoomPosition};

mod support;
use support::{CutProxy, Server, Spec, join, token_signed_with, wait_for, within};

const SECRET: &str = "chat-client-recovery-secret";
const WAIT: Duration = Duration::from_secs(10);

async fn client(url: String, user: &str) -> ChatClient {
    let options = ClientOptions::new(url)
        .token(token_signed_with(user, SECRET).await)
        .connect_timeout(WAIT)
        .ack_timeout(WAIT)
        .reconnection_delay(Duration::from_millis(50))
        .reconnection_delay_max(Duration::from_millis(200));
    within(WAIT, "connect", ChatClient::connect(options))
        .await
        .unwrap_or_else(|e| panic!("{user} cannot connect: {e}"))
}

/// `n` senders in `thread`, straight to the server (send_message allows 20
/// per 10 s per user, so each sends at most 20).
async fn senders(server: &Server, thread: &str, n: usize) -> Vec<ChatClient> {
    senders_from(server, thread, 0, n).await
}

/// Senders `first` to `first + n - 1`.
async fn senders_from(server: &Server, thread: &str, first: usize, n: usize) -> Vec<ChatClient> {
    let mut out = Vec::new();
    for i in first..first + n {
        let c = client(server.url(), &format!("sender-{i}")).await;
        join(&c, thread, WAIT).await;
        out.push(c);
    }
    out
}

/// Sends `m0`, `m1`, … one after the other (acked, so in this order).
async fn send_all(senders: &[ChatClient], thread: &str, count: usize) {
    for i in 0..count {
        send_one(&senders[i % senders.len()], thread, &format!("m{i}")).await;
    }
}

async fn send_one(sender: &ChatClient, thread: &str, content: &str) {
    within(
        WAIT,
        "send_message",
        sender.send_message(SendMessage {
            thread_id: thread.try_into().unwrap(),
            content: content.try_into().unwrap(),
        }),
    )
    .await
    .unwrap_or_else(|e| panic!("{content}: {e}"));
}

/// The contents of the `new_message` events and the recovery positions
/// received, until `done`.
async fn collect(
    events: &mut broadcast::Receiver<ServerEvent>,
    done: impl Fn(&[String], &[RoomPosition]) -> bool,
) -> (Vec<String>, Vec<RoomPosition>) {
    let (mut messages, mut positions) = (Vec::new(), Vec::new());
    within(WAIT, "events", async {
        while !done(&messages, &positions) {
            let event = events.recv().await.expect("no lost event");
            if event.name == "new_message" {
                messages.push(
                    event.payload["message"]["content"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                );
            } else if event.name == RECOVERY_EVENT {
                positions.push(serde_json::from_value(event.payload).expect("a RoomPosition"));
            }
        }
    })
    .await;
    (messages, positions)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_cut_off_gets_the_200_messages_it_missed_in_order_once() {
    let server = Server::start(&Spec::new(SECRET)).await;
    let proxy = CutProxy::start(server.port).await;
    let receiver = client(format!("http://127.0.0.1:{}", proxy.port), "receiver").await;
    let mut events = receiver.raw().subscribe();
    join(&receiver, "cut", WAIT).await;
    let senders = senders(&server, "cut", 10).await;
    let (_, joined) = collect(&mut events, |_, p| !p.is_empty()).await;
    assert_eq!(
        (joined[0].room.as_str(), joined[0].recovered),
        ("thread:cut", true)
    );
    // The senders' `joined` are events of the thread too: have the last one
    // before the cut, so that only the 200 messages are missed.
    within(WAIT, "the last sender's joined", async {
        while let Ok(event) = events.recv().await {
            if event.name == "joined" && event.payload["userId"] == "sender-9" {
                break;
            }
        }
    })
    .await;

    let mut state = receiver.raw().state();
    proxy.down();
    wait_for(&mut state, "the cut", WAIT, |s| {
        *s != ConnectionState::Connected
    })
    .await;
    send_all(&senders, "cut", 200).await;
    proxy.up();
    let (messages, positions) = collect(&mut events, |m, p| m.len() >= 200 && !p.is_empty()).await;
    let expected: Vec<String> = (0..200).map(|i| format!("m{i}")).collect();
    assert_eq!(messages, expected, "every missed message, in order, once");
    assert_eq!(positions.len(), 1, "{positions:?}");
    assert!(positions[0].recovered, "{positions:?}");
    assert_eq!(
        positions[0].replayed, 200,
        "the 200 messages, nothing else was sent"
    );

    // Live again, with nothing between, and no message comes twice.
    // A sender with its budget intact (the others sent 20 each).
    let fresh = senders_from(&server, "cut", 10, 1).await;
    send_one(&fresh[0], "cut", "live").await;
    let (live, _) = collect(&mut events, |m, _| !m.is_empty()).await;
    assert_eq!(live, ["live"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Ok(event) = events.try_recv() {
        assert_ne!(
            event.name, "new_message",
            "a message arrived twice: {event:?}"
        );
    }
    let at = &receiver.raw().room_positions()["thread:cut"];
    // The fresh sender's `joined` and its message came after the resume.
    assert!(
        at.1 >= positions[0].offset + 2,
        "{at:?} after {positions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_missed_more_than_the_history_is_told_and_rejoined() {
    let server = Server::start(&Spec::new(SECRET)).await;
    let proxy = CutProxy::start(server.port).await;
    let receiver = client(format!("http://127.0.0.1:{}", proxy.port), "late").await;
    let mut events = receiver.raw().subscribe();
    join(&receiver, "busy", WAIT).await;
    let senders = senders(&server, "busy", 26).await;
    let mut state = receiver.raw().state();
    proxy.down();
    wait_for(&mut state, "the cut", WAIT, |s| {
        *s != ConnectionState::Connected
    })
    .await;
    // 510 messages: the thread keeps 500.
    send_all(&senders, "busy", 510).await;
    let (_, before) = collect(&mut events, |_, p| !p.is_empty()).await;
    assert!(before[0].recovered, "the join's position");
    proxy.up();
    let (missed, positions) = collect(&mut events, |_, p| !p.is_empty()).await;
    assert!(missed.is_empty(), "nothing replayed past a gap: {missed:?}");
    assert!(!positions[0].recovered);
    assert_eq!(positions[0].reason, Some(RecoveryGap::Trimmed));
    // Back in the thread all the same.
    let fresh = senders_from(&server, "busy", 26, 1).await;
    send_one(&fresh[0], "busy", "after the gap").await;
    let (live, _) = collect(&mut events, |m, _| !m.is_empty()).await;
    assert_eq!(live, ["after the gap"]);
}
