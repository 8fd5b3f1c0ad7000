//! The sans-IO client driven by the async `Connection` over an opaque transport.
#![no_std]
#![no_main]

use core::hint::black_box;
use embassy_time::{Duration, Instant};
use embedded_io_async::{ErrorKind, ErrorType, Read, Write};
use midge_client::{
    Client, Config, Connection, Event, LastWill, QoS, Subscription, SubscriptionOptions,
};
use midge_client_size::input;

struct Opaque;

impl ErrorType for Opaque {
    type Error = ErrorKind;
}

impl Read for Opaque {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        let data = input(buf.len());
        buf[..data.len()].copy_from_slice(data);
        Ok(data.len())
    }
}

impl Write for Opaque {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        Ok(black_box(buf).len())
    }

    async fn flush(&mut self) -> Result<(), ErrorKind> {
        Ok(())
    }
}

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
    static SUBSCRIPTIONS: [Subscription<'static>; 1] = [Subscription {
        filter: "devices/node/cmd/#",
        options: SubscriptionOptions::new(QoS::AtLeastOnce),
    }];
    config.subscriptions = black_box(&SUBSCRIPTIONS);
    let mut client = Client::<256, 8>::new(black_box(config));
    loop {
        embassy_futures::block_on(async {
            let mut conn = Connection::new(&mut client, Opaque);
            loop {
                match conn.poll(Instant::now() + Duration::from_secs(1)).await {
                    Ok(Some(Event::Connected { .. })) => {
                        let _ = conn.client().publish(
                            black_box("sensors/node/temperature"),
                            input(black_box(32)),
                            QoS::AtLeastOnce,
                            false,
                        );
                    }
                    Ok(event) => {
                        black_box(event);
                    }
                    Err(e) => {
                        black_box(e);
                        break;
                    }
                }
            }
        });
        black_box(client.connection_lost());
    }
}
