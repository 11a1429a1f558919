//! DNS audit: parse and judge SPF, DKIM, DMARC, MX, MTA-STS, TLS-RPT, BIMI,
//! DNSSEC, reverse DNS and blocklists, and the fetching and the CLI around
//! them.
//!
//! Parse, look up, judge: three separate steps. The record modules parse and
//! judge and do no I/O; [`crate::dns`] and [`net`] fetch DNS answers,
//! policies and certificates and hand them in; [`run`] puts the three
//! together per domain and [`cli`] is `mailcanary check`.
//!
//! # One shape for every check
//!
//! Each [`Check`] has the same two pure functions in its module, as every
//! blackbox_exporter prober has one signature:
//!
//! - `needs(subject, facts) -> Vec<Need>`: what the check still needs
//!   fetched, given what is in `facts` so far: DNS [`crate::dns::Query`]s and
//!   the network facts of [`facts::Need`] (an MTA-STS policy, a STARTTLS
//!   probe, an SPF evaluation of a sending IP). It lists only what is not in
//!   `facts` yet and is bounded (see [`spf::WALK_LOOKUP_CAP`]), so fetching
//!   ends.
//! - `judge(subject, facts, report)`: the findings from the fetched facts,
//!   pushed as the check's [`CheckResult`]s (and the values the metrics
//!   need) onto the [`run::DomainReport`].
//!
//! [`run::Auditor`] loops over [`Check::ALL`]: it asks every check's needs
//! and fetches them concurrently (the only I/O; a need two checks share is
//! fetched once), asks a check again once the answers it waits for are in,
//! until no check needs anything, then judges every check in order:
//!
//! ```text
//! let mut facts = Facts::default();
//! loop {
//!     let needs = Check::ALL.flat_map(|c| c.needs(&subject, &facts));
//!     if needs.is_empty() { break }
//!     for need in needs { facts.insert(need, fetch(need).await) }   // the only I/O
//! }
//! for check in Check::ALL { check.judge(&subject, &facts, &mut report) }
//! ```
//!
//! An answer that could not be obtained is [`crate::dns::DnsAnswer::Unknown`]:
//! it yields a `*.dns_error` finding and status `unknown`, never "missing".
//!
//! # Layout
//!
//! - this file: [`Check`], [`Status`], [`CheckResult`], and helpers the
//!   record modules share ([`Selection`]).
//! - [`findings`]: [`Severity`], [`Finding`] and the [`CATALOGUE`] of every
//!   finding id with its check, severity and meaning (the table in `docs/dns-audit.md`).
//! - [`facts`]: what a check reads: the [`facts::Subject`] (domain and
//!   options), the [`facts::Facts`] fetched so far and the [`facts::Need`]s.
//! - the checks, each with its parser(s), judge, `needs` and `judge`:
//!   - [`spf`]: RFC 7208 records: parser, record lints, and the recursive
//!     facts (lookup count, void lookups, loops, broken includes) computed
//!     over the fetched answers; sending IPs evaluated with mail-auth.
//!   - [`dkim`]: RFC 6376 §3.6.1 key records: parser, key type and RSA
//!     modulus length from the DER key.
//!   - [`dmarc`]: RFC 7489 records: parser, policy discovery with the
//!     organizational-domain fallback, lints, external report destinations.
//!   - [`mx`]: MX records, their targets, and the STARTTLS probe's outcome
//!     (RFC 5321 §5.1, RFC 7505, RFC 3207).
//!   - [`mta_sts`]: RFC 8461 record and policy parsers, MX coverage.
//!   - [`tls_rpt`]: RFC 8460 record parser.
//!   - [`bimi`]: the BIMI record and its DMARC precondition.
//!   - [`dnssec`]: signed zone (DNSKEY) and chain to the parent (DS).
//!   - [`ptr`]: PTR and forward-confirmed reverse DNS of sending IPs.
//!   - [`dnsbl`]: blocklist answers: listed, refused, error (RFC 5782).
//! - shared by the record modules: [`domain`] (the organizational domain of
//!   RFC 7489 §3.2 behind the [`domain::PublicSuffix`] seam), [`tag_list`]
//!   (the `tag=value; ...` syntax of RFC 6376 §3.2, shared by DKIM, DMARC,
//!   MTA-STS, TLS-RPT and BIMI), [`x509`] (a certificate's expiry, for
//!   `mx.cert_expiring`).
//! - the I/O half: [`crate::dns`] (the DNS client, a leaf module shared with
//!   the probe), [`net`] (the STARTTLS probe of an MX and the HTTPS fetch of
//!   an MTA-STS policy, certificates checked against configurable roots),
//!   [`run`] (fetches what the checks need and judges; many domains with
//!   bounded parallelism), [`cli`] (`mailcanary check`: arguments, text and
//!   JSON output, exit code) and [`schedule`] (the daemon's audit and its
//!   metrics).

