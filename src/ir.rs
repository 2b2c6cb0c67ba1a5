//! The intermediate representation every emitter reads.
//!
//! Built once from a validated contract. Every name the targets print (Rust
//! identifiers, TypeScript names, wire names, type names of event payloads)
//! is decided here, in Rust, so that templates only read fields and the Rust
//! and TypeScript outputs cannot disagree.

use std::collections::BTreeMap;

use heck::{ToLowerCamelCase, ToPascalCase, ToShoutySnakeCase, ToSnakeCase};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::contract::{AuthMode, RateScope};
use crate::diag::{Diagnostic, Pointer, Sink};
use crate::schema_ir::{SchemaKind, SchemaNode};
use crate::validate::{ValidContract, namespace_module, room_params};

/// A whole contract, ready to emit.
#[derive(Debug, Clone, Serialize)]
pub struct ContractIr {
    /// The contract's name (`chat`).
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its description, as doc lines.
    pub doc: Vec<String>,
    /// Its license (SPDX identifier or name), if given.
    pub license: Option<String>,
    /// Who answers for it, if given.
    pub contact: Option<crate::contract::Contact>,
    /// The contract's file name (no directory), for headers.
    pub source_name: String,
    /// The generated Rust package (`chat-contract`).
    pub crate_name: String,
    /// Every named type: definitions first, then event payloads and acks.
    pub types: Vec<TypeDef>,
    /// Error codes: built-in ones, then the contract's.
    pub errors: Vec<ErrorCodeIr>,
    /// The namespaces, in contract order.
    pub namespaces: Vec<NamespaceIr>,
}

/// A named type.
#[derive(Debug, Clone, Serialize)]
pub struct TypeDef {
    /// The type name in Rust and TypeScript (PascalCase).
    pub name: String,
    /// Its typed form (references are to `#/definitions/Name`).
    #[serde(skip)]
    pub node: SchemaNode,
    /// Whether it is one of the contract's `definitions` (as opposed to an
    /// inline event payload or ack given a name).
    pub is_definition: bool,
    /// For an event payload or ack: the module of its namespace.
    pub namespace: Option<String>,
    /// Where its schema is in the contract (JSON pointer), for diagnostics
    /// found after validation.
    #[serde(skip)]
    pub pointer: String,
}

/// An error code.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorCodeIr {
    /// The code on the wire (`THREAD_NOT_FOUND`).
    pub code: String,
    /// The Rust enum variant (`ThreadNotFound`).
    pub variant: String,
    /// Doc lines.
    pub doc: Vec<String>,
    /// Whether it is built in.
    pub builtin: bool,
}

/// A namespace.
#[derive(Debug, Clone, Serialize)]
pub struct NamespaceIr {
    /// The path (`/chat`).
    pub path: String,
    /// The module name in Rust and the file name in TypeScript (`chat`, `root` for `/`).
    pub module: String,
    /// PascalCase prefix of its types (`Chat`).
    pub pascal: String,
    /// The name it is re-exported under in TypeScript's `index.ts` (`chat`).
    pub ts_export: String,
    /// Doc lines.
    pub doc: Vec<String>,
    /// Whether the connection needs a valid token.
    pub auth_required: bool,
    /// Room patterns.
    pub rooms: Vec<RoomIr>,
    /// Client-to-server events.
    pub client_events: Vec<ClientEventIr>,
    /// Server-to-client events.
    pub server_events: Vec<ServerEventIr>,
}

/// A room pattern.
#[derive(Debug, Clone, Serialize)]
pub struct RoomIr {
    /// The room's name in the contract.
    pub name: String,
    /// The Rust constructor function.
    pub rust_fn: String,
    /// The TypeScript constructor function.
    pub ts_fn: String,
    /// The pattern, as written.
    pub pattern: String,
    /// The pattern as a Rust string literal.
    pub pattern_literal: String,
    /// Its parameters, in order.
    pub params: Vec<RoomParamIr>,
    /// A Rust `format!` string that builds the room name from `params`.
    pub rust_format: String,
    /// A TypeScript template literal body that builds the room name.
    pub ts_template: String,
    /// The contract's `maxMembers`, if any.
    pub max_members: Option<u64>,
    /// The contract's `history`, if any.
    pub history: Option<HistoryIr>,
    /// Doc lines.
    pub doc: Vec<String>,
}

/// How much of a room's events is kept for reconnecting clients.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct HistoryIr {
    /// Events kept per room.
    pub size: u32,
    /// Seconds an event is kept.
    pub ttl_seconds: u32,
}

