//! Latency baselines per (tenant, service, operation), learned from every
//! finished session segment: HDR histograms of span duration and self time
//! in microseconds (2 significant figures: under 1% error).
//!
//! Bounded: at most `keys_max` keys and `bytes_max` bytes of histogram
//! counts; beyond either, the least recently updated key is dropped. A
//! node restart starts from empty baselines (they are not persisted).
//!
//! An analysis reads a [`BaselineView`]: plain percentiles of the keys it
//! needs, taken under the lock once, so the algorithms stay pure.

use std::collections::{BTreeMap, HashMap};

use hdrhistogram::Histogram;
use opentelemetry_proto::tonic::trace::v1::Span;
use parking_lot::Mutex;
use prost::Message;
use serde::Serialize;

use super::model::{rca_span, RcaSpan};
use super::tree::Tree;
use crate::model::TenantId;

/// Default bound on keys.
pub const KEYS_MAX_DEFAULT: usize = 10_000;
/// Default bound on histogram memory (a key over millisecond latencies
/// takes about 11 KiB: two histograms of ~1,400 `u32` counts).
pub const BYTES_MAX_DEFAULT: usize = 64 << 20;
/// Significant figures kept by the histograms.
const SIGFIG: u8 = 2;
/// Largest value recorded (1 hour in µs): longer spans are clamped, which
/// bounds each histogram's size.
const VALUE_US_MAX: u64 = 3_600_000_000;

/// Percentiles of one distribution, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub samples: u64,
}

/// What is known about one (service, operation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpBaseline {
    pub duration: Percentiles,
    pub self_time: Percentiles,
}

/// Baselines of the operations one analysis needs, keyed by (service, operation).
pub type BaselineView = HashMap<(String, String), OpBaseline>;

/// One span's contribution: its key and its duration and self time in µs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub service: String,
    pub operation: String,
    pub duration_us: u64,
    pub self_us: u64,
}

/// The samples of one segment's spans (self time from that segment's tree).
pub fn samples(spans: &[RcaSpan]) -> Vec<Sample> {
    let tree = Tree::new(spans);
    spans
        .iter()
        .enumerate()
        .map(|(i, s)| Sample {
            service: s.service.clone(),
            operation: s.operation.clone(),
            duration_us: s.duration_ns() / 1_000,
            self_us: tree.self_ns(i) / 1_000,
        })
        .collect()
}

/// The fields of an OTLP `Span` a baseline needs. Decoding into it skips
/// attributes, events and links without allocating them: learning costs a
/// fraction of a full decode per finished span.
#[derive(Clone, PartialEq, prost::Message)]
struct SpanTiming {
    #[prost(bytes = "vec", tag = "1")]
    trace_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    span_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    parent_span_id: Vec<u8>,
    #[prost(string, tag = "5")]
    name: String,
    #[prost(fixed64, tag = "7")]
    start_time_unix_nano: u64,
    #[prost(fixed64, tag = "8")]
    end_time_unix_nano: u64,
}

impl SpanTiming {
    fn into_rca(self, service: &str) -> Option<RcaSpan> {
        let span = Span {
            trace_id: self.trace_id,
            span_id: self.span_id,
            parent_span_id: self.parent_span_id,
            name: self.name,
            start_time_unix_nano: self.start_time_unix_nano,
            end_time_unix_nano: self.end_time_unix_nano,
            ..Default::default()
        };
        rca_span(service, &span)
    }
}

type Key = (TenantId, String, String);

struct Entry {
    duration: Histogram<u32>,
    self_time: Histogram<u32>,
    /// Tick of the last update (key of `Inner::by_use`).
    used: u64,
    bytes: usize,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
    /// Update tick → key: the least recently updated key comes first.
    by_use: BTreeMap<u64, Key>,
    tick: u64,
    bytes: usize,
}

/// The node's baselines. Thread-safe; each call holds the lock briefly.
pub struct Baselines {
    keys_max: usize,
    bytes_max: usize,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Baselines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.lock();
        f.debug_struct("Baselines").field("keys", &inner.entries.len()).field("bytes", &inner.bytes).finish()
    }
}

impl Default for Baselines {
    fn default() -> Self {
        Self::new(KEYS_MAX_DEFAULT, BYTES_MAX_DEFAULT)
    }
}

impl Baselines {
    pub fn new(keys_max: usize, bytes_max: usize) -> Self {
        Self { keys_max: keys_max.max(1), bytes_max, inner: Mutex::new(Inner::default()) }
    }

