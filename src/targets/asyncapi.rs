//! The AsyncAPI 3.0 document of a contract, from the server's point of
//! view: one channel per namespace whose messages are its events and acks,
//! one operation per event (`receive` for client events, `send` for server
//! events, a `reply` for acked ones), the payload types under
//! `components/schemas`. Built as JSON from the IR, so it is valid JSON by
//! construction and deterministic (keys in insertion order).

use serde_json::{Map, Value, json};

use crate::generated::GENERATED_MARKER;
use std::collections::HashMap;

use crate::ir::{ClientEventIr, ContractIr, NamespaceIr, RateLimitIr};

/// The document, pretty-printed with a final newline.
pub fn render(ir: &ContractIr) -> String {
    let mut text = serde_json::to_string_pretty(&document(ir)).unwrap_or_default();
    text.push('\n');
    text
}

fn document(ir: &ContractIr) -> Value {
    let mut channels = Map::new();
    let mut operations = Map::new();
    let mut messages = Map::new();
    let mut schemas: Map<String, Value> = ir
        .types
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                named(&components_refs(&t.node.annotated_schema()), &t.name),
            )
        })
        .collect();
    let replies = envelopes(ir, &mut schemas);
    for ns in &ir.namespaces {
        channel(ns, &replies, &mut channels, &mut operations, &mut messages);
    }
    let mut info = json!({
        "title": ir.name,
        "version": ir.version,
    });
    if !ir.doc.is_empty() {
        info["description"] = json!(ir.doc.join("\n"));
    }
    if let Some(license) = &ir.license {
        info["license"] = json!({ "name": license });
    }
    if let Some(contact) = &ir.contact {
        info["contact"] = serde_json::to_value(contact).unwrap_or_default();
    }
    // The marker within the first three lines, where `--check` and stale
    // file removal look for it. AsyncAPI 3.0.0, not 3.1.0: the document
    // uses nothing 3.1 added, and Modelina 5 (a common model generator)
    // reads up to 3.0.0 only (a 3.1.0 document gives it one empty `Root`).
    // The parser notes the newer version as an info, not a warning.
    json!({
        "asyncapi": "3.0.0",
        "x-evcontract-generated": format!("This file is {GENERATED_MARKER} from {}. Do not edit.", ir.source_name),
        "info": info,
        "defaultContentType": "application/json",
        "servers": {
            "socketio": {
                "host": "localhost:3000",
                "protocol": "ws",
                "pathname": "/socket.io/",
                "description": "Socket.IO v5 (Engine.IO v4) over WebSocket, with HTTP long-polling as fallback. Each channel is a Socket.IO namespace; each message is an event, sent as [name, payload] with an optional ack."
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": schemas,
            "messages": messages,
        }
    })
}

