//! MQTT 5 properties: identifiers, values, which packet may carry which, and typed access.

use crate::list::{List, ListItem};
use crate::read::Reader;
use crate::write::{Counter, Sink};
use crate::{DecodeError, EncodeError, PacketType, QoS, topic};

/// The identifier of an MQTT 5 property.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PropertyId {
    PayloadFormatIndicator = 0x01,
    MessageExpiryInterval = 0x02,
    ContentType = 0x03,
    ResponseTopic = 0x08,
    CorrelationData = 0x09,
    SubscriptionIdentifier = 0x0B,
    SessionExpiryInterval = 0x11,
    AssignedClientIdentifier = 0x12,
    ServerKeepAlive = 0x13,
    AuthenticationMethod = 0x15,
    AuthenticationData = 0x16,
    RequestProblemInformation = 0x17,
    WillDelayInterval = 0x18,
    RequestResponseInformation = 0x19,
    ResponseInformation = 0x1A,
    ServerReference = 0x1C,
    ReasonString = 0x1F,
    ReceiveMaximum = 0x21,
    TopicAliasMaximum = 0x22,
    TopicAlias = 0x23,
    MaximumQoS = 0x24,
    RetainAvailable = 0x25,
    UserProperty = 0x26,
    MaximumPacketSize = 0x27,
    WildcardSubscriptionAvailable = 0x28,
    SubscriptionIdentifierAvailable = 0x29,
    SharedSubscriptionAvailable = 0x2A,
}

impl PropertyId {
    const fn bit(self) -> u64 {
        1 << self as u8
    }

    /// Whether MQTT 5 allows this property in `packet` (`will`: in CONNECT's will properties).
    pub const fn is_allowed_in(self, packet: PacketType, will: bool) -> bool {
        allowed_mask(packet, will) & self.bit() != 0
    }
}

