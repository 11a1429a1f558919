//! Every series mailcanary exports, defined once.
//!
//! Each [`Series`] constant names the metric, its type, unit and labels; the
//! README's metric table is checked against [`ALL`] by a test. Labels are
//! bounded: configured names (`probe`, `sender`, `seed`, `provider`,
//! `domain`, `selector`) and closed enums (`placement`, `check`, `result`,
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

/// Defines a [`Series`] constant whose doc comment is its help text.
macro_rules! series {
    ($help:literal, $id:ident, $name:literal, $kind:ident, $unit:literal, [$($label:literal),*]) => {
        #[doc = $help]
        pub const $id: Series = Series {
            name: $name,
            kind: Kind::$kind,
            unit: $unit,
            labels: &[$($label),*],
            help: $help,
        };
    };
}

series!(
    "Build metadata; always 1.",
    BUILD_INFO,
    "mailcanary_build_info",
    Gauge,
    "",
    ["version"]
);
series!("1 if the last configuration (re)load succeeded, 0 if it failed and the previous config is still running.",
    CONFIG_LAST_RELOAD_SUCCESSFUL, "mailcanary_config_last_reload_successful", Gauge, "", []);
series!(
    "Unix time of the last successful configuration load.",
    CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP,
    "mailcanary_config_last_reload_success_timestamp_seconds",
    Gauge,
    "seconds",
    []
);
series!(
    "Probe messages accepted by the sending relay.",
    PROBE_SENT,
    "mailcanary_probe_sent_total",
    Counter,
    "",
    ["probe", "sender", "seed"]
);
series!(
    "Probe sends that failed, by bounded reason (connect, tls, auth, smtp_4xx, smtp_5xx, timeout).",
    PROBE_SEND_FAILURES,
    "mailcanary_probe_send_failures_total",
    Counter,
    "",
    ["probe", "sender", "seed", "reason"]
);
series!(
    "Final probe results by placement (inbox, spam, tab, missing, late).",
    PROBE_RESULTS,
    "mailcanary_probe_results_total",
    Counter,
    "",
    ["probe", "sender", "seed", "provider", "placement"]
);
series!(
    "Submit-to-arrival time of delivered probes.",
    DELIVERY_LATENCY,
    "mailcanary_delivery_latency_seconds",
    Histogram,
    "seconds",
    ["probe", "sender", "provider", "placement"]
);
series!("Submit-to-arrival time of the last delivered probe; removed when the last probe did not arrive.",
    PROBE_LAST_LATENCY, "mailcanary_probe_last_latency_seconds", Gauge, "seconds", ["probe", "seed"]);
