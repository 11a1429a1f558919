//! `mailcanary reports parse`: the JSON for every fixture in
//! tests/fixtures/reports matches expected.json (written by make.py from the
//! records it put in each fixture, not from this parser), and the exit codes.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reports")
}

fn expected() -> Vec<Value> {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap();
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn parse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mailcanary"))
        .current_dir(fixtures())
        .arg("reports")
        .arg("parse")
        .args(args)
        .output()
        .unwrap()
}

fn file_of(v: &Value) -> &str {
    v["file"].as_str().unwrap()
}

#[test]
fn json_matches_for_every_fixture() {
    let expected = expected();
    assert!(expected.len() >= 20, "fixtures missing: {}", expected.len());
    let mut args = vec!["--format", "json"];
    args.extend(expected.iter().map(file_of));
    let out = parse(&args);
    assert_eq!(out.status.code(), Some(1), "invalid fixtures make exit 1");
    let actual: Value = serde_json::from_slice(&out.stdout).unwrap();
    let actual = actual.as_array().unwrap();
    assert_eq!(actual.len(), expected.len());
    for (want, got) in expected.iter().zip(actual) {
        let name = file_of(want);
        if want["kind"] == "invalid" && want["error"].is_null() {
            // Malformed input: the message names a position; only its kind is fixed.
            assert_eq!(got["kind"], "invalid", "{name}: {got}");
            assert_eq!(got["file"], name);
            assert!(!got["error"].as_str().unwrap().is_empty(), "{name}");
            assert_eq!(got.as_object().unwrap().len(), 3, "{name}: {got}");
        } else {
            assert_eq!(got, want, "{name}");
        }
    }
}

#[test]
fn json_keys_are_in_the_documented_order() {
    let out = parse(&[
        "--format",
        "json",
        "rfc7489.xml",
        "tlsrpt-rfc8460.json",
        "malformed.xml",
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    let pos = |k: &str| {
        text.find(&format!("\"{k}\""))
            .unwrap_or_else(|| panic!("{k}"))
    };
    let order = [
        "file",
        "kind",
        "org_name",
        "report_id",
        "policy_domain",
        "begin",
        "end",
        "records",
        "messages",
        "dmarc_pass",
        "dmarc_fail",
        "policies",
        "policy_type",
    ];
    for w in order.windows(2) {
        assert!(pos(w[0]) < pos(w[1]), "{} before {}", w[0], w[1]);
    }
}

#[test]
fn only_reports_exit_zero() {
    let valid: Vec<Value> = expected()
        .into_iter()
        .filter(|v| v["kind"] != "invalid")
        .collect();
    assert!(valid.len() >= 14);
    let mut args = vec!["--format", "json"];
    args.extend(valid.iter().map(file_of));
    let out = parse(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_missing_file_is_invalid_and_the_rest_is_still_read() {
    let out = parse(&["--format", "json", "no-such-file.xml", "rfc7489.xml"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["kind"], "invalid");
    assert!(v[0]["error"].as_str().unwrap().starts_with("cannot read"));
    assert_eq!(v[1]["kind"], "dmarc_aggregate");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(parse(&[]).status.code(), Some(2));
    assert_eq!(
        parse(&["--format", "yaml", "rfc7489.xml"]).status.code(),
        Some(2)
    );
}

#[test]
fn text_format_has_a_line_per_file_and_per_policy() {
    let out = parse(&["google.zip", "tlsrpt-microsoft.json.gz", "zip-bomb.zip"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(
        lines[0].starts_with("google.zip: DMARC aggregate from google.com"),
        "{text}"
    );
    assert!(
        lines[0].contains("1638 messages, 1623 pass, 15 fail"),
        "{text}"
    );
    assert!(lines[2].contains("sts example.com: 930 successful, 14 failed, certificate-expired 13, sts-policy-fetch-error 1"), "{text}");
    assert!(
        lines[4].starts_with("zip-bomb.zip: invalid: decompresses to more than"),
        "{text}"
    );
}
