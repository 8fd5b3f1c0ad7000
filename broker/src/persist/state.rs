//! What the records add up to: the persistent state, rebuilt by replaying a snapshot and
//! the log segments after it. Recovery hands it to the broker; compaction writes it back
//! out as a new snapshot holding only what is still live.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::{Bytes, BytesMut};

use super::frame;
use super::record::{Record, StoredDelivery, StoredMessage};

#[derive(Debug, Clone)]
pub struct HeldMessage {
    pub message: StoredMessage,
    /// Records holding it: pins, retained topics and deliveries. At zero it is dropped.
    refs: u32,
    pins: u32,
}

#[derive(Debug, Clone, Default)]
pub struct SessionRecord {
    pub expiry_interval: u32,
    /// When the client disconnected (wall clock, ms); `None` if it was connected.
    pub disconnected_at_ms: Option<u64>,
    /// Filter → (MQTT 5 options byte, subscription identifier).
    pub subscriptions: BTreeMap<Bytes, (u8, Option<u32>)>,
    /// Its deliveries, by id: the order they were queued in.
    pub deliveries: BTreeSet<u64>,
    pub qos2_received: BTreeSet<u16>,
}

impl SessionRecord {
    /// Whether the session had expired by `now_ms` (wall clock).
    pub fn expired(&self, now_ms: u64) -> bool {
        match (self.disconnected_at_ms, self.expiry_interval) {
            (_, u32::MAX) | (None, _) => false,
            (Some(at), seconds) => at.saturating_add(u64::from(seconds) * 1000) <= now_ms,
        }
    }
}

#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    pub delivery: StoredDelivery,
    /// The packet id it was sent with (QoS 2 only).
    pub packet_id: Option<u16>,
    /// PUBREC received: PUBREL is what remains.
    pub released: bool,
}

#[derive(Debug, Default)]
pub struct State {
    pub messages: HashMap<u64, HeldMessage>,
    pub retained: HashMap<Bytes, u64>,
    pub sessions: HashMap<Bytes, SessionRecord>,
    pub deliveries: BTreeMap<u64, DeliveryRecord>,
    /// The highest message or delivery id seen: new ids start above it.
    pub max_id: u64,
}

impl State {
    pub fn apply(&mut self, record: Record) {
        match record {
            Record::Message { id, pins, message } => {
                self.max_id = self.max_id.max(id);
                let held = self.messages.entry(id).or_insert(HeldMessage {
                    message,
                    refs: 0,
                    pins: 0,
                });
                // A snapshot's messages come unpinned, before the records holding them.
                held.refs += pins;
                held.pins += pins;
            }
            Record::Pin(id) => {
                if let Some(held) = self.messages.get_mut(&id) {
                    held.refs += 1;
                    held.pins += 1;
                }
            }
            Record::Unpin(id) => {
                if let Some(held) = self.messages.get_mut(&id)
                    && held.pins > 0
                {
                    held.pins -= 1;
                    self.release(id);
                }
            }
            Record::Retain { topic, message } => {
                if let Some(held) = self.messages.get_mut(&message) {
                    held.refs += 1;
                    if let Some(old) = self.retained.insert(topic, message) {
                        self.release(old);
                    }
                }
            }
            Record::Unretain { topic } => {
                if let Some(old) = self.retained.remove(&topic) {
                    self.release(old);
                }
            }
            Record::Session {
                client,
                expiry_interval,
            } => {
                let session = self.sessions.entry(client).or_default();
                session.expiry_interval = expiry_interval;
                session.disconnected_at_ms = None;
            }
            Record::SessionEnd { client } => {
                if let Some(session) = self.sessions.remove(&client) {
                    for id in session.deliveries {
                        self.finish(id);
                    }
                }
            }
            Record::Disconnected {
                client,
                at_ms,
                expiry_interval,
            } => {
                if let Some(session) = self.sessions.get_mut(&client) {
                    session.disconnected_at_ms = Some(at_ms);
                    session.expiry_interval = expiry_interval;
                }
            }
            Record::Subscribe {
                client,
                filter,
                options,
                identifier,
            } => {
                if let Some(session) = self.sessions.get_mut(&client) {
                    session.subscriptions.insert(filter, (options, identifier));
                }
            }
            Record::Unsubscribe { client, filter } => {
                if let Some(session) = self.sessions.get_mut(&client) {
                    session.subscriptions.remove(&filter);
                }
            }
            Record::Deliver { id, delivery } => {
                self.max_id = self.max_id.max(id);
                let (Some(session), Some(held)) = (
                    self.sessions.get_mut(&delivery.client),
                    self.messages.get_mut(&delivery.message),
                ) else {
                    return;
                };
                held.refs += 1;
                session.deliveries.insert(id);
                self.deliveries.insert(
                    id,
                    DeliveryRecord {
                        delivery,
                        packet_id: None,
                        released: false,
                    },
                );
            }
            Record::Sent { id, packet_id } => {
                if let Some(d) = self.deliveries.get_mut(&id) {
                    d.packet_id = Some(packet_id);
                }
            }
            Record::Released { id, packet_id } => {
                if let Some(d) = self.deliveries.get_mut(&id) {
                    d.packet_id = Some(packet_id);
                    d.released = true;
                }
            }
            Record::Done(id) => {
                if let Some(d) = self.deliveries.get(&id)
                    && let Some(session) = self.sessions.get_mut(&d.delivery.client)
                {
                    session.deliveries.remove(&id);
                }
                self.finish(id);
            }
            Record::Qos2Received {
                client,
                packet_id,
                message,
            } => {
                if let Some(session) = self.sessions.get_mut(&client) {
                    session.qos2_received.insert(packet_id);
                }
                if let Some(held) = self.messages.get_mut(&message) {
                    held.message.awaits_commit = false;
                }
            }
            Record::Qos2Released { client, packet_id } => {
                if let Some(session) = self.sessions.get_mut(&client) {
                    session.qos2_received.remove(&packet_id);
                }
            }
            Record::End { .. } => {}
        }
    }

