//! Validation of a contract document: every problem is collected (with its
//! JSON pointer) before anything is generated.
//!
//! The walk works on the raw [`serde_json::Value`] rather than on serde's
//! derive, because serde stops at the first error and a contract author wants
//! to see them all. Payload schemas are restricted to the subset that both
//! typify and the TypeScript emitter handle; anything else is refused here,
//! with a message, before typify (which panics on some schemas) sees it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use heck::{ToLowerCamelCase, ToPascalCase, ToSnakeCase};
use serde_json::{Map, Value};

use crate::contract::Contract;
use crate::diag::{Diagnostic, Pointer, Sink};
use crate::schema_ir::{Property, SchemaKind, SchemaNode};
use crate::source_map::SourceMap;
use evcontract_wire::json_kind as type_name;

/// Event names that Socket.IO reserves (or that evcontract uses itself).
pub const RESERVED_EVENTS: [&str; 7] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
    "error",
];

/// Type names the generated code uses itself, so definitions may not take them.
pub const RESERVED_TYPE_NAMES: [&str; 24] = [
    "AckError",
    "AckTimeoutError",
    "AckDisconnectedError",
    "ConnectOptions",
    "CallOptions",
    "Token",
    "TokenSource",
    "ERROR_CODES",
    "Client",
    "AckResponse",
    "AckSuccess",
    "AckFailure",
    "ClientEvents",
    "ClientEventAcks",
    "ClientToServerEvents",
    "ConversionError",
    "ErrorCode",
    "ErrorEvent",
    "EventError",
    "ServerEvents",
    "ServerToClientEvents",
    "Socket",
    "Emitter",
    "Handler",
];

/// Module (and TypeScript file) names the generated code uses itself.
pub const RESERVED_MODULES: [&str; 5] = ["types", "errors", "index", "react", "lib"];

/// Keywords accepted in payload schemas.
const SCHEMA_KEYWORDS: [&str; 22] = [
    "$ref",
    "type",
    "description",
    "default",
    "examples",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minItems",
    "maxItems",
    "enum",
    "const",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "oneOf",
    "anyOf",
    "title",
];

const STRING_FORMATS: [&str; 4] = ["date-time", "date", "uuid", "email"];
const INTEGER_FORMATS: [&str; 4] = ["int32", "int64", "uint32", "uint64"];
const NUMBER_FORMATS: [&str; 2] = ["float", "double"];

/// A contract that passed validation.
#[derive(Debug, Clone)]
pub struct ValidContract {
    /// The typed contract.
    pub contract: Contract,
    /// The typed form of every schema the contract gives (each definition,
    /// event payload and ack), by the JSON pointer of its place: built by
    /// the validation pass that checked it, not read again.
    pub schemas: BTreeMap<String, SchemaNode>,
}

/// Parses and validates one contract. `file` is only used in messages (and
/// to tell YAML from JSON); `map` is the text's [`SourceMap`], whose repeated
/// keys are errors here.
pub fn validate(
    file: &Path,
    text: &str,
    map: &SourceMap,
) -> Result<ValidContract, Vec<Diagnostic>> {
    let mut sink = Sink::new(file);
    // A syntax error: the format, where, and the parser's message.
    let parsed: Result<Value, (&str, usize, usize, String)> = if is_yaml(file) {
        serde_norway::from_str(text).map_err(|err| {
            let (line, col) = err.location().map_or((1, 1), |l| (l.line(), l.column()));
            ("YAML", line, col, err.to_string())
        })
    } else {
        serde_json::from_str(text)
            .map_err(|err| ("JSON", err.line(), err.column(), err.to_string()))
    };
    let value = match parsed {
        Ok(v) => v,
        Err((format, line, col, msg)) => {
            // Both parsers end their message with " at line L column C"; keep
            // the location in our own format instead.
            let msg = msg
                .rsplit_once(" at line ")
                .map_or(msg.as_str(), |(m, _)| m);
            sink.error_at_line(line, col, format!("invalid {format}: {msg}"));
            return Err(sink.diagnostics);
        }
    };
    // Both parsers keep the last of two equal keys; a contract that gives
    // one twice (two `send_message` events, a second `rateLimit`) would lose
    // the first without a word.
    for dup in map.duplicates() {
        let (l1, c1) = dup.first;
        let (l2, c2) = dup.again;
        sink.error_raw(
            &dup.pointer,
            format!(
                "`{}` is given twice in the same object, at {l1}:{c1} and again at {l2}:{c2}; \
                 keep one (the parser would silently use the last)",
                dup.key
            ),
        );
    }
    // `$ref`s anywhere are checked against the definitions' names.
    let no_definitions = Map::new();
    let definitions = value
        .get("definitions")
        .and_then(Value::as_object)
        .unwrap_or(&no_definitions);
    let mut walker = Walker {
        sink,
        definitions,
        depth: 0,
        roots: BTreeMap::new(),
    };
    walker.contract(&value);
    let (mut sink, schemas) = (walker.sink, walker.roots);
    if !sink.is_clean() {
        return Err(sink.diagnostics);
    }
    // The walk accepted the document, so the derive should too; if the two
    // ever disagree, still report it with a path rather than panic.
    match serde_path_to_error::deserialize::<_, Contract>(value) {
        Ok(contract) => Ok(ValidContract { contract, schemas }),
        Err(err) => {
            let mut at = Pointer::root();
            for seg in err.path().iter() {
                at = at.join(seg);
            }
            sink.error(&at, err.into_inner().to_string());
            Err(sink.diagnostics)
        }
    }
}

