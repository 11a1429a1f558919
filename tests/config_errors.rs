//! Table-driven config tests: every file under `tests/fixtures/config/bad`
//! (or directory, loaded through its `main.toml`) must fail to load with
//! exactly the diagnostics its `# expect:` lines give, each naming
//! `file:line:col` and the key; every file under `good` must load, with the
//! warnings its `# expect-warning:` lines give.

use std::path::{Path, PathBuf};

use mailcanary::config::presets::{PresetAuth, PRESETS};
use mailcanary::config::{self, ConfigError, ImapAuth, Inbox, OAuthMechanism};

fn fixtures(kind: &str) -> Vec<(PathBuf, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(kind);
    let mut cases: Vec<(PathBuf, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            if p.is_dir() {
                (p.join("main.toml"), p)
            } else {
                (p.clone(), dir.clone())
            }
        })
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no fixtures in {}", dir.display());
    cases
}

/// `# <tag> <text>` lines; `{dir}` stands for the case directory and a
/// leading `LINE:COL:` means "in the main file".
fn expectations(main: &Path, case_dir: &Path, tag: &str) -> Vec<String> {
    std::fs::read_to_string(main)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("# {tag} ")))
        .map(|e| {
            let e = e.replace("{dir}", &case_dir.display().to_string());
            if e.as_bytes().first().is_some_and(u8::is_ascii_digit) {
                format!("{}:{e}", main.display())
            } else {
                format!("{}/{e}", case_dir.display())
            }
        })
        .collect()
}

