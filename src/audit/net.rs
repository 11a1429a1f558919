//! Network probes of the audit, beside DNS: the STARTTLS probe of an MX
//! target (RFC 3207) and the HTTPS fetch of an MTA-STS policy (RFC 8461
//! §3.3). Both return typed outcomes ([`SmtpTls`], [`PolicyFetch`]) that the
//! pure judges in [`super::mx`] and [`super::mta_sts`] read.
//!
//! TLS is rustls with the aws-lc-rs provider passed explicitly (never the
//! process default, so a second provider elsewhere in the tree cannot make
//! `ClientConfig::builder()` panic). Certificates are checked against the
//! system roots or a PEM bundle (`--ca-file`). The STARTTLS probe completes the
//! handshake whatever the certificate, then reports what verification said,
//! so an invalid certificate is told apart from a failed handshake.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::crypto::{aws_lc_rs, CryptoProvider};
use tokio_rustls::rustls::{
    self, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_rustls::TlsConnector;

use super::lookup::DnsLookup;
use super::mta_sts::{self, PolicyFetch, MAX_POLICY_BYTES};
use super::mx::SmtpTls;
use super::DnsAnswer;
use crate::text::excerpt;

/// An SMTP reply line longer than this is treated as a broken server
/// (RFC 5321 §4.5.3.1.5 allows 512 octets).
const MAX_REPLY_LINE: u64 = 2048;
/// More reply lines than this in one reply is a broken server.
const MAX_REPLY_LINES: usize = 100;

/// Why the TLS client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NetSetupError {
    /// The `--ca-file` bundle could not be read or holds no certificate.
    #[error("cannot use CA file {path}: {why}")]
    CaFile { path: String, why: String },
    /// The system trust store is empty or unreadable.
    #[error("no trusted CA certificates found in the system store ({0}); install ca-certificates or pass --ca-file")]
    NoSystemRoots(String),
    /// rustls rejected the configuration.
    #[error("cannot set up TLS: {0}")]
    Tls(String),
}

/// Trusted roots and the crypto provider, shared by every probe.
#[derive(Clone, Debug)]
pub struct TlsClient {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

impl TlsClient {
    /// Trusts the system's CA certificates.
    pub fn system() -> Result<Self, NetSetupError> {
        let loaded = rustls_native_certs::load_native_certs();
        let mut roots = RootCertStore::empty();
        let (added, _) = roots.add_parsable_certificates(loaded.certs);
        if added == 0 {
            let why = loaded
                .errors
                .first()
                .map_or("none found".to_owned(), ToString::to_string);
            return Err(NetSetupError::NoSystemRoots(why));
        }
        Ok(Self::with_roots(roots))
    }

    /// Trusts only the certificates in a PEM file.
    pub fn from_pem_file(path: &Path) -> Result<Self, NetSetupError> {
        let err = |why: String| NetSetupError::CaFile {
            path: path.display().to_string(),
            why,
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| err(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| err(e.to_string()))?;
        let mut roots = RootCertStore::empty();
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(err("no usable certificate in it".into()));
        }
        Ok(Self::with_roots(roots))
    }

    fn with_roots(roots: RootCertStore) -> Self {
        TlsClient {
            roots: Arc::new(roots),
            provider: Arc::new(aws_lc_rs::default_provider()),
        }
    }

    fn webpki(&self) -> Result<Arc<WebPkiServerVerifier>, String> {
        WebPkiServerVerifier::builder_with_provider(self.roots.clone(), self.provider.clone())
            .build()
            .map_err(|e| e.to_string())
    }

