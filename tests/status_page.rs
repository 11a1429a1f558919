//! The support view end to end: a daemon on the real stack sends probes that
//! land in the inbox, in spam, go missing and fail to send; then Debian's
//! `chromium`, driven through `chromedriver` (WebDriver, fantoccini), reads
//! `/status`, uses the lookup form for a consumer domain and for a company
//! domain resolved by its MX on the stack's knot, reads the Chinese page,
//! and writes screenshots under the target directory. The JSON API's shape
//! and the CLI are checked on the same store, and no address, token or
//! queue id from the store appears in any of them.

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{http_get, stack_config, template, wait_until, Daemon, Stack};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(90);

/// The stack config with seeds relabelled as the providers the view shows:
/// md3 is a QQ mailbox, md4 a Google Workspace one, void is discarded, and
/// imaps2 an Outlook.com mailbox whose IMAP login fails (wrong password),
/// so its watcher is down.
fn config(stack: &Stack, spammy: &Path) -> String {
    let probe = |name: &str, sender: &str, seed: &str, timeout: &str, tpl: &str| {
        format!(
            "[probes.{name}]\nsender = {sender:?}\nseeds = [{seed:?}]\nevery = \"1h\"\ntimeout = {timeout:?}\ntemplate = {tpl:?}\n"
        )
    };
    let en = template("verification-en");
    let probes = [
        probe("qq_inbox", "ok", "md3", "60s", &en),
        probe("qq_spam", "ok", "md3", "60s", &spammy.display().to_string()),
        probe("gw_inbox", "ok", "md4", "60s", &en),
        probe("lost", "ok", "void", "4s", &en),
        probe("refused", "closed", "imap1", "60s", &en),
        probe("blind", "ok", "imaps2", "4s", &en),
    ]
    .join("\n")
        + "\n[domains.\"sender.test\"]\nselectors = [\"sel\"]\n";
    stack_config(stack, &probes)
        .replace(
            "[seeds.md3]\nprovider = \"maildir\"",
            "[seeds.md3]\nprovider = \"qq\"",
        )
        .replace(
            "[seeds.md4]\nprovider = \"maildir\"",
            "[seeds.md4]\nprovider = \"google_workspace\"",
        )
        .replace(
            "[seeds.imaps2]\nprovider = \"imap-tls\"",
            "[seeds.imaps2]\nprovider = \"outlook\"",
        )
        .replace(
            &format!(
                "username = \"seed2@seed.test\"\npassword_file = \"{}\"",
                stack.dir.join("seed-password").display()
            ),
            &format!(
                "username = \"seed2@seed.test\"\npassword_file = \"{}\"",
                stack.dir.join("wrong-password").display()
            ),
        )
}

fn state_dir(d: &Daemon) -> PathBuf {
    d.config.parent().unwrap().join("state")
}

fn store(d: &Daemon) -> rusqlite::Connection {
    rusqlite::Connection::open(state_dir(d).join("mailcanary.sqlite3")).unwrap()
}

/// Every value in the store and config that must never be shown.
fn secrets(d: &Daemon, stack: &Stack) -> Vec<String> {
    let c = store(d);
    let mut st = c
        .prepare("SELECT token, coalesce(queue_id, '') FROM probe_run")
        .unwrap();
    let mut out: Vec<String> = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .flat_map(|(t, q)| [t, q])
        .filter(|s| s.len() >= 6)
        .collect();
    out.extend(
        [
            "seed1@seed.test",
            "seed3@seed.test",
            "seed4@seed.test",
            "no-reply@sender.test",
            "support@sender.test",
            stack.var("VOID_USER"),
            "secret.person",
        ]
        .map(str::to_string),
    );
    out
}

fn assert_nothing_secret(what: &str, text: &str, secrets: &[String]) {
    for s in secrets {
        assert!(!text.contains(s.as_str()), "{what} shows {s:?}");
    }
    let address = regex::Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.[A-Za-z0-9.-]+").unwrap();
    assert!(
        address.find(text).is_none(),
        "{what} shows an address: {:?}",
        address.find(text).map(|m| m.as_str())
    );
}

/// `chromedriver` on a free loopback port, killed by PID on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (apt-get install chromium-driver; scripts/deps.sh)");
        let d = Driver { child, port };
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        assert!(
            wait_until(Duration::from_secs(20), || TcpStream::connect(addr).is_ok()),
            "chromedriver did not listen on {addr}"
        );
        d
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver) -> Client {
    let caps = serde_json::json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1600", "--lang=en-US"]
        }
    });
    let Value::Object(caps) = caps else {
        unreachable!()
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a chromium session")
}

