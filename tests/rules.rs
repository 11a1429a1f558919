//! The shipped alert rules pass `promtool check rules` and their unit tests.

use std::process::Command;

#[test]
fn alert_rules_pass_promtool() {
    let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards/alerts.yml");
    let out = Command::new("promtool")
        .args(["check", "rules", rules])
        .output()
        .expect("promtool (Debian package prometheus; scripts/deps.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("SUCCESS: 23 rules found"), "{text}");
}

#[test]
fn alert_rules_pass_their_unit_tests() {
    let tests = concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards/alerts_test.yml");
    let out = Command::new("promtool")
        .args(["test", "rules", tests])
        .output()
        .expect("promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
}
