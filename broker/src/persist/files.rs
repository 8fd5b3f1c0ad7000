//! The data directory: `snapshot.N` holds the state as of the start of `log.N`; the log
//! segments `log.N`, `log.N+1`… hold what happened since, the newest being written.
//! A snapshot is written to a temporary name and renamed into place once synced, so a
//! crash leaves the old one or the new one, never half of one. Files older than the
//! newest snapshot are removed once it is in place.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tracing::{error, info, warn};

use super::frame::{self, Ending};
use super::record::Record;
use super::state::State;

const LOCK: &str = "midge.lock";

/// Why the data directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DirError {
    #[error(
        "cannot use data directory {dir}: {source}; create it writable for this user, or \
         choose another with --data-dir (or data_dir / persistence_location), or run with \
         --persistence off"
    )]
    Unusable { dir: PathBuf, source: io::Error },
    #[error(
        "data directory {dir} is in use by another midge process; stop it, or give this \
         one its own --data-dir"
    )]
    Locked { dir: PathBuf },
}

/// Where state lives when no directory is configured: `/var/lib/midge` for root (the
/// system service), else the user's state directory (`$XDG_STATE_HOME/midge`, by
/// default `~/.local/state/midge`).
pub fn default_dir() -> PathBuf {
    let root = fs::metadata("/proc/self").is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    if root {
        return PathBuf::from("/var/lib/midge");
    }
    let state_home = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/state")));
    state_home.map_or_else(|| PathBuf::from("midge-data"), |d| d.join("midge"))
}

/// The data directory, locked for this process for as long as it lives.
#[derive(Debug)]
pub struct DataDir {
    pub path: PathBuf,
    _lock: File,
}

impl DataDir {
    pub fn open(path: &Path) -> Result<Self, DirError> {
        let unusable = |source| DirError::Unusable {
            dir: path.to_owned(),
            source,
        };
        fs::create_dir_all(path).map_err(unusable)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path.join(LOCK))
            .map_err(unusable)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(DirError::Locked {
                    dir: path.to_owned(),
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(unusable(e)),
        }
        Ok(Self {
            path: path.to_owned(),
            _lock: lock,
        })
    }

    pub fn log_path(&self, generation: u64) -> PathBuf {
        self.path.join(format!("log.{generation:016}"))
    }

    fn snapshot_path(&self, generation: u64) -> PathBuf {
        self.path.join(format!("snapshot.{generation:016}"))
    }

    /// Generations of the snapshots and log segments present, each sorted.
    fn generations(&self) -> io::Result<(Vec<u64>, Vec<u64>)> {
        let mut snapshots = Vec::new();
        let mut logs = Vec::new();
        for entry in fs::read_dir(&self.path)? {
            let name = entry?.file_name();
            let Some(name) = name.to_str() else { continue };
            let parsed = |prefix: &str| name.strip_prefix(prefix)?.parse::<u64>().ok();
            if let Some(g) = parsed("snapshot.") {
                snapshots.push(g);
            } else if let Some(g) = parsed("log.") {
                logs.push(g);
            }
        }
        snapshots.sort_unstable();
        logs.sort_unstable();
        Ok((snapshots, logs))
    }

    /// Makes renames and new files in the directory durable.
    pub fn sync(&self) -> io::Result<()> {
        File::open(&self.path)?.sync_all()
    }

    /// Rebuilds the state from the newest snapshot and the segments after it. A torn tail
    /// is cut off; a damaged file is reported, moved aside and the records before the
    /// damage kept. Returns the state and the generation of the newest segment read
    /// (the next generation is free). Segments after `last` are left out (compaction
    /// reads only closed ones).
    pub fn load_until(&self, last: u64) -> io::Result<(State, u64)> {
        let (snapshots, logs) = self.generations()?;
        let mut state = State::default();
        let mut base = 0;
        // The newest readable snapshot; an unreadable one falls back to the one before
        // it (kept until the newer one was in place).
        for &generation in snapshots.iter().rev() {
            let path = self.snapshot_path(generation);
            let data = Bytes::from(fs::read(&path)?);
            let (records, ending) = frame::read_all(&data);
            let complete = ending == Ending::Clean
                && matches!(records.last(), Some(Record::End { records: n }) if *n as usize == records.len() - 1);
            if complete {
                for record in records {
                    state.apply(record);
                }
                base = generation;
                break;
            }
            let reason = match ending {
                Ending::Clean => "it has no end record".to_string(),
                Ending::Torn { offset } => format!("it ends early at byte {offset}"),
                Ending::Corrupt { offset, reason } => format!("{reason} at byte {offset}"),
            };
            self.move_aside(&path, &format!("snapshot is incomplete: {reason}"));
        }
        let mut newest = base;
        for &generation in logs.iter().filter(|&&g| g >= base && g <= last) {
            let path = self.log_path(generation);
            let data = Bytes::from(fs::read(&path)?);
            let (records, ending) = frame::read_all(&data);
            let count = records.len();
            for record in records {
                state.apply(record);
            }
            match ending {
                Ending::Clean => {}
                Ending::Torn { offset } => warn!(
                    "{}: discarded {} bytes of an incomplete write at its end (power loss or \
                     crash during a write; nothing acknowledged is lost)",
                    path.display(),
                    data.len() - offset
                ),
                Ending::Corrupt { offset, reason } => self.move_aside(
                    &path,
                    &format!("{reason} at byte {offset}; recovered the {count} records before it"),
                ),
            }
            newest = generation;
        }
        Ok((state, newest))
    }

