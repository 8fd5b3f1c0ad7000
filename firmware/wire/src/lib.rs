//! MQTT 3.1, 3.1.1 and 5.0 wire codec shared by the midge broker and its device firmware.
//!
//! * `no_std`, no allocator, no `unsafe`.
//! * Decoding borrows: topics, payloads, property values and subscription lists are views
//!   into the input buffer. Lists (properties, topic filters, reason codes) are validated once
//!   when the packet is decoded and then iterated lazily, so a decoded packet is a few words
//!   of pointers however long it is.
//! * A partial frame is not an error: [`decode`] answers [`Decoded::Incomplete`], with the
//!   whole frame length as soon as the fixed header is in, so a stream reader can keep only
//!   the partial frame and size its buffer once.
//! * Every well-formedness rule of the specifications is a typed [`DecodeError`];
//!   [`DecodeError::reason_code`] gives the MQTT 5 reason code to disconnect with.
//! * Encoding computes the exact size first ([`Packet::encoded_len`]) and writes into a
//!   caller's `&mut [u8]` ([`Packet::encode`]) or, with the `bytes` feature, a `BytesMut`.
//!
//! The model is MQTT 5: a 3.1/3.1.1 packet decodes to the same types with no properties,
//! and encoding for 3.1/3.1.1 drops properties and maps reason codes onto the older return
//! codes (see [`ReasonCode`]).
//!
//! ```
//! use midge_wire::{decode, Decoded, DecodeOptions, Packet, ProtocolVersion, Publish, QosPid, Properties};
//!
//! let publish = Publish {
//!     dup: false,
//!     qos_pid: QosPid::AtLeastOnce(7),
//!     retain: false,
//!     topic: "sensors/kitchen/t",
//!     properties: Properties::EMPTY,
//!     payload: b"21.5",
//! };
//! let mut buf = [0u8; 64];
//! let n = Packet::Publish(publish).encode(ProtocolVersion::V3_1_1, &mut buf).unwrap();
//!
//! let opts = DecodeOptions { version: ProtocolVersion::V3_1_1, ..DecodeOptions::default() };
//! match decode(&buf[..n], &opts).unwrap() {
//!     Decoded::Complete { packet: Packet::Publish(p), len } => {
//!         assert_eq!(len, n);
//!         assert_eq!(p.topic, "sensors/kitchen/t");
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//! ```
#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

mod error;
mod header;
mod list;
mod packet;
mod property;
mod qos;
mod read;
mod reason;
pub mod topic;
mod varint;
mod version;
mod write;

pub use error::{DecodeError, EncodeError};
pub use header::{FixedHeader, PacketType};
pub use list::{List, ListIter};
pub use packet::{
    Ack, Auth, Connack, Connect, DecodeOptions, Decoded, Disconnect, Packet, Publish,
    RetainHandling, Suback, Subscribe, Subscription, SubscriptionOptions, Unsuback, Unsubscribe,
    Will, decode,
};
pub use property::{Properties, PropertiesIter, Property, PropertyId};
pub use qos::{QoS, QosPid};
pub use reason::ReasonCode;
pub use topic::TopicError;
pub use varint::{MAX_VARINT, varint_len};
pub use version::ProtocolVersion;

/// The largest packet MQTT can carry: a one-byte type, a four-byte remaining length and
/// [`MAX_VARINT`] bytes after them.
pub const MAX_PACKET_SIZE: usize = 1 + 4 + MAX_VARINT as usize;
