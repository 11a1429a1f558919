//! DNS blocklists (RFC 5782): is a sending IP (`4.3.2.1.<zone>`) or a domain
//! (`example.com.<zone>`) listed? Tells a listing from an answer that means
//! "query refused" (Spamhaus answers 127.255.255.x to queries through public
//! resolvers) and from a failed lookup. No I/O.

use std::net::{IpAddr, Ipv4Addr};

use super::{CheckResult, DnsAnswer, Finding};
use crate::text::excerpt;

/// What is looked up.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    Ip(IpAddr),
    Domain(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Ip(ip) => write!(f, "{ip}"),
            Target::Domain(d) => f.write_str(d),
        }
    }
}

/// The name to query (RFC 5782 §2.1 for IPv4, §2.4 for IPv6, §3 for
/// domains). `None` when the result is not a valid DNS name.
pub fn query_name(target: &Target, zone: &str) -> Option<String> {
    let zone = super::domain::normalize(zone);
    let name = match target {
        Target::Ip(ip) => format!("{}.{zone}", super::lookup::reversed_labels(*ip)),
        Target::Domain(d) => format!("{}.{zone}", super::domain::normalize(d)),
    };
    super::domain::is_valid_name(&name).then_some(name)
}

/// What an answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listing {
    /// NXDOMAIN (or NODATA): not on the list.
    NotListed,
    /// One or more listing codes in 127.0.0.0/8.
    Listed(Vec<Ipv4Addr>),
    /// The list refused to answer: the codes say so (see [`is_refusal_code`]).
    Blocked(Vec<Ipv4Addr>),
    /// No usable answer: lookup failure, or addresses outside 127.0.0.0/8
    /// (a dead list zone that answers everything).
    Error(String),
}

/// Return codes that mean "query refused", not "listed":
/// - 127.255.255.0/24 — Spamhaus: 252 typo in the zone name, 254 query
///   through a public/open resolver, 255 excessive queries;
/// - 127.0.0.1 — RFC 5782 §5: lists must not use it as a listing (URIBL and
///   SURBL answer it to refused queries);
/// - 127.0.1.255 — Spamhaus DBL: "IP queries prohibited".
pub fn is_refusal_code(code: Ipv4Addr) -> bool {
    let o = code.octets();
    (o[0] == 127 && o[1] == 255 && o[2] == 255)
        || code == Ipv4Addr::new(127, 0, 0, 1)
        || code == Ipv4Addr::new(127, 0, 1, 255)
}

/// Classifies the A answer of a blocklist query.
pub fn classify(answer: &DnsAnswer<Vec<Ipv4Addr>>) -> Listing {
    match answer {
        DnsAnswer::NotFound => Listing::NotListed,
        DnsAnswer::Unknown(why) => Listing::Error(why.clone()),
        DnsAnswer::Found(codes) => {
            if codes.iter().any(|c| is_refusal_code(*c)) {
                Listing::Blocked(codes.clone())
            } else if codes.iter().all(|c| c.octets()[0] == 127) {
                Listing::Listed(codes.clone())
            } else {
                Listing::Error(format!(
                    "the answer {} is outside 127.0.0.0/8: the list zone may be defunct and answer every query",
                    codes.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                ))
            }
        }
    }
}

/// One target on one list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsblResult {
    pub target: Target,
    pub zone: String,
    pub listing: Listing,
    /// The list's TXT explanation, fetched for listings.
    pub reason: Option<String>,
}

fn codes(c: &[Ipv4Addr]) -> String {
    c.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Judges every target on every list.
pub fn check(results: &[DnsblResult]) -> CheckResult {
    let mut findings = Vec::new();
    for r in results {
        let (target, zone) = (&r.target, &r.zone);
        match &r.listing {
            Listing::NotListed => {}
            Listing::Listed(c) => findings.push(Finding::new(
                "dnsbl.listed",
                format!(
                    "{target} is listed on {zone} ({}){}",
                    codes(c),
                    r.reason.as_deref().map(|t| format!(": {}", excerpt(t, 160))).unwrap_or_default()
                ),
                format!("find and stop the cause (compromised account, open relay, bad list hygiene), then request delisting from {zone}"),
            )),
            Listing::Blocked(c) => findings.push(Finding::new(
                "dnsbl.blocked",
                format!("{zone} refused the query for {target} ({}): the listing status is unknown", codes(c)),
                format!("query {zone} through your own resolver (not a public one) or with the list's registered access key"),
            )),
            Listing::Error(why) => findings.push(Finding::new(
                "dnsbl.error",
                format!("could not check {target} on {zone}: {}", excerpt(why, 160)),
                "check the zone name and the resolver; the listing status is unknown",
            )),
        }
    }
    CheckResult::new("dnsbl", None, findings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Severity, Status};

    fn a(codes: &[&str]) -> DnsAnswer<Vec<Ipv4Addr>> {
        DnsAnswer::Found(codes.iter().map(|c| c.parse().unwrap()).collect())
    }

    #[test]
    fn names() {
        assert_eq!(
            query_name(&Target::Ip("192.0.2.1".parse().unwrap()), "zen.example."),
            Some("1.2.0.192.zen.example".into())
        );
        assert_eq!(
            query_name(&Target::Domain("Example.COM".into()), "dbl.example"),
            Some("example.com.dbl.example".into())
        );
        assert_eq!(
            query_name(&Target::Domain("a..b".into()), "dbl.example"),
            None
        );
    }

    #[test]
    fn classification() {
        assert_eq!(classify(&DnsAnswer::NotFound), Listing::NotListed);
        assert!(matches!(classify(&a(&["127.0.0.2"])), Listing::Listed(_)));
        assert!(matches!(
            classify(&a(&["127.0.0.4", "127.0.0.10"])),
            Listing::Listed(_)
        ));
        assert!(matches!(
            classify(&a(&["127.255.255.254"])),
            Listing::Blocked(_)
        ));
        assert!(matches!(
            classify(&a(&["127.255.255.252"])),
            Listing::Blocked(_)
        ));
        assert!(matches!(classify(&a(&["127.0.0.1"])), Listing::Blocked(_)));
        assert!(matches!(
            classify(&a(&["127.0.1.255"])),
            Listing::Blocked(_)
        ));
        assert!(matches!(classify(&a(&["198.51.100.1"])), Listing::Error(_)));
        assert!(matches!(
            classify(&DnsAnswer::Unknown("SERVFAIL".into())),
            Listing::Error(_)
        ));
    }

    #[test]
    fn judge() {
        let ip = Target::Ip("192.0.2.1".parse().unwrap());
        let res = |listing| DnsblResult {
            target: ip.clone(),
            zone: "bl.example".into(),
            listing,
            reason: Some("see https://bl.example/192.0.2.1".into()),
        };
        let r = check(&[res(Listing::NotListed)]);
        assert_eq!(r.status, Status::Ok);
        let r = check(&[res(classify(&a(&["127.0.0.2"])))]);
        assert_eq!(r.findings[0].id, "dnsbl.listed");
        assert_eq!(r.findings[0].severity, Severity::Error);
        assert!(r.findings[0]
            .message
            .contains("see https://bl.example/192.0.2.1"));
        let r = check(&[res(classify(&a(&["127.255.255.254"])))]);
        assert_eq!(r.findings[0].id, "dnsbl.blocked");
        assert_eq!(r.status, Status::Unknown);
        let r = check(&[res(Listing::Error("REFUSED".into()))]);
        assert_eq!(r.findings[0].id, "dnsbl.error");
        assert_eq!(r.status, Status::Unknown);
    }
}
