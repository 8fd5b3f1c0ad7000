//! Last Will messages: built at CONNECT, published when a connection ends abnormally,
//! after the MQTT 5 Will Delay Interval if there is one.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use midge_wire::{Property, ProtocolVersion};

use crate::message::Message;
use crate::properties::forwarded;

#[derive(Debug)]
pub struct Will {
    /// The message, without its expiry (which starts when the will is published).
    message: Message,
    /// Will Delay Interval, in seconds.
    pub delay: u32,
    /// Message Expiry Interval, counted from publication.
    expiry_interval: Option<u32>,
}

impl Will {
    pub fn from_connect(
        will: &midge_wire::Will<'_>,
        version: ProtocolVersion,
        publisher: &Arc<str>,
    ) -> Self {
        let props = &will.properties;
        let mut message = Message::new(
            will.topic,
            Bytes::copy_from_slice(will.payload),
            will.qos,
            will.retain,
        );
        message.publisher = Some(Arc::clone(publisher));
        if version.is_v5() {
            message.properties = forwarded(props, |p| {
                matches!(
                    p,
                    Property::WillDelayInterval(_) | Property::MessageExpiryInterval(_)
                )
            });
        }
        Self {
            message,
            delay: props.will_delay_interval().unwrap_or(0),
            expiry_interval: props.message_expiry_interval(),
        }
    }

    pub fn topic(&self) -> &str {
        &self.message.topic
    }

    /// The message to publish now.
    pub fn into_message(self, now: Instant) -> Message {
        Message {
            expires_at: Message::expiry_from(self.expiry_interval, now),
            ..self.message
        }
    }
}
