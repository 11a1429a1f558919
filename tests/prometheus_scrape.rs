//! End to end: the real Prometheus of the loopback stack scrapes a real
//! mailcanary daemon and its HTTP API reports the daemon's series.

mod common;

use std::time::Duration;

use common::{prom_query, wait_until, Daemon, Stack};

#[test]
fn prometheus_scrapes_the_daemon() {
    let stack = Stack::get();
    let d = Daemon::start(
        r#"
[daemon]
state_dir = "{dir}/state"
[http]
listen = "127.0.0.1:0"
"#,
    );
    // Register the daemon as a file_sd target with a label unique to this test.
    let instance = format!("scrape-test-{}", d.pid());
    let _target = common::PromTarget::register(stack, "PROM_TARGETS_DIR", &instance, d.http);

    let up = format!("up{{test=\"{instance}\"}}");
    let scraped = wait_until(Duration::from_secs(60), || {
        prom_query(stack, &up)
            .first()
            .is_some_and(|s| s["value"][1] == "1")
    });
    assert!(scraped, "Prometheus never reported {up} == 1");

    let build = prom_query(
        stack,
        &format!("mailcanary_build_info{{test=\"{instance}\"}}"),
    );
    assert_eq!(build.len(), 1, "{build:?}");
    assert_eq!(build[0]["metric"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(build[0]["value"][1], "1");
}

/// The stack's Prometheus scrapes over TLS with basic auth (job
/// `mailcanary-tls`: https, the stack CA, user `prometheus` with the
/// password in PROM_SCRAPE_PASSWORD_FILE). A wrong hash in the web config
/// shows as a 401 scrape error; the right one, after a reload, as `up` 1.
#[test]
fn prometheus_scrapes_over_tls_with_basic_auth() {
    let stack = Stack::get();
    let password = std::fs::read_to_string(stack.var("PROM_SCRAPE_PASSWORD_FILE")).unwrap();
    let password = password.trim();
    let user = stack.var("PROM_SCRAPE_USER");
    let web = |pw: &str| {
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\nbasic_auth_users:\n  {user}: {}\n",
            stack.var("TLS_CERT"),
            stack.var("TLS_KEY"),
            bcrypt::hash(pw, 5).unwrap()
        )
    };
    let d = Daemon::start_custom(
        r#"
[daemon]
state_dir = "{dir}/state"
[http]
listen = "127.0.0.1:0"
web_config_file = "web.yml"
"#,
        |path| {
            let wrong = web("not-the-scrape-password");
            std::fs::write(path.parent().unwrap().join("web.yml"), wrong).unwrap();
            common::command(path)
        },
    );
    let instance = format!("tls-scrape-test-{}", d.pid());
    let _target = common::PromTarget::register(stack, "PROM_TLS_TARGETS_DIR", &instance, d.http);

    // Wrong credentials: Prometheus reaches the daemon over TLS and is refused.
    let last_error = || -> Option<String> {
        let (_, body) = common::http_get(stack.addr("PROMETHEUS"), "/api/v1/targets");
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["data"]["activeTargets"]
            .as_array()?
            .iter()
            .find(|t| t["labels"]["test"] == instance.as_str())
            .and_then(|t| {
                (t["health"] != "unknown").then(|| t["lastError"].as_str().map(str::to_string))?
            })
    };
    let mut seen = None;
    assert!(
        wait_until(Duration::from_secs(60), || {
            seen = last_error();
            seen.as_deref().is_some_and(|e| e.contains("401"))
        }),
        "expected a 401 scrape error, last seen: {seen:?}"
    );

    // The right password, by reload: the scrape succeeds.
    std::fs::write(d.config.parent().unwrap().join("web.yml"), web(password)).unwrap();
    d.signal("HUP");
    let up = format!("up{{test=\"{instance}\"}}");
    assert!(
        wait_until(Duration::from_secs(60), || {
            prom_query(stack, &up)
                .first()
                .is_some_and(|s| s["value"][1] == "1")
        }),
        "Prometheus never reported {up} == 1; last error {:?}; logs:\n{}",
        last_error(),
        d.logs()
    );
    let build = prom_query(
        stack,
        &format!("mailcanary_build_info{{test=\"{instance}\"}}"),
    );
    assert_eq!(build.len(), 1, "{build:?}");
    assert_eq!(build[0]["metric"]["job"], "mailcanary-tls");
}