    /// Forgets a delivery and its hold on its message.
    fn finish(&mut self, id: u64) {
        if let Some(d) = self.deliveries.remove(&id) {
            self.release(d.delivery.message);
        }
    }

    fn release(&mut self, id: u64) {
        if let Some(held) = self.messages.get_mut(&id) {
            held.refs = held.refs.saturating_sub(1);
        }
        self.release_if_unused(id);
    }

    fn release_if_unused(&mut self, id: u64) {
        if self.messages.get(&id).is_some_and(|h| h.refs == 0) {
            self.messages.remove(&id);
        }
    }

    /// Drops what is dead by `now_ms` (wall clock): sessions past their expiry, messages
    /// past theirs, messages whose commit never came (with their deliveries: the
    /// publisher sends them again), and pins, whose publishes died with the previous
    /// process. For start-up
    /// only: while running, the broker itself ends sessions and drops expired messages,
    /// and writes records saying so.
    pub fn prune(&mut self, now_ms: u64) {
        let expired: Vec<Bytes> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.expired(now_ms))
            .map(|(c, _)| c.clone())
            .collect();
        for client in expired {
            self.apply(Record::SessionEnd { client });
        }
        for held in self.messages.values_mut() {
            held.refs -= held.pins;
            held.pins = 0;
        }
        self.messages.retain(|_, h| h.refs > 0);
        let dead: BTreeSet<u64> = self
            .messages
            .iter()
            .filter(|(_, h)| {
                h.message.awaits_commit || h.message.expires_at_ms.is_some_and(|at| at <= now_ms)
            })
            .map(|(&id, _)| id)
            .collect();
        if dead.is_empty() {
            return;
        }
        let topics: Vec<Bytes> = self
            .retained
            .iter()
            .filter(|(_, m)| dead.contains(m))
            .map(|(t, _)| t.clone())
            .collect();
        for topic in topics {
            self.apply(Record::Unretain { topic });
        }
        let deliveries: Vec<u64> = self
            .deliveries
            .iter()
            .filter(|(_, d)| dead.contains(&d.delivery.message) && !d.released)
            .map(|(&id, _)| id)
            .collect();
        for id in deliveries {
            self.apply(Record::Done(id));
        }
    }

    /// The records that rebuild this state, framed, ending with the End record.
    pub fn snapshot(&self) -> BytesMut {
        let mut out = BytesMut::new();
        let mut count = 0u64;
        let mut put = |out: &mut BytesMut, record: Record| {
            frame::put(out, &record);
            count += 1;
        };
        // Messages first, each with its pins: every other record refers to one.
        for (&id, held) in &self.messages {
            put(
                &mut out,
                Record::Message {
                    id,
                    pins: held.pins,
                    message: held.message.clone(),
                },
            );
        }
        for (topic, &message) in &self.retained {
            put(
                &mut out,
                Record::Retain {
                    topic: topic.clone(),
                    message,
                },
            );
        }
        for (client, session) in &self.sessions {
            put(
                &mut out,
                Record::Session {
                    client: client.clone(),
                    expiry_interval: session.expiry_interval,
                },
            );
            if let Some(at_ms) = session.disconnected_at_ms {
                put(
                    &mut out,
                    Record::Disconnected {
                        client: client.clone(),
                        at_ms,
                        expiry_interval: session.expiry_interval,
                    },
                );
            }
            for (filter, &(options, identifier)) in &session.subscriptions {
                put(
                    &mut out,
                    Record::Subscribe {
                        client: client.clone(),
                        filter: filter.clone(),
                        options,
                        identifier,
                    },
                );
            }
            for &packet_id in &session.qos2_received {
                put(
                    &mut out,
                    Record::Qos2Received {
                        client: client.clone(),
                        packet_id,
                        message: 0,
                    },
                );
            }
        }
        for (&id, d) in &self.deliveries {
            put(
                &mut out,
                Record::Deliver {
                    id,
                    delivery: d.delivery.clone(),
                },
            );
            match (d.packet_id, d.released) {
                (Some(packet_id), true) => put(&mut out, Record::Released { id, packet_id }),
                (Some(packet_id), false) => put(&mut out, Record::Sent { id, packet_id }),
                (None, _) => {}
            }
        }
        frame::put(&mut out, &Record::End { records: count });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn message(id: u64, expires_at_ms: Option<u64>) -> Record {
        Record::Message {
            id,
            pins: 1,
            message: StoredMessage {
                topic: b("t"),
                payload: b("p"),
                properties: Bytes::new(),
                qos: 1,
                retain: false,
                expires_at_ms,
                awaits_commit: false,
            },
        }
    }

    fn deliver(id: u64, client: &str, message: u64) -> Record {
        Record::Deliver {
            id,
            delivery: StoredDelivery {
                client: b(client),
                message,
                qos: 1,
                retain: false,
                subscription_ids: vec![],
            },
        }
    }

    fn session(client: &str) -> Record {
        Record::Session {
            client: b(client),
            expiry_interval: u32::MAX,
        }
    }

    fn replay(records: Vec<Record>) -> State {
        let mut state = State::default();
        for r in records {
            state.apply(r);
        }
        state
    }

    fn reread(state: &State) -> State {
        let (records, ending) = frame::read_all(&state.snapshot().freeze());
        assert_eq!(ending, frame::Ending::Clean);
        replay(records)
    }

    #[test]
    fn a_message_lives_while_pinned_retained_or_delivered() {
        let mut s = replay(vec![session("a"), message(1, None), deliver(2, "a", 1)]);
        s.apply(Record::Unpin(1));
        assert_eq!(s.messages.len(), 1, "the delivery holds it");
        s.apply(Record::Done(2));
        assert!(s.messages.is_empty());
        assert!(s.sessions["a".as_bytes()].deliveries.is_empty());

        s.apply(message(3, None));
        s.apply(Record::Retain {
            topic: b("t"),
            message: 3,
        });
        s.apply(Record::Unpin(3));
        assert_eq!(s.retained.len(), 1);
        s.apply(message(4, None));
        s.apply(Record::Retain {
            topic: b("t"),
            message: 4,
        });
        assert!(
            !s.messages.contains_key(&3),
            "replaced retained message freed"
        );
        s.apply(Record::Unretain { topic: b("t") });
        s.apply(Record::Unpin(4));
        assert!(s.messages.is_empty());
        assert_eq!(s.max_id, 4);
    }

    #[test]
    fn session_end_takes_its_deliveries_and_their_messages() {
        let mut s = replay(vec![
            session("a"),
            session("b"),
            message(1, None),
            deliver(2, "a", 1),
            deliver(3, "b", 1),
            Record::Unpin(1),
        ]);
        s.apply(Record::SessionEnd { client: b("a") });
        assert_eq!(s.deliveries.len(), 1);
        assert_eq!(s.messages.len(), 1);
        s.apply(Record::SessionEnd { client: b("b") });
        assert!(s.messages.is_empty() && s.deliveries.is_empty());
    }

    #[test]
    fn snapshot_rebuilds_the_same_state_pins_included() {
        let s = replay(vec![
            session("a"),
            Record::Subscribe {
                client: b("a"),
                filter: b("x/#"),
                options: 1,
                identifier: Some(4),
            },
            Record::Qos2Received {
                client: b("a"),
                packet_id: 9,
                message: 0,
            },
            Record::Disconnected {
                client: b("a"),
                at_ms: 1000,
                expiry_interval: 60,
            },
            message(1, None),
            deliver(2, "a", 1),
            Record::Sent {
                id: 2,
                packet_id: 5,
            },
            deliver(3, "a", 1),
            Record::Released {
                id: 3,
                packet_id: 6,
            },
        ]);
        let again = reread(&s);
        assert_eq!(again.messages.len(), 1);
        assert_eq!(again.messages[&1].pins, 1, "still pinned");
        let a = &again.sessions["a".as_bytes()];
        assert_eq!(a.disconnected_at_ms, Some(1000));
        assert_eq!(a.subscriptions[&b("x/#")], (1, Some(4)));
        assert!(a.qos2_received.contains(&9));
        assert_eq!(a.deliveries.iter().copied().collect::<Vec<_>>(), [2, 3]);
        assert_eq!(again.deliveries[&2].packet_id, Some(5));
        assert!(again.deliveries[&3].released);
        assert_eq!(again.max_id, 3);
    }

    #[test]
    fn deliveries_of_an_uncommitted_qos2_message_do_not_survive() {
        let awaiting = |id| match message(id, None) {
            Record::Message {
                id,
                pins,
                mut message,
            } => {
                message.awaits_commit = true;
                Record::Message { id, pins, message }
            }
            other => other,
        };
        let commit = |message| Record::Qos2Received {
            client: b("publisher"),
            packet_id: 1,
            message,
        };
        let mut s = replay(vec![
            session("publisher"),
            session("a"),
            awaiting(1),
            deliver(2, "a", 1),
            commit(1),
            awaiting(3),
            deliver(4, "a", 3), // the crash came before its commit
        ]);
        let again = reread(&s);
        assert!(
            again.messages[&3].message.awaits_commit,
            "kept by compaction"
        );
        s.prune(0);
        assert_eq!(s.deliveries.keys().copied().collect::<Vec<_>>(), [2]);
        assert_eq!(s.messages.keys().copied().collect::<Vec<_>>(), [1]);
    }

    #[test]
    fn pruning_drops_expired_sessions_messages_and_stale_pins() {
        let mut s = replay(vec![
            session("gone"),
            Record::Disconnected {
                client: b("gone"),
                at_ms: 1000,
                expiry_interval: 10,
            },
            session("kept"),
            Record::Disconnected {
                client: b("kept"),
                at_ms: 1000,
                expiry_interval: 100,
            },
            message(1, None),
            deliver(2, "gone", 1),
            message(3, Some(5000)),
            deliver(4, "kept", 3),
            Record::Retain {
                topic: b("r"),
                message: 3,
            },
            message(5, None), // pinned by a publish the crash interrupted
        ]);
        s.prune(20_000);
        assert!(s.sessions.contains_key("kept".as_bytes()));
        assert!(!s.sessions.contains_key("gone".as_bytes()));
        assert!(s.messages.is_empty(), "{:?}", s.messages.keys());
        assert!(s.retained.is_empty() && s.deliveries.is_empty());
    }
}
