//! The soak's pure decisions: what a request holds (which correlation IDs,
//! which span IDs), when the open-loop schedule sends the next request,
//! and what an exporter does with an answer (done, retry later, give up).
//! No clocks or sockets here: callers pass elapsed times and answers in.

use std::ops::Range;
use std::time::Duration;

/// How the offered rate is given: a multiple of the measured capacity
/// (`2x`) or spans per second (`150000`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OfferedRate {
    TimesCapacity(f64),
    SpansPerSec(f64),
}

impl OfferedRate {
    /// Spans per second to offer, given the capacity (None when the rate is
    /// absolute and no capacity was measured).
    pub fn spans_per_sec(self, capacity_spans_per_sec: Option<f64>) -> Option<f64> {
        match self {
            Self::SpansPerSec(rate) => Some(rate),
            Self::TimesCapacity(factor) => capacity_spans_per_sec.map(|c| c * factor),
        }
    }

    pub fn needs_capacity(self) -> bool {
        matches!(self, Self::TimesCapacity(_))
    }
}

impl std::str::FromStr for OfferedRate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (number, multiple) = match s.strip_suffix('x') {
            Some(n) => (n, true),
            None => (s, false),
        };
        let value: f64 = number.parse().map_err(|_| format!("offered rate {s:?}: expected a number of spans/s or a multiple like 2x"))?;
        if !(value.is_finite() && value > 0.0) {
            return Err(format!("offered rate {s:?}: must be positive"));
        }
        Ok(if multiple { Self::TimesCapacity(value) } else { Self::SpansPerSec(value) })
    }
}

/// Parses `300s`, `5m`, `1500ms` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("duration {s:?}: expected e.g. 300s, 5m or 1500ms");
    let (number, unit_ms) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1_000.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        (s, 1_000.0)
    };
    let value: f64 = number.parse().map_err(|_| bad())?;
    if !(value.is_finite() && value > 0.0) {
        return Err(bad());
    }
    Ok(Duration::from_millis((value * unit_ms) as u64))
}

/// Which IDs and spans request number `seq` carries. Requests visit the
/// IDs round-robin, `ids_per_request` consecutive IDs each, so every ID is
/// revisited at the same pace and all `ids` are live at once when the
/// revisit period is shorter than the idle timeout (the soak's point).
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub ids: u64,
    pub ids_per_request: u64,
    pub spans_per_id: u64,
}

impl Layout {
    pub fn new(ids: u64, ids_per_request: u64, spans_per_request: u64) -> Result<Self, String> {
        if ids_per_request == 0 || ids < ids_per_request {
            return Err(format!("--ids ({ids}) must be at least --ids-per-request ({ids_per_request}), which must be positive"));
        }
        let spans_per_id = spans_per_request / ids_per_request;
        // Span IDs keep the span's index in 16 bits (see `span_id`).
        if spans_per_id == 0 || spans_per_request > u64::from(u16::MAX) {
            return Err(format!("--spans-per-request ({spans_per_request}) must be between --ids-per-request and 65535"));
        }
        Ok(Self { ids, ids_per_request, spans_per_id })
    }

    pub fn spans_per_request(&self) -> u64 {
        self.ids_per_request * self.spans_per_id
    }

    /// The ID in slot `slot` of request `seq`.
    pub fn id_of(&self, seq: u64, slot: u64) -> u64 {
        (seq.wrapping_mul(self.ids_per_request).wrapping_add(slot)) % self.ids
    }

    /// The slot ID `id` takes in request `seq`, if the request carries it.
    pub fn slot_of(&self, seq: u64, id: u64) -> Option<u64> {
        let first = self.id_of(seq, 0);
        let slot = (id + self.ids - first) % self.ids;
        (slot < self.ids_per_request).then_some(slot)
    }

    /// Span indexes (within the request) of slot `slot`.
    pub fn spans_of_slot(&self, slot: u64) -> Range<u64> {
        slot * self.spans_per_id..(slot + 1) * self.spans_per_id
    }

