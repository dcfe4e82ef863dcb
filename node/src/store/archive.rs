//! The embedded archive of finished session segments (sled), the default
//! storage when no ClickHouse is configured.
//!
//! Segments arrive in batches from one writer ([`super::embedded`]): a
//! batch is one append to a record file ([`records`]), one *page* of the
//! time index and one service-index key per service it touched ([`page`]),
//! plus one small pointer per segment keyed by session. Listings walk
//! pages newest first.
//!
//! Archiving never uses sled transactions or batches (sled 0.34 switches the
//! whole database into a locking mode for them, and that mode deadlocked
//! under load here). Crash safety comes from order instead: the records
//! are appended and synced, then their pointers, their service keys and
//! their page are written; the WAL entries
//! they cover are marked done; sled is flushed (one flusher, see
//! [`super::SledFlusher`]), and only then are the WAL entries released
//! ([`super::Settler`]). Replay skips entries marked done. A crash before
//! the page is written leaves segments found by session but not listed.

mod page;
mod records;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use ollystack_cluster::NodeId;
use ollystack_proto::store::ArchivedSegment;
use parking_lot::Mutex;
use prost::Message;

use super::keys::{segment_key, service_prefix, session_prefix, time_key, u64_at};
use super::listing::{self, Scan};
use super::segment_walk::page_of;
use super::StoreError;
use crate::model::{CorrelationId, TenantId};
use crate::query::{Pager, Segment, SessionFilter};
use crate::session::finished::{ArchiveIndexEntry, FinishedSegment};
use crate::wal::SyncObserver;
use page::{decode_page, encode_page, is_segment, pointer_value, services_of, split_value, Body};
use records::RecordFiles;

#[derive(Debug)]
pub struct Archive {
    db: sled::Db,
    /// Segment pointers keyed [`segment_key`]: page key and record location.
    segments: sled::Tree,
    /// The records themselves.
    files: RecordFiles,
    /// The time index: one page of entries per key (see [`page`]).
    by_time: sled::Tree,
    /// The service index: one empty record per (tenant, service, page),
    /// keyed `service_prefix page_key`, so a listing that names a service
    /// looks only at pages that touched it.
    by_service: sled::Tree,
    /// Bytes of all archived segment records.
    bytes: AtomicU64,
    /// The time of the newest page written: the next page's floor. Held
    /// while a page is written, so pages are written one at a time.
    newest_page: Mutex<u64>,
}

