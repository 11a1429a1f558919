//! DNSSEC (RFC 4033–4035): whether the zone a domain lives in is signed
//! (DNSKEY at the zone apex) and chained to its parent (DS at the parent).
//! The audit does not validate signatures; it tells signed from unsigned and
//! an island of trust from a chained zone. No I/O.

use super::{CheckResult, DnsAnswer, Finding};
use crate::text::excerpt;

/// What the check reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnssecFacts {
    /// The zone apex (from the DNSKEY answer or the SOA of the negative
    /// one): the domain itself, or a parent.
    pub zone: DnsAnswer<String>,
    /// DNSKEY records at the apex.
    pub dnskey: Option<DnsAnswer<usize>>,
    /// DS records for the apex (served by the parent zone).
    pub ds: Option<DnsAnswer<usize>>,
}

fn dns_error(what: &str, why: &str) -> Finding {
    Finding::new(
        "dnssec.dns_error",
        format!("could not get {what}: {}", excerpt(why, 120)),
        "check the resolver and the domain's name servers; the result is unknown, not missing",
    )
}

/// Judges DNSSEC for `domain`.
pub fn check(domain: &str, facts: &DnssecFacts) -> CheckResult {
    let zone = match &facts.zone {
        DnsAnswer::Unknown(why) => {
            return CheckResult::new(
                "dnssec",
                None,
                vec![dns_error(&format!("the zone apex of {domain}"), why)],
            )
        }
        DnsAnswer::NotFound => domain.to_owned(),
        DnsAnswer::Found(z) => z.clone(),
    };
    let dnskeys = match &facts.dnskey {
        None => {
            return CheckResult::new("dnssec", None, vec![dns_error(&format!("the DNSKEY records of {zone}"), "not looked up")])
        }
        Some(DnsAnswer::Unknown(why)) => {
            return CheckResult::new("dnssec", None, vec![dns_error(&format!("the DNSKEY records of {zone}"), why)])
        }
        Some(DnsAnswer::NotFound) => {
            return CheckResult::new(
                "dnssec",
                Some(format!("zone {zone}: unsigned")),
                vec![Finding::new(
                    "dnssec.unsigned",
                    format!("the zone {zone} is not DNSSEC-signed (no DNSKEY): its answers, MX and TLSA included, can be forged"),
                    "sign the zone (most DNS hosts offer it) and publish the DS record at your registrar",
                )],
            )
        }
        Some(DnsAnswer::Found(n)) => *n,
    };
    let record = |ds: &str| Some(format!("zone {zone}: {dnskeys} DNSKEY, {ds}"));
    match &facts.ds {
        None => CheckResult::new("dnssec", record("DS unknown"), vec![dns_error(&format!("the DS records of {zone}"), "not looked up")]),
        Some(DnsAnswer::Unknown(why)) => {
            CheckResult::new("dnssec", record("DS unknown"), vec![dns_error(&format!("the DS records of {zone}"), why)])
        }
        Some(DnsAnswer::NotFound) => CheckResult::new(
            "dnssec",
            record("no DS"),
            vec![Finding::new(
                "dnssec.no_ds",
                format!("the zone {zone} is signed but its parent has no DS record for it: validating resolvers treat it as unsigned"),
                format!("publish the DS record of {zone}'s key-signing key at the registrar"),
            )],
        ),
        Some(DnsAnswer::Found(n)) => CheckResult::new("dnssec", record(&format!("{n} DS")), vec![]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Severity, Status};

    fn run(
        zone: DnsAnswer<String>,
        dnskey: Option<DnsAnswer<usize>>,
        ds: Option<DnsAnswer<usize>>,
    ) -> CheckResult {
        check("mail.example.com", &DnssecFacts { zone, dnskey, ds })
    }

    #[test]
    fn outcomes() {
        let zone = || DnsAnswer::Found("example.com".to_owned());
        let r = run(zone(), Some(DnsAnswer::Found(2)), Some(DnsAnswer::Found(1)));
        assert_eq!(r.status, Status::Ok);
        assert_eq!(
            r.record.as_deref(),
            Some("zone example.com: 2 DNSKEY, 1 DS")
        );
        let r = run(zone(), Some(DnsAnswer::NotFound), None);
        assert_eq!(r.findings[0].id, "dnssec.unsigned");
        assert_eq!(r.findings[0].severity, Severity::Info);
        let r = run(zone(), Some(DnsAnswer::Found(2)), Some(DnsAnswer::NotFound));
        assert_eq!(r.findings[0].id, "dnssec.no_ds");
        assert_eq!(r.status, Status::Warning);
        for r in [
            run(DnsAnswer::Unknown("SERVFAIL".into()), None, None),
            run(zone(), Some(DnsAnswer::Unknown("timed out".into())), None),
            run(
                zone(),
                Some(DnsAnswer::Found(1)),
                Some(DnsAnswer::Unknown("REFUSED".into())),
            ),
        ] {
            assert_eq!(r.status, Status::Unknown, "{r:?}");
            assert_eq!(r.findings[0].id, "dnssec.dns_error");
        }
        let r = run(DnsAnswer::NotFound, Some(DnsAnswer::NotFound), None);
        assert!(r.findings[0].message.contains("mail.example.com"));
    }
}
