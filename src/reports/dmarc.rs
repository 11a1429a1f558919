//! DMARC aggregate reports: the XML of RFC 7489 appendix C, its older draft
//! form and DMARCbis (draft-ietf-dmarc-aggregate-reporting), read as
//! receivers really write them.
//!
//! Lenient where reporters differ and the meaning is clear: element names and
//! values in any ASCII case, namespace prefixes, unknown elements (skipped with
//! their subtree), an empty `<reason/>`, the old draft's `<identities>`,
//! invalid UTF-8 (replaced, or Latin-1 when the declaration says so). Strict
//! where a wrong guess would miscount: the XML must be well formed, `count`
//! and the dates must be numbers, the report id and policy domain must be
//! there. Entities other than the five predefined ones and character
//! references are refused, never expanded; a DOCTYPE is ignored.

use std::borrow::Cow;
use std::net::IpAddr;

use quick_xml::events::{BytesText, Event};
use quick_xml::Reader;

use super::reporter::contact_domain;
use super::{sum, vocabulary, Limits, ReportError, Reporter};

vocabulary! {
    /// A DMARC-aligned result in `policy_evaluated` (RFC 7489 appendix C,
    /// `DMARCResultType`).
    pub enum Evaluated fallback Unknown {
        /// The identifier passed and is aligned.
        Pass = "pass",
        /// Not passed, or not aligned.
        Fail = "fail",
        /// Missing or an unknown value.
        Unknown = "unknown",
    }
}

vocabulary! {
    /// What the receiver did with the messages (`ActionDispositionType`;
    /// DMARCbis adds `pass`).
    pub enum Disposition fallback Unknown {
        /// Delivered, no action.
        None = "none",
        /// Delivered to spam or quarantined.
        Quarantine = "quarantine",
        /// Refused.
        Reject = "reject",
        /// DMARCbis: passed.
        Pass = "pass",
        /// Missing or an unknown value.
        Unknown = "unknown",
    }
}

vocabulary! {
    /// A DKIM result in `auth_results` (`DKIMResultType`).
    pub enum DkimResult fallback Unknown {
        /// No signature.
        None = "none",
        /// Verified.
        Pass = "pass",
        /// Did not verify.
        Fail = "fail",
        /// Refused by local policy.
        Policy = "policy",
        /// Neutral.
        Neutral = "neutral",
        /// A temporary error (a key lookup timed out).
        TempError = "temperror",
        /// A permanent error (a broken key record).
        PermError = "permerror",
        /// Missing or an unknown value.
        Unknown = "unknown",
    }
}

vocabulary! {
    /// An SPF result in `auth_results` (`SPFResultType`, RFC 7208 §2.6).
    pub enum SpfResult fallback Unknown {
        /// No SPF record.
        None = "none",
        /// Neutral (`?all`).
        Neutral = "neutral",
        /// Authorized.
        Pass = "pass",
        /// Not authorized (old drafts: `hardfail`).
        Fail = "fail",
        /// Weakly not authorized (`~all`).
        SoftFail = "softfail",
        /// A temporary DNS error.
        TempError = "temperror",
        /// A broken SPF record.
        PermError = "permerror",
        /// Missing or an unknown value.
        Unknown = "unknown",
    }
}

vocabulary! {
    /// Which identity SPF checked (`SPFDomainScope`).
    pub enum SpfScope fallback Unknown {
        /// The envelope sender (MAIL FROM).
        Mfrom = "mfrom",
        /// The HELO name.
        Helo = "helo",
        /// Missing or an unknown value.
        Unknown = "unknown",
    }
}

vocabulary! {
    /// Why the receiver overrode the policy (`PolicyOverrideType`).
    pub enum OverrideType fallback Other {
        /// Forwarded.
        Forwarded = "forwarded",
        /// Sampled out by `pct`.
        SampledOut = "sampled_out",
        /// A trusted forwarder.
        TrustedForwarder = "trusted_forwarder",
        /// A mailing list.
        MailingList = "mailing_list",
        /// The receiver's local policy.
        LocalPolicy = "local_policy",
        /// DMARCbis: the domain's `t=y` test mode.
        PolicyTestMode = "policy_test_mode",
        /// Anything else.
        Other = "other",
    }
}

