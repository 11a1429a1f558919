//! Bounces without a delivery-status part: qmail, Exim, old Sendmail,
//! Exchange and Outlook text, Gmail, Yahoo, Domino, Courier and the many
//! gateways that write prose. They are recognised by their own markers (or a
//! mailer-daemon sender and a bounce subject), and read the same way: the
//! explanation is cut where the returned message starts, a recipient is an
//! address that opens a line (or follows "delivered to"), and its diagnostic
//! is the text that follows it, or the server's reply quoted elsewhere.

use std::sync::LazyLock;

use regex::Regex;

use super::mime::Headers;
use super::mime::Parts;
use super::phrases::Phrases;
use super::smtp::{self, Status};
use super::{Action, Bounce, Reason};

/// The software or provider whose bounce text was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mta {
    /// Postfix (non-MIME bounces of old versions, or a text-only relay).
    Postfix,
    /// Exim (and Mail.ru, cPanel hosts).
    Exim,
    /// Sendmail.
    Sendmail,
    /// qmail and its forks.
    Qmail,
    /// Microsoft Exchange / Office 365 / Outlook.com text.
    Exchange,
    /// Gmail / Google Workspace.
    Gmail,
    /// Yahoo Mail.
    Yahoo,
    /// Amazon SES / WorkMail.
    AmazonSes,
    /// Tencent QQ Mail / Exmail.
    Qq,
    /// NetEase (163.com, 126.com).
    Netease,
    /// Mail.ru.
    MailRu,
    /// Yandex.
    Yandex,
    /// Courier MTA.
    Courier,
    /// IBM/HCL Domino (Lotus Notes).
    Domino,
    /// GMX / WEB.DE (1&1).
    Gmx,
    /// OpenSMTPD.
    OpenSmtpd,
    /// Ipswitch IMail ("SMTP32").
    Imail,
    /// KDDI au one net (Japanese mobile carrier).
    Kddi,
    /// au EZweb mobile mail (KDDI, `ezweb.ne.jp`).
    Ezweb,
    /// Apache James and gateways built on it (Verizon's vtext.com): an
    /// "Error message below:" and a "Message details:" list naming the
    /// envelope (`RCPT TO:`).
    James,
    /// The fml mailing list manager (`X-MLServer: fml`).
    Fml,
    /// A bounce without a known marker, read generically.
    Unknown,
}

impl Mta {
    /// A short name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mta::Postfix => "postfix",
            Mta::Exim => "exim",
            Mta::Sendmail => "sendmail",
            Mta::Qmail => "qmail",
            Mta::Exchange => "exchange",
            Mta::Gmail => "gmail",
            Mta::Yahoo => "yahoo",
            Mta::AmazonSes => "amazonses",
            Mta::Qq => "qq",
            Mta::Netease => "netease",
            Mta::MailRu => "mailru",
            Mta::Yandex => "yandex",
            Mta::Courier => "courier",
            Mta::Domino => "domino",
            Mta::Gmx => "gmx",
            Mta::OpenSmtpd => "opensmtpd",
            Mta::Imail => "imail",
            Mta::Kddi => "kddi",
            Mta::Ezweb => "ezweb",
            Mta::James => "james",
            Mta::Fml => "fml",
            Mta::Unknown => "unknown",
        }
    }
}

