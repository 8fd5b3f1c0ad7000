use crate::read::Reader;
use crate::write::Sink;
use crate::{DecodeError, PacketType, Properties, ProtocolVersion, ReasonCode};

/// PUBACK, PUBREC, PUBREL or PUBCOMP: the steps of QoS 1 and 2 delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ack<'a> {
    pub packet_id: u16,
    /// Always `Success` on 3.1/3.1.1, which have no reason codes here.
    pub reason: ReasonCode,
    pub properties: Properties<'a>,
}

impl<'a> Ack<'a> {
    /// A successful acknowledgement without properties.
    pub const fn new(packet_id: u16) -> Self {
        Self {
            packet_id,
            reason: ReasonCode::Success,
            properties: Properties::EMPTY,
        }
    }

    pub(crate) fn read(
        r: &mut Reader<'a>,
        packet: PacketType,
        version: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        let packet_id = r.packet_id()?;
        if !version.is_v5() {
            return Ok(Self::new(packet_id));
        }
        let (reason, properties) = super::read_reason_and_properties(r, packet)?;
        Ok(Self {
            packet_id,
            reason,
            properties,
        })
    }

    pub(crate) fn write<W: Sink>(&self, w: &mut W, version: ProtocolVersion) {
        w.put_packet_id(self.packet_id);
        if version.is_v5() {
            super::write_reason_and_properties(w, self.reason, &self.properties);
        }
    }
}
