//! The probe loop end to end on the real loopback stack: mailcanary sends
//! through real Postfix relays, rspamd judges, Dovecot files, and the daemon
//! watches over IMAP/IMAPS/Maildir. No mocks of SMTP, IMAP or DNS.

mod common;

use std::time::Duration;

use common::{probe, series, stack_config, swaks, template, tokens, Daemon, Stack};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn signed_mail_from_the_authorised_relay_lands_in_inbox_with_passing_verdicts() {
    let stack = Stack::get();
    let d = Daemon::start(&stack_config(
        stack,
        &probe(
            "good",
            "ok",
            &["imap1", "imaps2", "md3"],
            "30s",
            &template("verification-en"),
        ),
    ));
    for (seed, provider) in [
        ("imap1", "imap-plain"),
        ("imaps2", "imap-tls"),
        ("md3", "maildir"),
    ] {
        let inbox = series(
            "mailcanary_probe_results_total",
            &[
                ("probe", "good"),
                ("sender", "ok"),
                ("seed", seed),
                ("provider", provider),
                ("placement", "inbox"),
            ],
        );
        assert!(
            d.wait_metric(&inbox, 1.0, WAIT),
            "{seed}: no inbox result; logs:\n{}",
            d.logs()
        );
        for method in ["spf", "dkim", "dmarc"] {
            let pass = series(
                "mailcanary_auth_result",
                &[
                    ("probe", "good"),
                    ("seed", seed),
                    ("method", method),
                    ("result", "pass"),
                ],
            );
            assert_eq!(d.metric(&pass), Some(1.0), "{seed} {method}=pass");
        }
        let placement = series(
            "mailcanary_probe_placement",
            &[("probe", "good"), ("seed", seed), ("placement", "inbox")],
        );
        assert_eq!(d.metric(&placement), Some(1.0));
        let spam = series(
            "mailcanary_probe_placement",
            &[("probe", "good"), ("seed", seed), ("placement", "spam")],
        );
        assert_eq!(d.metric(&spam), Some(0.0));
        assert!(d.metric(&series("mailcanary_inbox_up", &[("seed", seed)])) == Some(1.0));
    }
    let count = series(
        "mailcanary_delivery_latency_seconds_count",
        &[
            ("probe", "good"),
            ("sender", "ok"),
            ("provider", "maildir"),
            ("placement", "inbox"),
        ],
    );
    assert_eq!(
        d.metric(&count),
        Some(1.0),
        "the histogram counts the delivery"
    );
    // The delivered copies were cleaned up and nothing is left in flight.
    for t in tokens(&d.state_dir(), "good") {
        let (state, outcome, _, counted) = common::run_row(&d.state_dir(), &t).unwrap();
        assert_eq!(
            (state.as_str(), outcome.as_deref(), counted),
            ("final", Some("inbox"), 1)
        );
    }
    // The full code never reaches the logs: only a masked form may.
    assert!(
        !d.logs().contains("verification code is"),
        "message text in logs"
    );
}

#[test]
fn mail_from_outside_spf_lands_in_junk() {
    let stack = Stack::get();
    let d = Daemon::start(&stack_config(
        stack,
        &probe(
            "spoof",
            "bad",
            &["imap1", "md4"],
            "30s",
            &template("verification-zh"),
        ),
    ));
    for (seed, provider) in [("imap1", "imap-plain"), ("md4", "maildir")] {
        let spam = series(
            "mailcanary_probe_results_total",
            &[
                ("probe", "spoof"),
                ("sender", "bad"),
                ("seed", seed),
                ("provider", provider),
                ("placement", "spam"),
            ],
        );
        assert!(
            d.wait_metric(&spam, 1.0, WAIT),
            "{seed}: no spam result; logs:\n{}",
            d.logs()
        );
        let spf_fail = series(
            "mailcanary_auth_result",
            &[
                ("probe", "spoof"),
                ("seed", seed),
                ("method", "spf"),
                ("result", "fail"),
            ],
        );
        assert_eq!(d.metric(&spf_fail), Some(1.0), "{seed}: spf=fail");
        let dkim_none = series(
            "mailcanary_auth_result",
            &[
                ("probe", "spoof"),
                ("seed", seed),
                ("method", "dkim"),
                ("result", "none"),
            ],
        );
        assert_eq!(d.metric(&dkim_none), Some(1.0), "{seed}: unsigned");
    }
}

