//! `evcontract breaking`: does a contract change break the clients and
//! servers already deployed?
//!
//! Two validated contracts are compared event by event, and payload schemas
//! property by property, in the direction the data flows: the receiver must
//! accept everything the sender may send. Client events' payloads flow
//! client to server (old clients keep sending the old shape to the new
//! server); server events' payloads and client events' acks flow server to
//! client (old clients receive the new shape). A change inside a shared
//! definition is judged at every place that uses it, in that place's
//! direction.
//!
//! Schemas are compared in the typed form validation built
//! ([`SchemaNode`]), not as raw JSON: two spellings of one schema (a
//! `type` array with `"null"` and an `anyOf` with `{"type": "null"}`) are the
//! same schema, and wrapping a schema in a nullable one changes its type
//! only.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::contract::{AuthMode, Contract};
use crate::diag::{Diagnostic, Pointer, readable};
use crate::schema_ir::{Property, SchemaKind, SchemaNode};
use crate::source_map::SourceMap;

/// How bad a change is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Deployed peers fail.
    Breaking,
    /// Deployed peers may fail, depending on what they do.
    Warning,
    /// Nothing deployed fails.
    Info,
}

/// Which way the data that changed flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Client events' payloads.
    ClientToServer,
    /// Server events' payloads and acks.
    ServerToClient,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ClientToServer => "client to server",
            Self::ServerToClient => "server to client",
        })
    }
}

/// Who fails when the change is deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Breaks {
    /// Clients generated from the old contract.
    OldClients,
    /// Servers generated from the old contract (talking to new clients).
    OldServers,
    /// Nobody.
    Nobody,
}

impl fmt::Display for Breaks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::OldClients => "old clients",
            Self::OldServers => "old servers",
            Self::Nobody => "nobody",
        })
    }
}

/// One difference between the old and the new contract.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// The rule, such as `property-removed`.
    pub rule: &'static str,
    /// How bad it is.
    pub severity: Severity,
    /// Which way the changed data flows (`None` for namespace-level rules).
    pub direction: Option<Direction>,
    /// Who fails.
    pub breaks: Breaks,
    /// Where, as a JSON pointer (RFC 6901) into the new contract, or into the
    /// old one for something removed.
    pub pointer: String,
    /// The file the pointer is into.
    pub file: PathBuf,
    /// Line and column of the pointer in that file.
    pub line: Option<usize>,
    /// Column, with `line`.
    pub column: Option<usize>,
    /// One sentence: what changed and why it matters.
    pub message: String,
}

/// The comparison of two contracts.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The old contract's version.
    pub old_version: String,
    /// The new contract's version.
    pub new_version: String,
    /// Every change found, breaking ones first.
    pub changes: Vec<Change>,
    /// The version the new contract needs to announce its breaking changes,
    /// when it does not (a new major, or a new minor below 1.0).
    pub required_version: Option<String>,
}

impl Report {
    /// Whether some change is breaking.
    pub fn has_breaking(&self) -> bool {
        self.changes
            .iter()
            .any(|c| c.severity == Severity::Breaking)
    }
}

/// One side of the comparison.
pub struct Side<'a> {
    /// The file (for positions and messages).
    pub file: &'a Path,
    /// The validated contract.
    pub contract: &'a Contract,
    /// Positions in its text.
    pub map: &'a SourceMap,
    /// The typed schema of every definition, payload and ack, by pointer,
    /// as validation built it: what payloads are compared on.
    pub schemas: &'a BTreeMap<String, SchemaNode>,
}

/// Compares `old` with `new`.
pub fn compare(old: &Side<'_>, new: &Side<'_>) -> Report {
    let mut diff = Diff {
        old,
        new,
        changes: Vec::new(),
        seen: HashSet::new(),
    };
    diff.contracts();
    let mut changes = diff.changes;
    changes.sort_by(|a, b| (a.severity, &a.pointer).cmp(&(b.severity, &b.pointer)));
    let mut report = Report {
        old_version: old.contract.version.clone(),
        new_version: new.contract.version.clone(),
        changes,
        required_version: None,
    };
    if report.has_breaking() {
        report.required_version = required_version(&report.old_version, &report.new_version);
    }
    report
}

