//! State shared by every connection: sessions, the subscription tree, retained messages.
//!
//! Locks are short and never held across an await or across each other except in one
//! order: sessions map → subscription tree → one session's state. Routing copies the
//! matching sessions out of the tree and releases it before touching any session, so a
//! busy topic holds the tree's read lock only for the walk.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use midge_wire::topic::SharedFilter;
use midge_wire::{ProtocolVersion, QoS, RetainHandling, SubscriptionOptions};
use tracing::info;

use crate::auth::AuthMethod;
use crate::config::Limits;
use crate::locks::{lock, read, write};
use crate::message::Message;
use crate::persist::record::{StoredDelivery, StoredMessage};
use crate::persist::{self, Record, Store};
use crate::retain::RetainedStore;
use crate::session::{Delivery, Owner, Persisted, Session, SessionState};
use crate::shared::{Pick, SharedGroup, SharedSubscriptions};
use crate::signal::Raised;
use crate::stats::Stats;
use crate::subscriptions::{Entry, SubscriptionTree};
use crate::will::Will;

/// Client ids of disconnected sessions by expiry time, soonest on top.
type ExpiryQueue = BinaryHeap<Reverse<(Instant, Arc<str>)>>;

/// One subscription a message matched, before merging per session.
struct Match {
    session: Arc<Session>,
    qos: QoS,
    retain: bool,
    identifier: Option<u32>,
}

/// A session as a subscriber in the tree: equal when it is the same session.
#[derive(Debug, Clone)]
pub struct SessionRef(pub Arc<Session>);

impl PartialEq for SessionRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

#[derive(Debug)]
pub struct Broker {
    pub limits: Limits,
    pub stats: Stats,
    sessions: Mutex<HashMap<Arc<str>, Arc<Session>>>,
    subscriptions: RwLock<SubscriptionTree<SessionRef>>,
    shared: RwLock<SharedSubscriptions>,
    retained: RwLock<RetainedStore>,
    /// Disconnected sessions with a finite expiry, soonest first (checked lazily: an
    /// entry whose session reconnected is skipped when it comes up).
    expiring: Mutex<ExpiryQueue>,
    /// Wills waiting out their Will Delay Interval, by client id.
    pending_wills: Mutex<HashMap<Arc<str>, (Instant, Will)>>,
    next_connection_id: AtomicU64,
    /// MQTT 5 enhanced authentication methods offered (none by default).
    auth_methods: Vec<Arc<dyn AuthMethod>>,
    /// The persistence log, unless persistence is off.
    store: Option<Store>,
}

/// What [`Broker::attach`] found.
#[derive(Debug)]
pub struct Attached {
    pub session: Arc<Session>,
    /// An earlier session was resumed (CONNACK's session present flag).
    pub session_present: bool,
    /// The connection that held the session until now, to be closed.
    pub previous_owner: Option<Owner>,
}

