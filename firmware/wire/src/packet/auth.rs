use crate::read::Reader;
use crate::write::Sink;
use crate::{DecodeError, PacketType, Properties, ReasonCode};

/// AUTH (MQTT 5 only): a step of enhanced authentication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Auth<'a> {
    pub reason: ReasonCode,
    pub properties: Properties<'a>,
}

impl<'a> Auth<'a> {
    pub(crate) fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let (reason, properties) = super::read_reason_and_properties(r, PacketType::Auth)?;
        Ok(Self { reason, properties })
    }

    pub(crate) fn write<W: Sink>(&self, w: &mut W) {
        super::write_reason_and_properties(w, self.reason, &self.properties);
    }
}
