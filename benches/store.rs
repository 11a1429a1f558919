//! The store after a year of running: its size, the prune and the
//! queries the daemon makes, at 1,000 seeds probed once a minute.
//!
//! `cargo bench --bench store` (no stack needed). One day of runs is
//! written through the daemon's own SQL (`record::insert`, `mark_sent`,
//! `finish`, `keep_notice`) with the verdict JSON of a real
//! Authentication-Results header, two senders, seeds spread over 20
//! provider labels and an outcome mix of 93 % inbox, 4 % spam, 2 %
//! missing, 1 % bounced. That day is copied forward by SQL to
//! `MAILCANARY_BENCH_DETAIL_DAYS` days of runs in full (default 4: the
//! default `daemon.run_detail`); a copy of it before them is moved into
//! slice counts by the recorder's own prune (`history::prune`), and those
//! counts are copied back to `MAILCANARY_BENCH_DAYS` days in all (default
//! 365). Prints the file size by table and index, the time of the
//! recorder's prune (every 10 minutes: one slice of runs, one slice of
//! counts), and the medians of the daemon's queries.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use mailcanary::message::compose::Token;
use mailcanary::probe::evaluate::Delivery;
use mailcanary::probe::history::{self, Cuts, SLICE_MS};
use mailcanary::probe::outcome::{Arrived, Ended, Outcome, Refusal};
use mailcanary::probe::record::{self, Finish, NewRun};
use mailcanary::store::{Store, DB_FILE};
use mailcanary::verdict::reverify::LocalDkim;
use rand::SeedableRng;
use rusqlite::Connection;

const MIN_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;
const ROUNDS: usize = 21;

/// Provider labels the seeds are spread over.
const PROVIDERS: i64 = 20;

fn main() {
    let env = |k: &str, d: i64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let seeds = env("MAILCANARY_BENCH_SEEDS", 1_000);
    let detail_days = env("MAILCANARY_BENCH_DETAIL_DAYS", 4).max(1);
    let days = env("MAILCANARY_BENCH_DAYS", 365).max(detail_days + 1);
    let dir = match std::env::var_os("MAILCANARY_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .unwrap();
    drop(Store::open(dir.path()).unwrap());
    let path = dir.path().join(DB_FILE);
    let mut c = Connection::open(&path).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.pragma_update(None, "synchronous", "NORMAL").unwrap();
    let providers: HashMap<String, String> = (0..seeds)
        .map(|s| (format!("s{s}"), format!("p{}", s % PROVIDERS)))
        .collect();

    let now = now_ms().div_euclid(SLICE_MS) * SLICE_MS;
    // The runs kept in full: the last `detail_days` days.
    let start = now - detail_days * DAY_MS;
    let t = Instant::now();
    let day_runs = first_day(&mut c, seeds, start);
    println!(
        "day 1: {day_runs} runs through the daemon's statements in {:.1} s ({:.0} runs/s)",
        t.elapsed().as_secs_f64(),
        day_runs as f64 / t.elapsed().as_secs_f64()
    );
    report_size(&c, "after 1 day of runs");
    let t = Instant::now();
    for d in 1..detail_days {
        copy_day(&c, start, d);
    }
    // The counts: a copy of the day before the runs, moved into counts by
    // the recorder's prune, then copied back to the start of the history.
    copy_day(&c, start, -1);
    let t_roll = Instant::now();
    let mut moved = 0;
    loop {
        let cuts = Cuts {
            detail_ms: start,
            history_ms: now - days * DAY_MS,
        };
        let p = history::prune(&mut c, cuts, &providers).unwrap();
        moved += p.runs;
        if !p.more {
            break;
        }
    }
    println!(
        "a day of runs ({moved}) moved into counts by the prune in {:.1} s",
        t_roll.elapsed().as_secs_f64()
    );
    let count_days = days - detail_days;
    for d in 2..=count_days {
        c.execute(
            "INSERT INTO probe_slice (slice_ms, provider, sender, class, runs, last_ms)
             SELECT slice_ms - ?1, provider, sender, class, runs, last_ms - ?1
             FROM probe_slice WHERE slice_ms >= ?2",
            rusqlite::params![(d - 1) * DAY_MS, start - DAY_MS],
        )
        .unwrap();
    }
    println!(
        "{detail_days} days of runs and {count_days} days of counts written in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); ANALYZE;")
        .unwrap();
    let runs = report_size(&c, &format!("after {days} days"));
    let slices: i64 = c
        .query_row("SELECT count(*) FROM probe_slice", [], |r| r.get(0))
        .unwrap();
    println!("  {slices} slice count rows");
    // Where the bytes are: each table and index (SQLite's dbstat).
    if let Ok(mut st) =
        c.prepare("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 8")
    {
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .unwrap();
        for (name, bytes) in rows.map(Result::unwrap) {
            println!("  {name}: {:.1} MiB", bytes as f64 / 1048576.0);
        }
    }

    // The recorder's prune every 10 minutes: the oldest slice of runs
    // becomes counts, the oldest slice of counts goes.
    let mut prunes = Vec::new();
    let mut per = 0;
    for k in 1..=5 {
        let cuts = Cuts {
            detail_ms: start + k * SLICE_MS,
            history_ms: now - days * DAY_MS + k * SLICE_MS,
        };
        let t = Instant::now();
        let p = history::prune(&mut c, cuts, &providers).unwrap();
        prunes.push(t.elapsed());
        assert!(p.runs > 0 && p.slices > 0, "the oldest slices had rows");
        per = p.runs;
    }
    println!(
        "prune every 10 minutes ({per} runs into counts, a slice of counts gone; 5 times): {}",
        stats(&mut prunes)
    );

    // The daemon's queries on that store.
    // Runs of the last day, which the prunes above left alone.
    // A run of the last day, which the prunes above left alone.
    let lookup_token: String = c
        .query_row(
            "SELECT token FROM probe_run WHERE created_ms >= ?1 LIMIT 1",
            [now - DAY_MS / 2],
            |r| r.get(0),
        )
        .unwrap();
    timed("lookup of a run by token (an arrival)", || {
        assert!(record::lookup(&c, &lookup_token).unwrap().is_some());
    });
    let seed = format!("s{}", seeds / 3);
    timed("oldest missing run of a seed (an app's late mail)", || {
        std::hint::black_box(record::oldest_missing(&c, &seed, "noreply", now).unwrap());
    });
    timed("open runs (start-up)", || {
        std::hint::black_box(record::open_runs(&c).unwrap());
    });
    let end = start + detail_days * DAY_MS;
    timed("the status view's slices of the last hour", || {
        let mut st = c
            .prepare_cached(mailcanary::status::read::SLICES_SQL)
            .unwrap();
        let n = st
            .query_map([end - 60 * MIN_MS, end], |_| Ok(()))
            .unwrap()
            .count();
        assert!(n > 0);
    });
    // The support view's 7-day timeline from scratch (hourly, or on
    // start): runs and counts, every seed.
    let view_seeds: BTreeMap<String, String> = providers.clone().into_iter().collect();
    let n = (7 * DAY_MS / SLICE_MS) as usize;
    let from = end - n as i64 * SLICE_MS;
    let mut views = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let raw = mailcanary::status::read::count(&c, &view_seeds, from, n, from, end).unwrap();
        views.push(t.elapsed());
        assert_eq!(raw.slices.len() as i64, PROVIDERS + 2);
    }
    println!(
        "the support view's 7-day timeline read from scratch (runs and counts): {}",
        stats(&mut views)
    );
    let at = now - 200 * DAY_MS;
    timed("a day of counts half a year ago (status --at)", || {
        let raw =
            mailcanary::status::read::count(&c, &view_seeds, at, 144, at, at + DAY_MS).unwrap();
        assert!(!raw.slices.is_empty());
    });
    println!("{runs} runs and {slices} count rows kept; the status view's own bench is `cargo bench --bench status`");
}

