//! Judging an arrival: a pure function from the run, what the watcher saw
//! and the probe's settings to what the run's outcome is. No store, no
//! clock, no I/O: the recorder gathers the facts, calls [`evaluate`], and
//! records what it returns; the tests below cover every branch.

use std::collections::HashSet;
use std::time::Duration;

use super::outcome::Outcome;
use crate::inbox::gmail::Tab;
use crate::inbox::FolderRole;

/// A watcher that sees a message this long after its INTERNALDATE was not
/// watching live; the mailbox's time is then the better arrival time.
pub const BACKLOG_GAP: Duration = Duration::from_secs(2);

/// Where the run a token names stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// In flight in this process, due at `deadline_ms`.
    Open { deadline_ms: i64 },
    /// In flight in another process sharing the store (`mailcanary probe`
    /// beside the daemon): not ours to judge.
    Elsewhere,
    /// Final already.
    Ended(Outcome),
}

/// The run an arrival's token (or an app's mail) was matched to.
#[derive(Debug, Clone, Copy)]
pub struct Run<'a> {
    pub seed: &'a str,
    /// When the relay accepted it (or the app was asked), Unix ms.
    pub submitted_ms: i64,
    pub state: RunState,
}

/// What the watcher saw.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    pub seed: &'a str,
    pub role: FolderRole,
    /// The Gmail tab, when the message is in one.
    pub tab: Option<Tab>,
    /// When mailcanary first saw it, Unix ms.
    pub seen_ms: i64,
    /// When the mailbox stored it (INTERNALDATE or file mtime), Unix ms.
    pub stored_ms: Option<i64>,
    /// Whether `stored_ms` is exact (a Maildir mtime) or whole seconds.
    pub stored_exact: bool,
}

/// What an arrival means for its run.
#[derive(Debug, Clone, PartialEq)]
pub enum Judgement {
    /// Not this run's copy (another seed's mailbox, or a run another
    /// process is judging): leave the message alone.
    Leave,
    /// Arrived in time: the run ends with `delivery.outcome`.
    Delivered(Delivery),
    /// Arrived after the timeout: the run is `missing` (made so first when
    /// `still_open`) and turns `late`, once.
    Late {
        delivery: Delivery,
        still_open: bool,
    },
    /// The run was final already (a second copy, or late already): nothing
    /// to count; the copy can go.
    Recorded,
}

/// The facts of a delivery that the outcome and the series need.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub outcome: Outcome,
    /// The Gmail tab, only with outcome `tab`.
    pub tab: Option<Tab>,
    /// Submit → mailbox, the histogram's value.
    pub latency: Duration,
    /// Submit → mailcanary first saw it.
    pub seen_latency: Duration,
    /// Arrived after the code's validity.
    pub after_expiry: bool,
}

/// Judge one arrival for its run. `validity` is the probe's
/// `code_validity` (`None` when a reload removed the probe).
pub fn evaluate(run: &Run<'_>, seen: &Seen<'_>, validity: Option<Duration>) -> Judgement {
    if run.seed != seen.seed {
        // The same token in another seed's mailbox: not this run's copy.
        return Judgement::Leave;
    }
    let arrived_ms = arrival_ms(seen);
    let latency = since(arrived_ms.max(run.submitted_ms), run.submitted_ms);
    let seen_latency = since(seen.seen_ms, run.submitted_ms);
    let after_expiry = validity.is_some_and(|v| latency > v);
    let late = |still_open| Judgement::Late {
        delivery: Delivery {
            outcome: Outcome::Late,
            tab: None,
            latency,
            seen_latency,
            after_expiry,
        },
        still_open,
    };
    match run.state {
        RunState::Elsewhere => Judgement::Leave,
        RunState::Ended(Outcome::Missing) => late(false),
        RunState::Ended(_) => Judgement::Recorded,
        RunState::Open { deadline_ms }
            if seen.seen_ms <= deadline_ms || arrived_ms <= deadline_ms =>
        {
            let placed = match (seen.tab, seen.role) {
                (Some(_), _) => Outcome::Tab,
                (None, FolderRole::Inbox) => Outcome::Inbox,
                (None, FolderRole::Spam) => Outcome::Spam,
            };
            // In time for the probe, but too late for the user to use the code.
            let outcome = if after_expiry {
                Outcome::Expired
            } else {
                placed
            };
            Judgement::Delivered(Delivery {
                outcome,
                tab: seen.tab.filter(|_| outcome == Outcome::Tab),
                latency,
                seen_latency,
                after_expiry,
            })
        }
        // Past its timeout but not yet swept: missing, then late.
        RunState::Open { .. } => late(true),
    }
}

