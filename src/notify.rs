//! Service-manager notifications (`sd_notify(3)`): readiness, reload,
//! stop, status text and watchdog pings.
//!
//! Every function is a no-op when `NOTIFY_SOCKET` is unset, so the daemon
//! behaves the same outside systemd. Messages are built by the `sd-notify`
//! crate, which also sends them to a socket given as a path; a socket in
//! the Linux abstract namespace (`NOTIFY_SOCKET=@name`, which sd-notify 0.5
//! does not resolve) is addressed here with std's `SocketAddrExt`.
//!
//! The lifecycle the daemon reports:
//! - `READY=1` once the config is loaded, the store is open and `/metrics`
//!   is served;
//! - `RELOADING=1` with `MONOTONIC_USEC=` (systemd ≥ 253 requires it for
//!   `Type=notify-reload`) when a SIGHUP reload starts, then `READY=1` when it
//!   is done, whether the new config was taken or refused;
//! - `STOPPING=1` when a graceful stop starts;
//! - `WATCHDOG=1` every half `WATCHDOG_USEC`, while the store answers.
//!
//! `STATUS=` lines accompany each, for `systemctl status`.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sd_notify::NotifyState;

/// `READY=1` with a status line.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// `RELOADING=1` and `MONOTONIC_USEC=` with a status line.
pub fn reloading(status: &str) {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now, NotifyState::Status(status)]),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the monotonic clock for MONOTONIC_USEC");
            send(&[NotifyState::Reloading, NotifyState::Status(status)]);
        }
    }
}

/// `STOPPING=1` with a status line.
pub fn stopping(status: &str) {
    send(&[NotifyState::Stopping, NotifyState::Status(status)]);
}

/// A status line alone.
pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

/// `WATCHDOG=1`.
pub fn watchdog() {
    send(&[NotifyState::Watchdog]);
}

/// How often to ping the watchdog: half of `WATCHDOG_USEC`, if the service
/// manager enabled it for this process (`WATCHDOG_PID` unset or ours).
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled()
        .filter(|d| !d.is_zero())
        .map(|d| d / 2)
}

/// Send one datagram; failures are logged once, never fatal.
fn send(states: &[NotifyState]) {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let result = match socket.as_bytes().strip_prefix(b"@") {
        Some(name) => send_abstract(name, states),
        None => sd_notify::notify(states),
    };
    if let Err(e) = result {
        static WARNED: AtomicBool = AtomicBool::new(false);
        if !WARNED.swap(true, Ordering::Relaxed) {
            tracing::warn!(socket = %OsStr::new(&socket).to_string_lossy(), error = %e, "cannot notify the service manager");
        }
    }
}

/// The same message sd-notify builds, to an abstract-namespace socket.
fn send_abstract(name: &[u8], states: &[NotifyState]) -> io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    let msg: String = states.iter().map(|s| format!("{s}\n")).collect();
    let sock = UnixDatagram::unbound()?;
    let sent = sock.send_to_addr(msg.as_bytes(), &addr)?;
    if sent == msg.len() {
        Ok(())
    } else {
        Err(io::Error::new(io::ErrorKind::WriteZero, "incomplete write"))
    }
}