/// Writes the first day as the recorder does, one transaction per minute
/// (the recorder writes each run as it goes; batching only makes the
/// generation affordable). Returns the number of runs.
fn first_day(c: &mut Connection, seeds: i64, start: i64) -> i64 {
    let raw = b"Authentication-Results: mx.example.net; spf=pass smtp.mailfrom=example.com; dkim=pass header.d=example.com header.s=s1; dmarc=pass header.from=example.com\r\nFrom: no-reply@example.com\r\n\r\nYour code is 123456\r\n";
    // The verdict JSON the recorder writes for a delivered run.
    let ended = Ended {
        token: String::new(),
        probe: "signup".into(),
        sender: "noreply".into(),
        seed: "s0".into(),
        provider: "gmail".into(),
        outcome: Outcome::Inbox,
        failure: None,
        bounce: None,
        arrived: Some(Arrived {
            delivery: Delivery {
                outcome: Outcome::Inbox,
                tab: None,
                latency: Duration::from_secs(2),
                seen_latency: Duration::from_secs(2),
                after_expiry: false,
            },
            folder: "INBOX".into(),
            seen_tab: None,
            verdict: mailcanary::verdict::judge(raw, Some("mx.example.net")),
            dkim_local: LocalDkim::Pass,
            seen_ms: 0,
            stored_ms: None,
            created_ms: None,
        }),
        submitted_ms: Some(0),
        final_ms: 0,
    };
    let spam = Ended {
        outcome: Outcome::Spam,
        ..ended
    };
    let verdict_json = Finish::of(&spam)
        .verdict_json
        .expect("a run in spam keeps its verdict");
    let mut n = 0;
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    for m in 0..(DAY_MS / MIN_MS) {
        let tx = c.transaction().unwrap();
        for s in 0..seeds {
            let created = start + m * MIN_MS + s * 37 % MIN_MS;
            // The daemon's own tokens: creation time first.
            let token = Token::timed(created as u64, &mut rng).as_str().to_string();
            record::insert(
                &tx,
                &NewRun {
                    token: token.clone(),
                    probe: "signup".into(),
                    sender: if s % 2 == 0 { "noreply" } else { "alerts" }.into(),
                    seed: format!("s{s}"),
                    created_ms: created,
                    deadline_ms: created + 10 * MIN_MS,
                    burst: None,
                },
            )
            .unwrap();
            let submitted = created + 150;
            record::mark_sent(
                &tx,
                &token,
                submitted,
                Some("4ZqLmT0x5bz9Rk"),
                submitted + 10 * MIN_MS,
            )
            .unwrap();
            let roll = (s * 7919 + m * 104_729) % 100;
            let outcome = match roll {
                0..=92 => Outcome::Inbox,
                93..=96 => Outcome::Spam,
                97..=98 => Outcome::Missing,
                _ => Outcome::Bounced,
            };
            let seen = submitted + 800 + (roll * 53) % 4_000;
            let arrived = matches!(outcome, Outcome::Inbox | Outcome::Spam);
            let finish = Finish {
                outcome,
                reason: match outcome {
                    Outcome::Bounced => Some("userunknown"),
                    _ => None,
                },
                folder: arrived.then(|| {
                    if outcome == Outcome::Spam {
                        "Junk".to_string()
                    } else {
                        "INBOX".to_string()
                    }
                }),
                seen_ms: arrived.then_some(seen),
                internal_ms: arrived.then_some(seen - 200),
                // As `Finish::of` keeps it: for placements other than the inbox.
                verdict_json: (outcome == Outcome::Spam).then(|| verdict_json.clone()),
                final_ms: if arrived {
                    seen
                } else {
                    submitted + 10 * MIN_MS
                },
            };
            record::finish(&tx, &token, &finish).unwrap();
            if outcome == Outcome::Bounced {
                let refusal = Refusal {
                    reason: mailcanary::bounce::Reason::UserUnknown,
                    status: mailcanary::bounce::Status::new(5, 1, 1),
                    reply_code: Some(550),
                    remote_mta: Some("mx.example.net".into()),
                };
                record::keep_notice(&tx, &token, "failed", &refusal, seen).unwrap();
            }
            n += 1;
        }
        tx.commit().unwrap();
    }
    n
}

