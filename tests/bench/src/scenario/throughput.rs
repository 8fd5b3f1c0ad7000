//! The throughput scenarios (fanin, fanout, pairs): publishers send as fast as the broker
//! delivers for a fixed time, subscribers account for every message.
//!
//! Publishers are held back end to end: a publisher may be at most `window` messages
//! ahead of what its subscribers received. That keeps the broker's queues short, so what
//! is measured is sustained delivery, not how much a broker can buffer, and a broker that
//! drops messages shows up as loss instead of as speed.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use midge_wire::{Packet, QoS, QosPid};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::{Outcome, Settings};
use crate::broker::Broker;
use crate::mqtt::{Client, PublishTemplate, Reader, Stamp, puback};
use crate::proc::{CpuSample, Memory};
use crate::seq::{Counts, Tracker};

/// Who publishes where and who listens to what.
#[derive(Debug, Clone)]
pub struct Topology {
    /// One topic per publisher.
    pub publishers: Vec<String>,
    /// A filter per subscriber, and the publishers whose messages it must receive.
    pub subscribers: Vec<(String, Vec<usize>)>,
    pub qos: QoS,
}

impl Topology {
    /// `p` publishers on topics of their own, one subscriber on a wildcard over them.
    pub fn fanin(p: usize, qos: QoS) -> Self {
        Self {
            publishers: (0..p).map(|i| format!("bench/fanin/{i}")).collect(),
            subscribers: vec![("bench/fanin/+".to_owned(), (0..p).collect())],
            qos,
        }
    }

    /// One publisher, `n` subscribers of its topic.
    pub fn fanout(n: usize, qos: QoS) -> Self {
        Self {
            publishers: vec!["bench/fanout".to_owned()],
            subscribers: (0..n)
                .map(|_| ("bench/fanout".to_owned(), vec![0]))
                .collect(),
            qos,
        }
    }

    /// `k` publisher → subscriber pairs, each on its own topic.
    pub fn pairs(k: usize, qos: QoS) -> Self {
        Self {
            publishers: (0..k).map(|i| format!("bench/pair/{i}")).collect(),
            subscribers: (0..k)
                .map(|i| (format!("bench/pair/{i}"), vec![i]))
                .collect(),
            qos,
        }
    }
}

/// One publisher's progress, shared with the subscribers that wake it.
#[derive(Debug, Default)]
pub(super) struct Progress {
    /// Messages of this publisher received, summed over its subscribers.
    pub(super) delivered: AtomicU64,
    /// PUBACKs received (QoS 1).
    pub(super) acked: AtomicU64,
    /// How many subscribers receive each of its messages.
    pub(super) fans: u64,
    pub(super) wake: Notify,
}

/// Packet ids in use at once stay well below 65535 so none is reused while in flight.
const MAX_UNACKED: u64 = 30_000;

impl Progress {
    fn has_room(&self, sent: u64, batch: u64, window: u64, qos1: bool) -> bool {
        let delivered = self.delivered.load(Ordering::Acquire);
        (sent + batch) * self.fans <= delivered + window * self.fans
            && (!qos1 || sent + batch - self.acked.load(Ordering::Acquire) <= MAX_UNACKED)
    }
}

/// After the publishers stop: how long without a single new message before the run is
/// declared over and whatever is missing counted as lost.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