series!(
    "Unix time of the last final probe result.",
    PROBE_LAST_RESULT_TIMESTAMP,
    "mailcanary_probe_last_result_timestamp_seconds",
    Gauge,
    "seconds",
    ["probe", "seed"]
);
series!(
    "Placement of the last probe as a state set: exactly one placement is 1.",
    PROBE_PLACEMENT,
    "mailcanary_probe_placement",
    Gauge,
    "",
    ["probe", "seed", "placement"]
);
series!(
    "The receiver's authentication verdicts on the last probe as a state set per method.",
    AUTH_RESULT,
    "mailcanary_auth_result",
    Gauge,
    "",
    ["probe", "seed", "method", "result"]
);
series!(
    "DNS audit status per domain and check as a state set (ok, warning, error, unknown).",
    DNS_CHECK_STATUS,
    "mailcanary_dns_check_status",
    Gauge,
    "",
    ["domain", "check", "status"]
);
series!(
    "Number of DNS audit findings per domain, check and severity.",
    DNS_FINDINGS,
    "mailcanary_dns_findings",
    Gauge,
    "",
    ["domain", "check", "severity"]
);
series!(
    "DNS lookups the domain's SPF record needs (RFC 7208 limit: 10).",
    SPF_DNS_LOOKUPS,
    "mailcanary_spf_dns_lookups",
    Gauge,
    "",
    ["domain"]
);
series!(
    "Size of the DKIM public key.",
    DKIM_KEY_BITS,
    "mailcanary_dkim_key_bits",
    Gauge,
    "bits",
    ["domain", "selector"]
);
series!(
    "The domain's DMARC policy as a state set (none, quarantine, reject).",
    DMARC_POLICY,
    "mailcanary_dmarc_policy",
    Gauge,
    "",
    ["domain", "policy"]
);
series!(
    "1 if the target is listed on the DNS blocklist.",
    DNSBL_LISTED,
    "mailcanary_dnsbl_listed",
    Gauge,
    "",
    ["target", "list"]
);
series!(
    "Changes of a DNS record's content since the previous audit.",
    DNS_RECORD_CHANGES,
    "mailcanary_dns_record_changes_total",
    Counter,
    "",
    ["domain", "record"]
);
series!(
    "Probe mail that arrived after its code's validity (probes.NAME.code_validity), whether in time for the probe (placement expired) or late.",
    ARRIVED_AFTER_EXPIRY,
    "mailcanary_probe_arrived_after_expiry_total",
    Counter,
    "",
    ["probe", "sender", "seed"]
);
series!(
    "Resend bursts in which an older code arrived after a newer one (by the Date the app gave each message); counted once per burst.",
    RESEND_OUT_OF_ORDER,
    "mailcanary_resend_out_of_order_total",
    Counter,
    "",
    ["probe", "sender", "seed"]
);
series!(
    "Messages of a resend burst that repeated a code already received.",
    RESEND_DUPLICATES,
    "mailcanary_resend_duplicates_total",
    Counter,
    "",
    ["probe", "sender", "seed"]
);
series!(
    "The delivered copy's DKIM as mailcanary re-verifies it, as a state set (pass, fail, none, temperror, permerror); fail where the receiver said pass means the message was changed after the border.",
    DELIVERED_DKIM_RESULT,
    "mailcanary_delivered_dkim_result",
    Gauge,
    "",
    ["probe", "seed", "result"]
);
series!(
    "1 if the seed's inbox watcher is connected and watching.",
    INBOX_UP,
    "mailcanary_inbox_up",
    Gauge,
    "",
    ["seed"]
);

series!(
    "Deliveries to a Gmail category tab (placement tab), by tab: promotions, social, updates, forums.",
    PROBE_TAB,
    "mailcanary_probe_tab_total",
    Counter,
    "",
    ["probe", "sender", "seed", "provider", "tab"]
);
series!(
    "When the seed's current OAuth access token expires; 0 while there is none (refresh refused).",
    OAUTH_TOKEN_EXPIRY,
    "mailcanary_oauth_token_expiry_timestamp_seconds",
    Gauge,
    "seconds",
    ["seed"]
);
series!(
    "OAuth access tokens obtained from the seed's token endpoint.",
    OAUTH_REFRESHES,
    "mailcanary_oauth_refreshes_total",
    Counter,
    "",
    ["seed"]
);
series!(
    "Failed OAuth token refreshes, by reason (revoked, invalid_client, http_4xx, http_5xx, http_other, timeout, connect, network, malformed).",
    OAUTH_REFRESH_FAILURES,
    "mailcanary_oauth_refresh_failures_total",
    Counter,
    "",
    ["seed", "reason"]
);

series!(
    "Panics contained in a task that talks to a server (inbox_watcher, sender): the task's work ended, the daemon ran on.",
    TASK_PANICS,
    "mailcanary_task_panics_total",
    Counter,
    "",
    ["task"]
);

/// Every series, for documentation checks.
pub const ALL: &[Series] = &[
    BUILD_INFO,
    CONFIG_LAST_RELOAD_SUCCESSFUL,
    CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP,
    PROBE_SENT,
    PROBE_SEND_FAILURES,
    PROBE_RESULTS,
    DELIVERY_LATENCY,
    PROBE_LAST_LATENCY,
    PROBE_LAST_RESULT_TIMESTAMP,
    PROBE_PLACEMENT,
    AUTH_RESULT,
    DELIVERED_DKIM_RESULT,
    ARRIVED_AFTER_EXPIRY,
    RESEND_OUT_OF_ORDER,
    RESEND_DUPLICATES,
    DNS_CHECK_STATUS,
    DNS_FINDINGS,
    SPF_DNS_LOOKUPS,
    DKIM_KEY_BITS,
    DMARC_POLICY,
    DNSBL_LISTED,
    DNS_RECORD_CHANGES,
    INBOX_UP,
    PROBE_TAB,
    OAUTH_TOKEN_EXPIRY,
    OAUTH_REFRESHES,
    OAUTH_REFRESH_FAILURES,
    TASK_PANICS,
];

