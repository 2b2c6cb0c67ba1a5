//! Rust types through typify, and formatting of generated Rust.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use schemars::schema::Schema;
use typify::{TypeDetails, TypeEnumVariant, TypeId, TypeSpace, TypeSpaceSettings};

use std::path::PathBuf;

use serde_json::json;

use super::{Views, with};
use crate::generated::{GeneratedFile, HEADER, rust_file};
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

/// How the Rust of a contract is laid out: a crate, or one file for a
/// build script's `include!` (as tonic-build and prost-build write it).
/// Both come from the same templates, given this as a parameter; the
/// generated code names its own items relative to its module (`super::`),
/// so it means the same wherever it is included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// The crate `rust/<contract>/`: the typed server and client behind
    /// its features `server` and `client`, serde and the format crates as
    /// its own dependencies.
    Crate,
    /// One file to `include!` in any module: the server and the client as
    /// asked, no inner attributes, and serde, chrono, uuid and regress
    /// reached through the runtime (the including crate needs no
    /// dependency of its own).
    Include {
        /// Whether to generate the typed server.
        server: bool,
        /// Whether to generate the typed client.
        client: bool,
    },
}

impl Layout {
    /// What the templates read of the layout (`rust` in their views); the
    /// include layout's `lib.rs` also reads its modules' text (`modules`).
    fn view(self) -> serde_json::Value {
        let gate = |feature: &str, on: bool| match self {
            Self::Crate => json!({ "cfg": format!("#[cfg(feature = \"{feature}\")]") }),
            Self::Include { .. } if on => json!({ "cfg": "" }),
            Self::Include { .. } => serde_json::Value::Null,
        };
        match self {
            Self::Crate => json!({
                "include": false,
                "server": gate("server", true),
                "client": gate("client", true),
                "serde": "::serde",
                "serde_crate": "",
            }),
            Self::Include { server, client } => json!({
                "include": true,
                "server": gate("server", server),
                "client": gate("client", client),
                "serde": SERDE_THROUGH_RUNTIME,
                "serde_crate": format!("#[serde(crate = \"{SERDE_THROUGH_RUNTIME}\")]"),
            }),
        }
    }
}

