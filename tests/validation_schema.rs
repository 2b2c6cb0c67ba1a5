//! The schema generated servers validate payloads with is normalised from
//! the typed schema nodes (`SchemaNode::validation_schema`), not copied from
//! the contract's text. This test proves the two agree: for every client
//! event of every contract in the repository, payloads generated from the
//! contract's own (raw) schema, valid and broken, get the same verdict from
//! the `jsonschema` crate (draft 7) under the raw schema and under the
//! normalised one. (`runtime/tests/validation_differential.rs` proves the
//! runtime's validator gives `jsonschema`'s verdicts on these shapes.)
//!
//! The seed is fixed; a failure prints the event, both schemas and the
//! payload.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

/// Payloads per client event.
const PER_EVENT: usize = 3_000;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every contract of the repository: the example, the golden cases, the
/// build-script examples.
fn contracts() -> Vec<PathBuf> {
    let mut out = vec![repo().join("schemas/chat.contract.json")];
    let mut dirs = vec![repo().join("examples/build-script")];
    for case in fs::read_dir(repo().join("tests/cases")).expect("tests/cases") {
        dirs.push(case.expect("a case").path());
    }
    for dir in dirs {
        let mut files: Vec<PathBuf> = fs::read_dir(&dir)
            .expect("a folder of contracts")
            .map(|f| f.expect("a file").path())
            .filter(|f| f.to_string_lossy().ends_with(".contract.json"))
            .collect();
        files.sort();
        out.extend(files);
    }
    out
}

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
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// For each supported string format: a string it takes and one it
/// refuses (near misses).
const FORMAT_SAMPLES: [(&str, &str, &str); 4] = [
    ("date-time", "2024-02-29T12:30:00Z", "2024-02-30T12:30:00Z"),
    ("date", "2024-02-29", "2024-13-01"),
    (
        "uuid",
        "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
        "3f2504e0-4f89-11d3-9a0c-0305e82c330",
    ),
    ("email", "ada@example.com", "ada@"),
];

/// A value near `schema`: mostly one it describes, sometimes one a bound,
/// a type or a property away from it, sometimes anything.
fn generate(
    schema: &Value,
    definitions: &Map<String, Value>,
    rng: &mut Rng,
    depth: usize,
) -> Value {
    if depth > 6 || rng.chance(12) {
        return junk(rng);
    }
    let Some(o) = schema.as_object() else {
        return junk(rng);
    };
    if let Some(Value::String(r)) = o.get("$ref") {
        let name = r.trim_start_matches("#/definitions/");
        return match definitions.get(name) {
            Some(def) => generate(def, definitions, rng, depth + 1),
            None => junk(rng),
        };
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(branches)) = o.get(key)
            && !branches.is_empty()
        {
            let branch = &branches[rng.below(branches.len())];
            return generate(branch, definitions, rng, depth + 1);
        }
    }
    if let Some(c) = o.get("const")
        && !rng.chance(4)
    {
        return c.clone();
    }
    if let Some(Value::Array(values)) = o.get("enum")
        && !values.is_empty()
        && !rng.chance(5)
    {
        return values[rng.below(values.len())].clone();
    }
    let ty = match o.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) if !ts.is_empty() => {
            ts[rng.below(ts.len())].as_str().unwrap_or("null")
        }
        _ if o.contains_key("properties") => "object",
        _ => return junk(rng),
    };
    let count = |key: &str| o.get(key).and_then(Value::as_u64);
    // Around a bound: the bound, one past it either way, or in between.
    let around = |lo: Option<u64>, hi: Option<u64>, rng: &mut Rng| -> u64 {
        let lo = lo.unwrap_or(0);
        let hi = hi.unwrap_or(lo + 4).max(lo);
        match rng.below(5) {
            0 => lo.saturating_sub(1),
            1 => lo,
            2 => hi,
            3 => hi + 1,
            _ => lo + rng.below((hi - lo) as usize + 1) as u64,
        }
    };
    match ty {
        "null" => Value::Null,
        "boolean" => Value::Bool(rng.chance(2)),
        "integer" | "number" => {
            let bound = |key: &str| o.get(key).and_then(Value::as_f64);
            let pick = [bound("minimum"), bound("maximum")];
            let base = pick[rng.below(2)].unwrap_or(0.0);
            let n = base + [-1.0, 0.0, 1.0, 0.5][rng.below(4)];
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                json!(n as i64)
            } else {
                json!(n)
            }
        }
        "string" => {
            if let Some(Value::String(format)) = o.get("format")
                && let Some((_, good, bad)) = FORMAT_SAMPLES.iter().find(|(f, ..)| f == format)
                && !rng.chance(8)
            {
                return json!(if rng.chance(4) { bad } else { good });
            }
            if let Some(Value::String(pattern)) = o.get("pattern")
                && !rng.chance(4)
                && let Some(text) = matching(pattern, rng)
            {
                return json!(text);
            }
            let len = around(count("minLength"), count("maxLength"), rng).min(64);
            let alphabet = ['a', 'Z', '0', '-', '_', ' ', 'é', '😀'];
            json!(
                (0..len)
                    .map(|_| alphabet[rng.below(alphabet.len())])
                    .collect::<String>()
            )
        }
        "array" => {
            let len = around(count("minItems"), count("maxItems"), rng).min(8);
            let items = o.get("items").cloned().unwrap_or(json!({}));
            Value::Array(
                (0..len)
                    .map(|_| generate(&items, definitions, rng, depth + 1))
                    .collect(),
            )
        }
        "object" => {
            let mut out = Map::new();
            let required: Vec<&str> = o
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(Value::Object(properties)) = o.get("properties") {
                for (name, schema) in properties {
                    let keep = if required.contains(&name.as_str()) {
                        !rng.chance(10)
                    } else {
                        rng.chance(2)
                    };
                    if keep {
                        out.insert(name.clone(), generate(schema, definitions, rng, depth + 1));
                    }
                }
            }
            match o.get("additionalProperties") {
                Some(Value::Object(values)) => {
                    for i in 0..rng.below(4) {
                        out.insert(
                            format!("k{i}"),
                            generate(&Value::Object(values.clone()), definitions, rng, depth + 1),
                        );
                    }
                }
                _ if rng.chance(8) => {
                    out.insert("extra".to_owned(), junk(rng));
                }
                _ => {}
            }
            Value::Object(out)
        }
        _ => junk(rng),
    }
}

