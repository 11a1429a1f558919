//! DMARC (RFC 7489): find the policy record (with the organizational-domain
//! fallback), parse and lint it, and check that external report destinations
//! authorized the reports. No I/O.
//!
//! # Why not `mail_auth::dmarc::Dmarc`
//!
//! mail-auth 0.13.3's `Dmarc` has no `pct` field at all (needed for
//! `dmarc.pct_partial`), copies `p` into `sp` when `sp` is absent (so "sp
//! weaker than p" cannot be told from "no sp"), drops report URIs that are not
//! `mailto:` or have no scheme (`rua=reports@example.com` parses as "no rua"
//! without error), silently keeps the last of two `p=` tags (RFC 6376 §3.2
//! makes the record invalid), and discards unknown tags. Each of these is
//! shown by `mail_auth_loses_what_the_linter_needs` below. So the record is
//! parsed here with [`tag_list`]; the tests check that
//! mail-auth reads the same `p` from every record this parser accepts.

use std::fmt;

use super::domain::{self, normalize, organizational_domain, PublicSuffix};
use super::tag_list::{self, NameCase, TagError};
use super::{lossy, want, CheckResult, DnsAnswer, DnsFacts, Finding, Query, Selection, Severity};
use crate::text::excerpt;

/// At most this many distinct external report domains are checked.
pub const MAX_EXTERNAL_DESTINATIONS: usize = 10;

/// `p=`, `sp=` (and DMARCbis `np=`) values, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Policy {
    None,
    Quarantine,
    Reject,
}

impl Policy {
    /// The value as written in records and the `policy` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::None => "none",
            Policy::Quarantine => "quarantine",
            Policy::Reject => "reject",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "none" => Some(Policy::None),
            "quarantine" => Some(Policy::Quarantine),
            "reject" => Some(Policy::Reject),
            _ => None,
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `adkim=` / `aspf=` (RFC 7489 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alignment {
    Relaxed,
    Strict,
}

/// One `rua=`/`ruf=` destination: `dmarc-uri = URI [ "!" 1*DIGIT [ "k" / "m" / "g" / "t" ] ]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportUri {
    /// The URI as written, without the size limit.
    pub uri: String,
    /// The `!size` limit as written (e.g. `10m`).
    pub max_size: Option<String>,
    /// Lower-case scheme (`mailto`, `https`, …).
    pub scheme: String,
    /// For `mailto:`, the percent-decoded mailbox domain, normalised.
    pub mail_domain: Option<String>,
}

/// Why a tag is invalid. Any of these is a `dmarc.syntax_error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DmarcError {
    /// The tag-list itself is broken (RFC 7489 §6.4 uses RFC 6376 §3.2).
    #[error("{0}")]
    Tag(#[from] TagError),
    /// No `p=`: RFC 7489 §6.6.3 step 6 then reads the record as p=none if
    /// `rua` has a valid URI, and ignores it otherwise.
    #[error("the required p= tag is missing")]
    MissingPolicy,
    /// A known tag with a value outside its grammar.
    #[error("{tag}={value} is invalid; expected {expected}")]
    InvalidValue {
        tag: &'static str,
        value: String,
        expected: &'static str,
    },
    /// A `rua`/`ruf` entry that is not a usable URI.
    #[error("{tag}= entry `{uri}` is invalid: {why}")]
    InvalidUri {
        tag: &'static str,
        uri: String,
        why: &'static str,
    },
}

/// The input is not a DMARC record: it does not start with `v=DMARC1`
/// (RFC 7489 §6.6.3 step 4 discards such records).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a DMARC record: it does not start with v=DMARC1")]
pub struct NotDmarc;

/// A parsed record. Tags that are invalid are `None` here and listed in `errors`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DmarcRecord {
    /// The record as received (lossy UTF-8).
    pub text: String,
    pub p: Option<Policy>,
    pub sp: Option<Policy>,
    /// DMARCbis non-existent subdomain policy.
    pub np: Option<Policy>,
    pub pct: Option<u8>,
    pub adkim: Option<Alignment>,
    pub aspf: Option<Alignment>,
    /// `rua=` present (even if every entry was invalid).
    pub has_rua_tag: bool,
    pub rua: Vec<ReportUri>,
    pub ruf: Vec<ReportUri>,
    pub ri: Option<u32>,
    pub fo: Option<String>,
    pub rf: Option<String>,
    pub unknown_tags: Vec<String>,
    pub errors: Vec<DmarcError>,
    /// The version is `DMARC1` in another case (`v=dmarc1`): accepted by
    /// mail-auth and most receivers, but RFC 7489 §6.4 spells it `%x44 %x4d
    /// %x41 %x52 %x43 %x31`, case-sensitive.
    pub version_case_differs: bool,
}

impl DmarcRecord {
    /// The policy for mail from the policy domain itself.
    pub fn domain_policy(&self) -> Option<Policy> {
        self.p
    }

