//! The embedded store: SQLite in the state directory, owned by one thread.
//!
//! rusqlite is synchronous, so the connection lives on a dedicated thread and
//! async code sends it closures ([`Store::call`]); the runtime never blocks on
//! disk. Jobs run in the order they were sent. The schema is versioned with
//! `PRAGMA user_version` and migrated forward on open, one transaction per step.

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

/// File name of the database inside the state directory.
pub const DB_FILE: &str = "mailcanary.sqlite3";

/// Forward migrations; entry `i` takes the schema from version `i` to `i + 1`.
/// Never edit a released step: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: probe runs, in flight and final. One row per (probe, seed) send,
    // keyed by the probe token that ties an arrival to it. Times are Unix ms.
    "CREATE TABLE probe_run (
        token        TEXT PRIMARY KEY,
        probe        TEXT NOT NULL,
        sender       TEXT NOT NULL,
        seed         TEXT NOT NULL,
        state        TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'final')),
        created_ms   INTEGER NOT NULL,
        deadline_ms  INTEGER NOT NULL,
        submitted_ms INTEGER,
        queue_id     TEXT,
        outcome      TEXT,
        reason       TEXT,
        folder       TEXT,
        seen_ms      INTEGER,
        internal_ms  INTEGER,
        verdict_json TEXT,
        counted      INTEGER NOT NULL DEFAULT 0,
        final_ms     INTEGER
    );
    CREATE INDEX probe_run_open ON probe_run (state) WHERE state != 'final';
    CREATE INDEX probe_run_created ON probe_run (created_ms);",
    // 2: the last seen content of each audited DNS record, so a change is
    // noticed across restarts. `record` is `spf`, `dmarc`, `dkim:<selector>`, ...
    "CREATE TABLE dns_record (
        domain  TEXT NOT NULL,
        record  TEXT NOT NULL,
        content TEXT NOT NULL,
        seen_ms INTEGER NOT NULL,
        PRIMARY KEY (domain, record)
    );",
    // 3: resend bursts: runs triggered together share a burst id.
    "ALTER TABLE probe_run ADD COLUMN burst TEXT;",
    // 4: bounces and delay notices for probe runs, from the senders' bounce
    // mailboxes: at most one of each kind per run, so a second notice (or
    // the same one read again after a restart) is not counted twice.
    "CREATE TABLE probe_notice (
        token      TEXT NOT NULL,
        kind       TEXT NOT NULL CHECK (kind IN ('failed', 'delayed')),
        reason     TEXT NOT NULL,
        status     TEXT,
        reply_code INTEGER,
        remote_mta TEXT,
        seen_ms    INTEGER NOT NULL,
        PRIMARY KEY (token, kind)
    ) WITHOUT ROWID;",
    // 5: the ingestion stage (src/ingest): the app's mailboxes. One row per
    // message processed, keyed by its kind and the SHA-256 of its bytes, so a
    // restart does not count it twice; reports kept once per (kind, reporting
    // organisation, report id), with their DMARC rows and TLS policies.
    "CREATE TABLE ingest_message (
        kind     TEXT NOT NULL CHECK (kind IN ('reports', 'bounces')),
        sha256   BLOB NOT NULL,
        mailbox  TEXT NOT NULL,
        outcome  TEXT NOT NULL,
        first_ms INTEGER NOT NULL,
        seen_ms  INTEGER NOT NULL,
        PRIMARY KEY (kind, sha256)
    ) WITHOUT ROWID;
    CREATE TABLE report (
        id          INTEGER PRIMARY KEY,
        kind        TEXT NOT NULL CHECK (kind IN ('dmarc_aggregate', 'tls_rpt')),
        org         TEXT NOT NULL,
        report_id   TEXT NOT NULL,
        reporter    TEXT NOT NULL,
        org_name    TEXT NOT NULL,
        domain      TEXT,
        begin_s     INTEGER,
        end_s       INTEGER,
        mailbox     TEXT NOT NULL,
        ingested_ms INTEGER NOT NULL,
        UNIQUE (kind, org, report_id)
    );
    CREATE INDEX report_ingested ON report (ingested_ms);
    CREATE TABLE dmarc_record (
        report       INTEGER NOT NULL REFERENCES report (id) ON DELETE CASCADE,
        source_ip    TEXT,
        count        INTEGER NOT NULL,
        dmarc        TEXT NOT NULL,
        spf          TEXT NOT NULL,
        dkim         TEXT NOT NULL,
        disposition  TEXT NOT NULL,
        header_from  TEXT NOT NULL,
        spf_domains  TEXT NOT NULL,
        dkim_domains TEXT NOT NULL
    );
    CREATE INDEX dmarc_record_report ON dmarc_record (report);
    CREATE TABLE tls_policy (
        report      INTEGER NOT NULL REFERENCES report (id) ON DELETE CASCADE,
        domain      TEXT NOT NULL,
        policy_type TEXT NOT NULL,
        successful  INTEGER NOT NULL,
        failed      INTEGER NOT NULL
    );
    CREATE INDEX tls_policy_report ON tls_policy (report);",
    // 6: the support view (status module): the latest DNS audit of each
    // domain (its worst check status and its error finding ids, space
    // separated), and an index that answers the view's per-slice outcome
    // counts from the index alone.
    "CREATE TABLE dns_audit (
        domain     TEXT PRIMARY KEY,
        checked_ms INTEGER NOT NULL,
        status     TEXT NOT NULL,
        errors     TEXT NOT NULL
    );
    CREATE INDEX probe_run_status ON probe_run (created_ms, seed, sender, outcome) WHERE state = 'final';",
    // 7: seed inbox watchers going down and up again (the recorder writes a
    // row when a seed's folders stop or start being all watched), so the
    // support view can tell a run that went missing from one nobody could
    // have seen arrive. No row for a seed: it was watched.
    "CREATE TABLE inbox_state (
        seed  TEXT NOT NULL,
        up    INTEGER NOT NULL CHECK (up IN (0, 1)),
        at_ms INTEGER NOT NULL
    );
    CREATE INDEX inbox_state_seed ON inbox_state (seed, at_ms);",
    // 8: the second tier of probe history (src/probe/history.rs): beyond
    // `daemon.run_detail`, runs are kept as counts per 10-minute slice,
    // provider, sender and class (an outcome, or `unwatched`). The
    // creation-time index goes: the status index leads with the creation
    // time of final runs, which is all the pruning reads. Missing runs
    // get their own small index: an app's mail that matches no open run is
    // matched to its seed's oldest missing run of the last day.
    "CREATE TABLE probe_slice (
        slice_ms INTEGER NOT NULL,
        provider TEXT NOT NULL,
        sender   TEXT NOT NULL,
        class    TEXT NOT NULL,
        runs     INTEGER NOT NULL,
        last_ms  INTEGER NOT NULL,
        PRIMARY KEY (slice_ms, provider, sender, class)
    ) WITHOUT ROWID;
    DROP INDEX probe_run_created;
    CREATE INDEX probe_run_missing ON probe_run (seed, sender, created_ms)
        WHERE state = 'final' AND outcome = 'missing';",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The state directory could not be created or used.
    #[error("state directory {}: {source}", path.display())]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// SQLite refused an operation.
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database was written by a newer mailcanary.
    #[error("store schema version {found} is newer than this build's {SCHEMA_VERSION}; upgrade mailcanary or move {}", path.display())]
    TooNew { found: u32, path: PathBuf },
    /// The store thread is gone (it panicked or the store was closed).
    #[error("store thread stopped")]
    Closed,
}

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Handle to the store thread; cheap to clone.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::Sender<Job>,
}

