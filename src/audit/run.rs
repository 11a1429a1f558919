//! Audits domains: fetch what the checks need (through [`DnsLookup`] and
//! [`net`]), then judge (the pure check modules), looping over [`Check::ALL`]
//! for both. One domain's needs are fetched concurrently, each check asked
//! again once the answers it waits for are in; domains run in parallel up to
//! a bound; DNS queries in flight are bounded by the resolver itself.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::SpfResult;
use serde::Serialize;
use tokio::sync::Semaphore;

use super::dmarc::Policy;
use super::dnsbl::DnsblResult;
use super::domain;
use super::facts::{Facts, Fetched, Need, Subject};
use super::mx::{Role, SmtpTls};
use super::net::{self, TlsClient};
use super::{Check, CheckResult};
use crate::dns::DnsLookup;

/// Default bound on domains audited at once.
pub const DEFAULT_PARALLEL_DOMAINS: usize = 16;
/// One domain's fetching stops asking after this many needs; the checks' own
/// caps (e.g. `spf::WALK_LOOKUP_CAP`) end it long before.
const MAX_NEEDS: usize = 4096;

/// The STARTTLS probe of MX targets.
#[derive(Debug, Clone)]
pub struct SmtpProbe {
    /// Port to connect to (25 in production; tests use their own).
    pub port: u16,
    /// The name to give in EHLO.
    pub helo: String,
}

/// What to audit beyond SPF, DMARC, MX, MTA-STS, TLS-RPT, BIMI and DNSSEC,
/// which every domain gets.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// DKIM selectors to check (`<sel>._domainkey.<domain>`).
    pub selectors: Vec<String>,
    /// Sending IPs: SPF evaluation, PTR/FCrDNS, IP blocklists.
    pub ips: Vec<IpAddr>,
    pub role: Role,
    /// Blocklist zones for sending IPs (e.g. `zen.spamhaus.org`).
    pub dnsbl_ip_zones: Vec<String>,
    /// Blocklist zones for domains (e.g. `dbl.spamhaus.org`).
    pub dnsbl_domain_zones: Vec<String>,
    /// `None` skips the STARTTLS probe.
    pub smtp: Option<SmtpProbe>,
    /// Port of the MTA-STS policy host (443 in production).
    pub https_port: u16,
    /// `mx.cert_expiring` below this many days.
    pub cert_warn_days: u32,
    /// Bound on each network step (DNS attempts, connect, TLS, HTTP).
    pub timeout: Duration,
    /// Domains audited at once.
    pub parallel_domains: usize,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            selectors: Vec::new(),
            ips: Vec::new(),
            role: Role::Sending,
            dnsbl_ip_zones: Vec::new(),
            dnsbl_domain_zones: Vec::new(),
            smtp: None,
            https_port: 443,
            cert_warn_days: 14,
            timeout: Duration::from_secs(5),
            parallel_domains: DEFAULT_PARALLEL_DOMAINS,
        }
    }
}

/// The audit of one domain: what `check --format json` prints per domain,
/// plus the values the daemon's metrics need (not serialised).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DomainReport {
    pub domain: String,
    pub checks: Vec<CheckResult>,
    /// Exact SPF lookup count (`mailcanary_spf_dns_lookups`), if known.
    #[serde(skip)]
    pub spf_lookups: Option<u32>,
    /// Key bits per selector (`mailcanary_dkim_key_bits`), if usable.
    #[serde(skip)]
    pub dkim_key_bits: Vec<(String, Option<u32>)>,
    /// The DMARC policy in force (`mailcanary_dmarc_policy`), if known.
    #[serde(skip)]
    pub dmarc_policy: Option<Policy>,
    /// Every blocklist answer (`mailcanary_dnsbl_listed`).
    #[serde(skip)]
    pub dnsbl: Vec<DnsblResult>,
}

impl DomainReport {
    /// A report with no results yet, for the checks' judges to fill.
    pub fn new(domain: String) -> Self {
        DomainReport {
            domain,
            checks: Vec::new(),
            spf_lookups: None,
            dkim_key_bits: Vec::new(),
            dmarc_policy: None,
            dnsbl: Vec::new(),
        }
    }

    /// True when any finding has error severity.
    pub fn has_error(&self) -> bool {
        self.checks.iter().any(CheckResult::has_error)
    }
}

/// Runs audits. Cheap to clone.
#[derive(Clone)]
pub struct Auditor {
    lookup: DnsLookup,
    tls: TlsClient,
    opts: Arc<AuditOptions>,
}

impl Auditor {
    pub fn new(lookup: DnsLookup, tls: TlsClient, opts: AuditOptions) -> Self {
        Auditor {
            lookup,
            tls,
            opts: Arc::new(opts),
        }
    }

