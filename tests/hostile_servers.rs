//! Misbehaving IMAP, SMTP and OAuth token servers on 127.0.0.1:0, each as a
//! small tokio server that does one bad thing, against mailcanary's real
//! clients: the IMAP folder watcher, the SMTP sender and the token source.
//!
//! Each case fails without the bound it checks: without the IMAP framing
//! layer the 400-deep BODYSTRUCTURE aborts this test process (stack
//! overflow), the literal promise waits out the 30 s command timeout, and so
//! on; without the transaction timeout the silent relay hangs the send.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine;
use mailcanary::config::{
    ImapAuth, ImapInbox, OAuthClient, Secret, SmtpSender, TlsMode, DEFAULT_MAX_MESSAGE_SIZE,
};
use mailcanary::inbox::imap::{watch, ImapWatch, Login};
use mailcanary::inbox::{Disposition, FolderRole, WatchEvent};
use mailcanary::probe::send::{SendReason, SmtpClient};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

// ---------------------------------------------------------------- logs

/// Everything logged by this test binary (tests tell theirs apart by seed name).
fn logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        struct W;
        impl std::io::Write for W {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                logs().lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let _ = tracing_subscriber::fmt()
            .with_writer(|| W)
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .try_init();
        Mutex::new(Vec::new())
    })
}

/// The log lines that mention `needle`.
fn log_lines(needle: &str) -> Vec<String> {
    let all = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
    all.lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

/// Waits until a log line mentions both `a` and `b`, up to `within`.
async fn wait_for_log(a: &str, b: &str, within: Duration) -> Option<String> {
    let start = Instant::now();
    while start.elapsed() < within {
        if let Some(l) = log_lines(a).into_iter().find(|l| l.contains(b)) {
            return Some(l);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

// ---------------------------------------------------------------- IMAP

/// What the hostile IMAP server answers to one command.
enum Reply {
    /// Send these bytes (`{tag}` is replaced) and read the next command.
    Send(String),
    /// Send these bytes and never answer again (keep the connection open).
    SendAndHang(Vec<u8>),
}

type Script = Arc<dyn Fn(&str) -> Option<Reply> + Send + Sync>;

/// The ordinary answers of a small server without IDLE: one message (UID 5)
/// in the INBOX.
fn ordinary(command: &str) -> Reply {
    let upper = command.to_ascii_uppercase();
    let verb = upper.split(' ').next().unwrap_or("");
    Reply::Send(match verb {
        "LOGIN" => "{tag} OK logged in\r\n".into(),
        "SELECT" => "* 1 EXISTS\r\n{tag} OK [READ-WRITE] selected\r\n".into(),
        "CAPABILITY" => "* CAPABILITY IMAP4rev1\r\n{tag} OK\r\n".into(),
        "UID" if upper.starts_with("UID SEARCH") => "* SEARCH 5\r\n{tag} OK\r\n".into(),
        "UID" if upper.contains("ENVELOPE") => {
            "* 1 FETCH (UID 5 ENVELOPE (NIL \"hi\" NIL NIL NIL NIL NIL NIL NIL \"<x@y>\"))\r\n{tag} OK\r\n".into()
        }
        "LOGOUT" => "* BYE\r\n{tag} OK\r\n".into(),
        _ => "{tag} OK\r\n".into(),
    })
}

struct ImapServer {
    port: u16,
    connections: Arc<AtomicUsize>,
    commands: Arc<Mutex<Vec<String>>>,
}

/// A server that answers with `script` where it has an answer, else [`ordinary`].
async fn imap_server(script: Script) -> ImapServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let commands = Arc::new(Mutex::new(Vec::new()));
    let (c, seen) = (connections.clone(), commands.clone());
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            let (script, seen) = (script.clone(), seen.clone());
            tokio::spawn(async move {
                let _ = imap_session(sock, script, seen).await;
            });
        }
    });
    ImapServer {
        port,
        connections,
        commands,
    }
}