    fn config(&self, verifier: Arc<dyn ServerCertVerifier>) -> Result<ClientConfig, String> {
        Ok(ClientConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth())
    }
}

/// Completes every handshake and remembers what the real verifier said.
#[derive(Debug)]
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    verdict: Mutex<Option<Result<(), String>>>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map(|_| ())
            .map_err(|e| describe_cert_error(&e));
        if let Ok(mut slot) = self.verdict.lock() {
            *slot = Some(verdict);
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Says what a certificate verification error means for an operator.
pub fn describe_cert_error(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => "issued by an untrusted CA (self-signed, private CA, or intermediate certificates missing from the chain)".into(),
            C::Expired | C::ExpiredContext { .. } => "expired".into(),
            C::NotValidYet | C::NotValidYetContext { .. } => "not valid yet (check the server's clock)".into(),
            C::NotValidForName | C::NotValidForNameContext { .. } => "issued for other host names".into(),
            C::Revoked => "revoked".into(),
            C::BadSignature => "bad signature".into(),
            C::BadEncoding => "not a parsable certificate".into(),
            C::Other(o) if o.to_string().contains("CaUsedAsEndEntity") => {
                "a CA certificate is used as the server certificate (self-signed?)".into()
            }
            other => format!("{other:?}"),
        },
        other => other.to_string(),
    }
}

/// A TLS handshake error from tokio-rustls, with certificate problems spelt out.
fn tls_io_error(host: &str, e: &std::io::Error) -> String {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(r @ rustls::Error::InvalidCertificate(_)) => {
            format!("the certificate of {host} is {}", describe_cert_error(r))
        }
        Some(r) => format!("TLS: {r}"),
        None => format!("TLS: {e}"),
    }
}

/// One SMTP reply line: `code`, whether it is the last line, the text.
pub fn parse_reply_line(line: &str) -> Option<(u16, bool, &str)> {
    let line = line.trim_end_matches(['\r', '\n']);
    let code = line.get(..3)?;
    if !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let code: u16 = code.parse().ok()?;
    match line.as_bytes().get(3) {
        None => Some((code, true, "")),
        Some(b' ') => Some((code, true, line.get(4..).unwrap_or(""))),
        Some(b'-') => Some((code, false, line.get(4..).unwrap_or(""))),
        Some(_) => None,
    }
}

/// True when an EHLO reply offers STARTTLS (RFC 3207 §4).
pub fn offers_starttls(lines: &[String]) -> bool {
    lines.iter().skip(1).any(|l| {
        l.split_whitespace()
            .next()
            .is_some_and(|kw| kw.eq_ignore_ascii_case("STARTTLS"))
    })
}

/// Reads one (possibly multi-line) reply: the code and the text of each line.
async fn read_reply<R: AsyncBufReadExt + Unpin>(
    reader: &mut R,
) -> Result<(u16, Vec<String>), String> {
    let mut lines = Vec::new();
    loop {
        let mut buf = Vec::new();
        let n = (&mut *reader)
            .take(MAX_REPLY_LINE)
            .read_until(b'\n', &mut buf)
            .await
            .map_err(|e| format!("read: {}", e.kind()))?;
        if n == 0 {
            return Err("the server closed the connection".into());
        }
        let text = String::from_utf8_lossy(&buf);
        let Some((code, last, rest)) = parse_reply_line(&text) else {
            return Err(format!(
                "not an SMTP reply: `{}`",
                excerpt(text.trim_end(), 60)
            ));
        };
        lines.push(rest.to_owned());
        if last {
            return Ok((code, lines));
        }
        if lines.len() >= MAX_REPLY_LINES {
            return Err("reply with too many lines".into());
        }
    }
}

async fn within<T>(
    limit: Duration,
    what: &str,
    f: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, f).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "{what}: timed out after {}",
            humantime::format_duration(limit)
        )),
    }
}

async fn send<W: AsyncWrite + Unpin>(w: &mut W, line: &str) -> Result<(), String> {
    w.write_all(line.as_bytes())
        .await
        .map_err(|e| format!("write: {}", e.kind()))?;
    w.flush().await.map_err(|e| format!("write: {}", e.kind()))
}

