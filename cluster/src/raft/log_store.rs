//! The Raft log and vote in sled: openraft's `RaftLogStorage`.
//!
//! * Tree `raft_log`: entry at index `i` under key `i` as big-endian u64
//!   (so sled's order is log order), the entry as JSON.
//! * Tree `raft_meta`: the vote, the committed log ID and the last purged log
//!   ID, as JSON.
//!
//! Durability: `append` calls back only after a sled flush (an fsync), and
//! the vote, truncation and purge are flushed before they return. The
//! committed log ID is written without its own flush: it rides on the next
//! flush (the next append's, at the latest sled's own every 500 ms), and a
//! committed ID that is behind only means fewer entries are re-applied at
//! startup; the leader's next heartbeat brings the rest.

use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{Entry, LogId, LogState, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::codec::{decode, encode, index_key, storage_error, Failure};
use super::types::{RaftId, TypeConfig};

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const LAST_PURGED: &[u8] = b"last_purged";

/// The log store; clones share the same trees, so the log reader is a clone.
#[derive(Clone)]
pub struct LogStore {
    /// Entries by index.
    log: sled::Tree,
    /// Vote, committed and last purged log IDs.
    meta: sled::Tree,
}

impl LogStore {
    pub(super) fn open(db: &sled::Db) -> Result<Self, sled::Error> {
        Ok(Self { log: db.open_tree("raft_log")?, meta: db.open_tree("raft_meta")? })
    }

    fn read_meta<T: DeserializeOwned>(&self, key: &[u8], failure: impl Failure) -> Result<Option<T>, StorageError<RaftId>> {
        match self.meta.get(key).map_err(|error| storage_error(failure, &error))? {
            Some(bytes) => decode(&bytes, failure).map(Some),
            None => Ok(None),
        }
    }

    fn write_meta<T: Serialize>(&self, key: &[u8], value: &T, failure: impl Failure) -> Result<(), StorageError<RaftId>> {
        let bytes = encode(value, failure)?;
        self.meta.insert(key, bytes).map_err(|error| storage_error(failure, &error))?;
        Ok(())
    }

    async fn flush(&self, failure: impl Failure) -> Result<(), StorageError<RaftId>> {
        crate::blocking::flush(&self.log).await.map_err(|error| storage_error(failure, &error))?;
        Ok(())
    }

    /// Removes the entries in `range` in one batch.
    fn remove(&self, range: impl RangeBounds<[u8; 8]>) -> Result<(), StorageError<RaftId>> {
        let mut batch = sled::Batch::default();
        for key in self.log.range(range).keys() {
            batch.remove(key.map_err(|error| storage_error(StorageIOError::write_logs, &error))?);
        }
        self.log.apply_batch(batch).map_err(|error| storage_error(StorageIOError::write_logs, &error))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<RaftId>> {
        let keys = (range.start_bound().map(|&i| index_key(i)), range.end_bound().map(|&i| index_key(i)));
        let mut entries = Vec::new();
        for item in self.log.range(keys) {
            let (_, bytes) = item.map_err(|error| storage_error(StorageIOError::read_logs, &error))?;
            entries.push(decode(&bytes, StorageIOError::read_logs)?);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<RaftId>> {
        let last_purged_log_id: Option<LogId<RaftId>> = self.read_meta(LAST_PURGED, StorageIOError::read_logs)?;
        let last = self.log.last().map_err(|error| storage_error(StorageIOError::read_logs, &error))?;
        let last_log_id = match last {
            Some((_, bytes)) => Some(decode::<Entry<TypeConfig>>(&bytes, StorageIOError::read_logs)?.log_id),
            None => last_purged_log_id,
        };
        Ok(LogState { last_purged_log_id, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<RaftId>) -> Result<(), StorageError<RaftId>> {
        self.write_meta(VOTE, vote, StorageIOError::write_vote)?;
        self.flush(StorageIOError::write_vote).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<RaftId>>, StorageError<RaftId>> {
        self.read_meta(VOTE, StorageIOError::read_vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<RaftId>>) -> Result<(), StorageError<RaftId>> {
        self.write_meta(COMMITTED, &committed, StorageIOError::write)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<RaftId>>, StorageError<RaftId>> {
        Ok(self.read_meta::<Option<LogId<RaftId>>>(COMMITTED, StorageIOError::read)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError<RaftId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        for entry in entries {
            batch.insert(&index_key(entry.log_id.index), encode(&entry, StorageIOError::write_logs)?);
        }
        self.log.apply_batch(batch).map_err(|error| storage_error(StorageIOError::write_logs, &error))?;
        match crate::blocking::flush(&self.log).await {
            Ok(_) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(error) => {
                callback.log_io_completed(Err(io::Error::other(error.to_string())));
                Err(storage_error(StorageIOError::write_logs, &error))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<RaftId>) -> Result<(), StorageError<RaftId>> {
        tracing::debug!(%log_id, "truncating the raft log");
        self.remove(index_key(log_id.index)..)?;
        self.flush(StorageIOError::write_logs).await
    }

    async fn purge(&mut self, log_id: LogId<RaftId>) -> Result<(), StorageError<RaftId>> {
        tracing::debug!(%log_id, "purging the raft log");
        // The purged ID first: after a crash in between, the leftover entries
        // are below it, never read, and removed by the next purge.
        self.write_meta(LAST_PURGED, &log_id, StorageIOError::write_logs)?;
        self.remove(..=index_key(log_id.index))?;
        self.flush(StorageIOError::write_logs).await
    }
}
