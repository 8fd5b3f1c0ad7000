use crate::read::Reader;
use crate::write::Sink;
use crate::{DecodeError, PacketType, Properties, ProtocolVersion, ReasonCode};

/// CONNACK: the server's answer to CONNECT.
///
/// In 3.1/3.1.1 the return code is carried as the matching [`ReasonCode`]; 3.1 has no
/// session present flag, so it is not encoded for 3.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connack<'a> {
    pub session_present: bool,
    pub reason: ReasonCode,
    pub properties: Properties<'a>,
}

impl<'a> Connack<'a> {
    pub(crate) fn read(r: &mut Reader<'a>, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let flags = r.u8()?;
        if flags & 0xfe != 0 {
            return Err(DecodeError::InvalidConnackFlags);
        }
        let code = r.u8()?;
        let reason = if version.is_v5() {
            ReasonCode::decode_v5(code, PacketType::Connack)?
        } else {
            ReasonCode::from_connack_return_code(code)?
        };
        let properties = super::read_properties(r, PacketType::Connack, version)?;
        Ok(Self {
            // In 3.1 the whole byte is reserved: a stray bit 0 means nothing.
            session_present: flags & 0x01 != 0 && version != ProtocolVersion::V3_1,
            reason,
            properties,
        })
    }

    pub(crate) fn write<W: Sink>(&self, w: &mut W, version: ProtocolVersion) {
        // 3.1 has no session present flag: the byte is reserved there.
        w.put_u8(u8::from(
            self.session_present && version != ProtocolVersion::V3_1,
        ));
        if version.is_v5() {
            w.put_u8(self.reason as u8);
            self.properties.write(w);
        } else {
            w.put_u8(self.reason.connack_return_code());
        }
    }
}
