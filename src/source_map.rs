//! Where each value of a contract starts in its text, for JSON and YAML alike,
//! and the keys given twice in one object.
//!
//! Both parsers we use (serde_json and serde_norway, into a `Value`) keep the
//! last of two equal keys without a word, which once dropped a rate limit; and
//! neither reports where a value is. One pass over the text gives both: a map
//! from JSON pointer to line and column, and the repeated keys.

use std::collections::HashMap;
use std::path::Path;

/// A key given twice in one object (mapping).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey {
    /// The pointer of the member (the object's pointer joined with the key).
    pub pointer: String,
    /// The key as written.
    pub key: String,
    /// Line and column where the key is first given.
    pub first: (usize, usize),
    /// Line and column where it is given again (the one a parser keeps).
    pub again: (usize, usize),
}

/// Line and column (1-based, columns in characters) of every value of one
/// contract text, by JSON pointer (RFC 6901). An object member is placed at
/// its key, an array element at its first character.
#[derive(Debug, Default)]
pub struct SourceMap {
    positions: HashMap<String, (usize, usize)>,
    duplicates: Vec<DuplicateKey>,
}

/// Deeper documents are not mapped further (both parsers refuse them anyway,
/// at 128 levels); the bound keeps the recursion safe on any text.
const MAX_DEPTH: usize = 256;

impl SourceMap {
    /// Maps `text`, read as YAML when `file` says so (see [`is_yaml`]) and as JSON otherwise. Text that does not
    /// parse gives the part mapped before the error.
    pub fn new(file: &Path, text: &str) -> Self {
        if is_yaml(file) {
            yaml::map(text)
        } else {
            json::map(text)
        }
    }

    /// Where the value at `pointer` starts. A pointer to something the text
    /// lacks (a missing required member, say) gets the position of its
    /// nearest ancestor that is there.
    pub fn position(&self, pointer: &str) -> Option<(usize, usize)> {
        let mut p = pointer;
        loop {
            if let Some(pos) = self.positions.get(p) {
                return Some(*pos);
            }
            p = p.rsplit_once('/')?.0;
        }
    }

    /// Gives each diagnostic at a pointer the line and column it points at.
    pub fn place(&self, diagnostics: &mut [crate::diag::Diagnostic]) {
        for d in diagnostics {
            if let crate::diag::Location::Pointer(p) = &d.location {
                d.position = self.position(p);
            }
        }
    }

    /// The keys given twice, in text order of their second occurrence.
    pub fn duplicates(&self) -> &[DuplicateKey] {
        &self.duplicates
    }

    fn record(&mut self, pointer: &str, at: (usize, usize)) {
        // With a repeated key, the last occurrence is the one parsed.
        self.positions.insert(pointer.to_owned(), at);
    }
}

/// Whether `file` is a YAML contract (by extension: `.yaml` or `.yml`);
/// everything else is read as JSON.
pub fn is_yaml(file: &Path) -> bool {
    file.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
}

/// Appends one pointer segment, escaped per RFC 6901.
fn push_segment(pointer: &mut String, segment: &str) {
    pointer.push('/');
    for c in segment.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

/// The 1-based line and character column of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    Lines::new(text).at(offset)
}

/// Turns byte offsets into 1-based line and character column.
struct Lines<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self { text, starts }
    }

    fn at(&self, offset: usize) -> (usize, usize) {
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let col = self
            .text
            .get(start..offset)
            .map_or(0, |s| s.chars().count());
        (line, col + 1)
    }
}

mod json {
    use std::collections::HashMap;

    use super::{DuplicateKey, Lines, MAX_DEPTH, SourceMap, push_segment};

    pub(super) fn map(text: &str) -> SourceMap {
        let mut scanner = Scanner {
            b: text.as_bytes(),
            text,
            lines: Lines::new(text),
            pos: 0,
            out: SourceMap::default(),
        };
        // A scan that stops early (text that does not parse) keeps what it
        // mapped so far.
        let _ = scanner.value(&mut String::new(), 0);
        scanner.out
    }

