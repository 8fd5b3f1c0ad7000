//! The records of the persistence log: one per change to what must survive a restart.
//!
//! A record is an operation ("this delivery was acknowledged"), not a page: appending one
//! costs its own size, which is what keeps the bytes written per message low. A snapshot
//! is the same records, written for the live state only.
//!
//! Encoding, little-endian: a tag byte, then the fields in order; strings and byte strings
//! carry a u32 length. Decoding borrows from the buffer read from disk, and payloads are
//! sliced out of it as `Bytes` without copying.

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

/// A persisted application message, referenced by id from retained topics and deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub topic: Bytes,
    pub payload: Bytes,
    /// MQTT 5 properties forwarded to subscribers, in wire form.
    pub properties: Bytes,
    /// QoS as published (0–2).
    pub qos: u8,
    pub retain: bool,
    /// End of the Message Expiry Interval, in milliseconds since the Unix epoch: wall
    /// clock, so it holds across restarts.
    pub expires_at_ms: Option<u64>,
    /// Its deliveries count only once a [`Record::Qos2Received`] naming it follows (a
    /// QoS 2 message from a persistent session: a crash keeps both or neither, so the
    /// publisher's resend is delivered exactly once).
    pub awaits_commit: bool,
}

/// A delivery to a persistent session, in the order it was queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDelivery {
    pub client: Bytes,
    pub message: u64,
    /// The delivery's QoS (1 or 2: QoS 0 deliveries are not persisted).
    pub qos: u8,
    pub retain: bool,
    pub subscription_ids: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A message, held by `pins` until the records referencing it are written (a publish
    /// pins its message while it is routed, so that compaction never drops a message
    /// between the record that stores it and the deliveries that refer to it).
    Message {
        id: u64,
        pins: u32,
        message: StoredMessage,
    },
    Pin(u64),
    Unpin(u64),
    /// `topic`'s retained message is now `message`.
    Retain {
        topic: Bytes,
        message: u64,
    },
    /// `topic` has no retained message any more.
    Unretain {
        topic: Bytes,
    },
    /// A persistent session exists (or resumed) with this expiry interval; it is connected.
    Session {
        client: Bytes,
        expiry_interval: u32,
    },
    /// The session ended: its subscriptions, deliveries and QoS 2 state go with it.
    SessionEnd {
        client: Bytes,
    },
    /// The session's client disconnected at `at_ms` (wall clock).
    Disconnected {
        client: Bytes,
        at_ms: u64,
        expiry_interval: u32,
    },
    Subscribe {
        client: Bytes,
        filter: Bytes,
        /// The MQTT 5 subscription options byte.
        options: u8,
        identifier: Option<u32>,
    },
    Unsubscribe {
        client: Bytes,
        filter: Bytes,
    },
    Deliver {
        id: u64,
        delivery: StoredDelivery,
    },
    /// A QoS 2 delivery was sent with this packet id (a resend after a restart must use
    /// the same id, or the client would take it for a new message).
    Sent {
        id: u64,
        packet_id: u16,
    },
    /// PUBREC arrived for a QoS 2 delivery: what remains is its PUBREL.
    Released {
        id: u64,
        packet_id: u16,
    },
    /// The delivery is finished (acknowledged, expired, or moved to another session).
    Done(u64),
    /// A QoS 2 PUBLISH with this packet id was received and not yet released; its
    /// message's deliveries (if `message` is not 0) now count.
    Qos2Received {
        client: Bytes,
        packet_id: u16,
        message: u64,
    },
    Qos2Released {
        client: Bytes,
        packet_id: u16,
    },
    /// Last record of a snapshot: how many came before it. A snapshot without it is
    /// incomplete.
    End {
        records: u64,
    },
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("record ends early")]
    Truncated,
    #[error("unknown record type {0}")]
    UnknownTag(u8),
    #[error("{0} bytes left over after the record")]
    Trailing(usize),
}

