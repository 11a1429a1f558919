//! A run's final result as `mailcanary probe` prints it (text and JSON).
//! Support-safe: the code is masked and no address or server text is in it.

use std::collections::BTreeMap;

use super::outcome::{Ended, Outcome};
use crate::verdict::authres::EXPORTED_METHODS;
use crate::verdict::reverify::LocalDkim;

#[derive(Debug, Clone, serde::Serialize)]
pub struct RunResult {
    pub probe: String,
    pub sender: String,
    pub seed: String,
    pub provider: String,
    /// One of [`Outcome::ALL`].
    pub outcome: Outcome,
    /// The bounded send-failure reason, or with outcome `bounced` the
    /// bounce reason (Sisimai's vocabulary, e.g. `blocked`, `userunknown`).
    pub reason: Option<&'static str>,
    /// With outcome `bounced`: the enhanced status code (RFC 3463), the
    /// SMTP reply code and the host that refused, as the bounce reported them.
    pub status: Option<String>,
    pub reply_code: Option<u16>,
    pub remote_mta: Option<String>,
    pub folder: Option<String>,
    /// The Gmail category tab (`promotions`, `social`, `updates`, `forums`)
    /// when the outcome is `tab`.
    pub tab: Option<&'static str>,
    pub latency_seconds: Option<f64>,
    pub seen_latency_seconds: Option<f64>,
    /// The receiver's verdict per method (`spf`, `dkim`, `dmarc`, `arc`).
    pub auth: BTreeMap<String, String>,
    /// The delivered copy's DKIM as mailcanary re-verified it.
    pub dkim_local: Option<LocalDkim>,
    pub spam_score: Option<f64>,
    /// Per-hop delays from the Received chain, oldest hop first.
    pub hops: Vec<HopDelay>,
    /// The code as sent, masked (`12****`).
    pub code: Option<String>,
    /// The probe token (random; ties the result to the store and the message).
    pub token: String,
    /// Unix ms: the relay accepted the message / the mailbox stored it (when
    /// known) / mailcanary first saw it.
    pub submitted_at_ms: Option<i64>,
    pub stored_at_ms: Option<i64>,
    pub seen_at_ms: Option<i64>,
    /// Unix ms: the delivered message's Date, when its sender (for an app's
    /// mail, the app, as it made the code) composed it; one-second resolution.
    pub created_at_ms: Option<i64>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct HopDelay {
    pub by: Option<String>,
    pub with: Option<String>,
    pub delay_seconds: Option<u64>,
}

impl RunResult {
    /// The result of a run that ended; `code` is the masked code, if known.
    pub fn new(e: &Ended, code: Option<String>) -> RunResult {
        let a = e.arrived.as_ref();
        let verdict = a.map(|a| &a.verdict);
        RunResult {
            probe: e.probe.clone(),
            sender: e.sender.clone(),
            seed: e.seed.clone(),
            provider: e.provider.clone(),
            outcome: e.outcome,
            reason: e.reason(),
            status: e
                .bounce
                .as_ref()
                .and_then(|b| b.status)
                .map(|s| s.to_string()),
            reply_code: e.bounce.as_ref().and_then(|b| b.reply_code),
            remote_mta: e.bounce.as_ref().and_then(|b| b.remote_mta.clone()),
            folder: a.map(|a| a.folder.clone()),
            tab: a.and_then(|a| a.delivery.tab).map(|t| t.as_str()),
            latency_seconds: a.map(|a| a.delivery.latency.as_secs_f64()),
            seen_latency_seconds: a.map(|a| a.delivery.seen_latency.as_secs_f64()),
            auth: verdict.map_or_else(Default::default, |v| {
                EXPORTED_METHODS
                    .iter()
                    .map(|m| (m.as_str().to_string(), v.auth.label(m).to_string()))
                    .collect()
            }),
            dkim_local: a.map(|a| a.dkim_local),
            spam_score: verdict.and_then(|v| v.spam.as_ref()).and_then(|s| s.score),
            hops: verdict.map_or_else(Vec::new, |v| {
                v.hops
                    .hops
                    .iter()
                    .map(|h| HopDelay {
                        by: h.by.clone(),
                        with: h.with.clone(),
                        delay_seconds: h.delay.seconds(),
                    })
                    .collect()
            }),
            code,
            token: e.token.clone(),
            submitted_at_ms: e.submitted_ms,
            stored_at_ms: a.and_then(|a| a.stored_ms),
            seen_at_ms: a.map(|a| a.seen_ms),
            created_at_ms: a.and_then(|a| a.created_ms),
        }
    }
}
