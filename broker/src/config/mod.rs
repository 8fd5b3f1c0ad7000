//! The broker's settings, with Mosquitto's defaults where Mosquitto has one.
//!
//! Two file formats fill the same [`Config`]: midge's own TOML (`toml.rs`) and
//! Mosquitto's `mosquitto.conf` (`mosquitto.rs`), so an existing Mosquitto setup starts
//! unchanged with `midge -c /etc/mosquitto/mosquitto.conf`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
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
    /// Largest PUBLISH payload accepted; 0 = no limit (`message_size_limit`).
    pub message_size_limit: u32,
    /// Whether retained messages are stored (`retain_available`).
    pub retain_available: bool,
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
            message_size_limit: 0,
            retain_available: true,
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
    /// Connections accepted at once on this listener; `None` = no limit.
    pub max_connections: Option<usize>,
}

impl Listener {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            allow_anonymous: None,
            max_connections: None,
        }
    }
}

/// Where log lines go (`log_dest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogDest {
    Stderr,
    Stdout,
    File(PathBuf),
}

/// Logging: a tracing filter (`info`, `debug`, `midge=debug,warn`…) and destinations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub filter: String,
    /// Empty: no logging at all (`log_dest none`).
    pub dest: Vec<LogDest>,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: "info".into(),
            dest: vec![LogDest::Stderr],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Empty in a file means "no listener configured": the loopback default applies.
    pub listeners: Vec<Listener>,
    pub limits: Limits,
    /// How often `$SYS/broker/...` is published; zero turns it off (`sys_interval`).
    pub sys_interval: Duration,
    pub log: LogConfig,
    /// Where persistent state lives (`--data-dir`, `persistence_location`).
    pub data_dir: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listeners: Vec::new(),
            limits: Limits::default(),
            sys_interval: Duration::from_secs(10),
            log: LogConfig::default(),
            data_dir: None,
        }
    }
}

impl Config {
    /// Loopback listeners on `port` (IPv4 and IPv6): what runs with no configuration.
    pub fn loopback_listeners(port: u16) -> Vec<Listener> {
        let loopback: [IpAddr; 2] = [Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()];
        loopback
            .into_iter()
            .map(|ip| Listener::new(SocketAddr::new(ip, port)))
            .collect()
    }

    /// Listeners on every interface for `port` (Mosquitto's `-p`).
    pub fn all_interfaces(port: u16) -> Vec<Listener> {
        let any: [IpAddr; 2] = [Ipv4Addr::UNSPECIFIED.into(), Ipv6Addr::UNSPECIFIED.into()];
        any.into_iter()
            .map(|ip| Listener::new(SocketAddr::new(ip, port)))
            .collect()
    }
}
