//! Latency at a fixed rate: one publisher sends on a fixed schedule, one subscriber
//! measures each message's arrival against the time it was *due*, not the time it was
//! actually written, so a stall (in the broker, or in the generator) counts in full
//! instead of quietly delaying later messages (coordinated omission).
//!
//! The publisher runs on a plain thread, which sleeps with microsecond precision (tokio's
//! timer has a millisecond grain); the subscriber is a tokio task woken by the socket.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use midge_wire::{Packet, QoS};
use tokio::sync::watch;

use super::{Outcome, Settings};
use crate::broker::Broker;
use crate::mqtt::{Client, PublishTemplate, Stamp};
use crate::proc::CpuSample;
use crate::seq::Tracker;

const TOPIC: &str = "bench/latency";
/// The first message is due this long after the clock starts.
const LEAD_NS: u64 = 10_000_000;
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

pub async fn run(broker: &mut Broker, s: &Settings) -> Result<Outcome, String> {
    let addr = broker.addr;
    let mut subscriber = Client::connect(addr, "bench-latency-sub")
        .await
        .map_err(|e| format!("subscriber: {e}"))?;
    subscriber
        .subscribe(TOPIC, QoS::AtMostOnce)
        .await
        .map_err(|e| format!("subscriber: {e}"))?;
    let publisher = Client::connect(addr, "bench-latency-pub")
        .await
        .and_then(Client::into_stream)
        .and_then(tokio::net::TcpStream::into_std)
        .map_err(|e| format!("publisher: {e}"))?;
    publisher
        .set_nonblocking(false)
        .map_err(|e| e.to_string())?;

    let total = (f64::from(s.latency_rate) * s.latency_duration.as_secs_f64()) as u64;
    let interval_ns = 1e9 / f64::from(s.latency_rate);
    let template = PublishTemplate::new(TOPIC, QoS::AtMostOnce, s.payload);
    let received = Arc::new(AtomicU64::new(0));
    let (stop_tx, mut stop_rx) = watch::channel(false);

    let broker_before = CpuSample::take(Some(broker.pid())).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let count = Arc::clone(&received);
    let receiver = tokio::spawn(async move {
        let mut tracker = Tracker::new(1);
        let mut latencies: Vec<u64> = Vec::with_capacity(total as usize);
        loop {
            let mut new = 0;
            let open = tokio::select! {
                biased;
                _ = stop_rx.changed() => break,
                r = subscriber.reader.read_batch(|packet| {
                    let Packet::Publish(p) = packet else { return };
                    let now = t0.elapsed().as_nanos() as u64;
                    let Some(stamp) = Stamp::read(p.payload) else {
                        tracker.foreign += 1;
                        return;
                    };
                    if tracker.record(stamp.publisher, stamp.seq) {
                        new += 1;
                        latencies.push(now.saturating_sub(stamp.due_ns));
                    }
                }) => r?,
            };
            if !open {
                return Err(io::Error::other("broker closed the connection"));
            }
            count.fetch_add(new, Ordering::Release);
        }
        Ok((tracker, latencies))
    });
    let sender =
        tokio::task::spawn_blocking(move || paced(publisher, &template, interval_ns, total, t0));

    let (lags, _open_until_drained) = sender
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("publisher: {e}"))?;
    let mut last = received.load(Ordering::Acquire);
    let mut last_move = Instant::now();
    while last < total && last_move.elapsed() < DRAIN_TIMEOUT {
        tokio::time::sleep(Duration::from_millis(2)).await;
        let now = received.load(Ordering::Acquire);
        if now != last {
            last = now;
            last_move = Instant::now();
        }
    }
    let broker_cpu =
        broker_before.until(&CpuSample::take(Some(broker.pid())).map_err(|e| e.to_string())?);
    broker.check_alive()?;
    let _ = stop_tx.send(true);
    let (tracker, mut latencies) = receiver
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("subscriber: {e}"))?;

    let counts = tracker.counts(|_| Some(total));
    latencies.sort_unstable();
    let mut lags = lags;
    lags.sort_unstable();
    let ms = |ns: u64| ns as f64 / 1e6;
    let mut outcome = Outcome::default();
    outcome.metric("latency p50 [ms]", ms(percentile(&latencies, 0.50)));
    outcome.metric("latency p99 [ms]", ms(percentile(&latencies, 0.99)));
    outcome.metric("latency p99.9 [ms]", ms(percentile(&latencies, 0.999)));
    outcome.metric(
        "latency max [ms]",
        ms(latencies.last().copied().unwrap_or(0)),
    );
    outcome.metric("lost", counts.lost as f64);
    outcome.metric("reordered", counts.reordered as f64);
    outcome.metric("broker CPU [% of a core]", broker_cpu.percent());
    outcome.metric("generator send lag p99 [ms]", ms(percentile(&lags, 0.99)));
    if tracker.foreign > 0 {
        outcome.fail(format!(
            "{} messages with a foreign payload",
            tracker.foreign
        ));
    }
    Ok(outcome)
}

/// Sends message `seq` at `LEAD_NS + seq * interval_ns` after `t0`: everything due by now
/// in one write, then sleeps until the next is due. Returns how late each message was
/// written (the generator's own share of the latency) and the socket, which stays open
/// until the run is over.
fn paced(
    mut stream: std::net::TcpStream,
    template: &PublishTemplate,
    interval_ns: f64,
    total: u64,
    t0: Instant,
) -> io::Result<(Vec<u64>, std::net::TcpStream)> {
    let due = |seq: u64| LEAD_NS + (seq as f64 * interval_ns) as u64;
    let mut lags = Vec::with_capacity(total as usize);
    let mut buf = Vec::new();
    let mut seq = 0;
    while seq < total {
        let now = t0.elapsed().as_nanos() as u64;
        if due(seq) > now {
            std::thread::sleep(Duration::from_nanos(due(seq) - now));
            continue;
        }
        while seq < total && due(seq) <= now {
            let stamp = Stamp {
                publisher: 0,
                seq,
                due_ns: due(seq),
            };
            template.append(&mut buf, 0, stamp);
            lags.push(now - due(seq));
            seq += 1;
        }
        stream.write_all(&buf)?;
        buf.clear();
    }
    Ok((lags, stream))
}

/// The value at quantile `q` of sorted `values` (nearest rank).
fn percentile(values: &[u64], q: f64) -> u64 {
    if values.is_empty() {
        return 0;
    }
    let rank = (q * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 50);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&v, 1.0), 100);
        assert_eq!(percentile(&[7], 0.999), 7);
        assert_eq!(percentile(&[], 0.5), 0);
    }
}