impl Broker {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            stats: Stats::default(),
            sessions: Mutex::default(),
            subscriptions: RwLock::default(),
            shared: RwLock::default(),
            retained: RwLock::default(),
            expiring: Mutex::default(),
            pending_wills: Mutex::default(),
            next_connection_id: AtomicU64::new(1),
            auth_methods: Vec::new(),
            store: None,
        }
    }

    /// Logs retained messages and persistent sessions to `store`.
    pub fn with_store(mut self, store: Store) -> Self {
        self.store = Some(store);
        self
    }

    pub fn store(&self) -> Option<&Store> {
        self.store.as_ref()
    }

    /// Offers these enhanced authentication methods to MQTT 5 clients.
    pub fn with_auth_methods(mut self, methods: Vec<Arc<dyn AuthMethod>>) -> Self {
        self.auth_methods = methods;
        self
    }

    pub fn auth_method(&self, name: &str) -> Option<&Arc<dyn AuthMethod>> {
        self.auth_methods.iter().find(|m| m.name() == name)
    }

    pub fn next_connection_id(&self) -> u64 {
        self.next_connection_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Attaches a connection to the session of `client_id`, creating it, or replacing it
    /// when `clean_start` is set.
    pub fn attach(
        &self,
        client_id: &str,
        clean_start: bool,
        expiry_interval: u32,
        owner: Owner,
    ) -> Attached {
        let mut sessions = lock(&self.sessions);
        let existing = sessions.get(client_id).cloned();
        // The connection holding the old session (if any) is closed, whether the session
        // is resumed or replaced [MQTT-3.1.4-2].
        let mut replaced_owner = None;
        let (session, session_present) = match existing {
            Some(session) if !clean_start => (session, true),
            existing => {
                if let Some(old) = existing {
                    let mut state = old.state();
                    replaced_owner = state.owner.take();
                    end_persisted(&mut state);
                    drop(state);
                    self.drop_subscriptions(&old);
                }
                let session = Arc::new(Session::new(client_id.into()));
                sessions.insert(Arc::clone(&session.client_id), Arc::clone(&session));
                (session, false)
            }
        };
        drop(sessions);
        // A client back before its will's delay ran out cancels the will [MQTT-3.1.3-9].
        lock(&self.pending_wills).remove(client_id);
        let previous_owner = {
            let mut state = session.state();
            state.expiry_interval = expiry_interval;
            state.expires_at = None;
            self.log_session(client_id, &mut state);
            state.owner.replace(owner).or(replaced_owner)
        };
        Attached {
            session,
            session_present,
            previous_owner,
        }
    }

    /// Detaches connection `connection_id` from `session`, unless another connection took it
    /// over already. A session that does not outlive its connection is removed.
    pub fn detach(&self, session: &Arc<Session>, connection_id: u64) {
        let mut sessions = lock(&self.sessions);
        let (shared, ends) = {
            let mut state = session.state();
            if state
                .owner
                .as_ref()
                .is_none_or(|o| o.connection_id != connection_id)
            {
                // Taken over. If a clean start replaced the session, it is dead: whatever
                // this connection still subscribed it to (racing the takeover) goes too.
                drop(state);
                let replaced = !sessions
                    .get(&session.client_id)
                    .is_some_and(|s| Arc::ptr_eq(s, session));
                if replaced {
                    self.drop_subscriptions(session);
                }
                return;
            }
            state.owner = None;
            let ends = match state.expiry_interval {
                0 => true,
                u32::MAX => false, // never expires
                seconds => {
                    let at = Instant::now() + Duration::from_secs(u64::from(seconds));
                    state.expires_at = Some(at);
                    lock(&self.expiring).push(Reverse((at, Arc::clone(&session.client_id))));
                    false
                }
            };
            if ends {
                end_persisted(&mut state);
            } else if let Some(p) = &state.persisted {
                p.store.append(&[Record::Disconnected {
                    client: p.client.clone(),
                    at_ms: persist::now_ms(),
                    expiry_interval: state.expiry_interval,
                }]);
            }
            (state.take_shared(), ends)
        };
        if ends {
            if sessions
                .get(&session.client_id)
                .is_some_and(|s| Arc::ptr_eq(s, session))
            {
                sessions.remove(&session.client_id);
            }
            self.drop_subscriptions(session);
        }
        drop(sessions);
        // No lock is held here: picking a member locks other sessions' states.
        self.redeliver_shared(session, shared);
    }

    /// Gives deliveries a leaving member had not acknowledged to other members of their
    /// groups; those with no other member wait in the session for its return.
    fn redeliver_shared(&self, from: &Arc<Session>, deliveries: Vec<Delivery>) {
        for delivery in deliveries {
            let pick = delivery.shared.as_ref().and_then(|g| g.pick(Some(from)));
            match pick {
                Some(pick) => {
                    let moved = delivery.stored;
                    let redelivery = Delivery {
                        qos: delivery.message.qos.min(pick.options.qos),
                        subscription_ids: pick.identifier.into_iter().collect(),
                        stored: 0,
                        ..delivery
                    };
                    // Logged for its new session before it is done for the old one, so
                    // its message is held throughout.
                    self.deliver(&pick.session, redelivery);
                    if let (Some(store), true) = (&self.store, moved != 0) {
                        store.append(&[Record::Done(moved)]);
                    }
                }
                None => {
                    from.state().enqueue(delivery, &self.limits);
                }
            }
        }
    }

    /// Publishes `will` at `at` unless the client reconnects first.
    pub fn schedule_will(&self, client_id: Arc<str>, at: Instant, will: Will) {
        lock(&self.pending_wills).insert(client_id, (at, will));
    }

    /// Publishes the wills whose delay has passed.
    pub fn publish_due_wills(&self, now: Instant) {
        let due: Vec<Will> = {
            let mut pending = lock(&self.pending_wills);
            let ids: Vec<Arc<str>> = pending
                .iter()
                .filter(|(_, (at, _))| *at <= now)
                .map(|(id, _)| Arc::clone(id))
                .collect();
            ids.iter()
                .filter_map(|id| pending.remove(id))
                .map(|(_, will)| will)
                .collect()
        };
        for will in due {
            self.publish(will.into_message(now));
        }
    }

    /// Whether `session` is still the one registered for its client id (not replaced by
    /// a clean start).
    pub fn is_current(&self, session: &Arc<Session>) -> bool {
        lock(&self.sessions)
            .get(&session.client_id)
            .is_some_and(|s| Arc::ptr_eq(s, session))
    }

    /// Removes the sessions whose expiry time has passed while they were disconnected,
    /// returning the next expiry time still pending.
    pub fn expire_sessions(&self, now: Instant) -> Option<Instant> {
        loop {
            let (at, client_id) = {
                let mut expiring = lock(&self.expiring);
                match expiring.peek() {
                    Some(Reverse((at, _))) if *at > now => return Some(*at),
                    Some(_) => expiring.pop()?.0,
                    None => return None,
                }
            };
            let mut sessions = lock(&self.sessions);
            let Some(session) = sessions.get(&client_id).cloned() else {
                continue;
            };
            // A client that came back (or left again later) has another deadline or none.
            let mut state = session.state();
            if state.owner.is_none() && state.expires_at == Some(at) {
                end_persisted(&mut state);
                drop(state);
                sessions.remove(&client_id);
                drop(sessions);
                self.drop_subscriptions(&session);
                info!("Expiring client {client_id}.");
            }
        }
    }

    /// Publishes a message: stores it if retained, then delivers it to every matching
    /// session. Returns how many sessions it was delivered (queued) to.
    pub fn publish(&self, message: Message) -> usize {
        let message = Arc::new(message);
        let delivered = self.store_and_route(&message, None);
        self.unpin(&message);
        delivered
    }

    /// Publishes a QoS 2 message that `publisher` sent with `packet_id`, for the first
    /// time. With a persistent publisher, its deliveries and the record of the id received
    /// reach the log together: a crash keeps both (the resend is only acknowledged) or
    /// neither (the resend is delivered), never one, so it is delivered exactly once. Until
    /// then its deliveries are held back from their clients.
    pub fn publish_received_qos2(
        &self,
        message: Message,
        publisher: &Session,
        packet_id: u16,
    ) -> usize {
        let logged = self.store.is_some() && publisher.state().persisted.is_some();
        if !logged {
            return self.publish(message);
        }
        message.held.store(true, Ordering::Release);
        let message = Arc::new(message);
        let mut woken = Vec::new();
        let delivered = self.store_and_route(&message, Some(&mut woken));
        publisher
            .state()
            .log_qos2_received(packet_id, message.stored().unwrap_or_default());
        message.held.store(false, Ordering::Release);
        for session in woken {
            session.wake();
        }
        self.unpin(&message);
        delivered
    }

    /// Stores the message if retained, then delivers it to every matching session; with
    /// `woken`, the sessions it was queued for are collected there instead of woken.
    fn store_and_route(
        &self,
        message: &Arc<Message>,
        woken: Option<&mut Vec<Arc<Session>>>,
    ) -> usize {
        if message.retain {
            let mut retained = write(&self.retained);
            retained.update(message);
            // Under the lock, so the log orders updates of a topic as the store does.
            self.log_retained(message);
        }
        self.route(message, woken)
    }

    /// Once every delivery referring to a logged message is logged, its pin goes.
    fn unpin(&self, message: &Message) {
        if let (Some(store), Some(id)) = (&self.store, message.stored()) {
            store.append(&[Record::Unpin(id)]);
        }
    }

    fn route(&self, message: &Arc<Message>, mut woken: Option<&mut Vec<Arc<Session>>>) -> usize {
        let mut matches: Vec<Match> = Vec::new();
        read(&self.subscriptions).for_each_match(&message.topic, |entry: &Entry<SessionRef>| {
            let session = &entry.subscriber.0;
            let own = message.publisher.as_deref() == Some(&*session.client_id);
            if entry.options.no_local && own {
                return;
            }
            matches.push(Match {
                session: Arc::clone(session),
                qos: message.qos.min(entry.options.qos),
                retain: entry.options.retain_as_published && message.retain,
                identifier: entry.identifier,
            });
        });
        let mut picks: Vec<(Pick, Arc<SharedGroup>)> = Vec::new();
        read(&self.shared).for_each_match(&message.topic, |group| {
            if let Some(pick) = group.pick(None) {
                picks.push((pick, Arc::clone(group)));
            }
        });
        // One delivery per session [MQTT-3.3.4-2]: the highest QoS of its matching
        // subscriptions, and every one of their identifiers [MQTT-3.3.4-3].
        matches.sort_unstable_by_key(|m| Arc::as_ptr(&m.session));
        let mut delivered = 0;
        for group in matches.chunk_by(|a, b| Arc::ptr_eq(&a.session, &b.session)) {
            let delivery = Delivery {
                message: Arc::clone(message),
                qos: group.iter().map(|m| m.qos).max().unwrap_or(QoS::AtMostOnce),
                retain: group.iter().any(|m| m.retain),
                subscription_ids: group.iter().filter_map(|m| m.identifier).collect(),
                shared: None,
                stored: 0,
            };
            if self.deliver(&group[0].session, delivery) {
                delivered += 1;
                if let Some(woken) = woken.as_deref_mut() {
                    woken.push(Arc::clone(&group[0].session));
                }
            }
        }
        // Shared subscriptions are independent of the member's other subscriptions: each
        // group that matched sends its own copy to the member it picked.
        for (pick, group) in picks {
            let delivery = Delivery {
                message: Arc::clone(message),
                qos: message.qos.min(pick.options.qos),
                retain: pick.options.retain_as_published && message.retain,
                subscription_ids: pick.identifier.into_iter().collect(),
                shared: Some(group),
                stored: 0,
            };
            if self.deliver(&pick.session, delivery) {
                delivered += 1;
                if let Some(woken) = woken.as_deref_mut() {
                    woken.push(Arc::clone(&pick.session));
                }
            }
        }
        delivered
    }

    /// Queues `delivery` for `session` unless its ACL forbids the topic or its queue is
    /// full (counted as dropped). Returns whether it was queued.
    fn deliver(&self, session: &Session, mut delivery: Delivery) -> bool {
        let mut state = session.state();
        if !state.may_receive(&session.client_id, &delivery.message.topic) {
            return false;
        }
        let held = delivery.message.is_held();
        // QoS 1 and 2 deliveries to a persistent session are logged; a crash must not lose
        // them once the publisher has its acknowledgement. What the record needs is kept
        // before the delivery moves into the queue (only then: this is the fan-out path).
        let logged = match (&state.persisted, delivery.qos) {
            (Some(p), QoS::AtLeastOnce | QoS::ExactlyOnce) => {
                delivery.stored = p.store.next_id();
                let record = StoredDelivery {
                    client: p.client.clone(),
                    message: 0, // its log id is known once it is logged, below
                    qos: delivery.qos as u8,
                    retain: delivery.retain,
                    subscription_ids: delivery.subscription_ids.to_vec(),
                };
                Some((record, Arc::clone(&delivery.message)))
            }
            _ => None,
        };
        let id = delivery.stored;
        let accepted = state.enqueue(delivery, &self.limits);
        if let (true, Some((mut record, message)), Some(p)) = (accepted, logged, &state.persisted) {
            let mut records = Vec::with_capacity(2);
            records.extend(message_record(&p.store, &message));
            record.message = message.stored().unwrap_or_default();
            records.push(Record::Deliver {
                id,
                delivery: record,
            });
            p.store.append_durable(&records);
        }
        if accepted
            && !held
            && let Some(owner) = &state.owner
        {
            owner.signal.wake();
        }
        drop(state);
        if !accepted {
            self.stats.publish_dropped.fetch_add(1, Ordering::Relaxed);
        }
        accepted
    }

    /// Adds (or replaces) a subscription and queues the retained messages it matches
    /// (none for a shared subscription). Returns `true` when the subscription is new.
    pub fn subscribe(
        &self,
        session: &Arc<Session>,
        filter: &str,
        options: SubscriptionOptions,
        identifier: Option<u32>,
    ) -> bool {
        let persisted = {
            let mut state = session.state();
            state.subscriptions.insert(filter, options, identifier);
            if let Some(p) = &state.persisted {
                p.store.append_durable(&[Record::Subscribe {
                    client: p.client.clone(),
                    filter: Bytes::copy_from_slice(filter.as_bytes()),
                    options: options.to_byte(ProtocolVersion::V5),
                    identifier,
                }]);
            }
            state.persisted.as_ref().map(|p| p.store.clone())
        };
        let is_new = self.index_subscription(session, filter, options, identifier);
        let send_retained = match options.retain_handling {
            RetainHandling::OnSubscribe => true,
            RetainHandling::OnNewSubscription => is_new,
            RetainHandling::Never => false,
        };
        if send_retained && SharedFilter::parse(filter).is_ok_and(|s| s.is_none()) {
            let now = Instant::now();
            let retained: Vec<Arc<Message>> = {
                let store = read(&self.retained);
                let matching: Vec<Arc<Message>> = store
                    .matching(filter)
                    .filter(|m| !m.is_expired(now))
                    .cloned()
                    .collect();
                // Pinned while the store's lock keeps them from being replaced, until the
                // deliveries that refer to them are logged.
                if let Some(store) = &persisted {
                    log_each_stored(store, &matching, Record::Pin);
                }
                matching
            };
            for message in &retained {
                let delivery = Delivery {
                    qos: message.qos.min(options.qos),
                    message: Arc::clone(message),
                    retain: true,
                    subscription_ids: identifier.into_iter().collect(),
                    shared: None,
                    stored: 0,
                };
                self.deliver(session, delivery);
            }
            if let Some(store) = &persisted {
                log_each_stored(store, &retained, Record::Unpin);
            }
        }
        is_new
    }

    /// Adds a subscription to the index that routing walks; `true` when it is new.
    pub(crate) fn index_subscription(
        &self,
        session: &Arc<Session>,
        filter: &str,
        options: SubscriptionOptions,
        identifier: Option<u32>,
    ) -> bool {
        if let Ok(Some(shared)) = SharedFilter::parse(filter) {
            // Retained messages are not sent for shared subscriptions (4.8.2).
            return write(&self.shared).subscribe(
                shared.group,
                shared.filter,
                session,
                options,
                identifier,
            );
        }
        let entry = Entry {
            subscriber: SessionRef(Arc::clone(session)),
            options,
            identifier,
        };
        write(&self.subscriptions).insert(filter, entry)
    }

    /// Removes a subscription; `true` if it existed.
    pub fn unsubscribe(&self, session: &Arc<Session>, filter: &str) -> bool {
        let mut state = session.state();
        state.subscriptions.remove(filter);
        if let Some(p) = &state.persisted {
            p.store.append(&[Record::Unsubscribe {
                client: p.client.clone(),
                filter: Bytes::copy_from_slice(filter.as_bytes()),
            }]);
        }
        drop(state);
        self.remove_from_index(session, filter)
    }

    fn drop_subscriptions(&self, session: &Arc<Session>) {
        let filters = session.state().subscriptions.take();
        for filter in filters {
            self.remove_from_index(session, &filter);
        }
    }

    fn remove_from_index(&self, session: &Arc<Session>, filter: &str) -> bool {
        match SharedFilter::parse(filter) {
            Ok(Some(shared)) => {
                write(&self.shared).unsubscribe(shared.group, shared.filter, session)
            }
            _ => write(&self.subscriptions).remove(filter, &SessionRef(Arc::clone(session))),
        }
    }

    pub fn subscription_count(&self) -> usize {
        read(&self.subscriptions).len() + read(&self.shared).len()
    }

    pub fn retained_count(&self) -> usize {
        read(&self.retained).len()
    }

    pub fn session_count(&self) -> usize {
        lock(&self.sessions).len()
    }

    /// Raises `event` on every connection that holds a session.
    pub fn raise_all(&self, event: Raised) {
        let sessions: Vec<Arc<Session>> = lock(&self.sessions).values().cloned().collect();
        for session in sessions {
            if let Some(owner) = &session.state().owner {
                owner.signal.raise(event);
            }
        }
    }
}

