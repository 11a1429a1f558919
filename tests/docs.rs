//! The documentation is a contract too: the README's first two code blocks
//! are the set-up commands CI relies on, the metric table in
//! `docs/metrics.md` matches `src/metrics.rs`, the finding table in
//! `docs/dns-audit.md` matches `audit::CATALOGUE`, and every relative link
//! in the README and `docs/` leads to a file and heading that exist.

use std::path::{Path, PathBuf};

use mailcanary::audit::CATALOGUE;
use mailcanary::metrics::{Kind, ALL};

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

/// A reference page under `docs/`.
fn doc(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn code_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in text.lines() {
        match (&mut current, line.starts_with("```")) {
            (None, true) => current = Some(Vec::new()),
            (Some(lines), true) => {
                blocks.push(lines.join("\n"));
                current = None;
            }
            (Some(lines), false) => lines.push(line),
            (None, false) => {}
        }
    }
    blocks
}

#[test]
fn the_first_two_code_blocks_are_the_demo_and_test_commands() {
    let blocks = code_blocks(&readme());
    assert_eq!(blocks.first().map(String::as_str), Some("scripts/demo.sh"));
    assert_eq!(blocks.get(1).map(String::as_str), Some("scripts/test.sh"));
    let ci = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/run")).unwrap();
    assert!(
        ci.lines().any(|l| l.trim() == "scripts/test.sh"),
        ".ci/run calls the README's test command"
    );
}

#[test]
fn every_series_is_documented_with_its_type_and_labels() {
    let metrics = doc("metrics.md");
    let rows: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("| `mailcanary_"))
        .collect();
    assert_eq!(rows.len(), ALL.len(), "one docs/metrics.md row per series");
    for s in ALL {
        let row = rows
            .iter()
            .find(|r| r.starts_with(&format!("| `{}` |", s.name)))
            .unwrap_or_else(|| panic!("{} is not in the docs/metrics.md table", s.name));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let kind = match s.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        assert_eq!(cells[2], kind, "{}", s.name);
        let labels: Vec<String> = s.labels.iter().map(|l| format!("`{l}`")).collect();
        assert_eq!(cells[3], labels.join(", "), "{} labels", s.name);
    }
}

/// The rows of the table under `### Finding ids`, as cells.
fn finding_rows(audit: &str) -> Vec<Vec<String>> {
    let start = audit
        .find("### Finding ids")
        .expect("docs/dns-audit.md has a `### Finding ids` section");
    let section = &audit[start..];
    let end = section[3..].find("\n#").map_or(section.len(), |e| e + 3);
    section[..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            l.trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

#[test]
fn every_finding_id_is_documented_with_its_severity() {
    let rows = finding_rows(&doc("dns-audit.md"));
    let ids: Vec<&str> = rows.iter().map(|r| r[0].trim_matches('`')).collect();
    let catalogue: Vec<&str> = CATALOGUE.iter().map(|(id, _, _)| *id).collect();
    assert_eq!(
        ids, catalogue,
        "docs/dns-audit.md finding table = CATALOGUE, same order"
    );
    for (row, (id, severity, meaning)) in rows.iter().zip(CATALOGUE) {
        assert_eq!(row.len(), 3, "{id}: three cells");
        assert_eq!(row[1], severity.as_str(), "{id} severity");
        assert_eq!(row[2], *meaning, "{id} meaning");
    }
}

#[test]
fn the_check_json_example_has_the_contract_shape() {
    let blocks = code_blocks(&doc("dns-audit.md"));
    let example = blocks
        .iter()
        .find(|b| b.starts_with("{\n  \"domain\""))
        .expect("docs/dns-audit.md shows a `check --format json` example");
    let v: serde_json::Value = serde_json::from_str(example).expect("the example is JSON");
    let keys = |v: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&v), ["checks", "domain"]);
    for c in v["checks"].as_array().unwrap() {
        assert_eq!(keys(c), ["check", "findings", "record", "status"]);
        for f in c["findings"].as_array().unwrap() {
            assert_eq!(keys(f), ["hint", "id", "message", "severity"]);
            let id = f["id"].as_str().unwrap();
            let (_, sev, _) = CATALOGUE
                .iter()
                .find(|(i, _, _)| *i == id)
                .expect("known id");
            assert_eq!(f["severity"], sev.as_str());
        }
    }
}

