//! A client's session: what outlives its connection when the session is persistent.
//!
//! Its queue holds deliveries not yet sent, its in-flight list the QoS 1/2 deliveries sent
//! and not yet acknowledged (in send order, for resending after a reconnect), and the packet
//! ids of QoS 2 messages received and not yet released. Idle, all of them are empty and
//! allocate nothing.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use midge_wire::{QoS, SubscriptionOptions};

use crate::config::Limits;
use crate::locks::lock;
use crate::message::Message;
use crate::persist::{Record, Store};
use crate::security::access::Identity;
use crate::security::acl::Access;
use crate::shared::SharedGroup;
use crate::signal::Signal;

#[derive(Debug)]
pub struct Session {
    pub client_id: Arc<str>,
    state: Mutex<SessionState>,
}

/// The connection a session is attached to.
#[derive(Debug, Clone)]
pub struct Owner {
    pub connection_id: u64,
    /// Wakes that connection: deliveries queued, taken over, shutting down…
    pub signal: Arc<Signal>,
}

/// One message on its way to this session's client.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub message: Arc<Message>,
    /// The lower of the published QoS and the subscription's.
    pub qos: QoS,
    /// RETAIN as sent: set for retained messages sent at subscribe, and as published on
    /// subscriptions with Retain As Published.
    pub retain: bool,
    /// MQTT 5 Subscription Identifiers of every subscription the message matched.
    pub subscription_ids: Box<[u32]>,
    /// The shared subscription that chose this session, if one did: the delivery moves
    /// to another member if this one leaves before acknowledging it.
    pub shared: Option<Arc<SharedGroup>>,
    /// Its id in the persistence log (0: not persisted).
    pub stored: u64,
}

/// What the connection did with a PUBLISH the session handed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Sent; more may follow.
    More,
    /// Sent; the connection's output is full for now.
    Full,
    /// Not sent because it exceeds the client's Maximum Packet Size: dropped as if
    /// delivered [MQTT-3.1.2-25].
    TooLarge,
}

#[derive(Debug)]
enum Outgoing {
    /// PUBLISH sent, waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    Published(Delivery),
    /// PUBREL sent, waiting for PUBCOMP (with the delivery's id in the persistence log).
    Released(u64),
}

/// A packet for the connection to send, produced by the session.
#[derive(Debug)]
pub enum Outbound<'a> {
    Publish {
        delivery: &'a Delivery,
        packet_id: Option<u16>,
        dup: bool,
    },
    Pubrel(u16),
}

#[derive(Debug, Default)]
pub struct SessionState {
    pub owner: Option<Owner>,
    /// Seconds the session outlives its connection: 0 ends it with the connection,
    /// `u32::MAX` never (a 3.1.1 session without clean session).
    pub expiry_interval: u32,
    /// Who the client authenticated as, for ACL checks on what it receives.
    pub identity: Option<Identity>,
    /// When a disconnected session with a finite expiry interval ends.
    pub expires_at: Option<std::time::Instant>,
    /// Mirrored in the broker's subscription tree.
    pub subscriptions: Filters,
    queue: VecDeque<Delivery>,
    inflight: VecDeque<(u16, Outgoing)>,
    incoming_qos2: Vec<u16>,
    next_packet_id: u16,
    queued_bytes: usize,
    /// Where the session's changes are logged, if it is persistent and persistence is on.
    pub persisted: Option<Box<Persisted>>,
}

/// A session's subscriptions: filter, options and identifier. A vector, not a map: most
/// sessions have a few, and every idle one pays for its container.
#[derive(Debug, Default)]
pub struct Filters(Vec<(Box<str>, SubscriptionOptions, Option<u32>)>);

impl Filters {
    /// Adds or replaces the subscription to `filter`.
    pub fn insert(&mut self, filter: &str, options: SubscriptionOptions, identifier: Option<u32>) {
        match self.0.iter_mut().find(|(f, ..)| **f == *filter) {
            Some((_, o, i)) => (*o, *i) = (options, identifier),
            None => {
                if self.0.len() < 4 {
                    self.0.reserve_exact(1);
                }
                self.0.push((filter.into(), options, identifier));
            }
        }
    }

    pub fn remove(&mut self, filter: &str) {
        self.0.retain(|(f, ..)| **f != *filter);
    }

    /// Takes every filter out.
    pub fn take(&mut self) -> Vec<Box<str>> {
        std::mem::take(&mut self.0)
            .into_iter()
            .map(|(f, ..)| f)
            .collect()
    }
}

/// A persistent session's link to the persistence log.
#[derive(Debug)]
pub struct Persisted {
    pub store: Store,
    pub client: bytes::Bytes,
}

