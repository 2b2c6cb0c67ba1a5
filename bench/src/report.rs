//! Aggregation over rounds (median and spread), targets, and the
//! BENCHMARKS.md / results.json writers.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::codegen::CodegenRun;
use crate::scenarios::{Fanout2Run, FanoutRun, IdleRun, ReqAckRun, Sizes};
use crate::servers::{Kind, Setup};

/// The machine the benchmark ran on.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub(crate) struct Machine {
    /// `nproc` before pinning.
    pub(crate) nproc: String,
    /// `model name` of /proc/cpuinfo.
    pub(crate) cpu_model: String,
    /// `MemTotal` of /proc/meminfo.
    pub(crate) memory: String,
    /// Kernel release.
    pub(crate) kernel: String,
    /// Soft file-descriptor limit after raising it.
    pub(crate) fd_limit: u64,
    /// How the servers and the generator were placed on CPUs.
    pub(crate) pinning: String,
}

/// Tool and library versions.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub(crate) struct Versions {
    /// `rustc -V`.
    pub(crate) rustc: String,
    /// `node -v`.
    pub(crate) node: String,
    /// socketioxide, from Cargo.lock.
    pub(crate) socketioxide: String,
    /// tokio-tungstenite (the generator's WebSocket), from Cargo.lock.
    pub(crate) tokio_tungstenite: String,
    /// socket.io, from bench/node/node_modules.
    pub(crate) socket_io: String,
    /// jsonwebtoken (npm), from bench/node/node_modules.
    pub(crate) jsonwebtoken_npm: String,
    /// redis-server (two-node fan-out), from `redis-server --version`.
    #[serde(default)]
    pub(crate) redis_server: String,
    /// socketioxide-redis, from Cargo.lock.
    #[serde(default)]
    pub(crate) socketioxide_redis: String,
    /// fred (socketioxide-redis's driver), from Cargo.lock.
    #[serde(default)]
    pub(crate) fred: String,
    /// @socket.io/redis-adapter, from bench/node/node_modules.
    #[serde(default)]
    pub(crate) socket_io_redis_adapter: String,
    /// redis (npm client), from bench/node/node_modules.
    #[serde(default)]
    pub(crate) redis_npm: String,
}

/// Other load on the machine around the run.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub(crate) struct Load {
    /// /proc/loadavg before the run.
    pub(crate) loadavg_before: String,
    /// /proc/loadavg after the run.
    pub(crate) loadavg_after: String,
    /// The head of `top -bn1` before the run.
    pub(crate) top_before: String,
    /// The head of `top -bn1` after the run.
    pub(crate) top_after: String,
}

/// Everything one invocation measured (written to results.json).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Results {
    /// `all` or `smoke`.
    pub(crate) mode: String,
    /// The command that produced it.
    pub(crate) command: String,
    /// When it started (UTC).
    pub(crate) started_at: String,
    /// How long it took.
    pub(crate) seconds: f64,
    /// The machine.
    pub(crate) machine: Machine,
    /// Versions.
    pub(crate) versions: Versions,
    /// Other load.
    pub(crate) load: Load,
    /// Sizes.
    pub(crate) sizes: Sizes,
    /// Fan-out runs.
    pub(crate) fanout: Vec<FanoutRun>,
    /// Two-node fan-out runs (absent from results of before that scenario).
    #[serde(default)]
    pub(crate) fanout2: Vec<Fanout2Run>,
    /// Request/ack runs.
    pub(crate) reqack: Vec<ReqAckRun>,
    /// Idle-memory runs.
    pub(crate) idle: Vec<IdleRun>,
    /// Scale runs (absent from results of before that scenario).
    #[serde(default)]
    pub(crate) scale: Vec<crate::scale::ScaleRun>,
    /// Instruction counts under callgrind (absent from older results).
    #[serde(default)]
    pub(crate) instructions: Vec<crate::instructions::InstrRun>,
    /// Codegen runs.
    pub(crate) codegen: Vec<CodegenRun>,
    /// Runs that failed, with the reason.
    pub(crate) errors: Vec<String>,
}

/// Median and range of one figure over rounds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stat {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Stat {
    fn of(values: impl IntoIterator<Item = f64>) -> Option<Self> {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        let median = if v.len() % 2 == 1 {
            v[mid]
        } else {
            (v[mid - 1] + v[mid]) / 2.0
        };
        Some(Self {
            median,
            min: v[0],
            max: v[v.len() - 1],
        })
    }
}

/// How a figure is printed.
#[derive(Clone, Copy)]
enum Fmt {
    /// Thousands separators, no decimals.
    Count,
    /// Milliseconds / seconds / microseconds with 3 significant digits.
    Float,
    /// Bytes as KiB / MiB.
    Bytes,
    /// A share of one core, as %.
    Percent,
}

