//! Configuration: one TOML file plus drop-in probe files.
//!
//! Loading happens in two steps. Serde reads the text into `raw` structs that
//! reject unknown keys and keep spans; [`load`] then checks meaning (names a
//! probe refers to exist, secret files are readable, addresses parse) and
//! builds the resolved [`Config`] the daemon uses. Every problem is reported
//! as a [`Diagnostic`] naming `file:line:col` and the key, and all problems of
//! a load are reported together.

mod diag;
mod duration;
pub mod presets;
mod raw;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use diag::Diagnostic;
pub use duration::HumanDuration;

use crate::probe::compose::Template;
use diag::Source;
use presets::PresetAuth;
use raw::{RawConfig, RawProbe, RawProbeFile, RawSeed, RawSender};
use toml::Spanned;

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
    /// Problems that do not stop the load (e.g. a timeout longer than the interval).
    pub warnings: Vec<Diagnostic>,
}

#[derive(Debug, Clone)]
pub struct Daemon {
    /// Directory for the embedded store.
    pub state_dir: PathBuf,
    /// How long shutdown waits for in-flight work before giving up on it.
    pub shutdown_grace: Duration,
    /// How long final probe runs stay in the store.
    pub history: Duration,
}

#[derive(Debug, Clone)]
pub struct Http {
    pub listen: SocketAddr,
    /// TLS, basic auth and headers from `http.web_config_file`; `None`:
    /// plain HTTP, open to whoever reaches `listen`.
    pub web: Option<Arc<crate::http::web_config::WebConfig>>,
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

    /// Whether a `probe`, `seed` or `domain` label value names something
    /// this configuration runs (other labels: always).
    pub fn runs(&self, label: &str, value: &str) -> bool {
        match label {
            "probe" => self.probes.contains_key(value),
            "seed" => self.seed_in_use(value),
            "domain" => self.domains.contains_key(value),
            _ => true,
        }
    }
}