/// The version that announces a breaking change after `old`, when `new`
/// does not: the next major from 1.0 on, the next minor below it.
fn required_version(old: &str, new: &str) -> Option<String> {
    let old = semver::Version::parse(old).ok()?;
    let needed = if old.major == 0 {
        semver::Version::new(0, old.minor + 1, 0)
    } else {
        semver::Version::new(old.major + 1, 0, 0)
    };
    match semver::Version::parse(new) {
        Ok(new) if new >= needed => None,
        _ => Some(needed.to_string()),
    }
}

struct Diff<'a, 'b> {
    old: &'b Side<'a>,
    new: &'b Side<'a>,
    changes: Vec<Change>,
    /// (rule, pointer, direction) already reported: a definition used in
    /// several places is reported once per direction.
    seen: HashSet<(&'static str, String, Option<Direction>)>,
}

/// The events of one direction, and what removing one breaks.
struct EventSide {
    /// The contract key (`clientEvents`, `serverEvents`).
    key: &'static str,
    /// How messages name them.
    label: &'static str,
    direction: Direction,
    removed_rule: &'static str,
    removed_severity: Severity,
    removed_why: &'static str,
}

const CLIENT_EVENTS: EventSide = EventSide {
    key: "clientEvents",
    label: "client event",
    direction: Direction::ClientToServer,
    removed_rule: "client-event-removed",
    removed_severity: Severity::Breaking,
    removed_why: "old clients still send it and get UNKNOWN_EVENT (or wait for an ack that never comes)",
};

const SERVER_EVENTS: EventSide = EventSide {
    key: "serverEvents",
    label: "server event",
    direction: Direction::ServerToClient,
    removed_rule: "server-event-removed",
    removed_severity: Severity::Warning,
    removed_why: "old clients that wait for it wait forever",
};

/// Which side a pointer is into.
#[derive(Clone, Copy)]
enum At {
    Old,
    New,
}

impl<'a> Diff<'a, '_> {
    #[allow(clippy::too_many_arguments)]
    fn report(
        &mut self,
        rule: &'static str,
        severity: Severity,
        direction: Option<Direction>,
        breaks: Breaks,
        at: At,
        pointer: &str,
        message: String,
    ) {
        if !self.seen.insert((rule, pointer.to_owned(), direction)) {
            return;
        }
        let side = match at {
            At::Old => self.old,
            At::New => self.new,
        };
        let position = side.map.position(pointer);
        self.changes.push(Change {
            rule,
            severity,
            direction,
            breaks,
            pointer: pointer.to_owned(),
            file: side.file.to_owned(),
            line: position.map(|p| p.0),
            column: position.map(|p| p.1),
            message,
        });
    }

