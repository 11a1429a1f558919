//! The ingestion stage's store tables (migration 4 in [`crate::store`]):
//! which messages were processed, and the reports kept. Plain functions on
//! a connection, run on the store thread.

use rusqlite::{params, Connection, OptionalExtension};

use crate::reports::{AggregateReport, Report, TlsReport};

/// How long a processed message is remembered after it was last seen. A
/// message left in place is seen again on every start (Maildir) or scan
/// (IMAP, within its window), which refreshes it.
pub const REMEMBER_MESSAGES_MS: i64 = 400 * 86_400_000;

/// The message's fingerprint: SHA-256 of its bytes as delivered.
pub fn fingerprint(raw: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, raw)
        .as_ref()
        .to_vec()
}

/// Whether a message of `kind` with this fingerprint was processed before;
/// if so, remember that it was seen again now.
pub fn seen_before(
    c: &mut Connection,
    kind: &str,
    sha: &[u8],
    now_ms: i64,
) -> rusqlite::Result<bool> {
    let n = c.execute(
        "UPDATE ingest_message SET seen_ms = ?3 WHERE kind = ?1 AND sha256 = ?2",
        params![kind, sha, now_ms],
    )?;
    Ok(n > 0)
}

/// Record a processed message (in the caller's transaction).
pub fn remember(
    c: &Connection,
    kind: &str,
    sha: &[u8],
    mailbox: &str,
    outcome: &str,
    now_ms: i64,
) -> rusqlite::Result<()> {
    c.execute(
        "INSERT OR IGNORE INTO ingest_message (kind, sha256, mailbox, outcome, first_ms, seen_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![kind, sha, mailbox, outcome, now_ms],
    )?;
    Ok(())
}

/// The de-duplication key's organisation part: the reporter's name,
/// trimmed and lower-case (reporters vary its case between reports).
pub fn org_key(org_name: &str) -> String {
    org_name.trim().to_lowercase()
}

/// What keeping a report found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// New: stored.
    New,
    /// The same reporter sent this report id before.
    Duplicate,
}

/// Keep a report and record the message it came in, in one transaction.
/// `details`: store the DMARC rows and TLS policies too (reports for a
/// configured domain; a foreign report keeps its key only).
pub fn keep_report(
    c: &mut Connection,
    report: &Report,
    details: bool,
    mailbox: &str,
    sha: &[u8],
    outcome_if_new: &str,
    now_ms: i64,
) -> rusqlite::Result<Kept> {
    let tx = c.transaction()?;
    let (org_name, domain, begin, end) = match report {
        Report::Aggregate(r) => (
            &r.org_name,
            Some(r.policy.domain.as_str()),
            Some(r.begin),
            Some(r.end),
        ),
        Report::Tls(r) => (&r.org_name, None, r.begin, r.end),
    };
    let inserted = tx.execute(
        "INSERT OR IGNORE INTO report (kind, org, report_id, reporter, org_name, domain, begin_s, end_s, mailbox, ingested_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            report.kind().as_str(),
            org_key(org_name),
            report.report_id(),
            report.reporter().as_str(),
            org_name,
            domain.map(normalize_domain),
            begin,
            end,
            mailbox,
            now_ms
        ],
    )?;
    let kept = if inserted == 0 {
        Kept::Duplicate
    } else {
        if details {
            let id = tx.last_insert_rowid();
            match report {
                Report::Aggregate(r) => insert_records(&tx, id, r)?,
                Report::Tls(r) => insert_policies(&tx, id, r)?,
            }
        }
        Kept::New
    };
    let outcome = match kept {
        Kept::New => outcome_if_new,
        Kept::Duplicate => "duplicate",
    };
    remember(&tx, "reports", sha, mailbox, outcome, now_ms)?;
    tx.commit()?;
    Ok(kept)
}

fn insert_records(c: &Connection, id: i64, r: &AggregateReport) -> rusqlite::Result<()> {
    let mut stmt = c.prepare_cached(
        "INSERT INTO dmarc_record (report, source_ip, count, dmarc, spf, dkim, disposition, header_from, spf_domains, dkim_domains)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for rec in &r.records {
        let spf: Vec<String> = rec
            .spf_results
            .iter()
            .map(|s| format!("{}={}", s.domain, s.result))
            .collect();
        let dkim: Vec<String> = rec
            .dkim_results
            .iter()
            .map(|d| format!("{}={}", d.domain, d.result))
            .collect();
        stmt.execute(params![
            id,
            rec.source_ip.map(|ip| ip.to_canonical().to_string()),
            i64::try_from(rec.count).unwrap_or(i64::MAX),
            if rec.dmarc_pass() { "pass" } else { "fail" },
            rec.spf.as_str(),
            rec.dkim.as_str(),
            rec.disposition.as_str(),
            rec.header_from,
            spf.join(" "),
            dkim.join(" "),
        ])?;
    }
    Ok(())
}

