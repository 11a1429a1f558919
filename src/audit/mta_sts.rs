//! MTA-STS (RFC 8461): the `_mta-sts` TXT record, the policy file fetched
//! over HTTPS, and whether the policy covers the domain's MX hosts. The
//! parsers and the judge do no I/O; the lookup layer fetches the record and
//! the policy ([`PolicyFetch`]).

use super::lookup::MxHost;
use super::tag_list::{self, NameCase};
use super::{lossy, plural, CheckResult, DnsAnswer, Finding, Selection, Severity, TxtRecords};
use crate::text::excerpt;

/// RFC 8461 §3.3: senders SHOULD NOT read more than 64 KiB of policy.
pub const MAX_POLICY_BYTES: usize = 64 * 1024;
/// RFC 8461 §3.2: max_age is at most 31557600 seconds (about one year).
pub const MAX_MAX_AGE: u64 = 31_557_600;
/// Below one day a policy barely outlives a DNS change (§3.2 advises weeks).
pub const SHORT_MAX_AGE: u64 = 86_400;

/// `_mta-sts.<domain>` (RFC 8461 §3.1).
pub fn record_name(domain: &str) -> String {
    format!("_mta-sts.{}", super::domain::normalize(domain))
}

/// `mta-sts.<domain>`, the host that serves the policy (RFC 8461 §3.3).
pub fn policy_host(domain: &str) -> String {
    format!("mta-sts.{}", super::domain::normalize(domain))
}

/// The path of the policy on [`policy_host`] (RFC 8461 §3.3).
pub const POLICY_PATH: &str = "/.well-known/mta-sts.txt";

/// RFC 8461 §3.1: records not starting with `v=STSv1` are discarded
/// (case-sensitive, `%s"v=STSv1"`).
pub fn is_sts_record(record: &[u8]) -> bool {
    match record.strip_prefix(b"v=STSv1") {
        Some(rest) => matches!(rest.first(), None | Some(b';' | b' ' | b'\t')),
        None => false,
    }
}

/// The TXT record's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsRecord {
    /// `id=`: 1–32 letters and digits; changes whenever the policy changes.
    pub id: String,
}

/// Parses the record:
///
/// ```text
/// sts-text-record = sts-version 1*(sts-field-delim sts-field) [sts-field-delim]
/// sts-field       = sts-id / sts-extension
/// sts-field-delim = *WSP ";" *WSP
/// sts-version     = %s"v=STSv1"
/// sts-id          = %s"id=" 1*32(ALPHA / DIGIT)
/// sts-extension   = sts-ext-name "=" sts-ext-value
/// sts-ext-name    = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
/// sts-ext-value   = 1*(%x21-3A / %x3C / %x3E-7E)
/// ```
pub fn parse_record(record: &[u8]) -> Result<StsRecord, Vec<String>> {
    let (tags, errors) = tag_list::parse(record, NameCase::Sensitive);
    let mut problems: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let mut id = None;
    let mut id_seen = false;
    for (i, t) in tags.iter().enumerate() {
        match (i, t.name.as_str()) {
            (0, "v") if t.value == "STSv1" => {}
            (0, _) => problems.push("the record does not start with v=STSv1".into()),
            (_, "v") => problems.push("v= appears after the first field".into()),
            (_, "id") => {
                id_seen = true;
                let ok = (1..=32).contains(&t.value.len())
                    && t.value.bytes().all(|b| b.is_ascii_alphanumeric());
                if ok {
                    id = Some(t.value.clone());
                } else {
                    problems.push(format!(
                        "id=`{}` must be 1 to 32 letters and digits",
                        excerpt(&t.value, 40)
                    ));
                }
            }
            (_, _) => {
                let value_ok = !t.value.is_empty()
                    && t.value
                        .bytes()
                        .all(|b| (0x21..=0x7e).contains(&b) && b != b';' && b != b'=');
                if !value_ok {
                    problems.push(format!(
                        "extension {}= has an invalid value",
                        excerpt(&t.name, 32)
                    ));
                }
            }
        }
    }
    if tags.is_empty() && problems.is_empty() {
        problems.push("the record is empty".into());
    }
    match id {
        Some(id) if problems.is_empty() => Ok(StsRecord { id }),
        Some(_) => Err(problems),
        None => {
            if !id_seen {
                problems.push("the required id= field is missing".into());
            }
            Err(problems)
        }
    }
}

