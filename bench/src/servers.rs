//! The three servers under test, started and stopped by the benchmark.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::sys;

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    /// (A) the generated example server, `chat-server`.
    Generated,
    /// (B) raw socketioxide, `bench-raw-server`.
    Raw,
    /// (C) Node socket.io, `bench/node/server.js`.
    Node,
    /// (A0) `chat-server` with its Prometheus metrics off (`METRICS=off`):
    /// what counting costs, against (A) where they are on.
    #[serde(rename = "generated-nometrics")]
    GeneratedNoMetrics,
    /// (A1) `chat-server` with its room history off (`HISTORY=off`): what
    /// numbering and keeping every thread event costs, against (A).
    #[serde(rename = "generated-nohistory")]
    GeneratedNoHistory,
}

impl Kind {
    /// In the order the rounds alternate.
    pub(crate) const ALL: [Kind; 5] = [
        Kind::Generated,
        Kind::Raw,
        Kind::Node,
        Kind::GeneratedNoMetrics,
        Kind::GeneratedNoHistory,
    ];

    /// The generated server with one feature off: measured beside (A) in
    /// the fan-out scenarios only.
    pub(crate) fn is_variant(self) -> bool {
        matches!(self, Kind::GeneratedNoMetrics | Kind::GeneratedNoHistory)
    }

    /// Short label (JSON, tables).
    pub(crate) fn label(self) -> &'static str {
        match self {
            Kind::Generated => "generated",
            Kind::Raw => "raw",
            Kind::Node => "node",
            Kind::GeneratedNoMetrics => "generated-nometrics",
            Kind::GeneratedNoHistory => "generated-nohistory",
        }
    }

    /// Column title in BENCHMARKS.md.
    pub(crate) fn title(self) -> &'static str {
        match self {
            Kind::Generated => "A: generated (chat-server)",
            Kind::Raw => "B: raw socketioxide",
            Kind::Node => "C: Node socket.io",
            Kind::GeneratedNoMetrics => "A0: generated, metrics off",
            Kind::GeneratedNoHistory => "A1: generated, history off",
        }
    }
}

/// A configuration of the two-node fan-out scenario: which server, how many
/// nodes, and whether they share rooms through Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) enum Setup {
    /// Two `chat-server` processes with `REDIS_URL` on one redis-server.
    #[serde(rename = "generated-two-node")]
    GeneratedCluster,
    /// One `chat-server`, no Redis.
    #[serde(rename = "generated-one-node")]
    GeneratedSingle,
    /// Two `bench/node/server.js` processes with `@socket.io/redis-adapter`.
    #[serde(rename = "node-two-node")]
    NodeCluster,
    /// (A1) two nodes: `GeneratedCluster` with the threads' history off,
    /// to price keeping every thread event in Redis Streams.
    #[serde(rename = "generated-nohistory-two-node")]
    GeneratedClusterNoHistory,
}

impl Setup {
    /// In the order the rounds alternate.
    pub(crate) const ALL: [Setup; 4] = [
        Setup::GeneratedCluster,
        Setup::GeneratedSingle,
        Setup::NodeCluster,
        Setup::GeneratedClusterNoHistory,
    ];

    /// Short label (JSON, log lines).
    pub(crate) fn label(self) -> &'static str {
        match self {
            Setup::GeneratedCluster => "generated-two-node",
            Setup::GeneratedSingle => "generated-one-node",
            Setup::NodeCluster => "node-two-node",
            Setup::GeneratedClusterNoHistory => "generated-nohistory-two-node",
        }
    }

    /// Column title in BENCHMARKS.md.
    pub(crate) fn title(self) -> &'static str {
        match self {
            Setup::GeneratedCluster => "generated, two nodes + Redis",
            Setup::GeneratedSingle => "generated, one node",
            Setup::NodeCluster => "Node socket.io, two nodes + Redis",
            Setup::GeneratedClusterNoHistory => "A1: generated, history off, two nodes + Redis",
        }
    }

    /// The server program of every node.
    pub(crate) fn kind(self) -> Kind {
        match self {
            Setup::GeneratedCluster | Setup::GeneratedSingle => Kind::Generated,
            Setup::NodeCluster => Kind::Node,
            Setup::GeneratedClusterNoHistory => Kind::GeneratedNoHistory,
        }
    }

    /// Server processes.
    pub(crate) fn nodes(self) -> usize {
        match self {
            Setup::GeneratedSingle => 1,
            Setup::GeneratedCluster | Setup::NodeCluster | Setup::GeneratedClusterNoHistory => 2,
        }
    }

    /// Whether the nodes get `REDIS_URL` (and redis-server's CPU counts).
    pub(crate) fn uses_redis(self) -> bool {
        self.nodes() > 1
    }
}

/// Where the server programs are.
#[derive(Debug, Clone)]
pub(crate) struct Programs {
    /// `target/<profile>/chat-server`.
    pub(crate) chat_server: PathBuf,
    /// `target/<profile>/bench-raw-server`.
    pub(crate) raw_server: PathBuf,
    /// `bench/node/server.js`.
    pub(crate) node_script: PathBuf,
    /// `taskset`, when present (CPU pinning).
    pub(crate) taskset: Option<PathBuf>,
    /// The CPU the servers are pinned to, when pinning.
    pub(crate) server_core: Option<usize>,
}

