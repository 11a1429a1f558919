//! Judging a delivered probe: what the receiver said about it, from the
//! message bytes alone.
//!
//! The inbox watcher hands over the raw delivered message (as fetched over
//! IMAP or read from a Maildir file); [`judge`] parses it once with
//! mail-parser and returns a [`Verdict`]. Nothing here does I/O: the parsers
//! take bytes, return typed values, never fail and never panic — a malformed
//! field yields an "unparseable" value (STYLE.md item 5).
//!
//! # Layout
//!
//! - [`authres`]: Authentication-Results fields (RFC 8601) and the rule that
//!   picks the receiver's field among possible forgeries.
//! - [`received`]: the Received chain (RFC 5321 §4.4) in transit order, with
//!   per-hop delays and clock skew flagged.
//! - [`reverify`]: mailcanary's own DKIM check of the delivered copy
//!   (the one part that does I/O: it fetches keys through the DNS client).
//! - [`spam`]: spam scores and flags the receiver states (SpamAssassin,
//!   rspamd, Microsoft SCL), with the same care about sender-added copies.
//! - this file: [`judge`]; the probe token is found by
//!   [`crate::message::token`].

pub mod authres;
pub mod received;
pub mod reverify;
pub mod spam;

use mail_parser::{Header, HeaderName, MessageParser};
use serde::Serialize;

use authres::{AuthVerdict, TrustedId};
use received::Route;
use spam::SpamVerdict;

/// Everything the receiver said about one delivered message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// SPF, DKIM, DMARC, ARC and other results from the receiver's Authentication-Results field.
    pub auth: AuthVerdict,
    /// The Received chain, oldest hop first, with per-hop delays.
    pub hops: Route,
    /// The receiver's spam score or flag, when it states one.
    pub spam: Option<SpamVerdict>,
    /// The probe token, as [`find_token`] finds it.
    pub token: Option<String>,
}

/// Judges one delivered message. `authserv_id` is the seed's configured
/// authserv-id (see [`TrustedId::new`] for its forms); without it no
/// Authentication-Results field is trusted.
pub fn judge(raw: &[u8], authserv_id: Option<&str>) -> Verdict {
    let trusted = authserv_id.map(TrustedId::new);
    let Some(message) = MessageParser::new().parse(raw) else {
        return Verdict {
            auth: authres::select([], trusted.as_ref()),
            hops: received::route([]),
            spam: None,
            token: None,
        };
    };
    let headers = message.headers();
    let value = |h: &Header<'_>| -> &[u8] {
        raw.get(h.offset_start as usize..h.offset_end as usize)
            .unwrap_or_default()
    };
    let auth = authres::select(
        headers
            .iter()
            .filter(|h| matches!(h.name, HeaderName::AuthenticationResults))
            .map(value),
        trusted.as_ref(),
    );
    let hops = received::route(
        headers
            .iter()
            .filter(|h| matches!(h.name, HeaderName::Received))
            .map(|h| received::hop_with(h.value.as_received(), value(h))),
    );
    let spam = spam::verdict(headers.iter().map(|h| (h.name(), value(h))));
    let token = crate::message::token::find_token_parsed(raw, &message);
    Verdict {
        auth,
        hops,
        spam,
        token,
    }
}

#[cfg(test)]
pub(crate) mod testkit {
    //! Fixture access shared by the verdict tests.

    use mail_parser::MessageParser;

    /// Where the `.eml` fixtures live.
    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/verdict/");

    /// Every fixture message.
    pub const FIXTURES: [&str; 7] = [
        "gmail.eml",
        "outlook.eml",
        "rspamd.eml",
        "rspamd-spam.eml",
        "forged.eml",
        "no-ar.eml",
        "hostile.eml",
    ];

