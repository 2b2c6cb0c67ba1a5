//! The `evcontract` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use evcontract::diag::{Diagnostic, Location};
use evcontract::{Options, RuntimeDep, output};

// Generation allocates many small values (JSON trees, token streams); mimalloc
// is markedly faster at that than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Typed Socket.IO APIs from one contract file.
#[derive(Parser)]
#[command(name = "evcontract", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate Rust and TypeScript from contracts.
    Generate {
        /// Contract files (`.json`, or `.yaml`/`.yml`). Default: every
        /// `schemas/*.contract.{json,yaml,yml}`, and then
        /// `schemas/contract.schema.json` is kept current too.
        contracts: Vec<PathBuf>,
        /// Output folder.
        #[arg(long, default_value = "generated")]
        out: PathBuf,
        /// Write nothing; exit 1 listing every stale, missing or extra file
        /// with a diff, 0 when everything is current.
        #[arg(long)]
        check: bool,
        /// Make the generated crates depend on `evcontract-runtime` by path
        /// (relative to each generated crate's folder) instead of by version.
        #[arg(long, value_name = "PATH", conflicts_with = "runtime_version")]
        runtime_path: Option<String>,
        /// The version requirement of `evcontract-runtime` in the generated crates.
        #[arg(long, value_name = "VERSION")]
        runtime_version: Option<String>,
    },
    /// Print the JSON Schema of the contract format.
    Schema,
}

const SCHEMA_DIR: &str = "schemas";
const FORMAT_SCHEMA: &str = "schemas/contract.schema.json";

fn format_schema_text() -> String {
    // The marker goes first, where a reader (and `is_generated`) sees it.
    let mut schema = serde_json::Map::new();
    schema.insert(
        "$comment".to_owned(),
        format!(
            "This file is {} schema. Do not edit.",
            evcontract::GENERATED_MARKER
        )
        .into(),
    );
    if let serde_json::Value::Object(o) = evcontract::model::contract_json_schema() {
        schema.extend(o);
    }
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

fn default_contracts() -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(SCHEMA_DIR).map_err(|e| {
        format!(
            "cannot list `{SCHEMA_DIR}/` (run from the project root, or name contract files): {e}"
        )
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            [".contract.json", ".contract.yaml", ".contract.yml"]
                .iter()
                .any(|ext| name.ends_with(ext))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!(
            "no `*.contract.json` (or `.yaml`) in `{SCHEMA_DIR}/`"
        ));
    }
    Ok(files)
}

fn generate(contracts: Vec<PathBuf>, out: &Path, check: bool, runtime: RuntimeDep) -> ExitCode {
    let whole_tree = contracts.is_empty();
    let contracts = if whole_tree {
        match default_contracts() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        contracts
    };
    let mut inputs = Vec::new();
    let mut read_errors = Vec::new();
    for path in contracts {
        match std::fs::read_to_string(&path) {
            Ok(text) => inputs.push((path, text)),
            Err(e) => read_errors.push(Diagnostic {
                location: Location::Pointer(String::new()),
                position: None,
                message: format!("cannot read the contract: {e}"),
                file: path,
            }),
        }
    }
    if !read_errors.is_empty() {
        eprintln!("{}", evcontract::diag::Diagnostics(read_errors));
        return ExitCode::from(2);
    }
    let options = Options { runtime };
    let files = match evcontract::generate_all(&inputs, &options) {
        Ok(f) => f,
        Err(diags) => {
            eprintln!("{diags}");
            eprintln!("{} error(s); nothing was written.", diags.0.len());
            return ExitCode::from(2);
        }
    };
    let mut wanted: Vec<(PathBuf, String)> = files
        .into_iter()
        .map(|f| (out.join(f.path), f.contents))
        .collect();
    // Stale generated files are removed from the whole output folder when
    // every contract was generated, else only from these contracts' folders.
    let scope: Vec<PathBuf> = if whole_tree {
        wanted.push((PathBuf::from(FORMAT_SCHEMA), format_schema_text()));
        vec![out.to_owned()]
    } else {
        let mut dirs: Vec<PathBuf> = wanted
            .iter()
            .filter_map(|(p, _)| {
                let rel = p.strip_prefix(out).ok()?;
                let mut parts = rel.components();
                let lang = parts.next()?;
                let name = parts.next()?;
                Some(out.join(lang).join(name))
            })
            .collect();
        dirs.sort();
        dirs.dedup();
        dirs
    };
    let changes = match output::plan(&wanted, &scope) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if check {
        if changes.is_empty() {
            println!("evcontract: {} generated files are current.", wanted.len());
            return ExitCode::SUCCESS;
        }
        print!("{}", output::report(&changes));
        eprintln!(
            "evcontract: {} file(s) are out of date; run `evcontract generate` and commit the result.",
            changes.len()
        );
        return ExitCode::from(1);
    }
    if let Err(e) = output::apply(&changes) {
        eprintln!("error: writing the generated files failed: {e}");
        return ExitCode::from(2);
    }
    for c in &changes {
        let what = match c {
            output::Change::Create { .. } => "created",
            output::Change::Update { .. } => "updated",
            output::Change::Remove { .. } => "removed",
        };
        println!("{what} {}", c.path().display());
    }
    println!(
        "evcontract: {} files, {} changed.",
        wanted.len(),
        changes.len()
    );
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    evcontract::install_panic_filter();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Help and version are not errors; everything else is bad usage.
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Generate {
            contracts,
            out,
            check,
            runtime_path,
            runtime_version,
        } => {
            let runtime = match (runtime_path, runtime_version) {
                (Some(p), _) => RuntimeDep::Path(p),
                (None, Some(v)) => RuntimeDep::Version(v),
                (None, None) => RuntimeDep::default(),
            };
            generate(contracts, &out, check, runtime)
        }
        Command::Schema => {
            print!("{}", format_schema_text());
            ExitCode::SUCCESS
        }
    }
}
