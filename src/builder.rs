//! Generation from a build script, as tonic-build and prost-build do it: the
//! Rust of each contract goes to `OUT_DIR` as one file to `include!`.
//!
//! ```no_run
//! // build.rs, in `fn main`
//! evcontract::Builder::new()
//!     .contract("contract.json")
//!     .server(true)
//!     .client(false)
//!     .compile();
//! ```
//!
//! ```ignore
//! // src/lib.rs: the contract `notes` becomes `OUT_DIR/notes.rs`.
//! pub mod api {
//!     include!(concat!(env!("OUT_DIR"), "/notes.rs"));
//! }
//! ```
//!
//! The entry file holds what the generated crate would (payload types, event
//! names, rooms, error codes, and the server and client modules that were
//! asked for), rendered from the same templates in the include layout
//! ([`Layout::Include`](crate::targets::rust::Layout::Include)): the
//! generated code names its items relative to its module (`super::…`), so
//! it lives in any module; the server and client are the builder's
//! choices instead of features; there are no inner attributes. The crate
//! that includes it depends on `evcontract-runtime` alone (features
//! `server` and/or `client`, and `formats` when the contract's formats or
//! patterns need chrono, uuid or regress): serde and those crates are
//! reached through it.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::diag::Diagnostics;
use crate::generated::GeneratedFile;
use crate::targets::rust::include_file;

/// Generates the Rust of contracts into `OUT_DIR` from a build script.
#[derive(Debug, Clone)]
pub struct Builder {
    contracts: Vec<PathBuf>,
    server: bool,
    client: bool,
    out_dir: Option<PathBuf>,
    rerun_if_changed: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a build-script generation failed.
#[derive(Debug)]
pub enum BuildError {
    /// The contracts have problems (each with file, line:column and JSON
    /// path), or could not be read.
    Contract(Diagnostics),
    /// Neither [`Builder::out_dir`] nor the `OUT_DIR` variable (which cargo
    /// sets for build scripts) says where to write.
    NoOutDir,
    /// Writing the output failed.
    Write(PathBuf, std::io::Error),
    /// Generation failed in a way that is a bug of evcontract.
    Internal(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Contract(diags) => write!(f, "{diags}"),
            Self::NoOutDir => f.write_str(
                "error: OUT_DIR is not set (run from a build script, or call Builder::out_dir)",
            ),
            Self::Write(path, e) => write!(f, "error: cannot write {}: {e}", path.display()),
            Self::Internal(message) => write!(f, "error: {message}"),
        }
    }
}

impl std::error::Error for BuildError {}

impl Builder {
    /// A builder with no contract yet, generating the server and the client.
    pub fn new() -> Self {
        Self {
            contracts: Vec::new(),
            server: true,
            client: true,
            out_dir: None,
            rerun_if_changed: true,
        }
    }

    /// Adds a contract file (JSON, or YAML by its extension), relative to the
    /// package being built (cargo runs build scripts there).
    #[must_use]
    pub fn contract(mut self, path: impl AsRef<Path>) -> Self {
        self.contracts.push(path.as_ref().to_owned());
        self
    }

    /// Whether to generate the typed server (handler traits, glue,
    /// emitters); on by default.
    #[must_use]
    pub fn server(mut self, on: bool) -> Self {
        self.server = on;
        self
    }

    /// Whether to generate the typed client; on by default.
    #[must_use]
    pub fn client(mut self, on: bool) -> Self {
        self.client = on;
        self
    }

    /// Where to write (default: the `OUT_DIR` cargo gives build scripts).
    #[must_use]
    pub fn out_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.out_dir = Some(dir.as_ref().to_owned());
        self
    }

    /// Whether to print `cargo:rerun-if-changed` for each contract (on by
    /// default), so that cargo reruns the build script when one changes.
    #[must_use]
    pub fn emit_rerun_if_changed(mut self, on: bool) -> Self {
        self.rerun_if_changed = on;
        self
    }

    /// Generates every contract: `<out dir>/<contract name>.rs` each.
    /// Returns the files written. Nothing is written unless every contract
    /// is valid.
    pub fn generate(&self) -> Result<Vec<PathBuf>, BuildError> {
        let out_dir = match &self.out_dir {
            Some(dir) => dir.clone(),
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or(BuildError::NoOutDir)?,
        };
        if self.rerun_if_changed {
            for path in &self.contracts {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
        let inputs = crate::read_contracts(&self.contracts).map_err(BuildError::Contract)?;
        // The Rust target alone, in its include layout: the same templates
        // as the crate, given the server and client choice.
        let (server, client) = (self.server, self.client);
        let files = crate::generate_each(&inputs, |ir, templates| {
            Ok(vec![GeneratedFile {
                path: PathBuf::from(format!("{}.rs", ir.name)),
                contents: include_file(ir, templates, server, client)?,
            }])
        })
        .map_err(BuildError::Contract)?;
        let entries: Vec<(PathBuf, String)> = files
            .into_iter()
            .map(|f| (out_dir.join(f.path), f.contents))
            .collect();
        std::fs::create_dir_all(&out_dir).map_err(|e| BuildError::Write(out_dir.clone(), e))?;
        let mut written = Vec::new();
        for (path, text) in entries {
            // Unchanged bytes are not rewritten, so nothing downstream
            // rebuilds for nothing.
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                std::fs::write(&path, text).map_err(|e| BuildError::Write(path.clone(), e))?;
            }
            written.push(path);
        }
        Ok(written)
    }

    /// [`Builder::generate`] for a build script's `main`: on failure, prints
    /// every diagnostic (file:line:column, JSON path, what is wrong) and
    /// exits with status 1, which cargo reports as the build error.
    pub fn compile(&self) {
        if let Err(e) = self.generate() {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
