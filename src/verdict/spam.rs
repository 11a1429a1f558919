//! Spam scores, where the receiver states them in a header field.
//!
//! | Field | Written by | Gives |
//! |---|---|---|
//! | `X-Spam-Status: Yes, score=7.1 required=5.0 tests=...` | SpamAssassin (`hits=` before 3.0), rspamd `milter_headers` (`No, score=-0.10`) | flag, score, threshold |
//! | `X-Spamd-Result: default: False [3.40 / 15.00]; SYM(..)..` | rspamd | score, reject threshold; `True` only at `reject` |
//! | `X-Rspamd-Score: 3.40` | rspamd integrations (Haraka, Exim, mailcow) | score |
//! | `X-Spam-Score: 7.1` | SpamAssassin, amavis, Exim | score |
//! | `X-Spam-Flag: YES` | SpamAssassin, amavis | flag |
//! | `X-Spam: Yes` | rspamd proxy (`add header` action) | flag |
//! | `X-MS-Exchange-Organization-SCL: 5` | Microsoft 365 / Exchange | SCL |
//! | `X-Forefront-Antispam-Report: ...;SCL:5;SFV:SPM;...` | Microsoft 365 (EOP) | SCL, flag (`SFV`) |
//!
//! Fields are read in that order of preference: score and threshold come as
//! a pair from the first field that has a score, the flag from the first that
//! states one, and `flagged` falls back to the SCL (5 or more is spam; 9 is
//! high confidence) when no other field states it.
//!
//! # Which copy counts: the trust rule
//!
//! A sender can write these fields too. The **topmost** copy of each field is
//! taken, and further copies are counted ([`SpamVerdict::copies`]):
//! receivers that prepend their fields (amavis, milters inserting at the top,
//! Exchange's trace headers) put theirs above anything the sender wrote, and
//! filters that append at the end (rspamd's `milter_headers` and
//! SpamAssassin) delete upstream copies of the fields they write by default
//! (rspamd: `remove = 0`, i.e. all; SpamAssassin strips its own markup), so
//! their single copy is the receiver's. Exchange's header firewall renames
//! `X-Forefront-Antispam-Report` arriving from outside the organisation to
//! `...-Untrusted` and drops foreign `X-MS-Exchange-Organization-*` fields.
//! The residual risk: a receiver that writes none of these fields (Gmail)
//! leaves a sender-side copy in place, which is then read as the receiver's;
//! `source` names the field so the operator can tell.

use serde::Serialize;

/// Longest field value read, in bytes; longer values are cut (tests lists can be long).
const MAX_VALUE: usize = 16 * 1024;

/// The header field a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpamSource {
    /// `X-Spam-Status` (SpamAssassin, rspamd).
    SpamStatus,
    /// `X-Spamd-Result` (rspamd).
    SpamdResult,
    /// `X-Rspamd-Score`.
    RspamdScore,
    /// `X-Spam-Score`.
    SpamScore,
    /// `X-Spam-Flag` (SpamAssassin).
    SpamFlag,
    /// `X-Spam` (rspamd).
    Spam,
    /// `X-MS-Exchange-Organization-SCL` (Microsoft).
    ExchangeScl,
    /// `X-Forefront-Antispam-Report` (Microsoft EOP).
    ForefrontReport,
}

/// Every source, in order of preference.
const ORDER: [SpamSource; 8] = [
    SpamSource::SpamStatus,
    SpamSource::SpamdResult,
    SpamSource::RspamdScore,
    SpamSource::SpamScore,
    SpamSource::SpamFlag,
    SpamSource::Spam,
    SpamSource::ExchangeScl,
    SpamSource::ForefrontReport,
];

impl SpamSource {
    /// The field name.
    pub fn header_name(self) -> &'static str {
        match self {
            SpamSource::SpamStatus => "X-Spam-Status",
            SpamSource::SpamdResult => "X-Spamd-Result",
            SpamSource::RspamdScore => "X-Rspamd-Score",
            SpamSource::SpamScore => "X-Spam-Score",
            SpamSource::SpamFlag => "X-Spam-Flag",
            SpamSource::Spam => "X-Spam",
            SpamSource::ExchangeScl => "X-MS-Exchange-Organization-SCL",
            SpamSource::ForefrontReport => "X-Forefront-Antispam-Report",
        }
    }

    /// The source for a field name (ASCII case-insensitive), if it is one we read.
    fn from_name(name: &str) -> Option<SpamSource> {
        ORDER
            .into_iter()
            .find(|s| s.header_name().eq_ignore_ascii_case(name.trim()))
    }
}

