//! TLS client configuration shared by the IMAP watchers and other clients.
//!
//! With a CA file, exactly those certificates are trusted (a private CA, a
//! test stack); without one, the platform verifier and system roots decide.

use std::path::Path;
use std::sync::Arc;

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
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsSetupError> {
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
