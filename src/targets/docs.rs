//! The reference a front-end developer reads on a code host:
//! `generated/docs/<contract>.md`. Per namespace: auth and rooms; per event:
//! direction, payload and ack as property tables (type, required, limits,
//! description), auth, rate limit, the errors it can answer, and an example
//! payload. Deterministic: built from the IR in contract order.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use crate::generated::GENERATED_MARKER;
use crate::ir::{ClientEventIr, ContractIr, TypeDef};
use crate::schema_ir::{SchemaKind, SchemaNode};

/// The Markdown reference of a contract.
pub fn render(ir: &ContractIr) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "<!-- This file is {GENERATED_MARKER} from {}. Do not edit. -->\n",
        ir.source_name
    );
    let _ = writeln!(out, "# {} {}\n", ir.name, ir.version);
    for line in &ir.doc {
        let _ = writeln!(out, "{line}");
    }
    if !ir.doc.is_empty() {
        out.push('\n');
    }
    out.push_str("Every acked event answers `{\"success\": true, \"data\": …}` or `{\"success\": false, \"code\", \"message\", \"details\"?}`; an event without ack that fails is answered with the `error` event. Error codes:\n\n| code | meaning |\n|---|---|\n");
    for e in &ir.errors {
        let _ = writeln!(out, "| `{}` | {} |", e.code, cell(&e.doc.join(" ")));
    }
    for ns in &ir.namespaces {
        let _ = writeln!(out, "\n## Namespace `{}`\n", ns.path);
        for line in &ns.doc {
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(
            out,
            "\nConnecting {}.",
            if ns.auth_required {
                "needs a valid token (`AUTH_REQUIRED`, `INVALID_TOKEN`)"
            } else {
                "needs no token; a token, when given, must be valid (`INVALID_TOKEN`)"
            }
        );
        if !ns.rooms.is_empty() {
            out.push_str(
                "\nRooms:\n\n| room | name pattern | members | history | |\n|---|---|---|---|---|\n",
            );
            for r in &ns.rooms {
                let members = r.max_members.map_or_else(
                    || "no cap".to_owned(),
                    |m| format!("at most {m} per server (`ROOM_FULL`)"),
                );
                let history = r.history.map_or_else(
                    || "none".to_owned(),
                    |h| format!("the last {} events, {} s each", h.size, h.ttl_seconds),
                );
                let _ = writeln!(
                    out,
                    "| `{}` | `{}` | {} | {} | {} |",
                    r.name,
                    r.pattern,
                    members,
                    history,
                    cell(&r.doc.join(" "))
                );
            }
        }
        for e in &ns.client_events {
            client_event(&mut out, ir, e);
        }
        for e in &ns.server_events {
            let _ = writeln!(out, "\n### `{}` (server to client)\n", e.wire_name);
            for line in &e.doc {
                let _ = writeln!(out, "{line}");
            }
            payload(&mut out, ir, "Payload", &e.payload_type);
        }
    }
    out
}

fn client_event(out: &mut String, ir: &ContractIr, e: &ClientEventIr) {
    let _ = writeln!(out, "\n### `{}` (client to server)\n", e.wire_name);
    for line in &e.doc {
        let _ = writeln!(out, "{line}");
    }
    let mut facts = vec![format!(
        "auth: {}",
        if e.auth_required {
            "required"
        } else {
            "optional"
        }
    )];
    match &e.rate_limit {
        Some(l) => facts.push(format!(
            "rate limit: {} per {} ms, per {} (`RATE_LIMITED`)",
            l.max, l.window_ms, l.scope_doc
        )),
        None => facts.push("no rate limit".to_owned()),
    }
    if let Some(max) = e.max_payload_bytes {
        facts.push(format!("payload at most {max} bytes (`PAYLOAD_TOO_LARGE`)"));
    }
    facts.push(match (&e.ack_type, e.idempotent) {
        (Some(_), true) => {
            "acked; a retried send runs once (generated clients send an idempotency key)".to_owned()
        }
        (Some(_), false) => "acked; not idempotent (a retried send runs again)".to_owned(),
        (None, _) => "not acked (failures arrive as the `error` event)".to_owned(),
    });
    let _ = writeln!(out, "\n{}.", facts.join("; "));
    payload(out, ir, "Payload", &e.payload_type);
    if let Some(ack) = &e.ack_type {
        payload(out, ir, "Ack data", ack);
    }
    let _ = writeln!(
        out,
        "\nErrors: `INVALID_PAYLOAD` (details `{{path, reason}}`), `UNKNOWN_EVENT`, `INTERNAL`{}{}.",
        if e.auth_required {
            ", `AUTH_REQUIRED`"
        } else {
            ""
        },
        if e.rate_limit.is_some() {
            ", `RATE_LIMITED` (details `{retryAfterMs}`)"
        } else {
            ""
        }
    );
}

