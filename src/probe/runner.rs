//! Scheduling, in-flight runs and evaluation: the probe loop's moving parts.
//!
//! - A **scheduler** per probe fires on its interval; each firing sends one
//!   message per seed ([`send_one`]).
//! - The **recorder** is a single task that owns the in-flight runs. A run is
//!   written to the store before its message is sent; the recorder matches
//!   watcher arrivals to runs, judges the delivered copy, makes the run final
//!   (exactly once, see [`super::record`]), and marks runs missing when their
//!   timeout passes. On start it resumes the runs the store still has open,
//!   so a restart (even SIGKILL) loses nothing.
//! - **Watchers** (see [`crate::inbox`]) run per seed folder.
//!
//! Schedulers and watchers belong to a config generation and are replaced
//! on reload; the recorder lives as long as the daemon.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lettre::message::Mailbox;
use lettre::Address;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::compose::{self, Code, Parts, Token};
use super::events::{ProbeEvent, RunLabels};
use super::record::{self, Finish, NewRun};
use super::send::{SendFailure, SendReason, Sent, SmtpClient};
use super::Placement;
use crate::config::{Config, Inbox, Probe, Sender};
use crate::inbox::oauth::TokenOutcome;
use crate::inbox::{self, Arrival, Disposition, FolderRole, WatchEvent};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

/// A watcher that sees a message this long after its INTERNALDATE was not
/// watching live; the mailbox's time is then the better arrival time.
const BACKLOG_GAP: Duration = Duration::from_secs(2);
/// Clock slack when matching app mail to the trigger that caused it.
const APP_CLOCK_SLACK_MS: i64 = 2_000;
/// How often old final runs are pruned from the store.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// How often the recorder looks for runs past their timeout.
const SWEEP: Duration = Duration::from_millis(500);

/// Messages from senders to the recorder.
#[derive(Debug)]
pub enum Cmd {
    /// A run is about to be sent; answered once it is in the store.
    Register {
        run: NewRun,
        /// The code, masked, for `mailcanary probe` output (an app's code is
        /// learnt from its mail).
        code_masked: Option<String>,
        ack: oneshot::Sender<Result<(), StoreError>>,
    },
    Sent {
        token: String,
        sent: Sent,
        timeout: Duration,
    },
    SendFailed {
        token: String,
        failure: SendFailure,
    },
}

/// The handles schedulers and watchers use to reach the recorder.
#[derive(Clone)]
pub struct Channels {
    pub cmd: mpsc::Sender<Cmd>,
    pub watch: mpsc::Sender<WatchEvent>,
    /// Every final result (and late arrival), for `mailcanary probe`.
    pub results: broadcast::Sender<RunResult>,
    /// Senders an app asked to wait (429 Retry-After) until a time; outlives reloads.
    pub holds: Holds,
    /// OAuth token sources by seed; outlive reloads that leave the seed's
    /// OAuth settings as they were.
    pub tokens: TokenSources,
}

/// What the recorder remembers of one resend burst.
struct BurstState {
    probe: String,
    sender: String,
    seed: String,
    /// The newest Date (Unix ms; when the app made the code) of the burst's mail so far.
    newest_date: Option<i64>,
    out_of_order: bool,
    /// Codes seen (in memory only, never logged), to tell duplicates.
    codes: std::collections::HashSet<String>,
    started: std::time::Instant,
}

impl BurstState {
    /// A burst first seen through one of its runs.
    fn new(run: &record::OpenRun) -> BurstState {
        BurstState {
            probe: run.probe.clone(),
            sender: run.sender.clone(),
            seed: run.seed.clone(),
            newest_date: None,
            out_of_order: false,
            codes: Default::default(),
            started: std::time::Instant::now(),
        }
    }
}

/// How an app's mail without a token was matched.
enum AppMatch {
    /// To this run.
    Run(String),
    /// A code already seen in one of this seed's recent bursts.
    Duplicate { probe: String, sender: String },
}

/// Sender name → the moment it may be used again.
pub type Holds = Arc<std::sync::Mutex<HashMap<String, std::time::Instant>>>;

/// Seed name → its OAuth token source.
pub type TokenSources = Arc<std::sync::Mutex<HashMap<String, Arc<inbox::oauth::TokenSource>>>>;

/// A run's final result, as `mailcanary probe` prints it. Support-safe: the
/// code is masked and no address or server text is in it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunResult {
    pub probe: String,
    pub sender: String,
    pub seed: String,
    pub provider: String,
    /// `inbox`, `spam`, `tab`, `missing`, `late` or `send_failed`.
    pub outcome: String,
    /// The bounded send-failure reason.
    pub reason: Option<String>,
    pub folder: Option<String>,
    /// The Gmail category tab (`promotions`, `social`, `updates`, `forums`)
    /// when the outcome is `tab`.
    pub tab: Option<String>,
    pub latency_seconds: Option<f64>,
    pub seen_latency_seconds: Option<f64>,
    /// The receiver's verdict per method (`spf`, `dkim`, `dmarc`, `arc`).
    pub auth: std::collections::BTreeMap<String, String>,
    /// The delivered copy's DKIM as mailcanary re-verified it.
    pub dkim_local: Option<String>,
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

