//! The scenarios, their sizes, and what one run of one of them measured.

pub mod conns;
pub mod latency;
pub mod slow;
pub mod startup;
pub mod throughput;

use std::time::Duration;

use midge_wire::QoS;

use crate::broker::Broker;
use throughput::Topology;

/// Sizes of every scenario.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// How long publishers send in the throughput scenarios.
    pub duration: Duration,
    /// Payload bytes per message (at least the 20-byte stamp).
    pub payload: usize,
    /// Messages a publisher may be ahead of its slowest subscriber.
    pub window: usize,
    /// Messages per write.
    pub batch: usize,
    pub fanin_publishers: usize,
    pub fanout_subscribers: usize,
    pub pairs: usize,
    pub conns: usize,
    /// Messages per second in the latency scenario, and for how long.
    pub latency_rate: u32,
    pub latency_duration: Duration,
    /// Brokers persist (midge `sync`, Mosquitto `persistence true`) and the throughput
    /// scenarios' subscribers have persistent sessions, so every QoS 1 delivery is logged.
    pub persistent: bool,
}

impl Settings {
    pub fn full() -> Self {
        Self {
            duration: Duration::from_secs(5),
            payload: 64,
            window: 1000,
            batch: 64,
            fanin_publishers: 8,
            fanout_subscribers: 50,
            pairs: 25,
            conns: 10_000,
            latency_rate: 10_000,
            latency_duration: Duration::from_secs(5),
            persistent: false,
        }
    }

    /// Every scenario tiny: checks the harness end to end in seconds.
    pub fn quick() -> Self {
        Self {
            duration: Duration::from_millis(300),
            payload: 64,
            window: 200,
            batch: 16,
            fanin_publishers: 2,
            fanout_subscribers: 3,
            pairs: 2,
            conns: 50,
            latency_rate: 1000,
            latency_duration: Duration::from_millis(500),
            persistent: false,
        }
    }
}

/// The scenarios, in the order `all` runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// P publishers -> 1 subscriber on a wildcard, QoS 0.
    FaninQ0,
    /// P publishers -> 1 subscriber on a wildcard, QoS 1.
    FaninQ1,
    /// 1 publisher -> N subscribers, QoS 0.
    FanoutQ0,
    /// 1 publisher -> N subscribers, QoS 1.
    FanoutQ1,
    /// K independent publisher -> subscriber pairs, QoS 0.
    PairsQ0,
    /// K independent publisher -> subscriber pairs, QoS 1.
    PairsQ1,
    /// P QoS 1 publishers -> 1 subscriber that stalls: memory bounded by the queue limit.
    SlowSub,
    /// C idle subscribed connections: memory per connection, connection rate.
    Conns,
    /// One publisher at a fixed rate, QoS 0: latency from the scheduled send time.
    Latency,
    /// Spawn to first CONNACK, and idle memory.
    Startup,
}

impl Scenario {
    pub const ALL: [Scenario; 10] = [
        Scenario::FaninQ0,
        Scenario::FaninQ1,
        Scenario::FanoutQ0,
        Scenario::FanoutQ1,
        Scenario::PairsQ0,
        Scenario::PairsQ1,
        Scenario::SlowSub,
        Scenario::Conns,
        Scenario::Latency,
        Scenario::Startup,
    ];

    pub fn name(self) -> String {
        clap::ValueEnum::to_possible_value(&self)
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default()
    }

    /// What the scenario's sizes are, for the report.
    pub fn describe(self, s: &Settings) -> String {
        let each = format!(
            "{} B payloads, {} s, window {}",
            s.payload,
            s.duration.as_secs_f64(),
            s.window
        );
        match self {
            Scenario::FaninQ0 | Scenario::FaninQ1 => {
                format!(
                    "{} publishers -> 1 subscriber on bench/fanin/+; {each}",
                    s.fanin_publishers
                )
            }
            Scenario::FanoutQ0 | Scenario::FanoutQ1 => {
                format!(
                    "1 publisher -> {} subscribers; {each}",
                    s.fanout_subscribers
                )
            }
            Scenario::PairsQ0 | Scenario::PairsQ1 => format!("{} pairs; {each}", s.pairs),
            Scenario::SlowSub => format!(
                "{} QoS 1 publishers -> 1 subscriber on bench/slow/+ that reads nothing for {} s, \
                 then drains; max_queued_messages {} for both brokers",
                s.fanin_publishers,
                s.duration.as_secs_f64(),
                slow::QUEUE_LIMIT
            ),
            Scenario::Conns => format!(
                "{} idle connections, each subscribed to its own topic",
                s.conns
            ),
            Scenario::Latency => format!(
                "1 publisher -> 1 subscriber, QoS 0, {} msg/s for {} s",
                s.latency_rate,
                s.latency_duration.as_secs_f64()
            ),
            Scenario::Startup => "spawn until the first CONNACK; RSS 200 ms later".to_owned(),
        }
    }

    /// `max_queued_messages` for the brokers of this scenario.
    pub fn queue_limit(self) -> u32 {
        match self {
            Scenario::SlowSub => slow::QUEUE_LIMIT,
            _ => crate::broker::MAX_QUEUED,
        }
    }

    pub async fn run(self, broker: &mut Broker, s: &Settings) -> Result<Outcome, String> {
        let (q0, q1) = (QoS::AtMostOnce, QoS::AtLeastOnce);
        let topology = match self {
            Scenario::FaninQ0 => Topology::fanin(s.fanin_publishers, q0),
            Scenario::FaninQ1 => Topology::fanin(s.fanin_publishers, q1),
            Scenario::FanoutQ0 => Topology::fanout(s.fanout_subscribers, q0),
            Scenario::FanoutQ1 => Topology::fanout(s.fanout_subscribers, q1),
            Scenario::PairsQ0 => Topology::pairs(s.pairs, q0),
            Scenario::PairsQ1 => Topology::pairs(s.pairs, q1),
            Scenario::SlowSub => return slow::run(broker, s).await,
            Scenario::Conns => return conns::run(broker, s).await,
            Scenario::Latency => return latency::run(broker, s).await,
            Scenario::Startup => return startup::run(broker).await,
        };
        throughput::run(broker, &topology, s).await
    }
}

/// What one run of one scenario against one broker measured.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Metric name (with its unit) and value, in the order they are reported.
    pub metrics: Vec<(&'static str, f64)>,
    /// Why the run counts as failed (e.g. QoS 1 loss), if it does.
    pub failures: Vec<String>,
}

impl Outcome {
    pub fn metric(&mut self, name: &'static str, value: f64) {
        self.metrics.push((name, value));
    }

    pub fn fail(&mut self, why: String) {
        self.failures.push(why);
    }
}