fn insert_policies(c: &Connection, id: i64, r: &TlsReport) -> rusqlite::Result<()> {
    let mut stmt = c.prepare_cached(
        "INSERT INTO tls_policy (report, domain, policy_type, successful, failed)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for p in &r.policies {
        stmt.execute(params![
            id,
            normalize_domain(&p.policy_domain),
            p.policy_type.as_str(),
            i64::try_from(p.successful).unwrap_or(i64::MAX),
            i64::try_from(p.failed).unwrap_or(i64::MAX),
        ])?;
    }
    Ok(())
}

/// A domain as configured domains are written: lower case, no final dot.
pub fn normalize_domain(d: &str) -> String {
    d.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The newest report period end (seconds) per domain and report kind, for
/// `mailcanary_report_last_timestamp_seconds` after a start or reload.
pub fn last_report_times(c: &mut Connection) -> rusqlite::Result<Vec<(String, String, i64)>> {
    let mut stmt = c.prepare(
        "SELECT domain, 'dmarc_aggregate', max(coalesce(end_s, ingested_ms / 1000))
           FROM report WHERE kind = 'dmarc_aggregate' AND domain IS NOT NULL GROUP BY domain
         UNION ALL
         SELECT p.domain, 'tls_rpt', max(coalesce(r.end_s, r.ingested_ms / 1000))
           FROM tls_policy p JOIN report r ON r.id = p.report GROUP BY p.domain",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}

/// Forget reports ingested before `before_ms` (their rows with them) and
/// messages not seen since `REMEMBER_MESSAGES_MS`. Returns the reports removed.
pub fn prune(c: &mut Connection, before_ms: i64, now_ms: i64) -> rusqlite::Result<usize> {
    let tx = c.transaction()?;
    tx.execute(
        "DELETE FROM dmarc_record WHERE report IN (SELECT id FROM report WHERE ingested_ms < ?1)",
        [before_ms],
    )?;
    tx.execute(
        "DELETE FROM tls_policy WHERE report IN (SELECT id FROM report WHERE ingested_ms < ?1)",
        [before_ms],
    )?;
    let n = tx.execute("DELETE FROM report WHERE ingested_ms < ?1", [before_ms])?;
    tx.execute(
        "DELETE FROM ingest_message WHERE seen_ms < ?1",
        [now_ms - REMEMBER_MESSAGES_MS],
    )?;
    tx.commit()?;
    Ok(n)
}

/// One line of `mailcanary reports top`: a source IP with DMARC failures.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TopSource {
    /// The policy domain.
    pub domain: String,
    /// The source IP (`unknown` when the report had none readable).
    pub source_ip: String,
    /// Messages that failed DMARC.
    pub failed: u64,
    /// Messages from this IP in all (passing too).
    pub messages: u64,
    /// The receivers that reported it (comma-separated `reporter` labels).
    pub reporters: String,
    /// SPF results as reported (`domain=result`, distinct).
    pub spf: String,
    /// DKIM results as reported (`domain=result`, distinct).
    pub dkim: String,
    /// The header From domains.
    pub header_from: String,
}

/// The source IPs with the most DMARC failures in reports whose period
/// ended at or after `since_s`, for `domain` or every domain.
pub fn top_sources(
    c: &mut Connection,
    domain: Option<&str>,
    since_s: i64,
    limit: usize,
) -> rusqlite::Result<Vec<TopSource>> {
    let mut stmt = c.prepare(
        "SELECT r.domain, coalesce(d.source_ip, 'unknown'),
                sum(CASE WHEN d.dmarc = 'fail' THEN d.count ELSE 0 END) AS failed,
                sum(d.count),
                group_concat(DISTINCT r.reporter),
                group_concat(DISTINCT nullif(d.spf_domains, '')),
                group_concat(DISTINCT nullif(d.dkim_domains, '')),
                group_concat(DISTINCT d.header_from)
           FROM dmarc_record d JOIN report r ON r.id = d.report
          WHERE r.end_s >= ?1 AND (?2 IS NULL OR r.domain = ?2)
          GROUP BY r.domain, d.source_ip
         HAVING failed > 0
          ORDER BY failed DESC, r.domain, d.source_ip
          LIMIT ?3",
    )?;
    let rows = stmt.query_map(
        params![since_s, domain.map(normalize_domain), limit as i64],
        |r| {
            Ok(TopSource {
                domain: r.get(0)?,
                source_ip: r.get(1)?,
                failed: r.get::<_, i64>(2)?.max(0) as u64,
                messages: r.get::<_, i64>(3)?.max(0) as u64,
                reporters: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                spf: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
                dkim: r.get::<_, Option<String>>(6)?.unwrap_or_default(),
                header_from: r.get::<_, Option<String>>(7)?.unwrap_or_default(),
            })
        },
    )?;
    rows.collect()
}

/// Whether a report with this key is kept (tests, `top`).
pub fn has_report(c: &mut Connection, kind: &str, org: &str, id: &str) -> rusqlite::Result<bool> {
    c.query_row(
        "SELECT 1 FROM report WHERE kind = ?1 AND org = ?2 AND report_id = ?3",
        params![kind, org_key(org), id],
        |_| Ok(()),
    )
    .optional()
    .map(|r| r.is_some())
}