    struct Scanner<'a> {
        text: &'a str,
        b: &'a [u8],
        lines: Lines<'a>,
        pos: usize,
        out: SourceMap,
    }

    impl Scanner<'_> {
        fn ws(&mut self) {
            while self.b.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
                self.pos += 1;
            }
        }

        /// Scans the value at the cursor, recording it at `pointer`'s
        /// children (the caller records the value itself).
        fn value(&mut self, pointer: &mut String, depth: usize) -> Option<()> {
            self.ws();
            if depth == 0 {
                let at = self.lines.at(self.pos);
                self.out.record("", at);
            }
            if depth > MAX_DEPTH {
                return None;
            }
            match *self.b.get(self.pos)? {
                b'{' => self.object(pointer, depth),
                b'[' => self.array(pointer, depth),
                b'"' => self.string().map(drop),
                _ => {
                    let start = self.pos;
                    while self.b.get(self.pos).is_some_and(|c| {
                        !matches!(c, b',' | b'}' | b']') && !c.is_ascii_whitespace()
                    }) {
                        self.pos += 1;
                    }
                    // Every step must consume text, or a stray `}` in an
                    // array would be an element forever.
                    (self.pos > start).then_some(())
                }
            }
        }

        fn object(&mut self, pointer: &mut String, depth: usize) -> Option<()> {
            self.pos += 1;
            let mut seen: HashMap<String, (usize, usize)> = HashMap::new();
            loop {
                self.ws();
                match *self.b.get(self.pos)? {
                    b'}' => {
                        self.pos += 1;
                        return Some(());
                    }
                    b',' => {
                        self.pos += 1;
                        continue;
                    }
                    _ => {}
                }
                let at = self.lines.at(self.pos);
                let key = self.string()?;
                self.ws();
                if *self.b.get(self.pos)? != b':' {
                    return None;
                }
                self.pos += 1;
                let len = pointer.len();
                push_segment(pointer, &key);
                if let Some(first) = seen.insert(key.clone(), at) {
                    self.out.duplicates.push(DuplicateKey {
                        pointer: pointer.clone(),
                        key,
                        first,
                        again: at,
                    });
                }
                self.out.record(pointer, at);
                let scanned = self.value(pointer, depth + 1);
                pointer.truncate(len);
                scanned?;
            }
        }

        fn array(&mut self, pointer: &mut String, depth: usize) -> Option<()> {
            self.pos += 1;
            let mut index = 0usize;
            loop {
                self.ws();
                match *self.b.get(self.pos)? {
                    b']' => {
                        self.pos += 1;
                        return Some(());
                    }
                    b',' => {
                        self.pos += 1;
                        continue;
                    }
                    _ => {}
                }
                let len = pointer.len();
                push_segment(pointer, &index.to_string());
                let at = self.lines.at(self.pos);
                self.out.record(pointer, at);
                let scanned = self.value(pointer, depth + 1);
                pointer.truncate(len);
                scanned?;
                index += 1;
            }
        }

        /// Reads the string literal at the cursor (escapes decoded).
        fn string(&mut self) -> Option<String> {
            let start = self.pos;
            let mut i = start + 1;
            loop {
                match *self.b.get(i)? {
                    b'\\' => i += 2,
                    b'"' => break,
                    _ => i += 1,
                }
            }
            self.pos = i + 1;
            serde_json::from_str(self.text.get(start..self.pos)?).ok()
        }
    }
}

mod yaml {
    use std::collections::HashMap;

    use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
    use yaml_rust2::scanner::Marker;

    use super::{DuplicateKey, MAX_DEPTH, SourceMap, push_segment};

    pub(super) fn map(text: &str) -> SourceMap {
        // yaml-rust2 recurses once per nesting level (`- - - - x` nests on
        // one line); serde_norway's parser does not, and its deserializer
        // refuses documents deeper than 128 levels. Text it refuses is not
        // mapped (its syntax error carries its own line and column).
        if serde_norway::from_str::<serde::de::IgnoredAny>(text).is_err() {
            return SourceMap::default();
        }
        let mut builder = Builder::default();
        // A parse error (text serde_norway refused too, or a corner where
        // the two parsers differ) keeps what was mapped before it.
        let _ = Parser::new_from_str(text).load(&mut builder, false);
        builder.out
    }

    /// An open mapping or sequence.
    enum Frame {
        Mapping {
            /// Length of the pointer to the mapping itself.
            base: usize,
            /// The next node is a key (else the value of the last key).
            at_key: bool,
            /// Nesting inside a key that is itself a mapping or sequence
            /// (never valid in a contract; skipped, not mapped).
            in_complex_key: usize,
            seen: HashMap<String, (usize, usize)>,
        },
        Sequence {
            base: usize,
            index: usize,
        },
    }