/// Sentences each MTA writes into its bounces (ASCII lower case, matched on
/// the lower-cased explanation). The first MTA with a match wins.
const MARKERS: &[(Mta, &[&str])] = &[
    (Mta::Qmail, &["this is the qmail-send program", "qmail-send program at"]),
    (
        Mta::Gmail,
        &[
            "delivery to the following recipient failed permanently",
            "delivery to the following recipients failed permanently",
            "delivery to the following recipient has been delayed",
            "technical details of permanent failure",
            "technical details of temporary failure",
            "google tried to deliver your message",
            "your message wasn't delivered to",
        ],
    ),
    (
        Mta::Yahoo,
        &["sorry, we were unable to deliver your message to the following address"],
    ),
    (
        Mta::Exchange,
        &[
            "delivery has failed to these recipients or groups",
            "diagnostic information for administrators",
            "your message did not reach some or all of the intended recipients",
            "the following recipient(s) cannot be reached",
            "your message couldn't be delivered",
            "delivery to the following recipients failed",
            "delivery to these recipients or groups is complete",
        ],
    ),
    (
        Mta::AmazonSes,
        &[
            "an error occurred while trying to deliver the mail to the following recipients",
            "the following message to <",
        ],
    ),
    (
        Mta::Sendmail,
        &[
            "----- the following addresses had permanent fatal errors -----",
            "----- transcript of session follows -----",
            "the original message was received at",
        ],
    ),
    (
        Mta::Postfix,
        &[
            "this is the mail system at host",
            "this is the postfix program at host",
        ],
    ),
    (
        Mta::Courier,
        &[
            "this is a delivery status notification from",
            "courier mail server at",
        ],
    ),
    // Domino, and Lotus Notes R4/R5's "Failure Reasons" report.
    (
        Mta::Domino,
        &["was not delivered to:", "------- failure reasons"],
    ),
    (
        Mta::Imail,
        &["invalid final delivery userid:", "original message follows."],
    ),
    (
        Mta::Kddi,
        &["could not be delivered to: <", "as their mailbox is full"],
    ),
    (
        Mta::OpenSmtpd,
        &[
            "this is the mailer-daemon, please do not reply to this e-mail",
            "an error has occurred while attempting to deliver a message for the following list of recipients",
        ],
    ),
    (
        Mta::Exim,
        &[
            "this message was created automatically by mail delivery software",
            "a message that you sent could not be delivered to one or more of its",
            "a message that you sent has not yet been delivered to one or more of its",
        ],
    ),
];

/// Sender domains of providers with their own text (checked before markers,
/// since Mail.ru and GMX write Exim's sentences).
const SENDER_DOMAINS: &[(&str, Mta)] = &[
    ("mail.ru", Mta::MailRu),
    ("gmx.net", Mta::Gmx),
    ("gmx.de", Mta::Gmx),
    ("web.de", Mta::Gmx),
    ("yandex.ru", Mta::Yandex),
    ("yandex.net", Mta::Yandex),
    ("qq.com", Mta::Qq),
    ("163.com", Mta::Netease),
    ("126.com", Mta::Netease),
    ("netease.com", Mta::Netease),
    ("yahoo.com", Mta::Yahoo),
    ("yahoo.co.jp", Mta::Yahoo),
    ("googlemail.com", Mta::Gmail),
    ("google.com", Mta::Gmail),
    ("amazonses.com", Mta::AmazonSes),
    ("ezweb.ne.jp", Mta::Ezweb),
];

/// Where the returned message starts in a one-part bounce (lower case).
const RETURNED_MARKERS: &[&str] = &[
    "------ this is a copy of the message",
    "--- below this line is a copy of the message",
    "----- original message -----",
    "-----original message-----",
    "------ original message follows",
    "----- unsent message below -----",
    "----- unsent message follows -----",
    "----- original message follows -----",
    "------- returned message",
    "--- the header of the original message is following",
    "original message headers:",
    "original mail as follows:",
    "the original message headers are included as attachment",
    "----- message header follows -----",
    "content-type: message/rfc822",
    "\n--- original message ---",
    "\noriginal message follows.",
];

/// Subjects of bounces (lower case, substring).
const SUBJECTS: &[&str] = &[
    "undelivered mail returned to sender",
    "undeliverable",
    "undelivered mail",
    "mail delivery failed",
    "mail delivery failure",
    "delivery status notification",
    "delivery failure",
    "delivery failed",
    "failure notice",
    "returned mail",
    "non-delivery",
    "nondeliverable",
    "mail system error",
    "delivery notification",
    "warning: could not send message",
    "message not delivered",
    "could not send message",
    "delayed mail",
    "delivery delayed",
    "delivery problem",
    "系统退信",
    "退信",
    "undelivered",
    "недоставленное сообщение",
    "не удалось доставить",
];

/// Local parts and names of bounce senders.
const SENDERS: &[&str] = &[
    "mailer-daemon",
    "mailer_daemon",
    "mailerdaemon",
    "mail-daemon",
    "postmaster",
    "mail delivery",
    "microsoftexchange",
    "bounce",
    "mdaemon",
];

/// Labels after which a server's reply is quoted (lower case).
const REPLY_LABELS: &[&str] = &[
    "the error that the other server returned was:",
    "remote server returned",
    "remote host said:",
    "remote server said:",
    "diagnostic-code:",
    "technical details of permanent failure:",
    "technical details of temporary failure:",
    "the server responded with",
    "because:",
    "reason:",
    "error message:",
    "error message below:",
    "smtp error from remote mail server",
];

