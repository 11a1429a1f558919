//! SMTP TLS Reporting (RFC 8460): the `_smtp._tls` TXT record that tells
//! senders where to report TLS failures (of MTA-STS or DANE). No I/O.

use super::tag_list::{self, NameCase};
use super::{lossy, plural, CheckResult, DnsAnswer, Finding, Selection, Severity, TxtRecords};
use crate::text::excerpt;

/// `_smtp._tls.<domain>` (RFC 8460 §3).
pub fn record_name(domain: &str) -> String {
    format!("_smtp._tls.{}", super::domain::normalize(domain))
}

/// RFC 8460 §3: records not starting with `v=TLSRPTv1` are discarded.
pub fn is_tlsrpt_record(record: &[u8]) -> bool {
    match record.strip_prefix(b"v=TLSRPTv1") {
        Some(rest) => matches!(rest.first(), None | Some(b';' | b' ' | b'\t')),
        None => false,
    }
}

/// A parsed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsRptRecord {
    /// The `rua=` destinations, `mailto:` or `https:` URIs.
    pub rua: Vec<String>,
}

/// Parses the record:
///
/// ```text
/// tlsrpt-record  = tlsrpt-version 1*(field-delim tlsrpt-field) [field-delim]
/// field-delim    = *WSP ";" *WSP
/// tlsrpt-field   = tlsrpt-rua / tlsrpt-extension
/// tlsrpt-version = %s"v=TLSRPTv1"
/// tlsrpt-rua     = %s"rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
/// tlsrpt-uri     = URI            ; mailto: or https: (§3)
/// ```
pub fn parse(record: &[u8]) -> Result<TlsRptRecord, Vec<String>> {
    let (tags, errors) = tag_list::parse(record, NameCase::Sensitive);
    let mut problems: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let mut rua = None;
    for (i, t) in tags.iter().enumerate() {
        match (i, t.name.as_str()) {
            (0, "v") if t.value == "TLSRPTv1" => {}
            (0, _) => problems.push("the record does not start with v=TLSRPTv1".into()),
            (_, "v") => problems.push("v= appears after the first field".into()),
            (_, "rua") => {
                let mut uris = Vec::new();
                for uri in t.value.split(',').map(str::trim) {
                    match uri_problem(uri) {
                        None => uris.push(uri.to_owned()),
                        Some(p) => problems.push(format!("rua entry `{}` {p}", excerpt(uri, 60))),
                    }
                }
                rua = Some(uris);
            }
            _ => {}
        }
    }
    match rua {
        Some(rua) if problems.is_empty() && !rua.is_empty() => Ok(TlsRptRecord { rua }),
        Some(_) => Err(problems),
        None => {
            problems.push("the required rua= field is missing".into());
            Err(problems)
        }
    }
}

/// Why a rua URI is unusable, if it is.
fn uri_problem(uri: &str) -> Option<&'static str> {
    let lower = uri.to_ascii_lowercase();
    if let Some(addr) = lower.strip_prefix("mailto:") {
        match addr.rsplit_once('@') {
            Some((local, domain))
                if !local.is_empty()
                    && super::domain::is_host_name(domain.trim_end_matches('.')) =>
            {
                None
            }
            _ => Some("is not a mailto: address"),
        }
    } else if let Some(rest) = lower.strip_prefix("https://") {
        let host = rest.split(['/', '?', '#', ':']).next().unwrap_or("");
        if super::domain::is_host_name(host) {
            None
        } else {
            Some("has no valid host")
        }
    } else {
        Some("is neither mailto: nor https: (RFC 8460 §3)")
    }
}

fn dns_error(name: &str, why: &str) -> Finding {
    Finding::new(
        "tls_rpt.dns_error",
        format!(
            "could not get the TXT records of {name}: {}",
            excerpt(why, 120)
        ),
        "check the resolver and the domain's name servers; the result is unknown, not missing",
    )
}

