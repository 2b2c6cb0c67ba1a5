//! The generated typed `/chat` client and the `chat-client` binary against the
//! real `chat-server` binary.
//!
//! Every test starts its own server on a free port (so rate limits, rooms
//! and connection counts never leak between tests) and bounds every wait
//! (the server binary: see `support`).

use std::future::Future;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chat_contract::chat::client::{ChatClient, ChatEvents, ChatServerEvent};
use chat_contract::chat::client_events;
use chat_contract::health::client::HealthClient;
use chat_contract::runtime::client::{
    ClientError, ClientOptions, ConnectError, ConnectionState, watch,
};
use chat_contract::{
    Announce, Announcement, ErrorCode, JoinThread, LeaveThread, Message, NewMessage,
    RequestRefresh, SendMessage, SendMessageContent, Typing,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// The secret the test servers verify tokens with.
const SECRET: &str = "chat-client-tests-secret";
/// How long a client outside a room listens for what it must not receive.
const GRACE: Duration = Duration::from_millis(500);
/// The bound of ordinary waits (an event, an ack, a process start).
const WAIT: Duration = Duration::from_secs(10);

mod support;
use support::{Server, Spec, free_port, token_signed_with, within};

// ---------------------------------------------------------------- helpers

fn client_bin() -> &'static str {
    env!("CARGO_BIN_EXE_chat-client")
}

/// The servers of these tests: quiet, verifying tokens with [`SECRET`].
fn spec() -> Spec {
    Spec::new(SECRET)
}

async fn token(user: &str) -> String {
    token_signed_with(user, SECRET).await
}

/// Client options for the tests: quick reconnection, bounded waits.
fn options(server: &Server, token: Option<String>) -> ClientOptions {
    let options = ClientOptions::new(server.url())
        .connect_timeout(WAIT)
        .ack_timeout(WAIT)
        .reconnection_delay(Duration::from_millis(100))
        .reconnection_delay_max(Duration::from_millis(400));
    match token {
        Some(token) => options.token(token),
        None => options,
    }
}

async fn connect(server: &Server, user: &str) -> ChatClient {
    let token = token(user).await;
    within(
        WAIT,
        "connect",
        ChatClient::connect(options(server, Some(token))),
    )
    .await
    .unwrap_or_else(|e| panic!("{user} cannot connect: {e}"))
}

async fn join(client: &ChatClient, thread: &str) {
    let ack = within(
        WAIT,
        "join_thread ack",
        client.join_thread(JoinThread {
            thread_id: thread.try_into().expect("a valid thread id"),
        }),
    )
    .await
    .expect("join_thread succeeds");
    assert_eq!(ack.thread_id, thread);
}

fn send_payload(thread: &str, content: &str) -> SendMessage {
    SendMessage {
        thread_id: thread.try_into().expect("a valid thread id"),
        content: content.try_into().expect("valid content"),
    }
}

async fn send(client: &ChatClient, thread: &str, content: &str) -> Result<Message, ClientError> {
    within(
        WAIT,
        "send_message ack",
        client.send_message(send_payload(thread, content)),
    )
    .await
}

/// Asserts that `result` is a server failure with `code`; returns its details.
fn assert_code<T: std::fmt::Debug>(result: Result<T, ClientError>, code: ErrorCode) -> Value {
    match result {
        Err(ClientError::Server(e)) => {
            assert_eq!(e.code, code.as_str(), "{e:?}");
            assert_eq!(ErrorCode::from_wire(&e.code), Some(code));
            e.details.unwrap_or(Value::Null)
        }
        other => panic!("expected {code}, got {other:?}"),
    }
}

/// The next event accepted by `pick`, skipping the others.
async fn next_event<T>(
    events: &mut ChatEvents,
    what: &str,
    mut pick: impl FnMut(ChatServerEvent) -> Option<T>,
) -> T {
    within(WAIT, what, async {
        loop {
            match events.next().await {
                Some(Ok(event)) => {
                    if let Some(found) = pick(event) {
                        return found;
                    }
                }
                Some(Err(e)) => panic!("an event does not match the contract: {e}"),
                None => panic!("the client is gone while waiting for {what}"),
            }
        }
    })
    .await
}