/// Sentences that say a message is only delayed (lower case).
const DELAY_MARKERS: &[&str] = &[
    "this is a warning message only",
    "will continue to try",
    "has not yet been delivered",
    "delivery temporarily suspended",
    "delivery to the following recipient has been delayed",
    "still trying",
    "delivery is delayed",
    "delivery delayed",
];

/// fml's error notices, by the words of their subject or first lines
/// (lower case), and what each refusal means.
const FML_ERRORS: &[(Reason, &[&str])] = &[
    (
        Reason::Rejected,
        &[
            "not member article from",
            "are not member",
            "is not member",
            "reject mail from",
            "spam mail from a spammer is rejected",
        ],
    ),
    (
        Reason::SystemError,
        &[
            "fml system error message",
            "loop alert:",
            "loop back warning:",
            "unix from loop",
            "duplicated message-id",
        ],
    ),
    (Reason::SecurityError, &["security alert:"]),
];

/// The refusal an fml notice reports, from its subject and text.
fn fml_error(subject_lc: &str, text_lc: &str) -> Option<Reason> {
    FML_ERRORS
        .iter()
        .find(|(_, p)| {
            p.iter()
                .any(|p| subject_lc.contains(p) || text_lc.contains(p))
        })
        .map(|(r, _)| *r)
}

/// Longest tail scanned after an address for its diagnostic, in lines.
const MAX_BLOCK_LINES: usize = 24;

fn lower(s: &str) -> String {
    s.to_ascii_lowercase()
}

fn detect(parts: &Parts, text_lc: &str) -> Option<Mta> {
    let from_domain = parts.from.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    let by_sender = SENDER_DOMAINS.iter().find(|(d, _)| {
        from_domain == *d
            || (from_domain.ends_with(d)
                && from_domain.as_bytes()[from_domain.len() - d.len() - 1] == b'.')
    });
    static BY_MARKER: LazyLock<Phrases> =
        LazyLock::new(|| Phrases::new(MARKERS.iter().map(|(_, m)| *m)));
    let by_marker = BY_MARKER.first_group(text_lc).map(|i| MARKERS[i].0);
    let local = parts.from.split('@').next().unwrap_or("");
    let name = lower(&parts.from_name);
    let subject = parts.subject.to_lowercase();
    let sender_is_daemon = SENDERS
        .iter()
        .any(|s| local.starts_with(s) || name.contains(s));
    let subject_is_bounce = SUBJECTS.iter().any(|s| subject.contains(s));
    let exchange = parts.headers.get("x-ms-exchange-message-is-ndr").is_some()
        || parts
            .headers
            .get("x-ms-exchange-generated-message-source")
            .is_some();
    let failed_header = parts.headers.get("x-failed-recipients").is_some();
    // Apache James: both sections, so that a person quoting "the error
    // message below:" is not taken for a bounce.
    let james = text_lc.contains("error message below:") && text_lc.contains("message details:");
    let fml = parts
        .headers
        .get("x-mlserver")
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("fml"))
        && fml_error(&subject, text_lc).is_some();
    // A bounce subject alone ("delivery failed" written by a person) is not
    // enough: it also needs the original returned.
    let evidence = by_marker.is_some()
        || james
        || fml
        || exchange
        || failed_header
        || sender_is_daemon
        || (subject_is_bounce && parts.returned.is_some());
    if !evidence {
        return None;
    }
    Some(
        by_sender
            .map(|(_, m)| *m)
            .or(fml.then_some(Mta::Fml))
            .or(james.then_some(Mta::James))
            .or(by_marker)
            .or(exchange.then_some(Mta::Exchange))
            .or(failed_header.then_some(Mta::Exim))
            .unwrap_or(Mta::Unknown),
    )
}

/// The explanation part of a one-part bounce: up to where the returned
/// message starts.
fn region(text: &str) -> &str {
    static RETURNED: LazyLock<Phrases> = LazyLock::new(|| Phrases::new([RETURNED_MARKERS]));
    let lc = lower(text);
    let cut = RETURNED.leftmost(&lc).unwrap_or(text.len());
    let mut cut = cut.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}

