//! An application message as the broker holds it: shared, never copied on fan-out.

use std::sync::Arc;

use bytes::Bytes;
use midge_wire::QoS;

/// A published message. Subscribers' queues hold `Arc<Message>`; the payload is one
/// `Bytes` however many subscribers receive it.
#[derive(Debug)]
pub struct Message {
    pub topic: Box<str>,
    pub payload: Bytes,
    /// QoS as published; each delivery is downgraded to its subscription's maximum.
    pub qos: QoS,
    /// RETAIN as published.
    pub retain: bool,
    /// Client id of the publisher (for MQTT 5 No Local); `None` for the broker's own.
    pub publisher: Option<Arc<str>>,
}

impl Message {
    pub fn new(topic: &str, payload: Bytes, qos: QoS, retain: bool) -> Self {
        Self {
            topic: topic.into(),
            payload,
            qos,
            retain,
            publisher: None,
        }
    }
}
