//! The daemon's scheduled DNS audit: one task per configured domain runs the
//! same audit as `mailcanary check` on its interval and exports the result.
//!
//! Every audit rewrites the domain's series from scratch, so a check that
//! turned unknown (DNS timeout) or a key that vanished never leaves an old
//! value standing. Record contents are kept in the store; a content that
//! differs from the previous audit's counts in
//! `mailcanary_dns_record_changes_total` (an unknown answer is not a change).

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::dmarc::Policy;
use super::dnsbl::Listing;
use super::mx::Role;
use super::net::TlsClient;
use super::run::{AuditOptions, Auditor, DomainReport, SmtpProbe};
use super::{Check, Severity, Status};
use crate::config::{Config, Domain};
use crate::dns::{DnsLookup, ResolverSettings};
use crate::metrics::Metrics;
use crate::store::Store;

/// Start one audit task per configured domain.
pub fn spawn(
    config: &Arc<Config>,
    store: &Store,
    metrics: &Arc<Metrics>,
    tracker: &TaskTracker,
    stop: &CancellationToken,
) {
    for (name, domain) in &config.domains {
        let settings = ResolverSettings {
            server: config.dns.resolver,
            timeout: config.dns.timeout,
            ..Default::default()
        };
        let (name, domain) = (name.clone(), domain.clone());
        let (store, metrics, stop) = (store.clone(), metrics.clone(), stop.clone());
        tracker.spawn(async move {
            let auditor = match auditor(&settings, &domain) {
                Ok(a) => a,
                Err(e) => {
                    tracing::error!(domain = %name, error = %e, "cannot set up the DNS audit");
                    return;
                }
            };
            let mut tick = tokio::time::interval(domain.every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.cancelled() => return,
                }
                let report = tokio::select! {
                    r = auditor.audit(std::slice::from_ref(&name)) => r,
                    _ = stop.cancelled() => return,
                };
                if let Some(report) = report.into_iter().next() {
                    metrics.for_domain(&report.domain, |m| export(m, &domain, &report));
                    record_changes(&store, &metrics, &domain, &report).await;
                    record_summary(&store, &report).await;
                }
            }
        });
    }
}

fn auditor(settings: &ResolverSettings, d: &Domain) -> Result<Auditor, String> {
    let lookup = DnsLookup::new(settings).map_err(|e| e.to_string())?;
    let tls = TlsClient::system().map_err(|e| e.to_string())?;
    Ok(Auditor::new(
        lookup,
        tls,
        AuditOptions {
            selectors: d.selectors.clone(),
            ips: d.sending_ips.clone(),
            role: if d.receiving {
                Role::Receiving
            } else {
                Role::Sending
            },
            dnsbl_ip_zones: d.dnsbl_ip_zones.clone(),
            dnsbl_domain_zones: d.dnsbl_domain_zones.clone(),
            smtp: d.smtp_port.map(|port| SmtpProbe {
                port,
                helo: "mailcanary.invalid".into(),
            }),
            https_port: d.https_port,
            cert_warn_days: d.cert_warn_days,
            timeout: settings.timeout,
            ..Default::default()
        },
    ))
}

fn rank(s: Status) -> u8 {
    match s {
        Status::Ok => 0,
        Status::Warning => 1,
        Status::Unknown => 2,
        Status::Error => 3,
    }
}

/// Write the domain's audit series from this report alone.
pub fn export(m: &Metrics, d: &Domain, r: &DomainReport) {
    let dom = r.domain.as_str();
    // Status per check: the worst of its results (several for DKIM selectors).
    let mut status: BTreeMap<Check, Status> = BTreeMap::new();
    let mut counts: BTreeMap<(Check, Severity), i64> = BTreeMap::new();
    for c in &r.checks {
        let e = status.entry(c.check).or_insert(c.status);
        if rank(c.status) > rank(*e) {
            *e = c.status;
        }
        for f in &c.findings {
            *counts.entry((c.check, f.severity)).or_default() += 1;
        }
    }
    for check in Check::ALL {
        let name = check.as_str();
        match status.get(&check) {
            Some(s) => {
                m.dns_check_status
                    .set(&[dom, name], Status::ALL.map(Status::as_str), s.as_str());
                for sev in Severity::ALL {
                    let n = counts.get(&(check, sev)).copied().unwrap_or(0);
                    m.dns_findings
                        .with_label_values(&[dom, name, sev.as_str()])
                        .set(n);
                }
            }
            // Not audited for this domain (e.g. no sending IPs): no series.
            None => {
                let _ = m.dns_check_status.remove_label_values(&[dom, name]);
                for sev in Severity::ALL {
                    let _ = m
                        .dns_findings
                        .remove_label_values(&[dom, name, sev.as_str()]);
                }
            }
        }
    }
    match r.spf_lookups {
        Some(n) => m
            .spf_dns_lookups
            .with_label_values(&[dom])
            .set(i64::from(n)),
        None => {
            let _ = m.spf_dns_lookups.remove_label_values(&[dom]);
        }
    }
    for sel in &d.selectors {
        match r
            .dkim_key_bits
            .iter()
            .find(|(s, _)| s == sel)
            .and_then(|(_, b)| *b)
        {
            Some(bits) => m
                .dkim_key_bits
                .with_label_values(&[dom, sel])
                .set(i64::from(bits)),
            None => {
                let _ = m.dkim_key_bits.remove_label_values(&[dom, sel]);
            }
        }
    }
    match r.dmarc_policy {
        Some(p) => {
            m.dmarc_policy
                .set(&[dom], Policy::ALL.map(Policy::as_str), p.as_str());
        }
        None => {
            let _ = m.dmarc_policy.remove_label_values(&[dom]);
        }
    }
    for b in &r.dnsbl {
        let target = b.target.to_string();
        match &b.listing {
            Listing::NotListed => m.dnsbl_listed.with_label_values(&[&target, &b.zone]).set(0),
            Listing::Listed(_) => m.dnsbl_listed.with_label_values(&[&target, &b.zone]).set(1),
            // Refused or failed: unknown, so no value (never a stale 0).
            Listing::Blocked(_) | Listing::Error(_) => {
                let _ = m.dnsbl_listed.remove_label_values(&[&target, &b.zone]);
            }
        }
    }
    let errors: usize = r
        .checks
        .iter()
        .flat_map(|c| &c.findings)
        .filter(|f| f.severity == Severity::Error)
        .count();
    tracing::info!(domain = dom, errors, "DNS audit done");
}

