//! The state rule, pure: outcome counts of one window → a state.
//!
//! Time is cut into [`SLICE_MS`] slices counted back from the evaluation
//! time; a window is [`WINDOW_SLICES`] consecutive slices (one hour). The
//! state of a window:
//! - `unknown`: no probe run to the group became final in it, or the only
//!   ones that did are not counted because they were [`unwatched`];
//! - `failing`: at least half of its runs did not reach the user where they
//!   look ([`crate::probe::outcome::UserSees::reached`]: spam, too late,
//!   nothing arrived, not sent, refused);
//! - `degraded`: at least one run did not reach the user;
//! - `ok`: every run reached the inbox (or a visible tab).
//!
//! "Since" is the start of the slice in which the state began: the newest
//! slice of the oldest window of the unbroken run of windows, ending at the
//! evaluation time, that had the same state.

use serde::Serialize;

use crate::probe::Outcome;

/// The resolution of "since" and of the timeline is the slice of the
/// history's counts; the unwatched rule is the history's too.
pub use crate::probe::history::{unwatched, SLICE_MS};
/// Slices in a window (one hour).
pub const WINDOW_SLICES: usize = 6;
/// The window a state is judged over.
pub const WINDOW_MS: i64 = SLICE_MS * WINDOW_SLICES as i64;

/// Number of outcomes; counts are arrays indexed like [`Outcome::ALL`].
pub const N: usize = Outcome::ALL.len();

/// The index, after the outcomes, of the runs not counted because they
/// were [`unwatched`].
pub const UNWATCHED: usize = N;

/// Outcome counts, indexed like [`Outcome::ALL`], and at [`UNWATCHED`] the
/// runs not counted.
pub type Counts = [u64; N + 1];

/// Counts of nothing.
pub const ZERO: Counts = [0; N + 1];

/// The index of `o` in [`Outcome::ALL`].
pub fn index(o: Outcome) -> usize {
    Outcome::ALL.iter().position(|x| *x == o).unwrap_or(0)
}

/// How mail to a provider (or from a sender) is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Ok,
    Degraded,
    Failing,
    Unknown,
}

impl State {
    /// Every state, in display order.
    pub const ALL: [State; 4] = [State::Ok, State::Degraded, State::Failing, State::Unknown];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Degraded => "degraded",
            State::Failing => "failing",
            State::Unknown => "unknown",
        }
    }
}

/// The state of a window with these counts, and the most frequent outcome
/// that did not reach the user (the first in [`Outcome::ALL`] order on a tie).
pub fn judge(counts: &Counts) -> (State, Option<Outcome>) {
    let total: u64 = counts[..N].iter().sum();
    let mut failed = 0;
    let mut worst: Option<(u64, Outcome)> = None;
    for (o, &n) in Outcome::ALL.iter().zip(counts) {
        if n == 0 || o.user_sees().reached() {
            continue;
        }
        failed += n;
        if worst.is_none_or(|(m, _)| n > m) {
            worst = Some((n, *o));
        }
    }
    let state = if total == 0 {
        State::Unknown
    } else if failed * 2 >= total {
        State::Failing
    } else if failed > 0 {
        State::Degraded
    } else {
        State::Ok
    };
    (state, worst.map(|(_, o)| o))
}

/// Slice counts of one group, oldest slice first; slice `i` covers
/// `[start + i·SLICE_MS, start + (i+1)·SLICE_MS)`.
#[derive(Debug, Clone)]
pub struct Slices {
    pub start_ms: i64,
    pub counts: Vec<Counts>,
}

impl Slices {
    pub fn new(start_ms: i64, n: usize) -> Slices {
        Slices {
            start_ms,
            counts: vec![ZERO; n],
        }
    }

    /// Count a run created at `created_ms` (ignored outside the slices).
    pub fn add(&mut self, created_ms: i64, outcome: Outcome) {
        self.add_at(created_ms, index(outcome));
    }

    /// Count a run created at `created_ms` at index `i` of [`Counts`].
    pub fn add_at(&mut self, created_ms: i64, i: usize) {
        self.add_n(created_ms, i, 1);
    }

    /// Count `n` runs created at `created_ms` at index `i` of [`Counts`].
    pub fn add_n(&mut self, created_ms: i64, i: usize, n: u64) {
        if created_ms < self.start_ms {
            return;
        }
        let slice = ((created_ms - self.start_ms) / SLICE_MS) as usize;
        if let Some(c) = self.counts.get_mut(slice) {
            c[i] += n;
        }
    }

    /// The counts of the window that ends with slice `end` (inclusive).
    pub fn window(&self, end: usize) -> Counts {
        let mut sum = ZERO;
        for c in &self.counts[end.saturating_sub(WINDOW_SLICES - 1)..=end] {
            for (s, n) in sum.iter_mut().zip(c) {
                *s += n;
            }
        }
        sum
    }

