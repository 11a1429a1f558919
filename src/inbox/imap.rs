//! IMAP folder watcher: one long-lived connection per watched folder, IDLE
//! where the server has it (RFC 2177), polling where it does not, and
//! reconnects spread over time with full jitter and paced per server
//! ([`super::reconnect`]).
//!
//! Every command runs under a timeout, so a server that stops answering is
//! treated like one that dropped the connection.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_imap::types::{Fetch, NameAttribute, UnsolicitedResponse};
use async_imap::Session;
use futures_util::TryStreamExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;

use super::gmail::{self, Tab};
use super::imap_frame::{overrun_in, Framed, Limits, Overrun};
use super::oauth::{TokenSource, REFUSED_HOLD};
use super::reconnect::{self, Member, BACKOFF_MIN};
use super::sasl;
use super::{
    find_token, from_address, report_up, Arrival, Disposition, FolderRole, Want, WatchEvent,
};
use crate::config::{ImapAuth, ImapInbox, OAuthMechanism, Secret, TlsMode};
use crate::contain::{contained, Panicked, Task};
use crate::inbox::oauth::TokenError;
use crate::text::{self, Kept};

type Stream = Framed<Either<TcpStream, TlsStream<TcpStream>>>;

/// Longest wait for any single IMAP exchange.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Re-issue IDLE before servers drop it (RFC 2177: at least every 29 minutes).
const IDLE_REFRESH: Duration = Duration::from_secs(25 * 60);
/// Poll interval for servers without IDLE.
const POLL_INTERVAL: Duration = Duration::from_secs(15);
/// How long a watcher waits for the recorder to persist an arrival.
const RECORD_TIMEOUT: Duration = Duration::from_secs(60);

/// Names providers give their spam folder when they do not announce `\Junk`
/// (RFC 6154 SPECIAL-USE). Matched case-insensitively against the whole name
/// and its last hierarchy level. `&V4NXPpCuTvY-` is 垃圾邮件 in modified UTF-7
/// (RFC 3501 §5.1.3), as QQ and NetEase name it.
pub const SPAM_FOLDER_NAMES: &[&str] = &[
    "Junk",
    "Spam",
    "[Gmail]/Spam",
    "[Google Mail]/Spam",
    "Junk E-mail",
    "Junk Email",
    "Bulk Mail",
    "Bulk",
    "&V4NXPpCuTvY-",
];

/// Why a watch session ended.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// TCP connect failed.
    #[error("connect {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    /// TLS handshake or setup failed.
    #[error("tls: {0}")]
    Tls(String),
    /// The server refused the login (`detail`: its words, redacted and bounded).
    #[error("login refused: {detail}{}", hint.map(|h| format!(" (hint: {h})")).unwrap_or_default())]
    Login {
        detail: String,
        hint: Option<&'static str>,
    },
    /// No OAuth access token could be had.
    #[error("{0}")]
    OAuth(TokenError),
    /// The folder to watch does not exist.
    #[error("no {0} folder found (looked for SPECIAL-USE \\Junk and the usual names)")]
    NoFolder(&'static str),
    /// LIST named no folder at all, not even INBOX, which every mailbox
    /// has: the server failed to answer (seen from Dovecot under the load
    /// of 2,000 logins), not a missing spam folder.
    #[error("the server listed no folder at all, not even INBOX; retrying")]
    EmptyList,
    /// An IMAP command failed or the connection broke (the server's
    /// words redacted and bounded when shown).
    #[error("imap: {}", text::server(&.0.to_string()))]
    Imap(async_imap::error::Error),
    /// A response passed a bound ([`Limits`]); the connection is closed.
    #[error("server response refused: {0}; connection closed")]
    Bound(Overrun),
    /// The server did not answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The recorder is gone (the daemon is stopping).
    #[error("recorder stopped")]
    RecorderGone,
    /// The session panicked; contained and counted ([`crate::contain`]).
    #[error("{0}")]
    Panicked(Panicked),
}

impl WatchError {
    /// The server's failure (unreachable, the connection broke, no
    /// answer), not this watcher's (its login, its folder): a peer that
    /// reaches the same server shows it is back ([`Member::wait_to_retry`]).
    fn is_outage(&self) -> bool {
        matches!(
            self,
            WatchError::Connect { .. }
                | WatchError::Tls(_)
                | WatchError::Imap(_)
                | WatchError::Timeout(_)
                | WatchError::EmptyList
        )
    }
}

impl From<async_imap::error::Error> for WatchError {
    fn from(e: async_imap::error::Error) -> WatchError {
        match &e {
            async_imap::error::Error::Io(io) => match overrun_in(io) {
                Some(o) => WatchError::Bound(o),
                None => WatchError::Imap(e),
            },
            _ => WatchError::Imap(e),
        }
    }
}

/// One watched folder of one seed.
pub struct ImapWatch {
    pub seed: String,
    pub cfg: ImapInbox,
    pub role: FolderRole,
    /// The configured spam folder name, instead of discovery.
    pub spam_folder: Option<String>,
    /// The provider preset's spam folder names (UTF-8), tried after `\Junk`.
    pub spam_folders: Vec<String>,
    /// How to log in (with the seed's token source for OAuth).
    pub login: Login,
    /// Move evaluated probes here instead of deleting them.
    pub cleanup_folder: Option<String>,
    /// Which messages are reported.
    pub want: Want,
    pub events: mpsc::Sender<WatchEvent>,
    pub stop: CancellationToken,
}

/// How a watcher logs in: the configured method, with the seed's shared
/// token source for the bearer mechanisms.
#[derive(Clone)]
pub enum Login {
    /// The LOGIN command.
    Password(Secret),
    /// SASL PLAIN.
    Plain(Secret),
    /// SASL XOAUTH2 / OAUTHBEARER with tokens from `source`.
    Bearer {
        mechanism: OAuthMechanism,
        source: Arc<TokenSource>,
    },
}

