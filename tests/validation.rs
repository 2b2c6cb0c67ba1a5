//! One test per validation rule: each asserts the JSON path and the message.

use std::path::Path;

use evcontract::diag::Location;
use evcontract::schema_ir::{Property, SchemaKind, SchemaNode};
use serde_json::{Value, json};

/// A small valid contract that each test breaks in one place.
fn base() -> Value {
    json!({
        "contract": "demo",
        "version": "1.0.0",
        "definitions": {
            "Item": { "type": "object", "properties": { "id": { "type": "string" } }, "required": ["id"] }
        },
        "errors": { "ITEM_GONE": { "description": "gone" } },
        "namespaces": {
            "/items": {
                "auth": "optional",
                "rooms": { "list": { "pattern": "list:{listId}" } },
                "clientEvents": {
                    "add_item": {
                        "payload": { "$ref": "#/definitions/Item" },
                        "ack": { "type": "object", "properties": { "ok": { "type": "boolean" } } },
                        "rateLimit": { "max": 5, "windowMs": 1000 }
                    }
                },
                "serverEvents": {
                    "item_added": { "payload": { "$ref": "#/definitions/Item" } }
                }
            }
        }
    })
}

/// The (pointer, message) of every diagnostic for `contract`.
fn errors(contract: &Value) -> Vec<(String, String)> {
    let text = serde_json::to_string_pretty(contract).unwrap();
    match evcontract::load(Path::new("demo.contract.json"), &text) {
        Ok(_) => Vec::new(),
        Err(diags) => diags
            .into_iter()
            .map(|d| {
                assert_eq!(d.file, Path::new("demo.contract.json"));
                match d.location {
                    Location::Pointer(p) => (p, d.message),
                    Location::LineCol(l, c) => (format!("{l}:{c}"), d.message),
                }
            })
            .collect(),
    }
}

/// Asserts exactly one error, at `path`, whose message contains `needle`.
fn assert_one(contract: &Value, path: &str, needle: &str) {
    let errs = errors(contract);
    assert_eq!(errs.len(), 1, "expected one error, got {errs:#?}");
    assert_eq!(errs[0].0, path, "{errs:#?}");
    assert!(
        errs[0].1.contains(needle),
        "message {:?} lacks {needle:?}",
        errs[0].1
    );
}

/// Sets (or adds) the value at `pointer`; its parent must exist.
fn set(c: &mut Value, pointer: &str, v: Value) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let key = key.replace("~1", "/").replace("~0", "~");
    let parent = c
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("no {parent}"));
    parent.as_object_mut().unwrap().insert(key, v);
}

fn event(c: &mut Value) -> &mut serde_json::Map<String, Value> {
    c.pointer_mut("/namespaces/~1items/clientEvents")
        .unwrap()
        .as_object_mut()
        .unwrap()
}

#[test]
fn base_contract_is_valid() {
    assert_eq!(errors(&base()), Vec::<(String, String)>::new());
}

#[test]
fn json_syntax_error_has_line_and_column() {
    let err = evcontract::load(
        Path::new("x.contract.json"),
        "{\n  \"contract\": \"x\",\n  oops\n}",
    )
    .unwrap_err();
    assert_eq!(err.len(), 1);
    assert_eq!(err[0].location, Location::LineCol(3, 3));
    assert!(
        err[0]
            .message
            .starts_with("invalid JSON: key must be a string"),
        "{}",
        err[0].message
    );
    assert_eq!(
        err[0].to_string(),
        "x.contract.json:3:3: invalid JSON: key must be a string"
    );
}

#[test]
fn unknown_keys_anywhere() {
    let mut c = base();
    c["colour"] = json!("red");
    assert_one(&c, "/colour", "unknown key `colour` in the contract");

    let mut c = base();
    set(
        &mut c,
        "/namespaces/~1items/clientEvents/add_item/acked",
        json!(true),
    );
    assert_one(
        &c,
        "/namespaces/~1items/clientEvents/add_item/acked",
        "unknown key `acked` in a client event",
    );

    let mut c = base();
    set(
        &mut c,
        "/namespaces/~1items/serverEvents/item_added/ack",
        json!({}),
    );
    assert_one(
        &c,
        "/namespaces/~1items/serverEvents/item_added/ack",
        "unknown key `ack` in a server event",
    );

    let mut c = base();
    set(&mut c, "/namespaces/~1items/rooms/list/name", json!("x"));
    assert_one(
        &c,
        "/namespaces/~1items/rooms/list/name",
        "unknown key `name` in a room",
    );

    let mut c = base();
    set(
        &mut c,
        "/namespaces/~1items/clientEvents/add_item/rateLimit/burst",
        json!(2),
    );
    assert_one(
        &c,
        "/namespaces/~1items/clientEvents/add_item/rateLimit/burst",
        "unknown key `burst` in `rateLimit`",
    );
}