vocabulary! {
    /// A published policy (`p`, `sp`, `np`).
    pub enum RequestedPolicy fallback Unknown {
        /// Monitor only.
        None = "none",
        /// Quarantine failing mail.
        Quarantine = "quarantine",
        /// Reject failing mail.
        Reject = "reject",
        /// Missing or an unknown value.
        Unknown = "unknown",
    }
}

vocabulary! {
    /// Identifier alignment mode (`adkim`, `aspf`); RFC 7489 §6.3 defaults to relaxed.
    pub enum Alignment fallback Relaxed {
        /// Organizational domains match.
        Relaxed = "r",
        /// Exact match.
        Strict = "s",
    }
}

/// The policy the receiver found (`policy_published`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyPublished {
    /// The domain whose policy was applied.
    pub domain: String,
    /// DKIM alignment mode.
    pub adkim: Alignment,
    /// SPF alignment mode.
    pub aspf: Alignment,
    /// The policy.
    pub p: RequestedPolicy,
    /// The subdomain policy, when published.
    pub sp: Option<RequestedPolicy>,
    /// DMARCbis: the non-existent-subdomain policy.
    pub np: Option<RequestedPolicy>,
    /// RFC 7489 `pct` (gone in DMARCbis).
    pub pct: Option<u8>,
    /// DMARCbis `testing` (`t=y`).
    pub testing: bool,
}

/// One DKIM result in a record's `auth_results`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimAuth {
    /// The signing domain (`d=`).
    pub domain: String,
    /// The selector, when given.
    pub selector: Option<String>,
    /// The result.
    pub result: DkimResult,
}

/// One SPF result in a record's `auth_results`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpfAuth {
    /// The checked domain.
    pub domain: String,
    /// Which identity.
    pub scope: SpfScope,
    /// The result.
    pub result: SpfResult,
}

/// A policy override reason (`reason`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideReason {
    /// Its type.
    pub kind: OverrideType,
    /// The receiver's comment, when given.
    pub comment: Option<String>,
}

/// One row of a report: messages from one source with one outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The sending IP; `None` when missing or not an address.
    pub source_ip: Option<IpAddr>,
    /// How many messages.
    pub count: u64,
    /// What the receiver did.
    pub disposition: Disposition,
    /// DMARC-aligned DKIM.
    pub dkim: Evaluated,
    /// DMARC-aligned SPF.
    pub spf: Evaluated,
    /// Override reasons.
    pub reasons: Vec<OverrideReason>,
    /// RFC5322.From domain.
    pub header_from: String,
    /// RFC5321.MailFrom domain, when given.
    pub envelope_from: Option<String>,
    /// The recipient domain, when given.
    pub envelope_to: Option<String>,
    /// DKIM results, as evaluated before alignment.
    pub dkim_results: Vec<DkimAuth>,
    /// SPF results, as evaluated before alignment.
    pub spf_results: Vec<SpfAuth>,
}

impl Record {
    /// RFC 7489 §6.6.2: a message passes DMARC when aligned DKIM or aligned SPF passed.
    pub fn dmarc_pass(&self) -> bool {
        self.dkim == Evaluated::Pass || self.spf == Evaluated::Pass
    }
}

/// A DMARC aggregate report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateReport {
    /// The schema version (`version`), when given.
    pub version: Option<String>,
    /// The reporting organization.
    pub org_name: String,
    /// The reporter's contact address.
    pub email: String,
    /// The reporter's report id.
    pub report_id: String,
    /// Start of the period, seconds since the epoch (UTC).
    pub begin: i64,
    /// End of the period, seconds since the epoch (UTC).
    pub end: i64,
    /// Errors the reporter listed.
    pub errors: Vec<String>,
    /// The receiver, from the table of major ones.
    pub reporter: Reporter,
    /// The policy the receiver applied.
    pub policy: PolicyPublished,
    /// The rows.
    pub records: Vec<Record>,
}

impl AggregateReport {
    /// Messages in all records.
    pub fn messages(&self) -> u64 {
        sum(self.records.iter().map(|r| r.count))
    }

