//! The view's store queries. They run on the store thread and return
//! aggregates, never rows: the slice counts come from the
//! `probe_run_status` index alone (migration 6; `EXPLAIN QUERY PLAN` in
//! `benches/status.rs` shows it), the last hour's details from the rows of
//! that hour, the seeds' inbox outages from the `inbox_state` transitions
//! (migration 7).

use std::collections::{BTreeMap, HashMap};

use rusqlite::Connection;

use super::state::{self, Slices, SLICE_MS, UNWATCHED, WINDOW_SLICES};
use crate::probe::history::{self, SLICE_COUNTS_SQL, UNWATCHED_CLASS};
use crate::probe::Outcome;

/// The seeds' inbox transitions query, for the benchmarks' query plans.
pub use crate::probe::history::OUTAGES_SQL;

/// The counted seeds: seed name → its provider label (`qq`, `gmail`, or
/// as configured).
pub type Seeds = BTreeMap<String, String>;

/// A seed's inbox outages: down intervals `[from, until)`, oldest first.
type Outages<'a> = Option<&'a [(i64, i64)]>;

/// The slice counts: runs that became final, by creation time (the rowid,
/// in the index too, finds a run's deadline when its seed had an outage).
pub const SLICES_SQL: &str = "SELECT seed, sender, created_ms, outcome, rowid FROM probe_run
     WHERE state = 'final' AND created_ms >= ?1 AND created_ms < ?2";

/// A run's deadline, for the few runs [`count`] must check.
pub const DEADLINE_SQL: &str = "SELECT deadline_ms FROM probe_run WHERE rowid = ?1";

/// The last hour's runs with what the counts lack: reason and latency.
pub const WINDOW_SQL: &str = "SELECT seed, sender, outcome, reason,
            coalesce(internal_ms, seen_ms) - coalesce(submitted_ms, created_ms), deadline_ms
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

/// The down intervals of the seeds' inbox watchers overlapping `[from, end)`.
fn outages(
    c: &Connection,
    seeds: &Seeds,
    from: i64,
    end: i64,
) -> rusqlite::Result<history::Outages> {
    history::outages(c, |s| seeds.contains_key(s), from, end)
}

