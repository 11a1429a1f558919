//! The systemd notification protocol against the real binary: the test
//! plays the service manager, binding the Unix datagram socket that
//! `NOTIFY_SOCKET` names and reading what the daemon reports.

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{bin, wait_until, Daemon};

const MINIMAL: &str = r#"
[daemon]
state_dir = "{dir}/state"
shutdown_grace = "3s"

[http]
listen = "127.0.0.1:0"
"#;

/// A bound notification socket and the datagrams received on it, in order.
struct Manager {
    messages: Arc<Mutex<Vec<String>>>,
    /// The `NOTIFY_SOCKET` value: a path, or `@name` for the abstract namespace.
    address: String,
    _dir: tempfile::TempDir,
}

impl Manager {
    fn bind(sock: UnixDatagram, address: String, dir: tempfile::TempDir) -> Manager {
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let sink = messages.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends when the test process exits; the socket lives in the thread.
            loop {
                match sock.recv(&mut buf) {
                    Ok(n) => sink
                        .lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&buf[..n]).into_owned()),
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(e) => panic!("notify socket: {e}"),
                }
            }
        });
        Manager {
            messages,
            address,
            _dir: dir,
        }
    }

    /// A socket at a filesystem path, as systemd uses (`/run/systemd/notify`).
    fn path() -> Manager {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        Manager::bind(sock, path.display().to_string(), dir)
    }

    /// A socket in the Linux abstract namespace (`NOTIFY_SOCKET=@name`).
    fn abstract_namespace() -> Manager {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("mailcanary-test-notify-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).unwrap();
        Manager::bind(sock, format!("@{name}"), tempfile::tempdir().unwrap())
    }

    fn messages(&self) -> Vec<String> {
        self.messages.lock().unwrap().clone()
    }

    /// Wait until `n` messages hold `line` as one of their lines.
    fn wait_for(&self, line: &str, n: usize, limit: Duration) -> bool {
        wait_until(limit, || self.count(line) >= n)
    }

    fn count(&self, line: &str) -> usize {
        self.messages()
            .iter()
            .filter(|m| m.lines().any(|l| l == line))
            .count()
    }
}

/// The value of `KEY=` in a message.
fn field<'a>(message: &'a str, key: &str) -> Option<&'a str> {
    message
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

#[test]
fn ready_reloading_and_stopping_reach_the_notify_socket() {
    let m = Manager::path();
    let mut d = Daemon::start_custom(MINIMAL, |path| {
        let mut cmd = common::command(path);
        cmd.env("NOTIFY_SOCKET", &m.address);
        cmd
    });
    assert!(
        m.wait_for("READY=1", 1, Duration::from_secs(5)),
        "no READY=1; got {:?}; logs:\n{}",
        m.messages(),
        d.logs()
    );
    let ready = m.messages()[0].clone();
    let status = field(&ready, "STATUS").expect("READY=1 comes with STATUS=");
    assert_eq!(
        status,
        format!(
            "serving http://{}/metrics; 0 probes, 0 seeds, 0 domains",
            d.http
        )
    );
    // READY=1 means served: /metrics answers by then.
    assert_eq!(d.get("/metrics").0, 200);

    d.signal("HUP");
    assert!(
        m.wait_for("READY=1", 2, Duration::from_secs(5)),
        "no READY=1 after the reload; got {:?}",
        m.messages()
    );
    let msgs = m.messages();
    let reloading = msgs
        .iter()
        .position(|x| x.lines().any(|l| l == "RELOADING=1"))
        .unwrap_or_else(|| panic!("no RELOADING=1 in {msgs:?}"));
    let monotonic: u64 = field(&msgs[reloading], "MONOTONIC_USEC")
        .unwrap_or_else(|| panic!("RELOADING=1 without MONOTONIC_USEC=: {msgs:?}"))
        .parse()
        .expect("MONOTONIC_USEC is a number");
    assert!(monotonic > 0);
    let ready_again = msgs
        .iter()
        .rposition(|x| x.lines().any(|l| l == "READY=1"))
        .unwrap();
    assert!(
        reloading < ready_again,
        "READY=1 follows RELOADING=1: {msgs:?}"
    );

    d.signal("TERM");
    let status = d.wait_exit(Duration::from_secs(5)).expect("exits");
    assert!(status.success(), "{status:?}");
    assert!(
        m.wait_for("STOPPING=1", 1, Duration::from_secs(2)),
        "no STOPPING=1; got {:?}",
        m.messages()
    );
    let msgs = m.messages();
    assert!(
        msgs.last().unwrap().lines().any(|l| l == "STOPPING=1"),
        "STOPPING=1 is the last message: {msgs:?}"
    );
    assert_eq!(m.count("READY=1"), 2, "{msgs:?}");
    assert_eq!(m.count("RELOADING=1"), 1, "{msgs:?}");
}

