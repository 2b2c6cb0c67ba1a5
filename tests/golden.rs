//! Golden files: each `tests/cases/<case>/<name>.contract.json` sits beside
//! `expected/`, the exact output for it. `EVCONTRACT_BLESS=1 cargo test`
//! accepts new output. The expected Rust crates are workspace members (so
//! `cargo build`/`clippy` compile them with warnings denied in CI) and the
//! expected TypeScript is checked by `tsc --strict` with type tests.
//! `expected/build-script/` holds what [`Builder`] writes for the same
//! contract (the entry file a `build.rs` includes), with the server and the
//! client, and with the server alone.

use std::fs;
use std::path::{Path, PathBuf};

use evcontract::output;
use evcontract::{Builder, GeneratedFile, Options, generate_all};

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut dirs: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 2, "no golden cases in {}", root.display());
    dirs
}

fn contract_of(dir: &Path) -> (PathBuf, String) {
    let file = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".contract.json"))
        .unwrap_or_else(|| panic!("no contract in {}", dir.display()));
    let text = fs::read_to_string(&file).unwrap();
    (file, text)
}

#[test]
fn golden_files_match() {
    let bless = std::env::var_os("EVCONTRACT_BLESS").is_some();
    let mut failures = String::new();
    for dir in cases() {
        let input = contract_of(&dir);
        let mut files = generate_all(std::slice::from_ref(&input), &Options::default())
            .unwrap_or_else(|d| panic!("{}: {d}", dir.display()));
        files.extend(build_script_entries(&input.0));
        let expected = dir.join("expected");
        let wanted: Vec<(PathBuf, String)> = files
            .into_iter()
            .map(|f| (expected.join(f.path), f.contents))
            .collect();
        let changes = output::plan(&wanted, std::slice::from_ref(&expected)).unwrap();
        if bless {
            output::apply(&changes).unwrap();
        } else if !changes.is_empty() {
            failures.push_str(&output::report(&changes));
        }
    }
    assert!(
        failures.is_empty(),
        "golden files differ (EVCONTRACT_BLESS=1 accepts the new output):\n{failures}"
    );
}

/// What `Builder` writes for `contract`: `build-script/<name>.rs` (server
/// and client) and `build-script/<name>.server.rs` (the server alone).
fn build_script_entries(contract: &Path) -> Vec<GeneratedFile> {
    let mut out = Vec::new();
    for (client, suffix) in [(true, ""), (false, ".server")] {
        let dir = tempfile::tempdir().unwrap();
        let written = Builder::new()
            .contract(contract)
            .server(true)
            .client(client)
            .out_dir(dir.path())
            .emit_rerun_if_changed(false)
            .generate()
            .unwrap_or_else(|e| panic!("{}: {e}", contract.display()));
        for file in written {
            let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
            out.push(GeneratedFile {
                path: PathBuf::from("build-script").join(format!("{stem}{suffix}.rs")),
                contents: fs::read_to_string(&file).unwrap(),
            });
        }
    }
    out
}

#[test]
fn generation_is_deterministic() {
    for dir in cases() {
        let input = contract_of(&dir);
        let a = generate_all(std::slice::from_ref(&input), &Options::default()).unwrap();
        let b = generate_all(std::slice::from_ref(&input), &Options::default()).unwrap();
        assert_eq!(a, b);
    }
}

#[test]
fn every_generated_file_has_the_header() {
    for dir in cases() {
        let input = contract_of(&dir);
        for f in generate_all(std::slice::from_ref(&input), &Options::default()).unwrap() {
            assert!(
                output::is_generated(&f.contents),
                "{} has no @generated header",
                f.path.display()
            );
            assert!(
                !f.contents.contains("0.1.0"),
                "{}: no tool version in output",
                f.path.display()
            );
        }
    }
}

#[test]
fn runtime_dependency_is_an_option() {
    let input = contract_of(&cases()[0]);
    let options = Options {
        runtime: evcontract::RuntimeDep::Path("../../runtime".into()),
    };
    let files = generate_all(std::slice::from_ref(&input), &options).unwrap();
    let manifest = files
        .iter()
        .find(|f| f.path.ends_with("Cargo.toml"))
        .unwrap();
    assert!(
        manifest
            .contents
            .contains("evcontract-runtime = { path = \"../../runtime\" }"),
        "{}",
        manifest.contents
    );
}
