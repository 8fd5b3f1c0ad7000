//! Observe relations (RFC 7641) and the confirmable notifications in flight to each client.
//!
//! A relation belongs to a *client*, identified by the `clientid` query option when the
//! device gives one and by its UDP source address otherwise; the client's current address
//! is updated by every request it makes, so a NAT rebinding does not break its relations.
//! Each client has at most one confirmable notification outstanding (NSTART = 1) and a
//! short queue behind it; non-confirmable ones go out at once.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::query::Credentials;

pub type ObserverId = u64;

/// Who observes: the device's client id, or its address when it has none.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientKey {
    Id(String),
    Peer(SocketAddr),
}

/// RFC 7252 §4.8 default transmission parameters.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(2);
pub const ACK_RANDOM_FACTOR: f64 = 1.5;
pub const MAX_RETRANSMIT: u32 = 4;

#[derive(Debug)]
pub struct Observer {
    pub client: ClientKey,
    pub token: Vec<u8>,
    pub filter: String,
    /// The observed Uri-Path, for Block2 follow-up requests.
    pub path: String,
    pub session: Credentials,
    /// Block size exponent for notifications (the client's Block2 preference, or ours).
    pub szx: u8,
    /// False until the first response went out; messages meanwhile wait in `early`.
    pub established: bool,
    pub early: Vec<crate::broker::Message>,
    seq: u32,
    /// Where and with which Message ID the last notification went, to match an RST.
    last_sent: Option<(SocketAddr, u16)>,
}

impl Observer {
    pub fn new(
        client: ClientKey,
        token: Vec<u8>,
        filter: String,
        path: String,
        session: Credentials,
        szx: u8,
    ) -> Self {
        Self {
            client,
            token,
            filter,
            path,
            session,
            szx,
            established: false,
            early: Vec::new(),
            seq: 0,
            last_sent: None,
        }
    }

    /// The next Observe sequence number (24 bits, RFC 7641 §3.4).
    pub fn next_seq(&mut self) -> u32 {
        self.seq = (self.seq + 1) & 0xff_ffff;
        self.seq
    }
}

/// A confirmable notification waiting for its ACK.
#[derive(Debug)]
struct InFlight {
    observer: ObserverId,
    mid: u16,
    addr: SocketAddr,
    bytes: Vec<u8>,
    retransmits: u32,
    timeout: Duration,
    due: Instant,
}

/// A confirmable notification queued behind the one in flight; its Message ID is given
/// when it is sent.
#[derive(Debug)]
pub struct Queued {
    pub observer: ObserverId,
    /// The encoded message with a placeholder Message ID (bytes 2..4).
    pub bytes: Vec<u8>,
}

#[derive(Debug)]
struct Client {
    addr: SocketAddr,
    relations: usize,
    in_flight: Option<InFlight>,
    queue: VecDeque<Queued>,
}

/// What to send, to whom.
pub type Datagram = (SocketAddr, Vec<u8>);

#[derive(Debug, Default)]
pub struct Observers {
    observers: HashMap<ObserverId, Observer>,
    relations: HashMap<(ClientKey, Vec<u8>), ObserverId>,
    /// Routing: the broker session's filters and who observes each.
    by_session: HashMap<Credentials, HashMap<String, Vec<ObserverId>>>,
    clients: HashMap<ClientKey, Client>,
    waiting_ack: HashSet<ClientKey>,
    by_mid: HashMap<(SocketAddr, u16), ObserverId>,
    next_id: ObserverId,
    queue_limit: usize,
}

impl Observers {
    pub fn new(queue_limit: usize) -> Self {
        Self {
            queue_limit: queue_limit.max(1),
            ..Self::default()
        }
    }

    pub fn len(&self) -> usize {
        self.observers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.observers.is_empty()
    }

    pub fn get(&self, id: ObserverId) -> Option<&Observer> {
        self.observers.get(&id)
    }

    pub fn get_mut(&mut self, id: ObserverId) -> Option<&mut Observer> {
        self.observers.get_mut(&id)
    }

    pub fn find(&self, client: &ClientKey, token: &[u8]) -> Option<ObserverId> {
        self.relations
            .get(&(client.clone(), token.to_vec()))
            .copied()
    }

    /// Records that the client now sends from `addr`.
    pub fn touch(&mut self, client: &ClientKey, addr: SocketAddr) {
        if let Some(c) = self.clients.get_mut(client) {
            c.addr = addr;
        }
    }

    pub fn address(&self, client: &ClientKey) -> Option<SocketAddr> {
        self.clients.get(client).map(|c| c.addr)
    }

    /// Adds a relation; the caller has removed any earlier one with the same token.
    pub fn insert(&mut self, observer: Observer, addr: SocketAddr) -> ObserverId {
        self.next_id += 1;
        let id = self.next_id;
        self.relations
            .insert((observer.client.clone(), observer.token.clone()), id);
        self.by_session
            .entry(observer.session.clone())
            .or_default()
            .entry(observer.filter.clone())
            .or_default()
            .push(id);
        let client = self
            .clients
            .entry(observer.client.clone())
            .or_insert_with(|| Client {
                addr,
                relations: 0,
                in_flight: None,
                queue: VecDeque::new(),
            });
        client.addr = addr;
        client.relations += 1;
        self.observers.insert(id, observer);
        id
    }

