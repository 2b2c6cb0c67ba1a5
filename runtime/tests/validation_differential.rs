//! Differential test of the payload validator (`server::validator`) against
//! the `jsonschema` crate (draft 7), the reference it replaced on the hot
//! path: the same payloads, generated from schemas that use every keyword of
//! the contract subset and then mutated, must get the same verdict and, when
//! refused, the same JSON pointer.
//!
//! Payloads are built as text, so that key order, repeated keys, escapes,
//! number spellings (`1.0`, `1e2`, `-0`) and invalid JSON reach both sides
//! exactly as a client sends them. The seed is fixed; a failure prints the
//! schema, the payload and both answers.

#![cfg(feature = "server")]

use evcontract_runtime::server::validator::PayloadValidator;
use serde_json::{Value, json};

/// Payloads per schema: the total is over 100,000.
const PER_SCHEMA: usize = 10_500;

/// splitmix64: small, deterministic, good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The schemas under test: between them every keyword of the subset, in
/// the shapes generated code produces (closed objects, nullable fields,
/// tagged unions, maps, recursion through definitions).
fn schemas() -> Vec<(&'static str, Value)> {
    vec![
        (
            "closed object, one required (required checked after members)",
            json!({"type": "object", "properties": {
                "threadId": {"type": "string", "minLength": 1, "maxLength": 8},
                "n": {"type": "integer", "minimum": 0, "maximum": 10}
            }, "required": ["threadId"], "additionalProperties": false}),
        ),
        (
            "closed object, three required, formats and pattern",
            json!({"type": "object", "properties": {
                "at": {"type": "string", "format": "date-time"},
                "day": {"type": "string", "format": "date"},
                "mail": {"type": "string", "format": "email"},
                "id": {"type": "string", "format": "uuid"},
                "code": {"type": "string", "pattern": "^[A-Z]{2}\\d+$"},
                "word": {"type": "string", "pattern": "a.c"}
            }, "required": ["at", "day", "code"], "additionalProperties": false}),
        ),
        (
            "open object, two required, nullable and enum",
            json!({"type": "object", "properties": {
                "status": {"type": "string", "enum": ["ok", "degraded", "down"]},
                "note": {"type": ["string", "null"], "maxLength": 3},
                "count": {"type": ["integer", "null"], "minimum": -5, "format": "int32"},
                "ratio": {"type": "number", "minimum": 0.5, "maximum": 2.5, "format": "double"},
                "flag": {"type": "boolean", "const": true}
            }, "required": ["status", "count"]}),
        ),
        (
            "arrays: fused and nullable, item bounds",
            json!({"type": "object", "properties": {
                "ids": {"type": "array", "items": {"type": "string", "minLength": 2}, "minItems": 1, "maxItems": 3},
                "maybe": {"type": ["array", "null"], "items": {"type": "integer"}, "maxItems": 2},
                "grid": {"type": "array", "items": {"type": "array", "items": {"type": "number"}, "maxItems": 2}}
            }, "required": ["ids"], "additionalProperties": false}),
        ),
        (
            "tagged union (oneOf of closed objects with const tags)",
            json!({"$ref": "#/definitions/Shape", "definitions": {
                "Shape": {"oneOf": [
                    {"$ref": "#/definitions/Circle"},
                    {"type": "object", "properties": {
                        "kind": {"type": "string", "const": "square"},
                        "side": {"type": "number", "minimum": 0}
                    }, "required": ["kind", "side"], "additionalProperties": false},
                    {"type": "object", "properties": {
                        "kind": {"type": "string", "enum": ["dot"]}
                    }, "required": ["kind"], "additionalProperties": false}
                ]},
                "Circle": {"type": "object", "properties": {
                    "kind": {"type": "string", "const": "circle"},
                    "radius": {"type": "number", "minimum": 0}
                }, "required": ["kind", "radius"], "additionalProperties": false}
            }}),
        ),
        (
            "anyOf and an ambiguous oneOf",
            json!({"type": "object", "properties": {
                "either": {"anyOf": [{"type": "string", "maxLength": 2}, {"type": "integer", "minimum": 5}]},
                "one": {"oneOf": [{"type": "integer"}, {"type": "number", "maximum": 3}]}
            }, "additionalProperties": false}),
        ),
        (
            "nullable enumeration, constant and reference, as the generator normalises them",
            json!({"$ref": "#/definitions/Pick", "definitions": {
                "Pick": {"type": "object", "properties": {
                    "pick": {"anyOf": [{"type": "string", "enum": ["x", "yy"]}, {"type": "null"}]},
                    "on": {"anyOf": [{"type": "boolean", "const": true}, {"type": "null"}]},
                    "level": {"anyOf": [{"type": "integer", "const": 3}, {"type": "null"}]},
                    "next": {"anyOf": [{"$ref": "#/definitions/Leaf"}, {"type": "null"}]}
                }, "required": ["pick"], "additionalProperties": false},
                "Leaf": {"type": "object", "properties": {
                    "id": {"type": "string", "maxLength": 2}
                }, "required": ["id"], "additionalProperties": false}
            }}),
        ),
        (
            "recursion and a map",
            json!({"$ref": "#/definitions/Node", "definitions": {
                "Node": {"type": "object", "properties": {
                    "name": {"type": "string", "maxLength": 4},
                    "children": {"type": "array", "items": {"$ref": "#/definitions/Node"}, "maxItems": 3},
                    "tags": {"type": "object", "additionalProperties": {"type": "string", "minLength": 1}}
                }, "required": ["name"], "additionalProperties": false}
            }}),
        ),
        (
            "many properties (walked in member order) and an object const",
            json!({"type": "object", "properties": (0..16).map(|i| (format!("p{i}"), json!({"type": "integer", "maximum": i}))).collect::<serde_json::Map<_, _>>(),
                "required": ["p0", "p1"]}),
        ),
        (
            "few properties, many members (looked up in schema order)",
            json!({"type": "object", "properties": {
                "b": {"type": "string", "maxLength": 1}, "a": {"type": "string", "maxLength": 1}
            }, "required": ["a"]}),
        ),
        (
            "const object and non-object roots",
            json!({"type": "object", "properties": {
                "fixed": {"const": {"a": [1, 2.0]}},
                "any": {}
            }, "additionalProperties": {"type": "integer"}}),
        ),
    ]
}

