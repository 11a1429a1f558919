//! `mailcanary check` against a real knot server on loopback: one domain per
//! finding id (and clean ones that must stay clean), audited through the real
//! binary with `--resolver 127.0.0.1:PORT --format json`.
//!
//! Every case domain starts from a clean baseline (SPF, DMARC at reject with
//! a local rua, a 2048-bit DKIM key at selector `s1`, an MX with an address)
//! and changes one thing. The findings of each domain must be exactly the
//! case's list (ids, with a severity where it differs from the catalogue
//! default), apart from the informational findings every baseline domain gets
//! (no MTA-STS, TLS-RPT, BIMI; unsigned zone).
//!
//! STARTTLS and MTA-STS run against small TLS servers in this process
//! (certificates made with `openssl` under a temporary CA).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::bin;
use common::knot::{Knot, Zone};
use mailcanary::audit::{Severity, CATALOGUE};
use serde_json::Value;

// ------------------------------------------------------------- zone data ---

/// Throw-away keys from tests/fixtures/audit/dkim (private halves not kept).
const KEY_2048: &str = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAx7xOcJoMvDqIPjmlMQp8x0kJ1lPVvrsVxn7cLwgwNQSQWgeHd96MrJZFWy8IE9Z7d71DBDlgOhoG+lv+dSADFR9S2GnXPJRn5ScWohxbniJSkAQ87yiRFTMZIEQSStDJ28XHN1P2G8th2zmo095e5Sq7utEXvS6xqlgafAEmGxmIFyib19ZEVdzHoqufNbPp2qUFL6rrqZLYCKqhrQYYZC24KVMr1dX0gnxCm123XWQm3Lq8cVVujaQtMaCrDCTBpRZdun7dWlFdxIkf51cvr46zqaxw1qjHcNEorJj8Fbc9Vn9QmKVtKmQp+1zIWz/WMMwFULU4xylEwkR+XtR75wIDAQAB";
const KEY_1024: &str = "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCxOxGtJxyVZVnkdq1HA1RZk9um/2KQkKD1IhedKHYiy7VmGBq2wA6OYHIDCu8MW64I0Q98ilkASQZ8krLFmbvs5MCy0qdTzLxXXXLTTdslaWGRLDAQt6mJ555oaLEU36hcR3jPMgXJisrWDzE0eFnK0oSTYp+3eDCarpHwEsop3QIDAQAB";
const KEY_512: &str = "MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAMXq6+ijae8WYFE/bsQSjDcIbyM1SMgsTelgfE6I7wYyfutpEQvBL1heyxo/sXlnHsCJQt2BnRUpYzeZ+SaWmhMCAwEAAQ==";

/// The parts of the clean baseline a case can leave out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Spf,
    Dmarc,
    Dkim,
    Mx,
}
use Part::*;

/// One audited domain: zone lines added to the baseline (`{d}` is the
/// domain; names are relative to it unless they end in a dot), and the
/// findings expected, exactly: `id`, or `id:severity` when the severity is
/// not the catalogue default.
struct Case {
    domain: &'static str,
    without: &'static [Part],
    zone: &'static str,
    expect: &'static [&'static str],
}

const fn case(
    domain: &'static str,
    without: &'static [Part],
    zone: &'static str,
    expect: &'static [&'static str],
) -> Case {
    Case {
        domain,
        without,
        zone,
        expect,
    }
}

/// Informational findings every baseline domain has; ignored when info.
const BASELINE_INFO: &[&str] = &[
    "mta_sts.missing",
    "tls_rpt.missing",
    "bimi.missing",
    "dnssec.unsigned",
];

