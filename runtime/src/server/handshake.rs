//! What a client says in its handshake (`auth`), read with bounds before
//! anything of it is stored, logged, echoed or counted.
//!
//! The handshake is the one input an anonymous client controls before any
//! limit applies: a 1 MB version string kept per socket, logged on every
//! connect and turned into a metric label is a memory and log flood. So the
//! contract name and version are checked for length and form here, and a
//! refusal quotes at most [`MAX_ECHO`] bytes of what was sent.

use serde_json::Value;

use crate::wire::json_kind as kind;

/// Longest contract name or version accepted in a handshake, in bytes.
pub const MAX_CONTRACT_FIELD_BYTES: usize = 64;

/// Most bytes of a refused value quoted back in a refusal or a log line.
const MAX_ECHO: usize = 32;

/// Most rooms one handshake may ask to resume.
pub const MAX_RESUME_ROOMS: usize = 100;

/// Longest room name a handshake may ask to resume, in bytes.
const MAX_RESUME_ROOM_BYTES: usize = 256;

/// A room a reconnecting client asks to resume: the last offset it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResumeAt {
    pub(crate) room: String,
    pub(crate) epoch: String,
    pub(crate) offset: u64,
}

/// Reads `auth.recovery`: `None` when absent (the client wants no offsets),
/// else the rooms to resume (`{}` on a first connection), sorted by room.
pub(crate) fn recovery(auth: Option<&Value>) -> Result<Option<Vec<ResumeAt>>, MalformedAuth> {
    let Some(Value::Object(auth)) = auth else {
        return Ok(None);
    };
    let rooms = match auth.get("recovery") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(rooms)) => rooms,
        Some(other) => {
            return Err(MalformedAuth(format!(
                "auth.recovery must be an object {{room: {{epoch, offset}}}}, not {}",
                kind(other)
            )));
        }
    };
    if rooms.len() > MAX_RESUME_ROOMS {
        return Err(MalformedAuth(format!(
            "auth.recovery names {} rooms, at most {MAX_RESUME_ROOMS} are accepted",
            rooms.len()
        )));
    }
    let mut out = Vec::with_capacity(rooms.len());
    for (room, at) in rooms {
        if room.len() > MAX_RESUME_ROOM_BYTES {
            return Err(MalformedAuth(format!(
                "auth.recovery names a room of {} bytes, at most {MAX_RESUME_ROOM_BYTES} are accepted",
                room.len()
            )));
        }
        let epoch = at.get("epoch").and_then(Value::as_str);
        let offset = at.get("offset").and_then(Value::as_u64);
        match (epoch, offset) {
            (Some(epoch), Some(offset)) if epoch.len() <= MAX_CONTRACT_FIELD_BYTES => {
                out.push(ResumeAt {
                    room: room.clone(),
                    epoch: epoch.to_owned(),
                    offset,
                });
            }
            _ => {
                return Err(MalformedAuth(format!(
                    "auth.recovery[`{}`] must be {{epoch: a string of at most {MAX_CONTRACT_FIELD_BYTES} bytes, offset: an integer}}",
                    echo(room)
                )));
            }
        }
    }
    out.sort_by(|a, b| a.room.cmp(&b.room));
    Ok(Some(out))
}

/// The contract a client names (`auth.contract: {name, version}`), checked:
/// both at most [`MAX_CONTRACT_FIELD_BYTES`], the name of letters, digits,
/// `_`, `-` and `.`, the version `MAJOR.MINOR.PATCH` with an optional
/// pre-release and build of the same characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientContract {
    pub(crate) name: String,
    pub(crate) version: String,
}

/// Why a handshake's `auth` payload is refused (`INVALID_AUTH`): a short
/// text that quotes at most [`MAX_ECHO`] bytes of the client's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MalformedAuth(pub(crate) String);

/// Reads `auth.contract` from a handshake's `auth` payload. No payload,
/// `null`, or an object without `contract` is `Ok(None)`; a payload that is
/// not an object, or a `contract` that is not `{name, version}` strings of
/// the bounded form, is refused.
pub(crate) fn client_contract(
    auth: Option<&Value>,
) -> Result<Option<ClientContract>, MalformedAuth> {
    let auth = match auth {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(MalformedAuth(format!(
                "the handshake's auth must be an object, not {}",
                kind(other)
            )));
        }
    };
    let contract = match auth.get("contract") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(c)) => c,
        Some(other) => {
            return Err(MalformedAuth(format!(
                "auth.contract must be an object {{name, version}}, not {}",
                kind(other)
            )));
        }
    };
    let field = |key: &str, valid: fn(&str) -> bool| -> Result<String, MalformedAuth> {
        match contract.get(key) {
            Some(Value::String(s)) if s.len() <= MAX_CONTRACT_FIELD_BYTES && valid(s) => {
                Ok(s.clone())
            }
            Some(Value::String(s)) if s.len() > MAX_CONTRACT_FIELD_BYTES => {
                Err(MalformedAuth(format!(
                    "auth.contract.{key} is {} bytes long, at most {MAX_CONTRACT_FIELD_BYTES} are accepted",
                    s.len()
                )))
            }
            Some(Value::String(s)) => Err(MalformedAuth(format!(
                "auth.contract.{key} `{}` is not a valid {key}",
                echo(s)
            ))),
            Some(other) => Err(MalformedAuth(format!(
                "auth.contract.{key} must be a string, not {}",
                kind(other)
            ))),
            None => Err(MalformedAuth(format!("auth.contract.{key} is missing"))),
        }
    };
    Ok(Some(ClientContract {
        name: field("name", valid_name)?,
        version: field("version", valid_version)?,
    }))
}