fn now_ms() -> i64 {
    ms(SystemTime::now())
}

fn ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn since(later_ms: i64, earlier_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(later_ms - earlier_ms).unwrap_or(0))
}

/// Start the recorder; it runs until `stop` and every channel sender is gone.
pub async fn start_recorder(
    config: watch::Receiver<Arc<Config>>,
    store: Store,
    metrics: Arc<Metrics>,
    tracker: &TaskTracker,
    stop: CancellationToken,
) -> Result<Channels, StoreError> {
    let open = store.call(|c| record::open_runs(c)).await?;
    if !open.is_empty() {
        tracing::info!(
            runs = open.len(),
            "resuming in-flight probes from the store"
        );
    }
    let (cmd_tx, cmd_rx) = mpsc::channel(1024);
    let (watch_tx, watch_rx) = mpsc::channel(1024);
    let (results, _) = broadcast::channel(1024);
    let rec = Recorder {
        results: results.clone(),
        codes: HashMap::new(),
        bursts: HashMap::new(),
        dkim: None,
        config,
        store,
        metrics,
        open: open.into_iter().map(|r| (r.token.clone(), r)).collect(),
        up: HashMap::new(),
    };
    tracker.spawn(rec.run(cmd_rx, watch_rx, stop));
    Ok(Channels {
        cmd: cmd_tx,
        watch: watch_tx,
        results,
        holds: Holds::default(),
        tokens: TokenSources::default(),
    })
}

struct Recorder {
    config: watch::Receiver<Arc<Config>>,
    store: Store,
    metrics: Arc<Metrics>,
    open: HashMap<String, record::OpenRun>,
    /// Connection state per seed folder, for `mailcanary_inbox_up`.
    up: HashMap<(String, FolderRole), bool>,
    results: broadcast::Sender<RunResult>,
    /// Masked codes of runs sent by this process (not stored).
    codes: HashMap<String, String>,
    /// Resend bursts seen recently, by burst id.
    bursts: HashMap<String, BurstState>,
    /// DKIM re-verification of delivered copies, with the resolver settings it was built for.
    dkim: Option<(crate::config::Dns, Arc<mail_auth::MessageAuthenticator>)>,
}

