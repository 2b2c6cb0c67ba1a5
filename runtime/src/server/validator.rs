//! Payload validation against an event's JSON Schema (the contract's
//! subset, draft 7 semantics), without a `serde_json::Value` tree on the
//! accepting path.
//!
//! A [`PayloadValidator`] is compiled once per event when the namespace is
//! mounted. [`PayloadValidator::check`] runs it inside the deserializer over
//! the frame's JSON text: one pass that allocates nothing for a valid
//! payload (escaped strings use serde_json's scratch buffer; only `oneOf` /
//! `anyOf` values are re-read from their captured text, once per branch).
//! When that pass refuses, or meets something it does not decide alone (a
//! repeated key), the payload is parsed into a tree and
//! [`PayloadValidator::first_error`] finds the error that a draft 7 validator
//! reports first: the same keyword order, the same instance path. Refusals
//! are rare and cost what validation cost before; acceptances are the hot
//! path.
//!
//! The `jsonschema` crate is the reference: the differential test
//! (`runtime/tests/validation_differential.rs`) feeds both the same
//! generated and mutated payloads and requires the same verdict and path.

use std::cell::Cell;
use std::cmp::Ordering;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Number, Value};

use super::formats::Format;

type NodeId = usize;

/// One event's payload schema, compiled.
pub struct PayloadValidator {
    nodes: Vec<Node>,
}

impl fmt::Debug for PayloadValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PayloadValidator")
            .field("nodes", &self.nodes.len())
            .finish()
    }
}

/// Why a payload was refused: where (a JSON pointer into the payload) and
/// what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// JSON pointer of the offending value (`""`: the payload itself).
    pub path: String,
    /// What is wrong, without echoing the value.
    pub reason: String,
}

/// The JSON types, as a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Types(u8);

const NULL: u8 = 1;
const BOOLEAN: u8 = 2;
const INTEGER: u8 = 4;
const NUMBER: u8 = 8;
const STRING: u8 = 16;
const ARRAY: u8 = 32;
const OBJECT: u8 = 64;

impl Types {
    fn from_name(name: &str) -> Option<u8> {
        Some(match name {
            "null" => NULL,
            "boolean" => BOOLEAN,
            "integer" => INTEGER,
            "number" => NUMBER,
            "string" => STRING,
            "array" => ARRAY,
            "object" => OBJECT,
            _ => return None,
        })
    }

    /// Whether a value of kind `kind` (one bit; `INTEGER` also for a float
    /// without fraction) is allowed. `number` takes integers.
    fn allows(self, kind: u8) -> bool {
        self.0 & kind != 0 || (kind == INTEGER && self.0 & NUMBER != 0)
    }

    fn describe(self) -> String {
        let names: Vec<String> = [
            (NULL, "null"),
            (BOOLEAN, "boolean"),
            (INTEGER, "integer"),
            (NUMBER, "number"),
            (STRING, "string"),
            (ARRAY, "array"),
            (OBJECT, "object"),
        ]
        .iter()
        .filter(|(bit, _)| self.0 & bit != 0)
        .map(|(_, name)| format!("\"{name}\""))
        .collect();
        names.join(", ")
    }
}

/// `additionalProperties` other than `true` (absent is `true`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Additional {
    /// `false`.
    Refused,
    /// A schema every undeclared member must match.
    Schema(NodeId),
}

/// A compiled schema object. Draft 7 ignores every sibling of `$ref`, so a
/// node is either a reference or a set of keywords.
enum Node {
    /// `$ref` (resolved; a reference cycle that never reaches keywords
    /// accepts everything, as in the reference).
    Ref(NodeId),
    /// Keywords, checked in the reference's order (see
    /// [`PayloadValidator::first_error`]).
    Keywords(Box<Keywords>),
}

#[derive(Default)]
struct Keywords {
    types: Option<Types>,
    /// `type` is exactly `"array"` and `items` is present: the type, item
    /// count and items are checked together, at `items`'s turn.
    array_fused: bool,
    constant: Option<Value>,
    enumeration: Option<Vec<Value>>,
    minimum: Option<Number>,
    maximum: Option<Number>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    min_items: Option<u64>,
    max_items: Option<u64>,
    required: Vec<String>,
    /// `required` of one name beside `properties` and
    /// `"additionalProperties": false`: checked after the members.
    late_required: bool,
    pattern: Option<(String, fancy_regex::Regex)>,
    format: Option<Format>,
    properties: Vec<(String, NodeId)>,
    additional: Option<Additional>,
    items: Option<NodeId>,
    any_of: Vec<NodeId>,
    one_of: Vec<NodeId>,
    /// `oneOf`/`anyOf`, or a `const`/`enum` holding an array or object: the
    /// streaming pass captures the value's text first.
    needs_capture: bool,
}

