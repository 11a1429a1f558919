//! Send a composed probe over SMTP with lettre: one transaction per seed.
//!
//! TLS that is configured is required (lettre's `Tls::Required` /
//! `Tls::Wrapper`); there is no opportunistic mode that could silently fall
//! back to plain text. Failures come back typed with a bounded [`SendReason`];
//! the server's text stays in the detail (logs, store), never in a label.

use std::time::{Duration, SystemTime};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::Error as SmtpError;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::{SmtpSender, TlsMode};

/// Why a send failed; the values are the `reason` label of
/// `mailcanary_probe_send_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendReason {
    /// No TCP connection (refused, unreachable, DNS of the relay).
    Connect,
    /// The TLS handshake or STARTTLS failed, or STARTTLS was not offered.
    Tls,
    /// The relay refused the credentials or offered no usable mechanism.
    Auth,
    /// A temporary refusal (4xx) that outlived the retries.
    Smtp4xx,
    /// A permanent refusal (5xx), e.g. an unknown recipient.
    Smtp5xx,
    /// The relay did not answer in time.
    Timeout,
    /// mailcanary could not build or sign the message (never the relay's fault).
    Local,
    /// The app answered 429 Too Many Requests.
    RateLimited,
    /// The app (or its ESP) reported an exhausted sending quota.
    Quota,
    /// The app refused the request (4xx, or a success status whose JSON says no).
    Http4xx,
    /// The app failed (5xx).
    Http5xx,
}

impl SendReason {
    pub const ALL: [SendReason; 11] = [
        SendReason::Connect,
        SendReason::Tls,
        SendReason::Auth,
        SendReason::Smtp4xx,
        SendReason::Smtp5xx,
        SendReason::Timeout,
        SendReason::Local,
        SendReason::RateLimited,
        SendReason::Quota,
        SendReason::Http4xx,
        SendReason::Http5xx,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SendReason::Connect => "connect",
            SendReason::Tls => "tls",
            SendReason::Auth => "auth",
            SendReason::Smtp4xx => "smtp_4xx",
            SendReason::Smtp5xx => "smtp_5xx",
            SendReason::Timeout => "timeout",
            SendReason::Local => "local",
            SendReason::RateLimited => "rate_limited",
            SendReason::Quota => "quota",
            SendReason::Http4xx => "http_4xx",
            SendReason::Http5xx => "http_5xx",
        }
    }

    pub fn parse(s: &str) -> Option<SendReason> {
        SendReason::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether a sender of this kind (an app's endpoint when `http`, else
    /// SMTP) can fail for this reason; those are the label values created
    /// at 0 for its probes.
    pub fn possible(self, http: bool) -> bool {
        match self {
            SendReason::Auth | SendReason::Smtp4xx | SendReason::Smtp5xx => !http,
            SendReason::RateLimited
            | SendReason::Quota
            | SendReason::Http4xx
            | SendReason::Http5xx => http,
            SendReason::Connect | SendReason::Tls | SendReason::Timeout | SendReason::Local => true,
        }
    }
}

/// A message the relay accepted.
#[derive(Debug, Clone)]
pub struct Sent {
    /// When the relay accepted the message (end of DATA).
    pub submitted: SystemTime,
    /// The relay's reply, one line, bounded in length.
    pub reply: String,
    /// The relay's queue id where its reply names one ("queued as X").
    pub queue_id: Option<String>,
}

/// A send that failed, with the server's or client's words for the log.
#[derive(Debug, Clone)]
pub struct SendFailure {
    pub reason: SendReason,
    pub detail: String,
    /// Attempts made, retries included.
    pub attempts: u32,
    /// How long the other side asked us to wait (HTTP 429 Retry-After).
    pub retry_after: Option<Duration>,
}

/// Why a sender could not be set up (bad CA file and the like).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot read CA file {path}: {source}")]
    CaFile {
        path: String,
        source: std::io::Error,
    },
    #[error("TLS setup for {host}: {message}")]
    Tls { host: String, message: String },
}

/// A configured SMTP sender.
#[derive(Clone)]
pub struct SmtpClient {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    retries_4xx: u32,
    retry_backoff: Duration,
}

impl SmtpClient {
    pub fn new(cfg: &SmtpSender) -> Result<SmtpClient, SetupError> {
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(cfg.host.as_str())
            .port(cfg.port)
            .timeout(Some(cfg.timeout));
        if cfg.tls != TlsMode::None {
            let mut params = TlsParameters::builder(cfg.host.clone());
            if let Some(ca) = &cfg.ca_file {
                let pem = std::fs::read(ca).map_err(|source| SetupError::CaFile {
                    path: ca.display().to_string(),
                    source,
                })?;
                let cert = Certificate::from_pem(&pem).map_err(|e| SetupError::Tls {
                    host: cfg.host.clone(),
                    message: e.to_string(),
                })?;
                params = params.add_root_certificate(cert);
            }
            let params = params.build_rustls().map_err(|e| SetupError::Tls {
                host: cfg.host.clone(),
                message: e.to_string(),
            })?;
            b = b.tls(match cfg.tls {
                TlsMode::Implicit => Tls::Wrapper(params),
                _ => Tls::Required(params),
            });
        } else {
            b = b.tls(Tls::None);
        }
        if let (Some(user), Some(pass)) = (&cfg.username, &cfg.password) {
            b = b.credentials(Credentials::new(user.clone(), pass.expose().to_string()));
        }
        Ok(SmtpClient {
            transport: b.build(),
            retries_4xx: cfg.retries_4xx,
            retry_backoff: cfg.retry_backoff,
        })
    }