/// What the receiver's spam filter said, from whichever fields it wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpamVerdict {
    /// The filter's score (higher is spammier).
    pub score: Option<f64>,
    /// The score at which the filter acts, from the same field as `score`
    /// (for `X-Spamd-Result`, rspamd's reject score).
    pub threshold: Option<f64>,
    /// Whether the filter called it spam.
    pub flagged: Option<bool>,
    /// Microsoft's Spam Confidence Level, -1 (bypassed) to 9.
    pub scl: Option<i8>,
    /// The field that gave the score, else the flag, else the SCL.
    pub source: SpamSource,
    /// Copies of `source` below the one read (0 normally; more hints at sender-added fields).
    pub copies: usize,
    /// Fields present but unreadable.
    pub unparseable: Vec<SpamSource>,
}

/// What one field says.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Reading {
    /// See [`SpamVerdict::score`].
    score: Option<f64>,
    /// See [`SpamVerdict::threshold`].
    threshold: Option<f64>,
    /// See [`SpamVerdict::flagged`].
    flagged: Option<bool>,
    /// See [`SpamVerdict::scl`].
    scl: Option<i8>,
}

impl Reading {
    /// Whether the field said anything at all.
    fn is_empty(&self) -> bool {
        *self == Reading::default()
    }
}

/// Reads the receiver's spam verdict from a message's header fields, given
/// top to bottom as `(name, raw value)`; `None` when no field states one.
pub fn verdict<'a, I>(headers: I) -> Option<SpamVerdict>
where
    I: IntoIterator<Item = (&'a str, &'a [u8])>,
{
    // Topmost copy of each field and how many copies there are.
    let mut first: [Option<&[u8]>; ORDER.len()] = [None; ORDER.len()];
    let mut count = [0usize; ORDER.len()];
    for (name, value) in headers {
        if let Some(source) = SpamSource::from_name(name) {
            let i = source as usize;
            count[i] += 1;
            first[i].get_or_insert(value);
        }
    }
    let mut readings: Vec<(SpamSource, Reading)> = Vec::new();
    let mut unparseable = Vec::new();
    for source in ORDER {
        let Some(value) = first[source as usize] else {
            continue;
        };
        let reading = read(source, value);
        if reading.is_empty() {
            unparseable.push(source);
        } else {
            readings.push((source, reading));
        }
    }
    let scored = readings.iter().find(|(_, r)| r.score.is_some());
    let flag = readings.iter().find(|(_, r)| r.flagged.is_some());
    let scl = readings.iter().find_map(|(_, r)| r.scl);
    let source = scored
        .or(flag)
        .or_else(|| readings.iter().find(|(_, r)| r.scl.is_some()))
        .map(|(s, _)| *s)
        .or_else(|| unparseable.first().copied())?;
    let flagged = flag
        .and_then(|(_, r)| r.flagged)
        .or_else(|| scl.map(|s| s >= 5));
    Some(SpamVerdict {
        score: scored.and_then(|(_, r)| r.score),
        threshold: scored.and_then(|(_, r)| r.threshold),
        flagged,
        scl,
        source,
        copies: count[source as usize].saturating_sub(1),
        unparseable,
    })
}

/// Reads one field's value.
fn read(source: SpamSource, raw: &[u8]) -> Reading {
    let raw = &raw[..raw.len().min(MAX_VALUE)];
    let value = String::from_utf8_lossy(raw);
    let v = value.trim();
    match source {
        SpamSource::SpamStatus => spam_status(v),
        SpamSource::SpamdResult => spamd_result(v),
        SpamSource::RspamdScore | SpamSource::SpamScore => Reading {
            score: leading_number(v),
            threshold: v
                .split_once('/')
                .and_then(|(_, t)| leading_number(t.trim_start())),
            ..Reading::default()
        },
        SpamSource::SpamFlag | SpamSource::Spam => Reading {
            flagged: yes_no(first_word(v)),
            ..Reading::default()
        },
        SpamSource::ExchangeScl => Reading {
            scl: scl(v),
            ..Reading::default()
        },
        SpamSource::ForefrontReport => forefront(v),
    }
}