/// A parameter of a room pattern.
#[derive(Debug, Clone, Serialize)]
pub struct RoomParamIr {
    /// As written in the pattern (`threadId`).
    pub wire: String,
    /// The Rust argument name (`thread_id`).
    pub rust_ident: String,
    /// The TypeScript argument name (`threadId`).
    pub ts_ident: String,
}

/// A client-to-server event.
#[derive(Debug, Clone, Serialize)]
pub struct ClientEventIr {
    /// The event name on the wire.
    pub wire_name: String,
    /// The Rust method name (keyword-escaped).
    pub rust_method: String,
    /// The Rust constant holding the wire name.
    pub const_name: String,
    /// The TypeScript method name (camelCase).
    pub ts_method: String,
    /// The method on the generated TypeScript client class: `ts_method`,
    /// unless that is one of the class's own members (`on`, `socket`, …).
    pub ts_client_method: String,
    /// PascalCase of the event name.
    pub pascal: String,
    /// The payload type's name.
    pub payload_type: String,
    /// The ack type's name, when the event is acked.
    pub ack_type: Option<String>,
    /// Whether the event needs an authenticated connection.
    pub auth_required: bool,
    /// The rate limit, if any.
    pub rate_limit: Option<RateLimitIr>,
    /// The payload size limit in bytes, if any.
    pub max_payload_bytes: Option<u64>,
    /// Whether a retried send runs once (acked, not opted out): clients
    /// send an idempotency key and retry after a reconnection.
    pub idempotent: bool,
    /// Doc lines.
    pub doc: Vec<String>,
    /// The payload's self-contained JSON Schema, normalised from its typed
    /// node (the runtime validates incoming payloads with it).
    pub validation_schema: String,
    /// [`Self::validation_schema`] as a Rust string literal.
    pub schema_literal: String,
}

/// A rate limit.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RateLimitIr {
    /// Events per window.
    pub max: u32,
    /// Window in milliseconds.
    pub window_ms: u64,
    /// The runtime's `RateScope` variant (`User`, `Connection`, `Ip`).
    pub scope_variant: &'static str,
    /// As the contract writes it (`per`): `user`, `connection`, `ip`.
    pub scope_wire: &'static str,
    /// Who it counts, for docs: `user`, `connection`, `IP address`.
    pub scope_doc: &'static str,
}

/// A server-to-client event.
#[derive(Debug, Clone, Serialize)]
pub struct ServerEventIr {
    /// The event name on the wire.
    pub wire_name: String,
    /// The Rust method name (keyword-escaped).
    pub rust_method: String,
    /// The Rust constant holding the wire name.
    pub const_name: String,
    /// The TypeScript method name (camelCase).
    pub ts_method: String,
    /// PascalCase of the event name.
    pub pascal: String,
    /// The payload type's name.
    pub payload_type: String,
    /// Doc lines.
    pub doc: Vec<String>,
}

/// Members of the generated TypeScript client class (`<Ns>Client`, with
/// those of its base class `EventClient`), which its per-event methods must
/// not shadow.
const TS_CLIENT_MEMBERS: [&str; 14] = [
    "constructor",
    "connect",
    "socket",
    "ackTimeoutMs",
    "retryForMs",
    "maxQueuedCalls",
    "connected",
    "disconnect",
    "on",
    "off",
    "onRecovery",
    "syncRooms",
    "listen",
    "unlisten",
];

/// The client-class method for client event `name` among `all` of its
/// namespace: camelCase, or `<camelCase>Event` (then `_`-suffixed until
/// unique) when camelCase is a member of the class.
fn ts_client_method<'a>(name: &str, all: impl Iterator<Item = &'a String> + Clone) -> String {
    let base = name.to_lower_camel_case();
    if !TS_CLIENT_MEMBERS.contains(&base.as_str()) {
        return base;
    }
    let mut method = format!("{base}Event");
    while TS_CLIENT_MEMBERS.contains(&method.as_str())
        || all.clone().any(|n| n.to_lower_camel_case() == method)
    {
        method.push('_');
    }
    method
}

const RUST_KEYWORDS: [&str; 51] = [
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "self", "Self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where",
    "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try",
];

/// A snake_case Rust identifier, escaped when it is a keyword.
pub fn rust_ident(name: &str) -> String {
    let snake = name.to_snake_case();
    if matches!(snake.as_str(), "self" | "super" | "crate") {
        format!("{snake}_")
    } else if RUST_KEYWORDS.contains(&snake.as_str()) || snake == "gen" {
        format!("r#{snake}")
    } else {
        snake
    }
}

