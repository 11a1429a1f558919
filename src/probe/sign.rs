//! DKIM signing by mailcanary itself (mail-auth), for senders whose relay
//! does not sign: rsa-sha256, relaxed/relaxed.

use mail_auth::common::crypto::{RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;

use crate::config::DkimSigning;

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

/// Parse a PEM private key (PKCS#8 or PKCS#1 RSA). The error never quotes the key.
pub fn signing_key(pem: &str) -> Result<RsaKey<Sha256>, String> {
    let der = PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|_| "not a PEM private key (PKCS#8 or PKCS#1 RSA)".to_string())?;
    // mail-auth 0.13 refuses RSA keys under 2048 bits for signing.
    RsaKey::<Sha256>::from_key_der(der).map_err(|e| format!("unusable RSA key: {e}"))
}

/// Prepend a DKIM-Signature header to `message`.
pub fn sign(message: &[u8], cfg: &DkimSigning) -> Result<Vec<u8>, String> {
    let key = signing_key(cfg.key_pem.expose())?;
    let signature = DkimSigner::from_key(key)
        .domain(cfg.domain.as_str())
        .selector(cfg.selector.as_str())
        .headers(SIGNED_HEADERS)
        .sign(message)
        .map_err(|e| format!("DKIM signing failed: {e}"))?;
    let mut out = signature.to_header().into_bytes();
    out.extend_from_slice(message);
    Ok(out)
}