impl Recorder {
    async fn run(
        mut self,
        mut cmds: mpsc::Receiver<Cmd>,
        mut watch: mpsc::Receiver<WatchEvent>,
        stop: CancellationToken,
    ) {
        let mut sweep = tokio::time::interval(SWEEP);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut prune = tokio::time::interval(PRUNE_EVERY);
        prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                Some(cmd) = cmds.recv() => self.command(cmd).await,
                Some(ev) = watch.recv() => self.watch_event(ev).await,
                _ = sweep.tick() => self.sweep().await,
                _ = prune.tick() => self.prune().await,
                _ = stop.cancelled() => break,
            }
        }
        // Let senders that are mid-flight record what they did.
        while let Ok(cmd) = cmds.try_recv() {
            self.command(cmd).await;
        }
    }

    /// Make a run final (or, with `late`, turn a missing run late) in the
    /// store. True only for the call that changed it: only that one counts.
    async fn store_final(&self, token: &str, f: Finish, late: bool) -> Result<bool, StoreError> {
        let t = token.to_string();
        self.store
            .call(move |c| {
                if late {
                    record::mark_late(c, &t, &f)
                } else {
                    record::finish(c, &t, &f)
                }
            })
            .await
    }

    /// Re-verify the delivered copy's DKIM with the configured resolver.
    async fn reverify(&mut self, config: &Config, raw: &[u8]) -> &'static str {
        if self.dkim.as_ref().is_none_or(|(dns, _)| *dns != config.dns) {
            let settings = crate::dns::ResolverSettings {
                server: config.dns.resolver,
                timeout: config.dns.timeout,
                ..Default::default()
            };
            match crate::dns::DnsLookup::new(&settings) {
                Ok(l) => self.dkim = Some((config.dns.clone(), Arc::new(l.authenticator()))),
                Err(e) => {
                    tracing::warn!(error = %e, "no resolver for DKIM re-verification");
                    return "temperror";
                }
            }
        }
        let Some((_, auth)) = &self.dkim else {
            return "temperror";
        };
        let limit = config.dns.timeout.saturating_mul(4);
        tokio::time::timeout(limit, super::reverify::dkim(auth, raw))
            .await
            .unwrap_or("temperror")
    }

    /// Tell `mailcanary probe` (if it listens) how a run ended.
    #[allow(clippy::too_many_arguments)]
    fn publish(
        &mut self,
        run: &RunLabels<'_>,
        token: &str,
        outcome: &str,
        reason: Option<&str>,
        // The folder, and the Gmail tab with placement `tab`.
        place: Option<(&str, Option<inbox::gmail::Tab>)>,
        latency: Option<(Duration, Duration)>,
        verdict: Option<(&crate::verdict::Verdict, &'static str)>,
        // Submitted, stored, seen, and the message's Date.
        times: [Option<i64>; 4],
    ) {
        let (verdict, dkim_local) = match verdict {
            Some((v, d)) => (Some(v), Some(d.to_string())),
            None => (None, None),
        };
        let code = self.codes.remove(token);
        let auth = verdict.map_or_else(Default::default, |v| {
            crate::verdict::authres::EXPORTED_METHODS
                .iter()
                .map(|m| (m.as_str().to_string(), v.auth.label(m).to_string()))
                .collect()
        });
        let hops = verdict.map_or_else(Vec::new, |v| {
            v.hops
                .hops
                .iter()
                .map(|h| HopDelay {
                    by: h.by.clone(),
                    with: h.with.clone(),
                    delay_seconds: h.delay.seconds(),
                })
                .collect()
        });
        let _ = self.results.send(RunResult {
            probe: run.probe.to_string(),
            sender: run.sender.to_string(),
            seed: run.seed.to_string(),
            provider: run.provider.to_string(),
            outcome: outcome.to_string(),
            reason: reason.map(str::to_string),
            folder: place.map(|(f, _)| f.to_string()),
            tab: place.and_then(|(_, t)| t).map(|t| t.as_str().to_string()),
            latency_seconds: latency.map(|l| l.0.as_secs_f64()),
            seen_latency_seconds: latency.map(|l| l.1.as_secs_f64()),
            auth,
            spam_score: verdict.and_then(|v| v.spam.as_ref()).and_then(|s| s.score),
            dkim_local,
            hops,
            code,
            token: token.to_string(),
            submitted_at_ms: times[0],
            stored_at_ms: times[1],
            seen_at_ms: times[2],
            created_at_ms: times[3],
        });
    }

    fn labels<'a>(
        &self,
        config: &'a Config,
        probe: &'a str,
        sender: &'a str,
        seed: &'a str,
    ) -> RunLabels<'a> {
        let provider = config
            .seeds
            .get(seed)
            .map_or("unknown", |s| s.provider.as_str());
        RunLabels {
            probe,
            sender,
            seed,
            provider,
        }
    }

    async fn command(&mut self, cmd: Cmd) {
        let config = self.config.borrow().clone();
        match cmd {
            Cmd::Register {
                run,
                code_masked,
                ack,
            } => {
                if let Some(c) = code_masked {
                    self.codes.insert(run.token.clone(), c);
                }
                let r = run.clone();
                let result = self.store.call(move |c| record::insert(c, &r)).await;
                if result.is_ok() {
                    self.open.insert(
                        run.token.clone(),
                        record::OpenRun {
                            token: run.token,
                            probe: run.probe,
                            sender: run.sender,
                            seed: run.seed,
                            submitted_ms: run.created_ms,
                            deadline_ms: run.deadline_ms,
                            sent: false,
                            burst: run.burst,
                        },
                    );
                }
                let _ = ack.send(result);
            }
            Cmd::Sent {
                token,
                sent,
                timeout,
            } => {
                let Some(open) = self.open.get_mut(&token) else {
                    return;
                };
                let submitted = ms(sent.submitted);
                open.submitted_ms = submitted;
                open.deadline_ms = submitted + timeout.as_millis() as i64;
                open.sent = true;
                let (deadline, queue) = (open.deadline_ms, sent.queue_id.clone());
                let t = token.clone();
                if let Err(e) = self
                    .store
                    .call(move |c| record::mark_sent(c, &t, submitted, queue.as_deref(), deadline))
                    .await
                {
                    tracing::error!(error = %e, "cannot record a sent probe");
                }
                let open = &self.open[&token];
                ProbeEvent::Sent {
                    run: self.labels(&config, &open.probe, &open.sender, &open.seed),
                    queue_id: sent.queue_id.as_deref(),
                }
                .emit_if_configured(&self.config.borrow(), &self.metrics);
            }
            Cmd::SendFailed { token, failure } => {
                let Some(open) = self.open.remove(&token) else {
                    return;
                };
                let reason = failure.reason.as_str();
                let finish = Finish {
                    outcome: "send_failed".into(),
                    reason: Some(reason.into()),
                    final_ms: now_ms(),
                    ..Default::default()
                };
                let done = self.store_final(&token, finish, false).await;
                if matches!(done, Ok(true)) {
                    let run = self.labels(&config, &open.probe, &open.sender, &open.seed);
                    ProbeEvent::SendFailed {
                        run: run.clone(),
                        failure: &failure,
                    }
                    .emit_if_configured(&self.config.borrow(), &self.metrics);
                    self.publish(
                        &run,
                        &token,
                        "send_failed",
                        Some(reason),
                        None,
                        None,
                        None,
                        [None; 4],
                    );
                }
            }
        }
    }

    async fn watch_event(&mut self, ev: WatchEvent) {
        match ev {
            WatchEvent::Up { seed, role, up } => {
                self.up.insert((seed.clone(), role), up);
                let all_up = self
                    .up
                    .iter()
                    .filter(|((s, _), _)| *s == seed)
                    .all(|(_, u)| *u);
                ProbeEvent::InboxUp {
                    seed: &seed,
                    up: all_up,
                }
                .emit_if_configured(&self.config.borrow(), &self.metrics);
            }
            WatchEvent::OAuth { seed, outcome } => match outcome {
                TokenOutcome::Refreshed { expires } => ProbeEvent::OAuthRefreshed {
                    seed: &seed,
                    expires,
                }
                .emit_if_configured(&self.config.borrow(), &self.metrics),
                TokenOutcome::Failed(error) => ProbeEvent::OAuthRefreshFailed {
                    seed: &seed,
                    error: &error,
                }
                .emit_if_configured(&self.config.borrow(), &self.metrics),
            },
            WatchEvent::Arrival(a) => {
                let disposition = self.arrival(&a).await;
                let _ = a.reply.send(disposition);
            }
        }
    }

    /// Match mail an app sent (no token) to a run of an `http` sender with
    /// that From address: the oldest open run of that seed, else the oldest
    /// run that went missing (it arrives late). A code already seen in a
    /// recent burst to this seed is a duplicate. The code is kept, masked,
    /// for the result.
    async fn match_app_mail(&mut self, config: &Config, a: &Arrival) -> Option<AppMatch> {
        let from = a.from.as_deref()?;
        let msg = mail_parser::MessageParser::new().parse(&a.raw)?;
        let subject = msg.subject().unwrap_or("");
        let text = msg
            .body_text(0)
            .map(|t| t.into_owned())
            .or_else(|| msg.body_html(0).map(|t| t.into_owned()))
            .unwrap_or_default();
        for (name, sender) in &config.senders {
            let Sender::Http(h) = sender else { continue };
            if !h.from.eq_ignore_ascii_case(from)
                || h.subject_pattern
                    .as_ref()
                    .is_some_and(|p| !p.is_match(subject))
            {
                continue;
            }
            let code = h
                .code_pattern
                .captures(&text)
                .and_then(|c| c.get(1))
                .map(|c| c.as_str().to_string());
            if let Some(code) = &code {
                let seen_before = self
                    .bursts
                    .values()
                    .find(|b| b.seed == a.seed && b.sender == *name && b.codes.contains(code));
                if let Some(b) = seen_before {
                    return Some(AppMatch::Duplicate {
                        probe: b.probe.clone(),
                        sender: name.clone(),
                    });
                }
            }
            // Only mail that reached the mailbox after the trigger (with a
            // little slack for clocks) can answer it: older app mail found
            // by a rescan is not this run's.
            let arrived = arrival_ms(a, ms(a.seen), a.stored.map(ms));
            let open = self
                .open
                .values()
                .filter(|r| {
                    r.seed == a.seed
                        && r.sender == *name
                        && r.sent
                        && arrived + APP_CLOCK_SLACK_MS >= r.submitted_ms
                })
                .min_by_key(|r| r.submitted_ms)
                .cloned();
            let token = match &open {
                Some(r) => r.token.clone(),
                None => {
                    let (seed, sender) = (a.seed.clone(), name.clone());
                    self.store
                        .call(move |c| {
                            record::oldest_missing(c, &seed, &sender, arrived + APP_CLOCK_SLACK_MS)
                        })
                        .await
                        .ok()
                        .flatten()?
                }
            };
            match &code {
                Some(code) => {
                    self.codes.insert(token.clone(), super::compose::mask(code));
                    if let Some(r) = open.as_ref().filter(|r| r.burst.is_some()) {
                        let b = self
                            .bursts
                            .entry(r.burst.clone().unwrap_or_default())
                            .or_insert_with(|| BurstState::new(r));
                        b.codes.insert(code.clone());
                    }
                }
                None => {
                    tracing::warn!(seed = %a.seed, sender = %name, "verification mail arrived without a code matching code_pattern")
                }
            }
            return Some(AppMatch::Run(token));
        }
        None
    }

    /// An older code arriving after a newer one of the same burst (by the
    /// Date the app gave each message) is counted, once per burst.
    fn check_burst_order(&mut self, config: &Config, run: &record::OpenRun, date: Option<i64>) {
        let Some(id) = &run.burst else { return };
        let b = self
            .bursts
            .entry(id.clone())
            .or_insert_with(|| BurstState::new(run));
        let Some(date) = date else { return };
        let older = b.newest_date.is_some_and(|n| date < n);
        b.newest_date = Some(b.newest_date.map_or(date, |n| n.max(date)));
        if older && !b.out_of_order {
            b.out_of_order = true;
            let labels = self.labels(config, &run.probe, &run.sender, &run.seed);
            ProbeEvent::OutOfOrder { run: labels }
                .emit_if_configured(&self.config.borrow(), &self.metrics);
        }
    }

    async fn arrival(&mut self, a: &Arrival) -> Disposition {
        let config = self.config.borrow().clone();
        let token = match &a.token {
            Some(t) => t.as_str().to_string(),
            None => match self.match_app_mail(&config, a).await {
                Some(AppMatch::Run(t)) => t,
                Some(AppMatch::Duplicate { probe, sender }) => {
                    let run = self.labels(&config, &probe, &sender, &a.seed);
                    ProbeEvent::Duplicate { run }
                        .emit_if_configured(&self.config.borrow(), &self.metrics);
                    return Disposition::Remove;
                }
                None => return Disposition::Keep,
            },
        };
        let authserv = config
            .seeds
            .get(&a.seed)
            .and_then(|s| s.authserv_id.clone());
        let raw = a.raw.clone();
        // Parsing is CPU work on untrusted input: keep it off the runtime threads.
        let verdict =
            tokio::task::spawn_blocking(move || crate::verdict::judge(&raw, authserv.as_deref()))
                .await
                // The parsers do not panic; if one did, record the arrival without verdicts.
                .unwrap_or_else(|_| crate::verdict::judge(b"", None));
        let dkim_local = self.reverify(&config, &a.raw).await;
        let verdict_json = serde_json::to_string(&serde_json::json!({
            "receiver": &verdict,
            "dkim_local": dkim_local,
            "tab": a.tab.map(|t| t.as_str()),
        }))
        .ok();
        let placement = match (a.tab.is_some(), a.role) {
            (true, _) => Placement::Tab,
            (false, FolderRole::Inbox) => Placement::Inbox,
            (false, FolderRole::Spam) => Placement::Spam,
        };
        let seen_ms = ms(a.seen);
        let stored_ms = a.stored.map(ms);
        // The Date the sender gave the message (an app: when it made the code).
        let created_ms = mail_parser::MessageParser::new()
            .parse_headers(&a.raw)
            .and_then(|m| m.date().map(|d| d.to_timestamp().saturating_mul(1000)));

        if let Some(open) = self.open.get(&token).cloned() {
            if open.seed != a.seed {
                // The same token in another seed's mailbox: not this run's copy.
                return Disposition::Keep;
            }
            self.check_burst_order(&config, &open, created_ms);
            let arrived_ms = arrival_ms(a, seen_ms, stored_ms);
            if seen_ms <= open.deadline_ms || arrived_ms <= open.deadline_ms {
                let latency = since(arrived_ms.max(open.submitted_ms), open.submitted_ms);
                // In time for the probe, but too late for the user to use the code.
                let validity = config.probes.get(&open.probe).map(|p| p.code_validity);
                let placement = if validity.is_some_and(|v| latency > v) {
                    Placement::Expired
                } else {
                    placement
                };
                let finish = Finish {
                    outcome: placement.as_str().into(),
                    reason: None,
                    folder: Some(a.folder.clone()),
                    seen_ms: Some(seen_ms),
                    internal_ms: stored_ms,
                    verdict_json: verdict_json.clone(),
                    final_ms: now_ms(),
                };
                let done = self.store_final(&token, finish, false).await;
                return match done {
                    Ok(counted) => {
                        self.open.remove(&token);
                        if counted {
                            let run = self.labels(&config, &open.probe, &open.sender, &open.seed);
                            let seen_latency = since(seen_ms, open.submitted_ms);
                            ProbeEvent::Delivered {
                                run: run.clone(),
                                placement,
                                tab: a.tab.filter(|_| placement == Placement::Tab),
                                folder: &a.folder,
                                latency,
                                seen_latency,
                                auth: &verdict.auth,
                                dkim_local,
                                spam_score: verdict.spam.as_ref().and_then(|s| s.score),
                            }
                            .emit_if_configured(&self.config.borrow(), &self.metrics);
                            self.publish(
                                &run,
                                &token,
                                placement.as_str(),
                                None,
                                Some((&a.folder, a.tab.filter(|_| placement == Placement::Tab))),
                                Some((latency, seen_latency)),
                                Some((&verdict, dkim_local)),
                                [
                                    Some(open.submitted_ms),
                                    stored_ms,
                                    Some(seen_ms),
                                    created_ms,
                                ],
                            );
                        }
                        Disposition::Remove
                    }
                    Err(e) => {
                        // Not recorded: leave the message for the next scan.
                        tracing::error!(error = %e, "cannot record an arrival");
                        Disposition::Keep
                    }
                };
            }
            // Past its timeout but not yet swept: it is missing, then late.
            self.mark_missing(&token).await;
        }

        let t = token.clone();
        let row = match self.store.call(move |c| record::lookup(c, &t)).await {
            Ok(Some(row)) => row,
            Ok(None) => return Disposition::Keep, // not ours
            Err(e) => {
                tracing::error!(error = %e, "cannot look up an arrival");
                return Disposition::Keep;
            }
        };
        if row.seed != a.seed || row.outcome.is_none() {
            // Another seed's copy, or a run in flight in another process
            // sharing this store (`mailcanary probe` beside the daemon).
            return Disposition::Keep;
        }
        if row.outcome.as_deref() == Some("missing") {
            let finish = Finish {
                outcome: "late".into(),
                reason: None,
                folder: Some(a.folder.clone()),
                seen_ms: Some(seen_ms),
                internal_ms: stored_ms,
                verdict_json: verdict_json.clone(),
                final_ms: now_ms(),
            };
            let late = self.store_final(&token, finish, true).await;
            if matches!(late, Ok(true)) {
                let run = self.labels(&config, &row.probe, &row.sender, &row.seed);
                let latency = since(arrival_ms(a, seen_ms, stored_ms), row.submitted_ms);
                let expired = config
                    .probes
                    .get(&row.probe)
                    .is_some_and(|p| latency > p.code_validity);
                ProbeEvent::Late {
                    run: run.clone(),
                    folder: &a.folder,
                    latency,
                    expired,
                }
                .emit_if_configured(&self.config.borrow(), &self.metrics);
                let seen_latency = since(seen_ms, row.submitted_ms);
                self.publish(
                    &run,
                    &token,
                    "late",
                    None,
                    Some((&a.folder, None)),
                    Some((latency, seen_latency)),
                    Some((&verdict, dkim_local)),
                    [Some(row.submitted_ms), stored_ms, Some(seen_ms), created_ms],
                );
            }
        }
        // Recorded before (a duplicate copy, or late already): clean it up.
        Disposition::Remove
    }

    async fn mark_missing(&mut self, token: &str) {
        let Some(open) = self.open.remove(token) else {
            return;
        };
        let config = self.config.borrow().clone();
        let finish = Finish {
            outcome: "missing".into(),
            final_ms: now_ms(),
            ..Default::default()
        };
        let done = self.store_final(token, finish, false).await;
        match done {
            Ok(true) => {
                let run = self.labels(&config, &open.probe, &open.sender, &open.seed);
                ProbeEvent::Missing { run: run.clone() }
                    .emit_if_configured(&self.config.borrow(), &self.metrics);
                self.publish(
                    &run,
                    token,
                    "missing",
                    None,
                    None,
                    None,
                    None,
                    [Some(open.submitted_ms), None, None, None],
                );
            }
            Ok(false) => {}
            Err(e) => {
                tracing::error!(error = %e, "cannot record a missing probe; retrying");
                self.open.insert(token.to_string(), open);
            }
        }
    }

    /// Forget final runs older than `daemon.history`, and bursts after a day.
    async fn prune(&mut self) {
        self.bursts
            .retain(|_, b| b.started.elapsed() < Duration::from_secs(86_400));
        let keep = self.config.borrow().daemon.history;
        let before = now_ms() - keep.as_millis() as i64;
        match self.store.call(move |c| record::prune(c, before)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(runs = n, "pruned old probe runs from the store"),
            Err(e) => tracing::warn!(error = %e, "cannot prune the store"),
        }
    }

    async fn sweep(&mut self) {
        let now = now_ms();
        let due: Vec<String> = self
            .open
            .values()
            .filter(|r| r.deadline_ms < now)
            .map(|r| r.token.clone())
            .collect();
        for token in due {
            self.mark_missing(&token).await;
        }
    }
}