/// Domains in the `test.` zone, audited together with `--selector s1 --no-smtp`.
const CASES: &[Case] = &[
    // Clean domains: nothing but the baseline information.
    case("clean.test", &[], "", &[]),
    case(
        "clean-split.test",
        &[Spf],
        r#"@ TXT "v=spf1 " "ip4:192.0.2.0/24" " include:_spf.{d}" " -all"
_spf TXT "v=spf1 ip4:198.51.100.0/24" " ~all""#,
        &[],
    ),
    case(
        "clean-extras.test",
        &[],
        r#"_smtp._tls TXT "v=TLSRPTv1; rua=mailto:tlsrpt@{d}"
default._bimi TXT "v=BIMI1; l=https://{d}/logo.svg; a=https://{d}/vmc.pem""#,
        &[],
    ),
    case(
        "clean-ext-rua.test",
        &[Dmarc],
        r#"_dmarc TXT "v=DMARC1; p=quarantine; rua=mailto:d@{d},mailto:agg@vendor.test"
clean-ext-rua.test._report._dmarc.vendor.test. TXT "v=DMARC1""#,
        &[],
    ),
    case(
        "spf-narrow.test",
        &[Spf],
        r#"@ TXT "v=spf1 ip4:192.0.2.1 -all""#,
        &[],
    ),
    // SPF, RFC 7208
    case("spf-missing.test", &[Spf], "", &["spf.missing"]),
    case(
        "spf-multiple.test",
        &[],
        r#"@ TXT "v=spf1 mx -all""#,
        &["spf.multiple_records"],
    ),
    case(
        "spf-syntax.test",
        &[Spf],
        r#"@ TXT "v=spf1 ip4:192.0.2.0/33 -all""#,
        &["spf.syntax_error"],
    ),
    // 1 + (4 + 1) + 5 = 11 lookups; no single record has more than 5.
    case(
        "spf-nested.test",
        &[Spf],
        r#"@ TXT "v=spf1 include:l1.{d} -all"
l1 TXT "v=spf1 a:h1.{d} a:h2.{d} a:h3.{d} a:h4.{d} include:l2.{d} -all"
l2 TXT "v=spf1 a:h1.{d} a:h2.{d} a:h3.{d} a:h4.{d} a:h5.{d} -all"
h1 A 192.0.2.21
h2 A 192.0.2.22
h3 A 192.0.2.23
h4 A 192.0.2.24
h5 A 192.0.2.25"#,
        &["spf.too_many_lookups"],
    ),
    case(
        "spf-void.test",
        &[Spf],
        r#"@ TXT "v=spf1 a:nx1.{d} a:nx2.{d} a:nx3.{d} ip4:192.0.2.0/24 -all""#,
        &["spf.too_many_void_lookups"],
    ),
    case(
        "spf-plus-all.test",
        &[Spf],
        r#"@ TXT "v=spf1 +all""#,
        &["spf.permissive_all"],
    ),
    case(
        "spf-neutral-all.test",
        &[Spf],
        r#"@ TXT "v=spf1 ip4:192.0.2.0/24 ?all""#,
        &["spf.permissive_all:warning"],
    ),
    case(
        "spf-ptr.test",
        &[Spf],
        r#"@ TXT "v=spf1 ptr:{d} ip4:192.0.2.0/24 -all""#,
        &["spf.ptr_mechanism"],
    ),
    case(
        "spf-include-nf.test",
        &[Spf],
        r#"@ TXT "v=spf1 include:gone.{d} -all""#,
        &["spf.include_not_found"],
    ),
    case(
        "spf-redirect-nf.test",
        &[Spf],
        r#"@ TXT "v=spf1 redirect=gone.{d}""#,
        &["spf.redirect_not_found"],
    ),
    case(
        "spf-include-bad.test",
        &[Spf],
        r#"@ TXT "v=spf1 include:bad.{d} -all"
bad TXT "v=spf1 ip4:192.0.2.0/33 -all""#,
        &["spf.include_invalid"],
    ),
    case(
        "spf-redirect-loop.test",
        &[Spf],
        r#"@ TXT "v=spf1 redirect=r1.{d}"
r1 TXT "v=spf1 redirect={d}""#,
        &["spf.loop"],
    ),
    case(
        "spf-include-loop.test",
        &[Spf],
        r#"@ TXT "v=spf1 include:i1.{d} -all"
i1 TXT "v=spf1 include:{d} -all""#,
        &["spf.loop"],
    ),
    case("spf-long.test", &[Spf], "{long_spf}", &["spf.record_too_long"]),
    case(
        "spf-mx-many.test",
        &[Spf],
        r#"@ TXT "v=spf1 mx:many.{d} -all"
many MX 1 m1
many MX 2 m2
many MX 3 m3
many MX 4 m4
many MX 5 m5
many MX 6 m6
many MX 7 m7
many MX 8 m8
many MX 9 m9
many MX 10 m10
many MX 11 m11
m1 A 192.0.2.31
m2 A 192.0.2.32
m3 A 192.0.2.33
m4 A 192.0.2.34
m5 A 192.0.2.35
m6 A 192.0.2.36
m7 A 192.0.2.37
m8 A 192.0.2.38
m9 A 192.0.2.39
m10 A 192.0.2.40
m11 A 192.0.2.41"#,
        &["spf.mx_too_many_hosts"],
    ),
    case(
        "spf-no-all.test",
        &[Spf],
        r#"@ TXT "v=spf1 ip4:192.0.2.0/24""#,
        &["spf.no_all"],
    ),
    case(
        "spf-redirect-ignored.test",
        &[Spf],
        r#"@ TXT "v=spf1 ip4:192.0.2.0/24 -all redirect=other.{d}""#,
        &["spf.redirect_ignored"],
    ),
    case(
        "spf-after-all.test",
        &[Spf],
        r#"@ TXT "v=spf1 -all ip4:192.0.2.0/24""#,
        &["spf.terms_after_all"],
    ),
    case(
        "spf-unknown-mod.test",
        &[Spf],
        r#"@ TXT "v=spf1 ip4:192.0.2.0/24 colour=blue -all""#,
        &["spf.unknown_modifier"],
    ),
    case(
        "spf-macro.test",
        &[Spf],
        r#"@ TXT "v=spf1 include:%{d1}._spf.{d} -all""#,
        &["spf.lookups_not_counted"],
    ),
    case(
        "spf-dns-error.test",
        &[Spf],
        r#"@ TXT "v=spf1 include:x.servfail.test -all""#,
        &["spf.dns_error"],
    ),
    // DMARC, RFC 7489
    case("dmarc-missing.test", &[Dmarc], "", &["dmarc.missing"]),
    case(
        "dmarc-multiple.test",
        &[],
        r#"_dmarc TXT "v=DMARC1; p=none""#,
        &["dmarc.multiple_records"],
    ),
    case(
        "dmarc-syntax.test",
        &[Dmarc],
        r#"_dmarc TXT "v=DMARC1; p=reject; pct=150; rua=mailto:d@{d}""#,
        &["dmarc.syntax_error"],
    ),
    case(
        "dmarc-none.test",
        &[Dmarc],
        r#"_dmarc TXT "v=DMARC1; p=none; rua=mailto:d@{d}""#,
        &["dmarc.policy_none"],
    ),
    case(
        "dmarc-pct.test",
        &[Dmarc],
        r#"_dmarc TXT "v=DMARC1; p=reject; pct=50; rua=mailto:d@{d}""#,
        &["dmarc.pct_partial"],
    ),
    case(
        "dmarc-no-rua.test",
        &[Dmarc],
        r#"_dmarc TXT "v=DMARC1; p=reject""#,
        &["dmarc.no_rua"],
    ),
    case(
        "dmarc-sp-weaker.test",
        &[Dmarc],
        r#"_dmarc TXT "v=DMARC1; p=reject; sp=none; rua=mailto:d@{d}""#,
        &["dmarc.subdomain_policy_weaker"],
    ),
    // An external rua whose domain did not publish the authorization record.
    case(
        "dmarc-ext-rua.test",
        &[Dmarc],
        r#"_dmarc TXT "v=DMARC1; p=reject; rua=mailto:d@{d},mailto:agg@vendor.test""#,
        &["dmarc.external_rua_unauthorized"],
    ),
    case(
        "dmarc-unknown-tag.test",
        &[Dmarc],
        r#"_dmarc TXT "v=DMARC1; p=reject; rua=mailto:d@{d}; colour=blue""#,
        &["dmarc.unknown_tag"],
    ),
    // A DMARC record at the organisational domain only.
    case(
        "mail.dmarc-org.test",
        &[Dmarc],
        r#"_dmarc.dmarc-org.test. TXT "v=DMARC1; p=reject; rua=mailto:d@dmarc-org.test""#,
        &["dmarc.org_domain_policy"],
    ),
    case(
        "dmarc-dns-error.test",
        &[Dmarc],
        "_dmarc CNAME _dmarc.x.servfail.test.",
        &["dmarc.dns_error"],
    ),
    // DKIM, RFC 6376
    case("dkim-missing.test", &[Dkim], "", &["dkim.missing"]),
    case(
        "dkim-revoked.test",
        &[Dkim],
        r#"s1._domainkey TXT "v=DKIM1; k=rsa; p=""#,
        &["dkim.revoked"],
    ),
    case(
        "dkim-1024.test",
        &[Dkim],
        "s1._domainkey TXT {key_1024}",
        &["dkim.key_too_short:warning"],
    ),
    case(
        "dkim-512.test",
        &[Dkim],
        "s1._domainkey TXT {key_512}",
        &["dkim.key_too_short"],
    ),
    case(
        "dkim-testing.test",
        &[Dkim],
        "s1._domainkey TXT {key_2048_testing}",
        &["dkim.testing_mode"],
    ),
    case(
        "dkim-syntax.test",
        &[Dkim],
        r#"s1._domainkey TXT "v=DKIM1; k=rsa; p=not*base64""#,
        &["dkim.syntax_error"],
    ),
    case(
        "dkim-unusable.test",
        &[Dkim],
        r#"s1._domainkey TXT "v=DKIM1; k=dsa; p=AAAA""#,
        &["dkim.unusable_key"],
    ),
    case(
        "dkim-multiple.test",
        &[],
        "s1._domainkey TXT {key_2048_sha256}",
        &["dkim.multiple_records"],
    ),
    case(
        "dkim-dns-error.test",
        &[Dkim],
        "s1._domainkey CNAME s1.x.servfail.test.",
        &["dkim.dns_error"],
    ),
    // MX, RFC 5321 §5.1, RFC 7505
    case("mx-missing.test", &[Mx], "", &["mx.missing"]),
    case("mx-null.test", &[Mx], "@ MX 0 .", &["mx.null_mx"]),
    case(
        "mx-null-mixed.test",
        &[],
        "@ MX 0 .",
        &["mx.null_mx:error"],
    ),
    case(
        "mx-no-address.test",
        &[Mx],
        "@ MX 10 nowhere",
        &["mx.target_no_address"],
    ),
    case(
        "mx-cname.test",
        &[Mx],
        "@ MX 10 alias\nalias CNAME real\nreal A 192.0.2.11",
        &["mx.target_is_cname"],
    ),
    case(
        "mx-ip.test",
        &[Mx],
        "@ MX 10 192.0.2.10.",
        &["mx.target_is_ip"],
    ),
    case(
        "mx-dns-error.test",
        &[Mx],
        "@ MX 10 mx.x.servfail.test.",
        &["mx.dns_error"],
    ),
    // MTA-STS record problems that need no policy fetch.
    case(
        "sts-syntax.test",
        &[],
        r#"_mta-sts TXT "v=STSv1; id=not-alnum!""#,
        &["mta_sts.syntax_error", "tls_rpt.missing:warning"],
    ),
    case(
        "sts-multiple.test",
        &[],
        "_mta-sts TXT \"v=STSv1; id=1\"\n_mta-sts TXT \"v=STSv1; id=2\"",
        &["mta_sts.multiple_records", "tls_rpt.missing:warning"],
    ),
    case(
        "sts-no-host.test",
        &[],
        r#"_mta-sts TXT "v=STSv1; id=20260101""#,
        &["mta_sts.policy_fetch_failed", "tls_rpt.missing:warning"],
    ),
    case(
        "sts-dns-error.test",
        &[],
        "_mta-sts CNAME x.servfail.test.",
        &["mta_sts.dns_error"],
    ),
    // TLS-RPT, RFC 8460
    case(
        "tlsrpt-syntax.test",
        &[],
        r#"_smtp._tls TXT "v=TLSRPTv1; rua=ftp://reports.{d}""#,
        &["tls_rpt.syntax_error"],
    ),
    case(
        "tlsrpt-multiple.test",
        &[],
        "_smtp._tls TXT \"v=TLSRPTv1; rua=mailto:a@{d}\"\n_smtp._tls TXT \"v=TLSRPTv1; rua=mailto:b@{d}\"",
        &["tls_rpt.multiple_records"],
    ),
    case(
        "tlsrpt-dns-error.test",
        &[],
        "_smtp._tls CNAME x.servfail.test.",
        &["tls_rpt.dns_error"],
    ),
    // BIMI
    case(
        "bimi-dmarc-none.test",
        &[Dmarc],
        r#"_dmarc TXT "v=DMARC1; p=none; rua=mailto:d@{d}"
default._bimi TXT "v=BIMI1; l=https://{d}/logo.svg; a=https://{d}/vmc.pem""#,
        &["dmarc.policy_none", "bimi.dmarc_not_enforced"],
    ),
    case(
        "bimi-syntax.test",
        &[],
        r#"default._bimi TXT "v=BIMI1; l=http://{d}/logo.svg""#,
        &["bimi.syntax_error"],
    ),
    case(
        "bimi-no-cert.test",
        &[],
        r#"default._bimi TXT "v=BIMI1; l=https://{d}/logo.svg""#,
        &["bimi.no_certificate"],
    ),
    case(
        "bimi-multiple.test",
        &[],
        "default._bimi TXT \"v=BIMI1; l=https://{d}/a.svg\"\ndefault._bimi TXT \"v=BIMI1; l=https://{d}/b.svg\"",
        &["bimi.multiple_records"],
    ),
    case(
        "bimi-dns-error.test",
        &[],
        "default._bimi CNAME x.servfail.test.",
        &["bimi.dns_error"],
    ),
];

