//! The fixed header: packet type, flags and remaining length.

use crate::varint::decode_varint;
use crate::{DecodeError, ProtocolVersion};

/// The fourteen control packet types (fifteen with MQTT 5's AUTH).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PacketType {
    Connect = 1,
    Connack = 2,
    Publish = 3,
    Puback = 4,
    Pubrec = 5,
    Pubrel = 6,
    Pubcomp = 7,
    Subscribe = 8,
    Suback = 9,
    Unsubscribe = 10,
    Unsuback = 11,
    Pingreq = 12,
    Pingresp = 13,
    Disconnect = 14,
    Auth = 15,
}

impl PacketType {
    fn from_nibble(n: u8) -> Option<Self> {
        use PacketType::*;
        Some(match n {
            1 => Connect,
            2 => Connack,
            3 => Publish,
            4 => Puback,
            5 => Pubrec,
            6 => Pubrel,
            7 => Pubcomp,
            8 => Subscribe,
            9 => Suback,
            10 => Unsubscribe,
            11 => Unsuback,
            12 => Pingreq,
            13 => Pingresp,
            14 => Disconnect,
            15 => Auth,
            _ => return None,
        })
    }

    /// The flag bits every packet type but PUBLISH must carry [MQTT-2.2.2-1].
    pub(crate) const fn fixed_flags(self) -> u8 {
        match self {
            Self::Pubrel | Self::Subscribe | Self::Unsubscribe => 0b0010,
            _ => 0,
        }
    }
}

/// MQTT 3.1 set DUP on resent PUBREL, SUBSCRIBE and UNSUBSCRIBE too (their QoS bits are
/// 1); 3.1.1 fixed those flags, so only 3.1 connections may send them.
const DUP_3_1: u8 = 0b1000;

/// A parsed fixed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedHeader {
    pub packet_type: PacketType,
    /// The low four bits of the first byte (DUP, QoS and RETAIN for PUBLISH).
    pub flags: u8,
    /// Bytes after the fixed header.
    pub remaining_len: usize,
    /// Bytes of the fixed header itself (2 to 5).
    pub header_len: usize,
}

impl FixedHeader {
    /// Bytes of the whole packet.
    pub const fn frame_len(&self) -> usize {
        self.header_len + self.remaining_len
    }

    /// Parses the fixed header at the start of `buf`; `Ok(None)` if `buf` ends inside it.
    ///
    /// The type, flags and size are checked here, before the body arrives, so a reader
    /// never buffers a packet it is going to refuse.
    pub fn parse(
        buf: &[u8],
        version: ProtocolVersion,
        max_packet_size: u32,
    ) -> Result<Option<Self>, DecodeError> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        let packet_type = match PacketType::from_nibble(first >> 4) {
            Some(PacketType::Auth) if !version.is_v5() => None,
            t => t,
        }
        .ok_or(DecodeError::InvalidPacketType(first >> 4))?;
        let flags = first & 0x0f;
        if packet_type != PacketType::Publish
            && flags != packet_type.fixed_flags()
            && !(version == ProtocolVersion::V3_1
                && packet_type.fixed_flags() != 0
                && flags == packet_type.fixed_flags() | DUP_3_1)
        {
            return Err(DecodeError::InvalidHeaderFlags {
                packet: packet_type,
                flags,
            });
        }
        let (remaining, len_bytes) = match decode_varint(&buf[1..]) {
            Ok(Some(v)) => v,
            Ok(None) => return Ok(None),
            Err(_) => return Err(DecodeError::MalformedRemainingLength),
        };
        let header = Self {
            packet_type,
            flags,
            remaining_len: remaining as usize,
            header_len: 1 + len_bytes,
        };
        if header.frame_len() > max_packet_size as usize {
            return Err(DecodeError::PacketTooLarge {
                size: header.frame_len(),
                max: max_packet_size,
            });
        }
        Ok(Some(header))
    }
}