    /// Messages whose aligned DKIM or SPF passed.
    pub fn dmarc_pass(&self) -> u64 {
        sum(self
            .records
            .iter()
            .filter(|r| r.dmarc_pass())
            .map(|r| r.count))
    }

    /// Messages that failed DMARC.
    pub fn dmarc_fail(&self) -> u64 {
        self.messages().saturating_sub(self.dmarc_pass())
    }
}

/// Reads a DMARC aggregate report from its XML.
pub fn parse(bytes: &[u8], limits: &Limits) -> Result<AggregateReport, ReportError> {
    let text = decode(bytes);
    let mut xml = Xml::new(&text);
    xml.root()?;
    let mut version = None;
    let mut meta = None;
    let mut policy = None;
    let mut records = Vec::new();
    while let Some(tag) = xml.next_child()? {
        match tag {
            Tag::Version => version = Some(xml.text()?),
            Tag::ReportMetadata => meta = Some(metadata(&mut xml)?),
            Tag::PolicyPublished => policy = Some(policy_published(&mut xml)?),
            Tag::Record => {
                if records.len() >= limits.max_records {
                    return Err(ReportError::TooManyRecords {
                        limit: limits.max_records,
                    });
                }
                records.push(record(&mut xml)?);
            }
            _ => xml.skip()?,
        }
    }
    let meta = meta.ok_or(ReportError::Missing("report_metadata"))?;
    let policy = policy.ok_or(ReportError::Missing("policy_published"))?;
    if meta.report_id.is_empty() {
        return Err(ReportError::Missing("report_metadata/report_id"));
    }
    if policy.domain.is_empty() {
        return Err(ReportError::Missing("policy_published/domain"));
    }
    let (begin, end) = meta
        .range
        .ok_or(ReportError::Missing("report_metadata/date_range"))?;
    let reporter = Reporter::identify(&meta.org_name, &meta.email);
    let org_name = if meta.org_name.is_empty() {
        organization_of(&meta.email)
    } else {
        meta.org_name
    };
    Ok(AggregateReport {
        version: version.filter(|v| !v.is_empty()),
        org_name,
        email: meta.email,
        report_id: meta.report_id,
        begin,
        end,
        errors: meta.errors,
        reporter,
        policy,
        records,
    })
}

/// Some reporters leave `<org_name>` empty; the organizational domain
/// (RFC 7489 section 3.2, by the Public Suffix List) of their contact address
/// (`email`, required by appendix C) still names the organization.
fn organization_of(contact: &str) -> String {
    contact_domain(contact)
        .map(|host| psl::domain_str(&host).map_or_else(|| host.clone(), str::to_owned))
        .unwrap_or_default()
}

#[derive(Default)]
struct Metadata {
    org_name: String,
    email: String,
    report_id: String,
    range: Option<(i64, i64)>,
    errors: Vec<String>,
}

fn metadata(xml: &mut Xml) -> Result<Metadata, ReportError> {
    let mut m = Metadata::default();
    while let Some(tag) = xml.next_child()? {
        match tag {
            Tag::OrgName => m.org_name = xml.text()?,
            Tag::Email => m.email = xml.text()?,
            Tag::ReportId => m.report_id = xml.text()?,
            Tag::Error => {
                let e = xml.text()?;
                if !e.is_empty() {
                    m.errors.push(e);
                }
            }
            Tag::DateRange => {
                let (mut begin, mut end) = (None, None);
                while let Some(tag) = xml.next_child()? {
                    match tag {
                        Tag::Begin => begin = Some(timestamp("date_range/begin", &xml.text()?)?),
                        Tag::End => end = Some(timestamp("date_range/end", &xml.text()?)?),
                        _ => xml.skip()?,
                    }
                }
                m.range = Some((
                    begin.ok_or(ReportError::Missing("date_range/begin"))?,
                    end.ok_or(ReportError::Missing("date_range/end"))?,
                ));
            }
            _ => xml.skip()?,
        }
    }
    Ok(m)
}

/// Seconds since the epoch; a few reporters write `1700000000.0`.
fn timestamp(field: &'static str, s: &str) -> Result<i64, ReportError> {
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 => Ok(f as i64),
        _ => Err(ReportError::bad_value(field, s)),
    }
}

