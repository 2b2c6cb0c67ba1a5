//! The typed form of a payload schema, after validation.
//!
//! Validation builds it, once, while it checks the schema (every keyword
//! of the supported subset has a field here, and every node knows its JSON
//! pointer); the IR keeps it, and every target reads it: the TypeScript and
//! docs targets render from it, the Rust target hands typify its annotated
//! JSON Schema ([`SchemaNode::annotated_schema`]), `breaking` compares it,
//! and the payload validator of generated servers compiles its normalised
//! JSON Schema ([`SchemaNode::validation_schema`]); the AsyncAPI target
//! embeds the annotated schema. After validation nothing reads a payload
//! schema from the contract's JSON.

use serde_json::{Map, Number, Value};

/// A validated payload schema node.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaNode {
    /// What kind of value it describes.
    pub kind: SchemaKind,
    /// Its `description`, for docs.
    pub description: Option<String>,
    /// Its `title` (typify names an inline type after it).
    pub title: Option<String>,
    /// Its `default`, as written (typify fills a missing property with it).
    pub default: Option<Value>,
    /// Its `examples`, as written.
    pub examples: Option<Value>,
    /// Where it is in the contract (a JSON pointer), for messages.
    pub pointer: String,
}

/// The shape of a value.
#[derive(Debug, Clone, PartialEq)]
pub enum SchemaKind {
    /// Any JSON value (`{}`).
    Any,
    /// A shared definition, by its (PascalCase) name.
    Ref(String),
    /// A string, possibly restricted to a constant or an enumeration.
    String {
        /// `const`.
        constant: Option<String>,
        /// `enum` (empty: any string).
        enumeration: Vec<String>,
        /// `format`, such as `date-time`.
        format: Option<String>,
        /// `minLength`.
        min_length: Option<u64>,
        /// `maxLength`.
        max_length: Option<u64>,
        /// `pattern` (an ECMAScript regular expression).
        pattern: Option<String>,
    },
    /// An integer.
    Integer {
        /// `const`.
        constant: Option<i64>,
        /// `format`, such as `int64`.
        format: Option<String>,
        /// `minimum`, as written.
        minimum: Option<Number>,
        /// `maximum`, as written.
        maximum: Option<Number>,
    },
    /// A floating-point number.
    Number {
        /// `format`, such as `double`.
        format: Option<String>,
        /// `minimum`, as written.
        minimum: Option<Number>,
        /// `maximum`, as written.
        maximum: Option<Number>,
    },
    /// A boolean.
    Boolean {
        /// `const`.
        constant: Option<bool>,
    },
    /// `null`.
    Null,
    /// An array of one element type (`{}`, any value, when `items` is not
    /// given).
    Array {
        /// `items`.
        items: Box<SchemaNode>,
        /// `minItems`.
        min_items: Option<u64>,
        /// `maxItems`.
        max_items: Option<u64>,
    },
    /// An object with known properties.
    Object {
        /// Properties, in contract order.
        properties: Vec<Property>,
        /// Whether `additionalProperties` is `false`.
        closed: bool,
    },
    /// An object used as a map from string keys to one value type.
    Map(Box<SchemaNode>),
    /// The inner type or `null`.
    Nullable(Box<SchemaNode>),
    /// A tagged union of objects, told apart by the `tag` property.
    TaggedUnion {
        /// The wire name of the discriminating property.
        tag: String,
        /// The object variants (inline objects or references to them).
        variants: Vec<SchemaNode>,
    },
}

/// One property of an object.
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    /// The name on the wire, exactly as in the contract.
    pub wire_name: String,
    /// Whether the property is in `required`.
    pub required: bool,
    /// Its schema.
    pub schema: SchemaNode,
}

impl SchemaNode {
    /// A node of `kind` at `pointer`, without annotations.
    pub fn plain(kind: SchemaKind, pointer: String) -> Self {
        Self {
            kind,
            description: None,
            title: None,
            default: None,
            examples: None,
            pointer,
        }
    }

