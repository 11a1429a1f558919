//! Compose a probe: a verification-code message that looks like the real
//! thing, plus the token that ties its arrival back to the probe.
//!
//! The token goes into the Message-ID (`<mc-TOKEN@sender-domain>`) and the
//! body's reference line, where support references live in real mail; an
//! explicit `X-Mailcanary-Probe` header only when configured, since
//! production mail carries none and a filter could key on it.

use std::fmt;
use std::path::Path;
use std::time::SystemTime;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::Message;
use rand::Rng;
use serde::Deserialize;

/// Prefix of every probe token; also what watchers search for.
pub const TOKEN_PREFIX: &str = "mc-";
/// Length of the random part of a token: 16 random bytes in base32.
pub const TOKEN_LEN: usize = 26;
/// Header that carries the token when `probe_header = true`.
pub const PROBE_HEADER: &str = "X-Mailcanary-Probe";

/// A message template file (`probes/templates/*.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Why a template cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read template {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("template {path}: {message}")]
    Invalid { path: String, message: String },
}

impl Template {
    /// Load and check a template: it must show the code, and the reference
    /// that carries the token in the body.
    pub fn load(path: &Path) -> Result<Template, TemplateError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
            path: p.clone(),
            source,
        })?;
        let t: Template = toml::from_str(&text).map_err(|e| TemplateError::Invalid {
            path: p.clone(),
            message: e.message().to_string(),
        })?;
        for (part, body) in [("text", &t.text), ("html", &t.html)] {
            for needed in ["{code}", "{ref}"] {
                if !body.contains(needed) {
                    return Err(TemplateError::Invalid {
                        path: p,
                        message: format!("`{part}` must contain {needed}"),
                    });
                }
            }
        }
        Ok(t)
    }
}

/// The random part of a probe token, lower-case base32 (RFC 4648 alphabet).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Token(String);

impl Token {
    pub fn random(rng: &mut impl Rng) -> Token {
        let bytes: [u8; 16] = rng.random();
        Token(base32_lower(&bytes))
    }

    /// A token whose first 48 bits are its creation time in Unix ms and
    /// whose other 80 are random (as a ULID is built): still 26 characters
    /// and as hard to guess for a forger, but runs created together sit
    /// together in the store's token key, so pruning the oldest rewrites a
    /// few pages instead of one per run.
    pub fn timed(now_ms: u64, rng: &mut impl Rng) -> Token {
        let mut bytes: [u8; 16] = rng.random();
        bytes[..6].copy_from_slice(&now_ms.to_be_bytes()[2..]);
        Token(base32_lower(&bytes))
    }

    /// Accept a token found in a message (`mc-` prefix optional).
    pub fn parse(s: &str) -> Option<Token> {
        let s = s.strip_prefix(TOKEN_PREFIX).unwrap_or(s);
        (s.len() == TOKEN_LEN
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b)))
        .then(|| Token(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{TOKEN_PREFIX}{}", self.0)
    }
}

