use std::sync::Arc;

use ollystack_proto::store::WalEntry;
use opentelemetry_proto::tonic::trace::v1::Span;

use super::*;
use crate::model::SessionKey;
use crate::session::{SessionInput, SessionState, SpanInput};
use crate::wal::Wal;

fn setup() -> (tempfile::TempDir, sled::Db, Wal, Archive) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sled::open(dir.path().join("db")).expect("db");
    let (wal, _) = Wal::open(&dir.path().join("wal"), &db).expect("wal");
    let archive = Archive::open(&db, &dir.path().join("archive"), None).expect("archive");
    (dir, db, wal, archive)
}

fn state(id: &str, wal_key: u64, span: u8) -> SessionState {
    let key = SessionKey { tenant: TenantId::default_tenant(), id: CorrelationId::from_trusted(id) };
    let mut st = SessionState::new(key, 10);
    let s = Span {
        trace_id: vec![span; 16],
        span_id: vec![span; 8],
        name: "op".into(),
        start_time_unix_nano: 5,
        end_time_unix_nano: 9,
        ..Default::default()
    };
    let input = SpanInput::from_span(Arc::from("svc"), &s, s.encode_to_vec().into_boxed_slice()).expect("ids");
    st.absorb(SessionInput { wal_key: Some(wal_key), spans: vec![input], ..Default::default() }, 20);
    st
}

#[test]
fn archived_entries_do_not_replay() {
    let (dir, db, wal, archive) = setup();
    let entry = WalEntry { correlation_id: "a".into(), ..Default::default() };
    let keys = wal.append(&[crate::wal::WalRecord::Entry(prost::Message::encode_to_vec(&entry))]).expect("append");
    let st = state("a", keys[0], 1);
    archive.store(&st.to_finished(1, 100, "idle")).expect("store");
    wal.mark_done(&st.wal_keys).expect("done");
    db.flush().expect("flush");
    drop(wal);
    let (_wal, replay) = Wal::open(&dir.path().join("wal"), &db).expect("reopen");
    assert!(replay.entries().is_empty(), "marked done with the archived segment");
    let segs = archive.segments(&TenantId::default_tenant(), &CorrelationId::from_trusted("a")).expect("segments");
    assert_eq!(segs.len(), 1);
    assert_eq!(segs[0].spans.len(), 1);
    assert_eq!(segs[0].wal_keys, st.wal_keys, "a restart can tell its WAL entries are archived");
    assert_eq!(segs[0].finish_reason, "idle");
    let recent = archive.recent(10, |_| true).expect("recent");
    assert_eq!(recent[0].correlation_id, "a");
    assert_eq!(recent[0].summary.spans, 1);
}

#[test]
fn rekey_moves_segments_and_listing() {
    let (_dir, _db, _wal, archive) = setup();
    archive.store(&state("derived", 1, 1).to_finished(1, 100, "idle")).expect("store");
    let t = TenantId::default_tenant();
    let moved = archive.rekey(&t, &CorrelationId::from_trusted("derived"), &CorrelationId::from_trusted("explicit")).expect("rekey");
    assert_eq!(moved, 1);
    assert!(archive.segments(&t, &CorrelationId::from_trusted("derived")).expect("segs").is_empty());
    assert_eq!(archive.segments(&t, &CorrelationId::from_trusted("explicit")).expect("segs")[0].correlation_id, "explicit");
    assert_eq!(archive.recent(10, |_| true).expect("recent")[0].correlation_id, "explicit");
}

#[test]
fn retention_by_age_then_bytes() {
    let (_dir, _db, _wal, archive) = setup();
    archive.store(&state("old", 1, 1).to_finished(1, 1_000, "idle")).expect("store");
    archive.store(&state("mid", 2, 2).to_finished(2, 5_000, "idle")).expect("store");
    archive.store(&state("new", 3, 3).to_finished(3, 9_000, "idle")).expect("store");
    // Age: retention 6s at t=10s removes "old" only.
    assert_eq!(archive.expire(10_000, 6_000, u64::MAX).expect("expire"), 1);
    // Bytes: a ceiling below two segments' size removes the older one.
    let one = archive.bytes() / 2;
    assert_eq!(archive.expire(10_000, 6_000, one).expect("expire"), 1);
    let left: Vec<String> = archive.recent(10, |_| true).expect("recent").into_iter().map(|e| e.correlation_id).collect();
    assert_eq!(left, vec!["new".to_owned()]);
}

