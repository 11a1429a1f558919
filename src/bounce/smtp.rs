//! Codes and addresses found in a server's free text: enhanced status codes
//! (RFC 3463), SMTP reply codes (RFC 5321 §4.2) and mail addresses. Hand
//! scanners over bytes: one pass, no backtracking.

use std::fmt;
use std::sync::LazyLock;

use super::phrases::Phrases;

/// An enhanced mail system status code, `class.subject.detail` (RFC 3463 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status {
    /// 2 success, 4 persistent transient failure, 5 permanent failure.
    pub class: u8,
    /// 0 other, 1 addressing, 2 mailbox, 3 mail system, 4 network/routing,
    /// 5 protocol, 6 content, 7 security/policy.
    pub subject: u16,
    /// The detail within the subject.
    pub detail: u16,
}

impl Status {
    /// A status from its three numbers, if RFC 3463 allows them.
    pub fn new(class: u8, subject: u16, detail: u16) -> Option<Status> {
        (matches!(class, 2 | 4 | 5) && subject <= 9 && detail <= 999).then_some(Status {
            class,
            subject,
            detail,
        })
    }

    /// Reads `5.1.1` (surrounding blanks and a trailing comment are allowed).
    pub fn parse(s: &str) -> Option<Status> {
        find_status(s.trim())
            .filter(|_| s.trim().as_bytes().first().is_some_and(u8::is_ascii_digit))
    }

    /// Whether it says more than the class (`5.0.0` and `4.0.0` do not).
    pub fn is_specific(self) -> bool {
        self.subject != 0 || self.detail != 0
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

fn digits(b: &[u8], at: usize, max: usize) -> Option<(u16, usize)> {
    let mut n: u16 = 0;
    let mut i = at;
    while i < b.len() && b[i].is_ascii_digit() && i - at < max {
        n = n * 10 + u16::from(b[i] - b'0');
        i += 1;
    }
    (i > at && !(i < b.len() && b[i].is_ascii_digit())).then_some((n, i))
}

/// The first enhanced status code in `text` that is not part of an IP
/// address or a version number.
pub fn find_status(text: &str) -> Option<Status> {
    statuses(text).next().map(|(_, s)| s)
}

/// The first status in `text` written right after an SMTP reply code of
/// its class (`550 5.2.2`, `550-5.2.2`, `550-'5.2.2`): the remote server's
/// own, where a relay put its summary first ("5.1.0 - Unknown address
/// error 550-'5.2.2 … Mailbox Full'").
pub fn find_reply_status(text: &str) -> Option<Status> {
    find_reply_status_at(text).map(|(_, s)| s)
}

/// [`find_reply_status`] with the byte offset of its reply code.
pub fn find_reply_status_at(text: &str) -> Option<(usize, Status)> {
    let b = text.as_bytes();
    statuses(text).find_map(|(at, s)| {
        let mut k = at;
        let mut gap = 0;
        while k > 0 && matches!(b[k - 1], b' ' | b'-' | b'\'' | b'"') && gap < 3 {
            k -= 1;
            gap += 1;
        }
        (k >= 3
            && b[k - 3] == b'0' + s.class
            && b[k - 2].is_ascii_digit()
            && b[k - 1].is_ascii_digit()
            && (k == 3 || !b[k - 4].is_ascii_alphanumeric()))
        .then(|| (k - 3, s))
    })
}

/// The statuses in `text` with their byte offsets, in order.
fn statuses(text: &str) -> impl Iterator<Item = (usize, Status)> + '_ {
    let b = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i + 4 < b.len() {
            let at = i;
            i += 1;
            let c = b[at];
            if matches!(c, b'2' | b'4' | b'5')
                && b[at + 1] == b'.'
                && (at == 0 || !(b[at - 1].is_ascii_digit() || b[at - 1] == b'.'))
            {
                if let Some((subject, j)) = digits(b, at + 2, 3) {
                    if j < b.len() && b[j] == b'.' {
                        if let Some((detail, k)) = digits(b, j + 1, 3) {
                            let ip_like =
                                k + 1 < b.len() && b[k] == b'.' && b[k + 1].is_ascii_digit();
                            if !ip_like {
                                if let Some(s) = Status::new(c - b'0', subject, detail) {
                                    return Some((at, s));
                                }
                            }
                        }
                    }
                }
            }
        }
        None
    })
}

