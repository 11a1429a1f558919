//! DNS audit: parse and judge SPF, DKIM, DMARC, MX, MTA-STS, TLS-RPT, BIMI,
//! DNSSEC, reverse DNS and blocklists, and the lookups and the CLI around them.
//!
//! The record modules do no I/O. The lookup layer ([`lookup`], [`net`])
//! fetches DNS answers, policies and certificates and hands them in; the
//! record modules return typed values and [`Finding`]s. This is STYLE.md item
//! 5 ("parse, look up, judge"); [`run`] puts the three together per domain and
//! [`cli`] is `mailcanary check`.
//!
//! # Layout
//!
//! - this file: shared types ([`Severity`], [`Finding`], [`Status`],
//!   [`CheckResult`], [`DnsAnswer`], [`DnsFacts`], [`Query`]) and the
//!   [`CATALOGUE`] of every finding id.
//! - [`spf`]: RFC 7208 records — parser, record lints, and the recursive facts
//!   (lookup count, void lookups, loops, broken includes) computed over a map of
//!   pre-fetched answers.
//! - [`dmarc`]: RFC 7489 records — parser, policy discovery with the
//!   organizational-domain fallback, lints, external report destinations.
//! - [`dkim`]: RFC 6376 §3.6.1 key records — parser, key type and RSA modulus
//!   length from the DER key.
//! - [`domain`]: name normalisation and the organizational domain (RFC 7489
//!   §3.2) behind the [`domain::PublicSuffix`] seam.
//! - [`tag_list`]: the `tag=value; ...` syntax shared by DKIM and DMARC
//!   (RFC 6376 §3.2), and reused for MTA-STS, TLS-RPT and BIMI records.
//! - [`mx`]: MX records, their targets, and the STARTTLS probe's outcome
//!   (RFC 5321 §5.1, RFC 7505, RFC 3207).
//! - [`mta_sts`]: RFC 8461 record and policy parsers, MX coverage.
//! - [`tls_rpt`]: RFC 8460 record parser.
//! - [`bimi`]: the BIMI record and its DMARC precondition.
//! - [`dnssec`]: signed zone (DNSKEY) and chain to the parent (DS).
//! - [`ptr`]: PTR and forward-confirmed reverse DNS of sending IPs.
//! - [`dnsbl`]: blocklist answers: listed, refused, error (RFC 5782).
//! - [`x509`]: a certificate's expiry from its DER, for `mx.cert_expiring`.
//!
//! The I/O half:
//!
//! - [`lookup`]: [`lookup::DnsLookup`], DNS lookups with no cache, a
//!   timeout and bounded concurrency; every outcome is a [`DnsAnswer`]. One
//!   audit run asks each (name, type) once ([`lookup::DnsLookup::for_run`]).
//! - [`wire`]: the client under it: hickory's multiplexer on one UDP socket
//!   per run, TCP for truncated answers, CNAMEs followed, answers checked
//!   against the server and the question.
//! - [`net`]: the STARTTLS probe of an MX and the HTTPS fetch of an MTA-STS
//!   policy (rustls, certificates checked against configurable roots).
//! - [`run`]: audits one domain (all checks concurrently) and many domains
//!   with bounded parallelism; returns [`run::DomainReport`]s.
//! - [`cli`]: `mailcanary check`: arguments, text and JSON output, exit code.
//!
//! # How the lookup layer drives a check
//!
//! Every check has the same two functions, both pure:
//!
//! ```text
//! let mut facts = DnsFacts::default();
//! loop {
//!     let queries = spf::pending_queries("example.com", &facts);
//!     if queries.is_empty() { break; }
//!     for q in queries { facts.insert(&q, resolve(&q).await); }   // the only I/O
//! }
//! let report = spf::check("example.com", &facts);                 // judge
//! ```
//!
//! `pending_queries` names the answers the check still needs; it returns only
//! names not yet in `facts` and is bounded (see [`spf::WALK_LOOKUP_CAP`]), so the
//! loop ends. An answer that could not be obtained is [`DnsAnswer::Unknown`]: it
//! yields a `*.dns_error` finding and status `unknown`, never "missing".

