//! Starting the watchers of a config generation: one per watched folder
//! (INBOX and spam) of every seed a probe uses, INBOX only of every bounce
//! mailbox, sharing each OAuth mailbox's token source.

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{imap, maildir, oauth, FolderRole, Want, WatchEvent};
use crate::config::{Config, ImapAuth, Inbox, Seed, Sender};

/// What every watcher of one generation shares.
pub struct Spawn<'a> {
    pub events: &'a mpsc::Sender<WatchEvent>,
    /// Each OAuth mailbox's token source, kept across reloads while its
    /// OAuth settings are unchanged.
    pub tokens: &'a oauth::TokenSources,
    /// Where token sources keep their state (the daemon's state directory).
    pub state_dir: &'a std::path::Path,
    pub tracker: &'a TaskTracker,
    pub stop: &'a CancellationToken,
}

/// Start the watchers of every seed some probe uses (INBOX and spam, probe
/// mail only) and of every sender's bounce mailbox (INBOX, every message).
pub fn spawn_watchers(
    config: &Config,
    events: &mpsc::Sender<WatchEvent>,
    tokens: &oauth::TokenSources,
    tracker: &TaskTracker,
    stop: &CancellationToken,
) {
    let ctx = Spawn {
        events,
        tokens,
        state_dir: &config.daemon.state_dir,
        tracker,
        stop,
    };
    let seeds: std::collections::BTreeSet<&String> = config
        .probes
        .values()
        .flat_map(|p| p.seeds.iter())
        .collect();
    let bounce_mailboxes: std::collections::BTreeSet<&String> = config
        .senders
        .values()
        .filter_map(Sender::bounce_mailbox)
        .collect();
    {
        let mut kept = tokens.lock().unwrap_or_else(|e| e.into_inner());
        kept.retain(|name, _| seeds.contains(name) || bounce_mailboxes.contains(name));
    }
    for name in seeds {
        let Some(seed) = config.seeds.get(name) else {
            continue;
        };
        // The From addresses of apps (http senders) that send to this seed.
        let match_from: Vec<String> = config
            .probes
            .values()
            .filter(|p| p.seeds.contains(name))
            .filter_map(|p| match config.senders.get(&p.sender) {
                Some(Sender::Http(h)) => Some(h.from.to_ascii_lowercase()),
                _ => None,
            })
            .collect();
        let roles = [FolderRole::Inbox, FolderRole::Spam];
        spawn_mailbox(name, seed, &roles, &Want::Probes { match_from }, &ctx);
    }
    for name in bounce_mailboxes {
        if let Some(seed) = config.seeds.get(name) {
            let want = Want::Every {
                look_back: super::PROBE_LOOK_BACK,
            };
            spawn_mailbox(name, seed, &[FolderRole::Inbox], &want, &ctx);
        }
    }
}

/// Start one watcher per folder in `roles` of the mailbox `name`, reporting
/// the messages `want` selects as [`WatchEvent`]s named after `name`.
pub fn spawn_mailbox(name: &str, seed: &Seed, roles: &[FolderRole], want: &Want, ctx: &Spawn) {
    // One token source per OAuth mailbox, shared by its folder watchers.
    let oauth = match &seed.inbox {
        Inbox::Imap(cfg) => match &cfg.auth {
            ImapAuth::OAuth { client, .. } => {
                let mut tokens = ctx.tokens.lock().unwrap_or_else(|e| e.into_inner());
                let kept = tokens
                    .get(name)
                    .filter(|src| src.reusable_for(client))
                    .cloned();
                let made = match kept {
                    Some(src) => Ok(src),
                    None => oauth::TokenSource::new(
                        name,
                        client,
                        Some(ctx.state_dir),
                        ctx.events.clone(),
                    ),
                };
                match made {
                    Ok(src) => {
                        tokens.insert(name.to_string(), src.clone());
                        ctx.tracker.spawn(src.clone().keep_fresh(ctx.stop.clone()));
                        Some(src)
                    }
                    Err(e) => {
                        tokens.remove(name);
                        tracing::error!(seed = %name, error = %e, "cannot set up the OAuth token client; mailbox not watched");
                        for &role in roles {
                            let _ = ctx.events.try_send(WatchEvent::Up {
                                seed: name.to_string(),
                                role,
                                up: false,
                            });
                        }
                        return;
                    }
                }
            }
            _ => None,
        },
        Inbox::Maildir(_) => None,
    };
    for &role in roles {
        match &seed.inbox {
            Inbox::Imap(cfg) => {
                let Some(login) = imap::Login::new(&cfg.auth, oauth.clone()) else {
                    continue;
                };
                ctx.tracker.spawn(imap::watch(imap::ImapWatch {
                    seed: name.to_string(),
                    cfg: cfg.clone(),
                    role,
                    spam_folders: seed.spam_folders.clone(),
                    login,
                    spam_folder: seed.spam_folder.clone(),
                    cleanup_folder: seed.cleanup_folder.clone(),
                    want: want.clone(),
                    events: ctx.events.clone(),
                    stop: ctx.stop.clone(),
                }));
            }
            Inbox::Maildir(m) => {
                let dir = match role {
                    FolderRole::Inbox => m.path.clone(),
                    FolderRole::Spam => m.path.join(seed.spam_folder.as_deref().unwrap_or(".Junk")),
                };
                ctx.tracker.spawn(maildir::watch(maildir::MaildirWatch {
                    seed: name.to_string(),
                    dir,
                    cleanup_dir: seed.cleanup_folder.as_ref().map(|f| m.path.join(f)),
                    want: want.clone(),
                    role,
                    events: ctx.events.clone(),
                    stop: ctx.stop.clone(),
                }));
            }
        }
    }
}
