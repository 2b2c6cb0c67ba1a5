//! `contract_structured`: contracts built from the fuzzer's bytes with
//! `arbitrary`, shaped like the format (namespaces, client and server
//! events, rooms, errors, definitions) with payloads from the supported JSON
//! Schema subset, serialized as JSON or YAML and run through load and
//! generation.
//!
//! Three inputs in four build a contract the validator should accept (names
//! from valid pools that still collide with each other, recursive `$ref`s,
//! edge numbers), so most of the work reaches typify and the templates; the
//! fourth is "wild": now and then a deliberate mistake (a bad name, an
//! unsupported keyword, a junk key, a boolean schema, a dangling `$ref`).

use std::path::Path;

use arbitrary::{Result, Unstructured};
use serde_json::{Map, Value, json};

use crate::contract::{Outcome, load_and_generate};
use crate::panics;

/// How deep payload schemas nest.
const MAX_DEPTH: u32 = 4;

/// The fuzz target.
pub fn contract_structured(data: &[u8]) {
    panics::init();
    panics::remember(data);
    let mut u = Unstructured::new(data);
    let Ok((file, text)) = contract_file(&mut u) else {
        return;
    };
    load_and_generate(Path::new(file), &text);
}

/// The file name and text of a contract built from `u`.
pub fn contract_file(u: &mut Unstructured<'_>) -> Result<(&'static str, String)> {
    let wild = u.ratio(1, 4)?;
    let value = Gen { u, wild }.contract()?;
    Ok(match u.int_in_range(0..=3u8)? {
        0 => (
            "fuzz.contract.yaml",
            serde_norway::to_string(&value).unwrap_or_default(),
        ),
        1 => ("fuzz.contract.json", value.to_string()),
        _ => (
            "fuzz.contract.json",
            serde_json::to_string_pretty(&value).unwrap_or_default(),
        ),
    })
}

/// What `data` decodes to, and whether it loads and generates (used to
/// pick seeds; see the `replay` tests).
pub fn outcome(data: &[u8]) -> Option<Outcome> {
    let mut u = Unstructured::new(data);
    let (file, text) = contract_file(&mut u).ok()?;
    Some(load_and_generate(Path::new(file), &text))
}

/// Names: (valid, invalid) pools. Valid names still collide on purpose
/// (`userId` and `user_id`, `HealthStatus` and `HealthStatusStatus`, Rust
/// keywords and prelude names).
type Pool = (&'static [&'static str], &'static [&'static str]);