/// The header block of a returned message written inline after the
/// explanation ("----- Unsent message follows -----", "------- Returned
/// Message --------"), for bounces that do not attach it as a MIME part.
fn returned_inline(text: &str) -> Option<Headers> {
    static RETURNED: LazyLock<Phrases> = LazyLock::new(|| Phrases::new([RETURNED_MARKERS]));
    let at = RETURNED.leftmost(&lower(text))?;
    let rest = text.get(at..)?;
    let rest = &rest[rest.find('\n')? + 1..];
    let h = Headers::parse(rest.trim_start_matches(['\r', '\n']).as_bytes());
    (!h.0.is_empty()).then_some(h)
}

/// The paragraph under Lotus Notes' "------- Failure Reasons --------".
fn failure_reasons(region: &str) -> Option<String> {
    let lc = lower(region);
    let at = lc.find("------- failure reasons")?;
    let rest = region.get(at..)?;
    let rest = rest.get(rest.find('\n')? + 1..)?;
    let para: Vec<&str> = rest
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| !l.trim().is_empty() && !l.trim_start().starts_with("---"))
        .take(MAX_BLOCK_LINES)
        .collect();
    (!para.is_empty()).then(|| para.join(" "))
}

/// An fml notice: the list it was about (the first address of the notice
/// that is not its sender's), with the refusal its words name.
fn fml(parts: &Parts, region: &str) -> Option<Bounce> {
    let subject = parts.subject.to_lowercase();
    let reason = fml_error(&subject, &lower(region))?;
    let list = region.lines().find_map(|l| {
        smtp::find_addresses(l)
            .into_iter()
            .map(|(s, e)| &l[s..e])
            .find(|a| !is_sender_address(a, parts))
    })?;
    let words = region
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    let diagnostic = join(words, &parts.subject);
    let mut b = super::finish(
        list,
        Some(Action::Failed),
        None,
        None,
        None,
        Some(diagnostic),
        None,
    )?;
    b.reason = reason;
    b.status = super::reason::implied_status(reason, 5);
    Some(b)
}

/// The envelope recipients a bounce lists as "RCPT TO: a@b" (Apache
/// James' "Message details:"), for one that names them nowhere else.
fn rcpt_to_lines(region: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in region.lines() {
        let t = line.trim_start_matches(|c: char| c.is_whitespace() || c == '>');
        if !t
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("rcpt to:"))
        {
            continue;
        }
        for (s, e) in smtp::find_addresses(t) {
            if let Some(a) = smtp::clean_address(&t[s..e]) {
                if !out.iter().any(|o| o.eq_ignore_ascii_case(&a))
                    && out.len() < super::MAX_RECIPIENTS
                {
                    out.push(a);
                }
            }
        }
    }
    out
}

/// A recipient found in the text with the words written next to it.
#[derive(Debug)]
struct Block {
    address: String,
    words: String,
    /// Index of the line naming the address in the region.
    line: usize,
}

fn is_sender_address(a: &str, parts: &Parts) -> bool {
    let a = a.to_ascii_lowercase();
    let local = a.split('@').next().unwrap_or("");
    a == parts.from
        || [
            "mailer-daemon",
            "postmaster",
            "mail-daemon",
            "mailerdaemon",
            "noreply",
            "no-reply",
        ]
        .contains(&local)
}

/// Words before an address in a sentence that make it the failed recipient.
const LEADS: &[&str] = &[
    "delivered to",
    "delivery to",
    "deliver to",
    "deliver your message to",
    "message to",
    "sent to",
    "recipient:",
    "recipient address:",
    "recipients:",
    "failed recipient",
    "addressed to",
    "generated by",
    "unknown user:",
    "userid:",
    "allowed size:",
    "sent <<< rcpt to:",
    "to the following address",
    "收件人",
    "получатель",
    "адрес",
];

