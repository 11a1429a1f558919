//! DKIM key records (RFC 6376 §3.6.1, RFC 8463 for ed25519): parse the
//! record at `<selector>._domainkey.<domain>`, decode the key and measure it.
//! No I/O.
//!
//! # Why not `mail_auth::common::verify::DomainKey`
//!
//! mail-auth 0.13.3's `DomainKey` holds the key as an opaque
//! `Box<dyn VerifyingKey>` and its flags as a `u64` whose bit constants are
//! crate-private. `DomainKey::parse` accepts a `p=` that is not a key at all
//! (`p=MIGfMA0G` parses, reporting 0 bits), accepts `v=` after other tags
//! (RFC 6376 §3.6.1: it MUST come first), and reports no size for ed25519
//! keys (`public_key_bits()` is `usize::MAX`). Its RSA size counts whole
//! bytes, so a 2047-bit key reads as 2048. (See
//! `mail_auth_loses_what_the_linter_needs` below.) So the record is parsed
//! here with [`tag_list`] and the key with a small DER walk;
//! the tests check that the sizes agree with mail-auth's for byte-aligned keys.

use std::fmt;

use super::domain::normalize;
use super::tag_list::{self, NameCase, TagError};
use super::{lossy, want, CheckResult, DnsAnswer, DnsFacts, Finding, Query, Severity};
use crate::text::excerpt;

/// RSA keys under this many bits MUST NOT be accepted (RFC 8301 §3.2).
pub const MIN_RSA_BITS: u32 = 1024;
/// Signers SHOULD use RSA keys of at least this many bits (RFC 8301 §3.2).
pub const RECOMMENDED_RSA_BITS: u32 = 2048;

/// `k=` (RFC 6376 §3.6.1, RFC 8463 §4.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyType {
    Rsa,
    Ed25519,
    /// A value receivers do not know; they cannot use the key.
    Other(String),
}

