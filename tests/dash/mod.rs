//! The shipped dashboard and rule files, read for the tests: the rule groups
//! of `dashboards/alerts.yml`, the promtool unit tests, and every PromQL
//! expression of `dashboards/mailcanary.json` with its template variables
//! substituted.

#![allow(dead_code)] // each test binary uses a different part

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

pub fn path(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("dashboards")
        .join(file)
}

pub fn read(file: &str) -> String {
    std::fs::read_to_string(path(file)).unwrap_or_else(|e| panic!("dashboards/{file}: {e}"))
}

/// A Prometheus rule file.
#[derive(Debug, Deserialize)]
pub struct RuleFile {
    pub groups: Vec<Group>,
}

#[derive(Debug, Deserialize)]
pub struct Group {
    pub name: String,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
pub struct Rule {
    pub alert: Option<String>,
    pub record: Option<String>,
    pub expr: String,
    #[serde(rename = "for")]
    pub for_: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

pub fn rules() -> RuleFile {
    serde_saphyr::from_str(&read("alerts.yml")).expect("dashboards/alerts.yml is YAML")
}

impl RuleFile {
    pub fn alerts(&self) -> Vec<&Rule> {
        self.all().filter(|r| r.alert.is_some()).collect()
    }

    /// Names of the recording rules.
    pub fn records(&self) -> Vec<&str> {
        self.all().filter_map(|r| r.record.as_deref()).collect()
    }