const CONTRACT_NAMES: Pool = (
    &["demo", "chat", "kitchen_sink", "x", "type", "self_test"],
    &["Bad Name", "a-b", "", "1x"],
);
const VERSIONS: Pool = (
    &["1.0.0", "0.3.0-beta.1", "2.0.0+build.5", "0.0.0"],
    &["1", "x.y.z", "v1.0.0"],
);
const DEFINITIONS: Pool = (
    &[
        "Item",
        "Message",
        "Node",
        "HealthStatus",
        "HealthStatusStatus",
        "Shape",
        "ShapeKind",
        "Type",
        "String",
        "Vec",
        "Option",
        "Result",
        "Value",
        "A",
        "WebSocket",
    ],
    &[
        "ItemsSocket",
        "ErrorCode",
        "AckError",
        "item_list",
        "",
        "Self",
        "Self_",
    ],
);
const EVENTS: Pool = (
    &[
        "join",
        "send_message",
        "ping",
        "type",
        "self",
        "a",
        "b2",
        "join_thread",
        "match",
    ],
    &[
        "r#x",
        "connect",
        "disconnect",
        "error",
        "newListener",
        "SendMessage",
        "send-message",
        "",
    ],
);
const PROPERTIES: Pool = (
    &[
        "id",
        "kind",
        "type",
        "self",
        "userId",
        "with-dash",
        "ref",
        "match",
        "async",
        "status",
        "label",
        "1st",
    ],
    // Invalid alone, or next to a valid one (`user_id` and `userId`).
    &["", "-", "__", "é", "$ref", "Id", "user_id"],
);
const NAMESPACES: Pool = (
    &["/", "/chat", "/items", "/admin-panel", "/a"],
    &["chat", "/x/y", "//", "", "/Chat"],
);
const ERRORS: Pool = (
    &["NOT_FOUND", "QUOTA_EXCEEDED", "THREAD_NOT_FOUND"],
    &["INTERNAL", "AUTH_REQUIRED", "bad", ""],
);
const ROOMS: Pool = (&["thread", "board", "list", "room_2"], &["Room", ""]);
const ROOM_PATTERNS: Pool = (
    &[
        "thread:{threadId}",
        "board:{boardId}:lane:{laneId}",
        "{x}",
        "a_b:{c_d}",
    ],
    &["{", "{}", "a:{a}{b}", "{a}:{a}", "}", "plain", "é:{é}"],
);
const AUTH: Pool = (&["optional", "required"], &["none", "maybe", ""]);
const STRING_FORMATS: Pool = (&["date-time", "date", "uuid", "email"], &["ipv4", ""]);
const INTEGER_FORMATS: Pool = (
    &["int32", "int64", "uint32", "uint64"],
    &["int8", "float", "uint128"],
);
const NUMBER_FORMATS: Pool = (&["float", "double"], &["int32", "decimal"]);
const PATTERNS: Pool = (
    &[
        "^[A-Z]{3}$",
        "^a+$",
        "\\d+",
        "\\p{L}",
        "^$",
        "(?<n>x)",
        "[\\u0000-\\uffff]",
    ],
    &["(", "[", "a{2,1}", "\\"],
);
const ENUM_VALUES: Pool = (
    &[
        "ok", "down", "OK", "Ok", "ok ", "1", "self", "é", "a-b", "_",
    ],
    &[""],
);
const UNSUPPORTED: &[&str] = &[
    "if",
    "then",
    "not",
    "allOf",
    "patternProperties",
    "dependencies",
    "propertyNames",
    "contains",
    "exclusiveMinimum",
    "multipleOf",
    "$id",
    "definitions",
];
const TYPES: &[&str] = &[
    "string", "integer", "number", "boolean", "object", "array", "null",
];
const DESCRIPTIONS: &[&str] = &[
    "A thing.",
    "*/ end of a comment",
    "`code` and \"quotes\"",
    "line\nbreak",
    "/// doc",
    "{{handlebars}}",
    "</script>",
];

/// The contract builder: the fuzzer's bytes and whether mistakes happen.
struct Gen<'a, 'b> {
    u: &'b mut Unstructured<'a>,
    wild: bool,
}

impl Gen<'_, '_> {
    /// Whether to make a deliberate mistake here (wild inputs only).
    fn oops(&mut self) -> Result<bool> {
        Ok(self.wild && self.u.ratio(1, 12)?)
    }

    fn flip(&mut self) -> Result<bool> {
        self.u.arbitrary()
    }

    fn ratio(&mut self, n: u8, d: u8) -> Result<bool> {
        self.u.ratio(n, d)
    }

    /// A name from the valid pool, or after a mistake the invalid pool or
    /// an arbitrary string.
    fn name(&mut self, (valid, invalid): Pool) -> Result<String> {
        if self.oops()? {
            if self.flip()? {
                return self.u.arbitrary::<String>();
            }
            return Ok((*self.u.choose(invalid)?).to_owned());
        }
        Ok((*self.u.choose(valid)?).to_owned())
    }

    /// A count or length: small, or after a mistake anything.
    fn count(&mut self, max: u8) -> Result<Value> {
        if self.oops()? {
            return self.edge_number();
        }
        Ok(json!(self.u.int_in_range(0..=max)?))
    }