/// The first SMTP reply code in `text`: three digits `[245][0-5][0-9]`
/// standing alone (`said: 550 5.1.1`, `#550`, `<<< 452-`, `(550)`).
pub fn find_reply_code(text: &str) -> Option<u16> {
    let b = text.as_bytes();
    for i in 0..b.len().saturating_sub(2) {
        let (c, d, e) = (b[i], b[i + 1], b[i + 2]);
        if !(matches!(c, b'2' | b'4' | b'5') && (b'0'..=b'5').contains(&d) && e.is_ascii_digit()) {
            continue;
        }
        let before_ok = i == 0
            || matches!(
                b[i - 1],
                b' ' | b'\t' | b'#' | b'(' | b'[' | b':' | b'"' | b'\'' | b'='
            );
        let after = b.get(i + 3).copied();
        let after_ok = matches!(
            after,
            None | Some(b' ' | b'-' | b')' | b']' | b'\r' | b'\n' | b'\t' | b'"' | b',')
        );
        // "550-5.1.1" and "550 5.1.1" are replies; "550 bytes" is not.
        let word_after = b.get(i + 4).copied();
        let not_count = !matches!(after, Some(b' '))
            || word_after.is_none_or(|w| !w.is_ascii_alphabetic())
            || starts_reply_text(&b[i + 4..]);
        if before_ok && after_ok && not_count {
            let code = u16::from(c - b'0') * 100 + u16::from(d - b'0') * 10 + u16::from(e - b'0');
            return Some(code);
        }
    }
    None
}

/// Whether the words after a reply code read like a reply, not a count.
fn starts_reply_text(rest: &[u8]) -> bool {
    let word: Vec<u8> = rest
        .iter()
        .take_while(|c| c.is_ascii_alphabetic())
        .take(16)
        .map(u8::to_ascii_lowercase)
        .collect();
    !matches!(
        word.as_slice(),
        b"bytes"
            | b"seconds"
            | b"minutes"
            | b"hours"
            | b"days"
            | b"times"
            | b"messages"
            | b"recipients"
            | b"kb"
            | b"mb"
    )
}

/// The SMTP command a reply answered (RFC 5321 §4.1.1), as far as a bounce
/// tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// The greeting after the connection opened.
    Connect,
    /// `EHLO` / `HELO`.
    Hello,
    /// `MAIL FROM`.
    MailFrom,
    /// `RCPT TO`.
    RcptTo,
    /// `DATA`, or the end of the message data.
    Data,
}

/// How MTAs write the command a reply answered (lower case): Postfix "(in
/// reply to end of DATA command)", Exim "after end of data", a Sendmail or
/// Courier transcript ">>> DATA", m-FILTER's "SMTP command" section.
const COMMAND_MARKERS: &[(&str, Command)] = &[
    ("in reply to end of data command", Command::Data),
    ("in reply to data command", Command::Data),
    ("after end of data", Command::Data),
    ("after data", Command::Data),
    ("did not like our final data", Command::Data),
    (">>> data", Command::Data),
    ("smtp command\ndata", Command::Data),
    ("smtp command\r\ndata", Command::Data),
    ("in reply to rcpt to command", Command::RcptTo),
    ("after rcpt to", Command::RcptTo),
    (">>> rcpt to", Command::RcptTo),
    ("smtp command\nrcpt", Command::RcptTo),
    ("smtp command\r\nrcpt", Command::RcptTo),
    ("in reply to mail from command", Command::MailFrom),
    ("after mail from", Command::MailFrom),
    (">>> mail from", Command::MailFrom),
    ("in reply to ehlo command", Command::Hello),
    ("in reply to helo command", Command::Hello),
    ("after ehlo", Command::Hello),
    ("after helo", Command::Hello),
    (">>> ehlo", Command::Hello),
    (">>> helo", Command::Hello),
    ("after initial connection", Command::Connect),
    ("in reply to initial greeting", Command::Connect),
];

/// The command named first in `lc` (lower case text), if any, in one pass.
pub fn find_command(lc: &str) -> Option<Command> {
    static MARKERS: LazyLock<Phrases> = LazyLock::new(|| {
        Phrases::new(COMMAND_MARKERS.iter().map(|(m, _)| std::slice::from_ref(m)))
    });
    MARKERS.leftmost_group(lc).map(|g| COMMAND_MARKERS[g].1)
}

