//! midge sensor node for the NUCLEO-F429ZI: Ethernet with DHCP, the chip's temperature
//! published over MQTT.

#![no_std]
#![no_main]

mod net;
mod temperature;

use embassy_executor::Spawner;
use embassy_stm32::time::Hertz;
use embassy_time::Timer;
use {defmt_rtt as _, panic_probe as _};

/// 180 MHz from the 8 MHz clock the on-board ST-LINK feeds to HSE (bypass mode).
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
        mul: PllMul::MUL180,
        divp: Some(PllPDiv::DIV2),
        divq: None,
        divr: None,
    });
    config.rcc.ahb_pre = AHBPrescaler::DIV1;
    config.rcc.apb1_pre = APBPrescaler::DIV4;
    config.rcc.apb2_pre = APBPrescaler::DIV2;
    config.rcc.sys = Sysclk::PLL1_P;
    config
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let p = embassy_stm32::init(clocks());
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
    let _stack = net::start(spawner, pins, p.RNG).await;
    loop {
        defmt::info!("temperature {} C", thermometer.read_celsius());
        Timer::after_secs(10).await;
    }
}
