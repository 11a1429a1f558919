//! The view's store queries. Both run on the store thread and return
//! aggregates, never rows: the slice counts come from the
//! `probe_run_status` index alone (migration 4; `EXPLAIN QUERY PLAN` in
//! `benches/status.rs` shows it), the last hour's details from the rows of
//! that hour.

use std::collections::{BTreeMap, HashMap};

use rusqlite::Connection;

use super::state::{Slices, SLICE_MS, WINDOW_SLICES};
use crate::probe::Outcome;

/// The slice counts: runs that became final, by creation time.
pub const SLICES_SQL: &str = "SELECT seed, sender, created_ms, outcome FROM probe_run
     WHERE state = 'final' AND created_ms >= ?1 AND created_ms < ?2";

/// The last hour's runs with what the counts lack: reason and latency.
pub const WINDOW_SQL: &str = "SELECT seed, sender, outcome, reason,
            coalesce(internal_ms, seen_ms) - coalesce(submitted_ms, created_ms)
     FROM probe_run WHERE state = 'final' AND created_ms >= ?1 AND created_ms < ?2";

/// Longest reason shown; reasons are bounded enum values (`timeout`,
/// `blocked`), anything else is not shown.
const MAX_REASON: usize = 40;

/// A provider (by label) or a sender (by config name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GroupKey {
    Provider(String),
    Sender(String),
}

/// The last hour's details of one group.
#[derive(Debug, Clone, Default)]
pub struct Detail {
    /// Seconds from submission to the mailbox, for outcomes with a latency.
    pub latencies: Vec<f64>,
    /// Reasons by outcome.
    pub reasons: HashMap<(Outcome, String), u64>,
}

impl Detail {
    /// The most frequent reason of runs with outcome `o`.
    pub fn top_reason(&self, o: Outcome) -> Option<String> {
        self.reasons
            .iter()
            .filter(|((out, _), _)| *out == o)
            .max_by(|a, b| a.1.cmp(b.1).then(b.0 .1.cmp(&a.0 .1)))
            .map(|((_, r), _)| r.clone())
    }
}

/// Everything the view reads from the probe runs.
#[derive(Debug, Clone, Default)]
pub struct Raw {
    pub slices: HashMap<GroupKey, Slices>,
    /// The last window's details (its last [`WINDOW_SLICES`] slices).
    pub window: HashMap<GroupKey, Detail>,
    /// Creation time of the newest final run, per group.
    pub last_created: HashMap<GroupKey, i64>,
}

/// Read `n` slices from `start` (the last one holds `end`, now) for the
/// seeds in `seeds` (seed → provider label; runs of other seeds are not
/// counted), and the details of the last window.
pub fn read(
    c: &Connection,
    seeds: &BTreeMap<String, String>,
    start: i64,
    n: usize,
    end: i64,
) -> rusqlite::Result<Raw> {
    let mut raw = count(c, seeds, start, n, start, end)?;
    raw.window = detail(
        c,
        seeds,
        start + (n - WINDOW_SLICES.min(n)) as i64 * SLICE_MS,
        end,
    )?;
    Ok(raw)
}

/// Slice counts of runs created in `[from, end)`, into `n` slices from `start`.
pub fn count(
    c: &Connection,
    seeds: &BTreeMap<String, String>,
    start: i64,
    n: usize,
    from: i64,
    end: i64,
) -> rusqlite::Result<Raw> {
    let mut raw = Raw::default();
    // Groups by index, and seeds and senders interned to them: the loop
    // looks a seed up by &str and allocates nothing per row.
    let mut keys: Vec<GroupKey> = Vec::new();
    let mut index: HashMap<GroupKey, usize> = HashMap::new();
    let mut intern = |k: GroupKey, keys: &mut Vec<GroupKey>| -> usize {
        *index.entry(k.clone()).or_insert_with(|| {
            keys.push(k);
            keys.len() - 1
        })
    };
    let seed_group: HashMap<&str, usize> = seeds
        .iter()
        .map(|(s, p)| (s.as_str(), intern(GroupKey::Provider(p.clone()), &mut keys)))
        .collect();
    let mut sender_group: HashMap<String, usize> = HashMap::new();
    let mut slices: Vec<Slices> = Vec::new();
    let mut last: Vec<Option<i64>> = Vec::new();
    let mut stmt = c.prepare_cached(SLICES_SQL)?;
    let mut rows = stmt.query([from, end])?;
    while let Some(row) = rows.next()? {
        let Some(&p) = row
            .get_ref(0)?
            .as_str()
            .ok()
            .and_then(|s| seed_group.get(s))
        else {
            continue;
        };
        let created: i64 = row.get(2)?;
        let Some(outcome) = row.get_ref(3)?.as_str().ok().and_then(Outcome::parse) else {
            continue;
        };
        let sender = row.get_ref(1)?.as_str().unwrap_or("");
        let s = match sender_group.get(sender) {
            Some(&i) => i,
            None => {
                let i = intern(GroupKey::Sender(sender.to_string()), &mut keys);
                sender_group.insert(sender.to_string(), i);
                i
            }
        };
        if slices.len() < keys.len() {
            slices.resize_with(keys.len(), || Slices::new(start, n));
            last.resize(keys.len(), None);
        }
        for g in [p, s] {
            slices[g].add(created, outcome);
            last[g] = Some(last[g].map_or(created, |l| l.max(created)));
        }
    }
    drop(rows);
    slices.resize_with(keys.len(), || Slices::new(start, n));
    last.resize(keys.len(), None);
    for ((key, sl), l) in keys.iter().zip(slices).zip(last) {
        raw.slices.insert(key.clone(), sl);
        if let Some(l) = l {
            raw.last_created.insert(key.clone(), l);
        }
    }
    Ok(raw)
}

