//! Rust types through typify, and formatting of generated Rust.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use schemars::schema::Schema;
use typify::{TypeDetails, TypeEnumVariant, TypeId, TypeSpace, TypeSpaceSettings};

use std::path::PathBuf;

use serde_json::json;

use super::Views;
use crate::generated::{GeneratedFile, rust_file};
use crate::ir::ContractIr;
use crate::options::Options;
use crate::targets::EmitError;
use crate::templates::Templates;
use handlebars::Context;

thread_local! {
    /// Set while typify runs under `catch_unwind`, so its panics are turned
    /// into diagnostics without the default hook printing a backtrace note.
    static SILENCE_PANICS: Cell<bool> = const { Cell::new(false) };
}

/// Installs a panic hook that stays quiet for the panics of typify that
/// this target catches itself.
pub fn install_panic_filter() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !SILENCE_PANICS.with(Cell::get) {
            default(info);
        }
    }));
}

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
    SILENCE_PANICS.with(|s| s.set(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    SILENCE_PANICS.with(|s| s.set(false));
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
pub fn types_source(ir: &ContractIr) -> Result<(String, TypeDeps), EmitError> {
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
    check_unique_names(&space, ir)?;
    let tokens = guarded("typify", || space.to_stream())?;
    let deps = TypeDeps {
        chrono: space.uses_chrono(),
        uuid: space.uses_uuid(),
        regress: space.uses_regress(),
    };
    Ok((format_tokens(tokens, rewrite_types)?, deps))
}

/// What evcontract changes in typify's output: see the two functions.
fn rewrite_types(file: &mut syn::File) {
    tolerate_unknown_fields(file);
    decode_strings_once(file);
}

/// typify decodes a constrained string (`maxLength`, `pattern`, …) into a
/// `String`, then `parse`s it, which checks it and copies it into a second
/// `String`. A visitor that checks the decoder's `&str` and copies it once
/// saves an allocation, a copy and a free per string: on the server every
/// `threadId` of every event goes through it. Error texts stay the same
/// (`expected a string`, and the conversion error's message).
fn decode_strings_once(file: &mut syn::File) {
    // Compared as text without trailing commas: typify writes
    // `custom(e.to_string(),)`, and rustfmt would strip that comma here.
    let text = |tokens: proc_macro2::TokenStream| tokens.to_string().replace(" ,)", ")");
    let typify_body = text(quote::quote!({
        ::std::string::String::deserialize(deserializer)?
            .parse()
            .map_err(|e: self::error::ConversionError| {
                <D::Error as ::serde::de::Error>::custom(e.to_string())
            })
    }));
    for item in &mut file.items {
        let syn::Item::Impl(imp) = item else { continue };
        let is_deserialize = imp
            .trait_
            .as_ref()
            .and_then(|(path, _)| path.segments.last())
            .is_some_and(|s| s.ident == "Deserialize");
        let body_matches = match imp.items.as_slice() {
            [syn::ImplItem::Fn(f)] => {
                text(quote::ToTokens::to_token_stream(&f.block)) == typify_body
            }
            _ => false,
        };
        if !is_deserialize || !body_matches {
            continue;
        }
        let ty = &imp.self_ty;
        *imp = syn::parse_quote! {
            impl<'de> ::serde::Deserialize<'de> for #ty {
                fn deserialize<D>(deserializer: D) -> ::std::result::Result<Self, D::Error>
                where
                    D: ::serde::Deserializer<'de>,
                {
                    struct Text;
                    impl ::serde::de::Visitor<'_> for Text {
                        type Value = #ty;
                        fn expecting(
                            &self,
                            f: &mut ::std::fmt::Formatter<'_>,
                        ) -> ::std::fmt::Result {
                            f.write_str("a string")
                        }
                        fn visit_str<E: ::serde::de::Error>(
                            self,
                            value: &str,
                        ) -> ::std::result::Result<Self::Value, E> {
                            value
                                .parse()
                                .map_err(|e: self::error::ConversionError| E::custom(e.to_string()))
                        }
                    }
                    deserializer.deserialize_str(Text)
                }
            }
        };
    }
}

