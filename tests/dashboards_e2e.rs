//! The dashboards end to end: mailcanary probes the loopback stack every 2 s,
//! the stack's real Prometheus scrapes it and evaluates `dashboards/alerts.yml`
//! (a copy whose `for:` durations are cut to 2 s; thresholds unchanged).
//! Every dashboard query runs against that Prometheus; breaking sender.test's
//! SPF live with knot sends the probes to Junk and fires
//! MailcanarySpamPlacement (and the DMARC, DNS-check and record-change
//! alerts), restoring it resolves the spam alert.
//!
//! It changes the shared stack's DNS, so it has a test binary of its own, and
//! a guard restores the zone, the rules and the targets however it ends.

mod common;
mod dash;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{http_get, stack_config, template, urlencode, wait_until, Daemon, Stack};

const WAIT: Duration = Duration::from_secs(30);

/// `for:` of every alert in the copy Prometheus loads.
const SHORT_FOR: &str = "2s";

/// Rewrite every `for: DURATION` of a rule file to [`SHORT_FOR`].
fn short_for(rules: &str) -> String {
    rules
        .lines()
        .map(|l| match l.trim_start().strip_prefix("for: ") {
            Some(_) => {
                let indent = &l[..l.len() - l.trim_start().len()];
                format!("{indent}for: {SHORT_FOR}")
            }
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn post(stack: &Stack, path: &str) -> u16 {
    let addr = stack.addr("PROMETHEUS");
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    raw.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// GET a Prometheus API path; panics unless the answer is `status: success`.
fn api(stack: &Stack, path: &str) -> serde_json::Value {
    let (status, body) = http_get(stack.addr("PROMETHEUS"), path);
    let v: serde_json::Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("{path}: HTTP {status}, not JSON ({e}): {body}"));
    assert_eq!(v["status"], "success", "{path}: HTTP {status}: {body}");
    v
}

/// Active alerts (pending or firing) named `name` for `probe`, as (state, labels).
fn alerts(stack: &Stack, name: &str, label: (&str, &str)) -> Vec<(String, serde_json::Value)> {
    api(stack, "/api/v1/alerts")["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["labels"]["alertname"] == name && a["labels"][label.0] == label.1)
        .map(|a| {
            (
                a["state"].as_str().unwrap_or("").to_string(),
                a["labels"].clone(),
            )
        })
        .collect()
}

fn firing(stack: &Stack, name: &str, label: (&str, &str)) -> Vec<serde_json::Value> {
    alerts(stack, name, label)
        .into_iter()
        .filter(|(state, _)| state == "firing")
        .map(|(_, labels)| labels)
        .collect()
}

/// Puts back what the test changed in the shared stack, however it ends.
struct Restore<'a> {
    stack: &'a Stack,
    files: Vec<PathBuf>,
    zone_changed: bool,
}

impl Restore<'_> {
    fn restore_zone(&mut self) {
        if self.zone_changed {
            // zone-reload goes back to the zone file, which knotc never writes.
            self.stack.knotc(&["zone-reload", "sender.test"]);
            self.zone_changed = false;
        }
    }
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        if self.zone_changed {
            let _ = Command::new("knotc")
                .args(["-b", "-s", self.stack.var("KNOT_SOCKET")])
                .args(["zone-reload", "sender.test"])
                .status();
        }
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
        let _ = post(self.stack, "/-/reload");
    }
}

/// Titles of the panels that must show data while probes land in the inbox.
const CORE_PANELS: [&str; 24] = [
    "Inbox rate (1h)",
    "Seeds in spam",
    "Inbox watchers up",
    "Oldest last result",
    "DNSBL listings",
    "Placement per seed",
    "Inbox rate per provider (1h)",
    "Results by placement (1h)",
    "Time since last result per seed",
    "Delivery latency per provider (30m)",
    "Last delivery latency per seed",
    "Probes sent",
    "Receiver verdicts (last delivered probe)",
    "Receiver DMARC results",
    "Local DKIM re-verification (delivered copy)",
    "Local DKIM results",
    "DNS check status",
    "DNS findings per domain",
    "SPF DNS lookups",
    "DKIM keys",
    "DMARC policy",
    "Inbox watchers",
    "Scrape and config reload",
    "Version",
];

/// Run every dashboard query with the variables set to `value` (and
/// `$probe` to `probe` when given). Returns the places whose query returned
/// no data; panics on any query error.
fn run_queries(stack: &Stack, value: &str, probe: Option<&str>) -> Vec<String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut empty = Vec::new();
    for q in dash::queries(&dash::dashboard()) {
        let mut promql = q.promql.clone();
        if let Some(p) = probe {
            promql = promql.replace("$probe", p);
        }
        let promql = dash::substitute(&promql, value, "1m");
        let v = if q.place.starts_with("variable ") {
            // Grafana asks for the series of a label_values() selector.
            api(
                stack,
                &format!(
                    "/api/v1/series?match[]={}&start={}&end={now}",
                    urlencode(&promql),
                    now - 300
                ),
            )["data"]
                .clone()
        } else if q.instant {
            api(
                stack,
                &format!("/api/v1/query?query={}", urlencode(&promql)),
            )["data"]["result"]
                .clone()
        } else {
            api(
                stack,
                &format!(
                    "/api/v1/query_range?query={}&start={}&end={now}&step=5",
                    urlencode(&promql),
                    now - 60
                ),
            )["data"]["result"]
                .clone()
        };
        if v.as_array().is_none_or(|a| a.is_empty()) {
            empty.push(q.place.clone());
        }
    }
    empty
}

