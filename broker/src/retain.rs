//! Retained messages: the last retained message per topic.

use std::collections::HashMap;
use std::sync::Arc;

use midge_wire::topic;

use crate::message::Message;

#[derive(Debug, Default)]
pub struct RetainedStore {
    by_topic: HashMap<Box<str>, Arc<Message>>,
}

impl RetainedStore {
    /// Stores `message` as the retained one for its topic; an empty payload clears it.
    pub fn update(&mut self, message: &Arc<Message>) {
        if message.payload.is_empty() {
            self.by_topic.remove(&message.topic);
        } else {
            self.by_topic
                .insert(message.topic.clone(), Arc::clone(message));
        }
    }

    /// Retained messages whose topic matches `filter` (a valid, non-shared filter).
    pub fn matching<'a>(&'a self, filter: &'a str) -> impl Iterator<Item = &'a Arc<Message>> + 'a {
        self.by_topic
            .values()
            .filter(move |m| topic::matches(filter, &m.topic))
    }

    pub fn len(&self) -> usize {
        self.by_topic.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_topic.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use midge_wire::QoS;

    fn msg(topic: &str, payload: &'static [u8]) -> Arc<Message> {
        Arc::new(Message::new(
            topic,
            Bytes::from_static(payload),
            QoS::AtMostOnce,
            true,
        ))
    }

    #[test]
    fn stores_replaces_and_clears() {
        let mut store = RetainedStore::default();
        store.update(&msg("a/b", b"1"));
        store.update(&msg("a/b", b"2"));
        store.update(&msg("a/c", b"3"));
        assert_eq!(store.len(), 2);
        let got: Vec<_> = store.matching("a/b").map(|m| m.payload.clone()).collect();
        assert_eq!(got, [Bytes::from_static(b"2")]);
        assert_eq!(store.matching("a/+").count(), 2);
        assert_eq!(store.matching("#").count(), 2);
        store.update(&msg("a/b", b""));
        assert_eq!(store.len(), 1);
        assert_eq!(store.matching("a/b").count(), 0);
    }
}