/// Keep the audit's worst status and error finding ids in the store for the
/// support view (`mailcanary status`, `/status`), which also runs without the daemon.
async fn record_summary(store: &Store, r: &DomainReport) {
    let worst = r
        .checks
        .iter()
        .map(|c| c.status)
        .max_by_key(|s| rank(*s))
        .unwrap_or(Status::Ok);
    let mut errors: Vec<&str> = r
        .checks
        .iter()
        .flat_map(|c| &c.findings)
        .filter(|f| f.severity == Severity::Error)
        .map(|f| f.id)
        .collect();
    errors.sort_unstable();
    errors.dedup();
    let (domain, status, errors) = (r.domain.clone(), worst.as_str(), errors.join(" "));
    let result = store
        .call(move |c| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            c.execute(
                "INSERT INTO dns_audit (domain, checked_ms, status, errors) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (domain) DO UPDATE SET checked_ms = excluded.checked_ms,
                     status = excluded.status, errors = excluded.errors",
                rusqlite::params![domain, now, status, errors],
            )
        })
        .await;
    if let Err(e) = result {
        tracing::error!(domain = %r.domain, error = %e, "cannot record the DNS audit summary");
    }
}

/// The record label and content of each check that found exactly one record;
/// DKIM results come in selector order.
fn records<'a>(d: &'a Domain, r: &'a DomainReport) -> Vec<(String, Option<&'a str>, Status)> {
    let mut dkim = d.selectors.iter();
    r.checks
        .iter()
        .filter(|c| !matches!(c.check, Check::Ptr | Check::Dnsbl | Check::Dnssec))
        .filter_map(|c| {
            let label = if c.check == Check::Dkim {
                format!("dkim:{}", dkim.next()?)
            } else {
                c.check.as_str().to_string()
            };
            Some((label, c.record.as_deref(), c.status))
        })
        .collect()
}

async fn record_changes(store: &Store, m: &Metrics, d: &Domain, r: &DomainReport) {
    let domain = r.domain.clone();
    // An unknown answer says nothing about the content: skip it.
    let current: Vec<(String, String)> = records(d, r)
        .into_iter()
        .filter(|(_, _, st)| *st != Status::Unknown)
        .map(|(l, c, _)| (l, c.unwrap_or("").to_string()))
        .collect();
    let dom = domain.clone();
    let changed = store
        .call(move |c| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let mut changed = Vec::new();
            for (label, content) in &current {
                let before: Option<String> = c
                    .query_row(
                        "SELECT content FROM dns_record WHERE domain = ?1 AND record = ?2",
                        [&dom, label],
                        |row| row.get(0),
                    )
                    .ok();
                if before.as_deref() != Some(content.as_str()) {
                    c.execute(
                        "INSERT INTO dns_record (domain, record, content, seen_ms) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (domain, record) DO UPDATE SET content = excluded.content, seen_ms = excluded.seen_ms",
                        rusqlite::params![dom, label, content, now],
                    )?;
                    if let Some(before) = before {
                        changed.push((label.clone(), before, content.clone()));
                    }
                }
            }
            Ok(changed)
        })
        .await;
    match changed {
        Ok(changed) => {
            for (label, before, after) in changed {
                tracing::warn!(domain = %domain, record = %label, %before, %after, "DNS record changed");
                // Not counted if a reload removed the domain meanwhile.
                m.for_domain(&domain, |m| {
                    m.dns_record_changes
                        .with_label_values(&[&domain, &label])
                        .inc()
                });
            }
        }
        Err(e) => {
            tracing::error!(domain = %domain, error = %e, "cannot record DNS record contents")
        }
    }
}
