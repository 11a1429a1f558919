//! Every series mailcanary exports, defined once.
//!
//! Each [`Series`] constant names the metric, its type, unit and labels; the
//! metric table in `docs/metrics.md` is checked against [`ALL`] by a test. Labels are
//! bounded: configured names (`probe`, `sender`, `seed`, `provider`,
//! `domain`, `selector`, `mailbox`) and closed enums (`placement`, `check`, `result`,
//! `reason`) — never an address, token, code, Message-ID or server text.

mod family;

pub use family::{
    Counter, Family, Gauge, Histogram, IntGauge, LabelError, Single, StateSet, Value,
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

        /// A handle to every family.
        pub struct Metrics {
            /// Size of the last exposition, to reserve the next one at once.
            last_len: std::sync::atomic::AtomicUsize,
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
                let m = Metrics {
                    $($field: <$ty as Exported>::make(&$id),)*
                    last_len: std::sync::atomic::AtomicUsize::new(0),
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

            /// Every family with its series, in [`ALL`] order.
            fn families(&self) -> Vec<(&dyn Exported, &'static Series)> {
                vec![$((&self.$field as &dyn Exported, &$id)),*]
            }
        }
    };
}

families! {
    build_info: Family<IntGauge> = BUILD_INFO("mailcanary_build_info", Gauge, "", ["version"],
        "Build metadata; always 1.");
    config_last_reload_successful: Single<IntGauge> = CONFIG_LAST_RELOAD_SUCCESSFUL("mailcanary_config_last_reload_successful", Gauge, "", [],
        "1 if the last configuration (re)load succeeded, 0 if it failed and the previous config is still running.");
    config_last_reload_success_timestamp: Single<Gauge> = CONFIG_LAST_RELOAD_SUCCESS_TIMESTAMP("mailcanary_config_last_reload_success_timestamp_seconds", Gauge, "seconds", [],
        "Unix time of the last successful configuration load.");
    probe_sent: Family<Counter> = PROBE_SENT("mailcanary_probe_sent_total", Counter, "", ["probe", "sender", "seed"],
        "Probe messages accepted by the sending relay.");
    probe_send_failures: Family<Counter> = PROBE_SEND_FAILURES("mailcanary_probe_send_failures_total", Counter, "", ["probe", "sender", "seed", "reason"],
        "Probe sends that failed, by bounded reason (the send-failure reasons in docs/metrics.md).");
    probe_results: Family<Counter> = PROBE_RESULTS("mailcanary_probe_results_total", Counter, "", ["probe", "sender", "seed", "provider", "placement"],
        "Final probe results by placement (the outcomes in docs/metrics.md, send_failed excepted).");
    delivery_latency: Family<Histogram> = DELIVERY_LATENCY("mailcanary_delivery_latency_seconds", Histogram, "seconds", ["probe", "sender", "provider", "placement"],
        "Submit-to-arrival time of delivered probes.");
    probe_last_latency: Family<Gauge> = PROBE_LAST_LATENCY("mailcanary_probe_last_latency_seconds", Gauge, "seconds", ["probe", "seed"],
        "Submit-to-arrival time of the last delivered probe; removed when the last probe did not arrive.");
    probe_last_result_timestamp: Family<Gauge> = PROBE_LAST_RESULT_TIMESTAMP("mailcanary_probe_last_result_timestamp_seconds", Gauge, "seconds", ["probe", "seed"],
        "Unix time of the last final probe result.");
    probe_placement: StateSet = PROBE_PLACEMENT("mailcanary_probe_placement", Gauge, "", ["probe", "seed", "placement"],
        "Placement of the last probe as a state set: exactly one placement is 1.");
    auth_result: StateSet = AUTH_RESULT("mailcanary_auth_result", Gauge, "", ["probe", "seed", "method", "result"],
        "The receiver's authentication verdicts on the last probe as a state set per method.");
    delivered_dkim_result: StateSet = DELIVERED_DKIM_RESULT("mailcanary_delivered_dkim_result", Gauge, "", ["probe", "seed", "result"],
        "The delivered copy's DKIM as mailcanary re-verifies it, as a state set (pass, fail, none, temperror, permerror); fail where the receiver said pass means the message was changed after the border.");
    arrived_after_expiry: Family<Counter> = ARRIVED_AFTER_EXPIRY("mailcanary_probe_arrived_after_expiry_total", Counter, "", ["probe", "sender", "seed"],
        "Probe mail that arrived after its code's validity (probes.NAME.code_validity), whether in time for the probe (placement expired) or late.");
    resend_out_of_order: Family<Counter> = RESEND_OUT_OF_ORDER("mailcanary_resend_out_of_order_total", Counter, "", ["probe", "sender", "seed"],
        "Resend bursts in which an older code arrived after a newer one (by the Date the app gave each message); counted once per burst.");
    resend_duplicates: Family<Counter> = RESEND_DUPLICATES("mailcanary_resend_duplicates_total", Counter, "", ["probe", "sender", "seed"],
        "Messages of a resend burst that repeated a code already received.");
    dns_check_status: StateSet = DNS_CHECK_STATUS("mailcanary_dns_check_status", Gauge, "", ["domain", "check", "status"],
        "DNS audit status per domain and check as a state set (ok, warning, error, unknown).");
    dns_findings: Family<IntGauge> = DNS_FINDINGS("mailcanary_dns_findings", Gauge, "", ["domain", "check", "severity"],
        "Number of DNS audit findings per domain, check and severity.");
    spf_dns_lookups: Family<IntGauge> = SPF_DNS_LOOKUPS("mailcanary_spf_dns_lookups", Gauge, "", ["domain"],
        "DNS lookups the domain's SPF record needs (RFC 7208 limit: 10).");
    dkim_key_bits: Family<IntGauge> = DKIM_KEY_BITS("mailcanary_dkim_key_bits", Gauge, "bits", ["domain", "selector"],
        "Size of the DKIM public key.");
    dmarc_policy: StateSet = DMARC_POLICY("mailcanary_dmarc_policy", Gauge, "", ["domain", "policy"],
        "The domain's DMARC policy as a state set (none, quarantine, reject).");
    dnsbl_listed: Family<IntGauge> = DNSBL_LISTED("mailcanary_dnsbl_listed", Gauge, "", ["target", "list"],
        "1 if the target is listed on the DNS blocklist.");
    dns_record_changes: Family<Counter> = DNS_RECORD_CHANGES("mailcanary_dns_record_changes_total", Counter, "", ["domain", "record"],
        "Changes of a DNS record's content since the previous audit.");
    inbox_up: Family<IntGauge> = INBOX_UP("mailcanary_inbox_up", Gauge, "", ["seed"],
        "1 if the seed's inbox watcher is connected and watching.");
    probe_tab: Family<Counter> = PROBE_TAB("mailcanary_probe_tab_total", Counter, "", ["probe", "sender", "seed", "provider", "tab"],
        "Deliveries to a Gmail category tab (placement tab), by tab: promotions, social, updates, forums.");
    oauth_token_expiry: Family<IntGauge> = OAUTH_TOKEN_EXPIRY("mailcanary_oauth_token_expiry_timestamp_seconds", Gauge, "seconds", ["seed"],
        "When the seed's current OAuth access token expires; 0 while there is none (refresh refused).");
    oauth_refreshes: Family<Counter> = OAUTH_REFRESHES("mailcanary_oauth_refreshes_total", Counter, "", ["seed"],
        "OAuth access tokens obtained from the seed's token endpoint.");
    oauth_refresh_failures: Family<Counter> = OAUTH_REFRESH_FAILURES("mailcanary_oauth_refresh_failures_total", Counter, "", ["seed", "reason"],
        "Failed OAuth token refreshes, by bounded reason (see docs/metrics.md).");
    probe_bounces: Family<Counter> = PROBE_BOUNCES("mailcanary_probe_bounces_total", Counter, "", ["probe", "sender", "seed", "provider", "reason"],
        "Probe runs a receiver refused: a bounce for the run reached the sender's bounce mailbox. `reason` is the bounce classifier's (Sisimai's vocabulary).");
    probe_deferred: Family<Counter> = PROBE_DEFERRED("mailcanary_probe_deferred_total", Counter, "", ["probe", "sender", "seed"],
        "Delay notices (RFC 3464 action `delayed`) for probe runs, e.g. greylisting; the run stays open.");
    dmarc_report_messages: Family<Counter> = DMARC_REPORT_MESSAGES("mailcanary_dmarc_report_messages_total", Counter, "", ["domain", "reporter", "source", "dmarc", "spf_aligned", "dkim_aligned", "disposition"],
        "Messages DMARC aggregate reports counted for a configured domain, by receiver (reporter), whether the source IP is the domain's own (source configured/other), DMARC result, aligned SPF and DKIM, and disposition.");
    tls_report_sessions: Family<Counter> = TLS_REPORT_SESSIONS("mailcanary_tls_report_sessions_total", Counter, "", ["domain", "reporter", "policy_type", "result"],
        "TLS sessions towards a configured domain that TLS-RPT reports counted, by result (success, failure).");
    tls_report_failures: Family<Counter> = TLS_REPORT_FAILURES("mailcanary_tls_report_failures_total", Counter, "", ["domain", "reporter", "result_type"],
        "Failed TLS sessions towards a configured domain by RFC 8460 result type.");
    reports: Family<Counter> = REPORTS("mailcanary_reports_total", Counter, "", ["mailbox", "kind", "outcome"],
        "Report messages read from a [reports.*] mailbox, by kind and outcome (ingested, duplicate, invalid, foreign_domain).");
    report_last_timestamp: Family<Gauge> = REPORT_LAST_TIMESTAMP("mailcanary_report_last_timestamp_seconds", Gauge, "seconds", ["domain", "kind"],
        "End of the period of the newest report for a configured domain (ingestion time when a TLS report has no readable period).");
    bounces: Family<Counter> = BOUNCES("mailcanary_bounces_total", Counter, "", ["mailbox", "provider", "reason"],
        "Failed recipients in the bounces of the app's real mail ([bounces.*] mailboxes), by the recipient domain's provider and the bounce reason.");
    bounces_typo_domain: Family<Counter> = BOUNCES_TYPO_DOMAIN("mailcanary_bounces_typo_domain_total", Counter, "", ["mailbox", "provider"],
        "Bounced recipients whose domain is probably a mistyping of a consumer domain, by the provider meant.");
    task_panics: Family<Counter> = TASK_PANICS("mailcanary_task_panics_total", Counter, "", ["task"],
        "Panics contained in a task that talks to a server (inbox_watcher, sender): the task's work ended, the daemon ran on.");
}

