//! The soak's figures: a text report for people and one JSON line for
//! issue notes and scripts.

use std::sync::atomic::Ordering::Relaxed;

use serde_json::json;

use super::load::{Counters, Lookups};
use super::watch::Watched;
use super::{Args, Verified};

pub struct Figures<'a> {
    pub args: &'a Args,
    /// Measured capacity (acknowledged spans/s) and its refused share.
    pub capacity: Option<(f64, f64)>,
    pub offered_spans_per_sec: f64,
    pub load_s: f64,
    /// Every request (retries included) ended before the report.
    pub all_ended: bool,
    pub counters: &'a Counters,
    pub acked_requests: u64,
    pub acked_spans: u64,
    pub acked_ids: usize,
    /// `ollystack_ingest_items_total{signal="spans"}` after the drain.
    pub node_spans: Option<f64>,
    pub node_duplicates: Option<f64>,
    pub watched: &'a Watched,
    pub rss_end_of_load: Option<u64>,
    pub rss_after_drain: Option<u64>,
    pub drained: bool,
    pub drain_s: f64,
    pub lookups: &'a [Lookups],
    pub verified: &'a Verified,
}

/// Latency quantiles in milliseconds over every lookup loop.
struct LookupFigures {
    count: u64,
    ok: u64,
    non_200: u64,
    /// `status:count` pairs of the non-200 answers.
    non_200_by_status: String,
    failed: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

fn lookup_figures(lookups: &[Lookups]) -> LookupFigures {
    let mut all = hdrhistogram::Histogram::<u64>::new(3).expect("3 significant digits is valid");
    for l in lookups {
        // Same precision on both sides: adding cannot fail.
        let _ = all.add(&l.latency_us);
    }
    let ms = |us: u64| us as f64 / 1000.0;
    LookupFigures {
        count: all.len(),
        ok: lookups.iter().map(|l| l.ok).sum(),
        non_200: lookups.iter().map(|l| l.non_200).sum(),
        non_200_by_status: {
            let mut by_status = std::collections::BTreeMap::<u16, u64>::new();
            for (status, n) in lookups.iter().flat_map(|l| &l.non_200_by_status) {
                *by_status.entry(*status).or_default() += n;
            }
            by_status.iter().map(|(s, n)| format!("{s}:{n}")).collect::<Vec<_>>().join(" ")
        },
        failed: lookups.iter().map(|l| l.failed).sum(),
        p50_ms: ms(all.value_at_quantile(0.5)),
        p99_ms: ms(all.value_at_quantile(0.99)),
        max_ms: ms(all.max()),
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

impl Figures<'_> {
    fn share(&self, n: u64) -> f64 {
        n as f64 / self.counters.answers().max(1) as f64
    }

    pub fn print(&self) {
        let c = self.counters;
        let (a, w, v) = (self.args, self.watched, self.verified);
        let l = lookup_figures(self.lookups);
        let load = |x: &std::sync::atomic::AtomicU64| x.load(Relaxed);
        println!("== overload soak ==");
        if let Some((rate, refused)) = self.capacity {
            println!("capacity (closed loop):  {rate:.0} spans/s acknowledged ({:.1}% refused)", 100.0 * refused);
        }
        println!(
            "offered (open loop):     {:.0} spans/s for {:.0} s, {} IDs, {} spans x {} IDs per request",
            self.offered_spans_per_sec, self.load_s, a.ids, a.spans_per_request, a.ids_per_request
        );
        println!(
            "requests offered:        {} ({} unsent: {} first attempts already in flight)",
            load(&c.offered),
            load(&c.unsent),
            a.max_in_flight
        );
        println!(
            "answers:                 {} = 200 {} | partial {} | 429 {} ({:.1}%) | 503 {} ({:.1}%) | other {} | no answer {}",
            c.answers(),
            load(&c.answers_ok),
            load(&c.answers_partial),
            load(&c.answers_429),
            100.0 * self.share(load(&c.answers_429)),
            load(&c.answers_503),
            100.0 * self.share(load(&c.answers_503)),
            load(&c.answers_other),
            load(&c.answers_transport)
        );
        println!(
            "retries ({}):            {} requests queued, {} then acknowledged; dropped: {} queue full, {} out of attempts",
            if a.retry { "on" } else { "off" },
            load(&c.retried),
            load(&c.retried_then_acked),
            load(&c.dropped_queue_full),
            load(&c.dropped_gave_up)
        );
        println!(
            "acknowledged:            {} requests, {} spans = {:.0} spans/s over {} IDs; node counted {} spans ({} duplicates dropped)",
            self.acked_requests,
            self.acked_spans,
            self.acked_spans as f64 / self.load_s.max(1e-3),
            self.acked_ids,
            self.node_spans.map_or("?".into(), |n| format!("{n:.0}")),
            self.node_duplicates.map_or("?".into(), |n| format!("{n:.0}"))
        );
        println!(
            "memory:                  budget {:.0} MiB (gauge {}); RSS peak {:.0} MiB = {:.2}x budget, end of load {}, after drain {}; counted peak {:.0} MiB; live sessions peak {}{}",
            mib(a.memory_budget_bytes),
            w.budget_gauge_bytes.map_or("?".into(), |b| format!("{:.0} MiB", mib(b))),
            mib(w.rss_peak_bytes),
            w.rss_peak_bytes as f64 / a.memory_budget_bytes as f64,
            self.rss_end_of_load.map_or("?".into(), |b| format!("{:.0} MiB", mib(b))),
            self.rss_after_drain.map_or("?".into(), |b| format!("{:.0} MiB", mib(b))),
            mib(w.used_peak_bytes),
            w.live_sessions_peak,
            if w.node_exited { " -- NODE EXITED" } else { "" }
        );
        println!(
            "lookups meanwhile:       {} (200 {}, other {} [{}], failed {}): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            l.count, l.ok, l.non_200, l.non_200_by_status, l.failed, l.p50_ms, l.p99_ms, l.max_ms
        );
        println!(
            "drain:                   {} after {:.0} s",
            if self.drained { "no live session left" } else { "live sessions remained" },
            self.drain_s
        );
        println!(
            "presence ({} IDs read):  {} acknowledged spans, {} present, {} MISSING (in {} IDs), {} duplicated, {} unacknowledged present; IDs not found {}, reads failed {}",
            v.ids_checked,
            v.spans.expected,
            v.spans.present,
            v.spans.missing,
            v.ids_with_missing,
            v.spans.duplicated,
            v.spans.unacknowledged,
            v.ids_not_found,
            v.ids_failed
        );
    }

    pub fn json(&self) -> serde_json::Value {
        let c = self.counters;
        let (a, w, v) = (self.args, self.watched, self.verified);
        let l = lookup_figures(self.lookups);
        let load = |x: &std::sync::atomic::AtomicU64| x.load(Relaxed);
        let mut load_figures = json!({
            "duration_s": self.load_s,
            "ids": a.ids,
            "spans_per_request": a.spans_per_request,
            "ids_per_request": a.ids_per_request,
            "capacity_spans_per_sec": self.capacity.map(|c| c.0),
            "capacity_refused_share": self.capacity.map(|c| c.1),
            "offered_spans_per_sec": self.offered_spans_per_sec,
            "requests_offered": load(&c.offered),
            "requests_unsent": load(&c.unsent),
            "max_in_flight": a.max_in_flight,
            "answers": c.answers(),
            "answers_200": load(&c.answers_ok),
            "answers_partial": load(&c.answers_partial),
            "answers_429": load(&c.answers_429),
            "answers_503": load(&c.answers_503),
            "answers_other": load(&c.answers_other),
            "answers_none": load(&c.answers_transport),
            "share_429": self.share(load(&c.answers_429)),
            "share_503": self.share(load(&c.answers_503)),
            "partial_rejected_spans": load(&c.partial_rejected_spans),
            "retry": a.retry,
            "retried_requests": load(&c.retried),
            "retried_then_acked": load(&c.retried_then_acked),
            "dropped_retry_queue_full": load(&c.dropped_queue_full),
            "dropped_out_of_attempts": load(&c.dropped_gave_up),
            "all_requests_ended": self.all_ended,
        });
        let memory = json!({
            "acked_requests": self.acked_requests,
            "acked_spans": self.acked_spans,
            "acked_spans_per_sec": self.acked_spans as f64 / self.load_s.max(1e-3),
            "acked_ids": self.acked_ids,
            "node_ingested_spans": self.node_spans,
            "node_duplicates": self.node_duplicates,
            "memory_budget_bytes": a.memory_budget_bytes,
            "memory_budget_gauge_bytes": w.budget_gauge_bytes,
            "rss_peak_bytes": w.rss_peak_bytes,
            "rss_peak_over_budget": w.rss_peak_bytes as f64 / a.memory_budget_bytes as f64,
            "rss_end_of_load_bytes": self.rss_end_of_load,
            "rss_after_drain_bytes": self.rss_after_drain,
            "counted_peak_bytes": w.used_peak_bytes,
            "live_sessions_peak": w.live_sessions_peak,
            "node_exited": w.node_exited,
            "rss_timeline_mib": w.samples.iter().step_by(10).map(|s| s.rss_bytes >> 20).collect::<Vec<_>>(),
        });
        let after = json!({
            "lookups": l.count,
            "lookups_200": l.ok,
            "lookups_non_200": l.non_200,
            "lookups_non_200_by_status": l.non_200_by_status,
            "lookups_failed": l.failed,
            "lookup_p50_ms": l.p50_ms,
            "lookup_p99_ms": l.p99_ms,
            "lookup_max_ms": l.max_ms,
            "drained": self.drained,
            "drain_s": self.drain_s,
            "verify_ids_checked": v.ids_checked,
            "verify_spans_expected": v.spans.expected,
            "verify_spans_present": v.spans.present,
            "verify_spans_missing": v.spans.missing,
            "verify_ids_with_missing": v.ids_with_missing,
            "verify_spans_duplicated": v.spans.duplicated,
            "verify_spans_unacknowledged": v.spans.unacknowledged,
            "verify_ids_not_found": v.ids_not_found,
            "verify_ids_failed": v.ids_failed,
        });
        // Three objects, merged: one `json!` of them all overflows the
        // macro recursion limit.
        for part in [memory, after] {
            if let (Some(all), serde_json::Value::Object(part)) = (load_figures.as_object_mut(), part) {
                all.extend(part);
            }
        }
        load_figures
    }
}
