//! The per-message cost of the typed layer's payload work, in isolation:
//! validating a client event's payload and decoding it into its contract
//! type, the way the gateway does it (`server::validator` on the frame's
//! text, then `wire::decode_text`), against the path it replaced (parse a
//! `serde_json::Value`, validate the tree with `jsonschema`, deserialize the
//! typed struct from the tree).
//!
//! `cargo run --release -p evcontract-bench --bin bench-layer [-- ROUNDS ITERATIONS]`
//! prints, per payload, the median nanoseconds per message over the rounds
//! and their range. Both paths run in alternation within each round, so a
//! busy machine slows both. For an instruction count, run it under
//! `valgrind --tool=callgrind` with a small ITERATIONS.

use std::hint::black_box;
use std::time::Instant;

use chat_contract::chat::server::SPEC;
use chat_contract::runtime::server::validator::PayloadValidator;
use chat_contract::runtime::wire::{decode_payload, decode_text};
use serde::de::DeserializeOwned;
use serde_json::Value;

struct Case {
    event: &'static str,
    text: String,
    new_path: Box<dyn Fn(&str) -> bool>,
    old_path: Box<dyn Fn(&str) -> bool>,
}

fn case<T: DeserializeOwned + 'static>(event: &'static str, text: String) -> Result<Case, String> {
    let spec = SPEC
        .client_event(event)
        .ok_or_else(|| format!("no event {event}"))?;
    let ours = PayloadValidator::compile(spec.schema)?;
    let schema: Value = serde_json::from_str(spec.schema).map_err(|e| e.to_string())?;
    let reference = jsonschema::draft7::new(&schema).map_err(|e| e.to_string())?;
    Ok(Case {
        event,
        text,
        new_path: Box::new(move |text| {
            ours.check(text).is_ok() && decode_text::<T>(text).map(black_box).is_ok()
        }),
        old_path: Box::new(move |text| {
            let Ok(value) = serde_json::from_str::<Value>(text) else {
                return false;
            };
            reference.validate(&value).is_ok() && decode_payload::<T>(&value).map(black_box).is_ok()
        }),
    })
}

fn ns_per_message(f: &dyn Fn(&str) -> bool, text: &str, iterations: usize) -> Result<f64, String> {
    let start = Instant::now();
    for _ in 0..iterations {
        if !f(black_box(text)) {
            return Err(format!("payload refused: {text}"));
        }
    }
    Ok(start.elapsed().as_nanos() as f64 / iterations as f64)
}

fn summary(mut xs: Vec<f64>) -> (f64, f64, f64) {
    xs.sort_by(f64::total_cmp);
    (xs[xs.len() / 2], xs[0], xs[xs.len() - 1])
}

fn run() -> Result<(), String> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().map_err(|_| format!("not a number: {a}")))
        .collect::<Result<_, _>>()?;
    let rounds = args.first().copied().unwrap_or(7).max(1);
    let iterations = args.get(1).copied().unwrap_or(200_000).max(1);
    let content = "Hello from the benchmark, a message of ordinary length for a chat.";
    let cases = [
        case::<chat_contract::SendMessage>(
            "send_message",
            format!(r#"{{"threadId":"bench-thread-7","content":"{content}"}}"#),
        )?,
        case::<chat_contract::JoinThread>(
            "join_thread",
            r#"{"threadId":"bench-thread-7"}"#.to_owned(),
        )?,
    ];
    println!(
        "payload validation + decoding per message, {rounds} rounds of {iterations} (median, range):"
    );
    for c in &cases {
        let (mut old, mut new) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            old.push(ns_per_message(&c.old_path, &c.text, iterations)?);
            new.push(ns_per_message(&c.new_path, &c.text, iterations)?);
        }
        let ratios: Vec<f64> = new.iter().zip(&old).map(|(n, o)| n / o).collect();
        let (o, o_lo, o_hi) = summary(old);
        let (n, n_lo, n_hi) = summary(new);
        let (r, r_lo, r_hi) = summary(ratios);
        println!(
            "{:13} tree + jsonschema {o:7.0} ns ({o_lo:.0}-{o_hi:.0})   text validator {n:7.0} ns ({n_lo:.0}-{n_hi:.0})   ratio {r:.3} ({r_lo:.3}-{r_hi:.3})",
            c.event
        );
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-layer: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
