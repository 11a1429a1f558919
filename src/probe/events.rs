//! Probe events: each one writes its log line and updates its metrics here,
//! so probe logic stays free of metrics code (STYLE.md item 10).
//!
//! The "last result" series are state sets and gauges that must never keep
//! a stale good value: a send failure or a missing probe moves the placement
//! state away from `inbox` and removes the last latency and the receiver's
//! verdicts of the previous probe.

use std::time::Duration;

use crate::metrics::Metrics;
use crate::probe::send::SendFailure;
use crate::probe::Placement;
use crate::verdict::authres::{AuthVerdict, EXPORTED_METHODS, RESULT_LABELS};

/// Values of the `mailcanary_probe_placement` state set: the placements a
/// probe can end in, plus `send_failed` for a probe that never left.
pub const PLACEMENT_STATES: [&str; 6] =
    ["inbox", "spam", "tab", "missing", "expired", "send_failed"];

/// Who a probe run belongs to; the label values of its series.
#[derive(Debug, Clone)]
pub struct RunLabels<'a> {
    pub probe: &'a str,
    pub sender: &'a str,
    pub seed: &'a str,
    pub provider: &'a str,
}

/// Something that happened to a probe run.
pub enum ProbeEvent<'a> {
    /// The relay accepted the message.
    Sent {
        run: RunLabels<'a>,
        queue_id: Option<&'a str>,
    },
    /// The send failed for good.
    SendFailed {
        run: RunLabels<'a>,
        failure: &'a SendFailure,
    },
    /// The message arrived in time.
    Delivered {
        run: RunLabels<'a>,
        placement: Placement,
        /// The Gmail tab, with placement `tab`.
        tab: Option<crate::inbox::gmail::Tab>,
        folder: &'a str,
        /// Submit → mailbox (INTERNALDATE / file mtime), the histogram's value.
        latency: Duration,
        /// Submit → mailcanary first saw it.
        seen_latency: Duration,
        auth: &'a AuthVerdict,
        /// The delivered copy's DKIM as mailcanary re-verified it.
        dkim_local: &'a str,
        spam_score: Option<f64>,
    },
    /// The timeout passed without an arrival.
    Missing { run: RunLabels<'a> },
    /// A missing probe arrived after all.
    Late {
        run: RunLabels<'a>,
        folder: &'a str,
        latency: Duration,
        /// After the code's validity too.
        expired: bool,
    },
    /// In a resend burst, an older code arrived after a newer one.
    OutOfOrder { run: RunLabels<'a> },
    /// In a resend burst, the same code arrived twice.
    Duplicate { run: RunLabels<'a> },
    /// A seed's watchers all connected (true) or one of them lost its connection.
    InboxUp { seed: &'a str, up: bool },
    /// A seed's OAuth access token was refreshed.
    OAuthRefreshed {
        seed: &'a str,
        expires: std::time::SystemTime,
    },
    /// A seed's OAuth token refresh failed.
    OAuthRefreshFailed {
        seed: &'a str,
        error: &'a crate::inbox::oauth::TokenError,
    },
}

impl ProbeEvent<'_> {
    /// Whether the probe and seed the event is about run in `config`. A
    /// reload that removed them also removed their series; events of runs
    /// still in flight must not bring them back.
    pub fn configured_in(&self, config: &crate::config::Config) -> bool {
        let seed = match self {
            ProbeEvent::Sent { run, .. }
            | ProbeEvent::SendFailed { run, .. }
            | ProbeEvent::Delivered { run, .. }
            | ProbeEvent::Missing { run }
            | ProbeEvent::Late { run, .. }
            | ProbeEvent::OutOfOrder { run }
            | ProbeEvent::Duplicate { run } => {
                if !config.runs("probe", run.probe) {
                    return false;
                }
                run.seed
            }
            ProbeEvent::InboxUp { seed, .. }
            | ProbeEvent::OAuthRefreshed { seed, .. }
            | ProbeEvent::OAuthRefreshFailed { seed, .. } => seed,
        };
        config.runs("seed", seed)
    }

    /// [`ProbeEvent::emit`] if [`ProbeEvent::configured_in`] the running
    /// configuration; otherwise only a debug line.
    pub fn emit_if_configured(&self, config: &crate::config::Config, m: &Metrics) {
        if self.configured_in(config) {
            self.emit(m);
        } else {
            tracing::debug!(event = ?std::mem::discriminant(self), "event of a probe or seed no longer configured; not counted");
        }
    }

    pub fn emit(&self, m: &Metrics) {
        match self {
            ProbeEvent::Sent { run, queue_id } => {
                tracing::info!(
                    probe = run.probe,
                    seed = run.seed,
                    sender = run.sender,
                    queue_id = queue_id.unwrap_or("-"),
                    "probe sent"
                );
                m.probe_sent
                    .with_label_values(&[run.probe, run.sender, run.seed])
                    .inc();
            }
            ProbeEvent::SendFailed { run, failure } => {
                tracing::warn!(
                    probe = run.probe,
                    seed = run.seed,
                    sender = run.sender,
                    reason = failure.reason.as_str(),
                    attempts = failure.attempts,
                    detail = %failure.detail,
                    "probe send failed"
                );
                m.probe_send_failures
                    .with_label_values(&[run.probe, run.sender, run.seed, failure.reason.as_str()])
                    .inc();
                set_placement(m, run, "send_failed");
                forget_last_delivery(m, run);
            }
            ProbeEvent::Delivered {
                run,
                placement,
                tab,
                folder,
                latency,
                seen_latency,
                auth,
                dkim_local,
                spam_score,
            } => {
                tracing::info!(
                    probe = run.probe,
                    seed = run.seed,
                    placement = placement.as_str(),
                    tab = tab.map(|t| t.as_str()),
                    folder,
                    latency_ms = latency.as_millis() as u64,
                    seen_latency_ms = seen_latency.as_millis() as u64,
                    spf = auth.label(&EXPORTED_METHODS[0]),
                    dkim = auth.label(&EXPORTED_METHODS[1]),
                    dmarc = auth.label(&EXPORTED_METHODS[2]),
                    dkim_local,
                    spam_score = spam_score.unwrap_or(f64::NAN),
                    "probe delivered"
                );
                count_result(m, run, placement.as_str());
                if let Some(tab) = tab {
                    m.probe_tab
                        .with_label_values(&[
                            run.probe,
                            run.sender,
                            run.seed,
                            run.provider,
                            tab.as_str(),
                        ])
                        .inc();
                }
                if *placement == Placement::Expired {
                    m.arrived_after_expiry
                        .with_label_values(&[run.probe, run.sender, run.seed])
                        .inc();
                }
                m.delivery_latency
                    .with_label_values(&[run.probe, run.sender, run.provider, placement.as_str()])
                    .observe(latency.as_secs_f64());
                m.probe_last_latency
                    .with_label_values(&[run.probe, run.seed])
                    .set(latency.as_secs_f64());
                set_placement(m, run, placement.as_str());
                for result in crate::probe::reverify::RESULTS {
                    m.delivered_dkim_result
                        .with_label_values(&[run.probe, run.seed, result])
                        .set(i64::from(result == *dkim_local));
                }
                for method in &EXPORTED_METHODS {
                    let got = auth.label(method);
                    for result in RESULT_LABELS {
                        m.auth_result
                            .with_label_values(&[run.probe, run.seed, method.as_str(), result])
                            .set(i64::from(result == got));
                    }
                }
            }
            ProbeEvent::Missing { run } => {
                tracing::warn!(
                    probe = run.probe,
                    seed = run.seed,
                    sender = run.sender,
                    "probe missing: no arrival before the timeout"
                );
                count_result(m, run, Placement::Missing.as_str());
                set_placement(m, run, "missing");
                forget_last_delivery(m, run);
            }
            ProbeEvent::Late {
                run,
                folder,
                latency,
                expired,
            } => {
                tracing::warn!(
                    probe = run.probe,
                    seed = run.seed,
                    folder,
                    latency_ms = latency.as_millis() as u64,
                    expired,
                    "probe arrived late"
                );
                count_result(m, run, Placement::Late.as_str());
                if *expired {
                    m.arrived_after_expiry
                        .with_label_values(&[run.probe, run.sender, run.seed])
                        .inc();
                }
                m.delivery_latency
                    .with_label_values(&[
                        run.probe,
                        run.sender,
                        run.provider,
                        Placement::Late.as_str(),
                    ])
                    .observe(latency.as_secs_f64());
            }
            ProbeEvent::OutOfOrder { run } => {
                tracing::warn!(
                    probe = run.probe,
                    seed = run.seed,
                    sender = run.sender,
                    "resend burst: an older code arrived after a newer one"
                );
                m.resend_out_of_order
                    .with_label_values(&[run.probe, run.sender, run.seed])
                    .inc();
            }
            ProbeEvent::Duplicate { run } => {
                tracing::warn!(
                    probe = run.probe,
                    seed = run.seed,
                    sender = run.sender,
                    "resend burst: the same code arrived twice"
                );
                m.resend_duplicates
                    .with_label_values(&[run.probe, run.sender, run.seed])
                    .inc();
            }
            ProbeEvent::InboxUp { seed, up } => {
                if *up {
                    tracing::info!(seed, "inbox watching");
                } else {
                    tracing::warn!(seed, "inbox not watched");
                }
                m.inbox_up.with_label_values(&[seed]).set(i64::from(*up));
            }
            ProbeEvent::OAuthRefreshed { seed, expires } => {
                let at = expires
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let valid_for = expires
                    .duration_since(std::time::SystemTime::now())
                    .unwrap_or_default();
                tracing::info!(
                    seed,
                    valid_for_s = valid_for.as_secs(),
                    "oauth access token refreshed"
                );
                m.oauth_refreshes.with_label_values(&[seed]).inc();
                m.oauth_token_expiry
                    .with_label_values(&[seed])
                    .set(i64::try_from(at).unwrap_or(i64::MAX));
            }
            ProbeEvent::OAuthRefreshFailed { seed, error } => {
                if error.permanent() {
                    // Until the operator acts there is no usable token.
                    tracing::error!(seed, reason = error.reason(), "seed {seed}: {error}");
                    m.oauth_token_expiry.with_label_values(&[seed]).set(0);
                } else {
                    tracing::warn!(seed, reason = error.reason(), error = %error, "oauth token refresh failed; retrying");
                }
                m.oauth_refresh_failures
                    .with_label_values(&[seed, error.reason()])
                    .inc();
            }
        }
    }
}

fn count_result(m: &Metrics, run: &RunLabels<'_>, placement: &str) {
    m.probe_results
        .with_label_values(&[run.probe, run.sender, run.seed, run.provider, placement])
        .inc();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    m.probe_last_result_timestamp
        .with_label_values(&[run.probe, run.seed])
        .set(now);
}

fn set_placement(m: &Metrics, run: &RunLabels<'_>, state: &str) {
    for s in PLACEMENT_STATES {
        m.probe_placement
            .with_label_values(&[run.probe, run.seed, s])
            .set(i64::from(s == state));
    }
}

/// Drop the previous delivery's latency and verdicts: with no arrival there
/// is no current value, and an old "pass" must not stand in for one.
fn forget_last_delivery(m: &Metrics, run: &RunLabels<'_>) {
    let _ = m
        .probe_last_latency
        .remove_label_values(&[run.probe, run.seed]);
    for result in crate::probe::reverify::RESULTS {
        let _ = m
            .delivered_dkim_result
            .remove_label_values(&[run.probe, run.seed, result]);
    }
    for method in &EXPORTED_METHODS {
        for result in RESULT_LABELS {
            let _ =
                m.auth_result
                    .remove_label_values(&[run.probe, run.seed, method.as_str(), result]);
        }
    }
}

/// Create every configured probe's counters at 0, so the first event of a
/// series is an increase that `increase()`/`rate()` can see (a counter
/// series born at 1 hides its first event).
pub fn init_series(m: &Metrics, config: &crate::config::Config) {
    use crate::config::Sender;
    use crate::probe::send::SendReason;
    for (name, probe) in &config.probes {
        let reasons: &[SendReason] = match config.senders.get(&probe.sender) {
            Some(Sender::Http(_)) => &SendReason::HTTP,
            _ => &SendReason::SMTP,
        };
        for seed in &probe.seeds {
            let provider = config
                .seeds
                .get(seed)
                .map_or("unknown", |s| s.provider.as_str());
            m.probe_sent
                .with_label_values(&[name.as_str(), &probe.sender, seed]);
            for r in reasons {
                m.probe_send_failures.with_label_values(&[
                    name.as_str(),
                    &probe.sender,
                    seed,
                    r.as_str(),
                ]);
            }
            for p in Placement::ALL {
                m.probe_results.with_label_values(&[
                    name.as_str(),
                    &probe.sender,
                    seed,
                    provider,
                    p.as_str(),
                ]);
            }
            // Gmail seeds, by preset or by server (Workspace seeds may
            // carry their own provider name).
            let gmail = provider == "gmail"
                || config.seeds.get(seed).is_some_and(|s| {
                    matches!(&s.inbox, crate::config::Inbox::Imap(i)
                        if i.host.eq_ignore_ascii_case("imap.gmail.com"))
                });
            if gmail {
                for tab in crate::inbox::gmail::Tab::ALL {
                    m.probe_tab.with_label_values(&[
                        name.as_str(),
                        &probe.sender,
                        seed,
                        provider,
                        tab.as_str(),
                    ]);
                }
            }
        }
    }
    for (name, seed) in &config.seeds {
        if let crate::config::Inbox::Imap(crate::config::ImapInbox {
            auth: crate::config::ImapAuth::OAuth { .. },
            ..
        }) = &seed.inbox
        {
            m.oauth_refreshes.with_label_values(&[name.as_str()]);
            for reason in crate::inbox::oauth::TokenError::REASONS {
                m.oauth_refresh_failures
                    .with_label_values(&[name.as_str(), reason]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_probe_leaves_no_good_value_of_the_previous_one_standing() {
        let m = Metrics::new();
        let run = RunLabels {
            probe: "p",
            sender: "s",
            seed: "seed",
            provider: "prov",
        };
        let raw = b"Authentication-Results: mx.test; spf=pass smtp.mailfrom=a.test; dkim=pass header.d=a.test; dmarc=pass header.from=a.test\r\nFrom: a@a.test\r\n\r\nbody\r\n";
        let verdict = crate::verdict::judge(raw, Some("mx.test"));
        ProbeEvent::Delivered {
            run: run.clone(),
            placement: Placement::Inbox,
            tab: None,
            folder: "INBOX",
            latency: Duration::from_secs(1),
            seen_latency: Duration::from_secs(1),
            auth: &verdict.auth,
            dkim_local: "pass",
            spam_score: None,
        }
        .emit(&m);
        let text = m.render();
        assert!(
            text.contains(
                r#"mailcanary_auth_result{method="dmarc",probe="p",result="pass",seed="seed"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"mailcanary_delivered_dkim_result{probe="p",result="pass",seed="seed"} 1"#
            ),
            "{text}"
        );

        ProbeEvent::Missing { run }.emit(&m);
        let text = m.render();
        assert!(
            text.contains(
                r#"mailcanary_probe_placement{placement="missing",probe="p",seed="seed"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"mailcanary_probe_placement{placement="inbox",probe="p",seed="seed"} 0"#
            ),
            "{text}"
        );
        for gone in [
            "mailcanary_auth_result{",
            "mailcanary_delivered_dkim_result{",
            "mailcanary_probe_last_latency_seconds{",
        ] {
            assert!(!text.contains(gone), "{gone} still standing:\n{text}");
        }
    }
}
