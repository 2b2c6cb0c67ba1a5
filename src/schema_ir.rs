//! The typed form of a payload schema, after validation.
//!
//! Validation builds it, once, while it checks the schema (every keyword
//! of the supported subset has a field here, and every node knows its JSON
//! pointer); the IR keeps it, and the TypeScript and docs targets render
//! from it. The Rust target hands the raw (validated) schema to typify,
//! which implements the same naming rules.

use serde_json::Number;

/// A validated payload schema node.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaNode {
    /// What kind of value it describes.
    pub kind: SchemaKind,
    /// Its `description`, for docs.
    pub description: Option<String>,
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
}
