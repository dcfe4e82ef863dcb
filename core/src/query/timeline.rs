//! The timeline: every span, log and exemplar of a session as one list,
//! ordered by event time, then by kind (span, log, metric).

use super::signal::{is_error_log, log_level, Timed};
use super::time::nanos_to_ms;
use super::view::{CorrelateResponse, LogView, MetricView, SignalKind, SpanView, StatusView, TimelineEntry, TimelineResponse};

/// Longest description, in characters (log bodies can be large).
pub const DESCRIPTION_CHARS_MAX: usize = 200;

/// `GET /api/v1/correlate/{id}/timeline`, taken from a full answer.
pub fn timeline(resp: CorrelateResponse) -> TimelineResponse {
    TimelineResponse {
        correlation_id: resp.correlation_id,
        live: resp.live,
        partial: resp.partial,
        partial_reason: resp.partial_reason,
        timeline: resp.timeline,
        truncated: resp.truncated,
        page: resp.page,
    }
}

/// Timeline entries of already-built views. Ties in time are broken by kind
/// and then by input order, so the answer is deterministic.
pub fn entries(spans: &[Timed<SpanView>], logs: &[Timed<LogView>], metrics: &[Timed<MetricView>]) -> Vec<TimelineEntry> {
    let mut keyed: Vec<(u64, TimelineEntry)> = Vec::with_capacity(spans.len() + logs.len() + metrics.len());
    keyed.extend(spans.iter().map(|s| (s.unix_nano, span_entry(&s.view))));
    keyed.extend(logs.iter().map(|l| (l.unix_nano, log_entry(&l.view))));
    keyed.extend(metrics.iter().map(|m| (m.unix_nano, metric_entry(&m.view))));
    keyed.sort_by_key(|(unix_nano, entry)| (*unix_nano, entry.kind));
    keyed.into_iter().map(|(_, entry)| entry).collect()
}

fn span_entry(span: &SpanView) -> TimelineEntry {
    let is_error = span.status_code == StatusView::Error;
    TimelineEntry {
        timestamp: span.timestamp.clone(),
        kind: SignalKind::Span,
        service: span.service_name.clone(),
        description: span.span_name.clone(),
        span_id: span.span_id.clone(),
        duration_ms: Some(nanos_to_ms(span.duration_ns)),
        level: is_error.then(|| "error".to_owned()),
        is_error,
    }
}

fn log_entry(log: &LogView) -> TimelineEntry {
    TimelineEntry {
        timestamp: log.timestamp.clone(),
        kind: SignalKind::Log,
        service: log.service_name.clone(),
        description: truncate_chars(&log.body, DESCRIPTION_CHARS_MAX),
        span_id: log.span_id.clone(),
        duration_ms: None,
        level: log_level(log),
        is_error: is_error_log(log),
    }
}

fn metric_entry(metric: &MetricView) -> TimelineEntry {
    TimelineEntry {
        timestamp: metric.timestamp.clone(),
        kind: SignalKind::Metric,
        service: metric.service_name.clone(),
        description: format!("{} = {}", metric.metric_name, metric.value),
        span_id: metric.span_id.clone(),
        duration_ms: None,
        level: None,
        is_error: false,
    }
}

/// At most `max` characters; a cut text ends in `…` (counted in `max`).
fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some(_) => {
            let keep: String = text.chars().take(max.saturating_sub(1)).collect();
            keep + "…"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::merge::{MergedLog, MergedSpan};
    use super::super::signal::{log_view, metric_view, span_view};
    use super::*;

    #[test]
    fn ordered_by_time_then_kind() {
        let spans = vec![span_view(&MergedSpan { service_name: "a".into(), span: span(1, 1, None, "root", T0 + 5, T0 + 10) })];
        let logs = vec![
            log_view(&MergedLog { service_name: "a".into(), log: log(1, 1, T0, 9, "first") }),
            log_view(&MergedLog { service_name: "a".into(), log: log(1, 1, T0 + 5, 17, "same time as span") }),
        ];
        let metrics = vec![metric_view(&exemplar("a", "m", T0 + 5, 2.0, 1, 1))];
        let got: Vec<(SignalKind, String)> = entries(&spans, &logs, &metrics).into_iter().map(|e| (e.kind, e.description)).collect();
        let want = vec![
            (SignalKind::Log, "first".to_owned()),
            (SignalKind::Span, "root".to_owned()),
            (SignalKind::Log, "same time as span".to_owned()),
            (SignalKind::Metric, "m = 2".to_owned()),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn entries_carry_level_duration_and_error_flag() {
        let failed_span = failed(span(1, 2, None, "charge", T0, T0 + 3 * MS / 2), "declined");
        let spans = vec![span_view(&MergedSpan { service_name: "a".into(), span: failed_span })];
        let logs = vec![log_view(&MergedLog { service_name: "b".into(), log: log(1, 2, T0 + 1, 9, "ok") })];
        let all = entries(&spans, &logs, &[]);
        assert_eq!((all[0].duration_ms, all[0].level.as_deref(), all[0].is_error), (Some(1.5), Some("error"), true));
        assert_eq!((all[1].duration_ms, all[1].level.as_deref(), all[1].is_error), (None, Some("info"), false));
        assert_eq!(all[1].service, "b");
    }

    #[test]
    fn long_bodies_are_cut_to_the_limit() {
        let body = "é".repeat(DESCRIPTION_CHARS_MAX + 10);
        let logs = vec![log_view(&MergedLog { service_name: "a".into(), log: log(1, 1, T0, 9, &body) })];
        let description = &entries(&[], &logs, &[])[0].description;
        assert_eq!(description.chars().count(), DESCRIPTION_CHARS_MAX);
        assert!(description.ends_with('…'));
        assert_eq!(truncate_chars("short", DESCRIPTION_CHARS_MAX), "short");
        assert_eq!(truncate_chars(&"x".repeat(DESCRIPTION_CHARS_MAX), DESCRIPTION_CHARS_MAX).len(), DESCRIPTION_CHARS_MAX);
    }
}