    /// The policy for subdomains: `sp=`, defaulting to `p=` (RFC 7489 §6.3).
    pub fn subdomain_policy(&self) -> Option<Policy> {
        self.sp.or(self.p)
    }

    /// True when `rua` has at least one `mailto:` URI with a valid mailbox.
    pub fn has_usable_rua(&self) -> bool {
        self.rua.iter().any(|u| u.mail_domain.is_some())
    }
}

/// `_dmarc.<domain>` (RFC 7489 §6.1).
pub fn record_name(domain: &str) -> String {
    format!("_dmarc.{}", normalize(domain))
}

/// True when a TXT record starts with the tag `v=DMARC1` (RFC 7489 §6.6.3
/// step 4). The value is compared ignoring case, as mail-auth and most
/// receivers do; [`DmarcRecord::version_case_differs`] reports the difference.
pub fn is_dmarc_record(record: &[u8]) -> bool {
    let first = record.split(|b| *b == b';').next().unwrap_or_default();
    let Some(eq) = first.iter().position(|b| *b == b'=') else {
        return false;
    };
    let (name, value) = first.split_at(eq);
    let value = value.get(1..).unwrap_or_default();
    trim_wsp(name).eq_ignore_ascii_case(b"v") && trim_wsp(value).eq_ignore_ascii_case(b"DMARC1")
}

fn trim_wsp(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    s.get(start..end).unwrap_or_default()
}

/// Picks the DMARC record out of the TXT records at `_dmarc.<domain>`.
pub fn select(records: &[Vec<u8>]) -> Selection<'_> {
    Selection::by(records, is_dmarc_record)
}

