//! Persistence: retained messages and persistent sessions survive a restart, a crash and
//! a power cut.
//!
//! The broker appends a [`Record`] for every change to what must survive (a message
//! queued for a persistent session, its acknowledgement, a subscription…) to an in-memory
//! buffer; one writer thread writes the buffer out and syncs it. Everything that arrived
//! while the previous sync ran goes out with the next one, so many messages share an
//! fsync (group commit). In `sync` durability a connection sends its PUBACK/PUBREC (and
//! SUBACK, and QoS 2 PUBLISHes to persistent sessions) only once the records they depend
//! on are durable; in `periodic` the writer syncs every interval and nobody waits.
//!
//! On disk it is a log of records with a checksum each (`frame.rs`), in segments, and a
//! snapshot of the live state that compaction rewrites when enough has been appended
//! since (`files.rs`, `writer.rs`): appends cost what they write, never a page rewrite.

mod files;
mod frame;
pub mod record;
mod state;
mod writer;

use std::cell::Cell;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use crate::locks::lock;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use tokio::sync::watch;
use tracing::info;

pub use files::{DataDir, DirError, default_dir};
pub use record::Record;
pub use state::State;

/// When acknowledged messages are on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Before they are acknowledged (fsyncs shared by everything arriving together).
    Sync,
    /// Within this interval; a power cut loses at most the last interval.
    Periodic(Duration),
    /// Never: memory only.
    Off,
}

/// Sizes that decide when segments rotate and compaction runs.
#[derive(Debug, Clone, Copy)]
pub struct Tuning {
    /// A segment is closed and a new one started past this size.
    pub segment_bytes: u64,
    /// Closed segments are compacted into a new snapshot once they add up to this much
    /// and to more than the snapshot itself.
    pub compact_min_bytes: u64,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            segment_bytes: 16 << 20,
            compact_min_bytes: 16 << 20,
        }
    }
}

thread_local! {
    /// The last record this thread appended that an acknowledgement must wait for. The
    /// connection's task reads it after handling input, on the same thread, without any
    /// await in between.
    static MUST_SYNC: Cell<u64> = const { Cell::new(0) };
}

/// The sequence number of the last record appended on this thread since the last call
/// that must be durable before anything now in the connection's output is sent (0: none).
pub fn take_unsynced() -> u64 {
    MUST_SYNC.with(|c| c.replace(0))
}

/// A handle on the log; clones share it.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pending: Mutex<Pending>,
    wake: Condvar,
    /// Sequence number of the last record on disk.
    durable: watch::Sender<u64>,
    /// Whether acknowledgements wait for the disk (`sync` durability).
    waits: bool,
    next_id: AtomicU64,
    writer: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Debug, Default)]
struct Pending {
    /// Framed records not yet handed to the writer.
    buf: BytesMut,
    /// Sequence number of the last record appended.
    seq: u64,
    /// Someone waits for the records in `buf` to be durable.
    sync_wanted: bool,
    closing: bool,
}

impl Store {
    /// Opens the data directory: recovers the state, writes it back as a fresh snapshot
    /// (so a damaged or torn file is left behind), and starts the writer. `durability`
    /// must not be `Off`: then there is no store.
    pub fn open(dir: DataDir, durability: Durability, tuning: Tuning) -> io::Result<(Self, State)> {
        let started = Instant::now();
        let (mut state, last) = dir.load_until(u64::MAX)?;
        state.prune(now_ms());
        let generation = last + 1;
        let snapshot_bytes = dir.write_snapshot(generation, &state)?;
        info!(
            "recovered {} retained messages, {} sessions and {} queued messages from {} in {} ms",
            state.retained.len(),
            state.sessions.len(),
            state.deliveries.len(),
            dir.path.display(),
            started.elapsed().as_millis()
        );
        let inner = Arc::new(Inner {
            pending: Mutex::default(),
            wake: Condvar::new(),
            durable: watch::Sender::new(0),
            waits: durability == Durability::Sync,
            next_id: AtomicU64::new(state.max_id + 1),
            writer: Mutex::new(None),
        });
        let writer = writer::Writer::start(dir, generation, snapshot_bytes, tuning)?;
        let handle = {
            let inner = Arc::clone(&inner);
            std::thread::Builder::new()
                .name("midge-persist".into())
                .spawn(move || writer.run(&inner, durability))?
        };
        *lock(&inner.writer) = Some(handle);
        Ok((Self { inner }, state))
    }