#[test]
fn missing_required_keys() {
    let mut c = base();
    c.as_object_mut().unwrap().remove("version");
    assert_one(&c, "", "the contract is missing the required key `version`");
    let mut c = base();
    event(&mut c)["add_item"]
        .as_object_mut()
        .unwrap()
        .remove("payload");
    assert_one(
        &c,
        "/namespaces/~1items/clientEvents/add_item",
        "missing the required key `payload`",
    );
}

#[test]
fn unknown_ref() {
    let mut c = base();
    set(
        &mut c,
        "/namespaces/~1items/serverEvents/item_added/payload",
        json!({ "$ref": "#/definitions/Thing" }),
    );
    assert_one(
        &c,
        "/namespaces/~1items/serverEvents/item_added/payload/$ref",
        "unknown `$ref` `#/definitions/Thing`: there is no definition `Thing`",
    );
}

#[test]
fn external_ref_is_refused() {
    let mut c = base();
    set(
        &mut c,
        "/definitions/Item/properties/id",
        json!({ "$ref": "other.json#/definitions/Id" }),
    );
    assert_one(
        &c,
        "/definitions/Item/properties/id/$ref",
        "only `#/definitions/Name` (the contract's own definitions) can be referenced",
    );
    let mut c = base();
    set(
        &mut c,
        "/definitions/Item/properties/id",
        json!({ "$ref": "#/$defs/Id" }),
    );
    assert_one(
        &c,
        "/definitions/Item/properties/id/$ref",
        "is not supported",
    );
}

#[test]
fn event_names_must_be_snake_case() {
    let mut c = base();
    let ev = event(&mut c).remove("add_item").unwrap();
    event(&mut c).insert("addItem".into(), ev);
    assert_one(
        &c,
        "/namespaces/~1items/clientEvents/addItem",
        "event name `addItem` must be a snake_case identifier",
    );
}

#[test]
fn event_names_colliding_after_case_conversion() {
    let mut c = base();
    let ev = event(&mut c)["add_item"].clone();
    event(&mut c).insert("get_2fa".into(), ev.clone());
    event(&mut c).insert("get2fa".into(), ev);
    assert_one(
        &c,
        "/namespaces/~1items/clientEvents/get2fa",
        "event `get2fa` collides with `get_2fa` after case conversion (both become `Get2fa`)",
    );
}

#[test]
fn reserved_event_names() {
    for name in [
        "connect",
        "connect_error",
        "disconnect",
        "disconnecting",
        "newListener",
        "removeListener",
        "error",
    ] {
        let mut c = base();
        let ev = event(&mut c)["add_item"].clone();
        event(&mut c).insert(name.into(), ev);
        assert_one(
            &c,
            &format!("/namespaces/~1items/clientEvents/{name}"),
            &format!("event name `{name}` is reserved"),
        );
    }
}

#[test]
fn room_patterns_need_well_formed_params() {
    let cases = [
        ("list", "has no `{param}`"),
        ("list:{listId", "`{` without a matching `}`"),
        ("list:listId}", "`}` without a matching `{`"),
        ("list:{}", "`{}` is not a parameter name"),
        ("list:{list-id}", "`{list-id}` is not a parameter name"),
        ("list:{a}:{a}", "repeats the parameter `a`"),
    ];
    for (pattern, needle) in cases {
        let mut c = base();
        set(
            &mut c,
            "/namespaces/~1items/rooms/list/pattern",
            json!(pattern),
        );
        assert_one(&c, "/namespaces/~1items/rooms/list/pattern", needle);
    }
}

#[test]
fn error_codes_cannot_override_built_ins() {
    let mut c = base();
    c["errors"]["RATE_LIMITED"] = json!({});
    assert_one(
        &c,
        "/errors/RATE_LIMITED",
        "error code `RATE_LIMITED` is built in and cannot be redefined",
    );
    let mut c = base();
    c["errors"]["itemGone"] = json!({});
    assert_one(&c, "/errors/itemGone", "must be SCREAMING_SNAKE_CASE");
}