    impl Frame {
        fn base(&self) -> usize {
            match self {
                Frame::Mapping { base, .. } | Frame::Sequence { base, .. } => *base,
            }
        }
    }

    #[derive(Default)]
    struct Builder {
        /// The open container has no child yet (see [`Builder::first_child_at`]).
        empty: bool,
        pointer: String,
        stack: Vec<Frame>,
        /// The document's root was seen (one document is mapped).
        started: bool,
        out: SourceMap,
    }

    /// yaml-rust2 counts lines from 1 and columns from 0.
    fn position(mark: Marker) -> (usize, usize) {
        (mark.line(), mark.col() + 1)
    }

    impl Builder {
        /// A node starts at `mark`: place it, and say whether it is a key
        /// (keys are recorded by the caller, with their text).
        fn node_starts(&mut self, mark: Marker) -> bool {
            let at = position(mark);
            self.first_child_at(at);
            match self.stack.last_mut() {
                None => {
                    self.out.record("", at);
                    false
                }
                Some(Frame::Sequence { index, .. }) => {
                    let index = *index;
                    push_segment(&mut self.pointer, &index.to_string());
                    self.out.record(&self.pointer, at);
                    false
                }
                Some(Frame::Mapping { at_key, .. }) => *at_key,
            }
        }

        /// yaml-rust2 marks a block mapping where its first key ends (it
        /// knows it is a mapping only at the `:`), so a container starts
        /// where its first child does when that is earlier.
        fn first_child_at(&mut self, at: (usize, usize)) {
            if !std::mem::take(&mut self.empty) {
                return;
            }
            let Some(frame) = self.stack.last() else {
                return;
            };
            let container = &self.pointer[..frame.base()];
            if self.out.positions.get(container).is_none_or(|p| at < *p) {
                self.out.positions.insert(container.to_owned(), at);
            }
        }

        /// The node that started last has ended: back to its container.
        fn node_ends(&mut self) {
            match self.stack.last_mut() {
                None => {}
                Some(Frame::Sequence { base, index }) => {
                    self.pointer.truncate(*base);
                    *index += 1;
                }
                Some(Frame::Mapping { base, at_key, .. }) => {
                    self.pointer.truncate(*base);
                    *at_key = true;
                }
            }
        }

        fn key(&mut self, key: String, mark: Marker) {
            let at = position(mark);
            let Some(Frame::Mapping { at_key, seen, .. }) = self.stack.last_mut() else {
                return;
            };
            *at_key = false;
            push_segment(&mut self.pointer, &key);
            if let Some(first) = seen.insert(key.clone(), at) {
                self.out.duplicates.push(DuplicateKey {
                    pointer: self.pointer.clone(),
                    key,
                    first,
                    again: at,
                });
            }
            self.out.record(&self.pointer, at);
        }

        /// Inside a complex key: only its nesting is followed.
        fn complex_key_depth(&mut self) -> Option<&mut usize> {
            match self.stack.last_mut() {
                Some(Frame::Mapping { in_complex_key, .. }) if *in_complex_key > 0 => {
                    Some(in_complex_key)
                }
                _ => None,
            }
        }
    }