impl Login {
    /// The login for `auth`; `source` is the seed's token source, which
    /// the bearer mechanisms need.
    pub fn new(auth: &ImapAuth, source: Option<Arc<TokenSource>>) -> Option<Login> {
        Some(match auth {
            ImapAuth::Login(p) => Login::Password(p.clone()),
            ImapAuth::Plain(p) => Login::Plain(p.clone()),
            ImapAuth::OAuth { mechanism, .. } => Login::Bearer {
                mechanism: *mechanism,
                source: source?,
            },
        })
    }
}

/// Watch until `stop` is cancelled, reconnecting with backoff.
pub async fn watch(w: ImapWatch) {
    // The other watchers of this server: how widely to spread reconnects,
    // and the gate that paces session set-ups.
    let member = Member::join(&w.cfg.host, w.cfg.port);
    // The recorder's request to look again for a late probe.
    let recheck = super::recheck::signal(&w.seed);
    // Failed attempts since the last healthy session.
    let mut failures = 0u32;
    // UIDs known not to be (our) probes; kept across reconnects.
    let mut ignored: HashSet<u32> = HashSet::new();
    loop {
        let mut up_since = None;
        // A panic reached through some server's answer ends this session
        // only; the watcher reconnects as after a broken connection.
        let result = tokio::select! {
            r = contained(Task::InboxWatcher, &w.seed, Box::pin(session(&w, &mut ignored, &member, &recheck, &mut up_since))) => {
                r.unwrap_or_else(|p| Err(WatchError::Panicked(p)))
            }
            _ = w.stop.cancelled() => Ok(()),
        };
        // A requested stop (shutdown, or a reload replacing this watcher)
        // is not an outage: only a watcher that lost its folder reports down.
        if !w.stop.is_cancelled() {
            report_up(&w.events, &w.seed, w.role, false).await;
        }
        match result {
            Ok(()) => return,
            Err(WatchError::RecorderGone) => return,
            // The provider refused the refresh token or client: only the
            // operator can fix that, so wait for a reload (or an hour)
            // instead of retrying. The token source logged what to do.
            Err(WatchError::OAuth(e)) if e.permanent() => {
                // Until the source's hold ends, when it asks again itself.
                let until = match &w.login {
                    Login::Bearer { source, .. } => source.refused_until().await,
                    _ => None,
                }
                .unwrap_or_else(|| std::time::Instant::now() + REFUSED_HOLD);
                let retry_in = until.saturating_duration_since(std::time::Instant::now());
                tracing::warn!(seed = %w.seed, folder = w.role.as_str(), retry_in = ?retry_in, "inbox watcher waiting for a usable OAuth refresh token");
                tokio::select! {
                    _ = tokio::time::sleep(retry_in.max(BACKOFF_MIN)) => {}
                    _ = w.stop.cancelled() => return,
                }
            }
            Err(e) => {
                // A session that was up for a while was healthy: start the
                // backoff over, from a delay spread over the server's peers.
                if up_since.is_some_and(|t: std::time::Instant| t.elapsed() >= reconnect::HEALTHY) {
                    failures = 0;
                }
                let (retry_in, redraw) = {
                    let mut rng = rand::rng();
                    let peers = member.peers();
                    (
                        reconnect::delay(failures, peers, &mut rng),
                        reconnect::delay(0, peers, &mut rng),
                    )
                };
                tracing::warn!(seed = %w.seed, folder = w.role.as_str(), error = %e, retry_in = ?retry_in, "inbox watcher disconnected");
                tokio::select! {
                    _ = member.wait_to_retry(retry_in, e.is_outage(), redraw) => {}
                    _ = w.stop.cancelled() => return,
                }
                failures = failures.saturating_add(1);
            }
        }
    }
}

async fn timed<T, E: Into<WatchError>>(
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, WatchError> {
    match tokio::time::timeout(COMMAND_TIMEOUT, fut).await {
        Ok(r) => r.map_err(Into::into),
        Err(_) => Err(WatchError::Timeout(COMMAND_TIMEOUT)),
    }
}

async fn connect(cfg: &ImapInbox, how: &Login) -> Result<Session<Stream>, WatchError> {
    // A token first: without one there is no point in connecting.
    let token = match how {
        Login::Bearer { source, .. } => Some(source.token(None).await.map_err(WatchError::OAuth)?),
        _ => None,
    };
    let addr = format!("{}:{}", cfg.host, cfg.port);
    let tcp = timed(async {
        TcpStream::connect(&addr)
            .await
            .map_err(|source| WatchError::Connect {
                addr: addr.clone(),
                source,
            })
    })
    .await?;
    let tls = |tcp: TcpStream| async {
        let config = crate::tls::client_config(cfg.ca_file.as_deref())
            .map_err(|e| WatchError::Tls(e.to_string()))?;
        let name = rustls::pki_types::ServerName::try_from(cfg.host.clone())
            .map_err(|e| WatchError::Tls(e.to_string()))?;
        timed(async {
            TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| WatchError::Tls(e.to_string()))
        })
        .await
    };
    let limits = Limits::for_messages(cfg.max_message_size);
    let mut client = match cfg.tls {
        TlsMode::None => async_imap::Client::new(Framed::new(Either::Left(tcp), limits)),
        TlsMode::Implicit => {
            async_imap::Client::new(Framed::new(Either::Right(tls(tcp).await?), limits))
        }
        TlsMode::Starttls => {
            let mut plain = async_imap::Client::new(Framed::new(tcp, limits));
            read_greeting(&mut plain).await?;
            timed(plain.run_command_and_check_ok("STARTTLS", None)).await?;
            // No greeting after STARTTLS (RFC 3501 §6.2.1).
            let secured = tls(plain.into_inner().into_inner()).await?;
            let client = async_imap::Client::new(Framed::new(Either::Right(secured), limits));
            return login(client, cfg, how, token).await;
        }
    };
    read_greeting(&mut client).await?;
    login(client, cfg, how, token).await
}