impl KeyType {
    pub fn as_str(&self) -> &str {
        match self {
            KeyType::Rsa => "rsa",
            KeyType::Ed25519 => "ed25519",
            KeyType::Other(s) => s,
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `p=` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// No `p=` tag: not a usable key record.
    Absent,
    /// `p=` is empty: the key is revoked (RFC 6376 §3.6.1).
    Revoked,
    Rsa {
        /// Length of the modulus in bits.
        bits: u32,
    },
    /// 32-byte ed25519 key (RFC 8463 §4.2).
    Ed25519,
    /// `k=` names a type receivers do not support.
    Unsupported(String),
    /// `p=` does not decode to a key of type `k=`.
    Invalid(KeyError),
}

impl PublicKey {
    /// Key size in bits for `mailcanary_dkim_key_bits`: RSA modulus length,
    /// 256 for ed25519, `None` when there is no usable key.
    pub fn bits(&self) -> Option<u32> {
        match self {
            PublicKey::Rsa { bits } => Some(*bits),
            PublicKey::Ed25519 => Some(256),
            _ => None,
        }
    }
}

/// Why `p=` is not a usable key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// `p=` is not base64 (often a key cut short when pasted into DNS).
    #[error("p= is not valid base64: {0}")]
    Base64(#[from] Base64Error),
    /// The decoded RSA key is not DER `SubjectPublicKeyInfo` or `RSAPublicKey`.
    #[error("the RSA key is not valid DER ({0})")]
    Der(&'static str),
    /// A `SubjectPublicKeyInfo` for another algorithm.
    #[error("k=rsa but the key's algorithm is OID {0}")]
    NotRsa(String),
    /// An ed25519 key of the wrong size (RFC 8463 wants the bare 32 bytes).
    #[error("an ed25519 key is 32 bytes, this one is {0}")]
    Ed25519Length(usize),
}

/// Why a base64 string does not decode (RFC 4648 §4).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Base64Error {
    /// A character outside `A-Z a-z 0-9 + /` and trailing `=`.
    #[error("invalid character {ch:?} at position {position}")]
    InvalidCharacter { position: usize, ch: char },
    /// The length (whitespace removed) is not a multiple of 4.
    #[error("length {0} is not a multiple of 4 (truncated?)")]
    Length(usize),
    /// `=` before the end, or more than two.
    #[error("misplaced = padding")]
    Padding,
}

/// Why the record itself is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DkimError {
    /// The tag-list itself is broken (RFC 6376 §3.2).
    #[error("{0}")]
    Tag(#[from] TagError),
    /// RFC 6376 §3.6.1: v= "MUST be the first tag in the record".
    #[error("v= must be the first tag")]
    VersionNotFirst,
    /// RFC 6376 §3.6.1: records with a v= other than DKIM1 MUST be discarded.
    #[error("v={0} is not DKIM1, so receivers discard the record")]
    BadVersion(String),
}

/// A parsed key record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimKeyRecord {
    /// The record as received (lossy UTF-8).
    pub text: String,
    pub key_type: KeyType,
    pub key: PublicKey,
    /// `h=`: acceptable hash algorithms (absent = all).
    pub hash_algorithms: Option<Vec<String>>,
    /// `s=`: service types (absent = `*`).
    pub services: Option<Vec<String>>,
    /// `t=` flags (`y` testing, `s` strict).
    pub flags: Vec<String>,
    /// Tags not defined by RFC 6376 (ignored by receivers).
    pub unknown_tags: Vec<String>,
    pub errors: Vec<DkimError>,
}

impl DkimKeyRecord {
    /// True when `t=y`: receivers may treat signatures as if unsigned.
    pub fn testing(&self) -> bool {
        self.flags.iter().any(|f| f.eq_ignore_ascii_case("y"))
    }
}

/// `<selector>._domainkey.<domain>` (RFC 6376 §3.6.2.1).
pub fn record_name(selector: &str, domain: &str) -> String {
    format!("{}._domainkey.{}", normalize(selector), normalize(domain))
}

/// True when a TXT record can be a key record: it starts with `v=DKIM1` or
/// has a `p=` tag (the version is optional, RFC 6376 §3.6.1).
pub fn is_key_record(record: &[u8]) -> bool {
    let (tags, _) = tag_list::parse(record, NameCase::Sensitive);
    tags.first()
        .is_some_and(|t| t.name == "v" && t.value == "DKIM1")
        || tags.iter().any(|t| t.name == "p")
}

fn colon_list(value: &str) -> Vec<String> {
    value
        .split(':')
        .map(|v| tag_list::strip_fws(v).to_ascii_lowercase())
        .filter(|v| !v.is_empty())
        .collect()
}

/// Parses a key record (one TXT record, strings joined):
///
/// ```text
/// key-v-tag = %x76 [FWS] "=" [FWS] %x44.4B.49.4D.31
/// key-h-tag = %x68 [FWS] "=" [FWS] key-h-tag-alg 0*( [FWS] ":" [FWS] key-h-tag-alg )
/// key-k-tag = %x6b [FWS] "=" [FWS] key-k-tag-type        ; "rsa" / "ed25519" / x-key-type
/// key-n-tag = %x6e [FWS] "=" [FWS] qp-section
/// key-p-tag = %x70 [FWS] "=" [ [FWS] base64string ]       ; empty = revoked
/// key-s-tag = %x73 [FWS] "=" [FWS] key-s-tag-type 0*( [FWS] ":" [FWS] key-s-tag-type )
/// key-t-tag = %x74 [FWS] "=" [FWS] key-t-tag-flag 0*( [FWS] ":" [FWS] key-t-tag-flag )
/// ```
pub fn parse(record: &[u8]) -> DkimKeyRecord {
    let (tags, tag_errors) = tag_list::parse(record, NameCase::Sensitive);
    let mut r = DkimKeyRecord {
        text: lossy(record),
        key_type: KeyType::Rsa,
        key: PublicKey::Absent,
        hash_algorithms: None,
        services: None,
        flags: Vec::new(),
        unknown_tags: Vec::new(),
        errors: tag_errors.into_iter().map(DkimError::from).collect(),
    };
    let mut p_value = None;
    for (i, tag) in tags.iter().enumerate() {
        let value = tag.value.as_str();
        match tag.name.as_str() {
            "v" => {
                if i != 0 {
                    r.errors.push(DkimError::VersionNotFirst);
                }
                if value != "DKIM1" {
                    r.errors.push(DkimError::BadVersion(excerpt(value, 20)));
                }
            }
            "k" => {
                r.key_type = match value.to_ascii_lowercase().as_str() {
                    "rsa" => KeyType::Rsa,
                    "ed25519" => KeyType::Ed25519,
                    _ => KeyType::Other(excerpt(value, 20)),
                }
            }
            "p" => p_value = Some(tag_list::strip_fws(value)),
            "h" => r.hash_algorithms = Some(colon_list(value)),
            "s" => r.services = Some(colon_list(value)),
            "t" => r.flags = colon_list(value),
            "n" => {}
            _ => r.unknown_tags.push(excerpt(&tag.name, 20)),
        }
    }
    r.key = match p_value {
        None => PublicKey::Absent,
        Some(p) if p.is_empty() => PublicKey::Revoked,
        Some(p) => match &r.key_type {
            KeyType::Other(k) => PublicKey::Unsupported(k.clone()),
            kind => match decode_key(kind, &p) {
                Ok(key) => key,
                Err(e) => PublicKey::Invalid(e),
            },
        },
    };
    r
}

fn decode_key(kind: &KeyType, p: &str) -> Result<PublicKey, KeyError> {
    let der = decode_base64(p)?;
    match kind {
        KeyType::Ed25519 if der.len() == 32 => Ok(PublicKey::Ed25519),
        KeyType::Ed25519 => Err(KeyError::Ed25519Length(der.len())),
        _ => Ok(PublicKey::Rsa {
            bits: rsa_modulus_bits(&der)?,
        }),
    }
}

/// Decodes standard base64 with `=` padding (RFC 4648 §4), ignoring ASCII
/// whitespace (DKIM allows folding white space inside `p=`).
pub fn decode_base64(s: &str) -> Result<Vec<u8>, Base64Error> {
    fn value(c: u8) -> Option<u8> {
        match c {
            b'A'..=b'Z' => Some(c - b'A'),
            b'a'..=b'z' => Some(c - b'a' + 26),
            b'0'..=b'9' => Some(c - b'0' + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let clean: Vec<(usize, u8)> = s
        .bytes()
        .enumerate()
        .filter(|(_, b)| !b.is_ascii_whitespace())
        .collect();
    if !clean.len().is_multiple_of(4) {
        if let Some(&(position, b)) = clean
            .iter()
            .find(|(_, b)| *b != b'=' && value(*b).is_none())
        {
            return Err(Base64Error::InvalidCharacter {
                position,
                ch: char::from(b),
            });
        }
        return Err(Base64Error::Length(clean.len()));
    }
    let mut out = Vec::with_capacity(clean.len() / 4 * 3);
    let chunks = clean.len() / 4;
    for (n, chunk) in clean.chunks_exact(4).enumerate() {
        let last = n + 1 == chunks;
        let mut vals = [0u8; 4];
        let mut pad = 0usize;
        for (i, &(position, b)) in chunk.iter().enumerate() {
            if b == b'=' {
                // Padding only in the last two places of the last quantum.
                if !last || i < 2 {
                    return Err(Base64Error::Padding);
                }
                pad += 1;
            } else if pad > 0 {
                return Err(Base64Error::Padding);
            } else {
                let v = value(b).ok_or(Base64Error::InvalidCharacter {
                    position,
                    ch: char::from(b),
                })?;
                if let Some(slot) = vals.get_mut(i) {
                    *slot = v;
                }
            }
        }
        let [a, b, c, d] = vals;
        out.push((a << 2) | (b >> 4));
        if pad < 2 {
            out.push((b << 4) | (c >> 2));
        }
        if pad < 1 {
            out.push((c << 6) | d);
        }
    }
    Ok(out)
}

// ------------------------------------------------------------------ DER ---

const DER_INTEGER: u8 = 0x02;
const DER_BIT_STRING: u8 = 0x03;
const DER_OID: u8 = 0x06;
const DER_SEQUENCE: u8 = 0x30;
/// 1.2.840.113549.1.1.1 rsaEncryption (RFC 8017 Appendix A.1).
const RSA_ENCRYPTION_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// Reads one DER tag-length-value: (tag, content, rest). Definite lengths of up
/// to 4 length octets only.
fn tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), KeyError> {
    let truncated = KeyError::Der("truncated");
    let (&tag, rest) = input.split_first().ok_or(truncated.clone())?;
    let (&first, rest) = rest.split_first().ok_or(truncated.clone())?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err(KeyError::Der("unsupported length encoding"));
        }
        let (len_bytes, rest) = rest.split_at_checked(n).ok_or(truncated.clone())?;
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, rest)
    };
    let (content, rest) = rest.split_at_checked(len).ok_or(truncated)?;
    Ok((tag, content, rest))
}

