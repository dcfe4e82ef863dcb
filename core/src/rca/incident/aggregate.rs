//! The per-node, mergeable aggregate of every session in a time window:
//! per (service, operation) calls, errors, error origins, self-time and
//! duration sketches, log counts and log templates; per caller → callee
//! edge calls, errors and client-side vs server-side latency.
//!
//! A node builds one with [`WindowAggregate::observe`] per session; a
//! cluster merges the nodes' aggregates with [`WindowAggregate::merge`]
//! (exact: counts add, sketches add bucket counts). It serializes with
//! serde, so it can travel between nodes as JSON or any serde format.
//!
//! Bounded: at most `keys_max` operations and `keys_max` edges; spans of
//! further keys are counted in `dropped_spans`, and an answer built from
//! such an aggregate says it is partial.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::logline::template;
use super::sketch::LatencySketch;
use crate::model::{SpanId, TraceId};
use crate::query::SpanKindView;
use crate::rca::{RcaInput, RcaSpan};

use super::super::tree::Tree;

/// Default bound on operation keys and on edge keys (each).
pub const KEYS_MAX_DEFAULT: usize = 5_000;
/// Log templates kept per operation; further ones are counted in `other_logs`.
pub const TEMPLATES_PER_OP_MAX: usize = 16;
/// Failure messages kept per operation (the most frequent stay).
pub const MESSAGES_PER_OP_MAX: usize = 4;

/// One (service, operation) over a window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OpStats {
    pub service: String,
    /// The span name; empty for logs of the service attached to no span.
    pub operation: String,
    /// Spans of client or producer kind (calls out of the service).
    pub client_calls: u64,
    /// Client/producer spans with a child in another service (the callee
    /// sent spans): their self time is time outside the callee's spans.
    pub traced_callee_calls: u64,
    /// Producer spans (asynchronous sends).
    pub async_calls: u64,
    pub calls: u64,
    /// Failed spans.
    pub errors: u64,
    /// Failed spans with no failing child: failures that start here.
    pub origin_errors: u64,
    /// Failed root spans (the caller of the flow saw the failure).
    pub root_errors: u64,
    pub self_us: LatencySketch,
    pub duration_us: LatencySketch,
    pub logs: u64,
    pub error_logs: u64,
    /// (template, count), by first appearance; at most [`TEMPLATES_PER_OP_MAX`].
    pub templates: Vec<(String, u64)>,
    /// Logs whose template did not fit.
    pub other_logs: u64,
    /// (failure message, count), most frequent first; at most [`MESSAGES_PER_OP_MAX`].
    pub messages: Vec<(String, u64)>,
}

/// Calls from one operation of a service into another service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EdgeStats {
    pub caller: String,
    /// The caller's span that made the call (a client span when instrumented so).
    pub caller_operation: String,
    pub callee: String,
    pub calls: u64,
    /// Calls whose callee span failed.
    pub errors: u64,
    /// Calls whose caller span failed while the callee span did not (a
    /// timeout, a refused connection, a rejected answer).
    pub caller_only_errors: u64,
    /// Duration of the caller's client span (synchronous client calls only).
    pub client_us: LatencySketch,
    /// Duration of the callee's span.
    pub server_us: LatencySketch,
    /// Client duration minus server duration, per call (synchronous client
    /// calls only): network, connection setup, queueing before the callee.
    pub gap_us: LatencySketch,
}

/// Everything a window's sessions say, mergeable across nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowAggregate {
    pub sessions: u64,
    pub spans: u64,
    pub logs: u64,
    /// Sessions whose root span failed.
    pub failed_sessions: u64,
    /// Sorted by (service, operation).
    pub ops: Vec<OpStats>,
    /// Sorted by (caller, caller_operation, callee).
    pub edges: Vec<EdgeStats>,
    /// Bound on `ops` and on `edges` (each).
    pub keys_max: usize,
    /// Spans and logs left out because their key did not fit.
    pub dropped: u64,
}

