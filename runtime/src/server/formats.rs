//! The string formats a payload schema can assert (`date`, `date-time`,
//! `email`), checked as JSON Schema draft 7 validators check them (the
//! `jsonschema` crate is the reference in the differential test,
//! `runtime/tests/validation_differential.rs`). Other formats of the
//! contract subset (`uuid`, `int32`, `float`, …) are annotations in draft 7.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// A format that draft 7 asserts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// RFC 3339 `full-date`.
    Date,
    /// RFC 3339 `date-time` (leap seconds checked against the offset).
    DateTime,
    /// RFC 5321 mailbox.
    Email,
}

impl Format {
    /// The asserted format named `name`, `None` for an annotation.
    pub(crate) fn asserted(name: &str) -> Option<Self> {
        match name {
            "date" => Some(Self::Date),
            "date-time" => Some(Self::DateTime),
            "email" => Some(Self::Email),
            _ => None,
        }
    }

    /// The name as the contract spells it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Date => "date",
            Self::DateTime => "date-time",
            Self::Email => "email",
        }
    }

    /// Whether `s` is in the format.
    pub(crate) fn accepts(self, s: &str) -> bool {
        match self {
            Self::Date => is_date(s),
            Self::DateTime => is_date_time(s),
            Self::Email => is_email(s),
        }
    }
}

fn digits(b: &[u8]) -> Option<u16> {
    b.iter().try_fold(0u16, |acc, &d| {
        d.is_ascii_digit().then(|| acc * 10 + u16::from(d - b'0'))
    })
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let (Some(year), Some(month), Some(day)) = (digits(&b[..4]), digits(&b[5..7]), digits(&b[8..]))
    else {
        return false;
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let last = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=last).contains(&day)
}

fn is_time(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 9 || b[2] != b':' || b[5] != b':' {
        return false;
    }
    let (Some(hour), Some(minute), Some(second)) =
        (digits(&b[..2]), digits(&b[3..5]), digits(&b[6..8]))
    else {
        return false;
    };
    if hour > 23 || minute > 59 || second > 60 {
        return false;
    }
    let mut i = 8;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    let Some(&sign) = b.get(i) else {
        return false;
    };
    // A leap second is only valid at 23:59:60 UTC.
    let leap_ok =
        |utc_minutes: i32| second != 60 || utc_minutes.rem_euclid(24 * 60) == 23 * 60 + 59;
    let local = i32::from(hour) * 60 + i32::from(minute);
    match sign {
        b'Z' | b'z' => i + 1 == b.len() && leap_ok(local),
        b'+' | b'-' => {
            let off = &b[i + 1..];
            if off.len() != 5 || off[2] != b':' {
                return false;
            }
            let (Some(oh), Some(om)) = (digits(&off[..2]), digits(&off[3..])) else {
                return false;
            };
            if oh > 23 || om > 59 {
                return false;
            }
            let offset = i32::from(oh) * 60 + i32::from(om);
            leap_ok(if sign == b'+' {
                local - offset
            } else {
                local + offset
            })
        }
        _ => false,
    }
}

fn is_date_time(s: &str) -> bool {
    match s.bytes().position(|b| b == b'T' || b == b't') {
        Some(t) => is_date(&s[..t]) && is_time(&s[t + 1..]),
        None => false,
    }
}

fn is_email(s: &str) -> bool {
    // An empty quoted local part is valid (RFC 5321); the parser refuses it.
    if let Some(domain) = s.strip_prefix("\"\"@") {
        return is_email(&format!("\"a\"@{domain}"));
    }
    match email_address::EmailAddress::from_str(s) {
        Ok(parsed) => parsed.local_part().is_ascii() && is_email_domain(parsed.domain()),
        Err(_) => false,
    }
}

fn is_email_domain(domain: &str) -> bool {
    match domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        Some(literal) => match literal.get(..5) {
            Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => {
                literal[5..].parse::<Ipv6Addr>().is_ok()
            }
            _ => literal.parse::<Ipv4Addr>().is_ok(),
        },
        None => is_hostname(domain),
    }
}

/// An RFC 1034 host name of ASCII labels. Labels with `--` in positions 3
/// and 4 must be IDNA A-labels (`xn--`); those are accepted without decoding
/// their Punycode (the reference decodes and checks the Unicode label).
fn is_hostname(host: &str) -> bool {
    let b = host.as_bytes();
    if b.is_empty() || b.len() > 253 || b.ends_with(b".") {
        return false;
    }
    b.split(|&c| c == b'.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label[0] != b'-'
            && label[label.len() - 1] != b'-'
            && label
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            && !(label.len() >= 4 && &label[2..4] == b"--" && !label.starts_with(b"xn--"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times() {
        assert!(is_date("2024-02-29"));
        assert!(!is_date("2023-02-29"));
        assert!(!is_date("2023-13-01"));
        assert!(!is_date("2023-1-01"));
        assert!(is_date_time("2024-01-01T10:00:00Z"));
        assert!(is_date_time("2024-01-01t10:00:00.5+01:00"));
        assert!(is_date_time("1998-12-31T23:59:60Z"));
        assert!(is_date_time("1998-12-31T15:59:60-08:00"));
        assert!(!is_date_time("1998-12-31T22:59:60Z"));
        assert!(!is_date_time("2024-01-01T10:00:00"));
        assert!(!is_date_time("2024-01-01T10:00:00.Z"));
        assert!(!is_date_time("2024-01-01T24:00:00Z"));
    }

    #[test]
    fn emails() {
        assert!(is_email("a@example.com"));
        assert!(is_email("a.b+c@[127.0.0.1]"));
        assert!(is_email("a@[IPv6:::1]"));
        assert!(!is_email("a@-example.com"));
        assert!(!is_email("a@ab--c.com"));
        assert!(!is_email("no-at-sign"));
        assert!(!is_email("é@example.com"));
    }
}
