//! The `mailcanary` binary: argument parsing, signals and exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use mailcanary::config::{self, ConfigError};
use mailcanary::daemon;
use mailcanary::logging::{self, LogFormat};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Exit code for usage and configuration errors (DESIGN.md, "CLI").
const EXIT_USAGE: u8 = 2;

#[derive(Parser)]
#[command(
    name = "mailcanary",
    version,
    about = "Mail-deliverability diagnostics: verification-code probes, seed inboxes, DNS audit, Prometheus metrics"
)]
struct Cli {
    /// Log line format (logs go to stderr).
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Log level: error, warn, info, debug, trace (MAILCANARY_LOG overrides).
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: probes on schedule, DNS audit, /metrics.
    Run {
        /// The main config file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run probes now and print their results (`--once`: one round, then exit).
    Probe(mailcanary::probe::cli::ProbeArgs),
    /// Audit the DNS of domains now: SPF, DKIM, DMARC, MX, MTA-STS, TLS-RPT, BIMI, DNSSEC, PTR, DNSBL.
    Check(Box<mailcanary::audit::cli::CheckArgs>),
    /// DMARC aggregate and TLS-RPT reports.
    #[command(subcommand)]
    Reports(ReportsCommand),
    /// Classify bounces (non-delivery reports): recipient domain, status and reason.
    Bounce(mailcanary::bounce::cli::BounceArgs),
    /// The support view: per provider and sender, is verification mail arriving, and what to tell a user.
    Status(mailcanary::status::cli::StatusArgs),
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Write the man pages and shell completions into DIR (for packaging).
    #[command(hide = true)]
    GenerateManual { dir: PathBuf },
}

/// `mailcanary reports …`: the pure commands of `reports`, and `top`, which
/// reads the daemon's store.
#[derive(Subcommand)]
enum ReportsCommand {
    #[command(flatten)]
    Files(mailcanary::reports::cli::ReportsCommand),
    /// The source IPs with the most DMARC failures in the reports the daemon ingested (from its store).
    Top(mailcanary::ingest::top::TopArgs),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a config file and its drop-in probe files; exit 0 if valid, 2 if not.
    Check {
        /// The main config file.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format, &cli.log_level);
    match cli.command {
        Command::Run { config } => run(config),
        Command::Probe(args) => match tokio::runtime::Runtime::new() {
            Ok(rt) => ExitCode::from(rt.block_on(mailcanary::probe::cli::run(args))),
            Err(e) => {
                eprintln!("error: cannot start the async runtime: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Check(args) => ExitCode::from(mailcanary::audit::cli::run_blocking(*args)),
        Command::Reports(ReportsCommand::Files(command)) => {
            ExitCode::from(mailcanary::reports::cli::run(command))
        }
        Command::Reports(ReportsCommand::Top(args)) => {
            ExitCode::from(mailcanary::ingest::top::run(args))
        }
        Command::Bounce(args) => ExitCode::from(mailcanary::bounce::cli::run(args)),
        Command::Status(args) => match tokio::runtime::Runtime::new() {
            Ok(rt) => ExitCode::from(rt.block_on(mailcanary::status::cli::run(args))),
            Err(e) => {
                eprintln!("error: cannot start the async runtime: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Config {
            command: ConfigCommand::Check { file },
        } => config_check(&file),
        Command::GenerateManual { dir } => match mailcanary::manual::write(Cli::command(), &dir) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: cannot write the manual into {}: {e}", dir.display());
                ExitCode::FAILURE
            }
        },
    }
}

fn config_check(file: &std::path::Path) -> ExitCode {
    match config::load(file) {
        Ok(c) => {
            for w in &c.warnings {
                eprintln!("warning: {w}");
            }
            println!(
                "{}: OK ({} senders, {} seeds, {} probes)",
                file.display(),
                c.senders.len(),
                c.seeds.len(),
                c.probes.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            print_config_error(&e);
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn print_config_error(e: &ConfigError) {
    for line in e.to_string().lines() {
        eprintln!("error: {line}");
    }
}

fn run(config_path: PathBuf) -> ExitCode {
    let config = match config::load(&config_path) {
        Ok(c) => c,
        Err(e) => {
            print_config_error(&e);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    daemon::raise_open_files_limit(&config);
    mailcanary::memory::limit_arenas();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let (reload_tx, reload_rx) = mpsc::channel(1);
        if let Err(e) = watch_signals(shutdown.clone(), reload_tx) {
            eprintln!("error: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
        match daemon::run(config, shutdown, reload_rx, |_| {}).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!(error = %e, "mailcanary stopped with an error");
                ExitCode::FAILURE
            }
        }
    })
}

/// SIGTERM/SIGINT start a graceful shutdown (a second one exits at once);
/// SIGHUP asks for a config reload.
fn watch_signals(shutdown: CancellationToken, reload: mpsc::Sender<()>) -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
                _ = hup.recv() => {
                    // A reload already queued covers this one too.
                    let _ = reload.try_send(());
                    continue;
                }
            }
            if shutdown.is_cancelled() {
                tracing::warn!("second stop signal: exiting without draining");
                std::process::exit(1);
            }
            shutdown.cancel();
        }
    });
    Ok(())
}