/// Objects with fewer declared properties are checked in a different member
/// order by the reference (see `first_error`).
const MANY_PROPERTIES: usize = 15;

impl PayloadValidator {
    /// Compiles a self-contained schema (draft 7, `$ref`s to
    /// `#/definitions/…`), as generated code carries it in
    /// [`EventSpec::schema`](super::EventSpec::schema).
    pub fn compile(schema: &str) -> Result<Self, String> {
        let root: Value = serde_json::from_str(schema).map_err(|e| format!("not JSON: {e}"))?;
        let definitions = root.get("definitions").and_then(Value::as_object);
        let mut compiler = Compiler {
            nodes: Vec::new(),
            definitions,
            defined: Vec::new(),
        };
        compiler.node(&root, "#")?;
        let mut schema = Self {
            nodes: compiler.nodes,
        };
        schema.resolve_refs();
        Ok(schema)
    }

    /// Points every `$ref` straight at keywords; a cycle of references only
    /// accepts everything.
    fn resolve_refs(&mut self) {
        for id in 0..self.nodes.len() {
            let mut target = id;
            let mut steps = 0;
            while let Node::Ref(next) = self.nodes[target] {
                target = next;
                steps += 1;
                if steps > self.nodes.len() {
                    self.nodes[id] = Node::Keywords(Box::default());
                    break;
                }
            }
            if steps > 0 && !matches!(self.nodes[id], Node::Keywords(_)) {
                self.nodes[id] = Node::Ref(target);
            }
        }
    }

    fn keywords(&self, id: NodeId) -> &Keywords {
        match &self.nodes[id] {
            Node::Keywords(k) => k,
            // Resolved: a reference points at keywords.
            Node::Ref(target) => match &self.nodes[*target] {
                Node::Keywords(k) => k,
                Node::Ref(_) => unreachable_keywords(),
            },
        }
    }

    /// Checks the payload's JSON text (`"null"` for a missing payload).
    ///
    /// `Ok` when the payload matches; a text that is not JSON, or a value
    /// that does not match, is a [`Refusal`] with the path and the reason
    /// the reference would report first.
    pub fn check(&self, text: &str) -> Result<(), Refusal> {
        if self.accepts_text(text) {
            return Ok(());
        }
        let value: Value = serde_json::from_str(text).map_err(|e| Refusal {
            path: String::new(),
            reason: e.to_string(),
        })?;
        match self.first_error(&value) {
            Some(refusal) => Err(refusal),
            // The fast pass refuses repeated keys and leaves them to the
            // tree, which keeps the last value as a JSON parser does.
            None => Ok(()),
        }
    }

    /// The streaming pass alone: whether `text` is JSON that matches, with
    /// no repeated key. `false` only means "not decided here".
    pub fn accepts_text(&self, text: &str) -> bool {
        let abort = Cell::new(false);
        let mut de = serde_json::Deserializer::from_str(text);
        let ok = Seed {
            schema: self,
            node: 0,
            abort: &abort,
        }
        .deserialize(&mut de)
        .is_ok()
            && de.end().is_ok();
        ok && !abort.get()
    }

    /// The first error a draft 7 validator reports for `value`, `None` when
    /// it matches.
    pub fn first_error(&self, value: &Value) -> Option<Refusal> {
        self.error_at(0, value, &mut Vec::new())
    }

    fn valid(&self, id: NodeId, value: &Value) -> bool {
        self.error_at(id, value, &mut Vec::new()).is_none()
    }

