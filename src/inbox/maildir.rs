//! Maildir watcher for seeds on the same host: inotify on `new/` and `cur/`
//! of the inbox and of the spam folder (Maildir++ `.Junk`), the
//! lowest-overhead path (no protocol, no polling).
