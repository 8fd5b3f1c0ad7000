//! The subscription index: a tree of topic levels, matched once per PUBLISH.
//!
//! Each node is one level of a filter. Literal levels are children by name, `+` is one
//! extra child, and subscribers of `…/#` sit on the node of the level before the `#`, so a
//! topic is matched by walking its levels once and visiting at most two children per level.

use std::collections::HashMap;

use midge_wire::SubscriptionOptions;

/// One subscription as stored in the tree.
#[derive(Debug, Clone)]
pub struct Entry<S> {
    pub subscriber: S,
    pub options: SubscriptionOptions,
    /// MQTT 5 Subscription Identifier.
    pub identifier: Option<u32>,
}

/// Most nodes are leaves with one subscriber (`devices/1234/cmd`): a leaf holds no map,
/// and its lists are allocated to fit, as every subscribed client pays for its node.
#[derive(Debug)]
struct Node<S> {
    // Boxed on purpose: 8 bytes in a leaf instead of an empty map's 48.
    #[allow(clippy::box_collection)]
    children: Option<Box<HashMap<Box<str>, Node<S>>>>,
    plus: Option<Box<Node<S>>>,
    /// Subscribers whose filter ends here.
    exact: Vec<Entry<S>>,
    /// Subscribers of this level followed by `#`.
    hash: Vec<Entry<S>>,
}

impl<S> Default for Node<S> {
    fn default() -> Self {
        Self {
            children: None,
            plus: None,
            exact: Vec::new(),
            hash: Vec::new(),
        }
    }
}

impl<S> Node<S> {
    fn is_empty(&self) -> bool {
        self.children.is_none()
            && self.plus.is_none()
            && self.exact.is_empty()
            && self.hash.is_empty()
    }
}

/// Subscriptions of every session, keyed by filter. `S` identifies a subscriber; two
/// subscriptions of the same subscriber to the same filter are one subscription.
#[derive(Debug)]
pub struct SubscriptionTree<S> {
    root: Node<S>,
    count: usize,
}

impl<S> Default for SubscriptionTree<S> {
    fn default() -> Self {
        Self {
            root: Node::default(),
            count: 0,
        }
    }
}

impl<S: PartialEq> SubscriptionTree<S> {
    /// Number of subscriptions in the tree.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Adds or replaces the subscription of `entry.subscriber` to `filter` (a valid,
    /// non-shared filter). Returns `true` when it is new.
    pub fn insert(&mut self, filter: &str, entry: Entry<S>) -> bool {
        let (node, list) = self.slot(filter);
        let list = match list {
            Slot::Exact => &mut node.exact,
            Slot::Hash => &mut node.hash,
        };
        match list.iter_mut().find(|e| e.subscriber == entry.subscriber) {
            Some(existing) => {
                *existing = entry;
                false
            }
            None => {
                if list.len() < 4 {
                    list.reserve_exact(1);
                }
                list.push(entry);
                self.count += 1;
                true
            }
        }
    }

    /// Removes the subscription of `subscriber` to `filter`; `true` if there was one.
    pub fn remove(&mut self, filter: &str, subscriber: &S) -> bool {
        let removed = remove_in(&mut self.root, filter.split('/'), subscriber);
        if removed {
            self.count -= 1;
        }
        removed
    }

    /// Calls `f` for every subscription matching `topic` (a valid topic name).
    pub fn for_each_match<'t>(&'t self, topic: &str, mut f: impl FnMut(&'t Entry<S>)) {
        // [MQTT-4.7.2-1]: wildcards at the first level do not match $-topics.
        walk(&self.root, topic.split('/'), topic.starts_with('$'), &mut f);
    }

    fn slot(&mut self, filter: &str) -> (&mut Node<S>, Slot) {
        let mut node = &mut self.root;
        let mut levels = filter.split('/').peekable();
        while let Some(level) = levels.next() {
            if level == "#" && levels.peek().is_none() {
                return (node, Slot::Hash);
            }
            node = if level == "+" {
                node.plus.get_or_insert_with(Default::default)
            } else {
                node.children
                    .get_or_insert_with(Default::default)
                    .entry(level.into())
                    .or_default()
            };
        }
        (node, Slot::Exact)
    }
}