/// At most [`MAX_ECHO`] bytes of `s` (cut on a character boundary), with
/// `…` when cut, and control characters replaced: safe to quote in a
/// refusal or a log line.
pub(crate) fn echo(s: &str) -> String {
    let kept = truncate_on_char(s, MAX_ECHO);
    let mut out: String = kept
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if kept.len() < s.len() {
        out.push('…');
    }
    out
}

/// The longest prefix of `s` of at most `max` bytes that ends on a
/// character boundary.
pub(crate) fn truncate_on_char(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(ident_char)
}

/// `MAJOR.MINOR.PATCH[-pre][+build]`, numbers without leading zeros.
fn valid_version(s: &str) -> bool {
    let (rest, build) = match s.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (s, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let number = |n: &str| {
        !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && (n == "0" || !n.starts_with('0'))
    };
    let label = |l: &str| {
        !l.is_empty()
            && l.split('.').all(|part| {
                !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
    };
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| number(p))
        && pre.is_none_or(label)
        && build.is_none_or(label)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn contract(v: Value) -> Result<Option<ClientContract>, MalformedAuth> {
        client_contract(Some(&v))
    }

    #[test]
    fn accepted_forms() {
        assert_eq!(client_contract(None), Ok(None));
        assert_eq!(contract(json!(null)), Ok(None));
        assert_eq!(contract(json!({"token": "t"})), Ok(None));
        for version in [
            "1.1.0",
            "0.0.0",
            "10.20.30",
            "1.0.0-rc.1",
            "1.0.0-beta-2+build.5",
        ] {
            let c = contract(json!({"contract": {"name": "chat", "version": version}}));
            assert_eq!(
                c.unwrap().unwrap().version,
                version,
                "{version} should be accepted"
            );
        }
    }

    #[test]
    fn refused_forms_quote_a_bounded_part() {
        let long = format!("1.1.0-{}", "x".repeat(1 << 20));
        let err = contract(json!({"contract": {"name": "chat", "version": long}})).unwrap_err();
        assert!(err.0.contains("1048582 bytes long"), "{}", err.0);
        assert!(err.0.len() < 200, "{}", err.0);
        let long_name = "n".repeat(65);
        assert!(contract(json!({"contract": {"name": long_name, "version": "1.0.0"}})).is_err());
        for version in [
            "1.1",
            "01.1.0",
            "1.1.0-",
            "1.1.0-a..b",
            "1.1.0+",
            "v1.1.0",
            "1.1.0-\n",
            "1.1.0 x",
        ] {
            assert!(
                contract(json!({"contract": {"name": "chat", "version": version}})).is_err(),
                "{version:?} should be refused"
            );
        }
        let err =
            contract(json!({"contract": {"name": "a b\nc", "version": "1.0.0"}})).unwrap_err();
        assert!(!err.0.contains('\n'), "{}", err.0);
        assert!(contract(json!("token")).is_err());
        assert!(contract(json!([1])).is_err());
        assert!(contract(json!({"contract": "chat@1.0.0"})).is_err());
        assert!(contract(json!({"contract": {"name": "chat"}})).is_err());
        assert!(contract(json!({"contract": {"name": "chat", "version": 1}})).is_err());
    }

    #[test]
    fn recovery_requests_are_bounded() {
        assert_eq!(recovery(None), Ok(None));
        assert_eq!(recovery(Some(&json!({"token": "t"}))), Ok(None));
        assert_eq!(recovery(Some(&json!({"recovery": {}}))), Ok(Some(vec![])));
        let asked = recovery(Some(&json!({"recovery": {
            "thread:b": {"epoch": "e1", "offset": 7},
            "thread:a": {"epoch": "e2", "offset": 0}
        }})))
        .unwrap()
        .unwrap();
        assert_eq!(
            asked.iter().map(|r| r.room.as_str()).collect::<Vec<_>>(),
            ["thread:a", "thread:b"]
        );
        assert_eq!(asked[1].offset, 7);
        for bad in [
            json!({"recovery": []}),
            json!({"recovery": {"r": {"epoch": "e"}}}),
            json!({"recovery": {"r": {"epoch": 1, "offset": 1}}}),
            json!({"recovery": {"r": {"epoch": "e", "offset": -1}}}),
            json!({"recovery": {"r": {"epoch": "e".repeat(65), "offset": 1}}}),
            json!({"recovery": {"r".repeat(257): {"epoch": "e", "offset": 1}}}),
        ] {
            assert!(recovery(Some(&bad)).is_err(), "{bad}");
        }
        let many: serde_json::Map<String, Value> = (0..=MAX_RESUME_ROOMS)
            .map(|i| (format!("r{i}"), json!({"epoch": "e", "offset": 1})))
            .collect();
        assert!(recovery(Some(&json!({ "recovery": many }))).is_err());
    }

    #[test]
    fn echo_is_bounded_and_clean() {
        assert_eq!(echo("short"), "short");
        let cut = echo(&"é".repeat(100));
        assert!(cut.len() <= MAX_ECHO + '…'.len_utf8(), "{cut}");
        assert!(cut.ends_with('…'));
        assert_eq!(echo("a\u{0}b\nc"), "a?b?c");
    }
}
