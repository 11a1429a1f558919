//! SMTP TLS reports (RFC 8460 §4): the JSON a sending MTA's operator mails
//! to the receiving domain's `rua`.
//!
//! Lenient where the meaning is clear (member names in any case, numbers
//! written as strings, values in any case, an unparsable IP or date left
//! out), strict on the counts: a session count that is not a whole number is
//! an error, since every metric is built on them.

use std::borrow::Cow;
use std::net::IpAddr;

use serde_json::{Map, Value};

use super::{sum, vocabulary, Limits, ReportError, Reporter};

vocabulary! {
    /// RFC 8460 §4.4 `policy-type`.
    pub enum PolicyType fallback Other {
        /// MTA-STS (RFC 8461).
        Sts = "sts",
        /// DANE (RFC 7672).
        Tlsa = "tlsa",
        /// Neither was found.
        NoPolicyFound = "no-policy-found",
        /// Anything else.
        Other = "other",
    }
}

vocabulary! {
    /// RFC 8460 §4.3 result types of failed sessions.
    pub enum ResultType fallback Other {
        /// §4.3.1: the MX did not offer STARTTLS.
        StarttlsNotSupported = "starttls-not-supported",
        /// §4.3.1: the certificate does not name the MX host.
        CertificateHostMismatch = "certificate-host-mismatch",
        /// §4.3.1: the certificate has expired.
        CertificateExpired = "certificate-expired",
        /// §4.3.1: the certificate chain is not trusted.
        CertificateNotTrusted = "certificate-not-trusted",
        /// §4.3.1: another validation failure.
        ValidationFailure = "validation-failure",
        /// §4.3.2.1: the TLSA record is invalid.
        TlsaInvalid = "tlsa-invalid",
        /// §4.3.2.1: DNSSEC validation failed.
        DnssecInvalid = "dnssec-invalid",
        /// §4.3.2.1: DANE was required but no usable TLSA record was found.
        DaneRequired = "dane-required",
        /// §4.3.2.2: the MTA-STS policy could not be fetched.
        StsPolicyFetchError = "sts-policy-fetch-error",
        /// §4.3.2.2: the MTA-STS policy is invalid.
        StsPolicyInvalid = "sts-policy-invalid",
        /// §4.3.2.2: the MTA-STS policy host's certificate is invalid.
        StsWebpkiInvalid = "sts-webpki-invalid",
        /// A type outside RFC 8460.
        Other = "other",
    }
}

/// One failure detail (`failure-details[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureDetail {
    /// What failed.
    pub result_type: ResultType,
    /// Sessions that failed this way.
    pub failed_sessions: u64,
    /// The sending MTA, when given and an address.
    pub sending_mta_ip: Option<IpAddr>,
    /// The receiving MX host name, when given.
    pub receiving_mx_hostname: Option<String>,
    /// The receiving IP, when given and an address.
    pub receiving_ip: Option<IpAddr>,
    /// The reporter's own reason code, when given.
    pub failure_reason_code: Option<String>,
}

/// One policy's summary (`policies[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPolicy {
    /// Which policy applied.
    pub policy_type: PolicyType,
    /// The domain the policy is for.
    pub policy_domain: String,
    /// MX host patterns of the policy.
    pub mx_hosts: Vec<String>,
    /// Sessions that succeeded.
    pub successful: u64,
    /// Sessions that failed.
    pub failed: u64,
    /// The failures, by type.
    pub failures: Vec<FailureDetail>,
}

impl TlsPolicy {
    /// Failed sessions per result type, in the order of [`ResultType::ALL`],
    /// types without failures left out.
    pub fn failures_by_type(&self) -> Vec<(ResultType, u64)> {
        ResultType::ALL
            .iter()
            .filter_map(|t| {
                let mut details = self
                    .failures
                    .iter()
                    .filter(|f| f.result_type == *t)
                    .peekable();
                details.peek()?;
                Some((*t, sum(details.map(|f| f.failed_sessions))))
            })
            .collect()
    }
}

/// An SMTP TLS report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsReport {
    /// The reporting organization.
    pub org_name: String,
    /// Contact: an address or URI.
    pub contact_info: Option<String>,
    /// The reporter's report id.
    pub report_id: String,
    /// Start of the period, seconds since the epoch, when readable.
    pub begin: Option<i64>,
    /// End of the period, seconds since the epoch, when readable.
    pub end: Option<i64>,
    /// The receiver, from the table of major ones.
    pub reporter: Reporter,
    /// The policies.
    pub policies: Vec<TlsPolicy>,
}