impl Archive {
    /// Opens the archive in `db`, its records in `dir` (`observer` hears
    /// every sync of a record file, as the WAL's does).
    pub fn open(db: &sled::Db, dir: &Path, observer: Option<SyncObserver>) -> Result<Self, StoreError> {
        let segments = db.open_tree("archive")?;
        let files = RecordFiles::open(dir, observer)?;
        for item in segments.iter() {
            let (_, v) = item?;
            if let (_, Body::InFile(at)) = split_value(&v) {
                files.count(&at);
            }
        }
        files.drop_unreferenced()?;
        let by_time = db.open_tree("archive_time")?;
        let by_service = db.open_tree("archive_service")?;
        let mut bytes = 0;
        for item in by_time.iter() {
            let (key, v) = item?;
            let entries = decode_page(&v)?;
            bytes += entries.iter().map(|e| e.bytes).sum::<u64>();
            // Archives written before the service index existed get it here.
            for (tenant, service) in services_of(&entries) {
                let skey = service_page_key(&tenant, &service, &key);
                if !by_service.contains_key(&skey)? {
                    by_service.insert(skey, &[])?;
                }
            }
        }
        let newest = by_time.last()?.and_then(|(k, _)| u64_at(&k, 0)).unwrap_or(0);
        Ok(Self { db: db.clone(), segments, files, by_time, by_service, bytes: AtomicU64::new(bytes), newest_page: Mutex::new(newest) })
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Archives a finished segment (a page of one). The caller settles it
    /// afterwards (done markers, one sled flush, WAL release).
    pub fn store(&self, segment: &FinishedSegment) -> Result<(), StoreError> {
        self.store_batch(std::slice::from_ref(segment))
    }

    /// Archives finished segments as one page.
    pub fn store_batch(&self, segments: &[FinishedSegment]) -> Result<(), StoreError> {
        self.put_page(segments.iter().map(|s| (s.index_entry(), s.encoded.as_slice())).collect()).map(|_| ())
    }

    /// Writes segments and their page; returns their entries as indexed.
    /// Storing a segment again (a retry after a lost acknowledgement, a
    /// hand-over sent twice) rewrites it: its earlier page entry goes,
    /// bytes are counted once.
    fn put_page(&self, items: Vec<(ArchiveIndexEntry, &[u8])>) -> Result<Vec<ArchiveIndexEntry>, StoreError> {
        // The same segment twice in one batch: the later copy wins.
        let mut unique: BTreeMap<(String, String, u64), (ArchiveIndexEntry, &[u8])> = BTreeMap::new();
        for (entry, record) in items {
            unique.insert((entry.tenant.clone(), entry.correlation_id.clone(), entry.segment_seq), (entry, record));
        }
        if unique.is_empty() {
            return Ok(Vec::new());
        }
        let (segments, mut entries): (Vec<_>, Vec<ArchiveIndexEntry>) =
            unique.into_iter().map(|(key, (entry, record))| ((key, record), entry)).unzip();
        let records: Vec<&[u8]> = segments.iter().map(|(_, record)| *record).collect();
        let locations = self.files.append(&records)?;
        let mut newest = self.newest_page.lock();
        let page_time = page::clamp_to(&mut entries, *newest);
        let page_key = time_key(page_time, self.db.generate_id()?);
        for (((tenant, id, seq), _), at) in segments.iter().zip(&locations) {
            let key = segment_key(&TenantId::from_trusted(tenant.as_str()), &CorrelationId::from_trusted(id.as_str()), *seq);
            if let Some(previous) = self.segments.insert(key, pointer_value(&page_key, at))? {
                self.dropped(&previous, tenant, id, *seq)?;
            }
        }
        // The service index first: a key there without its page (a crash
        // in between) is skipped by listings.
        for (tenant, service) in services_of(&entries) {
            self.by_service.insert(service_page_key(&tenant, &service, &page_key), &[])?;
        }
        page::sort_newest_first(&mut entries);
        self.by_time.insert(page_key.as_slice(), encode_page(&entries))?;
        self.bytes.fetch_add(entries.iter().map(|e| e.bytes).sum(), Ordering::Relaxed);
        *newest = page_time;
        Ok(entries)
    }

    /// A segment's stored value `value` was removed or replaced: drops its
    /// page entry and lets go of its record.
    fn dropped(&self, value: &[u8], tenant: &str, id: &str, seq: u64) -> Result<(), StoreError> {
        let page_key = match split_value(value) {
            (Some(key), body) => {
                if let Body::InFile(at) = body {
                    self.files.release(&at);
                }
                key.to_vec()
            }
            // Stored before pages: its page of one is keyed by its own time.
            (None, body) => match ArchivedSegment::decode(self.record(body)?.as_deref().unwrap_or_default()) {
                Ok(old) => time_key(old.finished_unix_ms, seq),
                Err(_) => return Ok(()),
            },
        };
        self.edit_page(&page_key, |entries| entries.retain(|e| !is_segment(e, tenant, id, seq)))
    }

    /// A stored record's bytes; `None` when its file is gone (retention
    /// deleted it after the pointer was read).
    fn record<'v>(&self, body: Body<'v>) -> Result<Option<Cow<'v, [u8]>>, StoreError> {
        Ok(match body {
            Body::Inline(record) => Some(Cow::Borrowed(record)),
            Body::InFile(at) => self.files.read(&at)?.map(Cow::Owned),
        })
    }

    /// The record of a stored segment value.
    fn record_of<'v>(&self, value: &'v [u8]) -> Result<Option<Cow<'v, [u8]>>, StoreError> {
        self.record(split_value(value).1)
    }

    /// Changes a page in place (atomically per page) and keeps the service
    /// index and byte count in step; an emptied page is removed.
    fn edit_page(&self, page_key: &[u8], edit: impl Fn(&mut Vec<ArchiveIndexEntry>)) -> Result<(), StoreError> {
        let mut outcome = None;
        self.by_time.fetch_and_update(page_key, |old| {
            let old = old?;
            let Ok(before) = decode_page(old) else { return Some(old.to_vec()) };
            let mut after = before.clone();
            edit(&mut after);
            let value = (!after.is_empty()).then(|| encode_page(&after));
            outcome = Some((before, after));
            value
        })?;
        let Some((before, after)) = outcome else { return Ok(()) };
        let kept = services_of(&after);
        for (tenant, service) in services_of(&before).difference(&kept) {
            self.by_service.remove(service_page_key(tenant, service, page_key))?;
        }
        let (was, is) = (before.iter().map(|e| e.bytes).sum::<u64>(), after.iter().map(|e| e.bytes).sum::<u64>());
        if was >= is {
            let _ = self.bytes.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| Some(b.saturating_sub(was - is)));
        } else {
            self.bytes.fetch_add(is - was, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Pages oldest first, each with its key and entries.
    fn pages_oldest_first(&self) -> impl Iterator<Item = Result<(sled::IVec, Vec<ArchiveIndexEntry>), StoreError>> + '_ {
        self.by_time.iter().map(|item| {
            let (k, v) = item?;
            Ok((k, decode_page(&v)?))
        })
    }

    /// The oldest segments, about `max_bytes` of them (at least one when
    /// any is archived), with their index entries.
    pub fn oldest(&self, max_bytes: u64) -> Result<Vec<(ArchiveIndexEntry, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        let mut bytes = 0;
        'pages: for page in self.pages_oldest_first() {
            let (_, entries) = page?;
            for entry in entries.into_iter().rev() {
                if bytes >= max_bytes && !out.is_empty() {
                    break 'pages;
                }
                let key = entry_segment_key(&entry);
                let Some(value) = self.segments.get(key)? else { continue };
                if let Some(record) = self.record_of(&value)? {
                    bytes += record.len() as u64;
                    out.push((entry, record.into_owned()));
                }
            }
        }
        Ok(out)
    }

    /// Archives segments handed over by the leaving node `origin`, together
    /// as one page, each under a seq derived from (origin, its seq there):
    /// taken twice, a segment is stored once, and it cannot collide with
    /// this node's own seqs.
    pub fn adopt(&self, origin: NodeId, handed: &[(ArchiveIndexEntry, Vec<u8>)]) -> Result<Vec<ArchiveIndexEntry>, StoreError> {
        let mut adopted = Vec::with_capacity(handed.len());
        for (index, record) in handed {
            let mut segment = ArchivedSegment::decode(record.as_slice())
                .map_err(|e| StoreError::Corrupt { tree: "handed-over segment", detail: e.to_string() })?;
            let seq = adopted_seq(origin, index.segment_seq);
            segment.segment_seq = seq;
            // The origin's WAL seqs mean nothing here.
            segment.wal_keys.clear();
            let record = segment.encode_to_vec();
            let index = ArchiveIndexEntry { segment_seq: seq, bytes: record.len() as u64, ..index.clone() };
            adopted.push((index, record));
        }
        self.put_page(adopted.iter().map(|(index, record)| (index.clone(), record.as_slice())).collect())
    }

    /// Removes one segment and its index entry.
    pub fn remove(&self, entry: &ArchiveIndexEntry) -> Result<(), StoreError> {
        if let Some(value) = self.segments.remove(entry_segment_key(entry))? {
            self.dropped(&value, &entry.tenant, &entry.correlation_id, entry.segment_seq)?;
        }
        Ok(())
    }

    /// Every archived segment of a session, oldest first.
    pub fn segments(&self, tenant: &TenantId, id: &CorrelationId) -> Result<Vec<ArchivedSegment>, StoreError> {
        let mut out = Vec::new();
        for item in self.segments.scan_prefix(session_prefix(tenant, id)) {
            let (_, v) = item?;
            let Some(record) = self.record_of(&v)? else { continue };
            out.push(ArchivedSegment::decode(&*record).map_err(|e| StoreError::Corrupt { tree: "archive", detail: e.to_string() })?);
        }
        Ok(out)
    }

    /// The records of a session's archived segments (oldest first) that
    /// `pager` keeps; every record is shown to it. Decodes only those kept
    /// ([`super::segment_walk`]), one stored segment at a time.
    pub fn page(&self, tenant: &TenantId, id: &CorrelationId, pager: &mut Pager) -> Result<Vec<Segment>, StoreError> {
        let mut out = Vec::new();
        for item in self.segments.scan_prefix(session_prefix(tenant, id)) {
            let (_, v) = item?;
            let Some(record) = self.record_of(&v)? else { continue };
            let kept = page_of(&record, pager).map_err(|e| StoreError::Corrupt { tree: "archive", detail: e.to_string() })?;
            if !(kept.spans.is_empty() && kept.logs.is_empty() && kept.exemplars.is_empty()) {
                out.push(kept);
            }
        }
        Ok(out)
    }

    /// Index entries, newest finished first, for which `keep` holds; at most `limit`.
    pub fn recent(&self, limit: usize, mut keep: impl FnMut(&ArchiveIndexEntry) -> bool) -> Result<Vec<ArchiveIndexEntry>, StoreError> {
        let mut out = Vec::new();
        for entry in entries_of(self.by_time.iter().rev()) {
            if out.len() >= limit {
                break;
            }
            let entry = entry?;
            if keep(&entry) {
                out.push(entry);
            }
        }
        Ok(out)
    }

    /// A bounded listing ([`listing::scan`]) of the index entries of
    /// `tenant` that match `filter`, newest finished first. Only the part
    /// of the index that can match is read: pages holding segments
    /// finished in `[since, before)` (a segment finishes after its last
    /// activity), and with a service named, only pages that touched it.
    pub fn list(&self, tenant: &TenantId, filter: &SessionFilter, examine_max: usize) -> Result<Scan, StoreError> {
        let since = filter.since_unix_ms.unwrap_or(0);
        let before = filter.before_unix_ms.unwrap_or(u64::MAX);
        let (low, high) = (time_key(since, 0), time_key(before, 0));
        let keep = |e: &ArchiveIndexEntry| e.tenant == tenant.as_str() && filter.matches(&e.summary, e.last_activity_unix_ms);
        let in_window =
            |e: &Result<ArchiveIndexEntry, StoreError>| e.as_ref().map_or(true, |e| (since..before).contains(&e.finished_unix_ms));
        let Some(service) = filter.service.as_deref() else {
            // Pages never overlap, so of the pages at or after `before` only
            // the first can hold segments finished before it.
            let straddling = self.by_time.range(high.as_slice()..).next();
            let pages = straddling.into_iter().chain(self.by_time.range(low.as_slice()..high.as_slice()).rev());
            return listing::scan(entries_of(pages).filter(in_window), filter.limit, examine_max, keep);
        };
        let prefix = service_prefix(tenant, service);
        let with_prefix = |time: &[u8]| [prefix.as_slice(), time].concat();
        let straddling = self.by_service.range(with_prefix(&high)..with_prefix(&[0xff; 17])).next();
        let keys = straddling.into_iter().chain(self.by_service.range(with_prefix(&low)..with_prefix(&high)).rev());
        // The page key is the last 16 bytes of a service key; a page removed
        // meanwhile is skipped.
        let pages = keys.filter_map(|item| match item {
            Ok((key, _)) => {
                let page_key = sled::IVec::from(&key[key.len().saturating_sub(page::PAGE_KEY_LEN)..]);
                self.by_time.get(&page_key).transpose().map(|v| v.map(|v| (page_key, v)))
            }
            Err(e) => Some(Err(e)),
        });
        listing::scan(entries_of(pages).filter(in_window), filter.limit, examine_max, keep)
    }

    /// Moves every archived segment of `from` under `to` (a trace-derived
    /// session whose trace joined an explicit one).
    pub fn rekey(&self, tenant: &TenantId, from: &CorrelationId, to: &CorrelationId) -> Result<usize, StoreError> {
        let mut moved = 0;
        for item in self.segments.scan_prefix(session_prefix(tenant, from)) {
            let (old_key, value) = item?;
            let (page_key, body) = split_value(&value);
            let Some(record) = self.record(body)? else { continue };
            let mut seg = ArchivedSegment::decode(&*record).map_err(|e| StoreError::Corrupt { tree: "archive", detail: e.to_string() })?;
            let seq = seg.segment_seq;
            let page_key = page_key.map_or_else(|| time_key(seg.finished_unix_ms, seq), <[u8]>::to_vec);
            seg.correlation_id = to.as_str().to_owned();
            // New copy first: a crash in between leaves an unreachable
            // duplicate under `from` (its alias leads to `to`), never a loss.
            let moved_to = self.files.append(&[seg.encode_to_vec().as_slice()])?;
            if let Some(previous) = self.segments.insert(segment_key(tenant, to, seq), pointer_value(&page_key, &moved_to[0]))? {
                if let (_, Body::InFile(at)) = split_value(&previous) {
                    self.files.release(&at);
                }
            }
            self.edit_page(&page_key, |entries| {
                for e in entries.iter_mut().filter(|e| is_segment(e, tenant.as_str(), from.as_str(), seq)) {
                    e.correlation_id = to.as_str().to_owned();
                }
            })?;
            // Released only if this call removed it (another re-key of the
            // same session may have moved it first).
            if let Some(removed) = self.segments.remove(old_key)? {
                if let (_, Body::InFile(at)) = split_value(&removed) {
                    self.files.release(&at);
                }
            }
            moved += 1;
        }
        Ok(moved)
    }

    /// Removes pages whose segments all finished before `now -
    /// retention_ms`, then the oldest pages while the archive holds more
    /// than `max_bytes`. Returns how many segments were removed.
    pub fn expire(&self, now_unix_ms: u64, retention_ms: u64, max_bytes: u64) -> Result<u64, StoreError> {
        let cutoff = now_unix_ms.saturating_sub(retention_ms);
        let mut removed = 0;
        for page in self.pages_oldest_first() {
            let (page_key, entries) = page?;
            let newest = u64_at(&page_key, 0).unwrap_or(0);
            if newest >= cutoff && self.bytes() <= max_bytes {
                break;
            }
            for entry in &entries {
                let key = entry_segment_key(entry);
                // Unless a rewrite moved it to a later page meanwhile.
                let here = self.segments.get(&key)?.is_some_and(|v| split_value(&v).0.is_none_or(|k| k == page_key.as_ref()));
                if !here {
                    continue;
                }
                if let Some(value) = self.segments.remove(key)? {
                    if let (_, Body::InFile(at)) = split_value(&value) {
                        self.files.release(&at);
                    }
                }
            }
            self.edit_page(&page_key, Vec::clear)?;
            removed += entries.len() as u64;
        }
        Ok(removed)
    }

    /// Record files nothing points at any more, taken: the caller flushes
    /// sled (the node's one flusher), then [`Self::delete_record_files`].
    pub fn dead_record_files(&self) -> Vec<u32> {
        self.files.take_dead()
    }

    pub fn delete_record_files(&self, dead: &[u32]) -> Result<(), StoreError> {
        self.files.delete(dead)
    }
}

