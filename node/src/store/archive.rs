//! The embedded archive of finished session segments (sled), the default
//! storage when no ClickHouse is configured.
//!
//! Archiving never uses sled transactions or batches (sled 0.34 switches the
//! whole database into a locking mode for them, and that mode deadlocked
//! under load here). Crash safety comes from order instead: the segment and
//! a "done" marker per WAL entry it covers are written, sled is flushed (one
//! flusher, see [`super::SledFlusher`]), and only then are the WAL entries
//! released ([`super::Settler`]). Replay skips entries marked done.

use std::sync::atomic::{AtomicU64, Ordering};

use ollystack_cluster::NodeId;
use ollystack_proto::store::ArchivedSegment;
use prost::Message;

use super::keys::{segment_key, service_key, service_prefix, session_prefix, time_key, u64_at};
use super::listing::{self, Scan};
use super::segment_walk::page_of;
use super::StoreError;
use crate::model::{CorrelationId, TenantId};
use crate::query::{Pager, Segment, SessionFilter};
use crate::session::finished::{ArchiveIndexEntry, FinishedSegment};

#[derive(Debug)]
pub struct Archive {
    segments: sled::Tree,
    by_time: sled::Tree,
    /// The service index: one empty record per (tenant, service, segment),
    /// keyed [`service_key`], so a listing that names a service looks only
    /// at segments that touched it.
    by_service: sled::Tree,
    /// Bytes of all archived segment records.
    bytes: AtomicU64,
}

impl Archive {
    pub fn open(db: &sled::Db) -> Result<Self, StoreError> {
        let segments = db.open_tree("archive")?;
        let by_time = db.open_tree("archive_time")?;
        let by_service = db.open_tree("archive_service")?;
        let mut bytes = 0;
        for item in by_time.iter() {
            let (_, v) = item?;
            let entry = decode_index(&v)?;
            bytes += entry.bytes;
            // Archives written before the service index existed get it here.
            for key in service_keys(&entry) {
                if !by_service.contains_key(&key)? {
                    by_service.insert(key, &[])?;
                }
            }
        }
        Ok(Self { segments, by_time, by_service, bytes: AtomicU64::new(bytes) })
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Archives a finished segment. The caller settles it afterwards (done
    /// markers, one sled flush, WAL release).
    pub fn store(&self, segment: &FinishedSegment) -> Result<(), StoreError> {
        self.put(&segment.index_entry(), &segment.encoded)
    }

    /// Writes one segment and its index entry. Storing a segment again (a
    /// retry after a lost acknowledgement, a hand-over sent twice) rewrites
    /// it in place: same keys, bytes counted once.
    fn put(&self, index: &ArchiveIndexEntry, record: &[u8]) -> Result<(), StoreError> {
        let tenant = TenantId::from_trusted(index.tenant.as_str());
        let id = CorrelationId::from_trusted(index.correlation_id.as_str());
        let seg_key = segment_key(&tenant, &id, index.segment_seq);
        let tkey = time_key(index.finished_unix_ms, index.segment_seq);
        if let Some(previous) = self.segments.insert(seg_key.as_slice(), record)? {
            // A rewrite: its earlier index entry goes (after a crash the
            // segment finishes again, at another time).
            if let Ok(previous) = ArchivedSegment::decode(previous.as_ref()) {
                if let Some(old) = self.by_time.remove(time_key(previous.finished_unix_ms, index.segment_seq))? {
                    let old = decode_index(&old)?;
                    for key in service_keys(&old) {
                        self.by_service.remove(key)?;
                    }
                    let _ = self.bytes.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| Some(b.saturating_sub(old.bytes)));
                }
            }
        }
        // The service index first: an entry there without its time-index
        // entry (a crash in between) is skipped by listings.
        for key in service_keys(index) {
            self.by_service.insert(key, &[])?;
        }
        self.by_time.insert(tkey.as_slice(), encode_index(index))?;
        self.bytes.fetch_add(index.bytes, Ordering::Relaxed);
        Ok(())
    }

    /// The oldest segments, about `max_bytes` of them (at least one when
    /// any is archived), with their index entries.
    pub fn oldest(&self, max_bytes: u64) -> Result<Vec<(ArchiveIndexEntry, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        let mut bytes = 0;
        for item in self.by_time.iter() {
            if bytes >= max_bytes && !out.is_empty() {
                break;
            }
            let (_, v) = item?;
            let entry = decode_index(&v)?;
            let key = segment_key(
                &TenantId::from_trusted(entry.tenant.as_str()),
                &CorrelationId::from_trusted(entry.correlation_id.as_str()),
                entry.segment_seq,
            );
            if let Some(record) = self.segments.get(key)? {
                bytes += record.len() as u64;
                out.push((entry, record.to_vec()));
            }
        }
        Ok(out)
    }

    /// Archives a segment handed over by the leaving node `origin`, under a
    /// seq derived from (origin, its seq there): taken twice, it is stored
    /// once, and it cannot collide with this node's own seqs.
    pub fn adopt(&self, origin: NodeId, mut index: ArchiveIndexEntry, record: &[u8]) -> Result<ArchiveIndexEntry, StoreError> {
        let mut segment =
            ArchivedSegment::decode(record).map_err(|e| StoreError::Corrupt { tree: "handed-over segment", detail: e.to_string() })?;
        let seq = adopted_seq(origin, index.segment_seq);
        segment.segment_seq = seq;
        // The origin's WAL seqs mean nothing here.
        segment.wal_keys.clear();
        let record = segment.encode_to_vec();
        index.segment_seq = seq;
        index.bytes = record.len() as u64;
        self.put(&index, &record)?;
        Ok(index)
    }

    /// Removes one segment and its index entry.
    pub fn remove(&self, entry: &ArchiveIndexEntry) -> Result<(), StoreError> {
        let seg_key = segment_key(
            &TenantId::from_trusted(entry.tenant.as_str()),
            &CorrelationId::from_trusted(entry.correlation_id.as_str()),
            entry.segment_seq,
        );
        self.segments.remove(seg_key.as_slice())?;
        for key in service_keys(entry) {
            self.by_service.remove(key)?;
        }
        if self.by_time.remove(time_key(entry.finished_unix_ms, entry.segment_seq))?.is_some() {
            let _ = self.bytes.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| Some(b.saturating_sub(entry.bytes)));
        }
        Ok(())
    }

