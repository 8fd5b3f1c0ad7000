//! Message-ID de-duplication (RFC 7252 §4.5): a request that arrives again with the same
//! Message ID from the same endpoint within EXCHANGE_LIFETIME is not processed again; the
//! response sent the first time is sent again instead.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// RFC 7252 §4.8.2 with the default transmission parameters.
pub const EXCHANGE_LIFETIME: Duration = Duration::from_secs(247);
pub const NON_LIFETIME: Duration = Duration::from_secs(145);

type Key = (SocketAddr, u16);

#[derive(Debug)]
enum State {
    /// Being processed (waiting for the broker): a duplicate is dropped, the client's
    /// retransmission after the answer is ready gets the answer.
    InProgress,
    /// Answered with these bytes (`None`: nothing was sent, e.g. a NON with No-Response).
    Answered(Option<Vec<u8>>),
}

#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    New,
    InProgress,
    Answered(Option<Vec<u8>>),
}

#[derive(Debug)]
struct Entry {
    state: State,
    expires: Instant,
}

/// Recently seen (peer, Message ID) pairs, at most `capacity` of them: past that the oldest
/// are forgotten, which bounds memory under a flood of new Message IDs.
#[derive(Debug)]
pub struct Dedup {
    entries: HashMap<Key, Entry>,
    order: VecDeque<(Instant, Key)>,
    capacity: usize,
}

impl Dedup {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    /// Looks the message up and, if it is new, records it as in progress.
    pub fn check(&mut self, peer: SocketAddr, mid: u16, lifetime: Duration, now: Instant) -> Seen {
        let key = (peer, mid);
        match self.entries.get(&key) {
            Some(entry) if entry.expires > now => {
                return match &entry.state {
                    State::InProgress => Seen::InProgress,
                    State::Answered(bytes) => Seen::Answered(bytes.clone()),
                };
            }
            _ => {}
        }
        self.expire(now);
        while self.entries.len() >= self.capacity {
            let Some((_, oldest)) = self.order.pop_front() else {
                break;
            };
            self.entries.remove(&oldest);
        }
        let expires = now + lifetime;
        self.entries.insert(
            key,
            Entry {
                state: State::InProgress,
                expires,
            },
        );
        self.order.push_back((expires, key));
        Seen::New
    }

    /// Records the answer to replay for duplicates.
    pub fn answer(&mut self, peer: SocketAddr, mid: u16, bytes: Option<Vec<u8>>) {
        if let Some(entry) = self.entries.get_mut(&(peer, mid)) {
            entry.state = State::Answered(bytes);
        }
    }

    /// Forgets entries older than their lifetime. Entries expire in the order they were
    /// made (each kind has one lifetime, and NON's is shorter, so an occasional NON waits a
    /// little longer behind a CON: harmless).
    pub fn expire(&mut self, now: Instant) {
        while let Some(&(expires, key)) = self.order.front() {
            if expires > now && self.order.len() <= self.capacity {
                break;
            }
            self.order.pop_front();
            if self.entries.get(&key).is_some_and(|e| e.expires <= expires) {
                self.entries.remove(&key);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn duplicates_replay_the_answer() {
        let now = Instant::now();
        let mut d = Dedup::new(10);
        assert_eq!(d.check(peer(1), 7, EXCHANGE_LIFETIME, now), Seen::New);
        assert_eq!(
            d.check(peer(1), 7, EXCHANGE_LIFETIME, now),
            Seen::InProgress
        );
        d.answer(peer(1), 7, Some(vec![1, 2]));
        assert_eq!(
            d.check(peer(1), 7, EXCHANGE_LIFETIME, now),
            Seen::Answered(Some(vec![1, 2]))
        );
        // Same ID from another endpoint is another message.
        assert_eq!(d.check(peer(2), 7, EXCHANGE_LIFETIME, now), Seen::New);
        // After the lifetime the ID is new again.
        let later = now + EXCHANGE_LIFETIME + Duration::from_secs(1);
        assert_eq!(d.check(peer(1), 7, EXCHANGE_LIFETIME, later), Seen::New);
    }

    #[test]
    fn bounded() {
        let now = Instant::now();
        let mut d = Dedup::new(100);
        for mid in 0..1000 {
            d.check(peer(1), mid, EXCHANGE_LIFETIME, now);
        }
        assert_eq!(d.len(), 100);
        assert_eq!(
            d.check(peer(1), 999, EXCHANGE_LIFETIME, now),
            Seen::InProgress
        );
        assert_eq!(d.check(peer(1), 0, EXCHANGE_LIFETIME, now), Seen::New);
        d.expire(now + EXCHANGE_LIFETIME);
        assert!(d.is_empty());
    }
}
