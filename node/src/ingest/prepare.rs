//! Step 1 of ingest (CPU only, on a blocking thread): walk an OTLP request,
//! validate IDs, migrate semantic conventions, find each signal's explicit
//! correlation-ID candidate, apply the OTel attribute limits
//! ([`super::attr_limits`]) and the attribute cardinality limits
//! ([`super::limit`]) and encode each span/log record compactly.
//!
//! Order matters: a resource is limited first (its attributes are read
//! once per record, so their number must be bounded before that; the keys
//! read are protected). A span or log record is limited after its
//! correlation-ID candidate and tenant were read from its full attributes
//! (so a limit never changes which session it joins), and before the
//! cardinality limiter sees it (no quota spent on dropped values), before
//! it is encoded and before its memory cost is computed.
//!
//! Pure except for the limiter it is handed, whose `admit` may block for a
//! bounded time waiting for quota; a value it cannot decide refuses the
//! whole batch (retryable `Overloaded`), before anything is written.

use std::sync::Arc;

use ollystack_proto::store::{Label, StoredExemplar};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{exemplar, metric::Data, Exemplar};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use super::attr_limits::{self, AttrLimits, Trimmed};
use super::limit::{limit_attributes, AttributeLimiter};
use super::IngestError;
use crate::correlate::{self, Candidate, CorrelationSettings};
use crate::model::{TenantId, TraceId};
use crate::session::state::EXEMPLAR_COST_BYTES;
use crate::session::{LogInput, SpanInput};

/// Service name used when a resource has none (as the OTel SDKs do).
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// The signature every `prepare_*` shares, so the pipeline takes any of them.
pub type PrepareFn<R> = fn(&CorrelationSettings, &AttrLimits, &dyn AttributeLimiter, R) -> Result<PreparedBatch, IngestError>;

/// The signal carried by a prepared item.
#[derive(Debug)]
pub enum Signal {
    Span(SpanInput),
    Log(LogInput),
    Exemplar(StoredExemplar),
}

impl Signal {
    /// The service that sent it (`service.name` of its resource).
    pub fn service(&self) -> &str {
        match self {
            Signal::Span(s) => &s.service,
            Signal::Log(l) => &l.service,
            Signal::Exemplar(e) => &e.service_name,
        }
    }
}

/// One signal, ready for correlation-ID resolution.
#[derive(Debug)]
pub struct Prepared {
    pub tenant: TenantId,
    pub trace: Option<TraceId>,
    pub candidate: Option<Candidate>,
    pub signal: Signal,
}

impl Prepared {
    pub fn cost_bytes(&self) -> u64 {
        match &self.signal {
            Signal::Span(s) => s.cost_bytes(),
            Signal::Log(l) => l.cost_bytes(),
            Signal::Exemplar(_) => EXEMPLAR_COST_BYTES,
        }
    }
}

/// The result of preparing one request.
#[derive(Debug, Default)]
pub struct PreparedBatch {
    pub items: Vec<Prepared>,
    /// Items refused individually (OTLP partial success).
    pub rejected: u64,
    /// First reason for a refusal, for the partial-success message.
    pub reject_message: String,
    /// Deprecated attribute names migrated.
    pub deprecated: Vec<&'static str>,
    /// Metric data points seen (exemplars are taken from them).
    pub data_points: u64,
    /// What the attribute limits removed from spans, log records and
    /// resources (for `/metrics`).
    pub trimmed_spans: Trimmed,
    pub trimmed_logs: Trimmed,
    pub trimmed_resources: Trimmed,
    /// Exemplar labels (data point and filtered attributes).
    pub trimmed_exemplars: Trimmed,
}

impl PreparedBatch {
    /// At most how many sessions the batch can touch: one per distinct
    /// explicit ID, one per distinct trace, one per signal with neither
    /// (each of those gets an ID of its own).
    pub fn sessions_at_most(&self) -> usize {
        let mut ids = std::collections::HashSet::new();
        let mut traces = std::collections::HashSet::new();
        let mut lone = 0;
        for item in &self.items {
            match (&item.candidate, item.trace) {
                (Some(c), _) => {
                    ids.insert((&item.tenant, c.raw.as_str()));
                }
                (None, Some(t)) => {
                    traces.insert((&item.tenant, t));
                }
                (None, None) => lone += 1,
            }
        }
        ids.len() + traces.len() + lone
    }

    fn reject(&mut self, why: &str) {
        self.rejected += 1;
        if self.reject_message.is_empty() {
            self.reject_message = why.to_owned();
        }
    }

    pub fn cost_bytes(&self) -> u64 {
        self.items.iter().map(Prepared::cost_bytes).sum()
    }
}

/// The resource attribute keys ingest reads: kept by the resource's count
/// limit wherever they are (see [`attr_limits`]).
fn read_keys(s: &CorrelationSettings) -> Vec<&str> {
    let mut keys = vec!["service.name", s.attribute.as_str(), s.tenant_attribute.as_str()];
    keys.extend(s.header_attributes.iter().map(String::as_str));
    keys.extend(s.baggage_attributes.iter().map(String::as_str));
    keys
}