    /// A number at the edges (huge, negative, fractional, beyond 2^53).
    fn edge_number(&mut self) -> Result<Value> {
        Ok(match self.u.int_in_range(0..=7u8)? {
            0 => json!(-1),
            1 => json!(self.u.arbitrary::<i64>()?),
            2 => json!(self.u.arbitrary::<u64>()?),
            3 => json!(self.u.arbitrary::<f64>()?),
            4 => json!(9_007_199_254_740_993_u64),
            5 => json!(i64::MIN),
            6 => json!(1.5),
            _ => json!(u64::MAX),
        })
    }

    /// A bound for `minimum`/`maximum`: usually small, sometimes an edge.
    fn bound(&mut self) -> Result<Value> {
        if self.ratio(1, 6)? {
            return self.edge_number();
        }
        Ok(json!(self.u.int_in_range(-10..=100i32)?))
    }

    /// A small arbitrary JSON value (defaults, examples, consts, junk).
    fn any_value(&mut self, depth: u32) -> Result<Value> {
        Ok(match self.u.int_in_range(0..=6u8)? {
            0 => Value::Null,
            1 => json!(self.u.arbitrary::<bool>()?),
            2 => self.edge_number()?,
            3 => json!(self.u.arbitrary::<String>()?),
            4 if depth < 2 => {
                let mut items = Vec::new();
                for _ in 0..self.u.int_in_range(0..=3u8)? {
                    items.push(self.any_value(depth + 1)?);
                }
                Value::Array(items)
            }
            5 if depth < 2 => {
                let mut map = Map::new();
                for _ in 0..self.u.int_in_range(0..=3u8)? {
                    map.insert(self.name(PROPERTIES)?, self.any_value(depth + 1)?);
                }
                Value::Object(map)
            }
            _ => json!(0),
        })
    }

    /// Now and then (wild inputs only), a key the format does not know.
    fn junk(&mut self, map: &mut Map<String, Value>) -> Result<()> {
        if self.oops()? && self.ratio(1, 3)? {
            let key = if self.flip()? {
                self.u.arbitrary::<String>()?
            } else {
                let pool = ["colour", "x-extra", "$comment", "descripton", "payloads"];
                (*self.u.choose(&pool)?).to_owned()
            };
            let value = self.any_value(0)?;
            map.insert(key, value);
        }
        Ok(())
    }

    fn description(&mut self, map: &mut Map<String, Value>) -> Result<()> {
        if self.ratio(1, 4)? {
            let text = if self.ratio(1, 3)? {
                self.u.arbitrary::<String>()?
            } else {
                (*self.u.choose(DESCRIPTIONS)?).to_owned()
            };
            map.insert("description".into(), json!(text));
        }
        Ok(())
    }