fn blocks(region: &str, parts: &Parts) -> Vec<Block> {
    let lines: Vec<&str> = region.lines().collect();
    let mut out: Vec<Block> = Vec::new();
    // The reverse-path of a transcript (">>> MAIL From:<a@b>"): a reply
    // naming it ("<<< 501 <a@b>... no access") refuses the sender, it does
    // not list a recipient (RFC 5321 §3.3).
    let mut reverse_path: Option<String> = None;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if let Some(cmd) = line.trim_start().strip_prefix(">>> ") {
            if cmd
                .get(..10)
                .is_some_and(|c| c.eq_ignore_ascii_case("mail from:"))
            {
                reverse_path = smtp::find_addresses(cmd)
                    .first()
                    .and_then(|&(s, e)| smtp::clean_address(&cmd[s..e]));
            }
        }
        let t =
            line.trim_start_matches(|c: char| c.is_whitespace() || matches!(c, '-' | '*' | '•'));
        // Old Sendmail transcripts name the recipient after the reply code:
        // "554 <user@host>... 550 Host unknown".
        let (code, t) = split_reply_code(t);
        let found = smtp::find_addresses(t);
        let opening = found
            .first()
            .filter(|(s, _)| *s <= 2 && !t[..*s].contains(char::is_alphanumeric));
        let (addr, rest) = if let Some(&(s, e)) = opening {
            (&t[s..e], &t[e..])
        } else {
            let led = found.iter().find(|(s, _)| {
                // Lower-cased on its own: lower-casing may change byte
                // lengths, so offsets into `t` are not offsets into a
                // lower-cased copy of all of it.
                let mut ts = s.saturating_sub(40);
                while !t.is_char_boundary(ts) {
                    ts += 1;
                }
                let before = t[ts..*s].to_lowercase();
                LEADS.iter().any(|l| before.contains(l))
            });
            match led {
                Some(&(s, e)) => (&t[s..e], &t[e..]),
                None => {
                    i += 1;
                    continue;
                }
            }
        };
        // An address opening its line is listed as a recipient (even a
        // postmaster's); one inside a sentence may be a contact address.
        let is_sender = if opening.is_some() {
            addr.eq_ignore_ascii_case(&parts.from)
                || (!code.is_empty()
                    && reverse_path
                        .as_deref()
                        .is_some_and(|r| smtp::clean_address(addr).as_deref() == Some(r)))
        } else {
            is_sender_address(addr, parts)
        };
        if is_sender {
            i += 1;
            continue;
        }
        let mut words = String::new();
        // Sendmail writes a local delivery agent's own words on the line
        // before its "554 <a@b>... Service unavailable" ("mail.local:
        // unknown user: a"): they are the reason.
        if !code.is_empty() && i > 0 {
            let prev = lines[i - 1].trim();
            let transcript = ["<<<", ">>>", "---", "...", "while talking"]
                .iter()
                .any(|p| prev.to_ascii_lowercase().starts_with(p));
            if !prev.is_empty()
                && !transcript
                && !prev.starts_with(|c: char| c.is_ascii_digit())
                && smtp::find_addresses(prev).is_empty()
            {
                words.push_str(prev);
                words.push(' ');
            }
        }
        words.push_str(code);
        words.push_str(rest.trim_start_matches(|c: char| {
            matches!(c, '>' | ':' | '.' | ',' | ';' | '"' | ')') || c.is_whitespace()
        }));
        let mut j = i + 1;
        while j < lines.len() && j <= i + MAX_BLOCK_LINES {
            let next = lines[j];
            if next.trim().is_empty() {
                break;
            }
            let nt = next.trim_start();
            // Another recipient starts here, unless it is this one again in
            // a wrapped reply ("said: 550\n    <a@b>: User unknown"); in a
            // transcript, after its reply code ("554 <c@d>... 550 Host
            // unknown").
            let (_, nt_addr) = split_reply_code(nt);
            // A transcript's next session is about other recipients.
            if nt
                .trim_start_matches('.')
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("while talking to")
            {
                break;
            }
            if smtp::find_addresses(nt_addr)
                .first()
                .is_some_and(|&(s, e)| s <= 1 && !nt_addr[s..e].eq_ignore_ascii_case(addr))
            {
                break;
            }
            words.push(' ');
            words.push_str(nt);
            j += 1;
        }
        out.push(Block {
            address: addr.to_owned(),
            words,
            line: i,
        });
        i = j.max(i + 1);
    }
    out
}

/// A leading SMTP reply code (after an optional "<<< "), with its space,
/// and the rest of the line; ("", line) when there is none.
fn split_reply_code(t: &str) -> (&str, &str) {
    let s = t.strip_prefix("<<< ").unwrap_or(t);
    let b = s.as_bytes();
    if b.len() > 4
        && matches!(b[0], b'4' | b'5')
        && b[1].is_ascii_digit()
        && b[2].is_ascii_digit()
        && b[3] == b' '
        && b[4] == b'<'
    {
        (&s[..4], &s[4..])
    } else {
        ("", t)
    }
}

