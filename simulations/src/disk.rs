//! What a simulated crash does to a node's data dir: it keeps only what the
//! node made durable. WAL files are cut back to the length of their last
//! fsync. sled keeps what the node flushed: nodes open it without sled's
//! timed flush, the harness holds a handle on each node's database, and a
//! crash leaks that handle so the last drop (which would flush everything)
//! never comes; the crashed database's files are then copied to fresh
//! inodes, because the leaked handle still holds their lock.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ollystack_node::server::SledHold;
use ollystack_node::wal::SyncObserver;

/// Every node's durable state as far as a crash is concerned.
#[derive(Default)]
pub struct Disks {
    /// Durable length of every WAL file, as the nodes report it after each
    /// fsync.
    wal_durable: Arc<Mutex<BTreeMap<PathBuf, u64>>>,
    /// Each running node's sled database, by node index.
    sled: Arc<Mutex<BTreeMap<usize, sled::Db>>>,
}

impl Disks {
    /// Told every WAL fsync of every node.
    pub fn wal_observer(&self) -> SyncObserver {
        let durable = self.wal_durable.clone();
        SyncObserver(Arc::new(move |path: &Path, len: u64| {
            if let Ok(mut d) = durable.lock() {
                // Largest wins: a sync that captured a length before a
                // rotation may report after it.
                let at = d.entry(path.to_path_buf()).or_insert(len);
                *at = (*at).max(len);
            }
        }))
    }

    /// Keeps node `i`'s database.
    pub fn sled_hold(&self, i: usize) -> SledHold {
        let held = self.sled.clone();
        SledHold(Arc::new(move |db: sled::Db| {
            if let Ok(mut held) = held.lock() {
                held.insert(i, db);
            }
        }))
    }

    /// Call just before node `i` (data dir `dir`) crashes: its sled
    /// database is never dropped, so nothing more of it reaches disk.
    pub fn before_crash(&self, i: usize) {
        if let Some(db) = self.sled.lock().ok().and_then(|mut held| held.remove(&i)) {
            std::mem::forget(db);
        }
    }

    /// Call once node `i` is down: cuts its WAL back to what was synced and
    /// moves its sled files to fresh inodes. Returns the WAL bytes cut.
    pub fn after_crash(&self, dir: &Path) -> std::io::Result<u64> {
        let db = dir.join("db");
        if db.is_dir() {
            let copy = dir.join("db.copy");
            copy_dir(&db, &copy)?;
            let dead = dir.join("db.crashed");
            std::fs::rename(&db, &dead)?;
            std::fs::rename(&copy, &db)?;
            // The leaked handle keeps the old inodes alive until the run ends.
            std::fs::remove_dir_all(&dead)?;
        }
        Ok(lose_unsynced(&self.wal_durable, dir))
    }
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// Cuts every WAL file under `dir` back to its durable length (a machine
/// that crashed keeps only what was fsynced); returns the bytes cut.
fn lose_unsynced(durable: &Mutex<BTreeMap<PathBuf, u64>>, dir: &Path) -> u64 {
    let Ok(mut durable) = durable.lock() else { return 0 };
    let mut lost = 0;
    durable.retain(|path, len| {
        if !path.starts_with(dir) {
            return true;
        }
        let on_disk = std::fs::metadata(path).map_or(0, |m| m.len());
        if on_disk > *len {
            if let Ok(file) = std::fs::OpenOptions::new().write(true).open(path) {
                if file.set_len(*len).is_ok() {
                    lost += on_disk - *len;
                }
            }
        }
        false
    });
    lost
}
