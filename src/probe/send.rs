//! Send a composed probe over SMTP with lettre: one transaction per seed.
//!
//! TLS that is configured is required (lettre's `Tls::Required` /
//! `Tls::Wrapper`); there is no opportunistic mode that could silently fall
//! back to plain text. Failures come back typed with a bounded [`SendReason`];
//! the server's text stays in the detail (logs, store), never in a label.

use std::time::{Duration, SystemTime};

use std::pin::Pin;
use std::task::{Context, Poll};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use lettre::transport::smtp::Error as SmtpError;
use lettre::Address;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::config::{SmtpSender, TlsMode};
use crate::contain::{contained, Panicked, Task};
use crate::text::{self, Kept};

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
    /// The other side broke the protocol: an oversized or endless reply,
    /// garbage where a reply belongs, or a close in mid-dialogue.
    Protocol,
}

impl SendReason {
    pub const ALL: [SendReason; 12] = [
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
        SendReason::Protocol,
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
            SendReason::Protocol => "protocol",
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
            SendReason::Connect
            | SendReason::Tls
            | SendReason::Timeout
            | SendReason::Local
            | SendReason::Protocol => true,
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

/// Most bytes read from the relay in one transaction (all its replies, and
/// the TLS handshake where it is implicit): replies are short, so more is an
/// endless reply.
const MAX_READ: usize = 1024 * 1024;
/// Most bytes read without a line end. lettre cuts a reply line at 1000
/// bytes only once the line has ended; this bounds a line that never does.
const MAX_LINE: usize = 64 * 1024;
/// Most continuation lines (`250-`) in one reply: an EHLO answer has a
/// dozen. lettre re-parses a reply at each of its lines, so an endless reply
/// costs time squared in its length; this keeps that small.
const MAX_REPLY_LINES: usize = 256;
/// How long a QUIT after an accepted message may take; its answer changes nothing.
const QUIT_WAIT: Duration = Duration::from_secs(2);
/// Transactions in progress at once per sender. A round of a probe with
/// 1,000 seeds starts 1,000 sends together; all at once they overran the
/// relay's listen queue and 15-40 % timed out (docs/scale.md). Queued sends
/// wait for a turn before their timeout starts; Postfix's own per-client
/// limit (`smtpd_client_connection_count_limit`) is 50 by default.
pub const SMTP_CONCURRENCY: usize = 16;

/// The sends of a probe that have not reached the relay yet: composing,
/// signing or waiting for a turn. The scheduler skips a probe's round while
/// a whole round's worth of them waits, so a relay slower than the schedule
/// does not collect an ever longer queue of signed messages in memory (at
/// 250 probes a second against a relay holding 175, 10,000 sends waited and
/// RSS grew to 300 MiB before this; docs/benchmarks.md, benchmark 3).
#[derive(Clone, Default)]
pub struct Backlog(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Backlog {
    /// Sends counted and not yet at the relay.
    pub fn waiting(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Count one send until its turn comes (or it ends without one).
    pub fn enter(&self) -> Waiting {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Waiting(Some(self.0.clone()))
    }
}

/// One send counted in a [`Backlog`]; uncounted at its turn or when dropped.
/// The default counts nothing.
#[derive(Default)]
pub struct Waiting(Option<std::sync::Arc<std::sync::atomic::AtomicUsize>>);

impl Waiting {
    /// The send has its turn: it no longer waits.
    pub fn turn(&mut self) {
        if let Some(n) = self.0.take() {
            n.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.turn();
    }
}

/// A configured SMTP sender.
#[derive(Clone)]
pub struct SmtpClient {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    hello: ClientId,
    /// Bounds a whole transaction, connect to the reply after DATA.
    timeout: Duration,
    retries_4xx: u32,
    retry_backoff: Duration,
    /// Turns to talk to the relay ([`SMTP_CONCURRENCY`]), shared by clones.
    turns: std::sync::Arc<tokio::sync::Semaphore>,
}

/// How the relay connection is secured.
#[derive(Clone)]
enum Security {
    None,
    /// STARTTLS, required (RFC 3207): no fallback to plain text.
    Starttls(TlsParameters),
    /// TLS from the first byte (RFC 8314).
    Implicit(std::sync::Arc<rustls::ClientConfig>),
}

impl SmtpClient {
    pub fn new(cfg: &SmtpSender) -> Result<SmtpClient, SetupError> {
        let security = match cfg.tls {
            TlsMode::None => Security::None,
            TlsMode::Implicit => Security::Implicit(
                crate::tls::client_config(cfg.ca_file.as_deref()).map_err(|e| SetupError::Tls {
                    host: cfg.host.clone(),
                    message: e.to_string(),
                })?,
            ),
            TlsMode::Starttls => {
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
                Security::Starttls(params.build_rustls().map_err(|e| SetupError::Tls {
                    host: cfg.host.clone(),
                    message: e.to_string(),
                })?)
            }
        };
        let credentials = match (&cfg.username, &cfg.password) {
            (Some(user), Some(pass)) => {
                // What AUTH PLAIN and LOGIN put on the wire (RFC 4616, base64
                // by RFC 4954), so a relay quoting it back is redacted.
                text::register(pass.expose(), Kept::Always);
                text::register(&format!("\0{user}\0{}", pass.expose()), Kept::Always);
                Some(Credentials::new(user.clone(), pass.expose().to_string()))
            }
            _ => None,
        };
        Ok(SmtpClient {
            host: cfg.host.clone(),
            port: cfg.port,
            security,
            credentials,
            hello: ClientId::default(),
            timeout: cfg.timeout,
            retries_4xx: cfg.retries_4xx,
            retry_backoff: cfg.retry_backoff,
            turns: std::sync::Arc::new(tokio::sync::Semaphore::new(SMTP_CONCURRENCY)),
        })
    }

    /// Submit `message` from `from` to the single recipient `to`, retrying
    /// temporary (4xx) refusals per the sender's policy. Each attempt,
    /// connect to the final reply, is bounded by the sender's `timeout`.
    pub async fn send(
        &self,
        from: &Address,
        to: &Address,
        message: &[u8],
    ) -> Result<Sent, SendFailure> {
        self.send_counted(from, to, message, Waiting::default())
            .await
    }

    /// [`SmtpClient::send`], uncounting `waiting` once the first attempt has its turn.
    pub async fn send_counted(
        &self,
        from: &Address,
        to: &Address,
        message: &[u8],
        mut waiting: Waiting,
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
            // The timeout bounds the transaction, not the wait for a turn.
            // (The semaphore is never closed.)
            let turn = self.turns.acquire().await.ok();
            waiting.turn();
            let attempt_bounded =
                tokio::time::timeout(self.timeout, self.transaction(&envelope, message));
            let outcome = match contained(Task::Sender, &self.host, attempt_bounded).await {
                Ok(Ok(r)) => r,
                Ok(Err(_)) => Err(TxError::Timeout(self.timeout)),
                Err(p) => Err(TxError::Panicked(p)),
            };
            match outcome {
                Ok((resp, mut conn)) => {
                    let reply = text::server(&format!(
                        "{} {}",
                        resp.code(),
                        resp.message().collect::<Vec<_>>().join(" ")
                    ));
                    let submitted = SystemTime::now();
                    let _ = tokio::time::timeout(QUIT_WAIT, conn.quit()).await;
                    return Ok(Sent {
                        submitted,
                        queue_id: queue_id(&reply),
                        reply,
                    });
                }
                Err(e) => {
                    drop(turn);
                    let reason = e.reason();
                    if reason == SendReason::Smtp4xx && attempt <= self.retries_4xx {
                        tracing::info!(attempt, error = %e, "temporary SMTP refusal; retrying");
                        tokio::time::sleep(self.retry_backoff).await;
                        continue;
                    }
                    return Err(SendFailure {
                        reason,
                        detail: e.to_string(),
                        attempts: attempt,
                        retry_after: None,
                    });
                }
            }
        }
    }

    /// One SMTP transaction up to the reply after DATA (RFC 5321 §3.3),
    /// over a connection that bounds what the relay may send.
    async fn transaction(
        &self,
        envelope: &Envelope,
        message: &[u8],
    ) -> Result<(Response, AsyncSmtpConnection), TxError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| TxError::Connect(text::error_chain(&e)))?;
        let peer = tcp
            .peer_addr()
            .map_err(|e| TxError::Connect(text::error_chain(&e)))?;
        let stream: Box<dyn AsyncTokioStream> = match &self.security {
            Security::Implicit(config) => {
                let name = rustls::pki_types::ServerName::try_from(self.host.clone())
                    .map_err(|e| TxError::Tls(e.to_string()))?;
                let tls = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| TxError::Tls(text::error_chain(&e)))?;
                Box::new(Capped::new(tls, peer))
            }
            _ => Box::new(Capped::new(tcp, peer)),
        };
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello).await?;
        if let Security::Starttls(params) = &self.security {
            conn.starttls(params.clone(), &self.hello).await?;
        }
        if let Some(creds) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], creds)
                .await?;
        }
        let resp = conn.send(envelope, message).await?;
        Ok((resp, conn))
    }
}

