//! The shipped systemd files, checked by systemd's own tools:
//! `systemd-analyze verify` must be silent, `systemd-analyze security
//! --offline=true` must rate the unit's exposure at most 2.0, and the
//! sysusers/tmpfiles files must apply cleanly to a scratch root.
//!
//! `verify` insists that every `Exec*=` binary exists. The unit names the
//! installed path, /usr/bin/mailcanary, which a test must not write
//! to; so the test verifies a copy of the unit, under the same file name,
//! in which only that path is replaced by the binary cargo just built.
//! Nothing else in the copy differs from the shipped file.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const INSTALLED_BIN: &str = "/usr/bin/mailcanary";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn unit_text() -> String {
    std::fs::read_to_string(repo().join("systemd/mailcanary.service")).unwrap()
}

/// Run a systemd tool; a missing tool fails the test with what to do.
fn systemd_tool(tool: &str, args: &[&str]) -> Output {
    Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!(
            "{tool} cannot run ({e}); install it with scripts/deps.sh (Debian package `systemd`)"
        )
    })
}

/// Write `text` as `mailcanary.service` into a fresh directory, with the
/// installed binary path pointed at the built binary.
fn unit_copy(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mailcanary.service");
    std::fs::write(&path, text.replace(INSTALLED_BIN, common::bin())).unwrap();
    (dir, path)
}

/// `systemd-analyze verify` output (stdout and stderr); empty means clean.
fn verify(text: &str) -> (bool, String) {
    let (_dir, path) = unit_copy(text);
    // --man=no: Documentation= names man:mailcanary(1), which exists only
    // once the package is installed.
    let out = systemd_tool(
        "systemd-analyze",
        &["verify", "--man=no", path.to_str().unwrap()],
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

#[test]
fn the_unit_verifies_clean() {
    let text = unit_text();
    assert_eq!(
        text.matches(INSTALLED_BIN).count(),
        3,
        "ExecStartPre, ExecStart and the first ExecReload run {INSTALLED_BIN}"
    );
    let (ok, said) = verify(&text);
    assert!(
        ok && said.trim().is_empty(),
        "systemd-analyze verify:\n{said}"
    );

    // The check can fail: a misspelt directive and a missing binary (what
    // the shipped path is on a machine without mailcanary installed) are reported.
    let (_, said) = verify(&text.replace("WatchdogSec=", "WatchdogSecs="));
    assert!(said.contains("Unknown key 'WatchdogSecs'"), "{said}");
    let (ok, said) = verify(&text.replace(
        &format!("ExecStart={INSTALLED_BIN}"),
        "ExecStart=/nonexistent/mailcanary",
    ));
    assert!(!ok && said.contains("/nonexistent/mailcanary"), "{said}");
}

#[test]
fn the_unit_exposure_is_at_most_2() {
    let out = systemd_tool(
        "systemd-analyze",
        &[
            "security",
            "--offline=true",
            repo().join("systemd/mailcanary.service").to_str().unwrap(),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level for mailcanary.service:"))
        .unwrap_or_else(|| {
            panic!(
                "no exposure line in:\n{text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let level: f64 = line
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot parse {line:?}"));
    eprintln!("{}", line.trim());
    assert!(
        level <= 2.0,
        "exposure {level} > 2.0; what counts against it:\n{}",
        text.lines()
            .filter(|l| l.contains('✗'))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_unit_runs_the_daemon_as_a_notify_service_with_credentials() {
    let text = unit_text();
    let service: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    for want in [
        "Type=notify",
        "ExecStartPre=/usr/bin/mailcanary config check /etc/mailcanary/mailcanary.toml",
        "ExecStart=/usr/bin/mailcanary run --config /etc/mailcanary/mailcanary.toml",
        "ExecReload=+/usr/bin/nsenter --target $MAINPID --mount /usr/bin/mailcanary config check /etc/mailcanary/mailcanary.toml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "StateDirectory=mailcanary",
        "LoadCredential=mailcanary:/etc/mailcanary/credentials",
        "User=mailcanary",
    ] {
        assert!(service.contains(&want), "the unit lacks {want:?}");
    }
    let watchdog = service
        .iter()
        .find_map(|l| l.strip_prefix("WatchdogSec="))
        .expect("WatchdogSec=");
    assert!(watchdog.ends_with('s') && watchdog != "0s", "{watchdog}");
}

#[test]
fn sysusers_and_tmpfiles_apply_to_a_scratch_root() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    for (src, dst) in [
        ("mailcanary.sysusers.conf", "etc/sysusers.d/mailcanary.conf"),
        ("mailcanary.tmpfiles.conf", "etc/tmpfiles.d/mailcanary.conf"),
    ] {
        std::fs::create_dir_all(r.join(dst).parent().unwrap()).unwrap();
        std::fs::copy(repo().join("systemd").join(src), r.join(dst)).unwrap();
    }
    let root_arg = format!("--root={}", r.display());
    for (tool, args) in [
        ("systemd-sysusers", vec![root_arg.as_str()]),
        ("systemd-tmpfiles", vec!["--create", root_arg.as_str()]),
    ] {
        let out = systemd_tool(tool, &args);
        assert!(
            out.status.success(),
            "{tool}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let passwd = std::fs::read_to_string(r.join("etc/passwd")).unwrap();
    let user = passwd
        .lines()
        .find(|l| l.starts_with("mailcanary:"))
        .unwrap_or_else(|| panic!("no mailcanary user in {passwd}"));
    let fields: Vec<&str> = user.split(':').collect();
    assert_eq!(fields[5], "/var/lib/mailcanary", "{user}");
    assert!(fields[6].ends_with("nologin"), "{user}");
    let group = std::fs::read_to_string(r.join("etc/group")).unwrap();
    let gid: u32 = group
        .lines()
        .find_map(|l| l.strip_prefix("mailcanary:x:"))
        .and_then(|rest| rest.split(':').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no mailcanary group in {group}"));

    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    for (dir, mode, group) in [
        ("etc/mailcanary", 0o750, gid),
        ("etc/mailcanary/probes.d", 0o750, gid),
        ("etc/mailcanary/credentials", 0o700, 0),
    ] {
        let m = std::fs::metadata(r.join(dir)).unwrap_or_else(|e| panic!("{dir}: {e}"));
        assert!(m.is_dir(), "{dir}");
        assert_eq!(m.permissions().mode() & 0o7777, mode, "{dir}");
        assert_eq!((m.uid(), m.gid()), (0, group), "{dir} owner");
    }
}