/// Domains in zones of their own (see [`zones`]), audited in the same run.
const OWN_ZONE_CASES: &[Case] = &[
    // Signed, with the DS in the parent: no DNSSEC finding at all.
    case("signed.test", &[], "", &[]),
    case("nods.test", &[], "", &["dnssec.no_ds"]),
    // A zone that fails to load: every check unknown, nothing "missing".
    case(
        "x.servfail.test",
        &[],
        "",
        &[
            "spf.dns_error",
            "dkim.dns_error",
            "dmarc.dns_error",
            "mx.dns_error",
            "mta_sts.dns_error",
            "tls_rpt.dns_error",
            "bimi.dns_error",
            "dnssec.dns_error",
        ],
    ),
];

/// TXT record text split into quoted strings of at most 255 octets.
fn txt_strings(value: &str) -> String {
    value
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn dkim_record(key: &str, extra: &str) -> String {
    txt_strings(&format!("v=DKIM1; k=rsa;{extra} p={key}"))
}

fn baseline(domain: &str, without: &[Part]) -> String {
    let mut z = String::new();
    if !without.contains(&Spf) {
        z.push_str("@ TXT \"v=spf1 ip4:192.0.2.0/24 -all\"\n");
    }
    if !without.contains(&Dmarc) {
        z.push_str(&format!(
            "_dmarc TXT \"v=DMARC1; p=reject; rua=mailto:dmarc@{domain}\"\n"
        ));
    }
    if !without.contains(&Dkim) {
        z.push_str(&format!(
            "s1._domainkey TXT {}\n",
            dkim_record(KEY_2048, "")
        ));
    }
    if !without.contains(&Mx) {
        z.push_str("@ MX 10 mx\nmx A 192.0.2.10\n");
    }
    z
}

fn case_zone(c: &Case) -> String {
    let long_spf = {
        let terms: Vec<String> = (1..=30).map(|i| format!("ip4:198.51.100.{i}")).collect();
        format!(
            "@ TXT {}",
            txt_strings(&format!("v=spf1 {} -all", terms.join(" ")))
        )
    };
    let body = c
        .zone
        .replace("{long_spf}", &long_spf)
        .replace("{key_1024}", &dkim_record(KEY_1024, ""))
        .replace("{key_512}", &dkim_record(KEY_512, ""))
        .replace("{key_2048_testing}", &dkim_record(KEY_2048, " t=y;"))
        .replace("{key_2048_sha256}", &dkim_record(KEY_2048, " h=sha256;"))
        .replace("{d}", c.domain);
    format!(
        "$ORIGIN {d}.\n{}{body}\n",
        baseline(c.domain, c.without),
        d = c.domain
    )
}

// ---------------------------------------------------------- TLS fixtures ---

/// Domains whose MX and MTA-STS policy host are served by this process.
const TLS_CASES: &[Case] = &[
    case("tls-good.test", &[], "", &[]),
    case("tls-expiring.test", &[], "", &["mx.cert_expiring"]),
    case("tls-untrusted.test", &[], "", &["mx.cert_invalid"]),
    case("tls-wrongname.test", &[], "", &["mx.cert_invalid"]),
    case("tls-plain.test", &[], "", &["mx.starttls_missing"]),
    case("tls-refuses.test", &[], "", &["mx.starttls_failed"]),
    case("tls-down.test", &[], "", &["mx.smtp_unreachable"]),
    case("sts-testing.test", &[], "", &["mta_sts.mode_testing"]),
    case("sts-none.test", &[], "", &["mta_sts.mode_none"]),
    case("sts-uncovered.test", &[], "", &["mta_sts.mx_not_covered"]),
    case("sts-short.test", &[], "", &["mta_sts.max_age_short"]),
    case("sts-invalid.test", &[], "", &["mta_sts.policy_invalid"]),
    case("sts-html.test", &[], "", &["mta_sts.policy_invalid"]),
    case("sts-404.test", &[], "", &["mta_sts.policy_fetch_failed"]),
];

/// Which loopback address an MX of a TLS case resolves to, by behaviour:
/// 127.0.0.1 STARTTLS, .2 no STARTTLS, .3 nothing listening, .4 STARTTLS
/// answered 454.
fn tls_case_zone(domain: &str) -> String {
    let mx_ip = match domain {
        "tls-plain.test" => "127.0.0.2",
        "tls-down.test" => "127.0.0.3",
        "tls-refuses.test" => "127.0.0.4",
        _ => "127.0.0.1",
    };
    let mut z = format!("$ORIGIN {domain}.\n{}", baseline(domain, &[Mx]));
    z.push_str(&format!("@ MX 10 mx\nmx A {mx_ip}\n"));
    z.push_str(&format!(
        "_smtp._tls TXT \"v=TLSRPTv1; rua=mailto:tlsrpt@{domain}\"\n"
    ));
    if domain.starts_with("sts-") || domain == "tls-good.test" {
        z.push_str("_mta-sts TXT \"v=STSv1; id=20261122\"\nmta-sts A 127.0.0.1\n");
    }
    z
}

/// The policy served for `mta-sts.<domain>`: (status, content type, body).
fn policy_for(host: &str) -> (u16, &'static str, String) {
    let domain = host.strip_prefix("mta-sts.").unwrap_or(host);
    let policy = |mode: &str, max_age: u32, mx: &str| {
        format!("version: STSv1\r\nmode: {mode}\r\nmx: {mx}\r\nmax_age: {max_age}\r\n")
    };
    let own = format!("mx.{domain}");
    match domain {
        "sts-testing.test" => (200, "text/plain", policy("testing", 604800, &own)),
        "sts-none.test" => (200, "text/plain", policy("none", 604800, &own)),
        "sts-uncovered.test" => (
            200,
            "text/plain",
            policy("enforce", 604800, "*.elsewhere.test"),
        ),
        "sts-short.test" => (200, "text/plain", policy("enforce", 3600, &own)),
        "sts-invalid.test" => (200, "text/plain", policy("strict", 604800, &own)),
        "sts-html.test" => (
            200,
            "text/html; charset=utf-8",
            policy("enforce", 604800, &own),
        ),
        "sts-404.test" => (404, "text/plain", "not found".into()),
        _ => (
            200,
            "text/plain; charset=utf-8",
            policy("enforce", 604800, &own),
        ),
    }
}

struct TlsFixture {
    dir: PathBuf,
    smtp_port: u16,
    https_port: u16,
}

impl TlsFixture {
    fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
}

/// A leaf certificate for `names`, signed by the test CA, valid `days`.
fn leaf(dir: &Path, stem: &str, names: &[String], days: u32) {
    let san: Vec<String> = names.iter().map(|n| format!("DNS:{n}")).collect();
    std::fs::write(
        dir.join(format!("{stem}.ext")),
        format!(
            "subjectAltName={}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
            san.join(",")
        ),
    )
    .unwrap();
    let (key, csr, pem, ext) = (
        format!("{stem}.key"),
        format!("{stem}.csr"),
        format!("{stem}.pem"),
        format!("{stem}.ext"),
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={}", names[0]),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            &days.to_string(),
            "-out",
            &pem,
            "-extfile",
            &ext,
        ],
    );
}

