//! Segment records in append-only files beside sled (`DATA_DIR/archive/`):
//! sled keeps only a small pointer per segment ([`Location`]), so its page
//! cache holds indexes instead of session bodies and an archive batch is
//! one file write and one fsync instead of a sled insert per body.
//!
//! Files are numbered and never appended to after a restart (a torn tail
//! of a crashed file is never pointed at: records are synced before their
//! pointers are written). Each file's live records are counted; a file
//! with none left is deleted only after sled has been flushed since
//! ([`RecordFiles::take_dead`], then [`RecordFiles::delete`]), so no durable
//! pointer can outlive the bytes it points at.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::store::StoreError;
use crate::wal::SyncObserver;

/// A file takes no more appends past this size.
const FILE_BYTES_MAX: u64 = 64 << 20;

/// Open read handles kept, at most.
const READ_HANDLES_MAX: usize = 64;

/// Where a record lives: file, offset, length and CRC-32 of its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub file: u32,
    pub offset: u64,
    pub len: u32,
    pub crc: u32,
}

impl Location {
    pub const ENCODED_LEN: usize = 20;

    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0; Self::ENCODED_LEN];
        out[..4].copy_from_slice(&self.file.to_be_bytes());
        out[4..12].copy_from_slice(&self.offset.to_be_bytes());
        out[12..16].copy_from_slice(&self.len.to_be_bytes());
        out[16..].copy_from_slice(&self.crc.to_be_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let b: &[u8; Self::ENCODED_LEN] = bytes.try_into().ok()?;
        let u32_at = |at: usize| u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let offset = u64::from_be_bytes([b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11]]);
        Some(Self { file: u32_at(0), offset, len: u32_at(12), crc: u32_at(16) })
    }
}

#[derive(Debug)]
struct Writer {
    /// The file appended to, once one is opened: (number, handle, length).
    current: Option<(u32, File, u64)>,
    /// The number the next file gets.
    next: u32,
}

#[derive(Debug)]
pub struct RecordFiles {
    dir: PathBuf,
    observer: Option<SyncObserver>,
    writer: Mutex<Writer>,
    /// Live records per file (pointers to it in sled).
    live: Mutex<BTreeMap<u32, u64>>,
    /// Files with no live record left, deleted at the next sweep.
    dead: Mutex<BTreeSet<u32>>,
    readers: Mutex<HashMap<u32, Arc<File>>>,
}

