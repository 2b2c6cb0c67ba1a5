//! Codegen: `evcontract generate` on a synthetic contract, then a no-op
//! regeneration that must write nothing.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::sys;

/// Events per namespace of the synthetic contract (60% client, 40% server).
const EVENTS_PER_NAMESPACE: usize = 100;

fn definition(i: usize, types: usize) -> Value {
    let mut props = Map::new();
    props.insert(
        "id".into(),
        json!({"type": "string", "minLength": 1, "maxLength": 64, "description": "Identifier."}),
    );
    props.insert("count".into(), json!({"type": "integer", "minimum": 0}));
    props.insert(
        "ratio".into(),
        json!({"type": "number", "minimum": 0, "maximum": 1}),
    );
    props.insert("enabled".into(), json!({"type": "boolean"}));
    props.insert(
        "tags".into(),
        json!({"type": "array", "items": {"type": "string"}}),
    );
    props.insert(
        "createdAt".into(),
        json!({"type": "string", "format": "date-time"}),
    );
    if i.is_multiple_of(4) {
        props.insert(
            "kind".into(),
            json!({"type": "string", "enum": ["alpha", "beta", "gamma"]}),
        );
    }
    if i > 0 && !i.is_multiple_of(5) {
        // A reference to an earlier type (optional, so no cycles matter).
        let target = (i * 7 + 3) % i;
        props.insert(
            "parent".into(),
            json!({"$ref": format!("#/definitions/Type{target}")}),
        );
    }
    if i.is_multiple_of(3) && types > 1 {
        let target = (i + 1) % types;
        props.insert(
            "children".into(),
            json!({"type": "array", "items": {"$ref": format!("#/definitions/Type{target}")}}),
        );
    }
    json!({
        "description": format!("Synthetic type {i}."),
        "type": "object",
        "properties": props,
        "required": ["id", "count", "enabled"],
        "additionalProperties": false
    })
}

/// A contract with `events` events (client and server, spread over
/// namespaces of 100) and `types` definitions referencing each other.
pub(crate) fn synthetic_contract(events: usize, types: usize) -> Value {
    let types = types.max(1);
    let definitions: Map<String, Value> = (0..types)
        .map(|i| (format!("Type{i}"), definition(i, types)))
        .collect();
    let mut namespaces = Map::new();
    let mut made = 0;
    let mut ns = 0;
    while made < events {
        let here = (events - made).min(EVENTS_PER_NAMESPACE);
        let client_count = (here * 6).div_ceil(10);
        let mut client = Map::new();
        let mut server = Map::new();
        for k in 0..here {
            let global = made + k;
            let ty = format!("#/definitions/Type{}", global % types);
            if k < client_count {
                let mut event = Map::new();
                event.insert(
                    "description".into(),
                    json!(format!("Client event {global}.")),
                );
                event.insert(
                    "auth".into(),
                    json!(if k % 2 == 0 { "required" } else { "optional" }),
                );
                if k % 3 == 0 {
                    event.insert(
                        "payload".into(),
                        json!({
                            "type": "object",
                            "properties": {
                                "itemId": {"type": "string", "minLength": 1, "maxLength": 200},
                                "value": {"$ref": ty},
                                "note": {"type": ["string", "null"]}
                            },
                            "required": ["itemId", "value"],
                            "additionalProperties": false
                        }),
                    );
                } else {
                    event.insert("payload".into(), json!({"$ref": ty}));
                }
                if k % 2 == 0 {
                    let ack = format!("#/definitions/Type{}", (global + 1) % types);
                    event.insert("ack".into(), json!({"$ref": ack}));
                }
                if k % 5 == 0 {
                    event.insert("rateLimit".into(), json!({"max": 10, "windowMs": 1000}));
                }
                client.insert(format!("do_event_{k}"), Value::Object(event));
            } else {
                server.insert(
                    format!("on_event_{k}"),
                    json!({"description": format!("Server event {global}."), "payload": {"$ref": ty}}),
                );
            }
        }
        namespaces.insert(
            format!("/area{ns}"),
            json!({
                "description": format!("Synthetic namespace {ns}."),
                "auth": "optional",
                "rooms": {"item": {"pattern": "item:{itemId}", "description": "One item."}},
                "clientEvents": client,
                "serverEvents": server
            }),
        );
        made += here;
        ns += 1;
    }
    json!({
        "contract": "synthetic",
        "version": "1.0.0",
        "description": "Synthetic contract for the codegen benchmark.",
        "definitions": definitions,
        "errors": {"ITEM_NOT_FOUND": {"description": "No such item."}},
        "namespaces": namespaces
    })
}