/// Adds namespace `ns`: its channel, its operations and its messages.
fn channel(
    ns: &NamespaceIr,
    replies: &HashMap<(String, String), String>,
    channels: &mut Map<String, Value>,
    operations: &mut Map<String, Value>,
    messages: &mut Map<String, Value>,
) {
    let id = ns.module.clone();
    let channel_ref = json!({ "$ref": format!("#/channels/{id}") });
    let mut channel_messages = Map::new();
    let mut add_message = |key: String, name: &str, payload_type: &str, doc: &[String]| {
        let component = format!("{id}-{key}");
        let mut message = json!({
            "name": name,
            "contentType": "application/json",
            "payload": { "$ref": format!("#/components/schemas/{payload_type}") },
        });
        if !doc.is_empty() {
            message["summary"] = json!(doc[0]);
            message["description"] = json!(doc.join("\n"));
        }
        messages.insert(component.clone(), message);
        channel_messages.insert(
            key,
            json!({ "$ref": format!("#/components/messages/{component}") }),
        );
    };
    // A client and a server event may share a name: the keys say which.
    for event in &ns.client_events {
        add_message(
            format!("client-{}", event.wire_name),
            &event.wire_name,
            &event.payload_type,
            &event.doc,
        );
        if event.ack_type.is_some() {
            let doc = [format!(
                "The ack of `{}`: `{{success: true, data}}`, or `{{success: false, code, message, details?}}`.",
                event.wire_name
            )];
            add_message(
                format!("client-{}-ack", event.wire_name),
                &format!("{} (ack)", event.wire_name),
                replies
                    .get(&(ns.module.clone(), event.wire_name.clone()))
                    .map_or("", String::as_str),
                &doc,
            );
        }
    }
    for event in &ns.server_events {
        add_message(
            format!("server-{}", event.wire_name),
            &event.wire_name,
            &event.payload_type,
            &event.doc,
        );
    }
    let message_ref = |key: &str| json!({ "$ref": format!("#/channels/{id}/messages/{key}") });
    for event in &ns.client_events {
        let mut op = json!({
            "action": "receive",
            "channel": channel_ref,
            "summary": format!("The client sends `{}`.", event.wire_name),
            "messages": [message_ref(&format!("client-{}", event.wire_name))],
            "x-evcontract-auth": if event.auth_required { "required" } else { "optional" },
        });
        if event.ack_type.is_some() {
            op["reply"] = json!({
                "channel": channel_ref,
                "messages": [message_ref(&format!("client-{}-ack", event.wire_name))],
            });
        }
        if let Some(limit) = &event.rate_limit {
            op["x-evcontract-rate-limit"] = rate_limit(limit);
        }
        if let Some(max) = event.max_payload_bytes {
            op["x-evcontract-max-payload-bytes"] = json!(max);
        }
        if event.ack_type.is_some() {
            op["x-evcontract-idempotent"] = json!(event.idempotent);
        }
        operations.insert(format!("{id}-client-{}", event.wire_name), op);
    }
    for event in &ns.server_events {
        operations.insert(
            format!("{id}-server-{}", event.wire_name),
            json!({
                "action": "send",
                "channel": channel_ref,
                "summary": format!("The server sends `{}`.", event.wire_name),
                "messages": [message_ref(&format!("server-{}", event.wire_name))],
            }),
        );
    }
    let mut value = json!({
        "address": ns.path,
        "title": format!("Namespace {}", ns.path),
        "messages": channel_messages,
        "x-evcontract-auth": if ns.auth_required { "required" } else { "optional" },
    });
    if !ns.doc.is_empty() {
        value["description"] = json!(ns.doc.join("\n"));
    }
    if !ns.rooms.is_empty() {
        value["x-evcontract-rooms"] = ns
            .rooms
            .iter()
            .map(|r| {
                let room = if r.max_members.is_none() && r.history.is_none() {
                    json!(r.pattern)
                } else {
                    let mut room = json!({ "pattern": r.pattern });
                    if let Some(max) = r.max_members {
                        room["maxMembers"] = json!(max);
                    }
                    if let Some(h) = r.history {
                        room["history"] = json!({ "size": h.size, "ttlSeconds": h.ttl_seconds });
                    }
                    room
                };
                (r.name.clone(), room)
            })
            .collect::<Map<String, Value>>()
            .into();
    }
    channels.insert(id, value);
}

/// A component name not taken yet: `name`, else `name` + `Envelope`, then
/// with a number (a contract type may already be called so).
fn free_name(schemas: &Map<String, Value>, name: &str) -> String {
    std::iter::once(name.to_owned())
        .chain((1..).map(|n| {
            format!(
                "{name}Envelope{}",
                if n == 1 { String::new() } else { n.to_string() }
            )
        }))
        .find(|candidate| !schemas.contains_key(candidate))
        .unwrap_or_else(|| name.to_owned())
}

