//! The daemon's lifecycle: start, reload, drain, stop.
//!
//! [`run`] takes its shutdown and reload triggers as parameters, so `main`
//! wires them to signals and tests can drive them directly. Stopping cancels
//! the workers and waits for in-flight work up to `daemon.shutdown_grace`.
//!
//! Each step is reported to the service manager through [`crate::notify`]
//! (a no-op outside systemd): READY=1 once serving, RELOADING=1 … READY=1
//! around a reload, STOPPING=1 on the way out, and watchdog pings while the
//! store answers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{self, Config};
use crate::http::{self, HttpState};
use crate::ingest::Ingest;
use crate::metrics::Metrics;
use crate::notify;
use crate::probe::pipeline::Pipeline;
use crate::store::{Store, StoreError};

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The embedded store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The HTTP endpoint could not bind its address.
    #[error("cannot listen on {addr}: {source} (set http.listen to a free address)")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// What a running daemon tells its starter.
#[derive(Debug, Clone, Copy)]
pub struct Started {
    /// The address `/metrics` is served on (the real port when 0 was asked for).
    pub http: SocketAddr,
}

/// Run the daemon with an already loaded `config` until `shutdown` is
/// cancelled. Each message on `reload` re-reads the config file; an invalid
/// new config keeps the old one running.
pub async fn run(
    config: Config,
    shutdown: CancellationToken,
    mut reload: mpsc::Receiver<()>,
    started: impl FnOnce(Started),
) -> Result<(), DaemonError> {
    let metrics = Arc::new(Metrics::new());
    reload_succeeded(&metrics);
    log_warnings(&config);

    let state_dir = config.daemon.state_dir.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&state_dir))
        .await
        .map_err(|_| StoreError::Closed)??;
    let listener = TcpListener::bind(config.http.listen)
        .await
        .map_err(|source| DaemonError::Listen {
            addr: config.http.listen,
            source,
        })?;
    let http_addr = listener
        .local_addr()
        .map_err(|source| DaemonError::Listen {
            addr: config.http.listen,
            source,
        })?;

    let http_state = Arc::new(HttpState::new(metrics.clone(), config.http.web.clone()));
    let scheme = scheme(&config);
    let grace = config.daemon.shutdown_grace;
    let http_stop = CancellationToken::new();
    let http_task = tokio::spawn(http::serve(
        listener,
        http_state.clone(),
        http_stop.clone(),
        grace,
    ));

    // The recorder sees config changes through this channel; schedulers and
    // watchers belong to one config generation and are replaced on reload.
    let (config_tx, config_rx) = watch::channel(Arc::new(config));
    let tracker = TaskTracker::new();
    let recorder_stop = CancellationToken::new();
    let recorder_tracker = TaskTracker::new();
    // The app's mailboxes ([reports.*], [bounces.*]) have their own stage,
    // stopped with the recorder.
    let ingest = Ingest::start(
        config_rx.clone(),
        store.clone(),
        metrics.clone(),
        &recorder_tracker,
        recorder_stop.clone(),
    );
    let pipeline = Pipeline::start(
        config_rx,
        store.clone(),
        metrics.clone(),
        &recorder_tracker,
        recorder_stop.clone(),
    )
    .await?;
    let mut generation = start_generation(
        &config_tx.borrow(),
        &pipeline,
        &ingest,
        &store,
        &metrics,
        &tracker,
    );
    http_state.set_status(crate::status::Source::new(
        store.clone(),
        config_tx.borrow().clone(),
    ));

    let watchdog_stop = CancellationToken::new();
    let watchdog = notify::watchdog_interval()
        .map(|every| tokio::spawn(watchdog(every, store.clone(), watchdog_stop.clone())));

    let trim_stop = CancellationToken::new();
    let trim = tokio::spawn(periodically(
        crate::memory::TRIM_EVERY,
        trim_stop.clone(),
        || async {
            let _ = tokio::task::spawn_blocking(crate::memory::trim).await;
        },
    ));

    http_state.ready.store(true, Ordering::Release);
    tracing::info!(
        metrics = %format!("{scheme}://{http_addr}/metrics"),
        basic_auth = config_tx.borrow().http.web.as_ref().is_some_and(|w| !w.users.is_empty()),
        probes = config_tx.borrow().probes.len(),
        seeds = config_tx.borrow().seeds.len(),
        "mailcanary started"
    );
    notify::ready(&serving_status(&config_tx.borrow(), http_addr));
    started(Started { http: http_addr });

    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(()) = reload.recv() => {
                notify::reloading("reloading the configuration");
                let current = config_tx.borrow().clone();
                match reload_config(&current).await {
                    Ok(new) => {
                        reload_succeeded(&metrics);
                        log_warnings(&new);
                        tracing::info!(path = %new.path.display(), probes = new.probes.len(), "configuration reloaded");
                        if scheme != self::scheme(&new) {
                            tracing::info!(scheme = self::scheme(&new), "the HTTP endpoint changes scheme from the next connection on");
                        }
                        http_state.set_web(new.http.web.clone());
                        config_tx.send_replace(Arc::new(new));
                        http_state.set_status(crate::status::Source::new(
                            store.clone(),
                            config_tx.borrow().clone(),
                        ));
                        generation.cancel();
                        generation = start_generation(&config_tx.borrow(), &pipeline, &ingest, &store, &metrics, &tracker);
                        notify::ready(&serving_status(&config_tx.borrow(), http_addr));
                    }
                    Err(reason) => {
                        metrics.config_last_reload_successful.set(0);
                        tracing::error!(path = %current.path.display(), %reason, "configuration reload failed; keeping the running configuration");
                        notify::ready(&format!(
                            "reload failed, running the previous configuration (see the log); {}",
                            serving_status(&current, http_addr)
                        ));
                    }
                }
            }
        }
    }

    tracing::info!(grace = %humantime::format_duration(grace), "shutting down");
    notify::stopping(&format!(
        "stopping: draining in-flight work (at most {})",
        humantime::format_duration(grace)
    ));
    http_state.ready.store(false, Ordering::Release);
    // Stop scheduling and watching, let sends in flight finish and report to
    // the recorder, then stop the recorder. What does not finish in time is
    // still in the store and resumes on the next start.
    generation.cancel();
    tracker.close();
    let deadline = tokio::time::Instant::now() + grace;
    if tokio::time::timeout_at(deadline, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(tasks = tracker.len(), "in-flight work did not finish within the grace period; it resumes from the store on the next start");
    }
    drop(pipeline);
    drop(ingest);
    recorder_stop.cancel();
    recorder_tracker.close();
    let _ = tokio::time::timeout_at(
        deadline + std::time::Duration::from_secs(1),
        recorder_tracker.wait(),
    )
    .await;
    http_stop.cancel();
    let _ = http_task.await;
    watchdog_stop.cancel();
    if let Some(w) = watchdog {
        let _ = w.await;
    }
    trim_stop.cancel();
    let _ = trim.await;
    drop(store);
    tracing::info!("stopped");
    Ok(())
}