/// Read `n` slices from `start` (the last one holds `end`, now) for the
/// seeds in `seeds` (runs of other seeds are not counted), and the details
/// of the last window.
pub fn read(
    c: &Connection,
    seeds: &Seeds,
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

/// Slice counts of runs created in `[from, end)`, into `n` slices from
/// `start`; a run whose outcome [needs the watcher](Outcome::needs_watcher)
/// and that was [`state::unwatched`] is counted at [`UNWATCHED`] instead
/// of its outcome.
pub fn count(
    c: &Connection,
    seeds: &Seeds,
    start: i64,
    n: usize,
    from: i64,
    end: i64,
) -> rusqlite::Result<Raw> {
    let outages = outages(c, seeds, from, end)?;
    let mut t = Tally::new(start, n);
    // Seed → (its provider's group, its outages if it had any).
    let seed_group: HashMap<&str, (usize, Outages)> = seeds
        .iter()
        .map(|(s, p)| {
            let g = t.group(GroupKey::Provider(p.clone()));
            (s.as_str(), (g, outages.get(s).map(Vec::as_slice)))
        })
        .collect();
    let provider_group: HashMap<&str, usize> = seeds
        .iter()
        .filter_map(|(s, p)| Some((p.as_str(), seed_group.get(s.as_str())?.0)))
        .collect();
    let mut deadline = c.prepare_cached(DEADLINE_SQL)?;
    let mut stmt = c.prepare_cached(SLICES_SQL)?;
    let mut rows = stmt.query([from, end])?;
    while let Some(row) = rows.next()? {
        let Some(&(p, down)) = row
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
        // Only a missing or late run of a seed with an outage after its
        // creation needs its deadline read.
        let blind = match down {
            Some(o) if outcome.needs_watcher() && o.last().is_some_and(|l| l.1 > created) => {
                let rowid: i64 = row.get(4)?;
                let d: i64 = deadline.query_row([rowid], |r| r.get(0))?;
                state::unwatched(o, d)
            }
            _ => false,
        };
        let s = t.sender(row.get_ref(1)?.as_str().unwrap_or(""));
        let counted = (!blind).then_some(outcome);
        t.add([p, s], created, counted, 1, created);
    }
    drop(rows);
    // Runs older than the detail kept are counts (the second tier): a run
    // is in one tier only. Counts of providers no seed has now are not read.
    let mut stmt = c.prepare_cached(SLICE_COUNTS_SQL)?;
    let mut rows = stmt.query([from, end])?;
    while let Some(row) = rows.next()? {
        let provider = row.get_ref(0)?.as_str().unwrap_or("");
        let Some(&p) = provider_group.get(provider) else {
            continue;
        };
        let class = row.get_ref(2)?.as_str().unwrap_or("");
        let outcome = Outcome::parse(class);
        if outcome.is_none() && class != UNWATCHED_CLASS {
            continue;
        }
        let (slice, runs, last_ms): (i64, i64, i64) = (row.get(3)?, row.get(4)?, row.get(5)?);
        let s = t.sender(row.get_ref(1)?.as_str().unwrap_or(""));
        t.add([p, s], slice, outcome, runs.max(0) as u64, last_ms);
    }
    drop(rows);
    Ok(t.into_raw())
}

/// The groups [`count`] counts into: each by index, with its slices and
/// newest counted creation time; senders interned by name, so a row
/// allocates nothing once its sender is known.
struct Tally {
    start: i64,
    n: usize,
    keys: Vec<GroupKey>,
    index: HashMap<GroupKey, usize>,
    senders: HashMap<String, usize>,
    slices: Vec<Slices>,
    last: Vec<Option<i64>>,
}

impl Tally {
    fn new(start: i64, n: usize) -> Tally {
        Tally {
            start,
            n,
            keys: Vec::new(),
            index: HashMap::new(),
            senders: HashMap::new(),
            slices: Vec::new(),
            last: Vec::new(),
        }
    }

    /// The index of group `k`, made on first sight.
    fn group(&mut self, k: GroupKey) -> usize {
        if let Some(&g) = self.index.get(&k) {
            return g;
        }
        self.keys.push(k.clone());
        self.index.insert(k, self.keys.len() - 1);
        self.slices.push(Slices::new(self.start, self.n));
        self.last.push(None);
        self.keys.len() - 1
    }

    /// The index of the group of sender `name`.
    fn sender(&mut self, name: &str) -> usize {
        if let Some(&g) = self.senders.get(name) {
            return g;
        }
        let g = self.group(GroupKey::Sender(name.to_string()));
        self.senders.insert(name.to_string(), g);
        g
    }

    /// Count `runs` runs created at `at` into `groups`: at their outcome,
    /// or at [`UNWATCHED`] (`None`), which does not make `newest` the
    /// groups' newest counted run.
    fn add(
        &mut self,
        groups: [usize; 2],
        at: i64,
        outcome: Option<Outcome>,
        runs: u64,
        newest: i64,
    ) {
        let i = outcome.map_or(UNWATCHED, state::index);
        for g in groups {
            self.slices[g].add_n(at, i, runs);
            if outcome.is_some() {
                self.last[g] = Some(self.last[g].map_or(newest, |l| l.max(newest)));
            }
        }
    }

    fn into_raw(self) -> Raw {
        let mut raw = Raw::default();
        for ((key, sl), l) in self.keys.into_iter().zip(self.slices).zip(self.last) {
            if let Some(l) = l {
                raw.last_created.insert(key.clone(), l);
            }
            raw.slices.insert(key, sl);
        }
        raw
    }
}

/// The details (latencies, reasons) of runs created in `[from, end)`, but
/// for the runs [`count`] does not count (unwatched seed).
pub fn detail(
    c: &Connection,
    seeds: &Seeds,
    from: i64,
    end: i64,
) -> rusqlite::Result<HashMap<GroupKey, Detail>> {
    let mut out: HashMap<GroupKey, Detail> = HashMap::new();
    let outages = outages(c, seeds, from, end)?;
    let seed_group: HashMap<&str, (&String, Outages)> = seeds
        .iter()
        .map(|(s, p)| (s.as_str(), (p, outages.get(s).map(Vec::as_slice))))
        .collect();
    let mut stmt = c.prepare_cached(WINDOW_SQL)?;
    let mut rows = stmt.query([from, end])?;
    while let Some(row) = rows.next()? {
        let Some(&(p, down)) = row
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
        let deadline: i64 = row.get(5)?;
        if down.is_some_and(|o| outcome.needs_watcher() && state::unwatched(o, deadline)) {
            continue;
        }
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
    seeds: Seeds,
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
        seeds: &Seeds,
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
    use crate::status::state::State;

    fn add(c: &Connection, n: &mut u32, seed: &str, created: i64, outcome: &str) {
        add_due(c, n, seed, created, created + 60_000, outcome);
    }

    /// A final run with its deadline.
    fn add_due(c: &Connection, n: &mut u32, seed: &str, created: i64, due: i64, outcome: &str) {
        *n += 1;
        c.execute(
            "INSERT INTO probe_run (token, probe, sender, seed, state, created_ms, deadline_ms,
                submitted_ms, outcome, seen_ms)
             VALUES (?1, 'p', 'noreply', ?2, 'final', ?3, ?4, ?3, ?5, ?3 + 5000)",
            rusqlite::params![format!("t{n}"), seed, created, due, outcome],
        )
        .unwrap();
    }

    fn seeds(pairs: &[(&str, &str)]) -> Seeds {
        pairs
            .iter()
            .map(|(s, p)| (s.to_string(), p.to_string()))
            .collect()
    }

    fn transition(c: &Connection, seed: &str, up: bool, at: i64) {
        c.execute(
            "INSERT INTO inbox_state (seed, up, at_ms) VALUES (?1, ?2, ?3)",
            rusqlite::params![seed, up, at],
        )
        .unwrap();
    }

    #[test]
    fn missing_runs_of_an_unwatched_seed_are_not_counted() {
        let (_d, c) = crate::store::scratch();
        let seeds = seeds(&[("a", "qq"), ("b", "gmail"), ("c", "gmail")]);
        let t0 = 1_000_000 * SLICE_MS;
        let min = 60_000;
        let mut n = 0;
        // a (qq): down from slice 2 + 3 min to slice 4 + 1 min. Its runs
        // (deadline a minute after creation): missing in slices 0..6, and
        // in slice 3 an inbox (a copy seen counts) and a late one.
        transition(&c, "a", false, t0 + 2 * SLICE_MS + 3 * min);
        transition(&c, "a", true, t0 + 4 * SLICE_MS + min);
        for i in 0..6 {
            add(&c, &mut n, "a", t0 + i * SLICE_MS + 7 * min, "missing");
        }
        add(&c, &mut n, "a", t0 + 3 * SLICE_MS + 8 * min, "inbox");
        add(&c, &mut n, "a", t0 + 3 * SLICE_MS + 9 * min, "late");
        // Created before the outage, its 20-minute deadline inside it.
        add_due(
            &c,
            &mut n,
            "a",
            t0 + SLICE_MS + 9 * min,
            t0 + 2 * SLICE_MS + 19 * min,
            "missing",
        );
        // b (gmail): down since before the slices and still down; c
        // (gmail) is fine: gmail's state is c's.
        transition(&c, "b", true, t0 - 30 * SLICE_MS);
        transition(&c, "b", false, t0 - 20 * SLICE_MS);
        for i in 0..6 {
            add(&c, &mut n, "b", t0 + i * SLICE_MS + 2 * min, "missing");
            add(&c, &mut n, "c", t0 + i * SLICE_MS + 2 * min, "inbox");
        }
        let end = t0 + 6 * SLICE_MS - 1;
        let raw = read(&c, &seeds, t0, 6, end).unwrap();
        let qq = &raw.slices[&GroupKey::Provider("qq".into())];
        let missing = state::index(Outcome::Missing);
        let per_slice: Vec<(u64, u64)> = qq
            .counts
            .iter()
            .map(|c| (c[missing], c[UNWATCHED]))
            .collect();
        // A run is not counted when the watcher was down at its deadline:
        // slices 2 and 3 (and slice 1's run due in the outage); slice 4's
        // run was due after the watcher came back (and rescanned): counted.
        assert_eq!(
            per_slice,
            [(1, 0), (1, 1), (0, 1), (0, 2), (1, 0), (1, 0)],
            "(missing, not counted) per slice"
        );
        let window = qq.window(5);
        assert_eq!(
            window[state::index(Outcome::Inbox)],
            1,
            "a copy seen counts"
        );
        assert_eq!(window[state::index(Outcome::Late)], 0);
        assert_eq!(state::judge(&window).0, State::Failing);
        let gmail = raw.slices[&GroupKey::Provider("gmail".into())].window(5);
        assert_eq!(gmail[missing], 0);
        assert_eq!(gmail[UNWATCHED], 6);
        assert_eq!(state::judge(&gmail).0, State::Ok, "c's runs alone");
        // Details leave out what the counts leave out: the late run's latency.
        let d = &raw.window[&GroupKey::Provider("qq".into())];
        assert_eq!(d.latencies, [5.0], "{d:?}");
        // With only the unwatched seed, gmail is unknown.
        let only_b = {
            let mut s = seeds.clone();
            s.remove("c");
            s
        };
        let raw = read(&c, &only_b, t0, 6, end).unwrap();
        let gmail = raw.slices[&GroupKey::Provider("gmail".into())].window(5);
        assert_eq!(state::judge(&gmail).0, State::Unknown);
        assert_eq!(gmail[UNWATCHED], 6);
        assert!(!raw
            .last_created
            .contains_key(&GroupKey::Provider("gmail".into())));
        // The sender counts the same way: qq's and b's not counted runs.
        let sender = raw.slices[&GroupKey::Sender("noreply".into())].window(5);
        assert_eq!(sender[UNWATCHED], 4 + 6);
        assert_eq!(sender[missing], 4);
    }

    #[test]
    fn the_cache_gives_what_a_full_read_gives() {
        let (_d, c) = crate::store::scratch();
        let seeds = seeds(&[("a", "qq"), ("b", "gmail")]);
        // b's inbox is down for a while: the cache counts that the same way.
        transition(&c, "b", false, 1_000_000 * SLICE_MS + 4 * SLICE_MS);
        transition(&c, "b", true, 1_000_000 * SLICE_MS + 9 * SLICE_MS);
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
    fn counts_are_the_same_once_runs_move_to_the_second_tier() {
        let (_d, mut c) = crate::store::scratch();
        let seeds = seeds(&[("a", "qq"), ("b", "gmail"), ("c", "gmail")]);
        let t0 = 1_000_000 * SLICE_MS;
        let min = 60_000;
        // b's watcher is down over slices 1..4: its missing and late runs
        // there are not counted, in either tier.
        transition(&c, "b", false, t0 + SLICE_MS);
        transition(&c, "b", true, t0 + 4 * SLICE_MS);
        let mut n = 0;
        let outcomes = ["inbox", "spam", "missing", "late", "bounced", "inbox"];
        for i in 0..12 {
            for (j, seed) in ["a", "b", "c", "zz"].iter().enumerate() {
                let o = outcomes[(i as usize + j) % outcomes.len()];
                add(
                    &c,
                    &mut n,
                    seed,
                    t0 + i * SLICE_MS + (j as i64 + 1) * min,
                    o,
                );
            }
        }
        let end = t0 + 12 * SLICE_MS;
        let before = count(&c, &seeds, t0, 12, t0, end).unwrap();
        let unwatched: u64 = before.slices[&GroupKey::Provider("gmail".into())]
            .counts
            .iter()
            .map(|c| c[UNWATCHED])
            .sum();
        assert!(unwatched > 0, "the fixture has runs not counted");
        let providers = seeds.clone().into_iter().collect();
        for cut in [t0 + 5 * SLICE_MS + 3 * min, end] {
            let cuts = crate::probe::history::Cuts {
                detail_ms: cut,
                history_ms: 0,
            };
            // One step moves an hour at most: as the recorder does, go on
            // until done.
            while crate::probe::history::prune(&mut c, cuts, &providers)
                .unwrap()
                .more
            {}
            let after = count(&c, &seeds, t0, 12, t0, end).unwrap();
            assert_eq!(after.slices.len(), before.slices.len());
            for (k, s) in &before.slices {
                assert_eq!(after.slices[k].counts, s.counts, "cut {cut}: {k:?}");
            }
            assert_eq!(after.last_created, before.last_created, "cut {cut}");
        }
        let left: i64 = c
            .query_row("SELECT count(*) FROM probe_run", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0, "every run is counts now");
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
