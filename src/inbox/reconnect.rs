//! Reconnecting many watchers to one server without a stampede.
//!
//! When a server restarts, every watcher connected to it loses its
//! connection in the same instant; 2,000 of them must not all come back in
//! the same second. Four rules, per server (`host:port`):
//!
//! - **Spread.** The first reconnect after a healthy session (one that was
//!   up for [`HEALTHY`]) waits a uniformly random time in `[0, spread]`,
//!   where `spread` is the number of watchers of that server divided by
//!   [`RECONNECT_RATE`], at least [`BACKOFF_MIN`] and at most
//!   [`SPREAD_MAX`]: 2,000 watchers come back over 20 s, a few dozen within
//!   a second.
//! - **Full jitter.** Each further failed attempt doubles a window (1 s,
//!   2 s, 4 s, … [`BACKOFF_MAX`]) and waits a uniformly random time in
//!   `[0, max(window, spread)]`: a server that stays down is asked by a thin
//!   random stream of clients rather than by waves of them.
//! - **A gate.** At most [`SETUP_CONCURRENCY`] session set-ups (connect,
//!   TLS, login, select) run at once per server. The others wait for their
//!   turn before their command timeouts start, so a server that answers
//!   slower than clients arrive queues them instead of timing them all out,
//!   which would make each of them try again and the load worse.
//!
//! - **Back with the server.** A watcher waiting after a failure that was
//!   the server's (no connection, a broken one, no answer) is cut short
//!   when a peer sets a session up with that server: the rest of its wait
//!   becomes a fresh draw from `[0, spread]`, once per wait. Without it the
//!   few watchers that failed five or six times while the server was down
//!   (2,000 watchers, a 17 s outage) wait windows of 32-128 s after it is
//!   back; with it every watcher returns within a spread of the server.
//!
//! A watcher's first connection after the daemon starts (or a reload starts
//! it) does not wait: the gate alone paces it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use rand::Rng;
use tokio::sync::{Notify, Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// The first window of the exponential backoff, and the least spread.
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// The largest window.
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// Reconnects per second a server is offered after it dropped every
/// watcher at once.
pub const RECONNECT_RATE: f64 = 100.0;
/// The largest spread, whatever the number of watchers.
pub const SPREAD_MAX: Duration = Duration::from_secs(30);
/// A session up this long was healthy: the next reconnect starts the
/// backoff over.
pub const HEALTHY: Duration = Duration::from_secs(60);
/// Session set-ups in progress at once per server.
pub const SETUP_CONCURRENCY: usize = 64;

/// The window a reconnect delay is drawn from, after `failures` failed
/// attempts since the last healthy session, with `peers` watchers of the
/// same server.
pub fn window(failures: u32, peers: usize) -> Duration {
    let doubled = BACKOFF_MIN.saturating_mul(1u32 << failures.min(20));
    doubled.max(spread(peers)).min(BACKOFF_MAX)
}

/// How widely the reconnects of `peers` watchers of one server are spread.
pub fn spread(peers: usize) -> Duration {
    Duration::from_secs_f64(peers as f64 / RECONNECT_RATE).clamp(BACKOFF_MIN, SPREAD_MAX)
}

/// A reconnect delay: uniform in `[0, window(failures, peers)]`, to the
/// millisecond.
pub fn delay(failures: u32, peers: usize, rng: &mut impl Rng) -> Duration {
    let max = window(failures, peers).as_millis() as u64;
    Duration::from_millis(rng.random_range(0..=max))
}

/// The watchers of one server and its set-up gate.
#[derive(Debug)]
struct Server {
    peers: AtomicUsize,
    gate: Semaphore,
    /// Signalled each time a session with this server is set up.
    answers: Notify,
}

/// Every server some watcher uses, by `host:port`; an entry lives while a
/// watcher holds it.
static SERVERS: Mutex<BTreeMap<String, Weak<Server>>> = Mutex::new(BTreeMap::new());

/// One watcher's membership of its server's group; leaves on drop.
#[derive(Debug)]
pub struct Member {
    server: Arc<Server>,
}

impl Member {
    /// Join the watchers of `host:port`.
    pub fn join(host: &str, port: u16) -> Member {
        let key = format!("{}:{port}", host.to_ascii_lowercase());
        let mut servers = SERVERS.lock().unwrap_or_else(|e| e.into_inner());
        let server = match servers.get(&key).and_then(Weak::upgrade) {
            Some(s) => s,
            None => {
                servers.retain(|_, s| s.strong_count() > 0);
                let s = Arc::new(Server {
                    peers: AtomicUsize::new(0),
                    gate: Semaphore::new(SETUP_CONCURRENCY),
                    answers: Notify::new(),
                });
                servers.insert(key, Arc::downgrade(&s));
                s
            }
        };
        server.peers.fetch_add(1, Ordering::Relaxed);
        Member { server }
    }

    /// How many watchers this server has now, this one included.
    pub fn peers(&self) -> usize {
        self.server.peers.load(Ordering::Relaxed)
    }

    /// Wait for a turn to set a session up; the turn ends when the permit
    /// is dropped.
    pub async fn setup(&self) -> SemaphorePermit<'_> {
        // The semaphore is never closed.
        self.server
            .gate
            .acquire()
            .await
            .expect("the set-up gate is never closed")
    }

    /// A session with this server was just set up: it answers again.
    pub fn server_answers(&self) {
        self.server.answers.notify_waiters();
    }

    /// Wait `delay` before the next attempt. After a failure that was the
    /// server's (`outage`), a peer's set-up during the wait cuts what is
    /// left of it to `redraw` from then (a draw from `[0, spread]`, made by
    /// the caller), once.
    pub async fn wait_to_retry(&self, delay: Duration, outage: bool, redraw: Duration) {
        let deadline = Instant::now() + delay;
        if !outage {
            return tokio::time::sleep_until(deadline).await;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return,
            _ = self.server.answers.notified() => {}
        }
        tokio::time::sleep_until(deadline.min(Instant::now() + redraw)).await;
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.server.peers.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn windows_double_per_failure_from_the_spread_up_to_the_cap() {
        // One watcher: 1 s, 2 s, 4 s, ... 256 s, then 300 s for ever.
        let alone: Vec<u64> = (0..12).map(|f| window(f, 1).as_secs()).collect();
        assert_eq!(alone, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(window(u32::MAX, 1), BACKOFF_MAX);
        // 2,000 watchers of one server: 20 s until doubling passes it.
        let crowd: Vec<u64> = (0..7).map(|f| window(f, 2000).as_secs()).collect();
        assert_eq!(crowd, [20, 20, 20, 20, 20, 32, 64]);
        // The spread grows with the watchers, within its bounds.
        assert_eq!(spread(0), BACKOFF_MIN);
        assert_eq!(spread(50), BACKOFF_MIN);
        assert_eq!(spread(250), Duration::from_millis(2500));
        assert_eq!(spread(100_000), SPREAD_MAX);
    }

    #[test]
    fn delays_are_uniform_over_the_window() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(18);
        // 2,000 watchers dropped at once: their first delays cover 0-20 s
        // with no second holding much more than its share (100).
        let delays: Vec<Duration> = (0..2000).map(|_| delay(0, 2000, &mut rng)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(20)));
        let mut per_second = [0u32; 21];
        for d in &delays {
            per_second[d.as_secs() as usize] += 1;
        }
        assert!(
            per_second[..20].iter().all(|n| (60..=140).contains(n)),
            "{per_second:?}"
        );
        let mean = delays.iter().map(Duration::as_secs_f64).sum::<f64>() / 2000.0;
        assert!((9.0..11.0).contains(&mean), "mean {mean}");
        // After failures the window widens, still from zero.
        let late: Vec<Duration> = (0..1000).map(|_| delay(8, 1, &mut rng)).collect();
        assert!(late.iter().all(|d| *d <= Duration::from_secs(256)));
        assert!(late.iter().any(|d| *d < Duration::from_secs(10)));
        assert!(late.iter().any(|d| *d > Duration::from_secs(240)));
        // The same seed draws the same delays.
        let again = |seed| {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            (0..5).map(|_| delay(3, 10, &mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(again(7), again(7));
    }

    #[tokio::test]
    async fn a_wait_after_an_outage_ends_within_a_redraw_of_the_server_answering() {
        let ms = Duration::from_millis;
        let peer = Member::join("reconnect-wait.example", 993);
        let waiting = |outage: bool, delay: Duration, redraw: Duration| {
            let w = Member::join("reconnect-wait.example", 993);
            tokio::spawn(async move {
                let t0 = Instant::now();
                w.wait_to_retry(delay, outage, redraw).await;
                t0.elapsed()
            })
        };
        let outage = waiting(true, ms(60_000), ms(300));
        // A login refused is the watcher's own failure: it waits it out.
        let refused = waiting(false, ms(1_500), ms(300));
        // A redraw longer than what is left does not lengthen the wait.
        let short = waiting(true, ms(400), ms(60_000));
        tokio::time::sleep(ms(200)).await;
        peer.server_answers();
        // Further set-ups do not shorten the redrawn wait again.
        tokio::time::sleep(ms(100)).await;
        peer.server_answers();
        let outage = outage.await.unwrap();
        assert!(
            (ms(480)..ms(1_500)).contains(&outage),
            "{outage:?}: 200 ms, then the 300 ms redraw"
        );
        assert!(refused.await.unwrap() >= ms(1_500));
        let short = short.await.unwrap();
        assert!((ms(400)..ms(1_500)).contains(&short), "{short:?}");
    }

    #[tokio::test]
    async fn members_count_their_server_and_share_its_gate() {
        let a = Member::join("reconnect-test.example", 993);
        let b = Member::join("Reconnect-Test.example", 993);
        let other = Member::join("reconnect-test.example", 143);
        assert_eq!(a.peers(), 2);
        assert_eq!(other.peers(), 1);
        drop(b);
        assert_eq!(a.peers(), 1);
        // The gate admits SETUP_CONCURRENCY set-ups at once, per server.
        let mut turns = Vec::new();
        for _ in 0..SETUP_CONCURRENCY {
            turns.push(a.setup().await);
        }
        let waiting = tokio::time::timeout(Duration::from_millis(50), a.setup()).await;
        assert!(waiting.is_err(), "the gate is full");
        let elsewhere = tokio::time::timeout(Duration::from_millis(50), other.setup()).await;
        assert!(elsewhere.is_ok(), "another server has its own gate");
        turns.pop();
        let next = tokio::time::timeout(Duration::from_millis(50), a.setup()).await;
        assert!(next.is_ok(), "a finished set-up lets the next one in");
    }
}
