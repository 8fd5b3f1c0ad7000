use crate::read::Reader;
use crate::write::Sink;
use crate::{DecodeError, PacketType, Properties, ProtocolVersion, QoS, topic};

/// CONNECT: the first packet of every connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connect<'a> {
    /// The protocol the client speaks; CONNECT is always encoded in its own version.
    pub version: ProtocolVersion,
    /// Clean Start (MQTT 5) / Clean Session (3.1, 3.1.1).
    pub clean_start: bool,
    /// Seconds; 0 turns keep-alive off.
    pub keep_alive: u16,
    pub properties: Properties<'a>,
    /// May be empty: the server then assigns one (3.1.1 only with clean session).
    pub client_id: &'a str,
    pub will: Option<Will<'a>>,
    pub username: Option<&'a str>,
    pub password: Option<&'a [u8]>,
}

/// The Last Will of a CONNECT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Will<'a> {
    pub qos: QoS,
    pub retain: bool,
    pub properties: Properties<'a>,
    pub topic: &'a str,
    pub payload: &'a [u8],
}

const CLEAN_START: u8 = 0x02;
const WILL: u8 = 0x04;
const WILL_RETAIN: u8 = 0x20;
const PASSWORD: u8 = 0x40;
const USERNAME: u8 = 0x80;

impl<'a> Connect<'a> {
    pub(crate) fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let name = r.string()?;
        let level = r.u8()?;
        let version = match (name, level) {
            ("MQIsdp", 3) => ProtocolVersion::V3_1,
            ("MQTT", 4) => ProtocolVersion::V3_1_1,
            ("MQTT", 5) => ProtocolVersion::V5,
            ("MQTT" | "MQIsdp", _) => return Err(DecodeError::UnsupportedProtocolVersion(level)),
            _ => return Err(DecodeError::InvalidProtocolName),
        };
        let flags = r.u8()?;
        if flags & 0x01 != 0 {
            return Err(DecodeError::InvalidConnectFlags);
        }
        let will_qos = QoS::from_bits((flags >> 3) & 0x03).ok_or(DecodeError::InvalidQoS)?;
        let will_retain = flags & WILL_RETAIN != 0;
        if flags & WILL == 0 && (will_qos != QoS::AtMostOnce || will_retain) {
            return Err(DecodeError::InvalidWillFlags);
        }
        if !version.is_v5() && flags & PASSWORD != 0 && flags & USERNAME == 0 {
            return Err(DecodeError::PasswordWithoutUsername);
        }
        let keep_alive = r.u16()?;
        let properties = super::read_properties(r, PacketType::Connect, version)?;
        if properties.authentication_data().is_some()
            && properties.authentication_method().is_none()
        {
            return Err(DecodeError::AuthenticationDataWithoutMethod);
        }
        let client_id = r.string()?;
        let will = if flags & WILL != 0 {
            let properties = if version.is_v5() {
                Properties::read(r, PacketType::Connect, true)?
            } else {
                Properties::EMPTY
            };
            let topic = r.string()?;
            topic::validate_name(topic).map_err(DecodeError::InvalidTopicName)?;
            let payload = r.binary()?;
            Some(Will {
                qos: will_qos,
                retain: will_retain,
                properties,
                topic,
                payload,
            })
        } else {
            None
        };
        let username = if flags & USERNAME != 0 {
            Some(r.string()?)
        } else {
            None
        };
        let password = if flags & PASSWORD != 0 {
            Some(r.binary()?)
        } else {
            None
        };
        Ok(Self {
            version,
            clean_start: flags & CLEAN_START != 0,
            keep_alive,
            properties,
            client_id,
            will,
            username,
            password,
        })
    }

    fn flags(&self) -> u8 {
        let mut flags = 0;
        if self.clean_start {
            flags |= CLEAN_START;
        }
        if let Some(will) = &self.will {
            flags |= WILL | ((will.qos as u8) << 3);
            if will.retain {
                flags |= WILL_RETAIN;
            }
        }
        if self.username.is_some() {
            flags |= USERNAME;
        }
        if self.password.is_some() {
            flags |= PASSWORD;
        }
        flags
    }

    pub(crate) fn write<W: Sink>(&self, w: &mut W) {
        let v = self.version;
        w.put_str(v.protocol_name());
        w.put_u8(v.level());
        w.put_u8(self.flags());
        w.put_u16(self.keep_alive);
        super::write_properties(w, &self.properties, v);
        w.put_str(self.client_id);
        if let Some(will) = &self.will {
            super::write_properties(w, &will.properties, v);
            w.put_str(will.topic);
            w.put_binary(will.payload);
        }
        if let Some(username) = self.username {
            w.put_str(username);
        }
        if let Some(password) = self.password {
            w.put_binary(password);
        }
    }
}