#[test]
fn namespace_paths_must_be_slash_name() {
    for bad in ["items", "/items/sub", "/", "/9lives", "/a b"] {
        let mut c = base();
        let ns = c["namespaces"]
            .as_object_mut()
            .unwrap()
            .remove("/items")
            .unwrap();
        c["namespaces"][bad] = ns;
        let errs = errors(&c);
        if bad == "/" {
            assert!(errs.is_empty(), "`/` is the root namespace: {errs:?}");
            continue;
        }
        let at = format!("/namespaces/{}", bad.replace('/', "~1"));
        assert_one(&c, &at, "must be `/` or `/name`");
    }
}

#[test]
fn rate_limits_of_zero() {
    let mut c = base();
    set(
        &mut c,
        "/namespaces/~1items/clientEvents/add_item/rateLimit/max",
        json!(0),
    );
    assert_one(
        &c,
        "/namespaces/~1items/clientEvents/add_item/rateLimit/max",
        "`max` must be at least 1",
    );
    let mut c = base();
    set(
        &mut c,
        "/namespaces/~1items/clientEvents/add_item/rateLimit/windowMs",
        json!(0),
    );
    assert_one(
        &c,
        "/namespaces/~1items/clientEvents/add_item/rateLimit/windowMs",
        "`windowMs` must be at least 1",
    );
}

#[test]
fn rate_limit_scope_and_payload_budget() {
    let ev = "/namespaces/~1items/clientEvents/add_item";
    for per in ["user", "connection", "ip"] {
        let mut c = base();
        set(&mut c, &format!("{ev}/rateLimit/per"), json!(per));
        set(&mut c, &format!("{ev}/maxPayloadBytes"), json!(4096));
        assert_eq!(errors(&c), Vec::new(), "per {per}");
    }
    let mut c = base();
    set(&mut c, &format!("{ev}/rateLimit/per"), json!("socket"));
    assert_one(
        &c,
        &format!("{ev}/rateLimit/per"),
        "`per` must be \"user\", \"connection\" or \"ip\"",
    );
    for bad in [json!(0), json!(-1), json!("4k"), json!(1.5)] {
        let mut c = base();
        set(&mut c, &format!("{ev}/maxPayloadBytes"), bad.clone());
        assert_one(
            &c,
            &format!("{ev}/maxPayloadBytes"),
            "`maxPayloadBytes` must be a positive integer",
        );
    }
}

#[test]
fn license_and_contact_are_checked() {
    let mut c = base();
    set(&mut c, "/license", json!("MIT"));
    set(
        &mut c,
        "/contact",
        json!({ "name": "Team", "email": "team@example.com" }),
    );
    assert_eq!(errors(&c), Vec::new());
    let mut c = base();
    set(&mut c, "/license", json!(""));
    assert_one(&c, "/license", "`license` must not be empty");
    let mut c = base();
    set(&mut c, "/contact", json!({}));
    assert_one(&c, "/contact", "`contact` needs at least one of");
    let mut c = base();
    set(&mut c, "/contact", json!({ "phone": "1" }));
    assert_one(&c, "/contact/phone", "phone");
}

#[test]
fn idempotent_is_a_boolean_for_acked_events() {
    let ev = "/namespaces/~1items/clientEvents/add_item";
    for ok in [json!(true), json!(false)] {
        let mut c = base();
        set(&mut c, &format!("{ev}/idempotent"), ok.clone());
        assert_eq!(errors(&c), Vec::new(), "idempotent {ok}");
    }
    let mut c = base();
    set(&mut c, &format!("{ev}/idempotent"), json!("yes"));
    assert_one(
        &c,
        &format!("{ev}/idempotent"),
        "`idempotent` must be true or false",
    );
    let mut c = base();
    c["namespaces"]["/items"]["clientEvents"]["add_item"]
        .as_object_mut()
        .unwrap()
        .remove("ack");
    set(&mut c, &format!("{ev}/idempotent"), json!(true));
    assert_one(
        &c,
        &format!("{ev}/idempotent"),
        "`idempotent` applies to events with an `ack`",
    );
}