#[test]
fn storing_a_segment_again_rewrites_it() {
    let (_dir, _db, _wal, archive) = setup();
    let segment = state("a", 1, 1).to_finished(7, 100, "idle");
    archive.store(&segment).expect("store");
    let bytes = archive.bytes();
    archive.store(&segment).expect("store again");
    let segs = archive.segments(&TenantId::default_tenant(), &CorrelationId::from_trusted("a")).expect("segments");
    assert_eq!(segs.len(), 1, "one copy");
    assert_eq!(archive.recent(10, |_| true).expect("recent").len(), 1, "one listing entry");
    assert_eq!(archive.bytes(), bytes, "bytes counted once");
    // After a crash the same segment finishes again, later: still one copy
    // and one listing entry, at the new time.
    archive.store(&state("a", 1, 1).to_finished(7, 300, "idle")).expect("store after restart");
    let recent = archive.recent(10, |_| true).expect("recent");
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].finished_unix_ms, 300);
    assert_eq!(archive.bytes(), recent[0].bytes, "only the new copy counted");
}

/// A one-span session of `service`.
fn state_of(id: &str, service: &str, span: u8) -> SessionState {
    let key = SessionKey { tenant: TenantId::default_tenant(), id: CorrelationId::from_trusted(id) };
    let mut st = SessionState::new(key, 10);
    let s = Span { trace_id: vec![span; 16], span_id: vec![span; 8], name: "op".into(), ..Default::default() };
    let input = SpanInput::from_span(Arc::from(service), &s, s.encode_to_vec().into_boxed_slice()).expect("ids");
    st.absorb(SessionInput { spans: vec![input], ..Default::default() }, 20);
    st
}

fn filter(service: Option<&str>) -> SessionFilter {
    SessionFilter { service: service.map(str::to_owned), limit: 50, ..Default::default() }
}

#[test]
fn listing_by_service_reads_only_that_service() {
    let (_dir, _db, _wal, archive) = setup();
    for i in 0..200u64 {
        let service = if i == 17 { "rare" } else { "busy" };
        archive.store(&state_of(&format!("s{i}"), service, 1).to_finished(i, 1_000 + i, "idle")).expect("store");
    }
    let tenant = TenantId::default_tenant();
    let none = archive.list(&tenant, &filter(Some("nowhere")), 1_000).expect("list");
    assert_eq!((none.entries.len(), none.examined, none.resume_before_unix_ms), (0, 0, None), "nothing of that service is looked at");
    let rare = archive.list(&tenant, &filter(Some("rare")), 1_000).expect("list");
    assert_eq!((rare.examined, rare.entries.iter().map(|e| e.correlation_id.as_str()).collect::<Vec<_>>()), (1, vec!["s17"]));
    // Without a service: the time index, newest first, bounded.
    let all = archive.list(&tenant, &filter(None), 1_000).expect("list");
    assert_eq!((all.entries.len(), all.entries[0].correlation_id.as_str()), (50, "s199"));
    let bounded = archive.list(&tenant, &SessionFilter { errors_only: true, ..filter(None) }, 30).expect("list");
    assert_eq!((bounded.examined, bounded.resume_before_unix_ms), (30, Some(1_170)));
    let rest =
        archive.list(&tenant, &SessionFilter { errors_only: true, before_unix_ms: Some(1_170), ..filter(None) }, 1_000).expect("list");
    assert_eq!((rest.examined, rest.resume_before_unix_ms), (170, None), "the continuation looks at the rest once");
}

#[test]
fn since_bounds_the_time_index() {
    let (_dir, _db, _wal, archive) = setup();
    for i in 0..100u64 {
        archive.store(&state_of(&format!("s{i}"), "svc", 1).to_finished(i, 1_000 + i, "idle")).expect("store");
    }
    // Finished before `since` means last active before it: never looked at.
    let found = archive.list(&TenantId::default_tenant(), &SessionFilter { since_unix_ms: Some(1_090), ..filter(Some("svc")) }, 1_000);
    assert_eq!(found.expect("list").examined, 10);
    let found = archive.list(&TenantId::default_tenant(), &SessionFilter { since_unix_ms: Some(1_090), ..filter(None) }, 1_000);
    assert_eq!(found.expect("list").examined, 10);
}