fn thousands(x: f64) -> String {
    let n = x.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

fn sig3(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let mag = x.abs().log10().floor() as i32;
    let decimals = (2 - mag).clamp(0, 6) as usize;
    format!("{x:.decimals$}")
}

fn fmt(x: f64, f: Fmt) -> String {
    match f {
        Fmt::Count => thousands(x),
        Fmt::Float => sig3(x),
        Fmt::Bytes => {
            if x.abs() >= 1024.0 * 1024.0 {
                format!("{} MiB", sig3(x / (1024.0 * 1024.0)))
            } else {
                format!("{} KiB", sig3(x / 1024.0))
            }
        }
        Fmt::Percent => format!("{}%", thousands(x * 100.0)),
    }
}

fn cell(stat: Option<Stat>, f: Fmt) -> String {
    match stat {
        None => "n/a".into(),
        Some(s) if s.min == s.max => fmt(s.median, f),
        Some(s) => format!("{} ({}–{})", fmt(s.median, f), fmt(s.min, f), fmt(s.max, f)),
    }
}

/// A run that belongs to a round: ratios pair the runs of one round.
pub(crate) trait Rounded {
    /// Its round (from 1).
    fn round(&self) -> usize;
}

macro_rules! rounded {
    ($($t:ty => |$r:ident| $e:expr),* $(,)?) => {
        $(impl Rounded for $t {
            fn round(&self) -> usize {
                let $r = self;
                $e
            }
        })*
    };
}

rounded!(
    FanoutRun => |r| r.round,
    Fanout2Run => |r| r.run.round,
    ReqAckRun => |r| r.round,
    IdleRun => |r| r.round,
    crate::scale::ScaleRun => |r| r.round,
    crate::instructions::InstrRun => |r| r.round,
);

/// `get(x) / get(y)` for the runs `x` of `key` `a` and `y` of `key` `b` of
/// each round that has both, as median and range: the servers of one round
/// run back to back, so a per-round ratio cancels what drifts between
/// rounds (the machine's other load).
fn round_ratio<R: Rounded, K: PartialEq>(
    runs: &[R],
    key: impl Fn(&R) -> K,
    a: K,
    b: K,
    get: impl Fn(&R) -> f64,
) -> Option<Stat> {
    let key = &key;
    Stat::of(runs.iter().filter(|x| key(x) == a).filter_map(|x| {
        let y = runs
            .iter()
            .find(|y| key(y) == b && y.round() == x.round())?;
        let (p, q) = (get(x), get(y));
        (q != 0.0 && p.is_finite() && q.is_finite()).then(|| p / q)
    }))
}

/// A ratio with its spread over rounds: `median (min–max)`.
fn spread_cell(s: Option<Stat>) -> String {
    s.map_or("n/a".into(), |s| {
        format!("{:.3} ({:.3}–{:.3})", s.median, s.min, s.max)
    })
}

/// A figure of one scenario per server.
type Figure<'a, R> = (&'a str, Fmt, &'a dyn Fn(&R) -> f64);

/// A figure whose name and getter are built at run time.
type OwnedFigure<R> = (String, Fmt, Box<dyn Fn(&R) -> f64>);

/// A codegen figure.
type CodegenFigure = (&'static str, Fmt, fn(&CodegenRun) -> f64);

/// A table of one scenario: a column per server, then the ratios of the
/// generated server's medians to raw socketioxide's and to Node's.
fn table<R: Rounded>(
    out: &mut String,
    runs: &[R],
    server_of: impl Fn(&R) -> Kind,
    rows: &[Figure<'_, R>],
    servers: &[Kind],
) {
    let columns: Vec<(Kind, &str)> = servers.iter().map(|&k| (k, k.title())).collect();
    let ratios = [
        ("generated/raw", Kind::Generated, Kind::Raw),
        ("generated/Node", Kind::Generated, Kind::Node),
        ("metrics on/off", Kind::Generated, Kind::GeneratedNoMetrics),
        ("history on/off", Kind::Generated, Kind::GeneratedNoHistory),
    ];
    columns_table(out, runs, server_of, &columns, &ratios, rows);
}

/// A table with a column (median and range over rounds) per value of
/// `column_of` in `columns`, then `ratios`: (title, numerator, denominator),
/// each the median and range of the per-round ratios.
fn columns_table<R: Rounded, C: Copy + PartialEq>(
    out: &mut String,
    runs: &[R],
    column_of: impl Fn(&R) -> C,
    columns: &[(C, &str)],
    ratios: &[(&str, C, C)],
    rows: &[Figure<'_, R>],
) {
    let _ = write!(out, "| figure (median, range over rounds) |");
    for (_, title) in columns {
        let _ = write!(out, " {title} |");
    }
    for (title, _, _) in ratios {
        let _ = write!(out, " {title} |");
    }
    let _ = write!(out, "\n|---|");
    for _ in columns.iter().map(|_| ()).chain(ratios.iter().map(|_| ())) {
        let _ = write!(out, "---:|");
    }
    let _ = writeln!(out);
    for (name, f, get) in rows {
        let stat = |c: C| Stat::of(runs.iter().filter(|r| column_of(r) == c).map(get));
        let _ = write!(out, "| {name} |");
        for &(c, _) in columns {
            let _ = write!(out, " {} |", cell(stat(c), *f));
        }
        for &(_, a, b) in ratios {
            let ratio = round_ratio(runs, &column_of, a, b, get);
            let _ = write!(out, " {} |", spread_cell(ratio));
        }
        let _ = writeln!(out);
    }
}

/// One target and whether the run met it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TargetCheck {
    /// What the target says.
    pub(crate) target: String,
    /// What was measured.
    pub(crate) measured: String,
    /// Met, missed, or not measured (`None`).
    pub(crate) met: Option<bool>,
}

/// The issue's targets, evaluated on medians of this run.
pub(crate) fn targets(res: &Results) -> Vec<TargetCheck> {
    let mut out = Vec::new();
    let mut check =
        |target: String, value: Option<f64>, shown: String, ok: &dyn Fn(f64) -> bool| {
            out.push(TargetCheck {
                target,
                measured: shown,
                met: value.map(ok),
            });
        };
    // Per-round ratios of the fan-out runs of window `w`: generated (or
    // `a`) against `b`.
    let fan = |a: Kind, b: Kind, w: usize, get: fn(&FanoutRun) -> f64| {
        round_ratio(&res.fanout, |r| (r.server, r.window), (a, w), (b, w), get)
    };
    let median = |s: Option<Stat>| s.map(|s| s.median);
    for &w in &res.sizes.windows {
        let r = fan(Kind::Generated, Kind::Raw, w, |r| r.deliveries_per_s);
        check(
            format!("fan-out, {w} in flight: generated/raw deliveries/s ≥ 0.97"),
            median(r),
            spread_cell(r),
            &|r| r >= 0.97,
        );
        let r = fan(Kind::Generated, Kind::Raw, w, |r| r.cpu_us_per_delivery);
        check(
            format!("fan-out, {w} in flight: generated/raw CPU per delivery ≤ 1.03"),
            median(r),
            spread_cell(r),
            &|r| r <= 1.03,
        );
    }
    {
        let ack = |get: fn(&ReqAckRun) -> f64| {
            round_ratio(&res.reqack, |r| r.server, Kind::Generated, Kind::Raw, get)
        };
        let r = ack(|r| r.acks_per_s);
        check(
            "request/ack: generated/raw acks/s ≥ 0.97".into(),
            median(r),
            spread_cell(r),
            &|r| r >= 0.97,
        );
        let r = ack(|r| r.cpu_us_per_ack);
        check(
            "request/ack: generated/raw CPU per ack ≤ 1.03".into(),
            median(r),
            spread_cell(r),
            &|r| r <= 1.03,
        );
    }
    if let Some(&w) = res.sizes.windows.iter().max() {
        // What the Prometheus counters cost: the same server with them on
        // (A, the example's default) and off (A0).
        let r = fan(Kind::Generated, Kind::GeneratedNoMetrics, w, |r| {
            r.cpu_us_per_delivery
        });
        check(
            format!("fan-out, {w} in flight: metrics on/off CPU per delivery ≤ 1.02"),
            median(r),
            spread_cell(r),
            &|r| r <= 1.02,
        );
        // What numbering and keeping every thread event costs: history on
        // (A) and off (A1).
        let r = fan(Kind::Generated, Kind::GeneratedNoHistory, w, |r| {
            r.cpu_us_per_delivery
        });
        check(
            format!("fan-out, {w} in flight: history on/off CPU per delivery ≤ 1.15"),
            median(r),
            spread_cell(r),
            &|r| r <= 1.15,
        );
        let r = fan(Kind::Generated, Kind::Node, w, |r| r.deliveries_per_s);
        check(
            format!("fan-out, {w} in flight: generated/Node deliveries/s ≥ 10"),
            median(r),
            spread_cell(r),
            &|r| r >= 10.0,
        );
        let r = fan(Kind::Generated, Kind::Node, w, |r| r.cpu_us_per_delivery);
        check(
            format!("fan-out, {w} in flight: generated/Node CPU per delivery ≤ 1/8 (0.125)"),
            median(r),
            spread_cell(r),
            &|r| r <= 0.125,
        );
        let r = fan(Kind::Generated, Kind::Node, w, |r| r.p99_ms);
        check(
            format!("fan-out, {w} in flight: generated/Node p99 latency ≤ 1/5 (0.2)"),
            median(r),
            spread_cell(r),
            &|r| r <= 0.2,
        );
    }
    let fan2 = |a: Setup, b: Setup, w: usize, get: fn(&Fanout2Run) -> f64| {
        round_ratio(
            &res.fanout2,
            |r| (r.setup, r.run.window),
            (a, w),
            (b, w),
            get,
        )
    };
    for &w in &res.sizes.windows {
        let r = fan2(Setup::GeneratedCluster, Setup::GeneratedSingle, w, |r| {
            r.run.cpu_us_per_delivery
        });
        check(
            format!(
                "two-node fan-out, {w} in flight: adapter cost, generated two-node/one-node CPU \
                 per delivery (nodes + Redis) ≤ 1.5"
            ),
            median(r),
            spread_cell(r),
            &|r| r <= 1.5,
        );
    }
    if let Some(&w) = res.sizes.windows.iter().max() {
        let r = fan2(Setup::GeneratedCluster, Setup::NodeCluster, w, |r| {
            r.run.deliveries_per_s
        });
        check(
            format!(
                "two-node fan-out, {w} in flight: generated/Node deliveries/s, both two nodes + \
                 Redis, ≥ 10"
            ),
            median(r),
            spread_cell(r),
            &|r| r >= 10.0,
        );
    }
    if let Some(&top) = res.sizes.idle_levels.iter().max() {
        let per = Stat::of(
            res.idle
                .iter()
                .filter(|r| r.server == Kind::Generated)
                .filter_map(|r| {
                    r.levels
                        .iter()
                        .find(|l| l.connections == top)
                        .map(|l| l.bytes_per_connection)
                }),
        );
        check(
            format!("idle, {top} connections: generated RSS per connection ≤ 16 KB (16,000 bytes)"),
            per.map(|s| s.median),
            per.map_or("n/a".into(), |s| format!("{} bytes", thousands(s.median))),
            &|b| b <= 16_000.0,
        );
    }
    if let Some(r) = res.scale.iter().find(|r| r.server == Kind::Generated) {
        let at = format!(
            "{} connections{}",
            thousands(r.connections as f64),
            if r.connections < r.requested {
                format!(
                    " (of {} asked: {})",
                    thousands(r.requested as f64),
                    r.limited_by.as_deref().unwrap_or("limited")
                )
            } else {
                String::new()
            }
        );
        // Fewer connections than asked: the RSS target is not measured.
        let rss = if r.connections < r.requested {
            None
        } else if r.alive == r.connections {
            Some(r.rss_bytes as f64)
        } else {
            Some(f64::INFINITY)
        };
        check(
            format!("scale, {at}: every connection held, generated RSS ≤ 2.2 GB"),
            rss,
            format!(
                "{} held, RSS {} MiB",
                thousands(r.alive as f64),
                sig3(r.rss_bytes as f64 / 1048576.0)
            ),
            &|b| b <= 2.2e9,
        );
        check(
            format!("scale, {at}: the broadcast to all reaches the last socket within 1 s"),
            Some(r.broadcast_max_ms),
            format!("{} ms", sig3(r.broadcast_max_ms)),
            &|ms| ms <= 1000.0,
        );
        check(
            format!("scale, {at}: a new connection during the broadcast is served within 1 s"),
            Some(r.connect_during_broadcast_ms),
            format!("{} ms", sig3(r.connect_during_broadcast_ms)),
            &|ms| ms <= 1000.0,
        );
    }
    let gen_s = Stat::of(res.codegen.iter().map(|r| r.generate_s));
    check(
        format!(
            "codegen, {} events / {} types: generate < 0.5 s",
            res.sizes.codegen_events, res.sizes.codegen_types
        ),
        gen_s.map(|s| s.median),
        gen_s.map_or("n/a".into(), |s| format!("{} s", sig3(s.median))),
        &|s| s < 0.5,
    );
    let noop_ok = !res.codegen.is_empty() && res.codegen.iter().all(CodegenRun::noop_ok);
    check(
        "codegen: no-op regeneration writes no file (`0 changed`, mtimes unchanged)".into(),
        (!res.codegen.is_empty()).then_some(if noop_ok { 1.0 } else { 0.0 }),
        if noop_ok { "yes".into() } else { "no".into() },
        &|v| v > 0.5,
    );
    let lost: u64 = res
        .fanout
        .iter()
        .chain(res.fanout2.iter().map(|r| &r.run))
        .map(|r| r.lost + r.duplicates)
        .sum::<u64>()
        + res.reqack.iter().map(|r| r.lost).sum::<u64>()
        + res.scale.iter().map(|r| r.lost + r.duplicates).sum::<u64>();
    check(
        "no lost (or duplicated) delivery, any server, any run".into(),
        Some(lost as f64),
        thousands(lost as f64),
        &|v| v == 0.0,
    );
    out
}

/// Correctness problems (not performance): lost deliveries, failed acks,
/// dropped idle clients, a no-op regeneration that wrote, failed runs.
pub(crate) fn problems(res: &Results) -> Vec<String> {
    let mut out = res.errors.clone();
    for r in &res.fanout {
        if r.lost > 0 || r.duplicates > 0 || r.ack_failures > 0 {
            out.push(format!(
                "fan-out {} round {} window {}: lost {}, duplicates {}, failed acks {} ({})",
                r.server.label(),
                r.round,
                r.window,
                r.lost,
                r.duplicates,
                r.ack_failures,
                r.first_failure.as_deref().unwrap_or("-")
            ));
        }
    }
    for r in &res.fanout2 {
        let f = &r.run;
        if f.lost > 0 || f.duplicates > 0 || f.ack_failures > 0 {
            out.push(format!(
                "two-node fan-out {} round {} window {}: lost {}, duplicates {}, failed acks {} ({})",
                r.setup.label(),
                f.round,
                f.window,
                f.lost,
                f.duplicates,
                f.ack_failures,
                f.first_failure.as_deref().unwrap_or("-")
            ));
        }
    }
    for r in &res.reqack {
        if r.lost > 0 || r.ack_failures > 0 {
            out.push(format!(
                "request/ack {} round {}: lost {}, failed acks {} ({})",
                r.server.label(),
                r.round,
                r.lost,
                r.ack_failures,
                r.first_failure.as_deref().unwrap_or("-")
            ));
        }
    }
    for r in &res.idle {
        for l in &r.levels {
            if l.alive != l.connections {
                out.push(format!(
                    "idle {} round {}: {} of {} clients still connected",
                    r.server.label(),
                    r.round,
                    l.alive,
                    l.connections
                ));
            }
        }
    }
    for r in &res.scale {
        if r.lost > 0 || r.duplicates > 0 || r.alive != r.connections || r.first_failure.is_some() {
            out.push(format!(
                "scale {}: {} lost, {} duplicated, {} of {} clients still connected{}",
                r.server.label(),
                r.lost,
                r.duplicates,
                r.alive,
                r.connections,
                r.first_failure
                    .as_deref()
                    .map(|f| format!(", first failure: {f}"))
                    .unwrap_or_default()
            ));
        }
    }
    for r in &res.codegen {
        if !r.noop_ok() {
            out.push(format!(
                "codegen round {}: the no-op regeneration touched {} files ({:?})",
                r.round, r.noop_touched_files, r.noop_summary
            ));
        }
    }
    out
}

fn code_block(out: &mut String, text: &str) {
    let _ = writeln!(out, "```text\n{}\n```\n", text.trim_end());
}

/// BENCHMARKS.md. `notes` (hand-written analysis) is appended when given.
pub(crate) fn markdown(res: &Results, servers: &[Kind], notes: Option<&str>) -> String {
    let mut out = String::new();
    let s = &res.sizes;
    let _ = writeln!(out, "# Benchmarks\n");
    let _ = writeln!(
        out,
        "The generated gateway (A: `examples/chat-server`) against (B) the same `/chat` \
         behaviour on raw socketioxide and (C) on Node socket.io, measured side by side in one \
         invocation. Written by `{}` on {} ({} s); the raw figures are in `bench/results.json`. \
         Rerun that command to replace this file.\n",
        res.command,
        res.started_at,
        thousands(res.seconds)
    );

    let _ = writeln!(out, "## Targets\n");
    let _ = writeln!(out, "| target | measured | |\n|---|---:|---|");
    for t in targets(res) {
        let verdict = match t.met {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "not measured",
        };
        let _ = writeln!(out, "| {} | {} | {} |", t.target, t.measured, verdict);
    }
    let problems = problems(res);
    if problems.is_empty() {
        let _ = writeln!(
            out,
            "\nEvery run completed: no lost or duplicated delivery, every ack `success: true`, \
             every idle client still connected when measured.\n"
        );
    } else {
        let _ = writeln!(out, "\nProblems:\n");
        for p in &problems {
            let _ = writeln!(out, "- {p}");
        }
        let _ = writeln!(out);
    }

    for &w in &s.windows {
        let runs: Vec<FanoutRun> = res
            .fanout
            .iter()
            .filter(|r| r.window == w)
            .cloned()
            .collect();
        let _ = writeln!(
            out,
            "## Fan-out, {w} in flight\n\n{} receivers in one thread, {} acked `send_message` with \
             {w} in flight; each message reaches all {} receivers.\n",
            s.receivers,
            thousands(s.messages as f64),
            s.receivers
        );
        let rows: Vec<Figure<'_, FanoutRun>> = vec![
            ("deliveries/s", Fmt::Count, &|r| r.deliveries_per_s),
            ("send→receive p50 (ms)", Fmt::Float, &|r| r.p50_ms),
            ("send→receive p99 (ms)", Fmt::Float, &|r| r.p99_ms),
            ("send→ack p99 (ms)", Fmt::Float, &|r| r.ack_p99_ms),
            ("server CPU, /proc stat (s)", Fmt::Float, &|r| {
                r.server_cpu_s
            }),
            ("server CPU, schedstat (s)", Fmt::Float, &|r| {
                r.server_cpu_precise_s
            }),
            ("server CPU per delivery (µs)", Fmt::Float, &|r| {
                r.cpu_us_per_delivery
            }),
            ("server CPU use (1 core = 100%)", Fmt::Percent, &|r| {
                r.server_cpu_share
            }),
            ("load generator CPU use", Fmt::Percent, &|r| {
                r.generator_cpu_share
            }),
            ("lost deliveries", Fmt::Count, &|r| r.lost as f64),
            ("wall time (s)", Fmt::Float, &|r| r.seconds),
        ];
        table(&mut out, &runs, |r| r.server, &rows, servers);
        let _ = writeln!(out);
    }

    fanout2_section(&mut out, res);

    let _ = writeln!(
        out,
        "## Request/ack\n\n{} clients, each in its own thread, each sending {} acked \
         `send_message` one at a time, all clients at once.\n",
        s.reqack_clients, s.reqack_per_client
    );
    let rows: Vec<Figure<'_, ReqAckRun>> = vec![
        ("acks/s", Fmt::Count, &|r| r.acks_per_s),
        ("send→ack p50 (ms)", Fmt::Float, &|r| r.p50_ms),
        ("send→ack p99 (ms)", Fmt::Float, &|r| r.p99_ms),
        ("server CPU, /proc stat (s)", Fmt::Float, &|r| {
            r.server_cpu_s
        }),
        ("server CPU, schedstat (s)", Fmt::Float, &|r| {
            r.server_cpu_precise_s
        }),
        ("server CPU per ack (µs)", Fmt::Float, &|r| {
            r.cpu_us_per_ack
        }),
        ("load generator CPU use", Fmt::Percent, &|r| {
            r.generator_cpu_share
        }),
        ("failed acks", Fmt::Count, &|r| r.ack_failures as f64),
    ];
    table(&mut out, &res.reqack, |r| r.server, &rows, servers);
    let _ = writeln!(out);

    let _ = writeln!(
        out,
        "## Idle memory\n\nA fresh server, then connected, authenticated `/chat` clients that \
         join no room; VmRSS once it settles. Per connection = (RSS − RSS with no client) / \
         connections.\n"
    );
    let level_of = |r: &IdleRun, n: usize, f: fn(&crate::scenarios::IdleLevel) -> f64| {
        r.levels
            .iter()
            .find(|l| l.connections == n)
            .map_or(f64::NAN, f)
    };
    let mut idle_rows: Vec<OwnedFigure<IdleRun>> = vec![(
        "RSS, no client".into(),
        Fmt::Bytes,
        Box::new(|r: &IdleRun| r.baseline_rss_bytes as f64),
    )];
    for &n in &s.idle_levels {
        idle_rows.push((
            format!("RSS, {} clients", thousands(n as f64)),
            Fmt::Bytes,
            Box::new(move |r: &IdleRun| level_of(r, n, |l| l.rss_bytes as f64)),
        ));
        idle_rows.push((
            format!("per connection at {} (bytes)", thousands(n as f64)),
            Fmt::Count,
            Box::new(move |r: &IdleRun| level_of(r, n, |l| l.bytes_per_connection)),
        ));
    }
    let rows: Vec<Figure<'_, IdleRun>> = idle_rows
        .iter()
        .map(|(name, f, get)| (name.as_str(), *f, get.as_ref() as &dyn Fn(&IdleRun) -> f64))
        .collect();
    table(&mut out, &res.idle, |r| r.server, &rows, servers);
    let _ = writeln!(out);

    if !res.instructions.is_empty() {
        let _ = writeln!(
            out,
            "## Instructions (callgrind)\n\nEach server under `valgrind --tool=callgrind`: the \
             fan-out flow (40 receivers, 10 in flight) with 400 and then 800 messages, and \
             request/ack (100 clients) with 10 and then 20 sends each, fresh clients every time; \
             the difference between the two passes, divided by the deliveries (acks) it adds, \
             is the work per delivery (ack) without connecting and joining. Instruction counts \
             do not depend on the machine's other load; valgrind runs the server's threads one \
             at a time, so batching differs from a native run.\n"
        );
        type InstrRow<'a> = Figure<'a, crate::instructions::InstrRun>;
        let rows: [InstrRow<'_>; 2] = [
            ("instructions per delivery (fan-out)", Fmt::Count, &|r| {
                r.per_delivery
            }),
            ("instructions per ack (request/ack)", Fmt::Count, &|r| {
                r.per_ack
            }),
        ];
        table(&mut out, &res.instructions, |r| r.server, &rows, servers);
        let _ = writeln!(out);
    }
    if !res.scale.is_empty() {
        let s = &res.sizes.scale;
        let _ = writeln!(
            out,
            "## Scale\n\nOne server, authenticated `/chat` clients connected from several loopback \
             source addresses and joined into {} threads (client `i` in thread `i % {}`); then one \
             `announce` from an admin connection, which the server broadcasts to every socket \
             (`all`), with a new connection opened at the same moment; then {} acked \
             `send_message` spread over the threads, {} in flight. One run per server.\n",
            s.threads,
            s.threads,
            thousands(s.messages as f64),
            s.window
        );
        type ScaleRow<'a> = Figure<'a, crate::scale::ScaleRun>;
        let rows: [ScaleRow<'_>; 14] = [
            ("connections", Fmt::Count, &|r| r.connections as f64),
            ("connect rate (/s)", Fmt::Count, &|r| r.connects_per_s),
            ("RSS, connected", Fmt::Bytes, &|r| {
                r.connected_rss_bytes as f64
            }),
            ("RSS, connected and joined", Fmt::Bytes, &|r| {
                r.rss_bytes as f64
            }),
            ("RSS per connection (bytes)", Fmt::Count, &|r| {
                r.bytes_per_connection
            }),
            ("broadcast: sockets reached", Fmt::Count, &|r| {
                r.broadcast_received as f64
            }),
            ("broadcast: p50 (ms)", Fmt::Float, &|r| r.broadcast_p50_ms),
            ("broadcast: p99 (ms)", Fmt::Float, &|r| r.broadcast_p99_ms),
            ("broadcast: last socket (ms)", Fmt::Float, &|r| {
                r.broadcast_max_ms
            }),
            ("new connection during it (ms)", Fmt::Float, &|r| {
                r.connect_during_broadcast_ms
            }),
            ("threads: deliveries/s", Fmt::Count, &|r| r.deliveries_per_s),
            ("threads: CPU per delivery (µs)", Fmt::Float, &|r| {
                r.cpu_us_per_delivery
            }),
            ("lost deliveries", Fmt::Count, &|r| r.lost as f64),
            ("clients still connected", Fmt::Count, &|r| r.alive as f64),
        ];
        table(&mut out, &res.scale, |r| r.server, &rows, servers);
        for r in res.scale.iter().filter(|r| r.connections < r.requested) {
            let _ = writeln!(
                out,
                "{}: {} connections asked, {} run ({}).\n",
                r.server.title(),
                thousands(r.requested as f64),
                thousands(r.connections as f64),
                r.limited_by.as_deref().unwrap_or("limited")
            );
        }
        let _ = writeln!(out);
    }

    let _ = writeln!(
        out,
        "## Codegen\n\n`target/release/evcontract generate <synthetic> --out <tmp>` on a contract \
         of {} events and {} types written by the benchmark, then the same command again (a \
         no-op). Wall time measured around the process; CPU and peak RSS from `wait4`.\n",
        thousands(s.codegen_events as f64),
        s.codegen_types
    );
    let _ = writeln!(
        out,
        "| figure (median, range over rounds) | value |\n|---|---:|"
    );
    let rows: Vec<CodegenFigure> = vec![
        ("generate: wall (s)", Fmt::Float, |r| r.generate_s),
        ("generate: CPU (s)", Fmt::Float, |r| r.generate_cpu_s),
        ("generate: peak RSS", Fmt::Bytes, |r| {
            r.generate_max_rss_bytes as f64
        }),
        ("no-op regeneration: wall (s)", Fmt::Float, |r| r.noop_s),
        ("no-op regeneration: peak RSS", Fmt::Bytes, |r| {
            r.noop_max_rss_bytes as f64
        }),
        ("no-op regeneration: files touched", Fmt::Count, |r| {
            r.noop_touched_files as f64
        }),
        ("contract size", Fmt::Bytes, |r| r.contract_bytes as f64),
        ("files generated", Fmt::Count, |r| r.files as f64),
        ("generated size", Fmt::Bytes, |r| r.output_bytes as f64),
    ];
    for (name, f, get) in rows {
        let _ = writeln!(
            out,
            "| {name} | {} |",
            cell(Stat::of(res.codegen.iter().map(get)), f)
        );
    }
    if let Some(r) = res.codegen.first() {
        let _ = writeln!(out, "\nThe no-op run's last line: `{}`\n", r.noop_summary);
    }

    let m = &res.machine;
    let v = &res.versions;
    let _ = writeln!(out, "## Machine, versions, load\n");
    let _ = writeln!(
        out,
        "- Machine: `nproc` {}, {}, {} memory, Linux {}; file-descriptor limit {}.",
        m.nproc, m.cpu_model, m.memory, m.kernel, m.fd_limit
    );
    let _ = writeln!(out, "- Placement: {}.", m.pinning);
    let _ = writeln!(
        out,
        "- Versions: {}; node {}; socketioxide {}; socket.io {} (jsonwebtoken {} on npm); \
         the generator's tokio-tungstenite {}.",
        v.rustc, v.node, v.socketioxide, v.socket_io, v.jsonwebtoken_npm, v.tokio_tungstenite
    );
    if !v.redis_server.is_empty() {
        let _ = writeln!(
            out,
            "- Two-node fan-out: redis-server {}; socketioxide-redis {} (fred {}); \
             @socket.io/redis-adapter {} (redis {} on npm).",
            v.redis_server, v.socketioxide_redis, v.fred, v.socket_io_redis_adapter, v.redis_npm
        );
    }
    let _ = writeln!(
        out,
        "- Command: `{}` ({} rounds; every round runs each server once, in the order {} rotated by one per round).",
        res.command,
        s.rounds,
        servers
            .iter()
            .map(|k| k.label())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let _ = writeln!(
        out,
        "- Load average before: `{}`; after: `{}`. `top -bn1` before the run:\n",
        res.load.loadavg_before, res.load.loadavg_after
    );
    code_block(&mut out, &res.load.top_before);
    let _ = writeln!(out, "`top -bn1` after the run:\n");
    code_block(&mut out, &res.load.top_after);

    let method = METHOD
        .replace("{R}", &s.receivers.to_string())
        .replace("{PER}", &s.messages.div_ceil(s.receivers).to_string())
        .replace("{C}", &s.reqack_clients.to_string())
        .replace("{K}", &s.reqack_per_client.to_string())
        .replace("{TOTAL}", &thousands((s.messages * s.receivers) as f64))
        .replace("{S2}", &s.fanout2_senders().to_string())
        .replace("{R2}", &(s.receivers - s.fanout2_senders()).to_string());
    let _ = writeln!(out, "## Method\n\n{method}");
    if let Some(notes) = notes {
        let _ = writeln!(out, "\n{}", notes.trim_end());
    }
    out
}

/// The two-node fan-out tables, one per in-flight window.
fn fanout2_section(out: &mut String, res: &Results) {
    let s = &res.sizes;
    let setups: Vec<(Setup, &str)> = Setup::ALL
        .into_iter()
        .filter(|&setup| res.fanout2.iter().any(|r| r.setup == setup))
        .map(|setup| (setup, setup.title()))
        .collect();
    let ratios = [
        (
            "generated two-node/one-node",
            Setup::GeneratedCluster,
            Setup::GeneratedSingle,
        ),
        (
            "generated/Node, two nodes",
            Setup::GeneratedCluster,
            Setup::NodeCluster,
        ),
        (
            "history on/off, two nodes",
            Setup::GeneratedCluster,
            Setup::GeneratedClusterNoHistory,
        ),
    ];
    for &w in &s.windows {
        let runs: Vec<Fanout2Run> = res
            .fanout2
            .iter()
            .filter(|r| r.run.window == w)
            .cloned()
            .collect();
        let _ = writeln!(
            out,
            "## Fan-out over two nodes, {w} in flight\n\n{} receivers in one thread, split over \
             two nodes ({} on node 1, {} on node 2) that share rooms through one redis-server; {} \
             acked `send_message` with {w} in flight, sent in turn by the {} receivers on node 1; \
             each message reaches all {} receivers, exactly once each. The one-node \
             configuration runs the same senders with every receiver on its one node and no \
             Redis. Server CPU counts every node and redis-server together.\n",
            s.receivers,
            s.fanout2_senders(),
            s.receivers - s.fanout2_senders(),
            thousands(s.messages as f64),
            s.fanout2_senders(),
            s.receivers
        );
        let rows: Vec<Figure<'_, Fanout2Run>> = vec![
            ("deliveries/s", Fmt::Count, &|r| r.run.deliveries_per_s),
            ("send→receive p50 (ms)", Fmt::Float, &|r| r.run.p50_ms),
            ("send→receive p99 (ms)", Fmt::Float, &|r| r.run.p99_ms),
            ("send→ack p99 (ms)", Fmt::Float, &|r| r.run.ack_p99_ms),
            (
                "server CPU, /proc stat, nodes + Redis (s)",
                Fmt::Float,
                &|r| r.run.server_cpu_s,
            ),
            (
                "server CPU, schedstat, nodes + Redis (s)",
                Fmt::Float,
                &|r| r.run.server_cpu_precise_s,
            ),
            ("of which the nodes (s)", Fmt::Float, &|r| r.nodes_cpu_s),
            ("of which redis-server (s)", Fmt::Float, &|r| r.redis_cpu_s),
            (
                "server CPU per delivery, nodes + Redis (µs)",
                Fmt::Float,
                &|r| r.run.cpu_us_per_delivery,
            ),
            ("server CPU use (1 core = 100%)", Fmt::Percent, &|r| {
                r.run.server_cpu_share
            }),
            ("load generator CPU use", Fmt::Percent, &|r| {
                r.run.generator_cpu_share
            }),
            ("lost deliveries", Fmt::Count, &|r| r.run.lost as f64),
            ("duplicated deliveries", Fmt::Count, &|r| {
                r.run.duplicates as f64
            }),
            ("wall time (s)", Fmt::Float, &|r| r.run.seconds),
        ];
        columns_table(out, &runs, |r| r.setup, &setups, &ratios, &rows);
        let _ = writeln!(out);
    }
}

const METHOD: &str = "\
- One command starts everything: it builds the release binaries (`chat-server`, \
`bench-raw-server`, `evcontract`), runs `npm ci` in `bench/node`, then starts each server \
itself on a free loopback port with `JWT_SECRET` set, and stops it after its runs. Every \
network run and every wait is bounded in time; only 127.0.0.1 is contacted.
- Servers: (A) `target/release/chat-server`, the generated gateway (`HEALTH_INTERVAL_MS` set \
to one hour: the `/health` timer has no subscriber here; `MAX_CONNECTIONS_PER_IP` raised to \
1,000,000: every client of the benchmark comes from 127.0.0.1); (B) `bench-raw-server`, the same \
behaviour hand-written on socketioxide 0.18 with the runtime's socketioxide settings (1 MiB \
payloads, 1024-packet buffers, 1 KiB WebSocket read buffers, same ping and timeouts) and HS256 \
verification with `jsonwebtoken`, but no schema validation, rate limit, per-user rooms, \
activity tracking or copying of the handshake headers out of hyper's read buffer; \
(C) `bench/node/server.js`, socket.io 4.8 with `jsonwebtoken`, no compression. All three \
build the same `Message` (v4 uuid, server time), store it in memory, emit `new_message` to \
the room (sender included) and ack `{success: true, data}`; `join_thread` emits `joined` and \
acks the sorted members.
- Placement: with 2 or more CPUs and `taskset`, each server runs pinned to CPU 0 (a Rust \
server's tokio runtime then has one worker; Node is single-threaded anyway) and the load \
generator pins itself to CPU 1. The generator is one current-thread tokio runtime speaking \
socket.io v5 over tokio-tungstenite with its own minimal codec (frames are classified, not \
parsed into JSON). Its own CPU use is reported: near 100% would mean it, not the server, was \
the limit.
- The contract limits `send_message` to 20 per 10 s per client, and the generated server has \
no switch to lift it (the limit is compiled into the generated `SPEC`). So the same sending \
pattern is used for all three servers: in fan-out, the receivers take turns sending (message \
*i* is sent by receiver *i* mod {R}, so each sends {PER} per run, and the room holds exactly the \
{R} receivers; the sender's own copy counts as one of the {R} deliveries); in request/ack, \
each of the {C} clients sends {K} (at most 20). Fresh connections for every run.
- Fan-out: before the measurement all receivers join (sequentially) and their `joined` events \
are drained. Timing runs from the first send to the last delivery or ack. Latency is \
send→receive per delivery (all {TOTAL} samples per run), nearest-rank percentiles. Server CPU \
is utime+stime from `/proc/<pid>/stat` over the same interval, and the sum of the threads' run \
time from `/proc/<pid>/task/*/schedstat`: the stat figure comes in 10 ms ticks, too coarse for \
runs well under a second, so CPU per delivery (and per ack, and CPU use) = the schedstat \
figure / deliveries (both are in the tables and in results.json). Lost = expected deliveries not received within the time limit \
(duplicates are counted separately).
- Two-node fan-out: one redis-server (Debian's, started by the benchmark on a free loopback \
port with `--save '' --appendonly no`, pinned with the servers, flushed before every \
configuration's round, stopped at the end) serves three configurations, alternating like the \
servers: two `chat-server` processes with `REDIS_URL` (socketioxide's Redis adapter on fred), one \
`chat-server` without Redis, and two `bench/node/server.js` processes with \
`@socket.io/redis-adapter`. The receivers are split in order, {S2} to node 1 and {R2} to node 2; \
the {S2} on node 1 take turns sending, in every configuration. Server CPU is the sum over every \
node and redis-server (where the nodes use it) of the same /proc figures; each receiver must get \
each message exactly once (a second copy counts as a duplicate).
- Idle memory: a fresh server per round; VmRSS from `/proc/<pid>/status`, sampled until two \
readings 250 ms apart agree within 0.5%. The generator raises its file-descriptor limit to \
the hard limit (what `ulimit -n` would do), which the servers inherit.
- Rounds: every scenario runs on A, B, C in turn, then again, for the configured number of \
rounds, the order rotated by one each round (A B C, B C A, C A B, …) so that no server always \
runs right after the same one: with a fixed order the generated server always followed Node's \
saturating runs, and measured several percent slower for it. Tables show the median and, in \
brackets, the range over rounds. Ratios are of \
medians; \"generated/raw\" deliveries/s below 1 and CPU above 1 mean the generated server is \
slower.";

/// results.json.
pub(crate) fn json(res: &Results) -> String {
    #[derive(Serialize)]
    struct WithTargets<'a> {
        #[serde(flatten)]
        results: &'a Results,
        targets: Vec<TargetCheck>,
        problems: Vec<String>,
    }
    serde_json::to_string_pretty(&WithTargets {
        results: res,
        targets: targets(res),
        problems: problems(res),
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_formats() {
        let s = Stat::of([3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(Stat::of([1.0, 2.0, 3.0, 10.0]).unwrap().median, 2.5);
        assert!(Stat::of([f64::NAN]).is_none());
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(sig3(0.012345), "0.0123");
        assert_eq!(sig3(123.45), "123");
        assert_eq!(sig3(1.5), "1.50");
        assert_eq!(fmt(2048.0, Fmt::Bytes), "2.00 KiB");
        assert_eq!(fmt(0.5, Fmt::Percent), "50%");
    }

    #[test]
    fn two_node_runs_read_back_and_old_results_have_none() {
        let run = serde_json::json!({
            "setup": "generated-two-node", "nodes": 2, "senders": 5,
            "nodes_cpu_s": 0.05, "redis_cpu_s": 0.002,
            "server": "generated", "round": 1, "window": 1, "receivers": 10,
            "messages": 40, "deliveries": 400, "lost": 0, "duplicates": 0,
            "ack_failures": 0, "first_failure": null, "seconds": 0.06,
            "deliveries_per_s": 6600.0, "p50_ms": 1.2, "p99_ms": 2.5,
            "ack_p50_ms": 1.4, "ack_p99_ms": 2.4, "server_cpu_s": 0.07,
            "server_cpu_precise_s": 0.052, "cpu_us_per_delivery": 130.0,
            "server_cpu_share": 0.9, "generator_cpu_share": 0.24
        });
        let parsed: Fanout2Run = serde_json::from_value(run.clone()).unwrap();
        assert_eq!(parsed.setup, Setup::GeneratedCluster);
        assert_eq!(parsed.run.server, Kind::Generated);
        assert_eq!(serde_json::to_value(&parsed).unwrap(), run);

        let sizes = crate::scenarios::Sizes {
            rounds: 1,
            receivers: 10,
            messages: 40,
            windows: vec![1],
            reqack_clients: 1,
            reqack_per_client: 1,
            idle_levels: vec![],
            scale: Default::default(),
            codegen_events: 1,
            codegen_types: 1,
            run_timeout: std::time::Duration::ZERO,
        };
        let mut old = serde_json::json!({
            "mode": "smoke", "command": "", "started_at": "", "seconds": 0.0,
            "machine": Machine::default(), "load": Load::default(),
            "sizes": sizes, "fanout": [], "reqack": [], "idle": [], "codegen": [],
            "errors": [],
            "versions": {"rustc": "", "node": "", "socketioxide": "",
                "tokio_tungstenite": "", "socket_io": "", "jsonwebtoken_npm": ""}
        });
        let res: Results = serde_json::from_value(old.clone()).unwrap();
        assert!(res.fanout2.is_empty());
        old["fanout2"] = serde_json::json!([run]);
        let res: Results = serde_json::from_value(old).unwrap();
        let md = markdown(&res, &[Kind::Generated], None);
        assert!(md.contains("## Fan-out over two nodes, 1 in flight"));
        assert!(md.contains("| deliveries/s | 6,600 |"));
    }
}
