//! Where the state machine keeps its current snapshot: tree `raft_sm`, key
//! `meta` (the snapshot's metadata, JSON) and key `data` (the state, JSON),
//! written together in one transaction and flushed before use.

use openraft::{SnapshotMeta, StorageError, StorageIOError};
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::codec::{decode, encode, storage_error};
use super::types::{NodeInfo, RaftId};
use super::RaftStoreError;

const SNAPSHOT_META: &[u8] = b"meta";
const SNAPSHOT_DATA: &[u8] = b"data";

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Overwrite {
    Always,
    /// Only a snapshot with an older last log ID (or none).
    IfNewer,
}

/// Why reading the stored snapshot failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum ReadSnapshotError {
    #[error(transparent)]
    Sled(#[from] sled::Error),
    #[error("the stored snapshot metadata is corrupt: {0}")]
    Meta(#[from] serde_json::Error),
    #[error("the stored snapshot has metadata without data")]
    MissingData,
}

impl From<ReadSnapshotError> for RaftStoreError {
    fn from(error: ReadSnapshotError) -> Self {
        match error {
            ReadSnapshotError::Sled(error) => Self::Sled(error),
            other => Self::CorruptSnapshot(other.to_string()),
        }
    }
}

type StoredSnapshot = (SnapshotMeta<RaftId, NodeInfo>, Vec<u8>);

pub(super) fn read_snapshot(tree: &sled::Tree) -> Result<Option<StoredSnapshot>, ReadSnapshotError> {
    let (meta, data) =
        tree.transaction(|tx| Ok((tx.get(SNAPSHOT_META)?, tx.get(SNAPSHOT_DATA)?))).map_err(|error: TransactionError<()>| match error {
            TransactionError::Storage(error) => error,
            TransactionError::Abort(()) => sled::Error::ReportableBug("read transaction aborted".to_owned()),
        })?;
    match (meta, data) {
        (None, _) => Ok(None),
        (Some(_), None) => Err(ReadSnapshotError::MissingData),
        (Some(meta), Some(data)) => Ok(Some((serde_json::from_slice(&meta)?, data.to_vec()))),
    }
}

/// Writes a snapshot and flushes it; `Overwrite::IfNewer` keeps a stored
/// snapshot that is at least as recent.
pub(super) async fn write_snapshot(
    tree: &sled::Tree,
    meta: &SnapshotMeta<RaftId, NodeInfo>,
    data: &[u8],
    overwrite: Overwrite,
) -> Result<(), StorageError<RaftId>> {
    let failure = |error| StorageIOError::write_snapshot(Some(meta.signature()), error);
    let meta_bytes = encode(meta, failure)?;
    let result = tree.transaction(|tx| {
        if overwrite == Overwrite::IfNewer {
            if let Some(stored) = tx.get(SNAPSHOT_META)? {
                let stored: SnapshotMeta<RaftId, NodeInfo> = decode(&stored, failure).map_err(ConflictableTransactionError::Abort)?;
                if stored.last_log_id >= meta.last_log_id {
                    return Ok(());
                }
            }
        }
        tx.insert(SNAPSHOT_META, meta_bytes.as_slice())?;
        tx.insert(SNAPSHOT_DATA, data)?;
        Ok(())
    });
    match result {
        Ok(()) => {}
        Err(TransactionError::Abort(error)) => return Err(error),
        Err(TransactionError::Storage(error)) => return Err(storage_error(failure, &error)),
    }
    crate::blocking::flush(tree).await.map_err(|error| storage_error(failure, &error))?;
    Ok(())
}
