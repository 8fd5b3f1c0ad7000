//! Tells systemd how the service is doing (the `sd_notify` protocol, `Type=notify`):
//! ready once the listeners are bound, reloading around SIGHUP, stopping on shutdown, and
//! watchdog pings while the runtime is alive.
//!
//! Outside systemd (`NOTIFY_SOCKET` unset) every call does nothing. A notification that
//! cannot be sent is logged and otherwise ignored: systemd will notice on its own (a start
//! timeout or a missed watchdog ping), and the broker keeps serving meanwhile.

use std::time::Duration;

use sd_notify::NotifyState;
use tracing::warn;

/// The listeners are bound: clients can connect.
pub fn ready() {
    send(&[NotifyState::Ready]);
}

/// Configuration files are being read again; [`ready`] follows.
pub fn reloading() {
    // systemd 253+ needs the monotonic time with RELOADING=1 to match it with the reload
    // request; older versions ignore it.
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// The broker is shutting down.
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// Pings systemd's watchdog at half the interval it asked for (`WatchdogSec=` in the unit,
/// passed as `WATCHDOG_USEC`), for as long as the tokio runtime runs tasks. Returns at once
/// when no watchdog is set for this process.
pub async fn watchdog() {
    let Some(interval) = watchdog_interval() else {
        return;
    };
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        send(&[NotifyState::Watchdog]);
    }
}

/// How often to ping the watchdog, if systemd set one for this process.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled()
        .filter(|timeout| !timeout.is_zero())
        .map(|timeout| timeout / 2)
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        let names: Vec<String> = states.iter().map(ToString::to_string).collect();
        warn!("cannot notify systemd ({}): {e}", names.join(", "));
    }
}
