//! Probe history in two tiers, so a store that has run for a year at 1,000
//! seeds stays small:
//!
//! 1. every run in full (`probe_run`) for `daemon.run_detail`: what the
//!    recorder, a late arrival or bounce, and the support view's details
//!    (reasons, latencies) read;
//! 2. beyond that, until `daemon.history`, counts per [`SLICE_MS`] slice,
//!    provider, sender and class (`probe_slice`, migration 8): all the
//!    support view's timeline reads. A class is an outcome, or
//!    [`UNWATCHED_CLASS`] for a run the view does not count because its
//!    seed was not watched at the run's deadline ([`unwatched`]).
//!
//! [`prune`] moves runs from the first tier to the second in one
//! transaction, so every final run is counted in exactly one of them and a
//! reader that adds both never counts a run twice or loses one.

use std::collections::HashMap;

use rusqlite::{params, Connection};

use super::outcome::Outcome;

/// One slice of time: the resolution of the counts kept beyond the runs
/// (and of the support view's "since" and timeline).
pub const SLICE_MS: i64 = 10 * 60 * 1000;

/// The class of runs left uncounted because nobody watched their seed.
pub const UNWATCHED_CLASS: &str = "unwatched";

/// The provider label of runs whose seed is no longer configured.
pub const UNCONFIGURED: &str = "unconfigured";

/// The seeds' inbox transitions that matter from `?1` to `?2`: each
/// seed's last one before `?1`, then those in between.
pub const OUTAGES_SQL: &str = "SELECT seed, up, at_ms FROM (
        SELECT seed, up, max(at_ms) AS at_ms FROM inbox_state WHERE at_ms < ?1 GROUP BY seed
        UNION ALL
        SELECT seed, up, at_ms FROM inbox_state WHERE at_ms >= ?1 AND at_ms < ?2)
     ORDER BY seed, at_ms";

/// The second tier's counts of slices starting in `[?1, ?2)`.
pub const SLICE_COUNTS_SQL: &str =
    "SELECT provider, sender, class, slice_ms, runs, last_ms FROM probe_slice
     WHERE slice_ms >= ?1 AND slice_ms < ?2";

/// The runs [`prune`] moves to the second tier.
const ROLL_SQL: &str = "SELECT seed, sender, created_ms, outcome, deadline_ms FROM probe_run
     WHERE state = 'final' AND created_ms < ?1";

/// Add counts to a slice, or start it.
const ADD_SQL: &str = "INSERT INTO probe_slice (slice_ms, provider, sender, class, runs, last_ms)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
     ON CONFLICT (slice_ms, provider, sender, class) DO UPDATE SET
       runs = runs + excluded.runs, last_ms = max(last_ms, excluded.last_ms)";

/// A seed's inbox outages: down intervals `[from, until)`, oldest first
/// (`until` is `i64::MAX` while still down).
pub type Outages = HashMap<String, Vec<(i64, i64)>>;

/// An unwatched run whose outcome [needs the watcher](Outcome::needs_watcher)
/// (missing, late) is not counted: the message may have arrived while
/// nobody looked. An outage that ended before the deadline hides nothing:
/// a watcher that comes back scans its folder again (IMAP looks back, a
/// Maildir watcher reads what is there) and finds what arrived meanwhile.
pub fn unwatched(outages: &[(i64, i64)], deadline_ms: i64) -> bool {
    let i = outages.partition_point(|&(_, until)| until <= deadline_ms);
    outages.get(i).is_some_and(|&(from, _)| from <= deadline_ms)
}

/// The down intervals of each kept seed's inbox watcher that overlap
/// `[from, end)`, oldest first; seeds never down have no entry.
pub fn outages(
    c: &Connection,
    keep: impl Fn(&str) -> bool,
    from: i64,
    end: i64,
) -> rusqlite::Result<Outages> {
    let mut out = Outages::new();
    let mut stmt = c.prepare_cached(OUTAGES_SQL)?;
    let mut rows = stmt.query([from, end])?;
    // Rows come ordered by seed, then time.
    let mut current: Option<(String, Option<i64>)> = None;
    let close = |seed: String, down: Option<i64>, out: &mut Outages| {
        if let Some(d) = down {
            out.entry(seed).or_default().push((d, i64::MAX));
        }
    };
    while let Some(row) = rows.next()? {
        let seed = row.get_ref(0)?.as_str().unwrap_or("");
        if !keep(seed) {
            continue;
        }
        let up: bool = row.get(1)?;
        let at: i64 = row.get(2)?;
        if current.as_ref().is_none_or(|(s, _)| s != seed) {
            if let Some((s, down)) = current.take() {
                close(s, down, &mut out);
            }
            current = Some((seed.to_string(), None));
        }
        let Some((s, down)) = current.as_mut() else {
            continue;
        };
        match (up, *down) {
            (false, None) => *down = Some(at),
            (true, Some(d)) => {
                *down = None;
                if at > from {
                    out.entry(s.clone()).or_default().push((d, at));
                }
            }
            _ => {}
        }
    }
    if let Some((s, down)) = current {
        close(s, down, &mut out);
    }
    Ok(out)
}