pub async fn run(broker: &mut Broker, topo: &Topology, s: &Settings) -> Result<Outcome, String> {
    let addr = broker.addr;
    let qos1 = topo.qos == QoS::AtLeastOnce;
    let fans = |p: usize| {
        topo.subscribers
            .iter()
            .filter(|(_, e)| e.contains(&p))
            .count()
    };
    let progress: Arc<[Progress]> = (0..topo.publishers.len())
        .map(|p| Progress {
            fans: fans(p) as u64,
            ..Progress::default()
        })
        .collect();

    // Everyone connected and subscribed before the clock starts.
    let mut subscribers = Vec::new();
    for (i, (filter, _)) in topo.subscribers.iter().enumerate() {
        let id = format!("bench-sub-{i}");
        let connected = if s.persistent {
            Client::connect_persistent(addr, &id).await
        } else {
            Client::connect(addr, &id).await
        };
        let mut client = connected.map_err(|e| format!("subscriber {i}: {e}"))?;
        client
            .subscribe(filter, topo.qos)
            .await
            .map_err(|e| format!("subscriber {i}: {e}"))?;
        subscribers.push(client);
    }
    let mut publishers = Vec::new();
    for i in 0..topo.publishers.len() {
        publishers.push(
            Client::connect(addr, &format!("bench-pub-{i}"))
                .await
                .map_err(|e| format!("publisher {i}: {e}"))?,
        );
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let unique: Arc<[AtomicU64]> = topo.subscribers.iter().map(|_| AtomicU64::new(0)).collect();
    let sub_tasks: Vec<JoinHandle<io::Result<Received>>> = subscribers
        .into_iter()
        .enumerate()
        .map(|(i, client)| {
            tokio::spawn(receive(
                client,
                i,
                topo.publishers.len(),
                Arc::clone(&progress),
                Arc::clone(&unique),
                stop_rx.clone(),
            ))
        })
        .collect();

    let broker_before = CpuSample::take(Some(broker.pid())).map_err(|e| e.to_string())?;
    let self_before = CpuSample::take(None).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let deadline = t0 + s.duration;
    let pub_tasks: Vec<_> = publishers
        .into_iter()
        .enumerate()
        .map(|(i, client)| {
            let template = PublishTemplate::new(&topo.publishers[i], topo.qos, s.payload);
            tokio::spawn(publish(
                client,
                i,
                template,
                Arc::clone(&progress),
                deadline,
                *s,
                qos1,
            ))
        })
        .collect();

    let mut sent = Vec::new();
    let mut keep_open = Vec::new();
    for (i, task) in pub_tasks.into_iter().enumerate() {
        let (n, writer, acks) = task
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("publisher {i}: {e}"))?;
        sent.push(n);
        keep_open.push((writer, acks));
    }

    // Drain: wait until every subscriber has everything (and, at QoS 1, every PUBACK is
    // in), or until nothing moves any more.
    let expected: u64 = topo
        .subscribers
        .iter()
        .map(|(_, pubs)| pubs.iter().map(|&p| sent[p]).sum::<u64>())
        .sum();
    let received = || {
        unique
            .iter()
            .map(|u| u.load(Ordering::Acquire))
            .sum::<u64>()
    };
    let all_acked = || {
        !qos1
            || progress
                .iter()
                .zip(&sent)
                .all(|(p, &n)| p.acked.load(Ordering::Acquire) >= n)
    };
    let mut last_count = received();
    let mut last_move = Instant::now();
    while received() < expected || !all_acked() {
        tokio::time::sleep(Duration::from_millis(2)).await;
        let now = received()
            + progress
                .iter()
                .map(|p| p.acked.load(Ordering::Relaxed))
                .sum::<u64>();
        if now != last_count {
            last_count = now;
            last_move = Instant::now();
        } else if last_move.elapsed() > DRAIN_TIMEOUT {
            break;
        }
    }
    let broker_after = CpuSample::take(Some(broker.pid())).map_err(|e| e.to_string())?;
    let self_after = CpuSample::take(None).map_err(|e| e.to_string())?;
    let memory = Memory::of(broker.pid()).map_err(|e| e.to_string())?;
    broker.check_alive()?;

    let _ = stop_tx.send(true);
    let mut counts = Counts::default();
    let mut last_rx = t0;
    let mut foreign = 0;
    for (i, task) in sub_tasks.into_iter().enumerate() {
        let r = task
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("subscriber {i}: {e}"))?;
        let expects = &topo.subscribers[i].1;
        counts += r.tracker.counts(|p| expects.contains(&p).then(|| sent[p]));
        foreign += r.tracker.foreign;
        last_rx = last_rx.max(r.last_rx.unwrap_or(t0));
    }
    let unacked: u64 = progress
        .iter()
        .zip(&sent)
        .map(|(p, &n)| n.saturating_sub(p.acked.load(Ordering::Acquire)))
        .sum();
    for (_, acks) in keep_open {
        if let Some(acks) = acks {
            acks.abort();
        }
    }

    let elapsed = last_rx.duration_since(t0).as_secs_f64().max(1e-3);
    let broker_cpu = broker_before.until(&broker_after);
    let gen_cpu = self_before.until(&self_after);
    let mut outcome = Outcome::default();
    outcome.metric("throughput [msg/s]", counts.unique as f64 / elapsed);
    outcome.metric("delivered [msg]", counts.unique as f64);
    outcome.metric(
        "broker CPU [s per 100k msg]",
        broker_cpu.cpu_s / (counts.unique.max(1) as f64) * 1e5,
    );
    outcome.metric("broker CPU [% of a core]", broker_cpu.percent());
    outcome.metric("broker peak RSS [MiB]", memory.peak_kib as f64 / 1024.0);
    outcome.metric("generator CPU [% of a core]", gen_cpu.percent());
    outcome.metric("lost", counts.lost as f64);
    outcome.metric("duplicates", counts.duplicates as f64);
    outcome.metric("reordered", counts.reordered as f64);
    if qos1 {
        outcome.metric("publishes without PUBACK", unacked as f64);
    }
    if foreign > 0 {
        outcome.fail(format!("{foreign} messages with a foreign payload"));
    }
    if qos1 && (counts.lost > 0 || unacked > 0) {
        outcome.fail(format!(
            "QoS 1: {} of {expected} messages lost, {unacked} publishes never acknowledged",
            counts.lost
        ));
    }
    Ok(outcome)
}