    /// The span IDs request `seq` carries for ID `id` (empty when none).
    pub fn span_ids(&self, seq: u64, id: u64) -> impl Iterator<Item = u64> {
        let range = self.slot_of(seq, id).map(|slot| self.spans_of_slot(slot)).unwrap_or(0..0);
        range.map(move |index| span_id(seq, index))
    }
}

/// The correlation ID string of ID number `id`.
pub fn correlation_id(id: u64) -> String {
    format!("soak-{id:07}")
}

/// A span's ID: the request number in the high 48 bits, the span's index
/// in the low 16, so the verifier can tell every span apart and knows which
/// request it came from. Request numbers start at 1, so it is never zero
/// (an invalid span ID in OTLP).
pub fn span_id(seq: u64, index: u64) -> u64 {
    debug_assert!((1..1 << 48).contains(&seq) && index <= u64::from(u16::MAX));
    (seq << 16) | index
}

/// The open-loop schedule: requests are due at a fixed rate from the start,
/// however slowly the node answers, so backpressure cannot lower the
/// offered load (a closed loop would measure the node, not stress it).
#[derive(Debug)]
pub struct Schedule {
    requests_per_sec: f64,
    issued: u64,
}

impl Schedule {
    pub fn new(requests_per_sec: f64) -> Self {
        Self { requests_per_sec, issued: 0 }
    }

    /// How many requests became due since the last call, `elapsed` after
    /// the start. A caller that fell behind gets the backlog at once.
    pub fn due(&mut self, elapsed: Duration) -> u64 {
        let target = (elapsed.as_secs_f64() * self.requests_per_sec) as u64;
        let due = target.saturating_sub(self.issued);
        self.issued = self.issued.max(target);
        due
    }
}

/// What one attempt at sending a request came back with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// 200 with every span accepted.
    Accepted,
    /// 200 whose `partial_success` rejected this many spans.
    Partial(u64),
    /// 429: the node's memory (or WAL) budget is exhausted.
    TooManyRequests,
    /// 503: the receiver's concurrency bound.
    Unavailable,
    /// Any other status: not retryable.
    Other(u16),
    /// No answer: connection error or client timeout (the node may still
    /// have taken the request; a retry is then de-duplicated).
    Transport,
}

impl Answer {
    pub fn from_status(status: u16, rejected_spans: u64) -> Self {
        match status {
            200 if rejected_spans == 0 => Self::Accepted,
            200 => Self::Partial(rejected_spans),
            429 => Self::TooManyRequests,
            503 => Self::Unavailable,
            s => Self::Other(s),
        }
    }
}

/// What the exporter does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The node took the request (wholly or partly); stop.
    Done,
    /// Send again after this long.
    RetryAfter(Duration),
    /// Stop without delivery: not retryable, retries off, or out of attempts.
    GiveUp,
}

/// An OTLP exporter's retry rule, bounded: honour `Retry-After` (capped),
/// else exponential backoff; at most `max_attempts` sends per request.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub enabled: bool,
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// The decision after attempt number `attempt` (1 for the first send).
    pub fn next(&self, answer: Answer, attempt: u32, retry_after: Option<Duration>) -> Next {
        match answer {
            Answer::Accepted | Answer::Partial(_) => Next::Done,
            Answer::Other(_) => Next::GiveUp,
            Answer::TooManyRequests | Answer::Unavailable | Answer::Transport => {
                if !self.enabled || attempt >= self.max_attempts {
                    return Next::GiveUp;
                }
                let backoff = self.initial_backoff.saturating_mul(1 << attempt.saturating_sub(1).min(16));
                Next::RetryAfter(retry_after.unwrap_or(backoff).min(self.max_backoff))
            }
        }
    }
}

#[cfg(test)]
#[path = "plan_test.rs"]
mod tests;
