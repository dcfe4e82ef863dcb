//! The write-ahead log: every accepted batch, split per session, is written
//! here and synced before the sender is acknowledged. Entries are removed in
//! the same sled transaction that archives the segment holding them, so a
//! crash at any point either replays an entry or finds it archived, never
//! both and never neither.

use std::sync::atomic::{AtomicU64, Ordering};

use ollystack_proto::store::WalEntry;
use prost::Message;

/// Errors of the WAL.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("wal storage: {0}")]
    Sled(#[from] sled::Error),
    #[error("wal entry {key} is corrupt: {source}")]
    Corrupt { key: u64, source: prost::DecodeError },
}

#[derive(Debug)]
pub struct Wal {
    db: sled::Db,
    tree: sled::Tree,
    /// Bytes of entries currently in the log (for metrics and backpressure).
    bytes: AtomicU64,
}

impl Wal {
    pub fn open(db: &sled::Db) -> Result<Self, WalError> {
        let tree = db.open_tree("wal")?;
        let mut bytes = 0u64;
        for item in tree.iter() {
            let (_, v) = item?;
            bytes += v.len() as u64;
        }
        Ok(Self { db: db.clone(), tree, bytes: AtomicU64::new(bytes) })
    }

    /// Writes entries (not yet synced) and returns their keys, in order.
    pub fn stage(&self, entries: &[WalEntry]) -> Result<Vec<u64>, WalError> {
        let mut batch = sled::Batch::default();
        let mut keys = Vec::with_capacity(entries.len());
        let mut bytes = 0u64;
        for entry in entries {
            let key = self.db.generate_id()?;
            let value = entry.encode_to_vec();
            bytes += value.len() as u64;
            batch.insert(&key.to_be_bytes(), value);
            keys.push(key);
        }
        self.tree.apply_batch(batch)?;
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        Ok(keys)
    }

    /// Makes everything staged so far durable (fsync).
    pub async fn sync(&self) -> Result<(), WalError> {
        self.db.flush_async().await?;
        Ok(())
    }

    /// Every entry still in the log, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = Result<(u64, WalEntry), WalError>> + '_ {
        self.tree.iter().map(|item| {
            let (k, v) = item?;
            let key = decode_key(&k);
            let entry = WalEntry::decode(v.as_ref()).map_err(|source| WalError::Corrupt { key, source })?;
            Ok((key, entry))
        })
    }

    /// The tree, for transactions that archive a segment and drop its entries.
    pub fn tree(&self) -> &sled::Tree {
        &self.tree
    }

    /// Records that `bytes` of entries were removed by such a transaction.
    pub fn note_removed(&self, bytes: u64) {
        let _ = self.bytes.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| Some(b.saturating_sub(bytes)));
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// WAL keys are big-endian u64 so sled iterates them in write order.
pub fn decode_key(bytes: &[u8]) -> u64 {
    let mut arr = [0u8; 8];
    let n = bytes.len().min(8);
    arr[8 - n..].copy_from_slice(&bytes[..n]);
    u64::from_be_bytes(arr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_survive_reopen_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = {
            let db = sled::open(dir.path()).expect("open");
            let wal = Wal::open(&db).expect("wal");
            let e = |id: &str| WalEntry { correlation_id: id.into(), ..Default::default() };
            let keys = wal.stage(&[e("a"), e("b")]).expect("stage");
            wal.sync().await.expect("sync");
            keys
        };
        let db = sled::open(dir.path()).expect("reopen");
        let wal = Wal::open(&db).expect("wal");
        let got: Vec<(u64, String)> = wal.entries().map(|r| r.map(|(k, e)| (k, e.correlation_id)).expect("entry")).collect();
        assert_eq!(got, vec![(keys[0], "a".to_owned()), (keys[1], "b".to_owned())]);
        assert!(wal.bytes() > 0);
    }
}