/// Words near a recipient that has none of its own: the rest of its own
/// line ("Unknown user: a@b"), else the nearest line of text before it
/// (skipping blank lines), else the nearest after it, within three lines;
/// separator lines ("-----") end the search. Undecodable text (U+FFFD)
/// still counts as words: something was written there.
fn nearby(lines: &[&str], at: usize) -> Option<String> {
    let wordy = |t: &str| t.contains(|c: char| c.is_alphabetic() || c == '\u{FFFD}');
    let own = lines.get(at).map_or(String::new(), |l| {
        let mut rest = (*l).to_owned();
        for (s, e) in smtp::find_addresses(l).into_iter().rev() {
            rest.replace_range(s..e, "");
        }
        rest.trim()
            .trim_matches(|c: char| matches!(c, '<' | '>' | ':' | ' '))
            .to_owned()
    });
    if wordy(&own) {
        return Some(own);
    }
    let usable = |t: &str| smtp::find_addresses(t).is_empty() && wordy(t);
    let separator = |t: &str| t.starts_with("--") || t.starts_with("==");
    // Before: a separator is the top of the list the address is in.
    let before = lines[..at.min(lines.len())].iter().map(|l| l.trim());
    for t in before.rev().filter(|t| !t.is_empty()).take(3) {
        if separator(t) {
            break;
        }
        if usable(t) {
            return Some(t.to_owned());
        }
    }
    // After: a separator may head the explanation ("--- Non-delivered
    // information ---").
    lines
        .iter()
        .skip(at + 1)
        .map(|l| l.trim())
        .filter(|t| !t.is_empty() && !separator(t))
        .take(3)
        .find(|t| usable(t))
        .map(str::to_owned)
}

/// The server's reply quoted somewhere in the explanation, for recipients
/// that have none of their own: the paragraph after a label such as
/// "Remote host said:", or else the first line holding a reply code.
fn quoted_reply(region: &str) -> Option<String> {
    let lines: Vec<&str> = region.lines().collect();
    let paragraph_from = |i: usize, first: &str| -> String {
        let mut s = first.trim().to_owned();
        let mut j = i + 1;
        // A label on its own line: its paragraph follows after blank lines.
        if s.is_empty() {
            while j < lines.len() && lines[j].trim().is_empty() && j < i + 4 {
                j += 1;
            }
        }
        while j < lines.len() && !lines[j].trim().is_empty() && j <= i + MAX_BLOCK_LINES {
            s.push(' ');
            s.push_str(lines[j].trim());
            j += 1;
        }
        s
    };
    // Of the labelled paragraphs, the first that quotes a code, else the first.
    static LABELS: LazyLock<Phrases> =
        LazyLock::new(|| Phrases::new(REPLY_LABELS.iter().map(std::slice::from_ref)));
    let mut first: Option<String> = None;
    for (i, line) in lines.iter().enumerate() {
        let lc = line.to_ascii_lowercase();
        for (g, p) in LABELS.first_of_each(&lc) {
            // ASCII lower-casing keeps byte offsets, so `p` is valid in `line`.
            let after = &line[p + REPLY_LABELS[g].len()..];
            let para = paragraph_from(i, after);
            if para.trim().is_empty() {
                continue;
            }
            if has_code(&para) {
                return Some(para);
            }
            first.get_or_insert(para);
        }
    }
    if first.is_some() {
        return first;
    }
    for (i, line) in lines.iter().enumerate() {
        let t =
            line.trim_start_matches(|c: char| c.is_whitespace() || matches!(c, '<' | '#' | '>'));
        if smtp::find_reply_code(t).is_some_and(|_| t.starts_with(|c: char| c.is_ascii_digit()))
            || line.contains("said:")
        {
            return Some(paragraph_from(i, line));
        }
    }
    None
}

fn has_code(s: &str) -> bool {
    smtp::find_status(s).is_some() || smtp::find_reply_code(s).is_some()
}

fn join(a: &str, b: &str) -> String {
    match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, _) => b.trim().to_owned(),
        (_, true) => a.trim().to_owned(),
        _ => format!("{} {}", b.trim(), a.trim()),
    }
}