async fn imap_session(
    sock: TcpStream,
    script: Script,
    seen: Arc<Mutex<Vec<String>>>,
) -> std::io::Result<()> {
    let (r, mut w) = sock.into_split();
    let mut lines = BufReader::new(r).lines();
    w.write_all(b"* OK hostile IMAP ready\r\n").await?;
    while let Some(line) = lines.next_line().await? {
        let (tag, command) = line.split_once(' ').unwrap_or((&line, ""));
        let (tag, command) = (tag.to_string(), command.to_string());
        seen.lock().unwrap().push(command.clone());
        if command.to_ascii_uppercase().starts_with("AUTHENTICATE") {
            // One SASL step: the client's response, then the script's verdict.
            w.write_all(b"+ \r\n").await?;
            let response = lines.next_line().await?.unwrap_or_default();
            let verdict = match script(&format!("SASL {response}")) {
                Some(Reply::Send(s)) => s,
                _ => "{tag} OK\r\n".into(),
            };
            w.write_all(verdict.replace("{tag}", &tag).as_bytes())
                .await?;
            continue;
        }
        match script(&command).unwrap_or_else(|| ordinary(&command)) {
            Reply::Send(s) => w.write_all(s.replace("{tag}", &tag).as_bytes()).await?,
            Reply::SendAndHang(bytes) => {
                w.write_all(&bytes).await?;
                // Hold the connection open, reading nothing more.
                tokio::time::sleep(Duration::from_secs(120)).await;
                return Ok(());
            }
        }
    }
    Ok(())
}

/// A watcher of `seed`'s INBOX on the server, running until the returned token is cancelled.
fn start_watcher(
    seed: &str,
    port: u16,
    auth: ImapAuth,
    max_message_size: usize,
) -> (CancellationToken, Arc<Mutex<Vec<bool>>>) {
    logs();
    let cfg = ImapInbox {
        host: "127.0.0.1".into(),
        port,
        tls: TlsMode::None,
        username: "canary@seed.test".into(),
        auth: auth.clone(),
        ca_file: None,
        imap_id: false,
        hint: None,
        max_message_size,
    };
    let (events, mut rx) = mpsc::channel(64);
    let stop = CancellationToken::new();
    let ups = Arc::new(Mutex::new(Vec::new()));
    let seen_ups = ups.clone();
    tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            match ev {
                WatchEvent::Up { up, .. } => seen_ups.lock().unwrap().push(up),
                WatchEvent::Arrival(a) => {
                    let _ = a.reply.send(Disposition::Keep);
                }
                WatchEvent::OAuth { .. } => {}
            }
        }
    });
    let w = ImapWatch {
        seed: seed.into(),
        cfg,
        role: FolderRole::Inbox,
        spam_folder: None,
        spam_folders: vec![],
        login: Login::new(&auth, None).unwrap(),
        cleanup_folder: None,
        want: mailcanary::inbox::Want::Probes { match_from: vec![] },
        events,
        stop: stop.clone(),
    };
    tokio::spawn(watch(w));
    (stop, ups)
}

fn password(p: &str) -> ImapAuth {
    ImapAuth::Login(Secret::from_test_value(p.into()))
}

/// A BODYSTRUCTURE of `depth` nested multiparts (RFC 3501 §7.4.2 body-type-mpart).
fn nested_bodystructure(depth: usize) -> String {
    let leaf = "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 1 1)";
    format!(
        "{}{leaf}{}",
        "(".repeat(depth - 1),
        " \"mixed\")".repeat(depth - 1)
    )
}

