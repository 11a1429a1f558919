//! DKIM signing by mailcanary itself (mail-auth), for senders whose relay
//! does not sign: rsa-sha256, relaxed/relaxed. The key is parsed once, when
//! the configuration is loaded, not on every send.

use std::fmt;
use std::sync::Arc;

use mail_auth::common::crypto::{RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{DkimSigner, Done};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;

/// Headers covered by the signature: what a receiver shows and what a
/// gateway rewriting them would break.
const SIGNED_HEADERS: [&str; 7] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "MIME-Version",
];

/// A ready signer: key, domain and selector. Its `Debug` shows no key.
#[derive(Clone)]
pub struct DkimKey {
    pub selector: String,
    pub domain: String,
    signer: Arc<DkimSigner<RsaKey<Sha256>, Done>>,
}

impl fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkimKey")
            .field("selector", &self.selector)
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

impl DkimKey {
    /// Parse a PEM private key (PKCS#8 or PKCS#1 RSA). The error never quotes the key.
    pub fn new(selector: &str, domain: &str, pem: &str) -> Result<DkimKey, String> {
        let der = PrivateKeyDer::from_pem_slice(pem.as_bytes())
            .map_err(|_| "not a PEM private key (PKCS#8 or PKCS#1 RSA)".to_string())?;
        // mail-auth 0.13 refuses RSA keys under 2048 bits for signing.
        let key =
            RsaKey::<Sha256>::from_key_der(der).map_err(|e| format!("unusable RSA key: {e}"))?;
        let signer = DkimSigner::from_key(key)
            .domain(domain)
            .selector(selector)
            .headers(SIGNED_HEADERS);
        Ok(DkimKey {
            selector: selector.to_string(),
            domain: domain.to_string(),
            signer: Arc::new(signer),
        })
    }

    /// [`DkimKey::sign`] on the blocking pool, at most one signature per
    /// core at once. An RSA-2048 signature is 1.4 ms of CPU (as `openssl
    /// speed rsa2048` on the 2-core bench machine): a round of 200 seeds
    /// signed on the runtime's workers would hold both of them for 140 ms,
    /// and every watcher's arrival would wait behind it.
    pub async fn sign_off_runtime(&self, message: Vec<u8>) -> Result<Vec<u8>, String> {
        static TURNS: std::sync::LazyLock<tokio::sync::Semaphore> =
            std::sync::LazyLock::new(|| {
                tokio::sync::Semaphore::new(
                    std::thread::available_parallelism().map_or(1, |n| n.get()),
                )
            });
        let _turn = TURNS
            .acquire()
            .await
            .map_err(|_| "DKIM signing stopped".to_string())?;
        let key = self.clone();
        tokio::task::spawn_blocking(move || key.sign(&message))
            .await
            .map_err(|e| format!("DKIM signing failed: {e}"))?
    }

    /// Prepend a DKIM-Signature header to `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        let signature = self
            .signer
            .sign(message)
            .map_err(|e| format!("DKIM signing failed: {e}"))?;
        let mut out = signature.to_header().into_bytes();
        out.extend_from_slice(message);
        Ok(out)
    }
}
