//! Bounded text and redaction: the one place where words from outside
//! (a server's replies, a record, a header) are cut to size and cleaned of
//! secrets before they reach a log line, an error, the store, the CLI's
//! output or a metric.
//!
//! A leaf module: it imports no other module of the crate, so every stage
//! can use it.
//!
//! Redaction works on what mailcanary itself sent: each protocol client
//! [`register`]s the secrets it holds and the exact strings it puts on the
//! wire (AUTH PLAIN / LOGIN base64, XOAUTH2 and OAUTHBEARER initial
//! responses), and [`redact`] replaces any of them, raw, base64-encoded or
//! IMAP-quoted, with [`REDACTED`] in server text. A server can only echo what
//! it was given, so that list is complete for echoes.

use std::borrow::Cow;
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, RwLock};

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine;

/// What a secret in server text is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Longest server text kept for a log line, an error or the store, in characters.
pub const SERVER_TEXT_MAX: usize = 300;

/// Secrets with a lifetime ([`Kept::Rotating`]) remembered at most; the
/// oldest is forgotten first. Configured secrets are always kept.
const ROTATING_MAX: usize = 4096;

/// At most `max` bytes of `s`, cut on a character boundary.
pub fn bounded(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Cuts `s` in place to at most `max` bytes on a character boundary.
pub fn truncate(s: &mut String, max: usize) {
    let keep = bounded(s, max).len();
    s.truncate(keep);
}

/// Hostile or very long text for a message: at most `max` characters,
/// control characters escaped, `…` where it was cut.
pub fn excerpt(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (n, ch) in text.chars().enumerate() {
        if n >= max {
            out.push('…');
            break;
        }
        if ch.is_control() {
            out.extend(ch.escape_default());
        } else {
            out.push(ch);
        }
    }
    out
}

/// A server's words as mailcanary keeps them: secrets redacted, one line
/// (control characters become spaces), at most [`SERVER_TEXT_MAX`]
/// characters. Redaction runs on the whole text before it is cut, so a
/// secret at the cut cannot leave a readable prefix behind.
pub fn server(text: &str) -> String {
    // Bound the work first: a server can send megabytes; a secret longer
    // than the slack would be cut off anyway.
    let head = bounded(text, SERVER_TEXT_MAX * 4 + 4096);
    let clean = redact(head);
    clean
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(SERVER_TEXT_MAX)
        .collect()
}

/// An error and its sources, joined with ": ", as server text ([`server`]).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
        if s.len() > SERVER_TEXT_MAX * 4 {
            break;
        }
    }
    server(&s)
}

/// How long a registered secret stays in the redaction list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// For the life of the process (configured passwords, refresh tokens).
    Always,
    /// Until [`ROTATING_MAX`] newer ones came (access tokens, which rotate hourly).
    Rotating,
}

/// Adds `secret` to what [`redact`] removes: the value itself, its base64
/// (how AUTH LOGIN and PLAIN carry it) and its IMAP-quoted form.
pub fn register(secret: &str, kept: Kept) {
    if secret.is_empty() {
        return;
    }
    let mut forms = vec![secret.to_string()];
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD.encode(secret);
    forms.push(b64);
    // RFC 3501 §4.3: `"` and `\` are escaped in quoted strings.
    if secret.contains(['"', '\\']) {
        forms.push(secret.replace('\\', "\\\\").replace('"', "\\\""));
    }
    // A JSON error body quotes it with the same escapes, and `/` as `\/` at times.
    if secret.contains('/') {
        forms.push(secret.replace('/', "\\/"));
    }
    let mut reg = registry().write().unwrap_or_else(|e| e.into_inner());
    let mut changed = false;
    for form in forms {
        changed |= reg.insert(form, kept);
    }
    if changed {
        reg.matcher = None;
    }
}

/// `text` with every registered secret (and its encodings) replaced by [`REDACTED`].
pub fn redact(text: &str) -> Cow<'_, str> {
    let Some(matcher) = matcher() else {
        return Cow::Borrowed(text);
    };
    if !matcher.is_match(text) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    matcher.replace_all_with(text, &mut out, |_, _, dst| {
        dst.push_str(REDACTED);
        true
    });
    Cow::Owned(out)
}