/// When a message reached the mailbox, for latency: the Maildir file's
/// mtime (exact); over IMAP the moment mailcanary saw it, since INTERNALDATE
/// has whole seconds only, unless the watcher saw it more than
/// [`BACKLOG_GAP`] after INTERNALDATE (it was disconnected or polling).
fn arrival_ms(a: &Arrival, seen_ms: i64, stored_ms: Option<i64>) -> i64 {
    match stored_ms {
        Some(st) if a.stored_exact => st,
        Some(st) if seen_ms - st > BACKLOG_GAP.as_millis() as i64 => st,
        _ => seen_ms,
    }
}

/// A ready client for one sender.
pub enum Client {
    Smtp(SmtpClient),
    Http(super::trigger::HttpTrigger),
}

/// The clients of every sender, built once per config generation, and the
/// senders an app asked to wait (429 Retry-After) until a given time.
pub struct Senders {
    clients: HashMap<String, Client>,
    hold: Holds,
}

impl Senders {
    pub fn new(config: &Config, holds: &Holds) -> Senders {
        let mut clients = HashMap::new();
        for (name, sender) in &config.senders {
            let client = match sender {
                Sender::Smtp(s) => SmtpClient::new(s).map(Client::Smtp),
                Sender::Http(h) => super::trigger::HttpTrigger::new(h).map(Client::Http),
            };
            match client {
                Ok(c) => {
                    clients.insert(name.clone(), c);
                }
                Err(e) => tracing::error!(sender = %name, error = %e, "sender cannot be used"),
            }
        }
        Senders {
            clients,
            hold: holds.clone(),
        }
    }

