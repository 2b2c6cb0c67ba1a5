//! The contract-version handshake against `chat-server` (contract `chat`
//! 1.1.0): generated clients name their contract, a client of another major
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

/// `evcontract_connected_sockets_by_contract_version` of `/chat`, by version.
async fn by_version(server: &Server, version: &str) -> f64 {
    let text = within(WAIT, "GET /metrics", http_get(server.port, "/metrics"))
        .await
        .expect("GET /metrics");
    let key = format!(
        "evcontract_connected_sockets_by_contract_version{{namespace=\"/chat\",contract_version=\"{version}\"}} "
    );
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_major_version_is_refused_with_both_versions() {
    let server = Server::start(&Spec::new(SECRET)).await;
    let token = token_signed_with("ada", SECRET).await;

    // The generated client names chat 1.1.0 and is let in.
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
        "1.4.2",
        Client::connect(raw(&server, token.clone()).contract("chat", "1.4.2")),
    )
    .await
    .expect("1.4.2 connects");
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
        "2.0.0",
        Client::connect(raw(&server, token.clone()).contract("chat", "2.0.0")),
    )
    .await
    .expect_err("2.0.0 is refused");
    match &err {
        ConnectError::ContractMismatch { message } => {
            assert!(message.starts_with("CONTRACT_MISMATCH: "), "{message}");
            assert!(
                message.contains("chat 2.0.0") && message.contains("chat 1.1.0"),
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
    assert_eq!(by_version(&server, "1.1.0").await, 1.0);
    assert_eq!(by_version(&server, "1.4.2").await, 1.0);
    assert_eq!(by_version(&server, "none").await, 1.0);
    drop(generated);
    minor.disconnect().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(by_version(&server, "1.4.2").await, 0.0);
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
        "2.0.0",
        Client::connect(raw(&server, token.clone()).contract("chat", "2.0.0")),
    )
    .await
    .expect("2.0.0 is let in");
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
