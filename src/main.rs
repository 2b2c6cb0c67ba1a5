//! The `evcontract` command line.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use evcontract::project::{self, Project};
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
    ///
    /// Settings come from `evcontract.toml` (in the current folder or the
    /// nearest one above) when there is one; flags override it.
    Generate {
        /// Contract files (`.json`, or `.yaml`/`.yml`). Default: the project
        /// file's `contracts`, else every `schemas/*.contract.{json,yaml,yml}`
        /// (and then the contract format's JSON Schema is kept current too).
        contracts: Vec<PathBuf>,
        /// Output folder: Rust in `<OUT>/rust`, TypeScript in `<OUT>/ts`
        /// (default `generated`, or the project file's folders).
        #[arg(long)]
        out: Option<PathBuf>,
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
        /// The project file to read instead of looking for `evcontract.toml`.
        #[arg(long, value_name = "FILE", conflicts_with = "no_config")]
        config: Option<PathBuf>,
        /// Ignore any `evcontract.toml`.
        #[arg(long)]
        no_config: bool,
    },
    /// Print the JSON Schema of the contract format.
    Schema,
    /// Does a contract change break deployed clients or servers? Compares
    /// OLD with NEW, or every `schemas/` contract with its version at a git
    /// ref. Exit 0: nothing breaks, or every breaking change is announced by
    /// a new major version (a new minor below 1.0); 1: a breaking change is
    /// not announced; 2: bad input.
    Breaking {
        /// The old contract file (with NEW; not with `--against`).
        #[arg(requires = "new", conflicts_with = "against")]
        old: Option<PathBuf>,
        /// The new contract file.
        new: Option<PathBuf>,
        /// Compare every `schemas/*.contract.{json,yaml,yml}` with the same
        /// path at this git ref (read with `git show`, no checkout).
        #[arg(long, value_name = "REF")]
        against: Option<String>,
        /// `text` (like rustc) or `json` (one document, for tools).
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        format: String,
    },
    /// Start a new project in DIR: a starter contract (with `$schema`, for
    /// editor completion), its generated code, a server crate implementing
    /// the generated trait, `evcontract.toml` and a CI job running
    /// `generate --check`.
    Init {
        /// The new project's folder (new, or empty).
        dir: PathBuf,
        /// The contract's name (default: the folder's name in snake_case).
        #[arg(long)]
        name: Option<String>,
        /// Make the generated crates depend on `evcontract-runtime` by path
        /// (relative to each generated crate's folder), written into
        /// `evcontract.toml`; default: from crates.io.
        #[arg(long, value_name = "PATH")]
        runtime_path: Option<String>,
    },
}

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
    if let serde_json::Value::Object(o) = evcontract::contract::contract_json_schema() {
        schema.extend(o);
    }
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

