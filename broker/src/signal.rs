//! Waking a connection's task. Everything that needs an idle connection to act (messages
//! queued for its session, another connection taking the session over, shutdown, a reload
//! of the password and ACL files) goes through one [`Signal`], so an idle connection waits
//! on a single future; and that future holds nothing (the waker lives in the signal), as
//! what an idle connection's task holds is memory every idle client costs.

use std::future::poll_fn;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use atomic_waker::AtomicWaker;

#[derive(Debug, Default)]
pub struct Signal {
    waker: AtomicWaker,
    /// [`WOKEN`] and the [`Raised`] bits.
    state: AtomicU8,
    /// When the connection times out (ms after [`epoch`]; 0: never), for the sweeper
    /// (`keep_alive.rs`) to raise [`Raised::Idle`].
    deadline: AtomicU64,
}

/// Set by every wake-up, cleared by the wait that sees it.
const WOKEN: u8 = 0x80;

/// Events a signal carries besides "look at your session's queue".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raised {
    TakenOver = 1,
    ShuttingDown = 2,
    Reloaded = 4,
    /// Its deadline ([`Signal::set_deadline`]) passed.
    Idle = 8,
}

impl Signal {
    /// Deliveries are waiting.
    pub fn wake(&self) {
        self.state.fetch_or(WOKEN, Ordering::AcqRel);
        self.waker.wake();
    }

    pub fn raise(&self, event: Raised) {
        self.state.fetch_or(WOKEN | event as u8, Ordering::AcqRel);
        self.waker.wake();
    }

    /// Completes once woken (at once if woken since the last wait). One task waits.
    pub async fn wait(&self) {
        poll_fn(|cx| {
            // Registered before looking, so a wake-up in between is not lost.
            self.waker.register(cx.waker());
            if self.state.fetch_and(!WOKEN, Ordering::AcqRel) & WOKEN != 0 {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }

    /// When the connection times out, if it does.
    pub fn set_deadline(&self, at: Option<Instant>) {
        let ms = at.map_or(0, |at| millis_since_epoch(at).max(1));
        self.deadline.store(ms, Ordering::Relaxed);
    }

    /// Whether the deadline passed by `now`.
    pub fn is_past_deadline(&self, now: Instant) -> bool {
        let deadline = self.deadline.load(Ordering::Relaxed);
        deadline != 0 && deadline <= millis_since_epoch(now)
    }

    /// Takes the events raised since the last call.
    pub fn take(&self) -> Events {
        Events(self.state.fetch_and(WOKEN, Ordering::AcqRel) & !WOKEN)
    }
}

/// Deadlines are kept as milliseconds after the first time one was set.
fn millis_since_epoch(at: Instant) -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(|| Instant::now() - Duration::from_secs(1));
    at.saturating_duration_since(epoch).as_millis() as u64
}

/// A set of [`Raised`] events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Events(u8);

impl Events {
    pub fn contains(self, event: Raised) -> bool {
        self.0 & event as u8 != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn a_wake_before_the_wait_is_kept_and_events_are_taken_once() {
        let signal = Signal::default();
        signal.raise(Raised::Reloaded);
        signal.raise(Raised::TakenOver);
        tokio::time::timeout(Duration::from_secs(1), signal.wait())
            .await
            .expect("the wake-up was kept");
        let events = signal.take();
        assert!(events.contains(Raised::Reloaded) && events.contains(Raised::TakenOver));
        assert!(!events.contains(Raised::ShuttingDown));
        assert!(!signal.take().contains(Raised::Reloaded));
        assert!(
            tokio::time::timeout(Duration::from_millis(50), signal.wait())
                .await
                .is_err(),
            "one wake-up, one wait"
        );
    }

    #[tokio::test]
    async fn a_wake_from_another_thread_ends_the_wait() {
        let signal = Arc::new(Signal::default());
        let waker = Arc::clone(&signal);
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            waker.wake();
        });
        tokio::time::timeout(Duration::from_secs(5), signal.wait())
            .await
            .expect("woken");
        thread.join().unwrap();
    }
}