fn expect<'a>(
    input: &'a [u8],
    tag: u8,
    what: &'static str,
) -> Result<(&'a [u8], &'a [u8]), KeyError> {
    let (t, content, rest) = tlv(input)?;
    if t == tag {
        Ok((content, rest))
    } else {
        Err(KeyError::Der(what))
    }
}

/// Bits of a positive DER INTEGER (leading zero octets and bits not counted).
fn integer_bits(content: &[u8]) -> Result<u32, KeyError> {
    if content.first().is_some_and(|b| b & 0x80 != 0) {
        return Err(KeyError::Der("negative modulus"));
    }
    let start = content
        .iter()
        .position(|b| *b != 0)
        .ok_or(KeyError::Der("zero modulus"))?;
    let significant = content.get(start..).unwrap_or_default();
    let first = significant.first().copied().unwrap_or(0);
    let bits = (significant.len() - 1)
        .saturating_mul(8)
        .saturating_add(8 - first.leading_zeros() as usize);
    u32::try_from(bits).map_err(|_| KeyError::Der("modulus too large"))
}

/// `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`
fn rsa_public_key_bits(der: &[u8]) -> Result<u32, KeyError> {
    let (seq, trailing) = expect(der, DER_SEQUENCE, "expected a SEQUENCE")?;
    if !trailing.is_empty() {
        return Err(KeyError::Der("data after the key"));
    }
    let (modulus, rest) = expect(seq, DER_INTEGER, "expected the modulus INTEGER")?;
    let (exponent, rest) = expect(rest, DER_INTEGER, "expected the exponent INTEGER")?;
    if !rest.is_empty() {
        return Err(KeyError::Der("data after the exponent"));
    }
    if exponent.iter().all(|b| *b == 0) {
        return Err(KeyError::Der("zero exponent"));
    }
    integer_bits(modulus)
}

