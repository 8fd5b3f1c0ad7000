//! Ethernet (the board's LAN8742A PHY over RMII) and the embassy-net stack with DHCP.

use embassy_executor::Spawner;
use embassy_net::{Stack, StackResources};
use embassy_stm32::eth::{Ethernet, GenericPhy, PacketQueue, Sma};
use embassy_stm32::peripherals::{ETH, ETH_SMA};
use embassy_stm32::{Peri, bind_interrupts, eth, peripherals};
use static_cell::StaticCell;

bind_interrupts!(struct Irqs {
    ETH => eth::InterruptHandler;
});

type Device = Ethernet<'static, ETH, GenericPhy<Sma<'static, ETH_SMA>>>;

/// DHCP, the MQTT socket and one DNS query at a time.
const SOCKETS: usize = 3;

/// The pins the NUCLEO-144 board routes to its RMII PHY (UM1974, table 13).
pub struct EthPins {
    pub eth: Peri<'static, ETH>,
    pub sma: Peri<'static, ETH_SMA>,
    pub ref_clk: Peri<'static, peripherals::PA1>,
    pub crs: Peri<'static, peripherals::PA7>,
    pub rx_d0: Peri<'static, peripherals::PC4>,
    pub rx_d1: Peri<'static, peripherals::PC5>,
    pub tx_d0: Peri<'static, peripherals::PG13>,
    pub tx_d1: Peri<'static, peripherals::PB13>,
    pub tx_en: Peri<'static, peripherals::PG11>,
    pub mdio: Peri<'static, peripherals::PA2>,
    pub mdc: Peri<'static, peripherals::PC1>,
}

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, Device>) -> ! {
    runner.run().await
}

/// Brings the interface up with DHCP and returns once an address is configured.
/// `seed` randomises TCP ports and sequence numbers.
pub async fn start(spawner: Spawner, pins: EthPins, seed: u64) -> Stack<'static> {
    static PACKETS: StaticCell<PacketQueue<4, 4>> = StaticCell::new();
    let device = Ethernet::new(
        PACKETS.init(PacketQueue::new()),
        pins.eth,
        Irqs,
        pins.ref_clk,
        pins.crs,
        pins.rx_d0,
        pins.rx_d1,
        pins.tx_d0,
        pins.tx_d1,
        pins.tx_en,
        mac_address(),
        pins.sma,
        pins.mdio,
        pins.mdc,
    );

    static RESOURCES: StaticCell<StackResources<SOCKETS>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(
        device,
        embassy_net::Config::dhcpv4(Default::default()),
        RESOURCES.init(StackResources::new()),
        seed,
    );
    spawner.spawn(defmt::unwrap!(net_task(runner)));

    defmt::info!("waiting for link and DHCP");
    stack.wait_config_up().await;
    if let Some(config) = stack.config_v4() {
        defmt::info!("address {}", config.address);
    }
    stack
}

/// A stable, locally administered unicast MAC derived from the chip's 96-bit unique ID, so two
/// boards on one LAN never clash.
fn mac_address() -> [u8; 6] {
    let uid = embassy_stm32::uid::uid();
    let mut mac = [0x02, 0, 0, 0, 0, 0];
    for (i, byte) in uid.iter().enumerate() {
        mac[1 + i % 5] ^= byte;
    }
    mac
}
