//! The support view's cost: `/api/v1/status` computed from a store holding
//! 30 days of history for 1,000 seeds.
//!
//! `cargo bench --bench status` generates the store in a temporary directory
//! (1,000 Maildir seeds over 20 provider labels, two senders, one probe per
//! seed per hour for 30 days: 720,000 final runs, 4 % spam, 2 % missing,
//! 1 % send failures; every 50th seed's inbox down two hours a day: their missing runs then are
//! not counted), prints
//! `EXPLAIN QUERY PLAN` of the view's queries,
//! then the median, min and max time of [`mailcanary::status::compute`]
//! (the JSON included) over `MAILCANARY_BENCH_ROUNDS` (default 30) rounds,
//! without and with a lookup. Target: median under 50 ms.

use std::sync::Arc;
use std::time::Instant;

use mailcanary::config;
use mailcanary::mailbox_provider::Provider;
use mailcanary::status::{self, guidance::Lang, read, Query, Source};
use mailcanary::store::{Store, DB_FILE};

const SEEDS: usize = 1_000;
const DAYS: i64 = 30;
const HOUR_MS: i64 = 3_600_000;

fn main() {
    let rounds: usize = std::env::var("MAILCANARY_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let dir = tempfile::tempdir().unwrap();
    // MAILCANARY_BENCH_KEEP=DIR: generate there and keep it, so that
    // `mailcanary status --config DIR/bench.toml` can be timed on it.
    let kept = std::env::var_os("MAILCANARY_BENCH_KEEP").map(std::path::PathBuf::from);
    let dir_path = kept.clone().unwrap_or_else(|| dir.path().to_path_buf());
    if kept.is_some() {
        let _ = std::fs::remove_dir_all(dir_path.join("state"));
    }
    std::fs::create_dir_all(&dir_path).unwrap();
    let providers: Vec<&str> = Provider::ALL.iter().take(20).map(|p| p.as_str()).collect();
    let cfg = write_config(&dir_path, &providers);
    let config = Arc::new(config::load(&cfg).expect("bench config"));
    let now = status::now_ms();

    let t = Instant::now();
    let rows = generate(&dir_path.join("state"), now);
    println!(
        "generated {rows} runs ({SEEDS} seeds, {DAYS} days, one probe per seed per hour) in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let c = rusqlite::Connection::open(dir_path.join("state").join(DB_FILE)).unwrap();
    for (name, sql) in [
        ("slices", read::SLICES_SQL),
        ("window", read::WINDOW_SQL),
        ("outages", read::OUTAGES_SQL),
        ("deadline", read::DEADLINE_SQL),
    ] {
        println!("EXPLAIN QUERY PLAN ({name}):");
        let mut st = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let params = [0i64, 1];
        let params = rusqlite::params_from_iter(&params[..st.parameter_count()]);
        let plan = st
            .query_map(params, |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap);
        for line in plan {
            println!("  {line}");
        }
    }
    // Where the time goes: SQLite's scan alone, then the scan with the
    // view's per-row work.
    let now_ = now;
    let start = now_ - 7 * 24 * HOUR_MS - HOUR_MS;
    for (label, sql) in [
        ("count(*) over the slices' range", "SELECT count(*) FROM probe_run WHERE state = 'final' AND created_ms >= ?1 AND created_ms < ?2"),
        ("grouped by seed-free slice and outcome in SQL", "SELECT (created_ms - ?1) / 600000, outcome, count(*) FROM probe_run WHERE state = 'final' AND created_ms >= ?1 AND created_ms < ?2 GROUP BY 1, 2"),
    ] {
        let t = Instant::now();
        let mut st = c.prepare(sql).unwrap();
        let n = st.query_map([start, now_], |_| Ok(())).unwrap().count();
        println!("{label}: {:.1} ms ({n} rows out)", t.elapsed().as_secs_f64() * 1000.0);
    }
    let seeds: read::Seeds = (0..SEEDS)
        .map(|i| {
            (
                format!("s{i:04}"),
                providers[i % providers.len()].to_string(),
            )
        })
        .collect();
    let t = Instant::now();
    let raw = read::read(&c, &seeds, start, 7 * 24 * 6 + 6, now_).unwrap();
    println!(
        "read::read: {:.1} ms ({} groups)",
        t.elapsed().as_secs_f64() * 1000.0,
        raw.slices.len()
    );
    drop(c);

    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt.block_on(async { Store::open(&dir_path.join("state")).unwrap() });
    let src = Source::new(store, config);
    for (label, q) in [
        ("overview", Query::default()),
        (
            "overview + lookup (qq.com, 3 days ago)",
            Query {
                domain: Some("qq.com".into()),
                at: Some(status::rfc3339(now - 72 * HOUR_MS)),
                lang: Lang::Zh,
            },
        ),
    ] {
        // A fresh source: the first request reads 7 days of runs and fills
        // the cache of settled slices; the next ones read the last hour or so.
        let src = Source::new(src.store.clone(), src.config.clone());
        let t = Instant::now();
        let report = rt.block_on(status::compute(&src, &q, now)).unwrap();
        let bytes = serde_json::to_vec(&report).unwrap().len();
        println!(
            "/api/v1/status {label}: first request (cache empty) {:.1} ms",
            t.elapsed().as_secs_f64() * 1000.0
        );
        let mut times = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let t = Instant::now();
            let report = rt.block_on(status::compute(&src, &q, now)).unwrap();
            let _ = serde_json::to_vec(&report).unwrap();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "/api/v1/status {label}: median {:.1} ms, min {:.1} ms, max {:.1} ms over {rounds} further rounds ({bytes} bytes of JSON)",
            times[times.len() / 2],
            times[0],
            times[times.len() - 1]
        );
    }
}

fn write_config(dir: &std::path::Path, providers: &[&str]) -> std::path::PathBuf {
    let template = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/probes/templates/verification-en.toml"
    );
    let mut toml = format!(
        "[daemon]\nstate_dir = \"{}/state\"\n[http]\nlisten = \"127.0.0.1:0\"\n\n\
         [senders.noreply]\nkind = \"smtp\"\nhost = \"127.0.0.1\"\nport = 25\ntls = \"none\"\nfrom = \"no-reply@example.com\"\n\n\
         [senders.support]\nkind = \"smtp\"\nhost = \"127.0.0.1\"\nport = 25\ntls = \"none\"\nfrom = \"support@example.com\"\n\n",
        dir.display()
    );
    let names: Vec<String> = (0..SEEDS).map(|i| format!("s{i:04}")).collect();
    for (i, n) in names.iter().enumerate() {
        toml += &format!(
            "[seeds.{n}]\nprovider = \"{}\"\naddress = \"{n}@seed.example\"\nkind = \"maildir\"\npath = \"{}/md/{n}\"\n",
            providers[i % providers.len()],
            dir.display()
        );
    }
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    for sender in ["noreply", "support"] {
        toml += &format!(
            "[probes.{sender}]\nsender = \"{sender}\"\nseeds = [{}]\nevery = \"1h\"\ntimeout = \"10m\"\ntemplate = \"{template}\"\n",
            quoted.join(", ")
        );
    }
    let path = dir.join("bench.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

/// Fill the store: one run per seed per hour, alternating senders.
fn generate(state: &std::path::Path, now: i64) -> usize {
    // Open through the store once so the schema is the real one.
    drop(Store::open(state).unwrap());
    let mut c = rusqlite::Connection::open(state.join(DB_FILE)).unwrap();
    let tx = c.transaction().unwrap();
    let mut n = 0;
    {
        let mut st = tx
            .prepare(
                "INSERT INTO probe_run (token, probe, sender, seed, state, created_ms, deadline_ms,
                   submitted_ms, outcome, reason, folder, seen_ms, final_ms, counted)
                 VALUES (?1, ?2, ?2, ?3, 'final', ?4, ?4 + 600000, ?4 + 500, ?5, ?6, ?7, ?8, ?9, 1)",
            )
            .unwrap();
        let start = now - DAYS * 24 * HOUR_MS;
        let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
        for h in 0..DAYS * 24 {
            for s in 0..SEEDS {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let created = start + h * HOUR_MS + (s as i64 * 3_599) % HOUR_MS;
                let roll = rng % 100;
                let (outcome, reason, folder) = match roll {
                    0..=3 => ("spam", None, Some("Junk")),
                    4..=5 => ("missing", None, None),
                    6 => ("send_failed", Some("timeout"), None),
                    _ => ("inbox", None, Some("INBOX")),
                };
                let seen = folder.map(|_| created + 500 + 20_000 + (rng % 100_000) as i64);
                st.execute(rusqlite::params![
                    format!("{rng:016x}{n:08x}"),
                    if s % 2 == 0 { "noreply" } else { "support" },
                    format!("s{s:04}"),
                    created,
                    outcome,
                    reason,
                    folder,
                    seen,
                    seen.unwrap_or(created + 600_000),
                ])
                .unwrap();
                n += 1;
            }
        }
    }
    // Inbox outages: every 50th seed's watcher down for two hours each
    // day (its missing runs then are not counted), and one seed down since
    // a day ago.
    {
        let mut st = tx
            .prepare("INSERT INTO inbox_state (seed, up, at_ms) VALUES (?1, ?2, ?3)")
            .unwrap();
        let start = now - DAYS * 24 * HOUR_MS;
        for s in (0..SEEDS).step_by(50) {
            for d in 0..DAYS {
                let down = start + d * 24 * HOUR_MS + (s as i64 % 24) * HOUR_MS;
                st.execute(rusqlite::params![format!("s{s:04}"), false, down])
                    .unwrap();
                st.execute(rusqlite::params![
                    format!("s{s:04}"),
                    true,
                    down + 2 * HOUR_MS
                ])
                .unwrap();
            }
        }
        st.execute(rusqlite::params!["s0001", false, now - 24 * HOUR_MS])
            .unwrap();
    }
    tx.commit().unwrap();
    n
}