mod tag {
    pub const MESSAGE: u8 = 1;
    pub const PIN: u8 = 2;
    pub const UNPIN: u8 = 3;
    pub const RETAIN: u8 = 4;
    pub const UNRETAIN: u8 = 5;
    pub const SESSION: u8 = 6;
    pub const SESSION_END: u8 = 7;
    pub const DISCONNECTED: u8 = 8;
    pub const SUBSCRIBE: u8 = 9;
    pub const UNSUBSCRIBE: u8 = 10;
    pub const DELIVER: u8 = 11;
    pub const SENT: u8 = 12;
    pub const RELEASED: u8 = 13;
    pub const DONE: u8 = 14;
    pub const QOS2_RECEIVED: u8 = 15;
    pub const QOS2_RELEASED: u8 = 16;
    pub const END: u8 = 17;
}

impl Record {
    /// Appends the record's encoding to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Self::Message { id, pins, message } => {
                out.put_u8(tag::MESSAGE);
                out.put_u64_le(*id);
                out.put_u32_le(*pins);
                out.put_u8(
                    message.qos
                        | (u8::from(message.retain) << 2)
                        | (u8::from(message.awaits_commit) << 3),
                );
                out.put_u64_le(message.expires_at_ms.unwrap_or(0));
                put_bytes(out, &message.topic);
                put_bytes(out, &message.properties);
                put_bytes(out, &message.payload);
            }
            Self::Pin(id) => put_id(out, tag::PIN, *id),
            Self::Unpin(id) => put_id(out, tag::UNPIN, *id),
            Self::Retain { topic, message } => {
                out.put_u8(tag::RETAIN);
                put_bytes(out, topic);
                out.put_u64_le(*message);
            }
            Self::Unretain { topic } => {
                out.put_u8(tag::UNRETAIN);
                put_bytes(out, topic);
            }
            Self::Session {
                client,
                expiry_interval,
            } => {
                out.put_u8(tag::SESSION);
                put_bytes(out, client);
                out.put_u32_le(*expiry_interval);
            }
            Self::SessionEnd { client } => {
                out.put_u8(tag::SESSION_END);
                put_bytes(out, client);
            }
            Self::Disconnected {
                client,
                at_ms,
                expiry_interval,
            } => {
                out.put_u8(tag::DISCONNECTED);
                put_bytes(out, client);
                out.put_u64_le(*at_ms);
                out.put_u32_le(*expiry_interval);
            }
            Self::Subscribe {
                client,
                filter,
                options,
                identifier,
            } => {
                out.put_u8(tag::SUBSCRIBE);
                put_bytes(out, client);
                put_bytes(out, filter);
                out.put_u8(*options);
                out.put_u32_le(identifier.unwrap_or(0));
            }
            Self::Unsubscribe { client, filter } => {
                out.put_u8(tag::UNSUBSCRIBE);
                put_bytes(out, client);
                put_bytes(out, filter);
            }
            Self::Deliver { id, delivery } => {
                out.put_u8(tag::DELIVER);
                out.put_u64_le(*id);
                put_bytes(out, &delivery.client);
                out.put_u64_le(delivery.message);
                out.put_u8(delivery.qos | (u8::from(delivery.retain) << 2));
                out.put_u32_le(delivery.subscription_ids.len() as u32);
                for sid in &delivery.subscription_ids {
                    out.put_u32_le(*sid);
                }
            }
            Self::Sent { id, packet_id } => {
                put_id(out, tag::SENT, *id);
                out.put_u16_le(*packet_id);
            }
            Self::Released { id, packet_id } => {
                put_id(out, tag::RELEASED, *id);
                out.put_u16_le(*packet_id);
            }
            Self::Done(id) => put_id(out, tag::DONE, *id),
            Self::Qos2Received {
                client,
                packet_id,
                message,
            } => {
                out.put_u8(tag::QOS2_RECEIVED);
                put_bytes(out, client);
                out.put_u16_le(*packet_id);
                out.put_u64_le(*message);
            }
            Self::Qos2Released { client, packet_id } => {
                out.put_u8(tag::QOS2_RELEASED);
                put_bytes(out, client);
                out.put_u16_le(*packet_id);
            }
            Self::End { records } => put_id(out, tag::END, *records),
        }
    }

    /// Decodes one whole record from `body` (a slice of a buffer read from disk; byte
    /// strings are slices of it).
    pub fn decode(body: &Bytes) -> Result<Self, RecordError> {
        let mut r = Reader { buf: body, pos: 0 };
        let record = match r.u8()? {
            tag::MESSAGE => {
                let id = r.u64()?;
                let pins = r.u32()?;
                let flags = r.u8()?;
                let expires = r.u64()?;
                Self::Message {
                    id,
                    pins,
                    message: StoredMessage {
                        qos: flags & 3,
                        retain: flags & 4 != 0,
                        awaits_commit: flags & 8 != 0,
                        expires_at_ms: (expires != 0).then_some(expires),
                        topic: r.bytes()?,
                        properties: r.bytes()?,
                        payload: r.bytes()?,
                    },
                }
            }
            tag::PIN => Self::Pin(r.u64()?),
            tag::UNPIN => Self::Unpin(r.u64()?),
            tag::RETAIN => Self::Retain {
                topic: r.bytes()?,
                message: r.u64()?,
            },
            tag::UNRETAIN => Self::Unretain { topic: r.bytes()? },
            tag::SESSION => Self::Session {
                client: r.bytes()?,
                expiry_interval: r.u32()?,
            },
            tag::SESSION_END => Self::SessionEnd { client: r.bytes()? },
            tag::DISCONNECTED => Self::Disconnected {
                client: r.bytes()?,
                at_ms: r.u64()?,
                expiry_interval: r.u32()?,
            },
            tag::SUBSCRIBE => Self::Subscribe {
                client: r.bytes()?,
                filter: r.bytes()?,
                options: r.u8()?,
                identifier: Some(r.u32()?).filter(|&i| i != 0),
            },
            tag::UNSUBSCRIBE => Self::Unsubscribe {
                client: r.bytes()?,
                filter: r.bytes()?,
            },
            tag::DELIVER => {
                let id = r.u64()?;
                let client = r.bytes()?;
                let message = r.u64()?;
                let flags = r.u8()?;
                let count = r.u32()? as usize;
                // Bounded by what is left, so a corrupt count cannot ask for gigabytes.
                let mut subscription_ids = Vec::with_capacity(count.min(r.left() / 4));
                for _ in 0..count {
                    subscription_ids.push(r.u32()?);
                }
                Self::Deliver {
                    id,
                    delivery: StoredDelivery {
                        client,
                        message,
                        qos: flags & 3,
                        retain: flags & 4 != 0,
                        subscription_ids,
                    },
                }
            }
            tag::SENT => Self::Sent {
                id: r.u64()?,
                packet_id: r.u16()?,
            },
            tag::RELEASED => Self::Released {
                id: r.u64()?,
                packet_id: r.u16()?,
            },
            tag::DONE => Self::Done(r.u64()?),
            tag::QOS2_RECEIVED => Self::Qos2Received {
                client: r.bytes()?,
                packet_id: r.u16()?,
                message: r.u64()?,
            },
            tag::QOS2_RELEASED => Self::Qos2Released {
                client: r.bytes()?,
                packet_id: r.u16()?,
            },
            tag::END => Self::End { records: r.u64()? },
            other => return Err(RecordError::UnknownTag(other)),
        };
        match r.left() {
            0 => Ok(record),
            n => Err(RecordError::Trailing(n)),
        }
    }
}