    /// A new message or delivery id.
    pub fn next_id(&self) -> u64 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Appends records whose loss in a crash is harmless (an acknowledgement that comes
    /// back as a duplicate, a disconnect time): they go out with the next sync, or within
    /// [`writer::LAZY_FLUSH`], so a stream of acknowledgements costs no fsync of its own.
    pub fn append(&self, records: &[Record]) {
        self.push(records, false);
    }

    /// Appends records that whatever the current connection sends next depends on: its
    /// task waits until they are durable ([`take_unsynced`], [`Store::wait_durable`]).
    pub fn append_durable(&self, records: &[Record]) {
        let seq = self.push(records, self.inner.waits);
        if self.inner.waits {
            MUST_SYNC.with(|c| c.set(seq));
        }
    }

    fn push(&self, records: &[Record], sync_now: bool) -> u64 {
        let mut pending = lock(&self.inner.pending);
        // An idle writer sleeps until told: told when a sync is wanted, or when records
        // arrive that are to go out within LAZY_FLUSH.
        let wake = sync_now || (self.inner.waits && pending.buf.is_empty());
        for record in records {
            frame::put(&mut pending.buf, record);
        }
        pending.seq += records.len() as u64;
        pending.sync_wanted |= sync_now;
        let seq = pending.seq;
        drop(pending);
        if wake {
            self.inner.wake.notify_one();
        }
        seq
    }

    /// Waits until record `seq` is on disk.
    pub async fn wait_durable(&self, seq: u64) {
        let mut durable = self.inner.durable.subscribe();
        // The sender lives as long as `self`, so this only ends when the record is durable.
        let _ = durable.wait_for(|&d| d >= seq).await;
    }

    /// Writes out and syncs everything appended, and stops the writer.
    pub fn close(&self) {
        lock(&self.inner.pending).closing = true;
        self.inner.wake.notify_one();
        if let Some(writer) = lock(&self.inner.writer).take() {
            let _ = writer.join();
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The wall-clock time (ms) of `at`, an instant of this process.
pub fn wall_ms(at: Instant) -> u64 {
    let now = Instant::now();
    match at.checked_duration_since(now) {
        Some(ahead) => now_ms() + ahead.as_millis() as u64,
        None => now_ms().saturating_sub(now.duration_since(at).as_millis() as u64),
    }
}

/// The instant of this process at wall-clock time `ms`.
pub fn instant_at(ms: u64) -> Instant {
    let now = Instant::now();
    let wall = now_ms();
    if ms >= wall {
        now + Duration::from_millis(ms - wall)
    } else {
        now.checked_sub(Duration::from_millis(wall - ms))
            .unwrap_or(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use record::StoredMessage;

    fn retain(store: &Store, topic: &str, value: u32) {
        let id = store.next_id();
        let topic = Bytes::copy_from_slice(topic.as_bytes());
        store.append_durable(&[
            Record::Message {
                id,
                pins: 1,
                message: StoredMessage {
                    topic: topic.clone(),
                    payload: Bytes::from(value.to_string()),
                    properties: Bytes::new(),
                    qos: 1,
                    retain: true,
                    expires_at_ms: None,
                    awaits_commit: false,
                },
            },
            Record::Retain { topic, message: id },
        ]);
        store.append(&[Record::Unpin(id)]);
    }

    fn files(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }

    #[test]
    fn segments_rotate_and_compaction_keeps_only_the_live_state() {
        let tmp = tempfile::tempdir().unwrap();
        let tuning = Tuning {
            segment_bytes: 4096,
            compact_min_bytes: 8192,
        };
        let open = || {
            let dir = DataDir::open(tmp.path()).unwrap();
            Store::open(dir, Durability::Sync, tuning).unwrap()
        };
        let (store, state) = open();
        assert!(state.retained.is_empty());
        for i in 0..3000 {
            retain(&store, &format!("t/{}", i % 10), i);
            if i % 500 == 0 {
                // Let the writer catch up now and then, so segments rotate as they fill.
                let seq = take_unsynced();
                block_on(store.wait_durable(seq));
            }
        }
        store.close();
        // 3000 updates of ~60 bytes are ~180 KB of log; compaction left a snapshot of the
        // ten live messages and a few segments.
        assert!(files(tmp.path()) < 20, "{} files", files(tmp.path()));
        let (store, state) = open();
        assert_eq!(state.retained.len(), 10);
        assert_eq!(state.messages.len(), 10, "replaced messages are gone");
        let latest: Vec<String> = (0..10)
            .map(|t| {
                let id = state.retained[format!("t/{t}").as_bytes()];
                String::from_utf8(state.messages[&id].message.payload.to_vec()).unwrap()
            })
            .collect();
        let expected: Vec<String> = (2990..3000).map(|i| i.to_string()).collect();
        assert_eq!(latest, expected);
        assert!(store.next_id() > state.max_id);
        store.close();
    }

    #[test]
    fn records_nobody_waits_for_reach_the_disk_within_the_lazy_flush() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path()).unwrap();
        let (store, _) = Store::open(dir, Durability::Sync, Tuning::default()).unwrap();
        retain(&store, "t", 1);
        block_on(store.wait_durable(take_unsynced()));
        let log_len = || {
            std::fs::read_dir(tmp.path())
                .unwrap()
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("log."))
                .map(|e| e.metadata().unwrap().len())
                .sum::<u64>()
        };
        let before = log_len();
        store.append(&[Record::Done(12345)]); // nobody waits for it
        std::thread::sleep(writer::LAZY_FLUSH + Duration::from_millis(500));
        assert_eq!(log_len(), before + 17, "written without a sync asked for");
        store.close();
    }

    /// Runs a future to completion on this thread (the store's waits need no runtime
    /// beyond a waker).
    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }
}
