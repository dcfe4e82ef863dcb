//! The write-ahead log: every accepted batch, split per session, is appended
//! here and fsynced before the sender is acknowledged (group commit: one
//! fsync covers every batch appended before it started).
//!
//! The log is a directory of segment files (`segment`) holding records
//! (`record`): session entries, plus the trace-unification aliases and
//! explicit trace bindings that must survive a crash with them.
//!
//! Releasing entries whose segment was archived: the archive writes a
//! "done" record for them (sled tree `wal_done`, one per settle call, see
//! [`done`]) with the segment, flushes sled, then calls [`Wal::release`]. Replay skips entries marked done, so a
//! crash at any point neither loses an entry nor replays an archived one.
//! A segment file is deleted once every entry in it and in all older
//! segments is released (and not while a [`Replay`] still reads them).
//!
//! Reading is streamed ([`segment::FrameReader`]): opening the log, its
//! replay and the read-back of a failed session's entries
//! ([`Wal::read_entries`]) hold one frame at a time, never a file or the
//! whole log.
//!
//! (The WAL was first a sled tree; under concurrent ingest, sled 0.34's
//! flushes hung for good — seen three times with stack dumps — so the hot
//! path no longer touches sled's flush at all.)

mod done;
mod record;
mod segment;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use ollystack_cluster::NodeId;
use parking_lot::Mutex;

pub use record::{encode_entry, WalRecord};

/// Segments roll over at this size.
const SEGMENT_MAX_BYTES: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("wal i/o in {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("wal done-markers: {0}")]
    Sled(#[from] sled::Error),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WalError + '_ {
    move |source| WalError::Io { path: path.to_owned(), source }
}

#[derive(Debug)]
struct Writer {
    file: File,
    path: PathBuf,
    first_seq: u64,
    next_seq: u64,
    size: u64,
}

/// What the log's positions promise: every seq below `next_seq` is
/// assigned, the durable mark never passes them, and the file being
/// written (named by its first seq) is the newest. Pure; asserted after
/// every append and rotation in debug builds.
fn check_positions(first_seq: u64, next_seq: u64, synced_seq: u64, newest_file: Option<u64>) -> Result<(), &'static str> {
    if first_seq > next_seq {
        return Err("the file being written starts after the next seq");
    }
    if synced_seq >= next_seq {
        return Err("a seq not yet assigned is marked durable");
    }
    if newest_file != Some(first_seq) {
        return Err("the file being written is not the newest");
    }
    Ok(())
}

#[derive(Debug)]
struct SegmentInfo {
    path: PathBuf,
    /// Entries appended to it and not yet released.
    live: u64,
    size: u64,
}

/// Told, for a WAL file, the length known to be durable: after every
/// fsync, and 0 for a file just started. The simulations truncate files to
/// it when they crash a node, so a crash loses what was not synced.
#[derive(Clone)]
pub struct SyncObserver(pub Arc<ObserveSync>);

/// (file, durable length).
pub type ObserveSync = dyn Fn(&Path, u64) + Send + Sync;

impl std::fmt::Debug for SyncObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyncObserver(..)")
    }
}

#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    writer: Mutex<Writer>,
    /// Every record with a seq at or below this is durable.
    synced_seq: AtomicU64,
    /// One fsync at a time; waiters whose records it covered return at once.
    sync_lock: tokio::sync::Mutex<()>,
    segments: Mutex<BTreeMap<u64, SegmentInfo>>,
    /// Settle records (see [`done`]), and the settled seqs they hold.
    done: sled::Tree,
    settled: Mutex<done::DoneSeqs>,
    /// Bytes of all segment files.
    bytes: AtomicU64,
    /// Told the durable length of each file (the simulations' crashes).
    observer: Option<SyncObserver>,
    /// A [`Replay`] may still read the files that were there at open: no
    /// file is deleted until it is done (their aliases and bindings replay
    /// even when every entry in them was settled).
    replaying: Arc<AtomicBool>,
}

impl Wal {
    /// Opens (or creates) the log in `dir`; returns it and a [`Replay`]
    /// that streams the records to replay (entries already archived are
    /// left out). Opening reads each file once, frame by frame, keeping
    /// only the seqs of unsettled entries and the hand-off notes; the
    /// records themselves are read again, one at a time, by the replay.
    pub fn open(dir: &Path, db: &sled::Db) -> Result<(Self, Replay), WalError> {
        Self::open_observed(dir, db, None)
    }