    /// Every archived segment of a session, oldest first.
    pub fn segments(&self, tenant: &TenantId, id: &CorrelationId) -> Result<Vec<ArchivedSegment>, StoreError> {
        self.segments
            .scan_prefix(session_prefix(tenant, id))
            .map(|item| {
                let (_, v) = item?;
                ArchivedSegment::decode(v.as_ref()).map_err(|e| StoreError::Corrupt { tree: "archive", detail: e.to_string() })
            })
            .collect()
    }

    /// The records of a session's archived segments (oldest first) that
    /// `pager` keeps; every record is shown to it. Decodes only those kept
    /// ([`super::segment_walk`]), one stored segment at a time.
    pub fn page(&self, tenant: &TenantId, id: &CorrelationId, pager: &mut Pager) -> Result<Vec<Segment>, StoreError> {
        let mut out = Vec::new();
        for item in self.segments.scan_prefix(session_prefix(tenant, id)) {
            let (_, v) = item?;
            let kept = page_of(v.as_ref(), pager).map_err(|e| StoreError::Corrupt { tree: "archive", detail: e.to_string() })?;
            if !(kept.spans.is_empty() && kept.logs.is_empty() && kept.exemplars.is_empty()) {
                out.push(kept);
            }
        }
        Ok(out)
    }

    /// Index entries, newest finished first, for which `keep` holds; at most `limit`.
    pub fn recent(&self, limit: usize, mut keep: impl FnMut(&ArchiveIndexEntry) -> bool) -> Result<Vec<ArchiveIndexEntry>, StoreError> {
        let mut out = Vec::new();
        for item in self.by_time.iter().rev() {
            if out.len() >= limit {
                break;
            }
            let (_, v) = item?;
            let entry = decode_index(&v)?;
            if keep(&entry) {
                out.push(entry);
            }
        }
        Ok(out)
    }

