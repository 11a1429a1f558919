//! The dashboards travel together (STYLE.md item 13): the alert rules pass
//! promtool's check and its unit tests, every alert has its annotations and a
//! runbook entry, the unit tests show every alert firing and not firing, and
//! the Grafana dashboard is valid JSON whose queries parse and read only
//! series mailcanary exports or the rules record. No stack needed; the
//! end-to-end run against the real Prometheus is `tests/dashboards_e2e.rs`.

mod dash;

use std::collections::BTreeSet;

use mailcanary::metrics::{Kind, ALL};

const RUNBOOK_BASE: &str =
    "https://github.com/mailcanary/mailcanary/blob/main/dashboards/runbook.md#";

#[test]
fn promtool_check_rules_is_clean() {
    let rules = dash::path("alerts.yml");
    let (ok, text) = dash::promtool(&["check", "rules", rules.to_str().unwrap()]);
    assert!(ok, "{text}");
    let n = {
        let f = dash::rules();
        f.alerts().len() + f.records().len()
    };
    assert!(
        text.contains(&format!("SUCCESS: {n} rules found")),
        "expected {n} rules: {text}"
    );
    assert!(!text.contains("WARNING"), "{text}");
}

#[test]
fn promtool_unit_tests_pass() {
    for file in dash::UNIT_TEST_FILES {
        let tests = dash::path(file);
        let (ok, text) = dash::promtool(&["test", "rules", tests.to_str().unwrap()]);
        assert!(ok, "{file}: {text}");
        assert!(text.contains("SUCCESS"), "{file}: {text}");
    }
}

#[test]
fn the_unit_tests_load_the_shipped_rules() {
    assert_eq!(dash::unit_tests().rule_files, ["alerts.yml"]);
}

#[test]
fn every_alert_is_tested_firing_and_not_firing() {
    let tests = dash::unit_tests();
    let cases: Vec<&dash::AlertCase> = tests
        .tests
        .iter()
        .flat_map(|t| &t.alert_rule_test)
        .collect();
    let names: BTreeSet<String> = dash::rules()
        .alerts()
        .iter()
        .filter_map(|r| r.alert.clone())
        .collect();
    for name in &names {
        let mine: Vec<_> = cases.iter().filter(|c| &c.alertname == name).collect();
        assert!(
            mine.iter().any(|c| !c.exp_alerts.is_empty()),
            "{name}: no unit test shows it firing"
        );
        assert!(
            mine.iter().any(|c| c.exp_alerts.is_empty()),
            "{name}: no unit test shows it not firing"
        );
    }
    for c in &cases {
        assert!(
            names.contains(&c.alertname),
            "alerts_test.yml tests {}, which alerts.yml does not define",
            c.alertname
        );
    }
}

#[test]
fn the_required_alerts_exist() {
    let rules = dash::rules();
    let names: Vec<&str> = rules
        .alerts()
        .iter()
        .filter_map(|r| r.alert.as_deref())
        .collect();
    for want in [
        "MailcanaryDeliverySlow",
        "MailcanarySpamPlacement",
        "MailcanaryProbesMissing",
        "MailcanaryDmarcNotPassing",
        "MailcanarySendFailures",
        "MailcanaryDnsCheckError",
        "MailcanaryDnsCheckUnknown",
        "MailcanaryDnsblListed",
        "MailcanaryInboxDown",
        "MailcanaryStalled",
        "MailcanaryDown",
        "MailcanaryConfigReloadFailed",
    ] {
        assert!(names.contains(&want), "{want} is missing: {names:?}");
    }
}

/// GitHub's anchor for a Markdown heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn every_alert_has_annotations_and_a_runbook_entry() {
    let runbook = dash::read("runbook.md");
    let anchors: BTreeSet<String> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(anchor)
        .collect();
    let rules = dash::rules();
    for rule in rules.alerts() {
        let name = rule.alert.as_deref().unwrap();
        for key in ["summary", "description", "runbook_url"] {
            assert!(
                rule.annotations
                    .get(key)
                    .is_some_and(|v| !v.trim().is_empty()),
                "{name} has no {key}"
            );
        }
        let url = &rule.annotations["runbook_url"];
        let frag = url.strip_prefix(RUNBOOK_BASE).unwrap_or_else(|| {
            panic!("{name}: runbook_url {url} does not start with {RUNBOOK_BASE}")
        });
        assert!(
            anchors.contains(frag),
            "{name}: runbook.md has no heading for #{frag}"
        );
        assert_eq!(
            frag,
            anchor(name),
            "{name}: the entry is named after the alert"
        );
        let severity = rule.labels.get("severity").map(String::as_str);
        assert!(
            matches!(severity, Some("critical" | "warning" | "info")),
            "{name}: severity {severity:?}"
        );
    }
    // No runbook entry for an alert that does not exist.
    let alerts: BTreeSet<String> = rules
        .alerts()
        .iter()
        .map(|r| anchor(r.alert.as_deref().unwrap()))
        .collect();
    for a in anchors.iter().filter(|a| a.starts_with("mailcanary")) {
        assert!(alerts.contains(a), "runbook.md has #{a}, but no such alert");
    }
}