/// Histogram buckets for delivery latency: sub-second local delivery up to an
/// hour of greylisting.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
];

/// A family as the exposition and a reload's pruning see it.
trait Exported: Sync {
    fn make(s: &Series) -> Self
    where
        Self: Sized;
    /// Appends the family in the text format.
    fn write(&self, s: &Series, out: &mut String);
    /// Removes every child with a label `stale` picks; a family without
    /// labels has nothing to remove.
    fn prune(&self, _stale: &dyn Fn(&str, &str) -> bool) {}
    /// The family in the `prometheus` crate's data model (tests only).
    #[cfg(test)]
    fn proto(&self, s: &Series) -> prometheus::proto::MetricFamily;
}

/// A family of the crate's data model from children given as label values
/// in declaration order; label pairs sorted by name, as the crate does.
#[cfg(test)]
fn proto_family<V: Value>(
    s: &Series,
    children: Vec<(Vec<String>, std::sync::Arc<V>)>,
) -> prometheus::proto::MetricFamily {
    let mut family = prometheus::proto::MetricFamily::default();
    family.set_name(s.name.to_string());
    family.set_help(s.help.to_string());
    let mut metrics = Vec::new();
    for (values, value) in children {
        let (kind, mut m) = value.proto();
        family.set_field_type(kind);
        let mut pairs: Vec<prometheus::proto::LabelPair> = s
            .labels
            .iter()
            .zip(values)
            .map(|(n, v)| {
                let mut p = prometheus::proto::LabelPair::default();
                p.set_name(n.to_string());
                p.set_value(v);
                p
            })
            .collect();
        pairs.sort_by(|a, b| a.name().cmp(b.name()));
        m.set_label(pairs);
        metrics.push(m);
    }
    // The crate's registry sorts children itself: hand them over reversed.
    metrics.reverse();
    family.set_metric(metrics);
    family
}

