//! The one task per node that writes finished segments to ClickHouse.
//!
//! It takes batches from [`Pending`] (bounded in rows and bytes, and sent
//! at most `batch_max_delay` after their oldest segment came), inserts the
//! rows of each table with RowBinary, and retries a failed batch with
//! exponential backoff until it succeeds. Every insert of a batch carries
//! the same `insert_deduplication_token` on every attempt, and the tables
//! keep a deduplication window, so an attempt that committed but lost its
//! reply, or a batch that failed after some tables were written, is not
//! written twice. Only after every table committed are the segments
//! settled (WAL entries released, memory returned).

use std::sync::Arc;
use std::time::Duration;

use clickhouse::{Row, RowOwned, RowWrite};
use serde::Serialize;
use tokio::sync::{watch, Notify};

use super::pending::{BatchLimits, Pending};
use super::rows::Rows;
use super::ClickHouseSettings;
use crate::clock::SharedClock;
use crate::metrics::NodeMetrics;
use crate::store::{FinishedSegment, Settler};

pub struct Flusher {
    pub client: clickhouse::Client,
    pub settings: ClickHouseSettings,
    pub pending: Arc<Pending>,
    pub wake: Arc<Notify>,
    pub settler: Arc<Settler>,
    pub clock: SharedClock,
    pub metrics: Arc<NodeMetrics>,
    /// This node's ID as the `node_id` column holds it (`NodeId::hex`).
    pub node_column: String,
}

impl std::fmt::Debug for Flusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flusher").field("url", &self.settings.url).field("node_id", &self.node_column).finish_non_exhaustive()
    }
}

/// The retry delay after `failures` consecutive failures: doubling from
/// `initial`, capped at `max`.
pub fn backoff(failures: u32, initial: Duration, max: Duration) -> Duration {
    let factor = 1u32.checked_shl(failures.saturating_sub(1)).unwrap_or(u32::MAX);
    initial.saturating_mul(factor).min(max)
}

/// The deduplication token of a batch: unique per batch on this node (a
/// segment is in exactly one batch) and the same on every attempt.
/// `node_column`: this node's ID as the `node_id` column holds it.
pub fn batch_token(node_column: &str, batch: &[Arc<FinishedSegment>]) -> String {
    let first = batch.first().map_or(0, |s| s.seq);
    format!("ollystack-{node_column}-{first}-{}", batch.len())
}

impl Flusher {
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        if self.settings.migrate_on_start && !self.migrate(&mut stop).await {
            return;
        }
        let limits = BatchLimits { max_rows: self.settings.batch_max_rows, max_bytes: self.settings.batch_max_bytes };
        let max_delay_ms = self.settings.batch_max_delay.as_millis() as u64;
        loop {
            if *stop.borrow() {
                return;
            }
            let Some(oldest) = self.pending.oldest_unix_ms() else {
                tokio::select! {
                    _ = self.wake.notified() => continue,
                    _ = stop.wait_for(|s| *s) => return,
                }
            };
            let now = self.clock.now_unix_ms();
            let due = oldest.saturating_add(max_delay_ms);
            if now < due && !self.pending.has_full_batch(limits) {
                tokio::select! {
                    _ = self.clock.sleep(Duration::from_millis(due - now)) => {}
                    _ = self.wake.notified() => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                continue;
            }
            let batch = self.pending.take_batch(limits);
            if !batch.is_empty() && !self.flush(&batch, &mut stop).await {
                return;
            }
        }
    }

    /// Applies pending migrations, retrying while ClickHouse is out of
    /// reach. Returns false if the node stops first.
    async fn migrate(&self, stop: &mut watch::Receiver<bool>) -> bool {
        let mut failures = 0u32;
        loop {
            match super::migrate(&self.settings).await {
                Ok(report) => {
                    tracing::info!(applied = report.applied.len(), database = %self.settings.database, "clickhouse schema up to date");
                    return true;
                }
                Err(e) => {
                    failures += 1;
                    let delay = backoff(failures, self.settings.retry_initial, self.settings.retry_max);
                    tracing::error!(error = %e, retry_in_ms = delay.as_millis() as u64, "clickhouse migrations failed; flushing waits for them");
                    tokio::select! {
                        _ = self.clock.sleep(delay) => {}
                        _ = stop.wait_for(|s| *s) => return false,
                    }
                }
            }
        }
    }