enum Slot {
    Exact,
    Hash,
}

fn walk<'t, S>(
    node: &'t Node<S>,
    mut levels: std::str::Split<'_, char>,
    dollar_root: bool,
    f: &mut impl FnMut(&'t Entry<S>),
) {
    if !dollar_root {
        node.hash.iter().for_each(&mut *f);
    }
    let Some(level) = levels.next() else {
        node.exact.iter().for_each(f);
        return;
    };
    if let Some(child) = node.children.as_ref().and_then(|c| c.get(level)) {
        walk(child, levels.clone(), false, f);
    }
    if let (Some(plus), false) = (&node.plus, dollar_root) {
        walk(plus, levels, false, f);
    }
}

/// Removes the entry and prunes nodes left empty on the way back up.
fn remove_in<S: PartialEq>(
    node: &mut Node<S>,
    mut levels: std::str::Split<'_, char>,
    subscriber: &S,
) -> bool {
    let take =
        |list: &mut Vec<Entry<S>>| match list.iter().position(|e| e.subscriber == *subscriber) {
            Some(i) => {
                list.swap_remove(i);
                true
            }
            None => false,
        };
    let Some(level) = levels.next() else {
        return take(&mut node.exact);
    };
    if level == "#" && levels.clone().next().is_none() {
        return take(&mut node.hash);
    }
    if level == "+" {
        let Some(child) = node.plus.as_deref_mut() else {
            return false;
        };
        let removed = remove_in(child, levels, subscriber);
        if child.is_empty() {
            node.plus = None;
        }
        removed
    } else {
        let Some(children) = node.children.as_deref_mut() else {
            return false;
        };
        let Some(child) = children.get_mut(level) else {
            return false;
        };
        let removed = remove_in(child, levels, subscriber);
        if child.is_empty() {
            children.remove(level);
            if children.is_empty() {
                node.children = None;
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use midge_wire::{QoS, topic};

    fn entry(s: u32) -> Entry<u32> {
        Entry {
            subscriber: s,
            options: SubscriptionOptions::new(QoS::AtMostOnce),
            identifier: None,
        }
    }

    fn matches(tree: &SubscriptionTree<u32>, topic: &str) -> Vec<u32> {
        let mut out = Vec::new();
        tree.for_each_match(topic, |e| out.push(e.subscriber));
        out.sort_unstable();
        out
    }

    #[test]
    fn agrees_with_the_codec_matcher() {
        let filters = [
            "#", "+", "a/#", "a/+", "a/b", "+/b", "+/+", "/+", "a/+/c", "$SYS/#", "+/#", "a/b/#",
        ];
        let topics = ["a", "a/b", "a/b/c", "/x", "b/b", "$SYS/x", "a/", "x/y/z"];
        let mut tree = SubscriptionTree::default();
        for (i, f) in filters.iter().enumerate() {
            assert!(tree.insert(f, entry(i as u32)));
        }
        assert_eq!(tree.len(), filters.len());
        for t in topics {
            let expected: Vec<u32> = (0..filters.len() as u32)
                .filter(|&i| topic::matches(filters[i as usize], t))
                .collect();
            assert_eq!(matches(&tree, t), expected, "topic {t}");
        }
    }

    #[test]
    fn insert_replaces_and_remove_prunes() {
        let mut tree = SubscriptionTree::default();
        assert!(tree.insert("a/+/c", entry(1)));
        assert!(!tree.insert("a/+/c", entry(1)));
        assert!(tree.insert("a/+/c", entry(2)));
        assert_eq!(tree.len(), 2);
        assert!(tree.remove("a/+/c", &1));
        assert!(!tree.remove("a/+/c", &1));
        assert!(!tree.remove("a/b", &2));
        assert_eq!(matches(&tree, "a/x/c"), [2]);
        assert!(tree.remove("a/+/c", &2));
        assert!(tree.root.is_empty(), "empty branches are pruned");
        assert!(tree.is_empty());
    }
}