impl<V: Value> Exported for Family<V> {
    fn make(s: &Series) -> Self {
        Family::new(s.labels)
    }
    fn write(&self, s: &Series, out: &mut String) {
        Family::write(self, s.name, s.help, out);
    }
    fn prune(&self, stale: &dyn Fn(&str, &str) -> bool) {
        Family::prune(self, stale);
    }
    #[cfg(test)]
    fn proto(&self, s: &Series) -> prometheus::proto::MetricFamily {
        proto_family(s, self.children())
    }
}

impl Exported for StateSet {
    fn make(s: &Series) -> Self {
        StateSet::new(s.labels)
    }
    fn write(&self, s: &Series, out: &mut String) {
        StateSet::write(self, s.name, s.help, out);
    }
    fn prune(&self, stale: &dyn Fn(&str, &str) -> bool) {
        StateSet::prune(self, stale);
    }
    #[cfg(test)]
    fn proto(&self, s: &Series) -> prometheus::proto::MetricFamily {
        proto_family(s, self.children())
    }
}

impl<V: Value> Exported for Single<V> {
    fn make(_: &Series) -> Self {
        Single::default()
    }
    fn write(&self, s: &Series, out: &mut String) {
        Single::write(self, s.name, s.help, out);
    }
    #[cfg(test)]
    fn proto(&self, s: &Series) -> prometheus::proto::MetricFamily {
        proto_family(s, vec![(Vec::new(), self.value())])
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
        for (family, _) in self.scoped() {
            family.prune(&stale);
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
    fn scoped(&self) -> impl Iterator<Item = (&dyn Exported, &'static Series)> {
        self.families()
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
        use std::sync::atomic::Ordering::Relaxed;
        let mut families = self.families();
        // Families in name order, as Prometheus' own clients write them.
        families.sort_by_key(|(_, s)| s.name);
        let mut out = String::with_capacity(self.last_len.load(Relaxed) + 4096);
        for (family, series) in families {
            family.write(series, &mut out);
        }
        self.last_len.store(out.len(), Relaxed);
        out
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
                .set(&[domain, "spf"], ["ok", "error"], "ok");
            m.dns_record_changes
                .with_label_values(&[domain, "spf"])
                .inc();
        }
        // Only the seed is gone here: the probe series naming it go too.
        m.probe_placement
            .set(&["kept", "s-gone"], ["inbox", "spam"], "inbox");
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

    /// The `prometheus` crate's registry and text encoder over the same values.
    fn crate_encoding(m: &Metrics) -> String {
        struct Oracle(
            Vec<prometheus::core::Desc>,
            Vec<prometheus::proto::MetricFamily>,
        );
        impl prometheus::core::Collector for Oracle {
            fn desc(&self) -> Vec<&prometheus::core::Desc> {
                self.0.iter().collect()
            }
            fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
                self.1.clone()
            }
        }
        let mut descs = Vec::new();
        let mut families = Vec::new();
        for (family, s) in m.families() {
            let labels = s.labels.iter().map(|l| l.to_string()).collect();
            descs.push(
                prometheus::core::Desc::new(
                    s.name.into(),
                    s.help.into(),
                    labels,
                    Default::default(),
                )
                .unwrap(),
            );
            families.push(family.proto(s));
        }
        let registry = prometheus::Registry::new();
        registry
            .register(Box::new(Oracle(descs, families)))
            .unwrap();
        let mut out = String::new();
        prometheus::TextEncoder::new()
            .encode_utf8(&registry.gather(), &mut out)
            .unwrap();
        out
    }

    #[test]
    fn the_exposition_is_what_the_prometheus_crate_writes() {
        let m = Metrics::new();
        // Values that sort differently as text than as label tuples, and
        // every character the format escapes.
        for (probe, seed) in [
            ("a", "z"),
            ("a b", "y"),
            ("a-b", "x"),
            ("ab", "w"),
            ("a", "y\\\"q\"\nz"),
            ("é", "ü"),
        ] {
            m.probe_sent.with_label_values(&[probe, "snd", seed]).inc();
            m.probe_last_latency
                .with_label_values(&[probe, seed])
                .set(0.1 + probe.len() as f64);
            // States that sort around the labels' values, and one not in
            // the list (every line 0).
            m.probe_placement.set(
                &[probe, seed],
                ["spam", "inbox", "a b", "zz"],
                if seed == "w" { "other" } else { "inbox" },
            );
            m.auth_result.set(
                &[probe, seed, "dkim"],
                ["pass", "fail", "none"],
                if probe == "ab" { "fail" } else { "pass" },
            );
            m.auth_result
                .set(&[probe, seed, "spf"], ["pass", "fail", "none"], "none");
        }
        m.probe_sent
            .with_label_values(&["big", "snd", "s"])
            .inc_by((1 << 53) + 2);
        m.probe_last_latency
            .with_label_values(&["neg", "s"])
            .set(-2.5e-7);
        m.probe_last_result_timestamp
            .with_label_values(&["ts", "s"])
            .set(1_764_000_000.123);
        m.dns_check_status
            .set(&["d.test", "spf"], ["ok", "error"], "error");
        m.dmarc_policy
            .set(&["d.test"], ["none", "reject"], "reject");
        for v in [0.1, 0.25, 0.3, 7.0, 3600.0, 5000.0, 12.5] {
            m.delivery_latency
                .with_label_values(&["p", "snd", "prov", "inbox"])
                .observe(v);
        }
        m.delivery_latency
            .with_label_values(&["p", "snd", "prov", "spam"])
            .observe(2.0);
        m.config_last_reload_successful.set(1);
        m.config_last_reload_success_timestamp.set(1_764_000_000.5);
        let ours = m.render();
        assert!(ours.contains("le=\"+Inf\""), "{ours}");
        assert_eq!(ours, crate_encoding(&m));
        // A removed child is gone from both.
        m.probe_sent
            .remove_label_values(&["a", "snd", "z"])
            .unwrap();
        assert_eq!(
            m.probe_sent.remove_label_values(&["a", "snd", "z"]),
            Err(LabelError::Missing)
        );
        m.auth_result
            .remove_label_values(&["a", "z", "dkim"])
            .unwrap();
        assert_eq!(m.render(), crate_encoding(&m));
    }

    #[test]
    fn a_state_set_has_one_current_state_and_one_list() {
        let m = Metrics::new();
        let policies = ["none", "quarantine", "reject"];
        // An empty list or a repeated state is refused and fixes nothing.
        m.dmarc_policy.set(&["d.test"], [], "none");
        m.dmarc_policy
            .set(&["d.test"], ["none", "reject", "none"], "none");
        assert!(!m.render().contains("dmarc_policy"));
        m.dmarc_policy.set(&["d.test"], policies, "none");
        m.dmarc_policy.set(&["d.test"], policies, "reject");
        // Another list for the same family is a caller's bug: not exported.
        m.dmarc_policy.set(&["d.test"], ["none", "reject"], "none");
        m.dmarc_policy.set(&["e.test"], ["none"], "none");
        let lines: Vec<String> = m
            .render()
            .lines()
            .filter(|l| l.starts_with("mailcanary_dmarc_policy{"))
            .map(String::from)
            .collect();
        assert_eq!(
            lines,
            [
                r#"mailcanary_dmarc_policy{domain="d.test",policy="none"} 0"#,
                r#"mailcanary_dmarc_policy{domain="d.test",policy="quarantine"} 0"#,
                r#"mailcanary_dmarc_policy{domain="d.test",policy="reject"} 1"#,
            ]
        );
        m.dmarc_policy.remove_label_values(&["d.test"]).unwrap();
        assert!(!m.render().contains("dmarc_policy"));
        assert_eq!(
            m.dmarc_policy.remove_label_values(&["d.test", "none"]),
            Err(LabelError::Arity { got: 2, want: 1 })
        );
    }

    #[test]
    fn wrong_label_arity_is_refused_not_a_panic() {
        let m = Metrics::new();
        m.probe_sent.with_label_values(&["only-one"]).inc();
        assert!(!m.render().contains("only-one"));
        assert_eq!(
            m.probe_sent.remove_label_values(&["a"]),
            Err(LabelError::Arity { got: 1, want: 3 })
        );
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
