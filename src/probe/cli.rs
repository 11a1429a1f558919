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

use super::outcome::Outcome;
use super::pipeline::Pipeline;
use super::result::RunResult;
use super::scheduler;
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
    let pipeline = match Pipeline::start(
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
    let mut results = pipeline.channels.results.subscribe();
    pipeline.watch(&config, &tracker, &stop);

    let code = if args.once {
        once(&config, &pipeline, &tracker, &mut results, args.format).await
    } else {
        pipeline.schedule(&config, &tracker, &stop);
        follow(&mut results, args.format).await
    };
    stop.cancel();
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
    code
}

async fn once(
    config: &Arc<Config>,
    pipeline: &Pipeline,
    tracker: &TaskTracker,
    results: &mut broadcast::Receiver<RunResult>,
    format: Format,
) -> u8 {
    // Give the watchers a moment to connect so the first arrival is seen live.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let clients = pipeline.senders(config);
    // Results still to come per (probe, seed): one per send, `burst` sends a round.
    let mut expected: BTreeMap<(String, String), u32> = BTreeMap::new();
    for (name, p) in &config.probes {
        let backlog = super::send::Backlog::default();
        scheduler::fire(
            config,
            name,
            &clients,
            &pipeline.channels,
            tracker,
            &backlog,
        );
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
    } else {
        for summary in burst_summaries(config, &got) {
            println!("{summary}");
        }
    }
    for ((probe, seed), left) in &expected {
        eprintln!("warning: {left} result(s) of probe {probe} → {seed} missing at the deadline");
    }
    let all_inbox = expected.is_empty() && got.iter().all(|r| r.outcome == Outcome::Inbox);
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

/// One line per resend burst (a probe with `burst` > 1, per seed): how many
/// of its codes arrived, and whether in the order they were requested, since
/// a user who asked twice types the code that arrived last.
fn burst_summaries(config: &Config, got: &[RunResult]) -> Vec<String> {
    let mut groups: BTreeMap<(&str, &str), Vec<&RunResult>> = BTreeMap::new();
    for r in got {
        groups.entry((&r.probe, &r.seed)).or_default().push(r);
    }
    let mut out = Vec::new();
    for ((probe, seed), mut runs) in groups {
        let Some(sent) = config.probes.get(probe).map(|p| p.burst).filter(|&b| b > 1) else {
            continue;
        };
        let mut outcomes: BTreeMap<Outcome, usize> = BTreeMap::new();
        for r in &runs {
            *outcomes.entry(r.outcome).or_default() += 1;
        }
        // By name, as the line has always listed them.
        let mut counts: Vec<String> = outcomes.iter().map(|(o, n)| format!("{o} {n}")).collect();
        counts.sort();
        // Request order is the order the codes were made (each message's
        // Date): an app's mail is matched to the oldest open run, not to the
        // request that made it. Arrival is when the mailbox stored the
        // message, else when it was seen.
        runs.retain(|r| r.created_at_ms.is_some());
        runs.sort_by_key(|r| (r.created_at_ms, r.submitted_at_ms));
        let arrivals: Vec<Option<i64>> = runs
            .iter()
            .map(|r| r.stored_at_ms.or(r.seen_at_ms))
            .collect();
        let order = burst_order(&arrivals);
        let arrived = got_arrived(&outcomes);
        out.push(format!(
            "burst {probe} → {seed}: {sent} requested, {arrived} arrived ({}); {order}",
            counts.join(", ")
        ));
    }
    out
}

/// Results that reached a mailbox (whatever the folder, in time or not).
fn got_arrived(outcomes: &BTreeMap<Outcome, usize>) -> usize {
    outcomes
        .iter()
        .filter(|(o, _)| o.has_latency())
        .map(|(_, n)| n)
        .sum()
}

/// Arrival times in request order (None: never arrived) → what the user saw.
fn burst_order(arrivals: &[Option<i64>]) -> String {
    let seen: Vec<(usize, i64)> = arrivals
        .iter()
        .enumerate()
        .filter_map(|(i, a)| a.map(|t| (i, t)))
        .collect();
    let Some(&(newest, newest_at)) = seen.last() else {
        return "none arrived".into();
    };
    if seen.len() < 2 {
        return format!("only code #{} of {} arrived", newest + 1, arrivals.len());
    }
    let stale: Vec<String> = seen
        .iter()
        .filter(|&&(i, t)| i < newest && t > newest_at)
        .map(|&(i, _)| format!("#{}", i + 1))
        .collect();
    if !stale.is_empty() {
        return format!(
            "out of order: code {} arrived after the newest (#{}), so a user may type a stale code",
            stale.join(", "),
            newest + 1
        );
    }
    if seen.windows(2).all(|w| w[0].1 <= w[1].1) {
        "arrived in the order requested".into()
    } else {
        format!(
            "out of order, but the newest (#{}) arrived last",
            newest + 1
        )
    }
}

/// One support-safe line per result.
fn line(r: &RunResult) -> String {
    let colour = std::io::stdout().is_terminal();
    let outcome = match (colour, r.outcome) {
        (true, Outcome::Inbox) => format!("\x1b[32m{}\x1b[0m", r.outcome),
        (true, _) => format!("\x1b[31m{}\x1b[0m", r.outcome),
        (false, _) => r.outcome.to_string(),
    };
    let mut s = format!("{} → {} ({}): {outcome}", r.probe, r.seed, r.provider);
    match (&r.reason, &r.status, &r.reply_code) {
        (Some(reason), None, None) => s.push_str(&format!(" ({reason})")),
        (reason, status, code) => {
            let parts: Vec<String> = [
                reason.map(str::to_string),
                code.map(|c| c.to_string()),
                status.clone(),
            ]
            .into_iter()
            .flatten()
            .collect();
            if !parts.is_empty() {
                s.push_str(&format!(" ({})", parts.join(" ")));
            }
        }
    }
    if let Some(mta) = &r.remote_mta {
        s.push_str(&format!(" by {mta}"));
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

#[cfg(test)]
mod tests {
    use super::burst_order;

    #[test]
    fn burst_order_tells_what_the_user_saw() {
        assert_eq!(
            burst_order(&[Some(10), Some(20), Some(30)]),
            "arrived in the order requested"
        );
        assert_eq!(
            burst_order(&[Some(40), Some(20), Some(30)]),
            "out of order: code #1 arrived after the newest (#3), so a user may type a stale code"
        );
        assert_eq!(
            burst_order(&[Some(20), Some(10), Some(30)]),
            "out of order, but the newest (#3) arrived last"
        );
        assert_eq!(
            burst_order(&[Some(50), None, Some(30)]),
            "out of order: code #1 arrived after the newest (#3), so a user may type a stale code"
        );
        assert_eq!(
            burst_order(&[None, Some(5), None]),
            "only code #2 of 3 arrived"
        );
        assert_eq!(burst_order(&[None, None]), "none arrived");
        assert_eq!(burst_order(&[]), "none arrived");
    }
}