fn put_id(out: &mut BytesMut, tag: u8, id: u64) {
    out.put_u8(tag);
    out.put_u64_le(id);
}

fn put_bytes(out: &mut BytesMut, bytes: &[u8]) {
    out.put_u32_le(bytes.len() as u32);
    out.put_slice(bytes);
}

struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], RecordError> {
        let end = self.pos.checked_add(n).ok_or(RecordError::Truncated)?;
        let slice = self.buf.get(self.pos..end).ok_or(RecordError::Truncated)?;
        self.pos = end;
        Ok(slice)
    }

    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, RecordError> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().unwrap_or_default(),
        ))
    }

    fn u32(&mut self) -> Result<u32, RecordError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().unwrap_or_default(),
        ))
    }

    fn u64(&mut self) -> Result<u64, RecordError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().unwrap_or_default(),
        ))
    }

    fn bytes(&mut self) -> Result<Bytes, RecordError> {
        let len = self.u32()? as usize;
        let start = self.pos;
        self.take(len)?;
        Ok(self.buf.slice(start..start + len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &'static str) -> Bytes {
        Bytes::from_static(s.as_bytes())
    }

    pub(crate) fn examples() -> Vec<Record> {
        vec![
            Record::Message {
                id: 7,
                pins: 1,
                message: StoredMessage {
                    topic: b("a/b"),
                    payload: Bytes::from_static(&[0, 1, 2, 255]),
                    properties: Bytes::from_static(&[3, 0, 4, b't', b'e', b'x', b't']),
                    qos: 2,
                    retain: true,
                    expires_at_ms: Some(1_800_000_000_000),
                    awaits_commit: true,
                },
            },
            Record::Pin(7),
            Record::Unpin(7),
            Record::Retain {
                topic: b("a/b"),
                message: 7,
            },
            Record::Unretain { topic: b("a/b") },
            Record::Session {
                client: b("c1"),
                expiry_interval: u32::MAX,
            },
            Record::SessionEnd { client: b("c1") },
            Record::Disconnected {
                client: b("c1"),
                at_ms: 5,
                expiry_interval: 60,
            },
            Record::Subscribe {
                client: b("c1"),
                filter: b("a/+"),
                options: 0b0010_0101,
                identifier: Some(9),
            },
            Record::Subscribe {
                client: b("c1"),
                filter: b("#"),
                options: 1,
                identifier: None,
            },
            Record::Unsubscribe {
                client: b("c1"),
                filter: b("a/+"),
            },
            Record::Deliver {
                id: 8,
                delivery: StoredDelivery {
                    client: b("c1"),
                    message: 7,
                    qos: 1,
                    retain: false,
                    subscription_ids: vec![9, 10],
                },
            },
            Record::Sent {
                id: 8,
                packet_id: 65535,
            },
            Record::Released {
                id: 8,
                packet_id: 1,
            },
            Record::Done(8),
            Record::Qos2Received {
                client: b("c1"),
                packet_id: 3,
                message: 7,
            },
            Record::Qos2Released {
                client: b("c1"),
                packet_id: 3,
            },
            Record::End { records: 42 },
        ]
    }

    #[test]
    fn every_record_round_trips() {
        for record in examples() {
            let mut out = BytesMut::new();
            record.encode(&mut out);
            assert_eq!(Record::decode(&out.freeze()), Ok(record));
        }
    }

    #[test]
    fn every_strict_prefix_is_refused() {
        for record in examples() {
            let mut out = BytesMut::new();
            record.encode(&mut out);
            let whole = out.freeze();
            for len in 0..whole.len() {
                assert!(Record::decode(&whole.slice(..len)).is_err(), "{record:?}");
            }
        }
    }

    #[test]
    fn unknown_tags_and_trailing_bytes_are_errors() {
        assert_eq!(
            Record::decode(&Bytes::from_static(&[200])),
            Err(RecordError::UnknownTag(200))
        );
        let mut out = BytesMut::new();
        Record::Done(1).encode(&mut out);
        out.put_u8(0);
        assert_eq!(Record::decode(&out.freeze()), Err(RecordError::Trailing(1)));
    }
}
