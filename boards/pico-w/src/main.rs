//! midge sensor node for the Raspberry Pi Pico W: Wi-Fi with DHCP, the RP2040's temperature
//! published over MQTT.

#![no_std]
#![no_main]

mod cyw43_blobs;
mod temperature;
mod wifi;

use embassy_executor::Spawner;
use embassy_time::Timer;
use {defmt_rtt as _, panic_probe as _};

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let p = embassy_rp::init(Default::default());
    let mut thermometer = temperature::InternalTemperature::new(p.ADC, p.ADC_TEMP_SENSOR);
    let pins = wifi::RadioPins {
        power: p.PIN_23,
        dio: p.PIN_24,
        cs: p.PIN_25,
        clk: p.PIN_29,
        pio: p.PIO0,
        dma: p.DMA_CH0,
    };
    let credentials = wifi::Credentials {
        ssid: env!("MIDGE_WIFI_SSID"),
        password: env!("MIDGE_WIFI_PASSWORD"),
    };
    let _stack = wifi::start(spawner, pins, credentials).await;
    loop {
        defmt::info!("temperature {} C", thermometer.read_celsius().await);
        Timer::after_secs(10).await;
    }
}