impl Persisted {
    /// Logs the end of a persisted delivery (acknowledged, expired or dropped).
    fn done(&self, stored: u64) {
        if stored != 0 {
            self.store.append(&[Record::Done(stored)]);
        }
    }
}

impl Session {
    pub fn new(client_id: Arc<str>) -> Self {
        Self {
            client_id,
            state: Mutex::new(SessionState::default()),
        }
    }

    /// Wakes the connection that owns the session, if one does: deliveries are queued.
    pub fn wake(&self) {
        if let Some(owner) = &self.state().owner {
            owner.signal.wake();
        }
    }

    pub fn state(&self) -> MutexGuard<'_, SessionState> {
        lock(&self.state)
    }
}

impl SessionState {
    /// Whether the client may receive a message on `topic` (its ACL, if any).
    pub fn may_receive(&self, client_id: &str, topic: &str) -> bool {
        self.identity
            .as_ref()
            .is_none_or(|id| id.allows(client_id, topic, Access::Read))
    }

    /// Queues a delivery, or refuses it (returns `false`) when the queue limits are
    /// reached or it is QoS 0 for an offline client and QoS 0 is not queued.
    pub fn enqueue(&mut self, delivery: Delivery, limits: &Limits) -> bool {
        let offline = self.owner.is_none();
        if offline && delivery.qos == QoS::AtMostOnce && !limits.queue_qos0_messages {
            return false;
        }
        let size = delivery.message.payload.len();
        let over_count =
            limits.max_queued_messages != 0 && self.queue.len() >= limits.max_queued_messages;
        let over_bytes =
            limits.max_queued_bytes != 0 && self.queued_bytes + size > limits.max_queued_bytes;
        if over_count || over_bytes {
            return false;
        }
        self.queued_bytes += size;
        self.queue.push_back(delivery);
        true
    }