#[test]
fn the_service_index_follows_removals_and_is_rebuilt_on_open() {
    let (dir, db, _wal, archive) = setup();
    archive.store(&state_of("old", "svc", 1).to_finished(1, 100, "idle")).expect("store");
    archive.store(&state_of("new", "svc", 2).to_finished(2, 200, "idle")).expect("store");
    assert_eq!(archive.expire(250, 100, u64::MAX).expect("expire"), 1);
    let tenant = TenantId::default_tenant();
    let listed = archive.list(&tenant, &filter(Some("svc")), 1_000).expect("list");
    assert_eq!((listed.examined, listed.entries[0].correlation_id.as_str()), (1, "new"));
    // An archive written before the service index existed.
    db.drop_tree("archive_service").expect("drop");
    drop(archive);
    let reopened = Archive::open(&db, &dir.path().join("archive"), None).expect("reopen");
    let listed = reopened.list(&tenant, &filter(Some("svc")), 1_000).expect("list");
    assert_eq!(listed.entries.len(), 1);
    drop(dir);
}

/// A session of `spans` spans (IDs `first..first + spans`) of one service.
fn state_with_spans(id: &str, first: u8, spans: u8) -> SessionState {
    let key = SessionKey { tenant: TenantId::default_tenant(), id: CorrelationId::from_trusted(id) };
    let mut st = SessionState::new(key, 10);
    let inputs = (first..first + spans)
        .map(|n| {
            let s = Span { trace_id: vec![1; 16], span_id: vec![n; 8], name: format!("op{n}"), ..Default::default() };
            SpanInput::from_span(Arc::from("svc"), &s, s.encode_to_vec().into_boxed_slice()).expect("ids")
        })
        .collect();
    st.absorb(SessionInput { spans: inputs, ..Default::default() }, 20);
    st
}

#[test]
fn a_page_crosses_segments_oldest_first_and_counts_them_all() {
    let (_dir, _db, _wal, archive) = setup();
    archive.store(&state_with_spans("big", 1, 4).to_finished(1, 100, "max_spans")).expect("store");
    archive.store(&state_with_spans("big", 5, 4).to_finished(2, 200, "max_spans")).expect("store");
    archive.store(&state_with_spans("big", 9, 4).to_finished(3, 300, "idle")).expect("store");
    let (tenant, id) = (TenantId::default_tenant(), CorrelationId::from_trusted("big"));
    let mut pager = Pager::new(crate::query::Page { offset: 3, limit: 6 });
    let page = archive.page(&tenant, &id, &mut pager).expect("page");
    let ids: Vec<u8> = page.iter().flat_map(|s| &s.spans).map(|s| Span::decode(s.span.as_slice()).expect("span").span_id[0]).collect();
    assert_eq!(ids, [4, 5, 6, 7, 8, 9], "records 3..9 in storage order");
    assert_eq!(pager.seen().spans, 12, "every stored span counted");
    assert_eq!(page.len(), 3, "one part per segment that holds part of the page");
}

/// Segments `s{first}..s{first + n}` of `service`, finished at 1_000 + i, as one batch (one page).
fn batch(archive: &Archive, service: &str, first: u64, n: u64) {
    let segments: Vec<FinishedSegment> =
        (first..first + n).map(|i| state_of(&format!("s{i}"), service, 1).to_finished(i, 1_000 + i, "idle")).collect();
    archive.store_batch(&segments).expect("store batch");
}

fn ids(entries: &[ArchiveIndexEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.correlation_id.as_str()).collect()
}

#[test]
fn a_batch_is_one_page_and_listings_walk_pages_newest_first() {
    let (_dir, _db, _wal, archive) = setup();
    batch(&archive, "a", 0, 4);
    batch(&archive, "b", 4, 4);
    batch(&archive, "a", 8, 4);
    let tenant = TenantId::default_tenant();
    let all = archive.list(&tenant, &filter(None), 1_000).expect("list");
    assert_eq!(ids(&all.entries), ["s11", "s10", "s9", "s8", "s7", "s6", "s5", "s4", "s3", "s2", "s1", "s0"]);
    let a = archive.list(&tenant, &filter(Some("a")), 1_000).expect("list");
    assert_eq!((a.examined, ids(&a.entries).len()), (8, 8), "only the pages that touched `a`");
    // `before` in the middle of a page: exactly the segments finished before it.
    let window = SessionFilter { before_unix_ms: Some(1_009), limit: 4, ..filter(None) };
    assert_eq!(ids(&archive.list(&tenant, &window, 1_000).expect("list").entries), ["s8", "s7", "s6", "s5"]);
    let window_a = SessionFilter { service: Some("a".into()), limit: 50, ..window };
    assert_eq!(ids(&archive.list(&tenant, &window_a, 1_000).expect("list").entries), ["s8", "s3", "s2", "s1", "s0"]);
    // Paging by `before` visits everything once.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = archive.list(&tenant, &SessionFilter { before_unix_ms: before, ..filter(None) }, 5).expect("list");
        seen.extend(page.entries.iter().map(|e| e.correlation_id.clone()));
        match page.resume_before_unix_ms {
            Some(t) => before = Some(t),
            None => break,
        }
    }
    assert_eq!(seen.len(), 12);
    assert_eq!(archive.recent(3, |_| true).expect("recent").len(), 3);
    assert_eq!(archive.oldest(1).expect("oldest")[0].0.correlation_id, "s0");
}