/// Read the config file again. Settings that need a restart keep their
/// running values, with a warning.
async fn reload_config(current: &Config) -> Result<Config, config::ConfigError> {
    let path: PathBuf = current.path.clone();
    let mut new = tokio::task::spawn_blocking(move || config::load(&path))
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
    if new.http.listen != current.http.listen {
        tracing::warn!(running = %current.http.listen, configured = %new.http.listen, "http.listen changes on restart only");
        new.http.listen = current.http.listen;
    }
    if new.daemon.state_dir != current.daemon.state_dir {
        tracing::warn!(running = %current.daemon.state_dir.display(), configured = %new.daemon.state_dir.display(), "daemon.state_dir changes on restart only");
        new.daemon.state_dir = current.daemon.state_dir.clone();
    }
    Ok(new)
}

/// Start the schedulers, watchers and domain audits of one config generation.
fn start_generation(
    config: &Arc<Config>,
    pipeline: &Pipeline,
    ingest: &Ingest,
    store: &Store,
    metrics: &Arc<Metrics>,
    tracker: &TaskTracker,
) -> CancellationToken {
    let stop = CancellationToken::new();
    // Series of probes, seeds and domains a reload removed go; the recorder
    // drops late events about them (`ProbeEvent::emit_if_configured`).
    metrics.forget_unconfigured(
        &|label, value| config.runs(label, value),
        config.domains.keys().cloned().collect(),
    );
    crate::probe::events::init_series(metrics, config);
    pipeline.watch(config, tracker, &stop);
    ingest.watch(config, tracker, &stop);
    pipeline.schedule(config, tracker, &stop);
    crate::audit::schedule::spawn(config, store, metrics, tracker, &stop);
    stop
}

