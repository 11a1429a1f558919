//! Probe runs in the store: the SQL behind "written as in flight before it
//! is sent" and "counted exactly once".
//!
//! Every state change is a single conditional UPDATE; its row count says
//! whether this call made the change, and only the call that made it counts
//! the result. A run that is already final cannot be finalised twice, and a
//! missing run turns late at most once.

use rusqlite::{params, Connection, OptionalExtension};

use super::outcome::{Ended, Outcome, Refusal};

/// A run written before its message is sent.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub token: String,
    pub probe: String,
    pub sender: String,
    pub seed: String,
    pub created_ms: i64,
    pub deadline_ms: i64,
    /// Runs triggered together as a resend burst share this id.
    pub burst: Option<String>,
}

/// A run not yet final, as loaded after a restart.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenRun {
    pub token: String,
    pub probe: String,
    pub sender: String,
    pub seed: String,
    /// Submit time if the relay's acceptance was recorded, else the creation time.
    pub submitted_ms: i64,
    pub deadline_ms: i64,
    pub sent: bool,
    pub burst: Option<String>,
}

/// A run as the store has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    pub probe: String,
    pub sender: String,
    pub seed: String,
    pub submitted_ms: i64,
    /// `None` while in flight; the outcome once final.
    pub outcome: Option<Outcome>,
}

impl RunRow {
    /// The run as the recorder handles it when this process does not hold it
    /// open (it ended, or another process owns it): sent, with no deadline
    /// and no burst to track.
    pub fn into_run(self, token: &str) -> OpenRun {
        OpenRun {
            token: token.to_string(),
            probe: self.probe,
            sender: self.sender,
            seed: self.seed,
            submitted_ms: self.submitted_ms,
            deadline_ms: 0,
            sent: true,
            burst: None,
        }
    }
}

/// The final facts of a run, as the store keeps them.
#[derive(Debug, Clone)]
pub struct Finish {
    pub outcome: Outcome,
    pub reason: Option<&'static str>,
    pub folder: Option<String>,
    pub seen_ms: Option<i64>,
    pub internal_ms: Option<i64>,
    pub verdict_json: Option<String>,
    pub final_ms: i64,
}

impl Finish {
    /// A run that ended with `outcome` at `final_ms`, with nothing else known.
    pub fn bare(outcome: Outcome, final_ms: i64) -> Finish {
        Finish {
            outcome,
            reason: None,
            folder: None,
            seen_ms: None,
            internal_ms: None,
            verdict_json: None,
            final_ms,
        }
    }

    /// What the store keeps of a run that ended.
    pub fn of(e: &Ended) -> Finish {
        let a = e.arrived.as_ref();
        Finish {
            outcome: e.outcome,
            reason: e.reason(),
            folder: a.map(|a| a.folder.clone()),
            seen_ms: a.map(|a| a.seen_ms),
            internal_ms: a.and_then(|a| a.stored_ms),
            // The receiver's verdict explains a placement other than the
            // inbox; an inbox run's is in the metrics, and keeping it for
            // every run was most of a run's row (about 700 of 1,070 bytes).
            verdict_json: a.filter(|_| e.outcome != Outcome::Inbox).and_then(|a| {
                serde_json::to_string(&serde_json::json!({
                    "receiver": &a.verdict,
                    "dkim_local": a.dkim_local,
                    "tab": a.seen_tab.map(|t| t.as_str()),
                }))
                .ok()
            }),
            final_ms: e.final_ms,
        }
    }
}

pub fn insert(c: &Connection, r: &NewRun) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO probe_run (token, probe, sender, seed, state, created_ms, deadline_ms, burst)
         VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6, ?7)",
    )?
    .execute(params![
        r.token,
        r.probe,
        r.sender,
        r.seed,
        r.created_ms,
        r.deadline_ms,
        r.burst
    ])?;
    Ok(())
}

pub fn mark_sent(
    c: &Connection,
    token: &str,
    submitted_ms: i64,
    queue_id: Option<&str>,
    deadline_ms: i64,
) -> rusqlite::Result<bool> {
    let mut stmt = c.prepare_cached(
        "UPDATE probe_run SET state = 'sent', submitted_ms = ?2, queue_id = ?3, deadline_ms = ?4
         WHERE token = ?1 AND state = 'pending'",
    )?;
    Ok(stmt.execute(params![token, submitted_ms, queue_id, deadline_ms])? == 1)
}

/// Make an open run final. True only for the call that did it.
pub fn finish(c: &Connection, token: &str, f: &Finish) -> rusqlite::Result<bool> {
    let mut stmt = c.prepare_cached(
        "UPDATE probe_run SET state = 'final', outcome = ?2, reason = ?3, folder = ?4, seen_ms = ?5,
                internal_ms = ?6, verdict_json = ?7, final_ms = ?8, counted = 1
         WHERE token = ?1 AND state != 'final'",
    )?;
    let changed = stmt.execute(params![
        token,
        f.outcome.as_str(),
        f.reason,
        f.folder,
        f.seen_ms,
        f.internal_ms,
        f.verdict_json,
        f.final_ms
    ])?;
    Ok(changed == 1)
}