fn policy_published(xml: &mut Xml) -> Result<PolicyPublished, ReportError> {
    let mut p = PolicyPublished {
        domain: String::new(),
        adkim: Alignment::Relaxed,
        aspf: Alignment::Relaxed,
        p: RequestedPolicy::Unknown,
        sp: None,
        np: None,
        pct: None,
        testing: false,
    };
    while let Some(tag) = xml.next_child()? {
        match tag {
            Tag::Domain => p.domain = xml.text()?.to_ascii_lowercase(),
            Tag::Adkim => p.adkim = Alignment::parse(first_letter(&xml.text()?)),
            Tag::Aspf => p.aspf = Alignment::parse(first_letter(&xml.text()?)),
            Tag::P => p.p = RequestedPolicy::parse(&xml.text()?),
            Tag::Sp => p.sp = Some(RequestedPolicy::parse(&xml.text()?)),
            Tag::Np => p.np = Some(RequestedPolicy::parse(&xml.text()?)),
            Tag::Pct => p.pct = xml.text()?.parse::<u8>().ok().filter(|n| *n <= 100),
            Tag::Testing => p.testing = xml.text()?.eq_ignore_ascii_case("y"),
            _ => xml.skip()?,
        }
    }
    Ok(p)
}

/// `relaxed` and `r` alike.
fn first_letter(s: &str) -> &str {
    s.get(..1).unwrap_or("")
}

fn record(xml: &mut Xml) -> Result<Record, ReportError> {
    let mut r = Record {
        source_ip: None,
        count: 0,
        disposition: Disposition::Unknown,
        dkim: Evaluated::Unknown,
        spf: Evaluated::Unknown,
        reasons: Vec::new(),
        header_from: String::new(),
        envelope_from: None,
        envelope_to: None,
        dkim_results: Vec::new(),
        spf_results: Vec::new(),
    };
    let mut count = None;
    while let Some(tag) = xml.next_child()? {
        match tag {
            Tag::Row => {
                while let Some(tag) = xml.next_child()? {
                    match tag {
                        Tag::SourceIp => r.source_ip = ip(&xml.text()?),
                        Tag::Count => {
                            let s = xml.text()?;
                            count = Some(
                                s.parse::<u64>()
                                    .map_err(|_| ReportError::bad_value("record/row/count", &s))?,
                            );
                        }
                        Tag::PolicyEvaluated => policy_evaluated(xml, &mut r)?,
                        _ => xml.skip()?,
                    }
                }
            }
            // `identities` is the old draft's name (draft-kucherawy-dmarc-base).
            Tag::Identifiers | Tag::Identities => {
                while let Some(tag) = xml.next_child()? {
                    match tag {
                        Tag::HeaderFrom => r.header_from = xml.text()?.to_ascii_lowercase(),
                        Tag::EnvelopeFrom => r.envelope_from = non_empty(xml.text()?),
                        Tag::EnvelopeTo => r.envelope_to = non_empty(xml.text()?),
                        _ => xml.skip()?,
                    }
                }
            }
            Tag::AuthResults => auth_results(xml, &mut r)?,
            _ => xml.skip()?,
        }
    }
    r.count = count.ok_or(ReportError::Missing("record/row/count"))?;
    Ok(r)
}

fn ip(s: &str) -> Option<IpAddr> {
    s.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then(|| s.to_ascii_lowercase())
}

fn policy_evaluated(xml: &mut Xml, r: &mut Record) -> Result<(), ReportError> {
    while let Some(tag) = xml.next_child()? {
        match tag {
            Tag::Disposition => r.disposition = Disposition::parse(&xml.text()?),
            Tag::Dkim => r.dkim = Evaluated::parse(&xml.text()?),
            Tag::Spf => r.spf = Evaluated::parse(&xml.text()?),
            Tag::Reason => {
                let (mut kind, mut comment) = (None, None);
                while let Some(tag) = xml.next_child()? {
                    match tag {
                        Tag::Type => kind = non_empty(xml.text()?),
                        Tag::Comment => comment = Some(xml.text()?).filter(|c| !c.is_empty()),
                        _ => xml.skip()?,
                    }
                }
                // An empty <reason/> (seen from several reporters) says nothing.
                if let Some(kind) = kind {
                    r.reasons.push(OverrideReason {
                        kind: OverrideType::parse(&kind),
                        comment,
                    });
                }
            }
            _ => xml.skip()?,
        }
    }
    Ok(())
}

