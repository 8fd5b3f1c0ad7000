//! `$SYS/broker/...`: the broker's own statistics, under Mosquitto's topic names, published
//! retained every `sys_interval`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use midge_wire::QoS;

use crate::broker::Broker;
use crate::message::Message;

/// One-, five- and fifteen-minute moving averages of a counter's rate per minute,
/// computed as Mosquitto computes its `load/...` topics.
#[derive(Debug, Default)]
struct Load {
    last_count: u64,
    averages: [f64; 3],
}

impl Load {
    const MINUTES: [f64; 3] = [1.0, 5.0, 15.0];
    const SUFFIXES: [&'static str; 3] = ["1min", "5min", "15min"];

    fn update(&mut self, count: u64, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64().max(1e-3);
        let per_minute = count.saturating_sub(self.last_count) as f64 * 60.0 / seconds;
        self.last_count = count;
        for (avg, minutes) in self.averages.iter_mut().zip(Self::MINUTES) {
            let decay = (-seconds / (60.0 * minutes)).exp();
            *avg = per_minute + decay * (*avg - per_minute);
        }
    }
}

/// Picks one counter out of the broker's statistics.
type Counter = fn(&Broker) -> &AtomicU64;

/// Publishes the statistics every `interval` until the task is dropped.
pub async fn run(broker: Arc<Broker>, interval: Duration) {
    let started = Instant::now();
    publish(
        &broker,
        "version",
        format!("midge version {}", env!("CARGO_PKG_VERSION")),
    );
    let loads: [(&str, Counter); 6] = [
        ("messages/received", |b| &b.stats.messages_received),
        ("messages/sent", |b| &b.stats.messages_sent),
        ("bytes/received", |b| &b.stats.bytes_received),
        ("bytes/sent", |b| &b.stats.bytes_sent),
        ("publish/received", |b| &b.stats.publish_received),
        ("publish/sent", |b| &b.stats.publish_sent),
    ];
    let mut averages: Vec<Load> = loads.iter().map(|_| Load::default()).collect();
    let mut ticker = tokio::time::interval(interval);
    let mut last = Instant::now();
    loop {
        ticker.tick().await;
        let now = Instant::now();
        let elapsed = now - last;
        last = now;
        publish_counters(&broker, started);
        for ((name, counter), load) in loads.iter().zip(&mut averages) {
            load.update(counter(&broker).load(Ordering::Relaxed), elapsed);
            for (avg, suffix) in load.averages.iter().zip(Load::SUFFIXES) {
                publish(
                    &broker,
                    &format!("load/{name}/{suffix}"),
                    format!("{avg:.2}"),
                );
            }
        }
    }
}

fn publish_counters(broker: &Broker, started: Instant) {
    let s = &broker.stats;
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed).to_string();
    let connected = s.clients_connected.load(Ordering::Relaxed);
    let total = broker.session_count() as u64;
    let values = [
        ("uptime", format!("{} seconds", started.elapsed().as_secs())),
        ("clients/connected", connected.to_string()),
        ("clients/active", connected.to_string()),
        (
            "clients/disconnected",
            total.saturating_sub(connected).to_string(),
        ),
        (
            "clients/inactive",
            total.saturating_sub(connected).to_string(),
        ),
        ("clients/total", total.to_string()),
        ("clients/maximum", get(&s.clients_maximum)),
        ("messages/received", get(&s.messages_received)),
        ("messages/sent", get(&s.messages_sent)),
        ("bytes/received", get(&s.bytes_received)),
        ("bytes/sent", get(&s.bytes_sent)),
        ("publish/messages/received", get(&s.publish_received)),
        ("publish/messages/sent", get(&s.publish_sent)),
        ("publish/messages/dropped", get(&s.publish_dropped)),
        (
            "subscriptions/count",
            broker.subscription_count().to_string(),
        ),
        (
            "retained messages/count",
            broker.retained_count().to_string(),
        ),
    ];
    for (name, value) in values {
        publish(broker, name, value);
    }
}

fn publish(broker: &Broker, name: &str, value: String) {
    let topic = format!("$SYS/broker/{name}");
    broker.publish(Message::new(
        &topic,
        Bytes::from(value),
        QoS::AtMostOnce,
        true,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_converges_to_the_rate() {
        let mut load = Load::default();
        // 600 messages every 10 s = 3600 per minute, for five hours: even the
        // fifteen-minute average has settled (e^-20).
        for i in 1..=1800 {
            load.update(i * 600, Duration::from_secs(10));
        }
        for avg in load.averages {
            assert!((avg - 3600.0).abs() < 1.0, "{avg}");
        }
    }
}
