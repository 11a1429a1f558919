//! `mailcanary check`: one-shot DNS audit of domains (docs/dns-audit.md's
//! "DNS audit: `mailcanary check`" reference: arguments, JSON, finding ids).
//!
//! Exit codes: 0 when no finding has error severity, 1 when one does, 2 on a
//! usage error (clap's own errors exit 2 as well). A check whose answers could
//! not be obtained is `unknown` with a `*.dns_error` finding (a warning): it
//! does not by itself make the exit code 1.
//!
//! JSON: one domain prints the object `{"domain", "checks"}` of docs/dns-audit.md;
//! several domains print an array of those objects, in the order given.

use std::io::{IsTerminal, Write};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use super::domain;
use super::mx::Role;
use super::net::{self, TlsClient};
use super::run::{AuditOptions, Auditor, DomainReport, SmtpProbe, DEFAULT_PARALLEL_DOMAINS};
use super::{Severity, Status};
use crate::dns::{DnsLookup, ResolverSettings, DEFAULT_MAX_IN_FLIGHT};

/// Exit code: no error-severity finding.
pub const EXIT_OK: u8 = 0;
/// Exit code: at least one error-severity finding.
pub const EXIT_FINDINGS: u8 = 1;
/// Exit code: usage or setup error.
pub const EXIT_USAGE: u8 = 2;

/// Output format of `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Findings grouped per domain and check, with a hint each.
    Text,
    /// The JSON of the `check` reference (docs/dns-audit.md): an object per domain.
    Json,
}

/// Arguments of `mailcanary check`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// Domains to audit.
    #[arg(required = true, value_name = "DOMAIN")]
    pub domains: Vec<String>,
    /// DKIM selector to check (repeatable); without one, DKIM is not checked.
    #[arg(long = "selector", value_name = "SEL")]
    pub selectors: Vec<String>,
    /// Sending IP (repeatable): SPF evaluation, PTR/FCrDNS, IP blocklists.
    #[arg(long = "ip", value_name = "ADDR")]
    pub ips: Vec<IpAddr>,
    /// DNS server to ask, `HOST:PORT` or `HOST` (port 53); default: /etc/resolv.conf.
    #[arg(long, value_name = "HOST:PORT")]
    pub resolver: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: OutputFormat,
    /// The domains must receive mail (support@, replies): a missing or null MX is an error.
    #[arg(long)]
    pub receiving: bool,
    /// Blocklist zone for the sending IPs, e.g. zen.spamhaus.org (repeatable).
    #[arg(long = "dnsbl", value_name = "ZONE")]
    pub dnsbl: Vec<String>,
    /// Blocklist zone for the domains, e.g. dbl.spamhaus.org (repeatable).
    #[arg(long = "dnsbl-domain", value_name = "ZONE")]
    pub dnsbl_domain: Vec<String>,
    /// Time allowed for each network step: a DNS attempt, a connection, a TLS handshake.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Do not connect to the MX hosts (no STARTTLS or certificate check).
    #[arg(long)]
    pub no_smtp: bool,
    /// Port of the STARTTLS probe of each MX host.
    #[arg(long, value_name = "PORT", default_value_t = 25)]
    pub smtp_port: u16,
    /// Host name given in EHLO (default: this host's name).
    #[arg(long, value_name = "NAME")]
    pub helo: Option<String>,
    /// Port of the MTA-STS policy host (`https://mta-sts.DOMAIN`).
    #[arg(long, value_name = "PORT", default_value_t = 443)]
    pub https_port: u16,
    /// Trust only the CA certificates in this PEM file (STARTTLS and MTA-STS);
    /// default: the system's trust store.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Warn when an MX certificate expires within this many days.
    #[arg(long, value_name = "DAYS", default_value_t = 14)]
    pub cert_warn_days: u32,
    /// DNS queries in flight at most.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_IN_FLIGHT)]
    pub concurrency: usize,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("{e} (write e.g. \"2s\" or \"500ms\")"))?;
    if d.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(d)
}

/// Why the arguments cannot be used (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    /// A DOMAIN argument is not a host name.
    #[error("`{0}` is not a domain name")]
    Domain(String),
    /// A selector is not a DNS label sequence.
    #[error("--selector `{0}` is not a valid DKIM selector")]
    Selector(String),
    /// A blocklist zone is not a DNS name.
    #[error("`{0}` is not a valid blocklist zone")]
    Zone(String),
    /// `--resolver` cannot be turned into an address.
    #[error("--resolver `{0}`: expected IP, IP:PORT or HOST:PORT")]
    Resolver(String),
    /// `--helo` is not a host name.
    #[error("--helo `{0}` is not a host name")]
    Helo(String),
    /// The resolver could not be built.
    #[error(transparent)]
    Lookup(#[from] crate::dns::LookupSetupError),
    /// The TLS trust store could not be built.
    #[error(transparent)]
    Tls(#[from] net::NetSetupError),
}

/// Resolves `--resolver`: `IP`, `IP:PORT`, `[IPv6]:PORT`, or `HOST:PORT`
/// (the host through the system resolver).
pub fn parse_resolver(s: &str) -> Result<SocketAddr, UsageError> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = s
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Ok(SocketAddr::new(ip, 53));
    }
    let with_port = if s.contains(':') {
        s.to_owned()
    } else {
        format!("{s}:53")
    };
    with_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| UsageError::Resolver(s.to_owned()))
}