pub mod bimi;
pub mod cli;
pub mod dkim;
pub mod dmarc;
pub mod dnsbl;
pub mod dnssec;
pub mod domain;
pub mod lookup;
pub mod mta_sts;
pub mod mx;
pub mod net;
pub mod ptr;
pub mod run;
pub mod schedule;
pub mod spf;
pub mod tag_list;
pub mod tls_rpt;
pub mod wire;
pub mod x509;

#[cfg(test)]
mod testkit;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

/// How bad a finding is. `check` exits 1 when any finding is [`Severity::Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Mail is (or will be) rejected, spam-foldered or unauthenticated.
    Error,
    /// Works today but is fragile, weak or against a SHOULD in the RFC.
    Warning,
    /// Worth knowing; no action required.
    Info,
}

impl Severity {
    /// The lower-case name used in JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem found by a check, as it appears in `check --format json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable dotted id, listed in [`CATALOGUE`] (e.g. `spf.too_many_lookups`).
    pub id: &'static str,
    pub severity: Severity,
    /// What is wrong, naming the record, term or name concerned.
    pub message: String,
    /// One line on what to change.
    pub hint: String,
}

impl Finding {
    /// A finding with the default severity of `id` from [`CATALOGUE`].
    pub fn new(id: &'static str, message: impl Into<String>, hint: impl Into<String>) -> Self {
        let severity = catalogue_severity(id);
        debug_assert!(severity.is_some(), "finding id {id} is not in CATALOGUE");
        Finding {
            id,
            severity: severity.unwrap_or(Severity::Warning),
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// Overrides the catalogue's default severity (e.g. `?all` is only a warning).
    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// True for `<check>.dns_error`, `dnsbl.error` and `dnsbl.blocked`: part
    /// of the answer could not be obtained, so the check's status is
    /// `unknown` unless an error is proven anyway.
    pub fn is_dns_error(&self) -> bool {
        self.id.ends_with(".dns_error") || matches!(self.id, "dnsbl.error" | "dnsbl.blocked")
    }
}

/// Overall state of one check, as in `check --format json` and the
/// `mailcanary_dns_check_status` state set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warning,
    Error,
    /// An answer the check needed could not be obtained (timeout, SERVFAIL).
    Unknown,
}

impl Status {
    /// Derives the status from findings: any error-severity finding → `error`
    /// (an error is proven even if other answers are missing); else any
    /// `*.dns_error` → `unknown`; else any warning → `warning`; else `ok`.
    pub fn from_findings(findings: &[Finding]) -> Status {
        if findings.iter().any(|f| f.severity == Severity::Error) {
            Status::Error
        } else if findings.iter().any(Finding::is_dns_error) {
            Status::Unknown
        } else if findings.iter().any(|f| f.severity == Severity::Warning) {
            Status::Warning
        } else {
            Status::Ok
        }
    }

    /// The lower-case name used in JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Error => "error",
            Status::Unknown => "unknown",
        }
    }
}

/// One entry of `checks` in `check --format json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    /// `spf`, `dkim`, `dmarc`, `mx`, `mta_sts`, `tls_rpt`, `bimi`, `dnssec`,
    /// `ptr` or `dnsbl`: the prefix of its finding ids.
    pub check: &'static str,
    pub status: Status,
    /// The record text the findings are about, when exactly one was found.
    pub record: Option<String>,
    pub findings: Vec<Finding>,
}

impl CheckResult {
    /// Builds the result, deriving [`Status`] and dropping duplicate findings
    /// (same id and message) while keeping first-seen order.
    pub fn new(check: &'static str, record: Option<String>, findings: Vec<Finding>) -> Self {
        let mut unique: Vec<Finding> = Vec::with_capacity(findings.len());
        for f in findings {
            if !unique
                .iter()
                .any(|u| u.id == f.id && u.message == f.message)
            {
                unique.push(f);
            }
        }
        CheckResult {
            check,
            status: Status::from_findings(&unique),
            record,
            findings: unique,
        }
    }