    /// Names of the definitions this node refers to, directly or nested.
    pub fn refs(&self, out: &mut Vec<String>) {
        match &self.kind {
            SchemaKind::Ref(name) => out.push(name.clone()),
            SchemaKind::Array { items: inner, .. }
            | SchemaKind::Map(inner)
            | SchemaKind::Nullable(inner) => inner.refs(out),
            SchemaKind::Object { properties, .. } => {
                properties.iter().for_each(|p| p.schema.refs(out))
            }
            SchemaKind::TaggedUnion { variants, .. } => variants.iter().for_each(|v| v.refs(out)),
            SchemaKind::Any
            | SchemaKind::String { .. }
            | SchemaKind::Integer { .. }
            | SchemaKind::Number { .. }
            | SchemaKind::Boolean { .. }
            | SchemaKind::Null => {}
        }
    }

    /// This node as the JSON Schema (draft-07) that generated servers
    /// validate payloads with: the keywords of the subset only, in one
    /// spelling whatever the contract wrote (no `description` or `title`;
    /// `type` always said; properties in contract order, `required` in
    /// property order; definitions referred to as `#/definitions/<name>`).
    ///
    /// A nullable node keeps the `"type": [T, "null"]` form for a plain
    /// type and is `anyOf` [T, null] otherwise: with a `const` or an `enum`
    /// the type-array form would refuse `null` (the enumeration does not
    /// list it), where the generated Rust and TypeScript types take it.
    pub fn validation_schema(&self) -> Value {
        self.json_schema(false)
    }

    /// [`Self::validation_schema`] with each node's annotations kept
    /// (`title`, `description`, `default`, `examples`): what typify is
    /// given, so that the Rust types are made from the same typed nodes,
    /// with their docs, names and defaults.
    pub fn annotated_schema(&self) -> Value {
        self.json_schema(true)
    }

    fn json_schema(&self, annotated: bool) -> Value {
        let mut o = Map::new();
        if annotated {
            if let Some(t) = &self.title {
                o.insert("title".to_owned(), Value::String(t.clone()));
            }
            if let Some(d) = &self.description {
                o.insert("description".to_owned(), Value::String(d.clone()));
            }
            if let Some(d) = &self.default {
                o.insert("default".to_owned(), d.clone());
            }
            if let Some(e) = &self.examples {
                o.insert("examples".to_owned(), e.clone());
            }
        }
        let mut put = |key: &str, value: Value| {
            o.insert(key.to_owned(), value);
        };
        let ty = |name: &str| Value::String(name.to_owned());
        match &self.kind {
            SchemaKind::Any => {}
            SchemaKind::Ref(name) => put("$ref", Value::String(format!("#/definitions/{name}"))),
            SchemaKind::String {
                constant,
                enumeration,
                format,
                min_length,
                max_length,
                pattern,
            } => {
                put("type", ty("string"));
                if let Some(c) = constant {
                    put("const", Value::String(c.clone()));
                }
                if !enumeration.is_empty() {
                    put(
                        "enum",
                        enumeration.iter().cloned().map(Value::String).collect(),
                    );
                }
                if let Some(f) = format {
                    put("format", Value::String(f.clone()));
                }
                if let Some(n) = min_length {
                    put("minLength", Value::from(*n));
                }
                if let Some(n) = max_length {
                    put("maxLength", Value::from(*n));
                }
                if let Some(p) = pattern {
                    put("pattern", Value::String(p.clone()));
                }
            }
            SchemaKind::Integer {
                constant,
                format,
                minimum,
                maximum,
            } => {
                put("type", ty("integer"));
                if let Some(c) = constant {
                    put("const", Value::from(*c));
                }
                number_keywords(&mut put, format, minimum, maximum);
            }
            SchemaKind::Number {
                format,
                minimum,
                maximum,
            } => {
                put("type", ty("number"));
                number_keywords(&mut put, format, minimum, maximum);
            }
            SchemaKind::Boolean { constant } => {
                put("type", ty("boolean"));
                if let Some(c) = constant {
                    put("const", Value::Bool(*c));
                }
            }
            SchemaKind::Null => put("type", ty("null")),
            SchemaKind::Array {
                items,
                min_items,
                max_items,
            } => {
                put("type", ty("array"));
                // `{}` items: any element, as with no `items` at all.
                if items.kind != SchemaKind::Any {
                    put("items", items.json_schema(annotated));
                }
                if let Some(n) = min_items {
                    put("minItems", Value::from(*n));
                }
                if let Some(n) = max_items {
                    put("maxItems", Value::from(*n));
                }
            }
            SchemaKind::Object { properties, closed } => {
                put("type", ty("object"));
                if !properties.is_empty() {
                    put(
                        "properties",
                        properties
                            .iter()
                            .map(|p| (p.wire_name.clone(), p.schema.json_schema(annotated)))
                            .collect::<Map<_, _>>()
                            .into(),
                    );
                }
                let required: Vec<Value> = properties
                    .iter()
                    .filter(|p| p.required)
                    .map(|p| Value::String(p.wire_name.clone()))
                    .collect();
                if !required.is_empty() {
                    put("required", required.into());
                }
                if *closed {
                    put("additionalProperties", Value::Bool(false));
                }
            }
            SchemaKind::Map(values) => {
                put("type", ty("object"));
                put("additionalProperties", values.json_schema(annotated));
            }
            SchemaKind::Nullable(inner) => {
                let mut schema = inner.json_schema(annotated);
                // typify reads `"type": [T, "null"]` with an `enum` as an
                // optional enumeration (the types' meaning) and names its
                // parts more simply than for `anyOf`: it gets that form.
                let plain = match &inner.kind {
                    SchemaKind::String {
                        constant,
                        enumeration,
                        ..
                    } => annotated || (constant.is_none() && enumeration.is_empty()),
                    SchemaKind::Integer { constant, .. } => annotated || constant.is_none(),
                    SchemaKind::Boolean { constant } => annotated || constant.is_none(),
                    // `null` or null: `null`; any value or null: any value.
                    SchemaKind::Number { .. }
                    | SchemaKind::Array { .. }
                    | SchemaKind::Object { .. }
                    | SchemaKind::Map(_)
                    | SchemaKind::Null
                    | SchemaKind::Any => true,
                    SchemaKind::Ref(_)
                    | SchemaKind::Nullable(_)
                    | SchemaKind::TaggedUnion { .. } => false,
                };
                match schema.as_object_mut() {
                    Some(fields) if plain => {
                        if let Some(Value::String(t)) = fields.get("type").cloned()
                            && t != "null"
                        {
                            fields.insert(
                                "type".to_owned(),
                                Value::Array(vec![Value::String(t), ty("null")]),
                            );
                        }
                        // This node's annotations, then the inner type's
                        // keywords.
                        let mut merged = std::mem::take(&mut o);
                        merged.append(fields);
                        return Value::Object(merged);
                    }
                    _ => put(
                        "anyOf",
                        Value::Array(vec![schema, serde_json::json!({"type": "null"})]),
                    ),
                }
            }
            SchemaKind::TaggedUnion { variants, .. } => put(
                "oneOf",
                variants.iter().map(|v| v.json_schema(annotated)).collect(),
            ),
        }
        Value::Object(o)
    }
}

