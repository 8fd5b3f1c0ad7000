//! A `no_std`, allocation-free MQTT 3.1.1 / 5.0 client for midge's device firmware.
//!
//! * [`Client`] is a sans-IO state machine over the [`midge_wire`] codec: CONNECT with
//!   credentials and a Last Will, QoS 0/1/2 publish with an outbox that survives
//!   reconnects, SUBSCRIBE to configured filters, keep alive with PINGREQ, dead-connection
//!   detection through response deadlines, and reconnect back-off with jitter.
//! * [`Connection`] drives a client over any `embedded_io_async::Read + Write` (an
//!   `embassy_net::tcp::TcpSocket`, a TLS stream, a test double), using `embassy-time`.
//! * With the `embassy-net` feature, [`net::connect`] resolves the broker (IP literal or
//!   DNS name) and opens the TCP socket.
//!
//! Buffer sizes are const generics: `MAX_PACKET` bytes per packet and per outbox slot,
//! `OUTBOX` messages waiting for acknowledgement.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

mod backoff;
mod client;
mod config;
mod driver;
mod error;
mod event;
#[cfg(feature = "embassy-net")]
pub mod net;
mod outbox;
mod rng;

pub use client::Client;
pub use config::{Backoff, Broker, Config, LastWill};
pub use driver::Connection;
pub use error::{Error, PublishError, Waiting};
pub use event::{Event, Message};
pub use midge_wire::{ProtocolVersion, QoS, ReasonCode, Subscription, SubscriptionOptions};
pub use rng::Rng;
