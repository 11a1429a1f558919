//! `mailcanary probe`: run probes now and print their results.
//!
//! It uses the daemon's machinery (store, recorder, watchers, senders) in the
//! foreground: `--once` fires each selected probe once and exits when every
//! run is final; without it, probes run on their schedule and each result is
//! printed as it comes, until Ctrl-C.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::runner::{self, RunResult};
use crate::config::{self, Config};
use crate::metrics::Metrics;
use crate::store::Store;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// The main config file.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Fire each probe once, wait for every result, print them and exit
    /// (0 when all landed in the inbox, 1 otherwise).
    #[arg(long)]
    pub once: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Probes to run (default: all).
    pub names: Vec<String>,
}

/// Run the command; returns the process exit code.
pub async fn run(args: ProbeArgs) -> u8 {
    let mut config = match config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            for line in e.to_string().lines() {
                eprintln!("error: {line}");
            }
            return 2;
        }
    };
    for name in &args.names {
        if !config.probes.contains_key(name) {
            let known: Vec<&String> = config.probes.keys().collect();
            eprintln!("error: no probe named {name:?}; configured: {known:?}");
            return 2;
        }
    }
    if !args.names.is_empty() {
        config.probes.retain(|k, _| args.names.contains(k));
    }
    let config = Arc::new(config);
    let state_dir = config.daemon.state_dir.clone();
    let store = match tokio::task::spawn_blocking(move || Store::open(&state_dir)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            return 1;
        }
        Err(_) => return 1,
    };
    let stop = CancellationToken::new();
    let tracker = TaskTracker::new();
    let (_config_tx, config_rx) = watch::channel(config.clone());
    let channels = match runner::start_recorder(
        config_rx,
        store,
        Arc::new(Metrics::new()),
        &tracker,
        stop.clone(),
    )
    .await
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    let mut results = channels.results.subscribe();
    runner::spawn_watchers(&config, &channels, &tracker, &stop);

    let code = if args.once {
        once(&config, &channels, &tracker, &mut results, args.format).await
    } else {
        runner::spawn_schedulers(&config, &channels, &tracker, &stop);
        follow(&mut results, args.format).await
    };
    stop.cancel();
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
    code
}

async fn once(
    config: &Arc<Config>,
    ch: &runner::Channels,
    tracker: &TaskTracker,
    results: &mut broadcast::Receiver<RunResult>,
    format: Format,
) -> u8 {
    // Give the watchers a moment to connect so the first arrival is seen live.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let clients = Arc::new(runner::Senders::new(config, &ch.holds));
    // Results still to come per (probe, seed): one per send, `burst` sends a round.
    let mut expected: BTreeMap<(String, String), u32> = BTreeMap::new();
    for (name, p) in &config.probes {
        runner::fire(config, name, &clients, ch, tracker);
        for s in &p.seeds {
            expected.insert((name.clone(), s.clone()), p.burst.max(1));
        }
    }
    let longest = config
        .probes
        .values()
        .map(|p| p.timeout + p.burst_spacing * p.burst.saturating_sub(1))
        .max()
        .unwrap_or_default();
    let deadline = tokio::time::Instant::now() + longest + Duration::from_secs(30);
    let mut got = Vec::new();
    while !expected.is_empty() {
        match tokio::time::timeout_at(deadline, results.recv()).await {
            Ok(Ok(r)) => {
                let key = (r.probe.clone(), r.seed.clone());
                let Some(left) = expected.get_mut(&key) else {
                    continue;
                };
                *left -= 1;
                if *left == 0 {
                    expected.remove(&key);
                }
                if format == Format::Text {
                    println!("{}", line(&r));
                }
                got.push(r);
            }
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(_)) | Err(_) => break,
        }
    }
    if format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&got).unwrap_or_else(|_| "[]".into())
        );
    }
    for ((probe, seed), left) in &expected {
        eprintln!("warning: {left} result(s) of probe {probe} → {seed} missing at the deadline");
    }
    let all_inbox = expected.is_empty() && got.iter().all(|r| r.outcome == "inbox");
    if all_inbox {
        0
    } else {
        1
    }
}

async fn follow(results: &mut broadcast::Receiver<RunResult>, format: Format) -> u8 {
    loop {
        let r = tokio::select! {
            r = results.recv() => r,
            _ = tokio::signal::ctrl_c() => return 0,
        };
        match r {
            Ok(r) if format == Format::Json => {
                println!("{}", serde_json::to_string(&r).unwrap_or_default())
            }
            Ok(r) => println!("{}", line(&r)),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                eprintln!("warning: {n} results not shown (output too slow)")
            }
            Err(_) => return 1,
        }
    }
}

/// One support-safe line per result.
fn line(r: &RunResult) -> String {
    let colour = std::io::stdout().is_terminal();
    let outcome = match (colour, r.outcome.as_str()) {
        (true, "inbox") => format!("\x1b[32m{}\x1b[0m", r.outcome),
        (true, _) => format!("\x1b[31m{}\x1b[0m", r.outcome),
        (false, _) => r.outcome.clone(),
    };
    let mut s = format!("{} → {} ({}): {outcome}", r.probe, r.seed, r.provider);
    if let Some(reason) = &r.reason {
        s.push_str(&format!(" ({reason})"));
    }
    if let Some(l) = r.latency_seconds {
        s.push_str(&format!(" in {l:.2} s"));
    }
    if let Some(f) = &r.folder {
        s.push_str(&format!(", folder {f}"));
    }
    if let Some(t) = &r.tab {
        s.push_str(&format!(", tab {t}"));
    }
    if !r.auth.is_empty() {
        let v: Vec<String> = r
            .auth
            .iter()
            .filter(|(m, _)| m.as_str() != "arc")
            .map(|(m, v)| format!("{m}={v}"))
            .collect();
        s.push_str(&format!(", {}", v.join(" ")));
    }
    if let Some(score) = r.spam_score {
        s.push_str(&format!(", spam score {score}"));
    }
    if let Some(code) = &r.code {
        s.push_str(&format!(", code {code}"));
    }
    s
}