    /// True when any finding has error severity (`check` exits 1).
    pub fn has_error(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }
}

/// The outcome of one DNS query, as the lookup layer saw it (STYLE.md item 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsAnswer<T> {
    /// The server answered with records. An empty `T` is read as [`DnsAnswer::NotFound`].
    Found(T),
    /// NXDOMAIN, or NOERROR with no records of the type (NODATA). Both are
    /// "void lookups" in RFC 7208 §4.6.4.
    NotFound,
    /// No usable answer (timeout, SERVFAIL, REFUSED, network error). Never
    /// treated as "missing"; the string says why, for the finding's message.
    Unknown(String),
}

impl<T> DnsAnswer<T> {
    /// Borrows the found value.
    pub fn as_ref(&self) -> DnsAnswer<&T> {
        match self {
            DnsAnswer::Found(v) => DnsAnswer::Found(v),
            DnsAnswer::NotFound => DnsAnswer::NotFound,
            DnsAnswer::Unknown(e) => DnsAnswer::Unknown(e.clone()),
        }
    }

    /// Maps the found value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> DnsAnswer<U> {
        match self {
            DnsAnswer::Found(v) => DnsAnswer::Found(f(v)),
            DnsAnswer::NotFound => DnsAnswer::NotFound,
            DnsAnswer::Unknown(e) => DnsAnswer::Unknown(e),
        }
    }
}

/// TXT records of one name: one entry per record, each already joined from
/// its character-strings with [`join_character_strings`].
pub type TxtRecords = Vec<Vec<u8>>;

/// Joins the character-strings of one TXT record without separators, as
/// RFC 7208 §3.3 (and RFC 6376 §3.6.2.2, RFC 7489 §6.1) require:
/// `"v=spf1 ip4:192.0.2.0/24" " -all"` is the record `v=spf1 ip4:192.0.2.0/24 -all`.
pub fn join_character_strings<S: AsRef<[u8]>>(strings: &[S]) -> Vec<u8> {
    let mut out = Vec::with_capacity(strings.iter().map(|s| s.as_ref().len()).sum());
    for s in strings {
        out.extend_from_slice(s.as_ref());
    }
    out
}

/// The kind of answer a check needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QueryKind {
    /// TXT records, each joined with [`join_character_strings`].
    Txt,
    /// MX exchange host names (preferences are not needed).
    Mx,
    /// A and AAAA addresses together: `Found` if either has records,
    /// `NotFound` if both are NXDOMAIN/NODATA, `Unknown` if either failed.
    Addr,
}

impl QueryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            QueryKind::Txt => "TXT",
            QueryKind::Mx => "MX",
            QueryKind::Addr => "A/AAAA",
        }
    }
}

/// A DNS question a check needs answered. `name` is normalised (lower case,
/// no trailing dot).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Query {
    pub kind: QueryKind,
    pub name: String,
}

impl Query {
    pub fn txt(name: &str) -> Self {
        Query {
            kind: QueryKind::Txt,
            name: domain::normalize(name),
        }
    }
    pub fn mx(name: &str) -> Self {
        Query {
            kind: QueryKind::Mx,
            name: domain::normalize(name),
        }
    }
    pub fn addr(name: &str) -> Self {
        Query {
            kind: QueryKind::Addr,
            name: domain::normalize(name),
        }
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.as_str(), self.name)
    }
}

/// An answer to a [`Query`], typed by its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Txt(DnsAnswer<TxtRecords>),
    Mx(DnsAnswer<Vec<String>>),
    Addr(DnsAnswer<Vec<IpAddr>>),
}

/// Pre-fetched DNS answers, keyed by normalised name. A name that is absent
/// has not been looked up yet (different from [`DnsAnswer::NotFound`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsFacts {
    txt: BTreeMap<String, DnsAnswer<TxtRecords>>,
    mx: BTreeMap<String, DnsAnswer<Vec<String>>>,
    addr: BTreeMap<String, DnsAnswer<Vec<IpAddr>>>,
}

