//! Paging of one session's signals: which part of a session a read holds,
//! so no single request loads or answers an unbounded session.
//!
//! A session's records are numbered per kind (spans, logs, exemplars) in
//! *storage order*: archived segments oldest first (by ID, then segment
//! seq), then the live segments, each in arrival order. That order is
//! stable while a session grows (new signals append to the live segment,
//! and a live segment that finishes becomes the newest archived one, in
//! the same place), so paging by offset visits every record once. A page
//! holds records `[offset, offset + limit)` of each kind; inside a page the
//! answer is sorted by time as before.
//!
//! The [`Pager`] decides, record by record, whether a record is in the
//! page and counts every record it is shown, so readers (the archive, live
//! snapshots, ClickHouse rows) decode only what they keep.

use serde::{Deserialize, Serialize};

use super::{PagedSession, Segment, SessionData};

/// The most records of each kind one page answers, and the default.
pub const PAGE_LIMIT_MAX: u64 = 10_000;

/// Which records of each kind a read keeps: `[offset, offset + limit)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    pub offset: u64,
    pub limit: u64,
}

impl Page {
    /// Every record: for callers that analyse a whole session (RCA). API
    /// reads of one session use [`Page::first`] or a caller's page.
    pub const ALL: Page = Page { offset: 0, limit: u64::MAX };

    /// The first `limit` records of each kind.
    pub const fn first(limit: u64) -> Self {
        Self { offset: 0, limit }
    }

    /// One past the last record this page may hold.
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.limit)
    }

    /// Whether record number `index` (of its kind) is in the page.
    pub fn holds(&self, index: u64) -> bool {
        index >= self.offset && index < self.end()
    }
}

/// Records of each kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub spans: u64,
    pub logs: u64,
    pub exemplars: u64,
}

impl Counts {
    pub fn add(&mut self, other: Counts) {
        self.spans += other.spans;
        self.logs += other.logs;
        self.exemplars += other.exemplars;
    }

    /// The records of a segment.
    pub fn of(segment: &Segment) -> Self {
        Self { spans: segment.spans.len() as u64, logs: segment.logs.len() as u64, exemplars: segment.exemplars.len() as u64 }
    }
}

/// Walks a session's records in storage order and keeps those of one page.
#[derive(Debug, Clone)]
pub struct Pager {
    page: Page,
    /// Records shown so far, per kind: the index of the next one.
    seen: Counts,
}

impl Pager {
    pub fn new(page: Page) -> Self {
        Self { page, seen: Counts::default() }
    }

    /// The next span: true when it is in the page.
    pub fn span(&mut self) -> bool {
        Self::step(&self.page, &mut self.seen.spans)
    }

    pub fn log(&mut self) -> bool {
        Self::step(&self.page, &mut self.seen.logs)
    }

    pub fn exemplar(&mut self) -> bool {
        Self::step(&self.page, &mut self.seen.exemplars)
    }

    fn step(page: &Page, seen: &mut u64) -> bool {
        let keep = page.holds(*seen);
        *seen += 1;
        keep
    }

    /// Every record shown so far: the whole session once all are shown.
    pub fn seen(&self) -> Counts {
        self.seen
    }

    /// The part of an in-memory segment (a live snapshot) in the page.
    pub fn keep(&mut self, segment: Segment) -> Segment {
        let Segment { live, spans, logs, exemplars } = segment;
        Segment {
            live,
            spans: spans.into_iter().filter(|_| self.span()).collect(),
            logs: logs.into_iter().filter(|_| self.log()).collect(),
            exemplars: exemplars.into_iter().filter(|_| self.exemplar()).collect(),
        }
    }
}

/// One page of a session held in memory (tests, fixed backends), in
/// storage order: archived segments, then live ones.
pub fn page_session(mut data: SessionData, page: Page) -> PagedSession {
    let mut pager = Pager::new(page);
    let (live, archived): (Vec<Segment>, Vec<Segment>) = std::mem::take(&mut data.segments).into_iter().partition(|s| s.live);
    data.segments = archived.into_iter().chain(live).map(|s| pager.keep(s)).collect();
    PagedSession { data, page, total: pager.seen() }
}

