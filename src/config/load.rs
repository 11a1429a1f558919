//! Reading the files: the main config and its drop-in probe files, parsed
//! by serde into the raw structs, then resolved section by section by the
//! checks in [`super::check`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;

use super::check::Check;
use super::diag::{Diagnostic, Source};
use super::model::*;
use super::raw::{RawConfig, RawProbeFile};
use super::web;

/// Default `daemon.run_detail`: runs in full for 4 days. At 1,000 seeds
/// probed every minute that is about 1.2 GiB; beyond it, counts
/// (docs/store.md).
const DEFAULT_RUN_DETAIL: Duration = Duration::from_secs(4 * 86_400);
/// Shortest `daemon.run_detail`: the support view's details are the last
/// hour's runs.
const MIN_RUN_DETAIL: Duration = Duration::from_secs(3_600);

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read at all.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The files were read but have problems; each names file:line:col and the key.
    #[error("{}", join_lines(.0))]
    Invalid(Vec<Diagnostic>),
}

fn join_lines(d: &[Diagnostic]) -> String {
    d.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Load and check the main config file and its drop-in probe files.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let main = read(path)?;
    let mut problems = Vec::new();
    let raw: RawConfig = match toml::from_str(&main.text) {
        Ok(raw) => raw,
        Err(e) => return Err(ConfigError::Invalid(vec![main.toml_error(&e)])),
    };
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let mut ctx = Check {
        base: &base,
        problems: &mut problems,
        warnings: Vec::new(),
    };

    let daemon = raw.daemon.unwrap_or_default();
    let state_dir = ctx.path(
        &daemon
            .state_dir
            .map(Spanned::into_inner)
            .unwrap_or_else(|| PathBuf::from("/var/lib/mailcanary")),
    );
    let shutdown_grace = daemon
        .shutdown_grace
        .map_or(Duration::from_secs(10), |d| d.0);
    let daemon_history = daemon
        .history
        .map_or(Duration::from_secs(30 * 86_400), |d| d.0);
    // Runs in full: at least the support view's last hour and a late
    // arrival's grace; never longer than the history itself.
    let run_detail = match daemon.run_detail {
        None => DEFAULT_RUN_DETAIL.min(daemon_history),
        Some(d) if d.get_ref().0 < MIN_RUN_DETAIL => {
            ctx.problems.push(main.at_value(
                &d,
                "daemon.run_detail",
                format!(
                    "{} is too short: the support view reads the last hour of runs; use at least \"1h\"",
                    humantime::format_duration(d.get_ref().0)
                ),
            ));
            MIN_RUN_DETAIL
        }
        Some(d) => d.get_ref().0.min(daemon_history),
    };
    let raw_dns = raw.dns.unwrap_or_default();
    let dns = Dns {
        resolver: raw_dns
            .resolver
            .and_then(|r| match r.get_ref().parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    ctx.problems.push(main.at_value(
                        &r,
                        "dns.resolver",
                        format!(
                            "{:?} is not an address:port, e.g. \"127.0.0.1:53\"",
                            r.get_ref()
                        ),
                    ));
                    None
                }
            }),
        timeout: raw_dns.timeout.map_or(Duration::from_secs(5), |d| d.0),
    };
    let raw_http = raw.http.unwrap_or_default();
    let web = raw_http.web_config_file.as_ref().and_then(|f| {
        let path = ctx.path(f.get_ref());
        if !path.is_file() {
            ctx.problems.push(main.at_value(
                f,
                "http.web_config_file",
                format!(
                    "cannot read web config file {}: {}",
                    path.display(),
                    match std::fs::metadata(&path) {
                        Ok(_) => "not a regular file".to_string(),
                        Err(e) => e.to_string(),
                    }
                ),
            ));
            return None;
        }
        match web::load(&path) {
            Ok(loaded) => {
                ctx.warnings.extend(loaded.warnings);
                Some(Arc::new(loaded.config))
            }
            Err(problems) => {
                ctx.problems.extend(problems);
                None
            }
        }
    });
    let listen = match raw_http.listen {
        None => SocketAddr::from(([127, 0, 0, 1], DEFAULT_HTTP_PORT)),
        Some(s) => match s.get_ref().parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                ctx.problems.push(main.at_value(
                    &s,
                    "http.listen",
                    format!(
                        "{:?} is not an address:port, e.g. \"127.0.0.1:{DEFAULT_HTTP_PORT}\"",
                        s.get_ref()
                    ),
                ));
                SocketAddr::from(([127, 0, 0, 1], DEFAULT_HTTP_PORT))
            }
        },
    };
    if let (Some(w), Some(f)) = (&web, &raw_http.web_config_file) {
        if !w.users.is_empty() && w.tls.is_none() && !listen.ip().is_loopback() {
            ctx.warnings.push(main.at_value(
                f,
                "http.web_config_file",
                format!(
                    "basic auth without TLS on {listen}: passwords cross the network in clear text; add tls_server_config"
                ),
            ));
        }
    }

    // Names as declared, so a probe naming a sender or seed that has its own
    // problems is not reported a second time as unknown.
    let sender_names: Vec<String> = raw.senders.keys().cloned().collect();
    let seed_names: Vec<String> = raw.seeds.keys().cloned().collect();
    // (sender, seed) of each bounce mailbox: probes must not send to them.
    let bounce_mailboxes: Vec<(String, String)> = raw
        .senders
        .iter()
        .filter_map(|(n, s)| {
            let b = s.get_ref().bounce_mailbox.as_ref()?;
            Some((n.clone(), b.get_ref().clone()))
        })
        .collect();
    let mut senders = BTreeMap::new();
    for (name, s) in raw.senders {
        ctx.name(&main, &s, "senders", &name);
        if let Some(sender) = ctx.sender(&main, &name, s.into_inner(), &seed_names) {
            senders.insert(name, sender);
        }
    }
    let mut seeds = BTreeMap::new();
    for (name, s) in raw.seeds {
        ctx.name(&main, &s, "seeds", &name);
        if let Some(seed) = ctx.seed(&main, "seeds", &name, s.into_inner()) {
            seeds.insert(name, seed);
        }
    }
    let mailboxes = ctx.app_mailboxes(&main, raw.reports, raw.bounces);

    // Probes: from the main file, then from each drop-in file in name order.
    let mut sources = vec![(main, raw.probes)];
    if let Some(dir) = daemon.probes_dir {
        let dir_path = ctx.path(dir.get_ref());
        match drop_in_files(&dir_path) {
            Ok(files) => {
                for f in files {
                    let src = read(&f)?;
                    match toml::from_str::<RawProbeFile>(&src.text) {
                        Ok(pf) => sources.push((src, pf.probes)),
                        Err(e) => ctx.problems.push(src.toml_error(&e)),
                    }
                }
            }
            Err(e) => ctx.problems.push(sources[0].0.at_value(
                &dir,
                "daemon.probes_dir",
                format!("cannot list {}: {e}", dir_path.display()),
            )),
        }
    }
    let mut probes: BTreeMap<String, (Probe, String)> = BTreeMap::new();
    for (src, table) in &sources {
        for (name, p) in table {
            ctx.name(src, p, "probes", name);
            let here = {
                let (l, c) = src.position(p.span().start);
                format!("{}:{l}:{c}", src.path.display())
            };
            if let Some((_, first)) = probes.get(name) {
                ctx.problems.push(src.at_value(
                    p,
                    &format!("probes.{name}"),
                    format!("probe {name:?} is already defined at {first}"),
                ));
                continue;
            }
            if let Some(probe) = ctx.probe(
                src,
                name,
                p.get_ref(),
                &sender_names,
                &seed_names,
                &bounce_mailboxes,
            ) {
                probes.insert(name.clone(), (probe, here));
            }
        }
    }

    let mut domains = BTreeMap::new();
    for (name, d) in &raw.domains {
        if let Some(domain) = ctx.domain(&sources[0].0, name, d) {
            domains.insert(name.clone(), domain);
        }
    }

    let warnings = std::mem::take(&mut ctx.warnings);
    if !problems.is_empty() {
        return Err(ConfigError::Invalid(problems));
    }
    Ok(Config {
        path: path.to_path_buf(),
        daemon: Daemon {
            state_dir,
            shutdown_grace,
            history: daemon_history,
            run_detail,
        },
        http: Http { listen, web },
        dns,
        senders,
        seeds,
        probes: probes.into_iter().map(|(k, (p, _))| (k, p)).collect(),
        domains,
        mailboxes,
        warnings,
    })
}

fn read(path: &Path) -> Result<Source, ConfigError> {
    std::fs::read_to_string(path)
        .map(|text| Source::new(path, text))
        .map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })
}

/// `*.toml` files of a drop-in directory, sorted by name so the load order is stable.
fn drop_in_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        // Not `is_file`: a dangling link or a link loop is then an error that
        // names the file when it is read, not a file silently skipped.
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && !p.is_dir())
        .collect();
    files.sort();
    Ok(files)
}

/// Whether a URL's host is a loopback address or `localhost`.
pub(in crate::config) fn is_loopback_host(u: &reqwest::Url) -> bool {
    let Some(host) = u.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Configured names become metric label values, so they are kept short and plain.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
}

pub(crate) fn list(names: &[String]) -> String {
    if names.is_empty() {
        "(none)".to_string()
    } else {
        names.join(", ")
    }
}