fn default_contracts() -> Result<Vec<PathBuf>, String> {
    const SCHEMA_DIR: &str = project::DEFAULT_SCHEMA_DIR;
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

/// The settings for this run: the project file (found or named), with the
/// command line's flags over it. The current folder becomes the project's
/// root, so that every path below is relative to it.
fn settings(flags: Flags) -> Result<(Project, Vec<PathBuf>), String> {
    let cwd = std::env::current_dir().map_err(|e| format!("no current folder: {e}"))?;
    let file = match (&flags.config, flags.no_config) {
        (_, true) => None,
        (Some(file), false) => Some(cwd.join(file)),
        (None, false) => project::find(&cwd),
    };
    let mut project = match &file {
        Some(file) => Project::load(file).map_err(|d| d.to_string())?,
        None => Project::defaults(&cwd),
    };
    // Paths given on the command line are the caller's, from `cwd`.
    let contracts: Vec<PathBuf> = flags.contracts.iter().map(|c| cwd.join(c)).collect();
    if let Some(out) = &flags.out {
        let out = cwd.join(out);
        project.rust_out = project.rust_out.map(|_| out.join("rust"));
        project.ts_out = project.ts_out.map(|_| out.join("ts"));
        project.asyncapi_out = project.asyncapi_out.map(|_| out.join("asyncapi"));
        project.docs_out = project.docs_out.map(|_| out.join("docs"));
    }
    match (flags.runtime_path, flags.runtime_version) {
        (Some(p), _) => project.runtime = RuntimeDep::Path(p),
        (None, Some(v)) => project.runtime = RuntimeDep::Version(v),
        (None, None) => {}
    }
    std::env::set_current_dir(&project.root)
        .map_err(|e| format!("cannot enter {}: {e}", project.root.display()))?;
    // Back to relative paths where they are inside the root, for messages.
    let relative = |p: PathBuf| match p.strip_prefix(&project.root) {
        Ok(rel) => rel.to_owned(),
        Err(_) => p,
    };
    let contracts = contracts.into_iter().map(relative).collect();
    project.rust_out = project.rust_out.take().map(relative);
    project.ts_out = project.ts_out.take().map(relative);
    project.asyncapi_out = project.asyncapi_out.take().map(relative);
    project.docs_out = project.docs_out.take().map(relative);
    Ok((project, contracts))
}

/// What `generate` was given on the command line.
struct Flags {
    contracts: Vec<PathBuf>,
    out: Option<PathBuf>,
    runtime_path: Option<String>,
    runtime_version: Option<String>,
    config: Option<PathBuf>,
    no_config: bool,
}

/// Where a generated file goes: `<target>/…` (`rust`, `ts`, `asyncapi`,
/// `docs`) into that target's output folder; `None` for a target that is
/// off.
fn destination(project: &Project, path: &Path) -> Option<PathBuf> {
    let mut parts = path.components();
    let out = match parts.next()?.as_os_str().to_str()? {
        "rust" => project.rust_out.as_ref()?,
        "ts" => project.ts_out.as_ref()?,
        "asyncapi" => project.asyncapi_out.as_ref()?,
        "docs" => project.docs_out.as_ref()?,
        _ => return None,
    };
    Some(out.join(parts.as_path()))
}

fn generate(flags: Flags, check: bool) -> ExitCode {
    let (project, contracts) = match settings(flags) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if project.rust_out.is_none()
        && project.ts_out.is_none()
        && project.asyncapi_out.is_none()
        && project.docs_out.is_none()
    {
        eprintln!("error: every output (rust, typescript, asyncapi, docs) is switched off");
        return ExitCode::from(2);
    }
    let whole_tree = contracts.is_empty();
    let contracts = match (whole_tree, &project.contracts) {
        (false, _) => contracts,
        (true, Some(listed)) => listed.clone(),
        (true, None) => match default_contracts() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let inputs = match evcontract::read_contracts(&contracts) {
        Ok(inputs) => inputs,
        Err(unreadable) => {
            eprintln!("{unreadable}");
            return ExitCode::from(2);
        }
    };
    let options = Options {
        runtime: project.runtime.clone(),
    };
    let files = match evcontract::generate_all(&inputs, &options) {
        Ok(f) => f,
        Err(diags) => {
            eprintln!("{diags}");
            eprintln!("{} error(s); nothing was written.", diags.0.len());
            return ExitCode::from(2);
        }
    };
    let mut wanted: Vec<(PathBuf, String)> = Vec::with_capacity(files.len() + 1);
    // Stale generated files are removed from the whole output folders when
    // every contract was generated, else only from these contracts' folders.
    let mut scope: Vec<PathBuf> = Vec::new();
    for file in files {
        let Some(path) = destination(&project, &file.path) else {
            continue;
        };
        // `rust/<contract>` and `ts/<contract>` folders are scanned for
        // stale files; the other targets write one file per contract.
        if !whole_tree && (file.path.starts_with("rust") || file.path.starts_with("ts")) {
            let folder: PathBuf = file.path.components().take(2).collect();
            if let Some(dir) = destination(&project, &folder) {
                scope.push(dir);
            }
        }
        wanted.push((path, file.contents));
    }
    if whole_tree {
        if let Some(schema) = &project.format_schema {
            wanted.push((schema.clone(), format_schema_text()));
        }
        for out in [
            &project.rust_out,
            &project.ts_out,
            &project.asyncapi_out,
            &project.docs_out,
        ] {
            scope.extend(out.iter().cloned());
        }
    }
    scope.sort();
    scope.dedup();
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

/// One comparison for `breaking`: the old side's label and text, the new
/// side's file and text.
struct Pair {
    old_label: PathBuf,
    old_text: Option<String>,
    new_file: PathBuf,
    new_text: Option<String>,
}

fn git(args: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new("git")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

fn is_contract(name: &str) -> bool {
    [".contract.json", ".contract.yaml", ".contract.yml"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

fn pairs_against(reference: &str) -> Result<Vec<Pair>, String> {
    git(&[
        "rev-parse",
        "--verify",
        "--quiet",
        &format!("{reference}^{{commit}}"),
    ])
    .map_err(|_| format!("unknown git ref `{reference}`"))?;
    let prefix = git(&["rev-parse", "--show-prefix"])?.trim().to_owned();
    let listed = git(&["ls-tree", "-r", "--name-only", reference, "--", "schemas/"])?;
    let mut pairs = Vec::new();
    let mut at_ref: Vec<PathBuf> = listed
        .lines()
        .filter(|l| is_contract(l))
        .map(|l| PathBuf::from(l.strip_prefix(&prefix).unwrap_or(l)))
        .collect();
    at_ref.sort();
    let now = default_contracts().unwrap_or_default();
    for file in &now {
        let spec = format!("{reference}:./{}", file.display());
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        pairs.push(Pair {
            old_label: PathBuf::from(format!("{reference}:{}", file.display())),
            old_text: git(&["show", &spec]).ok(),
            new_file: file.clone(),
            new_text: Some(text),
        });
    }
    for file in at_ref {
        if !now.contains(&file) {
            pairs.push(Pair {
                old_label: PathBuf::from(format!("{reference}:{}", file.display())),
                old_text: Some(String::new()),
                new_file: file,
                new_text: None,
            });
        }
    }
    Ok(pairs)
}

fn breaking(
    old: Option<PathBuf>,
    new: Option<PathBuf>,
    against: Option<String>,
    json: bool,
) -> ExitCode {
    use evcontract::breaking::{self, Severity};
    let pairs = match (old, new, against) {
        (Some(old), Some(new), None) => {
            // The same diagnostics as `generate` for a file that cannot be
            // read.
            match evcontract::read_contracts(&[old, new]).map(Vec::into_iter) {
                Ok(mut read) => match (read.next(), read.next()) {
                    (Some((old_label, o)), Some((new_file, n))) => vec![Pair {
                        old_label,
                        old_text: Some(o),
                        new_file,
                        new_text: Some(n),
                    }],
                    _ => return ExitCode::from(2),
                },
                Err(unreadable) => {
                    eprintln!("{unreadable}");
                    return ExitCode::from(2);
                }
            }
        }
        (None, None, Some(reference)) => match pairs_against(&reference) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("error: give OLD and NEW contract files, or --against <git-ref>");
            return ExitCode::from(2);
        }
    };
    let mut documents = Vec::new();
    let mut text = String::new();
    let mut unannounced = 0usize;
    let mut bad_input = false;
    for pair in pairs {
        let (old_text, new_text) = match (&pair.old_text, &pair.new_text) {
            // New since the ref: nothing deployed uses it.
            (None, Some(_)) => {
                text.push_str(&format!(
                    "info[contract-added]: {} is new\n",
                    pair.new_file.display()
                ));
                documents.push(serde_json::json!({ "new": pair.new_file, "added": true }));
                continue;
            }
            (Some(_), None) => {
                unannounced += 1;
                text.push_str(&format!(
                    "breaking[contract-removed]: {} was deleted: every client of it breaks\n",
                    pair.old_label.display()
                ));
                documents.push(serde_json::json!({ "old": pair.old_label, "removed": true }));
                continue;
            }
            (Some(o), Some(n)) => (o, n),
            (None, None) => continue,
        };
        let loaded = (
            breaking::load(&pair.old_label, old_text),
            breaking::load(&pair.new_file, new_text),
        );
        let (old, new) = match loaded {
            (Ok(o), Ok(n)) => (o, n),
            (o, n) => {
                for diags in [o.err(), n.err()].into_iter().flatten() {
                    eprintln!("{}", evcontract::diag::Diagnostics(diags));
                }
                bad_input = true;
                continue;
            }
        };
        let report = breaking::compare(&old.side(), &new.side());
        text.push_str(&format!(
            "comparing {} ({}) with {} ({})\n",
            pair.old_label.display(),
            report.old_version,
            pair.new_file.display(),
            report.new_version
        ));
        text.push_str(&breaking::render_text(&report));
        let count = report
            .changes
            .iter()
            .filter(|c| c.severity == Severity::Breaking)
            .count();
        match &report.required_version {
            Some(needed) => {
                unannounced += 1;
                text.push_str(&format!(
                    "error: {count} breaking change(s) in {} are not announced: its version is {}; use {needed} (a new major version, or a new minor below 1.0)\n",
                    pair.new_file.display(),
                    report.new_version
                ));
            }
            None if count > 0 => text.push_str(&format!(
                "note: {count} breaking change(s), announced by version {}\n",
                report.new_version
            )),
            None => {}
        }
        documents.push(
            serde_json::json!({ "old": pair.old_label, "new": pair.new_file, "report": report }),
        );
    }
    if bad_input {
        return ExitCode::from(2);
    }
    let output = if json {
        let doc = serde_json::json!({ "comparisons": documents, "unannounced": unannounced });
        format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        )
    } else {
        text
    };
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), output.as_bytes());
    if unannounced > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn init(dir: &Path, name: Option<String>, runtime_path: Option<&str>) -> ExitCode {
    let name = match name.map_or_else(|| evcontract::init::name_for(dir), Ok) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // evcontract-runtime is not published yet: without --runtime-path the
    // project uses the runtime of the checkout this CLI comes from, and
    // says so, so that it builds as written.
    let checkout = runtime_path
        .is_none()
        .then(evcontract::init::checkout_runtime)
        .flatten();
    let runtime_path = runtime_path.or(checkout.as_deref());
    if let Some(path) = &checkout {
        println!(
            "evcontract: the generated crate depends on the runtime of the checkout this CLI was built from ({path}), \
             set as `runtime-path` in evcontract.toml; change it to `runtime-version` once evcontract-runtime is on crates.io"
        );
    }
    if let Err(e) = evcontract::init::scaffold(dir, &name, runtime_path) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    if let Err(e) = std::env::set_current_dir(dir) {
        eprintln!("error: cannot enter {}: {e}", dir.display());
        return ExitCode::from(2);
    }
    let flags = Flags {
        contracts: Vec::new(),
        out: None,
        runtime_path: None,
        runtime_version: None,
        config: None,
        no_config: false,
    };
    let code = generate(flags, false);
    if code == ExitCode::SUCCESS {
        println!(
            "evcontract: new project `{name}` in {}. Next: cd {} && cargo run -p {}-server",
            dir.display(),
            dir.display(),
            heck::ToKebabCase::to_kebab_case(name.as_str())
        );
    }
    code
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
            config,
            no_config,
        } => generate(
            Flags {
                contracts,
                out,
                runtime_path,
                runtime_version,
                config,
                no_config,
            },
            check,
        ),
        Command::Init {
            dir,
            name,
            runtime_path,
        } => init(&dir, name, runtime_path.as_deref()),
        Command::Breaking {
            old,
            new,
            against,
            format,
        } => breaking(old, new, against, format == "json"),
        Command::Schema => {
            print!("{}", format_schema_text());
            ExitCode::SUCCESS
        }
    }
}
