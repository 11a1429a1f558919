//! The user's mail domain → their mailbox provider: the consumer-domain
//! table first, then a typo check (`gmial.com`), then the domain's MX hosts
//! through the project's DNS client (a company on Google Workspace,
//! Microsoft 365, Tencent Exmail, ...). The tables live in
//! [`crate::mailbox_provider`].

use serde::Serialize;

use crate::dns::{DnsAnswer, DnsLookup};
use crate::mailbox_provider::{self, Provider};

/// Longest domain accepted (RFC 1035 §2.3.4).
const MAX_DOMAIN: usize = 253;

/// How the provider was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// The consumer-domain table.
    Table,
    /// The domain looks like a typo of a table domain.
    Typo,
    /// The domain's MX hosts belong to a hosted service.
    Mx,
    /// The MX hosts are someone else's (self-hosted or unlisted).
    MxUnlisted,
    /// The domain has no MX record (and so receives no mail; RFC 5321 §5.1
    /// falls back to its address, which no big provider uses).
    NoMx,
    /// The DNS did not answer: unknown, not "no MX".
    DnsUnknown,
}

/// A domain the agent typed, mapped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resolved {
    pub domain: String,
    pub provider: Provider,
    pub via: Via,
    /// For [`Via::Typo`]: the domain probably meant.
    pub meant: Option<&'static str>,
}

/// Why a typed domain is not looked up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// Empty, too long, or characters no mail domain has.
    #[error("not a mail domain: type the part after @ (for example qq.com)")]
    Invalid,
}

/// The domain part of what the agent typed: an address is cut to its
/// domain (the local part is never kept), lower case, no trailing dot.
pub fn normalize(input: &str) -> Result<String, DomainError> {
    let d = input.rsplit('@').next().unwrap_or("").trim();
    let d = d.trim_end_matches('.').to_ascii_lowercase();
    let ok = !d.is_empty()
        && d.len() <= MAX_DOMAIN
        && d.contains('.')
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(d)
    } else {
        Err(DomainError::Invalid)
    }
}

/// The provider by the tables alone, or `None` when only the MX can tell.
pub fn by_table(domain: &str) -> Option<Resolved> {
    let provider = mailbox_provider::for_domain(domain);
    if provider != Provider::Other {
        return Some(Resolved {
            domain: domain.to_string(),
            provider,
            via: Via::Table,
            meant: None,
        });
    }
    mailbox_provider::typo_of(domain).map(|t| Resolved {
        domain: domain.to_string(),
        provider: t.provider,
        via: Via::Typo,
        meant: Some(t.meant),
    })
}

/// The provider from the tables, else from the domain's MX hosts (most
/// preferred first; the first listed host decides).
pub async fn resolve(domain: &str, dns: &DnsLookup) -> Resolved {
    if let Some(r) = by_table(domain) {
        return r;
    }
    let (provider, via) = match dns.mx(domain).await {
        DnsAnswer::Found(hosts) => hosts
            .iter()
            .map(|h| mailbox_provider::for_mx_host(&h.exchange))
            .find(|p| *p != Provider::Other)
            .map_or((Provider::Other, Via::MxUnlisted), |p| (p, Via::Mx)),
        DnsAnswer::NotFound => (Provider::Other, Via::NoMx),
        DnsAnswer::Unknown(_) => (Provider::Other, Via::DnsUnknown),
    };
    Resolved {
        domain: domain.to_string(),
        provider,
        via,
        meant: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_cut_to_their_domain_and_junk_refused() {
        assert_eq!(normalize("  QQ.com. ").unwrap(), "qq.com");
        assert_eq!(normalize("someone@Foxmail.com").unwrap(), "foxmail.com");
        for bad in [
            "",
            "@",
            "localhost",
            "a..b",
            "-a.com",
            "a b.com",
            "例子.com",
            "<b>.com",
        ] {
            assert_eq!(normalize(bad), Err(DomainError::Invalid), "{bad}");
        }
        assert!(normalize(&format!("{}.com", "a".repeat(64))).is_err());
    }

    #[test]
    fn consumer_domains_and_typos_need_no_dns() {
        let r = by_table("foxmail.com").unwrap();
        assert_eq!((r.provider, r.via), (Provider::Qq, Via::Table));
        let r = by_table("googlemail.com").unwrap();
        assert_eq!(r.provider, Provider::Gmail);
        let r = by_table("gmial.com").unwrap();
        assert_eq!(
            (r.provider, r.via, r.meant),
            (Provider::Gmail, Via::Typo, Some("gmail.com"))
        );
        assert_eq!(by_table("example-company.com"), None);
    }
}
