//! The web-config file (`http.web_config_file`): TLS, basic auth and
//! response headers for the HTTP endpoint, in the format of the Prometheus
//! exporter toolkit's `web.yml`, so the file an operator already has for
//! node_exporter works here:
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: mailcanary.crt      # relative to this file's directory
//!   key_file: mailcanary.key
//!   client_auth_type: RequireAndVerifyClientCert
//!   client_ca_file: clients-ca.pem
//!   min_version: TLS12
//! http_server_config:
//!   headers:
//!     Strict-Transport-Security: max-age=31536000
//! basic_auth_users:
//!   prometheus: $2y$10$...         # bcrypt
//! ```
//!
//! Everything is checked at load: files are read, the certificate and key
//! must match, hashes must be bcrypt. Problems name the file, `line:col`
//! and the key. Keys of the toolkit that mailcanary cannot honour with
//! rustls (`cipher_suites`, `curve_preferences`, `client_allowed_sans`, the
//! unverified client-certificate modes, `rate_limit`) are refused rather
//! than silently ignored.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper::header::{HeaderName, HeaderValue};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

use super::Diagnostic;

/// A loaded, checked web-config file.
pub struct WebConfig {
    /// The file it was read from.
    pub path: PathBuf,
    /// `None`: plain HTTP (the file has no certificate).
    pub tls: Option<Arc<ServerConfig>>,
    /// User name → bcrypt hash; empty: no authentication.
    pub users: BTreeMap<String, String>,
    /// Extra response headers (`http_server_config.headers`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl fmt::Debug for WebConfig {
    /// Names only: no key material, no hashes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebConfig")
            .field("path", &self.path)
            .field("tls", &self.tls.is_some())
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// A web config and the problems in it that do not stop the load.
pub struct Loaded {
    pub config: WebConfig,
    pub warnings: Vec<Diagnostic>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeb {
    tls_server_config: Option<RawTls>,
    http_server_config: Option<RawHttpServer>,
    basic_auth_users: Option<BTreeMap<String, Spanned<String>>>,
    /// Present only to refuse it.
    rate_limit: Option<Spanned<IgnoredAny>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<Spanned<PathBuf>>,
    key_file: Option<Spanned<PathBuf>>,
    client_auth_type: Option<Spanned<String>>,
    client_ca_file: Option<Spanned<PathBuf>>,
    min_version: Option<Spanned<String>>,
    max_version: Option<Spanned<String>>,
    prefer_server_cipher_suites: Option<bool>,
    // Present only to refuse them with a helpful message.
    cert: Option<Spanned<IgnoredAny>>,
    key: Option<Spanned<IgnoredAny>>,
    client_ca: Option<Spanned<IgnoredAny>>,
    cipher_suites: Option<Spanned<IgnoredAny>>,
    curve_preferences: Option<Spanned<IgnoredAny>>,
    client_allowed_sans: Option<Spanned<IgnoredAny>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpServer {
    http2: Option<Spanned<bool>>,
    headers: Option<BTreeMap<String, Spanned<String>>>,
}

/// Response headers the toolkit lets a web config set, with the values it
/// accepts (`None`: any value).
const ALLOWED_HEADERS: &[(&str, Option<&[&str]>)] = &[
    ("Strict-Transport-Security", None),
    ("X-Content-Type-Options", Some(&["nosniff"])),
    ("X-Frame-Options", Some(&["deny", "sameorigin"])),
    ("X-XSS-Protection", None),
    ("Content-Security-Policy", None),
];

/// Read and check a web-config file. Relative paths in it resolve against
/// its own directory, as in the exporter toolkit.
pub fn load(path: &Path) -> Result<Loaded, Vec<Diagnostic>> {
    let file = |line: usize, col: usize, key: &str, message: String| Diagnostic {
        path: path.to_path_buf(),
        line,
        col,
        key: key.to_string(),
        message,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![file(1, 1, "", format!("cannot read: {e}"))])?;
    let raw: RawWeb = match serde_saphyr::from_str::<Option<RawWeb>>(&text) {
        Ok(raw) => raw.unwrap_or_default(),
        Err(e) => {
            let plain = e.without_snippet().to_string();
            let (line, col, message) = match e.location() {
                Some(l) if l.line() > 0 => {
                    let suffix = format!(" at line {}, column {}", l.line(), l.column());
                    let message = plain.strip_suffix(&suffix).unwrap_or(&plain).to_string();
                    (l.line() as usize, l.column() as usize, message)
                }
                _ => (1, 1, plain),
            };
            return Err(vec![file(line, col, "", message)]);
        }
    };
    let mut check = Check {
        path,
        base: path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf(),
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    if let Some(r) = &raw.rate_limit {
        check.problem(
            &r.referenced,
            "rate_limit",
            "rate_limit is not supported by mailcanary; remove it",
        );
    }
    let tls = raw
        .tls_server_config
        .as_ref()
        .and_then(|t| check.tls(t))
        .map(Arc::new);
    let users = check.users(raw.basic_auth_users.unwrap_or_default());
    let headers = raw
        .http_server_config
        .map(|h| check.http_server(h))
        .unwrap_or_default();
    if !check.problems.is_empty() {
        check.problems.sort_by_key(|d| (d.line, d.col));
        return Err(check.problems);
    }
    Ok(Loaded {
        config: WebConfig {
            path: path.to_path_buf(),
            tls,
            users,
            headers,
        },
        warnings: check.warnings,
    })
}

struct Check<'a> {
    path: &'a Path,
    base: PathBuf,
    problems: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

impl Check<'_> {
    fn at(&self, at: &Location, key: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            path: self.path.to_path_buf(),
            line: (at.line() as usize).max(1),
            col: (at.column() as usize).max(1),
            key: key.to_string(),
            message: message.into(),
        }
    }

    fn problem(&mut self, at: &Location, key: &str, message: impl Into<String>) {
        let d = self.at(at, key, message);
        self.problems.push(d);
    }

    fn warning(&mut self, at: &Location, key: &str, message: impl Into<String>) {
        let d = self.at(at, key, message);
        self.warnings.push(d);
    }

    fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    fn tls(&mut self, t: &RawTls) -> Option<ServerConfig> {
        const K: &str = "tls_server_config";
        let k = |f: &str| format!("{K}.{f}");
        for (v, field, instead) in [
            (&t.cert, "cert", "cert_file"),
            (&t.key, "key", "key_file"),
            (&t.client_ca, "client_ca", "client_ca_file"),
        ] {
            if let Some(v) = v {
                self.problem(
                    &v.referenced,
                    &k(field),
                    format!("inline PEM is not accepted; use {instead} (e.g. with systemd LoadCredential=)"),
                );
            }
        }
        for (v, field, why) in [
            (
                &t.cipher_suites,
                "cipher_suites",
                "rustls offers only its own modern suites",
            ),
            (
                &t.curve_preferences,
                "curve_preferences",
                "rustls chooses among its own key-exchange groups",
            ),
            (
                &t.client_allowed_sans,
                "client_allowed_sans",
                "restrict clients by the CA in client_ca_file instead",
            ),
        ] {
            if let Some(v) = v {
                self.problem(
                    &v.referenced,
                    &k(field),
                    format!("{field} is not supported by mailcanary ({why}); remove it"),
                );
            }
        }

        let versions = self.versions(t);
        let verifier = self.client_verifier(t);
        let (cert, key) = match (&t.cert_file, &t.key_file) {
            (None, None) => {
                // Client certificates need TLS; a refused client_auth_type
                // has been reported already.
                let asks_for_client_certs = t
                    .client_auth_type
                    .as_ref()
                    .filter(|a| a.value != "NoClientCert");
                if let (Some(a), Some(_)) = (asks_for_client_certs, &verifier) {
                    self.problem(
                        &a.referenced,
                        &k("cert_file"),
                        "client_auth_type needs cert_file and key_file",
                    );
                }
                // No certificate: plain HTTP, as in the toolkit.
                return None;
            }
            (Some(c), None) => {
                self.problem(&c.referenced, &k("key_file"), "cert_file needs key_file");
                return None;
            }
            (None, Some(kf)) => {
                self.problem(&kf.referenced, &k("cert_file"), "key_file needs cert_file");
                return None;
            }
            (Some(c), Some(kf)) => (c, kf),
        };
        let certs = self.certs(cert, &k("cert_file"), "certificate");
        let key_path = self.resolve(&key.value);
        let key_der = match PrivateKeyDer::from_pem_file(&key_path) {
            Ok(der) => Some(der),
            Err(e) => {
                self.problem(
                    &key.referenced,
                    &k("key_file"),
                    format!(
                        "cannot load a private key from {}: {}",
                        key_path.display(),
                        pem_error(&e, "private key")
                    ),
                );
                None
            }
        };
        let (certs, key_der, versions, verifier) = (certs?, key_der?, versions?, verifier?);
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let built = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&versions)
            .map(|b| b.with_client_cert_verifier(verifier))
            .and_then(|b| b.with_single_cert(certs, key_der));
        match built {
            Ok(mut config) => {
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                config.ignore_client_order = t.prefer_server_cipher_suites.unwrap_or(false);
                Some(config)
            }
            Err(e) => {
                let why = match e {
                    rustls::Error::InconsistentKeys(_) => {
                        "the private key does not belong to the certificate".to_string()
                    }
                    other => other.to_string(),
                };
                self.problem(
                    &key.referenced,
                    &k("key_file"),
                    format!(
                        "{} with {}: {why}",
                        key_path.display(),
                        self.resolve(&cert.value).display(),
                    ),
                );
                None
            }
        }
    }

