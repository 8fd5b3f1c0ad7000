//! The RP2040's internal temperature sensor (ADC input 4).

use embassy_rp::Peri;
use embassy_rp::adc::{self, Adc, Async, Channel};
use embassy_rp::bind_interrupts;
use midge_node::{Sample, Sensor};

use crate::sensor_node;
use embassy_rp::peripherals::{ADC, ADC_TEMP_SENSOR};

bind_interrupts!(struct Irqs {
    ADC_IRQ_FIFO => adc::InterruptHandler;
});

pub struct InternalTemperature {
    adc: Adc<'static, Async>,
    sensor: Channel<'static>,
}

impl InternalTemperature {
    pub fn new(adc: Peri<'static, ADC>, sensor: Peri<'static, ADC_TEMP_SENSOR>) -> Self {
        Self {
            adc: Adc::new(adc, Irqs, adc::Config::default()),
            sensor: Channel::new_temp_sensor(sensor),
        }
    }

    /// Chip temperature in °C, or `None` if the conversion failed.
    pub async fn read_celsius(&mut self) -> Option<f32> {
        self.adc.read(&mut self.sensor).await.ok().map(celsius)
    }
}

impl Sensor for InternalTemperature {
    async fn sample(&mut self) -> Sample {
        match self.read_celsius().await {
            Some(value) => sensor_node::temperature(value),
            None => {
                defmt::warn!("ADC conversion failed; skipping this sample");
                Sample::new()
            }
        }
    }
}

/// RP2040 datasheet §4.9.5: T = 27 - (V - 0.706) / 0.001721, with V from a 12-bit reading of a
/// 3.3 V reference (the Pico's ADC_VREF).
fn celsius(raw: u16) -> f32 {
    let volts = f32::from(raw) * 3.3 / 4096.0;
    27.0 - (volts - 0.706) / 0.001721
}
