//! The MQTT task: samples on schedule and publishes every reading through a
//! [`midge_client::Client`] over an embassy-net TCP socket, reconnecting for ever.

use core::pin::pin;
use embassy_futures::select::{Either, select};
use embassy_net::Stack;
use embassy_net::tcp::TcpSocket;
use embassy_time::{Instant, Timer};
use midge_client::net;
use midge_client::{
    Broker, Client, Config, Connection, Error, Event, LastWill, PublishError, QoS, Subscription,
    SubscriptionOptions,
};

use crate::{ConfigError, NodeConfig, Numbered, Sampler, Sensor};
use crate::{logging, topics};

/// Runs the node over MQTT. Returns only if `config` is invalid.
///
/// * `MAX_PACKET`: largest MQTT packet in bytes (readings need about 110 with a 32-byte
///   device id; 256 leaves room for commands);
/// * `OUTBOX` (at least 2): messages kept while the broker is unreachable or has not yet
///   acknowledged them. One slot is reserved for the `online` status; when the others are
///   full, new readings are dropped (their `seq` is missing at the subscriber).
///
/// The future holds `4 × MAX_PACKET + OUTBOX × (MAX_PACKET + 16)` bytes of buffers; as an
/// embassy task it lives in static RAM.
///
/// On every connection it publishes `online` (retained, QoS 1) to
/// `devices/{device_id}/status`; the will publishes `offline` when the connection dies.
pub async fn run<S: Sensor, const MAX_PACKET: usize, const OUTBOX: usize>(
    stack: Stack<'_>,
    config: &NodeConfig<'_>,
    sensor: &mut S,
) -> ConfigError {
    const {
        assert!(
            OUTBOX >= 2,
            "OUTBOX must hold a reading and the status message"
        )
    };
    if let Err(e) = config.validate() {
        return e;
    }
    let status = topics::status_topic(config.device_id);
    let commands = topics::command_filter(config.device_id);
    let subscriptions = [Subscription {
        filter: &commands,
        options: SubscriptionOptions::new(QoS::AtLeastOnce),
    }];
    let mut mqtt = Config::new(config.device_id);
    mqtt.version = config.mqtt_version;
    mqtt.username = config.username;
    mqtt.password = config.password;
    mqtt.keep_alive_secs = config.keep_alive_secs;
    mqtt.response_timeout = config.response_timeout;
    mqtt.backoff = config.backoff;
    mqtt.subscriptions = &subscriptions;
    mqtt.will = Some(LastWill {
        topic: &status,
        payload: b"offline",
        qos: QoS::AtLeastOnce,
        retain: true,
    });
    let broker = Broker {
        host: config.host,
        port: config.mqtt_port,
    };
    let mut node = MqttNode {
        client: Client::<MAX_PACKET, OUTBOX>::new(mqtt),
        sampler: Sampler::new(config.period, Instant::now()),
        config,
        status: &status,
    };
    let mut rx_buffer = [0u8; MAX_PACKET];
    let mut tx_buffer = [0u8; MAX_PACKET];
    loop {
        let mut socket = TcpSocket::new(stack, &mut rx_buffer, &mut tx_buffer);
        // Sampling goes on while the network comes up and the broker is being reached.
        let connecting = async {
            stack.wait_config_up().await;
            net::connect(stack, &mut socket, &broker, config.response_timeout).await
        };
        match node.sample_while(connecting, sensor).await {
            Ok(()) => {
                let _error = node.serve(&mut socket, sensor).await;
                logging::warn!("connection ended: {:?}", _error);
            }
            Err(_e) => logging::warn!("cannot reach broker: {:?}", _e),
        }
        socket.abort();
        // Let the RST go out before the socket is dropped.
        let _ = socket.flush().await;
        drop(socket);
        let retry_at = Instant::now() + node.client.connection_lost();
        node.sample_while(Timer::at(retry_at), sensor).await;
    }
}

struct MqttNode<'a, 'c, const MAX_PACKET: usize, const OUTBOX: usize> {
    client: Client<'c, MAX_PACKET, OUTBOX>,
    sampler: Sampler,
    config: &'a NodeConfig<'a>,
    status: &'c str,
}

impl<const MAX_PACKET: usize, const OUTBOX: usize> MqttNode<'_, '_, MAX_PACKET, OUTBOX> {
    /// One connection, until it fails.
    async fn serve<S: Sensor>(&mut self, socket: &mut TcpSocket<'_>, sensor: &mut S) -> Error {
        let device_id = self.config.device_id;
        let mut conn = Connection::new(&mut self.client, socket);
        loop {
            if self.sampler.is_due(Instant::now()) {
                let sample = self.sampler.take(sensor, Instant::now()).await;
                publish_sample(conn.client(), device_id, self.config.qos, &sample);
            }
            match conn.poll(self.sampler.next_at()).await {
                Ok(Some(Event::Connected { .. })) => {
                    logging::info!("connected to broker");
                    let online =
                        conn.client()
                            .publish(self.status, b"online", QoS::AtLeastOnce, true);
                    log_publish(online);
                }
                Ok(Some(Event::Message(m))) => {
                    if let Some(name) = topics::command_name(device_id, m.topic) {
                        sensor.command(name, m.payload);
                    }
                }
                Ok(_) => {}
                Err(e) => return e,
            }
        }
    }

    /// Runs `future` to completion, taking the samples that fall due meanwhile: while
    /// there is no connection, QoS 1 readings wait in the outbox (as far as it holds
    /// them) and go out after the reconnect. `future` is paused, not cancelled, while a
    /// sample is taken.
    async fn sample_while<F: Future, S: Sensor>(&mut self, future: F, sensor: &mut S) -> F::Output {
        let mut future = pin!(future);
        loop {
            match select(future.as_mut(), Timer::at(self.sampler.next_at())).await {
                Either::First(output) => return output,
                Either::Second(()) => {
                    let sample = self.sampler.take(sensor, Instant::now()).await;
                    publish_sample(
                        &mut self.client,
                        self.config.device_id,
                        self.config.qos,
                        &sample,
                    );
                }
            }
        }
    }
}

fn publish_sample<const MAX_PACKET: usize, const OUTBOX: usize>(
    client: &mut Client<'_, MAX_PACKET, OUTBOX>,
    device_id: &str,
    qos: QoS,
    sample: &Numbered,
) {
    for record in sample.records() {
        // Readings never take the last slot: it is kept for the `online` status, which
        // must go out at the next connect however many readings wait.
        if client.outbox_len() + 1 >= OUTBOX {
            logging::warn!("outbox full: reading {} dropped", record.seq);
            continue;
        }
        let Ok(payload) = record.to_json() else {
            logging::warn!("reading not published: {:?}", record.reading);
            continue;
        };
        let topic = topics::reading_topic(device_id, record.reading.quantity);
        log_publish(client.publish(&topic, &payload, qos, false));
    }
}

fn log_publish(result: Result<Option<u16>, PublishError>) {
    if let Err(_e) = result {
        logging::warn!("message dropped: {:?}", _e);
    }
}
