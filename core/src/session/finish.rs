//! When a live session segment finishes: a pure rule over its clock times
//! and sizes.

/// Settings of the finishing rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinishRules {
    /// Finish after this long without a new signal (node clock).
    pub idle_timeout_ms: u64,
    /// Finish this long after the segment opened, however busy.
    pub max_age_ms: u64,
    /// Finish once the segment holds this many spans (a new segment opens).
    pub max_spans: usize,
    /// Finish once the segment holds this many log records.
    pub max_logs: usize,
}

/// Why a segment finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    Idle,
    MaxAge,
    SpanCap,
    LogCap,
    /// Finished early to bring memory back within the budget (a WAL
    /// replay larger than the budget; see `ingest::replay`).
    Memory,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::MaxAge => "max_age",
            Self::SpanCap => "span_cap",
            Self::LogCap => "log_cap",
            Self::Memory => "memory",
        }
    }
}

/// What the rule looks at.
#[derive(Debug, Clone, Copy)]
pub struct SegmentClock {
    pub opened_unix_ms: u64,
    pub last_activity_unix_ms: u64,
    pub spans: usize,
    pub logs: usize,
}

/// Whether the segment should finish now, and why. Caps come first (they
/// protect memory), then age, then idleness. Clock times are the node's
/// arrival times, not event timestamps, so backfilled data with old
/// timestamps does not finish instantly.
pub fn finish_reason(rules: &FinishRules, seg: &SegmentClock, now_unix_ms: u64) -> Option<FinishReason> {
    if seg.spans >= rules.max_spans {
        return Some(FinishReason::SpanCap);
    }
    if seg.logs >= rules.max_logs {
        return Some(FinishReason::LogCap);
    }
    if now_unix_ms.saturating_sub(seg.opened_unix_ms) >= rules.max_age_ms {
        return Some(FinishReason::MaxAge);
    }
    if now_unix_ms.saturating_sub(seg.last_activity_unix_ms) >= rules.idle_timeout_ms {
        return Some(FinishReason::Idle);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: FinishRules = FinishRules { idle_timeout_ms: 1_000, max_age_ms: 10_000, max_spans: 100, max_logs: 50 };

    fn seg(opened: u64, last: u64, spans: usize, logs: usize) -> SegmentClock {
        SegmentClock { opened_unix_ms: opened, last_activity_unix_ms: last, spans, logs }
    }

    #[test]
    fn busy_young_segment_stays_open() {
        assert_eq!(finish_reason(&RULES, &seg(0, 900, 1, 1), 1_000), None);
    }

    #[test]
    fn idle_segment_finishes() {
        assert_eq!(finish_reason(&RULES, &seg(0, 0, 1, 0), 1_000), Some(FinishReason::Idle));
    }

    #[test]
    fn old_segment_finishes_even_when_busy() {
        assert_eq!(finish_reason(&RULES, &seg(0, 9_999, 1, 0), 10_000), Some(FinishReason::MaxAge));
    }

    #[test]
    fn caps_win() {
        assert_eq!(finish_reason(&RULES, &seg(0, 0, 100, 0), 1), Some(FinishReason::SpanCap));
        assert_eq!(finish_reason(&RULES, &seg(0, 0, 0, 50), 1), Some(FinishReason::LogCap));
    }

    #[test]
    fn clock_going_backwards_does_not_finish() {
        assert_eq!(finish_reason(&RULES, &seg(5_000, 5_000, 1, 0), 4_000), None);
    }
}