/// The offset of the page after `page`, when the session (of `total`
/// records) holds records past it.
pub fn next_offset(page: Page, total: Counts) -> Option<u64> {
    let end = page.end();
    (total.spans > end || total.logs > end || total.exemplars > end).then_some(end)
}

/// Whether a page of a session with `total` records leaves some out.
pub fn is_truncated(page: Page, total: Counts) -> bool {
    let outside = |n: u64| page.offset > 0 && n > 0 || n > page.end();
    outside(total.spans) || outside(total.logs) || outside(total.exemplars)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ollystack_proto::store::{StoredLog, StoredSpan};

    fn spans(n: usize) -> Vec<StoredSpan> {
        (0..n).map(|i| StoredSpan { service_name: i.to_string(), span: vec![] }).collect()
    }

    fn names(segment: &Segment) -> Vec<String> {
        segment.spans.iter().map(|s| s.service_name.clone()).collect()
    }

    #[test]
    fn pages_cover_every_record_once_across_segments() {
        let named =
            |prefix: &str, n: usize| (0..n).map(|i| StoredSpan { service_name: format!("{prefix}{i}"), span: vec![] }).collect::<Vec<_>>();
        let segments = || {
            vec![Segment { spans: named("a", 7), ..Default::default() }, Segment { live: true, spans: named("l", 5), ..Default::default() }]
        };
        let mut all = Vec::new();
        let mut offset = Some(0);
        let mut pages = 0;
        while let Some(o) = offset {
            let page = Page { offset: o, limit: 5 };
            let mut pager = Pager::new(page);
            let kept: Vec<Segment> = segments().into_iter().map(|s| pager.keep(s)).collect();
            let held: usize = kept.iter().map(|s| s.spans.len()).sum();
            assert!(held <= 5, "a page holds at most its limit");
            all.extend(kept.iter().flat_map(names));
            assert_eq!(pager.seen().spans, 12);
            offset = next_offset(page, pager.seen());
            pages += 1;
        }
        let expected: Vec<String> = segments().iter().flat_map(names).collect();
        assert_eq!((pages, all), (3, expected));
    }

    #[test]
    fn pager_keeps_the_window_per_kind() {
        let mut pager = Pager::new(Page { offset: 2, limit: 2 });
        let kept: Vec<bool> = (0..6).map(|_| pager.span()).collect();
        assert_eq!(kept, [false, false, true, true, false, false]);
        // Logs are numbered on their own.
        assert!(!pager.log() && !pager.log() && pager.log());
        assert_eq!(pager.seen(), Counts { spans: 6, logs: 3, exemplars: 0 });
    }

    #[test]
    fn keep_filters_an_in_memory_segment() {
        let mut pager = Pager::new(Page::first(3));
        let logs = vec![StoredLog::default(); 4];
        let kept = pager.keep(Segment { live: true, spans: spans(5), logs, exemplars: vec![] });
        assert_eq!((names(&kept), kept.logs.len(), kept.live), (vec!["0".to_owned(), "1".into(), "2".into()], 3, true));
        assert_eq!(pager.seen(), Counts { spans: 5, logs: 4, exemplars: 0 });
    }

    #[test]
    fn next_and_truncated_say_what_was_left_out() {
        let page = Page::first(10);
        let fits = Counts { spans: 10, logs: 3, exemplars: 0 };
        assert_eq!((next_offset(page, fits), is_truncated(page, fits)), (None, false));
        let more_logs = Counts { spans: 2, logs: 11, exemplars: 0 };
        assert_eq!((next_offset(page, more_logs), is_truncated(page, more_logs)), (Some(10), true));
        // A later page: earlier records are left out of it.
        let second = Page { offset: 10, limit: 10 };
        assert_eq!((next_offset(second, more_logs), is_truncated(second, more_logs)), (None, true));
        // An empty session is whole on any page.
        assert!(!is_truncated(second, Counts::default()));
    }

    #[test]
    fn all_never_overflows() {
        let page = Page { offset: 5, limit: u64::MAX };
        assert_eq!(page.end(), u64::MAX);
        assert!(page.holds(u64::MAX - 1) && !page.holds(4));
        assert_eq!(next_offset(Page::ALL, Counts { spans: u64::MAX, logs: 0, exemplars: 0 }), None);
    }
}
