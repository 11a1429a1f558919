//! The Received chain: the hops a message took and how long each one took.
//!
//! ```text
//! Received: FROM domain BY domain [VIA link] [WITH protocol] [ID id] [FOR path]
//!           ";" date-time                      ; RFC 5321 §4.4, RFC 5322 §3.6.7
//! ```
//!
//! Each MTA prepends its `Received` field, so the topmost is the newest:
//! [`route`] reverses them into transit order. mail-parser's own `Received`
//! parser reads from/by/with/id/TLS; two things it loses are recovered here
//! from the raw value: a `with` word outside the IANA Mail Transmission Types
//! (Exchange's `mapi`), and obsolete text zones in the date (`PST`, RFC 5322
//! §4.3), for which the date after the last `;` is re-read with mail-parser's
//! RFC 5322 date parser.
//!
//! Times come from each host's own clock, so a later hop can carry an earlier
//! time: such a delay is clamped to zero and flagged ([`Delay::Skewed`]).
//! Fields below the receiver's were written by the sender's side and can say
//! anything; they are shown, not trusted.

use std::net::IpAddr;

use mail_parser::parsers::MessageStream;
use mail_parser::{DateTime, HeaderValue, Host, Protocol, Received, TlsVersion};
use serde::Serialize;

/// Most hops kept; beyond it the oldest (bottom) fields are dropped.
pub const MAX_HOPS: usize = 64;
/// Longest host name or id kept, in bytes (a DNS name is at most 255 octets).
const MAX_HOST: usize = 255;
/// Longest `with` word kept.
const MAX_PROTOCOL: usize = 32;

/// The time from one hop to the next, by the hosts' own clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Delay {
    /// The first hop: nothing before it to compare with.
    First,
    /// Whole seconds after the previous dated hop.
    Seconds(u64),
    /// The clock went backwards by `behind` seconds (skew between hosts); counted as zero.
    Skewed {
        /// How far the later hop's time lies before the earlier one's.
        behind: u64,
    },
    /// This hop, or every hop before it, has no readable date.
    Unknown,
}

impl Delay {
    /// The delay from `earlier` to `later` (Unix seconds), clamped at zero.
    fn between(earlier: i64, later: i64) -> Delay {
        let d = later.saturating_sub(earlier);
        if d >= 0 {
            Delay::Seconds(d.unsigned_abs())
        } else {
            Delay::Skewed {
                behind: d.unsigned_abs(),
            }
        }
    }

    /// Seconds, with skew counted as 0; `None` for [`Delay::First`] and [`Delay::Unknown`].
    pub fn seconds(&self) -> Option<u64> {
        match self {
            Delay::Seconds(s) => Some(*s),
            Delay::Skewed { .. } => Some(0),
            Delay::First | Delay::Unknown => None,
        }
    }
}

/// One hop: one `Received` field (RFC 5321 §4.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hop {
    /// The sending host as the receiving one recorded it (EHLO name or address literal).
    pub from: Option<String>,
    /// The sending host's address, when recorded.
    pub from_ip: Option<IpAddr>,
    /// The receiving host.
    pub by: Option<String>,
    /// The protocol: an IANA Mail Transmission Type (`ESMTPS`, `LMTP`, RFC 3848) or the word as written.
    pub with: Option<String>,
    /// The receiving host's queue id.
    pub id: Option<String>,
    /// The TLS version, when recorded (`TLSv1.3`).
    pub tls: Option<&'static str>,
    /// When this host received the message, Unix seconds; `None` if the date is missing or unreadable.
    pub time: Option<i64>,
    /// Time since the previous hop; set by [`route`].
    pub delay: Delay,
}

/// The chain of hops in transit order (oldest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// Hops, oldest first.
    pub hops: Vec<Hop>,
    /// From the first dated hop to the last dated hop.
    pub total: Delay,
    /// Whether older hops were dropped beyond [`MAX_HOPS`].
    pub truncated: bool,
}

/// Parses one `Received` value (the bytes after `Received:`) with mail-parser,
/// plus the fallbacks described in the module doc.
pub fn hop(value: &[u8]) -> Hop {
    match MessageStream::new(value).parse_received() {
        HeaderValue::Received(r) => hop_with(Some(&r), value),
        _ => hop_with(None, value),
    }
}

