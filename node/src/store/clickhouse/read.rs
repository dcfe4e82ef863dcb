//! Reading stored sessions back from ClickHouse, with bound parameters
//! only (the crate escapes them; no user text is ever spliced into SQL).

use ollystack_proto::store::ArchivedSegment;
use prost::Message;
use serde::Deserialize;

use crate::model::{CorrelationId, TenantId};
use crate::query::SessionFilter;
use crate::session::Summary;
use crate::store::{ArchiveIndexEntry, StoreError};

#[derive(Debug, clickhouse::Row, Deserialize)]
struct PayloadRow {
    node_id: String,
    segment_seq: u64,
    #[serde(with = "serde_bytes")]
    payload: Vec<u8>,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct ListRow {
    correlation_id: String,
    segment_seq: u64,
    finished_at: i64,
    last_activity: i64,
    summary: String,
    bytes: u64,
}

pub const SEGMENTS_SQL: &str =
    "SELECT ?fields FROM sessions WHERE tenant_id = ? AND correlation_id = ? ORDER BY finished_at, node_id, segment_seq LIMIT 100000";

pub const RECENT_SQL: &str = "SELECT correlation_id, segment_seq, finished_at, last_activity, summary, length(payload) AS bytes \
     FROM sessions WHERE tenant_id = ? AND (? = '' OR has(services, ?)) AND (? = 0 OR error_count > 0) \
     AND last_activity >= fromUnixTimestamp64Milli(?) \
     AND (? = 0 OR (last_seen >= fromUnixTimestamp64Nano(?) AND first_seen < fromUnixTimestamp64Nano(?))) \
     AND (? = 0 OR finished_at < fromUnixTimestamp64Milli(?)) \
     ORDER BY last_activity DESC LIMIT ?";

fn ch(e: clickhouse::error::Error) -> StoreError {
    StoreError::ClickHouse(e.to_string())
}

/// Stored segments of `ids`, each with its writer's (node, seq), oldest first.
pub async fn segments(
    client: &clickhouse::Client,
    tenant: &TenantId,
    ids: &[CorrelationId],
) -> Result<Vec<((String, u64), ArchivedSegment)>, StoreError> {
    let mut out = Vec::new();
    for id in ids {
        let rows = client.query(SEGMENTS_SQL).bind(tenant.as_str()).bind(id.as_str()).fetch_all::<PayloadRow>().await.map_err(ch)?;
        for row in rows {
            let seg = ArchivedSegment::decode(row.payload.as_slice())
                .map_err(|e| StoreError::Corrupt { tree: "clickhouse sessions.payload", detail: e.to_string() })?;
            out.push(((row.node_id, row.segment_seq), seg));
        }
    }
    Ok(out)
}

/// Streams the stored segments of `ids` (oldest first per ID) to `each`
/// with their writer's (node, seq), one row in memory at a time. An error
/// of `each` stops the stream and is returned.
pub async fn each_segment(
    client: &clickhouse::Client,
    tenant: &TenantId,
    ids: &[CorrelationId],
    mut each: impl FnMut((String, u64), &[u8]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    for id in ids {
        let mut cursor = client.query(SEGMENTS_SQL).bind(tenant.as_str()).bind(id.as_str()).fetch::<PayloadRow>().map_err(ch)?;
        while let Some(row) = cursor.next().await.map_err(ch)? {
            each((row.node_id, row.segment_seq), &row.payload)?;
        }
    }
    Ok(())
}

/// Listing entries of stored segments matching `filter`, most recent
/// activity first.
pub async fn recent(client: &clickhouse::Client, tenant: &TenantId, filter: &SessionFilter) -> Result<Vec<ArchiveIndexEntry>, StoreError> {
    let service = filter.service.clone().unwrap_or_default();
    let overlap = filter.event_overlap_unix_nano;
    // DateTime64(9) ends in 2262 (i64 nanoseconds): later bounds are clamped.
    let nanos = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let rows = client
        .query(RECENT_SQL)
        .bind(tenant.as_str())
        .bind(service.as_str())
        .bind(service.as_str())
        .bind(u8::from(filter.errors_only))
        .bind(i64::try_from(filter.since_unix_ms.unwrap_or(0)).unwrap_or(i64::MAX))
        .bind(u8::from(overlap.is_some()))
        .bind(nanos(overlap.map_or(0, |w| w.0)))
        .bind(nanos(overlap.map_or(0, |w| w.1)))
        .bind(u8::from(filter.before_unix_ms.is_some()))
        .bind(i64::try_from(filter.before_unix_ms.unwrap_or(0)).unwrap_or(i64::MAX))
        .bind(filter.limit as u64)
        .fetch_all::<ListRow>()
        .await
        .map_err(ch)?;
    rows.into_iter()
        .map(|r| {
            let summary: Summary = serde_json::from_str(&r.summary)
                .map_err(|e| StoreError::Corrupt { tree: "clickhouse sessions.summary", detail: e.to_string() })?;
            Ok(ArchiveIndexEntry {
                tenant: tenant.as_str().to_owned(),
                correlation_id: r.correlation_id,
                segment_seq: r.segment_seq,
                finished_unix_ms: u64::try_from(r.finished_at).unwrap_or(0),
                last_activity_unix_ms: u64::try_from(r.last_activity).unwrap_or(0),
                bytes: r.bytes,
                summary,
            })
        })
        .collect()
}