    /// When the sender must not be used before (a 429's Retry-After).
    fn held_until(&self, sender: &str) -> Option<std::time::Instant> {
        let hold = self.hold.lock().unwrap_or_else(|e| e.into_inner());
        hold.get(sender)
            .copied()
            .filter(|t| *t > std::time::Instant::now())
    }

    fn hold(&self, sender: &str, wait: Duration) {
        let until = std::time::Instant::now() + wait;
        self.hold
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sender.to_string(), until);
    }
}

/// Start the watchers of every seed some probe uses.
pub fn spawn_watchers(
    config: &Config,
    ch: &Channels,
    tracker: &TaskTracker,
    stop: &CancellationToken,
) {
    let used: std::collections::BTreeSet<&String> = config
        .probes
        .values()
        .flat_map(|p| p.seeds.iter())
        .collect();
    let mut tokens = ch.tokens.lock().unwrap_or_else(|e| e.into_inner());
    tokens.retain(|seed, _| used.contains(seed));
    for name in used {
        let Some(seed) = config.seeds.get(name) else {
            continue;
        };
        // The From addresses of apps (http senders) that send to this seed.
        let match_from: Vec<String> = config
            .probes
            .values()
            .filter(|p| p.seeds.contains(name))
            .filter_map(|p| match config.senders.get(&p.sender) {
                Some(Sender::Http(h)) => Some(h.from.to_ascii_lowercase()),
                _ => None,
            })
            .collect();
        // One token source per OAuth seed, shared by its folder watchers.
        let oauth = match &seed.inbox {
            Inbox::Imap(cfg) => match &cfg.auth {
                crate::config::ImapAuth::OAuth { client, .. } => {
                    let kept = tokens
                        .get(name)
                        .filter(|src| src.reusable_for(client))
                        .cloned();
                    let made = match kept {
                        Some(src) => Ok(src),
                        None => inbox::oauth::TokenSource::new(
                            name,
                            client,
                            Some(&config.daemon.state_dir),
                            ch.watch.clone(),
                        ),
                    };
                    match made {
                        Ok(src) => {
                            tokens.insert(name.clone(), src.clone());
                            tracker.spawn(src.clone().keep_fresh(stop.clone()));
                            Some(src)
                        }
                        Err(e) => {
                            tokens.remove(name);
                            tracing::error!(seed = %name, error = %e, "cannot set up the OAuth token client; seed not watched");
                            for role in [FolderRole::Inbox, FolderRole::Spam] {
                                let _ = ch.watch.try_send(WatchEvent::Up {
                                    seed: name.clone(),
                                    role,
                                    up: false,
                                });
                            }
                            continue;
                        }
                    }
                }
                _ => None,
            },
            Inbox::Maildir(_) => None,
        };
        for role in [FolderRole::Inbox, FolderRole::Spam] {
            match &seed.inbox {
                Inbox::Imap(cfg) => {
                    let Some(login) = inbox::imap::Login::new(&cfg.auth, oauth.clone()) else {
                        continue;
                    };
                    tracker.spawn(inbox::imap::watch(inbox::imap::ImapWatch {
                        seed: name.clone(),
                        cfg: cfg.clone(),
                        role,
                        spam_folders: seed.spam_folders.clone(),
                        login,
                        spam_folder: seed.spam_folder.clone(),
                        cleanup_folder: seed.cleanup_folder.clone(),
                        match_from: match_from.clone(),
                        events: ch.watch.clone(),
                        stop: stop.clone(),
                    }));
                }
                Inbox::Maildir(m) => {
                    let dir = match role {
                        FolderRole::Inbox => m.path.clone(),
                        FolderRole::Spam => {
                            m.path.join(seed.spam_folder.as_deref().unwrap_or(".Junk"))
                        }
                    };
                    tracker.spawn(inbox::maildir::watch(inbox::maildir::MaildirWatch {
                        seed: name.clone(),
                        dir,
                        cleanup_dir: seed.cleanup_folder.as_ref().map(|f| m.path.join(f)),
                        match_from: match_from.clone(),
                        role,
                        events: ch.watch.clone(),
                        stop: stop.clone(),
                    }));
                }
            }
        }
    }
}