impl DnsFacts {
    /// Stores the answer to `query`. An answer of the wrong kind for the query
    /// is stored under the answer's own kind.
    pub fn insert(&mut self, query: &Query, answer: Answer) {
        match answer {
            Answer::Txt(a) => self.insert_txt(&query.name, a),
            Answer::Mx(a) => self.insert_mx(&query.name, a),
            Answer::Addr(a) => self.insert_addr(&query.name, a),
        }
    }
    pub fn insert_txt(&mut self, name: &str, answer: DnsAnswer<TxtRecords>) {
        self.txt
            .insert(domain::normalize(name), empty_is_not_found(answer));
    }
    pub fn insert_mx(&mut self, name: &str, answer: DnsAnswer<Vec<String>>) {
        self.mx
            .insert(domain::normalize(name), empty_is_not_found(answer));
    }
    pub fn insert_addr(&mut self, name: &str, answer: DnsAnswer<Vec<IpAddr>>) {
        self.addr
            .insert(domain::normalize(name), empty_is_not_found(answer));
    }
    /// `None` when `name` has not been looked up.
    pub fn txt(&self, name: &str) -> Option<&DnsAnswer<TxtRecords>> {
        self.txt.get(&domain::normalize(name))
    }
    pub fn mx(&self, name: &str) -> Option<&DnsAnswer<Vec<String>>> {
        self.mx.get(&domain::normalize(name))
    }
    pub fn addr(&self, name: &str) -> Option<&DnsAnswer<Vec<IpAddr>>> {
        self.addr.get(&domain::normalize(name))
    }
    /// True when the answer to `query` is stored.
    pub fn contains(&self, query: &Query) -> bool {
        match query.kind {
            QueryKind::Txt => self.txt(&query.name).is_some(),
            QueryKind::Mx => self.mx(&query.name).is_some(),
            QueryKind::Addr => self.addr(&query.name).is_some(),
        }
    }
    /// Number of stored answers of all kinds.
    pub fn len(&self) -> usize {
        self.txt.len() + self.mx.len() + self.addr.len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn empty_is_not_found<T>(answer: DnsAnswer<Vec<T>>) -> DnsAnswer<Vec<T>> {
    match answer {
        DnsAnswer::Found(v) if v.is_empty() => DnsAnswer::NotFound,
        other => other,
    }
}

/// Which record of a TXT RRset is the one a check reads: RFC 7208 §4.5 (SPF)
/// and RFC 7489 §6.6.3 (DMARC) both discard records without their version
/// tag and fail when more than one remains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection<'a> {
    /// No record has the version tag.
    None,
    One(&'a [u8]),
    /// This many records have the version tag.
    Multiple(usize),
}

impl<'a> Selection<'a> {
    /// Selects among `records` those for which `is_record` holds.
    pub fn by(records: &'a [Vec<u8>], is_record: impl Fn(&[u8]) -> bool) -> Self {
        let mut hits = records.iter().filter(|r| is_record(r));
        match (hits.next(), hits.count()) {
            (None, _) => Selection::None,
            (Some(r), 0) => Selection::One(r),
            (Some(_), more) => Selection::Multiple(more + 1),
        }
    }
}

/// `1 TXT record`, `2 TXT records`.
pub(crate) fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Appends `q` to `out` unless it is already answered in `facts` or already listed.
pub(crate) fn want(out: &mut Vec<Query>, facts: &DnsFacts, q: Query) {
    if !facts.contains(&q) && !out.contains(&q) {
        out.push(q);
    }
}

/// Every finding id this module emits: (id, default severity, description).
/// The README table is checked against this list.
pub const CATALOGUE: &[(&str, Severity, &str)] = &[
    // SPF, RFC 7208
    (
        "spf.missing",
        Severity::Error,
        "no TXT record starting with v=spf1 at the domain",
    ),
    (
        "spf.multiple_records",
        Severity::Error,
        "more than one v=spf1 record (permerror, RFC 7208 §4.5)",
    ),
    (
        "spf.syntax_error",
        Severity::Error,
        "the record does not parse (permerror, RFC 7208 §4.6)",
    ),
    (
        "spf.too_many_lookups",
        Severity::Error,
        "more than 10 DNS-querying terms in the evaluation (permerror, §4.6.4)",
    ),
    (
        "spf.too_many_void_lookups",
        Severity::Error,
        "more than 2 lookups that return no records (permerror, §4.6.4)",
    ),
    (
        "spf.permissive_all",
        Severity::Error,
        "+all (error) or ?all (warning) lets any host pass or stay neutral",
    ),
    (
        "spf.ptr_mechanism",
        Severity::Warning,
        "ptr mechanism or %{p} macro, which SHOULD NOT be used (§5.5, §7.3)",
    ),
    (
        "spf.include_not_found",
        Severity::Error,
        "an include: target has no SPF record (permerror, §5.2)",
    ),
    (
        "spf.redirect_not_found",
        Severity::Error,
        "the redirect= target has no SPF record (permerror, §6.1)",
    ),
    (
        "spf.include_invalid",
        Severity::Error,
        "an include:/redirect= target has several or unparsable SPF records (permerror)",
    ),
    (
        "spf.loop",
        Severity::Error,
        "include:/redirect= chain leads back to a domain already being evaluated",
    ),
    (
        "spf.record_too_long",
        Severity::Warning,
        "TXT answer over 450 octets may not fit a UDP response (§3.4)",
    ),
    (
        "spf.mx_too_many_hosts",
        Severity::Error,
        "an mx term's domain has more than 10 MX hosts (permerror, §4.6.4)",
    ),
    (
        "spf.no_all",
        Severity::Warning,
        "no all mechanism and no redirect=: unlisted hosts get neutral (§4.7)",
    ),
    (
        "spf.redirect_ignored",
        Severity::Warning,
        "redirect= is ignored because the record has an all mechanism (§6.1)",
    ),
    (
        "spf.terms_after_all",
        Severity::Warning,
        "mechanisms after all are never evaluated (§5.1)",
    ),
    (
        "spf.unknown_modifier",
        Severity::Info,
        "an unknown modifier is ignored by receivers (§6)",
    ),
    (
        "spf.lookups_not_counted",
        Severity::Info,
        "include:/redirect= with macros cannot be followed; the lookup count is a lower bound",
    ),
    (
        "spf.ip_not_permitted",
        Severity::Error,
        "a configured sending IP does not get pass",
    ),
    (
        "spf.dns_error",
        Severity::Warning,
        "an answer the SPF check needs could not be obtained",
    ),
    // DMARC, RFC 7489
    (
        "dmarc.missing",
        Severity::Error,
        "no v=DMARC1 record at _dmarc.<domain> nor at the organizational domain",
    ),
    (
        "dmarc.multiple_records",
        Severity::Error,
        "more than one v=DMARC1 record: receivers apply no DMARC (§6.6.3)",
    ),
    (
        "dmarc.syntax_error",
        Severity::Error,
        "a tag is missing, invalid or duplicated (§6.3, §6.4)",
    ),
    (
        "dmarc.policy_none",
        Severity::Warning,
        "the policy in force is p=none (monitoring only)",
    ),
    (
        "dmarc.pct_partial",
        Severity::Warning,
        "pct below 100 applies the policy to only part of failing mail",
    ),
    (
        "dmarc.no_rua",
        Severity::Warning,
        "no usable mailto: rua, so no aggregate reports are sent",
    ),
    (
        "dmarc.subdomain_policy_weaker",
        Severity::Warning,
        "sp= is weaker than p=",
    ),
    (
        "dmarc.external_rua_unauthorized",
        Severity::Warning,
        "an external rua/ruf domain has not authorized the reports (§7.1)",
    ),
    (
        "dmarc.unknown_tag",
        Severity::Info,
        "an unknown tag is ignored by receivers (§6.3)",
    ),
    (
        "dmarc.org_domain_policy",
        Severity::Info,
        "no record at the domain; the organizational domain's policy applies",
    ),
    (
        "dmarc.dns_error",
        Severity::Warning,
        "an answer the DMARC check needs could not be obtained",
    ),
    // DKIM, RFC 6376 §3.6.1
    (
        "dkim.missing",
        Severity::Error,
        "no key record at <selector>._domainkey.<domain>",
    ),
    (
        "dkim.revoked",
        Severity::Error,
        "the key record has an empty p= (key revoked)",
    ),
    (
        "dkim.key_too_short",
        Severity::Error,
        "RSA key under 1024 bits (error) or under 2048 bits (warning), RFC 8301 §3.2",
    ),
    (
        "dkim.testing_mode",
        Severity::Warning,
        "t=y: receivers may treat signatures as unsigned",
    ),
    (
        "dkim.syntax_error",
        Severity::Error,
        "the key record or its base64/DER key does not parse",
    ),
    (
        "dkim.unusable_key",
        Severity::Error,
        "k=, h= or s= rule out verifying email signatures with this key",
    ),
    (
        "dkim.multiple_records",
        Severity::Warning,
        "several key records at the selector: receivers may pick any",
    ),
    (
        "dkim.dns_error",
        Severity::Warning,
        "the key record could not be looked up",
    ),
    // MX, RFC 5321 §5.1, RFC 7505; STARTTLS, RFC 3207
    (
        "mx.missing",
        Severity::Warning,
        "no MX record (error with --receiving: the domain must receive mail)",
    ),
    (
        "mx.null_mx",
        Severity::Warning,
        "null MX `0 .` (RFC 7505): accepts no mail; error with --receiving or next to other MX records",
    ),
    (
        "mx.target_no_address",
        Severity::Error,
        "an MX target has no A or AAAA record",
    ),
    (
        "mx.target_is_cname",
        Severity::Warning,
        "an MX target is a CNAME (RFC 5321 §5.1, RFC 2181 §10.3)",
    ),
    (
        "mx.target_is_ip",
        Severity::Error,
        "an MX target is written as an IP address instead of a host name",
    ),
    (
        "mx.smtp_unreachable",
        Severity::Warning,
        "no SMTP dialogue with an MX target (refused, timeout, 5xx greeting); TLS not checked",
    ),
    (
        "mx.starttls_missing",
        Severity::Warning,
        "an MX target does not offer STARTTLS",
    ),
    (
        "mx.starttls_failed",
        Severity::Error,
        "an MX target offers STARTTLS but the TLS handshake fails",
    ),
    (
        "mx.cert_invalid",
        Severity::Error,
        "an MX target's certificate does not verify (expired, untrusted, wrong name)",
    ),
    (
        "mx.cert_expiring",
        Severity::Warning,
        "an MX target's certificate expires within --cert-warn-days (default 14)",
    ),
    (
        "mx.dns_error",
        Severity::Warning,
        "an answer the MX check needs could not be obtained",
    ),
    // MTA-STS, RFC 8461
    (
        "mta_sts.missing",
        Severity::Info,
        "no v=STSv1 record at _mta-sts.<domain>",
    ),
    (
        "mta_sts.multiple_records",
        Severity::Error,
        "more than one v=STSv1 record: senders ignore MTA-STS (§3.1)",
    ),
    (
        "mta_sts.syntax_error",
        Severity::Error,
        "the _mta-sts TXT record is invalid (§3.1)",
    ),
    (
        "mta_sts.policy_fetch_failed",
        Severity::Error,
        "https://mta-sts.<domain>/.well-known/mta-sts.txt cannot be fetched (HTTP, TLS, certificate)",
    ),
    (
        "mta_sts.policy_invalid",
        Severity::Error,
        "the policy file is invalid or not served as text/plain (§3.2, §3.3)",
    ),
    (
        "mta_sts.mode_testing",
        Severity::Warning,
        "the policy is in mode testing: TLS failures are reported, not enforced",
    ),
    (
        "mta_sts.mode_none",
        Severity::Warning,
        "the policy is in mode none: MTA-STS is withdrawn",
    ),
    (
        "mta_sts.max_age_short",
        Severity::Warning,
        "the policy's max_age is under one day",
    ),
    (
        "mta_sts.mx_not_covered",
        Severity::Error,
        "an MX host matches no mx: line of the policy (warning in mode testing)",
    ),
    (
        "mta_sts.dns_error",
        Severity::Warning,
        "an answer the MTA-STS check needs could not be obtained",
    ),
    // SMTP TLS Reporting, RFC 8460
    (
        "tls_rpt.missing",
        Severity::Info,
        "no v=TLSRPTv1 record at _smtp._tls.<domain> (warning when MTA-STS is published)",
    ),
    (
        "tls_rpt.multiple_records",
        Severity::Warning,
        "more than one v=TLSRPTv1 record: senders ignore TLS-RPT (§3)",
    ),
    (
        "tls_rpt.syntax_error",
        Severity::Warning,
        "the TLS-RPT record is invalid or has no usable rua= (§3)",
    ),
    (
        "tls_rpt.dns_error",
        Severity::Warning,
        "the TLS-RPT record could not be looked up",
    ),
    // BIMI
    (
        "bimi.missing",
        Severity::Info,
        "no v=BIMI1 record at default._bimi.<domain> or its organizational domain",
    ),
    (
        "bimi.multiple_records",
        Severity::Warning,
        "more than one v=BIMI1 record",
    ),
    (
        "bimi.syntax_error",
        Severity::Warning,
        "the BIMI record is invalid (l= and a= must be single https: URIs)",
    ),
    (
        "bimi.dmarc_not_enforced",
        Severity::Warning,
        "BIMI is published but DMARC is not at p=quarantine/reject with pct=100",
    ),
    (
        "bimi.no_certificate",
        Severity::Info,
        "no a= mark certificate (VMC/CMC), which Gmail and Apple Mail require",
    ),
    (
        "bimi.dns_error",
        Severity::Warning,
        "the BIMI record could not be looked up",
    ),
    // DNSSEC, RFC 4033-4035
    (
        "dnssec.unsigned",
        Severity::Info,
        "the domain's zone has no DNSKEY: it is not signed",
    ),
    (
        "dnssec.no_ds",
        Severity::Warning,
        "the zone is signed but the parent has no DS for it: validators treat it as unsigned",
    ),
    (
        "dnssec.dns_error",
        Severity::Warning,
        "an answer the DNSSEC check needs could not be obtained",
    ),
    // Reverse DNS of sending IPs (--ip)
    (
        "ptr.missing",
        Severity::Error,
        "a sending IP has no PTR record",
    ),
    (
        "ptr.not_confirmed",
        Severity::Error,
        "no PTR name of a sending IP resolves back to it (FCrDNS fails)",
    ),
    (
        "ptr.dns_error",
        Severity::Warning,
        "a PTR or forward lookup for a sending IP could not be answered",
    ),
    // DNS blocklists, RFC 5782 (--dnsbl, --dnsbl-domain)
    (
        "dnsbl.listed",
        Severity::Error,
        "a sending IP or the domain is listed (answer in 127.0.0.0/8)",
    ),
    (
        "dnsbl.blocked",
        Severity::Warning,
        "the list refused the query (127.255.255.x, 127.0.0.1): status unknown",
    ),
    (
        "dnsbl.error",
        Severity::Warning,
        "the list could not be queried or answered outside 127.0.0.0/8: status unknown",
    ),
];

/// The checks, in output order; each is the prefix of its finding ids.
pub const CHECKS: &[&str] = &[
    "spf", "dkim", "dmarc", "mx", "mta_sts", "tls_rpt", "bimi", "dnssec", "ptr", "dnsbl",
];

/// The default severity of a catalogue id.
pub fn catalogue_severity(id: &str) -> Option<Severity> {
    CATALOGUE
        .iter()
        .find(|(cid, _, _)| *cid == id)
        .map(|(_, sev, _)| *sev)
}

/// Lossy text of record bytes for messages and the JSON `record` field.
pub(crate) fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_ids_are_unique_dotted_lowercase() {
        let mut seen = std::collections::HashSet::new();
        for (id, _, desc) in CATALOGUE {
            assert!(seen.insert(*id), "duplicate id {id}");
            let (check, name) = id.split_once('.').expect("dotted");
            assert!(CHECKS.contains(&check), "{id}");
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{id}"
            );
            assert!(!desc.is_empty());
        }
        for required in [
            "spf.missing",
            "spf.multiple_records",
            "spf.syntax_error",
            "spf.too_many_lookups",
            "spf.too_many_void_lookups",
            "spf.permissive_all",
            "spf.ptr_mechanism",
            "spf.include_not_found",
            "spf.loop",
            "spf.record_too_long",
            "spf.mx_too_many_hosts",
            "spf.ip_not_permitted",
            "spf.dns_error",
            "dkim.missing",
            "dkim.revoked",
            "dkim.key_too_short",
            "dkim.testing_mode",
            "dkim.syntax_error",
            "dkim.dns_error",
            "dmarc.missing",
            "dmarc.multiple_records",
            "dmarc.syntax_error",
            "dmarc.policy_none",
            "dmarc.pct_partial",
            "dmarc.no_rua",
            "dmarc.external_rua_unauthorized",
            "dmarc.subdomain_policy_weaker",
            "dmarc.dns_error",
            "mx.missing",
            "mx.null_mx",
            "mx.target_no_address",
            "mx.target_is_cname",
            "mx.target_is_ip",
            "mx.starttls_missing",
            "mx.cert_invalid",
            "mx.cert_expiring",
            "mx.dns_error",
            "ptr.missing",
            "ptr.not_confirmed",
            "dnsbl.listed",
            "dnsbl.blocked",
            "dnsbl.error",
        ] {
            assert!(
                catalogue_severity(required).is_some(),
                "DESIGN.md minimum catalogue id {required} missing"
            );
        }
    }