    fn contracts(&mut self) {
        let (old, new) = (self.old.contract, self.new.contract);
        let root = Pointer::root().join("namespaces");
        for (path, old_ns) in &old.namespaces {
            let at = root.join(path);
            let Some(new_ns) = new.namespaces.get(path) else {
                self.report(
                    "namespace-removed",
                    Severity::Breaking,
                    None,
                    Breaks::OldClients,
                    At::Old,
                    at.as_str(),
                    format!(
                        "namespace `{path}` was removed: old clients can no longer connect to it"
                    ),
                );
                continue;
            };
            if old_ns.auth == AuthMode::Optional && new_ns.auth == AuthMode::Required {
                self.report(
                    "auth-required",
                    Severity::Breaking,
                    None,
                    Breaks::OldClients,
                    At::New,
                    at.join("auth").as_str(),
                    format!("namespace `{path}` now requires a token: old clients that connect without one are refused"),
                );
            }
            for (name, old_room) in &old_ns.rooms {
                let Some(old_history) = old_room.history else {
                    continue;
                };
                let new_history = new_ns.rooms.get(name).and_then(|r| r.history);
                let shrunk = new_history.is_none_or(|n| {
                    n.size < old_history.size || n.ttl_seconds < old_history.ttl_seconds
                });
                if shrunk && new_ns.rooms.contains_key(name) {
                    let now = new_history.map_or_else(
                        || "none".to_owned(),
                        |n| format!("{} events, {} s", n.size, n.ttl_seconds),
                    );
                    self.report(
                        "history-shrunk",
                        Severity::Warning,
                        Some(Direction::ServerToClient),
                        Breaks::OldClients,
                        At::New,
                        at.join("rooms").join(name).as_str(),
                        format!(
                            "the history of room `{name}` went from {} events, {} s to {now}: clients that reconnect are told `recovered: false` sooner",
                            old_history.size, old_history.ttl_seconds
                        ),
                    );
                }
            }
            for (name, new_room) in &new_ns.rooms {
                let old_cap = old_ns.rooms.get(name).map(|r| r.max_members);
                let tighter = match (old_cap, new_room.max_members) {
                    (Some(Some(o)), Some(n)) => n < o,
                    (Some(None), Some(_)) => true,
                    _ => false,
                };
                if tighter {
                    let was = old_cap
                        .flatten()
                        .map_or_else(|| "no cap".to_owned(), |o| o.to_string());
                    self.report(
                        "room-cap-tightened",
                        Severity::Breaking,
                        Some(Direction::ClientToServer),
                        Breaks::OldClients,
                        At::New,
                        at.join("rooms").join(name).join("maxMembers").as_str(),
                        format!(
                            "the member cap of room `{name}` went from {was} to {}: old clients joining a room past it get ROOM_FULL",
                            new_room.max_members.unwrap_or_default()
                        ),
                    );
                }
            }
            self.event_map(
                &CLIENT_EVENTS,
                &old_ns.client_events,
                &new_ns.client_events,
                &at,
                |this, name, old_event, new_event, event_at| {
                    let old_auth = old_event.auth.unwrap_or(old_ns.auth);
                    let new_auth = new_event.auth.unwrap_or(new_ns.auth);
                    if old_auth == AuthMode::Optional && new_auth == AuthMode::Required {
                        this.report(
                            "auth-required",
                            Severity::Breaking,
                            Some(Direction::ClientToServer),
                            Breaks::OldClients,
                            At::New,
                            event_at.as_str(),
                            format!("client event `{name}` now requires an authenticated connection: anonymous old clients get AUTH_REQUIRED"),
                        );
                    }
                    if let (Some(o), Some(n)) = (old_event.rate_limit, new_event.rate_limit) {
                        // Compare rates: max per window, cross-multiplied.
                        let tighter = u128::from(n.max) * u128::from(o.window_ms)
                            < u128::from(o.max) * u128::from(n.window_ms);
                        if tighter {
                            this.report(
                                "rate-limit-tightened",
                                Severity::Breaking,
                                Some(Direction::ClientToServer),
                                Breaks::OldClients,
                                At::New,
                                event_at.join("rateLimit").as_str(),
                                format!("the rate limit of `{name}` went from {} per {} ms to {} per {} ms: old clients sending at the old rate get RATE_LIMITED", o.max, o.window_ms, n.max, n.window_ms),
                            );
                        }
                    } else if old_event.rate_limit.is_none() && new_event.rate_limit.is_some() {
                        this.report(
                            "rate-limit-tightened",
                            Severity::Breaking,
                            Some(Direction::ClientToServer),
                            Breaks::OldClients,
                            At::New,
                            event_at.join("rateLimit").as_str(),
                            format!("`{name}` gained a rate limit: old clients sending faster get RATE_LIMITED"),
                        );
                    }
                    let idempotent = |e: &crate::contract::ClientEvent| {
                        e.ack.is_some() && e.idempotent.unwrap_or(true)
                    };
                    if idempotent(old_event) && !idempotent(new_event) && new_event.ack.is_some() {
                        this.report(
                            "idempotency-dropped",
                            Severity::Warning,
                            Some(Direction::ClientToServer),
                            Breaks::OldClients,
                            At::New,
                            event_at.join("idempotent").as_str(),
                            format!("`{name}` is no longer idempotent: old clients still retry it after a lost answer, and each retry now runs the handler again"),
                        );
                    }
                    this.schema_at(Direction::ClientToServer, &event_at.join("payload"));
                    match (&old_event.ack, &new_event.ack) {
                        (None, Some(_)) => this.report(
                            "ack-added",
                            Severity::Breaking,
                            Some(Direction::ServerToClient),
                            Breaks::OldClients,
                            At::New,
                            event_at.join("ack").as_str(),
                            format!("`{name}` is now acked: old clients send it without asking for an ack, and its answer never reaches them"),
                        ),
                        (Some(_), None) => this.report(
                            "ack-removed",
                            Severity::Breaking,
                            Some(Direction::ServerToClient),
                            Breaks::OldClients,
                            At::Old,
                            event_at.join("ack").as_str(),
                            format!("`{name}` is no longer acked: old clients wait for an ack until they time out"),
                        ),
                        (Some(_), Some(_)) => {
                            this.schema_at(Direction::ServerToClient, &event_at.join("ack"));
                        }
                        (None, None) => {}
                    }
                },
            );
            self.event_map(
                &SERVER_EVENTS,
                &old_ns.server_events,
                &new_ns.server_events,
                &at,
                |this, _, _, _, event_at| {
                    this.schema_at(Direction::ServerToClient, &event_at.join("payload"));
                },
            );
        }
        for path in new.namespaces.keys() {
            if !old.namespaces.contains_key(path) {
                self.report(
                    "namespace-added",
                    Severity::Info,
                    None,
                    Breaks::Nobody,
                    At::New,
                    root.join(path).as_str(),
                    format!("namespace `{path}` was added"),
                );
            }
        }
    }