/// The command of the transcript line (`>>> CMD`) last sent before byte
/// `at` of `lc`, looking back at most 4 KiB: the command the reply quoted
/// at `at` answered.
pub fn command_before(lc: &str, at: usize) -> Option<Command> {
    let mut at = at.min(lc.len());
    while !lc.is_char_boundary(at) {
        at -= 1;
    }
    let mut from = at.saturating_sub(4096);
    while !lc.is_char_boundary(from) {
        from += 1;
    }
    let window = &lc[from..at];
    let sent = window.rfind(">>> ");
    // Sendmail: "... while talking to mx.example.org.:" followed by a reply
    // with no command sent since: the reply was the greeting.
    let talking = window.rfind("while talking to");
    match (sent, talking) {
        (Some(s), Some(t)) if t > s => Some(Command::Connect),
        (None, Some(_)) => Some(Command::Connect),
        (Some(s), _) => find_command(&window[s..]),
        (None, None) => None,
    }
}

fn is_local_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b".!#$%&'*+/=?^_`{|}~-".contains(&c) || c >= 0x80
}

fn is_domain_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'.' || c == b'-' || c >= 0x80
}

/// The address-like tokens in `text` (`local@domain.tld`), in order, as
/// byte ranges. Linear: each byte is looked at a bounded number of times.
pub fn find_addresses(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    for (at, _) in text.match_indices('@') {
        if at < from {
            continue;
        }
        let mut s = at;
        while s > from && is_local_char(b[s - 1]) {
            s -= 1;
        }
        let mut e = at + 1;
        while e < b.len() && is_domain_char(b[e]) {
            e += 1;
        }
        while e > at + 1 && (b[e - 1] == b'.' || b[e - 1] == b'-') {
            e -= 1;
        }
        while s < at && b[s] == b'.' {
            s += 1;
        }
        if s < at && e > at + 1 && text.is_char_boundary(s) && text.is_char_boundary(e) {
            if clean_address(&text[s..e]).is_some() {
                out.push((s, e));
            }
            from = e;
        }
    }
    out
}

