//! Audits domains: fetch (through [`DnsLookup`] and [`net`]), then judge
//! (the pure record modules). One domain's checks run concurrently; domains
//! run in parallel up to a bound; DNS queries in flight are bounded by the
//! resolver itself.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;
use hickory_resolver::proto::rr::RecordType;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::SpfResult;
use serde::Serialize;
use tokio::sync::Semaphore;

use super::bimi::{self, BimiFacts, DmarcEnforcement};
use super::dmarc::{self, DmarcReport, Policy};
use super::dnsbl::{self, DnsblResult, Listing, Target};
use super::dnssec::{self, DnssecFacts};
use super::domain::{self, Psl};
use super::lookup::DnsLookup;
use super::mta_sts::{self, StsFacts};
use super::mx::{self, MxFacts, MxSettings, Role, SmtpTls};
use super::net::{self, TlsClient};
use super::ptr::{self, PtrFacts};
use super::tls_rpt;
use super::{dkim, spf, CheckResult, DnsAnswer, Finding};

/// Default bound on domains audited at once.
pub const DEFAULT_PARALLEL_DOMAINS: usize = 16;

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

/// Results that depend only on the sending IPs, shared by every domain.
#[derive(Debug, Clone)]
struct IpResults {
    ptr: Option<CheckResult>,
    dnsbl: Vec<DnsblResult>,
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
        run.audit_run(domains).await
    }

    async fn audit_run(&self, domains: &[String]) -> Vec<DomainReport> {
        let ip_results = self.ip_results().await;
        let gate = Arc::new(Semaphore::new(self.opts.parallel_domains.max(1)));
        let jobs = domains.iter().map(|d| {
            let gate = gate.clone();
            let ip_results = &ip_results;
            async move {
                let _permit = gate.acquire().await.ok();
                self.audit_domain(d, ip_results).await
            }
        });
        join_all(jobs).await
    }

    async fn ip_results(&self) -> IpResults {
        let ips = &self.opts.ips;
        let ptr = async {
            if ips.is_empty() {
                return None;
            }
            let facts = join_all(ips.iter().map(|ip| self.ptr_facts(*ip))).await;
            Some(ptr::check(&facts))
        };
        let targets: Vec<Target> = ips.iter().map(|ip| Target::Ip(*ip)).collect();
        let lists = self.dnsbl(&targets, &self.opts.dnsbl_ip_zones);
        let (ptr, dnsbl) = tokio::join!(ptr, lists);
        IpResults { ptr, dnsbl }
    }

    async fn ptr_facts(&self, ip: IpAddr) -> PtrFacts {
        let answer = self.lookup.ptr(ip).await;
        let names = ptr::names_to_confirm(&answer);
        let forward = join_all(names.iter().map(|n| self.lookup.addrs(n))).await;
        PtrFacts {
            ip,
            ptr: answer,
            forward: names.into_iter().zip(forward).collect(),
        }
    }

    async fn dnsbl(&self, targets: &[Target], zones: &[String]) -> Vec<DnsblResult> {
        let pairs: Vec<(Target, String)> = targets
            .iter()
            .flat_map(|t| zones.iter().map(move |z| (t.clone(), domain::normalize(z))))
            .collect();
        join_all(pairs.into_iter().map(|(target, zone)| async move {
            let listing = match dnsbl::query_name(&target, &zone) {
                None => Listing::Error("the query name is not a valid DNS name".into()),
                Some(name) => dnsbl::classify(&self.lookup.a(&name).await),
            };
            let reason = match (&listing, dnsbl::query_name(&target, &zone)) {
                (Listing::Listed(_), Some(name)) => match self.lookup.txt(&name).await {
                    DnsAnswer::Found(t) => t.first().map(|r| super::lossy(r)),
                    _ => None,
                },
                _ => None,
            };
            DnsblResult {
                target,
                zone,
                listing,
                reason,
            }
        }))
        .await
    }

    async fn audit_domain(&self, domain: &str, ips: &IpResults) -> DomainReport {
        let domain = domain::normalize(domain);
        let d = domain.as_str();
        let spf_fut = async {
            let facts = self.lookup.fill(|f| spf::pending_queries(d, f)).await;
            spf::check(d, &facts)
        };
        let spf_ips_fut = self.spf_for_ips(d);
        let dkim_fut = join_all(self.opts.selectors.iter().map(|sel| async move {
            let facts = self.lookup.fill(|f| dkim::pending_queries(sel, d, f)).await;
            (sel.clone(), dkim::check(sel, d, &facts))
        }));
        let dmarc_bimi_fut = async {
            let facts = self
                .lookup
                .fill(|f| dmarc::pending_queries(d, &Psl, f))
                .await;
            let report = dmarc::check(d, &Psl, &facts);
            let bimi = self.bimi(d, &report).await;
            (report, bimi)
        };
        let mx_fut = self.mx_and_sts(d);
        let dnssec_fut = self.dnssec(d);
        let own = [Target::Domain(domain.clone())];
        let dnsbl_fut = self.dnsbl(&own, &self.opts.dnsbl_domain_zones);
        let (
            spf_report,
            spf_ips,
            dkims,
            (dmarc_report, bimi),
            (mx, sts, tls_rpt),
            dnssec,
            dnsbl_dom,
        ) = tokio::join!(
            spf_fut,
            spf_ips_fut,
            dkim_fut,
            dmarc_bimi_fut,
            mx_fut,
            dnssec_fut,
            dnsbl_fut
        );

        let mut checks = Vec::new();
        let spf_result = if spf_ips.is_empty() {
            spf_report.result.clone()
        } else {
            let mut findings = spf_report.result.findings.clone();
            findings.extend(spf_ips);
            CheckResult::new("spf", spf_report.result.record.clone(), findings)
        };
        checks.push(spf_result);
        let mut dkim_key_bits = Vec::new();
        for (sel, report) in dkims {
            dkim_key_bits.push((sel, report.key_bits));
            checks.push(report.result);
        }
        let dmarc_policy = dmarc_report.policy;
        checks.push(dmarc_report.result);
        checks.push(mx);
        checks.push(sts);
        checks.push(tls_rpt);
        checks.push(bimi);
        checks.push(dnssec);
        if let Some(ptr) = &ips.ptr {
            checks.push(ptr.clone());
        }
        let mut dnsbl = ips.dnsbl.clone();
        dnsbl.extend(dnsbl_dom);
        if !self.opts.dnsbl_ip_zones.is_empty() && !self.opts.ips.is_empty()
            || !self.opts.dnsbl_domain_zones.is_empty()
        {
            checks.push(dnsbl::check(&dnsbl));
        }
        DomainReport {
            domain,
            checks,
            spf_lookups: spf_report.lookups.exact_value(),
            dkim_key_bits,
            dmarc_policy,
            dnsbl,
        }
    }

    /// SPF evaluation of each sending IP with mail-auth (RFC 7208 §4
    /// check_host with MAIL FROM postmaster@domain): anything but `pass` is
    /// `spf.ip_not_permitted`, except `temperror`, which is a DNS failure and
    /// so `spf.dns_error` (unknown, not a verdict).
    async fn spf_for_ips(&self, domain: &str) -> Vec<Finding> {
        if self.opts.ips.is_empty() {
            return Vec::new();
        }
        let auth = self.lookup.authenticator();
        let sender = format!("postmaster@{domain}");
        let limit = self.opts.timeout.saturating_mul(20);
        let results = join_all(self.opts.ips.iter().map(|ip| {
            let (auth, sender) = (&auth, &sender);
            async move {
                let params = SpfParameters::verify_mail_from(*ip, domain, domain, sender);
                match tokio::time::timeout(limit, auth.verify_spf(params)).await {
                    Ok(output) => (*ip, output.result()),
                    Err(_) => (*ip, SpfResult::TempError),
                }
            }
        }))
        .await;
        let mut out = Vec::new();
        for (ip, result) in results {
            match result {
                SpfResult::Pass => {}
                SpfResult::TempError => out.push(Finding::new(
                    "spf.dns_error",
                    format!("SPF evaluation of {ip} for {domain} returned temperror: a DNS lookup failed"),
                    "check the resolver and the domain's name servers; the result is unknown, not missing",
                )),
                other => out.push(spf::ip_not_permitted(domain, ip, spf_result_name(other))),
            }
        }
        out
    }

    async fn bimi(&self, domain: &str, dmarc: &DmarcReport) -> CheckResult {
        let at_domain = self.lookup.txt(&bimi::record_name(domain)).await;
        let org = domain::organizational_domain(domain, &Psl).filter(|o| o != domain);
        let at_org = match (&at_domain, org) {
            (DnsAnswer::NotFound, Some(org)) => {
                let a = self.lookup.txt(&bimi::record_name(&org)).await;
                Some((org, a))
            }
            (DnsAnswer::Found(r), Some(org)) if r.iter().all(|t| !bimi::is_bimi_record(t)) => {
                let a = self.lookup.txt(&bimi::record_name(&org)).await;
                Some((org, a))
            }
            _ => None,
        };
        let facts = BimiFacts {
            at_domain,
            at_org,
            dmarc: enforcement(dmarc),
        };
        bimi::check(domain, &facts)
    }

    /// MX (with the STARTTLS probe), then MTA-STS (which needs the MX hosts)
    /// and TLS-RPT (whose missing record matters more with MTA-STS).
    async fn mx_and_sts(&self, domain: &str) -> (CheckResult, CheckResult, CheckResult) {
        let mx_answer = self.lookup.mx(domain).await;
        let (sts_name, rpt_name) = (mta_sts::record_name(domain), tls_rpt::record_name(domain));
        let sts_txt_fut = self.lookup.txt(&sts_name);
        let rpt_fut = self.lookup.txt(&rpt_name);
        let targets = match &mx_answer {
            DnsAnswer::Found(hosts) => mx::targets(hosts),
            _ => Vec::new(),
        };
        let hosts_fut = self.lookup.hosts(&targets);
        let (hosts, sts_txt, rpt_txt) = tokio::join!(hosts_fut, sts_txt_fut, rpt_fut);
        let tls_fut = self.probe_mx(&hosts);
        let policy_fut = async {
            if mta_sts::wants_policy(&sts_txt) {
                Some(
                    net::fetch_policy(
                        &self.tls,
                        &self.lookup,
                        domain,
                        self.opts.https_port,
                        self.opts.timeout,
                    )
                    .await,
                )
            } else {
                None
            }
        };
        let (tls, policy) = tokio::join!(tls_fut, policy_fut);
        let facts = MxFacts {
            mx: mx_answer,
            hosts,
            tls,
        };
        let settings = MxSettings {
            role: self.opts.role,
            cert_warn_days: self.opts.cert_warn_days,
            now: unix_now(),
        };
        let mx_result = mx::check(domain, &facts, settings);
        let sts = mta_sts::check(
            domain,
            &StsFacts {
                txt: sts_txt,
                policy,
                mx: Some(facts.mx.clone()),
            },
        );
        let rpt = tls_rpt::check(domain, &rpt_txt, sts.published);
        (mx_result, sts.result, rpt)
    }

    async fn probe_mx(
        &self,
        hosts: &BTreeMap<String, DnsAnswer<super::lookup::HostAddrs>>,
    ) -> BTreeMap<String, SmtpTls> {
        let Some(smtp) = &self.opts.smtp else {
            return BTreeMap::new();
        };
        let probes = hosts.iter().filter_map(|(name, answer)| {
            let DnsAnswer::Found(h) = answer else {
                return None;
            };
            // IPv4 first: the audit host often has no IPv6 route.
            let addr = h
                .addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or_else(|| h.addrs.first())
                .copied()?;
            Some(async move {
                let outcome = net::starttls_probe(
                    &self.tls,
                    name,
                    addr,
                    smtp.port,
                    &smtp.helo,
                    self.opts.timeout,
                )
                .await;
                (name.clone(), outcome)
            })
        });
        join_all(probes).await.into_iter().collect()
    }

    async fn dnssec(&self, domain: &str) -> CheckResult {
        // DNSKEY and DS at the domain itself, which is usually its zone's
        // apex; the DNSKEY answer names the apex, and only when that is a
        // parent are both asked again there.
        let ((dnskey, zone), ds) = tokio::join!(
            self.lookup.dnskeys_and_apex(domain),
            self.lookup.count(domain, RecordType::DS)
        );
        let (dnskey, ds) = match &zone {
            DnsAnswer::Found(apex) if apex != domain => {
                let (dnskey, ds) = tokio::join!(
                    self.lookup.count(apex, RecordType::DNSKEY),
                    self.lookup.count(apex, RecordType::DS)
                );
                (Some(dnskey), Some(ds))
            }
            DnsAnswer::Unknown(_) => (None, None),
            _ => (Some(dnskey), Some(ds)),
        };
        dnssec::check(domain, &DnssecFacts { zone, dnskey, ds })
    }
}

/// Whether the DMARC policy in force lets BIMI be shown: p (or the inherited
/// sp) quarantine or reject, applied to all mail (pct=100).
fn enforcement(report: &DmarcReport) -> DmarcEnforcement {
    if report
        .result
        .findings
        .iter()
        .any(|f| f.id == "dmarc.dns_error")
    {
        return DmarcEnforcement::Unknown;
    }
    let pct = report.record.as_ref().and_then(|r| r.pct).unwrap_or(100);
    match report.policy {
        None => DmarcEnforcement::NotEnforced("no valid DMARC record".into()),
        Some(Policy::None) => DmarcEnforcement::NotEnforced("p=none".into()),
        Some(_) if pct < 100 => DmarcEnforcement::NotEnforced(format!("pct={pct}")),
        Some(_) => DmarcEnforcement::Enforced,
    }
}

fn spf_result_name(r: SpfResult) -> &'static str {
    match r {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
