//! What changed between a baseline window and an incident window, per
//! operation and per edge: the statistical tests, no ranking. Pure.
//!
//! | departure | test |
//! |---|---|
//! | `origin_error_rate` | failures starting at the operation (no failing child): rate up by ≥ [`ERROR_RATE_DELTA_MIN`] and a two-proportion z ≥ [`Z_MIN`] (or, without baseline calls, ≥ 3 failures and ≥ 5%) |
//! | `self_time` | both windows ≥ [`SAMPLES_MIN`] calls; p50 × [`P50_RATIO_MIN`] or p90 × [`P90_RATIO_MIN`], and ≥ [`EXCESS_MS_MIN`] ms more |
//! | `duration` | the same test on the duration (used for callers' symptoms, not blame) |
//! | `error_logs` | error logs per call up by ≥ 0.05 and ×2, at least 3 |
//! | `log_template` | a line written on ≥ 30% of calls drops by a quarter or more, z ≥ [`Z_MIN`] (gone), or a new one appears on ≥ 10% of calls (at least 3) |
//! | edge `gap` | client-side minus server-side time of a synchronous call, the `self_time` test |

use serde::Serialize;

use super::aggregate::{EdgeStats, OpStats, WindowAggregate};
use crate::rca::Percentiles;

pub const SAMPLES_MIN: u64 = 10;
pub const P50_RATIO_MIN: f64 = 1.3;
pub const P90_RATIO_MIN: f64 = 1.5;
pub const EXCESS_MS_MIN: f64 = 1.0;
pub const ERROR_RATE_DELTA_MIN: f64 = 0.02;
pub const Z_MIN: f64 = 3.0;
/// A template is "usual" when written on at least this share of calls.
const TEMPLATE_USUAL_RATE: f64 = 0.3;
/// A usual template is gone when written on at most this share of its
/// baseline rate (and the drop is significant: z ≥ [`Z_MIN`]).
const TEMPLATE_GONE_SHARE: f64 = 0.75;
/// A new template counts when written on at least this share of calls.
const TEMPLATE_NEW_RATE: f64 = 0.1;
/// Smallest percentile taken as a denominator (ms), so sub-µs values do not
/// make huge ratios.
const RATIO_FLOOR_MS: f64 = 0.1;

/// A value in both windows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Pair<T> {
    pub baseline: T,
    pub incident: T,
}

/// How a log line's frequency changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TemplateChange {
    pub template: String,
    /// Lines per call.
    pub per_call: Pair<f64>,
    /// `gone` (a usual line halved or vanished) or `new`.
    pub change: &'static str,
}

/// One operation's change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpChange {
    pub service: String,
    pub operation: String,
    pub calls: Pair<u64>,
    pub error_rate: Pair<f64>,
    /// Failures starting here, per call.
    pub origin_error_rate: Pair<f64>,
    pub error_logs_per_call: Pair<f64>,
    pub self_time: Pair<Percentiles>,
    pub duration: Pair<Percentiles>,
    /// Which tests it failed: `origin_error_rate`, `error_rate`, `self_time`,
    /// `duration`, `error_logs`, `log_template`.
    pub departures: Vec<&'static str>,
    pub templates: Vec<TemplateChange>,
    /// Mostly client/producer spans (calls out of the service).
    #[serde(skip)]
    pub client_side: bool,
    /// Mostly client spans whose callee sent spans.
    #[serde(skip)]
    pub traced_callee: bool,
    #[serde(skip)]
    pub z: f64,
}

impl OpChange {
    pub fn left(&self, departure: &str) -> bool {
        self.departures.contains(&departure)
    }

    /// Self time incident / baseline, the larger of p50 and p90.
    pub fn self_ratio(&self) -> f64 {
        ratio(&self.self_time)
    }

    /// Extra self time per call at the median (or p90 when larger), ms.
    pub fn self_excess_ms(&self) -> f64 {
        excess_ms(&self.self_time)
    }

    pub fn origin_error_delta(&self) -> f64 {
        (self.origin_error_rate.incident - self.origin_error_rate.baseline).max(0.0)
    }
}

/// One edge's change (synchronous client calls with a traced callee).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EdgeChange {
    pub caller: String,
    pub caller_operation: String,
    pub callee: String,
    pub calls: Pair<u64>,
    pub error_rate: Pair<f64>,
    /// Caller span failed, callee span did not, per call.
    pub caller_only_error_rate: Pair<f64>,
    pub client: Pair<Percentiles>,
    pub server: Pair<Percentiles>,
    pub gap: Pair<Percentiles>,
    /// `gap`, `server`, `caller_only_errors`.
    pub departures: Vec<&'static str>,
}

impl EdgeChange {
    pub fn left(&self, departure: &str) -> bool {
        self.departures.contains(&departure)
    }
}

/// Every operation seen in the incident window, with its departures.
pub fn op_changes(base: &WindowAggregate, inc: &WindowAggregate) -> Vec<OpChange> {
    let empty = OpStats::default();
    inc.ops
        .iter()
        .map(|i| {
            let b = base.op(&i.service, &i.operation).unwrap_or(&empty);
            op_change(b, base.sessions, i, inc.sessions)
        })
        .collect()
}

