//! A slow subscriber: QoS 1 publishers keep sending while the one subscriber reads
//! nothing. The broker may keep only its configured queue for that subscriber
//! ([`QUEUE_LIMIT`] queued plus the in-flight window, for both brokers), so its memory
//! must stay bounded however long the subscriber stalls; what does not fit is dropped,
//! by design, so loss is reported here but is no failure.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use midge_wire::{Packet, QoS, QosPid};
use tokio::io::AsyncWriteExt;

use super::throughput::{Progress, count_pubacks};
use super::{Outcome, Settings};
use crate::broker::Broker;
use crate::mqtt::{Client, PublishTemplate, Stamp, puback};
use crate::proc::Memory;
use crate::seq::Tracker;

/// `max_queued_messages` in this scenario: Mosquitto's default.
pub const QUEUE_LIMIT: u32 = 1000;
/// PUBACKs a publisher may wait for at once.
const UNACKED: u64 = 1000;
/// The subscriber's drain ends after this long without a message.
const QUIET: Duration = Duration::from_secs(1);

pub async fn run(broker: &mut Broker, s: &Settings) -> Result<Outcome, String> {
    let addr = broker.addr;
    let mut subscriber = Client::connect(addr, "bench-slow-sub")
        .await
        .map_err(|e| format!("subscriber: {e}"))?;
    subscriber
        .subscribe("bench/slow/+", QoS::AtLeastOnce)
        .await
        .map_err(|e| format!("subscriber: {e}"))?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let idle = Memory::of(broker.pid()).map_err(|e| e.to_string())?;

    let publishers = s.fanin_publishers;
    let progress: Arc<[Progress]> = (0..publishers).map(|_| Progress::default()).collect();
    let deadline = Instant::now() + s.duration;
    let mut tasks = Vec::new();
    for id in 0..publishers {
        let client = Client::connect(addr, &format!("bench-slow-pub-{id}"))
            .await
            .map_err(|e| format!("publisher {id}: {e}"))?;
        let template =
            PublishTemplate::new(&format!("bench/slow/{id}"), QoS::AtLeastOnce, s.payload);
        let progress = Arc::clone(&progress);
        let batch = s.batch as u64;
        tasks.push(tokio::spawn(async move {
            let Client { reader, mut writer } = client;
            let acks = tokio::spawn(count_pubacks(reader, Arc::clone(&progress), id));
            let me = &progress[id];
            let (mut seq, mut buf) = (0u64, Vec::new());
            while Instant::now() < deadline {
                if seq + batch - me.acked.load(Ordering::Acquire) > UNACKED {
                    let _ =
                        tokio::time::timeout(Duration::from_millis(50), me.wake.notified()).await;
                    continue;
                }
                for _ in 0..batch {
                    let stamp = Stamp {
                        publisher: id as u32,
                        seq,
                        due_ns: 0,
                    };
                    template.append(&mut buf, (seq % 65535) as u16 + 1, stamp);
                    seq += 1;
                }
                writer.write_all(&buf).await?;
                buf.clear();
            }
            Ok::<_, std::io::Error>((seq, writer, acks))
        }));
    }
    let mut sent = Vec::new();
    let mut keep_open = Vec::new();
    for (id, task) in tasks.into_iter().enumerate() {
        let (n, writer, acks) = task
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("publisher {id}: {e}"))?;
        sent.push(n);
        keep_open.push((writer, acks));
    }
    let stalled = Memory::of(broker.pid()).map_err(|e| e.to_string())?;
    broker.check_alive()?;

    // Now the subscriber reads (and acknowledges) whatever the broker kept for it.
    let mut tracker = Tracker::new(publishers);
    let mut pubacks = Vec::new();
    loop {
        let read = tokio::time::timeout(
            QUIET,
            subscriber.reader.read_batch(|packet| {
                let Packet::Publish(p) = packet else { return };
                if let QosPid::AtLeastOnce(id) = p.qos_pid {
                    pubacks.extend_from_slice(&puback(id));
                }
                match Stamp::read(p.payload) {
                    Some(stamp) => {
                        tracker.record(stamp.publisher, stamp.seq);
                    }
                    None => tracker.foreign += 1,
                }
            }),
        )
        .await;
        match read {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return Err("broker closed the subscriber's connection".to_owned()),
            Ok(Err(e)) => return Err(format!("subscriber: {e}")),
            Err(_) => break,
        }
        subscriber
            .writer
            .write_all(&pubacks)
            .await
            .map_err(|e| format!("subscriber: {e}"))?;
        pubacks.clear();
    }
    for (_, acks) in keep_open {
        acks.abort();
    }
    let counts = tracker.counts(|p| sent.get(p).copied());
    let published: u64 = sent.iter().sum();

    let mut outcome = Outcome::default();
    outcome.metric("published [msg]", published as f64);
    outcome.metric("delivered after the stall [msg]", counts.unique as f64);
    outcome.metric("dropped by the broker [msg]", counts.lost as f64);
    outcome.metric("broker peak RSS [MiB]", stalled.peak_kib as f64 / 1024.0);
    outcome.metric(
        "peak RSS above idle [MiB]",
        (stalled.peak_kib as f64 - idle.rss_kib as f64) / 1024.0,
    );
    outcome.metric("duplicates", counts.duplicates as f64);
    outcome.metric("reordered", counts.reordered as f64);
    if tracker.foreign > 0 {
        outcome.fail(format!(
            "{} messages with a foreign payload",
            tracker.foreign
        ));
    }
    Ok(outcome)
}