fn tls_fixture() -> &'static TlsFixture {
    static F: OnceLock<TlsFixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("mc-audit-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        openssl(
            &dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "30",
                "-subj",
                "/CN=mailcanary test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        let mut good = Vec::new();
        for c in TLS_CASES {
            if !matches!(
                c.domain,
                "tls-expiring.test" | "tls-untrusted.test" | "tls-wrongname.test"
            ) {
                good.push(format!("mx.{}", c.domain));
            }
            good.push(format!("mta-sts.{}", c.domain));
        }
        leaf(&dir, "good", &good, 30);
        leaf(&dir, "short", &["mx.tls-expiring.test".into()], 5);
        openssl(
            &dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "self.key",
                "-out",
                "self.pem",
                "-days",
                "30",
                "-subj",
                "/CN=mx.tls-untrusted.test",
                "-addext",
                "subjectAltName=DNS:mx.tls-untrusted.test",
                "-addext",
                "basicConstraints=critical,CA:FALSE",
            ],
        );
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "while kill -0 {} 2>/dev/null; do sleep 1; done; rm -rf {}",
                std::process::id(),
                dir.display()
            ))
            .spawn();
        let (smtp_port, https_port) = servers::start(&dir);
        TlsFixture {
            dir,
            smtp_port,
            https_port,
        }
    })
}

