//! The contract format (v1) as Rust types.
//!
//! These types are the single description of the format: `evcontract schema`
//! derives the format's JSON Schema from them with schemars (committed as
//! `schemas/contract.schema.json` so editors autocomplete contracts), and a
//! contract that passed [`crate::validate`] is deserialized into them.
//!
//! Payload schemas stay [`serde_json::Value`]s here: their supported subset is
//! checked by the validator, which also builds their typed form
//! ([`crate::schema_ir::SchemaNode`]).

use indexmap::IndexMap;
use schemars::JsonSchema;
use schemars::r#gen::SchemaGenerator;
use schemars::schema::{Schema, SchemaObject};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A contract: the single source of truth for one real-time API.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "evcontract contract (v1)")]
pub struct Contract {
    /// Path or URL of this format's JSON Schema, for editors.
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Name of the contract: lowercase letters, digits, `_` and `-`, starting
    /// with a letter. Names the generated Rust crate (`<contract>-contract`)
    /// and the output folders.
    pub contract: String,
    /// Version of the contract (semver).
    pub version: String,
    /// What this API is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The API's license, as an SPDX identifier (`MIT`, `Apache-2.0`) or a
    /// name; given in the AsyncAPI document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// Who answers for the API; given in the AsyncAPI document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Contact>,
    /// Shared payload types, referenced as `{"$ref": "#/definitions/Name"}`.
    /// Keys are PascalCase type names.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    #[schemars(with = "BTreeMap<String, PayloadSchema>")]
    pub definitions: IndexMap<String, Value>,
    /// Error codes of this contract, beside the built-in ones. Keys are
    /// SCREAMING_SNAKE_CASE and may not redefine a built-in code.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    #[schemars(with = "BTreeMap<String, ErrorDef>")]
    pub errors: IndexMap<String, ErrorDef>,
    /// Socket.IO namespaces, keyed by path (`/chat`, or `/`).
    #[schemars(with = "BTreeMap<String, Namespace>")]
    pub namespaces: IndexMap<String, Namespace>,
}

/// Who answers for an API: at least one of the three.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Contact {
    /// A person or team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A web page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// An email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// A contract-specific error code.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ErrorDef {
    /// When the server answers with this code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Whether a namespace or event needs an authenticated connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Anonymous connections (or events) are allowed.
    #[default]
    Optional,
    /// A valid token is needed.
    Required,
}

/// One Socket.IO namespace.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Namespace {
    /// What the namespace is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `optional` (anonymous connections allowed, the default) or `required`
    /// (the connection itself is refused without a valid token).
    #[serde(default)]
    pub auth: AuthMode,
    /// Named room patterns, such as `thread` = `thread:{threadId}`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    #[schemars(with = "BTreeMap<String, Room>")]
    pub rooms: IndexMap<String, Room>,
    /// Events the client sends to the server, keyed by snake_case event name.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    #[schemars(with = "BTreeMap<String, ClientEvent>")]
    pub client_events: IndexMap<String, ClientEvent>,
    /// Events the server sends to the client, keyed by snake_case event name.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    #[schemars(with = "BTreeMap<String, ServerEvent>")]
    pub server_events: IndexMap<String, ServerEvent>,
}

/// A room pattern.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Room {
    /// The room name with `{param}` placeholders, such as `thread:{threadId}`.
    pub pattern: String,
    /// What the room groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Most sockets one room of this pattern may hold on one server node; a
    /// join past it is refused with `ROOM_FULL`. No cap when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_members: Option<u64>,
    /// Keep the events sent to a room of this pattern, so that a client
    /// that lost its connection gets what it missed when it comes back
    /// (see the README's "Delivery guarantees").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<History>,
}

/// How much of a room's events is kept for clients that reconnect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct History {
    /// Events kept per room (the oldest go first), 1 to 100,000.
    #[schemars(range(min = 1, max = 100_000))]
    pub size: u32,
    /// How long an event is kept, in seconds (1 to 86,400).
    #[schemars(range(min = 1, max = 86_400))]
    pub ttl_seconds: u32,
}

/// An event from client to server.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClientEvent {
    /// What the event does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the payload.
    #[schemars(with = "PayloadSchema")]
    pub payload: Value,
    /// JSON Schema of the ack's data; absent: the event has no typed response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<PayloadSchema>")]
    pub ack: Option<Value>,
    /// `required` or `optional`; default: the namespace's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthMode>,
    /// Rate limit, enforced before the handler runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Largest payload accepted, in bytes of JSON text, checked before the
    /// payload is parsed (`PAYLOAD_TOO_LARGE`); default: the server's
    /// message size limit only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_payload_bytes: Option<u64>,
    /// Whether a retried send runs once (acked events only; default
    /// `true`): generated clients send it with an idempotency key and
    /// retry it after a reconnection, and the server runs the handler at
    /// most once per key, answering a retry with the first answer. `false`
    /// for events whose retry should run again (a read of the latest
    /// state).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotent: Option<bool>,
}