    /// Compares the events of one direction: removed ones as `side` says,
    /// added ones as info, and `each` on the events both contracts have.
    fn event_map<E>(
        &mut self,
        side: &EventSide,
        old: &'a indexmap::IndexMap<String, E>,
        new: &'a indexmap::IndexMap<String, E>,
        ns_at: &Pointer,
        mut each: impl FnMut(&mut Self, &str, &'a E, &'a E, &Pointer),
    ) {
        for (name, old_event) in old {
            let at = ns_at.join(side.key).join(name);
            match new.get(name) {
                Some(new_event) => each(self, name, old_event, new_event, &at),
                None => self.report(
                    side.removed_rule,
                    side.removed_severity,
                    Some(side.direction),
                    Breaks::OldClients,
                    At::Old,
                    at.as_str(),
                    format!(
                        "{} `{name}` was removed or renamed: {}",
                        side.label, side.removed_why
                    ),
                ),
            }
        }
        for name in new.keys().filter(|n| !old.contains_key(*n)) {
            self.report(
                "event-added",
                Severity::Info,
                Some(side.direction),
                Breaks::Nobody,
                At::New,
                ns_at.join(side.key).join(name).as_str(),
                format!("{} `{name}` was added", side.label),
            );
        }
    }

    /// Reports a narrowing (the receiver accepts less) or a widening (the
    /// sender may send more) in `dir`.
    #[allow(clippy::too_many_arguments)]
    fn narrowed_or_widened(
        &mut self,
        dir: Direction,
        narrowed: bool,
        rule: &'static str,
        at: At,
        pointer: &Pointer,
        what: String,
    ) {
        // Client to server: a narrower schema refuses what old clients send.
        // Server to client: a wider schema sends what old clients cannot read.
        let breaking = match dir {
            Direction::ClientToServer => narrowed,
            Direction::ServerToClient => !narrowed,
        };
        let (severity, breaks, why) = if breaking {
            let why = match dir {
                Direction::ClientToServer => {
                    "the server now refuses some payloads old clients send"
                }
                Direction::ServerToClient => {
                    "the server may now send values old clients cannot read"
                }
            };
            (Severity::Breaking, Breaks::OldClients, why)
        } else {
            (
                Severity::Info,
                Breaks::Nobody,
                "everything old peers send or read is still accepted",
            )
        };
        self.report(
            rule,
            severity,
            Some(dir),
            breaks,
            at,
            pointer.as_str(),
            format!("{what} ({dir}): {why}"),
        );
    }

    /// Compares the schemas at `pointer` (a payload or an ack, the same
    /// place in both contracts) of data flowing in `dir`.
    fn schema_at(&mut self, dir: Direction, pointer: &Pointer) {
        let (Some(old), Some(new)) = (
            self.old.schemas.get(pointer.as_str()),
            self.new.schemas.get(pointer.as_str()),
        ) else {
            return;
        };
        self.schema(dir, old, new, &mut HashSet::new());
    }