/// A resource's attributes, limited.
fn limited_resource(limits: &AttrLimits, read_keys: &[&str], resource: Option<Resource>, trimmed: &mut Trimmed) -> Vec<KeyValue> {
    let mut resource = resource.unwrap_or_default();
    trimmed.add(attr_limits::limit_resource(limits, read_keys, &mut resource));
    resource.attributes
}

fn service_name(resource_attrs: &[KeyValue]) -> Arc<str> {
    resource_attrs
        .iter()
        .find(|kv| kv.key == "service.name")
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) if !s.is_empty() => Some(Arc::from(s.as_str())),
            _ => None,
        })
        .unwrap_or_else(|| Arc::from(UNKNOWN_SERVICE))
}

pub fn prepare_traces(
    s: &CorrelationSettings,
    limits: &AttrLimits,
    limiter: &dyn AttributeLimiter,
    request: ExportTraceServiceRequest,
) -> Result<PreparedBatch, IngestError> {
    let mut out = PreparedBatch::default();
    let read_keys = read_keys(s);
    for rs in request.resource_spans {
        let resource_attrs = limited_resource(limits, &read_keys, rs.resource, &mut out.trimmed_resources);
        let service = service_name(&resource_attrs);
        for ss in rs.scope_spans {
            for mut span in ss.spans {
                let Some(trace) = TraceId::from_bytes(&span.trace_id) else {
                    out.reject("span with an invalid trace_id (must be 16 bytes, not all zero)");
                    continue;
                };
                if crate::model::SpanId::from_bytes(&span.span_id).is_none() {
                    out.reject("span with an invalid span_id (must be 8 bytes, not all zero)");
                    continue;
                }
                out.deprecated.extend(correlate::migrate_attributes(&mut span.attributes));
                let candidate = correlate::span_candidate(s, &resource_attrs, &span.attributes);
                let tenant = correlate::tenant_of(s, &resource_attrs, &span.attributes);
                out.trimmed_spans.add(attr_limits::limit_span(limits, &mut span));
                limit_attributes(limiter, &mut span.attributes)?;
                let encoded = span.encode_to_vec().into_boxed_slice();
                // IDs were checked just above, so this cannot fail.
                let Some(input) = SpanInput::from_span(service.clone(), &span, encoded) else { continue };
                out.items.push(Prepared { tenant, trace: Some(trace), candidate, signal: Signal::Span(input) });
            }
        }
    }
    Ok(out)
}

pub fn prepare_logs(
    s: &CorrelationSettings,
    limits: &AttrLimits,
    limiter: &dyn AttributeLimiter,
    request: ExportLogsServiceRequest,
) -> Result<PreparedBatch, IngestError> {
    let mut out = PreparedBatch::default();
    let read_keys = read_keys(s);
    for rl in request.resource_logs {
        let resource_attrs = limited_resource(limits, &read_keys, rl.resource, &mut out.trimmed_resources);
        let service = service_name(&resource_attrs);
        for sl in rl.scope_logs {
            for mut log in sl.log_records {
                out.deprecated.extend(correlate::migrate_attributes(&mut log.attributes));
                // A log may have no trace; a malformed trace ID is treated as none.
                let trace = TraceId::from_bytes(&log.trace_id);
                let candidate = correlate::log_candidate(s, &resource_attrs, &log.attributes, log.body.as_ref());
                let tenant = correlate::tenant_of(s, &resource_attrs, &log.attributes);
                out.trimmed_logs.add(attr_limits::limit_log(limits, &mut log));
                limit_attributes(limiter, &mut log.attributes)?;
                let encoded = log.encode_to_vec().into_boxed_slice();
                let input = LogInput::from_log(service.clone(), &log, encoded);
                out.items.push(Prepared { tenant, trace, candidate, signal: Signal::Log(input) });
            }
        }
    }
    Ok(out)
}

