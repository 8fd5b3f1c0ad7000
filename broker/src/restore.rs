//! Start-up after a restart: puts what the persistence log recovered back into the broker
//! (retained messages, sessions with their subscriptions, queues, in-flight QoS 1/2 state
//! and QoS 2 packet ids received).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use midge_wire::{ProtocolVersion, QoS, SubscriptionOptions};
use tracing::warn;

use crate::broker::Broker;
use crate::message::Message;
use crate::persist::record::StoredMessage;
use crate::persist::{self, State, Store};
use crate::session::{Delivery, Persisted, Session};

pub fn restore(broker: &Broker, store: &Store, state: State) {
    let now = Instant::now();
    let messages: HashMap<u64, Arc<Message>> = state
        .messages
        .into_iter()
        .map(|(id, held)| (id, Arc::new(message(id, held.message))))
        .collect();
    for id in state.retained.values() {
        if let Some(message) = messages.get(id) {
            broker.restore_retained(message);
        }
    }
    for (client, record) in state.sessions {
        let client_id: Arc<str> = String::from_utf8_lossy(&client).into();
        let session = Arc::new(Session::new(Arc::clone(&client_id)));
        {
            let mut s = session.state();
            s.expiry_interval = record.expiry_interval;
            if record.expiry_interval != u32::MAX {
                // A session connected at the crash counts as disconnected now.
                let interval = Duration::from_secs(u64::from(record.expiry_interval));
                s.expires_at =
                    Some(record.disconnected_at_ms.map_or(now, persist::instant_at) + interval);
            }
            for packet_id in record.qos2_received {
                s.restore_qos2_received(packet_id);
            }
            for id in record.deliveries {
                let Some(d) = state.deliveries.get(&id) else {
                    continue;
                };
                let Some(message) = messages.get(&d.delivery.message) else {
                    continue;
                };
                let delivery = Delivery {
                    message: Arc::clone(message),
                    qos: QoS::from_bits(d.delivery.qos).unwrap_or(QoS::AtLeastOnce),
                    retain: d.delivery.retain,
                    subscription_ids: d.delivery.subscription_ids.clone().into(),
                    shared: None,
                    stored: id,
                };
                s.restore(delivery, d.packet_id.map(|p| (p, d.released)));
            }
            s.persisted = Some(Box::new(Persisted {
                store: store.clone(),
                client,
            }));
        }
        for (filter, (options, identifier)) in record.subscriptions {
            let filter = String::from_utf8_lossy(&filter);
            match SubscriptionOptions::from_byte(options, ProtocolVersion::V5) {
                Ok(options) => {
                    session
                        .state()
                        .subscriptions
                        .insert(&filter, options, identifier);
                    broker.index_subscription(&session, &filter, options, identifier);
                }
                Err(e) => warn!("{client_id}: subscription {filter} not restored: {e}"),
            }
        }
        broker.restore_session(session);
    }
}

fn message(id: u64, stored: StoredMessage) -> Message {
    Message {
        topic: String::from_utf8_lossy(&stored.topic).into(),
        payload: stored.payload,
        qos: QoS::from_bits(stored.qos).unwrap_or(QoS::AtMostOnce),
        retain: stored.retain,
        publisher: None,
        properties: stored.properties,
        expires_at: stored.expires_at_ms.map(persist::instant_at),
        stored_id: id.into(),
        held: Default::default(),
    }
}