fn type_def<'a>(ir: &'a ContractIr, name: &str) -> Option<&'a TypeDef> {
    ir.types.iter().find(|t| t.name == name)
}

/// A payload: its property table (objects) or its type, and an example.
fn payload(out: &mut String, ir: &ContractIr, title: &str, type_name: &str) {
    let Some(t) = type_def(ir, type_name) else {
        return;
    };
    let node = resolve(ir, &t.node);
    let _ = writeln!(out, "\n{title}: `{type_name}`");
    let (object, nullable) = match &node.kind {
        SchemaKind::Nullable(inner) => (&**inner, true),
        _ => (node, false),
    };
    match &object.kind {
        SchemaKind::Object { properties, .. } if !properties.is_empty() => {
            if nullable {
                out.push_str("\n`null`, or an object:\n");
            }
            out.push_str(
                "\n| property | type | required | limits | description |\n|---|---|---|---|---|\n",
            );
            for p in properties {
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} | {} | {} |",
                    p.wire_name,
                    cell(&type_of(&p.schema)),
                    if p.required { "yes" } else { "no" },
                    cell(&limits(&p.schema)),
                    cell(p.schema.description.as_deref().unwrap_or("")),
                );
            }
        }
        SchemaKind::Object { .. } if !nullable => {
            out.push_str("\nAn object with no properties.\n");
        }
        SchemaKind::Any => out.push_str("\nAny JSON value.\n"),
        _ => {
            let ty = type_of(node);
            let _ = writeln!(
                out,
                "\n{} {ty}{}.",
                if ty.starts_with(['a', 'e', 'i', 'o', 'u']) {
                    "An"
                } else {
                    "A"
                },
                match limits(node).as_str() {
                    "" => String::new(),
                    l => format!(" ({l})"),
                }
            );
        }
    }
    let example = example(ir, node, 0);
    let _ = writeln!(
        out,
        "\nExample:\n\n```json\n{}\n```",
        serde_json::to_string_pretty(&example).unwrap_or_default()
    );
}

/// The definition a reference names (one step), or the node itself.
fn resolve<'a>(ir: &'a ContractIr, node: &'a SchemaNode) -> &'a SchemaNode {
    match &node.kind {
        SchemaKind::Ref(name) => type_def(ir, name).map_or(node, |t| &t.node),
        _ => node,
    }
}

/// A JSON string literal, as the contract would spell it.
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// A readable type: `string (uuid)`, `array of Message`, `"a" or "b"`.
fn type_of(node: &SchemaNode) -> String {
    let with_format = |base: &str, format: &Option<String>| match format {
        Some(f) => format!("{base} ({f})"),
        None => base.to_owned(),
    };
    match &node.kind {
        SchemaKind::Ref(name) => format!("`{name}`"),
        SchemaKind::String { enumeration, .. } if !enumeration.is_empty() => enumeration
            .iter()
            .map(|v| format!("`{}`", quoted(v)))
            .collect::<Vec<_>>()
            .join(" or "),
        SchemaKind::String {
            constant: Some(c), ..
        } => format!("`{}`", quoted(c)),
        SchemaKind::Integer {
            constant: Some(c), ..
        } => format!("`{c}`"),
        SchemaKind::Boolean { constant: Some(c) } => format!("`{c}`"),
        SchemaKind::TaggedUnion { variants, .. } => variants
            .iter()
            .map(type_of)
            .collect::<Vec<_>>()
            .join(" or "),
        SchemaKind::Nullable(inner) => format!("{} or null", type_of(inner)),
        SchemaKind::Any => "any".to_owned(),
        SchemaKind::String { format, .. } => with_format("string", format),
        SchemaKind::Integer { format, .. } => with_format("integer", format),
        SchemaKind::Number { format, .. } => with_format("number", format),
        SchemaKind::Boolean { constant: None } => "boolean".to_owned(),
        SchemaKind::Null => "null".to_owned(),
        SchemaKind::Array { items, .. } => format!("array of {}", type_of(items)),
        SchemaKind::Object { .. } | SchemaKind::Map(_) => "object".to_owned(),
    }
}