/// Builds a hop from mail-parser's reading of the field (if any) and the raw value.
pub(crate) fn hop_with(parsed: Option<&Received<'_>>, value: &[u8]) -> Hop {
    let mut hop = Hop {
        from: None,
        from_ip: None,
        by: None,
        with: None,
        id: None,
        tls: None,
        time: None,
        delay: Delay::Unknown,
    };
    if let Some(r) = parsed {
        hop.from = r.from.as_ref().map(host);
        hop.from_ip = r.from_ip.or(match r.from {
            Some(Host::IpAddr(ip)) => Some(ip),
            _ => None,
        });
        hop.by = r.by.as_ref().map(host);
        hop.with = r.with.map(|p| protocol_name(p).to_string());
        hop.id =
            r.id.as_deref()
                .map(|id| crate::text::bounded(id, MAX_HOST).to_string());
        hop.tls = r.tls_version.map(tls_name);
    }
    if hop.with.is_none() {
        hop.with = with_word(value);
    }
    hop.time = date_after_semicolon(value).or_else(|| {
        parsed
            .and_then(|r| r.date)
            .filter(DateTime::is_valid)
            .map(|d| d.to_timestamp())
    });
    hop
}

/// Orders hops given top to bottom (newest first, as in the message) into
/// transit order and fills in the delays.
pub fn route<I: IntoIterator<Item = Hop>>(newest_first: I) -> Route {
    let mut hops: Vec<Hop> = Vec::new();
    let mut truncated = false;
    for hop in newest_first {
        if hops.len() == MAX_HOPS {
            truncated = true;
            break;
        }
        hops.push(hop);
    }
    hops.reverse();
    let mut previous: Option<i64> = None;
    for (i, hop) in hops.iter_mut().enumerate() {
        hop.delay = match (hop.time, previous) {
            (Some(t), Some(p)) => Delay::between(p, t),
            (_, None) if i == 0 => Delay::First,
            _ => Delay::Unknown,
        };
        if hop.time.is_some() {
            previous = hop.time;
        }
    }
    let first = hops.iter().find_map(|h| h.time);
    let last = hops.iter().rev().find_map(|h| h.time);
    let total = match (first, last) {
        (Some(f), Some(l)) => Delay::between(f, l),
        _ => Delay::Unknown,
    };
    Route {
        hops,
        total,
        truncated,
    }
}

/// A host as text, bounded.
fn host(h: &Host<'_>) -> String {
    match h {
        Host::Name(n) => crate::text::bounded(n, MAX_HOST).to_string(),
        Host::IpAddr(ip) => ip.to_string(),
    }
}

/// The IANA Mail Transmission Types name (RFC 3848) of a protocol.
fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::SMTP => "SMTP",
        Protocol::ESMTP => "ESMTP",
        Protocol::ESMTPA => "ESMTPA",
        Protocol::ESMTPS => "ESMTPS",
        Protocol::ESMTPSA => "ESMTPSA",
        Protocol::LMTP => "LMTP",
        Protocol::LMTPA => "LMTPA",
        Protocol::LMTPS => "LMTPS",
        Protocol::LMTPSA => "LMTPSA",
        Protocol::MMS => "MMS",
        Protocol::UTF8SMTP => "UTF8SMTP",
        Protocol::UTF8SMTPA => "UTF8SMTPA",
        Protocol::UTF8SMTPS => "UTF8SMTPS",
        Protocol::UTF8SMTPSA => "UTF8SMTPSA",
        Protocol::UTF8LMTP => "UTF8LMTP",
        Protocol::UTF8LMTPA => "UTF8LMTPA",
        Protocol::UTF8LMTPS => "UTF8LMTPS",
        Protocol::UTF8LMTPSA => "UTF8LMTPSA",
        Protocol::HTTP => "HTTP",
        Protocol::HTTPS => "HTTPS",
        Protocol::IMAP => "IMAP",
        Protocol::POP3 => "POP3",
        Protocol::Local => "local",
    }
}

