//! midge sensor node for the NUCLEO-F429ZI: Ethernet with DHCP, the chip's temperature
//! published over MQTT.

#![no_std]
#![no_main]

mod net;
mod temperature;

#[path = "../../sensor_node.rs"]
mod sensor_node;

mod settings {
    include!(concat!(env!("OUT_DIR"), "/settings.rs"));
}

use embassy_executor::Spawner;
use embassy_stm32::rng::{self, Rng};
use embassy_stm32::time::Hertz;
use embassy_stm32::{bind_interrupts, peripherals};
use {defmt_rtt as _, panic_probe as _};

bind_interrupts!(struct Irqs {
    HASH_RNG => rng::InterruptHandler<peripherals::RNG>;
});

/// 168 MHz from the 8 MHz clock the on-board ST-LINK feeds to HSE (bypass mode): a 336 MHz
/// VCO also gives the exact 48 MHz the RNG needs (180 MHz would leave it without a clock).
fn clocks() -> embassy_stm32::Config {
    use embassy_stm32::rcc::*;
    let mut config = embassy_stm32::Config::default();
    config.rcc.hse = Some(Hse {
        freq: Hertz(8_000_000),
        mode: HseMode::Bypass,
    });
    config.rcc.pll_src = PllSource::HSE;
    config.rcc.pll = Some(Pll {
        prediv: PllPreDiv::DIV4,
        mul: PllMul::MUL168,
        divp: Some(PllPDiv::DIV2),
        divq: Some(PllQDiv::DIV7),
        divr: None,
    });
    config.rcc.ahb_pre = AHBPrescaler::DIV1;
    config.rcc.apb1_pre = APBPrescaler::DIV4;
    config.rcc.apb2_pre = APBPrescaler::DIV2;
    config.rcc.sys = Sysclk::PLL1_P;
    config
}

#[embassy_executor::main]
async fn main(spawner: Spawner) -> ! {
    let p = embassy_stm32::init(clocks());
    let (mut net_seed, mut backoff_seed) = ([0; 8], [0; 4]);
    let mut rng = Rng::new(p.RNG, Irqs);
    // The RNG fails only on a seed or clock fault; a weak seed is still better than stopping.
    rng.async_fill_bytes(&mut net_seed).await.ok();
    rng.async_fill_bytes(&mut backoff_seed).await.ok();
    let mut thermometer = temperature::InternalTemperature::new(p.ADC1).await;
    let pins = net::EthPins {
        eth: p.ETH,
        sma: p.ETH_SMA,
        ref_clk: p.PA1,
        crs: p.PA7,
        rx_d0: p.PC4,
        rx_d1: p.PC5,
        tx_d0: p.PG13,
        tx_d1: p.PB13,
        tx_en: p.PG11,
        mdio: p.PA2,
        mdc: p.PC1,
    };
    let stack = net::start(spawner, pins, u64::from_le_bytes(net_seed)).await;
    sensor_node::run(stack, &mut thermometer, u32::from_le_bytes(backoff_seed)).await
}
