//! BIMI (draft-brand-indicators-for-message-identification): the
//! `default._bimi` TXT record with the logo (`l=`) and the mark certificate
//! (`a=`), which mailbox providers honour only when DMARC is at enforcement.
//! No I/O.

use super::tag_list::{self, NameCase};
use super::{lossy, plural, CheckResult, DnsAnswer, Finding, Selection, TxtRecords};
use crate::text::excerpt;

/// `default._bimi.<domain>`.
pub fn record_name(domain: &str) -> String {
    format!("default._bimi.{}", super::domain::normalize(domain))
}

/// Records not starting with `v=BIMI1` are discarded.
pub fn is_bimi_record(record: &[u8]) -> bool {
    match record.strip_prefix(b"v=BIMI1") {
        Some(rest) => matches!(rest.first(), None | Some(b';' | b' ' | b'\t')),
        None => false,
    }
}

/// A parsed record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BimiRecord {
    /// `l=`: the HTTPS URI of the SVG logo; `None` when empty (declined).
    pub logo: Option<String>,
    /// `a=`: the HTTPS URI of the VMC/CMC certificate (PEM); `None` when
    /// absent or empty.
    pub authority: Option<String>,
}

impl BimiRecord {
    /// `v=BIMI1; l=; a=;`: the domain declines to publish an indicator.
    pub fn is_declination(&self) -> bool {
        self.logo.is_none() && self.authority.is_none()
    }
}

/// Parses a record: a tag list (`v=BIMI1; l=<https-uri>; a=<https-uri>`),
/// `v` first, `l` and `a` empty or a single `https:` URI.
pub fn parse(record: &[u8]) -> Result<BimiRecord, Vec<String>> {
    let (tags, errors) = tag_list::parse(record, NameCase::Insensitive);
    let mut problems: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let mut out = BimiRecord::default();
    for (i, t) in tags.iter().enumerate() {
        let name = t.name.to_ascii_lowercase();
        match (i, name.as_str()) {
            (0, "v") if t.value == "BIMI1" => {}
            (0, _) => problems.push("the record does not start with v=BIMI1".into()),
            (_, "v") => problems.push("v= appears after the first tag".into()),
            (_, "l" | "a") => {
                if t.value.is_empty() {
                    continue;
                }
                if let Some(p) = https_problem(&t.value) {
                    problems.push(format!("{name}=`{}` {p}", excerpt(&t.value, 60)));
                    continue;
                }
                if name == "l" {
                    out.logo = Some(t.value.clone());
                } else {
                    out.authority = Some(t.value.clone());
                }
            }
            _ => {}
        }
    }
    if tags.is_empty() && problems.is_empty() {
        problems.push("the record is empty".into());
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// Why a URI is not a single HTTPS URI, if it is not.
fn https_problem(uri: &str) -> Option<&'static str> {
    let Some(rest) = uri
        .get(..8)
        .filter(|p| p.eq_ignore_ascii_case("https://"))
        .and(uri.get(8..))
    else {
        return Some("is not an https:// URI");
    };
    if uri.contains(',') || uri.bytes().any(|b| b.is_ascii_whitespace()) {
        return Some("must be a single URI");
    }
    let host = rest.split(['/', '?', '#', ':']).next().unwrap_or("");
    if super::domain::is_host_name(host) {
        None
    } else {
        Some("has no valid host")
    }
}

/// Whether the DMARC policy in force lets BIMI be shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DmarcEnforcement {
    /// p (or sp) is quarantine or reject, applied to all mail.
    Enforced,
    /// Why not (p=none, pct<100, no record).
    NotEnforced(String),
    /// The DMARC check could not tell.
    Unknown,
}

/// What the check reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BimiFacts {
    /// TXT at `default._bimi.<domain>`.
    pub at_domain: DnsAnswer<TxtRecords>,
    /// The organizational domain and its answer, asked when the domain has
    /// no record and is not its own organizational domain.
    pub at_org: Option<(String, DnsAnswer<TxtRecords>)>,
    pub dmarc: DmarcEnforcement,
}

