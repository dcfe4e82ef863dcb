//! Makes sled's writes durable with one flush at a time. Callers that
//! arrive while a flush runs share the next one (group commit). sled 0.34's
//! flushes hung when many ran at once, so nothing else in the node calls
//! `flush` on the database.

use std::sync::atomic::{AtomicU64, Ordering};

use super::StoreError;

#[derive(Debug)]
pub struct SledFlusher {
    db: sled::Db,
    /// Flush requests so far (a request's number orders it).
    requested: AtomicU64,
    /// Every request up to this number is durable.
    completed: AtomicU64,
    turn: tokio::sync::Mutex<()>,
}

impl SledFlusher {
    pub fn new(db: sled::Db) -> Self {
        Self { db, requested: AtomicU64::new(0), completed: AtomicU64::new(0), turn: tokio::sync::Mutex::new(()) }
    }

    /// Returns once everything written to sled before the call is durable.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let mine = self.requested.fetch_add(1, Ordering::AcqRel) + 1;
        let _turn = self.turn.lock().await;
        if self.completed.load(Ordering::Acquire) >= mine {
            return Ok(());
        }
        let covers = self.requested.load(Ordering::Acquire);
        ollystack_cluster::blocking::flush(&self.db).await?;
        self.completed.fetch_max(covers, Ordering::AcqRel);
        Ok(())
    }
}
