//! The config file as written: serde structs that reject unknown keys and
//! keep the spans later checks need to point at.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use super::{HumanDuration, TlsMode};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub daemon: Option<RawDaemon>,
    pub http: Option<RawHttp>,
    pub dns: Option<RawDns>,
    #[serde(default)]
    pub senders: BTreeMap<String, Spanned<RawSender>>,
    #[serde(default)]
    pub seeds: BTreeMap<String, Spanned<RawSeed>>,
    #[serde(default)]
    pub probes: BTreeMap<String, Spanned<RawProbe>>,
    #[serde(default)]
    pub domains: BTreeMap<String, Spanned<RawDomain>>,
    /// Mailboxes receiving DMARC aggregate and TLS-RPT reports (seed settings).
    #[serde(default)]
    pub reports: BTreeMap<String, Spanned<RawSeed>>,
    /// Mailboxes receiving the app's real bounces (seed settings).
    #[serde(default)]
    pub bounces: BTreeMap<String, Spanned<RawSeed>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DomainRole {
    Sending,
    Receiving,
}

/// A domain whose DNS the daemon audits on schedule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDomain {
    #[serde(default)]
    pub roles: Vec<DomainRole>,
    #[serde(default)]
    pub selectors: Vec<String>,
    #[serde(default)]
    pub sending_ips: Vec<Spanned<String>>,
    /// CIDRs the domain's mail is sent from (besides `sending_ips`).
    #[serde(default)]
    pub sending_networks: Vec<Spanned<String>>,
    #[serde(default)]
    pub dnsbl_ip_zones: Vec<String>,
    #[serde(default)]
    pub dnsbl_domain_zones: Vec<String>,
    pub every: Option<Spanned<HumanDuration>>,
    /// Probe STARTTLS on the MX targets (port 25 unless `smtp_port`).
    pub starttls: Option<bool>,
    pub smtp_port: Option<u16>,
    pub https_port: Option<u16>,
    pub cert_warn_days: Option<u32>,
}

/// A drop-in file holds probes only.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProbeFile {
    #[serde(default)]
    pub probes: BTreeMap<String, Spanned<RawProbe>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDaemon {
    pub state_dir: Option<Spanned<PathBuf>>,
    pub probes_dir: Option<Spanned<PathBuf>>,
    pub shutdown_grace: Option<HumanDuration>,
    pub history: Option<HumanDuration>,
    pub run_detail: Option<Spanned<HumanDuration>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDns {
    pub resolver: Option<Spanned<String>>,
    pub timeout: Option<HumanDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    pub listen: Option<Spanned<String>>,
    /// TLS and basic auth, exporter-toolkit `web.yml` format.
    pub web_config_file: Option<Spanned<PathBuf>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SenderKind {
    Smtp,
    Http,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSender {
    pub kind: Spanned<SenderKind>,
    pub host: Option<Spanned<String>>,
    pub port: Option<u16>,
    pub tls: Option<TlsMode>,
    pub username: Option<String>,
    /// Present only to refuse it with a helpful message.
    pub password: Option<Spanned<toml::Value>>,
    pub password_file: Option<Spanned<PathBuf>>,
    pub password_env: Option<Spanned<String>>,
    pub ca_file: Option<Spanned<PathBuf>>,
    pub from: Spanned<String>,
    pub reply_to: Option<Spanned<String>>,
    /// The envelope sender (SMTP MAIL FROM), where bounces go.
    pub return_path: Option<Spanned<String>>,
    /// The `[seeds.*]` entry whose INBOX receives this sender's bounces.
    pub bounce_mailbox: Option<Spanned<String>>,
    pub timeout: Option<Spanned<HumanDuration>>,
    pub retries_4xx: Option<u32>,
    pub retry_backoff: Option<HumanDuration>,
    pub dkim_selector: Option<String>,
    pub dkim_domain: Option<String>,
    pub dkim_key_file: Option<Spanned<PathBuf>>,
    // kind = "http": the operator's own "send code" endpoint.
    pub url: Option<Spanned<String>>,
    pub method: Option<Spanned<String>>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
    pub token_file: Option<Spanned<PathBuf>>,
    pub token_env: Option<Spanned<String>>,
    /// Present only to refuse it with a helpful message.
    pub token: Option<Spanned<toml::Value>>,
    pub token_header: Option<String>,
    pub token_prefix: Option<String>,
    pub success_status: Option<Vec<u16>>,
    pub success_json: Option<String>,
    pub quota_pattern: Option<Spanned<String>>,
    pub subject_pattern: Option<Spanned<String>>,
    pub code_pattern: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InboxKind {
    Imap,
    Maildir,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSeed {
    pub provider: Spanned<String>,
    pub address: Spanned<String>,
    pub authserv_id: Option<String>,
    pub kind: Spanned<InboxKind>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub tls: Option<TlsMode>,
    pub username: Option<String>,
    /// How to log in; the provider preset's method by default, else `login`.
    pub auth: Option<Spanned<ImapAuthKind>>,
    /// Present only to refuse it with a helpful message.
    pub password: Option<Spanned<toml::Value>>,
    pub password_file: Option<Spanned<PathBuf>>,
    pub password_env: Option<Spanned<String>>,
    /// Token endpoint and credentials for `auth = "xoauth2" | "oauthbearer"`.
    pub oauth: Option<Spanned<RawOAuth>>,
    /// Send the IMAP ID command after login (RFC 2971); default true.
    pub imap_id: Option<bool>,
    /// Most bytes of a message fetched, for kind = "imap" (default 4 MiB).
    pub max_message_size: Option<Spanned<u64>>,
    pub ca_file: Option<Spanned<PathBuf>>,
    pub path: Option<Spanned<PathBuf>>,
    pub spam_folder: Option<String>,
    pub cleanup_folder: Option<String>,
}

/// IMAP authentication methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImapAuthKind {
    /// The LOGIN command (RFC 3501 §6.2.3).
    Login,
    /// SASL PLAIN (RFC 4616).
    Plain,
    /// SASL XOAUTH2 (Google's and Microsoft's bearer-token mechanism).
    Xoauth2,
    /// SASL OAUTHBEARER (RFC 7628).
    Oauthbearer,
}

/// `[seeds.NAME.oauth]`: where access tokens come from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOAuth {
    pub token_url: Option<Spanned<String>>,
    pub client_id: Option<Spanned<String>>,
    /// Present only to refuse it with a helpful message.
    pub client_secret: Option<Spanned<toml::Value>>,
    pub client_secret_file: Option<Spanned<PathBuf>>,
    pub client_secret_env: Option<Spanned<String>>,
    /// Present only to refuse it with a helpful message.
    pub refresh_token: Option<Spanned<toml::Value>>,
    pub refresh_token_file: Option<Spanned<PathBuf>>,
    pub refresh_token_env: Option<Spanned<String>>,
    pub scope: Option<String>,
    /// CA bundle for the token endpoint (test stacks).
    pub ca_file: Option<Spanned<PathBuf>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProbe {
    pub sender: Spanned<String>,
    pub seeds: Spanned<Vec<Spanned<String>>>,
    pub every: Spanned<HumanDuration>,
    pub timeout: Option<Spanned<HumanDuration>>,
    pub template: Spanned<PathBuf>,
    pub product: Option<String>,
    pub code_length: Option<Spanned<u8>>,
    pub code_validity: Option<HumanDuration>,
    pub probe_header: Option<bool>,
    pub burst: Option<Spanned<u32>>,
    pub burst_spacing: Option<HumanDuration>,
}