/// A run that went missing has arrived after all. True only once.
pub fn mark_late(c: &Connection, token: &str, f: &Finish) -> rusqlite::Result<bool> {
    let mut stmt = c.prepare_cached(
        "UPDATE probe_run SET outcome = ?6, folder = ?2, seen_ms = ?3, internal_ms = ?4, verdict_json = ?5
         WHERE token = ?1 AND state = 'final' AND outcome = ?7",
    )?;
    let changed = stmt.execute(params![
        token,
        f.folder,
        f.seen_ms,
        f.internal_ms,
        f.verdict_json,
        Outcome::Late.as_str(),
        Outcome::Missing.as_str()
    ])?;
    Ok(changed == 1)
}

/// The run a token belongs to, if any.
pub fn lookup(c: &Connection, token: &str) -> rusqlite::Result<Option<RunRow>> {
    c.prepare_cached(
        "SELECT probe, sender, seed, COALESCE(submitted_ms, created_ms), state, outcome FROM probe_run WHERE token = ?1",
    )?
    .query_row(
        [token],
        |r| {
            let state: String = r.get(4)?;
            Ok(RunRow {
                probe: r.get(0)?,
                sender: r.get(1)?,
                seed: r.get(2)?,
                submitted_ms: r.get(3)?,
                outcome: if state == "final" {
                    r.get::<_, Option<String>>(5)?.as_deref().and_then(Outcome::parse)
                } else {
                    None
                },
            })
        },
    )
    .optional()
}

/// The oldest missing run of a seed from a sender in a time range. The
/// outcome is written out (`Outcome::Missing`'s text) so that SQLite can
/// use the partial index `probe_run_missing` (migration 8).
const OLDEST_MISSING_SQL: &str =
    "SELECT token FROM probe_run WHERE seed = ?1 AND sender = ?2 AND state = 'final' AND outcome = 'missing'
     AND created_ms > ?3 AND created_ms <= ?4 ORDER BY created_ms LIMIT 1";

/// The oldest run of `sender` to `seed` that went missing in the last day
/// and was created before `arrived_ms` (an app's mail that arrives after its
/// timeout).
pub fn oldest_missing(
    c: &Connection,
    seed: &str,
    sender: &str,
    arrived_ms: i64,
) -> rusqlite::Result<Option<String>> {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
        - 86_400_000;
    c.prepare_cached(OLDEST_MISSING_SQL)?
        .query_row(rusqlite::params![seed, sender, since, arrived_ms], |r| {
            r.get(0)
        })
        .optional()
}

pub fn open_runs(c: &Connection) -> rusqlite::Result<Vec<OpenRun>> {
    let mut stmt = c.prepare(
        "SELECT token, probe, sender, seed, COALESCE(submitted_ms, created_ms), deadline_ms, state = 'sent', burst
         FROM probe_run WHERE state != 'final' ORDER BY created_ms",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(OpenRun {
            token: r.get(0)?,
            probe: r.get(1)?,
            sender: r.get(2)?,
            seed: r.get(3)?,
            submitted_ms: r.get(4)?,
            deadline_ms: r.get(5)?,
            sent: r.get(6)?,
            burst: r.get(7)?,
        })
    })?;
    rows.collect()
}

/// Keep a bounce (`kind` = `failed`) or delay notice (`delayed`) for a
/// run. True only the first time a notice of that kind is kept for it.
pub fn keep_notice(
    c: &Connection,
    token: &str,
    kind: &str,
    r: &Refusal,
    seen_ms: i64,
) -> rusqlite::Result<bool> {
    let mut stmt = c.prepare_cached(
        "INSERT OR IGNORE INTO probe_notice (token, kind, reason, status, reply_code, remote_mta, seen_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let inserted = stmt.execute(params![
        token,
        kind,
        r.reason.as_str(),
        r.status.map(|s| s.to_string()),
        r.reply_code,
        r.remote_mta,
        seen_ms
    ])?;
    Ok(inserted == 1)
}

/// Record that a seed's inbox stopped (`up` false) or started again being
/// watched at `at_ms`: one row per transition (table `inbox_state`).
pub fn inbox_transition(c: &Connection, seed: &str, up: bool, at_ms: i64) -> rusqlite::Result<()> {
    c.prepare_cached("INSERT INTO inbox_state (seed, up, at_ms) VALUES (?1, ?2, ?3)")?
        .execute(params![seed, up, at_ms])?;
    Ok(())
}

