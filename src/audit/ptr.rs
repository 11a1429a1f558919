//! Reverse DNS of sending IPs: a PTR record, and forward-confirmed reverse
//! DNS (FCrDNS, RFC 8601 §3 "iprev"): a PTR name whose A/AAAA records lead
//! back to the IP. Large receivers reject or junk mail from IPs without it.
//! No I/O.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::{CheckResult, DnsAnswer, Finding};
use crate::text::excerpt;

/// At most this many PTR names of one IP are followed forward.
pub const MAX_PTR_NAMES: usize = 10;

/// What the check reads for one IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PtrFacts {
    pub ip: IpAddr,
    pub ptr: DnsAnswer<Vec<String>>,
    /// A/AAAA of each PTR name (up to [`MAX_PTR_NAMES`]).
    pub forward: BTreeMap<String, DnsAnswer<Vec<IpAddr>>>,
}

/// The PTR names to look up forward.
pub fn names_to_confirm(ptr: &DnsAnswer<Vec<String>>) -> Vec<String> {
    match ptr {
        DnsAnswer::Found(names) => names
            .iter()
            .filter(|n| super::domain::is_valid_name(n))
            .take(MAX_PTR_NAMES)
            .cloned()
            .collect(),
        _ => Vec::new(),
    }
}

fn dns_error(what: &str, why: &str) -> Finding {
    Finding::new(
        "ptr.dns_error",
        format!("could not get {what}: {}", excerpt(why, 120)),
        "check the resolver and the reverse zone's name servers; the result is unknown, not missing",
    )
}

/// Judges the reverse DNS of every sending IP; one finding per problem IP.
pub fn check(ips: &[PtrFacts]) -> CheckResult {
    let mut findings = Vec::new();
    let mut record = Vec::new();
    for f in ips {
        let ip = f.ip;
        let names = match &f.ptr {
            DnsAnswer::Unknown(why) => {
                findings.push(dns_error(&format!("the PTR record of {ip}"), why));
                continue;
            }
            DnsAnswer::NotFound => {
                findings.push(Finding::new(
                    "ptr.missing",
                    format!("sending IP {ip} has no PTR record: Gmail, Outlook and others reject or junk mail from it"),
                    format!("ask the owner of {ip} (your hosting provider) to set its PTR to the host name your server uses in HELO"),
                ));
                continue;
            }
            DnsAnswer::Found(names) => names,
        };
        record.push(format!("{ip} → {}", excerpt(&names.join(" "), 120)));
        let mut unknown = None;
        let confirmed = names_to_confirm(&f.ptr)
            .iter()
            .any(|n| match f.forward.get(n) {
                Some(DnsAnswer::Found(addrs)) => addrs.contains(&ip),
                Some(DnsAnswer::Unknown(why)) => {
                    unknown.get_or_insert_with(|| (n.clone(), why.clone()));
                    false
                }
                Some(DnsAnswer::NotFound) => false,
                None => {
                    unknown.get_or_insert_with(|| (n.clone(), "not looked up".to_owned()));
                    false
                }
            });
        if confirmed {
            continue;
        }
        match unknown {
            Some((name, why)) => findings.push(dns_error(&format!("the addresses of {name} (PTR of {ip})"), &why)),
            None => findings.push(Finding::new(
                "ptr.not_confirmed",
                format!("the PTR name of {ip} ({}) does not resolve back to {ip}: forward-confirmed reverse DNS fails", excerpt(&names.join(", "), 120)),
                format!("add an A/AAAA record for the PTR name pointing at {ip}, or change the PTR to a name that has one"),
            )),
        }
    }
    let record = (!record.is_empty()).then(|| record.join("; "));
    CheckResult::new("ptr", record, findings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Status;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn facts(
        ipaddr: &str,
        ptr: DnsAnswer<Vec<String>>,
        fwd: &[(&str, DnsAnswer<Vec<IpAddr>>)],
    ) -> PtrFacts {
        PtrFacts {
            ip: ip(ipaddr),
            ptr,
            forward: fwd
                .iter()
                .map(|(n, a)| (n.to_string(), a.clone()))
                .collect(),
        }
    }

    #[test]
    fn outcomes() {
        let ok = facts(
            "192.0.2.1",
            DnsAnswer::Found(vec!["out.example".into()]),
            &[("out.example", DnsAnswer::Found(vec![ip("192.0.2.1")]))],
        );
        let r = check(std::slice::from_ref(&ok));
        assert_eq!(r.status, Status::Ok);
        assert_eq!(r.record.as_deref(), Some("192.0.2.1 → out.example"));

        let missing = facts("192.0.2.2", DnsAnswer::NotFound, &[]);
        let wrong = facts(
            "192.0.2.3",
            DnsAnswer::Found(vec!["a.example".into(), "b.example".into()]),
            &[
                ("a.example", DnsAnswer::Found(vec![ip("192.0.2.99")])),
                ("b.example", DnsAnswer::NotFound),
            ],
        );
        let unknown = facts("192.0.2.4", DnsAnswer::Unknown("SERVFAIL".into()), &[]);
        let fwd_unknown = facts(
            "192.0.2.5",
            DnsAnswer::Found(vec!["c.example".into()]),
            &[("c.example", DnsAnswer::Unknown("timed out".into()))],
        );
        let r = check(&[ok, missing, wrong, unknown, fwd_unknown]);
        let ids: Vec<&str> = r.findings.iter().map(|f| f.id).collect();
        assert_eq!(
            ids,
            [
                "ptr.missing",
                "ptr.not_confirmed",
                "ptr.dns_error",
                "ptr.dns_error"
            ]
        );
        assert_eq!(r.status, Status::Error);
        assert!(r.findings[1].message.contains("a.example, b.example"));
    }
}
