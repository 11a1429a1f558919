//! Integration-test harness: the real loopback mail stack and the real
//! mailcanary binary, both on free ports.
//!
//! The stack is shared by all tests of a test binary. `scripts/test.sh`
//! brings it up once and exports `MAILCANARY_STACK` (its directory); without
//! it the first test brings one up under /tmp and a watchdog stops it by PID
//! when the test process exits.

#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod knot;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A running loopback stack, described by its `env` file.
pub struct Stack {
    pub dir: PathBuf,
    pub env: HashMap<String, String>,
}

impl Stack {
    /// The shared stack, started on first use.
    pub fn get() -> &'static Stack {
        static STACK: OnceLock<Stack> = OnceLock::new();
        STACK.get_or_init(|| {
            let dir = match std::env::var("MAILCANARY_STACK") {
                Ok(d) => PathBuf::from(d),
                Err(_) => start_private_stack(),
            };
            let text = std::fs::read_to_string(dir.join("env"))
                .unwrap_or_else(|e| panic!("stack env {}/env: {e}", dir.display()));
            let env = text
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect();
            Stack { dir, env }
        })
    }

    pub fn var(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("stack env has no {key}"))
    }

    pub fn addr(&self, key: &str) -> SocketAddr {
        self.var(key)
            .parse()
            .unwrap_or_else(|e| panic!("{key}={}: {e}", self.var(key)))
    }
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn start_private_stack() -> PathBuf {
    let dir = PathBuf::from(format!("/tmp/mcstack-{}", std::process::id()));
    let out = Command::new(repo().join("tests/stack/up.sh"))
        .arg(&dir)
        .output()
        .expect("run tests/stack/up.sh");
    assert!(
        out.status.success(),
        "tests/stack/up.sh failed (run as root; see {}/log):\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    // Stop the stack by PID when this test process ends, however it ends.
    let _ = Command::new("setsid")
        .arg("sh")
        .arg("-c")
        .arg(format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {down} {dir}; rm -rf {dir}",
            pid = std::process::id(),
            down = repo().join("tests/stack/down.sh").display(),
            dir = dir.display()
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    dir
}

/// A mailcanary daemon started from the built binary.
pub struct Daemon {
    child: Child,
    pub http: SocketAddr,
    pub config: PathBuf,
    logs: Arc<Mutex<Vec<String>>>,
    _dir: Option<tempfile::TempDir>,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_mailcanary")
}

impl Daemon {
    /// Write `config` (with `{dir}` replaced by a fresh directory) and start
    /// `mailcanary run` on it; waits until it serves HTTP.
    pub fn start(config: &str) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mailcanary.toml");
        std::fs::write(
            &path,
            config.replace("{dir}", &dir.path().display().to_string()),
        )
        .unwrap();
        let mut d = Daemon::start_at(&path);
        d._dir = Some(dir);
        d
    }

    /// Start `mailcanary run --config path` with JSON logs.
    pub fn start_at(path: &Path) -> Daemon {
        let mut child = Command::new(bin())
            .args(["--log-format", "json", "run", "--config"])
            .arg(path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mailcanary");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = json_field(&line, "metrics") {
                    let _ = tx.send(url);
                }
                sink.lock().unwrap().push(line);
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "mailcanary did not start; logs:\n{}",
                    logs.lock().unwrap().join("\n")
                );
            }
        };
        let http = url
            .trim_start_matches("http://")
            .trim_end_matches("/metrics")
            .parse()
            .expect("metrics URL");
        Daemon {
            child,
            http,
            config: path.to_path_buf(),
            logs,
            _dir: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args(["-s", sig, &self.pid().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -s {sig} failed");
    }

    /// Wait for the process to exit, at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// Wait until a log line contains `needle`.
    pub fn wait_log(&self, needle: &str, limit: Duration) -> bool {
        wait_until(limit, || {
            self.logs.lock().unwrap().iter().any(|l| l.contains(needle))
        })
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.http, path)
    }

    /// The value of one sample on `/metrics`, e.g. `mailcanary_inbox_up{seed="a"}`.
    pub fn metric(&self, series: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics");
        body.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A string field of a JSON log line.
pub fn json_field(line: &str, key: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    v.get(key)?.as_str().map(str::to_string)
}

pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A minimal HTTP/1.1 GET; returns status and body.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let chunked = head
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}

/// Percent-encode a query-string value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Run an instant PromQL query against the stack's Prometheus; returns the
/// `data.result` array.
pub fn prom_query(stack: &Stack, query: &str) -> Vec<serde_json::Value> {
    let (status, body) = http_get(
        stack.addr("PROMETHEUS"),
        &format!("/api/v1/query?query={}", urlencode(query)),
    );
    assert_eq!(status, 200, "prometheus query {query}: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("prometheus JSON");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}
