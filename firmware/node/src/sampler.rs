//! The sampling schedule and sequence numbers, shared by the MQTT and CoAP paths.

use embassy_time::{Duration, Instant};

use crate::{Record, Sample, Sensor};

/// Decides when to sample and numbers the samples.
#[derive(Debug)]
pub struct Sampler {
    period: Duration,
    next_at: Instant,
    seq: u32,
}

/// One sample with its number and time, ready to be published reading by reading.
#[derive(Clone, Debug, PartialEq)]
pub struct Numbered {
    pub sample: Sample,
    pub seq: u32,
    pub uptime_secs: u64,
}

impl Numbered {
    /// The sample's readings as the records that are published.
    pub fn records(&self) -> impl Iterator<Item = Record> + '_ {
        self.sample.iter().map(|&reading| Record {
            reading,
            seq: self.seq,
            uptime_secs: self.uptime_secs,
        })
    }
}

impl Sampler {
    /// The first sample is due at `start`.
    pub const fn new(period: Duration, start: Instant) -> Self {
        Self {
            period,
            next_at: start,
            seq: 0,
        }
    }

    pub const fn next_at(&self) -> Instant {
        self.next_at
    }

    /// Whether a sample is due at `now`.
    pub fn is_due(&self, now: Instant) -> bool {
        now >= self.next_at
    }

    /// Takes the sample that is due and schedules the next one period later (or one period
    /// from `now` if the node fell behind, rather than sampling in a burst).
    pub async fn take<S: Sensor>(&mut self, sensor: &mut S, now: Instant) -> Numbered {
        let sample = sensor.sample().await;
        let numbered = Numbered {
            sample,
            seq: self.seq,
            uptime_secs: now.as_secs(),
        };
        self.seq = self.seq.wrapping_add(1);
        self.next_at += self.period;
        if self.next_at <= now {
            self.next_at = now + self.period;
        }
        numbered
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Quantity, Reading};

    struct Fixed(f32);

    impl Sensor for Fixed {
        async fn sample(&mut self) -> Sample {
            self.0 += 1.0;
            let mut s = Sample::new();
            s.push(Reading {
                quantity: Quantity::Temperature,
                value: self.0,
            })
            .unwrap();
            s.push(Reading {
                quantity: Quantity::Humidity,
                value: 50.0,
            })
            .unwrap();
            s
        }
    }

    #[test]
    fn numbers_and_schedules_samples() {
        let period = Duration::from_secs(10);
        let mut sampler = Sampler::new(period, Instant::from_secs(5));
        let mut sensor = Fixed(20.0);
        assert!(!sampler.is_due(Instant::from_secs(4)));
        assert!(sampler.is_due(Instant::from_secs(5)));

        let first = embassy_futures::block_on(sampler.take(&mut sensor, Instant::from_secs(5)));
        assert_eq!((first.seq, first.uptime_secs), (0, 5));
        assert_eq!(sampler.next_at(), Instant::from_secs(15));
        let records: std::vec::Vec<Record> = first.records().collect();
        assert_eq!(records.len(), 2);
        assert!(records.iter().all(|r| r.seq == 0 && r.uptime_secs == 5));
        assert_eq!(records[0].reading.value, 21.0);

        // On time: the schedule does not drift with the sampling delay.
        let second = embassy_futures::block_on(sampler.take(&mut sensor, Instant::from_secs(16)));
        assert_eq!(second.seq, 1);
        assert_eq!(sampler.next_at(), Instant::from_secs(25));

        // Far behind: no burst of catch-up samples.
        let third = embassy_futures::block_on(sampler.take(&mut sensor, Instant::from_secs(100)));
        assert_eq!(third.seq, 2);
        assert_eq!(sampler.next_at(), Instant::from_secs(110));
    }
}
