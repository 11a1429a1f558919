//! Probe bounces on the real stack: the seed MX refuses some recipients
//! (policy 550 5.7.1 at the end of DATA, unknown user 550 5.1.1, a full
//! mailbox 552 5.2.2 from Dovecot's LMTP quota check, greylisting 450 4.7.1),
//! the relay accepts every recipient and bounces to the sender's return
//! path, `bounces@sender.test`, a Maildir mailcanary watches.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const WAIT: Duration = Duration::from_secs(30);

/// The bounce sender, its bounce mailbox and the refusing seeds.
fn config(stack: &Stack, cleanup: &Path) -> String {
    let md = |user: &str| stack.var("MAILDIR_PATTERN").replace("{user}", user);
    let local = |key: &str| stack.var(key).split('@').next().unwrap().to_string();
    let bounces = stack
        .var("SENDER_MAILDIR_PATTERN")
        .replace("{user}", &local("BOUNCE_USER"));
    let seed = |name: &str, key: &str| {
        format!(
            "[seeds.{name}]\nprovider = \"selfhosted\"\naddress = \"{}\"\nkind = \"maildir\"\npath = \"{}\"\n",
            stack.var(key),
            md(&local(key))
        )
    };
    let extra = format!(
        r#"
[senders.ret]
kind = "smtp"
host = "127.0.0.1"
port = {relay}
tls = "none"
from = "no-reply@sender.test"
return_path = "{bounce_user}"
bounce_mailbox = "bounces"
timeout = "10s"

[seeds.bounces]
provider = "selfhosted"
address = "{bounce_user}"
kind = "maildir"
path = "{bounces}"
cleanup_folder = "{cleanup}"

{policy}
{unknown}
{full}
{grey}
{refused}
{greylisted}
"#,
        relay = stack.addr("RELAY_OK").port(),
        bounce_user = stack.var("BOUNCE_USER"),
        cleanup = cleanup.file_name().unwrap().to_string_lossy(),
        policy = seed("policy", "POLICY_USER"),
        unknown = seed("unknown", "UNKNOWN_USER"),
        full = seed("full", "FULL_USER"),
        grey = seed("grey", "GREYLIST_USER"),
        refused = probe(
            "refused",
            "ret",
            &["policy", "unknown", "full"],
            "120s",
            &template("verification-en")
        ),
        greylisted = probe(
            "greylisted",
            "ret",
            &["grey"],
            "120s",
            &template("verification-en")
        ),
    );
    stack_config(stack, &extra)
}