/// Generates the Rust source of every named type in the contract, for
/// `layout`.
pub fn types_source(ir: &ContractIr, layout: Layout) -> Result<(String, TypeDeps), EmitError> {
    let mut settings = TypeSpaceSettings::default();
    settings
        .with_struct_builder(false)
        .with_derive("PartialEq".to_owned())
        // A BTreeMap keeps map keys in a stable order when re-serialized.
        .with_map_type("::std::collections::BTreeMap".to_owned());
    let mut defs = Vec::with_capacity(ir.types.len());
    for t in &ir.types {
        let schema: Schema = serde_json::from_value(t.node.annotated_schema())
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
    let text = match layout {
        Layout::Crate => format_tokens(tokens, rewrite_types)?,
        Layout::Include { .. } => {
            let text = format_tokens(tokens, rewrite_types_included)?;
            check_through_runtime(&text)?;
            text
        }
    };
    Ok((text, deps))
}

/// What evcontract changes in typify's output: see the two functions.
fn rewrite_types(file: &mut syn::File) {
    tolerate_unknown_fields(file);
    decode_strings_once(file);
}

/// [`rewrite_types`], and then the crates typify's code names reached
/// through the runtime, for [`Layout::Include`]. typify 0.8 has no setting
/// for the path of serde or of the format crates, so this one is a rewrite
/// of its output; [`check_through_runtime`] fails generation if typify ever
/// names them in a way this does not catch.
fn rewrite_types_included(file: &mut syn::File) {
    use syn::visit_mut::VisitMut;
    rewrite_types(file);
    ThroughRuntime.visit_file_mut(file);
}

/// Crates that typify's code names and the runtime re-exports (serde and
/// serde_json always, for `{}` payloads as `serde_json::Value`; the others
/// with its feature `formats`).
const REEXPORTED: [&str; 5] = ["serde", "serde_json", "chrono", "uuid", "regress"];

/// Where serde's derives find serde, in code that reaches it through the
/// runtime.
const SERDE_THROUGH_RUNTIME: &str = "::evcontract_runtime::__private::serde";

/// `::krate::…` as `::evcontract_runtime::__private::krate::…`.
fn through_runtime(path: &mut syn::Path) {
    let through: syn::Path = syn::parse_quote!(::evcontract_runtime::__private);
    path.segments = through
        .segments
        .into_iter()
        .chain(std::mem::take(&mut path.segments))
        .collect();
}

/// An item's `#[derive(::serde::Serialize, …)]` with serde's paths pointed
/// through the runtime, and `#[serde(crate = …)]` added when it derives one
/// of serde's traits (the derives' own code names serde too).
fn serde_through_runtime(attrs: &mut Vec<syn::Attribute>) {
    let mut derives_serde = false;
    for attr in attrs.iter_mut().filter(|a| a.path().is_ident("derive")) {
        let Ok(mut paths) = attr.parse_args_with(
            syn::punctuated::Punctuated::<syn::Path, syn::Token![,]>::parse_terminated,
        ) else {
            continue;
        };
        for path in paths.iter_mut() {
            if path.leading_colon.is_some()
                && path.segments.first().is_some_and(|s| s.ident == "serde")
            {
                derives_serde = true;
                through_runtime(path);
            }
        }
        *attr = syn::parse_quote!(#[derive(#paths)]);
    }
    if derives_serde {
        attrs.push(syn::parse_quote!(#[serde(crate = #SERDE_THROUGH_RUNTIME)]));
    }
}

/// Points `::serde::…`, `::chrono::…`, `::uuid::…` and `::regress::…`
/// (typify's names for its derives, formats and patterns) through the
/// runtime.
struct ThroughRuntime;

impl syn::visit_mut::VisitMut for ThroughRuntime {
    fn visit_item_struct_mut(&mut self, item: &mut syn::ItemStruct) {
        serde_through_runtime(&mut item.attrs);
        syn::visit_mut::visit_item_struct_mut(self, item);
    }

    fn visit_item_enum_mut(&mut self, item: &mut syn::ItemEnum) {
        serde_through_runtime(&mut item.attrs);
        syn::visit_mut::visit_item_enum_mut(self, item);
    }

    fn visit_path_mut(&mut self, path: &mut syn::Path) {
        if path.leading_colon.is_some()
            && path
                .segments
                .first()
                .is_some_and(|s| REEXPORTED.iter().any(|c| s.ident == c))
        {
            through_runtime(path);
        }
        syn::visit_mut::visit_path_mut(self, path);
    }
}

/// Fails when code for [`Layout::Include`] still names serde, chrono, uuid
/// or regress other than through the runtime (typify changed how it names
/// them: a bare `serde::…`, a `use`), instead of leaving a build script's
/// crate with an error about a crate it was told it does not need.
fn check_through_runtime(text: &str) -> Result<(), String> {
    use proc_macro2::TokenTree;
    fn is_punct(tt: Option<&TokenTree>, c: char) -> bool {
        matches!(tt, Some(TokenTree::Punct(p)) if p.as_char() == c)
    }
    fn walk(tokens: proc_macro2::TokenStream) -> Result<(), String> {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        for (i, tt) in tokens.iter().enumerate() {
            match tt {
                TokenTree::Group(g) => walk(g.stream())?,
                TokenTree::Ident(ident) => {
                    let name = ident.to_string();
                    // A path that starts at one of these crates: `name::…`
                    // (an attribute such as `#[serde(rename …)]` is not one),
                    // unless it follows `__private::`.
                    let starts_path =
                        is_punct(tokens.get(i + 1), ':') && is_punct(tokens.get(i + 2), ':');
                    let through = i >= 3
                        && is_punct(tokens.get(i - 1), ':')
                        && is_punct(tokens.get(i - 2), ':')
                        && matches!(&tokens[i - 3], TokenTree::Ident(p) if p == "__private");
                    if starts_path && !through && REEXPORTED.contains(&name.as_str()) {
                        return Err(format!(
                            "typify's code names `{name}` directly, which evcontract does not point \
                             through the runtime for build scripts (did typify change how it names \
                             its crates?)"
                        ));
                    }
                }
                TokenTree::Punct(_) | TokenTree::Literal(_) => {}
            }
        }
        Ok(())
    }
    let tokens: proc_macro2::TokenStream = text
        .parse()
        .map_err(|e| format!("generated Rust does not tokenize: {e}"))?;
    walk(tokens)
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
    layout: Layout,
) -> Result<TypesThread<'scope>, String> {
    // typify recurses once per schema level (and more on defaults); the
    // default 2 MiB of a spawned thread is not enough for schemas near
    // `validate::MAX_SCHEMA_DEPTH` in debug builds. The stack is only
    // reserved, not touched, unless it is needed.
    std::thread::Builder::new()
        .name("evcontract-typify".to_owned())
        .stack_size(TYPIFY_STACK_BYTES)
        .spawn_scoped(scope, move || types_source(ir, layout))
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
    let layout = Layout::Crate.view();
    let rust_dir = PathBuf::from("rust").join(&ir.name);
    let mut files = vec![rust_file(
        rust_dir.join("src/lib.rs"),
        render_lib(views, templates, layout.clone())?,
    )];
    for (stem, text) in render_modules(ir, views, templates, &layout)? {
        files.push(rust_file(rust_dir.join(format!("src/{stem}.rs")), text));
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
                "ir": views.header,
                "description": serde_json::to_string(&description).unwrap_or_default(),
                "runtime_dep": options.runtime.toml(),
                "deps": deps,
            }),
        )?,
    });
    Ok(files)
}