/// Reads an SMTP TLS report from its JSON.
pub fn parse(bytes: &[u8], limits: &Limits) -> Result<TlsReport, ReportError> {
    // serde_json refuses invalid UTF-8 in strings; a reporter's stray byte
    // should not cost the report.
    let text = String::from_utf8_lossy(bytes);
    // serde_json stops at 128 nested levels, so depth cannot exhaust the stack.
    let value: Value = serde_json::from_str(text.trim_start_matches('\u{feff}'))
        .map_err(|e| ReportError::Json(e.to_string()))?;
    let top = value
        .as_object()
        .ok_or(ReportError::Missing("a JSON object"))?;
    let policies = member(top, "policies")
        .and_then(Value::as_array)
        .ok_or(ReportError::Missing("policies"))?;
    let report_id = member(top, "report-id")
        .and_then(string)
        .filter(|s| !s.is_empty())
        .ok_or(ReportError::Missing("report-id"))?
        .into_owned();
    let org_name = member(top, "organization-name")
        .and_then(string)
        .unwrap_or_default()
        .into_owned();
    let contact_info = member(top, "contact-info")
        .and_then(string)
        .map(Cow::into_owned);
    let range = member(top, "date-range").and_then(Value::as_object);
    let date = |key| {
        range
            .and_then(|r| member(r, key))
            .and_then(Value::as_str)
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s.trim()).ok())
            .map(|d| d.timestamp())
    };
    let (begin, end) = (date("start-datetime"), date("end-datetime"));

    let mut items = 0usize;
    let mut out = Vec::with_capacity(policies.len().min(limits.max_records));
    for p in policies {
        items += 1;
        if items > limits.max_records {
            return Err(ReportError::TooManyRecords {
                limit: limits.max_records,
            });
        }
        out.push(policy(p, limits, &mut items)?);
    }
    let reporter = Reporter::identify(&org_name, contact_info.as_deref().unwrap_or(""));
    Ok(TlsReport {
        org_name,
        contact_info,
        report_id,
        begin,
        end,
        reporter,
        policies: out,
    })
}

fn policy(p: &Value, limits: &Limits, items: &mut usize) -> Result<TlsPolicy, ReportError> {
    let p = p
        .as_object()
        .ok_or(ReportError::Missing("policies[] object"))?;
    let details = member(p, "policy")
        .and_then(Value::as_object)
        .ok_or(ReportError::Missing("policies[].policy"))?;
    let summary = member(p, "summary")
        .and_then(Value::as_object)
        .ok_or(ReportError::Missing("policies[].summary"))?;
    let policy_type = member(details, "policy-type")
        .and_then(string)
        .map(|s| PolicyType::parse(&s))
        .ok_or(ReportError::Missing("policies[].policy.policy-type"))?;
    let policy_domain = member(details, "policy-domain")
        .and_then(string)
        .map(|s| s.trim().trim_end_matches('.').to_ascii_lowercase())
        .unwrap_or_default();
    let mx_hosts = member(details, "mx-host")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(string).map(Cow::into_owned).collect())
        .unwrap_or_default();
    let successful = count(
        member(summary, "total-successful-session-count"),
        "total-successful-session-count",
    )?;
    let failed = count(
        member(summary, "total-failure-session-count"),
        "total-failure-session-count",
    )?;
    let mut failures = Vec::new();
    let empty = Vec::new();
    let list = match member(p, "failure-details") {
        None | Some(Value::Null) => &empty,
        Some(Value::Array(a)) => a,
        Some(_) => return Err(ReportError::bad_value("failure-details", "not an array")),
    };
    for f in list {
        *items += 1;
        if *items > limits.max_records {
            return Err(ReportError::TooManyRecords {
                limit: limits.max_records,
            });
        }
        let f = f
            .as_object()
            .ok_or(ReportError::Missing("failure-details[] object"))?;
        let text = |key| member(f, key).and_then(string).map(Cow::into_owned);
        failures.push(FailureDetail {
            result_type: text("result-type")
                .map(|s| ResultType::parse(&s))
                .ok_or(ReportError::Missing("failure-details[].result-type"))?,
            failed_sessions: count(member(f, "failed-session-count"), "failed-session-count")?,
            sending_mta_ip: text("sending-mta-ip").and_then(|s| s.trim().parse().ok()),
            receiving_mx_hostname: text("receiving-mx-hostname"),
            receiving_ip: text("receiving-ip").and_then(|s| s.trim().parse().ok()),
            failure_reason_code: text("failure-reason-code"),
        });
    }
    Ok(TlsPolicy {
        policy_type,
        policy_domain,
        mx_hosts,
        successful,
        failed,
        failures,
    })
}

