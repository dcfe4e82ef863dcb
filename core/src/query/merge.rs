//! Decodes the segments of one session and removes the copies that overlap
//! between segments (a segment being archived while a query runs), keeping
//! the live copy of anything held twice.

use std::collections::HashSet;

use ollystack_proto::store::StoredExemplar;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use super::{Segment, SessionData};

/// A decoded span and the service that sent it.
#[derive(Debug, Clone)]
pub struct MergedSpan {
    pub service_name: String,
    pub span: Span,
}

/// A decoded log record and the service that sent it.
#[derive(Debug, Clone)]
pub struct MergedLog {
    pub service_name: String,
    pub log: LogRecord,
}

/// The signals of a session, each once, in segment order (live first).
#[derive(Debug, Clone, Default)]
pub struct Merged {
    /// True when a live segment holds at least one signal.
    pub live: bool,
    pub spans: Vec<MergedSpan>,
    pub logs: Vec<MergedLog>,
    pub exemplars: Vec<StoredExemplar>,
    /// Stored spans or logs whose bytes did not decode. They are left out of
    /// the answer and counted, so the omission is visible.
    pub skipped_records: u64,
}

/// What makes two exemplars the same: metric, time, trace, span, value.
type ExemplarKey<'a> = (&'a str, u64, &'a [u8], &'a [u8], u64);

/// Decodes and de-duplicates: spans by (trace ID, span ID) (by their bytes
/// when the IDs are missing), logs by (service, identical bytes), exemplars
/// by [`ExemplarKey`]. Live segments are read first, so their copy wins.
pub fn merge(data: &SessionData) -> Merged {
    let ordered = data.segments.iter().filter(|s| s.live).chain(data.segments.iter().filter(|s| !s.live));
    let mut out = Merged::default();
    let mut span_keys: HashSet<Vec<u8>> = HashSet::new();
    let mut log_keys: HashSet<(&str, &[u8])> = HashSet::new();
    let mut exemplar_keys: HashSet<ExemplarKey<'_>> = HashSet::new();
    for segment in ordered {
        out.live |= segment.live && !is_empty(segment);
        for stored in &segment.spans {
            let Ok(span) = Span::decode(stored.span.as_slice()) else {
                out.skipped_records += 1;
                tracing::warn!(correlation_id = %data.id, service = %stored.service_name, "undecodable stored span skipped");
                continue;
            };
            if span_keys.insert(span_key(&span, &stored.span)) {
                out.spans.push(MergedSpan { service_name: stored.service_name.clone(), span });
            }
        }
        for stored in &segment.logs {
            if !log_keys.insert((stored.service_name.as_str(), stored.log.as_slice())) {
                continue;
            }
            match LogRecord::decode(stored.log.as_slice()) {
                Ok(log) => out.logs.push(MergedLog { service_name: stored.service_name.clone(), log }),
                Err(_) => {
                    out.skipped_records += 1;
                    tracing::warn!(correlation_id = %data.id, service = %stored.service_name, "undecodable stored log skipped");
                }
            }
        }
        for exemplar in &segment.exemplars {
            let key = (
                exemplar.metric_name.as_str(),
                exemplar.time_unix_nano,
                exemplar.trace_id.as_slice(),
                exemplar.span_id.as_slice(),
                exemplar.value.to_bits(),
            );
            if exemplar_keys.insert(key) {
                out.exemplars.push(exemplar.clone());
            }
        }
    }
    out
}

fn is_empty(segment: &Segment) -> bool {
    segment.spans.is_empty() && segment.logs.is_empty() && segment.exemplars.is_empty()
}

/// (trace ID, span ID) when both are present; else the encoded span itself,
/// tagged so it cannot collide with an ID pair.
fn span_key(span: &Span, encoded: &[u8]) -> Vec<u8> {
    if span.trace_id.is_empty() || span.span_id.is_empty() {
        let mut key = Vec::with_capacity(encoded.len() + 1);
        key.push(1);
        key.extend_from_slice(encoded);
        return key;
    }
    let mut key = Vec::with_capacity(1 + span.trace_id.len() + span.span_id.len());
    key.push(0);
    key.extend_from_slice(&span.trace_id);
    key.extend_from_slice(&span.span_id);
    key
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use ollystack_proto::store::StoredSpan;

    #[test]
    fn live_copy_wins_whatever_the_segment_order() {
        let stale = span(1, 2, Some(1), "stale", T0, T0 + 10);
        let fresh = span(1, 2, Some(1), "fresh", T0, T0 + 20);
        let archived = Segment { live: false, spans: vec![stored_span("a", &stale)], ..Default::default() };
        let live = Segment { live: true, spans: vec![stored_span("a", &fresh)], ..Default::default() };
        let merged = merge(&session("s", vec![archived, live]));
        assert_eq!(merged.spans.len(), 1);
        assert_eq!(merged.spans[0].span.name, "fresh");
        assert!(merged.live);
    }

    #[test]
    fn duplicates_are_dropped_per_signal() {
        let log_record = log(1, 1, T0, 9, "hello");
        let ex = exemplar("a", "m", T0, 1.5, 1, 1);
        let segment = Segment {
            live: false,
            spans: vec![stored_span("a", &span(1, 1, None, "root", T0, T0 + 5))],
            logs: vec![stored_log("a", &log_record)],
            exemplars: vec![ex.clone()],
        };
        let mut other_value = ex.clone();
        other_value.value = 2.5;
        let mut second = segment.clone();
        second.exemplars.push(other_value);
        let merged = merge(&session("s", vec![segment, second]));
        assert_eq!((merged.spans.len(), merged.logs.len(), merged.exemplars.len()), (1, 1, 2));
        assert!(!merged.live);
    }

    #[test]
    fn empty_live_segment_does_not_make_the_session_live() {
        let archived = Segment { live: false, spans: vec![stored_span("a", &span(1, 1, None, "r", T0, T0))], ..Default::default() };
        let merged = merge(&session("s", vec![Segment { live: true, ..Default::default() }, archived]));
        assert!(!merged.live);
    }

    #[test]
    fn undecodable_records_are_counted_not_hidden() {
        let bad = StoredSpan { service_name: "a".into(), span: vec![0xff, 0xff, 0xff] };
        let segment = Segment { live: true, spans: vec![bad], ..Default::default() };
        let merged = merge(&session("s", vec![segment]));
        assert_eq!((merged.spans.len(), merged.skipped_records), (0, 1));
    }
}
