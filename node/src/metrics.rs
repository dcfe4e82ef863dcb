//! The node's metrics, declared once, rendered in Prometheus text format.
//!
//! Counters are plain atomics (the hot path does one `fetch_add` each);
//! label sets are small and fixed, except the deprecated-attribute counter
//! whose keys are the `&'static str` names the semconv migration knows, and
//! the cardinality-limit counters whose keys are the limited attributes of
//! the config (at most `MAX_ATTRIBUTES`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// A monotonically increasing counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn sub(&self, n: u64) {
        let _ = self.0.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(n)));
    }
}

/// Counters keyed by a static label value.
#[derive(Debug, Default)]
pub struct LabeledCounter(Mutex<BTreeMap<&'static str, u64>>);

impl LabeledCounter {
    pub fn add(&self, label: &'static str, n: u64) {
        *self.0.lock().entry(label).or_insert(0) += n;
    }
    pub fn get(&self, label: &str) -> u64 {
        self.0.lock().get(label).copied().unwrap_or(0)
    }
    fn snapshot(&self) -> Vec<(&'static str, u64)> {
        self.0.lock().iter().map(|(k, v)| (*k, *v)).collect()
    }
}

/// Counters keyed by a label value from the config: a bounded set known at
/// start, but not `'static`.
#[derive(Debug, Default)]
pub struct ConfigLabeledCounter(Mutex<BTreeMap<String, u64>>);

impl ConfigLabeledCounter {
    pub fn add(&self, label: &str, n: u64) {
        let mut counts = self.0.lock();
        match counts.get_mut(label) {
            Some(count) => *count += n,
            None => {
                counts.insert(label.to_owned(), n);
            }
        }
    }
    pub fn get(&self, label: &str) -> u64 {
        self.0.lock().get(label).copied().unwrap_or(0)
    }
    fn snapshot(&self) -> Vec<(String, u64)> {
        self.0.lock().iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

/// Every metric of a node. One instance per node (several nodes may live in
/// one process, so nothing here is global).
#[derive(Debug, Default)]
pub struct NodeMetrics {
    pub ingest_spans: Counter,
    pub ingest_logs: Counter,
    pub ingest_exemplars: Counter,
    pub ingest_data_points: Counter,
    pub ingest_batches: Counter,
    /// Items rejected inside accepted batches (partial success).
    pub ingest_rejected_items: Counter,
    /// Whole batches refused because the memory budget was exhausted.
    pub ingest_overloaded_batches: Counter,
    /// Duplicate spans/logs/exemplars dropped by session de-duplication.
    pub ingest_duplicates: Counter,
    /// Explicit correlation IDs rejected by validation, by reason.
    pub ids_rejected: LabeledCounter,
    pub ids_sanitized: Counter,
    pub ids_generated: Counter,
    pub ids_derived: Counter,
    /// Traces that carried two different explicit IDs.
    pub trace_id_conflicts: Counter,
    /// Trace-derived sessions merged into an explicit session.
    pub trace_merges: Counter,
    /// Live sessions shipped to the node that owns them (merges into a
    /// session owned elsewhere, handoff after a ring change).
    pub sessions_shipped: Counter,
    /// Batches and session groups forwarded to other nodes, and failures.
    pub forward_requests: Counter,
    pub forward_failures: Counter,
    /// Deprecated semantic-convention attributes seen (and migrated).
    pub deprecated_attributes: LabeledCounter,
    pub sessions_live: Gauge,
    pub sessions_started: Counter,
    /// Finished session segments, by reason.
    pub sessions_finished: LabeledCounter,
    pub memory_used_bytes: Gauge,
    pub memory_budget_bytes: Gauge,
    pub wal_bytes: Gauge,
    pub wal_entries_replayed: Counter,
    pub flush_segments: Counter,
    pub flush_failures: Counter,
    pub clickhouse_rows: Counter,
    pub clickhouse_batches: Counter,
    pub clickhouse_pending_segments: Gauge,
    pub archive_bytes: Gauge,
    pub archive_segments_expired: Counter,
    /// Distinct values newly admitted on this node's lease, by attribute.
    pub limits_admitted: ConfigLabeledCounter,
    /// Values past their limit, replaced by the overflow marker, by attribute.
    pub limits_overflowed: ConfigLabeledCounter,
    /// Values that waited for quota (a lease) before a decision.
    pub limits_lease_waits: Counter,
    /// Values left undecided when the wait ran out: each refused its batch.
    pub limits_refusals: Counter,
    /// Limiter proposals (lease, report, expire, limits) that failed or
    /// were refused; retried.
    pub limits_proposal_failures: Counter,
    /// Attributes dropped by the OTel attribute limits (count, key length),
    /// by signal (`span`, `log`, `resource`, `exemplar`; span events and links count
    /// with their span).
    pub ingest_attributes_dropped: LabeledCounter,
    /// Values cut by the OTel attribute limits (length, nesting, elements),
    /// by signal; log bodies count with their log.
    pub ingest_values_truncated: LabeledCounter,
    /// Span events and links past their per-span limits.
    pub ingest_span_events_dropped: Counter,
    pub ingest_span_links_dropped: Counter,
    /// Session actors that failed (panicked), and failed sessions rebuilt
    /// from the WAL (see `session::supervisor`).
    pub sessions_failed: Counter,
    pub sessions_rebuilt: Counter,
}

impl NodeMetrics {
    /// Renders Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let signals = [
            ("spans", self.ingest_spans.get()),
            ("logs", self.ingest_logs.get()),
            ("exemplars", self.ingest_exemplars.get()),
            ("data_points", self.ingest_data_points.get()),
        ];
        family(&mut out, "ollystack_ingest_items_total", "counter", "Signals accepted, by signal.");
        for (signal, v) in signals {
            let _ = writeln!(out, "ollystack_ingest_items_total{{signal=\"{signal}\"}} {v}");
        }
        simple(&mut out, "ollystack_ingest_batches_total", "counter", "OTLP requests accepted.", self.ingest_batches.get());
        simple(
            &mut out,
            "ollystack_ingest_rejected_items_total",
            "counter",
            "Items rejected inside accepted requests (partial success).",
            self.ingest_rejected_items.get(),
        );
        simple(
            &mut out,
            "ollystack_ingest_overloaded_total",
            "counter",
            "Requests refused with a retryable status: memory budget or WAL bound exhausted, or no cardinality quota in time.",
            self.ingest_overloaded_batches.get(),
        );
        simple(&mut out, "ollystack_ingest_duplicates_total", "counter", "Re-delivered signals stored once.", self.ingest_duplicates.get());
        labeled(
            &mut out,
            "ollystack_correlation_ids_rejected_total",
            "Explicit correlation IDs rejected and replaced, by reason.",
            "reason",
            &self.ids_rejected,
        );
        simple(
            &mut out,
            "ollystack_correlation_ids_sanitized_total",
            "counter",
            "External correlation IDs whose characters were sanitized.",
            self.ids_sanitized.get(),
        );
        simple(
            &mut out,
            "ollystack_correlation_ids_generated_total",
            "counter",
            "Correlation IDs generated for signals with no ID and no trace.",
            self.ids_generated.get(),
        );
        simple(
            &mut out,
            "ollystack_correlation_ids_derived_total",
            "counter",
            "Correlation IDs derived from a trace ID.",
            self.ids_derived.get(),
        );
        simple(
            &mut out,
            "ollystack_correlation_trace_conflicts_total",
            "counter",
            "Signals whose trace already had a different explicit ID.",
            self.trace_id_conflicts.get(),
        );
        simple(
            &mut out,
            "ollystack_correlation_trace_merges_total",
            "counter",
            "Trace-derived sessions merged into an explicit session.",
            self.trace_merges.get(),
        );
        simple(
            &mut out,
            "ollystack_cluster_sessions_shipped_total",
            "counter",
            "Live sessions shipped to the node that owns them (merges, handoff).",
            self.sessions_shipped.get(),
        );
        simple(
            &mut out,
            "ollystack_cluster_forward_requests_total",
            "counter",
            "Forward calls to other nodes.",
            self.forward_requests.get(),
        );
        simple(
            &mut out,
            "ollystack_cluster_forward_failures_total",
            "counter",
            "Forward calls to other nodes that failed (the sender was told to retry).",
            self.forward_failures.get(),
        );
        labeled(
            &mut out,
            "ollystack_semconv_deprecated_attributes_total",
            "Deprecated attributes seen and migrated, by attribute.",
            "attribute",
            &self.deprecated_attributes,
        );
        simple(&mut out, "ollystack_sessions_live", "gauge", "Live correlation sessions.", self.sessions_live.get());
        simple(&mut out, "ollystack_sessions_started_total", "counter", "Session segments started.", self.sessions_started.get());
        labeled(&mut out, "ollystack_sessions_finished_total", "Session segments finished, by reason.", "reason", &self.sessions_finished);
        simple(&mut out, "ollystack_memory_used_bytes", "gauge", "Bytes of live session data held.", self.memory_used_bytes.get());
        simple(
            &mut out,
            "ollystack_memory_budget_bytes",
            "gauge",
            "Configured memory budget for live session data.",
            self.memory_budget_bytes.get(),
        );
        simple(&mut out, "ollystack_wal_bytes", "gauge", "Bytes of unflushed entries in the write-ahead log.", self.wal_bytes.get());
        simple(
            &mut out,
            "ollystack_wal_replayed_entries_total",
            "counter",
            "WAL entries replayed at start.",
            self.wal_entries_replayed.get(),
        );
        simple(&mut out, "ollystack_flush_segments_total", "counter", "Session segments flushed to storage.", self.flush_segments.get());
        simple(&mut out, "ollystack_flush_failures_total", "counter", "Failed flush attempts (retried).", self.flush_failures.get());
        simple(&mut out, "ollystack_clickhouse_rows_total", "counter", "Rows committed to ClickHouse.", self.clickhouse_rows.get());
        simple(
            &mut out,
            "ollystack_clickhouse_batches_total",
            "counter",
            "Batches committed to ClickHouse.",
            self.clickhouse_batches.get(),
        );
        simple(
            &mut out,
            "ollystack_clickhouse_pending_segments",
            "gauge",
            "Finished segments waiting to be written to ClickHouse.",
            self.clickhouse_pending_segments.get(),
        );
        simple(&mut out, "ollystack_archive_bytes", "gauge", "Bytes held by the embedded archive.", self.archive_bytes.get());
        simple(
            &mut out,
            "ollystack_archive_expired_segments_total",
            "counter",
            "Archived segments removed by retention.",
            self.archive_segments_expired.get(),
        );
        simple(&mut out, "ollystack_sessions_failed_total", "counter", "Session actors that failed.", self.sessions_failed.get());
        simple(
            &mut out,
            "ollystack_sessions_rebuilt_total",
            "counter",
            "Failed sessions rebuilt from the write-ahead log.",
            self.sessions_rebuilt.get(),
        );
        self.render_limits(&mut out);
        self.render_attribute_limits(&mut out);
        out
    }

    /// Adds what the OTel attribute limits removed, by signal label.
    pub fn record_trimmed(&self, by_signal: &[(&'static str, crate::ingest::Trimmed)]) {
        for (signal, t) in by_signal.iter().filter(|(_, t)| !t.is_empty()) {
            if t.attributes_dropped > 0 {
                self.ingest_attributes_dropped.add(signal, t.attributes_dropped);
            }
            if t.values_truncated > 0 {
                self.ingest_values_truncated.add(signal, t.values_truncated);
            }
            self.ingest_span_events_dropped.add(t.events_dropped);
            self.ingest_span_links_dropped.add(t.links_dropped);
        }
    }

    fn render_attribute_limits(&self, out: &mut String) {
        labeled(
            out,
            "ollystack_ingest_attributes_dropped_total",
            "Attributes dropped on ingest by the attribute count limit or an over-long key, by signal.",
            "signal",
            &self.ingest_attributes_dropped,
        );
        labeled(
            out,
            "ollystack_ingest_values_truncated_total",
            "Values cut on ingest by the attribute value length, nesting or element limits (log bodies included), by signal.",
            "signal",
            &self.ingest_values_truncated,
        );
        simple(
            out,
            "ollystack_ingest_span_events_dropped_total",
            "counter",
            "Span events dropped on ingest by the per-span event limit.",
            self.ingest_span_events_dropped.get(),
        );
        simple(
            out,
            "ollystack_ingest_span_links_dropped_total",
            "counter",
            "Span links dropped on ingest by the per-span link limit.",
            self.ingest_span_links_dropped.get(),
        );
    }

    fn render_limits(&self, out: &mut String) {
        config_labeled(
            out,
            "ollystack_limits_values_admitted_total",
            "Distinct attribute values newly admitted on this node's quota, by attribute.",
            "attribute",
            &self.limits_admitted,
        );
        config_labeled(
            out,
            "ollystack_limits_values_overflowed_total",
            "Attribute values past their cardinality limit, replaced by the overflow marker, by attribute.",
            "attribute",
            &self.limits_overflowed,
        );
        simple(
            out,
            "ollystack_limits_lease_waits_total",
            "counter",
            "Attribute values that waited for cardinality quota before a decision.",
            self.limits_lease_waits.get(),
        );
        simple(
            out,
            "ollystack_limits_refusals_total",
            "counter",
            "Batches refused (retryable) because a value got no cardinality quota in time.",
            self.limits_refusals.get(),
        );
        simple(
            out,
            "ollystack_limits_proposal_failures_total",
            "counter",
            "Cardinality-limiter proposals that failed or were refused (retried).",
            self.limits_proposal_failures.get(),
        );
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn simple(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    family(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

fn labeled(out: &mut String, name: &str, help: &str, label: &str, counter: &LabeledCounter) {
    family(out, name, "counter", help);
    for (value, n) in counter.snapshot() {
        let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {n}");
    }
}

fn config_labeled(out: &mut String, name: &str, help: &str, label: &str, counter: &ConfigLabeledCounter) {
    family(out, name, "counter", help);
    for (value, n) in counter.snapshot() {
        let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {n}", escape_label(&value));
    }
}

/// A label value in Prometheus text: backslash, quote and newline escaped.
fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_labels() {
        let m = NodeMetrics::default();
        m.ingest_spans.add(3);
        m.ids_rejected.add("too_long", 2);
        let text = m.render();
        assert!(text.contains("ollystack_ingest_items_total{signal=\"spans\"} 3"));
        assert!(text.contains("ollystack_correlation_ids_rejected_total{reason=\"too_long\"} 2"));
        assert!(text.contains("# TYPE ollystack_sessions_live gauge"));
    }

    #[test]
    fn renders_limit_counters_by_attribute() {
        let m = NodeMetrics::default();
        m.limits_overflowed.add("http.route", 15);
        m.limits_overflowed.add("http.route", 1);
        m.limits_admitted.add("odd\"name", 2);
        let text = m.render();
        assert!(text.contains("ollystack_limits_values_overflowed_total{attribute=\"http.route\"} 16"), "{text}");
        assert!(text.contains("ollystack_limits_values_admitted_total{attribute=\"odd\\\"name\"} 2"), "{text}");
        assert!(text.contains("ollystack_limits_refusals_total 0"));
    }

    #[test]
    fn renders_attribute_limit_counters_by_signal() {
        use crate::ingest::Trimmed;
        let m = NodeMetrics::default();
        let span = Trimmed { attributes_dropped: 5, values_truncated: 2, events_dropped: 3, links_dropped: 1 };
        let log = Trimmed { values_truncated: 4, ..Trimmed::default() };
        m.record_trimmed(&[("span", span), ("log", log), ("resource", Trimmed::default())]);
        m.record_trimmed(&[("span", span)]);
        let text = m.render();
        assert!(text.contains("ollystack_ingest_attributes_dropped_total{signal=\"span\"} 10"), "{text}");
        assert!(text.contains("ollystack_ingest_values_truncated_total{signal=\"log\"} 4"), "{text}");
        assert!(!text.contains("signal=\"resource\""), "{text}");
        assert!(text.contains("ollystack_ingest_span_events_dropped_total 6"));
        assert!(text.contains("ollystack_ingest_span_links_dropped_total 2"));
    }
}
