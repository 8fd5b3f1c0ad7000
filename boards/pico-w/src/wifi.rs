//! The CYW43439 over PIO SPI, Wi-Fi association, and the embassy-net stack with DHCP.

use cyw43::JoinOptions;
use cyw43_pio::{DEFAULT_CLOCK_DIVIDER, PioSpi};
use embassy_executor::Spawner;
use embassy_net::{Stack, StackResources};
use embassy_rp::clocks::RoscRng;
use embassy_rp::gpio::{Level, Output};
use embassy_rp::peripherals::{DMA_CH0, PIN_23, PIN_24, PIN_25, PIN_29, PIO0};
use embassy_rp::pio::{self, Pio};
use embassy_rp::{Peri, bind_interrupts, dma};
use embassy_time::Timer;
use static_cell::StaticCell;

use crate::cyw43_blobs;

bind_interrupts!(struct Irqs {
    PIO0_IRQ_0 => pio::InterruptHandler<PIO0>;
    DMA_IRQ_0 => dma::InterruptHandler<DMA_CH0>;
});

type Radio = cyw43::Runner<'static, cyw43::SpiBus<Output<'static>, PioSpi<'static, PIO0, 0>>>;

/// DHCP, the MQTT socket and one DNS query at a time.
const SOCKETS: usize = 3;

/// The Pico W wires the CYW43439 to these RP2040 pins (Pico W datasheet §3.1).
pub struct RadioPins {
    pub power: Peri<'static, PIN_23>,
    pub dio: Peri<'static, PIN_24>,
    pub cs: Peri<'static, PIN_25>,
    pub clk: Peri<'static, PIN_29>,
    pub pio: Peri<'static, PIO0>,
    pub dma: Peri<'static, DMA_CH0>,
}

pub struct Credentials {
    pub ssid: &'static str,
    pub password: &'static str,
}

#[embassy_executor::task]
async fn radio_task(runner: Radio) -> ! {
    runner.run().await
}

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, cyw43::NetDriver<'static>>) -> ! {
    runner.run().await
}

/// Joins the network (retrying until it succeeds) and returns once DHCP gave an address.
pub async fn start(spawner: Spawner, pins: RadioPins, credentials: Credentials) -> Stack<'static> {
    let firmware = cyw43_blobs::FIRMWARE.require();
    let clm = cyw43_blobs::CLM.require();
    let nvram = cyw43_blobs::NVRAM.require();

    let power = Output::new(pins.power, Level::Low);
    let cs = Output::new(pins.cs, Level::High);
    let mut pio = Pio::new(pins.pio, Irqs);
    let spi = PioSpi::new(
        &mut pio.common,
        pio.sm0,
        DEFAULT_CLOCK_DIVIDER,
        pio.irq0,
        cs,
        pins.dio,
        pins.clk,
        dma::Channel::new(pins.dma, Irqs),
    );

    static STATE: StaticCell<cyw43::State> = StaticCell::new();
    let (device, mut control, runner) =
        cyw43::new(STATE.init(cyw43::State::new()), power, spi, firmware, nvram).await;
    spawner.spawn(defmt::unwrap!(radio_task(runner)));
    control.init(clm).await;
    control
        .set_power_management(cyw43::PowerManagementMode::PowerSave)
        .await;

    static RESOURCES: StaticCell<StackResources<SOCKETS>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(
        device,
        embassy_net::Config::dhcpv4(Default::default()),
        RESOURCES.init(StackResources::new()),
        RoscRng.next_u64(),
    );
    spawner.spawn(defmt::unwrap!(net_task(runner)));

    while let Err(err) = control
        .join(
            credentials.ssid,
            JoinOptions::new(credentials.password.as_bytes()),
        )
        .await
    {
        defmt::warn!("joining {} failed ({}), retrying", credentials.ssid, err);
        Timer::after_secs(2).await;
    }
    defmt::info!("joined {}, waiting for DHCP", credentials.ssid);
    stack.wait_config_up().await;
    if let Some(config) = stack.config_v4() {
        defmt::info!("address {}", config.address);
    }
    stack
}
