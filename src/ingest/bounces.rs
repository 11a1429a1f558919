//! A `[bounces.*]` message: classify it ([`crate::bounce::classify`]) and
//! count each failed recipient by the provider of its domain
//! ([`crate::mailbox_provider`]) and the reason; a domain that is probably
//! a mistyping of a consumer domain is counted for the provider meant.
//! Neither the address nor its domain is ever a label or a log field.

use super::now_ms;
use super::store;
use crate::bounce::{self, Action, Bounce, Reason};
use crate::mailbox_provider::{self, Provider};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

/// What one bounce message counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Counted {
    /// Per failed recipient: the provider of its domain and the reason.
    pub failed: Vec<(Provider, Reason)>,
    /// Per failed recipient whose domain looks mistyped: the provider meant.
    pub typos: Vec<Provider>,
}

/// Whether a recipient the bounce reports on failed for good: a delay
/// notice, a success notification, an auto-reply or an abuse report is not
/// a bounce of the app's mail.
fn failed(b: &Bounce) -> bool {
    match b.action {
        Some(Action::Failed) => true,
        Some(_) => false,
        None => !matches!(
            b.reason,
            Reason::Delivered | Reason::Feedback | Reason::Vacation
        ),
    }
}

/// What a message counts (pure).
pub(super) fn count(raw: &[u8]) -> Counted {
    let report = bounce::classify(raw);
    let mut out = Counted::default();
    for b in report.bounces.iter().filter(|b| failed(b)) {
        out.failed
            .push((mailbox_provider::for_domain(&b.recipient_domain), b.reason));
        if let Some(t) = mailbox_provider::typo_of(&b.recipient_domain) {
            out.typos.push(t.provider);
        }
    }
    out
}

/// Handle one message of the bounces mailbox `mailbox`.
pub(super) async fn ingest(
    st: &Store,
    metrics: &Metrics,
    mailbox: &str,
    raw: Vec<u8>,
    sha: Vec<u8>,
) -> Result<Counted, StoreError> {
    let counted = tokio::task::spawn_blocking(move || count(&raw))
        .await
        .unwrap_or_default();
    let outcome = if counted.failed.is_empty() {
        "not_a_bounce"
    } else {
        "bounce"
    };
    let name = mailbox.to_string();
    let now = now_ms();
    st.call(move |c| store::remember(c, "bounces", &sha, &name, outcome, now))
        .await?;
    for (provider, reason) in &counted.failed {
        metrics
            .bounces
            .with_label_values(&[mailbox, provider.as_str(), reason.as_str()])
            .inc();
    }
    for provider in &counted.typos {
        metrics
            .bounces_typo_domain
            .with_label_values(&[mailbox, provider.as_str()])
            .inc();
    }
    // Debug: a busy app's return path gets thousands a day.
    tracing::debug!(
        mailbox,
        failed = counted.failed.len(),
        typo_domains = counted.typos.len(),
        "bounce mailbox message read"
    );
    Ok(counted)
}
