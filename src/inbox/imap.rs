//! IMAP folder watcher: one long-lived connection per watched folder, IDLE
//! where the server has it (RFC 2177), polling where it does not, and a
//! bounded exponential backoff between reconnects.
//!
//! Every command runs under a timeout, so a server that stops answering is
//! treated like one that dropped the connection.

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_imap::types::{Fetch, NameAttribute};
use async_imap::Session;
use futures_util::TryStreamExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;

use super::{
    find_token, find_token_in_value, from_address, report_up, wanted, Arrival, Disposition,
    FolderRole, WatchEvent,
};
use crate::config::{ImapInbox, TlsMode};

type Stream = Either<TcpStream, TlsStream<TcpStream>>;

/// Longest wait for any single IMAP exchange.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Re-issue IDLE before servers drop it (RFC 2177: at least every 29 minutes).
const IDLE_REFRESH: Duration = Duration::from_secs(25 * 60);
/// Poll interval for servers without IDLE.
const POLL_INTERVAL: Duration = Duration::from_secs(15);
/// How long a watcher waits for the recorder to persist an arrival.
const RECORD_TIMEOUT: Duration = Duration::from_secs(60);
/// Reconnect backoff bounds.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// On connect, messages older than this are not scanned (probe timeouts are shorter).
const SCAN_WINDOW: Duration = Duration::from_secs(2 * 86_400);

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
    /// The server refused the login.
    #[error("login refused: {0}")]
    Login(String),
    /// The folder to watch does not exist.
    #[error("no {0} folder found (looked for SPECIAL-USE \\Junk and the usual names)")]
    NoFolder(&'static str),
    /// An IMAP command failed or the connection broke.
    #[error("imap: {0}")]
    Imap(#[from] async_imap::error::Error),
    /// The server did not answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The recorder is gone (the daemon is stopping).
    #[error("recorder stopped")]
    RecorderGone,
}

/// One watched folder of one seed.
pub struct ImapWatch {
    pub seed: String,
    pub cfg: ImapInbox,
    pub role: FolderRole,
    /// The configured spam folder name, instead of discovery.
    pub spam_folder: Option<String>,
    /// Move evaluated probes here instead of deleting them.
    pub cleanup_folder: Option<String>,
    /// From addresses (lower-case) of apps whose verification mail is matched without a token.
    pub match_from: Vec<String>,
    pub events: mpsc::Sender<WatchEvent>,
    pub stop: CancellationToken,
}

/// Watch until `stop` is cancelled, reconnecting with backoff.
pub async fn watch(w: ImapWatch) {
    let mut backoff = BACKOFF_MIN;
    // UIDs known not to be (our) probes; kept across reconnects.
    let mut ignored: HashSet<u32> = HashSet::new();
    loop {
        let started = std::time::Instant::now();
        let result = tokio::select! {
            r = session(&w, &mut ignored) => r,
            _ = w.stop.cancelled() => Ok(()),
        };
        report_up(&w.events, &w.seed, w.role, false).await;
        match result {
            Ok(()) => return,
            Err(WatchError::RecorderGone) => return,
            Err(e) => {
                // A session that ran for a while was healthy: start the backoff over.
                if started.elapsed() > BACKOFF_MAX {
                    backoff = BACKOFF_MIN;
                }
                tracing::warn!(seed = %w.seed, folder = w.role.as_str(), error = %e, retry_in = ?backoff, "inbox watcher disconnected");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = w.stop.cancelled() => return,
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
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

async fn connect(cfg: &ImapInbox) -> Result<Session<Stream>, WatchError> {
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
    let mut client = match cfg.tls {
        TlsMode::None => async_imap::Client::new(Either::Left(tcp)),
        TlsMode::Implicit => async_imap::Client::new(Either::Right(tls(tcp).await?)),
        TlsMode::Starttls => {
            let mut plain = async_imap::Client::new(tcp);
            read_greeting(&mut plain).await?;
            timed(plain.run_command_and_check_ok("STARTTLS", None)).await?;
            // No greeting after STARTTLS (RFC 3501 §6.2.1).
            let secured = tls(plain.into_inner()).await?;
            let client = async_imap::Client::new(Either::Right(secured));
            return login(client, cfg).await;
        }
    };
    read_greeting(&mut client).await?;
    login(client, cfg).await
}

async fn read_greeting<T>(client: &mut async_imap::Client<T>) -> Result<(), WatchError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    match tokio::time::timeout(COMMAND_TIMEOUT, client.read_response()).await {
        Ok(Ok(Some(_))) => Ok(()),
        Ok(Ok(None)) => Err(WatchError::Imap(async_imap::error::Error::ConnectionLost)),
        Ok(Err(e)) => Err(WatchError::Imap(e.into())),
        Err(_) => Err(WatchError::Timeout(COMMAND_TIMEOUT)),
    }
}

async fn login(
    client: async_imap::Client<Stream>,
    cfg: &ImapInbox,
) -> Result<Session<Stream>, WatchError> {
    match tokio::time::timeout(
        COMMAND_TIMEOUT,
        client.login(
            &cfg.username,
            match &cfg.auth {
                crate::config::ImapAuth::Login(p) | crate::config::ImapAuth::Plain(p) => p.expose(),
                crate::config::ImapAuth::OAuth { .. } => "",
            },
        ),
    )
    .await
    {
        Ok(Ok(s)) => Ok(s),
        // The server's words only: async-imap's error never holds the password.
        Ok(Err((e, _))) => Err(WatchError::Login(e.to_string())),
        Err(_) => Err(WatchError::Timeout(COMMAND_TIMEOUT)),
    }
}

/// The folder name for a role: INBOX, or the spam folder by SPECIAL-USE
/// `\Junk`, then by the usual names.
async fn folder_for(
    session: &mut Session<Stream>,
    role: FolderRole,
    configured: Option<&str>,
) -> Result<String, WatchError> {
    if role == FolderRole::Inbox {
        return Ok("INBOX".to_string());
    }
    if let Some(name) = configured {
        return Ok(name.to_string());
    }
    let names: Vec<_> = timed(async {
        session
            .list(Some(""), Some("*"))
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .await?;
    if let Some(n) = names.iter().find(|n| {
        n.attributes()
            .iter()
            .any(|a| matches!(a, NameAttribute::Junk))
    }) {
        return Ok(n.name().to_string());
    }
    for wanted in SPAM_FOLDER_NAMES {
        for n in &names {
            let last = n
                .delimiter()
                .and_then(|d| n.name().rsplit(d).next())
                .unwrap_or(n.name());
            if n.name().eq_ignore_ascii_case(wanted) || last.eq_ignore_ascii_case(wanted) {
                return Ok(n.name().to_string());
            }
        }
    }
    Err(WatchError::NoFolder("spam"))
}

async fn session(w: &ImapWatch, ignored: &mut HashSet<u32>) -> Result<(), WatchError> {
    let mut session = connect(&w.cfg).await?;
    let folder = folder_for(&mut session, w.role, w.spam_folder.as_deref()).await?;
    timed(session.select(&folder)).await?;
    let caps = timed(session.capabilities()).await?;
    let caps = Caps {
        idle: caps.has_str("IDLE"),
        uidplus: caps.has_str("UIDPLUS"),
        mv: caps.has_str("MOVE"),
    };
    let idle = caps.idle;
    if !report_up(&w.events, &w.seed, w.role, true).await {
        return Err(WatchError::RecorderGone);
    }
    tracing::info!(seed = %w.seed, %folder, idle, "inbox watcher connected");

    let mut last_uid = 0u32;
    loop {
        last_uid = scan(w, &mut session, &folder, last_uid, ignored, caps).await?;
        // Unsolicited responses queue up in a bounded channel; they are only
        // hints here (the scan reads the folder itself), so drop them.
        while session.unsolicited_responses.try_recv().is_ok() {}
        if idle {
            let mut handle = session.idle();
            timed(handle.init()).await?;
            let (wait, interrupt) = handle.wait_with_timeout(IDLE_REFRESH);
            let stopped = tokio::select! {
                r = wait => { r?; false }
                _ = w.stop.cancelled() => true,
            };
            drop(interrupt);
            session = timed(handle.done()).await?;
            if stopped {
                let _ = tokio::time::timeout(Duration::from_secs(2), session.logout()).await;
                return Ok(());
            }
        } else {
            tokio::select! {
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
                _ = w.stop.cancelled() => return Ok(()),
            }
            timed(session.noop()).await?;
        }
    }
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
        format!("SINCE {}", imap_date(SystemTime::now() - SCAN_WINDOW))
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
                if mid.and_then(find_token_in_value).is_some()
                    || from.is_some_and(|f| w.match_from.contains(&f))
                {
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
    let fetched: Vec<Fetch> = timed(async {
        session
            .uid_fetch(uid.to_string(), "(UID INTERNALDATE BODY.PEEK[])")
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .await?;
    let Some(f) = fetched.iter().find(|f| f.uid == Some(uid)) else {
        return Ok(()); // expunged meanwhile
    };
    let Some(raw) = f.body() else { return Ok(()) };
    let token = find_token(raw);
    let from = from_address(raw);
    if !wanted(&token, &from, &w.match_from) {
        ignored.insert(uid);
        return Ok(());
    }
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
            tab: None,
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
            remove(session, uid, w.cleanup_folder.as_deref(), caps).await?;
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
