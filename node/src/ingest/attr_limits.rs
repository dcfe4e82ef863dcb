//! Attribute limits as the OpenTelemetry SDK specification defines them
//! ("Attribute Limits", "Span Limits", "LogRecord Limits"), applied by the
//! receiver because senders cannot be trusted to have applied them: a span
//! with 100,000 attributes or a 10 MB value would otherwise be stored whole
//! and held in memory until its session finishes.
//!
//! Not to be confused with [`super::limit`], the cluster-wide *cardinality*
//! limits (distinct values per attribute per window).
//!
//! What the spec says, and what is done here:
//! * **Count** (`attribute_count_limit`, spec default 128): an attribute
//!   collection keeps its first N attributes; the rest are dropped and
//!   added to the record's `dropped_attributes_count`. Applies to span,
//!   span event, span link and log record attributes (the spec's per-model
//!   limits all default to the same 128, so one setting serves them all).
//!   Nested kvlist entries do not count here (spec), see *shape* below.
//! * **Value length** (`attribute_value_length_limit`, spec default
//!   unlimited): a string longer than N characters (Unicode scalar values,
//!   the spec's "counting any character as 1") is cut to N characters, so
//!   always at a UTF-8 boundary; a byte array is cut to N bytes; arrays and
//!   maps apply it to each element, recursively. Other values are never
//!   cut. The spec has no bound by default; a receiver needs one. 64 Ki
//!   characters keeps any real stack trace or SQL text (typically a few
//!   KiB) whole, and bounds one value to 256 KiB of UTF-8.
//! * **Events and links** (`span_event_count_limit`, `span_link_count_limit`,
//!   spec defaults 128): the first N are kept, the rest counted in
//!   `dropped_events_count` / `dropped_links_count`.
//!
//! Beyond the spec, because a hostile sender is not an SDK:
//! * **Shape of one value**: arrays and maps nested deeper than
//!   `attribute_value_depth_limit` (depth 1 is the attribute's own value)
//!   are replaced by an empty value, as the OTel declarative config's
//!   `attribute_value_depth_limit` does; at most
//!   `attribute_value_element_limit` array elements and map entries, counted
//!   over all levels of one value, are kept. Without these a single
//!   attribute could carry millions of elements.
//! * **Keys**: an attribute or map entry whose key is longer than
//!   [`KEY_BYTES_MAX`] is dropped (a key cannot be cut without changing
//!   what it names).
//! * **Free text beside attributes** (span and event names, status
//!   messages, `trace_state`, log severity text and event name) is cut to
//!   the value length limit: the same 10 MB attack works there.
//! * **Log bodies**: the spec exempts them; here strings and bytes in a
//!   body are cut to `log_body_length_limit` (default 256 Ki characters: a
//!   body is the record's main payload, so it gets more room than one
//!   attribute) with the same shape bounds. Nothing in OTLP records that a
//!   body was cut, so it is only counted in `/metrics`.
//! * **Resource attributes**: the spec exempts them (sent once per batch).
//!   Here they are limited too, because ingest reads them once per span and
//!   log record of the batch, so 100,000 of them would cost
//!   100,000 × (records in the batch) comparisons. So that a limit never
//!   changes which service, session or tenant a record belongs to, the
//!   first occurrence of each key OllyStack reads (the `protected` keys:
//!   `service.name`, the correlation, tenant, header and baggage
//!   attributes) is kept wherever it is in the list.
//!
//! * **Exemplar labels** (a data point's attributes and an exemplar's
//!   filtered attributes): limited like resources, for the same reason.
//!
//! Everything here is pure and allocation-light: it only removes and cuts
//! (and [`record_trimmed`] hands the counts of what it removed to the
//! node's metrics).

use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;

use crate::metrics::NodeMetrics;

/// Longest attribute or map key kept, in bytes. Semantic-convention keys are
/// a few dozen bytes; a kilobyte leaves room for generated ones.
pub const KEY_BYTES_MAX: usize = 1024;

/// The limits applied to every span, log record and resource on ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttrLimits {
    /// Attributes kept per collection (span, event, link, log record,
    /// resource); spec default 128.
    pub attribute_count_limit: usize,
    /// Characters kept of a string value (bytes of a byte array).
    pub attribute_value_length_limit: usize,
    /// Deepest array/map nesting kept in one value; 1: no nesting.
    pub attribute_value_depth_limit: usize,
    /// Array elements and map entries kept in one value, all levels together.
    pub attribute_value_element_limit: usize,
    /// Events kept per span; spec default 128.
    pub span_event_count_limit: usize,
    /// Links kept per span; spec default 128.
    pub span_link_count_limit: usize,
    /// Characters (or bytes) kept of each string (or byte array) in a log body.
    pub log_body_length_limit: usize,
}

