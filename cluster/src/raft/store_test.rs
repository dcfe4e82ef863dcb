//! openraft's storage test suite against the sled store, and restart tests:
//! what a node finds after reopening its database.

use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::testing::{log_id, StoreBuilder, Suite};
use openraft::{Entry, EntryPayload, LogId, RaftLogReader, RaftSnapshotBuilder, StorageError, StorageHelper, StorageIOError, Vote};

use super::*;
use crate::admission::{Command, LimiterConfig, Window};
use crate::ring::Member;
use crate::NodeId;

/// A fresh temporary sled database per suite test; it is deleted when the
/// guard (the `Db`) and the stores are dropped.
struct TemporarySled;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, sled::Db> for TemporarySled {
    async fn build(&self) -> Result<(sled::Db, LogStore, StateMachineStore), StorageError<RaftId>> {
        let db = sled::Config::new().temporary(true).open().map_err(|error| StorageIOError::write(&error))?;
        let (log, state_machine) = open(&db).map_err(|error| StorageIOError::write(&error))?;
        Ok((db, log, state_machine))
    }
}

#[test]
fn openraft_storage_suite() -> Result<(), StorageError<RaftId>> {
    Suite::test_all(TemporarySled)
}

/// Opens the database at `path` again in this process. sled's background
/// I/O threads can hold the previous instance's file lock for a moment after
/// it is dropped, so wait for it (as a node restarted in-process does).
fn reopen(path: &std::path::Path) -> Result<sled::Db, sled::Error> {
    // Generous: on a machine busy with builds it took over 5 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match sled::open(path) {
            Err(sled::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

const ATTR: &str = "user.id";

fn entry(index: u64, request: ClusterRequest) -> Entry<TypeConfig> {
    Entry { log_id: log_id(1, 1, index), payload: EntryPayload::Normal(request) }
}

fn set_ring(ids: &[u64]) -> ClusterRequest {
    ClusterRequest::SetRing { members: ids.iter().map(|&id| Member::new(NodeId(id))).collect() }
}

fn set_limits() -> ClusterRequest {
    let config = LimiterConfig::new(1000, 4, [(ATTR.to_owned(), 10)]).expect("valid config");
    ClusterRequest::SetLimits { config }
}

fn lease(node: u64) -> Command {
    Command::Lease { node: NodeId(node), attribute: ATTR.to_owned(), window: Window(5), lease: None, want: 4 }
}

fn entries() -> Vec<Entry<TypeConfig>> {
    vec![entry(1, set_ring(&[1])), entry(2, set_limits()), entry(3, ClusterRequest::Limiter(lease(1))), entry(4, set_ring(&[1, 2]))]
}

fn ring_epoch(view: &ClusterView) -> Option<u64> {
    view.ring.as_ref().map(|ring| ring.epoch())
}

#[tokio::test]
async fn a_restart_rebuilds_state_from_the_snapshot_and_the_committed_log() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    {
        let db = sled::open(dir.path())?;
        let (mut log, mut state_machine) = open(&db)?;
        log.save_vote(&Vote::new(1, 1)).await?;
        log.blocking_append(entries()).await?;
        state_machine.apply(entries().into_iter().take(2)).await?;
        state_machine.get_snapshot_builder().await.build_snapshot().await?;
        // Applied but only in memory: lost with the process.
        state_machine.apply(entries().into_iter().skip(2).take(1)).await?;
        log.save_committed(Some(log_id(1, 1, 4))).await?;
        log.purge(log_id(1, 1, 1)).await?;
        db.flush()?;
    }

    let db = reopen(dir.path())?;
    let (mut log, mut state_machine) = open(&db)?;
    let view = state_machine.view();
    let mut events = state_machine.limiter_events();
    assert_eq!(state_machine.applied_state().await?.0, Some(log_id(1, 1, 2)), "the snapshot's");
    assert_eq!((ring_epoch(&view.borrow()), view.borrow().limits.is_some()), (Some(1), true));
    assert_eq!(log.read_vote().await?, Some(Vote::new(1, 1)));
    let log_state = log.get_log_state().await?;
    assert_eq!((log_state.last_purged_log_id, log_state.last_log_id), (Some(log_id(1, 1, 1)), Some(log_id(1, 1, 4))));
    assert_eq!(log.try_get_log_entries(0..10).await?, entries()[1..].to_vec());

    // What openraft does at startup: re-apply the committed entries.
    StorageHelper::new(&mut log, &mut state_machine).get_initial_state().await?;
    assert_eq!(state_machine.applied_state().await?.0, Some(log_id(1, 1, 4)));
    assert_eq!(view.borrow().last_applied, Some(log_id(1, 1, 4)));
    assert_eq!(ring_epoch(&view.borrow()), Some(2));
    assert_eq!(events.try_recv()?, lease(1), "the re-applied lease is published again");
    Ok(())
}

#[tokio::test]
async fn apply_publishes_the_view_and_the_limiter_commands_that_took_effect() -> Result<(), Box<dyn std::error::Error>> {
    let db = sled::Config::new().temporary(true).open()?;
    let (_, mut state_machine) = open(&db)?;
    let view = state_machine.view();
    let mut events = state_machine.limiter_events();
    assert_eq!(view.borrow().last_applied, None);

    let refused = entry(1, ClusterRequest::Limiter(lease(9)));
    let responses = state_machine.apply([refused]).await?;
    assert!(matches!(responses[..], [ClusterResponse::Refused(_)]), "{responses:?}");
    let responses = state_machine.apply(entries().into_iter().skip(1).take(2).chain([entry(4, ClusterRequest::Limiter(lease(2)))])).await?;
    assert_eq!(responses.len(), 3);
    assert_eq!(events.try_recv()?, lease(1));
    assert_eq!(events.try_recv()?, lease(2));
    assert!(events.try_recv().is_err(), "the refused lease is not published");
    assert_eq!(view.borrow().last_applied, Some(log_id(1, 1, 4)));
    assert_eq!(ring_epoch(&view.borrow()), None);
    Ok(())
}

#[tokio::test]
async fn an_installed_snapshot_replaces_the_state_and_survives_a_restart() -> Result<(), Box<dyn std::error::Error>> {
    let leader_db = sled::Config::new().temporary(true).open()?;
    let (_, mut leader) = open(&leader_db)?;
    leader.apply(entries()).await?;
    let snapshot = leader.get_snapshot_builder().await.build_snapshot().await?;

    let dir = tempfile::tempdir()?;
    {
        let db = sled::open(dir.path())?;
        let (_, mut follower) = open(&db)?;
        let view = follower.view();
        follower.apply([entry(1, set_ring(&[7]))]).await?;
        follower.install_snapshot(&snapshot.meta, snapshot.snapshot).await?;
        assert_eq!(view.borrow().last_applied, Some(log_id(1, 1, 4)));
        let ring = view.borrow().ring.clone().expect("a ring");
        assert_eq!(ring.members().collect::<Vec<_>>(), vec![Member::new(NodeId(1)), Member::new(NodeId(2))]);
    }
    let db = reopen(dir.path())?;
    let (_, mut follower) = open(&db)?;
    let current = follower.get_current_snapshot().await?.expect("the installed snapshot");
    assert_eq!(current.meta.last_log_id, Some(log_id(1, 1, 4)));
    assert_eq!(ring_epoch(&follower.view().borrow()), Some(2));
    Ok(())
}

#[tokio::test]
async fn an_older_build_does_not_replace_a_newer_snapshot() -> Result<(), Box<dyn std::error::Error>> {
    let db = sled::Config::new().temporary(true).open()?;
    let (_, mut state_machine) = open(&db)?;
    state_machine.apply(entries().into_iter().take(1)).await?;
    let mut older = state_machine.get_snapshot_builder().await;
    state_machine.apply(entries().into_iter().skip(1)).await?;
    state_machine.get_snapshot_builder().await.build_snapshot().await?;
    older.build_snapshot().await?;
    let current = state_machine.get_current_snapshot().await?.expect("a snapshot");
    assert_eq!(current.meta.last_log_id, Some(log_id(1, 1, 4)));
    Ok(())
}

#[test]
fn a_corrupt_snapshot_fails_open() -> Result<(), Box<dyn std::error::Error>> {
    let db = sled::Config::new().temporary(true).open()?;
    db.open_tree("raft_sm")?.insert("meta", "not json")?;
    assert!(matches!(open(&db), Err(RaftStoreError::CorruptSnapshot(_))));
    Ok(())
}

#[tokio::test]
async fn the_log_reads_ranges_in_index_order() -> Result<(), Box<dyn std::error::Error>> {
    let db = sled::Config::new().temporary(true).open()?;
    let (mut log, _) = open(&db)?;
    // Index 256 sorts after 255 only with big-endian keys.
    let many: Vec<_> = (250..=260).map(|index| Entry { log_id: log_id(1, 1, index), payload: EntryPayload::Blank }).collect();
    log.blocking_append(many.clone()).await?;
    let indexes = |entries: Vec<Entry<TypeConfig>>| entries.iter().map(|e| e.log_id.index).collect::<Vec<_>>();
    assert_eq!(indexes(log.try_get_log_entries(254..=257).await?), vec![254, 255, 256, 257]);
    assert_eq!(indexes(log.try_get_log_entries(259..).await?), vec![259, 260]);
    log.truncate(log_id(1, 1, 256)).await?;
    assert_eq!(log.get_log_state().await?.last_log_id.map(|id: LogId<RaftId>| id.index), Some(255));
    Ok(())
}