/// One codegen round.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CodegenRun {
    /// Round number (from 1).
    pub(crate) round: usize,
    /// Events in the contract.
    pub(crate) events: usize,
    /// Definitions in the contract.
    pub(crate) types: usize,
    /// Size of the contract file.
    pub(crate) contract_bytes: u64,
    /// Files generated.
    pub(crate) files: usize,
    /// Their total size.
    pub(crate) output_bytes: u64,
    /// First generation: wall seconds.
    pub(crate) generate_s: f64,
    /// First generation: CPU seconds.
    pub(crate) generate_cpu_s: f64,
    /// First generation: peak RSS.
    pub(crate) generate_max_rss_bytes: u64,
    /// No-op regeneration: wall seconds.
    pub(crate) noop_s: f64,
    /// No-op regeneration: CPU seconds.
    pub(crate) noop_cpu_s: f64,
    /// No-op regeneration: peak RSS.
    pub(crate) noop_max_rss_bytes: u64,
    /// The no-op's summary line.
    pub(crate) noop_summary: String,
    /// Files whose modification time or size changed in the no-op run.
    pub(crate) noop_touched_files: usize,
}

struct Timed {
    seconds: f64,
    usage: sys::ChildUsage,
    stdout: String,
}

/// How to start `evcontract`: directly, or through `taskset -c <cpus>` (the
/// generator pinned itself to one CPU, and children inherit that; codegen
/// gets every CPU back).
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    /// The `evcontract` binary.
    pub(crate) evcontract: PathBuf,
    /// `taskset` and the CPU list to run it on, when pinning.
    pub(crate) cpus: Option<(PathBuf, String)>,
}

impl Launch {
    fn command(&self) -> Command {
        let pin = self
            .cpus
            .as_ref()
            .map(|(taskset, list)| (taskset.as_path(), list.as_str()));
        sys::pinned_command(pin, &self.evcontract)
    }
}

fn run_generate(launch: &Launch, contract: &Path, out: &Path, log: &Path) -> Result<Timed, String> {
    let stdout = File::create(log).map_err(|e| e.to_string())?;
    let stderr = stdout.try_clone().map_err(|e| e.to_string())?;
    let start = Instant::now();
    // taskset execs evcontract: the pid, and so wait4's figures, are its.
    let child = launch
        .command()
        .arg("generate")
        .arg(contract)
        .arg("--out")
        .arg(out)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", launch.evcontract.display()))?;
    // wait4 (not Child::wait) to get this child's own peak RSS and CPU time.
    let usage = sys::wait_child(child.id()).map_err(|e| format!("wait4: {e}"))?;
    let seconds = start.elapsed().as_secs_f64();
    let stdout = std::fs::read_to_string(log).unwrap_or_default();
    if !usage.success {
        return Err(format!("evcontract generate failed:\n{stdout}"));
    }
    Ok(Timed {
        seconds,
        usage,
        stdout,
    })
}

/// Every file under `dir` with its modification time and size.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (SystemTime, u64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(path);
            } else if let Ok(modified) = meta.modified() {
                out.insert(path, (modified, meta.len()));
            }
        }
    }
    out
}

/// Writes the synthetic contract into `dir`, generates it into a fresh
/// folder, then regenerates it unchanged.
pub(crate) fn run(
    launch: &Launch,
    dir: &Path,
    round: usize,
    events: usize,
    types: usize,
) -> Result<CodegenRun, String> {
    let round_dir = dir.join(format!("codegen-{round}"));
    let _ = std::fs::remove_dir_all(&round_dir);
    std::fs::create_dir_all(&round_dir).map_err(|e| e.to_string())?;
    let contract = round_dir.join("synthetic.contract.json");
    let text = serde_json::to_string_pretty(&synthetic_contract(events, types))
        .map_err(|e| e.to_string())?;
    std::fs::write(&contract, &text).map_err(|e| e.to_string())?;
    let out = round_dir.join("out");

    let first = run_generate(launch, &contract, &out, &round_dir.join("generate.log"))?;
    let before = snapshot(&out);
    if before.is_empty() {
        return Err(format!("evcontract generated nothing:\n{}", first.stdout));
    }
    let noop = run_generate(launch, &contract, &out, &round_dir.join("noop.log"))?;
    let after = snapshot(&out);
    let touched = after
        .iter()
        .filter(|(path, stamp)| before.get(*path) != Some(*stamp))
        .count()
        + before.keys().filter(|p| !after.contains_key(*p)).count();
    let summary = noop
        .stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("evcontract:"))
        .unwrap_or_default()
        .to_owned();
    Ok(CodegenRun {
        round,
        events,
        types,
        contract_bytes: text.len() as u64,
        files: before.len(),
        output_bytes: before.values().map(|(_, len)| len).sum(),
        generate_s: first.seconds,
        generate_cpu_s: first.usage.cpu_seconds,
        generate_max_rss_bytes: first.usage.max_rss_bytes,
        noop_s: noop.seconds,
        noop_cpu_s: noop.usage.cpu_seconds,
        noop_max_rss_bytes: noop.usage.max_rss_bytes,
        noop_summary: summary,
        noop_touched_files: touched,
    })
}

impl CodegenRun {
    /// Whether the no-op run wrote nothing and said so.
    pub(crate) fn noop_ok(&self) -> bool {
        self.noop_touched_files == 0 && self.noop_summary.ends_with(" 0 changed.")
    }
}
