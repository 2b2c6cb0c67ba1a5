//! `evcontract breaking`: each rule on a pair of contracts, in both
//! directions, and the command's exit codes.

use std::path::Path;

use evcontract::breaking::{self, Direction, Report, Severity};
use serde_json::{Value, json};

/// One namespace using `Item` both ways: as the payload of the client event
/// `put` (client to server) and of the server event `pushed` (server to
/// client), plus an acked event whose ack is `Receipt`.
fn base() -> Value {
    json!({
        "contract": "evo",
        "version": "1.0.0",
        "definitions": {
            "Item": {
                "type": "object",
                "properties": {
                    "name": { "type": "string", "maxLength": 10 },
                    "count": { "type": "integer" },
                    "kind": { "type": "string", "enum": ["a", "b"] },
                    "note": { "type": "string" },
                    "shape": {
                        "oneOf": [
                            {
                                "type": "object",
                                "properties": { "kind": { "type": "string", "const": "dot" } },
                                "required": ["kind"],
                                "additionalProperties": false
                            },
                            {
                                "type": "object",
                                "properties": { "kind": { "type": "string", "const": "line" }, "len": { "type": "number" } },
                                "required": ["kind", "len"],
                                "additionalProperties": false
                            }
                        ]
                    }
                },
                "required": ["name", "count"],
                "additionalProperties": false
            },
            "Receipt": {
                "type": "object",
                "properties": { "id": { "type": "integer" } },
                "required": ["id"],
                "additionalProperties": false
            },
            "Tree": {
                "type": "object",
                "properties": {
                    "label": { "type": "string" },
                    "children": { "type": "array", "items": { "$ref": "#/definitions/Tree" } }
                },
                "required": ["label"],
                "additionalProperties": false
            }
        },
        "namespaces": {
            "/n": {
                "clientEvents": {
                    "put": { "payload": { "$ref": "#/definitions/Item" } },
                    "ask": {
                        "payload": { "type": "object", "properties": {}, "additionalProperties": false },
                        "ack": { "$ref": "#/definitions/Receipt" },
                        "rateLimit": { "max": 10, "windowMs": 1000 }
                    },
                    "plant": { "payload": { "$ref": "#/definitions/Tree" } }
                },
                "serverEvents": {
                    "pushed": { "payload": { "$ref": "#/definitions/Item" } }
                }
            }
        }
    })
}

fn compare(old: &Value, new: &Value) -> Report {
    let o = breaking::load(
        Path::new("old.json"),
        &serde_json::to_string_pretty(old).unwrap(),
    )
    .unwrap_or_else(|d| panic!("old: {d:?}"));
    let n = breaking::load(
        Path::new("new.json"),
        &serde_json::to_string_pretty(new).unwrap(),
    )
    .unwrap_or_else(|d| panic!("new: {d:?}"));
    breaking::compare(&o.side(), &n.side())
}

/// The severity of `rule` in `dir`, or `None` when not reported.
fn find(report: &Report, rule: &str, dir: Option<Direction>) -> Option<Severity> {
    report
        .changes
        .iter()
        .find(|c| c.rule == rule && c.direction == dir)
        .map(|c| c.severity)
}

const C2S: Option<Direction> = Some(Direction::ClientToServer);
const S2C: Option<Direction> = Some(Direction::ServerToClient);
use Severity::{Breaking, Info, Warning};

/// Applies `edit` to the base and returns the report.
fn after(edit: impl FnOnce(&mut Value)) -> Report {
    let old = base();
    let mut new = base();
    edit(&mut new);
    compare(&old, &new)
}

fn item(v: &mut Value) -> &mut Value {
    &mut v["definitions"]["Item"]
}

#[test]
fn an_unchanged_contract_reports_nothing() {
    let r = after(|_| {});
    assert!(r.changes.is_empty(), "{:#?}", r.changes);
    assert_eq!(r.required_version, None);
}

