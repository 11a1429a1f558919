//! `mailcanary status`: the support view from the store, without the daemon
//! (the store is SQLite in WAL mode, so reading beside a running daemon is
//! safe). The language follows `LC_ALL` / `LC_MESSAGES` / `LANG` (`zh*`:
//! Chinese, else English).

use std::path::PathBuf;
use std::sync::Arc;

use super::guidance::Lang;
use super::{compute, now_ms, page, Query, Source, StatusError};
use crate::config;
use crate::store::Store;

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The main config file (its state_dir holds the store).
    #[arg(long, short)]
    pub config: PathBuf,
    /// The user's mail domain (or address: only the domain is used).
    #[arg(long)]
    pub domain: Option<String>,
    /// When the user asked for the code: RFC 3339, "YYYY-MM-DD HH:MM" or "HH:MM" (UTC); default now.
    #[arg(long)]
    pub at: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

/// The language of the environment's locale.
fn env_lang() -> Lang {
    ["LC_ALL", "LC_MESSAGES", "LANG"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .and_then(|v| Lang::parse(&v))
        .unwrap_or_default()
}

/// Run the command; returns the process exit code (0 answered, 1 the store
/// could not be read, 2 a bad config, domain or time).
pub async fn run(args: StatusArgs) -> u8 {
    let config = match config::load(&args.config) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            for line in e.to_string().lines() {
                eprintln!("error: {line}");
            }
            return 2;
        }
    };
    let state_dir = config.daemon.state_dir.clone();
    let store = match tokio::task::spawn_blocking(move || Store::open(&state_dir)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            return 1;
        }
        Err(_) => return 1,
    };
    let q = Query {
        domain: args.domain,
        at: args.at,
        lang: env_lang(),
    };
    let report = match compute(&Source::new(store, config), &q, now_ms()).await {
        Ok(r) => r,
        Err(e @ (StatusError::Time | StatusError::Future(_) | StatusError::Domain(_))) => {
            eprintln!("error: {e}");
            return 2;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    match args.format {
        Format::Text => print!("{}", page::text(&report)),
        Format::Json => match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: {e}");
                return 1;
            }
        },
    }
    0
}