    /// Compares two schemas of data flowing in `dir`. Each node knows its
    /// place (its pointer), which is a definition's once a `$ref` was
    /// followed.
    fn schema(
        &mut self,
        dir: Direction,
        old: &'a SchemaNode,
        new: &'a SchemaNode,
        visited: &mut HashSet<(&'a str, &'a str)>,
    ) {
        let old = self.resolve(At::Old, old);
        let new = self.resolve(At::New, new);
        // A recursive definition is compared once per pair of places.
        if !visited.insert((&old.pointer, &new.pointer)) {
            return;
        }
        // `null` allowed or not is part of the type; the rest is the inner
        // schema's (itself possibly a `$ref`).
        let (old_core, old_null) = self.unwrap_nullable(At::Old, old);
        let (new_core, new_null) = self.unwrap_nullable(At::New, new);
        let type_set = |core: &SchemaNode, null: bool| {
            types_of(&core.kind).map(|mut set| {
                if null {
                    set.insert("null");
                }
                set
            })
        };
        self.types(
            dir,
            type_set(old_core, old_null),
            type_set(new_core, new_null),
            &Pointer::from_text(&new.pointer),
        );
        let (o, n) = (&old_core.kind, &new_core.kind);
        let (old_at, new_at) = (
            Pointer::from_text(&old_core.pointer),
            Pointer::from_text(&new_core.pointer),
        );
        self.enums(dir, o, n, &new_at);
        self.limits(dir, o, n, &old_at, &new_at);
        self.properties(dir, o, n, &old_at, &new_at, visited);
        match (o, n) {
            (SchemaKind::Array { items: oi, .. }, SchemaKind::Array { items: ni, .. })
            | (SchemaKind::Map(oi), SchemaKind::Map(ni)) => self.schema(dir, oi, ni, visited),
            (
                SchemaKind::TaggedUnion { variants: ov, .. },
                SchemaKind::TaggedUnion { variants: nv, .. },
            ) => {
                if nv.len() != ov.len() {
                    self.narrowed_or_widened(
                        dir,
                        nv.len() < ov.len(),
                        if nv.len() > ov.len() {
                            "union-grown"
                        } else {
                            "union-shrunk"
                        },
                        At::New,
                        &new_at.join("oneOf"),
                        format!("`oneOf` went from {} to {} variants", ov.len(), nv.len()),
                    );
                }
                for (ov, nv) in ov.iter().zip(nv) {
                    self.schema(dir, ov, nv, visited);
                }
            }
            _ => {}
        }
    }