#[test]
fn properties_added_removed_and_required() {
    // Optional added: old servers refuse it (warning); old clients ignore it.
    let r = after(|v| item(v)["properties"]["extra"] = json!({ "type": "string" }));
    assert_eq!(find(&r, "optional-property-added", C2S), Some(Warning));
    assert_eq!(find(&r, "optional-property-added", S2C), Some(Info));
    // Required added.
    let r = after(|v| {
        item(v)["properties"]["extra"] = json!({ "type": "string" });
        item(v)["required"] = json!(["name", "count", "extra"]);
    });
    assert_eq!(find(&r, "required-property-added", C2S), Some(Breaking));
    assert_eq!(find(&r, "required-property-added", S2C), Some(Info));
    // Removed: required and optional.
    let r = after(|v| {
        item(v)["properties"]
            .as_object_mut()
            .unwrap()
            .remove("count");
        item(v)["required"] = json!(["name"]);
    });
    assert_eq!(find(&r, "property-removed", C2S), Some(Breaking));
    assert_eq!(find(&r, "property-removed", S2C), Some(Breaking));
    let r = after(|v| {
        item(v)["properties"]
            .as_object_mut()
            .unwrap()
            .remove("note");
    });
    assert_eq!(find(&r, "property-removed", C2S), Some(Breaking));
    assert_eq!(find(&r, "property-removed", S2C), Some(Warning));
    // Optional to required, and back.
    let r = after(|v| item(v)["required"] = json!(["name", "count", "note"]));
    assert_eq!(find(&r, "property-now-required", C2S), Some(Breaking));
    assert_eq!(find(&r, "property-now-required", S2C), Some(Info));
    let r = after(|v| item(v)["required"] = json!(["name"]));
    assert_eq!(find(&r, "property-now-optional", C2S), Some(Info));
    assert_eq!(find(&r, "property-now-optional", S2C), Some(Breaking));
}

#[test]
fn enums_types_and_limits() {
    let r = after(|v| item(v)["properties"]["kind"]["enum"] = json!(["a", "b", "c"]));
    assert_eq!(find(&r, "enum-value-added", C2S), Some(Info));
    assert_eq!(find(&r, "enum-value-added", S2C), Some(Breaking));
    let r = after(|v| item(v)["properties"]["kind"]["enum"] = json!(["a"]));
    assert_eq!(find(&r, "enum-value-removed", C2S), Some(Breaking));
    assert_eq!(find(&r, "enum-value-removed", S2C), Some(Info));
    // integer to number, and a nullable added: wider.
    let r = after(|v| item(v)["properties"]["count"]["type"] = json!("number"));
    assert_eq!(find(&r, "type-widened", C2S), Some(Info));
    assert_eq!(find(&r, "type-widened", S2C), Some(Breaking));
    let r = after(|v| item(v)["properties"]["note"]["type"] = json!(["string", "null"]));
    assert_eq!(find(&r, "type-widened", S2C), Some(Breaking));
    // A union grown (a third variant) is wider; one variant fewer, narrower.
    let r = after(|v| {
        item(v)["properties"]["shape"]["oneOf"]
            .as_array_mut()
            .unwrap()
            .push(json!({
                "type": "object",
                "properties": { "kind": { "type": "string", "const": "box" } },
                "required": ["kind"],
                "additionalProperties": false
            }))
    });
    assert_eq!(find(&r, "union-grown", C2S), Some(Info));
    assert_eq!(find(&r, "union-grown", S2C), Some(Breaking));
    let mut three = base();
    item(&mut three)["properties"]["shape"]["oneOf"]
        .as_array_mut()
        .unwrap()
        .push(json!({
            "type": "object",
            "properties": { "kind": { "type": "string", "const": "box" } },
            "required": ["kind"],
            "additionalProperties": false
        }));
    let r = compare(&three, &base());
    assert_eq!(find(&r, "union-shrunk", C2S), Some(Breaking));
    assert_eq!(find(&r, "union-shrunk", S2C), Some(Info));
    // Narrowed, and changed.
    let mut wide = base();
    item(&mut wide)["properties"]["count"]["type"] = json!("number");
    let r = compare(&wide, &base());
    assert_eq!(find(&r, "type-narrowed", C2S), Some(Breaking));
    assert_eq!(find(&r, "type-narrowed", S2C), Some(Info));
    let r = after(|v| item(v)["properties"]["count"]["type"] = json!("string"));
    assert_eq!(find(&r, "type-changed", C2S), Some(Breaking));
    assert_eq!(find(&r, "type-changed", S2C), Some(Breaking));
    // Limits tightened, loosened; pattern and const added.
    let r = after(|v| item(v)["properties"]["name"]["maxLength"] = json!(5));
    assert_eq!(find(&r, "limit-tightened", C2S), Some(Breaking));
    assert_eq!(find(&r, "limit-tightened", S2C), Some(Info));
    let r = after(|v| {
        item(v)["properties"]["name"]
            .as_object_mut()
            .unwrap()
            .remove("maxLength");
    });
    assert_eq!(find(&r, "limit-loosened", C2S), Some(Info));
    assert_eq!(find(&r, "limit-loosened", S2C), Some(Breaking));
    let r = after(|v| item(v)["properties"]["note"]["minLength"] = json!(1));
    assert_eq!(find(&r, "limit-tightened", C2S), Some(Breaking));
    let r = after(|v| item(v)["properties"]["note"]["pattern"] = json!("^[a-z]+$"));
    assert_eq!(find(&r, "constraint-added-or-changed", C2S), Some(Breaking));
    assert_eq!(find(&r, "constraint-added-or-changed", S2C), Some(Info));
    let r = after(|v| item(v)["properties"]["note"]["const"] = json!("x"));
    assert_eq!(find(&r, "constraint-added-or-changed", C2S), Some(Breaking));
}