/// Start one scheduler per probe.
pub fn spawn_schedulers(
    config: &Arc<Config>,
    ch: &Channels,
    tracker: &TaskTracker,
    stop: &CancellationToken,
) {
    let clients = Arc::new(Senders::new(config, &ch.holds));
    for name in config.probes.keys() {
        let (config, ch, clients, stop, t) = (
            config.clone(),
            ch.clone(),
            clients.clone(),
            stop.clone(),
            tracker.clone(),
        );
        let name = name.clone();
        tracker.spawn(async move {
            let Some(probe) = config.probes.get(&name) else {
                return;
            };
            let mut tick = tokio::time::interval(probe.every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.cancelled() => return,
                }
                fire(&config, &name, &clients, &ch, &t);
            }
        });
    }
}

/// Send one round of `probe` now: one message per seed. Returns at once; the
/// sends run on `tracker`.
pub fn fire(
    config: &Arc<Config>,
    probe_name: &str,
    clients: &Arc<Senders>,
    ch: &Channels,
    tracker: &TaskTracker,
) {
    let Some(probe) = config.probes.get(probe_name) else {
        return;
    };
    if let Some(until) = clients.held_until(&probe.sender) {
        tracing::info!(
            probe = probe_name,
            sender = %probe.sender,
            wait_s = until.saturating_duration_since(std::time::Instant::now()).as_secs(),
            "sender asked to wait (Retry-After); skipping this round"
        );
        return;
    }
    for seed in &probe.seeds {
        let (config, clients, ch) = (config.clone(), clients.clone(), ch.clone());
        let (probe_name, seed) = (probe_name.to_string(), seed.clone());
        tracker.spawn(async move {
            let Some(p) = config.probes.get(&probe_name) else {
                return;
            };
            if p.burst <= 1 {
                send_one(&config, &probe_name, p, &seed, &clients, &ch, None).await;
                return;
            }
            // An impatient user: N requests, `burst_spacing` apart.
            let burst = Token::random(&mut rand::rng()).as_str().to_string();
            for i in 0..p.burst {
                if i > 0 {
                    tokio::time::sleep(p.burst_spacing).await;
                }
                send_one(&config, &probe_name, p, &seed, &clients, &ch, Some(&burst)).await;
            }
        });
    }
}

