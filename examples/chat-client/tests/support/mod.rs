//! What the chat-client test files share: the `chat-server` binary, started
//! on a free port with the environment a test gives, probed until it
//! answers, and killed when dropped.
//!
//! The server binary is `$CHAT_SERVER_BIN`, or `chat-server` next to the
//! `chat-client` binary cargo built for these tests (the same target
//! directory, so `CARGO_TARGET_DIR` is honoured); build it first with
//! `cargo build -p chat-server` (scripts/test.sh does).
#![allow(dead_code)] // Each test file uses a part.

use std::future::Future;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

/// How long a server may take to answer after it was started.
const START_WAIT: Duration = Duration::from_secs(15);

pub(crate) fn server_bin() -> PathBuf {
    let bin = match std::env::var_os("CHAT_SERVER_BIN") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_BIN_EXE_chat-client"))
            .with_file_name(format!("chat-server{}", std::env::consts::EXE_SUFFIX)),
    };
    assert!(
        bin.is_file(),
        "the chat-server binary is not at {}: run `cargo build -p chat-server` first \
         (scripts/test.sh does), or point CHAT_SERVER_BIN at it",
        bin.display()
    );
    bin
}

/// Awaits `fut`, failing the test if it takes longer than `limit`.
pub(crate) async fn within<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, fut).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {limit:?}: {what}"),
    }
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The response (head and body) to a plain-HTTP `GET path` on `port`.
pub(crate) async fn http_get(port: u16, path: &str) -> std::io::Result<String> {
    http_get_with(port, path, "").await
}

/// [`http_get`] with more header lines (each ending in `\r\n`).
pub(crate) async fn http_get_with(port: u16, path: &str, headers: &str) -> std::io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{headers}\r\n").as_bytes())
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response)
}

/// Whether a plain-HTTP chat-server answers `GET /healthz` on `port`.
pub(crate) async fn healthz(port: u16) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(2), http_get(port, "/healthz")).await,
        Ok(Ok(response)) if response.starts_with("HTTP/1.") && response.ends_with("ok")
    )
}

/// How to start a server.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    /// `JWT_SECRET`.
    pub(crate) secret: String,
    /// `RUST_LOG`.
    pub(crate) log: String,
    /// Keep what the server writes to stderr (read with [`Server::stop`]).
    pub(crate) keep_stderr: bool,
    /// The server speaks TLS (`TLS_CERT`/`TLS_KEY` in `env`): readiness is
    /// an accepted TCP connection, since `/healthz` needs a TLS client.
    pub(crate) tls: bool,
    /// More environment variables.
    pub(crate) env: Vec<(String, String)>,
}

impl Spec {
    pub(crate) fn new(secret: &str) -> Self {
        Self {
            secret: secret.to_owned(),
            log: "error".to_owned(),
            keep_stderr: false,
            tls: false,
            env: Vec::new(),
        }
    }

    pub(crate) fn env(mut self, name: &str, value: impl Into<String>) -> Self {
        self.env.push((name.to_owned(), value.into()));
        self
    }
}

/// A `chat-server` process, killed when dropped.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) port: u16,
    /// Where its metrics are served (`METRICS_ADDR`, loopback).
    pub(crate) metrics_port: u16,
    tls: bool,
    stderr: Option<tokio::task::JoinHandle<String>>,
}

impl Server {
    /// A server on a free port (retried if another process takes the port
    /// between picking and binding it).
    pub(crate) async fn start(spec: &Spec) -> Self {
        let mut last = String::new();
        for _ in 0..3 {
            match Self::start_on(free_port(), spec).await {
                Ok(server) => return server,
                Err(e) => last = e,
            }
        }
        panic!("chat-server did not start: {last}");
    }

    /// A server on `port`, once it answers.
    pub(crate) async fn start_on(port: u16, spec: &Spec) -> Result<Self, String> {
        let metrics_port = free_port();
        let mut child = Command::new(server_bin())
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
            .env("HEALTH_INTERVAL_MS", "100")
            .env("JWT_SECRET", &spec.secret)
            .env("RUST_LOG", &spec.log)
            .env("NO_COLOR", "1")
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(if spec.keep_stderr {
                Stdio::piped()
            } else {
                Stdio::inherit()
            })
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", server_bin().display()))?;
        let stderr = child.stderr.take().map(|mut err| {
            tokio::spawn(async move {
                let mut bytes = Vec::new();
                let _ = err.read_to_end(&mut bytes).await;
                String::from_utf8_lossy(&bytes).into_owned()
            })
        });
        let mut server = Self {
            child,
            port,
            metrics_port,
            tls: spec.tls,
            stderr,
        };
        let deadline = tokio::time::Instant::now() + START_WAIT;
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("chat-server exited with {status} (port {port})"));
            }
            if server.answers().await {
                return Ok(server);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!(
                    "chat-server did not answer on port {port} within {START_WAIT:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Whether the server is up: `/healthz` over plain HTTP, or an accepted
    /// connection for a TLS server (it listens only once it is ready).
    pub(crate) async fn answers(&self) -> bool {
        if self.tls {
            tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
        } else {
            healthz(self.port).await
        }
    }

    pub(crate) fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub(crate) fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("chat-server exited with {status}");
        }
    }

    /// Kills the process (SIGKILL: no goodbye to the clients) and reaps it.
    pub(crate) async fn kill(mut self) {
        let _ = self.child.kill().await;
    }

    /// Kills the process and returns everything it wrote to stderr (empty
    /// unless the spec kept it).
    pub(crate) async fn stop(mut self) -> String {
        let _ = self.child.kill().await;
        match self.stderr.take() {
            Some(stderr) => within(Duration::from_secs(10), "stderr closes", stderr)
                .await
                .expect("the stderr reader"),
            None => String::new(),
        }
    }
}