/// Doc lines of an optional description.
pub fn doc_lines(description: Option<&str>) -> Vec<String> {
    description
        .map(|d| d.lines().map(|l| l.trim_end().to_owned()).collect())
        .unwrap_or_default()
}

fn auth_required(mode: AuthMode) -> bool {
    mode == AuthMode::Required
}

/// Builds the IR from a validated contract, taking the typed schemas that
/// validation built. Name collisions are reported as diagnostics.
pub fn build(valid: &ValidContract, file: &std::path::Path) -> Result<ContractIr, Vec<Diagnostic>> {
    let contract = &valid.contract;
    let mut sink = Sink::new(file);
    // Validation typed every schema of a valid contract; `{}` stands in
    // should one ever be missing.
    let node_at = |pointer: &str| {
        valid
            .schemas
            .get(pointer)
            .cloned()
            .unwrap_or_else(|| SchemaNode::plain(SchemaKind::Any, pointer.to_owned()))
    };

    let mut types: Vec<TypeDef> = contract
        .definitions
        .keys()
        .map(|name| {
            let pointer = Pointer::root().join("definitions").join(name).to_string();
            TypeDef {
                name: name.clone(),
                node: node_at(&pointer),
                is_definition: true,
                namespace: None,
                pointer,
            }
        })
        .collect();

    // Inline event payloads and acks become named types. The candidate name is
    // PascalCase of the event (`SendMessage`, `SendMessageAck`); when two
    // candidates (or a candidate and a definition) share a name, it is
    // prefixed with the namespace (`ChatSendMessage`), then suffixed with the
    // direction.
    struct Slot {
        at: Pointer,
        candidates: [String; 3],
        description: Option<String>,
        module: String,
    }
    let mut slots: Vec<Slot> = Vec::new();
    // What each payload/ack resolves to: a definition name, or a slot index.
    enum Target {
        Named(String),
        Slot(usize),
    }
    let target_of = |slots: &mut Vec<Slot>,
                     at: Pointer,
                     base: String,
                     module: &str,
                     dir: &str,
                     description: Option<&String>|
     -> Target {
        let ns_pascal = module.to_pascal_case();
        // A payload that is only a `$ref` (and a description) is the
        // definition's type.
        if let Some(SchemaKind::Ref(name)) = valid.schemas.get(at.as_str()).map(|n| &n.kind) {
            return Target::Named(name.clone());
        }
        slots.push(Slot {
            at,
            candidates: [
                base.clone(),
                format!("{ns_pascal}{base}"),
                format!("{ns_pascal}{dir}{base}"),
            ],
            description: description.cloned(),
            module: module.to_owned(),
        });
        Target::Slot(slots.len() - 1)
    };

    struct NsDraft {
        client: Vec<(String, Target, Option<Target>)>,
        server: Vec<(String, Target)>,
    }
    let mut drafts = Vec::new();
    let ns_root = Pointer::root().join("namespaces");
    for (path, ns) in &contract.namespaces {
        let module = namespace_module(path).unwrap_or_else(|| "root".to_owned());
        let at = ns_root.join(path);
        let mut d = NsDraft {
            client: Vec::new(),
            server: Vec::new(),
        };
        for (name, ev) in &ns.client_events {
            let ev_at = at.join("clientEvents").join(name);
            let base = name.to_pascal_case();
            let p = target_of(
                &mut slots,
                ev_at.join("payload"),
                base.clone(),
                &module,
                "Client",
                ev.description.as_ref(),
            );
            let a = ev.ack.as_ref().map(|_| {
                target_of(
                    &mut slots,
                    ev_at.join("ack"),
                    format!("{base}Ack"),
                    &module,
                    "Client",
                    None,
                )
            });
            d.client.push((name.clone(), p, a));
        }
        for (name, ev) in &ns.server_events {
            let ev_at = at.join("serverEvents").join(name);
            let p = target_of(
                &mut slots,
                ev_at.join("payload"),
                name.to_pascal_case(),
                &module,
                "Server",
                ev.description.as_ref(),
            );
            d.server.push((name.clone(), p));
        }
        drafts.push(d);
    }

    // Resolve slot names: the first candidate that no other slot or definition uses.
    let mut slot_names: Vec<String> = Vec::with_capacity(slots.len());
    for (i, slot) in slots.iter().enumerate() {
        let taken = |name: &str| {
            contract.definitions.contains_key(name)
                || crate::validate::RESERVED_TYPE_NAMES.contains(&name)
                || slots
                    .iter()
                    .enumerate()
                    .any(|(j, other)| j != i && other.candidates[0] == name)
                || slot_names.iter().any(|n| n == name)
        };
        match slot.candidates.iter().find(|c| !taken(c)) {
            Some(name) => slot_names.push(name.clone()),
            None => {
                sink.error(
                    &slot.at,
                    format!(
                        "cannot name this payload type: `{}`, `{}` and `{}` are all taken (rename a definition)",
                        slot.candidates[0], slot.candidates[1], slot.candidates[2]
                    ),
                );
                slot_names.push(slot.candidates[2].clone());
            }
        }
    }
    for (slot, name) in slots.iter().zip(&slot_names) {
        let pointer = slot.at.to_string();
        let mut node = node_at(&pointer);
        if node.description.is_none() {
            node.description.clone_from(&slot.description);
        }
        types.push(TypeDef {
            name: name.clone(),
            node,
            is_definition: false,
            namespace: Some(slot.module.clone()),
            pointer,
        });
    }
    let resolve = |t: &Target| match t {
        Target::Named(n) => n.clone(),
        Target::Slot(i) => slot_names[*i].clone(),
    };

    let mut errors: Vec<ErrorCodeIr> = evcontract_wire::codes::BUILTIN
        .iter()
        .map(|b| ErrorCodeIr {
            code: b.code.to_owned(),
            variant: b.code.to_pascal_case(),
            doc: vec![b.doc.to_owned()],
            builtin: true,
        })
        .collect();
    for (code, def) in &contract.errors {
        errors.push(ErrorCodeIr {
            code: code.clone(),
            variant: code.to_pascal_case(),
            doc: doc_lines(def.description.as_deref()),
            builtin: false,
        });
    }

    let mut namespaces = Vec::new();
    for ((path, ns), draft) in contract.namespaces.iter().zip(drafts) {
        let module = namespace_module(path).unwrap_or_else(|| "root".to_owned());
        let pascal = module.to_pascal_case();
        let rooms = ns
            .rooms
            .iter()
            .map(|(name, room)| {
                let params: Vec<RoomParamIr> = room_params(&room.pattern)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|p| RoomParamIr {
                        rust_ident: rust_ident(&p),
                        ts_ident: p.to_lower_camel_case(),
                        wire: p,
                    })
                    .collect();
                // Placeholders become `{}` (arguments are passed positionally:
                // raw identifiers cannot be captured in format strings).
                let mut rust_format = room.pattern.replace('{', "{{").replace('}', "}}");
                let mut ts_template = room
                    .pattern
                    .replace('\\', "\\\\")
                    .replace('`', "\\`")
                    .replace('$', "\\$");
                for p in &params {
                    rust_format = rust_format.replace(&format!("{{{{{}}}}}", p.wire), "{}");
                    ts_template = ts_template
                        .replace(&format!("{{{}}}", p.wire), &format!("${{{}}}", p.ts_ident));
                }
                RoomIr {
                    name: name.clone(),
                    rust_fn: rust_ident(name),
                    ts_fn: name.to_lower_camel_case(),
                    pattern: room.pattern.clone(),
                    pattern_literal: format!("{:?}", room.pattern),
                    params,
                    rust_format: format!("{rust_format:?}"),
                    ts_template,
                    max_members: room.max_members,
                    history: room.history.map(|h| HistoryIr {
                        size: h.size,
                        ttl_seconds: h.ttl_seconds,
                    }),
                    doc: doc_lines(room.description.as_deref()),
                }
            })
            .collect();
        let client_events = ns
            .client_events
            .iter()
            .zip(&draft.client)
            .map(|((name, ev), (_, p, a))| {
                let payload_type = resolve(p);
                let schema = validation_schema(
                    valid.schemas.get(
                        Pointer::root()
                            .join("namespaces")
                            .join(path)
                            .join("clientEvents")
                            .join(name)
                            .join("payload")
                            .as_str(),
                    ),
                    &valid.schemas,
                );
                ClientEventIr {
                    wire_name: name.clone(),
                    rust_method: rust_ident(name),
                    const_name: name.to_shouty_snake_case(),
                    ts_method: name.to_lower_camel_case(),
                    ts_client_method: ts_client_method(name, ns.client_events.keys()),
                    pascal: name.to_pascal_case(),
                    ack_type: a.as_ref().map(resolve),
                    auth_required: auth_required(ev.auth.unwrap_or(ns.auth)),
                    rate_limit: ev.rate_limit.map(|r| {
                        let (scope_variant, scope_wire, scope_doc) =
                            match r.per.unwrap_or(RateScope::User) {
                                RateScope::User => ("User", "user", "user"),
                                RateScope::Connection => ("Connection", "connection", "connection"),
                                RateScope::Ip => ("Ip", "ip", "IP address"),
                            };
                        RateLimitIr {
                            max: r.max,
                            window_ms: r.window_ms,
                            scope_variant,
                            scope_wire,
                            scope_doc,
                        }
                    }),
                    max_payload_bytes: ev.max_payload_bytes,
                    idempotent: ev.ack.is_some() && ev.idempotent.unwrap_or(true),
                    doc: doc_lines(ev.description.as_deref()),
                    schema_literal: format!("{schema:?}"),
                    validation_schema: schema,
                    payload_type,
                }
            })
            .collect();
        let server_events = ns
            .server_events
            .iter()
            .zip(&draft.server)
            .map(|((name, ev), (_, p))| ServerEventIr {
                wire_name: name.clone(),
                rust_method: rust_ident(name),
                const_name: name.to_shouty_snake_case(),
                ts_method: name.to_lower_camel_case(),
                pascal: name.to_pascal_case(),
                payload_type: resolve(p),
                doc: doc_lines(ev.description.as_deref()),
            })
            .collect();
        namespaces.push(NamespaceIr {
            path: path.clone(),
            ts_export: module.to_lower_camel_case(),
            module,
            pascal,
            doc: doc_lines(ns.description.as_deref()),
            auth_required: auth_required(ns.auth),
            rooms,
            client_events,
            server_events,
        });
    }

    if !sink.is_clean() {
        return Err(sink.diagnostics);
    }
    Ok(ContractIr {
        name: contract.contract.clone(),
        version: contract.version.clone(),
        doc: doc_lines(contract.description.as_deref()),
        license: contract.license.clone(),
        contact: contract.contact.clone(),
        source_name: file
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        crate_name: crate_name(&contract.contract),
        types,
        errors,
        namespaces,
    })
}