fn op_change(b: &OpStats, b_sessions: u64, i: &OpStats, i_sessions: u64) -> OpChange {
    // Logs of no span: per session.
    let per = |n: u64, calls: u64, sessions: u64| n as f64 / (if calls > 0 { calls } else { sessions }).max(1) as f64;
    let pair = |f: &dyn Fn(&OpStats, u64) -> f64| Pair { baseline: f(b, b_sessions), incident: f(i, i_sessions) };
    let error_rate = pair(&|o, s| per(o.errors, o.calls, s));
    let origin_error_rate = pair(&|o, s| per(o.origin_errors, o.calls, s));
    let error_logs_per_call = pair(&|o, s| per(o.error_logs, o.calls, s));
    let self_time = Pair { baseline: b.self_us.percentiles(), incident: i.self_us.percentiles() };
    let duration = Pair { baseline: b.duration_us.percentiles(), incident: i.duration_us.percentiles() };
    let z = z_score(b.origin_errors, b.calls, i.origin_errors, i.calls);
    let mut departures = Vec::new();
    let delta = origin_error_rate.incident - origin_error_rate.baseline;
    let new_failures = b.calls == 0 && i.origin_errors >= 3 && origin_error_rate.incident >= 0.05;
    if delta >= ERROR_RATE_DELTA_MIN && (z >= Z_MIN || new_failures) {
        departures.push("origin_error_rate");
    }
    if error_rate.incident - error_rate.baseline >= ERROR_RATE_DELTA_MIN && z_score(b.errors, b.calls, i.errors, i.calls) >= Z_MIN {
        departures.push("error_rate");
    }
    if latency_left(&self_time) {
        departures.push("self_time");
    }
    if latency_left(&duration) {
        departures.push("duration");
    }
    let logs_delta = error_logs_per_call.incident - error_logs_per_call.baseline;
    if i.error_logs >= 3 && logs_delta >= 0.05 && error_logs_per_call.incident >= 2.0 * error_logs_per_call.baseline {
        departures.push("error_logs");
    }
    let templates = template_changes(b, b_sessions, i, i_sessions);
    if !templates.is_empty() {
        departures.push("log_template");
    }
    OpChange {
        service: i.service.clone(),
        operation: i.operation.clone(),
        calls: Pair { baseline: b.calls, incident: i.calls },
        error_rate,
        origin_error_rate,
        error_logs_per_call,
        self_time,
        duration,
        departures,
        templates,
        client_side: i.client_calls * 2 > i.calls,
        traced_callee: i.traced_callee_calls * 2 > i.calls,
        z,
    }
}

fn template_changes(b: &OpStats, b_sessions: u64, i: &OpStats, i_sessions: u64) -> Vec<TemplateChange> {
    let (b_calls, i_calls) = (if b.calls > 0 { b.calls } else { b_sessions }, if i.calls > 0 { i.calls } else { i_sessions });
    if b_calls < SAMPLES_MIN || i_calls < SAMPLES_MIN {
        return Vec::new();
    }
    let count = |o: &OpStats, t: &str| o.templates.iter().find(|(x, _)| x == t).map_or(0, |(_, n)| *n);
    let mut out = Vec::new();
    for (t, nb) in &b.templates {
        let per_call = Pair { baseline: *nb as f64 / b_calls as f64, incident: count(i, t) as f64 / i_calls as f64 };
        let (seen_b, seen_i) = ((*nb).min(b_calls), count(i, t).min(i_calls));
        let z = z_score(b_calls - seen_b, b_calls, i_calls - seen_i, i_calls);
        if per_call.baseline >= TEMPLATE_USUAL_RATE && per_call.incident <= TEMPLATE_GONE_SHARE * per_call.baseline && z >= Z_MIN {
            out.push(TemplateChange { template: t.clone(), per_call, change: "gone" });
        }
    }
    for (t, ni) in &i.templates {
        let per_call = Pair { baseline: count(b, t) as f64 / b_calls as f64, incident: *ni as f64 / i_calls as f64 };
        // A template unknown to the baseline may have been cut by its bound.
        let baseline_full = b.other_logs > 0;
        if per_call.baseline == 0.0 && !baseline_full && *ni >= 3 && per_call.incident >= TEMPLATE_NEW_RATE {
            out.push(TemplateChange { template: t.clone(), per_call, change: "new" });
        }
    }
    out
}

/// Every edge of the incident window, with its departures.
pub fn edge_changes(base: &WindowAggregate, inc: &WindowAggregate) -> Vec<EdgeChange> {
    let empty = EdgeStats::default();
    inc.edges
        .iter()
        .map(|i| {
            let b = base
                .edges
                .binary_search_by(|e| {
                    (e.caller.as_str(), e.caller_operation.as_str(), e.callee.as_str()).cmp(&(
                        i.caller.as_str(),
                        i.caller_operation.as_str(),
                        i.callee.as_str(),
                    ))
                })
                .map_or(&empty, |k| &base.edges[k]);
            edge_change(b, i)
        })
        .collect()
}