/// A TLS version's usual name.
fn tls_name(v: TlsVersion) -> &'static str {
    match v {
        TlsVersion::SSLv2 => "SSLv2",
        TlsVersion::SSLv3 => "SSLv3",
        TlsVersion::TLSv1_0 => "TLSv1.0",
        TlsVersion::TLSv1_1 => "TLSv1.1",
        TlsVersion::TLSv1_2 => "TLSv1.2",
        TlsVersion::TLSv1_3 => "TLSv1.3",
        TlsVersion::DTLSv1_0 => "DTLSv1.0",
        TlsVersion::DTLSv1_2 => "DTLSv1.2",
        TlsVersion::DTLSv1_3 => "DTLSv1.3",
    }
}

/// Splits a value into words outside comments, quotes and address literals,
/// calling `f(word, byte offset of the word's end)`.
fn top_level_words(value: &[u8], mut f: impl FnMut(&[u8], usize) -> bool) {
    let mut depth = 0usize;
    let mut quoted = false;
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i < value.len() {
        let b = value[i];
        let boundary = quoted
            || depth > 0
            || matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'(' | b')' | b'"' | b';');
        if boundary {
            if let Some(s) = start.take() {
                if !f(&value[s..i], i) {
                    return;
                }
            }
        } else if start.is_none() {
            start = Some(i);
        }
        let top_level_semicolon = b == b';' && !quoted && depth == 0;
        if top_level_semicolon && !f(b";", i + 1) {
            return;
        }
        match b {
            b'\\' if quoted || depth > 0 => i += 1,
            b'"' if depth == 0 => quoted = !quoted,
            b'(' if !quoted => depth += 1,
            b')' if !quoted => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    if let Some(s) = start {
        f(&value[s..], value.len());
    }
}

/// The word after a top-level `with`, if it looks like a protocol name.
fn with_word(value: &[u8]) -> Option<String> {
    let mut after_with = false;
    let mut found = None;
    top_level_words(value, |word, _| {
        if after_with {
            let ok = word.len() <= MAX_PROTOCOL
                && word
                    .iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
            if ok {
                found = Some(String::from_utf8_lossy(word).into_owned());
            }
            return false;
        }
        after_with = word.eq_ignore_ascii_case(b"with");
        true
    });
    found
}

/// The date-time after the last top-level `;`, read as an RFC 5322 date
/// (obsolete zones included, §4.3), as Unix seconds.
fn date_after_semicolon(value: &[u8]) -> Option<i64> {
    let mut last = None;
    top_level_words(value, |word, end| {
        if word == b";" {
            last = Some(end);
        }
        true
    });
    let tail = value.get(last?..)?;
    if tail.len() > 256 {
        return None;
    }
    let unfolded: String = String::from_utf8_lossy(tail)
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect();
    DateTime::parse_rfc822(unfolded.trim())
        .filter(DateTime::is_valid)
        .map(|d| d.to_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::testkit::{fixture, header_values};

    fn route_of(name: &str) -> Route {
        let raw = fixture(name);
        route(header_values(&raw, "Received").into_iter().map(hop))
    }

    /// 2025-03-03T10:00:00Z.
    const T0: i64 = 1_740_996_000;

    #[test]
    fn gmail_chain() {
        let r = route_of("gmail.eml");
        assert_eq!(r.hops.len(), 3);
        let h = &r.hops[0];
        assert_eq!(h.from.as_deref(), Some("app1.internal"));
        assert_eq!(h.from_ip, Some("10.0.0.5".parse().unwrap()));
        assert_eq!(h.by.as_deref(), Some("mail.sender.example"));
        assert_eq!(h.with.as_deref(), Some("ESMTPSA"));
        assert_eq!(h.time, Some(T0));
        assert_eq!(h.delay, Delay::First);
        let h = &r.hops[1];
        assert_eq!(h.by.as_deref(), Some("mx.google.com"));
        assert_eq!(h.from_ip, Some("203.0.113.25".parse().unwrap()));
        assert_eq!(h.with.as_deref(), Some("ESMTPS"));
        assert_eq!(h.tls, Some("TLSv1.3"));
        assert_eq!(h.time, Some(T0 + 1), "-0800 applied");
        assert_eq!(h.delay, Delay::Seconds(1));
        assert_eq!(r.hops[2].with.as_deref(), Some("SMTP"));
        assert_eq!(r.hops[2].delay, Delay::Seconds(2));
        assert_eq!(r.total, Delay::Seconds(3));
        assert!(!r.truncated);
    }

    #[test]
    fn outlook_chain_with_folded_dates() {
        let r = route_of("outlook.eml");
        assert_eq!(r.hops.len(), 5);
        assert_eq!(
            r.hops[1].by.as_deref(),
            Some("BN2PEPF000044A9.mail.protection.outlook.com")
        );
        assert_eq!(r.hops[1].from_ip, Some("203.0.113.25".parse().unwrap()));
        assert_eq!(r.hops[1].with.as_deref(), Some("SMTP"));
        assert_eq!(r.hops[4].with.as_deref(), Some("HTTPS"));
        let times: Vec<_> = r.hops.iter().map(|h| h.time.unwrap() - T0).collect();
        assert_eq!(times, [0, 1, 2, 3, 4]);
        assert_eq!(r.total.seconds(), Some(4));
    }

    #[test]
    fn rspamd_stack_chain() {
        let r = route_of("rspamd.eml");
        assert_eq!(r.hops.len(), 2);
        assert_eq!(r.hops[0].by.as_deref(), Some("mx.seed.test"));
        assert_eq!(r.hops[0].from_ip, Some("127.0.0.2".parse().unwrap()));
        assert_eq!(r.hops[0].id.as_deref(), Some("4Z6Lq02NkzzB1"));
        assert_eq!(r.hops[1].with.as_deref(), Some("LMTP"));
        assert_eq!(r.hops[1].delay, Delay::Seconds(1));
    }

    #[test]
    fn clock_skew_is_clamped_and_flagged() {
        let r = route_of("no-ar.eml");
        assert_eq!(r.hops.len(), 2);
        assert_eq!(r.hops[1].by.as_deref(), Some("mx23.163.com"));
        assert_eq!(r.hops[1].delay, Delay::Skewed { behind: 18 });
        assert_eq!(r.hops[1].delay.seconds(), Some(0));
        assert_eq!(r.total, Delay::Skewed { behind: 18 });
    }

    #[test]
    fn unknown_with_word_and_obsolete_zone() {
        let h = hop(b" from MW4PR.namprd.prod.outlook.com by CH3PR.prod.outlook.com with mapi id 15.20.8489.25; Mon, 3 Mar 2025 02:00:00 PST\r\n");
        assert_eq!(h.with.as_deref(), Some("mapi"));
        assert_eq!(h.time, Some(T0), "PST is -0800");
        let h = hop(b" (qmail 12345 invoked by uid 89); 3 Mar 2025 10:00:00 -0000");
        assert_eq!(h.time, Some(T0));
        assert_eq!(h.with, None);
    }

    #[test]
    fn undated_hops_make_delays_unknown() {
        let dated = |t: i64| Hop {
            from: None,
            from_ip: None,
            by: None,
            with: None,
            id: None,
            tls: None,
            time: Some(t),
            delay: Delay::Unknown,
        };
        let undated = Hop {
            time: None,
            ..dated(0)
        };
        // Newest first: dated(30), undated, dated(10), undated(oldest).
        let r = route([dated(30), undated.clone(), dated(10), undated]);
        let delays: Vec<_> = r.hops.iter().map(|h| h.delay).collect();
        assert_eq!(
            delays,
            [
                Delay::First,
                Delay::Unknown,
                Delay::Unknown,
                Delay::Seconds(20)
            ]
        );
        assert_eq!(r.total, Delay::Seconds(20));
        assert_eq!(route([]).total, Delay::Unknown);
    }

    #[test]
    fn many_hops_keep_the_newest() {
        let values: Vec<Vec<u8>> = (0..200)
            .map(|i| format!(" from h{i} by h{}; 3 Mar 2025 10:00:00 +0000", i + 1).into_bytes())
            .collect();
        let r = route(values.iter().map(|v| hop(v)));
        assert_eq!(r.hops.len(), MAX_HOPS);
        assert!(r.truncated);
        assert_eq!(r.hops[MAX_HOPS - 1].by.as_deref(), Some("h1"));
    }

    #[test]
    fn hostile_fixture() {
        let r = route_of("hostile.eml");
        assert_eq!(r.hops.len(), 4);
        assert!(r.hops.iter().filter(|h| h.time.is_some()).count() <= 1);
        assert_eq!(r.total.seconds().unwrap_or(0), 0);
    }
}