/// The words written for `address` in a bounce's text (used for DSNs whose
/// report part has no Diagnostic-Code).
pub fn diagnostic_for(address: &str, text: &str) -> Option<String> {
    let want = smtp::clean_address(address)?;
    let region = region(text);
    let parts = Parts::default();
    let words = blocks(region, &parts)
        .into_iter()
        .filter(|b| smtp::clean_address(&b.address).is_some_and(|a| a.eq_ignore_ascii_case(&want)))
        .map(|b| b.words)
        .find(|w| !w.trim().is_empty());
    match words {
        Some(w) if has_code(&w) => Some(w),
        Some(w) => Some(quoted_reply(region).map_or(w.clone(), |q| join(&w, &q))),
        None => quoted_reply(region),
    }
}

static REMOTE_MTA: LazyLock<[Regex; 5]> = LazyLock::new(|| {
    [
        // Postfix: "host mx.example.com[192.0.2.1] said:"
        Regex::new(r"(?i)\bhost\s+([a-z0-9][a-z0-9.-]*[a-z0-9])\s*\[[0-9a-f.:]+\]").unwrap(),
        // Sendmail: "... while talking to mx.example.com.:"
        Regex::new(r"(?i)while talking to\s+([a-z0-9][a-z0-9.-]*[a-z0-9])\.?:").unwrap(),
        // Gmail: "rejected by the server for the recipient domain x by mx.example.com. [192.0.2.1]"
        Regex::new(r"(?i)\bby\s+([a-z0-9][a-z0-9.-]*[a-z0-9])\.?\s+\[[0-9a-f.:]+\]").unwrap(),
        // Exchange: "Remote server: mx.example.com" / "Generating server" is local, not remote.
        Regex::new(
            r"(?i)remote (?:server|host|mta)\s*[:=]\s*(?:dns;\s*)?([a-z0-9][a-z0-9.-]*[a-z0-9])",
        )
        .unwrap(),
        // qmail: "192.0.2.1 does not like recipient."
        Regex::new(r"(?i)\b([0-9]{1,3}(?:\.[0-9]{1,3}){3}) does not like").unwrap(),
    ]
});

/// The remote host named in a diagnostic, if any.
pub fn remote_mta(diagnostic: &str) -> Option<String> {
    REMOTE_MTA.iter().find_map(|re| {
        re.captures(diagnostic)
            .and_then(|c| c.get(1))
            .map(|m| m.as_str().to_ascii_lowercase())
            .filter(|h| h.contains('.'))
    })
}

