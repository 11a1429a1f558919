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

    /// Run `knotc` on the stack's knot (zone-begin/zone-set/zone-commit, zone-reload...).
    pub fn knotc(&self, args: &[&str]) {
        let out = Command::new("knotc")
            .args(["-b", "-s", self.var("KNOT_SOCKET")])
            .args(args)
            .output()
            .expect("knotc");
        assert!(
            out.status.success(),
            "knotc {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stop, start, pause, continue one service (tests/stack/ctl.sh), or flush Postfix.
    pub fn ctl(&self, args: &[&str]) {
        let ok = Command::new(repo().join("tests/stack/ctl.sh"))
            .arg(&self.dir)
            .args(args)
            .status()
            .expect("tests/stack/ctl.sh")
            .success();
        assert!(ok, "ctl.sh {args:?} failed");
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

/// `mailcanary --log-format json run --config path`.
pub fn command(path: &Path) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(["--log-format", "json", "run", "--config"])
        .arg(path);
    cmd
}

impl Daemon {
    /// Write `config` (with `{dir}` replaced by a fresh directory) and start
    /// `mailcanary run` on it; waits until it serves HTTP.
    pub fn start(config: &str) -> Daemon {
        Daemon::start_custom(config, command)
    }

    /// Start `mailcanary run --config path` with JSON logs.
    pub fn start_at(path: &Path) -> Daemon {
        Daemon::spawn(command(path), path)
    }

    /// Like [`Daemon::start`], with the command line made by `make` from the
    /// config path (to set environment variables, or run through a wrapper).
    pub fn start_custom(config: &str, make: impl FnOnce(&Path) -> Command) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mailcanary.toml");
        std::fs::write(
            &path,
            config.replace("{dir}", &dir.path().display().to_string()),
        )
        .unwrap();
        let mut d = Daemon::spawn(make(&path), &path);
        d._dir = Some(dir);
        d
    }

    /// Spawn `cmd` and wait until the daemon logs its metrics URL.
    fn spawn(mut cmd: Command, path: &Path) -> Daemon {
        let mut child = cmd
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
                // Logged first, so the start line is in `logs()` once `start` returns.
                let url = json_field(&line, "metrics");
                sink.lock().unwrap().push(line);
                if let Some(url) = url {
                    let _ = tx.send(url);
                }
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
            .trim_start_matches("https://")
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
    /// Labels match in any order.
    pub fn metric(&self, series: &str) -> Option<f64> {
        let want = parse_sample(series)?;
        let (_, body) = self.get("/metrics");
        body.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
            let (sample, value) = l.rsplit_once(' ')?;
            (parse_sample(sample)? == want).then(|| value.parse().ok())?
        })
    }
}

/// `name{a="1",b="2"}` → (name, sorted labels). Label values here never hold `,` or `"`.
fn parse_sample(s: &str) -> Option<(String, Vec<(String, String)>)> {
    let (name, rest) = match s.split_once('{') {
        Some((n, r)) => (n, r.strip_suffix('}')?),
        None => (s, ""),
    };
    let mut labels: Vec<(String, String)> = rest
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((k.to_string(), v.trim_matches('"').to_string()))
        })
        .collect::<Option<_>>()?;
    labels.sort();
    Some((name.to_string(), labels))
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