#[test]
fn a_late_segment_is_listed_when_it_reached_the_archive() {
    let (_dir, _db, _wal, archive) = setup();
    batch(&archive, "a", 0, 3);
    archive.store(&state_of("late", "a", 1).to_finished(99, 10, "idle")).expect("store");
    let tenant = TenantId::default_tenant();
    let all = archive.list(&tenant, &filter(None), 1_000).expect("list");
    assert_eq!(ids(&all.entries), ["late", "s2", "s1", "s0"]);
    assert_eq!(all.entries[0].finished_unix_ms, 1_002, "at the newest page's time, not before it");
    let segs = archive.segments(&tenant, &CorrelationId::from_trusted("late")).expect("segments");
    assert_eq!(segs[0].finished_unix_ms, 10, "the record keeps its own time");
}

#[test]
fn removing_rekeying_and_rewriting_inside_a_page() {
    let (_dir, _db, _wal, archive) = setup();
    batch(&archive, "a", 0, 3);
    let tenant = TenantId::default_tenant();
    let total = archive.bytes();
    let listed = archive.list(&tenant, &filter(None), 1_000).expect("list").entries;
    archive.remove(&listed[1]).expect("remove s1");
    assert_eq!(ids(&archive.list(&tenant, &filter(None), 1_000).expect("list").entries), ["s2", "s0"]);
    assert_eq!(archive.bytes(), total - listed[1].bytes);
    assert_eq!(archive.rekey(&tenant, &CorrelationId::from_trusted("s0"), &CorrelationId::from_trusted("x")).expect("rekey"), 1);
    assert_eq!(ids(&archive.list(&tenant, &filter(None), 1_000).expect("list").entries), ["s2", "x"]);
    assert_eq!(archive.segments(&tenant, &CorrelationId::from_trusted("x")).expect("segments").len(), 1);
    // s2 stored again (a retry): it moves to the new page, listed once.
    archive.store(&state_of("s2", "a", 1).to_finished(2, 2_000, "idle")).expect("rewrite");
    let all = archive.list(&tenant, &filter(None), 1_000).expect("list").entries;
    assert_eq!((ids(&all), all[0].finished_unix_ms), (vec!["s2", "x"], 2_000));
    assert_eq!(archive.bytes(), all.iter().map(|e| e.bytes).sum::<u64>());
    // Removing the last entries of a page removes the page and its service keys.
    archive.remove(&all[1]).expect("remove x");
    let a = archive.list(&tenant, &filter(Some("a")), 1_000).expect("list");
    assert_eq!((a.examined, ids(&a.entries)), (1, vec!["s2"]));
}

#[test]
fn expiry_takes_whole_pages() {
    let (_dir, _db, _wal, archive) = setup();
    batch(&archive, "a", 0, 3);
    batch(&archive, "a", 3, 3);
    assert_eq!(archive.expire(1_004, 0, u64::MAX).expect("expire"), 3, "the first page ends before the cutoff; the second not");
    let left = archive.recent(10, |_| true).expect("recent");
    assert_eq!(ids(&left), ["s5", "s4", "s3"]);
    assert!(archive.segments(&TenantId::default_tenant(), &CorrelationId::from_trusted("s0")).expect("segments").is_empty());
    assert_eq!(archive.bytes(), left.iter().map(|e| e.bytes).sum::<u64>());
}

