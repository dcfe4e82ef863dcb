-- One row per finished session segment (a long session finishes in several
-- segments, numbered by segment_seq per node). The node writes these rows
-- with RowBinary: names and types here are its row struct's. Times:
-- first_seen/last_seen are event times (ns); finished_at and last_activity
-- (the last signal received) are the node's clock (ms).
-- Rows expire by ingest time (finished_at), so replayed old data is kept for
-- the full retention instead of expiring on arrival.

CREATE TABLE IF NOT EXISTS sessions (
    tenant_id LowCardinality(String) CODEC(ZSTD(1)),
    correlation_id String CODEC(ZSTD(1)),
    node_id LowCardinality(String) CODEC(ZSTD(1)),
    segment_seq UInt64 CODEC(T64, ZSTD(1)),
    first_seen DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    last_seen DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    finished_at DateTime64(3) CODEC(Delta(8), ZSTD(1)),
    last_activity DateTime64(3) CODEC(Delta(8), ZSTD(1)),
    finish_reason LowCardinality(String) CODEC(ZSTD(1)),
    services Array(LowCardinality(String)) CODEC(ZSTD(1)),
    span_count UInt64 CODEC(T64, ZSTD(1)),
    log_count UInt64 CODEC(T64, ZSTD(1)),
    exemplar_count UInt64 CODEC(T64, ZSTD(1)),
    error_count UInt64 CODEC(T64, ZSTD(1)),
    duration_ms Float64 CODEC(ZSTD(1)),
    root_service LowCardinality(String) CODEC(ZSTD(1)),
    root_span String CODEC(ZSTD(1)),
    root_failed Bool,
    summary String CODEC(ZSTD(1)),
    payload String CODEC(ZSTD(3)),
    INDEX idx_last_seen last_seen TYPE minmax GRANULARITY 1,
    INDEX idx_last_activity last_activity TYPE minmax GRANULARITY 1,
    INDEX idx_services services TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = MergeTree
PARTITION BY toDate(finished_at)
ORDER BY (tenant_id, correlation_id, node_id, segment_seq)
TTL toDateTime(finished_at) + toIntervalDay({ttl_days})
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;