/// The crate root (`lib.rs`), for the layout whose template view is
/// `layout`.
fn render_lib(
    views: &Views,
    templates: &Templates,
    layout: serde_json::Value,
) -> Result<String, EmitError> {
    let src = templates.render_context("rust/lib.rs", &with(views.whole.data(), "rust", layout))?;
    Ok(format_source("rust/lib.rs", &src)?)
}

/// The modules below the crate root that templates make (`errors` and one
/// per namespace): their names and formatted text.
fn render_modules(
    ir: &ContractIr,
    views: &Views,
    templates: &Templates,
    layout: &serde_json::Value,
) -> Result<Vec<(String, String)>, EmitError> {
    let mut modules = Vec::with_capacity(1 + ir.namespaces.len());
    let view = with(views.header_view.data(), "rust", layout);
    let src = templates.render_context("rust/errors.rs", &view)?;
    modules.push(("errors".to_owned(), format_source("rust/errors.rs", &src)?));
    for ns in &ir.namespaces {
        let view = Context::from(json!({ "ir": views.header, "ns": ns, "rust": layout }));
        let src = templates.render_context("rust/namespace.rs", &view)?;
        modules.push((ns.module.clone(), format_source("rust/namespace.rs", &src)?));
    }
    Ok(modules)
}

/// The Rust of a contract as one file for a build script's `include!`
/// ([`Layout::Include`]): the crate's modules inline, from the same
/// templates.
pub fn include_file(
    ir: &ContractIr,
    templates: &Templates,
    server: bool,
    client: bool,
) -> Result<String, EmitError> {
    let layout = Layout::Include { server, client };
    let views = Views::new(ir)?;
    std::thread::scope(|scope| {
        let types = spawn_types(scope, ir, layout)?;
        let mut view = layout.view();
        let mut modules: serde_json::Map<String, serde_json::Value> =
            render_modules(ir, &views, templates, &view)?
                .into_iter()
                .map(|(name, text)| (name, serde_json::Value::String(text)))
                .collect();
        let (types, _) = types
            .join()
            .map_err(|_| "generating the Rust types panicked".to_owned())??;
        modules.insert("types".to_owned(), serde_json::Value::String(types));
        view["modules"] = serde_json::Value::Object(modules);
        let lib = render_lib(&views, templates, view)?;
        Ok(format!(
            "{HEADER}\n// The Rust of contract `{}` for `include!` (evcontract::Builder).\n\n{lib}",
            ir.name
        ))
    })
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
            let types = spawn_types(scope, input.ir, Layout::Crate)?;
            crate_files(input.ir, input.views, input.options, input.templates, types)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Formats typify-shaped `code` for the include layout.
    fn included(code: &str) -> Result<String, String> {
        let tokens: proc_macro2::TokenStream = code.parse().map_err(|e| format!("{e:?}"))?;
        let text = format_tokens(tokens, rewrite_types_included)?;
        check_through_runtime(&text)?;
        Ok(text)
    }

    #[test]
    fn two_spellings_of_one_schema_make_the_same_rust_types() {
        // typify is given the typed nodes, not the contract's text: a
        // nullable ack spelled with `anyOf` makes what `type: [.., "null"]`
        // makes (given the text, typify named the `anyOf` branch after the
        // ack, and generation failed on the clash).
        let contract = |ack: &str| {
            format!(
                r#"{{"contract": "demo", "version": "1.0.0", "namespaces": {{"/a": {{"clientEvents": {{
                    "get": {{"payload": {{"type": "object"}}, "ack": {ack}}}}}}}}}}}"#
            )
        };
        let types = |ack: &str| {
            let ir = crate::load(std::path::Path::new("demo.contract.json"), &contract(ack))
                .expect("valid");
            types_source(&ir, Layout::Crate).expect("types").0
        };
        let object = r#"{"properties": {"ok": {"type": "boolean", "description": "Done."}}, "required": ["ok"]}"#;
        let with_type_list = types(&format!(
            r#"{{"type": ["object", "null"], {}"#,
            &object[1..]
        ));
        let with_any_of = types(&format!(
            r#"{{"anyOf": [{{"type": "object", {}, {{"type": "null"}}]}}"#,
            &object[1..]
        ));
        assert_eq!(with_any_of, with_type_list);
        assert!(
            with_type_list.contains("pub struct GetAck"),
            "{with_type_list}"
        );
    }

    #[test]
    fn typify_s_constrained_strings_are_decoded_with_one_copy() {
        // `decode_strings_once` matches typify's `Deserialize` of a
        // constrained string by its tokens: when a typify upgrade writes
        // them differently, the rewrite stops matching and this fails,
        // instead of the generated servers silently decoding twice.
        let text = r#"{"contract": "demo", "version": "1.0.0", "namespaces": {"/a": {"clientEvents": {
            "pick": {"payload": {"type": "object", "properties": {
                "code": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "name": {"type": "string", "minLength": 1, "maxLength": 8}},
                "required": ["code", "name"]}}}}}}"#;
        let ir = crate::load(std::path::Path::new("demo.contract.json"), text).expect("valid");
        let (source, _) = types_source(&ir, Layout::Crate).expect("types");
        assert_eq!(
            source.matches("deserializer.deserialize_str(Text)").count(),
            2,
            "{source}"
        );
        assert!(
            !source.contains("String::deserialize(deserializer)"),
            "{source}"
        );
    }

    #[test]
    fn typify_s_crate_paths_reach_the_runtime_or_generation_fails() {
        // typify 0.8's shape: derives and format types by absolute paths.
        let text = included(
            "#[derive(::serde::Serialize, ::serde::Deserialize, Clone)]
             #[serde(transparent)]
             pub struct Stamp(pub ::chrono::DateTime<::chrono::offset::Utc>);
             pub struct Id(pub ::uuid::Uuid);",
        )
        .expect("typify's shape is rewritten");
        assert!(
            text.contains("::evcontract_runtime::__private::serde::Serialize")
                && text.contains("#[serde(crate = \"::evcontract_runtime::__private::serde\")]")
                && text.contains("::evcontract_runtime::__private::chrono::DateTime")
                && text.contains("::evcontract_runtime::__private::uuid::Uuid"),
            "{text}"
        );
        // A shape typify might change to: a relative path, or a `use`.
        // Generation then fails loudly instead of writing code that needs a
        // crate the build script's crate was told it does not need.
        for changed in [
            "#[derive(serde::Serialize)] pub struct A { pub a: i64 }",
            "use regress::Regex; pub struct B;",
            "pub struct C(pub uuid::Uuid);",
        ] {
            let err = included(changed).expect_err(changed);
            assert!(err.contains("names `"), "{err}");
        }
    }
}
