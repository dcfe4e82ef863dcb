-- Metric exemplars: a measurement that points at the span (and so the
-- correlation session) it was taken in. trace_id and span_id are lowercase
-- hex, as in otel_traces. Rows expire clickhouse.ttl_days days after they
-- were inserted.

CREATE TABLE IF NOT EXISTS metric_exemplars (
    tenant_id LowCardinality(String) CODEC(ZSTD(1)),
    correlation_id String CODEC(ZSTD(1)),
    metric_name LowCardinality(String) CODEC(ZSTD(1)),
    service_name LowCardinality(String) CODEC(ZSTD(1)),
    timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    value Float64 CODEC(ZSTD(1)),
    trace_id String CODEC(ZSTD(1)),
    span_id String CODEC(ZSTD(1)),
    labels Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ingested_at DateTime DEFAULT now() CODEC(Delta(4), ZSTD(1)),
    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_correlation_id correlation_id TYPE bloom_filter(0.001) GRANULARITY 1
) ENGINE = MergeTree
PARTITION BY toDate(timestamp)
ORDER BY (tenant_id, metric_name, service_name, timestamp)
TTL ingested_at + toIntervalDay({ttl_days})
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

-- Each exemplar with the span it points at (empty span columns when that
-- span is not stored). Filter on trace_id, correlation_id or metric and time:
-- the filter reaches both sides of the join.
CREATE VIEW IF NOT EXISTS exemplar_traces AS
SELECT
    e.tenant_id AS tenant_id,
    if(e.correlation_id != '', e.correlation_id, t.correlation_id) AS correlation_id,
    e.metric_name AS metric_name,
    e.service_name AS service_name,
    e.timestamp AS timestamp,
    e.value AS value,
    e.trace_id AS trace_id,
    e.span_id AS span_id,
    e.labels AS labels,
    t.SpanName AS span_name,
    t.ServiceName AS span_service_name,
    t.Duration AS span_duration,
    t.StatusCode AS span_status_code,
    t.correlation_id AS span_correlation_id
FROM metric_exemplars AS e
LEFT JOIN otel_traces AS t
    ON t.TraceId = e.trace_id AND t.SpanId = e.span_id AND t.tenant_id = e.tenant_id;
