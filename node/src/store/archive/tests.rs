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
    let archive = Archive::open(&db).expect("archive");
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