    /// Writes one batch, retrying until it is committed. Returns false if
    /// the node stops first (the batch's signals stay in the WAL).
    async fn flush(&self, batch: &[Arc<FinishedSegment>], stop: &mut watch::Receiver<bool>) -> bool {
        let node_column = self.node_column.clone();
        let segments = batch.to_vec();
        let built = ollystack_cluster::blocking::unblock(move || {
            let mut rows = Rows::for_segments(&segments);
            let skipped: usize = segments.iter().map(|s| rows.add_segment(&node_column, s)).sum();
            (rows, skipped)
        })
        .await;
        let Ok((rows, skipped)) = built else {
            tracing::error!("building clickhouse rows panicked; segments stay in the wal");
            return true;
        };
        if skipped > 0 {
            tracing::warn!(skipped, "records that did not decode were left out of otel tables (kept in sessions.payload)");
        }
        let token = batch_token(&self.node_column, batch);
        let mut failures = 0u32;
        loop {
            match self.insert_all(&rows, &token).await {
                Ok(()) => break,
                Err(e) => {
                    failures += 1;
                    self.metrics.flush_failures.inc();
                    let delay = backoff(failures, self.settings.retry_initial, self.settings.retry_max);
                    tracing::warn!(error = %e, attempt = failures, retry_in_ms = delay.as_millis() as u64, rows = rows.len(), "clickhouse insert failed");
                    tokio::select! {
                        _ = self.clock.sleep(delay) => {}
                        _ = stop.wait_for(|s| *s) => return false,
                    }
                }
            }
        }
        let held: Vec<(&[u64], u64)> = batch.iter().map(|s| (s.wal_keys.as_slice(), s.held_bytes)).collect();
        if let Err(e) = self.settler.settle(&held).await {
            tracing::error!(error = %e, "settling flushed segments failed; their wal entries stay until restart");
        }
        self.pending.committed(batch);
        self.metrics.clickhouse_pending_segments.set(self.pending.count() as u64);
        self.metrics.clickhouse_rows.add(rows.len() as u64);
        self.metrics.clickhouse_batches.inc();
        true
    }

    async fn insert_all(&self, rows: &Rows, token: &str) -> Result<(), clickhouse::error::Error> {
        // Sessions last: a session row is the sign its segment is complete.
        self.insert("otel_traces", &rows.traces, token).await?;
        self.insert("otel_logs", &rows.logs, token).await?;
        self.insert("metric_exemplars", &rows.exemplars, token).await?;
        self.insert("sessions", &rows.sessions, token).await
    }

    async fn insert<T>(&self, table: &str, rows: &[T], token: &str) -> Result<(), clickhouse::error::Error>
    where
        T: Row + RowOwned + RowWrite + Serialize,
    {
        if rows.is_empty() {
            return Ok(());
        }
        let timeout = Some(self.settings.request_timeout);
        // The token makes a retried insert a no-op; the second option keeps
        // materialized views (correlation_summary) from counting it again.
        let mut insert = self
            .client
            .insert::<T>(table)
            .await?
            .with_option("insert_deduplication_token", token)
            .with_option("deduplicate_blocks_in_dependent_materialized_views", "1")
            .with_timeouts(timeout, timeout);
        for row in rows {
            insert.write(row).await?;
        }
        insert.end().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps() {
        let (i, m) = (Duration::from_millis(100), Duration::from_secs(1));
        let delays: Vec<u64> = (1..=6).map(|n| backoff(n, i, m).as_millis() as u64).collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff(200, i, m), m, "no overflow");
    }
}