/// Why one SMTP attempt failed, before it becomes a [`SendReason`].
#[derive(Debug, thiserror::Error)]
enum TxError {
    /// No TCP connection.
    #[error("connect: {0}")]
    Connect(String),
    /// The implicit-TLS handshake failed.
    #[error("tls: {0}")]
    Tls(String),
    /// The whole transaction outlived the sender's timeout.
    #[error("no final reply within {0:?}")]
    Timeout(Duration),
    /// The attempt panicked; contained ([`crate::contain`]).
    #[error("{0}")]
    Panicked(Panicked),
    /// lettre's error, with the relay's words.
    #[error("{}", text::error_chain(.0))]
    Smtp(#[from] SmtpError),
}

impl TxError {
    fn reason(&self) -> SendReason {
        match self {
            TxError::Connect(_) => SendReason::Connect,
            TxError::Tls(_) => SendReason::Tls,
            TxError::Timeout(_) => SendReason::Timeout,
            TxError::Panicked(_) => SendReason::Local,
            TxError::Smtp(e) => classify(e),
        }
    }
}

/// Map lettre's error to a bounded reason.
fn classify(e: &SmtpError) -> SendReason {
    if find_in_chain::<Overrun>(e).is_some() {
        return SendReason::Protocol;
    }
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
    let text = text::error_chain(e).to_ascii_lowercase();
    if text.contains("starttls") || text.contains("tls") {
        SendReason::Tls
    } else if text.contains("authentication") || text.contains("mechanism") {
        SendReason::Auth
    } else if text.contains("timed out") {
        SendReason::Timeout
    } else if e.is_response() {
        // Garbage, an oversized reply, or the relay closing mid-dialogue
        // ("incomplete response"): the relay broke the protocol.
        SendReason::Protocol
    } else {
        SendReason::Connect
    }
}

/// An error of type `T` anywhere in the chain, looking inside `io::Error`s.
fn find_in_chain<'a, T: std::error::Error + 'static>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<T>() {
            return Some(t);
        }
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            if let Some(t) = find_in_chain::<T>(inner) {
                return Some(t);
            }
        }
        cur = err.source();
    }
    None
}

