//! The stage's handlers on real fixtures, a real store and real metrics;
//! the daemon end to end is `tests/ingest.rs`.

use std::path::Path;

use super::store;
use super::*;
use crate::config::Config;

fn fixture(path: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A config with `example.com` (sending from 192.0.2.0/24) and a reports
/// and a bounces mailbox.
fn config(dir: &Path) -> Config {
    let path = dir.join("mailcanary.toml");
    std::fs::write(
        &path,
        r#"
[daemon]
state_dir = "state"

[domains."example.com"]
sending_networks = ["192.0.2.0/24"]

[reports.rua]
provider = "selfhosted"
address = "reports@example.com"
kind = "maildir"
path = "rua"

[bounces.app]
provider = "selfhosted"
address = "bounces@example.com"
kind = "maildir"
path = "app"
"#,
    )
    .unwrap();
    crate::config::load(&path).unwrap()
}

async fn setup() -> (tempfile::TempDir, Config, Store, Metrics) {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let store = Store::open(&config.daemon.state_dir).unwrap();
    let metrics = Metrics::new();
    metrics.forget_unconfigured(
        &|l, v| config.runs(l, v),
        config.domains.keys().cloned().collect(),
    );
    (dir, config, store, metrics)
}

async fn report(st: &Store, m: &Metrics, c: &Config, file: &str) -> Outcome {
    let raw = fixture(file);
    let sha = store::fingerprint(&raw);
    reports::ingest(st, m, c, "rua", raw, sha).await.unwrap()
}

fn line<'a>(text: &'a str, series: &str) -> Option<&'a str> {
    text.lines().find(|l| l.starts_with(series))
}