#[test]
fn unsupported_schema_keywords_are_refused_before_typify() {
    let cases = [
        (
            json!({ "type": "object", "if": {}, "then": {} }),
            vec!["/if", "/then"],
        ),
        (json!({ "not": { "type": "string" } }), vec!["/not"]),
        (
            json!({ "type": "object", "patternProperties": { "^x": {} } }),
            vec!["/patternProperties"],
        ),
        (json!({ "allOf": [{ "type": "string" }] }), vec!["/allOf"]),
    ];
    for (schema, suffixes) in cases {
        let mut c = base();
        set(
            &mut c,
            "/namespaces/~1items/serverEvents/item_added/payload",
            schema,
        );
        let errs = errors(&c);
        let paths: Vec<&str> = errs.iter().map(|(p, _)| p.as_str()).collect();
        let want: Vec<String> = suffixes
            .iter()
            .map(|s| format!("/namespaces/~1items/serverEvents/item_added/payload{s}"))
            .collect();
        assert_eq!(paths, want, "{errs:#?}");
        assert!(
            errs.iter()
                .all(|(_, m)| m.starts_with("unsupported JSON Schema keyword"))
        );
    }
}

#[test]
fn schema_shape_errors() {
    let at = "/namespaces/~1items/serverEvents/item_added/payload";
    let cases = [
        (
            json!({ "type": "string", "minLength": 5, "maxLength": 2 }),
            "/minLength",
            "greater than `maxLength`",
        ),
        (
            json!({ "type": "integer", "minLength": 1 }),
            "/minLength",
            "needs `\"type\": \"string\"`",
        ),
        (
            json!({ "type": "string", "format": "ipv4" }),
            "/format",
            "format `ipv4` is not supported",
        ),
        (
            json!({ "type": "string", "pattern": "(" }),
            "/pattern",
            "not a valid ECMAScript regular expression",
        ),
        (
            json!({ "type": ["string", "integer"] }),
            "/type",
            "one type and \"null\"",
        ),
        (
            json!({ "anyOf": [{ "type": "string" }, { "type": "integer" }] }),
            "/anyOf",
            "only supported for nullable types",
        ),
        (
            json!({ "oneOf": [{ "type": "object", "properties": { "a": { "type": "string" } } }, { "type": "object" }] }),
            "/oneOf",
            "told apart by a tag",
        ),
        (
            json!({ "type": "object", "properties": { "a": {} }, "required": ["b"] }),
            "/required/0",
            "required property `b` is not in `properties`",
        ),
        (
            json!({ "type": "object", "properties": { "userId": {}, "user_id": {} } }),
            "/properties/user_id",
            "both become the Rust field `user_id`",
        ),
        (
            json!({ "type": "object", "properties": { "a": {} }, "additionalProperties": { "type": "string" } }),
            "/additionalProperties",
            "cannot be combined with `properties`",
        ),
        (
            json!({ "$ref": "#/definitions/Item", "type": "object" }),
            "/type",
            "next to `$ref` is ignored",
        ),
        (
            json!({ "type": "array", "items": [{ "type": "string" }] }),
            "/items",
            "tuple `items`",
        ),
    ];
    for (schema, suffix, needle) in cases {
        let mut c = base();
        set(&mut c, at, schema);
        assert_one(&c, &format!("{at}{suffix}"), needle);
    }
}

#[test]
fn definition_names() {
    let mut c = base();
    c["definitions"]["item_list"] = json!({ "type": "string" });
    assert_one(
        &c,
        "/definitions/item_list",
        "must be a PascalCase identifier",
    );
    let mut c = base();
    c["definitions"]["ErrorCode"] = json!({ "type": "string" });
    assert_one(
        &c,
        "/definitions/ErrorCode",
        "is reserved by the generated code",
    );
    for taken in ["ItemsSocket", "ItemsClient", "AckError"] {
        let mut c = base();
        c["definitions"][taken] = json!({ "type": "string" });
        assert_one(
            &c,
            &format!("/definitions/{taken}"),
            "is reserved by the generated code",
        );
    }
    let mut c = base();
    c["definitions"]["WebSocket"] = json!({ "type": "string" });
    assert_eq!(errors(&c), Vec::<(String, String)>::new());
}

#[test]
fn three_errors_are_reported_together() {
    let mut c = base();
    c["colour"] = json!("red");
    set(
        &mut c,
        "/namespaces/~1items/clientEvents/add_item/rateLimit/max",
        json!(0),
    );
    set(
        &mut c,
        "/namespaces/~1items/serverEvents/item_added/payload",
        json!({ "$ref": "#/definitions/Nope" }),
    );
    let errs = errors(&c);
    let paths: Vec<&str> = errs.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/colour",
            "/namespaces/~1items/clientEvents/add_item/rateLimit/max",
            "/namespaces/~1items/serverEvents/item_added/payload/$ref",
        ]
    );
}