/// The details (latencies, reasons) of runs created in `[from, end)`.
pub fn detail(
    c: &Connection,
    seeds: &BTreeMap<String, String>,
    from: i64,
    end: i64,
) -> rusqlite::Result<HashMap<GroupKey, Detail>> {
    let mut out: HashMap<GroupKey, Detail> = HashMap::new();
    let seed_group: HashMap<&str, &String> = seeds.iter().map(|(s, p)| (s.as_str(), p)).collect();
    let mut stmt = c.prepare_cached(WINDOW_SQL)?;
    let mut rows = stmt.query([from, end])?;
    while let Some(row) = rows.next()? {
        let Some(&p) = row
            .get_ref(0)?
            .as_str()
            .ok()
            .and_then(|s| seed_group.get(s))
        else {
            continue;
        };
        let sender: String = row.get(1)?;
        let Some(outcome) = row.get_ref(2)?.as_str().ok().and_then(Outcome::parse) else {
            continue;
        };
        let reason: Option<String> = row.get(3)?;
        let latency: Option<i64> = row.get(4)?;
        for key in [
            GroupKey::Provider(p.clone()),
            GroupKey::Sender(sender.clone()),
        ] {
            let d = out.entry(key).or_default();
            if let (true, Some(ms)) = (outcome.has_latency(), latency) {
                d.latencies.push(ms.max(0) as f64 / 1000.0);
            }
            if let Some(r) = reason.as_deref().filter(|r| bounded(r)) {
                *d.reasons.entry((outcome, r.to_string())).or_default() += 1;
            }
        }
    }
    Ok(out)
}

/// Settled slice counts kept between requests, so a request reads only the
/// runs of the last [`Cache`] settle time instead of 7 days of them. Runs
/// become final within their probe's timeout, so slices older than the
/// longest timeout (plus a margin) no longer change, except that a missing
/// run that arrives after all turns `late` (both count as failures, so no
/// state changes); the cache is rebuilt from the store every
/// [`REBUILD_MS`] to pick those up.
#[derive(Default)]
pub struct Cache {
    inner: std::sync::Mutex<Option<Cached>>,
}

/// How often the cache is rebuilt from scratch.
pub const REBUILD_MS: i64 = 3_600_000;

struct Cached {
    seeds: BTreeMap<String, String>,
    built_ms: i64,
    /// Counts of slices `[start, settled)`.
    raw: Raw,
    start: i64,
    settled: i64,
}

impl Cache {
    /// Like [`read`], taking settled slices (older than `now - settle_ms`)
    /// from the cache and reading only the rest.
    pub fn read(
        &self,
        c: &Connection,
        seeds: &BTreeMap<String, String>,
        start: i64,
        n: usize,
        end: i64,
        settle_ms: i64,
    ) -> rusqlite::Result<Raw> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let settled = (end - settle_ms).div_euclid(SLICE_MS) * SLICE_MS;
        let usable = guard.as_ref().filter(|k| {
            k.seeds == *seeds
                && end - k.built_ms < REBUILD_MS
                && k.start <= start
                && k.settled > start
        });
        let window_from = start + (n - WINDOW_SLICES.min(n)) as i64 * SLICE_MS;
        let Some(k) = usable else {
            let mut raw = count(c, seeds, start, n, start, end)?;
            raw.window = detail(c, seeds, window_from, end)?;
            let keep = ((settled - start).max(0) / SLICE_MS) as usize;
            *guard = Some(Cached {
                seeds: seeds.clone(),
                built_ms: end,
                raw: truncated(&raw, keep.min(n)),
                start,
                settled: start + keep.min(n) as i64 * SLICE_MS,
            });
            return Ok(raw);
        };
        let mut raw = count(c, seeds, start, n, k.settled, end)?;
        raw.window = detail(c, seeds, window_from, end)?;
        let offset = ((start - k.start) / SLICE_MS) as usize;
        for (key, cached) in &k.raw.slices {
            let fresh = raw
                .slices
                .entry(key.clone())
                .or_insert_with(|| Slices::new(start, n));
            for (i, counts) in cached.counts.iter().enumerate().skip(offset) {
                if let Some(f) = fresh.counts.get_mut(i - offset) {
                    for (a, b) in f.iter_mut().zip(counts) {
                        *a += b;
                    }
                }
            }
        }
        for (key, &t) in &k.raw.last_created {
            let l = raw.last_created.entry(key.clone()).or_insert(t);
            *l = (*l).max(t);
        }
        // Move the slices that settled since into the cache.
        if settled > k.settled {
            let keep = (((settled - start) / SLICE_MS) as usize).min(n);
            let (seeds, built_ms) = (k.seeds.clone(), k.built_ms);
            *guard = Some(Cached {
                seeds,
                built_ms,
                raw: truncated(&raw, keep),
                start,
                settled: start + keep as i64 * SLICE_MS,
            });
        }
        Ok(raw)
    }
}

