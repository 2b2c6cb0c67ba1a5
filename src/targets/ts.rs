//! TypeScript type expressions, rendered from the schema IR.
//!
//! typify's `TypeSpace` does not expose wire names or serde tagging, so the
//! TypeScript side is rendered from the schema itself, using the names the IR
//! decided (which are the names typify was given).

use std::path::PathBuf;

use handlebars::Context;
use serde_json::json;

use super::{Views, with};
use crate::generated::GeneratedFile;
use crate::ir::{ContractIr, TypeDef};
use crate::schema_ir::{SchemaKind, SchemaNode};
use crate::templates::Templates;

const INDENT: &str = "  ";

/// A TSDoc block for `lines`, indented by `depth` levels (empty when there are no lines).
pub fn doc_block(lines: &[String], depth: usize) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let pad = INDENT.repeat(depth);
    // `*/` would end the comment early.
    let esc = |l: &str| l.replace("*/", "*\\/");
    if lines.len() == 1 {
        return format!("{pad}/** {} */\n", esc(&lines[0]));
    }
    let mut out = format!("{pad}/**\n");
    for l in lines {
        if l.is_empty() {
            out.push_str(&format!("{pad} *\n"));
        } else {
            out.push_str(&format!("{pad} * {}\n", esc(l)));
        }
    }
    out.push_str(&format!("{pad} */\n"));
    out
}

fn doc_of(node: &SchemaNode) -> Vec<String> {
    let mut lines = crate::ir::doc_lines(node.description.as_deref());
    let int64 = |n: &SchemaNode| matches!(&n.kind, SchemaKind::Integer { format: Some(f), .. } if f == "int64" || f == "uint64");
    let inner = match &node.kind {
        SchemaKind::Nullable(inner) => inner.as_ref(),
        _ => node,
    };
    if int64(inner) {
        if !lines.is_empty() {
            lines.push(String::new());
        }
        lines.push(
            "64-bit integer on the wire; a JavaScript `number` holds it exactly only up to 2^53 - 1."
                .to_owned(),
        );
    }
    lines
}