/// A daemon config for the stack: senders `ok` (authorised relay, signs
/// with the stack's DKIM key), `bad` (relay outside SPF, unsigned), seeds
/// `imap1` (seed1, IMAP plain), `imaps2` (seed2, IMAPS with the stack CA),
/// `md3` / `md4` (seed3 / seed4 by Maildir) and `void` (void@, whose Sieve
/// discards, watched in seed4's Maildir). `probes` is appended as is.
pub fn stack_config(stack: &Stack, probes: &str) -> String {
    let pw = stack.dir.join("seed-password");
    if !pw.exists() {
        std::fs::write(&pw, format!("{}\n", stack.var("SEED_PASS"))).unwrap();
    }
    let relay_pw = stack.dir.join("relay-password");
    if !relay_pw.exists() {
        std::fs::write(&relay_pw, format!("{}\n", stack.var("RELAY_PASS"))).unwrap();
    }
    let wrong_pw = stack.dir.join("wrong-password");
    if !wrong_pw.exists() {
        std::fs::write(&wrong_pw, "not-the-password\n").unwrap();
    }
    let port = |k: &str| stack.addr(k).port();
    let maildir = |user: &str| stack.var("MAILDIR_PATTERN").replace("{user}", user);
    format!(
        r#"
[daemon]
state_dir = "{{dir}}/state"
shutdown_grace = "5s"
[http]
listen = "127.0.0.1:0"
[dns]
resolver = "{dns}"
timeout = "2s"

[senders.ok]
kind = "smtp"
host = "127.0.0.1"
port = {relay_ok}
tls = "none"
from = "no-reply@sender.test"
reply_to = "support@sender.test"
dkim_selector = "{selector}"
dkim_key_file = "{dkim_key}"
timeout = "10s"

[senders.bad]
kind = "smtp"
host = "127.0.0.1"
port = {relay_bad}
tls = "none"
from = "no-reply@sender.test"
timeout = "10s"

# Submission with STARTTLS (required) and AUTH, and implicit TLS (465-style).
[senders.sub]
kind = "smtp"
host = "127.0.0.1"
port = {submission}
tls = "starttls"
ca_file = "{ca}"
username = "{relay_user}"
password_file = "{relay_pw}"
from = "no-reply@sender.test"
dkim_selector = "{selector}"
dkim_key_file = "{dkim_key}"
timeout = "10s"

[senders.subs]
kind = "smtp"
host = "127.0.0.1"
port = {submissions}
tls = "implicit"
ca_file = "{ca}"
username = "{relay_user}"
password_file = "{relay_pw}"
from = "no-reply@sender.test"
timeout = "10s"

[senders.badauth]
kind = "smtp"
host = "127.0.0.1"
port = {submission}
tls = "starttls"
ca_file = "{ca}"
username = "{relay_user}"
password_file = "{wrong_pw}"
from = "no-reply@sender.test"
timeout = "10s"

# Implicit TLS against a plain-text port: the handshake fails.
[senders.notls]
kind = "smtp"
host = "127.0.0.1"
port = {relay_ok}
tls = "implicit"
ca_file = "{ca}"
from = "no-reply@sender.test"
timeout = "5s"

# Nothing listens on port 1.
[senders.closed]
kind = "smtp"
host = "127.0.0.1"
port = 1
tls = "none"
from = "no-reply@sender.test"
timeout = "5s"

[seeds.imapstls]
provider = "imap-starttls"
address = "seed3@seed.test"
authserv_id = "{authserv}"
kind = "imap"
host = "127.0.0.1"
port = {imap}
tls = "starttls"
ca_file = "{ca}"
username = "seed3@seed.test"
password_file = "{pw}"

[seeds.imap1]
provider = "imap-plain"
address = "seed1@seed.test"
authserv_id = "{authserv}"
kind = "imap"
host = "127.0.0.1"
port = {imap}
tls = "none"
username = "seed1@seed.test"
password_file = "{pw}"

[seeds.imaps2]
provider = "imap-tls"
address = "seed2@seed.test"
authserv_id = "{authserv}"
kind = "imap"
host = "127.0.0.1"
port = {imaps}
tls = "implicit"
ca_file = "{ca}"
username = "seed2@seed.test"
password_file = "{pw}"

[seeds.md3]
provider = "maildir"
address = "seed3@seed.test"
authserv_id = "{authserv}"
kind = "maildir"
path = "{md3}"

[seeds.md4]
provider = "maildir"
address = "seed4@seed.test"
authserv_id = "{authserv}"
kind = "maildir"
path = "{md4}"

[seeds.void]
provider = "void"
address = "{void}"
authserv_id = "{authserv}"
kind = "maildir"
path = "{md4}"

{probes}
"#,
        dns = stack.var("DNS"),
        relay_ok = port("RELAY_OK"),
        relay_bad = port("RELAY_BAD"),
        submission = port("SUBMISSION"),
        submissions = port("SUBMISSIONS"),
        relay_user = stack.var("RELAY_USER"),
        relay_pw = relay_pw.display(),
        wrong_pw = wrong_pw.display(),
        imap = port("IMAP"),
        imaps = port("IMAPS"),
        selector = stack.var("DKIM_SELECTOR"),
        dkim_key = stack.var("DKIM_KEY"),
        authserv = stack.var("AUTHSERV_ID"),
        ca = stack.var("CA_CERT"),
        pw = pw.display(),
        md3 = maildir("seed3"),
        md4 = maildir("seed4"),
        void = stack.var("VOID_USER"),
    )
}