    /// Ends a relation and forgets whatever was queued or in flight for it.
    pub fn remove(&mut self, id: ObserverId) -> Option<Observer> {
        let observer = self.observers.remove(&id)?;
        self.relations
            .remove(&(observer.client.clone(), observer.token.clone()));
        if let Some(filters) = self.by_session.get_mut(&observer.session) {
            if let Some(ids) = filters.get_mut(&observer.filter) {
                ids.retain(|i| *i != id);
                if ids.is_empty() {
                    filters.remove(&observer.filter);
                }
            }
            if filters.is_empty() {
                self.by_session.remove(&observer.session);
            }
        }
        if let Some(last) = observer.last_sent {
            self.by_mid.remove(&last);
        }
        if let Some(client) = self.clients.get_mut(&observer.client) {
            client.relations -= 1;
            client.queue.retain(|q| q.observer != id);
            if client.in_flight.as_ref().is_some_and(|f| f.observer == id) {
                client.in_flight = None;
            }
            if client.relations == 0 {
                self.clients.remove(&observer.client);
                self.waiting_ack.remove(&observer.client);
            }
        }
        Some(observer)
    }

    /// The relations of `session` whose filter matches `topic`.
    pub fn matching(&self, session: &Credentials, topic: &str) -> Vec<ObserverId> {
        let Some(filters) = self.by_session.get(session) else {
            return Vec::new();
        };
        filters
            .iter()
            .filter(|(filter, _)| crate::topic::matches(filter, topic))
            .flat_map(|(_, ids)| ids.iter().copied())
            .collect()
    }

    /// Every relation of `session`.
    pub fn of_session(&self, session: &Credentials) -> Vec<ObserverId> {
        self.by_session
            .get(session)
            .map(|filters| filters.values().flatten().copied().collect())
            .unwrap_or_default()
    }

    /// Records a non-confirmable notification sent with `mid`, so an RST can end the
    /// relation.
    pub fn sent_non(&mut self, id: ObserverId, addr: SocketAddr, mid: u16) {
        if let Some(observer) = self.observers.get_mut(&id) {
            if let Some(old) = observer.last_sent.replace((addr, mid)) {
                self.by_mid.remove(&old);
            }
            self.by_mid.insert((addr, mid), id);
        }
    }

    /// Sends a confirmable notification now if the client has none in flight, else queues
    /// it (dropping the oldest queued one when the queue is full: for a sensor value the
    /// newest matters). `bytes` has a placeholder Message ID that `mid` fills in.
    pub fn send_con(
        &mut self,
        queued: Queued,
        next_mid: &mut u16,
        jitter: f64,
        now: Instant,
    ) -> Option<Datagram> {
        let key = self.observers.get(&queued.observer)?.client.clone();
        let client = self.clients.get_mut(&key)?;
        if client.in_flight.is_some() {
            if client.queue.len() >= self.queue_limit {
                client.queue.pop_front();
            }
            client.queue.push_back(queued);
            return None;
        }
        self.waiting_ack.insert(key.clone());
        Some(self.transmit(&key, queued, next_mid, jitter, now))
    }

    fn transmit(
        &mut self,
        key: &ClientKey,
        queued: Queued,
        next_mid: &mut u16,
        jitter: f64,
        now: Instant,
    ) -> Datagram {
        *next_mid = next_mid.wrapping_add(1);
        let mid = *next_mid;
        let mut bytes = queued.bytes;
        bytes[2..4].copy_from_slice(&mid.to_be_bytes());
        let client = self
            .clients
            .get_mut(key)
            .expect("client of a live relation");
        let addr = client.addr;
        let timeout = ACK_TIMEOUT.mul_f64(1.0 + (ACK_RANDOM_FACTOR - 1.0) * jitter);
        client.in_flight = Some(InFlight {
            observer: queued.observer,
            mid,
            addr,
            bytes: bytes.clone(),
            retransmits: 0,
            timeout,
            due: now + timeout,
        });
        if let Some(observer) = self.observers.get_mut(&queued.observer)
            && let Some(old) = observer.last_sent.replace((addr, mid))
        {
            self.by_mid.remove(&old);
        }
        self.by_mid.insert((addr, mid), queued.observer);
        (addr, bytes)
    }

    /// An ACK from `addr`: if it acknowledges a notification, the next queued one goes.
    pub fn on_ack(
        &mut self,
        addr: SocketAddr,
        mid: u16,
        next_mid: &mut u16,
        jitter: f64,
        now: Instant,
    ) -> Option<Datagram> {
        let id = *self.by_mid.get(&(addr, mid))?;
        let key = self.observers.get(&id)?.client.clone();
        let client = self.clients.get_mut(&key)?;
        if !client
            .in_flight
            .as_ref()
            .is_some_and(|f| f.mid == mid && f.addr == addr)
        {
            return None;
        }
        client.in_flight = None;
        match client.queue.pop_front() {
            Some(next) => Some(self.transmit(&key, next, next_mid, jitter, now)),
            None => {
                self.waiting_ack.remove(&key);
                None
            }
        }
    }