/// What a publisher task hands back: messages sent, and its sockets kept open until the
/// run is over (closing them early could cut off PUBACKs still on their way).
type Published = (u64, OwnedWriteHalf, Option<JoinHandle<()>>);

async fn publish(
    client: Client,
    id: usize,
    template: PublishTemplate,
    progress: Arc<[Progress]>,
    deadline: Instant,
    s: Settings,
    qos1: bool,
) -> io::Result<Published> {
    let Client { reader, mut writer } = client;
    let acks = qos1.then(|| tokio::spawn(count_pubacks(reader, Arc::clone(&progress), id)));
    let me = &progress[id];
    let batch = s.batch.min(s.window) as u64;
    let mut buf = Vec::new();
    let mut seq = 0u64;
    'run: while Instant::now() < deadline {
        while !me.has_room(seq, batch, s.window as u64, qos1) {
            // Woken by the subscribers; the timeout only rechecks the deadline.
            let _ = tokio::time::timeout(Duration::from_millis(50), me.wake.notified()).await;
            if Instant::now() >= deadline {
                break 'run;
            }
        }
        for _ in 0..batch {
            // Packet ids 1..=65535 in turn; MAX_UNACKED keeps them unique while in flight.
            let packet_id = (seq % 65535) as u16 + 1;
            let stamp = Stamp {
                publisher: id as u32,
                seq,
                due_ns: 0,
            };
            template.append(&mut buf, packet_id, stamp);
            seq += 1;
        }
        writer.write_all(&buf).await?;
        buf.clear();
    }
    Ok((seq, writer, acks))
}

pub(super) async fn count_pubacks(mut reader: Reader, progress: Arc<[Progress]>, id: usize) {
    let me = &progress[id];
    loop {
        let mut n = 0;
        match reader
            .read_batch(|p| {
                if matches!(p, Packet::Puback(_)) {
                    n += 1;
                }
            })
            .await
        {
            Ok(true) => {
                me.acked.fetch_add(n, Ordering::Release);
                me.wake.notify_one();
            }
            // The run's end (or a broker gone, which the run reports as unacknowledged).
            Ok(false) | Err(_) => return,
        }
    }
}

#[derive(Debug)]
struct Received {
    tracker: Tracker,
    last_rx: Option<Instant>,
}

async fn receive(
    client: Client,
    me: usize,
    publishers: usize,
    progress: Arc<[Progress]>,
    unique: Arc<[AtomicU64]>,
    mut stop: watch::Receiver<bool>,
) -> io::Result<Received> {
    let Client {
        mut reader,
        mut writer,
    } = client;
    let mut tracker = Tracker::new(publishers);
    let mut last_rx = None;
    // Per read: messages from each publisher, and which publishers to wake.
    let mut got = vec![0u64; publishers];
    let mut touched: Vec<usize> = Vec::new();
    let mut acks = Vec::new();
    loop {
        let mut new = 0;
        let open = tokio::select! {
            biased;
            _ = stop.changed() => break,
            r = reader.read_batch(|packet| {
                let Packet::Publish(p) = packet else { return };
                if let QosPid::AtLeastOnce(id) = p.qos_pid {
                    acks.extend_from_slice(&puback(id));
                }
                let Some(stamp) = Stamp::read(p.payload) else {
                    tracker.foreign += 1;
                    return;
                };
                new += u64::from(tracker.record(stamp.publisher, stamp.seq));
                if let Some(n) = got.get_mut(stamp.publisher as usize) {
                    if *n == 0 {
                        touched.push(stamp.publisher as usize);
                    }
                    *n += 1;
                }
            }) => r?,
        };
        if !open {
            return Err(io::Error::other("broker closed the connection"));
        }
        if !acks.is_empty() {
            // All PUBACKs of one read in one write.
            writer.write_all(&acks).await?;
            acks.clear();
        }
        if !touched.is_empty() {
            last_rx = Some(Instant::now());
        }
        for p in touched.drain(..) {
            progress[p]
                .delivered
                .fetch_add(std::mem::take(&mut got[p]), Ordering::Release);
            progress[p].wake.notify_one();
        }
        unique[me].fetch_add(new, Ordering::Release);
    }
    Ok(Received { tracker, last_rx })
}