/// `https` when the web config has a certificate.
fn scheme(config: &Config) -> &'static str {
    match &config.http.web {
        Some(w) if w.tls.is_some() => "https",
        _ => "http",
    }
}

/// The `STATUS=` line while running.
fn serving_status(config: &Config, addr: SocketAddr) -> String {
    format!(
        "serving {}://{addr}/metrics; {} probes, {} seeds, {} domains",
        scheme(config),
        config.probes.len(),
        config.seeds.len(),
        config.domains.len()
    )
}

/// Ping the service manager's watchdog every `every` (half its timeout)
/// while the store thread answers within that time: a wedged runtime or a
/// stuck store stops the pings and systemd restarts the service.
async fn watchdog(every: std::time::Duration, store: Store, stop: CancellationToken) {
    tracing::info!(every = %humantime::format_duration(every), "systemd watchdog enabled");
    let store = &store;
    periodically(every, stop, || async move {
        match tokio::time::timeout(every, store.schema_version()).await {
            Ok(Ok(_)) => notify::watchdog(),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "store check failed; not pinging the watchdog")
            }
            Err(_) => tracing::warn!("store did not answer in time; not pinging the watchdog"),
        }
    })
    .await
}

/// Runs `job` at once and then every `every` until `stop`; a job that
/// overruns delays the next tick instead of causing a burst.
async fn periodically<F, Fut>(every: std::time::Duration, stop: CancellationToken, mut job: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        job().await;
    }
}

fn reload_succeeded(metrics: &Metrics) {
    metrics.config_last_reload_successful.set(1);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    metrics.config_last_reload_success_timestamp.set(now);
}

/// Raise the soft open-file limit to the hard one, as Go programs do at
/// start: every watched IMAP folder holds a connection, and the soft limit
/// of 1024 many shells and service managers set would refuse the
/// 1,025th. Warns when the limit is still short of what `config` needs
/// (its IMAP connections and 256 more for the store, HTTP, DNS and SMTP).
pub fn raise_open_files_limit(config: &Config) {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let lim = getrlimit(Resource::Nofile);
    let mut now = lim.current;
    if let (Some(soft), Some(hard)) = (lim.current, lim.maximum) {
        if soft < hard {
            let raised = rustix::process::Rlimit {
                current: Some(hard),
                maximum: Some(hard),
            };
            match setrlimit(Resource::Nofile, raised) {
                Ok(()) => now = Some(hard),
                Err(e) => tracing::debug!(error = %e, "cannot raise the open-file limit"),
            }
        }
    }
    let needed = imap_connections(config) + 256;
    if let Some(limit) = now.filter(|l| *l < needed as u64) {
        tracing::warn!(
            limit,
            needed,
            "the open-file limit is below what the IMAP watchers need; raise it (LimitNOFILE= under systemd, ulimit -n)"
        );
    }
}

/// The IMAP connections `config` keeps open: one per watched folder
/// (INBOX and spam of every probe seed, INBOX of every bounce or reports
/// mailbox).
fn imap_connections(config: &Config) -> usize {
    use crate::config::Inbox;
    let probe_seeds: std::collections::BTreeSet<&String> = config
        .probes
        .values()
        .flat_map(|p| p.seeds.iter())
        .collect();
    let imap = |inbox: &Inbox| matches!(inbox, Inbox::Imap(_));
    let seeds = probe_seeds
        .iter()
        .filter_map(|n| config.seeds.get(*n))
        .filter(|s| imap(&s.inbox))
        .count();
    let mailboxes = config
        .senders
        .values()
        .filter_map(config::Sender::bounce_mailbox)
        .filter_map(|n| config.seeds.get(n))
        .filter(|s| imap(&s.inbox))
        .count()
        + config
            .mailboxes
            .values()
            .filter(|m| imap(&m.inbox.inbox))
            .count();
    2 * seeds + mailboxes
}

fn log_warnings(config: &Config) {
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
}