/// The relay sent more than a transaction's worth.
#[derive(Debug, thiserror::Error)]
enum Overrun {
    /// All its replies together passed [`MAX_READ`].
    #[error("the relay sent more than {MAX_READ} bytes in one transaction")]
    Total,
    /// A line ran past [`MAX_LINE`] without ending.
    #[error("the relay sent a line longer than {MAX_LINE} bytes")]
    Line,
    /// A reply ran past [`MAX_REPLY_LINES`] lines without its last.
    #[error("the relay sent a reply of more than {MAX_REPLY_LINES} lines")]
    Lines,
}

/// A relay connection that fails a read once the relay passed [`MAX_READ`]
/// or [`MAX_LINE`]: lettre buffers a reply line until it ends, so without
/// this an endless line would grow without limit until the timeout.
#[derive(Debug)]
struct Capped<S> {
    inner: S,
    peer: std::net::SocketAddr,
    read: usize,
    line: usize,
    /// Continuation lines of the reply being read.
    continued: usize,
    /// Reads since the task last yielded.
    reads: u32,
}

impl<S> Capped<S> {
    fn new(inner: S, peer: std::net::SocketAddr) -> Self {
        Capped {
            inner,
            peer,
            read: 0,
            line: 0,
            continued: 0,
            reads: 0,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Capped<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        // Yield now and then: lettre's parsing of buffered lines never
        // waits, so without this a fast relay could keep the transaction's
        // timeout from ever firing.
        this.reads += 1;
        if this.reads.is_multiple_of(4) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let new = &buf.filled()[before..];
        this.read += new.len();
        let mut over = None;
        for &b in new {
            // RFC 5321 §4.2.1: "250-" continues a reply, "250 " ends it.
            if this.line == 3 {
                match b {
                    b'-' => this.continued += 1,
                    b' ' => this.continued = 0,
                    _ => {}
                }
            }
            this.line = if b == b'\n' { 0 } else { this.line + 1 };
            if this.line > MAX_LINE {
                over = Some(Overrun::Line);
            } else if this.continued > MAX_REPLY_LINES {
                over = Some(Overrun::Lines);
            }
        }
        if this.read > MAX_READ {
            over = Some(Overrun::Total);
        }
        match over {
            Some(o) => Poll::Ready(Err(std::io::Error::new(std::io::ErrorKind::InvalidData, o))),
            None => Poll::Ready(Ok(())),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Capped<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S> AsyncTokioStream for Capped<S>
where
    S: AsyncRead + AsyncWrite + Send + Sync + Unpin + std::fmt::Debug,
{
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        Ok(self.peer)
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
    fn a_backlog_counts_sends_until_their_turn() {
        let backlog = Backlog::default();
        let mut first = backlog.enter();
        let second = backlog.enter();
        assert_eq!(backlog.waiting(), 2);
        first.turn();
        first.turn(); // once only
        assert_eq!(backlog.waiting(), 1);
        drop(second); // a send that ended before its turn
        assert_eq!(backlog.waiting(), 0);
        drop(first);
        assert_eq!(backlog.waiting(), 0);
        Waiting::default().turn();
    }

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
}
