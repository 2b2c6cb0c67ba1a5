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
//! asked for), made to live in any module: paths that name the generated
//! crate's root are relative (`super::…`), the crate's `server`/`client`
//! features become the builder's choices, and there are no inner attributes.
//! The crate that includes it depends on `evcontract-runtime` (features
//! `server` and/or `client`), `serde` (with `derive`) and `serde_json`, plus
//! `chrono`, `uuid` or `regress` when the contract's formats need them (as
//! the generated `Cargo.toml` would list).

use std::fmt;
use std::path::{Path, PathBuf};

use proc_macro2::Span;
use quote::ToTokens;
use syn::visit_mut::VisitMut;

use crate::diag::Diagnostics;
use crate::generated::{GeneratedFile, HEADER};
use crate::options::{Options, RuntimeDep};

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
        // The runtime dependency line is not written here: the including
        // crate declares its own.
        let options = Options {
            runtime: RuntimeDep::default(),
        };
        let files = crate::generate_all(&inputs, &options).map_err(BuildError::Contract)?;
        let mut entries = Vec::new();
        let mut names: Vec<&str> = files
            .iter()
            .filter_map(|f| {
                let mut parts = f.path.iter();
                (parts.next()? == "rust").then_some(())?;
                parts.next()?.to_str()
            })
            .collect();
        names.dedup();
        for name in names {
            let text =
                entry(&files, name, self.server, self.client).map_err(BuildError::Internal)?;
            entries.push((out_dir.join(format!("{name}.rs")), text));
        }
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

/// The entry file of contract `name`: the generated crate's `lib.rs` with
/// every module file inlined, made to live in any module.
fn entry(
    files: &[GeneratedFile],
    name: &str,
    server: bool,
    client: bool,
) -> Result<String, String> {
    let src_dir = Path::new("rust").join(name).join("src");
    let parse = |file: &str| -> Result<syn::File, String> {
        let path = src_dir.join(file);
        let text = files
            .iter()
            .find(|f| f.path == path)
            .map(|f| f.contents.as_str())
            .ok_or_else(|| format!("no generated {}", path.display()))?;
        syn::parse_file(text)
            .map_err(|e| format!("generated {} does not parse: {e}", path.display()))
    };
    let lib = parse("lib.rs")?;
    let mut items = Vec::with_capacity(lib.items.len());
    for item in lib.items {
        match item {
            syn::Item::Mod(mut module) if module.content.is_none() => {
                let file = parse(&format!("{}.rs", module.ident))?;
                // A file's `//!` docs become the inline module's own.
                module.attrs.extend(file.attrs);
                module.content = Some((Default::default(), file.items));
                module.semi = None;
                items.push(syn::Item::Mod(module));
            }
            other => items.push(other),
        }
    }
    // No inner attributes at the top: `include!` cannot take them.
    let mut file = syn::File {
        shebang: None,
        frontmatter: None,
        attrs: Vec::new(),
        items,
    };
    select_features(&mut file.items, server, client);
    RelativeRoot { depth: 0 }.visit_file_mut(&mut file);
    Ok(format!(
        "{HEADER}\n// The Rust of contract `{name}` for `include!` (evcontract::Builder).\n\n{}",
        prettyplease::unparse(&file)
    ))
}

/// Drops the items of a feature that is off and the `cfg` of one that is
/// on: the generated crate's `server`/`client` features are the builder's
/// choices here.
fn select_features(items: &mut Vec<syn::Item>, server: bool, client: bool) {
    let wanted = |attr: &syn::Attribute| -> Option<bool> {
        let text = attr.meta.to_token_stream().to_string().replace(' ', "");
        match text.as_str() {
            "cfg(feature=\"server\")" => Some(server),
            "cfg(feature=\"client\")" => Some(client),
            _ => None,
        }
    };
    items.retain_mut(|item| {
        let Some(attrs) = item_attrs(item) else {
            return true;
        };
        let mut keep = true;
        attrs.retain(|attr| match wanted(attr) {
            Some(on) => {
                keep &= on;
                false
            }
            None => true,
        });
        keep
    });
    for item in items.iter_mut() {
        if let syn::Item::Mod(syn::ItemMod {
            content: Some((_, inner)),
            ..
        }) = item
        {
            select_features(inner, server, client);
        }
    }
}

