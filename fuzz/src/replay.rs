//! Every target over its committed corpus (`fuzz/corpus/<target>/`), as
//! plain tests on stable: what runs where there is no nightly toolchain or
//! cargo-fuzz (this does not fuzz). `FUZZ_INPUT=<file>` replays that one
//! file through every target instead (a crash artifact, say).

use std::path::{Path, PathBuf};

use crate::contract::Outcome;
use crate::{contract, gateway, structured};

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    if let Some(file) = std::env::var_os("FUZZ_INPUT") {
        let data = std::fs::read(&file).expect("FUZZ_INPUT is readable");
        return vec![(PathBuf::from(file), data)];
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a corpus entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files
        .into_iter()
        .map(|path| {
            let data = std::fs::read(&path).expect("a readable seed");
            (path, data)
        })
        .collect()
}

fn replay(target: &str, run: fn(&[u8])) {
    let inputs = inputs(target);
    for (path, data) in &inputs {
        let result = std::panic::catch_unwind(|| run(data));
        assert!(result.is_ok(), "{target} failed on {}", path.display());
    }
    eprintln!("{target}: replayed {} input(s), no failure", inputs.len());
}

#[test]
fn contract_text() {
    replay("contract_text", contract::contract_text);
}

#[test]
fn contract_structured() {
    replay("contract_structured", structured::contract_structured);
    if std::env::var_os("FUZZ_INPUT").is_none() {
        let generated = inputs("contract_structured")
            .iter()
            .filter(|(_, data)| matches!(structured::outcome(data), Some(Outcome::Generated(_))))
            .count();
        assert!(generated > 0, "no structured seed reaches generation");
    }
}

#[test]
fn gateway_inbound() {
    replay("gateway_inbound", gateway::gateway_inbound);
}

/// Writes `count` seeds for `contract_structured` that load and generate,
/// found from a fixed seed: `cargo test --manifest-path fuzz/Cargo.toml
/// --no-default-features --lib -- --ignored structured_seeds`.
#[test]
#[ignore = "writes seeds into fuzz/corpus/contract_structured"]
fn structured_seeds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/contract_structured");
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut found, mut tried) = (0, 0);
    while found < 6 && tried < 100_000 {
        tried += 1;
        let len = 64 + (next() % 1024) as usize;
        let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if let Some(Outcome::Generated(_)) = structured::outcome(&data) {
            found += 1;
            std::fs::write(dir.join(format!("generates-{found}")), &data).expect("written");
        }
    }
    eprintln!("{found} seeds that generate, out of {tried} tried");
}

/// Prints the contract `FUZZ_INPUT` decodes to for `contract_structured`:
/// `FUZZ_INPUT=<file> cargo test --manifest-path fuzz/Cargo.toml
/// --no-default-features --lib -- --ignored --nocapture show_structured`.
#[test]
#[ignore = "prints the contract of FUZZ_INPUT"]
fn show_structured() {
    for (path, data) in inputs("contract_structured") {
        let mut u = arbitrary::Unstructured::new(&data);
        let (file, text) = structured::contract_file(&mut u).expect("a contract");
        println!("{} as {file}:\n{text}", path.display());
    }
}
