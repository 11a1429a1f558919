//! Config diagnostics: every problem names `file:line:col` and the key.
//!
//! Positions come from the spans the TOML parser keeps. For errors raised by
//! serde (unknown key, wrong type) the key path is recovered by finding the
//! innermost key whose span encloses the error.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// One problem in one config file, at one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: PathBuf,
    pub line: usize,
    pub col: usize,
    /// Dotted key path, e.g. `probes.signup.timeout`; empty for file-level problems.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.path.display(), self.line, self.col)?;
        if !self.key.is_empty() {
            write!(f, "key `{}`: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// A config file's text with what is needed to turn byte spans into positions.
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

impl Source {
    pub fn new(path: &Path, text: String) -> Self {
        Source {
            path: path.to_path_buf(),
            text,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        (line, col)
    }

    pub fn at(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> Diagnostic {
        let (line, col) = self.position(span.start);
        Diagnostic {
            path: self.path.clone(),
            line,
            col,
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// A diagnostic for a value that was deserialized with its span.
    pub fn at_value<T>(&self, v: &Spanned<T>, key: &str, message: impl Into<String>) -> Diagnostic {
        self.at(v.span(), key, message)
    }

    /// Convert a TOML/serde error, recovering the key path from its span.
    pub fn toml_error(&self, err: &toml::de::Error) -> Diagnostic {
        // The parser gives no place when it stops at its nesting limit (a
        // dotted key of thousands of parts): the deepest key's line is it.
        let span = err
            .span()
            .or_else(|| deepest_key(&self.text))
            .unwrap_or(0..0);
        let key = key_at(&self.text, span.clone()).unwrap_or_default();
        self.at(span, &key, err.message().trim_end().to_string())
    }
}

/// The line of the key or table header with the most dotted parts, when it
/// has more than any sane file (the TOML parser's nesting limit is 80).
fn deepest_key(text: &str) -> Option<Range<usize>> {
    let mut offset = 0;
    let mut deepest: Option<(usize, Range<usize>)> = None;
    for line in text.split_inclusive('\n') {
        let key = line.split('=').next().unwrap_or(line);
        let dots = key.bytes().filter(|b| *b == b'.').count();
        if dots >= 64 && deepest.as_ref().is_none_or(|(d, _)| dots > *d) {
            deepest = Some((dots, offset..offset + line.trim_end().len()));
        }
        offset += line.len();
    }
    deepest.map(|(_, span)| span)
}

/// The dotted path of the innermost key the error at `span` is about: a key
/// or value that holds the error's start, or a key inside the error's span
/// (serde reports a missing field over the whole `[table]` header).
fn key_at(text: &str, span: Range<usize>) -> Option<String> {
    let table = DeTable::parse(text).ok()?;
    let mut keys = Vec::new();
    collect(table.get_ref(), &mut Vec::new(), &mut keys);
    keys.into_iter()
        .filter(|(_, k, v)| {
            k.contains(&span.start)
                || v.contains(&span.start)
                || (span.contains(&k.start) && k.start > span.start)
        })
        .max_by_key(|(path, k, _)| (path.len(), k.start))
        .map(|(path, _, _)| path.join("."))
}

type KeySpans = Vec<(Vec<String>, Range<usize>, Range<usize>)>;

/// Every key path in the document with its key and value spans.
fn collect(table: &DeTable<'_>, path: &mut Vec<String>, out: &mut KeySpans) {
    for (key, value) in table.iter() {
        path.push(key.get_ref().to_string());
        out.push((path.clone(), key.span(), value.span()));
        collect_value(value.get_ref(), path, out);
        path.pop();
    }
}

fn collect_value(value: &DeValue<'_>, path: &mut Vec<String>, out: &mut KeySpans) {
    match value {
        DeValue::Table(t) => collect(t, path, out),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(i.to_string());
                out.push((path.clone(), item.span(), item.span()));
                collect_value(item.get_ref(), path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let src = Source::new(Path::new("x.toml"), "a = 1\n数 = \"é\"\nb".to_string());
        assert_eq!(src.position(0), (1, 1));
        assert_eq!(src.position(6), (2, 1));
        let b = src.text.rfind('b').unwrap();
        assert_eq!(src.position(b), (3, 1));
        let e = src.text.find('é').unwrap();
        assert_eq!(src.position(e), (2, 6));
    }

    #[test]
    fn key_path_found_inside_nested_tables() {
        let text = "[seeds.one]\nport = 1\nhost = \"h\"\n";
        let off = text.find("\"h\"").unwrap();
        assert_eq!(
            key_at(text, off..off + 3).as_deref(),
            Some("seeds.one.host")
        );
        assert_eq!(
            key_at(text, 0..11).as_deref(),
            Some("seeds.one"),
            "a whole [table] header"
        );
    }
}
