//! The sensor node: the chip's temperature published to the broker by midge-node.

use embassy_net::Stack;
use esp_hal::tsens::TemperatureSensor;
use midge_node::{Quantity, Reading, Sample, Sensor};

use crate::settings;

/// The on-die sensor; it measures the chip, which runs warmer than the air around it.
pub struct InternalTemperature(pub TemperatureSensor<'static>);

impl Sensor for InternalTemperature {
    async fn sample(&mut self) -> Sample {
        let mut sample = Sample::new();
        let value = self.0.get_temperature().to_celsius();
        // A fresh Sample has room for MAX_READINGS (4) readings; this is the only one.
        let _ = sample.push(Reading {
            quantity: Quantity::Temperature,
            value,
        });
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