fn is_selector(s: &str) -> bool {
    domain::is_valid_name(s)
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Checks the arguments and builds what the audit needs.
pub fn prepare(
    args: &CheckArgs,
) -> Result<(Vec<String>, ResolverSettings, Option<PathBuf>, AuditOptions), UsageError> {
    let mut domains = Vec::new();
    for d in &args.domains {
        let n = domain::normalize(d.trim());
        if !domain::is_host_name(&n) {
            return Err(UsageError::Domain(d.clone()));
        }
        if !domains.contains(&n) {
            domains.push(n);
        }
    }
    for s in &args.selectors {
        if !is_selector(s) {
            return Err(UsageError::Selector(s.clone()));
        }
    }
    for z in args.dnsbl.iter().chain(&args.dnsbl_domain) {
        if !domain::is_valid_name(z) {
            return Err(UsageError::Zone(z.clone()));
        }
    }
    let helo = match &args.helo {
        Some(h) if domain::is_host_name(h) => h.clone(),
        Some(h) => return Err(UsageError::Helo(h.clone())),
        None => net::default_helo(),
    };
    let server = args.resolver.as_deref().map(parse_resolver).transpose()?;
    let settings = ResolverSettings {
        server,
        timeout: args.timeout,
        attempts: 2,
        max_in_flight: args.concurrency.max(1),
    };
    let mut ips = Vec::new();
    for ip in &args.ips {
        if !ips.contains(ip) {
            ips.push(*ip);
        }
    }
    let opts = AuditOptions {
        selectors: args.selectors.clone(),
        ips,
        role: if args.receiving {
            Role::Receiving
        } else {
            Role::Sending
        },
        dnsbl_ip_zones: args.dnsbl.clone(),
        dnsbl_domain_zones: args.dnsbl_domain.clone(),
        smtp: (!args.no_smtp).then_some(SmtpProbe {
            port: args.smtp_port,
            helo,
        }),
        https_port: args.https_port,
        cert_warn_days: args.cert_warn_days,
        timeout: args.timeout,
        parallel_domains: DEFAULT_PARALLEL_DOMAINS,
    };
    Ok((domains, settings, args.ca_file.clone(), opts))
}

/// Runs `mailcanary check`; returns the exit code.
pub async fn run(args: CheckArgs) -> u8 {
    let prepared = prepare(&args).and_then(|(domains, settings, ca, opts)| {
        let lookup = DnsLookup::new(&settings)?;
        let tls = match &ca {
            Some(path) => TlsClient::from_pem_file(path)?,
            None => TlsClient::system()?,
        };
        Ok((domains, Auditor::new(lookup, tls, opts)))
    });
    let (domains, auditor) = match prepared {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let reports = auditor.audit(&domains).await;
    let mut out = std::io::stdout().lock();
    let written = match args.format {
        OutputFormat::Json => write_json(&mut out, &reports),
        OutputFormat::Text => {
            let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            write_text(&mut out, &reports, colour)
        }
    };
    if let Err(e) = written.and_then(|()| out.flush()) {
        // A closed pipe (`| head`) is not worth a message.
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: cannot write the report: {e}");
        }
    }
    exit_code(&reports)
}

/// [`run`] on a fresh tokio runtime, for `main`.
pub fn run_blocking(args: CheckArgs) -> u8 {
    // An audit waits on the network, not the CPU: one thread keeps every
    // lookup in flight without cross-thread wake-ups (measured: ~40 % less
    // CPU than the multi-threaded runtime on the checkdmarc bench).
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(run(args)),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            EXIT_USAGE
        }
    }
}

/// 1 when any finding has error severity, else 0.
pub fn exit_code(reports: &[DomainReport]) -> u8 {
    if reports.iter().any(DomainReport::has_error) {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    }
}

/// One object for one domain, an array for several.
pub fn write_json(out: &mut impl Write, reports: &[DomainReport]) -> std::io::Result<()> {
    let text = match reports {
        [one] => serde_json::to_string_pretty(one),
        many => serde_json::to_string_pretty(many),
    }
    .map_err(std::io::Error::other)?;
    writeln!(out, "{text}")
}

struct Paint(bool);