#[test]
fn a_failed_reload_still_ends_with_ready() {
    let m = Manager::path();
    let d = Daemon::start_custom(MINIMAL, |path| {
        let mut cmd = common::command(path);
        cmd.env("NOTIFY_SOCKET", &m.address);
        cmd
    });
    assert!(m.wait_for("READY=1", 1, Duration::from_secs(5)));
    std::fs::write(&d.config, "[http]\nlisten = 1\n").unwrap();
    d.signal("HUP");
    assert!(
        m.wait_for("READY=1", 2, Duration::from_secs(5)),
        "systemd would wait for READY=1 after RELOADING=1; got {:?}",
        m.messages()
    );
    let last = m.messages().last().unwrap().clone();
    assert!(
        field(&last, "STATUS").is_some_and(|s| s.starts_with("reload failed")),
        "{last:?}"
    );
}

#[test]
fn an_abstract_namespace_socket_works_too() {
    let m = Manager::abstract_namespace();
    let d = Daemon::start_custom(MINIMAL, |path| {
        let mut cmd = common::command(path);
        cmd.env("NOTIFY_SOCKET", &m.address);
        cmd
    });
    assert!(
        m.wait_for("READY=1", 1, Duration::from_secs(5)),
        "no READY=1 on {}; got {:?}; logs:\n{}",
        m.address,
        m.messages(),
        d.logs()
    );
}

/// systemd sets WATCHDOG_PID to the main PID; `exec` keeps the shell's PID.
fn with_watchdog(path: &std::path::Path, socket: &str, usec: u32, pid: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "WATCHDOG_PID={pid} exec \"$0\" --log-format json run --config \"$1\""
        ))
        .arg(bin())
        .arg(path)
        .env("NOTIFY_SOCKET", socket)
        .env("WATCHDOG_USEC", usec.to_string());
    cmd
}

#[test]
fn watchdog_pings_at_half_the_interval() {
    let m = Manager::path();
    let d = Daemon::start_custom(MINIMAL, |path| {
        with_watchdog(path, &m.address, 400_000, "$$")
    });
    assert!(m.wait_for("READY=1", 1, Duration::from_secs(5)));
    // 400 ms watchdog → a ping every 200 ms: 5 take about 1 s (3 s allowed
    // on a loaded machine), and never less than 4 intervals.
    let t0 = std::time::Instant::now();
    let before = m.count("WATCHDOG=1");
    assert!(
        m.wait_for("WATCHDOG=1", before + 5, Duration::from_secs(3)),
        "{} pings in {:?}; logs:\n{}",
        m.count("WATCHDOG=1") - before,
        t0.elapsed(),
        d.logs()
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(700),
        "pings come every ~200 ms, not faster: 5 in {:?}",
        t0.elapsed()
    );
    assert!(
        d.logs().contains("systemd watchdog enabled"),
        "{}",
        d.logs()
    );
}

#[test]
fn no_watchdog_pings_for_another_pid() {
    let m = Manager::path();
    // WATCHDOG_PID names a different process (PID 1): the watchdog is not ours.
    let d = Daemon::start_custom(MINIMAL, |path| {
        with_watchdog(path, &m.address, 200_000, "1")
    });
    assert!(m.wait_for("READY=1", 1, Duration::from_secs(5)));
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(m.count("WATCHDOG=1"), 0, "{:?}", m.messages());
    assert!(!d.logs().contains("systemd watchdog enabled"));
}
