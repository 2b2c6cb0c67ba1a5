//! TLS end to end: `chat-server` serving HTTPS/WSS itself (`TLS_CERT`,
//! `TLS_KEY`) with a certificate signed by a CA made in the test (rcgen), and
//! the generated Rust client and the `chat-client` binary connecting with
//! `https://` URLs: accepted with the CA, refused without it with a
//! certificate error (not "unreachable").

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use chat_contract::chat::client::ChatClient;
use chat_contract::runtime::client::{ClientOptions, ConnectError, TlsRoots};
use chat_contract::{JoinThread, SendMessage};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

mod support;
use support::{Server, Spec, token_signed_with, within};

const SECRET: &str = "chat-client-tls-secret";
const WAIT: Duration = Duration::from_secs(10);

/// A CA's certificate (PEM), and a server certificate and key it signed for
/// `127.0.0.1` and `localhost`, written to `dir` as `ca.pem`, `server.pem`
/// and `server.key`.
fn make_certificates(dir: &Path) -> String {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "evcontract test CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().expect("server key");
    let server_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("server params");
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .expect("server certificate");

    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), server_cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
    ca_cert.pem()
}

/// A TLS chat-server with a fresh CA; returns the server, the CA's PEM and
/// the folder holding the files (removed when dropped).
async fn tls_server() -> (Server, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let ca = make_certificates(dir.path());
    let mut spec = Spec::new(SECRET)
        .env(
            "TLS_CERT",
            dir.path().join("server.pem").display().to_string(),
        )
        .env(
            "TLS_KEY",
            dir.path().join("server.key").display().to_string(),
        );
    spec.tls = true;
    (Server::start(&spec).await, ca, dir)
}

fn options(server: &Server, token: String) -> ClientOptions {
    ClientOptions::new(server.url())
        .token(token)
        .connect_timeout(WAIT)
        .ack_timeout(WAIT)
        .reconnection(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generated_client_connects_over_tls_with_the_ca() {
    let (server, ca, _dir) = tls_server().await;
    assert!(server.url().starts_with("https://"));
    let token = token_signed_with("tess", SECRET).await;
    let client = within(
        WAIT,
        "connect",
        ChatClient::connect(
            options(&server, token)
                .tls_roots(TlsRoots::None)
                .add_root_certificate_pem(ca),
        ),
    )
    .await
    .expect("connects with the test CA");
    let joined = within(
        WAIT,
        "join",
        client.join_thread(JoinThread {
            thread_id: "tls".try_into().unwrap(),
        }),
    )
    .await
    .expect("join acked");
    assert_eq!(joined.members, ["tess"]);
    let sent = within(
        WAIT,
        "send",
        client.send_message(SendMessage {
            thread_id: "tls".try_into().unwrap(),
            content: "over TLS".try_into().unwrap(),
        }),
    )
    .await
    .expect("send acked");
    assert_eq!(sent.content, "over TLS");
    client.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_ca_the_certificate_is_refused_with_a_tls_error() {
    let (server, _ca, _dir) = tls_server().await;
    let token = token_signed_with("tess", SECRET).await;
    for roots in [TlsRoots::Platform, TlsRoots::WebPki] {
        let err = within(
            WAIT,
            "connect",
            ChatClient::connect(options(&server, token.clone()).tls_roots(roots)),
        )
        .await
        .err()
        .unwrap_or_else(|| panic!("{roots:?}: a certificate from an unknown CA was accepted"));
        assert!(matches!(err, ConnectError::Tls(_)), "{roots:?}: {err:?}");
        let text = err.to_string();
        assert!(
            text.contains("TLS failed") && text.contains("UnknownIssuer"),
            "{roots:?}: {text}"
        );
        assert!(text.contains(&server.url()), "names the node: {text}");
    }

    // No roots at all, and a CA file that is not PEM: configuration errors
    // before any network work.
    let err = ChatClient::connect(options(&server, token.clone()).tls_roots(TlsRoots::None))
        .await
        .err()
        .expect("no roots");
    assert!(matches!(err, ConnectError::Config(_)), "{err:?}");
    let err = ChatClient::connect(
        options(&server, token.clone()).add_root_certificate_pem(b"not a certificate".to_vec()),
    )
    .await
    .err()
    .expect("a bad PEM");
    assert!(
        matches!(&err, ConnectError::Config(m) if m.contains("no `CERTIFICATE` block")),
        "{err:?}"
    );

    // A plain `http://` URL to the TLS port: the server does not answer
    // HTTP, and that is not a certificate problem.
    let plain = server.url().replace("https://", "http://");
    let err = ChatClient::connect(
        ClientOptions::new(plain)
            .token(token)
            .connect_timeout(WAIT)
            .reconnection(false),
    )
    .await
    .err()
    .expect("plain HTTP to a TLS port");
    assert!(matches!(err, ConnectError::Unreachable(_)), "{err:?}");
}

/// The `chat-client` binary with `--ca`: sends a line and exits 0; without
/// it: exit 1 and a TLS error on stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_terminal_client_takes_a_ca_file() {
    let (server, _ca, dir) = tls_server().await;
    let token = token_signed_with("tom", SECRET).await;
    let run = |ca: Option<&Path>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_chat-client"));
        cmd.args(["--url", &server.url(), "--token", &token, "--thread", "tls"]);
        if let Some(ca) = ca {
            cmd.arg("--ca").arg(ca);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        async move {
            let mut child = cmd.spawn().expect("chat-client runs");
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(b"hello over TLS\n").await.unwrap();
            drop(stdin);
            within(WAIT * 2, "chat-client ends", child.wait_with_output())
                .await
                .expect("chat-client output")
        }
    };
    let ok = run(Some(&dir.path().join("ca.pem"))).await;
    let stderr = String::from_utf8_lossy(&ok.stderr);
    assert!(ok.status.success(), "with --ca: {stderr}");
    assert!(
        String::from_utf8_lossy(&ok.stdout).contains("hello over TLS"),
        "the message came back: {ok:?}"
    );

    let refused = run(None).await;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("TLS failed"), "{stderr}");
}
