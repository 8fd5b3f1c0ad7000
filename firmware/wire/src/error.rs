use core::fmt;

use crate::{PacketType, PropertyId, ReasonCode, TopicError};

/// Why a byte sequence is not a well-formed MQTT packet.
///
/// Each variant is one rule of the specifications. [`DecodeError::reason_code`] gives the
/// MQTT 5 reason code a server or client disconnects with when it receives such a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum DecodeError {
    /// The remaining length runs over four bytes or is not in its shortest form.
    MalformedRemainingLength,
    /// The whole packet would be larger than the configured maximum packet size.
    PacketTooLarge { size: usize, max: u32 },
    /// Packet type 0, or AUTH (15) on a 3.1/3.1.1 connection.
    InvalidPacketType(u8),
    /// The low four bits of the first byte are not what the packet type requires.
    InvalidHeaderFlags { packet: PacketType, flags: u8 },
    /// A field runs past the end of the packet.
    UnexpectedEnd,
    /// Bytes are left over after the last field of the packet.
    TrailingBytes,
    /// A Variable Byte Integer inside the packet is longer than four bytes or overlong.
    MalformedVarInt,
    /// A string is not valid UTF-8 (this includes encoded surrogates).
    InvalidUtf8,
    /// A string contains U+0000.
    NullCharacter,
    /// A PUBLISH or will topic name is empty (in MQTT 5: without a Topic Alias) or contains
    /// a wildcard. (A bad Response Topic is [`DecodeError::InvalidPropertyValue`].)
    InvalidTopicName(TopicError),
    /// A topic filter in SUBSCRIBE or UNSUBSCRIBE breaks the wildcard rules.
    InvalidTopicFilter(TopicError),
    /// A packet identifier is 0 where a non-zero one is required.
    ZeroPacketId,
    /// A property identifier that MQTT 5 does not define.
    UnknownProperty(u32),
    /// A property that may appear once appears twice.
    DuplicateProperty(PropertyId),
    /// A property that this packet (or the will) must not carry.
    PropertyNotAllowed {
        property: PropertyId,
        packet: PacketType,
    },
    /// A property value outside its range (0 where forbidden, a flag that is not 0 or 1…).
    InvalidPropertyValue(PropertyId),
    /// QoS 3 in a PUBLISH header, a will, or a subscription.
    InvalidQoS,
    /// The reserved bit of the CONNECT flags is set.
    InvalidConnectFlags,
    /// Will QoS or Will Retain set while the Will Flag is clear.
    InvalidWillFlags,
    /// A 3.1/3.1.1 CONNECT with the password flag but not the user name flag.
    PasswordWithoutUsername,
    /// The CONNECT protocol name is neither `MQTT` nor `MQIsdp`.
    InvalidProtocolName,
    /// The protocol level does not match the protocol name (or is unknown).
    UnsupportedProtocolVersion(u8),
    /// Reserved bits of the CONNACK acknowledge flags are set.
    InvalidConnackFlags,
    /// A reason code that this packet type cannot carry.
    InvalidReasonCode { packet: PacketType, code: u8 },
    /// Reserved bits set in a subscription options byte.
    InvalidSubscriptionOptions,
    /// Retain Handling 3 in a subscription options byte.
    InvalidRetainHandling,
    /// Authentication Data without an Authentication Method.
    AuthenticationDataWithoutMethod,
    /// SUBSCRIBE or UNSUBSCRIBE without a topic filter.
    NoTopicFilters,
    /// SUBACK or (MQTT 5) UNSUBACK without a reason code.
    NoReasonCodes,
    /// No Local set on a shared subscription [MQTT-3.8.3-4].
    NoLocalOnSharedSubscription,
}

