//! The typed form of a payload schema, after validation.
//!
//! The TypeScript emitter renders from this; the Rust emitter hands the raw
//! (validated) schema to typify, which implements the same naming rules.

/// A validated payload schema node.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaNode {
    /// What kind of value it describes.
    pub kind: SchemaKind,
    /// Its `description`, for docs.
    pub description: Option<String>,
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
    },
    /// An integer.
    Integer {
        /// `const`.
        constant: Option<i64>,
        /// `format`, such as `int64`.
        format: Option<String>,
    },
    /// A floating-point number.
    Number,
    /// A boolean.
    Boolean {
        /// `const`.
        constant: Option<bool>,
    },
    /// `null`.
    Null,
    /// An array of one element type.
    Array(Box<SchemaNode>),
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
            SchemaKind::Array(inner) | SchemaKind::Map(inner) | SchemaKind::Nullable(inner) => {
                inner.refs(out)
            }
            SchemaKind::Object { properties, .. } => {
                properties.iter().for_each(|p| p.schema.refs(out))
            }
            SchemaKind::TaggedUnion { variants, .. } => variants.iter().for_each(|v| v.refs(out)),
            SchemaKind::Any
            | SchemaKind::String { .. }
            | SchemaKind::Integer { .. }
            | SchemaKind::Number
            | SchemaKind::Boolean { .. }
            | SchemaKind::Null => {}
        }
    }
}