/// (seed, outcome, reason) of a probe's runs, and each run's token.
fn runs(state: &Path, probe: &str) -> Vec<(String, Option<String>, Option<String>, String)> {
    let c = rusqlite::Connection::open(state.join("mailcanary.sqlite3")).unwrap();
    let mut st = c
        .prepare(
            "SELECT seed, outcome, reason, token FROM probe_run WHERE probe = ?1 ORDER BY seed",
        )
        .unwrap();
    let rows = st
        .query_map([probe], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .unwrap();
    rows.map(Result::unwrap).collect()
}

/// The status the store kept for a run's notice of `kind`.
fn notice_status(state: &Path, token: &str, kind: &str) -> Option<String> {
    let c = rusqlite::Connection::open(state.join("mailcanary.sqlite3")).unwrap();
    c.query_row(
        "SELECT status FROM probe_notice WHERE token = ?1 AND kind = ?2",
        [token, kind],
        |r| r.get(0),
    )
    .ok()
    .flatten()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

/// Write a message into a Maildir's new/ the way a delivery agent does
/// (tmp/, then rename), owned by the mail user as Dovecot's are.
fn deliver(maildir: &Path, name: &str, raw: &[u8]) {
    // The home directory too: Dovecot delivers into it later.
    let dirs = [
        maildir.parent().unwrap().to_path_buf(),
        maildir.to_path_buf(),
    ]
    .into_iter()
    .chain(["tmp", "new", "cur"].map(|sub| maildir.join(sub)));
    for dir in dirs {
        let st = Command::new("install")
            .args(["-d", "-o", "mail", "-g", "mail"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(st.success());
    }
    let tmp = maildir.join("tmp").join(name);
    std::fs::write(&tmp, raw).unwrap();
    std::fs::rename(&tmp, maildir.join("new").join(name)).unwrap();
}

/// Set the seed MX's greylisting map (the test empties it to end greylisting).
fn greylist(stack: &Stack, map: &str) {
    std::fs::write(stack.var("GREYLIST_MAP"), map).unwrap();
    let st = Command::new("postfix")
        .args(["-c", stack.var("POSTFIX_CONFIG"), "reload"])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
}

/// The tests share the bounce mailbox: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn refused_probes_end_bounced_with_their_reason_and_a_greylisted_one_is_deferred_then_delivered() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Stack::get();
    let local = |key: &str| stack.var(key).split('@').next().unwrap().to_string();
    let bounce_dir = PathBuf::from(
        stack
            .var("SENDER_MAILDIR_PATTERN")
            .replace("{user}", &local("BOUNCE_USER")),
    );
    let cleanup = bounce_dir.join(".Processed");
    greylist(
        stack,
        &format!(
            "{} 450 4.7.1 Greylisted, try again later (mailcanary stack test)\n",
            stack.var("GREYLIST_USER")
        ),
    );
    // What an earlier run on the same stack left behind.
    let before_new = files(&bounce_dir.join("new"));
    let before_processed = files(&cleanup.join("cur")).len();
    let started = Instant::now();
    let d = Daemon::start(&config(stack, &cleanup));
    let state = d.state_dir();

    // Each refused probe ends `bounced` with the receiver's reason, long
    // before its 120 s timeout.
    let want = [
        ("full", "mailboxfull", "5.2.2"),
        ("policy", "policyviolation", "5.7.1"),
        ("unknown", "userunknown", "5.1.1"),
    ];
    let done = wait_until(WAIT, || {
        let r = runs(&state, "refused");
        r.len() == 3 && r.iter().all(|(_, o, _, _)| o.as_deref() == Some("bounced"))
    });
    assert!(
        done,
        "not all bounced after {:?}: {:?}\nlogs:\n{}",
        started.elapsed(),
        runs(&state, "refused"),
        d.logs()
    );
    let got = runs(&state, "refused");
    for ((seed, outcome, reason, token), (want_seed, want_reason, want_status)) in
        got.iter().zip(want)
    {
        assert_eq!(seed, want_seed);
        assert_eq!(outcome.as_deref(), Some("bounced"), "{seed}");
        assert_eq!(reason.as_deref(), Some(want_reason), "{seed}");
        assert_eq!(
            notice_status(&state, token, "failed").as_deref(),
            Some(want_status),
            "{seed}"
        );
        let bounces = series(
            "mailcanary_probe_bounces_total",
            &[
                ("probe", "refused"),
                ("sender", "ret"),
                ("seed", seed),
                ("provider", "selfhosted"),
                ("reason", want_reason),
            ],
        );
        assert_eq!(d.metric(&bounces), Some(1.0), "{bounces}");
        let placement = series(
            "mailcanary_probe_placement",
            &[
                ("probe", "refused"),
                ("seed", seed),
                ("placement", "bounced"),
            ],
        );
        assert_eq!(d.metric(&placement), Some(1.0), "{placement}");
    }
    // Processed bounces were moved out of the way.
    // (Others may arrive meanwhile on a reused stack: notices for probes of
    // earlier runs, which this daemon leaves alone.)
    let ours_left: Vec<PathBuf> = files(&bounce_dir.join("new"))
        .into_iter()
        .filter(|f| !before_new.contains(f))
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            got.iter()
                .any(|(_, _, _, token)| text.contains(token.as_str()))
        })
        .collect();
    assert!(ours_left.is_empty(), "bounces left in place: {ours_left:?}");
    let processed = files(&cleanup.join("cur"));
    assert_eq!(processed.len(), before_processed + 3, "{processed:?}");
    let first = got
        .iter()
        .find_map(|(_, _, _, token)| {
            processed.iter().find(|p| {
                std::fs::read_to_string(p).is_ok_and(|text| text.contains(token.as_str()))
            })
        })
        .expect("a processed bounce quoting a run's token");

    // The same bounce again (a second copy for the same run): kept once, counted once.
    let again = std::fs::read(first).unwrap();
    let quoted = got
        .iter()
        .map(|(_, _, _, t)| t.clone())
        .find(|t| String::from_utf8_lossy(&again).contains(t.as_str()))
        .unwrap();
    deliver(&bounce_dir, "again.bounce", &again);
    assert!(
        wait_until(WAIT, || files(&cleanup.join("cur")).len()
            == before_processed + 4),
        "the repeated bounce was not processed"
    );
    for (seed, _, reason, _) in &got {
        let bounces = series(
            "mailcanary_probe_bounces_total",
            &[
                ("probe", "refused"),
                ("sender", "ret"),
                ("seed", seed),
                ("provider", "selfhosted"),
                ("reason", reason.as_deref().unwrap()),
            ],
        );
        assert_eq!(d.metric(&bounces), Some(1.0), "counted once: {bounces}");
    }

    // A bounce quoting a token nobody sent is not ours: left in place.
    let forged = String::from_utf8_lossy(&again).replace(&quoted, "zzzzzzzzzzzzzzzzzzzzzzzzzz");
    deliver(&bounce_dir, "unknown-token.bounce", forged.as_bytes());

    // The greylisted probe: a delay notice counts a deferral, the run stays open.
    let deferred = series(
        "mailcanary_probe_deferred_total",
        &[("probe", "greylisted"), ("sender", "ret"), ("seed", "grey")],
    );
    assert!(
        d.wait_metric(&deferred, 1.0, WAIT),
        "no deferral counted; logs:\n{}",
        d.logs()
    );
    let grey = runs(&state, "greylisted");
    assert_eq!(grey[0].1, None, "still open while greylisted");
    let grey_token = grey[0].3.clone();

    // A forged bounce for the open run in the seed's own INBOX changes nothing.
    let forged_here = String::from_utf8_lossy(&again).replace(&quoted, &grey_token);
    let grey_inbox = PathBuf::from(
        stack
            .var("MAILDIR_PATTERN")
            .replace("{user}", &local("GREYLIST_USER")),
    );
    deliver(&grey_inbox, "forged.bounce", forged_here.as_bytes());
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        runs(&state, "greylisted")[0].1,
        None,
        "a forged bounce in a seed's inbox ended the run"
    );
    assert!(
        grey_inbox.join("new/forged.bounce").exists(),
        "the forged bounce was touched"
    );
    assert!(
        bounce_dir.join("new/unknown-token.bounce").exists(),
        "a bounce for an unknown token was touched"
    );

    // Greylisting ends: the relay's next retry delivers it, late but in INBOX.
    std::fs::write(stack.var("GREYLIST_MAP"), "").unwrap();
    let st = Command::new("postfix")
        .args(["-c", stack.var("POSTFIX_CONFIG"), "reload"])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    stack.ctl(&["flush"]);
    assert!(
        wait_until(Duration::from_secs(60), || {
            runs(&state, "greylisted")[0].1.as_deref() == Some("inbox")
        }),
        "the greylisted probe did not arrive: {:?}\nlogs:\n{}",
        runs(&state, "greylisted"),
        d.logs()
    );
    assert_eq!(d.metric(&deferred), Some(1.0), "one deferral");
    let latency = d
        .metric(&series(
            "mailcanary_probe_last_latency_seconds",
            &[("probe", "greylisted"), ("seed", "grey")],
        ))
        .unwrap();
    assert!(latency >= 4.0, "the delay shows in the latency: {latency}");
    // No server text quoting an address in the daemon's output.
    let logs = d.logs();
    assert!(!logs.contains(stack.var("UNKNOWN_USER")), "address in logs");

    // `mailcanary probe --once` shows the reason and status of a bounced run.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mailcanary.toml");
    std::fs::write(
        &cfg,
        config(stack, &cleanup).replace("{dir}", &dir.path().display().to_string()),
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["probe", "--once", "--format", "json", "--config"])
        .arg(&cfg)
        .arg("refused")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let unknown = v
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["seed"] == "unknown")
        .expect("a result for the unknown seed");
    assert_eq!(unknown["outcome"], "bounced", "{unknown}");
    assert_eq!(unknown["reason"], "userunknown", "{unknown}");
    assert_eq!(unknown["status"], "5.1.1", "{unknown}");
    assert_eq!(unknown["reply_code"], 550, "{unknown}");
}