/// Drops typify's `deny_unknown_fields` (from `additionalProperties:
/// false`): a deployed client must keep decoding server data after the
/// contract adds an optional property to it. Client payloads stay strict:
/// the server validates them against the contract's JSON Schema, which
/// refuses unknown properties, before decoding.
fn tolerate_unknown_fields(file: &mut syn::File) {
    use syn::punctuated::Punctuated;
    use syn::visit_mut::VisitMut;

    struct Tolerant;
    impl VisitMut for Tolerant {
        fn visit_attributes_mut(&mut self, attrs: &mut Vec<syn::Attribute>) {
            attrs.retain_mut(|attr| {
                if !attr.path().is_ident("serde") {
                    return true;
                }
                let Ok(args) =
                    attr.parse_args_with(Punctuated::<syn::Meta, syn::Token![,]>::parse_terminated)
                else {
                    return true;
                };
                if !args
                    .iter()
                    .any(|m| m.path().is_ident("deny_unknown_fields"))
                {
                    return true;
                }
                let kept: Punctuated<syn::Meta, syn::Token![,]> = args
                    .into_iter()
                    .filter(|m| !m.path().is_ident("deny_unknown_fields"))
                    .collect();
                if kept.is_empty() {
                    return false;
                }
                *attr = syn::parse_quote!(#[serde(#kept)]);
                true
            });
        }
    }
    Tolerant.visit_file_mut(file);
}

/// typify names an inline object or enum after its parent type and property
/// (`status` of `HealthStatus` becomes `HealthStatusStatus`) and does not
/// check that name against the contract's own: two items with one name would
/// be emitted and the crate would not compile. Refuse that with the place to
/// rename instead.
fn check_unique_names(space: &TypeSpace, ir: &ContractIr) -> Result<(), EmitError> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for t in space.iter_types() {
        if is_named(&t.details()) {
            *counts.entry(t.name()).or_default() += 1;
        }
    }
    let Some(name) = counts
        .into_iter()
        .find(|(_, n)| *n > 1)
        .map(|(name, _)| name)
    else {
        return Ok(());
    };
    // The parents whose inline schemas typify named `name`.
    let mut parents: Vec<(String, String)> = Vec::new();
    for t in space.iter_types() {
        let parent = t.name();
        let mut note = |field: &str, id: &TypeId| {
            if named_type(space, id).as_deref() == Some(name.as_str()) && parent != name {
                parents.push((parent.clone(), field.to_owned()));
            }
        };
        match t.details() {
            TypeDetails::Struct(s) => s.properties().for_each(|(p, id)| note(p, &id)),
            TypeDetails::Enum(e) => {
                for (variant, details) in e.variants() {
                    match details {
                        TypeEnumVariant::Struct(props) => {
                            props.iter().for_each(|(p, id)| note(p, id));
                        }
                        TypeEnumVariant::Tuple(ids) => ids.iter().for_each(|id| note(variant, id)),
                        TypeEnumVariant::Simple => {}
                    }
                }
            }
            _ => {}
        }
    }
    parents.sort();
    parents.dedup();
    let derived = match parents.as_slice() {
        [] => "a type typify derives from an inline schema".to_owned(),
        list => list
            .iter()
            .map(|(parent, field)| format!("the inline schema of `{field}` in `{parent}`"))
            .collect::<Vec<_>>()
            .join(" and "),
    };
    let own = ir.types.iter().find(|t| t.name == name);
    let (pointer, message) = match own {
        Some(t) => (
            t.pointer.clone(),
            format!(
                "two Rust types would be named `{name}`: this one and {derived} \
                 (typify names inline schemas after their parent and field); \
                 rename this one, or move the inline schema into a definition of its own"
            ),
        ),
        None => {
            let at = parents
                .first()
                .and_then(|(parent, _)| ir.types.iter().find(|t| &t.name == parent))
                .map(|t| t.pointer.clone())
                .unwrap_or_default();
            (
                at,
                format!(
                    "two Rust types would be named `{name}`: {derived} \
                     (typify names inline schemas after their parent and field); \
                     move one of them into a definition of its own"
                ),
            )
        }
    };
    Err(EmitError {
        pointer: Some(pointer),
        message,
    })
}