fn item_attrs(item: &mut syn::Item) -> Option<&mut Vec<syn::Attribute>> {
    use syn::Item;
    Some(match item {
        Item::Const(i) => &mut i.attrs,
        Item::Enum(i) => &mut i.attrs,
        Item::Fn(i) => &mut i.attrs,
        Item::Impl(i) => &mut i.attrs,
        Item::Mod(i) => &mut i.attrs,
        Item::Static(i) => &mut i.attrs,
        Item::Struct(i) => &mut i.attrs,
        Item::Trait(i) => &mut i.attrs,
        Item::Type(i) => &mut i.attrs,
        Item::Use(i) => &mut i.attrs,
        _ => return None,
    })
}

/// Crates that generated code names and the runtime re-exports (serde
/// always; the others with its feature `formats`).
const REEXPORTED: [&str; 4] = ["serde", "chrono", "uuid", "regress"];

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

/// Rewrites `crate::…` (the generated crate's root) as `super::…` chains
/// up to the entry file's module, in code and in doc links; `pub(crate)`
/// keeps its meaning and is left alone.
struct RelativeRoot {
    depth: usize,
}

impl RelativeRoot {
    fn root_segments(&self) -> Vec<&'static str> {
        if self.depth == 0 {
            vec!["self"]
        } else {
            vec!["super"; self.depth]
        }
    }
}

impl VisitMut for RelativeRoot {
    fn visit_item_struct_mut(&mut self, item: &mut syn::ItemStruct) {
        serde_through_runtime(&mut item.attrs);
        syn::visit_mut::visit_item_struct_mut(self, item);
    }

    fn visit_item_enum_mut(&mut self, item: &mut syn::ItemEnum) {
        serde_through_runtime(&mut item.attrs);
        syn::visit_mut::visit_item_enum_mut(self, item);
    }

    fn visit_item_mod_mut(&mut self, module: &mut syn::ItemMod) {
        self.depth += 1;
        syn::visit_mut::visit_item_mod_mut(self, module);
        self.depth -= 1;
    }

    fn visit_visibility_mut(&mut self, _: &mut syn::Visibility) {}

    fn visit_path_mut(&mut self, path: &mut syn::Path) {
        // `::serde::…`, `::chrono::…`, `::uuid::…`, `::regress::…`
        // (typify's names for its derives, formats and patterns) reach
        // those crates through the runtime, so that the including crate
        // needs no dependency of its own.
        if path.leading_colon.is_some()
            && path
                .segments
                .first()
                .is_some_and(|s| REEXPORTED.iter().any(|c| s.ident == c))
        {
            through_runtime(path);
        }
        if path.leading_colon.is_none() && path.segments.first().is_some_and(|s| s.ident == "crate")
        {
            let rest: Vec<syn::PathSegment> = path.segments.iter().skip(1).cloned().collect();
            path.segments = self
                .root_segments()
                .into_iter()
                .map(|s| syn::PathSegment::from(syn::Ident::new(s, Span::call_site())))
                .chain(rest)
                .collect();
        }
        syn::visit_mut::visit_path_mut(self, path);
    }

    fn visit_use_tree_mut(&mut self, tree: &mut syn::UseTree) {
        if let syn::UseTree::Path(p) = tree
            && p.ident == "crate"
        {
            let mut rebuilt = (*p.tree).clone();
            for segment in self.root_segments().into_iter().rev() {
                rebuilt = syn::UseTree::Path(syn::UsePath {
                    ident: syn::Ident::new(segment, Span::call_site()),
                    colon2_token: Default::default(),
                    tree: Box::new(rebuilt),
                });
            }
            *tree = rebuilt;
            return;
        }
        syn::visit_mut::visit_use_tree_mut(self, tree);
    }

    fn visit_attribute_mut(&mut self, attr: &mut syn::Attribute) {
        // Doc links such as [`Message`](crate::Message).
        if let syn::Meta::NameValue(nv) = &mut attr.meta
            && nv.path.is_ident("doc")
            && let syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) = &mut nv.value
            && s.value().contains("](crate::")
        {
            let root = self.root_segments().join("::");
            let text = s.value().replace("](crate::", &format!("]({root}::"));
            *s = syn::LitStr::new(&text, s.span());
        }
    }
}
