//! Losing nothing: the IMAP server going away mid-probe, mailcanary
//! itself killed after sending, and a relay slower than the schedule. These tests stop parts of the shared stack,
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

/// A relay slower than the schedule: the sends of a round wait for their
/// turns (16 per sender) and a probe's next round is skipped while a whole
/// round's worth of its sends still waits, instead of queueing a round a
/// second for as long as the relay stalls.
#[test]
fn a_relay_slower_than_the_schedule_skips_rounds_instead_of_queueing_them() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Stack::get();
    // A relay that accepts connections and never says a word.
    let relay = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = relay.local_addr().unwrap().port();
    let held = std::sync::Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for conn in relay.incoming().map_while(Result::ok) {
            keep.lock().unwrap().push(conn);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let mut extra = format!(
        "[senders.stalled]\nkind = \"smtp\"\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nfrom = \"no-reply@sender.test\"\ntimeout = \"60s\"\n\n"
    );
    let names: Vec<String> = (0..20).map(|i| format!("slow{i:02}")).collect();
    for name in &names {
        let md = dir.path().join(name);
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(md.join(sub)).unwrap();
        }
        extra.push_str(&format!(
            "[seeds.{name}]\nprovider = \"slow\"\naddress = \"{name}@seed.test\"\nkind = \"maildir\"\npath = \"{}\"\n\n",
            md.display()
        ));
    }
    let seeds: Vec<&str> = names.iter().map(String::as_str).collect();
    extra.push_str(
        &probe(
            "slow",
            "stalled",
            &seeds,
            "2m",
            &template("verification-en"),
        )
        .replace("every = \"1h\"", "every = \"1s\""),
    );
    let d = Daemon::start(&stack_config(stack, &extra));
    assert!(
        d.wait_log("skipping this round", Duration::from_secs(20)),
        "no round skipped; logs:\n{}",
        d.logs()
    );
    // Round 1: 16 sends talk to the relay, 4 wait; round 2 fires (4 < 20
    // waiting), after it 24 wait: every later round is skipped. (On a
    // machine so slow that round 1 had no turn yet at the second tick, round
    // 2 is skipped too.) Either way, the runs stop growing.
    let runs = tokens(&d.state_dir(), "slow").len();
    std::thread::sleep(Duration::from_secs(3));
    let later = tokens(&d.state_dir(), "slow").len();
    assert!(
        later == runs && (runs == 40 || runs == 20),
        "{runs} runs, then {later}: rounds still queued; logs:\n{}",
        d.logs()
    );
    assert_eq!(held.lock().unwrap().len(), 16, "one turn per connection");
}
