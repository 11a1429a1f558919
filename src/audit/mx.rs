//! MX (RFC 5321 §5.1, RFC 7505): judge the MX records of a domain, their
//! targets' addresses, and what the STARTTLS probe of each target saw. No I/O:
//! the lookup layer fills [`MxFacts`].

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::lookup::{HostAddrs, MxHost};
use super::{CheckResult, DnsAnswer, Finding, Severity};
use crate::text::excerpt;

/// At most this many MX targets are resolved and probed.
pub const MAX_TARGETS: usize = 10;

/// What the domain is for, which decides how bad a missing or null MX is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// Sends mail (no-reply@): a missing MX is a warning.
    #[default]
    Sending,
    /// Must receive mail (support@, replies): a missing MX is an error.
    Receiving,
}

/// What the STARTTLS probe of one MX target saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmtpTls {
    /// No SMTP dialogue up to EHLO: connection refused, timeout, 5xx greeting.
    Unreachable(String),
    /// EHLO did not offer STARTTLS.
    NoStarttls,
    /// STARTTLS was offered but the command or the TLS handshake failed.
    HandshakeFailed(String),
    /// TLS is up. `verify` is the certificate check against the trusted
    /// roots and the target name; `not_after` is the leaf's expiry (Unix
    /// seconds) when it could be read.
    Tls {
        verify: Result<(), String>,
        not_after: Option<i64>,
    },
}

/// Everything the MX check reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxFacts {
    pub mx: DnsAnswer<Vec<MxHost>>,
    /// Addresses of each target named by [`targets`].
    pub hosts: BTreeMap<String, DnsAnswer<HostAddrs>>,
    /// STARTTLS probe per target, when probing is on.
    pub tls: BTreeMap<String, SmtpTls>,
}

/// How the judge is tuned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MxSettings {
    pub role: Role,
    /// `mx.cert_expiring` when fewer days than this remain.
    pub cert_warn_days: u32,
    /// Now, in Unix seconds.
    pub now: i64,
}

/// True for the null MX of RFC 7505: a single record `0 .`.
fn is_null(host: &MxHost) -> bool {
    host.exchange.is_empty()
}

/// True when an exchange is written as an address (`10 192.0.2.1.`), which
/// RFC 5321 §5.1 does not allow: the exchange is a domain name.
pub fn is_ip_literal(exchange: &str) -> bool {
    let bare = exchange.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<IpAddr>().is_ok()
}

/// The targets whose addresses the check needs, in preference order: not the
/// null MX, not IP literals, at most [`MAX_TARGETS`].
pub fn targets(mx: &[MxHost]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for h in mx {
        if is_null(h) || is_ip_literal(&h.exchange) || out.contains(&h.exchange) {
            continue;
        }
        if out.len() >= MAX_TARGETS {
            break;
        }
        out.push(h.exchange.clone());
    }
    out
}

fn dns_error(what: &str, why: &str) -> Finding {
    Finding::new(
        "mx.dns_error",
        format!("could not get {what}: {}", excerpt(why, 120)),
        "check the resolver and the domain's name servers; the result is unknown, not missing",
    )
}