/// One MQTT 5 property with its value. Flags that the specification restricts to 0 or 1
/// are `bool`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Property<'a> {
    /// `true`: the payload is UTF-8 text.
    PayloadFormatIndicator(bool),
    MessageExpiryInterval(u32),
    ContentType(&'a str),
    ResponseTopic(&'a str),
    CorrelationData(&'a [u8]),
    /// 1 to 268,435,455.
    SubscriptionIdentifier(u32),
    SessionExpiryInterval(u32),
    AssignedClientIdentifier(&'a str),
    ServerKeepAlive(u16),
    AuthenticationMethod(&'a str),
    AuthenticationData(&'a [u8]),
    RequestProblemInformation(bool),
    WillDelayInterval(u32),
    RequestResponseInformation(bool),
    ResponseInformation(&'a str),
    ServerReference(&'a str),
    ReasonString(&'a str),
    /// Non-zero.
    ReceiveMaximum(u16),
    TopicAliasMaximum(u16),
    /// Non-zero.
    TopicAlias(u16),
    /// `AtMostOnce` or `AtLeastOnce` only.
    MaximumQoS(QoS),
    RetainAvailable(bool),
    /// A name/value pair; may repeat, and the same name may appear more than once.
    UserProperty(&'a str, &'a str),
    /// Non-zero.
    MaximumPacketSize(u32),
    WildcardSubscriptionAvailable(bool),
    SubscriptionIdentifierAvailable(bool),
    SharedSubscriptionAvailable(bool),
}

impl<'a> Property<'a> {
    pub const fn id(&self) -> PropertyId {
        use Property as P;
        use PropertyId as I;
        match self {
            P::PayloadFormatIndicator(_) => I::PayloadFormatIndicator,
            P::MessageExpiryInterval(_) => I::MessageExpiryInterval,
            P::ContentType(_) => I::ContentType,
            P::ResponseTopic(_) => I::ResponseTopic,
            P::CorrelationData(_) => I::CorrelationData,
            P::SubscriptionIdentifier(_) => I::SubscriptionIdentifier,
            P::SessionExpiryInterval(_) => I::SessionExpiryInterval,
            P::AssignedClientIdentifier(_) => I::AssignedClientIdentifier,
            P::ServerKeepAlive(_) => I::ServerKeepAlive,
            P::AuthenticationMethod(_) => I::AuthenticationMethod,
            P::AuthenticationData(_) => I::AuthenticationData,
            P::RequestProblemInformation(_) => I::RequestProblemInformation,
            P::WillDelayInterval(_) => I::WillDelayInterval,
            P::RequestResponseInformation(_) => I::RequestResponseInformation,
            P::ResponseInformation(_) => I::ResponseInformation,
            P::ServerReference(_) => I::ServerReference,
            P::ReasonString(_) => I::ReasonString,
            P::ReceiveMaximum(_) => I::ReceiveMaximum,
            P::TopicAliasMaximum(_) => I::TopicAliasMaximum,
            P::TopicAlias(_) => I::TopicAlias,
            P::MaximumQoS(_) => I::MaximumQoS,
            P::RetainAvailable(_) => I::RetainAvailable,
            P::UserProperty(..) => I::UserProperty,
            P::MaximumPacketSize(_) => I::MaximumPacketSize,
            P::WildcardSubscriptionAvailable(_) => I::WildcardSubscriptionAvailable,
            P::SubscriptionIdentifierAvailable(_) => I::SubscriptionIdentifierAvailable,
            P::SharedSubscriptionAvailable(_) => I::SharedSubscriptionAvailable,
        }
    }

    /// Reads one property, checking its value range.
    fn read(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        use Property as P;
        use PropertyId as I;
        fn flag(r: &mut Reader<'_>, id: PropertyId) -> Result<bool, DecodeError> {
            match r.u8()? {
                0 => Ok(false),
                1 => Ok(true),
                _ => Err(DecodeError::InvalidPropertyValue(id)),
            }
        }
        fn non_zero<T: PartialEq + Default>(v: T, id: PropertyId) -> Result<T, DecodeError> {
            if v == T::default() {
                Err(DecodeError::InvalidPropertyValue(id))
            } else {
                Ok(v)
            }
        }
        let id = r.varint()?;
        Ok(match id {
            0x01 => P::PayloadFormatIndicator(flag(r, I::PayloadFormatIndicator)?),
            0x02 => P::MessageExpiryInterval(r.u32()?),
            0x03 => P::ContentType(r.string()?),
            0x08 => {
                let name = r.string()?;
                topic::validate_name(name)
                    .map_err(|_| DecodeError::InvalidPropertyValue(I::ResponseTopic))?;
                P::ResponseTopic(name)
            }
            0x09 => P::CorrelationData(r.binary()?),
            0x0B => P::SubscriptionIdentifier(non_zero(r.varint()?, I::SubscriptionIdentifier)?),
            0x11 => P::SessionExpiryInterval(r.u32()?),
            0x12 => P::AssignedClientIdentifier(r.string()?),
            0x13 => P::ServerKeepAlive(r.u16()?),
            0x15 => P::AuthenticationMethod(r.string()?),
            0x16 => P::AuthenticationData(r.binary()?),
            0x17 => P::RequestProblemInformation(flag(r, I::RequestProblemInformation)?),
            0x18 => P::WillDelayInterval(r.u32()?),
            0x19 => P::RequestResponseInformation(flag(r, I::RequestResponseInformation)?),
            0x1A => P::ResponseInformation(r.string()?),
            0x1C => P::ServerReference(r.string()?),
            0x1F => P::ReasonString(r.string()?),
            0x21 => P::ReceiveMaximum(non_zero(r.u16()?, I::ReceiveMaximum)?),
            0x22 => P::TopicAliasMaximum(r.u16()?),
            0x23 => P::TopicAlias(non_zero(r.u16()?, I::TopicAlias)?),
            0x24 => P::MaximumQoS(match r.u8()? {
                0 => QoS::AtMostOnce,
                1 => QoS::AtLeastOnce,
                _ => return Err(DecodeError::InvalidPropertyValue(I::MaximumQoS)),
            }),
            0x25 => P::RetainAvailable(flag(r, I::RetainAvailable)?),
            0x26 => P::UserProperty(r.string()?, r.string()?),
            0x27 => P::MaximumPacketSize(non_zero(r.u32()?, I::MaximumPacketSize)?),
            0x28 => P::WildcardSubscriptionAvailable(flag(r, I::WildcardSubscriptionAvailable)?),
            0x29 => {
                P::SubscriptionIdentifierAvailable(flag(r, I::SubscriptionIdentifierAvailable)?)
            }
            0x2A => P::SharedSubscriptionAvailable(flag(r, I::SharedSubscriptionAvailable)?),
            other => return Err(DecodeError::UnknownProperty(other)),
        })
    }

    pub(crate) fn write<W: Sink>(&self, w: &mut W) {
        use Property as P;
        // Every identifier is below 0x80, so its Variable Byte Integer is the byte itself.
        w.put_u8(self.id() as u8);
        match *self {
            P::PayloadFormatIndicator(b)
            | P::RequestProblemInformation(b)
            | P::RequestResponseInformation(b)
            | P::RetainAvailable(b)
            | P::WildcardSubscriptionAvailable(b)
            | P::SubscriptionIdentifierAvailable(b)
            | P::SharedSubscriptionAvailable(b) => w.put_u8(u8::from(b)),
            P::MaximumQoS(q) => w.put_u8(q as u8),
            P::MessageExpiryInterval(v)
            | P::SessionExpiryInterval(v)
            | P::WillDelayInterval(v)
            | P::MaximumPacketSize(v) => w.put_u32(v),
            P::ServerKeepAlive(v)
            | P::ReceiveMaximum(v)
            | P::TopicAliasMaximum(v)
            | P::TopicAlias(v) => w.put_u16(v),
            P::SubscriptionIdentifier(v) => {
                if v == 0 {
                    w.fail(EncodeError::ValueOutOfRange);
                }
                w.put_varint(v);
            }
            P::ContentType(s)
            | P::ResponseTopic(s)
            | P::AssignedClientIdentifier(s)
            | P::AuthenticationMethod(s)
            | P::ResponseInformation(s)
            | P::ServerReference(s)
            | P::ReasonString(s) => w.put_str(s),
            P::CorrelationData(b) | P::AuthenticationData(b) => w.put_binary(b),
            P::UserProperty(k, v) => {
                w.put_str(k);
                w.put_str(v);
            }
        }
    }
}

impl<'a> ListItem<'a> for Property<'a> {
    fn next_from(wire: &mut &'a [u8]) -> Option<Self> {
        let mut r = Reader::new(wire);
        let p = Property::read(&mut r).ok()?;
        *wire = r.rest();
        Some(p)
    }
}

/// The properties of a packet (or of a will): a [`List`] of [`Property`] with typed getters.
pub type Properties<'a> = List<'a, Property<'a>>;

/// Iterator over [`Properties`].
pub type PropertiesIter<'a> = crate::ListIter<'a, Property<'a>>;

/// Which properties each packet may carry (section 2.2.2.2 of MQTT 5), as bit sets of ids.
const fn allowed_mask(packet: PacketType, will: bool) -> u64 {
    use PropertyId as I;
    const fn set(ids: &[PropertyId]) -> u64 {
        let mut mask = 0;
        let mut i = 0;
        while i < ids.len() {
            mask |= ids[i].bit();
            i += 1;
        }
        mask
    }
    const ACK: u64 = set(&[I::ReasonString, I::UserProperty]);
    if will {
        return set(&[
            I::PayloadFormatIndicator,
            I::MessageExpiryInterval,
            I::ContentType,
            I::ResponseTopic,
            I::CorrelationData,
            I::WillDelayInterval,
            I::UserProperty,
        ]);
    }
    match packet {
        PacketType::Connect => set(&[
            I::SessionExpiryInterval,
            I::AuthenticationMethod,
            I::AuthenticationData,
            I::RequestProblemInformation,
            I::RequestResponseInformation,
            I::ReceiveMaximum,
            I::TopicAliasMaximum,
            I::UserProperty,
            I::MaximumPacketSize,
        ]),
        PacketType::Connack => set(&[
            I::SessionExpiryInterval,
            I::AssignedClientIdentifier,
            I::ServerKeepAlive,
            I::AuthenticationMethod,
            I::AuthenticationData,
            I::ResponseInformation,
            I::ServerReference,
            I::ReasonString,
            I::ReceiveMaximum,
            I::TopicAliasMaximum,
            I::MaximumQoS,
            I::RetainAvailable,
            I::UserProperty,
            I::MaximumPacketSize,
            I::WildcardSubscriptionAvailable,
            I::SubscriptionIdentifierAvailable,
            I::SharedSubscriptionAvailable,
        ]),
        PacketType::Publish => set(&[
            I::PayloadFormatIndicator,
            I::MessageExpiryInterval,
            I::ContentType,
            I::ResponseTopic,
            I::CorrelationData,
            I::SubscriptionIdentifier,
            I::TopicAlias,
            I::UserProperty,
        ]),
        PacketType::Puback
        | PacketType::Pubrec
        | PacketType::Pubrel
        | PacketType::Pubcomp
        | PacketType::Suback
        | PacketType::Unsuback => ACK,
        PacketType::Subscribe => set(&[I::SubscriptionIdentifier, I::UserProperty]),
        PacketType::Unsubscribe => set(&[I::UserProperty]),
        PacketType::Disconnect => set(&[
            I::SessionExpiryInterval,
            I::ServerReference,
            I::ReasonString,
            I::UserProperty,
        ]),
        PacketType::Auth => set(&[
            I::AuthenticationMethod,
            I::AuthenticationData,
            I::ReasonString,
            I::UserProperty,
        ]),
        PacketType::Pingreq | PacketType::Pingresp => 0,
    }
}

/// A typed getter for each property that may appear at most once.
macro_rules! getters {
    ($($(#[$doc:meta])* $fn:ident => $variant:ident : $ty:ty;)*) => {
        $(
            $(#[$doc])*
            pub fn $fn(&self) -> Option<$ty> {
                self.iter().find_map(|p| match p {
                    Property::$variant(v) => Some(v),
                    _ => None,
                })
            }
        )*
    };
}

impl<'a> List<'a, Property<'a>> {
    getters! {
        payload_format_indicator => PayloadFormatIndicator: bool;
        message_expiry_interval => MessageExpiryInterval: u32;
        content_type => ContentType: &'a str;
        response_topic => ResponseTopic: &'a str;
        correlation_data => CorrelationData: &'a [u8];
        session_expiry_interval => SessionExpiryInterval: u32;
        assigned_client_identifier => AssignedClientIdentifier: &'a str;
        server_keep_alive => ServerKeepAlive: u16;
        authentication_method => AuthenticationMethod: &'a str;
        authentication_data => AuthenticationData: &'a [u8];
        request_problem_information => RequestProblemInformation: bool;
        will_delay_interval => WillDelayInterval: u32;
        request_response_information => RequestResponseInformation: bool;
        response_information => ResponseInformation: &'a str;
        server_reference => ServerReference: &'a str;
        reason_string => ReasonString: &'a str;
        receive_maximum => ReceiveMaximum: u16;
        topic_alias_maximum => TopicAliasMaximum: u16;
        topic_alias => TopicAlias: u16;
        maximum_qos => MaximumQoS: QoS;
        retain_available => RetainAvailable: bool;
        maximum_packet_size => MaximumPacketSize: u32;
        wildcard_subscription_available => WildcardSubscriptionAvailable: bool;
        subscription_identifier_available => SubscriptionIdentifierAvailable: bool;
        shared_subscription_available => SharedSubscriptionAvailable: bool;
    }

    /// Every User Property, in order.
    pub fn user_properties(&self) -> impl Iterator<Item = (&'a str, &'a str)> + use<'a> {
        self.iter().filter_map(|p| match p {
            Property::UserProperty(k, v) => Some((k, v)),
            _ => None,
        })
    }

    /// Every Subscription Identifier (a PUBLISH to a subscriber may carry several).
    pub fn subscription_identifiers(&self) -> impl Iterator<Item = u32> + use<'a> {
        self.iter().filter_map(|p| match p {
            Property::SubscriptionIdentifier(id) => Some(id),
            _ => None,
        })
    }

    /// Reads a Property Length and the properties after it, enforcing which properties
    /// `packet` (or, with `will`, a will) may carry and that only User Property (and, in
    /// PUBLISH, Subscription Identifier) repeats.
    pub(crate) fn read(
        r: &mut Reader<'a>,
        packet: PacketType,
        will: bool,
    ) -> Result<Self, DecodeError> {
        let len = r.varint()? as usize;
        let wire = r.take(len)?;
        let allowed = allowed_mask(packet, will);
        let repeatable = PropertyId::UserProperty.bit()
            | if packet == PacketType::Publish && !will {
                PropertyId::SubscriptionIdentifier.bit()
            } else {
                0
            };
        let mut seen = 0u64;
        List::decode(wire, |r| {
            let property = Property::read(r)?;
            let id = property.id();
            if allowed & id.bit() == 0 {
                return Err(DecodeError::PropertyNotAllowed {
                    property: id,
                    packet,
                });
            }
            if seen & id.bit() & !repeatable != 0 {
                return Err(DecodeError::DuplicateProperty(id));
            }
            seen |= id.bit();
            Ok(property)
        })
    }

    /// Appends the properties' wire form, without the Property Length, to `out`: what
    /// [`List::with_wire`] takes back, e.g. to keep the subset of a PUBLISH's properties
    /// that is forwarded as published.
    #[cfg(feature = "bytes")]
    pub fn encode_body_to(&self, out: &mut bytes::BytesMut) {
        self.write_body(out);
    }

    /// Writes the Property Length and the properties.
    pub(crate) fn write<W: Sink>(&self, w: &mut W) {
        let mut counter = Counter::default();
        self.write_body(&mut counter);
        match counter.finish() {
            Ok(len) => match u32::try_from(len) {
                Ok(len) => w.put_varint(len),
                Err(_) => w.fail(EncodeError::PacketTooLarge),
            },
            Err(e) => w.fail(e),
        }
        self.write_body(w);
    }

    fn write_body<W: Sink>(&self, w: &mut W) {
        // Decoded wire bytes are already in their wire form: copy them as they are.
        w.put(self.wire());
        for p in self.items() {
            p.write(w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn allowed_table_spot_checks() {
        use PropertyId as I;
        assert!(I::TopicAlias.is_allowed_in(PacketType::Publish, false));
        assert!(!I::TopicAlias.is_allowed_in(PacketType::Connect, true));
        assert!(I::WillDelayInterval.is_allowed_in(PacketType::Connect, true));
        assert!(!I::WillDelayInterval.is_allowed_in(PacketType::Connect, false));
        assert!(I::UserProperty.is_allowed_in(PacketType::Unsubscribe, false));
        assert!(!I::ReasonString.is_allowed_in(PacketType::Connect, false));
        assert!(!I::UserProperty.is_allowed_in(PacketType::Pingreq, false));
    }

    #[test]
    fn getters_find_values_in_wire_and_items() {
        let items = [Property::TopicAlias(3), Property::UserProperty("k", "v")];
        let wire = [0x02, 0, 0, 0, 60]; // Message Expiry Interval 60
        let props = Properties::with_wire(&wire, &items);
        assert_eq!(props.message_expiry_interval(), Some(60));
        assert_eq!(props.topic_alias(), Some(3));
        assert_eq!(props.user_properties().collect::<Vec<_>>(), [("k", "v")]);
        assert_eq!(props.len(), 3);
        assert_eq!(props.content_type(), None);
    }

    #[cfg(feature = "bytes")]
    #[test]
    fn body_round_trips_through_with_wire() {
        let items = [
            Property::ContentType("text/plain"),
            Property::UserProperty("a", "b"),
        ];
        let mut body = bytes::BytesMut::new();
        Properties::new(&items).encode_body_to(&mut body);
        assert_eq!(Properties::with_wire(&body, &[]), Properties::new(&items));
    }
}