/// A probe table for [`stack_config`]: fires once at start (`every = 1h`).
pub fn probe(name: &str, sender: &str, seeds: &[&str], timeout: &str, template: &str) -> String {
    let seeds: Vec<String> = seeds.iter().map(|s| format!("{s:?}")).collect();
    format!(
        "[probes.{name}]\nsender = {sender:?}\nseeds = [{}]\nevery = \"1h\"\ntimeout = {timeout:?}\ntemplate = {template:?}\n",
        seeds.join(", ")
    )
}

pub fn template(name: &str) -> String {
    format!(
        "{}/probes/templates/{name}.toml",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The tokens of a probe's runs in a daemon's store.
pub fn tokens(state_dir: &Path, probe: &str) -> Vec<String> {
    let c = rusqlite::Connection::open(state_dir.join("mailcanary.sqlite3")).unwrap();
    let mut st = c
        .prepare("SELECT token FROM probe_run WHERE probe = ?1 ORDER BY created_ms")
        .unwrap();
    let rows = st.query_map([probe], |r| r.get::<_, String>(0)).unwrap();
    rows.map(Result::unwrap).collect()
}

/// A row of the store: (state, outcome, reason, counted).
pub fn run_row(
    state_dir: &Path,
    token: &str,
) -> Option<(String, Option<String>, Option<String>, i64)> {
    let c = rusqlite::Connection::open(state_dir.join("mailcanary.sqlite3")).unwrap();
    c.query_row(
        "SELECT state, outcome, reason, counted FROM probe_run WHERE token = ?1",
        [token],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
    .ok()
}

impl Daemon {
    /// The daemon's state directory (for configs made by [`stack_config`]).
    pub fn state_dir(&self) -> PathBuf {
        self.config.parent().unwrap().join("state")
    }

    /// Wait until `series` has value `want` on /metrics.
    pub fn wait_metric(&self, series: &str, want: f64, limit: Duration) -> bool {
        wait_until(limit, || self.metric(series) == Some(want))
    }
}

/// Send a raw message through one of the stack's SMTP listeners with swaks.
pub fn swaks(server: SocketAddr, to: &str, headers: &[&str], body: &str) {
    let mut cmd = Command::new("swaks");
    cmd.args([
        "--server",
        &server.ip().to_string(),
        "--port",
        &server.port().to_string(),
    ])
    .args([
        "--from",
        "no-reply@sender.test",
        "--to",
        to,
        "--body",
        body,
        "--suppress-data",
        "--hide-all",
    ]);
    for h in headers {
        cmd.args(["--header", h]);
    }
    let out = cmd.output().expect("swaks");
    assert!(
        out.status.success(),
        "swaks failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The stand-in app (`tests/app/send_code_app.py`) on a free port.
pub struct App {
    child: Child,
    pub port: u16,
    /// Served over HTTPS with the stack's certificate (for `localhost`).
    pub tls: bool,
    pub codes: PathBuf,
    pub token_file: PathBuf,
    _dir: tempfile::TempDir,
}

/// The bearer token the test app expects.
pub const APP_TOKEN: &str = "app-secret-token-4711";

impl App {
    /// Start the app in `mode` (see the script's doc), sending through RELAY_OK.
    pub fn start(stack: &Stack, mode: &str, delay_s: f64) -> App {
        App::start_with(stack, mode, delay_s, false, None)
    }

    /// [`App::start`] in mode `ok`, sending with envelope sender `return_path`.
    pub fn start_returning(stack: &Stack, return_path: &str) -> App {
        App::start_with(stack, "ok", 0.0, false, Some(return_path))
    }

    /// [`App::start`] over HTTPS, with the stack's server certificate.
    pub fn start_tls(stack: &Stack, mode: &str, delay_s: f64) -> App {
        App::start_with(stack, mode, delay_s, true, None)
    }

    fn start_with(
        stack: &Stack,
        mode: &str,
        delay_s: f64,
        tls: bool,
        return_path: Option<&str>,
    ) -> App {
        let dir = tempfile::tempdir().unwrap();
        let port_file = dir.path().join("port");
        let codes = dir.path().join("codes");
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, format!("{APP_TOKEN}\n")).unwrap();
        let mut cmd = Command::new("python3");
        if let Some(r) = return_path {
            cmd.env("APP_RETURN_PATH", r);
        }
        if tls {
            cmd.env("APP_TLS_CERT", stack.var("TLS_CERT"))
                .env("APP_TLS_KEY", stack.var("TLS_KEY"));
        }
        let child = cmd
            .arg(repo().join("tests/app/send_code_app.py"))
            .arg(&port_file)
            .arg(stack.var("RELAY_OK"))
            .arg(&codes)
            .arg(mode)
            .arg(delay_s.to_string())
            .env("APP_TOKEN", APP_TOKEN)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 tests/app/send_code_app.py");
        assert!(
            wait_until(Duration::from_secs(10), || port_file.exists()),
            "the test app did not start"
        );
        let port = std::fs::read_to_string(&port_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        App {
            child,
            port,
            tls,
            codes,
            token_file,
            _dir: dir,
        }
    }

    /// Stop the app (its port then refuses connections); files stay.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The codes the app sent, in order.
    pub fn codes(&self) -> Vec<String> {
        std::fs::read_to_string(&self.codes)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// A `[senders.NAME]` table of kind http for this app.
    pub fn sender(&self, name: &str, timeout: &str) -> String {
        format!(
            r#"[senders.{name}]
kind = "http"
url = "{url}/send-code"
headers = {{ "Content-Type" = "application/json" }}
body = '{{"email": "{{address}}"}}'
token_file = "{token}"
success_json = "/ok"
quota_pattern = "SendTokenQuotaExceeded"
from = "no-reply@sender.test"
subject_pattern = "verification code"
code_pattern = 'code is (\d{{6}})'
timeout = "{timeout}"

"#,
            url = if self.tls {
                format!("https://localhost:{}", self.port)
            } else {
                format!("http://127.0.0.1:{}", self.port)
            },
            token = self.token_file.display()
        )
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A sample selector `name{k="v",...}` for [`Daemon::metric`].
pub fn series(name: &str, labels: &[(&str, &str)]) -> String {
    let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{name}{{{}}}", l.join(","))
}

/// A Prometheus file_sd target file for one daemon, removed when dropped.
pub struct PromTarget(PathBuf);

impl PromTarget {
    /// Register `addr` in the stack's file_sd directory named by `dir_key`
    /// (`PROM_TARGETS_DIR`, `PROM_TLS_TARGETS_DIR`), labelled `test=instance`.
    pub fn register(stack: &Stack, dir_key: &str, instance: &str, addr: SocketAddr) -> PromTarget {
        let path = Path::new(stack.var(dir_key)).join(format!("{instance}.json"));
        std::fs::write(
            &path,
            format!(r#"[{{"targets": ["{addr}"], "labels": {{"test": "{instance}"}}}}]"#),
        )
        .unwrap();
        PromTarget(path)
    }
}

impl Drop for PromTarget {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
