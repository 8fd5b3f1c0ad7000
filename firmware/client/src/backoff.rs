//! Reconnect delays: exponential growth, capped, with jitter.

use crate::Rng;
use crate::config::Backoff;
use embassy_time::Duration;

/// Where a client is in its back-off sequence.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BackoffState {
    attempt: u32,
    rng: Rng,
}

impl BackoffState {
    pub(crate) const fn new(seed: u32) -> Self {
        Self {
            attempt: 0,
            rng: Rng::new(seed),
        }
    }

    /// The delay before the next connection attempt; each call counts as one failure.
    pub(crate) fn next_delay(&mut self, cfg: &Backoff) -> Duration {
        let factor = 1u64 << self.attempt.min(20);
        self.attempt = self.attempt.saturating_add(1);
        let ceiling = cfg
            .initial
            .as_ticks()
            .saturating_mul(factor)
            .min(cfg.max.as_ticks());
        // Jitter: uniformly in [ceiling / 2, ceiling].
        let half = ceiling / 2;
        let jitter = u64::from(self.rng.next_u32()) % (ceiling - half + 1);
        Duration::from_ticks(half + jitter)
    }

    /// A connection was accepted: the next failure starts from `initial` again.
    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_jitters_and_resets() {
        let cfg = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(1000),
            seed: 7,
        };
        let mut b = BackoffState::new(cfg.seed);
        let ceilings = [100, 200, 400, 800, 1000, 1000, 1000];
        let mut delays = [0u64; 7];
        for (d, ceiling) in delays.iter_mut().zip(ceilings) {
            *d = b.next_delay(&cfg).as_millis();
            assert!(*d >= ceiling / 2 && *d <= ceiling, "{d} vs {ceiling}");
        }
        // Jitter: the capped attempts do not all wait the same time.
        assert!(delays[4..].windows(2).any(|w| w[0] != w[1]), "{delays:?}");
        b.reset();
        assert!(b.next_delay(&cfg).as_millis() <= 100);
    }

    #[test]
    fn different_seeds_give_different_delays() {
        let cfg = Backoff::DEFAULT;
        let a: [u64; 4] = core::array::from_fn({
            let mut b = BackoffState::new(1);
            move |_| b.next_delay(&cfg).as_ticks()
        });
        let c: [u64; 4] = core::array::from_fn({
            let mut b = BackoffState::new(2);
            move |_| b.next_delay(&cfg).as_ticks()
        });
        assert_ne!(a, c);
    }
}