impl Default for WindowAggregate {
    fn default() -> Self {
        Self::new(KEYS_MAX_DEFAULT)
    }
}

impl WindowAggregate {
    pub fn new(keys_max: usize) -> Self {
        Self {
            sessions: 0,
            spans: 0,
            logs: 0,
            failed_sessions: 0,
            ops: Vec::new(),
            edges: Vec::new(),
            keys_max: keys_max.max(1),
            dropped: 0,
        }
    }

    pub fn op(&self, service: &str, operation: &str) -> Option<&OpStats> {
        self.ops.binary_search_by(|o| (o.service.as_str(), o.operation.as_str()).cmp(&(service, operation))).ok().map(|i| &self.ops[i])
    }

    /// Adds one session (its spans and logs; exemplars are not used).
    pub fn observe(&mut self, input: &RcaInput) {
        if input.spans.is_empty() && input.logs.is_empty() {
            return;
        }
        self.sessions += 1;
        self.spans += input.spans.len() as u64;
        self.logs += input.logs.len() as u64;
        let tree = Tree::new(&input.spans);
        if tree.roots().iter().any(|&r| tree.spans[r].is_error) {
            self.failed_sessions += 1;
        }
        for (i, span) in input.spans.iter().enumerate() {
            self.observe_span(&tree, i, span);
        }
        let by_span: HashMap<(TraceId, SpanId), usize> =
            input.spans.iter().enumerate().map(|(i, s)| ((s.trace_id, s.span_id), i)).collect();
        for log in &input.logs {
            let operation = log.trace_id.zip(log.span_id).and_then(|k| by_span.get(&k)).map_or("", |&i| input.spans[i].operation.as_str());
            let Some(op) = self.op_mut(&log.service, operation) else { continue };
            op.logs += 1;
            op.error_logs += u64::from(log.is_error());
            add_template(op, template(&log.body));
        }
    }

    fn observe_span(&mut self, tree: &Tree, i: usize, span: &RcaSpan) {
        let children = tree.children(i);
        let origin = span.is_error && !children.iter().any(|&c| tree.spans[c].is_error);
        let client = matches!(span.kind, SpanKindView::Client | SpanKindView::Producer);
        let callee_traced = children.iter().any(|&c| tree.spans[c].service != span.service);
        let parent = tree.parent(i);
        if let Some(op) = self.op_mut(&span.service, &span.operation) {
            op.calls += 1;
            op.errors += u64::from(span.is_error);
            op.origin_errors += u64::from(origin);
            op.root_errors += u64::from(span.is_error && parent.is_none());
            op.client_calls += u64::from(client);
            op.traced_callee_calls += u64::from(client && callee_traced);
            op.async_calls += u64::from(span.kind == SpanKindView::Producer);
            op.self_us.record(tree.self_ns(i) / 1_000);
            op.duration_us.record(span.duration_ns() / 1_000);
            if span.is_error && !span.message.is_empty() {
                add_message(op, &span.message);
            }
        }
        let Some(p) = parent else { return };
        let caller = &tree.spans[p];
        if caller.service == span.service {
            return;
        }
        let sync_client = caller.kind == SpanKindView::Client;
        let Some(edge) = self.edge_mut(&caller.service, &caller.operation, &span.service) else { return };
        edge.calls += 1;
        edge.errors += u64::from(span.is_error);
        edge.caller_only_errors += u64::from(caller.is_error && !span.is_error);
        edge.server_us.record(span.duration_ns() / 1_000);
        if sync_client {
            edge.client_us.record(caller.duration_ns() / 1_000);
            edge.gap_us.record(caller.duration_ns().saturating_sub(span.duration_ns()) / 1_000);
        }
    }