    /// The relation an RST from `addr` rejects, if any (RFC 7641 §3.6: it ends).
    pub fn on_rst(&self, addr: SocketAddr, mid: u16) -> Option<ObserverId> {
        self.by_mid.get(&(addr, mid)).copied()
    }

    /// Retransmits what is due; returns the datagrams and the relations whose notification
    /// went unacknowledged MAX_RETRANSMIT times (RFC 7641 §4.5: they end).
    pub fn on_tick(&mut self, now: Instant) -> (Vec<Datagram>, Vec<ObserverId>) {
        let mut resend = Vec::new();
        let mut exhausted = Vec::new();
        for key in &self.waiting_ack {
            let Some(flight) = self.clients.get_mut(key).and_then(|c| c.in_flight.as_mut()) else {
                continue;
            };
            if flight.due > now {
                continue;
            }
            if flight.retransmits >= MAX_RETRANSMIT {
                exhausted.push(flight.observer);
                continue;
            }
            flight.retransmits += 1;
            flight.timeout *= 2;
            flight.due = now + flight.timeout;
            resend.push((flight.addr, flight.bytes.clone()));
        }
        (resend, exhausted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn observer(client: &str, token: u8, filter: &str) -> Observer {
        Observer::new(
            ClientKey::Id(client.into()),
            vec![token],
            filter.into(),
            format!("ps/{filter}"),
            Credentials::default(),
            6,
        )
    }

    fn queued(id: ObserverId, tag: u8) -> Queued {
        Queued {
            observer: id,
            bytes: vec![0x40, 0x45, 0, 0, tag],
        }
    }

    #[test]
    fn routing_by_filter() {
        let mut obs = Observers::new(4);
        let a = obs.insert(observer("c1", 1, "a/+"), addr(1));
        let b = obs.insert(observer("c2", 1, "a/b"), addr(2));
        obs.insert(observer("c3", 1, "x"), addr(3));
        let mut hits = obs.matching(&Credentials::default(), "a/b");
        hits.sort();
        assert_eq!(hits, [a, b]);
        assert!(
            obs.matching(
                &Credentials {
                    client_id: Some("z".into()),
                    ..Default::default()
                },
                "a/b"
            )
            .is_empty()
        );
        obs.remove(a);
        assert_eq!(obs.matching(&Credentials::default(), "a/b"), [b]);
        assert_eq!(obs.find(&ClientKey::Id("c2".into()), &[1]), Some(b));
    }

    #[test]
    fn one_confirmable_in_flight_per_client_and_bounded_queue() {
        let now = Instant::now();
        let mut obs = Observers::new(2);
        let a = obs.insert(observer("c", 1, "a"), addr(1));
        let b = obs.insert(observer("c", 2, "b"), addr(1));
        let mut mid = 100u16;
        let first = obs.send_con(queued(a, 1), &mut mid, 0.0, now).unwrap();
        assert_eq!(first, (addr(1), vec![0x40, 0x45, 0, 101, 1]));
        for tag in 2..=4 {
            assert!(obs.send_con(queued(b, tag), &mut mid, 0.0, now).is_none());
        }
        // ACK for an unknown MID does nothing; the right one releases the next (tag 2 was
        // dropped from the full queue).
        assert!(obs.on_ack(addr(1), 55, &mut mid, 0.0, now).is_none());
        let next = obs.on_ack(addr(1), 101, &mut mid, 0.0, now).unwrap();
        assert_eq!(next.1[4], 3);
        assert_eq!(
            obs.on_rst(addr(1), u16::from_be_bytes([next.1[2], next.1[3]])),
            Some(b)
        );
    }

    #[test]
    fn retransmits_with_back_off_then_gives_up() {
        let now = Instant::now();
        let mut obs = Observers::new(2);
        let a = obs.insert(observer("c", 1, "a"), addr(1));
        let mut mid = 6u16;
        obs.send_con(queued(a, 1), &mut mid, 0.5, now).unwrap();
        // The first timeout is ACK_TIMEOUT scaled by the jitter: 2.5 s here.
        assert!(obs.on_tick(now + Duration::from_millis(2400)).0.is_empty());
        let mut t = now;
        let mut waits = Vec::new();
        let mut last = now;
        for _ in 0..MAX_RETRANSMIT {
            loop {
                t += Duration::from_millis(100);
                let (resent, gone) = obs.on_tick(t);
                assert!(gone.is_empty());
                if !resent.is_empty() {
                    waits.push((t - last).as_millis());
                    last = t;
                    break;
                }
            }
        }
        assert_eq!(waits, [2500, 5000, 10000, 20000]);
        let (_, gone) = obs.on_tick(t + Duration::from_secs(40));
        assert_eq!(gone, [a]);
    }

    #[test]
    fn address_follows_the_client() {
        let mut obs = Observers::new(2);
        let key = ClientKey::Id("c".into());
        obs.insert(observer("c", 1, "a"), addr(1));
        obs.touch(&key, addr(9));
        assert_eq!(obs.address(&key), Some(addr(9)));
    }
}
