use super::*;

fn entry(id: &str) -> WalRecord {
    WalRecord::Entry(id.as_bytes().to_vec())
}

fn open(dir: &Path, db: &sled::Db) -> (Wal, Vec<(u64, WalRecord)>) {
    let (wal, replay) = Wal::open(&dir.join("wal"), db).expect("open");
    (wal, replay.collect::<Result<_, _>>().expect("replay"))
}

#[tokio::test]
async fn synced_entries_replay_in_order_until_released() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sled::open(dir.path().join("db")).expect("db");
    let seqs = {
        let (wal, replay) = open(dir.path(), &db);
        assert!(replay.is_empty());
        let seqs = wal.append(&[entry("a"), entry("b"), entry("c")]).expect("append");
        wal.sync(seqs[2]).await.expect("sync");
        seqs
    };
    let (wal, replay) = open(dir.path(), &db);
    assert_eq!(replay, vec![(seqs[0], entry("a")), (seqs[1], entry("b")), (seqs[2], entry("c"))]);
    // New appends continue after the replayed seqs.
    let next = wal.append(&[entry("d")]).expect("append");
    assert!(next[0] > seqs[2]);

    // "b" archived: marked done, released. It no longer replays.
    wal.mark_done(&[seqs[1]]).expect("done");
    wal.release(&[seqs[1]]).expect("release");
    wal.sync(next[0]).await.expect("sync");
    drop(wal);
    let (wal, replay) = open(dir.path(), &db);
    let ids: Vec<u64> = replay.iter().map(|(s, _)| *s).collect();
    assert_eq!(ids, vec![seqs[0], seqs[2], next[0]]);

    // Everything released: old segments are deleted, and nothing pins
    // bytes any more.
    assert!(wal.pinned_bytes() > 0);
    let all: Vec<u64> = ids.clone();
    wal.mark_done(&all).expect("done");
    wal.release(&all).expect("release");
    assert_eq!(wal.segment_count(), 1, "only the segment being written remains");
    assert_eq!(wal.pinned_bytes(), 0);
    drop(wal);
    let (_wal, replay) = open(dir.path(), &db);
    assert!(replay.is_empty());
    drop(_wal);
    // Seqs never go back, even once every file that held them is gone
    // (segment seqs of finished sessions are derived from them).
    let (wal, _) = open(dir.path(), &db);
    let later = wal.append(&[entry("e")]).expect("append");
    assert!(later[0] > next[0], "{later:?} after {next:?}");
}

#[tokio::test]
async fn aliases_and_bindings_replay_even_after_their_entries_are_released() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sled::open(dir.path().join("db")).expect("db");
    let alias = WalRecord::Alias {
        tenant: crate::model::TenantId::default_tenant(),
        from: crate::model::CorrelationId::from_trusted("olly-1-aa"),
        to: crate::model::CorrelationId::from_trusted("order-9"),
    };
    let (wal, _) = open(dir.path(), &db);
    let seqs = wal.append(&[alias.clone(), entry("x")]).expect("append");
    wal.sync(seqs[1]).await.expect("sync");
    drop(wal);
    let (_wal, replay) = open(dir.path(), &db);
    assert_eq!(replay, vec![(seqs[0], alias), (seqs[1], entry("x"))]);
}

#[test]
fn positions_that_break_the_log_are_named() {
    assert_eq!(check_positions(1, 1, 0, Some(1)), Ok(()));
    assert_eq!(check_positions(5, 9, 8, Some(5)), Ok(()));
    assert!(check_positions(10, 9, 8, Some(10)).is_err(), "file starts past the next seq");
    assert!(check_positions(5, 9, 9, Some(5)).is_err(), "unassigned seq marked durable");
    assert!(check_positions(5, 9, 8, Some(7)).is_err(), "a newer file than the one written");
    assert!(check_positions(5, 9, 8, None).is_err(), "no file at all");
}
