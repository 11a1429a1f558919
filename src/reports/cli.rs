//! `mailcanary reports parse [--format text|json] FILE...` (DESIGN.md, "CLI").
//!
//! JSON is one array with an object per FILE, in order; a file that is not a
//! readable report is `{"file", "kind": "invalid", "error"}`. Exit codes: 0
//! when every file is a report, 1 when one is not, 2 on a usage error (clap's
//! own errors exit 2 as well).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{parse, Limits, Report, ReportError, ReportKind};

/// The `kind` of a file that is not a readable report.
pub const INVALID: &str = "invalid";

/// Exit code: every file is a report.
pub const EXIT_OK: u8 = 0;
/// Exit code: at least one file is invalid.
pub const EXIT_INVALID: u8 = 1;

/// Output format of `reports parse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// One summary line per file (and per TLS policy).
    Text,
    /// The JSON of DESIGN.md: an array with an object per file.
    Json,
}

/// `mailcanary reports …`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ReportsCommand {
    /// Read DMARC aggregate and TLS-RPT reports (.xml, .xml.gz, .zip, .json, .json.gz, or a message carrying one) and print what they say.
    Parse(ParseArgs),
}

/// Arguments of `mailcanary reports parse`.
#[derive(Debug, Clone, clap::Args)]
pub struct ParseArgs {
    /// Report files.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: OutputFormat,
}

/// What one file says, as printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum FileSummary {
    /// A DMARC aggregate report.
    DmarcAggregate {
        /// The path as given.
        file: String,
        /// `dmarc_aggregate`.
        kind: &'static str,
        /// The reporting organization.
        org_name: String,
        /// The report id.
        report_id: String,
        /// The domain whose policy was applied.
        policy_domain: String,
        /// Start of the period (seconds since the epoch).
        begin: i64,
        /// End of the period.
        end: i64,
        /// Number of records.
        records: usize,
        /// Messages in all records.
        messages: u64,
        /// Messages whose aligned DKIM or SPF passed.
        dmarc_pass: u64,
        /// The other messages.
        dmarc_fail: u64,
    },
    /// An SMTP TLS report.
    TlsRpt {
        /// The path as given.
        file: String,
        /// `tls_rpt`.
        kind: &'static str,
        /// The reporting organization.
        org_name: String,
        /// The report id.
        report_id: String,
        /// One entry per policy.
        policies: Vec<PolicySummary>,
    },
    /// Not a readable report.
    Invalid {
        /// The path as given.
        file: String,
        /// `invalid`.
        kind: &'static str,
        /// Why.
        error: String,
    },
}

/// One TLS-RPT policy, as printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicySummary {
    /// `sts`, `tlsa`, `no-policy-found` or `other`.
    pub policy_type: &'static str,
    /// The policy's domain.
    pub policy_domain: String,
    /// Successful sessions.
    pub successful: u64,
    /// Failed sessions.
    pub failed: u64,
    /// Failed sessions per RFC 8460 result type.
    pub failures: BTreeMap<&'static str, u64>,
}

impl FileSummary {
    /// The summary of one file's outcome.
    pub fn new(file: &str, outcome: Result<Report, ReportError>) -> Self {
        let file = file.to_owned();
        match outcome {
            Ok(Report::Aggregate(r)) => FileSummary::DmarcAggregate {
                file,
                kind: ReportKind::DmarcAggregate.as_str(),
                messages: r.messages(),
                dmarc_pass: r.dmarc_pass(),
                dmarc_fail: r.dmarc_fail(),
                records: r.records.len(),
                org_name: r.org_name,
                report_id: r.report_id,
                policy_domain: r.policy.domain,
                begin: r.begin,
                end: r.end,
            },
            Ok(Report::Tls(r)) => FileSummary::TlsRpt {
                file,
                kind: ReportKind::TlsRpt.as_str(),
                org_name: r.org_name,
                report_id: r.report_id,
                policies: r
                    .policies
                    .iter()
                    .map(|p| PolicySummary {
                        policy_type: p.policy_type.as_str(),
                        policy_domain: p.policy_domain.clone(),
                        successful: p.successful,
                        failed: p.failed,
                        failures: p
                            .failures_by_type()
                            .into_iter()
                            .map(|(t, n)| (t.as_str(), n))
                            .collect(),
                    })
                    .collect(),
            },
            Err(e) => FileSummary::Invalid {
                file,
                kind: INVALID,
                error: e.to_string(),
            },
        }
    }

    fn is_invalid(&self) -> bool {
        matches!(self, FileSummary::Invalid { .. })
    }

    fn text(&self) -> String {
        match self {
            FileSummary::DmarcAggregate {
                file,
                kind: _,
                org_name,
                report_id,
                policy_domain,
                begin,
                end,
                records,
                messages,
                dmarc_pass,
                dmarc_fail,
            } => format!(
                "{file}: DMARC aggregate from {org_name} ({report_id}) for {policy_domain}, {} to {}: \
                 {records} records, {messages} messages, {dmarc_pass} pass, {dmarc_fail} fail",
                date(*begin),
                date(*end)
            ),
            FileSummary::TlsRpt {
                file,
                kind: _,
                org_name,
                report_id,
                policies,
            } => {
                let mut out = format!(
                    "{file}: TLS report from {org_name} ({report_id}), {} policies",
                    policies.len()
                );
                for p in policies {
                    out.push_str(&format!(
                        "\n  {} {}: {} successful, {} failed",
                        p.policy_type, p.policy_domain, p.successful, p.failed
                    ));
                    for (t, n) in &p.failures {
                        out.push_str(&format!(", {t} {n}"));
                    }
                }
                out
            }
            FileSummary::Invalid { file, error, .. } => format!("{file}: invalid: {error}"),
        }
    }
}

fn date(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| ts.to_string())
}

/// Reads a file of at most `limit` bytes.
fn read_file(path: &Path, limit: usize) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut bytes = Vec::new();
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() > limit {
        return Err(format!("larger than the limit of {limit} bytes"));
    }
    Ok(bytes)
}

/// Reads and summarizes one file.
pub fn summarize(path: &Path, limits: &Limits) -> FileSummary {
    let name = path.display().to_string();
    match read_file(path, limits.max_input) {
        Ok(bytes) => FileSummary::new(&name, parse(&bytes, limits)),
        Err(error) => FileSummary::Invalid {
            file: name,
            kind: INVALID,
            error,
        },
    }
}

/// Runs `reports …`; returns the exit code.
pub fn run(command: ReportsCommand) -> u8 {
    match command {
        ReportsCommand::Parse(args) => run_parse(&args),
    }
}

fn run_parse(args: &ParseArgs) -> u8 {
    let limits = Limits::default();
    let summaries: Vec<FileSummary> = args.files.iter().map(|f| summarize(f, &limits)).collect();
    let mut out = std::io::stdout().lock();
    let written = match args.format {
        OutputFormat::Json => serde_json::to_writer_pretty(&mut out, &summaries)
            .map_err(std::io::Error::other)
            .and_then(|()| writeln!(out)),
        OutputFormat::Text => summaries
            .iter()
            .try_for_each(|s| writeln!(out, "{}", s.text())),
    };
    if let Err(e) = written.and_then(|()| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: cannot write the output: {e}");
        }
        return EXIT_INVALID;
    }
    if summaries.iter().any(FileSummary::is_invalid) {
        EXIT_INVALID
    } else {
        EXIT_OK
    }
}