/// A string that a simple `pattern` matches (`^`, `$`, literal
/// characters, classes like `[A-Z0-9_-]`, `\d`, `\w`, and the quantifiers
/// `{n}`, `{n,m}`, `?`, `+`, `*`); `None` for anything else.
fn matching(pattern: &str, rng: &mut Rng) -> Option<String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let choices: Vec<char> = match chars[i] {
            '^' | '$' => {
                i += 1;
                continue;
            }
            '[' => {
                let end = i + chars[i..].iter().position(|&c| c == ']')?;
                let class = &chars[i + 1..end];
                i = end + 1;
                let mut set = Vec::new();
                let mut j = 0;
                while j < class.len() {
                    if j + 2 < class.len() && class[j + 1] == '-' {
                        set.extend(class[j]..=class[j + 2]);
                        j += 3;
                    } else {
                        set.push(class[j]);
                        j += 1;
                    }
                }
                set
            }
            '\\' => {
                let class = *chars.get(i + 1)?;
                i += 2;
                match class {
                    'd' => ('0'..='9').collect(),
                    'w' => ('a'..='z').chain('0'..='9').chain(['_']).collect(),
                    c if c.is_ascii_punctuation() => vec![c],
                    _ => return None,
                }
            }
            '(' | ')' | '|' | '.' | '{' | '+' | '*' | '?' => return None,
            c => {
                i += 1;
                vec![c]
            }
        };
        let (lo, hi) = match chars.get(i) {
            Some('{') => {
                let end = i + chars[i..].iter().position(|&c| c == '}')?;
                let inner: String = chars[i + 1..end].iter().collect();
                i = end + 1;
                match inner.split_once(',') {
                    Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
                    None => {
                        let n = inner.parse().ok()?;
                        (n, n)
                    }
                }
            }
            Some('?') => (0, 1),
            Some('+') => (1, 3),
            Some('*') => (0, 3),
            _ => (1, 1),
        };
        if matches!(chars.get(i), Some('?' | '+' | '*')) {
            i += 1;
        }
        if choices.is_empty() {
            return None;
        }
        for _ in 0..lo + rng.below(hi - lo + 1) {
            out.push(choices[rng.below(choices.len())]);
        }
    }
    Some(out)
}