impl Broker {
    /// Starts or stops logging a session, as its expiry interval makes it persistent or
    /// not.
    fn log_session(&self, client_id: &str, state: &mut SessionState) {
        let Some(store) = &self.store else { return };
        if state.expiry_interval == 0 {
            end_persisted(state);
            return;
        }
        let p = state.persisted.get_or_insert_with(|| {
            Box::new(Persisted {
                store: store.clone(),
                client: Bytes::copy_from_slice(client_id.as_bytes()),
            })
        });
        store.append(&[Record::Session {
            client: p.client.clone(),
            expiry_interval: state.expiry_interval,
        }]);
    }

    /// Logs a retained message (or its clearing). `$` topics (`$SYS`) are the broker's
    /// own and regenerated, never restored.
    fn log_retained(&self, message: &Arc<Message>) {
        let Some(store) = &self.store else { return };
        if message.topic.starts_with('$') {
            return;
        }
        let topic = Bytes::copy_from_slice(message.topic.as_bytes());
        let mut records = Vec::with_capacity(2);
        if message.payload.is_empty() {
            records.push(Record::Unretain { topic });
        } else {
            records.extend(message_record(store, message));
            let id = message.stored().unwrap_or_default();
            records.push(Record::Retain { topic, message: id });
        }
        if message.qos == QoS::AtMostOnce {
            store.append(&records);
        } else {
            store.append_durable(&records);
        }
    }