#[test]
fn events_acks_namespaces_auth_and_rate_limits() {
    let r = after(|v| {
        v["namespaces"]["/n"]["clientEvents"]["new_one"] =
            json!({ "payload": { "type": "string" } })
    });
    assert_eq!(find(&r, "event-added", C2S), Some(Info));
    assert_eq!(r.required_version, None);
    let r = after(|v| {
        v["namespaces"]["/n"]["clientEvents"]
            .as_object_mut()
            .unwrap()
            .remove("put");
    });
    assert_eq!(find(&r, "client-event-removed", C2S), Some(Breaking));
    let r = after(|v| {
        v["namespaces"]["/n"]["serverEvents"]
            .as_object_mut()
            .unwrap()
            .remove("pushed");
    });
    assert_eq!(find(&r, "server-event-removed", S2C), Some(Warning));
    let r = after(|v| {
        v["namespaces"]["/n"]["clientEvents"]["put"]["ack"] = json!({ "type": "string" })
    });
    assert_eq!(find(&r, "ack-added", S2C), Some(Breaking));
    let r = after(|v| {
        v["namespaces"]["/n"]["clientEvents"]["ask"]
            .as_object_mut()
            .unwrap()
            .remove("ack");
    });
    assert_eq!(find(&r, "ack-removed", S2C), Some(Breaking));
    // An ack's schema is judged server to client.
    let r = after(|v| v["definitions"]["Receipt"]["properties"]["id"]["type"] = json!("number"));
    assert_eq!(find(&r, "type-widened", S2C), Some(Breaking));
    assert_eq!(find(&r, "type-widened", C2S), None);
    let mut two = base();
    two["namespaces"]["/m"] =
        json!({ "serverEvents": { "tick": { "payload": { "type": "integer" } } } });
    let r = compare(&two, &base());
    assert_eq!(find(&r, "namespace-removed", None), Some(Breaking));
    let r = after(|v| v["namespaces"]["/n"]["auth"] = json!("required"));
    assert_eq!(find(&r, "auth-required", None), Some(Breaking));
    let r = after(|v| v["namespaces"]["/n"]["clientEvents"]["put"]["auth"] = json!("required"));
    assert_eq!(find(&r, "auth-required", C2S), Some(Breaking));
    let r = after(|v| {
        v["namespaces"]["/n"]["serverEvents"]["tock"] = json!({ "payload": { "type": "integer" } })
    });
    assert_eq!(find(&r, "event-added", S2C), Some(Info));
    let r = after(|v| {
        v["namespaces"]["/n"]["clientEvents"]["ask"]["rateLimit"] =
            json!({ "max": 5, "windowMs": 1000 })
    });
    assert_eq!(find(&r, "rate-limit-tightened", C2S), Some(Breaking));
    let r = after(|v| {
        v["namespaces"]["/n"]["clientEvents"]["ask"]["rateLimit"] =
            json!({ "max": 20, "windowMs": 1000 })
    });
    assert!(r.changes.is_empty(), "{:#?}", r.changes);
    // An acked event that opts out of idempotency: old clients retry it.
    let r = after(|v| v["namespaces"]["/n"]["clientEvents"]["ask"]["idempotent"] = json!(false));
    assert_eq!(find(&r, "idempotency-dropped", C2S), Some(Warning));
    let r = after(|v| v["namespaces"]["/n"]["clientEvents"]["ask"]["idempotent"] = json!(true));
    assert!(r.changes.is_empty(), "{:#?}", r.changes);
}