    /// Hands queued deliveries to `send` while `window` (the in-flight limit for this
    /// connection) has room and the connection takes more. Deliveries whose message expired
    /// while queued are dropped [MQTT-3.3.2-5].
    pub fn send_queued(
        &mut self,
        window: usize,
        now: Instant,
        mut send: impl FnMut(Outbound<'_>) -> Sent,
    ) {
        while let Some(front) = self.queue.front() {
            if front.message.is_held() {
                break; // its publish is not committed yet; sent once it is
            }
            if front.qos != QoS::AtMostOnce && self.inflight.len() >= window {
                break;
            }
            let Some(delivery) = self.queue.pop_front() else {
                break;
            };
            self.queued_bytes -= delivery.message.payload.len();
            if delivery.message.is_expired(now) {
                if let Some(p) = &self.persisted {
                    p.done(delivery.stored);
                }
                continue;
            }
            let packet_id = (delivery.qos != QoS::AtMostOnce).then(|| self.allocate_packet_id());
            if let (Some(p), Some(packet_id), QoS::ExactlyOnce) =
                (&self.persisted, packet_id, delivery.qos)
            {
                // A resend after a restart must carry the same id, so the id is on disk
                // before the PUBLISH goes out.
                p.store.append_durable(&[Record::Sent {
                    id: delivery.stored,
                    packet_id,
                }]);
            }
            let sent = send(Outbound::Publish {
                delivery: &delivery,
                packet_id,
                dup: false,
            });
            match (packet_id, sent) {
                (Some(id), Sent::More | Sent::Full) => {
                    self.inflight.push_back((id, Outgoing::Published(delivery)));
                }
                (Some(_), Sent::TooLarge) => {
                    if let Some(p) = &self.persisted {
                        p.done(delivery.stored);
                    }
                }
                (None, _) => {}
            }
            if sent == Sent::Full {
                break;
            }
        }
    }

    /// Everything in flight again, in the order first sent: PUBLISH with DUP set, or
    /// PUBREL [MQTT-4.4.0-1].
    pub fn resend_inflight(&self, mut send: impl FnMut(Outbound<'_>)) {
        for (id, outgoing) in &self.inflight {
            send(match outgoing {
                Outgoing::Published(delivery) => Outbound::Publish {
                    delivery,
                    packet_id: Some(*id),
                    dup: true,
                },
                Outgoing::Released(_) => Outbound::Pubrel(*id),
            });
        }
    }

    /// PUBACK received; `false` if no QoS 1 delivery had that id.
    pub fn puback(&mut self, id: u16) -> bool {
        self.remove_inflight(
            id,
            |o| matches!(o, Outgoing::Published(d) if d.qos == QoS::AtLeastOnce),
        )
    }

    /// PUBREC received: the delivery becomes released. `false` if unknown.
    pub fn pubrec(&mut self, id: u16) -> bool {
        let found = self.inflight.iter_mut().find(|(i, o)| {
            *i == id && matches!(o, Outgoing::Published(d) if d.qos == QoS::ExactlyOnce)
        });
        match found {
            Some((_, outgoing)) => {
                let stored = match outgoing {
                    Outgoing::Published(d) => d.stored,
                    Outgoing::Released(stored) => *stored,
                };
                *outgoing = Outgoing::Released(stored);
                if let (Some(p), true) = (&self.persisted, stored != 0) {
                    p.store.append(&[Record::Released {
                        id: stored,
                        packet_id: id,
                    }]);
                }
                true
            }
            None => false,
        }
    }

    /// PUBCOMP received; `false` if no released delivery had that id.
    pub fn pubcomp(&mut self, id: u16) -> bool {
        self.remove_inflight(id, |o| matches!(o, Outgoing::Released(_)))
    }

    /// A QoS 2 PUBLISH arrived: `true` the first time for this id (route it), `false`
    /// for a resend of one already received and not yet released.
    pub fn receive_qos2(&mut self, id: u16) -> bool {
        if self.incoming_qos2.contains(&id) {
            return false;
        }
        self.incoming_qos2.push(id);
        true
    }

    /// Logs a QoS 2 id received, committing the deliveries of its message (`message`,
    /// 0 if none were logged): before PUBREC, so that a resend after a restart is known
    /// as a resend exactly when the deliveries survived.
    pub fn log_qos2_received(&self, id: u16, message: u64) {
        if let Some(p) = &self.persisted {
            p.store.append_durable(&[Record::Qos2Received {
                client: p.client.clone(),
                packet_id: id,
                message,
            }]);
        }
    }

    /// PUBREL arrived: forget the id. `false` if it was not pending.
    pub fn release_qos2(&mut self, id: u16) -> bool {
        match self.incoming_qos2.iter().position(|&i| i == id) {
            Some(pos) => {
                self.incoming_qos2.swap_remove(pos);
                if let Some(p) = &self.persisted {
                    p.store.append(&[Record::Qos2Released {
                        client: p.client.clone(),
                        packet_id: id,
                    }]);
                }
                true
            }
            None => false,
        }
    }

    /// Takes out the deliveries that came through shared subscriptions and that another
    /// member of their group may have instead: those not sent yet, and QoS 1 ones sent
    /// without PUBACK. A QoS 2 delivery once sent stays: it is completed with this member
    /// when it returns, or never [MQTT-4.8.2-4, MQTT-4.8.2-5].
    pub fn take_shared(&mut self) -> Vec<Delivery> {
        let mut taken = Vec::new();
        let mut keep = VecDeque::with_capacity(self.queue.len());
        for delivery in self.queue.drain(..) {
            if delivery.shared.is_some() {
                self.queued_bytes -= delivery.message.payload.len();
                taken.push(delivery);
            } else {
                keep.push_back(delivery);
            }
        }
        self.queue = keep;
        let mut kept = VecDeque::with_capacity(self.inflight.len());
        for (id, outgoing) in self.inflight.drain(..) {
            match outgoing {
                Outgoing::Published(d) if d.shared.is_some() && d.qos == QoS::AtLeastOnce => {
                    taken.push(d)
                }
                other => kept.push_back((id, other)),
            }
        }
        self.inflight = kept;
        taken
    }

    /// Puts back a delivery recovered from the persistence log: queued, or in flight
    /// with the packet id it was sent with and whether PUBREC had arrived.
    pub fn restore(&mut self, delivery: Delivery, sent: Option<(u16, bool)>) {
        match sent {
            None => {
                self.queued_bytes += delivery.message.payload.len();
                self.queue.push_back(delivery);
            }
            Some((id, false)) => self.inflight.push_back((id, Outgoing::Published(delivery))),
            Some((id, true)) => self
                .inflight
                .push_back((id, Outgoing::Released(delivery.stored))),
        }
    }

    /// Puts back the id of a QoS 2 message received before a restart and not released.
    pub fn restore_qos2_received(&mut self, id: u16) {
        self.incoming_qos2.push(id);
    }

    /// QoS 2 messages received and not yet released (counted against Receive Maximum).
    pub fn incoming_qos2(&self) -> usize {
        self.incoming_qos2.len()
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    pub fn inflight(&self) -> usize {
        self.inflight.len()
    }

    fn remove_inflight(&mut self, id: u16, kind: impl Fn(&Outgoing) -> bool) -> bool {
        match self.inflight.iter().position(|(i, o)| *i == id && kind(o)) {
            Some(pos) => {
                if let (Some((_, outgoing)), Some(p)) = (self.inflight.remove(pos), &self.persisted)
                {
                    p.done(match outgoing {
                        Outgoing::Published(d) => d.stored,
                        Outgoing::Released(stored) => stored,
                    });
                }
                true
            }
            None => false,
        }
    }

    fn allocate_packet_id(&mut self) -> u16 {
        // The window is far smaller than 65,535 ids, so a free one is always near.
        loop {
            self.next_packet_id = self.next_packet_id.wrapping_add(1).max(1);
            let id = self.next_packet_id;
            if !self.inflight.iter().any(|(i, _)| *i == id) {
                return id;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn delivery(qos: QoS) -> Delivery {
        let message = Arc::new(Message::new("t", Bytes::from_static(b"x"), qos, false));
        Delivery {
            message,
            qos,
            retain: false,
            subscription_ids: Box::default(),
            shared: None,
            stored: 0,
        }
    }

    fn online() -> SessionState {
        SessionState {
            owner: Some(Owner {
                connection_id: 1,
                signal: Arc::default(),
            }),
            ..SessionState::default()
        }
    }

    fn sent(state: &mut SessionState, limits: &Limits) -> Vec<(Option<u16>, bool)> {
        let mut out = Vec::new();
        state.send_queued(limits.max_inflight_messages, Instant::now(), |o| match o {
            Outbound::Publish { packet_id, dup, .. } => {
                out.push((packet_id, dup));
                Sent::More
            }
            Outbound::Pubrel(_) => unreachable!(),
        });
        out
    }

    #[test]
    fn window_limits_qos1_but_not_qos0() {
        let limits = Limits {
            max_inflight_messages: 2,
            ..Limits::default()
        };
        let mut s = online();
        for qos in [
            QoS::AtLeastOnce,
            QoS::AtLeastOnce,
            QoS::AtLeastOnce,
            QoS::AtMostOnce,
        ] {
            assert!(s.enqueue(delivery(qos), &limits));
        }
        assert_eq!(sent(&mut s, &limits), [(Some(1), false), (Some(2), false)]);
        assert_eq!(s.queued(), 2);
        assert!(s.puback(1));
        assert!(!s.puback(1));
        assert_eq!(sent(&mut s, &limits), [(Some(3), false), (None, false)]);
    }

    #[test]
    fn qos2_outgoing_flow_and_resend() {
        let limits = Limits::default();
        let mut s = online();
        s.enqueue(delivery(QoS::ExactlyOnce), &limits);
        s.enqueue(delivery(QoS::ExactlyOnce), &limits);
        assert_eq!(sent(&mut s, &limits).len(), 2);
        assert!(!s.puback(1), "a PUBACK does not complete QoS 2");
        assert!(s.pubrec(1));
        let mut resent = Vec::new();
        s.resend_inflight(|o| {
            resent.push(match o {
                Outbound::Publish { packet_id, dup, .. } => format!("publish {packet_id:?} {dup}"),
                Outbound::Pubrel(id) => format!("pubrel {id}"),
            })
        });
        assert_eq!(resent, ["pubrel 1", "publish Some(2) true"]);
        assert!(s.pubcomp(1));
        assert_eq!(s.inflight(), 1);
    }

    #[test]
    fn offline_queue_limits() {
        let limits = Limits {
            max_queued_messages: 2,
            ..Limits::default()
        };
        let mut s = SessionState::default();
        assert!(
            !s.enqueue(delivery(QoS::AtMostOnce), &limits),
            "QoS 0 not queued offline"
        );
        assert!(s.enqueue(delivery(QoS::AtLeastOnce), &limits));
        assert!(s.enqueue(delivery(QoS::AtLeastOnce), &limits));
        assert!(!s.enqueue(delivery(QoS::AtLeastOnce), &limits));
        let with_qos0 = Limits {
            queue_qos0_messages: true,
            max_queued_messages: 3,
            ..limits
        };
        assert!(s.enqueue(delivery(QoS::AtMostOnce), &with_qos0));
    }

    #[test]
    fn incoming_qos2_is_delivered_once() {
        let mut s = SessionState::default();
        assert!(s.receive_qos2(7));
        assert!(!s.receive_qos2(7));
        assert!(s.release_qos2(7));
        assert!(!s.release_qos2(7));
        assert!(s.receive_qos2(7));
    }

    #[test]
    fn packet_ids_skip_zero_and_ids_in_flight() {
        let limits = Limits::default();
        let mut s = online();
        s.next_packet_id = u16::MAX - 1;
        for _ in 0..3 {
            s.enqueue(delivery(QoS::AtLeastOnce), &limits);
        }
        let ids: Vec<_> = sent(&mut s, &limits)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(ids, [Some(u16::MAX), Some(1), Some(2)]);
    }
}