/// The registered secrets and the automaton built from them.
#[derive(Default)]
struct Registry {
    always: HashSet<String>,
    rotating: VecDeque<String>,
    matcher: Option<Arc<AhoCorasick>>,
}

impl Registry {
    /// Adds a form; whether the list changed.
    fn insert(&mut self, form: String, kept: Kept) -> bool {
        if self.always.contains(&form) {
            return false;
        }
        match kept {
            Kept::Always => {
                self.rotating.retain(|f| *f != form);
                self.always.insert(form);
            }
            Kept::Rotating => {
                if self.rotating.contains(&form) {
                    return false;
                }
                if self.rotating.len() >= ROTATING_MAX {
                    self.rotating.pop_front();
                }
                self.rotating.push_back(form);
            }
        }
        true
    }
}

fn registry() -> &'static RwLock<Registry> {
    static REGISTRY: std::sync::OnceLock<RwLock<Registry>> = std::sync::OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// The automaton over every registered form, built after a change.
fn matcher() -> Option<Arc<AhoCorasick>> {
    {
        let reg = registry().read().unwrap_or_else(|e| e.into_inner());
        if reg.always.is_empty() && reg.rotating.is_empty() {
            return None;
        }
        if let Some(m) = &reg.matcher {
            return Some(m.clone());
        }
    }
    let mut reg = registry().write().unwrap_or_else(|e| e.into_inner());
    let patterns: Vec<&String> = reg.always.iter().chain(reg.rotating.iter()).collect();
    // Longest first, so a secret inside a longer registered form goes whole.
    let built = AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(patterns)
        .ok()
        .map(Arc::new);
    reg.matcher = built.clone();
    built
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_cuts_on_a_character_boundary() {
        assert_eq!(bounded("abc", 10), "abc");
        assert_eq!(bounded("abc", 2), "ab");
        assert_eq!(bounded("aé", 2), "a");
        let mut s = "日本語".to_string();
        truncate(&mut s, 4);
        assert_eq!(s, "日");
    }

    #[test]
    fn excerpt_escapes_and_cuts() {
        assert_eq!(excerpt("a\nb", 10), "a\\nb");
        assert_eq!(excerpt("abcdef", 3), "abc…");
    }

    #[test]
    fn server_text_is_one_bounded_line() {
        assert_eq!(server("a\r\nb"), "a  b");
        assert_eq!(
            server(&"x".repeat(1_000_000)).chars().count(),
            SERVER_TEXT_MAX
        );
    }

    #[test]
    fn registered_secrets_and_their_encodings_are_redacted() {
        register("hunter2-text-test", Kept::Always);
        let plain =
            base64::engine::general_purpose::STANDARD.encode("\0u@x.test\0hunter2-text-test");
        register("\0u@x.test\0hunter2-text-test", Kept::Always);
        let login = base64::engine::general_purpose::STANDARD.encode("hunter2-text-test");
        let said = format!(
            "NO Authentication failed for LOGIN \"u\" \"hunter2-text-test\"; 535 {plain}; 334 {login}"
        );
        let out = server(&said);
        assert!(!out.contains("hunter2"), "{out}");
        assert!(!out.contains(&plain[..20]), "{out}");
        assert!(!out.contains(&login[..16]), "{out}");
        assert!(out.contains(REDACTED));
        // Quoted with escapes, as IMAP servers echo a LOGIN argument.
        register("pa\"ss\\word-text-test", Kept::Always);
        let out = server("NO LOGIN \"pa\\\"ss\\\\word-text-test\" refused");
        assert!(!out.contains("word-text-test"), "{out}");
    }

    #[test]
    fn rotating_secrets_are_bounded() {
        for n in 0..ROTATING_MAX + 10 {
            register(&format!("rot-text-test-{n}"), Kept::Rotating);
        }
        let reg = registry().read().unwrap();
        assert!(reg.rotating.len() <= ROTATING_MAX);
    }

    #[test]
    fn text_without_secrets_is_untouched() {
        assert!(matches!(redact("250 ok"), Cow::Borrowed("250 ok")));
    }
}