    /// Every certificate in a PEM file; at least one.
    fn certs(
        &mut self,
        file: &Spanned<PathBuf>,
        key: &str,
        what: &str,
    ) -> Option<Vec<CertificateDer<'static>>> {
        let path = self.resolve(&file.value);
        let certs: Result<Vec<_>, _> =
            CertificateDer::pem_file_iter(&path).and_then(|it| it.collect());
        match certs {
            Ok(c) if !c.is_empty() => Some(c),
            Ok(_) => {
                self.problem(
                    &file.referenced,
                    key,
                    format!("no PEM {what} in {}", path.display()),
                );
                None
            }
            Err(e) => {
                self.problem(
                    &file.referenced,
                    key,
                    format!(
                        "cannot load {what}s from {}: {}",
                        path.display(),
                        pem_error(&e, what)
                    ),
                );
                None
            }
        }
    }

    /// `min_version` / `max_version` → the rustls protocol versions.
    fn versions(&mut self, t: &RawTls) -> Option<Vec<&'static rustls::SupportedProtocolVersion>> {
        let parse = |this: &mut Self, v: &Spanned<String>, field: &str| -> Option<u8> {
            match v.value.as_str() {
                "TLS10" => Some(10),
                "TLS11" => Some(11),
                "TLS12" => Some(12),
                "TLS13" => Some(13),
                other => {
                    this.problem(
                        &v.referenced,
                        &format!("tls_server_config.{field}"),
                        format!("unknown TLS version {other:?}; one of TLS10, TLS11, TLS12, TLS13"),
                    );
                    None
                }
            }
        };
        let min = match &t.min_version {
            None => Some(12),
            Some(v) => {
                let m = parse(self, v, "min_version");
                if matches!(m, Some(10 | 11)) {
                    self.warning(
                        &v.referenced,
                        "tls_server_config.min_version",
                        "rustls speaks TLS 1.2 and 1.3 only; the minimum is TLS12",
                    );
                }
                m
            }
        };
        let max = match &t.max_version {
            None => Some(13),
            Some(v) => {
                let m = parse(self, v, "max_version");
                if matches!(m, Some(10 | 11)) {
                    self.problem(
                        &v.referenced,
                        "tls_server_config.max_version",
                        "rustls speaks TLS 1.2 and 1.3 only; max_version must be TLS12 or TLS13",
                    );
                    return None;
                }
                m
            }
        };
        let (min, max) = (min?.max(12), max?);
        if min > max {
            let at = t.min_version.as_ref().map(|v| v.referenced)?;
            self.problem(
                &at,
                "tls_server_config.min_version",
                "min_version is above max_version",
            );
            return None;
        }
        Some(
            [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
                .into_iter()
                .filter(|(v, _)| (min..=max).contains(v))
                .map(|(_, p)| p)
                .collect(),
        )
    }

