//! `/metrics` over TLS with Basic auth from an exporter-toolkit web config,
//! against the real binary. Certificates come from `openssl` (a throwaway
//! CA per test), requests from `curl`: a client that shares no code with
//! the server.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{wait_until, Daemon};

/// A throwaway CA, a server certificate for 127.0.0.1 signed by it, and a
/// client certificate signed by a second CA.
struct Pki {
    dir: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (run scripts/deps.sh)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for (ca, cn) in [("ca", "mailcanary test CA"), ("client-ca", "client CA")] {
            let mut args = vec!["req", "-x509"];
            args.extend(ec);
            let (key, pem, subj) = (
                format!("{ca}.key"),
                format!("{ca}.pem"),
                format!("/CN={cn}"),
            );
            args.extend(["-keyout", &key, "-out", &pem, "-days", "2", "-subj", &subj]);
            openssl(dir, &args);
        }
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .unwrap();
        std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
        for (name, ca) in [("server", "ca"), ("client", "client-ca")] {
            let mut args = vec!["req"];
            args.extend(ec);
            let (key, csr, subj) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("/CN={name}"),
            );
            args.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
            openssl(dir, &args);
            let (crt, ca_pem, ca_key, ext) = (
                format!("{name}.crt"),
                format!("{ca}.pem"),
                format!("{ca}.key"),
                format!("{name}.ext"),
            );
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    &ca_pem,
                    "-CAkey",
                    &ca_key,
                    "-CAcreateserial",
                    "-out",
                    &crt,
                    "-days",
                    "2",
                    "-extfile",
                    &ext,
                ],
            );
        }
        Pki {
            dir: dir.to_path_buf(),
        }
    }

    fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

/// What curl got: its exit code, the status, the headers (lower-case) and the body.
struct Reply {
    exit: i32,
    status: u16,
    headers: String,
    body: String,
}

fn curl(args: &[&str]) -> Reply {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-D", "/dev/stderr", "-o", "-"])
        .args(args)
        .output()
        .expect("curl (run scripts/deps.sh)");
    let headers = String::from_utf8_lossy(&out.stderr).to_ascii_lowercase();
    let status = headers
        .lines()
        .find(|l| l.starts_with("http/"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Reply {
        exit: out.status.code().unwrap_or(-1),
        status,
        headers,
        body: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

/// Cost 5 keeps the debug-build bcrypt fast; the format is what htpasswd writes.
fn hash(password: &str) -> String {
    bcrypt::hash(password, 5).unwrap()
}

const PASSWORD: &str = "correct horse battery staple";

/// Start the daemon with `web.yml` (written next to its config) holding `web`.
fn start(web: &str) -> Daemon {
    Daemon::start_custom(
        r#"
[daemon]
state_dir = "{dir}/state"
shutdown_grace = "3s"
[http]
listen = "127.0.0.1:0"
web_config_file = "web.yml"
"#,
        |path| {
            std::fs::write(path.parent().unwrap().join("web.yml"), web).unwrap();
            let mut cmd = common::command(path);
            // Everything the daemon would log, so the secrets test sees it all.
            cmd.env("MAILCANARY_LOG", "debug");
            cmd
        },
    )
}

fn url(d: &Daemon, path: &str) -> String {
    format!("https://{}{path}", d.http)
}

#[test]
fn metrics_over_tls_with_basic_auth() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let hashed = hash(PASSWORD);
    let d = start(&format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\nbasic_auth_users:\n  prometheus: {hashed}\n",
        pki.file("server.crt"),
        pki.file("server.key"),
    ));
    let ca = pki.file("ca.pem");
    let metrics = url(&d, "/metrics");
    assert!(d.logs().contains(&format!("https://{}/metrics", d.http)));

    let none = curl(&["--cacert", &ca, &metrics]);
    assert_eq!(none.status, 401, "no credentials: {}", none.headers);
    assert!(
        none.headers.contains("www-authenticate: basic"),
        "{}",
        none.headers
    );
    assert!(
        none.headers.contains("x-frame-options: deny"),
        "configured headers on every response: {}",
        none.headers
    );
    let wrong = curl(&["--cacert", &ca, "-u", "prometheus:wrong", &metrics]);
    assert_eq!(wrong.status, 401, "wrong password");
    let nobody = curl(&[
        "--cacert",
        &ca,
        "-u",
        &format!("nobody:{PASSWORD}"),
        &metrics,
    ]);
    assert_eq!(nobody.status, 401, "unknown user");

    let right = curl(&[
        "--cacert",
        &ca,
        "-u",
        &format!("prometheus:{PASSWORD}"),
        &metrics,
    ]);
    assert_eq!(right.status, 200, "right credentials: {}", right.headers);
    assert!(
        right.body.contains("# TYPE mailcanary_build_info gauge"),
        "{}",
        right.body
    );
    assert!(right.headers.contains("x-frame-options: deny"));
    // TLS 1.2 and 1.3 are both offered by default.
    for v in ["--tls-max", "--tlsv1.3"] {
        let args: Vec<&str> = if v == "--tls-max" {
            vec!["--tls-max", "1.2"]
        } else {
            vec!["--tlsv1.3"]
        };
        let mut all = args.clone();
        let user = format!("prometheus:{PASSWORD}");
        all.extend(["--cacert", &ca, "-u", &user, &metrics]);
        assert_eq!(curl(&all).status, 200, "{args:?}");
    }

    // As in the exporter toolkit, auth covers every path.
    assert_eq!(curl(&["--cacert", &ca, &url(&d, "/-/healthy")]).status, 401);
    // The support view too, page and API.
    for path in ["/status", "/api/v1/status"] {
        assert_eq!(
            curl(&["--cacert", &ca, &url(&d, path)]).status,
            401,
            "{path}"
        );
        let user = format!("prometheus:{PASSWORD}");
        let ok = curl(&["--cacert", &ca, "-u", &user, &url(&d, path)]);
        assert_eq!(ok.status, 200, "{path}: {}", ok.headers);
        assert!(ok.headers.contains("x-frame-options: deny"), "{path}");
    }
    let user = format!("prometheus:{PASSWORD}");
    assert_eq!(
        curl(&["--cacert", &ca, "-u", &user, &url(&d, "/-/healthy")]).status,
        200
    );

    // A client that does not trust the CA refuses the server (curl exit 60).
    assert_eq!(curl(&[&metrics]).exit, 60);
    // Plain HTTP to the TLS port gets a plain answer saying so.
    let plain = curl(&[&format!("http://{}/metrics", d.http)]);
    assert_eq!(plain.status, 400);
    assert!(
        plain.body.contains("HTTP request to an HTTPS server"),
        "{}",
        plain.body
    );

    // Neither the password nor its hash ever reaches the log.
    let logs = d.logs();
    assert!(!logs.contains(PASSWORD), "password in the log:\n{logs}");
    assert!(!logs.contains(&hashed), "hash in the log:\n{logs}");
    assert!(
        !logs.contains(&base64_basic(&user)),
        "Authorization header in the log"
    );
}

fn base64_basic(user_pass: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(user_pass)
}

#[test]
fn min_version_tls13_refuses_tls12_clients() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let d = start(&format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  min_version: TLS13\n",
        pki.file("server.crt"),
        pki.file("server.key"),
    ));
    let ca = pki.file("ca.pem");
    let metrics = url(&d, "/metrics");
    assert_eq!(
        curl(&["--cacert", &ca, &metrics]).status,
        200,
        "no users: open"
    );
    let tls12 = curl(&["--cacert", &ca, "--tls-max", "1.2", &metrics]);
    assert_eq!(tls12.status, 0);
    assert_ne!(tls12.exit, 0, "a TLS 1.2-only client must fail");
}

