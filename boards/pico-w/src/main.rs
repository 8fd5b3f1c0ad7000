//! midge sensor node for the Raspberry Pi Pico W: Wi-Fi with DHCP, the RP2040's temperature
//! published over MQTT.

#![no_std]
#![no_main]

mod cyw43_blobs;
mod temperature;
mod wifi;

#[path = "../../sensor_node.rs"]
mod sensor_node;

mod settings {
    include!(concat!(env!("OUT_DIR"), "/settings.rs"));
}

use embassy_executor::Spawner;
use embassy_rp::clocks::RoscRng;
use {defmt_rtt as _, panic_probe as _};

#[embassy_executor::main]
async fn main(spawner: Spawner) -> ! {
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
        ssid: settings::WIFI_SSID,
        password: settings::WIFI_PASSWORD,
    };
    let stack = wifi::start(spawner, pins, credentials).await;
    sensor_node::run(stack, &mut thermometer, RoscRng.next_u32()).await
}