/// Judges the MX of `domain` from `facts`.
pub fn check(domain: &str, facts: &MxFacts, settings: MxSettings) -> CheckResult {
    let mut findings = Vec::new();
    let receiving = settings.role == Role::Receiving;
    let hosts = match &facts.mx {
        DnsAnswer::Unknown(why) => {
            findings.push(dns_error(&format!("the MX records of {domain}"), why));
            return CheckResult::new("mx", None, findings);
        }
        DnsAnswer::NotFound => {
            let f = Finding::new(
                "mx.missing",
                format!("{domain} has no MX record: senders fall back to its A/AAAA record (RFC 5321 §5.1), or give up"),
                format!("publish MX records for {domain} pointing at the hosts that receive its mail"),
            );
            findings.push(if receiving {
                f.with_severity(Severity::Error)
            } else {
                f.with_severity(Severity::Warning)
            });
            return CheckResult::new("mx", None, findings);
        }
        DnsAnswer::Found(hosts) => hosts,
    };
    let record = Some(
        hosts
            .iter()
            .map(|h| {
                let ex = if h.exchange.is_empty() {
                    "."
                } else {
                    &h.exchange
                };
                format!("{} {}", h.preference, excerpt(ex, 80))
            })
            .collect::<Vec<_>>()
            .join(", "),
    );
    if hosts.iter().any(is_null) {
        // RFC 7505 §3: a null MX is the only MX of the domain, preference 0.
        if hosts.len() > 1 {
            findings.push(
                Finding::new(
                    "mx.null_mx",
                    format!("{domain} publishes a null MX (`0 .`) next to other MX records, which RFC 7505 §3 forbids; senders may treat it as not accepting mail"),
                    "remove the `0 .` record if the domain receives mail, or every other MX record if it does not",
                )
                .with_severity(Severity::Error),
            );
        } else if receiving {
            findings.push(
                Finding::new(
                    "mx.null_mx",
                    format!("{domain} publishes a null MX (RFC 7505): it declares that it accepts no mail, but it must receive mail"),
                    format!("replace the `0 .` record with MX records for the hosts that receive mail for {domain}"),
                )
                .with_severity(Severity::Error),
            );
        } else {
            findings.push(Finding::new(
                "mx.null_mx",
                format!("{domain} publishes a null MX (RFC 7505): replies and bounces cannot reach it, and some receivers reject mail whose envelope sender domain has a null MX (RFC 7505 §4.2)"),
                format!("send from an envelope domain that receives bounces, or publish a real MX for {domain}"),
            ));
        }
        if hosts.len() == 1 {
            return CheckResult::new("mx", record, findings);
        }
    }
    for h in hosts.iter().filter(|h| is_ip_literal(&h.exchange)) {
        findings.push(Finding::new(
            "mx.target_is_ip",
            format!("the MX target `{}` of {domain} is an IP address; an MX names a host (RFC 5321 §5.1), so senders look up A records of a name that does not exist", excerpt(&h.exchange, 60)),
            "create an A/AAAA record for a host name (e.g. mx1) and point the MX at that name",
        ));
    }
    for name in targets(hosts) {
        match facts.hosts.get(&name) {
            None => findings.push(dns_error(&format!("the addresses of MX target {name}"), "not looked up")),
            Some(DnsAnswer::Unknown(why)) => findings.push(dns_error(
                &format!("the addresses of MX target {name}"),
                why,
            )),
            Some(DnsAnswer::NotFound) => findings.push(Finding::new(
                "mx.target_no_address",
                format!("the MX target {name} of {domain} has no A or AAAA record: mail to it cannot be delivered"),
                format!("add an A/AAAA record for {name} or point the MX at a host that has one"),
            )),
            Some(DnsAnswer::Found(h)) => {
                if let Some(target) = &h.cname {
                    findings.push(Finding::new(
                        "mx.target_is_cname",
                        format!("the MX target {name} of {domain} is a CNAME (to {}); RFC 5321 §5.1 and RFC 2181 §10.3 require the MX to name the host itself", excerpt(target, 80)),
                        format!("point the MX at {} directly", excerpt(target, 80)),
                    ));
                }
            }
        }
        if let Some(tls) = facts.tls.get(&name) {
            judge_tls(&name, tls, settings, &mut findings);
        }
    }
    CheckResult::new("mx", record, findings)
}

