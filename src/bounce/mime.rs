//! Reads the MIME structure of a message once (mail-parser) and keeps what
//! the classifier looks at, bounded.
//!
//! mail-parser never panics by its own promise, decodes transfer encodings
//! and charsets, and nests encoded `message/rfc822` parts at most 3 deep; its
//! multipart nesting costs a stack entry per level, so it is linear in the
//! input, which [`super::MAX_MESSAGE_BYTES`] bounds. What it keeps here is cut
//! again: the explanation text to [`MAX_TEXT_BYTES`], header blocks to
//! [`MAX_HEADER_BYTES`], parts looked at to [`MAX_PARTS`].

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

use super::{Action, Bounce, Reason};

/// Most human-readable text kept from the bounce itself.
pub const MAX_TEXT_BYTES: usize = 128 << 10;
/// Most bytes of one header block read.
pub const MAX_HEADER_BYTES: usize = 64 << 10;
/// Most MIME parts looked at.
pub const MAX_PARTS: usize = 512;
/// Most report parts kept.
const MAX_REPORTS: usize = 16;

/// A header block: lower-case names with unfolded values, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    /// Reads the header block at the start of `raw` (up to the first blank
    /// line), unfolding continuation lines (RFC 5322 §2.2.3).
    pub fn parse(raw: &[u8]) -> Headers {
        let raw = &raw[..raw.len().min(MAX_HEADER_BYTES)];
        let text = String::from_utf8_lossy(raw);
        let mut out: Vec<(String, String)> = Vec::new();
        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() {
                break;
            }
            if line.starts_with([' ', '\t']) {
                if let Some((_, v)) = out.last_mut() {
                    v.push(' ');
                    v.push_str(line.trim());
                }
                continue;
            }
            if let Some((name, value)) = line.split_once(':') {
                let name = name.trim();
                if !name.is_empty() && !name.contains(' ') {
                    out.push((name.to_ascii_lowercase(), value.trim().to_owned()));
                }
            }
        }
        Headers(out)
    }

    /// The first value of a field (name in lower case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a field.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the classifier reads from one message.
#[derive(Debug, Default)]
pub struct Parts {
    /// The top-level header block.
    pub headers: Headers,
    /// The sender's address, lower case (`mailer-daemon@example.org`).
    pub from: String,
    /// The sender's display name.
    pub from_name: String,
    /// The decoded subject.
    pub subject: String,
    /// `report-type` of a top-level `multipart/report`, lower case.
    pub report_type: Option<String>,
    /// Bodies of `message/delivery-status` and `message/global-delivery-status`.
    pub delivery_status: Vec<String>,
    /// Body of a `message/feedback-report`.
    pub feedback: Option<String>,
    /// The human-readable explanation: the text parts of the bounce itself
    /// (not of the returned message), HTML stripped when there is no plain text.
    pub text: String,
    /// Header block of the returned message, from `message/rfc822`,
    /// `message/global` or `text/rfc822-headers`.
    pub returned: Option<Headers>,
}

/// Parses `raw`; `None` when it has no header block at all.
pub fn collect(raw: &[u8]) -> Option<Parts> {
    // mail-parser promises not to panic; should a bug break that promise on
    // some stranger's bytes, the message is treated as unreadable instead of
    // taking the caller down.
    let parsed = std::panic::catch_unwind(|| MessageParser::default().parse(raw));
    let message = parsed.ok().flatten()?;
    let mut parts = Parts {
        headers: Headers::parse(raw),
        subject: message.subject().unwrap_or_default().to_owned(),
        ..Parts::default()
    };
    if let Some(addr) = message.from().and_then(|a| a.first()) {
        parts.from = addr.address().unwrap_or_default().to_ascii_lowercase();
        parts.from_name = addr.name().unwrap_or_default().to_owned();
    }
    if let Some(ct) = message.content_type() {
        if ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
        {
            parts.report_type = ct.attribute("report-type").map(str::to_ascii_lowercase);
        }
    }
    walk(&message, &mut parts);
    if parts.text.is_empty() && parts.delivery_status.is_empty() && parts.feedback.is_none() {
        // A MIME structure too broken to yield any text (a folded
        // `Content-Type` whose `boundary=` line lost its indentation) is
        // still read: its body as it stands, so its words are not lost.
        if let Some(body) = raw_body(raw) {
            push_text(
                &mut parts,
                &String::from_utf8_lossy(&body[..body.len().min(MAX_TEXT_BYTES)]),
            );
        }
    }
    Some(parts)
}

/// The bytes after the top-level header block (RFC 5322 §2.1: the first
/// empty line), if there is one.
fn raw_body(raw: &[u8]) -> Option<&[u8]> {
    let lf = raw.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let crlf = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let at = match (lf, crlf) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    Some(&raw[at..])
}

fn content_type(part: &mail_parser::MessagePart<'_>) -> (String, String) {
    part.content_type().map_or_else(
        || (String::new(), String::new()),
        |ct| {
            (
                ct.ctype().to_ascii_lowercase(),
                ct.subtype().unwrap_or_default().to_ascii_lowercase(),
            )
        },
    )
}

fn push_text(parts: &mut Parts, text: &str) {
    let room = MAX_TEXT_BYTES.saturating_sub(parts.text.len());
    if room == 0 {
        return;
    }
    let mut cut = text.len().min(room);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    if !parts.text.is_empty() {
        parts.text.push('\n');
    }
    parts.text.push_str(&text[..cut]);
}

