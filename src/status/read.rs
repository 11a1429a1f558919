//! The view's store queries. Both run on the store thread and return
//! aggregates, never rows: the slice counts come from the
//! `probe_run_status` index alone (migration 4; `EXPLAIN QUERY PLAN` in
//! `benches/status.rs` shows it), the last hour's details from the rows of
//! that hour.

use std::collections::{BTreeMap, HashMap};

use rusqlite::Connection;

use super::state::{Slices, WINDOW_SLICES};
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

/// Read `n` slices ending at `end` for the seeds in `seeds` (seed → provider
/// label); runs of other seeds are not counted.
pub fn read(
    c: &Connection,
    seeds: &BTreeMap<String, String>,
    start: i64,
    end: i64,
    n: usize,
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
    let mut rows = stmt.query([start, end])?;
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

    let window_start = end - WINDOW_SLICES as i64 * super::state::SLICE_MS;
    let mut stmt = c.prepare_cached(WINDOW_SQL)?;
    let mut rows = stmt.query([window_start, end])?;
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
        for key in [keys[p].clone(), GroupKey::Sender(sender.clone())] {
            let d = raw.window.entry(key).or_default();
            if let (true, Some(ms)) = (outcome.has_latency(), latency) {
                d.latencies.push(ms.max(0) as f64 / 1000.0);
            }
            if let Some(r) = reason.as_deref().filter(|r| bounded(r)) {
                *d.reasons.entry((outcome, r.to_string())).or_default() += 1;
            }
        }
    }
    Ok(raw)
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

    #[test]
    fn only_bounded_reasons_are_shown() {
        assert!(bounded("smtp_5xx"));
        assert!(bounded("userunknown"));
        assert!(!bounded("550 5.1.1 <a@b.example> unknown"));
        assert!(!bounded(""));
        assert!(!bounded(&"a".repeat(41)));
    }
}