/// Whether an open run is due to be called missing at `now_ms`.
pub fn overdue(deadline_ms: i64, now_ms: i64) -> bool {
    deadline_ms < now_ms
}

/// When a message reached the mailbox, for latency: the Maildir file's
/// mtime (exact); over IMAP the moment mailcanary saw it, since INTERNALDATE
/// has whole seconds only, unless the watcher saw it more than
/// [`BACKLOG_GAP`] after INTERNALDATE (it was disconnected or polling).
pub fn arrival_ms(seen: &Seen<'_>) -> i64 {
    match seen.stored_ms {
        Some(st) if seen.stored_exact => st,
        Some(st) if seen.seen_ms - st > BACKLOG_GAP.as_millis() as i64 => st,
        _ => seen.seen_ms,
    }
}

fn since(later_ms: i64, earlier_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(later_ms - earlier_ms).unwrap_or(0))
}

/// One resend burst: the codes it delivered and the order they came in.
#[derive(Debug, Default)]
pub struct Burst {
    /// The newest Date (Unix ms; when the app made the code) seen so far.
    newest_date: Option<i64>,
    out_of_order: bool,
    /// Codes seen (in memory only, never logged), to tell duplicates.
    codes: HashSet<String>,
}

impl Burst {
    /// A message of the burst with this Date arrived. True exactly once per
    /// burst: when an older code first arrives after a newer one.
    pub fn arrived(&mut self, date: Option<i64>) -> bool {
        let Some(date) = date else { return false };
        let older = self.newest_date.is_some_and(|n| date < n);
        self.newest_date = Some(self.newest_date.map_or(date, |n| n.max(date)));
        let first = older && !self.out_of_order;
        self.out_of_order |= older;
        first
    }

    /// Remember a code the burst delivered.
    pub fn add_code(&mut self, code: &str) {
        self.codes.insert(code.to_string());
    }

    /// Whether the burst delivered this code already.
    pub fn has_code(&self, code: &str) -> bool {
        self.codes.contains(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBMIT: i64 = 1_000_000;
    const DEADLINE: i64 = SUBMIT + 60_000;

    fn open() -> Run<'static> {
        Run {
            seed: "s",
            submitted_ms: SUBMIT,
            state: RunState::Open {
                deadline_ms: DEADLINE,
            },
        }
    }

    fn seen(after_ms: i64) -> Seen<'static> {
        Seen {
            seed: "s",
            role: FolderRole::Inbox,
            tab: None,
            seen_ms: SUBMIT + after_ms,
            stored_ms: None,
            stored_exact: false,
        }
    }

    fn delivered(j: Judgement) -> Delivery {
        match j {
            Judgement::Delivered(d) => d,
            other => panic!("expected delivered, got {other:?}"),
        }
    }

    #[test]
    fn inbox_spam_and_tab_by_folder() {
        let d = delivered(evaluate(&open(), &seen(1_500), None));
        assert_eq!(d.outcome, Outcome::Inbox);
        assert_eq!(d.latency, Duration::from_millis(1_500));
        assert_eq!(d.tab, None);
        let spam = Seen {
            role: FolderRole::Spam,
            ..seen(800)
        };
        assert_eq!(
            delivered(evaluate(&open(), &spam, None)).outcome,
            Outcome::Spam
        );
        let tab = Seen {
            tab: Some(Tab::Promotions),
            ..seen(800)
        };
        let d = delivered(evaluate(&open(), &tab, None));
        assert_eq!((d.outcome, d.tab), (Outcome::Tab, Some(Tab::Promotions)));
    }

    #[test]
    fn another_seeds_copy_or_another_process_run_is_left_alone() {
        let other = Seen {
            seed: "t",
            ..seen(10)
        };
        assert_eq!(evaluate(&open(), &other, None), Judgement::Leave);
        let elsewhere = Run {
            state: RunState::Elsewhere,
            ..open()
        };
        assert_eq!(evaluate(&elsewhere, &seen(10), None), Judgement::Leave);
    }