#[test]
fn the_alerting_doc_lists_every_alert() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/alerting.md")).unwrap();
    for rule in dash::rules().alerts() {
        let name = rule.alert.as_deref().unwrap();
        assert!(
            doc.contains(&format!("| `{name}` |")),
            "docs/alerting.md's alert table has no row for {name}"
        );
    }
}

/// Series names a query may read: mailcanary's (histograms with their
/// suffixes), the recording rules, and Prometheus' own `up`.
fn known_series() -> BTreeSet<String> {
    let mut known: BTreeSet<String> = ["up".to_string()].into();
    for s in ALL {
        known.insert(s.name.to_string());
        if s.kind == Kind::Histogram {
            for suffix in ["_bucket", "_sum", "_count"] {
                known.insert(format!("{}{suffix}", s.name));
            }
        }
    }
    known.extend(dash::rules().records().iter().map(|r| r.to_string()));
    known
}

#[test]
fn metric_names_are_found_in_promql() {
    // The extractor the next tests rely on.
    assert_eq!(
        dash::metric_names(
            r#"sum by (provider, le) (rate(a_bucket{x=~"$p",y="b c"}[5m])) / on (probe) group_left (seed) b:c:d > 0.5 or vector(0) unless time() - m_total offset 1h"#
        ),
        ["a_bucket", "b:c:d", "m_total"]
    );
    assert_eq!(
        dash::metric_names(r#"label_replace(up, "a", "$1", "b", "(.*)")"#),
        ["up"]
    );
}

#[test]
fn rules_read_only_exported_series() {
    let known = known_series();
    for rule in dash::rules().groups.iter().flat_map(|g| &g.rules) {
        for name in dash::metric_names(&rule.expr) {
            assert!(
                known.contains(&name),
                "{:?} reads {name}, which neither mailcanary exports nor a rule records",
                rule.alert.as_ref().or(rule.record.as_ref())
            );
        }
    }
}

#[test]
fn the_dashboard_is_valid_grafana_json() {
    let d = dash::dashboard();
    assert!(
        d["schemaVersion"].as_u64().unwrap() >= 39,
        "a current Grafana schema"
    );
    assert_eq!(d["uid"], "mailcanary");
    assert!(
        d["id"].is_null(),
        "no instance-specific id, so it imports anywhere"
    );
    let vars: Vec<&serde_json::Value> =
        d["templating"]["list"].as_array().unwrap().iter().collect();
    let ds = vars
        .iter()
        .find(|v| v["name"] == "datasource")
        .expect("a datasource variable");
    assert_eq!(ds["type"], "datasource");
    assert_eq!(ds["query"], "prometheus");
    for name in dash::VARIABLES {
        let v = vars
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no template variable {name}"));
        assert_eq!(v["type"], "query", "{name}");
        let q = v["query"]["query"].as_str().unwrap();
        assert!(q.starts_with("label_values("), "{name}: {q}");
        assert_eq!(v["datasource"]["uid"], "${datasource}", "{name}");
    }
    let mut ids = BTreeSet::new();
    for p in dash::panels(&d) {
        let title = p["title"].as_str().unwrap_or("");
        assert!(
            ids.insert(p["id"].as_u64().expect("panel id")),
            "duplicate id: {title}"
        );
        let g = &p["gridPos"];
        assert!(
            g["x"].as_u64().unwrap() + g["w"].as_u64().unwrap() <= 24,
            "{title}: gridPos {g}"
        );
        if p["type"] == "row" {
            continue;
        }
        assert!(!title.is_empty(), "panel {} has no title", p["id"]);
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has no query");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{title}");
        }
    }
}