fn fetch_answer(bodystructure: String) -> Script {
    Arc::new(move |c: &str| {
        c.to_ascii_uppercase().contains("ENVELOPE").then(|| {
            Reply::Send(format!(
                "* 1 FETCH (UID 5 BODYSTRUCTURE {bodystructure})\r\n{{tag}} OK\r\n"
            ))
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_deep_nesting_closes_the_connection_and_the_watcher_reconnects() {
    // About 400 levels overflowed a tokio worker's stack and aborted the process.
    let server = imap_server(fetch_answer(nested_bodystructure(400))).await;
    let (stop, ups) = start_watcher("deep400", server.port, password("pw-deep"), 1 << 20);
    let line = wait_for_log("deep400", "nested deeper than", Duration::from_secs(10))
        .await
        .expect("a log line naming the bound");
    assert!(line.contains("connection closed"), "{line}");
    // The watcher backs off (1 s) and connects again.
    let start = Instant::now();
    while server.connections.load(Ordering::SeqCst) < 2 && start.elapsed() < Duration::from_secs(5)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        server.connections.load(Ordering::SeqCst) >= 2,
        "reconnected"
    );
    assert!(ups.lock().unwrap().contains(&false), "inbox_up went to 0");
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_nesting_at_the_bound_is_parsed_on_a_worker_stack() {
    // At the bound (two levels are the FETCH list and the leaf's parameter
    // list): the parser's recursion at this depth fits a 2 MiB worker
    // stack, even unoptimised.
    let depth = mailcanary::inbox::imap_frame::Limits::MAX_DEPTH as usize - 2;
    let server = imap_server(fetch_answer(nested_bodystructure(depth))).await;
    let (stop, _) = start_watcher("deep47", server.port, password("pw-deep47"), 1 << 20);
    wait_for_log("deep47", "inbox watcher connected", Duration::from_secs(10))
        .await
        .expect("connected");
    // The scan fetched the envelope (answered with the deep structure) and went on polling.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        if server
            .commands
            .lock()
            .unwrap()
            .iter()
            .any(|c| c.contains("ENVELOPE"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        log_lines("deep47")
            .iter()
            .all(|l| !l.contains("disconnected")),
        "{:?}",
        log_lines("deep47")
    );
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_literal_promise_is_refused_before_any_allocation() {
    // `{500000000}` and nothing after it: 492 MiB were reserved and the
    // watcher stayed "up" until the 30 s command timeout.
    let script: Script = Arc::new(|c: &str| {
        c.to_ascii_uppercase()
            .starts_with("UID SEARCH")
            .then(|| Reply::SendAndHang(b"* 1 FETCH (UID 5 BODY[] {500000000}\r\nabc".to_vec()))
    });
    let server = imap_server(script).await;
    let (stop, ups) = start_watcher("promise", server.port, password("pw-promise"), 1 << 20);
    let line = wait_for_log(
        "promise",
        "literal of 500000000 bytes",
        Duration::from_secs(5),
    )
    .await
    .expect("refused at once, not after the command timeout");
    assert!(line.contains("more than 1048576"), "{line}");
    assert!(ups.lock().unwrap().contains(&false));
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_endless_line_is_refused_at_the_line_bound() {
    // 16 MiB without a line end after the greeting's LOGIN.
    let script: Script = Arc::new(|c: &str| {
        c.to_ascii_uppercase()
            .starts_with("LOGIN")
            .then(|| Reply::SendAndHang(vec![b'a'; 16 << 20]))
    });
    let server = imap_server(script).await;
    let start = Instant::now();
    let (stop, _) = start_watcher("endless", server.port, password("pw-endless"), 1 << 20);
    wait_for_log(
        "endless",
        "response line longer than",
        Duration::from_secs(10),
    )
    .await
    .expect("refused");
    // Linear scanning: the megabyte before the bound costs milliseconds, not a core for a minute.
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_messages_are_fetched_within_max_message_size() {
    // A server that ignores the partial fetch and sends the whole 1 MiB.
    // An envelope with a probe token, so the watcher fetches the message.
    let token = format!("mc-{}", "a".repeat(26));
    let envelope = format!(
        "* 1 FETCH (UID 5 ENVELOPE (NIL \"code\" NIL NIL NIL NIL NIL NIL NIL \"<{token}@sender.test>\"))\r\n{{tag}} OK\r\n"
    );
    let server = imap_server(Arc::new(move |c: &str| {
        let u = c.to_ascii_uppercase();
        if u.contains("ENVELOPE") {
            return Some(Reply::Send(envelope.clone()));
        }
        u.contains("BODY.PEEK[]").then(|| {
            let body = "x".repeat(1 << 20);
            Reply::Send(format!(
                "* 1 FETCH (UID 5 BODY[] {{{}}}\r\n{body})\r\n{{tag}} OK\r\n",
                body.len()
            ))
        })
    }))
    .await;
    let (stop, _) = start_watcher("bigmsg", server.port, password("pw-big"), 65_536);
    let line = wait_for_log(
        "bigmsg",
        "literal of 1048576 bytes",
        Duration::from_secs(10),
    )
    .await
    .expect("a whole message above max_message_size is refused");
    assert!(line.contains("more than 65536"), "{line}");
    let asked = server.commands.lock().unwrap().clone();
    assert!(
        asked.iter().any(|c| c.contains("BODY.PEEK[]<0.65536>")),
        "partial fetch within the bound: {asked:?}"
    );
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_login_refusal_quoting_the_password_is_redacted() {
    let secret = "Hostile-Echo-Passw0rd";
    let script: Script = Arc::new(move |c: &str| {
        c.to_ascii_uppercase().starts_with("LOGIN").then(|| {
            Reply::Send(format!(
                "{{tag}} NO [AUTHENTICATIONFAILED] Authentication failed for LOGIN \"canary@seed.test\" \"{secret}\"\r\n"
            ))
        })
    });
    let server = imap_server(script).await;
    let (stop, _) = start_watcher("echo-login", server.port, password(secret), 1 << 20);
    let line = wait_for_log("echo-login", "login refused", Duration::from_secs(5))
        .await
        .expect("refusal logged");
    assert!(line.contains("[redacted]"), "{line}");
    let all = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
    assert!(!all.contains(secret), "the password reached the log");
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_sasl_plain_echo_is_redacted() {
    let secret = "Plain-Echo-S3cret";
    let script: Script = Arc::new(|c: &str| {
        c.strip_prefix("SASL ").map(|sent| {
            Reply::Send(format!(
                "{{tag}} NO [AUTHENTICATIONFAILED] you sent {sent}\r\n"
            ))
        })
    });
    let server = imap_server(script).await;
    let auth = ImapAuth::Plain(Secret::from_test_value(secret.into()));
    let (stop, _) = start_watcher("echo-plain", server.port, auth, 1 << 20);
    let line = wait_for_log("echo-plain", "login refused", Duration::from_secs(5))
        .await
        .expect("refusal logged");
    let b64 =
        base64::engine::general_purpose::STANDARD.encode(format!("\0canary@seed.test\0{secret}"));
    assert!(line.contains("[redacted]"), "{line}");
    assert!(!line.contains(&b64[..12]), "{line}");
    stop.cancel();
}

// ---------------------------------------------------------------- SMTP

/// A relay that plays `steps`: for each line the client sends, the next
/// answer; `None` answers nothing and holds the connection.
async fn smtp_relay(
    greeting: Vec<u8>,
    answer: impl Fn(&str) -> Option<Vec<u8>> + Send + Sync + 'static,
) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let (answer, greeting) = (answer.clone(), greeting.clone());
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                if w.write_all(&greeting).await.is_err() {
                    return;
                }
                let mut in_data = false;
                while let Ok(Some(line)) = lines.next_line().await {
                    if in_data && line != "." {
                        continue;
                    }
                    let key = if in_data {
                        ".".to_string()
                    } else {
                        line.clone()
                    };
                    in_data = false;
                    match answer(&key) {
                        Some(bytes) => {
                            if key.eq_ignore_ascii_case("DATA") {
                                in_data = true;
                            }
                            if w.write_all(&bytes).await.is_err() {
                                return;
                            }
                        }
                        None => {
                            tokio::time::sleep(Duration::from_secs(120)).await;
                            return;
                        }
                    }
                }
            });
        }
    });
    port
}

/// The answers of a working relay, without AUTH.
fn relay_ok(line: &str) -> Option<Vec<u8>> {
    let u = line.to_ascii_uppercase();
    Some(
        if u.starts_with("EHLO") {
            "250-relay.test\r\n250 8BITMIME\r\n"
        } else if u == "DATA" {
            "354 go ahead\r\n"
        } else if u == "." {
            "250 2.0.0 Ok: queued as ABC123\r\n"
        } else if u == "QUIT" {
            "221 bye\r\n"
        } else {
            "250 ok\r\n"
        }
        .as_bytes()
        .to_vec(),
    )
}

fn smtp_sender(port: u16, timeout: Duration, password: Option<&str>) -> SmtpSender {
    SmtpSender {
        host: "127.0.0.1".into(),
        port,
        tls: TlsMode::None,
        username: password.map(|_| "relay-user".into()),
        password: password.map(|p| Secret::from_test_value(p.into())),
        ca_file: None,
        from: "no-reply@sender.test".into(),
        reply_to: None,
        return_path: None,
        bounce_mailbox: None,
        timeout,
        retries_4xx: 0,
        retry_backoff: Duration::from_millis(10),
        dkim: None,
    }
}

async fn send_via(sender: &SmtpSender) -> Result<String, (SendReason, String)> {
    let client = SmtpClient::new(sender).unwrap();
    let from = "no-reply@sender.test".parse().unwrap();
    let to = "seed@seed.test".parse().unwrap();
    // The outer bound only keeps a broken build from hanging the suite.
    match tokio::time::timeout(
        Duration::from_secs(30),
        client.send(&from, &to, b"Subject: x\r\n\r\nYour code is 123456.\r\n"),
    )
    .await
    .expect("the send ended on its own")
    {
        Ok(sent) => Ok(sent.reply),
        Err(f) => Err((f.reason, f.detail)),
    }
}

#[tokio::test]
async fn smtp_working_relay_accepts() {
    let port = smtp_relay(b"220 relay.test ESMTP\r\n".to_vec(), relay_ok).await;
    let reply = send_via(&smtp_sender(port, Duration::from_secs(5), None))
        .await
        .unwrap();
    assert!(reply.contains("queued as ABC123"), "{reply}");
}

#[tokio::test]
async fn smtp_sends_of_one_sender_take_turns_and_the_wait_is_not_timed() {
    // A relay that greets each connection after 400 ms and counts how many
    // are open at once; 48 sends (one round of a probe to 48 seeds) with a
    // 1 s transaction timeout take three turns of SMTP_CONCURRENCY.
    use mailcanary::probe::send::SMTP_CONCURRENCY;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (open, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (o, m) = (open.clone(), most.clone());
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let (open, most) = (o.clone(), m.clone());
            tokio::spawn(async move {
                most.fetch_max(open.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                tokio::time::sleep(Duration::from_millis(400)).await;
                let _ = w.write_all(b"220 relay.test ESMTP\r\n").await;
                let mut in_data = false;
                let mut counted = true;
                while let Ok(Some(line)) = lines.next_line().await {
                    if in_data && line != "." {
                        continue;
                    }
                    in_data = line.eq_ignore_ascii_case("DATA");
                    if line.eq_ignore_ascii_case("QUIT") && counted {
                        // Before the answer: the client's turn ends after it.
                        open.fetch_sub(1, Ordering::SeqCst);
                        counted = false;
                    }
                    let key = if line == "." { "." } else { line.as_str() };
                    let Some(bytes) = relay_ok(key) else { return };
                    if w.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                if counted {
                    open.fetch_sub(1, Ordering::SeqCst);
                }
            });
        }
    });
    let client =
        Arc::new(SmtpClient::new(&smtp_sender(port, Duration::from_secs(1), None)).unwrap());
    let started = Instant::now();
    let sends: Vec<_> = (0..3 * SMTP_CONCURRENCY)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let from = "no-reply@sender.test".parse().unwrap();
                let to = "seed@seed.test".parse().unwrap();
                client
                    .send(&from, &to, b"Subject: x\r\n\r\nYour code is 123456.\r\n")
                    .await
                    .map_err(|f| (f.reason, f.detail))
            })
        })
        .collect();
    for s in sends {
        s.await
            .unwrap()
            .expect("every send gets its turn and is accepted");
    }
    assert!(
        started.elapsed() > Duration::from_millis(1200),
        "three turns of 400 ms"
    );
    assert_eq!(most.load(Ordering::SeqCst), SMTP_CONCURRENCY);
}

#[tokio::test]
async fn smtp_silence_after_data_is_a_timeout() {
    // Accepts DATA and never answers the final dot: the timeout bounds the transaction.
    let port = smtp_relay(b"220 relay.test ESMTP\r\n".to_vec(), |l| {
        if l == "." {
            None
        } else {
            relay_ok(l)
        }
    })
    .await;
    let start = Instant::now();
    let (reason, _) = send_via(&smtp_sender(port, Duration::from_secs(2), None))
        .await
        .unwrap_err();
    assert_eq!(reason, SendReason::Timeout);
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn smtp_oversized_reply_line_is_protocol() {
    let mut greeting = b"220 ".to_vec();
    greeting.extend(std::iter::repeat_n(b'x', 8 << 20));
    greeting.extend_from_slice(b"\r\n");
    let port = smtp_relay(greeting, relay_ok).await;
    let (reason, detail) = send_via(&smtp_sender(port, Duration::from_secs(10), None))
        .await
        .unwrap_err();
    assert_eq!(reason, SendReason::Protocol, "{detail}");
}

#[tokio::test]
async fn smtp_endless_continuation_lines_are_protocol() {
    let port = smtp_relay(b"220 relay.test ESMTP\r\n".to_vec(), |l| {
        if l.to_ascii_uppercase().starts_with("EHLO") {
            // 4 MiB of `250-` lines that never end the reply.
            Some("250-more\r\n".repeat(400_000).into_bytes())
        } else {
            relay_ok(l)
        }
    })
    .await;
    let (reason, detail) = send_via(&smtp_sender(port, Duration::from_secs(10), None))
        .await
        .unwrap_err();
    assert_eq!(reason, SendReason::Protocol, "{detail}");
}

#[tokio::test]
async fn smtp_endless_line_without_end_is_protocol() {
    let mut greeting = b"220 ".to_vec();
    greeting.extend(std::iter::repeat_n(b'y', 32 << 20));
    let port = smtp_relay(greeting, relay_ok).await;
    let (reason, detail) = send_via(&smtp_sender(port, Duration::from_secs(10), None))
        .await
        .unwrap_err();
    assert_eq!(reason, SendReason::Protocol, "{detail}");
}

#[tokio::test]
async fn smtp_close_after_greeting_is_protocol() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let _ = sock.write_all(b"220 relay.test ESMTP\r\n").await;
            let mut buf = [0u8; 64];
            let _ = sock.read(&mut buf).await;
            drop(sock);
        }
    });
    let (reason, detail) = send_via(&smtp_sender(port, Duration::from_secs(5), None))
        .await
        .unwrap_err();
    assert_eq!(reason, SendReason::Protocol, "{detail}");
}