/// A running server.
pub(crate) struct Server {
    /// Which server.
    pub(crate) kind: Kind,
    child: Child,
    /// Its process id (`taskset` execs the program, so the pid is the server's).
    pub(crate) pid: u32,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    log: PathBuf,
}

pub(crate) fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The last lines of a log file, for error messages.
pub(crate) fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

impl Server {
    /// Starts `kind` on a free loopback port, logging to `log_dir`, and waits
    /// until it accepts TCP connections (at most 30 s).
    pub(crate) async fn start(
        kind: Kind,
        programs: &Programs,
        secret: &str,
        log_dir: &Path,
        tag: &str,
    ) -> Result<Self, String> {
        Self::start_with(kind, programs, secret, log_dir, tag, &[]).await
    }

    /// [`Server::start`] with more environment variables (`REDIS_URL`).
    pub(crate) async fn start_with(
        kind: Kind,
        programs: &Programs,
        secret: &str,
        log_dir: &Path,
        tag: &str,
        env: &[(&str, &str)],
    ) -> Result<Self, String> {
        Self::start_under(
            kind,
            programs,
            secret,
            log_dir,
            tag,
            env,
            &[],
            Duration::from_secs(30),
        )
        .await
    }

    /// [`Server::start_with`] run by `wrapper` (a program and its arguments,
    /// such as valgrind; empty: none), waiting at most `ready_within` for
    /// it to listen.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn start_under(
        kind: Kind,
        programs: &Programs,
        secret: &str,
        log_dir: &Path,
        tag: &str,
        env: &[(&str, &str)],
        wrapper: &[String],
        ready_within: Duration,
    ) -> Result<Self, String> {
        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let (mut program, mut args): (PathBuf, Vec<PathBuf>) = match kind {
            Kind::Generated | Kind::GeneratedNoMetrics | Kind::GeneratedNoHistory => {
                (programs.chat_server.clone(), vec![])
            }
            Kind::Raw => (programs.raw_server.clone(), vec![]),
            Kind::Node => (PathBuf::from("node"), vec![programs.node_script.clone()]),
        };
        if let Some((first, rest)) = wrapper.split_first() {
            args.insert(0, program);
            args.splice(0..0, rest.iter().map(PathBuf::from));
            program = PathBuf::from(first);
        }
        let core = programs.server_core.map(|core| core.to_string());
        let mut cmd =
            sys::pinned_command(programs.taskset.as_deref().zip(core.as_deref()), &program);
        let log = log_dir.join(format!("{}-{tag}.log", kind.label()));
        let out = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        cmd.args(&args)
            .env("PORT", port.to_string())
            .env("HOST", "127.0.0.1")
            .env("JWT_SECRET", secret)
            // The example's /health broadcast has no subscriber in the
            // benchmark; keep its timer out of the measurements.
            .env("HEALTH_INTERVAL_MS", "3600000")
            // Every client of the benchmark connects from 127.0.0.1: lift
            // chat-server's per-address connection limit (1,000 by default)
            // above the idle scenario's 10,000.
            .env("MAX_CONNECTIONS_PER_IP", "1000000")
            // And the total (100,000 by default) above the largest idle level.
            .env("MAX_CONNECTIONS", "1000000")
            // The scale scenario's broadcast to all comes from this user.
            .env("ADMIN_USERS", ADMIN)
            // Several servers run at once: each metrics listener on a port
            // of its own (the benchmark does not scrape them).
            .env("METRICS_ADDR", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .env("NODE_ENV", "production")
            .env(
                "METRICS",
                if kind == Kind::GeneratedNoMetrics {
                    "off"
                } else {
                    "on"
                },
            )
            .env(
                "HISTORY",
                if kind == Kind::GeneratedNoHistory {
                    "off"
                } else {
                    "on"
                },
            )
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        let mut server = Self {
            kind,
            pid: child.id(),
            child,
            addr,
            log,
        };
        server.wait_ready(ready_within).await?;
        Ok(server)
    }

    async fn wait_ready(&mut self, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "{} exited during startup ({status}):\n{}",
                    self.kind.label(),
                    log_tail(&self.log)
                ));
            }
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} did not listen on {} within {limit:?}:\n{}",
                    self.kind.label(),
                    self.addr,
                    log_tail(&self.log)
                ));
            }
            sys::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The server's resident set size in bytes.
    pub(crate) fn rss_bytes(&self) -> Result<u64, String> {
        sys::rss_bytes(self.pid).map_err(|e| format!("{} rss: {e}", self.kind.label()))
    }

    /// Fails when the server has exited.
    pub(crate) fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "{} exited ({status}):\n{}",
                self.kind.label(),
                log_tail(&self.log)
            )),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Stops the server (SIGTERM, then SIGKILL after 5 s) and reaps it.
    pub(crate) async fn stop(mut self) {
        sys::kill(self.pid, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            sys::sleep(Duration::from_millis(20)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server left running on an error path (or a panic) is killed.
impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The user the scale scenario's servers accept announcements from
/// (`ADMIN_USERS`).
pub(crate) const ADMIN: &str = "bench-admin";