    /// The first error of `value` against node `id`, whose path is
    /// `path`. The order of the checks is the reference's keyword priority:
    /// type, const, enum, minimum, maximum, minLength, maxLength, minItems,
    /// maxItems, required, pattern, format, properties, additionalProperties,
    /// items, anyOf, oneOf.
    fn error_at<'v>(
        &self,
        id: NodeId,
        value: &'v Value,
        path: &mut Vec<Segment<'v>>,
    ) -> Option<Refusal> {
        let k = self.keywords(id);
        macro_rules! fail {
            ($reason:expr $(,)?) => {
                Some(Refusal {
                    path: pointer(path),
                    reason: $reason,
                })
            };
        }
        if let (Some(types), false) = (k.types, k.array_fused)
            && !types.allows(kind_of(value))
        {
            return fail!(type_reason(types));
        }
        if let Some(c) = &k.constant
            && !json_equal(value, c)
        {
            return fail!(format!("{c} was expected"));
        }
        if let Some(options) = &k.enumeration
            && !options.iter().any(|o| json_equal(value, o))
        {
            return fail!(format!(
                "value is not one of {}",
                Value::Array(options.clone())
            ));
        }
        if let Value::Number(n) = value {
            if let Some(min) = &k.minimum
                && num_cmp(n, min) == Ordering::Less
            {
                return fail!(format!("value is less than the minimum of {min}"));
            }
            if let Some(max) = &k.maximum
                && num_cmp(n, max) == Ordering::Greater
            {
                return fail!(format!("value is greater than the maximum of {max}"));
            }
        }
        if let Value::String(s) = value
            && let Some(reason) = k.length_error(s)
        {
            return fail!(reason);
        }
        if let (Value::Array(items), false) = (value, k.array_fused)
            && let Some(reason) = k.count_error(items.len())
        {
            return fail!(reason);
        }
        if let Value::Object(members) = value
            && !k.late_required
            && let Some(reason) = k.missing(|name| members.contains_key(name))
        {
            return fail!(reason);
        }
        if let Value::String(s) = value {
            if let Some((source, regex)) = &k.pattern
                && !regex.is_match(s).unwrap_or(false)
            {
                return fail!(format!("value does not match \"{source}\""));
            }
            if let Some(format) = k.format
                && !format.accepts(s)
            {
                return fail!(format!("value is not a \"{}\"", format.name()));
            }
        }
        if let Value::Object(members) = value {
            if let Some(found) = self.members_error(k, members, path) {
                return Some(found);
            }
            if k.late_required
                && let Some(reason) = k.missing(|name| members.contains_key(name))
            {
                return fail!(reason);
            }
        }
        if let Some(items_node) = k.items {
            if k.array_fused {
                let Value::Array(items) = value else {
                    return fail!(type_reason(Types(ARRAY)));
                };
                if let Some(reason) = k.count_error(items.len()) {
                    return fail!(reason);
                }
            }
            if let Value::Array(items) = value {
                for (i, item) in items.iter().enumerate() {
                    path.push(Segment::Index(i));
                    let found = self.error_at(items_node, item, path);
                    path.pop();
                    if found.is_some() {
                        return found;
                    }
                }
            }
        }
        if !k.any_of.is_empty() && !k.any_of.iter().any(|&b| self.valid(b, value)) {
            return fail!(
                "value is not valid under any of the schemas listed in the 'anyOf' keyword"
                    .to_owned(),
            );
        }
        if !k.one_of.is_empty() {
            let mut valid = k.one_of.iter().filter(|&&b| self.valid(b, value));
            match (valid.next(), valid.next()) {
                (None, _) => {
                    return fail!(
                        "value is not valid under any of the schemas listed in the 'oneOf' keyword"
                            .to_owned(),
                    );
                }
                (Some(_), Some(_)) if k.one_of.len() > 1 => {
                    return fail!(
                        "value is valid under more than one of the schemas listed in the 'oneOf' keyword"
                            .to_owned(),
                    );
                }
                _ => {}
            }
        }
        None
    }

    /// `properties` and `additionalProperties` over an object's members, in
    /// the order the reference walks them: with `additionalProperties`
    /// (`false` or a schema) the members in their order; with `properties`
    /// alone the members in their order too, except when an object of fewer
    /// than 15 declared properties has more than four times as many members,
    /// where the declared properties are looked up in their order.
    fn members_error<'v>(
        &self,
        k: &Keywords,
        members: &'v Map<String, Value>,
        path: &mut Vec<Segment<'v>>,
    ) -> Option<Refusal> {
        let declared = |name: &str| k.properties.iter().find(|(p, _)| p == name).map(|p| p.1);
        let mut check = |name: &'v String, node: NodeId, value: &'v Value| {
            path.push(Segment::Key(name));
            let found = self.error_at(node, value, path);
            path.pop();
            found
        };
        match k.additional {
            Some(Additional::Refused | Additional::Schema(_)) => {
                for (name, value) in members {
                    let node = match (declared(name), k.additional) {
                        (Some(node), _) => node,
                        (None, Some(Additional::Schema(node))) => node,
                        _ => {
                            let unexpected: Vec<String> = members
                                .keys()
                                .filter(|m| declared(m).is_none())
                                .map(|m| format!("'{m}'"))
                                .collect();
                            let verb = if unexpected.len() == 1 { "was" } else { "were" };
                            return Some(Refusal {
                                path: pointer(path),
                                reason: format!(
                                    "Additional properties are not allowed ({} {verb} unexpected)",
                                    unexpected.join(", ")
                                ),
                            });
                        }
                    };
                    if let Some(found) = check(name, node, value) {
                        return Some(found);
                    }
                }
                None
            }
            _ if k.properties.is_empty() => None,
            _ if k.properties.len() < MANY_PROPERTIES && members.len() > 4 * k.properties.len() => {
                for (name, node) in &k.properties {
                    if let Some((key, value)) = members.get_key_value(name)
                        && let Some(found) = check(key, *node, value)
                    {
                        return Some(found);
                    }
                }
                None
            }
            _ => {
                for (name, value) in members {
                    if let Some(node) = declared(name)
                        && let Some(found) = check(name, node, value)
                    {
                        return Some(found);
                    }
                }
                None
            }
        }
    }
}

