use crate::list::{List, ListItem};
use crate::read::Reader;
use crate::write::Sink;
use crate::{DecodeError, PacketType, Properties, ProtocolVersion, topic};

/// UNSUBSCRIBE: one or more topic filters to remove.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unsubscribe<'a> {
    pub packet_id: u16,
    pub properties: Properties<'a>,
    pub filters: List<'a, &'a str>,
}

impl<'a> ListItem<'a> for &'a str {
    fn next_from(wire: &mut &'a [u8]) -> Option<Self> {
        let mut r = Reader::new(wire);
        let s = r.string().ok()?;
        *wire = r.rest();
        Some(s)
    }
}

impl<'a> Unsubscribe<'a> {
    pub(crate) fn read(r: &mut Reader<'a>, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let (packet_id, properties, filters) = super::read_list_packet(
            r,
            PacketType::Unsubscribe,
            version,
            DecodeError::NoTopicFilters,
            |r| {
                let filter = r.string()?;
                topic::validate_filter(filter).map_err(DecodeError::InvalidTopicFilter)?;
                Ok(filter)
            },
        )?;
        Ok(Self {
            packet_id,
            properties,
            filters,
        })
    }

    pub(crate) fn write<W: Sink>(&self, w: &mut W, version: ProtocolVersion) {
        w.put_packet_id(self.packet_id);
        super::write_properties(w, &self.properties, version);
        for filter in &self.filters {
            w.put_str(filter);
        }
    }
}