/// The keywords integers and numbers share: `format`, `minimum` and
/// `maximum` (bounds as written).
fn number_keywords(
    put: &mut impl FnMut(&str, Value),
    format: &Option<String>,
    minimum: &Option<Number>,
    maximum: &Option<Number>,
) {
    if let Some(f) = format {
        put("format", Value::String(f.clone()));
    }
    if let Some(n) = minimum {
        put("minimum", Value::Number(n.clone()));
    }
    if let Some(n) = maximum {
        put("maximum", Value::Number(n.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nullable_node_keeps_its_annotations_whatever_its_type() {
        // `anyOf [{}, null]`: any value; `["string", "null"]`: a type list;
        // `const` or null: `anyOf` for validation. Each keeps its description.
        let nullable = |kind| SchemaNode {
            description: Some("Said once.".to_owned()),
            ..SchemaNode::plain(
                SchemaKind::Nullable(Box::new(SchemaNode::plain(kind, "/p".to_owned()))),
                "/p".to_owned(),
            )
        };
        let any = nullable(SchemaKind::Any).annotated_schema();
        assert_eq!(any, serde_json::json!({"description": "Said once."}));
        let null = nullable(SchemaKind::Null).annotated_schema();
        assert_eq!(
            null,
            serde_json::json!({"description": "Said once.", "type": "null"})
        );
        let flag = nullable(SchemaKind::Boolean {
            constant: Some(true),
        });
        assert_eq!(
            flag.annotated_schema(),
            serde_json::json!({"description": "Said once.", "type": ["boolean", "null"], "const": true})
        );
        assert_eq!(
            flag.validation_schema(),
            serde_json::json!({"anyOf": [{"type": "boolean", "const": true}, {"type": "null"}]})
        );
    }
}
