//! The architecture the crate doc promises: data flows one way. The import
//! graph of `src`'s top-level modules (as `../shared/tools/modgraph.py`
//! prints it) has no cycle, and `src/lib.rs` shows that graph as it is.

use std::path::Path;

fn modgraph() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tool = root.join("../shared/tools/modgraph.py");
    assert!(
        tool.exists(),
        "{} is missing: the project's shared tools sit beside the checkout",
        tool.display()
    );
    let out = std::process::Command::new("python3")
        .arg(&tool)
        .arg(root.join("src"))
        .output()
        .expect("python3 runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "modgraph.py failed (an import cycle?):\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn the_top_level_modules_import_one_way() {
    let graph = modgraph();
    assert!(graph.contains("cycles=0"), "{graph}");
    // The leaf modules import no stage.
    for leaf in ["message", "secret", "text", "dns", "store", "tls"] {
        let line = graph
            .lines()
            .find(|l| l.starts_with(&format!("{leaf} -> ")))
            .unwrap_or_else(|| panic!("{leaf} is in the graph:\n{graph}"));
        for stage in [
            "config", "inbox", "verdict", "probe", "audit", "http", "daemon",
        ] {
            assert!(
                !line
                    .split(" -> ")
                    .nth(1)
                    .unwrap_or("")
                    .split(", ")
                    .any(|m| m == stage),
                "leaf {leaf} imports stage {stage}: {line}"
            );
        }
    }
}

#[test]
fn the_crate_doc_shows_the_graph_as_it_is() {
    let graph = modgraph();
    let lib = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/lib.rs")).unwrap();
    for edge in graph.lines().filter(|l| l.contains(" -> ")) {
        assert!(
            lib.contains(&format!("//! {edge}\n")),
            "src/lib.rs does not show `{edge}`; paste the output of modgraph.py"
        );
    }
}