    /// Learns from a finished session's spans, given as (service, encoded
    /// OTLP span) pairs read where they are held, decoded here once
    /// (undecodable spans are skipped, as queries skip them).
    pub fn observe_session<'a>(&self, tenant: &TenantId, spans: impl IntoIterator<Item = (&'a str, &'a [u8])>) {
        let decoded: Vec<RcaSpan> =
            spans.into_iter().filter_map(|(service, span)| SpanTiming::decode(span).ok().and_then(|t| t.into_rca(service))).collect();
        self.observe(tenant, &samples(&decoded));
    }

    pub fn observe(&self, tenant: &TenantId, samples: &[Sample]) {
        if samples.is_empty() {
            return;
        }
        let mut inner = self.inner.lock();
        for sample in samples {
            inner.record(tenant, sample);
        }
        while inner.entries.len() > self.keys_max || (inner.bytes > self.bytes_max && inner.entries.len() > 1) {
            inner.evict_oldest();
        }
    }

    /// Number of keys held.
    pub fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Percentiles of the given (service, operation)s, leaving out
    /// `exclude` (the analysed session's own finished segments, learned
    /// when they closed: a request must not be compared with itself).
    /// Keys without samples are absent.
    pub fn view<'k>(&self, tenant: &TenantId, keys: impl IntoIterator<Item = (&'k str, &'k str)>, exclude: &[Sample]) -> BaselineView {
        let mut excluded: HashMap<(&str, &str), Vec<&Sample>> = HashMap::new();
        for s in exclude {
            excluded.entry((s.service.as_str(), s.operation.as_str())).or_default().push(s);
        }
        // A session repeats keys (one per span): look each up once.
        let keys: std::collections::BTreeSet<(&str, &str)> = keys.into_iter().collect();
        let inner = self.inner.lock();
        let mut view = BaselineView::new();
        for (service, operation) in keys {
            let key = (tenant.clone(), service.to_owned(), operation.to_owned());
            let Some(entry) = inner.entries.get(&key) else { continue };
            let own = excluded.get(&(service, operation)).map(Vec::as_slice).unwrap_or_default();
            let duration = percentiles(&without(&entry.duration, own.iter().map(|s| s.duration_us)));
            let self_time = percentiles(&without(&entry.self_time, own.iter().map(|s| s.self_us)));
            if duration.samples > 0 {
                view.insert((key.1, key.2), OpBaseline { duration, self_time });
            }
        }
        view
    }
}

impl Inner {
    fn record(&mut self, tenant: &TenantId, sample: &Sample) {
        self.tick += 1;
        let tick = self.tick;
        let key = (tenant.clone(), sample.service.clone(), sample.operation.clone());
        let entry = match self.entries.get_mut(&key) {
            Some(entry) => {
                self.by_use.remove(&entry.used);
                entry
            }
            None => self.entries.entry(key.clone()).or_insert(Entry { duration: empty(), self_time: empty(), used: tick, bytes: 0 }),
        };
        record(&mut entry.duration, sample.duration_us);
        record(&mut entry.self_time, sample.self_us);
        entry.used = tick;
        let bytes = (entry.duration.distinct_values() + entry.self_time.distinct_values()) * std::mem::size_of::<u32>();
        self.bytes = self.bytes + bytes - entry.bytes;
        entry.bytes = bytes;
        self.by_use.insert(tick, key);
    }

    fn evict_oldest(&mut self) {
        let Some((_, key)) = self.by_use.pop_first() else { return };
        if let Some(entry) = self.entries.remove(&key) {
            self.bytes -= entry.bytes;
        }
    }
}

fn empty() -> Histogram<u32> {
    // Provably safe: creation fails only for more than 5 significant figures.
    #[allow(clippy::expect_used)]
    Histogram::new(SIGFIG).expect("SIGFIG is within hdrhistogram's 0..=5")
}

/// Records a value (clamped to [`VALUE_US_MAX`]), growing the histogram as
/// needed. A count at `u32::MAX` stays there (saturates).
fn record(h: &mut Histogram<u32>, value_us: u64) {
    let v = value_us.min(VALUE_US_MAX);
    if h.record(v).is_err() {
        h.saturating_record(v);
    }
}

/// `base` minus the given values; `base` itself when they are not all in
/// it (learned before a restart, or evicted meanwhile).
fn without(base: &Histogram<u32>, values: impl Iterator<Item = u64>) -> Histogram<u32> {
    let mut own = Histogram::<u32>::new_from(base);
    let mut any = false;
    for v in values {
        record(&mut own, v);
        any = true;
    }
    let mut out = base.clone();
    if any && out.subtract(&own).is_err() {
        return base.clone();
    }
    out
}

