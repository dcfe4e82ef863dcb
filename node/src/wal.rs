//! The write-ahead log: every accepted batch, split per session, is written
//! here and synced before the sender is acknowledged. When the segment
//! holding an entry is archived, [`Wal::release`] first marks the entry done
//! and then removes it; replay skips (and removes) entries marked done, so a
//! crash at any point neither loses an entry nor replays an archived one.

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
    /// Keys of entries whose data is archived (removal may be pending).
    done: sled::Tree,
    /// Bytes of entries currently in the log (for metrics and backpressure).
    bytes: AtomicU64,
}

impl Wal {
    pub fn open(db: &sled::Db) -> Result<Self, WalError> {
        let tree = db.open_tree("wal")?;
        let done = db.open_tree("wal_done")?;
        let mut bytes = 0u64;
        for item in tree.iter() {
            let (_, v) = item?;
            bytes += v.len() as u64;
        }
        Ok(Self { db: db.clone(), tree, done, bytes: AtomicU64::new(bytes) })
    }

    /// Writes entries (not yet synced) and returns their keys, in order.
    pub fn stage(&self, entries: &[WalEntry]) -> Result<Vec<u64>, WalError> {
        let mut keys = Vec::with_capacity(entries.len());
        let mut bytes = 0u64;
        // Individual inserts, not a sled batch (see `store::archive`). An
        // entry is acknowledged only after all of them are synced.
        for entry in entries {
            let key = self.db.generate_id()?;
            let value = entry.encode_to_vec();
            bytes += value.len() as u64;
            self.tree.insert(key.to_be_bytes(), value)?;
            keys.push(key);
        }
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        Ok(keys)
    }

    /// Makes everything staged so far durable (fsync).
    pub async fn sync(&self) -> Result<(), WalError> {
        self.db.flush_async().await?;
        Ok(())
    }

    /// Every entry still in the log and not archived, oldest first. Entries
    /// archived before a crash interrupted their removal are removed now.
    pub fn entries(&self) -> Result<Vec<(u64, WalEntry)>, WalError> {
        let mut out = Vec::new();
        for item in self.tree.iter() {
            let (k, v) = item?;
            let key = decode_key(&k);
            if self.done.contains_key(k.as_ref())? {
                self.release(&[key])?;
                continue;
            }
            let entry = WalEntry::decode(v.as_ref()).map_err(|source| WalError::Corrupt { key, source })?;
            out.push((key, entry));
        }
        Ok(out)
    }

    /// Releases entries whose data is now archived: marks them done, then
    /// removes them. Returns the bytes removed.
    pub fn release(&self, keys: &[u64]) -> Result<u64, WalError> {
        for key in keys {
            self.done.insert(key.to_be_bytes(), &[])?;
        }
        let mut removed = 0u64;
        for key in keys {
            if let Some(old) = self.tree.remove(key.to_be_bytes())? {
                removed += old.len() as u64;
            }
            self.done.remove(key.to_be_bytes())?;
        }
        let _ = self.bytes.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| Some(b.saturating_sub(removed)));
        Ok(removed)
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
        let got: Vec<(u64, String)> = wal.entries().expect("entries").into_iter().map(|(k, e)| (k, e.correlation_id)).collect();
        assert_eq!(got, vec![(keys[0], "a".to_owned()), (keys[1], "b".to_owned())]);
        assert!(wal.bytes() > 0);
        // A crash after the done-marker but before removal: replay skips it.
        wal.done.insert(keys[0].to_be_bytes(), &[]).expect("mark");
        let got: Vec<u64> = wal.entries().expect("entries").into_iter().map(|(k, _)| k).collect();
        assert_eq!(got, vec![keys[1]]);
    }
}