/// `Yes, score=7.1 required=5.0 tests=... autolearn=no version=3.4.6`;
/// `hits=` for SpamAssassin 2.x.
fn spam_status(v: &str) -> Reading {
    let (flag, rest) = match v.split_once(',') {
        Some((flag, rest)) => (yes_no(flag.trim()), rest),
        None => (yes_no(first_word(v)), ""),
    };
    let mut r = Reading {
        flagged: flag,
        ..Reading::default()
    };
    for word in rest.split_ascii_whitespace() {
        if let Some((key, value)) = word.split_once('=') {
            match key.to_ascii_lowercase().as_str() {
                "score" | "hits" => r.score = r.score.or(number(value)),
                "required" => r.threshold = r.threshold.or(number(value)),
                _ => {}
            }
        }
    }
    if r.score.is_none() {
        r.threshold = None;
    }
    r
}

/// `default: False [3.40 / 15.00]; SYMBOL(score)[options]; ...` (rspamd).
///
/// The boolean is `True` only when the action is `reject`
/// (rspamd 3.4 `milter_headers.lua`), so `False` does not mean "not spam".
fn spamd_result(v: &str) -> Reading {
    let head = v.split(';').next().unwrap_or_default();
    let mut r = Reading::default();
    let Some((before, bracket)) = head.split_once('[') else {
        return r;
    };
    if before.to_ascii_lowercase().contains("true") {
        r.flagged = Some(true);
    }
    let inside = bracket.split(']').next().unwrap_or_default();
    let mut parts = inside.split('/');
    r.score = parts.next().and_then(|s| number(s.trim()));
    r.threshold = parts.next().and_then(|s| number(s.trim()));
    if r.score.is_none() {
        r = Reading::default();
    }
    r
}

/// `CIP:..;CTRY:..;LANG:en;SCL:1;SRV:;IPV:NLI;SFV:NSPM;...` (Microsoft EOP).
fn forefront(v: &str) -> Reading {
    let mut r = Reading::default();
    for item in v.split(';') {
        let Some((key, value)) = item.split_once(':') else {
            continue;
        };
        match key.trim().to_ascii_uppercase().as_str() {
            "SCL" => r.scl = r.scl.or(scl(value)),
            // Spam filtering verdict: spam, or marked spam / blocked by policy;
            // not spam, or allowed / skipped by policy.
            "SFV" => {
                r.flagged = r
                    .flagged
                    .or(match value.trim().to_ascii_uppercase().as_str() {
                        "SPM" | "SKS" | "SKB" | "BLK" => Some(true),
                        "NSPM" | "SFE" | "SKA" | "SKN" | "SKI" => Some(false),
                        _ => None,
                    })
            }
            _ => {}
        }
    }
    r
}

/// A Spam Confidence Level, -1..=9.
fn scl(v: &str) -> Option<i8> {
    let n: i8 = v.trim().parse().ok()?;
    (-1..=9).contains(&n).then_some(n)
}

/// `Yes`/`No` (also `True`/`False`), case-insensitive.
fn yes_no(word: &str) -> Option<bool> {
    match word.to_ascii_lowercase().as_str() {
        "yes" | "true" => Some(true),
        "no" | "false" => Some(false),
        _ => None,
    }
}

/// The first white-space separated word.
fn first_word(v: &str) -> &str {
    v.split_ascii_whitespace().next().unwrap_or_default()
}

/// A decimal number at the start of `v` (`7.1 (+++++++)` → 7.1).
fn leading_number(v: &str) -> Option<f64> {
    let end = v
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+')))
        .unwrap_or(v.len());
    number(&v[..end])
}

