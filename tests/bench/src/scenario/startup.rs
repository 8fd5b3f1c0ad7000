//! Startup: how long from spawning the broker to its first CONNACK, and its memory when
//! idle with no client connected.

use std::time::Duration;

use super::Outcome;
use crate::broker::Broker;
use crate::proc::Memory;

pub async fn run(broker: &mut Broker) -> Result<Outcome, String> {
    // The probe client that measured the startup has disconnected; let the broker settle.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let memory = Memory::of(broker.pid()).map_err(|e| e.to_string())?;
    broker.check_alive()?;
    let mut outcome = Outcome::default();
    outcome.metric(
        "spawn to first CONNACK [ms]",
        broker.startup.as_secs_f64() * 1e3,
    );
    outcome.metric("idle RSS [KiB]", memory.rss_kib as f64);
    Ok(outcome)
}
