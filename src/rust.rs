//! Rust types through typify, and formatting of generated Rust.

use std::panic::{AssertUnwindSafe, catch_unwind};

use schemars::schema::Schema;
use typify::{TypeSpace, TypeSpaceSettings};

use crate::ir::ContractIr;

/// What the generated types need from other crates.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct TypeDeps {
    /// `chrono` (date-time and date formats).
    pub chrono: bool,
    /// `uuid`.
    pub uuid: bool,
    /// `regress` (patterns).
    pub regress: bool,
}

/// Runs `f`, turning a panic into an error message. typify panics on some
/// schemas; the validator refuses the ones we know of, and this guards the rest.
fn guarded<T>(what: &str, f: impl FnOnce() -> T) -> Result<T, String> {
    crate::SILENCE_PANICS.with(|s| s.set(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    crate::SILENCE_PANICS.with(|s| s.set(false));
    result.map_err(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        format!("{what} failed on this contract: {msg}")
    })
}

/// Generates the Rust source of every named type in the contract.
pub fn types_source(ir: &ContractIr) -> Result<(String, TypeDeps), String> {
    let mut settings = TypeSpaceSettings::default();
    settings
        .with_struct_builder(false)
        .with_derive("PartialEq".to_owned())
        // A BTreeMap keeps map keys in a stable order when re-serialized.
        .with_map_type("::std::collections::BTreeMap".to_owned());
    let mut defs = Vec::with_capacity(ir.types.len());
    for t in &ir.types {
        let schema: Schema = serde_json::from_value(t.schema.clone())
            .map_err(|e| format!("schema of `{}` is not a JSON Schema: {e}", t.name))?;
        defs.push((t.name.clone(), schema));
    }
    let mut space = TypeSpace::new(&settings);
    guarded("typify", || space.add_ref_types(defs))?
        .map_err(|e| format!("typify could not convert the payload types: {e}"))?;
    let tokens = guarded("typify", || space.to_stream())?;
    let deps = TypeDeps {
        chrono: space.uses_chrono(),
        uuid: space.uses_uuid(),
        regress: space.uses_regress(),
    };
    Ok((format_tokens(tokens)?, deps))
}

/// Parses and pretty-prints Rust tokens.
pub fn format_tokens(tokens: proc_macro2::TokenStream) -> Result<String, String> {
    let file: syn::File =
        syn::parse2(tokens).map_err(|e| format!("generated Rust does not parse: {e}"))?;
    Ok(prettyplease::unparse(&file))
}

/// Parses and pretty-prints Rust source text (rendered from a template).
pub fn format_source(name: &str, source: &str) -> Result<String, String> {
    let file: syn::File = syn::parse_file(source).map_err(|e| {
        let line = e.span().start().line;
        let context = source.lines().nth(line.saturating_sub(1)).unwrap_or("");
        format!("template `{name}` rendered invalid Rust at line {line} ({e}): {context}")
    })?;
    Ok(prettyplease::unparse(&file))
}