    /// Reads a fixture's bytes.
    pub fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!("{DIR}{name}")).unwrap_or_else(|e| panic!("{DIR}{name}: {e}"))
    }

    /// The raw values of one header field, top to bottom.
    pub fn header_values<'a>(raw: &'a [u8], name: &str) -> Vec<&'a [u8]> {
        headers(raw)
            .into_iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .collect()
    }

    /// All header fields as `(name, raw value)`, top to bottom.
    pub fn headers(raw: &[u8]) -> Vec<(String, &[u8])> {
        let message = MessageParser::new().parse(raw).expect("fixture parses");
        message
            .headers()
            .iter()
            .map(|h| {
                let value = &raw[h.offset_start as usize..h.offset_end as usize];
                (h.name().to_string(), value)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::authres::{
        AuthSource, Method, EXPORTED_METHODS, MAX_RESULTS, MAX_TEXT, RESULT_LABELS,
    };
    use super::received::{Delay, MAX_HOPS};
    use super::spam::SpamSource;
    use super::testkit::{fixture, FIXTURES};
    use super::*;
    use crate::message::token::{find_token, scan_token};
    use crate::message::TOKEN_LEN;

    #[test]
    fn judge_rspamd_stack() {
        let v = judge(&fixture("rspamd.eml"), Some("mx.seed.test"));
        for m in &EXPORTED_METHODS[..3] {
            assert_eq!(v.auth.label(m), "pass", "{m:?}");
        }
        assert_eq!(v.auth.label(&Method::Arc), "none");
        assert_eq!(v.hops.hops.len(), 2);
        assert_eq!(v.hops.total, Delay::Seconds(1));
        let spam = v.spam.unwrap();
        assert_eq!((spam.score, spam.flagged), (Some(-0.10), Some(false)));
        assert_eq!(v.token.as_deref(), Some("v4seh2kvj72ceuvw75efr6edt4"));
    }

    #[test]
    fn judge_gmail_outlook_forged_no_ar() {
        let g = judge(&fixture("gmail.eml"), Some("mx.google.com"));
        assert_eq!(g.auth.label(&Method::Arc), "pass");
        assert_eq!(g.auth.results_for(&Method::Dkim).count(), 2);
        assert_eq!(g.hops.total, Delay::Seconds(3));
        assert_eq!(g.spam, None);

        let o = judge(&fixture("outlook.eml"), Some(""));
        assert_eq!(o.auth.label(&Method::Spf), "pass");
        assert_eq!(
            o.spam.as_ref().map(|s| s.source),
            Some(SpamSource::ForefrontReport)
        );
        assert_eq!(o.token.as_deref(), Some("s2jhtlgmxgedn73u55xtplpft7"));

        let f = judge(&fixture("forged.eml"), Some("mx.seed.test"));
        assert_eq!(f.auth.label(&Method::Dmarc), "fail");
        assert_eq!(f.auth.ignored_below, 1);
        assert_eq!(f.spam.unwrap().flagged, Some(true));

        let n = judge(&fixture("no-ar.eml"), Some("mx.163.com"));
        assert_eq!(n.auth.source, AuthSource::Missing);
        assert_eq!(n.hops.total, Delay::Skewed { behind: 18 });
        assert_eq!(n.token.as_deref(), Some("g6zdmen4khvdgajgxbenyjqwx6"));
    }

    #[test]
    fn judge_without_config_or_message() {
        let v = judge(&fixture("gmail.eml"), None);
        assert_eq!(v.auth.source, AuthSource::NotConfigured);
        assert_eq!(
            v.auth.authserv_ids_seen,
            [Some("mx.google.com".to_string())]
        );
        let v = judge(b"", Some("mx"));
        assert_eq!(v.auth.source, AuthSource::Missing);
        assert!(v.hops.hops.is_empty());
        assert_eq!(v.token, None);
    }

    #[test]
    fn token_sources_in_order() {
        assert_eq!(
            find_token(&fixture("gmail.eml")).as_deref(),
            Some("ujzdegxdncf32epf3dhodzdoci")
        );
        // Message-ID wins over the header and the body.
        let raw = b"X-Mailcanary-Probe: mc-aaaaaaaaaaaaaaaaaaaaaaaaaa\nMessage-ID:\n <mc-bbbbbbbbbbbbbbbbbbbbbbbbbb@x.test>\n\nmc-cccccccccccccccccccccccccc\n";
        assert_eq!(
            find_token(raw).as_deref(),
            Some("bbbbbbbbbbbbbbbbbbbbbbbbbb")
        );
        // A rewritten Message-ID (Amazon SES): the header, bare or prefixed.
        let raw = b"Message-ID: <0100abc@email.amazonses.com>\nx-mailcanary-probe:  dddddddddddddddddddddddddd \n\nmc-cccccccccccccccccccccccccc\n";
        assert_eq!(
            find_token(raw).as_deref(),
            Some("dddddddddddddddddddddddddd")
        );
        // Only the body.
        let raw = b"Subject: hi\r\n\r\nYour code: 123456 (mc-eeeeeeeeeeeeeeeeeeeeeeeee2)\r\n";
        assert_eq!(
            find_token(raw).as_deref(),
            Some("eeeeeeeeeeeeeeeeeeeeeeeee2")
        );
        // Not in the header section's other fields.
        let raw = b"Subject: mc-ffffffffffffffffffffffffff\n\nnothing\n";
        assert_eq!(find_token(raw), None);
    }

    #[test]
    fn token_in_encoded_bodies() {
        let strip = |raw: Vec<u8>, field: &str| -> Vec<u8> {
            let text = String::from_utf8(raw).unwrap();
            text.lines()
                .filter(|l| !l.starts_with(field))
                .map(|l| format!("{l}\n"))
                .collect::<String>()
                .into_bytes()
        };
        // Quoted-printable with a soft line break inside the token.
        let raw = strip(fixture("outlook.eml"), "X-Mailcanary-Probe");
        assert_eq!(
            find_token(&raw).as_deref(),
            Some("s2jhtlgmxgedn73u55xtplpft7")
        );
        assert_eq!(
            judge(&raw, None).token.as_deref(),
            Some("s2jhtlgmxgedn73u55xtplpft7")
        );
        // Base64.
        let raw = strip(fixture("no-ar.eml"), "Message-ID");
        assert_eq!(
            find_token(&raw).as_deref(),
            Some("g6zdmen4khvdgajgxbenyjqwx6")
        );
    }

    #[test]
    fn token_decoys_do_not_match() {
        assert_eq!(find_token(&fixture("hostile.eml")), None);
        for bad in [
            "mc-abcdefghijklmnopqrstuvwxy",
            "mc-abcdefghijklmnopqrstuvwxyz2",
            "xmc-abcdefghijklmnopqrstuvwxyz",
            "mc-abcdefghijklmnopqrstuvwxy1",
            "mc-ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            "mc-",
            "",
        ] {
            assert_eq!(scan_token(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(
            scan_token(b"mc-mc-abcdefghijklmnopqrstuvwxyz.").as_deref(),
            Some("abcdefghijklmnopqrstuvwxyz")
        );
    }

    /// A small deterministic PRNG (xorshift64*), so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Bytes that matter to the parsers, used as mutation material.
    const SPICE: [&[u8]; 16] = [
        b"(",
        b")",
        b"\"",
        b";",
        b"=",
        b"\\",
        b"\r\n",
        b"\n ",
        b"\n\n",
        b"\xff",
        b"\0",
        b":",
        b"/",
        b"mc-",
        b"Authentication-Results: mx.seed.test; spf=pass\n",
        b"Received: from a by b; ",
    ];

    /// One random edit: flip, insert, delete, duplicate or truncate.
    fn mutate(rng: &mut Rng, data: &mut Vec<u8>) {
        let len = data.len();
        match rng.below(6) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] = rng.next() as u8;
            }
            1 | 2 => {
                let i = rng.below(len + 1);
                let spice = SPICE[rng.below(SPICE.len())];
                data.splice(i..i, spice.iter().copied());
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below(64).min(len - i);
                data.drain(i..i + n);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below(512).min(len - i);
                let chunk = data[i..i + n].to_vec();
                let j = rng.below(len + 1);
                data.splice(j..j, chunk);
            }
            _ => data.truncate(rng.below(len + 1)),
        }
    }

    /// Checks the bounds every verdict keeps, whatever the input.
    fn assert_bounded(v: &Verdict) {
        for m in &EXPORTED_METHODS {
            assert!(RESULT_LABELS.contains(&v.auth.label(m)));
        }
        assert!(v.auth.results.len() <= MAX_RESULTS);
        for r in &v.auth.results {
            assert!(RESULT_LABELS.contains(&r.result.label()));
            for p in &r.props {
                assert!(p.value.len() <= MAX_TEXT);
            }
            for c in &r.comments {
                assert!(c.len() <= MAX_TEXT);
            }
        }
        assert!(v.hops.hops.len() <= MAX_HOPS);
        for h in &v.hops.hops {
            assert!(h.by.as_ref().is_none_or(|s| s.len() <= 255));
        }
        if let Some(s) = &v.spam {
            assert!(s.score.is_none_or(f64::is_finite));
            assert!(s.scl.is_none_or(|n| (-1..=9).contains(&n)));
        }
        assert!(v.token.as_ref().is_none_or(|t| t.len() == TOKEN_LEN));
    }

    #[test]
    fn mutated_fixtures_never_panic() {
        let mut rng = Rng(0x6d61_696c_6361_6e61);
        for name in FIXTURES {
            let original = fixture(name);
            let rounds = if name == "hostile.eml" { 100 } else { 400 };
            for round in 0..rounds {
                let mut data = original.clone();
                for _ in 0..=rng.below(8) {
                    mutate(&mut rng, &mut data);
                }
                let seed = if round % 2 == 0 {
                    Some("mx.seed.test")
                } else {
                    Some("")
                };
                assert_bounded(&judge(&data, seed));
                let _ = find_token(&data);
            }
        }
    }

    /// Words and separators the field parsers care about, for token soups.
    const SOUP: [&[u8]; 28] = [
        b"mx.seed.test",
        b"spf",
        b"dkim",
        b"dmarc",
        b"none",
        b"pass",
        b"reason",
        b"header.d",
        b"smtp.mailfrom",
        b"from",
        b"by",
        b"with",
        b"id",
        b"Yes,",
        b"score",
        b"SCL:",
        b"[1.5 / 15]",
        b"-0.10",
        b"3 Mar 2025 10:00:00 +0000",
        b"=",
        b";",
        b"/",
        b"(",
        b")",
        b"\"",
        b"\\",
        b" \r\n\t",
        b"\xff\x00",
    ];

    #[test]
    fn token_soups_never_panic_the_field_parsers() {
        let mut rng = Rng(0x736f_7570);
        for _ in 0..20_000 {
            let mut value = Vec::new();
            for _ in 0..rng.below(40) {
                value.extend_from_slice(SOUP[rng.below(SOUP.len())]);
            }
            let parsed = authres::parse(&value);
            assert!(parsed.results.len() <= MAX_RESULTS);
            let _ = received::hop(&value);
            let _ = spam::verdict(
                [
                    "X-Spam-Status",
                    "X-Spamd-Result",
                    "X-Forefront-Antispam-Report",
                ]
                .map(|n| (n, value.as_slice())),
            );
            let _ = scan_token(&value);
        }
    }

    #[test]
    fn degenerate_inputs_never_panic() {
        let mut inputs: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"\n".to_vec(),
            b"\r\n\r\n".to_vec(),
            b":".to_vec(),
            b"Received:".to_vec(),
            b"Authentication-Results:".to_vec(),
            vec![0xff; 4096],
            vec![b'('; 100_000],
            vec![b'"'; 100_000],
        ];
        let mut deep = b"Authentication-Results: mx; spf=pass ".to_vec();
        deep.extend(std::iter::repeat_n(b'(', 200_000));
        inputs.push(deep);
        let mut many = Vec::new();
        for i in 0..5_000 {
            many.extend_from_slice(
                format!(
                    "Received: from h{i} by h{i}; 3 Mar 2025 10:00:{:02} +0000\n",
                    i % 60
                )
                .as_bytes(),
            );
        }
        inputs.push(many);
        for input in &inputs {
            assert_bounded(&judge(input, Some("mx")));
            let _ = find_token(input);
        }
    }
}
