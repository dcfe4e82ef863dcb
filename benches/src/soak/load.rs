//! The soak's traffic, carried out against a real node: the closed-loop
//! capacity run, the open-loop offer with an exporter's bounded retries,
//! and the lookup loop. Decisions (schedule, retries, layout) come from
//! `plan`; this file only sends, waits and counts.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::batch;
use super::ledger::Ledger;
use super::plan::{correlation_id, Answer, Layout, Next, RetryPolicy, Schedule};

/// Deadline of one export attempt, as an exporter's `timeout` (10 s is the
/// OTel SDK default): a request stuck longer counts as a transport failure.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Deadline of one lookup: far beyond any acceptable latency, so a stuck
/// lookup is counted, not waited on forever.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Every figure the sender keeps, readable while it runs.
#[derive(Debug, Default)]
pub struct Counters {
    /// Requests the schedule made due.
    pub offered: AtomicU64,
    /// Due requests not sent because `max_in_flight` were outstanding
    /// (what an exporter's full queue would drop).
    pub unsent: AtomicU64,
    pub answers_ok: AtomicU64,
    pub answers_partial: AtomicU64,
    pub answers_429: AtomicU64,
    pub answers_503: AtomicU64,
    pub answers_other: AtomicU64,
    pub answers_transport: AtomicU64,
    /// Spans refused inside 200 answers (`partial_success`).
    pub partial_rejected_spans: AtomicU64,
    /// Requests that entered the retry queue.
    pub retried: AtomicU64,
    /// Of those, requests the node took in the end.
    pub retried_then_acked: AtomicU64,
    /// Requests dropped because the retry queue was full.
    pub dropped_queue_full: AtomicU64,
    /// Requests dropped after their last attempt (or a non-retryable answer).
    pub dropped_gave_up: AtomicU64,
}

impl Counters {
    fn record(&self, answer: Answer) {
        let counter = match answer {
            Answer::Accepted => &self.answers_ok,
            Answer::Partial(rejected) => {
                self.partial_rejected_spans.fetch_add(rejected, Relaxed);
                &self.answers_partial
            }
            Answer::TooManyRequests => &self.answers_429,
            Answer::Unavailable => &self.answers_503,
            Answer::Other(_) => &self.answers_other,
            Answer::Transport => &self.answers_transport,
        };
        counter.fetch_add(1, Relaxed);
    }

    pub fn answers(&self) -> u64 {
        [&self.answers_ok, &self.answers_partial, &self.answers_429, &self.answers_503, &self.answers_other, &self.answers_transport]
            .iter()
            .map(|c| c.load(Relaxed))
            .sum()
    }
}

/// What the senders share.
pub struct Sender {
    pub client: reqwest::Client,
    /// The node's `/v1/traces`.
    pub url: String,
    pub layout: Layout,
    pub policy: RetryPolicy,
    pub ledger: Mutex<Ledger>,
    pub counters: Counters,
    /// The bounded retry queue: a request waiting to be sent again holds
    /// one of these; with none left it is dropped.
    pub retry_slots: Arc<Semaphore>,
    pub retry_queue: u32,
}

impl Sender {
    fn ack(&self, seq: u64) {
        // A poisoned ledger means a sender panicked: the run is void anyway.
        self.ledger.lock().expect("ledger lock").ack(seq);
    }
}

/// One export attempt: the answer and the `Retry-After` the node asked for.
async fn post(client: &reqwest::Client, url: &str, body: Vec<u8>) -> (Answer, Option<Duration>) {
    let sent = client.post(url).header("content-type", "application/x-protobuf").body(body).timeout(EXPORT_TIMEOUT).send().await;
    let Ok(response) = sent else { return (Answer::Transport, None) };
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let Ok(bytes) = response.bytes().await else { return (Answer::Transport, None) };
    let rejected = if status == 200 {
        ExportTraceServiceResponse::decode(bytes.as_ref())
            .ok()
            .and_then(|r| r.partial_success)
            .map_or(0, |p| p.rejected_spans.max(0) as u64)
    } else {
        0
    };
    (Answer::from_status(status, rejected), retry_after)
}