    /// A payload schema of the supported subset.
    fn schema(&mut self, defs: &[String], depth: u32) -> Result<Value> {
        if self.oops()? {
            return self.bad_schema(defs, depth);
        }
        let kind = if depth >= MAX_DEPTH {
            self.u.int_in_range(0..=5u8)?
        } else {
            self.u.int_in_range(0..=12u8)?
        };
        let mut s = Map::new();
        match kind {
            0 => self.string_schema(&mut s)?,
            1 => {
                s.insert("type".into(), json!("integer"));
                if self.flip()? {
                    s.insert("format".into(), json!(self.name(INTEGER_FORMATS)?));
                }
                if self.flip()? {
                    s.insert("minimum".into(), self.bound()?);
                }
                if self.flip()? {
                    s.insert("maximum".into(), self.bound()?);
                }
                if self.ratio(1, 6)? {
                    s.insert("const".into(), self.bound()?);
                }
            }
            2 => {
                s.insert("type".into(), json!("number"));
                if self.ratio(1, 3)? {
                    s.insert("format".into(), json!(self.name(NUMBER_FORMATS)?));
                }
                if self.flip()? {
                    s.insert("minimum".into(), self.bound()?);
                }
                if self.flip()? {
                    s.insert("maximum".into(), self.bound()?);
                }
            }
            3 => {
                s.insert("type".into(), json!("boolean"));
                if self.ratio(1, 6)? {
                    s.insert("const".into(), json!(self.u.arbitrary::<bool>()?));
                }
            }
            4 if !defs.is_empty() => {
                let target = self.u.choose(defs)?;
                s.insert("$ref".into(), json!(format!("#/definitions/{target}")));
                // Nothing else next to `$ref`.
                return Ok(Value::Object(s));
            }
            4 => {}
            5 => {
                // `{}` (any value) or `{"type": "null"}`.
                if self.flip()? {
                    s.insert("type".into(), json!("null"));
                }
            }
            6..=8 => self.object_schema(defs, depth, &mut s)?,
            9 => {
                s.insert("type".into(), json!("array"));
                if self.ratio(7, 8)? {
                    s.insert("items".into(), self.schema(defs, depth + 1)?);
                }
                if self.flip()? {
                    s.insert("minItems".into(), self.count(3)?);
                }
                if self.flip()? {
                    s.insert("maxItems".into(), self.count(200)?);
                }
            }
            10 => {
                // Nullable: `"type": [T, "null"]` or `anyOf` with null.
                if self.flip()? {
                    let ty = *self.u.choose(&TYPES[..TYPES.len() - 1])?;
                    let pair = if self.flip()? {
                        json!([ty, "null"])
                    } else {
                        json!(["null", ty])
                    };
                    s.insert("type".into(), pair);
                    if ty == "object" && self.flip()? {
                        let text = self.schema(defs, depth + 1)?;
                        s.insert("properties".into(), json!({ "text": text }));
                    }
                } else {
                    let inner = self.schema(defs, depth + 1)?;
                    let null_schema = json!({ "type": "null" });
                    let any_of = if self.flip()? {
                        json!([inner, null_schema])
                    } else {
                        json!([null_schema, inner])
                    };
                    s.insert("anyOf".into(), any_of);
                }
            }
            11 => {
                self.tagged_union(defs, depth, &mut s)?;
                self.description(&mut s)?;
                return Ok(Value::Object(s));
            }
            _ => {
                // A map: `additionalProperties` with a schema.
                s.insert("type".into(), json!("object"));
                s.insert("additionalProperties".into(), self.schema(defs, depth + 1)?);
            }
        }
        self.description(&mut s)?;
        if self.ratio(1, 16)? {
            s.insert("title".into(), json!(self.u.arbitrary::<String>()?));
        }
        let combinator = s.contains_key("anyOf");
        if (!combinator || self.oops()?) && self.ratio(1, 16)? {
            s.insert("default".into(), self.any_value(0)?);
        }
        if (!combinator || self.oops()?) && self.ratio(1, 16)? {
            s.insert("examples".into(), json!([self.any_value(0)?]));
        }
        self.junk(&mut s)?;
        Ok(Value::Object(s))
    }

    /// A schema with one thing wrong (wild inputs only).
    fn bad_schema(&mut self, defs: &[String], depth: u32) -> Result<Value> {
        // Whatever nests in it is a leaf.
        let next = MAX_DEPTH.max(depth);
        Ok(match self.u.int_in_range(0..=6u8)? {
            0 => json!(self.u.arbitrary::<bool>()?),
            1 => {
                let target = *self.u.choose(&[
                    "#/definitions/Missing",
                    "other.json#/definitions/A",
                    "#/",
                    "#",
                    "#/definitions/",
                ])?;
                json!({ "$ref": target })
            }
            2 => {
                let key = *self.u.choose(UNSUPPORTED)?;
                let ty = *self.u.choose(TYPES)?;
                json!({ "type": ty, key: self.schema(defs, next)? })
            }
            3 => json!({ "type": [self.u.choose(TYPES)?, self.u.choose(TYPES)?] }),
            4 => json!({ "anyOf": [self.schema(defs, next)?, self.schema(defs, next)?] }),
            5 => json!({ "type": "array", "items": [self.schema(defs, next)?] }),
            _ => {
                let mut s = Map::new();
                self.object_schema(defs, next, &mut s)?;
                s.insert("additionalProperties".into(), self.schema(defs, next)?);
                Value::Object(s)
            }
        })
    }