fn unreachable_keywords() -> &'static Keywords {
    // `resolve_refs` leaves no reference to a reference; an empty keyword
    // set (accept everything) is the safe answer if one slipped through.
    static EMPTY: std::sync::OnceLock<Keywords> = std::sync::OnceLock::new();
    EMPTY.get_or_init(Keywords::default)
}

impl Keywords {
    fn length_error(&self, s: &str) -> Option<String> {
        if self.min_length.is_none() && self.max_length.is_none() {
            return None;
        }
        // A string of n bytes has between n/4 and n characters: count them
        // only when the bytes alone do not settle both bounds.
        let bytes = s.len() as u64;
        if self.max_length.is_none_or(|max| bytes <= max)
            && self.min_length.is_none_or(|min| bytes.div_ceil(4) >= min)
        {
            return None;
        }
        let chars = s.chars().count() as u64;
        if let Some(min) = self.min_length
            && chars < min
        {
            return Some(format!(
                "value is shorter than {min} character{}",
                plural(min)
            ));
        }
        if let Some(max) = self.max_length
            && chars > max
        {
            return Some(format!(
                "value is longer than {max} character{}",
                plural(max)
            ));
        }
        None
    }

    fn count_error(&self, count: usize) -> Option<String> {
        let count = count as u64;
        if let Some(min) = self.min_items
            && count < min
        {
            return Some(format!("value has less than {min} item{}", plural(min)));
        }
        if let Some(max) = self.max_items
            && count > max
        {
            return Some(format!("value has more than {max} item{}", plural(max)));
        }
        None
    }

    fn missing(&self, present: impl Fn(&str) -> bool) -> Option<String> {
        self.required
            .iter()
            .find(|name| !present(name))
            .map(|name| format!("\"{name}\" is a required property"))
    }

    /// Checks a scalar seen by the streaming pass (everything but the
    /// array/object keywords, which the visitor checks as it walks).
    fn scalar_ok(&self, kind: u8, as_value: impl Fn() -> Value) -> bool {
        // A fused array check (`"type": "array"` with `items`) wants an array.
        if self.array_fused || self.types.is_some_and(|types| !types.allows(kind)) {
            return false;
        }
        if self.constant.is_some() || self.enumeration.is_some() {
            let v = as_value();
            if let Some(c) = &self.constant
                && !json_equal(&v, c)
            {
                return false;
            }
            if let Some(options) = &self.enumeration
                && !options.iter().any(|o| json_equal(&v, o))
            {
                return false;
            }
        }
        true
    }

    fn number_ok(&self, n: &Number) -> bool {
        let kind = if is_integer(n) { INTEGER } else { NUMBER };
        self.scalar_ok(kind, || Value::Number(n.clone()))
            && self
                .minimum
                .as_ref()
                .is_none_or(|min| num_cmp(n, min) != Ordering::Less)
            && self
                .maximum
                .as_ref()
                .is_none_or(|max| num_cmp(n, max) != Ordering::Greater)
    }

