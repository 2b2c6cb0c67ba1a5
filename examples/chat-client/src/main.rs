//! Example terminal client for namespace `/chat` of
//! `schemas/chat.contract.json`, on the generated typed client
//! (`chat_contract::chat::client::ChatClient`).
//!
//! ```text
//! chat-client --url http://127.0.0.1:3000 --token <jwt> --thread <id>
//! chat-client --url http://gw-1:3000 --url http://gw-2:3000 --token <jwt> --thread <id>
//! ```
//!
//! - `https://` URLs use TLS, checked against the system's roots; `--ca
//!   <pem>` trusts a private CA besides them.
//! - `--url` may be given several times, for the nodes of one deployment:
//!   the first connection tries them in that order, and after a lost
//!   connection the client fails over to the next node
//!   ([`ClientOptions::fallback_urls`]).
//! - Joins the thread, and joins it again after every reconnection (the
//!   server forgets rooms with the old connection).
//! - Sends every non-blank line read from stdin as a message, one at a time,
//!   waiting for each ack. A line typed while the connection is being
//!   re-established waits for it (up to [`SEND_WAIT`]); a `RATE_LIMITED`
//!   answer is retried after the server's `retryAfterMs` (the server did not
//!   take the message, so nothing is duplicated).
//! - Prints every `new_message`, `joined`, `left` and `typing_indicator` of
//!   the thread, and every `announcement` (sent to everyone connected), as
//!   one JSON object per line on stdout: the event's payload plus a `type`
//!   field naming the event, e.g.
//!   `{"type":"new_message","threadId":"t1","message":{…}}`.
//! - Writes errors (refused connection, failed acks, `error` events) and
//!   connection status (lost, reconnected) to stderr, as text.
//!
//! Exit status: 0 at the end of input once every message was acked; 1 when
//! the connection is refused (bad token, server unreachable) or ends for good,
//! the thread cannot be joined, or a message was not accepted; 2 for bad
//! usage.

#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use chat_contract::chat::client::{ChatClient, ChatEvents, ChatServerEvent};
use chat_contract::runtime::client::{
    ClientError, ClientOptions, ConnectionError, ConnectionState, watch,
};
use chat_contract::{
    ErrorCode, JoinThread, JoinThreadThreadId, Message, SendMessage, SendMessageContent,
    SendMessageThreadId,
};
use clap::Parser;
use serde_json::Value;
use tokio::io::AsyncBufReadExt;

/// How long a line waits for the connection to come back before it is
/// reported as not sent.
const SEND_WAIT: Duration = Duration::from_secs(30);
/// How many times one line is retried after `RATE_LIMITED`.
const RATE_LIMIT_RETRIES: u32 = 5;
/// The longest pause honoured for one `RATE_LIMITED` answer.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(15);
/// How long the events already received may take to be printed at exit.
const DRAIN: Duration = Duration::from_secs(2);

/// Terminal chat client: joins a thread, sends stdin lines as messages, prints
/// the thread's events as JSON lines.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    /// The server, e.g. `http://127.0.0.1:3000` (no path). Repeat it for
    /// several nodes of one deployment: they are tried in that order, and a
    /// lost connection fails over to the next one.
    #[arg(long = "url", value_name = "URL", required = true)]
    urls: Vec<String>,
    /// The JWT sent in the handshake (`chat-server token <user>` prints one).
    #[arg(long)]
    token: String,
    /// The thread to join and post to (1 to 200 characters).
    #[arg(long, value_parser = parse_thread)]
    thread: JoinThreadThreadId,
    /// A PEM file of CA certificates to trust for `https://` URLs, besides
    /// the system's (a private deployment's own CA).
    #[arg(long, value_name = "PEM")]
    ca: Option<std::path::PathBuf>,
}

