//! The probe loop: compose → send → (watch) → evaluate → record.
//!
//! - [`compose`] builds the verification-code message around a token;
//!   [`sign`] adds mailcanary's own DKIM signature where configured.
//! - [`send`] submits it over SMTP: a typed `Sent` or `SendFailure`.
//! - [`runner`] schedules probes, owns the in-flight runs, matches the
//!   watchers' arrivals (see [`crate::inbox`]) and judges them
//!   ([`crate::verdict`]).
//! - [`record`] is the store side: in flight before sending, final exactly once.
//! - [`events`] is the one place that logs and counts what happened.

pub mod cli;
pub mod compose;
pub mod events;
pub mod record;
pub mod reverify;
pub mod runner;
pub mod send;
pub mod sign;
pub mod trigger;

/// Where a probe ended up; the `placement` label of the result series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Placement {
    Inbox,
    Spam,
    /// A Gmail category tab (Promotions, Updates, ...).
    Tab,
    /// Not arrived when the probe's timeout passed.
    Missing,
    /// Arrived after the timeout (the run was counted missing first).
    Late,
    /// Arrived in time for the probe, but after the code's validity: the
    /// user could not have used it.
    Expired,
}

impl Placement {
    pub const ALL: [Placement; 5] = [
        Placement::Inbox,
        Placement::Spam,
        Placement::Tab,
        Placement::Missing,
        Placement::Late,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Placement::Inbox => "inbox",
            Placement::Spam => "spam",
            Placement::Tab => "tab",
            Placement::Missing => "missing",
            Placement::Late => "late",
            Placement::Expired => "expired",
        }
    }
}
