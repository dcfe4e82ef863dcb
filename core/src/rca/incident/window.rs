//! What a node reads of an incident window and hands back: the query, the
//! aggregate with its reasons for being partial, and the fold of sessions
//! into it. (The node reads the sessions: `collect_window` in its `query`
//! module.)
//!
//! Sessions are chosen by event time (their first and last signal times
//! overlap the window), so an incident replayed with its original, months
//! old timestamps is found; spans and logs outside the window are left
//! out. Live sessions and finished ones (embedded archive or ClickHouse)
//! both count. Bounded: at most `sessions_max` sessions are read (the most
//! recently active), read and folded in batches of [`BATCH_SESSIONS`] on the
//! blocking pool.

use super::aggregate::WindowAggregate;
use crate::query::{merge, SessionData};
use crate::rca::RcaInput;

/// Default bound on sessions read per window.
pub const SESSIONS_MAX_DEFAULT: usize = 5_000;
/// Sessions decoded and folded per blocking task.
pub const BATCH_SESSIONS: usize = 64;

/// Which sessions to aggregate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WindowQuery {
    /// Event time, Unix ns, inclusive.
    pub start_unix_nano: u64,
    /// Event time, Unix ns, exclusive.
    pub end_unix_nano: u64,
    pub sessions_max: usize,
    /// Bound on the aggregate's operation and edge keys.
    pub keys_max: usize,
}

/// One node's aggregate of a window.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Collected {
    pub aggregate: WindowAggregate,
    /// Why the aggregate may be missing sessions or keys.
    pub partial: Option<String>,
}

impl Collected {
    /// Folds another node's answer in (the cluster's fan-out merge).
    pub fn merge(&mut self, other: &Collected) {
        self.aggregate.merge(&other.aggregate);
        self.partial = match (self.partial.take(), &other.partial) {
            (Some(a), Some(b)) => Some(format!("{a}; {b}")),
            (a, b) => a.or_else(|| b.clone()),
        };
    }
}

/// One batch of sessions folded into an aggregate (a node folds its window
/// in batches of [`BATCH_SESSIONS`], off the async threads).
pub fn fold(batch: &[SessionData], start: u64, end: u64, keys_max: usize) -> WindowAggregate {
    let mut aggregate = WindowAggregate::new(keys_max);
    for data in batch {
        aggregate.observe(&window_input(data, start, end));
    }
    aggregate
}

/// The session's spans that start and logs that happen in `[start, end)`.
pub fn window_input(data: &SessionData, start: u64, end: u64) -> RcaInput {
    let mut input = RcaInput::from_merged(&merge(data));
    input.spans.retain(|s| (start..end).contains(&s.start_ns));
    input.logs.retain(|l| (start..end).contains(&l.time_ns));
    input.exemplars.clear();
    input
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rca::fixtures::sp;

    #[test]
    fn node_answers_merge_with_their_reasons() {
        let one = |service: &str, partial: Option<&str>| {
            let mut aggregate = WindowAggregate::default();
            aggregate.observe(&RcaInput { spans: vec![sp(service, "op", 1, None, 0, 5)], ..Default::default() });
            Collected { aggregate, partial: partial.map(str::to_owned) }
        };
        let mut all = one("a", None);
        all.merge(&one("b", Some("node 2: 3 session(s) could not be read")));
        all.merge(&one("c", Some("node 3: more than 5000 sessions")));
        assert_eq!(all.aggregate.sessions, 3);
        assert_eq!(all.aggregate.ops.len(), 3);
        assert_eq!(all.partial.as_deref(), Some("node 2: 3 session(s) could not be read; node 3: more than 5000 sessions"));
    }
}