async fn read_greeting<T>(client: &mut async_imap::Client<T>) -> Result<(), WatchError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    match tokio::time::timeout(COMMAND_TIMEOUT, client.read_response()).await {
        Ok(Ok(Some(_))) => Ok(()),
        Ok(Ok(None)) => Err(WatchError::Imap(async_imap::error::Error::ConnectionLost)),
        Ok(Err(e)) => Err(async_imap::error::Error::from(e).into()),
        Err(_) => Err(WatchError::Timeout(COMMAND_TIMEOUT)),
    }
}

async fn login(
    client: async_imap::Client<Stream>,
    cfg: &ImapInbox,
    how: &Login,
    token: Option<Secret>,
) -> Result<Session<Stream>, WatchError> {
    let refused = |e: async_imap::error::Error| match WatchError::from(e) {
        // The server's words, which may quote what it was sent: redacted.
        WatchError::Imap(e) => WatchError::Login {
            detail: text::server(&e.to_string()),
            hint: cfg.hint,
        },
        other => other,
    };
    let session = match (how, token) {
        (Login::Password(password), _) => {
            text::register(password.expose(), Kept::Always);
            timed_auth(client.login(&cfg.username, password.expose())).await
        }
        (Login::Plain(password), _) => {
            let response = format!("\0{}\0{}", cfg.username, password.expose());
            text::register(password.expose(), Kept::Always);
            text::register(&response, Kept::Always);
            let plain = SaslOnce::new(response, "");
            timed_auth(client.authenticate("PLAIN", plain.0)).await
        }
        (Login::Bearer { mechanism, source }, Some(token)) => {
            let (sasl, challenged) = bearer(cfg, *mechanism, &token);
            match timed_auth(client.authenticate(mechanism.sasl_name(), sasl)).await? {
                Ok(s) => Ok(Ok(s)),
                // The token was refused (revoked or expired early): ask for a
                // new one and try once more on the same connection. Other
                // refusals (IMAP disabled, a wrong user name) keep the token.
                Err((async_imap::error::Error::No(text), client))
                    if challenged.load(Ordering::Relaxed)
                        || text.contains("AUTHENTICATIONFAILED") =>
                {
                    let fresh = source
                        .token(Some(&token))
                        .await
                        .map_err(WatchError::OAuth)?;
                    let (sasl, _) = bearer(cfg, *mechanism, &fresh);
                    timed_auth(client.authenticate(mechanism.sasl_name(), sasl)).await
                }
                Err(other) => Ok(Err(other)),
            }
        }
        // `connect` fetched the token; without one there was no connection.
        (Login::Bearer { .. }, None) => {
            return Err(WatchError::OAuth(TokenError::Transient {
                reason: crate::inbox::oauth::Transient::Network,
                detail: "no access token".into(),
            }))
        }
    }?;
    let mut session = session.map_err(|(e, _)| refused(e))?;
    if cfg.imap_id {
        identify(&mut session).await?;
    }
    Ok(session)
}

async fn timed_auth<T>(fut: impl std::future::Future<Output = T>) -> Result<T, WatchError> {
    tokio::time::timeout(COMMAND_TIMEOUT, fut)
        .await
        .map_err(|_| WatchError::Timeout(COMMAND_TIMEOUT))
}

fn bearer(
    cfg: &ImapInbox,
    mechanism: OAuthMechanism,
    token: &Secret,
) -> (SaslOnce, Arc<AtomicBool>) {
    // After a refusal, XOAUTH2 servers send a JSON error as a challenge and
    // wait for an empty answer; OAUTHBEARER ones for a single %x01 (RFC 7628 §3.2.3).
    let after_error = match mechanism {
        OAuthMechanism::XOAuth2 => "",
        OAuthMechanism::OAuthBearer => "\x01",
    };
    let response = sasl::bearer_response(mechanism, &cfg.username, token, &cfg.host, cfg.port);
    // Access tokens rotate: remembered for a while, not for ever.
    text::register(token.expose(), Kept::Rotating);
    text::register(&response, Kept::Rotating);
    SaslOnce::new(response, after_error)
}

/// A one-step SASL exchange: the response to the first challenge, then
/// what to say to any further challenge (an error report), which it notes.
struct SaslOnce {
    first: Option<String>,
    after: &'static str,
    challenged: Arc<AtomicBool>,
}

impl SaslOnce {
    fn new(first: String, after: &'static str) -> (SaslOnce, Arc<AtomicBool>) {
        let challenged = Arc::new(AtomicBool::new(false));
        let sasl = SaslOnce {
            first: Some(first),
            after,
            challenged: challenged.clone(),
        };
        (sasl, challenged)
    }
}

impl async_imap::Authenticator for SaslOnce {
    type Response = String;

    fn process(&mut self, _challenge: &[u8]) -> String {
        match self.first.take() {
            Some(first) => first,
            None => {
                self.challenged.store(true, Ordering::Relaxed);
                self.after.to_string()
            }
        }
    }
}

/// Send IMAP ID (RFC 2971) where the server has it: NetEase refuses SELECT
/// ("Unsafe Login") without it, Gmail asks clients to send it. Servers
/// without ID are left alone.
async fn identify(session: &mut Session<Stream>) -> Result<(), WatchError> {
    let caps = timed(session.capabilities()).await?;
    if !caps.has_str("ID") {
        return Ok(());
    }
    let ours = [
        ("name", Some("mailcanary")),
        ("version", Some(env!("CARGO_PKG_VERSION"))),
        ("vendor", Some("mailcanary")),
    ];
    match timed(session.id(ours)).await {
        Ok(_) => Ok(()),
        // A broken connection ends the session; a server that announces ID
        // and then refuses it, or answers it oddly, is only noted.
        Err(
            e @ (WatchError::Timeout(_)
            | WatchError::Bound(_)
            | WatchError::Imap(
                async_imap::error::Error::Io(_) | async_imap::error::Error::ConnectionLost,
            )),
        ) => Err(e),
        Err(e) => {
            tracing::debug!(error = %e, "IMAP ID not accepted");
            Ok(())
        }
    }
}

