//! The README is a contract too: its first two code blocks are the set-up
//! commands CI relies on, and its metric table matches `src/metrics.rs`.

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
