//! Watches the node while the soak runs: its resident memory from
//! /proc/PID/status and its own gauges from `/metrics`, once a second,
//! with a progress line every ten.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::load::Sender;

/// Samples kept for the report's timeline: two hours at one a second.
/// Peaks are kept beyond it.
const SAMPLES_MAX: usize = 7_200;
/// A scrape slower than this is skipped: the sampler must keep its pace.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);

/// One second of the node's state.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    pub t_s: f64,
    pub rss_bytes: u64,
    /// `ollystack_memory_used_bytes`: what the node counts against its budget.
    pub used_bytes: u64,
    pub live_sessions: u64,
}

#[derive(Debug, Default)]
pub struct Watched {
    pub samples: Vec<Sample>,
    pub rss_peak_bytes: u64,
    pub used_peak_bytes: u64,
    pub live_sessions_peak: u64,
    /// `ollystack_memory_budget_bytes` as the node reported it.
    pub budget_gauge_bytes: Option<u64>,
    /// The node's process went away while watched (crash or OOM kill).
    pub node_exited: bool,
}

impl Watched {
    fn push(&mut self, sample: Sample) {
        self.rss_peak_bytes = self.rss_peak_bytes.max(sample.rss_bytes);
        self.used_peak_bytes = self.used_peak_bytes.max(sample.used_bytes);
        self.live_sessions_peak = self.live_sessions_peak.max(sample.live_sessions);
        if self.samples.len() < SAMPLES_MAX {
            self.samples.push(sample);
        }
    }
}

/// The value of the series `series` (a metric name, with its labels if
/// any, as written in the exposition) in Prometheus text `text`.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The node's `/metrics` text, or None when it did not answer in time.
pub async fn scrape(client: &reqwest::Client, api: &str) -> Option<String> {
    let response = client.get(format!("{api}/metrics")).timeout(SCRAPE_TIMEOUT).send().await.ok()?;
    response.text().await.ok()
}

/// Samples the node once a second until `stop`.
pub async fn watch(pid: u32, client: reqwest::Client, api: String, sender: Arc<Sender>, stop: Arc<AtomicBool>) -> Watched {
    let mut watched = Watched::default();
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_progress = (0.0, 0u64, 0u64, 0u64);
    while !stop.load(Relaxed) {
        tick.tick().await;
        let Ok(rss_bytes) = crate::proc::rss_bytes(pid) else {
            watched.node_exited = true;
            break;
        };
        let text = scrape(&client, &api).await.unwrap_or_default();
        let gauge = |name: &str| metric(&text, name).map(|v| v as u64);
        if let Some(budget) = gauge("ollystack_memory_budget_bytes") {
            watched.budget_gauge_bytes = Some(budget);
        }
        let sample = Sample {
            t_s: start.elapsed().as_secs_f64(),
            rss_bytes,
            used_bytes: gauge("ollystack_memory_used_bytes").unwrap_or(0),
            live_sessions: gauge("ollystack_sessions_live").unwrap_or(0),
        };
        watched.push(sample);
        if sample.t_s - last_progress.0 >= 10.0 {
            last_progress = progress(&sender, sample, last_progress);
        }
    }
    watched
}

/// Prints the last ten seconds; returns what the next line starts from.
fn progress(sender: &Sender, sample: Sample, (t0, acked0, answers0, refused0): (f64, u64, u64, u64)) -> (f64, u64, u64, u64) {
    let c = &sender.counters;
    let acked = sender.ledger.lock().map(|l| l.acked_spans).unwrap_or(0);
    let answers = c.answers();
    let refused = c.answers_429.load(Relaxed) + c.answers_503.load(Relaxed);
    let dt = (sample.t_s - t0).max(1e-3);
    println!(
        "  t={:>4.0}s acked {:>7.0} spans/s | refused {:>5.1}% of {} answers | unsent {} | rss {} MiB, counted {} MiB, live sessions {}",
        sample.t_s,
        (acked - acked0) as f64 / dt,
        100.0 * (refused - refused0) as f64 / (answers - answers0).max(1) as f64,
        answers - answers0,
        c.unsent.load(Relaxed),
        sample.rss_bytes >> 20,
        sample.used_bytes >> 20,
        sample.live_sessions,
    );
    (sample.t_s, acked, answers, refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_read_by_series() {
        let text = "# HELP ollystack_memory_used_bytes x\nollystack_memory_used_bytes 1234\nollystack_memory_used_bytes_extra 9\n\
                    ollystack_ingest_items_total{signal=\"spans\"} 77\n";
        assert_eq!(metric(text, "ollystack_memory_used_bytes"), Some(1234.0));
        assert_eq!(metric(text, "ollystack_ingest_items_total{signal=\"spans\"}"), Some(77.0));
        assert_eq!(metric(text, "ollystack_memory_budget_bytes"), None);
    }

    #[test]
    fn samples_are_bounded_but_peaks_are_not() {
        let mut watched = Watched::default();
        for i in 0..SAMPLES_MAX as u64 + 10 {
            watched.push(Sample { rss_bytes: i, ..Sample::default() });
        }
        assert_eq!(watched.samples.len(), SAMPLES_MAX);
        assert_eq!(watched.rss_peak_bytes, SAMPLES_MAX as u64 + 9);
    }
}