/// The folder name for a role: INBOX, or the spam folder by SPECIAL-USE
/// `\Junk`, then by the usual names.
async fn folder_for(
    session: &mut Session<Stream>,
    role: FolderRole,
    configured: Option<&str>,
    preset: &[String],
) -> Result<String, WatchError> {
    if role == FolderRole::Inbox {
        return Ok("INBOX".to_string());
    }
    if let Some(name) = configured {
        return Ok(mailbox_name(name));
    }
    let names: Vec<_> = timed(async {
        session
            .list(Some(""), Some("*"))
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .await?;
    if names.is_empty() {
        return Err(WatchError::EmptyList);
    }
    if let Some(n) = names.iter().find(|n| {
        n.attributes()
            .iter()
            .any(|a| matches!(a, NameAttribute::Junk))
    }) {
        return Ok(n.name().to_string());
    }
    let preset: Vec<String> = preset.iter().map(|n| mailbox_name(n)).collect();
    let candidates = preset
        .iter()
        .map(String::as_str)
        .chain(SPAM_FOLDER_NAMES.iter().copied());
    for wanted in candidates {
        for n in &names {
            let last = n
                .delimiter()
                .and_then(|d| n.name().rsplit(d).next())
                .unwrap_or(n.name());
            // Encoded names compare exactly: their base64 is case-sensitive.
            let same = |a: &str| {
                if wanted.contains('&') {
                    a == wanted
                } else {
                    a.eq_ignore_ascii_case(wanted)
                }
            };
            if same(n.name()) || same(last) {
                return Ok(n.name().to_string());
            }
        }
    }
    Err(WatchError::NoFolder("spam"))
}

/// Connect, log in and select the folder, in turn with the server's other
/// watchers ([`Member::setup`]).
async fn set_up(
    w: &ImapWatch,
    member: &Member,
) -> Result<(Session<Stream>, String, Caps), WatchError> {
    let _turn = member.setup().await;
    let mut session = connect(&w.cfg, &w.login).await?;
    let folder = folder_for(
        &mut session,
        w.role,
        w.spam_folder.as_deref(),
        &w.spam_folders,
    )
    .await?;
    timed(session.select(&folder)).await?;
    let caps = timed(session.capabilities()).await?;
    let caps = Caps {
        idle: caps.has_str("IDLE"),
        uidplus: caps.has_str("UIDPLUS"),
        mv: caps.has_str("MOVE"),
        // Tabs exist in the inbox only.
        gmail: caps.has_str(gmail::CAPABILITY) && w.role == FolderRole::Inbox,
    };
    Ok((session, folder, caps))
}

/// One session: set up, then watch until the connection breaks.
/// `up_since` is set once it is up.
///
/// A watcher holds this future (boxed) for as long as its folder is
/// watched, so what it keeps between mails is all an idle watcher costs
/// (times 2,000 for 1,000 seeds). Setting up, scanning and each IDLE period
/// are boxed: a future is as large as its largest state, and set-up (a TLS
/// handshake and login) and scans (fetches) are large and brief; inline
/// they sized every idle watcher's task at 44 KB (the test
/// `an_idle_watcher_holds_little`).
async fn session(
    w: &ImapWatch,
    ignored: &mut HashSet<u32>,
    member: &Member,
    recheck: &tokio::sync::Notify,
    up_since: &mut Option<std::time::Instant>,
) -> Result<(), WatchError> {
    let (session, folder, caps) = Box::pin(set_up(w, member)).await?;
    member.server_answers();
    // On the heap once: every future below holds a pointer, not a copy.
    let mut session = Box::new(session);
    *up_since = Some(std::time::Instant::now());
    let idle = caps.idle;
    if !report_up(&w.events, &w.seed, w.role, true).await {
        return Err(WatchError::RecorderGone);
    }
    tracing::info!(seed = %w.seed, %folder, idle, gmail = caps.gmail, auth = w.cfg.auth.as_str(), "inbox watcher connected");

    let mut last_uid = 0u32;
    loop {
        last_uid = Box::pin(scan(w, &mut session, &folder, last_uid, ignored, caps)).await?;
        // Unsolicited responses queue up in a bounded channel; the scan
        // reads the folder itself, so they are dropped, except that an
        // EXISTS or RECENT means mail arrived during the scan. The server has
        // then told this session about it already and IDLE would not tell
        // again: scan once more instead of waiting for the next refresh.
        let mut arrived = false;
        while let Ok(r) = session.unsolicited_responses.try_recv() {
            arrived |= matches!(
                r,
                UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
            );
        }
        if arrived {
            continue;
        }
        if idle {
            let stopped;
            (session, stopped) = Box::pin(idle_once(session, &w.stop, recheck)).await?;
            if stopped {
                let _ =
                    tokio::time::timeout(Duration::from_secs(2), Box::pin(session.logout())).await;
                return Ok(());
            }
        } else {
            tokio::select! {
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
                _ = w.stop.cancelled() => return Ok(()),
            }
            timed(Box::pin(session.noop())).await?;
        }
    }
}

/// One IDLE period: until the server reports something, the refresh is
/// due ([`IDLE_REFRESH`]), the recorder asks to look again
/// ([`super::recheck`]) or `stop`. Returns the session and whether to stop.
async fn idle_once(
    session: Box<Session<Stream>>,
    stop: &CancellationToken,
    recheck: &tokio::sync::Notify,
) -> Result<(Box<Session<Stream>>, bool), WatchError> {
    // Unboxed in a call of its own: moving out of `*session` here would
    // keep the emptied box allocated until this function returns, a
    // session's size (1.3 KB) for every idle watcher.
    let mut handle = unbox(session).idle();
    timed(handle.init()).await?;
    // Ended by dropping the wait, so without an interrupt source (one
    // channel per idle connection: vendor/async-imap/PATCHES.md).
    let stopped = tokio::select! {
        r = handle.wait_for(IDLE_REFRESH) => { r?; false }
        _ = recheck.notified() => false,
        _ = stop.cancelled() => true,
    };
    let session = timed(Box::pin(handle.done())).await?;
    Ok((Box::new(session), stopped))
}

/// The box's value; the box is freed here, not where its owner goes out of scope.
#[expect(
    clippy::boxed_local,
    reason = "taking the box is the point: it is freed here"
)]
fn unbox<T>(b: Box<T>) -> T {
    *b
}