    /// The state of every window that ends with a slice, from the first one
    /// that is a whole window on.
    pub fn states(&self) -> Vec<(i64, State)> {
        (WINDOW_SLICES - 1..self.counts.len())
            .map(|end| {
                let end_ms = self.start_ms + (end as i64 + 1) * SLICE_MS;
                (end_ms, judge(&self.window(end)).0)
            })
            .collect()
    }
}

/// A state that held from `from_ms` (the start of the slice in which it
/// began: the newest slice of its first window) until `until_ms` (the end
/// of its last window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub state: State,
    pub from_ms: i64,
    pub until_ms: i64,
}

/// Consecutive windows of the same state, merged, oldest first.
pub fn segments(states: &[(i64, State)]) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    for &(end_ms, state) in states {
        match out.last_mut() {
            Some(last) if last.state == state => last.until_ms = end_ms,
            _ => out.push(Segment {
                state,
                from_ms: end_ms - SLICE_MS,
                until_ms: end_ms,
            }),
        }
    }
    out
}

/// Whether a run was *unwatched*: its seed's inbox watcher was down at
/// the run's deadline, the moment the recorder judged it missing.
/// `outages` are the seed's down intervals `[from, until)`, oldest first,
/// not overlapping (`until` is `i64::MAX` while still down).
///
/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(Outcome, u64)]) -> Counts {
        let mut c = ZERO;
        for (o, n) in pairs {
            c[index(*o)] = *n;
        }
        c
    }

    #[test]
    fn the_rule() {
        assert_eq!(judge(&ZERO), (State::Unknown, None));
        // Runs not counted (unwatched seed) leave the state unknown.
        let mut blind = ZERO;
        blind[UNWATCHED] = 3;
        assert_eq!(judge(&blind), (State::Unknown, None));
        blind[index(Outcome::Inbox)] = 1;
        assert_eq!(judge(&blind), (State::Ok, None));
        assert_eq!(judge(&counts(&[(Outcome::Inbox, 5)])), (State::Ok, None));
        assert_eq!(
            judge(&counts(&[(Outcome::Inbox, 4), (Outcome::Tab, 2)])),
            (State::Ok, None)
        );
        assert_eq!(
            judge(&counts(&[(Outcome::Inbox, 3), (Outcome::Spam, 1)])),
            (State::Degraded, Some(Outcome::Spam))
        );
        assert_eq!(
            judge(&counts(&[(Outcome::Inbox, 2), (Outcome::Spam, 2)])),
            (State::Failing, Some(Outcome::Spam))
        );
        assert_eq!(
            judge(&counts(&[
                (Outcome::Missing, 1),
                (Outcome::SendFailed, 3),
                (Outcome::Inbox, 1)
            ])),
            (State::Failing, Some(Outcome::SendFailed))
        );
        // Every outcome that does not reach the user fails a lone run.
        for o in Outcome::ALL {
            let (state, _) = judge(&counts(&[(o, 1)]));
            let expect = if o.user_sees().reached() {
                State::Ok
            } else {
                State::Failing
            };
            assert_eq!(state, expect, "{o}");
        }
    }

    #[test]
    fn windows_slide_and_segments_merge() {
        let start = 1_000 * SLICE_MS;
        let mut s = Slices::new(start, 18);
        // Inbox in every slice; spam from slice 9 to 11.
        for i in 0..18 {
            s.add(start + i * SLICE_MS + 5, Outcome::Inbox);
        }
        for i in 9..12 {
            s.add(start + i * SLICE_MS + 7, Outcome::Spam);
            s.add(start + i * SLICE_MS + 8, Outcome::Spam);
        }
        s.add(start - 1, Outcome::Spam); // before the slices: ignored
        s.add(start + 18 * SLICE_MS, Outcome::Spam); // after: ignored
        let segs = segments(&s.states());
        let kinds: Vec<State> = segs.iter().map(|g| g.state).collect();
        assert_eq!(
            kinds,
            [
                State::Ok,
                State::Degraded,
                State::Failing,
                State::Degraded,
                State::Ok
            ]
        );
        // Degraded since the first spam slice (9) began; failing once half
        // a window's runs are spam (slices 6..=11: 6 of 12); ok again once
        // no window holds a spam slice.
        assert_eq!(segs[1].from_ms, start + 9 * SLICE_MS);
        assert_eq!(segs[2].from_ms, start + 11 * SLICE_MS);
        assert_eq!(segs[4].from_ms, start + 17 * SLICE_MS);
        assert_eq!(segs.last().unwrap().until_ms, start + 18 * SLICE_MS);
    }

    #[test]
    fn percentiles() {
        assert_eq!(percentile(&[], 0.5), None);
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 0.5), Some(2.0));
        assert_eq!(percentile(&v, 0.95), Some(4.0));
        assert_eq!(percentile(&[7.0], 0.95), Some(7.0));
    }
}
