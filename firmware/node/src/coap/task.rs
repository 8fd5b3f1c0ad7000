//! The CoAP task over an embassy-net UDP socket.

use embassy_futures::select::{Either, select};
use embassy_net::udp::{PacketMetadata, UdpSocket};
use embassy_net::{IpEndpoint, Stack};
use embassy_time::{Instant, Timer};
use midge_client::{Rng, net};

use super::exchange::{Exchange, Params, Received, Step};
use super::message::{self, APPLICATION_JSON, Code, MessageType, Post};
use crate::{ConfigError, NodeConfig, Sampler, Sensor, logging, topics};

/// Largest datagram sent or received: a reading POST is about 100 bytes.
const DATAGRAM: usize = 256;

/// Why a POST did not get a 2.xx.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
enum PostError {
    /// The gateway answered with an error code.
    Refused(Code),
    Reset,
    /// No answer after every retransmission.
    Timeout,
    Send,
    Encode(message::EncodeError),
}

/// Runs the node over CoAP. Returns only if `config` is invalid.
pub async fn run<S: Sensor>(
    stack: Stack<'_>,
    config: &NodeConfig<'_>,
    sensor: &mut S,
) -> ConfigError {
    if let Err(e) = config.validate() {
        return e;
    }
    let mut rx_meta = [PacketMetadata::EMPTY; 4];
    let mut tx_meta = [PacketMetadata::EMPTY; 4];
    let mut rx_buffer = [0u8; DATAGRAM * 2];
    let mut tx_buffer = [0u8; DATAGRAM * 2];
    let mut socket = UdpSocket::new(
        stack,
        &mut rx_meta,
        &mut rx_buffer,
        &mut tx_meta,
        &mut tx_buffer,
    );
    let mut client = CoapClient {
        socket: &mut socket,
        rng: Rng::new(config.backoff.seed),
        next_message_id: 0,
        gateway: None,
    };
    client.next_message_id = client.rng.next_u32() as u16;
    let status = topics::status_topic(config.device_id);
    let mut online = false;
    let mut sampler = Sampler::new(config.period, Instant::now());
    loop {
        stack.wait_config_up().await;
        if client.gateway.is_none() {
            if client.socket.endpoint().port == 0 && client.socket.bind(0).is_err() {
                Timer::after(config.response_timeout).await;
                continue;
            }
            match net::resolve(stack, config.host).await {
                Ok(ip) => client.gateway = Some(IpEndpoint::new(ip, config.coap_port)),
                Err(_e) => {
                    logging::warn!("cannot resolve gateway: {:?}", _e);
                    Timer::after(config.response_timeout).await;
                    continue;
                }
            }
        }
        if !online {
            let result = client
                .post(&status, &["retain=true"], None, b"online")
                .await;
            online = log_result(result);
        }
        Timer::at(sampler.next_at()).await;
        let sample = sampler.take(sensor, Instant::now()).await;
        for record in sample.records() {
            let Ok(payload) = record.to_json() else {
                continue;
            };
            let topic = topics::reading_topic(config.device_id, record.reading.quantity);
            let result = client
                .post(&topic, &[], Some(APPLICATION_JSON), &payload)
                .await;
            if !log_result(result) {
                // Resolve again: the gateway may have moved (DHCP, DNS).
                client.gateway = None;
            }
        }
    }
}

fn log_result(result: Result<Code, PostError>) -> bool {
    match result {
        Ok(_) => true,
        Err(_e) => {
            logging::warn!("CoAP publish failed: {:?}", _e);
            false
        }
    }
}

struct CoapClient<'s, 'b> {
    socket: &'s mut UdpSocket<'b>,
    rng: Rng,
    next_message_id: u16,
    gateway: Option<IpEndpoint>,
}

impl CoapClient<'_, '_> {
    /// One confirmable POST to `/ps/{topic}`, retransmitted until answered or given up.
    async fn post(
        &mut self,
        topic: &str,
        queries: &[&str],
        content_format: Option<u16>,
        payload: &[u8],
    ) -> Result<Code, PostError> {
        let Some(gateway) = self.gateway else {
            return Err(PostError::Send);
        };
        let message_id = self.next_message_id;
        self.next_message_id = self.next_message_id.wrapping_add(1);
        let token = self.rng.next_u32().to_be_bytes();
        let mut request = [0u8; DATAGRAM];
        let len = Post {
            message_id,
            token: &token,
            topic,
            content_format,
            queries,
            payload,
        }
        .encode(&mut request)
        .map_err(PostError::Encode)?;
        let request = &request[..len];
        self.send(request, gateway).await?;
        let mut exchange = Exchange::start(
            Instant::now(),
            Params::RFC7252,
            message_id,
            &token,
            self.rng.next_u32(),
        );
        let mut datagram = [0u8; DATAGRAM];
        loop {
            let received = select(
                self.socket.recv_from(&mut datagram),
                Timer::at(exchange.deadline()),
            )
            .await;
            match received {
                Either::First(Ok((n, meta))) if meta.endpoint == gateway => {
                    // Unreadable datagrams (truncated, other versions) are ignored.
                    let Ok(header) = message::parse(&datagram[..n]) else {
                        continue;
                    };
                    match exchange.on_message(&header) {
                        Received::Response { code, ack } => {
                            if let Some(id) = ack {
                                let empty = message::encode_empty(MessageType::Acknowledgement, id);
                                self.send(&empty, gateway).await?;
                            }
                            return if code.is_success() {
                                Ok(code)
                            } else {
                                Err(PostError::Refused(code))
                            };
                        }
                        Received::Reset => return Err(PostError::Reset),
                        Received::Accepted | Received::Unrelated => {}
                    }
                }
                // From elsewhere, or larger than any answer we expect.
                Either::First(_) => {}
                Either::Second(()) => match exchange.on_timeout(Instant::now()) {
                    Step::Retransmit => self.send(request, gateway).await?,
                    Step::GiveUp => return Err(PostError::Timeout),
                },
            }
        }
    }

    async fn send(&mut self, datagram: &[u8], to: IpEndpoint) -> Result<(), PostError> {
        self.socket
            .send_to(datagram, to)
            .await
            .map_err(|_| PostError::Send)
    }
}
