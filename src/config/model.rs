//! The resolved configuration the daemon runs with: plain typed values,
//! every name checked, every secret read, every duration parsed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::diag::Diagnostic;
use super::web;
pub use crate::message::sign::DkimKey;
use crate::message::Template;
pub use crate::secret::Secret;

/// Default port of the HTTP endpoint. The Prometheus exporter range
/// 9100-9999 is fully allocated; 10580 is outside it and not on the
/// default-port-allocations list (checked 2026-11).
pub const DEFAULT_HTTP_PORT: u16 = 10580;

/// The resolved configuration the daemon runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// The main file this was loaded from.
    pub path: PathBuf,
    pub daemon: Daemon,
    pub http: Http,
    pub dns: Dns,
    pub senders: BTreeMap<String, Sender>,
    pub seeds: BTreeMap<String, Seed>,
    pub probes: BTreeMap<String, Probe>,
    /// Domains audited on schedule, by domain name.
    pub domains: BTreeMap<String, Domain>,
    /// `[reports.*]` and `[bounces.*]`: the app's mailboxes the ingestion
    /// stage reads, by name (one namespace: the name is the `mailbox` label).
    pub mailboxes: BTreeMap<String, AppMailbox>,
    /// Problems that do not stop the load (e.g. a timeout longer than the interval).
    pub warnings: Vec<Diagnostic>,
}

#[derive(Debug, Clone)]
pub struct Daemon {
    /// Directory for the embedded store.
    pub state_dir: PathBuf,
    /// How long shutdown waits for in-flight work before giving up on it.
    pub shutdown_grace: Duration,
    /// How long probe history stays in the store (as slice counts beyond
    /// `run_detail`).
    pub history: Duration,
    /// How long each final probe run stays in the store in full.
    pub run_detail: Duration,
}

#[derive(Debug, Clone)]
pub struct Http {
    pub listen: SocketAddr,
    /// TLS, basic auth and headers from `http.web_config_file`; `None`:
    /// plain HTTP, open to whoever reaches `listen`.
    pub web: Option<Arc<web::WebConfig>>,
}

/// The resolver mailcanary asks (DKIM re-verification, DNS audit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dns {
    /// `None`: the system's resolvers (`/etc/resolv.conf`).
    pub resolver: Option<SocketAddr>,
    /// Time allowed for one attempt of one query.
    pub timeout: Duration,
}

/// How a connection is protected. There is no opportunistic mode: TLS that
/// was asked for is required, never silently dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain text; meant for loopback test stacks.
    None,
    /// Plain connect, then STARTTLS, which must succeed.
    Starttls,
    /// TLS from the first byte (SMTPS 465, IMAPS 993).
    Implicit,
}

impl Config {
    /// Whether `seed` is watched: some probe sends to it. Seeds no probe
    /// uses have no watcher and no series.
    pub fn seed_in_use(&self, seed: &str) -> bool {
        self.probes
            .values()
            .any(|p| p.seeds.iter().any(|s| s == seed))
    }

    /// Whether `seed` is some sender's bounce mailbox (watched, INBOX only).
    pub fn is_bounce_mailbox(&self, seed: &str) -> bool {
        self.senders
            .values()
            .any(|s| s.bounce_mailbox().is_some_and(|b| b == seed))
    }

    /// Whether a `probe`, `seed` or `domain` label value names something
    /// this configuration runs (other labels: always).
    pub fn runs(&self, label: &str, value: &str) -> bool {
        match label {
            "probe" => self.probes.contains_key(value),
            "seed" => self.seed_in_use(value) || self.is_bounce_mailbox(value),
            "domain" => self.domains.contains_key(value),
            "mailbox" => self.mailboxes.contains_key(value),
            _ => true,
        }
    }
}

/// A sending identity; one variant per sender kind.
#[derive(Debug, Clone)]
pub enum Sender {
    /// Submission to an SMTP relay.
    Smtp(SmtpSender),
    /// The operator's own "send verification code" endpoint.
    Http(HttpSender),
}

impl Sender {
    /// The header From address the probe mail carries.
    pub fn from(&self) -> &str {
        match self {
            Sender::Smtp(s) => &s.from,
            Sender::Http(h) => &h.from,
        }
    }