#[test]
fn spam_content_lands_in_junk() {
    let stack = Stack::get();
    let dir = tempfile::tempdir().unwrap();
    let spammy = dir.path().join("spammy.toml");
    std::fs::write(
        &spammy,
        format!(
            "subject = \"Your code {{code}}\"\ntext = \"\"\"\nCode {{code}}\n{}\nRef {{ref}}\n\"\"\"\nhtml = \"<p>{{code}} {{ref}}</p>\"\n",
            stack.var("SPAM_PATTERN")
        ),
    )
    .unwrap();
    let d = Daemon::start(&stack_config(
        stack,
        &probe(
            "gtube",
            "ok",
            &["md3"],
            "30s",
            &spammy.display().to_string(),
        ),
    ));
    let spam = series(
        "mailcanary_probe_results_total",
        &[
            ("probe", "gtube"),
            ("sender", "ok"),
            ("seed", "md3"),
            ("provider", "maildir"),
            ("placement", "spam"),
        ],
    );
    assert!(
        d.wait_metric(&spam, 1.0, WAIT),
        "no spam result; logs:\n{}",
        d.logs()
    );
}

#[test]
fn an_unknown_recipient_is_a_5xx_send_failure_and_leaves_nothing_in_flight() {
    let stack = Stack::get();
    // The relay itself refuses this recipient (most relays accept any and
    // bounce later: tests/probe_bounces.rs).
    let config = stack_config(stack, &probe("nobody", "ok", &["ghost"], "30s", &template("verification-en"))).replace(
        "[seeds.void]",
        &format!("[seeds.ghost]\nprovider = \"ghost\"\naddress = \"{}\"\nkind = \"maildir\"\npath = \"/nonexistent/ghost\"\n\n[seeds.void]", stack.var("RELAY_REFUSED_USER")),
    );
    let d = Daemon::start(&config);
    let failed = series(
        "mailcanary_probe_send_failures_total",
        &[
            ("probe", "nobody"),
            ("sender", "ok"),
            ("seed", "ghost"),
            ("reason", "smtp_5xx"),
        ],
    );
    assert!(
        d.wait_metric(&failed, 1.0, WAIT),
        "no smtp_5xx failure; logs:\n{}",
        d.logs()
    );
    let state = series(
        "mailcanary_probe_placement",
        &[
            ("probe", "nobody"),
            ("seed", "ghost"),
            ("placement", "send_failed"),
        ],
    );
    assert_eq!(d.metric(&state), Some(1.0));
    let runs = tokens(&d.state_dir(), "nobody");
    assert_eq!(runs.len(), 1);
    let (state, outcome, reason, _) = common::run_row(&d.state_dir(), &runs[0]).unwrap();
    assert_eq!(
        (state.as_str(), outcome.as_deref(), reason.as_deref()),
        ("final", Some("send_failed"), Some("smtp_5xx"))
    );
    assert_eq!(
        d.metric("mailcanary_probe_sent_total{probe=\"nobody\",sender=\"ok\",seed=\"ghost\"}"),
        Some(0.0),
        "nothing counted as sent"
    );
}