/// The target directory: `CARGO_TARGET_DIR` or the one this test binary is in.
fn target_dir() -> PathBuf {
    if let Ok(d) = std::env::var("CARGO_TARGET_DIR") {
        return PathBuf::from(d);
    }
    // <target>/debug/deps/status_page-HASH
    std::env::current_exe()
        .unwrap()
        .ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
}

async fn attr(c: &Client, css: &str, name: &str) -> Option<String> {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .attr(name)
        .await
        .unwrap()
}

async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

/// Type `domain` into the form (the time left empty: now) and submit.
async fn look_up(c: &Client, domain: &str) {
    let field = c.find(Locator::Id("domain")).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(domain).await.unwrap();
    c.find(Locator::Id("lookup-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Id("lookup-answer"))
        .await
        .unwrap_or_else(|e| panic!("no answer for {domain}: {e}"));
}

#[test]
fn the_support_view_in_a_real_browser() {
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
    let cfg = config(stack, &spammy);
    let imaps2 = cfg.split("[seeds.imaps2]").nth(1).unwrap();
    let imaps2 = imaps2.split("\n[").next().unwrap();
    assert!(
        imaps2.contains("wrong-password") && imaps2.contains("\"outlook\""),
        "the imaps2 seed is an Outlook.com one with the wrong password:\n{imaps2}"
    );
    let d = Daemon::start(&cfg);
    // Every run final (the missing ones after their 4 s timeout), the
    // audit recorded, and the locked-out seed's watcher recorded down.
    assert!(
        wait_until(WAIT, || {
            let c = store(&d);
            let done: i64 = c
                .query_row(
                    "SELECT count(*) FROM probe_run WHERE state = 'final'",
                    [],
                    |r| r.get(0),
                )
                .unwrap();
            let audited: i64 = c
                .query_row("SELECT count(*) FROM dns_audit", [], |r| r.get(0))
                .unwrap_or(0);
            let down: i64 = c
                .query_row(
                    "SELECT count(*) FROM inbox_state WHERE seed = 'imaps2' AND up = 0",
                    [],
                    |r| r.get(0),
                )
                .unwrap_or(0);
            done == 6 && audited == 1 && down == 1
        }),
        "runs not final; logs:\n{}",
        d.logs()
    );
    let outcomes: Vec<String> = {
        let c = store(&d);
        let mut st = c
            .prepare("SELECT probe || '=' || outcome FROM probe_run ORDER BY probe")
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(
        outcomes,
        [
            "blind=missing",
            "gw_inbox=inbox",
            "lost=missing",
            "qq_inbox=inbox",
            "qq_spam=spam",
            "refused=send_failed"
        ],
        "the stack gave other outcomes than the test needs"
    );
    let secrets = secrets(&d, stack);
    // (On a fresh stack the Maildir seeds' watchers, md4's and void's, are
    // recorded down until their folder appears, then up before the runs'
    // deadlines: their runs count; void's missing one fails its provider.)

    // The JSON API.
    let (code, body) = http_get(d.http, "/api/v1/status?domain=corp.test");
    assert_eq!(code, 200, "{body}");
    assert_nothing_secret("the API", &body, &secrets);
    let api: Value = serde_json::from_str(&body).unwrap();
    let providers = api["providers"].as_array().unwrap();
    let row = |name: &str| {
        providers
            .iter()
            .find(|p| p["provider"] == name)
            .unwrap_or_else(|| panic!("no provider {name} in {body}"))
    };
    assert_eq!(row("qq")["state"], "failing");
    assert_eq!(row("qq")["reason"]["outcome"], "spam");
    assert_eq!(row("qq")["counts"]["inbox"], 1);
    assert_eq!(row("qq")["counts"]["spam"], 1);
    assert_eq!(row("google_workspace")["state"], "ok");
    assert!(
        row("google_workspace")["latency_p50_seconds"]
            .as_f64()
            .unwrap()
            >= 0.0
    );
    assert_eq!(row("void")["state"], "failing");
    assert_eq!(row("void")["reason"]["outcome"], "missing");
    assert_eq!(row("imap-plain")["reason"]["outcome"], "send_failed");
    // The seed whose mailbox could not be watched: its run went missing,
    // which says nothing, so its provider is unknown, and says why.
    let outlook = row("outlook");
    assert_eq!(outlook["state"], "unknown", "{outlook}");
    assert_eq!(outlook["unknown_reason"]["id"], "seed_unwatched");
    assert_eq!(
        outlook["unknown_reason"]["text"],
        "the seed mailbox could not be watched"
    );
    assert_eq!(outlook["runs"], 0);
    assert_eq!(outlook["unwatched"], 1);
    assert_eq!(outlook["counts"]["missing"], 0);
    assert!(outlook["reason"].is_null() && outlook["last_result_at"].is_null());
    assert!(
        outlook["advice"]
            .as_str()
            .unwrap()
            .contains("the seed mailbox could not be watched"),
        "{outlook}"
    );
    // A watched seed's missing run still fails its provider.
    assert!(row("void")["unknown_reason"].is_null());
    assert_eq!(row("void")["unwatched"], 0);
    for p in providers {
        for key in [
            "display_name",
            "state_text",
            "advice",
            "last_result_at",
            "since",
            "unknown_reason",
            "unwatched",
        ] {
            assert!(p.get(key).is_some(), "{key} missing in {p}");
        }
        // Every outcome is listed, counted or not.
        assert_eq!(
            p["counts"].as_object().unwrap().len(),
            mailcanary::probe::Outcome::ALL.len(),
            "{p}"
        );
    }
    let senders: Vec<(&str, &str)> = api["senders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["sender"].as_str().unwrap(), s["state"].as_str().unwrap()))
        .collect();
    assert_eq!(senders, [("closed", "failing"), ("ok", "failing")]);
    assert_eq!(api["senders"][1]["unwatched"], 1, "ok's run to imaps2");
    assert_eq!(api["senders"][1]["runs"], 4);
    assert_eq!(api["domains"][0]["domain"], "sender.test");
    assert!(api["domains"][0]["checked_at"].is_string());
    assert!(api["timeline"].as_array().unwrap().len() >= 4);
    assert_eq!(api["lookup"]["provider"], "google_workspace");
    assert_eq!(api["lookup"]["via"], "mx");
    assert_eq!(api["lookup"]["probed"], true);
    assert_eq!(api["lookup"]["state"], "ok");
    assert!(api["ask_for"].as_array().unwrap().len() >= 4);
    assert!(api["never_ask_for"].as_array().unwrap().len() >= 4);
    let (code, body) = http_get(d.http, "/api/v1/status?domain=not%20a%20domain");
    assert_eq!(code, 400);
    assert!(body.contains("not a mail domain"), "{body}");

    // The CLI, from the store alone.
    let cli = |args: &[&str]| {
        let out = Command::new(common::bin())
            .args(["status", "--config"])
            .arg(&d.config)
            .args(args)
            .env("LANG", "C.UTF-8")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let json = cli(&["--domain", "secret.person@foxmail.com", "--format", "json"]);
    assert_nothing_secret("the CLI's JSON", &json, &secrets);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["lookup"]["provider"], "qq");
    assert_eq!(v["lookup"]["domain"], "foxmail.com");
    let txt = cli(&["--domain", "foxmail.com", "--at", "now"]);
    assert_nothing_secret("the CLI's text", &txt, &secrets);
    assert!(
        txt.contains("QQ Mail") && txt.contains("spam folder"),
        "{txt}"
    );
    assert!(
        txt.contains("Outlook.com") && txt.contains("the seed mailbox could not be watched"),
        "{txt}"
    );
    // The lookup of an unwatched provider says why it knows nothing.
    let v: Value =
        serde_json::from_str(&cli(&["--domain", "hotmail.com", "--format", "json"])).unwrap();
    assert_eq!(v["lookup"]["provider"], "outlook");
    assert_eq!(v["lookup"]["state"], "unknown");
    assert!(
        v["lookup"]["answer"]
            .as_str()
            .unwrap()
            .contains("the seed mailbox could not be watched"),
        "{v}"
    );

    // The page, in chromium.
    let driver = Driver::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let base = format!("http://{}", d.http);
    let shots = target_dir();
    rt.block_on(async {
        let c = browser(&driver).await;
        c.goto(&format!("{base}/status?lang=en")).await.unwrap();
        assert_eq!(
            attr(&c, "tr[data-provider=qq]", "data-state")
                .await
                .as_deref(),
            Some("failing")
        );
        assert_eq!(
            attr(&c, "tr[data-provider=google_workspace]", "data-state")
                .await
                .as_deref(),
            Some("ok")
        );
        assert_eq!(
            attr(&c, "tr[data-provider=void]", "data-state")
                .await
                .as_deref(),
            Some("failing")
        );
        let qq = text(&c, "tr[data-provider=qq]").await;
        assert!(qq.contains("Failing") && qq.contains("spam folder"), "{qq}");
        assert_eq!(
            attr(&c, "#providers tr[data-provider=outlook]", "data-state")
                .await
                .as_deref(),
            Some("unknown")
        );
        let outlook = text(&c, "#providers tr[data-provider=outlook]").await;
        assert!(
            outlook.contains("the seed mailbox could not be watched")
                && outlook.contains("not counted 1"),
            "{outlook}"
        );
        assert!(text(&c, "#timeline tr[data-provider=qq]")
            .await
            .contains("failing"));
        assert!(text(&c, "#domains").await.contains("sender.test"));
        assert!(text(&c, "#never").await.contains("password"));

        // A consumer domain from the table.
        look_up(&c, "foxmail.com").await;
        assert_eq!(text(&c, "#lookup-provider").await, "QQ Mail");
        let answer = text(&c, "#lookup-answer").await;
        assert!(
            answer.contains("Codes to QQ Mail were landing in the spam folder (Spam)")
                && answer.contains("only the newest code works"),
            "{answer}"
        );
        c.set_window_size(1280, 1800).await.unwrap();
        std::fs::write(shots.join("status-page.png"), c.screenshot().await.unwrap()).unwrap();

        // A company domain, by its MX on the stack's knot.
        look_up(&c, "corp.test").await;
        assert_eq!(text(&c, "#lookup-provider").await, "Google Workspace");
        assert!(text(&c, "#lookup-answer")
            .await
            .contains("arriving in the inbox"));

        // An address typed in full: only its domain is used or shown.
        look_up(&c, "secret.person@foxmail.com").await;
        let source = c.source().await.unwrap();
        assert_nothing_secret("the page", &source, &secrets);

        // The Chinese page, by Accept-Language's stand-in ?lang= and the form.
        c.goto(&format!("{base}/status?lang=zh&domain=foxmail.com"))
            .await
            .unwrap();
        assert_eq!(text(&c, "h1").await, "验证码邮件送达状态");
        let answer = text(&c, "#lookup-answer").await;
        assert!(
            answer.contains("QQ邮箱") && answer.contains("垃圾箱"),
            "{answer}"
        );
        // The timeline's states are words of the page's language.
        let qq_line = text(&c, "#timeline tr[data-provider=qq]").await;
        assert!(qq_line.contains("故障"), "{qq_line}");
        assert!(!qq_line.contains("failing"), "{qq_line}");
        let outlook = text(&c, "#providers tr[data-provider=outlook]").await;
        assert!(outlook.contains("探测邮箱无法监控"), "{outlook}");
        // No English on the page but names: providers, senders, domains,
        // the product, upper-case abbreviations (DNS, SPF, UTC) and the
        // link to the English page.
        let body = text(&c, "body").await;
        let mut names: Vec<String> = ["mailcanary", "English", "check"]
            .map(str::to_string)
            .to_vec();
        for p in api["providers"].as_array().unwrap() {
            names.push(p["provider"].as_str().unwrap().to_string());
            names.push(p["display_name"].as_str().unwrap().to_string());
        }
        for s in api["senders"].as_array().unwrap() {
            names.push(s["sender"].as_str().unwrap().to_string());
        }
        names.extend(["sender.test", "foxmail.com", "qq.com"].map(str::to_string));
        let word = regex::Regex::new(r"[A-Za-z][A-Za-z._-]*[A-Za-z]").unwrap();
        let english: Vec<&str> = word
            .find_iter(&body)
            .map(|m| m.as_str())
            .filter(|w| !w.chars().all(|c| !c.is_ascii_lowercase()))
            .filter(|w| {
                !names
                    .iter()
                    .any(|n| n.split([' ', '.']).any(|part| part == *w) || n == w)
            })
            .collect();
        assert!(
            english.is_empty(),
            "English on the Chinese page: {english:?}\n{body}"
        );
        std::fs::write(
            shots.join("status-page-zh.png"),
            c.screenshot().await.unwrap(),
        )
        .unwrap();

        // A phone-sized window still shows the states as words.
        c.set_window_size(390, 844).await.unwrap();
        c.goto(&format!("{base}/status?lang=en")).await.unwrap();
        assert!(text(&c, "tr[data-provider=qq]").await.contains("Failing"));
        std::fs::write(
            shots.join("status-page-phone.png"),
            c.screenshot().await.unwrap(),
        )
        .unwrap();
        c.close().await.unwrap();
    });
    for shot in [
        "status-page.png",
        "status-page-zh.png",
        "status-page-phone.png",
    ] {
        let png = std::fs::read(shots.join(shot)).unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{shot}");
    }
    eprintln!("screenshots: {}/status-page*.png", shots.display());
}
