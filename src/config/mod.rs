//! Configuration: one TOML file plus drop-in probe files.
//!
//! Loading happens in two steps. Serde reads the text into `raw` structs that
//! reject unknown keys and keep spans; [`load`] then checks meaning (names a
//! probe refers to exist, secret files are readable, addresses parse) and
//! builds the resolved [`Config`] the daemon uses. Every problem is reported
//! as a [`Diagnostic`] naming `file:line:col` and the key, and all problems of
//! a load are reported together.

//!
//! Layout: [`model`] is the resolved configuration; [`load`] reads the
//! files; `check/` has one file of checks per section (senders, seeds,
//! probes, domains); [`web`] is the web-config file (TLS, users) of the
//! HTTP endpoint; [`presets`] the providers' IMAP settings.

mod check;
mod diag;
mod duration;
pub mod load;
pub mod model;
pub mod presets;
mod raw;
pub mod web;

pub use diag::Diagnostic;
pub use duration::HumanDuration;
pub(crate) use load::list;
pub use load::{load, valid_name, ConfigError};
pub use model::*;
