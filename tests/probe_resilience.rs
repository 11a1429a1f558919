//! Losing nothing: the IMAP server going away mid-probe, and mailcanary
//! itself killed after sending. These tests stop parts of the shared stack,
//! so they live in their own test binary (cargo runs binaries one at a time)
//! and take a lock against each other.

mod common;

use std::sync::Mutex;
use std::time::Duration;

use common::{probe, stack_config, template, tokens, Daemon, Stack};

static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn the_watcher_reconnects_after_dovecot_restarts_and_the_probe_is_still_matched() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Stack::get();
    let d = Daemon::start(&stack_config(
        stack,
        &probe(
            "restart",
            "ok",
            &["imap1"],
            "90s",
            &template("verification-en"),
        ),
    ));
    let up = "mailcanary_inbox_up{seed=\"imap1\"}";
    let inbox = "mailcanary_probe_results_total{placement=\"inbox\",probe=\"restart\",provider=\"imap-plain\",seed=\"imap1\",sender=\"ok\"}";
    assert!(
        d.wait_metric(inbox, 1.0, Duration::from_secs(30)),
        "first probe; logs:\n{}",
        d.logs()
    );

    stack.ctl(&["stop", "dovecot"]);
    assert!(
        d.wait_metric(up, 0.0, Duration::from_secs(30)),
        "inbox_up stays 1 with Dovecot down; logs:\n{}",
        d.logs()
    );
    // A probe sent now is accepted by Postfix and queued: in flight, undeliverable.
    d.signal("HUP"); // reload = new generation = the scheduler fires at once
    assert!(
        common::wait_until(Duration::from_secs(15), || tokens(
            &d.state_dir(),
            "restart"
        )
        .len()
            == 2),
        "second probe not sent; logs:\n{}",
        d.logs()
    );
    std::thread::sleep(Duration::from_secs(2));
    stack.ctl(&["start", "dovecot"]);
    stack.ctl(&["flush"]);
    assert!(
        d.wait_metric(up, 1.0, Duration::from_secs(60)),
        "watcher did not reconnect; logs:\n{}",
        d.logs()
    );
    assert!(
        d.wait_metric(inbox, 2.0, Duration::from_secs(60)),
        "probe in flight not matched; logs:\n{}",
        d.logs()
    );
    let missing = "mailcanary_probe_results_total{placement=\"missing\",probe=\"restart\",provider=\"imap-plain\",seed=\"imap1\",sender=\"ok\"}";
    assert_eq!(d.metric(missing), Some(0.0), "created at 0, never counted");
}

#[test]
fn a_probe_sent_before_sigkill_completes_after_restart_and_counts_once() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Stack::get();
    let a = Daemon::start(&stack_config(
        stack,
        &probe(
            "killed",
            "ok",
            &["imap1"],
            "60s",
            &template("verification-en"),
        ),
    ));
    // IDLE announces new mail ~0.5 s after delivery: kill well before that.
    assert!(
        a.wait_log("\"probe sent\"", Duration::from_secs(30)),
        "not sent; logs:\n{}",
        a.logs()
    );
    a.signal("KILL");
    let runs = tokens(&a.state_dir(), "killed");
    assert_eq!(runs.len(), 1);
    let (state, ..) = common::run_row(&a.state_dir(), &runs[0]).unwrap();
    assert_eq!(state, "sent", "killed while in flight");

    let b = Daemon::start_at(&a.config);
    let inbox = "mailcanary_probe_results_total{placement=\"inbox\",probe=\"killed\",provider=\"imap-plain\",seed=\"imap1\",sender=\"ok\"}";
    let done = common::wait_until(Duration::from_secs(30), || {
        common::run_row(&a.state_dir(), &runs[0]).is_some_and(|r| r.0 == "final")
    });
    assert!(done, "not completed after restart; logs:\n{}", b.logs());
    assert!(b
        .logs()
        .contains("resuming in-flight probes from the store"));
    let (state, outcome, _, counted) = common::run_row(&a.state_dir(), &runs[0]).unwrap();
    assert_eq!(
        (state.as_str(), outcome.as_deref(), counted),
        ("final", Some("inbox"), 1)
    );
    // The restarted daemon fired its own round too; the killed run is counted once among them.
    std::thread::sleep(Duration::from_secs(2));
    let all = tokens(&a.state_dir(), "killed");
    let finals: Vec<_> = all
        .iter()
        .filter_map(|t| common::run_row(&a.state_dir(), t))
        .filter(|r| r.0 == "final")
        .collect();
    assert_eq!(
        b.metric(inbox),
        Some(finals.len() as f64),
        "each run counted exactly once"
    );
}