impl Store {
    /// Open (creating if needed) the database in `state_dir`, migrate it, and
    /// start its thread.
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(state_dir).map_err(|source| StoreError::Dir {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let path = state_dir.join(DB_FILE);
        let mut conn = Connection::open(&path)?;
        // WAL + NORMAL: a committed write survives a killed process (SIGKILL),
        // which is the failure the probe records must outlive.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrate(&mut conn, &path)?;

        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("mailcanary-store".into())
            .spawn(move || {
                for job in rx {
                    job(&mut conn);
                }
            })
            .map_err(|source| StoreError::Dir {
                path: state_dir.to_path_buf(),
                source,
            })?;
        Ok(Store { tx })
    }

    /// Run `f` on the store thread and wait for its result.
    pub async fn call<F, R>(&self, f: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut Connection) -> Result<R, rusqlite::Error> + Send + 'static,
        R: Send + 'static,
    {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = done.send(f(conn));
        });
        self.tx.send(job).map_err(|_| StoreError::Closed)?;
        result
            .await
            .map_err(|_| StoreError::Closed)?
            .map_err(StoreError::from)
    }

    /// The schema version of the open database.
    pub async fn schema_version(&self) -> Result<u32, StoreError> {
        self.call(|c| c.pragma_query_value(None, "user_version", |r| r.get(0)))
            .await
    }
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let found: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            found,
            path: path.to_path_buf(),
        });
    }
    for (i, step) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", i as u32 + 1)?;
        tx.commit()?;
        tracing::info!(from = i, to = i + 1, "store schema migrated");
    }
    Ok(())
}

/// A store with the real schema (every migration) in a fresh directory,
/// opened directly, for tests of the SQL that runs on the store thread.
#[cfg(test)]
pub fn scratch() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    let c = Connection::open(dir.path().join(DB_FILE)).unwrap();
    (dir, c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opens_migrates_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
        store
            .call(|c| {
                c.execute(
                    "INSERT INTO probe_run (token, probe, sender, seed, state, created_ms, deadline_ms)
                     VALUES ('t1', 'p', 's', 'seed', 'pending', 1, 2)",
                    [],
                )
            })
            .await
            .unwrap();
        drop(store);
        let again = Store::open(dir.path()).unwrap();
        let n: i64 = again
            .call(|c| c.query_row("SELECT count(*) FROM probe_run", [], |r| r.get(0)))
            .await
            .unwrap();
        assert_eq!(n, 1, "data survives a reopen");
    }

    #[tokio::test]
    async fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        {
            let c = Connection::open(dir.path().join(DB_FILE)).unwrap();
            c.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .unwrap();
        }
        match Store::open(dir.path()) {
            Err(StoreError::TooNew { found, .. }) => assert_eq!(found, SCHEMA_VERSION + 1),
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("a newer schema must be refused"),
        }
    }

    #[tokio::test]
    async fn a_bad_statement_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let r = store
            .call(|c| c.execute("INSERT INTO nowhere VALUES (1)", []))
            .await;
        assert!(matches!(r, Err(StoreError::Sqlite(_))));
        // The thread survives a failed job.
        assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    }
}
