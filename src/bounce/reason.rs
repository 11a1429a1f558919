//! Why a message bounced, in the vocabulary of Sisimai 5 (which ESPs and
//! mail operators know), decided from the server's words first and the
//! enhanced status code (RFC 3463) second.
//!
//! The phrase tables are this project's own, written from the replies that
//! the big providers and MTAs document and send. They are matched as
//! lower-case substrings, in table order: the more specific reasons come
//! first, so "mailbox full (quota exceeded)" is `mailboxfull`, not a generic
//! refusal.

use std::sync::LazyLock;

use super::phrases::Phrases;
use super::smtp::{Command, Status};
use super::Action;

/// Why a recipient was not reached (or, for the last three, what else the
/// message is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// The mailbox does not exist at the recipient's domain.
    UserUnknown,
    /// The recipient's domain does not exist or has no mail host.
    HostUnknown,
    /// The mailbox is over its quota.
    MailboxFull,
    /// The mailbox exists but is disabled or suspended.
    Suspend,
    /// The recipient has moved to another address.
    HasMoved,
    /// The receiver refuses the sending IP or host (blocklist, firewall).
    Blocked,
    /// The receiver refuses the sending IP or domain for its reputation.
    BadReputation,
    /// The sending IP has no (matching) reverse DNS.
    RequirePtr,
    /// SPF, DKIM or DMARC failed.
    AuthFailure,
    /// The message breaks the mail format RFCs (RFC 5322).
    NotCompliantRfc,
    /// The receiver judged the message to be spam.
    SpamDetected,
    /// The receiver found a virus in the message.
    VirusDetected,
    /// The receiver's policy refuses the message (content, attachments, …).
    PolicyViolation,
    /// The envelope sender was refused.
    Rejected,
    /// The recipient's own filter refused the message.
    Filtered,
    /// The host would not relay for the sender.
    NoRelaying,
    /// The domain accepts no mail at all (null MX, RFC 7505).
    NotAccept,
    /// A TLS or authentication requirement was not met.
    SecurityError,
    /// Too many connections at once.
    TooManyConn,
    /// Too many messages too fast (rate limited).
    Speeding,
    /// A limit other than size was passed (recipients, header size).
    ExceedLimit,
    /// The message is bigger than the receiver accepts.
    MesgTooBig,
    /// The message's content (MIME, encoding) could not be handled.
    ContentError,
    /// The message stayed in a queue until it expired.
    Expired,
    /// A network problem: no route, DNS failure, mail loop.
    NetworkError,
    /// An error inside the receiving system.
    SystemError,
    /// The receiving system is out of disk.
    SystemFull,
    /// A local delivery program failed.
    MailerError,
    /// An SMTP syntax or protocol error.
    SyntaxError,
    /// A failure too vague to name (the report gives a reply but no reason).
    OnHold,
    /// No reason could be found.
    Undefined,
    /// A success notification: the message was delivered.
    Delivered,
    /// An abuse or other feedback report (RFC 5965).
    Feedback,
    /// An automatic reply such as an out-of-office (RFC 3834).
    Vacation,
}

impl Reason {
    /// Every reason, in a fixed order (the label values, defined once).
    pub const ALL: [Reason; 34] = [
        Reason::UserUnknown,
        Reason::HostUnknown,
        Reason::MailboxFull,
        Reason::Suspend,
        Reason::HasMoved,
        Reason::Blocked,
        Reason::BadReputation,
        Reason::RequirePtr,
        Reason::AuthFailure,
        Reason::NotCompliantRfc,
        Reason::SpamDetected,
        Reason::VirusDetected,
        Reason::PolicyViolation,
        Reason::Rejected,
        Reason::Filtered,
        Reason::NoRelaying,
        Reason::NotAccept,
        Reason::SecurityError,
        Reason::TooManyConn,
        Reason::Speeding,
        Reason::ExceedLimit,
        Reason::MesgTooBig,
        Reason::ContentError,
        Reason::Expired,
        Reason::NetworkError,
        Reason::SystemError,
        Reason::SystemFull,
        Reason::MailerError,
        Reason::SyntaxError,
        Reason::OnHold,
        Reason::Undefined,
        Reason::Delivered,
        Reason::Feedback,
        Reason::Vacation,
    ];

