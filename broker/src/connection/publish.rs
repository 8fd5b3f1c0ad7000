//! PUBLISH from a client: checks, topic aliases, acknowledgements, routing.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use midge_wire::{Ack, List, Packet, PacketType, Property, Publish, QosPid, ReasonCode};
use tracing::warn;

use super::{Closing, Connected, Connection};
use crate::message::Message;
use crate::properties::{forwarded, set_per_delivery};
use crate::security::acl::Access;

impl Connection {
    pub(super) fn on_publish(&mut self, publish: &Publish<'_>) -> Result<(), Closing> {
        let broker = Arc::clone(&self.broker);
        let stats = &broker.stats;
        let limits = &broker.limits;
        stats.publish_received.fetch_add(1, Ordering::Relaxed);
        let Some(connected) = self.state.as_mut() else {
            return Err(Closing::protocol(
                ReasonCode::ProtocolError,
                "PUBLISH before CONNECT",
            ));
        };
        let session = Arc::clone(&connected.session);
        let version = connected.version;
        let props = &publish.properties;
        if props.subscription_identifiers().next().is_some() {
            // [MQTT-3.3.4-6]: only the server sets them.
            return Err(Closing::protocol(
                ReasonCode::ProtocolError,
                "subscription identifier from a client",
            ));
        }
        let topic = resolve_topic(connected, publish, limits.max_topic_alias)?;
        let authorised = connected
            .identity
            .allows(&session.client_id, &topic, Access::Write);
        if publish.retain && !limits.retain_available {
            return Err(Closing::protocol(
                ReasonCode::RetainNotSupported,
                "retained messages are disabled",
            ));
        }
        if let QosPid::ExactlyOnce(_) = publish.qos_pid {
            let pending = session.state().incoming_qos2();
            if pending >= limits.max_inflight_messages.min(usize::from(u16::MAX)) {
                // More unacknowledged QoS 2 than our Receive Maximum [MQTT-3.3.4-8].
                return Err(Closing::protocol(
                    ReasonCode::ReceiveMaximumExceeded,
                    "receive maximum exceeded",
                ));
            }
        }
        // Refusals that drop the message but keep the connection: acknowledged with the
        // reason (MQTT 5), so the client does not send it again.
        let refusal = if !authorised {
            // 3.1.1 has no way to say so: the message is dropped and acknowledged as usual.
            Some((
                ReasonCode::NotAuthorized,
                "not authorised to publish on this topic",
            ))
        } else if limits.message_size_limit != 0
            && publish.payload.len() > limits.message_size_limit as usize
        {
            warn!(
                "Dropped too large PUBLISH from {} ({} bytes) on {topic}",
                session.client_id,
                publish.payload.len()
            );
            Some((ReasonCode::QuotaExceeded, "payload over message_size_limit"))
        } else if props.payload_format_indicator() == Some(true)
            && std::str::from_utf8(publish.payload).is_err()
        {
            Some((
                ReasonCode::PayloadFormatInvalid,
                "payload is not the UTF-8 its format indicator says",
            ))
        } else {
            None
        };
        if let Some((reason, detail)) = refusal {
            stats.publish_dropped.fetch_add(1, Ordering::Relaxed);
            return match publish.qos_pid {
                // QoS 0 has no acknowledgement to carry the reason: the connection ends.
                QosPid::AtMostOnce if reason == ReasonCode::PayloadFormatInvalid => {
                    Err(Closing::protocol(reason, detail))
                }
                QosPid::AtMostOnce => Ok(()),
                QosPid::AtLeastOnce(id) => {
                    self.acknowledge(PacketType::Puback, id, reason, detail);
                    Ok(())
                }
                QosPid::ExactlyOnce(id) => {
                    self.acknowledge(PacketType::Pubrec, id, reason, detail);
                    Ok(())
                }
            };
        }
        let now = Instant::now();
        let message = Message {
            topic,
            payload: Bytes::copy_from_slice(publish.payload),
            qos: publish.qos_pid.qos(),
            retain: publish.retain,
            publisher: Some(Arc::clone(&session.client_id)),
            properties: if version.is_v5() {
                forwarded(props, set_per_delivery)
            } else {
                Bytes::new()
            },
            expires_at: Message::expiry_from(props.message_expiry_interval(), now),
            stored_id: Default::default(),
            held: Default::default(),
        };
        match publish.qos_pid {
            QosPid::AtMostOnce => {
                broker.publish(message);
            }
            QosPid::AtLeastOnce(id) => {
                let delivered = broker.publish(message);
                self.acknowledge(PacketType::Puback, id, delivered_reason(delivered), "");
            }
            QosPid::ExactlyOnce(id) => {
                // Delivered when first received; a resend before PUBREL is only acknowledged.
                let first = session.state().receive_qos2(id);
                let delivered = if first {
                    broker.publish_received_qos2(message, &session, id)
                } else {
                    1
                };
                self.acknowledge(PacketType::Pubrec, id, delivered_reason(delivered), "");
            }
        }
        Ok(())
    }

    /// Sends PUBACK or PUBREC, with a Reason String for a failure if the client allows it.
    fn acknowledge(&mut self, kind: PacketType, id: u16, reason: ReasonCode, detail: &str) {
        let problem_information = self.state.as_ref().is_some_and(|c| c.problem_information);
        let properties = [Property::ReasonString(detail)];
        let with_reason = reason.is_error() && problem_information && !detail.is_empty();
        let properties = if with_reason {
            List::new(&properties)
        } else {
            List::EMPTY
        };
        let mut ack = Ack {
            packet_id: id,
            reason,
            properties,
        };
        let packet = |ack| {
            if kind == PacketType::Pubrec {
                Packet::Pubrec(ack)
            } else {
                Packet::Puback(ack)
            }
        };
        if self
            .state
            .as_ref()
            .is_some_and(|c| !super::fits(&packet(ack), c))
        {
            ack.properties = List::EMPTY; // never over the client's Maximum Packet Size
        }
        self.send(if kind == PacketType::Pubrec {
            Packet::Pubrec(ack)
        } else {
            Packet::Puback(ack)
        });
    }
}

/// PUBACK/PUBREC reason for a message delivered to `delivered` sessions (3.1.1 sends
/// no reason; the encoder drops it).
fn delivered_reason(delivered: usize) -> ReasonCode {
    if delivered == 0 {
        ReasonCode::NoMatchingSubscribers
    } else {
        ReasonCode::Success
    }
}

/// The topic of a PUBLISH, through the client's topic aliases [MQTT-3.3.2-8…12].
fn resolve_topic(
    connected: &mut Connected,
    publish: &Publish<'_>,
    max: u16,
) -> Result<Box<str>, Closing> {
    let Some(alias) = publish.properties.topic_alias() else {
        return Ok(publish.topic.into());
    };
    if alias > max {
        return Err(Closing::protocol(
            ReasonCode::TopicAliasInvalid,
            format!("topic alias {alias} over the maximum {max}"),
        ));
    }
    let slot = usize::from(alias) - 1;
    if !publish.topic.is_empty() {
        if connected.aliases_in.len() <= slot {
            connected.aliases_in.resize(slot + 1, None);
        }
        connected.aliases_in[slot] = Some(publish.topic.into());
        return Ok(publish.topic.into());
    }
    match connected.aliases_in.get(slot) {
        Some(Some(topic)) => Ok(topic.clone()),
        _ => Err(Closing::protocol(
            ReasonCode::ProtocolError,
            format!("topic alias {alias} was never set"),
        )),
    }
}
