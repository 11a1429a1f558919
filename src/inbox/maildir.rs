//! Maildir watcher for seeds on the same host: inotify on `new/` and `cur/`
//! of the inbox and of the spam folder (Maildir++ `.Junk`), the
//! lowest-overhead path: no protocol, no polling.
//!
//! Delivery agents write into `tmp/` and rename into `new/` (the Maildir
//! contract), so a `MOVED_TO` (or `CREATE`, for agents that write in place)
//! on `new/` is a complete message. An IMAP server may later move it to
//! `cur/`, which is watched as well.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use inotify::{Inotify, WatchDescriptor, WatchMask};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{
    find_token, from_address, report_up, Arrival, Disposition, FolderRole, Want, WatchEvent,
};

/// How long the watcher waits for the recorder to persist an arrival.
const RECORD_TIMEOUT: Duration = Duration::from_secs(60);
/// Retry interval when the Maildir cannot be watched (permissions, removed).
const RETRY: Duration = Duration::from_secs(10);
/// How often a folder that does not exist yet is looked for.
const FOLDER_POLL: Duration = Duration::from_secs(1);

/// Messages handled and left in place (kept for the operator, or not a
/// probe), by unique name, so that a later event for the same file (Dovecot
/// moving it to `cur/`, a flag change) does not report it again. A probe
/// that was removed is not remembered: its file is gone. Names whose files
/// are gone are dropped whenever the set has doubled since it was last
/// trimmed, so a year of traffic through a folder does not stay in memory.
#[derive(Default)]
struct Handled {
    names: HashSet<OsString>,
    trim_at: usize,
}

/// Below this many names the set is not trimmed.
const HANDLED_TRIM_MIN: usize = 1024;

impl Handled {
    fn contains(&self, key: &OsString) -> bool {
        self.names.contains(key)
    }

    /// Remember `key`, a file left in `folder`'s `new/` or `cur/`.
    fn left(&mut self, key: OsString, folder: &Path) {
        self.names.insert(key);
        if self.names.len() <= self.trim_at.max(HANDLED_TRIM_MIN) {
            return;
        }
        let mut present = HashSet::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(folder.join(sub)) else {
                // Unreadable now: keep everything rather than report twice.
                self.trim_at = self.names.len() * 2;
                return;
            };
            present.extend(entries.flatten().filter_map(|e| unique_name(&e.path())));
        }
        self.names.retain(|n| present.contains(n));
        self.trim_at = self.names.len() * 2;
    }
}

/// One watched Maildir folder of one seed.
pub struct MaildirWatch {
    pub seed: String,
    /// The folder's Maildir (holding `new/`, `cur/`, `tmp/`).
    pub dir: PathBuf,
    /// Move evaluated probes into this Maildir's `cur/` instead of deleting them.
    pub cleanup_dir: Option<PathBuf>,
    /// Which messages are reported.
    pub want: Want,
    pub role: FolderRole,
    pub events: mpsc::Sender<WatchEvent>,
    pub stop: CancellationToken,
}

/// Watch until `stop` is cancelled.
pub async fn watch(w: MaildirWatch) {
    let mut ignored = Handled::default();
    loop {
        let r = session(&w, &mut ignored).await;
        // A requested stop (shutdown, or a reload replacing this watcher)
        // is not an outage: only a watcher that lost its folder reports down.
        if !w.stop.is_cancelled() {
            report_up(&w.events, &w.seed, w.role, false).await;
        }
        match r {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(seed = %w.seed, dir = %w.dir.display(), error = %e, "maildir watcher stopped; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(RETRY) => {}
                    _ = w.stop.cancelled() => return,
                }
            }
        }
    }
}

/// Why a Maildir watch ended.
#[derive(Debug, thiserror::Error)]
pub enum MaildirError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("recorder stopped")]
    RecorderGone,
}

