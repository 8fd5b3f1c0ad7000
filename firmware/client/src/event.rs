//! What the client reports to the application.

use midge_wire::{QoS, ReasonCode};

/// Something the application may want to act on. Borrowed data points into the driver's
/// receive buffer and is valid until the next call into the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Event<'p> {
    /// CONNACK accepted the connection. Messages still in the outbox are being sent again.
    Connected { session_present: bool },
    /// The broker acknowledged the QoS 1 (PUBACK) or QoS 2 (PUBCOMP) message that
    /// [`crate::Client::publish`] numbered `packet_id`; its outbox slot is free again.
    Delivered { packet_id: u16 },
    /// An MQTT 5 broker answered that message with an error reason code (not authorised,
    /// quota exceeded, …): it was not accepted and will not be sent again.
    Rejected { packet_id: u16, reason: ReasonCode },
    /// SUBACK for the configured subscriptions; `granted` is false if the broker refused
    /// any of them.
    Subscribed { granted: bool },
    /// A message on one of our subscriptions.
    Message(Message<'p>),
}

/// A message the broker delivered to us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Message<'p> {
    pub topic: &'p str,
    pub payload: &'p [u8],
    pub qos: QoS,
    pub retain: bool,
}
