//! Every entry point of the sans-IO client (and, through it, the codec it uses).
#![no_std]
#![no_main]

use core::hint::black_box;
use embassy_time::Instant;
use midge_client::{Client, Config, LastWill, QoS};
use midge_client_size::input;

#[cortex_m_rt::entry]
fn main() -> ! {
    let mut config = Config::new(black_box("node"));
    config.username = black_box(Some("user"));
    config.password = black_box(Some(b"secret".as_slice()));
    config.will = black_box(Some(LastWill {
        topic: "devices/node/status",
        payload: b"offline",
        qos: QoS::AtLeastOnce,
        retain: true,
    }));
    let mut client = Client::<256, 8>::new(black_box(config));
    let mut buf = [0u8; 256];
    loop {
        client.connection_opened();
        let now = Instant::from_ticks(black_box(0));
        while let Ok(Some(n)) = client.poll_transmit(now, &mut buf) {
            black_box(&buf[..n]);
        }
        let options = client.decode_options();
        if let Ok(midge_wire::Decoded::Complete { packet, .. }) =
            midge_wire::decode(input(black_box(64)), &options)
        {
            let _ = black_box(client.handle_packet(packet));
        }
        let _ = black_box(client.publish(
            black_box("sensors/node/temperature"),
            input(black_box(32)),
            black_box(QoS::AtLeastOnce),
            false,
        ));
        let _ = black_box(client.handle_timeout(now));
        black_box(client.poll_timeout());
        black_box(client.connection_lost());
    }
}