fn base32_lower(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buf = (buf << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buf >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// A verification code. Only [`Code::masked`] may reach logs, metrics or output.
#[derive(Clone, PartialEq, Eq)]
pub struct Code(String);

impl Code {
    pub fn random(rng: &mut impl Rng, digits: usize) -> Code {
        Code(
            (0..digits)
                .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
                .collect(),
        )
    }

    /// The first two characters and stars, e.g. `12****`.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Mask a code for display: keep two characters, star the rest.
pub fn mask(code: &str) -> String {
    let keep: String = code.chars().take(2).collect();
    let stars = code.chars().count().saturating_sub(2).max(2);
    format!("{keep}{}", "*".repeat(stars))
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Code({})", self.masked())
    }
}

/// What a probe message is made of.
pub struct Parts<'a> {
    pub template: &'a Template,
    pub from: &'a Mailbox,
    pub reply_to: Option<&'a Mailbox>,
    pub to: &'a Mailbox,
    pub product: &'a str,
    pub validity_minutes: u64,
    pub probe_header: bool,
    pub date: SystemTime,
}

/// A composed probe, ready to sign and send.
#[derive(Debug)]
pub struct Composed {
    pub token: Token,
    pub code: Code,
    pub message_id: String,
    /// The RFC 5322 message, CRLF line endings.
    pub bytes: Vec<u8>,
}

/// Why a message could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the probe message: {0}")]
pub struct ComposeError(String);

/// Build the message for one seed.
pub fn compose(parts: &Parts<'_>, token: Token, code: Code) -> Result<Composed, ComposeError> {
    let domain = parts.from.email.domain();
    let message_id = format!("<{token}@{domain}>");
    let fill = |s: &str| {
        s.replace("{code}", code.expose())
            .replace("{product}", parts.product)
            .replace("{minutes}", &parts.validity_minutes.to_string())
            .replace("{ref}", &token.to_string())
    };
    // mail-auth 0.13's relaxed body hash is wrong for a body ending in a
    // whitespace-only line; trimming keeps every part ending in text.
    let text = format!("{}\r\n", fill(parts.template.text.trim()));
    let html = format!("{}\r\n", fill(parts.template.html.trim()));
    let mut b = Message::builder()
        .from(parts.from.clone())
        .to(parts.to.clone())
        .subject(fill(parts.template.subject.trim()))
        .date(parts.date)
        .message_id(Some(message_id.clone()));
    if let Some(r) = parts.reply_to {
        b = b.reply_to(r.clone());
    }
    if parts.probe_header {
        b = b.raw_header(lettre::message::header::HeaderValue::new(
            lettre::message::header::HeaderName::new_from_ascii_str(PROBE_HEADER),
            token.to_string(),
        ));
    }
    let body = MultiPart::alternative()
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .body(text),
        )
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_HTML)
                .body(html),
        );
    let msg = b.multipart(body).map_err(|e| ComposeError(e.to_string()))?;
    Ok(Composed {
        token,
        code,
        message_id,
        bytes: msg.formatted(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn template(name: &str) -> Template {
        Template::load(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("probes/templates")
                .join(name),
        )
        .unwrap()
    }

    #[test]
    fn tokens_are_26_base32_characters_and_round_trip() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let t = Token::random(&mut rng);
        assert_eq!(t.as_str().len(), TOKEN_LEN);
        assert_eq!(Token::parse(&t.to_string()), Some(t.clone()));
        assert_eq!(Token::parse("mc-UPPERCASEISNOTBASE32LOWER"), None);
        assert_eq!(base32_lower(b"foobar"), "mzxw6ytboi");
    }

    #[test]
    fn timed_tokens_share_a_prefix_when_made_together() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let now = 1_764_672_000_000u64;
        let a = Token::timed(now, &mut rng);
        let b = Token::timed(now + 1_000, &mut rng);
        let c = Token::timed(now + 30 * 86_400_000, &mut rng);
        for t in [&a, &b, &c] {
            assert_eq!(Token::parse(&t.to_string()).as_ref(), Some(t));
        }
        assert_ne!(a, Token::timed(now, &mut rng), "the random part differs");
        // 48 bits of time are the first 9.6 characters; a second apart,
        // only the last few of them differ.
        assert_eq!(a.as_str()[..6], b.as_str()[..6]);
        assert_ne!(a.as_str()[..6], c.as_str()[..6]);
    }

    #[test]
    fn codes_are_digits_and_mask_to_two() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let c = Code::random(&mut rng, 6);
        assert_eq!(c.expose().len(), 6);
        assert!(c.expose().bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(c.masked(), format!("{}****", &c.expose()[..2]));
        assert!(!format!("{c:?}").contains(c.expose()));
        assert_eq!(mask("7"), "7**");
    }

    #[test]
    fn composed_message_carries_token_code_and_identities() {
        for name in ["verification-en.toml", "verification-zh.toml"] {
            let t = template(name);
            let from: Mailbox = "Example <no-reply@sender.test>".parse().unwrap();
            let reply: Mailbox = "support@sender.test".parse().unwrap();
            let to: Mailbox = "seed1@seed.test".parse().unwrap();
            let mut rng = rand::rngs::StdRng::seed_from_u64(3);
            let token = Token::random(&mut rng);
            let code = Code::random(&mut rng, 6);
            let c = compose(
                &Parts {
                    template: &t,
                    from: &from,
                    reply_to: Some(&reply),
                    to: &to,
                    product: "Example",
                    validity_minutes: 10,
                    probe_header: false,
                    date: SystemTime::now(),
                },
                token.clone(),
                code.clone(),
            )
            .unwrap();
            let msg = mail_parser::MessageParser::default()
                .parse(&c.bytes)
                .unwrap();
            assert_eq!(
                msg.message_id(),
                Some(format!("{token}@sender.test").as_str())
            );
            assert_eq!(
                msg.reply_to()
                    .and_then(|a| a.first())
                    .and_then(|a| a.address()),
                Some("support@sender.test")
            );
            assert!(msg.subject().unwrap().contains(code.expose()), "{name}");
            let text = msg.body_text(0).unwrap();
            assert!(
                text.contains(code.expose()) && text.contains(&token.to_string()),
                "{name}: {text}"
            );
            assert!(msg.body_html(0).unwrap().contains(&token.to_string()));
            assert!(
                msg.header("X-Mailcanary-Probe").is_none(),
                "no probe header unless configured"
            );
            assert!(msg.date().is_some());
        }
    }
}
