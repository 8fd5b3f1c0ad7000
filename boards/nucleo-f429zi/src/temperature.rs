//! The STM32F429's internal temperature sensor on ADC1, corrected with the factory calibration
//! values (RM0090 and DS9405 §6.3.22): the sensor's offset varies by ±45 °C between chips, so the
//! datasheet's typical slope alone would be useless.

use embassy_stm32::Peri;
use embassy_stm32::adc::{Adc, SampleTime, Temperature, VrefInt};
use embassy_stm32::peripherals::ADC1;
use embassy_time::Timer;
use midge_node::{Sample, Sensor};

use crate::sensor_node;

/// Raw 12-bit readings taken at 30 °C and 110 °C with VDDA = 3.3 V, and VREFINT at 3.3 V.
const TS_CAL1: *const u16 = 0x1FFF_7A2C as *const u16;
const TS_CAL2: *const u16 = 0x1FFF_7A2E as *const u16;
const VREFINT_CAL: *const u16 = 0x1FFF_7A2A as *const u16;

/// Sampling must last at least 10 µs for the sensor (datasheet T_S_temp); 480 cycles at the
/// 21 MHz ADC clock (84 MHz APB2 / 4) is 23 µs.
const SAMPLE: SampleTime = SampleTime::CYCLES480;

pub struct InternalTemperature {
    adc: Adc<'static, ADC1>,
    sensor: Temperature,
    vrefint: VrefInt,
}

impl InternalTemperature {
    pub async fn new(adc1: Peri<'static, ADC1>) -> Self {
        let adc = Adc::new(adc1);
        let sensor = adc.enable_temperature();
        let vrefint = adc.enable_vrefint();
        // Sensor start-up time is at most 10 µs.
        Timer::after_micros(10).await;
        Self {
            adc,
            sensor,
            vrefint,
        }
    }

    /// Chip temperature in °C.
    pub fn read_celsius(&mut self) -> f32 {
        let vref = self.adc.blocking_read(&mut self.vrefint, SAMPLE);
        let raw = self.adc.blocking_read(&mut self.sensor, SAMPLE);
        // SAFETY: the calibration words live in the system memory's read-only OTP area of every
        // STM32F42x/43x and are always readable.
        let (cal1, cal2, vref_cal) = unsafe {
            (
                TS_CAL1.read_volatile(),
                TS_CAL2.read_volatile(),
                VREFINT_CAL.read_volatile(),
            )
        };
        celsius(raw, vref, cal1, cal2, vref_cal)
    }
}

impl Sensor for InternalTemperature {
    async fn sample(&mut self) -> Sample {
        sensor_node::temperature(self.read_celsius())
    }
}

/// Scales `raw` to what it would read at VDDA = 3.3 V (the calibration's supply), then
/// interpolates between the two calibration points.
fn celsius(raw: u16, vref: u16, cal1: u16, cal2: u16, vref_cal: u16) -> f32 {
    let at_3v3 = f32::from(raw) * f32::from(vref_cal) / f32::from(vref.max(1));
    let per_degree = (f32::from(cal2) - f32::from(cal1)) / 80.0;
    30.0 + (at_3v3 - f32::from(cal1)) / per_degree
}