fn auth_results(xml: &mut Xml, r: &mut Record) -> Result<(), ReportError> {
    while let Some(tag) = xml.next_child()? {
        match tag {
            Tag::Dkim => {
                let mut a = DkimAuth {
                    domain: String::new(),
                    selector: None,
                    result: DkimResult::Unknown,
                };
                while let Some(tag) = xml.next_child()? {
                    match tag {
                        Tag::Domain => a.domain = xml.text()?.to_ascii_lowercase(),
                        Tag::Selector => a.selector = Some(xml.text()?).filter(|s| !s.is_empty()),
                        Tag::Result => a.result = DkimResult::parse(&xml.text()?),
                        _ => xml.skip()?,
                    }
                }
                r.dkim_results.push(a);
            }
            Tag::Spf => {
                let mut a = SpfAuth {
                    domain: String::new(),
                    scope: SpfScope::Unknown,
                    result: SpfResult::Unknown,
                };
                while let Some(tag) = xml.next_child()? {
                    match tag {
                        Tag::Domain => a.domain = xml.text()?.to_ascii_lowercase(),
                        Tag::Scope => a.scope = SpfScope::parse(&xml.text()?),
                        Tag::Result => {
                            let v = xml.text()?;
                            a.result = if v.eq_ignore_ascii_case("hardfail") {
                                SpfResult::Fail
                            } else {
                                SpfResult::parse(&v)
                            };
                        }
                        _ => xml.skip()?,
                    }
                }
                r.spf_results.push(a);
            }
            _ => xml.skip()?,
        }
    }
    Ok(())
}

/// The XML as text. Invalid UTF-8 is replaced (U+FFFD), or read as Latin-1
/// when the declaration names a single-byte encoding; the values that matter
/// (domains, results, numbers) are ASCII either way.
fn decode(bytes: &[u8]) -> Cow<'_, str> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) if declares_single_byte(bytes) => {
            Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect())
        }
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

fn declares_single_byte(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(200)];
    let Some(end) = head.windows(2).position(|w| w == b"?>") else {
        return false;
    };
    let decl = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
    decl.contains("encoding")
        && ["8859", "latin", "1252", "ascii"]
            .iter()
            .any(|e| decl.contains(e))
}

/// The elements this reader knows; anything else is skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Version,
    ReportMetadata,
    OrgName,
    Email,
    ReportId,
    DateRange,
    Begin,
    End,
    Error,
    PolicyPublished,
    Domain,
    Adkim,
    Aspf,
    P,
    Sp,
    Np,
    Pct,
    Testing,
    Record,
    Row,
    SourceIp,
    Count,
    PolicyEvaluated,
    Disposition,
    Dkim,
    Spf,
    Reason,
    Type,
    Comment,
    Identifiers,
    Identities,
    HeaderFrom,
    EnvelopeFrom,
    EnvelopeTo,
    AuthResults,
    Selector,
    Result,
    Scope,
    Other,
}