fn string_literal(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

fn property_key(name: &str) -> String {
    let ident = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if ident {
        name.to_owned()
    } else {
        string_literal(name)
    }
}

/// Whether an expression needs parentheses before `[]`.
fn is_compound(expr: &str) -> bool {
    expr.contains(" | ") || expr.contains(" & ") || expr.starts_with('(')
}

/// Renders a type expression. `depth` is the indentation level of the line the
/// expression starts on.
pub fn type_expr(node: &SchemaNode, depth: usize) -> String {
    match &node.kind {
        SchemaKind::Any => "unknown".to_owned(),
        SchemaKind::Ref(name) => name.clone(),
        SchemaKind::String {
            constant: Some(c), ..
        } => string_literal(c),
        SchemaKind::String { enumeration, .. } if !enumeration.is_empty() => enumeration
            .iter()
            .map(|e| string_literal(e))
            .collect::<Vec<_>>()
            .join(" | "),
        SchemaKind::String { .. } => "string".to_owned(),
        SchemaKind::Integer {
            constant: Some(c), ..
        } => c.to_string(),
        SchemaKind::Integer { .. } | SchemaKind::Number { .. } => "number".to_owned(),
        SchemaKind::Boolean { constant: Some(c) } => c.to_string(),
        SchemaKind::Boolean { constant: None } => "boolean".to_owned(),
        SchemaKind::Null => "null".to_owned(),
        SchemaKind::Array { items, .. } => {
            let inner = type_expr(items, depth);
            if is_compound(&inner) || inner.contains('\n') {
                format!("Array<{inner}>")
            } else {
                format!("{inner}[]")
            }
        }
        SchemaKind::Map(inner) => format!("Record<string, {}>", type_expr(inner, depth)),
        SchemaKind::Nullable(inner) => format!("{} | null", type_expr(inner, depth)),
        SchemaKind::Object { properties, closed } => {
            if properties.is_empty() {
                return if *closed {
                    "Record<string, never>".to_owned()
                } else {
                    "Record<string, unknown>".to_owned()
                };
            }
            format!(
                "{{\n{}{}}}",
                object_body(node, depth + 1),
                INDENT.repeat(depth)
            )
        }
        SchemaKind::TaggedUnion { variants, .. } => {
            let docs: Vec<Vec<String>> = variants.iter().map(doc_of).collect();
            if docs.iter().all(Vec::is_empty) {
                return variants
                    .iter()
                    .map(|v| type_expr(v, depth))
                    .collect::<Vec<_>>()
                    .join(" | ");
            }
            // One member per line, each under its TSDoc, so editors show the
            // variant's description (the line before `=` keeps a trailing
            // space, which the output's tidy step removes).
            let pad = INDENT.repeat(depth + 1);
            variants
                .iter()
                .zip(&docs)
                .map(|(v, doc)| {
                    format!(
                        "\n{}{pad}| {}",
                        doc_block(doc, depth + 1),
                        type_expr(v, depth + 1)
                    )
                })
                .collect()
        }
    }
}

/// The member lines of an object type (each ending in a newline).
fn object_body(node: &SchemaNode, depth: usize) -> String {
    let SchemaKind::Object { properties, .. } = &node.kind else {
        return String::new();
    };
    let pad = INDENT.repeat(depth);
    let mut out = String::new();
    for p in properties {
        out.push_str(&doc_block(&doc_of(&p.schema), depth));
        let optional = if p.required { "" } else { "?" };
        out.push_str(&format!(
            "{pad}{}{optional}: {};\n",
            property_key(&p.wire_name),
            type_expr(&p.schema, depth)
        ));
    }
    out
}

/// The full declaration of a named type, with its TSDoc, ending in a newline:
/// an `interface` for objects with properties, a `type` alias otherwise.
pub fn declaration(def: &TypeDef) -> String {
    let doc = doc_block(&doc_of(&def.node), 0);
    match &def.node.kind {
        SchemaKind::Object { properties, .. } if !properties.is_empty() => format!(
            "{doc}export interface {} {{\n{}}}\n",
            def.name,
            object_body(&def.node, 1)
        ),
        _ => format!(
            "{doc}export type {} = {};\n",
            def.name,
            type_expr(&def.node, 0)
        ),
    }
}

/// The client runtime, the same in every package: its TypeScript source, and
/// its compiled snapshot (`scripts/build-ts-runtime.sh` compiles it with the
/// repository's pinned tsc; the test command checks the snapshot is current).
/// Each entry: module name, `.ts`, ESM `.js`, CommonJS `.js`, `.d.ts`.
const RUNTIME: [(&str, &str, &str, &str, &str); 2] = [
    (
        "lib",
        include_str!("../../templates/ts/runtime/lib.ts"),
        include_str!("../../templates/ts/runtime/esm/lib.js"),
        include_str!("../../templates/ts/runtime/cjs/lib.js"),
        include_str!("../../templates/ts/runtime/esm/lib.d.ts"),
    ),
    (
        "hooks",
        include_str!("../../templates/ts/runtime/hooks.ts"),
        include_str!("../../templates/ts/runtime/esm/hooks.js"),
        include_str!("../../templates/ts/runtime/cjs/hooks.js"),
        include_str!("../../templates/ts/runtime/esm/hooks.d.ts"),
    ),
];

/// What a typed client module re-exports from `lib` (values, then types),
/// so that one import of `<namespace>.client` is enough.
const LIB_VALUES: [&str; 8] = [
    "AckDisconnectedError",
    "AckError",
    "AckTimeoutError",
    "CONTRACT",
    "ContractMismatchError",
    "ERROR_CODES",
    "QueueFullError",
    "RECOVERY_EVENT",
];
const LIB_TYPES: [&str; 8] = [
    "CallOptions",
    "ConnectOptions",
    "ErrorCode",
    "RecoveryGap",
    "RoomPosition",
    "Token",
    "TokenSource",
    "Transport",
];

/// One module of the package in its four forms: the TypeScript source at the
/// top, and JavaScript with declarations as ES modules (`esm/`) and as
/// CommonJS (`cjs/`, whose `package.json` says so). The declarations are the
/// same for both; each folder has its own copy so that TypeScript reads them
/// in the folder's module format.
struct Module {
    name: String,
    ts: String,
    dts: String,
    esm: String,
    cjs: String,
}

impl Module {
    fn files(self, dir: &std::path::Path) -> [GeneratedFile; 5] {
        let file = |sub: &str, ext: &str, contents: String| GeneratedFile {
            path: dir.join(sub).join(format!("{}.{ext}", self.name)),
            contents,
        };
        [
            file("", "ts", self.ts),
            file("esm", "d.ts", self.dts.clone()),
            file("cjs", "d.ts", self.dts),
            file("esm", "js", self.esm),
            file("cjs", "js", self.cjs),
        ]
    }
}

/// The TypeScript of a contract: `ts/<contract>/`, an npm package of
/// typings for `socket.io-client`, typed clients and React hooks, as
/// TypeScript sources and as JavaScript with declarations (ES modules and
/// CommonJS), so that it runs in plain Node as well as through a bundler.
fn package(
    ir: &ContractIr,
    views: &Views,
    templates: &Templates,
) -> Result<Vec<GeneratedFile>, String> {
    let mut modules = Vec::new();
    let ts_dir = PathBuf::from("ts").join(&ir.name);
    let header = &views.header;
    for ns in &ir.namespaces {
        let types: Vec<String> = ir
            .types
            .iter()
            .filter(|t| t.is_definition || t.namespace.as_deref() == Some(ns.module.as_str()))
            .map(declaration)
            .collect();
        let mut ns_view = serde_json::to_value(ns).map_err(|e| e.to_string())?;
        for (key, events) in [
            (
                "client_events",
                ns.client_events.iter().map(|e| &e.doc).collect::<Vec<_>>(),
            ),
            (
                "server_events",
                ns.server_events.iter().map(|e| &e.doc).collect::<Vec<_>>(),
            ),
        ] {
            if let Some(list) = ns_view.get_mut(key).and_then(|v| v.as_array_mut()) {
                for (view, doc) in list.iter_mut().zip(events) {
                    view["ts_doc"] = json!(doc_block(doc, 1));
                }
            }
        }
        let view = json!({
            "ir": header,
            "ns": ns_view,
            "ns_doc": doc_block(&ns.doc, 0),
            "path_literal": serde_json::to_string(&ns.path).unwrap_or_default(),
            "types": types,
            "lib_values": LIB_VALUES,
            "lib_types": LIB_TYPES,
            // Only acked calls hand the socket to `lib` (as socket.io's own
            // type): the import would be unused without them.
            "imports_socket": ns.client_events.iter().any(|e| e.ack_type.is_some()),
        });
        modules.push(Module {
            name: ns.module.clone(),
            ts: templates.render_context("ts/namespace.ts", &with(&view, "dts", false))?,
            dts: templates.render_context("ts/namespace.ts", &with(&view, "dts", true))?,
            esm: templates.render_context("ts/namespace.js", &with(&view, "cjs", false))?,
            cjs: templates.render_context("ts/namespace.js", &with(&view, "cjs", true))?,
        });
        let client = Context::from(view.clone());
        modules.push(Module {
            name: format!("{}.client", ns.module),
            ts: templates.render_context("ts/client.ts", &client)?,
            dts: templates.render_context("ts/client.d.ts", &client)?,
            esm: templates.render_context("ts/client.js", &with(&view, "cjs", false))?,
            cjs: templates.render_context("ts/client.js", &with(&view, "cjs", true))?,
        });
    }
    let whole = views.whole.data();
    let header_view = views.header_view.data();
    let index = templates.render_context("ts/index.ts", &with(whole, "cjs", false))?;
    modules.push(Module {
        name: "index".into(),
        ts: index.clone(),
        dts: index.clone(),
        esm: index,
        cjs: templates.render_context("ts/index.ts", &with(whole, "cjs", true))?,
    });
    modules.push(Module {
        name: "contract".into(),
        ts: templates.render_context("ts/contract.ts", &views.header_view)?,
        dts: templates.render_context("ts/contract.d.ts", &views.header_view)?,
        esm: templates.render_context("ts/contract.js", &with(header_view, "cjs", false))?,
        cjs: templates.render_context("ts/contract.js", &with(header_view, "cjs", true))?,
    });
    modules.push(Module {
        name: "react".into(),
        ts: templates.render_context("ts/react.ts", &views.whole)?,
        dts: templates.render_context("ts/react.d.ts", &views.whole)?,
        esm: templates.render_context("ts/react.js", &with(whole, "cjs", false))?,
        cjs: templates.render_context("ts/react.js", &with(whole, "cjs", true))?,
    });
    let file_header = templates.render("ts/header", &json!({ "ir": header }))?;
    for (name, ts, esm, cjs, dts) in RUNTIME {
        modules.push(Module {
            name: name.into(),
            ts: format!("{file_header}{ts}"),
            dts: format!("{file_header}{dts}"),
            esm: format!("{file_header}{esm}"),
            cjs: format!("{file_header}{cjs}"),
        });
    }
    let mut files: Vec<GeneratedFile> =
        modules.into_iter().flat_map(|m| m.files(&ts_dir)).collect();
    files.push(GeneratedFile {
        path: ts_dir.join("cjs/package.json"),
        contents: format!(
            "{{\n  \"//\": \"This file is {}. Do not edit.\",\n  \"type\": \"commonjs\"\n}}\n",
            crate::generated::GENERATED_MARKER
        ),
    });
    // One entry point per module a user imports; lib, hooks and contract
    // stay inside.
    let mut exports = vec![json!({ "key": ".", "file": "index" })];
    for ns in &ir.namespaces {
        exports.push(json!({ "key": format!("./{}", ns.module), "file": ns.module }));
        exports.push(json!({
            "key": format!("./{}.client", ns.module),
            "file": format!("{}.client", ns.module),
        }));
    }
    exports.push(json!({ "key": "./react", "file": "react" }));
    let description =
        ir.doc.first().cloned().unwrap_or_else(|| {
            format!("Typed socket.io-client API of the `{}` contract.", ir.name)
        });
    files.push(GeneratedFile {
        path: ts_dir.join("package.json"),
        contents: templates.render(
            "ts/package.json",
            &json!({
                "ir": header,
                "description": serde_json::to_string(&description).map_err(|e| e.to_string())?,
                "exports": exports,
            }),
        )?,
    });
    Ok(files)
}

/// The TypeScript target: the npm package `ts/<contract>/`.
pub struct TypeScript;

impl super::Target for TypeScript {
    fn name(&self) -> &'static str {
        "ts"
    }

    fn emit(&self, input: &super::Input<'_>) -> Result<Vec<GeneratedFile>, crate::EmitError> {
        Ok(package(input.ir, input.views, input.templates)?)
    }
}