impl RecordFiles {
    /// Opens the directory (created if missing). Appends go to a new file
    /// after every existing one. Call [`Self::count`] for every pointer
    /// found in sled, then [`Self::drop_unreferenced`].
    pub fn open(dir: &Path, observer: Option<SyncObserver>) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, &e))?;
        let next = existing(dir)?.last().map_or(0, |n| n + 1);
        Ok(Self {
            dir: dir.to_path_buf(),
            observer,
            writer: Mutex::new(Writer { current: None, next }),
            live: Mutex::new(BTreeMap::new()),
            dead: Mutex::new(BTreeSet::new()),
            readers: Mutex::new(HashMap::new()),
        })
    }

    /// Counts a pointer found in sled at open.
    pub fn count(&self, at: &Location) {
        *self.live.lock().entry(at.file).or_default() += 1;
    }

    /// Deletes files no pointer refers to (at open sled holds exactly
    /// what is durable, so nothing can point at them later).
    pub fn drop_unreferenced(&self) -> Result<(), StoreError> {
        let live = self.live.lock();
        for n in existing(&self.dir)? {
            if !live.contains_key(&n) {
                let path = self.path(n);
                std::fs::remove_file(&path).map_err(|e| io(&path, &e))?;
            }
        }
        Ok(())
    }

    /// Appends `records` and syncs them; returns where each went. Each one
    /// counts as live until [`Self::release`].
    pub fn append(&self, records: &[&[u8]]) -> Result<Vec<Location>, StoreError> {
        let mut writer = self.writer.lock();
        if writer.current.as_ref().is_none_or(|(_, _, len)| *len >= FILE_BYTES_MAX) {
            self.roll(&mut writer)?;
        }
        let Some((n, file, len)) = writer.current.as_mut() else {
            return Err(StoreError::Archive("no record file open".into()));
        };
        let path = self.path(*n);
        let mut out = Vec::with_capacity(records.len());
        let mut buf = Vec::with_capacity(records.iter().map(|r| r.len()).sum());
        for record in records {
            let record_len = u32::try_from(record.len()).map_err(|_| StoreError::Archive("a segment record over 4 GiB".into()))?;
            out.push(Location { file: *n, offset: *len + buf.len() as u64, len: record_len, crc: crc32fast::hash(record) });
            buf.extend_from_slice(record);
        }
        file.write_all(&buf).map_err(|e| io(&path, &e))?;
        file.sync_data().map_err(|e| io(&path, &e))?;
        *len += buf.len() as u64;
        if let Some(observer) = &self.observer {
            (observer.0)(&path, *len);
        }
        *self.live.lock().entry(*n).or_default() += out.len() as u64;
        Ok(out)
    }

    /// Starts a new file; the one before it, if nothing in it is live, is
    /// left for the next sweep.
    fn roll(&self, writer: &mut Writer) -> Result<(), StoreError> {
        let n = writer.next;
        let path = self.path(n);
        let file = File::options().create_new(true).append(true).open(&path).map_err(|e| io(&path, &e))?;
        // The directory entry is durable before a pointer can name the file.
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(|e| io(&self.dir, &e))?;
        if let Some((old, _, _)) = writer.current.replace((n, file, 0)) {
            if !self.live.lock().contains_key(&old) {
                self.dead.lock().insert(old);
            }
        }
        writer.next = n + 1;
        Ok(())
    }

    /// A record's bytes, checked against its CRC; `None` when its file is
    /// gone (a pointer read just before a sweep deleted the file).
    pub fn read(&self, at: &Location) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(file) = self.reader(at.file)? else { return Ok(None) };
        let mut buf = vec![0; at.len as usize];
        file.read_exact_at(&mut buf, at.offset).map_err(|e| io(&self.path(at.file), &e))?;
        if crc32fast::hash(&buf) != at.crc {
            return Err(StoreError::Corrupt {
                tree: "archive records",
                detail: format!("CRC mismatch in file {} at {}", at.file, at.offset),
            });
        }
        Ok(Some(buf))
    }

    fn reader(&self, n: u32) -> Result<Option<Arc<File>>, StoreError> {
        if let Some(file) = self.readers.lock().get(&n) {
            return Ok(Some(file.clone()));
        }
        let path = self.path(n);
        let file = match File::open(&path) {
            Ok(f) => Arc::new(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path, &e)),
        };
        let mut readers = self.readers.lock();
        if readers.len() >= READ_HANDLES_MAX {
            readers.clear();
        }
        readers.insert(n, file.clone());
        Ok(Some(file))
    }

    /// A pointer to `at` is gone (its segment removed or rewritten).
    pub fn release(&self, at: &Location) {
        let mut live = self.live.lock();
        let Some(count) = live.get_mut(&at.file) else { return };
        *count = count.saturating_sub(1);
        if *count > 0 {
            return;
        }
        live.remove(&at.file);
        let appending = self.writer.lock().current.as_ref().is_some_and(|(n, _, _)| *n == at.file);
        if !appending {
            self.dead.lock().insert(at.file);
        }
    }

    /// The files with nothing live in them, taken: flush sled (so the
    /// removals of their pointers are durable), then [`Self::delete`] them.
    pub fn take_dead(&self) -> Vec<u32> {
        std::mem::take(&mut *self.dead.lock()).into_iter().collect()
    }

    /// Deletes files [`Self::take_dead`] gave, once sled was flushed after.
    pub fn delete(&self, dead: &[u32]) -> Result<(), StoreError> {
        for n in dead {
            self.readers.lock().remove(n);
            let path = self.path(*n);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&path, &e)),
            }
        }
        Ok(())
    }

    /// How many files hold live records, and their numbers.
    #[cfg(test)]
    pub fn live_files(&self) -> Vec<u32> {
        self.live.lock().keys().copied().collect()
    }

    fn path(&self, n: u32) -> PathBuf {
        self.dir.join(format!("{n:010}.seg"))
    }
}