    /// Follows a `$ref` to its definition (once; the validator refuses
    /// chains of bare references).
    fn resolve(&self, at: At, node: &'a SchemaNode) -> &'a SchemaNode {
        let side = match at {
            At::Old => self.old,
            At::New => self.new,
        };
        match &node.kind {
            SchemaKind::Ref(name) => side
                .schemas
                .get(Pointer::root().join("definitions").join(name).as_str())
                .unwrap_or(node),
            _ => node,
        }
    }

    /// The schema inside a nullable one (its `$ref` followed, and that
    /// definition's own nullability too), and whether `null` is allowed.
    fn unwrap_nullable(&self, at: At, mut node: &'a SchemaNode) -> (&'a SchemaNode, bool) {
        let mut null = false;
        while let SchemaKind::Nullable(inner) = &node.kind {
            null = true;
            node = self.resolve(at, inner);
        }
        (node, null)
    }

    /// The accepted types: `None` is any value.
    fn types(
        &mut self,
        dir: Direction,
        ot: Option<BTreeSet<&'static str>>,
        nt: Option<BTreeSet<&'static str>>,
        at: &Pointer,
    ) {
        if ot == nt {
            return;
        }
        let (widened, narrowed) = match (&ot, &nt) {
            (Some(ot), Some(nt)) => (
                ot.iter().all(|t| accepts(nt, t)),
                nt.iter().all(|t| accepts(ot, t)),
            ),
            // Any value before, some types now: narrower; and the other way.
            (None, _) => (false, true),
            (_, None) => (true, false),
        };
        let what = format!(
            "type went from {} to {}",
            list(ot.as_ref()),
            list(nt.as_ref())
        );
        match (widened, narrowed) {
            (true, _) => self.narrowed_or_widened(
                dir,
                false,
                "type-widened",
                At::New,
                &at.join("type"),
                what,
            ),
            (false, true) => self.narrowed_or_widened(
                dir,
                true,
                "type-narrowed",
                At::New,
                &at.join("type"),
                what,
            ),
            (false, false) => self.report(
                "type-changed",
                Severity::Breaking,
                Some(dir),
                Breaks::OldClients,
                At::New,
                at.join("type").as_str(),
                format!("{what} ({dir}): old peers send or expect the old type"),
            ),
        }
    }

    fn enums(&mut self, dir: Direction, o: &SchemaKind, n: &SchemaKind, at: &Pointer) {
        let (ov, nv) = (enumeration(o), enumeration(n));
        // An empty list is no `enum`: any string.
        if ov.is_empty() || nv.is_empty() {
            return;
        }
        let added: Vec<&String> = nv.iter().filter(|v| !ov.contains(v)).collect();
        let removed: Vec<&String> = ov.iter().filter(|v| !nv.contains(v)).collect();
        if !added.is_empty() {
            self.narrowed_or_widened(
                dir,
                false,
                "enum-value-added",
                At::New,
                &at.join("enum"),
                format!(
                    "enum value(s) {} added (closed enums in Rust and TypeScript)",
                    values(&added)
                ),
            );
        }
        if !removed.is_empty() {
            self.narrowed_or_widened(
                dir,
                true,
                "enum-value-removed",
                At::New,
                &at.join("enum"),
                format!("enum value(s) {} removed", values(&removed)),
            );
        }
    }

    fn limits(
        &mut self,
        dir: Direction,
        o: &SchemaKind,
        n: &SchemaKind,
        old_at: &Pointer,
        new_at: &Pointer,
    ) {
        // (keyword, true when a larger value accepts more)
        for (key, larger_accepts_more) in [
            ("maxLength", true),
            ("maxItems", true),
            ("maximum", true),
            ("minLength", false),
            ("minItems", false),
            ("minimum", false),
        ] {
            let (ov, nv) = (limit(o, key), limit(n, key));
            let narrowed = match (ov, nv) {
                (None, None) => continue,
                (None, Some(_)) => true,
                (Some(_), None) => false,
                (Some(a), Some(b)) if a == b => continue,
                (Some(a), Some(b)) => (b < a) == larger_accepts_more,
            };
            let (at_side, at) = if nv.is_some() {
                (At::New, new_at)
            } else {
                (At::Old, old_at)
            };
            let what = format!("`{key}` went from {} to {}", opt(ov), opt(nv));
            let rule = if narrowed {
                "limit-tightened"
            } else {
                "limit-loosened"
            };
            self.narrowed_or_widened(dir, narrowed, rule, at_side, &at.join(key), what);
        }
        for key in ["pattern", "const", "format"] {
            let (ov, nv) = (constraint(o, key), constraint(n, key));
            if ov == nv {
                continue;
            }
            let (rule, narrowed, at_side, at) = match (&ov, &nv) {
                (_, Some(_)) => ("constraint-added-or-changed", true, At::New, new_at),
                (Some(_), None) => ("constraint-removed", false, At::Old, old_at),
                (None, None) => continue,
            };
            let show = |v: &Option<Value>| {
                v.as_ref()
                    .map_or_else(|| "none".to_owned(), Value::to_string)
            };
            let what = format!("`{key}` went from {} to {}", show(&ov), show(&nv));
            // A changed pattern or format both refuses old values and allows
            // new ones: breaking either way.
            if ov.is_some() && nv.is_some() {
                self.report(rule, Severity::Breaking, Some(dir), Breaks::OldClients, at_side, at.join(key).as_str(), format!("{what} ({dir}): values valid before may be refused, and the other way round"));
            } else {
                self.narrowed_or_widened(dir, narrowed, rule, at_side, &at.join(key), what);
            }
        }
    }

    fn properties(
        &mut self,
        dir: Direction,
        o: &'a SchemaKind,
        n: &'a SchemaKind,
        old_at: &Pointer,
        new_at: &Pointer,
        visited: &mut HashSet<(&'a str, &'a str)>,
    ) {
        let (op, np) = (properties(o), properties(n));
        let required = |props: &[Property], name: &str| {
            props.iter().any(|p| p.wire_name == name && p.required)
        };
        for old_prop in op {
            let name = &old_prop.wire_name;
            let old_p = old_at.join("properties").join(name);
            let new_p = new_at.join("properties").join(name);
            let Some(new_prop) = np.iter().find(|p| &p.wire_name == name) else {
                let (severity, why) = match dir {
                    Direction::ClientToServer => (
                        Severity::Breaking,
                        "old clients still send it, and the server refuses unknown properties",
                    ),
                    Direction::ServerToClient if old_prop.required => {
                        (Severity::Breaking, "old clients need it")
                    }
                    Direction::ServerToClient => (
                        Severity::Warning,
                        "old clients that use it no longer get it",
                    ),
                };
                self.report(
                    "property-removed",
                    severity,
                    Some(dir),
                    Breaks::OldClients,
                    At::Old,
                    old_p.as_str(),
                    format!("property `{name}` was removed ({dir}): {why}"),
                );
                continue;
            };
            match (old_prop.required, new_prop.required) {
                (false, true) => self.narrowed_or_widened(
                    dir,
                    true,
                    "property-now-required",
                    At::New,
                    &new_p,
                    format!("property `{name}` became required"),
                ),
                (true, false) => self.narrowed_or_widened(
                    dir,
                    false,
                    "property-now-optional",
                    At::New,
                    &new_p,
                    format!("property `{name}` became optional"),
                ),
                _ => {}
            }
            self.schema(dir, &old_prop.schema, &new_prop.schema, visited);
        }
        for new_prop in np {
            let name = &new_prop.wire_name;
            if op.iter().any(|p| &p.wire_name == name) {
                continue;
            }
            let at = new_at.join("properties").join(name);
            if required(np, name) {
                self.narrowed_or_widened(
                    dir,
                    true,
                    "required-property-added",
                    At::New,
                    &at,
                    format!("required property `{name}` was added"),
                );
            } else {
                let (severity, breaks, why) = match dir {
                    Direction::ClientToServer => (
                        Severity::Warning,
                        Breaks::OldServers,
                        "old servers refuse it, so new clients must not send it to them",
                    ),
                    Direction::ServerToClient => (
                        Severity::Info,
                        Breaks::Nobody,
                        "generated clients ignore properties they do not know",
                    ),
                };
                self.report(
                    "optional-property-added",
                    severity,
                    Some(dir),
                    breaks,
                    At::New,
                    at.as_str(),
                    format!("optional property `{name}` was added ({dir}): {why}"),
                );
            }
        }
    }
}

/// The JSON types a schema (not nullable, its `$ref` followed) accepts;
/// `None` for any value.
fn types_of(kind: &SchemaKind) -> Option<BTreeSet<&'static str>> {
    let t = match kind {
        SchemaKind::Any | SchemaKind::Ref(_) => return None,
        SchemaKind::Nullable(inner) => {
            let mut set = types_of(&inner.kind)?;
            set.insert("null");
            return Some(set);
        }
        SchemaKind::String { .. } => "string",
        SchemaKind::Integer { .. } => "integer",
        SchemaKind::Number { .. } => "number",
        SchemaKind::Boolean { .. } => "boolean",
        SchemaKind::Null => "null",
        SchemaKind::Array { .. } => "array",
        SchemaKind::Object { .. } | SchemaKind::Map(_) | SchemaKind::TaggedUnion { .. } => "object",
    };
    Some(BTreeSet::from([t]))
}