/// A secret read from a file or the environment. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A secret obtained at run time (e.g. an OAuth access token).
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// A secret built in code rather than read from the config (tests, tools).
    pub fn from_test_value(value: String) -> Secret {
        Secret(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
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
    pub timeout: Duration,
    /// How often a temporary (4xx) refusal is retried before it counts as a failure.
    pub retries_4xx: u32,
    pub retry_backoff: Duration,
    /// DKIM signing by mailcanary itself, for relays that do not sign.
    pub dkim: Option<DkimSigning>,
}

/// A DKIM key mailcanary signs probes with.
#[derive(Debug, Clone)]
pub struct DkimSigning {
    pub selector: String,
    pub domain: String,
    /// The private key (PEM, PKCS#8 or PKCS#1 RSA).
    pub key_pem: Secret,
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
/// The range `max_message_size` may take.
const MAX_MESSAGE_SIZE_RANGE: std::ops::RangeInclusive<u64> = 64 * 1024..=64 * 1024 * 1024;

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

/// A domain the daemon audits (SPF, DKIM, DMARC, MX, ...) on schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// Receives mail (support@, replies): a missing MX is an error.
    pub receiving: bool,
    pub selectors: Vec<String>,
    pub sending_ips: Vec<std::net::IpAddr>,
    pub dnsbl_ip_zones: Vec<String>,
    pub dnsbl_domain_zones: Vec<String>,
    pub every: Duration,
    /// STARTTLS probe of the MX targets on this port; `None` skips it.
    pub smtp_port: Option<u16>,
    pub https_port: u16,
    pub cert_warn_days: u32,
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read at all.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The files were read but have problems; each names file:line:col and the key.
    #[error("{}", join_lines(.0))]
    Invalid(Vec<Diagnostic>),
}

fn join_lines(d: &[Diagnostic]) -> String {
    d.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Load and check the main config file and its drop-in probe files.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let main = read(path)?;
    let mut problems = Vec::new();
    let raw: RawConfig = match toml::from_str(&main.text) {
        Ok(raw) => raw,
        Err(e) => return Err(ConfigError::Invalid(vec![main.toml_error(&e)])),
    };
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let mut ctx = Check {
        base: &base,
        problems: &mut problems,
        warnings: Vec::new(),
    };

    let daemon = raw.daemon.unwrap_or_default();
    let state_dir = ctx.path(
        &daemon
            .state_dir
            .map(Spanned::into_inner)
            .unwrap_or_else(|| PathBuf::from("/var/lib/mailcanary")),
    );
    let shutdown_grace = daemon
        .shutdown_grace
        .map_or(Duration::from_secs(10), |d| d.0);
    let daemon_history = daemon
        .history
        .map_or(Duration::from_secs(30 * 86_400), |d| d.0);
    let raw_dns = raw.dns.unwrap_or_default();
    let dns = Dns {
        resolver: raw_dns
            .resolver
            .and_then(|r| match r.get_ref().parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    ctx.problems.push(main.at_value(
                        &r,
                        "dns.resolver",
                        format!(
                            "{:?} is not an address:port, e.g. \"127.0.0.1:53\"",
                            r.get_ref()
                        ),
                    ));
                    None
                }
            }),
        timeout: raw_dns.timeout.map_or(Duration::from_secs(5), |d| d.0),
    };
    let raw_http = raw.http.unwrap_or_default();
    let web = raw_http.web_config_file.as_ref().and_then(|f| {
        let path = ctx.path(f.get_ref());
        if !path.is_file() {
            ctx.problems.push(main.at_value(
                f,
                "http.web_config_file",
                format!(
                    "cannot read web config file {}: {}",
                    path.display(),
                    match std::fs::metadata(&path) {
                        Ok(_) => "not a regular file".to_string(),
                        Err(e) => e.to_string(),
                    }
                ),
            ));
            return None;
        }
        match crate::http::web_config::load(&path) {
            Ok(loaded) => {
                ctx.warnings.extend(loaded.warnings);
                Some(Arc::new(loaded.config))
            }
            Err(problems) => {
                ctx.problems.extend(problems);
                None
            }
        }
    });
    let listen = match raw_http.listen {
        None => SocketAddr::from(([127, 0, 0, 1], DEFAULT_HTTP_PORT)),
        Some(s) => match s.get_ref().parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                ctx.problems.push(main.at_value(
                    &s,
                    "http.listen",
                    format!(
                        "{:?} is not an address:port, e.g. \"127.0.0.1:{DEFAULT_HTTP_PORT}\"",
                        s.get_ref()
                    ),
                ));
                SocketAddr::from(([127, 0, 0, 1], DEFAULT_HTTP_PORT))
            }
        },
    };
    if let (Some(w), Some(f)) = (&web, &raw_http.web_config_file) {
        if !w.users.is_empty() && w.tls.is_none() && !listen.ip().is_loopback() {
            ctx.warnings.push(main.at_value(
                f,
                "http.web_config_file",
                format!(
                    "basic auth without TLS on {listen}: passwords cross the network in clear text; add tls_server_config"
                ),
            ));
        }
    }

    // Names as declared, so a probe naming a sender or seed that has its own
    // problems is not reported a second time as unknown.
    let sender_names: Vec<String> = raw.senders.keys().cloned().collect();
    let seed_names: Vec<String> = raw.seeds.keys().cloned().collect();
    let mut senders = BTreeMap::new();
    for (name, s) in raw.senders {
        ctx.name(&main, &s, "senders", &name);
        if let Some(sender) = ctx.sender(&main, &name, s.into_inner()) {
            senders.insert(name, sender);
        }
    }
    let mut seeds = BTreeMap::new();
    for (name, s) in raw.seeds {
        ctx.name(&main, &s, "seeds", &name);
        if let Some(seed) = ctx.seed(&main, &name, s.into_inner()) {
            seeds.insert(name, seed);
        }
    }

    // Probes: from the main file, then from each drop-in file in name order.
    let mut sources = vec![(main, raw.probes)];
    if let Some(dir) = daemon.probes_dir {
        let dir_path = ctx.path(dir.get_ref());
        match drop_in_files(&dir_path) {
            Ok(files) => {
                for f in files {
                    let src = read(&f)?;
                    match toml::from_str::<RawProbeFile>(&src.text) {
                        Ok(pf) => sources.push((src, pf.probes)),
                        Err(e) => ctx.problems.push(src.toml_error(&e)),
                    }
                }
            }
            Err(e) => ctx.problems.push(sources[0].0.at_value(
                &dir,
                "daemon.probes_dir",
                format!("cannot list {}: {e}", dir_path.display()),
            )),
        }
    }
    let mut probes: BTreeMap<String, (Probe, String)> = BTreeMap::new();
    for (src, table) in &sources {
        for (name, p) in table {
            ctx.name(src, p, "probes", name);
            let here = {
                let (l, c) = src.position(p.span().start);
                format!("{}:{l}:{c}", src.path.display())
            };
            if let Some((_, first)) = probes.get(name) {
                ctx.problems.push(src.at_value(
                    p,
                    &format!("probes.{name}"),
                    format!("probe {name:?} is already defined at {first}"),
                ));
                continue;
            }
            if let Some(probe) = ctx.probe(src, name, p.get_ref(), &sender_names, &seed_names) {
                probes.insert(name.clone(), (probe, here));
            }
        }
    }

    let mut domains = BTreeMap::new();
    for (name, d) in &raw.domains {
        if let Some(domain) = ctx.domain(&sources[0].0, name, d) {
            domains.insert(name.clone(), domain);
        }
    }

    let warnings = std::mem::take(&mut ctx.warnings);
    if !problems.is_empty() {
        return Err(ConfigError::Invalid(problems));
    }
    Ok(Config {
        path: path.to_path_buf(),
        daemon: Daemon {
            state_dir,
            shutdown_grace,
            history: daemon_history,
        },
        http: Http { listen, web },
        dns,
        senders,
        seeds,
        probes: probes.into_iter().map(|(k, (p, _))| (k, p)).collect(),
        domains,
        warnings,
    })
}

fn read(path: &Path) -> Result<Source, ConfigError> {
    std::fs::read_to_string(path)
        .map(|text| Source::new(path, text))
        .map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })
}

