//! A `[reports.*]` message: parse it ([`crate::reports::parse`]), keep it
//! once per reporter and report id, and count what it says about the
//! configured domains.

use std::collections::BTreeMap;

use super::store::{self, normalize_domain, Kept};
use super::{now_ms, DmarcResult, KindLabel, Outcome, SessionResult, Source};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::reports::{self, Limits, Report, ReportKind};
use crate::store::{Store, StoreError};

/// Handle one message of the reports mailbox `mailbox`.
pub(super) async fn ingest(
    st: &Store,
    metrics: &Metrics,
    config: &Config,
    mailbox: &str,
    raw: Vec<u8>,
    sha: Vec<u8>,
) -> Result<Outcome, StoreError> {
    let parsed = tokio::task::spawn_blocking(move || reports::parse(&raw, &Limits::default()))
        .await
        .unwrap_or(Err(reports::ReportError::Unrecognized));
    let now = now_ms();
    let report = match parsed {
        Ok(r) => r,
        Err(e) => {
            let name = mailbox.to_string();
            st.call(move |c| {
                store::remember(c, "reports", &sha, &name, Outcome::Invalid.as_str(), now)
            })
            .await?;
            tracing::warn!(mailbox, error = %crate::text::server(&e.to_string()), "not a readable report; counted invalid");
            metrics
                .reports
                .with_label_values(&[
                    mailbox,
                    KindLabel::Unknown.as_str(),
                    Outcome::Invalid.as_str(),
                ])
                .inc();
            return Ok(Outcome::Invalid);
        }
    };
    let ours = configured_domains(config, &report);
    let if_new = if ours.is_empty() {
        Outcome::ForeignDomain
    } else {
        Outcome::Ingested
    };
    let name = mailbox.to_string();
    let details = !ours.is_empty();
    let (kept, report) = st
        .call(move |c| {
            let k = store::keep_report(c, &report, details, &name, &sha, if_new.as_str(), now)?;
            Ok((k, report))
        })
        .await?;
    let outcome = match kept {
        Kept::New => if_new,
        Kept::Duplicate => Outcome::Duplicate,
    };
    let kind = match report.kind() {
        ReportKind::DmarcAggregate => KindLabel::DmarcAggregate,
        ReportKind::TlsRpt => KindLabel::TlsRpt,
    };
    if outcome == Outcome::Ingested {
        export(metrics, config, &report, now / 1000);
    }
    metrics
        .reports
        .with_label_values(&[mailbox, kind.as_str(), outcome.as_str()])
        .inc();
    // The reporter and the domains are the operator's own or a receiver's,
    // not an app user's; the report id is logged to find the report again.
    tracing::info!(
        mailbox,
        kind = kind.as_str(),
        outcome = outcome.as_str(),
        reporter = report.reporter().as_str(),
        report_id = %crate::text::excerpt(report.report_id(), 128),
        "report read"
    );
    Ok(outcome)
}

/// The report's domains that `[domains]` configures.
fn configured_domains(config: &Config, report: &Report) -> Vec<String> {
    let mut out: Vec<String> = match report {
        Report::Aggregate(r) => vec![normalize_domain(&r.policy.domain)],
        Report::Tls(r) => r
            .policies
            .iter()
            .map(|p| normalize_domain(&p.policy_domain))
            .collect(),
    };
    out.retain(|d| config.domains.contains_key(d));
    out.sort();
    out.dedup();
    out
}

/// Count a new report's contents for its configured domains.
fn export(metrics: &Metrics, config: &Config, report: &Report, now_s: i64) {
    let reporter = report.reporter().as_str();
    match report {
        Report::Aggregate(r) => {
            let domain = normalize_domain(&r.policy.domain);
            let Some(d) = config.domains.get(&domain) else {
                return;
            };
            // Summed per label set first: a report has up to 250,000 rows.
            let mut sums: BTreeMap<[&'static str; 5], u64> = BTreeMap::new();
            for rec in &r.records {
                let source = match rec.source_ip {
                    Some(ip) if d.sends_from(ip) => Source::Configured,
                    _ => Source::Other,
                };
                let dmarc = if rec.dmarc_pass() {
                    DmarcResult::Pass
                } else {
                    DmarcResult::Fail
                };
                let key = [
                    source.as_str(),
                    dmarc.as_str(),
                    rec.spf.as_str(),
                    rec.dkim.as_str(),
                    rec.disposition.as_str(),
                ];
                let sum = sums.entry(key).or_default();
                *sum = sum.saturating_add(rec.count);
            }
            metrics.for_domain(&domain, |m| {
                for ([source, dmarc, spf, dkim, disposition], n) in &sums {
                    m.dmarc_report_messages
                        .with_label_values(&[
                            &domain,
                            reporter,
                            source,
                            dmarc,
                            spf,
                            dkim,
                            disposition,
                        ])
                        .inc_by(*n);
                }
                bump_last(m, &domain, ReportKind::DmarcAggregate, r.end);
            });
        }
        Report::Tls(r) => {
            for p in &r.policies {
                let domain = normalize_domain(&p.policy_domain);
                if !config.domains.contains_key(&domain) {
                    continue;
                }
                metrics.for_domain(&domain, |m| {
                    let sessions = |result: SessionResult, n: u64| {
                        m.tls_report_sessions
                            .with_label_values(&[
                                &domain,
                                reporter,
                                p.policy_type.as_str(),
                                result.as_str(),
                            ])
                            .inc_by(n)
                    };
                    sessions(SessionResult::Success, p.successful);
                    sessions(SessionResult::Failure, p.failed);
                    for (result_type, n) in p.failures_by_type() {
                        m.tls_report_failures
                            .with_label_values(&[&domain, reporter, result_type.as_str()])
                            .inc_by(n);
                    }
                    bump_last(m, &domain, ReportKind::TlsRpt, r.end.unwrap_or(now_s));
                });
            }
        }
    }
}

/// Move the newest report time forward (an old report read late does not
/// move it back).
fn bump_last(m: &Metrics, domain: &str, kind: ReportKind, end_s: i64) {
    let g = m
        .report_last_timestamp
        .with_label_values(&[domain, kind.as_str()]);
    if (end_s as f64) > g.get() {
        g.set(end_s as f64);
    }
}

/// Set the newest report times from the store (after a start or reload,
/// when the gauges were empty or pruned).
pub(super) async fn restore_last_times(st: &Store, metrics: &Metrics) {
    match st.call(store::last_report_times).await {
        Ok(rows) => {
            for (domain, kind, end_s) in rows {
                let kind = ReportKind::parse(&kind);
                metrics.for_domain(&domain, |m| bump_last(m, &domain, kind, end_s));
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the newest report times from the store"),
    }
}
