//! The node's metrics, declared once, rendered in Prometheus text format.
//!
//! Every metric is declared in one table ([`NodeMetrics`]'s, below): its
//! field, built from its exported name and help text, in the order
//! `/metrics` lists them. A field is named after its metric: the exported
//! name without the `ollystack_` prefix and the `_total` suffix.
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

/// A bare count: one sample of a family ([`Counter`], [`SignalCounters`]).
#[derive(Debug, Default)]
pub struct Count(AtomicU64);

impl Count {
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

/// A monotonically increasing counter.
#[derive(Debug)]
pub struct Counter {
    name: &'static str,
    help: &'static str,
    count: Count,
}

impl Counter {
    pub const fn new(name: &'static str, help: &'static str) -> Self {
        Self { name, help, count: Count(AtomicU64::new(0)) }
    }
    pub fn add(&self, n: u64) {
        self.count.add(n);
    }
    pub fn inc(&self) {
        self.count.inc();
    }
    pub fn get(&self) -> u64 {
        self.count.get()
    }
    fn render(&self, out: &mut String) {
        sample(out, self.name, "counter", self.help, self.get());
    }
}

/// A value that goes up and down.
#[derive(Debug)]
pub struct Gauge {
    name: &'static str,
    help: &'static str,
    value: AtomicU64,
}

impl Gauge {
    pub const fn new(name: &'static str, help: &'static str) -> Self {
        Self { name, help, value: AtomicU64::new(0) }
    }
    pub fn set(&self, v: u64) {
        self.value.store(v, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }
    pub fn add(&self, n: u64) {
        self.value.fetch_add(n, Ordering::Relaxed);
    }
    pub fn sub(&self, n: u64) {
        let _ = self.value.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(n)));
    }
    fn render(&self, out: &mut String) {
        sample(out, self.name, "gauge", self.help, self.get());
    }
}

/// One counter per signal, exported as one family labelled `signal`; every
/// signal is exported, zero or not.
#[derive(Debug)]
pub struct SignalCounters {
    name: &'static str,
    help: &'static str,
    pub spans: Count,
    pub logs: Count,
    pub exemplars: Count,
    pub data_points: Count,
}

impl SignalCounters {
    pub fn new(name: &'static str, help: &'static str) -> Self {
        Self { name, help, spans: Count::default(), logs: Count::default(), exemplars: Count::default(), data_points: Count::default() }
    }
    fn render(&self, out: &mut String) {
        let name = self.name;
        family(out, name, "counter", self.help);
        let signals = [("spans", &self.spans), ("logs", &self.logs), ("exemplars", &self.exemplars), ("data_points", &self.data_points)];
        for (signal, count) in signals {
            let _ = writeln!(out, "{name}{{signal=\"{signal}\"}} {}", count.get());
        }
    }
}

/// Counters keyed by a static label value.
#[derive(Debug)]
pub struct LabeledCounter {
    name: &'static str,
    help: &'static str,
    label: &'static str,
    counts: Mutex<BTreeMap<&'static str, u64>>,
}

