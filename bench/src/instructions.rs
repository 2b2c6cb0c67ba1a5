//! Instruction counts: the server's work per delivery and per ack counted by
//! `valgrind --tool=callgrind` on a fixed short workload, a figure that
//! does not move with the machine's other load the way CPU time does
//! (`perf stat` would be cheaper but is not available on every kernel).
//!
//! Each server runs under callgrind; its counters are zeroed, then the
//! fan-out flow runs with `M` and then `2M` messages (fresh clients each
//! time), the counters dumped after each. Connecting and joining cost the
//! same in both, so the difference is the work of `M` messages' deliveries
//! alone. Request/ack likewise with `K` and `2K` sends per client.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::scenarios::{self, Sizes};
use crate::servers::{Kind, Programs, Server};

/// Fan-out receivers under callgrind.
const RECEIVERS: usize = 40;
/// Fan-out messages of the first pass (the second sends twice as many);
/// 20 per receiver at most, the contract's rate limit.
const MESSAGES: usize = 400;
/// Request/ack clients under callgrind.
const CLIENTS: usize = 100;
/// Request/ack sends per client in the first pass (twice in the second).
const SENDS: usize = 10;

/// One server's instruction counts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InstrRun {
    /// Which server.
    pub(crate) server: Kind,
    /// Round number (from 1).
    pub(crate) round: usize,
    /// Instructions per delivery, fan-out with 10 in flight.
    pub(crate) per_delivery: f64,
    /// Deliveries the difference covers.
    pub(crate) deliveries: u64,
    /// Instructions per ack, request/ack.
    pub(crate) per_ack: f64,
    /// Acks the difference covers.
    pub(crate) acks: u64,
}

fn callgrind_control(args: &[&str]) -> Result<String, String> {
    // vgdb names its shared-memory file after $USER and $HOST: the server
    // runs with HOST=127.0.0.1 (its listen address), so must the caller.
    let out = Command::new("callgrind_control")
        .env("HOST", "127.0.0.1")
        .args(args)
        .output()
        .map_err(|e| format!("callgrind_control: {e}"))?;
    if out.status.success() {
        Ok(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    } else {
        Err(format!(
            "callgrind_control {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The `totals:` (or `summary:`) instruction count of a callgrind dump.
fn dump_total(path: &Path) -> Result<u64, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
                .and_then(|n| n.split_whitespace().next()?.parse().ok())
        })
        .ok_or_else(|| format!("{}: no totals line", path.display()))
}

/// Dumps the counters (callgrind resets them) and returns the dump's
/// total: dumps are numbered `out.1`, `out.2`, … in order.
async fn dump(pid: u32, out: &Path, number: usize) -> Result<u64, String> {
    let said = callgrind_control(&["-d", &pid.to_string()])?;
    let path = PathBuf::from(format!("{}.{number}", out.display()));
    // The dump is written by the client process itself: wait for it.
    for _ in 0..200 {
        if let Ok(total) = dump_total(&path) {
            return Ok(total);
        }
        crate::sys::sleep(Duration::from_millis(50)).await;
    }
    dump_total(&path).map_err(|e| format!("{e} (callgrind_control said: {})", said.trim()))
}

/// Counts the instructions of `kind` per delivery and per ack.
pub(crate) async fn count(
    kind: Kind,
    programs: &Programs,
    secret: &str,
    work: &Path,
    base: &Sizes,
    round: usize,
) -> Result<InstrRun, String> {
    let out = work.join(format!("callgrind-{}-{round}.out", kind.label()));
    let wrapper = [
        "valgrind".to_owned(),
        "--tool=callgrind".to_owned(),
        format!("--callgrind-out-file={}", out.display()),
    ];
    let tag = format!("instr-{round}");
    let mut server = Server::start_under(
        kind,
        programs,
        secret,
        work,
        &tag,
        &[],
        &wrapper,
        Duration::from_secs(120),
    )
    .await?;
    let pid = server.pid.to_string();
    callgrind_control(&["-z", &pid])?;
    let sized = |messages: usize, per_client: usize| Sizes {
        receivers: RECEIVERS,
        messages,
        reqack_clients: CLIENTS,
        reqack_per_client: per_client,
        run_timeout: Duration::from_secs(300),
        ..base.clone()
    };
    // Round numbers of their own, so each pass has fresh users and threads.
    let pass = |i: usize| round * 10 + i;
    let one = scenarios::fanout(&mut server, secret, &sized(MESSAGES, SENDS), 10, pass(1)).await?;
    let ir_one = dump(server.pid, &out, 1).await?;
    let two = scenarios::fanout(
        &mut server,
        secret,
        &sized(2 * MESSAGES, SENDS),
        10,
        pass(2),
    )
    .await?;
    let ir_two = dump(server.pid, &out, 2).await?;
    let ack_one = scenarios::reqack(&mut server, secret, &sized(MESSAGES, SENDS), pass(3)).await?;
    let ir_three = dump(server.pid, &out, 3).await?;
    let ack_two =
        scenarios::reqack(&mut server, secret, &sized(MESSAGES, 2 * SENDS), pass(4)).await?;
    let ir_four = dump(server.pid, &out, 4).await?;
    server.stop().await;
    let lost = one.lost + two.lost + ack_one.lost + ack_two.lost;
    if lost > 0 {
        return Err(format!("{lost} deliveries or acks lost under callgrind"));
    }
    let deliveries = two.deliveries.saturating_sub(one.deliveries);
    let acks = ack_two.acks.saturating_sub(ack_one.acks);
    let per = |a: u64, b: u64, n: u64| (b as f64 - a as f64) / n.max(1) as f64;
    Ok(InstrRun {
        server: kind,
        round,
        per_delivery: per(ir_one, ir_two, deliveries),
        deliveries,
        per_ack: per(ir_three, ir_four, acks),
        acks,
    })
}
