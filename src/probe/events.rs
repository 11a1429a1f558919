//! Probe events: each one writes its log line and updates its metrics here,
//! so probe logic stays free of metrics code (STYLE.md item 10).
//!
//! The "last result" series are state sets and gauges that must never keep
//! a stale good value: a send failure or a missing probe moves the placement
//! state away from `inbox` and removes the last latency and the receiver's
//! verdicts of the previous probe.

use crate::metrics::Metrics;
pub use crate::probe::outcome::RunLabels;
use crate::probe::outcome::{Ended, Outcome, Refusal};
use crate::verdict::authres::{EXPORTED_METHODS, RESULT_LABELS};
use crate::verdict::reverify::LocalDkim;

/// Something that happened to a probe run.
pub enum ProbeEvent<'a> {
    /// The relay accepted the message.
    Sent {
        run: RunLabels<'a>,
        queue_id: Option<&'a str>,
    },
    /// The run ended (or, with outcome `late`, a missing run arrived after all).
    Ended(&'a Ended),
    /// A delay notice for a run that is still open (greylisting, a
    /// receiver that is down).
    Deferred {
        run: RunLabels<'a>,
        notice: &'a Refusal,
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
        let ended;
        let seed = match self {
            ProbeEvent::Sent { run, .. }
            | ProbeEvent::Deferred { run, .. }
            | ProbeEvent::OutOfOrder { run }
            | ProbeEvent::Duplicate { run } => {
                if !config.runs("probe", run.probe) {
                    return false;
                }
                run.seed
            }
            ProbeEvent::Ended(e) => {
                ended = e.labels();
                if !config.runs("probe", ended.probe) {
                    return false;
                }
                ended.seed
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
            ProbeEvent::Ended(e) => ended(m, e),
            ProbeEvent::Deferred { run, notice } => {
                tracing::warn!(
                    probe = run.probe,
                    seed = run.seed,
                    sender = run.sender,
                    reason = notice.reason.as_str(),
                    status = notice.status.map(|s| s.to_string()),
                    reply_code = notice.reply_code,
                    remote_mta = notice.remote_mta.as_deref(),
                    "probe delayed: the relay reported a temporary refusal and keeps trying"
                );
                m.probe_deferred
                    .with_label_values(&[run.probe, run.sender, run.seed])
                    .inc();
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

/// Log and count a run that ended. Which series an outcome touches follows
/// from its properties ([`Outcome::is_result`], [`Outcome::is_state`],
/// [`Outcome::has_latency`]).
fn ended(m: &Metrics, e: &Ended) {
    log_ended(e);
    let run = e.labels();
    let o = e.outcome;
    if let Some(f) = &e.failure {
        m.probe_send_failures
            .with_label_values(&[run.probe, run.sender, run.seed, f.reason.as_str()])
            .inc();
    }
    if let Some(b) = &e.bounce {
        m.probe_bounces
            .with_label_values(&[
                run.probe,
                run.sender,
                run.seed,
                run.provider,
                b.reason.as_str(),
            ])
            .inc();
    }
    if o.is_result() {
        m.probe_results
            .with_label_values(&[run.probe, run.sender, run.seed, run.provider, o.as_str()])
            .inc();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        m.probe_last_result_timestamp
            .with_label_values(&[run.probe, run.seed])
            .set(now);
    }
    if let Some(a) = &e.arrived {
        let d = &a.delivery;
        if let Some(tab) = d.tab {
            m.probe_tab
                .with_label_values(&[run.probe, run.sender, run.seed, run.provider, tab.as_str()])
                .inc();
        }
        if d.after_expiry {
            m.arrived_after_expiry
                .with_label_values(&[run.probe, run.sender, run.seed])
                .inc();
        }
        m.delivery_latency
            .with_label_values(&[run.probe, run.sender, run.provider, o.as_str()])
            .observe(d.latency.as_secs_f64());
    }
    if !o.is_state() {
        // A late arrival does not change what the last probe showed.
        return;
    }
    m.probe_placement.set(
        &[run.probe, run.seed],
        Outcome::states().map(Outcome::as_str),
        o.as_str(),
    );
    match e.arrived.as_ref().filter(|_| o.has_latency()) {
        Some(a) => {
            m.probe_last_latency
                .with_label_values(&[run.probe, run.seed])
                .set(a.delivery.latency.as_secs_f64());
            m.delivered_dkim_result.set(
                &[run.probe, run.seed],
                LocalDkim::ALL.map(LocalDkim::as_str),
                a.dkim_local.as_str(),
            );
            for method in &EXPORTED_METHODS {
                m.auth_result.set(
                    &[run.probe, run.seed, method.as_str()],
                    RESULT_LABELS,
                    a.verdict.auth.label(method),
                );
            }
        }
        None => forget_last_delivery(m, &run),
    }
}

/// The log line of a run that ended: info when it arrived in time, warn otherwise.
fn log_ended(e: &Ended) {
    let run = e.labels();
    match (e.outcome, &e.failure, &e.arrived) {
        (Outcome::SendFailed, Some(f), _) => tracing::warn!(
            probe = run.probe,
            seed = run.seed,
            sender = run.sender,
            reason = f.reason.as_str(),
            attempts = f.attempts,
            detail = %f.detail,
            "probe send failed"
        ),
        (Outcome::Bounced, _, _) => {
            let b = e.bounce.as_ref();
            tracing::warn!(
                probe = run.probe,
                seed = run.seed,
                sender = run.sender,
                provider = run.provider,
                reason = b.map(|b| b.reason.as_str()),
                status = b.and_then(|b| b.status).map(|s| s.to_string()),
                reply_code = b.and_then(|b| b.reply_code),
                remote_mta = b.and_then(|b| b.remote_mta.as_deref()),
                "probe bounced: the receiver refused it"
            )
        }
        (Outcome::Late, _, Some(a)) => tracing::warn!(
            probe = run.probe,
            seed = run.seed,
            folder = a.folder,
            latency_ms = a.delivery.latency.as_millis() as u64,
            expired = a.delivery.after_expiry,
            "probe arrived late"
        ),
        (_, _, Some(a)) => {
            let auth = &a.verdict.auth;
            tracing::info!(
                probe = run.probe,
                seed = run.seed,
                placement = e.outcome.as_str(),
                tab = a.delivery.tab.map(|t| t.as_str()),
                folder = a.folder,
                latency_ms = a.delivery.latency.as_millis() as u64,
                seen_latency_ms = a.delivery.seen_latency.as_millis() as u64,
                spf = auth.label(&EXPORTED_METHODS[0]),
                dkim = auth.label(&EXPORTED_METHODS[1]),
                dmarc = auth.label(&EXPORTED_METHODS[2]),
                dkim_local = a.dkim_local.as_str(),
                spam_score = a
                    .verdict
                    .spam
                    .as_ref()
                    .and_then(|s| s.score)
                    .unwrap_or(f64::NAN),
                "probe delivered"
            )
        }
        _ => tracing::warn!(
            probe = run.probe,
            seed = run.seed,
            sender = run.sender,
            outcome = e.outcome.as_str(),
            "probe missing: no arrival before the timeout"
        ),
    }
}

/// Drop the previous delivery's latency and verdicts: with no arrival there
/// is no current value, and an old "pass" must not stand in for one.
fn forget_last_delivery(m: &Metrics, run: &RunLabels<'_>) {
    let _ = m
        .probe_last_latency
        .remove_label_values(&[run.probe, run.seed]);
    let _ = m
        .delivered_dkim_result
        .remove_label_values(&[run.probe, run.seed]);
    for method in &EXPORTED_METHODS {
        let _ = m
            .auth_result
            .remove_label_values(&[run.probe, run.seed, method.as_str()]);
    }
}

/// Create every configured probe's counters at 0, so the first event of a
/// series is an increase that `increase()`/`rate()` can see (a counter
/// series born at 1 hides its first event).
pub fn init_series(m: &Metrics, config: &crate::config::Config) {
    use crate::config::Sender;
    use crate::probe::send::SendReason;
    for (name, probe) in &config.probes {
        let http = matches!(config.senders.get(&probe.sender), Some(Sender::Http(_)));
        let reasons = SendReason::ALL.into_iter().filter(|r| r.possible(http));
        let reasons: Vec<SendReason> = reasons.collect();
        for seed in &probe.seeds {
            let provider = config
                .seeds
                .get(seed)
                .map_or("unknown", |s| s.provider.as_str());
            let run = [name.as_str(), &probe.sender, seed];
            for counter in [
                &m.probe_sent,
                &m.probe_deferred,
                &m.arrived_after_expiry,
                &m.resend_out_of_order,
                &m.resend_duplicates,
            ] {
                counter.with_label_values(&run);
            }
            for r in &reasons {
                m.probe_send_failures.with_label_values(&[
                    name.as_str(),
                    &probe.sender,
                    seed,
                    r.as_str(),
                ]);
            }
            for p in Outcome::results() {
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
        let raw = b"Authentication-Results: mx.test; spf=pass smtp.mailfrom=a.test; dkim=pass header.d=a.test; dmarc=pass header.from=a.test\r\nFrom: a@a.test\r\n\r\nbody\r\n";
        let verdict = crate::verdict::judge(raw, Some("mx.test"));
        let delivered = ended(Outcome::Inbox, Some(verdict));
        ProbeEvent::Ended(&delivered).emit(&m);
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

        ProbeEvent::Ended(&ended(Outcome::Missing, None)).emit(&m);
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

    /// A run of probe `p` to `seed` that ended with `outcome`.
    fn ended(outcome: Outcome, verdict: Option<crate::verdict::Verdict>) -> Ended {
        use crate::probe::evaluate::Delivery;
        use std::time::Duration;
        Ended {
            token: "t".into(),
            probe: "p".into(),
            sender: "s".into(),
            seed: "seed".into(),
            provider: "prov".into(),
            outcome,
            failure: None,
            bounce: None,
            arrived: verdict.map(|verdict| crate::probe::outcome::Arrived {
                delivery: Delivery {
                    outcome,
                    tab: None,
                    latency: Duration::from_secs(1),
                    seen_latency: Duration::from_secs(1),
                    after_expiry: false,
                },
                folder: "INBOX".into(),
                seen_tab: None,
                verdict,
                dkim_local: LocalDkim::Pass,
                seen_ms: 1_000,
                stored_ms: None,
                created_ms: None,
            }),
            submitted_ms: Some(0),
            final_ms: 1_000,
        }
    }

    /// Every label value an event can count is created at 0 when the
    /// configuration starts, so `increase()` sees the first event.
    #[test]
    fn every_countable_label_value_is_pre_created_at_zero() {
        use crate::probe::send::{SendFailure, SendReason};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let template = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/probes/templates/verification-en.toml"
        );
        std::fs::write(
            &path,
            r#"
[daemon]
state_dir = "state"
[senders.mail]
kind = "smtp"
host = "127.0.0.1"
port = 25
tls = "none"
from = "no-reply@sender.test"
[senders.app]
kind = "http"
url = "http://127.0.0.1:9/send-code"
body = '{"email": "{address}"}'
from = "no-reply@sender.test"
code_pattern = 'code is (\d{6})'
[seeds.box]
provider = "gmail"
address = "box@seed.test"
kind = "maildir"
path = "/tmp/nowhere"
[probes.smtp]
sender = "mail"
seeds = ["box"]
every = "1m"
timeout = "30s"
template = "TEMPLATE"
[probes.app]
sender = "app"
seeds = ["box"]
every = "1m"
timeout = "30s"
template = "TEMPLATE"
"#
            .replace("TEMPLATE", template),
        )
        .unwrap();
        let config = match crate::config::load(&path) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        let m = Metrics::new();
        init_series(&m, &config);
        let before = m.render();
        let zero = |line: &str| before.lines().any(|l| l == format!("{line} 0"));
        for probe in ["smtp", "app"] {
            let http = probe == "app";
            let sender = if http { "app" } else { "mail" };
            for o in Outcome::results() {
                let line = format!(
                    r#"mailcanary_probe_results_total{{placement="{}",probe="{probe}",provider="gmail",seed="box",sender="{sender}"}}"#,
                    o.as_str()
                );
                assert!(zero(&line), "{line} not at 0:\n{before}");
            }
            for r in SendReason::ALL.into_iter().filter(|r| r.possible(http)) {
                let line = format!(
                    r#"mailcanary_probe_send_failures_total{{probe="{probe}",reason="{}",seed="box",sender="{sender}"}}"#,
                    r.as_str()
                );
                assert!(zero(&line), "{line} not at 0");
            }
            for family in [
                "mailcanary_probe_sent_total",
                "mailcanary_probe_arrived_after_expiry_total",
                "mailcanary_resend_out_of_order_total",
                "mailcanary_resend_duplicates_total",
            ] {
                let line = format!(r#"{family}{{probe="{probe}",seed="box",sender="{sender}"}}"#);
                assert!(zero(&line), "{line} not at 0");
            }
        }
        // Counting any outcome or reason then changes an existing series
        // instead of creating one: the number of series stays the same.
        let series = |text: &str| text.lines().filter(|l| !l.starts_with('#')).count();
        for o in Outcome::ALL.into_iter().filter(|o| !o.has_latency()) {
            let mut e = ended(o, None);
            e.probe = "smtp".into();
            e.sender = "mail".into();
            e.seed = "box".into();
            e.provider = "gmail".into();
            e.failure = (o == Outcome::SendFailed).then(|| SendFailure {
                reason: SendReason::Smtp5xx,
                detail: String::new(),
                attempts: 1,
                retry_after: None,
            });
            let counted_before = series(&m.render());
            ProbeEvent::Ended(&e).emit(&m);
            let after = m.render();
            let new_counters: Vec<&str> = after
                .lines()
                .filter(|l| {
                    l.contains("_total{") && !before.contains(l.split(' ').next().unwrap_or(""))
                })
                .collect();
            assert!(
                new_counters.is_empty(),
                "{o}: counters born at 1: {new_counters:?}"
            );
            assert!(series(&after) >= counted_before);
        }
    }
}
