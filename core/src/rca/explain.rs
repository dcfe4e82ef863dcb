//! The deterministic explanation: a few sentences built only from the
//! computed result, so the same analysis always reads the same. (An LLM
//! may later rephrase this result; it never adds to it.)

use super::result::{CounterfactualView, RcaResult};

/// At most this many other candidates are named.
const OTHERS_MAX: usize = 3;

pub fn explain(r: &RcaResult) -> String {
    if r.critical_path.steps.is_empty() {
        return "No spans in this session: there is no request to analyse.".to_owned();
    }
    let outcome = if r.request_failed { "failed" } else { "did not fail" };
    let mut text = vec![format!("The request {outcome}; its critical path is {:.1} ms.", r.critical_path.total_ms)];
    match &r.root_cause {
        Some(c) => {
            text.push(format!("Most likely root cause: {} {} ({}, score {:.3}).", c.service, c.operation, c.kind.as_str(), c.score));
            text.extend(c.evidence.iter().take(2).map(|e| format!("{}.", capitalize(&e.detail))));
        }
        None => text.push("No candidate stands out: no span failed, no error was logged and nothing left its baseline.".to_owned()),
    }
    text.extend(r.counterfactuals.iter().take(2).map(|c| match c {
        CounterfactualView::Latency { statement, .. } | CounterfactualView::Failure { statement, .. } => {
            format!("{}.", capitalize(statement))
        }
    }));
    if let Some(o) = &r.error_origin {
        let same = r.root_cause.as_ref().is_some_and(|c| c.service == o.service && c.operation == o.operation);
        if !same {
            text.push(format!("The first failure was {} {}: {}.", o.service, o.operation, o.message));
        }
    }
    if !r.anomalies.is_empty() {
        text.push(format!("{} span(s) left their latency baseline.", r.anomalies.len()));
    }
    let others: Vec<String> = r
        .candidates
        .iter()
        .skip(1)
        .take(OTHERS_MAX)
        .map(|c| format!("{} {} ({}, {:.3})", c.service, c.operation, c.kind.as_str(), c.score))
        .collect();
    if !others.is_empty() {
        text.push(format!("Other candidates: {}.", others.join("; ")));
    }
    text.join(" ")
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}