/// Judges TLS-RPT for `domain`. `mta_sts_published` makes a missing record a
/// warning: MTA-STS failures then go unreported.
pub fn check(domain: &str, txt: &DnsAnswer<TxtRecords>, mta_sts_published: bool) -> CheckResult {
    let name = record_name(domain);
    let mut findings = Vec::new();
    let records = match txt {
        DnsAnswer::Unknown(why) => {
            findings.push(dns_error(&name, why));
            return CheckResult::new("tls_rpt", None, findings);
        }
        DnsAnswer::NotFound => &Vec::new(),
        DnsAnswer::Found(r) => r,
    };
    match Selection::by(records, is_tlsrpt_record) {
        Selection::None => {
            let f = Finding::new(
                "tls_rpt.missing",
                format!("no TLS-RPT record at {name}: senders do not report TLS failures for mail to {domain}"),
                format!("publish `v=TLSRPTv1; rua=mailto:tlsrpt@{domain}` at {name}"),
            );
            findings.push(if mta_sts_published {
                f.with_severity(Severity::Warning)
            } else {
                f
            });
            CheckResult::new("tls_rpt", None, findings)
        }
        Selection::Multiple(n) => {
            findings.push(Finding::new(
                "tls_rpt.multiple_records",
                format!(
                    "{} at {name}: senders ignore TLS-RPT (RFC 8460 §3)",
                    plural(n, "v=TLSRPTv1 record")
                ),
                "keep exactly one v=TLSRPTv1 record",
            ));
            CheckResult::new("tls_rpt", None, findings)
        }
        Selection::One(record) => {
            if let Err(problems) = parse(record) {
                for p in problems.iter().take(3) {
                    findings.push(Finding::new(
                        "tls_rpt.syntax_error",
                        format!("the TLS-RPT record at {name} is invalid: {p}"),
                        "publish `v=TLSRPTv1; rua=mailto:<address>` (or an https: URI)",
                    ));
                }
            }
            CheckResult::new("tls_rpt", Some(lossy(record)), findings)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(r: &CheckResult) -> Vec<(&'static str, Severity)> {
        r.findings.iter().map(|f| (f.id, f.severity)).collect()
    }

    fn txt(records: &[&str]) -> DnsAnswer<TxtRecords> {
        DnsAnswer::Found(records.iter().map(|r| r.as_bytes().to_vec()).collect())
    }

    #[test]
    fn syntax() {
        assert_eq!(
            parse(b"v=TLSRPTv1; rua=mailto:tls@example.com, https://r.example/tlsrpt"),
            Ok(TlsRptRecord {
                rua: vec![
                    "mailto:tls@example.com".into(),
                    "https://r.example/tlsrpt".into()
                ]
            })
        );
        assert!(parse(b"v=TLSRPTv1;rua=mailto:a@example.com;").is_ok());
        assert!(parse(b"v=TLSRPTv1;").is_err());
        assert!(parse(b"v=TLSRPTv1; rua=ftp://example.com").is_err());
        assert!(parse(b"v=TLSRPTv1; rua=mailto:nobody").is_err());
        assert!(parse(b"rua=mailto:a@example.com; v=TLSRPTv1").is_err());
        assert!(is_tlsrpt_record(b"v=TLSRPTv1;rua=x"));
        assert!(!is_tlsrpt_record(b"v=TLSRPTv10"));
    }

    #[test]
    fn judge() {
        let ok = check(
            "example.com",
            &txt(&["v=TLSRPTv1; rua=mailto:t@example.com"]),
            true,
        );
        assert_eq!(ids(&ok), []);
        assert_eq!(
            ok.record.as_deref(),
            Some("v=TLSRPTv1; rua=mailto:t@example.com")
        );
        assert_eq!(
            ids(&check("example.com", &DnsAnswer::NotFound, false)),
            [("tls_rpt.missing", Severity::Info)]
        );
        assert_eq!(
            ids(&check("example.com", &DnsAnswer::NotFound, true)),
            [("tls_rpt.missing", Severity::Warning)]
        );
        assert_eq!(
            ids(&check(
                "example.com",
                &txt(&["v=TLSRPTv1; rua=ftp://x"]),
                false
            )),
            [("tls_rpt.syntax_error", Severity::Warning)]
        );
        assert_eq!(
            ids(&check(
                "example.com",
                &txt(&[
                    "v=TLSRPTv1; rua=mailto:a@b.example",
                    "v=TLSRPTv1; rua=mailto:c@b.example"
                ]),
                false
            )),
            [("tls_rpt.multiple_records", Severity::Warning)]
        );
        let unknown = check(
            "example.com",
            &DnsAnswer::Unknown("timed out".into()),
            false,
        );
        assert_eq!(ids(&unknown), [("tls_rpt.dns_error", Severity::Warning)]);
        assert_eq!(unknown.status, super::super::Status::Unknown);
    }

    #[test]
    fn hostile_input_never_panics() {
        let seeds = vec![b"v=TLSRPTv1; rua=mailto:a@b.example,https://x.example/r".to_vec()];
        super::super::testkit::fuzz(3000, &seeds, b"v=TLSRPTrua:@/,; mailto", |input| {
            let _ = parse(input);
            let _ = check("example.com", &DnsAnswer::Found(vec![input.to_vec()]), true);
        });
    }
}