/// The self-contained JSON Schema that generated servers validate an
/// event's payload with: the payload's typed node in its normalised form
/// ([`SchemaNode::validation_schema`]), with the definitions it reaches,
/// directly or through each other, under `definitions`. No node (an event
/// without a payload): any value.
fn validation_schema(node: Option<&SchemaNode>, nodes: &BTreeMap<String, SchemaNode>) -> String {
    let mut reached: BTreeMap<String, Value> = BTreeMap::new();
    let mut todo = Vec::new();
    if let Some(node) = node {
        node.refs(&mut todo);
    }
    while let Some(name) = todo.pop() {
        if reached.contains_key(&name) {
            continue;
        }
        let at = Pointer::root().join("definitions").join(&name).to_string();
        // Validation typed every definition of a valid contract.
        if let Some(def_node) = nodes.get(&at) {
            def_node.refs(&mut todo);
            reached.insert(name, def_node.validation_schema());
        }
    }
    // A payload that is a `$ref` stays one, beside `definitions`: the
    // runtime's validator and JSON Schema tools resolve `#/definitions/…`
    // in the document (wrapped in `allOf`, it went unchecked by the
    // runtime's validator, which did not know `allOf`).
    let mut root = match node.map(SchemaNode::validation_schema) {
        Some(Value::Object(o)) => o,
        _ => Map::new(),
    };
    if !reached.is_empty() {
        root.insert(
            "definitions".to_owned(),
            Value::Object(reached.into_iter().collect()),
        );
    }
    Value::Object(root).to_string()
}

/// The package name of the crate generated for contract `name`.
pub fn crate_name(name: &str) -> String {
    format!("{}-contract", name.replace('_', "-"))
}

#[cfg(test)]
mod tests {
    use super::ts_client_method;

    #[test]
    fn client_methods_do_not_shadow_client_members() {
        let events: Vec<String> = ["send_message", "on", "on_event", "socket"]
            .into_iter()
            .map(String::from)
            .collect();
        let method = |name: &str| ts_client_method(name, events.iter());
        assert_eq!(method("send_message"), "sendMessage");
        // `on` is the client's listener method; `onEvent` is another event's.
        assert_eq!(method("on"), "onEvent_");
        assert_eq!(method("on_event"), "onEvent");
        assert_eq!(method("socket"), "socketEvent");
    }
}