impl LabeledCounter {
    pub fn new(name: &'static str, help: &'static str, label: &'static str) -> Self {
        Self { name, help, label, counts: Mutex::new(BTreeMap::new()) }
    }
    pub fn add(&self, label: &'static str, n: u64) {
        *self.counts.lock().entry(label).or_insert(0) += n;
    }
    pub fn get(&self, label: &str) -> u64 {
        self.counts.lock().get(label).copied().unwrap_or(0)
    }
    fn render(&self, out: &mut String) {
        let (name, label) = (self.name, self.label);
        family(out, name, "counter", self.help);
        let snapshot: Vec<(&'static str, u64)> = self.counts.lock().iter().map(|(k, v)| (*k, *v)).collect();
        for (value, n) in snapshot {
            let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {n}");
        }
    }
}

/// Counters keyed by a label value from the config: a bounded set known at
/// start, but not `'static`.
#[derive(Debug)]
pub struct ConfigLabeledCounter {
    name: &'static str,
    help: &'static str,
    label: &'static str,
    counts: Mutex<BTreeMap<String, u64>>,
}

impl ConfigLabeledCounter {
    pub fn new(name: &'static str, help: &'static str, label: &'static str) -> Self {
        Self { name, help, label, counts: Mutex::new(BTreeMap::new()) }
    }
    pub fn add(&self, label: &str, n: u64) {
        let mut counts = self.counts.lock();
        match counts.get_mut(label) {
            Some(count) => *count += n,
            None => {
                counts.insert(label.to_owned(), n);
            }
        }
    }
    pub fn get(&self, label: &str) -> u64 {
        self.counts.lock().get(label).copied().unwrap_or(0)
    }
    fn render(&self, out: &mut String) {
        let (name, label) = (self.name, self.label);
        family(out, name, "counter", self.help);
        let snapshot: Vec<(String, u64)> = self.counts.lock().iter().map(|(k, v)| (k.clone(), *v)).collect();
        for (value, n) in snapshot {
            let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {n}", escape_label(&value));
        }
    }
}

/// Declares [`NodeMetrics`] from one table: each field with its doc, its
/// type and the name and help it is exported under; `render` lists them in
/// the table's order.
macro_rules! node_metrics {
    ($($(#[$doc:meta])* $field:ident: $kind:ident::new($name:literal, $($arg:literal),+ $(,)?),)+) => {
        /// Every metric of a node. One instance per node (several nodes may
        /// live in one process, so nothing here is global).
        #[derive(Debug)]
        pub struct NodeMetrics {
            $($(#[$doc])* pub $field: $kind,)+
        }

        impl NodeMetrics {
            pub fn new() -> Self {
                Self { $($field: $kind::new($name, $($arg),+),)+ }
            }

            /// (field, exported name) of every metric, in the table's order.
            #[cfg(test)]
            fn names() -> Vec<(&'static str, &'static str)> {
                vec![$((stringify!($field), $name),)+]
            }

            /// Renders Prometheus text exposition format (version 0.0.4).
            pub fn render(&self) -> String {
                let mut out = String::with_capacity(4096);
                $(self.$field.render(&mut out);)+
                out
            }
        }
    };
}

impl Default for NodeMetrics {
    fn default() -> Self {
        Self::new()
    }
}

node_metrics! {
    ingest_items: SignalCounters::new("ollystack_ingest_items_total", "Signals accepted, by signal."),
    ingest_batches: Counter::new("ollystack_ingest_batches_total", "OTLP requests accepted."),
    /// Items rejected inside accepted batches (partial success).
    ingest_rejected_items: Counter::new(
        "ollystack_ingest_rejected_items_total",
        "Items rejected inside accepted requests (partial success).",
    ),
    /// Whole requests refused with a retryable status.
    ingest_overloaded: Counter::new(
        "ollystack_ingest_overloaded_total",
        "Requests refused with a retryable status: memory budget or WAL bound exhausted, or no cardinality quota in time.",
    ),
    /// Duplicate spans/logs/exemplars dropped by session de-duplication.
    ingest_duplicates: Counter::new("ollystack_ingest_duplicates_total", "Re-delivered signals stored once."),
    /// Explicit correlation IDs rejected by validation, by reason.
    correlation_ids_rejected: LabeledCounter::new(
        "ollystack_correlation_ids_rejected_total",
        "Explicit correlation IDs rejected and replaced, by reason.",
        "reason",
    ),
    correlation_ids_sanitized: Counter::new(
        "ollystack_correlation_ids_sanitized_total",
        "External correlation IDs whose characters were sanitized.",
    ),
    correlation_ids_generated: Counter::new(
        "ollystack_correlation_ids_generated_total",
        "Correlation IDs generated for signals with no ID and no trace.",
    ),
    correlation_ids_derived: Counter::new("ollystack_correlation_ids_derived_total", "Correlation IDs derived from a trace ID."),
    /// Traces that carried two different explicit IDs.
    correlation_trace_conflicts: Counter::new(
        "ollystack_correlation_trace_conflicts_total",
        "Signals whose trace already had a different explicit ID.",
    ),
    correlation_trace_merges: Counter::new(
        "ollystack_correlation_trace_merges_total",
        "Trace-derived sessions merged into an explicit session.",
    ),
    cluster_sessions_shipped: Counter::new(
        "ollystack_cluster_sessions_shipped_total",
        "Live sessions shipped to the node that owns them (merges, handoff).",
    ),
    /// Named without the `cluster_` of its metric: `cluster::route`
    /// (another change's file) counts it; rename with it.
    cluster_forward_requests: Counter::new("ollystack_cluster_forward_requests_total", "Forward calls to other nodes."),
    /// As `cluster_forward_requests`.
    cluster_forward_failures: Counter::new(
        "ollystack_cluster_forward_failures_total",
        "Forward calls to other nodes that failed (the sender was told to retry).",
    ),
    semconv_deprecated_attributes: LabeledCounter::new(
        "ollystack_semconv_deprecated_attributes_total",
        "Deprecated attributes seen and migrated, by attribute.",
        "attribute",
    ),
    sessions_live: Gauge::new("ollystack_sessions_live", "Live correlation sessions."),
    sessions_started: Counter::new("ollystack_sessions_started_total", "Session segments started."),
    sessions_finished: LabeledCounter::new("ollystack_sessions_finished_total", "Session segments finished, by reason.", "reason"),
    memory_used_bytes: Gauge::new("ollystack_memory_used_bytes", "Bytes of live session data held."),
    memory_budget_bytes: Gauge::new("ollystack_memory_budget_bytes", "Configured memory budget for live session data."),
    wal_bytes: Gauge::new("ollystack_wal_bytes", "Bytes of unflushed entries in the write-ahead log."),
    wal_replayed_entries: Counter::new("ollystack_wal_replayed_entries_total", "WAL entries replayed at start."),
    flush_segments: Counter::new("ollystack_flush_segments_total", "Session segments flushed to storage."),
    flush_failures: Counter::new("ollystack_flush_failures_total", "Failed flush attempts (retried)."),
    clickhouse_rows: Counter::new("ollystack_clickhouse_rows_total", "Rows committed to ClickHouse."),
    clickhouse_batches: Counter::new("ollystack_clickhouse_batches_total", "Batches committed to ClickHouse."),
    clickhouse_pending_segments: Gauge::new(
        "ollystack_clickhouse_pending_segments",
        "Finished segments waiting to be written to ClickHouse.",
    ),
    archive_bytes: Gauge::new("ollystack_archive_bytes", "Bytes held by the embedded archive."),
    archive_expired_segments: Counter::new("ollystack_archive_expired_segments_total", "Archived segments removed by retention."),
    /// See `session::supervisor`.
    sessions_failed: Counter::new("ollystack_sessions_failed_total", "Session actors that failed."),
    sessions_rebuilt: Counter::new("ollystack_sessions_rebuilt_total", "Failed sessions rebuilt from the write-ahead log."),
    /// Newly admitted on this node's lease.
    limits_values_admitted: ConfigLabeledCounter::new(
        "ollystack_limits_values_admitted_total",
        "Distinct attribute values newly admitted on this node's quota, by attribute.",
        "attribute",
    ),
    limits_values_overflowed: ConfigLabeledCounter::new(
        "ollystack_limits_values_overflowed_total",
        "Attribute values past their cardinality limit, replaced by the overflow marker, by attribute.",
        "attribute",
    ),
    limits_lease_waits: Counter::new(
        "ollystack_limits_lease_waits_total",
        "Attribute values that waited for cardinality quota before a decision.",
    ),
    /// Each refused value refused its batch.
    limits_refusals: Counter::new(
        "ollystack_limits_refusals_total",
        "Batches refused (retryable) because a value got no cardinality quota in time.",
    ),
    /// Lease, report, expire and limits proposals.
    limits_proposal_failures: Counter::new(
        "ollystack_limits_proposal_failures_total",
        "Cardinality-limiter proposals that failed or were refused (retried).",
    ),
    /// By signal: `span`, `log`, `resource`, `exemplar` (span events and
    /// links count with their span).
    ingest_attributes_dropped: LabeledCounter::new(
        "ollystack_ingest_attributes_dropped_total",
        "Attributes dropped on ingest by the attribute count limit or an over-long key, by signal.",
        "signal",
    ),
    /// By signal; log bodies count with their log.
    ingest_values_truncated: LabeledCounter::new(
        "ollystack_ingest_values_truncated_total",
        "Values cut on ingest by the attribute value length, nesting or element limits (log bodies included), by signal.",
        "signal",
    ),
    ingest_span_events_dropped: Counter::new(
        "ollystack_ingest_span_events_dropped_total",
        "Span events dropped on ingest by the per-span event limit.",
    ),
    ingest_span_links_dropped: Counter::new(
        "ollystack_ingest_span_links_dropped_total",
        "Span links dropped on ingest by the per-span link limit.",
    ),
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    family(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
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
        m.ingest_items.spans.add(3);
        m.correlation_ids_rejected.add("too_long", 2);
        let text = m.render();
        assert!(text.contains("ollystack_ingest_items_total{signal=\"spans\"} 3"));
        assert!(text.contains("ollystack_correlation_ids_rejected_total{reason=\"too_long\"} 2"));
        assert!(text.contains("# TYPE ollystack_sessions_live gauge"));
    }

    #[test]
    fn renders_limit_counters_by_attribute() {
        let m = NodeMetrics::default();
        m.limits_values_overflowed.add("http.route", 15);
        m.limits_values_overflowed.add("http.route", 1);
        m.limits_values_admitted.add("odd\"name", 2);
        let text = m.render();
        assert!(text.contains("ollystack_limits_values_overflowed_total{attribute=\"http.route\"} 16"), "{text}");
        assert!(text.contains("ollystack_limits_values_admitted_total{attribute=\"odd\\\"name\"} 2"), "{text}");
        assert!(text.contains("ollystack_limits_refusals_total 0"));
    }

    #[test]
    fn every_family_is_rendered_once_with_help_and_type() {
        let text = NodeMetrics::default().render();
        let families: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).collect();
        let helps = text.lines().filter(|l| l.starts_with("# HELP ")).count();
        let mut names: Vec<&str> = families.iter().filter_map(|f| f.split(' ').next()).collect();
        assert_eq!(helps, families.len());
        let all = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all, "a family rendered twice");
        assert!(names.iter().all(|n| n.starts_with("ollystack_")), "{names:?}");
    }

    /// See the module docs.
    #[test]
    fn every_field_is_named_after_its_metric() {
        for (field, name) in NodeMetrics::names() {
            let bare = name.strip_prefix("ollystack_").map(|n| n.strip_suffix("_total").unwrap_or(n));
            assert_eq!(Some(field), bare, "{name}");
        }
    }
}
