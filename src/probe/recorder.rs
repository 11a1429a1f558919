//! The recorder: one task that owns the in-flight runs and the store.
//!
//! A run is written to the store before its message is sent; the recorder
//! matches watcher arrivals to runs, gathers the facts (the receiver's
//! verdict, the local DKIM check), asks [`evaluate`] what they mean, makes
//! the run final (exactly once, see [`super::record`]) and emits the event.
//! It marks runs missing when their timeout passes, and on start resumes
//! the runs the store still has open, so a restart (even SIGKILL) loses
//! nothing. It lives as long as the daemon; schedulers and watchers belong
//! to a config generation.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::evaluate::{self, evaluate, Burst, Judgement, Run, RunState, Seen};
use super::events::{ProbeEvent, RunLabels};
use super::history::{self, Cuts};
use super::notice::{self, Kind, Notice};
use super::outcome::{Arrived, Ended, Outcome};
use super::record::{self, Finish, NewRun, OpenRun};
use super::result::RunResult;
use super::send::{SendFailure, Sent};
use crate::config::{Config, Sender};
use crate::inbox::oauth::TokenOutcome;
use crate::inbox::{Arrival, Disposition, FolderRole, WatchEvent};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};
use crate::verdict::reverify::LocalDkim;

/// Clock slack when matching app mail to the trigger that caused it.
const APP_CLOCK_SLACK_MS: i64 = 2_000;
/// How often old final runs move to the history's counts: each prune
/// moves about one slice of runs (10,000 at 1,000 seeds probed every
/// minute), a short transaction, rather than an hour's worth at once.
const PRUNE_EVERY: Duration = Duration::from_millis(history::SLICE_MS as u64);
/// How often the recorder looks for runs past their timeout.
const SWEEP: Duration = Duration::from_millis(500);
/// A sent probe not seen this long after the relay accepted it: its seed's
/// watchers are asked to scan once ([`crate::inbox::recheck`]), in case the
/// server's IDLE notification was lost.
const RECHECK_AFTER: Duration = Duration::from_secs(60);
/// How long a resend burst is remembered (for duplicates and order).
const BURST_MEMORY: Duration = Duration::from_secs(86_400);

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
}

/// What the recorder remembers of one resend burst.
struct BurstEntry {
    probe: String,
    sender: String,
    seed: String,
    started: Instant,
    burst: Burst,
}