/// Histogram buckets for delivery latency: sub-second local delivery up to an
/// hour of greylisting.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
];

/// The registry and a handle to every family in it.
pub struct Metrics {
    pub registry: Registry,
    /// The audited domains of the running configuration (`None` until the
    /// first generation starts). Held while a reload prunes and while an
    /// audit exports, so an audit that ends as its domain is removed cannot
    /// bring the domain's series back.
    audited: std::sync::Mutex<Option<std::collections::BTreeSet<String>>>,
    pub build_info: IntGaugeVec,
    pub config_last_reload_successful: IntGauge,
    pub config_last_reload_success_timestamp: Gauge,
    pub probe_sent: IntCounterVec,
    pub probe_send_failures: IntCounterVec,
    pub probe_results: IntCounterVec,
    pub delivery_latency: HistogramVec,
    pub probe_last_latency: GaugeVec,
    pub probe_last_result_timestamp: GaugeVec,
    pub probe_placement: IntGaugeVec,
    pub auth_result: IntGaugeVec,
    pub delivered_dkim_result: IntGaugeVec,
    pub arrived_after_expiry: IntCounterVec,
    pub resend_out_of_order: IntCounterVec,
    pub resend_duplicates: IntCounterVec,
    pub dns_check_status: IntGaugeVec,
    pub dns_findings: IntGaugeVec,
    pub spf_dns_lookups: IntGaugeVec,
    pub dkim_key_bits: IntGaugeVec,
    pub dmarc_policy: IntGaugeVec,
    pub dnsbl_listed: IntGaugeVec,
    pub dns_record_changes: IntCounterVec,
    pub inbox_up: IntGaugeVec,
    pub probe_tab: IntCounterVec,
    pub oauth_token_expiry: IntGaugeVec,
    pub oauth_refreshes: IntCounterVec,
    pub oauth_refresh_failures: IntCounterVec,
    pub task_panics: IntCounterVec,
}

