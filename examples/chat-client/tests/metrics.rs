//! Prometheus metrics of `chat-server` (`GET /metrics`): known traffic from
//! the generated client, then every counter scraped over HTTP must equal
//! what was sent, exactly.

use std::collections::BTreeMap;
use std::time::Duration;

use chat_contract::chat::client::ChatClient;
use chat_contract::runtime::client::{ClientOptions, ConnectError};
use chat_contract::{JoinThread, SendMessage};
use serde_json::json;

mod support;
use support::{Server, Spec, http_get, http_get_with, token_signed_with, within};

const SECRET: &str = "chat-client-metrics-secret";
const WAIT: Duration = Duration::from_secs(10);

/// Acked `send_message` that pass (the contract allows 20 per 10 s per user,
/// and refused ones count against it too).
const SENT: usize = 15;
/// `send_message` with an empty `content` (`minLength` 1): `INVALID_PAYLOAD`.
const INVALID: usize = 5;
/// `send_message` over the limit: `RATE_LIMITED`.
const LIMITED: usize = 4;

/// The samples of the scrape: `name{labels}` to value.
async fn scrape(server: &Server) -> BTreeMap<String, f64> {
    let response = within(
        WAIT,
        "GET /metrics",
        http_get(server.metrics_port, "/metrics"),
    )
    .await
    .expect("GET /metrics");
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    assert!(body.ends_with("# EOF\n"), "an OpenMetrics document: {body}");
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn sample(samples: &BTreeMap<String, f64>, key: &str) -> f64 {
    *samples
        .get(key)
        .unwrap_or_else(|| panic!("no sample `{key}` in {samples:#?}"))
}

fn options(server: &Server, token: String) -> ClientOptions {
    ClientOptions::new(server.url())
        .token(token)
        .connect_timeout(WAIT)
        .ack_timeout(WAIT)
        .reconnection(false)
}

/// A client of `user`, in thread `thread`.
async fn joined(server: &Server, user: &str, thread: &str) -> ChatClient {
    let client = within(
        WAIT,
        "connect",
        ChatClient::connect(options(server, token_signed_with(user, SECRET).await)),
    )
    .await
    .expect("connects");
    within(
        WAIT,
        "join",
        client.join_thread(JoinThread {
            thread_id: thread.try_into().unwrap(),
        }),
    )
    .await
    .expect("joined");
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scraped_counters_equal_the_traffic_sent() {
    let server = Server::start(&Spec::new(SECRET)).await;

    // One refused connection.
    let bad = within(
        WAIT,
        "connect",
        ChatClient::connect(options(&server, "not-a-jwt".into())),
    )
    .await
    .err()
    .expect("a bad token is refused");
    assert!(matches!(bad, ConnectError::InvalidToken { .. }), "{bad:?}");

    let client = joined(&server, "mia", "metrics").await;
    for i in 0..SENT {
        within(
            WAIT,
            "send",
            client.send_message(SendMessage {
                thread_id: "metrics".try_into().unwrap(),
                content: format!("message {i}").try_into().unwrap(),
            }),
        )
        .await
        .expect("acked");
    }
    let raw = client.raw();
    for _ in 0..INVALID {
        let ack = within(
            WAIT,
            "invalid send",
            raw.emit_with_ack_raw(
                "send_message",
                &json!({ "threadId": "metrics", "content": "" }),
            ),
        )
        .await
        .expect("answered");
        assert_eq!(ack[0]["code"], "INVALID_PAYLOAD", "{ack:?}");
    }
    for _ in 0..LIMITED {
        let ack = within(
            WAIT,
            "limited send",
            raw.emit_with_ack_raw(
                "send_message",
                &json!({ "threadId": "metrics", "content": "x" }),
            ),
        )
        .await
        .expect("answered");
        assert_eq!(ack[0]["code"], "RATE_LIMITED", "{ack:?}");
    }
    let ack = within(
        WAIT,
        "unknown event",
        raw.emit_with_ack_raw("no_such_event", &json!({})),
    )
    .await
    .expect("answered");
    assert_eq!(ack[0]["code"], "UNKNOWN_EVENT", "{ack:?}");

    let m = scrape(&server).await;
    let chat = |name: &str, labels: &str| {
        let key = if labels.is_empty() {
            format!("{name}{{namespace=\"/chat\"}}")
        } else {
            format!("{name}{{namespace=\"/chat\",{labels}}}")
        };
        sample(&m, &key)
    };
    let send = "event=\"send_message\"";
    let attempts = (SENT + INVALID + LIMITED) as f64;
    assert_eq!(chat("evcontract_events_received_total", send), attempts);
    assert_eq!(
        chat("evcontract_events_received_total", "event=\"join_thread\""),
        1.0
    );
    assert_eq!(
        chat("evcontract_events_received_total", "event=\"(unknown)\""),
        1.0
    );
    assert_eq!(
        chat(
            "evcontract_event_errors_total",
            &format!("{send},code=\"INVALID_PAYLOAD\"")
        ),
        INVALID as f64
    );
    assert_eq!(
        chat(
            "evcontract_event_errors_total",
            &format!("{send},code=\"RATE_LIMITED\"")
        ),
        LIMITED as f64
    );
    assert_eq!(
        chat(
            "evcontract_event_errors_total",
            "event=\"(unknown)\",code=\"UNKNOWN_EVENT\""
        ),
        1.0
    );
    // Only the events that passed every check reach the handler.
    assert_eq!(
        chat("evcontract_handler_duration_seconds_count", send),
        SENT as f64
    );
    assert_eq!(
        sample(
            &m,
            "evcontract_handler_duration_seconds_bucket{le=\"+Inf\",namespace=\"/chat\",event=\"send_message\"}"
        ),
        SENT as f64
    );
    assert!(chat("evcontract_handler_duration_seconds_sum", send) > 0.0);
    assert_eq!(chat("evcontract_connects_total", ""), 1.0);
    assert_eq!(chat("evcontract_connected_sockets", ""), 1.0);
    assert_eq!(
        chat(
            "evcontract_connects_refused_total",
            "reason=\"INVALID_TOKEN\""
        ),
        1.0
    );
    // Every answer is an emit of the runtime's: 1 join + SENT + the refused
    // and unknown ones (and each message's room broadcast).
    assert!(sample(&m, "evcontract_emits_total") >= (1 + SENT * 2 + INVALID + LIMITED + 1) as f64);
    assert_eq!(sample(&m, "evcontract_emit_failures_total"), 0.0);
    assert!(sample(&m, "evcontract_http_accepted_total") >= 3.0);

    // Disconnected: the gauge goes back to 0.
    client.disconnect().await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let m = scrape(&server).await;
        if sample(&m, "evcontract_connected_sockets{namespace=\"/chat\"}") == 0.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still connected: {m:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_be_turned_off() {
    let server = Server::start(&Spec::new(SECRET).env("METRICS", "off")).await;
    let response = within(WAIT, "GET /metrics", http_get(server.port, "/metrics"))
        .await
        .expect("an answer");
    assert!(response.starts_with("HTTP/1.0 404"), "{response}");
    assert!(
        http_get(server.metrics_port, "/metrics").await.is_err(),
        "no metrics listener"
    );
}

/// By default the metrics are served on their own loopback listener
/// (`METRICS_ADDR`), not on the public port; on the public port
/// (`METRICS_ADDR=main`) `METRICS_TOKEN` guards them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_not_public_by_default_and_a_token_guards_them() {
    let server = Server::start(&Spec::new(SECRET)).await;
    let public = within(WAIT, "GET /metrics", http_get(server.port, "/metrics"))
        .await
        .expect("an answer");
    assert!(public.starts_with("HTTP/1.0 404"), "{public}");
    let own = within(
        WAIT,
        "GET /metrics",
        http_get(server.metrics_port, "/metrics"),
    )
    .await
    .expect("an answer");
    assert!(own.starts_with("HTTP/1.0 200"), "{own}");

    let guarded = Server::start(
        &Spec::new(SECRET)
            .env("METRICS_ADDR", "main")
            .env("METRICS_TOKEN", "scrape-secret"),
    )
    .await;
    for headers in [
        "",
        "Authorization: Bearer wrong\r\n",
        "Authorization: scrape-secret\r\n",
    ] {
        let refused = within(
            WAIT,
            "GET /metrics",
            http_get_with(guarded.port, "/metrics", headers),
        )
        .await
        .expect("an answer");
        assert!(
            refused.starts_with("HTTP/1.0 401"),
            "{headers:?}: {refused}"
        );
        assert!(!refused.contains("evcontract_"), "{refused}");
    }
    let allowed = within(
        WAIT,
        "GET /metrics",
        http_get_with(
            guarded.port,
            "/metrics",
            "Authorization: Bearer scrape-secret\r\n",
        ),
    )
    .await
    .expect("an answer");
    assert!(allowed.starts_with("HTTP/1.0 200"), "{allowed}");
    assert!(
        allowed.contains("evcontract_connected_sockets"),
        "{allowed}"
    );
}

/// At `debug`, every refused event and connection leaves a line with its
/// code and reason, and a handler's own line carries the event's span
/// (namespace, event, socket, user) without the handler adding it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_logged_and_handler_lines_carry_the_event_span() {
    let spec = Spec {
        log: "evcontract_runtime=debug,chat_server=debug".to_owned(),
        keep_stderr: true,
        ..Spec::new(SECRET)
    };
    let server = Server::start(&spec).await;
    let refused = ChatClient::connect(options(&server, "not-a-jwt".into())).await;
    assert!(refused.is_err());
    let client = joined(&server, "lou", "logged").await;
    let ack = within(
        WAIT,
        "invalid send",
        client.raw().emit_with_ack_raw(
            "send_message",
            &json!({ "threadId": "logged", "content": "" }),
        ),
    )
    .await
    .expect("answered");
    assert_eq!(ack[0]["code"], "INVALID_PAYLOAD");
    client.disconnect().await;
    let log = server.stop().await;

    let line = |needle: &str| {
        log.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with `{needle}` in:\n{log}"))
            .to_owned()
    };
    let refused = line("connection refused: INVALID_TOKEN");
    assert!(
        refused.contains("DEBUG") && refused.contains("/chat"),
        "{refused}"
    );
    let invalid = line("event refused");
    for part in [
        "DEBUG",
        "code=INVALID_PAYLOAD",
        "event=send_message",
        "reason=",
        "user=\"lou\"",
    ] {
        assert!(invalid.contains(part), "`{part}` missing: {invalid}");
    }
    let joined = line("joined the thread");
    for part in [
        "event{",
        "namespace=\"/chat\"",
        "event=\"join_thread\"",
        "user=\"lou\"",
        "socket=",
    ] {
        assert!(joined.contains(part), "`{part}` missing: {joined}");
    }
}