    /// Submit `message` from `from` to the single recipient `to`, retrying
    /// temporary (4xx) refusals per the sender's policy.
    pub async fn send(
        &self,
        from: &Address,
        to: &Address,
        message: &[u8],
    ) -> Result<Sent, SendFailure> {
        let envelope =
            Envelope::new(Some(from.clone()), vec![to.clone()]).map_err(|e| SendFailure {
                reason: SendReason::Smtp5xx,
                detail: e.to_string(),
                attempts: 0,
                retry_after: None,
            })?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.transport.send_raw(&envelope, message).await {
                Ok(resp) => {
                    let reply = one_line(&format!(
                        "{} {}",
                        resp.code(),
                        resp.message().collect::<Vec<_>>().join(" ")
                    ));
                    return Ok(Sent {
                        submitted: SystemTime::now(),
                        queue_id: queue_id(&reply),
                        reply,
                    });
                }
                Err(e) => {
                    let reason = classify(&e);
                    if reason == SendReason::Smtp4xx && attempt <= self.retries_4xx {
                        tracing::info!(attempt, error = %one_line(&e.to_string()), "temporary SMTP refusal; retrying");
                        tokio::time::sleep(self.retry_backoff).await;
                        continue;
                    }
                    return Err(SendFailure {
                        reason,
                        detail: one_line(&error_chain(&e)),
                        attempts: attempt,
                        retry_after: None,
                    });
                }
            }
        }
    }
}

/// Map lettre's error to a bounded reason.
fn classify(e: &SmtpError) -> SendReason {
    if e.is_timeout() {
        return SendReason::Timeout;
    }
    if e.is_tls() || tls_in_chain(e) {
        return SendReason::Tls;
    }
    if let Some(code) = e.status() {
        // RFC 4954 §6: 530 auth required, 534 mechanism too weak, 535 bad
        // credentials, 538 encryption required for the mechanism.
        let c = code.to_string();
        if matches!(c.as_str(), "530" | "534" | "535" | "538") {
            return SendReason::Auth;
        }
        return if e.is_permanent() {
            SendReason::Smtp5xx
        } else {
            SendReason::Smtp4xx
        };
    }
    let text = error_chain(e).to_ascii_lowercase();
    if text.contains("starttls") || text.contains("tls") {
        SendReason::Tls
    } else if text.contains("authentication") || text.contains("mechanism") {
        SendReason::Auth
    } else if text.contains("timed out") {
        SendReason::Timeout
    } else {
        SendReason::Connect
    }
}

/// A rustls error anywhere in the chain (lettre reports a failed implicit-TLS
/// handshake as a connection error wrapping it).
pub(crate) fn tls_in_chain(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if is_rustls(err) {
            return true;
        }
        cur = err.source();
    }
    false
}

/// A rustls error, bare or inside `io::Error`s, however deep: reqwest's
/// connector hands an untrusted certificate on as an `io::Error` inside an
/// `io::Error`, and `io::Error::source()` skips the error it wraps (so such a
/// failure was classed `connect` before this looked inside).
fn is_rustls(err: &(dyn std::error::Error + 'static)) -> bool {
    if err.is::<rustls::Error>() {
        return true;
    }
    err.downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::get_ref)
        .is_some_and(|inner| is_rustls(inner))
}

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// One line, at most 300 characters: server text is kept for the log, bounded.
pub(crate) fn one_line(s: &str) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    flat.chars().take(300).collect()
}

/// "250 2.0.0 Ok: queued as 4Xk2p1" → "4Xk2p1".
fn queue_id(reply: &str) -> Option<String> {
    let lower = reply.to_ascii_lowercase();
    let at = lower.find("queued as ")? + "queued as ".len();
    let id: String = reply[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .collect();
    (!id.is_empty()).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rustls_error_is_found_inside_nested_io_errors() {
        use std::io::{Error, ErrorKind};
        let cert = || rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let nested = Error::other(Error::new(ErrorKind::InvalidData, cert()));
        assert!(tls_in_chain(&nested));
        assert!(tls_in_chain(&Error::new(ErrorKind::InvalidData, cert())));
        assert!(tls_in_chain(&cert()));
        let refused = Error::other(Error::from(ErrorKind::ConnectionRefused));
        assert!(!tls_in_chain(&refused));
    }

    #[test]
    fn queue_ids_are_found_in_postfix_replies() {
        assert_eq!(
            queue_id("250 2.0.0 Ok: queued as 4Xk2p1Bz3"),
            Some("4Xk2p1Bz3".into())
        );
        assert_eq!(queue_id("250 Ok"), None);
        assert_eq!(queue_id("250 queued as "), None);
    }

    #[test]
    fn reasons_round_trip() {
        for r in SendReason::ALL {
            assert_eq!(SendReason::parse(r.as_str()), Some(r));
        }
    }

    #[test]
    fn one_line_bounds_server_text() {
        assert_eq!(one_line("a\r\nb"), "a  b");
        assert_eq!(one_line(&"x".repeat(1000)).len(), 300);
    }
}