#[test]
fn bad_configs_fail_with_their_exact_diagnostics() {
    std::env::remove_var("MAILCANARY_TEST_SURELY_UNSET");
    let mut failures = Vec::new();
    for (main, case_dir) in fixtures("bad") {
        let expected = expectations(&main, &case_dir, "expect:");
        assert!(
            !expected.is_empty(),
            "{} has no `# expect:` line",
            main.display()
        );
        let got: Vec<String> = match config::load(&main) {
            Ok(_) => vec!["<loaded without error>".into()],
            Err(ConfigError::Invalid(d)) => d.iter().map(|d| d.to_string()).collect(),
            Err(e) => vec![e.to_string()],
        };
        if got != expected {
            failures.push(format!(
                "{}\n  expected: {expected:#?}\n  got:      {got:#?}",
                main.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn good_configs_load_with_their_warnings() {
    for (main, case_dir) in fixtures("good") {
        let expected = expectations(&main, &case_dir, "expect-warning:");
        let c = config::load(&main).unwrap_or_else(|e| panic!("{}: {e}", main.display()));
        let got: Vec<String> = c.warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(got, expected, "{}", main.display());
    }
}

#[test]
fn secrets_never_show_in_debug_output() {
    let main = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/good/base.toml");
    let c = config::load(&main).unwrap();
    let secret = std::fs::read_to_string(main.parent().unwrap().join("../secret.txt")).unwrap();
    let dump = format!("{c:?}");
    assert!(
        dump.contains("Secret(***)"),
        "the seed's password is loaded"
    );
    assert!(
        !dump.contains(secret.trim()),
        "the secret leaks into Debug output"
    );
}

#[test]
fn a_missing_file_is_a_read_error() {
    match config::load(Path::new("/nonexistent/mailcanary.toml")) {
        Err(ConfigError::Read { path, .. }) => {
            assert_eq!(path, Path::new("/nonexistent/mailcanary.toml"))
        }
        other => panic!("expected a read error, got {other:?}"),
    }
}

#[test]
fn the_shipped_example_configs_are_valid() {
    let probes = Path::new(env!("CARGO_MANIFEST_DIR")).join("probes");
    std::env::set_var("MAILCANARY_SMTP_PASSWORD", "smtp-password-test");
    std::env::set_var("MAILCANARY_GMAIL1_APP_PASSWORD", "gmail1-app-password-test");
    std::env::set_var("MAILCANARY_APP_TOKEN", "app-token-for-tests");
    let c = config::load(&probes.join("example.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.probes["signup"].seeds, ["gmail1", "local-maildir"]);
    assert_eq!(
        c.warnings.len(),
        1,
        "timeout > every is a warning: {:?}",
        c.warnings
    );
    // The production path (`kind = "http"`) is shipped too.
    let app = &c.probes["signup-app"];
    assert_eq!((app.sender.as_str(), app.burst), ("app", 3));
    assert!(
        matches!(c.senders["app"], config::Sender::Http(_)),
        "sender `app` is kind = \"http\""
    );

    // The same file through the real binary, as ExecStartPre= runs it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailcanary"))
        .args(["config", "check"])
        .arg(probes.join("example.toml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "config check failed:\n{stdout}{stderr}"
    );
    assert!(
        stdout.contains("OK (2 senders, 2 seeds, 2 probes)"),
        "{stdout}"
    );

    // local.toml points at the demo stack's files; check everything but them.
    let text = std::fs::read_to_string(probes.join("local.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("pw");
    std::fs::write(&secret, "local-demo-password\n").unwrap();
    let local = dir.path().join("local.toml");
    // A throwaway 2048-bit RSA key, as the stack generates one per run.
    let dkim_key = dir.path().join("dkim.key");
    let ok = std::process::Command::new("openssl")
        .args(["genrsa", "-out"])
        .arg(&dkim_key)
        .arg("2048")
        .output()
        .unwrap()
        .status
        .success();
    assert!(ok, "openssl genrsa");
    std::fs::write(
        &local,
        text.replace(
            "/tmp/mailcanary-demo/seed-password",
            &secret.display().to_string(),
        )
        .replace(
            "/tmp/mailcanary-demo/tls/ca.pem",
            &secret.display().to_string(),
        )
        .replace(
            "/tmp/mailcanary-demo/tls/dkim-sel.sender.test.key",
            &dkim_key.display().to_string(),
        )
        .replace("\"local.d\"", &format!("{:?}", probes.join("local.d"))),
    )
    .unwrap();
    let c = config::load(&local).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.probes.len(), 2);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

/// `probes/providers.toml` names its secrets by the paths systemd's
/// `LoadCredential=` gives the service; here they are files in a temp dir.
#[test]
fn the_provider_example_config_is_valid() {
    const CREDENTIALS: &str = "/run/credentials/mailcanary.service/";
    let probes = Path::new(env!("CARGO_MANIFEST_DIR")).join("probes");
    let text = std::fs::read_to_string(probes.join("providers.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut names = Vec::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        if let Some((_, rest)) = line.split_once(CREDENTIALS) {
            let name = rest.trim_end_matches('"');
            std::fs::write(dir.path().join(name), format!("placeholder {name}\n")).unwrap();
            names.push(name.to_string());
        }
    }
    assert_eq!(names.len(), 6, "one credential per secret: {names:?}");
    let local = dir.path().join("providers.toml");
    std::fs::write(
        &local,
        text.replace(CREDENTIALS, &format!("{}/", dir.path().display()))
            .replace(
                "\"templates/",
                &format!("\"{}/templates/", probes.display()),
            ),
    )
    .unwrap();
    let c = config::load(&local).unwrap_or_else(|e| panic!("{e}"));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(c.probes["signup-en"].seeds, ["gmail1", "outlook1"]);
    assert_eq!(c.probes["signup-zh"].seeds, ["qq1", "netease1"]);
    let providers: Vec<&str> = c.seeds.values().map(|s| s.provider.as_str()).collect();
    assert_eq!(providers, ["gmail", "163", "outlook", "qq"]);
    let imap = |seed: &str| match &c.seeds[seed].inbox {
        Inbox::Imap(i) => i.clone(),
        Inbox::Maildir(_) => panic!("{seed} is IMAP"),
    };
    let gmail = imap("gmail1");
    assert_eq!((gmail.host.as_str(), gmail.port), ("imap.gmail.com", 993));
    let ImapAuth::OAuth { client, .. } = gmail.auth else {
        panic!("gmail1 is an OAuth2 seed")
    };
    assert_eq!(client.token_url, "https://oauth2.googleapis.com/token");
    assert_eq!(
        client.client_secret.as_ref().map(|s| s.expose()),
        Some("placeholder mailcanary_gmail-client-secret")
    );
    let ImapAuth::OAuth { client, .. } = imap("outlook1").auth else {
        panic!("outlook1 is an OAuth2 seed")
    };
    assert!(client.client_secret.is_none(), "a public client");
    assert_eq!(
        client.token_url,
        "https://login.microsoftonline.com/common/oauth2/v2.0/token"
    );
    let netease = imap("netease1");
    assert_eq!(netease.host, "imap.163.com");
    assert_eq!(netease.username, "canary_seed1@163.com");
    assert!(netease.imap_id);
    assert!(matches!(netease.auth, ImapAuth::Login(_)));
    assert_eq!(imap("qq1").host, "imap.qq.com");
    assert_eq!(c.seeds["outlook1"].authserv_id.as_deref(), Some(""));
}

#[test]
fn web_config_debug_output_shows_no_hashes_or_keys() {
    let main =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/good/web_tls/main.toml");
    let c = config::load(&main).unwrap();
    let web = c.http.web.as_ref().expect("web config loaded");
    assert!(web.tls.is_some());
    assert_eq!(
        web.users.keys().collect::<Vec<_>>(),
        ["grafana", "prometheus"]
    );
    let dump = format!("{c:?}");
    assert!(dump.contains("prometheus"), "{dump}");
    assert!(!dump.contains("$2y$") && !dump.contains("$2b$"), "{dump}");
    let key = std::fs::read_to_string(main.parent().unwrap().join("server.key")).unwrap();
    let key_body = key.lines().nth(1).unwrap();
    assert!(!dump.contains(key_body), "{dump}");
}

/// "Every shipped preset passes `mailcanary config check`": one seed per
/// preset with nothing but `provider`, `address`, `kind` and the credential
/// the preset's method needs; host, port, TLS, login name, auth and spam
/// folders must all come from the preset.
#[test]
fn every_preset_resolves_into_a_valid_seed() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "not-a-real-secret\n").unwrap();
    let template =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("probes/templates/verification-en.toml");
    let mut toml = format!(
        "[daemon]\nstate_dir = {state:?}\n\n\
         [senders.noreply]\nkind = \"smtp\"\nhost = \"127.0.0.1\"\nport = 2525\ntls = \"none\"\nfrom = \"no-reply@sender.test\"\n",
        state = dir.path().join("state"),
    );
    let seed_name = |preset: &str| format!("seed-{preset}");
    for p in PRESETS {
        toml += &format!(
            "\n[seeds.{seed}]\nprovider = {name:?}\naddress = \"canary.seed@{name}.example\"\nkind = \"imap\"\n",
            seed = seed_name(p.name),
            name = p.name,
        );
        match p.auth {
            PresetAuth::Password => toml += &format!("password_file = {secret:?}\n"),
            PresetAuth::OAuth2 { .. } => {
                toml += &format!(
                    "\n[seeds.{seed}.oauth]\nclient_id = \"client-{name}\"\nrefresh_token_file = {secret:?}\n",
                    seed = seed_name(p.name),
                    name = p.name,
                )
            }
        }
    }
    let seeds: Vec<String> = PRESETS.iter().map(|p| seed_name(p.name)).collect();
    toml += &format!(
        "\n[probes.signup]\nsender = \"noreply\"\nseeds = {seeds:?}\nevery = \"5m\"\ntemplate = {template:?}\n"
    );
    let file = dir.path().join("presets.toml");
    std::fs::write(&file, &toml).unwrap();

    let c = config::load(&file).unwrap_or_else(|e| panic!("{e}\n--- {}:\n{toml}", file.display()));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(c.seeds.len(), PRESETS.len());
    for p in PRESETS {
        let seed = &c.seeds[&seed_name(p.name)];
        assert_eq!(seed.provider, p.name);
        assert_eq!(seed.spam_folders, p.spam_folders, "{}", p.name);
        let Inbox::Imap(imap) = &seed.inbox else {
            panic!("{}: not an IMAP seed", p.name)
        };
        assert_eq!(
            (imap.host.as_str(), imap.port, imap.tls),
            (p.host, p.port, p.tls),
            "{}",
            p.name
        );
        let address = format!("canary.seed@{}.example", p.name);
        let login = if p.username_is_address {
            address.as_str()
        } else {
            "canary.seed"
        };
        assert_eq!(imap.username, login, "{}", p.name);
        assert!(imap.imap_id, "{}: IMAP ID is on by default", p.name);
        assert_eq!(imap.hint, Some(p.hint), "{}", p.name);
        match (p.auth, &imap.auth) {
            (PresetAuth::Password, ImapAuth::Login(pw)) => {
                assert_eq!(pw.expose(), "not-a-real-secret")
            }
            (PresetAuth::OAuth2 { token_url, scope }, ImapAuth::OAuth { mechanism, client }) => {
                assert_eq!(*mechanism, OAuthMechanism::XOAuth2, "{}", p.name);
                assert_eq!(client.token_url, token_url, "{}", p.name);
                assert_eq!(client.scope.as_deref(), scope, "{}", p.name);
                assert_eq!(client.client_id, format!("client-{}", p.name));
                assert!(client.client_secret.is_none());
                assert_eq!(client.refresh_token.expose(), "not-a-real-secret");
            }
            (want, got) => panic!(
                "{}: preset auth {want:?}, seed auth {}",
                p.name,
                got.as_str()
            ),
        }
    }
    // The documented cases, spelled out.
    let imap = |seed: &str| match &c.seeds[seed].inbox {
        Inbox::Imap(i) => i.clone(),
        Inbox::Maildir(_) => unreachable!(),
    };
    assert_eq!(imap("seed-icloud").username, "canary.seed");
    assert_eq!(imap("seed-icloud").host, "imap.mail.me.com");
    assert_eq!(imap("seed-qq").username, "canary.seed@qq.example");
    let ImapAuth::OAuth { client, .. } = imap("seed-gmail").auth else {
        panic!("gmail defaults to xoauth2")
    };
    assert_eq!(client.token_url, "https://oauth2.googleapis.com/token");
    let ImapAuth::OAuth { client, .. } = imap("seed-outlook").auth else {
        panic!("outlook defaults to xoauth2")
    };
    assert_eq!(
        client.scope.as_deref(),
        Some("https://outlook.office.com/IMAP.AccessAsUser.All offline_access")
    );

    // The same file through the real binary, as ExecStartPre= runs it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailcanary"))
        .args(["config", "check"])
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "config check failed:\n{stdout}{stderr}"
    );
    assert!(
        stdout.contains(&format!(
            "OK (1 senders, {} seeds, 1 probes)",
            PRESETS.len()
        )),
        "{stdout}"
    );
    assert!(stderr.is_empty(), "no warnings expected: {stderr}");
}

/// A main file whose drop-in directory `probes.d` holds `files` (name, link target).
fn with_probe_links(links: &[(&str, &str)]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("main.toml");
    std::fs::write(
        &main,
        "[daemon]\nstate_dir = \"state\"\nprobes_dir = \"probes.d\"\n",
    )
    .unwrap();
    let d = dir.path().join("probes.d");
    std::fs::create_dir(&d).unwrap();
    for (name, target) in links {
        std::os::unix::fs::symlink(target, d.join(name)).unwrap();
    }
    (dir, main)
}

#[test]
fn a_symlink_loop_in_probes_dir_is_an_error_naming_the_file() {
    let (_dir, main) = with_probe_links(&[("a.toml", "b.toml"), ("b.toml", "a.toml")]);
    match config::load(&main) {
        Err(ConfigError::Read { path, .. }) => {
            assert!(path.ends_with("probes.d/a.toml"), "{}", path.display())
        }
        other => panic!("expected a read error, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn a_dangling_link_in_probes_dir_is_an_error_naming_the_file() {
    let (_dir, main) = with_probe_links(&[("gone.toml", "nowhere.toml")]);
    let e = config::load(&main).map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("probes.d/gone.toml"), "{e}");
}

#[test]
fn a_very_deep_dotted_header_is_reported_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let main = dir.path().join("main.toml");
    let deep = vec!["a"; 100_000].join(".");
    std::fs::write(
        &main,
        format!("[daemon]\nstate_dir = \"s\"\n\n[{deep}]\nx = 1\n"),
    )
    .unwrap();
    let e = config::load(&main).map(|_| ()).unwrap_err().to_string();
    assert!(
        e.contains(&format!("{}:4:", main.display())),
        "{}",
        &e[..e.len().min(300)]
    );
}
