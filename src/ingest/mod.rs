//! The ingestion stage: the app's own mailboxes, read but not owned.
//!
//! `[reports.NAME]` receives DMARC aggregate (`rua`) and TLS-RPT reports;
//! `[bounces.NAME]` is the app's real return path. Both are watched like a
//! seed's INBOX ([`inbox::spawn_mailbox`] with [`Want::Every`]) and feed one
//! actor on its own channel, which handles each message once:
//!
//! ```text
//! inbox watcher ─ Arrival ─► actor ─ seen before? (store) ─► Keep / Remove
//!                              │ new
//!                              ├─ reports: reports::parse ─► store (dedup by reporter + report id) ─► metrics
//!                              └─ bounces: bounce::classify ─► store ─► metrics
//! ```
//!
//! A message is recognised again by the SHA-256 of its bytes, not its
//! Message-ID: reporters and bouncing MTAs may omit the Message-ID or reuse
//! it, and a forged one could hide another message; the bytes a mailbox
//! hands out do not change between reads (a Maildir flag change renames the
//! file, it does not touch the content). Two different messages carrying the
//! same report are told apart later, by reporter and report id.
//!
//! The store is written before any counter moves, so a crash between the
//! two loses a count (counters restart at 0 anyway) rather than doubling one.
//! Messages stay where they are unless the mailbox sets `cleanup_folder`:
//! the mailbox belongs to the app.

mod bounces;
mod reports;
pub mod store;
pub mod top;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{AppMailboxKind, Config};
use crate::inbox::{self, oauth::TokenSources, Arrival, Disposition, FolderRole, Want, WatchEvent};
use crate::metrics::Metrics;
use crate::reports::vocabulary;
use crate::store::Store;

vocabulary! {
    /// What became of a report message (`mailcanary_reports_total{outcome}`).
    pub enum Outcome fallback Invalid {
        /// A new report for a configured domain: stored and counted.
        Ingested = "ingested",
        /// The reporter sent this report id before (in another message).
        Duplicate = "duplicate",
        /// Not a readable report (or a refused one: a bomb, too many records).
        Invalid = "invalid",
        /// A report about domains not in `[domains]`: stored, not exported.
        ForeignDomain = "foreign_domain",
    }
}

vocabulary! {
    /// The `kind` label of `mailcanary_reports_total`: the report kinds, and
    /// `unknown` for a message that is not a readable report.
    pub enum KindLabel fallback Unknown {
        /// A DMARC aggregate report.
        DmarcAggregate = "dmarc_aggregate",
        /// An SMTP TLS report.
        TlsRpt = "tls_rpt",
        /// Not readable as either.
        Unknown = "unknown",
    }
}

vocabulary! {
    /// Whether a DMARC record's source IP is one the domain's own mail
    /// leaves from (`sending_ips`, `sending_networks`).
    pub enum Source fallback Other {
        /// In the domain's `sending_ips` or `sending_networks`.
        Configured = "configured",
        /// Anyone else: a forwarder, a service not listed, or a spoofer.
        Other = "other",
    }
}

vocabulary! {
    /// A DMARC record's result (RFC 7489 §6.6.2: aligned DKIM or SPF passed).
    pub enum DmarcResult fallback Fail {
        /// Aligned DKIM or aligned SPF passed.
        Pass = "pass",
        /// Neither did.
        Fail = "fail",
    }
}

vocabulary! {
    /// A TLS-RPT session count's result (RFC 8460 §4.3 summary).
    pub enum SessionResult fallback Failure {
        /// `total-successful-session-count`.
        Success = "success",
        /// `total-failure-session-count`.
        Failure = "failure",
    }
}

/// Messages waiting for the actor; watchers wait while it is full.
const QUEUE: usize = 64;
/// How old a report an IMAP reports mailbox is still read for on connecting.
const REPORTS_LOOK_BACK: std::time::Duration = std::time::Duration::from_secs(14 * 86_400);

/// The running stage: its channel and the state that outlives reloads.
pub struct Ingest {
    events: mpsc::Sender<WatchEvent>,
    /// OAuth token sources of the app mailboxes (their own map: the names
    /// are prefixed, see [`watcher_name`], and never meet a seed's).
    tokens: TokenSources,
    store: Store,
    metrics: Arc<Metrics>,
}

impl Ingest {
    /// Start the actor on `tracker`; it runs until `stop`, reading the
    /// running configuration from `config`.
    pub fn start(
        config: watch::Receiver<Arc<Config>>,
        store: Store,
        metrics: Arc<Metrics>,
        tracker: &TaskTracker,
        stop: CancellationToken,
    ) -> Ingest {
        let (events, rx) = mpsc::channel(QUEUE);
        let actor = Actor {
            config,
            store: store.clone(),
            metrics: metrics.clone(),
        };
        tracker.spawn(actor.run(rx, stop));
        Ingest {
            events,
            tokens: TokenSources::default(),
            store,
            metrics,
        }
    }