/// Reads a bounce without a report part: the MTA recognised and the
/// recipients found, or `None` when the message is not a bounce.
pub fn scan(parts: &Parts) -> Option<(Mta, Vec<Bounce>)> {
    let text_lc = lower(&parts.text);
    let mta = detect(parts, &text_lc)?;
    let region = region(&parts.text);
    let region_lc = lower(region);
    // Lotus Notes lists its failure reasons under a heading of their own.
    let listed_reasons = failure_reasons(region);
    let quoted = quoted_reply(region).or_else(|| listed_reasons.clone());

    // One entry per recipient: its own words, then any later block's words.
    let mut found: Vec<(String, String, Option<usize>)> = Vec::new();
    for b in blocks(region, parts) {
        let Some(addr) = smtp::clean_address(&b.address) else {
            continue;
        };
        match found
            .iter_mut()
            .find(|(a, _, _)| a.eq_ignore_ascii_case(&addr))
        {
            Some((_, words, _)) => {
                if !has_code(words) && has_code(&b.words) {
                    *words = join(words, &b.words);
                } else if words.trim().is_empty() {
                    *words = b.words;
                }
            }
            None => found.push((addr, b.words, Some(b.line))),
        }
    }
    // Exim and Google name the failed recipients in a header of their own:
    // where it is, it decides who failed (an address greeting the sender,
    // "kijitora@example.jp 様", is not one), keeping the words found.
    if let Some(v) = parts.headers.get("x-failed-recipients") {
        let listed: Vec<String> = smtp::find_addresses(v)
            .into_iter()
            .filter_map(|(s, e)| smtp::clean_address(&v[s..e]))
            .collect();
        if !listed.is_empty() {
            found.retain(|(a, _, _)| listed.iter().any(|l| l.eq_ignore_ascii_case(a)));
            for l in listed {
                if !found.iter().any(|(a, _, _)| a.eq_ignore_ascii_case(&l)) {
                    found.push((l, String::new(), None));
                }
            }
        }
    }
    if found.is_empty() && mta == Mta::Fml {
        return fml(parts, region).map(|b| (Mta::Fml, vec![b]));
    }
    let refusal_quoted = quoted.as_deref().is_some_and(has_code) || listed_reasons.is_some();
    if found.is_empty() && refusal_quoted {
        // The envelope, where the bounce lists it.
        found.extend(
            rcpt_to_lines(region)
                .into_iter()
                .map(|a| (a, String::new(), None)),
        );
    }
    if found.is_empty() && refusal_quoted {
        // The bounce names no recipient but quotes a refusal: the returned
        // message (attached, or inline after the explanation) says whom it
        // was for, when it was for one address only.
        let returned = parts
            .returned
            .clone()
            .or_else(|| returned_inline(&parts.text));
        if let Some(to) = returned.as_ref().and_then(|r| r.get("to")) {
            let addrs = smtp::find_addresses(to);
            if addrs.len() == 1 {
                let (s, e) = addrs[0];
                found.push((to[s..e].to_owned(), String::new(), None));
            }
        }
    }
    if found.is_empty() {
        return None;
    }
    static DELAY: LazyLock<Phrases> = LazyLock::new(|| Phrases::new([DELAY_MARKERS]));
    let delayed = DELAY.any(&region_lc) || lower(&parts.subject).contains("delay");
    let lines: Vec<&str> = region.lines().collect();
    let lone = found.len() == 1;
    let region_command = smtp::find_command(&region_lc);
    let mut out = Vec::new();
    for (addr, words, line) in found {
        let diagnostic = if has_code(&words) {
            words
        } else {
            match &quoted {
                Some(q) => join(&words, q),
                None => words,
            }
        };
        // Some carriers write the reason on a line of its own, apart from
        // the address ("The user(s) account is disabled." above it).
        let diagnostic = match line {
            Some(at) if diagnostic.trim().is_empty() => nearby(&lines, at).unwrap_or_default(),
            _ => diagnostic,
        };
        // A bounce about one recipient with no words next to it (Google
        // Groups' "the group you tried to contact may not exist, or you may
        // not have permission to post"): its explanation is about that one.
        let diagnostic = if diagnostic.trim().is_empty() && lone {
            region.to_owned()
        } else {
            diagnostic
        };
        let diag = diagnostic.trim();
        let status = smtp::find_reply_status(diag).or_else(|| smtp::find_status(diag));
        let reply = smtp::find_reply_code(diag);
        let class = status.map(|s| s.class).or(reply.map(|r| (r / 100) as u8));
        let action = match class {
            Some(4) if delayed => Action::Delayed,
            Some(2) => Action::Delivered,
            None if delayed => Action::Delayed,
            _ => Action::Failed,
        };
        let remote = remote_mta(diag);
        // The command the reply answered: in the recipient's words, else
        // the one the explanation names (m-FILTER's "SMTP command" section,
        // a transcript).
        let command = smtp::find_command(&diag.to_lowercase()).or(region_command);
        let diagnostic = (!diag.is_empty()).then(|| diag.to_owned());
        if let Some(mut b) = super::finish(
            &addr,
            Some(action),
            status.filter(|s: &Status| s.class != 2 || action == Action::Delivered),
            reply,
            remote,
            diagnostic,
            command,
        ) {
            // EZweb marks a message its sender check failed with
            // `X-SPASIGN: NG`; a refusal of such a message by its filter
            // hosts, this sentence alone and no reply quoted, is the
            // recipient's own setting refusing it: the recipient's filter.
            let spoof_marked = parts
                .headers
                .get("x-spasign")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("ng"));
            if mta == Mta::Ezweb
                && spoof_marked
                && b.reason == Reason::OnHold
                && b.reply_code.is_none()
                && lower(b.diagnostic.as_deref().unwrap_or_default())
                    .contains("was rejected by a remote mail server")
            {
                b.reason = Reason::Filtered;
                b.status = super::reason::implied_status(Reason::Filtered, 5);
            }
            out.push(b);
        }
    }
    (!out.is_empty()).then_some((mta, out))
}