/// Small SMTP and HTTPS servers on loopback, on a thread of their own.
mod servers {
    use super::*;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::io::{
        AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader as TokioBufReader,
    };
    use tokio_rustls::rustls::crypto::aws_lc_rs;
    use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
    use tokio_rustls::rustls::sign::CertifiedKey;
    use tokio_rustls::rustls::ServerConfig;
    use tokio_rustls::TlsAcceptor;

    #[derive(Debug)]
    struct BySni {
        names: HashMap<String, Arc<CertifiedKey>>,
        default: Arc<CertifiedKey>,
    }

    impl ResolvesServerCert for BySni {
        fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
            let name = hello.server_name().unwrap_or("");
            Some(self.names.get(name).unwrap_or(&self.default).clone())
        }
    }

    fn certified(dir: &Path, stem: &str) -> Arc<CertifiedKey> {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(dir.join(format!("{stem}.pem")))
                .unwrap()
                .map(Result::unwrap)
                .collect();
        let key = PrivateKeyDer::from_pem_file(dir.join(format!("{stem}.key"))).unwrap();
        let signing = aws_lc_rs::sign::any_supported_type(&key).unwrap();
        Arc::new(CertifiedKey::new(certs, signing))
    }

    fn acceptor(dir: &Path) -> TlsAcceptor {
        let resolver = BySni {
            names: [
                ("mx.tls-expiring.test".to_string(), certified(dir, "short")),
                ("mx.tls-untrusted.test".to_string(), certified(dir, "self")),
            ]
            .into_iter()
            .collect(),
            default: certified(dir, "good"),
        };
        let config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
        TlsAcceptor::from(Arc::new(config))
    }

    /// Binds the same free port on 127.0.0.1, .2 and .4 (SMTP) and another
    /// on 127.0.0.1 (HTTPS); returns (smtp, https).
    pub fn start(dir: &Path) -> (u16, u16) {
        let (smtp, https) = loop {
            let first = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = first.local_addr().unwrap().port();
            let others: Result<Vec<TcpListener>, _> = ["127.0.0.2", "127.0.0.4"]
                .iter()
                .map(|ip| TcpListener::bind((*ip, port)))
                .collect();
            if let Ok(mut others) = others {
                others.insert(0, first);
                break (others, TcpListener::bind("127.0.0.1:0").unwrap());
            }
        };
        let ports = (
            smtp[0].local_addr().unwrap().port(),
            https.local_addr().unwrap().port(),
        );
        let acceptor = acceptor(dir);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                for (i, l) in smtp.into_iter().enumerate() {
                    l.set_nonblocking(true).unwrap();
                    let l = tokio::net::TcpListener::from_std(l).unwrap();
                    let flavour = ["starttls", "plain", "refuses"][i];
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        while let Ok((s, _)) = l.accept().await {
                            tokio::spawn(smtp_session(s, flavour, acceptor.clone()));
                        }
                    });
                }
                https.set_nonblocking(true).unwrap();
                let l = tokio::net::TcpListener::from_std(https).unwrap();
                while let Ok((s, _)) = l.accept().await {
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        if let Ok(tls) = acceptor.accept(s).await {
                            let _ = http_session(tls).await;
                        }
                    });
                }
            });
        });
        ports
    }

    async fn smtp_session(s: tokio::net::TcpStream, flavour: &'static str, acceptor: TlsAcceptor) {
        let mut r = TokioBufReader::new(s);
        if r.get_mut().write_all(b"220 test ESMTP\r\n").await.is_err() {
            return;
        }
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let cmd = line.trim().to_ascii_uppercase();
            let reply: &[u8] = if cmd.starts_with("EHLO") {
                if flavour == "plain" {
                    b"250-test\r\n250 PIPELINING\r\n"
                } else {
                    b"250-test\r\n250-PIPELINING\r\n250 STARTTLS\r\n"
                }
            } else if cmd == "STARTTLS" && flavour == "refuses" {
                b"454 4.7.0 TLS not available\r\n"
            } else if cmd == "STARTTLS" {
                if r.get_mut()
                    .write_all(b"220 2.0.0 go ahead\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
                if let Ok(tls) = acceptor.accept(r.into_inner()).await {
                    after_tls(tls).await;
                }
                return;
            } else if cmd == "QUIT" {
                let _ = r.get_mut().write_all(b"221 bye\r\n").await;
                return;
            } else {
                b"502 5.5.2 not here\r\n"
            };
            if r.get_mut().write_all(reply).await.is_err() {
                return;
            }
        }
    }

    async fn after_tls<S: AsyncRead + AsyncWrite + Unpin>(s: S) {
        let mut r = TokioBufReader::new(s);
        let mut line = String::new();
        while r.read_line(&mut line).await.unwrap_or(0) > 0 {
            if line.trim().eq_ignore_ascii_case("QUIT") {
                let _ = r.get_mut().write_all(b"221 bye\r\n").await;
                return;
            }
            let _ = r.get_mut().write_all(b"250 ok\r\n").await;
            line.clear();
        }
    }

    async fn http_session<S: AsyncRead + AsyncWrite + Unpin>(s: S) -> std::io::Result<()> {
        let mut r = TokioBufReader::new(s);
        let mut host = String::new();
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line).await? == 0 || line == "\r\n" {
                break;
            }
            if let Some(h) = line.to_ascii_lowercase().strip_prefix("host:") {
                host = h.trim().to_string();
            }
        }
        let (status, ctype, body) = policy_for(&host);
        let reason = if status == 200 { "OK" } else { "Not Found" };
        let resp = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        r.get_mut().write_all(resp.as_bytes()).await?;
        r.get_mut().shutdown().await
    }
}

// ------------------------------------------------------------ the server ---