/// Parses a DMARC record (RFC 7489 §6.4):
///
/// ```text
/// dmarc-record = dmarc-version dmarc-sep [dmarc-request] [dmarc-sep dmarc-srequest]
///                [dmarc-sep dmarc-auri] [dmarc-sep dmarc-furi] [dmarc-sep dmarc-adkim]
///                [dmarc-sep dmarc-aspf] [dmarc-sep dmarc-ainterval] [dmarc-sep dmarc-fo]
///                [dmarc-sep dmarc-rfmt] [dmarc-sep dmarc-percent] [dmarc-sep]
/// ```
pub fn parse(record: &[u8]) -> Result<DmarcRecord, NotDmarc> {
    if !is_dmarc_record(record) {
        return Err(NotDmarc);
    }
    let (tags, tag_errors) = tag_list::parse(record, NameCase::Insensitive);
    let mut r = DmarcRecord {
        text: lossy(record),
        errors: tag_errors.into_iter().map(DmarcError::from).collect(),
        ..DmarcRecord::default()
    };
    for tag in &tags {
        let value = tag.value.as_str();
        let name = tag.name.to_ascii_lowercase();
        let invalid = |tag: &'static str, expected: &'static str| DmarcError::InvalidValue {
            tag,
            value: excerpt(value, 40),
            expected,
        };
        match name.as_str() {
            "v" => r.version_case_differs = value != "DMARC1",
            "p" | "sp" | "np" => match Policy::parse(value) {
                Some(p) => match name.as_str() {
                    "p" => r.p = Some(p),
                    "sp" => r.sp = Some(p),
                    _ => r.np = Some(p),
                },
                None => r.errors.push(invalid(
                    match name.as_str() {
                        "p" => "p",
                        "sp" => "sp",
                        _ => "np",
                    },
                    "none, quarantine or reject",
                )),
            },
            // dmarc-percent = "pct" *WSP "=" *WSP 1*3DIGIT, 0..=100
            "pct" => match value.parse::<u8>() {
                Ok(n)
                    if n <= 100
                        && value.len() <= 3
                        && value.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    r.pct = Some(n)
                }
                _ => r
                    .errors
                    .push(invalid("pct", "a whole number from 0 to 100")),
            },
            "adkim" | "aspf" => {
                let a = match value.to_ascii_lowercase().as_str() {
                    "r" => Some(Alignment::Relaxed),
                    "s" => Some(Alignment::Strict),
                    _ => None,
                };
                match (a, name.as_str()) {
                    (Some(a), "adkim") => r.adkim = Some(a),
                    (Some(a), _) => r.aspf = Some(a),
                    (None, "adkim") => r.errors.push(invalid("adkim", "r or s")),
                    (None, _) => r.errors.push(invalid("aspf", "r or s")),
                }
            }
            // dmarc-ainterval = "ri" *WSP "=" *WSP 1*DIGIT (a 32-bit unsigned integer)
            "ri" => match value.parse::<u32>() {
                Ok(n) if value.bytes().all(|b| b.is_ascii_digit()) => r.ri = Some(n),
                _ => r.errors.push(invalid("ri", "a number of seconds")),
            },
            // dmarc-fo = ( "0" / "1" / "d" / "s" ) *( ":" ( "0" / "1" / "d" / "s" ) )
            "fo" => {
                let ok = value.split(':').all(|o| {
                    matches!(
                        o.trim().to_ascii_lowercase().as_str(),
                        "0" | "1" | "d" | "s"
                    )
                });
                if ok {
                    r.fo = Some(value.to_owned());
                } else {
                    r.errors
                        .push(invalid("fo", "0, 1, d or s, separated by colons"));
                }
            }
            // dmarc-rfmt = Keyword *( ":" Keyword ); only "afrf" is registered.
            "rf" => {
                let ok = value.split(':').all(|k| {
                    let k = k.trim();
                    !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
                if ok {
                    r.rf = Some(value.to_owned());
                } else {
                    r.errors.push(invalid("rf", "report formats such as afrf"));
                }
            }
            "rua" | "ruf" => {
                let tag_name = if name == "rua" { "rua" } else { "ruf" };
                let (uris, errors) = parse_uri_list(tag_name, value);
                if tag_name == "rua" {
                    r.has_rua_tag = true;
                    r.rua = uris;
                } else {
                    r.ruf = uris;
                }
                r.errors.extend(errors);
            }
            // DMARCbis tags: accepted, not linted.
            "psd" => {
                if !matches!(value.to_ascii_lowercase().as_str(), "y" | "n" | "u") {
                    r.errors.push(invalid("psd", "y, n or u"));
                }
            }
            "t" => {
                if !matches!(value.to_ascii_lowercase().as_str(), "y" | "n") {
                    r.errors.push(invalid("t", "y or n"));
                }
            }
            _ => r.unknown_tags.push(excerpt(&tag.name, 30)),
        }
    }
    if r.p.is_none()
        && !r
            .errors
            .iter()
            .any(|e| matches!(e, DmarcError::InvalidValue { tag: "p", .. }))
    {
        r.errors.push(DmarcError::MissingPolicy);
    }
    Ok(r)
}

/// `dmarc-auri = "rua" *WSP "=" *WSP dmarc-uri *(*WSP "," *WSP dmarc-uri)`
fn parse_uri_list(tag: &'static str, value: &str) -> (Vec<ReportUri>, Vec<DmarcError>) {
    let mut uris = Vec::new();
    let mut errors = Vec::new();
    for item in value.split(',') {
        let item = item.trim();
        match parse_uri(item) {
            Ok(u) => uris.push(u),
            Err(why) => errors.push(DmarcError::InvalidUri {
                tag,
                uri: excerpt(item, 60),
                why,
            }),
        }
    }
    (uris, errors)
}

fn parse_uri(item: &str) -> Result<ReportUri, &'static str> {
    if item.is_empty() {
        return Err("empty entry");
    }
    // "!" inside a URI must be percent-encoded, so the first "!" starts the size.
    let (uri, max_size) = match item.split_once('!') {
        Some((u, size)) => {
            let digits = size.trim_end_matches(|c: char| "kKmMgGtT".contains(c));
            let unit_len = size.len() - digits.len();
            if digits.is_empty() || unit_len > 1 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err("the size after ! must be digits with an optional k, m, g or t");
            }
            (u, Some(size.to_owned()))
        }
        None => (item, None),
    };
    let Some((scheme, rest)) = uri.split_once(':') else {
        return Err("not a URI; write mailto:address");
    };
    let scheme_ok = scheme
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic())
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !scheme_ok {
        return Err("not a URI; write mailto:address");
    }
    let scheme = scheme.to_ascii_lowercase();
    let mut mail_domain = None;
    if scheme == "mailto" {
        let addr = rest.split('?').next().unwrap_or_default();
        let addr = percent_decode(addr).ok_or("bad %-escape in the address")?;
        let (local, dom) = addr
            .rsplit_once('@')
            .ok_or("the mailto: address has no @")?;
        if local.is_empty() {
            return Err("the mailto: address has an empty local part");
        }
        if !domain::is_host_name(dom) {
            return Err("the mailto: address has an invalid domain");
        }
        mail_domain = Some(normalize(dom));
    }
    Ok(ReportUri {
        uri: uri.to_owned(),
        max_size,
        scheme,
        mail_domain,
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

// ---------------------------------------------------------------- lints ---

/// Lints a record on its own. `inherited` is true when the record was found at
/// the organizational domain rather than at the domain being checked, so the
/// subdomain policy is the one in force.
pub fn lint_record(record: &DmarcRecord, policy_domain: &str, inherited: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    for e in record.errors.iter().take(5) {
        let hint = match e {
            DmarcError::MissingPolicy => {
                "add p=none, p=quarantine or p=reject right after v=DMARC1"
            }
            DmarcError::InvalidUri { .. } => {
                "write each destination as mailto:address, separated by commas"
            }
            _ => "fix the tag; receivers may ignore the whole record (RFC 7489 §6.6.3)",
        };
        let msg = match e {
            DmarcError::MissingPolicy if record.has_usable_rua() => format!(
                "the DMARC record of {policy_domain}: {e}; receivers treat it as p=none (RFC 7489 §6.6.3)"
            ),
            DmarcError::MissingPolicy => format!(
                "the DMARC record of {policy_domain}: {e}; with no valid rua either, receivers ignore the record (RFC 7489 §6.6.3)"
            ),
            _ => format!("the DMARC record of {policy_domain}: {e}"),
        };
        out.push(Finding::new("dmarc.syntax_error", msg, hint));
    }
    if record.errors.len() > 5 {
        out.push(Finding::new(
            "dmarc.syntax_error",
            format!(
                "the DMARC record of {policy_domain} has {} more invalid tags",
                record.errors.len() - 5
            ),
            "fix the tags; receivers may ignore the whole record (RFC 7489 §6.6.3)",
        ));
    }
    if record.version_case_differs {
        out.push(
            Finding::new(
                "dmarc.syntax_error",
                format!("the DMARC record of {policy_domain} does not spell the version exactly `v=DMARC1`; strict receivers discard it"),
                "write v=DMARC1 in upper case",
            )
            .with_severity(Severity::Warning),
        );
    }

    let in_force = if inherited {
        record.subdomain_policy()
    } else {
        record.domain_policy()
    };
    if in_force == Some(Policy::None) {
        out.push(Finding::new(
            "dmarc.policy_none",
            if inherited {
                format!("the policy for subdomains of {policy_domain} is none: mail failing DMARC is delivered as usual")
            } else {
                format!("the DMARC policy of {policy_domain} is p=none: mail failing DMARC is delivered as usual")
            },
            "once the aggregate reports show your senders pass, move to p=quarantine, then p=reject",
        ));
    }
    // RFC 7489 §6.3 pct: the policy applies to this percentage of failing mail.
    if let Some(pct) = record.pct {
        if pct < 100 && in_force.is_some_and(|p| p != Policy::None) {
            out.push(Finding::new(
                "dmarc.pct_partial",
                format!("pct={pct}: the policy of {policy_domain} applies to only {pct}% of failing mail"),
                "raise pct to 100 (or remove it) once reports look clean",
            ));
        }
    }
    if !record.has_usable_rua() {
        out.push(Finding::new(
            "dmarc.no_rua",
            if record.has_rua_tag {
                format!("the DMARC record of {policy_domain} has no usable mailto: rua destination, so no aggregate reports arrive")
            } else {
                format!("the DMARC record of {policy_domain} has no rua=, so no aggregate reports arrive")
            },
            "add rua=mailto:dmarc-reports@<your domain> to see who sends as you",
        ));
    }
    if let (Some(p), Some(sp)) = (record.p, record.sp) {
        if sp < p {
            out.push(Finding::new(
                "dmarc.subdomain_policy_weaker",
                format!("sp={sp} is weaker than p={p}: spoofed mail from subdomains of {policy_domain} gets the weaker policy"),
                "set sp to the same value as p, or remove sp",
            ));
        }
    }
    // RFC 7489 §6.3: unknown tags MUST be ignored.
    if !record.unknown_tags.is_empty() {
        out.push(Finding::new(
            "dmarc.unknown_tag",
            format!(
                "the DMARC record of {policy_domain} has unknown tags, which receivers ignore: {}",
                record.unknown_tags.join(", ")
            ),
            "check them for typos (rua, ruf, sp, pct, adkim, aspf, fo, ri, rf)",
        ));
    }
    out
}

// ------------------------------------------------- external destinations ---

/// A report destination outside the policy domain's organizational domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalDestination {
    /// `rua` or `ruf`.
    pub tag: &'static str,
    pub uri: String,
    /// The mailbox domain of the URI.
    pub domain: String,
    /// `<policy-domain>._report._dmarc.<destination-domain>` (RFC 7489 §7.1).
    pub verify_name: String,
}

/// The `rua`/`ruf` destinations of `record` whose organizational domain
/// differs from that of `policy_domain`, with the TXT name that must
/// authorize them (RFC 7489 §7.1). At most [`MAX_EXTERNAL_DESTINATIONS`]
/// distinct destination domains.
pub fn external_destinations(
    policy_domain: &str,
    record: &DmarcRecord,
    psl: &dyn PublicSuffix,
) -> Vec<ExternalDestination> {
    let policy_domain = normalize(policy_domain);
    let own_org =
        organizational_domain(&policy_domain, psl).unwrap_or_else(|| policy_domain.clone());
    let mut out: Vec<ExternalDestination> = Vec::new();
    let tagged = record
        .rua
        .iter()
        .map(|u| ("rua", u))
        .chain(record.ruf.iter().map(|u| ("ruf", u)));
    for (tag, uri) in tagged {
        let Some(dest) = &uri.mail_domain else {
            continue;
        };
        let dest_org = organizational_domain(dest, psl).unwrap_or_else(|| dest.clone());
        if dest_org == own_org || out.iter().any(|d| d.domain == *dest) {
            continue;
        }
        if out.len() >= MAX_EXTERNAL_DESTINATIONS {
            break;
        }
        let verify_name = format!("{policy_domain}._report._dmarc.{dest}");
        if !domain::is_valid_name(&verify_name) {
            continue;
        }
        out.push(ExternalDestination {
            tag,
            uri: uri.uri.clone(),
            domain: dest.clone(),
            verify_name,
        });
    }
    out
}

/// Judges the authorization records of external destinations (RFC 7489
/// §7.1): authorized when the TXT answer at `verify_name` holds a record
/// starting with `v=DMARC1`.
pub fn judge_external(
    policy_domain: &str,
    dests: &[ExternalDestination],
    facts: &DnsFacts,
) -> (Vec<Finding>, Vec<Query>) {
    let mut findings = Vec::new();
    let mut pending = Vec::new();
    for d in dests {
        let unauthorized = |why: &str| {
            Finding::new(
                "dmarc.external_rua_unauthorized",
                format!(
                    "{} destination {} is outside {policy_domain} and {} has not authorized it ({why}), so receivers drop those reports",
                    d.tag, d.uri, d.domain
                ),
                format!(
                    "ask the operator of {} to publish TXT `v=DMARC1` at {}, or use an address in your own domain",
                    d.domain, d.verify_name
                ),
            )
        };
        match facts.txt(&d.verify_name) {
            None => {
                want(&mut pending, facts, Query::txt(&d.verify_name));
                findings.push(dns_error(&d.verify_name, "not looked up"));
            }
            Some(DnsAnswer::Unknown(why)) => findings.push(dns_error(&d.verify_name, why)),
            Some(DnsAnswer::NotFound) => {
                findings.push(unauthorized(&format!("no TXT record at {}", d.verify_name)))
            }
            Some(DnsAnswer::Found(records)) => {
                if !records.iter().any(|r| is_dmarc_record(r)) {
                    findings.push(unauthorized(&format!(
                        "the TXT records at {} do not start with v=DMARC1",
                        d.verify_name
                    )));
                }
            }
        }
    }
    (findings, pending)
}

// ---------------------------------------------------------------- check ---

/// The result of the DMARC check of one domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcReport {
    /// What `check --format json` prints.
    pub result: CheckResult,
    /// The record in force, when exactly one was found.
    pub record: Option<DmarcRecord>,
    /// Where the record was found: the domain or its organizational domain.
    pub policy_domain: Option<String>,
    /// The policy in force for the checked domain (`mailcanary_dmarc_policy`):
    /// `p`, or `sp` (defaulting to `p`) when inherited from the organizational
    /// domain. `None` when unknown, when there is no record, or when the
    /// record has syntax errors (receivers may discard it).
    pub policy: Option<Policy>,
}