/// Whether typify emits an item (and so a name) for this type.
fn is_named(details: &TypeDetails<'_>) -> bool {
    matches!(
        details,
        TypeDetails::Struct(_) | TypeDetails::Enum(_) | TypeDetails::Newtype(_)
    )
}

/// The item a field's type names, looking through `Option`, `Box`, `Vec`,
/// sets and map values (`Option<Box<T>>` is `T`).
fn named_type(space: &TypeSpace, id: &TypeId) -> Option<String> {
    let mut id = id.clone();
    // Bounded: a wrapper chain is short; this cannot loop on a recursive type.
    for _ in 0..8 {
        let t = space.get_type(&id).ok()?;
        let details = t.details();
        if is_named(&details) {
            return Some(t.name());
        }
        id = match details {
            TypeDetails::Option(inner)
            | TypeDetails::Box(inner)
            | TypeDetails::Vec(inner)
            | TypeDetails::Set(inner)
            | TypeDetails::Map(_, inner)
            | TypeDetails::Array(inner, _) => inner,
            _ => return None,
        };
    }
    None
}

/// Parses Rust tokens, applies `rewrite` to the items, and pretty-prints
/// them.
///
/// typify's output for a large contract is one long list of items, and
/// parsing and printing it is the longest step of generation; the items are
/// cut into a fixed number of runs printed on as many threads. prettyplease
/// prints items one after another, so the joined text is the same as printing
/// them at once (the golden tests hold it to that).
pub fn format_tokens(
    tokens: proc_macro2::TokenStream,
    rewrite: fn(&mut syn::File),
) -> Result<String, String> {
    // Token streams are not `Send`: hand the threads text.
    let chunks: Vec<String> = split_items(tokens, FORMAT_CHUNKS)
        .into_iter()
        .map(|c| c.to_string())
        .collect();
    let printed: Vec<Result<String, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .iter()
            .map(|chunk| {
                scope.spawn(move || {
                    syn::parse_file(chunk)
                        .map(|mut file| {
                            rewrite(&mut file);
                            prettyplease::unparse(&file)
                        })
                        .map_err(|e| format!("generated Rust does not parse: {e}"))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("formatting panicked".to_owned()))
            })
            .collect()
    });
    Ok(printed.into_iter().collect::<Result<Vec<_>, _>>()?.concat())
}

/// How many runs of items [`format_tokens`] prints in parallel. Fixed, so the
/// output does not depend on the machine.
const FORMAT_CHUNKS: usize = 2;