fn zones() -> Vec<Zone> {
    let mut test = String::new();
    for c in CASES {
        test.push_str(&case_zone(c));
    }
    for c in TLS_CASES {
        test.push_str(&tls_case_zone(c.domain));
    }
    // Blocklists: bl.test for IPs, dbl.test for domains; delegations of
    // the signed zones (their DS records are added once knot signed them).
    test.push_str(
        r#"$ORIGIN test.
signed NS ns.test.
nods NS ns.test.
1.2.0.192.bl A 127.0.0.2
1.2.0.192.bl TXT "listed: see https://bl.test/lookup?ip=192.0.2.1"
2.2.0.192.bl A 127.255.255.254
clean.test.dbl A 127.0.1.2
"#,
    );
    let own = |d: &str| format!("$ORIGIN {d}.\n{}", baseline(d, &[]));
    vec![
        Zone::new("test", test),
        Zone::new("signed.test", own("signed.test")).signed(),
        Zone::new("nods.test", own("nods.test")).signed(),
        Zone::broken("servfail.test"),
        Zone::new(
            "2.0.192.in-addr.arpa",
            "1 PTR out.clean.test.\n2 PTR out.elsewhere.test.\n4 CNAME 4.x.servfail.test.\n",
        ),
    ]
}

/// The knot server shared by the tests of this file.
fn knot() -> &'static Knot {
    static K: OnceLock<Knot> = OnceLock::new();
    K.get_or_init(|| {
        let mut z = zones();
        // FCrDNS of 192.0.2.1 holds; 192.0.2.2's PTR name points elsewhere.
        if let Some(test) = z.first_mut() {
            test.text
                .push_str("$ORIGIN test.\nout.clean A 192.0.2.1\nout.elsewhere A 192.0.2.99\n");
        }
        let knot = Knot::start_shared(&z);
        let ds = knot.ds_records("signed.test");
        assert!(!ds.is_empty(), "keymgr printed no DS for signed.test");
        knot.add_records("test", &ds);
        knot
    })
}

// --------------------------------------------------------------- running ---

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

fn check(args: &[&str]) -> Run {
    let t0 = Instant::now();
    let out: Output = Command::new(bin())
        .arg("check")
        .args(args)
        .output()
        .expect("run mailcanary");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: t0.elapsed(),
    }
}

/// Runs `check --format json` and returns the reports by domain.
fn check_json(args: &[&str]) -> (Run, BTreeMap<String, Value>) {
    let mut all = vec!["--format", "json"];
    all.extend_from_slice(args);
    let run = check(&all);
    let v: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", run.stdout, run.stderr));
    let list = match v {
        Value::Array(a) => a,
        obj @ Value::Object(_) => vec![obj],
        other => panic!("unexpected JSON {other}"),
    };
    let by_domain = list
        .into_iter()
        .map(|r| (r["domain"].as_str().expect("domain").to_string(), r))
        .collect();
    (run, by_domain)
}

fn catalogue_severity(id: &str) -> &'static str {
    CATALOGUE
        .iter()
        .find(|(i, _, _)| *i == id)
        .map(|(_, s, _)| s.as_str())
        .unwrap_or_else(|| panic!("{id} is not in the catalogue"))
}

/// The findings of a report as `id` / `id:severity` (severity shown when it
/// differs from the catalogue default), baseline information left out.
fn findings(report: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for c in report["checks"].as_array().expect("checks") {
        for f in c["findings"].as_array().expect("findings") {
            let id = f["id"].as_str().expect("id");
            let sev = f["severity"].as_str().expect("severity");
            if sev == "info" && BASELINE_INFO.contains(&id) {
                continue;
            }
            assert!(
                id.starts_with(&format!("{}.", c["check"].as_str().unwrap_or("?"))),
                "finding {id} under check {}",
                c["check"]
            );
            if sev == catalogue_severity(id) {
                out.push(id.to_string());
            } else {
                out.push(format!("{id}:{sev}"));
            }
        }
    }
    out.sort();
    out
}

fn normalised(expect: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = expect
        .iter()
        .map(|e| match e.split_once(':') {
            Some((id, sev)) if sev == catalogue_severity(id) => id.to_string(),
            _ => e.to_string(),
        })
        .collect();
    v.sort();
    v
}

fn status_of<'a>(report: &'a Value, check: &str) -> Vec<&'a str> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["check"] == check)
        .map(|c| c["status"].as_str().unwrap())
        .collect()
}

fn compare(cases: &[Case], reports: &BTreeMap<String, Value>) -> Vec<String> {
    let mut failures = Vec::new();
    for c in cases {
        let Some(r) = reports.get(c.domain) else {
            failures.push(format!("{}: no report", c.domain));
            continue;
        };
        let got = findings(r);
        let want = normalised(c.expect);
        if got != want {
            failures.push(format!(
                "{}: expected {want:?}, got {got:?}\n{}",
                c.domain,
                serde_json::to_string_pretty(r).unwrap_or_default()
            ));
        }
    }
    failures
}

// ----------------------------------------------------------------- tests ---

