//! The bounded scan behind session listings: index entries come newest
//! finished first (from the time index, or the service index when the
//! listing names a service); at most `examine_max` of them are looked at
//! per call, so a filter that matches little costs a bounded amount of
//! work, and the answer says where to resume.
//!
//! The scan stops only between two finished times (Unix ms), so "resume
//! with segments finished before T" (`before=T`) continues exactly where
//! it stopped: nothing is skipped, nothing looked at twice. It may
//! therefore look at a few more than `examine_max` entries: those sharing
//! the finished millisecond of the last one.

use super::ArchiveIndexEntry;

/// Index entries one listing call looks at, at most (plus those sharing
/// the last one's finished millisecond).
pub const EXAMINE_MAX: usize = 50_000;

/// What a bounded scan found.
#[derive(Debug, Default, PartialEq)]
pub struct Scan {
    /// Entries that passed the filter, newest finished first; at most `limit`.
    pub entries: Vec<ArchiveIndexEntry>,
    /// Entries looked at.
    pub examined: usize,
    /// Set when the scan stopped at its bound before the index ended:
    /// entries finished before this time (Unix ms) were not looked at.
    pub resume_before_unix_ms: Option<u64>,
}

/// Scans `entries` (newest finished first) for up to `limit` that `keep`
/// accepts, looking at about `examine_max` at most (see the module docs).
pub fn scan<E>(
    entries: impl Iterator<Item = Result<ArchiveIndexEntry, E>>,
    limit: usize,
    examine_max: usize,
    mut keep: impl FnMut(&ArchiveIndexEntry) -> bool,
) -> Result<Scan, E> {
    let mut out = Scan::default();
    let mut last_finished: Option<u64> = None;
    for entry in entries {
        if out.entries.len() >= limit {
            break;
        }
        let entry = entry?;
        if let Some(last) = last_finished {
            debug_assert!(entry.finished_unix_ms <= last, "entries come newest finished first");
            if out.examined >= examine_max && entry.finished_unix_ms != last {
                out.resume_before_unix_ms = Some(last);
                break;
            }
        }
        last_finished = Some(entry.finished_unix_ms);
        out.examined += 1;
        if keep(&entry) {
            out.entries.push(entry);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Summary;

    fn entry(finished_unix_ms: u64, seq: u64) -> ArchiveIndexEntry {
        ArchiveIndexEntry {
            tenant: "default".into(),
            correlation_id: format!("s{seq}"),
            segment_seq: seq,
            finished_unix_ms,
            last_activity_unix_ms: finished_unix_ms,
            bytes: 1,
            summary: Summary::default(),
        }
    }

    /// Entries finished at 100, 99, 99, 99, 98, …: newest first.
    fn index() -> Vec<ArchiveIndexEntry> {
        vec![entry(100, 9), entry(99, 8), entry(99, 7), entry(99, 6), entry(98, 5), entry(97, 4), entry(96, 3)]
    }

    fn ok(entries: Vec<ArchiveIndexEntry>) -> impl Iterator<Item = Result<ArchiveIndexEntry, ()>> {
        entries.into_iter().map(Ok)
    }

    #[test]
    fn a_filter_matching_nothing_stops_at_the_bound_between_milliseconds() {
        let found = scan(ok(index()), 10, 2, |_| false).expect("scan");
        // 2 looked at (100, 99), then the rest of 99, then the stop.
        assert_eq!((found.examined, found.resume_before_unix_ms, found.entries.len()), (4, Some(99), 0));
    }

    #[test]
    fn resuming_before_the_stop_visits_the_rest_once() {
        let mut seen = Vec::new();
        let mut before: Option<u64> = None;
        let mut calls = 0;
        loop {
            let rest = index().into_iter().filter(|e| before.is_none_or(|b| e.finished_unix_ms < b)).collect();
            let found = scan(ok(rest), 10, 2, |_| true).expect("scan");
            seen.extend(found.entries.iter().map(|e| e.segment_seq));
            calls += 1;
            match found.resume_before_unix_ms {
                Some(b) => before = Some(b),
                None => break,
            }
        }
        assert_eq!((calls, seen), (3, vec![9, 8, 7, 6, 5, 4, 3]));
    }

    #[test]
    fn a_full_listing_is_not_a_stop() {
        let found = scan(ok(index()), 2, 5, |_| true).expect("scan");
        assert_eq!((found.entries.len(), found.resume_before_unix_ms), (2, None));
        let whole = scan(ok(index()), 100, 100, |e| e.segment_seq % 2 == 0).expect("scan");
        assert_eq!((whole.examined, whole.resume_before_unix_ms, whole.entries.len()), (7, None, 3));
    }

    #[test]
    fn errors_stop_the_scan() {
        let entries = vec![Ok(entry(5, 1)), Err("corrupt"), Ok(entry(4, 2))];
        assert_eq!(scan(entries.into_iter(), 10, 10, |_| true), Err("corrupt"));
    }
}
