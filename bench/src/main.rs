//! Benchmarks: the generated gateway (`examples/chat-server`) against the
//! same `/chat` behaviour on raw socketioxide (`bench-raw-server`) and on
//! Node socket.io (`bench/node/server.js`), side by side, plus codegen time,
//! and fan-out over two nodes sharing rooms through Redis (a redis-server
//! the benchmark starts itself).
//!
//! ```text
//! cargo run --release -p evcontract-bench -- all     # full run: writes BENCHMARKS.md and bench/results.json
//! cargo run -p evcontract-bench -- smoke              # tiny sizes, a few seconds: checks the machinery
//! ```
//!
//! `evcontract-bench report [results.json]` rewrites BENCHMARKS.md from the
//! recorded figures and bench/NOTES.md (after editing the notes).
//! `evcontract-bench contract [EVENTS [TYPES]]` prints the codegen scenario's
//! synthetic contract (default 1,000 events, 500 types), for profiling.
//!
//! The smoke run uses `$CHAT_SERVER_BIN` when set (scripts/test.sh exports
//! the chat-server it built).
//!
//! Options: `--rounds N`, `--servers generated,raw,node`,
//! `--scenarios fanout,fanout2,reqack,idle,codegen`, `--out DIR` (where
//! BENCHMARKS.md and results.json go), `--no-build`, `--no-npm`.

mod client;
mod codec;
mod codegen;
mod instructions;
mod redis;
mod report;
mod scale;
mod scenarios;
mod servers;
mod sys;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use report::{Load, Machine, Results, Versions};
use scenarios::ScaleSizes;
use scenarios::Sizes;
use servers::{Kind, Programs, Server, Setup};

/// The secret every server verifies tokens with.
const SECRET: &str = "evcontract-bench-secret";

const USAGE: &str = "usage: evcontract-bench (all | smoke | report [JSON] | contract [EVENTS [TYPES]]) [--rounds N] [--servers generated,raw,node] \
[--scenarios fanout,fanout2,reqack,instructions,idle,scale,codegen] [--scale-connections N] [--idle-levels 1000,10000,100000] [--out DIR] [--no-build] [--no-npm]";

/// Every scenario (`--scenarios` picks among them).
const SCENARIOS: [&str; 7] = [
    "fanout",
    "fanout2",
    "reqack",
    "instructions",
    "idle",
    "scale",
    "codegen",
];

