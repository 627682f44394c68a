//! Tells systemd (`Type=notify`) when the sidecar is ready and when it stops.
//!
//! Both calls do nothing when `NOTIFY_SOCKET` is unset (started by hand, in a container, in
//! tests), and a failure to notify is logged, never fatal: systemd then times the start out and
//! says so in `systemctl status`, which is a clearer report than a sidecar that refuses to run.

use sd_notify::NotifyState;

/// Sends `READY=1` once the listeners are bound and the start-up checks have passed.
pub fn notify_ready() {
    send(NotifyState::Ready, "READY=1");
}

/// Sends `STOPPING=1` when a graceful shutdown begins.
pub fn notify_stopping() {
    send(NotifyState::Stopping, "STOPPING=1");
}

fn send(state: NotifyState<'_>, what: &str) {
    // sd_notify::notify returns Ok(()) without sending anything when NOTIFY_SOCKET is unset.
    if let Err(e) = sd_notify::notify(&[state]) {
        let socket = std::env::var_os("NOTIFY_SOCKET").unwrap_or_default();
        tracing::warn!(error = %e, socket = %socket.to_string_lossy(), "could not tell systemd {what}");
    }
}
