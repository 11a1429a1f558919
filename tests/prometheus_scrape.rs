//! End to end: the real Prometheus of the loopback stack scrapes a real
//! mailcanary daemon and its HTTP API reports the daemon's series.

mod common;

use std::time::Duration;

use common::{prom_query, wait_until, Daemon, Stack};

#[test]
fn prometheus_scrapes_the_daemon() {
    let stack = Stack::get();
    let d = Daemon::start(
        r#"
[daemon]
state_dir = "{dir}/state"
[http]
listen = "127.0.0.1:0"
"#,
    );
    // Register the daemon as a file_sd target with a label unique to this test.
    let instance = format!("scrape-test-{}", d.pid());
    let target =
        std::path::Path::new(stack.var("PROM_TARGETS_DIR")).join(format!("{instance}.json"));
    std::fs::write(
        &target,
        format!(
            r#"[{{"targets": ["{}"], "labels": {{"test": "{instance}"}}}}]"#,
            d.http
        ),
    )
    .unwrap();
    struct Cleanup(std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _cleanup = Cleanup(target);

    let up = format!("up{{test=\"{instance}\"}}");
    let scraped = wait_until(Duration::from_secs(60), || {
        prom_query(stack, &up)
            .first()
            .is_some_and(|s| s["value"][1] == "1")
    });
    assert!(scraped, "Prometheus never reported {up} == 1");

    let build = prom_query(
        stack,
        &format!("mailcanary_build_info{{test=\"{instance}\"}}"),
    );
    assert_eq!(build.len(), 1, "{build:?}");
    assert_eq!(build[0]["metric"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(build[0]["value"][1], "1");
}