    /// The `[seeds.*]` entry whose INBOX receives this sender's bounces.
    pub fn bounce_mailbox(&self) -> Option<&String> {
        match self {
            Sender::Smtp(s) => s.bounce_mailbox.as_ref(),
            Sender::Http(h) => h.bounce_mailbox.as_ref(),
        }
    }
}

/// An app endpoint that sends a verification code to `{address}`.
#[derive(Debug, Clone)]
pub struct HttpSender {
    pub url: String,
    pub method: reqwest::Method,
    /// Non-secret headers.
    pub headers: BTreeMap<String, String>,
    /// Request body; `{address}` is replaced by the seed's address.
    pub body: Option<String>,
    /// The secret header (`Authorization: Bearer …` by default).
    pub token: Option<(String, Secret)>,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
    /// Statuses that mean "sent" (default: any 2xx).
    pub success_status: Vec<u16>,
    /// A JSON pointer that must be true in a successful response.
    pub success_json: Option<String>,
    /// Found in a refused response's body: the ESP's quota is exhausted.
    pub quota_pattern: regex::Regex,
    /// The From address of the mail the app sends (how it is matched).
    pub from: String,
    /// The seed entry whose INBOX receives the app's bounces (the app's
    /// return path), when mailcanary may read it.
    pub bounce_mailbox: Option<String>,
    /// The subject of the app's mail must match, when set.
    pub subject_pattern: Option<regex::Regex>,
    /// Extracts the code from the message text (first capture group).
    pub code_pattern: regex::Regex,
}

#[derive(Debug, Clone)]
pub struct SmtpSender {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub ca_file: Option<PathBuf>,
    /// Header From, e.g. `no-reply@example.com`.
    pub from: String,
    pub reply_to: Option<String>,
    /// The envelope sender (MAIL FROM); `None`: the From address.
    pub return_path: Option<String>,
    /// The seed entry whose INBOX receives mail for the return path.
    pub bounce_mailbox: Option<String>,
    pub timeout: Duration,
    /// How often a temporary (4xx) refusal is retried before it counts as a failure.
    pub retries_4xx: u32,
    pub retry_backoff: Duration,
    /// DKIM signing by mailcanary itself, for relays that do not sign.
    pub dkim: Option<DkimKey>,
}

/// A seed mailbox at some provider that probes are sent to and watched in.
#[derive(Debug, Clone)]
pub struct Seed {
    /// Provider label for metrics (`gmail`, `outlook`, `selfhosted`, ...).
    pub provider: String,
    pub address: String,
    /// The authserv-id whose Authentication-Results headers are trusted.
    pub authserv_id: Option<String>,
    pub inbox: Inbox,
    /// Spam folder override: an IMAP folder name, or for a Maildir a
    /// sub-Maildir (default `.Junk`, Maildir++).
    pub spam_folder: Option<String>,
    /// Where evaluated probe messages go; `None` deletes them.
    pub cleanup_folder: Option<String>,
    /// The provider preset's spam folder names (UTF-8), tried after
    /// SPECIAL-USE `\Junk` and before the usual names.
    pub spam_folders: Vec<String>,
}

/// How a seed's mailbox is watched; one variant per inbox kind.
#[derive(Debug, Clone)]
#[allow(
    clippy::large_enum_variant,
    reason = "one per seed, built once per config load: boxing would buy nothing"
)]
pub enum Inbox {
    Imap(ImapInbox),
    Maildir(MaildirInbox),
}

#[derive(Debug, Clone)]
pub struct ImapInbox {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: String,
    pub auth: ImapAuth,
    pub ca_file: Option<PathBuf>,
    /// Send the IMAP ID command after login (RFC 2971; NetEase requires it).
    pub imap_id: bool,
    /// The preset's advice for when the login is refused.
    pub hint: Option<&'static str>,
    /// Most bytes of a message fetched (`max_message_size`); a larger
    /// message is evaluated from its first bytes, and a server that sends
    /// more has its connection closed.
    pub max_message_size: usize,
}

/// `max_message_size` when unset: probes are a few KiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

