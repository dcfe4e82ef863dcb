//! Hand-built spans, logs and exemplars for the RCA unit tests (test builds
//! only). Times are milliseconds from zero; span IDs are small integers;
//! trace 1 unless said otherwise.

use super::baseline::{BaselineView, OpBaseline, Percentiles};
use super::model::{RcaExemplar, RcaLog, RcaSpan, SEVERITY_ERROR_MIN};
use crate::model::{SpanId, TraceId};
use crate::query::SpanKindView;

/// One millisecond in nanoseconds.
pub const MS_NS: u64 = 1_000_000;

pub fn ms(n: u64) -> u64 {
    n * MS_NS
}

pub fn trace(n: u8) -> TraceId {
    TraceId([n; 16])
}

pub fn span_id(n: u32) -> SpanId {
    let mut bytes = [0u8; 8];
    bytes[4..].copy_from_slice(&n.to_be_bytes());
    SpanId(bytes)
}

/// An internal span of trace 1.
pub fn sp(service: &str, operation: &str, id: u32, parent: Option<u32>, start_ms: u64, end_ms: u64) -> RcaSpan {
    sp_in(1, service, operation, id, parent, start_ms, end_ms)
}

pub fn sp_in(trace_n: u8, service: &str, operation: &str, id: u32, parent: Option<u32>, start_ms: u64, end_ms: u64) -> RcaSpan {
    RcaSpan {
        service: service.to_owned(),
        operation: operation.to_owned(),
        kind: SpanKindView::Internal,
        trace_id: trace(trace_n),
        span_id: span_id(id),
        parent_id: parent.map(span_id),
        start_ns: ms(start_ms),
        end_ns: ms(end_ms.max(start_ms)),
        is_error: false,
        message: String::new(),
        peer: None,
    }
}

pub fn fail(mut span: RcaSpan, message: &str) -> RcaSpan {
    span.is_error = true;
    span.message = message.to_owned();
    span
}

pub fn kind(mut span: RcaSpan, kind: SpanKindView) -> RcaSpan {
    span.kind = kind;
    span
}

/// An error log of `service` attached to span `span` of trace 1 (none when 0).
pub fn error_log(service: &str, span: u32, at_ms: u64, body: &str) -> RcaLog {
    RcaLog {
        service: service.to_owned(),
        time_ns: ms(at_ms),
        severity: SEVERITY_ERROR_MIN,
        body: body.to_owned(),
        trace_id: (span != 0).then(|| trace(1)),
        span_id: (span != 0).then(|| span_id(span)),
    }
}

pub fn exemplar(service: &str, metric: &str, span: u32, at_ms: u64, value: f64) -> RcaExemplar {
    RcaExemplar {
        service: service.to_owned(),
        metric: metric.to_owned(),
        value,
        time_ns: ms(at_ms),
        trace_id: Some(trace(1)),
        span_id: Some(span_id(span)),
    }
}

/// Percentiles with plenty of samples: p90 = 1.2 × p50, p99 = 1.5 × p50.
pub fn pct(p50_ms: f64) -> Percentiles {
    Percentiles { p50_ms, p90_ms: p50_ms * 1.2, p99_ms: p50_ms * 1.5, samples: 1_000 }
}

/// A view from (service, operation, duration p50, self p50) rows.
pub fn view(rows: &[(&str, &str, f64, f64)]) -> BaselineView {
    rows.iter().map(|(s, o, d, own)| (((*s).to_owned(), (*o).to_owned()), OpBaseline { duration: pct(*d), self_time: pct(*own) })).collect()
}