    fn string_ok(&self, s: &str) -> bool {
        self.scalar_ok(STRING, || Value::String(s.to_owned()))
            && self.length_error(s).is_none()
            && self
                .pattern
                .as_ref()
                .is_none_or(|(_, re)| re.is_match(s).unwrap_or(false))
            && self.format.is_none_or(|f| f.accepts(s))
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn type_reason(types: Types) -> String {
    if types.0.count_ones() == 1 {
        format!("value is not of type {}", types.describe())
    } else {
        format!("value is not of types {}", types.describe())
    }
}

/// One step of a path into the payload.
#[derive(Debug, Clone, Copy)]
enum Segment<'v> {
    Key(&'v str),
    Index(usize),
}

/// A JSON pointer (RFC 6901) from path segments.
fn pointer(path: &[Segment<'_>]) -> String {
    let mut out = String::new();
    for seg in path {
        out.push('/');
        match seg {
            Segment::Key(k) => out.push_str(&k.replace('~', "~0").replace('/', "~1")),
            Segment::Index(i) => out.push_str(&i.to_string()),
        }
    }
    out
}

/// The kind of a value, as `type` sees it: a number without a fractional
/// part is an integer (draft 6 and later).
fn kind_of(value: &Value) -> u8 {
    match value {
        Value::Null => NULL,
        Value::Bool(_) => BOOLEAN,
        Value::Number(n) if is_integer(n) => INTEGER,
        Value::Number(_) => NUMBER,
        Value::String(_) => STRING,
        Value::Array(_) => ARRAY,
        Value::Object(_) => OBJECT,
    }
}

fn is_integer(n: &Number) -> bool {
    n.is_u64() || n.is_i64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
}

/// Exact numeric order of two JSON numbers, whatever their representation.
fn num_cmp(a: &Number, b: &Number) -> Ordering {
    match (Num::of(a), Num::of(b)) {
        (Num::Int(x), Num::Int(y)) => x.cmp(&y),
        (Num::Float(x), Num::Float(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (Num::Int(x), Num::Float(y)) => int_float_cmp(x, y),
        (Num::Float(x), Num::Int(y)) => int_float_cmp(y, x).reverse(),
    }
}

enum Num {
    Int(i128),
    Float(f64),
}

impl Num {
    fn of(n: &Number) -> Self {
        if let Some(u) = n.as_u64() {
            Self::Int(i128::from(u))
        } else if let Some(i) = n.as_i64() {
            Self::Int(i128::from(i))
        } else {
            Self::Float(n.as_f64().unwrap_or(f64::NAN))
        }
    }
}

/// Exact order of an integer and a float (no rounding of the integer).
fn int_float_cmp(i: i128, f: f64) -> Ordering {
    if f.is_nan() {
        return Ordering::Equal;
    }
    // Every i64/u64 lies strictly inside ±2^127.
    const LIMIT: f64 = 1.7014118346046923e38;
    if f >= LIMIT {
        return Ordering::Less;
    }
    if f <= -LIMIT {
        return Ordering::Greater;
    }
    let whole = f.trunc();
    // A float below 2^127 in magnitude converts to i128 exactly.
    #[allow(clippy::cast_possible_truncation)]
    let whole_int = whole as i128;
    match i.cmp(&whole_int) {
        Ordering::Equal => {
            let frac = f - whole;
            if frac > 0.0 {
                Ordering::Less
            } else if frac < 0.0 {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        }
        other => other,
    }
}

/// JSON equality as `const` and `enum` use it: numbers by value (`1` equals
/// `1.0`), objects whatever their member order.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => num_cmp(x, y) == Ordering::Equal,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

/// The keywords [`PayloadValidator::compile`] takes: those it checks, and
/// those that check nothing (`definitions`, read at the root, and
/// annotations).
const KEYWORDS: [&str; 25] = [
    "type",
    "const",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "required",
    "pattern",
    "format",
    "properties",
    "additionalProperties",
    "items",
    "anyOf",
    "oneOf",
    "$ref",
    "definitions",
    "description",
    "title",
    "examples",
    "default",
    "$comment",
    "$schema",
];

struct Compiler<'s> {
    nodes: Vec<Node>,
    definitions: Option<&'s Map<String, Value>>,
    /// Definitions compiled so far: name and node.
    defined: Vec<(&'s str, NodeId)>,
}

impl<'s> Compiler<'s> {
    fn node(&mut self, schema: &'s Value, at: &str) -> Result<NodeId, String> {
        let id = self.nodes.len();
        self.nodes.push(Node::Keywords(Box::default()));
        let Value::Object(o) = schema else {
            return Err(format!("{at}: a schema must be an object"));
        };
        if let Some(reference) = o.get("$ref") {
            let name = reference
                .as_str()
                .and_then(|r| r.strip_prefix("#/definitions/"))
                .ok_or_else(|| {
                    format!("{at}/$ref: only #/definitions/… references are supported")
                })?;
            let target = self.definition(name, at)?;
            self.nodes[id] = Node::Ref(target);
            return Ok(id);
        }
        // A keyword this validator does not check would let payloads
        // through unchecked: refuse the schema instead (generated schemas
        // use only these).
        if let Some(key) = o.keys().find(|key| !KEYWORDS.contains(&key.as_str())) {
            return Err(format!(
                "{at}/{key}: `{key}` is not a keyword the payload validator checks"
            ));
        }
        let mut k = Keywords::default();
        if let Some(t) = o.get("type") {
            let bits = match t {
                Value::String(name) => Types::from_name(name),
                Value::Array(names) => names.iter().try_fold(0, |acc, n| {
                    n.as_str().and_then(Types::from_name).map(|b| acc | b)
                }),
                _ => None,
            }
            .ok_or_else(|| format!("{at}/type: not a type or list of types"))?;
            k.types = Some(Types(bits));
            k.array_fused =
                t.as_str() == Some("array") && o.get("items").is_some_and(Value::is_object);
        }
        k.constant = o.get("const").cloned();
        if let Some(e) = o.get("enum") {
            k.enumeration = Some(
                e.as_array()
                    .ok_or_else(|| format!("{at}/enum: not an array"))?
                    .clone(),
            );
        }
        let number = |key: &str| match o.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(Some(n.clone())),
            Some(_) => Err(format!("{at}/{key}: not a number")),
        };
        k.minimum = number("minimum")?;
        k.maximum = number("maximum")?;
        let count = |key: &str| match o.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| format!("{at}/{key}: not a non-negative integer")),
        };
        k.min_length = count("minLength")?;
        k.max_length = count("maxLength")?;
        k.min_items = count("minItems")?;
        k.max_items = count("maxItems")?;
        if let Some(r) = o.get("required") {
            k.required = r
                .as_array()
                .and_then(|names| {
                    names
                        .iter()
                        .map(|n| n.as_str().map(str::to_owned))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| format!("{at}/required: not a list of names"))?;
        }
        if let Some(p) = o.get("pattern") {
            let source = p
                .as_str()
                .ok_or_else(|| format!("{at}/pattern: not a string"))?;
            let translated = jsonschema_regex::to_rust_regex(source)
                .map_err(|()| format!("{at}/pattern: not a supported regular expression"))?;
            let regex =
                fancy_regex::Regex::new(&translated).map_err(|e| format!("{at}/pattern: {e}"))?;
            k.pattern = Some((source.to_owned(), regex));
        }
        k.format = o
            .get("format")
            .and_then(Value::as_str)
            .and_then(Format::asserted);
        if let Some(props) = o.get("properties") {
            let props = props
                .as_object()
                .ok_or_else(|| format!("{at}/properties: not an object"))?;
            for (name, sub) in props {
                let node = self.node(sub, &format!("{at}/properties/{name}"))?;
                k.properties.push((name.clone(), node));
            }
        }
        k.additional = match o.get("additionalProperties") {
            None | Some(Value::Bool(true)) => None,
            Some(Value::Bool(false)) => Some(Additional::Refused),
            Some(sub) => Some(Additional::Schema(
                self.node(sub, &format!("{at}/additionalProperties"))?,
            )),
        };
        k.late_required = k.additional == Some(Additional::Refused)
            && o.get("properties").is_some()
            && k.required.len() == 1;
        if let Some(items) = o.get("items") {
            k.items = Some(self.node(items, &format!("{at}/items"))?);
        }
        for (key, list) in [("anyOf", &mut k.any_of), ("oneOf", &mut k.one_of)] {
            if let Some(branches) = o.get(key) {
                let branches = branches
                    .as_array()
                    .ok_or_else(|| format!("{at}/{key}: not an array"))?;
                for (i, b) in branches.iter().enumerate() {
                    list.push(self.node(b, &format!("{at}/{key}/{i}"))?);
                }
            }
        }
        let composite = |v: &Value| v.is_array() || v.is_object();
        k.needs_capture = !k.any_of.is_empty()
            || !k.one_of.is_empty()
            || k.constant.as_ref().is_some_and(composite)
            || k.enumeration
                .as_ref()
                .is_some_and(|e| e.iter().any(composite));
        self.nodes[id] = Node::Keywords(Box::new(k));
        Ok(id)
    }

    fn definition(&mut self, name: &str, at: &str) -> Result<NodeId, String> {
        if let Some((_, id)) = self.defined.iter().find(|(n, _)| *n == name) {
            return Ok(*id);
        }
        let (key, schema) = self
            .definitions
            .and_then(|d| d.get_key_value(name))
            .ok_or_else(|| format!("{at}/$ref: no definition `{name}`"))?;
        // Reserve the node first, so that a recursive definition refers to it.
        let id = self.nodes.len();
        self.nodes.push(Node::Keywords(Box::default()));
        self.defined.push((key.as_str(), id));
        let body = self.node(schema, &format!("#/definitions/{name}"))?;
        self.nodes[id] = Node::Ref(body);
        Ok(id)
    }
}

// ---------------------------------------------------------------------------
// The streaming pass.

/// Validates one value as it is deserialized. Errors are serde errors whose
/// text does not matter: any failure sends the payload to the tree pass.
/// `abort` is set when the pass met something whose verdict it does not
/// decide (a repeated key), so a branch of `oneOf` that "fails" that way is
/// not counted as failing.
#[derive(Clone, Copy)]
struct Seed<'a> {
    schema: &'a PayloadValidator,
    node: NodeId,
    abort: &'a Cell<bool>,
}

impl<'a> Seed<'a> {
    fn at(self, node: NodeId) -> Self {
        Self { node, ..self }
    }

    fn keywords(self) -> &'a Keywords {
        self.schema.keywords(self.node)
    }

    /// Whether `text` matches node `node`, by a streaming pass of its own.
    fn text_matches(self, node: NodeId, text: &str) -> bool {
        let mut de = serde_json::Deserializer::from_str(text);
        self.at(node).deserialize(&mut de).is_ok()
    }
}

fn refuse<E: de::Error>() -> E {
    E::custom("refused")
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        let k = self.keywords();
        if !k.needs_capture {
            return deserializer.deserialize_any(KeywordVisitor { seed: self });
        }
        // Unions and composite constants read the value's text more than
        // once: capture it (borrowed from the frame).
        let raw = <&RawValue as de::Deserialize>::deserialize(deserializer)?;
        let text = raw.get();
        if k.any_of.is_empty() && k.one_of.is_empty() {
            // A composite `const`/`enum`: compared on the value's tree.
            let value: Value = serde_json::from_str(text).map_err(|_| refuse::<D::Error>())?;
            return if self.schema.valid(self.node, &value) {
                Ok(())
            } else {
                Err(refuse())
            };
        }
        let mut de = serde_json::Deserializer::from_str(text);
        de.deserialize_any(KeywordVisitor { seed: self })
            .map_err(|_| refuse::<D::Error>())?;
        if !k.any_of.is_empty() && !k.any_of.iter().any(|&b| self.text_matches(b, text)) {
            return Err(refuse());
        }
        if !k.one_of.is_empty() {
            let valid = k
                .one_of
                .iter()
                .filter(|&&b| self.text_matches(b, text))
                .count();
            if valid == 0 || (valid > 1 && k.one_of.len() > 1) {
                return Err(refuse());
            }
        }
        if self.abort.get() {
            return Err(refuse());
        }
        Ok(())
    }
}

/// Checks every keyword of a node but `anyOf`/`oneOf`, which [`Seed`]
/// checks on the captured text.
struct KeywordVisitor<'a> {
    seed: Seed<'a>,
}