/// The limits of a value (of the non-null one, for a nullable type).
fn limits(node: &SchemaNode) -> String {
    let node = match &node.kind {
        SchemaKind::Nullable(inner) => inner,
        _ => node,
    };
    let mut out = Vec::new();
    let mut push = |label: &str, value: Option<String>| {
        if let Some(v) = value {
            out.push(format!("{label} {v}"));
        }
    };
    let text = |n: &Option<u64>| n.map(|n| n.to_string());
    let number = |n: &Option<serde_json::Number>| n.as_ref().map(ToString::to_string);
    match &node.kind {
        SchemaKind::String {
            min_length,
            max_length,
            pattern,
            ..
        } => {
            push("length ≥", text(min_length));
            push("length ≤", text(max_length));
            push("pattern", pattern.as_ref().map(|p| format!("`{p}`")));
        }
        SchemaKind::Integer {
            minimum, maximum, ..
        }
        | SchemaKind::Number {
            minimum, maximum, ..
        } => {
            push("≥", number(minimum));
            push("≤", number(maximum));
        }
        SchemaKind::Array {
            min_items,
            max_items,
            ..
        } => {
            push("items ≥", text(min_items));
            push("items ≤", text(max_items));
        }
        _ => {}
    }
    out.join(", ")
}

/// A value the schema accepts, for the docs (definitions followed a few
/// levels deep, so recursive ones end).
fn example(ir: &ContractIr, node: &SchemaNode, depth: usize) -> Value {
    let node = resolve(ir, node);
    if depth > 4 {
        return Value::Null;
    }
    match &node.kind {
        SchemaKind::String {
            constant: Some(c), ..
        } => json!(c),
        SchemaKind::String { enumeration, .. } if !enumeration.is_empty() => {
            json!(enumeration[0])
        }
        SchemaKind::String {
            format, min_length, ..
        } => match format.as_deref() {
            Some("uuid") => json!("3fa85f64-5717-4562-b3fc-2c963f66afa6"),
            Some("date-time") => json!("2026-01-01T12:00:00Z"),
            Some("date") => json!("2026-01-01"),
            Some("email") => json!("ada@example.com"),
            _ => {
                let min = min_length.unwrap_or(0);
                json!("x".repeat(usize::try_from(min.clamp(1, 8)).unwrap_or(1)))
            }
        },
        SchemaKind::Integer {
            constant: Some(c), ..
        } => json!(c),
        SchemaKind::Integer { minimum, .. } => json!(
            minimum
                .as_ref()
                .and_then(serde_json::Number::as_i64)
                .unwrap_or(1)
                .max(0)
        ),
        SchemaKind::Number { minimum, .. } => json!(
            minimum
                .as_ref()
                .and_then(serde_json::Number::as_f64)
                .unwrap_or(1.5)
        ),
        SchemaKind::Boolean { constant } => json!(constant.unwrap_or(true)),
        SchemaKind::Null => Value::Null,
        SchemaKind::TaggedUnion { variants, .. } => variants
            .first()
            .map_or(Value::Null, |v| example(ir, v, depth + 1)),
        SchemaKind::Nullable(inner) => example(ir, inner, depth + 1),
        SchemaKind::Array {
            items, min_items, ..
        } => {
            let n = min_items.unwrap_or(1).clamp(1, 3);
            let item = example(ir, items, depth + 1);
            Value::Array(vec![item; usize::try_from(n).unwrap_or(1)])
        }
        SchemaKind::Object { properties, .. } => Value::Object(
            properties
                .iter()
                .map(|p| (p.wire_name.clone(), example(ir, &p.schema, depth + 1)))
                .collect::<Map<String, Value>>(),
        ),
        SchemaKind::Any | SchemaKind::Map(_) | SchemaKind::Ref(_) => Value::Object(Map::new()),
    }
}

/// Text for a table cell: no line breaks, `|` escaped.
fn cell(text: &str) -> String {
    text.replace('\n', " ").replace('|', "\\|")
}

/// The reference docs target: `docs/<contract>.md`.
pub struct Docs;

impl super::Target for Docs {
    fn name(&self) -> &'static str {
        "docs"
    }

    fn emit(
        &self,
        input: &super::Input<'_>,
    ) -> Result<Vec<crate::GeneratedFile>, crate::EmitError> {
        Ok(vec![crate::GeneratedFile {
            path: std::path::PathBuf::from("docs").join(format!("{}.md", input.ir.name)),
            contents: render(input.ir),
        }])
    }
}
