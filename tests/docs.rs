//! The README is a contract too: its first two code blocks are the set-up
//! commands CI relies on, its metric table matches `src/metrics.rs`, and its
//! finding table matches `audit::CATALOGUE`.

use mailcanary::audit::CATALOGUE;
use mailcanary::metrics::{Kind, ALL};

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
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
    let readme = readme();
    let rows: Vec<&str> = readme
        .lines()
        .filter(|l| l.starts_with("| `mailcanary_"))
        .collect();
    assert_eq!(rows.len(), ALL.len(), "one README row per series");
    for s in ALL {
        let row = rows
            .iter()
            .find(|r| r.starts_with(&format!("| `{}` |", s.name)))
            .unwrap_or_else(|| panic!("{} is not in the README metric table", s.name));
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
fn finding_rows(readme: &str) -> Vec<Vec<String>> {
    let start = readme
        .find("### Finding ids")
        .expect("README has a `### Finding ids` section");
    let section = &readme[start..];
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
    let readme = readme();
    let rows = finding_rows(&readme);
    let ids: Vec<&str> = rows.iter().map(|r| r[0].trim_matches('`')).collect();
    let catalogue: Vec<&str> = CATALOGUE.iter().map(|(id, _, _)| *id).collect();
    assert_eq!(
        ids, catalogue,
        "README finding table = CATALOGUE, same order"
    );
    for (row, (id, severity, meaning)) in rows.iter().zip(CATALOGUE) {
        assert_eq!(row.len(), 3, "{id}: three cells");
        assert_eq!(row[1], severity.as_str(), "{id} severity");
        assert_eq!(row[2], *meaning, "{id} meaning");
    }
}

#[test]
fn the_check_json_example_has_the_contract_shape() {
    let blocks = code_blocks(&readme());
    let example = blocks
        .iter()
        .find(|b| b.starts_with("{\n  \"domain\""))
        .expect("README shows a `check --format json` example");
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