/// Whether a schema of types `set` accepts values of type `t`.
fn accepts(set: &BTreeSet<&str>, t: &str) -> bool {
    set.contains(t) || (t == "integer" && set.contains("number"))
}

/// A string schema's `enum` (empty: none).
fn enumeration(kind: &SchemaKind) -> &[String] {
    match kind {
        SchemaKind::String { enumeration, .. } => enumeration,
        _ => &[],
    }
}

/// An object's properties (none for other kinds).
fn properties(kind: &SchemaKind) -> &[Property] {
    match kind {
        SchemaKind::Object { properties, .. } => properties,
        _ => &[],
    }
}

/// The numeric keyword `key` (`minLength`, `maximum`...) of a schema.
fn limit(kind: &SchemaKind, key: &str) -> Option<f64> {
    #[allow(clippy::cast_precision_loss)] // lengths and counts far below 2^53
    let count = |c: &Option<u64>| c.map(|c| c as f64);
    let bound = |b: &Option<serde_json::Number>| b.as_ref().and_then(serde_json::Number::as_f64);
    match (kind, key) {
        (SchemaKind::String { min_length, .. }, "minLength") => count(min_length),
        (SchemaKind::String { max_length, .. }, "maxLength") => count(max_length),
        (SchemaKind::Array { min_items, .. }, "minItems") => count(min_items),
        (SchemaKind::Array { max_items, .. }, "maxItems") => count(max_items),
        (SchemaKind::Integer { minimum, .. } | SchemaKind::Number { minimum, .. }, "minimum") => {
            bound(minimum)
        }
        (SchemaKind::Integer { maximum, .. } | SchemaKind::Number { maximum, .. }, "maximum") => {
            bound(maximum)
        }
        _ => None,
    }
}

