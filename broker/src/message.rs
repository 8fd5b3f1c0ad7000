//! An application message as the broker holds it: shared, never copied on fan-out.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

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
    /// The MQTT 5 properties forwarded as published (Payload Format Indicator, Content
    /// Type, Response Topic, Correlation Data, User Properties), in wire form, without
    /// the ones the broker sets per delivery. Empty for 3.1/3.1.1 publishers.
    pub properties: Bytes,
    /// End of the MQTT 5 Message Expiry Interval.
    pub expires_at: Option<Instant>,
    /// Its id in the persistence log once stored there (0: not stored).
    pub stored_id: AtomicU64,
    /// Not to be sent yet: its deliveries are queued but not yet committed to the log
    /// (see [`crate::broker::Broker::publish_received_qos2`]).
    pub held: AtomicBool,
}

impl Message {
    /// A message without properties or expiry (the broker's own, and 3.1.1 clients').
    pub fn new(topic: &str, payload: Bytes, qos: QoS, retain: bool) -> Self {
        Self {
            topic: topic.into(),
            payload,
            qos,
            retain,
            publisher: None,
            properties: Bytes::new(),
            expires_at: None,
            stored_id: AtomicU64::new(0),
            held: AtomicBool::new(false),
        }
    }

    pub fn is_held(&self) -> bool {
        self.held.load(Ordering::Acquire)
    }

    /// Its id in the persistence log, if it is stored there.
    pub fn stored(&self) -> Option<u64> {
        Some(self.stored_id.load(Ordering::Relaxed)).filter(|&id| id != 0)
    }

    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// What is left of the Message Expiry Interval, in whole seconds rounded up, for the
    /// copy sent now [MQTT-3.3.2-6]; `None` when the message does not expire.
    pub fn remaining_expiry(&self, now: Instant) -> Option<u32> {
        let left = self.expires_at?.saturating_duration_since(now);
        let seconds = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        Some(u32::try_from(seconds).unwrap_or(u32::MAX))
    }

    /// The expiry time for an interval given now.
    pub fn expiry_from(interval: Option<u32>, now: Instant) -> Option<Instant> {
        interval.map(|seconds| now + Duration::from_secs(u64::from(seconds)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_expiry_rounds_up_and_reaches_zero() {
        let now = Instant::now();
        let mut m = Message::new("t", Bytes::new(), QoS::AtMostOnce, false);
        assert_eq!(m.remaining_expiry(now), None);
        m.expires_at = Some(now + Duration::from_millis(4300));
        assert_eq!(m.remaining_expiry(now), Some(5));
        assert!(!m.is_expired(now));
        assert_eq!(m.remaining_expiry(now + Duration::from_secs(5)), Some(0));
        assert!(m.is_expired(now + Duration::from_secs(5)));
    }
}