/// Register one run, then send its message (SMTP) or trigger the app (HTTP)
/// for one seed. Returns the run's token.
pub async fn send_one(
    config: &Config,
    probe_name: &str,
    probe: &Probe,
    seed_name: &str,
    clients: &Senders,
    ch: &Channels,
    burst: Option<&str>,
) -> Option<String> {
    let seed = config.seeds.get(seed_name)?;
    let sender = config.senders.get(&probe.sender)?;
    let (token, code) = {
        let mut rng = rand::rng();
        (
            Token::random(&mut rng),
            Code::random(&mut rng, probe.code_length),
        )
    };
    let created = now_ms();
    let run = NewRun {
        token: token.as_str().to_string(),
        probe: probe_name.to_string(),
        sender: probe.sender.clone(),
        seed: seed_name.to_string(),
        created_ms: created,
        deadline_ms: created + probe.timeout.as_millis() as i64,
        burst: burst.map(str::to_string),
    };
    let (ack, acked) = oneshot::channel();
    // The app makes its own code; it is learnt (masked) when the mail arrives.
    let code_masked = matches!(sender, Sender::Smtp(_)).then(|| code.masked());
    ch.cmd
        .send(Cmd::Register {
            run,
            code_masked,
            ack,
        })
        .await
        .ok()?;
    if let Err(e) = acked.await.ok()? {
        tracing::error!(probe = probe_name, seed = seed_name, error = %e, "cannot store the probe; not sending it");
        return None;
    }
    let key = token.as_str().to_string();
    let result = match (sender, clients.clients.get(&probe.sender)) {
        (Sender::Smtp(s), Some(Client::Smtp(client))) => {
            match smtp_message(s, seed, probe, token, code) {
                Ok((from, to, bytes)) => client.send(&from, &to, &bytes).await,
                Err(f) => Err(f),
            }
        }
        (Sender::Http(_), Some(Client::Http(app))) => app.trigger(&seed.address).await,
        _ => Err(local_failure("sender could not be set up".into())),
    };
    let cmd = match result {
        Ok(sent) => Cmd::Sent {
            token: key.clone(),
            sent,
            timeout: probe.timeout,
        },
        Err(failure) => {
            if let Some(wait) = failure.retry_after {
                clients.hold(&probe.sender, wait);
            }
            Cmd::SendFailed {
                token: key.clone(),
                failure,
            }
        }
    };
    let _ = ch.cmd.send(cmd).await;
    Some(key)
}