#[test]
fn recursive_definitions_terminate_and_changes_are_placed() {
    let r = after(|v| v["definitions"]["Tree"]["properties"]["label"]["maxLength"] = json!(3));
    assert_eq!(find(&r, "limit-tightened", C2S), Some(Breaking));
    let change = r
        .changes
        .iter()
        .find(|c| c.rule == "limit-tightened")
        .unwrap();
    // Placed inside the definition, at its line in the new text.
    assert_eq!(
        change.pointer,
        "/definitions/Tree/properties/label/maxLength"
    );
    assert!(change.line.is_some());
    // Reported once per direction although used through recursion.
    assert_eq!(
        r.changes
            .iter()
            .filter(|c| c.rule == "limit-tightened")
            .count(),
        1
    );
}

#[test]
fn a_breaking_change_needs_a_new_major_or_a_new_minor_below_1() {
    let break_it = |v: &mut Value, version: &str| {
        v["version"] = json!(version);
        item(v)["properties"]["count"]["type"] = json!("string");
    };
    assert_eq!(
        after(|v| break_it(v, "1.1.0")).required_version.as_deref(),
        Some("2.0.0")
    );
    assert_eq!(after(|v| break_it(v, "2.0.0")).required_version, None);
    let mut zero = base();
    zero["version"] = json!("0.3.1");
    let mut next = zero.clone();
    break_it(&mut next, "0.3.2");
    assert_eq!(
        compare(&zero, &next).required_version.as_deref(),
        Some("0.4.0")
    );
    break_it(&mut next, "0.4.0");
    assert_eq!(compare(&zero, &next).required_version, None);
}

/// The rules that read schemas read the typed form validation built, so a
/// schema's spelling does not matter, and maps, nullable wrappers and
/// missing `items` are judged by what they accept.
#[test]
fn schemas_are_compared_by_meaning_not_spelling() {
    // `type: [T, "null"]` and `anyOf: [T, null]` are one schema.
    let mut type_array = base();
    item(&mut type_array)["properties"]["note"] = json!({ "type": ["string", "null"] });
    let mut any_of = base();
    item(&mut any_of)["properties"]["note"] =
        json!({ "anyOf": [{ "type": "string" }, { "type": "null" }] });
    let r = compare(&type_array, &any_of);
    assert!(r.changes.is_empty(), "{:#?}", r.changes);
    // Wrapping a definition's use in a nullable changes the type only (the
    // raw comparison saw every property removed).
    let r = after(|v| {
        v["namespaces"]["/n"]["serverEvents"]["pushed"]["payload"] =
            json!({ "anyOf": [{ "$ref": "#/definitions/Item" }, { "type": "null" }] })
    });
    let rules: Vec<_> = r.changes.iter().map(|c| (c.rule, c.severity)).collect();
    assert_eq!(rules, [("type-widened", Breaking)], "{:#?}", r.changes);
    assert_eq!(
        r.changes[0].message,
        "type went from object to object | null (server to client): the server may now send values old clients cannot read"
    );
    // A nullable that was nullable already (through its definition) is no change.
    let mut nullable_def = base();
    nullable_def["definitions"]["Receipt"]["type"] = json!(["object", "null"]);
    let mut wrapped = nullable_def.clone();
    wrapped["namespaces"]["/n"]["clientEvents"]["ask"]["ack"] =
        json!({ "anyOf": [{ "$ref": "#/definitions/Receipt" }, { "type": "null" }] });
    let r = compare(&nullable_def, &wrapped);
    assert!(r.changes.is_empty(), "{:#?}", r.changes);
    // A map's values are compared like any other schema.
    let mut map = base();
    item(&mut map)["properties"]["tags"] =
        json!({ "type": "object", "additionalProperties": { "type": "string" } });
    let mut tighter = map.clone();
    item(&mut tighter)["properties"]["tags"]["additionalProperties"]["maxLength"] = json!(8);
    let r = compare(&map, &tighter);
    assert_eq!(find(&r, "limit-tightened", C2S), Some(Breaking));
    assert_eq!(find(&r, "limit-tightened", S2C), Some(Info));
    let change = r
        .changes
        .iter()
        .find(|c| c.rule == "limit-tightened")
        .unwrap();
    assert_eq!(
        change.pointer,
        "/definitions/Item/properties/tags/additionalProperties/maxLength"
    );
    // An array without `items` holds any value: giving it a type narrows it.
    let mut any_items = base();
    item(&mut any_items)["properties"]["list"] = json!({ "type": "array" });
    let mut typed_items = any_items.clone();
    item(&mut typed_items)["properties"]["list"]["items"] = json!({ "type": "integer" });
    let r = compare(&any_items, &typed_items);
    assert_eq!(find(&r, "type-narrowed", C2S), Some(Breaking));
    assert_eq!(find(&r, "type-narrowed", S2C), Some(Info));
    let r = compare(&typed_items, &any_items);
    let change = r.changes.iter().find(|c| c.rule == "type-widened").unwrap();
    assert_eq!(
        change.message,
        "type went from integer to any (server to client): the server may now send values old clients cannot read"
    );
}