    /// Start one INBOX watcher per app mailbox of `config`, until `stop`
    /// (one config generation), and bring the series that outlive a
    /// restart up to date.
    pub fn watch(&self, config: &Config, tracker: &TaskTracker, stop: &CancellationToken) {
        {
            let mut kept = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
            kept.retain(|name, _| {
                parse_watcher_name(name).is_some_and(|(kind, n)| {
                    config.mailboxes.get(n).is_some_and(|m| m.kind == kind)
                })
            });
        }
        let ctx = inbox::Spawn {
            events: &self.events,
            tokens: &self.tokens,
            state_dir: &config.daemon.state_dir,
            tracker,
            stop,
        };
        for (name, m) in &config.mailboxes {
            if m.kind == AppMailboxKind::Reports {
                // An unreadable message has no kind: `invalid` is `unknown`'s only.
                for kind in [KindLabel::DmarcAggregate, KindLabel::TlsRpt] {
                    for outcome in Outcome::ALL.iter().filter(|o| **o != Outcome::Invalid) {
                        self.metrics.reports.with_label_values(&[
                            name,
                            kind.as_str(),
                            outcome.as_str(),
                        ]);
                    }
                }
                self.metrics.reports.with_label_values(&[
                    name,
                    KindLabel::Unknown.as_str(),
                    Outcome::Invalid.as_str(),
                ]);
            }
            // Reports come daily and a daemon may be down for days: look
            // further back for them (handled ones are skipped by their
            // fingerprint). Bounces come within minutes.
            let look_back = match m.kind {
                AppMailboxKind::Reports => REPORTS_LOOK_BACK,
                AppMailboxKind::Bounces => inbox::PROBE_LOOK_BACK,
            };
            inbox::spawn_mailbox(
                &watcher_name(m.kind, name),
                &m.inbox,
                &[FolderRole::Inbox],
                &Want::Every { look_back },
                &ctx,
            );
        }
        if config
            .mailboxes
            .values()
            .any(|m| m.kind == AppMailboxKind::Reports)
        {
            let store = self.store.clone();
            let metrics = self.metrics.clone();
            tracker.spawn(async move { reports::restore_last_times(&store, &metrics).await });
        }
    }
}

/// The watcher (and OAuth token file) name of an app mailbox: the section
/// and the name, joined by a `:`, which no seed name may contain.
pub fn watcher_name(kind: AppMailboxKind, name: &str) -> String {
    format!("{}:{name}", kind.section())
}

/// The kind and mailbox name back from a watcher name.
fn parse_watcher_name(s: &str) -> Option<(AppMailboxKind, &str)> {
    let (section, name) = s.split_once(':')?;
    let kind = [AppMailboxKind::Reports, AppMailboxKind::Bounces]
        .into_iter()
        .find(|k| k.section() == section)?;
    Some((kind, name))
}

/// The store's `kind` of a processed message.
fn message_kind(kind: AppMailboxKind) -> &'static str {
    kind.section()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Handles the app mailboxes' messages one at a time, in arrival order.
struct Actor {
    config: watch::Receiver<Arc<Config>>,
    store: Store,
    metrics: Arc<Metrics>,
}

/// How often old reports and messages are pruned from the store.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

impl Actor {
    async fn run(self, mut rx: mpsc::Receiver<WatchEvent>, stop: CancellationToken) {
        let mut prune = tokio::time::interval(PRUNE_EVERY);
        loop {
            let event = tokio::select! {
                _ = stop.cancelled() => return,
                _ = prune.tick() => { self.prune().await; continue }
                e = rx.recv() => e,
            };
            match event {
                None => return,
                Some(WatchEvent::Arrival(a)) => self.arrival(a).await,
                Some(WatchEvent::Up { seed, up, .. }) => {
                    if up {
                        tracing::info!(mailbox = %seed, "app mailbox watched");
                    } else {
                        tracing::warn!(mailbox = %seed, "app mailbox watcher lost its connection");
                    }
                }
                Some(WatchEvent::OAuth { seed, outcome }) => {
                    if let inbox::oauth::TokenOutcome::Failed(e) = outcome {
                        tracing::warn!(mailbox = %seed, error = %e, "app mailbox OAuth token refresh failed");
                    }
                }
            }
        }
    }

    async fn arrival(&self, a: Arrival) {
        let config = self.config.borrow().clone();
        let found = parse_watcher_name(&a.seed).and_then(|(kind, name)| {
            config
                .mailboxes
                .get_key_value(name)
                .filter(|(_, m)| m.kind == kind)
        });
        // A watcher of a mailbox a reload removed: leave its mail alone.
        let Some((name, mailbox)) = found else {
            let _ = a.reply.send(Disposition::Keep);
            return;
        };
        let done = if mailbox.inbox.cleanup_folder.is_some() {
            Disposition::Remove
        } else {
            Disposition::Keep
        };
        let kind = mailbox.kind;
        let sha = store::fingerprint(&a.raw);
        let now = now_ms();
        let key = sha.clone();
        match self
            .store
            .call(move |c| store::seen_before(c, message_kind(kind), &key, now))
            .await
        {
            Ok(true) => {
                tracing::debug!(mailbox = %name, "message processed before; skipped");
                let _ = a.reply.send(done);
                return;
            }
            Ok(false) => {}
            Err(e) => {
                tracing::error!(mailbox = %name, error = %e, "store unavailable; message left for the next start");
                let _ = a.reply.send(Disposition::Keep);
                return;
            }
        }
        let r = match kind {
            AppMailboxKind::Reports => {
                reports::ingest(&self.store, &self.metrics, &config, name, a.raw, sha)
                    .await
                    .map(|_| ())
            }
            AppMailboxKind::Bounces => {
                bounces::ingest(&self.store, &self.metrics, name, a.raw, sha)
                    .await
                    .map(|_| ())
            }
        };
        match r {
            Ok(()) => {
                let _ = a.reply.send(done);
            }
            Err(e) => {
                tracing::error!(mailbox = %name, error = %e, "cannot record a message; it is read again on the next start");
                let _ = a.reply.send(Disposition::Keep);
            }
        }
    }

    async fn prune(&self) {
        let keep = self.config.borrow().daemon.history;
        let now = now_ms();
        let before = now - keep.as_millis() as i64;
        match self.store.call(move |c| store::prune(c, before, now)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(reports = n, "pruned old reports from the store"),
            Err(e) => tracing::warn!(error = %e, "cannot prune the reports store"),
        }
    }
}

#[cfg(test)]
mod tests;
