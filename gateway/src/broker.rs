//! What the CoAP side asks of the MQTT broker and what it hears back: the boundary between
//! the sans-IO [`crate::engine`] and the MQTT connections in [`crate::link`].

use crate::query::Credentials;

/// Identifies one request waiting for the broker.
pub type OpId = u64;

/// A command for the broker connection of one set of device credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Publish {
        op: OpId,
        topic: String,
        payload: Vec<u8>,
        qos: u8,
        retain: bool,
        content_type: Option<String>,
    },
    /// Subscribe to `filter` and keep the subscription until [`Command::Unsubscribe`];
    /// completes with the retained messages the broker sent for it.
    Subscribe { op: OpId, filter: String },
    /// The retained message of `topic`, without keeping a subscription.
    Read { op: OpId, topic: String },
    /// Releases one [`Command::Subscribe`] of `filter`.
    Unsubscribe { filter: String },
}

impl Command {
    pub fn op(&self) -> Option<OpId> {
        match self {
            Self::Publish { op, .. } | Self::Subscribe { op, .. } | Self::Read { op, .. } => {
                Some(*op)
            }
            Self::Unsubscribe { .. } => None,
        }
    }
}

/// An MQTT message as the gateway passes it on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: u8,
    /// Set by the broker only for retained messages sent because of a new subscription.
    pub retain: bool,
    pub content_type: Option<String>,
}

/// Why the broker did not do what was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// CONNACK refused the credentials: 4.01.
    BadCredentials,
    /// The ACL refused the publish or subscription: 4.03.
    NotAuthorized,
    /// No connection to the broker: 5.03.
    Unreachable,
    /// The broker found the topic invalid: 4.00.
    TopicInvalid,
    /// The broker refused the size: 4.13.
    TooLarge,
    /// Any other refusal: 5.02.
    Refused,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Published,
    /// For `Subscribe` and `Read`: the retained messages that came with the subscription.
    Subscribed {
        retained: Vec<Message>,
    },
    Failed(Failure),
}

/// What a broker connection reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Done {
        op: OpId,
        outcome: Outcome,
    },
    Message {
        session: Credentials,
        message: Message,
    },
    /// The connection ended; its subscriptions are gone.
    LinkDown {
        session: Credentials,
    },
    /// The connection has had nothing to do for a while and may be closed.
    Idle {
        session: Credentials,
    },
}