    /// Sisimai's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::UserUnknown => "userunknown",
            Reason::HostUnknown => "hostunknown",
            Reason::MailboxFull => "mailboxfull",
            Reason::Suspend => "suspend",
            Reason::HasMoved => "hasmoved",
            Reason::Blocked => "blocked",
            Reason::BadReputation => "badreputation",
            Reason::RequirePtr => "requireptr",
            Reason::AuthFailure => "authfailure",
            Reason::NotCompliantRfc => "notcompliantrfc",
            Reason::SpamDetected => "spamdetected",
            Reason::VirusDetected => "virusdetected",
            Reason::PolicyViolation => "policyviolation",
            Reason::Rejected => "rejected",
            Reason::Filtered => "filtered",
            Reason::NoRelaying => "norelaying",
            Reason::NotAccept => "notaccept",
            Reason::SecurityError => "securityerror",
            Reason::TooManyConn => "toomanyconn",
            Reason::Speeding => "speeding",
            Reason::ExceedLimit => "exceedlimit",
            Reason::MesgTooBig => "mesgtoobig",
            Reason::ContentError => "contenterror",
            Reason::Expired => "expired",
            Reason::NetworkError => "networkerror",
            Reason::SystemError => "systemerror",
            Reason::SystemFull => "systemfull",
            Reason::MailerError => "mailererror",
            Reason::SyntaxError => "syntaxerror",
            Reason::OnHold => "onhold",
            Reason::Undefined => "undefined",
            Reason::Delivered => "delivered",
            Reason::Feedback => "feedback",
            Reason::Vacation => "vacation",
        }
    }

    /// Whether the failure is about the address itself: retrying or
    /// resending to it is pointless (a typo, a closed account).
    pub fn is_hard(self) -> bool {
        matches!(
            self,
            Reason::UserUnknown
                | Reason::HostUnknown
                | Reason::HasMoved
                | Reason::NotAccept
                | Reason::Suspend
        )
    }
}

/// What a bounce of one's own mail means for an operator; the alert rules
/// (`dashboards/alerts.yml`) select reasons by these groups, and a test
/// keeps their regular expressions equal to [`Group::reasons`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// The receiver refuses the sender: its IP or domain, reputation,
    /// authentication or policy. Every user at that provider is affected.
    Refused,
    /// The recipient's mailbox is the problem (gone, full, suspended): for
    /// a seed, the seed needs care and its probes say nothing meanwhile.
    Recipient,
    /// Anything else (the network, the receiver's systems, the message's
    /// size, a queue that gave up, an unclassified answer).
    Other,
}

impl Group {
    pub const ALL: [Group; 3] = [Group::Refused, Group::Recipient, Group::Other];

    /// The reasons in this group.
    pub fn reasons(self) -> impl Iterator<Item = Reason> {
        Reason::ALL.into_iter().filter(move |r| r.group() == self)
    }
}