pub mod bimi;
pub mod cli;
pub mod dkim;
pub mod dmarc;
pub mod dnsbl;
pub mod dnssec;
pub mod domain;
pub mod facts;
pub mod findings;
pub mod mta_sts;
pub mod mx;
pub mod net;
pub mod ptr;
pub mod run;
pub mod schedule;
pub mod spf;
pub mod tag_list;
pub mod tls_rpt;
pub mod x509;

#[cfg(test)]
mod testkit;

use std::fmt;

use serde::Serialize;

use crate::dns::{DnsFacts, Query};
use facts::{Facts, Need, Subject};
pub use findings::{catalogue_severity, Finding, Severity, CATALOGUE};
use run::DomainReport;

/// The checks, in output order. Each name is the prefix of its finding ids
/// and the value of the `check` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// RFC 7208 sender policy.
    Spf,
    /// RFC 6376 key records, one result per selector.
    Dkim,
    /// RFC 7489 policy.
    Dmarc,
    /// RFC 5321 mail exchangers and their STARTTLS.
    Mx,
    /// RFC 8461 strict transport security.
    MtaSts,
    /// RFC 8460 TLS reporting.
    TlsRpt,
    /// Brand indicators.
    Bimi,
    /// RFC 4033-4035 signed zone and chain.
    Dnssec,
    /// Reverse DNS of sending IPs.
    Ptr,
    /// RFC 5782 blocklists.
    Dnsbl,
}

impl Check {
    /// Every check, in output order.
    pub const ALL: [Check; 10] = [
        Check::Spf,
        Check::Dkim,
        Check::Dmarc,
        Check::Mx,
        Check::MtaSts,
        Check::TlsRpt,
        Check::Bimi,
        Check::Dnssec,
        Check::Ptr,
        Check::Dnsbl,
    ];