#[tokio::test]
async fn smtp_garbage_reply_is_protocol() {
    let port = smtp_relay(b"HELLO THERE, NOT SMTP\r\n".to_vec(), relay_ok).await;
    let (reason, detail) = send_via(&smtp_sender(port, Duration::from_secs(5), None))
        .await
        .unwrap_err();
    assert_eq!(reason, SendReason::Protocol, "{detail}");
}

#[tokio::test]
async fn smtp_refusal_echoing_auth_plain_is_redacted() {
    let secret = "Smtp-Echo-Secr3t";
    let port = smtp_relay(b"220 relay.test ESMTP\r\n".to_vec(), |l| {
        let u = l.to_ascii_uppercase();
        if u.starts_with("EHLO") {
            Some(b"250-relay.test\r\n250 AUTH PLAIN LOGIN\r\n".to_vec())
        } else if let Some(sent) = l.strip_prefix("AUTH PLAIN ") {
            Some(format!("535 5.7.8 rejected {sent}\r\n").into_bytes())
        } else {
            relay_ok(l)
        }
    })
    .await;
    let (reason, detail) = send_via(&smtp_sender(port, Duration::from_secs(5), Some(secret)))
        .await
        .unwrap_err();
    assert_eq!(reason, SendReason::Auth);
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("\0relay-user\0{secret}"));
    assert!(detail.contains("[redacted]"), "{detail}");
    assert!(!detail.contains(&b64[..12]), "{detail}");
}

