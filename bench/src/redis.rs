//! The redis-server the two-node fan-out scenario shares between its nodes:
//! started by the benchmark on a free loopback port, without persistence,
//! pinned like the servers, and stopped when dropped.

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::servers::{Programs, free_port, log_tail};
use crate::sys;

/// Debian's redis-server, where `apt-get install redis-server` puts it.
const DEBIAN_REDIS_SERVER: &str = "/usr/bin/redis-server";

/// Time allowed for one command (PING, FLUSHALL).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// The redis-server program: Debian's, else the first on `PATH`.
pub(crate) fn program() -> Result<PathBuf, String> {
    let debian = PathBuf::from(DEBIAN_REDIS_SERVER);
    if debian.exists() {
        return Ok(debian);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("redis-server"))
        .find(|p| p.exists())
        .ok_or_else(|| {
            "the two-node fan-out scenario (fanout2) needs redis-server, which is not \
             installed: `apt-get install redis-server` (or leave fanout2 out of --scenarios)"
                .to_owned()
        })
}

/// The version `redis-server --version` prints (`… v=7.0.15 sha=…`), for
/// the report.
pub(crate) fn version(program: &Path) -> String {
    let out = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    out.split_whitespace()
        .find_map(|w| w.strip_prefix("v="))
        .map_or(out.clone(), str::to_owned)
}

/// A running redis-server; killed on drop.
pub(crate) struct Redis {
    child: Child,
    /// Its process id (`taskset` execs the program).
    pub(crate) pid: u32,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    log: PathBuf,
}

impl Redis {
    /// Starts `program` on a free loopback port (no RDB snapshots, no AOF),
    /// pinned to the servers' CPU, and waits until it answers PING.
    pub(crate) async fn start(
        program: &Path,
        programs: &Programs,
        log_dir: &Path,
    ) -> Result<Self, String> {
        let port = free_port().map_err(|e| format!("no free port: {e}"))?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let core = programs.server_core.map(|core| core.to_string());
        let mut cmd =
            sys::pinned_command(programs.taskset.as_deref().zip(core.as_deref()), program);
        let log = log_dir.join("redis-server.log");
        let out = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(log_dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        let mut redis = Self {
            pid: child.id(),
            child,
            addr,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = redis.child.try_wait() {
                return Err(format!(
                    "redis-server exited during startup ({status}):\n{}",
                    log_tail(&redis.log)
                ));
            }
            match redis.command(&["PING"]).await {
                Ok(reply) if reply == "+PONG" => return Ok(redis),
                _ if Instant::now() > deadline => {
                    return Err(format!(
                        "redis-server did not answer PING on {addr} within 10 s:\n{}",
                        log_tail(&redis.log)
                    ));
                }
                _ => sys::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// `redis://127.0.0.1:PORT`, for the nodes' `REDIS_URL`.
    pub(crate) fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Empties every database, so that no round sees another's keys.
    pub(crate) async fn flush(&self) -> Result<(), String> {
        match self.command(&["FLUSHALL"]).await? {
            reply if reply == "+OK" => Ok(()),
            reply => Err(format!("redis FLUSHALL: {reply}")),
        }
    }

    /// Sends one command on a fresh connection; returns the first reply line.
    async fn command(&self, args: &[&str]) -> Result<String, String> {
        let mut request = format!("*{}\r\n", args.len());
        for a in args {
            request.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        let exchange = async {
            let mut tcp = TcpStream::connect(self.addr).await?;
            tcp.write_all(request.as_bytes()).await?;
            let mut reply = Vec::new();
            let mut buf = [0u8; 256];
            while !reply.ends_with(b"\r\n") {
                let n = tcp.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                reply.extend_from_slice(&buf[..n]);
            }
            Ok::<_, std::io::Error>(String::from_utf8_lossy(&reply).trim_end().to_owned())
        };
        tokio::time::timeout(COMMAND_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("redis {}: no reply within {COMMAND_TIMEOUT:?}", args[0]))?
            .map_err(|e| format!("redis {}: {e}", args[0]))
    }

    /// Fails when redis-server has exited.
    pub(crate) fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "redis-server exited ({status}):\n{}",
                log_tail(&self.log)
            )),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Stops redis-server (SIGTERM, then SIGKILL after 2 s) and reaps it, on
/// every path out of the scenario, errors and panics included.
impl Drop for Redis {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        sys::kill(self.pid, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