impl DecodeError {
    /// The MQTT 5 reason code for a DISCONNECT (or CONNACK) answering this error.
    pub const fn reason_code(self) -> ReasonCode {
        use DecodeError::*;
        match self {
            PacketTooLarge { .. } => ReasonCode::PacketTooLarge,
            // [MQTT-3.3.2-1]… an empty name without Topic Alias is a Protocol Error (3.3.2.1).
            InvalidTopicName(TopicError::Empty) => ReasonCode::ProtocolError,
            InvalidTopicName(_) => ReasonCode::TopicNameInvalid,
            InvalidTopicFilter(_) => ReasonCode::TopicFilterInvalid,
            UnsupportedProtocolVersion(_) => ReasonCode::UnsupportedProtocolVersion,
            InvalidPropertyValue(PropertyId::TopicAlias) => ReasonCode::TopicAliasInvalid,
            ZeroPacketId
            | DuplicateProperty(_)
            | InvalidPropertyValue(_)
            | InvalidProtocolName
            | NoTopicFilters
            | NoLocalOnSharedSubscription
            | InvalidRetainHandling
            | AuthenticationDataWithoutMethod => ReasonCode::ProtocolError,
            MalformedRemainingLength
            | InvalidPacketType(_)
            | InvalidHeaderFlags { .. }
            | UnexpectedEnd
            | TrailingBytes
            | MalformedVarInt
            | InvalidUtf8
            | NullCharacter
            | UnknownProperty(_)
            | PropertyNotAllowed { .. }
            | InvalidQoS
            | InvalidConnectFlags
            | InvalidWillFlags
            | PasswordWithoutUsername
            | InvalidConnackFlags
            | InvalidReasonCode { .. }
            | InvalidSubscriptionOptions
            | NoReasonCodes => ReasonCode::MalformedPacket,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DecodeError::*;
        match self {
            MalformedRemainingLength => f.write_str("malformed remaining length"),
            PacketTooLarge { size, max } => {
                write!(f, "packet of {size} bytes exceeds the maximum of {max}")
            }
            InvalidPacketType(t) => write!(f, "invalid packet type {t}"),
            InvalidHeaderFlags { packet, flags } => {
                write!(f, "invalid fixed header flags {flags:#06b} for {packet:?}")
            }
            UnexpectedEnd => f.write_str("packet ends inside a field"),
            TrailingBytes => f.write_str("unexpected bytes after the last field"),
            MalformedVarInt => f.write_str("malformed variable byte integer"),
            InvalidUtf8 => f.write_str("string is not valid UTF-8"),
            NullCharacter => f.write_str("string contains U+0000"),
            InvalidTopicName(e) => write!(f, "invalid topic name: {e}"),
            InvalidTopicFilter(e) => write!(f, "invalid topic filter: {e}"),
            ZeroPacketId => f.write_str("packet identifier 0"),
            UnknownProperty(id) => write!(f, "unknown property {id:#04x}"),
            DuplicateProperty(p) => write!(f, "property {p:?} appears more than once"),
            PropertyNotAllowed { property, packet } => {
                write!(f, "property {property:?} is not allowed in {packet:?}")
            }
            InvalidPropertyValue(p) => write!(f, "invalid value for property {p:?}"),
            InvalidQoS => f.write_str("QoS 3 is not a valid QoS"),
            InvalidConnectFlags => f.write_str("reserved CONNECT flag is set"),
            InvalidWillFlags => f.write_str("will QoS or retain set without a will"),
            PasswordWithoutUsername => f.write_str("password flag set without user name flag"),
            InvalidProtocolName => f.write_str("protocol name is neither MQTT nor MQIsdp"),
            UnsupportedProtocolVersion(l) => write!(f, "unsupported protocol level {l}"),
            InvalidConnackFlags => f.write_str("reserved CONNACK flags are set"),
            InvalidReasonCode { packet, code } => {
                write!(f, "reason code {code:#04x} is not valid in {packet:?}")
            }
            InvalidSubscriptionOptions => f.write_str("reserved subscription option bits set"),
            InvalidRetainHandling => f.write_str("Retain Handling 3 is not a valid value"),
            AuthenticationDataWithoutMethod => {
                f.write_str("Authentication Data without Authentication Method")
            }
            NoTopicFilters => f.write_str("no topic filters"),
            NoReasonCodes => f.write_str("no reason codes"),
            NoLocalOnSharedSubscription => f.write_str("No Local set on a shared subscription"),
        }
    }
}

impl core::error::Error for DecodeError {}

/// Why a packet could not be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum EncodeError {
    /// The output buffer holds fewer bytes than the packet needs.
    BufferTooSmall { needed: usize },
    /// The remaining length would exceed [`crate::MAX_VARINT`].
    PacketTooLarge,
    /// A string or binary field is longer than 65,535 bytes.
    FieldTooLong,
    /// A packet identifier of 0 where a non-zero one is required.
    ZeroPacketId,
    /// A Variable Byte Integer property (Subscription Identifier) over [`crate::MAX_VARINT`].
    ValueOutOfRange,
    /// AUTH has no 3.1/3.1.1 form.
    NotInThisVersion,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BufferTooSmall { needed } => write!(f, "buffer too small: {needed} bytes needed"),
            Self::PacketTooLarge => f.write_str("packet exceeds the MQTT maximum size"),
            Self::FieldTooLong => f.write_str("string or binary field over 65535 bytes"),
            Self::ZeroPacketId => f.write_str("packet identifier 0"),
            Self::ValueOutOfRange => f.write_str("variable byte integer value out of range"),
            Self::NotInThisVersion => {
                f.write_str("packet type does not exist in this MQTT version")
            }
        }
    }
}

impl core::error::Error for EncodeError {}
