//! Delivery status notifications (RFC 3464, RFC 6533) and feedback reports
//! (RFC 5965): field blocks, one per recipient, read into [`Bounce`]s.

use super::mime::{Headers, Parts};
use super::smtp::{self, Status};
use super::{text, Action, Bounce, Reason};

/// Splits a `message/delivery-status` body into its field blocks (RFC 3464
/// §2.1: the per-message block, then one per recipient, separated by blank
/// lines), each unfolded.
pub fn blocks(body: &str) -> Vec<Headers> {
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let trimmed = rest.trim_start_matches(['\r', '\n', ' ', '\t']);
        if trimmed.is_empty() {
            break;
        }
        // A block ends at the first empty line.
        let end = find_blank_line(trimmed).unwrap_or(trimmed.len());
        let h = Headers::parse(&trimmed.as_bytes()[..end]);
        if !h.0.is_empty() {
            out.push(h);
        }
        if end >= trimmed.len() || out.len() > super::MAX_RECIPIENTS {
            break;
        }
        rest = &trimmed[end..];
    }
    out
}

fn find_blank_line(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\n' {
            let mut j = i + 1;
            while j < b.len() && (b[j] == b'\r' || b[j] == b' ' || b[j] == b'\t') {
                if b[j] == b'\r' {
                    j += 1;
                    break;
                }
                j += 1;
            }
            if j >= b.len() || b[j] == b'\n' {
                return Some(i + 1);
            }
        }
        i += 1;
    }
    None
}

/// Strips the type prefix of a typed field (`rfc822; a@b`, `dns; mx.host`,
/// `smtp; 550 …`, RFC 3464 §2.1.2).
pub(super) fn untyped(v: &str) -> &str {
    match v.split_once(';') {
        Some((kind, rest)) if !kind.contains(' ') && kind.len() < 20 => rest.trim(),
        _ => v.trim(),
    }
}