#[test]
fn an_apps_refused_code_mail_ends_bounced_by_the_seed_address() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let stack = Stack::get();
    let app = App::start_returning(stack, stack.var("BOUNCE_USER"));
    let local = |key: &str| stack.var(key).split('@').next().unwrap().to_string();
    let bounce_dir = PathBuf::from(
        stack
            .var("SENDER_MAILDIR_PATTERN")
            .replace("{user}", &local("BOUNCE_USER")),
    );
    // The app's mail carries no token: its bounce is matched by the seed
    // address it reports on, to the open run of the app's sender.
    let extra = format!(
        "{}bounce_mailbox = \"bounces\"\n\n{}",
        app.sender("app", "10s"),
        probe(
            "appref",
            "app",
            &["unknown"],
            "120s",
            &template("verification-en")
        )
    );
    let cfg = config(stack, &bounce_dir.join(".Processed"))
        .replace("[senders.ret]", &format!("{extra}\n[senders.ret]"));
    let d = Daemon::start(&cfg);
    let state = d.state_dir();
    assert!(
        wait_until(WAIT, || runs(&state, "appref")
            .first()
            .is_some_and(|r| r.1.as_deref() == Some("bounced"))),
        "the app's refused mail did not end bounced: {:?}\nlogs:\n{}",
        runs(&state, "appref"),
        d.logs()
    );
    assert_eq!(runs(&state, "appref")[0].2.as_deref(), Some("userunknown"));
    let bounces = series(
        "mailcanary_probe_bounces_total",
        &[
            ("probe", "appref"),
            ("sender", "app"),
            ("seed", "unknown"),
            ("provider", "selfhosted"),
            ("reason", "userunknown"),
        ],
    );
    assert_eq!(d.metric(&bounces), Some(1.0), "{bounces}");
    let code = app.codes().pop().expect("the app sent a code");
    assert!(!d.logs().contains(&code), "the code in the logs");
}