/// A member by its RFC 8460 name, or failing that in any ASCII case.
fn member<'v>(obj: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// A string member, or a number written where a string belongs.
fn string(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::String(s) => Some(Cow::Borrowed(s.as_str())),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        _ => None,
    }
}

/// A session count: a whole number, or a string of one; missing is 0.
fn count(v: Option<&Value>, field: &'static str) -> Result<u64, ReportError> {
    match v {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| ReportError::bad_value(field, &n.to_string())),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| ReportError::bad_value(field, s)),
        Some(other) => Err(ReportError::bad_value(field, &other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_EXAMPLE: &str = r#"{
      "organization-name": "Company-X",
      "date-range": {"start-datetime": "2016-04-01T00:00:00Z", "end-datetime": "2016-04-01T23:59:59Z"},
      "contact-info": "sts-reporting@company-x.example",
      "report-id": "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
      "policies": [{
        "policy": {"policy-type": "sts", "policy-string": ["version: STSv1", "mode: testing"],
                   "policy-domain": "company-y.example", "mx-host": ["*.mail.company-y.example"]},
        "summary": {"total-successful-session-count": 5326, "total-failure-session-count": 303},
        "failure-details": [
          {"result-type": "certificate-expired", "sending-mta-ip": "2001:db8:abcd:0012::1",
           "receiving-mx-hostname": "mx1.mail.company-y.example", "failed-session-count": 100},
          {"result-type": "starttls-not-supported", "sending-mta-ip": "2001:db8:abcd:0013::1",
           "receiving-mx-hostname": "mx2.mail.company-y.example", "receiving-ip": "203.0.113.56",
           "failed-session-count": 200, "additional-information": "https://reports.company-x.example/"},
          {"result-type": "validation-failure", "sending-mta-ip": "198.51.100.62",
           "receiving-ip": "203.0.113.58", "receiving-mx-hostname": "mx-backup.mail.company-y.example",
           "failed-session-count": 3, "failure-reason-code": "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED"}
        ]}]}"#;

    #[test]
    fn reads_the_rfc_8460_example() {
        let r = parse(RFC_EXAMPLE.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(r.report_id, "5065427c-23d3-47ca-b6e0-946ea0e8c4be");
        assert_eq!(r.begin, Some(1_459_468_800));
        let p = &r.policies[0];
        assert_eq!(
            (p.policy_type, p.successful, p.failed),
            (PolicyType::Sts, 5326, 303)
        );
        assert_eq!(
            p.failures_by_type(),
            vec![
                (ResultType::StarttlsNotSupported, 200),
                (ResultType::CertificateExpired, 100),
                (ResultType::ValidationFailure, 3)
            ]
        );
        assert_eq!(
            p.failures[2].sending_mta_ip,
            Some("198.51.100.62".parse().unwrap())
        );
    }

    #[test]
    fn upper_case_values_and_string_counts_are_read() {
        let json = RFC_EXAMPLE
            .replace("\"sts\"", "\"STS\"")
            .replace("\"certificate-expired\"", "\"Certificate-Expired\"")
            .replace("5326", "\"5326\"");
        let r = parse(json.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(r.policies[0].policy_type, PolicyType::Sts);
        assert_eq!(r.policies[0].successful, 5326);
        assert_eq!(
            r.policies[0].failures[0].result_type,
            ResultType::CertificateExpired
        );
    }

    #[test]
    fn a_negative_count_is_an_error() {
        let json = RFC_EXAMPLE.replace("5326", "-1");
        assert!(matches!(
            parse(json.as_bytes(), &Limits::default()),
            Err(ReportError::BadValue { .. })
        ));
    }

    #[test]
    fn json_without_policies_is_not_a_tls_report() {
        assert_eq!(
            parse(br#"{"report-id":"x"}"#, &Limits::default()),
            Err(ReportError::Missing("policies"))
        );
    }
}