/// Numbers of the record files in `dir`, ascending.
fn existing(dir: &Path) -> Result<Vec<u32>, StoreError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, &e))? {
        let entry = entry.map_err(|e| io(dir, &e))?;
        let name = entry.file_name();
        let number = name.to_str().and_then(|n| n.strip_suffix(".seg")).and_then(|n| n.parse::<u32>().ok());
        out.extend(number);
    }
    out.sort_unstable();
    Ok(out)
}

fn io(path: &Path, e: &std::io::Error) -> StoreError {
    StoreError::Archive(format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_round_trips() {
        let at = Location { file: 7, offset: 1 << 40, len: 513, crc: 0xdead_beef };
        assert_eq!(Location::decode(&at.encode()), Some(at));
        assert_eq!(Location::decode(&[0; 19]), None);
    }

    #[test]
    fn records_read_back_and_a_damaged_one_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let files = RecordFiles::open(dir.path(), None).expect("open");
        let at = files.append(&[b"one", b"second"]).expect("append");
        assert_eq!(files.read(&at[1]).expect("read").as_deref(), Some(&b"second"[..]));
        assert_eq!(files.read(&at[0]).expect("read").as_deref(), Some(&b"one"[..]));
        let wrong = Location { crc: at[0].crc ^ 1, ..at[0] };
        assert!(matches!(files.read(&wrong), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn a_file_goes_when_nothing_in_it_is_live_and_only_after_a_sweep() {
        let dir = tempfile::tempdir().expect("dir");
        let db = sled::Config::new().temporary(true).open().expect("db");
        let files = RecordFiles::open(dir.path(), None).expect("open");
        let first = files.append(&[b"a"]).expect("append");
        drop(files);
        // Reopened: appends go to a new file; the old one stays while counted.
        let files = RecordFiles::open(dir.path(), None).expect("reopen");
        files.count(&first[0]);
        files.drop_unreferenced().expect("drop");
        let second = files.append(&[b"b"]).expect("append");
        assert_ne!(first[0].file, second[0].file);
        assert_eq!(files.live_files(), vec![first[0].file, second[0].file]);
        files.release(&first[0]);
        assert!(files.read(&first[0]).expect("read").is_some(), "deleted only when told");
        let dead = files.take_dead();
        assert_eq!(dead, vec![first[0].file]);
        db.flush().expect("flush");
        files.delete(&dead).expect("delete");
        assert_eq!(files.read(&first[0]).expect("read"), None);
        // The file being appended to stays even when emptied.
        files.release(&second[0]);
        assert!(files.take_dead().is_empty());
        assert!(files.read(&second[0]).expect("read").is_some());
    }

    #[test]
    fn files_no_pointer_names_are_dropped_at_open() {
        let dir = tempfile::tempdir().expect("dir");
        let files = RecordFiles::open(dir.path(), None).expect("open");
        let kept = files.append(&[b"kept"]).expect("append");
        drop(files);
        let files = RecordFiles::open(dir.path(), None).expect("reopen");
        let orphan = files.append(&[b"orphan"]).expect("append");
        drop(files);
        let files = RecordFiles::open(dir.path(), None).expect("reopen");
        files.count(&kept[0]);
        files.drop_unreferenced().expect("drop");
        assert!(files.read(&kept[0]).expect("read").is_some());
        assert_eq!(files.read(&orphan[0]).expect("read"), None);
    }
}
