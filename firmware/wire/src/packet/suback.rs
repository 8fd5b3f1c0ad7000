use crate::list::{List, ListItem};
use crate::read::Reader;
use crate::write::Sink;
use crate::{DecodeError, PacketType, Properties, ProtocolVersion, ReasonCode};

/// SUBACK: one reason code (granted QoS or failure) per subscription, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Suback<'a> {
    pub packet_id: u16,
    pub properties: Properties<'a>,
    pub reason_codes: List<'a, ReasonCode>,
}

/// UNSUBACK: in MQTT 5 one reason code per topic filter; in 3.1/3.1.1 none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unsuback<'a> {
    pub packet_id: u16,
    pub properties: Properties<'a>,
    pub reason_codes: List<'a, ReasonCode>,
}

impl<'a> ListItem<'a> for ReasonCode {
    fn next_from(wire: &mut &'a [u8]) -> Option<Self> {
        let (&b, rest) = wire.split_first()?;
        *wire = rest;
        ReasonCode::from_u8(b)
    }
}

impl<'a> Suback<'a> {
    pub(crate) fn read(r: &mut Reader<'a>, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let (packet_id, properties, reason_codes) = super::read_list_packet(
            r,
            PacketType::Suback,
            version,
            DecodeError::NoReasonCodes,
            |r| {
                let code = r.u8()?;
                if version.is_v5() {
                    ReasonCode::decode_v5(code, PacketType::Suback)
                } else {
                    ReasonCode::from_suback_return_code(code)
                }
            },
        )?;
        Ok(Self {
            packet_id,
            properties,
            reason_codes,
        })
    }

    pub(crate) fn write<W: Sink>(&self, w: &mut W, version: ProtocolVersion) {
        w.put_packet_id(self.packet_id);
        super::write_properties(w, &self.properties, version);
        for code in &self.reason_codes {
            w.put_u8(if version.is_v5() {
                code as u8
            } else {
                code.suback_return_code()
            });
        }
    }
}

impl<'a> Unsuback<'a> {
    pub(crate) fn read(r: &mut Reader<'a>, version: ProtocolVersion) -> Result<Self, DecodeError> {
        if !version.is_v5() {
            let packet_id = r.packet_id()?;
            return Ok(Self {
                packet_id,
                properties: Properties::EMPTY,
                reason_codes: List::EMPTY,
            });
        }
        let (packet_id, properties, reason_codes) = super::read_list_packet(
            r,
            PacketType::Unsuback,
            version,
            DecodeError::NoReasonCodes,
            |r| ReasonCode::decode_v5(r.u8()?, PacketType::Unsuback),
        )?;
        Ok(Self {
            packet_id,
            properties,
            reason_codes,
        })
    }

    pub(crate) fn write<W: Sink>(&self, w: &mut W, version: ProtocolVersion) {
        w.put_packet_id(self.packet_id);
        if version.is_v5() {
            self.properties.write(w);
            for code in &self.reason_codes {
                w.put_u8(code as u8);
            }
        }
    }
}
