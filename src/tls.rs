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
