use crate::list::{List, ListItem};
use crate::read::Reader;
use crate::topic::{self, SharedFilter};
use crate::write::Sink;
use crate::{DecodeError, PacketType, Properties, ProtocolVersion, QoS};

/// SUBSCRIBE: one or more topic filters with their options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subscribe<'a> {
    pub packet_id: u16,
    /// MQTT 5: at most one Subscription Identifier, and User Properties.
    pub properties: Properties<'a>,
    pub subscriptions: List<'a, Subscription<'a>>,
}

/// One topic filter of a SUBSCRIBE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subscription<'a> {
    pub filter: &'a str,
    pub options: SubscriptionOptions,
}

/// The Subscription Options byte. In 3.1/3.1.1 only `qos` exists; the rest stay at their
/// defaults and are not encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SubscriptionOptions {
    /// Maximum QoS of messages sent on this subscription.
    pub qos: QoS,
    /// Do not send this client its own publications.
    pub no_local: bool,
    /// Keep the RETAIN flag of forwarded messages as published.
    pub retain_as_published: bool,
    pub retain_handling: RetainHandling,
}

/// When retained messages are sent for a new subscription.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RetainHandling {
    /// Send retained messages at every subscribe.
    #[default]
    OnSubscribe = 0,
    /// Send them only if the subscription did not exist.
    OnNewSubscription = 1,
    /// Never send retained messages for this subscribe.
    Never = 2,
}

impl SubscriptionOptions {
    /// Options with everything but the QoS at its default.
    pub const fn new(qos: QoS) -> Self {
        Self {
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: RetainHandling::OnSubscribe,
        }
    }

    /// The options from their byte in a SUBSCRIBE of `version`.
    pub fn from_byte(b: u8, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let reserved = if version.is_v5() { 0xc0 } else { 0xfc };
        if b & reserved != 0 {
            return Err(DecodeError::InvalidSubscriptionOptions);
        }
        let qos = QoS::from_bits(b & 0x03).ok_or(DecodeError::InvalidQoS)?;
        let retain_handling = match (b >> 4) & 0x03 {
            0 => RetainHandling::OnSubscribe,
            1 => RetainHandling::OnNewSubscription,
            2 => RetainHandling::Never,
            _ => return Err(DecodeError::InvalidRetainHandling),
        };
        Ok(Self {
            qos,
            no_local: b & 0x04 != 0,
            retain_as_published: b & 0x08 != 0,
            retain_handling,
        })
    }

    /// The options byte as sent in a SUBSCRIBE of `version`.
    pub fn to_byte(self, version: ProtocolVersion) -> u8 {
        let qos = self.qos as u8;
        if !version.is_v5() {
            return qos;
        }
        qos | (u8::from(self.no_local) << 2)
            | (u8::from(self.retain_as_published) << 3)
            | ((self.retain_handling as u8) << 4)
    }
}

impl<'a> Subscription<'a> {
    fn read(r: &mut Reader<'a>, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let filter = r.string()?;
        topic::validate_filter(filter).map_err(DecodeError::InvalidTopicFilter)?;
        let options = SubscriptionOptions::from_byte(r.u8()?, version)?;
        if options.no_local && matches!(SharedFilter::parse(filter), Ok(Some(_))) {
            return Err(DecodeError::NoLocalOnSharedSubscription);
        }
        Ok(Self { filter, options })
    }
}

impl<'a> ListItem<'a> for Subscription<'a> {
    fn next_from(wire: &mut &'a [u8]) -> Option<Self> {
        let mut r = Reader::new(wire);
        let filter = r.string().ok()?;
        let options = SubscriptionOptions::from_byte(r.u8().ok()?, ProtocolVersion::V5).ok()?;
        *wire = r.rest();
        Some(Self { filter, options })
    }
}

impl<'a> Subscribe<'a> {
    pub(crate) fn read(r: &mut Reader<'a>, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let (packet_id, properties, subscriptions) = super::read_list_packet(
            r,
            PacketType::Subscribe,
            version,
            DecodeError::NoTopicFilters,
            |r| Subscription::read(r, version),
        )?;
        Ok(Self {
            packet_id,
            properties,
            subscriptions,
        })
    }

    pub(crate) fn write<W: Sink>(&self, w: &mut W, version: ProtocolVersion) {
        w.put_packet_id(self.packet_id);
        super::write_properties(w, &self.properties, version);
        for s in &self.subscriptions {
            w.put_str(s.filter);
            w.put_u8(s.options.to_byte(version));
        }
    }
}