    /// Renames a damaged file out of the way, keeping it for inspection.
    fn move_aside(&self, path: &Path, why: &str) {
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let aside = path.with_file_name(format!("{name}.corrupt-{stamp}"));
        match fs::rename(path, &aside) {
            Ok(()) => error!(
                "{} is corrupt ({why}); moved aside to {}",
                path.display(),
                aside.display()
            ),
            Err(e) => error!(
                "{} is corrupt ({why}) and could not be moved aside: {e}",
                path.display()
            ),
        }
    }

    /// Writes `state` as snapshot `generation`, durably, and removes the snapshots and
    /// segments it replaces. Returns the snapshot's size in bytes.
    pub fn write_snapshot(&self, generation: u64, state: &State) -> io::Result<u64> {
        let data = state.snapshot();
        let path = self.snapshot_path(generation);
        let tmp = path.with_extension("tmp");
        {
            let mut file = File::create(&tmp)?;
            io::Write::write_all(&mut file, &data)?;
            file.sync_all()?;
        }
        fs::rename(&tmp, &path)?;
        self.sync()?;
        let (snapshots, logs) = self.generations()?;
        for g in snapshots.into_iter().filter(|&g| g < generation) {
            remove(&self.snapshot_path(g));
        }
        for g in logs.into_iter().filter(|&g| g < generation) {
            remove(&self.log_path(g));
        }
        info!("wrote snapshot {} ({} bytes)", path.display(), data.len());
        Ok(data.len() as u64)
    }
}

fn remove(path: &Path) {
    if let Err(e) = fs::remove_file(path) {
        warn!("cannot remove {}: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::record::StoredMessage;

    fn retained(id: u64, topic: &str) -> [Record; 3] {
        [
            Record::Message {
                id,
                pins: 1,
                message: StoredMessage {
                    topic: Bytes::copy_from_slice(topic.as_bytes()),
                    payload: Bytes::from_static(b"v"),
                    properties: Bytes::new(),
                    qos: 0,
                    retain: true,
                    expires_at_ms: None,
                    awaits_commit: false,
                },
            },
            Record::Retain {
                topic: Bytes::copy_from_slice(topic.as_bytes()),
                message: id,
            },
            Record::Unpin(id),
        ]
    }

    fn write_log(dir: &DataDir, generation: u64, records: &[Record]) -> Vec<u8> {
        let mut out = bytes::BytesMut::new();
        for r in records {
            frame::put(&mut out, r);
        }
        fs::write(dir.log_path(generation), &out).unwrap();
        out.to_vec()
    }

    #[test]
    fn a_second_process_cannot_open_a_locked_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let _first = DataDir::open(tmp.path()).unwrap();
        let second = DataDir::open(tmp.path());
        assert!(matches!(second, Err(DirError::Locked { .. })), "{second:?}");
    }

    #[test]
    fn snapshot_then_segments_and_old_files_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path()).unwrap();
        write_log(&dir, 1, &retained(1, "a"));
        let (state, last) = dir.load_until(u64::MAX).unwrap();
        assert_eq!((state.retained.len(), last), (1, 1));
        dir.write_snapshot(2, &state).unwrap();
        write_log(&dir, 2, &retained(2, "b"));
        assert!(!dir.log_path(1).exists(), "the snapshot replaced log 1");
        let (state, last) = dir.load_until(u64::MAX).unwrap();
        assert_eq!((state.retained.len(), last), (2, 2));
    }

    #[test]
    fn torn_tail_is_cut_and_corrupt_segment_moved_aside() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path()).unwrap();
        let mut records = retained(1, "a").to_vec();
        records.extend(retained(2, "b"));
        let bytes = write_log(&dir, 1, &records);
        // Cut inside the Retain of "b": it and the Unpin after it (17 bytes) are torn off.
        fs::write(dir.log_path(1), &bytes[..bytes.len() - 17 - 3]).unwrap();
        let (state, _) = dir.load_until(u64::MAX).unwrap();
        assert_eq!(state.retained.len(), 1);
        assert_eq!(state.messages.len(), 2, "b's message is still pinned");
        assert!(dir.log_path(1).exists());

        let mut damaged = bytes.clone();
        damaged[20] ^= 0xff; // inside the first record
        fs::write(dir.log_path(1), &damaged).unwrap();
        let (state, _) = dir.load_until(u64::MAX).unwrap();
        assert!(state.retained.is_empty());
        assert!(!dir.log_path(1).exists(), "moved aside");
        let aside = fs::read_dir(tmp.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().contains(".corrupt-"));
        assert!(aside);
    }

    #[test]
    fn an_incomplete_snapshot_falls_back_to_the_previous_one() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(tmp.path()).unwrap();
        let mut state = State::default();
        for r in retained(1, "a") {
            state.apply(r);
        }
        dir.write_snapshot(1, &state).unwrap();
        let good = fs::read(dir.snapshot_path(1)).unwrap();
        // A snapshot 2 cut short (only possible by damage: snapshots are renamed in whole).
        fs::write(dir.snapshot_path(2), &good[..good.len() - 12]).unwrap();
        let (state, _) = dir.load_until(u64::MAX).unwrap();
        assert_eq!(state.retained.len(), 1);
    }
}
