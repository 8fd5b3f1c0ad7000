//! SUBSCRIBE and UNSUBSCRIBE.

use std::sync::Arc;

use midge_wire::{
    List, Packet, Properties, QoS, ReasonCode, Suback, Subscribe, Unsuback, Unsubscribe,
};
use tracing::debug;

use super::Connection;
use crate::session::Session;

impl Connection {
    pub(super) fn on_subscribe(&mut self, session: &Arc<Session>, subscribe: &Subscribe<'_>) {
        let identifier = subscribe.properties.subscription_identifiers().next();
        let mut codes = Vec::with_capacity(subscribe.subscriptions.len());
        let identity = self.state.as_ref().map(|c| c.identity.clone());
        for s in &subscribe.subscriptions {
            let authorised = identity
                .as_ref()
                .is_none_or(|id| id.allows_subscribe(&session.client_id, s.filter));
            let code = if !authorised {
                // 0x87 for MQTT 5; the 3.1.1 encoding turns any failure into 0x80.
                ReasonCode::NotAuthorized
            } else {
                self.broker
                    .subscribe(session, s.filter, s.options, identifier);
                match s.options.qos {
                    QoS::AtMostOnce => ReasonCode::Success,
                    QoS::AtLeastOnce => ReasonCode::GrantedQoS1,
                    QoS::ExactlyOnce => ReasonCode::GrantedQoS2,
                }
            };
            debug!(
                "{} subscribed to {} ({code:?})",
                session.client_id, s.filter
            );
            codes.push(code);
        }
        self.send(Packet::Suback(Suback {
            packet_id: subscribe.packet_id,
            properties: Properties::EMPTY,
            reason_codes: List::new(&codes),
        }));
    }

    pub(super) fn on_unsubscribe(&mut self, session: &Arc<Session>, unsubscribe: &Unsubscribe<'_>) {
        let codes: Vec<ReasonCode> = unsubscribe
            .filters
            .iter()
            .map(|f| {
                if self.broker.unsubscribe(session, f) {
                    ReasonCode::Success
                } else {
                    ReasonCode::NoSubscriptionExisted
                }
            })
            .collect();
        self.send(Packet::Unsuback(Unsuback {
            packet_id: unsubscribe.packet_id,
            properties: Properties::EMPTY,
            reason_codes: List::new(&codes),
        }));
    }
}
