use crate::read::Reader;
use crate::write::Sink;
use crate::{DecodeError, PacketType, Properties, ProtocolVersion, QoS, QosPid, TopicError, topic};

/// PUBLISH: an application message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Publish<'a> {
    pub dup: bool,
    pub qos_pid: QosPid,
    pub retain: bool,
    /// Empty only in MQTT 5 when the properties carry a Topic Alias.
    pub topic: &'a str,
    pub properties: Properties<'a>,
    pub payload: &'a [u8],
}

impl<'a> Publish<'a> {
    pub(crate) fn read(
        r: &mut Reader<'a>,
        flags: u8,
        version: ProtocolVersion,
    ) -> Result<Self, DecodeError> {
        let dup = flags & 0x08 != 0;
        let retain = flags & 0x01 != 0;
        let qos = QoS::from_bits((flags >> 1) & 0x03).ok_or(DecodeError::InvalidQoS)?;
        if dup && qos == QoS::AtMostOnce {
            // [MQTT-3.3.1-2]: DUP must be 0 for QoS 0.
            return Err(DecodeError::InvalidHeaderFlags {
                packet: PacketType::Publish,
                flags,
            });
        }
        let topic = r.string()?;
        let qos_pid = match qos {
            QoS::AtMostOnce => QosPid::AtMostOnce,
            qos => QosPid::new(qos, r.packet_id()?),
        };
        let properties = super::read_properties(r, PacketType::Publish, version)?;
        if !topic.is_empty() {
            topic::validate_name(topic).map_err(DecodeError::InvalidTopicName)?;
        } else if properties.topic_alias().is_none() {
            return Err(DecodeError::InvalidTopicName(TopicError::Empty));
        }
        Ok(Self {
            dup,
            qos_pid,
            retain,
            topic,
            properties,
            payload: r.rest(),
        })
    }

    /// DUP, QoS and RETAIN as the low bits of the first header byte.
    pub(crate) fn flags(&self) -> u8 {
        (u8::from(self.dup) << 3) | ((self.qos_pid.qos() as u8) << 1) | u8::from(self.retain)
    }

    pub(crate) fn write<W: Sink>(&self, w: &mut W, version: ProtocolVersion) {
        w.put_str(self.topic);
        if let Some(id) = self.qos_pid.packet_id() {
            w.put_packet_id(id);
        }
        super::write_properties(w, &self.properties, version);
        w.put(self.payload);
    }
}
