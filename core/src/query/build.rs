//! The full answer about one session (`correlate`), the spans of one trace
//! (`trace_view`) and exemplar hits (`exemplars_view`): pure functions of
//! the stored segments.

use std::collections::BTreeSet;

use super::merge::{merge, Merged};
use super::page::{is_truncated, next_offset};
use super::signal::{is_error_log, log_time, log_view, metric_view, sort_by_time, span_view, Timed};
use super::time::{format_rfc3339_nanos, nanos_to_ms};
use super::timeline;
use super::view::{
    CorrelateResponse, ErrorView, ExemplarView, ExemplarsResponse, LogView, PageView, SignalKind, SpanView, StatusView, Summary, TimeRange,
    TraceResponse,
};
use super::{ExemplarHit, PagedSession, SessionData};
use crate::model::TraceId;

/// Everything about one session: signals de-duplicated across segments
/// (live copies preferred), ordered by time, with summary, services, errors
/// and timeline.
pub fn correlate(data: &SessionData) -> CorrelateResponse {
    let merged = merge(data);
    let mut spans: Vec<Timed<SpanView>> = merged.spans.iter().map(span_view).collect();
    let mut logs: Vec<Timed<LogView>> = merged.logs.iter().map(log_view).collect();
    let mut metrics: Vec<_> = merged.exemplars.iter().map(metric_view).collect();
    sort_by_time(&mut spans);
    sort_by_time(&mut logs);
    sort_by_time(&mut metrics);

    let bounds = time_bounds(&merged);
    let services = services(&merged);
    let errors = errors(&spans, &logs);
    let summary = Summary {
        total_spans: spans.len() as u64,
        total_logs: logs.len() as u64,
        total_metrics: metrics.len() as u64,
        error_count: errors.len() as u64,
        service_count: services.len() as u64,
        duration_ms: bounds.map_or(0.0, |(start, end)| nanos_to_ms(end - start)),
    };
    let timeline = timeline::entries(&spans, &logs, &metrics);
    CorrelateResponse {
        correlation_id: data.id.clone(),
        live: merged.live,
        partial: data.partial.is_some(),
        partial_reason: data.partial.clone(),
        time_range: bounds.map(|(start, end)| TimeRange { start: format_rfc3339_nanos(start), end: format_rfc3339_nanos(end) }),
        summary,
        traces: spans.into_iter().map(|s| s.view).collect(),
        logs: logs.into_iter().map(|l| l.view).collect(),
        metrics: metrics.into_iter().map(|m| m.view).collect(),
        services,
        errors,
        timeline,
        skipped_records: merged.skipped_records,
        truncated: None,
        page: None,
    }
}

/// [`correlate`] over one page of a session. The answer says which part it
/// holds (`page`, with `next` from `next_link(offset)` when more follows);
/// when records were left out, `summary`'s totals are the whole session's.
pub fn correlate_page(paged: &PagedSession, next_link: impl Fn(u64) -> String) -> CorrelateResponse {
    let mut answer = correlate(&paged.data);
    let truncated = is_truncated(paged.page, paged.total);
    if truncated {
        let summary = &mut answer.summary;
        summary.total_spans = summary.total_spans.max(paged.total.spans);
        summary.total_logs = summary.total_logs.max(paged.total.logs);
        summary.total_metrics = summary.total_metrics.max(paged.total.exemplars);
    }
    let mut page = page_view(paged, next_link);
    if !truncated {
        // The whole session is in the answer: its counts are exact, without
        // the copies of a record two nodes (or a live and an archived
        // segment) held at once, so every node answers the same.
        page.session_spans = answer.summary.total_spans;
        page.session_logs = answer.summary.total_logs;
        page.session_metrics = answer.summary.total_metrics;
    }
    answer.truncated = Some(truncated);
    answer.page = Some(page);
    answer
}

/// What a page answer says about its page.
pub fn page_view(paged: &PagedSession, next_link: impl Fn(u64) -> String) -> PageView {
    PageView {
        offset: paged.page.offset,
        limit: paged.page.limit,
        session_spans: paged.total.spans,
        session_logs: paged.total.logs,
        session_metrics: paged.total.exemplars,
        next: next_offset(paged.page, paged.total).map(next_link),
    }
}

