// The part of every board's app that is the same on every board: the sensor node from
// midge-node with the build-time settings. Each board's main.rs includes this file with
// `#[path = "../../sensor_node.rs"] mod sensor_node;` next to its `settings` module, and
// implements `midge_node::Sensor` for its own temperature sensor.

use embassy_net::Stack;
use midge_node::{Quantity, Reading, Sample, Sensor};

use crate::settings;

/// A sample holding one temperature reading (°C).
pub fn temperature(value: f32) -> Sample {
    defmt::info!("temperature {=f32} C", value);
    let mut sample = Sample::new();
    // A fresh Sample has room for MAX_READINGS (4) readings, so this push cannot fail.
    let _ = sample.push(Reading {
        quantity: Quantity::Temperature,
        value,
    });
    sample
}

/// Connects, publishes a sample every 10 s and reconnects for ever. It returns only for a
/// configuration that the build script would have refused, so that ends in a panic.
pub async fn run(stack: Stack<'static>, sensor: &mut impl Sensor, seed: u32) -> ! {
    let config = settings::node_config(seed);
    // 256-byte packets hold a reading (about 110 bytes on the wire) with room to spare; 8
    // un-acknowledged QoS 1 readings can wait in the outbox across a reconnect.
    let error = midge_node::mqtt::run::<_, 256, 8>(stack, &config, sensor).await;
    defmt::panic!("invalid node configuration: {}", error);
}