    /// Registers a session recovered from the persistence log.
    pub(crate) fn restore_session(&self, session: Arc<Session>) {
        if let Some(at) = session.state().expires_at {
            lock(&self.expiring).push(Reverse((at, Arc::clone(&session.client_id))));
        }
        lock(&self.sessions).insert(Arc::clone(&session.client_id), session);
    }

    /// Puts back a retained message recovered from the persistence log.
    pub(crate) fn restore_retained(&self, message: &Arc<Message>) {
        write(&self.retained).update(message);
    }
}

/// The record that logs `message`, the first time it is needed (`None` once logged). It
/// comes pinned: the caller unpins it once it has logged what refers to it.
fn message_record(store: &Store, message: &Message) -> Option<Record> {
    if message.stored().is_some() {
        return None;
    }
    let id = store.next_id();
    message
        .stored_id
        .compare_exchange(0, id, Ordering::Relaxed, Ordering::Relaxed)
        .ok()?;
    Some(Record::Message {
        id,
        pins: 1,
        message: StoredMessage {
            topic: Bytes::copy_from_slice(message.topic.as_bytes()),
            payload: message.payload.clone(),
            properties: message.properties.clone(),
            qos: message.qos as u8,
            retain: message.retain,
            expires_at_ms: message.expires_at.map(persist::wall_ms),
            awaits_commit: message.is_held(),
        },
    })
}

