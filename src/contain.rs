//! Containment of panics in the tasks that talk to strangers' servers.
//!
//! A panic in an inbox watcher or a sender (a bug of ours or of a protocol
//! crate, reached by some server's odd answer) must cost that one
//! connection, not the daemon. [`contained`] runs such a piece of work,
//! catches a panic that unwinds out of it, logs it once and counts it per
//! [`Task`]; the caller then treats it like a broken connection (a watcher
//! reconnects with its backoff, a send ends as a `local` failure).
//!
//! A stack overflow cannot be caught (the process aborts): the parsers of
//! server input bound their nesting instead (`inbox::imap_frame`).
//!
//! A leaf module: it imports only [`crate::text`].

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::FutureExt;

/// The kinds of contained work; the `task` label of `mailcanary_task_panics_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// One session of an IMAP folder watcher.
    InboxWatcher,
    /// One send (SMTP transaction or app trigger).
    Sender,
}

impl Task {
    pub const ALL: [Task; 2] = [Task::InboxWatcher, Task::Sender];

    pub fn as_str(self) -> &'static str {
        match self {
            Task::InboxWatcher => "inbox_watcher",
            Task::Sender => "sender",
        }
    }

    fn index(self) -> usize {
        match self {
            Task::InboxWatcher => 0,
            Task::Sender => 1,
        }
    }
}

/// Panics caught so far, per [`Task`]; read by the metrics at each scrape.
static PANICS: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

/// How many panics of `task` were contained since the process started.
pub fn panics(task: Task) -> u64 {
    PANICS[task.index()].load(Ordering::Relaxed)
}

/// A contained panic, with its message (redacted and bounded).
#[derive(Debug, Clone, thiserror::Error)]
#[error("internal error (panic) contained: {0}")]
pub struct Panicked(pub String);

/// Run `work`; a panic inside it is caught, logged, counted and returned.
pub async fn contained<F: Future>(task: Task, what: &str, work: F) -> Result<F::Output, Panicked> {
    match AssertUnwindSafe(work).catch_unwind().await {
        Ok(out) => Ok(out),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-text panic".to_string());
            let message = crate::text::server(&message);
            PANICS[task.index()].fetch_add(1, Ordering::Relaxed);
            tracing::error!(task = task.as_str(), what, panic = %message, "a task panicked; contained, its work ends here");
            Err(Panicked(message))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_is_caught_counted_and_returned() {
        let before = panics(Task::Sender);
        let r = contained(Task::Sender, "test", async {
            if before < u64::MAX {
                panic!("boom at depth 3");
            }
            1
        })
        .await;
        assert_eq!(r.unwrap_err().0, "boom at depth 3");
        assert_eq!(panics(Task::Sender), before + 1);
        assert_eq!(
            contained(Task::Sender, "test", async { 2 }).await.unwrap(),
            2
        );
    }
}