    fn string_schema(&mut self, s: &mut Map<String, Value>) -> Result<()> {
        s.insert("type".into(), json!("string"));
        match self.u.int_in_range(0..=5u8)? {
            0 => {
                let mut values: Vec<Value> = Vec::new();
                for _ in 0..self.u.int_in_range(1..=4u8)? {
                    let value = json!(self.name(ENUM_VALUES)?);
                    if !values.contains(&value) || self.oops()? {
                        values.push(value);
                    }
                }
                s.insert("enum".into(), Value::Array(values));
            }
            1 => {
                let pool = (&["circle", "rect", "é", "a b"][..], &[""][..]);
                s.insert("const".into(), json!(self.name(pool)?));
            }
            2 => {
                s.insert("format".into(), json!(self.name(STRING_FORMATS)?));
            }
            3 => {
                s.insert("pattern".into(), json!(self.name(PATTERNS)?));
            }
            _ => {}
        }
        if self.ratio(1, 3)? {
            s.insert("minLength".into(), self.count(3)?);
        }
        if self.ratio(1, 3)? {
            let min = s.get("minLength").and_then(Value::as_u64).unwrap_or(0);
            let extra = self.u.int_in_range(0..=200u64)?;
            let max = if self.oops()? {
                self.edge_number()?
            } else {
                json!(min.saturating_add(extra))
            };
            s.insert("maxLength".into(), max);
        }
        Ok(())
    }

    fn object_schema(
        &mut self,
        defs: &[String],
        depth: u32,
        s: &mut Map<String, Value>,
    ) -> Result<()> {
        s.insert("type".into(), json!("object"));
        let mut properties = Map::new();
        for _ in 0..self.u.int_in_range(0..=4u8)? {
            let key = self.name(PROPERTIES)?;
            let value = self.schema(defs, depth + 1)?;
            properties.insert(key, value);
        }
        let mut required = Vec::new();
        for key in properties.keys() {
            if self.u.arbitrary()? {
                required.push(json!(key));
            }
        }
        if self.oops()? {
            required.push(json!(self.name(PROPERTIES)?));
        }
        s.insert("properties".into(), Value::Object(properties));
        if !required.is_empty() || self.ratio(1, 8)? {
            s.insert("required".into(), Value::Array(required));
        }
        match self.u.int_in_range(0..=4u8)? {
            0..=2 => {
                s.insert("additionalProperties".into(), json!(false));
            }
            3 => {
                s.insert("additionalProperties".into(), json!(true));
            }
            _ => {}
        }
        Ok(())
    }

    /// `oneOf` objects told apart by a required `const` property.
    fn tagged_union(
        &mut self,
        defs: &[String],
        depth: u32,
        s: &mut Map<String, Value>,
    ) -> Result<()> {
        let tag = self.name((&["kind", "type", "tag", "self", "k-ind"], &[""]))?;
        let n = if self.oops()? {
            1
        } else {
            self.u.int_in_range(2..=4u8)?
        };
        let mut variants = Vec::new();
        for i in 0..n {
            let mut v = Map::new();
            self.object_schema(defs, depth + 1, &mut v)?;
            let value = if self.oops()? {
                "same".to_owned()
            } else {
                let pool = ["circle", "rect", "Circle", "circle_2", "é", "a b", "type"];
                format!("{}{i}", self.u.choose(&pool)?)
            };
            let tag_schema = json!({ "type": "string", "const": value });
            if let Some(props) = v.get_mut("properties").and_then(Value::as_object_mut) {
                props.insert(tag.clone(), tag_schema);
            }
            if !self.oops()? {
                let required = v.entry("required").or_insert_with(|| json!([]));
                if let Some(list) = required.as_array_mut()
                    && !list.contains(&json!(tag))
                {
                    list.push(json!(tag));
                }
            }
            self.description(&mut v)?;
            variants.push(Value::Object(v));
        }
        s.insert("oneOf".into(), Value::Array(variants));
        Ok(())
    }

