//! The bounce classifier: the raw bytes of one message in, a typed verdict
//! per recipient it reports on out (who, what happened, the status codes, and
//! a reason from Sisimai 5's vocabulary). Pure: no I/O, never panics, bounded
//! in depth and size, linear in the message size.
//!
//! Steps, one room each:
//! - [`mime`] — parse the message with mail-parser and collect what the
//!   other steps read: the report parts (RFC 3464 / RFC 6533
//!   `message/(global-)delivery-status`, RFC 5965 `message/feedback-report`),
//!   the human-readable explanation text, returned headers.
//! - [`dsn`] — the per-recipient fields of a delivery status report.
//! - [`sns`] — Amazon SES notifications e-mailed by Amazon SNS (JSON).
//! - [`text`] — bounces without a report part (qmail, Exim, Sendmail,
//!   Exchange, Gmail, Yahoo, Domino, …), read by their own markers.
//! - [`smtp`] — status and reply codes found in free text.
//! - [`reason`] — the reason from the diagnostic text and status code.
//! - [`cli`] — `mailcanary bounce`.
//!
//! The recipient's full address is kept in memory for the caller (to match a
//! probe or count per domain); outputs show it only when asked.

pub mod cli;
pub mod dsn;
pub mod mime;
mod phrases;
pub mod reason;
pub mod smtp;
pub mod sns;
pub mod text;

pub use reason::Reason;
pub use smtp::Status;

/// Largest message read: bytes past it are not looked at (the report and the
/// explanation come first; what follows is the returned original).
pub const MAX_MESSAGE_BYTES: usize = 4 << 20;
/// Longest diagnostic kept, in bytes (one line, cut at a char boundary).
pub const MAX_DIAGNOSTIC_BYTES: usize = 512;
/// Most recipients reported from one message.
pub const MAX_RECIPIENTS: usize = 256;

/// What the reporting MTA did for a recipient (RFC 3464 §2.3.3 `Action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Not delivered and no further attempts will be made.
    Failed,
    /// Not delivered yet; the MTA keeps trying.
    Delayed,
    /// Delivered (a success notification).
    Delivered,
    /// Handed to a system that sends no notifications.
    Relayed,
    /// Delivered and forwarded to several addresses (a list, an alias).
    Expanded,
}

impl Action {
    /// Every value, in a fixed order.
    pub const ALL: [Action; 5] = [
        Action::Failed,
        Action::Delayed,
        Action::Delivered,
        Action::Relayed,
        Action::Expanded,
    ];

    /// The RFC 3464 keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Delivered => "delivered",
            Action::Relayed => "relayed",
            Action::Expanded => "expanded",
        }
    }

    /// Reads an `Action` field value; unknown keywords give `None`.
    pub fn parse(s: &str) -> Option<Action> {
        let s = s.trim();
        let word = s.split(|c: char| c.is_whitespace() || c == '(').next()?;
        Action::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(word))
            .or_else(|| {
                // Seen in the wild: "expired" (Courier), "failure" (some gateways).
                match word.to_ascii_lowercase().as_str() {
                    "expired" | "failure" | "bounced" => Some(Action::Failed),
                    "delay" => Some(Action::Delayed),
                    _ => None,
                }
            })
    }
}

/// How the message was recognised, for diagnostics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// An RFC 3464 / RFC 6533 delivery status notification.
    Dsn,
    /// An RFC 5965 abuse feedback report.
    Arf,
    /// An RFC 3834 automatic reply.
    AutoReply,
    /// An Amazon SES notification (bounce, complaint, delivery, delay)
    /// e-mailed by Amazon SNS as JSON.
    SesNotification,
    /// A non-standard bounce, read from its text.
    Text(text::Mta),
}

/// One recipient the message reports on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounce {
    /// The full address. Personal data: kept in memory, shown only on request.
    /// Empty only for a feedback report that withholds its complainant.
    pub recipient: String,
    /// The domain part of the address, lower case; empty with `recipient`.
    pub recipient_domain: String,
    /// What the MTA did; `None` for feedback reports and auto-replies.
    pub action: Option<Action>,
    /// Enhanced status code (RFC 3463), from the report or derived from the text.
    pub status: Option<Status>,
    /// SMTP reply code (RFC 5321 §4.2), e.g. 550.
    pub reply_code: Option<u16>,
    /// Why, in Sisimai's vocabulary.
    pub reason: Reason,
    /// The host that gave the answer, when the report names it.
    pub remote_mta: Option<String>,
    /// The server's words, one line, at most [`MAX_DIAGNOSTIC_BYTES`].
    pub diagnostic: Option<String>,
}

/// The verdict on one message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// How it was recognised; `None` for a message that is not a bounce.
    pub format: Option<Format>,
    /// The recipients reported on; empty for a message that is not a bounce.
    pub bounces: Vec<Bounce>,
}

/// What to report besides failures and delays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    /// Report RFC 3834 auto-replies (reason `vacation`). Off by default: an
    /// out-of-office answer is not a delivery failure.
    pub vacation: bool,
}

/// Classifies one message with the default [`Options`].
pub fn classify(raw: &[u8]) -> Report {
    classify_with(raw, Options::default())
}