/// GitHub's anchor for a heading: lower case, spaces as `-`, punctuation
/// other than `-` and `_` dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Lines of a Markdown text outside fenced code blocks.
fn prose(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .filter(|l| {
            if l.trim_start().starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect()
}

/// The anchors of a Markdown text's headings; a repeated heading gets
/// `-1`, `-2`, … as on GitHub.
fn anchors(text: &str) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for line in prose(text) {
        let hashes = line.chars().take_while(|c| *c == '#').count();
        if hashes == 0 || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = anchor(&line[hashes..]);
        let n = seen
            .iter()
            .filter(|a| {
                **a == base
                    || a.strip_prefix(&format!("{base}-"))
                        .is_some_and(|r| r.parse::<u32>().is_ok())
            })
            .count();
        seen.push(if n == 0 { base } else { format!("{base}-{n}") });
    }
    seen
}

/// Relative link targets (`[text](target)`) outside code blocks.
fn relative_links(text: &str) -> Vec<String> {
    let mut links = Vec::new();
    for line in prose(text) {
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            let Some(end) = rest.find(')') else { break };
            let target = &rest[..end];
            if !target.contains("://") && !target.starts_with("mailto:") {
                links.push(target.to_string());
            }
            rest = &rest[end..];
        }
    }
    links
}

#[test]
fn every_relative_link_leads_to_a_file_and_heading() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pages: Vec<PathBuf> = vec![root.join("README.md")];
    for e in std::fs::read_dir(root.join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            pages.push(p);
        }
    }
    let mut checked = 0;
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        for link in relative_links(&text) {
            let (file, fragment) = link.split_once('#').unwrap_or((&link, ""));
            let target = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            assert!(
                target.exists(),
                "{}: link {link} names a missing file",
                page.display()
            );
            if !fragment.is_empty() {
                let headings = anchors(&std::fs::read_to_string(&target).unwrap());
                assert!(
                    headings.iter().any(|a| a == fragment),
                    "{}: link {link}: no such heading in {} ({headings:?})",
                    page.display(),
                    target.display()
                );
            }
            checked += 1;
        }
    }
    // The README links every reference page.
    let readme = readme();
    for page in pages.iter().skip(1) {
        let name = page.file_name().unwrap().to_str().unwrap();
        assert!(
            readme.contains(&format!("](docs/{name})")),
            "README does not link docs/{name}"
        );
    }
    assert!(checked > pages.len(), "links were found ({checked})");
}

#[test]
fn anchors_follow_github() {
    assert_eq!(
        anchor(" TLS and basic auth: `http.web_config_file`"),
        "tls-and-basic-auth-httpweb_config_file"
    );
    assert_eq!(
        anchors("# A\n```\n# not a heading\n```\n## A\n### B b\n# A"),
        ["a", "a-1", "b-b", "a-2"]
    );
    assert_eq!(
        relative_links("[x](a.md#b) [y](https://e.org) `[z]` [w](#c)\n```\n[v](d.md)\n```"),
        ["a.md#b", "#c"]
    );
}

/// The backticked values in the metric table row of `series`, after `after`.
fn listed_values(series: &str, after: &str) -> Vec<String> {
    let metrics = doc("metrics.md");
    let row = metrics
        .lines()
        .find(|l| l.starts_with(&format!("| `{series}` |")))
        .unwrap_or_else(|| panic!("{series} has a row"));
    let meaning = row.rsplit('|').nth(1).unwrap_or_default();
    let tail = &meaning[meaning
        .find(after)
        .unwrap_or_else(|| panic!("{series}: {after:?}"))..];
    tail.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn the_placement_and_reason_values_in_the_metric_table_are_the_enums() {
    use mailcanary::probe::send::SendReason;
    use mailcanary::probe::Outcome;
    let names = |it: &mut dyn Iterator<Item = &'static str>| -> Vec<String> {
        let mut v: Vec<String> = it.map(str::to_string).collect();
        v.sort();
        v
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(
        sorted(listed_values(
            "mailcanary_probe_results_total",
            "final results"
        )),
        names(&mut Outcome::results().map(Outcome::as_str))
    );
    assert_eq!(
        sorted(listed_values(
            "mailcanary_probe_placement",
            "state set over"
        )),
        names(&mut Outcome::states().map(Outcome::as_str))
    );
    assert_eq!(
        sorted(listed_values(
            "mailcanary_probe_send_failures_total",
            "by reason"
        )),
        names(&mut SendReason::ALL.into_iter().map(SendReason::as_str))
    );
}
