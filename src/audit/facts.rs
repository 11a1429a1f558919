//! What a check reads: the [`Subject`] it audits, the [`Facts`] fetched so
//! far, and the [`Need`]s it names for the fetcher ([`super::run`]). Pure
//! types; the fetching is elsewhere.

use std::collections::BTreeMap;
use std::net::IpAddr;

use mail_auth::SpfResult;

use super::mta_sts::PolicyFetch;
use super::mx::SmtpTls;
use super::run::AuditOptions;
use crate::dns::{Answer, DnsAnswer, DnsFacts, Query};

/// One domain's audit: the domain and what to audit beyond the defaults.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// Normalised.
    pub domain: &'a str,
    pub opts: &'a AuditOptions,
    /// Now, in Unix seconds (certificate expiry).
    pub now: i64,
}

/// Something a check needs fetched.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Need {
    /// A DNS answer.
    Dns(Query),
    /// `https://mta-sts.<domain>/.well-known/mta-sts.txt` (RFC 8461 §3.3).
    Policy(String),
    /// The STARTTLS probe of an MX target at one of its addresses.
    StartTls { host: String, addr: IpAddr },
    /// mail-auth's SPF evaluation (RFC 7208 §4) of a sending IP for the domain.
    SpfEval(IpAddr),
}

/// What fetching a [`Need`] gave.
#[derive(Debug, Clone)]
pub enum Fetched {
    Dns(Answer),
    Policy(PolicyFetch),
    StartTls(SmtpTls),
    SpfEval(SpfResult),
}

/// Everything fetched for one domain so far. A need that is absent has not
/// been fetched yet.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub dns: DnsFacts,
    policies: BTreeMap<String, PolicyFetch>,
    starttls: BTreeMap<String, SmtpTls>,
    spf: BTreeMap<IpAddr, SpfResult>,
}

impl Facts {
    /// Stores what fetching `need` gave. A mismatched pair is dropped.
    pub fn insert(&mut self, need: &Need, fetched: Fetched) {
        match (need, fetched) {
            (Need::Dns(q), Fetched::Dns(a)) => self.dns.insert(q, a),
            (Need::Policy(d), Fetched::Policy(p)) => {
                self.policies.insert(d.clone(), p);
            }
            (Need::StartTls { host, .. }, Fetched::StartTls(t)) => {
                self.starttls.insert(host.clone(), t);
            }
            (Need::SpfEval(ip), Fetched::SpfEval(r)) => {
                self.spf.insert(*ip, r);
            }
            _ => {}
        }
    }

    /// True when `need` has been fetched.
    pub fn contains(&self, need: &Need) -> bool {
        match need {
            Need::Dns(q) => self.dns.contains(q),
            Need::Policy(d) => self.policies.contains_key(d),
            Need::StartTls { host, .. } => self.starttls.contains_key(host),
            Need::SpfEval(ip) => self.spf.contains_key(ip),
        }
    }

    /// The MTA-STS policy fetched for `domain`.
    pub fn policy(&self, domain: &str) -> Option<&PolicyFetch> {
        self.policies.get(domain)
    }

    /// The STARTTLS probe of each MX target probed.
    pub fn starttls(&self) -> &BTreeMap<String, SmtpTls> {
        &self.starttls
    }

    /// The SPF evaluation of a sending IP.
    pub fn spf_eval(&self, ip: IpAddr) -> Option<SpfResult> {
        self.spf.get(&ip).copied()
    }
}

/// The answer a judge reads for a question that was never answered (the
/// fetching stopped at its bound): unknown, never "missing".
pub fn not_looked_up<T>() -> DnsAnswer<T> {
    DnsAnswer::Unknown("not looked up".into())
}

/// Appends the DNS questions not yet answered in `facts` to `out` as needs.
pub fn ask(out: &mut Vec<Need>, facts: &Facts, queries: impl IntoIterator<Item = Query>) {
    for q in queries {
        let need = Need::Dns(q);
        if !facts.contains(&need) && !out.contains(&need) {
            out.push(need);
        }
    }
}
