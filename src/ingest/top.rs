//! `mailcanary reports top --config FILE [--domain D] [--since 7d]`: the
//! source IPs with the most DMARC failures, from the store. Source IPs,
//! SPF and DKIM domains cannot be metric labels; this is where they are seen.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags};

use super::store::{self, TopSource};
use crate::config;

/// Exit code: printed (possibly an empty list).
const EXIT_OK: u8 = 0;
/// Exit code: the store could not be read.
const EXIT_FAILED: u8 = 1;
/// Exit code: usage or configuration error.
const EXIT_USAGE: u8 = 2;

/// Output format of `reports top`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TopFormat {
    /// A table.
    Text,
    /// A JSON array of objects, one per source.
    Json,
}

/// Arguments of `mailcanary reports top`.
#[derive(Debug, Clone, clap::Args)]
pub struct TopArgs {
    /// The daemon's config file (its state_dir holds the store).
    #[arg(long, short)]
    pub config: PathBuf,
    /// Only this domain (a `[domains]` entry).
    #[arg(long)]
    pub domain: Option<String>,
    /// Reports whose period ended within this long (e.g. 24h, 7d).
    #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
    pub since: Duration,
    /// Most sources listed.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: TopFormat,
}

/// Run `reports top`; returns the exit code.
pub fn run(args: TopArgs) -> u8 {
    let config = match config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            for line in e.to_string().lines() {
                eprintln!("error: {line}");
            }
            return EXIT_USAGE;
        }
    };
    if let Some(d) = &args.domain {
        if !config.domains.contains_key(&store::normalize_domain(d)) {
            eprintln!(
                "error: --domain {d:?} is not in [domains] of {}",
                args.config.display()
            );
            return EXIT_USAGE;
        }
    }
    let since = args.since;
    let since_s = SystemTime::now()
        .checked_sub(since)
        .unwrap_or(UNIX_EPOCH)
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let path = config.daemon.state_dir.join(crate::store::DB_FILE);
    let rows = match read(&path, args.domain.as_deref(), since_s, args.limit) {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("error: cannot read the store {}: {e}", path.display());
            return EXIT_FAILED;
        }
    };
    let mut out = std::io::stdout().lock();
    let written = match args.format {
        TopFormat::Json => serde_json::to_writer_pretty(&mut out, &rows)
            .map_err(std::io::Error::other)
            .and_then(|_| writeln!(out)),
        TopFormat::Text => print_text(&mut out, &rows, since),
    };
    match written {
        Ok(()) => EXIT_OK,
        Err(e) => {
            eprintln!("error: cannot write: {e}");
            EXIT_FAILED
        }
    }
}

/// The rows, read-only; a store the daemon has not created (or not yet
/// migrated to hold reports) has none.
fn read(
    path: &std::path::Path,
    domain: Option<&str>,
    since_s: i64,
    limit: usize,
) -> rusqlite::Result<Vec<TopSource>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let mut c = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    c.busy_timeout(Duration::from_secs(5))?;
    let has_reports: bool = c.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'dmarc_record'",
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if !has_reports {
        return Ok(Vec::new());
    }
    store::top_sources(&mut c, domain, since_s, limit)
}

fn print_text(out: &mut impl Write, rows: &[TopSource], since: Duration) -> std::io::Result<()> {
    if rows.is_empty() {
        return writeln!(
            out,
            "no DMARC failures in reports of the last {}",
            humantime::format_duration(since)
        );
    }
    writeln!(
        out,
        "{:<24} {:<39} {:>9} {:>9}  {:<20} {:<30} DKIM",
        "DOMAIN", "SOURCE IP", "FAILED", "MESSAGES", "REPORTERS", "SPF"
    )?;
    for r in rows {
        writeln!(
            out,
            "{:<24} {:<39} {:>9} {:>9}  {:<20} {:<30} {}",
            r.domain,
            r.source_ip,
            r.failed,
            r.messages,
            r.reporters,
            crate::text::excerpt(&r.spf, 60),
            crate::text::excerpt(&r.dkim, 60)
        )?;
    }
    Ok(())
}