pub use crate::source_map::is_yaml;

struct Walker<'a> {
    sink: Sink,
    /// Raw definitions by name, for `$ref` checks and union variants
    /// (borrowed: copying them per schema made large contracts quadratic).
    definitions: &'a Map<String, Value>,
    /// How many schemas enclose the one being walked (see [`MAX_SCHEMA_DEPTH`]).
    depth: usize,
    /// The typed form of each schema walked from the contract itself (not
    /// from another schema), by pointer.
    roots: BTreeMap<String, SchemaNode>,
}

/// How deeply payload schemas may nest (objects in objects, items of arrays,
/// union variants). typify and the generated (de)serializers recurse once per
/// level; a limit keeps a contract from exhausting the generator's stack,
/// and no real payload comes close to it.
pub const MAX_SCHEMA_DEPTH: usize = 32;

/// Words of `letter` characters (and digits) joined by single `_`, starting
/// with a `letter`: snake_case for lowercase, SCREAMING_SNAKE for uppercase.
fn is_underscored(s: &str, letter: fn(&char) -> bool) -> bool {
    s.chars().next().is_some_and(|c| letter(&c))
        && s.split('_')
            .all(|p| !p.is_empty() && p.chars().all(|c| letter(&c) || c.is_ascii_digit()))
}

fn is_snake_ident(s: &str) -> bool {
    is_underscored(s, char::is_ascii_lowercase)
}

fn is_pascal_ident(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && s.chars().all(|c| c.is_ascii_alphanumeric())
}

fn is_screaming_snake(s: &str) -> bool {
    is_underscored(s, char::is_ascii_uppercase)
}