/// Cuts a stream of items into at most `n` runs of whole items. An item ends
/// at a top-level `;` or `{…}` group, which is where every item typify emits
/// (structs, enums, impls, modules, uses) ends.
fn split_items(tokens: proc_macro2::TokenStream, n: usize) -> Vec<proc_macro2::TokenStream> {
    use proc_macro2::{Delimiter, TokenTree};
    let mut items: Vec<Vec<TokenTree>> = Vec::new();
    let mut current = Vec::new();
    for tt in tokens {
        let ends = match &tt {
            TokenTree::Group(g) => g.delimiter() == Delimiter::Brace,
            TokenTree::Punct(p) => p.as_char() == ';',
            _ => false,
        };
        current.push(tt);
        if ends {
            items.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        items.push(current);
    }
    let per_chunk = items.len().div_ceil(n.max(1)).max(1);
    items
        .chunks(per_chunk)
        .map(|run| run.iter().flatten().cloned().collect())
        .collect()
}

/// Parses and pretty-prints Rust source text (rendered from a template).
pub fn format_source(name: &str, source: &str) -> Result<String, String> {
    // A template that renders invalid Rust is a bug of ours; name the template
    // and show the text, since spans carry no line numbers (proc-macro2's
    // `span-locations` would slow every parse down for this rare case).
    let file: syn::File = syn::parse_file(source)
        .map_err(|e| format!("template `{name}` rendered invalid Rust ({e}):\n{source}"))?;
    Ok(prettyplease::unparse(&file))
}

/// The payload types being generated: the source of `types.rs` and what it
/// uses, when the thread ends.
type TypesThread<'scope> =
    std::thread::ScopedJoinHandle<'scope, Result<(String, TypeDeps), EmitError>>;

/// Stack of the thread that runs typify (see [`spawn_types`]).
const TYPIFY_STACK_BYTES: usize = 64 << 20;

/// The payload types (typify) of `ir`, on a thread of their own: they need
/// nothing else, so they run beside the other targets.
fn spawn_types<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    ir: &'scope ContractIr,
) -> Result<TypesThread<'scope>, String> {
    // typify recurses once per schema level (and more on defaults); the
    // default 2 MiB of a spawned thread is not enough for schemas near
    // `validate::MAX_SCHEMA_DEPTH` in debug builds. The stack is only
    // reserved, not touched, unless it is needed.
    std::thread::Builder::new()
        .name("evcontract-typify".to_owned())
        .stack_size(TYPIFY_STACK_BYTES)
        .spawn_scoped(scope, || types_source(ir))
        .map_err(|e| format!("could not start the type generator thread: {e}"))
}

/// The Rust of a contract: the crate `rust/<contract>/` (templates, the
/// payload types from `types`, and its `Cargo.toml`).
fn crate_files(
    ir: &ContractIr,
    views: &Views,
    options: &Options,
    templates: &Templates,
    types: TypesThread<'_>,
) -> Result<Vec<GeneratedFile>, EmitError> {
    let mut files = Vec::new();
    let rust_dir = PathBuf::from("rust").join(&ir.name);
    let (header, whole, header_view) = (&views.header, &views.whole, &views.header_view);
    for (template, file, view) in [
        ("rust/lib.rs", "src/lib.rs", &whole),
        ("rust/errors.rs", "src/errors.rs", &header_view),
    ] {
        let src = templates.render_context(template, view)?;
        files.push(rust_file(
            rust_dir.join(file),
            format_source(template, &src)?,
        ));
    }
    for ns in &ir.namespaces {
        let view = Context::from(json!({ "ir": header, "ns": ns }));
        let src = templates.render_context("rust/namespace.rs", &view)?;
        files.push(rust_file(
            rust_dir.join(format!("src/{}.rs", ns.module)),
            format_source("rust/namespace.rs", &src)?,
        ));
    }

    let (types, deps) = types
        .join()
        .map_err(|_| "generating the Rust types panicked".to_owned())??;
    files.push(rust_file(rust_dir.join("src/types.rs"), types));
    let description = ir
        .doc
        .first()
        .cloned()
        .unwrap_or_else(|| format!("Types and Socket.IO glue for the `{}` contract.", ir.name));
    files.push(GeneratedFile {
        path: rust_dir.join("Cargo.toml"),
        contents: templates.render(
            "rust/Cargo.toml",
            &json!({
                "ir": header,
                "description": serde_json::to_string(&description).unwrap_or_default(),
                "runtime_dep": options.runtime.toml(),
                "deps": deps,
            }),
        )?,
    });
    Ok(files)
}

/// The Rust target: the crate `rust/<contract>/`. typify (a third of the
/// work, and needing nothing else) runs on a thread of its own beside the
/// templates.
pub struct Rust;

impl super::Target for Rust {
    fn name(&self) -> &'static str {
        "rust"
    }

    fn emit(&self, input: &super::Input<'_>) -> Result<Vec<GeneratedFile>, EmitError> {
        std::thread::scope(|scope| {
            let types = spawn_types(scope, input.ir)?;
            crate_files(input.ir, input.views, input.options, input.templates, types)
        })
    }
}