    /// [`Self::open`], reporting durable file lengths to `observer` (see
    /// [`SyncObserver`]), starting with the file it opens for writing.
    pub fn open_observed(dir: &Path, db: &sled::Db, observer: Option<SyncObserver>) -> Result<(Self, Replay), WalError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let done = db.open_tree("wal_done")?;
        let listed = segment::list_segments(dir).map_err(io(dir))?;
        let mut settled = done::DoneSeqs::new(listed.first().map_or(1, |(first, _)| *first));
        for item in done.iter() {
            let (k, v) = item?;
            done::decode(&k, &v).into_iter().for_each(|seq| settled.insert(seq));
        }
        let mut files = VecDeque::new();
        let mut present = BTreeSet::new();
        let mut handings = Vec::new();
        let mut segments = BTreeMap::new();
        let mut next_seq = 1;
        let mut bytes = 0;
        for (first, path) in listed {
            // A file is named by the first seq it was opened for, so an
            // empty newest file still keeps seqs from going back.
            next_seq = next_seq.max(first);
            let mut reader = segment::FrameReader::open(&path).map_err(io(&path))?;
            let mut live = 0;
            while let Some((seq, payload)) = reader.next_frame().map_err(io(&path))? {
                next_seq = next_seq.max(seq + 1);
                if payload.first() == Some(&record::ENTRY) {
                    if !settled.contains(seq) {
                        live += 1;
                        present.insert(seq);
                    }
                } else if let Some(WalRecord::Handing { node, shipment, keys }) = WalRecord::decode(payload) {
                    handings.push(Handing { node, shipment, keys });
                }
            }
            let valid_len = reader.valid_len();
            bytes += valid_len;
            segments.insert(first, SegmentInfo { path: path.clone(), live, size: valid_len });
            files.push_back(path);
        }
        let path = segment::segment_path(dir, next_seq);
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(io(&path))?;
        segments.insert(next_seq, SegmentInfo { path: path.clone(), live: 0, size: 0 });
        if let Some(SyncObserver(o)) = &observer {
            o(&path, 0);
        }
        let replaying = Arc::new(AtomicBool::new(true));
        let wal = Self {
            dir: dir.to_owned(),
            writer: Mutex::new(Writer { file, path, first_seq: next_seq, next_seq, size: 0 }),
            synced_seq: AtomicU64::new(next_seq - 1),
            sync_lock: tokio::sync::Mutex::new(()),
            segments: Mutex::new(segments),
            done,
            settled: Mutex::new(settled),
            bytes: AtomicU64::new(bytes),
            observer,
            replaying: replaying.clone(),
        };
        let replay = Replay { files, reader: None, present, handings, replaying };
        Ok((wal, replay))
    }

    fn synced(&self, path: &Path, len: u64) {
        if let Some(SyncObserver(o)) = &self.observer {
            o(path, len);
        }
    }

    /// Appends records (not yet durable) and returns their seqs, in order.
    pub fn append(&self, records: &[WalRecord]) -> Result<Vec<u64>, WalError> {
        let mut buf = Vec::new();
        let mut payload = Vec::new();
        let mut w = self.writer.lock();
        let mut seqs = Vec::with_capacity(records.len());
        let mut entries = 0;
        for rec in records {
            payload.clear();
            rec.encode(&mut payload);
            segment::frame(w.next_seq, &payload, &mut buf);
            seqs.push(w.next_seq);
            w.next_seq += 1;
            entries += u64::from(matches!(rec, WalRecord::Entry(_)));
        }
        let path = w.path.clone();
        w.file.write_all(&buf).map_err(io(&path))?;
        w.size += buf.len() as u64;
        self.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
        {
            let mut segs = self.segments.lock();
            if let Some(s) = segs.get_mut(&w.first_seq) {
                s.live += entries;
                s.size = w.size;
            }
            let synced = self.synced_seq.load(Ordering::Acquire);
            debug_assert_eq!(check_positions(w.first_seq, w.next_seq, synced, segs.keys().next_back().copied()), Ok(()));
        }
        if w.size >= SEGMENT_MAX_BYTES {
            self.rotate(&mut w)?;
        }
        Ok(seqs)
    }

    fn rotate(&self, w: &mut Writer) -> Result<(), WalError> {
        let old = w.path.clone();
        w.file.sync_data().map_err(io(&old))?;
        self.synced_seq.fetch_max(w.next_seq - 1, Ordering::AcqRel);
        self.synced(&old, w.size);
        let path = segment::segment_path(&self.dir, w.next_seq);
        w.file = OpenOptions::new().create(true).append(true).open(&path).map_err(io(&path))?;
        self.synced(&path, 0);
        w.path = path.clone();
        w.first_seq = w.next_seq;
        w.size = 0;
        let mut segs = self.segments.lock();
        segs.insert(w.next_seq, SegmentInfo { path, live: 0, size: 0 });
        let synced = self.synced_seq.load(Ordering::Acquire);
        debug_assert_eq!(check_positions(w.first_seq, w.next_seq, synced, segs.keys().next_back().copied()), Ok(()));
        Ok(())
    }

    /// Returns once every record up to `seq` is durable.
    pub async fn sync(&self, seq: u64) -> Result<(), WalError> {
        if self.synced_seq.load(Ordering::Acquire) >= seq {
            return Ok(());
        }
        let _turn = self.sync_lock.lock().await;
        if self.synced_seq.load(Ordering::Acquire) >= seq {
            return Ok(());
        }
        let (file, path, target, len) = {
            let w = self.writer.lock();
            (w.file.try_clone().map_err(io(&w.path))?, w.path.clone(), w.next_seq - 1, w.size)
        };
        let synced_path = path.clone();
        ollystack_cluster::blocking::unblock(move || file.sync_data().map_err(io(&path)))
            .await
            .map_err(|e| WalError::Io { path: self.dir.clone(), source: std::io::Error::other(e) })??;
        self.synced_seq.fetch_max(target, Ordering::AcqRel);
        self.synced(&synced_path, len);
        Ok(())
    }

    /// Marks entries settled (written with the archived segment; made
    /// durable by the archive's sled flush): one sled record per call.
    pub fn mark_done(&self, seqs: &[u64]) -> Result<(), WalError> {
        let Some(&highest) = seqs.iter().max() else { return Ok(()) };
        self.done.fetch_and_update(highest.to_be_bytes(), |old| {
            let mut all: BTreeSet<u64> = old.map(|v| done::decode(&highest.to_be_bytes(), v)).unwrap_or_default().into_iter().collect();
            all.extend(seqs);
            Some(done::encode(all))
        })?;
        let mut settled = self.settled.lock();
        seqs.iter().for_each(|seq| settled.insert(*seq));
        Ok(())
    }

    /// Releases archived entries (their done markers are durable) and
    /// deletes segments that hold nothing live any more.
    pub fn release(&self, seqs: &[u64]) -> Result<(), WalError> {
        {
            let mut segs = self.segments.lock();
            for seq in seqs {
                if let Some((_, s)) = segs.range_mut(..=*seq).next_back() {
                    s.live = s.live.saturating_sub(1);
                }
            }
        }
        self.delete_released_prefix()
    }

    /// Deletes the oldest segments while they hold nothing live and are not
    /// being written, then drops done markers below the oldest segment kept.
    fn delete_released_prefix(&self) -> Result<(), WalError> {
        if self.replaying.load(Ordering::Acquire) {
            return Ok(());
        }
        let current = self.writer.lock().first_seq;
        let mut segs = self.segments.lock();
        while let Some((&first, s)) = segs.iter().next() {
            if first == current || s.live > 0 {
                break;
            }
            std::fs::remove_file(&s.path).map_err(io(&s.path))?;
            self.bytes.fetch_sub(s.size.min(self.bytes.load(Ordering::Relaxed)), Ordering::Relaxed);
            segs.remove(&first);
        }
        let oldest = segs.keys().next().copied().unwrap_or(current);
        drop(segs);
        self.settled.lock().forget_below(oldest);
        // A record is keyed by its highest seq: below `oldest`, all of it is.
        for item in self.done.range(..oldest.to_be_bytes()) {
            let (k, _) = item?;
            self.done.remove(k)?;
        }
        Ok(())
    }

    /// Deletes the files released while a [`Replay`] was reading (call
    /// once it is done; dropping it ends it).
    pub fn replay_done(&self) -> Result<(), WalError> {
        self.replaying.store(false, Ordering::Release);
        self.delete_released_prefix()
    }

    /// The unsettled entries among `seqs` (by seq), read from the files
    /// that hold them, one frame at a time: how a failed session actor's
    /// data is rebuilt. Entries settled meanwhile (done) are left out.
    pub fn read_entries(&self, seqs: &BTreeSet<u64>) -> Result<Vec<(u64, Vec<u8>)>, WalError> {
        let (Some(&lowest), Some(&highest)) = (seqs.first(), seqs.last()) else { return Ok(Vec::new()) };
        let files: Vec<PathBuf> = {
            let segs = self.segments.lock();
            // The file holding `lowest` starts at or before it.
            let start = segs.range(..=lowest).next_back().map_or(lowest, |(first, _)| *first);
            segs.range(start..=highest).map(|(_, s)| s.path.clone()).collect()
        };
        let mut out = Vec::new();
        for path in files {
            let mut reader = match segment::FrameReader::open(&path) {
                Ok(r) => r,
                // Deleted meanwhile: everything in it was settled.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(WalError::Io { path, source: e }),
            };
            while let Some((seq, payload)) = reader.next_frame().map_err(io(&path))? {
                if seqs.contains(&seq) && payload.first() == Some(&record::ENTRY) && !self.settled.lock().contains(seq) {
                    out.push((seq, payload[1..].to_vec()));
                }
            }
        }
        Ok(out)
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Bytes of the segment files that still hold unreleased entries: what
    /// a storage backlog pins on disk (the bound ingest sheds load at).
    pub fn pinned_bytes(&self) -> u64 {
        self.segments.lock().values().filter(|s| s.live > 0).map(|s| s.size).sum()
    }

    /// Segment files currently on disk (for tests and diagnostics).
    pub fn segment_count(&self) -> usize {
        self.segments.lock().len()
    }
}

