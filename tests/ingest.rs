//! The ingestion stage on the real stack: DMARC and TLS reports delivered
//! through Postfix into `reports@sender.test` (read over IMAP), and the
//! bounces of "the app's" real mail in `appbounces@sender.test` (read as a
//! Maildir): counted once, also across a restart, left in place, with no
//! address in logs or metrics.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use common::{wait_until, Daemon, Stack};

const WAIT: Duration = Duration::from_secs(30);

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

/// Empty a sender.test mailbox's Maildir (each test owns its mailbox), so
/// reruns on a shared stack start from nothing.
fn clear_maildir(stack: &Stack, user: &str) -> PathBuf {
    let dir = maildir_of(stack, user);
    for sub in ["new", "cur"] {
        if let Ok(entries) = std::fs::read_dir(dir.join(sub)) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    dir
}

fn messages_in(dir: &Path) -> usize {
    ["new", "cur"]
        .iter()
        .filter_map(|s| std::fs::read_dir(dir.join(s)).ok())
        .map(|d| d.count())
        .sum()
}

/// Deliver a whole message (`data`: a file) with swaks over SMTP or LMTP.
fn deliver(server: &str, lmtp: bool, from: &str, to: &str, data: &Path) {
    let (host, port) = server.rsplit_once(':').unwrap();
    let mut cmd = Command::new("swaks");
    cmd.args(["--server", host, "--port", port, "--from", from, "--to", to])
        .arg("--data")
        .arg(format!("@{}", data.display()))
        .arg("--hide-all");
    if lmtp {
        cmd.args(["--protocol", "LMTP"]);
    }
    let out = cmd.output().expect("swaks");
    assert!(
        out.status.success(),
        "swaks to {to}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Send a plain message through a relay (envelope `from`), to be bounced.
fn send(server: &str, from: &str, to: &str) {
    let (host, port) = server.rsplit_once(':').unwrap();
    let ok = Command::new("swaks")
        .args(["--server", host, "--port", port, "--from", from, "--to", to])
        .args(["--body", "Your code is 123456", "--hide-all"])
        .status()
        .expect("swaks")
        .success();
    assert!(ok, "swaks to a refused recipient");
}

/// A report file as a receiver mails it: a MIME message with the file
/// attached (base64), written to `dir`.
fn report_mail(dir: &Path, file: &str, from: &str) -> PathBuf {
    let body = std::fs::read(fixture(&format!("reports/{file}"))).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(body);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let mime = if file.ends_with(".zip") {
        "application/zip"
    } else if file.ends_with(".gz") {
        "application/gzip"
    } else if file.ends_with(".json") {
        "application/tlsrpt+json"
    } else {
        "text/xml"
    };
    let text = format!(
        "From: {from}\r\nTo: reports@sender.test\r\nSubject: Report Domain: example.com Submitter: {from} Report-ID: {file}\r\n\
         Date: Tue, 01 Dec 2026 06:00:00 +0000\r\nMessage-ID: <{file}@reporter.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nThis is a report.\r\n\
         --b1\r\nContent-Type: {mime}; name=\"{file}\"\r\nContent-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"{file}\"\r\n\r\n{}\r\n--b1--\r\n",
        lines.join("\r\n")
    );
    let path = dir.join(format!("{file}.eml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The sum of every sample of `name` whose labels include all of `labels`.
fn sum(daemon: &Daemon, name: &str, labels: &[(&str, &str)]) -> f64 {
    let (_, body) = daemon.get("/metrics");
    body.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn reports(daemon: &Daemon, kind: &str, outcome: &str) -> Option<f64> {
    daemon.metric(&format!(
        r#"mailcanary_reports_total{{mailbox="rua",kind="{kind}",outcome="{outcome}"}}"#
    ))
}

fn wait_reports(daemon: &Daemon, kind: &str, outcome: &str, want: f64) {
    assert!(
        wait_until(WAIT, || reports(daemon, kind, outcome) == Some(want)),
        "reports_total{{{kind},{outcome}}} = {:?}, want {want}; logs:\n{}",
        reports(daemon, kind, outcome),
        daemon.logs()
    );
}

fn write_config(dir: &Path, stack: &Stack, mailbox: &str) -> PathBuf {
    let pw = dir.join("password");
    std::fs::write(&pw, format!("{}\n", stack.var("SEED_PASS"))).unwrap();
    let path = dir.join("mailcanary.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[daemon]
state_dir = "{state}"
shutdown_grace = "5s"
[http]
listen = "127.0.0.1:0"
[dns]
resolver = "{dns}"
timeout = "1s"

[domains."example.com"]
every = "24h"
starttls = false
sending_networks = ["198.51.100.0/24", "2001:db8::/32"]
{mailbox}
"#,
            state = dir.join("state").display(),
            dns = stack.var("DNS"),
        ),
    )
    .unwrap();
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("{password}", &pw.display().to_string());
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn reports_are_ingested_once_also_across_a_restart() {
    let stack = Stack::get();
    let user = stack.var("REPORTS_USER");
    clear_maildir(stack, user);
    let dir = tempfile::tempdir().unwrap();
    let (host, port) = stack.var("IMAP").rsplit_once(':').unwrap();
    let config = write_config(
        dir.path(),
        stack,
        &format!(
            r#"
[reports.rua]
provider = "selfhosted"
address = "{user}"
kind = "imap"
host = "{host}"
port = {port}
tls = "none"
password_file = "{{password}}"
"#
        ),
    );
    let relay = stack.var("RELAY_OK");
    let daemon = Daemon::start_at(&config);
    assert_eq!(reports(&daemon, "dmarc_aggregate", "ingested"), Some(0.0));

    // As the receivers send them, through Postfix.
    let mails = [
        fixture("reports/microsoft.eml"),
        fixture("reports/yahoo.eml"),
        fixture("reports/tlsrpt-google.eml"),
        report_mail(dir.path(), "google.zip", "noreply-dmarc-support@google.com"),
        // The same Microsoft report again: another message, the same report id.
        fixture("reports/microsoft.eml"),
        report_mail(dir.path(), "gzip-bomb.xml.gz", "bomb@reporter.test"),
        report_mail(dir.path(), "malformed.xml", "broken@reporter.test"),
        report_mail(
            dir.path(),
            "tlsrpt-rfc8460.json",
            "tls-report@company-x.example",
        ),
    ];
    for m in &mails {
        deliver(relay, false, "reporter@reporter.test", user, m);
    }
    wait_reports(&daemon, "dmarc_aggregate", "ingested", 3.0);
    wait_reports(&daemon, "dmarc_aggregate", "duplicate", 1.0);
    wait_reports(&daemon, "tls_rpt", "ingested", 1.0);
    wait_reports(&daemon, "tls_rpt", "foreign_domain", 1.0);
    wait_reports(&daemon, "unknown", "invalid", 2.0);

    // What the reports say, counted once (microsoft.eml: 82 messages, 77 passing).
    let dmarc = "mailcanary_dmarc_report_messages_total";
    assert_eq!(sum(&daemon, dmarc, &[("reporter", "microsoft")]), 82.0);
    assert_eq!(
        sum(
            &daemon,
            dmarc,
            &[("reporter", "microsoft"), ("dmarc", "pass")]
        ),
        77.0
    );
    assert_eq!(sum(&daemon, dmarc, &[("reporter", "google")]), 1638.0);
    assert_eq!(
        daemon.metric(r#"mailcanary_tls_report_sessions_total{domain="example.com",reporter="google",policy_type="sts",result="success"}"#),
        Some(1482.0)
    );
    let (_, body) = daemon.get("/metrics");
    for secret in [
        "9a2cbbd0aa114f90b0e3c1c4b0c5d6e7",
        "company-y",
        "@",
        "203.0.113.",
    ] {
        assert!(
            !body
                .lines()
                .any(|l| !l.starts_with('#') && l.contains(secret)),
            "{secret} in /metrics"
        );
    }
    // Left in place: the mailbox belongs to the app.
    let maildir = maildir_of(stack, user);
    assert_eq!(messages_in(&maildir), mails.len());

    // The sources behind the numbers.
    let out = Command::new(common::bin())
        .args([
            "reports",
            "top",
            "--format",
            "json",
            "--domain",
            "example.com",
            "--config",
        ])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let top: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!top.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
    let failed: u64 = top.iter().map(|r| r["failed"].as_u64().unwrap()).sum();
    // Microsoft 5, Yahoo 4, Google 15 messages failed.
    assert_eq!(failed, 5 + 4 + 15, "{top:?}");

    // A restart: every message is seen again and none is counted again.
    daemon.signal("TERM");
    let mut daemon = daemon;
    assert!(daemon.wait_exit(Duration::from_secs(15)).is_some());
    drop(daemon);
    let daemon = Daemon::start_at(&config);
    assert!(
        wait_until(WAIT, || daemon
            .metric(
                r#"mailcanary_report_last_timestamp_seconds{domain="example.com",kind="tls_rpt"}"#
            )
            .is_some()),
        "the newest report time comes back from the store"
    );
    deliver(
        relay,
        false,
        "reporter@reporter.test",
        user,
        &report_mail(dir.path(), "outlook.xml.gz", "dmarcreport@microsoft.com"),
    );
    wait_reports(&daemon, "dmarc_aggregate", "ingested", 1.0);
    for (kind, outcome) in [
        ("dmarc_aggregate", "duplicate"),
        ("tls_rpt", "ingested"),
        ("tls_rpt", "foreign_domain"),
        ("unknown", "invalid"),
    ] {
        assert_eq!(
            reports(&daemon, kind, outcome),
            Some(0.0),
            "{kind} {outcome}"
        );
    }
    assert_eq!(
        sum(&daemon, dmarc, &[]),
        45.0,
        "only outlook.xml.gz's 45 messages"
    );
}

/// The Maildir of a sender.test mailbox.
fn maildir_of(stack: &Stack, user: &str) -> PathBuf {
    let local = user.split('@').next().unwrap();
    PathBuf::from(stack.var("SENDER_MAILDIR_PATTERN").replace("{user}", local))
}

#[test]
fn real_bounces_are_counted_by_provider_and_reason_once_without_addresses() {
    let stack = Stack::get();
    let user = stack.var("APP_BOUNCE_USER");
    let maildir = clear_maildir(stack, user);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        stack,
        &format!(
            r#"
[bounces.app]
provider = "selfhosted"
address = "{user}"
kind = "maildir"
path = "{}"
"#,
            maildir.display()
        ),
    );
    let daemon = Daemon::start_at(&config);
    let relay = stack.var("RELAY_OK");
    let lmtp = stack.var("LMTP");
    // The app's real mail to recipients the seed MX refuses: the relay
    // bounces to the return path within seconds.
    send(relay, user, stack.var("UNKNOWN_USER"));
    send(relay, user, stack.var("POLICY_USER"));
    // Bounces from consumer providers, and one for a mistyped domain; a
    // delay notice is no bounce.
    for f in [
        "gmail-dsn-userunknown.eml",
        "qq-text-userunknown.eml",
        "postfix-hostunknown-typo.eml",
        "postfix-real-delayed.eml",
    ] {
        deliver(lmtp, true, "", user, &fixture(&format!("bounce/{f}")));
    }
    let total = |d: &Daemon| sum(d, "mailcanary_bounces_total", &[("mailbox", "app")]);
    assert!(
        wait_until(WAIT, || total(&daemon) == 5.0),
        "bounces: {}; logs:\n{}",
        total(&daemon),
        daemon.logs()
    );
    let m = |s: &str| daemon.metric(s);
    assert_eq!(
        m(r#"mailcanary_bounces_total{mailbox="app",provider="gmail",reason="userunknown"}"#),
        Some(1.0)
    );
    assert_eq!(
        m(r#"mailcanary_bounces_total{mailbox="app",provider="qq",reason="userunknown"}"#),
        Some(1.0)
    );
    assert_eq!(
        m(r#"mailcanary_bounces_typo_domain_total{mailbox="app",provider="gmail"}"#),
        Some(1.0)
    );
    assert_eq!(
        sum(
            &daemon,
            "mailcanary_bounces_total",
            &[("provider", "other")]
        ),
        3.0,
        "the two stack bounces (seed.test) and gmial.com"
    );
    // No address or user domain in logs or metrics.
    let (_, body) = daemon.get("/metrics");
    let logs = daemon.logs();
    for secret in [
        stack.var("UNKNOWN_USER"),
        stack.var("POLICY_USER"),
        "no.such.person",
        "1234567890@qq.com",
        "gmial.com",
        "seed.test",
    ] {
        assert!(!body.contains(secret), "{secret} in /metrics");
        assert!(!logs.contains(secret), "{secret} in the log:\n{logs}");
    }
    // Left in place.
    assert_eq!(messages_in(&maildir), 6);

    // A restart reads the Maildir again and counts nothing twice.
    let mut daemon = daemon;
    daemon.signal("TERM");
    assert!(daemon.wait_exit(Duration::from_secs(15)).is_some());
    drop(daemon);
    let daemon = Daemon::start_at(&config);
    send(relay, user, stack.var("UNKNOWN_USER"));
    assert!(
        wait_until(WAIT, || total(&daemon) == 1.0),
        "after the restart: {}",
        total(&daemon)
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(total(&daemon), 1.0, "nothing counted twice");
    assert_eq!(messages_in(&maildir), 7);
}

/// A Maildir under `dir` holding `files` (fixtures) in `new/`.
fn maildir_with(dir: &Path, files: &[&str]) -> PathBuf {
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    for (i, f) in files.iter().enumerate() {
        std::fs::copy(fixture(f), dir.join("new").join(format!("{i}.test:2,"))).unwrap();
    }
    dir.to_path_buf()
}

fn reports_maildir(name: &str, path: &Path) -> String {
    format!(
        "\n[reports.{name}]\nprovider = \"selfhosted\"\naddress = \"{name}@example.com\"\nkind = \"maildir\"\npath = \"{}\"\n",
        path.display()
    )
}

#[test]
fn a_reload_swaps_the_app_mailboxes_and_their_series() {
    let stack = Stack::get();
    let dir = tempfile::tempdir().unwrap();
    let a = maildir_with(&dir.path().join("a"), &["reports/microsoft.eml"]);
    let b = maildir_with(&dir.path().join("b"), &["reports/yahoo.eml"]);
    let config = write_config(dir.path(), stack, &reports_maildir("rua", &a));
    let daemon = Daemon::start_at(&config);
    wait_reports(&daemon, "dmarc_aggregate", "ingested", 1.0);

    write_config(dir.path(), stack, &reports_maildir("dmarc2", &b));
    daemon.signal("HUP");
    let other = |outcome: &str| {
        daemon.metric(&format!(
            r#"mailcanary_reports_total{{mailbox="dmarc2",kind="dmarc_aggregate",outcome="{outcome}"}}"#
        ))
    };
    assert!(
        wait_until(WAIT, || other("ingested") == Some(1.0)),
        "the new mailbox is read; logs:\n{}",
        daemon.logs()
    );
    let (_, body) = daemon.get("/metrics");
    assert!(
        !body.contains(r#"mailbox="rua""#),
        "the removed mailbox's series go:\n{body}"
    );
    // The removed mailbox is no longer watched.
    std::fs::copy(
        fixture("reports/tlsrpt-google.eml"),
        a.join("new").join("late.test:2,"),
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let (_, body) = daemon.get("/metrics");
    assert!(!body.contains(r#"mailbox="rua""#), "{body}");
    assert_eq!(
        daemon.metric(r#"mailcanary_tls_report_sessions_total{domain="example.com",reporter="google",policy_type="sts",result="success"}"#),
        None,
        "a report left in the removed mailbox is not read"
    );
    let dmarc = "mailcanary_dmarc_report_messages_total";
    assert_eq!(
        sum(&daemon, dmarc, &[]),
        82.0 + 314.0,
        "both reports, once each"
    );
}

/// `tests/oauth/provider.py`'s admin API (the stack's OAuth stand-in).
fn oauth_admin(stack: &Stack, path: &str, body: &str) -> serde_json::Value {
    let out = Command::new("curl")
        .args(["-sS", "--fail-with-body", "-X", "POST"])
        .arg(format!("{}{path}", stack.var("OAUTH_URL")))
        .args([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            body,
        ])
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("provider JSON")
}

#[test]
fn a_reports_mailbox_logs_in_with_oauth_and_keeps_its_secrets() {
    let stack = Stack::get();
    // The stack's OAuth users are Dovecot mailboxes at seed.test; reports
    // are put straight into the INBOX over LMTP. oauth1: its own test only
    // counts its logins from below, and probe watchers ignore the report;
    // tests/oauth_seeds.rs requires that oauth5 never logs in.
    let user = "oauth1@seed.test";
    let client = oauth_admin(
        stack,
        "/admin/clients",
        &serde_json::json!({ "user": user, "ttl": 3600, "rotate": false }).to_string(),
    );
    let (id, secret, refresh) = (
        client["client_id"].as_str().unwrap(),
        client["client_secret"].as_str().unwrap(),
        client["refresh_token"].as_str().unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), format!("{secret}\n")).unwrap();
    std::fs::write(dir.path().join("refresh"), format!("{refresh}\n")).unwrap();
    let config = write_config(
        dir.path(),
        stack,
        &format!(
            r#"
[reports.rua]
provider = "selfhosted"
address = "{user}"
kind = "imap"
host = "127.0.0.1"
port = {port}
tls = "none"
auth = "xoauth2"
[reports.rua.oauth]
token_url = "{url}/token"
client_id = "{id}"
client_secret_file = "{secret_file}"
refresh_token_file = "{refresh_file}"
"#,
            port = stack.addr("IMAP").port(),
            url = stack.var("OAUTH_URL"),
            secret_file = dir.path().join("secret").display(),
            refresh_file = dir.path().join("refresh").display(),
        ),
    );
    deliver(
        stack.var("LMTP"),
        true,
        "dmarc-noreply@microsoft.com",
        user,
        &fixture("reports/microsoft.eml"),
    );
    let daemon = Daemon::start_at(&config);
    // The INBOX may hold other tests' probe mail: `invalid` here, and this
    // report may be there from an earlier run: `duplicate`.
    wait_reports(&daemon, "dmarc_aggregate", "ingested", 1.0);
    let logs = daemon.logs();
    assert!(logs.contains("reports:rua"), "{logs}");
    let dovecot = std::fs::read_to_string(stack.var("DOVECOT_LOG")).unwrap_or_default();
    assert!(
        dovecot
            .lines()
            .any(|l| l.contains(&format!("Login: user=<{user}>")) && l.contains("method=XOAUTH2")),
        "no XOAUTH2 login of {user} in Dovecot's log"
    );
    let (_, body) = daemon.get("/metrics");
    for s in [secret, refresh] {
        assert!(!logs.contains(s), "a secret in the log");
        assert!(!body.contains(s), "a secret in /metrics");
    }
}