/// Resolves `#/definitions/X`.
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    let mut s = schema;
    for _ in 0..8 {
        match s.get("$ref").and_then(Value::as_str) {
            Some(r) => s = &root["definitions"][r.trim_start_matches("#/definitions/")],
            None => break,
        }
    }
    s
}

/// Text of a JSON value, with the generator's own spellings.
struct Gen<'r> {
    rng: &'r mut Rng,
    root: &'r Value,
    depth: usize,
}

impl Gen<'_> {
    fn any_scalar(&mut self) -> String {
        self.rng
            .pick(&[
                "null",
                "true",
                "false",
                "0",
                "-1",
                "1.5",
                "1.0",
                "-0",
                "1e2",
                "3",
                "5",
                "\"\"",
                "\"ab\"",
                "\"x\"",
                "[]",
                "{}",
                "[1]",
                "{\"a\":1}",
            ])
            .to_string()
    }

    fn string(&mut self, schema: &Value) -> String {
        let s: String = if let Some(c) = schema.get("const").and_then(Value::as_str) {
            c.to_owned()
        } else if let Some(e) = schema.get("enum").and_then(Value::as_array) {
            self.rng.pick(e).as_str().unwrap_or("").to_owned()
        } else {
            match schema.get("format").and_then(Value::as_str) {
                Some("date-time") => self
                    .rng
                    .pick(&[
                        "2024-01-01T10:00:00Z",
                        "2024-02-29T23:59:59.123+01:00",
                        "1998-12-31T23:59:60Z",
                        "1998-12-31T15:59:60-08:00",
                        "1998-12-31T22:59:60Z",
                        "2023-02-29T10:00:00Z",
                        "2024-01-01 10:00:00Z",
                        "2024-01-01t10:00:00z",
                        "2024-01-01T10:00:00",
                        "2024-01-01T10:00:00.Z",
                        "2024-01-01T24:00:00Z",
                        "2024-01-01T10:00:00+24:00",
                    ])
                    .to_string(),
                Some("date") => self
                    .rng
                    .pick(&[
                        "2024-02-29",
                        "2023-02-29",
                        "2024-13-01",
                        "2024-1-01",
                        "0000-02-29",
                        "2024-04-31",
                        "２０２４-01-01",
                    ])
                    .to_string(),
                Some("email") => self
                    .rng
                    .pick(&[
                        "a@example.com",
                        "a.b+c@[127.0.0.1]",
                        "x@[IPv6:::1]",
                        "x@[ipv6:fe80::1]",
                        "\"\"@example.com",
                        "\"a b\"@example.com",
                        "Name <a@b.co>",
                        "<a@b.co>",
                        "a@-example.com",
                        "a@ab--c.com",
                        "a@localhost",
                        "a..b@example.com",
                        "é@example.com",
                        "no-at-sign",
                        "a@example.com.",
                    ])
                    .to_string(),
                Some("uuid") => self
                    .rng
                    .pick(&["6ba7b810-9dad-11d1-80b4-00c04fd430c8", "not-a-uuid"])
                    .to_string(),
                _ => {
                    let pieces = [
                        "a", "b", "c", "ab", "AB", "Z9", "abc", "a\nc", "12", "x", "🦀", "é",
                        "aXc", "~", "/", " ", "\u{2028}",
                    ];
                    let n = self.rng.below(5);
                    (0..n).map(|_| *self.rng.pick(&pieces)).collect()
                }
            }
        };
        serde_json::to_string(&s).unwrap_or_default()
    }

    fn number(&mut self, schema: &Value, integer: bool) -> String {
        let near: Vec<f64> = ["minimum", "maximum"]
            .iter()
            .filter_map(|k| schema.get(*k).and_then(Value::as_f64))
            .collect();
        if let Some(&b) = near.first().filter(|_| self.rng.chance(2)) {
            let b = if near.len() > 1 && self.rng.chance(2) {
                near[1]
            } else {
                b
            };
            return match self.rng.below(5) {
                0 => format!("{b}"),
                1 => format!("{}", b - 1.0),
                2 => format!("{}", b + 1.0),
                3 => format!("{:.1}", b),
                _ => format!("{}", b + 0.5),
            };
        }
        let ints = [
            "0",
            "1",
            "-3",
            "42",
            "7",
            "1.0",
            "2e0",
            "-0",
            "18446744073709551615",
            "-9223372036854775808",
            "18446744073709551616",
            "1e300",
        ];
        let floats = ["0.5", "2.25", "-1.5", "3.0000001", "1e-3"];
        if integer || self.rng.chance(2) {
            self.rng.pick(&ints).to_string()
        } else {
            self.rng.pick(&floats).to_string()
        }
    }

    fn types(schema: &Value) -> Vec<String> {
        match schema.get("type") {
            Some(Value::String(t)) => vec![t.clone()],
            Some(Value::Array(ts)) => ts
                .iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// A value meant to match `schema` (it often does not: bounds, formats
    /// and unions are sampled near their edges), with mutations.
    fn value(&mut self, schema: &Value) -> String {
        let schema = resolve(self.root, schema);
        if self.depth > 5 || self.rng.chance(25) {
            return self.any_scalar();
        }
        if let Some(c) = schema
            .get("const")
            .filter(|c| c.is_object() || c.is_array())
        {
            return if self.rng.chance(2) {
                c.to_string()
            } else {
                self.rng
                    .pick(&[
                        "{\"a\":[1,2]}",
                        "{\"a\":[1.0,2]}",
                        "{\"a\":[1,2,3]}",
                        "[1,2]",
                    ])
                    .to_string()
            };
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(branches) = schema.get(key).and_then(Value::as_array) {
                let branch = self.rng.pick(branches).clone();
                return self.value(&branch);
            }
        }
        let types = Self::types(schema);
        let ty = if types.is_empty() {
            if schema.get("properties").is_some() || schema.get("additionalProperties").is_some() {
                "object".to_owned()
            } else {
                return self.any_scalar();
            }
        } else {
            self.rng.pick(&types).clone()
        };
        self.depth += 1;
        let out = match ty.as_str() {
            "null" => "null".to_owned(),
            "boolean" => self.rng.pick(&["true", "false"]).to_string(),
            "integer" => self.number(schema, true),
            "number" => self.number(schema, false),
            "string" => self.string(schema),
            "array" => {
                let max = schema.get("maxItems").and_then(Value::as_u64).unwrap_or(3) as usize;
                let n = self.rng.below(max + 2);
                let items = schema.get("items").cloned().unwrap_or(json!({}));
                let parts: Vec<String> = (0..n).map(|_| self.value(&items)).collect();
                format!("[{}]", parts.join(","))
            }
            _ => self.object(schema),
        };
        self.depth -= 1;
        out
    }

    fn object(&mut self, schema: &Value) -> String {
        let empty = serde_json::Map::new();
        let props = schema
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut members: Vec<(String, String)> = Vec::new();
        for (name, sub) in props {
            let keep = if required.contains(&name.as_str()) {
                !self.rng.chance(12)
            } else {
                self.rng.chance(2)
            };
            if keep {
                members.push((name.clone(), self.value(sub)));
            }
        }
        // Extra members: against `additionalProperties`, or many of them
        // (to cross the reference's member-count threshold).
        let extras = match self.rng.below(8) {
            0 => 1,
            1 => 9,
            _ => 0,
        };
        let extra_schema = schema
            .get("additionalProperties")
            .filter(|a| a.is_object())
            .cloned();
        for i in 0..extras {
            let name = self
                .rng
                .pick(&["extra", "z", "a~b", "a/b", "x"])
                .to_string()
                + &i.to_string();
            let value = match &extra_schema {
                Some(s) => self.value(s),
                None => self.any_scalar(),
            };
            members.push((name, value));
        }
        // Order and repetition as a client may send them.
        if self.rng.chance(2) {
            for i in (1..members.len()).rev() {
                let j = self.rng.below(i + 1);
                members.swap(i, j);
            }
        }
        if !members.is_empty() && self.rng.chance(15) {
            let i = self.rng.below(members.len());
            let name = members[i].0.clone();
            let value = if self.rng.chance(2) {
                members[i].1.clone()
            } else {
                self.any_scalar()
            };
            members.push((name, value));
        }
        let body: Vec<String> = members
            .iter()
            .map(|(k, v)| {
                let key = if self.rng.chance(20) {
                    // The same key, spelled with an escape.
                    serde_json::to_string(k)
                        .unwrap_or_default()
                        .replacen('a', "\\u0061", 1)
                } else {
                    serde_json::to_string(k).unwrap_or_default()
                };
                format!("{key}:{v}")
            })
            .collect();
        format!("{{{}}}", body.join(","))
    }
}

/// Text-level damage: truncation, a stray byte, a number out of range.
fn damage(rng: &mut Rng, text: String) -> String {
    match rng.below(40) {
        0 if text.len() > 1 => {
            let mut end = rng.below(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text[..end].to_owned()
        }
        1 => format!("{text} x"),
        2 => text.replacen('1', "1e999", 1),
        _ => text,
    }
}

#[test]
fn validator_agrees_with_jsonschema_on_generated_and_mutated_payloads() {
    let mut rng = Rng(0x5eed_2026_1202);
    let mut total = 0usize;
    let mut refused = 0usize;
    let mut fast_accepts = 0usize;
    let mut disagreements = Vec::new();
    for (name, schema) in schemas() {
        let reference =
            jsonschema::draft7::new(&schema).expect("the reference compiles the schema");
        let ours = PayloadValidator::compile(&schema.to_string())
            .expect("our validator compiles the schema");
        for _ in 0..PER_SCHEMA {
            let text = {
                let mut generator = Gen {
                    rng: &mut rng,
                    root: &schema,
                    depth: 0,
                };
                generator.value(&schema)
            };
            let text = damage(&mut rng, text);
            total += 1;
            let expected: Result<(), String> = match serde_json::from_str::<Value>(&text) {
                Err(_) => Err(String::new()),
                Ok(value) => match reference.validate(&value) {
                    Ok(()) => Ok(()),
                    Err(err) => Err(err.instance_path().as_str().to_owned()),
                },
            };
            let got = ours.check(&text).map_err(|r| r.path);
            if expected.is_err() {
                refused += 1;
            }
            let fast = ours.accepts_text(&text);
            if fast {
                fast_accepts += 1;
            }
            if got != expected || (fast && expected.is_err()) {
                disagreements.push(format!(
                    "schema `{name}`\n  payload  {text}\n  jsonschema {expected:?}\n  ours       {got:?} (fast pass accepted: {fast})"
                ));
            }
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {total} payloads disagree; the first ones:\n{}",
        disagreements.len(),
        disagreements
            .iter()
            .take(12)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(total >= 100_000, "only {total} payloads");
    // Both verdicts must be well represented, or the test proves little.
    assert!(
        refused > total / 5 && refused < total * 4 / 5,
        "{refused} of {total} refused"
    );
    assert!(
        fast_accepts > total / 10,
        "{fast_accepts} of {total} accepted by the fast pass"
    );
    eprintln!("{total} payloads, {refused} refused, {fast_accepts} accepted by the streaming pass");
}

#[test]
fn a_keyword_the_validator_does_not_check_is_refused_not_ignored() {
    // Ignored, `allOf` let every payload of an event whose payload was a
    // wrapped `$ref` through unchecked.
    for (schema, at) in [
        (
            json!({"allOf": [{"$ref": "#/definitions/A"}], "definitions": {"A": {"type": "string"}}}),
            "#/allOf",
        ),
        (
            json!({"type": "object", "properties": {"n": {"type": "integer", "multipleOf": 2}}}),
            "#/properties/n/multipleOf",
        ),
    ] {
        let err = PayloadValidator::compile(&schema.to_string()).expect_err("refused");
        assert!(err.starts_with(at), "{err}");
    }
    // Annotations and a `$ref` beside `definitions` compile.
    PayloadValidator::compile(
        &json!({"$ref": "#/definitions/A", "definitions": {"A": {"type": "string", "description": "a", "title": "A"}}})
            .to_string(),
    )
    .expect("compiles");
}
