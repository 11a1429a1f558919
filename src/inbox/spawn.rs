//! Starting the watchers of a config generation: one per watched folder
//! (INBOX and spam) of every seed a probe uses, sharing each OAuth seed's
//! token source.

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{imap, maildir, oauth, FolderRole, WatchEvent};
use crate::config::{Config, ImapAuth, Inbox, Sender};

/// Start the watchers of every seed some probe uses.
/// `tokens` holds each OAuth seed's token source across reloads; a source
/// is kept while the seed's OAuth settings are unchanged.
pub fn spawn_watchers(
    config: &Config,
    events: &mpsc::Sender<WatchEvent>,
    tokens: &oauth::TokenSources,
    tracker: &TaskTracker,
    stop: &CancellationToken,
) {
    let used: std::collections::BTreeSet<&String> = config
        .probes
        .values()
        .flat_map(|p| p.seeds.iter())
        .collect();
    let mut tokens = tokens.lock().unwrap_or_else(|e| e.into_inner());
    tokens.retain(|seed, _| used.contains(seed));
    for name in used {
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
        // One token source per OAuth seed, shared by its folder watchers.
        let oauth = match &seed.inbox {
            Inbox::Imap(cfg) => match &cfg.auth {
                ImapAuth::OAuth { client, .. } => {
                    let kept = tokens
                        .get(name)
                        .filter(|src| src.reusable_for(client))
                        .cloned();
                    let made = match kept {
                        Some(src) => Ok(src),
                        None => oauth::TokenSource::new(
                            name,
                            client,
                            Some(&config.daemon.state_dir),
                            events.clone(),
                        ),
                    };
                    match made {
                        Ok(src) => {
                            tokens.insert(name.clone(), src.clone());
                            tracker.spawn(src.clone().keep_fresh(stop.clone()));
                            Some(src)
                        }
                        Err(e) => {
                            tokens.remove(name);
                            tracing::error!(seed = %name, error = %e, "cannot set up the OAuth token client; seed not watched");
                            for role in [FolderRole::Inbox, FolderRole::Spam] {
                                let _ = events.try_send(WatchEvent::Up {
                                    seed: name.clone(),
                                    role,
                                    up: false,
                                });
                            }
                            continue;
                        }
                    }
                }
                _ => None,
            },
            Inbox::Maildir(_) => None,
        };
        for role in [FolderRole::Inbox, FolderRole::Spam] {
            match &seed.inbox {
                Inbox::Imap(cfg) => {
                    let Some(login) = imap::Login::new(&cfg.auth, oauth.clone()) else {
                        continue;
                    };
                    tracker.spawn(imap::watch(imap::ImapWatch {
                        seed: name.clone(),
                        cfg: cfg.clone(),
                        role,
                        spam_folders: seed.spam_folders.clone(),
                        login,
                        spam_folder: seed.spam_folder.clone(),
                        cleanup_folder: seed.cleanup_folder.clone(),
                        match_from: match_from.clone(),
                        events: events.clone(),
                        stop: stop.clone(),
                    }));
                }
                Inbox::Maildir(m) => {
                    let dir = match role {
                        FolderRole::Inbox => m.path.clone(),
                        FolderRole::Spam => {
                            m.path.join(seed.spam_folder.as_deref().unwrap_or(".Junk"))
                        }
                    };
                    tracker.spawn(maildir::watch(maildir::MaildirWatch {
                        seed: name.clone(),
                        dir,
                        cleanup_dir: seed.cleanup_folder.as_ref().map(|f| m.path.join(f)),
                        match_from: match_from.clone(),
                        role,
                        events: events.clone(),
                        stop: stop.clone(),
                    }));
                }
            }
        }
    }
}