#[test]
fn every_case_domain_yields_exactly_its_findings() {
    let k = knot();
    let resolver = k.resolver();
    let mut args = vec![
        "--resolver",
        &resolver,
        "--selector",
        "s1",
        "--no-smtp",
        "--timeout",
        "2s",
    ];
    let domains: Vec<&str> = CASES
        .iter()
        .chain(OWN_ZONE_CASES)
        .map(|c| c.domain)
        .collect();
    args.extend(&domains);
    let (run, reports) = check_json(&args);
    eprintln!("{} domains audited in {:?}", domains.len(), run.elapsed);
    assert_eq!(
        run.code,
        Some(1),
        "errors exist, so exit 1; stderr: {}",
        run.stderr
    );
    assert_eq!(reports.len(), domains.len());
    let mut failures = compare(CASES, &reports);
    failures.extend(compare(OWN_ZONE_CASES, &reports));
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );

    // Details the id lists do not show.
    let r = &reports["clean-split.test"];
    assert_eq!(
        r["checks"][0]["record"], "v=spf1 ip4:192.0.2.0/24 include:_spf.clean-split.test -all",
        "TXT strings are joined without separators"
    );
    let signed = &reports["signed.test"];
    assert_eq!(status_of(signed, "dnssec"), ["ok"]);
    let rec = signed["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "dnssec")
        .unwrap()["record"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(rec.starts_with("zone signed.test: 2 DNSKEY, "), "{rec}");
    assert_eq!(status_of(&reports["clean.test"], "dnssec"), ["ok"]);
    // A name below a signed apex: the apex comes from the negative DNSKEY
    // answer, and the keys and DS are asked there.
    let (_, below) = check_json(&["--resolver", &resolver, "--no-smtp", "www.signed.test"]);
    let dnssec = below["www.signed.test"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == "dnssec")
        .cloned()
        .unwrap();
    assert_eq!(dnssec["status"], "ok", "{dnssec}");
    let rec = dnssec["record"].as_str().unwrap();
    assert!(rec.starts_with("zone signed.test: 2 DNSKEY, "), "{rec}");
    let nested = &reports["spf-nested.test"];
    let msg = nested["checks"][0]["findings"][0]["message"]
        .as_str()
        .unwrap();
    assert!(msg.contains("11 DNS lookups"), "{msg}");
    let outage = &reports["x.servfail.test"];
    for c in outage["checks"].as_array().unwrap() {
        assert_eq!(c["status"], "unknown", "{c}");
    }
    for (domain, r) in &reports {
        let unknown_dkim = status_of(r, "dkim") == ["unknown"];
        assert!(
            !(unknown_dkim && findings(r).iter().any(|f| f.starts_with("dkim.missing"))),
            "{domain}: unknown reported as missing"
        );
    }
}

#[test]
fn clean_domains_exit_0_and_text_output_groups_by_check() {
    let k = knot();
    let resolver = k.resolver();
    let (run, reports) = check_json(&[
        "--resolver",
        &resolver,
        "--selector",
        "s1",
        "--no-smtp",
        "clean.test",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    // One domain: the object itself, not an array.
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(v.is_object());
    let r = &reports["clean.test"];
    let checks: Vec<&str> = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(
        checks,
        ["spf", "dkim", "dmarc", "mx", "mta_sts", "tls_rpt", "bimi", "dnssec"]
    );
    for c in r["checks"].as_array().unwrap() {
        assert_eq!(c["status"], "ok", "{c}");
        let keys: Vec<&String> = c.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["check", "findings", "record", "status"],
            "JSON shape"
        );
    }
    assert_eq!(r["checks"][3]["record"], "10 mx.clean.test");

    let text = check(&[
        "--resolver",
        &resolver,
        "--selector",
        "s1",
        "--no-smtp",
        "clean.test",
        "dmarc-none.test",
    ]);
    assert_eq!(text.code, Some(0), "warnings only: exit 0\n{}", text.stdout);
    assert!(
        !text.stdout.contains('\x1b'),
        "no colour when not a terminal"
    );
    let expected = "dmarc-none.test\n  spf      ok      v=spf1 ip4:192.0.2.0/24 -all\n  dkim     ok      v=DKIM1; k=rsa; p=";
    assert!(text.stdout.contains(expected), "{}", text.stdout);
    assert!(
        text.stdout.contains("  dmarc    warning v=DMARC1; p=none; rua=mailto:d@dmarc-none.test\n    warning dmarc.policy_none  "),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("            hint: "),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .ends_with("0 errors, 1 warning, 0 unknown in 2 domains\n"),
        "{}",
        text.stdout
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        vec!["check"],
        vec!["check", "bad..name"],
        vec!["check", "example.test", "--ip", "not-an-ip"],
        vec![
            "check",
            "example.test",
            "--resolver",
            "nowhere.invalid:99999",
        ],
        vec!["check", "example.test", "--format", "yaml"],
        vec!["check", "example.test", "--selector", "a b"],
        vec!["check", "example.test", "--timeout", "0s"],
        vec!["check", "example.test", "--ca-file", "/nonexistent.pem"],
    ] {
        let out = Command::new(bin()).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(!out.stderr.is_empty(), "{args:?} explains itself");
    }
}

#[test]
fn receiving_domains_need_an_mx() {
    let k = knot();
    let resolver = k.resolver();
    let (run, reports) = check_json(&[
        "--resolver",
        &resolver,
        "--selector",
        "s1",
        "--no-smtp",
        "--receiving",
        "mx-missing.test",
        "mx-null.test",
        "clean.test",
    ]);
    assert_eq!(run.code, Some(1));
    assert_eq!(findings(&reports["mx-missing.test"]), ["mx.missing:error"]);
    assert_eq!(findings(&reports["mx-null.test"]), ["mx.null_mx:error"]);
    assert_eq!(findings(&reports["clean.test"]), Vec::<String>::new());
}

#[test]
fn sending_ips_get_spf_evaluation_reverse_dns_and_blocklists() {
    let k = knot();
    let resolver = k.resolver();
    let (run, reports) = check_json(&[
        "--resolver",
        &resolver,
        "--selector",
        "s1",
        "--no-smtp",
        "--ip",
        "192.0.2.1",
        "--ip",
        "192.0.2.2",
        "--ip",
        "192.0.2.3",
        "--ip",
        "192.0.2.4",
        "--dnsbl",
        "bl.test",
        "--dnsbl",
        "x.servfail.test",
        "--dnsbl-domain",
        "dbl.test",
        "clean.test",
        "spf-narrow.test",
    ]);
    assert_eq!(run.code, Some(1));
    let ip_findings = [
        "dnsbl.blocked",
        "dnsbl.error",
        "dnsbl.error",
        "dnsbl.error",
        "dnsbl.error",
        "dnsbl.listed",
        "ptr.dns_error",
        "ptr.missing",
        "ptr.not_confirmed",
    ];
    let mut clean: Vec<&str> = ip_findings.to_vec();
    clean.push("dnsbl.listed"); // clean.test on dbl.test
    assert_eq!(findings(&reports["clean.test"]), normalised(&clean));
    let mut narrow: Vec<&str> = ip_findings.to_vec();
    narrow.extend(["spf.ip_not_permitted"; 3]);
    assert_eq!(findings(&reports["spf-narrow.test"]), normalised(&narrow));

    let r = &reports["clean.test"];
    assert_eq!(status_of(r, "spf"), ["ok"], "192.0.2.0/24 passes");
    assert_eq!(status_of(r, "ptr"), ["error"]);
    let text = serde_json::to_string(r).unwrap();
    assert!(text.contains("192.0.2.1 is listed on bl.test (127.0.0.2): listed: see https://bl.test/lookup?ip=192.0.2.1"), "{text}");
    assert!(text.contains("clean.test is listed on dbl.test"), "{text}");
    assert!(
        text.contains("bl.test refused the query for 192.0.2.2 (127.255.255.254)"),
        "{text}"
    );
    assert!(text.contains("192.0.2.1 → out.clean.test"), "{text}");
    let narrow = serde_json::to_string(&reports["spf-narrow.test"]).unwrap();
    assert!(
        narrow.contains("sending IP 192.0.2.2 gets `fail`"),
        "{narrow}"
    );
    assert!(!narrow.contains("sending IP 192.0.2.1 gets"), "{narrow}");
}

#[test]
fn starttls_certificates_and_mta_sts_policies() {
    let k = knot();
    let f = tls_fixture();
    let resolver = k.resolver();
    let smtp = f.smtp_port.to_string();
    let https = f.https_port.to_string();
    let ca = f.ca().display().to_string();
    let mut args = vec![
        "--resolver",
        &resolver,
        "--selector",
        "s1",
        "--smtp-port",
        &smtp,
        "--https-port",
        &https,
        "--ca-file",
        &ca,
        "--timeout",
        "3s",
        "--helo",
        "audit.test",
    ];
    args.extend(TLS_CASES.iter().map(|c| c.domain));
    let (run, reports) = check_json(&args);
    eprintln!(
        "{} TLS domains audited in {:?}",
        TLS_CASES.len(),
        run.elapsed
    );
    let failures = compare(TLS_CASES, &reports);
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert_eq!(run.code, Some(1));
    let good = &reports["tls-good.test"];
    assert_eq!(status_of(good, "mta_sts"), ["ok"]);
    assert_eq!(status_of(good, "mx"), ["ok"]);
    let expiring = serde_json::to_string(&reports["tls-expiring.test"]).unwrap();
    assert!(
        expiring.contains("expires in 4 days") || expiring.contains("expires in 5 days"),
        "{expiring}"
    );
    let untrusted = serde_json::to_string(&reports["tls-untrusted.test"]).unwrap();
    assert!(
        untrusted.contains(
            "the certificate of mx.tls-untrusted.test is not valid: issued by an untrusted CA"
        ),
        "{untrusted}"
    );
    let wrong = serde_json::to_string(&reports["tls-wrongname.test"]).unwrap();
    assert!(wrong.contains("issued for other host names"), "{wrong}");
    let e404 = serde_json::to_string(&reports["sts-404.test"]).unwrap();
    assert!(e404.contains("HTTP 404"), "{e404}");

    // Without the test CA the good certificate is untrusted too.
    let (_, system) = check_json(&[
        "--resolver",
        &resolver,
        "--selector",
        "s1",
        "--smtp-port",
        &smtp,
        "--https-port",
        &https,
        "tls-good.test",
    ]);
    let got = findings(&system["tls-good.test"]);
    assert_eq!(
        got,
        ["mta_sts.policy_fetch_failed", "mx.cert_invalid"],
        "{system:?}"
    );
    let text = serde_json::to_string(&system["tls-good.test"]).unwrap();
    assert!(
        text.contains("the certificate of mta-sts.tls-good.test is issued by an untrusted CA"),
        "{text}"
    );
}

#[test]
fn a_stopped_dns_server_gives_unknown_never_missing() {
    let mut own = Knot::start(&[Zone::new(
        "test",
        format!("$ORIGIN clean.test.\n{}", baseline("clean.test", &[])),
    )]);
    let resolver = own.resolver();
    let args = [
        "--resolver",
        resolver.as_str(),
        "--selector",
        "s1",
        "--no-smtp",
        "--timeout",
        "300ms",
        "--ip",
        "192.0.2.1",
        "clean.test",
    ];
    let (before, reports) = check_json(&args);
    assert_eq!(before.code, Some(0), "{}", before.stdout);
    assert_eq!(status_of(&reports["clean.test"], "spf"), ["ok"]);

    own.stop();
    let (after, reports) = check_json(&args);
    eprintln!("audit against a stopped server took {:?}", after.elapsed);
    let r = &reports["clean.test"];
    for c in r["checks"].as_array().unwrap() {
        assert_eq!(c["status"], "unknown", "{c}");
        for f in c["findings"].as_array().unwrap() {
            let id = f["id"].as_str().unwrap();
            assert!(id.ends_with(".dns_error"), "{id} from a dead server");
            assert_eq!(f["severity"], "warning");
        }
    }
    let got = findings(r);
    assert!(
        got.contains(&"spf.dns_error".to_string()) && got.contains(&"ptr.dns_error".to_string()),
        "{got:?}"
    );
    assert!(!got.iter().any(|f| f.contains("missing")), "{got:?}");
    assert_eq!(after.code, Some(0), "unknown is not an error finding");
    assert!(
        after.elapsed < Duration::from_secs(10),
        "{:?}",
        after.elapsed
    );
}

#[test]
fn a_silent_dns_server_times_out_as_unknown() {
    // Bound but never answering: every query times out.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = silent.local_addr().unwrap();
    let _tcp = TcpListener::bind(addr);
    let resolver = addr.to_string();
    let (run, reports) = check_json(&[
        "--resolver",
        &resolver,
        "--no-smtp",
        "--timeout",
        "200ms",
        "clean.test",
    ]);
    let r = &reports["clean.test"];
    let statuses: Vec<&str> = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert!(statuses.iter().all(|s| *s == "unknown"), "{statuses:?}");
    let text = serde_json::to_string(r).unwrap();
    assert!(text.contains("timed out"), "{text}");
    assert_eq!(run.code, Some(0));
    drop(silent);
}

#[test]
fn every_catalogue_id_has_a_case() {
    let mut covered: Vec<&str> = Vec::new();
    for c in CASES.iter().chain(OWN_ZONE_CASES).chain(TLS_CASES) {
        covered.extend(c.expect.iter().map(|e| e.split(':').next().unwrap_or(e)));
    }
    // Covered by the tests above rather than the tables.
    covered.extend([
        "spf.ip_not_permitted",
        "ptr.missing",
        "ptr.not_confirmed",
        "ptr.dns_error",
        "dnsbl.listed",
        "dnsbl.blocked",
        "dnsbl.error",
    ]);
    covered.extend(BASELINE_INFO);
    let missing: Vec<&str> = CATALOGUE
        .iter()
        .map(|(id, _, _)| *id)
        .filter(|id| !covered.contains(id))
        .collect();
    assert!(
        missing.is_empty(),
        "catalogue ids without a knot case: {missing:?}"
    );
    // And the severities in the tables are real ones.
    for c in CASES.iter().chain(OWN_ZONE_CASES).chain(TLS_CASES) {
        for e in c.expect {
            if let Some((id, sev)) = e.split_once(':') {
                assert!(["error", "warning", "info"].contains(&sev), "{e}");
                assert_ne!(
                    sev,
                    catalogue_severity(id),
                    "{e}: say the severity only when it differs"
                );
            }
        }
    }
    let _ = Severity::Error;
}
