//! midge sensor node for the ESP32-C3: Wi-Fi with DHCP, the chip's temperature sensor
//! published over MQTT.

#![no_std]
#![no_main]

mod temperature;
mod wifi;

#[path = "../../sensor_node.rs"]
mod sensor_node;

mod settings {
    include!(concat!(env!("OUT_DIR"), "/settings.rs"));
}

use embassy_executor::Spawner;
use esp_hal::clock::CpuClock;
use esp_hal::rng::Rng;
use esp_hal::timer::timg::TimerGroup;
use {esp_backtrace as _, esp_println as _};

esp_bootloader_esp_idf::esp_app_desc!();

#[esp_hal::main]
async fn main(spawner: Spawner) -> ! {
    let p = esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::max()));
    // esp-radio allocates its buffers and the blobs' state on this heap: 64 KiB from the RAM
    // the ROM bootloader used (free once we run) plus 36 KiB of ordinary RAM, as esp-hal's
    // Wi-Fi examples size it.
    esp_alloc::heap_allocator!(#[esp_hal::ram(reclaimed)] size: 64 * 1024);
    esp_alloc::heap_allocator!(size: 36 * 1024);
    esp_rtos::start(TimerGroup::new(p.TIMG0).timer0, p.FROM_CPU_INTR0);

    let mut thermometer = temperature::InternalTemperature::new(p.TSENS);
    let credentials = wifi::Credentials {
        ssid: settings::WIFI_SSID,
        password: settings::WIFI_PASSWORD,
    };
    let stack = wifi::start(spawner, p.WIFI, credentials).await;
    sensor_node::run(stack, &mut thermometer, Rng::new().random()).await
}