fn is_core(place: &str) -> bool {
    place.starts_with("variable ")
        || CORE_PANELS
            .iter()
            .any(|t| place.starts_with(&format!("panel {t:?} ")))
}

#[test]
fn alerts_fire_and_resolve_and_dashboard_queries_run_on_the_real_prometheus() {
    let started = Instant::now();
    let stack = Stack::get();
    let probe = format!("e2e-{}", std::process::id());
    // An unsigned sender through the relay inside sender.test's SPF: DMARC
    // passes through SPF alone, so breaking SPF sends the probes to Junk
    // (sender.test publishes p=reject; the stack's rspamd files it as spam).
    let extra = format!(
        r#"
[senders.unsigned]
kind = "smtp"
host = "127.0.0.1"
port = {relay}
tls = "none"
from = "no-reply@sender.test"
timeout = "10s"

[probes.{probe}]
sender = "unsigned"
seeds = ["imap1", "md3"]
every = "2s"
timeout = "10s"
template = {template:?}

[domains."sender.test"]
roles = ["sending"]
selectors = ["{selector}"]
sending_ips = ["{ip}"]
dnsbl_ip_zones = ["bl.seed.test"]
every = "2s"
starttls = false
"#,
        relay = stack.addr("RELAY_OK").port(),
        template = template("verification-en"),
        selector = stack.var("DKIM_SELECTOR"),
        ip = stack.var("SENDER_IP"),
    );
    let d = Daemon::start(&stack_config(stack, &extra));

    // Prometheus scrapes it and evaluates a copy of the shipped rules.
    let targets = PathBuf::from(stack.var("PROM_TARGETS_DIR")).join(format!("{probe}.json"));
    let rules = PathBuf::from(stack.var("PROM_RULES_DIR")).join(format!("{probe}.yml"));
    let mut restore = Restore {
        stack,
        files: vec![targets.clone(), rules.clone()],
        zone_changed: false,
    };
    std::fs::write(
        &targets,
        format!(
            r#"[{{"targets": ["{}"], "labels": {{"test": "{probe}"}}}}]"#,
            d.http
        ),
    )
    .unwrap();
    let shipped = dash::read("alerts.yml");
    let copy = short_for(&shipped);
    assert_ne!(copy, shipped, "the rules have for: durations to shorten");
    std::fs::write(&rules, copy).unwrap();
    assert_eq!(post(stack, "/-/reload"), 200, "Prometheus reload");
    let groups = api(stack, "/api/v1/rules")["data"]["groups"].clone();
    let loaded = groups
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["file"].as_str() == rules.to_str())
        .count();
    assert_eq!(
        loaded,
        dash::rules().groups.len(),
        "Prometheus loaded every group: {groups}"
    );

    // Probes land in the inbox, as Prometheus sees them through the recording rule.
    let inbox = format!("probe_seed:mailcanary_probe_placement:code{{probe=\"{probe}\"}} == 1");
    let both_inbox = || common::prom_query(stack, &inbox).len() == 2;
    assert!(
        wait_until(WAIT, both_inbox),
        "Prometheus never saw both seeds in the inbox ({:?}); daemon logs:\n{}",
        started.elapsed(),
        d.logs()
    );

    // Every dashboard query runs without error; the core panels show data
    // (the histogram rates need a few scrapes, so allow some time).
    let mut missing = Vec::new();
    let shown = wait_until(WAIT, || {
        run_queries(stack, ".*", None);
        run_queries(stack, ".+", None);
        missing = run_queries(stack, ".*", Some(&probe))
            .into_iter()
            .filter(|p| is_core(p))
            .collect();
        missing.is_empty()
    });
    assert!(shown, "core panels without data: {missing:?}");
    let quiet: Vec<String> = run_queries(stack, ".*", Some(&probe))
        .into_iter()
        .filter(|p| !is_core(p))
        .collect();
    eprintln!("panels without data while all is well (expected): {quiet:?}");
    assert!(
        firing(stack, "MailcanarySpamPlacement", ("probe", &probe)).is_empty(),
        "spam alert while probes land in the inbox"
    );

    // Break SPF: sender.test no longer permits the relay's address.
    restore.zone_changed = true;
    stack.knotc(&["zone-begin", "sender.test"]);
    stack.knotc(&["zone-unset", "sender.test", "@", "TXT"]);
    stack.knotc(&[
        "zone-set",
        "sender.test",
        "@",
        "5",
        "TXT",
        "\"v=spf1 ip4:127.0.0.9 -all\"",
    ]);
    stack.knotc(&["zone-commit", "sender.test"]);
    let broke = Instant::now();
    let mut seen = Vec::new();
    let fired = wait_until(WAIT, || {
        seen = firing(stack, "MailcanarySpamPlacement", ("probe", &probe));
        seen.len() == 2
    });
    assert!(
        fired,
        "MailcanarySpamPlacement did not fire for both seeds: {seen:?}; daemon logs:\n{}",
        d.logs()
    );
    let fired_after = broke.elapsed();
    for a in &seen {
        assert_eq!(a["severity"], "critical");
        assert_eq!(a["placement"], "spam");
    }
    // The same change fires the receiver's DMARC alert and the DNS audit's.
    assert!(
        wait_until(WAIT, || !firing(
            stack,
            "MailcanaryDmarcNotPassing",
            ("probe", &probe)
        )
        .is_empty()),
        "MailcanaryDmarcNotPassing did not fire"
    );
    assert!(
        wait_until(WAIT, || firing(
            stack,
            "MailcanaryDnsCheckError",
            ("test", &probe)
        )
        .iter()
        .any(|a| a["domain"] == "sender.test" && a["check"] == "spf")),
        "MailcanaryDnsCheckError did not fire for sender.test's SPF"
    );

    // The record's first change since the daemon started creates its
    // counter at 1: the rule still sees it.
    assert!(
        wait_until(WAIT, || firing(
            stack,
            "MailcanaryDnsRecordChanged",
            ("test", &probe)
        )
        .iter()
        .any(|a| a["domain"] == "sender.test" && a["record"] == "spf")),
        "MailcanaryDnsRecordChanged did not fire for the first change"
    );

    // Restore the record: the next probes land in the inbox, the alert resolves.
    restore.restore_zone();
    let resolved = wait_until(WAIT, || {
        alerts(stack, "MailcanarySpamPlacement", ("probe", &probe)).is_empty()
    });
    assert!(
        resolved,
        "MailcanarySpamPlacement still active: {:?}",
        alerts(stack, "MailcanarySpamPlacement", ("probe", &probe))
    );
    eprintln!(
        "spam alert fired {fired_after:?} after the SPF change; test took {:?}",
        started.elapsed()
    );
}