impl KeywordVisitor<'_> {
    fn keywords(&self) -> &Keywords {
        self.seed.keywords()
    }

    fn scalar<E: de::Error>(&self, ok: bool) -> Result<(), E> {
        if ok { Ok(()) } else { Err(refuse()) }
    }
}

impl<'de> Visitor<'de> for KeywordVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.scalar(self.keywords().scalar_ok(NULL, || Value::Null))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.scalar(self.keywords().scalar_ok(BOOLEAN, || Value::Bool(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.scalar(self.keywords().number_ok(&Number::from(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.scalar(self.keywords().number_ok(&Number::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        match Number::from_f64(v) {
            Some(n) => self.scalar(self.keywords().number_ok(&n)),
            None => Err(refuse()),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.scalar(self.keywords().string_ok(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let k = self.keywords();
        if let Some(types) = k.types
            && !types.allows(ARRAY)
        {
            return Err(refuse());
        }
        let mut count = 0usize;
        match k.items {
            Some(items) => {
                while seq.next_element_seed(self.seed.at(items))?.is_some() {
                    count += 1;
                }
            }
            None => {
                while seq.next_element::<Anything>()?.is_some() {
                    count += 1;
                }
            }
        }
        if k.count_error(count).is_some() {
            return Err(refuse());
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let k = self.keywords();
        if k.array_fused {
            return Err(refuse());
        }
        if let Some(types) = k.types
            && !types.allows(OBJECT)
        {
            return Err(refuse());
        }
        // Declared properties seen (for `required` and repeated keys).
        let mut seen = SeenSet::new(k.properties.len());
        let mut undeclared: Vec<String> = Vec::new();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let name = key.as_str();
            match k.properties.iter().position(|(p, _)| p == name) {
                Some(i) => {
                    if !seen.insert(i) {
                        self.seed.abort.set(true);
                        return Err(refuse());
                    }
                    map.next_value_seed(self.seed.at(k.properties[i].1))?;
                }
                None => match k.additional {
                    Some(Additional::Refused) => return Err(refuse()),
                    Some(Additional::Schema(node)) => {
                        if undeclared.iter().any(|u| u == name) {
                            self.seed.abort.set(true);
                            return Err(refuse());
                        }
                        undeclared.push(name.to_owned());
                        map.next_value_seed(self.seed.at(node))?;
                    }
                    None => {
                        map.next_value::<Anything>()?;
                    }
                },
            }
        }
        let missing = k.required.iter().any(|name| {
            !k.properties
                .iter()
                .position(|(p, _)| p == name)
                .is_some_and(|i| seen.contains(i))
        });
        // A required name that is not a declared property: only the tree
        // can tell (the pass does not keep undeclared keys unless they have
        // a schema).
        if missing {
            return Err(refuse());
        }
        Ok(())
    }
}

/// A set of small indices (declared properties), without allocating for
/// up to 128 of them.
struct SeenSet {
    bits: u128,
    more: Vec<bool>,
}

impl SeenSet {
    fn new(len: usize) -> Self {
        Self {
            bits: 0,
            more: if len > 128 {
                vec![false; len]
            } else {
                Vec::new()
            },
        }
    }

    /// Adds `i`; `false` if it was there.
    fn insert(&mut self, i: usize) -> bool {
        if self.more.is_empty() {
            let bit = 1u128 << i;
            let fresh = self.bits & bit == 0;
            self.bits |= bit;
            fresh
        } else {
            !std::mem::replace(&mut self.more[i], true)
        }
    }

    fn contains(&self, i: usize) -> bool {
        if self.more.is_empty() {
            self.bits & (1u128 << i) != 0
        } else {
            self.more[i]
        }
    }
}

/// An object key, borrowed from the text when it has no escapes.
struct Key<'de>(std::borrow::Cow<'de, str>);

impl Key<'_> {
    fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// Any JSON value, read to the end as a JSON parser reads it: unlike
/// `IgnoredAny`, numbers are converted, so `1e999` is refused here as it is
/// when the payload is parsed.
struct Anything;

impl<'de> de::Deserialize<'de> for Anything {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AnythingVisitor)
    }
}

struct AnythingVisitor;

impl<'de> Visitor<'de> for AnythingVisitor {
    type Value = Anything;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Anything, E> {
        Ok(Anything)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Anything, E> {
        Ok(Anything)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Anything, E> {
        Ok(Anything)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Anything, E> {
        Ok(Anything)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Anything, E> {
        Ok(Anything)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Anything, E> {
        Ok(Anything)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Anything, A::Error> {
        while seq.next_element::<Anything>()?.is_some() {}
        Ok(Anything)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Anything, A::Error> {
        while map.next_entry::<Key<'de>, Anything>()?.is_some() {}
        Ok(Anything)
    }
}