/// The spans of one trace within a session, by start time. Empty when the
/// session holds none of its spans (e.g. only its logs).
pub fn trace_view(trace_id: TraceId, data: &SessionData) -> TraceResponse {
    let merged = merge(data);
    let mut spans: Vec<Timed<SpanView>> =
        merged.spans.iter().filter(|s| s.span.trace_id.as_slice() == trace_id.0.as_slice()).map(span_view).collect();
    sort_by_time(&mut spans);
    TraceResponse {
        correlation_id: data.id.clone(),
        trace_id: trace_id.to_hex(),
        live: merged.live,
        spans: spans.into_iter().map(|s| s.view).collect(),
        truncated: None,
        page: None,
    }
}

/// Exemplar hits of one metric, in the order the backend returned them.
pub fn exemplars_view(metric_name: &str, hits: &[ExemplarHit]) -> ExemplarsResponse {
    let exemplars = hits
        .iter()
        .map(|hit| ExemplarView { correlation_id: hit.correlation_id.clone(), exemplar: metric_view(&hit.exemplar).view })
        .collect();
    ExemplarsResponse { metric_name: metric_name.to_owned(), exemplars }
}

/// Earliest and latest event time over all signals (span start..end, log
/// time, exemplar time). Unset (zero) times are ignored so one record
/// without a timestamp does not stretch the range back to 1970.
fn time_bounds(merged: &Merged) -> Option<(u64, u64)> {
    let span_times = merged.spans.iter().flat_map(|s| [s.span.start_time_unix_nano, s.span.end_time_unix_nano]);
    let log_times = merged.logs.iter().map(|l| log_time(l.log.time_unix_nano, l.log.observed_time_unix_nano));
    let exemplar_times = merged.exemplars.iter().map(|e| e.time_unix_nano);
    span_times.chain(log_times).chain(exemplar_times).filter(|&t| t != 0).fold(None, |acc, t| match acc {
        None => Some((t, t)),
        Some((start, end)) => Some((start.min(t), end.max(t))),
    })
}

/// Distinct non-empty service names of every signal, sorted.
fn services(merged: &Merged) -> Vec<String> {
    let names = merged
        .spans
        .iter()
        .map(|s| s.service_name.as_str())
        .chain(merged.logs.iter().map(|l| l.service_name.as_str()))
        .chain(merged.exemplars.iter().map(|e| e.service_name.as_str()))
        .filter(|name| !name.is_empty());
    names.collect::<BTreeSet<_>>().into_iter().map(str::to_owned).collect()
}

/// Failed spans and error logs, merged by time (spans first on ties).
fn errors(spans: &[Timed<SpanView>], logs: &[Timed<LogView>]) -> Vec<ErrorView> {
    let span_errors = spans.iter().filter(|s| s.view.status_code == StatusView::Error).map(|s| {
        let message = if s.view.status_message.is_empty() { &s.view.span_name } else { &s.view.status_message };
        let error = ErrorView {
            timestamp: s.view.timestamp.clone(),
            kind: SignalKind::Span,
            service: s.view.service_name.clone(),
            message: message.clone(),
            span_id: s.view.span_id.clone(),
            trace_id: s.view.trace_id.clone(),
        };
        (s.unix_nano, error)
    });
    let log_errors = logs.iter().filter(|l| is_error_log(&l.view)).map(|l| {
        let error = ErrorView {
            timestamp: l.view.timestamp.clone(),
            kind: SignalKind::Log,
            service: l.view.service_name.clone(),
            message: l.view.body.clone(),
            span_id: l.view.span_id.clone(),
            trace_id: l.view.trace_id.clone(),
        };
        (l.unix_nano, error)
    });
    let mut all: Vec<(u64, ErrorView)> = span_errors.chain(log_errors).collect();
    all.sort_by_key(|(unix_nano, error)| (*unix_nano, error.kind));
    all.into_iter().map(|(_, error)| error).collect()
}

#[cfg(test)]
#[path = "build_test.rs"]
mod tests;
