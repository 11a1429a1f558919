//! Structured logs via tracing: human-readable by default, JSON on request.
//!
//! Logs go to stderr (journald picks them up under systemd). The level comes
//! from `--log-level`, or from `MAILCANARY_LOG` (an `EnvFilter` directive) when set.

use tracing_subscriber::EnvFilter;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Targets whose trace output would carry secrets, capped at `info`.
const SILENCED: &[&str] = &["async_imap=info", "imap_proto=info"];

/// Install the global subscriber. Safe to call once per process.
pub fn init(format: LogFormat, level: &str) {
    let filter = std::env::var("MAILCANARY_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(level));
    // async-imap traces the raw protocol, LOGIN passwords and AUTHENTICATE
    // tokens included: never let it below debug, whatever was asked for.
    let filter = SILENCED
        .iter()
        .filter_map(|d| d.parse().ok())
        .fold(filter, EnvFilter::add_directive);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}