    impl MarkedEventReceiver for Builder {
        fn on_event(&mut self, ev: Event, mark: Marker) {
            if self.started && self.stack.is_empty() {
                return;
            }
            if let Some(depth) = self.complex_key_depth() {
                match ev {
                    Event::MappingStart(..) | Event::SequenceStart(..) => *depth += 1,
                    Event::MappingEnd | Event::SequenceEnd => {
                        *depth -= 1;
                        if *depth == 0 {
                            // The value of a key nobody can name: mapped
                            // under a segment no contract uses.
                            self.key("\u{0}complex key".to_owned(), mark);
                        }
                    }
                    _ => {}
                }
                return;
            }
            match ev {
                Event::Scalar(value, ..) => {
                    self.started = true;
                    if self.node_starts(mark) {
                        self.key(value, mark);
                    } else {
                        self.node_ends();
                    }
                }
                Event::Alias(_) => {
                    self.started = true;
                    if self.node_starts(mark) {
                        // An aliased key: not a string a contract can use.
                        self.key("\u{0}alias".to_owned(), mark);
                    } else {
                        self.node_ends();
                    }
                }
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    self.started = true;
                    if self.node_starts(mark) {
                        if let Some(Frame::Mapping { in_complex_key, .. }) = self.stack.last_mut() {
                            *in_complex_key = 1;
                        }
                        return;
                    }
                    if self.stack.len() >= MAX_DEPTH {
                        // Too deep to map; stop here (the parsers refuse
                        // such documents anyway).
                        self.stack.clear();
                        return;
                    }
                    let base = self.pointer.len();
                    self.empty = true;
                    self.stack.push(if matches!(ev, Event::MappingStart(..)) {
                        Frame::Mapping {
                            base,
                            at_key: true,
                            in_complex_key: 0,
                            seen: HashMap::new(),
                        }
                    } else {
                        Frame::Sequence { base, index: 0 }
                    });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    self.empty = false;
                    self.stack.pop();
                    self.node_ends();
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::SourceMap;

    #[test]
    fn json_members_elements_escapes_and_missing_members() {
        let text = "{\n  \"a\": {\"x/y\": [1, {\"k\": \"v\\\"}\"}],\n  \"b\": 2}\n}";
        let map = SourceMap::new(Path::new("c.json"), text);
        assert_eq!(map.position(""), Some((1, 1)));
        assert_eq!(map.position("/a"), Some((2, 3)));
        assert_eq!(map.position("/a/x~1y"), Some((2, 9)));
        assert_eq!(map.position("/a/x~1y/1"), Some((2, 20)));
        assert_eq!(map.position("/a/x~1y/1/k"), Some((2, 21)));
        assert_eq!(map.position("/a/b"), Some((3, 3)));
        // Not in the text: the nearest ancestor that is.
        assert_eq!(map.position("/a/nope/deeper"), Some((2, 3)));
        assert_eq!(map.position("/a/x~1y/9"), Some((2, 9)));
        assert!(map.duplicates().is_empty());
    }

    #[test]
    fn json_that_does_not_parse_maps_what_it_can_and_ends() {
        // Found by the contract_text fuzz target: a stray `}` in an array
        // was an element forever (out of memory).
        for text in [
            "[}",
            "{\"a\": }",
            "[1 }",
            "{\"a\" 1}",
            "[[[",
            "{\"a\": [1, }",
        ] {
            let map = SourceMap::new(Path::new("c.json"), text);
            assert_eq!(map.position(""), Some((1, 1)), "{text}");
        }
    }

    #[test]
    fn json_keys_given_twice_are_found_with_both_places() {
        let text = "{\"e\": {\"a\": 1,\n \"b\": 2,\n \"a\": {\"c\": 3, \"c\": 4}}}";
        let map = SourceMap::new(Path::new("c.json"), text);
        let dups: Vec<_> = map
            .duplicates()
            .iter()
            .map(|d| (d.pointer.as_str(), d.key.as_str(), d.first, d.again))
            .collect();
        assert_eq!(
            dups,
            [
                ("/e/a", "a", (1, 8), (3, 2)),
                ("/e/a/c", "c", (3, 8), (3, 16)),
            ]
        );
        // The last occurrence is the one parsed, so it is the one placed.
        assert_eq!(map.position("/e/a"), Some((3, 2)));
    }

    #[test]
    fn yaml_members_elements_and_keys_given_twice() {
        let text = "\
contract: chat
namespaces:
  /chat:
    clientEvents:
      send:
        payload: {type: object}
      send:
        payload: {type: string}
    rooms:
      - name: thread
        pattern: 'thread:{id}'
";
        let map = SourceMap::new(Path::new("c.yaml"), text);
        assert_eq!(map.position(""), Some((1, 1)));
        assert_eq!(map.position("/contract"), Some((1, 1)));
        assert_eq!(map.position("/namespaces/~1chat"), Some((3, 3)));
        assert_eq!(
            map.position("/namespaces/~1chat/clientEvents/send"),
            Some((7, 7))
        );
        assert_eq!(
            map.position("/namespaces/~1chat/clientEvents/send/payload/type"),
            Some((8, 19))
        );
        assert_eq!(map.position("/namespaces/~1chat/rooms/0"), Some((10, 9)));
        assert_eq!(
            map.position("/namespaces/~1chat/rooms/0/pattern"),
            Some((11, 9))
        );
        let dups: Vec<_> = map
            .duplicates()
            .iter()
            .map(|d| (d.pointer.as_str(), d.first, d.again))
            .collect();
        assert_eq!(
            dups,
            [("/namespaces/~1chat/clientEvents/send", (5, 7), (7, 7))]
        );
    }
}