/// The first `keep` slices of every group.
fn truncated(raw: &Raw, keep: usize) -> Raw {
    Raw {
        slices: raw
            .slices
            .iter()
            .map(|(k, s)| {
                (
                    k.clone(),
                    Slices {
                        start_ms: s.start_ms,
                        counts: s.counts[..keep.min(s.counts.len())].to_vec(),
                    },
                )
            })
            .collect(),
        window: HashMap::new(),
        last_created: raw.last_created.clone(),
    }
}

/// A reason is shown only when it looks like one of the bounded values.
fn bounded(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= MAX_REASON
        && r.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-' || b == b'.'
        })
}

/// One domain's latest audit summary.
#[derive(Debug, Clone)]
pub struct Audit {
    pub domain: String,
    /// The worst check status, or `not_audited`.
    pub status: String,
    pub checked_ms: Option<i64>,
    /// Error finding ids.
    pub errors: Vec<String>,
}

/// The latest audit summary of each domain, in the order given.
pub fn audits(c: &Connection, domains: &[String]) -> rusqlite::Result<Vec<Audit>> {
    let mut stmt =
        c.prepare_cached("SELECT checked_ms, status, errors FROM dns_audit WHERE domain = ?1")?;
    domains
        .iter()
        .map(|d| {
            let row = stmt
                .query_row([d], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .map(Some)
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(e),
                })?;
            Ok(match row {
                Some((ms, status, errors)) => Audit {
                    domain: d.clone(),
                    status,
                    checked_ms: Some(ms),
                    errors: errors.split_whitespace().map(str::to_string).collect(),
                },
                None => Audit {
                    domain: d.clone(),
                    status: "not_audited".into(),
                    checked_ms: None,
                    errors: Vec::new(),
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE probe_run (token TEXT PRIMARY KEY, probe TEXT, sender TEXT, seed TEXT,
                state TEXT, created_ms INTEGER, submitted_ms INTEGER, outcome TEXT, reason TEXT,
                seen_ms INTEGER, internal_ms INTEGER);
             CREATE INDEX probe_run_status ON probe_run (created_ms, seed, sender, outcome) WHERE state = 'final';",
        )
        .unwrap();
        c
    }

    fn add(c: &Connection, n: &mut u32, seed: &str, created: i64, outcome: &str) {
        *n += 1;
        c.execute(
            "INSERT INTO probe_run VALUES (?1, 'p', 'noreply', ?2, 'final', ?3, ?3, ?4, NULL, ?3 + 5000, NULL)",
            rusqlite::params![format!("t{n}"), seed, created, outcome],
        )
        .unwrap();
    }

    #[test]
    fn the_cache_gives_what_a_full_read_gives() {
        let c = db();
        let seeds: BTreeMap<String, String> = [("a", "qq"), ("b", "gmail")]
            .iter()
            .map(|(s, p)| (s.to_string(), p.to_string()))
            .collect();
        let mut n = 0;
        let t0 = 1_000_000 * SLICE_MS;
        for i in 0..60 {
            let o = if i % 7 == 0 { "spam" } else { "inbox" };
            add(&c, &mut n, "a", t0 + i * SLICE_MS / 2, o);
            add(&c, &mut n, "b", t0 + i * SLICE_MS / 3, "missing");
        }
        add(&c, &mut n, "zz", t0 + 5, "inbox"); // not a configured seed
        let cache = Cache::default();
        let slices = 40;
        let settle = 3 * SLICE_MS;
        let mut now = t0 + 25 * SLICE_MS + 17;
        for step in 0..6 {
            let start = (now.div_euclid(SLICE_MS) + 1 - slices as i64) * SLICE_MS;
            let cached = cache.read(&c, &seeds, start, slices, now, settle).unwrap();
            let full = read(&c, &seeds, start, slices, now).unwrap();
            assert_eq!(cached.slices.len(), full.slices.len(), "step {step}");
            for (k, s) in &full.slices {
                assert_eq!(cached.slices[k].counts, s.counts, "step {step}: {k:?}");
                assert_eq!(cached.slices[k].start_ms, s.start_ms);
            }
            assert_eq!(cached.last_created, full.last_created, "step {step}");
            // Newer runs arrive, time moves on.
            add(&c, &mut n, "a", now - 1, "spam");
            now += SLICE_MS + 333;
        }
    }

    #[test]
    fn only_bounded_reasons_are_shown() {
        assert!(bounded("smtp_5xx"));
        assert!(bounded("userunknown"));
        assert!(!bounded("550 5.1.1 <a@b.example> unknown"));
        assert!(!bounded(""));
        assert!(!bounded(&"a".repeat(41)));
    }
}