fn judge_tls(name: &str, tls: &SmtpTls, settings: MxSettings, out: &mut Vec<Finding>) {
    match tls {
        SmtpTls::Unreachable(why) => out.push(Finding::new(
            "mx.smtp_unreachable",
            format!("could not talk SMTP to {name}: {}; its STARTTLS and certificate are not checked", excerpt(why, 120)),
            "check that the host accepts connections on the SMTP port (outbound port 25 is blocked on many networks the audit may run from)",
        )),
        SmtpTls::NoStarttls => out.push(Finding::new(
            "mx.starttls_missing",
            format!("{name} does not offer STARTTLS: mail to it travels in clear text (RFC 3207)"),
            "enable STARTTLS on the mail server with a certificate for its MX name",
        )),
        SmtpTls::HandshakeFailed(why) => out.push(Finding::new(
            "mx.starttls_failed",
            format!("{name} offers STARTTLS but the TLS handshake fails: {}", excerpt(why, 160)),
            "check the server's TLS configuration (protocol versions, ciphers, certificate chain)",
        )),
        SmtpTls::Tls { verify, not_after } => {
            if let Err(why) = verify {
                out.push(Finding::new(
                    "mx.cert_invalid",
                    format!("the certificate of {name} is not valid: {}; senders that verify (MTA-STS, DANE) will not deliver", excerpt(why, 160)),
                    format!("install a certificate for {name} from a trusted CA, with its full chain"),
                ));
            }
            if let Some(exp) = not_after {
                let left = exp.saturating_sub(settings.now);
                let days = left.div_euclid(86_400);
                if left > 0 && days < i64::from(settings.cert_warn_days) {
                    out.push(Finding::new(
                        "mx.cert_expiring",
                        format!("the certificate of {name} expires in {days} days (at {})", super::x509::format_time(*exp)),
                        "renew the certificate (and check that automatic renewal works)",
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(pref: u16, ex: &str) -> MxHost {
        MxHost {
            preference: pref,
            exchange: ex.into(),
        }
    }

    fn ids(r: &CheckResult) -> Vec<(&'static str, Severity)> {
        r.findings.iter().map(|f| (f.id, f.severity)).collect()
    }

    const NOW: i64 = 1_800_000_000;

    fn settings(role: Role) -> MxSettings {
        MxSettings {
            role,
            cert_warn_days: 14,
            now: NOW,
        }
    }

    fn facts(mx: DnsAnswer<Vec<MxHost>>) -> MxFacts {
        MxFacts {
            mx,
            hosts: BTreeMap::new(),
            tls: BTreeMap::new(),
        }
    }

    fn found(addrs: &[&str], cname: Option<&str>) -> DnsAnswer<HostAddrs> {
        DnsAnswer::Found(HostAddrs {
            addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
            cname: cname.map(str::to_owned),
        })
    }

    #[test]
    fn missing_depends_on_role() {
        let f = facts(DnsAnswer::NotFound);
        let r = check("a.example", &f, settings(Role::Sending));
        assert_eq!(ids(&r), [("mx.missing", Severity::Warning)]);
        let r = check("a.example", &f, settings(Role::Receiving));
        assert_eq!(ids(&r), [("mx.missing", Severity::Error)]);
    }

    #[test]
    fn unknown_is_never_missing() {
        let f = facts(DnsAnswer::Unknown("SERVFAIL".into()));
        let r = check("a.example", &f, settings(Role::Receiving));
        assert_eq!(ids(&r), [("mx.dns_error", Severity::Warning)]);
        assert_eq!(r.status, super::super::Status::Unknown);
    }

    #[test]
    fn null_mx() {
        let f = facts(DnsAnswer::Found(vec![host(0, "")]));
        let r = check("a.example", &f, settings(Role::Sending));
        assert_eq!(ids(&r), [("mx.null_mx", Severity::Warning)]);
        assert_eq!(r.record.as_deref(), Some("0 ."));
        let r = check("a.example", &f, settings(Role::Receiving));
        assert_eq!(ids(&r), [("mx.null_mx", Severity::Error)]);
        let mut f = facts(DnsAnswer::Found(vec![
            host(0, ""),
            host(10, "mx.a.example"),
        ]));
        f.hosts
            .insert("mx.a.example".into(), found(&["192.0.2.1"], None));
        let r = check("a.example", &f, settings(Role::Sending));
        assert_eq!(ids(&r), [("mx.null_mx", Severity::Error)]);
    }

    #[test]
    fn targets_are_judged() {
        let mut f = facts(DnsAnswer::Found(vec![
            host(10, "ok.example"),
            host(20, "alias.example"),
            host(30, "gone.example"),
            host(40, "192.0.2.9"),
            host(50, "broken.example"),
        ]));
        f.hosts
            .insert("ok.example".into(), found(&["192.0.2.1"], None));
        f.hosts.insert(
            "alias.example".into(),
            found(&["192.0.2.2"], Some("real.example")),
        );
        f.hosts.insert("gone.example".into(), DnsAnswer::NotFound);
        f.hosts.insert(
            "broken.example".into(),
            DnsAnswer::Unknown("timed out".into()),
        );
        assert_eq!(
            targets(match &f.mx {
                DnsAnswer::Found(h) => h,
                _ => unreachable!(),
            }),
            [
                "ok.example",
                "alias.example",
                "gone.example",
                "broken.example"
            ]
        );
        let r = check("a.example", &f, settings(Role::Sending));
        assert_eq!(
            ids(&r),
            [
                ("mx.target_is_ip", Severity::Error),
                ("mx.target_is_cname", Severity::Warning),
                ("mx.target_no_address", Severity::Error),
                ("mx.dns_error", Severity::Warning),
            ]
        );
        // An error is proven even though one answer is unknown.
        assert_eq!(r.status, super::super::Status::Error);
    }

    #[test]
    fn tls_outcomes() {
        let mut f = facts(DnsAnswer::Found(vec![host(10, "mx.example")]));
        f.hosts
            .insert("mx.example".into(), found(&["192.0.2.1"], None));
        let mut run = |tls: SmtpTls| {
            f.tls.insert("mx.example".into(), tls);
            ids(&check("example", &f, settings(Role::Sending)))
        };
        assert_eq!(
            run(SmtpTls::Unreachable("connection refused".into())),
            [("mx.smtp_unreachable", Severity::Warning)]
        );
        assert_eq!(
            run(SmtpTls::NoStarttls),
            [("mx.starttls_missing", Severity::Warning)]
        );
        assert_eq!(
            run(SmtpTls::HandshakeFailed("alert".into())),
            [("mx.starttls_failed", Severity::Error)]
        );
        assert_eq!(
            run(SmtpTls::Tls {
                verify: Ok(()),
                not_after: Some(NOW + 90 * 86_400)
            }),
            []
        );
        assert_eq!(
            run(SmtpTls::Tls {
                verify: Ok(()),
                not_after: Some(NOW + 3 * 86_400 + 5)
            }),
            [("mx.cert_expiring", Severity::Warning)]
        );
        // Expired: invalid, not "expiring".
        assert_eq!(
            run(SmtpTls::Tls {
                verify: Err("certificate expired".into()),
                not_after: Some(NOW - 86_400)
            }),
            [("mx.cert_invalid", Severity::Error)]
        );
    }

    #[test]
    fn ip_literals() {
        assert!(is_ip_literal("192.0.2.1"));
        assert!(is_ip_literal("[192.0.2.1]"));
        assert!(is_ip_literal("2001:db8::1"));
        assert!(!is_ip_literal("mx1.example"));
        assert!(!is_ip_literal("192.0.2.1.example"));
    }
}
