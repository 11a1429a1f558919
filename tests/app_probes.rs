//! The production path: probes through an app's own "send code" endpoint
//! (a stand-in app that sends through the real Postfix), failure reasons,
//! code masking and code expiry.

mod common;

use std::time::Duration;

use common::{probe, series, stack_config, template, App, Daemon, Stack};

const WAIT: Duration = Duration::from_secs(30);

/// A config with the app as sender `app` and one probe of it to `seed`.
/// Mail an app sends carries no token and is matched by seed and From, so
/// tests running at once use different seeds.
fn config(stack: &Stack, app: &App, probe_name: &str, seed: &str, extra: &str) -> String {
    let p = probe(
        probe_name,
        "app",
        &[seed],
        "20s",
        &template("verification-en"),
    );
    stack_config(stack, &format!("{}{p}{extra}", app.sender("app", "3s")))
}

#[test]
fn a_triggered_code_arrives_in_the_inbox_with_its_code_masked_everywhere() {
    let stack = Stack::get();
    let app = App::start(stack, "ok", 0.0);
    let d = Daemon::start(&config(stack, &app, "app-ok", "md3", ""));
    let inbox = series(
        "mailcanary_probe_results_total",
        &[
            ("probe", "app-ok"),
            ("sender", "app"),
            ("seed", "md3"),
            ("provider", "maildir"),
            ("placement", "inbox"),
        ],
    );
    assert!(
        d.wait_metric(&inbox, 1.0, WAIT),
        "no inbox result; logs:\n{}",
        d.logs()
    );
    let codes = app.codes();
    assert_eq!(codes.len(), 1, "one code sent");
    let (_, metrics) = d.get("/metrics");
    for text in [d.logs(), metrics] {
        assert!(!text.contains(&codes[0]), "the full code leaked");
        assert!(!text.contains(common::APP_TOKEN), "the app token leaked");
    }

    // The same through `mailcanary probe --once`: the code is shown masked.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        config(stack, &app, "app-ok", "md3", "")
            .replace("{dir}", &dir.path().display().to_string()),
    )
    .unwrap();
    let out = std::process::Command::new(common::bin())
        .args(["probe", "--once", "--format", "json", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let sent = app.codes();
    let last = sent.last().unwrap();
    assert_eq!(v[0]["outcome"], "inbox");
    assert_eq!(
        v[0]["code"],
        format!("{}****", &last[..2]),
        "masked code of the app's mail"
    );
    assert!(
        !text.contains(last.as_str()),
        "the full code leaked into probe output"
    );
}

#[test]
fn app_refusals_carry_a_bounded_reason() {
    let stack = Stack::get();
    for (mode, delay, reason) in [
        ("ratelimit", 0.0, "rate_limited"),
        ("quota", 0.0, "quota"),
        ("error500", 0.0, "http_5xx"),
        ("notfound", 0.0, "http_4xx"),
        ("slow", 6.0, "timeout"),
    ] {
        let app = App::start(stack, mode, delay);
        let probe_name = format!("app-{mode}");
        let d = Daemon::start(&config(stack, &app, &probe_name, "md3", ""));
        let failed = series(
            "mailcanary_probe_send_failures_total",
            &[
                ("probe", &probe_name),
                ("sender", "app"),
                ("seed", "md3"),
                ("reason", reason),
            ],
        );
        assert!(
            d.wait_metric(&failed, 1.0, WAIT),
            "{mode}: no {reason} failure; logs:\n{}",
            d.logs()
        );
        if mode == "ratelimit" {
            // Retry-After: 30 holds the sender; a reload fires the probe again, which is skipped.
            d.signal("HUP");
            assert!(
                d.wait_log(
                    "sender asked to wait (Retry-After)",
                    Duration::from_secs(10)
                ),
                "{}",
                d.logs()
            );
            assert_eq!(d.metric(&failed), Some(1.0), "no request while held");
        }
    }
    // Nothing listening: connect.
    let mut app = App::start(stack, "ok", 0.0);
    let cfg = config(stack, &app, "app-down", "md3", "");
    app.stop();
    let d = Daemon::start(&cfg);
    let failed = series(
        "mailcanary_probe_send_failures_total",
        &[
            ("probe", "app-down"),
            ("sender", "app"),
            ("seed", "md3"),
            ("reason", "connect"),
        ],
    );
    assert!(
        d.wait_metric(&failed, 1.0, WAIT),
        "no connect failure; logs:\n{}",
        d.logs()
    );
    drop(d);

    // HTTPS with a certificate the sender does not trust: tls. With the
    // stack's CA as the sender's ca_file the same app takes the request.
    let app = App::start_tls(stack, "ok", 0.0);
    let untrusted = config(stack, &app, "app-tls", "md3", "");
    let d = Daemon::start(&untrusted);
    let failed = series(
        "mailcanary_probe_send_failures_total",
        &[
            ("probe", "app-tls"),
            ("sender", "app"),
            ("seed", "md3"),
            ("reason", "tls"),
        ],
    );
    assert!(
        d.wait_metric(&failed, 1.0, WAIT),
        "no tls failure; logs:\n{}",
        d.logs()
    );
    drop(d);
    let trusted = untrusted.replace(
        "timeout = \"3s\"",
        &format!("timeout = \"3s\"\nca_file = \"{}\"", stack.var("CA_CERT")),
    );
    assert_ne!(trusted, untrusted);
    let d = Daemon::start(&trusted);
    let sent = series(
        "mailcanary_probe_sent_total",
        &[("probe", "app-tls"), ("sender", "app"), ("seed", "md3")],
    );
    assert!(
        d.wait_metric(&sent, 1.0, WAIT),
        "not sent with the CA trusted; logs:\n{}",
        d.logs()
    );
}

#[test]
fn a_code_arriving_after_its_validity_counts_as_expired() {
    let stack = Stack::get();
    let app = App::start(stack, "delay", 3.0);
    let extra = "";
    let cfg = config(stack, &app, "app-slow", "md4", extra)
        .replace("template = ", "code_validity = \"1s\"\ntemplate = ");
    let d = Daemon::start(&cfg);
    let expired = series(
        "mailcanary_probe_results_total",
        &[
            ("probe", "app-slow"),
            ("sender", "app"),
            ("seed", "md4"),
            ("provider", "maildir"),
            ("placement", "expired"),
        ],
    );
    assert!(
        d.wait_metric(&expired, 1.0, WAIT),
        "not expired; logs:\n{}",
        d.logs()
    );
    let after = series(
        "mailcanary_probe_arrived_after_expiry_total",
        &[("probe", "app-slow"), ("sender", "app"), ("seed", "md4")],
    );
    assert_eq!(d.metric(&after), Some(1.0));
    let state = series(
        "mailcanary_probe_placement",
        &[
            ("probe", "app-slow"),
            ("seed", "md4"),
            ("placement", "expired"),
        ],
    );
    assert_eq!(d.metric(&state), Some(1.0));
}

#[test]
fn a_resend_burst_counts_an_older_code_arriving_after_a_newer_one_once() {
    let stack = Stack::get();
    // The app holds back the first request's mail, as a slow queue would:
    // 8 s, well past the third request (3 s) and its delivery (up to ~3 s
    // on a busy machine), so the order is not left to chance.
    let app = App::start(stack, "reorder", 8.0);
    let cfg = config(stack, &app, "app-burst", "imaps2", "").replace(
        "template = ",
        "burst = 3\nburst_spacing = \"1500ms\"\ntemplate = ",
    );
    let d = Daemon::start(&cfg);
    let inbox = series(
        "mailcanary_probe_results_total",
        &[
            ("probe", "app-burst"),
            ("sender", "app"),
            ("seed", "imaps2"),
            ("provider", "imap-tls"),
            ("placement", "inbox"),
        ],
    );
    assert!(
        d.wait_metric(&inbox, 3.0, WAIT),
        "not all three arrived; logs:\n{}",
        d.logs()
    );
    let ooo = series(
        "mailcanary_resend_out_of_order_total",
        &[
            ("probe", "app-burst"),
            ("sender", "app"),
            ("seed", "imaps2"),
        ],
    );
    assert_eq!(
        d.metric(&ooo),
        Some(1.0),
        "out of order, counted once; logs:\n{}",
        d.logs()
    );

    // The same code delivered again is a duplicate, not a new arrival.
    let code = app.codes()[1].clone();
    common::swaks(
        stack.addr("RELAY_OK"),
        "seed2@seed.test",
        &[
            "From: Example <no-reply@sender.test>",
            "Subject: Your Example verification code",
        ],
        &format!("Your verification code is {code}. It expires in 10 minutes."),
    );
    let dup = series(
        "mailcanary_resend_duplicates_total",
        &[
            ("probe", "app-burst"),
            ("sender", "app"),
            ("seed", "imaps2"),
        ],
    );
    assert!(
        d.wait_metric(&dup, 1.0, WAIT),
        "duplicate not counted; logs:\n{}",
        d.logs()
    );
    assert_eq!(
        d.metric(&inbox),
        Some(3.0),
        "a duplicate is not another result"
    );
    assert!(
        !d.logs().contains(&code),
        "the full code never reaches the logs"
    );
    drop(d);

    // `probe --once` ends with a line per burst that says what the user saw.
    let app = App::start(stack, "reorder", 8.0);
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("c.toml");
    let cfg = config(stack, &app, "app-burst", "imaps2", "")
        .replace(
            "template = ",
            "burst = 3\nburst_spacing = \"1500ms\"\ntemplate = ",
        )
        .replace("{dir}", &dir.path().display().to_string());
    std::fs::write(&cfg_path, cfg).unwrap();
    let out = std::process::Command::new(common::bin())
        .args(["probe", "--once", "--config"])
        .arg(&cfg_path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.lines().any(|l| l
            == "burst app-burst → imaps2: 3 requested, 3 arrived (inbox 3); out of order: \
                code #1 arrived after the newest (#3), so a user may type a stale code"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for code in app.codes() {
        assert!(!text.contains(&code), "a full code in probe output");
    }
}