impl Paint {
    fn wrap(&self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
    fn status(&self, s: Status) -> String {
        let code = match s {
            Status::Ok => "32",
            Status::Warning => "33",
            Status::Error => "31;1",
            Status::Unknown => "35",
        };
        self.wrap(code, &format!("{:<7}", s.as_str()))
    }
    fn severity(&self, s: Severity) -> String {
        let code = match s {
            Severity::Error => "31;1",
            Severity::Warning => "33",
            Severity::Info => "2",
        };
        self.wrap(code, &format!("{:<7}", s.as_str()))
    }
}

/// Findings grouped per domain and check, each with its hint.
pub fn write_text(
    out: &mut impl Write,
    reports: &[DomainReport],
    colour: bool,
) -> std::io::Result<()> {
    let paint = Paint(colour);
    let (mut errors, mut warnings, mut unknown) = (0usize, 0usize, 0usize);
    for (i, r) in reports.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        writeln!(out, "{}", paint.wrap("1", &r.domain))?;
        for c in &r.checks {
            let record = c
                .record
                .as_deref()
                .map(|t| crate::text::excerpt(t, 70))
                .unwrap_or_default();
            writeln!(
                out,
                "  {:<8} {} {}",
                c.check.as_str(),
                paint.status(c.status),
                record
            )?;
            if c.status == Status::Unknown {
                unknown += 1;
            }
            for f in &c.findings {
                match f.severity {
                    Severity::Error => errors += 1,
                    Severity::Warning => warnings += 1,
                    Severity::Info => {}
                }
                writeln!(
                    out,
                    "    {} {}  {}",
                    paint.severity(f.severity),
                    f.id,
                    f.message
                )?;
                writeln!(out, "            {} {}", paint.wrap("2", "hint:"), f.hint)?;
            }
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "{} {}, {} {}, {} unknown in {} {}",
        errors,
        if errors == 1 { "error" } else { "errors" },
        warnings,
        if warnings == 1 { "warning" } else { "warnings" },
        unknown,
        reports.len(),
        if reports.len() == 1 {
            "domain"
        } else {
            "domains"
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Check, CheckResult, Finding};

    fn report(domain: &str, findings: Vec<Finding>) -> DomainReport {
        DomainReport {
            domain: domain.into(),
            checks: vec![CheckResult::new(
                Check::Spf,
                Some("v=spf1 -all".into()),
                findings,
            )],
            spf_lookups: None,
            dkim_key_bits: vec![],
            dmarc_policy: None,
            dnsbl: vec![],
        }
    }

    #[test]
    fn json_is_an_object_for_one_domain_and_an_array_for_several() {
        let one = vec![report(
            "a.example",
            vec![Finding::new("spf.loop", "m", "h")],
        )];
        let mut buf = Vec::new();
        write_json(&mut buf, &one).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"domain": "a.example", "checks": [{
                "check": "spf", "status": "error", "record": "v=spf1 -all",
                "findings": [{"id": "spf.loop", "severity": "error", "message": "m", "hint": "h"}]
            }]})
        );
        let two = vec![one[0].clone(), report("b.example", vec![])];
        let mut buf = Vec::new();
        write_json(&mut buf, &two).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(v[1]["domain"], "b.example");
        assert_eq!(v[1]["checks"][0]["status"], "ok");
        assert_eq!(exit_code(&two), EXIT_FINDINGS);
        assert_eq!(exit_code(&two[1..]), EXIT_OK);
    }

    #[test]
    fn text_groups_by_domain_and_check() {
        let r = vec![report(
            "a.example",
            vec![Finding::new("spf.no_all", "no all", "add -all")],
        )];
        let mut buf = Vec::new();
        write_text(&mut buf, &r, false).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(
            text.starts_with("a.example\n  spf      warning v=spf1 -all\n"),
            "{text}"
        );
        assert!(
            text.contains("    warning spf.no_all  no all\n            hint: add -all\n"),
            "{text}"
        );
        assert!(
            text.ends_with("0 errors, 1 warning, 0 unknown in 1 domain\n"),
            "{text}"
        );
        assert!(!text.contains('\x1b'));
        let mut buf = Vec::new();
        write_text(&mut buf, &r, true).unwrap();
        assert!(String::from_utf8(buf).unwrap().contains("\x1b[33m"));
    }

    #[test]
    fn resolver_argument() {
        assert_eq!(
            parse_resolver("127.0.0.1:5353").unwrap(),
            "127.0.0.1:5353".parse().unwrap()
        );
        assert_eq!(
            parse_resolver("192.0.2.53").unwrap(),
            "192.0.2.53:53".parse().unwrap()
        );
        assert_eq!(
            parse_resolver("[::1]:53").unwrap(),
            "[::1]:53".parse().unwrap()
        );
        assert_eq!(parse_resolver("::1").unwrap(), "[::1]:53".parse().unwrap());
        assert!(parse_resolver("no such host.invalid:53").is_err());
    }

    #[test]
    fn selectors() {
        assert!(is_selector("s1"));
        assert!(is_selector("google._sub"));
        assert!(!is_selector("a b"));
        assert!(!is_selector("a..b"));
    }
}
