//! Index pages: the time index holds one record per *page* of archived
//! segments (all the segments one archive write stored together), not one
//! per segment, so a batch of finished sessions costs one time-index write
//! and one service-index write per service it touched.
//!
//! A page's key is `time_key(newest finished, page id)`. Pages never
//! overlap in time: a segment whose finished time is older than the newest
//! page already written is indexed at that page's time instead ("listed
//! when it reached the archive"), so walking pages newest first walks
//! their segments newest first. Archives written before pages existed hold
//! one entry per time-index record, keyed `time_key(finished, seq)`: each
//! is a page of one, and reads the same way.
//!
//! A stored segment value starts with its page's key, so a rewrite or
//! removal finds the page entry to drop without a search, then says where
//! the record is: in a record file ([`IN_FILE`], [`pointer_value`]) or,
//! for archives written before record files existed, inline ([`PAGED`]),
//! or (before pages) the bare record.

use std::collections::BTreeSet;

use crate::session::finished::ArchiveIndexEntry;
use crate::store::archive::records::Location;
use crate::store::StoreError;

/// First byte of a value holding its page key and the record inline. A
/// protobuf message never starts with 0 or 1 (field number 0 is invalid),
/// so bare records from before pages are told apart.
pub const PAGED: u8 = 0;

/// First byte of a value holding its page key and the record's [`Location`].
pub const IN_FILE: u8 = 1;

/// Length of a time key (and so of a page key).
pub const PAGE_KEY_LEN: usize = 16;

/// Where a stored segment's record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body<'a> {
    Inline(&'a [u8]),
    InFile(Location),
}

/// `PAGED page_key record` (how archives before record files stored it).
#[cfg(test)]
pub fn paged_value(page_key: &[u8], record: &[u8]) -> Vec<u8> {
    [&[PAGED][..], page_key, record].concat()
}

/// `IN_FILE page_key location`.
pub fn pointer_value(page_key: &[u8], at: &Location) -> Vec<u8> {
    [&[IN_FILE][..], page_key, &at.encode()].concat()
}

/// Splits a stored segment value into its page key, when it has one, and
/// where its record is.
pub fn split_value(value: &[u8]) -> (Option<&[u8]>, Body<'_>) {
    match value.split_first() {
        Some((&IN_FILE, rest)) if rest.len() == PAGE_KEY_LEN + Location::ENCODED_LEN => match Location::decode(&rest[PAGE_KEY_LEN..]) {
            Some(at) => (Some(&rest[..PAGE_KEY_LEN]), Body::InFile(at)),
            None => (None, Body::Inline(value)),
        },
        Some((&PAGED, rest)) if rest.len() >= PAGE_KEY_LEN => (Some(&rest[..PAGE_KEY_LEN]), Body::Inline(&rest[PAGE_KEY_LEN..])),
        _ => (None, Body::Inline(value)),
    }
}

/// The entries of a page, newest finished first (ties: highest seq first).
pub fn sort_newest_first(entries: &mut [ArchiveIndexEntry]) {
    entries.sort_by_key(|e| std::cmp::Reverse((e.finished_unix_ms, e.segment_seq)));
}

/// Encodes a page (a JSON array of its entries, newest first).
pub fn encode_page(entries: &[ArchiveIndexEntry]) -> Vec<u8> {
    // Serializing plain data to a Vec cannot fail.
    serde_json::to_vec(entries).unwrap_or_default()
}

/// Decodes a page, or a single entry written before pages existed.
pub fn decode_page(bytes: &[u8]) -> Result<Vec<ArchiveIndexEntry>, StoreError> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt { tree: "archive_time", detail: e.to_string() };
    match bytes.first() {
        Some(b'{') => Ok(vec![serde_json::from_slice(bytes).map_err(corrupt)?]),
        _ => serde_json::from_slice(bytes).map_err(corrupt),
    }
}

/// Whether `entry` is the page entry of segment (tenant, id, seq).
pub fn is_segment(entry: &ArchiveIndexEntry, tenant: &str, id: &str, seq: u64) -> bool {
    entry.segment_seq == seq && entry.correlation_id == id && entry.tenant == tenant
}

/// The (tenant, service) pairs a page's entries touched.
pub fn services_of(entries: &[ArchiveIndexEntry]) -> BTreeSet<(String, String)> {
    entries.iter().flat_map(|e| e.summary.service_names().map(move |s| (e.tenant.clone(), s.to_owned()))).collect()
}

/// Clamps the entries of a new page to the newest page written before it
/// (`floor`), so pages never overlap in time; returns the page's time.
pub fn clamp_to(entries: &mut [ArchiveIndexEntry], floor: u64) -> u64 {
    for e in entries.iter_mut() {
        e.finished_unix_ms = e.finished_unix_ms.max(floor);
    }
    entries.iter().map(|e| e.finished_unix_ms).max().unwrap_or(floor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Summary;

    fn entry(id: &str, finished_unix_ms: u64, seq: u64) -> ArchiveIndexEntry {
        ArchiveIndexEntry {
            tenant: "default".into(),
            correlation_id: id.into(),
            segment_seq: seq,
            finished_unix_ms,
            last_activity_unix_ms: finished_unix_ms,
            bytes: 3,
            summary: Summary::default(),
        }
    }

    #[test]
    fn a_value_carries_its_page_key_and_old_records_read_as_they_are() {
        let key = [7u8; PAGE_KEY_LEN];
        let value = paged_value(&key, b"\x08\x01");
        assert_eq!(split_value(&value), (Some(&key[..]), Body::Inline(&b"\x08\x01"[..])));
        assert_eq!(split_value(b"\x08\x01"), (None, Body::Inline(&b"\x08\x01"[..])), "a record from before pages");
        assert_eq!(split_value(b""), (None, Body::Inline(&b""[..])));
        let at = Location { file: 3, offset: 99, len: 12, crc: 5 };
        assert_eq!(split_value(&pointer_value(&key, &at)), (Some(&key[..]), Body::InFile(at)));
    }

    #[test]
    fn pages_and_single_old_entries_decode_alike() {
        let mut page = vec![entry("a", 5, 1), entry("b", 9, 2), entry("c", 9, 3)];
        sort_newest_first(&mut page);
        let ids: Vec<&str> = page.iter().map(|e| e.correlation_id.as_str()).collect();
        assert_eq!(ids, ["c", "b", "a"]);
        assert_eq!(decode_page(&encode_page(&page)).expect("page"), page);
        let single = serde_json::to_vec(&page[0]).expect("json");
        assert_eq!(decode_page(&single).expect("old entry"), vec![page[0].clone()]);
        assert!(decode_page(b"not json").is_err());
    }

    #[test]
    fn a_late_segment_is_indexed_at_the_newest_page_time() {
        let mut page = vec![entry("late", 50, 1), entry("now", 120, 2)];
        assert_eq!(clamp_to(&mut page, 100), 120);
        assert_eq!(page[0].finished_unix_ms, 100);
        assert_eq!(page[1].finished_unix_ms, 120);
        assert_eq!(clamp_to(&mut [], 100), 100);
    }
}