    /// Folds `other` in: the aggregate of both windows' sessions (keys
    /// beyond the bound are counted in `dropped`).
    pub fn merge(&mut self, other: &WindowAggregate) {
        self.sessions += other.sessions;
        self.spans += other.spans;
        self.logs += other.logs;
        self.failed_sessions += other.failed_sessions;
        self.dropped += other.dropped;
        for o in &other.ops {
            match self.op_mut(&o.service, &o.operation) {
                Some(mine) => merge_op(mine, o),
                None => self.dropped += (o.calls + o.logs).saturating_sub(1), // op_mut counted one
            }
        }
        for e in &other.edges {
            match self.edge_mut(&e.caller, &e.caller_operation, &e.callee) {
                Some(mine) => merge_edge(mine, e),
                None => self.dropped += e.calls.saturating_sub(1),
            }
        }
    }

    /// The operation's entry, created if the bound allows (else `None`,
    /// counted in `dropped`).
    fn op_mut(&mut self, service: &str, operation: &str) -> Option<&mut OpStats> {
        let at = self.ops.binary_search_by(|o| (o.service.as_str(), o.operation.as_str()).cmp(&(service, operation)));
        let i = match at {
            Ok(i) => i,
            Err(_) if self.ops.len() >= self.keys_max => {
                self.dropped += 1;
                return None;
            }
            Err(i) => {
                self.ops.insert(i, OpStats { service: service.to_owned(), operation: operation.to_owned(), ..Default::default() });
                i
            }
        };
        self.ops.get_mut(i)
    }

    fn edge_mut(&mut self, caller: &str, caller_operation: &str, callee: &str) -> Option<&mut EdgeStats> {
        let key = (caller, caller_operation, callee);
        let at = self.edges.binary_search_by(|e| (e.caller.as_str(), e.caller_operation.as_str(), e.callee.as_str()).cmp(&key));
        let i = match at {
            Ok(i) => i,
            Err(_) if self.edges.len() >= self.keys_max => {
                self.dropped += 1;
                return None;
            }
            Err(i) => {
                let edge = EdgeStats {
                    caller: caller.to_owned(),
                    caller_operation: caller_operation.to_owned(),
                    callee: callee.to_owned(),
                    ..Default::default()
                };
                self.edges.insert(i, edge);
                i
            }
        };
        self.edges.get_mut(i)
    }
}

fn merge_op(mine: &mut OpStats, o: &OpStats) {
    mine.client_calls += o.client_calls;
    mine.traced_callee_calls += o.traced_callee_calls;
    mine.async_calls += o.async_calls;
    mine.calls += o.calls;
    mine.errors += o.errors;
    mine.origin_errors += o.origin_errors;
    mine.root_errors += o.root_errors;
    mine.self_us.merge(&o.self_us);
    mine.duration_us.merge(&o.duration_us);
    mine.logs += o.logs;
    mine.error_logs += o.error_logs;
    mine.other_logs += o.other_logs;
    for (t, n) in &o.templates {
        add_template_n(mine, t.clone(), *n);
    }
    for (m, n) in &o.messages {
        add_message_n(mine, m, *n);
    }
}

fn merge_edge(mine: &mut EdgeStats, e: &EdgeStats) {
    mine.calls += e.calls;
    mine.errors += e.errors;
    mine.caller_only_errors += e.caller_only_errors;
    mine.client_us.merge(&e.client_us);
    mine.server_us.merge(&e.server_us);
    mine.gap_us.merge(&e.gap_us);
}

fn add_template(op: &mut OpStats, t: String) {
    add_template_n(op, t, 1);
}

fn add_template_n(op: &mut OpStats, t: String, n: u64) {
    if let Some(entry) = op.templates.iter_mut().find(|(x, _)| *x == t) {
        entry.1 += n;
    } else if op.templates.len() < TEMPLATES_PER_OP_MAX {
        op.templates.push((t, n));
    } else {
        op.other_logs += n;
    }
}

