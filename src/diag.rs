//! Errors in a contract, with the file and where in it.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where in a contract file a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A line and column (1-based), for JSON syntax errors.
    LineCol(usize, usize),
    /// A JSON pointer (RFC 6901) into the document, such as
    /// `/namespaces/~1chat/clientEvents/send_message/payload`.
    Pointer(String),
}

/// One problem in a contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The contract file.
    pub file: PathBuf,
    /// Where in the file.
    pub location: Location,
    /// For a [`Location::Pointer`]: the line and column it points at, when
    /// known, so that terminals and editors can jump there.
    pub position: Option<(usize, usize)>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        match &self.location {
            Location::LineCol(line, col) => write!(f, "{file}:{line}:{col}: {}", self.message),
            Location::Pointer(p) if p.is_empty() => {
                write!(f, "{file}: (document root): {}", self.message)
            }
            Location::Pointer(p) => match self.position {
                Some((line, col)) => write!(f, "{file}:{line}:{col}: {p}: {}", self.message),
                None => write!(f, "{file}: {p}: {}", self.message),
            },
        }
    }
}

/// Every problem found in a set of contracts; generation writes nothing while
/// there is one.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "error: {d}")?;
        }
        Ok(())
    }
}

/// A JSON pointer being built while walking a document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pointer(String);

impl Pointer {
    /// The document root.
    pub fn root() -> Self {
        Self(String::new())
    }

    /// This pointer extended by one object key or array index (escaped per RFC 6901).
    #[must_use]
    pub fn join(&self, segment: impl fmt::Display) -> Self {
        let seg = segment.to_string().replace('~', "~0").replace('/', "~1");
        Self(format!("{}/{seg}", self.0))
    }

    /// The pointer text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Pointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Collects diagnostics for one file.
#[derive(Debug)]
pub struct Sink {
    file: PathBuf,
    /// The diagnostics so far.
    pub diagnostics: Vec<Diagnostic>,
}

impl Sink {
    /// A sink for `file`.
    pub fn new(file: &Path) -> Self {
        Self {
            file: file.to_owned(),
            diagnostics: Vec::new(),
        }
    }

    /// Records an error at `at`.
    pub fn error(&mut self, at: &Pointer, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic {
            file: self.file.clone(),
            location: Location::Pointer(at.as_str().to_owned()),
            position: None,
            message: message.into(),
        });
    }

    /// Records an error at a line and column.
    pub fn error_at_line(&mut self, line: usize, col: usize, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic {
            file: self.file.clone(),
            location: Location::LineCol(line, col),
            position: None,
            message: message.into(),
        });
    }

    /// Whether nothing was reported.
    pub fn is_clean(&self) -> bool {
        self.diagnostics.is_empty()
    }
}

/// The 1-based line and column where the value at `pointer` starts in the
/// JSON `text` (for an object member: where its key starts). `None` when the
/// pointer does not lead anywhere in the text.
///
/// A small scanner rather than a second parser: the text already parsed, so
/// only structure needs following.
pub fn locate(text: &str, pointer: &str) -> Option<(usize, usize)> {
    let segments: Vec<String> = match pointer {
        "" => Vec::new(),
        p => p
            .strip_prefix('/')?
            .split('/')
            .map(|s| s.replace("~1", "/").replace("~0", "~"))
            .collect(),
    };
    let b = text.as_bytes();
    let mut pos = skip_ws(b, 0);
    let mut target = pos;
    for seg in &segments {
        match b.get(pos)? {
            b'{' => {
                pos += 1;
                loop {
                    pos = skip_ws(b, pos);
                    if *b.get(pos)? == b'}' {
                        return None;
                    }
                    let key_start = pos;
                    let (key, after) = read_string(text, pos)?;
                    pos = skip_ws(b, after);
                    if *b.get(pos)? != b':' {
                        return None;
                    }
                    pos = skip_ws(b, pos + 1);
                    if key == *seg {
                        target = key_start;
                        break;
                    }
                    pos = skip_ws(b, skip_value(b, pos)?);
                    if b.get(pos) == Some(&b',') {
                        pos += 1;
                    }
                }
            }
            b'[' => {
                let index: usize = seg.parse().ok()?;
                pos += 1;
                for i in 0.. {
                    pos = skip_ws(b, pos);
                    if *b.get(pos)? == b']' {
                        return None;
                    }
                    if i == index {
                        target = pos;
                        break;
                    }
                    pos = skip_ws(b, skip_value(b, pos)?);
                    if b.get(pos) == Some(&b',') {
                        pos += 1;
                    }
                }
            }
            _ => return None,
        }
    }
    let before = text.get(..target)?;
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Some((line, col))
}

fn skip_ws(b: &[u8], mut pos: usize) -> usize {
    while b.get(pos).is_some_and(u8::is_ascii_whitespace) {
        pos += 1;
    }
    pos
}

/// The end (exclusive) of the string literal starting at `pos`.
fn string_end(b: &[u8], pos: usize) -> Option<usize> {
    let mut i = pos + 1;
    loop {
        match b.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

fn read_string(text: &str, pos: usize) -> Option<(String, usize)> {
    let end = string_end(text.as_bytes(), pos)?;
    let s = serde_json::from_str(text.get(pos..end)?).ok()?;
    Some((s, end))
}

/// The end (exclusive) of the value starting at `pos`.
fn skip_value(b: &[u8], pos: usize) -> Option<usize> {
    match b.get(pos)? {
        b'"' => string_end(b, pos),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = pos;
            loop {
                match b.get(i)? {
                    b'"' => {
                        i = string_end(b, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let mut i = pos;
            while b
                .get(i)
                .is_some_and(|c| !matches!(c, b',' | b'}' | b']') && !c.is_ascii_whitespace())
            {
                i += 1;
            }
            Some(i)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::locate;

    #[test]
    fn locates_members_elements_and_escapes() {
        let text = "{\n  \"a\": {\"x/y\": [1, {\"k\": \"v\\\"}\"}],\n  \"b\": 2}\n}";
        assert_eq!(locate(text, ""), Some((1, 1)));
        assert_eq!(locate(text, "/a"), Some((2, 3)));
        assert_eq!(locate(text, "/a/x~1y"), Some((2, 9)));
        assert_eq!(locate(text, "/a/x~1y/1"), Some((2, 20)));
        assert_eq!(locate(text, "/a/x~1y/1/k"), Some((2, 21)));
        assert_eq!(locate(text, "/a/b"), Some((3, 3)));
        assert_eq!(locate(text, "/a/nope"), None);
        assert_eq!(locate(text, "/a/x~1y/9"), None);
    }
}
