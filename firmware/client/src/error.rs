//! Why a connection ended or a request was refused.

use core::fmt;
use midge_wire::{DecodeError, EncodeError, PacketType, ReasonCode};

/// What ended a connection. After any of these the transport must be closed and
/// [`crate::Client::connection_lost`] called; un-acknowledged QoS 1/2 messages are kept and
/// sent again on the next connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The broker refused the CONNECT (bad credentials, not authorised, …).
    Refused(ReasonCode),
    /// The broker did not answer in time: the connection is presumed dead.
    Timeout(Waiting),
    /// The broker sent bytes that are not a valid MQTT packet.
    Malformed(DecodeError),
    /// A valid packet that makes no sense now (a second CONNACK, a PUBLISH before CONNACK,
    /// an acknowledgement for a packet identifier we never used, …).
    Unexpected(PacketType),
    /// The broker sent DISCONNECT (MQTT 5 carries a reason).
    DisconnectedByBroker(ReasonCode),
    /// The broker closed the TCP connection.
    Closed,
    /// The transport failed.
    Transport(embedded_io_async::ErrorKind),
    /// A packet the client builds itself did not fit in `MAX_PACKET` bytes (a CONNECT with
    /// long credentials or will, or a SUBSCRIBE with many filters).
    Encode(EncodeError),
}

/// The answer a [`Error::Timeout`] was waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Waiting {
    Connack,
    Suback,
    /// PUBACK, PUBREC or PUBCOMP of an outgoing message.
    PublishAck,
    Pingresp,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused(code) => write!(f, "connection refused: {code:?}"),
            Self::Timeout(what) => write!(f, "no {what:?} in time: connection presumed dead"),
            Self::Malformed(e) => write!(f, "malformed packet from broker: {e}"),
            Self::Unexpected(t) => write!(f, "unexpected {t:?} from broker"),
            Self::DisconnectedByBroker(code) => write!(f, "broker sent DISCONNECT: {code:?}"),
            Self::Closed => f.write_str("broker closed the connection"),
            Self::Transport(kind) => write!(f, "transport error: {kind:?}"),
            Self::Encode(e) => write!(f, "cannot encode packet: {e}"),
        }
    }
}

impl core::error::Error for Error {}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        Self::Malformed(e)
    }
}

/// Why [`crate::Client::publish`] did not take a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PublishError {
    /// Every outbox slot holds a message still waiting for its acknowledgement (or, for
    /// QoS 0, for the connection). Try again after a [`crate::Event::Delivered`].
    OutboxFull,
    /// The encoded PUBLISH is larger than `MAX_PACKET`, or than the Maximum Packet Size
    /// an MQTT 5 broker announced.
    TooLarge { needed: usize },
    /// The topic is empty, has wildcards or a NUL, or is not valid as a topic name.
    InvalidTopic,
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutboxFull => f.write_str("outbox full"),
            Self::TooLarge { needed } => write!(f, "PUBLISH needs {needed} bytes"),
            Self::InvalidTopic => f.write_str("invalid topic name"),
        }
    }
}

impl core::error::Error for PublishError {}
