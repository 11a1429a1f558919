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
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::compose::{self, Code, Parts, Token};
use super::events::{ProbeEvent, RunLabels};
use super::record::{self, Finish, NewRun};
use super::send::{SendFailure, SendReason, Sent, SmtpClient};
use super::Placement;
use crate::config::{Config, Inbox, Probe, Sender};
use crate::inbox::{self, Arrival, Disposition, FolderRole, WatchEvent};
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

/// A watcher that sees a message this long after its INTERNALDATE was not
/// watching live; the mailbox's time is then the better arrival time.
const BACKLOG_GAP: Duration = Duration::from_secs(2);
/// How often the recorder looks for runs past their timeout.
const SWEEP: Duration = Duration::from_millis(500);

/// Messages from senders to the recorder.
#[derive(Debug)]
pub enum Cmd {
    /// A run is about to be sent; answered once it is in the store.
    Register {
        run: NewRun,
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
    let rec = Recorder {
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
    })
}

struct Recorder {
    config: watch::Receiver<Arc<Config>>,
    store: Store,
    metrics: Arc<Metrics>,
    open: HashMap<String, record::OpenRun>,
    /// Connection state per seed folder, for `mailcanary_inbox_up`.
    up: HashMap<(String, FolderRole), bool>,
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
        loop {
            tokio::select! {
                Some(cmd) = cmds.recv() => self.command(cmd).await,
                Some(ev) = watch.recv() => self.watch_event(ev).await,
                _ = sweep.tick() => self.sweep().await,
                _ = stop.cancelled() => break,
            }
        }
        // Let senders that are mid-flight record what they did.
        while let Ok(cmd) = cmds.try_recv() {
            self.command(cmd).await;
        }
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
            Cmd::Register { run, ack } => {
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
                .emit(&self.metrics);
            }
            Cmd::SendFailed { token, failure } => {
                let Some(open) = self.open.remove(&token) else {
                    return;
                };
                let reason = failure.reason.as_str();
                let t = token.clone();
                let done = self
                    .store
                    .call(move |c| {
                        record::finish(
                            c,
                            &t,
                            &Finish {
                                outcome: "send_failed",
                                reason: Some(reason),
                                final_ms: now_ms(),
                                ..Default::default()
                            },
                        )
                    })
                    .await;
                if matches!(done, Ok(true)) {
                    ProbeEvent::SendFailed {
                        run: self.labels(&config, &open.probe, &open.sender, &open.seed),
                        failure: &failure,
                    }
                    .emit(&self.metrics);
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
                .emit(&self.metrics);
            }
            WatchEvent::Arrival(a) => {
                let disposition = self.arrival(&a).await;
                let _ = a.reply.send(disposition);
            }
        }
    }

    async fn arrival(&mut self, a: &Arrival) -> Disposition {
        let config = self.config.borrow().clone();
        let token = a.token.as_str().to_string();
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
        let verdict_json = serde_json::to_string(&verdict).ok();
        let placement = match (a.tab.is_some(), a.role) {
            (true, _) => Placement::Tab,
            (false, FolderRole::Inbox) => Placement::Inbox,
            (false, FolderRole::Spam) => Placement::Spam,
        };
        let seen_ms = ms(a.seen);
        let stored_ms = a.stored.map(ms);

        if let Some(open) = self.open.get(&token).cloned() {
            if open.seed != a.seed {
                // The same token in another seed's mailbox: not this run's copy.
                return Disposition::Keep;
            }
            let arrived_ms = arrival_ms(a, seen_ms, stored_ms);
            if seen_ms <= open.deadline_ms || arrived_ms <= open.deadline_ms {
                let t = token.clone();
                let (folder, vj) = (a.folder.clone(), verdict_json.clone());
                let done = self
                    .store
                    .call(move |c| {
                        record::finish(
                            c,
                            &t,
                            &Finish {
                                outcome: placement.as_str(),
                                reason: None,
                                folder: Some(&folder),
                                seen_ms: Some(seen_ms),
                                internal_ms: stored_ms,
                                verdict_json: vj.as_deref(),
                                final_ms: now_ms(),
                            },
                        )
                    })
                    .await;
                return match done {
                    Ok(counted) => {
                        self.open.remove(&token);
                        if counted {
                            ProbeEvent::Delivered {
                                run: self.labels(&config, &open.probe, &open.sender, &open.seed),
                                placement,
                                folder: &a.folder,
                                latency: since(
                                    arrived_ms.max(open.submitted_ms),
                                    open.submitted_ms,
                                ),
                                seen_latency: since(seen_ms, open.submitted_ms),
                                auth: &verdict.auth,
                                spam_score: verdict.spam.as_ref().and_then(|s| s.score),
                            }
                            .emit(&self.metrics);
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
        if row.seed != a.seed {
            return Disposition::Keep;
        }
        if row.outcome.as_deref() == Some("missing") {
            let t = token.clone();
            let (folder, vj) = (a.folder.clone(), verdict_json.clone());
            let late = self
                .store
                .call(move |c| {
                    record::mark_late(
                        c,
                        &t,
                        &Finish {
                            outcome: "late",
                            folder: Some(&folder),
                            seen_ms: Some(seen_ms),
                            internal_ms: stored_ms,
                            verdict_json: vj.as_deref(),
                            final_ms: now_ms(),
                            reason: None,
                        },
                    )
                })
                .await;
            if matches!(late, Ok(true)) {
                ProbeEvent::Late {
                    run: self.labels(&config, &row.probe, &row.sender, &row.seed),
                    folder: &a.folder,
                    latency: since(arrival_ms(a, seen_ms, stored_ms), row.submitted_ms),
                }
                .emit(&self.metrics);
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
        let t = token.to_string();
        let done = self
            .store
            .call(move |c| {
                record::finish(
                    c,
                    &t,
                    &Finish {
                        outcome: "missing",
                        final_ms: now_ms(),
                        ..Default::default()
                    },
                )
            })
            .await;
        match done {
            Ok(true) => ProbeEvent::Missing {
                run: self.labels(&config, &open.probe, &open.sender, &open.seed),
            }
            .emit(&self.metrics),
            Ok(false) => {}
            Err(e) => {
                tracing::error!(error = %e, "cannot record a missing probe; retrying");
                self.open.insert(token.to_string(), open);
            }
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

/// SMTP clients per sender, built once per config generation.
pub fn clients(config: &Config) -> HashMap<String, SmtpClient> {
    let mut out = HashMap::new();
    for (name, sender) in &config.senders {
        let Sender::Smtp(s) = sender;
        match SmtpClient::new(s) {
            Ok(c) => {
                out.insert(name.clone(), c);
            }
            Err(e) => tracing::error!(sender = %name, error = %e, "sender cannot be used"),
        }
    }
    out
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
    for name in used {
        let Some(seed) = config.seeds.get(name) else {
            continue;
        };
        for role in [FolderRole::Inbox, FolderRole::Spam] {
            match &seed.inbox {
                Inbox::Imap(cfg) => {
                    tracker.spawn(inbox::imap::watch(inbox::imap::ImapWatch {
                        seed: name.clone(),
                        cfg: cfg.clone(),
                        role,
                        spam_folder: seed.spam_folder.clone(),
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
    let clients = Arc::new(clients(config));
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
    clients: &Arc<HashMap<String, SmtpClient>>,
    ch: &Channels,
    tracker: &TaskTracker,
) {
    let Some(probe) = config.probes.get(probe_name) else {
        return;
    };
    for seed in &probe.seeds {
        let (config, clients, ch) = (config.clone(), clients.clone(), ch.clone());
        let (probe_name, seed) = (probe_name.to_string(), seed.clone());
        tracker.spawn(async move {
            if let Some(p) = config.probes.get(&probe_name) {
                send_one(&config, &probe_name, p, &seed, &clients, &ch).await;
            }
        });
    }
}

/// Compose, register, sign and send one probe message to one seed.
pub async fn send_one(
    config: &Config,
    probe_name: &str,
    probe: &Probe,
    seed_name: &str,
    clients: &HashMap<String, SmtpClient>,
    ch: &Channels,
) -> Option<String> {
    let seed = config.seeds.get(seed_name)?;
    let Sender::Smtp(sender) = config.senders.get(&probe.sender)?;
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
    };
    let (ack, acked) = oneshot::channel();
    ch.cmd.send(Cmd::Register { run, ack }).await.ok()?;
    if let Err(e) = acked.await.ok()? {
        tracing::error!(probe = probe_name, seed = seed_name, error = %e, "cannot store the probe; not sending it");
        return None;
    }
    let key = token.as_str().to_string();
    let fail = |reason: SendReason, detail: String| Cmd::SendFailed {
        token: key.clone(),
        failure: SendFailure {
            reason,
            detail,
            attempts: 0,
        },
    };

    // Addresses were validated at config load; a failure here is local.
    let parsed: Result<(Mailbox, Option<Mailbox>, Mailbox, Address, Address), String> = (|| {
        let from: Address = sender.from.parse().map_err(|e| format!("{e}"))?;
        let to: Address = seed.address.parse().map_err(|e| format!("{e}"))?;
        let reply = match &sender.reply_to {
            Some(r) => Some(Mailbox::new(None, r.parse().map_err(|e| format!("{e}"))?)),
            None => None,
        };
        Ok((
            Mailbox::new(Some(probe.product.clone()), from.clone()),
            reply,
            Mailbox::new(None, to.clone()),
            from,
            to,
        ))
    })();
    let (from_box, reply_box, to_box, from, to) = match parsed {
        Ok(v) => v,
        Err(e) => {
            let _ = ch.cmd.send(fail(SendReason::Local, e)).await;
            return None;
        }
    };
    let composed = compose::compose(
        &Parts {
            template: &probe.template,
            from: &from_box,
            reply_to: reply_box.as_ref(),
            to: &to_box,
            product: &probe.product,
            validity_minutes: probe.code_validity.as_secs().div_ceil(60),
            probe_header: probe.probe_header,
            date: SystemTime::now(),
        },
        token,
        code,
    );
    let mut bytes = match composed {
        Ok(c) => c.bytes,
        Err(e) => {
            let _ = ch.cmd.send(fail(SendReason::Local, e.to_string())).await;
            return None;
        }
    };
    if let Some(dkim) = &sender.dkim {
        match super::sign::sign(&bytes, dkim) {
            Ok(signed) => bytes = signed,
            Err(e) => {
                let _ = ch.cmd.send(fail(SendReason::Local, e)).await;
                return None;
            }
        }
    }
    let Some(client) = clients.get(&probe.sender) else {
        let _ = ch
            .cmd
            .send(fail(SendReason::Local, "sender could not be set up".into()))
            .await;
        return None;
    };
    let cmd = match client.send(&from, &to, &bytes).await {
        Ok(sent) => Cmd::Sent {
            token: key.clone(),
            sent,
            timeout: probe.timeout,
        },
        Err(failure) => Cmd::SendFailed {
            token: key.clone(),
            failure,
        },
    };
    let _ = ch.cmd.send(cmd).await;
    Some(key)
}