/// Decodes xtext (`+2B` → `+`, RFC 3461 §4) and the RFC 6533 §3 `\x{HEX}`
/// form of UTF-8 addresses.
pub fn decode_address(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut rest = v;
    while let Some(c) = rest.chars().next() {
        // `get`: the two bytes after `+` may be part of a multibyte character.
        if let Some(hex) = rest.get(1..3).filter(|_| c == '+') {
            if let Ok(n) = u8::from_str_radix(hex, 16) {
                if n.is_ascii() && rest.is_char_boundary(3) {
                    out.push(char::from(n));
                    rest = &rest[3..];
                    continue;
                }
            }
        }
        if let Some(tail) = rest.strip_prefix("\\x{") {
            if let Some(end) = tail.find('}') {
                if let Some(ch) = u32::from_str_radix(&tail[..end], 16)
                    .ok()
                    .and_then(char::from_u32)
                {
                    out.push(ch);
                    rest = &tail[end + 1..];
                    continue;
                }
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// The recipients of one `message/delivery-status` body.
pub fn recipients(body: &str, parts: &Parts) -> Vec<Bounce> {
    let blocks = blocks(body);
    let mut out = Vec::new();
    let text_lc = parts.text.to_lowercase();
    for b in &blocks {
        let address = b
            .get("final-recipient")
            .or_else(|| b.get("original-recipient"))
            .or_else(|| b.get("x-actual-recipient"))
            .map(|v| decode_address(untyped(v)));
        let Some(address) = address else { continue };
        let status = b.get("status").and_then(Status::parse);
        let mut action = b.get("action").and_then(Action::parse);
        let diagnostic_type = b
            .get("diagnostic-code")
            .and_then(|v| v.split_once(';'))
            .map(|(t, _)| t.trim().to_ascii_lowercase());
        let mut diagnostic = b.get("diagnostic-code").map(|v| untyped(v).to_owned());
        let own_words = diagnostic.as_deref().is_some_and(|d| !d.trim().is_empty());
        if !own_words {
            // Postfix and others leave the server's words to the text part.
            diagnostic = text::diagnostic_for(&address, &parts.text);
        }
        let remote_mta = b
            .get("remote-mta")
            // "dns; mx.example.com. (192.0.2.1, the server for …)": the name only.
            .and_then(|v| untyped(v).split_whitespace().next())
            .map(|v| v.trim_end_matches('.').to_owned())
            .or_else(|| diagnostic.as_deref().and_then(text::remote_mta));
        if action.is_none() {
            action = match status.map(|s| s.class) {
                Some(2) => Some(Action::Delivered),
                Some(4) => Some(Action::Delayed),
                _ => Some(Action::Failed),
            };
        }
        let command = command_for(&address, diagnostic.as_deref(), &parts.text, &text_lc);
        if let Some(mut bounce) = super::finish(
            &address, action, status, None, remote_mta, diagnostic, command,
        ) {
            // The MTA's own delivery agent failed (a pipe, a transport), not
            // the remote server.
            let local_agent = matches!(diagnostic_type.as_deref(), Some("x-postfix" | "x-unix"));
            // A delay is `expired` only for want of anything more specific;
            // the MTA's own agent failing is more specific.
            let wordless_delay = bounce.reason == Reason::Expired
                && bounce.action == Some(Action::Delayed)
                && super::reason::by_text(
                    &bounce
                        .diagnostic
                        .as_deref()
                        .unwrap_or_default()
                        .to_lowercase(),
                )
                .is_none();
            if local_agent
                && (wordless_delay
                    || matches!(
                        bounce.reason,
                        Reason::SystemError
                            | Reason::OnHold
                            | Reason::Undefined
                            | Reason::SecurityError
                    ))
            {
                bounce.reason = Reason::MailerError;
            }
            if !out.iter().any(|o: &Bounce| o.recipient == bounce.recipient) {
                out.push(bounce);
            }
        }
    }
    out
}

/// The SMTP command a recipient's reply answered: named in the diagnostic
/// itself; else the transcript line (`>>> DATA`) sent before the reply where
/// the human-readable part quotes it; else named in the recipient's
/// paragraph there (Postfix's "(in reply to end of DATA command)").
fn command_for(
    address: &str,
    diagnostic: Option<&str>,
    text: &str,
    text_lc: &str,
) -> Option<smtp::Command> {
    let diag_lc = super::one_line(&diagnostic.unwrap_or_default().to_lowercase());
    if let Some(c) = smtp::find_command(&diag_lc) {
        return Some(c);
    }
    let mut cut = diag_lc.len().min(24);
    while !diag_lc.is_char_boundary(cut) {
        cut -= 1;
    }
    let needle = &diag_lc[..cut];
    if needle.len() >= 12 {
        // The reply may be quoted twice (Sendmail's "(reason: …)" line, then
        // the transcript): the first quote with a command sent before it.
        if let Some(c) = text_lc
            .match_indices(needle)
            .take(8)
            .find_map(|(at, _)| smtp::command_before(text_lc, at))
        {
            return Some(c);
        }
    }
    text::diagnostic_for(address, text).and_then(|p| smtp::find_command(&p.to_lowercase()))
}

/// Whether the message is a complaint of Microsoft's Junk Mail Reporting
/// Program: "complaint about message from <ip>", sent without a
/// `message/feedback-report` part, the complained-of message attached with
/// its complainant in `X-HmXmrOriginalRecipient`.
pub fn is_jmrp(parts: &Parts) -> bool {
    parts
        .subject
        .to_lowercase()
        .contains("complaint about message")
        && parts
            .returned
            .as_ref()
            .and_then(|r| r.get("x-hmxmroriginalrecipient"))
            .is_some_and(|v| !smtp::find_addresses(v).is_empty())
}

/// The complainant(s) of an RFC 5965 feedback report, reason `feedback`.
pub fn feedback(body: &str, parts: &Parts) -> Vec<Bounce> {
    let fields = Headers(blocks(body).into_iter().flat_map(|h| h.0).collect());
    let mut addresses: Vec<String> = fields
        .all("original-rcpt-to")
        .map(|v| decode_address(untyped(v)))
        .collect();
    if addresses.is_empty() {
        if let Some(r) = &parts.returned {
            // Microsoft's JMRP names the complainant in its own header.
            let to = r
                .get("x-hmxmroriginalrecipient")
                .or_else(|| r.get("to"))
                .unwrap_or_default();
            addresses.extend(
                smtp::find_addresses(to)
                    .into_iter()
                    .take(1)
                    .map(|(s, e)| to[s..e].to_owned()),
            );
        }
    }
    let kind = fields.get("feedback-type").unwrap_or("abuse").to_owned();
    let remote = fields
        .get("reporting-mta")
        .map(|v| untyped(v).to_owned())
        .or_else(|| fields.get("source").map(str::to_owned));
    let complaint = |recipient: String, recipient_domain: String| Bounce {
        recipient,
        recipient_domain,
        action: None,
        status: None,
        reply_code: None,
        reason: Reason::Feedback,
        remote_mta: remote.clone(),
        diagnostic: Some(super::one_line(&format!("feedback-type: {kind}"))),
    };
    let out: Vec<Bounce> = addresses
        .iter()
        .filter_map(|a| {
            let recipient = smtp::clean_address(a)?;
            let domain = recipient.rsplit_once('@')?.1.to_owned();
            Some(complaint(recipient, domain))
        })
        .collect();
    if out.is_empty() && !body.trim().is_empty() {
        // Feedback providers may withhold the complainant (RFC 6590
        // redaction; "undisclosed recipient" in the returned `To`): the
        // complaint is still one, about a recipient not named.
        return vec![complaint(String::new(), String::new())];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_split_on_blank_lines() {
        let b = blocks("Reporting-MTA: dns; a\r\n\r\nFinal-Recipient: rfc822; x@y.z\r\nAction: failed\r\n \r\nFinal-Recipient: rfc822; q@y.z\r\n");
        assert_eq!(b.len(), 3);
        assert_eq!(b[1].get("action"), Some("failed"));
        assert_eq!(b[2].get("final-recipient"), Some("rfc822; q@y.z"));
    }

    #[test]
    fn addresses_decode() {
        assert_eq!(decode_address("a+2Bb@example.com"), "a+b@example.com");
        assert_eq!(
            decode_address("\\x{4E2D}\\x{6587}@example.com"),
            "中文@example.com"
        );
        assert_eq!(decode_address("+ZZ+"), "+ZZ+");
        // A multibyte character right after `+` (found by the mutation test).
        assert_eq!(decode_address("+\u{FFFD}0900"), "+\u{FFFD}0900");
        assert_eq!(decode_address("+é"), "+é");
        assert_eq!(decode_address("\\x{ffffffff}"), "\\x{ffffffff}");
    }
}
