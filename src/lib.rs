//! evcontract: one contract file in, typed Socket.IO servers and clients out.
//!
//! A contract (JSON, with JSON Schema payloads) names the namespaces, the
//! events in both directions, their acks, rooms, auth and rate limits. This
//! crate validates it ([`validate`]), builds one typed IR from it ([`ir`]),
//! and hands that IR to every target:
//!
//! - Rust: a crate per contract, with the payload types (typify), event
//!   names, room constructors, error codes, and the typed server and client
//!   behind features (they link to `evcontract-runtime`);
//! - TypeScript: a module per namespace with typings for `socket.io-client`.
//!
//! Output is deterministic (same input, same bytes), formatted (Rust through
//! `syn` + `prettyplease`), and every file carries a `@generated` header, so
//! that [`output`] can tell generated files from a user's and `--check` can
//! fail CI on a stale one.

#![forbid(unsafe_code)]

pub mod breaking;
pub mod builder;
pub mod contract;
pub mod diag;
pub mod generated;
pub mod init;
pub mod ir;
pub mod options;
pub mod output;
pub mod project;
pub mod schema_ir;
pub mod source_map;
pub mod targets;
pub mod templates;
pub mod validate;

use std::path::{Path, PathBuf};

use diag::{Diagnostic, Diagnostics, Location};
use ir::ContractIr;
use source_map::SourceMap;

pub use builder::{BuildError, Builder};
pub use generated::{GENERATED_MARKER, GeneratedFile, HEADER};
pub use options::{Options, RuntimeDep};
pub use targets::EmitError;
pub use targets::rust::install_panic_filter;
use templates::Templates;

/// The built-in error codes (from `evcontract-wire`, shared with the
/// runtime; their meanings are in `evcontract_wire::codes::BUILTIN`).
pub const BUILTIN_ERROR_CODES: [&str; 14] = evcontract_wire::codes::ALL;

/// The diagnostic of an emit failure in `file` (whose text is `text`).
fn emit_diagnostic(file: &Path, map: &SourceMap, err: EmitError) -> Vec<Diagnostic> {
    match err.pointer {
        None => internal(file, err.message),
        Some(pointer) => vec![Diagnostic {
            file: file.to_owned(),
            position: map.position(&pointer),
            location: Location::Pointer(pointer),
            message: err.message,
        }],
    }
}

fn internal(file: &Path, message: String) -> Vec<Diagnostic> {
    vec![Diagnostic::at_root(file, message)]
}

/// Reads contract files; every one that cannot be read is a diagnostic,
/// and then nothing is returned.
pub fn read_contracts(paths: &[PathBuf]) -> Result<Vec<(PathBuf, String)>, Diagnostics> {
    let mut inputs = Vec::with_capacity(paths.len());
    let mut unreadable = Vec::new();
    for path in paths {
        match std::fs::read_to_string(path) {
            Ok(text) => inputs.push((path.clone(), text)),
            Err(e) => unreadable.push(Diagnostic::at_root(
                path,
                format!("cannot read the contract: {e}"),
            )),
        }
    }
    if unreadable.is_empty() {
        Ok(inputs)
    } else {
        Err(Diagnostics(unreadable))
    }
}

/// Validates one contract and builds its IR.
pub fn load(file: &Path, text: &str) -> Result<ContractIr, Vec<Diagnostic>> {
    load_mapped(file, text, &SourceMap::new(file, text))
}

/// [`load`] with the text's positions already mapped.
fn load_mapped(file: &Path, text: &str, map: &SourceMap) -> Result<ContractIr, Vec<Diagnostic>> {
    let with_positions = |mut diags: Vec<Diagnostic>| {
        map.place(&mut diags);
        diags
    };
    let valid = validate::validate(file, text, map).map_err(with_positions)?;
    ir::build(&valid, file).map_err(with_positions)
}