    /// Audits `domains` (normalised names), at most `parallel_domains` at
    /// once; the reports come back in the order given. A query asked twice in
    /// this call is sent once ([`DnsLookup::for_run`]); the next call asks
    /// again.
    pub async fn audit(&self, domains: &[String]) -> Vec<DomainReport> {
        let run = Auditor {
            lookup: self.lookup.for_run(),
            ..self.clone()
        };
        let gate = Arc::new(Semaphore::new(self.opts.parallel_domains.max(1)));
        let jobs = domains.iter().map(|d| {
            let (gate, run) = (gate.clone(), &run);
            async move {
                let _permit = gate.acquire().await.ok();
                run.audit_domain(d).await
            }
        });
        join_all(jobs).await
    }

    /// Fetches what every check needs, then lets every check judge.
    async fn audit_domain(&self, domain: &str) -> DomainReport {
        let domain = domain::normalize(domain);
        let subject = Subject {
            domain: &domain,
            opts: &self.opts,
            now: unix_now(),
        };
        let facts = self.gather(&subject).await;
        let subject = Subject {
            now: unix_now(),
            ..subject
        };
        let mut report = DomainReport::new(domain.clone());
        for check in Check::ALL {
            check.judge(&subject, &facts, &mut report);
        }
        report
    }

    /// Asks every check what it needs and fetches it concurrently. A check is
    /// asked again once every answer it waits for is in (what it needs
    /// depends only on the answers it asked for), until nothing more is
    /// needed. The checks proceed independently of each other.
    async fn gather(&self, s: &Subject<'_>) -> Facts {
        let mut facts = Facts::default();
        let mut asked: HashSet<Need> = HashSet::new();
        // Who waits for each need in flight, and how many answers each check
        // still waits for.
        let mut waiting: HashMap<Need, Vec<Check>> = HashMap::new();
        let mut outstanding: HashMap<Check, usize> = HashMap::new();
        let mut again: Vec<Check> = Check::ALL.to_vec();
        let mut pending = FuturesUnordered::new();
        loop {
            for check in std::mem::take(&mut again) {
                for need in check.needs(s, &facts) {
                    if asked.len() >= MAX_NEEDS && !asked.contains(&need) {
                        continue;
                    }
                    waiting.entry(need.clone()).or_default().push(check);
                    *outstanding.entry(check).or_default() += 1;
                    if asked.insert(need.clone()) {
                        pending.push(async move {
                            let got = self.fetch(&need, s.domain).await;
                            (need, got)
                        });
                    }
                }
            }
            let Some((need, got)) = pending.next().await else {
                break;
            };
            facts.insert(&need, got);
            for check in waiting.remove(&need).unwrap_or_default() {
                let left = outstanding.entry(check).or_default();
                *left = left.saturating_sub(1);
                if *left == 0 && !again.contains(&check) {
                    again.push(check);
                }
            }
        }
        facts
    }

    /// The only I/O of an audit: what `need` asks for `domain`.
    async fn fetch(&self, need: &Need, domain: &str) -> Fetched {
        let timeout = self.opts.timeout;
        match need {
            Need::Dns(q) => Fetched::Dns(self.lookup.answer(q).await),
            Need::Policy(domain) => Fetched::Policy(
                net::fetch_policy(
                    &self.tls,
                    &self.lookup,
                    domain,
                    self.opts.https_port,
                    timeout,
                )
                .await,
            ),
            Need::StartTls { host, addr } => Fetched::StartTls(match &self.opts.smtp {
                Some(smtp) => {
                    net::starttls_probe(&self.tls, host, *addr, smtp.port, &smtp.helo, timeout)
                        .await
                }
                None => SmtpTls::Unreachable("the STARTTLS probe is off".into()),
            }),
            Need::SpfEval(ip) => Fetched::SpfEval(self.spf_eval(*ip, domain).await),
        }
    }

    /// mail-auth's SPF evaluation of `ip` (RFC 7208 §4 check_host with MAIL
    /// FROM postmaster@domain); `temperror` when it takes too long.
    async fn spf_eval(&self, ip: IpAddr, domain: &str) -> SpfResult {
        let auth = self.lookup.authenticator();
        let sender = format!("postmaster@{domain}");
        let limit = self.opts.timeout.saturating_mul(20);
        let params = SpfParameters::verify_mail_from(ip, domain, domain, &sender);
        match tokio::time::timeout(limit, auth.verify_spf(params)).await {
            Ok(output) => output.result(),
            Err(_) => SpfResult::TempError,
        }
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
