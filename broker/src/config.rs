//! The broker's settings, with Mosquitto's defaults where Mosquitto has one.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// Per-client limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// QoS 1/2 deliveries in flight per client (`max_inflight_messages`).
    pub max_inflight_messages: usize,
    /// Deliveries queued per client beyond the in-flight window; 0 = no limit.
    pub max_queued_messages: usize,
    /// Payload bytes queued per client; 0 = no limit.
    pub max_queued_bytes: usize,
    /// Queue QoS 0 messages for offline persistent sessions.
    pub queue_qos0_messages: bool,
    /// Largest keep-alive accepted, in seconds (`max_keepalive`).
    pub max_keepalive: u16,
    /// Largest packet accepted, header included (`max_packet_size`).
    pub max_packet_size: u32,
    /// How long a socket may stay open without sending CONNECT.
    pub connect_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_inflight_messages: 20,
            max_queued_messages: 1000,
            max_queued_bytes: 0,
            queue_qos0_messages: false,
            max_keepalive: 65_535,
            max_packet_size: midge_wire::MAX_PACKET_SIZE as u32,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// One address to accept MQTT connections on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub addr: SocketAddr,
    /// `None`: anonymous clients only from loopback addresses.
    pub allow_anonymous: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub listeners: Vec<Listener>,
    pub limits: Limits,
}

impl Config {
    /// Loopback only, anonymous allowed there: safe to start with no configuration.
    pub fn local_default(port: u16) -> Self {
        let loopback: [IpAddr; 2] = [Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()];
        let listeners = loopback
            .into_iter()
            .map(|ip| Listener {
                addr: SocketAddr::new(ip, port),
                allow_anonymous: None,
            })
            .collect();
        Self {
            listeners,
            limits: Limits::default(),
        }
    }
}
