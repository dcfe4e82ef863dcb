//! Background tasks of a node, each stopping when shutdown is signalled:
//! the finishing sweep (tells live sessions to check their rule) and
//! retention of the archive, the indexes and the shipment log, the
//! hand-off sweep, and re-reading changed TLS files.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::Config;
use crate::session::finish::{finish_reason, SegmentClock};
use crate::session::{SessionEnv, SessionMsg};
use crate::store::{ExemplarIndex, ShipmentLog};

/// Each interval, sends a `Tick` to every live session that may be due to
/// finish.
pub async fn finishing_sweep(env: Arc<SessionEnv>, interval_ms: u64, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = env.clock.sleep(Duration::from_millis(interval_ms)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        // Only actors whose idle or age limit may have passed (counts
        // finish a segment as signals arrive).
        let now = env.clock.now_unix_ms();
        let due = |opened_unix_ms, last_activity_unix_ms| {
            let clock = SegmentClock { opened_unix_ms, last_activity_unix_ms, spans: 0, logs: 0 };
            finish_reason(&env.limits.rules, &clock, now).is_some()
        };
        for actor in env.registry.due_actors(due).await {
            let _ = actor.send_message(SessionMsg::Tick);
        }
        env.metrics.memory_used_bytes.set(env.budget.used_bytes());
    }
}

/// Expires archived segments (age, then bytes) and index entries (age).
pub async fn retention(
    env: Arc<SessionEnv>,
    exemplars: Arc<ExemplarIndex>,
    shipments: Arc<ShipmentLog>,
    config: Config,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = env.clock.sleep(Duration::from_millis(config.expire_interval_ms)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let now = env.clock.now_unix_ms();
        let cutoff = now.saturating_sub(config.archive_retention_ms);
        match env.storage.store.expire(now).await {
            Ok(removed) => {
                env.metrics.archive_expired_segments.add(removed);
                env.metrics.archive_bytes.set(env.storage.store.local_bytes());
            }
            Err(e) => tracing::warn!(error = %e, "retention of stored sessions failed"),
        }
        let (traces, exemplars, shipments) = (env.storage.traces.clone(), exemplars.clone(), shipments.clone());
        let indexes = ollystack_cluster::blocking::unblock(move || {
            traces.expire(cutoff)?;
            exemplars.expire(cutoff)?;
            shipments.expire(now.saturating_sub(crate::store::shipments::RETENTION_MS))?;
            Ok::<_, crate::store::StoreError>(())
        })
        .await;
        match indexes {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "retention of indexes failed"),
            Err(e) => tracing::warn!(error = %e, "retention task panicked"),
        }
    }
}

/// On a cluster: hands every live session this node no longer owns to its
/// owner, when the ring changes and each tick (a signal that arrived under
/// an older ring opens a local actor the next pass ships).
pub async fn handoff_sweep(
    env: Arc<SessionEnv>,
    mut ring: watch::Receiver<Arc<ollystack_cluster::raft::ClusterView>>,
    interval_ms: u64,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = env.clock.sleep(Duration::from_millis(interval_ms)) => {}
            _ = ring.changed() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if env.remote.get().is_none() {
            continue;
        }
        if ring.has_changed().unwrap_or(false) || tracing::enabled!(tracing::Level::TRACE) {
            let view = ring.borrow_and_update().clone();
            if let Some(r) = &view.ring {
                tracing::debug!(epoch = r.epoch(), members = ?r.members().map(|m| m.id.0).collect::<Vec<_>>(), "ring applied here");
            }
        }
        for (key, _) in env.registry.live_actors().await {
            if let Some((owner, _)) = env.remote.remote_owner(&key) {
                tracing::debug!(session = %key.id, %owner, "handing a session to its owner");
                if let Err(e) = env.registry.hand_off(&key).await {
                    tracing::warn!(session = %key.id, error = %e, "handing a session off failed; the next pass retries");
                }
            }
        }
    }
}

/// How often the TLS files are checked for changes.
const TLS_RELOAD_MS: u64 = 10_000;

/// Re-reads the cluster's TLS files when they change (a renewed
/// certificate serves new connections; a broken one is logged and the old
/// one kept).
pub async fn reload_tls(tls: Arc<ollystack_cluster::net::TlsTransport>, clock: crate::clock::SharedClock, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = clock.sleep(Duration::from_millis(TLS_RELOAD_MS)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        match tls.reload_if_changed() {
            Ok(true) => tracing::info!("cluster TLS files changed; new connections use them"),
            Ok(false) => {}
            Err(e) => tracing::error!(error = %e, "cluster TLS files changed but cannot be used; keeping the ones in use"),
        }
    }
}
