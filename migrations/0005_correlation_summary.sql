-- Per correlation ID, aggregated from otel_traces as spans arrive. Rows for
-- one key merge in the background: read with GROUP BY, e.g.
--   SELECT tenant_id, correlation_id, min(first_seen), max(last_seen),
--          sum(span_count), sum(error_count), groupUniqArrayArray(services)
--   FROM correlation_summary WHERE correlation_id = 'x'
--   GROUP BY tenant_id, correlation_id
-- Errors count both status spellings: the exporter's 'Error' and the
-- proto name older exporter versions wrote. A key expires
-- clickhouse.ttl_days days after its last span arrived.

CREATE TABLE IF NOT EXISTS correlation_summary (
    tenant_id LowCardinality(String),
    correlation_id String,
    first_seen SimpleAggregateFunction(min, DateTime64(9)),
    last_seen SimpleAggregateFunction(max, DateTime64(9)),
    span_count SimpleAggregateFunction(sum, UInt64),
    error_count SimpleAggregateFunction(sum, UInt64),
    services SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    ingested_at SimpleAggregateFunction(max, DateTime) DEFAULT now()
) ENGINE = AggregatingMergeTree
PARTITION BY toStartOfWeek(first_seen)
ORDER BY (tenant_id, correlation_id)
TTL ingested_at + toIntervalDay({ttl_days})
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS correlation_summary_mv TO correlation_summary AS
SELECT
    tenant_id,
    correlation_id,
    min(Timestamp) AS first_seen,
    max(addNanoseconds(Timestamp, Duration)) AS last_seen,
    toUInt64(count()) AS span_count,
    toUInt64(countIf(StatusCode IN ('Error', 'STATUS_CODE_ERROR'))) AS error_count,
    groupUniqArray(toString(ServiceName)) AS services
FROM otel_traces
WHERE correlation_id != ''
GROUP BY tenant_id, correlation_id;