#[test]
fn client_certificates_are_required_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let d = start(&format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {}\n",
        pki.file("server.crt"),
        pki.file("server.key"),
        pki.file("client-ca.pem"),
    ));
    let ca = pki.file("ca.pem");
    let metrics = url(&d, "/metrics");
    let without = curl(&["--cacert", &ca, &metrics]);
    assert_eq!(without.status, 0, "no client certificate: no response");
    assert_ne!(without.exit, 0);
    // The server's own certificate is not from the client CA: refused too.
    let (server_crt, server_key) = (pki.file("server.crt"), pki.file("server.key"));
    let wrong = curl(&[
        "--cacert",
        &ca,
        "--cert",
        &server_crt,
        "--key",
        &server_key,
        &metrics,
    ]);
    assert_eq!(wrong.status, 0, "a certificate from another CA is refused");
    let (crt, key) = (pki.file("client.crt"), pki.file("client.key"));
    let with = curl(&["--cacert", &ca, "--cert", &crt, "--key", &key, &metrics]);
    assert_eq!(with.status, 200, "exit {}: {}", with.exit, with.headers);
}

#[test]
fn a_reload_applies_new_users_and_can_turn_tls_on() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    // Start with plain HTTP and one user.
    let d = start(&format!(
        "basic_auth_users:\n  old: {}\n",
        hash("old-password")
    ));
    assert_eq!(d.get("/metrics").0, 401);
    let plain = format!("http://{}/metrics", d.http);
    assert_eq!(curl(&["-u", "old:old-password", &plain]).status, 200);

    // Rotate: TLS on, the old user replaced by a new one.
    let web = d.config.parent().unwrap().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\nbasic_auth_users:\n  new: {}\n",
            pki.file("server.crt"),
            pki.file("server.key"),
            hash("new-password")
        ),
    )
    .unwrap();
    d.signal("HUP");
    assert!(
        d.wait_log("configuration reloaded", Duration::from_secs(5)),
        "{}",
        d.logs()
    );
    let ca = pki.file("ca.pem");
    let metrics = url(&d, "/metrics");
    assert!(
        wait_until(Duration::from_secs(5), || curl(&[
            "--cacert",
            &ca,
            "-u",
            "new:new-password",
            &metrics
        ])
        .status
            == 200),
        "{}",
        d.logs()
    );
    assert_eq!(
        curl(&["--cacert", &ca, "-u", "old:old-password", &metrics]).status,
        401
    );

    // A broken web config on reload keeps the running one.
    std::fs::write(&web, "basic_auth_users:\n  new: not-a-hash\n").unwrap();
    d.signal("HUP");
    assert!(
        d.wait_log("configuration reload failed", Duration::from_secs(5)),
        "{}",
        d.logs()
    );
    assert!(
        d.logs()
            .contains("web.yml:2:8: key `basic_auth_users.new`: not a bcrypt hash"),
        "{}",
        d.logs()
    );
    assert!(
        !d.logs().contains("not-a-hash"),
        "the bad value is not echoed"
    );
    assert_eq!(
        curl(&["--cacert", &ca, "-u", "new:new-password", &metrics]).status,
        200
    );
}