    #[test]
    fn expired_when_in_time_for_the_probe_but_not_for_the_user() {
        let validity = Some(Duration::from_secs(30));
        let d = delivered(evaluate(&open(), &seen(45_000), validity));
        assert_eq!(d.outcome, Outcome::Expired);
        assert!(d.after_expiry);
        // A tab message past validity is expired, and carries no tab.
        let tab = Seen {
            tab: Some(Tab::Updates),
            ..seen(45_000)
        };
        let d = delivered(evaluate(&open(), &tab, validity));
        assert_eq!((d.outcome, d.tab), (Outcome::Expired, None));
        let d = delivered(evaluate(&open(), &seen(29_000), validity));
        assert_eq!(d.outcome, Outcome::Inbox);
    }

    #[test]
    fn late_once_after_the_timeout() {
        // Open but past its deadline (not yet swept): missing first, then late.
        let j = evaluate(&open(), &seen(90_000), Some(Duration::from_secs(600)));
        let Judgement::Late {
            delivery,
            still_open,
        } = j
        else {
            panic!("{j:?}")
        };
        assert!(still_open);
        assert_eq!(delivery.outcome, Outcome::Late);
        assert_eq!(delivery.latency, Duration::from_secs(90));
        assert!(!delivery.after_expiry);
        // Swept already: late without the missing step.
        let missing = Run {
            state: RunState::Ended(Outcome::Missing),
            ..open()
        };
        assert!(matches!(
            evaluate(&missing, &seen(90_000), Some(Duration::from_secs(60))),
            Judgement::Late { still_open: false, delivery } if delivery.after_expiry
        ));
        // Late already, or any other final run: nothing more to count.
        for ended in [Outcome::Late, Outcome::Inbox, Outcome::SendFailed] {
            let run = Run {
                state: RunState::Ended(ended),
                ..open()
            };
            assert_eq!(evaluate(&run, &seen(90_000), None), Judgement::Recorded);
        }
    }

    #[test]
    fn in_time_by_the_mailbox_clock_even_if_seen_after_the_deadline() {
        // A watcher that reconnects after the deadline finds a message the
        // mailbox stored in time: its INTERNALDATE decides.
        let s = Seen {
            stored_ms: Some(SUBMIT + 20_000),
            ..seen(70_000)
        };
        let d = delivered(evaluate(&open(), &s, None));
        assert_eq!(d.latency, Duration::from_secs(20));
        assert_eq!(d.seen_latency, Duration::from_secs(70));
    }

    #[test]
    fn arrival_time_prefers_exact_or_backlogged_mailbox_times() {
        let live = Seen {
            stored_ms: Some(SUBMIT + 1_000),
            ..seen(1_400)
        };
        assert_eq!(arrival_ms(&live), SUBMIT + 1_400);
        let exact = Seen {
            stored_exact: true,
            ..live
        };
        assert_eq!(arrival_ms(&exact), SUBMIT + 1_000);
        let backlog = Seen {
            stored_ms: Some(SUBMIT + 1_000),
            ..seen(10_000)
        };
        assert_eq!(arrival_ms(&backlog), SUBMIT + 1_000);
        // A message stored before the submit time (clock skew) has no negative latency.
        let skewed = Seen {
            stored_ms: Some(SUBMIT - 5_000),
            stored_exact: true,
            ..seen(100)
        };
        assert_eq!(
            delivered(evaluate(&open(), &skewed, None)).latency,
            Duration::ZERO
        );
    }

    #[test]
    fn overdue_only_after_the_deadline() {
        assert!(!overdue(DEADLINE, DEADLINE));
        assert!(overdue(DEADLINE, DEADLINE + 1));
    }

    #[test]
    fn burst_order_is_reported_once() {
        let mut b = Burst::default();
        assert!(!b.arrived(Some(10_000)));
        assert!(!b.arrived(None));
        assert!(!b.arrived(Some(30_000)));
        // An older code after a newer one: reported, once per burst.
        assert!(b.arrived(Some(20_000)));
        assert!(!b.arrived(Some(5_000)));
        assert!(!b.arrived(Some(40_000)));
    }

    #[test]
    fn duplicate_codes_are_recognised() {
        let mut b = Burst::default();
        assert!(!b.has_code("123456"));
        b.add_code("123456");
        assert!(b.has_code("123456"));
        assert!(!b.has_code("654321"));
    }
}