/// An event from server to client.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServerEvent {
    /// What the event announces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the payload.
    #[schemars(with = "PayloadSchema")]
    pub payload: Value,
}

/// At most `max` events within `windowMs` milliseconds, per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimit {
    /// Events allowed per window (at least 1).
    #[schemars(range(min = 1))]
    pub max: u32,
    /// Window length in milliseconds (at least 1).
    #[schemars(range(min = 1))]
    pub window_ms: u64,
    /// Who the limit counts: `user` (default: every connection of one
    /// authenticated user together, and an anonymous connection by its IP
    /// address, so that reconnecting never resets it), `connection`, or `ip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per: Option<RateScope>,
}

/// Who a rate limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RateScope {
    /// All connections of one user (anonymous ones: of one IP address).
    User,
    /// Each connection on its own.
    Connection,
    /// All connections from one IP address.
    Ip,
}

/// The supported subset of JSON Schema draft-07, for payloads.
///
/// Only used to describe the format (`evcontract schema`); the validator is
/// the authority on what is accepted.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(rename = "PayloadSchema")]
pub struct PayloadSchema {
    /// A shared type: `#/definitions/Name`.
    #[serde(rename = "$ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// One type, or one type and `"null"` (nullable).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "type_schema")]
    pub ty: Option<Value>,
    /// Becomes `///` in Rust and TSDoc in TypeScript.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A short title (documentation only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Default value (documentation and Rust `Default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// Example values (documentation only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub examples: Option<Vec<Value>>,
    /// Object properties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<BTreeMap<String, PayloadSchema>>,
    /// Required property names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<Vec<String>>,
    /// `false`, or a schema (with no `properties`: a map).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "additional_properties_schema")]
    pub additional_properties: Option<Value>,
    /// Array element schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Box<PayloadSchema>>,
    /// Minimum array length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_items: Option<u64>,
    /// Maximum array length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items: Option<u64>,
    /// Allowed string values.
    #[serde(rename = "enum", default, skip_serializing_if = "Option::is_none")]
    pub enumeration: Option<Vec<String>>,
    /// The only allowed value (string, integer or boolean).
    #[serde(rename = "const", default, skip_serializing_if = "Option::is_none")]
    pub constant: Option<Value>,
    /// Minimum string length (characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    /// Maximum string length (characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    /// ECMAScript regular expression a string must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// `date-time`, `date`, `uuid`, `email` (strings); `int32`, `int64`,
    /// `uint32`, `uint64` (integers); `float`, `double` (numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Inclusive minimum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<f64>,
    /// Inclusive maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<f64>,
    /// Objects told apart by a required `const` string property (a tagged union).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_of: Option<Vec<PayloadSchema>>,
    /// Only for nullable types: `[<schema>, {"type": "null"}]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub any_of: Option<Vec<PayloadSchema>>,
}

fn type_schema(_: &mut SchemaGenerator) -> Schema {
    schema_from_json(serde_json::json!({
        "anyOf": [
            { "$ref": "#/definitions/SimpleType" },
            { "type": "array", "items": { "$ref": "#/definitions/SimpleType" }, "minItems": 1, "maxItems": 2 }
        ]
    }))
}

fn additional_properties_schema(_: &mut SchemaGenerator) -> Schema {
    schema_from_json(serde_json::json!({
        "anyOf": [ { "type": "boolean" }, { "$ref": "#/definitions/PayloadSchema" } ]
    }))
}

fn schema_from_json(value: Value) -> Schema {
    serde_json::from_value(value).unwrap_or_else(|_| Schema::Object(SchemaObject::default()))
}

/// The format's JSON Schema, as `evcontract schema` prints it.
pub fn contract_json_schema() -> Value {
    let settings = schemars::r#gen::SchemaSettings::draft07();
    let mut root = settings.into_generator().into_root_schema_for::<Contract>();
    root.definitions.insert(
        "SimpleType".to_owned(),
        schema_from_json(serde_json::json!({
            "type": "string",
            "enum": ["object", "array", "string", "integer", "number", "boolean", "null"]
        })),
    );
    serde_json::to_value(&root).unwrap_or(Value::Null)
}
