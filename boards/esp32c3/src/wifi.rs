//! Wi-Fi station mode through esp-radio, reconnecting for ever, and the embassy-net stack with
//! DHCP.

use embassy_executor::Spawner;
use embassy_net::{Stack, StackResources};
use embassy_time::Timer;
use esp_hal::peripherals::WIFI;
use esp_hal::rng::Rng;
use esp_radio::wifi::sta::StationConfig;
use esp_radio::wifi::{
    AuthenticationMethodConfig, Config, ControllerConfig, Interface, WifiController,
};
use static_cell::StaticCell;

/// DHCP, the MQTT socket and one DNS query at a time.
const SOCKETS: usize = 3;

pub struct Credentials {
    pub ssid: &'static str,
    pub password: &'static str,
}

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, Interface>) -> ! {
    runner.run().await
}

/// Keeps the station associated: waits for a disconnect, then joins again.
#[embassy_executor::task]
async fn connection_task(mut controller: WifiController<'static>) -> ! {
    loop {
        match controller.connect_async().await {
            Ok(_) => {
                defmt::info!("Wi-Fi associated");
                let reason = controller.wait_for_disconnect_async().await;
                defmt::warn!("Wi-Fi disconnected: {}", defmt::Debug2Format(&reason));
            }
            Err(e) => defmt::warn!("Wi-Fi join failed: {}", defmt::Debug2Format(&e)),
        }
        Timer::after_secs(5).await;
    }
}

/// Starts Wi-Fi and returns once DHCP gave an address.
pub async fn start(
    spawner: Spawner,
    wifi: WIFI<'static>,
    credentials: Credentials,
) -> Stack<'static> {
    // Fails for an SSID over 32 bytes or a passphrase over 63: settings to fix at build time.
    let station = StationConfig::default()
        .with_ssid(defmt::unwrap!(credentials.ssid.try_into()))
        .with_authentication(AuthenticationMethodConfig::Wpa2Personal(defmt::unwrap!(
            credentials.password.try_into()
        )));
    let controller = defmt::unwrap!(WifiController::new(
        wifi,
        ControllerConfig::default().with_initial_config(Config::Station(station)),
    ));

    let rng = Rng::new();
    let seed = u64::from(rng.random()) << 32 | u64::from(rng.random());
    static RESOURCES: StaticCell<StackResources<SOCKETS>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(
        Interface::station(),
        embassy_net::Config::dhcpv4(Default::default()),
        RESOURCES.init(StackResources::new()),
        seed,
    );
    spawner.spawn(defmt::unwrap!(connection_task(controller)));
    spawner.spawn(defmt::unwrap!(net_task(runner)));

    defmt::info!("joining {}, waiting for DHCP", credentials.ssid);
    stack.wait_config_up().await;
    if let Some(config) = stack.config_v4() {
        defmt::info!("address {}", config.address);
    }
    stack
}