/// Logs `record` (a pin or an unpin) for each of `messages` that is in the log.
fn log_each_stored(store: &Store, messages: &[Arc<Message>], record: fn(u64) -> Record) {
    let records: Vec<Record> = messages
        .iter()
        .filter_map(|m| m.stored())
        .map(record)
        .collect();
    store.append(&records);
}

/// Logs the end of a session, if it was logged.
fn end_persisted(state: &mut SessionState) {
    if let Some(p) = state.persisted.take() {
        p.store.append(&[Record::SessionEnd { client: p.client }]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn owner(connection_id: u64) -> Owner {
        Owner {
            connection_id,
            signal: Arc::default(),
        }
    }

    #[test]
    fn disconnected_session_expires_after_its_interval() {
        let broker = Broker::new(Limits::default());
        let attached = broker.attach("c", false, 10, owner(1));
        let options = SubscriptionOptions::new(QoS::AtMostOnce);
        broker.subscribe(&attached.session, "t", options, None);
        broker.detach(&attached.session, 1);
        let start = Instant::now();
        assert!(
            broker
                .expire_sessions(start + Duration::from_secs(5))
                .is_some()
        );
        assert_eq!(
            (broker.session_count(), broker.subscription_count()),
            (1, 1)
        );
        assert_eq!(
            broker.expire_sessions(start + Duration::from_secs(11)),
            None
        );
        assert_eq!(
            (broker.session_count(), broker.subscription_count()),
            (0, 0)
        );
    }

    #[test]
    fn reconnecting_cancels_the_pending_expiry() {
        let broker = Broker::new(Limits::default());
        let first = broker.attach("c", false, 10, owner(1));
        broker.detach(&first.session, 1);
        let again = broker.attach("c", false, 10, owner(2));
        assert!(again.session_present);
        broker.expire_sessions(Instant::now() + Duration::from_secs(11));
        assert_eq!(broker.session_count(), 1, "connected sessions never expire");
    }

    #[test]
    fn clean_session_ends_with_its_connection_and_takeover_keeps_it() {
        let broker = Broker::new(Limits::default());
        let first = broker.attach("c", true, 0, owner(1));
        let second = broker.attach("c", false, 0, owner(2));
        assert!(second.session_present);
        assert!(second.previous_owner.is_some_and(|o| o.connection_id == 1));
        broker.detach(&first.session, 1); // the old connection closing must not end it
        assert_eq!(broker.session_count(), 1);
        broker.detach(&second.session, 2);
        assert_eq!(broker.session_count(), 0);
    }

    #[test]
    fn clean_start_takeover_still_closes_the_old_connection() {
        let broker = Broker::new(Limits::default());
        let first = broker.attach("c", false, u32::MAX, owner(1));
        let second = broker.attach("c", true, 0, owner(2));
        assert!(!second.session_present);
        assert!(second.previous_owner.is_some_and(|o| o.connection_id == 1));
        broker.detach(&first.session, 1);
        assert_eq!(broker.session_count(), 1, "the new session stays");
    }

    #[test]
    fn shared_delivery_moves_to_another_member_when_its_member_leaves() {
        let broker = Broker::new(Limits::default());
        let a = broker.attach("a", true, 0, owner(1)).session;
        let b = broker.attach("b", true, 0, owner(2)).session;
        let options = SubscriptionOptions::new(QoS::AtLeastOnce);
        for s in [&a, &b] {
            broker.subscribe(s, "$share/g/t", options, None);
        }
        let publish = || {
            broker.publish(Message::new(
                "t",
                Bytes::from_static(b"m"),
                QoS::AtLeastOnce,
                false,
            ))
        };
        assert_eq!(publish() + publish(), 2);
        assert_eq!(
            (a.state().queued(), b.state().queued()),
            (1, 1),
            "round robin"
        );
        broker.detach(&a, 1);
        assert_eq!(
            b.state().queued(),
            2,
            "a's unacknowledged message went to b"
        );
        assert_eq!(
            broker.subscription_count(),
            1,
            "a's session ended and left the group"
        );
    }
}