/// The keyword `key` (`pattern`, `const`, `format`) of a schema, as written.
fn constraint(kind: &SchemaKind, key: &str) -> Option<Value> {
    match (kind, key) {
        (SchemaKind::String { pattern, .. }, "pattern") => pattern.clone().map(Value::String),
        (SchemaKind::String { constant, .. }, "const") => constant.clone().map(Value::String),
        (SchemaKind::Integer { constant, .. }, "const") => constant.map(Value::from),
        (SchemaKind::Boolean { constant }, "const") => constant.map(Value::Bool),
        (
            SchemaKind::String { format, .. }
            | SchemaKind::Integer { format, .. }
            | SchemaKind::Number { format, .. },
            "format",
        ) => format.clone().map(Value::String),
        _ => None,
    }
}

/// A type set as `a | b` (`null` last), or `any`.
fn list(set: Option<&BTreeSet<&str>>) -> String {
    set.map_or_else(
        || "any".to_owned(),
        |set| {
            let (null, types): (Vec<&str>, Vec<&str>) = set.iter().partition(|t| **t == "null");
            types
                .into_iter()
                .chain(null)
                .collect::<Vec<_>>()
                .join(" | ")
        },
    )
}

fn values(vs: &[&String]) -> String {
    vs.iter()
        .map(|v| Value::from(v.as_str()).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "none".to_owned(), |v| v.to_string())
}

/// The report as rustc prints diagnostics: one block per change.
pub fn render_text(report: &Report) -> String {
    let mut out = String::new();
    for c in &report.changes {
        let severity = match c.severity {
            Severity::Breaking => "breaking",
            Severity::Warning => "warning",
            Severity::Info => "info",
        };
        out.push_str(&format!("{severity}[{}]: {}\n", c.rule, c.message));
        let place = match (c.line, c.column) {
            (Some(l), Some(col)) => format!("{}:{l}:{col}", c.file.display()),
            _ => c.file.display().to_string(),
        };
        out.push_str(&format!("  --> {place}: {}\n", readable(&c.pointer)));
        match c.direction {
            Some(dir) => out.push_str(&format!("   = {dir}; breaks {}\n", c.breaks)),
            None => out.push_str(&format!("   = breaks {}\n", c.breaks)),
        }
    }
    out
}

/// A contract file read and validated for comparison.
pub struct Loaded {
    /// The file.
    pub file: PathBuf,
    /// The validated contract.
    pub contract: Contract,
    /// Positions in its text.
    pub map: SourceMap,
    /// The typed schemas, by pointer (see [`Side::schemas`]).
    pub schemas: BTreeMap<String, SchemaNode>,
}

/// Reads and validates one contract (the same diagnostics as `generate`).
pub fn load(file: &Path, text: &str) -> Result<Loaded, Vec<Diagnostic>> {
    let map = SourceMap::new(file, text);
    let valid = crate::validate::validate(file, text, &map).map_err(|mut diags| {
        map.place(&mut diags);
        diags
    })?;
    Ok(Loaded {
        file: file.to_owned(),
        contract: valid.contract,
        map,
        schemas: valid.schemas,
    })
}

impl Loaded {
    /// This contract as a side of a comparison.
    pub fn side(&self) -> Side<'_> {
        Side {
            file: &self.file,
            contract: &self.contract,
            map: &self.map,
            schemas: &self.schemas,
        }
    }
}
