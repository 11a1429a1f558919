//! `mailcanary bounce`: classify non-delivery reports (DESIGN.md, "CLI").
//!
//! JSON: one array, an object per FILE in argument order,
//! `{"file", "bounces": [{"recipient_domain", "action", "status",
//! "reply_code", "reason", "remote_mta", "diagnostic"}]}` (`[]` for a
//! message that reports nothing), or `{"file", "error"}` for a file that
//! cannot be read. Exit 0, or 1 when a file could not be read (clap's usage
//! errors exit 2). The full address appears only with `--show-addresses`:
//! a real app's bounce mailbox holds its users' addresses.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::{classify_with, Bounce, Options, MAX_MESSAGE_BYTES};
use crate::mailbox_provider;

/// Exit code: every file was read.
pub const EXIT_OK: u8 = 0;
/// Exit code: at least one file could not be read.
pub const EXIT_UNREADABLE: u8 = 1;

/// Output format of `bounce`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// One line per recipient, for people.
    Text,
    /// The JSON of DESIGN.md.
    Json,
}

/// Arguments of `mailcanary bounce`.
#[derive(Debug, Clone, clap::Args)]
pub struct BounceArgs {
    /// Messages to classify, one per file (RFC 5322, as stored in Maildir or
    /// saved from a mail client); `-` reads standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: OutputFormat,
    /// Show recipients' full addresses (personal data) instead of their domain only.
    #[arg(long)]
    pub show_addresses: bool,
    /// Also report automatic replies (out of office) as reason `vacation`.
    #[arg(long)]
    pub vacation: bool,
}

/// Why a file could not be classified.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one message, at most [`MAX_MESSAGE_BYTES`] of it (the rest is the
/// returned original and is never looked at).
fn read_message(path: &Path) -> Result<Vec<u8>, ReadError> {
    let mut buf = Vec::new();
    let limit = MAX_MESSAGE_BYTES as u64;
    if path == Path::new("-") {
        std::io::stdin().lock().take(limit).read_to_end(&mut buf)?;
    } else {
        std::fs::File::open(path)?
            .take(limit)
            .read_to_end(&mut buf)?;
    }
    Ok(buf)
}

/// The outcome for one FILE argument.
pub struct FileResult {
    /// The argument as given.
    pub file: String,
    /// The recipients reported, or why the file could not be read.
    pub bounces: Result<Vec<Bounce>, ReadError>,
}

/// Classifies every file, in order.
pub fn classify_files(args: &BounceArgs) -> Vec<FileResult> {
    let options = Options {
        vacation: args.vacation,
    };
    args.files
        .iter()
        .map(|path| FileResult {
            file: path.display().to_string(),
            bounces: read_message(path).map(|raw| classify_with(&raw, options).bounces),
        })
        .collect()
}

/// One bounce as the JSON object of DESIGN.md.
pub fn bounce_json(b: &Bounce, show_addresses: bool) -> Value {
    let mut v = json!({
        // A feedback report that withholds its complainant names no domain.
        "recipient_domain": (!b.recipient_domain.is_empty()).then_some(&b.recipient_domain),
        "action": b.action.map(|a| a.as_str()),
        "status": b.status.map(|s| s.to_string()),
        "reply_code": b.reply_code.map(|c| c.to_string()),
        "reason": b.reason.as_str(),
        "remote_mta": b.remote_mta,
        "diagnostic": b.diagnostic,
    });
    if show_addresses {
        v["recipient"] = if b.recipient.is_empty() {
            Value::Null
        } else {
            Value::String(b.recipient.clone())
        };
    }
    v
}

/// The whole JSON document.
pub fn render_json(results: &[FileResult], show_addresses: bool) -> Value {
    Value::Array(
        results
            .iter()
            .map(|r| match &r.bounces {
                Ok(bs) => json!({
                    "file": r.file,
                    "bounces": bs.iter().map(|b| bounce_json(b, show_addresses)).collect::<Vec<_>>(),
                }),
                Err(e) => json!({"file": r.file, "error": e.to_string()}),
            })
            .collect(),
    )
}

/// The text report: a line per recipient.
pub fn render_text(results: &[FileResult], show_addresses: bool) -> String {
    let mut out = String::new();
    for r in results {
        match &r.bounces {
            Err(e) => out.push_str(&format!("{}: error: {e}\n", r.file)),
            Ok(bs) if bs.is_empty() => out.push_str(&format!("{}: not a bounce\n", r.file)),
            Ok(bs) => {
                for b in bs {
                    let who = if b.recipient.is_empty() {
                        "(undisclosed)".to_owned()
                    } else if show_addresses {
                        b.recipient.clone()
                    } else {
                        format!("*@{}", b.recipient_domain)
                    };
                    let mut line = format!(
                        "{}: {who} {} {} {}",
                        r.file,
                        b.reason,
                        b.action.map_or("-", |a| a.as_str()),
                        b.status.map_or_else(|| "-".to_owned(), |s| s.to_string()),
                    );
                    if let Some(c) = b.reply_code {
                        line.push_str(&format!(" {c}"));
                    }
                    if let Some(m) = &b.remote_mta {
                        line.push_str(&format!(" via {m}"));
                    }
                    if let Some(t) = mailbox_provider::typo_of(&b.recipient_domain) {
                        line.push_str(&format!(" (probably meant {})", t.meant));
                    }
                    if let Some(d) = &b.diagnostic {
                        line.push_str(&format!(" — {d}"));
                    }
                    out.push_str(&line);
                    out.push('\n');
                }
            }
        }
    }
    out
}

/// Runs the command; returns the process exit code.
pub fn run(args: BounceArgs) -> u8 {
    let results = classify_files(&args);
    let text = match args.format {
        OutputFormat::Json => {
            let mut s = serde_json::to_string_pretty(&render_json(&results, args.show_addresses))
                .unwrap_or_else(|_| "[]".to_owned());
            s.push('\n');
            s
        }
        OutputFormat::Text => render_text(&results, args.show_addresses),
    };
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return EXIT_UNREADABLE;
    }
    if results.iter().any(|r| r.bounces.is_err()) {
        EXIT_UNREADABLE
    } else {
        EXIT_OK
    }
}
