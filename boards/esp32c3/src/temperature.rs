//! The ESP32-C3's on-die temperature sensor. It measures the chip, which runs warmer than
//! the air around it (more so while the radio transmits).

use esp_hal::peripherals::TSENS;
use esp_hal::tsens::TemperatureSensor;
use midge_node::{Sample, Sensor};

use crate::sensor_node;

pub struct InternalTemperature(TemperatureSensor<'static>);

impl InternalTemperature {
    pub fn new(tsens: TSENS<'static>) -> Self {
        // The default configuration (XTAL clock) is valid on every chip with the sensor.
        let sensor = TemperatureSensor::new(tsens, Default::default()).unwrap_or_else(|_| {
            defmt::panic!("temperature sensor rejected its default configuration")
        });
        Self(sensor)
    }
}

impl Sensor for InternalTemperature {
    async fn sample(&mut self) -> Sample {
        sensor_node::temperature(self.0.get_temperature().to_celsius())
    }
}