impl Tag {
    /// From a local name (no prefix), in any ASCII case.
    fn from_local_name(name: &[u8]) -> Tag {
        let mut buf = [0u8; 24];
        if name.len() > buf.len() {
            return Tag::Other;
        }
        let lower = &mut buf[..name.len()];
        lower.copy_from_slice(name);
        lower.make_ascii_lowercase();
        match &*lower {
            b"version" => Tag::Version,
            b"report_metadata" => Tag::ReportMetadata,
            b"org_name" => Tag::OrgName,
            b"email" => Tag::Email,
            b"report_id" => Tag::ReportId,
            b"date_range" => Tag::DateRange,
            b"begin" => Tag::Begin,
            b"end" => Tag::End,
            b"error" => Tag::Error,
            b"policy_published" => Tag::PolicyPublished,
            b"domain" => Tag::Domain,
            b"adkim" => Tag::Adkim,
            b"aspf" => Tag::Aspf,
            b"p" => Tag::P,
            b"sp" => Tag::Sp,
            b"np" => Tag::Np,
            b"pct" => Tag::Pct,
            b"testing" => Tag::Testing,
            b"record" => Tag::Record,
            b"row" => Tag::Row,
            b"source_ip" => Tag::SourceIp,
            b"count" => Tag::Count,
            b"policy_evaluated" => Tag::PolicyEvaluated,
            b"disposition" => Tag::Disposition,
            b"dkim" => Tag::Dkim,
            b"spf" => Tag::Spf,
            b"reason" => Tag::Reason,
            b"type" => Tag::Type,
            b"comment" => Tag::Comment,
            b"identifiers" => Tag::Identifiers,
            b"identities" => Tag::Identities,
            b"header_from" => Tag::HeaderFrom,
            b"envelope_from" => Tag::EnvelopeFrom,
            b"envelope_to" => Tag::EnvelopeTo,
            b"auth_results" => Tag::AuthResults,
            b"selector" => Tag::Selector,
            b"result" => Tag::Result,
            b"scope" => Tag::Scope,
            _ => Tag::Other,
        }
    }
}

/// At most 40 characters of a name, for an error message.
fn shorten(name: &str) -> String {
    name.chars().take(40).collect()
}

/// A pull reader over elements: `next_child` steps into the children of the
/// current element, and each child must be consumed by `text`, `skip` or a
/// nested `next_child` loop.
struct Xml<'a> {
    reader: Reader<&'a [u8]>,
    /// Names of the open elements, end to end, and where each starts: end
    /// tags are matched here rather than by quick-xml, which would also
    /// count an address in angle brackets as an open element.
    open_names: String,
    open_starts: Vec<usize>,
}

impl<'a> Xml<'a> {
    fn new(text: &'a str) -> Self {
        let mut reader = Reader::from_str(text);
        let config = reader.config_mut();
        // Values are trimmed whole in `text`: trimming each event would
        // drop the space in `A &amp; B`.
        config.trim_text(false);
        config.expand_empty_elements = true;
        config.check_end_names = false;
        Xml {
            reader,
            open_names: String::new(),
            open_starts: Vec::new(),
        }
    }

    fn open(&mut self, name: &str) {
        self.open_starts.push(self.open_names.len());
        self.open_names.push_str(name);
    }

    /// Closes the innermost open element; its name must match (XML 1.0
    /// section 3, well-formedness constraint "Element Type Match").
    fn close(&mut self, name: &str) -> Result<(), ReportError> {
        let start = self.open_starts.pop().ok_or_else(|| ReportError::Xml {
            position: self.reader.buffer_position(),
            message: format!("end tag </{}> without a start tag", shorten(name)),
        })?;
        if &self.open_names[start..] != name {
            return Err(ReportError::Xml {
                position: self.reader.buffer_position(),
                message: format!(
                    "expected </{}>, found </{}>",
                    shorten(&self.open_names[start..]),
                    shorten(name)
                ),
            });
        }
        self.open_names.truncate(start);
        Ok(())
    }

    fn error(&self, e: impl std::fmt::Display) -> ReportError {
        ReportError::Xml {
            position: self.reader.error_position(),
            message: e.to_string(),
        }
    }

