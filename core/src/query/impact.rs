//! Impact of a session: which services and operations it touched, where the
//! errors were, and whether the caller of the flow saw a failure.

use std::collections::{BTreeMap, HashSet};

use super::time::nanos_to_ms;
use super::view::{CorrelateResponse, ImpactResponse, OperationImpact, RootSpanView, SpanView, StatusView};

/// `GET /api/v1/correlate/{id}/impact`, computed from the full answer.
pub fn impact(resp: &CorrelateResponse) -> ImpactResponse {
    let roots = root_spans(&resp.traces);
    ImpactResponse {
        correlation_id: resp.correlation_id.clone(),
        live: resp.live,
        partial: resp.partial,
        partial_reason: resp.partial_reason.clone(),
        services: resp.services.clone(),
        operations: operations(&resp.traces),
        errors_by_service: errors_by_service(resp),
        root_span: roots.first().map(|root| RootSpanView {
            span_name: root.span_name.clone(),
            service_name: root.service_name.clone(),
            failed: is_failed(root),
            duration_ms: nanos_to_ms(root.duration_ns),
        }),
        user_facing_failed: roots.iter().any(|root| is_failed(root)),
        truncated: resp.truncated,
        page: resp.page.clone(),
    }
}

fn is_failed(span: &SpanView) -> bool {
    span.status_code == StatusView::Error
}

/// The entry points of the session, earliest first: spans without a parent;
/// when there are none (the root has not arrived yet), spans whose parent
/// is not in the session. `spans` must be ordered by start time.
fn root_spans(spans: &[SpanView]) -> Vec<&SpanView> {
    let true_roots: Vec<&SpanView> = spans.iter().filter(|s| s.parent_span_id.is_empty()).collect();
    if !true_roots.is_empty() {
        return true_roots;
    }
    let present: HashSet<(&str, &str)> = spans.iter().map(|s| (s.trace_id.as_str(), s.span_id.as_str())).collect();
    spans.iter().filter(|s| !present.contains(&(s.trace_id.as_str(), s.parent_span_id.as_str()))).collect()
}

/// Calls and failed calls per (service, span name), sorted.
fn operations(spans: &[SpanView]) -> Vec<OperationImpact> {
    let mut counts: BTreeMap<(&str, &str), (u64, u64)> = BTreeMap::new();
    for span in spans {
        let entry = counts.entry((span.service_name.as_str(), span.span_name.as_str())).or_default();
        entry.0 += 1;
        entry.1 += u64::from(is_failed(span));
    }
    counts
        .into_iter()
        .map(|((service, operation), (calls, errors))| OperationImpact {
            service: service.to_owned(),
            operation: operation.to_owned(),
            calls,
            errors,
        })
        .collect()
}

/// Errors (failed spans and error logs) per service; every service listed,
/// zero included.
fn errors_by_service(resp: &CorrelateResponse) -> BTreeMap<String, u64> {
    let mut counts: BTreeMap<String, u64> = resp.services.iter().map(|s| (s.clone(), 0)).collect();
    for error in &resp.errors {
        *counts.entry(error.service.clone()).or_default() += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::super::build::correlate;
    use super::super::fixtures::*;
    use super::super::Segment;
    use super::*;

    fn spans_only(spans: Vec<ollystack_proto::store::StoredSpan>) -> CorrelateResponse {
        correlate(&session("s", vec![Segment { live: false, spans, ..Default::default() }]))
    }

    #[test]
    fn checkout_impact() {
        let imp = impact(&correlate(&checkout_session("order-42")));
        assert_eq!(imp.correlation_id.as_str(), "order-42");
        assert!(imp.live);
        assert_eq!(imp.services, ["checkout", "frontend", "payments"]);
        let ops: Vec<(&str, &str, u64, u64)> =
            imp.operations.iter().map(|o| (o.service.as_str(), o.operation.as_str(), o.calls, o.errors)).collect();
        assert_eq!(ops, [("checkout", "charge", 1, 1), ("frontend", "GET /checkout", 1, 0), ("payments", "POST /pay", 1, 0)]);
        let errors: Vec<(&str, u64)> = imp.errors_by_service.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(errors, [("checkout", 1), ("frontend", 0), ("payments", 1)]);
        let root = imp.root_span.expect("root span");
        assert_eq!((root.span_name.as_str(), root.service_name.as_str()), ("GET /checkout", "frontend"));
        assert_eq!((root.failed, root.duration_ms), (false, 100.0));
        assert!(!imp.user_facing_failed);
    }

    #[test]
    fn failed_root_is_user_facing() {
        let root = failed(span(1, 1, None, "GET /", T0, T0 + MS), "500");
        let child = span(1, 2, Some(1), "db", T0, T0 + MS);
        let imp = impact(&spans_only(vec![stored_span("web", &child), stored_span("web", &root)]));
        assert_eq!(imp.root_span.map(|r| (r.span_name, r.failed)), Some(("GET /".to_owned(), true)));
        assert!(imp.user_facing_failed);
        assert_eq!(imp.operations.iter().map(|o| o.calls).sum::<u64>(), 2);
    }

    #[test]
    fn orphan_stands_in_for_a_missing_root() {
        let orphan = span(1, 2, Some(1), "handler", T0 + MS, T0 + 2 * MS);
        let child = failed(span(1, 3, Some(2), "db", T0 + MS, T0 + 2 * MS), "timeout");
        let imp = impact(&spans_only(vec![stored_span("api", &child), stored_span("api", &orphan)]));
        assert_eq!(imp.root_span.map(|r| r.span_name), Some("handler".to_owned()));
        assert!(!imp.user_facing_failed, "the failed child is not an entry point");
    }

    #[test]
    fn no_spans_no_root() {
        let data = session("s", vec![Segment { live: true, logs: vec![stored_log("a", &log(1, 1, T0, 17, "x"))], ..Default::default() }]);
        let imp = impact(&correlate(&data));
        assert_eq!(imp.root_span, None);
        assert!(!imp.user_facing_failed);
        assert_eq!(imp.errors_by_service.get("a"), Some(&1));
    }
}