/// `mode:` of a policy (RFC 8461 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Senders MUST NOT deliver to MX hosts that fail the policy.
    Enforce,
    /// Senders deliver anyway and report failures (TLS-RPT).
    Testing,
    /// The policy is withdrawn.
    None,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        }
    }
}

/// A parsed policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub mode: Mode,
    /// Seconds senders may cache the policy.
    pub max_age: u64,
    /// `mx:` patterns, normalised: `mx1.example.com` or `*.example.com`.
    pub mx: Vec<String>,
}

/// Parses a policy file (RFC 8461 §3.2):
///
/// ```text
/// sts-policy-record  = sts-policy-field *WSP *(sts-policy-term sts-policy-field *WSP) [sts-policy-term]
/// sts-policy-term    = LF / CRLF
/// sts-policy-field   = sts-policy-version / sts-policy-mode / sts-policy-max-age
///                      / sts-policy-mx / sts-policy-extension
/// sts-policy-field-delim = ":" *WSP
/// sts-policy-version = %s"version" sts-policy-field-delim %s"STSv1"
/// sts-policy-mode    = %s"mode" sts-policy-field-delim ("testing" / "enforce" / "none")
/// sts-policy-max-age = %s"max_age" sts-policy-field-delim 1*10(DIGIT)
/// sts-policy-mx      = %s"mx" sts-policy-field-delim ["*."] domain
/// ```
///
/// Unknown fields are ignored; for a repeated single-valued field the first
/// one counts.
pub fn parse_policy(text: &[u8]) -> Result<Policy, Vec<String>> {
    let mut problems = Vec::new();
    let mut version = None;
    let mut mode = None;
    let mut max_age = None;
    let mut mx = Vec::new();
    let text = match std::str::from_utf8(text) {
        Ok(t) => t,
        Err(_) => return Err(vec!["the policy is not UTF-8 text".into()]),
    };
    for (n, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let line = line.trim_end_matches([' ', '\t']);
        if line.is_empty() {
            continue;
        }
        let lineno = n + 1;
        let Some((key, value)) = line.split_once(':') else {
            problems.push(format!("line {lineno} is not `key: value`"));
            continue;
        };
        let value = value.trim_start_matches([' ', '\t']);
        match key {
            "version" if version.is_none() => version = Some(value.to_owned()),
            "mode" if mode.is_none() => {
                mode = Some(match value {
                    "enforce" => Some(Mode::Enforce),
                    "testing" => Some(Mode::Testing),
                    "none" => Some(Mode::None),
                    other => {
                        problems.push(format!(
                            "line {lineno}: mode `{}` is not enforce, testing or none",
                            excerpt(other, 40)
                        ));
                        None
                    }
                });
            }
            "max_age" if max_age.is_none() => {
                let parsed =
                    (1..=10).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit());
                match value.parse::<u64>() {
                    Ok(v) if parsed && v <= MAX_MAX_AGE => max_age = Some(Some(v)),
                    _ => {
                        problems.push(format!(
                            "line {lineno}: max_age `{}` is not a number of seconds up to {MAX_MAX_AGE}",
                            excerpt(value, 40)
                        ));
                        max_age = Some(None);
                    }
                }
            }
            "mx" => {
                let pattern = super::domain::normalize(value);
                let host = pattern.strip_prefix("*.").unwrap_or(&pattern);
                if super::domain::is_host_name(host) && !host.contains('*') {
                    mx.push(pattern);
                } else {
                    problems.push(format!(
                        "line {lineno}: mx `{}` is not a host name or *.domain pattern",
                        excerpt(value, 60)
                    ));
                }
            }
            _ => {}
        }
    }
    match version.as_deref() {
        Some("STSv1") => {}
        Some(v) => problems.push(format!("version `{}` is not STSv1", excerpt(v, 20))),
        None => problems.push("the required version: STSv1 line is missing".into()),
    }
    if mode.is_none() {
        problems.push("the required mode: line is missing".into());
    }
    if max_age.is_none() {
        problems.push("the required max_age: line is missing".into());
    }
    if mx.is_empty() && !matches!(mode, Some(Some(Mode::None))) {
        problems.push("no mx: line: the policy matches no MX host".into());
    }
    match (mode.flatten(), max_age.flatten()) {
        (Some(mode), Some(max_age)) if problems.is_empty() => Ok(Policy { mode, max_age, mx }),
        _ => Err(problems),
    }
}

