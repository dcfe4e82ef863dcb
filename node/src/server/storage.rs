//! Start-up step 1, storage: the data dir, its sled database, the WAL (and
//! what it holds to replay), the indexes, this node's identity, and the
//! store finished segments go to.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ollystack_cluster::NodeId;

use super::background::Background;
use super::error::NodeError;
use super::sources::Sources;
use crate::clock::SeededRng;
use crate::config::{Config, StorageChoice};
use crate::metrics::NodeMetrics;
use crate::store::clickhouse::ClickHouseStore;
use crate::store::{Archive, EmbeddedStore, ExemplarIndex, SessionStore, Settler, ShipmentLog, TraceIndex};
use crate::wal::{Replay, Wal};

/// sled's log segment size. Archived session records are tens of KB; with
/// sled's default (512 KiB) the pages holding them were written as separate
/// blob files on every update (perf: ~15% of ingest CPU in open/write).
const SLED_SEGMENT_BYTES: usize = 8 << 20;

/// How long a start waits for the data dir's lock. A node restarted in the
/// same process (tests, simulations) can find it still held for a moment by
/// tasks of the previous instance (openraft's storage workers) that are
/// finishing; another process holding it fails after this.
const DB_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A node's local storage, opened.
pub(super) struct Storage {
    pub dir: PathBuf,
    pub db: sled::Db,
    pub wal: Arc<Wal>,
    /// What the WAL holds from before this start (see `ingest::replay_wal`).
    pub replay: Replay,
    pub traces: Arc<TraceIndex>,
    pub exemplars: Arc<ExemplarIndex>,
    pub shipments: Arc<ShipmentLog>,
}

impl Storage {
    /// Creates the data dir if needed and opens what is in it. The
    /// simulations' hooks get the database (`sled_hold`) and the WAL's
    /// durable lengths (`wal_observer`).
    pub async fn open(config: &Config, sources: &Sources) -> Result<Self, NodeError> {
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|source| NodeError::DataDir { path: dir.display().to_string(), source })?;
        let failed = storage_error(&dir);
        let db = open_db(&dir.join("db"), config.cache_bytes, sources.sled_hold.is_none()).await.map_err(|e| failed(&e))?;
        if let Some(hold) = &sources.sled_hold {
            (hold.0)(db.clone());
        }
        let (wal, replay) = Wal::open_observed(&dir.join("wal"), &db, sources.wal_observer.clone()).map_err(|e| failed(&e))?;
        let wal = Arc::new(wal);
        let traces = Arc::new(TraceIndex::open(&db).map_err(|e| failed(&e))?);
        let exemplars = Arc::new(ExemplarIndex::open(&db).map_err(|e| failed(&e))?);
        let shipments = Arc::new(ShipmentLog::open(&db).map_err(|e| failed(&e))?);
        Ok(Self { dir: dir.clone(), db, wal, replay, traces, exemplars, shipments })
    }

    /// This node's identity, created once per data dir.
    pub fn node_id(&self, rng: &SeededRng) -> Result<NodeId, NodeError> {
        let text = node_id(&self.db, rng).map_err(|e| storage_error(&self.dir)(&e))?;
        NodeId::from_hex(&text).map_err(|e| NodeError::Startup(format!("node id {text}: {e}")))
    }

    /// Where finished segments go: the embedded archive, or ClickHouse
    /// (whose flusher task joins `background`), wrapped by the
    /// simulations' `store_layer` if any.
    pub fn session_store(
        &self,
        config: &Config,
        sources: &Sources,
        settler: Arc<Settler>,
        metrics: &Arc<NodeMetrics>,
        node_id: NodeId,
        background: &mut Background,
    ) -> Result<Arc<dyn SessionStore>, NodeError> {
        let store = match &config.storage {
            StorageChoice::Embedded => {
                let records = self.dir.join("archive");
                let archive =
                    Arc::new(Archive::open(&self.db, &records, sources.wal_observer.clone()).map_err(|e| storage_error(&self.dir)(&e))?);
                let (store, writer) =
                    EmbeddedStore::start(archive, settler, config.archive_retention_ms, config.archive_max_bytes, background.stop());
                background.push(writer);
                Arc::new(store) as Arc<dyn SessionStore>
            }
            StorageChoice::ClickHouse(settings) => {
                let (store, flusher) =
                    ClickHouseStore::start(settings.clone(), settler, sources.clock.clone(), metrics.clone(), node_id, background.stop());
                background.push(flusher);
                Arc::new(store) as Arc<dyn SessionStore>
            }
        };
        Ok(match &sources.store_layer {
            Some(layer) => (layer.0)(store),
            None => store,
        })
    }
}

fn storage_error(dir: &Path) -> impl Fn(&dyn std::fmt::Display) -> NodeError + '_ {
    move |e| NodeError::Storage { path: dir.display().to_string(), detail: e.to_string() }
}

/// sled's own timed flush (every 500 ms of real time) runs unless
/// `timed_flush` is off.
/// sled's page cache is bounded by `cache_bytes`: its own default, 1 GiB,
/// is outside the memory budget and larger than a small node's budget.
async fn open_db(path: &Path, cache_bytes: u64, timed_flush: bool) -> Result<sled::Db, sled::Error> {
    let deadline = tokio::time::Instant::now() + DB_LOCK_WAIT;
    let every_ms = if timed_flush { sled::Config::new().flush_every_ms } else { None };
    loop {
        match sled::Config::new().path(path).segment_size(SLED_SEGMENT_BYTES).cache_capacity(cache_bytes).flush_every_ms(every_ms).open() {
            Err(sled::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock && tokio::time::Instant::now() < deadline => {
                // Real time too: the lock is held by sled's own threads,
                // which a simulation's paused clock does not wait for (a
                // restart under load once found it still held).
                std::thread::sleep(std::time::Duration::from_millis(20));
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
}

/// The text of this node's ID in the data dir (`meta/node_id`, 16 hex
/// digits), written on first use.
fn node_id(db: &sled::Db, rng: &SeededRng) -> Result<String, sled::Error> {
    let meta = db.open_tree("meta")?;
    if let Some(v) = meta.get("node_id")? {
        return Ok(String::from_utf8_lossy(&v).into_owned());
    }
    let id = format!("{:08x}{:08x}", rng.next_u32(), rng.next_u32());
    meta.insert("node_id", id.as_bytes())?;
    // Durable before anything uses it (once per data dir, before any other
    // work runs: the single flush cannot collide with another).
    meta.flush()?;
    Ok(id)
}
