//! The sensor node: the chip's temperature published to the broker by midge-node.

use embassy_net::Stack;
use midge_node::{Quantity, Reading, Sample, Sensor};

use crate::settings;
use crate::temperature::InternalTemperature;

impl Sensor for InternalTemperature {
    async fn sample(&mut self) -> Sample {
        let mut sample = Sample::new();
        match self.read_celsius().await {
            // A fresh Sample has room for MAX_READINGS (4) readings; this is the only one.
            Some(value) => drop(sample.push(Reading {
                quantity: Quantity::Temperature,
                value,
            })),
            None => defmt::warn!("ADC conversion failed; skipping this sample"),
        }
        sample
    }
}

/// Connects, publishes a reading every 10 s and reconnects for ever. It returns only for a
/// configuration that the build script would have refused, so that ends in a panic.
pub async fn run(stack: Stack<'static>, mut sensor: InternalTemperature, seed: u32) -> ! {
    let config = settings::node_config(seed);
    let error = midge_node::mqtt::run::<_, 256, 8>(stack, &config, &mut sensor).await;
    defmt::panic!("invalid node configuration: {}", error);
}