/// A hand-off note read at open (see [`WalRecord::Handing`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handing {
    pub node: NodeId,
    pub shipment: u64,
    pub keys: Vec<u64>,
}

/// What a restart must replay, in log order, streamed from the files that
/// were there at open: one record in memory at a time, so replaying a WAL
/// costs the memory of the sessions it rebuilds (which the budget counts)
/// plus one frame, not the WAL's size.
#[derive(Debug)]
pub struct Replay {
    files: VecDeque<PathBuf>,
    reader: Option<(segment::FrameReader, PathBuf)>,
    /// Entries to replay (not settled at open).
    present: BTreeSet<u64>,
    /// Every hand-off note, in log order.
    handings: Vec<Handing>,
    replaying: Arc<AtomicBool>,
}

impl Replay {
    /// Seqs of the entries this replay yields.
    pub fn entries(&self) -> &BTreeSet<u64> {
        &self.present
    }

    /// Hand-off notes, in log order.
    pub fn handings(&self) -> &[Handing] {
        &self.handings
    }

    fn next_record(&mut self) -> Result<Option<(u64, WalRecord)>, WalError> {
        loop {
            if self.reader.is_none() {
                let Some(path) = self.files.pop_front() else { return Ok(None) };
                let reader = segment::FrameReader::open(&path).map_err(io(&path))?;
                self.reader = Some((reader, path));
            }
            let Some((reader, path)) = self.reader.as_mut() else { continue };
            match reader.next_frame().map_err(io(path))? {
                None => self.reader = None,
                Some((seq, payload)) => {
                    let is_entry = payload.first() == Some(&record::ENTRY);
                    if is_entry && !self.present.contains(&seq) {
                        continue;
                    }
                    if let Some(rec) = WalRecord::decode(payload) {
                        return Ok(Some((seq, rec)));
                    }
                }
            }
        }
    }
}

impl Iterator for Replay {
    type Item = Result<(u64, WalRecord), WalError>;

    fn next(&mut self) -> Option<Self::Item> {
        let next = self.next_record().transpose();
        if next.is_none() {
            self.replaying.store(false, Ordering::Release);
        }
        next
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        self.replaying.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests;