fn add_message(op: &mut OpStats, message: &str) {
    add_message_n(op, message, 1);
}

/// Keeps the most frequent messages: a new one replaces the rarest when full
/// (approximate under merging, which only costs evidence wording).
fn add_message_n(op: &mut OpStats, message: &str, n: u64) {
    let message: String = message.chars().take(200).collect();
    if let Some(entry) = op.messages.iter_mut().find(|(x, _)| *x == message) {
        entry.1 += n;
    } else if op.messages.len() < MESSAGES_PER_OP_MAX {
        op.messages.push((message, n));
    } else if let Some(rarest) = op.messages.iter_mut().min_by_key(|(_, c)| *c).filter(|(_, c)| *c < n) {
        *rarest = (message, n);
    }
    op.messages.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rca::fixtures::{error_log, fail, kind, sp, sp_in};

    fn session() -> RcaInput {
        let spans = vec![
            kind(sp("web", "GET /", 1, None, 0, 100), SpanKindView::Server),
            kind(sp("web", "call db", 2, Some(1), 10, 90), SpanKindView::Client),
            fail(kind(sp("db", "query", 3, Some(2), 20, 80), SpanKindView::Server), "deadlock"),
        ];
        RcaInput {
            spans,
            logs: vec![error_log("db", 3, 50, "deadlock on row 42"), error_log("db", 0, 50, "pool size 7")],
            exemplars: vec![],
        }
    }

    #[test]
    fn a_session_fills_ops_edges_and_logs() {
        let mut a = WindowAggregate::default();
        a.observe(&session());
        assert_eq!((a.sessions, a.spans, a.logs, a.failed_sessions), (1, 3, 2, 0));
        let client = a.op("web", "call db").expect("client op");
        assert_eq!((client.client_calls, client.traced_callee_calls), (1, 1));
        // 80 ms of client span minus 60 ms of db span, within the sketch's 1.6%.
        assert!((client.self_us.quantile_us(0.5) - 20_000.0).abs() < 320.0);
        let db = a.op("db", "query").expect("db op");
        assert_eq!((db.calls, db.errors, db.origin_errors, db.error_logs), (1, 1, 1, 1));
        assert_eq!(db.templates, vec![("deadlock on row #".to_owned(), 1)]);
        assert_eq!(db.messages, vec![("deadlock".to_owned(), 1)]);
        assert_eq!(a.op("db", "").map(|o| o.error_logs), Some(1), "logs without a span go to the service's empty operation");
        let edge = &a.edges[0];
        assert_eq!((edge.caller.as_str(), edge.caller_operation.as_str(), edge.callee.as_str()), ("web", "call db", "db"));
        assert_eq!((edge.calls, edge.errors, edge.gap_us.count()), (1, 1, 1));
    }

    #[test]
    fn merge_is_the_aggregate_of_everything() {
        let other = RcaInput { spans: vec![sp_in(2, "api", "GET /x", 1, None, 0, 5)], ..Default::default() };
        let (mut a, mut b, mut both) = (WindowAggregate::default(), WindowAggregate::default(), WindowAggregate::default());
        a.observe(&session());
        b.observe(&other);
        b.observe(&session());
        for s in [session(), other, session()] {
            both.observe(&s);
        }
        a.merge(&b);
        assert_eq!(a, both);
        let json = serde_json::to_string(&a).expect("serializes");
        assert_eq!(serde_json::from_str::<WindowAggregate>(&json).expect("parses"), both);
    }

    #[test]
    fn keys_are_bounded() {
        let mut a = WindowAggregate::new(2);
        a.observe(&session());
        assert_eq!(a.ops.len(), 2);
        assert_eq!(a.edges.len(), 1);
        assert!(a.dropped > 0);
        let mut small = WindowAggregate::new(1);
        small.merge(&a);
        assert_eq!(small.ops.len(), 1);
        assert!(small.dropped > a.dropped);
    }
}
