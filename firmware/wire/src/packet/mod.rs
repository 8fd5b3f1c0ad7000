//! Control packets: the [`Packet`] enum, stream decoding and encoding.
//!
//! Each packet type has its own module with its struct, its reader and its body writer.

mod ack;
mod auth;
mod connack;
mod connect;
mod disconnect;
mod publish;
mod suback;
mod subscribe;
mod unsubscribe;

pub use ack::Ack;
pub use auth::Auth;
pub use connack::Connack;
pub use connect::{Connect, Will};
pub use disconnect::Disconnect;
pub use publish::Publish;
pub use suback::{Suback, Unsuback};
pub use subscribe::{RetainHandling, Subscribe, Subscription, SubscriptionOptions};
pub use unsubscribe::Unsubscribe;

use crate::list::{List, ListItem};
use crate::read::Reader;
use crate::varint::{MAX_VARINT, varint_len};
use crate::write::{Counter, Sink, SliceWriter};
use crate::{
    DecodeError, EncodeError, FixedHeader, MAX_PACKET_SIZE, PacketType, Properties, ProtocolVersion,
};

/// Any MQTT control packet, borrowing from the buffer it was decoded from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    Connect(Connect<'a>),
    Connack(Connack<'a>),
    Publish(Publish<'a>),
    Puback(Ack<'a>),
    Pubrec(Ack<'a>),
    Pubrel(Ack<'a>),
    Pubcomp(Ack<'a>),
    Subscribe(Subscribe<'a>),
    Suback(Suback<'a>),
    Unsubscribe(Unsubscribe<'a>),
    Unsuback(Unsuback<'a>),
    Pingreq,
    Pingresp,
    Disconnect(Disconnect<'a>),
    Auth(Auth<'a>),
}

/// How to decode packets of one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeOptions {
    /// The connection's protocol version. CONNECT carries its own and ignores this.
    pub version: ProtocolVersion,
    /// Largest whole packet accepted (the MQTT 5 Maximum Packet Size we announce).
    pub max_packet_size: u32,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            version: ProtocolVersion::V5,
            max_packet_size: MAX_PACKET_SIZE as u32,
        }
    }
}

/// The outcome of [`decode`] on the bytes read so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole packet, which took the first `len` bytes.
    Complete { packet: Packet<'a>, len: usize },
    /// The buffer ends inside a packet. `frame_len` is the whole packet's size once the
    /// fixed header is in, so a reader can make room for exactly that.
    Incomplete { frame_len: Option<usize> },
}

/// Decodes the packet at the start of `buf`.
///
/// Never panics, whatever `buf` holds. A packet larger than `opts.max_packet_size` is
/// refused as soon as its fixed header is in, before its body arrives.
pub fn decode<'a>(buf: &'a [u8], opts: &DecodeOptions) -> Result<Decoded<'a>, DecodeError> {
    let Some(header) = FixedHeader::parse(buf, opts.version, opts.max_packet_size)? else {
        return Ok(Decoded::Incomplete { frame_len: None });
    };
    let len = header.frame_len();
    let Some(body) = buf.get(header.header_len..len) else {
        return Ok(Decoded::Incomplete {
            frame_len: Some(len),
        });
    };
    let packet = Packet::decode_body(&header, body, opts.version)?;
    Ok(Decoded::Complete { packet, len })
}

impl<'a> Packet<'a> {
    pub const fn packet_type(&self) -> PacketType {
        match self {
            Self::Connect(_) => PacketType::Connect,
            Self::Connack(_) => PacketType::Connack,
            Self::Publish(_) => PacketType::Publish,
            Self::Puback(_) => PacketType::Puback,
            Self::Pubrec(_) => PacketType::Pubrec,
            Self::Pubrel(_) => PacketType::Pubrel,
            Self::Pubcomp(_) => PacketType::Pubcomp,
            Self::Subscribe(_) => PacketType::Subscribe,
            Self::Suback(_) => PacketType::Suback,
            Self::Unsubscribe(_) => PacketType::Unsubscribe,
            Self::Unsuback(_) => PacketType::Unsuback,
            Self::Pingreq => PacketType::Pingreq,
            Self::Pingresp => PacketType::Pingresp,
            Self::Disconnect(_) => PacketType::Disconnect,
            Self::Auth(_) => PacketType::Auth,
        }
    }

    /// Decodes the body of a packet whose fixed header is `header`.
    pub fn decode_body(
        header: &FixedHeader,
        body: &'a [u8],
        version: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        let r = &mut Reader::new(body);
        let v = version;
        let packet = match header.packet_type {
            PacketType::Connect => Self::Connect(Connect::read(r)?),
            PacketType::Connack => Self::Connack(Connack::read(r, v)?),
            PacketType::Publish => Self::Publish(Publish::read(r, header.flags, v)?),
            PacketType::Puback => Self::Puback(Ack::read(r, PacketType::Puback, v)?),
            PacketType::Pubrec => Self::Pubrec(Ack::read(r, PacketType::Pubrec, v)?),
            PacketType::Pubrel => Self::Pubrel(Ack::read(r, PacketType::Pubrel, v)?),
            PacketType::Pubcomp => Self::Pubcomp(Ack::read(r, PacketType::Pubcomp, v)?),
            PacketType::Subscribe => Self::Subscribe(Subscribe::read(r, v)?),
            PacketType::Suback => Self::Suback(Suback::read(r, v)?),
            PacketType::Unsubscribe => Self::Unsubscribe(Unsubscribe::read(r, v)?),
            PacketType::Unsuback => Self::Unsuback(Unsuback::read(r, v)?),
            PacketType::Pingreq => Self::Pingreq,
            PacketType::Pingresp => Self::Pingresp,
            PacketType::Disconnect => Self::Disconnect(Disconnect::read(r, v)?),
            PacketType::Auth => Self::Auth(Auth::read(r)?),
        };
        r.finish()?;
        Ok(packet)
    }

    /// The size of the encoded packet, header included.
    ///
    /// CONNECT is encoded in its own [`Connect::version`]; every other packet in `version`.
    pub fn encoded_len(&self, version: ProtocolVersion) -> Result<usize, EncodeError> {
        let remaining = self.remaining_len(version)?;
        Ok(1 + varint_len(remaining) + remaining as usize)
    }

    /// Encodes the packet at the start of `buf`, returning the bytes written.
    pub fn encode(&self, version: ProtocolVersion, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let remaining = self.remaining_len(version)?;
        let total = 1 + varint_len(remaining) + remaining as usize;
        let out = buf
            .get_mut(..total)
            .ok_or(EncodeError::BufferTooSmall { needed: total })?;
        let mut w = SliceWriter::new(out);
        self.write(&mut w, version, remaining);
        debug_assert_eq!(w.position(), total, "size pass and write pass disagree");
        Ok(total)
    }

    /// Appends the encoded packet to `buf`, reserving its exact size once.
    #[cfg(feature = "bytes")]
    pub fn encode_to(
        &self,
        version: ProtocolVersion,
        buf: &mut bytes::BytesMut,
    ) -> Result<usize, EncodeError> {
        let remaining = self.remaining_len(version)?;
        let total = 1 + varint_len(remaining) + remaining as usize;
        buf.reserve(total);
        self.write(buf, version, remaining);
        Ok(total)
    }

    fn remaining_len(&self, version: ProtocolVersion) -> Result<u32, EncodeError> {
        if matches!(self, Self::Auth(_)) && !version.is_v5() {
            return Err(EncodeError::NotInThisVersion);
        }
        let mut counter = Counter::default();
        self.write_body(&mut counter, version);
        let len = counter.finish()?;
        u32::try_from(len)
            .ok()
            .filter(|&n| n <= MAX_VARINT)
            .ok_or(EncodeError::PacketTooLarge)
    }

    fn write<W: Sink>(&self, w: &mut W, version: ProtocolVersion, remaining: u32) {
        let flags = match self {
            Self::Publish(p) => p.flags(),
            other => other.packet_type().fixed_flags(),
        };
        w.put_u8(((self.packet_type() as u8) << 4) | flags);
        w.put_varint(remaining);
        self.write_body(w, version);
    }

    fn write_body<W: Sink>(&self, w: &mut W, v: ProtocolVersion) {
        match self {
            Self::Connect(p) => p.write(w),
            Self::Connack(p) => p.write(w, v),
            Self::Publish(p) => p.write(w, v),
            Self::Puback(p) | Self::Pubrec(p) | Self::Pubrel(p) | Self::Pubcomp(p) => p.write(w, v),
            Self::Subscribe(p) => p.write(w, v),
            Self::Suback(p) => p.write(w, v),
            Self::Unsubscribe(p) => p.write(w, v),
            Self::Unsuback(p) => p.write(w, v),
            Self::Pingreq | Self::Pingresp => {}
            Self::Disconnect(p) => p.write(w, v),
            Self::Auth(p) => p.write(w),
        }
    }
}

/// Properties, present only in MQTT 5.
fn read_properties<'a>(
    r: &mut Reader<'a>,
    packet: PacketType,
    version: ProtocolVersion,
) -> Result<Properties<'a>, DecodeError> {
    if version.is_v5() {
        Properties::read(r, packet, false)
    } else {
        Ok(Properties::EMPTY)
    }
}

fn write_properties<W: Sink>(w: &mut W, properties: &Properties<'_>, version: ProtocolVersion) {
    if version.is_v5() {
        properties.write(w);
    }
}

/// The common tail of SUBSCRIBE, SUBACK, UNSUBSCRIBE and (MQTT 5) UNSUBACK: a packet
/// identifier, properties, then a list that must not be empty.
fn read_list_packet<'a, T: ListItem<'a>>(
    r: &mut Reader<'a>,
    packet: PacketType,
    version: ProtocolVersion,
    if_empty: DecodeError,
    read_item: impl FnMut(&mut Reader<'a>) -> Result<T, DecodeError>,
) -> Result<(u16, Properties<'a>, List<'a, T>), DecodeError> {
    let packet_id = r.packet_id()?;
    let properties = read_properties(r, packet, version)?;
    let wire = r.rest();
    if wire.is_empty() {
        return Err(if_empty);
    }
    Ok((packet_id, properties, List::decode(wire, read_item)?))
}

/// Reason code and properties of PUBACK…PUBCOMP, DISCONNECT and AUTH in MQTT 5: both may be
/// left out when the reason is Success and there are no properties, and the properties
/// alone may be left out.
fn read_reason_and_properties<'a>(
    r: &mut Reader<'a>,
    packet: PacketType,
) -> Result<(crate::ReasonCode, Properties<'a>), DecodeError> {
    if r.is_empty() {
        return Ok((crate::ReasonCode::Success, Properties::EMPTY));
    }
    let reason = crate::ReasonCode::decode_v5(r.u8()?, packet)?;
    let properties = if r.is_empty() {
        Properties::EMPTY
    } else {
        Properties::read(r, packet, false)?
    };
    Ok((reason, properties))
}

/// Writes the shortest form [`read_reason_and_properties`] accepts.
fn write_reason_and_properties<W: Sink>(
    w: &mut W,
    reason: crate::ReasonCode,
    properties: &Properties<'_>,
) {
    if reason == crate::ReasonCode::Success && properties.is_empty() {
        return;
    }
    w.put_u8(reason as u8);
    if !properties.is_empty() {
        properties.write(w);
    }
}
