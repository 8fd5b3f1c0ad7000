//! Sending messages to the client: the in-flight window, per-delivery properties (Message
//! Expiry left, Subscription Identifiers), topic aliases the broker assigns, and the
//! client's Maximum Packet Size.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::BytesMut;
use midge_wire::{Ack, List, Packet, Properties, Property, Publish, QosPid};
use tracing::debug;

use super::{Connected, Connection, encode};
use crate::session::{Outbound, Sent};
use crate::stats::Stats;

/// Output is not added to beyond this: the connection stops taking deliveries (and the
/// shell stops reading) until the client has read what is pending, so a client that does
/// not read costs at most this much here, and its session's queue limits do the rest.
pub const OUT_HIGH_WATER: usize = 64 * 1024;

/// Topic aliases for PUBLISHes to one client (they last as long as the connection).
/// The first `max` distinct topics get one; later topics go out in full.
#[derive(Debug, Default)]
pub(super) struct OutAliases {
    max: u16,
    by_topic: HashMap<Box<str>, u16>,
}

/// Most aliases kept per client, whatever larger maximum it allows: bounds the memory a
/// client can make the broker spend on it.
const MAX_OUT_ALIASES: u16 = 64;

enum Alias {
    /// Already told to the client: send an empty topic and the alias.
    Known(u16),
    /// Free: send the topic and the alias, which the client then remembers.
    New(u16),
    None,
}

impl OutAliases {
    /// Aliases for a client that takes `client_maximum`; `None` (nothing kept) for one
    /// that takes none, as every 3.1.1 client.
    pub(super) fn new(client_maximum: u16) -> Option<Box<Self>> {
        (client_maximum > 0).then(|| {
            Box::new(Self {
                max: client_maximum.min(MAX_OUT_ALIASES),
                by_topic: HashMap::new(),
            })
        })
    }

    fn lookup(&self, topic: &str) -> Alias {
        match self.by_topic.get(topic) {
            Some(&alias) => Alias::Known(alias),
            None if self.by_topic.len() < usize::from(self.max) => {
                Alias::New(self.by_topic.len() as u16 + 1)
            }
            None => Alias::None,
        }
    }
}

impl Connection {
    /// Encodes queued deliveries for the client, as far as its in-flight window allows.
    pub fn send_queued(&mut self) {
        let Self {
            state: Some(connected),
            out,
            broker,
            id,
            ..
        } = self
        else {
            return;
        };
        let session = Arc::clone(&connected.session);
        let mut state = session.state();
        if state.owner.as_ref().is_none_or(|o| o.connection_id != *id) {
            return; // taken over: the close notification is on its way
        }
        let window = broker
            .limits
            .max_inflight_messages
            .min(usize::from(connected.receive_maximum));
        let now = Instant::now();
        state.send_queued(window, now, |o| {
            encode_outbound(out, connected, &broker.stats, o, now)
        });
    }

    /// Sends everything in flight again, after the client resumed its session.
    pub(super) fn resend_inflight(&mut self) {
        let Self {
            state: Some(connected),
            out,
            broker,
            ..
        } = self
        else {
            return;
        };
        let session = Arc::clone(&connected.session);
        let now = Instant::now();
        session.state().resend_inflight(|o| {
            encode_outbound(out, connected, &broker.stats, o, now);
        });
    }
}

fn encode_outbound(
    out: &mut BytesMut,
    connected: &mut Connected,
    stats: &Stats,
    outbound: Outbound<'_>,
    now: Instant,
) -> Sent {
    let version = connected.version;
    let (delivery, packet_id, dup) = match outbound {
        Outbound::Pubrel(id) => {
            encode(out, version, &Packet::Pubrel(Ack::new(id)), stats);
            return fullness(out);
        }
        Outbound::Publish {
            delivery,
            packet_id,
            dup,
        } => (delivery, packet_id, dup),
    };
    let message = &delivery.message;
    let mut topic: &str = &message.topic;
    let mut new_alias = None;
    let mut extra: Vec<Property<'_>> = Vec::new();
    if version.is_v5() {
        if let Some(left) = message.remaining_expiry(now) {
            extra.push(Property::MessageExpiryInterval(left));
        }
        extra.extend(
            delivery
                .subscription_ids
                .iter()
                .map(|&id| Property::SubscriptionIdentifier(id)),
        );
        let alias = connected
            .aliases_out
            .as_deref()
            .map_or(Alias::None, |a| a.lookup(topic));
        match alias {
            Alias::Known(alias) => {
                topic = "";
                extra.push(Property::TopicAlias(alias));
            }
            Alias::New(alias) => {
                new_alias = Some(alias);
                extra.push(Property::TopicAlias(alias));
            }
            Alias::None => {}
        }
    }
    let properties = if version.is_v5() {
        Properties::with_wire(&message.properties, &extra)
    } else {
        List::EMPTY
    };
    let packet = Packet::Publish(Publish {
        dup,
        qos_pid: QosPid::new(delivery.qos, packet_id.unwrap_or(0)),
        retain: delivery.retain,
        topic,
        properties,
        payload: &message.payload,
    });
    let len = packet.encoded_len(version).unwrap_or(usize::MAX);
    if len > connected.max_packet_size as usize {
        // [MQTT-3.1.2-25]: never sent, and counted as dropped.
        stats.publish_dropped.fetch_add(1, Ordering::Relaxed);
        debug!(
            "{} bytes for {} exceed its Maximum Packet Size: dropped",
            len, connected.session.client_id
        );
        return Sent::TooLarge;
    }
    if let (Some(alias), Some(aliases)) = (new_alias, connected.aliases_out.as_deref_mut()) {
        aliases.by_topic.insert(message.topic.clone(), alias);
    }
    encode(out, version, &packet, stats);
    stats.publish_sent.fetch_add(1, Ordering::Relaxed);
    fullness(out)
}

fn fullness(out: &BytesMut) -> Sent {
    if out.len() < OUT_HIGH_WATER {
        Sent::More
    } else {
        Sent::Full
    }
}
