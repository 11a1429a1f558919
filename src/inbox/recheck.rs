//! Asking a seed's watchers to look again.
//!
//! A server can fail to tell an IDLE client about new mail. Dovecot 2.3
//! with imap-hibernate loses the notification of mail delivered in the
//! instant the client is handed to the hibernation process (on the scale
//! stack, 3 of 1,000 probes delivered 5 s after their watcher started to
//! IDLE, `imap_hibernate_timeout`; docs/scale.md): the message sits in the
//! folder and IDLE stays silent until its refresh, 25 minutes later. So the
//! recorder asks the watchers of a seed whose probe has not been seen a
//! while after the relay accepted it ([`ask`]); a watcher in IDLE then ends
//! it, scans the folder once and goes back to IDLE. One scan per late
//! probe costs a few commands; a lost notification costs a false `missing`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::Notify;

/// Each watched seed's signal, shared by its folder watchers; an entry
/// lives while a watcher holds it.
static SEEDS: Mutex<BTreeMap<String, Weak<Notify>>> = Mutex::new(BTreeMap::new());

/// The signal the watchers of `seed` wait on.
pub fn signal(seed: &str) -> Arc<Notify> {
    let mut seeds = SEEDS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(n) = seeds.get(seed).and_then(Weak::upgrade) {
        return n;
    }
    seeds.retain(|_, n| n.strong_count() > 0);
    let n = Arc::new(Notify::new());
    seeds.insert(seed.to_string(), Arc::downgrade(&n));
    n
}

/// Ask the watchers of `seed` that are waiting in IDLE to scan their
/// folder once. False when no watcher of that seed runs.
pub fn ask(seed: &str) -> bool {
    let seeds = SEEDS.lock().unwrap_or_else(|e| e.into_inner());
    match seeds.get(seed).and_then(Weak::upgrade) {
        Some(n) => {
            n.notify_waiters();
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn asking_wakes_every_watcher_of_the_seed_and_no_other() {
        let inbox = signal("recheck-test-seed");
        let spam = signal("recheck-test-seed");
        let other = signal("recheck-test-other");
        let waiting = |n: Arc<Notify>| {
            tokio::spawn(async move {
                tokio::time::timeout(Duration::from_millis(500), n.notified())
                    .await
                    .is_ok()
            })
        };
        let (a, b, c) = (waiting(inbox), waiting(spam), waiting(other));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(ask("recheck-test-seed"));
        assert!(a.await.unwrap() && b.await.unwrap(), "both folders woken");
        assert!(!c.await.unwrap(), "another seed is left alone");
        drop(signal("recheck-test-gone"));
        assert!(!ask("recheck-test-gone"), "no watcher, nobody to ask");
    }
}