    #[test]
    fn status_precedence() {
        let err = Finding::new("spf.loop", "m", "h");
        let dns = Finding::new("spf.dns_error", "m", "h");
        let warn = Finding::new("spf.no_all", "m", "h");
        let info = Finding::new("spf.unknown_modifier", "m", "h");
        assert_eq!(Status::from_findings(&[]), Status::Ok);
        assert_eq!(
            Status::from_findings(std::slice::from_ref(&info)),
            Status::Ok
        );
        assert_eq!(
            Status::from_findings(&[info.clone(), warn.clone()]),
            Status::Warning
        );
        assert_eq!(
            Status::from_findings(&[warn.clone(), dns.clone()]),
            Status::Unknown
        );
        assert_eq!(Status::from_findings(&[dns, err, warn]), Status::Error);
    }

    #[test]
    fn json_shape_matches_contract() {
        let result = CheckResult::new(
            "spf",
            Some("v=spf1 +all".into()),
            vec![
                Finding::new("spf.permissive_all", "m", "h"),
                Finding::new("spf.permissive_all", "m", "h"),
            ],
        );
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "check": "spf",
                "status": "error",
                "record": "v=spf1 +all",
                "findings": [
                    {"id": "spf.permissive_all", "severity": "error", "message": "m", "hint": "h"}
                ]
            })
        );
    }

    #[test]
    fn join_without_separator() {
        assert_eq!(
            join_character_strings(&["v=spf1 ip4:192.0.2.0/24", " -all"]),
            b"v=spf1 ip4:192.0.2.0/24 -all"
        );
        let none: [&[u8]; 0] = [];
        assert!(join_character_strings(&none).is_empty());
    }

    #[test]
    fn facts_normalise_names_and_empty_answers() {
        let mut facts = DnsFacts::default();
        facts.insert_txt("Example.COM.", DnsAnswer::Found(vec![]));
        assert_eq!(facts.txt("example.com"), Some(&DnsAnswer::NotFound));
        assert!(facts.contains(&Query::txt("EXAMPLE.com")));
        assert!(!facts.contains(&Query::mx("example.com")));
        facts.insert(
            &Query::addr("a.example"),
            Answer::Addr(DnsAnswer::Unknown("timeout".into())),
        );
        assert_eq!(
            facts.addr("A.example."),
            Some(&DnsAnswer::Unknown("timeout".into()))
        );
        assert_eq!(facts.len(), 2);
    }
}
