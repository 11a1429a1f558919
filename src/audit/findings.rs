//! The finding catalogue: every finding id with its check (the id's prefix),
//! default severity and meaning, and the [`Finding`] a check reports.

use std::fmt;

use serde::Serialize;

use super::Check;

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
    /// Every severity, most severe first (the `severity` label's values).
    pub const ALL: [Severity; 3] = [Severity::Error, Severity::Warning, Severity::Info];

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

/// Every finding id the audit emits: (id, default severity, description),
/// grouped by check in output order. The id's prefix before the dot is its
/// check ([`check_of`]). The finding table in `docs/dns-audit.md` is checked against this
/// list, row for row.
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

/// The catalogue's plain-words meaning of an id.
pub fn catalogue_meaning(id: &str) -> Option<&'static str> {
    CATALOGUE
        .iter()
        .find(|(cid, _, _)| *cid == id)
        .map(|(_, _, meaning)| *meaning)
}

/// The default severity of a catalogue id.
pub fn catalogue_severity(id: &str) -> Option<Severity> {
    CATALOGUE
        .iter()
        .find(|(cid, _, _)| *cid == id)
        .map(|(_, sev, _)| *sev)
}

/// The check a finding id belongs to: the part before its dot.
pub fn check_of(id: &str) -> Option<Check> {
    let prefix = id.split_once('.')?.0;
    Check::ALL.into_iter().find(|c| c.as_str() == prefix)
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
            assert!(Check::ALL.iter().any(|c| c.as_str() == check), "{id}");
            assert_eq!(check_of(id).map(Check::as_str), Some(check), "{id}");
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
                "minimum catalogue id {required} missing"
            );
        }
    }
}
