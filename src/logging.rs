//! Structured logs via tracing: human-readable by default, JSON on request.
//!
//! Logs go to stderr (journald picks them up under systemd). The level comes
//! from `--log-level`, or from `MAILCANARY_LOG` (an `EnvFilter` directive) when set.

use tracing::Level;
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::prelude::*;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Crates whose debug and trace output carries secrets: async-imap traces
/// the raw protocol, LOGIN passwords and AUTHENTICATE tokens included.
const SILENCED: &[&str] = &["async_imap", "imap_proto"];

/// Whether an event may be written at all, whatever `MAILCANARY_LOG` asks:
/// the silenced crates only at `info` and above. A layer filter of its own,
/// so no `EnvFilter` directive (however specific its target) can lift it.
pub fn allowed(target: &str, level: &Level) -> bool {
    *level <= Level::INFO || !SILENCED.iter().any(|c| target.starts_with(c))
}

/// Install the global subscriber. Safe to call once per process.
pub fn init(format: LogFormat, level: &str) {
    let filter = std::env::var("MAILCANARY_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(level));
    let guard = filter_fn(|m| allowed(m.target(), m.level()));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let layer = match format {
        LogFormat::Text => fmt
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed(),
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(filter).with_filter(guard))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_imap_protocol_trace_is_never_written() {
        for target in [
            "async_imap",
            "async_imap::imap_stream",
            "imap_proto::parser",
        ] {
            assert!(!allowed(target, &Level::TRACE), "{target}");
            assert!(!allowed(target, &Level::DEBUG), "{target}");
            assert!(allowed(target, &Level::INFO), "{target}");
        }
        assert!(allowed("mailcanary::inbox::imap", &Level::TRACE));
        assert!(allowed("async_imapx", &Level::INFO));
    }
}