fn percentiles(h: &Histogram<u32>) -> Percentiles {
    let ms = |q: f64| if h.is_empty() { 0.0 } else { h.value_at_quantile(q) as f64 / 1_000.0 };
    Percentiles { p50_ms: ms(0.5), p90_ms: ms(0.9), p99_ms: ms(0.99), samples: h.len() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(service: &str, operation: &str, duration_us: u64, self_us: u64) -> Sample {
        Sample { service: service.into(), operation: operation.into(), duration_us, self_us }
    }

    fn tenant() -> TenantId {
        TenantId::default_tenant()
    }

    #[test]
    fn percentiles_come_from_what_was_observed() {
        let b = Baselines::default();
        let mut batch: Vec<Sample> = (1..=100).map(|i| sample("db", "query", i * 1_000, i * 100)).collect();
        batch.push(sample("web", "GET /", 5_000, 5_000));
        b.observe(&tenant(), &batch);
        let view = b.view(&tenant(), [("db", "query"), ("web", "GET /"), ("none", "x")], &[]);
        let db = view[&("db".to_owned(), "query".to_owned())];
        assert_eq!(db.duration.samples, 100);
        assert!((db.duration.p50_ms - 50.0).abs() < 0.5, "{db:?}");
        assert!((db.duration.p90_ms - 90.0).abs() < 1.0, "{db:?}");
        assert!((db.duration.p99_ms - 99.0).abs() < 1.0, "{db:?}");
        assert!((db.self_time.p50_ms - 5.0).abs() < 0.1, "{db:?}");
        assert_eq!(view.len(), 2, "unknown keys are absent");
    }

    #[test]
    fn tenants_do_not_share_baselines() {
        let b = Baselines::default();
        b.observe(&TenantId::from_trusted("a"), &[sample("s", "o", 1_000, 1_000)]);
        assert!(b.view(&TenantId::from_trusted("b"), [("s", "o")], &[]).is_empty());
    }

    #[test]
    fn the_analysed_session_is_left_out() {
        let b = Baselines::default();
        let normal: Vec<Sample> = (0..20).map(|_| sample("s", "o", 10_000, 10_000)).collect();
        let outlier = sample("s", "o", 900_000, 900_000);
        b.observe(&tenant(), &normal);
        b.observe(&tenant(), std::slice::from_ref(&outlier));
        let with = b.view(&tenant(), [("s", "o")], &[])[&("s".to_owned(), "o".to_owned())];
        assert!(with.duration.p99_ms > 800.0, "the outlier is the p99 of 21 samples");
        let without = b.view(&tenant(), [("s", "o")], &[outlier])[&("s".to_owned(), "o".to_owned())];
        assert_eq!(without.duration.samples, 20);
        assert!(without.duration.p99_ms < 11.0, "{without:?}");
        // Values never learned (e.g. before a restart) leave the baseline as is.
        let unknown = b.view(&tenant(), [("s", "o")], &[sample("s", "o", 5, 5)])[&("s".to_owned(), "o".to_owned())];
        assert_eq!(unknown.duration.samples, 21);
    }

    #[test]
    fn keys_and_bytes_are_bounded_least_recently_updated_first() {
        let b = Baselines::new(3, usize::MAX);
        for op in ["a", "b", "c"] {
            b.observe(&tenant(), &[sample("s", op, 1_000, 1_000)]);
        }
        b.observe(&tenant(), &[sample("s", "a", 1_000, 1_000)]);
        b.observe(&tenant(), &[sample("s", "d", 1_000, 1_000)]);
        let view = b.view(&tenant(), [("s", "a"), ("s", "b"), ("s", "c"), ("s", "d")], &[]);
        let mut kept: Vec<&str> = view.keys().map(|k| k.1.as_str()).collect();
        kept.sort();
        assert_eq!(kept, ["a", "c", "d"], "b was the least recently updated");

        let small = Baselines::new(1_000, 20_000);
        for i in 0..10 {
            small.observe(&tenant(), &[sample("s", &format!("op{i}"), 100_000, 100_000)]);
        }
        let inner = small.inner.lock();
        assert!(inner.bytes <= 20_000 && !inner.entries.is_empty(), "{} bytes, {} keys", inner.bytes, inner.entries.len());
    }

    #[test]
    fn observe_session_decodes_stored_spans_and_computes_self_time() {
        use crate::query::fixtures::{span, stored_span, MS, T0};
        let spans = [
            stored_span("web", &span(1, 1, None, "root", T0, T0 + 100 * MS)),
            stored_span("db", &span(1, 2, Some(1), "q", T0, T0 + 60 * MS)),
        ];
        let b = Baselines::default();
        b.observe_session(&tenant(), spans.iter().map(|s| (s.service_name.as_str(), s.span.as_slice())));
        let view = b.view(&tenant(), [("web", "root")], &[]);
        let root = view[&("web".to_owned(), "root".to_owned())];
        assert!((root.duration.p50_ms - 100.0).abs() < 1.0 && (root.self_time.p50_ms - 40.0).abs() < 0.5, "{root:?}");
    }
}