/// Generates every file for one contract.
pub fn generate_contract(
    file: &Path,
    text: &str,
    options: &Options,
    templates: &Templates,
) -> Result<Vec<GeneratedFile>, Vec<Diagnostic>> {
    let map = SourceMap::new(file, text);
    let ir = load_mapped(file, text, &map)?;
    emit(&ir, options, templates).map_err(|e| emit_diagnostic(file, &map, e))
}

/// Emits every file of a contract's IR: every target of
/// [`targets::TARGETS`], fed the same IR, each on a thread of its own.
pub fn emit(
    ir: &ContractIr,
    options: &Options,
    templates: &Templates,
) -> Result<Vec<GeneratedFile>, EmitError> {
    let views = targets::Views::new(ir)?;
    let input = targets::Input {
        ir,
        views: &views,
        templates,
        options,
    };
    let outputs: Vec<Result<Vec<GeneratedFile>, EmitError>> = std::thread::scope(|scope| {
        let threads: Vec<_> = targets::TARGETS
            .iter()
            .map(|target| {
                let input = &input;
                // The targets recurse once per schema level; the main
                // thread's 8 MiB, which they ran on before, is not the
                // 2 MiB default of a spawned thread. Only reserved, not
                // touched, unless needed.
                std::thread::Builder::new()
                    .name(format!("evcontract-{}", target.name()))
                    .stack_size(8 << 20)
                    .spawn_scoped(scope, move || target.emit(input))
                    .map_err(|e| format!("could not start the {} target: {e}", target.name()))
            })
            .collect();
        threads
            .into_iter()
            .zip(targets::TARGETS)
            .map(|(thread, target)| {
                thread?.join().map_err(|_| {
                    EmitError::from(format!("the {} target panicked", target.name()))
                })?
            })
            .collect()
    });
    let mut files = Vec::new();
    for output in outputs {
        files.extend(output?);
    }
    for f in &mut files {
        f.contents = generated::tidy(&f.contents);
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// Generates every file for a set of contracts; nothing is returned unless
/// every contract is valid. Contract names must be unique.
pub fn generate_all(
    inputs: &[(PathBuf, String)],
    options: &Options,
) -> Result<Vec<GeneratedFile>, Diagnostics> {
    generate_each(inputs, |ir, templates| emit(ir, options, templates))
}

/// Loads every contract and hands each IR to `files`; nothing is returned
/// unless every contract is valid and every call succeeded. Contract names
/// must be unique.
pub(crate) fn generate_each(
    inputs: &[(PathBuf, String)],
    files: impl Fn(&ContractIr, &Templates) -> Result<Vec<GeneratedFile>, EmitError>,
) -> Result<Vec<GeneratedFile>, Diagnostics> {
    let templates =
        Templates::new().map_err(|m| Diagnostics(internal(Path::new("templates"), m)))?;
    let mut all = Vec::new();
    let mut diagnostics = Vec::new();
    let mut names: Vec<(String, PathBuf)> = Vec::new();
    for (file, text) in inputs {
        let map = SourceMap::new(file, text);
        match load_mapped(file, text, &map) {
            Ok(ir) => {
                if let Some((_, other)) = names.iter().find(|(n, _)| *n == ir.name) {
                    diagnostics.extend(emit_diagnostic(
                        file,
                        &map,
                        EmitError {
                            pointer: Some("/contract".to_owned()),
                            message: format!(
                                "contract name `{}` is also used by {}",
                                ir.name,
                                other.display()
                            ),
                        },
                    ));
                    continue;
                }
                names.push((ir.name.clone(), file.clone()));
                match files(&ir, &templates) {
                    Ok(files) => all.extend(files),
                    Err(e) => diagnostics.extend(emit_diagnostic(file, &map, e)),
                }
            }
            Err(d) => diagnostics.extend(d),
        }
    }
    if diagnostics.is_empty() {
        all.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(all)
    } else {
        Err(Diagnostics(diagnostics))
    }
}