    fn contract(&mut self) -> Result<Value> {
        let mut c = Map::new();
        if self.ratio(1, 8)? {
            c.insert("$schema".into(), json!("./contract.schema.json"));
        }
        c.insert("contract".into(), json!(self.name(CONTRACT_NAMES)?));
        c.insert("version".into(), json!(self.name(VERSIONS)?));
        self.description(&mut c)?;

        // Names first, so that schemas can refer to any of them (recursion too).
        let mut defs = Vec::new();
        for _ in 0..self.u.int_in_range(0..=4u8)? {
            let name = self.name(DEFINITIONS)?;
            if !defs.contains(&name) {
                defs.push(name);
            }
        }
        if !defs.is_empty() || self.flip()? {
            let mut map = Map::new();
            for name in &defs {
                map.insert(name.clone(), self.schema(&defs, 0)?);
            }
            c.insert("definitions".into(), Value::Object(map));
        }
        if self.ratio(1, 3)? {
            let mut errors = Map::new();
            for _ in 0..self.u.int_in_range(0..=3u8)? {
                let mut e = Map::new();
                self.description(&mut e)?;
                self.junk(&mut e)?;
                errors.insert(self.name(ERRORS)?, Value::Object(e));
            }
            c.insert("errors".into(), Value::Object(errors));
        }
        let mut namespaces = Map::new();
        for _ in 0..self.u.int_in_range(1..=3u8)? {
            let path = self.name(NAMESPACES)?;
            namespaces.insert(path, self.namespace(&defs)?);
        }
        c.insert("namespaces".into(), Value::Object(namespaces));
        self.junk(&mut c)?;
        Ok(Value::Object(c))
    }

    fn namespace(&mut self, defs: &[String]) -> Result<Value> {
        let mut ns = Map::new();
        self.description(&mut ns)?;
        if self.flip()? {
            ns.insert("auth".into(), json!(self.name(AUTH)?));
        }
        if self.ratio(1, 3)? {
            let mut rooms = Map::new();
            for _ in 0..self.u.int_in_range(0..=2u8)? {
                let mut room = Map::new();
                room.insert("pattern".into(), json!(self.name(ROOM_PATTERNS)?));
                self.description(&mut room)?;
                self.junk(&mut room)?;
                rooms.insert(self.name(ROOMS)?, Value::Object(room));
            }
            ns.insert("rooms".into(), Value::Object(rooms));
        }
        if self.ratio(7, 8)? {
            let mut events = Map::new();
            for _ in 0..self.u.int_in_range(0..=3u8)? {
                let mut e = Map::new();
                self.description(&mut e)?;
                e.insert("payload".into(), self.schema(defs, 0)?);
                if self.flip()? {
                    e.insert("ack".into(), self.schema(defs, 0)?);
                }
                if self.ratio(1, 4)? {
                    e.insert("auth".into(), json!(self.name(AUTH)?));
                }
                if self.ratio(1, 4)? {
                    let (max, window) = if self.oops()? {
                        (self.edge_number()?, self.edge_number()?)
                    } else {
                        (
                            json!(self.u.int_in_range(1..=100u32)?),
                            json!(self.u.int_in_range(1..=600_000u64)?),
                        )
                    };
                    e.insert(
                        "rateLimit".into(),
                        json!({ "max": max, "windowMs": window }),
                    );
                }
                self.junk(&mut e)?;
                events.insert(self.name(EVENTS)?, Value::Object(e));
            }
            ns.insert("clientEvents".into(), Value::Object(events));
        }
        if self.ratio(3, 4)? {
            let mut events = Map::new();
            for _ in 0..self.u.int_in_range(0..=3u8)? {
                let mut e = Map::new();
                self.description(&mut e)?;
                e.insert("payload".into(), self.schema(defs, 0)?);
                self.junk(&mut e)?;
                events.insert(self.name(EVENTS)?, Value::Object(e));
            }
            ns.insert("serverEvents".into(), Value::Object(events));
        }
        self.junk(&mut ns)?;
        Ok(Value::Object(ns))
    }
}
