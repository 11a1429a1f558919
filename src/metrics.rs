//! Every series mailcanary exports, defined once.
//!
//! Each [`Series`] constant names the metric, its type, unit and labels; the
//! metric table in `docs/metrics.md` is checked against [`ALL`] by a test. Labels are
//! bounded: configured names (`probe`, `sender`, `seed`, `provider`,
//! `domain`, `selector`, `mailbox`) and closed enums (`placement`, `check`, `result`,
//! `reason`) — never an address, token, code, Message-ID or server text.

use prometheus::{
    Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

/// Metric types, as in the Prometheus exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// A series' contract: what dashboards and alert rules may rely on.
#[derive(Debug, Clone, Copy)]
pub struct Series {
    pub name: &'static str,
    pub kind: Kind,
    /// Base unit (`seconds`, `bytes`, `bits`) or empty for counts and states.
    pub unit: &'static str,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

/// Defines every series once: from one entry per family come its
/// [`Series`] constant (whose doc is its help text), its place in [`ALL`],
/// its field in [`Metrics`], its registration, and, for families labelled
/// by a probe, seed or domain, its pruning on reload.
macro_rules! families {
    ($($field:ident: $ty:ty = $id:ident($name:literal, $kind:ident, $unit:literal, [$($label:literal),*], $help:literal);)*) => {
        $(
            #[doc = $help]
            pub const $id: Series = Series {
                name: $name,
                kind: Kind::$kind,
                unit: $unit,
                labels: &[$($label),*],
                help: $help,
            };
        )*

        /// Every series, in exposition order.
        pub const ALL: &[Series] = &[$($id),*];

        /// The registry and a handle to every family in it.
        pub struct Metrics {
            pub registry: Registry,
            /// The audited domains of the running configuration (`None` until the
            /// first generation starts). Held while a reload prunes and while an
            /// audit exports, so an audit that ends as its domain is removed cannot
            /// bring the domain's series back.
            audited: std::sync::Mutex<Option<std::collections::BTreeSet<String>>>,
            $(
                #[doc = $help]
                pub $field: $ty,
            )*
        }

        impl Metrics {
            pub fn new() -> Self {
                let registry = Registry::new();
                let m = Metrics {
                    $($field: register(&registry, <$ty as Family>::make(&$id)),)*
                    registry,
                    audited: std::sync::Mutex::new(None),
                };
                m.build_info
                    .with_label_values(&[env!("CARGO_PKG_VERSION")])
                    .set(1);
                for task in crate::contain::Task::ALL {
                    m.task_panics.with_label_values(&[task.as_str()]);
                }
                m
            }

            /// Every family that has labels, with its series.
            fn labelled(&self) -> Vec<(&dyn Prune, &'static Series)> {
                let mut out: Vec<(&dyn Prune, &'static Series)> = Vec::new();
                $(
                    if let Some(p) = self.$field.prunable() {
                        out.push((p, &$id));
                    }
                )*
                out
            }
        }
    };
}

families! {
    build_info: IntGaugeVec = BUILD_INFO("mailcanary_build_info", Gauge, "", ["version"],
        "Build metadata; always 1.");
    config_last_reload_successful: IntGauge = CONFIG_LAST_RELOAD_SUCCESSFUL("mailcanary_config_last_reload_successful", Gauge, "", [],
        "1 if the last configuration (re)load succeeded, 0 if it failed and the previous config is still running.");
    config_last_reload_success_timestamp: Gauge = CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP("mailcanary_config_last_reload_success_timestamp_seconds", Gauge, "seconds", [],
        "Unix time of the last successful configuration load.");
    probe_sent: IntCounterVec = PROBE_SENT("mailcanary_probe_sent_total", Counter, "", ["probe", "sender", "seed"],
        "Probe messages accepted by the sending relay.");
    probe_send_failures: IntCounterVec = PROBE_SEND_FAILURES("mailcanary_probe_send_failures_total", Counter, "", ["probe", "sender", "seed", "reason"],
        "Probe sends that failed, by bounded reason (the send-failure reasons in docs/metrics.md).");
    probe_results: IntCounterVec = PROBE_RESULTS("mailcanary_probe_results_total", Counter, "", ["probe", "sender", "seed", "provider", "placement"],
        "Final probe results by placement (the outcomes in docs/metrics.md, send_failed excepted).");
    delivery_latency: HistogramVec = DELIVERY_LATENCY("mailcanary_delivery_latency_seconds", Histogram, "seconds", ["probe", "sender", "provider", "placement"],
        "Submit-to-arrival time of delivered probes.");
    probe_last_latency: GaugeVec = PROBE_LAST_LATENCY("mailcanary_probe_last_latency_seconds", Gauge, "seconds", ["probe", "seed"],
        "Submit-to-arrival time of the last delivered probe; removed when the last probe did not arrive.");
    probe_last_result_timestamp: GaugeVec = PROBE_LAST_RESULT_TIMESTAMP("mailcanary_probe_last_result_timestamp_seconds", Gauge, "seconds", ["probe", "seed"],
        "Unix time of the last final probe result.");
    probe_placement: IntGaugeVec = PROBE_PLACEMENT("mailcanary_probe_placement", Gauge, "", ["probe", "seed", "placement"],
        "Placement of the last probe as a state set: exactly one placement is 1.");
    auth_result: IntGaugeVec = AUTH_RESULT("mailcanary_auth_result", Gauge, "", ["probe", "seed", "method", "result"],
        "The receiver's authentication verdicts on the last probe as a state set per method.");
    delivered_dkim_result: IntGaugeVec = DELIVERED_DKIM_RESULT("mailcanary_delivered_dkim_result", Gauge, "", ["probe", "seed", "result"],
        "The delivered copy's DKIM as mailcanary re-verifies it, as a state set (pass, fail, none, temperror, permerror); fail where the receiver said pass means the message was changed after the border.");
    arrived_after_expiry: IntCounterVec = ARRIVED_AFTER_EXPIRY("mailcanary_probe_arrived_after_expiry_total", Counter, "", ["probe", "sender", "seed"],
        "Probe mail that arrived after its code's validity (probes.NAME.code_validity), whether in time for the probe (placement expired) or late.");
    resend_out_of_order: IntCounterVec = RESEND_OUT_OF_ORDER("mailcanary_resend_out_of_order_total", Counter, "", ["probe", "sender", "seed"],
        "Resend bursts in which an older code arrived after a newer one (by the Date the app gave each message); counted once per burst.");
    resend_duplicates: IntCounterVec = RESEND_DUPLICATES("mailcanary_resend_duplicates_total", Counter, "", ["probe", "sender", "seed"],
        "Messages of a resend burst that repeated a code already received.");
    dns_check_status: IntGaugeVec = DNS_CHECK_STATUS("mailcanary_dns_check_status", Gauge, "", ["domain", "check", "status"],
        "DNS audit status per domain and check as a state set (ok, warning, error, unknown).");
    dns_findings: IntGaugeVec = DNS_FINDINGS("mailcanary_dns_findings", Gauge, "", ["domain", "check", "severity"],
        "Number of DNS audit findings per domain, check and severity.");
    spf_dns_lookups: IntGaugeVec = SPF_DNS_LOOKUPS("mailcanary_spf_dns_lookups", Gauge, "", ["domain"],
        "DNS lookups the domain's SPF record needs (RFC 7208 limit: 10).");
    dkim_key_bits: IntGaugeVec = DKIM_KEY_BITS("mailcanary_dkim_key_bits", Gauge, "bits", ["domain", "selector"],
        "Size of the DKIM public key.");
    dmarc_policy: IntGaugeVec = DMARC_POLICY("mailcanary_dmarc_policy", Gauge, "", ["domain", "policy"],
        "The domain's DMARC policy as a state set (none, quarantine, reject).");
    dnsbl_listed: IntGaugeVec = DNSBL_LISTED("mailcanary_dnsbl_listed", Gauge, "", ["target", "list"],
        "1 if the target is listed on the DNS blocklist.");
    dns_record_changes: IntCounterVec = DNS_RECORD_CHANGES("mailcanary_dns_record_changes_total", Counter, "", ["domain", "record"],
        "Changes of a DNS record's content since the previous audit.");
    inbox_up: IntGaugeVec = INBOX_UP("mailcanary_inbox_up", Gauge, "", ["seed"],
        "1 if the seed's inbox watcher is connected and watching.");
    probe_tab: IntCounterVec = PROBE_TAB("mailcanary_probe_tab_total", Counter, "", ["probe", "sender", "seed", "provider", "tab"],
        "Deliveries to a Gmail category tab (placement tab), by tab: promotions, social, updates, forums.");
    oauth_token_expiry: IntGaugeVec = OAUTH_TOKEN_EXPIRY("mailcanary_oauth_token_expiry_timestamp_seconds", Gauge, "seconds", ["seed"],
        "When the seed's current OAuth access token expires; 0 while there is none (refresh refused).");
    oauth_refreshes: IntCounterVec = OAUTH_REFRESHES("mailcanary_oauth_refreshes_total", Counter, "", ["seed"],
        "OAuth access tokens obtained from the seed's token endpoint.");
    oauth_refresh_failures: IntCounterVec = OAUTH_REFRESH_FAILURES("mailcanary_oauth_refresh_failures_total", Counter, "", ["seed", "reason"],
        "Failed OAuth token refreshes, by bounded reason (see docs/metrics.md).");
    probe_bounces: IntCounterVec = PROBE_BOUNCES("mailcanary_probe_bounces_total", Counter, "", ["probe", "sender", "seed", "provider", "reason"],
        "Probe runs a receiver refused: a bounce for the run reached the sender's bounce mailbox. `reason` is the bounce classifier's (Sisimai's vocabulary).");
    probe_deferred: IntCounterVec = PROBE_DEFERRED("mailcanary_probe_deferred_total", Counter, "", ["probe", "sender", "seed"],
        "Delay notices (RFC 3464 action `delayed`) for probe runs, e.g. greylisting; the run stays open.");
    dmarc_report_messages: IntCounterVec = DMARC_REPORT_MESSAGES("mailcanary_dmarc_report_messages_total", Counter, "", ["domain", "reporter", "source", "dmarc", "spf_aligned", "dkim_aligned", "disposition"],
        "Messages DMARC aggregate reports counted for a configured domain, by receiver (reporter), whether the source IP is the domain's own (source configured/other), DMARC result, aligned SPF and DKIM, and disposition.");
    tls_report_sessions: IntCounterVec = TLS_REPORT_SESSIONS("mailcanary_tls_report_sessions_total", Counter, "", ["domain", "reporter", "policy_type", "result"],
        "TLS sessions towards a configured domain that TLS-RPT reports counted, by result (success, failure).");
    tls_report_failures: IntCounterVec = TLS_REPORT_FAILURES("mailcanary_tls_report_failures_total", Counter, "", ["domain", "reporter", "result_type"],
        "Failed TLS sessions towards a configured domain by RFC 8460 result type.");
    reports: IntCounterVec = REPORTS("mailcanary_reports_total", Counter, "", ["mailbox", "kind", "outcome"],
        "Report messages read from a [reports.*] mailbox, by kind and outcome (ingested, duplicate, invalid, foreign_domain).");
    report_last_timestamp: GaugeVec = REPORT_LAST_TIMESTAMP("mailcanary_report_last_timestamp_seconds", Gauge, "seconds", ["domain", "kind"],
        "End of the period of the newest report for a configured domain (ingestion time when a TLS report has no readable period).");
    bounces: IntCounterVec = BOUNCES("mailcanary_bounces_total", Counter, "", ["mailbox", "provider", "reason"],
        "Failed recipients in the bounces of the app's real mail ([bounces.*] mailboxes), by the recipient domain's provider and the bounce reason.");
    bounces_typo_domain: IntCounterVec = BOUNCES_TYPO_DOMAIN("mailcanary_bounces_typo_domain_total", Counter, "", ["mailbox", "provider"],
        "Bounced recipients whose domain is probably a mistyping of a consumer domain, by the provider meant.");
    task_panics: IntCounterVec = TASK_PANICS("mailcanary_task_panics_total", Counter, "", ["task"],
        "Panics contained in a task that talks to a server (inbox_watcher, sender): the task's work ended, the daemon ran on.");
}

/// Histogram buckets for delivery latency: sub-second local delivery up to an
/// hour of greylisting.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
];

/// Registers a family. Names and labels are compile-time constants checked
/// by the tests below, so registration cannot fail at run time.
fn register<C: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: C) -> C {
    r.register(Box::new(c.clone()))
        .expect("series are unique and valid");
    c
}

/// A metric type a [`Series`] can be made into.
trait Family: Sized {
    fn make(s: &Series) -> Self;
    /// The family as something whose children can be removed, if it has labels.
    fn prunable(&self) -> Option<&dyn Prune> {
        None
    }
}

fn opts(s: &Series) -> Opts {
    Opts::new(s.name, s.help)
}

macro_rules! vec_family {
    ($($ty:ty),*) => {$(
        impl Family for $ty {
            fn make(s: &Series) -> Self {
                <$ty>::new(opts(s), s.labels).expect("valid series")
            }
            fn prunable(&self) -> Option<&dyn Prune> {
                Some(self)
            }
        }
    )*};
}
vec_family!(IntGaugeVec, GaugeVec, IntCounterVec);

impl Family for HistogramVec {
    fn make(s: &Series) -> Self {
        HistogramVec::new(
            HistogramOpts::new(s.name, s.help).buckets(LATENCY_BUCKETS.to_vec()),
            s.labels,
        )
        .expect("valid series")
    }
    fn prunable(&self) -> Option<&dyn Prune> {
        Some(self)
    }
}

impl Family for IntGauge {
    fn make(s: &Series) -> Self {
        IntGauge::with_opts(opts(s)).expect("valid series")
    }
}

impl Family for Gauge {
    fn make(s: &Series) -> Self {
        Gauge::with_opts(opts(s)).expect("valid series")
    }
}

/// Labels whose values name something configured; a reload that removes
/// the thing removes the series.
const SCOPED_LABELS: [&str; 4] = ["probe", "seed", "domain", "mailbox"];

impl Metrics {
    /// Remove every series whose `probe`, `seed`, `domain` or `mailbox` label names
    /// something `configured` no longer has, so a probe, seed or domain
    /// taken out by a reload leaves no series behind for alerts to trip on.
    /// `domains` are the audited domains from now on ([`Metrics::for_domain`]).
    pub fn forget_unconfigured(
        &self,
        configured: &dyn Fn(&str, &str) -> bool,
        domains: std::collections::BTreeSet<String>,
    ) {
        let mut audited = self.audited.lock().unwrap_or_else(|e| e.into_inner());
        *audited = Some(domains);
        let stale =
            |name: &str, value: &str| SCOPED_LABELS.contains(&name) && !configured(name, value);
        for (vec, series) in self.scoped() {
            vec.prune(series.labels, &stale);
        }
    }

    /// Runs `update` on the metrics if `domain` is audited by the running
    /// configuration; the check and the update are one step with respect to
    /// a reload's pruning.
    pub fn for_domain(&self, domain: &str, update: impl FnOnce(&Metrics)) {
        let audited = self.audited.lock().unwrap_or_else(|e| e.into_inner());
        if audited.as_ref().is_none_or(|d| d.contains(domain)) {
            update(self);
        }
    }

    /// Every family with a `probe`, `seed`, `domain` or `mailbox` label.
    fn scoped(&self) -> impl Iterator<Item = (&dyn Prune, &'static Series)> {
        self.labelled()
            .into_iter()
            .filter(|(_, s)| s.labels.iter().any(|l| SCOPED_LABELS.contains(l)))
    }

    /// The text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        // Contained panics are counted where they are caught; brought up to date here.
        for task in crate::contain::Task::ALL {
            let c = self.task_panics.with_label_values(&[task.as_str()]);
            let behind = crate::contain::panics(task).saturating_sub(c.get());
            c.inc_by(behind);
        }
        let mut out = String::new();
        // Encoding to a String only fails on invalid UTF-8, which the
        // bounded label values rule out; an empty body is the safe fallback.
        if let Err(e) =
            prometheus::TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out)
        {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

/// A metric family whose children can be removed by label.
trait Prune {
    /// Remove the children that have a label `stale` picks; `labels` are
    /// the family's label names in declaration order.
    fn prune(&self, labels: &[&str], stale: &dyn Fn(&str, &str) -> bool);
}

impl<T: prometheus::core::MetricVecBuilder> Prune for prometheus::core::MetricVec<T> {
    fn prune(&self, labels: &[&str], stale: &dyn Fn(&str, &str) -> bool) {
        use prometheus::core::Collector;
        for family in self.collect() {
            for metric in family.get_metric() {
                let pairs = metric.get_label();
                if !pairs.iter().any(|p| stale(p.name(), p.value())) {
                    continue;
                }
                // The child's values in the order the family declares its labels.
                let values: Option<Vec<&str>> = labels
                    .iter()
                    .map(|l| pairs.iter().find(|p| p.name() == *l).map(|p| p.value()))
                    .collect();
                if let Some(values) = values {
                    let _ = self.remove_label_values(&values);
                }
            }
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_labelled_by_probe_seed_or_domain_is_pruned() {
        let m = Metrics::new();
        let scoped: Vec<&str> = m.scoped().map(|(_, s)| s.name).collect();
        for s in ALL {
            if s.labels
                .iter()
                .any(|l| matches!(*l, "probe" | "seed" | "domain"))
            {
                assert!(
                    scoped.contains(&s.name),
                    "{} is not pruned on reload",
                    s.name
                );
            }
        }
    }

    #[test]
    fn series_of_unconfigured_probes_seeds_and_domains_are_forgotten() {
        let m = Metrics::new();
        for (probe, seed, domain) in [
            ("kept", "s-kept", "kept.test"),
            ("gone", "s-gone", "gone.test"),
        ] {
            m.probe_sent.with_label_values(&[probe, "snd", seed]).inc();
            m.delivery_latency
                .with_label_values(&[probe, "snd", "prov", "inbox"])
                .observe(1.0);
            m.probe_last_latency
                .with_label_values(&[probe, seed])
                .set(1.0);
            m.inbox_up.with_label_values(&[seed]).set(1);
            m.oauth_refresh_failures
                .with_label_values(&[seed, "revoked"])
                .inc();
            m.dns_check_status
                .with_label_values(&[domain, "spf", "ok"])
                .set(1);
            m.dns_record_changes
                .with_label_values(&[domain, "spf"])
                .inc();
        }
        // Only the seed is gone here: the probe series naming it go too.
        m.probe_placement
            .with_label_values(&["kept", "s-gone", "inbox"])
            .set(1);
        let configured = |name: &str, value: &str| !value.contains("gone") || name == "sender";
        m.forget_unconfigured(&configured, ["kept.test".to_string()].into());
        let text = m.render();
        assert!(!text.contains("gone"), "{text}");
        for kept in [
            r#"mailcanary_probe_sent_total{probe="kept",seed="s-kept",sender="snd"} 1"#,
            r#"mailcanary_inbox_up{seed="s-kept"} 1"#,
            r#"mailcanary_dns_check_status{check="spf",domain="kept.test",status="ok"} 1"#,
            r#"mailcanary_delivery_latency_seconds_count{placement="inbox",probe="kept",provider="prov",sender="snd"} 1"#,
        ] {
            assert!(text.contains(kept), "{kept} missing:\n{text}");
        }
        // An audit of a removed domain that ends after the pruning exports
        // nothing; one of a kept domain does.
        for domain in ["gone.test", "kept.test"] {
            m.for_domain(domain, |m| {
                m.dns_record_changes
                    .with_label_values(&[domain, "mx"])
                    .inc()
            });
        }
        let text = m.render();
        assert!(!text.contains("gone"), "{text}");
        assert!(
            text.contains(
                r#"mailcanary_dns_record_changes_total{domain="kept.test",record="mx"} 1"#
            ),
            "{text}"
        );
    }

    #[test]
    fn series_follow_the_naming_rules() {
        for s in ALL {
            assert!(s.name.starts_with("mailcanary_"), "{}", s.name);
            assert_eq!(
                s.kind == Kind::Counter,
                s.name.ends_with("_total"),
                "{}: _total iff counter",
                s.name
            );
            if !s.unit.is_empty() {
                assert!(
                    s.name.contains(&format!("_{}", s.unit)),
                    "{}: unit {} in name",
                    s.name,
                    s.unit
                );
            }
            assert!(!s.help.is_empty(), "{} has help", s.name);
        }
        let mut names: Vec<_> = ALL.iter().map(|s| s.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ALL.len(), "names are unique");
    }

    #[test]
    fn build_info_is_rendered() {
        let m = Metrics::new();
        let text = m.render();
        assert!(
            text.contains(&format!(
                "mailcanary_build_info{{version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            )),
            "{text}"
        );
    }
}