    fn event(&mut self) -> Result<Event<'a>, ReportError> {
        match self.reader.read_event() {
            Ok(Event::Eof) => Err(ReportError::Xml {
                position: self.reader.buffer_position(),
                message: "unexpected end of the document".into(),
            }),
            // `<email><postmaster@example.net></email>`, seen in real
            // reports: `@` is no XML name character, so this is an address
            // in angle brackets, read as the text it is.
            Ok(Event::Start(e)) if e.name().as_ref().contains('@') => {
                Ok(Event::Text(BytesText::from_escaped(e.as_ref().to_owned())))
            }
            Ok(Event::Start(e)) => {
                self.open(e.name().as_ref());
                Ok(Event::Start(e))
            }
            Ok(Event::End(e)) => {
                self.close(e.name().as_ref())?;
                Ok(Event::End(e))
            }
            Ok(e) => Ok(e),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Steps into the root element, which must be `<feedback>`, or its
    /// first child if the root is a wrapper around `<feedback>` (ikea.com
    /// sent its reports inside an `<xs:schema>` start tag that is never
    /// closed; what follows `</feedback>` is not read).
    fn root(&mut self) -> Result<(), ReportError> {
        let mut wrapper = None;
        loop {
            match self.reader.read_event() {
                Ok(Event::Start(e)) => {
                    self.open(e.name().as_ref());
                    let name = e.local_name();
                    let name = name.as_ref();
                    if name.eq_ignore_ascii_case("feedback") {
                        return Ok(());
                    }
                    if let Some(outer) = wrapper {
                        return Err(ReportError::NotAggregate(outer));
                    }
                    wrapper = Some(shorten(name));
                }
                Ok(Event::End(_) | Event::Eof) if wrapper.is_some() => {
                    return Err(ReportError::NotAggregate(wrapper.unwrap_or_default()));
                }
                Ok(Event::Eof) => return Err(ReportError::Missing("<feedback> element")),
                Ok(_) => {}
                Err(e) => return Err(self.error(e)),
            }
        }
    }

    /// The next child element of the current one, or `None` at its end.
    fn next_child(&mut self) -> Result<Option<Tag>, ReportError> {
        loop {
            match self.event()? {
                Event::Start(e) => {
                    return Ok(Some(Tag::from_local_name(
                        e.local_name().as_ref().as_bytes(),
                    )));
                }
                Event::End(_) => return Ok(None),
                // Text between elements, comments, processing instructions.
                _ => {}
            }
        }
    }

    /// The text of the element just entered, trimmed, up to its end. Nested
    /// elements are skipped.
    fn text(&mut self) -> Result<String, ReportError> {
        let mut out = String::new();
        loop {
            match self.event()? {
                Event::Text(t) => out.push_str(&t),
                Event::CData(c) => out.push_str(&c),
                Event::GeneralRef(r) => match r.resolve_char_ref() {
                    Ok(Some(c)) => out.push(c),
                    Ok(None) => match &*r {
                        "lt" => out.push('<'),
                        "gt" => out.push('>'),
                        "amp" => out.push('&'),
                        "apos" => out.push('\''),
                        "quot" => out.push('"'),
                        name => {
                            return Err(ReportError::Entity(name.chars().take(40).collect()));
                        }
                    },
                    Err(e) => return Err(self.error(e)),
                },
                Event::Start(_) => self.skip()?,
                Event::End(_) => break,
                _ => {}
            }
        }
        let trimmed = out.trim();
        if trimmed.len() != out.len() {
            out = trimmed.to_owned();
        }
        Ok(out)
    }

    /// Skips the rest of the element just entered.
    fn skip(&mut self) -> Result<(), ReportError> {
        let mut depth = 0usize;
        loop {
            match self.event()? {
                Event::Start(_) => depth += 1,
                Event::End(_) if depth == 0 => return Ok(()),
                Event::End(_) => depth -= 1,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(records: &str) -> String {
        format!(
            "<?xml version=\"1.0\"?><feedback><report_metadata><org_name>Example</org_name>\
             <email>dmarc@example.net</email><report_id>r1</report_id><date_range><begin>1</begin>\
             <end>2</end></date_range></report_metadata><policy_published><domain>example.com\
             </domain><p>none</p></policy_published>{records}</feedback>"
        )
    }

    fn rec(count: &str, dkim: &str, spf: &str) -> String {
        format!(
            "<record><row><source_ip>192.0.2.1</source_ip><count>{count}</count><policy_evaluated>\
             <disposition>none</disposition><dkim>{dkim}</dkim><spf>{spf}</spf></policy_evaluated>\
             </row><identifiers><header_from>example.com</header_from></identifiers></record>"
        )
    }

    #[test]
    fn counts_pass_when_dkim_or_spf_passed_in_any_case() {
        let xml = report(
            &[
                rec("3", "PASS", "fail"),
                rec("2", "fail", "Pass"),
                rec("5", "fail", "fail"),
            ]
            .concat(),
        );
        let r = parse(xml.as_bytes(), &Limits::default()).unwrap();
        assert_eq!((r.messages(), r.dmarc_pass(), r.dmarc_fail()), (10, 5, 5));
        assert_eq!(r.records[0].dkim, Evaluated::Pass);
    }

    #[test]
    fn refuses_undeclared_and_declared_entities() {
        let xml = report(&rec("&lol;", "pass", "pass"));
        assert_eq!(
            parse(xml.as_bytes(), &Limits::default()),
            Err(ReportError::Entity("lol".into()))
        );
    }

    #[test]
    fn predefined_entities_and_char_refs_are_read() {
        let xml = report("").replace("Example", "A&amp;B &#x43;o");
        assert_eq!(
            parse(xml.as_bytes(), &Limits::default()).unwrap().org_name,
            "A&B Co"
        );
    }

    #[test]
    fn bad_count_is_an_error_not_zero() {
        let xml = report(&rec("many", "pass", "pass"));
        assert!(matches!(
            parse(xml.as_bytes(), &Limits::default()),
            Err(ReportError::BadValue {
                field: "record/row/count",
                ..
            })
        ));
    }

    #[test]
    fn record_cap_is_enforced() {
        let xml = report(&rec("1", "pass", "pass").repeat(3));
        let limits = Limits {
            max_records: 2,
            ..Limits::default()
        };
        assert_eq!(
            parse(xml.as_bytes(), &limits),
            Err(ReportError::TooManyRecords { limit: 2 })
        );
    }

    #[test]
    fn latin1_declared_documents_are_decoded() {
        let mut xml = report("")
            .replace(
                "<?xml version=\"1.0\"?>",
                "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>",
            )
            .into_bytes();
        let at = xml.windows(7).position(|w| w == b"Example").unwrap();
        xml[at] = 0xc9; // É in Latin-1
        assert_eq!(
            parse(&xml, &Limits::default()).unwrap().org_name,
            "\u{c9}xample"
        );
    }

    #[test]
    fn other_roots_are_not_aggregate_reports() {
        assert_eq!(
            parse(b"<html><body/></html>", &Limits::default()),
            Err(ReportError::NotAggregate("html".into()))
        );
    }

    #[test]
    fn one_wrapper_around_feedback_is_read_two_are_not() {
        let xml = report(&rec("1", "pass", "fail")).replacen(
            "<feedback>",
            "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\">\n<feedback>",
            1,
        );
        assert_eq!(
            parse(xml.as_bytes(), &Limits::default())
                .unwrap()
                .messages(),
            1
        );
        let twice = xml.replacen("<xs:schema", "<outer><xs:schema", 1);
        assert_eq!(
            parse(twice.as_bytes(), &Limits::default()),
            Err(ReportError::NotAggregate("outer".into()))
        );
    }

    #[test]
    fn end_tags_must_still_match() {
        let xml = report(&rec("1", "pass", "fail")).replacen("</count>", "</cnt>", 1);
        let err = parse(xml.as_bytes(), &Limits::default()).unwrap_err();
        assert!(
            matches!(&err, ReportError::Xml { message, .. } if message.contains("expected </count>, found </cnt>")),
            "{err:?}"
        );
    }

    #[test]
    fn bracketed_address_is_text_and_empty_org_name_falls_back_to_its_organizational_domain() {
        let xml = report(&rec("2", "fail", "pass"))
            .replacen("<org_name>Example</org_name>", "<org_name> </org_name>", 1)
            .replacen(
                "<email>dmarc@example.net</email>",
                "<email><dmarc@Mail.Reporter.example></email>",
                1,
            );
        let r = parse(xml.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(r.email, "dmarc@Mail.Reporter.example");
        assert_eq!(r.org_name, "reporter.example");
        assert_eq!((r.messages(), r.dmarc_pass()), (2, 2));
    }

    #[test]
    fn vocabulary_parse_is_case_insensitive_with_fallback() {
        assert_eq!(Disposition::parse(" Quarantine "), Disposition::Quarantine);
        assert_eq!(DkimResult::parse("bogus"), DkimResult::Unknown);
        assert_eq!(OverrideType::parse("Forwarded"), OverrideType::Forwarded);
        assert_eq!(Alignment::parse("s"), Alignment::Strict);
    }
}
