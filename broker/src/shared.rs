//! Shared subscriptions, `$share/{group}/{filter}`: each matching message goes to one
//! member of the group, round-robin, preferring members that are connected.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use midge_wire::SubscriptionOptions;

use crate::locks::lock;
use crate::session::Session;
use crate::subscriptions::{Entry, SubscriptionTree};

#[derive(Debug)]
struct Member {
    session: Arc<Session>,
    options: SubscriptionOptions,
    identifier: Option<u32>,
}

/// One shared subscription: a group name, a filter and the sessions in it.
#[derive(Debug)]
pub struct SharedGroup {
    members: Mutex<Vec<Member>>,
    next: AtomicUsize,
}

/// The member chosen for one message.
#[derive(Debug)]
pub struct Pick {
    pub session: Arc<Session>,
    pub options: SubscriptionOptions,
    pub identifier: Option<u32>,
}

impl SharedGroup {
    fn members(&self) -> std::sync::MutexGuard<'_, Vec<Member>> {
        lock(&self.members)
    }

    /// The next member after the last one picked, skipping `except`; a connected member if
    /// there is one, else an offline one (whose session queues the message).
    pub fn pick(&self, except: Option<&Arc<Session>>) -> Option<Pick> {
        let members = self.members();
        let n = members.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let candidates = (0..n)
            .map(|i| &members[(start + i) % n])
            .filter(|m| except.is_none_or(|e| !Arc::ptr_eq(e, &m.session)));
        let mut offline = None;
        for member in candidates {
            if member.session.state().owner.is_some() {
                return Some(member.pick());
            }
            offline.get_or_insert(member);
        }
        offline.map(Member::pick)
    }
}

impl Member {
    fn pick(&self) -> Pick {
        Pick {
            session: Arc::clone(&self.session),
            options: self.options,
            identifier: self.identifier,
        }
    }
}

/// A group as a subscriber in the tree: equal when it is the same group.
#[derive(Debug, Clone)]
pub struct GroupRef(pub Arc<SharedGroup>);

impl PartialEq for GroupRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Every shared subscription, matched like ordinary ones through a tree of groups.
#[derive(Debug, Default)]
pub struct SharedSubscriptions {
    groups: HashMap<(Box<str>, Box<str>), Arc<SharedGroup>>,
    tree: SubscriptionTree<GroupRef>,
    members: usize,
}

impl SharedSubscriptions {
    /// Adds `session` to the group (or updates its options); `true` if it is new there.
    pub fn subscribe(
        &mut self,
        group: &str,
        filter: &str,
        session: &Arc<Session>,
        options: SubscriptionOptions,
        identifier: Option<u32>,
    ) -> bool {
        let key = (Box::from(group), Box::from(filter));
        let shared = self.groups.entry(key).or_insert_with(|| {
            let shared = Arc::new(SharedGroup {
                members: Mutex::default(),
                next: AtomicUsize::new(0),
            });
            let entry = Entry {
                subscriber: GroupRef(Arc::clone(&shared)),
                options: SubscriptionOptions::new(midge_wire::QoS::ExactlyOnce),
                identifier: None,
            };
            self.tree.insert(filter, entry);
            shared
        });
        let mut members = shared.members();
        let member = Member {
            session: Arc::clone(session),
            options,
            identifier,
        };
        match members
            .iter_mut()
            .find(|m| Arc::ptr_eq(&m.session, session))
        {
            Some(existing) => {
                *existing = member;
                false
            }
            None => {
                members.push(member);
                self.members += 1;
                true
            }
        }
    }

    /// Removes `session` from the group, and the group once empty; `true` if it was there.
    pub fn unsubscribe(&mut self, group: &str, filter: &str, session: &Arc<Session>) -> bool {
        let key = (Box::from(group), Box::from(filter));
        let Some(shared) = self.groups.get(&key) else {
            return false;
        };
        let mut members = shared.members();
        let Some(i) = members
            .iter()
            .position(|m| Arc::ptr_eq(&m.session, session))
        else {
            return false;
        };
        members.remove(i);
        self.members -= 1;
        if members.is_empty() {
            drop(members);
            if let Some(shared) = self.groups.remove(&key) {
                self.tree.remove(filter, &GroupRef(shared));
            }
        }
        true
    }

    /// Calls `f` for every group whose filter matches `topic`.
    pub fn for_each_match(&self, topic: &str, mut f: impl FnMut(&Arc<SharedGroup>)) {
        self.tree
            .for_each_match(topic, |entry| f(&entry.subscriber.0));
    }

    /// Memberships across all groups.
    pub fn len(&self) -> usize {
        self.members
    }

    pub fn is_empty(&self) -> bool {
        self.members == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use midge_wire::QoS;

    fn session(id: &str) -> Arc<Session> {
        Arc::new(Session::new(id.into()))
    }

    fn picks(shared: &SharedSubscriptions, topic: &str, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        for _ in 0..n {
            shared.for_each_match(topic, |g| {
                out.push(
                    g.pick(None)
                        .map(|p| p.session.client_id.to_string())
                        .unwrap_or_default(),
                )
            });
        }
        out
    }

    #[test]
    fn round_robin_over_members_and_groups_are_independent() {
        let mut shared = SharedSubscriptions::default();
        let (a, b) = (session("a"), session("b"));
        let opts = SubscriptionOptions::new(QoS::AtLeastOnce);
        assert!(shared.subscribe("g", "t/+", &a, opts, None));
        assert!(shared.subscribe("g", "t/+", &b, opts, None));
        assert!(!shared.subscribe("g", "t/+", &b, opts, Some(4)));
        assert!(shared.subscribe("h", "t/#", &a, opts, None));
        let mut got = picks(&shared, "t/1", 2);
        got.sort();
        // Group g alternates between a and b over two messages; group h always picks a.
        assert_eq!(got.iter().filter(|s| *s == "a").count(), 3);
        assert_eq!(got.iter().filter(|s| *s == "b").count(), 1);
        assert_eq!(shared.len(), 3);
        assert!(shared.unsubscribe("g", "t/+", &a));
        assert!(shared.unsubscribe("g", "t/+", &b));
        assert!(!shared.unsubscribe("g", "t/+", &b));
        assert_eq!(picks(&shared, "t/1", 1), ["a"], "only group h is left");
    }

    #[test]
    fn pick_skips_the_excluded_member() {
        let mut shared = SharedSubscriptions::default();
        let (a, b) = (session("a"), session("b"));
        let opts = SubscriptionOptions::new(QoS::AtLeastOnce);
        shared.subscribe("g", "t", &a, opts, None);
        shared.subscribe("g", "t", &b, opts, None);
        shared.for_each_match("t", |g| {
            for _ in 0..4 {
                assert_eq!(&*g.pick(Some(&a)).unwrap().session.client_id, "b");
            }
        });
    }
}
