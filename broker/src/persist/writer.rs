//! The writer thread: moves appended records to the current segment and syncs them,
//! rotates segments, and starts compaction when closed segments outgrow the snapshot.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::BytesMut;
use tracing::{error, warn};

use super::files::DataDir;
use super::{Durability, Inner, Tuning};
use crate::locks::lock;

/// Longest a record nobody waits for stays in memory (`sync` durability).
pub const LAZY_FLUSH: Duration = Duration::from_secs(1);

/// How long a failed write or sync (card full, card gone) waits before trying again.
/// Acknowledgements wait meanwhile: nothing is acknowledged that is not on disk.
const RETRY: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct Writer {
    dir: Arc<DataDir>,
    file: File,
    offset: u64,
    generation: u64,
    /// Generation of the newest snapshot, and its size.
    snapshot: (u64, u64),
    /// Bytes in closed segments not yet compacted.
    closed_bytes: u64,
    compaction: Option<Compaction>,
    tuning: Tuning,
}

#[derive(Debug)]
struct Compaction {
    /// The snapshot it writes (replacing segments before it).
    generation: u64,
    closed_bytes: u64,
    thread: JoinHandle<io::Result<u64>>,
}

impl Writer {
    /// A writer appending to a new segment `generation`, after snapshot `generation`.
    pub fn start(
        dir: DataDir,
        generation: u64,
        snapshot_bytes: u64,
        tuning: Tuning,
    ) -> io::Result<Self> {
        let file = new_segment(&dir, generation)?;
        Ok(Self {
            dir: Arc::new(dir),
            file,
            offset: 0,
            generation,
            snapshot: (generation, snapshot_bytes),
            closed_bytes: 0,
            compaction: None,
            tuning,
        })
    }

    pub fn run(mut self, inner: &Inner, durability: Durability) {
        let mut spare = BytesMut::new();
        loop {
            let (mut buf, seq, closing) = {
                let mut pending = lock(&inner.pending);
                match durability {
                    Durability::Periodic(interval) if !pending.closing => {
                        pending = inner
                            .wake
                            .wait_timeout(pending, interval)
                            .map_or_else(|e| e.into_inner().0, |(p, _)| p);
                    }
                    Durability::Periodic(_) => {}
                    _ => {
                        while !pending.closing && !pending.sync_wanted {
                            if pending.buf.is_empty() {
                                pending =
                                    inner.wake.wait(pending).unwrap_or_else(|e| e.into_inner());
                                continue;
                            }
                            let (p, waited) = inner
                                .wake
                                .wait_timeout(pending, LAZY_FLUSH)
                                .unwrap_or_else(|e| e.into_inner());
                            pending = p;
                            if waited.timed_out() {
                                break;
                            }
                        }
                    }
                }
                pending.sync_wanted = false;
                let buf = std::mem::replace(&mut pending.buf, spare);
                (buf, pending.seq, pending.closing)
            };
            if !buf.is_empty() {
                self.write(&buf);
            }
            inner.durable.send_replace(seq);
            buf.clear();
            spare = buf;
            if closing {
                if let Some(c) = self.compaction.take() {
                    let _ = c.thread.join();
                }
                return;
            }
            self.maintain();
        }
    }

    /// Writes and syncs `buf` at the end of the segment, retrying until it succeeds.
    fn write(&mut self, buf: &[u8]) {
        let mut failing = false;
        loop {
            let done = self
                .file
                .write_all_at(buf, self.offset)
                .and_then(|()| self.file.sync_data());
            match done {
                Ok(()) => break,
                Err(e) => {
                    if !failing {
                        error!(
                            "cannot write to {}: {e}; acknowledgements wait until it can",
                            self.dir.log_path(self.generation).display()
                        );
                        failing = true;
                    }
                    std::thread::sleep(RETRY);
                }
            }
        }
        if failing {
            warn!("writing to the data directory works again");
        }
        self.offset += buf.len() as u64;
    }

    /// Rotates the segment when it is full; starts or collects compaction.
    fn maintain(&mut self) {
        if let Some(c) = self.compaction.take_if(|c| c.thread.is_finished()) {
            match c.thread.join() {
                Ok(Ok(bytes)) => {
                    self.snapshot = (c.generation, bytes);
                    self.closed_bytes -= c.closed_bytes;
                }
                Ok(Err(e)) => {
                    error!("compaction failed: {e}; the log keeps growing until it works")
                }
                Err(_) => error!("compaction panicked; the log keeps growing"),
            }
        }
        if self.offset < self.tuning.segment_bytes {
            return;
        }
        match new_segment(&self.dir, self.generation + 1) {
            Ok(file) => {
                self.file = file;
                self.generation += 1;
                self.closed_bytes += self.offset;
                self.offset = 0;
            }
            Err(e) => {
                error!("cannot start a new log segment: {e}");
                return;
            }
        }
        let due = self.closed_bytes >= self.tuning.compact_min_bytes.max(self.snapshot.1);
        if due && self.compaction.is_none() {
            let dir = Arc::clone(&self.dir);
            let generation = self.generation;
            let spawned = std::thread::Builder::new()
                .name("midge-compact".into())
                .spawn(move || {
                    let (state, _) = dir.load_until(generation - 1)?;
                    dir.write_snapshot(generation, &state)
                });
            match spawned {
                Ok(thread) => {
                    self.compaction = Some(Compaction {
                        generation,
                        closed_bytes: self.closed_bytes,
                        thread,
                    })
                }
                Err(e) => error!("cannot start compaction: {e}"),
            }
        }
    }
}

fn new_segment(dir: &DataDir, generation: u64) -> io::Result<File> {
    let file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(dir.log_path(generation))?;
    dir.sync()?;
    Ok(file)
}