/// Length in bits of the RSA modulus in `der`, which is either a
/// `SubjectPublicKeyInfo` (RFC 5280 §4.1, what `openssl rsa -pubout` writes
/// and RFC 6376 §3.6.1 expects) or a bare `RSAPublicKey` (RFC 8017 A.1.1,
/// which some signers publish). Never panics.
pub fn rsa_modulus_bits(der: &[u8]) -> Result<u32, KeyError> {
    let (seq, trailing) = expect(der, DER_SEQUENCE, "expected a SEQUENCE")?;
    let (first_tag, _, _) = tlv(seq)?;
    if first_tag == DER_INTEGER {
        return rsa_public_key_bits(der);
    }
    if !trailing.is_empty() {
        return Err(KeyError::Der("data after the key"));
    }
    // SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT STRING }
    let (alg, rest) = expect(seq, DER_SEQUENCE, "expected an AlgorithmIdentifier")?;
    let (oid, _params) = expect(alg, DER_OID, "expected an algorithm OID")?;
    if oid != RSA_ENCRYPTION_OID {
        return Err(KeyError::NotRsa(oid_text(oid)));
    }
    let (bits, rest) = expect(rest, DER_BIT_STRING, "expected a BIT STRING")?;
    if !rest.is_empty() {
        return Err(KeyError::Der("data after the BIT STRING"));
    }
    match bits.split_first() {
        Some((0, key)) => rsa_public_key_bits(key),
        _ => Err(KeyError::Der("BIT STRING with unused bits")),
    }
}

/// Dotted text of an OID (for messages).
fn oid_text(oid: &[u8]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut acc: u64 = 0;
    for (i, b) in oid.iter().enumerate() {
        acc = (acc << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if parts.is_empty() {
                let (x, y) = if acc < 80 {
                    (acc / 40, acc % 40)
                } else {
                    (2, acc - 80)
                };
                parts.push(x.to_string());
                parts.push(y.to_string());
            } else {
                parts.push(acc.to_string());
            }
            acc = 0;
        }
        if i > 32 || acc > u64::MAX >> 8 {
            parts.push("…".to_owned());
            break;
        }
    }
    parts.join(".")
}

// ---------------------------------------------------------------- check ---

