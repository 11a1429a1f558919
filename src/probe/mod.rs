//! The probe loop: schedule → compose and send → (watch) → evaluate → record.
//!
//! - [`scheduler`] fires each probe on its interval: one run per seed (or a
//!   resend burst), composed from [`crate::message`] and handed to [`send`]
//!   (SMTP) or [`trigger`] (the app's endpoint), which return a typed
//!   `Sent` or `SendFailure`.
//! - [`recorder`] owns the in-flight runs: it matches the watchers'
//!   arrivals (see [`crate::inbox`]) to runs, gathers the receiver's
//!   verdict ([`crate::verdict`]) and asks [`evaluate`], a pure function,
//!   what the arrival means; the [`outcome`] is one closed enum.
//! - [`record`] is the store side: in flight before sending, final exactly once;
//!   [`history`] moves old runs into slice counts (the second tier).
//! - [`events`] is the one place that logs and counts what happened;
//!   [`result`] is what `mailcanary probe` prints ([`cli`]).
//! - [`pipeline`] assembles the recorder, watchers and schedulers for both
//!   `mailcanary run` and `mailcanary probe`.

pub mod cli;
pub mod evaluate;
pub mod events;
pub mod history;
pub mod notice;
pub mod outcome;
pub mod pipeline;
pub mod record;
pub mod recorder;
pub mod result;
pub mod scheduler;
pub mod send;
pub mod trigger;

pub use outcome::Outcome;
