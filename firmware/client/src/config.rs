//! What a client needs to know before it connects.

use embassy_time::Duration;
use midge_wire::{ProtocolVersion, QoS, Subscription};

/// Connection settings of a [`crate::Client`]. Borrowed strings live as long as the client.
///
/// Build it with [`Config::new`] and set the fields you need: new fields get defaults
/// there, so code written this way keeps compiling when the struct grows.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Config<'a> {
    /// MQTT 3.1.1 or 5.0 (3.1 works too, for old brokers).
    pub version: ProtocolVersion,
    pub client_id: &'a str,
    pub username: Option<&'a str>,
    pub password: Option<&'a [u8]>,
    /// Keep alive announced in CONNECT; the client sends PINGREQ when it has been quiet
    /// for three quarters of it. Zero turns keep alive (and PINGREQ) off.
    pub keep_alive_secs: u16,
    /// Published by the broker when this client vanishes without DISCONNECT.
    pub will: Option<LastWill<'a>>,
    /// `false` keeps the broker-side session (subscriptions, queued QoS 1/2 messages)
    /// across reconnects.
    pub clean_start: bool,
    /// Subscribed after every CONNACK that reports no session present.
    pub subscriptions: &'a [Subscription<'a>],
    /// How long CONNACK, SUBACK, PUBACK/PUBREC/PUBCOMP and PINGRESP may take before the
    /// connection is considered dead.
    pub response_timeout: Duration,
    /// Delay between connection attempts.
    pub backoff: Backoff,
}

impl<'a> Config<'a> {
    /// MQTT 3.1.1, keep alive 60 s, no credentials, no will, persistent session, no
    /// subscriptions, 10 s response timeout, back-off 1 s doubling up to 60 s.
    pub const fn new(client_id: &'a str) -> Self {
        Self {
            version: ProtocolVersion::V3_1_1,
            client_id,
            username: None,
            password: None,
            keep_alive_secs: 60,
            will: None,
            clean_start: false,
            subscriptions: &[],
            response_timeout: Duration::from_secs(10),
            backoff: Backoff::DEFAULT,
        }
    }
}

/// The Last Will: a message the broker publishes for us when we drop off the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LastWill<'a> {
    pub topic: &'a str,
    pub payload: &'a [u8],
    pub qos: QoS,
    pub retain: bool,
}

/// Exponential reconnect back-off with jitter: attempt `n` waits a random time between
/// half and all of `min(initial * 2^n, max)`, so a fleet of devices that lost the same
/// broker does not come back in lock step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    /// Seed of the jitter generator; give each device a different one (hardware RNG,
    /// chip id). Zero is replaced by a fixed non-zero constant.
    pub seed: u32,
}

impl Backoff {
    pub const DEFAULT: Self = Self {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(60),
        seed: 0,
    };
}

/// Where the broker is: `host` is an IPv4 address (`"192.168.1.10"`) or a DNS name
/// (`"broker.local"`); see `net::connect` (feature `embassy-net`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Broker<'a> {
    pub host: &'a str,
    pub port: u16,
}