    /// `client_auth_type` and `client_ca_file` → the rustls client verifier.
    fn client_verifier(
        &mut self,
        t: &RawTls,
    ) -> Option<Arc<dyn rustls::server::danger::ClientCertVerifier>> {
        const K: &str = "tls_server_config";
        let kind = t
            .client_auth_type
            .as_ref()
            .map_or("NoClientCert", |a| a.value.as_str());
        let verify = match kind {
            "NoClientCert" => None,
            "VerifyClientCertIfGiven" => Some(false),
            "RequireAndVerifyClientCert" => Some(true),
            "RequestClientCert" | "RequireAnyClientCert" => {
                let at = t.client_auth_type.as_ref()?.referenced;
                self.problem(&at, &format!("{K}.client_auth_type"), format!(
                    "{kind} accepts certificates nobody verified and is not supported; use VerifyClientCertIfGiven or RequireAndVerifyClientCert with client_ca_file"
                ));
                return None;
            }
            other => {
                let at = t.client_auth_type.as_ref()?.referenced;
                self.problem(&at, &format!("{K}.client_auth_type"), format!(
                    "unknown client_auth_type {other:?}; one of NoClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"
                ));
                return None;
            }
        };
        match (verify, &t.client_ca_file) {
            (None, None) => Some(WebPkiClientVerifier::no_client_auth()),
            (None, Some(ca)) => {
                self.problem(
                    &ca.referenced,
                    &format!("{K}.client_ca_file"),
                    "client_ca_file is set but client_auth_type is NoClientCert; set client_auth_type to VerifyClientCertIfGiven or RequireAndVerifyClientCert",
                );
                None
            }
            (Some(_), None) => {
                let at = t.client_auth_type.as_ref()?.referenced;
                self.problem(
                    &at,
                    &format!("{K}.client_ca_file"),
                    format!("client_auth_type {kind} needs client_ca_file"),
                );
                None
            }
            (Some(required), Some(ca)) => {
                let certs = self.certs(ca, &format!("{K}.client_ca_file"), "CA certificate")?;
                let mut roots = RootCertStore::empty();
                for c in certs {
                    if let Err(e) = roots.add(c) {
                        self.problem(
                            &ca.referenced,
                            &format!("{K}.client_ca_file"),
                            format!("{}: {e}", self.resolve(&ca.value).display()),
                        );
                        return None;
                    }
                }
                let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
                let builder =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let builder = if required {
                    builder
                } else {
                    builder.allow_unauthenticated()
                };
                match builder.build() {
                    Ok(v) => Some(v),
                    Err(e) => {
                        self.problem(
                            &ca.referenced,
                            &format!("{K}.client_ca_file"),
                            format!("{}: {e}", self.resolve(&ca.value).display()),
                        );
                        None
                    }
                }
            }
        }
    }