/// How a watcher logs in to a seed's IMAP server.
#[derive(Debug, Clone)]
pub enum ImapAuth {
    /// The LOGIN command with a password (or app password).
    Login(Secret),
    /// SASL PLAIN with a password.
    Plain(Secret),
    /// A SASL bearer-token mechanism with tokens from an OAuth 2.0 endpoint.
    OAuth {
        mechanism: OAuthMechanism,
        client: OAuthClient,
    },
}

impl ImapAuth {
    /// The method's name as configured, for logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            ImapAuth::Login(_) => "login",
            ImapAuth::Plain(_) => "plain",
            ImapAuth::OAuth { mechanism, .. } => mechanism.as_str(),
        }
    }
}

/// The SASL mechanisms that carry an OAuth 2.0 bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthMechanism {
    /// XOAUTH2 (Google, Microsoft).
    XOAuth2,
    /// OAUTHBEARER (RFC 7628).
    OAuthBearer,
}

impl OAuthMechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthMechanism::XOAuth2 => "xoauth2",
            OAuthMechanism::OAuthBearer => "oauthbearer",
        }
    }

    /// The name in `AUTHENTICATE`.
    pub fn sasl_name(self) -> &'static str {
        match self {
            OAuthMechanism::XOAuth2 => "XOAUTH2",
            OAuthMechanism::OAuthBearer => "OAUTHBEARER",
        }
    }
}

/// An OAuth 2.0 client that trades a refresh token for access tokens
/// (RFC 6749 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthClient {
    pub token_url: String,
    pub client_id: String,
    /// Public clients (e.g. Microsoft's for desktop apps) have none.
    pub client_secret: Option<Secret>,
    pub refresh_token: Secret,
    pub scope: Option<String>,
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct MaildirInbox {
    pub path: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Probe {
    pub sender: String,
    pub seeds: Vec<String>,
    pub every: Duration,
    pub timeout: Duration,
    /// The file the probe was defined in (main file or a drop-in).
    pub defined_in: PathBuf,
    /// The message template, loaded and checked.
    pub template: Arc<Template>,
    /// Product name the template shows.
    pub product: String,
    /// Digits of the verification code.
    pub code_length: usize,
    /// How long the code is valid; shown in the message.
    pub code_validity: Duration,
    /// Add an explicit `X-Mailcanary-Probe` header (production mail has none).
    pub probe_header: bool,
    /// Resend burst: sends per seed and round (1 = no burst), `burst_spacing` apart.
    pub burst: u32,
    pub burst_spacing: Duration,
}

/// A mailbox of the app's own mail that mailcanary reads but does not own:
/// messages stay unless the mailbox sets `cleanup_folder`.
#[derive(Debug, Clone)]
pub struct AppMailbox {
    pub kind: AppMailboxKind,
    /// Where and how to read it: the settings of a seed.
    pub inbox: Seed,
}

/// What an app mailbox receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AppMailboxKind {
    /// `[reports.NAME]`: DMARC aggregate (`rua`) and TLS-RPT reports.
    Reports,
    /// `[bounces.NAME]`: the app's real return path.
    Bounces,
}

impl AppMailboxKind {
    /// The config section.
    pub fn section(self) -> &'static str {
        match self {
            AppMailboxKind::Reports => "reports",
            AppMailboxKind::Bounces => "bounces",
        }
    }
}

/// A domain the daemon audits (SPF, DKIM, DMARC, MX, ...) on schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// Receives mail (support@, replies): a missing MX is an error.
    pub receiving: bool,
    pub selectors: Vec<String>,
    pub sending_ips: Vec<std::net::IpAddr>,
    /// `sending_networks`: CIDRs the domain's own mail leaves from.
    pub sending_networks: Vec<ipnet::IpNet>,
    pub dnsbl_ip_zones: Vec<String>,
    pub dnsbl_domain_zones: Vec<String>,
    pub every: Duration,
    /// STARTTLS probe of the MX targets on this port; `None` skips it.
    pub smtp_port: Option<u16>,
    pub https_port: u16,
    pub cert_warn_days: u32,
}

impl Domain {
    /// Whether the domain's own mail is sent from `ip`: one of its
    /// `sending_ips` or inside one of its `sending_networks`.
    pub fn sends_from(&self, ip: std::net::IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.sending_ips.iter().any(|a| a.to_canonical() == ip)
            || self.sending_networks.iter().any(|n| n.contains(&ip))
    }
}