/// Copies the first day to day `d` (negative: before it): same runs, times
/// shifted, new tokens that start with their creation time like the
/// daemon's (in hex here: the key's order is what matters, not the alphabet).
fn copy_day(c: &Connection, start: i64, d: i64) {
    let shift = d * DAY_MS;
    c.execute(
        "INSERT INTO probe_run (token, probe, sender, seed, state, created_ms, deadline_ms, submitted_ms,
                queue_id, outcome, reason, folder, seen_ms, internal_ms, verdict_json, counted, final_ms, burst)
         SELECT printf('%012x', created_ms + ?2) || substr(token, 11) || ?1, probe, sender, seed, state, created_ms + ?2, deadline_ms + ?2, submitted_ms + ?2,
                queue_id, outcome, reason, folder, seen_ms + ?2, internal_ms + ?2, verdict_json, counted, final_ms + ?2, burst
         FROM probe_run WHERE created_ms >= ?3 AND created_ms < ?4",
        rusqlite::params![d, shift, start, start + DAY_MS],
    )
    .unwrap();
    c.execute(
        "INSERT INTO probe_notice (token, kind, reason, status, reply_code, remote_mta, seen_ms)
         SELECT printf('%012x', r.created_ms + ?2) || substr(n.token, 11) || ?1, n.kind, n.reason,
                n.status, n.reply_code, n.remote_mta, n.seen_ms + ?2
         FROM probe_notice AS n JOIN probe_run AS r ON r.token = n.token
         WHERE r.created_ms >= ?3 AND r.created_ms < ?4",
        rusqlite::params![d, shift, start, start + DAY_MS],
    )
    .unwrap();
}

/// Prints the file size; returns the number of runs.
fn report_size(c: &Connection, when: &str) -> i64 {
    let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
    let page: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
    let runs: i64 = c
        .query_row("SELECT count(*) FROM probe_run", [], |r| r.get(0))
        .unwrap();
    let bytes = pages * page;
    println!(
        "{when}: {runs} runs, {:.1} MiB, {} bytes per run",
        bytes as f64 / 1048576.0,
        bytes / runs.max(1)
    );
    runs
}

fn timed(what: &str, mut f: impl FnMut()) {
    let mut times: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    println!("{what}: {}", stats(&mut times));
}

fn stats(times: &mut [Duration]) -> String {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "median {:.3} ms (min {:.3}, max {:.3}; {} rounds)",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1]),
        times.len()
    )
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