#[test]
fn typify_panics_become_diagnostics() {
    // A schema typify cannot convert must give an error, never a crash. The
    // validator refuses the known cases, so drive the guarded call directly.
    let mut ir = evcontract::load(Path::new("demo.contract.json"), &base().to_string()).unwrap();
    let node = |kind| SchemaNode::plain(kind, "/definitions/Item".to_owned());
    // What typify is given: `{"type": "object", "properties": {"a": {"$ref":
    // "#/definitions/Missing"}}}`.
    ir.types[0].node = node(SchemaKind::Object {
        properties: vec![Property {
            wire_name: "a".to_owned(),
            required: false,
            schema: node(SchemaKind::Ref("Missing".to_owned())),
        }],
        closed: false,
    });
    let err =
        evcontract::targets::rust::types_source(&ir, evcontract::targets::rust::Layout::Crate)
            .unwrap_err();
    assert!(err.message.contains("typify"), "{err}");
}

#[test]
fn a_name_typify_would_give_twice_is_refused_with_the_place() {
    // typify names the inline enum of `status` in `HealthStatus`
    // `HealthStatusStatus`: a definition of that name would make two items
    // with one name, and a crate that does not compile.
    let mut c = base();
    c["definitions"]["HealthStatus"] = json!({
        "type": "object",
        "properties": { "status": { "type": "string", "enum": ["ok", "down"] } },
        "required": ["status"]
    });
    c["definitions"]["HealthStatusStatus"] = json!({
        "type": "object", "properties": { "n": { "type": "integer" } }
    });
    c["namespaces"]["/items"]["serverEvents"]["health"] =
        json!({ "payload": { "$ref": "#/definitions/HealthStatus" } });
    c["namespaces"]["/items"]["serverEvents"]["other"] =
        json!({ "payload": { "$ref": "#/definitions/HealthStatusStatus" } });
    let text = serde_json::to_string_pretty(&c).unwrap();
    let file = std::path::PathBuf::from("demo.contract.json");
    let diags = evcontract::generate_all(&[(file, text)], &evcontract::Options::default())
        .unwrap_err()
        .0;
    assert_eq!(diags.len(), 1, "{diags:?}");
    let d = &diags[0];
    assert_eq!(
        d.location,
        Location::Pointer("/definitions/HealthStatusStatus".to_owned())
    );
    assert!(d.position.is_some(), "line and column of the definition");
    assert!(
        d.message
            .contains("two Rust types would be named `HealthStatusStatus`")
            && d.message.contains("`status` in `HealthStatus`"),
        "{}",
        d.message
    );
    // Renamed, the same contract generates.
    let mut ok = c.clone();
    let renamed = ok["definitions"]["HealthStatusStatus"].take();
    ok["definitions"]
        .as_object_mut()
        .unwrap()
        .remove("HealthStatusStatus");
    ok["definitions"]["HealthDetail"] = renamed;
    ok["namespaces"]["/items"]["serverEvents"]["other"] =
        json!({ "payload": { "$ref": "#/definitions/HealthDetail" } });
    let text = serde_json::to_string_pretty(&ok).unwrap();
    let file = std::path::PathBuf::from("demo.contract.json");
    assert!(evcontract::generate_all(&[(file, text)], &evcontract::Options::default()).is_ok());
}

#[test]
fn errors_carry_line_and_column_too() {
    let text = "{\n  \"contract\": \"demo\",\n  \"version\": \"1.0.0\",\n  \"colour\": 1,\n  \"namespaces\": {\"/a\": {}}\n}";
    let err = evcontract::load(Path::new("d.contract.json"), text).unwrap_err();
    assert_eq!(err.len(), 1);
    assert_eq!(err[0].position, Some((4, 3)));
    assert!(
        err[0]
            .to_string()
            .starts_with("d.contract.json:4:3: /colour: unknown key `colour`"),
        "{}",
        err[0]
    );
}

#[test]
fn boolean_schemas_are_refused() {
    let mut c = base();
    set(
        &mut c,
        "/namespaces/~1items/serverEvents/item_added/payload",
        json!(true),
    );
    assert_one(
        &c,
        "/namespaces/~1items/serverEvents/item_added/payload",
        "use `{}` for any value",
    );
}