fn dns_error(name: &str, why: &str) -> Finding {
    Finding::new(
        "dmarc.dns_error",
        format!(
            "could not get the TXT records of {name}: {}",
            excerpt(why, 120)
        ),
        "check the resolver and the domain's name servers; the result is unknown, not missing",
    )
}

/// The answers [`check`] still needs, in the order to fetch them.
pub fn pending_queries(domain: &str, psl: &dyn PublicSuffix, facts: &DnsFacts) -> Vec<Query> {
    analyze(domain, psl, facts).1
}

/// Judges the DMARC of `domain` from pre-fetched answers: policy discovery
/// (RFC 7489 §6.6.3: `_dmarc.<domain>`, then `_dmarc.<organizational domain>`
/// only when the first has no record — never after a failed lookup), the
/// record's lints and the external destinations' authorization.
pub fn check(domain: &str, psl: &dyn PublicSuffix, facts: &DnsFacts) -> DmarcReport {
    analyze(domain, psl, facts).0
}

enum Lookup<'a> {
    /// Stop: the finding (or nothing, if pending) says why.
    Stop,
    NoRecord,
    Record(&'a [u8]),
}

fn lookup<'a>(
    name: &str,
    facts: &'a DnsFacts,
    pending: &mut Vec<Query>,
    findings: &mut Vec<Finding>,
) -> Lookup<'a> {
    match facts.txt(name) {
        None => {
            want(pending, facts, Query::txt(name));
            findings.push(dns_error(name, "not looked up"));
            Lookup::Stop
        }
        Some(DnsAnswer::Unknown(why)) => {
            findings.push(dns_error(name, why));
            Lookup::Stop
        }
        Some(DnsAnswer::NotFound) => Lookup::NoRecord,
        Some(DnsAnswer::Found(records)) => match select(records) {
            Selection::None => Lookup::NoRecord,
            Selection::One(r) => Lookup::Record(r),
            Selection::Multiple(n) => {
                // RFC 7489 §6.6.3 step 5: several records → no DMARC processing.
                findings.push(Finding::new(
                    "dmarc.multiple_records",
                    format!("{name} has {n} records starting with v=DMARC1; receivers apply no DMARC policy"),
                    "keep exactly one v=DMARC1 record",
                ));
                Lookup::Stop
            }
        },
    }
}

