//! The probe token in delivered mail: the cheap lookup every watcher runs
//! on each new message, and the one the verdict uses on the parsed copy.
//! Pure: bytes in, the token out; bounded work on hostile input.

use mail_parser::{Message, MessageParser, PartType};

use super::compose::{PROBE_HEADER as TOKEN_HEADER, TOKEN_LEN, TOKEN_PREFIX};

/// Largest message whose bodies are decoded (base64, quoted-printable) to look for the token.
pub const MAX_DECODE_BYTES: usize = 4 << 20;

/// Finds the probe token (`mc-` + [`TOKEN_LEN`] base32 characters) and
/// returns the 26 characters: from the Message-ID first, then the
/// [`TOKEN_HEADER`] field, then the body. The raw bytes are scanned first;
/// only when that fails and the message has encoded parts (base64,
/// quoted-printable) is it parsed to scan the decoded text.
pub fn find_token(raw: &[u8]) -> Option<String> {
    let (found, body) = token_in_raw(raw);
    if found.is_some() {
        return found;
    }
    let encoded = contains_ci(raw, b"base64") || contains_ci(raw, b"quoted-printable");
    if body >= raw.len() || !encoded || raw.len() > MAX_DECODE_BYTES {
        return None;
    }
    token_in_parts(&MessageParser::new().parse(raw)?)
}

/// Finds the token in one field value, such as the Message-ID an IMAP
/// ENVELOPE returns.
pub fn find_token_in_value(value: &[u8]) -> Option<String> {
    scan_token(value)
}

/// Scans the raw header fields (Message-ID, then [`TOKEN_HEADER`]) and the
/// raw body; returns the token and the body's offset.
fn token_in_raw(raw: &[u8]) -> (Option<String>, usize) {
    let mut message_id = None;
    let mut probe_header = None;
    let body = header_fields(raw, |name, value| {
        if name.eq_ignore_ascii_case(b"Message-ID") {
            message_id.get_or_insert(value);
        } else if name.eq_ignore_ascii_case(TOKEN_HEADER.as_bytes()) {
            probe_header.get_or_insert(value);
        }
    });
    let found = message_id
        .and_then(scan_token)
        .or_else(|| probe_header.and_then(|v| scan_token(v).or_else(|| bare_token(v))))
        .or_else(|| raw.get(body..).and_then(scan_token));
    (found, body)
}

/// Scans the decoded text and HTML parts of a parsed message.
fn token_in_parts(message: &Message<'_>) -> Option<String> {
    message.parts.iter().find_map(|part| match &part.body {
        PartType::Text(t) | PartType::Html(t) => scan_token(t.as_bytes()),
        _ => None,
    })
}

/// Calls `f(name, value)` for each header field (values span continuation
/// lines) and returns the offset of the body (`raw.len()` if there is none).
fn header_fields<'a>(raw: &'a [u8], mut f: impl FnMut(&'a [u8], &'a [u8])) -> usize {
    let mut field: Option<(&[u8], usize)> = None;
    let mut pos = 0;
    let mut flush = |field: &mut Option<(&'a [u8], usize)>, end: usize| {
        if let Some((name, start)) = field.take() {
            f(name, &raw[start..end]);
        }
    };
    while pos < raw.len() {
        let end = raw[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |i| pos + i + 1);
        let line = &raw[pos..end];
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if content.is_empty() {
            flush(&mut field, pos);
            return end;
        }
        if !matches!(line[0], b' ' | b'\t') {
            flush(&mut field, pos);
            if let Some(colon) = line.iter().position(|&b| b == b':') {
                field = Some((line[..colon].trim_ascii(), pos + colon + 1));
            }
        }
        pos = end;
    }
    flush(&mut field, raw.len());
    raw.len()
}

/// The token of a message already parsed: the raw fields and body first,
/// then the decoded text parts (up to [`MAX_DECODE_BYTES`]).
pub fn find_token_parsed(raw: &[u8], message: &Message<'_>) -> Option<String> {
    let (token, _) = token_in_raw(raw);
    token.or_else(|| {
        (raw.len() <= MAX_DECODE_BYTES)
            .then(|| token_in_parts(message))
            .flatten()
    })
}

/// Whether a byte is in the lower-case base32 alphabet (RFC 4648 §6).
fn is_base32(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'2'..=b'7')
}

/// The first `mc-` + 26 base32 characters not touching other letters or digits.
pub(crate) fn scan_token(hay: &[u8]) -> Option<String> {
    let prefix = TOKEN_PREFIX.as_bytes();
    let mut from = 0;
    while let Some(i) = hay
        .get(from..)?
        .windows(prefix.len())
        .position(|w| w == prefix)
    {
        let start = from + i;
        from = start + 1;
        let token_start = start + prefix.len();
        let token = hay.get(token_start..token_start + TOKEN_LEN);
        let before_ok = start == 0 || !hay[start - 1].is_ascii_alphanumeric();
        let after_ok = !hay
            .get(token_start + TOKEN_LEN)
            .is_some_and(u8::is_ascii_alphanumeric);
        if let Some(token) = token {
            if before_ok && after_ok && token.iter().all(|&b| is_base32(b)) {
                return Some(String::from_utf8_lossy(token).into_owned());
            }
        }
    }
    None
}

/// A field value that is just the 26 characters, without the prefix.
fn bare_token(value: &[u8]) -> Option<String> {
    let v = value.trim_ascii();
    (v.len() == TOKEN_LEN && v.iter().all(|&b| is_base32(b)))
        .then(|| String::from_utf8_lossy(v).into_owned())
}

/// ASCII case-insensitive substring search.
fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}
