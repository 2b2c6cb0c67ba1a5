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

impl Diagnostic {
    /// A problem with the whole file (it cannot be read, say), placed at
    /// the document root.
    pub fn at_root(file: &Path, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            location: Location::Pointer(String::new()),
            position: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        match &self.location {
            Location::LineCol(line, col) => write!(f, "{file}:{line}:{col}: {}", self.message),
            Location::Pointer(p) if p.is_empty() => {
                write!(f, "{file}: (document root): {}", self.message)
            }
            Location::Pointer(p) => {
                let p = readable(p);
                match self.position {
                    Some((line, col)) => write!(f, "{file}:{line}:{col}: {p}: {}", self.message),
                    None => write!(f, "{file}: {p}: {}", self.message),
                }
            }
        }
    }
}

/// A JSON pointer as people read it: segments unescaped, and a segment that
/// holds a `/`, a `~`, a quote, white space or nothing quoted as a JSON
/// string, so `/namespaces/~1chat/rooms` reads `/namespaces/"/chat"/rooms`.
pub fn readable(pointer: &str) -> String {
    if pointer.is_empty() {
        return "(document root)".to_owned();
    }
    let mut out = String::with_capacity(pointer.len() + 8);
    for seg in pointer.strip_prefix('/').unwrap_or(pointer).split('/') {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        out.push('/');
        let plain = !seg.is_empty()
            && !seg.chars().any(|c| {
                matches!(c, '/' | '~' | '"' | '\\') || c.is_whitespace() || c.is_control()
            });
        if plain {
            out.push_str(&seg);
        } else {
            out.push_str(&serde_json::Value::String(seg).to_string());
        }
    }
    out
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

    /// A pointer from its text, already escaped (as a schema node keeps
    /// its place).
    pub fn from_text(text: &str) -> Self {
        Self(text.to_owned())
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

    /// Records an error at a pointer given as text (already escaped).
    pub fn error_raw(&mut self, pointer: &str, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic {
            file: self.file.clone(),
            location: Location::Pointer(pointer.to_owned()),
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

#[cfg(test)]
mod tests {
    use super::readable;

    #[test]
    fn pointers_read_unescaped_and_quoted_where_needed() {
        assert_eq!(readable(""), "(document root)");
        assert_eq!(
            readable("/namespaces/~1auction/clientEvents/bid"),
            "/namespaces/\"/auction\"/clientEvents/bid"
        );
        assert_eq!(readable("/a~0b/0/"), "/\"a~b\"/0/\"\"");
        assert_eq!(readable("/with space"), "/\"with space\"");
    }
}