    fn all(&self) -> impl Iterator<Item = &Rule> {
        self.groups.iter().flat_map(|g| &g.rules)
    }
}

/// `dashboards/alerts_test.yml`, the parts the tests look at.
#[derive(Debug, Deserialize)]
pub struct UnitTests {
    pub rule_files: Vec<String>,
    pub tests: Vec<UnitTest>,
}

#[derive(Debug, Deserialize)]
pub struct UnitTest {
    pub name: String,
    #[serde(default)]
    pub alert_rule_test: Vec<AlertCase>,
}

#[derive(Debug, Deserialize)]
pub struct AlertCase {
    pub alertname: String,
    #[serde(default)]
    pub exp_alerts: Vec<serde::de::IgnoredAny>,
}

/// The promtool test files: every minute, and the app-mailbox rules, which
/// span days, every 15 minutes.
pub const UNIT_TEST_FILES: [&str; 2] = ["alerts_test.yml", "alerts_ingest_test.yml"];

/// Every test file's tests, in one list (`rule_files` of the first).
pub fn unit_tests() -> UnitTests {
    let mut all: Option<UnitTests> = None;
    for file in UNIT_TEST_FILES {
        let t: UnitTests = serde_saphyr::from_str(&read(file))
            .unwrap_or_else(|e| panic!("dashboards/{file} is not YAML: {e}"));
        match &mut all {
            None => all = Some(t),
            Some(a) => {
                assert_eq!(a.rule_files, t.rule_files, "{file} loads other rules");
                a.tests.extend(t.tests);
            }
        }
    }
    all.expect("test files")
}

/// Run promtool; returns (success, stdout + stderr).
pub fn promtool(args: &[&str]) -> (bool, String) {
    let out = Command::new("promtool")
        .args(args)
        .output()
        .expect("promtool (Debian package prometheus; scripts/deps.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

pub fn dashboard() -> serde_json::Value {
    serde_json::from_str(&read("mailcanary.json")).expect("dashboards/mailcanary.json is JSON")
}

/// Every panel, rows' nested panels included.
pub fn panels(dash: &serde_json::Value) -> Vec<&serde_json::Value> {
    let mut out = Vec::new();
    for p in dash["panels"].as_array().expect("panels") {
        out.push(p);
        if let Some(inner) = p["panels"].as_array() {
            out.extend(inner);
        }
    }
    out
}

/// One PromQL query of the dashboard.
#[derive(Debug, Clone)]
pub struct Query {
    /// Panel title and refId, or `variable NAME`.
    pub place: String,
    pub expr: String,
    /// The PromQL to evaluate: `expr`, or a variable's series selector.
    pub promql: String,
    /// A table or stat panel's instant query.
    pub instant: bool,
}

/// Every panel target's expression and every variable's query.
pub fn queries(dash: &serde_json::Value) -> Vec<Query> {
    let mut out = Vec::new();
    for p in panels(dash) {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push(Query {
                place: format!(
                    "panel {:?} {}",
                    p["title"].as_str().unwrap_or(""),
                    t["refId"].as_str().unwrap_or("")
                ),
                expr: t["expr"].as_str().expect("target has an expr").to_string(),
                promql: t["expr"].as_str().unwrap().to_string(),
                instant: t["instant"].as_bool().unwrap_or(false),
            });
        }
    }
    for v in dash["templating"]["list"].as_array().expect("templating") {
        if v["type"] != "query" {
            continue;
        }
        let q = v["query"]["query"]
            .as_str()
            .or(v["query"].as_str())
            .expect("variable query");
        out.push(Query {
            place: format!("variable {}", v["name"].as_str().unwrap_or("")),
            expr: q.to_string(),
            promql: variable_selector(q)
                .unwrap_or_else(|| {
                    panic!("variable query {q} is not label_values(SELECTOR, LABEL)")
                })
                .to_string(),
            instant: true,
        });
    }
    out
}

/// The dashboard's query variables.
pub const VARIABLES: [&str; 5] = ["provider", "probe", "sender", "seed", "domain"];

/// Grafana's interpolation for a test: every template variable becomes the
/// regex `value`, `$__rate_interval` becomes `rate_interval`.
pub fn substitute(expr: &str, value: &str, rate_interval: &str) -> String {
    let mut e = expr.replace("$__rate_interval", rate_interval);
    for v in VARIABLES {
        e = e.replace(&format!("${{{v}}}"), value);
        e = e.replace(&format!("${v}"), value);
    }
    e
}

/// `label_values(SELECTOR, LABEL)` → `SELECTOR` (what Grafana queries series for).
pub fn variable_selector(expr: &str) -> Option<&str> {
    let inner = expr.strip_prefix("label_values(")?.strip_suffix(')')?;
    Some(inner.rsplit_once(',').map_or(inner, |(sel, _)| sel).trim())
}

/// The metric names an expression reads: identifiers that are not
/// functions, keywords or label names (in `{...}`, `by (...)`, `on (...)`).
pub fn metric_names(expr: &str) -> Vec<String> {
    const KEYWORDS: [&str; 7] = ["and", "or", "unless", "bool", "offset", "inf", "nan"];
    // Aggregations may put `by (...)` between their name and `(`.
    const AGGREGATIONS: [&str; 12] = [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    const LABEL_LISTS: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let c: Vec<char> = expr.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    // Skips a bracketed block starting at c[i] == open; strings inside are skipped whole.
    let skip_block = |mut i: usize, open: char, close: char| -> usize {
        let mut depth = 0;
        while i < c.len() {
            match c[i] {
                '"' | '\'' | '`' => {
                    let q = c[i];
                    i += 1;
                    while i < c.len() && c[i] != q {
                        if c[i] == '\\' {
                            i += 1;
                        }
                        i += 1;
                    }
                }
                ch if ch == open => depth += 1,
                ch if ch == close => {
                    depth -= 1;
                    if depth == 0 {
                        return i + 1;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        i
    };
    while i < c.len() {
        let ch = c[i];
        if ch == '{' {
            i = skip_block(i, '{', '}');
        } else if ch == '[' {
            i = skip_block(i, '[', ']');
        } else if ch == '"' || ch == '\'' || ch == '`' {
            // A string outside braces (label_replace arguments): skip it.
            i += 1;
            while i < c.len() && c[i] != ch {
                if c[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
        } else if ch.is_ascii_digit()
            || (ch == '.' && c.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '.' || c[i] == '_') {
                i += 1;
            }
        } else if ch.is_ascii_alphabetic() || ch == '_' || ch == ':' {
            let start = i;
            while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '_' || c[i] == ':') {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let mut j = i;
            while j < c.len() && c[j].is_whitespace() {
                j += 1;
            }
            let call = c.get(j) == Some(&'(');
            if LABEL_LISTS.contains(&word.as_str()) {
                if call {
                    i = skip_block(j, '(', ')');
                }
            } else if !call
                && !AGGREGATIONS.contains(&word.as_str())
                && !KEYWORDS.contains(&word.to_ascii_lowercase().as_str())
            {
                // not a function, an aggregation or a keyword: a metric
                names.push(word);
            }
        } else {
            i += 1;
        }
    }
    names
}