    /// A bounded listing ([`listing::scan`]) of the index entries of
    /// `tenant` that match `filter`, newest finished first. Only the part
    /// of the index that can match is read: segments finished in
    /// `[since, before)` (a segment finishes after its last activity), and
    /// with a service named, only that service's entries.
    pub fn list(&self, tenant: &TenantId, filter: &SessionFilter, examine_max: usize) -> Result<Scan, StoreError> {
        let low = time_key(filter.since_unix_ms.unwrap_or(0), 0);
        let high = filter.before_unix_ms.map(|b| time_key(b, 0));
        let keep = |e: &ArchiveIndexEntry| e.tenant == tenant.as_str() && filter.matches(&e.summary, e.last_activity_unix_ms);
        let Some(service) = filter.service.as_deref() else {
            let range = match &high {
                Some(high) => self.by_time.range(low.as_slice()..high.as_slice()),
                None => self.by_time.range(low.as_slice()..),
            };
            let entries = range.rev().map(|item| decode_index(&item?.1));
            return listing::scan(entries, filter.limit, examine_max, keep);
        };
        let prefix = service_prefix(tenant, service);
        let with_prefix = |time: &[u8]| [prefix.as_slice(), time].concat();
        let range = match &high {
            Some(high) => self.by_service.range(with_prefix(&low)..with_prefix(high)),
            None => self.by_service.range(with_prefix(&low)..with_prefix(&[0xff; 17])),
        };
        // The time key is the last 16 bytes of a service key; an entry
        // removed meanwhile is skipped.
        let entries = range.rev().filter_map(|item| match item {
            Ok((key, _)) => self.by_time.get(&key[key.len().saturating_sub(16)..]).transpose().map(|v| decode_index(&v?)),
            Err(e) => Some(Err(e.into())),
        });
        listing::scan(entries, filter.limit, examine_max, keep)
    }

    /// Moves every archived segment of `from` under `to` (a trace-derived
    /// session whose trace joined an explicit one).
    pub fn rekey(&self, tenant: &TenantId, from: &CorrelationId, to: &CorrelationId) -> Result<usize, StoreError> {
        let mut moved = 0;
        for mut seg in self.segments(tenant, from)? {
            let old_key = segment_key(tenant, from, seg.segment_seq);
            let new_key = segment_key(tenant, to, seg.segment_seq);
            let tkey = time_key(seg.finished_unix_ms, seg.segment_seq);
            seg.correlation_id = to.as_str().to_owned();
            let record = seg.encode_to_vec();
            // New copy first: a crash in between leaves an unreachable
            // duplicate under `from` (its alias leads to `to`), never a loss.
            self.segments.insert(new_key.as_slice(), record.as_slice())?;
            if let Some(v) = self.by_time.get(tkey.as_slice())? {
                let mut entry = decode_index(&v)?;
                entry.correlation_id = to.as_str().to_owned();
                self.by_time.insert(tkey.as_slice(), encode_index(&entry))?;
            }
            self.segments.remove(old_key.as_slice())?;
            moved += 1;
        }
        Ok(moved)
    }

    /// Removes segments that finished before `now - retention_ms`, then the
    /// oldest ones while the archive holds more than `max_bytes`. Returns how
    /// many were removed.
    pub fn expire(&self, now_unix_ms: u64, retention_ms: u64, max_bytes: u64) -> Result<u64, StoreError> {
        let cutoff = now_unix_ms.saturating_sub(retention_ms);
        let mut removed = 0;
        for item in self.by_time.iter() {
            let (k, v) = item?;
            let finished = u64_at(&k, 0).unwrap_or(0);
            if finished >= cutoff && self.bytes() <= max_bytes {
                break;
            }
            self.remove(&decode_index(&v)?)?;
            removed += 1;
        }
        Ok(removed)
    }
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
    decode_index(bytes)
}

pub fn encode_index_json(entry: &ArchiveIndexEntry) -> Vec<u8> {
    encode_index(entry)
}

/// The service-index keys of an archived segment: one per service it touched.
fn service_keys(entry: &ArchiveIndexEntry) -> Vec<Vec<u8>> {
    let tenant = TenantId::from_trusted(entry.tenant.as_str());
    entry.summary.service_names().map(|s| service_key(&tenant, s, entry.finished_unix_ms, entry.segment_seq)).collect()
}

fn encode_index(entry: &ArchiveIndexEntry) -> Vec<u8> {
    // Serializing plain data to a Vec cannot fail.
    serde_json::to_vec(entry).unwrap_or_default()
}

fn decode_index(bytes: &[u8]) -> Result<ArchiveIndexEntry, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt { tree: "archive_time", detail: e.to_string() })
}

#[cfg(test)]
mod tests;
