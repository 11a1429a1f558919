//! Detection overhead and idle footprint, on the real loopback stack.
//!
//! `cargo bench --bench detection` (as root; uses `MAILCANARY_STACK` or
//! brings a stack up). Prints:
//! 1. detection overhead = mailcanary's first-seen time − the moment the
//!    message reached the mailbox (the Maildir file's mtime), p50/p90/p99/max,
//!    over `MAILCANARY_BENCH_PROBES` (default 100) probes each for IMAP IDLE
//!    and for the Maildir (inotify) watcher;
//! 2. the daemon's RSS and CPU while idle with 100 watched IMAP seeds
//!    (200 IDLE connections: INBOX and Junk each).
//!
//! For the IMAP path the bench watches the seeds' Maildirs itself (inotify)
//! and stats each new file at once; for the Maildir path mailcanary reports
//! the file's mtime it read itself.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use common::{stack_config, template, Daemon, Stack};

fn main() {
    let n: usize = std::env::var("MAILCANARY_BENCH_PROBES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let stack = Stack::get();
    detection(stack, n);
    idle_footprint(stack, 100);
}

fn percentiles(name: &str, mut v: Vec<f64>) {
    v.sort_by(|a, b| a.total_cmp(b));
    let p = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{name:<22} n={:<4} p50={:>7.1} ms  p90={:>7.1} ms  p99={:>7.1} ms  max={:>7.1} ms",
        v.len(),
        p(0.5),
        p(0.9),
        p(0.99),
        v[v.len() - 1]
    );
}

/// Watch `dirs` with inotify; record token → file mtime (Unix ms) as files appear.
fn watch_maildirs(dirs: Vec<PathBuf>) -> Arc<Mutex<HashMap<String, i64>>> {
    let seen = Arc::new(Mutex::new(HashMap::new()));
    let out = seen.clone();
    let mut ino = inotify::Inotify::init().expect("inotify");
    let mut wds = HashMap::new();
    for d in &dirs {
        std::fs::create_dir_all(d).ok();
        let wd = ino
            .watches()
            .add(d, inotify::WatchMask::MOVED_TO | inotify::WatchMask::CREATE)
            .expect("watch");
        wds.insert(wd, d.clone());
    }
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            let Ok(events) = ino.read_events_blocking(&mut buf) else {
                return;
            };
            for e in events {
                let (Some(name), Some(dir)) = (e.name, wds.get(&e.wd)) else {
                    continue;
                };
                let path = dir.join(name);
                let (Ok(meta), Ok(raw)) = (std::fs::metadata(&path), std::fs::read(&path)) else {
                    continue;
                };
                let mtime = meta
                    .modified()
                    .unwrap()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_millis() as i64;
                if let Some(t) = mailcanary::message::find_token(&raw) {
                    out.lock().unwrap().insert(t, mtime);
                }
            }
        }
    });
    seen
}

