//! A real knot DNS server on loopback for the DNS-audit tests: authoritative
//! for the zones a test writes, on a free port, under a temporary directory.
//!
//! [`Knot::start`] returns a server the test owns (stopped by PID when it is
//! dropped or on [`Knot::stop`]). [`Knot::start_shared`] is for a server shared
//! by all tests of a binary: it lives in a `static`, so a watchdog stops it by
//! PID and removes its directory when the test process exits, however it
//! exits (the harness's stack does the same).

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// One zone to serve.
#[derive(Debug, Clone)]
pub struct Zone {
    /// The apex, without trailing dot (`test`, `signed.test`).
    pub name: String,
    /// Zone-file text. `$ORIGIN` and a default SOA/NS are prepended.
    pub text: String,
    /// Sign with knot's automatic DNSSEC (ECDSA P-256).
    pub sign: bool,
    /// Write an unparsable file: knot then answers SERVFAIL for the zone.
    pub broken: bool,
}

impl Zone {
    pub fn new(name: &str, text: impl Into<String>) -> Zone {
        Zone {
            name: name.into(),
            text: text.into(),
            sign: false,
            broken: false,
        }
    }
    pub fn signed(mut self) -> Zone {
        self.sign = true;
        self
    }
    pub fn broken(name: &str) -> Zone {
        Zone {
            broken: true,
            ..Zone::new(name, "")
        }
    }
}

/// A running knotd.
pub struct Knot {
    pub addr: SocketAddr,
    pub dir: PathBuf,
    conf: PathBuf,
    child: Option<Child>,
}

impl Knot {
    /// Writes the zones and the config, starts knotd on a free port and waits
    /// until every loadable zone answers its SOA.
    pub fn start(zones: &[Zone]) -> Knot {
        let dir = std::env::temp_dir().join(format!(
            "mc-knot-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("zones")).unwrap();
        std::fs::create_dir_all(dir.join("db")).unwrap();
        for z in zones {
            let path = dir.join("zones").join(format!("{}.zone", z.name));
            let text = if z.broken {
                format!("$ORIGIN {}.\n@ SOA this is not a zone\n", z.name)
            } else {
                format!(
                    "$ORIGIN {name}.\n$TTL 60\n@ SOA ns.{name}. hostmaster.{name}. 1 60 60 600 60\n@ NS ns.{name}.\nns A 127.0.0.1\n{text}\n",
                    name = z.name,
                    text = z.text
                )
            };
            std::fs::write(path, text).unwrap();
        }
        let mut last_err = String::new();
        for _ in 0..5 {
            let port = free_port();
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let conf = dir.join("knot.conf");
            std::fs::write(&conf, config(&dir, port, zones)).unwrap();
            let child = Command::new("knotd")
                .arg("-c")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start knotd (Debian package `knot`)");
            let mut knot = Knot {
                addr,
                dir: dir.clone(),
                conf,
                child: Some(child),
            };
            match knot.wait_ready(zones) {
                Ok(()) => return knot,
                Err(e) => {
                    last_err = e;
                    knot.stop();
                }
            }
        }
        let log = std::fs::read_to_string(dir.join("knot.log")).unwrap_or_default();
        panic!("knotd did not come up: {last_err}\n{log}");
    }

    /// Like [`Knot::start`], for a server kept in a `static`: a watchdog
    /// stops it by PID and removes its directory when this process exits.
    pub fn start_shared(zones: &[Zone]) -> Knot {
        let knot = Knot::start(zones);
        let _ = Command::new("setsid")
            .arg("sh")
            .arg("-c")
            .arg(format!(
                "while kill -0 {pid} 2>/dev/null; do sleep 1; done; kill {knot} 2>/dev/null; sleep 1; rm -rf {dir}",
                pid = std::process::id(),
                knot = knot.pid().unwrap_or(0),
                dir = knot.dir.display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        knot
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The `--resolver` argument for this server.
    pub fn resolver(&self) -> String {
        self.addr.to_string()
    }

    /// Stops knotd by its PID and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Runs `knotc` against this server.
    pub fn knotc(&self, args: &[&str]) -> Output {
        let out = Command::new("knotc")
            .arg("-c")
            .arg(&self.conf)
            .args(args)
            .output()
            .expect("knotc");
        assert!(
            out.status.success(),
            "knotc {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// The DS records of a signed zone's KSK, as zone-file lines.
    pub fn ds_records(&self, zone: &str) -> Vec<String> {
        let out = Command::new("keymgr")
            .arg("-c")
            .arg(&self.conf)
            .args([zone, "ds"])
            .output()
            .expect("keymgr");
        assert!(out.status.success(), "keymgr {zone} ds: {out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains(" DS "))
            .map(str::to_owned)
            .collect()
    }

    /// Adds records (`owner TTL TYPE DATA` with absolute owners) to a zone
    /// through a knotc transaction.
    pub fn add_records(&self, zone: &str, lines: &[String]) {
        self.knotc(&["zone-begin", zone]);
        for l in lines {
            let fields: Vec<&str> = l.split_whitespace().collect();
            // keymgr prints `owner TYPE data...` (no TTL).
            let (owner, rest) = fields.split_first().expect("record line");
            let mut args = vec!["zone-set", zone, owner, "60"];
            args.extend(rest.iter().copied());
            self.knotc(&args);
        }
        self.knotc(&["zone-commit", zone]);
    }

    fn wait_ready(&mut self, zones: &[Zone]) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut pending: Vec<&Zone> = zones.iter().filter(|z| !z.broken).collect();
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    return Err(format!("knotd exited: {status}"));
                }
            }
            pending.retain(|z| soa_rcode(self.addr, &z.name) != Some(0));
            if pending.is_empty() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!(
            "zones not loaded after 15 s: {:?}",
            pending.iter().map(|z| &z.name).collect::<Vec<_>>()
        ))
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn config(dir: &Path, port: u16, zones: &[Zone]) -> String {
    let mut c = format!(
        r#"server:
    rundir: "{dir}"
    listen: 127.0.0.1@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "{dir}/db"
log:
  - target: "{dir}/knot.log"
    any: info
control:
    listen: "{dir}/knot.sock"
policy:
  - id: fast
    algorithm: ecdsap256sha256
    ksk-lifetime: 0
    zsk-lifetime: 0
template:
  - id: default
    storage: "{dir}/zones"
    file: "%s.zone"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
"#,
        dir = dir.display()
    );
    for z in zones {
        c.push_str(&format!("  - domain: {}\n", z.name));
        if z.sign {
            c.push_str("    dnssec-signing: on\n    dnssec-policy: fast\n");
        }
    }
    c
}

/// A port free for both UDP and TCP on 127.0.0.1 (knot needs both).
fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The response code of a SOA query for `zone` (no recursion), or `None`
/// when nothing answers in 200 ms.
pub fn soa_rcode(server: SocketAddr, zone: &str) -> Option<u8> {
    let sock = UdpSocket::bind("127.0.0.1:0").ok()?;
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .ok()?;
    let id: u16 = 0x4d43;
    let mut q = Vec::new();
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in zone.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 6, 0, 1]);
    sock.send_to(&q, server).ok()?;
    let mut buf = [0u8; 1500];
    let (n, _) = sock.recv_from(&mut buf).ok()?;
    (n >= 4 && buf[..2] == id.to_be_bytes()).then(|| buf[3] & 0x0f)
}