    /// The lower-case name used in JSON, finding ids and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Spf => "spf",
            Check::Dkim => "dkim",
            Check::Dmarc => "dmarc",
            Check::Mx => "mx",
            Check::MtaSts => "mta_sts",
            Check::TlsRpt => "tls_rpt",
            Check::Bimi => "bimi",
            Check::Dnssec => "dnssec",
            Check::Ptr => "ptr",
            Check::Dnsbl => "dnsbl",
        }
    }

    /// What the check still needs fetched for `s`, given `f`.
    pub fn needs(self, s: &Subject, f: &Facts) -> Vec<Need> {
        match self {
            Check::Spf => spf::needs(s, f),
            Check::Dkim => dkim::needs(s, f),
            Check::Dmarc => dmarc::needs(s, f),
            Check::Mx => mx::needs(s, f),
            Check::MtaSts => mta_sts::needs(s, f),
            Check::TlsRpt => tls_rpt::needs(s, f),
            Check::Bimi => bimi::needs(s, f),
            Check::Dnssec => dnssec::needs(s, f),
            Check::Ptr => ptr::needs(s, f),
            Check::Dnsbl => dnsbl::needs(s, f),
        }
    }

    /// Judges the fetched facts: pushes the check's results onto `out`.
    pub fn judge(self, s: &Subject, f: &Facts, out: &mut DomainReport) {
        match self {
            Check::Spf => spf::judge(s, f, out),
            Check::Dkim => dkim::judge(s, f, out),
            Check::Dmarc => dmarc::judge(s, f, out),
            Check::Mx => mx::judge(s, f, out),
            Check::MtaSts => mta_sts::judge(s, f, out),
            Check::TlsRpt => tls_rpt::judge(s, f, out),
            Check::Bimi => bimi::judge(s, f, out),
            Check::Dnssec => dnssec::judge(s, f, out),
            Check::Ptr => ptr::judge(s, f, out),
            Check::Dnsbl => dnsbl::judge(s, f, out),
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Overall state of one check, as in `check --format json` and the
/// `mailcanary_dns_check_status` state set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// No finding above info.
    Ok,
    /// A warning, and no error or unknown answer.
    Warning,
    /// An error-severity finding.
    Error,
    /// An answer the check needed could not be obtained (timeout, SERVFAIL).
    Unknown,
}

impl Status {
    /// Every status (the `status` label's values).
    pub const ALL: [Status; 4] = [Status::Ok, Status::Warning, Status::Error, Status::Unknown];

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
    /// The check; its name is the prefix of its finding ids.
    pub check: Check,
    pub status: Status,
    /// The record text the findings are about, when exactly one was found.
    pub record: Option<String>,
    pub findings: Vec<Finding>,
}

impl CheckResult {
    /// Builds the result, deriving [`Status`] and dropping duplicate findings
    /// (same id and message) while keeping first-seen order.
    pub fn new(check: Check, record: Option<String>, findings: Vec<Finding>) -> Self {
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

pub(crate) use crate::text::excerpt;

/// Lossy text of record bytes for messages and the JSON `record` field.
pub(crate) fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use mail_auth::SpfResult;

    use super::*;
    use crate::audit::facts::Fetched;
    use crate::audit::mta_sts::PolicyFetch;
    use crate::audit::mx::SmtpTls;
    use crate::audit::run::{AuditOptions, SmtpProbe};
    use crate::dns::{Answer, DnsAnswer, HostAddrs, MxHost, QueryKind};

    /// Drives every check through its `needs` and `judge`, as the auditor
    /// does, with `fetch` standing in for the network.
    fn audit_with(opts: &AuditOptions, fetch: impl Fn(&Need) -> Fetched) -> DomainReport {
        let subject = Subject {
            domain: "example.com",
            opts,
            now: 0,
        };
        let mut facts = Facts::default();
        for _ in 0..100 {
            // Checks share needs (the MX records, the DMARC record): one fetch.
            let needs: std::collections::BTreeSet<Need> = Check::ALL
                .iter()
                .flat_map(|c| c.needs(&subject, &facts))
                .collect();
            for n in &needs {
                facts.insert(n, fetch(n));
            }
        }
        for c in Check::ALL {
            assert_eq!(c.needs(&subject, &facts), [], "{c}: fetching ends");
        }
        let mut report = DomainReport::new("example.com".into());
        for c in Check::ALL {
            c.judge(&subject, &facts, &mut report);
        }
        report
    }

    fn everything() -> AuditOptions {
        AuditOptions {
            selectors: vec!["s1".into()],
            ips: vec!["192.0.2.1".parse().unwrap()],
            dnsbl_ip_zones: vec!["bl.example".into()],
            dnsbl_domain_zones: vec!["dbl.example".into()],
            smtp: Some(SmtpProbe {
                port: 25,
                helo: "h.example".into(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn every_check_reports_unknown_answers_as_unknown() {
        let report = audit_with(&everything(), |n| match n {
            Need::Dns(q) => Fetched::Dns(Answer::unknown(q.kind, "timed out")),
            Need::SpfEval(_) => Fetched::SpfEval(SpfResult::TempError),
            Need::Policy(_) => Fetched::Policy(PolicyFetch::DnsError("timed out".into())),
            Need::StartTls { .. } => Fetched::StartTls(SmtpTls::Unreachable("timed out".into())),
        });
        let checks: Vec<Check> = report.checks.iter().map(|c| c.check).collect();
        assert_eq!(checks, Check::ALL, "one result per check, in order");
        for c in &report.checks {
            assert_eq!(c.status, Status::Unknown, "{c:?}");
            assert!(c.findings.iter().all(Finding::is_dns_error), "{c:?}");
        }
        assert_eq!(report.spf_lookups, None);
        assert_eq!(report.dmarc_policy, None);
        assert_eq!(report.dkim_key_bits, [("s1".to_owned(), None)]);
        assert_eq!(report.dnsbl.len(), 2);
    }

    #[test]
    fn needs_follow_the_answers() {
        let asked = RefCell::new(Vec::new());
        let report = audit_with(&everything(), |n| {
            asked.borrow_mut().push(n.clone());
            match n {
                Need::Dns(q) => Fetched::Dns(match (q.kind, q.name.as_str()) {
                    (QueryKind::MxRecords, "example.com") => {
                        Answer::MxRecords(DnsAnswer::Found(vec![MxHost {
                            preference: 10,
                            exchange: "mx.example.com".into(),
                        }]))
                    }
                    (QueryKind::Host, "mx.example.com") => Answer::Host(DnsAnswer::Found(HostAddrs {
                        addrs: vec!["2001:db8::25".parse().unwrap(), "192.0.2.25".parse().unwrap()],
                        cname: None,
                    })),
                    (QueryKind::Txt, "_mta-sts.example.com") => {
                        Answer::Txt(DnsAnswer::Found(vec![b"v=STSv1; id=1".to_vec()]))
                    }
                    (kind, _) => Answer::unknown(kind, "timed out"),
                }),
                Need::SpfEval(_) => Fetched::SpfEval(SpfResult::Pass),
                Need::Policy(_) => Fetched::Policy(PolicyFetch::Fetched {
                    body: b"version: STSv1\r\nmode: enforce\r\nmx: mx.example.com\r\nmax_age: 604800\r\n".to_vec(),
                    content_type: Some("text/plain".into()),
                }),
                Need::StartTls { .. } => Fetched::StartTls(SmtpTls::Tls {
                    verify: Ok(()),
                    not_after: None,
                }),
            }
        });
        let asked = asked.into_inner();
        let probe = Need::StartTls {
            host: "mx.example.com".into(),
            addr: "192.0.2.25".parse().unwrap(),
        };
        assert!(
            asked.contains(&probe),
            "the MX target is probed, IPv4 first"
        );
        assert!(asked.contains(&Need::Policy("example.com".into())));
        let unique: std::collections::HashSet<&Need> = asked.iter().collect();
        assert_eq!(unique.len(), asked.len(), "nothing fetched is asked again");
        let status = |check| {
            report
                .checks
                .iter()
                .find(|c| c.check == check)
                .map(|c| c.status)
        };
        assert_eq!(status(Check::Mx), Some(Status::Ok));
        assert_eq!(status(Check::MtaSts), Some(Status::Ok));
        assert_eq!(status(Check::TlsRpt), Some(Status::Unknown));
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
            Check::Spf,
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
}
