//! For comparison: the same application as `connection` with rust-mqtt 0.6 (MQTT 5 only,
//! no-alloc `bump` buffer): connect with credentials and a retained will, subscribe,
//! publish at QoS 1, poll events, ping, and republish the un-acknowledged message after a
//! reconnect (rust-mqtt leaves reconnecting and re-sending to the application).
#![no_std]
#![no_main]

use core::hint::black_box;
use core::num::NonZero;
use embedded_io_async::{ErrorKind, ErrorType, Read, Write};
use midge_client_size::input;
use rust_mqtt::Bytes;
use rust_mqtt::buffer::BumpBuffer;
use rust_mqtt::client::Client;
use rust_mqtt::client::options::{
    ConnectOptions, PublicationOptions, SubscriptionOptions, TopicReference, WillOptions,
};
use rust_mqtt::config::KeepAlive;
use rust_mqtt::types::{MqttBinary, MqttString, TopicFilter, TopicName};

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

fn string(s: &'static str) -> MqttString<'static> {
    MqttString::try_from(black_box(s)).unwrap_or_default()
}

#[cortex_m_rt::entry]
fn main() -> ! {
    let mut memory = [0u8; 1024];
    let mut buffer = BumpBuffer::new(&mut memory);
    let mut client = Client::<'_, '_, Opaque, _, 1, 8, 8, 0, 0, 0, 0>::new(&mut buffer);
    let will_topic = TopicName::new(string("devices/node/status"));
    let topic = TopicName::new(string("sensors/node/temperature"));
    let filter = TopicFilter::new(string("devices/node/cmd/#"));
    let (Some(will_topic), Some(topic), Some(filter)) = (will_topic, topic, filter) else {
        loop {}
    };
    let will = WillOptions::new(
        will_topic,
        MqttBinary::try_from(black_box("offline")).unwrap_or_default(),
    )
    .at_least_once()
    .retain();
    let options = ConnectOptions::new()
        .keep_alive(KeepAlive::Seconds(
            NonZero::new(60).unwrap_or(NonZero::<u16>::MIN),
        ))
        .user_name(string("user"))
        .password(MqttBinary::try_from(black_box("secret")).unwrap_or_default())
        .will(will);
    let publication = PublicationOptions::new(TopicReference::Name(topic)).at_least_once();
    let mut unacked = None;
    loop {
        embassy_futures::block_on(async {
            if client
                .connect(Opaque, &options, Some(string("node")))
                .await
                .is_err()
            {
                return;
            }
            if let Some(pid) = unacked {
                let _ = client
                    .republish(pid, &publication, Bytes::from(input(black_box(32))))
                    .await;
            }
            let _ = client
                .subscribe(
                    filter.as_borrowed(),
                    &SubscriptionOptions::new().at_least_once(),
                )
                .await;
            if let Ok(pid) = client
                .publish(&publication, Bytes::from(input(black_box(32))))
                .await
            {
                unacked = pid;
            }
            loop {
                match client.poll().await {
                    Ok(event) => {
                        black_box(&event);
                    }
                    Err(e) => {
                        black_box(&e);
                        break;
                    }
                }
                if black_box(false) && client.ping().await.is_err() {
                    break;
                }
            }
        });
        // SAFETY (bump allocator): nothing borrowed from the buffer outlives the session.
        unsafe { client.buffer_mut().reset() };
    }
}