fn edge_change(b: &EdgeStats, i: &EdgeStats) -> EdgeChange {
    let rate = |n: u64, calls: u64| n as f64 / calls.max(1) as f64;
    let gap = Pair { baseline: b.gap_us.percentiles(), incident: i.gap_us.percentiles() };
    let server = Pair { baseline: b.server_us.percentiles(), incident: i.server_us.percentiles() };
    let caller_only_error_rate = Pair { baseline: rate(b.caller_only_errors, b.calls), incident: rate(i.caller_only_errors, i.calls) };
    let mut departures = Vec::new();
    if latency_left(&gap) {
        departures.push("gap");
    }
    if latency_left(&server) {
        departures.push("server");
    }
    if caller_only_error_rate.incident - caller_only_error_rate.baseline >= ERROR_RATE_DELTA_MIN
        && z_score(b.caller_only_errors, b.calls, i.caller_only_errors, i.calls) >= Z_MIN
    {
        departures.push("caller_only_errors");
    }
    EdgeChange {
        caller: i.caller.clone(),
        caller_operation: i.caller_operation.clone(),
        callee: i.callee.clone(),
        calls: Pair { baseline: b.calls, incident: i.calls },
        error_rate: Pair { baseline: rate(b.errors, b.calls), incident: rate(i.errors, i.calls) },
        caller_only_error_rate,
        client: Pair { baseline: b.client_us.percentiles(), incident: i.client_us.percentiles() },
        server,
        gap,
        departures,
    }
}

/// Whether a latency distribution left its baseline (see the module doc).
pub fn latency_left(p: &Pair<Percentiles>) -> bool {
    let (b, i) = (&p.baseline, &p.incident);
    if b.samples < SAMPLES_MIN || i.samples < SAMPLES_MIN {
        return false;
    }
    let p50 = i.p50_ms >= P50_RATIO_MIN * b.p50_ms && i.p50_ms - b.p50_ms >= EXCESS_MS_MIN;
    let p90 = i.p90_ms >= P90_RATIO_MIN * b.p90_ms && i.p90_ms - b.p90_ms >= EXCESS_MS_MIN;
    p50 || p90
}

pub fn ratio(p: &Pair<Percentiles>) -> f64 {
    let r = |i: f64, b: f64| i / b.max(RATIO_FLOOR_MS);
    r(p.incident.p50_ms, p.baseline.p50_ms).max(r(p.incident.p90_ms, p.baseline.p90_ms))
}

pub fn excess_ms(p: &Pair<Percentiles>) -> f64 {
    (p.incident.p50_ms - p.baseline.p50_ms).max(p.incident.p90_ms - p.baseline.p90_ms).max(0.0)
}

/// Two-proportion z statistic of `e_i / n_i` above `e_b / n_b`; 0 when
/// either window has no calls, large when the pooled rate is 0 or 1.
pub fn z_score(e_b: u64, n_b: u64, e_i: u64, n_i: u64) -> f64 {
    if n_b == 0 || n_i == 0 {
        return 0.0;
    }
    let (pb, pi) = (e_b as f64 / n_b as f64, e_i as f64 / n_i as f64);
    let pooled = (e_b + e_i) as f64 / (n_b + n_i) as f64;
    let se = (pooled * (1.0 - pooled) * (1.0 / n_b as f64 + 1.0 / n_i as f64)).sqrt();
    if se == 0.0 {
        return 0.0;
    }
    (pi - pb) / se
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pct(p50_ms: f64, p90_ms: f64, samples: u64) -> Percentiles {
        Percentiles { p50_ms, p90_ms, p99_ms: p90_ms, samples }
    }

    #[test]
    fn latency_needs_samples_ratio_and_excess() {
        let pair = |b, i| Pair { baseline: b, incident: i };
        assert!(latency_left(&pair(pct(10.0, 12.0, 50), pct(14.0, 16.0, 50))));
        assert!(!latency_left(&pair(pct(10.0, 12.0, 50), pct(12.0, 14.0, 50))), "20% is noise");
        assert!(latency_left(&pair(pct(10.0, 12.0, 50), pct(10.0, 30.0, 50))), "a slow tail");
        assert!(!latency_left(&pair(pct(0.1, 0.1, 50), pct(0.5, 0.5, 50))), "less than 1 ms more");
        assert!(!latency_left(&pair(pct(10.0, 12.0, 5), pct(40.0, 50.0, 50))), "too few baseline samples");
    }

    #[test]
    fn z_scores() {
        assert!(z_score(0, 100, 20, 100) > 4.0);
        assert!(z_score(5, 100, 7, 100) < 1.0);
        assert_eq!(z_score(0, 0, 5, 10), 0.0);
        assert_eq!(z_score(0, 10, 0, 10), 0.0);
    }
}
