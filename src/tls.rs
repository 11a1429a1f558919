//! TLS client configuration shared by the IMAP watchers and other clients.
//!
//! With a CA file, exactly those certificates are trusted (a private CA, a
//! test stack); without one, the platform verifier and system roots decide.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::SystemTime;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

/// Why a TLS client configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The CA file is unreadable or holds no PEM certificate.
    #[error("CA file {path}: {message}")]
    CaFile { path: String, message: String },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Why an HTTP client (an app's send-code endpoint, an OAuth token
/// endpoint) could not be built.
#[derive(Debug, thiserror::Error)]
pub enum HttpClientError {
    #[error("cannot read CA file {path}: {source}")]
    ReadCa {
        path: String,
        source: std::io::Error,
    },
    #[error("CA file {path}: {message}")]
    BadCa { path: String, message: String },
    #[error("{0}")]
    Build(String),
}

/// The HTTP client mailcanary's outgoing requests use: `timeout` per
/// request, no redirects (a redirect would carry tokens elsewhere), its own
/// User-Agent, and trusting `ca_file` only when one is given.
pub fn http_client(
    timeout: std::time::Duration,
    ca_file: Option<&Path>,
) -> Result<reqwest::Client, HttpClientError> {
    install_provider();
    let mut b = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("mailcanary/", env!("CARGO_PKG_VERSION")));
    if let Some(ca) = ca_file {
        let path = || ca.display().to_string();
        let pem = std::fs::read(ca).map_err(|source| HttpClientError::ReadCa {
            path: path(),
            source,
        })?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| HttpClientError::BadCa {
                path: path(),
                message: e.to_string(),
            })?;
        b = b.tls_certs_only(certs);
    }
    b.build().map_err(|e| HttpClientError::Build(e.to_string()))
}

/// Install aws-lc-rs as the process-wide rustls provider. rustls panics on
/// `ClientConfig::builder()` when it cannot tell which provider to use, so
/// this runs before any TLS client is built; later calls are no-ops.
pub fn install_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// A client configuration trusting `ca_file` only, or the platform's roots.
///
/// Connections with the same trust share one configuration, built once:
/// the root store (the system's holds about 150 certificates), the
/// verifier and the session cache (resumption makes a reconnect cheaper for
/// the server too). A configuration lives while some connection holds it;
/// a CA file changed on disk (another modification time or size) gets a new
/// one, and so do the system's roots once no connection holds the old.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let trust = Trust {
        path: ca_file.map(Path::to_path_buf),
        stamp: ca_file.and_then(|p| {
            let m = std::fs::metadata(p).ok()?;
            Some((m.modified().ok()?, m.len()))
        }),
    };
    let mut configs = CONFIGS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(config) = configs
        .iter()
        .find(|(t, _)| *t == trust)
        .and_then(|(_, c)| c.upgrade())
    {
        return Ok(config);
    }
    let config = build_client_config(ca_file)?;
    configs.retain(|(t, c)| c.strong_count() > 0 && *t != trust);
    configs.push((trust, Arc::downgrade(&config)));
    Ok(config)
}

/// What a client configuration trusts: a CA file as it is on disk, or the
/// platform (`path` none).
#[derive(Debug, PartialEq, Eq)]
struct Trust {
    path: Option<PathBuf>,
    stamp: Option<(SystemTime, u64)>,
}

/// The client configurations in use ([`client_config`]).
static CONFIGS: Mutex<Vec<(Trust, Weak<ClientConfig>)>> = Mutex::new(Vec::new());

fn build_client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsSetupError> {
    install_provider();
    let config = match ca_file {
        Some(path) => {
            let err = |message: String| TlsSetupError::CaFile {
                path: path.display().to_string(),
                message,
            };
            let mut roots = RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path).map_err(|e| err(e.to_string()))?;
            for cert in certs {
                roots
                    .add(cert.map_err(|e| err(e.to_string()))?)
                    .map_err(|e| err(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(err("no certificate in the file".into()));
            }
            ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth()
        }
        None => {
            use rustls_platform_verifier::BuilderVerifierExt;
            ClientConfig::builder()
                .with_platform_verifier()?
                .with_no_client_auth()
        }
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_with_the_same_trust_share_one_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let pem = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/config/good/web_tls/server.crt"
        ))
        .unwrap();
        std::fs::write(&ca, &pem).unwrap();
        let a = client_config(Some(&ca)).unwrap();
        let b = client_config(Some(&ca)).unwrap();
        assert!(Arc::ptr_eq(&a, &b), "one configuration for one CA file");
        // The file changed on disk: connections from now on trust the new one.
        let mut twice = pem.clone();
        twice.extend_from_slice(&pem);
        std::fs::write(&ca, &twice).unwrap();
        let c = client_config(Some(&ca)).unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        // Once no connection holds a configuration, it is built anew.
        drop((a, b, c));
        let d = client_config(Some(&ca)).unwrap();
        assert_eq!(Arc::strong_count(&d), 1, "held by this caller alone");
        // A CA file without a certificate is still refused.
        std::fs::write(&ca, "no pem here\n").unwrap();
        assert!(client_config(Some(&ca)).is_err());
    }
}
