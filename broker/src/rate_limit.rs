//! A cap on how fast one source address may open connections, so a device stuck in a
//! reconnect loop (or a deliberate flood) cannot keep the broker busy with handshakes
//! and password checks. Each address has a token bucket: `per_second` tokens a second,
//! up to ten seconds' worth, one per connection.

use crate::locks::lock;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug)]
pub struct ConnectionRate {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
    /// A refusal was already reported since the last admission.
    reported: bool,
}

/// Addresses are forgotten once their bucket has refilled; this many at most are kept
/// before such a clean-up runs, so a scan from many addresses costs bounded memory.
const PRUNE_ABOVE: usize = 4096;

/// What [`ConnectionRate::admit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    /// Refused; `first` is set for the first refusal since the address was last admitted
    /// (log that one, not every one of a flood).
    Refused {
        first: bool,
    },
}

impl ConnectionRate {
    /// `per_second` new connections a second per address; 0 means no limit.
    pub fn new(per_second: u32) -> Self {
        let per_second = f64::from(per_second);
        Self {
            per_second,
            burst: per_second * 10.0,
            buckets: Mutex::default(),
        }
    }

    pub fn admit(&self, ip: IpAddr, now: Instant) -> Admission {
        if self.per_second == 0.0 {
            return Admission::Admitted;
        }
        let mut buckets = lock(&self.buckets);
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, b| self.refilled(b, now) < self.burst);
        }
        let full = Bucket {
            tokens: self.burst,
            last: now,
            reported: false,
        };
        let bucket = buckets.entry(ip).or_insert(full);
        bucket.tokens = self.refilled(bucket, now);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            bucket.reported = false;
            Admission::Admitted
        } else {
            let first = !bucket.reported;
            bucket.reported = true;
            Admission::Refused { first }
        }
    }

    fn refilled(&self, bucket: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        (bucket.tokens + elapsed * self.per_second).min(self.burst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bursts_then_refills_per_address() {
        let rate = ConnectionRate::new(2); // burst of 20
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        for _ in 0..20 {
            assert_eq!(rate.admit(a, t0), Admission::Admitted);
        }
        assert_eq!(rate.admit(a, t0), Admission::Refused { first: true });
        assert_eq!(rate.admit(a, t0), Admission::Refused { first: false });
        assert_eq!(
            rate.admit(b, t0),
            Admission::Admitted,
            "other addresses are not affected"
        );
        // Half a second refills one token at 2 a second.
        let later = t0 + Duration::from_millis(500);
        assert_eq!(rate.admit(a, later), Admission::Admitted);
        assert_eq!(rate.admit(a, later), Admission::Refused { first: true });
    }

    #[test]
    fn zero_means_no_limit() {
        let rate = ConnectionRate::new(0);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let now = Instant::now();
        assert!((0..10_000).all(|_| rate.admit(ip, now) == Admission::Admitted));
    }
}
