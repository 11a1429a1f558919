//! mailcanary — a self-hosted mail-deliverability diagnostic daemon.
//!
//! On a schedule it sends realistic verification-code mail from the
//! operator's own identities to seed inboxes, watches those inboxes, records
//! where and how fast each probe arrived and what the receiver thought of its
//! SPF/DKIM/DMARC, audits the sending domains' DNS, and exports it all as
//! Prometheus metrics. The contracts that dashboards, alerts and scripts
//! depend on (CLI, JSON, metric names, finding ids) are documented under
//! `docs/` (start at the README).
//!
//! # How a probe flows
//!
//! ```text
//! probe::scheduler ─► message (compose, sign) ─► probe::send | probe::trigger
//!        │                                         │ Sent / SendFailure
//!        ▼                                         ▼
//!   probe::recorder ◄── Cmd ───────────────────────┘   (run in flight in the store first)
//!        ▲
//!        │ WatchEvent::Arrival (token found by message::token)
//!   inbox (IMAP IDLE / Maildir watchers)
//!        │
//!   recorder: verdict::judge + verdict::reverify ─► probe::evaluate (pure) ─► Outcome
//!        ─► probe::record (final exactly once) ─► probe::events ─► metrics ─► http /metrics
//! ```
//!
//! # Layout
//!
//! Data flows one way: a stage imports only earlier stages and leaf
//! modules, and talks to the next through a small typed value.
//!
//! Leaf modules (they import no stage):
//! - [`message`] — the probe message: token, code, template, composition,
//!   DKIM signing with a key parsed at load, finding the token again.
//! - [`secret`] — secrets whose `Debug` shows nothing.
//! - [`text`] — the one place that bounds server text and redacts secrets
//!   from it.
//! - [`dns`] — the DNS client (one multiplexed socket per audit run;
//!   answers typed found / not found / unknown).
//! - [`tls`], [`store`] (SQLite on its own thread), [`metrics`] (every
//!   series defined once), [`contain`] (panics kept inside one task),
//!   [`notify`] (systemd), [`logging`], [`memory`] (freed heap back to
//!   the system).
//! - [`mailbox_provider`] — consumer domains and MX hosts → provider, typo
//!   domains → the domain meant.
//! - [`bounce`] and [`reports`] — pure parsers: bounces (Sisimai's reason
//!   vocabulary) and DMARC aggregate / TLS-RPT reports, with their commands.
//!
//! Stages, in the order data flows:
//! - [`config`] — the TOML file and drop-in probe files: [`config::model`]
//!   is what the daemon runs with, [`config::load`] reads the files, and one
//!   file of checks per section names `file:line:col` and the key of every
//!   problem; [`config::web`] is the HTTP endpoint's web config.
//! - [`inbox`] — one watcher per seed folder; hands the recorder an
//!   `Arrival` and removes the message only when told to.
//! - [`verdict`] — what the receiver said (Authentication-Results, Received
//!   chain, spam headers) and mailcanary's own DKIM check of the copy.
//! - [`probe`] — scheduler, senders, recorder, the pure `evaluate`, the
//!   [`probe::Outcome`] enum, store records, events; `mailcanary probe`.
//! - [`ingest`] — the app's own mailboxes (`[reports.*]`, `[bounces.*]`):
//!   one actor parses reports and classifies bounces once per message
//!   (de-duplicated in the store across restarts) and counts them;
//!   `mailcanary reports top`.
//! - [`audit`] — the DNS audit behind `mailcanary check`: per record type a
//!   pure parser and a judge with one shape, the finding catalogue.
//! - [`status`] — the support view: per provider and sender, is
//!   verification mail arriving, and what to tell a user (read from the
//!   store and config; `/status`, `/api/v1/status`, `mailcanary status`).
//! - [`http`] — `/metrics`, `/-/healthy`, `/-/ready`, `/status` and
//!   `/api/v1/status` behind the web config.
//! - [`manual`] — man pages and shell completions from the CLI definition,
//!   for packaging (`scripts/package.sh`).
//! - [`daemon`] — lifecycle: [`daemon::run`] takes the loaded config and its
//!   shutdown and reload triggers as parameters; it opens the store, serves
//!   HTTP, runs the workers, reloads on request and drains on shutdown.
//!
//! `python3 ../shared/tools/modgraph.py src` prints the import graph of the
//! top-level modules (it has no cycle):
//!
//! ```text
//! audit -> config, dns, metrics, store, text
//! bounce -> mailbox_provider
//! config -> message, secret
//! contain -> text
//! daemon -> audit, config, http, ingest, memory, metrics, notify, probe, status, store
//! dns -> text
//! http -> config, metrics, status
//! inbox -> config, contain, message, text, tls
//! ingest -> bounce, config, inbox, mailbox_provider, metrics, reports, store, text
//! logging -> -
//! mailbox_provider -> -
//! manual -> -
//! memory -> -
//! message -> -
//! metrics -> contain
//! notify -> -
//! probe -> bounce, config, contain, dns, inbox, message, metrics, store, text, tls, verdict
//! reports -> -
//! secret -> -
//! status -> audit, bounce, config, dns, mailbox_provider, probe, store
//! store -> -
//! text -> -
//! tls -> -
//! verdict -> message, text
//! ```
//!
//! - [`text`] — leaf: the one place outside words are bounded ([`text::bounded`],
//!   [`text::excerpt`], [`text::server`]) and secrets redacted from server text.
//! - [`contain`] — leaf: panics in watcher and sender tasks are caught,
//!   logged and counted (`docs/reliability.md` lists every bound on server input).
//!
//! The binary (`src/main.rs`) is the only place that touches signals and
//! process exit codes.

pub mod audit;
pub mod bounce;
pub mod config;
pub mod contain;
pub mod daemon;
pub mod dns;
pub mod http;
pub mod inbox;
pub mod ingest;
pub mod logging;
pub mod mailbox_provider;
pub mod manual;
pub mod memory;
pub mod message;
pub mod metrics;
pub mod notify;
pub mod probe;
pub mod reports;
pub mod secret;
pub mod status;
pub mod store;
pub mod text;
pub mod tls;
pub mod verdict;