/// Connects to `addr:port`, says EHLO as `helo`, asks for STARTTLS and does
/// the TLS handshake with `host` as the server name. Every step is bounded by
/// `timeout`.
pub async fn starttls_probe(
    tls: &TlsClient,
    host: &str,
    addr: IpAddr,
    port: u16,
    helo: &str,
    timeout: Duration,
) -> SmtpTls {
    let stream = match within(timeout, "connect", async {
        TcpStream::connect(SocketAddr::new(addr, port))
            .await
            .map_err(|e| format!("connect to {}: {}", SocketAddr::new(addr, port), e.kind()))
    })
    .await
    {
        Ok(s) => s,
        Err(why) => return SmtpTls::Unreachable(why),
    };
    let mut reader = BufReader::new(stream);
    let dialogue = async {
        let (code, _) = within(timeout, "greeting", read_reply(&mut reader)).await?;
        if code != 220 {
            return Err(format!("greeting {code}"));
        }
        send(reader.get_mut(), &format!("EHLO {helo}\r\n")).await?;
        let (code, lines) = within(timeout, "EHLO", read_reply(&mut reader)).await?;
        if code != 250 {
            return Err(format!("EHLO answered {code}"));
        }
        Ok(lines)
    };
    let lines = match dialogue.await {
        Ok(l) => l,
        Err(why) => return SmtpTls::Unreachable(why),
    };
    if !offers_starttls(&lines) {
        let _ = send(reader.get_mut(), "QUIT\r\n").await;
        return SmtpTls::NoStarttls;
    }
    let started = async {
        send(reader.get_mut(), "STARTTLS\r\n").await?;
        let (code, _) = within(timeout, "STARTTLS", read_reply(&mut reader)).await?;
        if code != 220 {
            return Err(format!("STARTTLS answered {code}"));
        }
        Ok(())
    };
    if let Err(why) = started.await {
        return SmtpTls::HandshakeFailed(why);
    }
    // Bytes the server sent after its 220 are dropped with the buffer
    // (RFC 3207 §6: nothing from before TLS may be used after it).
    let stream = reader.into_inner();
    let inner = match tls.webpki() {
        Ok(v) => v,
        Err(why) => return SmtpTls::HandshakeFailed(why),
    };
    let recorder = Arc::new(Recording {
        inner,
        verdict: Mutex::new(None),
    });
    let config = match tls.config(recorder.clone()) {
        Ok(c) => c,
        Err(why) => return SmtpTls::HandshakeFailed(why),
    };
    let Ok(name) = ServerName::try_from(host.to_owned()) else {
        return SmtpTls::HandshakeFailed(format!(
            "`{}` is not a valid TLS server name",
            excerpt(host, 60)
        ));
    };
    let connector = TlsConnector::from(Arc::new(config));
    let mut tls_stream = match tokio::time::timeout(timeout, connector.connect(name, stream)).await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return SmtpTls::HandshakeFailed(e.to_string()),
        Err(_) => return SmtpTls::HandshakeFailed("TLS handshake timed out".into()),
    };
    let not_after = tls_stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|leaf| super::x509::not_after(leaf).ok());
    let _ = tokio::time::timeout(timeout, send(&mut tls_stream, "QUIT\r\n")).await;
    let _ = tokio::time::timeout(timeout, tls_stream.shutdown()).await;
    let verify = match recorder.verdict.lock() {
        Ok(mut slot) => slot
            .take()
            .unwrap_or_else(|| Err("the server sent no certificate".into())),
        Err(_) => Err("certificate verification state lost".into()),
    };
    SmtpTls::Tls { verify, not_after }
}

/// Fetches `https://mta-sts.<domain>/.well-known/mta-sts.txt` from `port`,
/// resolving the host through `lookup`. Redirects are not followed and the
/// body is limited to 64 KiB (RFC 8461 §3.3).
pub async fn fetch_policy(
    tls: &TlsClient,
    lookup: &DnsLookup,
    domain: &str,
    port: u16,
    timeout: Duration,
) -> PolicyFetch {
    let host = mta_sts::policy_host(domain);
    let addrs = match lookup.addrs(&host).await {
        DnsAnswer::Found(a) => a,
        DnsAnswer::NotFound => {
            return PolicyFetch::Failed(format!("{host} has no A or AAAA record"))
        }
        DnsAnswer::Unknown(why) => return PolicyFetch::DnsError(why),
    };
    let mut last = String::from("no address");
    for addr in addrs.iter().take(2) {
        match within(
            timeout.saturating_mul(3),
            "policy fetch",
            fetch_from(tls, &host, *addr, port, timeout),
        )
        .await
        {
            Ok((body, content_type)) => return PolicyFetch::Fetched { body, content_type },
            Err(why) => last = why,
        }
    }
    PolicyFetch::Failed(last)
}