/// A token for `user`, signed by `chat-server token` with `secret`.
pub(crate) async fn token_signed_with(user: &str, secret: &str) -> String {
    let out = within(
        Duration::from_secs(10),
        "chat-server token",
        Command::new(server_bin())
            .args(["token", user])
            .env("JWT_SECRET", secret)
            .output(),
    )
    .await
    .expect("chat-server token runs");
    assert!(out.status.success(), "chat-server token failed: {out:?}");
    String::from_utf8(out.stdout)
        .expect("a UTF-8 token")
        .trim()
        .to_owned()
}

/// A TCP relay on a free loopback port in front of a server, whose
/// connections the test can cut (no WebSocket or Socket.IO goodbye: the
/// sockets are just dropped) and which refuses new ones while it is down.
pub(crate) struct CutProxy {
    pub(crate) port: u16,
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// While set, what the server sends is dropped (the client's bytes
    /// still reach it): an answer lost on the way.
    muted: std::sync::Arc<std::sync::atomic::AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl CutProxy {
    /// A relay to `127.0.0.1:upstream`, up.
    pub(crate) async fn start(upstream: u16) -> Self {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let port = listener.local_addr().expect("bound").port();
        let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let muted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let (flag, cuts, mute) = (up.clone(), cut.subscribe(), muted.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !flag.load(Ordering::SeqCst) {
                    continue; // dropped: refused while down
                }
                let mut cuts = cuts.clone();
                // Only cuts from now on end this connection.
                cuts.borrow_and_update();
                let mute = mute.clone();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    else {
                        return;
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let to_client = async {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            match sr.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(_) if mute.load(Ordering::SeqCst) => {}
                                Ok(n) => {
                                    if cw.write_all(&buf[..n]).await.is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                    };
                    tokio::select! {
                        _ = tokio::io::copy(&mut cr, &mut sw) => {}
                        () = to_client => {}
                        _ = cuts.changed() => {}
                    }
                });
            }
        });
        Self {
            port,
            up,
            muted,
            cut,
            task,
        }
    }

    /// Drops what the servers send from now on, until `up`.
    pub(crate) fn mute(&self) {
        self.muted.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Drops every relayed connection and refuses new ones until `up`.
    pub(crate) fn down(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    /// The flag that [`up`](Self::up) sets, to set it later from a task.
    pub(crate) fn up_handle(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        self.up.clone()
    }

    /// Accepts connections again (and relays both ways).
    pub(crate) fn up(&self) {
        self.muted.store(false, std::sync::atomic::Ordering::SeqCst);
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A `redis-server` of the test's own on a free loopback port (no
/// persistence), killed when dropped: `$REDIS_SERVER_BIN`, or
/// `redis-server` on the PATH (scripts/test.sh installs Debian's).
pub(crate) struct Redis {
    child: Child,
    pub(crate) url: String,
}

impl Redis {
    pub(crate) async fn start() -> Self {
        let bin = std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".to_owned());
        let port = free_port();
        let child = Command::new(&bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin} (apt-get install redis-server): {e}"));
        let deadline = tokio::time::Instant::now() + START_WAIT;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "redis-server did not listen on port {port}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self {
            child,
            url: format!("redis://127.0.0.1:{port}"),
        }
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("redis-server runs").to_string();
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// Stops the process (SIGSTOP): connections stay open, nothing answers.
    pub(crate) fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused process go on (SIGCONT).
    pub(crate) fn resume(&self) {
        self.signal("-CONT");
    }
}

/// Joins `thread` (acked), failing the test after `limit`.
pub(crate) async fn join(
    client: &chat_contract::chat::client::ChatClient,
    thread: &str,
    limit: Duration,
) {
    within(
        limit,
        "join_thread",
        client.join_thread(chat_contract::JoinThread {
            thread_id: thread.try_into().expect("a valid thread id"),
        }),
    )
    .await
    .expect("join_thread succeeds");
}

/// Waits (at most `limit`) until the connection state satisfies `f`.
pub(crate) async fn wait_for(
    state: &mut tokio::sync::watch::Receiver<chat_contract::runtime::client::ConnectionState>,
    what: &str,
    limit: Duration,
    f: impl Fn(&chat_contract::runtime::client::ConnectionState) -> bool,
) {
    within(limit, what, state.wait_for(|s| f(s)))
        .await
        .expect("state");
}