/// RFC 8461 §4.1: a pattern matches the host itself, or with `*.` exactly
/// one leftmost label (`*.example.com` matches `mx.example.com`, not
/// `a.b.example.com` nor `example.com`).
pub fn mx_matches(pattern: &str, host: &str) -> bool {
    let host = super::domain::normalize(host);
    let pattern = super::domain::normalize(pattern);
    match pattern.strip_prefix("*.") {
        Some(parent) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
        None => host == pattern,
    }
}

/// The outcome of fetching `https://mta-sts.<domain>/.well-known/mta-sts.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyFetch {
    /// A 200 response. `content_type` is the media type without parameters.
    Fetched {
        body: Vec<u8>,
        content_type: Option<String>,
    },
    /// The policy host could not be resolved (unknown, not missing).
    DnsError(String),
    /// Anything else: no address, connection, TLS or certificate failure, a
    /// status other than 200 (redirects are not followed, §3.3), too large.
    Failed(String),
}

/// What the check reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsFacts {
    pub txt: DnsAnswer<TxtRecords>,
    /// Fetched only when exactly one valid record was found.
    pub policy: Option<PolicyFetch>,
    /// The domain's MX records, to check the policy covers them.
    pub mx: Option<DnsAnswer<Vec<MxHost>>>,
}

/// The result of the check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsReport {
    pub result: CheckResult,
    /// The mode in force, when a valid policy was fetched.
    pub mode: Option<Mode>,
    /// True when a `v=STSv1` record is published (valid or not).
    pub published: bool,
}

/// True when the TXT answer holds exactly one valid record, so the policy is
/// worth fetching.
pub fn wants_policy(txt: &DnsAnswer<TxtRecords>) -> bool {
    match txt {
        DnsAnswer::Found(records) => match Selection::by(records, is_sts_record) {
            Selection::One(r) => parse_record(r).is_ok(),
            _ => false,
        },
        _ => false,
    }
}

fn dns_error(name: &str, why: &str) -> Finding {
    Finding::new(
        "mta_sts.dns_error",
        format!("could not get the records of {name}: {}", excerpt(why, 120)),
        "check the resolver and the domain's name servers; the result is unknown, not missing",
    )
}

