//! The generator's targets, each fed the same IR through one interface
//! ([`Target`]): Rust (`rust`, templates under `templates/rust/`),
//! TypeScript (`ts`, `templates/ts/`), AsyncAPI (`asyncapi`) and reference
//! docs (`docs`). Adding a target is a module here and one line in
//! [`TARGETS`].

pub mod asyncapi;
pub mod docs;
pub mod rust;
pub mod ts;

use handlebars::Context;
use serde_json::json;

use crate::generated::GeneratedFile;
use crate::ir::ContractIr;
use crate::options::Options;
use crate::templates::Templates;

/// Why emitting a contract's files failed: the message and, when the cause
/// is a place in the contract, its JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmitError {
    /// JSON pointer into the contract, when known.
    pub pointer: Option<String>,
    /// What went wrong.
    pub message: String,
}

impl From<String> for EmitError {
    fn from(message: String) -> Self {
        Self {
            pointer: None,
            message,
        }
    }
}

impl std::fmt::Display for EmitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.pointer {
            Some(p) => write!(f, "{p}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for EmitError {}

/// What every target is given for one contract.
pub struct Input<'a> {
    /// The contract's IR: every name and type already decided.
    pub ir: &'a ContractIr,
    /// The template views several targets read, converted once.
    pub views: &'a Views,
    /// The template registry.
    pub templates: &'a Templates,
    /// The generation options.
    pub options: &'a Options,
}

/// One output of the generator: the files of one language or format.
pub trait Target: Sync {
    /// A short name, for messages (`rust`, `ts`, …).
    fn name(&self) -> &'static str;

    /// The target's files for one contract, with paths relative to the
    /// output folder (`<target folder>/…`).
    fn emit(&self, input: &Input<'_>) -> Result<Vec<GeneratedFile>, EmitError>;
}

/// Every target, in the order their errors are reported. [`crate::emit`]
/// runs them side by side, each on a thread of its own.
pub static TARGETS: [&dyn Target; 4] = [
    &rust::Rust,
    &ts::TypeScript,
    &asyncapi::AsyncApi,
    &docs::Docs,
];

/// `view` with `key` set to `value` (the view is an object), for a
/// template that reads one more field than the shared views hold.
pub(crate) fn with(view: &serde_json::Value, key: &str, value: impl serde::Serialize) -> Context {
    let mut view = view.clone();
    view[key] = json!(value);
    Context::from(view)
}

/// The template views several targets read, converted once per contract.
pub struct Views {
    /// What templates may read about the contract apart from its
    /// namespaces. Per-namespace templates get this and their one
    /// namespace: serializing the whole IR for each of them made generation
    /// quadratic in namespaces.
    pub header: serde_json::Value,
    /// `{ir: header, error_count}`.
    pub header_view: Context,
    /// `{ir: <the whole IR>, error_count}`, for templates that list every
    /// namespace (Rust `lib.rs`, TypeScript `index.ts` and `react.ts`).
    pub whole: Context,
}

impl Views {
    /// The views of `ir`.
    pub fn new(ir: &ContractIr) -> Result<Self, String> {
        let header = json!({
            "name": ir.name,
            "version": ir.version,
            "doc": ir.doc,
            "source_name": ir.source_name,
            "crate_name": ir.crate_name,
            "errors": ir.errors,
        });
        Ok(Self {
            header_view: Context::from(json!({ "ir": header, "error_count": ir.errors.len() })),
            whole: Context::from(json!({
                "ir": serde_json::to_value(ir).map_err(|e| e.to_string())?,
                "error_count": ir.errors.len(),
            })),
            header,
        })
    }
}
