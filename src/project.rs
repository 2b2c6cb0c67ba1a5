//! The optional project file, `evcontract.toml`: which contracts a project
//! has, where its Rust and TypeScript go (each can be switched off), and how
//! the generated crates depend on the runtime. `generate` and
//! `generate --check` both read it, so the check compares against exactly
//! what `generate` writes; flags given on the command line override it.
//!
//! ```toml
//! contracts = ["api/chat.contract.json"]     # default: schemas/*.contract.{json,yaml,yml}
//! format-schema = "api/contract.schema.json" # kept current when every contract is generated
//!
//! [rust]
//! out = "server/generated"                   # default: generated/rust
//! runtime-path = "../../../runtime"          # or runtime-version = "0.1"
//!
//! [typescript]
//! out = "web/src/generated"                  # default: generated/ts
//! # enabled = false                          # no TypeScript at all
//!
//! [asyncapi]                                 # <contract>.asyncapi.json
//! out = "docs/asyncapi"                      # default: generated/asyncapi
//!
//! [docs]                                     # <contract>.md, a reference
//! out = "docs/api"                           # default: generated/docs
//! ```
//!
//! Paths are relative to the folder that holds the file, except
//! `runtime-path`, which is written into each generated `Cargo.toml` as is
//! (relative to the generated crate, like `--runtime-path`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::diag::{Diagnostic, Location};
use crate::options::RuntimeDep;

/// The project file's name, looked for in the current folder and upwards.
pub const FILE_NAME: &str = "evcontract.toml";

/// Where contracts are found when neither the command line nor the project
/// file lists them.
pub const DEFAULT_SCHEMA_DIR: &str = "schemas";

/// The JSON Schema of the contract format, written beside the discovered
/// contracts when every contract is generated.
pub const DEFAULT_FORMAT_SCHEMA: &str = "schemas/contract.schema.json";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawProject {
    contracts: Option<Vec<PathBuf>>,
    format_schema: Option<PathBuf>,
    #[serde(default)]
    rust: RawRust,
    #[serde(default)]
    typescript: RawTarget,
    #[serde(default)]
    asyncapi: RawTarget,
    #[serde(default)]
    docs: RawTarget,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRust {
    enabled: Option<bool>,
    out: Option<PathBuf>,
    runtime_path: Option<String>,
    runtime_version: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawTarget {
    enabled: Option<bool>,
    out: Option<PathBuf>,
}

/// A project's settings, paths relative to its root folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// The project file (absent: today's defaults, no file).
    pub file: Option<PathBuf>,
    /// The folder every relative path below starts from.
    pub root: PathBuf,
    /// The contracts; `None`: every `schemas/*.contract.{json,yaml,yml}`.
    pub contracts: Option<Vec<PathBuf>>,
    /// Where the contract format's JSON Schema is kept current when every
    /// contract is generated (`None`: nowhere).
    pub format_schema: Option<PathBuf>,
    /// The Rust output folder (one crate per contract in it); `None`: off.
    pub rust_out: Option<PathBuf>,
    /// The TypeScript output folder (one package per contract); `None`: off.
    pub ts_out: Option<PathBuf>,
    /// The AsyncAPI output folder (`<contract>.asyncapi.json`); `None`: off.
    pub asyncapi_out: Option<PathBuf>,
    /// The reference docs output folder (`<contract>.md`); `None`: off.
    pub docs_out: Option<PathBuf>,
    /// How generated crates depend on `evcontract-runtime`.
    pub runtime: RuntimeDep,
}

impl Project {
    /// The settings without a project file, rooted at `root`: contracts
    /// from `schemas/`, everything under `generated/`.
    pub fn defaults(root: &Path) -> Self {
        Self {
            file: None,
            root: root.to_owned(),
            contracts: None,
            format_schema: Some(PathBuf::from(DEFAULT_FORMAT_SCHEMA)),
            rust_out: Some(PathBuf::from("generated/rust")),
            ts_out: Some(PathBuf::from("generated/ts")),
            asyncapi_out: Some(PathBuf::from("generated/asyncapi")),
            docs_out: Some(PathBuf::from("generated/docs")),
            runtime: RuntimeDep::default(),
        }
    }

    /// Reads the project file at `file` (its folder is the root). A key
    /// that does not exist, a value of the wrong type or a TOML syntax error
    /// is a diagnostic with the line and column.
    pub fn load(file: &Path) -> Result<Self, Diagnostic> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Diagnostic::at_root(file, format!("cannot read the project file: {e}")))?;
        let root = file.parent().unwrap_or(Path::new(".")).to_owned();
        Self::parse(file, &root, &text)
    }

    /// [`Project::load`] on text already read.
    pub fn parse(file: &Path, root: &Path, text: &str) -> Result<Self, Diagnostic> {
        let raw: RawProject = toml::from_str(text).map_err(|e| {
            let (line, col) = e
                .span()
                .map_or((1, 1), |span| crate::source_map::line_col(text, span.start));
            Diagnostic {
                file: file.to_owned(),
                location: Location::LineCol(line, col),
                position: None,
                message: e.message().trim_end().to_owned(),
            }
        })?;
        let defaults = Self::defaults(root);
        let runtime = match (raw.rust.runtime_path, raw.rust.runtime_version) {
            (Some(_), Some(_)) => {
                return Err(Diagnostic {
                    file: file.to_owned(),
                    location: Location::LineCol(
                        line_of_key(text, "runtime-version").unwrap_or(1),
                        1,
                    ),
                    position: None,
                    message: "give `runtime-path` or `runtime-version`, not both".to_owned(),
                });
            }
            (Some(path), None) => RuntimeDep::Path(path),
            (None, Some(version)) => RuntimeDep::Version(version),
            (None, None) => RuntimeDep::default(),
        };
        let target = |enabled: Option<bool>, out: Option<PathBuf>, default: Option<PathBuf>| {
            enabled.unwrap_or(true).then(|| out.or(default)).flatten()
        };
        Ok(Self {
            file: Some(file.to_owned()),
            root: root.to_owned(),
            format_schema: match (&raw.contracts, raw.format_schema) {
                (_, Some(path)) => Some(path),
                // Listed contracts may live anywhere: no schema file unless
                // one is named.
                (Some(_), None) => None,
                (None, None) => defaults.format_schema,
            },
            contracts: raw.contracts,
            rust_out: target(raw.rust.enabled, raw.rust.out, defaults.rust_out),
            ts_out: target(raw.typescript.enabled, raw.typescript.out, defaults.ts_out),
            asyncapi_out: target(
                raw.asyncapi.enabled,
                raw.asyncapi.out,
                defaults.asyncapi_out,
            ),
            docs_out: target(raw.docs.enabled, raw.docs.out, defaults.docs_out),
            runtime,
        })
    }
}