impl Walker<'_> {
    fn object<'v>(
        &mut self,
        v: &'v Value,
        at: &Pointer,
        what: &str,
    ) -> Option<&'v Map<String, Value>> {
        match v {
            Value::Object(o) => Some(o),
            other => {
                self.sink.error(
                    at,
                    format!("{what} must be an object, found {}", type_name(other)),
                );
                None
            }
        }
    }

    fn keys(
        &mut self,
        o: &Map<String, Value>,
        at: &Pointer,
        what: &str,
        allowed: &[&str],
        required: &[&str],
    ) {
        for key in o.keys() {
            if !allowed.contains(&key.as_str()) {
                self.sink.error(
                    &at.join(key),
                    format!(
                        "unknown key `{key}` in {what} (expected one of: {})",
                        allowed.join(", ")
                    ),
                );
            }
        }
        for key in required {
            if !o.contains_key(*key) {
                self.sink
                    .error(at, format!("{what} is missing the required key `{key}`"));
            }
        }
    }

    fn string<'v>(
        &mut self,
        o: &'v Map<String, Value>,
        key: &str,
        at: &Pointer,
    ) -> Option<&'v str> {
        match o.get(key)? {
            Value::String(s) => Some(s),
            other => {
                self.sink.error(
                    &at.join(key),
                    format!("`{key}` must be a string, found {}", type_name(other)),
                );
                None
            }
        }
    }

    fn contract(&mut self, v: &Value) {
        let at = Pointer::root();
        let Some(o) = self.object(v, &at, "the contract") else {
            return;
        };
        self.keys(
            o,
            &at,
            "the contract",
            &[
                "$schema",
                "contract",
                "version",
                "description",
                "license",
                "contact",
                "definitions",
                "errors",
                "namespaces",
            ],
            &["contract", "version", "namespaces"],
        );
        self.string(o, "$schema", &at);
        self.string(o, "description", &at);
        if self
            .string(o, "license", &at)
            .is_some_and(|l| l.trim().is_empty())
        {
            self.sink.error(
                &at.join("license"),
                "`license` must not be empty".to_owned(),
            );
        }
        if let Some(contact) = o.get("contact") {
            let contact_at = at.join("contact");
            if let Some(c) = self.object(contact, &contact_at, "`contact`") {
                self.keys(c, &contact_at, "`contact`", &["name", "url", "email"], &[]);
                for key in ["name", "url", "email"] {
                    self.string(c, key, &contact_at);
                }
                if c.is_empty() {
                    self.sink.error(
                        &contact_at,
                        "`contact` needs at least one of `name`, `url` and `email`".to_owned(),
                    );
                }
            }
        }
        if let Some(name) = self.string(o, "contract", &at) {
            let ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
            if !ok {
                self.sink.error(
                    &at.join("contract"),
                    format!("contract name `{name}` must start with a lowercase letter and use only lowercase letters, digits, `_` and `-`"),
                );
            }
        }
        if let Some(version) = self.string(o, "version", &at)
            && let Err(err) = semver::Version::parse(version)
        {
            self.sink.error(
                &at.join("version"),
                format!("version `{version}` is not semver (like 1.0.0): {err}"),
            );
        }

        // Definitions first: `$ref`s anywhere are checked against their names.
        let defs_at = at.join("definitions");
        if let Some(defs) = o.get("definitions")
            && let Some(defs) = self.object(defs, &defs_at, "`definitions`")
        {
            // Per-namespace names the generated code declares beside the
            // definitions (`ChatSocket`, `ChatClient`).
            let per_namespace: Vec<String> = o
                .get("namespaces")
                .and_then(Value::as_object)
                .into_iter()
                .flat_map(|nss| nss.keys())
                .filter_map(|path| namespace_module(path))
                .flat_map(|m| {
                    let p = m.to_pascal_case();
                    [format!("{p}Socket"), format!("{p}Client")]
                })
                .collect();
            for (name, schema) in defs {
                let def_at = defs_at.join(name);
                if !is_pascal_ident(name) {
                    self.sink.error(
                            &def_at,
                            format!("definition name `{name}` must be a PascalCase identifier (like `ChatMessage`)"),
                        );
                } else if RESERVED_TYPE_NAMES.contains(&name.as_str())
                    || per_namespace.contains(name)
                {
                    self.sink.error(
                            &def_at,
                            format!("definition name `{name}` is reserved by the generated code; choose another"),
                        );
                }
                self.schema(schema, &def_at);
            }
            self.alias_cycles(defs, &defs_at);
        }

        let errors_at = at.join("errors");
        if let Some(errors) = o.get("errors")
            && let Some(errors) = self.object(errors, &errors_at, "`errors`")
        {
            for (code, def) in errors {
                let code_at = errors_at.join(code);
                if crate::BUILTIN_ERROR_CODES.contains(&code.as_str()) {
                    self.sink.error(
                        &code_at,
                        format!("error code `{code}` is built in and cannot be redefined"),
                    );
                } else if !is_screaming_snake(code) {
                    self.sink.error(
                            &code_at,
                            format!("error code `{code}` must be SCREAMING_SNAKE_CASE (like `THREAD_NOT_FOUND`)"),
                        );
                }
                if let Some(d) = self.object(def, &code_at, "an error definition") {
                    self.keys(d, &code_at, "an error definition", &["description"], &[]);
                    self.string(d, "description", &code_at);
                }
            }
        }

        let ns_at = at.join("namespaces");
        if let Some(nss) = o.get("namespaces")
            && let Some(nss) = self.object(nss, &ns_at, "`namespaces`")
        {
            if nss.is_empty() {
                self.sink
                    .error(&ns_at, "a contract needs at least one namespace");
            }
            let mut modules: BTreeMap<String, String> = BTreeMap::new();
            for (path, ns) in nss {
                let this_at = ns_at.join(path);
                match namespace_module(path) {
                        Some(module) if RESERVED_MODULES.contains(&module.as_str()) => self.sink.error(
                            &this_at,
                            format!("namespace `{path}` would become the module `{module}`, which the generated code uses itself"),
                        ),
                        Some(module) => {
                            if let Some(other) = modules.insert(module.clone(), path.clone()) {
                                self.sink.error(
                                    &this_at,
                                    format!("namespace `{path}` collides with `{other}`: both become the module `{module}`"),
                                );
                            }
                        }
                        None => self.sink.error(
                            &this_at,
                            format!("namespace path `{path}` must be `/` or `/name` (a letter, then letters, digits, `_` or `-`)"),
                        ),
                    }
                self.namespace(ns, &this_at);
            }
        }
    }

    fn auth(&mut self, o: &Map<String, Value>, at: &Pointer) {
        if let Some(v) = o.get("auth")
            && !matches!(v.as_str(), Some("optional" | "required"))
        {
            self.sink.error(
                &at.join("auth"),
                format!("`auth` must be \"optional\" or \"required\", found {v}"),
            );
        }
    }

    fn namespace(&mut self, v: &Value, at: &Pointer) {
        let Some(o) = self.object(v, at, "a namespace") else {
            return;
        };
        self.keys(
            o,
            at,
            "a namespace",
            &[
                "description",
                "auth",
                "rooms",
                "clientEvents",
                "serverEvents",
            ],
            &[],
        );
        self.string(o, "description", at);
        self.auth(o, at);
        if let Some(rooms) = o.get("rooms") {
            let rooms_at = at.join("rooms");
            if let Some(rooms) = self.object(rooms, &rooms_at, "`rooms`") {
                for (name, room) in rooms {
                    self.room(name, room, &rooms_at.join(name));
                }
            }
        }
        for (key, client) in [("clientEvents", true), ("serverEvents", false)] {
            let Some(events) = o.get(key) else { continue };
            let events_at = at.join(key);
            let Some(events) = self.object(events, &events_at, &format!("`{key}`")) else {
                continue;
            };
            let mut seen: BTreeMap<String, String> = BTreeMap::new();
            for (name, event) in events {
                let ev_at = events_at.join(name);
                if RESERVED_EVENTS.contains(&name.as_str()) {
                    self.sink.error(
                        &ev_at,
                        format!("event name `{name}` is reserved by Socket.IO or evcontract"),
                    );
                } else if !is_snake_ident(name) {
                    self.sink.error(
                        &ev_at,
                        format!("event name `{name}` must be a snake_case identifier (like `send_message`)"),
                    );
                } else {
                    // One report per event, naming the first form that collides.
                    let forms = [name.to_pascal_case(), name.to_lower_camel_case()];
                    if let Some((other, converted)) = forms
                        .iter()
                        .find_map(|f| seen.get(f).filter(|o| *o != name).map(|o| (o.clone(), f)))
                    {
                        self.sink.error(
                            &ev_at,
                            format!("event `{name}` collides with `{other}` after case conversion (both become `{converted}`)"),
                        );
                    }
                    for f in forms {
                        seen.entry(f).or_insert_with(|| name.clone());
                    }
                }
                self.event(event, &ev_at, client);
            }
        }
    }

    fn room(&mut self, name: &str, v: &Value, at: &Pointer) {
        if !is_snake_ident(name) {
            self.sink.error(
                at,
                format!("room name `{name}` must be a snake_case identifier"),
            );
        }
        let Some(o) = self.object(v, at, "a room") else {
            return;
        };
        self.keys(
            o,
            at,
            "a room",
            &["pattern", "description", "maxMembers", "history"],
            &["pattern"],
        );
        self.string(o, "description", at);
        if let Some(n) = o.get("maxMembers")
            && !matches!(n.as_u64(), Some(1..))
        {
            self.sink.error(
                &at.join("maxMembers"),
                format!("`maxMembers` must be a positive integer, found {n}"),
            );
        }
        if let Some(h) = o.get("history") {
            let h_at = at.join("history");
            if let Some(h) = self.object(h, &h_at, "`history`") {
                self.keys(
                    h,
                    &h_at,
                    "`history`",
                    &["size", "ttlSeconds"],
                    &["size", "ttlSeconds"],
                );
                for (key, max) in [("size", 100_000u64), ("ttlSeconds", 86_400)] {
                    if let Some(n) = h.get(key)
                        && !n.as_u64().is_some_and(|n| (1..=max).contains(&n))
                    {
                        self.sink.error(
                            &h_at.join(key),
                            format!("`{key}` must be an integer from 1 to {max}, found {n}"),
                        );
                    }
                }
            }
        }
        let Some(pattern) = self.string(o, "pattern", at) else {
            return;
        };
        let p_at = at.join("pattern");
        match room_params(pattern) {
            Err(why) => self
                .sink
                .error(&p_at, format!("room pattern `{pattern}` is malformed: {why}")),
            Ok(params) if params.is_empty() => self.sink.error(
                &p_at,
                format!("room pattern `{pattern}` has no `{{param}}`; a fixed room name needs no pattern"),
            ),
            Ok(params) => {
                let mut seen = BTreeSet::new();
                for p in &params {
                    if !seen.insert(p.to_snake_case()) {
                        self.sink.error(
                            &p_at,
                            format!("room pattern `{pattern}` repeats the parameter `{p}`"),
                        );
                    }
                }
                if pattern.starts_with("user:") {
                    self.sink.error(
                        &p_at,
                        format!("room pattern `{pattern}`: rooms starting with `user:` are reserved for per-user rooms"),
                    );
                }
            }
        }
    }

    fn event(&mut self, v: &Value, at: &Pointer, client: bool) {
        let what = if client {
            "a client event"
        } else {
            "a server event"
        };
        let Some(o) = self.object(v, at, what) else {
            return;
        };
        if client {
            self.keys(
                o,
                at,
                what,
                &[
                    "description",
                    "payload",
                    "ack",
                    "auth",
                    "rateLimit",
                    "maxPayloadBytes",
                    "idempotent",
                ],
                &["payload"],
            );
            match (o.get("idempotent"), o.get("ack")) {
                (Some(Value::Bool(true)), None) => self.sink.error(
                    &at.join("idempotent"),
                    "`idempotent` applies to events with an `ack` (a retry is answered with the first answer)".to_owned(),
                ),
                (Some(Value::Bool(_)) | None, _) => {}
                (Some(other), _) => self.sink.error(
                    &at.join("idempotent"),
                    format!("`idempotent` must be true or false, found {other}"),
                ),
            }
            if let Some(n) = o.get("maxPayloadBytes")
                && !matches!(n.as_u64(), Some(1..))
            {
                self.sink.error(
                    &at.join("maxPayloadBytes"),
                    format!("`maxPayloadBytes` must be a positive integer, found {n}"),
                );
            }
            self.auth(o, at);
            if let Some(ack) = o.get("ack") {
                self.schema(ack, &at.join("ack"));
            }
            if let Some(rl) = o.get("rateLimit") {
                let rl_at = at.join("rateLimit");
                if let Some(r) = self.object(rl, &rl_at, "`rateLimit`") {
                    self.keys(
                        r,
                        &rl_at,
                        "`rateLimit`",
                        &["max", "windowMs", "per"],
                        &["max", "windowMs"],
                    );
                    if let Some(per) = r.get("per")
                        && !matches!(per.as_str(), Some("user" | "connection" | "ip"))
                    {
                        self.sink.error(
                            &rl_at.join("per"),
                            format!(
                                "`per` must be \"user\", \"connection\" or \"ip\", found {per}"
                            ),
                        );
                    }
                    for key in ["max", "windowMs"] {
                        let Some(n) = r.get(key) else { continue };
                        let limit = if key == "max" {
                            u64::from(u32::MAX)
                        } else {
                            u64::MAX
                        };
                        match n.as_u64() {
                            Some(0) => self.sink.error(
                                &rl_at.join(key),
                                format!("`{key}` must be at least 1; a rate limit of zero would refuse every event"),
                            ),
                            Some(n) if n <= limit => {}
                            _ => self.sink.error(
                                &rl_at.join(key),
                                format!("`{key}` must be a positive integer, found {n}"),
                            ),
                        }
                    }
                }
            }
        } else {
            self.keys(o, at, what, &["description", "payload"], &["payload"]);
        }
        self.string(o, "description", at);
        if let Some(payload) = o.get("payload") {
            self.schema(payload, &at.join("payload"));
        }
    }

    /// Validates one payload schema and returns its typed form (None when it
    /// has errors, which are recorded).
    fn schema(&mut self, v: &Value, at: &Pointer) -> Option<SchemaNode> {
        if self.depth >= MAX_SCHEMA_DEPTH {
            self.sink.error(
                at,
                format!("schema nested more than {MAX_SCHEMA_DEPTH} levels deep; move inner parts into `definitions` and refer to them with `$ref`"),
            );
            return None;
        }
        self.depth += 1;
        let node = self.schema_level(v, at);
        self.depth -= 1;
        if self.depth == 0
            && let Some(node) = &node
        {
            self.roots.insert(at.to_string(), node.clone());
        }
        node
    }

    /// [`Self::schema`] for one level.
    fn schema_level(&mut self, v: &Value, at: &Pointer) -> Option<SchemaNode> {
        let o = match v {
            Value::Bool(b) => {
                // `true` means "any value" in JSON Schema; one spelling keeps
                // the format's own schema (for editors) simple.
                let hint = if *b {
                    "use `{}` for any value"
                } else {
                    "a payload that can never be valid is not useful"
                };
                self.sink
                    .error(at, format!("a schema must be an object ({hint})"));
                return None;
            }
            other => self.object(other, at, "a schema")?,
        };
        let errors_before = self.sink.diagnostics.len();
        for key in o.keys() {
            if SCHEMA_KEYWORDS.contains(&key.as_str()) {
                continue;
            }
            let why = match key.as_str() {
                "if" | "then" | "else" => "conditional schemas have no Rust or TypeScript type",
                "not" => "negated schemas have no Rust or TypeScript type",
                "allOf" => "combine types by listing their properties (or use `$ref`)",
                "patternProperties" => "use `additionalProperties` with a schema for maps",
                "definitions" | "$defs" => {
                    "put shared types in the contract's top-level `definitions`"
                }
                "$id" | "$schema" => "payload schemas live inside the contract",
                "dependencies" | "dependentRequired" | "dependentSchemas" | "propertyNames" => {
                    "property dependencies have no Rust or TypeScript type"
                }
                _ => "it is not part of the supported JSON Schema subset",
            };
            self.sink.error(
                &at.join(key),
                format!("unsupported JSON Schema keyword `{key}`: {why}"),
            );
        }
        let description = self.string(o, "description", at).map(str::to_owned);
        let title = self.string(o, "title", at).map(str::to_owned);
        let node = |kind| SchemaNode {
            kind,
            description: description.clone(),
            title: title.clone(),
            default: o.get("default").cloned(),
            examples: o.get("examples").cloned(),
            pointer: at.to_string(),
        };

        if let Some(r) = o.get("$ref") {
            for key in o.keys() {
                if !matches!(key.as_str(), "$ref" | "description") {
                    self.sink.error(
                        &at.join(key),
                        format!("`{key}` next to `$ref` is ignored by JSON Schema draft-07; move it into the definition"),
                    );
                }
            }
            let name = self.reference(r, &at.join("$ref"))?;
            return (self.sink.diagnostics.len() == errors_before)
                .then(|| node(SchemaKind::Ref(name)));
        }
        if let Some(variants) = o.get("oneOf") {
            for key in o.keys() {
                if !matches!(key.as_str(), "oneOf" | "description" | "type" | "title") {
                    self.sink.error(
                        &at.join(key),
                        format!("`{key}` cannot be combined with `oneOf`"),
                    );
                }
            }
            if o.get("type").is_some_and(|t| t != "object") {
                self.sink.error(
                    &at.join("type"),
                    "a `oneOf` must be of `\"type\": \"object\"`",
                );
            }
            let kind = self.tagged_union(variants, &at.join("oneOf"))?;
            return (self.sink.diagnostics.len() == errors_before).then(|| node(kind));
        }
        if let Some(branches) = o.get("anyOf") {
            for key in o.keys() {
                if !matches!(key.as_str(), "anyOf" | "description" | "title") {
                    self.sink.error(
                        &at.join(key),
                        format!("`{key}` cannot be combined with `anyOf`"),
                    );
                }
            }
            let inner = self.nullable(branches, &at.join("anyOf"))?;
            return (self.sink.diagnostics.len() == errors_before)
                .then(|| node(SchemaKind::Nullable(Box::new(inner))));
        }

        // `type`: one type, or one type and "null".
        let (ty, nullable) = match o.get("type") {
            None => (None, false),
            Some(Value::String(s)) => (Some(s.as_str()), false),
            Some(Value::Array(types)) => {
                let names: Vec<&str> = types.iter().filter_map(Value::as_str).collect();
                let non_null: Vec<&str> = names.iter().copied().filter(|t| *t != "null").collect();
                if names.len() != types.len() || non_null.len() != 1 || names.len() > 2 {
                    self.sink.error(
                        &at.join("type"),
                        "a `type` array must be one type and \"null\" (like [\"string\", \"null\"])",
                    );
                    return None;
                }
                (Some(non_null[0]), names.len() == 2)
            }
            Some(other) => {
                self.sink.error(
                    &at.join("type"),
                    format!(
                        "`type` must be a string or an array, found {}",
                        type_name(other)
                    ),
                );
                return None;
            }
        };
        if let Some(t) = ty
            && ![
                "object", "array", "string", "integer", "number", "boolean", "null",
            ]
            .contains(&t)
        {
            self.sink
                .error(&at.join("type"), format!("unknown type `{t}`"));
            return None;
        }
        // Which type each keyword applies to.
        let applies: [(&str, &[&str]); 13] = [
            ("properties", &["object"]),
            ("required", &["object"]),
            ("additionalProperties", &["object"]),
            ("items", &["array"]),
            ("minItems", &["array"]),
            ("maxItems", &["array"]),
            ("minLength", &["string"]),
            ("maxLength", &["string"]),
            ("pattern", &["string"]),
            ("format", &["string", "integer", "number"]),
            ("minimum", &["integer", "number"]),
            ("maximum", &["integer", "number"]),
            ("enum", &["string"]),
        ];
        for (key, types) in applies {
            if !o.contains_key(key) {
                continue;
            }
            match ty {
                Some(t) if types.contains(&t) => {}
                None if key == "enum" => {}
                _ => self.sink.error(
                    &at.join(key),
                    format!(
                        "`{key}` needs `\"type\": \"{}\"`{}",
                        types[0],
                        ty.map(|t| format!(", but the type is `{t}`"))
                            .unwrap_or_default()
                    ),
                ),
            }
        }
        self.lengths(o, at, "minLength", "maxLength");
        self.lengths(o, at, "minItems", "maxItems");
        for key in ["minimum", "maximum"] {
            if let Some(n) = o.get(key)
                && !n.is_number()
            {
                self.sink
                    .error(&at.join(key), format!("`{key}` must be a number"));
            }
        }
        if let (Some(min), Some(max)) = (
            o.get("minimum").and_then(Value::as_f64),
            o.get("maximum").and_then(Value::as_f64),
        ) && min > max
        {
            self.sink.error(
                &at.join("minimum"),
                format!("`minimum` ({min}) is greater than `maximum` ({max})"),
            );
        }
        let format = self.string(o, "format", at).map(str::to_owned);
        if let (Some(f), Some(t)) = (&format, ty) {
            let allowed: &[&str] = match t {
                "string" => &STRING_FORMATS,
                "integer" => &INTEGER_FORMATS,
                "number" => &NUMBER_FORMATS,
                _ => &[],
            };
            if !allowed.is_empty() && !allowed.contains(&f.as_str()) {
                self.sink.error(
                    &at.join("format"),
                    format!(
                        "format `{f}` is not supported for {t}s (supported: {})",
                        allowed.join(", ")
                    ),
                );
            }
        }
        if let Some(p) = self.string(o, "pattern", at)
            && let Err(err) = regress::Regex::new(p)
        {
            self.sink.error(
                &at.join("pattern"),
                format!("`pattern` is not a valid ECMAScript regular expression: {err}"),
            );
        }
        let enumeration = match o.get("enum") {
            None => Vec::new(),
            Some(Value::Array(values)) if !values.is_empty() => {
                let mut out = Vec::new();
                let mut seen = BTreeSet::new();
                for (i, v) in values.iter().enumerate() {
                    match v.as_str() {
                        Some(s) if seen.insert(s) => out.push(s.to_owned()),
                        Some(s) => self.sink.error(
                            &at.join("enum").join(i),
                            format!("duplicate enum value `{s}`"),
                        ),
                        None => self.sink.error(
                            &at.join("enum").join(i),
                            format!("enum values must be strings, found {}", type_name(v)),
                        ),
                    }
                }
                out
            }
            Some(_) => {
                self.sink.error(
                    &at.join("enum"),
                    "`enum` must be a non-empty array of strings",
                );
                Vec::new()
            }
        };
        let constant = o.get("const");
        if let Some(c) = constant {
            let matches_type = match (c, ty) {
                (Value::String(_), None | Some("string")) => true,
                (Value::Bool(_), None | Some("boolean")) => true,
                (Value::Number(n), None | Some("integer")) => n.is_i64(),
                _ => false,
            };
            if !matches_type {
                self.sink.error(
                    &at.join("const"),
                    "`const` must be a string, an integer or a boolean matching `type`",
                );
            }
        }

        let ty = ty.or(if !enumeration.is_empty() {
            Some("string")
        } else {
            match constant {
                Some(Value::String(_)) => Some("string"),
                Some(Value::Bool(_)) => Some("boolean"),
                Some(Value::Number(_)) => Some("integer"),
                _ => None,
            }
        });
        let count = |key: &str| o.get(key).and_then(Value::as_u64);
        let bound = |key: &str| match o.get(key) {
            Some(Value::Number(n)) => Some(n.clone()),
            _ => None,
        };
        let kind = match ty {
            None => SchemaKind::Any,
            Some("string") => SchemaKind::String {
                constant: constant.and_then(Value::as_str).map(str::to_owned),
                enumeration,
                format,
                min_length: count("minLength"),
                max_length: count("maxLength"),
                pattern: o.get("pattern").and_then(Value::as_str).map(str::to_owned),
            },
            Some("integer") => SchemaKind::Integer {
                constant: constant.and_then(Value::as_i64),
                format,
                minimum: bound("minimum"),
                maximum: bound("maximum"),
            },
            Some("number") => SchemaKind::Number {
                format,
                minimum: bound("minimum"),
                maximum: bound("maximum"),
            },
            Some("boolean") => SchemaKind::Boolean {
                constant: constant.and_then(Value::as_bool),
            },
            Some("null") => SchemaKind::Null,
            Some("array") => {
                let items = match o.get("items") {
                    None => SchemaNode::plain(SchemaKind::Any, at.join("items").to_string()),
                    Some(Value::Array(_)) => {
                        self.sink.error(
                            &at.join("items"),
                            "tuple `items` (an array of schemas) are not supported; use one schema",
                        );
                        return None;
                    }
                    Some(items) => self.schema(items, &at.join("items"))?,
                };
                SchemaKind::Array {
                    items: Box::new(items),
                    min_items: count("minItems"),
                    max_items: count("maxItems"),
                }
            }
            Some(_) => self.object_kind(o, at)?,
        };
        if self.sink.diagnostics.len() != errors_before {
            return None;
        }
        let n = node(kind);
        Some(if nullable {
            // The annotations belong to the nullable node, not its type.
            SchemaNode {
                kind: SchemaKind::Nullable(Box::new(SchemaNode::plain(n.kind, n.pointer.clone()))),
                ..n
            }
        } else {
            n
        })
    }

    fn lengths(&mut self, o: &Map<String, Value>, at: &Pointer, min: &str, max: &str) {
        for key in [min, max] {
            if let Some(v) = o.get(key)
                && v.as_u64().is_none()
            {
                self.sink.error(
                    &at.join(key),
                    format!("`{key}` must be a non-negative integer, found {v}"),
                );
            }
        }
        if let (Some(lo), Some(hi)) = (
            o.get(min).and_then(Value::as_u64),
            o.get(max).and_then(Value::as_u64),
        ) && lo > hi
        {
            self.sink.error(
                &at.join(min),
                format!("`{min}` ({lo}) is greater than `{max}` ({hi})"),
            );
        }
    }

    fn object_kind(&mut self, o: &Map<String, Value>, at: &Pointer) -> Option<SchemaKind> {
        let props_at = at.join("properties");
        let mut properties = Vec::new();
        let props = match o.get("properties") {
            Some(p) => self.object(p, &props_at, "`properties`"),
            None => None,
        };
        let required: Vec<String> = match o.get("required") {
            None => Vec::new(),
            Some(Value::Array(names)) => {
                let mut out = Vec::new();
                for (i, n) in names.iter().enumerate() {
                    match n.as_str() {
                        Some(s) if props.is_some_and(|p| p.contains_key(s)) => {
                            out.push(s.to_owned())
                        }
                        Some(s) => self.sink.error(
                            &at.join("required").join(i),
                            format!("required property `{s}` is not in `properties`"),
                        ),
                        None => self.sink.error(
                            &at.join("required").join(i),
                            "`required` entries must be strings",
                        ),
                    }
                }
                out
            }
            Some(_) => {
                self.sink.error(
                    &at.join("required"),
                    "`required` must be an array of property names",
                );
                Vec::new()
            }
        };
        let mut rust_names: BTreeMap<String, String> = BTreeMap::new();
        if let Some(props) = props {
            for (name, schema) in props {
                let rust = name.to_snake_case();
                if let Some(other) = rust_names.insert(rust.clone(), name.clone()) {
                    self.sink.error(
                        &props_at.join(name),
                        format!("property `{name}` collides with `{other}`: both become the Rust field `{rust}`"),
                    );
                }
                if name.is_empty() || rust.is_empty() {
                    self.sink.error(
                        &props_at.join(name),
                        "property names need at least one letter or digit",
                    );
                }
                if let Some(s) = self.schema(schema, &props_at.join(name)) {
                    properties.push(Property {
                        wire_name: name.clone(),
                        required: required.contains(name),
                        schema: s,
                    });
                }
            }
        }
        let mut closed = false;
        match o.get("additionalProperties") {
            None | Some(Value::Bool(true)) => {}
            Some(Value::Bool(false)) => closed = true,
            Some(schema) => {
                if props.is_some_and(|p| !p.is_empty()) {
                    self.sink.error(
                        &at.join("additionalProperties"),
                        "`additionalProperties` with a schema makes a map and cannot be combined with `properties`",
                    );
                    return None;
                }
                let value = self.schema(schema, &at.join("additionalProperties"))?;
                return Some(SchemaKind::Map(Box::new(value)));
            }
        }
        Some(SchemaKind::Object { properties, closed })
    }

    /// Refuses definitions that are nothing but a `$ref` to themselves,
    /// directly or through other such definitions (`A` is `$ref` `B`, `B` is
    /// `$ref` `A`): no value has such a type, and typify recurses on it until
    /// the stack overflows. Recursion through a property or an array item is
    /// fine and stays allowed.
    fn alias_cycles(&mut self, defs: &Map<String, Value>, defs_at: &Pointer) {
        let alias_of = |name: &str| -> Option<&str> {
            defs.get(name)?
                .get("$ref")?
                .as_str()?
                .strip_prefix("#/definitions/")
        };
        for start in defs.keys() {
            let mut chain = vec![start.as_str()];
            let mut next = alias_of(start);
            while let Some(name) = next {
                if name == start {
                    chain.push(name);
                    self.sink.error(
                        &defs_at.join(start).join("$ref"),
                        format!(
                            "definition `{start}` is only a `$ref` to itself ({}); give it a type",
                            chain.join(" → ")
                        ),
                    );
                    break;
                }
                // A cycle not through `start` is reported from its own members.
                if chain.contains(&name) || !defs.contains_key(name) {
                    break;
                }
                chain.push(name);
                next = alias_of(name);
            }
        }
    }

    fn reference(&mut self, r: &Value, at: &Pointer) -> Option<String> {
        let Some(r) = r.as_str() else {
            self.sink.error(at, "`$ref` must be a string");
            return None;
        };
        let Some(name) = r.strip_prefix("#/definitions/") else {
            self.sink.error(
                at,
                format!("`$ref` `{r}` is not supported: only `#/definitions/Name` (the contract's own definitions) can be referenced"),
            );
            return None;
        };
        if !self.definitions.contains_key(name) {
            self.sink.error(
                at,
                format!("unknown `$ref` `{r}`: there is no definition `{name}`"),
            );
            return None;
        }
        Some(name.to_owned())
    }

    fn nullable(&mut self, branches: &Value, at: &Pointer) -> Option<SchemaNode> {
        let Some(branches) = branches.as_array() else {
            self.sink.error(at, "`anyOf` must be an array");
            return None;
        };
        let is_null = |b: &Value| {
            b.get("type").and_then(Value::as_str) == Some("null")
                && b.as_object().is_some_and(|o| o.len() == 1)
        };
        let nulls = branches.iter().filter(|b| is_null(b)).count();
        if branches.len() != 2 || nulls != 1 {
            self.sink.error(
                at,
                "`anyOf` is only supported for nullable types: `[<schema>, {\"type\": \"null\"}]`; use `oneOf` with a tag for unions",
            );
            return None;
        }
        let (i, inner) = branches.iter().enumerate().find(|(_, b)| !is_null(b))?;
        self.schema(inner, &at.join(i))
    }

    /// Resolves a union variant to its object schema (following one `$ref`).
    fn variant_object<'a>(&'a self, v: &'a Value) -> Option<&'a Map<String, Value>> {
        let v = match v.get("$ref").and_then(Value::as_str) {
            Some(r) => self.definitions.get(r.strip_prefix("#/definitions/")?)?,
            None => v,
        };
        let o = v.as_object()?;
        (o.get("type").and_then(Value::as_str) == Some("object")).then_some(o)
    }

    fn tagged_union(&mut self, variants: &Value, at: &Pointer) -> Option<SchemaKind> {
        let Some(list) = variants.as_array().filter(|l| l.len() >= 2) else {
            self.sink.error(
                at,
                "`oneOf` must be an array of at least two object schemas",
            );
            return None;
        };
        let mut nodes = Vec::new();
        for (i, v) in list.iter().enumerate() {
            nodes.push(self.schema(v, &at.join(i)));
        }
        let mut objects = Vec::new();
        for (i, v) in list.iter().enumerate() {
            match self.variant_object(v) {
                Some(o) => objects.push(o.clone()),
                None => {
                    self.sink.error(
                        &at.join(i),
                        "each `oneOf` variant must be an object schema (`\"type\": \"object\"`, inline or by `$ref`)",
                    );
                    return None;
                }
            }
        }
        // The tag: a property that every variant requires, as a distinct `const` string.
        let tag_of = |o: &Map<String, Value>, name: &str| -> Option<String> {
            let required = o
                .get("required")
                .and_then(Value::as_array)
                .is_some_and(|r| r.iter().any(|n| n == name));
            let c = o.get("properties")?.get(name)?.get("const")?.as_str()?;
            required.then(|| c.to_owned())
        };
        let candidates: Vec<String> = objects[0]
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        let tag = candidates.into_iter().find(|name| {
            let values: Option<Vec<String>> = objects.iter().map(|o| tag_of(o, name)).collect();
            values.is_some_and(|vals| vals.iter().collect::<BTreeSet<_>>().len() == vals.len())
        });
        let Some(tag) = tag else {
            self.sink.error(
                at,
                "`oneOf` variants must be told apart by a tag: a property that every variant requires, with a distinct `const` string in each",
            );
            return None;
        };
        let variants = nodes.into_iter().collect::<Option<Vec<_>>>()?;
        Some(SchemaKind::TaggedUnion { tag, variants })
    }
}

/// The module name of a namespace path: `/chat` is `chat`, `/` is `root`.
/// `None` when the path is not `/` or `/name`.
pub fn namespace_module(path: &str) -> Option<String> {
    let name = path.strip_prefix('/')?;
    if name.is_empty() {
        return Some("root".to_owned());
    }
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    ok.then(|| name.to_snake_case())
}

/// The `{param}` names of a room pattern, in order.
pub fn room_params(pattern: &str) -> Result<Vec<String>, String> {
    let mut params = Vec::new();
    let mut rest = pattern;
    while let Some(start) = rest.find(['{', '}']) {
        if rest[start..].starts_with('}') {
            return Err("`}` without a matching `{`".to_owned());
        }
        let after = &rest[start + 1..];
        let end = after
            .find(['{', '}'])
            .filter(|&i| after[i..].starts_with('}'))
            .ok_or_else(|| "`{` without a matching `}`".to_owned())?;
        let name = &after[..end];
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "`{{{name}}}` is not a parameter name (a letter, then letters, digits or `_`)"
            ));
        }
        params.push(name.to_owned());
        rest = &after[end + 1..];
    }
    Ok(params)
}
