//! Reading a window's sessions through a [`QueryBackend`] into one node's
//! [`WindowAggregate`]: the I/O edge of per-incident RCA (the aggregate,
//! its merge and the fold are pure, in `rca::incident`).
//!
//! Sessions are chosen by event time (their first and last signal times
//! overlap the window). Bounded: at most `sessions_max` sessions are read
//! (the most recently active), read and folded in batches of
//! [`BATCH_SESSIONS`] on the blocking pool.

use super::backend::{QueryBackend, QueryError};
use crate::model::TenantId;
use crate::query::SessionFilter;
use crate::rca::incident::{fold, Collected, WindowAggregate, WindowQuery, BATCH_SESSIONS};

/// Reads every session of the window (see the module doc).
pub async fn collect_window<B: QueryBackend + ?Sized>(backend: &B, tenant: &TenantId, q: &WindowQuery) -> Result<Collected, QueryError> {
    let filter = SessionFilter {
        event_overlap_unix_nano: Some((q.start_unix_nano, q.end_unix_nano)),
        limit: q.sessions_max.saturating_add(1),
        ..Default::default()
    };
    let listing = backend.session_listing(tenant, &filter).await?;
    let mut listed = listing.sessions;
    let mut reasons = Vec::new();
    // The listing's scan is bounded: say what it did not look at.
    if let Some(before) = listing.resume_before_unix_ms {
        reasons.push(format!("the session index was read back to {before} (Unix ms); sessions archived before then were not read"));
    }
    if listed.len() > q.sessions_max {
        reasons.push(format!("more than {} sessions in the window: the {} most recently active were read", q.sessions_max, q.sessions_max));
        listed.truncate(q.sessions_max);
    }
    let mut aggregate = WindowAggregate::new(q.keys_max);
    let mut unreadable = 0usize;
    for chunk in listed.chunks(BATCH_SESSIONS) {
        let mut batch = Vec::with_capacity(chunk.len());
        for item in chunk {
            match backend.session(tenant, &item.correlation_id).await {
                Ok(Some(data)) => batch.push(data),
                Ok(None) => {}
                Err(e) => {
                    unreadable += 1;
                    tracing::warn!(error = %e, id = %item.correlation_id, "window session unreadable");
                }
            }
        }
        let (start, end, keys_max) = (q.start_unix_nano, q.end_unix_nano, q.keys_max);
        let part = ollystack_cluster::blocking::unblock(move || fold(&batch, start, end, keys_max))
            .await
            .map_err(|e| QueryError::Storage(format!("window aggregation task failed: {e}")))?;
        aggregate.merge(&part);
    }
    if unreadable > 0 {
        reasons.push(format!("{unreadable} session(s) could not be read"));
    }
    if aggregate.dropped > 0 {
        reasons.push(format!("{} span(s) and log(s) of keys beyond the {} key bound were left out", aggregate.dropped, q.keys_max));
    }
    Ok(Collected { aggregate, partial: (!reasons.is_empty()).then(|| reasons.join("; ")) })
}