/// The entries of `pages` (keys and encoded pages), in page order.
fn entries_of<'a>(
    pages: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>> + 'a,
) -> impl Iterator<Item = Result<ArchiveIndexEntry, StoreError>> + 'a {
    pages.flat_map(|item| {
        let entries = item.map_err(StoreError::from).and_then(|(_, v)| decode_page(&v));
        let (ok, err) = match entries {
            Ok(entries) => (entries, None),
            Err(e) => (Vec::new(), Some(Err(e))),
        };
        err.into_iter().chain(ok.into_iter().map(Ok))
    })
}

/// `service_prefix page_key`.
fn service_page_key(tenant: &str, service: &str, page_key: &[u8]) -> Vec<u8> {
    [service_prefix(&TenantId::from_trusted(tenant), service).as_slice(), page_key].concat()
}

fn entry_segment_key(entry: &ArchiveIndexEntry) -> Vec<u8> {
    segment_key(
        &TenantId::from_trusted(entry.tenant.as_str()),
        &CorrelationId::from_trusted(entry.correlation_id.as_str()),
        entry.segment_seq,
    )
}

/// The seq an adopted segment is archived under: the top bit set (this
/// node's own seqs count up from 0), the rest a mix of (origin, seq).
pub fn adopted_seq(origin: NodeId, seq: u64) -> u64 {
    // splitmix64's finalizer over the pair.
    let mut z = origin.0.rotate_left(32) ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (1 << 63) | ((z ^ (z >> 31)) >> 1)
}

/// Decodes a listing entry sent by another node.
pub fn decode_index_json(bytes: &[u8]) -> Result<ArchiveIndexEntry, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt { tree: "archive_time", detail: e.to_string() })
}

pub fn encode_index_json(entry: &ArchiveIndexEntry) -> Vec<u8> {
    // Serializing plain data to a Vec cannot fail.
    serde_json::to_vec(entry).unwrap_or_default()
}

#[cfg(test)]
mod tests;
