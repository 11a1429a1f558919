//! OAuth2 seeds on the real stack: Dovecot's oauth2 passdb checks the
//! bearer tokens mailcanary presents (XOAUTH2, OAUTHBEARER) against
//! tests/oauth/provider.py, which also plays the provider's token endpoint.
//! Covered: both mechanisms, the IMAP ID Dovecot logs, refresh ahead of
//! expiry, refresh after the server refuses a token, and a revoked refresh
//! token (actionable error, inbox down, no retry loop). No secret may show
//! in the daemon's logs or metrics.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{probe, series, stack_config, template, wait_until, Daemon, Stack};

const WAIT: Duration = Duration::from_secs(30);

/// A client registered at the provider stand-in, with its secrets on disk.
struct Client {
    id: String,
    secret: String,
    refresh_token: String,
    dir: tempfile::TempDir,
}

impl Client {
    fn register(stack: &Stack, user: &str, ttl: u64) -> Client {
        Client::register_with(stack, user, ttl, false)
    }

    /// `rotate`: every refresh answers with a new refresh token, as at Microsoft.
    fn register_with(stack: &Stack, user: &str, ttl: u64, rotate: bool) -> Client {
        let body = serde_json::json!({ "user": user, "ttl": ttl, "rotate": rotate }).to_string();
        let out = admin(stack, "POST", "/admin/clients", Some(&body));
        let v: serde_json::Value = serde_json::from_str(&out).expect("provider JSON");
        let c = Client {
            id: v["client_id"].as_str().unwrap().to_string(),
            secret: v["client_secret"].as_str().unwrap().to_string(),
            refresh_token: v["refresh_token"].as_str().unwrap().to_string(),
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::write(c.path("secret"), format!("{}\n", c.secret)).unwrap();
        std::fs::write(c.path("refresh"), format!("{}\n", c.refresh_token)).unwrap();
        c
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn revoke(&self, stack: &Stack, what: &str) {
        let body = serde_json::json!({ "client_id": self.id, "what": what }).to_string();
        admin(stack, "POST", "/admin/revoke", Some(&body));
    }

    fn stats(&self, stack: &Stack, key: &str) -> u64 {
        let out = admin(
            stack,
            "GET",
            &format!("/admin/stats?client_id={}", self.id),
            None,
        );
        let v: serde_json::Value = serde_json::from_str(&out).expect("provider JSON");
        v[key].as_u64().unwrap()
    }

    /// A seed table for `user` logging in with `auth` through this client.
    fn seed(&self, stack: &Stack, name: &str, user: &str, auth: &str) -> String {
        format!(
            r#"
[seeds.{name}]
provider = "oauth-test"
address = "{user}"
authserv_id = "{authserv}"
kind = "imap"
host = "127.0.0.1"
port = {port}
tls = "none"
auth = "{auth}"
[seeds.{name}.oauth]
token_url = "{url}/token"
client_id = "{id}"
client_secret_file = "{secret}"
refresh_token_file = "{refresh}"
"#,
            authserv = stack.var("AUTHSERV_ID"),
            port = stack.addr("IMAP").port(),
            url = stack.var("OAUTH_URL"),
            id = self.id,
            secret = self.path("secret").display(),
            refresh = self.path("refresh").display(),
        )
    }

    /// Neither secret, nor any access token, in `text`.
    fn assert_not_in(&self, text: &str, what: &str) {
        assert!(!text.contains(&self.secret), "client secret in {what}");
        assert!(
            !text.contains(&self.refresh_token),
            "refresh token in {what}"
        );
        let access = regex::Regex::new(r"at-[A-Za-z0-9_-]{20,}").unwrap();
        assert!(!access.is_match(text), "an access token in {what}");
    }
}

fn admin(stack: &Stack, method: &str, path: &str, body: Option<&str>) -> String {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--fail-with-body", "-X", method])
        .arg(format!("{}{path}", stack.var("OAUTH_URL")));
    if let Some(b) = body {
        cmd.args(["-H", "Content-Type: application/json", "--data-binary", b]);
    }
    let out = cmd.output().expect("curl");
    assert!(
        out.status.success(),
        "provider {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Dovecot's log lines about `user`.
fn dovecot_lines(stack: &Stack, user: &str) -> Vec<String> {
    let log = std::fs::read_to_string(stack.var("DOVECOT_LOG")).unwrap_or_default();
    log.lines()
        .filter(|l| l.contains(user))
        .map(str::to_string)
        .collect()
}

fn logins(stack: &Stack, user: &str, mechanism: &str) -> usize {
    dovecot_lines(stack, user)
        .iter()
        .filter(|l| l.contains("Login: user=<") && l.contains(&format!("method={mechanism}")))
        .count()
}

fn kick(stack: &Stack, user: &str) {
    let out = Command::new("doveadm")
        .args(["-c", stack.var("DOVECOT_CONFIG"), "kick", user])
        .output()
        .expect("doveadm");
    assert!(
        out.status.success(),
        "doveadm kick: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn inbox_results(d: &Daemon, probe: &str, seed: &str) -> f64 {
    d.metric(&series(
        "mailcanary_probe_results_total",
        &[
            ("probe", probe),
            ("sender", "ok"),
            ("seed", seed),
            ("provider", "oauth-test"),
            ("placement", "inbox"),
        ],
    ))
    .unwrap_or(0.0)
}

fn with_trace_logs(path: &Path) -> Command {
    // The most verbose logs there are, the IMAP client's protocol trace
    // asked for by name: no secret may show even here.
    let mut cmd = common::command(path);
    cmd.env("MAILCANARY_LOG", "trace,async_imap::imap_stream=trace");
    cmd
}

/// No line of the IMAP client's protocol trace (which shows LOGIN and
/// AUTHENTICATE arguments, base64 or not) in `logs`, while other crates'
/// `log` records do come through at trace level.
fn assert_no_protocol_trace(logs: &str) {
    let below_info =
        |l: &&str| l.contains(r#""level":"TRACE""#) || l.contains(r#""level":"DEBUG""#);
    let bridged = logs
        .lines()
        .filter(below_info)
        .any(|l| l.contains(r#""target":"reqwest"#) || l.contains(r#""log.target":"reqwest"#));
    assert!(bridged, "no debug line from reqwest: is trace level on?");
    let leaked: Vec<&str> = logs
        .lines()
        .filter(below_info)
        .filter(|l| l.contains("async_imap") || l.contains("imap_proto"))
        .collect();
    assert!(
        leaked.is_empty(),
        "IMAP protocol trace in the logs: {leaked:?}"
    );
}

#[test]
fn xoauth2_and_oauthbearer_logins_watch_the_inbox_and_identify_with_imap_id() {
    let stack = Stack::get();
    let (u1, u2) = ("oauth1@seed.test", "oauth2@seed.test");
    let (c1, c2) = (
        Client::register(stack, u1, 3600),
        Client::register(stack, u2, 3600),
    );
    let config = stack_config(
        stack,
        &format!(
            "{}{}{}",
            c1.seed(stack, "ox", u1, "xoauth2"),
            c2.seed(stack, "ob", u2, "oauthbearer"),
            probe(
                "op",
                "ok",
                &["ox", "ob"],
                "30s",
                &template("verification-en")
            ),
        ),
    );
    let d = Daemon::start_custom(&config, with_trace_logs);
    for seed in ["ox", "ob"] {
        assert!(
            wait_until(WAIT, || inbox_results(&d, "op", seed) >= 1.0),
            "{seed}: no inbox result; logs:\n{}",
            d.logs()
        );
        assert_eq!(
            d.metric(&series("mailcanary_inbox_up", &[("seed", seed)])),
            Some(1.0)
        );
        assert_eq!(
            d.metric(&series(
                "mailcanary_oauth_refreshes_total",
                &[("seed", seed)]
            )),
            Some(1.0),
            "one token serves both folder watchers"
        );
        let expiry = d
            .metric(&series(
                "mailcanary_oauth_token_expiry_timestamp_seconds",
                &[("seed", seed)],
            ))
            .expect("expiry series");
        assert!(
            (now_s() + 3000.0..now_s() + 3700.0).contains(&expiry),
            "{seed}: expiry {expiry}"
        );
    }
    assert!(logins(stack, u1, "XOAUTH2") >= 2, "inbox and spam watchers");
    assert!(
        logins(stack, u2, "OAUTHBEARER") >= 2,
        "inbox and spam watchers"
    );
    // Dovecot logs the ID fields (imap_id_log = *).
    let version = env!("CARGO_PKG_VERSION");
    for user in [u1, u2] {
        let ids: Vec<String> = dovecot_lines(stack, user)
            .into_iter()
            .filter(|l| l.contains("ID sent:"))
            .collect();
        assert!(
            ids.iter().any(|l| l.contains("name=mailcanary")
                && l.contains(&format!("version={version}"))),
            "{user}: no ID with mailcanary's name and version: {ids:?}"
        );
    }
    for c in [&c1, &c2] {
        c.assert_not_in(&d.logs(), "the daemon's logs");
        c.assert_not_in(&d.get("/metrics").1, "the metrics");
    }
    assert_no_protocol_trace(&d.logs());
}

#[test]
fn tokens_are_refreshed_before_expiry_and_the_watch_goes_on_after_a_reconnect() {
    let stack = Stack::get();
    let user = "oauth3@seed.test";
    // Twelve-second tokens: refreshed ahead of expiry every ~9.6 s. (Not
    // shorter: Dovecot delays logins from an address with recent failures by
    // up to 15 s, and other tests fail logins from 127.0.0.1 on purpose.)
    let c = Client::register(stack, user, 12);
    let started = std::time::Instant::now();
    let config = stack_config(
        stack,
        &format!(
            "{}[probes.ot]\nsender = \"ok\"\nseeds = [\"ot\"]\nevery = \"3s\"\ntimeout = \"20s\"\ntemplate = {:?}\n",
            c.seed(stack, "ot", user, "xoauth2"),
            template("verification-en"),
        ),
    );
    let d = Daemon::start(&config);
    let refreshes = || {
        d.metric(&series(
            "mailcanary_oauth_refreshes_total",
            &[("seed", "ot")],
        ))
        .unwrap_or(0.0)
    };
    assert!(
        wait_until(WAIT, || inbox_results(&d, "ot", "ot") >= 1.0),
        "no inbox result; logs:\n{}",
        d.logs()
    );
    assert!(
        wait_until(WAIT, || refreshes() >= 2.0),
        "not refreshed ahead of expiry: {} refreshes; logs:\n{}",
        refreshes(),
        d.logs()
    );
    assert_eq!(c.stats(stack, "refused"), 0);

    // After the first token expired: drop the sessions. The watchers log in
    // again with a live token and probes keep arriving.
    std::thread::sleep(Duration::from_secs(13).saturating_sub(started.elapsed()));
    let before = logins(stack, user, "XOAUTH2");
    kick(stack, user);
    assert!(
        wait_until(WAIT, || logins(stack, user, "XOAUTH2") >= before + 2),
        "no new logins after the kick; logs:\n{}",
        d.logs()
    );
    // The tokens presented after the reconnect were live: renewed ahead of
    // expiry, not replaced after a refusal.
    assert_eq!(c.stats(stack, "inactive"), 0, "a dead token was presented");
    let delivered = inbox_results(&d, "ot", "ot");
    assert!(
        wait_until(WAIT, || inbox_results(&d, "ot", "ot") >= delivered + 1.0),
        "no probe arrived after the reconnect; logs:\n{}",
        d.logs()
    );

    c.assert_not_in(&d.logs(), "the daemon's logs");
}

#[test]
fn a_token_the_server_refuses_is_replaced_at_once() {
    let stack = Stack::get();
    let user = "oauth4@seed.test";
    let c = Client::register(stack, user, 3600);
    let config = stack_config(
        stack,
        &format!(
            "{}{}",
            c.seed(stack, "orf", user, "oauthbearer"),
            probe("orfp", "ok", &["orf"], "30s", &template("verification-en")),
        ),
    );
    let d = Daemon::start(&config);
    let up = series("mailcanary_inbox_up", &[("seed", "orf")]);
    let refreshes = series("mailcanary_oauth_refreshes_total", &[("seed", "orf")]);
    assert!(d.wait_metric(&up, 1.0, WAIT), "logs:\n{}", d.logs());
    assert_eq!(d.metric(&refreshes), Some(1.0));
    // Revoked at the provider an hour before its expiry: Dovecot refuses it,
    // the watchers get a new one at once (no backoff) and log in with it.
    c.revoke(stack, "access");
    let before = logins(stack, user, "OAUTHBEARER");
    kick(stack, user);
    assert!(
        wait_until(WAIT, || logins(stack, user, "OAUTHBEARER") >= before + 2),
        "no login after the token was refused; logs:\n{}",
        d.logs()
    );
    assert!(
        c.stats(stack, "inactive") >= 1,
        "dovecot never saw the dead token"
    );
    assert_eq!(
        d.metric(&refreshes),
        Some(2.0),
        "one new token for both watchers"
    );
    assert!(d.wait_metric(&up, 1.0, WAIT));
    let failures = series(
        "mailcanary_oauth_refresh_failures_total",
        &[("seed", "orf"), ("reason", "revoked")],
    );
    assert_eq!(d.metric(&failures), Some(0.0));
    c.assert_not_in(&d.logs(), "the daemon's logs");
}

#[test]
fn a_revoked_refresh_token_is_an_actionable_error_without_a_retry_loop() {
    let stack = Stack::get();
    let user = "oauth5@seed.test";
    let c = Client::register(stack, user, 3600);
    c.revoke(stack, "refresh");
    let config = stack_config(
        stack,
        &format!(
            "{}{}",
            c.seed(stack, "orv", user, "xoauth2"),
            probe("orp", "ok", &["orv"], "30s", &template("verification-en")),
        ),
    );
    let d = Daemon::start(&config);
    let failures = series(
        "mailcanary_oauth_refresh_failures_total",
        &[("seed", "orv"), ("reason", "revoked")],
    );
    assert!(
        d.wait_metric(&failures, 1.0, WAIT),
        "no revoked failure; logs:\n{}",
        d.logs()
    );
    assert!(
        d.wait_log("expired or revoked", WAIT),
        "no actionable error; logs:\n{}",
        d.logs()
    );
    let line = d
        .logs()
        .lines()
        .find(|l| l.contains("expired or revoked"))
        .unwrap()
        .to_string();
    for needle in ["orv", "refresh_token_file", "reload", "ERROR"] {
        assert!(line.contains(needle), "{needle:?} missing in {line}");
    }
    assert_eq!(
        d.metric(&series("mailcanary_inbox_up", &[("seed", "orv")])),
        Some(0.0)
    );
    assert_eq!(
        d.metric(&series(
            "mailcanary_oauth_token_expiry_timestamp_seconds",
            &[("seed", "orv")]
        )),
        Some(0.0)
    );
    // No tight loop: for the next five seconds nobody asks again, and the
    // IMAP server never sees a login attempt without a token.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(c.stats(stack, "refused"), 1, "the endpoint was asked again");
    assert_eq!(d.metric(&failures), Some(1.0));
    let imap: Vec<String> = dovecot_lines(stack, user)
        .into_iter()
        .filter(|l| l.contains("imap"))
        .collect();
    assert!(imap.is_empty(), "IMAP logins without a token: {imap:?}");
    c.assert_not_in(&d.logs(), "the daemon's logs");
}

#[test]
fn a_rotated_refresh_token_is_kept_across_restarts() {
    let stack = Stack::get();
    let user = "oauth1@seed.test";
    let c = Client::register_with(stack, user, 3600, true);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mailcanary.toml");
    let config = stack_config(
        stack,
        &format!(
            "{}{}",
            c.seed(stack, "ork", user, "xoauth2"),
            probe("orkp", "ok", &["ork"], "30s", &template("verification-en")),
        ),
    );
    std::fs::write(
        &path,
        config.replace("{dir}", &dir.path().display().to_string()),
    )
    .unwrap();
    let up = series("mailcanary_inbox_up", &[("seed", "ork")]);
    {
        let d = Daemon::start_at(&path);
        assert!(d.wait_metric(&up, 1.0, WAIT), "logs:\n{}", d.logs());
    }
    let kept = dir.path().join("state/oauth/ork.json");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&kept)
            .expect("kept token file")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(&kept).unwrap();
    assert!(
        !text.contains(&c.refresh_token),
        "the file holds the rotated token, not the configured one"
    );
    // The configured token is gone at the provider: only the kept one works.
    c.revoke(stack, "original");
    let d = Daemon::start_at(&path);
    assert!(
        d.wait_metric(&up, 1.0, WAIT),
        "restart did not use the kept token; logs:\n{}",
        d.logs()
    );
    assert_eq!(
        d.metric(&series(
            "mailcanary_oauth_refresh_failures_total",
            &[("seed", "ork"), ("reason", "revoked")]
        )),
        Some(0.0)
    );
    c.assert_not_in(&d.logs(), "the daemon's logs");
}

#[test]
fn a_reload_keeps_the_token_unless_the_oauth_settings_changed() {
    let stack = Stack::get();
    let user = "oauth4@seed.test";
    let c = Client::register(stack, user, 3600);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mailcanary.toml");
    let write = |every: &str, oauth_extra: &str| {
        let config = stack_config(
            stack,
            &format!(
                "{}{oauth_extra}{}",
                c.seed(stack, "okeep", user, "xoauth2"),
                probe("okp", "ok", &["okeep"], every, &template("verification-en")),
            ),
        )
        .replace("{dir}", &dir.path().display().to_string());
        std::fs::write(&path, config).unwrap();
    };
    let reloads = |d: &Daemon| d.logs().matches("configuration reloaded").count();
    write("30s", "");
    let d = Daemon::start_at(&path);
    let up = series("mailcanary_inbox_up", &[("seed", "okeep")]);
    assert!(d.wait_metric(&up, 1.0, WAIT), "logs:\n{}", d.logs());
    assert_eq!(c.stats(stack, "refreshes"), 1);

    // Another probe interval, the same OAuth settings: no new token.
    write("31s", "");
    d.signal("HUP");
    assert!(wait_until(WAIT, || reloads(&d) >= 1), "logs:\n{}", d.logs());
    assert!(d.wait_metric(&up, 1.0, WAIT), "logs:\n{}", d.logs());
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        c.stats(stack, "refreshes"),
        1,
        "a reload refreshed the token"
    );

    // Changed OAuth settings (a CA file): a new source, one refresh.
    write("31s", &format!("ca_file = \"{}\"\n", stack.var("CA_CERT")));
    d.signal("HUP");
    assert!(wait_until(WAIT, || reloads(&d) >= 2), "logs:\n{}", d.logs());
    assert!(
        wait_until(WAIT, || c.stats(stack, "refreshes") == 2),
        "no refresh after the OAuth settings changed; logs:\n{}",
        d.logs()
    );
    c.assert_not_in(&d.logs(), "the daemon's logs");
}