#[test]
fn a_discarded_probe_goes_missing_and_a_later_copy_counts_late_once() {
    let stack = Stack::get();
    let d = Daemon::start(&stack_config(
        stack,
        &probe("lost", "ok", &["void"], "3s", &template("verification-en")),
    ));
    let result = |placement: &str| {
        series(
            "mailcanary_probe_results_total",
            &[
                ("probe", "lost"),
                ("sender", "ok"),
                ("seed", "void"),
                ("provider", "void"),
                ("placement", placement),
            ],
        )
    };
    assert!(
        d.wait_metric(&result("missing"), 1.0, WAIT),
        "not missing; logs:\n{}",
        d.logs()
    );
    let placement = series(
        "mailcanary_probe_placement",
        &[
            ("probe", "lost"),
            ("seed", "void"),
            ("placement", "missing"),
        ],
    );
    assert_eq!(d.metric(&placement), Some(1.0));
    assert!(
        d.metric(&series(
            "mailcanary_probe_last_latency_seconds",
            &[("probe", "lost"), ("seed", "void")]
        ))
        .is_none(),
        "no stale latency"
    );

    // The same probe is delivered after all (into the Maildir the void seed is watched in), twice.
    let token = &tokens(&d.state_dir(), "lost")[0];
    let mid = format!("Message-Id: <mc-{token}@sender.test>"); // swaks writes "Message-Id"; same case replaces it
    swaks(
        stack.addr("RELAY_OK"),
        "seed4@seed.test",
        &[&mid],
        "late copy",
    );
    assert!(
        d.wait_metric(&result("late"), 1.0, WAIT),
        "not late; logs:\n{}",
        d.logs()
    );
    swaks(
        stack.addr("RELAY_OK"),
        "seed4@seed.test",
        &[&mid],
        "second late copy",
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(d.metric(&result("late")), Some(1.0), "late once");
    assert_eq!(d.metric(&result("missing")), Some(1.0), "missing once");
    assert_eq!(
        d.metric(&result("inbox")),
        Some(0.0),
        "never counted as inbox"
    );
}

#[test]
fn a_forged_authentication_results_header_does_not_change_the_verdict() {
    let stack = Stack::get();
    // The probe itself goes to void@ (discarded); the test delivers its own
    // copy of the probe, carrying a forged header, from outside SPF.
    let d = Daemon::start(&stack_config(
        stack,
        &probe(
            "forged",
            "ok",
            &["void"],
            "30s",
            &template("verification-en"),
        ),
    ));
    assert!(
        common::wait_until(WAIT, || !tokens(&d.state_dir(), "forged").is_empty()),
        "probe not registered"
    );
    assert!(d.wait_metric(
        "mailcanary_probe_sent_total{probe=\"forged\",sender=\"ok\",seed=\"void\"}",
        1.0,
        WAIT
    ));
    let token = &tokens(&d.state_dir(), "forged")[0];
    let mid = format!("Message-Id: <mc-{token}@sender.test>"); // swaks writes "Message-Id"; same case replaces it
    let forged = format!(
        "Authentication-Results: {}; spf=pass smtp.mailfrom=sender.test; dkim=pass header.d=sender.test; dmarc=pass header.from=sender.test",
        stack.var("AUTHSERV_ID")
    );
    swaks(
        stack.addr("RELAY_BAD"),
        "seed4@seed.test",
        &[&mid, &forged],
        "copy with a forged verdict",
    );
    let spam = series(
        "mailcanary_probe_results_total",
        &[
            ("probe", "forged"),
            ("sender", "ok"),
            ("seed", "void"),
            ("provider", "void"),
            ("placement", "spam"),
        ],
    );
    assert!(
        d.wait_metric(&spam, 1.0, WAIT),
        "not recorded; logs:\n{}",
        d.logs()
    );
    for (method, result) in [("spf", "fail"), ("dmarc", "fail"), ("dkim", "none")] {
        let s = series(
            "mailcanary_auth_result",
            &[
                ("probe", "forged"),
                ("seed", "void"),
                ("method", method),
                ("result", result),
            ],
        );
        assert_eq!(
            d.metric(&s),
            Some(1.0),
            "{method}={result} from the real receiver header"
        );
    }
}

#[test]
fn probe_once_prints_support_safe_results_and_exits_by_placement() {
    let stack = Stack::get();
    let probes = format!(
        "{}{}",
        probe(
            "cli-good",
            "ok",
            &["md3"],
            "30s",
            &template("verification-en")
        ),
        probe(
            "cli-spoof",
            "bad",
            &["md3"],
            "30s",
            &template("verification-en")
        )
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("mailcanary.toml");
    std::fs::write(
        &cfg,
        stack_config(stack, &probes).replace("{dir}", &dir.path().display().to_string()),
    )
    .unwrap();
    let run = |names: &[&str]| {
        std::process::Command::new(common::bin())
            .args(["probe", "--once", "--format", "json", "--config"])
            .arg(&cfg)
            .args(names)
            .output()
            .unwrap()
    };

    let out = run(&["cli-good"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let r = &v.as_array().unwrap()[0];
    assert_eq!(r["outcome"], "inbox");
    assert_eq!(r["auth"]["dmarc"], "pass");
    let code = r["code"].as_str().unwrap();
    assert!(
        code.len() == 6 && code.ends_with("****") && code[..2].bytes().all(|b| b.is_ascii_digit()),
        "masked: {code}"
    );
    assert!(
        r["hops"].as_array().unwrap().len() >= 2,
        "Received hops: {r}"
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains(stack.var("SEED_PASS")),
        "no password in output"
    );

    let out = run(&["cli-spoof"]);
    assert_eq!(out.status.code(), Some(1), "spam placement exits 1");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["outcome"], "spam");

    let out = run(&["no-such-probe"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn submission_with_starttls_or_implicit_tls_and_auth_delivers() {
    let stack = Stack::get();
    let probes = format!(
        "{}{}",
        probe(
            "sub",
            "sub",
            &["imapstls"],
            "30s",
            &template("verification-en")
        ),
        probe(
            "subs",
            "subs",
            &["md4"],
            "30s",
            &template("verification-en")
        )
    );
    let d = Daemon::start(&stack_config(stack, &probes));
    for (probe, sender, seed, provider) in [
        ("sub", "sub", "imapstls", "imap-starttls"),
        ("subs", "subs", "md4", "maildir"),
    ] {
        let inbox = series(
            "mailcanary_probe_results_total",
            &[
                ("probe", probe),
                ("sender", sender),
                ("seed", seed),
                ("provider", provider),
                ("placement", "inbox"),
            ],
        );
        assert!(
            d.wait_metric(&inbox, 1.0, WAIT),
            "{probe}: no inbox result; logs:\n{}",
            d.logs()
        );
    }
    let dkim = series(
        "mailcanary_auth_result",
        &[
            ("probe", "sub"),
            ("seed", "imapstls"),
            ("method", "dkim"),
            ("result", "pass"),
        ],
    );
    assert_eq!(d.metric(&dkim), Some(1.0));
    assert!(
        !d.logs().contains(stack.var("RELAY_PASS")),
        "the relay password never reaches the logs"
    );
}

#[test]
fn send_failures_carry_a_bounded_reason() {
    let stack = Stack::get();
    let probes = format!(
        "{}{}{}",
        probe(
            "authfail",
            "badauth",
            &["md3"],
            "30s",
            &template("verification-en")
        ),
        probe(
            "tlsfail",
            "notls",
            &["md3"],
            "30s",
            &template("verification-en")
        ),
        probe(
            "connfail",
            "closed",
            &["md3"],
            "30s",
            &template("verification-en")
        )
    );
    let d = Daemon::start(&stack_config(stack, &probes));
    for (probe, sender, reason) in [
        ("authfail", "badauth", "auth"),
        ("tlsfail", "notls", "tls"),
        ("connfail", "closed", "connect"),
    ] {
        let s = series(
            "mailcanary_probe_send_failures_total",
            &[
                ("probe", probe),
                ("sender", sender),
                ("seed", "md3"),
                ("reason", reason),
            ],
        );
        assert!(
            d.wait_metric(&s, 1.0, WAIT),
            "{probe}: no {reason} failure; logs:\n{}",
            d.logs()
        );
    }
    assert!(
        !d.logs().contains("not-the-password"),
        "the password never reaches the logs"
    );
}

#[test]
fn a_temporary_refusal_is_retried_then_counted_as_smtp_4xx() {
    let stack = Stack::get();
    let config = stack_config(stack, &probe("busy", "ok", &["tempfail"], "30s", &template("verification-en")))
        .replace("timeout = \"10s\"\n\n[senders.bad]", "timeout = \"10s\"\nretries_4xx = 2\nretry_backoff = \"1s\"\n\n[senders.bad]")
        .replace(
            "[seeds.void]",
            &format!(
                "[seeds.tempfail]\nprovider = \"busy\"\naddress = \"{}\"\nkind = \"maildir\"\npath = \"/nonexistent/tempfail\"\n\n[seeds.void]",
                stack.var("TEMPFAIL_USER")
            ),
        );
    let d = Daemon::start(&config);
    let failed = series(
        "mailcanary_probe_send_failures_total",
        &[
            ("probe", "busy"),
            ("sender", "ok"),
            ("seed", "tempfail"),
            ("reason", "smtp_4xx"),
        ],
    );
    assert!(
        d.wait_metric(&failed, 1.0, WAIT),
        "no smtp_4xx failure; logs:\n{}",
        d.logs()
    );
    let logs = d.logs();
    assert_eq!(
        logs.matches("temporary SMTP refusal; retrying").count(),
        2,
        "two retries:\n{logs}"
    );
    assert!(logs.contains("\"attempts\":3"), "{logs}");
}

#[test]
fn evaluated_probes_are_moved_to_the_cleanup_folder_when_one_is_set() {
    let stack = Stack::get();
    let config = stack_config(
        stack,
        &probe(
            "tidy",
            "ok",
            &["imaps2", "md3"],
            "30s",
            &template("verification-en"),
        ),
    )
    .replace(
        "username = \"seed2@seed.test\"\n",
        "username = \"seed2@seed.test\"\ncleanup_folder = \"Trash\"\n",
    )
    .replace(
        "provider = \"maildir\"\naddress = \"seed3@seed.test\"\n",
        "provider = \"maildir\"\naddress = \"seed3@seed.test\"\ncleanup_folder = \".Done\"\n",
    );
    let d = Daemon::start(&config);
    for (seed, provider) in [("imaps2", "imap-tls"), ("md3", "maildir")] {
        let inbox = series(
            "mailcanary_probe_results_total",
            &[
                ("probe", "tidy"),
                ("sender", "ok"),
                ("seed", seed),
                ("provider", provider),
                ("placement", "inbox"),
            ],
        );
        assert!(
            d.wait_metric(&inbox, 1.0, WAIT),
            "{seed}: no inbox result; logs:\n{}",
            d.logs()
        );
    }
    let maildir =
        |user: &str| std::path::PathBuf::from(stack.var("MAILDIR_PATTERN").replace("{user}", user));
    for token in tokens(&d.state_dir(), "tidy") {
        let moved = common::wait_until(Duration::from_secs(10), || {
            let dirs = [".Trash/new", ".Trash/cur"].map(|d| maildir("seed2").join(d));
            dirs.iter()
                .chain([maildir("seed3").join(".Done/cur")].iter())
                .any(|dir| {
                    std::fs::read_dir(dir)
                        .into_iter()
                        .flatten()
                        .flatten()
                        .any(|f| {
                            std::fs::read_to_string(f.path())
                                .is_ok_and(|t| t.contains(&format!("mc-{token}")))
                        })
                })
        });
        assert!(moved, "probe {token} not in its cleanup folder");
    }
}

#[test]
fn a_body_rewritten_after_signing_fails_local_dkim_re_verification() {
    use lettre::message::Mailbox;
    let stack = Stack::get();
    // The probe itself is discarded (void@); the test delivers a copy signed
    // with the stack's key whose body was changed after signing, as a
    // rewriting gateway would.
    let d = Daemon::start(&stack_config(
        stack,
        &probe(
            "rewritten",
            "ok",
            &["void"],
            "30s",
            &template("verification-en"),
        ),
    ));
    assert!(common::wait_until(WAIT, || !tokens(
        &d.state_dir(),
        "rewritten"
    )
    .is_empty()));
    let token = mailcanary::message::compose::Token::parse(&tokens(&d.state_dir(), "rewritten")[0])
        .unwrap();
    let t = mailcanary::message::compose::Template::load(std::path::Path::new(&template(
        "verification-en",
    )))
    .unwrap();
    let from: Mailbox = "no-reply@sender.test".parse().unwrap();
    let to: Mailbox = "seed4@seed.test".parse().unwrap();
    let mut rng = rand::rng();
    let composed = mailcanary::message::compose::compose(
        &mailcanary::message::compose::Parts {
            template: &t,
            from: &from,
            reply_to: None,
            to: &to,
            product: "Example",
            validity_minutes: 10,
            probe_header: false,
            date: std::time::SystemTime::now(),
        },
        token,
        mailcanary::message::compose::Code::random(&mut rng, 6),
    )
    .unwrap();
    let key = mailcanary::message::sign::DkimKey::new(
        stack.var("DKIM_SELECTOR"),
        "sender.test",
        &std::fs::read_to_string(stack.var("DKIM_KEY")).unwrap(),
    )
    .unwrap();
    let signed = String::from_utf8(key.sign(&composed.bytes).unwrap()).unwrap();
    let tampered = signed.replacen("Hi,", "Hi there, (added by a gateway)", 1);
    assert_ne!(signed, tampered);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), tampered).unwrap();
    let relay = stack.addr("RELAY_OK");
    let out = std::process::Command::new("swaks")
        .args([
            "--server",
            &relay.ip().to_string(),
            "--port",
            &relay.port().to_string(),
        ])
        .args([
            "--from",
            "no-reply@sender.test",
            "--to",
            "seed4@seed.test",
            "--hide-all",
            "--data",
        ])
        .arg(format!("@{}", file.path().display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let local = series(
        "mailcanary_delivered_dkim_result",
        &[("probe", "rewritten"), ("seed", "void"), ("result", "fail")],
    );
    assert!(
        d.wait_metric(&local, 1.0, WAIT),
        "local re-verification does not fail; logs:\n{}",
        d.logs()
    );
}

#[test]
fn a_reload_that_removes_a_probe_and_its_seed_removes_their_series() {
    let stack = Stack::get();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mailcanary.toml");
    let write = |probes: &str| {
        let config =
            stack_config(stack, probes).replace("{dir}", &dir.path().display().to_string());
        std::fs::write(&path, config).unwrap();
    };
    let stay = probe(
        "stay",
        "ok",
        &["imaps2"],
        "30s",
        &template("verification-en"),
    );
    // void@ discards mail: this run is still open when the reload removes it.
    let leave = probe("leave", "ok", &["void"], "4s", &template("verification-en"));
    write(&format!("{stay}{leave}"));
    let d = Daemon::start_at(&path);
    let sent = series(
        "mailcanary_probe_sent_total",
        &[("probe", "leave"), ("sender", "ok"), ("seed", "void")],
    );
    let stay_inbox = series(
        "mailcanary_probe_results_total",
        &[
            ("probe", "stay"),
            ("sender", "ok"),
            ("seed", "imaps2"),
            ("provider", "imap-tls"),
            ("placement", "inbox"),
        ],
    );
    assert!(d.wait_metric(&sent, 1.0, WAIT), "logs:\n{}", d.logs());
    assert!(d.wait_metric(&stay_inbox, 1.0, WAIT), "logs:\n{}", d.logs());
    let token = tokens(&dir.path().join("state"), "leave")[0].clone();

    write(&stay);
    d.signal("HUP");
    let gone = |text: &str| !text.contains(r#"probe="leave""#) && !text.contains(r#"seed="void""#);
    assert!(
        common::wait_until(WAIT, || gone(&d.get("/metrics").1)),
        "series of the removed probe and seed remain:\n{}",
        d.get("/metrics").1
    );
    // The removed probe's open run times out after the reload: it is
    // recorded as missing, but its series do not come back.
    assert!(
        common::wait_until(WAIT, || {
            common::run_row(&dir.path().join("state"), &token).is_some_and(
                |(state, outcome, ..)| state == "final" && outcome.as_deref() == Some("missing"),
            )
        }),
        "the removed probe's run did not end missing"
    );
    std::thread::sleep(Duration::from_millis(500));
    let text = d.get("/metrics").1;
    assert!(gone(&text), "a late event brought them back:\n{text}");
    // (A reload starts the schedules again: the kept probe fired twice.)
    assert!(
        d.metric(&stay_inbox).is_some_and(|n| n >= 1.0),
        "the kept probe keeps its series"
    );
}