#[test]
fn dashboard_queries_read_only_exported_series() {
    let known = known_series();
    let d = dash::dashboard();
    let queries = dash::queries(&d);
    let mut used = BTreeSet::new();
    for q in &queries {
        let names = dash::metric_names(&dash::substitute(&q.promql, ".*", "5m"));
        assert!(
            !names.is_empty(),
            "{}: reads no series: {}",
            q.place,
            q.promql
        );
        for name in names {
            assert!(
                known.contains(&name),
                "{} reads {name}, which neither mailcanary exports nor a rule records",
                q.place
            );
            used.insert(name);
        }
    }
    // Recording rules are there for the dashboard and the alerts: each is used.
    let rules = dash::rules();
    for r in rules.records() {
        let by_rule = rules
            .groups
            .iter()
            .flat_map(|g| &g.rules)
            .any(|other| dash::metric_names(&other.expr).iter().any(|n| n == r));
        assert!(
            used.contains(r) || by_rule,
            "recording rule {r} is used by neither the dashboard nor another rule"
        );
    }
    // Every exported series is on the dashboard, directly or through rules.
    let mut reach = used.clone();
    loop {
        let more: BTreeSet<String> = rules
            .groups
            .iter()
            .flat_map(|g| &g.rules)
            .filter(|r| r.record.as_ref().is_some_and(|rec| reach.contains(rec)))
            .flat_map(|r| dash::metric_names(&r.expr))
            .filter(|n| !reach.contains(n))
            .collect();
        if more.is_empty() {
            break;
        }
        reach.extend(more);
    }
    for s in ALL {
        let shown = reach.iter().any(|n| {
            n == s.name
                || (s.kind == Kind::Histogram
                    && ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|suffix| *n == format!("{}{suffix}", s.name)))
        });
        assert!(shown, "{} is on no panel", s.name);
    }
}

#[test]
fn dashboard_queries_parse() {
    // promtool parses each query as a recording rule; variables become `.*`.
    let d = dash::dashboard();
    let mut file = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, q) in dash::queries(&d).iter().enumerate() {
        let expr = dash::substitute(&q.promql, ".*", "5m");
        file.push_str(&format!(
            "      - record: dashboard_query_{i}\n        expr: {}\n",
            serde_json::to_string(&expr).unwrap()
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queries.yml");
    std::fs::write(&path, &file).unwrap();
    let (ok, text) = dash::promtool(&["check", "rules", path.to_str().unwrap()]);
    assert!(ok, "a dashboard query does not parse:\n{text}\n{file}");
}

#[test]
fn substitution_leaves_no_variable() {
    for q in dash::queries(&dash::dashboard()) {
        let e = dash::substitute(&q.expr, ".*", "5m");
        let rest: String = e.replace("$1", "");
        assert!(!rest.contains('$'), "{}: {e}", q.place);
    }
}

/// The `reason` matcher (`=~` or `!~`) of an alert's expression, as a set.
fn reason_matcher(expr: &str, op: &str) -> Option<BTreeSet<String>> {
    let start = expr.find(&format!("reason{op}\""))? + "reason".len() + op.len() + 1;
    let end = start + expr[start..].find('"')?;
    Some(expr[start..end].split('|').map(str::to_string).collect())
}

#[test]
fn the_bounce_alerts_select_the_reason_groups_of_the_code() {
    use mailcanary::bounce::reason::Group;
    let group =
        |g: Group| -> BTreeSet<String> { g.reasons().map(|r| r.as_str().to_string()).collect() };
    let rules = dash::rules();
    let expr = |name: &str| -> String {
        rules
            .alerts()
            .iter()
            .find(|r| r.alert.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{name} is missing"))
            .expr
            .clone()
    };
    assert_eq!(
        reason_matcher(&expr("MailcanaryProviderRefuses"), "=~"),
        Some(group(Group::Refused))
    );
    assert_eq!(
        reason_matcher(&expr("MailcanarySeedMailboxBroken"), "=~"),
        Some(group(Group::Recipient))
    );
    // The rest: every reason not in the other two groups.
    let not_other: BTreeSet<String> = group(Group::Refused)
        .union(&group(Group::Recipient))
        .cloned()
        .collect();
    assert_eq!(
        reason_matcher(&expr("MailcanaryProbesBounced"), "!~"),
        Some(not_other)
    );
}