/// Any small JSON value.
fn junk(rng: &mut Rng) -> Value {
    match rng.below(9) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(0),
        3 => json!(-7),
        4 => json!(2.5),
        5 => json!(""),
        6 => json!("text"),
        7 => json!([]),
        _ => json!({}),
    }
}

/// The event's payload schema as the contract wrote it, made
/// self-contained with all the contract's definitions.
fn raw_schema(payload: Option<&Value>, definitions: &Map<String, Value>) -> Value {
    let mut root = match payload {
        Some(Value::Object(o)) => o.clone(),
        _ => Map::new(),
    };
    root.insert("definitions".to_owned(), Value::Object(definitions.clone()));
    Value::Object(root)
}

fn check(file: &Path, rng: &mut Rng) -> usize {
    let text = fs::read_to_string(file).expect("the contract");
    let contract: Value = serde_json::from_str(&text).expect("JSON");
    let ir = evcontract::load(file, &text).unwrap_or_else(|e| panic!("{}: {e:?}", file.display()));
    let definitions = contract["definitions"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut payloads = 0;
    for ns in &ir.namespaces {
        for ev in &ns.client_events {
            let raw_payload =
                contract["namespaces"][&ns.path]["clientEvents"][&ev.wire_name].get("payload");
            let raw = raw_schema(raw_payload, &definitions);
            let normalised: Value =
                serde_json::from_str(&ev.validation_schema).expect("the normalised schema is JSON");
            let by_raw = jsonschema::draft7::new(&raw).expect("the raw schema compiles");
            let by_normalised =
                jsonschema::draft7::new(&normalised).expect("the normalised schema compiles");
            let mut accepted = 0;
            for _ in 0..PER_EVENT {
                let payload = generate(&raw, &definitions, rng, 0);
                let verdict = by_raw.is_valid(&payload);
                accepted += usize::from(verdict);
                assert_eq!(
                    by_normalised.is_valid(&payload),
                    verdict,
                    "{} {} `{}`: the verdicts differ\n  raw:        {raw}\n  normalised: {normalised}\n  payload:    {payload}",
                    file.display(),
                    ns.path,
                    ev.wire_name,
                );
            }
            // Both kinds of verdict are exercised (an event whose payload
            // takes anything is accepted every time).
            assert!(
                accepted > 0,
                "{} `{}`: no generated payload was valid",
                file.display(),
                ev.wire_name
            );
            payloads += PER_EVENT;
        }
    }
    payloads
}

#[test]
fn the_normalised_schema_gives_the_contracts_verdicts() {
    let mut rng = Rng(0x5eed_2026_1207);
    let files = contracts();
    assert!(files.len() >= 14, "{files:?}");
    let payloads: usize = files.iter().map(|f| check(f, &mut rng)).sum();
    assert!(payloads > 100_000, "{payloads} payloads");
}

#[test]
fn a_nullable_enumeration_takes_null_as_its_types_do() {
    // `"type": ["string", "null"]` with an `enum` refuses null under JSON
    // Schema (the enumeration does not list it), while the generated Rust
    // (`Option<Pick>`) and TypeScript (`"x" | "y" | null`) take it: the
    // normalised schema says what the types say.
    let text = r#"{"contract": "demo", "version": "1.0.0", "namespaces": {"/a": {"clientEvents": {
        "pick": {"payload": {"type": "object", "properties": {
            "c": {"type": ["string", "null"], "enum": ["x", "y"]}}}}}}}}"#;
    let ir = evcontract::load(Path::new("demo.contract.json"), text).expect("valid");
    let schema: Value =
        serde_json::from_str(&ir.namespaces[0].client_events[0].validation_schema).expect("JSON");
    let validator = jsonschema::draft7::new(&schema).expect("compiles");
    assert!(validator.is_valid(&json!({"c": null})), "{schema}");
    assert!(validator.is_valid(&json!({"c": "x"})), "{schema}");
    assert!(!validator.is_valid(&json!({"c": "z"})), "{schema}");
    assert!(!validator.is_valid(&json!({"c": 1})), "{schema}");
}
