use crate::read::Reader;
use crate::write::Sink;
use crate::{DecodeError, PacketType, Properties, ProtocolVersion, ReasonCode};

/// DISCONNECT: from the client in all versions, from the server too in MQTT 5.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Disconnect<'a> {
    /// `Success` is "normal disconnection"; 3.1/3.1.1 carry no reason.
    pub reason: ReasonCode,
    pub properties: Properties<'a>,
}

impl<'a> Disconnect<'a> {
    /// A normal disconnection without properties.
    pub const NORMAL: Self = Self::new(ReasonCode::Success);

    pub const fn new(reason: ReasonCode) -> Self {
        Self {
            reason,
            properties: Properties::EMPTY,
        }
    }

    pub(crate) fn read(r: &mut Reader<'a>, version: ProtocolVersion) -> Result<Self, DecodeError> {
        if !version.is_v5() {
            return Ok(Self::NORMAL);
        }
        let (reason, properties) = super::read_reason_and_properties(r, PacketType::Disconnect)?;
        Ok(Self { reason, properties })
    }

    pub(crate) fn write<W: Sink>(&self, w: &mut W, version: ProtocolVersion) {
        if version.is_v5() {
            super::write_reason_and_properties(w, self.reason, &self.properties);
        }
    }
}