#[test]
fn the_command_exits_0_1_and_2_and_speaks_json() {
    let bin = env!("CARGO_BIN_EXE_evcontract");
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, v: &Value| {
        let p = dir.path().join(name);
        std::fs::write(&p, serde_json::to_string_pretty(v).unwrap()).unwrap();
        p
    };
    let old = write("old.contract.json", &base());
    let mut broken = base();
    item(&mut broken)["properties"]["count"]["type"] = json!("string");
    let new = write("new.contract.json", &broken);
    let run =
        |args: &[&std::ffi::OsStr]| std::process::Command::new(bin).args(args).output().unwrap();

    let o = run(&["breaking".as_ref(), old.as_os_str(), old.as_os_str()]);
    assert_eq!(o.status.code(), Some(0));
    let o = run(&["breaking".as_ref(), old.as_os_str(), new.as_os_str()]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("breaking[type-changed]: type went from integer to string (client to server)"),
        "{out}"
    );
    assert!(out.contains("use 2.0.0"), "{out}");
    assert!(out.contains("new.contract.json:"), "{out}");
    broken["version"] = json!("2.0.0");
    let announced = write("announced.contract.json", &broken);
    let o = run(&[
        "breaking".as_ref(),
        old.as_os_str(),
        announced.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    let changes = doc["comparisons"][0]["report"]["changes"]
        .as_array()
        .unwrap();
    assert!(changes.iter().any(|c| c["rule"] == "type-changed"
        && c["severity"] == "breaking"
        && c["direction"] == "server-to-client"));
    // Bad input: the same diagnostics as `generate`.
    std::fs::write(dir.path().join("bad.contract.json"), "{").unwrap();
    let o = run(&[
        "breaking".as_ref(),
        old.as_os_str(),
        dir.path().join("bad.contract.json").as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid JSON"));
}

#[test]
fn against_a_git_ref_new_contracts_are_fine_and_deleted_ones_break() {
    let bin = env!("CARGO_BIN_EXE_evcontract");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let git = |args: &[&str]| {
        let o = std::process::Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    git(&["init", "-q"]);
    std::fs::create_dir(root.join("schemas")).unwrap();
    std::fs::write(
        root.join("schemas/evo.contract.json"),
        serde_json::to_string_pretty(&base()).unwrap(),
    )
    .unwrap();
    let mut other = base();
    other["contract"] = json!("other");
    std::fs::write(
        root.join("schemas/other.contract.json"),
        serde_json::to_string_pretty(&other).unwrap(),
    )
    .unwrap();
    git(&["add", "."]);
    git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-qm",
        "one",
    ]);
    let run = |args: &[&str]| {
        std::process::Command::new(bin)
            .args(args)
            .current_dir(root)
            .output()
            .unwrap()
    };

    // A contract new since the ref is fine.
    let mut third = base();
    third["contract"] = json!("third");
    std::fs::write(
        root.join("schemas/third.contract.json"),
        serde_json::to_string_pretty(&third).unwrap(),
    )
    .unwrap();
    let o = run(&["breaking", "--against", "HEAD"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    // A deleted one breaks.
    std::fs::remove_file(root.join("schemas/other.contract.json")).unwrap();
    let o = run(&["breaking", "--against", "HEAD"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("breaking[contract-removed]: HEAD:schemas/other.contract.json")
    );
    // An unknown ref is bad input.
    let o = run(&["breaking", "--against", "no-such-ref"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown git ref `no-such-ref`"));
}
