//! The sensor node of midge's device firmware: `no_std`, no allocator.
//!
//! A board implements [`Sensor`] and calls one task, [`mqtt::run`] (readings over MQTT
//! with [`midge_client`]) or [`coap::run`] (CoAP POST to midge's gateway), with a
//! [`NodeConfig`]. The sensor layer in between is shared: typed [`Reading`]s, their JSON
//! schema ([`Record`]), the topic layout ([`topics`]) and the sampling schedule with
//! sequence numbers ([`Sampler`]).
#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

pub mod coap;
mod config;
#[cfg(feature = "embassy-net")]
mod logging;
mod reading;
mod sampler;
mod sensor;
pub mod topics;

#[cfg(feature = "embassy-net")]
pub mod mqtt;

pub use config::{ConfigError, NodeConfig};
pub use midge_client;
pub use reading::{EncodeError, MAX_READINGS, PAYLOAD_CAPACITY, Quantity, Reading, Record, Sample};
pub use sampler::{Numbered, Sampler};
pub use sensor::Sensor;