// ---------------------------------------------------------------- OAuth token endpoint

/// An endpoint that reads the request and answers with `answer`'s bytes.
async fn token_endpoint(answer: Arc<dyn Fn() -> Vec<u8> + Send + Sync>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                while !String::from_utf8_lossy(&req).contains("grant_type=refresh_token") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = sock.write_all(&answer()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    url
}

async fn refresh_error(url: String, refresh: &str) -> (String, String) {
    let client = OAuthClient {
        token_url: url,
        client_id: "client".into(),
        client_secret: Some(Secret::from_test_value("Client-Secret-Hostile".into())),
        refresh_token: Secret::from_test_value(refresh.into()),
        scope: None,
        ca_file: None,
    };
    let (events, _rx) = mpsc::channel(8);
    let source =
        mailcanary::inbox::oauth::TokenSource::new("hostile", &client, None, events).unwrap();
    let e = tokio::time::timeout(Duration::from_secs(40), source.token(None))
        .await
        .expect("the refresh ended")
        .expect_err("refused");
    (e.reason().to_string(), e.to_string())
}

#[tokio::test]
async fn oauth_endless_answer_is_protocol() {
    let url = token_endpoint(Arc::new(|| {
        let mut a =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"access_token\":\""
                .to_vec();
        a.extend(std::iter::repeat_n(b'a', 64 << 20));
        a
    }))
    .await;
    let (reason, detail) = refresh_error(url, "1//refresh-endless").await;
    assert_eq!(reason, "protocol", "{detail}");
}

#[tokio::test]
async fn oauth_garbage_status_line_is_protocol() {
    let url = token_endpoint(Arc::new(|| b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec())).await;
    let (reason, detail) = refresh_error(url, "1//refresh-garbage").await;
    assert_eq!(reason, "protocol", "{detail}");
}

#[tokio::test]
async fn oauth_answer_cut_short_is_protocol() {
    let url = token_endpoint(Arc::new(|| {
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"access_token\":".to_vec()
    }))
    .await;
    let (reason, detail) = refresh_error(url, "1//refresh-cut").await;
    assert_eq!(reason, "protocol", "{detail}");
}

#[tokio::test]
async fn oauth_error_quoting_the_refresh_token_is_redacted() {
    let refresh = "1//Refresh-Echo-Hostile-Token";
    let url = token_endpoint(Arc::new(move || {
        let body = format!(
            "{{\"error\":\"invalid_grant\",\"error_description\":\"token {refresh} is revoked (client secret Client-Secret-Hostile)\"}}"
        );
        format!(
            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }))
    .await;
    let (reason, detail) = refresh_error(url, refresh).await;
    assert_eq!(reason, "revoked");
    assert!(!detail.contains("Refresh-Echo"), "{detail}");
    assert!(!detail.contains("Client-Secret-Hostile"), "{detail}");
    assert!(detail.contains("[redacted]"), "{detail}");
}

#[test]
fn the_default_max_message_size_is_a_few_mib() {
    assert!((1 << 20..=16 << 20).contains(&DEFAULT_MAX_MESSAGE_SIZE));
}