fn local_failure(detail: String) -> SendFailure {
    SendFailure {
        reason: SendReason::Local,
        detail,
        attempts: 0,
        retry_after: None,
    }
}

/// Compose (and sign) the probe message for one seed: envelope from, envelope to, bytes.
fn smtp_message(
    sender: &crate::config::SmtpSender,
    seed: &crate::config::Seed,
    probe: &Probe,
    token: Token,
    code: Code,
) -> Result<(Address, Address, Vec<u8>), SendFailure> {
    // Addresses were validated at config load; a failure here is local.
    let addr = |s: &str| {
        s.parse::<Address>()
            .map_err(|e| local_failure(e.to_string()))
    };
    let from = addr(&sender.from)?;
    let to = addr(&seed.address)?;
    let reply = match &sender.reply_to {
        Some(r) => Some(Mailbox::new(None, addr(r)?)),
        None => None,
    };
    let composed = compose::compose(
        &Parts {
            template: &probe.template,
            from: &Mailbox::new(Some(probe.product.clone()), from.clone()),
            reply_to: reply.as_ref(),
            to: &Mailbox::new(None, to.clone()),
            product: &probe.product,
            validity_minutes: probe.code_validity.as_secs().div_ceil(60),
            probe_header: probe.probe_header,
            date: SystemTime::now(),
        },
        token,
        code,
    )
    .map_err(|e| local_failure(e.to_string()))?;
    let bytes = match &sender.dkim {
        Some(dkim) => super::sign::sign(&composed.bytes, dkim).map_err(local_failure)?,
        None => composed.bytes,
    };
    Ok((from, to, bytes))
}