fn walk(message: &Message<'_>, parts: &mut Parts) {
    let mut html = String::new();
    let mut saw_plain = false;
    for (i, part) in message.parts.iter().enumerate().take(MAX_PARTS) {
        let (ctype, subtype) = content_type(part);
        let body_text = || -> Option<String> {
            match &part.body {
                PartType::Text(t) | PartType::Html(t) => Some(t.to_string()),
                PartType::Binary(b) | PartType::InlineBinary(b) => {
                    let b = &b[..b.len().min(MAX_TEXT_BYTES)];
                    Some(String::from_utf8_lossy(b).into_owned())
                }
                _ => None,
            }
        };
        match (ctype.as_str(), subtype.as_str()) {
            ("message", "delivery-status" | "global-delivery-status") => {
                if parts.delivery_status.len() < MAX_REPORTS {
                    if let Some(t) = body_text() {
                        parts.delivery_status.push(t);
                    }
                }
            }
            ("message", "feedback-report") => {
                if parts.feedback.is_none() {
                    parts.feedback = body_text();
                }
            }
            ("text", "rfc822-headers") | ("message", "rfc822-headers") => {
                if parts.returned.is_none() {
                    parts.returned = body_text().map(|t| Headers::parse(t.as_bytes()));
                }
            }
            _ => match &part.body {
                PartType::Message(m) if parts.returned.is_none() => {
                    parts.returned = Some(Headers::parse(m.raw_message()));
                }
                // A text part that is an attachment of the original is skipped.
                PartType::Text(t)
                    if (i == 0 || ctype.is_empty() || ctype == "text")
                        && (!part
                            .content_disposition()
                            .is_some_and(|d| d.is_attachment())
                            || parts.text.is_empty()) =>
                {
                    saw_plain = true;
                    push_text(parts, t);
                }
                PartType::Html(t) if html.len() < MAX_TEXT_BYTES => html.push_str(t),
                PartType::Binary(b) if ctype == "message" && parts.returned.is_none() => {
                    // A returned message mail-parser could not nest (too deep,
                    // encoded): its headers are still readable.
                    parts.returned = Some(Headers::parse(b));
                }
                _ => {}
            },
        }
    }
    if !saw_plain && !html.is_empty() {
        let stripped = strip_html(&html);
        push_text(parts, &stripped);
    }
}

/// Text of an HTML body: tags dropped, block ends as newlines, common
/// entities decoded. Good enough to read an error line; not a renderer.
pub fn strip_html(html: &str) -> String {
    let mut out = String::with_capacity(html.len().min(MAX_TEXT_BYTES));
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        let after = &rest[lt..];
        let Some(gt) = after.find('>') else {
            rest = "";
            break;
        };
        let tag = after[1..gt].trim_start_matches('/').to_ascii_lowercase();
        if ["br", "p", "div", "tr", "li", "h1", "h2", "h3", "table"]
            .iter()
            .any(|t| tag.starts_with(t))
        {
            out.push('\n');
        }
        rest = &after[gt + 1..];
        if out.len() > MAX_TEXT_BYTES {
            break;
        }
    }
    out.push_str(rest);
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// An RFC 3834 automatic reply (vacation, out of office), as a [`Bounce`]
/// on its sender with reason `vacation`.
pub fn auto_reply(parts: &Parts) -> Option<Bounce> {
    let h = &parts.headers;
    // RFC 3834 §5: Auto-Submitted: auto-replied; older systems' own headers.
    let auto = h
        .get("auto-submitted")
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("auto-replied"))
        || h.get("x-autoreply").is_some()
        || h.get("x-autorespond").is_some()
        || h.get("x-autoreply-from").is_some()
        || h.get("x-mail-autoreply").is_some()
        || h.get("precedence")
            .is_some_and(|v| v.eq_ignore_ascii_case("auto_reply"));
    let subject = parts.subject.to_lowercase();
    let by_subject = [
        "auto:",
        "automatic reply",
        "autoreply",
        "auto-reply",
        "auto reply",
        "out of office",
        "out of the office",
        "abwesenheitsnotiz",
        "réponse automatique",
        "自动回复",
        "自動返信",
        "автоответ",
    ]
    .iter()
    .any(|p| subject.contains(p));
    if !(auto || by_subject) || parts.from.is_empty() {
        return None;
    }
    let diagnostic = Some(super::one_line(&parts.subject)).filter(|s| !s.is_empty());
    let recipient = super::smtp::clean_address(&parts.from)?;
    Some(Bounce {
        recipient_domain: recipient.rsplit_once('@')?.1.to_owned(),
        recipient,
        action: None::<Action>,
        status: None,
        reply_code: None,
        reason: Reason::Vacation,
        remote_mta: None,
        diagnostic,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_unfold_and_stop_at_the_body() {
        let h =
            Headers::parse(b"From: a@b.c\r\nSubject: one\r\n two\r\nX-A: 1\r\n\r\nBody: no\r\n");
        assert_eq!(h.get("subject"), Some("one two"));
        assert_eq!(h.get("x-a"), Some("1"));
        assert_eq!(h.get("body"), None);
    }

    #[test]
    fn html_is_stripped() {
        assert_eq!(
            strip_html("<p>550 &lt;a@b.c&gt;</p><br>unknown<"),
            "\n550 <a@b.c>\n\nunknown"
        );
    }
}