#[test]
fn yaml_contracts_are_read_like_json() {
    let yaml = serde_norway::to_string(&base()).unwrap();
    let from_yaml = evcontract::load(Path::new("demo.contract.yaml"), &yaml).unwrap();
    let from_json = evcontract::load(Path::new("demo.contract.json"), &base().to_string()).unwrap();
    assert_eq!(
        serde_json::to_value(&from_yaml.namespaces).unwrap(),
        serde_json::to_value(&from_json.namespaces).unwrap()
    );

    // Validation errors keep their JSON pointer.
    let mut c = base();
    c["colour"] = json!("red");
    let err = evcontract::load(
        Path::new("d.contract.yml"),
        &serde_norway::to_string(&c).unwrap(),
    )
    .unwrap_err();
    assert_eq!(err.len(), 1);
    assert_eq!(err[0].location, Location::Pointer("/colour".into()));

    // Syntax errors have a line and column.
    let err = evcontract::load(
        Path::new("d.contract.yaml"),
        "contract: demo\nversion: [1\n",
    )
    .unwrap_err();
    assert_eq!(err.len(), 1);
    assert!(
        matches!(err[0].location, Location::LineCol(2..=3, _)),
        "{:?}",
        err[0]
    );
    assert!(
        err[0].message.starts_with("invalid YAML: "),
        "{}",
        err[0].message
    );
}

#[test]
fn definitions_that_only_refer_to_themselves() {
    // Found by the `contract_text` fuzz target: typify recursed on it until
    // the stack overflowed.
    let mut c = base();
    set(
        &mut c,
        "/definitions/Loop",
        json!({ "$ref": "#/definitions/Loop" }),
    );
    assert_one(
        &c,
        "/definitions/Loop/$ref",
        "definition `Loop` is only a `$ref` to itself (Loop → Loop)",
    );

    // Through another definition: both are reported, each from its own place.
    let mut c = base();
    set(
        &mut c,
        "/definitions/A",
        json!({ "$ref": "#/definitions/B" }),
    );
    set(
        &mut c,
        "/definitions/B",
        json!({ "$ref": "#/definitions/A" }),
    );
    let errs = errors(&c);
    assert_eq!(
        errs.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
        ["/definitions/A/$ref", "/definitions/B/$ref"],
        "{errs:#?}"
    );
    assert!(errs[0].1.contains("(A → B → A)"), "{errs:#?}");

    // Recursion through a property is a real type and stays allowed.
    let mut c = base();
    set(
        &mut c,
        "/definitions/Tree",
        json!({ "type": "object", "properties": { "children": { "type": "array", "items": { "$ref": "#/definitions/Tree" } } } }),
    );
    assert_eq!(errors(&c), Vec::new());
}

/// An object schema nested `levels` deep (each level one property `n`).
fn nested(levels: usize) -> Value {
    let mut schema = json!({ "type": "string" });
    for _ in 1..levels {
        schema = json!({ "type": "object", "properties": { "n": schema } });
    }
    schema
}

#[test]
fn schemas_nest_at_most_32_levels() {
    let mut c = base();
    set(
        &mut c,
        "/namespaces/~1items/serverEvents/item_added/payload",
        nested(evcontract::validate::MAX_SCHEMA_DEPTH + 1),
    );
    let deepest = format!(
        "/namespaces/~1items/serverEvents/item_added/payload{}",
        "/properties/n".repeat(evcontract::validate::MAX_SCHEMA_DEPTH)
    );
    assert_one(&c, &deepest, "schema nested more than 32 levels deep");
}

#[test]
fn a_schema_at_the_depth_limit_generates() {
    // In a debug build on a test thread: the generator must not run out of
    // stack on the deepest schema the validator accepts (41 levels did).
    let mut c = base();
    set(
        &mut c,
        "/namespaces/~1items/serverEvents/item_added/payload",
        nested(evcontract::validate::MAX_SCHEMA_DEPTH),
    );
    let text = serde_json::to_string(&c).unwrap();
    let templates = evcontract::templates::Templates::new().unwrap();
    let files = evcontract::generate_contract(
        Path::new("demo.contract.json"),
        &text,
        &evcontract::Options::default(),
        &templates,
    )
    .unwrap();
    assert!(files.iter().any(|f| f.path.ends_with("types.rs")));
}