/// Parsed command line.
struct Options {
    mode: String,
    rounds: Option<usize>,
    servers: Vec<Kind>,
    scenarios: Vec<String>,
    out: Option<PathBuf>,
    build: bool,
    npm: bool,
    /// `--idle-levels`: the idle scenario's connection counts.
    idle_levels: Option<Vec<usize>>,
    /// `--scale-connections`: the scale scenario's connections.
    scale_connections: Option<usize>,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut it = args.iter();
    let mode = it.next().ok_or(USAGE)?.clone();
    if mode != "all" && mode != "smoke" {
        return Err(USAGE.into());
    }
    let smoke = mode == "smoke";
    let mut o = Options {
        mode,
        rounds: None,
        servers: Kind::ALL.to_vec(),
        // The smoke run stays seconds long: no callgrind.
        scenarios: SCENARIOS
            .iter()
            .filter(|s| !smoke || **s != "instructions")
            .map(|s| String::from(*s))
            .collect(),
        out: None,
        build: true,
        npm: true,
        idle_levels: None,
        scale_connections: None,
    };
    while let Some(arg) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--rounds" => {
                o.rounds = Some(value()?.parse().map_err(|e| format!("--rounds: {e}"))?);
            }
            "--servers" => {
                o.servers = value()?
                    .split(',')
                    .map(|s| {
                        Kind::ALL
                            .into_iter()
                            .find(|k| k.label() == s)
                            .ok_or(format!("unknown server `{s}`"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--scenarios" => {
                o.scenarios = value()?.split(',').map(String::from).collect();
                if let Some(bad) = o
                    .scenarios
                    .iter()
                    .find(|s| !SCENARIOS.contains(&s.as_str()))
                {
                    return Err(format!("unknown scenario `{bad}`\n{USAGE}"));
                }
            }
            "--idle-levels" => {
                let levels = value()?
                    .split(',')
                    .map(|n| {
                        n.parse::<usize>()
                            .map_err(|e| format!("--idle-levels: {e}"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                o.idle_levels = Some(levels);
            }
            "--scale-connections" => {
                o.scale_connections = Some(
                    value()?
                        .parse()
                        .map_err(|e| format!("--scale-connections: {e}"))?,
                );
            }
            "--out" => o.out = Some(PathBuf::from(value()?)),
            "--no-build" => o.build = false,
            "--no-npm" => o.npm = false,
            _ => return Err(format!("unknown argument `{arg}`\n{USAGE}")),
        }
    }
    Ok(o)
}

fn sizes(mode: &str, rounds: Option<usize>) -> Sizes {
    if mode == "smoke" {
        Sizes {
            rounds: rounds.unwrap_or(1),
            receivers: 10,
            messages: 40,
            windows: vec![1, 5],
            reqack_clients: 5,
            reqack_per_client: 5,
            idle_levels: vec![20, 50],
            scale: ScaleSizes {
                connections: 300,
                threads: 3,
                messages: 30,
                window: 10,
            },
            codegen_events: 20,
            codegen_types: 10,
            run_timeout: Duration::from_secs(20),
        }
    } else {
        Sizes {
            rounds: rounds.unwrap_or(7),
            // Rounds long enough to be steady: 1.6 million deliveries per
            // fan-out round (about 1.2 s of server CPU at 100 in flight) and
            // 40,000 acks per request/ack round, within the contract's rate
            // limit (20 sends per user per 10 s).
            receivers: 400,
            messages: 4_000,
            windows: vec![1, 100],
            reqack_clients: 2_000,
            reqack_per_client: 20,
            idle_levels: vec![1_000, 10_000],
            scale: ScaleSizes {
                connections: 100_000,
                threads: 100,
                messages: 1_000,
                window: 100,
            },
            codegen_events: 1_000,
            codegen_types: 500,
            run_timeout: Duration::from_secs(120),
        }
    }
}

/// Instruction counts under callgrind (generated, raw and A1), up to 3 rounds:
/// the counts barely move between rounds, unlike CPU time.
async fn run_instructions(res: &mut Results, servers: &[Kind], programs: &Programs, work: &Path) {
    let sizes = res.sizes.clone();
    let kinds: Vec<Kind> = servers
        .iter()
        .copied()
        .filter(|k| matches!(k, Kind::Generated | Kind::Raw | Kind::GeneratedNoHistory))
        .collect();
    for round in 1..=sizes.rounds.min(3) {
        for &kind in &rotated(&kinds, round) {
            match instructions::count(kind, programs, SECRET, work, &sizes, round).await {
                Ok(r) => {
                    log(&format!(
                        "instructions {:9} round {round}: {:.0} per delivery ({} deliveries), {:.0} per ack ({} acks)",
                        kind.label(),
                        r.per_delivery,
                        r.deliveries,
                        r.per_ack,
                        r.acks
                    ));
                    res.instructions.push(r);
                }
                Err(e) => res
                    .errors
                    .push(format!("instructions {} round {round}: {e}", kind.label())),
            }
        }
    }
}

/// The scale scenario, once per server (generated and Node): as many
/// connections as asked, or as the open-file limit allows (then the run
/// says so).
async fn run_scale(res: &mut Results, servers: &[Kind], programs: &Programs, work: &Path) {
    let sizes = res.sizes.scale;
    let want = sizes.connections;
    // The generator and the server each hold a descriptor per connection.
    let (connections, limited_by) = match sys::raise_open_files(want as u64 + 500) {
        Ok(_) => (want, None),
        Err(e) => {
            let limit = sys::open_files_limit();
            let fit = usize::try_from(limit.saturating_sub(500))
                .unwrap_or(usize::MAX)
                .min(want);
            let fit = fit - fit % sizes.threads.max(1);
            log(&format!("scale: {e}; running at {fit} connections"));
            (
                fit,
                Some(format!(
                    "the open-file limit is {limit} and the system refused to raise it"
                )),
            )
        }
    };
    for kind in servers
        .iter()
        .copied()
        .filter(|k| matches!(k, Kind::Generated | Kind::Node))
    {
        let Some(mut server) = start_or_record(res, kind, programs, work, "scale").await else {
            continue;
        };
        match scale::scale(
            &mut server,
            SECRET,
            sizes,
            connections,
            limited_by.clone(),
            1,
        )
        .await
        {
            Ok(r) => {
                log(&format!(
                    "scale {:9}: {} connections in {:.1} s ({:.0}/s), RSS {:.1} MiB ({:.0} B/connection); \
                     broadcast to all: {} received, p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms, a new \
                     connection meanwhile {:.0} ms; threads: {} of {} deliveries, {:.0}/s, {:.2} µs CPU each; \
                     {} lost, {} duplicated{}",
                    kind.label(),
                    r.connections,
                    r.connect_seconds,
                    r.connects_per_s,
                    r.rss_bytes as f64 / 1048576.0,
                    r.bytes_per_connection,
                    r.broadcast_received,
                    r.broadcast_p50_ms,
                    r.broadcast_p99_ms,
                    r.broadcast_max_ms,
                    r.connect_during_broadcast_ms,
                    r.deliveries,
                    r.expected_deliveries,
                    r.deliveries_per_s,
                    r.cpu_us_per_delivery,
                    r.lost,
                    r.duplicates,
                    r.first_failure
                        .as_deref()
                        .map(|f| format!("; first failure: {f}"))
                        .unwrap_or_default()
                ));
                res.scale.push(r);
            }
            Err(e) => res.errors.push(format!("scale {}: {e}", kind.label())),
        }
        server.stop().await;
        // Let the kernel retire the closed sockets before the next server.
        sys::sleep(Duration::from_secs(2)).await;
    }
}

/// The repository root (this crate's parent folder).
fn repo_root() -> PathBuf {
    let bench = Path::new(env!("CARGO_MANIFEST_DIR"));
    bench.parent().unwrap_or(bench).to_owned()
}

/// Runs a command, returning its trimmed stdout (empty on failure).
fn output_of(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn run_step(what: &str, cmd: &mut Command) -> Result<(), String> {
    eprintln!("bench: {what}");
    let status = cmd
        .status()
        .map_err(|e| format!("{what}: cannot run: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what}: {status}"))
    }
}

/// Builds the server programs and (for the codegen scenario) `evcontract`
/// with the profile of this binary (one cargo call per package, as the test
/// script builds them, so nothing is rebuilt with other features).
fn build(release: bool, chat_server_given: bool, codegen: bool) -> Result<(), String> {
    let Ok(cargo) = std::env::var("CARGO") else {
        eprintln!("bench: not started by cargo; using the programs next to this binary");
        return Ok(());
    };
    let root = repo_root();
    let mut builds: Vec<&[&str]> = vec![&["-p", "evcontract-bench", "--bin", "bench-raw-server"]];
    if codegen {
        builds.insert(0, &["-p", "evcontract", "--bin", "evcontract"]);
    }
    if !chat_server_given {
        builds.insert(0, &["-p", "chat-server"]);
    }
    for args in builds {
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(&root)
            .arg("build")
            .arg("--quiet")
            .args(args);
        if release {
            cmd.arg("--release");
        }
        run_step(&format!("cargo build {}", args.join(" ")), &mut cmd)?;
    }
    Ok(())
}

fn cargo_lock_version(root: &Path, name: &str) -> String {
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap_or_default();
    let marker = format!("name = \"{name}\"\nversion = \"");
    lock.find(&marker)
        .and_then(|i| {
            let rest = &lock[i + marker.len()..];
            rest.find('"').map(|end| rest[..end].to_owned())
        })
        .unwrap_or_default()
}

fn npm_version(node_dir: &Path, package: &str) -> String {
    let path = node_dir
        .join("node_modules")
        .join(package)
        .join("package.json");
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("version")?.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn proc_field(file: &str, key: &str) -> String {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_default()
}

fn top_head() -> String {
    let top = output_of("top", &["-bn1", "-w", "120"]);
    top.lines().take(17).collect::<Vec<_>>().join("\n")
}

fn log(line: &str) {
    eprintln!("bench: {line}");
}

/// The servers (or setups) in round `round`'s order: A B C, then B C A,
/// then C A B, … Every server takes every position, so none always runs
/// right after the same other one (a saturating Node run just before
/// measurably slowed the next server in a fixed A B C order).
fn rotated<T: Copy>(servers: &[T], round: usize) -> Vec<T> {
    let mut order = servers.to_vec();
    if !order.is_empty() {
        let by = (round - 1) % order.len();
        order.rotate_left(by);
    }
    order
}

/// Starts `kind` for one round, or records why it did not start.
async fn start_or_record(
    res: &mut Results,
    kind: Kind,
    programs: &Programs,
    work: &Path,
    tag: &str,
) -> Option<Server> {
    match Server::start(kind, programs, SECRET, work, tag).await {
        Ok(server) => Some(server),
        Err(e) => {
            res.errors.push(format!("start {}: {e}", kind.label()));
            None
        }
    }
}

/// The two-node fan-out configurations `servers` selects: the generated
/// ones with `generated`, Node's with `node`.
fn setups(servers: &[Kind]) -> Vec<Setup> {
    Setup::ALL
        .into_iter()
        .filter(|s| servers.contains(&s.kind()))
        .collect()
}

/// Starts the nodes of `setup` for one round (with `REDIS_URL` where it uses
/// Redis), or records why they did not start (stopping those that did).
async fn start_nodes(
    res: &mut Results,
    setup: Setup,
    programs: &Programs,
    redis: &redis::Redis,
    work: &Path,
    round: usize,
) -> Option<Vec<Server>> {
    let url = redis.url();
    let env: &[(&str, &str)] = if setup.uses_redis() {
        &[("REDIS_URL", &url)]
    } else {
        &[]
    };
    let mut nodes = Vec::new();
    for i in 1..=setup.nodes() {
        let count = if setup.uses_redis() { "two" } else { "one" };
        let tag = format!("fanout2-{count}-node-{round}-{i}");
        match Server::start_with(setup.kind(), programs, SECRET, work, &tag, env).await {
            Ok(server) => nodes.push(server),
            Err(e) => {
                res.errors
                    .push(format!("start {} node {i}: {e}", setup.label()));
                for node in nodes {
                    node.stop().await;
                }
                return None;
            }
        }
    }
    Some(nodes)
}

/// Two-node fan-out: one redis-server for the whole scenario (flushed
/// before every configuration's round, stopped when dropped), the setups
/// alternating like the servers of the other scenarios.
async fn run_fanout2(
    res: &mut Results,
    servers: &[Kind],
    programs: &Programs,
    redis_program: &Path,
    work: &Path,
) {
    let sizes = res.sizes.clone();
    let mut redis = match redis::Redis::start(redis_program, programs, work).await {
        Ok(redis) => redis,
        Err(e) => {
            res.errors.push(format!("start redis-server: {e}"));
            return;
        }
    };
    let setups = setups(servers);
    for round in 1..=sizes.rounds {
        for setup in rotated(&setups, round) {
            if let Err(e) = redis.flush().await {
                res.errors
                    .push(format!("{} round {round}: {e}", setup.label()));
                continue;
            }
            let Some(mut nodes) = start_nodes(res, setup, programs, &redis, work, round).await
            else {
                continue;
            };
            for &w in &sizes.windows {
                let run =
                    scenarios::fanout2(setup, &mut nodes, &mut redis, SECRET, &sizes, w, round)
                        .await;
                match run {
                    Ok(r) => {
                        log(&format!(
                            "fan-out over nodes {:18} round {round} window {w:3}: {:>9.0} deliveries/s, p99 {:.3} ms, {:.3} µs CPU/delivery (nodes {:.3} s, redis {:.3} s), lost {}, duplicates {}, generator CPU {:.0}%",
                            setup.label(),
                            r.run.deliveries_per_s,
                            r.run.p99_ms,
                            r.run.cpu_us_per_delivery,
                            r.nodes_cpu_s,
                            r.redis_cpu_s,
                            r.run.lost,
                            r.run.duplicates,
                            r.run.generator_cpu_share * 100.0
                        ));
                        res.fanout2.push(r);
                    }
                    Err(e) => res.errors.push(format!(
                        "two-node fan-out {} round {round} window {w}: {e}",
                        setup.label()
                    )),
                }
                sys::sleep(Duration::from_millis(300)).await;
            }
            for node in nodes {
                node.stop().await;
            }
        }
    }
}

/// Runs the network scenarios and codegen, filling `res`.
async fn run_all(
    res: &mut Results,
    servers: &[Kind],
    scenarios: &[String],
    programs: &Programs,
    redis_program: Option<&Path>,
    codegen: &codegen::Launch,
    work: &Path,
) {
    let sizes = res.sizes.clone();
    let wants = |s: &str| scenarios.iter().any(|x| x == s);
    if wants("fanout") || wants("reqack") {
        for round in 1..=sizes.rounds {
            for kind in rotated(servers, round) {
                let tag = format!("traffic-{round}");
                let Some(mut server) = start_or_record(res, kind, programs, work, &tag).await
                else {
                    continue;
                };
                if wants("fanout") {
                    for &w in &sizes.windows {
                        match scenarios::fanout(&mut server, SECRET, &sizes, w, round).await {
                            Ok(r) => {
                                log(&format!(
                                    "fan-out {:9} round {round} window {w:3}: {:>9.0} deliveries/s, p50 {:.3} ms, p99 {:.3} ms, {:.3} µs CPU/delivery, lost {}, generator CPU {:.0}%",
                                    kind.label(),
                                    r.deliveries_per_s,
                                    r.p50_ms,
                                    r.p99_ms,
                                    r.cpu_us_per_delivery,
                                    r.lost,
                                    r.generator_cpu_share * 100.0
                                ));
                                res.fanout.push(r);
                            }
                            Err(e) => res.errors.push(format!(
                                "fan-out {} round {round} window {w}: {e}",
                                kind.label()
                            )),
                        }
                        sys::sleep(Duration::from_millis(300)).await;
                    }
                }
                if wants("reqack") {
                    match scenarios::reqack(&mut server, SECRET, &sizes, round).await {
                        Ok(r) => {
                            log(&format!(
                                "req/ack {:9} round {round}: {:>9.0} acks/s, p50 {:.3} ms, p99 {:.3} ms, failed {}",
                                kind.label(),
                                r.acks_per_s,
                                r.p50_ms,
                                r.p99_ms,
                                r.ack_failures
                            ));
                            res.reqack.push(r);
                        }
                        Err(e) => res
                            .errors
                            .push(format!("request/ack {} round {round}: {e}", kind.label())),
                    }
                }
                server.stop().await;
            }
        }
    }
    if let Some(redis_program) = redis_program.filter(|_| wants("fanout2")) {
        run_fanout2(res, servers, programs, redis_program, work).await;
    }
    if wants("idle") {
        // Metrics and history cost nothing per idle connection: A0 and A1
        // are left out here.
        let idle_servers: Vec<Kind> = servers
            .iter()
            .copied()
            .filter(|k| !k.is_variant())
            .collect();
        for round in 1..=sizes.rounds {
            for kind in rotated(&idle_servers, round) {
                let tag = format!("idle-{round}");
                let Some(mut server) = start_or_record(res, kind, programs, work, &tag).await
                else {
                    continue;
                };
                match scenarios::idle(&mut server, SECRET, &sizes, round).await {
                    Ok(r) => {
                        for l in &r.levels {
                            log(&format!(
                                "idle {:9} round {round}: {:>6} clients ({} alive), RSS {:.1} MiB, {:.0} bytes/connection; {} connected in {:.1} s ({:.0}/s)",
                                kind.label(),
                                l.connections,
                                l.alive,
                                l.rss_bytes as f64 / 1048576.0,
                                l.bytes_per_connection,
                                l.added,
                                l.connect_seconds,
                                l.added as f64 / l.connect_seconds.max(1e-9)
                            ));
                        }
                        res.idle.push(r);
                    }
                    Err(e) => res
                        .errors
                        .push(format!("idle {} round {round}: {e}", kind.label())),
                }
                server.stop().await;
                // Let the kernel retire the closed sockets before the next server.
                sys::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    if wants("instructions") {
        run_instructions(res, servers, programs, work).await;
    }
    if wants("scale") {
        run_scale(res, servers, programs, work).await;
    }
    if wants("codegen") {
        for round in 1..=sizes.rounds {
            match codegen::run(
                codegen,
                work,
                round,
                sizes.codegen_events,
                sizes.codegen_types,
            ) {
                Ok(r) => {
                    log(&format!(
                        "codegen round {round}: generate {:.3} s ({:.1} MiB peak), no-op {:.3} s, {} files touched, `{}`",
                        r.generate_s,
                        r.generate_max_rss_bytes as f64 / 1048576.0,
                        r.noop_s,
                        r.noop_touched_files,
                        r.noop_summary
                    ));
                    res.codegen.push(r);
                }
                Err(e) => res.errors.push(format!("codegen round {round}: {e}")),
            }
        }
    }
}

fn run(o: Options) -> Result<bool, String> {
    let started = Instant::now();
    let root = repo_root();
    let mut sizes = sizes(&o.mode, o.rounds);
    if let Some(levels) = &o.idle_levels {
        sizes.idle_levels = levels.clone();
    }
    if let Some(n) = o.scale_connections {
        sizes.scale.connections = n;
    }
    if o.scenarios.iter().any(|s| s == "idle") {
        // The generator holds one socket per client, the server as many (it
        // inherits this limit), with room for the rest.
        let top = sizes.idle_levels.iter().copied().max().unwrap_or(0) as u64;
        let want = top + 500;
        match sys::raise_open_files(want) {
            Ok(limit) => log(&format!(
                "open-file limit {limit} (the idle scenario needs {want})"
            )),
            Err(e) => return Err(format!("idle scenario up to {top} connections: {e}")),
        }
    }
    sizes.check()?;
    let release = !cfg!(debug_assertions);
    if o.mode == "all" && !release {
        log("warning: a debug build measures debug servers; use `cargo run --release`");
    }
    // The smoke run takes the chat-server the test script built and exported
    // (building it alone would compile it with other features).
    let chat_server_env = std::env::var_os("CHAT_SERVER_BIN")
        .filter(|_| o.mode == "smoke")
        .map(PathBuf::from);
    let codegen_wanted = o.scenarios.iter().any(|s| s == "codegen");
    // Fail before building or measuring anything when the two-node
    // scenario cannot run.
    let fanout2 = o.scenarios.iter().any(|s| s == "fanout2") && !setups(&o.servers).is_empty();
    let redis_program = if fanout2 {
        Some(redis::program()?)
    } else {
        None
    };
    if o.build {
        build(release, chat_server_env.is_some(), codegen_wanted)?;
    }
    let node_dir = root.join("bench").join("node");
    if o.servers.contains(&Kind::Node) && o.npm {
        run_step(
            "npm ci (bench/node)",
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&node_dir),
        )?;
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let bin_dir = exe.parent().ok_or("no binary folder")?.to_owned();
    let evcontract = bin_dir.join("evcontract");

    // Measure the machine before pinning (nproc follows the affinity mask).
    let nproc = output_of("nproc", &[]);
    let cpus: usize = nproc.parse().unwrap_or(1);
    let taskset =
        (!output_of("taskset", &["--version"]).is_empty()).then(|| PathBuf::from("taskset"));
    let (server_core, pinning) = match (&taskset, cpus >= 2) {
        (Some(_), true) => match sys::pin_self(1) {
            Ok(()) => (
                Some(0),
                format!(
                    "servers{} pinned to CPU 0 with taskset, the load generator to CPU 1; evcontract (codegen) on all CPUs",
                    if fanout2 { " and redis-server" } else { "" }
                ),
            ),
            Err(e) => (None, format!("not pinned (sched_setaffinity: {e})")),
        },
        (None, _) => (None, "not pinned (no taskset)".to_owned()),
        (_, false) => (None, "not pinned (one CPU)".to_owned()),
    };
    let fd_limit = sys::raise_fd_limit();
    let programs = Programs {
        chat_server: chat_server_env.unwrap_or_else(|| bin_dir.join("chat-server")),
        raw_server: bin_dir.join("bench-raw-server"),
        node_script: node_dir.join("server.js"),
        taskset,
        server_core,
    };
    let launch = codegen::Launch {
        evcontract: evcontract.clone(),
        cpus: match (&programs.taskset, server_core) {
            (Some(taskset), Some(_)) => Some((taskset.clone(), format!("0-{}", cpus - 1))),
            _ => None,
        },
    };
    let mut needed = vec![&programs.chat_server, &programs.raw_server];
    if codegen_wanted {
        needed.push(&evcontract);
    }
    for p in needed {
        if !p.exists() {
            return Err(format!(
                "{} is missing (build it, or drop --no-build)",
                p.display()
            ));
        }
    }
    let work = std::env::temp_dir().join(format!("evcontract-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;

    let profile = if release { " --release" } else { "" };
    let mut extra: Vec<String> = Vec::new();
    if let Some(r) = o.rounds {
        extra.push(format!("--rounds {r}"));
    }
    if o.servers != Kind::ALL {
        let names: Vec<&str> = o.servers.iter().map(|k| k.label()).collect();
        extra.push(format!("--servers {}", names.join(",")));
    }
    if o.scenarios != SCENARIOS {
        extra.push(format!("--scenarios {}", o.scenarios.join(",")));
    }
    let command = format!(
        "cargo run{profile} -p evcontract-bench -- {}{}",
        o.mode,
        extra.iter().map(|e| format!(" {e}")).collect::<String>()
    );
    let mut res = Results {
        mode: o.mode.clone(),
        command,
        started_at: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        seconds: 0.0,
        machine: Machine {
            nproc,
            cpu_model: proc_field("/proc/cpuinfo", "model name"),
            memory: proc_field("/proc/meminfo", "MemTotal"),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            fd_limit,
            pinning,
        },
        versions: Versions {
            rustc: output_of("rustc", &["-V"]),
            node: output_of("node", &["-v"]),
            socketioxide: cargo_lock_version(&root, "socketioxide"),
            tokio_tungstenite: cargo_lock_version(&root, "tokio-tungstenite"),
            socket_io: npm_version(&node_dir, "socket.io"),
            jsonwebtoken_npm: npm_version(&node_dir, "jsonwebtoken"),
            redis_server: redis_program
                .as_deref()
                .map(redis::version)
                .unwrap_or_default(),
            socketioxide_redis: cargo_lock_version(&root, "socketioxide-redis"),
            fred: cargo_lock_version(&root, "fred"),
            socket_io_redis_adapter: npm_version(&node_dir, "@socket.io/redis-adapter"),
            redis_npm: npm_version(&node_dir, "redis"),
        },
        load: Load {
            loadavg_before: sys::loadavg(),
            top_before: top_head(),
            ..Load::default()
        },
        sizes,
        fanout: Vec::new(),
        fanout2: Vec::new(),
        reqack: Vec::new(),
        idle: Vec::new(),
        scale: Vec::new(),
        instructions: Vec::new(),
        codegen: Vec::new(),
        errors: Vec::new(),
    };
    log(&format!(
        "{} rounds; load average {}; {}",
        res.sizes.rounds, res.load.loadavg_before, res.machine.pinning
    ));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(run_all(
        &mut res,
        &o.servers,
        &o.scenarios,
        &programs,
        redis_program.as_deref(),
        &launch,
        &work,
    ));
    drop(runtime);

    res.load.loadavg_after = sys::loadavg();
    res.load.top_after = top_head();
    res.seconds = started.elapsed().as_secs_f64();

    let out_dir = o.out.clone().unwrap_or_else(|| {
        if o.mode == "all" {
            root.clone()
        } else {
            bin_dir.join("bench-smoke")
        }
    });
    std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
    let json_path = if o.mode == "all" && o.out.is_none() {
        root.join("bench").join("results.json")
    } else {
        out_dir.join("results.json")
    };
    let notes = std::fs::read_to_string(root.join("bench").join("NOTES.md")).ok();
    let md_path = out_dir.join("BENCHMARKS.md");
    std::fs::write(
        &md_path,
        report::markdown(&res, &o.servers, notes.as_deref()),
    )
    .map_err(|e| format!("{}: {e}", md_path.display()))?;
    std::fs::write(&json_path, report::json(&res))
        .map_err(|e| format!("{}: {e}", json_path.display()))?;
    log(&format!(
        "wrote {} and {} ({:.0} s)",
        md_path.display(),
        json_path.display(),
        res.seconds
    ));
    if o.mode == "all" {
        for t in report::targets(&res) {
            let verdict = match t.met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "not measured",
            };
            println!("{verdict:>12}  {}: {}", t.target, t.measured);
        }
    }
    let problems = report::problems(&res);
    for p in &problems {
        println!("     PROBLEM  {p}");
    }
    if o.mode == "smoke" && problems.is_empty() {
        println!(
            "smoke: {} fan-out, {} two-node fan-out, {} request/ack, {} idle, {} scale and {} \
             codegen runs; no lost or duplicated delivery, every ack a success, every idle client \
             connected, no-op regeneration wrote nothing",
            res.fanout.len(),
            res.fanout2.len(),
            res.reqack.len(),
            res.idle.len(),
            res.scale.len(),
            res.codegen.len()
        );
    }
    // EVCONTRACT_BENCH_KEEP=1 keeps the logs (and callgrind's dumps, for
    // callgrind_annotate) of a run that went well.
    if problems.is_empty() && std::env::var_os("EVCONTRACT_BENCH_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&work);
    } else {
        println!("server logs kept in {}", work.display());
    }
    Ok(problems.is_empty())
}

/// Rewrites BENCHMARKS.md from bench/results.json (or `json`) and
/// bench/NOTES.md, without measuring anything: for editing the notes
/// after a run.
fn rerender(json: Option<PathBuf>) -> Result<(), String> {
    let root = repo_root();
    let json = json.unwrap_or_else(|| root.join("bench").join("results.json"));
    let text = std::fs::read_to_string(&json).map_err(|e| format!("{}: {e}", json.display()))?;
    let res: Results = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}: {e} (a failed run leaves null figures: rerun)",
            json.display()
        )
    })?;
    let mut servers: Vec<Kind> = Vec::new();
    let seen = res
        .fanout
        .iter()
        .map(|r| r.server)
        .chain(res.fanout2.iter().map(|r| r.run.server))
        .chain(res.reqack.iter().map(|r| r.server))
        .chain(res.idle.iter().map(|r| r.server));
    for kind in seen {
        if !servers.contains(&kind) {
            servers.push(kind);
        }
    }
    servers.sort_by_key(|k| Kind::ALL.iter().position(|x| x == k));
    let notes = std::fs::read_to_string(root.join("bench").join("NOTES.md")).ok();
    let md = root.join("BENCHMARKS.md");
    std::fs::write(&md, report::markdown(&res, &servers, notes.as_deref()))
        .map_err(|e| format!("{}: {e}", md.display()))?;
    eprintln!("bench: wrote {} from {}", md.display(), json.display());
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("report") {
        return match rerender(args.get(1).map(PathBuf::from)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if args.first().map(String::as_str) == Some("contract") {
        // The codegen scenario's synthetic contract, for profiling by hand.
        let n =
            |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
        let contract = codegen::synthetic_contract(n(1, 1_000), n(2, 500));
        println!(
            "{}",
            serde_json::to_string_pretty(&contract).unwrap_or_default()
        );
        return ExitCode::SUCCESS;
    }
    let options = match parse_args(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(options) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
