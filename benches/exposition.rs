//! `/metrics` at scale: the series a daemon with many seeds exports, and the
//! time to render them.
//!
//! `cargo bench --bench exposition` (no stack needed). Builds the metrics of
//! SEEDS seeds × PROBES probes (default 1,000 × 5; `MAILCANARY_BENCH_SEEDS`,
//! `MAILCANARY_BENCH_PROBES`) the way the daemon does: every configured
//! counter pre-created by `init_series`, then one delivered result per
//! probe and seed through the same event code the recorder uses. Prints the
//! series count, the body size and the median of `RENDERS` renders, then the
//! same for a 10,000-series configuration.

use std::time::{Duration, Instant};

use mailcanary::metrics::Metrics;
use mailcanary::probe::evaluate::Delivery;
use mailcanary::probe::events::{init_series, ProbeEvent};
use mailcanary::probe::outcome::{Arrived, Ended, Outcome};
use mailcanary::verdict::reverify::LocalDkim;

const RENDERS: usize = 21;

fn main() {
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let seeds = env("MAILCANARY_BENCH_SEEDS", 1_000);
    let probes = env("MAILCANARY_BENCH_PROBES", 5);
    run(seeds, probes);
    // About 10,000 series: the size the peers are compared at.
    let per_pair = series_per_pair();
    run((10_000 / per_pair).max(1), 1);
}

/// Series one (probe, seed) pair adds after one delivered result.
fn series_per_pair() -> usize {
    let (one, _) = build(1, 1);
    let (two, _) = build(2, 1);
    count(&two.render()) - count(&one.render())
}

fn count(body: &str) -> usize {
    body.lines().filter(|l| !l.starts_with('#')).count()
}

fn run(seeds: usize, probes: usize) {
    let (m, _dir) = build(seeds, probes);
    let body = m.render();
    let mut times: Vec<Duration> = (0..RENDERS)
        .map(|_| {
            let t = Instant::now();
            let body = m.render();
            let e = t.elapsed();
            std::hint::black_box(body);
            e
        })
        .collect();
    times.sort();
    println!(
        "{seeds} seeds x {probes} probes: {} series, {} bytes, render median {:.2} ms (min {:.2}, max {:.2}; {RENDERS} renders)",
        count(&body),
        body.len(),
        ms(times[RENDERS / 2]),
        ms(times[0]),
        ms(times[RENDERS - 1]),
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The metrics of a configuration with `seeds` Maildir seeds and `probes`
/// probes, each probe sending to every seed, after one delivery each.
fn build(seeds: usize, probes: usize) -> (Metrics, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let template = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/probes/templates/verification-en.toml"
    );
    let mut toml = format!(
        "[daemon]\nstate_dir = \"{}/state\"\n\n[senders.noreply]\nkind = \"smtp\"\nhost = \"127.0.0.1\"\nport = 25\ntls = \"none\"\nfrom = \"no-reply@example.com\"\n\n",
        dir.path().display()
    );
    let providers = ["gmail", "outlook", "qq", "netease", "yahoo"];
    for s in 0..seeds {
        toml.push_str(&format!(
            "[seeds.s{s}]\nprovider = \"{}\"\naddress = \"s{s}@example.net\"\nkind = \"maildir\"\npath = \"/var/mail/s{s}\"\n\n",
            providers[s % providers.len()]
        ));
    }
    let names: Vec<String> = (0..seeds).map(|s| format!("\"s{s}\"")).collect();
    for p in 0..probes {
        toml.push_str(&format!(
            "[probes.p{p}]\nsender = \"noreply\"\nseeds = [{}]\nevery = \"5m\"\ntemplate = \"{template}\"\n\n",
            names.join(", ")
        ));
    }
    let path = dir.path().join("mailcanary.toml");
    std::fs::write(&path, toml).unwrap();
    let config = mailcanary::config::load(&path).expect("generated config");
    let m = Metrics::new();
    init_series(&m, &config);
    let raw = b"Authentication-Results: mx.example.net; spf=pass smtp.mailfrom=example.com; dkim=pass header.d=example.com; dmarc=pass header.from=example.com\r\nFrom: no-reply@example.com\r\n\r\nYour code is 123456\r\n";
    let verdict = mailcanary::verdict::judge(raw, Some("mx.example.net"));
    for (p, probe) in config.probes.keys().enumerate() {
        for (s, seed) in config.probes[probe].seeds.iter().enumerate() {
            let provider = config.seeds[seed].provider.clone();
            let latency = Duration::from_millis(500 + ((p * 31 + s * 17) % 5_000) as u64);
            let ended = Ended {
                token: format!("t{p}-{s}"),
                probe: probe.clone(),
                sender: "noreply".into(),
                seed: seed.clone(),
                provider,
                outcome: Outcome::Inbox,
                failure: None,
                bounce: None,
                arrived: Some(Arrived {
                    delivery: Delivery {
                        outcome: Outcome::Inbox,
                        tab: None,
                        latency,
                        seen_latency: latency,
                        after_expiry: false,
                    },
                    folder: "INBOX".into(),
                    seen_tab: None,
                    verdict: verdict.clone(),
                    dkim_local: LocalDkim::Pass,
                    seen_ms: 0,
                    stored_ms: None,
                    created_ms: None,
                }),
                submitted_ms: Some(0),
                final_ms: 0,
            };
            ProbeEvent::Ended(&ended).emit(&m);
        }
    }
    (m, dir)
}