fn dns_error(name: &str, why: &str) -> Finding {
    Finding::new(
        "bimi.dns_error",
        format!(
            "could not get the TXT records of {name}: {}",
            excerpt(why, 120)
        ),
        "check the resolver and the domain's name servers; the result is unknown, not missing",
    )
}

/// Where the record was found: `Ok(Some((name, records)))`, `Ok(None)` when
/// none, `Err(finding)` when unknown.
fn locate<'a>(
    domain: &str,
    facts: &'a BimiFacts,
) -> Result<Option<(String, &'a TxtRecords)>, Finding> {
    let own = record_name(domain);
    match &facts.at_domain {
        DnsAnswer::Unknown(why) => return Err(dns_error(&own, why)),
        DnsAnswer::Found(r) if !matches!(Selection::by(r, is_bimi_record), Selection::None) => {
            return Ok(Some((own, r)))
        }
        _ => {}
    }
    match &facts.at_org {
        Some((org, DnsAnswer::Unknown(why))) => Err(dns_error(&record_name(org), why)),
        Some((org, DnsAnswer::Found(r)))
            if !matches!(Selection::by(r, is_bimi_record), Selection::None) =>
        {
            Ok(Some((record_name(org), r)))
        }
        _ => Ok(None),
    }
}

/// Judges BIMI for `domain`.
pub fn check(domain: &str, facts: &BimiFacts) -> CheckResult {
    let mut findings = Vec::new();
    let (name, records) = match locate(domain, facts) {
        Err(f) => return CheckResult::new("bimi", None, vec![f]),
        Ok(None) => {
            findings.push(Finding::new(
                "bimi.missing",
                format!("no BIMI record at {}: mailbox providers show no brand logo for {domain}", record_name(domain)),
                "optional: publish `v=BIMI1; l=https://…/logo.svg; a=https://…/vmc.pem` once DMARC is at enforcement",
            ));
            return CheckResult::new("bimi", None, findings);
        }
        Ok(Some(found)) => found,
    };
    let record = match Selection::by(records, is_bimi_record) {
        Selection::One(r) => r,
        Selection::Multiple(n) => {
            findings.push(Finding::new(
                "bimi.multiple_records",
                format!(
                    "{} at {name}: receivers ignore BIMI",
                    plural(n, "v=BIMI1 record")
                ),
                "keep exactly one v=BIMI1 record",
            ));
            return CheckResult::new("bimi", None, findings);
        }
        Selection::None => return CheckResult::new("bimi", None, findings),
    };
    let text = lossy(record);
    let parsed = match parse(record) {
        Ok(p) => p,
        Err(problems) => {
            for p in problems.iter().take(3) {
                findings.push(Finding::new(
                    "bimi.syntax_error",
                    format!("the BIMI record at {name} is invalid: {p}"),
                    "publish `v=BIMI1; l=https://<host>/logo.svg; a=https://<host>/vmc.pem`",
                ));
            }
            return CheckResult::new("bimi", Some(text), findings);
        }
    };
    if parsed.is_declination() {
        return CheckResult::new("bimi", Some(text), findings);
    }
    match &facts.dmarc {
        DmarcEnforcement::Enforced | DmarcEnforcement::Unknown => {}
        DmarcEnforcement::NotEnforced(why) => findings.push(Finding::new(
            "bimi.dmarc_not_enforced",
            format!("{domain} publishes BIMI but its DMARC policy is not at enforcement ({}): receivers show no logo", excerpt(why, 80)),
            "set the DMARC policy to p=quarantine or p=reject with pct=100",
        )),
    }
    if parsed.authority.is_none() {
        findings.push(Finding::new(
            "bimi.no_certificate",
            format!("the BIMI record at {name} has no a= certificate: Gmail and Apple Mail show only logos backed by a VMC or CMC"),
            "obtain a Verified (or Common) Mark Certificate and publish its URL in a=",
        ));
    }
    CheckResult::new("bimi", Some(text), findings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Severity;

    fn ids(r: &CheckResult) -> Vec<(&'static str, Severity)> {
        r.findings.iter().map(|f| (f.id, f.severity)).collect()
    }

    fn txt(records: &[&str]) -> DnsAnswer<TxtRecords> {
        DnsAnswer::Found(records.iter().map(|r| r.as_bytes().to_vec()).collect())
    }

    const GOOD: &str = "v=BIMI1; l=https://example.com/logo.svg; a=https://example.com/vmc.pem";

    fn facts(at_domain: DnsAnswer<TxtRecords>) -> BimiFacts {
        BimiFacts {
            at_domain,
            at_org: None,
            dmarc: DmarcEnforcement::Enforced,
        }
    }

    #[test]
    fn syntax() {
        let r = parse(GOOD.as_bytes()).unwrap();
        assert_eq!(r.logo.as_deref(), Some("https://example.com/logo.svg"));
        assert_eq!(r.authority.as_deref(), Some("https://example.com/vmc.pem"));
        assert!(parse(b"v=BIMI1; l=; a=;").unwrap().is_declination());
        assert!(parse(b"v=BIMI1; l=http://example.com/logo.svg").is_err());
        assert!(parse(b"v=BIMI1; l=https://a.example/x.svg,https://b.example/y.svg").is_err());
        assert!(parse(b"l=https://a.example/x.svg; v=BIMI1").is_err());
        assert!(is_bimi_record(b"v=BIMI1;"));
        assert!(!is_bimi_record(b"v=BIMI12"));
    }

    #[test]
    fn judge() {
        assert_eq!(ids(&check("example.com", &facts(txt(&[GOOD])))), []);
        assert_eq!(
            ids(&check("example.com", &facts(DnsAnswer::NotFound))),
            [("bimi.missing", Severity::Info)]
        );
        let mut f = facts(txt(&[GOOD]));
        f.dmarc = DmarcEnforcement::NotEnforced("p=none".into());
        assert_eq!(
            ids(&check("example.com", &f)),
            [("bimi.dmarc_not_enforced", Severity::Warning)]
        );
        assert_eq!(
            ids(&check(
                "example.com",
                &facts(txt(&["v=BIMI1; l=https://example.com/logo.svg"]))
            )),
            [("bimi.no_certificate", Severity::Info)]
        );
        assert_eq!(
            ids(&check("example.com", &facts(txt(&["v=BIMI1; l=ftp://x"])))),
            [("bimi.syntax_error", Severity::Warning)]
        );
        assert_eq!(
            ids(&check("example.com", &facts(txt(&[GOOD, GOOD])))),
            [("bimi.multiple_records", Severity::Warning)]
        );
        let unknown = check("example.com", &facts(DnsAnswer::Unknown("SERVFAIL".into())));
        assert_eq!(ids(&unknown), [("bimi.dns_error", Severity::Warning)]);
        // Fallback to the organizational domain.
        let f = BimiFacts {
            at_domain: DnsAnswer::NotFound,
            at_org: Some(("example.com".into(), txt(&[GOOD]))),
            dmarc: DmarcEnforcement::Enforced,
        };
        let r = check("mail.example.com", &f);
        assert_eq!(ids(&r), []);
        assert_eq!(r.record.as_deref(), Some(GOOD));
    }

    #[test]
    fn hostile_input_never_panics() {
        let seeds = vec![GOOD.as_bytes().to_vec()];
        super::super::testkit::fuzz(3000, &seeds, b"v=BIMl1;a: /https", |input| {
            let _ = parse(input);
            let _ = check(
                "example.com",
                &facts(DnsAnswer::Found(vec![input.to_vec()])),
            );
        });
    }
}