fn detection(stack: &Stack, n: usize) {
    let maildir = |user: &str| PathBuf::from(stack.var("MAILDIR_PATTERN").replace("{user}", user));
    // Make sure the IMAP seeds' Maildirs exist before watching them.
    for user in ["seed1", "seed2"] {
        common::swaks(
            stack.addr("RELAY_OK"),
            &format!("{user}@seed.test"),
            &[],
            "warm-up",
        );
    }
    std::thread::sleep(Duration::from_secs(1));
    let mtimes = watch_maildirs(vec![
        maildir("seed1").join("new"),
        maildir("seed2").join("new"),
    ]);

    let probes = format!(
        "{}{}",
        common::probe(
            "bench-imap",
            "ok",
            &["imap1", "imaps2"],
            "30s",
            &template("verification-en")
        )
        .replace("every = \"1h\"", "every = \"1s\""),
        common::probe(
            "bench-maildir",
            "ok",
            &["md3", "md4"],
            "30s",
            &template("verification-en")
        )
        .replace("every = \"1h\"", "every = \"1s\""),
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bench.toml");
    std::fs::write(
        &cfg,
        stack_config(stack, &probes).replace("{dir}", &dir.path().display().to_string()),
    )
    .unwrap();
    let mut child = Command::new(common::bin())
        .args(["probe", "--format", "json", "--config"])
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("mailcanary probe");
    let (mut imap, mut md) = (Vec::new(), Vec::new());
    let (mut imap_pending, mut other) = (Vec::new(), 0usize);
    let started = Instant::now();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.map_while(Result::ok) {
        let Ok(r) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if r["outcome"] != "inbox" {
            other += 1;
            continue;
        }
        let seen = r["seen_at_ms"].as_i64().unwrap_or(0);
        if r["probe"] == "bench-maildir" && md.len() < n {
            md.push((seen - r["stored_at_ms"].as_i64().unwrap_or(seen)) as f64);
        } else if r["probe"] == "bench-imap" && imap.len() + imap_pending.len() < n {
            imap_pending.push((r["token"].as_str().unwrap_or("").to_string(), seen));
        }
        // File mtimes are recorded within milliseconds of delivery; IDLE reports ~0.5 s later.
        let known = mtimes.lock().unwrap();
        imap_pending.retain(|(t, seen)| match known.get(t) {
            Some(mtime) => {
                imap.push((seen - mtime) as f64);
                false
            }
            None => true,
        });
        drop(known);
        if (imap.len() >= n && md.len() >= n) || started.elapsed() > Duration::from_secs(600) {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    println!("detection overhead (first seen − Maildir file mtime), {:.0} s run, {other} non-inbox results", started.elapsed().as_secs_f64());
    percentiles("IMAP IDLE (Dovecot)", imap);
    percentiles("Maildir (inotify)", md);
}

fn proc_stat(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = stat.rsplit_once(") ").unwrap().1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    (ticks, rss_kib)
}

fn idle_footprint(stack: &Stack, seeds: usize) {
    let mut extra = String::new();
    let mut names = Vec::new();
    for i in 0..seeds {
        let user = format!("seed{}", i % 4 + 1);
        let name = format!("s{i:03}");
        extra.push_str(&format!(
            "[seeds.{name}]\nprovider = \"bench\"\naddress = \"{user}@seed.test\"\nauthserv_id = \"mx.seed.test\"\nkind = \"imap\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nusername = \"{user}@seed.test\"\npassword_file = \"{}\"\n\n",
            stack.addr("IMAP").port(),
            stack.dir.join("seed-password").display()
        ));
        names.push(name);
    }
    // Probes only start watchers for the seeds they use; this one fires once at start.
    let seeds_list: Vec<&str> = names.iter().map(String::as_str).collect();
    let probes = format!(
        "{extra}{}",
        common::probe(
            "idle",
            "ok",
            &seeds_list,
            "60s",
            &template("verification-en")
        )
        .replace("every = \"1h\"", "every = \"24h\"")
    );
    let d = Daemon::start(&stack_config(stack, &probes));
    let all_up = common::wait_until(Duration::from_secs(120), || {
        let (_, body) = d.get("/metrics");
        body.lines()
            .filter(|l| l.starts_with("mailcanary_inbox_up{") && l.ends_with(" 1"))
            .count()
            >= seeds
    });
    let done = common::wait_until(Duration::from_secs(120), || {
        let (_, body) = d.get("/metrics");
        body.lines()
            .filter(|l| l.starts_with("mailcanary_probe_results_total{"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap_or(0.0))
            .sum::<f64>()
            >= seeds as f64
    });
    std::thread::sleep(Duration::from_secs(10));
    let window = Duration::from_secs(30);
    let (t0, _) = proc_stat(d.pid());
    std::thread::sleep(window);
    let (t1, rss) = proc_stat(d.pid());
    let cpu = (t1 - t0) as f64 / 100.0 / window.as_secs_f64() * 100.0;
    println!(
        "idle with {seeds} IMAP seeds ({} IDLE connections; all up: {all_up}, first round done: {done}): RSS {:.1} MiB, CPU {cpu:.2} % of a core over {}s",
        seeds * 2,
        rss as f64 / 1024.0,
        window.as_secs()
    );
}