/// The last recorded watcher state of every seed that has one (a seed
/// without a row was never recorded down: watched).
pub fn inbox_states(c: &Connection) -> rusqlite::Result<std::collections::HashMap<String, bool>> {
    // SQLite takes the bare column `up` from the row holding max(at_ms).
    let mut stmt = c.prepare("SELECT seed, up, max(at_ms) FROM inbox_state GROUP BY seed")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(token: &str) -> NewRun {
        NewRun {
            token: token.into(),
            probe: "p".into(),
            sender: "s".into(),
            seed: "seed".into(),
            created_ms: 1_000,
            deadline_ms: 61_000,
            burst: None,
        }
    }

    #[test]
    fn a_run_is_final_once_and_late_once() {
        let (_d, c) = crate::store::scratch();
        insert(&c, &run("t")).unwrap();
        assert_eq!(lookup(&c, "t").unwrap().unwrap().outcome, None);
        assert!(mark_sent(&c, "t", 1_100, Some("Q1"), 61_100).unwrap());
        assert_eq!(open_runs(&c).unwrap()[0].submitted_ms, 1_100);
        let missing = Finish::bare(Outcome::Missing, 61_200);
        assert!(finish(&c, "t", &missing).unwrap());
        assert!(
            !finish(
                &c,
                "t",
                &Finish {
                    outcome: Outcome::Inbox,
                    ..missing.clone()
                }
            )
            .unwrap(),
            "final once"
        );
        assert_eq!(
            lookup(&c, "t").unwrap().unwrap().outcome,
            Some(Outcome::Missing)
        );
        let late = Finish {
            outcome: Outcome::Late,
            folder: Some("INBOX".into()),
            ..missing.clone()
        };
        assert!(mark_late(&c, "t", &late).unwrap());
        assert!(!mark_late(&c, "t", &late).unwrap(), "late once");
        assert_eq!(
            lookup(&c, "t").unwrap().unwrap().outcome,
            Some(Outcome::Late)
        );
        assert!(open_runs(&c).unwrap().is_empty());
        assert_eq!(lookup(&c, "other").unwrap(), None);
    }

    #[test]
    fn pending_runs_resume_with_their_creation_time() {
        let (_d, c) = crate::store::scratch();
        insert(&c, &run("a")).unwrap();
        let open = open_runs(&c).unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].submitted_ms, 1_000);
        assert!(!open[0].sent);
    }

    #[test]
    fn the_oldest_missing_run_is_found_by_its_own_index() {
        let (_d, c) = crate::store::scratch();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        for (token, created, outcome) in [
            ("inbox", now - 3_000, Outcome::Inbox),
            ("old", now - 2_000, Outcome::Missing),
            ("new", now - 1_000, Outcome::Missing),
        ] {
            insert(
                &c,
                &NewRun {
                    created_ms: created,
                    ..run(token)
                },
            )
            .unwrap();
            finish(&c, token, &Finish::bare(outcome, now)).unwrap();
        }
        assert_eq!(
            oldest_missing(&c, "seed", "s", now).unwrap().as_deref(),
            Some("old")
        );
        assert_eq!(oldest_missing(&c, "seed", "other", now).unwrap(), None);
        let plan: String = c
            .query_row(
                &format!("EXPLAIN QUERY PLAN {OLDEST_MISSING_SQL}"),
                rusqlite::params!["a", "b", 1, 2],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("probe_run_missing"), "{plan}");
    }

    #[test]
    fn only_runs_outside_the_inbox_keep_the_receivers_verdict() {
        let raw = b"Authentication-Results: mx.test; spf=pass smtp.mailfrom=a.test\r\n\r\nbody";
        let verdict = crate::verdict::judge(raw, Some("mx.test"));
        let ended = |outcome| Ended {
            token: "t".into(),
            probe: "p".into(),
            sender: "s".into(),
            seed: "seed".into(),
            provider: "gmail".into(),
            outcome,
            failure: None,
            bounce: None,
            arrived: Some(super::super::outcome::Arrived {
                delivery: super::super::evaluate::Delivery {
                    outcome,
                    tab: None,
                    latency: std::time::Duration::from_secs(1),
                    seen_latency: std::time::Duration::from_secs(1),
                    after_expiry: false,
                },
                folder: "INBOX".into(),
                seen_tab: None,
                verdict: verdict.clone(),
                dkim_local: crate::verdict::reverify::LocalDkim::Pass,
                seen_ms: 2_000,
                stored_ms: None,
                created_ms: None,
            }),
            submitted_ms: Some(1_000),
            final_ms: 2_000,
        };
        assert_eq!(Finish::of(&ended(Outcome::Inbox)).verdict_json, None);
        let spam = Finish::of(&ended(Outcome::Spam)).verdict_json.unwrap();
        assert!(spam.contains("\"spf\""), "{spam}");
    }
}