fn near_miss(facts: &DnsFacts, name: &str) -> Option<String> {
    let Some(DnsAnswer::Found(records)) = facts.txt(name) else {
        return None;
    };
    records
        .iter()
        .find(|r| lossy(r).to_ascii_lowercase().contains("dmarc"))
        .map(|r| excerpt(&lossy(r), 60))
}

fn analyze(domain: &str, psl: &dyn PublicSuffix, facts: &DnsFacts) -> (DmarcReport, Vec<Query>) {
    let domain = normalize(domain);
    let mut findings = Vec::new();
    let mut pending = Vec::new();
    let mut report = DmarcReport {
        result: CheckResult::new("dmarc", None, vec![]),
        record: None,
        policy_domain: None,
        policy: None,
    };
    let own_name = record_name(&domain);
    let org = organizational_domain(&domain, psl).filter(|o| *o != domain);

    let found = match lookup(&own_name, facts, &mut pending, &mut findings) {
        Lookup::Stop => None,
        Lookup::Record(r) => Some((domain.clone(), r, false)),
        Lookup::NoRecord => match &org {
            None => {
                findings.push(missing(&domain, &[&own_name], near_miss(facts, &own_name)));
                None
            }
            Some(org) => {
                let org_name = record_name(org);
                match lookup(&org_name, facts, &mut pending, &mut findings) {
                    Lookup::Stop => None,
                    Lookup::Record(r) => Some((org.clone(), r, true)),
                    Lookup::NoRecord => {
                        let hint =
                            near_miss(facts, &own_name).or_else(|| near_miss(facts, &org_name));
                        findings.push(missing(&domain, &[&own_name, &org_name], hint));
                        None
                    }
                }
            }
        },
    };

    if let Some((policy_domain, bytes, inherited)) = found {
        if let Ok(record) = parse(bytes) {
            if inherited {
                findings.push(Finding::new(
                    "dmarc.org_domain_policy",
                    format!(
                        "{domain} has no DMARC record of its own; the record of its organizational domain {policy_domain} applies ({})",
                        match record.subdomain_policy() {
                            Some(p) => format!("subdomain policy {p}"),
                            None => "no valid policy".to_owned(),
                        }
                    ),
                    format!("publish a record at {own_name} if {domain} needs its own policy"),
                ));
            }
            findings.extend(lint_record(&record, &policy_domain, inherited));
            let dests = external_destinations(&policy_domain, &record, psl);
            let (ext, more) = judge_external(&policy_domain, &dests, facts);
            findings.extend(ext);
            for q in more {
                want(&mut pending, facts, q);
            }
            // A record with errors may be discarded by receivers: export no
            // policy rather than one that might not be applied.
            report.policy = if !record.errors.is_empty() {
                None
            } else if inherited {
                record.subdomain_policy()
            } else {
                record.domain_policy()
            };
            report.policy_domain = Some(policy_domain);
            report.result.record = Some(record.text.clone());
            report.record = Some(record);
        }
    }
    report.result = CheckResult::new("dmarc", report.result.record.take(), findings);
    (report, pending)
}