/// The result of the DKIM check of one selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimReport {
    /// What `check --format json` prints.
    pub result: CheckResult,
    /// The key record that was judged.
    pub record: Option<DkimKeyRecord>,
    /// Key size for `mailcanary_dkim_key_bits{domain,selector}`; `None` when
    /// there is no usable key (missing, revoked, invalid, unknown), so the
    /// series must be removed rather than left at an old value.
    pub key_bits: Option<u32>,
    pub key_type: Option<KeyType>,
}

const KEY_HINT: &str = "copy the public key again from your signer; a long key is one TXT record split into several quoted strings, not several records";

/// Lints one key record.
pub fn lint_record(record: &DkimKeyRecord, name: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    for e in record.errors.iter().take(5) {
        out.push(Finding::new(
            "dkim.syntax_error",
            format!("the DKIM key record at {name}: {e}"),
            "fix the record; receivers may discard it",
        ));
    }
    if record.errors.len() > 5 {
        out.push(Finding::new(
            "dkim.syntax_error",
            format!(
                "the DKIM key record at {name} has {} more errors",
                record.errors.len() - 5
            ),
            "fix the record; receivers may discard it",
        ));
    }
    match &record.key {
        PublicKey::Absent => out.push(Finding::new(
            "dkim.syntax_error",
            format!("the DKIM key record at {name} has no p= tag"),
            "publish the public key as p=<base64>",
        )),
        // RFC 6376 §3.6.1: an empty p= means the key has been revoked.
        PublicKey::Revoked => out.push(Finding::new(
            "dkim.revoked",
            format!("the DKIM key at {name} is revoked (empty p=): signatures with this selector fail"),
            "sign with another selector, or publish the current public key here",
        )),
        PublicKey::Invalid(e) => out.push(Finding::new(
            "dkim.syntax_error",
            format!("the DKIM key at {name}: {e}"),
            KEY_HINT,
        )),
        PublicKey::Unsupported(k) => out.push(Finding::new(
            "dkim.unusable_key",
            format!("the DKIM key at {name} has k={k}, which receivers do not support"),
            "use k=rsa (or k=ed25519 alongside an RSA selector)",
        )),
        // RFC 8301 §3.2: verifiers MUST NOT accept RSA keys under 1024 bits;
        // signers SHOULD use at least 2048.
        PublicKey::Rsa { bits } if *bits < MIN_RSA_BITS => out.push(Finding::new(
            "dkim.key_too_short",
            format!("the DKIM key at {name} is RSA {bits} bits: receivers reject keys under {MIN_RSA_BITS} bits"),
            "generate a 2048-bit key and publish it under a new selector",
        )),
        PublicKey::Rsa { bits } if *bits < RECOMMENDED_RSA_BITS => out.push(
            Finding::new(
                "dkim.key_too_short",
                format!("the DKIM key at {name} is RSA {bits} bits; {RECOMMENDED_RSA_BITS} bits is the recommended minimum"),
                "generate a 2048-bit key and publish it under a new selector",
            )
            .with_severity(Severity::Warning),
        ),
        PublicKey::Rsa { .. } | PublicKey::Ed25519 => {}
    }
    // RFC 6376 §3.6.1 t=y: "Verifiers MUST NOT treat messages from Signers in
    // testing mode differently from unsigned email".
    if record.testing() {
        out.push(Finding::new(
            "dkim.testing_mode",
            format!("the DKIM key at {name} has t=y (testing): receivers may treat signed mail as unsigned"),
            "remove t=y once signing works",
        ));
    }
    // RFC 8301 §3.1: rsa-sha1 MUST NOT be used, so h=sha1 leaves nothing to verify with.
    if let Some(h) = &record.hash_algorithms {
        if !h.iter().any(|a| a == "sha256") {
            out.push(Finding::new(
                "dkim.unusable_key",
                format!(
                    "the DKIM key at {name} allows only h={}: receivers require sha256",
                    h.join(":")
                ),
                "remove h= or set h=sha256",
            ));
        }
    }
    // RFC 6376 §3.6.1 s=: the key must allow "email" or "*".
    if let Some(s) = &record.services {
        if !s.iter().any(|v| v == "email" || v == "*") {
            out.push(Finding::new(
                "dkim.unusable_key",
                format!(
                    "the DKIM key at {name} has s={}, which excludes email",
                    s.join(":")
                ),
                "remove s= or set s=email",
            ));
        }
    }
    out
}