fn opts(s: &Series) -> Opts {
    Opts::new(s.name, s.help)
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        // Names and labels are compile-time constants checked by the tests
        // below, so registration cannot fail at run time.
        fn reg<C: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: C) -> C {
            r.register(Box::new(c.clone()))
                .expect("series are unique and valid");
            c
        }
        let gauge_vec = |s: &Series| {
            reg(
                &registry,
                IntGaugeVec::new(opts(s), s.labels).expect("valid series"),
            )
        };
        let fgauge_vec = |s: &Series| {
            reg(
                &registry,
                GaugeVec::new(opts(s), s.labels).expect("valid series"),
            )
        };
        let counter_vec = |s: &Series| {
            reg(
                &registry,
                IntCounterVec::new(opts(s), s.labels).expect("valid series"),
            )
        };

        let m = Metrics {
            build_info: gauge_vec(&BUILD_INFO),
            config_last_reload_successful: reg(
                &registry,
                IntGauge::with_opts(opts(&CONFIG_LAST_RELOAD_SUCCESSFUL)).expect("valid series"),
            ),
            config_last_reload_success_timestamp: reg(
                &registry,
                Gauge::with_opts(opts(&CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP))
                    .expect("valid series"),
            ),
            probe_sent: counter_vec(&PROBE_SENT),
            probe_send_failures: counter_vec(&PROBE_SEND_FAILURES),
            probe_results: counter_vec(&PROBE_RESULTS),
            delivery_latency: reg(
                &registry,
                HistogramVec::new(
                    HistogramOpts::new(DELIVERY_LATENCY.name, DELIVERY_LATENCY.help)
                        .buckets(LATENCY_BUCKETS.to_vec()),
                    DELIVERY_LATENCY.labels,
                )
                .expect("valid series"),
            ),
            probe_last_latency: fgauge_vec(&PROBE_LAST_LATENCY),
            probe_last_result_timestamp: fgauge_vec(&PROBE_LAST_RESULT_TIMESTAMP),
            probe_placement: gauge_vec(&PROBE_PLACEMENT),
            auth_result: gauge_vec(&AUTH_RESULT),
            delivered_dkim_result: gauge_vec(&DELIVERED_DKIM_RESULT),
            arrived_after_expiry: counter_vec(&ARRIVED_AFTER_EXPIRY),
            resend_out_of_order: counter_vec(&RESEND_OUT_OF_ORDER),
            resend_duplicates: counter_vec(&RESEND_DUPLICATES),
            dns_check_status: gauge_vec(&DNS_CHECK_STATUS),
            dns_findings: gauge_vec(&DNS_FINDINGS),
            spf_dns_lookups: gauge_vec(&SPF_DNS_LOOKUPS),
            dkim_key_bits: gauge_vec(&DKIM_KEY_BITS),
            dmarc_policy: gauge_vec(&DMARC_POLICY),
            dnsbl_listed: gauge_vec(&DNSBL_LISTED),
            dns_record_changes: counter_vec(&DNS_RECORD_CHANGES),
            inbox_up: gauge_vec(&INBOX_UP),
            probe_tab: counter_vec(&PROBE_TAB),
            oauth_token_expiry: gauge_vec(&OAUTH_TOKEN_EXPIRY),
            oauth_refreshes: counter_vec(&OAUTH_REFRESHES),
            oauth_refresh_failures: counter_vec(&OAUTH_REFRESH_FAILURES),
            task_panics: counter_vec(&TASK_PANICS),
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

    /// Remove every series whose `probe`, `seed` or `domain` label names
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
        let stale = |name: &str, value: &str| {
            matches!(name, "probe" | "seed" | "domain") && !configured(name, value)
        };
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

    /// Every family with a `probe`, `seed` or `domain` label (a test checks
    /// none is missing).
    fn scoped(&self) -> [(&dyn Prune, &'static Series); 23] {
        [
            (&self.probe_sent, &PROBE_SENT),
            (&self.probe_send_failures, &PROBE_SEND_FAILURES),
            (&self.probe_results, &PROBE_RESULTS),
            (&self.delivery_latency, &DELIVERY_LATENCY),
            (&self.probe_last_latency, &PROBE_LAST_LATENCY),
            (
                &self.probe_last_result_timestamp,
                &PROBE_LAST_RESULT_TIMESTAMP,
            ),
            (&self.probe_placement, &PROBE_PLACEMENT),
            (&self.auth_result, &AUTH_RESULT),
            (&self.delivered_dkim_result, &DELIVERED_DKIM_RESULT),
            (&self.arrived_after_expiry, &ARRIVED_AFTER_EXPIRY),
            (&self.resend_out_of_order, &RESEND_OUT_OF_ORDER),
            (&self.resend_duplicates, &RESEND_DUPLICATES),
            (&self.dns_check_status, &DNS_CHECK_STATUS),
            (&self.dns_findings, &DNS_FINDINGS),
            (&self.spf_dns_lookups, &SPF_DNS_LOOKUPS),
            (&self.dkim_key_bits, &DKIM_KEY_BITS),
            (&self.dmarc_policy, &DMARC_POLICY),
            (&self.dns_record_changes, &DNS_RECORD_CHANGES),
            (&self.inbox_up, &INBOX_UP),
            (&self.probe_tab, &PROBE_TAB),
            (&self.oauth_token_expiry, &OAUTH_TOKEN_EXPIRY),
            (&self.oauth_refreshes, &OAUTH_REFRESHES),
            (&self.oauth_refresh_failures, &OAUTH_REFRESH_FAILURES),
        ]
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
        let scoped: Vec<&str> = m.scoped().iter().map(|(_, s)| s.name).collect();
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