/// Every event `events` gets within `period`.
async fn events_during(events: &mut ChatEvents, period: Duration) -> Vec<ChatServerEvent> {
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(period, async {
        while let Some(event) = events.next().await {
            seen.push(event.expect("events match the contract"));
        }
    })
    .await;
    seen
}

async fn wait_state(
    state: &mut watch::Receiver<ConnectionState>,
    limit: Duration,
    what: &str,
    accept: impl FnMut(&ConnectionState) -> bool,
) {
    within(limit, what, state.wait_for(accept))
        .await
        .expect("the client is alive");
}

// ------------------------------------------------------ the typed client

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_bad_token_refused_anonymous_needs_auth_valid_token_works() {
    let server = Server::start(&spec()).await;

    // Not a JWT, and a JWT signed with another secret.
    for bad in [
        "not-a-jwt".to_owned(),
        token_signed_with("mallory", "another-secret").await,
    ] {
        let refused = within(
            WAIT,
            "refusal",
            ChatClient::connect(options(&server, Some(bad))),
        )
        .await;
        assert!(
            matches!(refused, Err(ConnectError::InvalidToken { .. })),
            "expected InvalidToken, got {:?}",
            refused.err()
        );
    }

    // /chat accepts anonymous connections, but every event needs auth.
    let anon = within(
        WAIT,
        "anonymous connect",
        ChatClient::connect(options(&server, None)),
    )
    .await
    .expect("anonymous connections are accepted on /chat");
    let mut anon_events = anon.events();
    let join = anon.join_thread(JoinThread {
        thread_id: "t".try_into().unwrap(),
    });
    assert_code(within(WAIT, "ack", join).await, ErrorCode::AuthRequired);
    assert_code(send(&anon, "t", "hi").await, ErrorCode::AuthRequired);
    anon.typing(Typing {
        thread_id: "t".try_into().unwrap(),
        is_typing: true,
    })
    .await
    .expect("typing is handed to the connection");
    let error = next_event(&mut anon_events, "the error event", |e| match e {
        ChatServerEvent::Error(e) => Some(e),
        _ => None,
    })
    .await;
    assert_eq!(
        (error.event.as_str(), &*error.code),
        ("typing", "AUTH_REQUIRED")
    );

    // A valid token works.
    let ann = connect(&server, "ann").await;
    let ack = within(
        WAIT,
        "join ack",
        ann.join_thread(JoinThread {
            thread_id: "t".try_into().unwrap(),
        }),
    )
    .await
    .expect("an authenticated join succeeds");
    assert_eq!(ack.thread_id, "t");
    assert_eq!(ack.members, ["ann"]);
    assert!(ann.is_connected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_message_acks_the_typed_message_and_only_room_members_get_it() {
    let server = Server::start(&spec()).await;
    let alice = connect(&server, "alice").await;
    let bob = connect(&server, "bob").await;
    let eve = connect(&server, "eve").await;
    join(&alice, "t1").await;
    join(&bob, "t1").await;
    join(&eve, "elsewhere").await;
    let mut alice_events = alice.events();
    let mut bob_events = bob.events();
    let mut eve_events = eve.events();

    let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let message = send(&alice, "t1", "hello bob")
        .await
        .expect("a member may post");
    assert_eq!(message.content, "hello bob");
    assert_eq!(message.user_id, "alice");
    assert_eq!(message.thread_id.as_str(), "t1");
    assert_eq!(message.id.get_version_num(), 4);
    let created = message.created_at.timestamp();
    assert!(
        (created - before.as_secs() as i64).abs() < 10,
        "createdAt {}",
        message.created_at
    );

    let expected = NewMessage {
        thread_id: "t1".to_owned(),
        message: message.clone(),
    };
    for (who, events) in [("alice", &mut alice_events), ("bob", &mut bob_events)] {
        let got = next_event(events, &format!("new_message for {who}"), |e| match e {
            ChatServerEvent::NewMessage(m) => Some(m),
            _ => None,
        })
        .await;
        assert_eq!(got, expected, "{who} gets the message as acked");
    }
    let eve_saw = events_during(&mut eve_events, GRACE).await;
    assert!(
        eve_saw.is_empty(),
        "a client outside the room gets nothing: {eve_saw:?}"
    );
}

fn announce_payload(text: &str) -> Announce {
    Announce {
        text: text.try_into().expect("valid announcement text"),
    }
}

async fn announce(client: &ChatClient, text: &str) -> Result<Announcement, ClientError> {
    within(
        WAIT,
        "announce ack",
        client.announce(announce_payload(text)),
    )
    .await
}

/// `announce` with `ADMIN_USERS=alice`: bob is refused with `ACCESS_DENIED`,
/// an anonymous connection with `AUTH_REQUIRED`; alice's announcement is
/// acked and reaches every connection of `/chat`, whether it joined a thread
/// or not, the anonymous one and the sender's included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admin_users_announce_and_every_connection_gets_the_announcement() {
    let server = Server::start(&spec().env("ADMIN_USERS", "alice")).await;
    let alice = connect(&server, "alice").await;
    let bob = connect(&server, "bob").await;
    let anon = within(
        WAIT,
        "anonymous connect",
        ChatClient::connect(options(&server, None)),
    )
    .await
    .expect("anonymous connections are accepted on /chat");
    // Only bob is in a thread; alice and the anonymous client joined none.
    join(&bob, "t1").await;
    let mut alice_events = alice.events();
    let mut bob_events = bob.events();
    let mut anon_events = anon.events();

    assert_code(
        announce(&bob, "bob is not an administrator").await,
        ErrorCode::AccessDenied,
    );
    assert_code(
        announce(&anon, "nobody knows who this is").await,
        ErrorCode::AuthRequired,
    );

    let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let acked = announce(&alice, "maintenance at noon")
        .await
        .expect("an administrator may announce");
    assert_eq!(*acked.text, "maintenance at noon");
    assert_eq!(acked.from, "alice");
    assert_eq!(acked.id.get_version_num(), 4);
    let sent = acked.sent_at.timestamp();
    assert!(
        (sent - before.as_secs() as i64).abs() < 10,
        "sentAt {}",
        acked.sent_at
    );

    // The first announcement each connection gets is alice's: the refused
    // ones reached nobody.
    for (who, events) in [
        ("alice", &mut alice_events),
        ("bob", &mut bob_events),
        ("the anonymous client", &mut anon_events),
    ] {
        let got = next_event(events, &format!("announcement for {who}"), |e| match e {
            ChatServerEvent::Announcement(a) => Some(a),
            _ => None,
        })
        .await;
        assert_eq!(got.id, acked.id, "{who}");
        assert_eq!(got.text, acked.text, "{who}");
        assert_eq!(got, acked, "{who} gets the announcement as acked");
    }

    // At most 5 per 60 s per user: alice's sixth is refused.
    for i in 2..=5 {
        announce(&alice, &format!("announcement {i}"))
            .await
            .unwrap_or_else(|e| panic!("announcement {i} of 5: {e}"));
    }
    let details = assert_code(
        announce(&alice, "one too many").await,
        ErrorCode::RateLimited,
    );
    let retry = details["retryAfterMs"].as_u64().expect("retryAfterMs");
    assert!(retry > 0 && retry <= 60_000, "retryAfterMs {retry}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_code_a_client_can_provoke() {
    let server = Server::start(&spec()).await;
    let carl = connect(&server, "carl").await;
    join(&carl, "mine").await;
    let mut events = carl.events();

    // ACCESS_DENIED: posting to a thread not joined.
    let denied = send(&carl, "not-mine", "let me in").await;
    assert_code(denied, ErrorCode::AccessDenied);

    // INVALID_PAYLOAD: 2001 characters. The typed newtype refuses to build
    // it, so it goes out through the untyped client.
    let too_long = "x".repeat(2001);
    assert!(SendMessageContent::try_from(too_long.as_str()).is_err());
    let invalid = within(
        WAIT,
        "ack",
        carl.raw().emit_with_ack::<Message, _>(
            client_events::SEND_MESSAGE,
            &json!({"threadId": "mine", "content": too_long}),
        ),
    )
    .await;
    let details = assert_code(invalid, ErrorCode::InvalidPayload);
    assert_eq!(details["path"], "/content", "{details}");

    // UNKNOWN_EVENT: an event that is not in the contract.
    let unknown = within(
        WAIT,
        "ack",
        carl.raw()
            .emit_with_ack::<Value, _>("no_such_event", &json!({})),
    )
    .await;
    assert_code(unknown, ErrorCode::UnknownEvent);

    // The `error` event: `typing` (no ack) to a thread not joined.
    carl.typing(Typing {
        thread_id: "not-mine".try_into().unwrap(),
        is_typing: true,
    })
    .await
    .expect("typing is handed to the connection");
    let error = next_event(&mut events, "the error event", |e| match e {
        ChatServerEvent::Error(e) => Some(e),
        _ => None,
    })
    .await;
    assert_eq!(error.event, "typing");
    assert_eq!(
        ErrorCode::from_wire(&error.code),
        Some(ErrorCode::AccessDenied)
    );

    // The connection survived all of it.
    let ok = send(&carl, "mine", &"y".repeat(2000))
        .await
        .expect("2000 characters are fine");
    assert_eq!(ok.content.chars().count(), 2000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_21st_send_within_10_s_is_rate_limited() {
    let server = Server::start(&spec()).await;
    let dan = connect(&server, "dan").await;
    join(&dan, "t").await;
    for i in 1..=20 {
        send(&dan, "t", &format!("m{i}"))
            .await
            .unwrap_or_else(|e| panic!("message {i} of 20: {e}"));
    }
    let details = assert_code(send(&dan, "t", "m21").await, ErrorCode::RateLimited);
    let retry = details["retryAfterMs"].as_u64().expect("retryAfterMs");
    assert!(retry > 0 && retry <= 10_000, "retryAfterMs {retry}");
    // Other events have limits of their own.
    let left = within(
        WAIT,
        "ack",
        dan.leave_thread(LeaveThread {
            thread_id: "t".try_into().unwrap(),
        }),
    )
    .await
    .expect("leave_thread is not limited by send_message");
    assert_eq!(left.thread_id, "t");
}

/// 1,000 acked requests on one connection, polled together so that they are
/// all queued before their answers are collected; returns `(thread id, the
/// ack's thread id)` per request that succeeded, in order. The requests name
/// 100 threads, ten times each (a connection may be in 100 rooms). The
/// contract limits both events to 120 per minute per user: the first 120 are
/// answered with their own ack, every other one with `RATE_LIMITED`, so all
/// 1,000 get an answer.
async fn thousand_in_flight<F, A: std::fmt::Debug>(
    request: impl Fn(&str) -> F,
    echoed: impl Fn(&A) -> &str,
) -> Vec<(String, String)>
where
    F: Future<Output = Result<A, ClientError>>,
{
    let ids: Vec<String> = (0..1000).map(|i| format!("thread-{}", i % 100)).collect();
    let acks = within(
        Duration::from_secs(30),
        "1,000 acks",
        futures_util::future::join_all(ids.iter().map(|id| request(id))),
    )
    .await;
    let mut answers = Vec::new();
    for (id, ack) in ids.into_iter().zip(acks) {
        match ack {
            Ok(ack) => answers.push((id.clone(), echoed(&ack).to_owned())),
            refused => {
                assert_code(refused, ErrorCode::RateLimited);
            }
        }
    }
    assert_eq!(answers.len(), 120, "the event's rate limit, 120 per minute");
    answers
}

/// `leave_thread` answers with an ack (or `RATE_LIMITED`) and nothing else
/// (the client is in none of the threads, so there is no `left`): 1,000
/// packets back, within the server's per-connection buffer of 1,024.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_acked_emits_in_flight_on_one_connection_get_their_own_acks() {
    let server = Server::start(&spec()).await;
    let kim = connect(&server, "kim").await;
    let mut events = kim.events();
    let answers = thousand_in_flight(
        |id| {
            kim.leave_thread(LeaveThread {
                thread_id: id.try_into().unwrap(),
            })
        },
        |ack| ack.thread_id.as_str(),
    )
    .await;
    for (asked, echoed) in &answers {
        assert_eq!(asked, echoed, "each ack answers its own request");
    }
    assert!(kim.is_connected());
    assert!(
        events_during(&mut events, Duration::from_millis(100))
            .await
            .is_empty()
    );
}

/// The same with `join_thread`, whose handler also emits `joined` to the
/// joiner (once per thread): 1,000 answers and 100 `joined` to one
/// connection in a burst overflow the per-connection buffer (1,024,
/// `ServerConfig::buffer_size`). socketioxide
/// refuses what does not fit; the runtime retries acks while the socket is
/// connected, so every request still gets its own answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_join_threads_in_flight_get_their_own_acks() {
    let server = Server::start(&spec()).await;
    let kim = connect(&server, "kim").await;
    let answers = thousand_in_flight(
        |id| {
            kim.join_thread(JoinThread {
                thread_id: id.try_into().unwrap(),
            })
        },
        |ack| ack.thread_id.as_str(),
    )
    .await;
    for (asked, echoed) in &answers {
        assert_eq!(asked, echoed, "each ack answers its own request");
    }
}

/// One connection may be in 100 rooms (`ServerConfig::max_rooms_per_socket`):
/// the 101st thread is refused with `TOO_MANY_ROOMS`, joining a thread again
/// is not counted, and leaving one makes room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_joins_at_most_100_threads() {
    let server = Server::start(&spec()).await;
    let lee = connect(&server, "lee").await;
    let join = |id: String| {
        lee.join_thread(JoinThread {
            thread_id: id.as_str().try_into().unwrap(),
        })
    };
    for i in 0..100 {
        within(WAIT, "join", join(format!("t{i}")))
            .await
            .unwrap_or_else(|e| panic!("thread {i} of 100: {e}"));
    }
    let details = assert_code(
        within(WAIT, "join", join("t100".to_owned())).await,
        ErrorCode::TooManyRooms,
    );
    assert_eq!(details["maxRooms"], 100);
    within(WAIT, "join again", join("t5".to_owned()))
        .await
        .expect("a thread already joined is not counted again");
    within(
        WAIT,
        "leave",
        lee.leave_thread(LeaveThread {
            thread_id: "t0".try_into().unwrap(),
        }),
    )
    .await
    .expect("leave");
    within(WAIT, "join after leaving", join("t100".to_owned()))
        .await
        .expect("leaving a thread makes room");
}

// ---------------------------------------------------------- reconnection

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_a_server_restart_and_the_hook_rejoins_the_thread() {
    let server = Server::start(&spec()).await;
    let port = server.port;
    let rejoined = Arc::new(AtomicUsize::new(0));
    let hook_count = rejoined.clone();
    let builder = ChatClient::builder(options(&server, Some(token("alice").await))).on_reconnect(
        move |client| {
            let count = hook_count.clone();
            async move {
                let ack = client
                    .join_thread(JoinThread {
                        thread_id: "t".try_into().unwrap(),
                    })
                    .await;
                if ack.is_ok_and(|ack| ack.members.contains(&"alice".to_owned())) {
                    count.fetch_add(1, Ordering::SeqCst);
                }
            }
        },
    );
    let mut alice_events = builder.events();
    let alice = within(WAIT, "connect", builder.connect())
        .await
        .expect("alice connects");
    join(&alice, "t").await;
    let mut state = alice.state();

    server.kill().await;
    wait_state(&mut state, WAIT, "the client notices the loss", |s| {
        matches!(s, ConnectionState::Reconnecting { .. })
    })
    .await;
    let server = Server::start_on(port, &spec())
        .await
        .expect("the server starts again on the same port");
    wait_state(&mut state, Duration::from_secs(15), "reconnected", |s| {
        *s == ConnectionState::Connected
    })
    .await;
    // The state turns Connected only once the hooks returned.
    assert_eq!(
        rejoined.load(Ordering::SeqCst),
        1,
        "the hook re-joined once"
    );

    let bob = connect(&server, "bob").await;
    join(&bob, "t").await;
    let sent = send(&bob, "t", "after the restart")
        .await
        .expect("bob posts");
    let got = next_event(
        &mut alice_events,
        "bob's message after the restart",
        |e| match e {
            ChatServerEvent::NewMessage(m) if m.message.id == sent.id => Some(m),
            _ => None,
        },
    )
    .await;
    assert_eq!(got.message, sent);
    // Normal traffic resumed too.
    send(&alice, "t", "back").await.expect("alice posts again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_during_backoff_stops_every_attempt() {
    let server = Server::start(&spec()).await;
    let port = server.port;
    let client = connect(&server, "zoe").await;
    let mut state = client.state();

    server.kill().await;
    wait_state(&mut state, WAIT, "the client notices the loss", |s| {
        matches!(s, ConnectionState::Reconnecting { .. })
    })
    .await;
    within(WAIT, "disconnect()", client.disconnect()).await;
    assert_eq!(*state.borrow_and_update(), ConnectionState::Disconnected);

    let server = Server::start_on(port, &spec())
        .await
        .expect("the server starts again on the same port");
    // Several backoff periods (at most 400 ms each) with a server to reach.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !state.has_changed().expect("the client is alive"),
        "the state moved after disconnect(): {:?}",
        *state.borrow()
    );
    assert_eq!(*state.borrow(), ConnectionState::Disconnected);
    assert!(matches!(
        send(&client, "t", "anyone?").await,
        Err(ClientError::Disconnected)
    ));

    // The new server has exactly one connection: the probe.
    let probe = within(
        WAIT,
        "probe connect",
        HealthClient::connect(options(&server, Some(token("probe").await))),
    )
    .await
    .expect("the probe connects to /health");
    let status = within(
        WAIT,
        "request_refresh",
        probe.request_refresh(RequestRefresh {}),
    )
    .await
    .expect("request_refresh answers");
    assert_eq!(status.connected_clients, 1, "only the probe is connected");
}

// ------------------------------------------------------------ the binary

/// `chat-client` running against `server`, with its stdout read line by line.
struct Cli {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr: tokio::task::JoinHandle<String>,
}

impl Cli {
    async fn start(server: &Server, user: &str, thread: &str) -> Self {
        Self::start_urls(&[server.url()], user, thread).await
    }

    /// `chat-client` with one `--url` per entry of `urls`, in that order.
    async fn start_urls(urls: &[String], user: &str, thread: &str) -> Self {
        let token = token(user).await;
        let mut args: Vec<&str> = urls.iter().flat_map(|u| ["--url", u.as_str()]).collect();
        args.extend(["--token", &token, "--thread", thread]);
        let mut child = Command::new(client_bin())
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("chat-client runs");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let mut err = child.stderr.take().expect("piped stderr");
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text).await;
            text
        });
        Self {
            child,
            stdout,
            stderr,
        }
    }

    /// The next stdout line, parsed.
    async fn line(&mut self) -> Value {
        let line = within(WAIT, "a chat-client stdout line", self.stdout.next_line())
            .await
            .expect("stdout is readable")
            .expect("chat-client printed a line before closing stdout");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    async fn type_line(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().expect("stdin is open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
    }

    /// Closes stdin; returns the exit status, the rest of stdout and stderr.
    async fn finish(mut self) -> (ExitStatus, Vec<Value>, String) {
        drop(self.child.stdin.take());
        let status = within(WAIT, "chat-client exits", self.child.wait())
            .await
            .expect("chat-client is reaped");
        let mut rest = Vec::new();
        while let Some(line) = self.stdout.next_line().await.expect("stdout is readable") {
            rest.push(
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")),
            );
        }
        let stderr = within(WAIT, "stderr", self.stderr).await.unwrap();
        (status, rest, stderr)
    }
}

fn message_json(message: &Message) -> Value {
    serde_json::to_value(message).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_sends_piped_lines_and_prints_json_lines() {
    let server = Server::start(&spec()).await;
    let watcher = connect(&server, "watcher").await;
    join(&watcher, "piped").await;
    let mut seen = watcher.events();
    let token = token("cli").await;

    let mut child = Command::new(client_bin())
        .args([
            "--url",
            &server.url(),
            "--token",
            &token,
            "--thread",
            "piped",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("chat-client runs");
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(b"first line\nsecond line\n").await.unwrap();
    drop(stdin);
    let out = within(WAIT, "chat-client exits", child.wait_with_output())
        .await
        .expect("chat-client is reaped");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {}; stderr:\n{stderr}",
        out.status
    );

    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .expect("UTF-8 stdout")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert_eq!(
        lines[0],
        json!({"type": "joined", "threadId": "piped", "userId": "cli"})
    );
    for (line, content) in lines[1..].iter().zip(["first line", "second line"]) {
        assert_eq!(line["type"], "new_message", "{line}");
        assert_eq!(line["threadId"], "piped");
        assert_eq!(line["message"]["content"], content);
        assert_eq!(line["message"]["userId"], "cli");
        assert_eq!(line.as_object().unwrap().len(), 3, "{line}");
    }
    // The other member got the same messages, in order.
    for line in &lines[1..] {
        let got = next_event(&mut seen, "the piped message", |e| match e {
            ChatServerEvent::NewMessage(m) => Some(m),
            _ => None,
        })
        .await;
        assert_eq!(message_json(&got.message), line["message"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_prints_joined_left_typing_and_new_message_of_others() {
    let server = Server::start(&spec()).await;
    let mut cli = Cli::start(&server, "cli", "room").await;
    assert_eq!(
        cli.line().await,
        json!({"type": "joined", "threadId": "room", "userId": "cli"})
    );

    let bob = connect(&server, "bob").await;
    join(&bob, "room").await;
    let mut bob_events = bob.events();
    assert_eq!(
        cli.line().await,
        json!({"type": "joined", "threadId": "room", "userId": "bob"})
    );
    bob.typing(Typing {
        thread_id: "room".try_into().unwrap(),
        is_typing: true,
    })
    .await
    .unwrap();
    assert_eq!(
        cli.line().await,
        json!({"type": "typing_indicator", "threadId": "room", "userId": "bob", "isTyping": true})
    );
    let from_bob = send(&bob, "room", "hi cli").await.expect("bob posts");
    assert_eq!(
        cli.line().await,
        json!({"type": "new_message", "threadId": "room", "message": message_json(&from_bob)})
    );

    cli.type_line("hi bob").await;
    let printed = cli.line().await;
    assert_eq!(printed["type"], "new_message");
    assert_eq!(printed["message"]["content"], "hi bob");
    let got = next_event(&mut bob_events, "cli's message", |e| match e {
        ChatServerEvent::NewMessage(m) if m.message.user_id == "cli" => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(message_json(&got.message), printed["message"]);

    within(
        WAIT,
        "leave ack",
        bob.leave_thread(LeaveThread {
            thread_id: "room".try_into().unwrap(),
        }),
    )
    .await
    .expect("bob leaves");
    assert_eq!(
        cli.line().await,
        json!({"type": "left", "threadId": "room", "userId": "bob"})
    );

    // A blank line is skipped; the last line is acked before the exit.
    cli.type_line("").await;
    cli.type_line("bye").await;
    let (status, rest, stderr) = cli.finish().await;
    assert!(status.success(), "exit {status}; stderr:\n{stderr}");
    assert_eq!(rest.len(), 1, "{rest:#?}");
    assert_eq!(rest[0]["message"]["content"], "bye");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_prints_announcements() {
    let server = Server::start(&spec().env("ADMIN_USERS", "alice")).await;
    let mut cli = Cli::start(&server, "cli", "room").await;
    assert_eq!(
        cli.line().await,
        json!({"type": "joined", "threadId": "room", "userId": "cli"})
    );
    let alice = connect(&server, "alice").await;
    let acked = announce(&alice, "maintenance at noon")
        .await
        .expect("an administrator may announce");
    let mut expected = serde_json::to_value(&acked).unwrap();
    expected["type"] = json!("announcement");
    assert_eq!(cli.line().await, expected);
    assert_eq!(expected["from"], "alice");

    let (status, rest, stderr) = cli.finish().await;
    assert!(status.success(), "exit {status}; stderr:\n{stderr}");
    assert!(rest.is_empty(), "{rest:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_fails_over_between_its_urls() {
    let a = Server::start(&spec()).await;
    let b = Server::start(&spec()).await;
    let (a_url, b_url) = (a.url(), b.url());
    let nobody = format!("http://127.0.0.1:{}", free_port());
    // The first URL is down: the binary connects to the second, A.
    let mut cli = Cli::start_urls(&[nobody, a_url.clone(), b_url.clone()], "cli", "fo").await;
    assert_eq!(
        cli.line().await,
        json!({"type": "joined", "threadId": "fo", "userId": "cli"})
    );
    let watcher = connect(&b, "watcher").await;
    join(&watcher, "fo").await;
    let mut seen = watcher.events();

    // A dies: the binary moves on to the URL after A, B, and joins again there.
    a.kill().await;
    next_event(&mut seen, "cli joining on B", |e| match e {
        ChatServerEvent::Joined(j) if j.user_id == "cli" => Some(j),
        _ => None,
    })
    .await;
    cli.type_line("after failover").await;
    let got = next_event(&mut seen, "cli's message on B", |e| match e {
        ChatServerEvent::NewMessage(m) if m.message.user_id == "cli" => Some(m),
        _ => None,
    })
    .await;
    assert_eq!(got.message.content, "after failover");

    let (status, _rest, stderr) = cli.finish().await;
    assert!(status.success(), "exit {status}; stderr:\n{stderr}");
    assert!(
        stderr.contains(&format!("reconnected to {b_url}; joined thread `fo` again")),
        "stderr:\n{stderr}"
    );
    assert!(
        !stderr.contains(&format!("reconnected to {a_url}")),
        "stderr:\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_fails_clearly_when_the_connection_is_refused() {
    let server = Server::start(&spec()).await;
    let run = |args: Vec<String>| async move {
        within(
            WAIT,
            "chat-client exits",
            Command::new(client_bin())
                .args(&args)
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("chat-client runs")
    };
    let args = |url: String, token: &str| {
        ["--url", &url, "--token", token, "--thread", "t"]
            .map(str::to_owned)
            .to_vec()
    };

    let bad_token = run(args(server.url(), "not-a-jwt")).await;
    let stderr = String::from_utf8_lossy(&bad_token.stderr);
    assert_eq!(bad_token.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains("invalid token"), "stderr:\n{stderr}");
    assert!(bad_token.stdout.is_empty());

    let nobody = format!("http://127.0.0.1:{}", free_port());
    let unreachable = run(args(nobody, &token("cli").await)).await;
    let stderr = String::from_utf8_lossy(&unreachable.stderr);
    assert_eq!(unreachable.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains("cannot connect"), "stderr:\n{stderr}");

    let usage = run(vec!["--url".to_owned(), server.url()]).await;
    assert_eq!(
        usage.status.code(),
        Some(2),
        "missing arguments are a usage error"
    );
}