/// `*.toml` files of a drop-in directory, sorted by name so the load order is stable.
fn drop_in_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        // Not `is_file`: a dangling link or a link loop is then an error that
        // names the file when it is read, not a file silently skipped.
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && !p.is_dir())
        .collect();
    files.sort();
    Ok(files)
}

/// Whether a URL's host is a loopback address or `localhost`.
fn is_loopback_host(u: &reqwest::Url) -> bool {
    let Some(host) = u.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Configured names become metric label values, so they are kept short and plain.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
}

/// Collects problems while resolving raw values.
struct Check<'a> {
    base: &'a Path,
    problems: &'a mut Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl Check<'_> {
    fn path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    fn name<T>(&mut self, src: &Source, at: &Spanned<T>, section: &str, name: &str) {
        if !valid_name(name) {
            self.problems.push(src.at_value(at, &format!("{section}.{name}"), format!(
                "name {name:?} must be 1-64 characters of a-z, 0-9, '-', '_', '.' (it becomes a metric label)"
            )));
        }
    }

    fn address(&mut self, src: &Source, v: &Spanned<String>, key: &str) -> Option<String> {
        match v.get_ref().parse::<lettre::Address>() {
            Ok(a) => Some(a.to_string()),
            Err(e) => {
                self.problems.push(src.at_value(
                    v,
                    key,
                    format!("{:?} is not a mail address: {e}", v.get_ref()),
                ));
                None
            }
        }
    }

    /// Resolve a secret from exactly one of `<name>_file` / `<name>_env`.
    fn secret(
        &mut self,
        src: &Source,
        key: &str,
        inline: &Option<Spanned<toml::Value>>,
        file: &Option<Spanned<PathBuf>>,
        env: &Option<Spanned<String>>,
    ) -> Option<Secret> {
        if let Some(v) = inline {
            let field = key.rsplit('.').next().unwrap_or(key);
            self.problems.push(src.at_value(v, key, format!(
                "inline secrets are not accepted; use {field}_file (e.g. with systemd LoadCredential=) or {field}_env"
            )));
            return None;
        }
        match (file, env) {
            (Some(f), Some(_)) => {
                self.problems.push(src.at_value(
                    f,
                    &format!("{key}_file"),
                    format!(
                        "set only one of {0}_file and {0}_env",
                        key.rsplit('.').next().unwrap_or(key)
                    ),
                ));
                None
            }
            (Some(f), None) => {
                let path = self.path(f.get_ref());
                match std::fs::read_to_string(&path) {
                    Ok(s) => {
                        let s = s
                            .strip_suffix('\n')
                            .map(|s| s.strip_suffix('\r').unwrap_or(s))
                            .unwrap_or(&s);
                        if s.is_empty() {
                            self.problems.push(src.at_value(
                                f,
                                &format!("{key}_file"),
                                format!("secret file {} is empty", path.display()),
                            ));
                            None
                        } else {
                            Some(Secret(s.to_string()))
                        }
                    }
                    Err(e) => {
                        self.problems.push(src.at_value(
                            f,
                            &format!("{key}_file"),
                            format!("cannot read secret file {}: {e}", path.display()),
                        ));
                        None
                    }
                }
            }
            (None, Some(v)) => match std::env::var(v.get_ref()) {
                Ok(s) if !s.is_empty() => Some(Secret(s)),
                _ => {
                    self.problems.push(src.at_value(
                        v,
                        &format!("{key}_env"),
                        format!("environment variable {} is not set or empty", v.get_ref()),
                    ));
                    None
                }
            },
            (None, None) => None,
        }
    }

    fn ca_file(
        &mut self,
        src: &Source,
        key: &str,
        v: &Option<Spanned<PathBuf>>,
    ) -> Option<PathBuf> {
        let v = v.as_ref()?;
        let path = self.path(v.get_ref());
        if let Err(e) = std::fs::File::open(&path) {
            self.problems.push(src.at_value(
                v,
                key,
                format!("cannot read CA file {}: {e}", path.display()),
            ));
        }
        Some(path)
    }

    fn regex(
        &mut self,
        src: &Source,
        key: &str,
        v: &Option<Spanned<String>>,
        default: &str,
    ) -> Option<regex::Regex> {
        let pattern = v.as_ref().map_or(default, |p| p.get_ref().as_str());
        match regex::Regex::new(pattern) {
            Ok(r) => Some(r),
            Err(e) => {
                let at = v.as_ref().map_or(0..0, |p| p.span());
                // regex errors span lines (pattern, caret, reason): keep the reason.
                let text = e.to_string();
                let reason = text
                    .lines()
                    .last()
                    .unwrap_or("")
                    .trim_start_matches("error: ");
                self.problems.push(src.at(
                    at,
                    key,
                    format!("invalid regular expression {pattern:?}: {reason}"),
                ));
                None
            }
        }
    }

    fn http_sender(&mut self, src: &Source, name: &str, s: RawSender) -> Option<Sender> {
        let k = |f: &str| format!("senders.{name}.{f}");
        let from = self.address(src, &s.from, &k("from"));
        for (set, field) in [
            (s.host.is_some(), "host"),
            (s.port.is_some(), "port"),
            (s.tls.is_some(), "tls"),
            (s.username.is_some(), "username"),
            (
                s.password.is_some() || s.password_file.is_some() || s.password_env.is_some(),
                "password_file",
            ),
            (
                s.dkim_selector.is_some() || s.dkim_key_file.is_some(),
                "dkim_selector",
            ),
        ] {
            if set {
                self.problems.push(src.at_value(
                    &s.kind,
                    &k(field),
                    format!("`{field}` is for kind = \"smtp\", not \"http\""),
                ));
            }
        }
        let Some(url) = &s.url else {
            self.problems
                .push(src.at_value(&s.kind, &k("url"), "kind = \"http\" needs `url`"));
            return None;
        };
        if !(url.get_ref().starts_with("https://") || url.get_ref().starts_with("http://")) {
            self.problems.push(src.at_value(
                url,
                &k("url"),
                "url must start with https:// (or http:// on loopback)",
            ));
        }
        let method = match &s.method {
            None => reqwest::Method::POST,
            Some(m) => {
                match reqwest::Method::from_bytes(m.get_ref().to_ascii_uppercase().as_bytes()) {
                    Ok(m) => m,
                    Err(_) => {
                        self.problems.push(src.at_value(
                            m,
                            &k("method"),
                            format!("{:?} is not an HTTP method", m.get_ref()),
                        ));
                        reqwest::Method::POST
                    }
                }
            }
        };
        let token = self
            .secret(src, &k("token"), &s.token, &s.token_file, &s.token_env)
            .map(|t| {
                let header = s
                    .token_header
                    .clone()
                    .unwrap_or_else(|| "Authorization".into());
                let prefix = s.token_prefix.clone().unwrap_or_else(|| "Bearer ".into());
                (header, Secret(format!("{prefix}{}", t.expose())))
            });
        let quota_pattern = self.regex(src, &k("quota_pattern"), &s.quota_pattern, r"(?i)quota")?;
        let subject_pattern = match &s.subject_pattern {
            Some(_) => Some(self.regex(src, &k("subject_pattern"), &s.subject_pattern, "")?),
            None => None,
        };
        let code_pattern =
            self.regex(src, &k("code_pattern"), &s.code_pattern, r"\b(\d{4,8})\b")?;
        if code_pattern.captures_len() < 2 {
            let at = s.code_pattern.as_ref().map_or(0..0, |p| p.span());
            self.problems.push(src.at(
                at,
                &k("code_pattern"),
                "code_pattern needs a capture group around the code, e.g. \"code: (\\d{6})\"",
            ));
        }
        Some(Sender::Http(HttpSender {
            url: url.get_ref().clone(),
            method,
            headers: s.headers.clone(),
            body: s.body.clone(),
            token,
            ca_file: self.ca_file(src, &k("ca_file"), &s.ca_file),
            timeout: s
                .timeout
                .map_or(Duration::from_secs(30), |t| t.into_inner().0),
            success_status: s.success_status.clone().unwrap_or_default(),
            success_json: s.success_json.clone(),
            quota_pattern,
            from: from?,
            subject_pattern,
            code_pattern,
        }))
    }

    fn sender(&mut self, src: &Source, name: &str, s: RawSender) -> Option<Sender> {
        if *s.kind.get_ref() == raw::SenderKind::Http {
            return self.http_sender(src, name, s);
        }
        let k = |f: &str| format!("senders.{name}.{f}");
        for (set, field) in [
            (s.url.is_some(), "url"),
            (s.method.is_some(), "method"),
            (!s.headers.is_empty(), "headers"),
            (s.body.is_some(), "body"),
            (
                s.token.is_some() || s.token_file.is_some() || s.token_env.is_some(),
                "token_file",
            ),
            (
                s.success_status.is_some() || s.success_json.is_some(),
                "success_status",
            ),
            (
                s.quota_pattern.is_some()
                    || s.subject_pattern.is_some()
                    || s.code_pattern.is_some(),
                "code_pattern",
            ),
        ] {
            if set {
                self.problems.push(src.at_value(
                    &s.kind,
                    &k(field),
                    format!("`{field}` is for kind = \"http\", not \"smtp\""),
                ));
            }
        }
        let Some(host) = s.host.clone() else {
            self.problems
                .push(src.at_value(&s.kind, &k("host"), "kind = \"smtp\" needs `host`"));
            return None;
        };
        let from = self.address(src, &s.from, &k("from"));
        let dkim = self.dkim(src, name, &s, from.as_deref());
        let reply_to = s
            .reply_to
            .as_ref()
            .and_then(|r| self.address(src, r, &k("reply_to")));
        let password = self.secret(
            src,
            &k("password"),
            &s.password,
            &s.password_file,
            &s.password_env,
        );
        if password.is_some() && s.username.is_none() {
            let at = s
                .password_file
                .as_ref()
                .map(|f| f.span())
                .or(s.password_env.as_ref().map(|e| e.span()))
                .unwrap_or(0..0);
            self.problems.push(src.at(
                at,
                &k("username"),
                "a password is set but no username to log in with",
            ));
        }
        let ca_file = self.ca_file(src, &k("ca_file"), &s.ca_file);
        let tls = s.tls.unwrap_or(TlsMode::Starttls);
        let port = s.port.unwrap_or(match tls {
            TlsMode::Implicit => 465,
            TlsMode::Starttls => 587,
            TlsMode::None => 25,
        });
        Some(Sender::Smtp(SmtpSender {
            host: host.into_inner(),
            port,
            tls,
            username: s.username,
            password,
            ca_file,
            from: from?,
            reply_to,
            timeout: s
                .timeout
                .map_or(Duration::from_secs(60), |t| t.into_inner().0),
            dkim,
            retries_4xx: s.retries_4xx.unwrap_or(2),
            retry_backoff: s.retry_backoff.map_or(Duration::from_secs(30), |d| d.0),
        }))
    }

    fn domain(&mut self, src: &Source, name: &str, d: &Spanned<raw::RawDomain>) -> Option<Domain> {
        let k = |f: &str| format!("domains.{name}.{f}");
        let raw = d.get_ref();
        let valid_domain = name.len() <= 253
            && name.contains('.')
            && name.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            });
        let mut ok = true;
        if !valid_domain {
            ok = false;
            self.problems.push(src.at_value(d, &format!("domains.{name}"), format!(
                "{name:?} is not a lower-case DNS name (it becomes a metric label); quote it: [domains.\"example.com\"]"
            )));
        }
        for sel in &raw.selectors {
            if !valid_name(sel) {
                ok = false;
                self.problems.push(src.at_value(
                    d,
                    &k("selectors"),
                    format!("selector {sel:?} must be 1-64 characters of a-z, 0-9, '-', '_', '.'"),
                ));
            }
        }
        let mut ips = Vec::new();
        for ip in &raw.sending_ips {
            match ip.get_ref().parse::<std::net::IpAddr>() {
                Ok(a) => ips.push(a),
                Err(_) => {
                    ok = false;
                    self.problems.push(src.at_value(
                        ip,
                        &k("sending_ips"),
                        format!("{:?} is not an IP address", ip.get_ref()),
                    ));
                }
            }
        }
        let every = raw
            .every
            .as_ref()
            .map_or(Duration::from_secs(900), |e| e.get_ref().0);
        if every < Duration::from_secs(1) {
            ok = false;
            let at = raw.every.as_ref().map_or(d.span(), |e| e.span());
            self.problems
                .push(src.at(at, &k("every"), "audit interval must be at least 1s"));
        }
        ok.then(|| Domain {
            receiving: raw.roles.contains(&raw::DomainRole::Receiving),
            selectors: raw.selectors.clone(),
            sending_ips: ips,
            dnsbl_ip_zones: raw.dnsbl_ip_zones.clone(),
            dnsbl_domain_zones: raw.dnsbl_domain_zones.clone(),
            every,
            smtp_port: match raw.starttls {
                Some(false) => None,
                _ => Some(raw.smtp_port.unwrap_or(25)),
            },
            https_port: raw.https_port.unwrap_or(443),
            cert_warn_days: raw.cert_warn_days.unwrap_or(14),
        })
    }

    /// DKIM signing settings: all of selector and key file, or none.
    fn dkim(
        &mut self,
        src: &Source,
        name: &str,
        s: &RawSender,
        from: Option<&str>,
    ) -> Option<DkimSigning> {
        let k = |f: &str| format!("senders.{name}.{f}");
        let (selector, key_file) = match (&s.dkim_selector, &s.dkim_key_file) {
            (None, None) => {
                if s.dkim_domain.is_some() {
                    self.problems.push(src.at_value(
                        &s.from,
                        &k("dkim_selector"),
                        "dkim_domain is set but dkim_selector and dkim_key_file are not",
                    ));
                }
                return None;
            }
            (Some(sel), Some(f)) => (sel, f),
            (None, Some(f)) => {
                self.problems.push(src.at_value(
                    f,
                    &k("dkim_selector"),
                    "dkim_key_file needs dkim_selector",
                ));
                return None;
            }
            (Some(_), None) => {
                self.problems.push(src.at_value(
                    &s.from,
                    &k("dkim_key_file"),
                    "dkim_selector needs dkim_key_file",
                ));
                return None;
            }
        };
        let path = self.path(key_file.get_ref());
        let pem = match std::fs::read_to_string(&path) {
            Ok(p) => p,
            Err(e) => {
                self.problems.push(src.at_value(
                    key_file,
                    &k("dkim_key_file"),
                    format!("cannot read DKIM key {}: {e}", path.display()),
                ));
                return None;
            }
        };
        if let Err(e) = crate::probe::sign::signing_key(&pem) {
            self.problems.push(src.at_value(
                key_file,
                &k("dkim_key_file"),
                format!("{}: {e}", path.display()),
            ));
            return None;
        }
        let domain = s.dkim_domain.clone().or_else(|| {
            from.and_then(|f| f.rsplit_once('@'))
                .map(|(_, d)| d.to_string())
        })?;
        Some(DkimSigning {
            selector: selector.clone(),
            domain,
            key_pem: Secret(pem),
        })
    }

    fn seed(&mut self, src: &Source, name: &str, s: RawSeed) -> Option<Seed> {
        let k = |f: &str| format!("seeds.{name}.{f}");
        let address = self.address(src, &s.address, &k("address"));
        if !valid_name(s.provider.get_ref()) {
            self.problems.push(src.at_value(&s.provider, &k("provider"), "provider must be 1-64 characters of a-z, 0-9, '-', '_', '.' (it becomes a metric label)"));
        }
        let inbox = match s.kind.get_ref() {
            raw::InboxKind::Imap => Inbox::Imap(self.imap(src, name, &s, address.as_deref())?),
            raw::InboxKind::Maildir => {
                for (set, field) in [
                    (s.host.is_some(), "host"),
                    (s.port.is_some(), "port"),
                    (s.tls.is_some(), "tls"),
                    (s.username.is_some(), "username"),
                    (
                        s.password_file.is_some()
                            || s.password_env.is_some()
                            || s.password.is_some(),
                        "password_file",
                    ),
                    (s.ca_file.is_some(), "ca_file"),
                ] {
                    if set {
                        self.problems.push(src.at_value(
                            &s.kind,
                            &k(field),
                            format!("`{field}` is for kind = \"imap\", not \"maildir\""),
                        ));
                    }
                }
                let Some(p) = s.path.as_ref() else {
                    self.problems.push(src.at_value(
                        &s.kind,
                        &k("path"),
                        "kind = \"maildir\" needs `path` (the Maildir directory)",
                    ));
                    return None;
                };
                Inbox::Maildir(MaildirInbox {
                    path: self.path(p.get_ref()),
                })
            }
        };
        let spam_folders = presets::find(s.provider.get_ref())
            .filter(|_| matches!(inbox, Inbox::Imap(_)))
            .map(|p| p.spam_folders.iter().map(|f| f.to_string()).collect())
            .unwrap_or_default();
        Some(Seed {
            provider: s.provider.into_inner(),
            address: address?,
            authserv_id: s.authserv_id,
            inbox,
            spam_folder: s.spam_folder,
            cleanup_folder: s.cleanup_folder,
            spam_folders,
        })
    }

    /// An IMAP seed: the seed's own keys, then its provider preset's values,
    /// then the defaults.
    fn imap(
        &mut self,
        src: &Source,
        name: &str,
        s: &RawSeed,
        address: Option<&str>,
    ) -> Option<ImapInbox> {
        let k = |f: &str| format!("seeds.{name}.{f}");
        let preset = presets::find(s.provider.get_ref());
        if s.path.is_some() {
            self.problems.push(src.at_value(
                s.path.as_ref()?,
                &k("path"),
                "`path` is for kind = \"maildir\"",
            ));
        }
        let host = s.host.clone().or(preset.map(|p| p.host.to_string()));
        if host.is_none() {
            self.problems.push(src.at_value(
                &s.kind,
                &k("host"),
                "kind = \"imap\" needs `host`, or a `provider` with a preset (README, \"Seed providers\")",
            ));
        }
        let tls = s.tls.or(preset.map(|p| p.tls)).unwrap_or(TlsMode::Implicit);
        let port = s
            .port
            .or(preset.filter(|p| p.tls == tls).map(|p| p.port))
            .unwrap_or(if tls == TlsMode::Implicit { 993 } else { 143 });
        // Most providers log in with the whole address; iCloud with the local part.
        let username = s.username.clone().or_else(|| {
            let address = address?;
            match preset {
                Some(p) if !p.username_is_address => address.split('@').next().map(str::to_string),
                _ => Some(address.to_string()),
            }
        });
        let has_password =
            s.password.is_some() || s.password_file.is_some() || s.password_env.is_some();
        // An explicit `auth` wins; an oauth table or a password says which
        // kind is meant; then the preset's method; then LOGIN.
        let kind = match (&s.auth, &s.oauth, has_password, preset.map(|p| p.auth)) {
            (Some(a), ..) => *a.get_ref(),
            (None, Some(_), _, _) => raw::ImapAuthKind::Xoauth2,
            (None, None, true, _) => raw::ImapAuthKind::Login,
            (None, None, false, Some(PresetAuth::OAuth2 { .. })) => raw::ImapAuthKind::Xoauth2,
            _ => raw::ImapAuthKind::Login,
        };
        let auth = match kind {
            raw::ImapAuthKind::Login | raw::ImapAuthKind::Plain => {
                if let Some(o) = &s.oauth {
                    self.problems.push(src.at_value(
                        o,
                        &k("oauth"),
                        "`oauth` is for auth = \"xoauth2\" or \"oauthbearer\"",
                    ));
                }
                let password = self.secret(
                    src,
                    &k("password"),
                    &s.password,
                    &s.password_file,
                    &s.password_env,
                );
                if !has_password {
                    self.problems.push(src.at_value(
                        &s.kind,
                        &k("password_file"),
                        format!(
                            "auth = \"{}\" needs password_file or password_env",
                            if kind == raw::ImapAuthKind::Plain {
                                "plain"
                            } else {
                                "login"
                            }
                        ),
                    ));
                }
                let password = password?;
                if kind == raw::ImapAuthKind::Plain {
                    ImapAuth::Plain(password)
                } else {
                    ImapAuth::Login(password)
                }
            }
            raw::ImapAuthKind::Xoauth2 | raw::ImapAuthKind::Oauthbearer => {
                let mechanism = if kind == raw::ImapAuthKind::Xoauth2 {
                    OAuthMechanism::XOAuth2
                } else {
                    OAuthMechanism::OAuthBearer
                };
                for (set, field) in [
                    (s.password.as_ref().map(|v| v.span()), "password"),
                    (s.password_file.as_ref().map(|v| v.span()), "password_file"),
                    (s.password_env.as_ref().map(|v| v.span()), "password_env"),
                ] {
                    if let Some(span) = set {
                        self.problems.push(src.at(
                            span,
                            &k(field),
                            format!(
                                "`{field}` is for auth = \"login\" or \"plain\", not \"{}\"",
                                mechanism.as_str()
                            ),
                        ));
                    }
                }
                let preset_oauth = match preset.map(|p| p.auth) {
                    Some(PresetAuth::OAuth2 { token_url, scope }) => Some((token_url, scope)),
                    _ => None,
                };
                ImapAuth::OAuth {
                    mechanism,
                    client: self.oauth(src, name, s, preset_oauth)?,
                }
            }
        };
        let ca_file = self.ca_file(src, &k("ca_file"), &s.ca_file);
        let max_message_size = match &s.max_message_size {
            None => DEFAULT_MAX_MESSAGE_SIZE,
            Some(n) if MAX_MESSAGE_SIZE_RANGE.contains(n.get_ref()) => *n.get_ref() as usize,
            Some(n) => {
                self.problems.push(src.at_value(
                    n,
                    &k("max_message_size"),
                    "`max_message_size` is in bytes, from 65536 (64 KiB) to 67108864 (64 MiB)",
                ));
                DEFAULT_MAX_MESSAGE_SIZE
            }
        };
        Some(ImapInbox {
            host: host?,
            port,
            tls,
            username: username?,
            auth,
            ca_file,
            imap_id: s.imap_id.unwrap_or(true),
            hint: preset.map(|p| p.hint),
            max_message_size,
        })
    }

    /// `[seeds.NAME.oauth]`, with the preset's token endpoint and scope as defaults.
    fn oauth(
        &mut self,
        src: &Source,
        name: &str,
        s: &RawSeed,
        preset: Option<(&'static str, Option<&'static str>)>,
    ) -> Option<OAuthClient> {
        let k = |f: &str| format!("seeds.{name}.oauth.{f}");
        let Some(o) = &s.oauth else {
            self.problems.push(src.at_value(
                &s.kind,
                &format!("seeds.{name}.oauth"),
                format!(
                    "auth = \"{}\" needs a [seeds.{name}.oauth] table with client_id and refresh_token_file (README, \"OAuth2 seeds\")",
                    s.auth.as_ref().map_or("xoauth2", |a| match a.get_ref() {
                        raw::ImapAuthKind::Oauthbearer => "oauthbearer",
                        _ => "xoauth2",
                    })
                ),
            ));
            return None;
        };
        let (span, o) = (o.span(), o.get_ref());
        let token_url = match (&o.token_url, preset) {
            (Some(u), _) => self.token_url(src, &k("token_url"), u),
            (None, Some((url, _))) => Some(url.to_string()),
            (None, None) => {
                self.problems.push(src.at(
                    span.clone(),
                    &k("token_url"),
                    "needs `token_url` (the provider's OAuth 2.0 token endpoint)",
                ));
                None
            }
        };
        let client_id = match &o.client_id {
            Some(id) if !id.get_ref().trim().is_empty() => Some(id.get_ref().trim().to_string()),
            Some(id) => {
                self.problems
                    .push(src.at_value(id, &k("client_id"), "client_id is empty"));
                None
            }
            None => {
                self.problems.push(src.at(
                    span.clone(),
                    &k("client_id"),
                    "needs `client_id` (the OAuth client the refresh token was issued to)",
                ));
                None
            }
        };
        let client_secret = self.secret(
            src,
            &k("client_secret"),
            &o.client_secret,
            &o.client_secret_file,
            &o.client_secret_env,
        );
        let refresh_token = self.secret(
            src,
            &k("refresh_token"),
            &o.refresh_token,
            &o.refresh_token_file,
            &o.refresh_token_env,
        );
        if o.refresh_token.is_none()
            && o.refresh_token_file.is_none()
            && o.refresh_token_env.is_none()
        {
            self.problems.push(src.at(
                span,
                &k("refresh_token_file"),
                "needs refresh_token_file or refresh_token_env",
            ));
        }
        let ca_file = self.ca_file(src, &k("ca_file"), &o.ca_file);
        Some(OAuthClient {
            token_url: token_url?,
            client_id: client_id?,
            client_secret,
            refresh_token: refresh_token?,
            scope: o
                .scope
                .clone()
                .or(preset.and_then(|(_, scope)| scope.map(str::to_string))),
            ca_file,
        })
    }

    /// A token endpoint: https, or plain http to a loopback host only (the
    /// request carries the refresh token and client secret).
    fn token_url(&mut self, src: &Source, key: &str, v: &Spanned<String>) -> Option<String> {
        let problem = match reqwest::Url::parse(v.get_ref()) {
            Err(e) => format!("{:?} is not a URL: {e}", v.get_ref()),
            Ok(u) if u.query().is_some() || !u.username().is_empty() || u.password().is_some() => {
                "the token endpoint URL must not carry a query or credentials (they would show in error messages); put the client secret in client_secret_file".to_string()
            }
            Ok(u) if u.scheme() == "https" => return Some(v.get_ref().clone()),
            Ok(u) if u.scheme() == "http" && is_loopback_host(&u) => {
                return Some(v.get_ref().clone())
            }
            Ok(_) => "the token endpoint must be https:// (plain http only to a loopback address): the request carries the refresh token".to_string(),
        };
        self.problems.push(src.at_value(v, key, problem));
        None
    }

    fn probe(
        &mut self,
        src: &Source,
        name: &str,
        p: &RawProbe,
        senders: &[String],
        seeds: &[String],
    ) -> Option<Probe> {
        let k = |f: &str| format!("probes.{name}.{f}");
        let mut ok = true;
        if !senders.contains(p.sender.get_ref()) {
            ok = false;
            self.problems.push(src.at_value(
                &p.sender,
                &k("sender"),
                format!(
                    "unknown sender {:?}; defined senders: {}",
                    p.sender.get_ref(),
                    list(senders)
                ),
            ));
        }
        if p.seeds.get_ref().is_empty() {
            ok = false;
            self.problems.push(src.at_value(
                &p.seeds,
                &k("seeds"),
                "a probe needs at least one seed",
            ));
        }
        for s in p.seeds.get_ref() {
            if !seeds.contains(s.get_ref()) {
                ok = false;
                self.problems.push(src.at_value(
                    s,
                    &k("seeds"),
                    format!(
                        "unknown seed {:?}; defined seeds: {}",
                        s.get_ref(),
                        list(seeds)
                    ),
                ));
            }
        }
        let every = p.every.get_ref().0;
        let timeout = p.timeout.as_ref().map_or(every, |t| t.get_ref().0);
        if every < Duration::from_secs(1) {
            ok = false;
            self.problems
                .push(src.at_value(&p.every, &k("every"), "interval must be at least 1s"));
        }
        if let Some(t) = &p.timeout {
            if t.get_ref().0.is_zero() {
                ok = false;
                self.problems.push(src.at_value(
                    t,
                    &k("timeout"),
                    "timeout must be greater than zero",
                ));
            } else if t.get_ref().0 > every {
                // Allowed (greylisting can take longer than a sensible interval),
                // but then several probes of this kind are in flight at once.
                self.warnings.push(src.at_value(t, &k("timeout"), format!(
                    "timeout {} is longer than the interval {}; several probes will be in flight at once",
                    t.get_ref(),
                    p.every.get_ref()
                )));
            }
        }
        let here = src
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let template_path = here.join(p.template.get_ref());
        let template = match Template::load(&template_path) {
            Ok(t) => Some(Arc::new(t)),
            Err(e) => {
                self.problems
                    .push(src.at_value(&p.template, &k("template"), e.to_string()));
                None
            }
        };
        let code_length = match &p.code_length {
            None => 6,
            Some(n) if (4..=12).contains(n.get_ref()) => usize::from(*n.get_ref()),
            Some(n) => {
                self.problems.push(src.at_value(
                    n,
                    &k("code_length"),
                    "code_length must be 4 to 12 digits",
                ));
                ok = false;
                6
            }
        };
        if let Some(b) = &p.burst {
            if !(1..=20).contains(b.get_ref()) {
                ok = false;
                self.problems
                    .push(src.at_value(b, &k("burst"), "burst must be 1 to 20 sends"));
            }
        }
        let template = template?;
        ok.then(|| Probe {
            template,
            product: p.product.clone().unwrap_or_else(|| "Example".to_string()),
            code_length,
            code_validity: p.code_validity.map_or(Duration::from_secs(600), |d| d.0),
            probe_header: p.probe_header.unwrap_or(false),
            burst: p.burst.as_ref().map_or(1, |b| *b.get_ref()),
            burst_spacing: p.burst_spacing.map_or(Duration::from_secs(10), |d| d.0),
            sender: p.sender.get_ref().clone(),
            seeds: p
                .seeds
                .get_ref()
                .iter()
                .map(|s| s.get_ref().clone())
                .collect(),
            every,
            timeout,
            defined_in: src.path.clone(),
        })
    }
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "(none)".to_string()
    } else {
        names.join(", ")
    }
}