impl Default for AttrLimits {
    fn default() -> Self {
        Self {
            attribute_count_limit: 128,
            attribute_value_length_limit: 64 * 1024,
            // As deep as the API renders values (`query::attrs`).
            attribute_value_depth_limit: 16,
            attribute_value_element_limit: 1024,
            span_event_count_limit: 128,
            span_link_count_limit: 128,
            log_body_length_limit: 256 * 1024,
        }
    }
}

/// What the limits removed from a set of records: the figures `/metrics`
/// shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Trimmed {
    /// Attributes dropped (count limit or over-long key), all collections.
    pub attributes_dropped: u64,
    /// Values cut: strings, byte arrays, arrays/maps cut short or emptied,
    /// free-text fields and log bodies.
    pub values_truncated: u64,
    pub events_dropped: u64,
    pub links_dropped: u64,
}

impl Trimmed {
    pub fn add(&mut self, other: Trimmed) {
        self.attributes_dropped += other.attributes_dropped;
        self.values_truncated += other.values_truncated;
        self.events_dropped += other.events_dropped;
        self.links_dropped += other.links_dropped;
    }

    pub fn is_empty(&self) -> bool {
        *self == Trimmed::default()
    }
}

/// Adds what the limits removed to the node's metrics, by signal label.
pub fn record_trimmed(metrics: &NodeMetrics, by_signal: &[(&'static str, Trimmed)]) {
    for (signal, t) in by_signal.iter().filter(|(_, t)| !t.is_empty()) {
        if t.attributes_dropped > 0 {
            metrics.ingest_attributes_dropped.add(signal, t.attributes_dropped);
        }
        if t.values_truncated > 0 {
            metrics.ingest_values_truncated.add(signal, t.values_truncated);
        }
        metrics.ingest_span_events_dropped.add(t.events_dropped);
        metrics.ingest_span_links_dropped.add(t.links_dropped);
    }
}

/// Limits a span: its attributes, events (and theirs), links (and theirs),
/// and its free-text fields. The `dropped_*_count` fields grow by what was
/// dropped, so the stored span still says it was larger.
pub fn limit_span(limits: &AttrLimits, span: &mut Span) -> Trimmed {
    let mut t = Trimmed::default();
    limit_attributes(limits, &mut span.attributes, &mut span.dropped_attributes_count, &[], &mut t);
    let text_max = limits.attribute_value_length_limit;
    cut_text(&mut span.name, text_max, &mut t);
    cut_text(&mut span.trace_state, text_max, &mut t);
    if let Some(status) = span.status.as_mut() {
        cut_text(&mut status.message, text_max, &mut t);
    }
    let events_dropped = keep_first(&mut span.events, limits.span_event_count_limit);
    span.dropped_events_count = add_u32(span.dropped_events_count, events_dropped);
    t.events_dropped += events_dropped;
    for event in &mut span.events {
        limit_attributes(limits, &mut event.attributes, &mut event.dropped_attributes_count, &[], &mut t);
        cut_text(&mut event.name, text_max, &mut t);
    }
    let links_dropped = keep_first(&mut span.links, limits.span_link_count_limit);
    span.dropped_links_count = add_u32(span.dropped_links_count, links_dropped);
    t.links_dropped += links_dropped;
    for link in &mut span.links {
        limit_attributes(limits, &mut link.attributes, &mut link.dropped_attributes_count, &[], &mut t);
        cut_text(&mut link.trace_state, text_max, &mut t);
    }
    t
}

/// Limits a log record: its attributes, its body (by the body's own length
/// limit) and its free-text fields.
pub fn limit_log(limits: &AttrLimits, log: &mut LogRecord) -> Trimmed {
    let mut t = Trimmed::default();
    limit_attributes(limits, &mut log.attributes, &mut log.dropped_attributes_count, &[], &mut t);
    cut_text(&mut log.severity_text, limits.attribute_value_length_limit, &mut t);
    cut_text(&mut log.event_name, limits.attribute_value_length_limit, &mut t);
    if let Some(body) = log.body.as_mut() {
        let mut elements_left = limits.attribute_value_element_limit;
        t.values_truncated += limit_value(limits, limits.log_body_length_limit, body, 1, &mut elements_left);
    }
    t
}

/// Limits a resource's attributes, keeping the first occurrence of each
/// `protected` key even past the count limit (see the module doc).
pub fn limit_resource(limits: &AttrLimits, protected: &[&str], resource: &mut Resource) -> Trimmed {
    let mut t = Trimmed::default();
    limit_attributes(limits, &mut resource.attributes, &mut resource.dropped_attributes_count, protected, &mut t);
    t
}

/// Limits the attributes of a metric data point or exemplar, whose labels
/// an exemplar is stored with. The spec exempts metric attributes; these
/// are bounded all the same because they are stored with a session and
/// copied once per exemplar. Like a resource's, they keep the `protected`
/// keys (an exemplar's correlation ID is read from them afterwards). OTLP
/// has no dropped count for them, so the loss is only counted.
pub fn limit_metric_attributes(limits: &AttrLimits, protected: &[&str], attrs: &mut Vec<KeyValue>) -> Trimmed {
    let mut t = Trimmed::default();
    let mut dropped = 0;
    limit_attributes(limits, attrs, &mut dropped, protected, &mut t);
    t
}

/// Limits one attribute collection: drops over-long keys and attributes
/// past the count (but keeps the first of each `protected` key), adds the
/// number dropped to `dropped_count`, then limits each kept value.
fn limit_attributes(limits: &AttrLimits, attrs: &mut Vec<KeyValue>, dropped_count: &mut u32, protected: &[&str], t: &mut Trimmed) {
    let before = attrs.len();
    let mut counted = 0;
    // One flag per protected key: its first occurrence was kept.
    let mut protected_kept = vec![false; protected.len()];
    attrs.retain(|kv| {
        if kv.key.len() > KEY_BYTES_MAX {
            return false;
        }
        let guard = protected.iter().position(|p| *p == kv.key);
        if counted < limits.attribute_count_limit {
            counted += 1;
            if let Some(i) = guard {
                protected_kept[i] = true;
            }
            return true;
        }
        match guard {
            Some(i) if !protected_kept[i] => {
                protected_kept[i] = true;
                true
            }
            _ => false,
        }
    });
    let dropped = (before - attrs.len()) as u64;
    *dropped_count = add_u32(*dropped_count, dropped);
    t.attributes_dropped += dropped;
    for kv in attrs.iter_mut() {
        if let Some(value) = kv.value.as_mut() {
            let mut elements_left = limits.attribute_value_element_limit;
            t.values_truncated += limit_value(limits, limits.attribute_value_length_limit, value, 1, &mut elements_left);
        }
    }
}

/// Limits one value at nesting `depth` (1 for an attribute's own value):
/// strings and bytes cut to `length_max`, arrays and maps deeper than the
/// depth limit emptied, elements past `elements_left` (shared by the whole
/// value) dropped. Returns the number of values cut. Recursion is bounded
/// by the depth limit.
fn limit_value(limits: &AttrLimits, length_max: usize, value: &mut AnyValue, depth: usize, elements_left: &mut usize) -> u64 {
    let nested = matches!(value.value, Some(Value::ArrayValue(_) | Value::KvlistValue(_)));
    if nested && depth > limits.attribute_value_depth_limit {
        value.value = None;
        return 1;
    }
    match value.value.as_mut() {
        Some(Value::StringValue(text)) => u64::from(truncate_chars(text, length_max)),
        Some(Value::BytesValue(bytes)) if bytes.len() > length_max => {
            bytes.truncate(length_max);
            1
        }
        Some(Value::ArrayValue(array)) => {
            let mut cut = u64::from(take_elements(&mut array.values, elements_left));
            for element in &mut array.values {
                cut += limit_value(limits, length_max, element, depth + 1, elements_left);
            }
            cut
        }
        Some(Value::KvlistValue(map)) => {
            let before = map.values.len();
            map.values.retain(|kv| kv.key.len() <= KEY_BYTES_MAX);
            let mut cut = u64::from(map.values.len() < before);
            cut += u64::from(take_elements(&mut map.values, elements_left));
            for kv in &mut map.values {
                if let Some(v) = kv.value.as_mut() {
                    cut += limit_value(limits, length_max, v, depth + 1, elements_left);
                }
            }
            cut
        }
        _ => 0,
    }
}

/// Keeps at most `*elements_left` of `items` and charges them; true if any
/// were dropped. A container's own elements are charged before its
/// children are visited, so an outer level is kept before an inner one.
fn take_elements<T>(items: &mut Vec<T>, elements_left: &mut usize) -> bool {
    let keep = items.len().min(*elements_left);
    *elements_left -= keep;
    keep_first(items, keep) > 0
}

/// Keeps the first `n` items; returns how many were dropped.
fn keep_first<T>(items: &mut Vec<T>, n: usize) -> u64 {
    let dropped = items.len().saturating_sub(n);
    items.truncate(n);
    dropped as u64
}

/// Cuts `text` to `max` characters, counting one when it was cut.
fn cut_text(text: &mut String, max: usize, t: &mut Trimmed) {
    t.values_truncated += u64::from(truncate_chars(text, max));
}

/// Cuts `text` to at most `max_chars` characters (so at a UTF-8 boundary);
/// true if it was longer.
pub fn truncate_chars(text: &mut String, max_chars: usize) -> bool {
    // At most `max_chars` bytes means at most that many characters: the
    // common case costs no scan.
    if text.len() <= max_chars {
        return false;
    }
    match text.char_indices().nth(max_chars) {
        Some((at, _)) => {
            text.truncate(at);
            true
        }
        None => false,
    }
}

/// `dropped_*_count` fields are `u32` in OTLP: saturate rather than wrap.
fn add_u32(count: u32, more: u64) -> u32 {
    u32::try_from(u64::from(count) + more).unwrap_or(u32::MAX)
}

#[cfg(test)]
#[path = "attr_limits_test.rs"]
mod attr_limits_test;