/// Exemplar labels are not cardinality-limited (see [`super::limit`]);
/// `_limiter` is here for the shared [`PrepareFn`] signature. Resources are
/// limited as for the other signals (they are read once per exemplar).
pub fn prepare_metrics(
    s: &CorrelationSettings,
    limits: &AttrLimits,
    _limiter: &dyn AttributeLimiter,
    request: ExportMetricsServiceRequest,
) -> Result<PreparedBatch, IngestError> {
    let mut out = PreparedBatch::default();
    let read_keys = read_keys(s);
    for rm in request.resource_metrics {
        let resource_attrs = limited_resource(limits, &read_keys, rm.resource, &mut out.trimmed_resources);
        let service = service_name(&resource_attrs);
        for sm in rm.scope_metrics {
            for mut metric in sm.metrics {
                out.trimmed_exemplars.add(limit_exemplar_labels(limits, &read_keys, &mut metric.data));
                let points: Vec<(&[KeyValue], &[Exemplar])> = match &metric.data {
                    Some(Data::Gauge(g)) => g.data_points.iter().map(|p| (&p.attributes[..], &p.exemplars[..])).collect(),
                    Some(Data::Sum(m)) => m.data_points.iter().map(|p| (&p.attributes[..], &p.exemplars[..])).collect(),
                    Some(Data::Histogram(h)) => h.data_points.iter().map(|p| (&p.attributes[..], &p.exemplars[..])).collect(),
                    Some(Data::ExponentialHistogram(h)) => h.data_points.iter().map(|p| (&p.attributes[..], &p.exemplars[..])).collect(),
                    Some(Data::Summary(m)) => m.data_points.iter().map(|p| (&p.attributes[..], &[][..])).collect(),
                    None => Vec::new(),
                };
                out.data_points += points.len() as u64;
                for (attrs, exemplars) in points {
                    for ex in exemplars {
                        if let Some(p) = prepare_exemplar(s, &resource_attrs, &service, &metric.name, attrs, ex) {
                            out.items.push(p);
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Limits the attributes of every data point that has exemplars, and of
/// its exemplars, before they are copied into each exemplar's labels.
fn limit_exemplar_labels(limits: &AttrLimits, read_keys: &[&str], data: &mut Option<Data>) -> Trimmed {
    let mut t = Trimmed::default();
    let mut limit = |attrs: &mut Vec<KeyValue>, exemplars: &mut [Exemplar]| {
        if exemplars.is_empty() {
            return;
        }
        t.add(attr_limits::limit_metric_attributes(limits, read_keys, attrs));
        for ex in exemplars {
            t.add(attr_limits::limit_metric_attributes(limits, read_keys, &mut ex.filtered_attributes));
        }
    };
    match data {
        Some(Data::Gauge(g)) => g.data_points.iter_mut().for_each(|p| limit(&mut p.attributes, &mut p.exemplars)),
        Some(Data::Sum(m)) => m.data_points.iter_mut().for_each(|p| limit(&mut p.attributes, &mut p.exemplars)),
        Some(Data::Histogram(h)) => h.data_points.iter_mut().for_each(|p| limit(&mut p.attributes, &mut p.exemplars)),
        Some(Data::ExponentialHistogram(h)) => h.data_points.iter_mut().for_each(|p| limit(&mut p.attributes, &mut p.exemplars)),
        // Summaries carry no exemplars.
        Some(Data::Summary(_)) | None => {}
    }
    t
}

/// An exemplar joins a session when it names an ID or a trace; otherwise it
/// correlates nothing and is not kept.
fn prepare_exemplar(
    s: &CorrelationSettings,
    resource_attrs: &[KeyValue],
    service: &Arc<str>,
    metric: &str,
    point_attrs: &[KeyValue],
    ex: &Exemplar,
) -> Option<Prepared> {
    let mut labels_kv: Vec<KeyValue> = point_attrs.to_vec();
    labels_kv.extend(ex.filtered_attributes.iter().cloned());
    let candidate = correlate::exemplar_candidate(s, resource_attrs, &labels_kv);
    let trace = TraceId::from_bytes(&ex.trace_id);
    if candidate.is_none() && trace.is_none() {
        return None;
    }
    let tenant = correlate::tenant_of(s, resource_attrs, &labels_kv);
    let mut labels: Vec<Label> =
        labels_kv.iter().map(|kv| Label { key: kv.key.clone(), value: any_to_string(kv.value.as_ref()) }).collect();
    labels.sort_by(|a, b| a.key.cmp(&b.key));
    labels.dedup_by(|a, b| a.key == b.key);
    let value = match ex.value {
        Some(exemplar::Value::AsDouble(d)) => d,
        Some(exemplar::Value::AsInt(i)) => i as f64,
        None => 0.0,
    };
    let stored = StoredExemplar {
        service_name: service.to_string(),
        metric_name: metric.to_owned(),
        time_unix_nano: ex.time_unix_nano,
        value,
        trace_id: ex.trace_id.clone(),
        span_id: ex.span_id.clone(),
        labels,
    };
    Some(Prepared { tenant, trace, candidate, signal: Signal::Exemplar(stored) })
}

/// Flattens an attribute value for exemplar labels.
pub fn any_to_string(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::BytesValue(b)) => hex::encode(b),
        Some(Value::ArrayValue(a)) => format!("[{}]", a.values.iter().map(|v| any_to_string(Some(v))).collect::<Vec<_>>().join(",")),
        Some(Value::KvlistValue(kv)) => format!(
            "{{{}}}",
            kv.values.iter().map(|kv| format!("{}={}", kv.key, any_to_string(kv.value.as_ref()))).collect::<Vec<_>>().join(",")
        ),
        // Dictionary-encoded strings (profiles signal) carry no text here.
        Some(Value::StringValueStrindex(i)) => format!("strindex:{i}"),
        None => String::new(),
    }
}