/// Adds the ack envelopes: one failure (`{success: false, code, message,
/// details?}`, the codes as a named enum) and, per acked event, its reply:
/// the success `{success: true, data}` or the failure. Returns the reply's
/// component name per event (by its PascalCase name and namespace module).
fn envelopes(
    ir: &ContractIr,
    schemas: &mut Map<String, Value>,
) -> HashMap<(String, String), String> {
    let mut replies = HashMap::new();
    let acked: Vec<(&NamespaceIr, &ClientEventIr, &String)> = ir
        .namespaces
        .iter()
        .flat_map(|ns| ns.client_events.iter().map(move |e| (ns, e)))
        .filter_map(|(ns, e)| Some((ns, e, e.ack_type.as_ref()?)))
        .collect();
    if acked.is_empty() {
        return replies;
    }
    let failure = free_name(schemas, "AckFailure");
    let codes: Vec<&str> = ir.errors.iter().map(|e| e.code.as_str()).collect();
    schemas.insert(
        failure.clone(),
        json!({
            "title": failure,
            "description": "A failed ack: the event was refused or failed.",
            "type": "object",
            "properties": {
                "success": { "type": "boolean", "const": false },
                "code": {
                    "title": format!("{failure}Code"),
                    "description": "A built-in code or one of the contract's.",
                    "type": "string",
                    "enum": codes,
                },
                "message": { "type": "string" },
                "details": { "description": "Structured details, for some codes." },
            },
            "required": ["success", "code", "message"],
        }),
    );
    for (ns, event, ack) in acked {
        // Two namespaces may have an event of the same name.
        let base = if ir.namespaces.len() > 1 {
            format!("{}{}AckReply", ns.pascal, event.pascal)
        } else {
            format!("{}AckReply", event.pascal)
        };
        let name = free_name(schemas, &base);
        schemas.insert(
            name.clone(),
            json!({
                "title": name,
                "oneOf": [
                    {
                        "title": format!("{name}Success"),
                        "type": "object",
                        "properties": {
                            "success": { "type": "boolean", "const": true },
                            "data": { "$ref": format!("#/components/schemas/{ack}") },
                        },
                        "required": ["success", "data"],
                    },
                    { "$ref": format!("#/components/schemas/{failure}") },
                ],
            }),
        );
        replies.insert((ns.module.clone(), event.wire_name.clone()), name);
    }
    replies
}

/// `schema` with a `title` on every nested object or enum that has none
/// (`<Type><Property>`, `<Type>Item` for array items, `<Type>Variant<n>`),
/// the names typify gives them, so that model generators name them too.
fn named(schema: &Value, name: &str) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    let mut out = map.clone();
    let titled =
        map.contains_key("enum") || map.get("type").and_then(Value::as_str) == Some("object");
    if titled && !map.contains_key("title") && !map.contains_key("$ref") {
        out.insert("title".to_owned(), json!(name));
    }
    if let Some(Value::Object(props)) = map.get("properties") {
        let props: Map<String, Value> = props
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    named(v, &format!("{name}{}", heck::AsUpperCamelCase(k))),
                )
            })
            .collect();
        out.insert("properties".to_owned(), props.into());
    }
    if let Some(items) = map.get("items") {
        out.insert("items".to_owned(), named(items, &format!("{name}Item")));
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(Value::Array(variants)) = map.get(key) {
            let variants: Vec<Value> = variants
                .iter()
                .enumerate()
                .map(|(i, v)| named(v, &format!("{name}Variant{i}")))
                .collect();
            out.insert(key.to_owned(), variants.into());
        }
    }
    Value::Object(out)
}

fn rate_limit(limit: &RateLimitIr) -> Value {
    json!({
        "max": limit.max,
        "windowMs": limit.window_ms,
        "per": limit.scope_wire,
    })
}

/// The schema with `#/definitions/X` references pointed at
/// `#/components/schemas/X`.
fn components_refs(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                let v = match (k.as_str(), v.as_str()) {
                    ("$ref", Some(r)) => match r.strip_prefix("#/definitions/") {
                        Some(name) => json!(format!("#/components/schemas/{name}")),
                        None => v.clone(),
                    },
                    _ => components_refs(v),
                };
                (k.clone(), v)
            })
            .collect::<Map<String, Value>>()
            .into(),
        Value::Array(items) => items.iter().map(components_refs).collect(),
        other => other.clone(),
    }
}

/// The AsyncAPI target: `asyncapi/<contract>.asyncapi.json`.
pub struct AsyncApi;

impl super::Target for AsyncApi {
    fn name(&self) -> &'static str {
        "asyncapi"
    }

    fn emit(
        &self,
        input: &super::Input<'_>,
    ) -> Result<Vec<crate::GeneratedFile>, crate::EmitError> {
        Ok(vec![crate::GeneratedFile {
            path: std::path::PathBuf::from("asyncapi")
                .join(format!("{}.asyncapi.json", input.ir.name)),
            contents: render(input.ir),
        }])
    }
}
