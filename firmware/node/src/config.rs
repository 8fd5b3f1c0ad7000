//! What a board tells the node.

use core::fmt;
use embassy_time::Duration;
use midge_client::{Backoff, ProtocolVersion, QoS};

use crate::topics::{DeviceIdError, validate_device_id};

/// Settings shared by the MQTT and CoAP tasks. Build it with [`NodeConfig::new`] and set
/// the fields you need (new fields get defaults there, so board code keeps compiling).
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct NodeConfig<'a> {
    /// One topic level, also the MQTT client id: `sensors/{device_id}/…`.
    pub device_id: &'a str,
    /// The broker (MQTT) or gateway (CoAP): IPv4 literal or DNS name.
    pub host: &'a str,
    pub mqtt_port: u16,
    pub coap_port: u16,
    /// Time between samples.
    pub period: Duration,
    /// QoS of the readings (MQTT; CoAP always uses confirmable requests).
    pub qos: QoS,
    pub mqtt_version: ProtocolVersion,
    pub username: Option<&'a str>,
    pub password: Option<&'a [u8]>,
    pub keep_alive_secs: u16,
    /// Broker response deadline; also bounds the TCP handshake.
    pub response_timeout: Duration,
    /// Reconnect back-off. Put a per-device random value (hardware RNG) in `seed`.
    pub backoff: Backoff,
}

impl<'a> NodeConfig<'a> {
    /// Port 1883 (MQTT) and 5683 (CoAP), a sample every 10 s, QoS 1, MQTT 3.1.1, keep
    /// alive 60 s, 10 s response timeout, back-off 1 s doubling to 60 s.
    pub const fn new(device_id: &'a str, host: &'a str) -> Self {
        Self {
            device_id,
            host,
            mqtt_port: 1883,
            coap_port: 5683,
            period: Duration::from_secs(10),
            qos: QoS::AtLeastOnce,
            mqtt_version: ProtocolVersion::V3_1_1,
            username: None,
            password: None,
            keep_alive_secs: 60,
            response_timeout: Duration::from_secs(10),
            backoff: Backoff::DEFAULT,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_device_id(self.device_id).map_err(ConfigError::DeviceId)?;
        if self.host.is_empty() {
            return Err(ConfigError::NoHost);
        }
        if self.period.as_ticks() == 0 {
            return Err(ConfigError::ZeroPeriod);
        }
        Ok(())
    }
}

/// A [`NodeConfig`] the node cannot run with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConfigError {
    DeviceId(DeviceIdError),
    NoHost,
    ZeroPeriod,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DeviceId(e) => write!(f, "invalid device id: {e:?}"),
            Self::NoHost => f.write_str("no broker/gateway host"),
            Self::ZeroPeriod => f.write_str("sample period is zero"),
        }
    }
}

impl core::error::Error for ConfigError {}
