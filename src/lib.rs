//! mailcanary — a self-hosted mail-deliverability diagnostic daemon.
//!
//! On a schedule it sends realistic verification-code mail from the
//! operator's own identities to seed inboxes, watches those inboxes, records
//! where and how fast each probe arrived and what the receiver thought of its
//! SPF/DKIM/DMARC, audits the sending domains' DNS, and exports it all as
//! Prometheus metrics. See `DESIGN.md` for the contracts (CLI, JSON, metric
//! names) that dashboards and alert rules depend on.
//!
//! # Layout
//!
//! Data flows one way; each stage has one module and hands the next a small
//! typed value.
//!
//! - [`config`] — the TOML file and drop-in probe files: raw serde structs
//!   that reject unknown keys, then checks of meaning. Every problem names
//!   `file:line:col` and the key. Secrets only from `*_file` / `*_env`.
//! - [`daemon`] — lifecycle: [`daemon::run`] takes the loaded config and its
//!   shutdown and reload triggers as parameters; it opens the store, serves
//!   HTTP, runs the workers, reloads on request and drains on shutdown.
//! - [`store`] — SQLite (bundled) on its own thread; the schema of probe runs
//!   in flight and final, migrated forward with `PRAGMA user_version`.
//! - [`metrics`] — every exported series as a documented constant (type,
//!   unit, labels), and the registry that renders `/metrics`.
//! - [`http`] — hyper 1 endpoint: `/metrics`, `/-/healthy`, `/-/ready`;
//!   optional TLS and Basic auth from an exporter-toolkit `web.yml`
//!   ([`http::web_config`], [`http::auth`]).
//! - [`notify`] — systemd `sd_notify`: READY, RELOADING, STOPPING, STATUS and
//!   watchdog pings; a no-op outside systemd.
//! - [`logging`] — tracing subscriber, text or JSON.
//! - [`probe`] — the probe stages: [`probe::compose`] builds a
//!   verification-code message around a token, [`probe::send`] submits it
//!   over SMTP and returns a typed `Sent` or `SendFailure`.
//! - [`audit`] — the DNS audit behind `mailcanary check`: pure parsers and
//!   judges per record type (SPF, DKIM, DMARC, MX, MTA-STS, TLS-RPT, BIMI,
//!   DNSSEC, PTR, DNSBL) that take fetched answers and return findings with
//!   stable ids; [`audit::lookup`] (hickory, typed found / not found /
//!   unknown) and [`audit::net`] (STARTTLS, MTA-STS policy over HTTPS) fetch;
//!   [`audit::run`] audits domains; [`audit::cli`] is the command.
//!
//! - [`text`] — leaf: the one place outside words are bounded ([`text::bounded`],
//!   [`text::excerpt`], [`text::server`]) and secrets redacted from server text.
//! - [`contain`] — leaf: panics in watcher and sender tasks are caught,
//!   logged and counted (`docs/reliability.md` lists every bound on server input).
//!
//! The binary (`src/main.rs`) is the only place that touches signals and
//! process exit codes.

pub mod audit;
pub mod config;
pub mod contain;
pub mod daemon;
pub mod http;
pub mod inbox;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod probe;
pub mod store;
pub mod text;
pub mod tls;
pub mod verdict;