#[tokio::test]
async fn a_report_counts_once_per_reporter_and_id_across_restarts() {
    let (dir, config, st, m) = setup().await;
    assert_eq!(
        report(&st, &m, &config, "reports/rfc7489.xml").await,
        Outcome::Ingested
    );
    // The same report in another message (re-sent, or the .gz of it).
    let again = b"  \n"
        .iter()
        .chain(fixture("reports/rfc7489.xml").iter())
        .copied()
        .collect::<Vec<u8>>();
    let sha = store::fingerprint(&again);
    let out = reports::ingest(&st, &m, &config, "rua", again, sha)
        .await
        .unwrap();
    assert_eq!(out, Outcome::Duplicate);
    let text = m.render();
    // 192.0.2.1 is in sending_networks: 2 passing messages; 203.0.113.9 is not: 1 failing.
    assert_eq!(
        line(
            &text,
            r#"mailcanary_dmarc_report_messages_total{disposition="none",dkim_aligned="pass",dmarc="pass",domain="example.com",reporter="other",source="configured",spf_aligned="pass"}"#
        ),
        Some(
            r#"mailcanary_dmarc_report_messages_total{disposition="none",dkim_aligned="pass",dmarc="pass",domain="example.com",reporter="other",source="configured",spf_aligned="pass"} 2"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"dmarc="fail",domain="example.com",reporter="other",source="other",spf_aligned="fail"} 1"#), "{text}");
    assert!(
        text.contains(
            r#"mailcanary_reports_total{kind="dmarc_aggregate",mailbox="rua",outcome="ingested"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"mailcanary_reports_total{kind="dmarc_aggregate",mailbox="rua",outcome="duplicate"} 1"#), "{text}");
    assert!(text.contains(r#"mailcanary_report_last_timestamp_seconds{domain="example.com",kind="dmarc_aggregate"}"#), "{text}");
    assert!(
        !text.contains("192.0.2") && !text.contains("rfc-7489-1"),
        "no IP or report id as a label: {text}"
    );

    // A restart: a new store handle on the same file, fresh metrics.
    drop(st);
    let st = Store::open(&config.daemon.state_dir).unwrap();
    let m = Metrics::new();
    assert_eq!(
        report(&st, &m, &config, "reports/rfc7489.xml").await,
        Outcome::Duplicate
    );
    reports::restore_last_times(&st, &m).await;
    let text = m.render();
    assert!(
        !text.contains("mailcanary_dmarc_report_messages_total{"),
        "{text}"
    );
    assert!(text.contains(r#"mailcanary_report_last_timestamp_seconds{domain="example.com",kind="dmarc_aggregate"} 1"#), "{text}");
    drop(dir);
}

#[tokio::test]
async fn bombs_broken_and_foreign_reports_are_counted_without_harm() {
    let (_dir, config, st, m) = setup().await;
    for f in [
        "reports/gzip-bomb.xml.gz",
        "reports/zip-bomb.zip",
        "reports/malformed.xml",
        "reports/entity-expansion.xml",
        "reports/not-a-report.txt",
    ] {
        assert_eq!(report(&st, &m, &config, f).await, Outcome::Invalid, "{f}");
    }
    // tlsrpt-rfc8460.json is about company-y.example only.
    assert_eq!(
        report(&st, &m, &config, "reports/tlsrpt-rfc8460.json").await,
        Outcome::ForeignDomain
    );
    let text = m.render();
    assert!(
        text.contains(
            r#"mailcanary_reports_total{kind="unknown",mailbox="rua",outcome="invalid"} 5"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"mailcanary_reports_total{kind="tls_rpt",mailbox="rua",outcome="foreign_domain"} 1"#
        ),
        "{text}"
    );
    assert!(
        !text.contains("company-y"),
        "a foreign domain is not exported: {text}"
    );
}

#[tokio::test]
async fn tls_reports_count_sessions_and_failures_of_configured_domains_only() {
    let (_dir, config, st, m) = setup().await;
    assert_eq!(
        report(&st, &m, &config, "reports/tlsrpt-microsoft.json.gz").await,
        Outcome::Ingested
    );
    let text = m.render();
    for want in [
        r#"mailcanary_tls_report_sessions_total{domain="example.com",policy_type="sts",reporter="microsoft",result="success"} 930"#,
        r#"mailcanary_tls_report_sessions_total{domain="example.com",policy_type="sts",reporter="microsoft",result="failure"} 14"#,
        r#"mailcanary_tls_report_failures_total{domain="example.com",reporter="microsoft",result_type="certificate-expired"} 13"#,
        r#"mailcanary_tls_report_failures_total{domain="example.com",reporter="microsoft",result_type="sts-policy-fetch-error"} 1"#,
    ] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    assert!(!text.contains("mail.example.com"), "{text}");
}

#[tokio::test]
async fn top_lists_failing_sources_from_the_store() {
    let (_dir, config, st, m) = setup().await;
    for f in [
        "reports/rfc7489.xml",
        "reports/mailru.xml",
        "reports/google.zip",
    ] {
        assert_eq!(report(&st, &m, &config, f).await, Outcome::Ingested, "{f}");
    }
    let rows = st
        .call(|c| store::top_sources(c, Some("example.com"), 0, 10))
        .await
        .unwrap();
    assert!(!rows.is_empty());
    assert!(
        rows.windows(2).all(|w| w[0].failed >= w[1].failed),
        "{rows:?}"
    );
    let spoof = rows
        .iter()
        .find(|r| r.source_ip == "203.0.113.9")
        .expect("203.0.113.9 listed");
    assert_eq!(spoof.failed, 1);
    assert!(spoof.spf.contains("spoof.invalid=softfail"), "{spoof:?}");
    assert!(rows.iter().all(|r| r.failed > 0));
    // Nothing in a window that starts after every report ended.
    let none = st
        .call(|c| store::top_sources(c, None, i64::MAX, 10))
        .await
        .unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn processed_messages_are_remembered_by_their_bytes() {
    let (_dir, _config, st, _m) = setup().await;
    let sha = store::fingerprint(b"message");
    let k = sha.clone();
    assert!(!st
        .call(move |c| store::seen_before(c, "bounces", &k, 1))
        .await
        .unwrap());
    let k = sha.clone();
    st.call(move |c| store::remember(c, "bounces", &k, "app", "bounce", 1))
        .await
        .unwrap();
    let k = sha.clone();
    assert!(st
        .call(move |c| store::seen_before(c, "bounces", &k, 2))
        .await
        .unwrap());
    let k = sha.clone();
    assert!(
        !st.call(move |c| store::seen_before(c, "reports", &k, 2))
            .await
            .unwrap(),
        "per kind"
    );
    // Pruned once not seen for longer than it is remembered.
    st.call(move |c| store::prune(c, 0, 3 + store::REMEMBER_MESSAGES_MS))
        .await
        .unwrap();
    assert!(!st
        .call(move |c| store::seen_before(c, "bounces", &sha, 4))
        .await
        .unwrap());
}

#[tokio::test]
async fn bounces_count_failed_recipients_by_provider_reason_and_typo() {
    let (_dir, _config, st, m) = setup().await;
    for f in [
        "gmail-dsn-userunknown.eml",
        "postfix-hostunknown-typo.eml",
        "postfix-real-delayed.eml",
        "vacation-autoreply.eml",
        "ordinary-mail.eml",
    ] {
        let raw = fixture(&format!("bounce/{f}"));
        let sha = store::fingerprint(&raw);
        bounces::ingest(&st, &m, "app", raw, sha).await.unwrap();
    }
    let text = m.render();
    assert!(
        text.contains(
            r#"mailcanary_bounces_total{mailbox="app",provider="gmail",reason="userunknown"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"mailcanary_bounces_typo_domain_total{mailbox="app",provider="gmail"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"mailcanary_bounces_total{mailbox="app",provider="other",reason="hostunknown"} 1"#
        ),
        "{text}"
    );
    let total: u64 = text
        .lines()
        .filter(|l| l.starts_with("mailcanary_bounces_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(
        total, 2,
        "a delay notice, an auto-reply and plain mail are no bounces: {text}"
    );
    assert!(!text.contains("gmial") && !text.contains('@'), "{text}");
}

#[test]
fn watcher_names_cannot_meet_seed_names() {
    let n = watcher_name(AppMailboxKind::Reports, "rua");
    assert_eq!(n, "reports:rua");
    assert!(!crate::config::valid_name(&n));
    assert_eq!(
        parse_watcher_name(&n),
        Some((AppMailboxKind::Reports, "rua"))
    );
    assert_eq!(parse_watcher_name("seed1"), None);
}

#[test]
fn sending_networks_and_ips_decide_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path());
    let d = &c.domains["example.com"];
    assert!(d.sends_from("192.0.2.200".parse().unwrap()));
    assert!(
        d.sends_from("::ffff:192.0.2.7".parse().unwrap()),
        "v4-mapped"
    );
    assert!(!d.sends_from("192.0.3.1".parse().unwrap()));
}

#[test]
fn docs_ingest_md_lists_the_provider_table_as_the_code_has_it() {
    use crate::mailbox_provider::{Provider, DOMAINS};
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ingest.md"))
        .unwrap();
    for p in Provider::ALL {
        let domains: Vec<&str> = DOMAINS
            .iter()
            .filter(|(_, q)| *q == p)
            .map(|(d, _)| *d)
            .collect();
        if domains.is_empty() {
            continue; // MX-only providers (google_workspace, …) and `other`
        }
        let row = format!("| `{}` | {} |", p.as_str(), domains.join(", "));
        assert!(doc.contains(&row), "docs/ingest.md lacks the row\n{row}");
    }
}