async fn fetch_from(
    tls: &TlsClient,
    host: &str,
    addr: IpAddr,
    port: u16,
    timeout: Duration,
) -> Result<(Vec<u8>, Option<String>), String> {
    let target = SocketAddr::new(addr, port);
    let stream = within(timeout, "connect", async {
        TcpStream::connect(target)
            .await
            .map_err(|e| format!("connect to {target}: {}", e.kind()))
    })
    .await?;
    let config = tls.config(tls.webpki()?).map(|mut c| {
        c.alpn_protocols = vec![b"http/1.1".to_vec()];
        c
    })?;
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| format!("`{host}` is not a valid TLS server name"))?;
    let stream = within(timeout, "TLS handshake", async {
        TlsConnector::from(Arc::new(config))
            .connect(name, stream)
            .await
            .map_err(|e| tls_io_error(host, &e))
    })
    .await?;
    get(stream, host).await
}

async fn get<S>(stream: S, host: &str) -> Result<(Vec<u8>, Option<String>), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    let driver = tokio::spawn(conn);
    let request = hyper::Request::get(mta_sts::POLICY_PATH)
        .header(hyper::header::HOST, host)
        .header(
            hyper::header::USER_AGENT,
            concat!("mailcanary/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("HTTP request: {e}"))?;
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(format!(
                "HTTP {} (redirects are not followed, RFC 8461 §3.3)",
                status.as_u16()
            ));
        }
        if status != hyper::StatusCode::OK {
            return Err(format!("HTTP {}", status.as_u16()));
        }
        let content_type = response
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_owned());
        let body = Limited::new(response.into_body(), MAX_POLICY_BYTES)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    format!("the policy is larger than {MAX_POLICY_BYTES} bytes")
                } else {
                    format!("HTTP body: {e}")
                }
            })?
            .to_bytes();
        Ok((body.to_vec(), content_type))
    }
    .await;
    driver.abort();
    result
}

/// The host name this machine gives in EHLO: the kernel's host name, or
/// `localhost`.
pub fn default_helo() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| super::domain::is_host_name(s))
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_lines() {
        assert_eq!(
            parse_reply_line("250-mx.example Hello\r\n"),
            Some((250, false, "mx.example Hello"))
        );
        assert_eq!(
            parse_reply_line("250 STARTTLS\r\n"),
            Some((250, true, "STARTTLS"))
        );
        assert_eq!(parse_reply_line("220\r\n"), Some((220, true, "")));
        assert_eq!(parse_reply_line("22x oops"), None);
        assert_eq!(parse_reply_line("250_x"), None);
        assert_eq!(parse_reply_line("2"), None);
        assert_eq!(parse_reply_line("ü50 x"), None);
    }

    #[test]
    fn starttls_keyword() {
        let l = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(offers_starttls(&l(&[
            "mx.example",
            "PIPELINING",
            "starttls",
            "8BITMIME"
        ])));
        // The first line is the greeting text, not an extension.
        assert!(!offers_starttls(&l(&["STARTTLS", "PIPELINING"])));
        assert!(!offers_starttls(&l(&["mx.example", "STARTTLSX"])));
    }

    #[tokio::test]
    async fn reply_reader_limits() {
        let mut ok = BufReader::new(&b"250-a\r\n250-STARTTLS\r\n250 SIZE 10\r\n"[..]);
        assert_eq!(
            read_reply(&mut ok).await,
            Ok((250, vec!["a".into(), "STARTTLS".into(), "SIZE 10".into()]))
        );
        let long = vec![b'2'; 5000];
        assert!(read_reply(&mut BufReader::new(&long[..])).await.is_err());
        let many = "250-x\r\n".repeat(200);
        assert!(read_reply(&mut BufReader::new(many.as_bytes()))
            .await
            .is_err());
        assert!(read_reply(&mut BufReader::new(&b""[..])).await.is_err());
    }
}