impl Reason {
    /// The operator's view of the reason.
    pub fn group(self) -> Group {
        match self {
            Reason::Blocked
            | Reason::BadReputation
            | Reason::SpamDetected
            | Reason::PolicyViolation
            | Reason::AuthFailure
            | Reason::RequirePtr
            | Reason::Rejected => Group::Refused,
            Reason::UserUnknown | Reason::MailboxFull | Reason::Suspend => Group::Recipient,
            _ => Group::Other,
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Phrases per reason, in the order they are tried (lower case).
const PHRASES: &[(Reason, &[&str])] = &[
    (
        Reason::MailboxFull,
        &[
            "mailbox exceeded",
            "mailbox exceeds allowed size",
            "mailbox full",
            "mailbox is full",
            "mailbox has exceeded",
            "mailbox quota",
            "mailbox size limit",
            "mailfolder is full",
            "over quota",
            "overquota",
            "over its quota",
            "over their quota",
            "quota exceeded",
            "quota exceed",
            "exceeded storage",
            "exceeds its storage",
            "storage quota",
            "user quota",
            "full mailbox",
            "inbox is full",
            "mailbox is over",
            "out of storage space",
            "not enough storage space in the mailbox",
            "recipient's mailbox is full",
            "account is full",
            "user is over",
            "disk quota",
            "邮箱空间不足",
            "邮箱已满",
            "ящик переполнен",
        ],
    ),
    (
        Reason::MesgTooBig,
        &[
            "message too big",
            "message too large",
            "message is too large",
            "message is too big",
            "message size exceeds",
            "message length exceeds",
            "exceeds the maximum message size",
            "exceeds maximum message size",
            "maximum message size",
            "max message size",
            "message size limit",
            "size limit",
            "message file too big",
            "mail size exceeds",
            "exceeded maximum inbound message size",
            "邮件大小超过",
        ],
    ),
    (
        Reason::ExceedLimit,
        &[
            "header size exceeds",
            "headers too large",
            "too many recipients",
            "recipient limit",
            "number of recipients",
        ],
    ),
    (
        Reason::Suspend,
        &[
            "account disabled",
            "account has been disabled",
            "account is disabled",
            "account that you tried to reach is disabled",
            "mailbox disabled",
            "mailbox is disabled",
            "mailbox has been disabled",
            "account suspended",
            "account is suspended",
            "account has been suspended",
            "user suspended",
            "is currently suspended",
            "has been suspended",
            "mailbox is suspended",
            "currently suspended",
            "account is inactive",
            "inactive account",
            "mailbox is inactive",
            "inactive user",
            "temporarily inactive",
            "deactivated mailbox",
            "has been deactivated",
            "account is locked",
            "temporary locked",
            "account has been locked",
            "mailbox is frozen",
            "account frozen",
            "account expired",
            "账户被冻结",
            "帐户被冻结",
            "заблокирован",
        ],
    ),
    (
        Reason::HasMoved,
        &[
            "has moved",
            "address has changed",
            "user has moved",
            "mailbox has moved",
        ],
    ),
    (
        Reason::NoRelaying,
        &[
            "relay access denied",
            "relaying denied",
            "relay denied",
            "relay not permitted",
            "relaying not permitted",
            "relaying not allowed",
            "not permitted to relay",
            "not allowed to relay",
            "unable to relay",
            "we do not relay",
            "does not relay",
            "no relaying",
            "relay prohibited",
            "relaying mail to",
            "is not permitted to relay",
            "not a gateway",
        ],
    ),
    (
        Reason::VirusDetected,
        &[
            "virus",
            "malware",
            "infected",
            "trojan",
            "malicious content",
            "malicious payload",
        ],
    ),
    (
        Reason::AuthFailure,
        &[
            "spf check",
            "spf fail",
            "spf validation",
            "spf record",
            "spf softfail",
            "failed spf",
            "sender policy framework",
            "dkim",
            "dmarc",
            "fails to pass authentication checks",
            "does not have authentication information",
            "unauthenticated email",
            "purported responsible address",
            "unauthenticated mail",
            "not authenticated by the sending domain",
            "sender authentication",
            "authentication checks",
        ],
    ),
    (
        Reason::RequirePtr,
        &[
            "reverse dns",
            "reverse-dns",
            "reverse lookup",
            "reverse hostname",
            "no ptr",
            "ptr record",
            "rdns",
            "fcrdns",
            "cannot find your hostname",
            "cannot resolve your address",
            "client host name does not match",
            "hostname does not resolve",
            "does not have a valid hostname",
            "without a valid reverse",
        ],
    ),
    (
        Reason::BadReputation,
        &[
            "reputation",
            "ip-based rate limit",
            "your ip address has been temporarily",
            "temporarily deferred due to user complaints",
        ],
    ),
    // Google Groups: the group may not exist or the sender may not post to
    // it; a refusal of the sender, whatever else the notice lists.
    (
        Reason::Rejected,
        &[
            "permission to post messages to the group",
            "グループにメッセージを投稿する権限",
        ],
    ),
    // Refusals for what the message or the sender's network is, in words
    // that also say "blocked" or "security": tried before those.
    (
        Reason::PolicyViolation,
        &["because its content presents", "host network not allowed"],
    ),
    // Blocklist names contain "spam": they are tried before spam phrases.
    (
        Reason::Blocked,
        &[
            "smtp server of your isp",
            "unwanted messages have been sent from the following ip",
            "unverifyable sending ip",
            "unverifiable sending ip",
            "blocked using",
            "spamhaus",
            "spamcop",
            "dnsbl",
            "blacklisted",
            "blocklisted",
            "blacklist",
            "blocklist",
            "sorbs.net",
            "barracudacentral",
        ],
    ),
    (
        Reason::SpamDetected,
        &[
            "spam",
            "junk mail",
            "bulk mail",
            "bulk email",
            "unsolicited",
            "content rejected",
            "message content rejected",
            "suspicious content",
            "looks suspicious",
            "phishing",
            "垃圾邮件",
            "спам",
        ],
    ),
    (
        Reason::NotCompliantRfc,
        &[
            "rfc 5322",
            "rfc5322",
            "rfc 2822",
            "rfc2822",
            "rfc 822",
            "rfc822 compliant",
            "not rfc compliant",
            "not compliant with rfc",
            "multiple from",
            "duplicate header",
            "header syntax",
            "missing required header",
            "header is missing",
            "malformed header",
            "invalid header",
            "headers are not compliant",
        ],
    ),
    (
        Reason::Filtered,
        &[
            "recipient's filter",
            "recipient filter",
            "mailbox filter",
            "user reject",
            "rejected by recipient",
            "refused by recipient",
            "refused due to recipient preferences",
            "blocked by the recipient",
            "you have been blocked by",
            "only accepting mail from specific",
            "message rejected due to user rules",
            "not accepting any mail",
            "resolver.rst.notauthorized",
            "not authorized to send to this recipient",
            "message filtered",
        ],
    ),
    (
        Reason::Rejected,
        &[
            "unroutable sender",
            "provide a valid from",
            "sender rejected",
            "sender address rejected",
            "sender verify failed",
            "sender verification failed",
            "sender domain",
            "domain of sender address",
            "invalid sender",
            "bad sender",
            "sender not allowed",
            "sender is not allowed",
            "sender denied",
            "envelope sender",
            "mail from address",
            "null sender is not allowed",
            "empty envelope senders",
            "on senderfilterconfig list",
            "delivery not authorized, message refused",
            "administrative prohibition",
            "batv",
        ],
    ),
    (
        Reason::HostUnknown,
        &[
            "host unknown",
            "domain is not reachable",
            "unknown host",
            "host not found",
            "host or domain name not found",
            "domain not found",
            "domain name not found",
            "domain does not exist",
            "domain doesn't exist",
            "no such domain",
            "unrouteable address",
            "unroutable address",
            "name or service not known",
            "nxdomain",
            "no mx record",
            "mx record not found",
            "recipient domain must exist",
            "domain is not valid",
            "invalid domain name",
            "illegal host",
            "dns error: domain",
            "no valid mx",
            "domain not exist",
            "unknown domain",
            "bad destination",
            "域名不存在",
        ],
    ),
    (
        Reason::UserUnknown,
        &[
            "not listed in public name & address book",
            "invalid final delivery userid",
            "user unknown",
            "unknown user",
            "user not found",
            "no such user",
            "nosuchuser",
            "no such mailbox",
            "no such recipient",
            "no such address",
            "no such person",
            "unknown recipient",
            "recipient unknown",
            "recipient not found",
            "recipient does not exist",
            "recipnotfound",
            "address not found",
            "address unknown",
            "unknown address",
            "mailbox not found",
            "mailbox does not exist",
            "mailbox doesn't exist",
            "mailbox unavailable",
            "mailbox not available",
            "no mailbox",
            "invalid mailbox",
            "invalid recipient",
            "invalid address",
            "bad recipient",
            "not a valid mailbox",
            "is not a valid user",
            "account does not exist",
            "account that you tried to reach does not exist",
            "email account that you tried to reach does not exist",
            "does not exist",
            "doesn't exist",
            "couldn't be found",
            "could not be found",
            "not listed in",
            "unknown local part",
            "local part unknown",
            "not our customer",
            "no longer active",
            "no longer available",
            "no longer in service",
            "recipient rejected",
            "recipient address rejected",
            "undeliverable address",
            "unrecognized user",
            "user doesn't have",
            "unknown or illegal alias",
            "无此用户",
            "用户不存在",
            "收件人不存在",
            "邮箱不存在",
            "地址不存在",
            "нет такого",
            "не существует",
            "не найден",
            "unbekannt",
            "existiert nicht",
            "inexistant",
            "n'existe pas",
            "no existe",
        ],
    ),
    (
        Reason::Blocked,
        &[
            "blocked using",
            "blocklist",
            "blacklist",
            "black list",
            "block list",
            "listed in",
            "listed at",
            "dnsbl",
            "rbl",
            "spamhaus",
            "spamcop",
            "sorbs",
            "barracudacentral",
            "client host rejected",
            "client host blocked",
            "connection refused by",
            "ip address rejected",
            "your ip",
            "ip address is blocked",
            "has been blocked",
            "is blocked",
            "are blocked",
            "blocked",
            "banned",
            "access denied",
            "refused to talk to me",
            "not allowed to send",
            "bad connection",
            "connection rejected",
        ],
    ),
    (
        Reason::TooManyConn,
        &[
            "too many connections",
            "too many concurrent",
            "too many simultaneous",
            "too many smtp sessions",
            "connection limit",
            "connection rate limit",
            "maximum connection",
            "too many errors from your ip",
        ],
    ),
    (
        Reason::Speeding,
        &[
            "relay quota",
            "rate limit",
            "rate-limit",
            "ratelimit",
            "rate limited",
            "too many messages",
            "sending rate",
            "receiving mail at a rate",
            "too fast",
            "throttl",
            "exceeded the rate",
            "max emails per hour",
            "daily message quota exceeded",
            "try to reduce the number of messages",
        ],
    ),
    (
        Reason::PolicyViolation,
        &[
            "header error",
            "policy violation",
            "violates",
            "violation of",
            "content policy",
            "due to policy",
            "by policy",
            "local policy",
            "message policy",
            "security policy",
            "prohibited attachment",
            "attachment type",
            "not allowed attachment",
            "blocked attachment",
            "policy reasons",
            "policy restrictions",
        ],
    ),
    (
        Reason::SecurityError,
        &[
            "must issue a starttls",
            "starttls required",
            "tls required",
            "encryption required",
            "must use tls",
            "authentication required",
            "must be authenticated",
            "authentication credentials invalid",
            "certificate",
            "submission requires",
            "not authorized to send",
            "security check",
            "turn on smtp authentication",
            "without authentication",
            "does not support tls",
        ],
    ),
    (
        Reason::NotAccept,
        &[
            "does not accept mail",
            "doesn't accept mail",
            "not accepting mail",
            "accepts no mail",
            "null mx",
            "nullmx",
            "no mail is accepted",
            "no route for current request",
        ],
    ),
    (
        Reason::SystemFull,
        &[
            "insufficient system storage",
            "insufficient disk space",
            "no space left",
            "disk full",
            "disk is full",
            "out of disk",
            "system storage",
            "file system full",
        ],
    ),
    (
        Reason::NetworkError,
        &[
            "network error",
            "no route to host",
            "establish an smtp connection",
            "establish a connection",
            "network is unreachable",
            "host is unreachable",
            "connection refused",
            "could not connect",
            "unable to connect",
            "lost connection",
            "connection reset",
            "host name lookup failure",
            "name server",
            "dns lookup",
            "too many hops",
            "hop count exceeded",
            "maximum hop count",
            "mail forwarding loop",
            "message looping",
            "routing loop",
            "mail loop",
            "loops back to myself",
            "unrouteable mail domain",
        ],
    ),
    (
        Reason::Expired,
        &[
            "envelope expired",
            "retry timeout exceeded",
            "retry time not reached",
            "message expired",
            "delivery time expired",
            "in the queue too long",
            "queue too long",
            "could not be delivered within",
            "could not be delivered for more than",
            "giving up on",
            "unable to deliver message after multiple retries",
            "delivery attempts will continue",
            "has been delayed",
            "message timed out",
            "connection timed out",
            "timed out while",
            "was not reachable within",
            "have been failing for a long time",
            "server did not respond",
            "recipients was aborted after",
            "did not accept our requests to connect",
        ],
    ),
    (
        Reason::ContentError,
        &[
            "content error",
            "mime type",
            "mime structure",
            "mime format",
            "malformed mime",
            "8-bit",
            "8bit",
            "encoding",
            "charset",
            "line too long",
            "bare lf",
            "bare linefeed",
        ],
    ),
    (
        Reason::MailerError,
        &[
            "mailer error",
            "command failed",
            "exit code",
            "x-unix",
            "procmail",
            "unknown mailer",
            "permission denied",
            "command died",
            "pipe to",
        ],
    ),
    (
        Reason::SystemError,
        &[
            "system error",
            "internal error",
            "server error",
            "local error",
            "configuration error",
            "config error",
            "temporary local problem",
            "temporary failure",
            "service currently unavailable",
            "transaction failed",
            "queue file write error",
            "aliasing/forwarding loop",
            "misconfigured",
            "timeout waiting for input",
        ],
    ),
    (
        Reason::SyntaxError,
        &[
            "malformed address",
            "syntax error",
            "command unrecognized",
            "command not recognized",
            "unrecognized command",
            "bad sequence of commands",
            "command not implemented",
            "line too long for",
        ],
    ),
];

/// The reason an enhanced status code names on its own (RFC 3463 §3), or
/// `None` for the codes that need the text ("other", "delivery not authorized").
pub fn from_status(s: Status) -> Option<Reason> {
    let r = match (s.subject, s.detail) {
        (1, 1) | (1, 3) | (1, 4) | (1, 9) => Reason::UserUnknown,
        (1, 2) | (4, 4) => Reason::HostUnknown,
        (1, 6) => Reason::HasMoved,
        (1, 7) | (1, 8) => Reason::Rejected,
        (1, 10) => Reason::NotAccept,
        (2, 1) => Reason::Suspend,
        (2, 2) => Reason::MailboxFull,
        (2, 3) | (3, 4) => Reason::MesgTooBig,
        (2, 4) | (3, 0) | (3, 3) | (3, 5) | (4, 3) | (5, 4) | (5, 5) => Reason::SystemError,
        (3, 1) => Reason::SystemFull,
        (3, 2) => Reason::NotAccept,
        (4, 0) | (4, 1) | (4, 2) | (4, 6) => Reason::NetworkError,
        (4, 7) => Reason::Expired,
        (5, 0) | (5, 1) | (5, 2) => Reason::SyntaxError,
        (5, 3) => Reason::ExceedLimit,
        (6, _) => Reason::ContentError,
        (7, 13) => Reason::Suspend,
        (7, 17) | (7, 18) => Reason::HasMoved,
        (7, 20..=24) | (7, 26) => Reason::AuthFailure,
        (7, 25) => Reason::RequirePtr,
        (7, 27) => Reason::NotAccept,
        (7, 2..=11) | (7, 14) | (7, 15) | (7, 19) => Reason::SecurityError,
        (7, 16) => Reason::MesgTooBig,
        _ => return None,
    };
    Some(r)
}

/// The reason for a reported recipient.
pub fn classify(
    action: Option<Action>,
    status: Option<Status>,
    reply_code: Option<u16>,
    command: Option<Command>,
    diagnostic: &str,
) -> Reason {
    if action == Some(Action::Delivered) || status.is_some_and(|s| s.class == 2) {
        return Reason::Delivered;
    }
    let by_status = status.and_then(from_status);
    // Codes that settle the matter whatever the words around them.
    if let Some(
        r @ (Reason::MailboxFull | Reason::HasMoved | Reason::AuthFailure | Reason::RequirePtr),
    ) = by_status
    {
        return r;
    }
    let lc = diagnostic.to_lowercase();
    // RFC 5321 §3.3: the reply to MAIL FROM judges the reverse-path, so a
    // permanent refusal there naming an unknown user or domain (or nothing)
    // is the sender's: the sender was refused, not the recipient.
    if refuses_mail_from(&lc)
        && matches!(
            by_text(&lc),
            None | Some(Reason::UserUnknown | Reason::HostUnknown)
        )
        && status
            .map(|s| s.class)
            .or(reply_code.map(|c| (c / 100) as u8))
            == Some(5)
    {
        return Reason::Rejected;
    }
    if let Some(r) = by_text(&lc) {
        // "Unknown user" in reply to DATA: the server took the recipient at
        // RCPT TO and refused the message after reading it, so a filter on
        // the message (a carrier's sender filter, a gateway rule), not a
        // missing mailbox, refused it (Sisimai's `filtered`). A status that
        // names the mailbox (X.1.0, X.1.1, X.1.3) still decides.
        if r == Reason::UserUnknown
            && command == Some(Command::Data)
            && by_status != Some(Reason::UserUnknown)
            && !status.is_some_and(|s| s.subject == 1 && s.detail == 0)
        {
            return Reason::Filtered;
        }
        // "550 5.1.1 … blocked" is still an unknown mailbox.
        if by_status == Some(Reason::UserUnknown)
            && matches!(
                r,
                Reason::Blocked
                    | Reason::Rejected
                    | Reason::PolicyViolation
                    | Reason::SecurityError
            )
        {
            return Reason::UserUnknown;
        }
        return r;
    }
    // Refused at the greeting or at EHLO/HELO, before any sender or
    // recipient was named: the server refuses the client itself (RFC 5321
    // §3.1, §4.3.2: 554 in place of the 220 greeting).
    let class = status
        .map(|s| s.class)
        .or(reply_code.map(|c| (c / 100) as u8));
    if matches!(command, Some(Command::Connect | Command::Hello)) && class == Some(5) {
        return Reason::Blocked;
    }
    // Still queued and nothing more specific: it is waiting to expire. A
    // code that names only its category ("other or undefined", X.Y.0,
    // RFC 3463 §3) is not more specific.
    if action == Some(Action::Delayed)
        && (by_status.is_none() || status.is_some_and(|s| s.detail == 0))
    {
        return Reason::Expired;
    }
    if let Some(r) = by_status {
        return r;
    }
    if let Some(s) = status {
        if s.subject == 7 {
            return Reason::SecurityError;
        }
    }
    if reply_code.is_some() || status.is_some() || !lc.trim().is_empty() {
        return Reason::OnHold;
    }
    Reason::Undefined
}

/// Whether the diagnostic says the reply was given to MAIL FROM (Exim's
/// "after MAIL FROM", Postfix's "in reply to MAIL FROM command", a
/// Sendmail transcript's ">>> MAIL From").
fn refuses_mail_from(lc: &str) -> bool {
    ["after mail from", "in reply to mail from", ">>> mail from"]
        .iter()
        .any(|m| lc.contains(m))
}

/// The status a reason implies when the report gives none (RFC 3463 §3),
/// in the class of the reply (`4` or `5`).
pub fn implied_status(reason: Reason, class: u8) -> Option<Status> {
    let (subject, detail) = match reason {
        Reason::UserUnknown => (1, 1),
        Reason::HostUnknown => (1, 2),
        Reason::HasMoved => (1, 6),
        Reason::MailboxFull => (2, 2),
        Reason::Suspend => (2, 1),
        Reason::MesgTooBig => (3, 4),
        Reason::SystemFull => (3, 1),
        Reason::NotAccept => (1, 10),
        Reason::Expired => (4, 7),
        Reason::NetworkError => (4, 0),
        Reason::ContentError => (6, 0),
        Reason::NoRelaying => (7, 1),
        Reason::AuthFailure => (7, 26),
        Reason::RequirePtr => (7, 25),
        Reason::Blocked
        | Reason::BadReputation
        | Reason::SpamDetected
        | Reason::VirusDetected
        | Reason::PolicyViolation
        | Reason::Rejected
        | Reason::Filtered
        | Reason::SecurityError => (7, 1),
        _ => (0, 0),
    };
    Status::new(class, subject, detail)
}

/// The first reason whose phrases appear in `lc` (lower case).
pub fn by_text(lc: &str) -> Option<Reason> {
    if lc.trim().is_empty() {
        return None;
    }
    static TABLE: LazyLock<Phrases> =
        LazyLock::new(|| Phrases::new(PHRASES.iter().map(|(_, p)| *p)));
    TABLE.first_group(lc).map(|i| PHRASES[i].0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(s: &str) -> Option<Status> {
        Status::parse(s)
    }

    #[test]
    fn labels_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            assert!(seen.insert(r.as_str()), "{r}");
        }
        for (r, phrases) in PHRASES {
            for p in *phrases {
                assert_eq!(p.to_lowercase(), *p, "{r}: phrases are lower case");
            }
        }
    }

    #[test]
    fn text_and_status_decide() {
        let c = |s: &str, d: &str| classify(Some(Action::Failed), st(s), Some(550), None, d);
        assert_eq!(
            c("5.1.1", "User unknown in local recipient table"),
            Reason::UserUnknown
        );
        assert_eq!(c("5.2.2", "user is over quota"), Reason::MailboxFull);
        assert_eq!(
            c(
                "5.7.1",
                "Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org"
            ),
            Reason::Blocked
        );
        assert_eq!(c("5.7.1", "Relay access denied"), Reason::NoRelaying);
        assert_eq!(
            c(
                "5.7.26",
                "Unauthenticated email from example.com is not accepted"
            ),
            Reason::AuthFailure
        );
        assert_eq!(c("5.1.1", ""), Reason::UserUnknown);
        assert_eq!(c("5.7.1", ""), Reason::SecurityError);
        assert_eq!(c("5.0.0", "something odd"), Reason::OnHold);
        assert_eq!(
            classify(
                Some(Action::Delayed),
                st("4.4.1"),
                None,
                None,
                "connect to host"
            ),
            Reason::NetworkError
        );
        assert_eq!(
            classify(Some(Action::Delayed), None, None, None, ""),
            Reason::Expired
        );
        assert_eq!(
            classify(Some(Action::Delivered), st("2.0.0"), None, None, ""),
            Reason::Delivered
        );
        assert_eq!(
            classify(Some(Action::Failed), None, None, None, ""),
            Reason::Undefined
        );
    }

    #[test]
    fn unknown_user_after_data_is_filtered() {
        let st = |s: &str| Status::parse(s);
        let c = |s: Option<Status>, cmd: Option<Command>| {
            classify(Some(Action::Failed), s, Some(550), cmd, "550 Unknown user")
        };
        assert_eq!(c(st("5.2.0"), Some(Command::Data)), Reason::Filtered);
        assert_eq!(c(None, Some(Command::Data)), Reason::Filtered);
        assert_eq!(c(st("5.1.1"), Some(Command::Data)), Reason::UserUnknown);
        assert_eq!(c(st("5.1.0"), Some(Command::Data)), Reason::UserUnknown);
        assert_eq!(c(st("5.2.0"), Some(Command::RcptTo)), Reason::UserUnknown);
        assert_eq!(c(st("5.2.0"), None), Reason::UserUnknown);
        // Only the unknown-user words move: a full mailbox stays full.
        assert_eq!(
            classify(
                Some(Action::Failed),
                st("5.2.2"),
                Some(552),
                Some(Command::Data),
                "552 mailbox full"
            ),
            Reason::MailboxFull
        );
    }

    #[test]
    fn phrases_from_the_real_set() {
        let c = |d: &str| classify(Some(Action::Failed), None, Some(550), None, d);
        assert_eq!(
            c("550 5.7.1 Message rejected because its content presents a risk"),
            Reason::PolicyViolation
        );
        assert_eq!(c("554 host network not allowed"), Reason::PolicyViolation);
        assert_eq!(
            c("the group you tried to contact may not exist, or you may not have permission to post messages to the group"),
            Reason::Rejected
        );
        assert_eq!(
            c("グループが存在しないか、グループにメッセージを投稿する権限がない可能性があります"),
            Reason::Rejected
        );
        assert_eq!(
            c("550 Unwanted messages have been sent from the following IP address"),
            Reason::Blocked
        );
        assert_eq!(c("552 Mailbox exceeds allowed size"), Reason::MailboxFull);
        assert_eq!(c("550 Message filtered"), Reason::Filtered);
        assert_eq!(
            c("530 Please turn on SMTP Authentication in your mail client"),
            Reason::SecurityError
        );
        assert_eq!(
            c("550 relaying without authentication denied"),
            Reason::SecurityError
        );
        assert_eq!(c("The server does not support TLS"), Reason::SecurityError);
        assert_eq!(
            c("Delivery to the following recipients was aborted after 2 hours"),
            Reason::Expired
        );
        assert_eq!(
            c("The recipient server did not accept our requests to connect."),
            Reason::Expired
        );
        assert_eq!(
            c("550 Sender ID (PRA): purported responsible address not permitted"),
            Reason::AuthFailure
        );
        assert_eq!(c("550 Unroutable sender address"), Reason::Rejected);
        assert_eq!(
            c("550 5.2.0 <a@example.org> From: Domain is invalid. Please provide a valid From:"),
            Reason::Rejected
        );
        assert_eq!(
            c("malformed address: <b@example.net> may not follow a@example.com"),
            Reason::SyntaxError
        );
        assert_eq!(
            c("554 You've reached your daily relay quota"),
            Reason::Speeding
        );
        assert_eq!(c("554 5.7.9 Header error"), Reason::PolicyViolation);
        assert_eq!(c("Network error on destination MXs"), Reason::NetworkError);
        assert_eq!(c("Envelope expired"), Reason::Expired);
        assert_eq!(
            c("User  not listed in public Name & Address Book"),
            Reason::UserUnknown
        );
        assert_eq!(
            c("450 service permits 2 unverifyable sending IPs"),
            Reason::Blocked
        );
        assert_eq!(
            c("The number of messages in recipient's mailbox exceeded the local limit."),
            Reason::MailboxFull
        );
    }

    #[test]
    fn a_refused_greeting_or_hello_refuses_the_client() {
        let c = |cmd, d: &str| classify(Some(Action::Failed), st("5.5.0"), Some(554), cmd, d);
        assert_eq!(
            c(Some(Command::Connect), "554 a problem occurred"),
            Reason::Blocked
        );
        assert_eq!(
            c(Some(Command::Hello), "554 a problem occurred"),
            Reason::Blocked
        );
        // Named words still decide; without a command the code does.
        assert_eq!(
            c(Some(Command::Hello), "554 mailbox full"),
            Reason::MailboxFull
        );
        assert_eq!(c(None, "554 a problem occurred"), Reason::SyntaxError);
        // A temporary refusal of the greeting is not a verdict on the client.
        assert_ne!(
            classify(
                Some(Action::Failed),
                st("4.3.2"),
                Some(421),
                Some(Command::Connect),
                "421 busy"
            ),
            Reason::Blocked
        );
    }

    #[test]
    fn a_delay_with_an_undefined_code_is_expired() {
        let d = |s: &str| classify(Some(Action::Delayed), st(s), None, None, "");
        assert_eq!(d("4.4.0"), Reason::Expired);
        assert_eq!(d("4.7.1"), Reason::Expired);
        // A specific code still names the cause.
        assert_eq!(d("4.2.2"), Reason::MailboxFull);
        assert_eq!(d("4.4.1"), Reason::NetworkError);
    }

    #[test]
    fn a_refused_mail_from_is_the_senders() {
        let c = |s: &str, d: &str| classify(Some(Action::Failed), st(s), Some(550), None, d);
        // The unknown domain is the sender's: the sender was refused.
        assert_eq!(
            c(
                "5.1.7",
                "after MAIL FROM:<a@example.org>: 550 5.1.7 No such domain example.org"
            ),
            Reason::Rejected
        );
        // A named cause still wins.
        assert_eq!(
            c("5.7.1", "after MAIL FROM:<a@example.org>: 554 5.7.1 Client host rejected: blocked using zen.spamhaus.org"),
            Reason::Blocked
        );
        // A temporary refusal is not a verdict on the sender.
        assert_eq!(
            classify(
                Some(Action::Delayed),
                st("4.3.0"),
                Some(451),
                None,
                "after MAIL FROM:<a@example.org>: 451 4.3.0 try later"
            ),
            // Still queued, with an "other or undefined" code: expired.
            Reason::Expired
        );
        // The same words in reply to RCPT TO are the recipient's.
        assert_eq!(
            c(
                "5.1.1",
                "after RCPT TO:<b@example.net>: 550 5.1.1 No such user"
            ),
            Reason::UserUnknown
        );
    }
}