    fn users(&mut self, raw: BTreeMap<String, Spanned<String>>) -> BTreeMap<String, String> {
        let mut users = BTreeMap::new();
        for (name, hash) in raw {
            let key = format!("basic_auth_users.{name}");
            if name.is_empty() || name.contains(':') {
                self.problem(
                    &hash.referenced,
                    &key,
                    "a user name must be non-empty and without ':' (Basic auth splits at the first ':')",
                );
                continue;
            }
            if hash.value.parse::<bcrypt::HashParts>().is_err() {
                // Never echo the value: it may be a password pasted by mistake.
                self.problem(
                    &hash.referenced,
                    &key,
                    "not a bcrypt hash ($2a$, $2b$ or $2y$…); make one with: htpasswd -nBC 10 \"\" | tr -d ':\\n'",
                );
                continue;
            }
            users.insert(name, hash.value);
        }
        users
    }

    fn http_server(&mut self, h: RawHttpServer) -> Vec<(HeaderName, HeaderValue)> {
        const K: &str = "http_server_config";
        if let Some(v) = h.http2.as_ref().filter(|v| v.value) {
            self.warning(
                &v.referenced,
                &format!("{K}.http2"),
                "mailcanary serves HTTP/1.1 only; http2 has no effect",
            );
        }
        let mut out = Vec::new();
        for (name, value) in h.headers.unwrap_or_default() {
            let key = format!("{K}.headers.{name}");
            let Some((_, allowed)) = ALLOWED_HEADERS
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(&name))
            else {
                let names: Vec<&str> = ALLOWED_HEADERS.iter().map(|(n, _)| *n).collect();
                self.problem(
                    &value.referenced,
                    &key,
                    format!(
                        "header {name:?} cannot be configured; allowed: {}",
                        names.join(", ")
                    ),
                );
                continue;
            };
            if let Some(allowed) = allowed {
                if !allowed.iter().any(|a| a.eq_ignore_ascii_case(&value.value)) {
                    self.problem(
                        &value.referenced,
                        &key,
                        format!("{name} must be one of: {}", allowed.join(", ")),
                    );
                    continue;
                }
            }
            match (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value.value.as_str()),
            ) {
                (Ok(n), Ok(v)) => out.push((n, v)),
                _ => self.problem(&value.referenced, &key, "not a valid HTTP header value"),
            }
        }
        out
    }
}

/// PEM errors without the noise of nested debug output.
fn pem_error(e: &rustls::pki_types::pem::Error, what: &str) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::Io(io) => io.to_string(),
        Error::NoItemsFound => format!("no PEM {what} in the file"),
        other => format!("not PEM: {other:?}"),
    }
}
