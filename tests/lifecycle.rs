//! Daemon lifecycle against the real binary: signals, reload, HTTP endpoints, CLI exit codes.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{bin, Daemon};

const MINIMAL: &str = r#"
[daemon]
state_dir = "{dir}/state"
shutdown_grace = "3s"

[http]
listen = "127.0.0.1:0"
"#;

#[test]
fn sigterm_stops_the_daemon_with_exit_0_within_5s() {
    let mut d = Daemon::start(MINIMAL);
    assert_eq!(d.get("/-/ready").0, 200);
    let t0 = Instant::now();
    d.signal("TERM");
    let status = d
        .wait_exit(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("still running after 5 s; logs:\n{}", d.logs()));
    assert!(
        status.success(),
        "exit status {status:?}; logs:\n{}",
        d.logs()
    );
    assert!(d.logs().contains("stopped"), "logs:\n{}", d.logs());
    eprintln!("SIGTERM to exit: {:?}", t0.elapsed());
}

#[test]
fn sigint_stops_the_daemon_too() {
    let mut d = Daemon::start(MINIMAL);
    d.signal("INT");
    let status = d.wait_exit(Duration::from_secs(5)).expect("exits");
    assert!(status.success(), "{status:?}");
}

#[test]
fn sighup_with_a_broken_config_keeps_the_old_one_serving() {
    let d = Daemon::start(MINIMAL);
    assert_eq!(
        d.metric("mailcanary_config_last_reload_successful"),
        Some(1.0)
    );
    let good = std::fs::read_to_string(&d.config).unwrap();

    let template = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/probes/templates/verification-en.toml"
    );
    std::fs::write(
        &d.config,
        format!("{good}\n[probes.x]\nsender = \"nobody\"\nseeds = []\nevery = \"1m\"\ntemplate = {template:?}\n"),
    )
    .unwrap();
    d.signal("HUP");
    assert!(
        common::wait_until(Duration::from_secs(5), || d
            .metric("mailcanary_config_last_reload_successful")
            == Some(0.0)),
        "reload gauge did not drop to 0; logs:\n{}",
        d.logs()
    );
    // The old config keeps serving and the reason is logged with file:line:col.
    assert_eq!(d.get("/-/ready").0, 200);
    assert!(d
        .metric(&format!(
            "mailcanary_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        ))
        .is_some());
    let logs = d.logs();
    assert!(logs.contains("configuration reload failed"), "{logs}");
    assert!(
        logs.contains("mailcanary.toml:10:10: key `probes.x.sender`: unknown sender"),
        "{logs}"
    );

    // A fixed config reloads and the gauge returns to 1.
    std::fs::write(&d.config, &good).unwrap();
    d.signal("HUP");
    assert!(
        common::wait_until(Duration::from_secs(5), || d
            .metric("mailcanary_config_last_reload_successful")
            == Some(1.0)),
        "reload gauge did not return to 1; logs:\n{}",
        d.logs()
    );
}

#[test]
fn http_endpoints() {
    let d = Daemon::start(MINIMAL);
    let (status, body) = d.get("/metrics");
    assert_eq!(status, 200);
    assert!(
        body.contains("# TYPE mailcanary_build_info gauge"),
        "{body}"
    );
    assert!(
        body.contains("mailcanary_config_last_reload_success_timestamp_seconds"),
        "{body}"
    );
    assert_eq!(d.get("/-/healthy").0, 200);
    assert_eq!(d.get("/-/ready").0, 200);
    assert_eq!(d.get("/nope").0, 404);
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    let text = MINIMAL
        .replace("{dir}", &dir.path().display().to_string())
        .replace("127.0.0.1:0", &taken.local_addr().unwrap().to_string());
    std::fs::write(&cfg, text).unwrap();
    let out = Command::new(bin())
        .args(["run", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot listen on"), "{err}");
}

#[test]
fn config_check_exit_codes() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/config");
    let ok = Command::new(bin())
        .args(["config", "check", &format!("{fixtures}/good/base.toml")])
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("OK (1 senders, 1 seeds, 1 probes)"));

    let bad = Command::new(bin())
        .args([
            "config",
            "check",
            &format!("{fixtures}/bad/unknown_seed.toml"),
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("unknown_seed.toml:21:19: key `probes.signup.seeds`: unknown seed \"seed9\""),
        "{err}"
    );

    let usage = Command::new(bin())
        .args(["config", "check"])
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2), "usage error");

    let version = Command::new(bin()).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("mailcanary {}", env!("CARGO_PKG_VERSION"))
    );
}
