//! The daemon's scheduled DNS audit against the stack's real knot server:
//! metrics for a configured domain, a live record change counted, and a DNS
//! outage reported as unknown (never as a missing record). It changes the
//! shared stack's DNS, so it has a test binary of its own.

mod common;

use std::time::Duration;

use common::{stack_config, Daemon, Stack};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn scheduled_audit_exports_metrics_counts_changes_and_reports_outages_as_unknown() {
    let stack = Stack::get();
    let domain = format!(
        "[domains.\"sender.test\"]\nroles = [\"sending\"]\nselectors = [\"{}\"]\nsending_ips = [\"{}\"]\nevery = \"1s\"\nstarttls = false\n",
        stack.var("DKIM_SELECTOR"),
        stack.var("SENDER_IP")
    );
    let d = Daemon::start(
        &stack_config(stack, &domain).replace("timeout = \"2s\"", "timeout = \"500ms\""),
    );
    assert!(
        d.wait_metric(
            "mailcanary_dns_check_status{domain=\"sender.test\",check=\"spf\",status=\"ok\"}",
            1.0,
            WAIT
        ),
        "spf not ok; logs:\n{}",
        d.logs()
    );
    assert_eq!(
        d.metric(
            "mailcanary_dns_check_status{domain=\"sender.test\",check=\"dmarc\",status=\"error\"}"
        ),
        Some(0.0)
    );
    assert_eq!(
        d.metric("mailcanary_spf_dns_lookups{domain=\"sender.test\"}"),
        Some(0.0)
    );
    assert_eq!(
        d.metric("mailcanary_dkim_key_bits{domain=\"sender.test\",selector=\"sel\"}"),
        Some(2048.0)
    );
    assert_eq!(
        d.metric("mailcanary_dmarc_policy{domain=\"sender.test\",policy=\"reject\"}"),
        Some(1.0)
    );
    assert_eq!(
        d.metric("mailcanary_dmarc_policy{domain=\"sender.test\",policy=\"none\"}"),
        Some(0.0)
    );

    // A live SPF change that drops the sending IP: counted as a change, and an error.
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
    let changes = "mailcanary_dns_record_changes_total{domain=\"sender.test\",record=\"spf\"}";
    let changed = d.wait_metric(changes, 1.0, WAIT);
    let spf_error = d.metric(
        "mailcanary_dns_check_status{domain=\"sender.test\",check=\"spf\",status=\"error\"}",
    );
    stack.knotc(&["zone-reload", "sender.test"]); // back to the zone file
    assert!(changed, "change not counted; logs:\n{}", d.logs());
    assert_eq!(
        spf_error,
        Some(1.0),
        "the sending IP is no longer permitted"
    );
    assert!(
        d.wait_metric(changes, 2.0, WAIT),
        "restoring is a change too"
    );
    assert!(d.wait_metric(
        "mailcanary_dns_check_status{domain=\"sender.test\",check=\"spf\",status=\"ok\"}",
        1.0,
        WAIT
    ));

    // knot stops answering: unknown, never "missing", and no stale key size or policy.
    stack.ctl(&["pause", "knot"]);
    let unknown = d.wait_metric(
        "mailcanary_dns_check_status{domain=\"sender.test\",check=\"spf\",status=\"unknown\"}",
        1.0,
        WAIT,
    );
    let bits = d.metric("mailcanary_dkim_key_bits{domain=\"sender.test\",selector=\"sel\"}");
    let policy = d.metric("mailcanary_dmarc_policy{domain=\"sender.test\",policy=\"reject\"}");
    let spf_errors = d
        .metric("mailcanary_dns_findings{domain=\"sender.test\",check=\"spf\",severity=\"error\"}");
    stack.ctl(&["cont", "knot"]);
    assert!(unknown, "an outage is not unknown; logs:\n{}", d.logs());
    assert_eq!(bits, None, "no stale key size while DNS is down");
    assert_eq!(policy, None, "no stale DMARC policy while DNS is down");
    assert_eq!(
        spf_errors,
        Some(0.0),
        "an outage is not a broken (or missing) record"
    );
    assert!(
        d.wait_metric(changes, 2.0, Duration::from_secs(1)),
        "an outage is not a record change"
    );
}
