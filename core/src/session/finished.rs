//! A finished session segment on its way to storage, and the index record
//! stores keep of it to list and filter sessions.

use serde::{Deserialize, Serialize};

use super::summary::Summary;
use crate::model::SessionKey;

/// A finished session segment on its way to storage.
#[derive(Debug, Clone)]
pub struct FinishedSegment {
    pub key: SessionKey,
    /// Node-local, unique, increasing sequence number of the segment.
    pub seq: u64,
    pub opened_unix_ms: u64,
    pub finished_unix_ms: u64,
    pub last_activity_unix_ms: u64,
    pub reason: &'static str,
    pub summary: Summary,
    /// The encoded `ArchivedSegment`.
    pub encoded: Vec<u8>,
    /// WAL entries holding the segment's signals.
    pub wal_keys: Vec<u64>,
    /// Bytes reserved from the memory budget for the segment.
    pub held_bytes: u64,
}

impl FinishedSegment {
    /// The listing entry of this segment.
    pub fn index_entry(&self) -> ArchiveIndexEntry {
        ArchiveIndexEntry {
            tenant: self.key.tenant.as_str().to_owned(),
            correlation_id: self.key.id.as_str().to_owned(),
            segment_seq: self.seq,
            finished_unix_ms: self.finished_unix_ms,
            last_activity_unix_ms: self.last_activity_unix_ms,
            bytes: self.encoded.len() as u64,
            summary: self.summary.clone(),
        }
    }
}

/// The time index's record of one archived segment: enough to list and
/// filter sessions without decoding their signals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchiveIndexEntry {
    pub tenant: String,
    pub correlation_id: String,
    pub segment_seq: u64,
    pub finished_unix_ms: u64,
    pub last_activity_unix_ms: u64,
    /// Encoded size of the segment record.
    pub bytes: u64,
    pub summary: Summary,
}
