//! What `chat-server` answers at `/` in a browser: the built web app when
//! there is one, otherwise a page that says how to build it (never a bare
//! 404 for a newcomer who ran the server first).

use std::time::Duration;

mod support;
use support::{Server, Spec, http_get, within};

const SECRET: &str = "chat-client-web-secret";
const WAIT: Duration = Duration::from_secs(10);

/// Status line and body of `GET path`.
async fn get(server: &Server, path: &str) -> (String, String) {
    let response = within(WAIT, "GET", http_get(server.port, path))
        .await
        .expect("GET");
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_built_app_is_served_at_the_root() {
    let dist = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dist.path().join("index.html"),
        "<!doctype html><title>chat-web build</title>",
    )
    .expect("index.html");
    std::fs::create_dir(dist.path().join("assets")).expect("assets");
    std::fs::write(dist.path().join("assets/app.js"), "console.log('chat');").expect("app.js");
    let server =
        Server::start(&Spec::new(SECRET).env("WEB_DIR", dist.path().display().to_string())).await;

    let (status, body) = get(&server, "/").await;
    assert!(status.contains(" 200"), "{status}");
    assert_eq!(body, "<!doctype html><title>chat-web build</title>");
    let (status, body) = get(&server, "/assets/app.js").await;
    assert!(status.contains(" 200"), "{status}");
    assert_eq!(body, "console.log('chat');");
    // The server's own routes still win over the app's folder.
    let (_, body) = get(&server, "/healthz").await;
    assert_eq!(body, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_built_app_the_root_says_how_to_build_it() {
    let empty = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&Spec {
        keep_stderr: true,
        log: "info".to_owned(),
        ..Spec::new(SECRET).env("WEB_DIR", empty.path().display().to_string())
    })
    .await;

    let (status, page) = get(&server, "/").await;
    assert!(status.contains(" 200"), "{status}");
    assert!(page.starts_with("<!doctype html>"), "{page}");
    for needle in [
        "npm ci &amp;&amp; npm run build:chat-web",
        "cargo run --release -p chat-server",
        "WEB_DIR",
        "<a href=\"/healthz\">",
        // JWT_SECRET is set, so no development token route is offered.
        "chat-server token &lt;user&gt;",
    ] {
        assert!(page.contains(needle), "`{needle}` missing from {page}");
    }
    assert!(!page.contains("/dev/token"), "{page}");
    let (status, _) = get(&server, "/chat.js").await;
    assert!(status.contains(" 404"), "{status}");

    let log = server.stop().await;
    assert!(
        log.contains("holds no index.html: GET / explains how to build it"),
        "{log}"
    );
}