/// Judges MTA-STS for `domain`.
pub fn check(domain: &str, facts: &StsFacts) -> StsReport {
    let name = record_name(domain);
    let mut findings = Vec::new();
    let report = |findings: Vec<Finding>, record: Option<String>, mode, published| StsReport {
        result: CheckResult::new("mta_sts", record, findings),
        mode,
        published,
    };
    let records = match &facts.txt {
        DnsAnswer::Unknown(why) => {
            findings.push(dns_error(&name, why));
            return report(findings, None, None, false);
        }
        DnsAnswer::NotFound => &Vec::new(),
        DnsAnswer::Found(r) => r,
    };
    let record = match Selection::by(records, is_sts_record) {
        Selection::None => {
            findings.push(Finding::new(
                "mta_sts.missing",
                format!("no MTA-STS record at {name}: senders cannot require TLS for mail to {domain}"),
                "publish an MTA-STS policy (RFC 8461) and the _mta-sts TXT record, starting in mode: testing",
            ));
            return report(findings, None, None, false);
        }
        Selection::Multiple(n) => {
            findings.push(Finding::new(
                "mta_sts.multiple_records",
                format!(
                    "{} at {name}: senders ignore MTA-STS (RFC 8461 §3.1)",
                    plural(n, "v=STSv1 record")
                ),
                "keep exactly one v=STSv1 record",
            ));
            return report(findings, None, None, true);
        }
        Selection::One(r) => r,
    };
    let text = lossy(record);
    if let Err(problems) = parse_record(record) {
        for p in problems.iter().take(3) {
            findings.push(Finding::new(
                "mta_sts.syntax_error",
                format!("the MTA-STS record at {name} is invalid: {p}; senders ignore it"),
                "publish `v=STSv1; id=<1-32 letters and digits>`",
            ));
        }
        return report(findings, Some(text), None, true);
    }
    let host = policy_host(domain);
    let url = format!("https://{host}{POLICY_PATH}");
    let policy = match &facts.policy {
        None => {
            findings.push(dns_error(&host, "not looked up"));
            return report(findings, Some(text), None, true);
        }
        Some(PolicyFetch::DnsError(why)) => {
            findings.push(dns_error(&host, why));
            return report(findings, Some(text), None, true);
        }
        Some(PolicyFetch::Failed(why)) => {
            findings.push(Finding::new(
                "mta_sts.policy_fetch_failed",
                format!("the MTA-STS policy {url} could not be fetched: {}; senders without a cached policy ignore MTA-STS", excerpt(why, 160)),
                format!("serve the policy at {url} over HTTPS with a valid certificate for {host}, status 200, no redirect"),
            ));
            return report(findings, Some(text), None, true);
        }
        Some(PolicyFetch::Fetched { body, content_type }) => {
            // RFC 8461 §3.3: the media type MUST be text/plain.
            match content_type.as_deref() {
                Some(ct) if ct.eq_ignore_ascii_case("text/plain") => {}
                other => findings.push(Finding::new(
                    "mta_sts.policy_invalid",
                    format!(
                        "the MTA-STS policy {url} is served as {}, not text/plain (RFC 8461 §3.3)",
                        other.map_or("no Content-Type".to_owned(), |c| format!(
                            "`{}`",
                            excerpt(c, 60)
                        ))
                    ),
                    "serve the policy with Content-Type: text/plain",
                )),
            }
            match parse_policy(body) {
                Ok(p) => p,
                Err(problems) => {
                    for p in problems.iter().take(5) {
                        findings.push(Finding::new(
                            "mta_sts.policy_invalid",
                            format!("the MTA-STS policy {url} is invalid: {p}"),
                            "fix the policy: version: STSv1, mode, max_age and one mx: line per MX host",
                        ));
                    }
                    return report(findings, Some(text), None, true);
                }
            }
        }
    };
    match policy.mode {
        Mode::Enforce => {}
        Mode::Testing => findings.push(Finding::new(
            "mta_sts.mode_testing",
            format!("the MTA-STS policy of {domain} is in mode testing: senders report TLS failures but still deliver without TLS"),
            "switch to mode: enforce once TLS-RPT reports show no failures",
        )),
        Mode::None => findings.push(Finding::new(
            "mta_sts.mode_none",
            format!("the MTA-STS policy of {domain} is in mode none: MTA-STS is withdrawn"),
            "set mode: testing or enforce, or remove the _mta-sts record once cached policies expired",
        )),
    }
    if policy.max_age < SHORT_MAX_AGE {
        findings.push(Finding::new(
            "mta_sts.max_age_short",
            format!("max_age {} s of the MTA-STS policy of {domain} is under a day: an attacker who blocks the policy fetch soon disables it", policy.max_age),
            "use max_age: 604800 (a week) or more once the policy is stable",
        ));
    }
    if policy.mode != Mode::None {
        if let Some(DnsAnswer::Found(hosts)) = &facts.mx {
            for h in hosts.iter().filter(|h| !h.exchange.is_empty()) {
                if !policy.mx.iter().any(|p| mx_matches(p, &h.exchange)) {
                    let f = Finding::new(
                        "mta_sts.mx_not_covered",
                        format!("the MX host {} of {domain} matches no mx: line of the MTA-STS policy ({})", excerpt(&h.exchange, 80), excerpt(&policy.mx.join(", "), 120)),
                        format!("add `mx: {}` to the policy and change the id= of the TXT record", excerpt(&h.exchange, 80)),
                    );
                    findings.push(if policy.mode == Mode::Enforce {
                        f
                    } else {
                        f.with_severity(Severity::Warning)
                    });
                }
            }
        }
    }
    report(findings, Some(text), Some(policy.mode), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(r: &StsReport) -> Vec<&'static str> {
        r.result.findings.iter().map(|f| f.id).collect()
    }

    fn txt(records: &[&str]) -> DnsAnswer<TxtRecords> {
        DnsAnswer::Found(records.iter().map(|r| r.as_bytes().to_vec()).collect())
    }

    fn fetched(body: &str) -> Option<PolicyFetch> {
        Some(PolicyFetch::Fetched {
            body: body.as_bytes().to_vec(),
            content_type: Some("text/plain".into()),
        })
    }

    fn mx(hosts: &[&str]) -> Option<DnsAnswer<Vec<MxHost>>> {
        Some(DnsAnswer::Found(
            hosts
                .iter()
                .map(|h| MxHost {
                    preference: 10,
                    exchange: (*h).into(),
                })
                .collect(),
        ))
    }

    const GOOD: &str = "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\nmx: *.backup.example.com\r\nmax_age: 604800\r\n";

    #[test]
    fn record_syntax() {
        assert_eq!(
            parse_record(b"v=STSv1; id=20240101T000000"),
            Ok(StsRecord {
                id: "20240101T000000".into()
            })
        );
        assert!(parse_record(b"v=STSv1; id=abc;").is_ok());
        assert!(parse_record(b"v=STSv1;id=abc; ext_1=x").is_ok());
        assert!(parse_record(b"v=STSv1;").is_err());
        assert!(parse_record(b"v=STSv1; id=has-dash").is_err());
        assert!(parse_record(&[b"v=STSv1; id=".as_slice(), &[b'a'; 33]].concat()).is_err());
        assert!(parse_record(b"id=abc; v=STSv1").is_err());
        assert!(is_sts_record(b"v=STSv1; id=1"));
        assert!(!is_sts_record(b"v=STSv10; id=1"));
        assert!(!is_sts_record(b"v=stsv1; id=1"));
    }

    #[test]
    fn policy_syntax() {
        let p = parse_policy(GOOD.as_bytes()).unwrap();
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.max_age, 604_800);
        assert_eq!(p.mx, ["mx1.example.com", "*.backup.example.com"]);
        // LF-only lines are allowed (sts-policy-term = LF / CRLF).
        assert!(parse_policy(GOOD.replace("\r\n", "\n").as_bytes()).is_ok());
        assert!(parse_policy(b"version: STSv1\nmode: none\nmax_age: 86400\n").is_ok());
        let err = parse_policy(b"version: STSv2\nmode: strict\nmx: a.example\n").unwrap_err();
        assert_eq!(err.len(), 3, "{err:?}");
        assert!(parse_policy(
            b"version: STSv1\nmode: enforce\nmax_age: 99999999999\nmx: a.example\n"
        )
        .is_err());
        assert!(parse_policy(b"version: STSv1\nmode: enforce\nmax_age: 600\n").is_err());
        assert!(
            parse_policy(b"version: STSv1\nmode: enforce\nmax_age: 600\nmx: a.*.example\n")
                .is_err()
        );
        assert!(parse_policy(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn mx_patterns() {
        assert!(mx_matches("mx1.example.com", "MX1.example.com."));
        assert!(mx_matches("*.example.com", "mx.example.com"));
        assert!(!mx_matches("*.example.com", "a.b.example.com"));
        assert!(!mx_matches("*.example.com", "example.com"));
        assert!(!mx_matches("mx1.example.com", "mx2.example.com"));
    }

    #[test]
    fn judge() {
        let ok = StsFacts {
            txt: txt(&["v=STSv1; id=1", "unrelated"]),
            policy: fetched(GOOD),
            mx: mx(&["mx1.example.com", "b.backup.example.com"]),
        };
        let r = check("example.com", &ok);
        assert_eq!(ids(&r), Vec::<&str>::new());
        assert_eq!(r.mode, Some(Mode::Enforce));

        let uncovered = StsFacts {
            mx: mx(&["mx1.example.com", "mx9.other.example"]),
            ..ok.clone()
        };
        assert_eq!(
            ids(&check("example.com", &uncovered)),
            ["mta_sts.mx_not_covered"]
        );

        let testing = StsFacts {
            policy: fetched(&GOOD.replace("enforce", "testing").replace("604800", "3600")),
            ..uncovered.clone()
        };
        let r = check("example.com", &testing);
        assert_eq!(
            ids(&r),
            [
                "mta_sts.mode_testing",
                "mta_sts.max_age_short",
                "mta_sts.mx_not_covered"
            ]
        );
        assert_eq!(r.result.status, super::super::Status::Warning);

        let missing = StsFacts {
            txt: DnsAnswer::NotFound,
            policy: None,
            mx: None,
        };
        let r = check("example.com", &missing);
        assert_eq!(ids(&r), ["mta_sts.missing"]);
        assert!(!r.published);

        let unknown = StsFacts {
            txt: DnsAnswer::Unknown("SERVFAIL".into()),
            ..missing.clone()
        };
        assert_eq!(ids(&check("example.com", &unknown)), ["mta_sts.dns_error"]);

        let two = StsFacts {
            txt: txt(&["v=STSv1; id=1", "v=STSv1; id=2"]),
            ..missing.clone()
        };
        assert_eq!(
            ids(&check("example.com", &two)),
            ["mta_sts.multiple_records"]
        );

        let bad = StsFacts {
            txt: txt(&["v=STSv1; id=no-dashes"]),
            ..missing.clone()
        };
        assert!(!wants_policy(&bad.txt));
        assert_eq!(ids(&check("example.com", &bad)), ["mta_sts.syntax_error"]);

        let failed = StsFacts {
            policy: Some(PolicyFetch::Failed("HTTP 404".into())),
            ..ok.clone()
        };
        assert_eq!(
            ids(&check("example.com", &failed)),
            ["mta_sts.policy_fetch_failed"]
        );

        let html = StsFacts {
            policy: Some(PolicyFetch::Fetched {
                body: GOOD.as_bytes().to_vec(),
                content_type: Some("text/html".into()),
            }),
            ..ok.clone()
        };
        assert_eq!(
            ids(&check("example.com", &html)),
            ["mta_sts.policy_invalid"]
        );
    }

    #[test]
    fn hostile_input_never_panics() {
        let seeds = vec![GOOD.as_bytes().to_vec(), b"v=STSv1; id=abc".to_vec()];
        super::super::testkit::fuzz(3000, &seeds, b"v=STSmodexa_:;*. \r\n1", |input| {
            let _ = parse_record(input);
            let _ = is_sts_record(input);
            let _ = parse_policy(input);
            let s = String::from_utf8_lossy(input);
            let _ = mx_matches(&s, "mx.example");
            let _ = mx_matches("*.example", &s);
        });
    }
}