fn dns_error(name: &str, why: &str) -> Finding {
    Finding::new(
        "dkim.dns_error",
        format!(
            "could not get the TXT records of {name}: {}",
            excerpt(why, 120)
        ),
        "check the resolver and the domain's name servers; the result is unknown, not missing",
    )
}

/// The answers [`check`] still needs.
pub fn pending_queries(selector: &str, domain: &str, facts: &DnsFacts) -> Vec<Query> {
    let mut out = Vec::new();
    want(&mut out, facts, Query::txt(&record_name(selector, domain)));
    out
}

/// Judges the key record of `selector` for `domain` from pre-fetched answers.
pub fn check(selector: &str, domain: &str, facts: &DnsFacts) -> DkimReport {
    let name = record_name(selector, domain);
    let mut findings = Vec::new();
    let mut record = None;
    match facts.txt(&name) {
        None => findings.push(dns_error(&name, "not looked up")),
        Some(DnsAnswer::Unknown(why)) => findings.push(dns_error(&name, why)),
        Some(DnsAnswer::NotFound) => findings.push(Finding::new(
            "dkim.missing",
            format!(
                "no DKIM key record at {name}: mail signed with selector {selector} fails DKIM"
            ),
            format!("publish the public key of selector {selector} as TXT at {name}"),
        )),
        Some(DnsAnswer::Found(records)) => {
            let keys: Vec<&Vec<u8>> = records.iter().filter(|r| is_key_record(r)).collect();
            match keys.first() {
                None => findings.push(Finding::new(
                    "dkim.syntax_error",
                    format!(
                        "the TXT record at {name} is not a DKIM key record (no v=DKIM1, no p=): `{}`",
                        excerpt(&lossy(records.first().map(Vec::as_slice).unwrap_or_default()), 60)
                    ),
                    format!("publish `v=DKIM1; k=rsa; p=<public key>` at {name}"),
                )),
                Some(first) => {
                    if keys.len() > 1 {
                        // RFC 6376 §3.6.2.2: with several key records the
                        // verifier may choose any one of them.
                        findings.push(Finding::new(
                            "dkim.multiple_records",
                            format!("{name} has {} DKIM key records; receivers may use any of them (this check judges the first)", keys.len()),
                            "keep one key record per selector; use a new selector for a new key",
                        ));
                    }
                    let parsed = parse(first);
                    findings.extend(lint_record(&parsed, &name));
                    record = Some(parsed);
                }
            }
        }
    }
    // RFC 6376 §3.6.1: a record with another v= MUST be discarded, so its
    // key is not in use.
    let key_bits = record
        .as_ref()
        .filter(|r| {
            !r.errors
                .iter()
                .any(|e| matches!(e, DkimError::BadVersion(_)))
        })
        .and_then(|r| r.key.bits());
    let key_type = record
        .as_ref()
        .filter(|r| key_bits.is_some() || matches!(r.key, PublicKey::Unsupported(_)))
        .map(|r| r.key_type.clone());
    DkimReport {
        result: CheckResult::new("dkim", record.as_ref().map(|r| r.text.clone()), findings),
        record,
        key_bits,
        key_type,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit;
    use super::*;

    // openssl genrsa 2047 | openssl rsa -pubout -outform DER | base64
    const RSA_2047: &str =
        "MIIBITANBgkqhkiG9w0BAQEFAAOCAQ4AMIIBCQKCAQB0IFXGVQZlH7MR96DlcH/jS2OSrpdjjzOPDadFwZWtG+C6\
        WxHj1P7a4MOKwEDlwk7USwxLMu6uTJgE3ZmNEPDZZKYpfQX3lAokrwcrFKXPQuXV/C7ZDLc2x76fWwpgo+RYNYOM\
        n+3sHSo6Yo/DG598a2dEDRVak4Gws5g+yyVo9cA2w1nEcJB/KITtO+BU4wxWi8kpKOJyxaEER4YcAclRsYrD7Xmc\
        FGrAyXPf2k7yrnY1WXAQSLaSsXWFO65n6yPBEN1677MYrP5vCSY3N8wfXhS+8cHsk5bbZayrrR9b/HlZwHUN6PM8\
        7ksd57XbfzJBQcaGVD/yjBYpNxTGaZ0dAgMBAAE=";

    #[test]
    fn base64_strict() {
        assert_eq!(decode_base64("TWFu").unwrap(), b"Man");
        assert_eq!(decode_base64("TWE=").unwrap(), b"Ma");
        assert_eq!(decode_base64("TQ==").unwrap(), b"M");
        assert_eq!(decode_base64(" TW\r\n\tFu ").unwrap(), b"Man");
        assert_eq!(decode_base64("").unwrap(), b"");
        assert_eq!(decode_base64("TWF"), Err(Base64Error::Length(3)));
        assert_eq!(decode_base64("T=Fu"), Err(Base64Error::Padding));
        assert_eq!(decode_base64("TQ==TWFu"), Err(Base64Error::Padding));
        assert_eq!(decode_base64("TW=u"), Err(Base64Error::Padding));
        assert!(matches!(
            decode_base64("TW-u"),
            Err(Base64Error::InvalidCharacter {
                position: 2,
                ch: '-'
            })
        ));
        assert!(matches!(
            decode_base64("TW\"u5"),
            Err(Base64Error::InvalidCharacter { position: 2, .. })
        ));
    }

    #[test]
    fn modulus_bits_counts_exact_bits() {
        let der = decode_base64(RSA_2047).unwrap();
        assert_eq!(rsa_modulus_bits(&der), Ok(2047));
        // Bare RSAPublicKey: SEQUENCE { INTEGER 0x00 0x80 0 0, INTEGER 3 }
        let bare = [
            0x30, 0x09, 0x02, 0x04, 0x00, 0x80, 0x00, 0x00, 0x02, 0x01, 0x03,
        ];
        assert_eq!(rsa_modulus_bits(&bare), Ok(24));
        let negative = [0x30, 0x06, 0x02, 0x01, 0x80, 0x02, 0x01, 0x03];
        assert_eq!(
            rsa_modulus_bits(&negative),
            Err(KeyError::Der("negative modulus"))
        );
        let zero_exp = [0x30, 0x06, 0x02, 0x01, 0x7f, 0x02, 0x01, 0x00];
        assert_eq!(
            rsa_modulus_bits(&zero_exp),
            Err(KeyError::Der("zero exponent"))
        );
        let trailing = [0x30, 0x06, 0x02, 0x01, 0x7f, 0x02, 0x01, 0x03, 0x00];
        assert_eq!(
            rsa_modulus_bits(&trailing),
            Err(KeyError::Der("data after the key"))
        );
        assert!(rsa_modulus_bits(&[]).is_err());
        assert!(rsa_modulus_bits(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(rsa_modulus_bits(&[0x30, 0x80]).is_err());
        // Truncated: the first 100 bytes of a real key.
        assert_eq!(
            rsa_modulus_bits(der.get(..100).unwrap()),
            Err(KeyError::Der("truncated"))
        );
    }

    #[test]
    fn spki_of_another_algorithm_is_named() {
        // ed25519 SubjectPublicKeyInfo (OID 1.3.101.112).
        let mut spki = vec![
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        spki.extend([7u8; 32]);
        assert_eq!(
            rsa_modulus_bits(&spki),
            Err(KeyError::NotRsa("1.3.101.112".into()))
        );
        assert_eq!(oid_text(RSA_ENCRYPTION_OID), "1.2.840.113549.1.1.1");
        assert!(oid_text(&[0xff; 64]).ends_with('…'));
    }

    #[test]
    fn parses_tags() {
        let r = parse(b"v=DKIM1; k=rsa; h=sha1:sha256; s=email:*; t=y:s; n=notes; zz=1; p=");
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.key, PublicKey::Revoked);
        assert_eq!(
            r.hash_algorithms.as_deref(),
            Some(&["sha1".to_owned(), "sha256".to_owned()][..])
        );
        assert!(r.testing());
        assert_eq!(r.unknown_tags, ["zz"]);
        let r = parse(b"k=rsa; v=DKIM1; p=");
        assert_eq!(r.errors, [DkimError::VersionNotFirst]);
        let r = parse(b"v=DKIM2; p=");
        assert!(matches!(r.errors[..], [DkimError::BadVersion(_)]));
        let r = parse(b"v=DKIM1; k=dsa; p=AAAA");
        assert_eq!(r.key, PublicKey::Unsupported("dsa".into()));
        let r = parse(b"v=DKIM1; k=ed25519; p=AAAA");
        assert_eq!(r.key, PublicKey::Invalid(KeyError::Ed25519Length(3)));
        assert_eq!(r.key.bits(), None);
        assert!(is_key_record(b"v=DKIM1; p="));
        assert!(is_key_record(b"k=rsa; p=abc"));
        assert!(!is_key_record(b"v=spf1 -all"));
    }

    #[test]
    fn fixtures() {
        testkit::run_fixture_dir("dkim", &[], |case| {
            let facts = testkit::resolve_until_done(&case.facts, |f| {
                pending_queries(&case.selector, &case.domain, f)
            });
            let report = check(&case.selector, &case.domain, &facts);
            let values = vec![
                (
                    "bits",
                    report.key_bits.map_or("-".to_owned(), |b| b.to_string()),
                ),
                (
                    "key-type",
                    report
                        .key_type
                        .as_ref()
                        .map_or("-".to_owned(), ToString::to_string),
                ),
            ];
            (report.result, values)
        });
    }

    #[test]
    fn never_panics_on_random_or_mutated_input() {
        let seeds = testkit::fixture_records("dkim");
        testkit::fuzz(
            20_000,
            &seeds,
            b"v=DKIM1;k=rsaed25519p=ABCMIIBIjANBgkq+/=0129 :htsy",
            |input| {
                let r = parse(input);
                let _ = lint_record(&r, "s._domainkey.example.com");
                let _ = is_key_record(input);
                let _ = rsa_modulus_bits(input);
                let _ = oid_text(input);
                if let Ok(s) = std::str::from_utf8(input) {
                    let _ = decode_base64(s);
                }
            },
        );
        // DER-shaped garbage: mutate real keys at the byte level.
        let der_seeds: Vec<Vec<u8>> = seeds
            .iter()
            .filter_map(|r| match parse(r).key {
                PublicKey::Rsa { .. } => {
                    let (tags, _) = tag_list::parse(r, NameCase::Sensitive);
                    let p = tags.into_iter().find(|t| t.name == "p")?;
                    decode_base64(&tag_list::strip_fws(&p.value)).ok()
                }
                _ => None,
            })
            .collect();
        assert!(!der_seeds.is_empty());
        testkit::fuzz(
            20_000,
            &der_seeds,
            &[0x00, 0x02, 0x03, 0x06, 0x30, 0x80, 0x81, 0x82, 0x84, 0xff],
            |input| {
                let _ = rsa_modulus_bits(input);
            },
        );
    }

    /// Evidence for the module comment.
    #[test]
    fn mail_auth_loses_what_the_linter_needs() {
        use mail_auth::common::parse::TxtRecordParser;
        use mail_auth::common::verify::DomainKey;
        let k = DomainKey::parse(b"v=DKIM1; p=MIGfMA0G").expect("mail-auth accepts a non-key");
        assert_eq!(k.p.public_key_bits(), 0);
        assert!(matches!(
            parse(b"v=DKIM1; p=MIGfMA0G").key,
            PublicKey::Invalid(_)
        ));
        assert!(DomainKey::parse(b"p=AAAA; v=DKIM1").is_ok());
        let k = DomainKey::parse(format!("v=DKIM1; p={RSA_2047}").as_bytes()).unwrap();
        assert_eq!(k.p.public_key_bits(), 2048);
        assert_eq!(
            parse(format!("v=DKIM1; p={RSA_2047}").as_bytes())
                .key
                .bits(),
            Some(2047)
        );
    }

    /// For the fixture keys (byte-aligned moduli), our size equals mail-auth's.
    #[test]
    fn key_sizes_agree_with_mail_auth() {
        use mail_auth::common::parse::TxtRecordParser;
        use mail_auth::common::verify::DomainKey;
        let mut compared = 0;
        for text in testkit::fixture_records("dkim") {
            // mail-auth counts whole bytes; compare only byte-aligned moduli.
            if let PublicKey::Rsa { bits } = parse(&text).key {
                if bits % 8 != 0 {
                    continue;
                }
                if let Ok(k) = DomainKey::parse(&text) {
                    assert_eq!(k.p.public_key_bits(), bits as usize, "{}", lossy(&text));
                    compared += 1;
                }
            }
        }
        assert!(compared >= 4, "only {compared} keys compared");
    }
}
