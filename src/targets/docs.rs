//! The reference a front-end developer reads on a code host:
//! `generated/docs/<contract>.md`. Per namespace: auth and rooms; per event:
//! direction, payload and ack as property tables (type, required, limits,
//! description), auth, rate limit, the errors it can answer, and an example
//! payload. Deterministic: built from the IR in contract order.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use crate::GENERATED_MARKER;
use crate::ir::{ClientEventIr, ContractIr, TypeDef};

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
    let schema = resolve(ir, &t.schema);
    let _ = writeln!(out, "\n{title}: `{type_name}`");
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        out.push_str(
            "\n| property | type | required | limits | description |\n|---|---|---|---|---|\n",
        );
        for (name, p) in props {
            let _ = writeln!(
                out,
                "| `{name}` | {} | {} | {} | {} |",
                cell(&type_of(p)),
                if required.contains(&name.as_str()) {
                    "yes"
                } else {
                    "no"
                },
                cell(&limits(p)),
                cell(p.get("description").and_then(Value::as_str).unwrap_or("")),
            );
        }
    } else {
        let _ = writeln!(
            out,
            "\nA {}{}.",
            type_of(schema),
            match limits(schema).as_str() {
                "" => String::new(),
                l => format!(" ({l})"),
            }
        );
    }
    let example = example(ir, schema, 0);
    let _ = writeln!(
        out,
        "\nExample:\n\n```json\n{}\n```",
        serde_json::to_string_pretty(&example).unwrap_or_default()
    );
}

fn resolve<'a>(ir: &'a ContractIr, schema: &'a Value) -> &'a Value {
    match schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/definitions/"))
        .and_then(|name| type_def(ir, name))
    {
        Some(t) => &t.schema,
        None => schema,
    }
}

/// A readable type: `string (uuid)`, `array of Message`, `"a" \| "b"`.
fn type_of(s: &Value) -> String {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        return format!("`{}`", r.rsplit('/').next().unwrap_or(r));
    }
    if let Some(values) = s.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .map(|v| format!("`{v}`"))
            .collect::<Vec<_>>()
            .join(" or ");
    }
    if let Some(c) = s.get("const") {
        return format!("`{c}`");
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(variants) = s.get(key).and_then(Value::as_array) {
            return variants
                .iter()
                .map(type_of)
                .collect::<Vec<_>>()
                .join(" or ");
        }
    }
    let base = match s.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "any".to_owned(),
    };
    let base = match (base.as_str(), s.get("items")) {
        ("array", Some(items)) => format!("array of {}", type_of(items)),
        _ => base,
    };
    match s.get("format").and_then(Value::as_str) {
        Some(f) => format!("{base} ({f})"),
        None => base,
    }
}

fn limits(s: &Value) -> String {
    let mut out = Vec::new();
    for (key, label) in [
        ("minLength", "length ≥"),
        ("maxLength", "length ≤"),
        ("minimum", "≥"),
        ("maximum", "≤"),
        ("minItems", "items ≥"),
        ("maxItems", "items ≤"),
    ] {
        if let Some(v) = s.get(key) {
            out.push(format!("{label} {v}"));
        }
    }
    if let Some(p) = s.get("pattern").and_then(Value::as_str) {
        out.push(format!("pattern `{p}`"));
    }
    out.join(", ")
}

/// A value the schema accepts, for the docs (definitions followed a few
/// levels deep, so recursive ones end).
fn example(ir: &ContractIr, s: &Value, depth: usize) -> Value {
    let s = resolve(ir, s);
    if depth > 4 {
        return Value::Null;
    }
    if let Some(c) = s.get("const") {
        return c.clone();
    }
    if let Some(first) = s
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(first) = s.get(key).and_then(Value::as_array).and_then(|v| v.first()) {
            return example(ir, first, depth + 1);
        }
    }
    let ty = match s.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ => "object",
    };
    match ty {
        "string" => match s.get("format").and_then(Value::as_str) {
            Some("uuid") => json!("3fa85f64-5717-4562-b3fc-2c963f66afa6"),
            Some("date-time") => json!("2026-01-01T12:00:00Z"),
            Some("date") => json!("2026-01-01"),
            Some("email") => json!("ada@example.com"),
            _ => {
                let min = s.get("minLength").and_then(Value::as_u64).unwrap_or(0);
                json!("x".repeat(usize::try_from(min.clamp(1, 8)).unwrap_or(1)))
            }
        },
        "integer" => json!(s.get("minimum").and_then(Value::as_i64).unwrap_or(1).max(0)),
        "number" => json!(s.get("minimum").and_then(Value::as_f64).unwrap_or(1.5)),
        "boolean" => json!(true),
        "null" => Value::Null,
        "array" => {
            let n = s
                .get("minItems")
                .and_then(Value::as_u64)
                .unwrap_or(1)
                .clamp(1, 3);
            let item = s
                .get("items")
                .map_or(Value::Null, |i| example(ir, i, depth + 1));
            Value::Array(vec![item; usize::try_from(n).unwrap_or(1)])
        }
        _ => {
            let mut obj = Map::new();
            if let Some(props) = s.get("properties").and_then(Value::as_object) {
                for (name, p) in props {
                    obj.insert(name.clone(), example(ir, p, depth + 1));
                }
            }
            Value::Object(obj)
        }
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