/// Look at messages newer than `last_uid` (all recent ones on the first
/// scan), report probes, and clean up recorded ones. Returns the new high UID.
async fn scan(
    w: &ImapWatch,
    session: &mut Session<Stream>,
    folder: &str,
    last_uid: u32,
    ignored: &mut HashSet<u32>,
    caps: Caps,
) -> Result<u32, WatchError> {
    let query = if last_uid == 0 {
        format!(
            "SINCE {}",
            imap_date(SystemTime::now() - w.want.look_back())
        )
    } else {
        format!("UID {}:*", last_uid + 1)
    };
    let mut uids: Vec<u32> = timed(session.uid_search(&query))
        .await?
        .into_iter()
        .filter(|u| *u > last_uid && !ignored.contains(u))
        .collect();
    uids.sort_unstable();
    let high = uids.last().copied().unwrap_or(last_uid).max(last_uid);
    for chunk in uids.chunks(200) {
        let set = chunk
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let heads: Vec<Fetch> = timed(async {
            session
                .uid_fetch(&set, "(UID ENVELOPE)")
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
        let probes: Vec<u32> = heads
            .iter()
            .filter_map(|f| {
                let uid = f.uid?;
                let mid = f.envelope().and_then(|e| e.message_id.as_deref());
                let from = f.envelope().and_then(envelope_from);
                if w.want.by_envelope(mid, from.as_deref()) {
                    Some(uid)
                } else {
                    ignored.insert(uid);
                    None
                }
            })
            .collect();
        for uid in probes {
            handle_probe(w, session, folder, uid, ignored, caps).await?;
        }
    }
    Ok(high)
}

async fn handle_probe(
    w: &ImapWatch,
    session: &mut Session<Stream>,
    folder: &str,
    uid: u32,
    ignored: &mut HashSet<u32>,
    caps: Caps,
) -> Result<(), WatchError> {
    let seen = SystemTime::now();
    // At most `max_message_size` bytes (a partial FETCH, RFC 3501 §6.4.5):
    // a probe is small, and its headers, which evaluation needs, come first.
    let max = w.cfg.max_message_size;
    let fetched: Vec<Fetch> = timed(async {
        session
            .uid_fetch(
                uid.to_string(),
                if caps.gmail {
                    format!("(UID INTERNALDATE X-GM-LABELS BODY.PEEK[]<0.{max}>)")
                } else {
                    format!("(UID INTERNALDATE BODY.PEEK[]<0.{max}>)")
                },
            )
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .await?;
    let Some(f) = fetched.iter().find(|f| f.uid == Some(uid)) else {
        return Ok(()); // expunged meanwhile
    };
    let Some(raw) = f.body() else { return Ok(()) };
    if raw.len() >= max {
        tracing::warn!(seed = %w.seed, uid, max_message_size = max, "message larger than max_message_size: evaluated from its first bytes only");
    }
    let token = find_token(raw);
    let from = from_address(raw);
    if !w.want.by_message(&token, &from) {
        ignored.insert(uid);
        return Ok(());
    }
    let tab = if caps.gmail {
        gmail_tab(session, uid, f.gmail_labels().map(Vec::as_slice)).await?
    } else {
        None
    };
    let stored = f
        .internal_date()
        .and_then(|d| u64::try_from(d.timestamp_millis()).ok())
        .map(|ms| UNIX_EPOCH + Duration::from_millis(ms));
    let (reply, answer) = oneshot::channel();
    w.events
        .send(WatchEvent::Arrival(Arrival {
            seed: w.seed.clone(),
            token,
            from,
            role: w.role,
            folder: folder.to_string(),
            tab,
            seen,
            stored,
            stored_exact: false,
            raw: raw.to_vec(),
            reply,
        }))
        .await
        .map_err(|_| WatchError::RecorderGone)?;
    match tokio::time::timeout(RECORD_TIMEOUT, answer).await {
        Ok(Ok(Disposition::Remove)) => {
            // Delete or move, never mark as "not spam": that would train the filter.
            remove(
                session,
                uid,
                w.cleanup_folder.as_deref().map(mailbox_name).as_deref(),
                caps,
            )
            .await?;
            ignored.insert(uid);
        }
        Ok(Ok(Disposition::Keep)) => {
            ignored.insert(uid);
        }
        // No answer: leave the message; the next scan after a reconnect finds it again.
        Ok(Err(_)) => return Err(WatchError::RecorderGone),
        Err(_) => {
            tracing::warn!(seed = %w.seed, "recorder did not answer in time; message left in place")
        }
    }
    Ok(())
}

/// The Gmail tab of an inbox message: from its labels where they name one,
/// else by Gmail's own search: Primary first (the common case, one search),
/// then each category. async-imap reads a refused SEARCH as "no hits", so a
/// message no search places is logged as unknown and stays `inbox`, the
/// folder it is in, rather than being called Primary.
async fn gmail_tab(
    session: &mut Session<Stream>,
    uid: u32,
    labels: Option<&[std::borrow::Cow<'_, str>]>,
) -> Result<Option<Tab>, WatchError> {
    if let Some(tab) = labels.and_then(gmail::tab_from_labels) {
        return Ok(Some(tab));
    }
    if gmail_hit(session, uid, gmail::PRIMARY_QUERY).await? {
        return Ok(None);
    }
    for tab in Tab::ALL {
        if gmail_hit(session, uid, &tab.raw_query()).await? {
            return Ok(Some(tab));
        }
    }
    tracing::warn!(
        uid,
        "Gmail tab unknown: no category search matched; counted as inbox"
    );
    Ok(None)
}

/// Whether Gmail's search `query` finds message `uid`.
async fn gmail_hit(
    session: &mut Session<Stream>,
    uid: u32,
    query: &str,
) -> Result<bool, WatchError> {
    let hits = timed(session.uid_search(format!("UID {uid} {query}"))).await?;
    Ok(hits.contains(&uid))
}

/// A configured mailbox name as the server knows it: names with
/// non-ASCII characters are encoded; ASCII names are taken as written, so a
/// name given already encoded (`&V4NXPpCuTvY-`) keeps working.
pub fn mailbox_name(name: &str) -> String {
    if name.is_ascii() {
        name.to_string()
    } else {
        mutf7(name)
    }
}

/// A mailbox name in IMAP's modified UTF-7 (RFC 3501 §5.1.3), as servers
/// list and expect them: printable ASCII stays, `&` becomes `&-`, and runs
/// of other characters become `&` + base64 (with `,` for `/`) of their
/// UTF-16BE + `-`.
pub fn mutf7(name: &str) -> String {
    use base64::Engine;
    const ALPHABET: base64::alphabet::Alphabet = match base64::alphabet::Alphabet::new(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,",
    ) {
        Ok(a) => a,
        Err(_) => panic!("valid alphabet"),
    };
    const ENGINE: base64::engine::GeneralPurpose =
        base64::engine::GeneralPurpose::new(&ALPHABET, base64::engine::general_purpose::NO_PAD);
    let mut out = String::with_capacity(name.len());
    let mut run: Vec<u16> = Vec::new();
    let flush = |run: &mut Vec<u16>, out: &mut String| {
        if !run.is_empty() {
            let bytes: Vec<u8> = run.iter().flat_map(|u| u.to_be_bytes()).collect();
            out.push('&');
            out.push_str(&ENGINE.encode(bytes));
            out.push('-');
            run.clear();
        }
    };
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut run, &mut out);
            out.push(c);
            if c == '&' {
                out.push('-');
            }
        } else {
            let mut buf = [0u16; 2];
            run.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut run, &mut out);
    out
}

/// `mailbox@host` of an ENVELOPE's first From address, lower-case.
fn envelope_from(e: &async_imap::imap_proto::Envelope<'_>) -> Option<String> {
    let a = e.from.as_ref()?.first()?;
    let (mailbox, host) = (a.mailbox.as_deref()?, a.host.as_deref()?);
    Some(
        format!(
            "{}@{}",
            String::from_utf8_lossy(mailbox),
            String::from_utf8_lossy(host)
        )
        .to_ascii_lowercase(),
    )
}

/// Take an evaluated probe out of the folder: UID MOVE (RFC 6851) where the
/// server has it and a cleanup folder is set, else COPY (if a folder is
/// set) and `\Deleted` + UID EXPUNGE (RFC 4315 UIDPLUS) or EXPUNGE.
async fn remove(
    session: &mut Session<Stream>,
    uid: u32,
    folder: Option<&str>,
    caps: Caps,
) -> Result<(), WatchError> {
    let set = uid.to_string();
    if let Some(folder) = folder {
        if caps.mv {
            timed(session.uid_mv(&set, folder)).await?;
            return Ok(());
        }
        timed(session.uid_copy(&set, folder)).await?;
    }
    timed(async {
        session
            .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .await?;
    if caps.uidplus {
        timed(async {
            session
                .uid_expunge(&set)
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
    } else {
        timed(async { session.expunge().await?.try_collect::<Vec<_>>().await }).await?;
    }
    Ok(())
}

/// The server capabilities the watcher uses.
#[derive(Debug, Clone, Copy)]
struct Caps {
    idle: bool,
    uidplus: bool,
    mv: bool,
    /// Gmail's extensions (labels, X-GM-RAW), in the inbox.
    gmail: bool,
}

/// IMAP date for SEARCH SINCE (RFC 3501 §9: date = dd-Mon-yyyy).
fn imap_date(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%-d-%b-%Y")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_names_are_modified_utf7() {
        // RFC 3501 §5.1.3's example, and the spam folders of QQ, NetEase and Mail.ru.
        assert_eq!(
            mutf7("~peter/mail/台北/日本語"),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        assert_eq!(mutf7("垃圾邮件"), "&V4NXPpCuTvY-");
        assert_eq!(mutf7("垃圾箱"), "&V4NXPnux-");
        assert_eq!(mutf7("Спам"), "&BCEEPwQwBDw-");
        assert_eq!(mutf7("Junk & Spam"), "Junk &- Spam");
        assert_eq!(mutf7("[Gmail]/Spam"), "[Gmail]/Spam");
        // Outside the BMP: a surrogate pair in one run.
        assert_eq!(mutf7("a😀b"), "a&2D3eAA-b");
        assert_eq!(mutf7(""), "");
    }

    /// Plays a recorded server transcript (tests/fixtures/imap) to one
    /// client: checks each command the client sends against the "C:" line,
    /// answers with the "S:" lines. Returns the commands it saw.
    /// [`replay`] on a free loopback port: the port, and the server's task.
    async fn replay_on_free_port(
        transcript: String,
    ) -> (u16, tokio::task::JoinHandle<Vec<String>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        (port, tokio::spawn(replay(listener, transcript)))
    }

    /// A seed's inbox on 127.0.0.1:`port`, without TLS.
    fn loopback_inbox(port: u16, username: &str, auth: ImapAuth, imap_id: bool) -> ImapInbox {
        ImapInbox {
            host: "127.0.0.1".into(),
            port,
            tls: TlsMode::None,
            username: username.into(),
            auth,
            ca_file: None,
            imap_id,
            hint: None,
            max_message_size: crate::config::DEFAULT_MAX_MESSAGE_SIZE,
        }
    }

    async fn replay(listener: tokio::net::TcpListener, transcript: String) -> Vec<String> {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let (sock, _) = listener.accept().await.unwrap();
        let (r, mut w) = sock.into_split();
        let mut lines = BufReader::new(r).lines();
        let mut seen = Vec::new();
        let mut tag = String::new();
        for line in transcript.lines() {
            if let Some(out) = line.strip_prefix("S: ") {
                let mut out = out.replace("{tag}", &tag);
                if let Some(start) = out.find("{BODY:") {
                    let end = start + out[start..].find('}').unwrap();
                    let token = &out[start + 6..end];
                    let body = format!("Message-ID: <{token}@sender.test>\r\nFrom: no-reply@sender.test\r\nSubject: Your code\r\n\r\nYour code is 123456.\r\n");
                    out = format!(
                        "{}{{{}}}\r\n{body}{}",
                        &out[..start],
                        body.len(),
                        &out[end + 1..]
                    );
                }
                w.write_all(format!("{out}\r\n").as_bytes()).await.unwrap();
            } else if let Some(want) = line.strip_prefix("D: ") {
                use base64::Engine;
                let got = lines.next_line().await.unwrap().unwrap_or_default();
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(got.trim())
                    .unwrap_or_default();
                let got = String::from_utf8_lossy(&decoded).replace('\x01', "^A");
                assert_eq!(got, want, "SASL response");
                seen.push(got);
            } else if let Some(want) = line.strip_prefix("C: ") {
                let got = lines.next_line().await.unwrap().unwrap_or_default();
                let (t, command) = got.split_once(' ').unwrap_or((&got, ""));
                tag = t.to_string();
                let ok = match want.strip_suffix("<any>") {
                    Some(prefix) => command.starts_with(prefix),
                    None => command == want,
                };
                assert!(ok, "client sent {command:?}, transcript wants {want:?}");
                seen.push(command.to_string());
            }
        }
        seen
    }

    /// What a watcher holds while its folder is idle is what each of 2,000
    /// watchers costs (docs/scale.md): set-up and scans are boxed so that
    /// their large futures do not size it. Measured in the build under test
    /// (debug futures are larger than release ones); before the boxes the
    /// task alone held 19.8 KB in a debug build, 44 KB in release.
    #[test]
    fn an_idle_watcher_holds_little() {
        let cfg = ImapInbox {
            host: "127.0.0.1".into(),
            port: 1,
            tls: TlsMode::Implicit,
            username: "seed@example.com".into(),
            auth: ImapAuth::Login(Secret::new("p".into())),
            ca_file: None,
            imap_id: true,
            hint: None,
            max_message_size: crate::config::DEFAULT_MAX_MESSAGE_SIZE,
        };
        let watcher = || ImapWatch {
            seed: "s".into(),
            cfg: cfg.clone(),
            role: FolderRole::Inbox,
            spam_folder: None,
            spam_folders: vec![],
            login: Login::new(&cfg.auth, None).unwrap(),
            cleanup_folder: None,
            want: Want::Probes { match_from: vec![] },
            events: mpsc::channel(1).0,
            stop: CancellationToken::new(),
        };
        let (w, member) = (watcher(), Member::join("127.0.0.1", 1));
        let (mut ignored, mut up) = (HashSet::new(), None);
        let recheck = tokio::sync::Notify::new();
        let session_future =
            std::mem::size_of_val(&session(&w, &mut ignored, &member, &recheck, &mut up));
        let set_up_future = std::mem::size_of_val(&set_up(&w, &member));
        let watch_future = std::mem::size_of_val(&watch(watcher()));
        fn output_size<'a, A, R>(
            _: impl FnOnce(A, &'a CancellationToken, &'a tokio::sync::Notify) -> R,
        ) -> usize {
            std::mem::size_of::<R>()
        }
        let idle_future = output_size(idle_once);
        let connection = std::mem::size_of::<Session<Stream>>();
        eprintln!(
            "connection {connection} B, set-up {set_up_future} B (boxed), IDLE {idle_future} B (boxed), session {session_future} B (boxed), watcher task {watch_future} B"
        );
        // Between mails a watcher holds its task, the boxed session and the
        // boxed IDLE period, which hold the connection.
        let idle_cost = watch_future + session_future + idle_future;
        assert!(
            idle_cost < 12 * 1024,
            "an idle watcher holds {idle_cost} bytes (connection {connection})"
        );
        assert!(set_up_future > idle_cost, "set-up is worth boxing");
    }

    /// A LIST that names nothing, not even INBOX, is the server failing
    /// (Dovecot under 2,000 logins did it): retried as an outage, not
    /// reported as a missing spam folder, which a LIST naming INBOX alone is.
    #[tokio::test]
    async fn a_list_naming_no_folder_is_the_servers_failure() {
        for listed in ["", "S: * LIST (\\HasNoChildren) \"/\" INBOX\n"] {
            let transcript = format!(
                "S: * OK ready\n\
                 C: LOGIN \"seed@example.com\" <any>\n\
                 S: {{tag}} OK logged in\n\
                 C: LIST \"\" *\n\
                 {listed}S: {{tag}} OK LIST done\n"
            );
            let (port, server) = replay_on_free_port(transcript).await;
            // Logging in registers the password for redaction in the whole
            // test process: a short one would cut letters out of other
            // tests' text.
            let auth = ImapAuth::Login(Secret::new("empty-list-test-password".into()));
            let cfg = loopback_inbox(port, "seed@example.com", auth, false);
            let login = Login::new(&cfg.auth, None).unwrap();
            let mut session = connect(&cfg, &login).await.expect("login");
            let e = folder_for(&mut session, FolderRole::Spam, None, &[])
                .await
                .unwrap_err();
            if listed.is_empty() {
                assert!(matches!(e, WatchError::EmptyList), "{e}");
                assert!(e.is_outage());
            } else {
                assert!(matches!(e, WatchError::NoFolder("spam")), "{e}");
                assert!(!e.is_outage());
            }
            server.await.unwrap();
        }
    }

    #[tokio::test]
    async fn gmail_tabs_from_labels_and_x_gm_raw_in_a_recorded_session() {
        let transcript = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/imap/gmail-tabs.txt"
        ))
        .unwrap();
        let (port, server) = replay_on_free_port(transcript).await;
        let auth = ImapAuth::Login(Secret::new("app-password".into()));
        let cfg = loopback_inbox(port, "canary.seed@gmail.com", auth, true);
        let login = Login::new(&cfg.auth, None).unwrap();
        let mut session = connect(&cfg, &login).await.expect("login");
        // The spam folder by SPECIAL-USE, before any preset name.
        let spam = folder_for(&mut session, FolderRole::Spam, None, &["Spam".into()])
            .await
            .unwrap();
        assert_eq!(spam, "[Gmail]/Spam");
        timed(session.select("INBOX")).await.unwrap();

        let (events, mut rx) = mpsc::channel(8);
        let w = ImapWatch {
            seed: "gmail1".into(),
            cfg: cfg.clone(),
            role: FolderRole::Inbox,
            spam_folder: None,
            spam_folders: vec![],
            login,
            cleanup_folder: None,
            want: Want::Probes { match_from: vec![] },
            events,
            stop: CancellationToken::new(),
        };
        let tabs = tokio::spawn(async move {
            let mut tabs = Vec::new();
            while let Some(WatchEvent::Arrival(a)) = rx.recv().await {
                tabs.push((a.token.map(|t| t.to_string()), a.tab));
                let _ = a.reply.send(Disposition::Keep);
            }
            tabs
        });
        let caps = Caps {
            idle: true,
            uidplus: true,
            mv: true,
            gmail: true,
        };
        let mut ignored = HashSet::new();
        for uid in [7, 8, 9] {
            handle_probe(&w, &mut session, "INBOX", uid, &mut ignored, caps)
                .await
                .unwrap();
        }
        timed(session.logout()).await.unwrap();
        drop(w);
        let seen = server.await.unwrap();
        assert!(seen
            .iter()
            .any(|c| c.starts_with("ID (\"name\" \"mailcanary\"")));
        let tabs = tabs.await.unwrap();
        let t = |c: char| Some(format!("mc-{}", c.to_string().repeat(26)));
        assert_eq!(
            tabs,
            vec![
                (t('a'), Some(Tab::Promotions)),
                (t('b'), Some(Tab::Social)),
                (t('c'), None),
            ]
        );
    }

    /// A token endpoint that hands out `tokens` in turn (RFC 6749 §5.1
    /// answers), one per connection.
    async fn token_endpoint(tokens: &'static [&'static str]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        tokio::spawn(async move {
            for token in tokens {
                let (mut sock, _) = listener.accept().await.unwrap();
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                // Headers, then the form body (Content-Length) in any chunks.
                while !String::from_utf8_lossy(&req).contains("grant_type=refresh_token") {
                    let n = sock.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    req.extend_from_slice(&buf[..n]);
                }
                let body = format!(
                    r#"{{"access_token":"{token}","expires_in":3599,"token_type":"Bearer"}}"#
                );
                let reply = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                sock.write_all(reply.as_bytes()).await.unwrap();
            }
        });
        url
    }

    #[tokio::test]
    async fn a_token_gmail_refuses_is_replaced_on_the_same_connection() {
        let transcript = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/imap/gmail-xoauth2-refused.txt"
        ))
        .unwrap();
        let (port, server) = replay_on_free_port(transcript).await;
        let client = crate::config::OAuthClient {
            token_url: token_endpoint(&["ya29.first", "ya29.second"]).await,
            client_id: "client".into(),
            client_secret: Some(Secret::new("secret".into())),
            refresh_token: Secret::new("1//refresh".into()),
            scope: None,
            ca_file: None,
        };
        let (events, mut rx) = mpsc::channel(8);
        let source = TokenSource::new("gmail1", &client, None, events).unwrap();
        let auth = ImapAuth::OAuth {
            mechanism: OAuthMechanism::XOAuth2,
            client,
        };
        let cfg = loopback_inbox(port, "canary.seed@gmail.com", auth, true);
        let login = Login::new(&cfg.auth, Some(source)).unwrap();
        let mut session = connect(&cfg, &login).await.expect("second token accepted");
        timed(session.logout()).await.unwrap();
        let seen = server.await.unwrap();
        assert!(
            seen.contains(&String::new()),
            "empty answer to the error challenge"
        );
        let mut refreshed = 0;
        while let Ok(WatchEvent::OAuth { outcome, .. }) = rx.try_recv() {
            assert!(matches!(
                outcome,
                super::super::oauth::TokenOutcome::Refreshed { .. }
            ));
            refreshed += 1;
        }
        assert_eq!(refreshed, 2, "the refused token was replaced once");
    }

    #[test]
    fn imap_dates() {
        assert_eq!(imap_date(UNIX_EPOCH), "1-Jan-1970");
        assert_eq!(
            imap_date(UNIX_EPOCH + Duration::from_secs(1_795_305_600)),
            "22-Nov-2026"
        );
        assert_eq!(
            imap_date(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "29-Feb-2000"
        );
    }
}
