//! `[domains.*]`: the domains the DNS audit checks.

use std::time::Duration;

use toml::Spanned;

use super::Check;
use crate::config::diag::Source;
use crate::config::model::*;
use crate::config::raw;
use crate::config::valid_name;

impl Check<'_> {
    pub(in crate::config) fn domain(
        &mut self,
        src: &Source,
        name: &str,
        d: &Spanned<raw::RawDomain>,
    ) -> Option<Domain> {
        let k = |f: &str| format!("domains.{name}.{f}");
        let raw = d.get_ref();
        let valid_domain = name.len() <= 253
            && name.contains('.')
            && name.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            });
        let mut ok = true;
        if !valid_domain {
            ok = false;
            self.problems.push(src.at_value(d, &format!("domains.{name}"), format!(
                "{name:?} is not a lower-case DNS name (it becomes a metric label); quote it: [domains.\"example.com\"]"
            )));
        }
        for sel in &raw.selectors {
            if !valid_name(sel) {
                ok = false;
                self.problems.push(src.at_value(
                    d,
                    &k("selectors"),
                    format!("selector {sel:?} must be 1-64 characters of a-z, 0-9, '-', '_', '.'"),
                ));
            }
        }
        let mut ips = Vec::new();
        for ip in &raw.sending_ips {
            match ip.get_ref().parse::<std::net::IpAddr>() {
                Ok(a) => ips.push(a),
                Err(_) => {
                    ok = false;
                    self.problems.push(src.at_value(
                        ip,
                        &k("sending_ips"),
                        format!("{:?} is not an IP address", ip.get_ref()),
                    ));
                }
            }
        }
        let mut networks = Vec::new();
        for net in &raw.sending_networks {
            // A bare address is a /32 or /128; a network must not have host
            // bits set (10.0.0.1/8 is a typo for 10.0.0.0/8 or 10.0.0.1/32).
            let text = net.get_ref().trim();
            let parsed = text
                .parse::<ipnet::IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
            match parsed {
                Ok(n) if n.trunc() == n => networks.push(n),
                Ok(n) => {
                    ok = false;
                    self.problems.push(src.at_value(
                        net,
                        &k("sending_networks"),
                        format!("{text:?} has host bits set: did you mean {}?", n.trunc()),
                    ));
                }
                Err(_) => {
                    ok = false;
                    self.problems.push(src.at_value(
                        net,
                        &k("sending_networks"),
                        format!("{text:?} is not a network in CIDR notation (e.g. 192.0.2.0/24, 2001:db8::/32)"),
                    ));
                }
            }
        }
        let every = raw
            .every
            .as_ref()
            .map_or(Duration::from_secs(900), |e| e.get_ref().0);
        if every < Duration::from_secs(1) {
            ok = false;
            let at = raw.every.as_ref().map_or(d.span(), |e| e.span());
            self.problems
                .push(src.at(at, &k("every"), "audit interval must be at least 1s"));
        }
        ok.then(|| Domain {
            receiving: raw.roles.contains(&raw::DomainRole::Receiving),
            selectors: raw.selectors.clone(),
            sending_ips: ips,
            sending_networks: networks,
            dnsbl_ip_zones: raw.dnsbl_ip_zones.clone(),
            dnsbl_domain_zones: raw.dnsbl_domain_zones.clone(),
            every,
            smtp_port: match raw.starttls {
                Some(false) => None,
                _ => Some(raw.smtp_port.unwrap_or(25)),
            },
            https_port: raw.https_port.unwrap_or(443),
            cert_warn_days: raw.cert_warn_days.unwrap_or(14),
        })
    }
}