impl BurstEntry {
    /// A burst first seen through one of its runs.
    fn new(run: &OpenRun) -> BurstEntry {
        BurstEntry {
            probe: run.probe.clone(),
            sender: run.sender.clone(),
            seed: run.seed.clone(),
            started: Instant::now(),
            burst: Burst::default(),
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

fn now_ms() -> i64 {
    ms(SystemTime::now())
}

fn ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Start the recorder; it runs until `stop` and every channel sender is gone.
pub async fn start(
    config: watch::Receiver<Arc<Config>>,
    store: Store,
    metrics: Arc<Metrics>,
    tracker: &TaskTracker,
    stop: CancellationToken,
) -> Result<Channels, StoreError> {
    let open = store.call(|c| record::open_runs(c)).await?;
    let watched = store.call(|c| record::inbox_states(c)).await?;
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
        rechecked: HashSet::new(),
        watched,
        pruning: None,
    };
    tracker.spawn(rec.run(cmd_rx, watch_rx, stop));
    Ok(Channels {
        cmd: cmd_tx,
        watch: watch_tx,
        results,
    })
}

struct Recorder {
    config: watch::Receiver<Arc<Config>>,
    store: Store,
    metrics: Arc<Metrics>,
    open: HashMap<String, OpenRun>,
    /// Connection state per seed folder, for `mailcanary_inbox_up`.
    up: HashMap<(String, FolderRole), bool>,
    /// Open runs whose seed's watchers were asked to look again.
    rechecked: HashSet<String>,
    /// The last watcher state of each seed written to the store (no entry:
    /// watched), so a row is written per transition only.
    watched: HashMap<String, bool>,
    results: broadcast::Sender<RunResult>,
    /// Masked codes of runs sent by this process (not stored).
    codes: HashMap<String, String>,
    /// Resend bursts seen recently, by burst id.
    bursts: HashMap<String, BurstEntry>,
    /// DKIM re-verification of delivered copies, with the resolver settings it was built for.
    dkim: Option<(
        crate::config::Dns,
        Arc<mail_auth::MessageAuthenticator>,
        crate::verdict::reverify::KeyCache,
    )>,
    /// The prune in progress: it runs beside the recorder, never in its way.
    pruning: Option<tokio::task::JoinHandle<()>>,
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
                _ = sweep.tick() => self.sweep(now_ms()).await,
                _ = prune.tick() => self.prune(),
                _ = stop.cancelled() => break,
            }
        }
        if let Some(p) = self.pruning.take() {
            p.abort();
        }
        // Let senders that are mid-flight record what they did.
        while let Ok(cmd) = cmds.try_recv() {
            self.command(cmd).await;
        }
    }

    /// Emit an event if its probe and seed are still configured.
    fn emit(&self, event: ProbeEvent<'_>) {
        event.emit_if_configured(&self.config.borrow(), &self.metrics);
    }

    /// Make a run final in the store, then count it and tell `mailcanary
    /// probe`. With `late`, a missing run turns late instead. True when
    /// the store has it (whether or not this call was the one that counted).
    async fn record(&mut self, ended: Ended, late: bool) -> Result<bool, StoreError> {
        let finish = Finish::of(&ended);
        let t = ended.token.clone();
        let counted = self
            .store
            .call(move |c| {
                if late {
                    record::mark_late(c, &t, &finish)
                } else {
                    record::finish(c, &t, &finish)
                }
            })
            .await?;
        if counted {
            self.emit(ProbeEvent::Ended(&ended));
            let code = self.codes.remove(&ended.token);
            let _ = self.results.send(RunResult::new(&ended, code));
        }
        Ok(counted)
    }

    /// Re-verify the delivered copy's DKIM with the configured resolver.
    async fn reverify(&mut self, config: &Config, raw: &[u8]) -> LocalDkim {
        if self
            .dkim
            .as_ref()
            .is_none_or(|(dns, _, _)| *dns != config.dns)
        {
            let settings = crate::dns::ResolverSettings {
                server: config.dns.resolver,
                timeout: config.dns.timeout,
                ..Default::default()
            };
            match crate::dns::DnsLookup::new(&settings) {
                Ok(l) => {
                    self.dkim = Some((
                        config.dns.clone(),
                        Arc::new(l.authenticator()),
                        Default::default(),
                    ))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "no resolver for DKIM re-verification");
                    return LocalDkim::TempError;
                }
            }
        }
        let Some((_, auth, keys)) = &self.dkim else {
            return LocalDkim::TempError;
        };
        let limit = config.dns.timeout.saturating_mul(4);
        tokio::time::timeout(limit, crate::verdict::reverify::dkim(auth, keys, raw))
            .await
            .unwrap_or(LocalDkim::TempError)
    }

    /// The provider label of a seed.
    fn provider(config: &Config, seed: &str) -> String {
        config
            .seeds
            .get(seed)
            .map_or("unknown", |s| s.provider.as_str())
            .to_string()
    }

    /// An [`Ended`] for `run` with nothing known yet but its outcome.
    fn ended(config: &Config, token: &str, run: &OpenRun, outcome: Outcome) -> Ended {
        Ended {
            token: token.to_string(),
            probe: run.probe.clone(),
            sender: run.sender.clone(),
            seed: run.seed.clone(),
            provider: Self::provider(config, &run.seed),
            outcome,
            failure: None,
            bounce: None,
            arrived: None,
            submitted_ms: Some(run.submitted_ms),
            final_ms: now_ms(),
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
                        OpenRun {
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
                let provider = Self::provider(&config, &open.seed);
                self.emit(ProbeEvent::Sent {
                    run: RunLabels {
                        probe: &open.probe,
                        sender: &open.sender,
                        seed: &open.seed,
                        provider: &provider,
                    },
                    queue_id: sent.queue_id.as_deref(),
                });
            }
            Cmd::SendFailed { token, failure } => {
                let Some(open) = self.open.remove(&token) else {
                    return;
                };
                let mut ended = Self::ended(&config, &token, &open, Outcome::SendFailed);
                ended.submitted_ms = None;
                ended.failure = Some(failure);
                if let Err(e) = self.record(ended, false).await {
                    tracing::error!(error = %e, "cannot record a send failure");
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
                self.emit(ProbeEvent::InboxUp {
                    seed: &seed,
                    up: all_up,
                });
                // The support view reads the transitions: a run whose seed
                // could not be watched says nothing about delivery.
                if self.watched.get(&seed).copied().unwrap_or(true) != all_up {
                    let (s, at) = (seed.clone(), now_ms());
                    match self
                        .store
                        .call(move |c| record::inbox_transition(c, &s, all_up, at))
                        .await
                    {
                        Ok(()) => {
                            self.watched.insert(seed, all_up);
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "cannot record an inbox watcher's state")
                        }
                    }
                }
            }
            WatchEvent::OAuth { seed, outcome } => match outcome {
                TokenOutcome::Refreshed { expires } => self.emit(ProbeEvent::OAuthRefreshed {
                    seed: &seed,
                    expires,
                }),
                TokenOutcome::Failed(error) => self.emit(ProbeEvent::OAuthRefreshFailed {
                    seed: &seed,
                    error: &error,
                }),
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
                    .find(|b| b.seed == a.seed && b.sender == *name && b.burst.has_code(code));
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
            let arrived = evaluate::arrival_ms(&seen(a));
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
                    self.codes.insert(token.clone(), crate::message::mask(code));
                    if let Some(r) = open.as_ref().filter(|r| r.burst.is_some()) {
                        self.bursts
                            .entry(r.burst.clone().unwrap_or_default())
                            .or_insert_with(|| BurstEntry::new(r))
                            .burst
                            .add_code(code);
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
    fn check_burst_order(&mut self, config: &Config, run: &OpenRun, date: Option<i64>) {
        let Some(id) = &run.burst else { return };
        let entry = self
            .bursts
            .entry(id.clone())
            .or_insert_with(|| BurstEntry::new(run));
        if entry.burst.arrived(date) {
            let provider = Self::provider(config, &run.seed);
            self.emit(ProbeEvent::OutOfOrder {
                run: RunLabels {
                    probe: &run.probe,
                    sender: &run.sender,
                    seed: &run.seed,
                    provider: &provider,
                },
            });
        }
    }

    async fn arrival(&mut self, a: &Arrival) -> Disposition {
        let config = self.config.borrow().clone();
        if config.is_bounce_mailbox(&a.seed) {
            return self.notice_arrival(&config, a).await;
        }
        // Everything read from the untrusted bytes, in one trip off the
        // runtime threads (CPU work): whether it is a bounce, what the
        // receiver said, and the Date the sender gave it.
        let (raw, authserv) = (
            a.raw.clone(),
            config
                .seeds
                .get(&a.seed)
                .and_then(|s| s.authserv_id.clone()),
        );
        let read = tokio::task::spawn_blocking(move || {
            let is_notice = !notice::read(&raw).is_empty();
            let verdict = crate::verdict::judge(&raw, authserv.as_deref());
            let created_ms = mail_parser::MessageParser::new()
                .parse_headers(&raw)
                .and_then(|m| m.date().map(|d| d.to_timestamp().saturating_mul(1000)));
            (is_notice, verdict, created_ms)
        })
        .await;
        // The parsers do not panic; if one did, the message stays where it is.
        let Ok((is_notice, verdict, created_ms)) = read else {
            tracing::error!(seed = %a.seed, "reading an arrival failed; left in place");
            return Disposition::Keep;
        };
        // A bounce that quotes a probe, in a seed's own folder (forged, or
        // a receiver answering the From), is not the probe arriving, and
        // only a sender's bounce mailbox is trusted with bounces.
        if is_notice {
            tracing::warn!(seed = %a.seed, "a bounce in a seed's folder: not an arrival, left in place");
            return Disposition::Keep;
        }
        let token = match &a.token {
            Some(t) => t.as_str().to_string(),
            None => match self.match_app_mail(&config, a).await {
                Some(AppMatch::Run(t)) => t,
                Some(AppMatch::Duplicate { probe, sender }) => {
                    let provider = Self::provider(&config, &a.seed);
                    self.emit(ProbeEvent::Duplicate {
                        run: RunLabels {
                            probe: &probe,
                            sender: &sender,
                            seed: &a.seed,
                            provider: &provider,
                        },
                    });
                    return Disposition::Remove;
                }
                None => return Disposition::Keep,
            },
        };

        // The run: open in this process, else as the store has it.
        let open = self.open.get(&token).cloned();
        let (run, state) = match &open {
            Some(r) => (
                r.clone(),
                RunState::Open {
                    deadline_ms: r.deadline_ms,
                },
            ),
            None => {
                let t = token.clone();
                match self.store.call(move |c| record::lookup(c, &t)).await {
                    Ok(Some(row)) => {
                        let state = row.outcome.map_or(RunState::Elsewhere, RunState::Ended);
                        (row.into_run(&token), state)
                    }
                    Ok(None) => return Disposition::Keep, // not ours
                    Err(e) => {
                        tracing::error!(error = %e, "cannot look up an arrival");
                        return Disposition::Keep;
                    }
                }
            }
        };
        let seen = seen(a);
        let validity = config.probes.get(&run.probe).map(|p| p.code_validity);
        let judgement = evaluate(
            &Run {
                seed: &run.seed,
                submitted_ms: run.submitted_ms,
                state,
            },
            &seen,
            validity,
        );
        let (delivery, late) = match judgement {
            Judgement::Leave => return Disposition::Keep,
            Judgement::Recorded => return Disposition::Remove,
            Judgement::Delivered(d) => (d, false),
            Judgement::Late {
                delivery,
                still_open,
            } => {
                if still_open && !self.mark_missing(&token).await {
                    // Not recorded as missing yet: try again on the next scan.
                    return Disposition::Keep;
                }
                (delivery, true)
            }
        };

        // The facts only a delivered copy has: what the receiver said (read
        // above), and whether its DKIM still verifies. The Date is an
        // app's: when it made the code.
        let dkim_local = self.reverify(&config, &a.raw).await;
        if open.is_some() {
            self.check_burst_order(&config, &run, created_ms);
        }
        let mut ended = Self::ended(&config, &token, &run, delivery.outcome);
        ended.arrived = Some(Arrived {
            delivery,
            folder: a.folder.clone(),
            seen_tab: a.tab,
            verdict,
            dkim_local,
            seen_ms: seen.seen_ms,
            stored_ms: seen.stored_ms,
            created_ms,
        });
        match self.record(ended, late).await {
            Ok(_) => {
                self.open.remove(&token);
                Disposition::Remove
            }
            Err(e) => {
                // Not recorded: leave the message for the next scan.
                tracing::error!(error = %e, "cannot record an arrival");
                Disposition::Keep
            }
        }
    }

    /// A message in a sender's bounce mailbox. A bounce ends the run it is
    /// about as `bounced`; a delay notice counts a deferral and leaves the
    /// run open. Only runs of the senders that return to this mailbox are
    /// touched, and a run that already ended keeps its outcome. Anything
    /// else is not ours and stays where it is.
    async fn notice_arrival(&mut self, config: &Config, a: &Arrival) -> Disposition {
        let raw = a.raw.clone();
        // Parsing is CPU work on untrusted input: off the runtime threads.
        let notices = tokio::task::spawn_blocking(move || notice::read(&raw))
            .await
            .unwrap_or_default();
        if notices.is_empty() {
            return Disposition::Keep;
        }
        let trusted: Vec<&String> = config
            .senders
            .iter()
            .filter(|(_, s)| s.bounce_mailbox() == Some(&a.seed))
            .map(|(name, _)| name)
            .collect();
        let seen_ms = ms(a.seen);
        let found = match &a.token {
            Some(t) => self.run_of(t.as_str()).await,
            None => self.app_run_of(config, &notices, &trusted, seen_ms),
        };
        let Some((run, open)) = found else {
            tracing::debug!(mailbox = %a.seed, "a bounce for no known probe run; left in place");
            return Disposition::Keep;
        };
        if !trusted.contains(&&run.sender) {
            tracing::warn!(mailbox = %a.seed, sender = %run.sender, "a bounce for a run of a sender that does not return to this mailbox; ignored");
            return Disposition::Keep;
        }
        let address = config
            .seeds
            .get(&run.seed)
            .map_or("", |s| s.address.as_str());
        let Some(n) = notice::about(&notices, address).cloned() else {
            tracing::warn!(mailbox = %a.seed, probe = %run.probe, seed = %run.seed, "a bounce quoting a run's token reports on another address; ignored");
            return Disposition::Keep;
        };
        let (t, kind, refusal) = (run.token.clone(), n.kind, n.refusal.clone());
        let first = match self
            .store
            .call(move |c| record::keep_notice(c, &t, kind.as_str(), &refusal, seen_ms))
            .await
        {
            Ok(first) => first,
            Err(e) => {
                tracing::error!(error = %e, "cannot record a bounce; left for the next scan");
                return Disposition::Keep;
            }
        };
        match (n.kind, open) {
            (Kind::Failed, true) => {
                self.open.remove(&run.token);
                let mut ended = Self::ended(config, &run.token, &run, Outcome::Bounced);
                ended.bounce = Some(n.refusal);
                if let Err(e) = self.record(ended, false).await {
                    tracing::error!(error = %e, "cannot record a bounced probe; left for the next scan");
                    self.open.insert(run.token.clone(), run);
                    return Disposition::Keep;
                }
            }
            (Kind::Delayed, true) if first => {
                let provider = Self::provider(config, &run.seed);
                self.emit(ProbeEvent::Deferred {
                    run: RunLabels {
                        probe: &run.probe,
                        sender: &run.sender,
                        seed: &run.seed,
                        provider: &provider,
                    },
                    notice: &n.refusal,
                });
            }
            (Kind::Delayed, true) => {}
            (_, false) => {
                if first {
                    tracing::info!(probe = %run.probe, seed = %run.seed, kind = n.kind.as_str(), reason = n.refusal.reason.as_str(), "a bounce for a run that already ended: kept, its outcome unchanged");
                }
            }
        }
        Disposition::Remove
    }

    /// The run a token belongs to, and whether it is open in this process.
    async fn run_of(&self, token: &str) -> Option<(OpenRun, bool)> {
        if let Some(r) = self.open.get(token) {
            return Some((r.clone(), true));
        }
        let t = token.to_string();
        let row = match self.store.call(move |c| record::lookup(c, &t)).await {
            Ok(row) => row?,
            Err(e) => {
                tracing::error!(error = %e, "cannot look up a bounced run");
                return None;
            }
        };
        Some((row.into_run(token), false))
    }

    /// For an app's mail (no token): the oldest open run of a trusted
    /// `http` sender to the seed a notice reports on, triggered before the
    /// notice arrived.
    fn app_run_of(
        &self,
        config: &Config,
        notices: &[Notice],
        trusted: &[&String],
        seen_ms: i64,
    ) -> Option<(OpenRun, bool)> {
        let is_app = |sender: &String| matches!(config.senders.get(sender), Some(Sender::Http(_)));
        notices
            .iter()
            .filter(|n| !n.recipient.is_empty())
            .find_map(|n| {
                self.open
                    .values()
                    .filter(|r| {
                        r.sent
                            && trusted.contains(&&r.sender)
                            && is_app(&r.sender)
                            && r.submitted_ms <= seen_ms + APP_CLOCK_SLACK_MS
                            && config
                                .seeds
                                .get(&r.seed)
                                .is_some_and(|s| s.address.eq_ignore_ascii_case(&n.recipient))
                    })
                    .min_by_key(|r| r.submitted_ms)
            })
            .map(|r| (r.clone(), true))
    }

    /// Make an open run missing; false when the store could not record it
    /// (the run stays open and the next sweep tries again).
    async fn mark_missing(&mut self, token: &str) -> bool {
        let Some(open) = self.open.remove(token) else {
            return true;
        };
        let config = self.config.borrow().clone();
        let ended = Self::ended(&config, token, &open, Outcome::Missing);
        match self.record(ended, false).await {
            Ok(_) => true,
            Err(e) => {
                tracing::error!(error = %e, "cannot record a missing probe; retrying");
                self.open.insert(token.to_string(), open);
                false
            }
        }
    }

    /// Move final runs older than `daemon.run_detail` into the history's
    /// counts, forget counts older than `daemon.history`, and bursts after
    /// a day.
    fn prune(&mut self) {
        self.bursts
            .retain(|_, b| b.started.elapsed() < BURST_MEMORY);
        if self.pruning.as_ref().is_some_and(|p| !p.is_finished()) {
            return;
        }
        let (cuts, providers) = {
            let config = self.config.borrow();
            let now = now_ms();
            let cuts = Cuts {
                detail_ms: now - config.daemon.run_detail.as_millis() as i64,
                history_ms: now - config.daemon.history.as_millis() as i64,
            };
            let providers: HashMap<String, String> = config
                .seeds
                .iter()
                .map(|(name, s)| (name.clone(), s.provider.clone()))
                .collect();
            (cuts, providers)
        };
        let store = self.store.clone();
        let providers = Arc::new(providers);
        self.pruning = Some(tokio::spawn(async move {
            // One step at a time (an hour of runs at most), so the other
            // statements queued for the store run in between.
            let (mut runs, mut slices) = (0, 0);
            loop {
                let providers = providers.clone();
                match store
                    .call(move |c| history::prune(c, cuts, &providers))
                    .await
                {
                    Ok(p) => {
                        runs += p.runs;
                        slices += p.slices;
                        if !p.more {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot prune the store");
                        return;
                    }
                }
            }
            if runs + slices > 0 {
                tracing::info!(
                    runs,
                    slices,
                    "moved old probe runs into the history's counts"
                );
            }
        }));
    }

    async fn sweep(&mut self, now: i64) {
        let late = now - RECHECK_AFTER.as_millis() as i64;
        for r in self.open.values() {
            if r.sent && r.submitted_ms <= late && self.rechecked.insert(r.token.clone()) {
                let asked = crate::inbox::recheck::ask(&r.seed);
                tracing::debug!(probe = %r.probe, seed = %r.seed, asked, "probe not seen a minute after it was sent; its seed's watchers look again");
            }
        }
        let open = &self.open;
        self.rechecked.retain(|t| open.contains_key(t));
        let due: Vec<String> = self
            .open
            .values()
            .filter(|r| evaluate::overdue(r.deadline_ms, now))
            .map(|r| r.token.clone())
            .collect();
        for token in due {
            self.mark_missing(&token).await;
        }
    }
}

/// What a watcher saw, as [`evaluate`] takes it.
fn seen(a: &Arrival) -> Seen<'_> {
    Seen {
        seed: &a.seed,
        role: a.role,
        tab: a.tab,
        seen_ms: ms(a.seen),
        stored_ms: a.stored.map(ms),
        stored_exact: a.stored_exact,
    }
}
