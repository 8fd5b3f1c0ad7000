//! Micro-benchmarks of the broker's per-message and per-connection lookups:
//! matching a topic against 10,000 subscriptions, and finding a session by client id
//! among 10,000.
//!
//! `cargo bench -p midge --bench routing`

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use midge::broker::Broker;
use midge::config::Limits;
use midge::session::Owner;
use midge::subscriptions::{Entry, SubscriptionTree};
use midge_wire::{QoS, SubscriptionOptions};

const SUBSCRIPTIONS: u32 = 10_000;

fn entry(subscriber: u32) -> Entry<u32> {
    Entry {
        subscriber,
        options: SubscriptionOptions::new(QoS::AtLeastOnce),
        identifier: None,
    }
}

/// 10,000 subscriptions shaped like a fleet of sensors: `site/S/dev/D/temp` for 100 sites
/// of 100 devices. With `wildcards`, one subscriber in ten is on `site/S/+/+/temp` and one
/// in ten on `site/S/dev/#` instead (ten each per site), so a walk follows `+` and `#`
/// branches too and a topic has about twenty matches.
fn tree(wildcards: bool) -> SubscriptionTree<u32> {
    let mut tree = SubscriptionTree::default();
    for i in 0..SUBSCRIPTIONS {
        let (site, device) = (i / 100, i % 100);
        let filter = match (wildcards, i % 10) {
            (true, 0) => format!("site/{site}/+/+/temp"),
            (true, 5) => format!("site/{site}/dev/#"),
            _ => format!("site/{site}/dev/{device}/temp"),
        };
        tree.insert(&filter, entry(i));
    }
    tree
}

fn topic_matching(c: &mut Criterion) {
    let mut group = c.benchmark_group("match 10k subscriptions");
    group.throughput(Throughput::Elements(1));
    for (name, wildcards) in [("literal filters", false), ("10% wildcards", true)] {
        let tree = tree(wildcards);
        assert_eq!(tree.len(), SUBSCRIPTIONS as usize);
        // A topic of a known site, and one nobody subscribed to.
        for topic in ["site/42/dev/17/temp", "site/420/dev/17/temp"] {
            let mut expected = 0;
            tree.for_each_match(topic, |_| expected += 1);
            let id = BenchmarkId::new(name, format!("{topic} ({expected} matches)"));
            group.bench_with_input(id, topic, |b, topic| {
                b.iter(|| {
                    let mut n = 0u32;
                    tree.for_each_match(black_box(topic), |e| n += e.subscriber & 1);
                    n
                })
            });
        }
    }
    group.finish();
}

fn session_lookup(c: &mut Criterion) {
    let broker = Broker::new(Limits::default());
    let owner = |connection_id| Owner {
        connection_id,
        signal: Arc::default(),
    };
    let ids: Vec<String> = (0..SUBSCRIPTIONS)
        .map(|i| format!("sensor-{i:05}"))
        .collect();
    for (n, id) in ids.iter().enumerate() {
        broker.attach(id, false, u32::MAX, owner(n as u64));
    }
    assert_eq!(broker.session_count(), ids.len());
    let mut group = c.benchmark_group("session lookup among 10k");
    group.throughput(Throughput::Elements(1));
    // A reconnect with clean start off: find the session by client id and take it over.
    let mut next = 0usize;
    let new_owner = owner(u64::MAX);
    group.bench_function("attach (resume)", |b| {
        b.iter(|| {
            next = (next + 7919) % ids.len();
            let attached = broker.attach(black_box(&ids[next]), false, u32::MAX, new_owner.clone());
            attached.session_present
        })
    });
    group.finish();
}

criterion_group!(benches, topic_matching, session_lookup);
criterion_main!(benches);