/// Classifies one message: the recipients it reports on, or an empty report.
pub fn classify_with(raw: &[u8], options: Options) -> Report {
    let raw = &raw[..raw.len().min(MAX_MESSAGE_BYTES)];
    let Some(parts) = mime::collect(raw) else {
        return Report::default();
    };
    let mut report = if let Some(fb) = &parts.feedback {
        Report {
            format: Some(Format::Arf),
            bounces: dsn::feedback(fb, &parts),
        }
    } else if parts.delivery_status.is_empty() && dsn::is_jmrp(&parts) {
        // Microsoft's JMRP complaint: no report part, the complained-of
        // message attached with the complainant in a header of its own.
        Report {
            format: Some(Format::Arf),
            bounces: dsn::feedback("", &parts),
        }
    } else {
        let mut bounces = Vec::new();
        for status in &parts.delivery_status {
            bounces.extend(dsn::recipients(status, &parts));
        }
        if !bounces.is_empty() {
            Report {
                format: Some(Format::Dsn),
                bounces,
            }
        } else if let Some(bounces) = sns::scan(&parts) {
            Report {
                format: Some(Format::SesNotification),
                bounces,
            }
        } else if let Some((mta, bounces)) = text::scan(&parts) {
            Report {
                format: Some(Format::Text(mta)),
                bounces,
            }
        } else if let Some(b) = mime::auto_reply(&parts) {
            if options.vacation {
                Report {
                    format: Some(Format::AutoReply),
                    bounces: vec![b],
                }
            } else {
                Report::default()
            }
        } else {
            Report::default()
        }
    };
    report.bounces.truncate(MAX_RECIPIENTS);
    report
}

/// Builds a [`Bounce`] from its parts, filling in what can be derived: the
/// status from the diagnostic text or reply code, and the reason.
pub(crate) fn finish(
    recipient: &str,
    action: Option<Action>,
    status: Option<Status>,
    reply_code: Option<u16>,
    remote_mta: Option<String>,
    diagnostic: Option<String>,
    command: Option<smtp::Command>,
) -> Option<Bounce> {
    let recipient = smtp::clean_address(recipient)?;
    let recipient_domain = recipient
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase())?;
    let diagnostic = diagnostic.map(|d| one_line(&d)).filter(|d| !d.is_empty());
    let diag = diagnostic.as_deref().unwrap_or("");
    let reply_code = reply_code.or_else(|| smtp::find_reply_code(diag));
    // A report's generic "5.0.0" says less than the server's own words.
    let status = match status {
        Some(s) if s.is_specific() => Some(s),
        other => smtp::find_reply_status(diag)
            .or_else(|| smtp::find_status(diag))
            .or(other),
    };
    // The command the reply answered: named by the caller (a transcript
    // elsewhere in the report), else by the diagnostic's own words.
    let command = command.or_else(|| smtp::find_command(&diag.to_lowercase()));
    // A relay's own status and label before the server's reply (Amazon
    // SES: "5.1.0 - Unknown address error 550-'5.7.1 … Access denied'"):
    // the reason is in the server's words, not in the relay's label.
    let words = match smtp::find_reply_status_at(diag) {
        Some((at, _)) if at > 0 && smtp::find_status(&diag[..at]).is_some() => &diag[at..],
        _ => diag,
    };
    let reason = reason::classify(action, status, reply_code, command, words);
    // No code anywhere: the one the reason stands for, in the reply's class.
    let status = status.or_else(|| {
        let class = reply_code.map(|c| (c / 100) as u8).or(match action {
            Some(Action::Delayed) => Some(4),
            Some(Action::Failed) => Some(5),
            _ => None,
        })?;
        reason::implied_status(reason, class)
    });
    Some(Bounce {
        recipient,
        recipient_domain,
        action,
        status,
        reply_code,
        reason,
        remote_mta: remote_mta.filter(|m| !m.is_empty()),
        diagnostic,
    })
}

/// Folds whitespace into single spaces and bounds the length.
pub(crate) fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_DIAGNOSTIC_BYTES));
    for word in s.split_whitespace() {
        if out.len() + word.len() + 1 > MAX_DIAGNOSTIC_BYTES {
            let room = MAX_DIAGNOSTIC_BYTES.saturating_sub(out.len() + 1);
            let mut cut = room.min(word.len());
            while !word.is_char_boundary(cut) {
                cut -= 1;
            }
            if cut > 0 {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(&word[..cut]);
            }
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_folds_and_bounds() {
        assert_eq!(
            one_line("  550 5.1.1\r\n   user   unknown "),
            "550 5.1.1 user unknown"
        );
        let long = "é".repeat(1000);
        let l = one_line(&long);
        assert!(l.len() <= MAX_DIAGNOSTIC_BYTES);
        assert!(!l.is_empty());
    }

    #[test]
    fn actions_parse() {
        assert_eq!(Action::parse("failed"), Some(Action::Failed));
        assert_eq!(Action::parse(" Delayed "), Some(Action::Delayed));
        assert_eq!(Action::parse("expired"), Some(Action::Failed));
        assert_eq!(Action::parse("failed (bad)"), Some(Action::Failed));
        assert_eq!(Action::parse("nonsense"), None);
        assert_eq!(Action::parse(""), None);
    }

    #[test]
    fn empty_and_garbage_give_nothing() {
        assert_eq!(classify(b""), Report::default());
        assert_eq!(classify(b"\x00\xff\xfe"), Report::default());
        assert_eq!(classify(b"Subject: hi\r\n\r\nhello"), Report::default());
    }
}