/// The project file for a command run in `start`: `evcontract.toml` in it
/// or in the nearest folder above that has one.
pub fn find(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(FILE_NAME))
        .find(|file| file.is_file())
}

fn line_of_key(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| l.trim_start().starts_with(key))
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::Project;
    use crate::diag::Location;
    use crate::options::RuntimeDep;

    fn parse(text: &str) -> Result<Project, crate::diag::Diagnostic> {
        Project::parse(Path::new("evcontract.toml"), Path::new("/p"), text)
    }

    #[test]
    fn an_empty_file_means_the_defaults() {
        let p = parse("").unwrap();
        let d = Project::defaults(Path::new("/p"));
        assert_eq!(p.contracts, d.contracts);
        assert_eq!(p.rust_out, d.rust_out);
        assert_eq!(p.ts_out, d.ts_out);
        assert_eq!(p.format_schema, d.format_schema);
        assert_eq!(p.runtime, RuntimeDep::default());
    }

    #[test]
    fn targets_move_switch_off_and_name_the_runtime() {
        let p = parse(
            "contracts = [\"api/a.contract.json\"]\n\
             [rust]\nout = \"server/gen\"\nruntime-path = \"../../rt\"\n\
             [typescript]\nenabled = false\nout = \"web/gen\"\n",
        )
        .unwrap();
        assert_eq!(
            p.contracts,
            Some(vec![PathBuf::from("api/a.contract.json")])
        );
        assert_eq!(p.rust_out, Some(PathBuf::from("server/gen")));
        assert_eq!(p.ts_out, None);
        assert_eq!(p.format_schema, None);
        assert_eq!(p.runtime, RuntimeDep::Path("../../rt".to_owned()));
    }

    #[test]
    fn a_wrong_key_is_an_error_at_its_line() {
        let err = parse("[rust]\nout = \"x\"\nrust_out = \"y\"\n").unwrap_err();
        assert_eq!(err.location, Location::LineCol(3, 1));
        assert!(
            err.message.contains("unknown field `rust_out`"),
            "{}",
            err.message
        );
        let err = parse("[typescript]\nenabled = \"no\"\n").unwrap_err();
        assert_eq!(err.location, Location::LineCol(2, 11));
        let err = parse("[rust]\nruntime-path = \"a\"\nruntime-version = \"1\"\n").unwrap_err();
        assert_eq!(err.location, Location::LineCol(3, 1));
    }
}