/// Normalises an address as written in a report (`rfc822;<A@Example.COM>`):
/// no type prefix, brackets or quotes, domain in lower case. `None` when it
/// is not `local@domain.tld`.
pub fn clean_address(raw: &str) -> Option<String> {
    let mut s = raw.trim();
    if let Some((kind, rest)) = s.split_once(';') {
        if kind.trim().eq_ignore_ascii_case("rfc822") || kind.trim().eq_ignore_ascii_case("utf-8") {
            s = rest.trim();
        }
    }
    let s = s.trim_matches(|c: char| {
        matches!(c, '<' | '>' | '"' | '\'' | '(' | ')' | ':' | ',' | ';') || c.is_whitespace()
    });
    // An address literal keeps its brackets (`user@[192.0.2.1]`, RFC 5321 §4.1.3).
    let s = match s.find("@[") {
        Some(_) => s,
        None => s.trim_matches(|c| c == '[' || c == ']'),
    };
    if s.len() > 254
        || s.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
    {
        return None;
    }
    let (local, domain) = s.rsplit_once('@')?;
    let domain = domain.trim_end_matches('.');
    if let Some(literal) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        let ok = !local.is_empty()
            && literal.len() >= 2
            && literal.bytes().all(|c| {
                c.is_ascii_hexdigit() || matches!(c, b'.' | b':' | b'v' | b'I' | b'P' | b'p')
            });
        return ok.then(|| format!("{local}@[{}]", literal.to_ascii_lowercase()));
    }
    if local.is_empty()
        || local.contains('@')
        || domain.len() < 3
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.contains("..")
        || !domain.bytes().all(is_domain_char)
    {
        return None;
    }
    Some(format!("{local}@{}", domain.to_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_with_no_command_since_the_connection_answers_the_greeting() {
        let t = "... while talking to mx.example.org.:\n<<< 554 go away\n";
        assert_eq!(
            command_before(t, t.find("<<<").unwrap()),
            Some(Command::Connect)
        );
        let t = "... while talking to mx.example.org.:\n>>> rcpt to:<a@b.c>\n<<< 550 no\n";
        assert_eq!(
            command_before(t, t.find("<<<").unwrap()),
            Some(Command::RcptTo)
        );
        let t = ">>> data\n... while talking to mx2.example.org.:\n<<< 554 no\n";
        assert_eq!(
            command_before(t, t.find("<<<").unwrap()),
            Some(Command::Connect)
        );
        assert_eq!(command_before("<<< 554 no", 0), None);
    }

    #[test]
    fn the_servers_own_status_follows_its_reply_code() {
        let f = |t: &str| find_reply_status(t).map(|s| s.to_string());
        assert_eq!(
            f("5.1.0 - Unknown address error 550-'5.2.2 <a@b.c>... Mailbox Full'"),
            Some("5.2.2".into())
        );
        assert_eq!(f("550-5.1.1 The email account"), Some("5.1.1".into()));
        assert_eq!(f("said: 550 5.7.1 no"), Some("5.7.1".into()));
        assert_eq!(f("5.1.0 - Unknown address error"), None);
        assert_eq!(f("550 4.7.1 mixed classes"), None);
        assert_eq!(f("x1550 5.1.1"), None);
        assert_eq!(f(""), None);
    }

    #[test]
    fn commands_are_found_where_mtas_write_them() {
        let f = |t: &str| find_command(&t.to_ascii_lowercase());
        assert_eq!(
            f("said: 550 unknown user (in reply to end of DATA command)"),
            Some(Command::Data)
        );
        assert_eq!(
            f("SMTP error from remote mail server after end of data: 550 no"),
            Some(Command::Data)
        );
        assert_eq!(
            f("SMTP error from remote mail server after RCPT TO:<a@b.c>: 550"),
            Some(Command::RcptTo)
        );
        assert_eq!(
            f(">>> RCPT To:<a@b.c>\n<<< 250 ok\n>>> DATA\n<<< 550 unknown"),
            Some(Command::RcptTo),
            "the first named command"
        );
        assert_eq!(f("550 5.1.1 user unknown"), None);
        assert_eq!(f(""), None);
        let t = ">>> mail from:<x@y.z>\n<<< 250 ok\n>>> rcpt to:<a@b.c>\n<<< 250 ok\n>>> data\n<<< 550 unknown user";
        let at = t.find("<<< 550").unwrap();
        assert_eq!(command_before(t, at), Some(Command::Data));
        let at = t.find("<<< 250 ok\n>>> data").unwrap();
        assert_eq!(command_before(t, at), Some(Command::RcptTo));
        assert_eq!(command_before(t, 0), None);
        assert_eq!(command_before("ü>>> data", 1), None, "char boundary");
    }

    #[test]
    fn statuses_are_found_but_not_in_addresses() {
        let f = |t: &str| find_status(t).map(|s| s.to_string());
        assert_eq!(f("said: 550 5.1.1 <a@b.c>: unknown"), Some("5.1.1".into()));
        assert_eq!(f("#550 5.2.2 mailbox full ##"), Some("5.2.2".into()));
        assert_eq!(f("host 5.6.7.8 said 4.7.0 try later"), Some("4.7.0".into()));
        assert_eq!(f("version 4.2.11.3 released"), None);
        assert_eq!(f("at 192.5.1.1 nothing"), None);
        assert_eq!(f("(5.7.26)"), Some("5.7.26".into()));
        assert_eq!(f("5.1.1"), Some("5.1.1".into()));
        assert_eq!(f("5.1."), None);
        assert_eq!(f(""), None);
    }

    #[test]
    fn reply_codes_are_found_but_not_counts() {
        assert_eq!(find_reply_code("host x said: 550 5.1.1 unknown"), Some(550));
        assert_eq!(find_reply_code("<<< 452-4.2.2 full"), Some(452));
        assert_eq!(find_reply_code("#550 5.1.1 RESOLVER"), Some(550));
        assert_eq!(find_reply_code("size 552 bytes exceeded"), None);
        assert_eq!(find_reply_code("port 2525 closed"), None);
        assert_eq!(find_reply_code("554 Transaction failed"), Some(554));
        assert_eq!(find_reply_code("55"), None);
    }

    #[test]
    fn addresses_are_found_and_cleaned() {
        let t = "<User.Name+tag@Example.COM>: host mx.example.com said: 550 <x@y.org>";
        let found: Vec<&str> = find_addresses(t)
            .into_iter()
            .map(|(s, e)| &t[s..e])
            .collect();
        assert_eq!(found, ["User.Name+tag@Example.COM", "x@y.org"]);
        assert_eq!(
            clean_address("rfc822; <User@Example.COM>").as_deref(),
            Some("User@example.com")
        );
        assert_eq!(clean_address("not an address"), None);
        assert_eq!(clean_address("a@localhost"), None);
        assert_eq!(clean_address("@example.com"), None);
        assert!(find_addresses("@@@@a@@b@.@").is_empty());
    }
}
