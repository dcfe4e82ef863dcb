//! Error origins: failing spans whose failure no failing child explains.
//!
//! A failing span with a failing child is taken to have failed because of
//! it (the failure propagated). The origins are the failing spans without a
//! failing child. They are ordered best first by: whether the chain of
//! failing ancestors above them reaches a root (the caller saw the
//! failure), then depth (deepest first), then the time they failed (their
//! end, earliest first). Each comes with the error logs that support it:
//! those attached to the span itself first, then those of the same service
//! within [`LOG_SLACK_NS`] of the span.

use super::model::RcaLog;
use super::tree::{Node, Tree};

/// How far before the start or after the end of a span a log of the same
/// service still counts as support.
pub const LOG_SLACK_NS: u64 = 1_000_000_000;
/// Origins (best first) whose supporting logs are looked up.
pub const WITH_LOGS_MAX: usize = 20;
/// At most this many supporting logs per origin.
pub const LOGS_MAX: usize = 10;

/// How a log was linked to a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogMatch {
    /// The log carries the span's trace and span ID.
    Span,
    /// Same service, around the span's time.
    ServiceTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    pub node: Node,
    /// The failure reached a root through failing ancestors.
    pub reaches_root: bool,
    /// Failing ancestors whose failure this origin explains, nearest first.
    pub propagated: Vec<Node>,
    /// Indexes into the logs, span matches first, then by time.
    pub logs: Vec<(usize, LogMatch)>,
}

/// Whether any child of `node` failed.
pub fn has_failing_child(tree: &Tree, node: Node) -> bool {
    tree.children(node).iter().any(|&c| tree.spans[c].is_error)
}

/// All origins, best first.
pub fn error_origins(tree: &Tree, logs: &[RcaLog]) -> Vec<Origin> {
    let mut origins: Vec<Origin> = (0..tree.len())
        .filter(|&i| tree.spans[i].is_error && !has_failing_child(tree, i))
        .map(|i| {
            let propagated: Vec<Node> = tree.ancestors(i).take_while(|&a| tree.spans[a].is_error).collect();
            let top = propagated.last().copied().unwrap_or(i);
            Origin { node: i, reaches_root: tree.parent(top).is_none(), propagated, logs: Vec::new() }
        })
        .collect();
    origins.sort_by_key(|o| {
        let s = &tree.spans[o.node];
        (!o.reaches_root, std::cmp::Reverse(tree.depth(o.node)), s.end_ns, s.start_ns, o.node)
    });
    // Each search reads every log: only the best origins get one.
    for o in origins.iter_mut().take(WITH_LOGS_MAX) {
        o.logs = supporting_logs(tree, o.node, logs);
    }
    origins
}

/// Error logs supporting a failure of `node` (see the module doc).
pub fn supporting_logs(tree: &Tree, node: Node, logs: &[RcaLog]) -> Vec<(usize, LogMatch)> {
    let span = &tree.spans[node];
    let (from, to) = (span.start_ns.saturating_sub(LOG_SLACK_NS), span.end_ns.saturating_add(LOG_SLACK_NS));
    let mut found: Vec<(usize, LogMatch)> = logs
        .iter()
        .enumerate()
        .filter(|(_, l)| l.is_error())
        .filter_map(|(i, l)| {
            if l.trace_id == Some(span.trace_id) && l.span_id == Some(span.span_id) {
                Some((i, LogMatch::Span))
            } else if l.service == span.service && (from..=to).contains(&l.time_ns) {
                Some((i, LogMatch::ServiceTime))
            } else {
                None
            }
        })
        .collect();
    found.sort_by_key(|&(i, m)| (m != LogMatch::Span, logs[i].time_ns, i));
    found.truncate(LOGS_MAX);
    found
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    /// checkout → payments → db, where db fails and the failure propagates.
    fn cascade() -> Vec<crate::rca::model::RcaSpan> {
        vec![
            fail(sp("frontend", "GET /checkout", 1, None, 0, 100), "502"),
            fail(sp("checkout", "POST /checkout", 2, Some(1), 5, 95), "payment failed"),
            fail(sp("payments", "POST /charge", 3, Some(2), 10, 90), "db error"),
            fail(sp("db", "INSERT charges", 4, Some(3), 20, 30), "deadlock detected"),
            sp("db", "SELECT card", 5, Some(3), 12, 18),
        ]
    }

    #[test]
    fn the_deepest_unexplained_failure_is_the_origin() {
        let spans = cascade();
        let tree = Tree::new(&spans);
        let logs = vec![
            error_log("db", 4, 29, "deadlock detected on charges"),
            error_log("payments", 0, 31, "insert failed"),
            error_log("db", 0, 5_000, "much later: not support"),
            RcaLog { severity: 9, ..error_log("db", 4, 25, "info, not an error") },
        ];
        let origins = error_origins(&tree, &logs);
        assert_eq!(origins.len(), 1);
        let o = &origins[0];
        assert_eq!(spans[o.node].operation, "INSERT charges");
        assert!(o.reaches_root);
        assert_eq!(o.propagated, [2, 1, 0]);
        assert_eq!(o.logs, [(0, LogMatch::Span)]);
    }

    #[test]
    fn propagating_origins_beat_deeper_handled_ones_then_depth_then_time() {
        let spans = vec![
            fail(sp("web", "root", 1, None, 0, 100), "500"),
            sp("cache", "get", 2, Some(1), 1, 5),
            fail(sp("cache", "redis GET", 3, Some(2), 1, 4), "miss timeout (handled)"),
            fail(sp("api", "call", 4, Some(1), 10, 60), "boom"),
            fail(sp("api", "retry", 5, Some(1), 61, 90), "boom again"),
        ];
        let tree = Tree::new(&spans);
        let order: Vec<&str> = error_origins(&tree, &[]).iter().map(|o| spans[o.node].operation.as_str()).collect();
        // root has failing children, so it is explained; call and retry reach it.
        assert_eq!(order, ["call", "retry", "redis GET"]);
    }

    #[test]
    fn same_service_logs_support_within_the_slack() {
        let spans = vec![fail(sp("api", "handler", 1, None, 2_000, 2_010), "")];
        let tree = Tree::new(&spans);
        let logs = vec![error_log("api", 0, 1_500, "before"), error_log("api", 0, 900, "too early"), error_log("other", 0, 2_005, "x")];
        assert_eq!(supporting_logs(&tree, 0, &logs), [(0, LogMatch::ServiceTime)]);
    }
}
