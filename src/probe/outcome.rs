//! How a probe run ends: one closed set of outcomes, the single source of
//! the store's `outcome` column, the `placement` label values, the CLI's
//! and the JSON's `outcome` field.
//!
//! Which series an outcome appears in is a property of the outcome
//! ([`Outcome::is_result`], [`Outcome::is_state`], [`Outcome::has_latency`]),
//! so every label list is derived from [`Outcome::ALL`] and a new outcome
//! is counted, pre-created and shown everywhere by adding its variant here.

use super::evaluate::Delivery;
use super::send::SendFailure;
use crate::bounce::{Reason, Status};
use crate::inbox::gmail::Tab;
use crate::verdict::reverify::LocalDkim;
use crate::verdict::Verdict;

/// Where a probe run ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// Delivered to the inbox in time.
    Inbox,
    /// Delivered to the spam folder in time.
    Spam,
    /// Delivered to a Gmail category tab (Promotions, Updates, ...) in time.
    Tab,
    /// Arrived in time for the probe, but after the code's validity: the
    /// user could not have used it.
    Expired,
    /// Not arrived when the probe's timeout passed.
    Missing,
    /// Arrived after the timeout (the run was counted missing first).
    Late,
    /// A receiver refused it: a bounce (RFC 3464 action `failed`) for the
    /// run reached the sender's bounce mailbox (see the run's bounce reason).
    Bounced,
    /// The message never left: the relay or the app refused it (see the
    /// run's send-failure reason).
    SendFailed,
}

impl Outcome {
    pub const ALL: [Outcome; 8] = [
        Outcome::Inbox,
        Outcome::Spam,
        Outcome::Tab,
        Outcome::Expired,
        Outcome::Missing,
        Outcome::Late,
        Outcome::Bounced,
        Outcome::SendFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Inbox => "inbox",
            Outcome::Spam => "spam",
            Outcome::Tab => "tab",
            Outcome::Expired => "expired",
            Outcome::Missing => "missing",
            Outcome::Late => "late",
            Outcome::Bounced => "bounced",
            Outcome::SendFailed => "send_failed",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// Counted in `mailcanary_probe_results_total` (a send failure is
    /// counted in `mailcanary_probe_send_failures_total` instead).
    pub fn is_result(self) -> bool {
        self != Outcome::SendFailed
    }

    /// A value of the `mailcanary_probe_placement` state set. `late` is
    /// not: a late arrival does not change what the last probe showed.
    pub fn is_state(self) -> bool {
        self != Outcome::Late
    }

    /// The message reached a mailbox, so it has a latency (and a folder).
    pub fn has_latency(self) -> bool {
        !matches!(
            self,
            Outcome::Missing | Outcome::Bounced | Outcome::SendFailed
        )
    }

    /// The outcome says only that the seed's watcher did not see the
    /// message in time (missing, or seen after the timeout): it means
    /// nothing when the watcher could not watch. Every other outcome is
    /// something seen (a copy in a folder, a bounce, a send failure).
    pub fn needs_watcher(self) -> bool {
        match self {
            Outcome::Missing | Outcome::Late => true,
            Outcome::Inbox
            | Outcome::Spam
            | Outcome::Tab
            | Outcome::Expired
            | Outcome::Bounced
            | Outcome::SendFailed => false,
        }
    }

    /// What the person waiting for the code experienced; the support view
    /// (`/status`, `mailcanary status`) judges states and picks guidance by this alone.
    pub fn user_sees(self) -> UserSees {
        match self {
            Outcome::Inbox => UserSees::Inbox,
            Outcome::Tab => UserSees::Tab,
            Outcome::Spam => UserSees::Spam,
            Outcome::Expired | Outcome::Late => UserSees::TooLate,
            Outcome::Missing => UserSees::Nothing,
            Outcome::Bounced => UserSees::Refused,
            Outcome::SendFailed => UserSees::NotSent,
        }
    }

    /// Values of the `placement` label of `mailcanary_probe_results_total`.
    pub fn results() -> impl Iterator<Item = Outcome> {
        Outcome::ALL.into_iter().filter(|o| o.is_result())
    }

    /// Values of the `mailcanary_probe_placement` state set.
    pub fn states() -> impl Iterator<Item = Outcome> {
        Outcome::ALL.into_iter().filter(|o| o.is_state())
    }

    /// Values of the `placement` label of `mailcanary_delivery_latency_seconds`.
    pub fn latencies() -> impl Iterator<Item = Outcome> {
        Outcome::ALL.into_iter().filter(|o| o.has_latency())
    }
}

/// What a probe's outcome means for a user waiting for their code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UserSees {
    /// The code is in the inbox.
    Inbox,
    /// The code is in a category tab (Gmail's Promotions, Updates): visible.
    Tab,
    /// The code is in the spam folder.
    Spam,
    /// The code came after it could be used (or after the probe gave up).
    TooLate,
    /// Nothing arrived.
    Nothing,
    /// Our side never sent it (relay or app refused).
    NotSent,
    /// The user's provider refused it and said so (a bounce).
    Refused,
}