/// Where the tiers end, in Unix ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cuts {
    /// Final runs created before this become counts (rounded down to a
    /// slice, so a slice is counted in one tier only).
    pub detail_ms: i64,
    /// Counts of slices before this are forgotten.
    pub history_ms: i64,
}

/// What one [`prune`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Runs moved from the first tier into counts (or forgotten, when
    /// older than the history).
    pub runs: usize,
    /// Count rows forgotten.
    pub slices: usize,
    /// Runs before the cut are left for the next call ([`STEP_MS`]).
    pub more: bool,
}

/// The most one [`prune`] moves: an hour of runs (60,000 at 1,000 seeds
/// probed every minute), so a store that is far behind (the first prune
/// after an upgrade, or after a long stop) catches up in short
/// transactions between which the daemon's other statements run.
pub const STEP_MS: i64 = 6 * SLICE_MS;

/// Move final runs created before `cuts.detail_ms` into slice counts, with
/// the notices of those runs gone and the inbox transitions the runs kept
/// no longer need (older than the cut, except each seed's newest one before
/// it when it is a `down`: the runs still kept need their seed's state);
/// forget counts older than `cuts.history_ms`. `provider_of` maps a seed to
/// its provider label; a seed it lacks is counted as [`UNCONFIGURED`]. One
/// transaction: a reader sees each run in exactly one tier.
pub fn prune(
    c: &mut Connection,
    cuts: Cuts,
    provider_of: &HashMap<String, String>,
) -> rusqlite::Result<Pruned> {
    let tx = c.transaction()?;
    let cut = cuts.detail_ms.div_euclid(SLICE_MS) * SLICE_MS;
    let oldest: Option<i64> = tx.query_row(
        "SELECT min(created_ms) FROM probe_run WHERE state = 'final'",
        [],
        |r| r.get(0),
    )?;
    let step = oldest.map_or(cut, |o| {
        (o.div_euclid(SLICE_MS) * SLICE_MS).saturating_add(STEP_MS)
    });
    let detail = cut.min(step);
    let mut counts: HashMap<(i64, &str, String, &'static str), (i64, i64)> = HashMap::new();
    {
        let down = outages(&tx, |_| true, i64::MIN, i64::MAX)?;
        let mut stmt = tx.prepare_cached(ROLL_SQL)?;
        let mut rows = stmt.query([detail])?;
        while let Some(row) = rows.next()? {
            let seed = row.get_ref(0)?.as_str().unwrap_or("");
            let created: i64 = row.get(2)?;
            let Some(outcome) = row.get_ref(3)?.as_str().ok().and_then(Outcome::parse) else {
                continue;
            };
            let deadline: i64 = row.get(4)?;
            let class = match down.get(seed) {
                Some(o) if outcome.needs_watcher() && unwatched(o, deadline) => UNWATCHED_CLASS,
                _ => outcome.as_str(),
            };
            let provider = provider_of.get(seed).map_or(UNCONFIGURED, String::as_str);
            let sender = row.get_ref(1)?.as_str().unwrap_or("").to_string();
            let slice = created.div_euclid(SLICE_MS) * SLICE_MS;
            let e = counts
                .entry((slice, provider, sender, class))
                .or_insert((0, created));
            e.0 += 1;
            e.1 = e.1.max(created);
        }
    }
    {
        let mut add = tx.prepare_cached(ADD_SQL)?;
        for ((slice, provider, sender, class), (runs, last)) in &counts {
            if *slice >= cuts.history_ms {
                add.execute(params![slice, provider, sender, class, runs, last])?;
            }
        }
    }
    tx.execute(
        "DELETE FROM probe_notice WHERE token IN
           (SELECT token FROM probe_run WHERE state = 'final' AND created_ms < ?1)",
        [detail],
    )?;
    let runs = tx.execute(
        "DELETE FROM probe_run WHERE state = 'final' AND created_ms < ?1",
        [detail],
    )?;
    tx.execute(
        "DELETE FROM inbox_state WHERE at_ms < ?1 AND (up = 1 OR at_ms <
            (SELECT max(n.at_ms) FROM inbox_state AS n WHERE n.seed = inbox_state.seed AND n.at_ms < ?1))",
        [detail],
    )?;
    let slices = tx.execute(
        "DELETE FROM probe_slice WHERE slice_ms < ?1",
        [cuts.history_ms],
    )?;
    tx.commit()?;
    Ok(Pruned {
        runs,
        slices,
        more: detail < cut,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::outcome::Refusal;
    use crate::probe::record::{self, Finish, NewRun};

    /// A final run of `seed` created at `created_ms`, its deadline a minute on.
    fn run(c: &Connection, token: &str, seed: &str, created_ms: i64, outcome: Option<Outcome>) {
        record::insert(
            c,
            &NewRun {
                token: token.into(),
                probe: "p".into(),
                sender: "s".into(),
                seed: seed.into(),
                created_ms,
                deadline_ms: created_ms + 60_000,
                burst: None,
            },
        )
        .unwrap();
        if let Some(o) = outcome {
            record::finish(c, token, &Finish::bare(o, created_ms + 60_000)).unwrap();
        }
    }

    fn slices(c: &Connection) -> Vec<(i64, String, String, i64, i64)> {
        c.prepare(
            "SELECT slice_ms, provider, class, runs, last_ms FROM probe_slice ORDER BY 1, 2, 3",
        )
        .unwrap()
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }

    fn providers() -> HashMap<String, String> {
        [("a", "gmail"), ("b", "qq")]
            .map(|(s, p)| (s.to_string(), p.to_string()))
            .into()
    }

    const S: i64 = SLICE_MS;

    #[test]
    fn old_runs_become_slice_counts_and_open_ones_stay() {
        let (_d, mut c) = crate::store::scratch();
        run(&c, "1", "a", S + 1, Some(Outcome::Inbox));
        run(&c, "2", "a", S + 2, Some(Outcome::Inbox));
        run(&c, "3", "b", S + 3, Some(Outcome::Spam));
        run(&c, "4", "gone", 2 * S + 5, Some(Outcome::Missing));
        run(&c, "open", "a", S + 4, None);
        // Inside the slice that holds the cut: kept as a run.
        run(&c, "new", "a", 3 * S + 1, Some(Outcome::Inbox));
        let cuts = Cuts {
            detail_ms: 3 * S + 100,
            history_ms: 0,
        };
        let pruned = prune(&mut c, cuts, &providers()).unwrap();
        assert_eq!(
            pruned,
            Pruned {
                runs: 4,
                slices: 0,
                more: false
            }
        );
        assert_eq!(
            slices(&c),
            [
                (S, "gmail".into(), "inbox".into(), 2, S + 2),
                (S, "qq".into(), "spam".into(), 1, S + 3),
                (2 * S, UNCONFIGURED.into(), "missing".into(), 1, 2 * S + 5),
            ]
        );
        assert!(
            record::lookup(&c, "open").unwrap().is_some(),
            "open runs stay"
        );
        assert!(record::lookup(&c, "new").unwrap().is_some());
        assert_eq!(record::lookup(&c, "1").unwrap(), None);
        // The open run ends later, in a slice already counted: added to it.
        record::finish(&c, "open", &Finish::bare(Outcome::Inbox, 4 * S)).unwrap();
        prune(&mut c, cuts, &providers()).unwrap();
        assert_eq!(slices(&c)[0], (S, "gmail".into(), "inbox".into(), 3, S + 4));
        // Counts older than the history go.
        let later = Cuts {
            detail_ms: 3 * S,
            history_ms: 2 * S,
        };
        assert_eq!(prune(&mut c, later, &providers()).unwrap().slices, 2);
        assert_eq!(slices(&c).len(), 1);
    }

    #[test]
    fn a_store_far_behind_catches_up_an_hour_at_a_time() {
        let (_d, mut c) = crate::store::scratch();
        for h in 0..3 {
            run(
                &c,
                &format!("{h}"),
                "a",
                h * STEP_MS + 1,
                Some(Outcome::Inbox),
            );
        }
        let cuts = Cuts {
            detail_ms: 3 * STEP_MS,
            history_ms: 0,
        };
        let mut calls = Vec::new();
        loop {
            let p = prune(&mut c, cuts, &providers()).unwrap();
            calls.push(p.runs);
            if !p.more {
                break;
            }
        }
        assert_eq!(calls, [1, 1, 1]);
        assert_eq!(slices(&c).len(), 3);
    }

    #[test]
    fn a_missing_run_of_an_unwatched_seed_is_counted_as_unwatched() {
        let (_d, mut c) = crate::store::scratch();
        // b's watcher was down from before its runs' deadline.
        record::inbox_transition(&c, "b", false, S).unwrap();
        run(&c, "1", "b", S + 1, Some(Outcome::Missing));
        run(&c, "2", "b", S + 2, Some(Outcome::Bounced));
        run(&c, "3", "a", S + 3, Some(Outcome::Missing));
        let cuts = Cuts {
            detail_ms: 2 * S,
            history_ms: 0,
        };
        prune(&mut c, cuts, &providers()).unwrap();
        let classes: Vec<(String, String)> = slices(&c).into_iter().map(|r| (r.1, r.2)).collect();
        assert_eq!(
            classes,
            [
                ("gmail".into(), "missing".into()),
                // A bounce does not need the watcher: counted.
                ("qq".into(), "bounced".into()),
                ("qq".into(), UNWATCHED_CLASS.into()),
            ]
        );
    }

    #[test]
    fn pruning_removes_the_notices_of_the_runs_it_moves_only() {
        let (_d, mut c) = crate::store::scratch();
        let refusal = Refusal {
            reason: crate::bounce::Reason::UserUnknown,
            status: None,
            reply_code: Some(550),
            remote_mta: None,
        };
        for (token, created_ms, outcome) in [
            ("old", S, Some(Outcome::Bounced)),
            ("new", 5 * S, Some(Outcome::Bounced)),
            ("open", S, None),
        ] {
            run(&c, token, "a", created_ms, outcome);
            record::keep_notice(&c, token, "failed", &refusal, created_ms).unwrap();
        }
        let cuts = Cuts {
            detail_ms: 2 * S,
            history_ms: 0,
        };
        assert_eq!(prune(&mut c, cuts, &providers()).unwrap().runs, 1);
        let notices: Vec<String> = c
            .prepare("SELECT token FROM probe_notice ORDER BY token")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(notices, ["new", "open"]);
    }

    #[test]
    fn inbox_transitions_keep_the_state_the_kept_runs_need() {
        let (_d, mut c) = crate::store::scratch();
        let rows = |c: &Connection| -> Vec<(String, bool, i64)> {
            let mut st = c
                .prepare("SELECT seed, up, at_ms FROM inbox_state ORDER BY seed, at_ms")
                .unwrap();
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        // a: down, up, down (still down); b: down, up; c: down before the
        // cut, up after.
        for (seed, up, at) in [
            ("a", false, 1_000),
            ("a", true, 2_000),
            ("a", false, 3_000),
            ("b", false, 1_500),
            ("b", true, 2_500),
            ("c", false, 9_000),
            ("c", true, S + 1),
        ] {
            record::inbox_transition(&c, seed, up, at).unwrap();
        }
        let cuts = Cuts {
            detail_ms: S + 100,
            history_ms: 0,
        };
        prune(&mut c, cuts, &providers()).unwrap();
        assert_eq!(
            rows(&c),
            [
                // Still down: the newest row before the cut says so.
                ("a".to_string(), false, 3_000),
                // Up before the cut: no row needed (no row is watched).
                // Down across the cut: its start is kept.
                ("c".to_string(), false, 9_000),
                ("c".to_string(), true, S + 1),
            ]
        );
        assert!(!record::inbox_states(&c).unwrap()["a"]);
    }

    #[test]
    fn the_unwatched_rule() {
        let outages = [(1_000, 2_000), (5_000, 6_000), (9_000, i64::MAX)];
        for (deadline, expect) in [
            (999, false),
            (1_000, true), // down from this moment on
            (1_999, true),
            (2_000, false), // up again: the rescan found what came
            (4_000, false),
            (5_500, true),
            (8_999, false),
            (9_000, true),
            (i64::MAX - 1, true), // still down
        ] {
            assert_eq!(unwatched(&outages, deadline), expect, "deadline {deadline}");
        }
        assert!(!unwatched(&[], 5_000));
    }
}