fn parse_thread(s: &str) -> Result<JoinThreadThreadId, String> {
    JoinThreadThreadId::try_from(s).map_err(|e| format!("invalid thread id: {e}"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let Args {
        urls,
        token,
        thread,
        ca,
    } = args;
    let send_thread = SendMessageThreadId::try_from(thread.as_str())
        .map_err(|e| format!("invalid thread id: {e}"))?;
    // clap requires one `--url`; checked again rather than trusted.
    let Some((first, fallbacks)) = urls.split_first() else {
        return Err("no --url given".to_owned());
    };
    let mut options = ClientOptions::new(first.as_str())
        .fallback_urls(fallbacks.iter().cloned())
        .token(token);
    if let Some(ca) = ca {
        let pem =
            std::fs::read(&ca).map_err(|e| format!("cannot read --ca `{}`: {e}", ca.display()))?;
        options = options.add_root_certificate_pem(pem);
    }

    let rejoin = thread.clone();
    let builder = ChatClient::builder(options).on_reconnect(move |client| {
        let thread = rejoin.clone();
        async move {
            let node = client.raw().current_url().unwrap_or("?").to_owned();
            match client
                .join_thread(JoinThread {
                    thread_id: thread.clone(),
                })
                .await
            {
                Ok(_) => eprintln!("reconnected to {node}; joined thread `{}` again", *thread),
                Err(e) => {
                    eprintln!(
                        "error: reconnected to {node}, but joining `{}` failed: {e}",
                        *thread
                    )
                }
            }
        }
    });
    // Subscribed before connecting, so that nothing the server sends is missed.
    let events = builder.events();
    let client = builder
        .connect()
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", urls.join(", ")))?;
    let printer = tokio::spawn(print_events(events));
    let status = tokio::spawn(report_connection(client.last_error()));

    let result = session(&client, thread, send_thread).await;

    client.disconnect().await;
    drop(client);
    // Everything received before the disconnect is printed: the stream ends
    // once the client is gone.
    if tokio::time::timeout(DRAIN, printer).await.is_err() {
        eprintln!("error: timed out printing the last events");
    }
    status.abort();
    result
}

/// Joins the thread, then sends stdin line by line until the end of input.
async fn session(
    client: &ChatClient,
    thread: JoinThreadThreadId,
    send_thread: SendMessageThreadId,
) -> Result<(), String> {
    client
        .join_thread(JoinThread {
            thread_id: thread.clone(),
        })
        .await
        .map_err(|e| format!("cannot join thread `{}`: {e}", *thread))?;

    // One receiver serves both waits: each uses `wait_for`, which checks the
    // current state first, and they never run at the same time.
    let mut state = client.state();
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let (mut number, mut failed) = (0_u64, 0_u64);
    loop {
        let line = tokio::select! {
            line = lines.next_line() => line.map_err(|e| format!("cannot read stdin: {e}"))?,
            _ = state.wait_for(|s| *s == ConnectionState::Disconnected) => {
                return Err(ended_for_good(client));
            }
        };
        let Some(line) = line else { break };
        number += 1;
        if line.trim().is_empty() {
            continue;
        }
        if let Err(e) = send_line(client, &send_thread, line, &mut state).await {
            failed += 1;
            eprintln!("error: line {number} not sent: {e}");
            if *state.borrow() == ConnectionState::Disconnected {
                return Err(ended_for_good(client));
            }
        }
    }
    match failed {
        0 => Ok(()),
        1 => Err("1 message was not sent".to_owned()),
        n => Err(format!("{n} messages were not sent")),
    }
}

fn ended_for_good(client: &ChatClient) -> String {
    match client.last_error().borrow().as_ref() {
        Some(e) => format!("the connection ended for good: {e}"),
        None => "the connection ended for good".to_owned(),
    }
}

/// Sends one line and waits for its ack; retries `RATE_LIMITED` answers.
async fn send_line(
    client: &ChatClient,
    thread: &SendMessageThreadId,
    line: String,
    state: &mut watch::Receiver<ConnectionState>,
) -> Result<Message, String> {
    let content = SendMessageContent::try_from(line).map_err(|e| format!("content {e}"))?;
    let mut retries = 0;
    loop {
        wait_connected(state).await?;
        let payload = SendMessage {
            content: content.clone(),
            thread_id: thread.clone(),
        };
        match client.send_message(payload).await {
            Ok(message) => return Ok(message),
            Err(ClientError::Server(e))
                if e.code == ErrorCode::RateLimited.as_str() && retries < RATE_LIMIT_RETRIES =>
            {
                retries += 1;
                let wait = retry_after(e.details.as_ref());
                eprintln!("rate limited; retrying in {} ms", wait.as_millis());
                tokio::time::sleep(wait).await;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// The pause a `RATE_LIMITED` answer asks for (`details.retryAfterMs`),
/// bounded.
fn retry_after(details: Option<&Value>) -> Duration {
    let ms = details
        .and_then(|d| d.get("retryAfterMs"))
        .and_then(Value::as_u64)
        .unwrap_or(1000);
    Duration::from_millis(ms.saturating_add(10)).min(MAX_RETRY_AFTER)
}

/// Waits until the client is connected (it may be reconnecting).
async fn wait_connected(state: &mut watch::Receiver<ConnectionState>) -> Result<(), String> {
    let settled = tokio::time::timeout(
        SEND_WAIT,
        state.wait_for(|s| {
            matches!(
                s,
                ConnectionState::Connected | ConnectionState::Disconnected
            )
        }),
    )
    .await;
    match settled {
        Ok(Ok(s)) if *s == ConnectionState::Connected => Ok(()),
        Ok(_) => Err("the connection ended for good".to_owned()),
        Err(_) => Err(format!(
            "not connected after {} s of reconnection attempts",
            SEND_WAIT.as_secs()
        )),
    }
}

/// Reports connection losses and failed reconnection attempts on stderr.
async fn report_connection(mut last_error: watch::Receiver<Option<ConnectionError>>) {
    while last_error.changed().await.is_ok() {
        let line = match last_error.borrow_and_update().as_ref() {
            Some(ConnectionError::Lost(reason)) => {
                format!("connection lost ({reason}); reconnecting")
            }
            Some(e) => format!("{e}"),
            None => continue,
        };
        eprintln!("{line}");
    }
}

/// Prints the thread's events and announcements until the client is gone.
async fn print_events(mut events: ChatEvents) {
    let stdout = std::io::stdout();
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                eprintln!("error: a server event does not match the contract: {e}");
                continue;
            }
        };
        if let ChatServerEvent::Error(e) = &event {
            eprintln!(
                "error: the server rejected `{}`: {}: {}",
                e.event, e.code, e.message
            );
            continue;
        }
        match json_line(&event) {
            Some(Ok(line)) => {
                let mut out = stdout.lock();
                if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                    // stdout is gone (closed pipe): nothing left to print to.
                    return;
                }
            }
            Some(Err(e)) => eprintln!("error: cannot print `{}`: {e}", event.name()),
            None => {}
        }
    }
}

/// The JSON line printed for `event`: its payload with a `type` field naming
/// it; `None` for events this client does not print.
fn json_line(event: &ChatServerEvent) -> Option<serde_json::Result<String>> {
    let payload = match event {
        ChatServerEvent::NewMessage(p) => serde_json::to_value(p),
        ChatServerEvent::Joined(p) => serde_json::to_value(p),
        ChatServerEvent::Left(p) => serde_json::to_value(p),
        ChatServerEvent::TypingIndicator(p) => serde_json::to_value(p),
        ChatServerEvent::Announcement(p) => serde_json::to_value(p),
        ChatServerEvent::MessageRead(_) | ChatServerEvent::Error(_) => return None,
    };
    Some(payload.map(|payload| tagged(event.name(), payload).to_string()))
}

/// `{"type": name, …fields of payload}` (a payload that is not an object goes
/// under `payload`).
fn tagged(name: &str, payload: Value) -> Value {
    let mut line = serde_json::Map::new();
    line.insert("type".to_owned(), Value::from(name));
    match payload {
        Value::Object(fields) => line.extend(fields),
        other => {
            line.insert("payload".to_owned(), other);
        }
    }
    Value::Object(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_contract::{Joined, TypingIndicator};
    use serde_json::json;

    #[test]
    fn events_print_as_tagged_json_objects() {
        let joined = ChatServerEvent::Joined(Joined {
            thread_id: "t1".to_owned(),
            user_id: "ann".to_owned(),
        });
        let line: Value = serde_json::from_str(&json_line(&joined).unwrap().unwrap()).unwrap();
        assert_eq!(
            line,
            json!({"type": "joined", "threadId": "t1", "userId": "ann"})
        );
        let typing = ChatServerEvent::TypingIndicator(TypingIndicator {
            thread_id: "t1".to_owned(),
            user_id: "ann".to_owned(),
            is_typing: true,
        });
        let line: Value = serde_json::from_str(&json_line(&typing).unwrap().unwrap()).unwrap();
        assert_eq!(line["type"], "typing_indicator");
        assert_eq!(line["isTyping"], true);
        let error = ChatServerEvent::Error(chat_contract::runtime::ErrorEvent::new(
            "typing",
            chat_contract::runtime::EventError::access_denied("no"),
        ));
        assert!(json_line(&error).is_none());
    }

    #[test]
    fn announcements_print_as_tagged_json_objects() {
        let announcement = ChatServerEvent::Announcement(chat_contract::Announcement {
            id: "6f1c1c3e-2a4b-4c8d-9e0f-123456789abc".parse().unwrap(),
            text: "maintenance at noon".try_into().unwrap(),
            from: "alice".to_owned(),
            sent_at: "2024-01-01T12:00:00Z".parse().unwrap(),
        });
        let line: Value =
            serde_json::from_str(&json_line(&announcement).unwrap().unwrap()).unwrap();
        assert_eq!(
            line,
            json!({
                "type": "announcement",
                "id": "6f1c1c3e-2a4b-4c8d-9e0f-123456789abc",
                "text": "maintenance at noon",
                "from": "alice",
                "sentAt": "2024-01-01T12:00:00Z",
            })
        );
    }

    #[test]
    fn retry_after_is_bounded() {
        assert_eq!(
            retry_after(Some(&json!({"retryAfterMs": 90}))),
            Duration::from_millis(100)
        );
        assert_eq!(
            retry_after(Some(&json!({"retryAfterMs": u64::MAX}))),
            MAX_RETRY_AFTER
        );
        assert_eq!(retry_after(None), Duration::from_millis(1010));
    }

    #[test]
    fn url_may_be_repeated_and_keeps_its_order() {
        let args = Args::try_parse_from([
            "chat-client",
            "--url",
            "http://gw-1:3000",
            "--token",
            "jwt",
            "--url",
            "http://gw-2:3000",
            "--thread",
            "t1",
        ])
        .unwrap();
        assert_eq!(args.urls, ["http://gw-1:3000", "http://gw-2:3000"]);
        let missing = Args::try_parse_from(["chat-client", "--token", "jwt", "--thread", "t1"]);
        assert!(missing.is_err(), "--url is required");
    }

    #[test]
    fn thread_ids_are_checked() {
        assert!(parse_thread("t1").is_ok());
        assert!(parse_thread("").is_err());
        assert!(parse_thread(&"x".repeat(201)).is_err());
    }
}