impl UserSees {
    /// The user could find and use the code where they normally look.
    pub fn reached(self) -> bool {
        matches!(self, UserSees::Inbox | UserSees::Tab)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Outcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Everything known when a run ends (or turns late). The store's row
/// ([`super::record::Finish`]), the event ([`super::events::ProbeEvent`])
/// and the CLI's result ([`super::result::RunResult`]) are all views of it.
#[derive(Debug, Clone)]
pub struct Ended {
    pub token: String,
    pub probe: String,
    pub sender: String,
    pub seed: String,
    pub provider: String,
    pub outcome: Outcome,
    /// Why the message never left, with outcome `send_failed`.
    pub failure: Option<SendFailure>,
    /// What arrived, for outcomes that reached a mailbox.
    pub arrived: Option<Arrived>,
    /// What the receiver's refusal said, with outcome `bounced`.
    pub bounce: Option<Refusal>,
    /// When the relay accepted it (or the app was asked), Unix ms.
    pub submitted_ms: Option<i64>,
    /// When the run became final, Unix ms.
    pub final_ms: i64,
}

/// A delivered copy: the evaluation and what the receiver said.
#[derive(Debug, Clone)]
pub struct Arrived {
    pub delivery: Delivery,
    /// The server's folder name.
    pub folder: String,
    /// The Gmail tab the watcher saw the message in, whatever the outcome.
    pub seen_tab: Option<Tab>,
    pub verdict: Verdict,
    pub dkim_local: LocalDkim,
    /// Unix ms: mailcanary first saw it / the mailbox stored it / the
    /// message's Date (when its sender composed it; one-second resolution).
    pub seen_ms: i64,
    pub stored_ms: Option<i64>,
    pub created_ms: Option<i64>,
}

/// A receiver's refusal of a run, as its bounce reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: Reason,
    /// Enhanced status code (RFC 3463).
    pub status: Option<Status>,
    /// SMTP reply code.
    pub reply_code: Option<u16>,
    /// The host that refused, as the bounce names it (a server's words:
    /// bounded, and never a label).
    pub remote_mta: Option<String>,
}

impl Ended {
    /// The run's label values.
    pub fn labels(&self) -> RunLabels<'_> {
        RunLabels {
            probe: &self.probe,
            sender: &self.sender,
            seed: &self.seed,
            provider: &self.provider,
        }
    }

    /// The bounded reason behind the outcome, if it has one.
    pub fn reason(&self) -> Option<&'static str> {
        match (&self.failure, &self.bounce) {
            (Some(f), _) => Some(f.reason.as_str()),
            (None, Some(b)) => Some(b.reason.as_str()),
            (None, None) => None,
        }
    }
}

/// Who a probe run belongs to; the label values of its series.
#[derive(Debug, Clone)]
pub struct RunLabels<'a> {
    pub probe: &'a str,
    pub sender: &'a str,
    pub seed: &'a str,
    pub provider: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
            assert!(seen.insert(o.as_str()), "{o} twice");
        }
        assert_eq!(Outcome::parse("delivered"), None);
    }

    #[test]
    fn label_sets_follow_the_outcomes_properties() {
        let names = |it: &mut dyn Iterator<Item = Outcome>| -> Vec<&str> {
            it.map(Outcome::as_str).collect()
        };
        assert_eq!(
            names(&mut Outcome::results()),
            ["inbox", "spam", "tab", "expired", "missing", "late", "bounced"]
        );
        assert_eq!(
            names(&mut Outcome::states()),
            [
                "inbox",
                "spam",
                "tab",
                "expired",
                "missing",
                "bounced",
                "send_failed"
            ]
        );
        assert_eq!(
            names(&mut Outcome::latencies()),
            ["inbox", "spam", "tab", "expired", "late"]
        );
    }
}