fn missing(domain: &str, names: &[&str], near_miss: Option<String>) -> Finding {
    let looked = names.join(" nor at ");
    // Publish at the organizational domain when there is one: it covers subdomains.
    let target = names.last().copied().unwrap_or_default();
    let report_domain = target.strip_prefix("_dmarc.").unwrap_or(domain);
    match near_miss {
        None => Finding::new(
            "dmarc.missing",
            format!("{domain} has no DMARC record: no TXT record starting with v=DMARC1 at {looked}"),
            format!("publish TXT `v=DMARC1; p=none; rua=mailto:dmarc-reports@{report_domain}` at {target}, then tighten p"),
        ),
        Some(r) => Finding::new(
            "dmarc.missing",
            format!("{domain} has no DMARC record at {looked}; the TXT record `{r}` mentions DMARC but does not start with v=DMARC1"),
            "start the record with `v=DMARC1;`",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::domain::{LastLabel, SuffixList};
    use super::super::testkit;
    use super::*;

    fn rec(s: &str) -> DmarcRecord {
        parse(s.as_bytes()).expect("dmarc record")
    }

    #[test]
    fn detection_and_selection() {
        assert!(is_dmarc_record(b"v=DMARC1; p=none"));
        assert!(is_dmarc_record(b" v = DMARC1 ;p=none"));
        assert!(is_dmarc_record(b"v=dmarc1"));
        assert!(!is_dmarc_record(b"v=DMARC1p=none"));
        assert!(!is_dmarc_record(b"p=none; v=DMARC1"));
        assert!(!is_dmarc_record(b"v=DMARC2; p=none"));
        assert!(!is_dmarc_record(b""));
        let recs = vec![b"v=DMARC1; p=none".to_vec(), b"v=DMARC1; p=reject".to_vec()];
        assert_eq!(select(&recs), Selection::Multiple(2));
        assert_eq!(parse(b"p=none"), Err(NotDmarc));
    }

    #[test]
    fn parses_all_tags() {
        let r = rec("v=DMARC1; p=Reject; sp=quarantine; np=reject; pct=50; adkim=s; aspf=r; \
                     rua=mailto:agg@example.com!10m,mailto:x%40y@reports.example.net, https://r.example/x; \
                     ruf=mailto:forensic@example.com; ri=3600; fo=0:d; rf=afrf; psd=n; t=n; zz=1");
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.p, Some(Policy::Reject));
        assert_eq!(r.sp, Some(Policy::Quarantine));
        assert_eq!(r.np, Some(Policy::Reject));
        assert_eq!(r.pct, Some(50));
        assert_eq!(r.adkim, Some(Alignment::Strict));
        assert_eq!(r.aspf, Some(Alignment::Relaxed));
        assert_eq!(r.ri, Some(3600));
        assert_eq!(r.rua.len(), 3);
        assert_eq!(r.rua[0].max_size.as_deref(), Some("10m"));
        assert_eq!(r.rua[0].mail_domain.as_deref(), Some("example.com"));
        assert_eq!(r.rua[1].mail_domain.as_deref(), Some("reports.example.net"));
        assert_eq!(r.rua[2].scheme, "https");
        assert_eq!(r.rua[2].mail_domain, None);
        assert_eq!(r.unknown_tags, ["zz"]);
        assert!(!r.version_case_differs);
    }

    #[test]
    fn tag_errors() {
        let cases: &[(&str, &str)] = &[
            ("v=DMARC1; p=rejectt", "p=rejectt is invalid"),
            ("v=DMARC1; p=none; pct=101", "pct=101"),
            ("v=DMARC1; p=none; pct=-1", "pct=-1"),
            ("v=DMARC1; p=none; adkim=x", "adkim=x"),
            ("v=DMARC1; p=none; ri=soon", "ri=soon"),
            ("v=DMARC1; p=none; fo=2", "fo=2"),
            ("v=DMARC1; p=none; rf=", "rf="),
            ("v=DMARC1; p=none; sp=all", "sp=all"),
            ("v=DMARC1; p=none; rua=reports@example.com", "not a URI"),
            (
                "v=DMARC1; p=none; rua=mailto:reports.example.com",
                "has no @",
            ),
            ("v=DMARC1; p=none; rua=mailto:a@b.com!big", "size after !"),
            (
                "v=DMARC1; p=none; rua=mailto:a@b.com,,mailto:c@d.com",
                "empty entry",
            ),
            (
                "v=DMARC1; p=none; rua=mailto:a@bad_domain!.com",
                "size after !",
            ),
            ("v=DMARC1; p=none; rua=mailto:a%zz@b.com", "%-escape"),
            ("v=DMARC1; p=none; p=reject", "appears more than once"),
            ("v=DMARC1; P=none; p=reject", "appears more than once"),
            ("v=DMARC1; rua=mailto:a@b.com", "p= tag is missing"),
            ("v=DMARC1; p=none; bad tag=1", "invalid tag name"),
        ];
        for (text, want) in cases {
            let r = rec(text);
            let all: Vec<String> = r.errors.iter().map(ToString::to_string).collect();
            assert!(all.iter().any(|e| e.contains(want)), "{text}: {all:?}");
        }
    }

    #[test]
    fn syntax_findings_are_capped() {
        let r = rec(
            "v=DMARC1; p=x; sp=x; pct=x; adkim=x; aspf=x; ri=x; fo=x; rua=mailto:a@example.com",
        );
        assert_eq!(r.errors.len(), 7);
        let f = lint_record(&r, "example.com", false);
        let syntax: Vec<&Finding> = f.iter().filter(|f| f.id == "dmarc.syntax_error").collect();
        assert_eq!(syntax.len(), 6);
        assert!(syntax[5].message.contains("2 more invalid tags"));
    }

    #[test]
    fn policies_in_force() {
        let r = rec("v=DMARC1; p=reject");
        assert_eq!(r.subdomain_policy(), Some(Policy::Reject));
        let r = rec("v=DMARC1; p=reject; sp=none");
        assert_eq!(r.subdomain_policy(), Some(Policy::None));
        assert!(Policy::None < Policy::Quarantine && Policy::Quarantine < Policy::Reject);
    }

    #[test]
    fn external_destination_names() {
        let r = rec("v=DMARC1; p=none; rua=mailto:a@example.com,mailto:b@Reports.Vendor.example,mailto:c@reports.vendor.example; ruf=mailto:d@mail.example.com,mailto:e@other.example");
        let d = external_destinations("Example.com", &r, &LastLabel);
        let names: Vec<&str> = d.iter().map(|d| d.verify_name.as_str()).collect();
        assert_eq!(
            names,
            [
                "example.com._report._dmarc.reports.vendor.example",
                "example.com._report._dmarc.other.example"
            ]
        );
        assert_eq!(d[1].tag, "ruf");
        // With a real suffix list, a sibling under a public suffix is external.
        let r = rec("v=DMARC1; p=none; rua=mailto:a@other.co.uk");
        assert_eq!(
            external_destinations("example.co.uk", &r, &LastLabel).len(),
            0
        );
        let psl = SuffixList(vec!["co.uk".into()]);
        assert_eq!(external_destinations("example.co.uk", &r, &psl).len(), 1);
    }

    #[test]
    fn discovery_falls_back_only_on_no_record() {
        let psl = LastLabel;
        let mut facts = DnsFacts::default();
        assert_eq!(
            pending_queries("mail.example.com", &psl, &facts),
            [Query::txt("_dmarc.mail.example.com")]
        );
        facts.insert_txt(
            "_dmarc.mail.example.com",
            DnsAnswer::Unknown("timeout".into()),
        );
        assert!(pending_queries("mail.example.com", &psl, &facts).is_empty());
        let report = check("mail.example.com", &psl, &facts);
        assert_eq!(report.result.status, super::super::Status::Unknown);
        assert_eq!(report.policy, None);

        facts.insert_txt("_dmarc.mail.example.com", DnsAnswer::NotFound);
        assert_eq!(
            pending_queries("mail.example.com", &psl, &facts),
            [Query::txt("_dmarc.example.com")]
        );
        facts.insert_txt(
            "_dmarc.example.com",
            DnsAnswer::Found(vec![
                b"v=DMARC1; p=reject; sp=quarantine; rua=mailto:d@example.com".to_vec(),
            ]),
        );
        assert!(pending_queries("mail.example.com", &psl, &facts).is_empty());
        let report = check("mail.example.com", &psl, &facts);
        assert_eq!(report.policy, Some(Policy::Quarantine));
        assert_eq!(report.policy_domain.as_deref(), Some("example.com"));
        assert_eq!(report.result.status, super::super::Status::Warning);
    }

    #[test]
    fn fixtures() {
        testkit::run_fixture_dir("dmarc", &[], |case| {
            let psl = SuffixList(case.suffixes.clone());
            let facts = testkit::resolve_until_done(&case.facts, |f| {
                pending_queries(&case.domain, &psl, f)
            });
            let report = check(&case.domain, &psl, &facts);
            let values = vec![
                (
                    "policy",
                    report.policy.map_or("-", Policy::as_str).to_owned(),
                ),
                (
                    "policy-domain",
                    report.policy_domain.clone().unwrap_or_else(|| "-".into()),
                ),
            ];
            (report.result, values)
        });
    }

    #[test]
    fn never_panics_on_random_or_mutated_input() {
        let seeds = testkit::fixture_records("dmarc");
        testkit::fuzz(
            20_000,
            &seeds,
            b"v=DMARC1;p=nonequarantinereject,!@%:mailto0123456789kmgt srua",
            |input| {
                if let Ok(r) = parse(input) {
                    let _ = lint_record(&r, "example.com", false);
                    let _ = lint_record(&r, "example.com", true);
                    let d = external_destinations("example.com", &r, &LastLabel);
                    let _ = judge_external("example.com", &d, &DnsFacts::default());
                }
                let _ = select(&[input.to_vec()]);
            },
        );
    }

    /// Evidence for the module comment.
    #[test]
    fn mail_auth_loses_what_the_linter_needs() {
        use mail_auth::common::parse::TxtRecordParser;
        use mail_auth::dmarc::{Dmarc, Policy as MaPolicy};
        // No sp: mail-auth reports sp = p, so "sp weaker than p" is invisible.
        let d = Dmarc::parse(b"v=DMARC1; p=reject").unwrap();
        assert_eq!(d.sp, MaPolicy::Reject);
        // A rua without a scheme is dropped without error.
        let d = Dmarc::parse(b"v=DMARC1; p=none; rua=reports@example.com").unwrap();
        assert!(d.rua.is_empty());
        assert!(!rec("v=DMARC1; p=none; rua=reports@example.com")
            .errors
            .is_empty());
        // Duplicate p: the last wins instead of the record being invalid.
        let d = Dmarc::parse(b"v=DMARC1; p=reject; p=none").unwrap();
        assert_eq!(d.p, MaPolicy::None);
        // pct has no field at all; here it is parsed.
        assert_eq!(rec("v=DMARC1; p=reject; pct=10").pct, Some(10));
    }

    /// mail-auth (the project's evaluator) reads the same p from every record
    /// this parser accepts without errors.
    #[test]
    fn accepted_records_agree_with_mail_auth() {
        use mail_auth::common::parse::TxtRecordParser;
        use mail_auth::dmarc::{Dmarc, Policy as MaPolicy};
        for text in testkit::fixture_records("dmarc") {
            let Ok(ours) = parse(&text) else { continue };
            if !ours.errors.is_empty() {
                continue;
            }
            let theirs = Dmarc::parse(&text)
                .unwrap_or_else(|e| panic!("mail-auth rejects {}: {e:?}", lossy(&text)));
            let p = match theirs.p {
                MaPolicy::None => Some(Policy::None),
                MaPolicy::Quarantine => Some(Policy::Quarantine),
                MaPolicy::Reject => Some(Policy::Reject),
                MaPolicy::Unspecified => None,
            };
            assert_eq!(ours.p, p, "{}", lossy(&text));
        }
    }
}