/// Delivers request `seq` the way an OTLP exporter does: send, and on a
/// retryable answer move to the bounded retry queue (releasing the
/// first-attempt slot) and send again later, up to the policy's attempts.
async fn deliver(sender: Arc<Sender>, seq: u64, first_attempt_slot: OwnedSemaphorePermit) {
    let body = batch::body(&sender.layout, seq);
    let mut first_attempt_slot = Some(first_attempt_slot);
    let mut retry_slot: Option<OwnedSemaphorePermit> = None;
    for attempt in 1.. {
        let (answer, retry_after) = post(&sender.client, &sender.url, body.clone()).await;
        sender.counters.record(answer);
        match sender.policy.next(answer, attempt, retry_after) {
            Next::Done => {
                // A partly refused request is not in the ledger: which of its
                // spans got in is unknown, so none is promised.
                if answer == Answer::Accepted {
                    sender.ack(seq);
                }
                if attempt > 1 {
                    sender.counters.retried_then_acked.fetch_add(1, Relaxed);
                }
                return;
            }
            Next::GiveUp => {
                sender.counters.dropped_gave_up.fetch_add(1, Relaxed);
                return;
            }
            Next::RetryAfter(delay) => {
                if retry_slot.is_none() {
                    let Ok(slot) = sender.retry_slots.clone().try_acquire_owned() else {
                        sender.counters.dropped_queue_full.fetch_add(1, Relaxed);
                        return;
                    };
                    retry_slot = Some(slot);
                    drop(first_attempt_slot.take());
                    sender.counters.retried.fetch_add(1, Relaxed);
                }
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Offers requests at `requests_per_sec` for `duration`, open loop, at most
/// `max_in_flight` first attempts outstanding; then waits (at most
/// `drain_wait`) for every request, retries included, to end. Returns
/// whether they all did.
pub async fn offer(sender: Arc<Sender>, requests_per_sec: f64, duration: Duration, max_in_flight: u32, drain_wait: Duration) -> bool {
    let in_flight = Arc::new(Semaphore::new(max_in_flight as usize));
    let mut schedule = Schedule::new(requests_per_sec);
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let start = Instant::now();
    let mut seq = 0u64;
    while start.elapsed() < duration {
        tick.tick().await;
        for _ in 0..schedule.due(start.elapsed()) {
            seq += 1;
            sender.counters.offered.fetch_add(1, Relaxed);
            match in_flight.clone().try_acquire_owned() {
                Ok(slot) => {
                    tokio::spawn(deliver(sender.clone(), seq, slot));
                }
                Err(_) => {
                    sender.counters.unsent.fetch_add(1, Relaxed);
                }
            }
        }
    }
    // A request gives up its first-attempt slot only once it holds a retry
    // slot, so with every first-attempt slot back no request can still
    // enter the queue, and then waiting for the queue's slots is complete.
    tokio::time::timeout(drain_wait, async {
        let all_first = in_flight.acquire_many(max_in_flight).await;
        let all_retries = sender.retry_slots.acquire_many(sender.retry_queue).await;
        all_first.is_ok() && all_retries.is_ok()
    })
    .await
    .unwrap_or(false)
}

/// Closed loop for `duration` with `concurrency` senders: spans the node
/// acknowledged per second, and the refused (429/503) share of answers.
/// Refused requests are not retried (the next request goes instead), after
/// a short pause so a refusing node is not spun on.
pub async fn capacity(client: reqwest::Client, url: String, layout: Layout, duration: Duration, concurrency: usize) -> (f64, f64) {
    let next = Arc::new(AtomicU64::new(1));
    let (acked, refused, answers) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let start = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url, next, acked, refused, answers) =
                (client.clone(), url.clone(), next.clone(), acked.clone(), refused.clone(), answers.clone());
            tokio::spawn(async move {
                while start.elapsed() < duration {
                    let seq = next.fetch_add(1, Relaxed);
                    let (answer, _) = post(&client, &url, batch::body(&layout, seq)).await;
                    answers.fetch_add(1, Relaxed);
                    match answer {
                        Answer::Accepted => {
                            acked.fetch_add(layout.spans_per_request(), Relaxed);
                        }
                        Answer::TooManyRequests | Answer::Unavailable => {
                            refused.fetch_add(1, Relaxed);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        _ => {}
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
    let rate = acked.load(Relaxed) as f64 / start.elapsed().as_secs_f64();
    (rate, refused.load(Relaxed) as f64 / answers.load(Relaxed).max(1) as f64)
}

/// Latencies and answers of the lookup loop.
#[derive(Debug)]
pub struct Lookups {
    /// Microseconds per answered lookup (any status).
    pub latency_us: hdrhistogram::Histogram<u64>,
    pub ok: u64,
    pub non_200: u64,
    /// The statuses of those, by status.
    pub non_200_by_status: std::collections::BTreeMap<u16, u64>,
    /// No answer within `LOOKUP_TIMEOUT` or a broken connection.
    pub failed: u64,
}

/// Looks up acknowledged IDs (`GET /api/v1/correlate/{id}`) every `pause`
/// until `stop`, as a user with a dashboard open would.
pub async fn lookups(client: reqwest::Client, api: String, sender: Arc<Sender>, stop: Arc<AtomicBool>, pause: Duration) -> Lookups {
    let mut out = Lookups {
        latency_us: hdrhistogram::Histogram::new(3).expect("3 significant digits is valid"),
        ok: 0,
        non_200: 0,
        non_200_by_status: Default::default(),
        failed: 0,
    };
    let mut r = 0x9e37_79b9_7f4a_7c15u64;
    while !stop.load(Relaxed) {
        // xorshift: a different acknowledged ID each time, no rand state.
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        let id = sender.ledger.lock().expect("ledger lock").pick(r);
        let Some(id) = id else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let started = Instant::now();
        let url = format!("{api}/api/v1/correlate/{}", correlation_id(id));
        match client.get(url).timeout(LOOKUP_TIMEOUT).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let read = response.bytes().await;
                let _ = out.latency_us.record(started.elapsed().as_micros() as u64);
                match (status, read) {
                    (200, Ok(_)) => out.ok += 1,
                    (_, Ok(_)) => {
                        out.non_200 += 1;
                        *out.non_200_by_status.entry(status).or_default() += 1;
                    }
                    (_, Err(_)) => out.failed += 1,
                }
            }
            Err(_) => out.failed += 1,
        }
        tokio::time::sleep(pause).await;
    }
    out
}

#[cfg(test)]
#[path = "load_test.rs"]
mod tests;