#[test]
fn an_archive_written_before_pages_reads_the_same() {
    let (dir, db, _wal, archive) = setup();
    drop(archive);
    // One record per segment, no page key, one time-index entry each.
    let segment = state_of("old", "a", 1).to_finished(5, 500, "idle");
    let tenant = TenantId::default_tenant();
    let key = crate::store::keys::segment_key(&tenant, &segment.key.id, 5);
    db.open_tree("archive").expect("tree").insert(key, segment.encoded.as_slice()).expect("insert");
    let entry = segment.index_entry();
    db.open_tree("archive_time").expect("tree").insert(time_key(500, 5), encode_index_json(&entry)).expect("insert");
    let archive = Archive::open(&db, &dir.path().join("archive"), None).expect("open");
    assert_eq!(archive.bytes(), entry.bytes);
    assert_eq!(ids(&archive.list(&tenant, &filter(Some("a")), 1_000).expect("list").entries), ["old"]);
    assert_eq!(archive.segments(&tenant, &segment.key.id).expect("segments").len(), 1);
    // Stored again under pages: the old entry goes.
    archive.store(&segment).expect("store");
    assert_eq!(ids(&archive.list(&tenant, &filter(None), 1_000).expect("list").entries), ["old"]);
    assert_eq!(archive.bytes(), entry.bytes);
}

#[test]
fn an_archive_with_records_inline_reads_the_same_and_moves_them_to_files_when_rewritten() {
    let (dir, db, _wal, archive) = setup();
    archive.store(&state_of("inline", "a", 1).to_finished(5, 500, "idle")).expect("store");
    drop(archive);
    // As archives before record files stored it: page key, then the record.
    let tenant = TenantId::default_tenant();
    let tree = db.open_tree("archive").expect("tree");
    let (key, value) = tree.iter().next().expect("one").expect("read");
    let (Some(page_key), Body::InFile(at)) = split_value(&value) else { panic!("a pointer") };
    let record = std::fs::read(dir.path().join("archive").join(format!("{:010}.seg", at.file))).expect("file");
    let record = &record[at.offset as usize..][..at.len as usize];
    tree.insert(&key, page::paged_value(page_key, record)).expect("insert");
    let archive = Archive::open(&db, &dir.path().join("archive"), None).expect("reopen");
    let id = CorrelationId::from_trusted("inline");
    assert_eq!(archive.segments(&tenant, &id).expect("segments").len(), 1);
    assert_eq!(ids(&archive.list(&tenant, &filter(Some("a")), 1_000).expect("list").entries), ["inline"]);
    archive.rekey(&tenant, &id, &CorrelationId::from_trusted("moved")).expect("rekey");
    let moved = archive.segments(&tenant, &CorrelationId::from_trusted("moved")).expect("segments");
    assert_eq!(moved[0].correlation_id, "moved");
    assert!(archive.segments(&tenant, &id).expect("segments").is_empty());
}

fn record_files(dir: &tempfile::TempDir) -> usize {
    std::fs::read_dir(dir.path().join("archive")).expect("dir").count()
}

#[test]
fn records_survive_a_reopen_and_a_file_goes_once_retention_took_all_of_it() {
    let (dir, db, _wal, archive) = setup();
    archive.store(&state_of("old", "svc", 1).to_finished(1, 100, "idle")).expect("store");
    drop(archive);
    // A second life appends to a new file.
    let archive = Archive::open(&db, &dir.path().join("archive"), None).expect("reopen");
    archive.store(&state_of("new", "svc", 2).to_finished(2, 200, "idle")).expect("store");
    let tenant = TenantId::default_tenant();
    assert_eq!(archive.segments(&tenant, &CorrelationId::from_trusted("old")).expect("old").len(), 1);
    assert_eq!(record_files(&dir), 2);
    assert_eq!(archive.expire(250, 100, u64::MAX).expect("expire"), 1);
    assert_eq!(record_files(&dir), 2, "deleted only after a flush");
    let dead = archive.dead_record_files();
    db.flush().expect("flush");
    archive.delete_record_files(&dead).expect("delete");
    assert_eq!(record_files(&dir), 1, "the old file held nothing live");
    assert_eq!(archive.segments(&tenant, &CorrelationId::from_trusted("new")).expect("new").len(), 1);
    // Removing the rest empties the file being appended to, which stays.
    let rest = archive.recent(10, |_| true).expect("recent");
    archive.remove(&rest[0]).expect("remove");
    assert!(archive.dead_record_files().is_empty(), "the file appended to stays");
    assert_eq!(record_files(&dir), 1);
    drop(archive);
    let _ = Archive::open(&db, &dir.path().join("archive"), None).expect("reopen");
    assert_eq!(record_files(&dir), 0, "unreferenced at open");
}
