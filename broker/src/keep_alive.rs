//! Keep-alive and connect timeouts, checked for every connection by one sweeper task
//! instead of a timer per connection: a timer is over a hundred bytes in every idle
//! connection's task, and a timer-wheel update on every read. A connection publishes
//! its deadline in its [`Signal`]; the sweeper raises [`Raised::Idle`] once it has passed
//! (at most [`SWEEP`] late), and the connection checks and closes.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::locks::lock;
use crate::signal::{Raised, Signal};

/// How often deadlines are checked: how late a timeout can be.
pub const SWEEP: Duration = Duration::from_millis(250);

/// The signals of every open connection.
#[derive(Debug, Default)]
pub struct Deadlines {
    signals: Mutex<Vec<Weak<Signal>>>,
}

impl Deadlines {
    /// Watches the deadline of a new connection, for as long as it lives.
    pub fn watch(&self, signal: &Arc<Signal>) {
        lock(&self.signals).push(Arc::downgrade(signal));
    }

    /// Raises [`Raised::Idle`] on every connection past its deadline at `now`, and
    /// forgets the connections that ended.
    pub fn sweep(&self, now: Instant) {
        lock(&self.signals).retain(|weak| match weak.upgrade() {
            Some(signal) => {
                if signal.is_past_deadline(now) {
                    signal.raise(Raised::Idle);
                }
                true
            }
            None => false,
        });
    }

    /// Sweeps every [`SWEEP`] until dropped (the server aborts the task).
    pub async fn run(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(SWEEP);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.sweep(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_deadlines_are_raised_and_ended_connections_forgotten() {
        let deadlines = Deadlines::default();
        let now = Instant::now();
        let late = Arc::new(Signal::default());
        let on_time = Arc::new(Signal::default());
        let none = Arc::new(Signal::default());
        late.set_deadline(Some(now - Duration::from_millis(10)));
        on_time.set_deadline(Some(now + Duration::from_secs(10)));
        none.set_deadline(None);
        for s in [&late, &on_time, &none] {
            deadlines.watch(s);
        }
        deadlines.watch(&Arc::new(Signal::default())); // ended at once
        deadlines.sweep(now);
        assert!(late.take().contains(Raised::Idle));
        assert!(!on_time.take().contains(Raised::Idle));
        assert!(!none.take().contains(Raised::Idle));
        assert_eq!(lock(&deadlines.signals).len(), 3);
    }
}
