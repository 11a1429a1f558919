//! The scheduler: a timer per probe; each firing sends one message per seed
//! (or a resend burst), registering each run with the recorder before its
//! message leaves.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lettre::message::Mailbox;
use lettre::Address;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::record::NewRun;
use super::recorder::{Channels, Cmd};
use super::send::{Backlog, SendFailure, SendReason, SmtpClient, Waiting};
use crate::config::{Config, Probe, Sender};
use crate::message::compose::{self, Code, Parts, Token};

/// Sender name → the moment it may be used again.
pub type Holds = Arc<std::sync::Mutex<HashMap<String, std::time::Instant>>>;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A ready client for one sender.
pub enum Client {
    Smtp(SmtpClient),
    // Boxed: an app trigger carries its whole HTTP client and settings.
    Http(Box<super::trigger::HttpTrigger>),
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
                Sender::Http(h) => {
                    super::trigger::HttpTrigger::new(h).map(|t| Client::Http(Box::new(t)))
                }
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

/// Start one scheduler per probe.
pub fn spawn_schedulers(
    config: &Arc<Config>,
    clients: &Arc<Senders>,
    ch: &Channels,
    tracker: &TaskTracker,
    stop: &CancellationToken,
) {
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
            let backlog = Backlog::default();
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.cancelled() => return,
                }
                // A round may start while part of the last one waits for
                // its turn (a relay slowed for a moment), not while a
                // whole round's worth does: at most two rounds wait.
                let waiting = backlog.waiting();
                if waiting >= probe.seeds.len().max(1) {
                    tracing::warn!(
                        probe = %name,
                        sender = %probe.sender,
                        waiting,
                        "a round's worth of this probe's sends has not reached the relay yet; skipping this round"
                    );
                    continue;
                }
                fire(&config, &name, &clients, &ch, &t, &backlog);
            }
        });
    }
}

/// Send one round of `probe` now: one message per seed. Returns at once; the
/// sends run on `tracker`, each counted in `backlog` until it reaches the relay.
pub fn fire(
    config: &Arc<Config>,
    probe_name: &str,
    clients: &Arc<Senders>,
    ch: &Channels,
    tracker: &TaskTracker,
    backlog: &Backlog,
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
        let mut waiting = backlog.enter();
        tracker.spawn(async move {
            let Some(p) = config.probes.get(&probe_name) else {
                return;
            };
            if p.burst <= 1 {
                send_one(&config, &probe_name, p, &seed, &clients, &ch, None, waiting).await;
                return;
            }
            // An impatient user: N requests, `burst_spacing` apart.
            let burst = Token::random(&mut rand::rng()).as_str().to_string();
            for i in 0..p.burst {
                if i > 0 {
                    tokio::time::sleep(p.burst_spacing).await;
                }
                // The first send of the burst decides whether the round waits.
                let w = std::mem::take(&mut waiting);
                send_one(
                    &config,
                    &probe_name,
                    p,
                    &seed,
                    &clients,
                    &ch,
                    Some(&burst),
                    w,
                )
                .await;
            }
        });
    }
}

/// Register one run, then send its message (SMTP) or trigger the app (HTTP)
/// for one seed. Returns the run's token. `waiting` is uncounted once the
/// message reaches the relay (or the send ends).
#[allow(clippy::too_many_arguments)]
pub async fn send_one(
    config: &Config,
    probe_name: &str,
    probe: &Probe,
    seed_name: &str,
    clients: &Senders,
    ch: &Channels,
    burst: Option<&str>,
    waiting: Waiting,
) -> Option<String> {
    let seed = config.seeds.get(seed_name)?;
    let sender = config.senders.get(&probe.sender)?;
    let created = now_ms();
    let (token, code) = {
        let mut rng = rand::rng();
        (
            Token::timed(created.max(0) as u64, &mut rng),
            Code::random(&mut rng, probe.code_length),
        )
    };
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
            match smtp_message(s, seed, probe, token, code).await {
                Ok((from, to, bytes)) => client.send_counted(&from, &to, &bytes, waiting).await,
                Err(f) => Err(f),
            }
        }
        (Sender::Http(_), Some(Client::Http(app))) => {
            drop(waiting); // an app has no turns: the request starts now
            app.trigger(&seed.address).await
        }
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
async fn smtp_message(
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
        Some(dkim) => dkim
            .sign_off_runtime(composed.bytes)
            .await
            .map_err(local_failure)?,
        None => composed.bytes,
    };
    // Bounces go to the envelope sender (RFC 5321 §4.5.5), which is the
    // return path when one is set.
    let envelope_from = match &sender.return_path {
        Some(r) => addr(r)?,
        None => from,
    };
    Ok((envelope_from, to, bytes))
}
