//! Bounces and delay notices in a sender's bounce mailbox, read as facts
//! about probe runs. Pure: the recorder decides which run a notice is for
//! and whether the mailbox is trusted.
//!
//! A notice is about a run when it quotes the run's token (the returned
//! message or its headers, RFC 3462/6522) and reports on the seed's address,
//! or, for an app's mail that carries no token, when it reports on a seed's
//! address within the run's window.

use super::outcome::Refusal;
use crate::bounce::{self, Action, Bounce, Reason};

/// What a notice says happened to the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Refused for good (RFC 3464 action `failed`): the run ends `bounced`.
    Failed,
    /// Not delivered yet, still being retried (action `delayed`): the run
    /// stays open and a deferral is counted.
    Delayed,
}

impl Kind {
    /// The store's `probe_notice.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Failed => "failed",
            Kind::Delayed => "delayed",
        }
    }
}

/// One recipient a bounce or delay notice reports on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub kind: Kind,
    /// The address reported on, lower-case; empty when the notice names none.
    pub recipient: String,
    pub refusal: Refusal,
}

/// The failures and delays a message reports; empty for anything else
/// (success notices, feedback reports, auto-replies, ordinary mail).
pub fn read(raw: &[u8]) -> Vec<Notice> {
    bounce::classify(raw)
        .bounces
        .into_iter()
        .filter_map(notice)
        .collect()
}

fn notice(b: Bounce) -> Option<Notice> {
    if matches!(
        b.reason,
        Reason::Delivered | Reason::Feedback | Reason::Vacation
    ) {
        return None;
    }
    // Without an action (a bounce read from its text), the status class
    // says it: 5 permanent, 4 transient (RFC 3463 §3.1).
    let kind = match (b.action, b.status.map(|s| s.class)) {
        (Some(Action::Failed), _) | (None, Some(5)) => Kind::Failed,
        (Some(Action::Delayed), _) | (None, Some(4)) => Kind::Delayed,
        _ => return None,
    };
    Some(Notice {
        kind,
        recipient: b.recipient.to_ascii_lowercase(),
        refusal: Refusal {
            reason: b.reason,
            status: b.status,
            reply_code: b.reply_code,
            remote_mta: b.remote_mta,
        },
    })
}

/// The notice about `address` (a seed's), a failure before a delay; a
/// notice that names no recipient counts as about it.
pub fn about<'a>(notices: &'a [Notice], address: &str) -> Option<&'a Notice> {
    let mine = |n: &&Notice| n.recipient.is_empty() || n.recipient.eq_ignore_ascii_case(address);
    notices
        .iter()
        .filter(mine)
        .find(|n| n.kind == Kind::Failed)
        .or_else(|| notices.iter().find(mine))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dsn(action: &str, status: &str, diagnostic: &str) -> Vec<u8> {
        format!(
            "From: MAILER-DAEMON@relay.sender.test\r\n\
             To: bounces@sender.test\r\n\
             Subject: Undelivered Mail Returned to Sender\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\
             \r\n\
             --b\r\n\
             Content-Type: text/plain\r\n\
             \r\n\
             I'm sorry to have to inform you that your message could not be delivered.\r\n\
             --b\r\n\
             Content-Type: message/delivery-status\r\n\
             \r\n\
             Reporting-MTA: dns; relay.sender.test\r\n\
             \r\n\
             Final-Recipient: rfc822; seed1@seed.test\r\n\
             Action: {action}\r\n\
             Status: {status}\r\n\
             Remote-MTA: dns; mx.seed.test\r\n\
             Diagnostic-Code: smtp; {diagnostic}\r\n\
             \r\n\
             --b\r\n\
             Content-Type: text/rfc822-headers\r\n\
             \r\n\
             Message-ID: <mc-abcdefghijklmnopqrstuvwxyz@sender.test>\r\n\
             From: no-reply@sender.test\r\n\
             \r\n\
             --b--\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn a_failure_is_read_with_its_reason_status_and_host() {
        let raw = dsn(
            "failed",
            "5.7.1",
            "550 5.7.1 Message refused by local policy",
        );
        let n = read(&raw);
        assert_eq!(n.len(), 1, "{n:?}");
        assert_eq!(n[0].kind, Kind::Failed);
        assert_eq!(n[0].recipient, "seed1@seed.test");
        assert_eq!(
            n[0].refusal.status.map(|s| s.to_string()).as_deref(),
            Some("5.7.1")
        );
        assert_eq!(n[0].refusal.reply_code, Some(550));
        assert_eq!(n[0].refusal.remote_mta.as_deref(), Some("mx.seed.test"));
        assert!(about(&n, "SEED1@seed.test").is_some());
        assert!(
            about(&n, "seed2@seed.test").is_none(),
            "another seed's bounce"
        );
        assert_eq!(
            crate::message::find_token(&raw).as_deref(),
            Some("abcdefghijklmnopqrstuvwxyz"),
            "the token is found in the returned headers"
        );
    }

    #[test]
    fn a_delay_is_not_a_failure_and_success_is_nothing() {
        let n = read(&dsn(
            "delayed",
            "4.7.1",
            "450 4.7.1 Greylisted, try again later",
        ));
        assert_eq!(n.len(), 1, "{n:?}");
        assert_eq!(n[0].kind, Kind::Delayed);
        assert!(read(&dsn("delivered", "2.0.0", "250 2.0.0 Ok")).is_empty());
        assert!(
            read(b"From: a@b.test\r\nSubject: hello\r\n\r\nYour code is 123456\r\n").is_empty()
        );
    }

    #[test]
    fn a_failure_wins_over_a_delay_for_the_same_address() {
        let delayed = read(&dsn("delayed", "4.4.1", "451 4.4.1 timeout"));
        let failed = read(&dsn("failed", "5.1.1", "550 5.1.1 User unknown"));
        let both: Vec<Notice> = delayed.into_iter().chain(failed).collect();
        assert_eq!(
            about(&both, "seed1@seed.test").map(|n| n.kind),
            Some(Kind::Failed)
        );
    }
}
