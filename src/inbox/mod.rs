//! Watch seed inboxes and report probe arrivals.
//!
//! One watcher per watched folder (IMAP: a long-lived IDLE connection each;
//! Maildir: inotify). A watcher recognises probe mail by its token, fetches
//! the message once, and hands an [`Arrival`] to the recorder. It removes the
//! message only after the recorder has persisted the result and answered
//! [`Disposition::Remove`], so a crash in between loses nothing: the message
//! is found again on the next start. Mail without a known token is never
//! touched.

pub mod gmail;
pub mod imap;
pub mod imap_frame;
pub mod maildir;
pub mod oauth;
pub mod recheck;
pub mod reconnect;
pub mod sasl;
mod spawn;

pub use spawn::{spawn_mailbox, spawn_watchers, Spawn};

use std::time::SystemTime;

use tokio::sync::oneshot;

use crate::message::Token;

/// What a folder means for placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FolderRole {
    Inbox,
    Spam,
}

impl FolderRole {
    pub fn as_str(self) -> &'static str {
        match self {
            FolderRole::Inbox => "inbox",
            FolderRole::Spam => "spam",
        }
    }
}

/// A probe message found in a seed's mailbox.
#[derive(Debug)]
pub struct Arrival {
    pub seed: String,
    /// The probe token; `None` for mail an app sent (matched by its From).
    pub token: Option<Token>,
    /// The From address, lower-case.
    pub from: Option<String>,
    pub role: FolderRole,
    /// The server's folder name, for logs.
    pub folder: String,
    /// The Gmail category tab, when the server has Gmail's extensions and
    /// the message is not in Primary; the placement is then `tab`.
    pub tab: Option<gmail::Tab>,
    /// When mailcanary first saw it.
    pub seen: SystemTime,
    /// When the mailbox stored it: IMAP INTERNALDATE (1 s resolution) or the
    /// Maildir file's modification time.
    pub stored: Option<SystemTime>,
    /// Whether `stored` is exact (Maildir mtime) rather than whole seconds.
    pub stored_exact: bool,
    /// The message as delivered.
    pub raw: Vec<u8>,
    /// The recorder's answer once the arrival is persisted.
    pub reply: oneshot::Sender<Disposition>,
}

/// What the watcher does with a message after the recorder has seen it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Recorded: delete it (or move it to the seed's cleanup folder).
    Remove,
    /// Not ours (unknown token): leave it alone and do not report it again.
    Keep,
}

/// What watchers tell the rest of the daemon.
#[derive(Debug)]
pub enum WatchEvent {
    Arrival(Arrival),
    /// A folder watcher connected (true) or lost its connection (false).
    Up {
        seed: String,
        role: FolderRole,
        up: bool,
    },
    /// A seed's OAuth token source refreshed its access token, or failed to.
    OAuth {
        seed: String,
        outcome: oauth::TokenOutcome,
    },
}

/// Tell the recorder a folder watcher's state; false when the recorder is gone.
pub async fn report_up(
    events: &tokio::sync::mpsc::Sender<WatchEvent>,
    seed: &str,
    role: FolderRole,
    up: bool,
) -> bool {
    events
        .send(WatchEvent::Up {
            seed: seed.to_string(),
            role,
            up,
        })
        .await
        .is_ok()
}

/// Find a probe token in a message (Message-ID first, then the probe
/// header, then the body); see [`crate::message::find_token`].
pub fn find_token(raw: &[u8]) -> Option<Token> {
    crate::message::find_token(raw)
        .as_deref()
        .and_then(Token::parse)
}

/// The From address of a message, lower-case (parses the header only).
pub fn from_address(raw: &[u8]) -> Option<String> {
    let msg = mail_parser::MessageParser::new().parse_headers(raw)?;
    msg.from()?.first()?.address().map(str::to_ascii_lowercase)
}

/// Which messages a watcher reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// Probe mail in a seed's folders: it carries a token, or comes from one
    /// of these addresses (lower-case), the From of apps whose verification
    /// mail carries no token.
    Probes { match_from: Vec<String> },
    /// Every message: a mailbox that receives bounces or reports, where a
    /// token, if any, sits inside a returned message rather than in the
    /// envelope. The consumer decides what is its own. On connecting, an
    /// IMAP watcher reads messages up to `look_back` old (a Maildir is read
    /// whole).
    Every { look_back: std::time::Duration },
}

/// How far back a watcher of probe mail looks on connecting: probe
/// timeouts are shorter, and bounces come within minutes.
pub const PROBE_LOOK_BACK: std::time::Duration = std::time::Duration::from_secs(2 * 86_400);

impl Want {
    /// How old a message an IMAP watcher still reads on connecting.
    pub fn look_back(&self) -> std::time::Duration {
        match self {
            Want::Probes { .. } => PROBE_LOOK_BACK,
            Want::Every { look_back } => *look_back,
        }
    }

    /// Whether a message is reported, judged from its envelope (IMAP
    /// ENVELOPE Message-ID and From) before its body is fetched.
    pub fn by_envelope(&self, message_id: Option<&[u8]>, from: Option<&str>) -> bool {
        match self {
            Want::Every { .. } => true,
            Want::Probes { match_from } => {
                message_id.and_then(find_token_in_value).is_some()
                    || from.is_some_and(|f| match_from.iter().any(|m| m == f))
            }
        }
    }

    /// Whether a fetched message is reported.
    pub fn by_message(&self, token: &Option<Token>, from: &Option<String>) -> bool {
        match self {
            Want::Every { .. } => true,
            Want::Probes { match_from } => {
                token.is_some()
                    || from
                        .as_ref()
                        .is_some_and(|f| match_from.iter().any(|m| m == f))
            }
        }
    }
}

/// Find a probe token in one header value, e.g. an IMAP ENVELOPE's Message-ID.
pub fn find_token_in_value(value: &[u8]) -> Option<Token> {
    crate::message::find_token_in_value(value)
        .as_deref()
        .and_then(Token::parse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_found_anywhere_and_junk_is_not_a_token() {
        let t = "mc-abcdefghijklmnopqrstuvwxyz";
        let raw = format!("Message-ID: <{t}@sender.test>\r\n\r\nbody");
        assert_eq!(
            find_token(raw.as_bytes()).map(|t| t.to_string()),
            Some(t.to_string())
        );
        assert!(find_token(b"Message-ID: <mc-short@x>\r\n\r\nmc-").is_none());
        assert!(find_token(b"mc-ABCDEFGHIJKLMNOPQRSTUVWXYZ").is_none());
        assert!(find_token(&[0xff; 100]).is_none());
        let envelope_mid = b"<mc-koy6kwyc6za276or7rop4vfcfe@sender.test>";
        assert!(
            find_token_in_value(envelope_mid).is_some(),
            "a bare Message-ID"
        );
    }
}