/// A plain decimal number: `[+-]digits[.digits]`; no exponents, `inf` or `NaN`.
fn number(s: &str) -> Option<f64> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let ok = !int.is_empty()
        && digits.len() <= 24
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| s.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::testkit::{fixture, headers};

    fn of(name: &str) -> Option<SpamVerdict> {
        let raw = fixture(name);
        let hs = headers(&raw);
        verdict(hs.iter().map(|(n, v)| (n.as_str(), *v)))
    }

    fn one(name: &str, value: &str) -> Option<SpamVerdict> {
        verdict([(name, value.as_bytes())])
    }

    #[test]
    fn rspamd_stack_ham() {
        let v = of("rspamd.eml").unwrap();
        assert_eq!(v.source, SpamSource::SpamStatus);
        assert_eq!(v.score, Some(-0.10));
        assert_eq!(v.threshold, None);
        assert_eq!(v.flagged, Some(false));
        assert_eq!(v.scl, None);
        assert_eq!(v.copies, 0);
        assert!(v.unparseable.is_empty());
    }

    #[test]
    fn rspamd_stack_spam() {
        let v = of("rspamd-spam.eml").unwrap();
        assert_eq!((v.score, v.flagged), (Some(7.20), Some(true)));
    }

    #[test]
    fn spamd_result_alone_gives_score_and_reject_threshold() {
        let v = one(
            "X-Spamd-Result",
            "default: False [3.40 / 15.00];\n\tR_SPF_ALLOW(-0.20)[+ip4:127.0.0.2]",
        )
        .unwrap();
        assert_eq!(
            (v.score, v.threshold, v.flagged),
            (Some(3.40), Some(15.0), None)
        );
        let v = one("X-Spamd-Result", "default: True [16.10 / 15.00]").unwrap();
        assert_eq!(v.flagged, Some(true));
    }

    #[test]
    fn spamassassin_forms() {
        let v = one(
            "x-spam-status",
            "Yes, score=7.1 required=5.0 tests=BAYES_99,\n\tURIBL_BLACK autolearn=no version=3.4.6",
        )
        .unwrap();
        assert_eq!(
            (v.score, v.threshold, v.flagged),
            (Some(7.1), Some(5.0), Some(true))
        );
        let v = one("X-Spam-Status", "No, hits=-2.6 required=5.0").unwrap();
        assert_eq!((v.score, v.flagged), (Some(-2.6), Some(false)));
        let v = one("X-Spam-Score", "7.1 (+++++++)").unwrap();
        assert_eq!((v.score, v.source), (Some(7.1), SpamSource::SpamScore));
        let v = one("X-Rspamd-Score", "0.09 / 15.00").unwrap();
        assert_eq!((v.score, v.threshold), (Some(0.09), Some(15.0)));
        let v = one("X-Spam", "Yes").unwrap();
        assert_eq!(
            (v.flagged, v.score, v.source),
            (Some(true), None, SpamSource::Spam)
        );
    }

    #[test]
    fn microsoft_scl_and_forefront() {
        let v = of("outlook.eml").unwrap();
        assert_eq!(v.scl, Some(1), "from X-MS-Exchange-Organization-SCL");
        assert_eq!(v.flagged, Some(false), "SFV:NSPM");
        assert_eq!(v.source, SpamSource::ForefrontReport, "the flag's field");
        assert_eq!(v.score, None);
        let v = one(
            "X-Forefront-Antispam-Report",
            "CIP:192.0.2.1;SCL:6;SRV:;SFV:SPM;",
        )
        .unwrap();
        assert_eq!((v.scl, v.flagged), (Some(6), Some(true)));
        assert_eq!(v.source, SpamSource::ForefrontReport);
        let v = one("X-MS-Exchange-Organization-SCL", "9").unwrap();
        assert_eq!(v.flagged, Some(true), "SCL 9 is high confidence spam");
        let v = one("X-MS-Exchange-Organization-SCL", "-1").unwrap();
        assert_eq!((v.scl, v.flagged), (Some(-1), Some(false)));
    }

    #[test]
    fn topmost_copy_wins_over_sender_copy() {
        let v = of("forged.eml").unwrap();
        assert_eq!(v.source, SpamSource::SpamStatus);
        assert_eq!(
            (v.score, v.threshold, v.flagged),
            (Some(9.1), Some(5.0), Some(true))
        );
        assert_eq!(v.copies, 1);
    }

    #[test]
    fn nothing_stated() {
        assert_eq!(of("gmail.eml"), None);
        assert_eq!(of("no-ar.eml"), None);
    }

    #[test]
    fn hostile_values_are_unparseable() {
        let v = of("hostile.eml").unwrap();
        assert_eq!(v.score, None);
        assert_eq!(v.flagged, Some(true), "X-Spam-Status says Yes");
        assert_eq!(v.scl, None);
        assert_eq!(v.source, SpamSource::SpamStatus);
        assert_eq!(
            v.unparseable,
            [
                SpamSource::SpamdResult,
                SpamSource::RspamdScore,
                SpamSource::SpamScore,
                SpamSource::Spam,
                SpamSource::ExchangeScl,
                SpamSource::ForefrontReport,
            ]
        );
        for bad in ["NaN", "inf", "1e308", "--3.4", "", ".5", "1.2.3", "+"] {
            assert_eq!(number(bad), None, "{bad}");
        }
        let v = one("X-Spam-Score", "garbage").unwrap();
        assert_eq!(v.unparseable, [SpamSource::SpamScore]);
        assert_eq!(v.score, None);
    }
}
