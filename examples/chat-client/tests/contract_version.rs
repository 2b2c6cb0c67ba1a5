//! The contract-version handshake against `chat-server` (contract `chat`
//! 2.1.0): generated clients name their contract, a client of another major
//! version is refused with `CONTRACT_MISMATCH` naming both versions (or let
//! in, as configured), and connected sockets are counted per version.

use std::time::Duration;

use chat_contract::chat::client::ChatClient;
use chat_contract::runtime::client::{Client, ClientOptions, ConnectError};

mod support;
use support::{Server, Spec, http_get, token_signed_with, within};

const SECRET: &str = "chat-client-contract-version-secret";
const WAIT: Duration = Duration::from_secs(10);

fn raw(server: &Server, token: String) -> ClientOptions {
    ClientOptions::new(server.url())
        .namespace("/chat")
        .token(token)
        .reconnection(false)
}

/// The server's metrics, from its metrics listener.
async fn metrics(server: &Server) -> String {
    within(
        WAIT,
        "GET /metrics",
        http_get(server.metrics_port, "/metrics"),
    )
    .await
    .expect("GET /metrics")
}

/// `evcontract_connected_sockets_by_contract_version` of `/chat`, by version.
async fn by_version(server: &Server, version: &str) -> f64 {
    let text = metrics(server).await;
    let key = format!(
        "evcontract_connected_sockets_by_contract_version{{namespace=\"/chat\",contract_version=\"{version}\"}} "
    );
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// [`by_version`] once it reads `expected`, or after [`WAIT`]: the server
/// counts a socket in its connect handler, which may still be running when
/// the client already has its CONNECT answer (and likewise on disconnect).
async fn settled_by_version(server: &Server, version: &str, expected: f64) -> f64 {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let value = by_version(server, version).await;
        if value == expected || tokio::time::Instant::now() >= deadline {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_major_version_is_refused_with_both_versions() {
    let server = Server::start(&Spec::new(SECRET)).await;
    let token = token_signed_with("ada", SECRET).await;

    // The generated client names chat 2.1.0 and is let in.
    let generated = within(
        WAIT,
        "generated client",
        ChatClient::connect(raw(&server, token.clone())),
    )
    .await
    .expect("the generated client connects");
    // A compatible newer minor is let in too.
    let minor = within(
        WAIT,
        "2.4.2",
        Client::connect(raw(&server, token.clone()).contract("chat", "2.4.2")),
    )
    .await
    .expect("2.4.2 connects");
    // A plain client that names no version is let in (the default).
    let plain = within(
        WAIT,
        "unversioned",
        Client::connect(raw(&server, token.clone())),
    )
    .await
    .expect("an unversioned client connects");

    // Another major: refused, with both versions in the message.
    let err = within(
        WAIT,
        "1.1.0",
        Client::connect(raw(&server, token.clone()).contract("chat", "1.1.0")),
    )
    .await
    .expect_err("1.1.0 is refused");
    match &err {
        ConnectError::ContractMismatch { message } => {
            assert!(message.starts_with("CONTRACT_MISMATCH: "), "{message}");
            assert!(
                message.contains("chat 1.1.0") && message.contains("chat 2.1.0"),
                "{message}"
            );
        }
        other => panic!("expected ContractMismatch, got {other:?}"),
    }
    // Another contract's name: refused too.
    let err = within(
        WAIT,
        "other",
        Client::connect(raw(&server, token).contract("shop", "1.0.0")),
    )
    .await
    .expect_err("another contract is refused");
    assert!(
        matches!(err, ConnectError::ContractMismatch { .. }),
        "{err:?}"
    );

    // Counted per version, on connect and on disconnect.
    assert_eq!(settled_by_version(&server, "2.1.0", 1.0).await, 1.0);
    assert_eq!(settled_by_version(&server, "2.4.2", 1.0).await, 1.0);
    assert_eq!(settled_by_version(&server, "none", 1.0).await, 1.0);
    drop(generated);
    minor.disconnect().await;
    assert_eq!(settled_by_version(&server, "2.4.2", 0.0).await, 0.0);
    drop(plain);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policy_is_configurable() {
    let server = Server::start(
        &Spec::new(SECRET)
            .env("CONTRACT_MISMATCH", "allow")
            .env("UNVERSIONED_CLIENTS", "refuse"),
    )
    .await;
    let token = token_signed_with("ada", SECRET).await;
    // Allowed (and logged) despite another major version.
    within(
        WAIT,
        "3.0.0",
        Client::connect(raw(&server, token.clone()).contract("chat", "3.0.0")),
    )
    .await
    .expect("3.0.0 is let in");
    // Refused for naming no version.
    let err = within(WAIT, "unversioned", Client::connect(raw(&server, token)))
        .await
        .expect_err("an unversioned client is refused");
    match err {
        ConnectError::ContractMismatch { message } => {
            assert!(message.contains("names no contract version"), "{message}");
        }
        other => panic!("expected ContractMismatch, got {other:?}"),
    }
}

/// The handshake is read with bounds before anything of it is kept: an
/// oversized or malformed version is refused with `INVALID_AUTH` (the
/// message quotes a bounded part of it), even where mismatches are allowed,
/// and only versions the contract accepts become metric labels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_versions_are_bounded_before_they_are_kept() {
    let server = Server::start(&Spec::new(SECRET).env("CONTRACT_MISMATCH", "allow")).await;
    let token = token_signed_with("ada", SECRET).await;
    // `ClientOptions::contract` takes what generated code has: `'static` text.
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    // Just under the 1 MiB frame limit, with the token around it.
    let huge = leak(format!("2.0.0-{}", "x".repeat(1_000_000)));
    for (name, version) in [
        ("chat", huge),
        ("chat", "2.0"),
        ("chat", "2.0.0\nforged log line"),
        (leak("c".repeat(65)), "2.0.0"),
    ] {
        let err = within(
            WAIT,
            "malformed version",
            Client::connect(raw(&server, token.clone()).contract(name, version)),
        )
        .await
        .expect_err("a malformed version is refused");
        match err {
            ConnectError::Refused { message, .. } => {
                assert!(message.starts_with("INVALID_AUTH: "), "{message}");
                assert!(message.len() < 200, "{} bytes", message.len());
                assert!(!message.contains('\n'), "{message}");
            }
            other => panic!("expected INVALID_AUTH, got {other:?}"),
        }
    }
    // Mismatched versions let in by the policy are labelled `other`, never
    // by their own text.
    let mut kept = Vec::new();
    for i in 0..40 {
        let version = leak(format!("9.0.{i}-probe"));
        // One user each: a user may hold 32 connections.
        let token = token_signed_with(&format!("probe{i}"), SECRET).await;
        kept.push(
            within(
                WAIT,
                "mismatch allowed",
                Client::connect(raw(&server, token).contract("chat", version)),
            )
            .await
            .expect("allowed by the policy"),
        );
    }
    let text = metrics(&server).await;
    assert!(
        !text.contains("probe"),
        "a refused or mismatched version became a label"
    );
    assert!(
        !text.contains("xxxxxxxx"),
        "the oversized version reached the metrics"
    );
    assert_eq!(settled_by_version(&server, "other", 40.0).await, 40.0);
    assert!(text.len() < 100_000, "{} bytes of metrics", text.len());
    drop(kept);
}