/// Wait for a folder that does not exist yet: delivery agents create a
/// Maildir (and Maildir++ `.Junk`) on first use. A missing spam folder next
/// to an existing inbox is a healthy state (nothing has been filed there
/// yet); a missing inbox is not.
async fn wait_for_folder(w: &MaildirWatch) -> bool {
    let mut announced = None;
    loop {
        if w.dir.join("new").is_dir() && w.dir.join("cur").is_dir() {
            return true;
        }
        let healthy =
            w.role == FolderRole::Spam && w.dir.parent().is_some_and(|p| p.join("new").is_dir());
        if announced != Some(healthy) {
            announced = Some(healthy);
            tracing::info!(seed = %w.seed, dir = %w.dir.display(), "waiting for the maildir folder to appear");
            if !report_up(&w.events, &w.seed, w.role, healthy).await {
                return false;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(FOLDER_POLL) => {}
            _ = w.stop.cancelled() => return false,
        }
    }
}

async fn session(w: &MaildirWatch, ignored: &mut Handled) -> Result<(), MaildirError> {
    if !wait_for_folder(w).await {
        return Ok(());
    }
    let inotify = Inotify::init()?;
    let mut dirs: Vec<(WatchDescriptor, PathBuf)> = Vec::new();
    for sub in ["new", "cur"] {
        let dir = w.dir.join(sub);
        let wd = inotify
            .watches()
            .add(&dir, WatchMask::MOVED_TO | WatchMask::CREATE)?;
        dirs.push((wd, dir));
    }
    let mut stream = inotify.into_event_stream([0u8; 4096])?;
    if !report_up(&w.events, &w.seed, w.role, true).await {
        return Err(MaildirError::RecorderGone);
    }
    tracing::info!(seed = %w.seed, dir = %w.dir.display(), "maildir watcher started");

    // Messages that arrived while nobody watched.
    for (_, dir) in &dirs {
        let mut names: Vec<OsString> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        names.sort();
        for name in names {
            handle(w, &dir.join(&name), ignored).await?;
        }
    }
    loop {
        let event = tokio::select! {
            e = stream.next() => e,
            _ = w.stop.cancelled() => return Ok(()),
        };
        let Some(event) = event else {
            return Err(MaildirError::Io(std::io::Error::other(
                "inotify stream ended",
            )));
        };
        let event = event?;
        let Some(name) = event.name else { continue };
        if let Some((_, dir)) = dirs.iter().find(|(wd, _)| *wd == event.wd) {
            handle(w, &dir.join(name), ignored).await?;
        }
    }
}

/// Read one message file; report it if it carries a token.
async fn handle(w: &MaildirWatch, path: &Path, ignored: &mut Handled) -> Result<(), MaildirError> {
    let seen = SystemTime::now();
    let Some(key) = unique_name(path) else {
        return Ok(());
    };
    if ignored.contains(&key) {
        return Ok(());
    }
    let (raw, stored) = match read(path).await {
        Ok(v) => v,
        // Moved from new/ to cur/ meanwhile: the cur/ event brings it back.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let token = find_token(&raw);
    let from = from_address(&raw);
    if !w.want.by_message(&token, &from) {
        ignored.left(key, &w.dir);
        return Ok(());
    }
    let (reply, answer) = oneshot::channel();
    w.events
        .send(WatchEvent::Arrival(Arrival {
            seed: w.seed.clone(),
            token,
            from,
            role: w.role,
            folder: w
                .dir
                .file_name()
                .map_or_else(|| "INBOX".into(), |n| n.to_string_lossy().into_owned()),
            tab: None,
            seen,
            stored: Some(stored),
            stored_exact: true,
            raw,
            reply,
        }))
        .await
        .map_err(|_| MaildirError::RecorderGone)?;
    match tokio::time::timeout(RECORD_TIMEOUT, answer).await {
        Ok(Ok(Disposition::Remove)) => remove(w, path).await,
        Ok(Ok(Disposition::Keep)) => ignored.left(key, &w.dir),
        Ok(Err(_)) => return Err(MaildirError::RecorderGone),
        Err(_) => {
            tracing::warn!(seed = %w.seed, "recorder did not answer in time; message left in place")
        }
    }
    Ok(())
}

async fn read(path: &Path) -> std::io::Result<(Vec<u8>, SystemTime)> {
    let raw = tokio::fs::read(path).await?;
    let stored = tokio::fs::metadata(path).await?.modified()?;
    Ok((raw, stored))
}

/// Delete (or move to the cleanup folder) the message, wherever `new/` →
/// `cur/` renaming has put it.
async fn remove(w: &MaildirWatch, path: &Path) {
    let dispose = |p: PathBuf| async move {
        match (&w.cleanup_dir, p.file_name()) {
            (Some(dir), Some(name)) => {
                let cur = dir.join("cur");
                let _ = tokio::fs::create_dir_all(&cur).await;
                tokio::fs::rename(&p, cur.join(name)).await
            }
            _ => tokio::fs::remove_file(&p).await,
        }
    };
    if dispose(path.to_path_buf()).await.is_ok() {
        return;
    }
    let Some(key) = unique_name(path) else { return };
    let cur = w.dir.join("cur");
    if let Ok(entries) = std::fs::read_dir(&cur) {
        for e in entries.flatten() {
            if unique_name(&e.path()).as_ref() == Some(&key) {
                let _ = dispose(e.path()).await;
                return;
            }
        }
    }
    tracing::warn!(seed = %w.seed, "processed maildir message vanished before cleanup");
}

/// The part of a Maildir file name that stays the same when flags change
/// (`unique:2,FLAGS` → `unique`).
fn unique_name(path: &Path) -> Option<OsString> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    if name.starts_with('.') {
        return None;
    }
    Some(name.split(':').next().unwrap_or(&name).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handled_names_are_forgotten_with_their_files() {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        std::fs::write(dir.path().join("cur/kept.1:2,S"), b"x").unwrap();
        let mut h = Handled::default();
        h.left("kept.1".into(), dir.path());
        for i in 0..HANDLED_TRIM_MIN {
            h.left(format!("gone.{i}").into(), dir.path());
        }
        // The set passed its limit: only the file still in the folder stays.
        assert_eq!(h.names.len(), 1);
        assert!(h.contains(&"kept.1".into()));
        assert!(!h.contains(&"gone.0".into()));
        // Not trimmed again while under the minimum size.
        h.left("gone.x".into(), dir.path());
        assert_eq!(h.names.len(), 2);
    }

    #[test]
    fn unique_names_ignore_flags_and_dotfiles() {
        assert_eq!(
            unique_name(Path::new("/m/cur/123.abc:2,S")),
            Some("123.abc".into())
        );
        assert_eq!(
            unique_name(Path::new("/m/new/123.abc")),
            Some("123.abc".into())
        );
        assert_eq!(unique_name(Path::new("/m/new/.hidden")), None);
    }
}
